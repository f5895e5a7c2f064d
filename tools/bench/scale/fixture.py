"""The operator under test and one run's fixture: the operator process (its
flags, /metrics, log warnings, defaults from `run --help`), and per run a
fresh emulator, namespace and SesAccount with the operator started and
waited for."""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .cluster import ACCOUNT_PATH, API, Kube, is_ready, kubectl, remove_account, sh
from .config import Settings
from .emulator import Emulator
from .measure import log_warnings
from .results import RunRecord


@dataclass(frozen=True)
class Bench:
    """What every scenario runs against."""
    settings: Settings
    work: Path  # target/bench-scale-*: raw results, operator logs
    admin: Kube
    kubeconfig: Path  # the operator's own identity
    emulator: Emulator


@dataclass(frozen=True)
class OperatorDefaults:
    flags: str  # "`--flag` value, ..." or "?"
    drift_share: Optional[str]


def operator_defaults(binary: Path) -> OperatorDefaults:
    """The defaults of the flags that shape a reading, from `run --help`."""
    try:
        text = " ".join(sh(str(binary), "run", "--help").split())
    except RuntimeError:
        return OperatorDefaults("?", None)
    found = {}
    for flag in ("ses-calls-per-second", "drift-interval-seconds", "drift-budget-share", "rate-interval-seconds",
                 "max-concurrent-reconciles"):
        m = re.search(rf"--{flag} <[^>]*>.*?\[default: ([^\]]+)\]", text)
        if m:
            found[flag] = m.group(1)
    return OperatorDefaults(", ".join(f"`--{k}` {v}" for k, v in found.items()), found.get("drift-budget-share"))


def die_with_parent() -> None:
    """The operator gets SIGTERM if this script dies, however it dies."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reading_flags(args: list[str]) -> str:
    """The flags of `run ...` that matter for the reading (namespace and ports left out)."""
    skip = {"--namespace", "--metrics-addr", "--default-account", "--cluster-name"}
    out, it = [], iter(args[1:])
    for a in it:
        v = next(it, "")
        if a not in skip:
            out.append(f"{a} {v}")
    return " ".join(out)


class Operator:
    def __init__(self, binary: Path, work: Path, ns: str, tag: str, kubeconfig: Path, extra: list[str]):
        self.log_path = work / f"operator-{tag}.log"
        self.metrics_port = free_port()
        env = {**os.environ, "RUST_LOG": "warn", "KUBECONFIG": str(kubeconfig)}
        self.args = ["run", "--namespace", ns, "--default-account", "default", "--cluster-name", "bench",
                     "--metrics-addr", f"127.0.0.1:{self.metrics_port}", *extra]
        self.proc = subprocess.Popen([str(binary), *self.args], env=env, stdout=self.log_path.open("w"),
                                     stderr=subprocess.STDOUT, preexec_fn=die_with_parent)

    def flags(self) -> str:
        return reading_flags(self.args)

    def metrics(self) -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as r:
                return r.read().decode()
        except OSError as e:
            return f"# unavailable: {e}"

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def warnings(self) -> list[str]:
        return log_warnings(self.log_path)


class Fixture:
    """One run's fixture: fresh emulator state, namespace and SesAccount, and
    the operator started and waited for (SesAccount Ready). Records the
    startup in `record`, and the operator's exit and warnings on close()."""

    def __init__(self, bench: Bench, scenario: str, record: RunRecord, extra_args: list[str]):
        self.bench, self.admin, self.emulator = bench, bench.admin, bench.emulator
        self.record = record
        self.tag = f"{scenario}-{record.run}"
        self.emulator.reset()
        self.ns = f"bench-{scenario}-{record.run}-{int(time.time())}"
        kubectl("create", "namespace", self.ns)
        remove_account(self.admin)
        kubectl("apply", "--server-side", "--field-manager", "bench", "-f", "-", stdin=json.dumps(
            {"apiVersion": API, "kind": "SesAccount", "metadata": {"name": "default"},
             "spec": {"region": "us-east-1"}}))
        self.emulator.reset_calls()
        self.op = Operator(bench.settings.bin, bench.work, self.ns, self.tag, bench.kubeconfig, extra_args)
        start = time.monotonic()
        while True:
            acct = self.admin.get_opt(ACCOUNT_PATH)
            if acct and is_ready(acct):
                break
            if self.op.proc.poll() is not None or time.monotonic() - start > 120:
                self.close()
                raise RuntimeError(f"operator not up; log:\n{self.op.log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        record.startup_s = time.monotonic() - start
        record.startup_calls = self.emulator.calls().calls
        record.operator_flags = self.op.flags()
        self.emulator.reset_calls()

    def pid(self) -> int:
        return self.op.proc.pid

    def close(self) -> RunRecord:
        (self.bench.work / f"operator-metrics-{self.tag}.txt").write_text(self.op.metrics())
        self.record.operator_exit = self.op.stop()
        self.record.operator_warnings = self.op.warnings()
        self.emulator.set_ses_rps(None)
        remove_account(self.admin)
        return self.record
