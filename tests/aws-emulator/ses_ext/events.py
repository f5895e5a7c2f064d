"""SES event publishing for configuration sets, with the mailbox simulator.

Owns: the event records SES publishes for a sent message (JSON as AWS
documents in "Contents of event data that Amazon SES publishes to Amazon
SNS"), which records the simulator addresses produce, and their delivery to
the set's enabled destinations: SNS topics through moto's SNS backend (so
SNS->SQS subscriptions receive them, raw or wrapped) when the topic's
policy lets SES publish for that set (`topic_policy`; refused events are
dropped and counted, as SNS does) and CloudWatch
destinations as `AWS/SES` metrics in moto's CloudWatch backend. Events are
published synchronously during SendEmail, where AWS does it within seconds.
"""

from __future__ import annotations

import base64
import email
import json
import sys
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import getaddresses, parseaddr
from typing import Any, Iterable

from moto.cloudwatch.models import cloudwatch_backends
from moto.sns.models import sns_backends

from . import topic_policy

SIMULATOR_DOMAIN = "simulator.amazonses.com"
SNS_SUBJECT = "Amazon SES Email Event Notification"
REPORTING_MTA = "a8-70.smtp-out.amazonses.com"


def _ts(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _feedback_id() -> str:
    return f"0100{uuid.uuid4().hex[:12]}-{uuid.uuid4()}-000000"


@dataclass
class Mail:
    """The `mail` object of every event record of one message."""

    account_id: str
    region: str
    message_id: str
    source: str
    source_arn: str
    destination: list[str]
    subject: str
    to: list[str]
    cc: list[str]
    tags: dict[str, list[str]]
    sent_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @classmethod
    def from_request(cls, resp: Any, body: dict[str, Any], message_id: str) -> "Mail":
        be = resp.sesv2_backend
        dest = body.get("Destination") or {}
        to, cc, bcc = (list(dest.get(k) or []) for k in ("ToAddresses", "CcAddresses", "BccAddresses"))
        content = body.get("Content") or {}
        source = body.get("FromEmailAddress") or ""
        subject = ""
        if "Simple" in content:
            subject = ((content["Simple"].get("Subject") or {}).get("Data")) or ""
        elif "Raw" in content:
            msg = email.message_from_bytes(base64.b64decode(content["Raw"]["Data"]))
            subject = msg.get("Subject", "")
            source = source or msg.get("From", "")
            to += [a for _, a in getaddresses(msg.get_all("To", [])) if a]
            cc += [a for _, a in getaddresses(msg.get_all("Cc", [])) if a]
        elif "Template" in content:
            subject = content["Template"].get("TemplateName", "")
        address = parseaddr(source)[1]
        domain = address.split("@", 1)[-1]
        identities = be.core_backend.email_identities
        identity = address if address in identities else domain
        name = body.get("ConfigurationSetName")
        tags: dict[str, list[str]] = {}
        for tag in body.get("EmailTags") or []:
            tags[tag["Name"]] = [tag["Value"]]
        if name:
            tags["ses:configuration-set"] = [name]
        tags["ses:source-ip"] = [resp.normalized_request.remote_addr or "127.0.0.1"]
        tags["ses:from-domain"] = [domain]
        tags["ses:caller-identity"] = [resp.get_access_key()]
        return cls(
            account_id=be.account_id,
            region=be.region_name,
            message_id=message_id,
            source=source,
            source_arn=f"arn:{be.partition}:ses:{be.region_name}:{be.account_id}:identity/{identity}",
            destination=to + cc + bcc,
            subject=subject,
            to=to,
            cc=cc,
            tags=tags,
        )

    def to_dict(self) -> dict[str, Any]:
        headers = [{"name": "From", "value": self.source}, {"name": "To", "value": ", ".join(self.to)}]
        if self.cc:
            headers.append({"name": "Cc", "value": ", ".join(self.cc)})
        headers += [
            {"name": "Subject", "value": self.subject},
            {"name": "MIME-Version", "value": "1.0"},
            {"name": "Content-Type", "value": "text/plain; charset=UTF-8"},
        ]
        common: dict[str, Any] = {"from": [self.source], "to": self.to}
        if self.cc:
            common["cc"] = self.cc
        common.update({"messageId": self.message_id, "subject": self.subject})
        return {
            "timestamp": _ts(self.sent_at),
            "source": self.source,
            "sourceArn": self.source_arn,
            "sendingAccountId": self.account_id,
            "messageId": self.message_id,
            "destination": self.destination,
            "headersTruncated": False,
            "headers": headers,
            "commonHeaders": common,
            "tags": self.tags,
        }


def simulator_outcome(address: str) -> str:
    """What the mailbox simulator does with a recipient: delivery, bounce,
    complaint (delivered, then complained about) or suppressed."""
    local, _, domain = parseaddr(address)[1].lower().partition("@")
    if domain != SIMULATOR_DOMAIN:
        return "delivery"
    return {
        "bounce": "bounce",
        "complaint": "complaint",
        "suppressionlist": "suppressed",
    }.get(local.split("+", 1)[0], "delivery")  # success@, ooto@ and labels deliver


def records(mail: Mail) -> list[dict[str, Any]]:
    """The event records of one message, in the order SES emits them."""
    base = mail.to_dict()
    at = mail.sent_at
    out: list[dict[str, Any]] = [{"eventType": "Send", "mail": base, "send": {}}]
    outcome = {r: simulator_outcome(r) for r in mail.destination}
    delivered = [r for r, o in outcome.items() if o in ("delivery", "complaint")]
    if delivered:
        out.append({
            "eventType": "Delivery",
            "mail": base,
            "delivery": {
                "timestamp": _ts(at + timedelta(milliseconds=546)),
                "processingTimeMillis": 546,
                "recipients": delivered,
                "smtpResponse": "250 2.6.0 Message received",
                "reportingMTA": REPORTING_MTA,
            },
        })
    for kind, sub_type, diagnostic in (
        ("bounce", "General", "smtp; 550 5.1.1 user unknown"),
        ("suppressed", "OnAccountSuppressionList",
         "Amazon SES did not send the message to this address because it is on the suppression list for your account."),
    ):
        bounced = [r for r, o in outcome.items() if o == kind]
        if bounced:
            out.append({
                "eventType": "Bounce",
                "mail": base,
                "bounce": {
                    "bounceType": "Permanent",
                    "bounceSubType": sub_type,
                    "bouncedRecipients": [
                        {"emailAddress": r, "action": "failed", "status": "5.1.1", "diagnosticCode": diagnostic}
                        for r in bounced
                    ],
                    "timestamp": _ts(at + timedelta(milliseconds=700)),
                    "feedbackId": _feedback_id(),
                    "reportingMTA": f"dsn; {REPORTING_MTA}",
                },
            })
    complained = [r for r, o in outcome.items() if o == "complaint"]
    if complained:
        out.append({
            "eventType": "Complaint",
            "mail": base,
            "complaint": {
                "complainedRecipients": [{"emailAddress": r} for r in complained],
                "timestamp": _ts(at + timedelta(seconds=1)),
                "feedbackId": _feedback_id(),
                "complaintFeedbackType": "abuse",
                "userAgent": "Amazon SES Mailbox Simulator",
                "arrivalDate": _ts(at + timedelta(milliseconds=900)),
            },
        })
    return out


def _dimension_value(mail: Mail, dim: dict[str, str]) -> str:
    if dim["DimensionValueSource"] == "MESSAGE_TAG":
        values = mail.tags.get(dim["DimensionName"])
        if values:
            return values[0]
    return dim["DefaultDimensionValue"]


def publish(backend: Any, set_name: str, destinations: Iterable[dict[str, Any]], mail: Mail) -> None:
    """Send each record to the enabled destinations that match its type."""
    for record in records(mail):
        event_type = record["eventType"].upper()
        for dest in destinations:
            if not dest["Enabled"] or event_type not in dest["MatchingEventTypes"]:
                continue
            try:
                if "SnsDestination" in dest:
                    arn = dest["SnsDestination"]["TopicArn"]
                    region = arn.split(":")[3]
                    sns = sns_backends[backend.account_id][region]
                    topic = sns.topics.get(arn)
                    set_arn = f"arn:{backend.partition}:ses:{backend.region_name}:{backend.account_id}:configuration-set/{set_name}"
                    # SNS refuses a publish its topic policy does not allow,
                    # and SES drops the event without telling anyone.
                    if topic is None or not topic_policy.ses_may_publish(
                        topic.policy, arn, backend.account_id, set_arn
                    ):
                        from .control import CONTROL
                        CONTROL.record_dropped(arn)
                        continue
                    sns.publish(json.dumps(record), arn=arn, subject=SNS_SUBJECT)
                elif "CloudWatchDestination" in dest:
                    dims = [
                        {"Name": d["DimensionName"], "Value": _dimension_value(mail, d)}
                        for d in dest["CloudWatchDestination"]["DimensionConfigurations"]
                    ]
                    cloudwatch_backends[backend.account_id][backend.region_name].put_metric_data(
                        "AWS/SES",
                        [{"MetricName": record["eventType"], "Value": 1.0, "Unit": "Count", "Dimensions": dims}],
                    )
                # EventBridge/Firehose/Pinpoint destinations are stored, not fed.
            except Exception as err:  # AWS drops events it cannot deliver
                print(f"ses_ext: event to {dest['Name']} of {set_name} dropped: {err!r}", file=sys.stderr)
