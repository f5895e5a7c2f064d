//! Whether an SNS topic's access policy lets SES publish one configuration
//! set's events: the check behind `Stalled TopicPolicyDeniesSes` for a
//! destination naming an existing topic (`sns.topicArn`). SNS drops what
//! SES may not publish without telling anyone, so a destination to such a
//! topic would show Ready while nothing arrives. Pure.
//!
//! This evaluates the subset of IAM policy grammar topic policies use for
//! service principals: Allow/Deny statements, `Principal` (`*`, `AWS: *`,
//! `Service`), `Action` and `Resource` with `*` and `?` wildcards, and the
//! string and ARN condition operators (with `IfExists`) on the keys SES
//! sets when it publishes (`aws:SourceAccount`, `aws:SourceArn`). A
//! condition on any other key does not hold (SES does not send it), so
//! the topic's default policy (`AWS:SourceOwner`) does not admit SES, as
//! on AWS. Anything it cannot read counts as not admitting.

use serde_json::Value;

const SES: &str = "ses.amazonaws.com";

/// The request SES makes when it publishes a set's event.
pub struct Publish<'a> {
    pub topic_arn: &'a str,
    pub source_account: &'a str,
    pub source_arn: &'a str,
}

/// `Ok` when the policy lets SES publish this request; otherwise why not.
pub fn ses_may_publish(policy: &str, request: &Publish<'_>) -> Result<(), String> {
    let policy: Value = serde_json::from_str(policy).map_err(|e| format!("the policy is not JSON ({e})"))?;
    let statements = match &policy["Statement"] {
        Value::Array(list) => list.clone(),
        one @ Value::Object(_) => vec![one.clone()],
        _ => return Err("the policy has no Statement".into()),
    };
    let mut allowed = false;
    for statement in &statements {
        if !applies(statement, request) {
            continue;
        }
        match statement["Effect"].as_str() {
            Some("Deny") => return Err(format!("statement {} denies it", sid(statement))),
            Some("Allow") => allowed = true,
            _ => {}
        }
    }
    if allowed {
        Ok(())
    } else {
        Err(format!(
            "no statement allows {SES} to sns:Publish with aws:SourceArn {} and aws:SourceAccount {}",
            request.source_arn, request.source_account
        ))
    }
}

fn sid(statement: &Value) -> String {
    statement["Sid"]
        .as_str()
        .map_or_else(|| "(no Sid)".into(), str::to_string)
}

/// Whether a statement covers this request (principal, action, resource,
/// conditions), whatever its effect.
fn applies(statement: &Value, request: &Publish<'_>) -> bool {
    let principal = match &statement["Principal"] {
        Value::String(s) => s == "*",
        Value::Object(p) => {
            strings(p.get("AWS").unwrap_or(&Value::Null)).contains(&"*")
                || strings(p.get("Service").unwrap_or(&Value::Null)).contains(&SES)
        }
        _ => false,
    };
    let action = strings(&statement["Action"])
        .iter()
        .any(|a| wildcard(&a.to_ascii_lowercase(), "sns:publish"));
    let resource = strings(&statement["Resource"])
        .iter()
        .any(|r| wildcard(r, request.topic_arn));
    principal && action && resource && conditions_hold(&statement["Condition"], request)
}

fn conditions_hold(conditions: &Value, request: &Publish<'_>) -> bool {
    let Some(operators) = conditions.as_object() else {
        return conditions.is_null();
    };
    operators.iter().all(|(operator, keys)| {
        let (operator, if_exists) = match operator.strip_suffix("IfExists") {
            Some(op) => (op, true),
            None => (operator.as_str(), false),
        };
        let Some(keys) = keys.as_object() else {
            return false;
        };
        keys.iter().all(|(key, wanted)| {
            let value = match key.to_ascii_lowercase().as_str() {
                "aws:sourceaccount" => Some(request.source_account),
                "aws:sourcearn" => Some(request.source_arn),
                _ => None,
            };
            let Some(value) = value else {
                return if_exists;
            };
            let wanted = strings(wanted);
            let matches = |like: bool| {
                wanted
                    .iter()
                    .any(|w| if like { wildcard(w, value) } else { *w == value })
            };
            match operator {
                "StringEquals" | "ArnEquals" => matches(false),
                "StringLike" | "ArnLike" => matches(true),
                "StringNotEquals" | "ArnNotEquals" => !matches(false),
                "StringNotLike" | "ArnNotLike" => !matches(true),
                "StringEqualsIgnoreCase" => wanted.iter().any(|w| w.eq_ignore_ascii_case(value)),
                _ => false,
            }
        })
    })
}

