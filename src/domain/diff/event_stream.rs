//! An SesAccount's event stream as AWS should hold it: resource names, the
//! topic's and the queue's access policies, the queue attributes and the
//! event destination each set gets.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::event_destination::{Destination, Target};
use crate::api::event_destination::EventType;

/// Name of the operator-owned event destination on every set of an account
/// with the stream on. Reserved: one of SES's 10 destinations per set.
pub const DESTINATION_NAME: &str = "ses-reputation-operator-stream";

/// Events the live counts need: sends (the denominator), bounces and complaints.
pub const EVENT_TYPES: [EventType; 3] = [EventType::Send, EventType::Bounce, EventType::Complaint];

/// Seconds SQS keeps an unread event: older ones would fall out of the
/// longest window anyway.
pub const RETENTION_SECONDS: &str = "86400";

/// Name of the stream's topic and queue (the same for both): readable
/// (the SesAccount's name) and unique per cluster identity, within SQS's
/// 80 characters.
pub fn resource_name(owner: &str, account: &str) -> String {
    let account: String = account
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .take(50)
        .collect();
    format!("sro-events-{account}-{:08x}", fnv1a(owner))
}

/// FNV-1a: a hash that stays the same across Rust versions (names in AWS
/// must not change when the operator is rebuilt).
pub fn fnv1a(s: &str) -> u32 {
    s.bytes()
        .fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// The topic policy: SES may publish for this account's configuration
/// sets only (`AWS:SourceAccount` and a configuration-set `AWS:SourceArn`,
/// the confused-deputy guard AWS recommends). The ARN is a pattern over the
/// account's sets rather than a list: the policy stays the same as sets
/// come and go, and within SNS's 30 KiB policy size at 10,000 sets.
pub fn topic_policy(topic_arn: &str, account_id: &str, sets_arn_pattern: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AllowSESPublishForConfigurationSets",
            "Effect": "Allow",
            "Principal": {"Service": "ses.amazonaws.com"},
            "Action": "SNS:Publish",
            "Resource": topic_arn,
            "Condition": {
                "StringEquals": {"AWS:SourceAccount": account_id},
                "ArnLike": {"AWS:SourceArn": sets_arn_pattern}
            }
        }]
    })
}

/// The queue policy: only the stream's topic may send to the queue.
pub fn queue_policy(queue_arn: &str, topic_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AllowStreamTopic",
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}}
        }]
    })
}

/// Queue attributes the operator manages.
pub fn queue_attributes(queue_arn: &str, topic_arn: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("Policy".to_string(), queue_policy(queue_arn, topic_arn).to_string()),
        ("MessageRetentionPeriod".to_string(), RETENTION_SECONDS.to_string()),
    ])
}

/// Attributes whose observed value differs; policies compare as JSON.
pub fn differing(desired: &BTreeMap<String, String>, observed: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    desired
        .iter()
        .filter(|(k, v)| {
            let seen = observed.get(*k);
            if k.as_str() == "Policy" {
                let parse = |s: &str| serde_json::from_str::<Value>(s).ok();
                seen.and_then(|s| parse(s)) != parse(v)
            } else {
                seen != Some(*v)
            }
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The event destination every set of a streaming account carries.
pub fn destination(topic_arn: &str) -> Destination {
    Destination {
        name: DESTINATION_NAME.to_string(),
        enabled: true,
        event_types: EVENT_TYPES.into_iter().collect::<BTreeSet<_>>(),
        target: Target::Sns {
            topic_arn: topic_arn.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_short_and_per_cluster() {
        let a = resource_name("prod//default", "default");
        assert_eq!(a, resource_name("prod//default", "default"));
        assert_ne!(a, resource_name("staging//default", "default"));
        assert!(a.starts_with("sro-events-default-"));
        let long = resource_name("c//x", &"a.b".repeat(100));
        assert!(long.len() <= 80 && !long.contains('.'), "{long}");
    }

    #[test]
    fn policies_compare_as_json() {
        let want = queue_attributes("arn:q", "arn:t");
        let mut seen = want.clone();
        let reformatted: Value = serde_json::from_str(&want["Policy"]).expect("json");
        seen.insert(
            "Policy".into(),
            serde_json::to_string_pretty(&reformatted).expect("json"),
        );
        assert!(differing(&want, &seen).is_empty());
        seen.insert("Policy".into(), queue_policy("arn:q", "arn:other").to_string());
        assert_eq!(differing(&want, &seen).keys().collect::<Vec<_>>(), ["Policy"]);
    }

    #[test]
    fn the_topic_accepts_only_this_accounts_sets() {
        let p = topic_policy(
            "arn:t",
            "123456789012",
            "arn:aws:ses:eu-west-1:123456789012:configuration-set/*",
        );
        let cond = &p["Statement"][0]["Condition"];
        assert_eq!(cond["StringEquals"]["AWS:SourceAccount"], "123456789012");
        assert!(
            cond["ArnLike"]["AWS:SourceArn"]
                .as_str()
                .is_some_and(|a| a.contains(":configuration-set/"))
        );
    }
}
