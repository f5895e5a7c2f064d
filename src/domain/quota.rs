//! The SES sending quota judged against an SesAccount's thresholds: the
//! `QuotaHealthy` condition, the Event and the SNS alert when its level
//! moves. Pure: the quota GetAccount read and the time come in as values.

use kube::runtime::events::EventType;
use serde_json::json;

use crate::api::account::{QuotaSpec, SendQuota};
use crate::api::conditions::Desired;

/// Condition type on an SesAccount.
pub const QUOTA_HEALTHY: &str = "QuotaHealthy";

/// How much of the 24-hour quota is used, against the thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaLevel {
    Healthy,
    Warning,
    Critical,
    /// AWS reports no quota (0, or -1: unlimited): nothing to judge.
    Unknown,
}

impl QuotaLevel {
    /// The condition's reason, also what an earlier status is read back by.
    pub fn reason(self) -> &'static str {
        match self {
            QuotaLevel::Healthy => "Healthy",
            QuotaLevel::Warning => "Warning",
            QuotaLevel::Critical => "Critical",
            QuotaLevel::Unknown => "NoQuota",
        }
    }

    fn from_reason(reason: &str) -> Option<Self> {
        [
            QuotaLevel::Healthy,
            QuotaLevel::Warning,
            QuotaLevel::Critical,
            QuotaLevel::Unknown,
        ]
        .into_iter()
        .find(|l| l.reason() == reason)
    }
}

/// The share of `max24HourSend` sent in the last 24 hours; `None` when AWS
/// reports no positive quota.
pub fn used(quota: &SendQuota) -> Option<f64> {
    (quota.max24_hour_send > 0.0).then(|| quota.sent_last24_hours / quota.max24_hour_send)
}

/// The level of `quota` under `spec`'s thresholds (at or above a threshold
/// is that level).
pub fn level(quota: &SendQuota, spec: &QuotaSpec) -> QuotaLevel {
    match used(quota) {
        None => QuotaLevel::Unknown,
        Some(u) if u >= spec.critical => QuotaLevel::Critical,
        Some(u) if u >= spec.warning => QuotaLevel::Warning,
        Some(_) => QuotaLevel::Healthy,
    }
}

/// `QuotaHealthy`: True while under the warning threshold, False at
/// Warning or Critical, Unknown without a quota.
pub fn condition(quota: &SendQuota, spec: &QuotaSpec) -> Desired {
    let level = level(quota, spec);
    let sent = format!(
        "{} of {} messages sent in the last 24 hours",
        quota.sent_last24_hours, quota.max24_hour_send
    );
    let percent = |f: f64| format!("{:.1}%", f * 100.0);
    let used = used(quota).unwrap_or(0.0);
    match level {
        QuotaLevel::Healthy => Desired::new(
            QUOTA_HEALTHY,
            true,
            level.reason(),
            format!("{sent} ({}, warning at {})", percent(used), percent(spec.warning)),
        ),
        QuotaLevel::Warning => Desired::new(
            QUOTA_HEALTHY,
            false,
            level.reason(),
            format!(
                "{sent} ({}, at or above the warning threshold {}): SES refuses mail once the quota is used up",
                percent(used),
                percent(spec.warning)
            ),
        ),
        QuotaLevel::Critical => Desired::new(
            QUOTA_HEALTHY,
            false,
            level.reason(),
            format!(
                "{sent} ({}, at or above the critical threshold {}): SES refuses mail once the quota is used up; ask AWS for a higher quota",
                percent(used),
                percent(spec.critical)
            ),
        ),
        QuotaLevel::Unknown => Desired::tri(
            QUOTA_HEALTHY,
            None,
            level.reason(),
            "AWS reports no 24-hour sending quota for this account",
        ),
    }
}

/// The level an earlier status recorded (`None`: never judged).
pub fn previous_level(conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]) -> Option<QuotaLevel> {
    conditions
        .iter()
        .find(|c| c.type_ == QUOTA_HEALTHY)
        .and_then(|c| QuotaLevel::from_reason(&c.reason))
}

/// The Event for a move from `previous` to `now`: Warning when it gets
/// worse (also on the first judgement, when that is not Healthy), Normal
/// when it is back to Healthy; nothing otherwise.
pub fn transition(previous: Option<QuotaLevel>, now: QuotaLevel) -> Option<(EventType, &'static str)> {
    if previous == Some(now) || now == QuotaLevel::Unknown {
        return None;
    }
    match now {
        QuotaLevel::Warning => Some((EventType::Warning, "QuotaWarning")),
        QuotaLevel::Critical => Some((EventType::Warning, "QuotaCritical")),
        QuotaLevel::Healthy if previous.is_some_and(|p| p != QuotaLevel::Unknown) => {
            Some((EventType::Normal, "QuotaHealthy"))
        }
        _ => None,
    }
}

