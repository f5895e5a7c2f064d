"""Scale benchmark on the test ground: selectable scenarios, each printing a
Markdown section and replacing its own section of docs/benchmarks.md.

Run by tools/bench/scale.sh inside `tools/ground.sh run`, which provides
KUBECONFIG (a system:masters token), SRO_AWS_ENDPOINT and the AWS test
credentials. Parameters (environment):

  SCENARIO  steady (default) | throttled | shared | spec-latency | recovery |
            all, or a comma-separated list
  N         pairs (ConfigurationSet + EventDestination with an operator-owned
            SNS topic); default per scenario: steady 1000, throttled 100,
            shared 100, spec-latency 40, recovery 30. Under make, N counts
            only when given on make's command line (the Makefile's N ?= 200
            is ignored).
  RUNS      runs per scenario (1); the report quotes medians (min–max)
  TIMEOUT   seconds per wait (default per scenario, see DEFAULT_TIMEOUT)

  steady:        SES_RPS (1000: the operator's SES bucket is effectively off),
                 POLICIES (10 ReputationPolicies), SETTLE (30 s after all
                 Ready), STEADY (150 s window), SQS (0; 1 adds one SQS
                 subscription per topic), IDENTITIES (N/10 EmailIdentities,
                 each a domain with MAIL FROM and set i as its default,
                 applied once the pairs are Ready and verified through the
                 emulator's admin call; they stay through the steady window)
  throttled:     THROTTLED_RPS (emulator SES calls/s, 1); operator at its default 1
  shared:        SHARED_RPS (emulator, 0.5); operator at 1
  spec-latency:  SPEC_RPS (emulator, 1), DRIFT (operator --drift-interval-seconds, 10),
                 CHANGES (20), CHANGE_TIMEOUT (300 s), WARM (600 s: longest wait for drift checks to start)
  recovery:      RECOVERY_RPS (emulator while throttled, 0.2), HOLD (60 s of
                 throttling from the start of the apply); operator at its default 1

How the operator's API-server requests are told apart from everyone else's:
apiserver_request_total has no user label, so the operator does not run with
the ground's system:masters token but as its own ServiceAccount
(sro-bench-system/operator, bound to cluster-admin; token from TokenRequest),
and the script creates API Priority and Fairness FlowSchemas that match only
that ServiceAccount, one per verb and resource, plus per-verb and global
catch-alls. `apiserver_flowcontrol_dispatched_requests_total{flow_schema=...}`
then counts exactly the operator's requests by verb and resource. The
benchmark's own client is the ground's admin (APF's `exempt` schema, never
counted there) and sends no request inside the steady window; the
apiserver_request_total delta over the same window (all clients: the
operator plus the apiserver's own loopback traffic) is shown beside it.
"""

from __future__ import annotations

import ctypes
import datetime
import hashlib
import http.client
import json
import math
import os
import re
import shlex
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import yaml  # in the emulator's venv (moto needs it)

ROOT = Path(__file__).resolve().parents[2]
# BENCH_BIN: another build (e.g. a debug binary for a smoke run).
BIN = Path(os.environ.get("BENCH_BIN") or ROOT / "target/release/ses-reputation-operator")
DOC = Path(os.environ.get("BENCH_DOC") or ROOT / "docs/benchmarks.md")  # BENCH_DOC: elsewhere (smoke tests)
GROUP, VERSION = "ses.reputation.io", "v1alpha1"
API = f"{GROUP}/{VERSION}"
AGENT = "sro-bench/scale"

SCENARIOS = ["steady", "throttled", "shared", "spec-latency", "recovery"]
DEFAULT_N = {"steady": 1000, "throttled": 100, "shared": 100, "spec-latency": 40, "recovery": 30}


def given(name: str) -> str | None:
    """An env parameter, unless it is only the Makefile's default: under make,
    a variable counts when it is on make's command line (MAKEFLAGS) or was set
    in the environment to something other than the Makefile's default."""
    value = os.environ.get(name)
    if value is None or "MAKELEVEL" not in os.environ:
        return value
    cmdline = os.environ.get("MAKEFLAGS", "").partition(" -- ")[2]
    if re.search(rf"(^|\s){name}=", cmdline):
        return value
    make_defaults = {"N": "200", "SES_RPS": "1000", "RUNS": "1"}
    return None if make_defaults.get(name) == value else value


def env_float(name: str, default: float) -> float:
    v = given(name)
    return float(v) if v not in (None, "") else default


RUNS = int(env_float("RUNS", 1))
SQS = given("SQS") == "1"
SES_RPS = given("SES_RPS") or "1000"
POLICIES = int(env_float("POLICIES", 10))
IDENTITIES = given("IDENTITIES")  # steady: default N // 10
SETTLE = env_float("SETTLE", 30)
STEADY = env_float("STEADY", 150)
THROTTLED_RPS = env_float("THROTTLED_RPS", 1)
SHARED_RPS = env_float("SHARED_RPS", 0.5)
SPEC_RPS = env_float("SPEC_RPS", 1)
DRIFT = env_float("DRIFT", 10)
CHANGES = int(env_float("CHANGES", 20))
CHANGE_TIMEOUT = env_float("CHANGE_TIMEOUT", 300)
WARM = env_float("WARM", 600)  # spec-latency: longest wait for drift checks to start
RECOVERY_RPS = env_float("RECOVERY_RPS", 0.2)
HOLD = env_float("HOLD", 60)
ENDPOINT = os.environ.get("SRO_AWS_ENDPOINT", "")
(ROOT / "target").mkdir(exist_ok=True)
OP_DEFAULTS, DRIFT_SHARE = "?", None  # from the binary's --help, in main()
WORK = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=ROOT / "target"))


def identities_for(n: int) -> int:
    return int(IDENTITIES) if IDENTITIES not in (None, "") else n // 10


def n_for(scenario: str) -> int:
    return int(given("N") or DEFAULT_N[scenario])


def timeout_for(scenario: str, n: int) -> float:
    if given("TIMEOUT"):
        return float(given("TIMEOUT"))
    return {
        "steady": 900 + n,
        # 4 SES calls per pair at the emulator's rate, with 2.5x slack.
        "throttled": max(600.0, 10 * n / THROTTLED_RPS),
        "shared": max(600.0, 10 * n / SHARED_RPS),
        "spec-latency": max(600.0, 10 * n / SPEC_RPS),
        "recovery": HOLD + max(600.0, 10 * n),
    }[scenario]


# What the operator must call, per object, to create a fresh object
# (src/controller/*.rs, src/aws/*.rs): the "design minimum".
MIN_PER_SET = {"sesv2:GetConfigurationSet": 1, "sesv2:CreateConfigurationSet": 1}
MIN_PER_DEST = {
    "sns:GetTopicAttributes": 1,  # NotFound: the topic does not exist yet
    "sns:CreateTopic": 1,  # bare name + ownership tag
    "sns:SetTopicAttributes": 2,  # Policy, SignatureVersion (DisplayName/KMS empty: no call)
    "sns:ListSubscriptionsByTopic": 2 if SQS else 1,  # diff; re-read after Subscribe
    "sesv2:GetConfigurationSetEventDestinations": 1,
    "sesv2:CreateConfigurationSetEventDestination": 1,
    **({"sns:Subscribe": 1} if SQS else {}),
}
MIN_PER_PAIR = dict(Counter(MIN_PER_SET) + Counter(MIN_PER_DEST))
# The bare AWS minimum: create calls only, no observation.
BARE_PER_PAIR = {
    "sesv2:CreateConfigurationSet": 1,
    "sesv2:CreateConfigurationSetEventDestination": 1,
    "sns:CreateTopic": 1,
    "sns:SetTopicAttributes": 2,
    **({"sns:Subscribe": 1} if SQS else {}),
}
SES_DESIGN_PER_PAIR = sum(v for k, v in MIN_PER_PAIR.items() if k.startswith("sesv2:"))  # 4
SES_BARE_PER_PAIR = sum(v for k, v in BARE_PER_PAIR.items() if k.startswith("sesv2:"))  # 2
MIN_PER_TAG_CHANGE = {"sesv2:GetConfigurationSet": 1, "sesv2:TagResource": 1}
# A new domain identity with MAIL FROM and a default set: create (key length,
# set and tags ride along), one read for status, the MAIL FROM Put, and one
# read once AWS has verified it.
MIN_PER_IDENTITY = {"sesv2:CreateEmailIdentity": 1, "sesv2:GetEmailIdentity": 2,
                    "sesv2:PutEmailIdentityMailFromAttributes": 1}
# Per account and interval, not per object: listed apart from the per-object totals.
PERIODIC = {"sts:GetCallerIdentity", "sesv2:GetAccount", "cloudwatch:GetMetricData"}
SENDING = {"sesv2:SendEmail", "sesv2:SendRawEmail", "sesv2:SendBulkEmail"}


def log(msg: str) -> None:
    print(f">> {msg}", file=sys.stderr, flush=True)


