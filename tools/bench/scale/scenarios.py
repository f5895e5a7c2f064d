"""The scenarios: what each run does, phase by phase, and what it records
(steady, throttled/shared, spec-latency, recovery)."""

from __future__ import annotations

import time
from collections import Counter

from .cluster import (ACCOUNT_PATH, apply, count_ready, crd_path, is_ready, list_objects, log, ready_for,
                      summary, wait_ready)
from .fixture import Bench, Fixture
from .measure import ApiDelta, api_snapshot, flat_diff, op_gauge, proc_status
from .results import ChangedExample, ConvergeRun, RecoveryRun, RunRecord, SpecLatencyRun, SteadyRun
from .workload import identity_domain, identity_manifests, manifests

PAIRS = ["configurationsets", "eventdestinations"]
DRIFT_SES = ("sesv2:GetConfigurationSet", "sesv2:GetConfigurationSetEventDestinations")


def steady(bench: Bench, run: int, n: int) -> SteadyRun:
    s, admin, emu, work = bench.settings, bench.admin, bench.emulator, bench.work
    timeout = s.timeout_for("steady", n)
    r = SteadyRun(run=run)
    fx = Fixture(bench, "steady", r, ["--ses-calls-per-second", s.ses_rps])
    try:
        queue_arn = None
        if s.sqs:
            import boto3
            sqs = boto3.client("sqs", endpoint_url=s.endpoint, region_name="us-east-1")
            sqs.create_queue(QueueName="bench-events")
            queue_arn = "arn:aws:sqs:us-east-1:123456789012:bench-events"
            emu.reset_calls()
        # Phase 1: N fresh pairs and the ReputationPolicies, one apply.
        stalled: set[str] = set()
        cpu0 = proc_status(fx.pid()).cpu
        t0 = time.monotonic()  # the clock runs from the start of the apply
        r.apply_s = apply(work / "objects.yaml", manifests(fx.ns, n, queue_arn, policies=s.policies))
        log(f"steady run {run}: applied {2 * n + s.policies} objects in {r.apply_s:.1f}s")
        got = wait_ready(admin, fx.ns, f"steady run {run} create", PAIRS, 2 * n, n, stalled, t0, timeout)
        r.converge_calls = emu.calls().calls
        r.ready_s = got.seconds
        r.tail_s = got.seconds and got.seconds - r.apply_s
        if got.seconds is None:
            r.not_ready = got.not_ready
            return r
        r.sets_ready_s = got.all_ready_at.get("ConfigurationSet")
        r.dests_ready_s = got.all_ready_at.get("EventDestination")
        st = proc_status(fx.pid())
        r.cpu_converge_s = st.cpu - cpu0
        r.rss_converged_mib = st.rss

        # Phase 1b: EmailIdentities using the sets as default, verified as
        # soon as they exist; counted apart so the per-pair figures stay clean.
        ids = s.identities_for(n)
        r.identities = ids
        if ids:
            emu.reset_calls()
            t0 = time.monotonic()
            apply(work / "identities.yaml", identity_manifests(fx.ns, ids))
            r.identities_verified = emu.verify_identities([identity_domain(i) for i in range(ids)], t0 + timeout)
            got = wait_ready(admin, fx.ns, f"steady run {run} identities", ["emailidentities"], ids, ids,
                             stalled, t0, timeout)
            r.identities_ready_s = got.seconds
            r.identity_calls = emu.calls().calls
            if got.seconds is None:
                r.identities_not_ready = got.not_ready

        # Phase 2: settle, then a steady window in which this script sends the
        # API server nothing but its two /metrics reads.
        time.sleep(s.settle)
        plurals = PAIRS + ["reputationpolicies", "emailidentities"]
        objs_before = {(o["kind"], o["metadata"]["name"]): o for o in list_objects(admin, fx.ns, plurals)}
        rv_before = {k: o["metadata"]["resourceVersion"] for k, o in objs_before.items()}
        acct_before = admin.get(ACCOUNT_PATH)
        acct_rv = acct_before["metadata"]["resourceVersion"]
        emu.reset_calls()
        cpu0 = proc_status(fx.pid()).cpu
        api0 = api_snapshot(admin)
        w0 = time.monotonic()
        time.sleep(s.steady)
        api1 = api_snapshot(admin)
        r.steady_window_s = time.monotonic() - w0
        r.steady_calls = emu.calls().calls
        st = proc_status(fx.pid())
        r.cpu_steady_s = st.cpu - cpu0
        r.rss_steady_mib, r.rss_peak_steady_mib = st.rss, st.hwm
        after = list_objects(admin, fx.ns, plurals)

        def changed_rv(o: dict) -> bool:
            return rv_before.get((o["kind"], o["metadata"]["name"])) != o["metadata"]["resourceVersion"]

        r.rv_changed = dict(Counter(o["kind"] for o in after if changed_rv(o)))
        acct_after = admin.get(ACCOUNT_PATH)
        changed = [(objs_before.get((o["kind"], o["metadata"]["name"])), o) for o in after if changed_rv(o)]
        if acct_after["metadata"]["resourceVersion"] != acct_rv:
            r.rv_changed["SesAccount"] = 1
            changed.append((acct_before, acct_after))
        # What changed, for a few of them (status fields, flattened).
        r.changed_examples = [ChangedExample(object=f"{(new.get('kind') or 'SesAccount')}/{new['metadata']['name']}",
                                             diff=flat_diff(old or {}, new)) for old, new in changed[:8]]
        r.changed_fields = dict(Counter(k for old, new in changed for k in flat_diff(old or {}, new)))
        r.policies_ready = sum(1 for o in after if o["kind"] == "ReputationPolicy" and is_ready(o))
        r.api = ApiDelta.between(api0, api1)

        # Phase 3: a spec change (a tag) on every set.
        emu.reset_calls()
        cpu0 = proc_status(fx.pid()).cpu
        t0 = time.monotonic()
        r.change_apply_s = apply(work / "sets-tagged.yaml",
                                 manifests(fx.ns, n, tag=f"run{run}", sets_only=True, policies=s.policies))
        got = wait_ready(admin, fx.ns, f"steady run {run} tag change", ["configurationsets"], n, n,
                         stalled, t0, timeout)
        r.change_s = got.seconds
        r.change_calls = emu.calls().calls
        r.cpu_change_s = proc_status(fx.pid()).cpu - cpu0
        if got.seconds is None:
            r.change_not_ready = got.not_ready
        r.stalled_seen = sorted(stalled)
        st = proc_status(fx.pid())
        r.rss_peak_mib, r.rss_end_mib = st.hwm, st.rss
        return r
    finally:
        fx.close()


