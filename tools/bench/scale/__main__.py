"""The driver: picks the scenarios (SCENARIO), runs each RUNS times on the
test ground, writes the raw records, prints each section and updates
docs/benchmarks.md; with REPORT_FROM, re-renders a previous run's raw
records instead, no ground needed. Parameters: the package docstring."""

from __future__ import annotations

import dataclasses
import datetime
import json
import signal
import sys
import tempfile
from pathlib import Path

from .cluster import Kube, kubectl, log, sh
from .config import DEFAULT_N, SCENARIOS, Settings
from .emulator import Emulator
from .fixture import Bench, OperatorDefaults, operator_defaults
from .identity import setup_operator_identity
from .measure import Machine, load_average, log_warnings, machine
from .report import ReportContext, render, write_section
from .results import record_class
from .scenarios import run_scenario


def selected_scenarios(settings: Settings) -> list[str]:
    """SCENARIO: a comma-separated list, or all; unknown names are left in."""
    wanted = (settings.given("SCENARIO") or "steady").replace(" ", "").split(",")
    return SCENARIOS if "all" in wanted else wanted


def report_from(settings: Settings, src: Path, scenarios: list[str], defaults: OperatorDefaults,
                mach: Machine) -> int:
    """Re-renders the sections of a previous run's raw results in `src`."""
    ctx = ReportContext(settings, defaults.flags, defaults.drift_share,
                        json.loads((src / "flow-schemas.json").read_text()))
    for scenario in scenarios:
        cls = record_class(scenario)
        runs = [cls.from_json(json.loads(f.read_text())) for f in sorted(src.glob(f"{scenario}-run-*.json"))]
        for r in runs:  # recount from the logs (older runs missed coloured WARN lines)
            log_path = src / f"operator-{scenario}-{r.run}.log"
            if log_path.exists():
                r.operator_warnings = log_warnings(log_path)
        if runs:
            first = runs[0]
            n = int(settings.given("N") or first.n or DEFAULT_N[scenario])
            section = render(ctx, scenario, n, runs, first.machine if first.machine is not None else mach,
                             first.started if first.started is not None else "?")
            print(section)
            write_section(ctx, scenario, n, section)
    return 0


def main() -> int:
    settings = Settings.from_env()
    (settings.root / "target").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=settings.root / "target"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scenarios = selected_scenarios(settings)
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        log(f"unknown SCENARIO {unknown}; one of {SCENARIOS} or all")
        return 2
    defaults = operator_defaults(settings.bin)
    mach = machine(settings)
    if settings.env.get("REPORT_FROM"):  # re-render sections from a previous run's raw JSON, no ground needed
        return report_from(settings, Path(settings.env["REPORT_FROM"]), scenarios, defaults, mach)
    kubectl("apply", "--server-side", "-f", "-", stdin=sh(str(settings.bin), "crds"))
    kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    admin = Kube(settings.env["KUBECONFIG"])
    identity = setup_operator_identity(admin, work)
    bench = Bench(settings=settings, work=work, admin=admin, kubeconfig=identity.kubeconfig,
                  emulator=Emulator(settings.endpoint))
    ctx = ReportContext(settings, defaults.flags, defaults.drift_share, identity.flow_schemas)
    (work / "flow-schemas.json").write_text(json.dumps(identity.flow_schemas, indent=1))
    failed = False
    for scenario in scenarios:
        n = settings.n_for(scenario)
        started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        mach = dataclasses.replace(mach, load=load_average())
        runs = []
        for run in range(1, settings.runs + 1):
            log(f"{scenario} run {run}/{settings.runs}: N={n}")
            r = run_scenario(bench, scenario, run, n)
            ok = r.succeeded()
            failed |= not ok
            r.started, r.machine, r.n = started, mach, n
            raw = work / f"{scenario}-run-{run}.json"
            raw.write_text(json.dumps(r.to_json(), indent=1, default=str))
            log(f"{scenario} run {run}: {'ok' if ok else 'FAILED'}; raw: {raw}")
            runs.append(r)
        section = render(ctx, scenario, n, runs, mach, started)
        print(section, flush=True)
        write_section(ctx, scenario, n, section)
        log(f"wrote {settings.doc} ({scenario}); raw results and operator logs in {work}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
