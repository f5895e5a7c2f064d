"""SES v2 control plane that moto 5.2.5 lacks or shapes differently from AWS.

Owns: configuration-set option groups (Create/Get/Delete and the six
Put*Options calls, Auto Validation included), ListConfigurationSets (both
of its routes, paginated), event destinations, tags on configuration sets,
GetAccount and the account attribute calls, and the SendEmail checks that
depend on them (a `TenantName`'s through `tenants.py`). State lives
on moto's own objects: option groups and event destinations on moto's
`ses.models.ConfigurationSet` (so deleting the set deletes them), tags in
moto's SES tagger, account state on each `SESV2Backend` (one per
account+region; moto's reset recreates it).

The handlers are installed as methods of moto's `SESV2Response`: moto's
botocore-based router maps every SES v2 REST path to its operation name, and
`call_action` looks the handler up by that name; `install()` adds the URL
route that lets every /v2/email/ path reach that router, and names the
operation of the REST routes AWS serves that botocore's model no longer has
(`LEGACY_ROUTES`), so those are counted, throttled and handled like the rest.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections import OrderedDict
from typing import Any
from email.utils import parseaddr
from urllib.parse import unquote

from moto.ses.models import ConfigurationSet
from moto.sesv2 import urls
from moto.sesv2.models import SESV2Backend
from moto.sesv2.responses import SESV2Response

from . import events, identities
from .errors import (
    AccountSuspended,
    AlreadyExists,
    BadRequest,
    LimitExceeded,
    NotFound,
    SendingPaused,
)

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
EVENT_TYPES = {
    "SEND", "REJECT", "BOUNCE", "COMPLAINT", "DELIVERY", "OPEN", "CLICK",
    "RENDERING_FAILURE", "DELIVERY_DELAY", "SUBSCRIPTION",
}
TARGETS = (
    "SnsDestination", "CloudWatchDestination", "EventBridgeDestination",
    "KinesisFirehoseDestination", "PinpointDestination",
)
SNS_ARN_RE = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
SET_ARN_RE = re.compile(r"^arn:aws[a-z-]*:ses:[a-z0-9-]+:\d{12}:configuration-set/(.+)$")
IDENTITY_ARN_RE = re.compile(r"^arn:aws[a-z-]*:ses:[a-z0-9-]+:\d{12}:identity/(.+)$")
SUPPRESSION_REASONS = {"BOUNCE", "COMPLAINT"}
ON_OFF = {"ENABLED", "DISABLED"}
CONFIDENCE_VERDICTS = {"MEDIUM", "HIGH", "MANAGED"}
MAX_SETS = 10_000
MAX_DESTINATIONS = 10
MAX_TAGS = 50
# The SES v2 API reference gives no default or maximum PageSize for
# ListConfigurationSets. 1,000 is the documented page of SES v1's
# ListConfigurationSets and the bound of v2's ListEmailIdentities.
LIST_SETS_PAGE_SIZE = 1_000
SET_FILTER_KEYS = {"CONFIGURATION_SET_NAME_CONTAINS"}
# REST routes AWS serves whose operation botocore's SES v2 model has moved:
# since botocore 1.43.105 ListConfigurationSets is POST
# /v2/email/list-configuration-sets (aws-sdk-sesv2 1.145, the operator's SDK,
# sends that too), while AWS's API reference and older SDKs and CLIs use
# GET /v2/email/configuration-sets.
LEGACY_ROUTES = {("GET", "/v2/email/configuration-sets"): "ListConfigurationSets"}
# The reputation entity updates with the ARN's slashes left unencoded (the
# SDKs encode them; moto's router then matches by itself).
REPUTATION_UPDATE_PATH = re.compile(
    r"^/v2/email/reputation/entities/(?P<ReputationEntityType>[^/]+)/(?P<ReputationEntityReference>.+)"
    r"/(?P<sro_op>customer-managed-status|policy)$"
)
REPUTATION_UPDATES = {"customer-managed-status": "UpdateReputationEntityCustomerManagedStatus",
                      "policy": "UpdateReputationEntityPolicy"}


# --- account ---------------------------------------------------------------


class AccountState:
    """What GetAccount shows for one account+region."""

    def __init__(self) -> None:
        self.enforcement_status = "HEALTHY"
        self.sending_enabled = True
        self.production_access_enabled = True
        self.dedicated_ip_auto_warmup_enabled = False
        # New accounts get the account-level suppression list for both reasons.
        self.suppressed_reasons = ["BOUNCE", "COMPLAINT"]
        # Auto Validation (SuppressionAttributes.ValidationAttributes): absent until put.
        self.validation_attributes: dict[str, Any] | None = None
        # Quota overrides set through `POST /_emulator/account` (None = AWS's default / the count).
        self.max_24_hour_send: float | None = None
        self.max_send_rate: float | None = None
        self.sent_last_24_hours: float | None = None
        self._sent: list[tuple[float, int]] = []

    def record_sent(self, recipients: int) -> None:
        self._sent.append((time.time(), recipients))

    def to_dict(self) -> dict[str, Any]:
        cutoff = time.time() - 86_400
        self._sent = [s for s in self._sent if s[0] >= cutoff]
        # Sandbox and default production quotas of a new account.
        max_24h, rate = (50_000.0, 14.0) if self.production_access_enabled else (200.0, 1.0)
        sent = float(sum(n for _, n in self._sent))
        suppression: dict[str, Any] = {"SuppressedReasons": list(self.suppressed_reasons)}
        if self.validation_attributes is not None:
            suppression["ValidationAttributes"] = self.validation_attributes
        return {
            "DedicatedIpAutoWarmupEnabled": self.dedicated_ip_auto_warmup_enabled,
            "EnforcementStatus": self.enforcement_status,
            "ProductionAccessEnabled": self.production_access_enabled,
            "SendingEnabled": self.sending_enabled,
            "SendQuota": {
                "Max24HourSend": self.max_24_hour_send if self.max_24_hour_send is not None else max_24h,
                "MaxSendRate": self.max_send_rate if self.max_send_rate is not None else rate,
                "SentLast24Hours": self.sent_last_24_hours if self.sent_last_24_hours is not None else sent,
            },
            "SuppressionAttributes": suppression,
        }


def account_state(backend: SESV2Backend) -> AccountState:
    # Created lazily: moto's reset wipes the backend's __dict__, taking this with it.
    state = backend.__dict__.get("sro_account")
    if state is None:
        state = backend.__dict__["sro_account"] = AccountState()
    return state


# --- option groups -----------------------------------------------------------
# Each normaliser validates one option group as the request carries it and
# returns what GetConfigurationSet shows (None = group absent). A boolean the
# request leaves out is false, as in AWS: the Rust SDK omits false booleans, so
# `PutConfigurationSetSendingOptions {}` must disable sending.


def _enum(value: Any, allowed: set[str], field: str) -> str:
    if value not in allowed:
        raise BadRequest(f"Invalid value for {field}: {value!r}. Allowed: {sorted(allowed)}.")
    return value


def _obj(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"{field} must be an object.")
    return value


def sending_options(v: dict | None) -> dict:
    if v is None:
        return {"SendingEnabled": True}
    return {"SendingEnabled": bool(_obj(v, "SendingOptions").get("SendingEnabled", False))}


def reputation_options(v: dict | None, previous: dict | None = None) -> dict:
    if v is None:
        return {"ReputationMetricsEnabled": False}
    v = _obj(v, "ReputationOptions")
    out: dict[str, Any] = {"ReputationMetricsEnabled": bool(v.get("ReputationMetricsEnabled", False))}
    fresh = v.get("LastFreshStart", (previous or {}).get("LastFreshStart"))
    if fresh is not None:
        if not isinstance(fresh, (int, float)):
            raise BadRequest("LastFreshStart must be a timestamp.")
        out["LastFreshStart"] = fresh
    return out


def tracking_options(v: dict | None) -> dict | None:
    if v is None:
        return None
    v = _obj(v, "TrackingOptions")
    out: dict[str, Any] = {}
    if v.get("CustomRedirectDomain") is not None:
        domain = v["CustomRedirectDomain"]
        if not isinstance(domain, str) or not re.match(r"^[A-Za-z0-9.-]{1,253}$", domain):
            raise BadRequest(f"Invalid custom redirect domain: {domain!r}.")
        out["CustomRedirectDomain"] = domain
    if v.get("HttpsPolicy") is not None:
        out["HttpsPolicy"] = _enum(v["HttpsPolicy"], {"REQUIRE", "REQUIRE_OPEN_ONLY", "OPTIONAL"}, "HttpsPolicy")
    return out or None


def delivery_options(v: dict | None, pools: dict) -> dict:
    v = _obj(v, "DeliveryOptions") if v is not None else {}
    out: dict[str, Any] = {"TlsPolicy": _enum(v.get("TlsPolicy", "OPTIONAL"), {"REQUIRE", "OPTIONAL"}, "TlsPolicy")}
    pool = v.get("SendingPoolName")
    if pool is not None:
        if pool not in pools:
            raise NotFound(f"Dedicated IP pool {pool} does not exist.")
        out["SendingPoolName"] = pool
    seconds = v.get("MaxDeliverySeconds")
    if seconds is not None:
        if not isinstance(seconds, int) or isinstance(seconds, bool) or not 300 <= seconds <= 50_400:
            raise BadRequest("MaxDeliverySeconds must be between 300 and 50400 seconds.")
        out["MaxDeliverySeconds"] = seconds
    if v.get("SharedPoolDeliveryMode") is not None:
        out["SharedPoolDeliveryMode"] = _enum(
            v["SharedPoolDeliveryMode"], {"GLOBAL", "REGIONAL", "ACCOUNT"}, "SharedPoolDeliveryMode"
        )
    return out


def suppression_options(v: dict | None) -> dict | None:
    if v is None:
        return None
    v = _obj(v, "SuppressionOptions")
    reasons = v.get("SuppressedReasons", [])
    if not isinstance(reasons, list):
        raise BadRequest("SuppressedReasons must be a list.")
    out: dict[str, Any] = {
        "SuppressedReasons": [_enum(r, SUPPRESSION_REASONS, "SuppressedReasons") for r in reasons]
    }
    if v.get("SuppressionScope") is not None:
        out["SuppressionScope"] = _enum(v["SuppressionScope"], {"ACCOUNT", "TENANT"}, "SuppressionScope")
    if v.get("ValidationOptions") is not None:
        out["ValidationOptions"] = validation_threshold(v["ValidationOptions"], "ValidationOptions")
    return out


def validation_threshold(v: Any, field: str) -> dict[str, Any]:
    """Auto Validation: a set's `ValidationOptions` or the account's
    `ValidationAttributes` (the same `ConditionThreshold` inside)."""
    v = _obj(v, field)
    if v.get("ConditionThreshold") is None:
        raise BadRequest(f"{field}.ConditionThreshold is required.")
    ct = _obj(v["ConditionThreshold"], "ConditionThreshold")
    out: dict[str, Any] = {
        "ConditionThresholdEnabled": _enum(ct.get("ConditionThresholdEnabled"), ON_OFF, "ConditionThresholdEnabled")
    }
    if ct.get("OverallConfidenceThreshold") is not None:
        oc = _obj(ct["OverallConfidenceThreshold"], "OverallConfidenceThreshold")
        out["OverallConfidenceThreshold"] = {
            "ConfidenceVerdictThreshold": _enum(
                oc.get("ConfidenceVerdictThreshold"), CONFIDENCE_VERDICTS, "ConfidenceVerdictThreshold"
            )
        }
    return {"ConditionThreshold": out}


def vdm_options(v: dict | None) -> dict | None:
    if v is None:
        return None
    v = _obj(v, "VdmOptions")
    out: dict[str, Any] = {}
    for group, field in (("DashboardOptions", "EngagementMetrics"), ("GuardianOptions", "OptimizedSharedDelivery")):
        if v.get(group) is not None:
            g = _obj(v[group], group)
            out[group] = {field: _enum(g[field], ON_OFF, field)} if field in g else {}
    return out


class SetExt:
    """The v2 view of one configuration set: option groups + event destinations."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self.destinations: OrderedDict[str, dict[str, Any]] = OrderedDict()

    @property
    def sending_enabled(self) -> bool:
        return self.options["SendingOptions"]["SendingEnabled"]