def converge_throttled(bench: Bench, scenario: str, run: int, n: int) -> ConvergeRun:
    """N fresh pairs with the emulator's SES bucket at the scenario's rate
    and the operator at its default SES rate (1 call/s)."""
    admin, emu = bench.admin, bench.emulator
    emu_rps = bench.settings.emulator_rps(scenario)
    timeout = bench.settings.timeout_for(scenario, n)
    r = ConvergeRun(run=run)
    fx = Fixture(bench, scenario, r, [])
    r.timeout_s = timeout
    try:
        emu.set_ses_rps(emu_rps)
        emu.reset_calls()
        stalled: set[str] = set()
        t0 = time.monotonic()
        r.apply_s = apply(bench.work / "objects.yaml", manifests(fx.ns, n))
        log(f"{scenario} run {run}: applied {2 * n} objects in {r.apply_s:.1f}s; emulator SES at {emu_rps}/s")
        got = wait_ready(admin, fx.ns, f"{scenario} run {run}", PAIRS, 2 * n, n, stalled, t0, timeout)
        c = emu.calls()
        r.calls, r.throttled, r.failed = c.calls, c.throttled, c.failed
        r.ses_ok, r.ses_all = c.ses_ok(), c.ses_all()
        r.ready_s = got.seconds
        r.elapsed_s = time.monotonic() - t0
        if got.seconds is None:
            r.not_ready = got.not_ready
            r.ready_at_timeout = count_ready(admin, fx.ns, PAIRS)
        else:
            r.sets_ready_s = got.all_ready_at.get("ConfigurationSet")
            r.dests_ready_s = got.all_ready_at.get("EventDestination")
        r.stalled_seen = sorted(stalled)
        st = proc_status(fx.pid())
        r.rss_peak_mib, r.rss_end_mib = st.hwm, st.rss
        return r
    finally:
        fx.close()


