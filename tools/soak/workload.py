"""What tenants do during a soak: creates, spec changes and deletes of all
five kinds in several namespaces, bounce spikes through CloudWatch and the
event stream, resumes of paused sets, and one hostile tenant. Every action
is recorded with its time; the checker reads that record, never the
operator's code."""

from __future__ import annotations

import copy
import json
import random
import urllib.request
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import boto3
from botocore.config import Config

from .replicas import ACCOUNT

GROUP = "ses.reputation.io"
API = f"{GROUP}/v1alpha1"
PLURALS = {"SesAccount": "sesaccounts", "ConfigurationSet": "configurationsets",
           "EventDestination": "eventdestinations", "EmailIdentity": "emailidentities",
           "ReputationPolicy": "reputationpolicies"}
TENANTS = ["t1", "t2", "t3"]
FEEDBACK_QUEUE = "soak-feedback"
SENDER = "sender.soak.example"
PAUSE_LABEL = "soak/pause"
# What the workload's own AWS calls are signed with (the checker skips them).
WORKLOAD_KEY = "SOAKWORKLOAD"
# A pausing policy's critical bounce rate; spikes go well above it.
CRITICAL = 0.05
# The pausing policies' breaker window: how long a live spike counts.
LIVE_WINDOW_SECONDS = 300


def path(kind: str, ns: str | None, name: str | None = None) -> str:
    p = f"/apis/{API}" + (f"/namespaces/{ns}" if ns else "") + f"/{PLURALS[kind]}"
    return p + (f"/{name}" if name else "")


def apply(kube: Any, obj: dict) -> None:
    meta = obj["metadata"]
    kube.request("PATCH", path(obj["kind"], meta.get("namespace"), meta["name"]) + "?fieldManager=soak&force=true",
                 obj, ctype="application/apply-patch+yaml")


def aws(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=WORKLOAD_KEY,
                        aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 5}))


@dataclass
class Obj:
    kind: str
    ns: str
    name: str
    spec: dict
    labels: dict = field(default_factory=dict)
    deleted: float | None = None
    # Stalled by design (the hostile tenant's objects).
    intruder: bool = False

    def manifest(self) -> dict:
        meta: dict = {"name": self.name, "namespace": self.ns}
        if self.labels:
            meta["labels"] = self.labels
        return {"apiVersion": API, "kind": self.kind, "metadata": meta, "spec": self.spec}