def sh(*args: str, stdin: str | None = None) -> str:
    res = subprocess.run(args, input=stdin, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {res.stderr.strip()}")
    return res.stdout


def kubectl(*args: str, stdin: str | None = None) -> str:
    return sh("kubectl", *args, stdin=stdin)


# ---------------------------------------------------------------- clients


class KubeError(RuntimeError):
    def __init__(self, status: int, body: bytes):
        super().__init__(f"HTTP {status}: {body[:500].decode(errors='replace')}")
        self.status = status


class Kube:
    """A minimal client on one keep-alive HTTPS connection, with the token
    and CA of a kubeconfig: cheaper than a kubectl process per poll."""

    def __init__(self, kubeconfig: str):
        cfg = yaml.safe_load(Path(kubeconfig).read_text())
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == cfg["current-context"])
        self.cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        self.token = next(u["user"] for u in cfg["users"] if u["name"] == ctx["user"])["token"]
        self.url = urlparse(self.cluster["server"])
        self.ssl = ssl.create_default_context(cafile=self.cluster["certificate-authority"])
        self.conn: http.client.HTTPSConnection | None = None

    def request(self, method: str, path: str, body: object = None,
                ctype: str = "application/merge-patch+json") -> bytes:
        headers = {"Authorization": f"Bearer {self.token}", "User-Agent": AGENT, "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = ctype
        failures, deadline = 0, time.monotonic() + 60
        while True:
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(self.url.hostname, self.url.port, context=self.ssl, timeout=120)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                failures += 1
                if failures == 3:
                    raise
                time.sleep(0.5)
                continue
            # 429 "storage is (re)initializing" right after a CRD install: retry.
            if resp.status == 429 and time.monotonic() < deadline:
                time.sleep(float(resp.getheader("Retry-After") or 1))
                continue
            if resp.status >= 400:
                raise KubeError(resp.status, raw)
            return raw

    def get(self, path: str) -> dict:
        return json.loads(self.request("GET", path))

    def get_opt(self, path: str) -> dict | None:
        try:
            return self.get(path)
        except KubeError as e:
            if e.status == 404:
                return None
            raise

    def patch(self, path: str, body: dict) -> dict:
        return json.loads(self.request("PATCH", path, body))


def crd_path(plural: str, ns: str | None = None, name: str | None = None) -> str:
    path = f"/apis/{GROUP}/{VERSION}" + (f"/namespaces/{ns}" if ns else "") + f"/{plural}"
    return path + (f"/{name}" if name else "")


def emulator(method: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(ENDPOINT + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        raw = resp.read()
    return json.loads(raw) if path.startswith("/_emulator") and raw else {}


def aws_calls() -> dict[str, Counter]:
    """AWS calls since the last reset, by service:Operation: all (throttled and
    failed included), throttled (429) and failed (injected 5xx)."""
    got = emulator("GET", "/_emulator/calls")
    return {k: Counter(got.get(k) or {}) for k in ("calls", "throttled", "failed")}


def reset_calls() -> None:
    emulator("POST", "/_emulator/calls/reset")


def set_ses_rps(rps: float | None) -> None:
    emulator("POST", "/_emulator/faults", {"ses_rps": rps})


def ses_ok(c: dict[str, Counter]) -> int:
    """SES control-plane calls the emulator accepted (not throttled, not failed)."""
    return sum(v - c["throttled"].get(k, 0) - c["failed"].get(k, 0)
               for k, v in c["calls"].items() if k.startswith("sesv2:") and k not in SENDING)


def ses_all(c: dict[str, Counter]) -> int:
    return sum(v for k, v in c["calls"].items() if k.startswith("sesv2:") and k not in SENDING)


def proc_status(pid: int) -> dict[str, float]:
    """VmHWM / VmRSS in MiB and CPU seconds (user+system) of a process."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(value.split()[0]) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    out["cpu"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


# ---------------------------------------------------------------- metrics

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(kube: Kube, names: set[str]) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for line in kube.request("GET", "/metrics").decode().splitlines():
        m = SAMPLE.match(line)
        if m and m.group(1) in names:
            out.append((m.group(1), dict(LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return out


def api_snapshot(kube: Kube) -> dict[str, Counter]:
    """apiserver_request_total by (VERB, resource[/subresource]) over all
    clients, and the operator's APF dispatches by FlowSchema name."""
    requests: Counter = Counter()
    operator: Counter = Counter()
    for name, labels, value in scrape(kube, {"apiserver_request_total",
                                             "apiserver_flowcontrol_dispatched_requests_total"}):
        if name == "apiserver_request_total":
            res, sub = labels.get("resource", ""), labels.get("subresource", "")
            res = (f"{res}/{sub}" if sub else res) if res else f"(non-resource {sub or '?'})"
            requests[(labels.get("verb", ""), res)] += value
        elif labels.get("flow_schema", "").startswith(FS_PREFIX):
            operator[labels["flow_schema"]] += value
    return {"all": requests, "operator": operator}


def api_delta(before: dict[str, Counter], after: dict[str, Counter]) -> dict[str, dict]:
    d_all = {f"{k[0]} {k[1]}": v - before["all"].get(k, 0) for k, v in after["all"].items()}
    d_op = {k: v - before["operator"].get(k, 0) for k, v in after["operator"].items()}
    return {"all": {k: v for k, v in d_all.items() if v}, "operator": {k: v for k, v in d_op.items() if v}}


# ------------------------------------------- the operator's own identity

FS_PREFIX = "sro-op."
OP_NS, OP_SA = "sro-bench-system", "operator"
VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
# (api group, resource) the operator may use besides its CRDs; anything else
# lands in a per-verb catch-all and is still counted.
OTHER_RESOURCES = [("coordination.k8s.io", "leases"), ("events.k8s.io", "events"), ("", "events"),
                   ("", "namespaces"), ("", "secrets"), ("", "configmaps")]
FLOW_SCHEMAS: dict[str, str] = {}  # FlowSchema name -> "verb resource"


def fs_name(verb: str, group: str, resource: str) -> str:
    return f"{FS_PREFIX}{verb}.{resource.replace('/', '.')}.{group or 'core'}"


def setup_operator_identity(admin: Kube) -> Path:
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
    subject = {"kind": "ServiceAccount", "serviceAccount": {"name": OP_SA, "namespace": OP_NS}}

    def schema(name: str, precedence: int, rule: dict) -> dict:
        return {"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema", "metadata": {"name": name},
                "spec": {"priorityLevelConfiguration": {"name": "sro-bench"}, "matchingPrecedence": precedence,
                         "distinguisherMethod": {"type": "ByUser"}, "rules": [{"subjects": [subject], **rule}]}}

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
    FLOW_SCHEMAS.clear()
    for verb in VERBS:
        for group, res in resources:
            name = fs_name(verb, group, res)
            FLOW_SCHEMAS[name] = f"{verb} {res}" + (f" ({group})" if group not in ("", GROUP) else "")
            # Precedence 50: before every built-in schema but `exempt` and `probes`.
            docs.append(schema(name, 50, {"resourceRules": [{"verbs": [verb], "apiGroups": [group],
                                                            "resources": [res], "clusterScope": True,
                                                            "namespaces": ["*"]}]}))
        name = f"{FS_PREFIX}{verb}.other"
        FLOW_SCHEMAS[name] = f"{verb} (other resources)"
        docs.append(schema(name, 60, {"resourceRules": [{"verbs": [verb], "apiGroups": ["*"], "resources": ["*"],
                                                        "clusterScope": True, "namespaces": ["*"]}]}))
    FLOW_SCHEMAS[f"{FS_PREFIX}other"] = "anything else (other verbs, non-resource URLs)"
    docs.append(schema(f"{FS_PREFIX}other", 70, {
        "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "clusterScope": True,
                           "namespaces": ["*"]}],
        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}))
    path = WORK / "identity.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    kubectl("apply", "--server-side", "--field-manager", "bench", "-f", str(path))
    token = kubectl("create", "token", OP_SA, "-n", OP_NS, "--duration", "48h").strip()
    kubeconfig = WORK / "operator.kubeconfig"
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
        before = api_snapshot(admin)["operator"].get(want, 0)
        probe.get(crd_path("sesaccounts"))
        if api_snapshot(admin)["operator"].get(want, 0) > before:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"APF FlowSchema {want} does not count the operator's requests")
        time.sleep(1)
    log(f"operator identity: ServiceAccount {OP_NS}/{OP_SA}, {len(FLOW_SCHEMAS)} FlowSchemas counting its requests")
    return kubeconfig


# ---------------------------------------------------------------- objects


def is_ready(obj: dict) -> bool:
    gen = obj["metadata"].get("generation")
    status = obj.get("status") or {}
    for c in status.get("conditions") or []:
        if c["type"] == "Ready":
            return (c["status"] == "True" and c.get("observedGeneration", gen) == gen
                    and status.get("observedGeneration", gen) == gen)
    return False


def summary(obj: dict) -> str:
    conds = (obj.get("status") or {}).get("conditions") or []
    parts = [f"{c['type']}={c['status']}({c.get('reason', '')}: {c.get('message', '')})" for c in conds]
    return f"{obj['kind']}/{obj['metadata']['name']} gen={obj['metadata'].get('generation')} " + (
        "; ".join(parts) or "no conditions")


def list_objects(kube: Kube, ns: str, plurals: list[str]) -> list[dict]:
    items = []
    for plural in plurals:
        got = kube.get(crd_path(plural, ns))
        kind = got["kind"].removesuffix("List")
        for obj in got["items"]:
            obj["kind"] = kind
            items.append(obj)
    return items


