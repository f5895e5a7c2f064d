"""What goes wrong during a soak, at random: SIGKILL and SIGSTOP/SIGCONT
of either replica, a kube-apiserver restart, connections to the API server
or to AWS dropped or stalled, the API server's connections gone silent
without a reset (its node vanished), SES throttling below the configured
rate, and bursts of 5xx and slow responses from AWS. Every fault is recorded."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

from .proxy import Proxy
from .replicas import LeaseRecorder, Replica, Supervisor


class Injector:
    def __init__(self, rng: random.Random, replicas: list[Replica], supervisor: Supervisor, kube_proxy: Proxy,
                 aws_proxy: Proxy, endpoint: str, ground: Path, ses_rps: float, lease: LeaseRecorder) -> None:
        self.rng = rng
        self.replicas = replicas
        self.supervisor = supervisor
        self.kube_proxy = kube_proxy
        self.aws_proxy = aws_proxy
        self.endpoint = endpoint
        self.ground = ground
        self.ses_rps = ses_rps
        self.lease = lease
        self.faults: list[dict[str, Any]] = []
        self.running = True
        self.thread = threading.Thread(target=self._loop, name="faults", daemon=True)

    def _loop(self) -> None:
        kinds: list[tuple[float, Callable[[], dict[str, Any]]]] = [
            (2, self.kill), (2, self.freeze), (1, self.restart_apiserver), (1.5, self.drop_kube),
            (1.5, self.stall_kube), (1, self.silence_kube), (1.5, self.drop_aws), (1.5, self.stall_aws),
            (1.5, self.throttle), (1.5, self.errors), (1, self.slow)]
        time.sleep(self.rng.uniform(5, 15))
        while self.running:
            fault = self.rng.choices([k for _, k in kinds], [w for w, _ in kinds])[0]
            began = time.time()
            try:
                detail = fault()
            except Exception as e:
                detail = {"error": f"{type(e).__name__}: {e}"}
            self.faults.append({"time": began, "end": time.time(), "fault": fault.__name__, **detail})
            # Faults overlap a little: the next may start before this one's effects are over.
            time.sleep(self.rng.uniform(3, 15))

    def stop(self) -> None:
        self.running = False
        self.thread.join(timeout=90)
        self._emulator({})
        for r in self.replicas:
            r.signal(signal.SIGCONT)

    # --- the faults ----------------------------------------------------------

    def _replica(self) -> Replica:
        """The leader, more often than not: its faults are the ones that test fencing."""
        holder = self.lease.records[-1]["holder"] if self.lease.records else None
        leaders = [r for r in self.replicas if r.history and r.history[-1].identity == holder]
        if leaders and self.rng.random() < 0.7:
            return leaders[0]
        return self.rng.choice(self.replicas)

    def kill(self) -> dict[str, Any]:
        r = self._replica()
        pid = r.proc.pid if r.proc else None
        self.supervisor.hold(r, self.rng.uniform(1, 8))
        r.signal(signal.SIGKILL)
        return {"replica": r.name, "pid": pid}

    def freeze(self) -> dict[str, Any]:
        """Longer than the Lease at times: the frozen leader must not write
        after it thaws (its fence closed; it exits at its next renewal)."""
        r = self._replica()
        seconds = self.rng.choice([3, 8, 20, 25])
        pid = r.proc.pid if r.proc else None
        r.signal(signal.SIGSTOP)
        time.sleep(seconds)
        r.signal(signal.SIGCONT)
        return {"replica": r.name, "pid": pid, "seconds": seconds}

    def restart_apiserver(self) -> dict[str, Any]:
        pid = int((self.ground / "apiserver.pid").read_text())
        sig = self.rng.choice([signal.SIGTERM, signal.SIGKILL])
        os.kill(pid, sig)
        return {"signal": sig.name, "pid": pid}

    def drop_kube(self) -> dict[str, Any]:
        return self._network(self.kube_proxy.drop, 8)

    def stall_kube(self) -> dict[str, Any]:
        return self._network(self.kube_proxy.stall, 12)

    def silence_kube(self) -> dict[str, Any]:
        self.kube_proxy.silence()
        return {}

    def drop_aws(self) -> dict[str, Any]:
        return self._network(self.aws_proxy.drop, 8)

    def stall_aws(self) -> dict[str, Any]:
        return self._network(self.aws_proxy.stall, 12)

    def _network(self, fault: Callable[[float], None], longest: float) -> dict[str, Any]:
        """A proxy fault for 1 to `longest` seconds."""
        seconds = self.rng.uniform(1, longest)
        fault(seconds)
        time.sleep(seconds)
        return {"seconds": round(seconds, 1)}

    def throttle(self) -> dict[str, Any]:
        rps = round(self.ses_rps * self.rng.choice([0.05, 0.1, 0.25, 0.5]), 2)
        seconds = self.rng.uniform(10, 40)
        return self._for(seconds, {"ses_rps": rps}, {"ses_rps": rps})

    def errors(self) -> dict[str, Any]:
        rate = self.rng.choice([0.1, 0.3, 0.6])
        seconds = self.rng.uniform(3, 20)
        return self._for(seconds, {"error_rate": rate, "sqs": True, "seed": self.rng.randrange(1 << 30)},
                         {"error_rate": rate})

    def slow(self) -> dict[str, Any]:
        delay = self.rng.choice([1, 3, 6])
        seconds = self.rng.uniform(5, 25)
        return self._for(seconds, {"slow_rate": 0.5, "slow_seconds": delay, "seed": self.rng.randrange(1 << 30)},
                         {"slow_seconds": delay})

    def _for(self, seconds: float, setting: dict[str, Any], detail: dict[str, Any]) -> dict[str, Any]:
        self._emulator(setting)
        time.sleep(seconds)
        self._emulator({})
        return {**detail, "seconds": round(seconds, 1)}

    def _emulator(self, setting: dict[str, Any]) -> None:
        req = urllib.request.Request(f"{self.endpoint}/_emulator/faults", data=json.dumps(setting).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=10).read()