def set_ext(cs: ConfigurationSet) -> SetExt:
    ext = cs.__dict__.get("sro")
    if ext is None:  # a set made through the SES v1 API
        ext = cs.__dict__["sro"] = SetExt(
            {"SendingOptions": sending_options(None), "ReputationOptions": reputation_options(None),
             "DeliveryOptions": {"TlsPolicy": "OPTIONAL"}}
        )
    return ext


# --- event destinations ------------------------------------------------------


def event_destination(name: str, d: Any) -> dict[str, Any]:
    d = _obj(d, "EventDestination")
    targets = [t for t in TARGETS if d.get(t) is not None]
    if len(targets) != 1:
        raise BadRequest("An event destination must specify exactly one destination type.")
    types = d.get("MatchingEventTypes")
    if not isinstance(types, list) or not types:
        raise BadRequest("MatchingEventTypes must contain at least one event type.")
    for t in types:
        _enum(t, EVENT_TYPES, "MatchingEventTypes")
    target = targets[0]
    spec = _obj(d[target], target)
    if target == "SnsDestination":
        arn = spec.get("TopicArn")
        if not isinstance(arn, str) or not SNS_ARN_RE.match(arn):
            # AWS rejects FIFO topics too: SES publishes to standard topics only.
            raise BadRequest(f"Invalid SNS topic ARN: {arn!r}.")
        spec = {"TopicArn": arn}
    elif target == "CloudWatchDestination":
        dims = spec.get("DimensionConfigurations")
        if not isinstance(dims, list) or not dims:
            raise BadRequest("CloudWatchDestination needs at least one DimensionConfiguration.")
        for dim in dims:
            dim = _obj(dim, "DimensionConfiguration")
            if not all(isinstance(dim.get(k), str) for k in ("DimensionName", "DefaultDimensionValue")):
                raise BadRequest("DimensionName and DefaultDimensionValue are required.")
            _enum(dim.get("DimensionValueSource"), {"MESSAGE_TAG", "EMAIL_HEADER", "LINK_TAG"}, "DimensionValueSource")
    elif target == "EventBridgeDestination":
        if not isinstance(spec.get("EventBusArn"), str):
            raise BadRequest("EventBridgeDestination.EventBusArn is required.")
    return {
        "Name": name,
        "Enabled": bool(d.get("Enabled", False)),
        "MatchingEventTypes": list(types),
        target: spec,
    }


