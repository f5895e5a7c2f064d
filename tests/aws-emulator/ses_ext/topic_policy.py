"""Whether an SNS topic's access policy lets SES publish a set's events.

Owns: the check SNS makes before it accepts a publish from
`ses.amazonaws.com` (events.publish calls it for every SNS destination):
Allow/Deny statements, `Principal` (`*`, `AWS: *`, `Service`), `Action` and
`Resource` with IAM wildcards, and the string/ARN condition operators (with
`IfExists`) on the keys SES sets, `aws:SourceAccount` and `aws:SourceArn`.
A condition on another key (the default policy's `AWS:SourceOwner`) does
not hold, so a topic with SNS's default policy does not receive SES events,
as on AWS.
"""

from __future__ import annotations

import json
import re
from typing import Any

SES = "ses.amazonaws.com"


def _strings(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v]
    if isinstance(v, list):
        return [s for s in v if isinstance(s, str)]
    return []


def _like(pattern: str, text: str) -> bool:
    # IAM: `*` any run, `?` one character; nothing else is special.
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, re.DOTALL) is not None


def _conditions_hold(conditions: Any, context: dict[str, str]) -> bool:
    if conditions is None:
        return True
    if not isinstance(conditions, dict):
        return False
    for operator, keys in conditions.items():
        if_exists = operator.endswith("IfExists")
        op = operator[: -len("IfExists")] if if_exists else operator
        if not isinstance(keys, dict):
            return False
        for key, wanted in keys.items():
            value = context.get(key.lower())
            if value is None:
                if not if_exists:
                    return False
                continue
            wanted = _strings(wanted)
            equals = value in wanted
            like = any(_like(w, value) for w in wanted)
            verdict = {
                "StringEquals": equals, "ArnEquals": equals,
                "StringLike": like, "ArnLike": like,
                "StringNotEquals": not equals, "ArnNotEquals": not equals,
                "StringNotLike": not like, "ArnNotLike": not like,
                "StringEqualsIgnoreCase": any(w.lower() == value.lower() for w in wanted),
            }.get(op, False)
            if not verdict:
                return False
    return True


def _applies(statement: dict[str, Any], topic_arn: str, context: dict[str, str]) -> bool:
    principal = statement.get("Principal")
    if isinstance(principal, str):
        principal_ok = principal == "*"
    elif isinstance(principal, dict):
        principal_ok = "*" in _strings(principal.get("AWS")) or SES in _strings(principal.get("Service"))
    else:
        principal_ok = False
    action_ok = any(_like(a.lower(), "sns:publish") for a in _strings(statement.get("Action")))
    resource_ok = any(_like(r, topic_arn) for r in _strings(statement.get("Resource")))
    return principal_ok and action_ok and resource_ok and _conditions_hold(statement.get("Condition"), context)


def ses_may_publish(policy: str, topic_arn: str, source_account: str, source_arn: str) -> bool:
    """True when `policy` (the topic's Policy attribute) lets SES publish."""
    try:
        doc = json.loads(policy)
    except (TypeError, ValueError):
        return False
    statements = doc.get("Statement") if isinstance(doc, dict) else None
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list):
        return False
    context = {"aws:sourceaccount": source_account, "aws:sourcearn": source_arn}
    allowed = False
    for st in statements:
        if not isinstance(st, dict) or not _applies(st, topic_arn, context):
            continue
        if st.get("Effect") == "Deny":
            return False
        if st.get("Effect") == "Allow":
            allowed = True
    return allowed
