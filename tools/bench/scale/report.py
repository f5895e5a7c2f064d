"""The Markdown report: one section per scenario from its runs' records
(medians with min–max over runs), and the update of that section in
docs/benchmarks.md (or BENCH_DOC)."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

from .config import SCENARIO_PARAMS, Settings
from .measure import PERIODIC, Machine, per_object
from .results import ConvergeRun, RecoveryRun, RunRecord, SpecLatencyRun, SteadyRun
from .workload import MIN_PER_IDENTITY, MIN_PER_TAG_CHANGE, PairMinimums


@dataclass(frozen=True)
class ReportContext:
    """What a section says besides the runs themselves."""
    settings: Settings
    op_defaults: str  # the operator's defaults for the flags that shape a reading
    drift_share: Optional[str]  # its --drift-budget-share default
    flow_schemas: Mapping[str, str]  # FlowSchema name -> "verb resource"

    @property
    def minimums(self) -> PairMinimums:
        return PairMinimums.for_sqs(self.settings.sqs)


@dataclass(frozen=True)
class ApiSummary:
    total_per_min: float  # the operator's API requests per minute in the steady window
    status_writes_per_min: float  # its PATCH/PUT on */status per minute


# ---------------------------------------------------------------- maths


def med_num(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def med(values: list, digits: int = 1) -> str:
    """Median (min–max) of the values that are not None, or n/a."""
    vals = [v for v in values if v is not None]
    if not vals:
        return "n/a" + (f" ({len(values)} runs failed)" if len(values) > 1 else "")
    fmt = (lambda v: f"{v:.{digits}f}") if any(isinstance(v, float) for v in vals) else (lambda v: f"{v:g}")
    if len(values) == 1:
        return fmt(vals[0])
    spread = f" ({fmt(min(vals))}–{fmt(max(vals))})"
    missing = f", {len(values) - len(vals)} runs failed" if len(vals) < len(values) else ""
    return fmt(statistics.median(vals)) + spread + missing


def pct(vals: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(vals)
    return s[max(0, math.ceil(q * len(s)) - 1)]


# ---------------------------------------------------------------- common parts


def calls_table(runs: Sequence[RunRecord], calls: Callable[[RunRecord], Optional[Mapping[str, float]]],
                minimum: Mapping[str, int], per: int, per_label: str,
                bare: Mapping[str, int] | None = None) -> list[str]:
    """Median calls by operation over the runs that have `calls`, against the minimums."""
    counted = [calls(r) for r in runs if calls(r) is not None]
    seen = set(minimum) | {op for c in counted for op in c}
    head = "| call | design minimum |" + (" bare minimum |" if bare is not None else "") + \
        f" measured | per {per_label} | excess over design |"
    lines = [head, "|---|---:|" + ("---:|" if bare is not None else "") + "---:|---:|---:|"]
    tot_min = tot_bare = tot = 0.0
    for op in sorted(seen - PERIODIC):
        m = minimum.get(op, 0) * per
        b = (bare or {}).get(op, 0) * per
        got = statistics.median(c.get(op, 0) for c in counted)
        tot_min, tot_bare, tot = tot_min + m, tot_bare + b, tot + got
        lines.append(f"| `{op}` | {m} |" + (f" {b} |" if bare is not None else "")
                     + f" {got:g} | {got / per:.2f} | {got - m:+g} |")
    lines.append(f"| **total** | **{tot_min:g}** |" + (f" **{tot_bare:g}** |" if bare is not None else "")
                 + f" **{tot:g}** | **{tot / per:.2f}** | **{tot - tot_min:+g}** |")
    for op in sorted(seen & PERIODIC):
        got = statistics.median(c.get(op, 0) for c in counted)
        lines.append(f"| `{op}` (periodic, per account) | – |" + (" – |" if bare is not None else "")
                     + f" {got:g} | – | – |")
    return lines


def command_line(settings: Settings, scenario: str, n: int) -> str:
    """The exact command that reproduces this section."""
    parts = [f"SCENARIO={scenario}", f"N={n}", f"RUNS={settings.runs}"]
    per = SCENARIO_PARAMS[scenario] + ["TIMEOUT"]
    parts += [f"{k}={settings.given(k)}" for k in per if settings.given(k)]
    return "make bench-scale " + " ".join(parts)


def header(ctx: ReportContext, scenario: str, n: int, title: str, mach: Machine, started: str,
           runs: Sequence[RunRecord], extra: list[str]) -> list[str]:
    s = ctx.settings
    flags = (runs[0].operator_flags if runs[0].operator_flags is not None else "?") if runs else "?"
    return [
        f"<!-- bench-scale {s.section_key(scenario, n)} start -->",
        f"### {title}",
        "",
        f"- command: `{command_line(s, scenario, n)}`",
        f"- date: {started}; runs: {len(runs)}" + (" (median, min–max)" if len(runs) > 1 else ""),
        f"- machine: {mach.cpu}; {mach.mem}; kernel {mach.kernel}; "
        f"load average at start {mach.load} (shared machine)",
        f"- git: {mach.commit}",
        f"- operator: {'release build' if s.bin.parent.name == 'release' else f'`{s.bin}`'}, own ServiceAccount, "
        "leader election on, `RUST_LOG=warn`, "
        + (f"flags `{flags}`, the others" if flags else "every flag") + f" at the default ({ctx.op_defaults})",
        *extra,
        "",
    ]


def footer(settings: Settings, scenario: str, n: int) -> str:
    return f"<!-- bench-scale {settings.section_key(scenario, n)} end -->"


def common_notes(runs: Sequence[RunRecord]) -> list[str]:
    stalled = sorted({s for r in runs for s in (r.stalled_seen or [])})
    warns = [w for r in runs for w in (r.operator_warnings or [])]
    lines = [f"- Stalled conditions seen: {len(stalled)}" + (": " + "; ".join(stalled[:5]) if stalled else "."),
             f"- Operator WARN/ERROR log lines: {len(warns)}" + (f", first: `{warns[0][:300]}`" if warns else ".")]
    exits = [r.operator_exit for r in runs if r.operator_exit not in (0, None)]
    if exits:
        lines.append(f"- Operator exit codes other than 0 after SIGTERM: {exits}.")
    return lines


def ses_ops(calls: Sequence[Mapping[str, float]]) -> list[str]:
    return sorted({k for c in calls for k in c if k.startswith("sesv2:")})


# ---------------------------------------------------------------- steady


def api_rows(ctx: ReportContext, runs: Sequence[SteadyRun]) -> tuple[list[str], Optional[ApiSummary]]:
    """Operator requests by verb+resource (APF) beside all clients
    (apiserver_request_total) over the steady window, per minute (medians)."""
    ok = [r for r in runs if r.api is not None]
    if not ok:
        return ["(no steady window: the run did not converge)"], None
    fs_label = lambda fs: ctx.flow_schemas.get(fs, fs)  # noqa: E731
    per_min = lambda r, v: v * 60 / r.steady_window_s  # noqa: E731
    op_rows: dict[str, list[float]] = {}
    for r in ok:
        for fs, v in r.api.operator.items():
            op_rows.setdefault(fs_label(fs), []).append(per_min(r, v))
    all_rows: dict[str, list[float]] = {}
    for r in ok:
        for k, v in r.api.all.items():
            all_rows.setdefault(k, []).append(per_min(r, v))
    def m(vals: list[float]) -> float:  # noqa: E306
        return statistics.median(vals + [0.0] * (len(ok) - len(vals)))
    lines = ["| operator request (verb resource) | per minute | count in window |", "|---|---:|---:|"]
    total = 0.0
    for k in sorted(op_rows, key=lambda k: -m(op_rows[k])):
        total += m(op_rows[k])
        cnt = statistics.median(sum(v for fs, v in r.api.operator.items() if fs_label(fs) == k) for r in ok)
        lines.append(f"| `{k}` | {m(op_rows[k]):.1f} | {cnt:g} |")
    if not op_rows:
        lines.append("| (none) | 0 | 0 |")
    lines.append(f"| **total** | **{total:.1f}** ({total / 60:.2f}/s) | |")
    lines += ["", "All clients over the same window (`apiserver_request_total` delta; the benchmark sent nothing "
              "but the two `/metrics` reads, so this is the operator plus the apiserver's own loopback traffic):", "",
              "| verb resource | per minute |", "|---|---:|"]
    all_total = 0.0
    for k in sorted(all_rows, key=lambda k: -m(all_rows[k])):
        all_total += m(all_rows[k])
        lines.append(f"| `{k}` | {m(all_rows[k]):.1f} |")
    lines.append(f"| **total** | **{all_total:.1f}** |")
    status_writes = [sum(per_min(r, v) for fs, v in r.api.operator.items()
                         if fs.split(".")[1] in ("patch", "update") and "status" in ctx.flow_schemas.get(fs, ""))
                     for r in ok]
    return lines, ApiSummary(total_per_min=total, status_writes_per_min=statistics.median(status_writes))


def report_steady(ctx: ReportContext, n: int, runs: Sequence[SteadyRun], mach: Machine, started: str) -> str:
    s, mins = ctx.settings, ctx.minimums
    sub = "one SQS subscription each (shared queue)" if s.sqs else "no subscriptions"
    ok = [r for r in runs if r.ready_s is not None]
    ids = s.identities_for(n)
    api_lines, api = api_rows(ctx, runs)
    ses_floor = n * mins.ses_design
    design_pair, bare_pair = sum(mins.per_pair.values()), sum(mins.bare_per_pair.values())
    rv: Counter = Counter()
    for r in ok:
        rv.update(r.rv_changed or {})
    out = header(ctx, "steady", n, f"Steady: N = {n} sets + {n} destinations ({sub}) + {s.policies} ReputationPolicies"
                 + (f" + {ids} EmailIdentities" if ids else ""),
                 mach, started, runs, [f"- emulator unthrottled; settle {s.settle:g} s after all Ready, then a "
                                       f"{s.steady:g} s steady window"])
    out += [
        "| measure | value |",
        "|---|---:|",
        f"| `kubectl apply --server-side` of {2 * n + s.policies} objects, alone (s) | {med([r.apply_s for r in runs])} |",
        f"| start of apply → all {n} sets Ready (s) | {med([r.sets_ready_s for r in runs])} |",
        f"| start of apply → all {n} destinations Ready (s) | {med([r.dests_ready_s for r in runs])} |",
        f"| **start of apply → all {2 * n} objects Ready (s)** | **{med([r.ready_s for r in runs])}** |",
        f"| objects Ready per second | {med([2 * n / r.ready_s if r.ready_s else None for r in runs])} |",
        f"| operator CPU during convergence (s) | {med([r.cpu_converge_s for r in runs])} |",
        f"| AWS calls to converge, per pair (design minimum {design_pair}, bare minimum "
        f"{bare_pair}) | {med([per_object(r.converge_calls) / n for r in ok], 2)} |",
        f"| **AWS calls to converge ÷ bare minimum** | "
        f"**{med([per_object(r.converge_calls) / n / bare_pair for r in ok], 2)}** |",
        f"| ReputationPolicies Ready at the end of the window | {med([r.policies_ready for r in runs])} of {s.policies} |",
        *([f"| start of identities apply → all {ids} EmailIdentities Ready, verification included (s) | "
           f"{med([r.identities_ready_s for r in runs])} |",
           f"| AWS calls per EmailIdentity to converge (design minimum {sum(MIN_PER_IDENTITY.values())}) | "
           f"{med([per_object(r.identity_calls) / ids for r in ok if r.identity_calls], 2)} |"]
          if ids else []),
        f"| **peak RSS, VmHWM, after create + steady window (MiB)** | **{med([r.rss_peak_steady_mib for r in runs])}** |",
        f"| RSS right after convergence (MiB) | {med([r.rss_converged_mib for r in runs])} |",
        f"| **steady RSS, end of the steady window (MiB)** | **{med([r.rss_steady_mib for r in runs])}** |",
        f"| **operator API requests per minute, steady** | "
        f"**{api.total_per_min if api else float('nan'):.1f}** |",
        f"| **status writes per minute, steady** (PATCH/PUT on `*/status` by the operator) | "
        f"**{api.status_writes_per_min if api else float('nan'):.1f}** |",
        f"| objects whose resourceVersion changed in the window | {dict(rv) or 0} |",
        *(["| fields that changed on them (run 1; count of objects) | "
           + ", ".join(f"`{k}` {v}" for k, v in sorted(ok[0].changed_fields.items())[:12]) + " |"]
          if ok and ok[0].changed_fields else []),
        f"| AWS calls in the steady window | {med([sum(r.steady_calls.values()) for r in ok])}"
        + (f" (run 1: {', '.join(f'`{k}` {v}' for k, v in sorted(ok[0].steady_calls.items()))})"
           if ok and ok[0].steady_calls else "") + " |",
        f"| operator CPU in the steady window (s) | {med([r.cpu_steady_s for r in runs], 2)} |",
        f"| `kubectl apply` of a tag on {n} sets, alone (s) | {med([r.change_apply_s for r in runs])} |",
        f"| start of that apply → all {n} sets Ready (s) | {med([r.change_s for r in runs])} |",
        "| AWS calls for the tag change, per set (minimum 2) | "
        f"{med([per_object(r.change_calls) / n for r in ok if r.change_calls is not None], 2)} |",
        f"| operator CPU for the tag change (s) | {med([r.cpu_change_s for r in runs])} |",
        f"| peak RSS, VmHWM, at the end (incl. tag change) (MiB) | {med([r.rss_peak_mib for r in runs])} |",
        f"| operator startup → SesAccount Ready (s) | {med([r.startup_s for r in runs])} |",
        "",
        f"Operator API requests in the steady window (median per minute over runs; window "
        f"{med([r.steady_window_s for r in runs])} s):",
        "",
        *api_lines,
        "",
        f"AWS calls to converge ({n} fresh pairs; per pair = per set + its destination):",
        "",
        *(calls_table(ok, lambda r: r.converge_calls, mins.per_pair, n, "pair", mins.bare_per_pair)
          if ok else ["n/a"]),
        "",
        *([f"AWS calls for {ids} EmailIdentities (domain, MAIL FROM, default set; verified by the emulator):",
           "",
           *(calls_table([r for r in ok if r.identity_calls], lambda r: r.identity_calls, MIN_PER_IDENTITY, ids,
                         "identity") if any(r.identity_calls for r in ok) else ["n/a"]),
           ""] if ids else []),
        f"AWS calls for the tag change on {n} sets:",
        "",
        *(calls_table(ok, lambda r: r.change_calls, MIN_PER_TAG_CHANGE, n, "set") if ok else ["n/a"]),
        "",
        "Notes:",
        "",
    ]
    for r in runs:
        if r.ready_s is None:
            out.append(f"- run {r.run}: **did not converge within {s.timeout_for('steady', n):g} s**; not Ready: "
                       + "; ".join((r.not_ready or [])[:5]))
    out += flags_steady(n, runs, api)
    out.append(f"- With SES's real 1 call/s, the {mins.ses_design} SES calls per pair alone take at least "
               + (f"{ses_floor / 60:.0f} min" if ses_floor >= 120 else f"{ses_floor} s") + " for this N; this scenario measures the operator, not SES's limit "
               "(see the throttled scenario).")
    ready = med_num([r.ready_s for r in runs]) or 0.0
    # Objects converge over [0, ready] s and are drift-checked 300 s later; the window is
    # [ready + SETTLE, ready + SETTLE + STEADY].
    if ready + s.settle + s.steady <= 300:
        out.append("- The steady window ends before the first drift check (300 s after each object converged), so "
                   "it holds no drift traffic; a longer `STEADY` would include one round.")
    elif ready + s.settle <= 300 and s.settle + s.steady >= 300:
        out.append(f"- The {s.steady:g} s window covers the whole first drift round (each object is checked 300 s "
                   "after it converged), so its figures include the drift checks' API requests and AWS calls.")
    else:
        out.append(f"- The {s.steady:g} s window overlaps the first drift round (objects converged over {ready:.0f} s, "
                   "each is checked 300 s after it converged), so it includes part of the drift traffic.")
    out += common_notes(runs)
    out.append(footer(s, "steady", n))
    return "\n".join(out) + "\n"


def flags_steady(n: int, runs: Sequence[SteadyRun], api: Optional[ApiSummary]) -> list[str]:
    out = []
    steady, peak = med_num([r.rss_steady_mib for r in runs]), med_num([r.rss_peak_steady_mib for r in runs])
    if n == 1000 and steady is not None:
        out.append(f"- Memory budget (DESIGN.md: 40 MiB steady at 1,000 pairs; 64 MiB peak): steady {steady:.1f} MiB "
                   + ("**over**" if steady > 40 else "within") + f", peak {peak:.1f} MiB "
                   + ("**over**" if peak > 64 else "within") + ".")
    elif steady is not None:
        out.append(f"- Memory: steady {steady:.1f} MiB, peak {peak:.1f} MiB ({steady / n * 1000:.1f} MiB steady per "
                   "1,000 pairs; DESIGN.md's budget, 40 MiB steady / 64 MiB peak, is stated for 1,000 pairs).")
    if api:
        t = api.total_per_min
        out.append(f"- API requests in steady state: {t:.1f}/min ({t / 60:.2f}/s): "
                   + ("**more than 1 request/s**." if t > 60 else "under 1 request/s."))
        sw = api.status_writes_per_min
        out.append(f"- Status writes in steady state: {sw:.1f}/min" + (" (**expected 0**)." if sw else " (none)."))
    return out


# ---------------------------------------------------------------- throttled, shared


def report_converge(ctx: ReportContext, scenario: str, n: int, runs: Sequence[ConvergeRun], mach: Machine,
                    started: str) -> str:
    s, mins = ctx.settings, ctx.minimums
    emu_rps = s.emulator_rps(scenario)
    bare_floor = mins.ses_bare * n / 1.0  # 2 x N seconds at SES's 1 call/s
    bare_emu = mins.ses_bare * n / emu_rps
    ok = [r for r in runs if r.ready_s is not None]
    if scenario == "throttled":
        title = f"Throttled: N = {n} pairs, emulator SES at {emu_rps:g} call/s, operator at its default 1"
    else:
        title = f"Shared budget: N = {n} pairs, emulator SES at {emu_rps:g} call/s, operator configured at 1"
    out = header(ctx, scenario, n, title, mach, started, runs,
                 [f"- emulator: `POST /_emulator/faults {{\"ses_rps\": {emu_rps:g}}}` before the apply (burst 1, "
                  "429 TooManyRequestsException beyond it); timeout "
                  f"{s.timeout_for(scenario, n):g} s"])
    out += [
        "| measure | value |",
        "|---|---:|",
        f"| converged (runs) | {len(ok)} of {len(runs)} |",
        f"| `kubectl apply` of {2 * n} objects, alone (s) | {med([r.apply_s for r in runs])} |",
        f"| start of apply → all {n} sets Ready (s) | {med([r.sets_ready_s for r in runs])} |",
        f"| **start of apply → all {2 * n} objects Ready (s)** | **{med([r.ready_s for r in runs])}** |",
        f"| **÷ bare floor 2 × N s = {bare_floor:g} s** (2 SES creates per pair at 1 call/s) | "
        f"**{med([r.ready_s / bare_floor if r.ready_s else None for r in runs], 2)}** |",
    ]
    if emu_rps != 1:
        out.append(f"| ÷ bare floor at the emulator's {emu_rps:g} call/s = {bare_emu:g} s | "
                   f"{med([r.ready_s / bare_emu if r.ready_s else None for r in runs], 2)} |")
    out += [
        f"| SES calls accepted per pair (bare minimum {mins.ses_bare}, documented design minimum "
        f"{mins.ses_design}) | {med([r.ses_ok / n for r in runs], 2)} |",
        f"| SES calls refused with 429 | {med([sum(r.throttled.values()) for r in runs])} |",
        f"| SES calls sent per second | {med([r.ses_all / r.elapsed_s for r in runs], 2)} |",
        f"| SES calls accepted per second (emulator allows {emu_rps:g}) | "
        f"{med([r.ses_ok / r.elapsed_s for r in runs], 2)} |",
        f"| non-SES AWS calls per pair (bare minimum {mins.non_ses_bare}) | "
        f"{med([sum(v for k, v in r.calls.items() if not k.startswith('sesv2:') and k not in PERIODIC) / n for r in runs], 2)} |",
        f"| objects Ready at timeout (non-converged runs) | "
        f"{med([r.ready_at_timeout for r in runs if r.ready_s is None]) if len(ok) < len(runs) else '–'} |",
        f"| peak RSS, VmHWM (MiB) | {med([r.rss_peak_mib for r in runs])} |",
        "",
        "SES calls by operation (median over runs; accepted = sent − 429):",
        "",
        "| call | sent | 429 | accepted | bare minimum |",
        "|---|---:|---:|---:|---:|",
    ]
    for op in ses_ops([r.calls for r in runs]):
        sent = statistics.median(r.calls.get(op, 0) for r in runs)
        thr = statistics.median(r.throttled.get(op, 0) for r in runs)
        out.append(f"| `{op}` | {sent:g} | {thr:g} | {sent - thr:g} | {mins.bare_per_pair.get(op, 0) * n} |")
    out += ["", "Notes:", ""]
    for r in runs:
        if r.ready_s is None:
            out.append(f"- run {r.run}: **did not converge within {r.timeout_s:g} s** "
                       f"({r.ready_at_timeout} of {2 * n} Ready); e.g. " + "; ".join((r.not_ready or [])[:3]))
    out += common_notes(runs)
    out.append(footer(s, scenario, n))
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- spec-latency


def report_spec_latency(ctx: ReportContext, n: int, runs: Sequence[SpecLatencyRun], mach: Machine,
                        started: str) -> str:
    s = ctx.settings
    ok = [r for r in runs if r.latencies]
    out = header(ctx, "spec-latency", n,
                 f"Spec-change latency under saturating drift: N = {n} pairs, emulator SES at {s.spec_rps:g} call/s, "
                 f"`--drift-interval-seconds {s.drift:g}`", mach, started, runs,
                 [f"- after all Ready, a wait (at most `WARM`={s.warm:g} s) until drift checks are under way, "
                  f"{3 * s.drift:g} s to measure the SES rate they use, then {s.changes} "
                  "changes one at a time, each toggling `spec.delivery.tlsPolicy` (REQUIRE/OPTIONAL) on a different "
                  "set with a merge patch; latency = patch sent → that set Ready for its new generation "
                  "(polled every 0.1 s)"])

    def per_run(f: Callable[[list[float]], float]) -> list[float | None]:
        """f of each run's latencies that did not time out (None: all did)."""
        return [f([x for x in r.latencies if x is not None]) if any(x is not None for x in r.latencies) else None
                for r in ok]

    out += [
        "| measure | value |",
        "|---|---:|",
        f"| start of apply → all {2 * n} objects Ready, with drift running (s) | {med([r.ready_s for r in runs])} |",
        f"| all Ready → drift checks under way (s) | {med([r.drift_started_s for r in ok])} |",
        f"| operator's effective drift period then (`ses_reputation_drift_period_seconds`, s) | "
        f"{med([r.drift_period_s for r in ok])} |",
        f"| changes Ready / made | {med([sum(x is not None for x in r.latencies) for r in ok])} of {s.changes} |",
        f"| **latency p50 (s)** | **{med(per_run(lambda v: pct(v, 0.5)), 2)}** |",
        f"| **latency p95 (s)** | **{med(per_run(lambda v: pct(v, 0.95)), 2)}** |",
        f"| latency min / max (s) | {med(per_run(min), 2)} / {med(per_run(max), 2)} |",
        f"| SES calls accepted per second before the changes (drift alone; emulator allows {s.spec_rps:g}) | "
        f"{med([r.pre_ses_ok / r.pre_window_s for r in ok], 2)} |",
        f"| SES calls sent per second before the changes (429s included) | "
        f"{med([r.pre_ses_all / r.pre_window_s for r in ok], 2)} |",
        f"| SES calls accepted per second during the changes | "
        f"{med([r.change_ses_ok / r.changes_window_s for r in ok], 2)} |",
        f"| peak RSS, VmHWM (MiB) | {med([r.rss_peak_mib for r in runs])} |",
        "",
        "SES calls before the changes (drift only) and during them (median counts):",
        "",
        "| call | before: sent | before: 429 | during: sent | during: 429 |",
        "|---|---:|---:|---:|---:|",
    ]
    for op in ses_ops([c for r in ok for c in (r.pre_calls, r.change_calls)]):
        def m(calls: Callable[[SpecLatencyRun], Mapping[str, float]]) -> float:
            return statistics.median(calls(r).get(op, 0) for r in ok)
        out.append(f"| `{op}` | {m(lambda r: r.pre_calls):g} | {m(lambda r: r.pre_throttled):g} | "
                   f"{m(lambda r: r.change_calls):g} | {m(lambda r: r.change_throttled):g} |")
    if ok:
        out += ["", "Latencies of run 1 (s): " + ", ".join("timeout" if x is None else f"{x:.2f}"
                                                         for x in ok[0].latencies)]
    out += ["", "Notes:", ""]
    for r in runs:
        if r.ready_s is None:
            out.append(f"- run {r.run}: **the {2 * n} objects did not converge**; " + "; ".join((r.not_ready or [])[:3]))
    out.append("- A change needs 2 SES calls (GetConfigurationSet + PutConfigurationSetDeliveryOptions); at 1 call/s "
               "with an idle budget that is about 2 s. Before the changes only drift checks (and the account's "
               "periodic GetAccount) use SES: with saturated drift, their accepted rate sits at the share of the "
               "budget drift may use" + (f" (`--drift-budget-share`, default {ctx.drift_share})" if ctx.drift_share else "")
               + f" × {s.spec_rps:g} call/s.")
    out += common_notes(runs)
    out.append(footer(s, "spec-latency", n))
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- recovery


