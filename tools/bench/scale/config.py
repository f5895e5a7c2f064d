"""The benchmark's parameters: environment variables (make-aware, see
`given`), paths, scenario names with their default N and wait timeouts.
Everything is read once into a frozen `Settings`."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

ROOT = Path(__file__).resolve().parents[3]

SCENARIOS = ["steady", "throttled", "shared", "spec-latency", "recovery"]
DEFAULT_N = {"steady": 1000, "throttled": 100, "shared": 100, "spec-latency": 40, "recovery": 30}
# The Makefile's own defaults (N ?= 200 ...), ignored unless given on make's command line.
MAKE_DEFAULTS = {"N": "200", "SES_RPS": "1000", "RUNS": "1"}
# The parameters that shape each scenario's reading, quoted in its command line.
SCENARIO_PARAMS = {
    "steady": ["SES_RPS", "POLICIES", "SETTLE", "STEADY", "SQS"],
    "throttled": ["THROTTLED_RPS"],
    "shared": ["SHARED_RPS"],
    "spec-latency": ["SPEC_RPS", "DRIFT", "CHANGES", "CHANGE_TIMEOUT", "WARM"],
    "recovery": ["RECOVERY_RPS", "HOLD"],
}


def given_in(env: Mapping[str, str], name: str) -> str | None:
    """An env parameter, unless it is only the Makefile's default: under make,
    a variable counts when it is on make's command line (MAKEFLAGS) or was set
    in the environment to something other than the Makefile's default."""
    value = env.get(name)
    if value is None or "MAKELEVEL" not in env:
        return value
    cmdline = env.get("MAKEFLAGS", "").partition(" -- ")[2]
    if re.search(rf"(^|\s){name}=", cmdline):
        return value
    return None if MAKE_DEFAULTS.get(name) == value else value


@dataclass(frozen=True)
class Settings:
    env: Mapping[str, str]
    root: Path
    bin: Path  # BENCH_BIN: another build (e.g. a debug binary for a smoke run)
    doc: Path  # BENCH_DOC: elsewhere (smoke tests)
    runs: int
    sqs: bool
    ses_rps: str
    policies: int
    identities: str | None  # steady: default N // 10
    settle: float
    steady: float
    throttled_rps: float
    shared_rps: float
    spec_rps: float
    drift: float
    changes: int
    change_timeout: float
    warm: float  # spec-latency: longest wait for drift checks to start
    recovery_rps: float
    hold: float
    endpoint: str
    skip_build: bool

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, root: Path = ROOT) -> Settings:
        env = dict(os.environ if env is None else env)

        def num(name: str, default: float) -> float:
            v = given_in(env, name)
            return float(v) if v not in (None, "") else default

        return cls(
            env=env,
            root=root,
            bin=Path(env.get("BENCH_BIN") or root / "target/release/ses-reputation-operator"),
            doc=Path(env.get("BENCH_DOC") or root / "docs/benchmarks.md"),
            runs=int(num("RUNS", 1)),
            sqs=given_in(env, "SQS") == "1",
            ses_rps=given_in(env, "SES_RPS") or "1000",
            policies=int(num("POLICIES", 10)),
            identities=given_in(env, "IDENTITIES"),
            settle=num("SETTLE", 30),
            steady=num("STEADY", 150),
            throttled_rps=num("THROTTLED_RPS", 1),
            shared_rps=num("SHARED_RPS", 0.5),
            spec_rps=num("SPEC_RPS", 1),
            drift=num("DRIFT", 10),
            changes=int(num("CHANGES", 20)),
            change_timeout=num("CHANGE_TIMEOUT", 300),
            warm=num("WARM", 600),
            recovery_rps=num("RECOVERY_RPS", 0.2),
            hold=num("HOLD", 60),
            endpoint=env.get("SRO_AWS_ENDPOINT", ""),
            skip_build=bool(env.get("SKIP_BUILD")),
        )

    def given(self, name: str) -> str | None:
        return given_in(self.env, name)

    def identities_for(self, n: int) -> int:
        return int(self.identities) if self.identities not in (None, "") else n // 10

    def n_for(self, scenario: str) -> int:
        return int(self.given("N") or DEFAULT_N[scenario])

    def emulator_rps(self, scenario: str) -> float:
        """The emulator's SES rate in the throttled and shared scenarios."""
        return self.throttled_rps if scenario == "throttled" else self.shared_rps

    def timeout_for(self, scenario: str, n: int) -> float:
        if self.given("TIMEOUT"):
            return float(self.given("TIMEOUT"))
        return {
            "steady": 900 + n,
            # 4 SES calls per pair at the emulator's rate, with 2.5x slack.
            "throttled": max(600.0, 10 * n / self.throttled_rps),
            "shared": max(600.0, 10 * n / self.shared_rps),
            "spec-latency": max(600.0, 10 * n / self.spec_rps),
            "recovery": self.hold + max(600.0, 10 * n),
        }[scenario]

    def section_key(self, scenario: str, n: int) -> str:
        """What names a scenario's section in docs/benchmarks.md."""
        return f"scenario={scenario} N={n}" + (" SQS=1" if scenario == "steady" and self.sqs else "")
