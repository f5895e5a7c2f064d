//! SES v2 operations: configuration sets, their option groups and tags,
//! event destinations, email identities, and the account.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_sesv2::types as ses;

use super::scheduler::Priority;
use super::{AwsError, ErrorKind, Session};
use crate::api::configuration_set::{ConfidenceThreshold, Feature, HttpsPolicy, SuppressionReason, TlsPolicy};
use crate::api::email_identity::{DkimKeyLength, MxFailureBehavior};
use crate::api::event_destination::{DimensionSource, EventType};
use crate::domain::diff::configuration_set::{Delivery, SetChange, SetOptions, Tracking, Validation, Vdm};
use crate::domain::diff::email_identity::{IdentityChange, IdentitySettings, ObservedIdentity};
use crate::domain::diff::event_destination::{Destination, Dimension, Target};

/// Event destinations per set with the time they were read.
///
/// A plain map, not a cache crate: none in the tree fits (moka and the
/// like are not dependencies), and none is needed. The age limit is not
/// the cache's but each read's (`max_age` of
/// [`Session::event_destinations_within`], from the account's drift
/// period, which callers scale), which a cache with one TTL cannot
/// express; an entry is replaced by the next read older than that, dropped
/// by a write through this session, and there is at most one per set.
pub type DestinationCache =
    parking_lot::Mutex<std::collections::HashMap<String, (tokio::time::Instant, Vec<Destination>)>>;

/// A configuration set as AWS holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedSet {
    pub options: SetOptions,
    pub tags: BTreeMap<String, String>,
}

/// Account state from GetAccount.
#[derive(Clone, Debug, PartialEq)]
pub struct Account {
    pub enforcement_status: Option<String>,
    pub sending_enabled: bool,
    pub production_access_enabled: bool,
    pub max_24_hour_send: f64,
    pub max_send_rate: f64,
    pub sent_last_24_hours: f64,
    /// Account-level suppression reasons, sorted.
    pub suppressed_reasons: Vec<SuppressionReason>,
    /// Account-level Auto Validation, when AWS reports it.
    pub validation: Option<Validation>,
}

impl Session {
    /// GetConfigurationSet; `None` when the set does not exist.
    pub async fn get_configuration_set(&self, name: &str, priority: Priority) -> Result<Option<ObservedSet>, AwsError> {
        let out = self
            .ses_call("sesv2:GetConfigurationSet", priority, || {
                self.ses.get_configuration_set().configuration_set_name(name).send()
            })
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let options = SetOptions {
            sending_enabled: out.sending_options().is_none_or(|s| s.sending_enabled()),
            reputation_metrics_enabled: out.reputation_options().is_some_and(|r| r.reputation_metrics_enabled()),
            suppression: out.suppression_options().map(|s| {
                let mut reasons: Vec<_> = s.suppressed_reasons().iter().filter_map(suppression_from_aws).collect();
                reasons.sort();
                reasons
            }),
            validation: out
                .suppression_options()
                .and_then(|s| s.validation_options())
                .and_then(|v| v.condition_threshold())
                .map(validation_from_aws),
            tracking: out.tracking_options().map(|t| Tracking {
                custom_redirect_domain: t.custom_redirect_domain().to_string(),
                https_policy: match t.https_policy() {
                    Some(ses::HttpsPolicy::Require) => HttpsPolicy::Require,
                    Some(ses::HttpsPolicy::RequireOpenOnly) => HttpsPolicy::RequireOpenOnly,
                    _ => HttpsPolicy::Optional,
                },
            }),
            delivery: out.delivery_options().map(|d| Delivery {
                tls_policy: match d.tls_policy() {
                    Some(ses::TlsPolicy::Require) => TlsPolicy::Require,
                    _ => TlsPolicy::Optional,
                },
                sending_pool_name: d.sending_pool_name().map(str::to_string),
                max_delivery_seconds: d.max_delivery_seconds(),
            }),
            vdm: out.vdm_options().map(|v| Vdm {
                engagement_metrics: v
                    .dashboard_options()
                    .and_then(|d| d.engagement_metrics())
                    .map(feature_from_aws),
                optimized_shared_delivery: v
                    .guardian_options()
                    .and_then(|g| g.optimized_shared_delivery())
                    .map(feature_from_aws),
            }),
        };
        let tags = out
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect();
        Ok(Some(ObservedSet { options, tags }))
    }