def report_recovery(ctx: ReportContext, n: int, runs: Sequence[RecoveryRun], mach: Machine, started: str) -> str:
    s, mins = ctx.settings, ctx.minimums
    floors = [max(0, mins.ses_bare * n - r.ses_ok_at_lift) for r in runs]
    out = header(ctx, "recovery", n, f"Recovery: N = {n} pairs created under {s.recovery_rps:g} SES call/s for "
                 f"{s.hold:g} s, then throttling lifted", mach, started, runs,
                 [f"- emulator `ses_rps` {s.recovery_rps:g} from before the apply until {s.hold:g} s after its start, "
                  "then `null` (unthrottled); the operator stays at its default 1 call/s, so after the lift its own "
                  "bucket is the limit"])
    out += [
        "| measure | value |",
        "|---|---:|",
        f"| objects Ready when throttling ended | {med([r.ready_at_lift for r in runs])} of {2 * n} |",
        f"| SES calls accepted / refused (429) while throttled | {med([r.ses_ok_at_lift for r in runs])} / "
        f"{med([sum(r.lift_throttled.values()) for r in runs])} |",
        f"| **end of throttling → all Ready (s)** | **{med([r.recovery_s for r in runs])}** |",
        f"| bare floor after the lift: SES creates left ({mins.ses_bare} per pair − calls accepted while "
        f"throttled) at the operator's 1 call/s (s) | {med(floors)} |",
        f"| **ratio to that floor** | "
        f"**{med([r.recovery_s / f if r.recovery_s and f else None for r, f in zip(runs, floors)], 2)}** |",
        f"| ratio to the SES calls made after the lift, at 1 call/s | "
        f"{med([r.recovery_s / r.after_ses_ok if r.recovery_s and r.after_ses_ok else None for r in runs], 2)} |",
        f"| start of apply → all Ready (s) | {med([r.total_s for r in runs])} |",
        f"| SES calls after the lift (all accepted unless 429 > 0) / 429s | {med([r.after_ses_ok for r in runs])} / "
        f"{med([sum(r.after_throttled.values()) for r in runs])} |",
        f"| peak RSS, VmHWM (MiB) | {med([r.rss_peak_mib for r in runs])} |",
        "",
        "Notes:",
        "",
    ]
    for r in runs:
        if r.recovery_s is None:
            out.append(f"- run {r.run}: **not all Ready within {s.timeout_for('recovery', n) - s.hold:g} s of the lift**; "
                       + "; ".join((r.not_ready or [])[:3]))
    out += common_notes(runs)
    out.append(footer(s, "recovery", n))
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- output


