"""The package against what the single-file tools/bench/scale.py it replaced
produced for the same inputs (testdata/golden.json and testdata/reports/*,
written by testdata/make_golden.py with that script): pure functions,
whole report sections, the docs/benchmarks.md update, the raw JSON, and
the entry point. No cluster, no network.

    cd tools/bench && python3 -m unittest scale.test_golden
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from collections import Counter
from pathlib import Path

from . import report
from .__main__ import report_from, selected_scenarios
from .cluster import is_ready, summary
from .config import SCENARIOS, Settings
from .fixture import operator_defaults, reading_flags
from .measure import ApiDelta, ApiSnapshot, AwsCalls, Machine, flat_diff, log_warnings, op_gauge, per_object
from .results import RunRecord, record_class
from .workload import MIN_PER_IDENTITY, PairMinimums, identity_manifests, manifests

HERE = Path(__file__).resolve().parent
DATA = HERE / "testdata"
REPORTS = DATA / "reports"
BENCH = HERE.parent  # tools/bench
ROOT = HERE.parents[2]
GOLDEN = json.loads((DATA / "golden.json").read_text())
_spec = importlib.util.spec_from_file_location("make_golden", DATA / "make_golden.py")
MAKE_GOLDEN = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(MAKE_GOLDEN)
UNUSED_MACHINE = Machine("unused", "unused", "unused", "unused", "unused")  # every case's records name theirs


def settings(env: dict, **extra: str) -> Settings:
    return Settings.from_env({**env, **extra}, root=ROOT)


def golden_env(i: int) -> dict:
    return GOLDEN["envs"][i]


class FakeBinary:
    """An executable in a directory named release, printing the old goldens' `run --help`."""

    def __enter__(self) -> Path:
        self.tmp = tempfile.TemporaryDirectory()
        path = Path(self.tmp.name) / "target/release/ses-reputation-operator"
        path.parent.mkdir(parents=True)
        path.write_text(MAKE_GOLDEN.FAKE_BIN)
        path.chmod(0o755)
        return path

    def __exit__(self, *exc: object) -> None:
        self.tmp.cleanup()


