//! The watch-fed stores every reconciler reads from, and the typed
//! queries over them: which SesAccount an object uses and whether its
//! namespace may, which destinations, identities and policies relate to a
//! set. A pass that makes no AWS call makes no API-server request. The
//! relations that make one kind's change reconcile another are in
//! [`relations`]; the watches feeding the stores in [`fanout`].

pub mod fanout;
pub mod relations;

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::api::{ConfigurationSet, EmailIdentity, EventDestination, ReputationPolicy, SesAccount, SesAccountSpec};
use crate::aws::AccountKey;

/// The stores, plus what resolving an account needs from the settings.
#[derive(Clone)]
pub struct Index {
    pub sets: Store<ConfigurationSet>,
    pub destinations: Store<EventDestination>,
    pub policies: Store<ReputationPolicy>,
    pub accounts: Store<SesAccount>,
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
    pub identities: Store<EmailIdentity>,
    /// SesAccount of objects without `spec.accountRef`.
    default_account: String,
    /// The accounts store holds only this instance's accounts
    /// (`--account-selector`): a missing one may be another instance's.
    accounts_selected: bool,
    /// Names of namespaces whose labels changed (see [`relations`]).
    namespace_changes: tokio::sync::broadcast::Sender<String>,
    /// Becomes true once every store has its first full list (see
    /// [`Index::record_synced`]).
    synced: Arc<tokio::sync::watch::Sender<bool>>,
}

/// Whether a namespaced object may use the SesAccount it names.
pub enum AccountAccess {
    Missing(String),
    /// Not among this instance's accounts (`--account-selector`).
    NotOurs(String),
    NotAllowed(String),
    Allowed {
        name: String,
        generation: i64,
        key: AccountKey,
    },
}

/// The AWS session settings of an SesAccount.
pub fn account_key(spec: &SesAccountSpec) -> AccountKey {
    AccountKey {
        region: spec.region.clone(),
        role_arn: spec.role_arn.clone(),
        external_id: spec.external_id.clone(),
    }
}

impl Index {
    /// The name of the SesAccount an object with this `spec.accountRef`
    /// uses: the one place the default account applies.
    pub fn account_name<'a>(&'a self, account_ref: Option<&'a str>) -> &'a str {
        account_ref.unwrap_or(&self.default_account)
    }

    /// Resolves the SesAccount a namespaced object uses and checks that its
    /// namespace may use it, before any AWS call.
    pub fn account_for(&self, namespace: &str, account_ref: Option<&str>) -> AccountAccess {
        let name = self.account_name(account_ref).to_string();
        let Some(account) = self.accounts.get(&ObjectRef::new(&name)) else {
            return if self.accounts_selected {
                AccountAccess::NotOurs(name)
            } else {
                AccountAccess::Missing(name)
            };
        };
        if !account.spec.allows(&self.namespace_labels(namespace)) {
            return AccountAccess::NotAllowed(name);
        }
        AccountAccess::Allowed {
            generation: account.metadata.generation.unwrap_or(0),
            key: account_key(&account.spec),
            name,
        }
    }

    /// Whether the SesAccount lets `namespace` adopt resources no operator owns.
    pub fn adoption_allowed(&self, namespace: &str, account: &str) -> bool {
        self.accounts
            .get(&ObjectRef::new(account))
            .is_some_and(|a| a.spec.allows_adoption(&self.namespace_labels(namespace)))
    }

    fn namespace_labels(&self, namespace: &str) -> BTreeMap<String, String> {
        self.namespaces
            .get(&ObjectRef::new(namespace))
            .and_then(|ns| ns.metadata.labels.clone())
            .unwrap_or_default()
    }

    /// The stream topic a set's destination should point to: its
    /// account's, while the account's stream is on and created.
    pub fn stream_topic(&self, account: &str) -> Option<String> {
        let account = self.accounts.get(&ObjectRef::new(account))?;
        if !account.spec.event_stream_enabled() || account.metadata.deletion_timestamp.is_some() {
            return None;
        }
        account.status.as_ref()?.event_stream.as_ref()?.topic_arn.clone()
    }

    /// A set by namespace and name.
    pub fn set(&self, namespace: &str, name: &str) -> Option<Arc<ConfigurationSet>> {
        self.sets.get(&ObjectRef::new(name).within(namespace))
    }

