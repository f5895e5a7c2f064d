//! The relations between kinds: which objects must be reconciled again when
//! another object changes. Each relation is a named function over the
//! [`Index`], unit-tested without a cluster; `*_watches` attach them to a
//! kind's controller. A new relation is one function here and one line in
//! the `*_watches` of the kind it triggers.

use std::collections::HashSet;
use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::Controller;
use kube::runtime::reflector::{ObjectRef, Store};

use super::Index;
use super::fanout::{Fanout, Fed};
use crate::api::{ConfigurationSet, EmailIdentity, EventDestination, ReputationPolicy, SesAccount};

type Refs<K> = Vec<ObjectRef<K>>;

fn refs<K: kube::Resource<DynamicType = ()>>(objs: impl IntoIterator<Item = Arc<K>>) -> Refs<K> {
    objs.into_iter().map(|o| ObjectRef::from_obj(&*o)).collect()
}

/// The sets of an SesAccount (its allow-list or region changed).
pub fn sets_of_account(index: &Index, account: &SesAccount) -> Refs<ConfigurationSet> {
    refs(index.sets_of_account(&account.name_any()))
}

/// A policy can select any set of its namespace.
pub fn sets_in_namespace_of_policy(index: &Index, policy: &ReputationPolicy) -> Refs<ConfigurationSet> {
    let ns = policy.namespace();
    refs(index.sets.state().into_iter().filter(|s| s.namespace() == ns))
}

/// A set being deleted waits for its destinations to go.
pub fn set_of_destination(index: &Index, d: &EventDestination) -> Refs<ConfigurationSet> {
    let ns = d.namespace().unwrap_or_default();
    refs(index.set(&ns, &d.spec.configuration_set_ref.name))
}

/// A set's status lists the identities using it as default, and a set
/// being deleted waits for them.
pub fn set_of_identity(index: &Index, id: &EmailIdentity) -> Refs<ConfigurationSet> {
    let ns = id.namespace().unwrap_or_default();
    refs(
        id.spec
            .configuration_set_ref
            .as_ref()
            .and_then(|r| index.set(&ns, &r.name)),
    )
}

/// A destination follows its set (readiness, name, account).
pub fn destinations_of_set(index: &Index, set: &ConfigurationSet) -> Refs<EventDestination> {
    refs(index.destinations_of(set.namespace().as_deref(), &set.name_any()))
}

/// The destinations whose set uses an SesAccount.
pub fn destinations_of_account(index: &Index, account: &SesAccount) -> Refs<EventDestination> {
    let in_account: HashSet<(Option<String>, String)> = index
        .sets_of_account(&account.name_any())
        .iter()
        .map(|s| (s.namespace(), s.name_any()))
        .collect();
    refs(
        index
            .destinations
            .state()
            .into_iter()
            .filter(|d| in_account.contains(&(d.namespace(), d.spec.configuration_set_ref.name.clone()))),
    )
}

/// A policy's status lists the sets it covers.
pub fn policies_of_set(index: &Index, set: &ConfigurationSet) -> Refs<ReputationPolicy> {
    refs(index.policies_in(set.namespace().as_deref()))
}

/// Notify targets: an EventDestination's topic.
pub fn notifying_policies_of_destination(index: &Index, d: &EventDestination) -> Refs<ReputationPolicy> {
    refs(
        index
            .policies_in(d.namespace().as_deref())
            .into_iter()
            .filter(|p| p.spec.actions.notify.is_some()),
    )
}

/// Notify targets: an account's allow-list of topics.
pub fn notifying_policies(index: &Index, _account: &SesAccount) -> Refs<ReputationPolicy> {
    refs(
        index
            .policies
            .state()
            .into_iter()
            .filter(|p| p.spec.actions.notify.is_some()),
    )
}

/// An identity's default set (its name, its readiness).
pub fn identities_of_set(index: &Index, set: &ConfigurationSet) -> Refs<EmailIdentity> {
    refs(index.identities_using(set.namespace().as_deref(), &set.name_any()))
}

/// The identities of an SesAccount.
pub fn identities_of_account(index: &Index, account: &SesAccount) -> Refs<EmailIdentity> {
    refs(index.identities_of_account(&account.name_any()))
}

/// Makes a relation the mapper a controller's watch wants.
fn relate<S, T>(
    index: &Index,
    relation: fn(&Index, &S) -> Refs<T>,
) -> impl Fn(Arc<S>) -> Refs<T> + Send + Sync + 'static
where
    S: 'static,
    T: kube::Resource<DynamicType = ()> + 'static,
{
    let index = index.clone();
    move |source: Arc<S>| relation(&index, &source)
}

/// What reconciles a ConfigurationSet besides its own changes.
pub fn set_watches(c: Controller<ConfigurationSet>, fanout: &Fanout, index: &Index) -> Controller<ConfigurationSet> {
    c.watches_shared_stream(fanout.subscribe(), relate(index, sets_of_account))
        .watches_shared_stream(fanout.subscribe(), relate(index, sets_in_namespace_of_policy))
        .watches_shared_stream(fanout.subscribe(), relate(index, set_of_destination))
        .watches_shared_stream(fanout.subscribe(), relate(index, set_of_identity))
        .reconcile_on(members_of_changed_namespaces(index, index.sets.clone()))
}

/// What reconciles an EventDestination besides its own changes.
pub fn destination_watches(
    c: Controller<EventDestination>,
    fanout: &Fanout,
    index: &Index,
) -> Controller<EventDestination> {
    c.watches_shared_stream(fanout.subscribe(), relate(index, destinations_of_set))
        .watches_shared_stream(fanout.subscribe(), relate(index, destinations_of_account))
        .reconcile_on(members_of_changed_namespaces(index, index.destinations.clone()))
}

