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

It also keeps a write log per resource (every SES v2 and SNS call that
changes or publishes to a configuration set, email identity or topic,
keyed `configuration-set/<name>`, `identity/<name>` or `topic/<ARN>`, so a
test can prove that
nothing wrote to another tenant's resource) and denies chosen operations
to chosen IAM roles: calls signed with credentials from AssumeRole of a
denied role fail as AWS does when the role's policy lacks the action
(SES v2: 403 AccessDeniedException; SNS: 403 AuthorizationError).

And a request log (`GET /_emulator/log`): every call in arrival order with
its signing time and key, operation, resource, outcome and, for the SES v2
sending-options write, what it set; a soak's invariant checker reads it to
tell who wrote what when. Slow responses (`slow_rate`, `slow_seconds`)
delay a fraction of the faultable calls before moto sees them.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from numbers import Integral
from typing import Any, Callable
from urllib.parse import parse_qs, unquote

from moto.core.responses import BaseResponse
from moto.sesv2.models import sesv2_backends
from moto.sts.models import sts_backends
from moto.utilities.utils import get_partition

from . import findings, identities, tenants
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
    # That fraction of faultable calls waits `slow_seconds` before it is served.
    slow_rate: float = 0.0
    slow_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"ses_rps": self.ses_rps, "ses_burst": self.ses_burst, "error_rate": self.error_rate,
                "seed": self.seed, "sqs": self.sqs, "slow_rate": self.slow_rate, "slow_seconds": self.slow_seconds}


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
            self.writes: dict[str, Counter[str]] = {}
            self.denied_calls: Counter[str] = Counter()
            self.dropped_events: Counter[str] = Counter()
            self.deny_rules: dict[str, set[str]] = {}
            self.global_faults = Faults()
            self.region_faults: dict[str, Faults] = {}
            self.buckets: dict[tuple[str, str], tuple[float, float]] = {}
            self.log: list[dict[str, Any]] = []
            self.log_dropped = 0

    def reset_calls(self) -> None:
        with self.lock:
            self.calls.clear()
            self.throttled.clear()
            self.failed.clear()
            self.by_access_key.clear()
            self.writes.clear()
            self.denied_calls.clear()
            self.dropped_events.clear()
            self.log = []
            self.log_dropped = 0

    def set_faults(self, region: str | None, ses_rps: float | None, error_rate: float, seed: int | None,
                   burst: int = 1, sqs: bool = False, slow_rate: float = 0.0, slow_seconds: float = 0.0) -> None:
        """Replace the setting (global, or of one region); its buckets start full."""
        faults = Faults(ses_rps or None, error_rate, seed, random.Random(seed), burst, sqs, slow_rate, slow_seconds)
        with self.lock:
            if region is None:
                self.global_faults = faults
                self.buckets.clear()
            else:
                self.region_faults[region] = faults
                if faults.ses_rps is None and not faults.error_rate and not faults.slow_rate:
                    del self.region_faults[region]
                self.buckets = {k: v for k, v in self.buckets.items() if k[1] != region}

    def faults(self) -> dict[str, Any]:
        with self.lock:
            return {**self.global_faults.to_dict(),
                    "regions": {r: f.to_dict() for r, f in sorted(self.region_faults.items())}}

    def set_denied(self, role_arn: str, operations: list[str]) -> None:
        """Deny `operations` (`service:Operation`, or `service:*`) to the
        role; an empty list lifts the rule."""
        with self.lock:
            if operations:
                self.deny_rules[role_arn] = set(operations)
            else:
                self.deny_rules.pop(role_arn, None)

    def denied(self) -> dict[str, list[str]]:
        with self.lock:
            return {role: sorted(ops) for role, ops in sorted(self.deny_rules.items())}

    def admit(self, service: str, operation: str, account: str, region: str,
              access_key: str | None = None, role_arn: str | None = None) -> str | None:
        """Count the call (also per signing access key, so a test can tell
        which client made it); return "deny", "throttle", "fail" or None."""
        key = f"{service}:{operation}"
        with self.lock:
            self.calls[key] += 1
            if access_key:
                self.by_access_key.setdefault(access_key, Counter())[key] += 1
            rule = self.deny_rules.get(role_arn or "", set())
            if key in rule or f"{service}:*" in rule:
                self.denied_calls[key] += 1
                return "deny"
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

    def slow_for(self, service: str, region: str) -> float:
        """Seconds this call waits before it is served (0 for most)."""
        with self.lock:
            faults = self.region_faults.get(region, self.global_faults)
            faultable = service in FAULT_SERVICES or (service == "sqs" and faults.sqs)
            if faultable and faults.slow_rate and faults.rng.random() < faults.slow_rate:
                return faults.slow_seconds
        return 0.0

    def record_call(self, entry: dict[str, Any]) -> None:
        """One line of the request log; the oldest go first past LOG_LIMIT."""
        with self.lock:
            entry["seq"] = len(self.log) + self.log_dropped
            self.log.append(entry)
            if len(self.log) > LOG_LIMIT:
                drop = len(self.log) - LOG_LIMIT
                del self.log[:drop]
                self.log_dropped += drop

    def log_since(self, seq: int, limit: int = 10_000) -> dict[str, Any]:
        """Entries with `seq` >= the given one (at most `limit`), and where to go on."""
        with self.lock:
            start = max(0, seq - self.log_dropped)
            entries = self.log[start:start + limit]
            return {"entries": entries, "next": self.log_dropped + start + len(entries),
                    "dropped": self.log_dropped}

    def record_write(self, resource: str, key: str) -> None:
        """A write that succeeded (a refused one, e.g. AlreadyExists, wrote nothing)."""
        with self.lock:
            self.writes.setdefault(resource, Counter())[key] += 1

    def record_dropped(self, topic_arn: str) -> None:
        """An SES event the topic's policy refused (SNS drops it)."""
        with self.lock:
            self.dropped_events[topic_arn] += 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "calls": dict(sorted(self.calls.items())),
                "throttled": dict(sorted(self.throttled.items())),
                "failed": dict(sorted(self.failed.items())),
                "by_access_key": {k: dict(sorted(c.items())) for k, c in sorted(self.by_access_key.items())},
                "denied": dict(sorted(self.denied_calls.items())),
                "writes": {r: dict(sorted(c.items())) for r, c in sorted(self.writes.items())},
                "dropped_events": dict(sorted(self.dropped_events.items())),
            }


