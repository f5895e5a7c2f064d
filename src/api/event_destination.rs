//! `EventDestination`: where SES publishes a configuration set's events
//! (SNS, CloudWatch or EventBridge), including an SNS topic the operator
//! creates and owns.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::DeletionPolicy;

/// An event destination of an SES configuration set.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ses.reputation.io",
    version = "v1alpha1",
    kind = "EventDestination",
    namespaced,
    shortname = "sesed",
    category = "ses",
    status = "EventDestinationStatus",
    doc = "An event destination of an SES configuration set.",
    printcolumn(name = "Set", type_ = "string", json_path = ".spec.configurationSetRef.name"),
    printcolumn(name = "Target", type_ = "string", json_path = ".status.target"),
    printcolumn(name = "Topic", type_ = "string", priority = 1, json_path = ".status.topicArn"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("(has(self.spec.sns) ? 1 : 0) + (has(self.spec.cloudWatch) ? 1 : 0) + (has(self.spec.eventBridge) ? 1 : 0) == 1").message("exactly one target must be set: sns, cloudWatch or eventBridge"),
    validation = Rule::new("self.spec.configurationSetRef == oldSelf.spec.configurationSetRef").message("spec.configurationSetRef is immutable"),
    validation = Rule::new("(has(self.spec.name) ? self.spec.name : self.metadata.name) == (has(oldSelf.spec.name) ? oldSelf.spec.name : oldSelf.metadata.name)").message("spec.name is immutable (it defaults to metadata.name): it is the destination's name in AWS"),
    validation = Rule::new("has(self.spec.name) || self.metadata.name.matches('^[A-Za-z0-9_-]{1,64}$')").message("metadata.name is not a valid SES event destination name (1-64 of A-Z a-z 0-9 _ -): set spec.name")
)]
#[serde(rename_all = "camelCase")]
pub struct EventDestinationSpec {
    /// The ConfigurationSet (same namespace) whose events go here. Immutable.
    pub configuration_set_ref: LocalRef,
    /// Name of the destination in AWS (1-64 letters, digits, `_`, `-`).
    /// Defaults to metadata.name. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]{1,64}$"))]
    pub name: Option<String>,
    /// Event types to publish. Defaults to BOUNCE and COMPLAINT.
    #[serde(default = "default_event_types")]
    #[schemars(length(min = 1, max = 10))]
    #[x_kube(validation = Rule::new("self.all(x, self.exists_one(y, x == y))").message("eventTypes must not repeat"))]
    pub event_types: Vec<EventType>,
    /// Publish events (false keeps the destination but pauses it).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Publish to an SNS topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sns: Option<SnsTarget>,
    /// Publish as CloudWatch metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_watch: Option<CloudWatchTarget>,
    /// Publish to an EventBridge event bus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_bridge: Option<EventBridgeTarget>,
    /// What happens in AWS when this object is deleted (the destination
    /// and a topic the operator created).
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

fn yes() -> bool {
    true
}

fn default_event_types() -> Vec<EventType> {
    vec![EventType::Bounce, EventType::Complaint]
}

/// Reference to an object in the same namespace.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct LocalRef {
    /// Name of the object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// SES event types.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    Send,
    Reject,
    Bounce,
    Complaint,
    Delivery,
    Open,
    Click,
    RenderingFailure,
    DeliveryDelay,
    Subscription,
}

/// An SNS target: an existing topic, or one the operator creates.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.topicArn) != has(self.topic)").message("sns needs exactly one of topicArn (an existing topic) or topic (one the operator creates)"))]
pub struct SnsTarget {
    /// ARN of an existing standard (non-FIFO) topic. Its access policy must
    /// let ses.amazonaws.com publish; the operator does not change it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$')").message("topicArn must be an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME); FIFO topics are not supported by SES"))]
    pub topic_arn: Option<String>,
    /// A topic the operator creates, owns and deletes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<TopicSpec>,
}

/// An SNS topic owned by the operator.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TopicSpec {
    /// Topic name (1-256 letters, digits, `_`, `-`; FIFO topics are not
    /// supported by SES). Defaults to `<configuration set>-<destination>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]{1,256}$"))]
    pub name: Option<String>,
    /// Display name used as the sender of SMS/email notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    pub display_name: Option<String>,
    /// KMS key ID or alias for server-side encryption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_master_key_id: Option<String>,
    /// Subscriptions the operator keeps on the topic (others are removed).
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub subscriptions: Vec<Subscription>,
}