/// What reconciles a ReputationPolicy besides its own changes.
pub fn policy_watches(c: Controller<ReputationPolicy>, fanout: &Fanout, index: &Index) -> Controller<ReputationPolicy> {
    c.watches_shared_stream(fanout.subscribe(), relate(index, policies_of_set))
        .watches_shared_stream(fanout.subscribe(), relate(index, notifying_policies_of_destination))
        .watches_shared_stream(fanout.subscribe(), relate(index, notifying_policies))
}

/// What reconciles an EmailIdentity besides its own changes.
pub fn identity_watches(c: Controller<EmailIdentity>, fanout: &Fanout, index: &Index) -> Controller<EmailIdentity> {
    c.watches_shared_stream(fanout.subscribe(), relate(index, identities_of_set))
        .watches_shared_stream(fanout.subscribe(), relate(index, identities_of_account))
        .reconcile_on(members_of_changed_namespaces(index, index.identities.clone()))
}

/// The cached objects of each namespace whose labels changed
/// (`allowedNamespaces` selects by namespace label).
fn members_of_changed_namespaces<K>(
    index: &Index,
    store: Store<K>,
) -> impl futures::Stream<Item = ObjectRef<K>> + Send + 'static
where
    K: Fed,
{
    use futures::StreamExt;
    let changed = futures::stream::unfold(index.namespace_changes.subscribe(), |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(ns) => return Some((ns, rx)),
                // Missed some: the drift timer covers them.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    changed.flat_map(move |ns| {
        let ns = Some(ns);
        futures::stream::iter(refs(store.state().into_iter().filter(|o| o.namespace() == ns)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::tests::Fixture;

    fn names<K: kube::Resource<DynamicType = ()>>(refs: Refs<K>) -> Vec<String> {
        let mut names: Vec<String> = refs.into_iter().map(|r| r.name).collect();
        names.sort();
        names
    }

    fn account(name: &str) -> SesAccount {
        SesAccount::new(
            name,
            serde_json::from_value(serde_json::json!({"region": "us-east-1"})).unwrap(),
        )
    }

    #[test]
    fn an_account_change_reaches_its_sets_their_destinations_and_its_identities() {
        let mut f = Fixture::new("default");
        f.set("a", "s1", None);
        f.set("a", "s2", Some("other"));
        f.destination("a", "d1", "s1");
        f.destination("a", "d2", "s2");
        f.identity("a", "i1", None, None);
        f.identity("a", "i2", None, Some("other"));
        let default = account("default");
        assert_eq!(names(sets_of_account(&f.index, &default)), ["s1"]);
        assert_eq!(names(destinations_of_account(&f.index, &default)), ["d1"]);
        assert_eq!(names(identities_of_account(&f.index, &default)), ["i1"]);
        assert_eq!(names(destinations_of_account(&f.index, &account("other"))), ["d2"]);
    }

    #[test]
    fn a_destination_or_identity_reaches_only_its_own_set() {
        let mut f = Fixture::new("default");
        f.set("a", "s", None);
        f.set("b", "s", None);
        f.destination("a", "d", "s");
        f.destination("a", "orphan", "gone");
        f.identity("b", "i", Some("s"), None);
        let d = f
            .index
            .destinations
            .state()
            .into_iter()
            .find(|d| d.name_any() == "d")
            .unwrap();
        let r = set_of_destination(&f.index, &d);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].namespace.as_deref(), Some("a"));
        let orphan = f
            .index
            .destinations
            .state()
            .into_iter()
            .find(|d| d.name_any() == "orphan")
            .unwrap();
        assert!(set_of_destination(&f.index, &orphan).is_empty());
        let i = f.index.identities.state().into_iter().next().unwrap();
        let r = set_of_identity(&f.index, &i);
        assert_eq!(r[0].namespace.as_deref(), Some("b"));
    }

    #[test]
    fn a_set_change_reaches_its_destinations_identities_and_the_policies_of_its_namespace() {
        let mut f = Fixture::new("default");
        f.set("a", "s", None);
        f.destination("a", "d1", "s");
        f.destination("b", "d2", "s");
        f.identity("a", "i1", Some("s"), None);
        f.identity("a", "i2", Some("t"), None);
        f.policy("a", "p1", false);
        f.policy("b", "p2", false);
        let s = f.index.sets.state().into_iter().next().unwrap();
        assert_eq!(names(destinations_of_set(&f.index, &s)), ["d1"]);
        assert_eq!(names(identities_of_set(&f.index, &s)), ["i1"]);
        assert_eq!(names(policies_of_set(&f.index, &s)), ["p1"]);
    }

    #[test]
    fn only_notifying_policies_follow_destinations_and_accounts() {
        let mut f = Fixture::new("default");
        f.destination("a", "alerts", "s");
        f.policy("a", "quiet", false);
        f.policy("a", "loud", true);
        f.policy("b", "elsewhere", true);
        let d = f.index.destinations.state().into_iter().next().unwrap();
        assert_eq!(names(notifying_policies_of_destination(&f.index, &d)), ["loud"]);
        assert_eq!(
            names(notifying_policies(&f.index, &account("default"))),
            ["elsewhere", "loud"]
        );
    }

    #[test]
    fn a_policy_reaches_every_set_of_its_namespace() {
        let mut f = Fixture::new("default");
        f.set("a", "s1", None);
        f.set("a", "s2", Some("x"));
        f.set("b", "s3", None);
        f.policy("a", "p", false);
        let p = f.index.policies.state().into_iter().next().unwrap();
        assert_eq!(names(sets_in_namespace_of_policy(&f.index, &p)), ["s1", "s2"]);
    }
}
