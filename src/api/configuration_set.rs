//! `ConfigurationSet`: an SES v2 configuration set with every option group,
//! its tags, and the reputation it reports.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::DeletionPolicy;

/// An Amazon SES v2 configuration set.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ses.reputation.io",
    version = "v1alpha1",
    kind = "ConfigurationSet",
    namespaced,
    shortname = "sescs",
    category = "ses",
    status = "ConfigurationSetStatus",
    doc = "An Amazon SES v2 configuration set kept in sync with this spec.",
    printcolumn(name = "AWS Name", type_ = "string", json_path = ".status.awsName"),
    printcolumn(name = "Sending", type_ = "string", json_path = ".status.conditions[?(@.type==\"SendingEnabled\")].status"),
    printcolumn(name = "Bounce", type_ = "string", json_path = ".status.reputation.bounceRatePercent"),
    printcolumn(name = "Complaint", type_ = "string", json_path = ".status.reputation.complaintRatePercent"),
    printcolumn(name = "Live bounce", type_ = "string", json_path = ".status.reputation.live.bounceRatePercent"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("(has(self.spec.name) ? self.spec.name : self.metadata.name) == (has(oldSelf.spec.name) ? oldSelf.spec.name : oldSelf.metadata.name)").message("spec.name is immutable (it defaults to metadata.name): it is the configuration set's name in AWS"),
    validation = Rule::new("(has(self.spec.accountRef) ? self.spec.accountRef : '') == (has(oldSelf.spec.accountRef) ? oldSelf.spec.accountRef : '')").message("spec.accountRef is immutable (it cannot be added or removed either): create a new ConfigurationSet for another account"),
    validation = Rule::new("has(self.spec.name) || self.metadata.name.matches('^[A-Za-z0-9_-]{1,64}$')").message("metadata.name is not a valid SES configuration set name (1-64 of A-Z a-z 0-9 _ -): set spec.name")
)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationSetSpec {
    /// Name of the configuration set in AWS: 1-64 letters, digits, `_` or
    /// `-`. Defaults to metadata.name. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]{1,64}$"), length(min = 1, max = 64))]
    pub name: Option<String>,
    /// SesAccount (cluster-scoped; a DNS subdomain name) to create the set in.
    /// Defaults to the operator's `--default-account`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub account_ref: Option<String>,
    /// Sending options.
    #[serde(default)]
    pub sending: SendingSpec,
    /// Reputation metrics options. On by default: per-set bounce and
    /// complaint rates in CloudWatch need them.
    #[serde(default)]
    pub reputation_metrics: ReputationMetricsSpec,
    /// Suppression list options. Omitted: the account-level suppression
    /// settings apply and the operator leaves the set's override alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppression: Option<SuppressionSpec>,
    /// Open and click tracking options. Omitted: not managed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking: Option<TrackingSpec>,
    /// Delivery options. Omitted: not managed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliverySpec>,
    /// Virtual Deliverability Manager options. Omitted: not managed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vdm: Option<VdmSpec>,
    /// SES Auto Validation for mail through this set (the set's
    /// SuppressionOptions.ValidationOptions): overrides the account's.
    /// Omitted: not managed (the account's setting applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_validation: Option<AutoValidationSpec>,
    /// AWS tags on the configuration set (at most 49: SES allows 50 and the
    /// operator uses one to mark ownership).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    // SES's tag rules: letters, digits, spaces and _ . : / = + - @. The
    // bounds come first so the key check stays inside the CEL cost budget.
    #[schemars(extend(
        "maxProperties" = 49,
        "additionalProperties" = {"type": "string", "maxLength": 256, "pattern": "^[\\p{L}\\p{Z}\\p{N}_.:/=+@-]*$"}
    ))]
    #[x_kube(validation = Rule::new("self.all(k, k.matches(r'^[\\p{L}\\p{Z}\\p{N}_.:/=+@-]+$'))").message("tag keys may contain only letters, digits, spaces and _ . : / = + - @"))]
    #[x_kube(validation = Rule::new("self.all(k, !k.startsWith('aws:') && !k.startsWith('ses.reputation.io/') && k.size() <= 128)").message("tag keys must be at most 128 characters and must not start with 'aws:' or 'ses.reputation.io/'"))]
    pub tags: BTreeMap<String, String>,
    /// What happens in AWS when this object is deleted. Omitted: Delete
    /// for a set this object created, Retain for one it adopted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
    /// Take over an existing configuration set of the same name that no
    /// operator owns (no `ses.reputation.io/owner` tag), where the
    /// SesAccount's `spec.adoption` allows this namespace. Its tags are
    /// kept (and left unmanaged) beside the spec's. Without it such a set
    /// is left untouched and this object goes Stalled with reason
    /// AlreadyExists.
    #[serde(default)]
    pub adopt: bool,
}