# --- handlers ----------------------------------------------------------------


def _body(self: SESV2Response) -> dict[str, Any]:
    raw = self.body or "{}"
    try:
        body = json.loads(raw)
    except ValueError:
        raise BadRequest("The request body is not valid JSON.")
    return _obj(body, "request body")


def _path(self: SESV2Response, name: str) -> str:
    return unquote(self.uri_match.get(name, ""))


def _sets(self: SESV2Response) -> dict[str, ConfigurationSet]:
    return self.sesv2_backend.core_backend.config_sets


def _get_set(self: SESV2Response, name: str | None = None) -> ConfigurationSet:
    name = name if name is not None else _path(self, "ConfigurationSetName")
    cs = _sets(self).get(name)
    if cs is None:
        raise NotFound(f"Configuration set <{name}> does not exist.")
    return cs


def _set_arn(self: SESV2Response, name: str) -> str:
    be = self.sesv2_backend
    return f"arn:{be.partition}:ses:{be.region_name}:{be.account_id}:configuration-set/{name}"


def _check_tags(tags: Any) -> list[dict[str, str]]:
    if not isinstance(tags, list):
        raise BadRequest("Tags must be a list.")
    for t in tags:
        if not isinstance(t, dict) or not isinstance(t.get("Key"), str) or not 1 <= len(t["Key"]) <= 128:
            raise BadRequest("Each tag needs a Key of 1-128 characters.")
    if len({t["Key"] for t in tags}) > MAX_TAGS:
        raise BadRequest(f"A resource can have at most {MAX_TAGS} tags.")
    return [{"Key": t["Key"], "Value": t.get("Value", "")} for t in tags]


