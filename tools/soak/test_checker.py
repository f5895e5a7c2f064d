"""The checker's own tests: a small clean record passes, and each planted
violation (a duplicate topic, a write from a non-leader, a lifted pause,
an orphan, ...) is reported with what shows it."""

from __future__ import annotations

import copy
import unittest

from . import checker

OWNER = checker.OWNER_TAG
T0 = 1_800_000_000.0


def iso(t: float) -> str:
    from datetime import datetime, timezone
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def signed(t: float) -> str:
    from datetime import datetime, timezone
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def write(seq: int, t: float, key: str, op: str, resource: str, **more) -> dict:
    return {"seq": seq, "time": t, "signed": signed(t), "key": key, "op": op, "region": "us-east-1",
            "resource": resource, "outcome": "ok", **more}


def obj(kind: str, ns: str, name: str, spec: dict, status: dict) -> dict:
    return {"kind": kind, "namespace": ns, "name": name, "uid": f"uid-{name}", "generation": 1, "deleting": False,
            "annotations": {}, "labels": {}, "spec": spec, "status": status}


def ready(**more) -> dict:
    return {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True", "reason": "InSync"}], **more}


TOPIC = "arn:aws:sns:us-east-1:123456789012:soak-t1-ed-cs-1"
QUEUE = "arn:aws:sqs:us-east-1:123456789012:soak-feedback"


def clean_record() -> dict:
    """Replica a leads from T0 to T0+100 (then b): it creates set soak-t1-cs-1
    with a destination and topic, pauses it after a spike, and resumes it
    after the workload's resume; b creates retained set soak-t1-cs-2."""
    cs1 = {"name": "soak-t1-cs-1", "tags": {"team": "t1"}, "deletionPolicy": "Delete"}
    cs2 = {"name": "soak-t1-cs-2", "tags": {"team": "t1"}, "deletionPolicy": "Retain"}
    ed = {"configurationSetRef": {"name": "cs-1"}, "eventTypes": ["BOUNCE"], "deletionPolicy": "Delete",
          "sns": {"topic": {"name": "soak-t1-ed-cs-1", "subscriptions": [{"protocol": "sqs", "endpoint": QUEUE}]}}}
    settled_aws = {
        "sets": {"soak-t1-cs-1": {"tags": {OWNER: "soak/t1/cs-1", "team": "t1"}, "sending_enabled": True,
                                  "destinations": [{"name": "ed-cs-1", "topic_arn": TOPIC}]},
                 "soak-t1-cs-2": {"tags": {OWNER: "soak/t1/cs-2", "team": "t1"}, "sending_enabled": False,
                                  "destinations": []}},
        "identities": {},
        "topics": {TOPIC: {"tags": {OWNER: "soak/t1/ed-cs-1"},
                           "subscriptions": [{"protocol": "sqs", "endpoint": QUEUE, "arn": f"{TOPIC}:1"}]}},
        "queues": {},
    }
    paused = {"type": "SendingEnabled", "status": "False", "reason": "PausedByPolicy"}
    objects = [
        obj("ConfigurationSet", "t1", "cs-1", cs1, ready(awsName="soak-t1-cs-1")),
        obj("ConfigurationSet", "t1", "cs-2", cs2, {**ready(awsName="soak-t1-cs-2"),
                                                    "conditions": ready()["conditions"] + [paused]}),
        obj("EventDestination", "t1", "ed-cs-1", ed, ready(configurationSet="soak-t1-cs-1", topicArn=TOPIC)),
    ]
    return {
        "seed": 0, "minutes": 1, "started": T0, "faults_stopped": T0 + 150, "settled_at": T0 + 250,
        "convergence": {"seconds": 40.0, "bound_seconds": 150, "not_ready": []},
        "processes": [{"replica": "a", "identity": "host-1", "key": "KA1", "pid": 1, "started": T0 - 5},
                      {"replica": "b", "identity": "host-2", "key": "KB1", "pid": 2, "started": T0 - 5}],
        "lease": [
            {"observed": T0, "holder": "host-1", "acquireTime": iso(T0), "renewTime": iso(T0),
             "leaseDurationSeconds": 15},
            {"observed": T0 + 90, "holder": "host-1", "acquireTime": iso(T0), "renewTime": iso(T0 + 90),
             "leaseDurationSeconds": 15},
            {"observed": T0 + 110.5, "holder": "host-2", "acquireTime": iso(T0 + 110), "renewTime": iso(T0 + 110),
             "leaseDurationSeconds": 15},
            {"observed": T0 + 300, "holder": "host-2", "acquireTime": iso(T0 + 110), "renewTime": iso(T0 + 300),
             "leaseDurationSeconds": 15},
        ],
        "aws_log": [
            write(0, T0 + 1, "KA1", "sesv2:CreateConfigurationSet", "configuration-set/soak-t1-cs-1",
                  owner="soak/t1/cs-1", sending_enabled=True),
            write(1, T0 + 2, "KA1", "sns:CreateTopic", f"topic/{TOPIC}", owner="soak/t1/ed-cs-1"),
            write(2, T0 + 3, "KA1", "sns:Subscribe", f"topic/{TOPIC}"),
            write(3, T0 + 4, "KA1", "sesv2:CreateConfigurationSetEventDestination", "configuration-set/soak-t1-cs-1"),
            {**write(4, T0 + 5, "KB1", "sesv2:GetConfigurationSet", "configuration-set/soak-t1-cs-1"),
             "outcome": "status:404"},
            write(5, T0 + 30, "KA1", "sesv2:PutConfigurationSetSendingOptions", "configuration-set/soak-t1-cs-1",
                  sending_enabled=False),
            write(6, T0 + 80, "KA1", "sesv2:PutConfigurationSetSendingOptions", "configuration-set/soak-t1-cs-1",
                  sending_enabled=True),
            write(7, T0 + 120, "KB1", "sesv2:CreateConfigurationSet", "configuration-set/soak-t1-cs-2",
                  owner="soak/t1/cs-2", sending_enabled=True),
            write(8, T0 + 130, "KB1", "sesv2:PutConfigurationSetSendingOptions", "configuration-set/soak-t1-cs-2",
                  sending_enabled=False),
            write(9, T0 + 300, "KB1", "sesv2:DeleteConfigurationSetEventDestination",
                  "configuration-set/soak-t1-cs-1"),
            write(10, T0 + 301, "KB1", "sns:DeleteTopic", f"topic/{TOPIC}"),
            write(11, T0 + 302, "KB1", "sesv2:DeleteConfigurationSet", "configuration-set/soak-t1-cs-1"),
        ],
        "actions": [
            {"time": T0, "action": "create", "kind": "ConfigurationSet", "namespace": "t1", "name": "cs-1",
             "spec": cs1},
            {"time": T0, "action": "create", "kind": "EventDestination", "namespace": "t1", "name": "ed-cs-1",
             "spec": ed},
            {"time": T0 + 25, "action": "spike", "kind": "ConfigurationSet", "namespace": "t1", "name": "cs-1",
             "aws_name": "soak-t1-cs-1", "source": "cloudwatch", "rate": 0.09},
            {"time": T0 + 75, "action": "resume", "kind": "ConfigurationSet", "namespace": "t1", "name": "cs-1",
             "aws_name": "soak-t1-cs-1"},
            {"time": T0 + 118, "action": "create", "kind": "ConfigurationSet", "namespace": "t1", "name": "cs-2",
             "spec": cs2},
            {"time": T0 + 125, "action": "spike", "kind": "ConfigurationSet", "namespace": "t1", "name": "cs-2",
             "aws_name": "soak-t1-cs-2", "source": "live", "rate": 0.2, "sent": 30},
            {"time": T0 + 299, "action": "delete", "kind": "EventDestination", "namespace": "t1", "name": "ed-cs-1",
             "spec": ed},
            {"time": T0 + 299, "action": "delete", "kind": "ConfigurationSet", "namespace": "t1", "name": "cs-1",
             "spec": cs1},
            {"time": T0 + 299, "action": "delete", "kind": "ConfigurationSet", "namespace": "t1", "name": "cs-2",
             "spec": cs2},
        ],
        "settled": {"aws": settled_aws, "kube": {"objects": objects, "events": []}},
        "final": {"aws": {"sets": {"soak-t1-cs-2": copy.deepcopy(settled_aws["sets"]["soak-t1-cs-2"])},
                          "identities": {}, "topics": {}, "queues": {}},
                  "kube": {"objects": [], "events": []}},
        "rss_max_kib": {"a": 40_000, "b": 41_000}, "memory_limit_kib": 131072, "panics": [],
    }


def invariants(record: dict) -> list[str]:
    return [v.invariant for v in checker.check(record)]


class CheckerTest(unittest.TestCase):
    def test_a_clean_record_passes(self):
        self.assertEqual(checker.check(clean_record()), [])

    def test_a_duplicate_topic(self):
        r = clean_record()
        r["settled"]["aws"]["topics"][TOPIC + "-2"] = copy.deepcopy(r["settled"]["aws"]["topics"][TOPIC])
        found = checker.duplicates_settled(r)
        self.assertEqual(len(found), 1)
        self.assertIn("2 topics owned by soak/t1/ed-cs-1", found[0].detail)

    def test_a_duplicate_subscription(self):
        r = clean_record()
        subs = r["settled"]["aws"]["topics"][TOPIC]["subscriptions"]
        subs.append({**subs[0], "arn": f"{TOPIC}:2"})
        self.assertEqual(invariants(r), ["duplicate"])

    def test_a_write_from_a_replica_that_did_not_hold_the_lease(self):
        r = clean_record()
        # b writes at T0+50, while a holds the Lease.
        r["aws_log"].append(write(12, T0 + 50, "KB1", "sesv2:TagResource", "configuration-set/soak-t1-cs-1"))
        found = checker.writes_by_leader_only(r)
        self.assertEqual(len(found), 1)
        self.assertIn("log #12", found[0].detail)
        self.assertIn("replica b", found[0].detail)
        self.assertIn("host-1", found[0].detail)

    def test_a_write_after_the_lease_lapsed_and_before_the_next_holder(self):
        r = clean_record()
        # a renewed last at T0+90: its Lease lapsed at T0+105.
        r["aws_log"].append(write(12, T0 + 107, "KA1", "sqs:DeleteMessage", None))
        self.assertEqual(invariants(r), ["leader"])
        # Reads are not writes.
        r["aws_log"][-1]["op"] = "sesv2:GetConfigurationSet"
        self.assertEqual(invariants(r), [])

    def test_a_lifted_pause_without_a_resume(self):
        r = clean_record()
        r["actions"] = [a for a in r["actions"] if a["action"] != "resume"]
        found = checker.pauses_hold(r)
        self.assertEqual(len(found), 1)
        self.assertIn("set soak-t1-cs-1 paused", found[0].detail)
        self.assertIn("log #6", found[0].detail)

    def test_a_write_sent_after_the_lease_lapsed_by_the_proxys_stamp(self):
        r = clean_record()
        # Signed inside a's Lease (the SDK's skew-shifted clock), sent after.
        r["aws_log"].append({**write(12, T0 + 106, "KA1", "sqs:ReceiveMessage", None), "signed": signed(T0 + 100),
                             "sent": T0 + 105.2})
        found = checker.writes_by_leader_only(r)
        self.assertEqual(len(found), 1)
        self.assertIn("sent", found[0].detail)
        r["aws_log"][-1]["sent"] = T0 + 104.9
        self.assertEqual(checker.writes_by_leader_only(r), [])

    def test_deleting_the_pausing_policy_releases(self):
        r = clean_record()
        r["actions"] = [a for a in r["actions"] if a["action"] != "resume"]
        r["actions"].append({"time": T0 + 70, "action": "delete", "kind": "ReputationPolicy", "namespace": "t1",
                             "name": "pause"})
        self.assertEqual(checker.pauses_hold(r), [])
        r["actions"][-1]["namespace"] = "t2"
        self.assertEqual(len(checker.pauses_hold(r)), 1)

    def test_a_spike_that_did_not_pause(self):
        r = clean_record()
        r["settled"]["aws"]["sets"]["soak-t1-cs-2"]["sending_enabled"] = True
        self.assertIn("spike", invariants(r))
        self.assertIn("soak-t1-cs-2", str(checker.spikes_pause(r)))

    def test_an_orphan_after_the_teardown(self):
        r = clean_record()
        r["final"]["aws"]["topics"][TOPIC] = copy.deepcopy(r["settled"]["aws"]["topics"][TOPIC])
        self.assertEqual(sorted(invariants(r)), ["delete", "orphan"])

    def test_an_orphan_destination(self):
        r = clean_record()
        r["settled"]["aws"]["sets"]["soak-t1-cs-1"]["destinations"].append({"name": "stray", "topic_arn": TOPIC})
        self.assertIn("event destination stray", str(checker.orphans_settled(r)))

    def test_a_retained_set_gone(self):
        r = clean_record()
        r["final"]["aws"]["sets"] = {}
        found = checker.deletions(r)
        self.assertEqual(len(found), 1)
        self.assertEqual(found[0].invariant, "retain")
        # Deleted before its create went out: nothing to keep.
        r["aws_log"] = [e for e in r["aws_log"] if e.get("resource") != "configuration-set/soak-t1-cs-2"]
        self.assertEqual(checker.deletions(r), [])

    def test_a_resource_retagged_to_another_owner(self):
        r = clean_record()
        r["aws_log"].append(write(12, T0 + 60, "KA1", "sesv2:TagResource", "configuration-set/soak-t1-cs-1",
                                  owner="soak/t2/intruder"))
        self.assertEqual(invariants(r), ["ownership"])

    def test_status_that_does_not_match_aws(self):
        r = clean_record()
        r["settled"]["aws"]["sets"]["soak-t1-cs-1"]["tags"]["team"] = "t9"
        r["settled"]["aws"]["sets"]["soak-t1-cs-2"]["sending_enabled"] = True
        found = [v.detail for v in checker.status_matches_aws(r)]
        self.assertEqual(len(found), 2, found)
        self.assertIn("tag team=t1; AWS has t9", found[0])
        self.assertIn("status says sending off, AWS has it on", found[1])

    def test_not_converged_memory_and_panics(self):
        r = clean_record()
        r["convergence"] = {"seconds": None, "bound_seconds": 150, "not_ready": ["ConfigurationSet t1/cs-1"]}
        r["rss_max_kib"]["b"] = 140_000
        r["panics"] = ["replica-a-001.log:7: thread 'tokio' panicked at src/x.rs:1:1"]
        self.assertEqual(sorted(invariants(r)), ["converge", "memory", "panic"])


if __name__ == "__main__":
    unittest.main()