    /// CreateConfigurationSet with every managed group and the tags in one
    /// call. The SDK sends nested `false` bools as absent, so callers follow
    /// up with the Put calls that [`crate::domain::diff::configuration_set::diff`]
    /// finds still differing.
    pub async fn create_configuration_set(
        &self,
        name: &str,
        options: &SetOptions,
        tags: &BTreeMap<String, String>,
        priority: Priority,
    ) -> Result<(), AwsError> {
        let mut req = self
            .ses
            .create_configuration_set()
            .configuration_set_name(name)
            .sending_options(
                ses::SendingOptions::builder()
                    .sending_enabled(options.sending_enabled)
                    .build(),
            )
            .reputation_options(
                ses::ReputationOptions::builder()
                    .reputation_metrics_enabled(options.reputation_metrics_enabled)
                    .build(),
            )
            .set_tags(Some(aws_tags(tags)?));
        if options.suppression.is_some() || options.validation.is_some() {
            req = req.suppression_options(suppression_options(
                options.suppression.as_deref(),
                options.validation.as_ref(),
            )?);
        }
        if let Some(t) = &options.tracking {
            req = req.tracking_options(tracking_options(t)?);
        }
        if let Some(d) = &options.delivery {
            req = req.delivery_options(delivery_options(d));
        }
        if let Some(v) = &options.vdm {
            req = req.vdm_options(vdm_options(v));
        }
        self.ses_call("sesv2:CreateConfigurationSet", priority, || req.clone().send())
            .await
            .map(|_| ())
    }

    /// Applies one change through its own Put call (or TagResource /
    /// UntagResource).
    pub async fn apply_set_change(&self, name: &str, change: &SetChange, priority: Priority) -> Result<(), AwsError> {
        let c = &self.ses;
        match change {
            SetChange::Sending(enabled) => {
                let req = c
                    .put_configuration_set_sending_options()
                    .configuration_set_name(name)
                    .sending_enabled(*enabled);
                self.ses_call("sesv2:PutConfigurationSetSendingOptions", priority, || {
                    req.clone().send()
                })
                .await
                .map(|_| ())
            }
            SetChange::ReputationMetrics(enabled) => {
                let req = c
                    .put_configuration_set_reputation_options()
                    .configuration_set_name(name)
                    .reputation_metrics_enabled(*enabled);
                self.ses_call("sesv2:PutConfigurationSetReputationOptions", priority, || {
                    req.clone().send()
                })
                .await
                .map(|_| ())
            }
            SetChange::Suppression { reasons, validation } => {
                let options = suppression_options(reasons.as_deref(), validation.as_ref())?;
                let req = c
                    .put_configuration_set_suppression_options()
                    .configuration_set_name(name)
                    .set_suppressed_reasons(options.suppressed_reasons)
                    .set_validation_options(options.validation_options);
                self.ses_call("sesv2:PutConfigurationSetSuppressionOptions", priority, || {
                    req.clone().send()
                })
                .await
                .map(|_| ())
            }
            SetChange::Tracking(t) => {
                let req = c
                    .put_configuration_set_tracking_options()
                    .configuration_set_name(name)
                    .custom_redirect_domain(&t.custom_redirect_domain)
                    .https_policy(https_to_aws(t.https_policy));
                self.ses_call("sesv2:PutConfigurationSetTrackingOptions", priority, || {
                    req.clone().send()
                })
                .await
                .map(|_| ())
            }
            SetChange::Delivery(d) => {
                let req = c
                    .put_configuration_set_delivery_options()
                    .configuration_set_name(name)
                    .tls_policy(tls_to_aws(d.tls_policy))
                    .set_sending_pool_name(d.sending_pool_name.clone())
                    .set_max_delivery_seconds(d.max_delivery_seconds);
                self.ses_call("sesv2:PutConfigurationSetDeliveryOptions", priority, || {
                    req.clone().send()
                })
                .await
                .map(|_| ())
            }
            SetChange::Vdm(v) => {
                let req = c
                    .put_configuration_set_vdm_options()
                    .configuration_set_name(name)
                    .vdm_options(vdm_options(v));
                self.ses_call("sesv2:PutConfigurationSetVdmOptions", priority, || req.clone().send())
                    .await
                    .map(|_| ())
            }
            SetChange::Tag(tags) => {
                let req = c
                    .tag_resource()
                    .resource_arn(self.configuration_set_arn(name))
                    .set_tags(Some(aws_tags(tags)?));
                self.ses_call("sesv2:TagResource", priority, || req.clone().send())
                    .await
                    .map(|_| ())
            }
            SetChange::Untag(keys) => {
                let req = c
                    .untag_resource()
                    .resource_arn(self.configuration_set_arn(name))
                    .set_tag_keys(Some(keys.clone()));
                self.ses_call("sesv2:UntagResource", priority, || req.clone().send())
                    .await
                    .map(|_| ())
            }
        }
    }

