"""The invariants of a soak, checked over its record (collect.py) alone:
no import of the operator, no reading of its logs beyond panics. Each
check returns violations, each naming the request, object or AWS resource
that shows it. `check(record)` runs them all.

The record's clocks: the emulator stamps each request with its arrival
(`time`), the soak proxy's stamp of when it left the client (`sent`) and
the client's SigV4 signing second (`signed`); the Lease's
acquireTime and renewTime come from the replicas; the harness stamps its
actions and faults. All are this machine's clock."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

OWNER_TAG = "ses.reputation.io/owner"
CLUSTER = "soak"
# Operations that only read. Everything else an operator process sends is
# a write, including SQS ReceiveMessage (it hides messages from others).
READ_PREFIXES = ("Get", "List", "Describe", "HeadObject")


@dataclass(frozen=True)
class Violation:
    invariant: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.invariant}] {self.detail}"


def check(record: dict[str, Any]) -> list[Violation]:
    out: list[Violation] = []
    for fn in CHECKS:
        out += fn(record)
    return out


# --- helpers -----------------------------------------------------------------


def _signed(entry: dict[str, Any]) -> float | None:
    s = entry.get("signed")
    if not s:
        return None
    return datetime.strptime(s, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()


def _rfc3339(s: str | None) -> float | None:
    if not s:
        return None
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def _owner(ns: str, name: str) -> str:
    return f"{CLUSTER}/{ns}/{name}"


def _operator_keys(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["key"]: p for p in record["processes"]}


def _is_write(op: str) -> bool:
    return not op.split(":", 1)[1].startswith(READ_PREFIXES)


def _in_order(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(log, key=lambda e: (e["time"], e["seq"]))


def _live(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    return snapshot["kube"]["objects"]


def _retained_owners(record: dict[str, Any]) -> set[str]:
    return {_owner(a["namespace"], a["name"]) for a in record["actions"]
            if a["action"] == "delete" and (a.get("spec") or {}).get("deletionPolicy") == "Retain"}


def _owned(aws: dict[str, Any]) -> Iterable[tuple[str, str, str]]:
    """(type, resource, owner tag) of everything carrying this cluster's owner tag."""
    for kind, key in (("configuration-set", "sets"), ("identity", "identities"), ("topic", "topics"),
                      ("queue", "queues")):
        for name, res in aws[key].items():
            owner = res["tags"].get(OWNER_TAG)
            if owner and owner.startswith(f"{CLUSTER}/"):
                yield kind, name, owner


# Which kinds may own which AWS resources.
OWNER_KINDS = {"configuration-set": {"ConfigurationSet"}, "identity": {"EmailIdentity"},
               "topic": {"EventDestination", "SesAccount"}, "queue": {"SesAccount"}}


# --- AWS resources -----------------------------------------------------------


def duplicates_settled(record: dict[str, Any]) -> list[Violation]:
    """One AWS resource per owner and type; one subscription per endpoint."""
    aws = record["settled"]["aws"]
    out = []
    by_owner: dict[tuple[str, str], list[str]] = defaultdict(list)
    for kind, name, owner in _owned(aws):
        by_owner[(kind, owner)].append(name)
    for (kind, owner), names in sorted(by_owner.items()):
        if len(names) > 1:
            out.append(Violation("duplicate", f"{len(names)} {kind}s owned by {owner}: {sorted(names)}"))
    for arn, topic in sorted(aws["topics"].items()):
        counts = Counter((s["protocol"], s["endpoint"]) for s in topic["subscriptions"])
        for (protocol, endpoint), n in counts.items():
            if n > 1:
                out.append(Violation("duplicate", f"{n} {protocol} subscriptions of {arn} to {endpoint}"))
    return out


def _orphans(record: dict[str, Any], snapshot: dict[str, Any], when: str) -> list[Violation]:
    live = {(o["kind"], _owner(o["namespace"], o["name"])) for o in _live(snapshot)}
    retained = _retained_owners(record)
    out = []
    for kind, name, owner in _owned(snapshot["aws"]):
        if owner in retained or any((k, owner) in live for k in OWNER_KINDS[kind]):
            continue
        out.append(Violation("orphan", f"{when}: {kind} {name} carries owner tag {owner}, and no such object lives"))
    # Event destinations carry no tags: each in a soak set must be claimed by
    # a live EventDestination or be the account's event stream.
    claimed = {(o["status"].get("configurationSet"), o["spec"].get("name") or o["name"])
               for o in _live(snapshot) if o["kind"] == "EventDestination"}
    streams = {(o["status"].get("eventStream") or {}).get("topicArn") for o in _live(snapshot)
               if o["kind"] == "SesAccount"}
    for set_name, s in snapshot["aws"]["sets"].items():
        if not (s["tags"].get(OWNER_TAG) or "").startswith(f"{CLUSTER}/"):
            continue
        for d in s["destinations"]:
            if (set_name, d["name"]) not in claimed and d["topic_arn"] not in streams:
                out.append(Violation("orphan", f"{when}: event destination {d['name']} of set {set_name} "
                                     "is claimed by no live EventDestination"))
    return out


