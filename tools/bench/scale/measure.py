"""What is measured and how: the operator process's RSS and CPU (/proc),
AWS call counts (the emulator's counters), API-server request counts
(Prometheus text of /metrics, by APF FlowSchema), the operator's own
gauges and log warnings, object diffs, and the machine it all ran on."""

from __future__ import annotations

import datetime
import hashlib
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from .cluster import sh

if TYPE_CHECKING:
    from .cluster import Kube
    from .config import Settings

# Per account and interval, not per object: listed apart from the per-object totals.
PERIODIC = {"sts:GetCallerIdentity", "sesv2:GetAccount", "cloudwatch:GetMetricData"}
SENDING = {"sesv2:SendEmail", "sesv2:SendRawEmail", "sesv2:SendBulkEmail"}
# The FlowSchemas that count the operator's API requests are named with it.
FS_PREFIX = "sro-op."


# ---------------------------------------------------------------- the process


@dataclass(frozen=True)
class ProcStatus:
    """CPU seconds (user+system) and, unless the process is gone, VmHWM /
    VmRSS in MiB."""
    cpu: float
    vm_hwm: float | None = None
    vm_rss: float | None = None

    @property
    def hwm(self) -> float:
        if self.vm_hwm is None:
            raise KeyError("VmHWM")
        return self.vm_hwm

    @property
    def rss(self) -> float:
        if self.vm_rss is None:
            raise KeyError("VmRSS")
        return self.vm_rss


def proc_status(pid: int) -> ProcStatus:
    mem: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            mem[key] = int(value.split()[0]) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return ProcStatus(cpu=cpu, vm_hwm=mem.get("VmHWM"), vm_rss=mem.get("VmRSS"))


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def log_warnings(path: Path) -> list[str]:
    """WARN/ERROR lines of an operator log, colour codes removed."""
    lines = (ANSI.sub("", line) for line in path.read_text(errors="replace").splitlines())
    return [line for line in lines if " WARN " in line or " ERROR " in line]


# ---------------------------------------------------------------- AWS calls


@dataclass(frozen=True)
class AwsCalls:
    """AWS calls since the emulator's last reset, by service:Operation: all
    (throttled and failed included), throttled (429) and failed (injected 5xx)."""
    calls: Counter = field(default_factory=Counter)
    throttled: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)

    @classmethod
    def from_emulator(cls, got: dict) -> AwsCalls:
        return cls(calls=Counter(got.get("calls") or {}), throttled=Counter(got.get("throttled") or {}),
                   failed=Counter(got.get("failed") or {}))

    def ses_ok(self) -> int:
        """SES control-plane calls the emulator accepted (not throttled, not failed)."""
        return sum(v - self.throttled.get(k, 0) - self.failed.get(k, 0)
                   for k, v in self.calls.items() if k.startswith("sesv2:") and k not in SENDING)

    def ses_all(self) -> int:
        return sum(v for k, v in self.calls.items() if k.startswith("sesv2:") and k not in SENDING)


def per_object(c: Mapping[str, float]) -> int:
    """Calls not counted as periodic (per account) ones."""
    return sum(v for k, v in c.items() if k not in PERIODIC)


# ---------------------------------------------------------------- metrics

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float


