"""Call counting, fault injection and the `/_emulator/` admin API.

Owns: a hook around moto's `BaseResponse.call_action` (the one place every
service's request passes with its operation name known, before any state
changes) that counts each call as `service:Operation`, throttles SES v2
control-plane calls with a token bucket per account+region (`ses_rps`
tokens per second, `ses_burst` tokens deep; README.md states the rules) and
fails a fraction of SES v2, SNS and CloudWatch calls (and SQS calls, when
asked: tests read their own queues) with HTTP 500; and the
WSGI middleware that serves the admin API and resets this state with moto's
`/moto-api/reset`.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from numbers import Integral
from typing import Any, Callable

from moto.core.responses import BaseResponse
from moto.sesv2.models import sesv2_backends

from .sesv2 import account_state

# AWS throttles every SES action except sending at one request per second.
SENDING_OPERATIONS = {"SendEmail", "SendRawEmail", "SendBulkEmail"}
FAULT_SERVICES = {"sesv2", "sns", "cloudwatch"}
INTERNAL_FAILURE = "The request processing has failed because of an unknown error, exception or failure."
# Float slack when refilling, so that a call exactly 1/ses_rps s after the
# bucket ran dry passes even when that time is not exact in binary.
TOKEN_EPSILON = 1e-9


@dataclass
class Faults:
    """One fault setting: for every region, or for one region only."""

    ses_rps: float | None = None
    error_rate: float = 0.0
    seed: int | None = None
    rng: random.Random = field(default_factory=random.Random)
    ses_burst: int = 1
    # SQS calls fail at `error_rate` too (the operator's event stream consumer).
    sqs: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"ses_rps": self.ses_rps, "ses_burst": self.ses_burst, "error_rate": self.error_rate,
                "seed": self.seed, "sqs": self.sqs}


class Control:
    """Counters and fault settings shared by all request threads.

    Faults can be scoped to one region so that a test that turns them on
    does not disturb tests running in parallel against other regions.
    `clock` (seconds, monotonic) is there for tests of the token bucket.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.calls: Counter[str] = Counter()
            self.throttled: Counter[str] = Counter()
            self.failed: Counter[str] = Counter()
            self.by_access_key: dict[str, Counter[str]] = {}
            self.global_faults = Faults()
            self.region_faults: dict[str, Faults] = {}
            self.buckets: dict[tuple[str, str], tuple[float, float]] = {}

    def reset_calls(self) -> None:
        with self.lock:
            self.calls.clear()
            self.throttled.clear()
            self.failed.clear()
            self.by_access_key.clear()

    def set_faults(self, region: str | None, ses_rps: float | None, error_rate: float, seed: int | None,
                   burst: int = 1, sqs: bool = False) -> None:
        """Replace the setting (global, or of one region); its buckets start full."""
        faults = Faults(ses_rps or None, error_rate, seed, random.Random(seed), burst, sqs)
        with self.lock:
            if region is None:
                self.global_faults = faults
                self.buckets.clear()
            else:
                self.region_faults[region] = faults
                if faults.ses_rps is None and not faults.error_rate:
                    del self.region_faults[region]
                self.buckets = {k: v for k, v in self.buckets.items() if k[1] != region}

    def faults(self) -> dict[str, Any]:
        with self.lock:
            return {**self.global_faults.to_dict(),
                    "regions": {r: f.to_dict() for r, f in sorted(self.region_faults.items())}}

    def admit(self, service: str, operation: str, account: str, region: str,
              access_key: str | None = None) -> str | None:
        """Count the call (also per signing access key, so a test can tell
        which client made it); return "throttle", "fail" or None."""
        key = f"{service}:{operation}"
        with self.lock:
            self.calls[key] += 1
            if access_key:
                self.by_access_key.setdefault(access_key, Counter())[key] += 1
            faults = self.region_faults.get(region, self.global_faults)
            if service == "sesv2" and operation not in SENDING_OPERATIONS and faults.ses_rps:
                # Token bucket: starts full at `ses_burst` tokens, refills
                # continuously, a call takes one whole token; a throttled
                # call takes nothing.
                now = self.clock()
                burst = float(faults.ses_burst)
                tokens, last = self.buckets.get((account, region), (burst, now))
                tokens = min(burst, tokens + (now - last) * faults.ses_rps)
                if tokens < 1.0 - TOKEN_EPSILON:
                    self.buckets[(account, region)] = (tokens, now)
                    self.throttled[key] += 1
                    return "throttle"
                self.buckets[(account, region)] = (max(0.0, tokens - 1.0), now)
            faultable = service in FAULT_SERVICES or (service == "sqs" and faults.sqs)
            if faultable and faults.error_rate and faults.rng.random() < faults.error_rate:
                self.failed[key] += 1
                return "fail"
        return None

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "calls": dict(sorted(self.calls.items())),
                "throttled": dict(sorted(self.throttled.items())),
                "failed": dict(sorted(self.failed.items())),
                "by_access_key": {k: dict(sorted(c.items())) for k, c in sorted(self.by_access_key.items())},
            }