def spec_latency(bench: Bench, run: int, n: int) -> SpecLatencyRun:
    s, admin, emu = bench.settings, bench.admin, bench.emulator
    timeout = s.timeout_for("spec-latency", n)
    r = SpecLatencyRun(run=run)
    fx = Fixture(bench, "spec-latency", r, ["--drift-interval-seconds", f"{s.drift:g}"])
    try:
        emu.set_ses_rps(s.spec_rps)
        emu.reset_calls()
        stalled: set[str] = set()
        t0 = time.monotonic()
        r.apply_s = apply(bench.work / "objects.yaml", manifests(fx.ns, n))
        got = wait_ready(admin, fx.ns, f"spec-latency run {run} create", PAIRS, 2 * n, n, stalled, t0, timeout)
        r.ready_s = got.seconds
        if got.seconds is None:
            r.not_ready = got.not_ready
            return r
        # Wait for the drift checks to start (the operator may stretch the
        # drift period so that drift stays within its share of the budget),
        # then measure how full the budget is before the changes.
        emu.reset_calls()
        w0 = time.monotonic()

        while time.monotonic() - w0 < s.warm:
            c = emu.calls().calls
            if sum(c.get(k, 0) for k in DRIFT_SES) >= 10:
                break
            time.sleep(2)
        # As before the split: one emulator read per operation here, not one snapshot.
        r.drift_started_s = time.monotonic() - w0 if sum(
            emu.calls().calls.get(k, 0) for k in DRIFT_SES) >= 10 else None
        r.drift_period_s = op_gauge(fx.op.metrics(), "ses_reputation_drift_period_seconds")
        log(f"spec-latency run {run}: drift checks "
            + (f"running {r.drift_started_s:.0f}s after all Ready" if r.drift_started_s is not None
               else f"not seen within {s.warm:g}s") + f"; operator drift period {r.drift_period_s}")
        emu.reset_calls()
        time.sleep(3 * s.drift)
        c = emu.calls()
        r.pre_window_s = 3 * s.drift
        r.pre_calls, r.pre_throttled = c.calls, c.throttled
        r.pre_ses_ok, r.pre_ses_all = c.ses_ok(), c.ses_all()

        emu.reset_calls()
        latencies: list[float | None] = []
        w0 = time.monotonic()
        for k in range(s.changes):
            name = f"cs-{k % n}"
            path = crd_path("configurationsets", fx.ns, name)
            tls = "REQUIRE" if (k // n) % 2 == 0 else "OPTIONAL"
            c0 = time.monotonic()
            obj = admin.patch(path, {"spec": {"delivery": {"tlsPolicy": tls}}})
            gen = obj["metadata"]["generation"]
            while True:
                obj = admin.get(path)
                if ready_for(obj, gen):
                    latencies.append(time.monotonic() - c0)
                    break
                if time.monotonic() - c0 > s.change_timeout:
                    log(f"spec-latency: change {k} on {name} not Ready after {s.change_timeout:g}s: {summary(obj)}")
                    latencies.append(None)
                    break
                time.sleep(0.1)
            log(f"spec-latency run {run}: change {k + 1}/{s.changes} ({name} tlsPolicy={tls}): "
                f"{latencies[-1] if latencies[-1] is None else round(latencies[-1], 2)}s")
        r.changes_window_s = time.monotonic() - w0
        c = emu.calls()
        r.change_calls, r.change_throttled = c.calls, c.throttled
        r.change_ses_ok, r.change_ses_all = c.ses_ok(), c.ses_all()
        r.latencies = latencies
        r.stalled_seen = sorted(stalled)
        st = proc_status(fx.pid())
        r.rss_peak_mib, r.rss_end_mib = st.hwm, st.rss
        return r
    finally:
        fx.close()


def recovery(bench: Bench, run: int, n: int) -> RecoveryRun:
    s, admin, emu = bench.settings, bench.admin, bench.emulator
    timeout = s.timeout_for("recovery", n)
    r = RecoveryRun(run=run)
    fx = Fixture(bench, "recovery", r, [])
    try:
        emu.set_ses_rps(s.recovery_rps)
        emu.reset_calls()
        stalled: set[str] = set()
        t0 = time.monotonic()
        r.apply_s = apply(bench.work / "objects.yaml", manifests(fx.ns, n))
        ready = 0
        # Watch progress while throttled, without waiting for all Ready.
        while time.monotonic() - t0 < s.hold:
            ready = count_ready(admin, fx.ns, PAIRS)
            if ready == 2 * n:
                break
            time.sleep(min(2.0, max(0.0, s.hold - (time.monotonic() - t0))))
        c = emu.calls()
        emu.set_ses_rps(None)
        lift = time.monotonic()
        r.held_s = lift - t0
        r.ready_at_lift = ready
        r.lift_calls, r.lift_throttled = c.calls, c.throttled
        r.ses_ok_at_lift, r.ses_all_at_lift = c.ses_ok(), c.ses_all()
        emu.reset_calls()
        got = wait_ready(admin, fx.ns, f"recovery run {run}", PAIRS, 2 * n, n, stalled, lift, timeout - s.hold)
        c = emu.calls()
        r.after_calls, r.after_throttled = c.calls, c.throttled
        r.after_ses_ok = c.ses_ok()
        r.recovery_s = got.seconds
        r.total_s = None if got.seconds is None else got.seconds + r.held_s
        if got.seconds is None:
            r.not_ready = got.not_ready
        r.stalled_seen = sorted(stalled)
        st = proc_status(fx.pid())
        r.rss_peak_mib, r.rss_end_mib = st.hwm, st.rss
        return r
    finally:
        fx.close()


def run_scenario(bench: Bench, scenario: str, run: int, n: int) -> RunRecord:
    if scenario == "steady":
        return steady(bench, run, n)
    if scenario in ("throttled", "shared"):
        return converge_throttled(bench, scenario, run, n)
    if scenario == "spec-latency":
        return spec_latency(bench, run, n)
    return recovery(bench, run, n)
