"""One soak run: `python -m soak --minutes 30 [--seed N]` inside
`tools/ground.sh run --` (see the Makefile's `soak`). Prints the seed
first, writes the record and a report under --out, exits 1 on any
violation. `python -m soak --check target/soak-N/record.json` checks a
recorded run again."""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import yaml
from scale.cluster import Kube, is_ready  # tools/bench/scale: the benchmark's small API client

from . import checker, collect
from .faults import Injector
from .proxy import Proxy
from .replicas import LEASE_NAME, LEASE_NAMESPACE, LeaseRecorder, Replica, Supervisor, history_json
from .workload import ACCOUNT, TENANTS, Workload, path

ROOT = Path(__file__).resolve().parents[2]
DRIFT_SECONDS = 30
RATE_SECONDS = 10
SES_RPS = 20.0
# After the faults stop, every object is Ready for its generation within
# this (two minutes plus one drift period).
BOUND_SECONDS = 120 + DRIFT_SECONDS
MEMORY_LIMIT_KIB = 128 * 1024  # the chart's resources.limits.memory
# What AWS and the API server hold is compared this long after the faults
# stopped at the earliest (six rate reads).
SETTLE_SECONDS = 6 * RATE_SECONDS


def log(msg: str) -> None:
    print(f">> soak: {msg}", file=sys.stderr, flush=True)


def proxied_kubeconfig(kubeconfig: Path, port: int, out: Path) -> None:
    """Writes a copy of the kubeconfig that goes through the proxy."""
    cfg = yaml.safe_load(kubeconfig.read_text())
    cfg["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    out.write_text(yaml.safe_dump(cfg))


def install_crds(kubeconfig: Path) -> None:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    subprocess.run(["kubectl", "apply", "--server-side", "-f", str(ROOT / "deploy/crds/crds.yaml")], env=env,
                   check=True, capture_output=True)
    subprocess.run(["kubectl", "wait", "--for", "condition=Established", "--timeout", "60s", "crd", "--all"],
                   env=env, check=True, capture_output=True)


def not_ready(kube: Kube, workload: Workload) -> list[str]:
    intruders = {(o.kind, o.ns, o.name) for o in workload.objects if o.intruder}
    out = []
    for kind in ("SesAccount", "ConfigurationSet", "EventDestination", "EmailIdentity", "ReputationPolicy"):
        for o in kube.get(path(kind, None))["items"]:
            meta = o["metadata"]
            if (kind, meta.get("namespace", ""), meta["name"]) in intruders or "deletionTimestamp" in meta:
                continue
            o.setdefault("status", {})
            if not is_ready(o):
                conds = {c["type"]: c.get("reason") for c in o["status"].get("conditions") or []}
                out.append(f"{kind} {meta.get('namespace', '')}/{meta['name']}: {conds}")
    return out


def wait_converged(kube: Kube, workload: Workload, since: float) -> dict:
    left: list[str] = []
    while time.time() - since < BOUND_SECONDS + 60:
        # DNS keeps answering after the workload stops: an identity the
        # operator creates only now (its watch was silenced just before the
        # end) must still be able to verify.
        workload.verify_identities()
        try:
            left = not_ready(kube, workload)
        except Exception as e:
            left = [f"cannot list: {e}"]
        if not left:
            return {"seconds": round(time.time() - since, 1), "bound_seconds": BOUND_SECONDS, "not_ready": []}
        time.sleep(2)
    return {"seconds": None, "bound_seconds": BOUND_SECONDS, "not_ready": left}


def teardown(kube: Kube, workload: Workload) -> None:
    """Deletes every object (tenants' first, the SesAccount last) and waits
    for them to go."""
    for o in list(workload.objects):
        if o.deleted is None:
            workload._delete(o)
    deadline = time.time() + 180
    while time.time() < deadline:
        left = [o for kind in ("ConfigurationSet", "EventDestination", "EmailIdentity", "ReputationPolicy")
                for o in kube.get(path(kind, None))["items"]]
        if not left:
            break
        time.sleep(2)
    else:
        log(f"teardown: {len(left)} objects still there after 180 s")
    kube.request("DELETE", path("SesAccount", None, ACCOUNT))
    workload._record("delete", "SesAccount", "", ACCOUNT)
    deadline = time.time() + 120
    while time.time() < deadline and kube.get_opt(path("SesAccount", None, ACCOUNT)) is not None:
        time.sleep(2)


def main() -> int:
    parser = argparse.ArgumentParser(prog="soak")
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--binary", type=Path, default=ROOT / "target/debug/ses-reputation-operator")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--check", type=Path, default=None,
                        help="only check a record.json an earlier run wrote (no ground needed)")
    args = parser.parse_args()
    if args.check:
        record = json.loads(args.check.read_text())
        violations = checker.check(record)
        print(summary(record, violations))
        return 1 if violations else 0
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    log(f"seed {seed} (repeat with SOAK_SEED={seed}), {args.minutes:g} minutes")
    rng = random.Random(seed)
    work = args.out or ROOT / f"target/soak-{seed}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "report.md").unlink(missing_ok=True)  # a stale one would be printed for this run's failure
    kubeconfig = Path(os.environ["KUBECONFIG"])
    endpoint = os.environ["SRO_AWS_ENDPOINT"]
    ground = Path(os.environ["SRO_GROUND_DIR"])

    install_crds(kubeconfig)
    admin = Kube(str(kubeconfig))
    api_port = urlparse(yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]).port
    kube_proxy = Proxy("kube", api_port)
    proxied_kubeconfig(kubeconfig, kube_proxy.port, work / "kubeconfig")
    aws_proxy = Proxy("aws", urlparse(endpoint).port, stamp=True)

    workload = Workload(Kube(str(kubeconfig)), endpoint, random.Random(rng.random()))
    workload.setup()
    replicas = [Replica(name, args.binary, work / "kubeconfig", f"http://127.0.0.1:{aws_proxy.port}", work,
                        DRIFT_SECONDS, RATE_SECONDS, SES_RPS) for name in ("a", "b")]
    for r in replicas:
        r.start()
    supervisor = Supervisor(replicas)
    supervisor.thread.start()
    lease = LeaseRecorder(Kube(str(kubeconfig)))
    lease.thread.start()
    deadline = time.time() + 60
    while not any(r["holder"] for r in lease.records):
        if time.time() > deadline:
            raise SystemExit("no replica took the Lease within 60 s")
        time.sleep(0.5)
    injector = Injector(random.Random(rng.random()), replicas, supervisor, kube_proxy, aws_proxy, endpoint, ground,
                        SES_RPS, lease)
    started = time.time()
    quiet = min(2.0, args.minutes / 3) * 60
    active = max(30.0, args.minutes * 60 - quiet)
    workload.thread.start()
    injector.thread.start()
    log(f"workload and faults for {active:.0f} s, then {quiet:.0f} s quiet")
    while time.time() - started < active:
        time.sleep(max(0.0, min(30.0, active - (time.time() - started))))
        log(f"{time.time() - started:.0f} s: {len(workload.actions)} actions, "
            f"faults {dict(Counter(f['fault'] for f in injector.faults))}, "
            f"{sum(len(r.history) for r in replicas)} operator starts")
    injector.stop()
    workload.stop()
    faults_stopped = time.time()
    log("faults stopped; waiting for every object to be Ready")
    convergence = wait_converged(admin, workload, faults_stopped)
    log(f"converged: {convergence['seconds']} s (bound {BOUND_SECONDS} s)")
    # A spike just before the end has had several rate reads to act on.
    time.sleep(max(0.0, faults_stopped + SETTLE_SECONDS - time.time()))
    settled_at = time.time()
    settled = {"aws": collect.aws_state(endpoint), "kube": collect.kube_state(admin)}
    teardown(admin, workload)
    final = {"aws": collect.aws_state(endpoint), "kube": collect.kube_state(admin)}
    supervisor.stop()
    lease.stop()
    record = {
        "seed": seed, "minutes": args.minutes, "started": started, "faults_stopped": faults_stopped,
        "settled_at": settled_at,
        "convergence": convergence, "processes": history_json(replicas), "lease": lease.records,
        "lease_name": f"{LEASE_NAMESPACE}/{LEASE_NAME}", "aws_log": collect.emulator_log(endpoint),
        "actions": workload.actions, "workload_errors": workload.errors, "faults": injector.faults,
        "settled": settled, "final": final, "rss_max_kib": {r.name: r.rss_max_kib for r in replicas},
        "memory_limit_kib": MEMORY_LIMIT_KIB, "panics": collect.panics(work), "tenants": TENANTS,
    }
    (work / "record.json").write_text(json.dumps(record))
    violations = checker.check(record)
    report = summary(record, violations)
    (work / "report.md").write_text(report)
    print(report)
    log(f"record and operator logs in {work}")
    return 1 if violations else 0