def wait_ready(kube: Kube, ns: str, what: str, plurals: list[str], expect: int, n: int, stalled: set[str],
               start: float, timeout: float, progress: dict | None = None) -> tuple[float | None, dict]:
    """Polls until `expect` objects of `plurals` are Ready for their generation.
    Returns (seconds since `start`, when each kind was all Ready) or (None,
    {"not_ready": [...]}) after `timeout`. `progress["ready"]` tracks the count."""
    all_ready_at: dict[str, float] = {}
    last_log = time.monotonic()
    # Listing thousands of objects is not free on 2 cores: poll less often then.
    interval = 0.5 if expect <= 400 else max(1.0, expect / 2000)
    while True:
        items = list_objects(kube, ns, plurals)
        now = time.monotonic() - start
        by_kind: Counter = Counter()
        not_ready = []
        for obj in items:
            for c in (obj.get("status") or {}).get("conditions") or []:
                if c["type"] == "Stalled" and c["status"] == "True":
                    stalled.add(summary(obj))
            if is_ready(obj):
                by_kind[obj["kind"]] += 1
            else:
                not_ready.append(obj)
        if progress is not None:
            progress["ready"] = sum(by_kind.values())
        for kind, count in by_kind.items():
            if count == n and kind not in all_ready_at:
                all_ready_at[kind] = now
        if len(items) == expect and not not_ready:
            return now, all_ready_at
        if now > timeout:
            log(f"{what}: TIMEOUT after {now:.0f}s; {len(not_ready)} not Ready, e.g.:")
            for obj in not_ready[:10]:
                log("  " + summary(obj))
            return None, {"not_ready": [summary(o) for o in not_ready]}
        if time.monotonic() - last_log > 15:
            log(f"{what}: {now:.0f}s, Ready {dict(by_kind)} of {len(items)}")
            last_log = time.monotonic()
        time.sleep(interval)


def manifests(ns: str, n: int, queue_arn: str | None = None, tag: str | None = None, sets_only: bool = False,
              policies: int = 0) -> str:
    docs = []
    for i in range(n):
        spec: dict = {"name": f"bench-cs-{i}"}
        if tag:
            spec["tags"] = {"bench": tag}
        meta = {"name": f"cs-{i}", "namespace": ns}
        if policies:
            meta["labels"] = {"bench-group": f"g{i % policies}"}
        docs.append({"apiVersion": API, "kind": "ConfigurationSet", "metadata": meta, "spec": spec})
        if sets_only:
            continue
        topic = {"subscriptions": [{"protocol": "sqs", "endpoint": queue_arn}]} if queue_arn else {}
        docs.append({"apiVersion": API, "kind": "EventDestination",
                     "metadata": {"name": f"ed-{i}", "namespace": ns},
                     "spec": {"configurationSetRef": {"name": f"cs-{i}"}, "sns": {"topic": topic}}})
    for j in range(policies):
        docs.append({"apiVersion": API, "kind": "ReputationPolicy", "metadata": {"name": f"rp-{j}", "namespace": ns},
                     "spec": {"selector": {"matchLabels": {"bench-group": f"g{j}"}},
                              "bounceRate": {"warning": 0.025, "critical": 0.05},
                              "complaintRate": {"warning": 0.0005, "critical": 0.001},
                              "actions": {"pauseSending": True}}})
    return yaml.safe_dump_all(docs, sort_keys=False)


def identity_manifests(ns: str, count: int) -> str:
    docs = [{"apiVersion": API, "kind": "EmailIdentity", "metadata": {"name": f"id-{i}", "namespace": ns},
             "spec": {"identity": f"bench-{i}.example.org", "mailFromDomain": f"mail.bench-{i}.example.org",
                      "configurationSetRef": {"name": f"cs-{i}"}}} for i in range(count)]
    return yaml.safe_dump_all(docs, sort_keys=False)


def verify_identities(count: int, deadline: float) -> int:
    """Moves each bench identity to SUCCESS in the emulator (what AWS's DNS
    checks would do) as soon as the operator has created it. Returns how
    many were verified before `deadline` (monotonic)."""
    pending = set(range(count))
    while pending and time.monotonic() < deadline:
        for i in sorted(pending):
            try:
                emulator("POST", "/_emulator/identity", {"identity": f"bench-{i}.example.org",
                                                         "verification": "SUCCESS", "mail_from": "SUCCESS"})
                pending.discard(i)
            except urllib.error.HTTPError:  # not created yet
                pass
        if pending:
            time.sleep(0.5)
    return count - len(pending)


def apply(path: Path, text: str) -> float:
    path.write_text(text)
    start = time.monotonic()
    kubectl("apply", "--server-side", "--field-manager", "bench", "-f", str(path))
    return time.monotonic() - start


