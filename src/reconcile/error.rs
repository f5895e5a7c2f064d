//! How a pass ends when it does not converge. [`Error`] is a real failure:
//! retried with the object's back-off and counted by the reconcile metric
//! under its [`Error::metric_label`]. [`Halt`] is a pass stopping on
//! purpose (read the object fresh and run again, wait for dependents, or
//! stalled on a spec the operator will not carry out): [`super::drive`]
//! turns each into the controller's next action, none is an error.
//! Refusals the operator decides itself are their own type ([`Refusal`]),
//! not AWS errors with made-up codes; condition reasons come from the
//! variants.

use kube::runtime::controller::Action;

use crate::api::OWNER_TAG;
use crate::aws::scheduler::Priority;
use crate::aws::{AwsError, ErrorKind, NOT_LEADER};
use crate::domain::ownership::NotOurs;

/// A failure of a pass: retried with the object's back-off.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API error while {action}: {source}")]
    Kube {
        action: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// Checked by the operator, not by AWS: the spec as it stands cannot be
    /// carried out. The pipeline writes Stalled with [`Refusal::reason`].
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// Something the API server or the pipeline guarantees did not hold
    /// (an object without a name or uid, a fresh pass asking to be read
    /// fresh): a bug, logged and retried.
    #[error("invariant broken: {0}")]
    Invariant(&'static str),
    /// The write permits were closed: the process is shutting down.
    #[error("the operator is shutting down")]
    ShuttingDown,
}

impl Error {
    pub(crate) fn kube(action: &'static str) -> impl FnOnce(kube::Error) -> Self {
        move |source| Error::Kube { action, source }
    }

    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, Error::Kube { source: kube::Error::Api(status), .. } if status.code == 404)
    }

    /// The `result` label of `ses_reputation_reconciles_total` for a pass
    /// that failed: one value per way of failing an on-call engineer would
    /// act on differently.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "kube_error",
            Error::Aws(e) if e.code == NOT_LEADER => "not_leader",
            Error::Aws(e) if e.kind == ErrorKind::Cancelled => "shutdown",
            Error::Aws(e) if e.kind == ErrorKind::Throttled => "throttled",
            Error::Aws(_) => "aws_error",
            Error::Refused(_) => "refused",
            Error::Invariant(_) => "invariant",
            Error::ShuttingDown => "shutdown",
        }
    }

    /// The pass stopped because this process is stopping or lost the
    /// lead, not because of anything about the object: nothing is written
    /// to its status (a restart must not flip `Ready`), and the next
    /// leader's pass takes over.
    pub fn is_stopping(&self) -> bool {
        match self {
            Error::Aws(e) => e.kind == ErrorKind::Cancelled,
            Error::ShuttingDown => true,
            _ => false,
        }
    }

    /// Whether the pass cannot succeed until the spec (or what it
    /// references) changes: the object is Stalled, not retried with
    /// back-off. `AlreadyExists` from a create means someone else's
    /// resource holds the name.
    pub fn is_terminal(&self) -> bool {
        match self {
            Error::Aws(e) => e.is_terminal() || e.kind == ErrorKind::AlreadyExists,
            Error::Refused(_) => true,
            _ => false,
        }
    }

    /// The condition reason this failure shows: AWS's own error code, or
    /// the refusal's.
    pub fn reason(&self) -> String {
        match self {
            Error::Aws(e) => e.reason(),
            Error::Refused(r) => r.reason().to_string(),
            Error::Kube { .. } => "KubernetesApiError".into(),
            Error::Invariant(_) => "OperatorError".into(),
            Error::ShuttingDown => "ShuttingDown".into(),
        }
    }
}

