//! Whether an AWS resource is this object's to change: its owner tag, what
//! the object's status records, and adoption; and, for the tagged kinds
//! (configuration sets, identities), the tags a pass converges to, the
//! order its changes go in and how they are announced. Pure: reconcilers
//! pass in what they read.

use std::collections::BTreeMap;

/// The owner tag value an object writes and the values it accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// `<cluster>/<namespace>/<name>`: written on everything the object creates.
    pub value: String,
    /// The values written under the cluster's previous names; they count
    /// only where the object's status records the resource.
    pub previous: Vec<String>,
}

impl Owner {
    pub fn new(cluster: &str, previous_clusters: &[String], namespace: &str, name: &str) -> Self {
        Self {
            value: format!("{cluster}/{namespace}/{name}"),
            previous: previous_clusters
                .iter()
                .map(|previous| format!("{previous}/{namespace}/{name}"))
                .collect(),
        }
    }

    /// Whether `tag` names this object. `recorded`: the object's status
    /// says it created the resource.
    pub fn owns(&self, tag: Option<&str>, recorded: bool) -> bool {
        match tag {
            None => false,
            Some(tag) => tag == self.value || (recorded && self.previous.iter().any(|p| p == tag)),
        }
    }
}

/// Whether a tenant may name an existing SNS topic (an EventDestination's
/// `sns.topicArn`): the operator publishes to it with its own role, and
/// SES publishes for the tenant's set, so a topic another namespace's
/// object created, or any topic outside the operator, needs the
/// SesAccount's say-so (`allowed`). `owner_tag`: the topic's owner tag,
/// if it could be read.
pub fn topic_usable(owner_tag: Option<&str>, cluster: &str, namespace: &str, arn: &str, allowed: &[String]) -> bool {
    let ours_here = owner_tag.is_some_and(|tag| {
        tag.strip_prefix(cluster)
            .and_then(|rest| rest.strip_prefix('/'))
            .and_then(|rest| rest.strip_prefix(namespace))
            .is_some_and(|rest| rest.starts_with('/'))
    });
    ours_here || allowed.iter().any(|a| a == arn)
}

/// Why this cluster may not act on an SesAccount whose status records
/// that its resources were tagged by cluster `recorded`, if it may not:
/// the name changed (`--cluster-name`) without `--previous-cluster-names`
/// listing the old one. Acting anyway would find every set "owned by
/// another resource" and make a second event stream next to the first.
pub fn identity_change(recorded: Option<&str>, current: &str, previous: &[String]) -> Option<String> {
    let recorded = recorded.filter(|r| *r != current && !previous.iter().any(|p| p == r))?;
    Some(format!(
        "the cluster name changed from {recorded} to {current}, and this account's resources carry {recorded}'s owner tags: \
         start the operator with --previous-cluster-names={recorded} to re-tag them as {current}'s, \
         or with --cluster-name={recorded} to keep the old name"
    ))
}

/// What the object says about taking over a resource it did not create.
#[derive(Clone, Copy, Debug, Default)]
pub struct AdoptionAsk<'a> {
    /// `spec.adopt`.
    pub asked: bool,
    /// The SesAccount lets this namespace adopt.
    pub allowed: bool,
    /// Status records the adoption: the tag keys the resource came with.
    pub recorded: Option<&'a [String]>,
}

/// Whose a resource found in AWS is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Its owner tag names this object.
    Ours,
    /// Its owner tag is gone, but the object's status records the
    /// resource (created or adopted by it): someone removed the tag by
    /// hand; it goes back on first.
    RestoreTag,
    /// Untagged, adoption asked, allowed and recorded: take it over.
    Adopt,
    /// Untagged, adoption asked and allowed, not recorded yet: status must
    /// record it (with these tag keys, kept on deletion) before any write.
    RecordAdoption { kept_tags: Vec<String> },
    /// Not this object's to change.
    Refused(NotOurs),
}

/// Why a resource found in AWS is not this object's to change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotOurs {
    /// Its owner tag names another object.
    OwnedByAnother,
    /// Untagged and adoption asked, but the SesAccount does not allow it.
    AdoptionNotAllowed,
    /// Untagged and adoption not asked for.
    NotCreatedHere,
}

/// Decides whose the resource with `tags` is.
pub fn decide(
    owner: &Owner,
    owner_tag: &str,
    tags: &BTreeMap<String, String>,
    recorded: bool,
    adoption: AdoptionAsk<'_>,
) -> Decision {
    let tag = tags.get(owner_tag).map(String::as_str);
    if owner.owns(tag, recorded) {
        return Decision::Ours;
    }
    match (tag, adoption) {
        (Some(_), _) => Decision::Refused(NotOurs::OwnedByAnother),
        (None, _) if recorded => Decision::RestoreTag,
        (None, AdoptionAsk { asked: false, .. }) => Decision::Refused(NotOurs::NotCreatedHere),
        (None, AdoptionAsk { allowed: false, .. }) => Decision::Refused(NotOurs::AdoptionNotAllowed),
        (None, AdoptionAsk { recorded: Some(_), .. }) => Decision::Adopt,
        (None, AdoptionAsk { recorded: None, .. }) => Decision::RecordAdoption {
            kept_tags: tags.keys().cloned().collect(),
        },
    }
}