def create_configuration_set(self: SESV2Response) -> str:
    body = _body(self)
    name = body.get("ConfigurationSetName")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise BadRequest(f"Invalid configuration set name <{name}>: use 1-64 letters, digits, '_' or '-'.")
    sets = _sets(self)
    if name in sets:
        raise AlreadyExists(f"Configuration set <{name}> already exists.")
    if len(sets) >= MAX_SETS:
        raise LimitExceeded(f"Maximum number of configuration sets ({MAX_SETS}) reached.")
    pools = self.sesv2_backend.core_backend.dedicated_ip_pools
    options = {
        "SendingOptions": sending_options(body.get("SendingOptions")),
        "ReputationOptions": reputation_options(body.get("ReputationOptions")),
        "DeliveryOptions": delivery_options(body.get("DeliveryOptions"), pools),
        "TrackingOptions": tracking_options(body.get("TrackingOptions")),
        "SuppressionOptions": suppression_options(body.get("SuppressionOptions")),
        "VdmOptions": vdm_options(body.get("VdmOptions")),
    }
    tags = _check_tags(body.get("Tags") or [])
    cs = ConfigurationSet(configuration_set_name=name)
    cs.__dict__["sro"] = SetExt(options)
    sets[name] = cs
    if tags:
        self.sesv2_backend.core_backend.tagger.tag_resource(_set_arn(self, name), tags)
    return "{}"


