//! Configuration set options as SES sees them, and the per-option-group
//! changes (one Put call each) needed to move AWS to the spec.

use std::collections::BTreeMap;

use crate::api::configuration_set::{
    AutoValidationSpec, ConfidenceThreshold, ConfigurationSetSpec, Feature, HttpsPolicy, SuppressionReason, TlsPolicy,
};

/// The option groups of a configuration set, in SES's terms. `None` for a
/// group means "not managed" on the desired side and "not set" on the
/// observed side.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetOptions {
    pub sending_enabled: bool,
    pub reputation_metrics_enabled: bool,
    pub suppression: Option<Vec<SuppressionReason>>,
    /// Auto Validation: part of SES's suppression options, written with
    /// the reasons in one Put call.
    pub validation: Option<Validation>,
    pub tracking: Option<Tracking>,
    pub delivery: Option<Delivery>,
    pub vdm: Option<Vdm>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tracking {
    pub custom_redirect_domain: String,
    pub https_policy: HttpsPolicy,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub tls_policy: TlsPolicy,
    pub sending_pool_name: Option<String>,
    pub max_delivery_seconds: Option<i64>,
}

/// Auto Validation (SES's `ConditionThreshold`), on a set or the account.
/// A `None` threshold on the desired side is not managed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validation {
    pub enabled: bool,
    pub threshold: Option<ConfidenceThreshold>,
}

impl Validation {
    pub fn from_spec(spec: &AutoValidationSpec) -> Self {
        Self {
            enabled: spec.enabled,
            threshold: spec.confidence_threshold,
        }
    }

    /// What to write so that AWS holds `self`: a threshold the spec leaves
    /// out keeps AWS's, or `None` when `self` already matches `observed`.
    pub fn correction(&self, observed: Option<&Validation>) -> Option<Validation> {
        let have_threshold = observed.and_then(|v| v.threshold);
        let differs = observed.is_none_or(|v| v.enabled != self.enabled)
            || self.threshold.is_some_and(|t| Some(t) != have_threshold);
        differs.then(|| Validation {
            enabled: self.enabled,
            threshold: self.threshold.or(have_threshold),
        })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vdm {
    pub engagement_metrics: Option<Feature>,
    pub optimized_shared_delivery: Option<Feature>,
}

/// One SES call that moves one option group (or the tags) to the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetChange {
    Sending(bool),
    ReputationMetrics(bool),
    /// PutConfigurationSetSuppressionOptions replaces the reasons and the
    /// validation options together: a part the spec leaves out carries
    /// what AWS holds.
    Suppression {
        reasons: Option<Vec<SuppressionReason>>,
        validation: Option<Validation>,
    },
    Tracking(Tracking),
    Delivery(Delivery),
    Vdm(Vdm),
    Tag(BTreeMap<String, String>),
    Untag(Vec<String>),
}

impl SetChange {
    /// Short name for events and logs.
    pub fn group(&self) -> &'static str {
        match self {
            SetChange::Sending(_) => "sending",
            SetChange::ReputationMetrics(_) => "reputationMetrics",
            SetChange::Suppression { .. } => "suppression",
            SetChange::Tracking(_) => "tracking",
            SetChange::Delivery(_) => "delivery",
            SetChange::Vdm(_) => "vdm",
            SetChange::Tag(_) => "tags",
            SetChange::Untag(_) => "tags",
        }
    }
}

/// What the spec asks AWS to hold. `sending_paused` is set when a policy
/// has paused the set: it overrides `spec.sending.enabled`.
pub fn desired_options(spec: &ConfigurationSetSpec, sending_paused: bool) -> SetOptions {
    let mut suppression = spec.suppression.as_ref().map(|s| s.reasons.clone());
    if let Some(reasons) = suppression.as_mut() {
        reasons.sort();
        reasons.dedup();
    }
    SetOptions {
        sending_enabled: spec.sending.enabled && !sending_paused,
        reputation_metrics_enabled: spec.reputation_metrics.enabled,
        suppression,
        validation: spec.auto_validation.as_ref().map(Validation::from_spec),
        tracking: spec.tracking.as_ref().map(|t| Tracking {
            custom_redirect_domain: t.custom_redirect_domain.clone(),
            https_policy: t.https_policy,
        }),
        delivery: spec.delivery.as_ref().map(|d| Delivery {
            tls_policy: d.tls_policy,
            sending_pool_name: d.sending_pool_name.clone(),
            max_delivery_seconds: d.max_delivery_seconds,
        }),
        vdm: spec.vdm.as_ref().map(|v| Vdm {
            engagement_metrics: v.engagement_metrics,
            optimized_shared_delivery: v.optimized_shared_delivery,
        }),
    }
}