def die_with_parent() -> None:
    """The operator gets SIGTERM if this script dies, however it dies."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Operator:
    def __init__(self, ns: str, tag: str, kubeconfig: Path, extra: list[str]):
        self.log_path = WORK / f"operator-{tag}.log"
        self.metrics_port = free_port()
        env = {**os.environ, "RUST_LOG": "warn", "KUBECONFIG": str(kubeconfig)}
        self.args = ["run", "--namespace", ns, "--default-account", "default", "--cluster-name", "bench",
                     "--metrics-addr", f"127.0.0.1:{self.metrics_port}", *extra]
        self.proc = subprocess.Popen([str(BIN), *self.args], env=env, stdout=self.log_path.open("w"),
                                     stderr=subprocess.STDOUT, preexec_fn=die_with_parent)

    def flags(self) -> str:
        """The flags that matter for the reading (namespace and ports left out)."""
        skip = {"--namespace", "--metrics-addr", "--default-account", "--cluster-name"}
        out, args = [], iter(self.args[1:])
        for a in args:
            v = next(args, "")
            if a not in skip:
                out.append(f"{a} {v}")
        return " ".join(out)

    def metrics(self) -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as r:
                return r.read().decode()
        except OSError as e:
            return f"# unavailable: {e}"

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def warnings(self) -> list[str]:
        return log_warnings(self.log_path)


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def log_warnings(path: Path) -> list[str]:
    """WARN/ERROR lines of an operator log, colour codes removed."""
    lines = (ANSI.sub("", line) for line in path.read_text(errors="replace").splitlines())
    return [line for line in lines if " WARN " in line or " ERROR " in line]


def remove_account(admin: Kube) -> None:
    """Deletes the SesAccount and waits until it is gone. No operator runs
    here, so nothing would remove its finalizer: the benchmark does (the
    emulator is reset anyway, there is nothing to clean up in AWS)."""
    path = crd_path("sesaccounts", name="default")
    if admin.get_opt(path) is None:
        return
    try:
        admin.request("DELETE", path)
        admin.patch(path, {"metadata": {"finalizers": None}})
    except KubeError as e:
        if e.status != 404:
            raise
    deadline = time.monotonic() + 60
    while admin.get_opt(path) is not None:
        if time.monotonic() > deadline:
            raise RuntimeError("SesAccount default is still there 60 s after its deletion")
        time.sleep(0.2)


class Run:
    """One run's fixture: fresh emulator state, namespace and SesAccount, and
    the operator started and waited for (SesAccount Ready)."""

    def __init__(self, ctx: dict, scenario: str, run: int, extra_args: list[str]):
        self.ctx, self.admin = ctx, ctx["admin"]
        self.tag = f"{scenario}-{run}"
        self.r: dict = {"run": run}
        emulator("POST", "/moto-api/reset")  # fresh AWS state, counters and faults
        self.ns = f"bench-{scenario}-{run}-{int(time.time())}"
        kubectl("create", "namespace", self.ns)
        remove_account(self.admin)
        kubectl("apply", "--server-side", "--field-manager", "bench", "-f", "-", stdin=json.dumps(
            {"apiVersion": API, "kind": "SesAccount", "metadata": {"name": "default"},
             "spec": {"region": "us-east-1"}}))
        reset_calls()
        self.op = Operator(self.ns, self.tag, ctx["kubeconfig"], extra_args)
        start = time.monotonic()
        while True:
            acct = self.admin.get_opt(crd_path("sesaccounts", name="default"))
            if acct and is_ready(acct):
                break
            if self.op.proc.poll() is not None or time.monotonic() - start > 120:
                self.close()
                raise RuntimeError(f"operator not up; log:\n{self.op.log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        self.r["startup_s"] = time.monotonic() - start
        self.r["startup_calls"] = aws_calls()["calls"]
        self.r["operator_flags"] = self.op.flags()
        reset_calls()

    def pid(self) -> int:
        return self.op.proc.pid

    def close(self) -> dict:
        (WORK / f"operator-metrics-{self.tag}.txt").write_text(self.op.metrics())
        self.r["operator_exit"] = self.op.stop()
        self.r["operator_warnings"] = self.op.warnings()
        set_ses_rps(None)
        remove_account(self.admin)
        return self.r


# ---------------------------------------------------------------- scenarios


def scenario_steady(ctx: dict, run: int, n: int) -> dict:
    admin = ctx["admin"]
    timeout = timeout_for("steady", n)
    fx = Run(ctx, "steady", run, ["--ses-calls-per-second", SES_RPS])
    r = fx.r
    try:
        queue_arn = None
        if SQS:
            import boto3
            sqs = boto3.client("sqs", endpoint_url=ENDPOINT, region_name="us-east-1")
            sqs.create_queue(QueueName="bench-events")
            queue_arn = "arn:aws:sqs:us-east-1:123456789012:bench-events"
            reset_calls()
        # Phase 1: N fresh pairs and the ReputationPolicies, one apply.
        stalled: set[str] = set()
        cpu0 = proc_status(fx.pid())["cpu"]
        t0 = time.monotonic()  # the clock runs from the start of the apply
        r["apply_s"] = apply(WORK / "objects.yaml", manifests(fx.ns, n, queue_arn, policies=POLICIES))
        log(f"steady run {run}: applied {2 * n + POLICIES} objects in {r['apply_s']:.1f}s")
        secs, at = wait_ready(admin, fx.ns, f"steady run {run} create", ["configurationsets", "eventdestinations"],
                              2 * n, n, stalled, t0, timeout)
        r["converge_calls"] = aws_calls()["calls"]
        r["ready_s"] = secs
        r["tail_s"] = secs and secs - r["apply_s"]
        if secs is None:
            r["not_ready"] = at["not_ready"]
            return r
        r["sets_ready_s"] = at.get("ConfigurationSet")
        r["dests_ready_s"] = at.get("EventDestination")
        st = proc_status(fx.pid())
        r["cpu_converge_s"] = st["cpu"] - cpu0
        r["rss_converged_mib"] = st["VmRSS"]

        # Phase 1b: EmailIdentities using the sets as default, verified as
        # soon as they exist; counted apart so the per-pair figures stay clean.
        ids = identities_for(n)
        r["identities"] = ids
        if ids:
            reset_calls()
            t0 = time.monotonic()
            apply(WORK / "identities.yaml", identity_manifests(fx.ns, ids))
            r["identities_verified"] = verify_identities(ids, t0 + timeout)
            secs, at = wait_ready(admin, fx.ns, f"steady run {run} identities", ["emailidentities"], ids, ids,
                                  stalled, t0, timeout)
            r["identities_ready_s"] = secs
            r["identity_calls"] = aws_calls()["calls"]
            if secs is None:
                r["identities_not_ready"] = at["not_ready"]

        # Phase 2: settle, then a steady window in which this script sends the
        # API server nothing but its two /metrics reads.
        time.sleep(SETTLE)
        plurals = ["configurationsets", "eventdestinations", "reputationpolicies", "emailidentities"]
        objs_before = {(o["kind"], o["metadata"]["name"]): o for o in list_objects(admin, fx.ns, plurals)}
        rv_before = {k: o["metadata"]["resourceVersion"] for k, o in objs_before.items()}
        acct_before = admin.get(crd_path("sesaccounts", name="default"))
        acct_rv = acct_before["metadata"]["resourceVersion"]
        reset_calls()
        cpu0 = proc_status(fx.pid())["cpu"]
        api0 = api_snapshot(admin)
        w0 = time.monotonic()
        time.sleep(STEADY)
        api1 = api_snapshot(admin)
        r["steady_window_s"] = time.monotonic() - w0
        r["steady_calls"] = aws_calls()["calls"]
        st = proc_status(fx.pid())
        r["cpu_steady_s"] = st["cpu"] - cpu0
        r["rss_steady_mib"], r["rss_peak_steady_mib"] = st["VmRSS"], st["VmHWM"]
        after = list_objects(admin, fx.ns, plurals)
        r["rv_changed"] = dict(Counter(o["kind"] for o in after if rv_before.get(
            (o["kind"], o["metadata"]["name"])) != o["metadata"]["resourceVersion"]))
        acct_after = admin.get(crd_path("sesaccounts", name="default"))
        changed = [(objs_before.get((o["kind"], o["metadata"]["name"])), o) for o in after
                   if rv_before.get((o["kind"], o["metadata"]["name"])) != o["metadata"]["resourceVersion"]]
        if acct_after["metadata"]["resourceVersion"] != acct_rv:
            r["rv_changed"]["SesAccount"] = 1
            changed.append((acct_before, acct_after))
        # What changed, for a few of them (status fields, flattened).
        r["changed_examples"] = [{"object": f"{(new.get('kind') or 'SesAccount')}/{new['metadata']['name']}",
                                  "diff": flat_diff(old or {}, new)} for old, new in changed[:8]]
        r["changed_fields"] = dict(Counter(k for old, new in changed for k in flat_diff(old or {}, new)))
        r["policies_ready"] = sum(1 for o in after if o["kind"] == "ReputationPolicy" and is_ready(o))
        r["api"] = api_delta(api0, api1)

        # Phase 3: a spec change (a tag) on every set.
        reset_calls()
        cpu0 = proc_status(fx.pid())["cpu"]
        t0 = time.monotonic()
        r["change_apply_s"] = apply(WORK / "sets-tagged.yaml",
                                    manifests(fx.ns, n, tag=f"run{run}", sets_only=True, policies=POLICIES))
        secs, at = wait_ready(admin, fx.ns, f"steady run {run} tag change", ["configurationsets"], n, n,
                              stalled, t0, timeout)
        r["change_s"] = secs
        r["change_calls"] = aws_calls()["calls"]
        r["cpu_change_s"] = proc_status(fx.pid())["cpu"] - cpu0
        if secs is None:
            r["change_not_ready"] = at["not_ready"]
        r["stalled_seen"] = sorted(stalled)
        st = proc_status(fx.pid())
        r["rss_peak_mib"], r["rss_end_mib"] = st["VmHWM"], st["VmRSS"]
        return r
    finally:
        fx.close()


def scenario_converge_throttled(ctx: dict, scenario: str, run: int, n: int, emu_rps: float) -> dict:
    """N fresh pairs with the emulator's SES bucket at `emu_rps` and the
    operator at its default SES rate (1 call/s)."""
    admin = ctx["admin"]
    timeout = timeout_for(scenario, n)
    fx = Run(ctx, scenario, run, [])
    r = fx.r
    r["timeout_s"] = timeout
    try:
        set_ses_rps(emu_rps)
        reset_calls()
        stalled: set[str] = set()
        t0 = time.monotonic()
        r["apply_s"] = apply(WORK / "objects.yaml", manifests(fx.ns, n))
        log(f"{scenario} run {run}: applied {2 * n} objects in {r['apply_s']:.1f}s; emulator SES at {emu_rps}/s")
        secs, at = wait_ready(admin, fx.ns, f"{scenario} run {run}", ["configurationsets", "eventdestinations"],
                              2 * n, n, stalled, t0, timeout)
        c = aws_calls()
        r["calls"], r["throttled"], r["failed"] = c["calls"], c["throttled"], c["failed"]
        r["ses_ok"], r["ses_all"] = ses_ok(c), ses_all(c)
        r["ready_s"] = secs
        r["elapsed_s"] = time.monotonic() - t0
        if secs is None:
            r["not_ready"] = at["not_ready"]
            r["ready_at_timeout"] = sum(1 for o in list_objects(admin, fx.ns, ["configurationsets",
                                                                               "eventdestinations"]) if is_ready(o))
        else:
            r["sets_ready_s"] = at.get("ConfigurationSet")
            r["dests_ready_s"] = at.get("EventDestination")
        r["stalled_seen"] = sorted(stalled)
        st = proc_status(fx.pid())
        r["rss_peak_mib"], r["rss_end_mib"] = st["VmHWM"], st["VmRSS"]
        return r
    finally:
        fx.close()


def flat(obj: object, prefix: str = "") -> dict[str, object]:
    """Leaves of a JSON object; list items keyed by their `type` (conditions) or index."""
    out: dict[str, object] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flat(v, f"{prefix}.{k}" if prefix else k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            key = v.get("type", i) if isinstance(v, dict) else i
            out.update(flat(v, f"{prefix}[{key}]"))
    else:
        out[prefix] = obj
    return out


def flat_diff(old: dict, new: dict) -> dict[str, list]:
    """Changed leaves of status (and metadata.generation/labels/annotations), old → new."""
    pick = lambda o: {"status": o.get("status"), "generation": o.get("metadata", {}).get("generation"),  # noqa: E731
                      "labels": o.get("metadata", {}).get("labels"),
                      "annotations": o.get("metadata", {}).get("annotations")}
    a, b = flat(pick(old)), flat(pick(new))
    return {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def ready_for(obj: dict, generation: int) -> bool:
    return obj["metadata"].get("generation") == generation and is_ready(obj)


DRIFT_SES = ("sesv2:GetConfigurationSet", "sesv2:GetConfigurationSetEventDestinations")


def op_gauge(text: str, name: str) -> float | None:
    """The first sample of a metric in the operator's /metrics text."""
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m and m.group(1) == name:
            return float(m.group(3))
    return None