    /// Waits for every store's first full list and records it for
    /// [`Index::synced`]. Run by one task only: kube's `wait_until_ready`
    /// wakes just the last of several concurrent waiters, so every other
    /// waiter waits on this record instead. `false`: a watch stopped for
    /// good (shutdown).
    pub async fn record_synced(&self) -> bool {
        let synced = tokio::join!(
            self.sets.wait_until_ready(),
            self.destinations.wait_until_ready(),
            self.accounts.wait_until_ready(),
            self.policies.wait_until_ready(),
            self.namespaces.wait_until_ready(),
            self.identities.wait_until_ready(),
        );
        let synced = matches!(synced, (Ok(()), Ok(()), Ok(()), Ok(()), Ok(()), Ok(())));
        if synced {
            self.synced.send_replace(true);
        }
        synced
    }

    /// Resolves once every store has its first full list. Before that, an
    /// object missing from a store may only be not listed yet, so no
    /// decision may rest on its absence: an account "missing", a namespace
    /// "not allowed".
    pub async fn synced(&self) {
        let mut synced = self.synced.subscribe();
        // The sender lives as long as this index: `wait_for` cannot fail.
        let _ = synced.wait_for(|s| *s).await;
    }

    /// The sets that use an SesAccount.
    pub fn sets_of_account(&self, account: &str) -> Vec<Arc<ConfigurationSet>> {
        let sets = self.sets.state();
        sets.into_iter()
            .filter(|s| self.account_name(s.spec.account_ref.as_deref()) == account)
            .collect()
    }

    /// The EventDestinations that reference a set, sorted by name.
    pub fn destinations_of(&self, namespace: Option<&str>, set: &str) -> Vec<Arc<EventDestination>> {
        let mut found: Vec<_> = self
            .destinations
            .state()
            .into_iter()
            .filter(|d| d.namespace().as_deref() == namespace && d.spec.configuration_set_ref.name == set)
            .collect();
        found.sort_by_key(|d| d.name_any());
        found
    }

    /// The EmailIdentities that name a set as their default, sorted by name.
    pub fn identities_using(&self, namespace: Option<&str>, set: &str) -> Vec<Arc<EmailIdentity>> {
        let mut found: Vec<_> = self
            .identities
            .state()
            .into_iter()
            .filter(|i| {
                i.namespace().as_deref() == namespace
                    && i.spec.configuration_set_ref.as_ref().is_some_and(|r| r.name == set)
            })
            .collect();
        found.sort_by_key(|i| i.name_any());
        found
    }

    /// The EventDestinations whose AWS side lives in an SesAccount (as
    /// their status records it: a destination follows its set's account).
    pub fn destinations_of_account(&self, account: &str) -> Vec<Arc<EventDestination>> {
        let destinations = self.destinations.state();
        destinations
            .into_iter()
            .filter(|d| d.status.as_ref().and_then(|s| s.account.as_deref()) == Some(account))
            .collect()
    }

    /// The EmailIdentities that use an SesAccount.
    pub fn identities_of_account(&self, account: &str) -> Vec<Arc<EmailIdentity>> {
        let identities = self.identities.state();
        identities
            .into_iter()
            .filter(|i| self.account_name(i.spec.account_ref.as_deref()) == account)
            .collect()
    }

