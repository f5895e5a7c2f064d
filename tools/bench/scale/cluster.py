"""The Kubernetes side: subprocess and kubectl helpers, a minimal keep-alive
API client, and readiness polling of the operator's custom resources."""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlparse

import yaml  # in the emulator's venv (moto needs it)

GROUP, VERSION = "ses.reputation.io", "v1alpha1"
API = f"{GROUP}/{VERSION}"
AGENT = "sro-bench/scale"


def log(msg: str) -> None:
    print(f">> {msg}", file=sys.stderr, flush=True)


def sh(*args: str, stdin: str | None = None) -> str:
    res = subprocess.run(args, input=stdin, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {res.stderr.strip()}")
    return res.stdout


def kubectl(*args: str, stdin: str | None = None) -> str:
    return sh("kubectl", *args, stdin=stdin)


def apply(path: Path, text: str) -> float:
    """Writes `text` to `path` and server-side applies it; returns the seconds it took."""
    path.write_text(text)
    start = time.monotonic()
    kubectl("apply", "--server-side", "--field-manager", "bench", "-f", str(path))
    return time.monotonic() - start


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


ACCOUNT_PATH = crd_path("sesaccounts", name="default")


def is_ready(obj: dict) -> bool:
    gen = obj["metadata"].get("generation")
    status = obj.get("status") or {}
    for c in status.get("conditions") or []:
        if c["type"] == "Ready":
            return (c["status"] == "True" and c.get("observedGeneration", gen) == gen
                    and status.get("observedGeneration", gen) == gen)
    return False


def ready_for(obj: dict, generation: int) -> bool:
    return obj["metadata"].get("generation") == generation and is_ready(obj)


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


@dataclass(frozen=True)
class Readiness:
    """How a wait for readiness ended: `seconds` since its start when all
    were Ready (None after the timeout), when each kind was all Ready, and
    the summaries of the objects still not Ready at the timeout."""
    seconds: float | None
    all_ready_at: Mapping[str, float] = field(default_factory=dict)
    not_ready: list[str] = field(default_factory=list)


def wait_ready(kube: Kube, ns: str, what: str, plurals: list[str], expect: int, n: int, stalled: set[str],
               start: float, timeout: float) -> Readiness:
    """Polls until `expect` objects of `plurals` are Ready for their generation
    or `timeout` (seconds since `start`, monotonic) has passed; adds the
    Stalled objects it sees to `stalled`."""
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
        for kind, count in by_kind.items():
            if count == n and kind not in all_ready_at:
                all_ready_at[kind] = now
        if len(items) == expect and not not_ready:
            return Readiness(now, all_ready_at)
        if now > timeout:
            log(f"{what}: TIMEOUT after {now:.0f}s; {len(not_ready)} not Ready, e.g.:")
            for obj in not_ready[:10]:
                log("  " + summary(obj))
            return Readiness(None, not_ready=[summary(o) for o in not_ready])
        if time.monotonic() - last_log > 15:
            log(f"{what}: {now:.0f}s, Ready {dict(by_kind)} of {len(items)}")
            last_log = time.monotonic()
        time.sleep(interval)


def count_ready(kube: Kube, ns: str, plurals: list[str]) -> int:
    return sum(1 for o in list_objects(kube, ns, plurals) if is_ready(o))


def remove_account(admin: Kube) -> None:
    """Deletes the SesAccount and waits until it is gone. No operator runs
    here, so nothing would remove its finalizer: the benchmark does (the
    emulator is reset anyway, there is nothing to clean up in AWS)."""
    path = ACCOUNT_PATH
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
