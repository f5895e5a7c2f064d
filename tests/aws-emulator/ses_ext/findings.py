"""VDM recommendations (reputation findings), which moto 5.2.5 lacks.

Owns: ListRecommendations (POST /v2/email/vdm/recommendations, filtered and
paginated as AWS documents it), the admin call that opens, updates or fixes
a finding (`POST /_emulator/recommendation`: AWS's own checks stand behind
it) and the highest open impact of a resource, which a reputation entity
shows as its ReputationImpact.

Findings live on each `SESV2Backend` (one per account+region) as
`sro_findings`, keyed by resource ARN and type, so moto's reset clears them.
Each is listed in the order it was first opened.
"""

from __future__ import annotations

import json
from typing import Any

from moto.sesv2.models import SESV2Backend
from moto.sesv2.responses import SESV2Response

from .errors import BadRequest
from .identities import _now
from .sesv2 import _body, _enum, _filter, paginate

TYPES = {"DKIM", "DMARC", "SPF", "BIMI", "COMPLAINT", "BOUNCE", "FEEDBACK_3P", "IP_LISTING"}
IMPACTS = {"LOW", "HIGH"}
STATUSES = {"OPEN", "FIXED"}
FILTER_KEYS = {"TYPE", "IMPACT", "STATUS", "RESOURCE_ARN"}
# AWS: "either an individual filter, or combinations of STATUS and IMPACT or STATUS and TYPE".
FILTER_PAIRS = ({"STATUS", "IMPACT"}, {"STATUS", "TYPE"})
PAGE_SIZE = 100  # ListRecommendations' PageSize: 1..100, as AWS documents


class Findings:
    def __init__(self) -> None:
        self.by_key: dict[tuple[str, str], dict[str, Any]] = {}
        self.order: dict[tuple[str, str], int] = {}


def findings(backend: SESV2Backend) -> Findings:
    # Created lazily: moto's reset wipes the backend's __dict__, taking this with it.
    state = backend.__dict__.get("sro_findings")
    if state is None:
        state = backend.__dict__["sro_findings"] = Findings()
    return state


def highest_open_impact(backend: SESV2Backend, arn: str) -> str | None:
    impacts = {r["Impact"] for (a, _), r in findings(backend).by_key.items() if a == arn and r["Status"] == "OPEN"}
    return "HIGH" if "HIGH" in impacts else ("LOW" if impacts else None)


def list_recommendations(self: SESV2Response) -> str:
    params = _body(self)
    filters = _filter(params, FILTER_KEYS)
    if len(filters) > 1 and set(filters) not in FILTER_PAIRS:
        raise BadRequest("Filter takes one key, or STATUS with IMPACT, or STATUS with TYPE.")
    for key, allowed in (("TYPE", TYPES), ("IMPACT", IMPACTS), ("STATUS", STATUSES)):
        if key in filters:
            _enum(filters[key], allowed, key)
    fields = {"TYPE": "Type", "IMPACT": "Impact", "STATUS": "Status", "RESOURCE_ARN": "ResourceArn"}
    state = findings(self.sesv2_backend)
    keyed = [
        (f"{state.order[key]:012d}", dict(record))
        for key, record in state.by_key.items()
        if all(record[fields[k]] == v for k, v in filters.items())
    ]
    page, token = paginate(keyed, params, PAGE_SIZE)
    out: dict[str, Any] = {"Recommendations": page}
    if token:
        out["NextToken"] = token
    return json.dumps(out)


def admin(backend: SESV2Backend, data: dict[str, Any]) -> dict[str, Any]:
    """`POST /_emulator/recommendation`: open a finding, or change the one
    with the same `resource_arn` and `type` (fields left out are kept; a new
    finding defaults to impact LOW, status OPEN, an empty description).
    Any change bumps LastUpdatedTimestamp."""
    arn = data["resource_arn"]
    if not isinstance(arn, str) or not arn:
        raise ValueError("resource_arn must be a non-empty string")
    kind = data["type"]
    if kind not in TYPES:
        raise ValueError(f"type must be one of {sorted(TYPES)}")
    for field, allowed in (("impact", IMPACTS), ("status", STATUSES)):
        if field in data and data[field] not in allowed:
            raise ValueError(f"{field} must be one of {sorted(allowed)}")
    if "description" in data and not isinstance(data["description"], str):
        raise ValueError("description must be a string")
    state = findings(backend)
    key = (arn, kind)
    now = _now()
    record = state.by_key.get(key)
    if record is None:
        record = state.by_key[key] = {
            "ResourceArn": arn, "Type": kind, "Description": "", "Status": "OPEN",
            "CreatedTimestamp": now, "LastUpdatedTimestamp": now, "Impact": "LOW",
        }
        state.order[key] = len(state.order)
    else:
        # Strictly later than the last update, however fast the calls come.
        record["LastUpdatedTimestamp"] = max(now, round(record["LastUpdatedTimestamp"] + 0.001, 3))
    for field, member in (("description", "Description"), ("status", "Status"), ("impact", "Impact")):
        if field in data:
            record[member] = data[field]
    return dict(record)


HANDLERS = {"list_recommendations": list_recommendations}