CONTROL = Control()


def _fault_response(resp: BaseResponse, verdict: str) -> tuple[int, dict[str, str], str]:
    request_id = str(uuid.uuid4())
    service = resp.service_name
    if service == "sesv2":
        status, code, message = (
            (429, "TooManyRequestsException", "Too many requests.")
            if verdict == "throttle"
            else (500, "InternalFailure", INTERNAL_FAILURE)
        )
        headers = {"x-amzn-ErrorType": code, "Content-Type": "application/json", "x-amzn-RequestId": request_id}
        return status, headers, json.dumps({"message": message})
    # SNS and CloudWatch speak the query protocol (or its JSON variant, which
    # boto3 uses for CloudWatch and which carries the code in x-amzn-query-error).
    if "json" in (resp.headers.get("Content-Type") or ""):
        headers = {
            "Content-Type": "application/x-amz-json-1.0",
            "x-amzn-query-error": "InternalFailure;Receiver",
            "x-amzn-RequestId": request_id,
        }
        return 500, headers, json.dumps({"__type": "InternalFailure", "message": INTERNAL_FAILURE})
    body = (
        "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code>"
        f"<Message>{INTERNAL_FAILURE}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return 500, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, body


_moto_call_action = BaseResponse.call_action


def _access_key(resp: BaseResponse) -> str | None:
    """The access key ID a SigV4 request was signed with."""
    auth = (resp.headers or {}).get("Authorization", "") if hasattr(resp, "headers") else ""
    marker = "Credential="
    if marker not in auth:
        return None
    return auth.split(marker, 1)[1].split("/", 1)[0] or None


def call_action(self: BaseResponse) -> Any:
    operation = self._get_action()
    if operation:
        verdict = CONTROL.admit(self.service_name or "", operation, self.current_account, self.region,
                                _access_key(self))
        if verdict:
            return _fault_response(self, verdict)
    return _moto_call_action(self)


def install() -> None:
    BaseResponse.call_action = call_action


class AdminApp:
    """WSGI middleware: `/_emulator/...` here, everything else to moto."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/moto-api/reset"):
            CONTROL.reset()
            return self.app(environ, start_response)
        if not path.startswith("/_emulator/"):
            return self.app(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            status, payload = self.route(method, path, environ)
        except (ValueError, TypeError, KeyError) as err:
            status, payload = 400, {"error": str(err)}
        body = json.dumps(payload).encode()
        start_response(
            f"{status} {'OK' if status == 200 else 'Error'}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]

    @staticmethod
    def _json(environ: dict[str, Any]) -> dict[str, Any]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        data = json.loads(raw or b"{}")
        if not isinstance(data, dict):
            raise ValueError("body must be a JSON object")
        return data

    def route(self, method: str, path: str, environ: dict[str, Any]) -> tuple[int, Any]:
        if (method, path) == ("GET", "/_emulator/calls"):
            return 200, CONTROL.snapshot()
        if (method, path) == ("POST", "/_emulator/calls/reset"):
            CONTROL.reset_calls()
            return 200, CONTROL.snapshot()
        if (method, path) == ("GET", "/_emulator/faults"):
            return 200, CONTROL.faults()
        if (method, path) == ("POST", "/_emulator/faults"):
            data = self._json(environ)
            rps = data.get("ses_rps")
            rate = float(data.get("error_rate") or 0.0)
            seed = data.get("seed")
            burst = data.get("ses_burst")
            burst = 1 if burst is None else burst
            if rps is not None and float(rps) < 0 or not 0.0 <= rate <= 1.0:
                raise ValueError("ses_rps must be >= 0 and error_rate within 0..1")
            if not isinstance(burst, Integral) or isinstance(burst, bool) or burst < 1:
                raise ValueError("ses_burst must be an integer >= 1")
            region = data.get("region")
            CONTROL.set_faults(
                str(region) if region else None,
                float(rps) if rps is not None else None,
                rate,
                int(seed) if seed is not None else None,
                int(burst),
                bool(data.get("sqs", False)),
            )
            return 200, CONTROL.faults()
        if (method, path) == ("POST", "/_emulator/account"):
            data = self._json(environ)
            account_id = str(data.get("account_id", "123456789012"))
            state = account_state(sesv2_backends[account_id][data.get("region", "us-east-1")])
            if "enforcement_status" in data:
                state.enforcement_status = str(data["enforcement_status"])
            if "sending_enabled" in data:
                state.sending_enabled = bool(data["sending_enabled"])
            if "production_access_enabled" in data:
                state.production_access_enabled = bool(data["production_access_enabled"])
            return 200, state.to_dict()
        return 404, {"error": f"no admin route {method} {path}"}