    /// DeleteConfigurationSet; a set that is already gone counts as deleted.
    pub async fn delete_configuration_set(&self, name: &str, priority: Priority) -> Result<(), AwsError> {
        self.forget_destinations(name);
        let req = self.ses.delete_configuration_set().configuration_set_name(name);
        match self
            .ses_call("sesv2:DeleteConfigurationSet", priority, || req.clone().send())
            .await
        {
            Err(e) if e.kind != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The event destinations of a set, from a read younger than `max_age`
    /// if there is one: one `GetConfigurationSetEventDestinations` per set
    /// per drift period serves the drift checks of all its destinations.
    /// Writes through this session drop the cached read.
    pub async fn event_destinations_within(
        &self,
        set: &str,
        max_age: std::time::Duration,
        priority: Priority,
    ) -> Result<Option<Vec<Destination>>, AwsError> {
        if let Some((at, dests)) = self.destinations_lock().get(set)
            && at.elapsed() < max_age
        {
            return Ok(Some(dests.clone()));
        }
        let read = self.get_event_destinations(set, priority).await?;
        if let Some(dests) = &read {
            self.destinations_lock()
                .insert(set.to_string(), (tokio::time::Instant::now(), dests.clone()));
        }
        Ok(read)
    }

    fn destinations_lock(
        &self,
    ) -> parking_lot::MutexGuard<'_, std::collections::HashMap<String, (tokio::time::Instant, Vec<Destination>)>> {
        self.destinations.lock()
    }

    fn forget_destinations(&self, set: &str) {
        self.destinations_lock().remove(set);
    }

    /// GetConfigurationSetEventDestinations; `None` when the set is gone.
    pub async fn get_event_destinations(
        &self,
        set: &str,
        priority: Priority,
    ) -> Result<Option<Vec<Destination>>, AwsError> {
        let req = self
            .ses
            .get_configuration_set_event_destinations()
            .configuration_set_name(set);
        let out = match self
            .ses_call("sesv2:GetConfigurationSetEventDestinations", priority, || {
                req.clone().send()
            })
            .await
        {
            Ok(out) => out,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some(
            out.event_destinations().iter().map(destination_from_aws).collect(),
        ))
    }

    /// Create or update an event destination. `.enabled` is always sent
    /// explicitly (the SDK would drop a nested `false`).
    pub async fn put_event_destination(
        &self,
        set: &str,
        dest: &Destination,
        create: bool,
        priority: Priority,
    ) -> Result<(), AwsError> {
        let definition = destination_to_aws(dest);
        self.forget_destinations(set);
        if create {
            let req = self
                .ses
                .create_configuration_set_event_destination()
                .configuration_set_name(set)
                .event_destination_name(&dest.name)
                .event_destination(definition);
            self.ses_call("sesv2:CreateConfigurationSetEventDestination", priority, || {
                req.clone().send()
            })
            .await
            .map(|_| ())
        } else {
            let req = self
                .ses
                .update_configuration_set_event_destination()
                .configuration_set_name(set)
                .event_destination_name(&dest.name)
                .event_destination(definition);
            self.ses_call("sesv2:UpdateConfigurationSetEventDestination", priority, || {
                req.clone().send()
            })
            .await
            .map(|_| ())
        }
    }

    /// Deletes an event destination; already gone (or its set gone) is fine.
    pub async fn delete_event_destination(&self, set: &str, name: &str, priority: Priority) -> Result<(), AwsError> {
        let req = self
            .ses
            .delete_configuration_set_event_destination()
            .configuration_set_name(set)
            .event_destination_name(name);
        self.forget_destinations(set);
        match self
            .ses_call("sesv2:DeleteConfigurationSetEventDestination", priority, || {
                req.clone().send()
            })
            .await
        {
            Err(e) if e.kind != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// GetAccount.
    pub async fn get_account(&self, priority: Priority) -> Result<Account, AwsError> {
        let out = self
            .ses_call("sesv2:GetAccount", priority, || self.ses.get_account().send())
            .await?;
        let quota = out.send_quota();
        Ok(Account {
            enforcement_status: out.enforcement_status().map(str::to_string),
            sending_enabled: out.sending_enabled(),
            production_access_enabled: out.production_access_enabled(),
            max_24_hour_send: quota.map_or(0.0, |q| q.max24_hour_send()),
            max_send_rate: quota.map_or(0.0, |q| q.max_send_rate()),
            sent_last_24_hours: quota.map_or(0.0, |q| q.sent_last24_hours()),
            suppressed_reasons: {
                let mut reasons: Vec<_> = out
                    .suppression_attributes()
                    .map(|a| a.suppressed_reasons().iter().filter_map(suppression_from_aws).collect())
                    .unwrap_or_default();
                reasons.sort();
                reasons
            },
            validation: out
                .suppression_attributes()
                .and_then(|a| a.validation_attributes())
                .and_then(|v| v.condition_threshold())
                .map(validation_from_aws),
        })
    }

    /// PutAccountSuppressionAttributes: the reasons and Auto Validation
    /// together (the call replaces both).
    pub async fn put_account_suppression(
        &self,
        reasons: &[SuppressionReason],
        validation: Option<&Validation>,
        priority: Priority,
    ) -> Result<(), AwsError> {
        let validation = validation
            .map(|v| {
                validation_to_aws(v).map(|t| {
                    ses::SuppressionValidationAttributes::builder()
                        .condition_threshold(t)
                        .build()
                })
            })
            .transpose()?;
        let req = self
            .ses
            .put_account_suppression_attributes()
            .set_suppressed_reasons(Some(reasons.iter().map(suppression_to_aws).collect()))
            .set_validation_attributes(validation);
        self.ses_call("sesv2:PutAccountSuppressionAttributes", priority, || req.clone().send())
            .await
            .map(|_| ())
    }

    /// ListRecommendations for the OPEN findings of the account, every page
    /// (100 a page, each a drift-class SES call: findings are advice, not
    /// spec work).
    pub async fn list_open_findings(&self) -> Result<Vec<crate::domain::findings::Open>, AwsError> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let req = self
                .ses
                .list_recommendations()
                .filter(ses::ListRecommendationsFilterKey::Status, "OPEN")
                .page_size(100)
                .set_next_token(next.take());
            let page = self
                .ses_call("sesv2:ListRecommendations", Priority::Drift, || req.clone().send())
                .await?;
            out.extend(
                page.recommendations()
                    .iter()
                    .filter(|r| r.status() == Some(&ses::RecommendationStatus::Open))
                    .map(|r| crate::domain::findings::Open {
                        resource_arn: r.resource_arn().unwrap_or_default().to_string(),
                        type_: r.r#type().map(|t| t.as_str().to_string()).unwrap_or_default(),
                        impact: r.impact().map(|i| i.as_str().to_string()).unwrap_or_default(),
                        description: r.description().unwrap_or_default().to_string(),
                        updated: r
                            .last_updated_timestamp()
                            .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
                    }),
            );
            match page.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_string()),
                _ => return Ok(out),
            }
        }
    }

    /// PutAccountSendingAttributes: pauses (or resumes) the whole account.
    pub async fn put_account_sending(&self, enabled: bool, priority: Priority) -> Result<(), AwsError> {
        let req = self.ses.put_account_sending_attributes().sending_enabled(enabled);
        self.ses_call("sesv2:PutAccountSendingAttributes", priority, || req.clone().send())
            .await
            .map(|_| ())
    }
}