/// The tags to converge to: `desired`, plus the tags an adopted resource
/// came with (`kept`) as AWS holds them, unless the spec sets them.
pub fn with_kept_tags(
    mut desired: BTreeMap<String, String>,
    observed: &BTreeMap<String, String>,
    kept: &[String],
) -> BTreeMap<String, String> {
    for key in kept {
        if let Some(value) = observed.get(key) {
            desired.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    desired
}

/// The option and tag changes in the order they are applied. Adopting, the
/// owner tag goes on first: the IAM policy lets the operator change only
/// resources that carry it.
pub fn ordered<C>(mut options: Vec<C>, mut tags: Vec<C>, adopting: bool) -> Vec<C> {
    if adopting {
        tags.append(&mut options);
        tags
    } else {
        options.append(&mut tags);
        options
    }
}

/// What a pass found of a tagged resource in AWS, and what its object says.
pub struct Found<'a> {
    /// The resource's tags as AWS shows them.
    pub tags: &'a BTreeMap<String, String>,
    /// The object's status records the resource, or this pass created it.
    pub recorded: bool,
    pub adoption: AdoptionAsk<'a>,
    pub drift_check: bool,
    /// This pass created it (its Created Event says it all).
    pub created: bool,
}

/// The plan for a tagged resource (configuration set, identity).
#[derive(Debug, PartialEq)]
pub enum TaggedPlan<C> {
    /// Status must record the adoption (the resource's tag keys) first.
    RecordAdoption(Vec<String>),
    /// Apply `changes` in order; `adopting`: taking it over, keeping these tags.
    Apply {
        changes: Vec<C>,
        adopting: Option<Vec<String>>,
        /// The owner tag was removed by hand; it goes back first.
        restoring_tag: bool,
        report: Report,
    },
}

/// Whose the resource is and the changes that bring it to the spec:
/// `option_changes` (the kind's own diff) and the tag changes `diff_tags`
/// makes from `desired_tags` (plus the tags an adoption keeps). `Err`: not
/// this object's.
pub fn plan_tagged<C>(
    owner: &Owner,
    owner_tag: &str,
    found: Found<'_>,
    desired_tags: BTreeMap<String, String>,
    option_changes: Vec<C>,
    diff_tags: impl FnOnce(&BTreeMap<String, String>, &BTreeMap<String, String>) -> Vec<C>,
) -> Result<TaggedPlan<C>, NotOurs> {
    let kept = found.adoption.recorded.unwrap_or_default();
    let (adopting, restoring_tag) = match decide(owner, owner_tag, found.tags, found.recorded, found.adoption) {
        Decision::Refused(why) => return Err(why),
        Decision::RecordAdoption { kept_tags } => return Ok(TaggedPlan::RecordAdoption(kept_tags)),
        Decision::Adopt => (Some(kept.to_vec()), false),
        Decision::RestoreTag => (None, true),
        Decision::Ours => (None, false),
    };
    let desired_tags = with_kept_tags(desired_tags, found.tags, kept);
    let changes = ordered(
        option_changes,
        diff_tags(&desired_tags, found.tags),
        adopting.is_some() || restoring_tag,
    );
    let changed = !changes.is_empty() && !found.created;
    Ok(TaggedPlan::Apply {
        report: report(changed, found.drift_check, adopting.is_some()),
        adopting,
        restoring_tag,
        changes,
    })
}

/// How the changes of a pass are announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// Nothing changed (or the create already said it all).
    Quiet,
    /// A spec change (or an adoption) applied: Normal `Updated`.
    Updated,
    /// A drift check put back what someone changed: Warning `DriftCorrected`.
    DriftCorrected,
}

