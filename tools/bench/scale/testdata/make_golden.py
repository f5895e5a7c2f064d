"""Writes the goldens of test_golden.py with the single-file driver this
package replaced, so that the tests compare the package with what that
script produced:

    git show 3d50228:tools/bench/scale.py > /tmp/scale_orig.py
    python3 tools/bench/scale/testdata/make_golden.py /tmp/scale_orig.py

Per case in reports/: expected.md (stdout of a REPORT_FROM run of the old
script) and expected-doc.md (START_DOC after that run); golden.json holds
the old script's results of its pure functions on the inputs below."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPORTS = HERE / "reports"
START_DOC = """# Benchmarks

Intro.

<!-- bench-scale scenario=steady N=200 start -->
old steady section
<!-- bench-scale scenario=steady N=200 end -->

<!-- bench-scale results end -->

Tail.
"""
HELP = """Usage: ses-reputation-operator run [OPTIONS]

Options:
      --ses-calls-per-second <SES_CALLS_PER_SECOND>
          SES control-plane calls per second [default: 1]
      --drift-interval-seconds <SECONDS>
          Drift check period [default: 300]
      --drift-budget-share <SHARE>
          Share of the SES budget drift may use [default: 0.25]
      --rate-interval-seconds <SECONDS>
          [default: 60]
      --max-concurrent-reconciles <N>
          [default: 8]