/// Option groups the spec leaves to AWS (omitted groups are not managed:
/// removing one from the spec leaves AWS's value as it is).
pub fn unmanaged_groups(spec: &ConfigurationSetSpec) -> Vec<String> {
    [
        ("suppression", spec.suppression.is_none()),
        ("autoValidation", spec.auto_validation.is_none()),
        ("tracking", spec.tracking.is_none()),
        ("delivery", spec.delivery.is_none()),
        ("vdm", spec.vdm.is_none()),
    ]
    .into_iter()
    .filter(|(_, unmanaged)| *unmanaged)
    .map(|(group, _)| group.to_string())
    .collect()
}

/// Tags the set should carry: the user's plus the ownership tag.
pub fn desired_tags(spec: &ConfigurationSetSpec, owner_tag: (&str, &str)) -> BTreeMap<String, String> {
    let mut tags = spec.tags.clone();
    tags.insert(owner_tag.0.to_string(), owner_tag.1.to_string());
    tags
}

/// Changes that move `observed` to `desired`, one per option group that
/// differs, in a stable order. Groups the spec does not manage are skipped.
pub fn diff(desired: &SetOptions, observed: &SetOptions) -> Vec<SetChange> {
    let mut changes = Vec::new();
    if desired.sending_enabled != observed.sending_enabled {
        changes.push(SetChange::Sending(desired.sending_enabled));
    }
    if desired.reputation_metrics_enabled != observed.reputation_metrics_enabled {
        changes.push(SetChange::ReputationMetrics(desired.reputation_metrics_enabled));
    }
    let reasons_differ = desired.suppression.as_ref().is_some_and(|want| {
        let mut have = observed.suppression.clone().unwrap_or_default();
        have.sort();
        have.dedup();
        observed.suppression.is_none() || *want != have
    });
    let validation = desired
        .validation
        .and_then(|want| want.correction(observed.validation.as_ref()));
    if reasons_differ || validation.is_some() {
        changes.push(SetChange::Suppression {
            reasons: desired.suppression.clone().or_else(|| observed.suppression.clone()),
            validation: validation.or(observed.validation),
        });
    }
    if let Some(want) = &desired.tracking
        && observed.tracking.as_ref() != Some(want)
    {
        changes.push(SetChange::Tracking(want.clone()));
    }
    if let Some(want) = &desired.delivery
        && observed.delivery.as_ref() != Some(want)
    {
        changes.push(SetChange::Delivery(want.clone()));
    }
    if let Some(want) = &desired.vdm {
        let have = observed.vdm.clone().unwrap_or_default();
        let differs = (want.engagement_metrics.is_some() && want.engagement_metrics != have.engagement_metrics)
            || (want.optimized_shared_delivery.is_some()
                && want.optimized_shared_delivery != have.optimized_shared_delivery);
        if differs {
            // PutConfigurationSetVdmOptions replaces both options: one the
            // spec leaves out keeps the value AWS has.
            changes.push(SetChange::Vdm(Vdm {
                engagement_metrics: want.engagement_metrics.or(have.engagement_metrics),
                optimized_shared_delivery: want.optimized_shared_delivery.or(have.optimized_shared_delivery),
            }));
        }
    }
    changes
}