class PureFunctions(unittest.TestCase):
    def test_med(self) -> None:
        for values, digits, want in GOLDEN["med"]:
            self.assertEqual(report.med(values, digits), want, (values, digits))
        for values, want in GOLDEN["med_num"]:
            self.assertEqual(report.med_num(values), want, values)

    def test_pct(self) -> None:
        for values, q, want in GOLDEN["pct"]:
            self.assertEqual(report.pct(values, q), want, (values, q))

    def test_parameters(self) -> None:
        for e, name, want in GOLDEN["given"]:
            self.assertEqual(settings(golden_env(e)).given(name), want, (golden_env(e), name))
        for e, scenario, n, want in GOLDEN["timeout"]:
            self.assertEqual(settings(golden_env(e)).timeout_for(scenario, n), want, (golden_env(e), scenario, n))
        for e, scenario, n, want in GOLDEN["command_line"]:
            self.assertEqual(report.command_line(settings(golden_env(e)), scenario, n), want)
        for e, scenario, want in GOLDEN["n_for"]:
            self.assertEqual(settings(golden_env(e)).n_for(scenario), want)
        for e, n, want in GOLDEN["identities"]:
            self.assertEqual(settings(golden_env(e)).identities_for(n), want)

    def test_scenario_selection(self) -> None:
        self.assertEqual(selected_scenarios(settings({})), ["steady"])
        self.assertEqual(selected_scenarios(settings({"SCENARIO": "steady, all"})), SCENARIOS)
        self.assertEqual(selected_scenarios(settings({"SCENARIO": "recovery,bogus"})), ["recovery", "bogus"])

    def test_minimums(self) -> None:
        for sqs, want in GOLDEN["minimums"].items():
            got = PairMinimums.for_sqs(sqs == "1")
            self.assertEqual(dict(got.per_dest), want["per_dest"])
            self.assertEqual(dict(got.per_pair), want["per_pair"])
            self.assertEqual(dict(got.bare_per_pair), want["bare"])
            self.assertEqual((got.ses_design, got.ses_bare), (want["ses_design"], want["ses_bare"]))

    def test_objects(self) -> None:
        for old, new, want in GOLDEN["flat_diff"]:
            self.assertEqual(flat_diff(old, new), want)
        for obj, want in GOLDEN["is_ready"]:
            self.assertEqual(is_ready(obj), want)
        for obj, want in GOLDEN["summary"]:
            self.assertEqual(summary(obj), want)

    def test_metrics(self) -> None:
        g = GOLDEN["api_snapshot"]
        snap = ApiSnapshot.parse(g["text"])
        self.assertEqual([[k[0], k[1], v] for k, v in snap.requests.items()], g["requests"])
        self.assertEqual(dict(snap.operator), g["operator"])
        d = GOLDEN["api_delta"]
        delta = ApiDelta.between(ApiSnapshot.parse(d["before"]), ApiSnapshot.parse(d["after"]))
        self.assertEqual(delta.to_json(), d["delta"])
        for text, name, want in GOLDEN["op_gauge"]:
            self.assertEqual(op_gauge(text, name), want)

    def test_aws_calls(self) -> None:
        got, ok, all_, per = GOLDEN["ses"]
        calls = AwsCalls.from_emulator(got)
        self.assertEqual((calls.ses_ok(), calls.ses_all(), per_object(calls.calls)), (ok, all_, per))
        for runs, minimum, per, bare, want in GOLDEN["calls_table"]:
            mins = PairMinimums.for_sqs(False)
            self.assertEqual(dict(mins.per_pair), minimum)
            got_lines = report.calls_table(runs, lambda r: r.get("converge_calls"), mins.per_pair, per, "pair",
                                           mins.bare_per_pair if bare else None)
            self.assertEqual(got_lines, want)

    def test_operator(self) -> None:
        for args, want in GOLDEN["flags"]:
            self.assertEqual(reading_flags(args), want)
        with tempfile.TemporaryDirectory() as t:
            log = Path(t) / "op.log"
            text, want = GOLDEN["log_warnings"]
            log.write_text(text)
            self.assertEqual(log_warnings(log), want)
        with FakeBinary() as binary:
            help_text, flags, share = GOLDEN["operator_defaults"]
            self.assertEqual(help_text, MAKE_GOLDEN.HELP)
            got = operator_defaults(binary)
            self.assertEqual((got.flags, got.drift_share), (flags, share))
            self.assertEqual(operator_defaults(Path("/bin/false")).flags, "?")

    def test_workload(self) -> None:
        for kw, want in GOLDEN["manifests"]:
            self.assertEqual(manifests(**kw), want, kw)
        for ns, count, want in GOLDEN["identity_manifests"]:
            self.assertEqual(identity_manifests(ns, count), want)
        self.assertEqual(sum(MIN_PER_IDENTITY.values()), 4)

    def test_update_doc(self) -> None:
        for start, want in GOLDEN["update_doc"]:
            with tempfile.TemporaryDirectory() as t:
                doc = Path(t) / "sub" / "doc.md"
                if start is not None:
                    doc.parent.mkdir()
                    doc.write_text(start)
                report.update_doc(doc, "SECTION\nline\n\n", "<!-- bench-scale k start -->",
                                  "<!-- bench-scale k end -->")
                self.assertEqual(doc.read_text(), want, start)


def cases() -> list[Path]:
    return sorted(p for p in REPORTS.iterdir() if p.is_dir())


class Reports(unittest.TestCase):
    """Whole sections, re-rendered from raw records as REPORT_FROM does."""

    def test_sections_and_doc(self) -> None:
        with FakeBinary() as binary:
            for case in cases():
                with self.subTest(case.name), tempfile.TemporaryDirectory() as t:
                    src = Path(t) / "raw"
                    shutil.copytree(case, src)
                    shutil.copy(REPORTS / "flow-schemas.json", src)
                    doc = Path(t) / "doc.md"
                    doc.write_text(MAKE_GOLDEN.START_DOC)
                    s = settings(json.loads((case / "env.json").read_text()), BENCH_DOC=str(doc),
                                 BENCH_BIN=str(binary))
                    out = io.StringIO()
                    with contextlib.redirect_stdout(out):
                        rc = report_from(s, src, selected_scenarios(s), operator_defaults(binary), UNUSED_MACHINE)
                    self.assertEqual(rc, 0)
                    self.assertEqual(out.getvalue(), (case / "expected.md").read_text())
                    self.assertEqual(doc.read_text(), (case / "expected-doc.md").read_text())


