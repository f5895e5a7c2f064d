"""Scale benchmark: N ConfigurationSets + N EventDestinations (each with an
operator-owned SNS topic) applied at once against the test ground.

Run by tools/bench/scale.sh inside `tools/ground.sh run`, which provides
KUBECONFIG, SRO_AWS_ENDPOINT and the AWS test credentials. Parameters (env):
N (200), SES_RPS (1000: the operator's SES token bucket is effectively off),
RUNS (1), IDLE (10 s), TIMEOUT (900 s per phase), SQS (0; 1 adds one SQS
subscription per topic to a shared queue).

Per run: reset the emulator, start the operator, apply the 2N objects with
one server-side apply, wait until all are Ready for their generation, count
the AWS calls, stay idle for IDLE s, then add a tag to every set and wait
again. Prints a Markdown report and replaces its section (keyed by N and
SQS) in docs/benchmarks.md.
"""

from __future__ import annotations

import ctypes
import datetime
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

import yaml  # in the emulator's venv (moto needs it)

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "target/release/ses-reputation-operator"
DOC = ROOT / "docs/benchmarks.md"
API = "ses.reputation.io/v1alpha1"

N = int(os.environ.get("N", "200"))
SES_RPS = os.environ.get("SES_RPS", "1000")
RUNS = int(os.environ.get("RUNS", "1"))
IDLE = float(os.environ.get("IDLE", "10"))
TIMEOUT = float(os.environ.get("TIMEOUT", "900"))
SQS = os.environ.get("SQS", "0") == "1"
ENDPOINT = os.environ["SRO_AWS_ENDPOINT"]
(ROOT / "target").mkdir(exist_ok=True)
WORK = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=ROOT / "target"))

# What the operator must call, per object, to create a fresh object
# (src/controller/*.rs, src/aws/*.rs): the "design minimum".
MIN_PER_SET = {"sesv2:GetConfigurationSet": 1, "sesv2:CreateConfigurationSet": 1}
MIN_PER_DEST = {
    "sns:GetTopicAttributes": 1,  # NotFound: the topic does not exist yet
    "sns:CreateTopic": 1,  # bare name + ownership tag
    "sns:SetTopicAttributes": 2,  # Policy, SignatureVersion (DisplayName/KMS empty: no call)
    "sns:ListSubscriptionsByTopic": 2 if SQS else 1,  # diff; re-read after Subscribe
    "sesv2:GetConfigurationSetEventDestinations": 1,
    "sesv2:CreateConfigurationSetEventDestination": 1,
    **({"sns:Subscribe": 1} if SQS else {}),
}
MIN_PER_TAG_CHANGE = {"sesv2:GetConfigurationSet": 1, "sesv2:TagResource": 1}
# Per account and interval, not per object: listed apart from the per-object totals.
PERIODIC = {"sts:GetCallerIdentity", "sesv2:GetAccount", "cloudwatch:GetMetricData"}


def log(msg: str) -> None:
    print(f">> {msg}", file=sys.stderr, flush=True)