impl ConfigurationSet {
    /// The deletion policy in force: adopted sets are retained unless the
    /// spec says otherwise, since the operator did not make them.
    pub fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy.unwrap_or_else(|| {
            if self.status.as_ref().is_some_and(|s| s.adoption.is_some()) {
                DeletionPolicy::Retain
            } else {
                DeletionPolicy::Delete
            }
        })
    }
}

/// Whether the configuration set may send email.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SendingSpec {
    /// Send email through this set. A ReputationPolicy may pause sending
    /// regardless of this field; see status.conditions SendingEnabled.
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for SendingSpec {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// Reputation metrics of the configuration set.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReputationMetricsSpec {
    /// Publish per-set bounce and complaint rates to CloudWatch.
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for ReputationMetricsSpec {
    fn default() -> Self {
        Self { enabled: true }
    }
}

fn yes() -> bool {
    true
}

/// Reasons for which recipients are added to the account suppression list.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SuppressionSpec {
    /// BOUNCE, COMPLAINT, both, or none (`[]` turns automatic suppression off).
    #[serde(default)]
    #[schemars(length(max = 2))]
    #[x_kube(validation = Rule::new("self.all(x, self.exists_one(y, x == y))").message("suppression reasons must not repeat"))]
    pub reasons: Vec<SuppressionReason>,
}

#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SuppressionReason {
    Bounce,
    Complaint,
}

/// SES Auto Validation: SES suppresses mail to addresses it judges invalid
/// (malformed, unknown mailbox, disposable, ...) with at least the given
/// confidence, instead of letting them bounce.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.enabled || !has(self.confidenceThreshold)").message("autoValidation.confidenceThreshold applies only while autoValidation.enabled is true"))]
pub struct AutoValidationSpec {
    /// Turn Auto Validation on (ENABLED) or off (DISABLED).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How sure SES must be that an address is invalid before it
    /// suppresses it: MEDIUM suppresses more, HIGH less, MANAGED lets SES
    /// choose. Omitted: not managed (SES's default is MANAGED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence_threshold: Option<ConfidenceThreshold>,
}

#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConfidenceThreshold {
    Medium,
    High,
    Managed,
}

/// Open and click tracking.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrackingSpec {
    /// Domain used in tracked links instead of the SES one.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^([A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63}$")
    )]
    pub custom_redirect_domain: String,
    /// Whether tracked links use HTTPS. Defaults to OPTIONAL as in SES.
    #[serde(default)]
    pub https_policy: HttpsPolicy,
}

#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HttpsPolicy {
    Require,
    RequireOpenOnly,
    #[default]
    Optional,
}

/// Delivery options.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeliverySpec {
    /// REQUIRE: deliver only over TLS. OPTIONAL (default): TLS when possible.
    #[serde(default)]
    pub tls_policy: TlsPolicy,
    /// Dedicated IP pool to send from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub sending_pool_name: Option<String>,
    /// Maximum time SES keeps retrying delivery, in seconds (300-50400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 300, max = 50400))]
    pub max_delivery_seconds: Option<i64>,
}

#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TlsPolicy {
    Require,
    #[default]
    Optional,
}

/// Virtual Deliverability Manager options.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VdmSpec {
    /// Engagement metrics on the VDM dashboard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engagement_metrics: Option<Feature>,
    /// Optimized shared delivery (Guardian).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimized_shared_delivery: Option<Feature>,
}

#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Feature {
    Enabled,
    Disabled,
}

