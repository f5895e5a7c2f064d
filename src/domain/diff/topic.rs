//! An operator-owned SNS topic: the attributes and access policy it must
//! carry, and the subscriptions to add or remove.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::api::event_destination::{Protocol, Subscription, TopicSpec};

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

/// Subscription attributes the operator manages, as the spec wants them:
/// an option the spec leaves out is wanted at SNS's default, so removing
/// `filterPolicy` or `rawMessageDelivery` from the spec removes it in AWS.
pub fn subscription_attributes(sub: &Subscription) -> BTreeMap<String, String> {
    let mut attrs = BTreeMap::new();
    // SNS refuses RawMessageDelivery on protocols without it.
    if matches!(sub.protocol, Protocol::Sqs | Protocol::Https) {
        let raw = sub.raw_message_delivery.unwrap_or(false);
        attrs.insert("RawMessageDelivery".to_string(), raw.to_string());
    }
    // An empty value is how SetSubscriptionAttributes removes a policy.
    attrs.insert(
        "FilterPolicy".to_string(),
        sub.filter_policy.clone().unwrap_or_default(),
    );
    attrs
}

/// Attributes for the Subscribe call: only those away from SNS's default.
pub fn subscribe_attributes(sub: &Subscription) -> BTreeMap<String, String> {
    let mut attrs = subscription_attributes(sub);
    attrs.retain(|_, v| !v.is_empty() && v != "false");
    attrs
}

/// Subscription attributes to set so the observed ones match the spec.
/// Attributes SNS omits are at their default (`false`, no policy).
pub fn subscription_changes(sub: &Subscription, observed: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut observed = observed.clone();
    observed
        .entry("RawMessageDelivery".to_string())
        .or_insert_with(|| "false".to_string());
    let desired = subscription_attributes(sub);
    diff_attributes(&desired, &observed)
        .into_iter()
        .filter(|(name, want)| {
            // "" and a missing policy both mean none.
            !(name == "FilterPolicy" && want.is_empty() && observed.get(name).is_none_or(|v| v.trim().is_empty()))
        })
        .collect()
}

/// The first subscription whose filter policy is not a JSON object, with
/// the parser's message (admission checks only its outer shape).
pub fn invalid_filter_policy(subs: &[Subscription]) -> Option<String> {
    subs.iter().find_map(|sub| {
        let policy = sub.filter_policy.as_deref()?;
        match serde_json::from_str::<Value>(policy) {
            Ok(Value::Object(_)) => None,
            Ok(_) => Some(format!(
                "filterPolicy of the {} subscription {} is not a JSON object",
                sub.protocol.as_str(),
                sub.endpoint
            )),
            Err(e) => Some(format!(
                "filterPolicy of the {} subscription {} is not valid JSON: {e}",
                sub.protocol.as_str(),
                sub.endpoint
            )),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn sqs(raw: Option<bool>, filter: Option<&str>) -> Subscription {
        Subscription {
            protocol: Protocol::Sqs,
            endpoint: "arn:aws:sqs:us-east-1:123456789012:q".into(),
            raw_message_delivery: raw,
            filter_policy: filter.map(str::to_string),
        }
    }

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn options_removed_from_the_spec_are_removed_in_aws() {
        let observed = attrs(&[("RawMessageDelivery", "true"), ("FilterPolicy", r#"{"a":["b"]}"#)]);
        let changes = subscription_changes(&sqs(None, None), &observed);
        assert_eq!(
            changes,
            vec![
                ("FilterPolicy".to_string(), String::new()),
                ("RawMessageDelivery".to_string(), "false".to_string())
            ]
        );
    }

    #[test]
    fn defaults_sns_leaves_out_are_not_changes() {
        assert!(subscription_changes(&sqs(None, None), &BTreeMap::new()).is_empty());
        assert!(subscription_changes(&sqs(Some(false), None), &attrs(&[("FilterPolicy", "")])).is_empty());
        let reformatted = attrs(&[("RawMessageDelivery", "true"), ("FilterPolicy", r#"{ "a" : [ "b" ] }"#)]);
        assert!(subscription_changes(&sqs(Some(true), Some(r#"{"a":["b"]}"#)), &reformatted).is_empty());
    }

    #[test]
    fn email_subscriptions_never_get_raw_delivery() {
        let mut sub = sqs(None, None);
        sub.protocol = Protocol::Email;
        assert!(!subscription_attributes(&sub).contains_key("RawMessageDelivery"));
        assert!(subscribe_attributes(&sub).is_empty());
    }

    #[test]
    fn filter_policies_must_be_json_objects() {
        assert_eq!(invalid_filter_policy(&[sqs(None, Some(r#"{"a":["b"]}"#))]), None);
        let bad = invalid_filter_policy(&[sqs(None, Some("{not json}"))]).expect("rejected");
        assert!(bad.contains("not valid JSON"), "{bad}");
        let array = invalid_filter_policy(&[sqs(None, Some("[1]"))]).expect("rejected");
        assert!(array.contains("not a JSON object"), "{array}");
    }
}