def render(ctx: ReportContext, scenario: str, n: int, runs: Sequence[RunRecord], mach: Machine, started: str) -> str:
    if scenario == "steady":
        return report_steady(ctx, n, runs, mach, started)
    if scenario in ("throttled", "shared"):
        return report_converge(ctx, scenario, n, runs, mach, started)
    if scenario == "spec-latency":
        return report_spec_latency(ctx, n, runs, mach, started)
    return report_recovery(ctx, n, runs, mach, started)


def update_doc(doc: Path, section: str, start: str, end: str) -> None:
    """Replaces the section between `start` and `end` in `doc`, or adds it
    last among the current results."""
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + section.rstrip("\n") + rest.split(end, 1)[1]
    else:
        anchor = "<!-- bench-scale results end -->"
        if anchor in text:  # a new section goes last among the current results
            head, rest = text.split(anchor, 1)
            text = head.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n\n" + anchor + rest
        else:
            text = text.rstrip("\n") + "\n\n" + section
    doc.parent.mkdir(exist_ok=True)
    doc.write_text(text)


def write_section(ctx: ReportContext, scenario: str, n: int, section: str) -> None:
    key = ctx.settings.section_key(scenario, n)
    update_doc(ctx.settings.doc, section, f"<!-- bench-scale {key} start -->", f"<!-- bench-scale {key} end -->")
