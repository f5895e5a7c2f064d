"""What the benchmark applies (ConfigurationSets, EventDestinations,
ReputationPolicies, EmailIdentities as YAML) and the AWS calls the operator
must make for them: the design and bare minimums the reports compare with."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Mapping

import yaml

from .cluster import API


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


def identity_domain(i: int) -> str:
    return f"bench-{i}.example.org"


def identity_manifests(ns: str, count: int) -> str:
    docs = [{"apiVersion": API, "kind": "EmailIdentity", "metadata": {"name": f"id-{i}", "namespace": ns},
             "spec": {"identity": identity_domain(i), "mailFromDomain": f"mail.{identity_domain(i)}",
                      "configurationSetRef": {"name": f"cs-{i}"}}} for i in range(count)]
    return yaml.safe_dump_all(docs, sort_keys=False)


# What the operator must call, per object, to create a fresh object
# (src/reconcile/kinds/*.rs, src/aws/*.rs): the "design minimum".
MIN_PER_SET = {"sesv2:GetConfigurationSet": 1, "sesv2:CreateConfigurationSet": 1}
MIN_PER_TAG_CHANGE = {"sesv2:GetConfigurationSet": 1, "sesv2:TagResource": 1}
# A new domain identity with MAIL FROM and a default set: create (key length,
# set and tags ride along), one read for status, the MAIL FROM Put, and one
# read once AWS has verified it.
MIN_PER_IDENTITY = {"sesv2:CreateEmailIdentity": 1, "sesv2:GetEmailIdentity": 2,
                    "sesv2:PutEmailIdentityMailFromAttributes": 1}


@dataclass(frozen=True)
class PairMinimums:
    """Calls per fresh pair (set + destination with an operator-owned topic):
    the design minimum, and the bare AWS minimum (create calls only, no
    observation). Both depend on whether each topic gets an SQS subscription."""
    per_dest: Mapping[str, int]
    per_pair: Mapping[str, int]
    bare_per_pair: Mapping[str, int]

    @classmethod
    def for_sqs(cls, sqs: bool) -> PairMinimums:
        per_dest = {
            "sns:GetTopicAttributes": 1,  # NotFound: the topic does not exist yet
            "sns:CreateTopic": 1,  # bare name + ownership tag
            "sns:SetTopicAttributes": 2,  # Policy, SignatureVersion (DisplayName/KMS empty: no call)
            "sns:ListSubscriptionsByTopic": 2 if sqs else 1,  # diff; re-read after Subscribe
            "sesv2:GetConfigurationSetEventDestinations": 1,
            "sesv2:CreateConfigurationSetEventDestination": 1,
            **({"sns:Subscribe": 1} if sqs else {}),
        }
        bare = {
            "sesv2:CreateConfigurationSet": 1,
            "sesv2:CreateConfigurationSetEventDestination": 1,
            "sns:CreateTopic": 1,
            "sns:SetTopicAttributes": 2,
            **({"sns:Subscribe": 1} if sqs else {}),
        }
        return cls(per_dest=per_dest, per_pair=dict(Counter(MIN_PER_SET) + Counter(per_dest)), bare_per_pair=bare)

    @property
    def ses_design(self) -> int:
        return sum(v for k, v in self.per_pair.items() if k.startswith("sesv2:"))  # 4

    @property
    def ses_bare(self) -> int:
        return sum(v for k, v in self.bare_per_pair.items() if k.startswith("sesv2:"))  # 2

    @property
    def non_ses_bare(self) -> int:
        return sum(v for k, v in self.bare_per_pair.items() if not k.startswith("sesv2:"))
