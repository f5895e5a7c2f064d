//! An operator-owned SNS topic: the attributes and access policy it must
//! carry, and the subscriptions to add or remove.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::api::event_destination::{Subscription, TopicSpec};

/// Topic attributes the operator manages, by SNS attribute name.
pub fn desired_attributes(
    spec: &TopicSpec,
    topic_arn: &str,
    account_id: &str,
    configuration_set_arn: &str,
) -> BTreeMap<String, String> {
    let mut attrs = BTreeMap::new();
    attrs.insert("SignatureVersion".to_string(), "2".to_string());
    attrs.insert("DisplayName".to_string(), spec.display_name.clone().unwrap_or_default());
    attrs.insert(
        "KmsMasterKeyId".to_string(),
        spec.kms_master_key_id.clone().unwrap_or_default(),
    );
    attrs.insert(
        "Policy".to_string(),
        access_policy(topic_arn, account_id, configuration_set_arn).to_string(),
    );
    attrs
}

/// The access policy that lets SES publish to the topic for exactly one
/// configuration set of one account (the confused-deputy guard AWS
/// recommends), and nothing else.
pub fn access_policy(topic_arn: &str, account_id: &str, configuration_set_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AllowSESPublish",
            "Effect": "Allow",
            "Principal": {"Service": "ses.amazonaws.com"},
            "Action": "SNS:Publish",
            "Resource": topic_arn,
            "Condition": {
                "StringEquals": {
                    "AWS:SourceAccount": account_id,
                    "AWS:SourceArn": configuration_set_arn
                }
            }
        }]
    })
}

/// Attributes (of a topic or a subscription) whose observed value differs
/// from the desired one. Policies are compared as JSON, since SNS may
/// reformat them.
pub fn diff_attributes(
    desired: &BTreeMap<String, String>,
    observed: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    desired
        .iter()
        .filter(|(name, want)| {
            let have = observed.get(*name).map(String::as_str).unwrap_or("");
            if matches!(name.as_str(), "Policy" | "FilterPolicy") {
                serde_json::from_str::<Value>(have).ok() != serde_json::from_str::<Value>(want).ok()
            } else {
                have != want.as_str()
            }
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A subscription as SNS lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedSubscription {
    pub protocol: String,
    pub endpoint: String,
    /// `PendingConfirmation` until the endpoint confirms.
    pub arn: String,
}

impl ObservedSubscription {
    pub fn is_pending(&self) -> bool {
        !self.arn.starts_with("arn:")
    }
}

/// Subscriptions to create (from the spec) and to remove (by ARN).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SubscriptionPlan<'a> {
    pub subscribe: Vec<&'a Subscription>,
    pub unsubscribe: Vec<String>,
}

pub fn plan_subscriptions<'a>(desired: &'a [Subscription], observed: &[ObservedSubscription]) -> SubscriptionPlan<'a> {
    let key = |protocol: &str, endpoint: &str| (protocol.to_string(), endpoint.to_string());
    let wanted: Vec<_> = desired.iter().map(|s| key(s.protocol.as_str(), &s.endpoint)).collect();
    let subscribe = desired
        .iter()
        .filter(|s| {
            !observed
                .iter()
                .any(|o| o.protocol == s.protocol.as_str() && o.endpoint == s.endpoint)
        })
        .collect();
    // A pending subscription has no ARN yet and cannot be removed; SNS
    // drops it after three days without confirmation.
    let unsubscribe = observed
        .iter()
        .filter(|o| !o.is_pending() && !wanted.contains(&key(&o.protocol, &o.endpoint)))
        .map(|o| o.arn.clone())
        .collect();
    SubscriptionPlan { subscribe, unsubscribe }
}

/// Subscription attributes the spec sets (raw delivery, filter policy).
pub fn subscription_attributes(sub: &Subscription) -> BTreeMap<String, String> {
    let mut attrs = BTreeMap::new();
    if let Some(raw) = sub.raw_message_delivery {
        attrs.insert("RawMessageDelivery".to_string(), raw.to_string());
    }
    if let Some(policy) = &sub.filter_policy {
        attrs.insert("FilterPolicy".to_string(), policy.clone());
    }
    attrs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::event_destination::Protocol;

    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:t";
    const SET: &str = "arn:aws:ses:us-east-1:123456789012:configuration-set/cs";

    #[test]
    fn policy_lets_only_ses_publish_for_one_set() {
        let p = access_policy(TOPIC, "123456789012", SET);
        let st = &p["Statement"][0];
        assert_eq!(st["Principal"]["Service"], "ses.amazonaws.com");
        assert_eq!(st["Action"], "SNS:Publish");
        assert_eq!(st["Condition"]["StringEquals"]["AWS:SourceArn"], SET);
        assert_eq!(st["Condition"]["StringEquals"]["AWS:SourceAccount"], "123456789012");
    }

    #[test]
    fn reformatted_policy_is_not_a_change() {
        let spec = TopicSpec {
            name: None,
            display_name: Some("Bounces".into()),
            kms_master_key_id: None,
            subscriptions: vec![],
        };
        let desired = desired_attributes(&spec, TOPIC, "123456789012", SET);
        let mut observed = desired.clone();
        observed.insert(
            "Policy".into(),
            serde_json::to_string_pretty(&access_policy(TOPIC, "123456789012", SET)).expect("json"),
        );
        assert!(diff_attributes(&desired, &observed).is_empty());
        observed.insert("SignatureVersion".into(), "1".into());
        assert_eq!(
            diff_attributes(&desired, &observed),
            vec![("SignatureVersion".to_string(), "2".to_string())]
        );
    }

    #[test]
    fn subscriptions_are_added_and_removed_but_pending_ones_are_left() {
        let desired = vec![
            Subscription {
                protocol: Protocol::Sqs,
                endpoint: "arn:aws:sqs:us-east-1:123456789012:q".into(),
                raw_message_delivery: Some(true),
                filter_policy: None,
            },
            Subscription {
                protocol: Protocol::Email,
                endpoint: "ops@example.com".into(),
                raw_message_delivery: None,
                filter_policy: None,
            },
        ];
        let observed = vec![
            ObservedSubscription {
                protocol: "sqs".into(),
                endpoint: "arn:aws:sqs:us-east-1:123456789012:q".into(),
                arn: format!("{TOPIC}:1"),
            },
            ObservedSubscription {
                protocol: "sqs".into(),
                endpoint: "arn:aws:sqs:us-east-1:123456789012:old".into(),
                arn: format!("{TOPIC}:2"),
            },
            ObservedSubscription {
                protocol: "email".into(),
                endpoint: "gone@example.com".into(),
                arn: "PendingConfirmation".into(),
            },
        ];
        let plan = plan_subscriptions(&desired, &observed);
        assert_eq!(plan.subscribe.len(), 1);
        assert_eq!(plan.subscribe[0].endpoint, "ops@example.com");
        assert_eq!(plan.unsubscribe, vec![format!("{TOPIC}:2")]);
    }
}
