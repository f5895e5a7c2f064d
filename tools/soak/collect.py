"""The record of a run: the emulator's request log, what AWS and the API
server hold (read with boto3 and plain HTTP, not with the operator's
code), and what the harness saw (Lease record, processes, faults,
workload). The checker reads only this record."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from .workload import PLURALS, TENANTS, path

CHECKER_KEY = "SOAKCHECKER"
OWNER_TAG = "ses.reputation.io/owner"


def emulator_log(endpoint: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    since = 0
    while True:
        with urllib.request.urlopen(f"{endpoint}/_emulator/log?since={since}&limit=50000", timeout=60) as resp:
            page = json.loads(resp.read())
        entries += page["entries"]
        if not page["entries"]:
            return entries
        since = page["next"]


def _tags(pairs: list[dict[str, str]]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in pairs}


def aws_state(endpoint: str) -> dict[str, Any]:
    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=CHECKER_KEY,
                            aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 10}))
    ses, sns, sqs = client("sesv2"), client("sns"), client("sqs")
    sets: dict[str, Any] = {}
    token = None
    while True:
        page = ses.list_configuration_sets(**({"NextToken": token} if token else {}))
        for name in page.get("ConfigurationSets", []):
            got = ses.get_configuration_set(ConfigurationSetName=name)
            dests = ses.get_configuration_set_event_destinations(ConfigurationSetName=name)["EventDestinations"]
            sets[name] = {"tags": _tags(got.get("Tags", [])),
                          "sending_enabled": got.get("SendingOptions", {}).get("SendingEnabled", True),
                          "destinations": [{"name": d["Name"],
                                            "topic_arn": (d.get("SnsDestination") or {}).get("TopicArn")}
                                           for d in dests]}
        token = page.get("NextToken")
        if not token:
            break
    identities: dict[str, Any] = {}
    token = None
    while True:
        page = ses.list_email_identities(**({"NextToken": token} if token else {}))
        for ident in page["EmailIdentities"]:
            name = ident["IdentityName"]
            identities[name] = {"tags": _tags(ses.get_email_identity(EmailIdentity=name).get("Tags", []))}
        token = page.get("NextToken")
        if not token:
            break
    topics: dict[str, Any] = {}
    for page in sns.get_paginator("list_topics").paginate():
        for t in page["Topics"]:
            arn = t["TopicArn"]
            subs = [{"protocol": s["Protocol"], "endpoint": s["Endpoint"], "arn": s["SubscriptionArn"]}
                    for p in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=arn)
                    for s in p["Subscriptions"]]
            topics[arn] = {"tags": _tags(sns.list_tags_for_resource(ResourceArn=arn).get("Tags", [])),
                           "subscriptions": subs}
    queues: dict[str, Any] = {}
    for url in sqs.list_queues().get("QueueUrls", []):
        queues[url] = {"tags": sqs.list_queue_tags(QueueUrl=url).get("Tags", {})}
    return {"sets": sets, "identities": identities, "topics": topics, "queues": queues}


def kube_state(kube: Any) -> dict[str, Any]:
    objects = []
    for kind in PLURALS:
        got = kube.get(path(kind, None))
        for o in got["items"]:
            meta = o["metadata"]
            objects.append({"kind": kind, "namespace": meta.get("namespace", ""), "name": meta["name"],
                            "uid": meta["uid"], "generation": meta.get("generation"),
                            "deleting": "deletionTimestamp" in meta, "annotations": meta.get("annotations", {}),
                            "labels": meta.get("labels", {}), "spec": o.get("spec", {}),
                            "status": o.get("status") or {}})
    events = []
    for ns in ["soak-sys", *TENANTS]:
        for e in kube.get(f"/api/v1/namespaces/{ns}/events").get("items", []):
            events.append({"namespace": ns, "type": e.get("type"), "reason": e.get("reason"),
                           "object": f"{e['involvedObject'].get('kind')}/{e['involvedObject'].get('name')}",
                           "message": e.get("message"), "count": e.get("count")})
    return {"objects": objects, "events": events}


def panics(work: Path) -> list[str]:
    found = []
    for log in sorted(work.glob("replica-*.log")):
        for n, line in enumerate(log.read_text(errors="replace").splitlines(), 1):
            if "panicked at" in line or "RUST_BACKTRACE" in line:
                found.append(f"{log.name}:{n}: {line[:300]}")
    return found
