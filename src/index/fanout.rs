//! The watches that feed the [`Index`]: each kind is watched once, and
//! every controller that reacts to a kind subscribes to that one watch
//! ([`Fanout::subscribe`]) instead of opening its own.

use std::collections::HashMap;

use futures::{StreamExt, future};
use k8s_openapi::api::core::v1::Namespace;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::broadcast;

use super::Index;
use crate::api::{ConfigurationSet, EmailIdentity, EventDestination, ReputationPolicy, SesAccount};
use crate::config::Settings;
use crate::ops::api_client::watch_config;
use crate::ops::metrics::Metrics;
use crate::ops::server::Health;

/// Buffer of each shared watch: an object leaves it once every
/// subscribing controller has seen it.
const SHARED_BUFFER: usize = 1024;

/// The writing ends of the [`Index`] stores, until [`Fanout::run`] moves
/// them into their watches.
pub struct Fanout {
    sets: Writer<ConfigurationSet>,
    destinations: Writer<EventDestination>,
    policies: Writer<ReputationPolicy>,
    accounts: Writer<SesAccount>,
    namespaces: Writer<PartialObjectMeta<Namespace>>,
    identities: Writer<EmailIdentity>,
    namespace_changes: broadcast::Sender<String>,
}

/// A kind with a shared watch in the fan-out.
pub trait Fed: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static {
    fn writer(fanout: &Fanout) -> &Writer<Self>;
}

macro_rules! fed {
    ($kind:ty, $field:ident) => {
        impl Fed for $kind {
            fn writer(fanout: &Fanout) -> &Writer<Self> {
                &fanout.$field
            }
        }
    };
}
fed!(ConfigurationSet, sets);
fed!(EventDestination, destinations);
fed!(ReputationPolicy, policies);
fed!(SesAccount, accounts);
fed!(EmailIdentity, identities);

impl Fanout {
    /// Empty stores and the fan-out that will fill them.
    pub fn new(settings: &Settings) -> (Index, Fanout) {
        let (sets, sets_w) = reflector::store_shared(SHARED_BUFFER);
        let (destinations, destinations_w) = reflector::store_shared(SHARED_BUFFER);
        let (policies, policies_w) = reflector::store_shared(SHARED_BUFFER);
        let (accounts, accounts_w) = reflector::store_shared(SHARED_BUFFER);
        let (namespaces, namespaces_w) = reflector::store();
        let (identities, identities_w) = reflector::store_shared(SHARED_BUFFER);
        let namespace_changes = broadcast::channel(256).0;
        let index = Index {
            sets,
            destinations,
            policies,
            accounts,
            namespaces,
            identities,
            default_account: settings.default_account.clone(),
            accounts_selected: settings.account_selector.is_some(),
            namespace_changes: namespace_changes.clone(),
            synced: std::sync::Arc::new(tokio::sync::watch::channel(false).0),
        };
        let fanout = Fanout {
            sets: sets_w,
            destinations: destinations_w,
            policies: policies_w,
            accounts: accounts_w,
            namespaces: namespaces_w,
            identities: identities_w,
            namespace_changes,
        };
        (index, fanout)
    }