/// Tag changes: add or overwrite what differs, remove what the spec
/// dropped. Tags AWS reserves (`aws:`) are never removed.
pub fn diff_tags(desired: &BTreeMap<String, String>, observed: &BTreeMap<String, String>) -> Vec<SetChange> {
    let (to_set, to_remove) = super::tag_changes(desired, observed);
    let mut changes = Vec::new();
    if !to_set.is_empty() {
        changes.push(SetChange::Tag(to_set));
    }
    if !to_remove.is_empty() {
        changes.push(SetChange::Untag(to_remove));
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::configuration_set::{DeliverySpec, SuppressionSpec, TrackingSpec, VdmSpec};

    fn spec() -> ConfigurationSetSpec {
        serde_json::from_value(serde_json::json!({})).expect("empty spec deserializes with defaults")
    }

    #[test]
    fn defaults_enable_sending_and_reputation_metrics_and_manage_nothing_else() {
        let desired = desired_options(&spec(), false);
        assert!(desired.sending_enabled);
        assert!(desired.reputation_metrics_enabled);
        assert_eq!(desired.suppression, None);
        assert_eq!(desired.tracking, None);
        assert_eq!(desired.delivery, None);
        assert_eq!(desired.vdm, None);
    }

    #[test]
    fn status_names_the_groups_the_spec_leaves_to_aws() {
        let mut s = spec();
        assert_eq!(
            unmanaged_groups(&s),
            ["suppression", "autoValidation", "tracking", "delivery", "vdm"]
        );
        s.delivery = Some(DeliverySpec::default());
        s.vdm = Some(VdmSpec::default());
        assert_eq!(unmanaged_groups(&s), ["suppression", "autoValidation", "tracking"]);
    }

    #[test]
    fn only_the_group_that_differs_changes() {
        let mut s = spec();
        s.delivery = Some(DeliverySpec {
            max_delivery_seconds: Some(600),
            ..Default::default()
        });
        let desired = desired_options(&s, false);
        let mut observed = desired.clone();
        assert!(diff(&desired, &observed).is_empty());
        observed.delivery = Some(Delivery {
            tls_policy: TlsPolicy::Optional,
            sending_pool_name: None,
            max_delivery_seconds: Some(900),
        });
        assert_eq!(
            diff(&desired, &observed),
            vec![SetChange::Delivery(desired.delivery.clone().expect("set"))]
        );
    }

    #[test]
    fn false_values_are_changes_too() {
        let mut s = spec();
        s.sending.enabled = false;
        s.reputation_metrics.enabled = false;
        let observed = SetOptions {
            sending_enabled: true,
            reputation_metrics_enabled: true,
            ..Default::default()
        };
        assert_eq!(
            diff(&desired_options(&s, false), &observed),
            vec![SetChange::Sending(false), SetChange::ReputationMetrics(false)]
        );
    }

    #[test]
    fn a_policy_pause_overrides_the_spec() {
        let desired = desired_options(&spec(), true);
        assert!(!desired.sending_enabled);
    }

    #[test]
    fn suppression_order_does_not_matter_but_absence_does() {
        let mut s = spec();
        s.suppression = Some(SuppressionSpec {
            reasons: vec![SuppressionReason::Complaint, SuppressionReason::Bounce],
        });
        let desired = desired_options(&s, false);
        let mut observed = desired.clone();
        observed.suppression = Some(vec![SuppressionReason::Bounce, SuppressionReason::Complaint]);
        assert!(diff(&desired, &observed).is_empty());
        observed.suppression = None;
        assert_eq!(diff(&desired, &observed).len(), 1);
    }

    #[test]
    fn auto_validation_is_written_with_the_reasons_aws_holds() {
        let mut s = spec();
        s.auto_validation = Some(AutoValidationSpec {
            enabled: true,
            confidence_threshold: Some(ConfidenceThreshold::High),
        });
        let desired = desired_options(&s, false);
        let observed = SetOptions {
            suppression: Some(vec![SuppressionReason::Bounce]),
            ..desired.clone()
        };
        let observed = SetOptions {
            validation: None,
            ..observed
        };
        // The reasons are not managed: the Put carries AWS's, unchanged.
        assert_eq!(
            diff(&desired, &observed),
            vec![SetChange::Suppression {
                reasons: Some(vec![SuppressionReason::Bounce]),
                validation: Some(Validation {
                    enabled: true,
                    threshold: Some(ConfidenceThreshold::High)
                }),
            }]
        );
        // A threshold the spec leaves out is AWS's to keep.
        s.auto_validation = Some(AutoValidationSpec {
            enabled: true,
            confidence_threshold: None,
        });
        let desired = desired_options(&s, false);
        let in_sync = SetOptions {
            validation: Some(Validation {
                enabled: true,
                threshold: Some(ConfidenceThreshold::Managed),
            }),
            ..observed.clone()
        };
        assert!(diff(&desired, &in_sync).is_empty());
        let off = SetOptions {
            validation: Some(Validation {
                enabled: false,
                threshold: Some(ConfidenceThreshold::Medium),
            }),
            ..observed
        };
        assert_eq!(
            diff(&desired, &off),
            vec![SetChange::Suppression {
                reasons: Some(vec![SuppressionReason::Bounce]),
                validation: Some(Validation {
                    enabled: true,
                    threshold: Some(ConfidenceThreshold::Medium)
                }),
            }]
        );
    }

    #[test]
    fn every_group_is_compared() {
        let mut s = spec();
        s.tracking = Some(TrackingSpec {
            custom_redirect_domain: "t.example.com".into(),
            https_policy: HttpsPolicy::Require,
        });
        s.vdm = Some(VdmSpec {
            engagement_metrics: Some(Feature::Enabled),
            optimized_shared_delivery: None,
        });
        s.suppression = Some(SuppressionSpec { reasons: vec![] });
        let desired = desired_options(&s, false);
        let groups: Vec<_> = diff(&desired, &SetOptions::default())
            .iter()
            .map(SetChange::group)
            .collect();
        assert_eq!(
            groups,
            ["sending", "reputationMetrics", "suppression", "tracking", "vdm"]
        );
    }

    #[test]
    fn tags_are_added_changed_and_removed_but_aws_tags_stay() {
        let desired = BTreeMap::from([
            ("team".to_string(), "mail".to_string()),
            ("env".to_string(), "prod".to_string()),
        ]);
        let observed = BTreeMap::from([
            ("team".to_string(), "mail".to_string()),
            ("env".to_string(), "dev".to_string()),
            ("old".to_string(), "x".to_string()),
            ("aws:cloudformation:stack-name".to_string(), "s".to_string()),
        ]);
        assert_eq!(
            diff_tags(&desired, &observed),
            vec![
                SetChange::Tag(BTreeMap::from([("env".to_string(), "prod".to_string())])),
                SetChange::Untag(vec!["old".to_string()]),
            ]
        );
    }
}
