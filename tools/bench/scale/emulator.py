"""The AWS emulator's admin API (SRO_AWS_ENDPOINT): state reset, fault
injection (the SES rate), its per-operation call counters, and marking
identities verified."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from .measure import AwsCalls


@dataclass(frozen=True)
class Emulator:
    endpoint: str

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.endpoint + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            raw = resp.read()
        return json.loads(raw) if path.startswith("/_emulator") and raw else {}

    def reset(self) -> None:
        """Fresh AWS state, counters and faults."""
        self.request("POST", "/moto-api/reset")

    def calls(self) -> AwsCalls:
        """AWS calls since the last reset."""
        return AwsCalls.from_emulator(self.request("GET", "/_emulator/calls"))

    def reset_calls(self) -> None:
        self.request("POST", "/_emulator/calls/reset")

    def set_ses_rps(self, rps: float | None) -> None:
        self.request("POST", "/_emulator/faults", {"ses_rps": rps})

    def verify_identities(self, domains: list[str], deadline: float) -> int:
        """Moves each identity to SUCCESS (what AWS's DNS checks would do) as
        soon as the operator has created it. Returns how many were verified
        before `deadline` (monotonic)."""
        pending = set(range(len(domains)))
        while pending and time.monotonic() < deadline:
            for i in sorted(pending):
                try:
                    self.request("POST", "/_emulator/identity", {"identity": domains[i],
                                                                 "verification": "SUCCESS", "mail_from": "SUCCESS"})
                    pending.discard(i)
                except urllib.error.HTTPError:  # not created yet
                    pass
            if pending:
                time.sleep(0.5)
        return len(domains) - len(pending)