def orphans_settled(record: dict[str, Any]) -> list[Violation]:
    return _orphans(record, record["settled"], "after the faults")


def orphans_final(record: dict[str, Any]) -> list[Violation]:
    """After every object was deleted, only what Retain kept is left."""
    return _orphans(record, record["final"], "after the teardown")


def deletions(record: dict[str, Any]) -> list[Violation]:
    """Delete leaves nothing in AWS; Retain keeps the resource (one that was
    created: an object deleted before its create went out has nothing to
    keep)."""
    aws = record["final"]["aws"]
    created = {e["resource"].split("/", 1)[1].rsplit(":", 1)[-1] for e in record["aws_log"]
               if e.get("outcome") == "ok" and e.get("resource") and e["op"].split(":", 1)[1] in (
                   "CreateConfigurationSet", "CreateEmailIdentity", "CreateTopic")}
    out = []
    for a in record["actions"]:
        if a["action"] != "delete" or a.get("intruder"):
            continue
        spec = a.get("spec") or {}
        keep = spec.get("deletionPolicy") == "Retain"
        what: tuple[str, str, bool] | None = None
        if a["kind"] == "ConfigurationSet":
            what = ("configuration set", spec["name"], spec["name"] in aws["sets"])
        elif a["kind"] == "EmailIdentity":
            what = ("identity", spec["identity"], spec["identity"] in aws["identities"])
        elif a["kind"] == "EventDestination" and "topic" in (spec.get("sns") or {}):
            topic = spec["sns"]["topic"]["name"]
            what = ("topic", topic, any(arn.endswith(f":{topic}") for arn in aws["topics"]))
        if what is None:
            continue
        noun, name, present = what
        if keep and not present and name in created:
            out.append(Violation("retain", f"{noun} {name} of {a['namespace']}/{a['name']} (Retain) is gone"))
        if not keep and present:
            out.append(Violation("delete", f"{noun} {name} of {a['namespace']}/{a['name']} (Delete) is still in AWS"))
    return out


# --- who wrote what when -----------------------------------------------------


