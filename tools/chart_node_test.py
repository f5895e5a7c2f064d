"""The chart on the node ground, as a platform team installs it (`make
node-test`, after tools/node_test.py, in the same ground): the operator's
image (tools/image.sh, loaded into the node's containerd as two tags) runs
from `helm install` with AWS settings passed the way README tells users
(extraEnv, a Secret), against the emulator as AWS. It checks, in order:

- both replicas Running and Ready through the chart's probes; the
  container's process is what the chart's security contexts promise;
- a ConfigurationSet + EventDestination + EmailIdentity + ReputationPolicy
  reconcile to Ready with only the chart's ServiceAccount and RBAC, and a
  bounce spike pauses the set in AWS;
- /metrics through the chart's Service (its ClusterIP, then each of its
  endpoints), the leader gauge 1 on exactly one pod;
- leader failover: the leader pod deleted, the other takes the Lease and
  the old one makes no AWS call after that (the emulator's log, per
  caller: each pod signs with its own name as access key);
- the PodDisruptionBudget: one eviction allowed, the next refused;
- `helm upgrade` (Helm 4) to the second tag with live objects: a rolling
  update with no AWS create, no lifted pause, no object leaving Ready;
- `helm test` (the chart's hook runs `check`): passes, and fails once the
  replicas are scaled away;
- `helm uninstall` (Helm 4): pods gone; CRs, CRDs and AWS resources stay;
- `helm install` (Helm 4) again: Ready, the objects taken over with nothing
  created in AWS and the pause kept.

Exits 1 with the first failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from node_test import check_process, container_pid
# tools/bench/scale: the benchmark's small API client and subprocess helpers
from scale.cluster import Kube, KubeError, kubectl
from scale.cluster import sh as run
from soak import collect
from soak.workload import API, aws, path

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts/ses-reputation-operator"
NS, TENANT, RELEASE = "sro-system", "mail", "sro"
FULLNAME = f"{RELEASE}-ses-reputation-operator"
IMAGE = "localhost/ses-reputation-operator"
LABELS = f"app.kubernetes.io/name=ses-reputation-operator,app.kubernetes.io/instance={RELEASE}"  # the selector
OBJECTS = [("ConfigurationSet", "orders"), ("EventDestination", "orders-feedback"), ("EmailIdentity", "domain"),
           ("ReputationPolicy", "pause")]


def log(msg: str) -> None:
    print(f">> chart: {msg}", file=sys.stderr, flush=True)


def until(what: str, check: Callable[[], Any], timeout: float = 120) -> Any:
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (KubeError, OSError, RuntimeError, KeyError, StopIteration) as e:
            last = e
        if last and not isinstance(last, (str, Exception)):
            return last
        time.sleep(0.5)
    raise SystemExit(f"FAIL: {what} within {timeout:.0f}s (last: {last})")


def conditions(obj: dict) -> dict[str, dict]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


def ready(obj: dict | None) -> bool | str:
    if obj is None:
        return "absent"
    c = conditions(obj).get("Ready", {})
    ok = c.get("status") == "True" and (obj.get("status") or {}).get("observedGeneration") == obj["metadata"][
        "generation"]
    return True if ok else f"Ready: {c or 'none'}"


def pods() -> list[dict]:
    return json.loads(kubectl("-n", NS, "get", "pods", "-l", LABELS, "-o", "json"))["items"]


def pod_ready(pod: dict) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def ready_pods(image_tag: str) -> list[dict] | None:
    """Exactly the Deployment's replicas, all Ready and on this tag."""
    got = pods()
    fine = [p for p in got if pod_ready(p) and p["spec"]["containers"][0]["image"].endswith(f":{image_tag}")]
    return fine if len(got) == 2 and len(fine) == 2 else None


def lease() -> dict:
    return json.loads(kubectl("-n", NS, "get", "lease", FULLNAME, "-o", "json"))["spec"]


