"""The upgrade test (`make upgrade-test`, part of `make test`): the previous
release (tools/previous-release.sh) runs with objects in every state
(Ready, paused by a policy, Stalled, adopted, Retain), the CRDs are
upgraded and the stored objects validated against them, the new build
starts as a standby and takes over when the old one stops, as a rolling
`helm upgrade` does. Then: no AWS create or delete, no lifted pause, no
status regression, and the deletion policies the old objects asked for
still hold. Exits 1 with every failure listed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from scale.cluster import Kube, KubeError  # tools/bench/scale: the benchmark's small API client

from . import collect
from .workload import API, aws, path

ROOT = Path(__file__).resolve().parents[2]
NS = "upgrade"
ACCOUNT = "upgrade"
OLD_KEY, NEW_KEY = "UPGRADEOLD", "UPGRADENEW"


def log(msg: str) -> None:
    print(f">> upgrade: {msg}", file=sys.stderr, flush=True)


def kubectl(*args: str) -> None:
    subprocess.run(["kubectl", *args], check=True, capture_output=True)


def apply(kube: Kube, obj: dict) -> None:
    meta = obj["metadata"]
    kube.request("PATCH", path(obj["kind"], meta.get("namespace"), meta["name"]) + "?fieldManager=upgrade&force=true",
                 obj, ctype="application/apply-patch+yaml")


def until(what: str, check: Callable[[], Any], timeout: float = 120) -> Any:
    deadline = time.time() + timeout
    last: Any = None
    while time.time() < deadline:
        try:
            last = check()
        except (KubeError, OSError) as e:
            last = e
        if last is True or (last and not isinstance(last, (str, Exception))):
            return last
        time.sleep(1)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}; last: {last}")


def conditions(obj: dict) -> dict[str, dict]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


def settled(obj: dict | None, want: str) -> bool | str:
    """Ready=True (want "Ready") or Stalled=True, for the object's generation."""
    if obj is None:
        return "absent"
    c = conditions(obj).get(want, {})
    ok = c.get("status") == "True" and (obj.get("status") or {}).get("observedGeneration") == obj["metadata"][
        "generation"]
    return True if ok else f"{want}: {c or 'none'}"


def start(binary: Path, key: str, work: Path, name: str, ports: dict) -> subprocess.Popen:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": "testing", "RUST_LOG": "info"}
    env.pop("POD_NAME", None)
    env.pop("POD_NAMESPACE", None)
    logf = open(work / f"{name}.log", "w")
    # Flags both releases have.
    return subprocess.Popen([str(binary), "run", "--default-account", ACCOUNT, "--account-selector", "upgrade=on",
                             "--cluster-name", "upgrade", "--namespace", NS, "--leader-election",
                             "--lease-name", "upgrade", "--lease-namespace", NS, "--metrics-addr",
                             f"127.0.0.1:{ports[name]}", "--drift-interval-seconds", "10",
                             "--rate-interval-seconds", "5", "--ses-calls-per-second", "20"],
                            env=env, stdout=logf, stderr=subprocess.STDOUT)


def objects(queue_arn: str) -> list[dict]:
    def cs(name: str, spec: dict, labels: dict | None = None) -> dict:
        meta: dict = {"name": name, "namespace": NS}
        if labels:
            meta["labels"] = labels
        return {"apiVersion": API, "kind": "ConfigurationSet", "metadata": meta, "spec": spec}
    return [
        {"apiVersion": API, "kind": "ReputationPolicy", "metadata": {"name": "pause", "namespace": NS},
         "spec": {"selector": {"matchLabels": {"pause": "yes"}}, "bounceRate": {"warning": 0.025, "critical": 0.05},
                  "complaintRate": {"warning": 0.0005, "critical": 0.001}, "actions": {"pauseSending": True}}},
        cs("ready", {"name": "up-ready", "tags": {"team": "a"}, "deletionPolicy": "Delete"}),
        cs("paused", {"name": "up-paused", "reputationMetrics": {"enabled": True}}, {"pause": "yes"}),
        cs("kept", {"name": "up-kept", "deletionPolicy": "Retain"}),
        cs("adopted", {"name": "up-adoptee", "adopt": True}),
        cs("stalled", {"name": "up-foreign"}),
        {"apiVersion": API, "kind": "EventDestination", "metadata": {"name": "feedback", "namespace": NS},
         "spec": {"configurationSetRef": {"name": "ready"}, "eventTypes": ["BOUNCE", "COMPLAINT"], "enabled": True,
                  "sns": {"topic": {"name": "up-feedback", "subscriptions": [
                      {"protocol": "sqs", "endpoint": queue_arn, "rawMessageDelivery": True}]}}}},
        {"apiVersion": API, "kind": "EmailIdentity", "metadata": {"name": "domain", "namespace": NS},
         "spec": {"identity": "upgrade.example", "configurationSetRef": {"name": "ready"},
                  "deletionPolicy": "Retain"}},
    ]


