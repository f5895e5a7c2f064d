//! `ReputationPolicy`: bounce and complaint thresholds for the
//! ConfigurationSets its selector picks, and what to do when they are crossed.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::event_destination::LocalRef;

/// Alert thresholds and actions for a group of configuration sets.
// Each `printcolumn(type_ = ...)` repeats its keys by design.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ses.reputation.io",
    version = "v1alpha1",
    kind = "ReputationPolicy",
    namespaced,
    shortname = "sesrp",
    category = "ses",
    status = "ReputationPolicyStatus",
    doc = "Bounce and complaint thresholds for the ConfigurationSets its selector picks.",
    printcolumn(name = "Bounce warn", type_ = "number", json_path = ".spec.bounceRate.warning"),
    printcolumn(name = "Bounce crit", type_ = "number", json_path = ".spec.bounceRate.critical"),
    printcolumn(name = "Pause", type_ = "boolean", json_path = ".spec.actions.pauseSending"),
    printcolumn(name = "Sets", type_ = "integer", json_path = ".status.coveredCount"),
    printcolumn(name = "Breaching", type_ = "integer", json_path = ".status.breachingCount"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct ReputationPolicySpec {
    /// Which ConfigurationSets in this namespace the policy covers (by
    /// label). An empty selector covers every set in the namespace.
    #[serde(default)]
    pub selector: LabelSelector,
    /// Bounce rate thresholds (fractions: 0.05 is 5%). Defaults stay below
    /// the 5% at which AWS reviews an account.
    #[serde(default = "Thresholds::bounce_default")]
    pub bounce_rate: Thresholds,
    /// Complaint rate thresholds (fractions: 0.001 is 0.1%). Defaults stay
    /// below the 0.1% at which AWS reviews an account.
    #[serde(default = "Thresholds::complaint_default")]
    pub complaint_rate: Thresholds,
    /// What to do when a set crosses a threshold.
    #[serde(default)]
    pub actions: Actions,
    /// The live source: rates counted from the SES event stream (the
    /// SesAccount needs `spec.eventStream.enabled`). When the hard-bounce
    /// or complaint rate over `window`, with at least `minimumSends` sends,
    /// reaches a threshold, the set's level follows it (the worse of
    /// CloudWatch and live), so a spike pauses within seconds instead of
    /// when CloudWatch catches up. Omitted: CloudWatch only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<Breaker>,
    /// AWS's own findings (SES recommendations) about the identities that
    /// send through a selected set (their default configuration set): a
    /// HIGH-impact open finding counts as this level, like a rate at that
    /// threshold (Critical pauses, with pauseSending). Omitted: findings
    /// are shown on the identities and never judge a set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub findings: Option<FindingsPolicy>,
}

/// How a policy weighs AWS's findings.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FindingsPolicy {
    /// The level a HIGH-impact open finding counts as: Warning or Critical.
    pub treat_high_as: FindingLevel,
}

#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FindingLevel {
    Warning,
    Critical,
}

/// The live breaker of a policy.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Breaker {
    /// Sliding window, as a duration (`5m`, `15m`, `1h`; 1m to 24h).
    #[serde(default = "Breaker::default_window")]
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+(s|m|h))+$')").message("breaker.window must be a duration like 5m, 15m or 1h"))]
    #[x_kube(validation = Rule::new("!self.matches('^([0-9]+(s|m|h))+$') || (duration(self) >= duration('1m') && duration(self) <= duration('24h'))").message("breaker.window must be from 1m to 24h (the live windows keep 24 hours)"))]
    pub window: String,
    /// Fewer sends than this in the window: the live rate does not judge
    /// (a handful of mails says nothing).
    #[serde(default = "Breaker::default_minimum_sends")]
    #[schemars(range(min = 1))]
    pub minimum_sends: u32,
}

impl Breaker {
    fn default_window() -> String {
        "15m".into()
    }

    fn default_minimum_sends() -> u32 {
        100
    }
}

/// A warning and a critical level, as fractions between 0 and 1.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.warning <= self.critical").message("warning must not be above critical"))]
pub struct Thresholds {
    /// Level at which the set is reported Warning.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub warning: f64,
    /// Level at which the set is reported Critical (and paused, if asked).
    #[schemars(range(min = 0.0, max = 1.0))]
    pub critical: f64,
}

impl Thresholds {
    pub fn bounce_default() -> Self {
        Self {
            warning: 0.025,
            critical: 0.05,
        }
    }

    pub fn complaint_default() -> Self {
        Self {
            warning: 0.0005,
            critical: 0.001,
        }
    }
}

/// Actions taken on level changes.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!self.pauseTenant || self.pauseSending").message("actions.pauseTenant pauses the tenant together with the set: set actions.pauseSending to true as well"))]
pub struct Actions {
    /// Pause sending (PutConfigurationSetSendingOptions false) when a set
    /// reaches Critical. Resume with
    /// `kubectl annotate sescs NAME ses.reputation.io/resume-at=$(date -u +%Y-%m-%dT%H:%M:%SZ) --overwrite`
    /// or `autoResume`.
    #[serde(default)]
    pub pause_sending: bool,
    /// With pauseSending: also disable the namespace's SES tenant
    /// (SesAccount spec.tenants; customer-managed status DISABLED), so
    /// SES refuses mail sent with that TenantName through any set, and
    /// reinstate it (REINSTATED) on resume once no set of the namespace is
    /// still paused this way.
    #[serde(default)]
    pub pause_tenant: bool,
    /// Resume a paused set automatically once both rates stayed below
    /// warning for this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_resume: Option<AutoResume>,
    /// Publish a JSON alert to SNS on every level change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AutoResume {
    /// Quiet period, as a Go-style duration (`90s`, `30m`, `2h`).
    #[x_kube(validation = Rule::new("self.matches('^([0-9]+(s|m|h))+$')").message("autoResume.after must be a duration like 90s, 30m or 2h"))]
    pub after: String,
}

/// Where alerts go: a topic ARN, or the topic of an EventDestination.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.topicArn) != has(self.eventDestinationRef)").message("notify needs exactly one of topicArn or eventDestinationRef"))]
pub struct Notify {
    /// SNS topic ARN to publish alerts to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$"))]
    pub topic_arn: Option<String>,
    /// An EventDestination in this namespace whose SNS topic receives alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_destination_ref: Option<LocalRef>,
}

/// Observed state of a policy.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReputationPolicyStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready (the policy is valid and evaluated).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// ConfigurationSets (names) the selector picks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub covered: Vec<String>,
    pub covered_count: i64,
    /// Covered sets at Warning or Critical.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breaching: Vec<Breach>,
    pub breaching_count: i64,
    /// When the covered sets' rates were last evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_evaluation_time: Option<Time>,
}

/// One covered set above warning.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Breach {
    pub configuration_set: String,
    /// Warning or Critical.
    pub level: String,
    /// Which metric breaches and by how much, e.g. `bounce 6.00% >= 5.00%`.
    pub detail: String,
}

/// AWS's own levels: review at 5% bounces / 0.1% complaints, pause at
/// 10% / 0.5%. They apply when no policy selects a set.
pub const AWS_BOUNCE: Thresholds = Thresholds {
    warning: 0.05,
    critical: 0.10,
};
pub const AWS_COMPLAINT: Thresholds = Thresholds {
    warning: 0.001,
    critical: 0.005,
};