CONTROL = Control()

# Entries the request log keeps (a 30-minute soak makes about 100,000).
LOG_LIMIT = 1_000_000


def _deny_response(resp: BaseResponse, operation: str, role_arn: str) -> tuple[int, dict[str, str], str]:
    """What AWS answers when the caller's policy lacks the action."""
    request_id = str(uuid.uuid4())
    role = role_arn.rsplit("/", 1)[-1]
    partition = role_arn.split(":")[1] if role_arn.count(":") > 1 else "aws"
    user = f"arn:{partition}:sts::{resp.current_account}:assumed-role/{role}/session"
    if resp.service_name == "sesv2":
        message = f"User: {user} is not authorized to perform: ses:{operation}"
        headers = {"x-amzn-ErrorType": "AccessDeniedException", "Content-Type": "application/json",
                   "x-amzn-RequestId": request_id}
        return 403, headers, json.dumps({"message": message})
    message = f"User: {user} is not authorized to perform: SNS:{operation}"
    body = (
        "<ErrorResponse><Error><Type>Sender</Type><Code>AuthorizationError</Code>"
        f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return 403, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, body


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


def _role_arn(resp: BaseResponse, access_key: str | None) -> str | None:
    """The IAM role whose AssumeRole credentials signed the request."""
    if not access_key or resp.service_name not in ("sesv2", "sns"):
        return None
    try:
        backend = sts_backends[resp.current_account][get_partition(resp.region)]
    except KeyError:
        return None
    role = backend.get_assumed_role_from_access_key(access_key)
    return role.role_arn if role else None


SES_SET_PATH = re.compile(r"^/v2/email/configuration-sets/([^/]+)")
SES_IDENTITY_PATH = re.compile(r"^/v2/email/identities/([^/]+)")
SNS_WRITES = {"CreateTopic", "DeleteTopic", "SetTopicAttributes", "Subscribe", "Publish", "TagResource",
              "UntagResource", "AddPermission", "RemovePermission", "PutDataProtectionPolicy"}


def _set_of_arn(arn: str) -> str | None:
    """`configuration-set/<name>` or `identity/<name>` of a tagged ARN."""
    for marker in (":configuration-set/", ":identity/"):
        if marker in arn:
            return f"{marker[1:]}{arn.split(marker, 1)[1]}"
    return None


def _written_resource(resp: BaseResponse, operation: str) -> str | None:
    """The configuration set or topic a write goes to, if any."""
    service = resp.service_name
    if service == "sesv2":
        if operation.startswith(("Get", "List")) or operation in SENDING_OPERATIONS:
            return None
        match = SES_SET_PATH.match(resp.path or "")
        if match:
            return f"configuration-set/{unquote(match.group(1))}"
        match = SES_IDENTITY_PATH.match(resp.path or "")
        if match:
            return f"identity/{unquote(match.group(1))}"
        if operation == "CreateEmailIdentity":
            name = _json_body(resp).get("EmailIdentity")
            return f"identity/{name}" if name else None
        if operation == "CreateConfigurationSet":
            name = _json_body(resp).get("ConfigurationSetName")
            return f"configuration-set/{name}" if name else None
        if operation == "TagResource":
            return _set_of_arn(str(_json_body(resp).get("ResourceArn", "")))
        if operation == "UntagResource":
            return _set_of_arn(str((resp.querystring.get("ResourceArn") or [""])[0]))
        return None
    if service == "sns" and operation in SNS_WRITES:
        if operation == "CreateTopic":
            name = resp._get_param("Name")
            return f"topic/arn:{get_partition(resp.region)}:sns:{resp.region}:{resp.current_account}:{name}"
        arn = resp._get_param("TopicArn") or resp._get_param("ResourceArn")
        return f"topic/{arn}" if arn else None
    return None


def _json_body(resp: BaseResponse) -> dict[str, Any]:
    try:
        body = json.loads(resp.body or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _log_entry(resp: BaseResponse, operation: str, access_key: str | None, resource: str | None) -> dict[str, Any]:
    headers = resp.headers if hasattr(resp, "headers") and resp.headers else {}
    entry: dict[str, Any] = {
        "time": time.time(),
        # SigV4's X-Amz-Date (second precision): when the client signed it,
        # i.e. sent it, however long the network then held it.
        "signed": headers.get("X-Amz-Date") or headers.get("x-amz-date"),
        # When a stamping proxy in front (the soak's) saw it leave the client.
        "sent": _float(headers.get("X-Sent-At")),
        "key": access_key,
        "op": f"{resp.service_name}:{operation}",
        "region": resp.region,
        "resource": resource,
    }
    if resp.service_name == "sesv2" and resource is None:
        # What a read names: `configuration-set/<name>` or `identity/<name>`.
        for pattern, kind in ((SES_SET_PATH, "configuration-set"), (SES_IDENTITY_PATH, "identity")):
            match = pattern.match(resp.path or "")
            if match:
                entry["reads"] = f"{kind}/{unquote(match.group(1))}"
                break
    owner = _owner_tag(resp, operation)
    if owner is not None:
        entry["owner"] = owner
    if operation == "PutConfigurationSetSendingOptions":
        entry["sending_enabled"] = bool(_json_body(resp).get("SendingEnabled", False))
    if operation == "CreateConfigurationSet":
        options = _json_body(resp).get("SendingOptions") or {}
        entry["sending_enabled"] = bool(options.get("SendingEnabled", True))
    return entry


OWNER_TAG = "ses.reputation.io/owner"
TAGGING_OPERATIONS = {"CreateConfigurationSet", "CreateEmailIdentity", "CreateTopic", "TagResource"}


def _owner_tag(resp: BaseResponse, operation: str) -> str | None:
    """The operator's owner tag a create or TagResource writes, if any."""
    if operation not in TAGGING_OPERATIONS:
        return None
    if resp.service_name == "sesv2":
        tags = _json_body(resp).get("Tags") or []
        return next((str(t.get("Value")) for t in tags if isinstance(t, dict) and t.get("Key") == OWNER_TAG), None)
    if resp.service_name == "sns":
        query = resp.querystring or {}
        for key, values in query.items():
            if key.startswith("Tags.member.") and key.endswith(".Key") and values and values[0] == OWNER_TAG:
                value = query.get(key[: -len("Key")] + "Value") or [""]
                return value[0]
    return None


def call_action(self: BaseResponse) -> Any:
    operation = self._get_action()
    if operation:
        access_key = _access_key(self)
        role_arn = _role_arn(self, access_key)
        resource = _written_resource(self, operation)
        entry = _log_entry(self, operation, access_key, resource)
        verdict = CONTROL.admit(self.service_name or "", operation, self.current_account, self.region,
                                access_key, role_arn)
        if verdict:
            CONTROL.record_call({**entry, "outcome": verdict})
            if verdict == "deny":
                return _deny_response(self, operation, role_arn or "")
            return _fault_response(self, verdict)
        delay = CONTROL.slow_for(self.service_name or "", self.region)
        if delay:
            time.sleep(delay)
        # moto raises for AWS errors; a returned 4xx/5xx tuple wrote nothing either.
        try:
            result = _moto_call_action(self)
        except Exception as err:
            CONTROL.record_call({**entry, "outcome": f"error:{type(err).__name__}"})
            raise
        status = result[0] if isinstance(result, tuple) and isinstance(result[0], int) else 200
        CONTROL.record_call({**entry, "outcome": "ok" if status < 400 else f"status:{status}"})
        if resource and status < 400:
            CONTROL.record_write(resource, f"{self.service_name}:{operation}")
        return result
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
            slow_rate = float(data.get("slow_rate") or 0.0)
            slow_seconds = float(data.get("slow_seconds") or 0.0)
            if not 0.0 <= slow_rate <= 1.0 or not 0.0 <= slow_seconds <= 60.0:
                raise ValueError("slow_rate must be within 0..1 and slow_seconds within 0..60")
            region = data.get("region")
            CONTROL.set_faults(
                str(region) if region else None,
                float(rps) if rps is not None else None,
                rate,
                int(seed) if seed is not None else None,
                int(burst),
                bool(data.get("sqs", False)),
                slow_rate,
                slow_seconds,
            )
            return 200, CONTROL.faults()
        if (method, path) == ("GET", "/_emulator/log"):
            query = parse_qs(environ.get("QUERY_STRING", ""))
            since = int((query.get("since") or ["0"])[0])
            limit = int((query.get("limit") or ["10000"])[0])
            if since < 0 or not 1 <= limit <= 100_000:
                raise ValueError("since must be >= 0 and limit within 1..100000")
            return 200, CONTROL.log_since(since, limit)
        if (method, path) == ("GET", "/_emulator/deny"):
            return 200, CONTROL.denied()
        if (method, path) == ("POST", "/_emulator/deny"):
            data = self._json(environ)
            role_arn = data["role_arn"]
            operations = data.get("operations") or []
            if not isinstance(role_arn, str) or not isinstance(operations, list) \
                    or not all(isinstance(o, str) and ":" in o for o in operations):
                raise ValueError("role_arn must be a string and operations a list of service:Operation")
            CONTROL.set_denied(role_arn, operations)
            return 200, CONTROL.denied()
        if (method, path) == ("POST", "/_emulator/account"):
            data = self._json(environ)
            account_id = str(data.get("account_id", "123456789012"))
            state = account_state(sesv2_backends[account_id][data.get("region", "us-east-1")])
            # Quota, checked first so a bad value changes nothing: a number
            # overrides SendQuota's field, null gives it back to AWS's
            # default (sent_last_24_hours: to the count of sent recipients).
            quota = {}
            for field in ("max_24_hour_send", "max_send_rate", "sent_last_24_hours"):
                if field in data:
                    value = data[field]
                    if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                              or value < 0):
                        raise ValueError(f"{field} must be a number >= 0 or null")
                    quota[field] = None if value is None else float(value)
            if "enforcement_status" in data:
                state.enforcement_status = str(data["enforcement_status"])
            if "sending_enabled" in data:
                state.sending_enabled = bool(data["sending_enabled"])
            if "production_access_enabled" in data:
                state.production_access_enabled = bool(data["production_access_enabled"])
            for field, value in quota.items():
                setattr(state, field, value)
            return 200, state.to_dict()
        if (method, path) == ("POST", "/_emulator/recommendation"):
            data = self._json(environ)
            backend = sesv2_backends[str(data.get("account_id", "123456789012"))][data.get("region", "us-east-1")]
            return 200, findings.admin(backend, data)
        if (method, path) == ("POST", "/_emulator/reputation-entity"):
            data = self._json(environ)
            backend = sesv2_backends[str(data.get("account_id", "123456789012"))][data.get("region", "us-east-1")]
            return 200, tenants.admin_entity(backend, data)
        if (method, path) == ("POST", "/_emulator/identity"):
            data = self._json(environ)
            backend = sesv2_backends[str(data.get("account_id", "123456789012"))][data.get("region", "us-east-1")]
            return 200, identities.admin(backend, data)
        return 404, {"error": f"no admin route {method} {path}"}