pub fn report(changed: bool, drift_check: bool, adopting: bool) -> Report {
    match (changed, drift_check && !adopting) {
        (false, _) => Report::Quiet,
        (true, true) => Report::DriftCorrected,
        (true, false) => Report::Updated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG: &str = "ses.reputation.io/owner";

    fn owner() -> Owner {
        Owner::new("prod", &["default".to_string()], "team-a", "orders")
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn ask(asked: bool, allowed: bool, recorded: Option<&[String]>) -> AdoptionAsk<'_> {
        AdoptionAsk {
            asked,
            allowed,
            recorded,
        }
    }

    #[test]
    fn the_owner_tag_of_this_object_makes_it_ours() {
        let found = tags(&[(TAG, "prod/team-a/orders")]);
        assert_eq!(
            decide(&owner(), TAG, &found, false, ask(false, false, None)),
            Decision::Ours
        );
    }

    #[test]
    fn a_legacy_tag_counts_only_where_status_records_the_resource() {
        let found = tags(&[(TAG, "default/team-a/orders")]);
        assert_eq!(
            decide(&owner(), TAG, &found, true, AdoptionAsk::default()),
            Decision::Ours
        );
        assert_eq!(
            decide(&owner(), TAG, &found, false, AdoptionAsk::default()),
            Decision::Refused(NotOurs::OwnedByAnother)
        );
    }

    #[test]
    fn another_tenants_tag_is_never_ours_even_with_adopt() {
        // Same name in another namespace: the tag names the other object.
        let found = tags(&[(TAG, "prod/team-b/orders")]);
        assert_eq!(
            decide(&owner(), TAG, &found, true, ask(true, true, Some(&[]))),
            Decision::Refused(NotOurs::OwnedByAnother)
        );
    }

    #[test]
    fn a_tag_removed_by_hand_from_a_recorded_resource_goes_back() {
        let found = tags(&[("team", "x")]);
        assert_eq!(
            decide(&owner(), TAG, &found, true, AdoptionAsk::default()),
            Decision::RestoreTag
        );
        // Not recorded: nothing proves it is this object's.
        assert_eq!(
            decide(&owner(), TAG, &found, false, AdoptionAsk::default()),
            Decision::Refused(NotOurs::NotCreatedHere)
        );
    }

    #[test]
    fn a_topic_is_usable_if_made_for_this_namespace_or_allowed_by_the_account() {
        let arn = "arn:aws:sns:us-east-1:123456789012:alerts";
        let usable = |tag: Option<&str>, allowed: &[String]| topic_usable(tag, "prod", "team-a", arn, allowed);
        assert!(usable(Some("prod/team-a/bounces"), &[]));
        // Another tenant's topic, a prefix of the namespace, another
        // cluster's, or a topic outside the operator: only if allowed.
        assert!(!usable(Some("prod/team-b/bounces"), &[]));
        assert!(!usable(Some("prod/team-ab/bounces"), &[]));
        assert!(!usable(Some("staging/team-a/bounces"), &[]));
        assert!(!usable(None, &[]));
        assert!(usable(None, &[arn.to_string()]));
        assert!(usable(Some("prod/team-b/bounces"), &[arn.to_string()]));
    }

    #[test]
    fn a_changed_cluster_name_stops_unless_the_old_one_is_migrated() {
        assert_eq!(identity_change(None, "prod-1", &[]), None);
        assert_eq!(identity_change(Some("prod-1"), "prod-1", &[]), None);
        let why = identity_change(Some("prod"), "prod-1", &[]).expect("refused");
        assert!(why.contains("--previous-cluster-names=prod"), "{why}");
        assert_eq!(identity_change(Some("prod"), "prod-1", &["prod".to_string()]), None);
        // A tag under a previous name counts where status records it.
        let owner = Owner::new("prod-1", &["prod".to_string()], "team-a", "orders");
        assert!(owner.owns(Some("prod/team-a/orders"), true));
        assert!(!owner.owns(Some("prod/team-a/orders"), false));
    }

    #[test]
    fn untagged_without_adopt_is_not_ours() {
        assert_eq!(
            decide(&owner(), TAG, &tags(&[("team", "x")]), false, ask(false, true, None)),
            Decision::Refused(NotOurs::NotCreatedHere)
        );
    }

    #[test]
    fn adoption_the_account_does_not_allow_is_refused() {
        assert_eq!(
            decide(&owner(), TAG, &BTreeMap::new(), false, ask(true, false, None)),
            Decision::Refused(NotOurs::AdoptionNotAllowed)
        );
    }

    #[test]
    fn adoption_is_recorded_with_the_tags_found_before_it_is_done() {
        let found = tags(&[("cost-center", "42"), ("team", "x")]);
        assert_eq!(
            decide(&owner(), TAG, &found, false, ask(true, true, None)),
            Decision::RecordAdoption {
                kept_tags: vec!["cost-center".into(), "team".into()]
            }
        );
        let kept = ["cost-center".to_string()];
        assert_eq!(
            decide(&owner(), TAG, &found, false, ask(true, true, Some(&kept))),
            Decision::Adopt
        );
    }

    #[test]
    fn kept_tags_stay_as_aws_holds_them_unless_the_spec_sets_them() {
        let desired = tags(&[(TAG, "prod/team-a/orders"), ("team", "spec")]);
        let observed = tags(&[("team", "aws"), ("cost-center", "42"), ("stray", "1")]);
        let kept = ["team".to_string(), "cost-center".to_string(), "gone".to_string()];
        assert_eq!(
            with_kept_tags(desired, &observed, &kept),
            tags(&[(TAG, "prod/team-a/orders"), ("team", "spec"), ("cost-center", "42")])
        );
    }

    #[test]
    fn adopting_puts_the_tags_first() {
        assert_eq!(ordered(vec!["opt"], vec!["tag"], true), vec!["tag", "opt"]);
        assert_eq!(ordered(vec!["opt"], vec!["tag"], false), vec!["opt", "tag"]);
    }

    #[test]
    fn only_a_drift_check_of_an_owned_resource_reports_drift() {
        assert_eq!(report(false, true, false), Report::Quiet);
        assert_eq!(report(true, true, false), Report::DriftCorrected);
        assert_eq!(report(true, true, true), Report::Updated);
        assert_eq!(report(true, false, false), Report::Updated);
    }
}
