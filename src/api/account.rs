//! `SesAccount`: one AWS account + region the operator may act in, and
//! which namespaces may use it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::configuration_set::{AutoValidationSpec, Reputation, SuppressionReason, SuppressionSpec};
use super::reputation_policy::Thresholds;

/// An AWS account and region in which ConfigurationSets and
/// EventDestinations are created.
// Each `printcolumn(type_ = ...)` repeats its keys by design.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ses.reputation.io",
    version = "v1alpha1",
    kind = "SesAccount",
    shortname = "sesacct",
    category = "ses",
    status = "SesAccountStatus",
    doc = "An AWS account and region that SES resources are managed in.",
    printcolumn(name = "Region", type_ = "string", json_path = ".spec.region"),
    printcolumn(name = "Account", type_ = "string", json_path = ".status.accountId"),
    printcolumn(name = "Enforcement", type_ = "string", json_path = ".status.enforcementStatus"),
    printcolumn(name = "Sending", type_ = "boolean", json_path = ".status.sendingEnabled"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("(has(self.spec.roleArn) ? self.spec.roleArn : '') == (has(oldSelf.spec.roleArn) ? oldSelf.spec.roleArn : '') && (has(self.spec.externalId) ? self.spec.externalId : '') == (has(oldSelf.spec.externalId) ? oldSelf.spec.externalId : '')").message("spec.roleArn and spec.externalId are immutable: the resources of this SesAccount live in the AWS account they lead to; create another SesAccount for another account")
)]
#[serde(rename_all = "camelCase")]
pub struct SesAccountSpec {
    /// AWS region of the SES endpoint, for example `eu-west-1`. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("region is immutable: create another SesAccount"))]
    #[schemars(regex(pattern = r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$"))]
    pub region: String,
    /// IAM role to assume (through STS, from the operator's own credentials:
    /// IRSA, EKS Pod Identity or environment). Empty: use those credentials
    /// directly. Immutable (changing it would move every set to another
    /// AWS account and orphan the old ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$"))]
    pub role_arn: Option<String>,
    /// External ID passed to AssumeRole, when the role's trust policy requires one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Namespaces whose resources may use this account. Empty selector
    /// (`{}`) allows every namespace; omitted allows every namespace too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_namespaces: Option<LabelSelector>,
    /// Account-level suppression list reasons (PutAccountSuppressionAttributes).
    /// Omitted: not managed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppression: Option<SuppressionSpec>,
    /// Account-level SES Auto Validation (the account's
    /// SuppressionAttributes.ValidationAttributes); a ConfigurationSet's
    /// spec.autoValidation overrides it for mail through that set.
    /// Omitted: not managed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_validation: Option<AutoValidationSpec>,
    /// Account-level thresholds for the BounceRateHealthy and
    /// ComplaintRateHealthy conditions. Defaults to AWS's own review
    /// levels (bounce 5% / 10%, complaint 0.1% / 0.5%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<AccountThresholds>,
    /// SES tenants: one per namespace that uses this account, holding that
    /// namespace's configuration sets and identities, so SES tracks and
    /// enforces their reputation apart from other teams'. Omitted: no
    /// tenants (and the ones the operator made are deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<TenantsSpec>,
    /// When to warn that the 24-hour sending quota is running out (SES
    /// refuses mail once it is used up, as surely as by a pause): the
    /// QuotaHealthy condition, an Event on each change and, with
    /// notifyTopicArn, an SNS alert. Omitted: warning at 80%, critical at 95%.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaSpec>,
    /// Last resort: pause sending for the WHOLE account
    /// (PutAccountSendingAttributes false) when an account-level rate is
    /// Critical. Off by default. The operator never turns account sending
    /// back on: resume with `aws sesv2 put-account-sending-attributes --sending-enabled`.
    #[serde(default)]
    pub pause_account_sending: bool,
    /// Where ReputationPolicy alerts may go in this account. A policy may
    /// always notify through an EventDestination whose topic the operator
    /// created in the policy's namespace; any other topic must be listed
    /// here, so that a tenant cannot make the operator publish to someone
    /// else's topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<NotifyPermissions>,
    /// Which namespaces may adopt configuration sets in this account that
    /// no operator owns (`spec.adopt`). Omitted: adoption is refused, so a
    /// tenant cannot take over a set Terraform or the console manages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adoption: Option<AdoptionPermissions>,
    /// The SES event stream of this account, for live rates and the
    /// breaker (ReputationPolicy `spec.breaker`): an operator-owned SNS
    /// topic, an SQS queue only that topic may send to, a raw-delivery
    /// subscription, and on every ConfigurationSet of the account an
    /// operator-owned event destination (one of SES's 10 per set).
    /// Off by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_stream: Option<EventStreamSpec>,
}

