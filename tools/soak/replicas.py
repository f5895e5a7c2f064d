"""The operator replicas as a kubelet would run them: each restarted a
moment after it exits (unless the fault injector holds it down), each
process with its own AWS access key so the emulator's log tells who made a
call; their memory, sampled; and the Lease record, polled."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LEASE_NAME = "soak"
LEASE_NAMESPACE = "soak-sys"
CLUSTER_NAME = "soak"
ACCOUNT = "soak"


@dataclass
class Process:
    """One start of a replica: the Lease identity it uses and its AWS key."""
    replica: str
    identity: str
    key: str
    pid: int
    started: float
    ended: float | None = None
    exit: int | None = None


@dataclass
class Replica:
    name: str
    binary: Path
    kubeconfig: Path
    aws_endpoint: str
    work: Path
    drift_seconds: int
    rate_seconds: int
    ses_rps: float
    proc: subprocess.Popen | None = None
    starts: int = 0
    frozen: bool = False
    history: list[Process] = field(default_factory=list)
    rss_max_kib: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        with self.lock:
            self.starts += 1
            key = f"SOAK{self.name.upper()}{self.starts:03d}"
            port = _free_port()
            log = open(self.work / f"replica-{self.name}-{self.starts:03d}.log", "w")
            env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "AWS_ENDPOINT_URL": self.aws_endpoint,
                   "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": "testing",
                   "RUST_LOG": os.environ.get("SOAK_OPERATOR_LOG", "info"), "RUST_BACKTRACE": "1"}
            env.pop("POD_NAME", None)
            env.pop("POD_NAMESPACE", None)
            self.proc = subprocess.Popen(
                [str(self.binary), "run", "--default-account", ACCOUNT, "--account-selector", "soak=on",
                 "--cluster-name", CLUSTER_NAME, "--leader-election", "--lease-name", LEASE_NAME,
                 "--lease-namespace", LEASE_NAMESPACE, "--metrics-addr", f"127.0.0.1:{port}",
                 "--drift-interval-seconds", str(self.drift_seconds),
                 "--rate-interval-seconds", str(self.rate_seconds),
                 "--ses-calls-per-second", str(self.ses_rps), "--log-json"],
                env=env, stdout=log, stderr=subprocess.STDOUT)
            self.frozen = False
            # The identity main.rs derives without POD_NAME: hostname-pid.
            self.history.append(Process(self.name, f"{socket.gethostname()}-{self.proc.pid}", key,
                                        self.proc.pid, time.time()))

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        with self.lock:
            if self.alive():
                self.proc.send_signal(sig)
                if sig == signal.SIGSTOP:
                    self.frozen = True
                if sig == signal.SIGCONT:
                    self.frozen = False

    def reap(self) -> bool:
        """Records an exit; True when the process has exited."""
        with self.lock:
            if self.proc is None or self.proc.poll() is None:
                return False
            last = self.history[-1]
            if last.ended is None:
                last.ended, last.exit = time.time(), self.proc.returncode
            return True

    def sample_rss(self) -> None:
        with self.lock:
            if not self.alive():
                return
            try:
                for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        self.rss_max_kib = max(self.rss_max_kib, int(line.split()[1]))
            except (OSError, ValueError):
                pass

    def stop(self) -> None:
        with self.lock:
            if self.proc is None:
                return
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGCONT)
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        self.reap()


class Supervisor:
    """Restarts an exited replica after a short back-off, samples memory."""

    def __init__(self, replicas: list[Replica]) -> None:
        self.replicas = replicas
        self.held: dict[str, float] = {}  # replica -> monotonic time it may restart
        self.running = True
        self.thread = threading.Thread(target=self._loop, name="supervisor", daemon=True)

    def hold(self, replica: Replica, seconds: float) -> None:
        self.held[replica.name] = time.monotonic() + seconds

    def _loop(self) -> None:
        exited_at: dict[str, float] = {}
        while self.running:
            for r in self.replicas:
                r.sample_rss()
                if r.reap():
                    exited_at.setdefault(r.name, time.monotonic())
                    ready = max(exited_at[r.name] + 1.0, self.held.get(r.name, 0.0))
                    if time.monotonic() >= ready and self.running:
                        r.start()
                        exited_at.pop(r.name, None)
            time.sleep(0.5)

    def stop(self) -> None:
        self.running = False
        self.thread.join(timeout=5)
        for r in self.replicas:
            r.stop()


class LeaseRecorder:
    """Polls the Lease twice a second (directly, not through the proxy) and
    keeps every distinct (holder, acquireTime, renewTime) it sees."""

    def __init__(self, kube: Any) -> None:
        self.kube = kube
        self.records: list[dict[str, Any]] = []
        self.running = True
        self.thread = threading.Thread(target=self._loop, name="lease", daemon=True)

    def _loop(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases/{LEASE_NAME}"
        last = None
        while self.running:
            try:
                lease = self.kube.get_opt(path)
            except Exception:  # the apiserver restarts under the soak
                lease = None
            if lease is not None:
                spec = lease.get("spec") or {}
                seen = (spec.get("holderIdentity"), spec.get("acquireTime"), spec.get("renewTime"),
                        spec.get("leaseDurationSeconds"))
                if seen != last:
                    last = seen
                    self.records.append({"observed": time.time(), "holder": seen[0], "acquireTime": seen[1],
                                         "renewTime": seen[2], "leaseDurationSeconds": seen[3]})
            time.sleep(0.5)

    def stop(self) -> None:
        self.running = False
        self.thread.join(timeout=5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def history_json(replicas: list[Replica]) -> list[dict[str, Any]]:
    return [json.loads(json.dumps(p.__dict__)) for r in replicas for p in r.history]
