//! Where a ReputationPolicy's alerts may go: the rule that keeps a tenant
//! from pointing the operator's own role at any SNS topic. Pure: the
//! SesAccount and the EventDestination named come in as values.

use kube::ResourceExt;

use crate::api::reputation_policy::Notify;
use crate::api::{EventDestination, SesAccount};

/// Where a policy's alerts may go for sets of one SesAccount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotifyTarget {
    Topic(String),
    /// Not yet known (the EventDestination has no topic yet).
    Waiting(String),
    /// Refused: (condition reason, message).
    Refused(&'static str, String),
}

/// Resolves a policy's notify target for sets of `account` (`None`: the
/// SesAccount does not exist; named as `default_account`). `destination`
/// is the EventDestination `notify.eventDestinationRef` names, looked up
/// in the policy's namespace (`None`: no such object). A topic the
/// operator created for an EventDestination of the namespace is always
/// allowed; any other topic only if the SesAccount lists it in
/// `spec.notify.allowedTopicArns`: the operator publishes with its own
/// role, so a tenant must not be able to point it at any topic.
pub fn target(
    default_account: &str,
    account: Option<&SesAccount>,
    notify: &Notify,
    destination: Option<&EventDestination>,
) -> NotifyTarget {
    let allowed = |arn: &str| {
        account
            .and_then(|a| a.spec.notify.as_ref())
            .is_some_and(|n| n.allowed_topic_arns.iter().any(|t| t == arn))
    };
    let refuse = |arn: &str| {
        let account = account.map_or_else(|| default_account.to_string(), |a| a.name_any());
        NotifyTarget::Refused(
            "NotifyNotAllowed",
            format!("topic {arn} is not in spec.notify.allowedTopicArns of SesAccount {account}"),
        )
    };
    if let Some(arn) = &notify.topic_arn {
        return if allowed(arn) {
            NotifyTarget::Topic(arn.clone())
        } else {
            refuse(arn)
        };
    }
    let Some(name) = notify.event_destination_ref.as_ref().map(|r| &r.name) else {
        return NotifyTarget::Refused("NotifyTargetNotFound", "notify names no target".into());
    };
    let Some(dest) = destination else {
        return NotifyTarget::Refused(
            "NotifyTargetNotFound",
            format!("EventDestination {name} does not exist in this namespace"),
        );
    };
    match dest.status.as_ref() {
        Some(s) if s.topic_owned && s.topic_arn.is_some() => {
            NotifyTarget::Topic(s.topic_arn.clone().unwrap_or_default())
        }
        Some(s) if s.topic_arn.is_some() => {
            let arn = s.topic_arn.clone().unwrap_or_default();
            if allowed(&arn) {
                NotifyTarget::Topic(arn)
            } else {
                refuse(&arn)
            }
        }
        _ => NotifyTarget::Waiting(format!("EventDestination {name} has no SNS topic yet")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::event_destination::LocalRef;

    const FOREIGN: &str = "arn:aws:sns:eu-west-1:123456789012:someone-else";

    fn account(allowed: &[&str]) -> SesAccount {
        serde_json::from_value(json!({
            "apiVersion": "ses.reputation.io/v1alpha1",
            "kind": "SesAccount",
            "metadata": {"name": "prod"},
            "spec": {"region": "eu-west-1", "notify": {"allowedTopicArns": allowed}},
        }))
        .expect("SesAccount")
    }

    fn destination(topic_arn: &str, topic_owned: bool) -> EventDestination {
        serde_json::from_value(json!({
            "apiVersion": "ses.reputation.io/v1alpha1",
            "kind": "EventDestination",
            "metadata": {"name": "alerts", "namespace": "shop"},
            "spec": {"configurationSetRef": {"name": "orders"}},
            "status": {"topicArn": topic_arn, "topicOwned": topic_owned},
        }))
        .expect("EventDestination")
    }

    fn by_topic(arn: &str) -> Notify {
        Notify {
            topic_arn: Some(arn.into()),
            event_destination_ref: None,
        }
    }

    fn by_destination() -> Notify {
        Notify {
            topic_arn: None,
            event_destination_ref: Some(LocalRef { name: "alerts".into() }),
        }
    }

    #[test]
    fn a_topic_arn_needs_the_accounts_allow_list() {
        let refused = target("default", Some(&account(&[])), &by_topic(FOREIGN), None);
        assert_eq!(
            refused,
            NotifyTarget::Refused(
                "NotifyNotAllowed",
                format!("topic {FOREIGN} is not in spec.notify.allowedTopicArns of SesAccount prod")
            )
        );
        let allowed = target("default", Some(&account(&[FOREIGN])), &by_topic(FOREIGN), None);
        assert_eq!(allowed, NotifyTarget::Topic(FOREIGN.into()));
        // A missing SesAccount allows nothing and is named by the default.
        let missing = target("default", None, &by_topic(FOREIGN), None);
        assert!(matches!(missing, NotifyTarget::Refused(_, m) if m.ends_with("SesAccount default")));
    }

    #[test]
    fn a_destination_topic_is_allowed_only_when_the_operator_owns_it() {
        let owned = destination("arn:aws:sns:eu-west-1:123456789012:ours", true);
        let t = target("default", Some(&account(&[])), &by_destination(), Some(&owned));
        assert_eq!(t, NotifyTarget::Topic("arn:aws:sns:eu-west-1:123456789012:ours".into()));
        // A destination pointing at a topic it did not create: the allow-list decides.
        let borrowed = destination(FOREIGN, false);
        let t = target("default", Some(&account(&[])), &by_destination(), Some(&borrowed));
        assert!(matches!(t, NotifyTarget::Refused("NotifyNotAllowed", _)), "{t:?}");
        let t = target("default", None, &by_destination(), None);
        assert!(matches!(t, NotifyTarget::Refused("NotifyTargetNotFound", _)), "{t:?}");
    }
}
