//! Pure desired-vs-observed logic: what AWS should look like for a spec,
//! and the smallest set of changes that gets it there. No clients here, so
//! all of it unit-tests without a cluster or AWS.

pub mod configuration_set;
pub mod email_identity;
pub mod event_destination;
pub mod event_stream;
pub mod topic;

/// Tags to add or overwrite and tag keys to remove so that a resource's
/// tags match `desired`. Tags AWS reserves (`aws:`) are never removed.
pub fn tag_changes(
    desired: &std::collections::BTreeMap<String, String>,
    observed: &std::collections::BTreeMap<String, String>,
) -> (std::collections::BTreeMap<String, String>, Vec<String>) {
    let to_set = desired
        .iter()
        .filter(|(k, v)| observed.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let to_remove = observed
        .keys()
        .filter(|k| !desired.contains_key(*k) && !k.starts_with("aws:"))
        .cloned()
        .collect();
    (to_set, to_remove)
}