/// Observed state of a configuration set.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationSetStatus {
    /// Generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling, Stalled (kstatus) and SendingEnabled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Name of the set in AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_name: Option<String>,
    /// ARN of the set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// The SES tenant the set belongs to (SesAccount spec.tenants): what
    /// applications pass as `TenantName` to SendEmail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The tenant this set's pause disabled (ReputationPolicy
    /// actions.pauseTenant), reinstated on resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_paused: Option<String>,
    /// SesAccount the set lives in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Bounce and complaint rates, once measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reputation: Option<Reputation>,
    /// Set while a ReputationPolicy keeps sending paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<PauseStatus>,
    /// When sending was last resumed after a pause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_at: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    /// After the last resume: when the rate was first seen below the pause
    /// point again. Until then the rate is taken for the one the set was
    /// resumed at (AWS's rates trail) and does not pause it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rearmed_at: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    /// Option groups the spec leaves out (suppression, tracking, delivery,
    /// vdm): AWS keeps whatever they are set to and drift is not corrected.
    /// Removing a group from the spec releases it; it does not reset it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmanaged_options: Vec<String>,
    /// Set when this object adopted a set it did not create; recorded
    /// before the first write to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adoption: Option<Adoption>,
    /// EmailIdentities (same namespace) that use this set as their default:
    /// all mail from them is measured here. The set is not deleted while
    /// any remain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<String>,
    /// Name of the operator-owned event destination that feeds the
    /// SesAccount's event stream, recorded before it is created: the
    /// operator changes or deletes only a destination it claimed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_destination: Option<String>,
}

/// An adopted configuration set.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Adoption {
    pub since: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
    /// Tag keys the set carried when adopted: kept as they are in AWS
    /// (unless the spec sets them) and left there on deletion.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept_tags: Vec<String>,
}

/// Who paused sending, why and since when.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PauseStatus {
    /// The ReputationPolicy that paused the set.
    pub policy: String,
    /// The rate and threshold that caused it.
    pub reason: String,
    pub since: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
    /// Since when both rates have been below warning (auto-resume clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_since: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    /// A `ses.reputation.io/resume-at` value that was refused because it
    /// lies in the future (set the current time to resume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_resume_at: Option<String>,
}

/// Reputation of a configuration set as CloudWatch reports it.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Reputation {
    /// Bounce rate as a fraction (0-1), as a string to keep precision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounce_rate: Option<String>,
    /// Bounce rate in percent, for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounce_rate_percent: Option<String>,
    /// Complaint rate as a fraction (0-1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complaint_rate: Option<String>,
    /// Complaint rate in percent, for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complaint_rate_percent: Option<String>,
    /// Time of the newest CloudWatch datapoint the rates come from. While
    /// the rates and level stay the same it moves at most every 10 minutes,
    /// so unchanged rates cause no status writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    /// Healthy, Warning, Critical or Unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// Where the thresholds come from: ReputationPolicy names, or `AWS`
    /// (AWS's own review levels) when no policy selects the set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds_from: Option<String>,
    /// Which source drove the level: `CloudWatch`, or `Events` when the
    /// live rate (ReputationPolicy `spec.breaker`) is worse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Rates counted from the SES event stream (SesAccount
    /// `spec.eventStream`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveReputation>,
}

/// Live counts over a sliding window of the SES event stream.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LiveReputation {
    /// The window, e.g. `15m` (the breaker's, else 15m).
    pub window: String,
    pub sends: i64,
    /// Bounces with `bounceType: Permanent` (what AWS's bounce rate counts).
    pub hard_bounces: i64,
    /// Transient and undetermined bounces (not in the rate).
    pub soft_bounces: i64,
    pub complaints: i64,
    /// Hard bounces / sends, as a fraction; absent without sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounce_rate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounce_rate_percent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complaint_rate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complaint_rate_percent: Option<String>,
    /// Since when this operator instance has been counting (a restart or
    /// failover starts empty).
    pub since: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
    /// The window is longer than the time counted so far.
    #[serde(default)]
    pub warming_up: bool,
    /// Bounce sub-types in the window, most first (at most 3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_bounce_sub_types: Vec<NamedCount>,
    /// Recipient domains by hard bounces, most first (at most 3;
    /// approximate counts). Addresses are never recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_hard_bounce_domains: Vec<NamedCount>,
}

#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NamedCount {
    pub name: String,
    pub count: i64,
}

impl ConfigurationSet {
    /// The configuration set's name in AWS.
    pub fn aws_name(&self) -> String {
        self.spec
            .name
            .clone()
            .unwrap_or_else(|| kube::ResourceExt::name_any(self))
    }
}