class Records(unittest.TestCase):
    def test_json_order_covers_every_field(self) -> None:
        for scenario in SCENARIOS:
            cls = record_class(scenario)
            names = cls.FIRST + cls.ORDER + cls.LAST
            self.assertEqual(len(names), len(set(names)), cls)
            self.assertEqual(set(names), {f.name for f in dataclasses.fields(cls)}, cls)

    def test_misspelt_field_is_refused(self) -> None:
        r = record_class("recovery")(run=1)
        r.recovery_s = 1.0
        with self.assertRaises(AttributeError):
            r.recovery_secs = 1.0

    def test_raw_json_round_trip(self) -> None:
        """from_json then to_json gives the old script's record back, keys in its
        order; only keys it had set to null are left out."""
        for case in cases():
            for f in sorted(case.glob("*-run-*.json")):
                scenario = f.name.rsplit("-run-", 1)[0]
                raw = json.loads(f.read_text())
                rec = record_class(scenario).from_json(raw)
                self.assertIsInstance(rec, RunRecord)
                for counter in rec.COUNTERS:
                    if getattr(rec, counter) is not None:
                        self.assertIsInstance(getattr(rec, counter), Counter)
                got = json.loads(json.dumps(rec.to_json(), default=str))
                want = {k: v for k, v in raw.items() if v is not None}
                self.assertEqual(list(got), list(want), f)
                self.assertEqual(got, want, f)


class EntryPoint(unittest.TestCase):
    """tools/bench/scale.py (what scale.sh runs) and `python3 -m scale`."""

    def run_driver(self, argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
        # The driver makes ROOT/target/bench-scale-* first thing (as the old script did on import):
        # remove the empty ones made here.
        target = ROOT / "target"
        before = set(target.glob("bench-scale-*")) if target.exists() else set()
        clean = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "REPORT_FROM")}
        try:
            return subprocess.run([sys.executable, *argv], cwd=cwd, env={**clean, **env}, capture_output=True,
                                  text=True, timeout=120)
        finally:
            for d in set(target.glob("bench-scale-*")) - before:
                with contextlib.suppress(OSError):
                    d.rmdir()

    def test_unknown_scenario(self) -> None:
        want = ">> unknown SCENARIO ['bogus']; one of " + str(SCENARIOS) + " or all\n"
        for argv, cwd in ((["tools/bench/scale.py", "--help"], ROOT), (["-m", "scale"], BENCH)):
            p = self.run_driver(argv, cwd, SCENARIO="steady,bogus")
            self.assertEqual((p.returncode, p.stdout, p.stderr), (2, "", want), argv)

    def test_report_from(self) -> None:
        case = REPORTS / "steady-3"
        with FakeBinary() as binary, tempfile.TemporaryDirectory() as t:
            src = Path(t) / "raw"
            shutil.copytree(case, src)
            shutil.copy(REPORTS / "flow-schemas.json", src)
            doc = Path(t) / "doc.md"
            doc.write_text(MAKE_GOLDEN.START_DOC)
            p = self.run_driver([str(BENCH / "scale.py")], Path(t), REPORT_FROM=str(src), BENCH_DOC=str(doc),
                                BENCH_BIN=str(binary), **json.loads((case / "env.json").read_text()))
            self.assertEqual((p.returncode, p.stderr), (0, ""))
            self.assertEqual(p.stdout, (case / "expected.md").read_text())
            self.assertEqual(doc.read_text(), (case / "expected-doc.md").read_text())


if __name__ == "__main__":
    unittest.main()