pub(super) fn aws_tags(tags: &BTreeMap<String, String>) -> Result<Vec<ses::Tag>, AwsError> {
    tags.iter()
        .map(|(k, v)| {
            ses::Tag::builder().key(k).value(v).build().map_err(|e| AwsError {
                operation: "sesv2:Tag",
                kind: ErrorKind::BadRequest,
                code: "InvalidTag".into(),
                message: e.to_string(),
            })
        })
        .collect()
}

fn suppression_options(
    reasons: Option<&[SuppressionReason]>,
    validation: Option<&Validation>,
) -> Result<ses::SuppressionOptions, AwsError> {
    let validation = validation
        .map(|v| {
            validation_to_aws(v).map(|t| {
                ses::SuppressionValidationOptions::builder()
                    .condition_threshold(t)
                    .build()
            })
        })
        .transpose()?;
    Ok(ses::SuppressionOptions::builder()
        .set_suppressed_reasons(reasons.map(|r| r.iter().map(suppression_to_aws).collect()))
        .set_validation_options(validation)
        .build())
}

/// Auto Validation as SES's `ConditionThreshold` (sets and the account
/// share the shape).
fn validation_to_aws(v: &Validation) -> Result<ses::SuppressionConditionThreshold, AwsError> {
    let threshold = v
        .threshold
        .map(|t| {
            ses::SuppressionConfidenceThreshold::builder()
                .confidence_verdict_threshold(match t {
                    ConfidenceThreshold::Medium => ses::SuppressionConfidenceVerdictThreshold::Medium,
                    ConfidenceThreshold::High => ses::SuppressionConfidenceVerdictThreshold::High,
                    ConfidenceThreshold::Managed => ses::SuppressionConfidenceVerdictThreshold::Managed,
                })
                .build()
        })
        .transpose()
        .map_err(build_error)?;
    ses::SuppressionConditionThreshold::builder()
        .condition_threshold_enabled(if v.enabled {
            ses::FeatureStatus::Enabled
        } else {
            ses::FeatureStatus::Disabled
        })
        .set_overall_confidence_threshold(threshold)
        .build()
        .map_err(build_error)
}