def lease_time(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def load_images() -> None:
    """The image built for the node (make node-test builds it first), under
    two tags: the upgrade moves from one to the other."""
    archive = ROOT / "target/image-debug/ses-reputation-operator.oci.tar"
    ctr = ["ctr", "--address", os.environ["SRO_NODE_CONTAINERD"], "-n", "k8s.io"]
    run(*ctr, "images", "import", str(archive))
    run(*ctr, "images", "tag", "--force", f"{IMAGE}:node-a", f"{IMAGE}:node-b")
    listed = run(*ctr, "images", "ls", "-q")
    assert f"{IMAGE}:node-a" in listed and f"{IMAGE}:node-b" in listed, listed


def values(tag: str) -> dict:
    """What a platform team sets, plus where AWS is: the emulator, through
    the node IP (tools/node.sh forwards its port). The apiserver is found
    as in any cluster, through the `kubernetes` Service (kube-proxy)."""
    aws_port = urlparse(os.environ["SRO_AWS_ENDPOINT"]).port
    env = [
        {"name": "AWS_ENDPOINT_URL", "value": f"http://{os.environ['SRO_NODE_IP']}:{aws_port}"},
        {"name": "AWS_REGION", "value": "us-east-1"},
        # Each pod signs with its own name: the emulator's log tells them apart.
        {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": "aws", "key": "secret-access-key"}}},
        {"name": "SRO_RATE_INTERVAL_SECONDS", "value": "5"},
    ]
    return {"image": {"repository": IMAGE, "tag": tag, "pullPolicy": "Never"},
            "operator": {"driftIntervalSeconds": 30, "sesCallsPerSecond": 20, "extraEnv": env}}


def helm(helm_bin: str, *args: str, tag: str) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(values(tag), f)
        f.flush()
        run(helm_bin, *args, RELEASE, str(CHART), "--namespace", NS, "-f", f.name)


def tenant_objects() -> list[dict]:
    return [
        {"apiVersion": API, "kind": "SesAccount", "metadata": {"name": "default"},
         "spec": {"region": "us-east-1", "allowedNamespaces": {"matchExpressions": [
             {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [TENANT]}]}}},
        {"apiVersion": API, "kind": "ReputationPolicy", "metadata": {"name": "pause", "namespace": TENANT},
         "spec": {"selector": {"matchLabels": {"pause": "yes"}}, "bounceRate": {"warning": 0.025, "critical": 0.05},
                  "complaintRate": {"warning": 0.0005, "critical": 0.001}, "actions": {"pauseSending": True}}},
        {"apiVersion": API, "kind": "ConfigurationSet",
         "metadata": {"name": "orders", "namespace": TENANT, "labels": {"pause": "yes"}},
         "spec": {"name": "chart-orders", "reputationMetrics": {"enabled": True}, "tags": {"team": "orders"}}},
        {"apiVersion": API, "kind": "EventDestination", "metadata": {"name": "orders-feedback", "namespace": TENANT},
         "spec": {"configurationSetRef": {"name": "orders"}, "eventTypes": ["BOUNCE", "COMPLAINT"], "enabled": True,
                  "sns": {"topic": {"name": "chart-orders-feedback"}}}},
        {"apiVersion": API, "kind": "EmailIdentity", "metadata": {"name": "domain", "namespace": TENANT},
         "spec": {"identity": "chart.example", "configurationSetRef": {"name": "orders"}}},
    ]


def apply(kube: Kube, obj: dict) -> None:
    meta = obj["metadata"]
    kube.request("PATCH", path(obj["kind"], meta.get("namespace"), meta["name"]) + "?fieldManager=chart-test&force=true",
                 obj, ctype="application/apply-patch+yaml")


def emulator(endpoint: str, route: str, body: dict) -> None:
    req = urllib.request.Request(f"{endpoint}/_emulator/{route}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()


def log_next(endpoint: str) -> int:
    entries = collect.emulator_log(endpoint)
    return entries[-1]["seq"] + 1 if entries else 0


def calls_since(endpoint: str, seq: int) -> list[dict]:
    return [e for e in collect.emulator_log(endpoint) if e["seq"] >= seq]


def metrics(pod: dict) -> str:
    with urllib.request.urlopen(f"http://{pod}:8080/metrics", timeout=10) as resp:
        return resp.read().decode()


def gauge(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def service_endpoints() -> list[str]:
    """The pod IPs behind the chart's Service, as kube-proxy would route."""
    slices = json.loads(kubectl("-n", NS, "get", "endpointslices", "-l", f"kubernetes.io/service-name={FULLNAME}",
                                "-o", "json"))["items"]
    return [a for s in slices for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready")
            for a in e["addresses"]]


class NotReadyWatch(threading.Thread):
    """Polls every tenant object and records any moment one is not Ready."""

    def __init__(self, kube: Kube):
        super().__init__(daemon=True)
        self.kube, self.seen, self.stop = kube, [], threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for kind, name in OBJECTS:
                try:
                    state = ready(self.kube.get_opt(path(kind, TENANT, name)))
                except (KubeError, OSError) as e:
                    state = f"unreadable: {e}"
                if state is not True:
                    self.seen.append(f"{time.strftime('%H:%M:%S')} {kind} {name}: {state}")
            time.sleep(0.5)


def install_and_reconcile(kube: Kube, endpoint: str) -> None:
    kubectl("create", "namespace", NS)
    kubectl("-n", NS, "create", "secret", "generic", "aws", "--from-literal=secret-access-key=testing")
    log("helm 3 install")
    helm(os.environ["HELM"], "install", tag="node-a")
    running = until("both replicas Running and Ready through the chart's probes", lambda: ready_pods("node-a"), 180)
    pod_context = json.loads(kubectl("-n", NS, "get", "deployment", FULLNAME, "-o", "json"))[
        "spec"]["template"]["spec"]["securityContext"]
    check_process(container_pid(running[0]), pod_context)
    log(f"pods {[p['metadata']['name'] for p in running]} Ready; security context checked from /proc")

    kubectl("create", "namespace", TENANT)
    for obj in tenant_objects():
        apply(kube, obj)
    ses = aws("sesv2", endpoint)
    until("the identity in AWS", lambda: "chart.example" in [
        i["IdentityName"] for i in ses.list_email_identities()["EmailIdentities"]])
    emulator(endpoint, "identity", {"identity": "chart.example", "verification": "SUCCESS"})
    for kind, name in OBJECTS:
        until(f"{kind} {name} Ready", lambda: ready(kube.get_opt(path(kind, TENANT, name))), 120)
    got = ses.get_configuration_set(ConfigurationSetName="chart-orders")
    assert {t["Key"]: t["Value"] for t in got["Tags"]}.get("team") == "orders", got["Tags"]
    dests = ses.get_configuration_set_event_destinations(ConfigurationSetName="chart-orders")["EventDestinations"]
    assert any((d.get("SnsDestination") or {}).get("TopicArn", "").endswith(":chart-orders-feedback") for d in dests), dests
    log("the tenant's objects are Ready and in AWS")

    aws("cloudwatch", endpoint).put_metric_data(Namespace="AWS/SES", MetricData=[{
        "MetricName": "Reputation.BounceRate", "Value": 0.09, "Unit": "None", "Timestamp": datetime.now(timezone.utc),
        "Dimensions": [{"Name": "ses:configuration-set", "Value": "chart-orders"}]}])
    until("the set paused by its policy", lambda: conditions(kube.get(path("ConfigurationSet", TENANT, "orders"))).get(
        "SendingEnabled", {}).get("reason") == "PausedByPolicy", 90)
    sending = ses.get_configuration_set(ConfigurationSetName="chart-orders").get("SendingOptions", {})
    assert sending.get("SendingEnabled") is False, f"AWS has the paused set sending: {sending}"
    log("a 9% bounce rate paused the set in AWS")


def scrape_through_service() -> str:
    cluster_ip = kubectl("-n", NS, "get", "service", FULLNAME, "-o", "jsonpath={.spec.clusterIP}")
    text, = until(f"/metrics through the Service's ClusterIP {cluster_ip}", lambda: (metrics(cluster_ip),))
    assert gauge(text, "ses_reputation_leader") is not None, "no ses_reputation_leader through the Service"
    # Which pod answered is kube-proxy's choice: ask each endpoint too.
    addresses = until("the Service's endpoints: both pods", lambda: len(service_endpoints()) == 2 and service_endpoints())
    leaders = {a: gauge(metrics(a), "ses_reputation_leader") for a in addresses}
    assert sorted(leaders.values()) == [0.0, 1.0], f"ses_reputation_leader per endpoint: {leaders}"
    holder = lease()["holderIdentity"]
    by_ip = {p["status"]["podIP"]: p["metadata"]["name"] for p in pods()}
    leader = by_ip[next(a for a, v in leaders.items() if v == 1.0)]
    assert leader == holder, f"the pod reporting leader=1 is {leader}, the Lease names {holder}"
    log(f"/metrics through the Service ({cluster_ip}) and its endpoints {addresses}: leader {leader}")
    return leader


def failover(kube: Kube, endpoint: str, old: str) -> None:
    duration = lease()["leaseDurationSeconds"]
    deleted = time.time()
    kubectl("-n", NS, "delete", "pod", old, "--wait=false")
    spec = until("another pod holding the Lease", lambda: (s := lease()).get("holderIdentity") not in (None, "", old)
                 and s, 90)
    handover = lease_time(spec.get("acquireTime") or spec["renewTime"])
    # The leader gives the Lease up on SIGTERM; a standby must not need to
    # wait for it to expire, let alone longer.
    assert handover - deleted < duration, f"the handover took {handover - deleted:.1f}s, the lease is {duration}s"
    log(f"{spec['holderIdentity']} took the Lease from {old} {handover - deleted:.1f}s after the delete")
    # The old pod's last calls may still be in flight at the handover; give
    # the log time to show anything it sends later.
    until(f"pod {old} gone", lambda: old not in [p["metadata"]["name"] for p in pods()], 60)
    late = [e for e in collect.emulator_log(endpoint) if e["key"] == old and e["time"] > handover]
    assert not late, f"{old} called AWS after the handover: {late[:5]}"

    seq = log_next(endpoint)
    obj = kube.get(path("ConfigurationSet", TENANT, "orders"))
    obj["spec"]["tags"]["rev"] = "2"
    apply(kube, {"apiVersion": API, "kind": "ConfigurationSet", "metadata": {
        "name": "orders", "namespace": TENANT, "labels": {"pause": "yes"}}, "spec": obj["spec"]})
    until("the spec change reconciled by the new leader", lambda: ready(kube.get(path("ConfigurationSet", TENANT, "orders"))))
    tags = {t["Key"]: t["Value"] for t in aws("sesv2", endpoint).get_configuration_set(
        ConfigurationSetName="chart-orders")["Tags"]}
    assert tags.get("rev") == "2", tags
    writers = {e["key"] for e in calls_since(endpoint, seq) if e["op"] == "sesv2:TagResource"}
    assert writers == {spec["holderIdentity"]}, f"tagged by {writers}, the leader is {spec['holderIdentity']}"
    log("no AWS call from the old leader after the handover; the new one reconciles")


def disruption_budget() -> None:
    until("two Ready replicas again", lambda: ready_pods("node-a"), 120)
    until("the PodDisruptionBudget allowing one disruption", lambda: json.loads(kubectl(
        "-n", NS, "get", "pdb", FULLNAME, "-o", "json")).get("status", {}).get("disruptionsAllowed") == 1, 60)
    first, second = [p["metadata"]["name"] for p in pods()]

    def evict(pod: str) -> subprocess.CompletedProcess:
        eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": NS}}
        return subprocess.run(["kubectl", "create", "--raw", f"/api/v1/namespaces/{NS}/pods/{pod}/eviction", "-f", "-"],
                              input=json.dumps(eviction), capture_output=True, text=True)
    got = evict(first)
    assert got.returncode == 0, f"evicting {first}: {got.stderr}"
    got = evict(second)
    assert got.returncode != 0 and "disruption budget" in got.stderr, \
        f"the second eviction ({second}) was not refused: rc {got.returncode}, {got.stdout} {got.stderr}"
    log(f"evicted {first}; evicting {second} refused by the budget")


def nothing_made_and_pause_kept(endpoint: str, seq: int, when: str) -> None:
    """No AWS create or delete and no sending turned on since log entry
    `seq`, and the paused set still paused."""
    for e in calls_since(endpoint, seq):
        op = e["op"].split(":", 1)[1]
        assert not op.startswith(("Create", "Delete")), f"{e['key']} called {e['op']} {when}"
        assert not (op == "PutConfigurationSetSendingOptions" and e.get("sending_enabled")), \
            f"{e['key']} turned sending back on {when}"
    sending = aws("sesv2", endpoint).get_configuration_set(ConfigurationSetName="chart-orders")["SendingOptions"]
    assert sending.get("SendingEnabled") is False, f"the pause was lifted {when}: {sending}"


def upgrade(kube: Kube, endpoint: str) -> None:
    until("two Ready replicas again", lambda: ready_pods("node-a"), 120)
    before = {key: kube.get(path(key[0], TENANT, key[1])) for key in OBJECTS}
    seq = log_next(endpoint)
    watch = NotReadyWatch(kube)
    watch.start()
    log("helm 4 upgrade to the second tag")
    helm(os.environ["HELM4"], "upgrade", tag="node-b")
    until("the rollout to node-b", lambda: ready_pods("node-b"), 240)
    leader, = until("a leader on node-b", lambda: (h := lease().get("holderIdentity")) in
                    [p["metadata"]["name"] for p in ready_pods("node-b") or []] and (h,), 90)
    time.sleep(35)  # a drift period of the new leader
    watch.stop.set()
    watch.join()
    assert not watch.seen, "objects left Ready during the upgrade:\n  " + "\n  ".join(watch.seen[:20])
    nothing_made_and_pause_kept(endpoint, seq, "during the upgrade")
    for key, old in before.items():
        new = kube.get(path(key[0], TENANT, key[1]))
        for ctype, c in conditions(old).items():
            n = conditions(new).get(ctype, {})
            assert n.get("lastTransitionTime") == c.get("lastTransitionTime"), f"{key} {ctype} flapped: {c} -> {n}"
    log(f"rolled to node-b, {leader} leads; nothing created in AWS, pause kept, no condition moved")


def helm_test() -> None:
    """The chart's test hook passes on a healthy release and fails, saying
    why, on one whose replicas are gone."""
    out = run(os.environ["HELM4"], "test", RELEASE, "--namespace", NS, "--logs", "--timeout", "120s")
    assert "healthy:" in out and "leads" in out, f"helm test passed without the check's line:\n{out}"
    log("helm test: " + next(line for line in out.splitlines() if "healthy:" in line).strip())
    kubectl("-n", NS, "scale", "deployment", FULLNAME, "--replicas=0")
    until("the replicas gone", lambda: not pods(), 90)
    failed = subprocess.run([os.environ["HELM4"], "test", RELEASE, "--namespace", NS, "--logs", "--timeout", "120s"],
                            capture_output=True, text=True)
    assert failed.returncode != 0, f"helm test passed with no replica:\n{failed.stdout}"
    why = kubectl("-n", NS, "logs", f"{FULLNAME}-check")
    assert "readyz" in why, f"the failed check does not say what it looked at: {why!r}"
    log("helm test with no replica fails: " + why.strip().splitlines()[-1])


def uninstall(kube: Kube, endpoint: str) -> None:
    log("helm 4 uninstall")
    run(os.environ["HELM4"], "uninstall", RELEASE, "--namespace", NS, "--wait")
    until("the operator's pods gone", lambda: not pods(), 90)
    for kind, name in OBJECTS:
        assert kube.get_opt(path(kind, TENANT, name)) is not None, f"{kind} {name} went with the release"
    kubectl("get", "crd", "configurationsets.ses.reputation.io")
    state = collect.aws_state(endpoint)
    assert "chart-orders" in state["sets"] and "chart.example" in state["identities"], \
        f"AWS resources went with the release: {sorted(state['sets'])}, {sorted(state['identities'])}"
    log("pods gone; CRDs, CRs and AWS resources stay")


def reinstall(kube: Kube, endpoint: str) -> None:
    """Helm 4 installs the chart again over what the last release left: the
    new operator takes the objects over with nothing made twice in AWS and
    the pause kept."""
    seq = log_next(endpoint)
    log("helm 4 install over the objects the last release left")
    helm(os.environ["HELM4"], "install", tag="node-b")
    until("both replicas Running and Ready (Helm 4 install)", lambda: ready_pods("node-b"), 180)
    for kind, name in OBJECTS:
        until(f"{kind} {name} Ready under the new release", lambda: ready(kube.get_opt(path(kind, TENANT, name))), 120)
    until("the new leader reading the set", lambda: any(
        e["op"] == "sesv2:GetConfigurationSet" and e.get("reads") == "configuration-set/chart-orders"
        for e in calls_since(endpoint, seq)), 90)
    nothing_made_and_pause_kept(endpoint, seq, "after the reinstall")
    log("Helm 4 install: Ready, took the objects over with nothing created in AWS, pause kept")


def main() -> None:
    endpoint = os.environ["SRO_AWS_ENDPOINT"]
    kube = Kube(os.environ["KUBECONFIG"])
    load_images()
    install_and_reconcile(kube, endpoint)
    leader = scrape_through_service()
    failover(kube, endpoint, leader)
    disruption_budget()
    upgrade(kube, endpoint)
    helm_test()
    uninstall(kube, endpoint)
    reinstall(kube, endpoint)
    print("chart test passed: helm 3 install, Ready through the chart's RBAC and probes, security context, metrics "
          "through the Service, failover with no late writes, PDB, helm 4 rolling upgrade, helm test, helm 4 uninstall and install again")


if __name__ == "__main__":
    main()