    /// The changes of one kind as its shared watch sees them.
    pub fn subscribe<K: Fed>(&self) -> impl futures::Stream<Item = std::sync::Arc<K>> + Send + 'static {
        let handle = K::writer(self).subscribe();
        if handle.is_none() {
            // Every store above is built shared; this is a programming error.
            tracing::error!(kind = %K::kind(&()), "store is not shared: its changes reach no controller");
        }
        futures::stream::iter(handle).flatten()
    }

    /// Runs every watch into its store until the process stops; the
    /// watches are scoped by `--namespace` and `--account-selector`.
    pub async fn run(self, client: Client, settings: &Settings, health: &Health, metrics: &Metrics) {
        let seen = WatchSeen { health, metrics };
        let scoped = |client: Client| -> (
            Api<ConfigurationSet>,
            Api<EventDestination>,
            Api<ReputationPolicy>,
            Api<EmailIdentity>,
        ) {
            match &settings.namespace {
                Some(ns) => (
                    Api::namespaced(client.clone(), ns),
                    Api::namespaced(client.clone(), ns),
                    Api::namespaced(client.clone(), ns),
                    Api::namespaced(client, ns),
                ),
                None => (
                    Api::all(client.clone()),
                    Api::all(client.clone()),
                    Api::all(client.clone()),
                    Api::all(client),
                ),
            }
        };
        let (sets, destinations, policies, identities) = scoped(client.clone());
        let accounts_config = match &settings.account_selector {
            Some(selector) => watch_config().labels(selector),
            None => watch_config(),
        };
        let namespaces_config = match &settings.namespace {
            Some(ns) => watch_config().fields(&format!("metadata.name={ns}")),
            None => watch_config(),
        };
        let all = watch_config;
        let kinds = future::join5(
            feed("ConfigurationSet", watcher(sets, all()), self.sets, seen),
            feed(
                "EventDestination",
                watcher(destinations, all()),
                self.destinations,
                seen,
            ),
            feed("ReputationPolicy", watcher(policies, all()), self.policies, seen),
            feed(
                "SesAccount",
                watcher(Api::all(client.clone()), accounts_config),
                self.accounts,
                seen,
            ),
            feed("EmailIdentity", watcher(identities, all()), self.identities, seen),
        );
        let namespaces = namespace_feed(
            watcher(Api::<PartialObjectMeta<Namespace>>::all(client), namespaces_config),
            self.namespaces,
            self.namespace_changes,
            seen,
        );
        future::join(kinds, namespaces).await;
    }
}

/// Drops what reconcilers never read from cached objects: managed fields
/// and kubectl's copy of the last applied object are most of an object's
/// size.
fn trim<K: Resource>(obj: &mut K) {
    obj.managed_fields_mut().clear();
    obj.annotations_mut()
        .remove("kubectl.kubernetes.io/last-applied-configuration");
}

/// Where each watch reports how it goes: `/readyz` and the watch error
/// metric.
#[derive(Clone, Copy)]
struct WatchSeen<'a> {
    health: &'a Health,
    metrics: &'a Metrics,
}

impl WatchSeen<'_> {
    fn saw<T>(&self, kind: &'static str, event: &Result<T, watcher::Error>) {
        match event {
            Ok(_) => self.health.watch_works(kind),
            Err(e) => {
                tracing::warn!(error = %e, kind, "watch failed; retrying");
                self.health.watch_failed(kind, e.to_string());
                self.metrics.watch_error(kind);
            }
        }
    }
}

/// Drives one shared watch into its store; errors are retried by the
/// watcher's back-off, logged and counted.
async fn feed<K: Fed>(
    kind: &'static str,
    stream: impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
    writer: Writer<K>,
    seen: WatchSeen<'_>,
) {
    stream
        .default_backoff()
        .modify(trim)
        .reflect_shared(writer)
        .for_each(|event| {
            seen.saw(kind, &event);
            future::ready(())
        })
        .await;
}

/// Namespace labels decide `allowedNamespaces`: when they change, every
/// object in that namespace is evaluated again at once
/// ([`super::relations::members_of_changed_namespaces`]).
async fn namespace_feed(
    stream: impl futures::Stream<Item = Result<watcher::Event<PartialObjectMeta<Namespace>>, watcher::Error>> + Send,
    writer: Writer<PartialObjectMeta<Namespace>>,
    changes: broadcast::Sender<String>,
    watch: WatchSeen<'_>,
) {
    let mut seen: HashMap<String, u64> = HashMap::new();
    stream
        .default_backoff()
        .modify(trim)
        .reflect(writer)
        .inspect(|event| watch.saw("Namespace", event))
        .applied_objects()
        .for_each(|ns| {
            // Errors were reported by `watch` above.
            if let Ok(ns) = ns {
                let labels = labels_hash(ns.metadata.labels.as_ref());
                let previous = seen.insert(ns.name_any(), labels);
                if previous.is_some_and(|p| p != labels) {
                    // No subscriber yet: the controllers' first pass reads the labels.
                    let _ = changes.send(ns.name_any());
                }
            }
            future::ready(())
        })
        .await;
}

fn labels_hash(labels: Option<&std::collections::BTreeMap<String, String>>) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    labels.hash(&mut h);
    h.finish()
}