/// A spec the operator will not carry out as it stands. Each is decided by
/// the operator from what it observed (an owner tag, a claim, an
/// allow-list), never by AWS.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// The AWS resource exists and is not this object's (its owner tag names
    /// another object, or it has none and adoption was not asked for).
    #[error("{0}")]
    NotOurs(String),
    /// An event destination that exists on the set and that this object
    /// never claimed: the claim is given up so deleting it leaves that one.
    #[error("{0}")]
    DestinationNotOurs(String),
    /// `spec.adopt` on a resource the SesAccount does not let this
    /// namespace adopt.
    #[error("{0}")]
    AdoptionNotAllowed(String),
    /// An SNS topic that exists and is not the operator's for this object.
    #[error("{0}")]
    TopicNotOurs(String),
    /// An existing topic (`sns.topicArn`) this namespace may not use: made
    /// for another namespace, or outside the operator, and not allowed by
    /// the SesAccount.
    #[error("{0}")]
    TopicNotAllowed(String),
    /// An existing topic (`sns.topicArn`) whose access policy does not let
    /// SES publish this set's events, or that does not exist: SNS would
    /// drop every event without a word.
    #[error("{0}")]
    TopicPolicyDeniesSes(String),
    /// A destination target (topic, stream) this namespace may not use,
    /// or none at all.
    #[error("{0}")]
    InvalidTarget(String),
    /// A subscription filter policy SNS would refuse.
    #[error("{0}")]
    InvalidFilterPolicy(String),
}

impl Refusal {
    /// The Stalled condition's reason (the same values earlier releases
    /// showed, so alerts and dashboards keep matching).
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::NotOurs(_) | Refusal::DestinationNotOurs(_) => "AlreadyExists",
            Refusal::AdoptionNotAllowed(_) => "AdoptionNotAllowed",
            Refusal::TopicNotOurs(_) => "TopicNotOurs",
            Refusal::TopicNotAllowed(_) => "TopicNotAllowed",
            Refusal::TopicPolicyDeniesSes(_) => "TopicPolicyDeniesSes",
            Refusal::InvalidTarget(_) => "InvalidTarget",
            Refusal::InvalidFilterPolicy(_) => "InvalidFilterPolicy",
        }
    }
}

impl Refusal {
    /// Why a tagged resource found in AWS may not be changed, in words for
    /// its kind (`what`: "configuration set").
    pub fn not_ours(why: NotOurs, what: &str, name: &str, account: &str) -> Refusal {
        match why {
            NotOurs::OwnedByAnother => Refusal::NotOurs(format!(
                "{what} {name} already exists in AWS and is owned by another resource (tag {OWNER_TAG}); it is left untouched"
            )),
            NotOurs::AdoptionNotAllowed => Refusal::AdoptionNotAllowed(format!(
                "{what} {name} already exists in AWS and SesAccount {account} does not let this namespace adopt (spec.adoption.allowedNamespaces); it is left untouched"
            )),
            NotOurs::NotCreatedHere => Refusal::NotOurs(format!(
                "{what} {name} already exists in AWS and was not created by this resource; it is left untouched (set spec.adopt: true to take it over)"
            )),
        }
    }
}

/// A pass stopping before it converged, on purpose or by failure.
#[derive(Debug, thiserror::Error)]
pub enum Halt {
    /// Computed from the cache and wants to write (carrying the pass's
    /// priority when it goes to AWS): [`super::drive`] reads the object
    /// fresh and runs the pass again. Never leaves `drive`.
    #[error("cached object must be read fresh before a write")]
    Stale(Option<Priority>),
    /// Cleanup cannot finish yet (dependents still exist): the finalizer
    /// stays and the object is looked at again shortly.
    #[error("waiting: {0}")]
    Waiting(String),
    /// The Stalled condition is written; the object is looked at again
    /// with this action (a spec change or the drift period). Not counted as
    /// an error: one tenant's bad spec must not keep the error alert firing.
    #[error("stalled")]
    Stalled(Action),
    /// A real failure (see [`Error`]).
    #[error(transparent)]
    Failed(Error),
}

impl Halt {
    /// For passes outside [`super::drive`] that only write status: a
    /// second fresh read asking for a fresh read, or any other halt, is a
    /// broken invariant there.
    pub fn into_error(self) -> Error {
        match self {
            Halt::Failed(e) => e,
            _ => Error::Invariant("a status-only pass halted without a failure"),
        }
    }
}