/// A string or a list of strings.
fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// IAM's `*` (any run) and `?` (any one character) matching.
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Iterative with one backtrack point: linear in practice, no recursion.
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::diff::{event_stream, topic};

    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:bounces";
    const SET: &str = "arn:aws:ses:us-east-1:123456789012:configuration-set/orders";
    const OTHER_SET: &str = "arn:aws:ses:us-east-1:123456789012:configuration-set/someone-else";

    fn publish(source_arn: &str) -> Publish<'_> {
        Publish {
            topic_arn: TOPIC,
            source_account: "123456789012",
            source_arn,
        }
    }

    #[test]
    fn the_policy_the_operator_writes_admits_its_set_only() {
        let policy = topic::access_policy(TOPIC, "123456789012", SET).to_string();
        assert_eq!(ses_may_publish(&policy, &publish(SET)), Ok(()));
        let refused = ses_may_publish(&policy, &publish(OTHER_SET)).expect_err("another set");
        assert!(refused.contains(OTHER_SET), "{refused}");
    }

    #[test]
    fn the_stream_policy_admits_every_set_of_the_account() {
        let pattern = "arn:aws:ses:us-east-1:123456789012:configuration-set/*";
        let policy = event_stream::topic_policy(TOPIC, "123456789012", pattern).to_string();
        assert_eq!(ses_may_publish(&policy, &publish(SET)), Ok(()));
        let foreign = Publish {
            source_account: "999999999999",
            ..publish("arn:aws:ses:us-east-1:999999999999:configuration-set/x")
        };
        assert!(ses_may_publish(&policy, &foreign).is_err());
    }

    #[test]
    fn the_default_topic_policy_does_not_admit_ses() {
        // What SNS gives a new topic: the owner's principals, by SourceOwner.
        let default = serde_json::json!({
            "Version": "2008-10-17",
            "Id": "__default_policy_ID",
            "Statement": [{
                "Sid": "__default_statement_ID",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["SNS:GetTopicAttributes", "SNS:Publish", "SNS:Subscribe"],
                "Resource": TOPIC,
                "Condition": {"StringEquals": {"AWS:SourceOwner": "123456789012"}}
            }]
        });
        assert!(ses_may_publish(&default.to_string(), &publish(SET)).is_err());
    }

    #[test]
    fn wildcards_denies_and_junk() {
        let open =
            serde_json::json!({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "sns:*", "Resource": "*"}});
        assert_eq!(ses_may_publish(&open.to_string(), &publish(SET)), Ok(()));
        let like = serde_json::json!({"Statement": [{
            "Effect": "Allow", "Principal": {"Service": ["sns.amazonaws.com", "ses.amazonaws.com"]},
            "Action": "SNS:Publish", "Resource": "arn:aws:sns:us-east-1:123456789012:bounce?",
            "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:ses:*:123456789012:configuration-set/ord*"}}
        }]});
        assert_eq!(ses_may_publish(&like.to_string(), &publish(SET)), Ok(()));
        assert!(ses_may_publish(&like.to_string(), &publish(OTHER_SET)).is_err());
        let mut denied = open.clone();
        denied["Statement"] = serde_json::json!([open["Statement"], {
            "Sid": "NoSes", "Effect": "Deny", "Principal": {"Service": "ses.amazonaws.com"},
            "Action": "sns:Publish", "Resource": TOPIC
        }]);
        let refused = ses_may_publish(&denied.to_string(), &publish(SET)).expect_err("denied");
        assert!(refused.contains("NoSes"), "{refused}");
        for junk in ["", "{}", "[]", r#"{"Statement": 3}"#] {
            assert!(ses_may_publish(junk, &publish(SET)).is_err(), "{junk}");
        }
        assert!(wildcard("a*b?c", "axxxbyc") && !wildcard("a*b?c", "axxxbc") && wildcard("*", ""));
    }
}