fn validation_from_aws(t: &ses::SuppressionConditionThreshold) -> Validation {
    Validation {
        enabled: *t.condition_threshold_enabled() == ses::FeatureStatus::Enabled,
        threshold: t
            .overall_confidence_threshold()
            .and_then(|c| match c.confidence_verdict_threshold() {
                ses::SuppressionConfidenceVerdictThreshold::Medium => Some(ConfidenceThreshold::Medium),
                ses::SuppressionConfidenceVerdictThreshold::High => Some(ConfidenceThreshold::High),
                ses::SuppressionConfidenceVerdictThreshold::Managed => Some(ConfidenceThreshold::Managed),
                _ => None,
            }),
    }
}

/// A request the SDK's builder refused (a required field missing): the
/// operator's bug, reported as a refused request rather than a panic.
fn build_error(e: aws_sdk_sesv2::error::BuildError) -> AwsError {
    AwsError {
        operation: "sesv2:ValidationOptions",
        kind: ErrorKind::BadRequest,
        code: "InvalidRequest".into(),
        message: e.to_string(),
    }
}

fn suppression_to_aws(r: &SuppressionReason) -> ses::SuppressionListReason {
    match r {
        SuppressionReason::Bounce => ses::SuppressionListReason::Bounce,
        SuppressionReason::Complaint => ses::SuppressionListReason::Complaint,
    }
}

fn suppression_from_aws(r: &ses::SuppressionListReason) -> Option<SuppressionReason> {
    match r {
        ses::SuppressionListReason::Bounce => Some(SuppressionReason::Bounce),
        ses::SuppressionListReason::Complaint => Some(SuppressionReason::Complaint),
        _ => None,
    }
}

fn tracking_options(t: &Tracking) -> Result<ses::TrackingOptions, AwsError> {
    ses::TrackingOptions::builder()
        .custom_redirect_domain(&t.custom_redirect_domain)
        .https_policy(https_to_aws(t.https_policy))
        .build()
        .map_err(|e| AwsError {
            operation: "sesv2:TrackingOptions",
            kind: ErrorKind::BadRequest,
            code: "Invalid".into(),
            message: e.to_string(),
        })
}

fn https_to_aws(p: HttpsPolicy) -> ses::HttpsPolicy {
    match p {
        HttpsPolicy::Require => ses::HttpsPolicy::Require,
        HttpsPolicy::RequireOpenOnly => ses::HttpsPolicy::RequireOpenOnly,
        HttpsPolicy::Optional => ses::HttpsPolicy::Optional,
    }
}

fn tls_to_aws(p: TlsPolicy) -> ses::TlsPolicy {
    match p {
        TlsPolicy::Require => ses::TlsPolicy::Require,
        TlsPolicy::Optional => ses::TlsPolicy::Optional,
    }
}

