"""SES v2 email identities as AWS shapes them (moto 5.2.5 marks every
identity verified at once and has no DKIM tokens, MAIL FROM, default set or
feedback calls).

Owns: CreateEmailIdentity / GetEmailIdentity / DeleteEmailIdentity, the
PutEmailIdentity{Dkim,DkimSigning,MailFrom,ConfigurationSet,Feedback}
Attributes calls, tags on identity ARNs, the default configuration set that
SendEmail uses when the request names none, and the admin call that moves
verification (`POST /_emulator/identity`). The identity itself stays moto's
`EmailIdentity` in `core_backend.email_identities` (so moto's SendEmail
check that the sender exists keeps working); what AWS adds lives on it as
`sro`.

Verification starts PENDING, as in AWS, and moves only through the admin
call (nothing here resolves DNS). The emulator does not refuse mail from a
pending identity: tests send from identities they never verify.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import Any

from moto.ses.models import EmailIdentity
from moto.sesv2.responses import SESV2Response

from .errors import AlreadyExists, BadRequest, NotFound

DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
ADDRESS_RE = re.compile(r"^[^@\s]{1,64}@(.+)$")
STATUSES = {"PENDING", "SUCCESS", "FAILED", "TEMPORARY_FAILURE", "NOT_STARTED"}
ERROR_TYPES = {"SERVICE_ERROR", "DNS_SERVER_ERROR", "HOST_NOT_FOUND", "TYPE_NOT_FOUND", "INVALID_VALUE"}
KEY_LENGTHS = {"RSA_1024_BIT", "RSA_2048_BIT"}
MX_FAILURE = {"USE_DEFAULT_VALUE", "REJECT_MESSAGE"}


def _now() -> float:
    # REST-JSON timestamps are epoch seconds, as AWS sends them.
    return round(time.time(), 3)


class IdentityExt:
    """What GetEmailIdentity shows beyond moto's identity."""

    def __init__(self, name: str, domain: bool, key_length: str) -> None:
        self.domain = domain
        self.verification = "PENDING"
        self.error_type: str | None = None
        self.last_checked = _now()
        self.last_success: float | None = None
        self.signing_enabled = domain
        self.key_length = key_length
        self.tokens = _tokens() if domain else []
        self.dkim_status = "PENDING" if domain else "NOT_STARTED"
        self.key_generated = _now()
        self.mail_from: str | None = None
        self.mail_from_status = "PENDING"
        self.behavior_on_mx_failure = "USE_DEFAULT_VALUE"
        self.feedback_forwarding = True
        self.configuration_set: str | None = None

    def dkim(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "SigningEnabled": self.signing_enabled,
            "Status": self.dkim_status,
            "SigningAttributesOrigin": "AWS_SES",
            "NextSigningKeyLength": self.key_length,
        }
        if self.domain:
            out["Tokens"] = list(self.tokens)
            out["CurrentSigningKeyLength"] = self.key_length
            out["LastKeyGenerationTimestamp"] = self.key_generated
        return out


def _tokens() -> list[str]:
    # Easy DKIM: three 32-character lowercase tokens.
    return [secrets.token_hex(16) for _ in range(3)]


def identity_ext(identity: EmailIdentity) -> IdentityExt:
    ext = identity.__dict__.get("sro")
    if ext is None:  # made through SES v1 (VerifyEmailIdentity) or moto directly
        name = identity.email_identity
        ext = identity.__dict__["sro"] = IdentityExt(name, "@" not in name, "RSA_2048_BIT")
        ext.verification = "SUCCESS"
    return ext


def identity_arn(resp: SESV2Response, name: str) -> str:
    be = resp.sesv2_backend
    return f"arn:{be.partition}:ses:{be.region_name}:{be.account_id}:identity/{name}"


def _identities(resp: SESV2Response) -> dict[str, EmailIdentity]:
    return resp.sesv2_backend.core_backend.email_identities


def _get(resp: SESV2Response) -> tuple[EmailIdentity, IdentityExt]:
    from .sesv2 import _path

    name = _path(resp, "EmailIdentity")
    identity = _identities(resp).get(name)
    if identity is None:
        raise NotFound(f"Email identity <{name}> does not exist.")
    return identity, identity_ext(identity)


def _check_set(resp: SESV2Response, name: Any) -> str | None:
    from .sesv2 import _get_set

    if name is None:
        return None
    if not isinstance(name, str):
        raise BadRequest("ConfigurationSetName must be a string.")
    _get_set(resp, name)
    return name