def get_configuration_set(self: SESV2Response) -> str:
    cs = _get_set(self)
    name = cs.configuration_set_name
    out: dict[str, Any] = {"ConfigurationSetName": name}
    out.update({k: v for k, v in set_ext(cs).options.items() if v is not None})
    tags = self.sesv2_backend.core_backend.tagger.list_tags_for_resource(_set_arn(self, name))
    out["Tags"] = tags.get("Tags", [])
    return json.dumps(out)


def delete_configuration_set(self: SESV2Response) -> str:
    cs = _get_set(self)
    name = cs.configuration_set_name
    del _sets(self)[name]
    self.sesv2_backend.core_backend.tagger.delete_all_tags_for_resource(_set_arn(self, name))
    from . import tenants

    tenants.forget(self.sesv2_backend, _set_arn(self, name))
    return "{}"


def _list_params(self: SESV2Response) -> dict[str, Any]:
    """ListConfigurationSets' input: the query string of the GET route, the
    JSON body of the POST route."""
    if self.method != "GET":
        return _body(self)
    params: dict[str, Any] = {k: v[0] for k, v in self.querystring.items() if v}
    if "PageSize" in params:
        if not re.fullmatch(r"-?[0-9]{1,9}", params["PageSize"]):
            raise BadRequest(f"PageSize must be an integer from 1 to {LIST_SETS_PAGE_SIZE}.")
        params["PageSize"] = int(params["PageSize"])
    return params


def _page_size(value: Any) -> int:
    if value is None:
        return LIST_SETS_PAGE_SIZE
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= LIST_SETS_PAGE_SIZE:
        raise BadRequest(f"PageSize must be an integer from 1 to {LIST_SETS_PAGE_SIZE}.")
    return value