fn delivery_options(d: &Delivery) -> ses::DeliveryOptions {
    ses::DeliveryOptions::builder()
        .tls_policy(tls_to_aws(d.tls_policy))
        .set_sending_pool_name(d.sending_pool_name.clone())
        .set_max_delivery_seconds(d.max_delivery_seconds)
        .build()
}

fn feature_to_aws(f: Feature) -> ses::FeatureStatus {
    match f {
        Feature::Enabled => ses::FeatureStatus::Enabled,
        Feature::Disabled => ses::FeatureStatus::Disabled,
    }
}

fn feature_from_aws(f: &ses::FeatureStatus) -> Feature {
    match f {
        ses::FeatureStatus::Enabled => Feature::Enabled,
        _ => Feature::Disabled,
    }
}

fn vdm_options(v: &Vdm) -> ses::VdmOptions {
    let mut b = ses::VdmOptions::builder();
    if let Some(f) = v.engagement_metrics {
        b = b.dashboard_options(
            ses::DashboardOptions::builder()
                .engagement_metrics(feature_to_aws(f))
                .build(),
        );
    }
    if let Some(f) = v.optimized_shared_delivery {
        b = b.guardian_options(
            ses::GuardianOptions::builder()
                .optimized_shared_delivery(feature_to_aws(f))
                .build(),
        );
    }
    b.build()
}

const EVENT_TYPES: [(EventType, &str); 10] = [
    (EventType::Send, "SEND"),
    (EventType::Reject, "REJECT"),
    (EventType::Bounce, "BOUNCE"),
    (EventType::Complaint, "COMPLAINT"),
    (EventType::Delivery, "DELIVERY"),
    (EventType::Open, "OPEN"),
    (EventType::Click, "CLICK"),
    (EventType::RenderingFailure, "RENDERING_FAILURE"),
    (EventType::DeliveryDelay, "DELIVERY_DELAY"),
    (EventType::Subscription, "SUBSCRIPTION"),
];

fn event_type_to_aws(t: EventType) -> ses::EventType {
    let name = EVENT_TYPES.iter().find(|(e, _)| *e == t).map_or("BOUNCE", |(_, n)| n);
    ses::EventType::from(name)
}

fn event_type_from_aws(t: &ses::EventType) -> Option<EventType> {
    EVENT_TYPES.iter().find(|(_, n)| *n == t.as_str()).map(|(e, _)| *e)
}

fn source_to_aws(s: DimensionSource) -> ses::DimensionValueSource {
    match s {
        DimensionSource::MessageTag => ses::DimensionValueSource::MessageTag,
        DimensionSource::EmailHeader => ses::DimensionValueSource::EmailHeader,
        DimensionSource::LinkTag => ses::DimensionValueSource::LinkTag,
    }
}

fn source_from_aws(s: &ses::DimensionValueSource) -> DimensionSource {
    match s {
        ses::DimensionValueSource::EmailHeader => DimensionSource::EmailHeader,
        ses::DimensionValueSource::LinkTag => DimensionSource::LinkTag,
        _ => DimensionSource::MessageTag,
    }
}

fn destination_to_aws(d: &Destination) -> ses::EventDestinationDefinition {
    let mut b = ses::EventDestinationDefinition::builder()
        .enabled(d.enabled)
        .set_matching_event_types(Some(d.event_types.iter().copied().map(event_type_to_aws).collect()));
    match &d.target {
        Target::Sns { topic_arn } => {
            if let Ok(sns) = ses::SnsDestination::builder().topic_arn(topic_arn).build() {
                b = b.sns_destination(sns);
            }
        }
        Target::CloudWatch { dimensions } => {
            let configs = dimensions
                .iter()
                .filter_map(|dim| {
                    ses::CloudWatchDimensionConfiguration::builder()
                        .dimension_name(&dim.name)
                        .dimension_value_source(source_to_aws(dim.source))
                        .default_dimension_value(&dim.default_value)
                        .build()
                        .ok()
                })
                .collect();
            if let Ok(cw) = ses::CloudWatchDestination::builder()
                .set_dimension_configurations(Some(configs))
                .build()
            {
                b = b.cloud_watch_destination(cw);
            }
        }
        Target::EventBridge { event_bus_arn } => {
            if let Ok(eb) = ses::EventBridgeDestination::builder()
                .event_bus_arn(event_bus_arn)
                .build()
            {
                b = b.event_bridge_destination(eb);
            }
        }
        Target::Other(_) => {}
    }
    b.build()
}