def parse_metrics(text: str, names: set[str]) -> list[Sample]:
    """The samples of the metrics `names` in Prometheus text."""
    out = []
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m and m.group(1) in names:
            out.append(Sample(m.group(1), dict(LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return out


def op_gauge(text: str, name: str) -> float | None:
    """The first sample of a metric in the operator's /metrics text."""
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m and m.group(1) == name:
            return float(m.group(3))
    return None


@dataclass(frozen=True)
class ApiSnapshot:
    """apiserver_request_total by (VERB, resource[/subresource]) over all
    clients, and the operator's APF dispatches by FlowSchema name."""
    requests: Counter
    operator: Counter

    @classmethod
    def parse(cls, text: str) -> ApiSnapshot:
        requests: Counter = Counter()
        operator: Counter = Counter()
        for s in parse_metrics(text, {"apiserver_request_total", "apiserver_flowcontrol_dispatched_requests_total"}):
            if s.name == "apiserver_request_total":
                res, sub = s.labels.get("resource", ""), s.labels.get("subresource", "")
                res = (f"{res}/{sub}" if sub else res) if res else f"(non-resource {sub or '?'})"
                requests[(s.labels.get("verb", ""), res)] += s.value
            elif s.labels.get("flow_schema", "").startswith(FS_PREFIX):
                operator[s.labels["flow_schema"]] += s.value
        return cls(requests, operator)


def api_snapshot(kube: Kube) -> ApiSnapshot:
    return ApiSnapshot.parse(kube.request("GET", "/metrics").decode())


@dataclass(frozen=True)
class ApiDelta:
    """Requests between two snapshots (zero rows left out): all clients by
    "VERB resource", the operator's by FlowSchema name."""
    all: Mapping[str, float]
    operator: Mapping[str, float]

    @classmethod
    def between(cls, before: ApiSnapshot, after: ApiSnapshot) -> ApiDelta:
        d_all = {f"{k[0]} {k[1]}": v - before.requests.get(k, 0) for k, v in after.requests.items()}
        d_op = {k: v - before.operator.get(k, 0) for k, v in after.operator.items()}
        return cls(all={k: v for k, v in d_all.items() if v}, operator={k: v for k, v in d_op.items() if v})

    def to_json(self) -> dict:
        return {"all": dict(self.all), "operator": dict(self.operator)}

    @classmethod
    def from_json(cls, d: dict) -> ApiDelta:
        return cls(all=d["all"], operator=d["operator"])


# ---------------------------------------------------------------- objects


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
    def pick(o: dict) -> dict:
        meta = o.get("metadata", {})
        return {"status": o.get("status"), "generation": meta.get("generation"),
                "labels": meta.get("labels"), "annotations": meta.get("annotations")}
    a, b = flat(pick(old)), flat(pick(new))
    return {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


# ---------------------------------------------------------------- the machine


@dataclass(frozen=True)
class Machine:
    cpu: str
    mem: str
    kernel: str
    load: str
    commit: str

    def to_json(self) -> dict:
        return {"cpu": self.cpu, "mem": self.mem, "kernel": self.kernel, "load": self.load, "commit": self.commit}

    @classmethod
    def from_json(cls, d: dict) -> Machine:
        return cls(cpu=d["cpu"], mem=d["mem"], kernel=d["kernel"], load=d["load"], commit=d["commit"])


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine(settings: Settings) -> Machine:
    root, binary = settings.root, settings.bin
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown")
    meminfo = {line.split(":")[0]: int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()}
    commit = sh("git", "-C", str(root), "rev-parse", "--short", "HEAD").strip()
    dirty = sh("git", "-C", str(root), "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock").strip()
    if dirty:
        diff = sh("git", "-C", str(root), "diff", "HEAD", "--", "src", "Cargo.toml", "Cargo.lock")
        untracked = sh("git", "-C", str(root), "ls-files", "--others", "--exclude-standard", "--", "src")
        h = hashlib.sha256(diff.encode())
        for f in untracked.split():
            h.update((root / f).read_bytes())
        commit += (f" + uncommitted changes under src/ (working-tree diff sha256 {h.hexdigest()[:12]}; "
                   "the binary was built from the working tree)")
    built = datetime.datetime.fromtimestamp(binary.stat().st_mtime, datetime.timezone.utc)
    return Machine(
        cpu=f"nproc {os.cpu_count()}, {cpu}",
        mem=f"{meminfo['MemTotal'] / 1048576:.1f} GiB RAM, {meminfo['MemAvailable'] / 1048576:.1f} GiB available at start",
        kernel=os.uname().release,
        load=load_average(),
        commit=commit + (f"; **binary not rebuilt** (SKIP_BUILD=1, built {built:%Y-%m-%d %H:%M UTC})"
                         if settings.skip_build else ""),
    )