def scenario_spec_latency(ctx: dict, run: int, n: int) -> dict:
    admin = ctx["admin"]
    timeout = timeout_for("spec-latency", n)
    fx = Run(ctx, "spec-latency", run, ["--drift-interval-seconds", f"{DRIFT:g}"])
    r = fx.r
    try:
        set_ses_rps(SPEC_RPS)
        reset_calls()
        stalled: set[str] = set()
        t0 = time.monotonic()
        r["apply_s"] = apply(WORK / "objects.yaml", manifests(fx.ns, n))
        secs, at = wait_ready(admin, fx.ns, f"spec-latency run {run} create", ["configurationsets", "eventdestinations"],
                              2 * n, n, stalled, t0, timeout)
        r["ready_s"] = secs
        if secs is None:
            r["not_ready"] = at["not_ready"]
            return r
        # Wait for the drift checks to start (the operator may stretch the
        # drift period so that drift stays within its share of the budget),
        # then measure how full the budget is before the changes.
        reset_calls()
        w0 = time.monotonic()
        while time.monotonic() - w0 < WARM:
            c = aws_calls()["calls"]
            if sum(c.get(k, 0) for k in DRIFT_SES) >= 10:
                break
            time.sleep(2)
        r["drift_started_s"] = time.monotonic() - w0 if sum(
            aws_calls()["calls"].get(k, 0) for k in DRIFT_SES) >= 10 else None
        r["drift_period_s"] = op_gauge(fx.op.metrics(), "ses_reputation_drift_period_seconds")
        log(f"spec-latency run {run}: drift checks "
            + (f"running {r['drift_started_s']:.0f}s after all Ready" if r["drift_started_s"] is not None
               else f"not seen within {WARM:g}s") + f"; operator drift period {r['drift_period_s']}")
        reset_calls()
        time.sleep(3 * DRIFT)
        c = aws_calls()
        r["pre_window_s"] = 3 * DRIFT
        r["pre_calls"], r["pre_throttled"] = c["calls"], c["throttled"]
        r["pre_ses_ok"], r["pre_ses_all"] = ses_ok(c), ses_all(c)

        reset_calls()
        latencies: list[float | None] = []
        w0 = time.monotonic()
        for k in range(CHANGES):
            name = f"cs-{k % n}"
            path = crd_path("configurationsets", fx.ns, name)
            tls = "REQUIRE" if (k // n) % 2 == 0 else "OPTIONAL"
            c0 = time.monotonic()
            obj = admin.patch(path, {"spec": {"delivery": {"tlsPolicy": tls}}})
            gen = obj["metadata"]["generation"]
            while True:
                obj = admin.get(path)
                if ready_for(obj, gen):
                    latencies.append(time.monotonic() - c0)
                    break
                if time.monotonic() - c0 > CHANGE_TIMEOUT:
                    log(f"spec-latency: change {k} on {name} not Ready after {CHANGE_TIMEOUT:g}s: {summary(obj)}")
                    latencies.append(None)
                    break
                time.sleep(0.1)
            log(f"spec-latency run {run}: change {k + 1}/{CHANGES} ({name} tlsPolicy={tls}): "
                f"{latencies[-1] if latencies[-1] is None else round(latencies[-1], 2)}s")
        r["changes_window_s"] = time.monotonic() - w0
        c = aws_calls()
        r["change_calls"], r["change_throttled"] = c["calls"], c["throttled"]
        r["change_ses_ok"], r["change_ses_all"] = ses_ok(c), ses_all(c)
        r["latencies"] = latencies
        r["stalled_seen"] = sorted(stalled)
        st = proc_status(fx.pid())
        r["rss_peak_mib"], r["rss_end_mib"] = st["VmHWM"], st["VmRSS"]
        return r
    finally:
        fx.close()


def scenario_recovery(ctx: dict, run: int, n: int) -> dict:
    admin = ctx["admin"]
    timeout = timeout_for("recovery", n)
    fx = Run(ctx, "recovery", run, [])
    r = fx.r
    try:
        set_ses_rps(RECOVERY_RPS)
        reset_calls()
        stalled: set[str] = set()
        t0 = time.monotonic()
        r["apply_s"] = apply(WORK / "objects.yaml", manifests(fx.ns, n))
        progress: dict = {"ready": 0}
        # Watch progress while throttled, without waiting for all Ready.
        while time.monotonic() - t0 < HOLD:
            objs = list_objects(admin, fx.ns, ["configurationsets", "eventdestinations"])
            progress["ready"] = sum(1 for o in objs if is_ready(o))
            if progress["ready"] == 2 * n:
                break
            time.sleep(min(2.0, max(0.0, HOLD - (time.monotonic() - t0))))
        c = aws_calls()
        set_ses_rps(None)
        lift = time.monotonic()
        r["held_s"] = lift - t0
        r["ready_at_lift"] = progress["ready"]
        r["lift_calls"], r["lift_throttled"] = c["calls"], c["throttled"]
        r["ses_ok_at_lift"], r["ses_all_at_lift"] = ses_ok(c), ses_all(c)
        reset_calls()
        secs, at = wait_ready(admin, fx.ns, f"recovery run {run}", ["configurationsets", "eventdestinations"],
                              2 * n, n, stalled, lift, timeout - HOLD)
        c = aws_calls()
        r["after_calls"], r["after_throttled"] = c["calls"], c["throttled"]
        r["after_ses_ok"] = ses_ok(c)
        r["recovery_s"] = secs
        r["total_s"] = None if secs is None else secs + r["held_s"]
        if secs is None:
            r["not_ready"] = at["not_ready"]
        r["stalled_seen"] = sorted(stalled)
        st = proc_status(fx.pid())
        r["rss_peak_mib"], r["rss_end_mib"] = st["VmHWM"], st["VmRSS"]
        return r
    finally:
        fx.close()


# ---------------------------------------------------------------- report


def med_num(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def med(values: list, digits: int = 1) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "n/a" + (f" ({len(values)} runs failed)" if len(values) > 1 else "")
    fmt = (lambda v: f"{v:.{digits}f}") if any(isinstance(v, float) for v in vals) else (lambda v: f"{v:g}")
    if len(values) == 1:
        return fmt(vals[0])
    spread = f" ({fmt(min(vals))}–{fmt(max(vals))})"
    missing = f", {len(values) - len(vals)} runs failed" if len(vals) < len(values) else ""
    return fmt(statistics.median(vals)) + spread + missing


def calls_table(runs: list[dict], key: str, minimum: dict[str, int], per: int, per_label: str,
                bare: dict[str, int] | None = None) -> list[str]:
    runs = [r for r in runs if key in r]
    seen = set(minimum) | {op for r in runs for op in r[key]}
    head = "| call | design minimum |" + (" bare minimum |" if bare is not None else "") + \
        f" measured | per {per_label} | excess over design |"
    lines = [head, "|---|---:|" + ("---:|" if bare is not None else "") + "---:|---:|---:|"]
    tot_min = tot_bare = tot = 0.0
    for op in sorted(seen - PERIODIC):
        m = minimum.get(op, 0) * per
        b = (bare or {}).get(op, 0) * per
        got = statistics.median(r[key].get(op, 0) for r in runs)
        tot_min, tot_bare, tot = tot_min + m, tot_bare + b, tot + got
        lines.append(f"| `{op}` | {m} |" + (f" {b} |" if bare is not None else "")
                     + f" {got:g} | {got / per:.2f} | {got - m:+g} |")
    lines.append(f"| **total** | **{tot_min:g}** |" + (f" **{tot_bare:g}** |" if bare is not None else "")
                 + f" **{tot:g}** | **{tot / per:.2f}** | **{tot - tot_min:+g}** |")
    for op in sorted(seen & PERIODIC):
        got = statistics.median(r[key].get(op, 0) for r in runs)
        lines.append(f"| `{op}` (periodic, per account) | – |" + (" – |" if bare is not None else "")
                     + f" {got:g} | – | – |")
    return lines


def per_object(c: Counter | dict) -> int:
    return sum(v for k, v in c.items() if k not in PERIODIC)


def machine() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown")
    meminfo = {line.split(":")[0]: int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()}
    commit = sh("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD").strip()
    dirty = sh("git", "-C", str(ROOT), "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock").strip()
    if dirty:
        diff = sh("git", "-C", str(ROOT), "diff", "HEAD", "--", "src", "Cargo.toml", "Cargo.lock")
        untracked = sh("git", "-C", str(ROOT), "ls-files", "--others", "--exclude-standard", "--", "src")
        h = hashlib.sha256(diff.encode())
        for f in untracked.split():
            h.update((ROOT / f).read_bytes())
        commit += (f" + uncommitted changes under src/ (working-tree diff sha256 {h.hexdigest()[:12]}; "
                   "the binary was built from the working tree)")
    built = datetime.datetime.fromtimestamp(BIN.stat().st_mtime, datetime.timezone.utc)
    return {
        "cpu": f"nproc {os.cpu_count()}, {cpu}",
        "mem": f"{meminfo['MemTotal'] / 1048576:.1f} GiB RAM, {meminfo['MemAvailable'] / 1048576:.1f} GiB available at start",
        "kernel": os.uname().release,
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "commit": commit + (f"; **binary not rebuilt** (SKIP_BUILD=1, built {built:%Y-%m-%d %H:%M UTC})"
                            if os.environ.get("SKIP_BUILD") else ""),
    }


def command_line(scenario: str, n: int) -> str:
    """The exact command that reproduces this section."""
    parts = [f"SCENARIO={scenario}", f"N={n}", f"RUNS={RUNS}"]
    per = {"steady": ["SES_RPS", "POLICIES", "SETTLE", "STEADY", "SQS"], "throttled": ["THROTTLED_RPS"],
           "shared": ["SHARED_RPS"], "spec-latency": ["SPEC_RPS", "DRIFT", "CHANGES", "CHANGE_TIMEOUT", "WARM"],
           "recovery": ["RECOVERY_RPS", "HOLD"]}[scenario] + ["TIMEOUT"]
    parts += [f"{k}={given(k)}" for k in per if given(k)]
    return "make bench-scale " + " ".join(parts)


def header(scenario: str, n: int, title: str, mach: dict, started: str, runs: list[dict], extra: list[str]) -> list[str]:
    key = f"scenario={scenario} N={n}" + (" SQS=1" if scenario == "steady" and SQS else "")
    flags = runs[0].get("operator_flags", "?") if runs else "?"
    return [
        f"<!-- bench-scale {key} start -->",
        f"### {title}",
        "",
        f"- command: `{command_line(scenario, n)}`",
        f"- date: {started}; runs: {len(runs)}" + (" (median, min–max)" if len(runs) > 1 else ""),
        f"- machine: {mach['cpu']}; {mach['mem']}; kernel {mach['kernel']}; "
        f"load average at start {mach['load']} (shared machine)",
        f"- git: {mach['commit']}",
        f"- operator: {'release build' if BIN.parent.name == 'release' else f'`{BIN}`'}, own ServiceAccount, "
        "leader election on, `RUST_LOG=warn`, "
        + (f"flags `{flags}`, the others" if flags else "every flag") + f" at the default ({OP_DEFAULTS})",
        *extra,
        "",
    ]


def footer(scenario: str, n: int) -> str:
    return f"<!-- bench-scale scenario={scenario} N={n}" + (" SQS=1" if scenario == "steady" and SQS else "") + " end -->"


def common_notes(runs: list[dict]) -> list[str]:
    stalled = sorted({s for r in runs for s in r.get("stalled_seen", [])})
    warns = [w for r in runs for w in r.get("operator_warnings", [])]
    lines = [f"- Stalled conditions seen: {len(stalled)}" + (": " + "; ".join(stalled[:5]) if stalled else "."),
             f"- Operator WARN/ERROR log lines: {len(warns)}" + (f", first: `{warns[0][:300]}`" if warns else ".")]
    exits = [r.get("operator_exit") for r in runs if r.get("operator_exit") not in (0, None)]
    if exits:
        lines.append(f"- Operator exit codes other than 0 after SIGTERM: {exits}.")
    return lines


def api_rows(runs: list[dict]) -> tuple[list[str], dict]:
    """Operator requests by verb+resource (APF) beside all clients
    (apiserver_request_total) over the steady window, per minute (medians)."""
    ok = [r for r in runs if "api" in r]
    if not ok:
        return ["(no steady window: the run did not converge)"], {}
    per_min = lambda r, v: v * 60 / r["steady_window_s"]  # noqa: E731
    op_rows: dict[str, list[float]] = {}
    for r in ok:
        for fs, v in r["api"]["operator"].items():
            op_rows.setdefault(FLOW_SCHEMAS.get(fs, fs), []).append(per_min(r, v))
    all_rows: dict[str, list[float]] = {}
    for r in ok:
        for k, v in r["api"]["all"].items():
            all_rows.setdefault(k, []).append(per_min(r, v))
    def m(vals: list[float]) -> float:  # noqa: E306
        return statistics.median(vals + [0.0] * (len(ok) - len(vals)))
    lines = ["| operator request (verb resource) | per minute | count in window |", "|---|---:|---:|"]
    total = 0.0
    for k in sorted(op_rows, key=lambda k: -m(op_rows[k])):
        total += m(op_rows[k])
        cnt = statistics.median(sum(v for fs, v in r["api"]["operator"].items() if FLOW_SCHEMAS.get(fs, fs) == k)
                                for r in ok)
        lines.append(f"| `{k}` | {m(op_rows[k]):.1f} | {cnt:g} |")
    if not op_rows:
        lines.append("| (none) | 0 | 0 |")
    lines.append(f"| **total** | **{total:.1f}** ({total / 60:.2f}/s) | |")
    lines += ["", "All clients over the same window (`apiserver_request_total` delta; the benchmark sent nothing "
              "but the two `/metrics` reads, so this is the operator plus the apiserver's own loopback traffic):", "",
              "| verb resource | per minute |", "|---|---:|"]
    all_total = 0.0
    for k in sorted(all_rows, key=lambda k: -m(all_rows[k])):
        all_total += m(all_rows[k])
        lines.append(f"| `{k}` | {m(all_rows[k]):.1f} |")
    lines.append(f"| **total** | **{all_total:.1f}** |")
    status_writes = [sum(per_min(r, v) for fs, v in r["api"]["operator"].items()
                         if fs.split(".")[1] in ("patch", "update") and "status" in FLOW_SCHEMAS.get(fs, ""))
                     for r in ok]
    return lines, {"total_per_min": total, "status_writes_per_min": statistics.median(status_writes)}


def report_steady(n: int, runs: list[dict], mach: dict, started: str) -> str:
    col = lambda k: [r.get(k) for r in runs]  # noqa: E731
    sub = "one SQS subscription each (shared queue)" if SQS else "no subscriptions"
    ok = [r for r in runs if r.get("ready_s") is not None]
    ids = identities_for(n)
    api_lines, api = api_rows(runs)
    ses_floor = n * SES_DESIGN_PER_PAIR
    rv = Counter()
    for r in ok:
        rv.update(r.get("rv_changed", {}))
    out = header("steady", n, f"Steady: N = {n} sets + {n} destinations ({sub}) + {POLICIES} ReputationPolicies"
                 + (f" + {ids} EmailIdentities" if ids else ""),
                 mach, started, runs, [f"- emulator unthrottled; settle {SETTLE:g} s after all Ready, then a "
                                       f"{STEADY:g} s steady window"])
    out += [
        "| measure | value |",
        "|---|---:|",
        f"| `kubectl apply --server-side` of {2 * n + POLICIES} objects, alone (s) | {med(col('apply_s'))} |",
        f"| start of apply → all {n} sets Ready (s) | {med(col('sets_ready_s'))} |",
        f"| start of apply → all {n} destinations Ready (s) | {med(col('dests_ready_s'))} |",
        f"| **start of apply → all {2 * n} objects Ready (s)** | **{med(col('ready_s'))}** |",
        f"| objects Ready per second | {med([2 * n / r['ready_s'] if r.get('ready_s') else None for r in runs])} |",
        f"| operator CPU during convergence (s) | {med(col('cpu_converge_s'))} |",
        f"| AWS calls to converge, per pair (design minimum {sum(MIN_PER_PAIR.values())}, bare minimum "
        f"{sum(BARE_PER_PAIR.values())}) | {med([per_object(r['converge_calls']) / n for r in ok], 2)} |",
        f"| **AWS calls to converge ÷ bare minimum** | "
        f"**{med([per_object(r['converge_calls']) / n / sum(BARE_PER_PAIR.values()) for r in ok], 2)}** |",
        f"| ReputationPolicies Ready at the end of the window | {med(col('policies_ready'))} of {POLICIES} |",
        *([f"| start of identities apply → all {ids} EmailIdentities Ready, verification included (s) | "
           f"{med(col('identities_ready_s'))} |",
           f"| AWS calls per EmailIdentity to converge (design minimum {sum(MIN_PER_IDENTITY.values())}) | "
           f"{med([per_object(r['identity_calls']) / ids for r in ok if r.get('identity_calls')], 2)} |"]
          if ids else []),
        f"| **peak RSS, VmHWM, after create + steady window (MiB)** | **{med(col('rss_peak_steady_mib'))}** |",
        f"| RSS right after convergence (MiB) | {med(col('rss_converged_mib'))} |",
        f"| **steady RSS, end of the steady window (MiB)** | **{med(col('rss_steady_mib'))}** |",
        f"| **operator API requests per minute, steady** | **{api.get('total_per_min', float('nan')):.1f}** |",
        f"| **status writes per minute, steady** (PATCH/PUT on `*/status` by the operator) | "
        f"**{api.get('status_writes_per_min', float('nan')):.1f}** |",
        f"| objects whose resourceVersion changed in the window | {dict(rv) or 0} |",
        *([f"| fields that changed on them (run 1; count of objects) | "
           + ", ".join(f"`{k}` {v}" for k, v in sorted(ok[0]["changed_fields"].items())[:12]) + " |"]
          if ok and ok[0].get("changed_fields") else []),
        f"| AWS calls in the steady window | {med([sum(r['steady_calls'].values()) for r in ok])}"
        + (f" (run 1: {', '.join(f'`{k}` {v}' for k, v in sorted(ok[0]['steady_calls'].items()))})"
           if ok and ok[0]['steady_calls'] else "") + " |",
        f"| operator CPU in the steady window (s) | {med(col('cpu_steady_s'), 2)} |",
        f"| `kubectl apply` of a tag on {n} sets, alone (s) | {med(col('change_apply_s'))} |",
        f"| start of that apply → all {n} sets Ready (s) | {med(col('change_s'))} |",
        f"| AWS calls for the tag change, per set (minimum 2) | {med([per_object(r['change_calls']) / n for r in ok if 'change_calls' in r], 2)} |",
        f"| operator CPU for the tag change (s) | {med(col('cpu_change_s'))} |",
        f"| peak RSS, VmHWM, at the end (incl. tag change) (MiB) | {med(col('rss_peak_mib'))} |",
        f"| operator startup → SesAccount Ready (s) | {med(col('startup_s'))} |",
        "",
        f"Operator API requests in the steady window (median per minute over runs; window "
        f"{med(col('steady_window_s'))} s):",
        "",
        *api_lines,
        "",
        f"AWS calls to converge ({n} fresh pairs; per pair = per set + its destination):",
        "",
        *(calls_table(ok, "converge_calls", MIN_PER_PAIR, n, "pair", BARE_PER_PAIR) if ok else ["n/a"]),
        "",
        *([f"AWS calls for {ids} EmailIdentities (domain, MAIL FROM, default set; verified by the emulator):",
           "",
           *(calls_table([r for r in ok if r.get("identity_calls")], "identity_calls", MIN_PER_IDENTITY, ids,
                         "identity") if any(r.get("identity_calls") for r in ok) else ["n/a"]),
           ""] if ids else []),
        f"AWS calls for the tag change on {n} sets:",
        "",
        *(calls_table(ok, "change_calls", MIN_PER_TAG_CHANGE, n, "set") if ok else ["n/a"]),
        "",
        "Notes:",
        "",
    ]
    for r in runs:
        if r.get("ready_s") is None:
            out.append(f"- run {r['run']}: **did not converge within {timeout_for('steady', n):g} s**; not Ready: "
                       + "; ".join(r.get("not_ready", [])[:5]))
    out += flags_steady(n, runs, api)
    out.append(f"- With SES's real 1 call/s, the {SES_DESIGN_PER_PAIR} SES calls per pair alone take at least "
               + (f"{ses_floor / 60:.0f} min" if ses_floor >= 120 else f"{ses_floor} s") + " for this N; this scenario measures the operator, not SES's limit "
               "(see the throttled scenario).")
    ready = med_num([r.get("ready_s") for r in runs]) or 0.0
    # Objects converge over [0, ready] s and are drift-checked 300 s later; the window is
    # [ready + SETTLE, ready + SETTLE + STEADY].
    if ready + SETTLE + STEADY <= 300:
        out.append("- The steady window ends before the first drift check (300 s after each object converged), so "
                   "it holds no drift traffic; a longer `STEADY` would include one round.")
    elif ready + SETTLE <= 300 and SETTLE + STEADY >= 300:
        out.append(f"- The {STEADY:g} s window covers the whole first drift round (each object is checked 300 s "
                   "after it converged), so its figures include the drift checks' API requests and AWS calls.")
    else:
        out.append(f"- The {STEADY:g} s window overlaps the first drift round (objects converged over {ready:.0f} s, "
                   "each is checked 300 s after it converged), so it includes part of the drift traffic.")
    out += common_notes(runs)
    out.append(footer("steady", n))
    return "\n".join(out) + "\n"


def flags_steady(n: int, runs: list[dict], api: dict) -> list[str]:
    out = []
    steady, peak = med_num([r.get("rss_steady_mib") for r in runs]), med_num([r.get("rss_peak_steady_mib") for r in runs])
    if n == 1000 and steady is not None:
        out.append(f"- Memory budget (DESIGN.md: 40 MiB steady at 1,000 pairs; 64 MiB peak): steady {steady:.1f} MiB "
                   + ("**over**" if steady > 40 else "within") + f", peak {peak:.1f} MiB "
                   + ("**over**" if peak > 64 else "within") + ".")
    elif steady is not None:
        out.append(f"- Memory: steady {steady:.1f} MiB, peak {peak:.1f} MiB ({steady / n * 1000:.1f} MiB steady per "
                   "1,000 pairs; DESIGN.md's budget, 40 MiB steady / 64 MiB peak, is stated for 1,000 pairs).")
    if api:
        t = api["total_per_min"]
        out.append(f"- API requests in steady state: {t:.1f}/min ({t / 60:.2f}/s): "
                   + ("**more than 1 request/s**." if t > 60 else "under 1 request/s."))
        sw = api["status_writes_per_min"]
        out.append(f"- Status writes in steady state: {sw:.1f}/min" + (" (**expected 0**)." if sw else " (none)."))
    return out


def report_converge(scenario: str, n: int, runs: list[dict], mach: dict, started: str, emu_rps: float) -> str:
    col = lambda k: [r.get(k) for r in runs]  # noqa: E731
    bare_floor = SES_BARE_PER_PAIR * n / 1.0  # 2 x N seconds at SES's 1 call/s
    bare_emu = SES_BARE_PER_PAIR * n / emu_rps
    ok = [r for r in runs if r.get("ready_s") is not None]
    title = {"throttled": f"Throttled: N = {n} pairs, emulator SES at {emu_rps:g} call/s, operator at its default 1",
             "shared": f"Shared budget: N = {n} pairs, emulator SES at {emu_rps:g} call/s, operator configured at 1"}
    out = header(scenario, n, title[scenario], mach, started, runs,
                 [f"- emulator: `POST /_emulator/faults {{\"ses_rps\": {emu_rps:g}}}` before the apply (burst 1, "
                  "429 TooManyRequestsException beyond it); timeout "
                  f"{timeout_for(scenario, n):g} s"])
    out += [
        "| measure | value |",
        "|---|---:|",
        f"| converged (runs) | {len(ok)} of {len(runs)} |",
        f"| `kubectl apply` of {2 * n} objects, alone (s) | {med(col('apply_s'))} |",
        f"| start of apply → all {n} sets Ready (s) | {med(col('sets_ready_s'))} |",
        f"| **start of apply → all {2 * n} objects Ready (s)** | **{med(col('ready_s'))}** |",
        f"| **÷ bare floor 2 × N s = {bare_floor:g} s** (2 SES creates per pair at 1 call/s) | "
        f"**{med([r['ready_s'] / bare_floor if r.get('ready_s') else None for r in runs], 2)}** |",
    ]
    if emu_rps != 1:
        out.append(f"| ÷ bare floor at the emulator's {emu_rps:g} call/s = {bare_emu:g} s | "
                   f"{med([r['ready_s'] / bare_emu if r.get('ready_s') else None for r in runs], 2)} |")
    out += [
        f"| SES calls accepted per pair (bare minimum {SES_BARE_PER_PAIR}, documented design minimum "
        f"{SES_DESIGN_PER_PAIR}) | {med([r['ses_ok'] / n for r in runs], 2)} |",
        f"| SES calls refused with 429 | {med([sum(r['throttled'].values()) for r in runs])} |",
        f"| SES calls sent per second | {med([r['ses_all'] / r['elapsed_s'] for r in runs], 2)} |",
        f"| SES calls accepted per second (emulator allows {emu_rps:g}) | "
        f"{med([r['ses_ok'] / r['elapsed_s'] for r in runs], 2)} |",
        f"| non-SES AWS calls per pair (bare minimum "
        f"{sum(v for k, v in BARE_PER_PAIR.items() if not k.startswith('sesv2:'))}) | "
        f"{med([sum(v for k, v in r['calls'].items() if not k.startswith('sesv2:') and k not in PERIODIC) / n for r in runs], 2)} |",
        f"| objects Ready at timeout (non-converged runs) | {med([r.get('ready_at_timeout') for r in runs if r.get('ready_s') is None]) if len(ok) < len(runs) else '–'} |",
        f"| peak RSS, VmHWM (MiB) | {med(col('rss_peak_mib'))} |",
        "",
        "SES calls by operation (median over runs; accepted = sent − 429):",
        "",
        "| call | sent | 429 | accepted | bare minimum |",
        "|---|---:|---:|---:|---:|",
    ]
    ops = sorted({k for r in runs for k in r["calls"] if k.startswith("sesv2:")})
    for op in ops:
        sent = statistics.median(r["calls"].get(op, 0) for r in runs)
        thr = statistics.median(r["throttled"].get(op, 0) for r in runs)
        out.append(f"| `{op}` | {sent:g} | {thr:g} | {sent - thr:g} | {BARE_PER_PAIR.get(op, 0) * n} |")
    out += ["", "Notes:", ""]
    for r in runs:
        if r.get("ready_s") is None:
            out.append(f"- run {r['run']}: **did not converge within {r['timeout_s']:g} s** "
                       f"({r.get('ready_at_timeout')} of {2 * n} Ready); e.g. " + "; ".join(r.get("not_ready", [])[:3]))
    out += common_notes(runs)
    out.append(footer(scenario, n))
    return "\n".join(out) + "\n"


def pct(vals: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(vals)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def report_spec_latency(n: int, runs: list[dict], mach: dict, started: str) -> str:
    ok = [r for r in runs if r.get("latencies")]
    out = header("spec-latency", n,
                 f"Spec-change latency under saturating drift: N = {n} pairs, emulator SES at {SPEC_RPS:g} call/s, "
                 f"`--drift-interval-seconds {DRIFT:g}`", mach, started, runs,
                 [f"- after all Ready, a wait (at most `WARM`={WARM:g} s) until drift checks are under way, "
                  f"{3 * DRIFT:g} s to measure the SES rate they use, then {CHANGES} "
                  "changes one at a time, each toggling `spec.delivery.tlsPolicy` (REQUIRE/OPTIONAL) on a different "
                  "set with a merge patch; latency = patch sent → that set Ready for its new generation "
                  "(polled every 0.1 s)"])
    p = lambda f: [f([x for x in r["latencies"] if x is not None]) if any(  # noqa: E731
        x is not None for x in r["latencies"]) else None for r in ok]
    out += [
        "| measure | value |",
        "|---|---:|",
        f"| start of apply → all {2 * n} objects Ready, with drift running (s) | {med([r.get('ready_s') for r in runs])} |",
        f"| all Ready → drift checks under way (s) | {med([r.get('drift_started_s') for r in ok])} |",
        f"| operator's effective drift period then (`ses_reputation_drift_period_seconds`, s) | "
        f"{med([r.get('drift_period_s') for r in ok])} |",
        f"| changes Ready / made | {med([sum(x is not None for x in r['latencies']) for r in ok])} of {CHANGES} |",
        f"| **latency p50 (s)** | **{med(p(lambda v: pct(v, 0.5)), 2)}** |",
        f"| **latency p95 (s)** | **{med(p(lambda v: pct(v, 0.95)), 2)}** |",
        f"| latency min / max (s) | {med(p(min), 2)} / {med(p(max), 2)} |",
        f"| SES calls accepted per second before the changes (drift alone; emulator allows {SPEC_RPS:g}) | "
        f"{med([r['pre_ses_ok'] / r['pre_window_s'] for r in ok], 2)} |",
        f"| SES calls sent per second before the changes (429s included) | "
        f"{med([r['pre_ses_all'] / r['pre_window_s'] for r in ok], 2)} |",
        f"| SES calls accepted per second during the changes | "
        f"{med([r['change_ses_ok'] / r['changes_window_s'] for r in ok], 2)} |",
        f"| peak RSS, VmHWM (MiB) | {med([r.get('rss_peak_mib') for r in runs])} |",
        "",
        "SES calls before the changes (drift only) and during them (median counts):",
        "",
        "| call | before: sent | before: 429 | during: sent | during: 429 |",
        "|---|---:|---:|---:|---:|",
    ]
    ops = sorted({k for r in ok for k in list(r["pre_calls"]) + list(r["change_calls"]) if k.startswith("sesv2:")})
    for op in ops:
        m = lambda key: statistics.median(r[key].get(op, 0) for r in ok)  # noqa: E731
        out.append(f"| `{op}` | {m('pre_calls'):g} | {m('pre_throttled'):g} | {m('change_calls'):g} | "
                   f"{m('change_throttled'):g} |")
    if ok:
        out += ["", "Latencies of run 1 (s): " + ", ".join("timeout" if x is None else f"{x:.2f}"
                                                         for x in ok[0]["latencies"])]
    out += ["", "Notes:", ""]
    for r in runs:
        if r.get("ready_s") is None:
            out.append(f"- run {r['run']}: **the {2 * n} objects did not converge**; " + "; ".join(r.get("not_ready", [])[:3]))
    out.append("- A change needs 2 SES calls (GetConfigurationSet + PutConfigurationSetDeliveryOptions); at 1 call/s "
               "with an idle budget that is about 2 s. Before the changes only drift checks (and the account's "
               "periodic GetAccount) use SES: with saturated drift, their accepted rate sits at the share of the "
               "budget drift may use" + (f" (`--drift-budget-share`, default {DRIFT_SHARE})" if DRIFT_SHARE else "")
               + f" × {SPEC_RPS:g} call/s.")
    out += common_notes(runs)
    out.append(footer("spec-latency", n))
    return "\n".join(out) + "\n"


def report_recovery(n: int, runs: list[dict], mach: dict, started: str) -> str:
    col = lambda k: [r.get(k) for r in runs]  # noqa: E731
    floors = [max(0, SES_BARE_PER_PAIR * n - r["ses_ok_at_lift"]) for r in runs]
    out = header("recovery", n, f"Recovery: N = {n} pairs created under {RECOVERY_RPS:g} SES call/s for "
                 f"{HOLD:g} s, then throttling lifted", mach, started, runs,
                 [f"- emulator `ses_rps` {RECOVERY_RPS:g} from before the apply until {HOLD:g} s after its start, "
                  "then `null` (unthrottled); the operator stays at its default 1 call/s, so after the lift its own "
                  "bucket is the limit"])
    out += [
        "| measure | value |",
        "|---|---:|",
        f"| objects Ready when throttling ended | {med(col('ready_at_lift'))} of {2 * n} |",
        f"| SES calls accepted / refused (429) while throttled | {med(col('ses_ok_at_lift'))} / "
        f"{med([sum(r['lift_throttled'].values()) for r in runs])} |",
        f"| **end of throttling → all Ready (s)** | **{med(col('recovery_s'))}** |",
        f"| bare floor after the lift: SES creates left ({SES_BARE_PER_PAIR} per pair − calls accepted while "
        f"throttled) at the operator's 1 call/s (s) | {med(floors)} |",
        f"| **ratio to that floor** | **{med([r['recovery_s'] / f if r.get('recovery_s') and f else None for r, f in zip(runs, floors)], 2)}** |",
        f"| ratio to the SES calls made after the lift, at 1 call/s | "
        f"{med([r['recovery_s'] / r['after_ses_ok'] if r.get('recovery_s') and r.get('after_ses_ok') else None for r in runs], 2)} |",
        f"| start of apply → all Ready (s) | {med(col('total_s'))} |",
        f"| SES calls after the lift (all accepted unless 429 > 0) / 429s | {med(col('after_ses_ok'))} / "
        f"{med([sum(r['after_throttled'].values()) for r in runs])} |",
        f"| peak RSS, VmHWM (MiB) | {med(col('rss_peak_mib'))} |",
        "",
        "Notes:",
        "",
    ]
    for r in runs:
        if r.get("recovery_s") is None:
            out.append(f"- run {r['run']}: **not all Ready within {timeout_for('recovery', n) - HOLD:g} s of the lift**; "
                       + "; ".join(r.get("not_ready", [])[:3]))
    out += common_notes(runs)
    out.append(footer("recovery", n))
    return "\n".join(out) + "\n"


def update_doc(section: str, start: str, end: str) -> None:
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + section.rstrip("\n") + rest.split(end, 1)[1]
    else:
        anchor = "<!-- bench-scale results end -->"
        if anchor in text:  # a new section goes last among the current results
            head, rest = text.split(anchor, 1)
            text = head.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n\n" + anchor + rest
        else:
            text = text.rstrip("\n") + "\n\n" + section
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text)


def operator_defaults() -> tuple[str, str | None]:
    """The defaults of the flags that shape a reading, from `run --help`."""
    try:
        text = " ".join(sh(str(BIN), "run", "--help").split())
    except RuntimeError:
        return "?", None
    found = {}
    for flag in ("ses-calls-per-second", "drift-interval-seconds", "drift-budget-share", "rate-interval-seconds",
                 "max-concurrent-reconciles"):
        m = re.search(rf"--{flag} <[^>]*>.*?\[default: ([^\]]+)\]", text)
        if m:
            found[flag] = m.group(1)
    return ", ".join(f"`--{k}` {v}" for k, v in found.items()), found.get("drift-budget-share")


def render(scenario: str, n: int, runs: list[dict], mach: dict, started: str) -> str:
    if scenario == "steady":
        return report_steady(n, runs, mach, started)
    if scenario in ("throttled", "shared"):
        return report_converge(scenario, n, runs, mach, started,
                               THROTTLED_RPS if scenario == "throttled" else SHARED_RPS)
    if scenario == "spec-latency":
        return report_spec_latency(n, runs, mach, started)
    return report_recovery(n, runs, mach, started)


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    wanted = (given("SCENARIO") or "steady").replace(" ", "").split(",")
    scenarios = SCENARIOS if "all" in wanted else wanted
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        log(f"unknown SCENARIO {unknown}; one of {SCENARIOS} or all")
        return 2
    global OP_DEFAULTS, DRIFT_SHARE
    OP_DEFAULTS, DRIFT_SHARE = operator_defaults()
    mach = machine()
    if os.environ.get("REPORT_FROM"):  # re-render sections from a previous run's raw JSON, no ground needed
        src = Path(os.environ["REPORT_FROM"])
        FLOW_SCHEMAS.update(json.loads((src / "flow-schemas.json").read_text()))
        for scenario in scenarios:
            runs = [json.loads(f.read_text()) for f in sorted(src.glob(f"{scenario}-run-*.json"))]
            for r in runs:  # recount from the logs (older runs missed coloured WARN lines)
                log_path = src / f"operator-{scenario}-{r['run']}.log"
                if log_path.exists():
                    r["operator_warnings"] = log_warnings(log_path)
            if runs:
                n = int(given("N") or runs[0].get("n") or DEFAULT_N[scenario])
                section = render(scenario, n, runs, runs[0].get("machine", mach), runs[0].get("started", "?"))
                print(section)
                key = f"scenario={scenario} N={n}" + (" SQS=1" if scenario == "steady" and SQS else "")
                update_doc(section, f"<!-- bench-scale {key} start -->", f"<!-- bench-scale {key} end -->")
        return 0
    kubectl("apply", "--server-side", "-f", "-", stdin=sh(str(BIN), "crds"))
    kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    admin = Kube(os.environ["KUBECONFIG"])
    ctx = {"admin": admin, "kubeconfig": setup_operator_identity(admin)}
    (WORK / "flow-schemas.json").write_text(json.dumps(FLOW_SCHEMAS, indent=1))
    failed = False
    for scenario in scenarios:
        n = n_for(scenario)
        started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        mach["load"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        runs = []
        for run in range(1, RUNS + 1):
            log(f"{scenario} run {run}/{RUNS}: N={n}")
            if scenario == "steady":
                r = scenario_steady(ctx, run, n)
                ok = r.get("ready_s") is not None and r.get("change_s") is not None
            elif scenario in ("throttled", "shared"):
                r = scenario_converge_throttled(ctx, scenario, run, n,
                                                THROTTLED_RPS if scenario == "throttled" else SHARED_RPS)
                ok = r.get("ready_s") is not None
            elif scenario == "spec-latency":
                r = scenario_spec_latency(ctx, run, n)
                ok = r.get("ready_s") is not None and None not in r.get("latencies", [None])
            else:
                r = scenario_recovery(ctx, run, n)
                ok = r.get("recovery_s") is not None
            failed |= not ok
            r["started"], r["machine"], r["n"] = started, dict(mach), n
            (WORK / f"{scenario}-run-{run}.json").write_text(json.dumps(r, indent=1, default=str))
            log(f"{scenario} run {run}: {'ok' if ok else 'FAILED'}; raw: {WORK}/{scenario}-run-{run}.json")
            runs.append(r)
        section = render(scenario, n, runs, mach, started)
        print(section, flush=True)
        key = f"scenario={scenario} N={n}" + (" SQS=1" if scenario == "steady" and SQS else "")
        update_doc(section, f"<!-- bench-scale {key} start -->", f"<!-- bench-scale {key} end -->")
        log(f"wrote {DOC} ({scenario}); raw results and operator logs in {WORK}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