"""
FAKE_BIN = f"""#!/bin/sh
[ "$1 $2" = "run --help" ] || exit 1
cat <<'EOF'
{HELP}EOF
"""
METRICS = """# HELP apiserver_request_total x
apiserver_request_total{code="200",resource="configurationsets",verb="GET"} 12
apiserver_request_total{resource="configurationsets",subresource="status",verb="PATCH"} 3
apiserver_request_total{subresource="/healthz",verb="GET"} 4
apiserver_request_total{verb="WATCH"} 1
apiserver_flowcontrol_dispatched_requests_total{flow_schema="sro-op.list.sesaccounts.ses.reputation.io",priority_level="sro-bench"} 7
apiserver_flowcontrol_dispatched_requests_total{flow_schema="sro-op.watch.other"} 2.5
apiserver_flowcontrol_dispatched_requests_total{flow_schema="exempt"} 99
ses_reputation_drift_period_seconds 42.5
ses_reputation_drift_period_seconds{x="y"} 1
"""
METRICS_AFTER = METRICS.replace("} 12", "} 20").replace("} 7\n", "} 9\n")
ENVS = [{}, {"TIMEOUT": "77"}, {"N": "200", "RUNS": "1", "MAKELEVEL": "1", "MAKEFLAGS": ""},
        {"N": "200", "SES_RPS": "5", "MAKELEVEL": "1", "MAKEFLAGS": "s -- N=200"},
        {"N": "33", "SQS": "1", "HOLD": "10", "THROTTLED_RPS": "2", "SHARED_RPS": "0.25", "SPEC_RPS": "0.5",
         "DRIFT": "7", "CHANGES": "3", "WARM": "9", "CHANGE_TIMEOUT": "8", "RECOVERY_RPS": "0.1", "POLICIES": "2",
         "SETTLE": "1", "STEADY": "2", "IDENTITIES": "5"}]
OBJS = [
    {"kind": "ConfigurationSet", "metadata": {"name": "cs-1", "generation": 2},
     "status": {"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "True", "observedGeneration": 2}]}},
    {"kind": "ConfigurationSet", "metadata": {"name": "cs-2", "generation": 3},
     "status": {"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "True"}]}},
    {"kind": "EventDestination", "metadata": {"name": "ed-1", "generation": 1},
     "status": {"conditions": [{"type": "Stalled", "status": "True", "reason": "Bad", "message": "m"},
                               {"type": "Ready", "status": "False", "reason": "Pending"}]}},
    {"kind": "EventDestination", "metadata": {"name": "ed-2"}, "status": None},
]


def load(path: Path, env: dict):
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        spec = importlib.util.spec_from_file_location("scale_orig", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return mod


@contextlib.contextmanager
def environ(env: dict):
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def pure(orig_path: Path, tmp: Path, fake_bin: Path) -> dict:
    out: dict = {}
    o = load(orig_path, {})
    values = [[], [None], [3], [3.0], [None, None], [1, 2, 3], [1.0, None, 2.5], [2, 2.25, None, None],
              [0.1234, 0.5, 7], [5, 1, 3, 2]]
    out["med"] = [[v, d, o.med(v, d)] for v in values for d in (1, 2)]
    out["med_num"] = [[v, o.med_num(v)] for v in values]
    out["pct"] = [[v, q, o.pct(v, q)] for v in ([1.0], [3.0, 1.0, 2.0], [float(i) for i in range(20)])
                  for q in (0.5, 0.95, 0.0, 1.0)]
    out["envs"] = ENVS  # the entries below name them by index
    out["given"], out["timeout"], out["command_line"], out["identities"], out["n_for"] = [], [], [], [], []
    for e, env in enumerate(ENVS):
        oe = load(orig_path, env)
        with environ(env):
            for name in ("N", "SES_RPS", "RUNS", "TIMEOUT", "SQS"):
                out["given"].append([e, name, oe.given(name)])
            for scenario in oe.SCENARIOS:
                for n in (1, 30, 1000):
                    out["timeout"].append([e, scenario, n, oe.timeout_for(scenario, n)])
                out["command_line"].append([e, scenario, 12, oe.command_line(scenario, 12)])
                out["n_for"].append([e, scenario, oe.n_for(scenario)])
            out["identities"].append([e, 250, oe.identities_for(250)])
    out["minimums"] = {}
    for sqs in ("0", "1"):
        oe = load(orig_path, {"SQS": sqs})
        out["minimums"][sqs] = {"per_dest": oe.MIN_PER_DEST, "per_pair": oe.MIN_PER_PAIR, "bare": oe.BARE_PER_PAIR,
                                "ses_design": oe.SES_DESIGN_PER_PAIR, "ses_bare": oe.SES_BARE_PER_PAIR}
    out["flat_diff"] = [[a, b, o.flat_diff(a, b)] for a, b in [
        ({}, OBJS[0]), (OBJS[0], OBJS[1]), (OBJS[2], OBJS[3]),
        ({"metadata": {"labels": {"a": "1"}, "annotations": {"x": "y"}}, "status": {"l": [1, {"type": "T", "v": 2}]}},
         {"metadata": {"labels": {"a": "2"}}, "status": {"l": [1, {"type": "T", "v": 3}, 4]}})]]
    out["is_ready"] = [[obj, o.is_ready(obj)] for obj in OBJS[:3]]
    out["summary"] = [[obj, o.summary(obj)] for obj in OBJS[:3]]
    fake_kube = types.SimpleNamespace(request=lambda m, p: METRICS.encode())
    snap = o.api_snapshot(fake_kube)
    out["api_snapshot"] = {"text": METRICS, "requests": [[k[0], k[1], v] for k, v in snap["all"].items()],
                           "operator": dict(snap["operator"])}
    after = o.api_snapshot(types.SimpleNamespace(request=lambda m, p: METRICS_AFTER.encode()))
    out["api_delta"] = {"before": METRICS, "after": METRICS_AFTER, "delta": o.api_delta(snap, after)}
    out["op_gauge"] = [[METRICS, name, o.op_gauge(METRICS, name)]
                       for name in ("ses_reputation_drift_period_seconds", "apiserver_request_total", "nope")]
    log = tmp / "op.log"
    log.write_text("2025 \x1b[33m WARN\x1b[0m  a: b\nplain\n2025  ERROR  boom\n2025 INFO WARNING-ish\n2025  WARN  c\n")
    out["log_warnings"] = [log.read_text(), o.log_warnings(log)]
    out["flags"] = [[args, o.Operator.flags(types.SimpleNamespace(args=args))] for args in (
        ["run", "--namespace", "ns", "--default-account", "default", "--cluster-name", "bench",
         "--metrics-addr", "127.0.0.1:1"],
        ["run", "--namespace", "ns", "--metrics-addr", "x", "--ses-calls-per-second", "1000"],
        ["run", "--drift-interval-seconds", "10", "--namespace", "n", "--odd"])]
    out["manifests"] = [[kw, o.manifests(**kw)] for kw in (
        {"ns": "ns1", "n": 3}, {"ns": "ns2", "n": 4, "queue_arn": "arn:q", "policies": 2},
        {"ns": "ns3", "n": 3, "tag": "run1", "sets_only": True, "policies": 2}, {"ns": "ns4", "n": 0})]
    out["identity_manifests"] = [["ns", 3, o.identity_manifests("ns", 3)]]
    calls = {"calls": {"sesv2:GetConfigurationSet": 10, "sesv2:SendEmail": 5, "sns:CreateTopic": 3,
                       "sesv2:CreateConfigurationSet": 4},
             "throttled": {"sesv2:GetConfigurationSet": 2, "sesv2:SendEmail": 1}, "failed": {"sesv2:CreateConfigurationSet": 1}}
    from collections import Counter
    c = {k: Counter(v) for k, v in calls.items()}
    out["ses"] = [calls, o.ses_ok(c), o.ses_all(c), o.per_object(calls["calls"])]
    runs_calls = [{"converge_calls": {"sesv2:GetConfigurationSet": 10, "sesv2:GetAccount": 2, "sns:CreateTopic": 3}},
                  {"converge_calls": {"sesv2:GetConfigurationSet": 12, "sts:GetCallerIdentity": 1, "x:Y": 1}}, {}]
    out["calls_table"] = [[runs_calls, o.MIN_PER_PAIR, per, bare, o.calls_table(
        runs_calls, "converge_calls", o.MIN_PER_PAIR, per, "pair", o.BARE_PER_PAIR if bare else None)]
        for per in (1, 5) for bare in (True, False)]
    o.BIN = fake_bin
    out["operator_defaults"] = [HELP, *o.operator_defaults()]
    docs = []
    for start in (None, START_DOC, "# Other\n\ntext\n", "# X\n<!-- bench-scale k start -->\nold\n<!-- bench-scale k end -->\nafter\n"):
        o.DOC = tmp / "sub" / "doc.md"
        shutil.rmtree(tmp / "sub", ignore_errors=True)
        if start is not None:
            o.DOC.parent.mkdir()
            o.DOC.write_text(start)
        o.update_doc("SECTION\nline\n\n", "<!-- bench-scale k start -->", "<!-- bench-scale k end -->")
        docs.append([start, o.DOC.read_text()])
    out["update_doc"] = docs
    return out


def reports(orig_path: Path, tmp: Path, fake_bin: Path) -> None:
    # A tree the old script can run in: ROOT (parents[2]) must be a git checkout.
    root = tmp / "root"
    (root / "tools/bench").mkdir(parents=True)
    shutil.copy(orig_path, root / "tools/bench/scale.py")
    git = ["git", "-C", str(root), "-c", "user.name=g", "-c", "user.email=g@g"]
    subprocess.run(git[:3] + ["init", "-q"], check=True)
    subprocess.run(git + ["commit", "-q", "--allow-empty", "-m", "golden"], check=True)
    for case in sorted(p for p in REPORTS.iterdir() if p.is_dir()):
        src = tmp / "raw" / case.name
        shutil.copytree(case, src)
        shutil.copy(REPORTS / "flow-schemas.json", src)
        doc = tmp / f"{case.name}.md"
        doc.write_text(START_DOC)
        env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"), **json.loads((case / "env.json").read_text()),
               "REPORT_FROM": str(src), "BENCH_DOC": str(doc), "BENCH_BIN": str(fake_bin)}
        p = subprocess.run([sys.executable, str(root / "tools/bench/scale.py")], env=env, capture_output=True,
                           text=True, check=True)
        (case / "expected.md").write_text(p.stdout)
        (case / "expected-doc.md").write_text(doc.read_text())


def main() -> None:
    orig_path = Path(sys.argv[1]).resolve()
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        # The old script creates ROOT/target/bench-scale-* on import: give it its own ROOT.
        (tmp / "o/tools/bench").mkdir(parents=True)
        shutil.copy(orig_path, tmp / "o/tools/bench/scale.py")
        fake_bin = tmp / "bin/target/release/ses-reputation-operator"
        fake_bin.parent.mkdir(parents=True)
        fake_bin.write_text(FAKE_BIN)
        fake_bin.chmod(0o755)
        with contextlib.redirect_stderr(io.StringIO()):
            golden = pure(tmp / "o/tools/bench/scale.py", tmp, fake_bin)
        (HERE / "golden.json").write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n")
        reports(orig_path, tmp, fake_bin)


if __name__ == "__main__":
    main()