/// A subscription to an operator-owned topic.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(self.protocol in ['email', 'email-json']) || self.endpoint.matches('^[^@ ]+@[^@ ]+$')").message("email subscriptions need an email address as endpoint"))]
#[x_kube(validation = Rule::new("self.protocol != 'https' || self.endpoint.startsWith('https://')").message("https subscriptions need an https:// URL as endpoint"))]
#[x_kube(validation = Rule::new("self.protocol != 'sqs' || self.endpoint.matches('^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:.+$')").message("sqs subscriptions need an SQS queue ARN as endpoint"))]
#[x_kube(validation = Rule::new("self.protocol != 'lambda' || self.endpoint.matches('^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:.+$')").message("lambda subscriptions need a Lambda function ARN as endpoint"))]
#[x_kube(validation = Rule::new("!has(self.rawMessageDelivery) || !self.rawMessageDelivery || self.protocol in ['sqs', 'https']").message("rawMessageDelivery is only valid for sqs and https subscriptions"))]
pub struct Subscription {
    /// email, email-json, https, sqs or lambda.
    pub protocol: Protocol,
    /// Address, URL or ARN, depending on the protocol.
    #[schemars(length(min = 1, max = 2048))]
    pub endpoint: String,
    /// Deliver the raw SES JSON instead of the SNS envelope (sqs, https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_message_delivery: Option<bool>,
    /// SNS filter policy (a JSON object), applied to message attributes.
    /// Removing it removes the policy in AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // A pattern, not CEL: a CEL regex over 100 policies of 256 KiB is
    // beyond the CRD cost budget. The operator parses the JSON itself.
    #[schemars(length(min = 2, max = 262144), extend("pattern" = "^(?s)[[:space:]]*[{].*[}][[:space:]]*$"))]
    pub filter_policy: Option<String>,
}

#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    Email,
    EmailJson,
    Https,
    Sqs,
    Lambda,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Email => "email",
            Protocol::EmailJson => "email-json",
            Protocol::Https => "https",
            Protocol::Sqs => "sqs",
            Protocol::Lambda => "lambda",
        }
    }
}

/// CloudWatch target: dimensions of the published metrics.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CloudWatchTarget {
    /// Dimension configurations (at least one).
    #[schemars(length(min = 1, max = 10))]
    pub dimensions: Vec<CloudWatchDimension>,
}

#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CloudWatchDimension {
    /// Dimension name.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_:-]{1,256}$"))]
    pub name: String,
    /// Where the value comes from.
    pub source: DimensionSource,
    /// Value when the message carries none.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_@.-]{1,256}$"))]
    pub default_value: String,
}

#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DimensionSource {
    MessageTag,
    EmailHeader,
    LinkTag,
}

/// EventBridge target.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EventBridgeTarget {
    /// ARN of the event bus (SES supports the default bus).
    #[schemars(regex(pattern = r"^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus/.+$"))]
    pub event_bus_arn: String,
}

/// Observed state of an event destination.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EventDestinationStatus {
    /// Generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling, Stalled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// sns, cloudWatch or eventBridge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Configuration set (AWS name) the destination belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_set: Option<String>,
    /// SesAccount the destination lives in (used for cleanup even after the
    /// ConfigurationSet object is gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// ARN of the SNS topic events go to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_arn: Option<String>,
    /// Whether the operator created (and will delete) the topic.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub topic_owned: bool,
    /// Subscriptions of an operator-owned topic.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<SubscriptionStatus>,
    /// This object's claim on the SES event destination. Event destinations
    /// carry no tags, so the claim is written before the create call: the
    /// operator updates or deletes only a destination this object claimed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<DestinationClaim>,
}

/// See [`EventDestinationStatus::claim`].
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DestinationClaim {
    /// Configuration set (AWS name).
    pub configuration_set: String,
    /// Event destination name.
    pub name: String,
    /// Pending (written before the create call; the outcome is not known
    /// yet) or Created.
    pub state: ClaimState,
}

#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClaimState {
    #[default]
    Pending,
    Created,
}

/// State of one subscription.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionStatus {
    pub protocol: String,
    pub endpoint: String,
    /// Subscription ARN, or empty while confirmation is pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// Confirmed or PendingConfirmation.
    pub state: String,
}

impl EventDestination {
    /// The destination's name in AWS.
    pub fn aws_name(&self) -> String {
        self.spec
            .name
            .clone()
            .unwrap_or_else(|| kube::ResourceExt::name_any(self))
    }
}