def check_identity(name: Any) -> bool:
    """Whether `name` is a valid identity; returns True for a domain."""
    if not isinstance(name, str):
        raise BadRequest("EmailIdentity is required.")
    m = ADDRESS_RE.match(name)
    if m and DOMAIN_RE.match(m.group(1)):
        return False
    if DOMAIN_RE.match(name):
        return True
    raise BadRequest(f"Invalid email identity <{name}>: use a domain or an email address.")


def create_email_identity(self: SESV2Response) -> str:
    from .sesv2 import _body, _check_tags

    body = _body(self)
    name = body.get("EmailIdentity")
    domain = check_identity(name)
    if name in _identities(self):
        raise AlreadyExists(f"Email identity <{name}> already exists.")
    signing = body.get("DkimSigningAttributes") or {}
    if signing.get("DomainSigningPrivateKey"):
        raise BadRequest("BYODKIM is not supported by this emulator.")
    key_length = signing.get("NextSigningKeyLength", "RSA_2048_BIT")
    if key_length not in KEY_LENGTHS:
        raise BadRequest(f"Invalid NextSigningKeyLength: {key_length!r}.")
    set_name = _check_set(self, body.get("ConfigurationSetName"))
    tags = _check_tags(body.get("Tags") or [])
    core = self.sesv2_backend.core_backend
    identity = EmailIdentity(name, None, None, set_name)
    ext = identity.__dict__["sro"] = IdentityExt(name, domain, key_length)
    ext.configuration_set = set_name
    core.email_identities[name] = identity
    if tags:
        core.tagger.tag_resource(identity_arn(self, name), tags)
    return json.dumps({
        "IdentityType": "DOMAIN" if domain else "EMAIL_ADDRESS",
        "VerifiedForSendingStatus": False,
        "DkimAttributes": ext.dkim(),
    })


def get_email_identity(self: SESV2Response) -> str:
    identity, ext = _get(self)
    name = identity.email_identity
    tags = self.sesv2_backend.core_backend.tagger.list_tags_for_resource(identity_arn(self, name))
    info: dict[str, Any] = {"LastCheckedTimestamp": ext.last_checked}
    if ext.last_success:
        info["LastSuccessTimestamp"] = ext.last_success
    if ext.error_type:
        info["ErrorType"] = ext.error_type
    out: dict[str, Any] = {
        "IdentityType": "DOMAIN" if ext.domain else "EMAIL_ADDRESS",
        "FeedbackForwardingStatus": ext.feedback_forwarding,
        "VerifiedForSendingStatus": ext.verification == "SUCCESS",
        "DkimAttributes": ext.dkim(),
        "Policies": dict(identity.policies),
        "Tags": tags.get("Tags", []),
        "VerificationStatus": ext.verification,
        "VerificationInfo": info,
    }
    if ext.mail_from:
        out["MailFromAttributes"] = {
            "MailFromDomain": ext.mail_from,
            "MailFromDomainStatus": ext.mail_from_status,
            "BehaviorOnMxFailure": ext.behavior_on_mx_failure,
        }
    if ext.configuration_set:
        out["ConfigurationSetName"] = ext.configuration_set
    return json.dumps(out)


def delete_email_identity(self: SESV2Response) -> str:
    identity, _ = _get(self)
    name = identity.email_identity
    del _identities(self)[name]
    self.sesv2_backend.core_backend.tagger.delete_all_tags_for_resource(identity_arn(self, name))
    from . import tenants

    tenants.forget(self.sesv2_backend, identity_arn(self, name))
    return "{}"


def put_dkim_attributes(self: SESV2Response) -> str:
    from .sesv2 import _body

    _, ext = _get(self)
    if not ext.domain:
        raise BadRequest("DKIM signing is set on the domain of an email address identity.")
    # A boolean left out is false (the Rust SDK omits false booleans).
    ext.signing_enabled = bool(_body(self).get("SigningEnabled", False))
    return "{}"


def put_dkim_signing_attributes(self: SESV2Response) -> str:
    from .sesv2 import _body

    _, ext = _get(self)
    body = _body(self)
    if body.get("SigningAttributesOrigin") != "AWS_SES":
        raise BadRequest("Only SigningAttributesOrigin AWS_SES (Easy DKIM) is supported by this emulator.")
    length = (body.get("SigningAttributes") or {}).get("NextSigningKeyLength", ext.key_length)
    if length not in KEY_LENGTHS:
        raise BadRequest(f"Invalid NextSigningKeyLength: {length!r}.")
    ext.key_length = length
    return json.dumps({"DkimStatus": ext.dkim_status, "DkimTokens": list(ext.tokens)})