fn destination_from_aws(d: &ses::EventDestination) -> Destination {
    let target = if let Some(sns) = d.sns_destination() {
        Target::Sns {
            topic_arn: sns.topic_arn().to_string(),
        }
    } else if let Some(cw) = d.cloud_watch_destination() {
        let mut dimensions: Vec<Dimension> = cw
            .dimension_configurations()
            .iter()
            .map(|c| Dimension {
                name: c.dimension_name().to_string(),
                source: source_from_aws(c.dimension_value_source()),
                default_value: c.default_dimension_value().to_string(),
            })
            .collect();
        dimensions.sort();
        Target::CloudWatch { dimensions }
    } else if let Some(eb) = d.event_bridge_destination() {
        Target::EventBridge {
            event_bus_arn: eb.event_bus_arn().to_string(),
        }
    } else {
        Target::Other("unmanaged".into())
    };
    Destination {
        name: d.name().to_string(),
        enabled: d.enabled(),
        event_types: d
            .matching_event_types()
            .iter()
            .filter_map(event_type_from_aws)
            .collect::<BTreeSet<_>>(),
        target,
    }
}

// --- email identities ---------------------------------------------------------

impl Session {
    /// ARN of an email identity in this account.
    pub fn identity_arn(&self, identity: &str) -> String {
        format!(
            "arn:{}:ses:{}:{}:identity/{identity}",
            super::partition(&self.region),
            self.region,
            self.account_id
        )
    }

