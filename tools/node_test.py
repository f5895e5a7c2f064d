"""The node ground's own test (`make node-test`, run by tools/ground.sh with
SRO_GROUND_NODE=1): the node is Ready; a Deployment with the chart's pod
and container security contexts (from `helm template`) gets a Running pod
with a pod IP and a ServiceAccount token, and the process the runtime
started is what the chart promises (UID/GID 65532, no capabilities, no new
privileges, seccomp filtering, read-only root); deleting the namespace
finishes, the pod included. The pod runs the node's pause image, so this
checks the node alone; tools/chart_node_test.py runs the operator's image."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def kubectl(*args: str, stdin: str | None = None) -> str:
    return subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, check=True).stdout


def eventually(what: str, seconds: float, check):
    deadline, last = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        try:
            got = check()
            if got:
                return got
        except subprocess.CalledProcessError as e:
            last = e.stderr.strip()
        time.sleep(0.5)
    sys.exit(f"FAIL: {what} within {seconds}s (last: {last})")


def chart_security_contexts() -> tuple[dict, dict]:
    rendered = subprocess.run([os.environ["HELM"], "template", "sro", str(ROOT / "charts/ses-reputation-operator")],
                              capture_output=True, text=True, check=True).stdout
    deployment = next(d for d in yaml.safe_load_all(rendered) if d and d.get("kind") == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    return pod["securityContext"], pod["containers"][0]["securityContext"]


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def container_pid(pod: dict, container: int = 0) -> int:
    """The host PID of a pod's container, from the node's containerd."""
    container_id = pod["status"]["containerStatuses"][container]["containerID"].removeprefix("containerd://")
    # `ctr tasks ls` (containerd 1.6) prints a table: TASK PID STATUS.
    tasks = subprocess.run(["ctr", "--address", os.environ["SRO_NODE_CONTAINERD"], "-n", "k8s.io", "tasks", "ls"],
                           capture_output=True, text=True, check=True).stdout
    return next(int(cols[1]) for cols in (line.split() for line in tasks.splitlines()[1:])
                if cols and cols[0] == container_id)


def check_process(pid: int, pod_context: dict) -> None:
    """What the runtime started is what the chart's security contexts
    promise, read from /proc: UID/GID, no capabilities, no new privileges,
    seccomp filtering, a read-only root, a ServiceAccount token."""
    status = proc_status(pid)
    uid = str(pod_context["runAsUser"])
    gid = str(pod_context["runAsGroup"])
    assert status["Uid"].split() == [uid] * 4, f"Uid {status['Uid']}"
    assert status["Gid"].split() == [gid] * 4, f"Gid {status['Gid']}"
    assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0, f"caps {status['CapEff']}"
    assert status["NoNewPrivs"] == "1", f"NoNewPrivs {status['NoNewPrivs']}"
    assert status["Seccomp"] == "2", f"Seccomp {status['Seccomp']} (2 is filtering)"
    mounts = Path(f"/proc/{pid}/mounts").read_text().splitlines()
    root_options = next(m.split()[3] for m in mounts if m.split()[1] == "/")
    assert "ro" in root_options.split(","), f"root mounted {root_options}"
    token = Path(f"/proc/{pid}/root/var/run/secrets/kubernetes.io/serviceaccount/token")
    assert token.read_text().count(".") == 2, "no ServiceAccount token (a JWT) in the pod"


def main() -> None:
    node = os.environ["SRO_NODE_NAME"]
    ready = kubectl("get", "node", node, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}")
    assert ready == "True", f"node {node} Ready={ready!r}"

    ns = f"node-test-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", ns)
    # The ServiceAccount controller makes `default` in a new namespace.
    eventually("the default ServiceAccount", 30, lambda: kubectl("-n", ns, "get", "serviceaccount", "default"))
    pod_context, container_context = chart_security_contexts()
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "chart-context", "namespace": ns},
        "spec": {
            "replicas": 1, "selector": {"matchLabels": {"app": "chart-context"}},
            "template": {"metadata": {"labels": {"app": "chart-context"}}, "spec": {
                "securityContext": pod_context,
                "containers": [{"name": "pause", "image": os.environ["SRO_NODE_PAUSE_IMAGE"],
                                "imagePullPolicy": "Never", "securityContext": container_context}]}}}}
    kubectl("apply", "-f", "-", stdin=json.dumps(deployment))

    def running_pod():
        pods = json.loads(kubectl("-n", ns, "get", "pods", "-l", "app=chart-context", "-o", "json"))["items"]
        return next((p for p in pods if p["status"].get("phase") == "Running" and p["status"].get("podIP")), None)
    pod = eventually("a Running pod of the Deployment", 90, running_pod)
    assert pod["spec"]["nodeName"] == node, pod["spec"]["nodeName"]

    check_process(container_pid(pod), pod_context)

    # The namespace controller deletes the pod, the kubelet stops it, and
    # the namespace goes: on the ground without a node it never did.
    kubectl("delete", "namespace", ns, "--wait=false")
    def gone():
        try:
            kubectl("get", "namespace", ns)
            return False
        except subprocess.CalledProcessError as e:
            return "NotFound" in e.stderr
    eventually(f"namespace {ns} deleted", 120, gone)
    print(f"node test passed: {node} Ready; pod as {pod_context['runAsUser']}:{pod_context['runAsGroup']}, no capabilities, seccomp, read-only root, "
          "ServiceAccount token; namespace deleted")


if __name__ == "__main__":
    main()