EXPECT = {("ReputationPolicy", "pause"): "Ready", ("ConfigurationSet", "ready"): "Ready",
          ("ConfigurationSet", "paused"): "Ready", ("ConfigurationSet", "kept"): "Ready",
          ("ConfigurationSet", "adopted"): "Ready", ("ConfigurationSet", "stalled"): "Stalled",
          ("EventDestination", "feedback"): "Ready", ("EmailIdentity", "domain"): "Ready"}


def snapshot(kube: Kube) -> dict[tuple[str, str], dict]:
    return {(k, n): kube.get(path(k, NS, n)) for k, n in EXPECT}


def validates(kube: Kube, stored: dict) -> str | None:
    """A stored object of the old schema, created again (dry run) under the
    new CRDs: the API server validates all of it, nothing ratchets."""
    meta = stored["metadata"]
    again = {"apiVersion": API, "kind": stored["kind"],
            "metadata": {"name": meta["name"] + "-v", "namespace": NS, "labels": meta.get("labels", {})},
            "spec": stored["spec"]}
    try:
        kube.request("POST", path(stored["kind"], NS) + "?dryRun=All", again, ctype="application/json")
        return None
    except KubeError as e:
        return f"{stored['kind']} {meta['name']}: {e}"


def main() -> int:
    work = ROOT / "target/upgrade-test"
    work.mkdir(parents=True, exist_ok=True)
    previous = Path(subprocess.run([str(ROOT / "tools/previous-release.sh")], check=True, capture_output=True,
                                   text=True).stdout.strip())
    endpoint = os.environ["SRO_AWS_ENDPOINT"]
    kube = Kube(os.environ["KUBECONFIG"])
    ses, sqs, cw = aws("sesv2", endpoint), aws("sqs", endpoint), aws("cloudwatch", endpoint)
    failures: list[str] = []

    log(f"previous release: {previous}")
    kubectl("apply", "--server-side", "-f", str(previous / "crds.yaml"))
    kubectl("wait", "--for", "condition=Established", "--timeout", "60s", "crd", "--all")
    kubectl("create", "namespace", NS)
    kubectl("label", "namespace", NS, "upgrade=on")
    queue = sqs.create_queue(QueueName="up-feedback")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for name in ("up-adoptee", "up-foreign"):
        ses.create_configuration_set(ConfigurationSetName=name, Tags=[{"Key": "made-by", "Value": "hand"}])
    apply(kube, {"apiVersion": API, "kind": "SesAccount", "metadata": {"name": ACCOUNT, "labels": {"upgrade": "on"}},
                 "spec": {"region": "us-east-1", "adoption": {"allowedNamespaces": {}}}})
    for obj in objects(queue_arn):
        apply(kube, obj)

    ports = {name: _port() for name in ("old", "new")}
    old = start(previous / "ses-reputation-operator", OLD_KEY, work, "old", ports)
    until("the identity in AWS", lambda: "upgrade.example" in [
        i["IdentityName"] for i in ses.list_email_identities()["EmailIdentities"]])
    _emulator(endpoint, "identity", {"identity": "upgrade.example", "verification": "SUCCESS"})
    for (kind, name), want in EXPECT.items():
        until(f"{kind} {name} {want} under the previous release",
              lambda: settled(kube.get_opt(path(kind, NS, name)), want))
    cw.put_metric_data(Namespace="AWS/SES", MetricData=[{
        "MetricName": "Reputation.BounceRate", "Value": 0.09, "Unit": "None", "Timestamp": datetime.now(timezone.utc),
        "Dimensions": [{"Name": "ses:configuration-set", "Value": "up-paused"}]}])
    until("set paused by its policy", lambda: conditions(kube.get(path("ConfigurationSet", NS, "paused"))).get(
        "SendingEnabled", {}).get("reason") == "PausedByPolicy")
    before = snapshot(kube)
    aws_before = collect.aws_state(endpoint)
    assert not aws_before["sets"]["up-paused"]["sending_enabled"], "AWS has the paused set sending"

    # The upgrade: CRDs first (Helm leaves crds/ alone on upgrade), then the
    # new pods start while the old one still leads.
    log("upgrading the CRDs")
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "deploy/crds/crds.yaml"))
    kubectl("wait", "--for", "condition=Established", "--timeout", "60s", "crd", "--all")
    for stored in before.values():
        problem = validates(kube, stored)
        if problem:
            failures.append(f"stored object does not validate under the new CRDs: {problem}")
    seq = _log_next(endpoint)
    new = start(ROOT / "target/debug/ses-reputation-operator", NEW_KEY, work, "new", ports)
    time.sleep(5)
    old.send_signal(signal.SIGTERM)
    if old.wait(timeout=40) != 0:
        failures.append(f"the previous release exited {old.returncode} on SIGTERM")
    log("previous release stopped; the new build takes over")
    sets = {s for s in aws_before["sets"] if s.startswith("up-")}
    # The new build has made a full pass once it read every set.
    until("the new build reading every set", lambda: not (sets - {
        e["reads"].split("/", 1)[1] for e in _log(endpoint, seq)
        if e["key"] == NEW_KEY and e["op"] == "sesv2:GetConfigurationSet" and e.get("reads")}) or "reading", 90)
    time.sleep(12)  # one drift period more

    entries = [e for e in _log(endpoint, seq) if e["key"] == NEW_KEY]
    for e in entries:
        op = e["op"].split(":", 1)[1]
        if op.startswith(("Create", "Delete")):
            failures.append(f"the new build called {e['op']} on {e.get('resource')} (log #{e['seq']})")
        if op == "PutConfigurationSetSendingOptions" and e.get("sending_enabled"):
            failures.append(f"the new build turned sending on for {e.get('resource')} (log #{e['seq']})")
    after = snapshot(kube)
    for key, old_obj in before.items():
        new_obj = after[key]
        for ctype, c in conditions(old_obj).items():
            n = conditions(new_obj).get(ctype)
            if n is None:
                continue  # a condition the new build no longer reports is not a regression of state
            if (n["status"], n["reason"]) != (c["status"], c["reason"]):
                failures.append(f"{key[0]} {key[1]}: {ctype} went from {c['status']}/{c['reason']} to "
                                f"{n['status']}/{n['reason']} ({n.get('message')})")
            elif n.get("lastTransitionTime") != c.get("lastTransitionTime"):
                failures.append(f"{key[0]} {key[1]}: {ctype} flapped (lastTransitionTime "
                                f"{c.get('lastTransitionTime')} -> {n.get('lastTransitionTime')})")
        if (old_obj.get("status") or {}).get("adoption") and not (new_obj.get("status") or {}).get("adoption"):
            failures.append(f"{key[0]} {key[1]}: the adoption record is gone")
    aws_after = collect.aws_state(endpoint)
    for name in sorted(sets):
        if aws_after["sets"].get(name) != aws_before["sets"][name]:
            failures.append(f"set {name} changed in AWS: {aws_before['sets'][name]} -> {aws_after['sets'].get(name)}")
    for arn, t in aws_before["topics"].items():
        if aws_after["topics"].get(arn) != t:
            failures.append(f"topic {arn} changed in AWS")

    # The old objects' deletion policies, applied by the new build.
    for kind, name in (("ConfigurationSet", "kept"), ("ConfigurationSet", "adopted"), ("EmailIdentity", "domain"),
                       ("EventDestination", "feedback"), ("ConfigurationSet", "ready")):
        kube.request("DELETE", path(kind, NS, name))
        until(f"{kind} {name} deleted", lambda: kube.get_opt(path(kind, NS, name)) is None or "deleting", 60)
    final = collect.aws_state(endpoint)
    for name, keep in (("up-kept", True), ("up-adoptee", True), ("up-ready", False)):
        if (name in final["sets"]) != keep:
            failures.append(f"set {name} {'is gone' if keep else 'is still in AWS'} after its object was deleted")
    if "upgrade.example" not in final["identities"]:
        failures.append("identity upgrade.example (Retain) is gone")
    if any(arn.endswith(":up-feedback") for arn in final["topics"]):
        failures.append("topic up-feedback (Delete) is still in AWS")
    new.send_signal(signal.SIGTERM)
    new.wait(timeout=40)

    for f in failures:
        print(f"FAIL {f}")
    log(f"{len(failures)} failures; {len(entries)} AWS calls by the new build; logs in {work}")
    return 1 if failures else 0


def _port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _emulator(endpoint: str, route: str, body: dict) -> None:
    import urllib.request
    req = urllib.request.Request(f"{endpoint}/_emulator/{route}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()


def _log(endpoint: str, since: int) -> list[dict]:
    return [e for e in collect.emulator_log(endpoint) if e["seq"] >= since]


def _log_next(endpoint: str) -> int:
    entries = collect.emulator_log(endpoint)
    return entries[-1]["seq"] + 1 if entries else 0


if __name__ == "__main__":
    sys.exit(main())