def leader_periods(lease: list[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """Holder identity -> [(start, end)]: from its acquireTime until the Lease
    could have expired (last renewTime + duration) or the next change."""
    periods: list[list[Any]] = []  # [holder, acquire, end]
    for r in sorted(lease, key=lambda r: r["observed"]):
        holder, acquired = r.get("holder"), _rfc3339(r.get("acquireTime"))
        renewed = _rfc3339(r.get("renewTime"))
        duration = r.get("leaseDurationSeconds") or 0
        if periods and (holder, acquired) != (periods[-1][0], periods[-1][1]):
            # Whatever the Lease says now began at its acquireTime (or when
            # it was seen released): the previous holding ended by then.
            changed = acquired if holder and acquired else r["observed"]
            periods[-1][2] = min(periods[-1][2], changed)
        if not holder or acquired is None:
            continue
        end = (renewed or acquired) + duration
        if periods and (holder, acquired) == (periods[-1][0], periods[-1][1]):
            periods[-1][2] = max(periods[-1][2], end)
        else:
            periods.append([holder, acquired, end])
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for holder, start, end in periods:
        out[holder].append((start, end))
    return out


def _sent_window(e: dict[str, Any]) -> tuple[float, float] | None:
    """When the request left its client: the soak proxy's stamp, else the
    SigV4 signing second (which the SDK shifts by its idea of clock skew)."""
    if e.get("sent") is not None:
        return e["sent"], e["sent"]
    signed = _signed(e)
    return None if signed is None else (signed, signed + 1)


def writes_by_leader_only(record: dict[str, Any]) -> list[Violation]:
    """An operator process writes to AWS only while the Lease is its own,
    at the moment the request left it."""
    keys = _operator_keys(record)
    periods = leader_periods(record["lease"])
    out = []
    for e in record["aws_log"]:
        proc = keys.get(e.get("key") or "")
        if proc is None or not _is_write(e["op"]):
            continue
        window = _sent_window(e)
        if window is None:
            continue
        first, last = window
        mine = periods.get(proc["identity"], [])
        if not any(start <= last and first < end for start, end in mine):
            holders = [h for h, ps in periods.items() if any(s <= last and first < t for s, t in ps)]
            when = f"sent {e['sent']:.3f}" if e.get("sent") is not None else f"signed {e['signed']}"
            out.append(Violation("leader", f"{e['op']} on {e.get('resource') or '-'} (log #{e['seq']}, {when}) "
                                 f"by replica {proc['replica']} ({proc['identity']}), which did not hold the Lease "
                                 f"then; holder: {holders or 'none'}"))
    return out


def owner_never_changes(record: dict[str, Any]) -> list[Violation]:
    """No write re-tags an AWS resource to an owner other than the one that
    created it (a tenant taking another's set, identity or topic)."""
    keys = _operator_keys(record)
    owner: dict[str, str] = {}
    out = []
    for e in _in_order(record["aws_log"]):
        resource = e.get("resource")
        if not resource or e.get("key") not in keys or e.get("outcome") != "ok":
            continue
        op = e["op"].split(":", 1)[1]
        if op.startswith("Delete") and op not in ("DeleteConfigurationSetEventDestination",):
            owner.pop(resource, None)
            continue
        tag = e.get("owner")
        if tag is None:
            continue
        if op.startswith("Create") and resource not in owner:
            owner[resource] = tag
        elif resource in owner and owner[resource] != tag:
            out.append(Violation("ownership", f"{e['op']} (log #{e['seq']}) tags {resource} as {tag}; "
                                 f"it was created for {owner[resource]}"))
        else:
            owner.setdefault(resource, tag)
    return out


# --- pauses ------------------------------------------------------------------


def _set_object(record: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """AWS set name -> (namespace, name) of the object that asked for it."""
    return {a["spec"]["name"]: (a["namespace"], a["name"]) for a in record["actions"]
            if a["action"] == "create" and a["kind"] == "ConfigurationSet" and not a.get("intruder")}


def pauses_hold(record: dict[str, Any]) -> list[Violation]:
    """A set paused stays paused until a resume it was told about: sending
    goes back on only after the workload annotated resume-at, or deleted
    the namespace's pausing policy (README: a set no policy pauses any more
    is released)."""
    keys = _operator_keys(record)
    namespace_of = {aws_name: ns for aws_name, (ns, _) in _set_object(record).items()}
    resumes: dict[str, list[float]] = defaultdict(list)
    released: dict[str, list[float]] = defaultdict(list)
    for a in record["actions"]:
        if a["action"] == "resume":
            resumes[a["aws_name"]].append(a["time"])
        if a["action"] == "delete" and a["kind"] == "ReputationPolicy":
            released[a["namespace"]].append(a["time"])
    paused_at: dict[str, float] = {}
    out = []
    for e in _in_order(record["aws_log"]):
        if e.get("key") not in keys or e.get("outcome") != "ok" or not (e.get("resource") or "").startswith(
                "configuration-set/"):
            continue
        name = e["resource"].split("/", 1)[1]
        op = e["op"].split(":", 1)[1]
        if op in ("CreateConfigurationSet", "DeleteConfigurationSet"):
            paused_at.pop(name, None)
        if op != "PutConfigurationSetSendingOptions":
            continue
        if not e.get("sending_enabled"):
            paused_at.setdefault(name, e["time"])
        elif name in paused_at:
            since = paused_at.pop(name)
            told = resumes[name] + released[namespace_of.get(name, "")]
            if not any(since - 1 <= t <= e["time"] for t in told):
                out.append(Violation("pause", f"set {name} paused at {since:.1f} was turned back on at "
                                     f"{e['time']:.1f} (log #{e['seq']}) with no resume in between"))
    return out


def spikes_pause(record: dict[str, Any]) -> list[Violation]:
    """A spike above the pause point pauses its set (unless resumed or
    deleted later): AWS has sending off once the faults are over."""
    aws = record["settled"]["aws"]
    later: dict[str, list[float]] = defaultdict(list)
    for a in record["actions"]:
        if a["time"] > record["settled_at"]:
            continue  # the teardown
        if a["action"] in ("resume", "delete") and a["kind"] == "ConfigurationSet" and not a.get("intruder"):
            later[a["aws_name"] if a["action"] == "resume" else a["spec"]["name"]].append(a["time"])
    out = []
    for a in record["actions"]:
        if a["action"] != "spike" or a.get("sent", 30) < 20:
            continue
        if any(t > a["time"] for t in later[a["aws_name"]]):
            continue
        s = aws["sets"].get(a["aws_name"])
        if s is None:
            out.append(Violation("spike", f"set {a['aws_name']} spiked ({a['source']}) is not in AWS"))
        elif s["sending_enabled"]:
            out.append(Violation("spike", f"set {a['aws_name']} of {a['namespace']}/{a['name']} spiked to "
                                 f"{a['rate']:.0%} ({a['source']}) at {a['time']:.1f} still sends"))
    return out


# --- convergence and status --------------------------------------------------


def converged(record: dict[str, Any]) -> list[Violation]:
    c = record["convergence"]
    if c["seconds"] is None or c["seconds"] > c["bound_seconds"]:
        return [Violation("converge", f"not every object Ready for its generation within {c['bound_seconds']} s "
                          f"of the faults stopping; still not: {c['not_ready'][:20]}")]
    return []


def _conds(o: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in o["status"].get("conditions") or []}


def status_matches_aws(record: dict[str, Any]) -> list[Violation]:
    """What a Ready object's status says is what AWS holds; an intruder is
    Stalled with the reason expected and touched nothing."""
    snap = record["settled"]
    aws = snap["aws"]
    expected = {(a["kind"], a["namespace"], a["name"]): a.get("expect") for a in record["actions"]
                if a["action"] == "create" and a.get("intruder")}
    out = []
    for o in _live(snap):
        key = (o["kind"], o["namespace"], o["name"])
        conds = _conds(o)
        where = f"{o['kind']} {o['namespace']}/{o['name']}"
        if key in expected:
            stalled = conds.get("Stalled", {})
            if stalled.get("status") != "True" or stalled.get("reason") != expected[key]:
                out.append(Violation("status", f"{where} should be Stalled {expected[key]}: {stalled or 'none'}"))
            continue
        if conds.get("Ready", {}).get("status") != "True":
            continue
        if o["kind"] == "ConfigurationSet":
            s = aws["sets"].get(o["status"].get("awsName") or "")
            if s is None:
                out.append(Violation("status", f"{where} is Ready but set {o['status'].get('awsName')} is not in AWS"))
                continue
            if s["tags"].get(OWNER_TAG) != _owner(o["namespace"], o["name"]):
                out.append(Violation("status", f"{where}: its set's owner tag is {s['tags'].get(OWNER_TAG)}"))
            for k, v in (o["spec"].get("tags") or {}).items():
                if s["tags"].get(k) != v:
                    out.append(Violation("status", f"{where} is Ready with tag {k}={v}; AWS has {s['tags'].get(k)}"))
            says_on = conds.get("SendingEnabled", {}).get("status", "True") == "True"
            if says_on != s["sending_enabled"]:
                out.append(Violation("status", f"{where}: status says sending "
                                     f"{'on' if says_on else 'off'}, AWS has it {'on' if s['sending_enabled'] else 'off'}"))
        elif o["kind"] == "EventDestination":
            s = aws["sets"].get(o["status"].get("configurationSet") or "")
            name = o["spec"].get("name") or o["name"]
            dest = next((d for d in (s or {}).get("destinations", []) if d["name"] == name), None)
            if dest is None:
                out.append(Violation("status", f"{where} is Ready but {o['status'].get('configurationSet')} has "
                                     f"no destination {name}"))
            elif dest["topic_arn"] != o["status"].get("topicArn") or dest["topic_arn"] not in aws["topics"]:
                out.append(Violation("status", f"{where}: destination goes to {dest['topic_arn']}, status says "
                                     f"{o['status'].get('topicArn')}"))
            else:
                subs = {(x["protocol"], x["endpoint"]) for x in aws["topics"][dest["topic_arn"]]["subscriptions"]}
                for want in (o["spec"].get("sns") or {}).get("topic", {}).get("subscriptions", []):
                    if (want["protocol"], want["endpoint"]) not in subs:
                        out.append(Violation("status", f"{where} is Ready without subscription {want['endpoint']}"))
        elif o["kind"] == "EmailIdentity":
            ident = aws["identities"].get(o["spec"]["identity"])
            if ident is None:
                out.append(Violation("status", f"{where} is Ready but {o['spec']['identity']} is not in AWS"))
            elif ident["tags"].get(OWNER_TAG) != _owner(o["namespace"], o["name"]):
                out.append(Violation("status", f"{where}: its identity's owner tag is {ident['tags'].get(OWNER_TAG)}"))
    return out


def memory(record: dict[str, Any]) -> list[Violation]:
    limit = record["memory_limit_kib"]
    return [Violation("memory", f"replica {name} peaked at {kib / 1024:.1f} MiB, above the chart's "
                      f"{limit / 1024:.0f} MiB") for name, kib in sorted(record["rss_max_kib"].items()) if kib > limit]


def no_panics(record: dict[str, Any]) -> list[Violation]:
    return [Violation("panic", line) for line in record["panics"]]


CHECKS = (duplicates_settled, orphans_settled, orphans_final, deletions, writes_by_leader_only, owner_never_changes,
          pauses_hold, spikes_pause, converged, status_matches_aws, memory, no_panics)