    /// GetEmailIdentity; `None` when the identity does not exist. One call
    /// gives settings, statuses, DKIM tokens and tags (ownership).
    pub async fn get_email_identity(
        &self,
        identity: &str,
        priority: Priority,
    ) -> Result<Option<ObservedIdentity>, AwsError> {
        let req = self.ses.get_email_identity().email_identity(identity);
        let out = match self
            .ses_call("sesv2:GetEmailIdentity", priority, || req.clone().send())
            .await
        {
            Ok(out) => out,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let dkim = out.dkim_attributes();
        let domain = !crate::domain::diff::email_identity::is_address(identity);
        let mail_from = out.mail_from_attributes();
        let settings = IdentitySettings {
            dkim_signing: domain.then(|| dkim.is_some_and(|d| d.signing_enabled())),
            key_length: domain.then(|| match dkim.and_then(|d| d.next_signing_key_length()) {
                Some(ses::DkimSigningKeyLength::Rsa1024Bit) => DkimKeyLength::Rsa1024,
                _ => DkimKeyLength::Rsa2048,
            }),
            mail_from: mail_from
                .map(|m| m.mail_from_domain().to_string())
                .filter(|d| !d.is_empty()),
            behavior_on_mx_failure: match mail_from.map(|m| m.behavior_on_mx_failure()) {
                Some(ses::BehaviorOnMxFailure::RejectMessage) => MxFailureBehavior::RejectMessage,
                _ => MxFailureBehavior::UseDefaultValue,
            },
            configuration_set: out.configuration_set_name().map(str::to_string),
            feedback_forwarding: out.feedback_forwarding_status(),
        };
        Ok(Some(ObservedIdentity {
            settings,
            tags: out
                .tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect(),
            identity_type: out.identity_type().map_or("", |t| t.as_str()).to_string(),
            verification_status: out
                .verification_status()
                .map_or("NOT_STARTED", |s| s.as_str())
                .to_string(),
            verification_error: out
                .verification_info()
                .and_then(|i| i.error_type())
                .map(|e| e.as_str().to_string()),
            dkim_status: dkim.and_then(|d| d.status()).map(|s| s.as_str().to_string()),
            dkim_tokens: dkim.map(|d| d.tokens().to_vec()).unwrap_or_default(),
            mail_from_status: mail_from.map(|m| m.mail_from_domain_status().as_str().to_string()),
        }))
    }

    /// CreateEmailIdentity with the DKIM key length (domains), the default
    /// set and the tags; the other attributes follow as Put calls.
    pub async fn create_email_identity(
        &self,
        identity: &str,
        desired: &IdentitySettings,
        tags: &BTreeMap<String, String>,
        priority: Priority,
    ) -> Result<(), AwsError> {
        let mut req = self
            .ses
            .create_email_identity()
            .email_identity(identity)
            .set_tags(Some(aws_tags(tags)?))
            .set_configuration_set_name(desired.configuration_set.clone());
        if let Some(length) = desired.key_length {
            req = req.dkim_signing_attributes(
                ses::DkimSigningAttributes::builder()
                    .next_signing_key_length(key_length_to_aws(length))
                    .build(),
            );
        }
        self.ses_call("sesv2:CreateEmailIdentity", priority, || req.clone().send())
            .await
            .map(|_| ())
    }

    /// Applies one change through its own Put call (or TagResource /
    /// UntagResource on the identity's ARN).
    pub async fn apply_identity_change(
        &self,
        identity: &str,
        change: &IdentityChange,
        priority: Priority,
    ) -> Result<(), AwsError> {
        let c = &self.ses;
        match change {
            IdentityChange::DkimSigning(on) => {
                let req = c
                    .put_email_identity_dkim_attributes()
                    .email_identity(identity)
                    .signing_enabled(*on);
                self.ses_call("sesv2:PutEmailIdentityDkimAttributes", priority, || req.clone().send())
                    .await
                    .map(|_| ())
            }
            IdentityChange::KeyLength(length) => {
                let req = c
                    .put_email_identity_dkim_signing_attributes()
                    .email_identity(identity)
                    .signing_attributes_origin(ses::DkimSigningAttributesOrigin::AwsSes)
                    .signing_attributes(
                        ses::DkimSigningAttributes::builder()
                            .next_signing_key_length(key_length_to_aws(*length))
                            .build(),
                    );
                self.ses_call("sesv2:PutEmailIdentityDkimSigningAttributes", priority, || {
                    req.clone().send()
                })
                .await
                .map(|_| ())
            }
            IdentityChange::MailFrom { domain, behavior } => {
                let req = c
                    .put_email_identity_mail_from_attributes()
                    .email_identity(identity)
                    .set_mail_from_domain(domain.clone())
                    .behavior_on_mx_failure(match behavior {
                        MxFailureBehavior::UseDefaultValue => ses::BehaviorOnMxFailure::UseDefaultValue,
                        MxFailureBehavior::RejectMessage => ses::BehaviorOnMxFailure::RejectMessage,
                    });
                self.ses_call("sesv2:PutEmailIdentityMailFromAttributes", priority, || {
                    req.clone().send()
                })
                .await
                .map(|_| ())
            }
            IdentityChange::ConfigurationSet(set) => {
                let req = c
                    .put_email_identity_configuration_set_attributes()
                    .email_identity(identity)
                    .set_configuration_set_name(set.clone());
                self.ses_call("sesv2:PutEmailIdentityConfigurationSetAttributes", priority, || {
                    req.clone().send()
                })
                .await
                .map(|_| ())
            }
            IdentityChange::Feedback(on) => {
                let req = c
                    .put_email_identity_feedback_attributes()
                    .email_identity(identity)
                    .email_forwarding_enabled(*on);
                self.ses_call("sesv2:PutEmailIdentityFeedbackAttributes", priority, || {
                    req.clone().send()
                })
                .await
                .map(|_| ())
            }
            IdentityChange::Tag(tags) => {
                let req = c
                    .tag_resource()
                    .resource_arn(self.identity_arn(identity))
                    .set_tags(Some(aws_tags(tags)?));
                self.ses_call("sesv2:TagResource", priority, || req.clone().send())
                    .await
                    .map(|_| ())
            }
            IdentityChange::Untag(keys) => {
                let req = c
                    .untag_resource()
                    .resource_arn(self.identity_arn(identity))
                    .set_tag_keys(Some(keys.clone()));
                self.ses_call("sesv2:UntagResource", priority, || req.clone().send())
                    .await
                    .map(|_| ())
            }
        }
    }

    /// DeleteEmailIdentity; an identity that is already gone counts as deleted.
    pub async fn delete_email_identity(&self, identity: &str, priority: Priority) -> Result<(), AwsError> {
        let req = self.ses.delete_email_identity().email_identity(identity);
        match self
            .ses_call("sesv2:DeleteEmailIdentity", priority, || req.clone().send())
            .await
        {
            Err(e) if e.kind != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

fn key_length_to_aws(length: DkimKeyLength) -> ses::DkimSigningKeyLength {
    match length {
        DkimKeyLength::Rsa1024 => ses::DkimSigningKeyLength::Rsa1024Bit,
        DkimKeyLength::Rsa2048 => ses::DkimSigningKeyLength::Rsa2048Bit,
    }
}