def put_mail_from_attributes(self: SESV2Response) -> str:
    from .sesv2 import _body

    identity, ext = _get(self)
    body = _body(self)
    domain = body.get("MailFromDomain")
    behavior = body.get("BehaviorOnMxFailure", "USE_DEFAULT_VALUE")
    if behavior not in MX_FAILURE:
        raise BadRequest(f"Invalid BehaviorOnMxFailure: {behavior!r}.")
    if domain:
        parent = identity.email_identity.split("@", 1)[-1]
        if not isinstance(domain, str) or not DOMAIN_RE.match(domain) or not domain.endswith("." + parent):
            raise BadRequest(f"MailFromDomain <{domain}> must be a subdomain of <{parent}>.")
        if domain != ext.mail_from:
            ext.mail_from_status = "PENDING"
        ext.mail_from = domain
    else:
        ext.mail_from = None
    ext.behavior_on_mx_failure = behavior
    return "{}"


def put_configuration_set_attributes(self: SESV2Response) -> str:
    from .sesv2 import _body

    identity, ext = _get(self)
    ext.configuration_set = _check_set(self, _body(self).get("ConfigurationSetName"))
    identity.configuration_set_name = ext.configuration_set
    return "{}"


def put_feedback_attributes(self: SESV2Response) -> str:
    from .sesv2 import _body

    _, ext = _get(self)
    ext.feedback_forwarding = bool(_body(self).get("EmailForwardingEnabled", False))
    return "{}"


def default_set(backend: Any, source: str) -> str | None:
    """The default configuration set SendEmail uses for a sender: the
    address identity's, else its domain's (as AWS resolves it)."""
    identities = backend.core_backend.email_identities
    domain = source.split("@", 1)[-1]
    for name in (source, domain):
        identity = identities.get(name)
        if identity is not None:
            ext = identity_ext(identity)
            if ext.configuration_set and ext.configuration_set in backend.core_backend.config_sets:
                return ext.configuration_set
    return None


def admin(backend: Any, data: dict[str, Any]) -> dict[str, Any]:
    """`POST /_emulator/identity`: what DNS checks would decide in AWS.

    `verification` / `dkim` / `mail_from`: a status for that check;
    `error_type`: VerificationInfo.ErrorType shown with FAILED;
    `rotate_dkim: true`: new DKIM tokens (as a key rotation gives).
    """
    name = data["identity"]
    identity = backend.core_backend.email_identities.get(name)
    if identity is None:
        raise KeyError(f"no identity {name}")
    ext = identity_ext(identity)
    for field in ("verification", "dkim", "mail_from"):
        if field in data and data[field] not in STATUSES:
            raise ValueError(f"{field} must be one of {sorted(STATUSES)}")
    if data.get("error_type") is not None and data["error_type"] not in ERROR_TYPES:
        raise ValueError(f"error_type must be one of {sorted(ERROR_TYPES)}")
    ext.last_checked = _now()
    if "verification" in data:
        ext.verification = data["verification"]
        if ext.verification == "SUCCESS":
            ext.last_success = ext.last_checked
            ext.error_type = None
        else:
            ext.error_type = data.get("error_type") or ("TYPE_NOT_FOUND" if ext.verification == "FAILED" else None)
        # A domain verifies through its DKIM records: both move together
        # unless the call says otherwise.
        if ext.domain and "dkim" not in data:
            ext.dkim_status = ext.verification
    if "dkim" in data:
        ext.dkim_status = data["dkim"]
    if "mail_from" in data:
        ext.mail_from_status = data["mail_from"]
    if data.get("rotate_dkim") and ext.domain:
        ext.tokens = _tokens()
        ext.key_generated = _now()
    return {"identity": name, "verification": ext.verification, "dkim": ext.dkim(),
            "mail_from_status": ext.mail_from_status}


HANDLERS = {
    "create_email_identity": create_email_identity,
    "get_email_identity": get_email_identity,
    "delete_email_identity": delete_email_identity,
    "put_email_identity_dkim_attributes": put_dkim_attributes,
    "put_email_identity_dkim_signing_attributes": put_dkim_signing_attributes,
    "put_email_identity_mail_from_attributes": put_mail_from_attributes,
    "put_email_identity_configuration_set_attributes": put_configuration_set_attributes,
    "put_email_identity_feedback_attributes": put_feedback_attributes,
}
