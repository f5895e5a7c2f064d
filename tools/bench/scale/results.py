"""One record per run and scenario, with its JSON form (the raw
`<scenario>-run-<k>.json` files that REPORT_FROM re-renders).

The records are filled in phase by phase while a run goes on (and the
fixture adds the operator's exit and warnings when it stops), so they are
mutable; a field stays None when its phase did not happen, and None fields
are left out of the JSON, as the run never set them."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from typing import ClassVar, Optional

from .measure import ApiDelta, Machine

Calls = Counter  # service:Operation -> count


@dataclass(frozen=True)
class ChangedExample:
    """An object whose resourceVersion changed in the steady window, with
    its changed leaves (old, new)."""
    object: str
    diff: dict[str, list]

    def to_json(self) -> dict:
        return {"object": self.object, "diff": self.diff}

    @classmethod
    def from_json(cls, d: dict) -> ChangedExample:
        return cls(object=d["object"], diff=d["diff"])


@dataclass
class RunRecord:
    """What every scenario's run records: the fixture's startup and
    shutdown, and when and where it ran."""
    run: int
    startup_s: Optional[float] = None
    startup_calls: Optional[Calls] = None
    operator_flags: Optional[str] = None
    operator_exit: Optional[int] = None
    operator_warnings: Optional[list[str]] = None
    started: Optional[str] = None
    machine: Optional[Machine] = None
    n: Optional[int] = None
    stalled_seen: Optional[list[str]] = None
    rss_peak_mib: Optional[float] = None
    rss_end_mib: Optional[float] = None
    not_ready: Optional[list[str]] = None

    # The JSON key order: these first, the scenario's own fields, then LAST.
    FIRST: ClassVar[tuple[str, ...]] = ("run", "startup_s", "startup_calls", "operator_flags")
    LAST: ClassVar[tuple[str, ...]] = ("operator_exit", "operator_warnings", "started", "machine", "n")
    ORDER: ClassVar[tuple[str, ...]] = ()  # the scenario's fields in the order a run sets them
    COUNTERS: ClassVar[tuple[str, ...]] = ("startup_calls",)

    def __setattr__(self, name: str, value: object) -> None:
        # A misspelt field would otherwise be set, and silently left out of the JSON.
        if name not in self.__dataclass_fields__:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}")
        super().__setattr__(name, value)

    def succeeded(self) -> bool:
        raise NotImplementedError

    def to_json(self) -> dict:
        out = {}
        for name in self.FIRST + self.ORDER + self.LAST:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, (Machine, ApiDelta)):
                value = value.to_json()
            elif name == "changed_examples":
                value = [e.to_json() for e in value]
            out[name] = value
        return out

    @classmethod
    def from_json(cls, d: dict) -> RunRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        for name in cls.COUNTERS:
            if kw.get(name) is not None:
                kw[name] = Counter(kw[name])
        if kw.get("machine") is not None:
            kw["machine"] = Machine.from_json(kw["machine"])
        if kw.get("api") is not None:
            kw["api"] = ApiDelta.from_json(kw["api"])
        if kw.get("changed_examples") is not None:
            kw["changed_examples"] = [ChangedExample.from_json(e) for e in kw["changed_examples"]]
        return cls(**kw)


@dataclass
class SteadyRun(RunRecord):
    apply_s: Optional[float] = None
    converge_calls: Optional[Calls] = None
    ready_s: Optional[float] = None
    tail_s: Optional[float] = None
    sets_ready_s: Optional[float] = None
    dests_ready_s: Optional[float] = None
    cpu_converge_s: Optional[float] = None
    rss_converged_mib: Optional[float] = None
    identities: Optional[int] = None
    identities_verified: Optional[int] = None
    identities_ready_s: Optional[float] = None
    identity_calls: Optional[Calls] = None
    identities_not_ready: Optional[list[str]] = None
    steady_window_s: Optional[float] = None
    steady_calls: Optional[Calls] = None
    cpu_steady_s: Optional[float] = None
    rss_steady_mib: Optional[float] = None
    rss_peak_steady_mib: Optional[float] = None
    rv_changed: Optional[dict[str, int]] = None  # kind -> objects whose resourceVersion changed
    changed_examples: Optional[list[ChangedExample]] = None
    changed_fields: Optional[dict[str, int]] = None  # field -> objects on which it changed
    policies_ready: Optional[int] = None
    api: Optional[ApiDelta] = None
    change_apply_s: Optional[float] = None
    change_s: Optional[float] = None
    change_calls: Optional[Calls] = None
    cpu_change_s: Optional[float] = None
    change_not_ready: Optional[list[str]] = None

    ORDER: ClassVar[tuple[str, ...]] = (
        "apply_s", "converge_calls", "ready_s", "tail_s", "not_ready", "sets_ready_s", "dests_ready_s",
        "cpu_converge_s", "rss_converged_mib", "identities", "identities_verified", "identities_ready_s",
        "identity_calls", "identities_not_ready", "steady_window_s", "steady_calls", "cpu_steady_s",
        "rss_steady_mib", "rss_peak_steady_mib", "rv_changed", "changed_examples", "changed_fields",
        "policies_ready", "api", "change_apply_s", "change_s", "change_calls", "cpu_change_s",
        "change_not_ready", "stalled_seen", "rss_peak_mib", "rss_end_mib")
    COUNTERS: ClassVar[tuple[str, ...]] = (
        "startup_calls", "converge_calls", "identity_calls", "steady_calls", "change_calls")

    def succeeded(self) -> bool:
        return self.ready_s is not None and self.change_s is not None


@dataclass
class ConvergeRun(RunRecord):
    """The throttled and shared scenarios."""
    timeout_s: Optional[float] = None
    apply_s: Optional[float] = None
    calls: Optional[Calls] = None
    throttled: Optional[Calls] = None
    failed: Optional[Calls] = None
    ses_ok: Optional[int] = None
    ses_all: Optional[int] = None
    ready_s: Optional[float] = None
    elapsed_s: Optional[float] = None
    ready_at_timeout: Optional[int] = None
    sets_ready_s: Optional[float] = None
    dests_ready_s: Optional[float] = None

    ORDER: ClassVar[tuple[str, ...]] = (
        "timeout_s", "apply_s", "calls", "throttled", "failed", "ses_ok", "ses_all", "ready_s", "elapsed_s",
        "not_ready", "ready_at_timeout", "sets_ready_s", "dests_ready_s", "stalled_seen", "rss_peak_mib",
        "rss_end_mib")
    COUNTERS: ClassVar[tuple[str, ...]] = ("startup_calls", "calls", "throttled", "failed")

    def succeeded(self) -> bool:
        return self.ready_s is not None


@dataclass
class SpecLatencyRun(RunRecord):
    apply_s: Optional[float] = None
    ready_s: Optional[float] = None
    drift_started_s: Optional[float] = None
    drift_period_s: Optional[float] = None
    pre_window_s: Optional[float] = None
    pre_calls: Optional[Calls] = None
    pre_throttled: Optional[Calls] = None
    pre_ses_ok: Optional[int] = None
    pre_ses_all: Optional[int] = None
    changes_window_s: Optional[float] = None
    change_calls: Optional[Calls] = None
    change_throttled: Optional[Calls] = None
    change_ses_ok: Optional[int] = None
    change_ses_all: Optional[int] = None
    latencies: Optional[list[Optional[float]]] = None  # None: that change timed out

    ORDER: ClassVar[tuple[str, ...]] = (
        "apply_s", "ready_s", "not_ready", "drift_started_s", "drift_period_s", "pre_window_s", "pre_calls",
        "pre_throttled", "pre_ses_ok", "pre_ses_all", "changes_window_s", "change_calls", "change_throttled",
        "change_ses_ok", "change_ses_all", "latencies", "stalled_seen", "rss_peak_mib", "rss_end_mib")
    COUNTERS: ClassVar[tuple[str, ...]] = (
        "startup_calls", "pre_calls", "pre_throttled", "change_calls", "change_throttled")

    def succeeded(self) -> bool:
        return self.ready_s is not None and None not in (self.latencies if self.latencies is not None else [None])


@dataclass
class RecoveryRun(RunRecord):
    apply_s: Optional[float] = None
    held_s: Optional[float] = None
    ready_at_lift: Optional[int] = None
    lift_calls: Optional[Calls] = None
    lift_throttled: Optional[Calls] = None
    ses_ok_at_lift: Optional[int] = None
    ses_all_at_lift: Optional[int] = None
    after_calls: Optional[Calls] = None
    after_throttled: Optional[Calls] = None
    after_ses_ok: Optional[int] = None
    recovery_s: Optional[float] = None
    total_s: Optional[float] = None

    ORDER: ClassVar[tuple[str, ...]] = (
        "apply_s", "held_s", "ready_at_lift", "lift_calls", "lift_throttled", "ses_ok_at_lift",
        "ses_all_at_lift", "after_calls", "after_throttled", "after_ses_ok", "recovery_s", "total_s",
        "not_ready", "stalled_seen", "rss_peak_mib", "rss_end_mib")
    COUNTERS: ClassVar[tuple[str, ...]] = (
        "startup_calls", "lift_calls", "lift_throttled", "after_calls", "after_throttled")

    def succeeded(self) -> bool:
        return self.recovery_s is not None


def record_class(scenario: str) -> type[RunRecord]:
    if scenario == "steady":
        return SteadyRun
    if scenario in ("throttled", "shared"):
        return ConvergeRun
    if scenario == "spec-latency":
        return SpecLatencyRun
    return RecoveryRun