/// How namespaces map to SES tenants.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TenantsSpec {
    /// PerNamespace: one tenant per namespace (the only mode).
    #[serde(default)]
    pub mode: TenantMode,
    /// The SES-managed reputation policy of each tenant: `none` (SES never
    /// pauses it), `standard`, `strict` (SES pauses it sooner). Omitted:
    /// not managed (SES's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reputation_policy: Option<TenantReputationPolicy>,
}

#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TenantMode {
    #[default]
    PerNamespace,
}

#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TenantReputationPolicy {
    None,
    Standard,
    Strict,
}

impl TenantReputationPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantReputationPolicy::None => "none",
            TenantReputationPolicy::Standard => "standard",
            TenantReputationPolicy::Strict => "strict",
        }
    }
}

/// One namespace's SES tenant, as AWS reports it.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    pub namespace: String,
    /// What applications pass as `TenantName` to SendEmail.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// Whether mail with this TenantName goes out (SES's aggregate of the
    /// two statuses below): ENABLED or DISABLED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sending: Option<String>,
    /// SES's own verdict (SES-managed status) and its cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ses_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ses_cause: Option<String>,
    /// When SES last changed its status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ses_status_since: Option<String>,
    /// The customer-managed status (ENABLED, DISABLED, REINSTATED) and its cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_cause: Option<String>,
    /// When the customer-managed status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_status_since: Option<String>,
    /// LOW or HIGH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reputation_impact: Option<String>,
    /// The SES-managed reputation policy's ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Configuration sets and identities associated with it.
    #[serde(default)]
    pub resources: i64,
    /// Set when the tenant could not be made ours (a tenant of that name
    /// exists without this operator's owner tag): left untouched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Sending-quota thresholds, as fractions of `max24HourSend`.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.warning <= self.critical").message("quota.warning must not be above quota.critical"))]
pub struct QuotaSpec {
    /// Share of the quota at which QuotaHealthy turns False (Warning).
    #[serde(default = "quota_warning")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub warning: f64,
    /// Share of the quota at which the level is Critical.
    #[serde(default = "quota_critical")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub critical: f64,
    /// SNS topic for a JSON alert (`kind: SesQuotaAlert`) on each level
    /// change, published with the operator's credentials for this account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$"))]
    pub notify_topic_arn: Option<String>,
}

impl Default for QuotaSpec {
    fn default() -> Self {
        Self {
            warning: quota_warning(),
            critical: quota_critical(),
            notify_topic_arn: None,
        }
    }
}

fn quota_warning() -> f64 {
    0.8
}

fn quota_critical() -> f64 {
    0.95
}

/// Who may adopt unowned sets in an account.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AdoptionPermissions {
    /// Namespaces (by label) whose ConfigurationSets may adopt. `{}`
    /// allows every namespace the account allows.
    pub allowed_namespaces: LabelSelector,
}

/// The account's SES event stream.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EventStreamSpec {
    /// Create the stream (and delete it when turned off).
    #[serde(default)]
    pub enabled: bool,
    /// The account-level breaker: the live rate of all the account's sets
    /// over this window judges the account's BounceRateHealthy and
    /// ComplaintRateHealthy (and spec.pauseAccountSending) like the
    /// CloudWatch rate, once it has minimumSends. Omitted: the live rate is
    /// shown over 15 minutes, it does not judge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<super::reputation_policy::Breaker>,
}

impl SesAccountSpec {
    /// Whether the account asks for the event stream.
    pub fn event_stream_enabled(&self) -> bool {
        self.event_stream.as_ref().is_some_and(|s| s.enabled)
    }
}

/// The stream's AWS resources, once created.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EventStreamStatus {
    /// The SNS topic SES publishes the sets' events to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_arn: Option<String>,
    /// The SQS queue the operator reads them from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_arn: Option<String>,
}

/// Alert targets an SesAccount permits.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NotifyPermissions {
    /// SNS topic ARNs that namespaces may use besides the topics the
    /// operator made for their own EventDestinations: ReputationPolicy
    /// alerts (`actions.notify.topicArn`) and EventDestination
    /// `sns.topicArn`.
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub allowed_topic_arns: Vec<String>,
}

