"""SES v2 tenants and reputation entities (moto 5.2.5 has neither).

Owns: CreateTenant / GetTenant / DeleteTenant / ListTenants, tenant resource
associations (CreateTenantResourceAssociation,
DeleteTenantResourceAssociation, ListTenantResources, ListResourceTenants),
the existence check that lets TagResource & co. take tenant ARNs, reputation
entities (GetReputationEntity, ListReputationEntities,
UpdateReputationEntityCustomerManagedStatus, UpdateReputationEntityPolicy),
the admin call that sets what SES itself decides about an entity
(`POST /_emulator/reputation-entity`) and SendEmail's `TenantName` check.

State lives on each `SESV2Backend` (one per account+region) as `sro_tenancy`,
so moto's reset clears it. A tenant's reputation entity is made with the
tenant; a configuration set's or email identity's is made when first named
(GetReputationEntity, an update, the admin call) and goes with its resource.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from moto.sesv2.models import SESV2Backend
from moto.sesv2.responses import SESV2Response

from . import findings
from .errors import AlreadyExists, BadRequest, NotFound, SendingPaused, SesV2Error
from .identities import _now
from .sesv2 import NAME_RE, SUPPRESSION_REASONS, _body, _check_tags, _enum, _filter, _obj, _path, paginate

SES_ARN_RE = re.compile(r"^arn:(aws[a-z-]*):ses:([a-z0-9-]+):(\d{12}):(configuration-set|identity|template|tenant)/(.+)$")
RESOURCE_TYPES = {"configuration-set": "CONFIGURATION_SET", "identity": "EMAIL_IDENTITY", "template": "EMAIL_TEMPLATE"}
SENDING_STATUSES = {"ENABLED", "REINSTATED", "DISABLED"}
SES_STATUSES = {"ENABLED", "DISABLED"}
POLICIES = ("none", "standard", "strict")
DEFAULT_POLICY = "standard"
# AWS documents no PageSize bounds for these lists; ListRecommendations' 1..100.
PAGE_SIZE = 100


class Tenant:
    def __init__(self, backend: SESV2Backend, name: str, suppression: dict[str, Any] | None) -> None:
        self.name = name
        # AWS does not document the ID's format.
        self.id = "tn-" + secrets.token_hex(14)
        self.arn = f"{arn_prefix(backend)}tenant/{name}/{self.id}"
        self.created = _now()
        self.suppression = suppression
        self.resources: dict[str, float] = {}  # resource ARN -> AssociatedTimestamp

    def info(self, status: str) -> dict[str, Any]:
        return {"TenantName": self.name, "TenantId": self.id, "TenantArn": self.arn,
                "CreatedTimestamp": self.created, "SendingStatus": status}


class Entity:
    """One reputation entity (type RESOURCE): what GetReputationEntity shows."""

    def __init__(self, backend: SESV2Backend, reference: str) -> None:
        self.reference = reference
        self.policy = policy_arn(backend, DEFAULT_POLICY)
        now = _now()
        self.customer: dict[str, Any] = {"Status": "ENABLED", "LastUpdatedTimestamp": now}
        self.ses: dict[str, Any] = {"Status": "ENABLED", "LastUpdatedTimestamp": now}
        self.impact: str | None = None  # set by the admin call; else from the open findings

    def aggregate(self) -> str:
        # Either side DISABLED stops sending; REINSTATED sends like ENABLED.
        return "DISABLED" if "DISABLED" in (self.customer["Status"], self.ses["Status"]) else "ENABLED"

    def to_dict(self, backend: SESV2Backend) -> dict[str, Any]:
        return {
            "ReputationEntityReference": self.reference,
            "ReputationEntityType": "RESOURCE",
            "ReputationManagementPolicy": self.policy,
            "CustomerManagedStatus": dict(self.customer),
            "AwsSesManagedStatus": dict(self.ses),
            "SendingStatusAggregate": self.aggregate(),
            "ReputationImpact": self.impact or findings.highest_open_impact(backend, self.reference) or "LOW",
        }


class Tenancy:
    def __init__(self) -> None:
        self.tenants: dict[str, Tenant] = {}
        self.entities: dict[str, Entity] = {}  # by reference (resource ARN)


def tenancy(backend: SESV2Backend) -> Tenancy:
    # Created lazily: moto's reset wipes the backend's __dict__, taking this with it.
    state = backend.__dict__.get("sro_tenancy")
    if state is None:
        state = backend.__dict__["sro_tenancy"] = Tenancy()
    return state


def arn_prefix(backend: SESV2Backend) -> str:
    return f"arn:{backend.partition}:ses:{backend.region_name}:{backend.account_id}:"


def policy_arn(backend: SESV2Backend, name: str) -> str:
    return f"arn:{backend.partition}:ses:{backend.region_name}:aws:reputation-policy/{name}"


def resource_exists(backend: SESV2Backend, arn: str) -> bool | None:
    """Whether the set, identity, template or tenant an ARN names exists
    here; None when the ARN names none of those kinds."""
    m = SES_ARN_RE.match(arn)
    if not m:
        return None
    if not arn.startswith(arn_prefix(backend)):
        return False
    kind, name = m.group(4), m.group(5)
    core = backend.core_backend
    if kind == "configuration-set":
        return name in core.config_sets
    if kind == "identity":
        return name in core.email_identities
    if kind == "template":
        return name in core.templates
    tenant = tenancy(backend).tenants.get(name.split("/", 1)[0])
    return tenant is not None and tenant.arn == arn


def check_tenant_arn(backend: SESV2Backend, arn: str) -> None:
    """TagResource & co.: a tenant ARN must name a tenant that exists."""
    m = SES_ARN_RE.match(arn)
    if m and m.group(4) == "tenant" and not resource_exists(backend, arn):
        raise NotFound(f"Resource {arn} does not exist.")


def forget(backend: SESV2Backend, arn: str) -> None:
    """A resource was deleted: its associations and reputation entity go too."""
    state = tenancy(backend)
    for tenant in state.tenants.values():
        tenant.resources.pop(arn, None)
    state.entities.pop(arn, None)


def _resource_type(backend: SESV2Backend, arn: Any) -> str:
    """The ResourceType of an associable ARN that exists."""
    m = SES_ARN_RE.match(arn) if isinstance(arn, str) else None
    if not m or m.group(4) not in RESOURCE_TYPES:
        raise BadRequest(f"Invalid resource ARN: {arn!r}: use a configuration set, email identity or template ARN.")
    if not resource_exists(backend, arn):
        raise NotFound(f"Resource {arn} does not exist.")
    return RESOURCE_TYPES[m.group(4)]


def _status(backend: SESV2Backend, tenant: Tenant) -> str:
    return tenancy(backend).entities[tenant.arn].aggregate()


# --- tenants -------------------------------------------------------------------


def _tenant(self: SESV2Response, body: dict[str, Any]) -> Tenant:
    name = body.get("TenantName")
    if not isinstance(name, str) or not name:
        raise BadRequest("TenantName is required.")
    tenant = tenancy(self.sesv2_backend).tenants.get(name)
    if tenant is None:
        raise NotFound(f"Tenant <{name}> does not exist.")
    return tenant


def _suppression(v: Any) -> dict[str, Any] | None:
    if v is None:
        return None
    v = _obj(v, "SuppressionAttributes")
    out: dict[str, Any] = {}
    if v.get("SuppressedReasons") is not None:
        if not isinstance(v["SuppressedReasons"], list):
            raise BadRequest("SuppressedReasons must be a list.")
        out["SuppressedReasons"] = [_enum(r, SUPPRESSION_REASONS, "SuppressedReasons") for r in v["SuppressedReasons"]]
    if v.get("SuppressionScope") is not None:
        out["SuppressionScope"] = _enum(v["SuppressionScope"], {"ACCOUNT", "TENANT"}, "SuppressionScope")
    return out


def _tenant_dict(self: SESV2Response, tenant: Tenant) -> dict[str, Any]:
    be = self.sesv2_backend
    out = tenant.info(_status(be, tenant))
    out["Tags"] = be.core_backend.tagger.list_tags_for_resource(tenant.arn).get("Tags", [])
    if tenant.suppression is not None:
        out["SuppressionAttributes"] = tenant.suppression
    return out


def create_tenant(self: SESV2Response) -> str:
    body = _body(self)
    name = body.get("TenantName")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise BadRequest(f"Invalid tenant name <{name}>: use 1-64 letters, digits, '_' or '-'.")
    be = self.sesv2_backend
    state = tenancy(be)
    if name in state.tenants:
        raise AlreadyExists(f"Tenant <{name}> already exists.")
    suppression = _suppression(body.get("SuppressionAttributes"))
    tags = _check_tags(body.get("Tags") or [])
    tenant = Tenant(be, name, suppression)
    state.tenants[name] = tenant
    state.entities[tenant.arn] = Entity(be, tenant.arn)
    if tags:
        be.core_backend.tagger.tag_resource(tenant.arn, tags)
    return json.dumps(_tenant_dict(self, tenant))


def get_tenant(self: SESV2Response) -> str:
    return json.dumps({"Tenant": _tenant_dict(self, _tenant(self, _body(self)))})


def delete_tenant(self: SESV2Response) -> str:
    tenant = _tenant(self, _body(self))
    be = self.sesv2_backend
    state = tenancy(be)
    del state.tenants[tenant.name]  # with its resource associations
    state.entities.pop(tenant.arn, None)
    be.core_backend.tagger.delete_all_tags_for_resource(tenant.arn)
    return "{}"


def list_tenants(self: SESV2Response) -> str:
    params = _body(self)
    filters = _filter(params, {"TENANT_NAME_CONTAINS", "SENDING_STATUS"})
    if "SENDING_STATUS" in filters:
        _enum(filters["SENDING_STATUS"], SENDING_STATUSES, "SENDING_STATUS")
    be = self.sesv2_backend
    keyed = []
    for tenant in tenancy(be).tenants.values():
        info = tenant.info(_status(be, tenant))
        if filters.get("TENANT_NAME_CONTAINS", "") not in tenant.name:
            continue
        if filters.get("SENDING_STATUS", info["SendingStatus"]) != info["SendingStatus"]:
            continue
        keyed.append((tenant.name, info))
    page, token = paginate(keyed, params, PAGE_SIZE)
    out: dict[str, Any] = {"Tenants": page}
    if token:
        out["NextToken"] = token
    return json.dumps(out)


# --- resource associations -----------------------------------------------------


def create_tenant_resource_association(self: SESV2Response) -> str:
    body = _body(self)
    tenant = _tenant(self, body)
    arn = body.get("ResourceArn")
    _resource_type(self.sesv2_backend, arn)
    if arn in tenant.resources:
        raise AlreadyExists(f"Resource {arn} is already associated with tenant <{tenant.name}>.")
    tenant.resources[arn] = _now()
    return "{}"


def delete_tenant_resource_association(self: SESV2Response) -> str:
    body = _body(self)
    tenant = _tenant(self, body)
    arn = body.get("ResourceArn")
    if not isinstance(arn, str) or arn not in tenant.resources:
        raise NotFound(f"Resource {arn} is not associated with tenant <{tenant.name}>.")
    del tenant.resources[arn]
    return "{}"


def list_tenant_resources(self: SESV2Response) -> str:
    params = _body(self)
    tenant = _tenant(self, params)
    filters = _filter(params, {"RESOURCE_TYPE"})
    wanted = filters.get("RESOURCE_TYPE")
    if wanted is not None:
        _enum(wanted, set(RESOURCE_TYPES.values()), "RESOURCE_TYPE")
    keyed = []
    for arn in tenant.resources:
        kind = RESOURCE_TYPES[SES_ARN_RE.match(arn).group(4)]  # type: ignore[union-attr]
        if wanted in (None, kind):
            keyed.append((arn, {"ResourceType": kind, "ResourceArn": arn}))
    page, token = paginate(keyed, params, PAGE_SIZE)
    out: dict[str, Any] = {"TenantResources": page}
    if token:
        out["NextToken"] = token
    return json.dumps(out)


def list_resource_tenants(self: SESV2Response) -> str:
    params = _body(self)
    arn = params.get("ResourceArn")
    _resource_type(self.sesv2_backend, arn)
    keyed = [
        (t.name, {"TenantName": t.name, "TenantId": t.id, "ResourceArn": arn, "AssociatedTimestamp": t.resources[arn]})
        for t in tenancy(self.sesv2_backend).tenants.values() if arn in t.resources
    ]
    page, token = paginate(keyed, params, PAGE_SIZE)
    out: dict[str, Any] = {"ResourceTenants": page}
    if token:
        out["NextToken"] = token
    return json.dumps(out)


# --- reputation entities -------------------------------------------------------


def entity(backend: SESV2Backend, reference: str) -> Entity:
    """The entity of a tenant, configuration set or email identity ARN
    (made on first use for a set or identity); NotFound otherwise."""
    state = tenancy(backend)
    m = SES_ARN_RE.match(reference)
    kind = m.group(4) if m else None
    if kind in ("tenant", "configuration-set", "identity") and resource_exists(backend, reference):
        found = state.entities.get(reference)
        if found is None:
            found = state.entities[reference] = Entity(backend, reference)
        return found
    state.entities.pop(reference, None)
    raise NotFound(f"Reputation entity <{reference}> does not exist.")


def _path_entity(self: SESV2Response, missing: type[SesV2Error] = NotFound) -> Entity:
    _enum(_path(self, "ReputationEntityType"), {"RESOURCE"}, "ReputationEntityType")
    try:
        return entity(self.sesv2_backend, _path(self, "ReputationEntityReference"))
    except NotFound as err:
        raise missing(err.message)


def get_reputation_entity(self: SESV2Response) -> str:
    return json.dumps({"ReputationEntity": _path_entity(self).to_dict(self.sesv2_backend)})


def list_reputation_entities(self: SESV2Response) -> str:
    params = _body(self)
    filters = _filter(params, {"ENTITY_TYPE", "REPUTATION_IMPACT", "SENDING_STATUS", "ENTITY_REFERENCE_PREFIX"})
    be = self.sesv2_backend
    keyed = []
    for reference in list(tenancy(be).entities):
        if not resource_exists(be, reference):
            forget(be, reference)
            continue
        shown = tenancy(be).entities[reference].to_dict(be)
        if filters.get("ENTITY_TYPE", "RESOURCE") != "RESOURCE" \
                or filters.get("REPUTATION_IMPACT", shown["ReputationImpact"]) != shown["ReputationImpact"] \
                or filters.get("SENDING_STATUS", shown["SendingStatusAggregate"]) != shown["SendingStatusAggregate"] \
                or not reference.startswith(filters.get("ENTITY_REFERENCE_PREFIX", "")):
            continue
        keyed.append((reference, shown))
    page, token = paginate(keyed, params, PAGE_SIZE)
    out: dict[str, Any] = {"ReputationEntities": page}
    if token:
        out["NextToken"] = token
    return json.dumps(out)


# AWS models no NotFoundException for the two updates: an unknown entity is a bad request.
def update_reputation_entity_customer_managed_status(self: SESV2Response) -> str:
    found = _path_entity(self, BadRequest)
    status = _enum(_body(self).get("SendingStatus"), SENDING_STATUSES, "SendingStatus")
    found.customer = {"Status": status, "LastUpdatedTimestamp": _now()}
    return "{}"


def update_reputation_entity_policy(self: SESV2Response) -> str:
    found = _path_entity(self, BadRequest)
    policy = _body(self).get("ReputationEntityPolicy")
    allowed = {policy_arn(self.sesv2_backend, p) for p in POLICIES}
    if policy not in allowed:
        raise BadRequest(f"Invalid ReputationEntityPolicy: {policy!r}. Allowed: {sorted(allowed)}.")
    found.policy = policy
    return "{}"


def admin_entity(backend: SESV2Backend, data: dict[str, Any]) -> dict[str, Any]:
    """`POST /_emulator/reputation-entity`: what SES decides about an entity.

    `ses_status` (ENABLED|DISABLED) and `cause` (1-512 characters, null to
    clear) set AwsSesManagedStatus and bump its LastUpdatedTimestamp;
    `impact` (LOW|HIGH, null: from the open findings) sets ReputationImpact.
    """
    reference = data["reference"]
    if not isinstance(reference, str):
        raise ValueError("reference must be an ARN")
    try:
        found = entity(backend, reference)
    except NotFound as err:
        raise KeyError(err.message)
    if "ses_status" in data and data["ses_status"] not in SES_STATUSES:
        raise ValueError(f"ses_status must be one of {sorted(SES_STATUSES)}")
    cause = data.get("cause")
    if cause is not None and (not isinstance(cause, str) or not 1 <= len(cause) <= 512):
        raise ValueError("cause must be a string of 1-512 characters or null")
    if data.get("impact") is not None and data["impact"] not in findings.IMPACTS:
        raise ValueError(f"impact must be one of {sorted(findings.IMPACTS)} or null")
    if "ses_status" in data or "cause" in data:
        ses = {"Status": data.get("ses_status", found.ses["Status"])}
        if "cause" in data:
            if cause is not None:
                ses["Cause"] = cause
        elif "Cause" in found.ses:
            ses["Cause"] = found.ses["Cause"]
        ses["LastUpdatedTimestamp"] = _now()
        found.ses = ses
    if "impact" in data:
        found.impact = data["impact"]
    return found.to_dict(backend)


# --- sending -------------------------------------------------------------------


def check_send(backend: SESV2Backend, name: Any) -> None:
    """SendEmail's `TenantName`: the tenant must exist and may send."""
    if not isinstance(name, str):
        raise BadRequest("TenantName must be a string.")
    tenant = tenancy(backend).tenants.get(name)
    if tenant is None:
        raise NotFound(f"Tenant <{name}> does not exist.")
    if _status(backend, tenant) == "DISABLED":
        raise SendingPaused(f"Sending is paused for tenant <{name}>.")


HANDLERS = {
    "create_tenant": create_tenant,
    "get_tenant": get_tenant,
    "delete_tenant": delete_tenant,
    "list_tenants": list_tenants,
    "create_tenant_resource_association": create_tenant_resource_association,
    "delete_tenant_resource_association": delete_tenant_resource_association,
    "list_tenant_resources": list_tenant_resources,
    "list_resource_tenants": list_resource_tenants,
    "get_reputation_entity": get_reputation_entity,
    "list_reputation_entities": list_reputation_entities,
    "update_reputation_entity_customer_managed_status": update_reputation_entity_customer_managed_status,
    "update_reputation_entity_policy": update_reputation_entity_policy,
}