    /// The ReputationPolicies of a namespace (a policy may select any set
    /// of its namespace).
    pub fn policies_in(&self, namespace: Option<&str>) -> Vec<Arc<ReputationPolicy>> {
        let policies = self.policies.state();
        policies
            .into_iter()
            .filter(|p| p.namespace().as_deref() == namespace)
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher::Event;

    /// An index over the given objects, no API server involved.
    pub(crate) struct Fixture {
        pub index: Index,
        sets: Writer<ConfigurationSet>,
        destinations: Writer<EventDestination>,
        identities: Writer<EmailIdentity>,
        accounts: Writer<SesAccount>,
        policies: Writer<ReputationPolicy>,
        namespaces: Writer<PartialObjectMeta<Namespace>>,
    }

    impl Fixture {
        pub(crate) fn new(default_account: &str) -> Self {
            let (sets_r, sets) = kube::runtime::reflector::store();
            let (destinations_r, destinations) = kube::runtime::reflector::store();
            let (policies_r, policies) = kube::runtime::reflector::store();
            let (accounts_r, accounts) = kube::runtime::reflector::store();
            let (namespaces_r, namespaces) = kube::runtime::reflector::store();
            let (identities_r, identities) = kube::runtime::reflector::store();
            Self {
                index: Index {
                    sets: sets_r,
                    destinations: destinations_r,
                    policies: policies_r,
                    accounts: accounts_r,
                    namespaces: namespaces_r,
                    identities: identities_r,
                    default_account: default_account.into(),
                    accounts_selected: false,
                    namespace_changes: tokio::sync::broadcast::channel(4).0,
                    synced: Arc::new(tokio::sync::watch::channel(true).0),
                },
                sets,
                destinations,
                identities,
                accounts,
                policies,
                namespaces,
            }
        }

        pub(crate) fn namespace(&mut self, name: &str, labels: &[(&str, &str)]) {
            let mut ns = PartialObjectMeta::<Namespace>::default();
            ns.metadata.name = Some(name.into());
            ns.metadata.labels = Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
            self.namespaces.apply_watcher_event(&Event::Apply(ns));
        }

        pub(crate) fn set(&mut self, ns: &str, name: &str, account: Option<&str>) {
            let mut cs = ConfigurationSet::new(name, serde_json::from_value(serde_json::json!({})).unwrap());
            cs.metadata.namespace = Some(ns.into());
            cs.spec.account_ref = account.map(str::to_string);
            self.sets.apply_watcher_event(&Event::Apply(cs));
        }

        pub(crate) fn destination(&mut self, ns: &str, name: &str, set: &str) {
            let spec = serde_json::json!({"configurationSetRef": {"name": set}, "eventTypes": ["BOUNCE"], "sns": {"topicArn": "arn:aws:sns:us-east-1:1:t"}});
            let mut d = EventDestination::new(name, serde_json::from_value(spec).unwrap());
            d.metadata.namespace = Some(ns.into());
            self.destinations.apply_watcher_event(&Event::Apply(d));
        }

        pub(crate) fn identity(&mut self, ns: &str, name: &str, set: Option<&str>, account: Option<&str>) {
            let mut spec = serde_json::json!({"identity": format!("{name}.example.com")});
            if let Some(set) = set {
                spec["configurationSetRef"] = serde_json::json!({"name": set});
            }
            let mut i = EmailIdentity::new(name, serde_json::from_value(spec).unwrap());
            i.metadata.namespace = Some(ns.into());
            i.spec.account_ref = account.map(str::to_string);
            self.identities.apply_watcher_event(&Event::Apply(i));
        }

        /// An account; `team`: only namespaces labelled `team=<team>` may use it.
        pub(crate) fn account(&mut self, name: &str, team: Option<&str>) {
            let mut spec = serde_json::json!({"region": "us-east-1"});
            if let Some(team) = team {
                spec["allowedNamespaces"] = serde_json::json!({"matchLabels": {"team": team}});
            }
            let a = SesAccount::new(name, serde_json::from_value(spec).unwrap());
            self.accounts.apply_watcher_event(&Event::Apply(a));
        }

        pub(crate) fn policy(&mut self, ns: &str, name: &str, notify: bool) {
            let mut spec = serde_json::json!({"selector": {}});
            if notify {
                spec["actions"] = serde_json::json!({"notify": {"eventDestinationRef": {"name": "alerts"}}});
            }
            let mut p = ReputationPolicy::new(name, serde_json::from_value(spec).unwrap());
            p.metadata.namespace = Some(ns.into());
            self.policies.apply_watcher_event(&Event::Apply(p));
        }
    }

    fn names<K: kube::Resource>(objs: &[Arc<K>]) -> Vec<String> {
        objs.iter().map(|o| o.name_any()).collect()
    }

    #[test]
    fn objects_without_an_account_ref_use_the_default_account() {
        let mut f = Fixture::new("main");
        f.set("a", "s1", None);
        f.set("a", "s2", Some("other"));
        f.set("b", "s3", Some("main"));
        let mut of_main = names(&f.index.sets_of_account("main"));
        of_main.sort();
        assert_eq!(of_main, ["s1", "s3"]);
        assert_eq!(names(&f.index.sets_of_account("other")), ["s2"]);
    }

    #[test]
    fn a_missing_account_is_missing_and_a_disallowed_namespace_is_refused() {
        let mut f = Fixture::new("default");
        assert!(matches!(f.index.account_for("a", None), AccountAccess::Missing(n) if n == "default"));
        f.account("default", Some("a"));
        f.namespace("team-a", &[("team", "a")]);
        f.namespace("team-b", &[("team", "b")]);
        assert!(matches!(
            f.index.account_for("team-a", None),
            AccountAccess::Allowed { .. }
        ));
        assert!(matches!(f.index.account_for("team-b", None), AccountAccess::NotAllowed(n) if n == "default"));
    }

    #[test]
    fn destinations_and_identities_of_a_set_stay_in_its_namespace() {
        let mut f = Fixture::new("default");
        f.destination("a", "d2", "s");
        f.destination("a", "d1", "s");
        f.destination("b", "d3", "s");
        f.destination("a", "d4", "other");
        f.identity("a", "i1", Some("s"), None);
        f.identity("b", "i2", Some("s"), None);
        f.identity("a", "i3", None, None);
        assert_eq!(names(&f.index.destinations_of(Some("a"), "s")), ["d1", "d2"]);
        assert_eq!(names(&f.index.identities_using(Some("a"), "s")), ["i1"]);
    }
}