def summary(record: dict, violations: list[checker.Violation]) -> str:
    faults = Counter(f["fault"] for f in record["faults"])
    actions = Counter(f"{a['action']} {a['kind']}" for a in record["actions"])
    writes = sum(1 for e in record["aws_log"] if e.get("key", "") in {p["key"] for p in record["processes"]}
                 and checker._is_write(e["op"]))
    lines = [
        f"# Soak seed {record['seed']}, {record['minutes']:g} minutes",
        "",
        f"- faults injected ({sum(faults.values())}): " + ", ".join(f"{k} {v}" for k, v in sorted(faults.items())),
        f"- workload actions ({sum(actions.values())}): " + ", ".join(f"{k} {v}" for k, v in sorted(actions.items())),
        f"- workload calls that failed under the faults: {len(record['workload_errors'])}",
        f"- operator processes: {len(record['processes'])}; leaders: "
        f"{sum(len(p) for p in checker.leader_periods(record['lease']).values())}; "
        f"Lease records: {len(record['lease'])}; "
        f"AWS requests logged: {len(record['aws_log'])}, of them operator writes: {writes}",
        f"- converged after the faults stopped: {record['convergence']['seconds']} s "
        f"(bound {record['convergence']['bound_seconds']} s)",
        "- peak RSS: " + ", ".join(f"{k} {v / 1024:.1f} MiB" for k, v in sorted(record["rss_max_kib"].items())),
        f"- invariant checks: {len(checker.CHECKS)}; violations: {len(violations)}",
    ]
    lines += [f"  - {v}" for v in violations[:200]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