def sh(*args: str, stdin: str | None = None) -> str:
    res = subprocess.run(args, input=stdin, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {res.stderr.strip()}")
    return res.stdout


def kubectl(*args: str, stdin: str | None = None) -> str:
    return sh("kubectl", *args, stdin=stdin)


def emulator(method: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(ENDPOINT + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        raw = resp.read()
    return json.loads(raw) if path.startswith("/_emulator") and raw else {}


def calls() -> Counter:
    """AWS calls since the last reset, by service:Operation (faults included)."""
    return Counter(emulator("GET", "/_emulator/calls")["calls"])


def reset_calls() -> None:
    emulator("POST", "/_emulator/calls/reset")


def proc_status(pid: int) -> dict[str, float]:
    """VmHWM / VmRSS in MiB and CPU seconds (user+system) of a process."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(value.split()[0]) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    out["cpu"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def is_ready(obj: dict) -> bool:
    gen = obj["metadata"].get("generation")
    status = obj.get("status") or {}
    for c in status.get("conditions") or []:
        if c["type"] == "Ready":
            return (c["status"] == "True" and c.get("observedGeneration", gen) == gen
                    and status.get("observedGeneration", gen) == gen)
    return False


def summary(obj: dict) -> str:
    conds = (obj.get("status") or {}).get("conditions") or []
    parts = [f"{c['type']}={c['status']}({c.get('reason', '')}: {c.get('message', '')})" for c in conds]
    return f"{obj['kind']}/{obj['metadata']['name']} gen={obj['metadata'].get('generation')} " + (
        "; ".join(parts) or "no conditions")


def wait_ready(ns: str, what: str, kinds: str, expect: int, stalled: set[str],
               start: float) -> tuple[float | None, dict]:
    """Polls every 0.5 s until `expect` objects of `kinds` are Ready for their
    generation. Returns (seconds since `start`, when each kind was all Ready)."""
    all_ready_at: dict[str, float] = {}
    last_log = time.monotonic()
    while True:
        items = json.loads(kubectl("get", kinds, "-n", ns, "-o", "json"))["items"]
        now = time.monotonic() - start
        by_kind: Counter = Counter()
        not_ready = []
        for obj in items:
            for c in (obj.get("status") or {}).get("conditions") or []:
                if c["type"] == "Stalled" and c["status"] == "True":
                    stalled.add(summary(obj))
            if is_ready(obj):
                by_kind[obj["kind"]] += 1
            else:
                not_ready.append(obj)
        for kind, count in by_kind.items():
            if count == N and kind not in all_ready_at:
                all_ready_at[kind] = now
        if len(items) == expect and not not_ready:
            return now, all_ready_at
        if now > TIMEOUT:
            log(f"{what}: TIMEOUT after {now:.0f}s; {len(not_ready)} not Ready, e.g.:")
            for obj in not_ready[:20]:
                log("  " + summary(obj))
            return None, {"not_ready": [summary(o) for o in not_ready]}
        if time.monotonic() - last_log > 10:
            log(f"{what}: {now:.0f}s, Ready {dict(by_kind)} of {len(items)}")
            last_log = time.monotonic()
        time.sleep(0.5)


def manifests(ns: str, queue_arn: str | None, tag: str | None, sets_only: bool = False) -> str:
    docs = []
    for i in range(N):
        spec: dict = {"name": f"bench-cs-{i}"}
        if tag:
            spec["tags"] = {"bench": tag}
        docs.append({"apiVersion": API, "kind": "ConfigurationSet",
                     "metadata": {"name": f"cs-{i}", "namespace": ns}, "spec": spec})
        if sets_only:
            continue
        topic = {"subscriptions": [{"protocol": "sqs", "endpoint": queue_arn}]} if queue_arn else {}
        docs.append({"apiVersion": API, "kind": "EventDestination",
                     "metadata": {"name": f"ed-{i}", "namespace": ns},
                     "spec": {"configurationSetRef": {"name": f"cs-{i}"}, "sns": {"topic": topic}}})
    return yaml.safe_dump_all(docs, sort_keys=False)


def apply(path: Path, text: str) -> float:
    path.write_text(text)
    start = time.monotonic()
    kubectl("apply", "--server-side", "--field-manager", "bench", "-f", str(path))
    return time.monotonic() - start


def die_with_parent() -> None:
    """The operator gets SIGTERM if this script dies, however it dies."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Operator:
    def __init__(self, ns: str, run: int):
        self.log_path = WORK / f"operator-{run}.log"
        env = {**os.environ, "RUST_LOG": "warn"}
        args = [str(BIN), "run", "--namespace", ns, "--default-account", "default",
                "--ses-calls-per-second", SES_RPS, "--cluster-name", "bench"]
        if "--metrics-addr" in sh(str(BIN), "run", "--help"):
            args += ["--metrics-addr", "127.0.0.1:0"]  # no fixed port on a shared machine
        self.proc = subprocess.Popen(args, env=env, stdout=self.log_path.open("w"),
                                     stderr=subprocess.STDOUT, preexec_fn=die_with_parent)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def warnings(self) -> list[str]:
        return [line for line in self.log_path.read_text(errors="replace").splitlines()
                if " WARN " in line or " ERROR " in line]


def one_run(run: int) -> dict:
    r: dict = {"run": run}
    emulator("POST", "/moto-api/reset")  # fresh AWS state and counters
    queue_arn = None
    if SQS:
        import boto3
        sqs = boto3.client("sqs", endpoint_url=ENDPOINT, region_name="us-east-1")
        sqs.create_queue(QueueName="bench-events")
        queue_arn = "arn:aws:sqs:us-east-1:123456789012:bench-events"
    ns = f"bench-{run}-{int(time.time())}"
    kubectl("create", "namespace", ns)
    # The account is recreated so its Ready condition is fresh for this operator.
    kubectl("delete", "sesacct", "default", "--ignore-not-found", "--wait=false")
    kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(
        {"apiVersion": API, "kind": "SesAccount", "metadata": {"name": "default"}, "spec": {"region": "us-east-1"}}))
    reset_calls()
    op = Operator(ns, run)
    try:
        start = time.monotonic()
        while True:  # wait for the operator to be up: the SesAccount Ready
            acct = json.loads(kubectl("get", "sesacct", "default", "-o", "json"))
            if is_ready(acct):
                break
            if op.proc.poll() is not None or time.monotonic() - start > 120:
                raise RuntimeError(f"operator not up; log:\n{op.log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        r["startup_s"] = time.monotonic() - start
        r["startup_calls"] = calls()
        reset_calls()

        # Phase 1: 2N fresh objects.
        stalled: set[str] = set()
        cpu0 = proc_status(op.proc.pid)["cpu"]
        t0 = time.monotonic()  # the clock runs from the start of the apply
        r["apply_s"] = apply(WORK / "objects.yaml", manifests(ns, queue_arn, None))
        log(f"run {run}: applied {2 * N} objects in {r['apply_s']:.1f}s")
        secs, at = wait_ready(ns, f"run {run} create", "sescs,sesed", 2 * N, stalled, t0)
        r["converge_calls"] = calls()
        r["ready_s"] = secs
        r["tail_s"] = secs and secs - r["apply_s"]
        if secs is None:
            r["not_ready"] = at["not_ready"]
        else:
            r["sets_ready_s"] = at.get("ConfigurationSet")
            r["dests_ready_s"] = at.get("EventDestination")
        st = proc_status(op.proc.pid)
        r["cpu_converge_s"] = st["cpu"] - cpu0
        r["rss_converged_mib"] = st["VmRSS"]

        # Phase 2: idle.
        reset_calls()
        time.sleep(IDLE)
        r["idle_calls"] = calls()
        r["rss_steady_mib"] = proc_status(op.proc.pid)["VmRSS"]

        # Phase 3: a spec change (a tag) on every set.
        reset_calls()
        cpu0 = proc_status(op.proc.pid)["cpu"]
        t0 = time.monotonic()
        r["change_apply_s"] = apply(WORK / "sets-tagged.yaml", manifests(ns, None, f"run{run}", sets_only=True))
        secs, at = wait_ready(ns, f"run {run} tag change", "sescs", N, stalled, t0)
        r["change_s"] = secs
        r["change_calls"] = calls()
        r["cpu_change_s"] = proc_status(op.proc.pid)["cpu"] - cpu0
        if secs is None:
            r["change_not_ready"] = at["not_ready"]
        r["stalled_seen"] = sorted(stalled)
        st = proc_status(op.proc.pid)
        r["rss_peak_mib"], r["rss_end_mib"] = st["VmHWM"], st["VmRSS"]
    finally:
        r["operator_exit"] = op.stop()
    r["operator_warnings"] = op.warnings()
    return r


# ---------------------------------------------------------------- report


def med(values: list) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "n/a"
    fmt = (lambda v: f"{v:.1f}") if any(isinstance(v, float) for v in vals) else str
    if len(values) == 1:
        return fmt(vals[0])
    spread = f" ({fmt(min(vals))}–{fmt(max(vals))})"
    missing = f", {len(values) - len(vals)} runs failed" if len(vals) < len(values) else ""
    return fmt(statistics.median(vals)) + spread + missing


def calls_table(runs: list[dict], key: str, minimum: dict[str, int], per: int, per_label: str) -> list[str]:
    seen = set(minimum) | {op for r in runs for op in r[key]}
    lines = [f"| call | design minimum | measured | per {per_label} | excess |", "|---|---:|---:|---:|---:|"]
    tot_min = tot = 0.0
    for op in sorted(seen - PERIODIC):
        m = minimum.get(op, 0) * per
        got = statistics.median(r[key].get(op, 0) for r in runs)
        tot_min, tot = tot_min + m, tot + got
        lines.append(f"| `{op}` | {m} | {got:g} | {got / per:.2f} | {got - m:+g} |")
    lines.append(f"| **total per object** | **{tot_min:g}** | **{tot:g}** | **{tot / per:.2f}** | **{tot - tot_min:+g}** |")
    for op in sorted(seen & PERIODIC):
        got = statistics.median(r[key].get(op, 0) for r in runs)
        lines.append(f"| `{op}` (periodic, per account) | – | {got:g} | – | – |")
    return lines


def machine() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown")
    mem = sh("free", "-g").splitlines()[1].split()
    dirty = sh("git", "-C", str(ROOT), "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock").strip()
    commit = sh("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD").strip()
    return {
        "cpu": f"{os.cpu_count()} × {cpu}",
        "mem": f"{mem[1]} GiB total, {mem[6]} GiB available (`free -g`)",
        "kernel": platform.release(),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "commit": commit + (" + uncommitted changes under src/ (binary built from the working tree)" if dirty else ""),
    }


def report(runs: list[dict], mach: dict[str, str], started: str) -> str:
    col = lambda k: [r.get(k) for r in runs]  # noqa: E731
    sub = "one SQS subscription each (shared queue)" if SQS else "no subscriptions"
    cmd = f"make bench-scale N={N} SES_RPS={SES_RPS} RUNS={RUNS}" + (" SQS=1" if SQS else "")
    out = [
        f"<!-- bench-scale N={N} SQS={int(SQS)} start -->",
        f"## N = {N} sets + {N} destinations ({sub})",
        "",
        f"- command: `{cmd}` (IDLE={IDLE:g}s)",
        f"- date: {started}; runs: {RUNS}" + (" (median, min–max)" if RUNS > 1 else ""),
        f"- machine: {mach['cpu']}; {mach['mem']}; kernel {mach['kernel']}; load average at start {mach['load']} (shared machine)",
        f"- git: {mach['commit']}",
        f"- operator: release build, `--ses-calls-per-second {SES_RPS}`, default drift interval (300 s), `RUST_LOG=warn`; emulator unthrottled",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| `kubectl apply --server-side` of {2 * N} objects, alone (s) | {med(col('apply_s'))} |",
        f"| start of apply → all {N} sets Ready (s) | {med(col('sets_ready_s'))} |",
        f"| start of apply → all {N} destinations Ready (s) | {med(col('dests_ready_s'))} |",
        f"| **start of apply → all {2 * N} objects Ready (s)** | **{med(col('ready_s'))}** |",
        f"| end of apply → all Ready (s) | {med(col('tail_s'))} |",
        f"| objects Ready per second | {med([2 * N / r['ready_s'] if r.get('ready_s') else None for r in runs])} |",
        f"| operator CPU during convergence (s) | {med(col('cpu_converge_s'))} |",
        f"| AWS calls to converge | {med([sum(r['converge_calls'].values()) for r in runs])} |",
        f"| AWS calls while idle for {IDLE:g} s | {med([sum(r['idle_calls'].values()) for r in runs])} |",
        f"| `kubectl apply` of the tag on {N} sets, alone (s) | {med(col('change_apply_s'))} |",
        f"| start of that apply → all {N} sets Ready (s) | {med(col('change_s'))} |",
        f"| AWS calls for the tag change | {med([sum(r['change_calls'].values()) for r in runs])} |",
        f"| operator CPU for the tag change (s) | {med(col('cpu_change_s'))} |",
        f"| peak RSS, VmHWM (MiB) | {med(col('rss_peak_mib'))} |",
        f"| RSS right after convergence (MiB) | {med(col('rss_converged_mib'))} |",
        f"| steady RSS after {IDLE:g} s idle (MiB) | {med(col('rss_steady_mib'))} |",
        f"| operator startup → SesAccount Ready (s) | {med(col('startup_s'))} |",
        "",
        f"AWS calls to converge ({N} fresh sets and destinations; per pair = per set + its destination):",
        "",
        *calls_table(runs, "converge_calls", Counter(MIN_PER_SET) + Counter(MIN_PER_DEST), N, "pair"),
        "",
        f"AWS calls for the tag change on {N} sets:",
        "",
        *calls_table(runs, "change_calls", MIN_PER_TAG_CHANGE, N, "set"),
        "",
        "Operator startup (SesAccount): "
        + ", ".join(f"`{k}` {v}" for k, v in sorted(runs[0]["startup_calls"].items()))
        + f"; while idle: {dict(runs[0]['idle_calls']) or 'none'}.",
        "",
        "Interpretation:",
        "",
        *interpretation(runs),
        f"<!-- bench-scale N={N} SQS={int(SQS)} end -->",
    ]
    return "\n".join(out) + "\n"


def per_object(c: Counter) -> int:
    return sum(v for k, v in c.items() if k not in PERIODIC)


def interpretation(runs: list[dict]) -> list[str]:
    lines = []
    ok = [r for r in runs if r.get("ready_s") is not None]
    if len(ok) < len(runs):
        for r in runs:
            if r.get("ready_s") is None:
                lines.append(f"- run {r['run']}: **did not converge within {TIMEOUT:g} s**; not Ready: "
                             + "; ".join(r["not_ready"][:10]))
    if ok:
        t = statistics.median(r["ready_s"] for r in ok)
        a = statistics.median(r["apply_s"] for r in ok)
        tail = statistics.median(r["tail_s"] for r in ok)
        lines.append(f"- {2 * N} objects were Ready {t:.1f} s (median) after the apply started, {2 * N / t:.1f} objects/s. "
                     f"The apply alone took {a:.1f} s (kubectl sends one request per object, and the API server "
                     f"shares the 2 cores with the operator, the emulator and this poller); the last object was Ready "
                     f"{tail:.1f} s after it returned (0.5 s polling granularity), so the operator keeps pace with "
                     "the apply and the API server, not the operator, sets the pace here.")
    minimum = sum(MIN_PER_SET.values()) + sum(MIN_PER_DEST.values())
    got = statistics.median(per_object(r["converge_calls"]) for r in runs) / N
    lines.append(f"- {got:.2f} AWS calls per set+destination against a design minimum of {minimum} "
                 f"(ratio {got / minimum:.2f})" + (": no excess." if abs(got - minimum) < 0.005 else
                                                   ": see the excess column for which calls were repeated."))
    idle = statistics.median(sum(r["idle_calls"].values()) for r in runs)
    idle_obj = statistics.median(per_object(r["idle_calls"]) for r in runs)
    lines.append(f"- Idle: {idle:g} AWS calls in {IDLE:g} s, {idle_obj:g} of them for objects (expected 0 before the "
                 "300 s drift interval; the rate poller's periodic `GetMetricData`, if it ran, is not per object).")
    chg = statistics.median(per_object(r["change_calls"]) for r in runs) / N
    lines.append(f"- Tag change: {chg:.2f} calls per set against a minimum of {sum(MIN_PER_TAG_CHANGE.values())} "
                 "(GetConfigurationSet + TagResource); destinations make no AWS calls for a change to their set.")
    stalled = sorted({s for r in runs for s in r.get("stalled_seen", [])})
    lines.append(f"- Stalled conditions seen: {len(stalled)}" + (": " + "; ".join(stalled[:10]) if stalled else "."))
    warns = [w for r in runs for w in r["operator_warnings"]]
    lines.append(f"- Operator WARN/ERROR log lines: {len(warns)}" + (f", first: `{warns[0][:300]}`" if warns else "."))
    ses = sum(v for k, v in (Counter(MIN_PER_SET) + Counter(MIN_PER_DEST)).items() if k.startswith("sesv2:"))
    lines.append(f"- With SES's real limit of 1 call/s (the default `--ses-calls-per-second 1`), the {ses} SES calls "
                 f"per pair alone would take at least {N * ses / 60:.0f} min for this N; this benchmark measures the "
                 "operator, not SES's limit.")
    return lines


def update_doc(section: str) -> None:
    start, end = f"<!-- bench-scale N={N} SQS={int(SQS)} start -->", f"<!-- bench-scale N={N} SQS={int(SQS)} end -->"
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + section.rstrip("\n") + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text)


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    mach = machine()
    kubectl("apply", "--server-side", "-f", "-", stdin=sh(str(BIN), "crds"))
    kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    runs = []
    for run in range(1, RUNS + 1):
        log(f"run {run}/{RUNS}: N={N}")
        r = one_run(run)
        (WORK / f"run-{run}.json").write_text(json.dumps(r, indent=1, default=str))
        log(f"run {run}: ready in {r.get('ready_s')}s, {sum(r['converge_calls'].values())} calls; raw: {WORK}/run-{run}.json")
        runs.append(r)
    section = report(runs, mach, started)
    print(section)
    update_doc(section)
    log(f"wrote {DOC.relative_to(ROOT)}; raw results and operator logs in {WORK}")
    return 0 if all(r.get("ready_s") is not None and r.get("change_s") is not None for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