/// Account-level thresholds.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AccountThresholds {
    #[serde(default = "aws_bounce")]
    pub bounce_rate: Thresholds,
    #[serde(default = "aws_complaint")]
    pub complaint_rate: Thresholds,
}

fn aws_bounce() -> Thresholds {
    super::reputation_policy::AWS_BOUNCE
}

fn aws_complaint() -> Thresholds {
    super::reputation_policy::AWS_COMPLAINT
}

/// Observed state of an SES account.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SesAccountStatus {
    /// Generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling, Stalled and SendingEnabled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// This cluster's identity in the AWS ownership tag
    /// (`ses.reputation.io/owner=<identity>/<namespace>/<name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_identity: Option<String>,
    /// The 12-digit AWS account ID the credentials resolve to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// SES enforcement status as AWS reports it (HEALTHY, PROBATION, SHUTDOWN, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement_status: Option<String>,
    /// Whether the account may send email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sending_enabled: Option<bool>,
    /// Whether the account is out of the SES sandbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production_access_enabled: Option<bool>,
    /// Sending quota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_quota: Option<SendQuota>,
    /// Account-level suppression reasons as AWS reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed_reasons: Option<Vec<SuppressionReason>>,
    /// Account-level Auto Validation as AWS reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_validation: Option<AutoValidationStatus>,
    /// Account-level bounce and complaint rates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reputation: Option<Reputation>,
    /// When the operator paused the whole account (spec.pauseAccountSending).
    /// While set, it does not pause again: a resume by hand holds until the
    /// account-level rate is seen below Critical, which clears this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_sending_at: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    /// How often the objects in this account are compared with AWS: the
    /// configured drift interval, stretched when checking them all would
    /// take more than the drift share of the SES budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftStatus>,
    /// AWS's open findings in this account (ListRecommendations), counted
    /// by type and impact; each EmailIdentity shows its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub findings: Option<FindingsStatus>,
    /// The event stream's resources (spec.eventStream), while they exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_stream: Option<EventStreamStatus>,
    /// The SES tenant of each namespace that uses this account
    /// (spec.tenants), including ones left to delete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<TenantStatus>,
}

/// AWS's findings in an account.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FindingsStatus {
    /// Open findings by type and impact (none: nothing open).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open: Vec<FindingCount>,
}

/// How many open findings of one type and impact.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FindingCount {
    #[serde(rename = "type")]
    pub type_: String,
    pub impact: String,
    pub count: i64,
}

/// The drift-check schedule of an account.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DriftStatus {
    /// Seconds between two drift checks of one object, as in force.
    pub period_seconds: i64,
    /// The configured drift interval (`--drift-interval-seconds`).
    pub configured_seconds: i64,
    /// SES reads one drift round needs (sets, event destination lists,
    /// email identities, the account).
    pub checks_per_period: i64,
    /// SES calls per second drift checks may use (the drift share of the budget).
    pub calls_per_second: String,
}

/// Auto Validation as AWS holds it (a threshold may remain while it is
/// off, so this carries no admission rule).
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AutoValidationStatus {
    /// ENABLED in AWS.
    pub enabled: bool,
    /// AWS's confidence threshold (MEDIUM, HIGH, MANAGED), if reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence_threshold: Option<super::configuration_set::ConfidenceThreshold>,
}

/// SES sending limits of the account.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SendQuota {
    /// Messages allowed in 24 hours.
    pub max24_hour_send: f64,
    /// Messages allowed per second.
    pub max_send_rate: f64,
    /// Messages sent in the last 24 hours.
    pub sent_last24_hours: f64,
}

impl SesAccountSpec {
    /// Whether a namespace with these labels may use the account.
    pub fn allows(&self, namespace_labels: &std::collections::BTreeMap<String, String>) -> bool {
        match &self.allowed_namespaces {
            None => true,
            Some(selector) => selects(selector, namespace_labels),
        }
    }

    /// Whether a namespace with these labels may adopt unowned sets.
    pub fn allows_adoption(&self, namespace_labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.adoption
            .as_ref()
            .is_some_and(|a| selects(&a.allowed_namespaces, namespace_labels))
    }
}

/// A selector the apiserver accepted but kube cannot parse denies rather
/// than allows: failing closed keeps the account fenced.
fn selects(selector: &LabelSelector, labels: &std::collections::BTreeMap<String, String>) -> bool {
    kube::core::Selector::try_from(selector.clone()).is_ok_and(|s| kube::core::SelectorExt::matches(&s, labels))
}