impl From<Error> for Halt {
    fn from(e: Error) -> Self {
        Halt::Failed(e)
    }
}

impl From<AwsError> for Halt {
    fn from(e: AwsError) -> Self {
        Halt::Failed(Error::Aws(e))
    }
}

impl From<Refusal> for Halt {
    fn from(r: Refusal) -> Self {
        Halt::Failed(Error::Refused(r))
    }
}

/// How a pass that did not fail ended, for the reconcile metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Converged, skipped (nothing due) or blocked on another object.
    Done,
    /// Cleanup waits for dependents.
    Waiting,
    /// Stalled on the spec.
    Stalled,
    /// The caches did not have their first full list yet: nothing was
    /// decided, the object comes back shortly.
    Unsynced,
}

impl Outcome {
    pub fn metric_label(self) -> &'static str {
        match self {
            Outcome::Done => "ok",
            Outcome::Waiting => "waiting",
            Outcome::Stalled => "stalled",
            Outcome::Unsynced => "unsynced",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(kind: ErrorKind, code: &str) -> Error {
        Error::Aws(AwsError {
            operation: "sesv2:CreateConfigurationSet",
            kind,
            code: code.into(),
            message: "m".into(),
        })
    }

    #[test]
    fn refusals_stall_with_their_own_reason_and_message() {
        let e = Error::from(Refusal::TopicNotOurs("topic t is not ours".into()));
        assert!(e.is_terminal());
        assert_eq!(e.reason(), "TopicNotOurs");
        assert_eq!(e.to_string(), "topic t is not ours");
        assert_eq!(e.metric_label(), "refused");
        assert_eq!(Refusal::DestinationNotOurs(String::new()).reason(), "AlreadyExists");
    }

    #[test]
    fn only_a_stopping_process_is_stopping() {
        // Cancelled calls (shutdown) and the fence's NotLeader: not the
        // object's failure, so its status is left alone.
        assert!(aws(ErrorKind::Cancelled, "Cancelled").is_stopping());
        assert!(aws(ErrorKind::Cancelled, NOT_LEADER).is_stopping());
        assert!(Error::ShuttingDown.is_stopping());
        assert!(!aws(ErrorKind::Transport, "Timeout").is_stopping());
        assert!(!Error::from(Refusal::InvalidTarget(String::new())).is_stopping());
    }

    #[test]
    fn aws_errors_stall_only_when_retrying_cannot_help() {
        assert!(aws(ErrorKind::BadRequest, "BadRequestException").is_terminal());
        assert!(aws(ErrorKind::AlreadyExists, "AlreadyExistsException").is_terminal());
        assert!(!aws(ErrorKind::Server, "InternalFailure").is_terminal());
        assert!(!aws(ErrorKind::Throttled, "TooManyRequestsException").is_terminal());
        assert_eq!(
            aws(ErrorKind::LimitExceeded, "LimitExceededException").reason(),
            "LimitExceeded"
        );
    }

    #[test]
    fn metric_labels_separate_what_on_call_acts_on() {
        assert_eq!(aws(ErrorKind::Server, "InternalFailure").metric_label(), "aws_error");
        assert_eq!(aws(ErrorKind::Throttled, "Throttling").metric_label(), "throttled");
        assert_eq!(aws(ErrorKind::Other, NOT_LEADER).metric_label(), "not_leader");
        assert_eq!(aws(ErrorKind::Cancelled, "Cancelled").metric_label(), "shutdown");
        assert_eq!(Error::ShuttingDown.metric_label(), "shutdown");
        assert_eq!(Outcome::Stalled.metric_label(), "stalled");
        assert_eq!(Outcome::Done.metric_label(), "ok");
    }

    #[test]
    fn any_error_converts_into_a_failed_halt() {
        let halt: Halt = aws(ErrorKind::Server, "InternalFailure").into();
        assert!(matches!(halt, Halt::Failed(Error::Aws(_))));
        let halt: Halt = Refusal::NotOurs("x".into()).into();
        assert!(matches!(halt, Halt::Failed(Error::Refused(Refusal::NotOurs(_)))));
    }
}
