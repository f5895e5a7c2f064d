//! kstatus conditions (`Ready`, `Reconciling`, `Stalled`) and the rules for
//! merging a freshly computed condition list into the stored one.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";
pub const SENDING_ENABLED: &str = "SendingEnabled";
pub const BOUNCE_RATE_HEALTHY: &str = "BounceRateHealthy";
pub const COMPLAINT_RATE_HEALTHY: &str = "ComplaintRateHealthy";

/// A condition as the reconcilers compute it, before timestamps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    pub type_: &'static str,
    /// `None` is `Unknown`.
    pub status: Option<bool>,
    pub reason: String,
    pub message: String,
}

impl Desired {
    pub fn new(type_: &'static str, status: bool, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::tri(type_, Some(status), reason, message)
    }

    pub fn tri(
        type_: &'static str,
        status: Option<bool>,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// The kstatus triple for an object that converged.
pub fn ready(message: impl Into<String>) -> Vec<Desired> {
    vec![
        Desired::new(READY, true, "Synced", message),
        Desired::new(RECONCILING, false, "Synced", ""),
        Desired::new(STALLED, false, "Synced", ""),
    ]
}

/// The kstatus triple for an object still working towards its spec
/// (includes transient AWS errors such as throttling).
pub fn reconciling(reason: impl Into<String>, message: impl Into<String>) -> Vec<Desired> {
    let (reason, message) = (reason.into(), message.into());
    vec![
        Desired::new(READY, false, reason.clone(), message.clone()),
        Desired::new(RECONCILING, true, reason, message),
        Desired::new(STALLED, false, "Progressing", ""),
    ]
}

/// The kstatus triple for an object that cannot progress until its spec
/// (or something it references) changes.
pub fn stalled(reason: impl Into<String>, message: impl Into<String>) -> Vec<Desired> {
    let (reason, message) = (reason.into(), message.into());
    vec![
        Desired::new(READY, false, reason.clone(), message.clone()),
        Desired::new(RECONCILING, false, reason.clone(), ""),
        Desired::new(STALLED, true, reason, message),
    ]
}

/// Merges `desired` into `current`: a condition keeps its
/// `lastTransitionTime` unless its status flips, so `kubectl get` ages and
/// GitOps tools see real transitions only. Conditions not in `desired` are
/// kept as they are.
pub fn merge(current: &[Condition], desired: &[Desired], generation: Option<i64>, now: &Time) -> Vec<Condition> {
    let mut out: Vec<Condition> = current.to_vec();
    for d in desired {
        let status = match d.status {
            Some(true) => "True",
            Some(false) => "False",
            None => "Unknown",
        }
        .to_string();
        let fresh = Condition {
            type_: d.type_.to_string(),
            status: status.clone(),
            reason: d.reason.clone(),
            message: d.message.clone(),
            observed_generation: generation,
            last_transition_time: now.clone(),
        };
        match out.iter_mut().find(|c| c.type_ == d.type_) {
            Some(existing) if existing.status == status => {
                existing.reason = fresh.reason;
                existing.message = fresh.message;
                existing.observed_generation = fresh.observed_generation;
            }
            Some(existing) => *existing = fresh,
            None => out.push(fresh),
        }
    }
    out
}

/// Looks up a condition's status (`True`/`False`/`Unknown`).
pub fn status_of<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    status_of(conditions, type_).is_some_and(|c| c.status == "True")
}

/// Whether the last pass found the AWS name taken by something this
/// object may not touch (Stalled `AlreadyExists` or `AdoptionNotAllowed`).
/// A create would only be refused again, so the next pass reads instead:
/// a restart then costs such an object one read, not a refused create and
/// a read.
pub fn found_name_taken(conditions: &[Condition]) -> bool {
    status_of(conditions, STALLED)
        .is_some_and(|c| c.status == "True" && matches!(c.reason.as_str(), "AlreadyExists" | "AdoptionNotAllowed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_found_taken_is_remembered_only_while_stalled_for_it() {
        let stalled = |reason: &str, status: &str| Condition {
            type_: STALLED.into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            observed_generation: Some(1),
            last_transition_time: at(0),
        };
        assert!(found_name_taken(&[stalled("AlreadyExists", "True")]));
        assert!(found_name_taken(&[stalled("AdoptionNotAllowed", "True")]));
        assert!(!found_name_taken(&[stalled("AlreadyExists", "False")]));
        assert!(!found_name_taken(&[stalled("TopicNotAllowed", "True")]));
        assert!(!found_name_taken(&[]));
    }

    fn at(secs: i64) -> Time {
        Time(jiff::Timestamp::from_second(secs).expect("valid timestamp"))
    }

    #[test]
    fn transition_time_changes_only_when_status_flips() {
        let first = merge(&[], &ready("ok"), Some(1), &at(10));
        let same = merge(&first, &ready("still ok"), Some(2), &at(20));
        let ready_cond = status_of(&same, READY).expect("Ready present");
        assert_eq!(ready_cond.last_transition_time, at(10));
        assert_eq!(ready_cond.message, "still ok");
        assert_eq!(ready_cond.observed_generation, Some(2));

        let flipped = merge(&same, &stalled("BadRequest", "nope"), Some(3), &at(30));
        assert_eq!(status_of(&flipped, READY).expect("Ready").last_transition_time, at(30));
        assert!(is_true(&flipped, STALLED));
        assert_eq!(flipped.len(), 3);
    }

    #[test]
    fn unrelated_conditions_survive_a_merge() {
        let with_sending = merge(
            &[],
            &[Desired::new(SENDING_ENABLED, true, "Enabled", "")],
            Some(1),
            &at(1),
        );
        let merged = merge(&with_sending, &reconciling("Creating", "creating"), Some(1), &at(2));
        assert!(is_true(&merged, SENDING_ENABLED));
        assert!(is_true(&merged, RECONCILING));
    }
}