/// The SNS alert for a level change (`spec.quota.notifyTopicArn`): subject
/// and JSON body, shaped like a ReputationPolicy's alert.
pub fn alert(
    account: &str,
    quota: &SendQuota,
    spec: &QuotaSpec,
    previous: Option<QuotaLevel>,
    now: jiff::Timestamp,
) -> (String, String) {
    let level = level(quota, spec);
    let threshold = match level {
        QuotaLevel::Critical => spec.critical,
        _ => spec.warning,
    };
    let body = json!({
        "kind": "SesQuotaAlert",
        "version": 1,
        "sesAccount": account,
        "max24HourSend": quota.max24_hour_send,
        "sentLast24Hours": quota.sent_last24_hours,
        "used": used(quota),
        "threshold": threshold,
        "level": level.reason(),
        "previousLevel": previous.map(QuotaLevel::reason),
        "time": now.to_string(),
    });
    (
        format!("SES sending quota {}: {account}", level.reason()),
        body.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(sent: f64) -> SendQuota {
        SendQuota {
            max24_hour_send: 50_000.0,
            max_send_rate: 14.0,
            sent_last24_hours: sent,
        }
    }

    fn spec() -> QuotaSpec {
        serde_json::from_value(json!({})).expect("defaults")
    }

    #[test]
    fn defaults_warn_at_80_percent_and_are_critical_at_95() {
        let s = spec();
        assert_eq!(level(&quota(39_999.0), &s), QuotaLevel::Healthy);
        assert_eq!(level(&quota(40_000.0), &s), QuotaLevel::Warning);
        assert_eq!(level(&quota(42_500.0), &s), QuotaLevel::Warning);
        assert_eq!(level(&quota(48_000.0), &s), QuotaLevel::Critical);
        let unlimited = SendQuota {
            max24_hour_send: -1.0,
            ..quota(10.0)
        };
        assert_eq!(level(&unlimited, &s), QuotaLevel::Unknown);
    }

    #[test]
    fn the_condition_says_how_much_is_used() {
        let c = condition(&quota(42_500.0), &spec());
        assert_eq!((c.status, c.reason.as_str()), (Some(false), "Warning"));
        assert!(c.message.contains("85.0%"), "{}", c.message);
        let c = condition(&quota(100.0), &spec());
        assert_eq!((c.status, c.reason.as_str()), (Some(true), "Healthy"));
    }

    #[test]
    fn events_mark_moves_not_levels() {
        use QuotaLevel::*;
        assert_eq!(transition(None, Healthy), None);
        assert_eq!(transition(None, Warning), Some((EventType::Warning, "QuotaWarning")));
        assert_eq!(transition(Some(Warning), Warning), None);
        assert_eq!(
            transition(Some(Warning), Critical),
            Some((EventType::Warning, "QuotaCritical"))
        );
        assert_eq!(
            transition(Some(Critical), Healthy),
            Some((EventType::Normal, "QuotaHealthy"))
        );
        // Going down from Critical to Warning is still a warning worth telling.
        assert_eq!(
            transition(Some(Critical), Warning),
            Some((EventType::Warning, "QuotaWarning"))
        );
        assert_eq!(transition(Some(Unknown), Healthy), None);
        assert_eq!(transition(Some(Healthy), Unknown), None);
    }

    #[test]
    fn the_level_is_read_back_from_the_condition_reason() {
        let c = k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
            type_: QUOTA_HEALTHY.into(),
            status: "False".into(),
            reason: "Critical".into(),
            message: String::new(),
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
            observed_generation: None,
        };
        assert_eq!(previous_level(&[c]), Some(QuotaLevel::Critical));
        assert_eq!(previous_level(&[]), None);
    }

    #[test]
    fn the_alert_names_the_account_the_level_and_the_numbers() {
        let now: jiff::Timestamp = "2026-12-08T00:00:00Z".parse().expect("time");
        let (subject, body) = alert("prod", &quota(48_000.0), &spec(), Some(QuotaLevel::Warning), now);
        assert_eq!(subject, "SES sending quota Critical: prod");
        let body: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(body["kind"], "SesQuotaAlert");
        assert_eq!(body["level"], "Critical");
        assert_eq!(body["previousLevel"], "Warning");
        assert_eq!(body["threshold"], 0.95);
        assert_eq!(body["used"], 0.96);
    }
}