class Workload:
    def __init__(self, kube: Any, endpoint: str, rng: random.Random) -> None:
        self.kube = kube
        self.rng = rng
        self.endpoint = endpoint
        self.ses, self.cw, self.sqs = aws("sesv2", endpoint), aws("cloudwatch", endpoint), aws("sqs", endpoint)
        self.objects: list[Obj] = []
        self.actions: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.counter = 0
        self.spiked: dict[str, float] = {}  # set object key -> last spike
        self.resumed: dict[str, float] = {}  # set object key -> last resume
        self.live_spiked: dict[str, float] = {}  # set object key -> last spike through the event stream
        self.queue_arn = ""
        self.running = True
        self.thread = threading.Thread(target=self._loop, name="workload", daemon=True)

    # --- setup ---------------------------------------------------------------

    def setup(self) -> None:
        for ns in ["soak-sys", *TENANTS]:
            self.kube.request("PATCH", f"/api/v1/namespaces/{ns}?fieldManager=soak&force=true",
                              {"apiVersion": "v1", "kind": "Namespace",
                               "metadata": {"name": ns, "labels": {"soak": "on"}}},
                              ctype="application/apply-patch+yaml")
        url = self.sqs.create_queue(QueueName=FEEDBACK_QUEUE)["QueueUrl"]
        self.queue_arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        self.ses.create_email_identity(EmailIdentity=SENDER)
        account = {"apiVersion": API, "kind": "SesAccount", "metadata": {"name": ACCOUNT, "labels": {"soak": "on"}},
                   "spec": {"region": "us-east-1", "allowedNamespaces": {"matchLabels": {"soak": "on"}},
                            "eventStream": {"enabled": True}, "suppression": {"reasons": ["BOUNCE"]}}}
        apply(self.kube, account)
        self._record("create", "SesAccount", "", ACCOUNT, spec=account["spec"])
        for ns in TENANTS:
            self._create(Obj("ReputationPolicy", ns, "pause", {
                "selector": {"matchLabels": {PAUSE_LABEL: "yes"}},
                "bounceRate": {"warning": 0.025, "critical": CRITICAL},
                "complaintRate": {"warning": 0.0005, "critical": 0.001},
                "actions": {"pauseSending": True},
                "breaker": {"window": f"{LIVE_WINDOW_SECONDS // 60}m", "minimumSends": 20}}))
            for _ in range(2):
                self._create_set(ns)

    # --- the loop ------------------------------------------------------------

    def _loop(self) -> None:
        actions: list[tuple[float, Callable[[], None]]] = [
            (3, self.create_set), (3, self.update_set), (1, self.delete_set), (2, self.create_destination),
            (1, self.update_destination), (1, self.delete_destination), (1, self.create_identity),
            (1, self.update_identity), (0.5, self.delete_identity), (0.5, self.update_policy),
            (0.3, self.update_account), (1.5, self.spike_cloudwatch), (0.7, self.spike_live), (1, self.resume)]
        weights = [w for w, _ in actions]
        hostile_at = time.monotonic() + 20
        verified_at = 0.0
        while self.running:
            try:
                if hostile_at and time.monotonic() > hostile_at:
                    hostile_at = 0
                    self.hostile_tenant()
                if time.monotonic() - verified_at > 5:
                    verified_at = time.monotonic()
                    self.verify_identities()
                self.rng.choices([a for _, a in actions], weights)[0]()
            except Exception as e:  # the apiserver and AWS fail under the soak; carry on
                self.errors.append(f"{time.time():.1f} {type(e).__name__}: {str(e)[:200]}")
            time.sleep(self.rng.uniform(0.5, 2.5))

    def stop(self) -> None:
        self.running = False
        self.thread.join(timeout=60)

    # --- actions -------------------------------------------------------------

    def live(self, kind: str, ns: str | None = None, intruder: bool = False) -> list[Obj]:
        return [o for o in self.objects if o.kind == kind and o.deleted is None and (ns is None or o.ns == ns)
                and o.intruder == intruder]

    def create_set(self) -> None:
        ns = self.rng.choice(TENANTS)
        if len(self.live("ConfigurationSet", ns)) < 6:
            self._create_set(ns)

    def _create_set(self, ns: str) -> None:
        self.counter += 1
        name = f"cs-{self.counter}"
        spec = {"name": f"soak-{ns}-{name}", "reputationMetrics": {"enabled": True},
                "tags": {"team": ns, "rev": "0"},
                "deletionPolicy": "Retain" if self.rng.random() < 0.25 else "Delete"}
        labels = {PAUSE_LABEL: "yes"} if self.rng.random() < 0.7 else {}
        self._create(Obj("ConfigurationSet", ns, name, spec, labels))

    def update_set(self) -> None:
        sets = self.live("ConfigurationSet")
        if not sets:
            return
        o = self.rng.choice(sets)
        if self.rng.random() < 0.5:
            o.spec["tags"] = {**o.spec["tags"], "rev": str(int(o.spec["tags"]["rev"]) + 1)}
        else:
            tls = (o.spec.get("delivery") or {}).get("tlsPolicy", "OPTIONAL")
            o.spec["delivery"] = {"tlsPolicy": "REQUIRE" if tls == "OPTIONAL" else "OPTIONAL"}
        self._update(o)

    def delete_set(self) -> None:
        ns = self.rng.choice(TENANTS)
        sets = self.live("ConfigurationSet", ns)
        if len(sets) <= 2:
            return
        # The hostile tenant's destination keeps its set: without it, it
        # would wait for the set instead of showing its refusal.
        # Nor does the set whose name the hostile tenant's set claims (its
        # name would become free to take).
        kept = {d.spec.get("configurationSetRef", {}).get("name") for d in self.objects
                if d.intruder and d.deleted is None and d.ns == ns}
        claimed = {d.spec.get("name") for d in self.objects if d.intruder and d.kind == "ConfigurationSet"}
        sets = [s for s in sets if s.name not in kept and s.spec["name"] not in claimed]
        if not sets:
            return
        o = self.rng.choice(sets)
        # Dependents go too: a destination or identity naming a set that is
        # gone waits for it, which the convergence check would count.
        for d in self.live("EventDestination", ns) + self.live("EmailIdentity", ns):
            if d.spec.get("configurationSetRef", {}).get("name") == o.name:
                self._delete(d)
        self._delete(o)

    def create_destination(self) -> None:
        ns = self.rng.choice(TENANTS)
        used = {d.spec["configurationSetRef"]["name"] for d in self.live("EventDestination", ns)}
        free = [s for s in self.live("ConfigurationSet", ns) if s.name not in used]
        if not free:
            return
        s = self.rng.choice(free)
        name = f"ed-{s.name}"
        spec = {"configurationSetRef": {"name": s.name}, "eventTypes": ["BOUNCE", "COMPLAINT"], "enabled": True,
                "sns": {"topic": {"name": f"soak-{ns}-{name}",
                                  "subscriptions": [{"protocol": "sqs", "endpoint": self.queue_arn,
                                                     "rawMessageDelivery": True}]}},
                "deletionPolicy": "Delete"}
        self._create(Obj("EventDestination", ns, name, spec))

    def update_destination(self) -> None:
        eds = self.live("EventDestination")
        if eds:
            o = self.rng.choice(eds)
            o.spec["eventTypes"] = ["BOUNCE", "COMPLAINT"] if "DELIVERY" in o.spec["eventTypes"] else [
                "BOUNCE", "COMPLAINT", "DELIVERY"]
            self._update(o)

    def delete_destination(self) -> None:
        eds = self.live("EventDestination")
        if eds:
            self._delete(self.rng.choice(eds))

    def create_identity(self) -> None:
        ns = self.rng.choice(TENANTS)
        sets = self.live("ConfigurationSet", ns)
        if len(self.live("EmailIdentity", ns)) >= 3 or not sets:
            return
        self.counter += 1
        name = f"id-{self.counter}"
        spec = {"identity": f"{name}.{ns}.soak.example", "configurationSetRef": {"name": self.rng.choice(sets).name},
                "tags": {"rev": "0"}, "deletionPolicy": "Retain" if self.rng.random() < 0.25 else "Delete"}
        self._create(Obj("EmailIdentity", ns, name, spec))

    def update_identity(self) -> None:
        ids = self.live("EmailIdentity")
        if ids:
            o = self.rng.choice(ids)
            o.spec["tags"] = {"rev": str(int(o.spec["tags"]["rev"]) + 1)}
            self._update(o)

    def delete_identity(self) -> None:
        ids = self.live("EmailIdentity")
        if ids:
            self._delete(self.rng.choice(ids))

    def update_policy(self) -> None:
        o = self.rng.choice(self.live("ReputationPolicy"))
        o.spec["bounceRate"]["warning"] = 0.02 if o.spec["bounceRate"]["warning"] == 0.025 else 0.025
        self._update(o)

    def update_account(self) -> None:
        obj = self.kube.get(path("SesAccount", None, ACCOUNT))
        reasons = ["BOUNCE"] if obj["spec"]["suppression"]["reasons"] != ["BOUNCE"] else ["BOUNCE", "COMPLAINT"]
        self.kube.request("PATCH", path("SesAccount", None, ACCOUNT), {"spec": {"suppression": {"reasons": reasons}}})
        self._record("update", "SesAccount", "", ACCOUNT, spec={"suppression": {"reasons": reasons}})

    def _pausable(self, after_resume: float) -> list[Obj]:
        """Sets a pausing policy selects, not spiked in the last two minutes
        and not resumed in the last `after_resume` seconds: after a resume
        a set pauses again only once its rate has fallen and risen again,
        which the live window (5m) takes that long to show."""
        now = time.monotonic()
        return [s for s in self.live("ConfigurationSet") if s.labels.get(PAUSE_LABEL) == "yes"
                and now - self.spiked.get(f"{s.ns}/{s.name}", -1e9) > 120
                and now - self.resumed.get(f"{s.ns}/{s.name}", -1e9) > after_resume]

    def spike_cloudwatch(self) -> None:
        # After a resume the operator re-arms a pause only once it has seen
        # the rate below the pause point (AWS's rates trail; see
        # `pause_step`). A live spike keeps the worse-of rate Critical for
        # its whole window, so a CloudWatch spike on a set resumed inside
        # that window is, by design, not a new one: only spike sets whose
        # last live spike has left the window.
        now = time.monotonic()
        sets = [s for s in self._pausable(after_resume=120)
                if now - self.live_spiked.get(f"{s.ns}/{s.name}", -1e9) > LIVE_WINDOW_SECONDS + 60]
        if not sets:
            return
        s = self.rng.choice(sets)
        self.cw.put_metric_data(Namespace="AWS/SES", MetricData=[{
            "MetricName": "Reputation.BounceRate", "Value": 0.09, "Unit": "None",
            "Dimensions": [{"Name": "ses:configuration-set", "Value": s.spec["name"]}],
            "Timestamp": datetime.now(timezone.utc)}])
        self.spiked[f"{s.ns}/{s.name}"] = time.monotonic()
        self._record("spike", s.kind, s.ns, s.name, aws_name=s.spec["name"], source="cloudwatch", rate=0.09)

    def spike_live(self) -> None:
        sets = self._pausable(after_resume=400)
        if not sets:
            return
        s = self.rng.choice(sets)
        refused = sent = 0
        for i in range(30):
            to = "bounce@simulator.amazonses.com" if i % 5 == 0 else "success@simulator.amazonses.com"
            try:
                self.ses.send_email(FromEmailAddress=f"soak@{SENDER}", Destination={"ToAddresses": [to]},
                                    Content={"Simple": {"Subject": {"Data": "soak"}, "Body": {"Text": {"Data": "x"}}}},
                                    ConfigurationSetName=s.spec["name"])
                sent += 1
            except self.ses.exceptions.SendingPausedException:
                refused += 1
                sent += 1
            except Exception:
                break
        self.spiked[f"{s.ns}/{s.name}"] = self.live_spiked[f"{s.ns}/{s.name}"] = time.monotonic()
        self._record("spike", s.kind, s.ns, s.name, aws_name=s.spec["name"], source="live", rate=0.2,
                     sent=sent, refused=refused)

    def resume(self) -> None:
        """Resumes a set paused at least a minute ago, after its rate fell."""
        now = time.monotonic()
        candidates = [s for s in self.live("ConfigurationSet")
                      if now - self.spiked.get(f"{s.ns}/{s.name}", now) > 60]
        self.rng.shuffle(candidates)
        for s in candidates[:3]:
            obj = self.kube.get_opt(path(s.kind, s.ns, s.name))
            conds = {c["type"]: c for c in ((obj or {}).get("status") or {}).get("conditions") or []}
            if conds.get("SendingEnabled", {}).get("reason") != "PausedByPolicy":
                continue
            self.cw.put_metric_data(Namespace="AWS/SES", MetricData=[{
                "MetricName": "Reputation.BounceRate", "Value": 0.0, "Unit": "None",
                "Dimensions": [{"Name": "ses:configuration-set", "Value": s.spec["name"]}],
                "Timestamp": datetime.now(timezone.utc)}])
            at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            self._record("resume", s.kind, s.ns, s.name, aws_name=s.spec["name"], at=at)
            self.resumed[f"{s.ns}/{s.name}"] = time.monotonic()
            self.kube.request("PATCH", path(s.kind, s.ns, s.name),
                              {"metadata": {"annotations": {f"{GROUP}/resume-at": at}}})
            return

    def hostile_tenant(self) -> None:
        """t2 names t1's set and t1's topic: both must be refused."""
        victims = [s for s in self.live("ConfigurationSet", "t1")]
        if victims:
            v = victims[0]
            self._create(Obj("ConfigurationSet", "t2", "intruder", {
                "name": v.spec["name"], "tags": {"team": "t2"}, "deletionPolicy": "Delete"}, intruder=True),
                expect="AlreadyExists")
        topics = [d for d in self.live("EventDestination", "t1")]
        own = self.live("ConfigurationSet", "t2")
        if topics and own:
            arn = f"arn:aws:sns:us-east-1:123456789012:{topics[0].spec['sns']['topic']['name']}"
            self._create(Obj("EventDestination", "t2", "intruder", {
                "configurationSetRef": {"name": own[0].name}, "eventTypes": ["BOUNCE"], "enabled": True,
                "sns": {"topicArn": arn}}, intruder=True), expect="TopicNotAllowed")

    # --- bookkeeping ---------------------------------------------------------

    def _create(self, o: Obj, expect: str | None = None) -> None:
        apply(self.kube, o.manifest())
        self.objects.append(o)
        self._record("create", o.kind, o.ns, o.name, spec=o.spec, labels=o.labels, intruder=o.intruder,
                     expect=expect)

    def _update(self, o: Obj) -> None:
        apply(self.kube, o.manifest())
        self._record("update", o.kind, o.ns, o.name, spec=o.spec)

    def _delete(self, o: Obj) -> None:
        try:
            self.kube.request("DELETE", path(o.kind, o.ns, o.name))
        except Exception as e:
            if getattr(e, "status", None) != 404:
                raise
        o.deleted = time.time()
        self._record("delete", o.kind, o.ns, o.name, spec=o.spec, intruder=o.intruder)

    def _record(self, action: str, kind: str, ns: str, name: str, **more: Any) -> None:
        # A copy: specs change in place later.
        more = copy.deepcopy({k: v for k, v in more.items() if v is not None})
        self.actions.append({"time": time.time(), "action": action, "kind": kind, "namespace": ns, "name": name,
                             **more})

    def verify_identities(self) -> None:
        """Stands in for DNS: every soak identity AWS holds becomes verified."""
        for o in self.live("EmailIdentity"):
            req = urllib.request.Request(f"{self.endpoint}/_emulator/identity", method="POST",
                                         data=json.dumps({"identity": o.spec["identity"],
                                                          "verification": "SUCCESS"}).encode(),
                                         headers={"Content-Type": "application/json"})
            try:
                urllib.request.urlopen(req, timeout=5).read()
            except Exception:
                pass  # not created yet
