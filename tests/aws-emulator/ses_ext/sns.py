"""SNS corrections: moto stores `SignatureVersion` from SetTopicAttributes
but GetTopicAttributes leaves it out; AWS returns it (default "1")."""

from __future__ import annotations

from typing import Any

from moto.sns.responses import SNSResponse

_moto_get_topic_attributes = SNSResponse.get_topic_attributes


def get_topic_attributes(self: SNSResponse) -> Any:
    result = _moto_get_topic_attributes(self)
    topic = self.backend.get_topic(self._get_param("TopicArn"))
    attributes = getattr(result, "result", {}).get("Attributes")
    if isinstance(attributes, dict):
        attributes["SignatureVersion"] = str(getattr(topic, "signature_version", "1"))
    return result


def install() -> None:
    SNSResponse.get_topic_attributes = get_topic_attributes