# NextToken: the last name of the page before, so a token stays valid when
# sets are created or deleted between pages (names are listed in order).
def _next_token(after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode()


def _token_after(token: Any) -> str:
    try:
        after = json.loads(base64.urlsafe_b64decode(str(token).encode()))["after"]
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise BadRequest("Invalid NextToken.")
    if not isinstance(after, str):
        raise BadRequest("Invalid NextToken.")
    return after


def paginate(keyed: list[tuple[str, Any]], params: dict[str, Any], max_size: int) -> tuple[list[Any], str | None]:
    """One page of `(key, item)` pairs in key order, for PageSize 1..max_size
    (default max_size), and the NextToken (opaque: the page's last key) when
    more follow."""
    size = params.get("PageSize")
    if size is None:
        size = max_size
    elif not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= max_size:
        raise BadRequest(f"PageSize must be an integer from 1 to {max_size}.")
    keyed = sorted(keyed, key=lambda kv: kv[0])
    if params.get("NextToken"):
        after = _token_after(params["NextToken"])
        keyed = [kv for kv in keyed if kv[0] > after]
    page = keyed[:size]
    return [item for _, item in page], _next_token(page[-1][0]) if len(keyed) > size else None


def _filter(params: dict[str, Any], keys: set[str]) -> dict[str, str]:
    """A list call's `Filter` map: known keys, non-empty string values."""
    filters = params.get("Filter") or {}
    if not isinstance(filters, dict) or not set(filters) <= keys:
        raise BadRequest(f"Filter keys must be within {sorted(keys)}.")
    for key, value in filters.items():
        if not isinstance(value, str) or not 1 <= len(value) <= 512:
            raise BadRequest(f"Filter {key} must be a string of 1-512 characters.")
    return filters


def list_configuration_sets(self: SESV2Response) -> str:
    params = _list_params(self)
    size = _page_size(params.get("PageSize"))
    names = sorted(_sets(self))
    filters = params.get("Filter") or {}
    if not isinstance(filters, dict) or not set(filters) <= SET_FILTER_KEYS:
        raise BadRequest(f"Filter keys must be within {sorted(SET_FILTER_KEYS)}.")
    contains = filters.get("CONFIGURATION_SET_NAME_CONTAINS")
    if contains is not None:
        if not isinstance(contains, str) or not contains:
            raise BadRequest("CONFIGURATION_SET_NAME_CONTAINS must be a non-empty string.")
        names = [n for n in names if contains in n]
    if params.get("NextToken"):
        after = _token_after(params["NextToken"])
        names = [n for n in names if n > after]
    out: dict[str, Any] = {"ConfigurationSets": names[:size]}
    if len(names) > size:  # AWS leaves NextToken out on the last page
        out["NextToken"] = _next_token(names[size - 1])
    self.response_headers["Content-Type"] = "application/json"
    return json.dumps(out)


_moto_action_from_uri = SESV2Response._get_action_from_method_and_request_uri


def _get_action_from_method_and_request_uri(self: SESV2Response, request: Any) -> str:
    action = _moto_action_from_uri(self, request)
    if action:
        return action
    m = REPUTATION_UPDATE_PATH.match(request.path) if request.method == "PUT" else None
    if m:
        self.uri_match = {k: v for k, v in m.groupdict().items() if k != "sro_op"}
        return REPUTATION_UPDATES[m.group("sro_op")]
    return LEGACY_ROUTES.get((request.method, request.path.rstrip("/")))  # type: ignore[return-value]


def _put(group: str):
    def handler(self: SESV2Response) -> str:
        cs = _get_set(self)
        ext = set_ext(cs)
        body = _body(self)
        if group == "SendingOptions":
            value = sending_options(body)
        elif group == "ReputationOptions":
            value = reputation_options(body, ext.options.get("ReputationOptions"))
        elif group == "DeliveryOptions":
            value = delivery_options(body, self.sesv2_backend.core_backend.dedicated_ip_pools)
        elif group == "TrackingOptions":
            value = tracking_options(body)
        elif group == "SuppressionOptions":
            value = suppression_options(body)
        else:
            value = vdm_options(body.get("VdmOptions") or {})
        ext.options[group] = value
        return "{}"

    return handler


def create_configuration_set_event_destination(self: SESV2Response) -> str:
    ext = set_ext(_get_set(self))
    body = _body(self)
    name = body.get("EventDestinationName")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise BadRequest(f"Invalid event destination name <{name}>.")
    if name in ext.destinations:
        raise AlreadyExists(f"Event destination <{name}> already exists.")
    if len(ext.destinations) >= MAX_DESTINATIONS:
        raise LimitExceeded(f"A configuration set can have at most {MAX_DESTINATIONS} event destinations.")
    ext.destinations[name] = event_destination(name, body.get("EventDestination"))
    return "{}"


def _get_destination(self: SESV2Response) -> tuple[SetExt, str]:
    cs = _get_set(self)
    ext = set_ext(cs)
    name = _path(self, "EventDestinationName")
    if name not in ext.destinations:
        raise NotFound(f"Event destination <{name}> does not exist in configuration set <{cs.configuration_set_name}>.")
    return ext, name


def update_configuration_set_event_destination(self: SESV2Response) -> str:
    ext, name = _get_destination(self)
    ext.destinations[name] = event_destination(name, _body(self).get("EventDestination"))
    return "{}"


def delete_configuration_set_event_destination(self: SESV2Response) -> str:
    ext, name = _get_destination(self)
    del ext.destinations[name]
    return "{}"


def get_configuration_set_event_destinations(self: SESV2Response) -> str:
    ext = set_ext(_get_set(self))
    return json.dumps({"EventDestinations": list(ext.destinations.values())})


def _check_resource(self: SESV2Response, arn: Any) -> None:
    if not isinstance(arn, str) or not arn.startswith("arn:"):
        raise BadRequest(f"Invalid resource ARN: {arn!r}.")
    m = SET_ARN_RE.match(arn)
    if m and m.group(1) not in _sets(self):
        raise NotFound(f"Resource {arn} does not exist.")
    m = IDENTITY_ARN_RE.match(arn)
    if m and m.group(1) not in self.sesv2_backend.core_backend.email_identities:
        raise NotFound(f"Resource {arn} does not exist.")
    from . import tenants

    tenants.check_tenant_arn(self.sesv2_backend, arn)


_moto_tag_resource = SESV2Response.tag_resource
_moto_untag_resource = SESV2Response.untag_resource
_moto_list_tags = SESV2Response.list_tags_for_resource


def tag_resource(self: SESV2Response) -> str:
    body = _body(self)
    arn = body.get("ResourceArn")
    _check_resource(self, arn)
    tags = _check_tags(body.get("Tags") or [])
    if not tags:
        raise BadRequest("Tags must not be empty.")
    current = self.sesv2_backend.core_backend.tagger.get_tag_dict_for_resource(arn)
    if len(set(current) | {t["Key"] for t in tags}) > MAX_TAGS:
        raise BadRequest(f"A resource can have at most {MAX_TAGS} tags.")
    return _moto_tag_resource(self)


def untag_resource(self: SESV2Response) -> str:
    _check_resource(self, self._get_param("ResourceArn"))
    return _moto_untag_resource(self)


def list_tags_for_resource(self: SESV2Response) -> str:
    _check_resource(self, self._get_param("ResourceArn"))
    return _moto_list_tags(self)


def get_account(self: SESV2Response) -> str:
    return json.dumps(account_state(self.sesv2_backend).to_dict())


def put_account_sending_attributes(self: SESV2Response) -> str:
    account_state(self.sesv2_backend).sending_enabled = bool(_body(self).get("SendingEnabled", False))
    return "{}"


def put_account_suppression_attributes(self: SESV2Response) -> str:
    body = _body(self)
    reasons = body.get("SuppressedReasons", [])
    if not isinstance(reasons, list):
        raise BadRequest("SuppressedReasons must be a list.")
    reasons = [_enum(r, SUPPRESSION_REASONS, "SuppressedReasons") for r in reasons]
    validation = body.get("ValidationAttributes")
    if validation is not None:
        validation = validation_threshold(validation, "ValidationAttributes")
    state = account_state(self.sesv2_backend)
    state.suppressed_reasons = reasons
    # Left out: unchanged (AWS does not say; the Rust SDK omits unset members).
    if validation is not None:
        state.validation_attributes = validation
    return "{}"


_moto_send_email = SESV2Response.send_email


def send_email(self: SESV2Response) -> str:
    body = _body(self)
    account = account_state(self.sesv2_backend)
    if account.enforcement_status == "SHUTDOWN":
        raise AccountSuspended("Your account has been shut down because of policy violations.")
    if not account.sending_enabled:
        raise SendingPaused("Sending is paused for this account.")
    if body.get("TenantName") is not None:
        from . import tenants

        tenants.check_send(self.sesv2_backend, body["TenantName"])
    cs = None
    if body.get("ConfigurationSetName") is None:
        # As in AWS: mail that names no set goes through the sender
        # identity's default configuration set, if it has one.
        default = identities.default_set(self.sesv2_backend, parseaddr(body.get("FromEmailAddress") or "")[1])
        if default is not None:
            body["ConfigurationSetName"] = default
    if body.get("ConfigurationSetName") is not None:
        cs = _get_set(self, body["ConfigurationSetName"])
        if not set_ext(cs).sending_enabled:
            raise SendingPaused(f"Sending is paused for configuration set <{cs.configuration_set_name}>.")
    # moto checks the sender identity is verified and records the message.
    result = _moto_send_email(self)
    message_id = json.loads(result)["MessageId"]
    mail = events.Mail.from_request(self, body, message_id)
    account.record_sent(len(mail.destination))
    if cs is not None:
        events.publish(self.sesv2_backend, cs.configuration_set_name, set_ext(cs).destinations.values(), mail)
    return result


def install() -> None:
    from . import findings, tenants

    handlers = {
        "create_configuration_set": create_configuration_set,
        "get_configuration_set": get_configuration_set,
        "delete_configuration_set": delete_configuration_set,
        "list_configuration_sets": list_configuration_sets,
        "create_configuration_set_event_destination": create_configuration_set_event_destination,
        "update_configuration_set_event_destination": update_configuration_set_event_destination,
        "delete_configuration_set_event_destination": delete_configuration_set_event_destination,
        "get_configuration_set_event_destinations": get_configuration_set_event_destinations,
        "put_configuration_set_sending_options": _put("SendingOptions"),
        "put_configuration_set_reputation_options": _put("ReputationOptions"),
        "put_configuration_set_suppression_options": _put("SuppressionOptions"),
        "put_configuration_set_tracking_options": _put("TrackingOptions"),
        "put_configuration_set_delivery_options": _put("DeliveryOptions"),
        "put_configuration_set_vdm_options": _put("VdmOptions"),
        "tag_resource": tag_resource,
        "untag_resource": untag_resource,
        "list_tags_for_resource": list_tags_for_resource,
        "get_account": get_account,
        "put_account_sending_attributes": put_account_sending_attributes,
        "put_account_suppression_attributes": put_account_suppression_attributes,
        "send_email": send_email,
        **identities.HANDLERS,
        **tenants.HANDLERS,
        **findings.HANDLERS,
    }
    for name, fn in handlers.items():
        setattr(SESV2Response, name, fn)
    SESV2Response._get_action_from_method_and_request_uri = _get_action_from_method_and_request_uri
    # moto's catch-all "/v2/.*" is taken literally by Flask, so most SES v2
    # paths 404 before reaching the router. Route every path under
    # /v2/email/ to the dispatcher; the operation comes from botocore's model.
    urls.url_paths["{0}/v2/email/(?P<sro_path>.+)$"] = SESV2Response.dispatch
