//! An event destination as SES sees it, and whether AWS must create or
//! update it.

use std::collections::BTreeSet;

use crate::api::event_destination::{DimensionSource, EventDestinationSpec, EventType};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    pub name: String,
    pub enabled: bool,
    pub event_types: BTreeSet<EventType>,
    pub target: Target,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Sns {
        topic_arn: String,
    },
    CloudWatch {
        dimensions: Vec<Dimension>,
    },
    EventBridge {
        event_bus_arn: String,
    },
    /// A target kind the operator does not manage (Firehose, Pinpoint).
    Other(String),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dimension {
    pub name: String,
    pub source: DimensionSource,
    pub default_value: String,
}

impl Target {
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Sns { .. } => "sns",
            Target::CloudWatch { .. } => "cloudWatch",
            Target::EventBridge { .. } => "eventBridge",
            Target::Other(_) => "other",
        }
    }
}

/// The destination the spec asks for, once the SNS topic ARN is known.
pub fn desired(spec: &EventDestinationSpec, name: String, topic_arn: Option<&str>) -> Option<Destination> {
    let target = if let Some(cw) = &spec.cloud_watch {
        let mut dimensions: Vec<Dimension> = cw
            .dimensions
            .iter()
            .map(|d| Dimension {
                name: d.name.clone(),
                source: d.source,
                default_value: d.default_value.clone(),
            })
            .collect();
        dimensions.sort();
        Target::CloudWatch { dimensions }
    } else if let Some(eb) = &spec.event_bridge {
        Target::EventBridge {
            event_bus_arn: eb.event_bus_arn.clone(),
        }
    } else {
        Target::Sns {
            topic_arn: topic_arn?.to_string(),
        }
    };
    Some(Destination {
        name,
        enabled: spec.enabled,
        event_types: spec.event_types.iter().copied().collect(),
        target,
    })
}

/// What to do in AWS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DestinationChange {
    Create,
    Update,
}

pub fn diff(desired: &Destination, observed: Option<&Destination>) -> Option<DestinationChange> {
    match observed {
        None => Some(DestinationChange::Create),
        Some(have) if have != desired => Some(DestinationChange::Update),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> EventDestinationSpec {
        serde_json::from_value(json).expect("spec deserializes")
    }

    #[test]
    fn defaults_to_bounce_and_complaint_enabled() {
        let s = spec(
            serde_json::json!({"configurationSetRef": {"name": "cs"}, "sns": {"topicArn": "arn:aws:sns:us-east-1:123456789012:t"}}),
        );
        let d = desired(&s, "d".into(), Some("arn:aws:sns:us-east-1:123456789012:t")).expect("sns arn known");
        assert!(d.enabled);
        assert_eq!(d.event_types, BTreeSet::from([EventType::Bounce, EventType::Complaint]));
        assert_eq!(diff(&d, None), Some(DestinationChange::Create));
        assert_eq!(diff(&d, Some(&d)), None);
    }

    #[test]
    fn sns_target_waits_for_its_topic() {
        let s = spec(serde_json::json!({"configurationSetRef": {"name": "cs"}, "sns": {"topic": {}}}));
        assert_eq!(desired(&s, "d".into(), None), None);
    }

    #[test]
    fn a_disabled_or_retyped_destination_is_updated() {
        let s = spec(
            serde_json::json!({"configurationSetRef": {"name": "cs"}, "eventBridge": {"eventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/default"}}),
        );
        let want = desired(&s, "d".into(), None).expect("no topic needed");
        let mut have = want.clone();
        have.enabled = false;
        assert_eq!(diff(&want, Some(&have)), Some(DestinationChange::Update));
        let mut have = want.clone();
        have.event_types.insert(EventType::Delivery);
        assert_eq!(diff(&want, Some(&have)), Some(DestinationChange::Update));
    }
}
