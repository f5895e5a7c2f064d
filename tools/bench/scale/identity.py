"""The operator's own identity: a ServiceAccount bound to cluster-admin, its
kubeconfig (TokenRequest token), and the API Priority and Fairness
FlowSchemas that match only it, so that the API server counts its
requests by verb and resource."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import yaml

from .cluster import GROUP, Kube, crd_path, kubectl, log
from .measure import FS_PREFIX, api_snapshot

OP_NS, OP_SA = "sro-bench-system", "operator"
VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
# (api group, resource) the operator may use besides its CRDs; anything else
# lands in a per-verb catch-all and is still counted.
OTHER_RESOURCES = [("coordination.k8s.io", "leases"), ("events.k8s.io", "events"), ("", "events"),
                   ("", "namespaces"), ("", "secrets"), ("", "configmaps")]


@dataclass(frozen=True)
class OperatorIdentity:
    kubeconfig: Path
    flow_schemas: Mapping[str, str]  # FlowSchema name -> "verb resource"


def fs_name(verb: str, group: str, resource: str) -> str:
    return f"{FS_PREFIX}{verb}.{resource.replace('/', '.')}.{group or 'core'}"


def flow_schemas(resources: list[tuple[str, str]]) -> tuple[dict[str, str], list[dict]]:
    """FlowSchema name -> what it counts, and the FlowSchemas themselves."""
    subject = {"kind": "ServiceAccount", "serviceAccount": {"name": OP_SA, "namespace": OP_NS}}

    def schema(name: str, precedence: int, rule: dict) -> dict:
        return {"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema", "metadata": {"name": name},
                "spec": {"priorityLevelConfiguration": {"name": "sro-bench"}, "matchingPrecedence": precedence,
                         "distinguisherMethod": {"type": "ByUser"}, "rules": [{"subjects": [subject], **rule}]}}

    names: dict[str, str] = {}
    docs: list[dict] = []
    for verb in VERBS:
        for group, res in resources:
            name = fs_name(verb, group, res)
            names[name] = f"{verb} {res}" + (f" ({group})" if group not in ("", GROUP) else "")
            # Precedence 50: before every built-in schema but `exempt` and `probes`.
            docs.append(schema(name, 50, {"resourceRules": [{"verbs": [verb], "apiGroups": [group],
                                                            "resources": [res], "clusterScope": True,
                                                            "namespaces": ["*"]}]}))
        name = f"{FS_PREFIX}{verb}.other"
        names[name] = f"{verb} (other resources)"
        docs.append(schema(name, 60, {"resourceRules": [{"verbs": [verb], "apiGroups": ["*"], "resources": ["*"],
                                                        "clusterScope": True, "namespaces": ["*"]}]}))
    names[f"{FS_PREFIX}other"] = "anything else (other verbs, non-resource URLs)"
    docs.append(schema(f"{FS_PREFIX}other", 70, {
        "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "clusterScope": True,
                           "namespaces": ["*"]}],
        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}))
    return names, docs


def setup_operator_identity(admin: Kube, work: Path) -> OperatorIdentity:
    """ServiceAccount + cluster-admin binding + TokenRequest token, a
    kubeconfig for the operator, and APF FlowSchemas matching only it."""
    crds = [c for c in admin.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]
            if c["spec"]["group"] == GROUP]
    resources = []
    for crd in crds:
        plural = crd["spec"]["names"]["plural"]
        resources.append((GROUP, plural))
        if any("status" in (v.get("subresources") or {}) for v in crd["spec"]["versions"]):
            resources.append((GROUP, plural + "/status"))
    resources += OTHER_RESOURCES

    docs: list[dict] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OP_NS}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": OP_SA, "namespace": OP_NS}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "sro-bench-operator"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
         "subjects": [{"kind": "ServiceAccount", "name": OP_SA, "namespace": OP_NS}]},
        # Its own priority level, far more seats than the operator uses (no queuing).
        {"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "PriorityLevelConfiguration",
         "metadata": {"name": "sro-bench"},
         "spec": {"type": "Limited", "limited": {
             "nominalConcurrencyShares": 100, "lendablePercent": 0,
             "limitResponse": {"type": "Queue", "queuing": {"queues": 64, "handSize": 6, "queueLengthLimit": 50}}}}},
    ]
    names, schemas = flow_schemas(resources)
    docs += schemas
    path = work / "identity.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    kubectl("apply", "--server-side", "--field-manager", "bench", "-f", str(path))
    token = kubectl("create", "token", OP_SA, "-n", OP_NS, "--duration", "48h").strip()
    kubeconfig = work / "operator.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "ground", "cluster": admin.cluster}],
        "users": [{"name": "sro-bench-operator", "user": {"token": token}}],
        "contexts": [{"name": "ground", "context": {"cluster": "ground", "user": "sro-bench-operator",
                                                     "namespace": "default"}}],
        "current-context": "ground"}))
    kubeconfig.chmod(0o600)
    # Check the plumbing: one request as the operator must show up under its schema.
    probe = Kube(str(kubeconfig))
    want = fs_name("list", GROUP, "sesaccounts")
    deadline = time.monotonic() + 60
    while True:
        before = api_snapshot(admin).operator.get(want, 0)
        probe.get(crd_path("sesaccounts"))
        if api_snapshot(admin).operator.get(want, 0) > before:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"APF FlowSchema {want} does not count the operator's requests")
        time.sleep(1)
    log(f"operator identity: ServiceAccount {OP_NS}/{OP_SA}, {len(names)} FlowSchemas counting its requests")
    return OperatorIdentity(kubeconfig=kubeconfig, flow_schemas=names)
