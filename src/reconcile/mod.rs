//! The controllers: one reconciler per kind, all following
//! observe AWS -> pure diff -> apply only what differs -> pure status.
//!
//! This module owns what they share: the [`Context`] with the watch-fed
//! caches every reconciler reads from, the reconcile pipeline ([`drive`]:
//! finalizer, fresh read only before a write, typed errors), the gate that
//! decides when a pass goes to AWS and at which priority, account
//! resolution, status patching, Kubernetes Events, and running the
//! controllers on shared watches.

pub mod evaluation;
pub mod event_stream;
pub mod gate;
pub mod kinds;

use std::collections::HashMap;
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, future};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self as kube_controller, Action};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tracing::{Instrument, info_span};

use crate::api::conditions::{self, Desired};
use crate::api::{
    ConfigurationSet, ConfigurationSetStatus, EmailIdentity, EmailIdentityStatus, EventDestination,
    EventDestinationStatus, FINALIZER, ReputationPolicy, ReputationPolicyStatus, SesAccount, SesAccountSpec,
    SesAccountStatus,
};
use crate::aws::scheduler::Priority;
use crate::aws::{AccountKey, AwsError, AwsSettings, Registry, Session};
use crate::ops::metrics::{ConditionCounts, Metrics, ObjectSource, SchedulerSource};
use crate::ops::server::Health;

use gate::GateBook;
pub use gate::Pass;
use kinds::{account, configuration_set, email_identity, event_destination};

/// Name used as field manager and event reporter.
pub const MANAGER: &str = "ses-reputation-operator";

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
    /// The object has no name or an invalid finalizer (never for objects
    /// the apiserver stored).
    #[error("cannot manage the finalizer: {0}")]
    Finalizer(&'static str),
    /// AWS refused the spec (or the credentials): the object is Stalled
    /// and retried once per drift period. Not counted as a reconcile error:
    /// one tenant's bad spec must not keep the error alert firing.
    #[error("stalled: {0}")]
    Stalled(#[source] AwsError),
    /// Cleanup cannot finish yet (dependents still exist). Returned as an
    /// error so the finalizer stays: an `Ok` from cleanup removes it.
    #[error("waiting: {0}")]
    Waiting(String),
    /// The pass was computed from the cache and wants to write: [`drive`]
    /// reads the object fresh and runs the pass again. Never leaves `drive`.
    /// Carries the pass's priority when it is going to AWS.
    #[error("cached object must be read fresh before a write")]
    Stale(Option<Priority>),
}

impl Error {
    fn kube(action: &'static str) -> impl FnOnce(kube::Error) -> Self {
        move |source| Error::Kube { action, source }
    }

    /// Not a failure of the operator: the object waits for something else
    /// (dependents to go, a spec change), and the metrics must not count it
    /// as an error.
    pub fn is_waiting(&self) -> bool {
        matches!(self, Error::Waiting(_) | Error::Stalled(_))
    }

    fn is_not_found(&self) -> bool {
        matches!(self, Error::Kube { source: kube::Error::Api(status), .. } if status.code == 404)
    }
}

/// Operator settings (flags of `run`).
#[derive(Clone, Debug)]
pub struct Settings {
    /// SesAccount used when a resource has no `accountRef`.
    pub default_account: String,
    /// How often converged objects are compared with AWS again (stretched
    /// per account when the drift share of the SES budget is too small).
    pub drift_interval: Duration,
    /// How long an object waits for a missing SesAccount before it is Stalled.
    pub account_grace: Duration,
    /// Watch only this namespace (all namespaces when `None`).
    pub namespace: Option<String>,
    /// Label selector limiting which SesAccounts this instance reconciles.
    pub account_selector: Option<String>,
    /// Identifies this cluster in the AWS ownership tag.
    pub cluster_name: String,
    /// The cluster name earlier versions used by default (`default`), when
    /// this one was derived: objects whose status records that they were
    /// created here are still recognised by it, and re-tagged.
    pub legacy_cluster_name: Option<String>,
    pub aws: AwsSettings,
    /// Rate reader interval and staleness.
    pub reputation: crate::loops::rates::ReputationSettings,
    /// Reconcile passes that write (API server or AWS) running at once, in
    /// arrival order: bounds memory, open connections and API-server load
    /// when thousands of objects are triggered together (start-up, a rate
    /// read). Drift checks are paced by the SES scheduler instead.
    pub concurrency: u16,
}

/// The watch-fed caches every reconciler reads from: a pass that makes no
/// AWS call makes no API-server request.
#[derive(Clone)]
pub struct Caches {
    pub sets: Store<ConfigurationSet>,
    pub destinations: Store<EventDestination>,
    pub policies: Store<ReputationPolicy>,
    pub accounts: Store<SesAccount>,
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
    pub identities: Store<EmailIdentity>,
}

/// The writing ends of [`Caches`], taken once by [`run_with`].
struct Writers {
    sets: reflector::store::Writer<ConfigurationSet>,
    destinations: reflector::store::Writer<EventDestination>,
    policies: reflector::store::Writer<ReputationPolicy>,
    accounts: reflector::store::Writer<SesAccount>,
    namespaces: reflector::store::Writer<PartialObjectMeta<Namespace>>,
    identities: reflector::store::Writer<EmailIdentity>,
}

/// Buffer of each shared watch: an object leaves it once every
/// subscribing controller has seen it.
const SHARED_BUFFER: usize = 1024;

/// State shared by all reconcilers.
pub struct Context {
    pub client: Client,
    pub aws: Registry,
    pub settings: Settings,
    /// Prometheus metrics (shared with the HTTP server and AWS sessions).
    pub metrics: Arc<Metrics>,
    /// What `/readyz` reads; the controllers set its cache-sync flag.
    pub health: Arc<Health>,
    /// Rates read from CloudWatch and the re-evaluation trigger.
    pub reputation: crate::loops::rates::ReputationState,
    /// Live windows filled from the SES event stream.
    pub live: crate::loops::stream_consumer::LiveState,
    pub caches: Caches,
    writers: Mutex<Option<Writers>>,
    /// Passes that write (and all cleanups) run at most
    /// `settings.concurrency` at a time, in arrival order (tokio's
    /// semaphore is fair). The controllers themselves are unbounded: kube's
    /// bounded runner can hold an object back indefinitely behind others
    /// that keep being requeued.
    writers_permits: Arc<tokio::sync::Semaphore>,
    recorder: Recorder,
    gates: Mutex<GateBook>,
    /// Effective drift period per SesAccount name, and its status block.
    drift_periods: Mutex<HashMap<String, (Duration, crate::api::account::DriftStatus)>>,
    namespace_triggers: tokio::sync::broadcast::Sender<String>,
}

impl Context {
    pub async fn new(client: Client, settings: Settings) -> Arc<Self> {
        Self::with_metrics(client, settings, Arc::new(Metrics::new()), Arc::new(Health::default())).await
    }

    /// [`Context::new`] with metrics and health shared with the HTTP server.
    pub async fn with_metrics(
        client: Client,
        settings: Settings,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> Arc<Self> {
        let aws = Registry::with_metrics(settings.aws.clone(), metrics.clone()).await;
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: MANAGER.into(),
                instance: None,
            },
        );
        let (sets, sets_w) = reflector::store_shared(SHARED_BUFFER);
        let (destinations, destinations_w) = reflector::store_shared(SHARED_BUFFER);
        let (policies, policies_w) = reflector::store_shared(SHARED_BUFFER);
        let (accounts, accounts_w) = reflector::store_shared(SHARED_BUFFER);
        let (namespaces, namespaces_w) = reflector::store();
        let (identities, identities_w) = reflector::store_shared(SHARED_BUFFER);
        let writers_permits = Arc::new(tokio::sync::Semaphore::new(usize::from(settings.concurrency.max(1))));
        Arc::new(Self {
            client,
            aws,
            settings,
            metrics,
            health,
            recorder,
            reputation: Default::default(),
            live: Default::default(),
            caches: Caches {
                sets,
                destinations,
                policies,
                accounts,
                namespaces,
                identities,
            },
            writers_permits,
            writers: Mutex::new(Some(Writers {
                sets: sets_w,
                destinations: destinations_w,
                policies: policies_w,
                accounts: accounts_w,
                namespaces: namespaces_w,
                identities: identities_w,
            })),
            gates: Default::default(),
            drift_periods: Default::default(),
            namespace_triggers: tokio::sync::broadcast::channel(256).0,
        })
    }

    /// The drift period in force for objects of an SesAccount.
    pub fn drift_period(&self, account: &str) -> Duration {
        self.drift_periods
            .lock()
            .get(account)
            .map_or(self.settings.drift_interval, |(period, _)| *period)
    }

    /// The drift schedule of an SesAccount for its status.
    pub fn drift_status(&self, account: &str) -> Option<crate::api::account::DriftStatus> {
        self.drift_periods.lock().get(account).map(|(_, status)| status.clone())
    }

    /// Decides whether a reconcile must talk to AWS. `fingerprint` covers
    /// everything that should cause immediate work (generation, the
    /// account, a pause decision); the rest waits for the account's drift
    /// period.
    pub fn pass(&self, key: &str, fingerprint: u64, account: &str) -> Pass {
        let period = self.drift_period(account);
        self.gates.lock().pass(key, fingerprint, period, Instant::now())
    }

    /// Records a successful sync: next AWS visit after the drift period
    /// (with up to 10% jitter, so objects synced together spread out).
    pub fn synced(&self, key: &str, fingerprint: u64, account: &str) -> Action {
        let period = self.drift_period(account);
        let jitter = period.mul_f64((jitter(key, 0) % 1000) as f64 / 10_000.0);
        Action::requeue(
            self.gates
                .lock()
                .synced(key, fingerprint, period, jitter, Instant::now()),
        )
    }

    /// Records a pass that synced but waits on AWS (verification pending):
    /// looked at again after `delay` as a drift check, not after the whole
    /// drift period.
    pub fn recheck(&self, key: &str, fingerprint: u64, delay: Duration) -> Action {
        Action::requeue(self.gates.lock().recheck(key, fingerprint, delay, Instant::now()))
    }

    /// Records a terminal failure: retried when the fingerprint (the spec or
    /// what it references) changes, else once per drift period.
    pub fn stalled(&self, key: &str, fingerprint: u64, account: &str) -> Action {
        let period = self.drift_period(account);
        Action::requeue(self.gates.lock().stalled(key, fingerprint, period, Instant::now()))
    }

    /// Records a transient failure and returns the per-object exponential
    /// back-off (see [`GateBook::failed`]); reset by [`Self::synced`].
    /// Throttling never gets here (the SES scheduler retries those calls).
    pub fn failed(&self, key: &str, fingerprint: u64, priority: Priority) -> Action {
        let spread = jitter(key, 0);
        Action::requeue(
            self.gates
                .lock()
                .failed(key, fingerprint, priority, spread, Instant::now()),
        )
    }

    /// The back-off recorded for an object, for errors that reach the
    /// controller's error policy; a failure outside the AWS sync (an
    /// API-server error) keeps the object's fingerprint.
    fn requeue_after_error(&self, key: &str) -> Action {
        let spread = jitter(key, 0);
        Action::requeue(self.gates.lock().after_error(key, spread, Instant::now()))
    }

    /// One of the fair permits a writing pass holds (see `writers_permits`).
    async fn write_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Error> {
        self.writers_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Finalizer("the write permits were closed"))
    }

    /// A drift check that would wait more than a few seconds for its SES
    /// slot is requeued for when the slot is due instead of queueing.
    pub async fn drift_deferred(&self, account: &AccountKey) -> Option<Action> {
        let session = self.aws.session(account).await.ok()?;
        let wait = session.scheduler().drift_wait();
        (wait > Duration::from_secs(3)).then(|| {
            let jitter = Duration::from_millis(jitter(&account.region, 0) % 1000);
            Action::requeue(wait + jitter)
        })
    }

    pub fn forget(&self, key: &str) {
        self.gates.lock().forget(key);
    }

    /// Publishes a Kubernetes Event; failures are logged, never fatal.
    pub async fn event<K: Resource<DynamicType = ()>>(&self, obj: &K, type_: EventType, reason: &str, note: String) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: reason.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "could not publish event");
        }
    }

    /// Resolves the SesAccount a namespaced object uses and checks that its
    /// namespace may use it, from the caches, before any AWS call.
    pub fn account_for(&self, namespace: &str, account_ref: Option<&str>) -> AccountAccess {
        let name = account_ref.unwrap_or(&self.settings.default_account).to_string();
        let Some(account) = self.caches.accounts.get(&ObjectRef::new(&name)) else {
            // With an account selector the cache holds only this instance's
            // accounts: another instance may own this one.
            return if self.settings.account_selector.is_some() {
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

    fn namespace_labels(&self, namespace: &str) -> std::collections::BTreeMap<String, String> {
        self.caches
            .namespaces
            .get(&ObjectRef::new(namespace))
            .and_then(|ns| ns.metadata.labels.clone())
            .unwrap_or_default()
    }

    /// Whether the SesAccount lets `namespace` adopt sets no operator owns.
    pub fn adoption_allowed(&self, namespace: &str, account: &str) -> bool {
        self.caches
            .accounts
            .get(&ObjectRef::new(account))
            .is_some_and(|a| a.spec.allows_adoption(&self.namespace_labels(namespace)))
    }

    /// Whether an SesAccount outside this instance's cache exists (with an
    /// account selector, another instance may own it): one GET, made only
    /// for objects whose account the cache does not hold.
    pub async fn account_exists(&self, name: &str) -> Result<bool, Error> {
        let accounts: Api<SesAccount> = Api::all(self.client.clone());
        Ok(accounts
            .get_metadata_opt(name)
            .await
            .map_err(Error::kube("reading an SesAccount"))?
            .is_some())
    }

    pub async fn session(&self, key: &AccountKey) -> Result<Arc<Session>, Error> {
        Ok(self.aws.session(key).await?)
    }

    /// Value of the ownership tag for an object.
    pub fn owner_value<K: Resource>(&self, obj: &K) -> String {
        format!(
            "{}/{}/{}",
            self.settings.cluster_name,
            obj.namespace().unwrap_or_default(),
            obj.name_any()
        )
    }

    /// Whether an AWS ownership tag names this object. `recorded`: the
    /// object's status says it created the resource, which lets the tag of
    /// an earlier version's default cluster name count too.
    pub fn owns<K: Resource>(&self, tag: Option<&String>, obj: &K, recorded: bool) -> bool {
        let Some(tag) = tag else { return false };
        if *tag == self.owner_value(obj) {
            return true;
        }
        recorded
            && self.settings.legacy_cluster_name.as_ref().is_some_and(|legacy| {
                *tag == format!("{legacy}/{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
            })
    }

    /// Recomputes each account's drift period: the configured interval, or
    /// longer when one round of drift reads (one per set, one destination
    /// list per set with destinations or a stream destination, one
    /// GetAccount) needs more than the drift share of the account's SES
    /// rate. Shown in SesAccount status and on /metrics.
    pub fn refresh_drift_periods(&self) {
        let mut checks: HashMap<String, i64> = HashMap::new();
        let mut with_destinations: std::collections::HashSet<(String, String)> = Default::default();
        for d in self.caches.destinations.state() {
            with_destinations.insert((
                d.namespace().unwrap_or_default(),
                d.spec.configuration_set_ref.name.clone(),
            ));
        }
        for cs in self.caches.sets.state() {
            let account = cs.spec.account_ref.as_deref().unwrap_or(&self.settings.default_account);
            let key = (cs.namespace().unwrap_or_default(), cs.name_any());
            // The stream's destination is checked with the same list read.
            let lists =
                with_destinations.contains(&key) || cs.status.as_ref().is_some_and(|s| s.stream_destination.is_some());
            *checks.entry(account.to_string()).or_default() += 1 + i64::from(lists);
        }
        // One GetEmailIdentity per identity.
        for id in self.caches.identities.state() {
            let account = id.spec.account_ref.as_deref().unwrap_or(&self.settings.default_account);
            *checks.entry(account.to_string()).or_default() += 1;
        }
        let drift_rate = self.settings.aws.ses_calls_per_second * self.settings.aws.drift_share * 0.95;
        let configured = self.settings.drift_interval;
        let mut periods = self.drift_periods.lock();
        periods.clear();
        for account in self.caches.accounts.state() {
            let name = account.name_any();
            let n = checks.get(&name).copied().unwrap_or(0) + 1;
            let needed = Duration::from_secs_f64(n as f64 / drift_rate.max(0.0001));
            let period = configured.max(needed);
            self.metrics.set_drift_period(&name, Some(period));
            let status = crate::api::account::DriftStatus {
                period_seconds: period.as_secs_f64().ceil() as i64,
                configured_seconds: configured.as_secs_f64().ceil() as i64,
                checks_per_period: n,
                calls_per_second: format!("{drift_rate:.3}"),
            };
            periods.insert(name, (period, status));
        }
    }
}

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

fn jitter(key: &str, n: u32) -> u64 {
    let mut h = DefaultHasher::new();
    (key, n, std::time::SystemTime::now()).hash(&mut h);
    h.finish()
}

/// Hash of the parts of an object (and what it references) that should
/// trigger immediate work.
pub fn fingerprint(parts: impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// Unique key for the gate map.
pub fn key_of<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        obj.namespace().unwrap_or_default(),
        obj.name_any()
    )
}

/// A kind's status, as the shared status helpers see it.
pub trait ObjectStatus: Default + Clone + Serialize + PartialEq + Send + Sync {
    fn conditions(&self) -> &[Condition];
    fn set_conditions(&mut self, conditions: Vec<Condition>, generation: Option<i64>);
}

macro_rules! object_status {
    ($status:ty) => {
        impl ObjectStatus for $status {
            fn conditions(&self) -> &[Condition] {
                &self.conditions
            }
            fn set_conditions(&mut self, conditions: Vec<Condition>, generation: Option<i64>) {
                self.conditions = conditions;
                self.observed_generation = generation;
            }
        }
    };
}
object_status!(ConfigurationSetStatus);
object_status!(EventDestinationStatus);
object_status!(SesAccountStatus);
object_status!(ReputationPolicyStatus);
object_status!(EmailIdentityStatus);

/// A kind the shared pipeline reconciles.
pub trait Managed:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + std::fmt::Debug + Send + Sync + 'static
{
    type Status: ObjectStatus;
    fn status(&self) -> Option<&Self::Status>;
    /// The API of this object's kind where this object lives.
    fn api_for(&self, client: Client) -> Api<Self>;
}

macro_rules! managed {
    ($kind:ty, $status:ty, namespaced) => {
        managed!($kind, $status, |o: &$kind, client| Api::namespaced(
            client,
            &o.namespace().unwrap_or_default()
        ));
    };
    ($kind:ty, $status:ty, cluster) => {
        managed!($kind, $status, |_: &$kind, client| Api::all(client));
    };
    ($kind:ty, $status:ty, $api:expr) => {
        impl Managed for $kind {
            type Status = $status;
            fn status(&self) -> Option<&$status> {
                self.status.as_ref()
            }
            fn api_for(&self, client: Client) -> Api<Self> {
                ($api)(self, client)
            }
        }
    };
}
managed!(ConfigurationSet, ConfigurationSetStatus, namespaced);
managed!(EventDestination, EventDestinationStatus, namespaced);
managed!(SesAccount, SesAccountStatus, cluster);
managed!(ReputationPolicy, ReputationPolicyStatus, namespaced);
managed!(EmailIdentity, EmailIdentityStatus, namespaced);

/// One reconcile's view of its object: where it came from decides whether
/// it may be written from (see [`drive`]).
pub struct Obj<K: Managed> {
    pub obj: Arc<K>,
    pub api: Api<K>,
    /// Read from the API server in this pass (not from the cache).
    pub fresh: bool,
}

impl<K: Managed> Obj<K> {
    /// Before a write (AWS or status): a pass computed from the cache is
    /// run again on a fresh read, so a cache that trails our own writes
    /// never undoes a newer spec or status.
    pub fn ensure_fresh(&self) -> Result<(), Error> {
        if self.fresh { Ok(()) } else { Err(Error::Stale(None)) }
    }

    /// [`Self::ensure_fresh`] before AWS calls at `priority`.
    pub fn ensure_fresh_for(&self, priority: Priority) -> Result<(), Error> {
        self.write_gate(priority).check()
    }

    /// The gate a pass checks before each AWS write; see [`WriteGate`].
    pub fn write_gate(&self, priority: Priority) -> WriteGate {
        WriteGate {
            fresh: self.fresh,
            priority,
        }
    }

    pub fn status(&self) -> K::Status {
        self.obj.status().cloned().unwrap_or_default()
    }

    /// Writes `status` and returns the view with it, so later writes in
    /// the same pass start from what is stored now.
    pub async fn record(self, status: K::Status, set: impl FnOnce(&mut K, K::Status)) -> Result<Self, Error> {
        self.patch_status(&status).await?;
        let mut obj = (*self.obj).clone();
        set(&mut obj, status);
        Ok(Self {
            obj: Arc::new(obj),
            ..self
        })
    }

    /// Server-side-applies `status` unless it equals what the object has.
    pub async fn patch_status(&self, status: &K::Status) -> Result<(), Error> {
        if self.obj.status() == Some(status) {
            return Ok(());
        }
        self.ensure_fresh()?;
        let body = serde_json::json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "status": status,
        });
        self.api
            .patch_status(
                &self.obj.name_any(),
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(body),
            )
            .await
            .map_err(Error::kube("patching status"))?;
        Ok(())
    }

    /// Merges `desired` into the stored conditions of `status`.
    pub fn merge_conditions(&self, status: &mut K::Status, desired: &[Desired]) {
        let generation = self.obj.meta().generation;
        let merged = conditions::merge(status.conditions(), desired, generation, &now());
        status.set_conditions(merged, generation);
    }

    /// Writes conditions, keeping the rest of the status.
    pub async fn write_conditions(&self, desired: &[Desired]) -> Result<(), Error> {
        let mut status = self.status();
        self.merge_conditions(&mut status, desired);
        self.patch_status(&status).await
    }

    /// Whether the object is already Stalled for `reason` (Events go out
    /// on transitions only).
    pub fn is_stalled_with(&self, reason: &str) -> bool {
        self.obj
            .status()
            .and_then(|s| conditions::status_of(s.conditions(), conditions::STALLED))
            .is_some_and(|c| c.status == "True" && c.reason == reason)
    }

    /// Blocked before AWS on something another object must fix (whose
    /// change triggers this one): writes `desired`, forgets the gate so the
    /// unblocked pass syncs at once, and looks again each drift period.
    pub async fn blocked(&self, ctx: &Context, desired: &[Desired]) -> Result<Action, Error> {
        self.write_conditions(desired).await?;
        ctx.forget(&key_of(&*self.obj));
        Ok(Action::requeue(ctx.settings.drift_interval))
    }

    /// Writes `desired` and announces it with a Warning Event once.
    pub async fn stall(&self, ctx: &Context, reason: &str, message: String) -> Result<(), Error> {
        if !self.is_stalled_with(reason) {
            self.ensure_fresh()?;
            ctx.event(&*self.obj, EventType::Warning, reason, message.clone()).await;
        }
        self.write_conditions(&conditions::stalled(reason, message)).await
    }
}

/// An SesAccount a namespaced object may use.
pub struct UsableAccount {
    pub name: String,
    pub generation: i64,
    pub key: AccountKey,
}

/// Resolves the SesAccount of a namespaced object before any AWS call.
/// When it cannot be used, the object's condition is written and the
/// action to return comes back as `Err`: missing (Reconciling for the grace
/// period, since GitOps may apply the account later, then Stalled), not
/// allowed (Stalled), another instance's (nothing to do).
pub async fn usable_account<K: Managed>(
    o: &Obj<K>,
    ctx: &Context,
    account_ref: Option<&str>,
) -> Result<Result<UsableAccount, Action>, Error> {
    let obj = &*o.obj;
    let key = key_of(obj);
    let ns = obj.namespace().unwrap_or_default();
    let mut access = ctx.account_for(&ns, account_ref);
    if let AccountAccess::NotOurs(account) = &access
        && !ctx.account_exists(account).await?
    {
        // Not another instance's: it does not exist at all.
        access = AccountAccess::Missing(account.clone());
    }
    match access {
        AccountAccess::Allowed { name, generation, key } => Ok(Ok(UsableAccount { name, generation, key })),
        AccountAccess::NotOurs(_) => Ok(Err(Action::await_change())),
        AccountAccess::Missing(account) => {
            let msg =
                format!("SesAccount {account} does not exist: create it, or set spec.accountRef to one that does");
            let age = obj.meta().creation_timestamp.as_ref().map_or(Duration::ZERO, |t| {
                jiff::Timestamp::now().duration_since(t.0).unsigned_abs()
            });
            // Blocked before AWS: the next unblocked pass must sync at once
            // (the account's creation triggers it).
            ctx.forget(&key);
            if age > ctx.settings.account_grace {
                o.stall(ctx, "AccountNotFound", msg).await?;
                return Ok(Err(o.blocked(ctx, &[]).await?));
            }
            o.write_conditions(&conditions::reconciling("AccountNotFound", msg))
                .await?;
            Ok(Err(Action::requeue(
                ctx.settings.account_grace.saturating_sub(age) + Duration::from_secs(1),
            )))
        }
        AccountAccess::NotAllowed(account) => {
            let msg = format!("namespace {ns} is not allowed to use SesAccount {account} (spec.allowedNamespaces)");
            o.stall(ctx, "AccountNotAllowed", msg).await?;
            Ok(Err(o.blocked(ctx, &[]).await?))
        }
    }
}

/// Drift checks read AWS from the cached object and go fresh only when
/// they find something to write: at thousands of objects a fresh GET per
/// check would be a steady stream of API requests for checks that almost
/// always find nothing.
#[derive(Clone, Copy, Debug)]
pub struct WriteGate {
    fresh: bool,
    priority: Priority,
}

impl WriteGate {
    /// Call before an AWS write: a pass from the cache re-runs fresh.
    pub fn check(self) -> Result<(), Error> {
        if self.fresh {
            Ok(())
        } else {
            Err(Error::Stale(Some(self.priority)))
        }
    }
}

/// The shared reconcile pipeline of every kind: span, finalizer, apply or
/// cleanup, and the fresh read. A pass starts from the cached object; when
/// it needs to write (AWS, status, finalizer), it asks for a fresh read
/// ([`Error::Stale`]) and runs once more on that. A converged object
/// therefore costs no API request.
pub async fn drive<K, A, AF, C, CF>(obj: Arc<K>, ctx: Arc<Context>, apply: A, cleanup: C) -> Result<Action, Error>
where
    K: Managed,
    A: Fn(Obj<K>, Arc<Context>) -> AF,
    AF: Future<Output = Result<Action, Error>>,
    C: Fn(Obj<K>, Arc<Context>) -> CF,
    CF: Future<Output = Result<Action, Error>>,
{
    let api = obj.api_for(ctx.client.clone());
    let span = info_span!("reconcile", kind = %K::kind(&()), object = %key_of(&*obj));
    async move {
        let mut current = obj;
        // Finalizer changes and cleanup always work on a fresh read.
        let mut fresh = false;
        let mut permit: Option<tokio::sync::OwnedSemaphorePermit> = None;
        if current.meta().deletion_timestamp.is_some() || !current.finalizers().iter().any(|f| f == FINALIZER) {
            permit = Some(ctx.write_permit().await?);
            let Some(read) = read_fresh(&api, &current).await? else {
                return Ok(Action::await_change());
            };
            current = read;
            fresh = true;
        }
        let (apply, cleanup) = (&apply, &cleanup);
        loop {
            let result = finalizer(&api, FINALIZER, current.clone(), |event| {
                let (api, ctx) = (api.clone(), ctx.clone());
                async move {
                    match event {
                        // Boxed: a pass's future (AWS SDK calls and all) is
                        // large, and thousands of objects can be waiting for
                        // a permit at once; they should hold a pointer, not
                        // the whole state machine.
                        Finalizer::Apply(obj) => Box::pin(apply(Obj { obj, api, fresh }, ctx)).await,
                        Finalizer::Cleanup(obj) => Box::pin(cleanup(Obj { obj, api, fresh }, ctx)).await,
                    }
                }
            })
            .await;
            use kube::runtime::finalizer::Error as F;
            // The permit (if any) is held until the pass returns.
            let _ = &permit;
            return match result {
                Ok(action) => Ok(action),
                Err(F::ApplyFailed(Error::Stale(priority)) | F::CleanupFailed(Error::Stale(priority))) if !fresh => {
                    // Passes that write run a few at a time, first come first
                    // served, which bounds memory, connections and API load
                    // in a burst. Drift checks are already spread over the
                    // drift period and paced by the SES scheduler: they do
                    // not queue here behind spec changes.
                    if priority != Some(Priority::Drift) {
                        permit = Some(ctx.write_permit().await?);
                    }
                    let Some(read) = read_fresh(&api, &current).await? else {
                        return Ok(Action::await_change());
                    };
                    current = read;
                    fresh = true;
                    continue;
                }
                Err(F::ApplyFailed(e) | F::CleanupFailed(e)) => Err(e),
                Err(F::AddFinalizer(source) | F::RemoveFinalizer(source)) => Err(Error::Kube {
                    action: "updating finalizers",
                    source,
                }),
                Err(F::UnnamedObject) => Err(Error::Finalizer("object has no name")),
                Err(F::InvalidFinalizer) => Err(Error::Finalizer("invalid finalizer name")),
            };
        }
    }
    .instrument(span)
    .await
}

async fn read_fresh<K: Managed>(api: &Api<K>, obj: &K) -> Result<Option<Arc<K>>, Error> {
    Ok(api
        .get_opt(&obj.name_any())
        .await
        .map_err(Error::kube("reading the object"))?
        .map(Arc::new))
}

pub fn now() -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now())
}

/// Runs every controller until `shutdown` resolves; in-flight reconciles
/// finish first.
pub async fn run(
    client: Client,
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let ctx = Context::new(client, settings).await;
    run_with(ctx, shutdown).await;
}

/// Drops what reconcilers never read from cached objects: managed fields
/// and kubectl's copy of the last applied object are most of an object's
/// size.
fn trim<K: Resource>(obj: &mut K) {
    obj.managed_fields_mut().clear();
    obj.annotations_mut()
        .remove("kubectl.kubernetes.io/last-applied-configuration");
}

/// Object references of the cached `K`s that match.
fn refs<K>(store: &Store<K>, matches: impl Fn(&K) -> bool) -> Vec<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store
        .state()
        .into_iter()
        .filter(|o| matches(o))
        .map(|o| ObjectRef::from_obj(&*o))
        .collect()
}

/// [`run`] with a context built by the caller (tests read its AWS call
/// counters). Every kind is watched once; the controllers share those
/// watches and their caches.
pub async fn run_with(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let Some(writers) = ctx.writers.lock().take() else {
        tracing::error!("controllers already ran with this context");
        return;
    };
    let client = ctx.client.clone();
    let settings = ctx.settings.clone();
    let shutdown = futures::future::FutureExt::shared(Box::pin(shutdown));
    let (sets_api, dests_api, policies_api): (Api<ConfigurationSet>, Api<EventDestination>, Api<ReputationPolicy>) =
        match &settings.namespace {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
            None => (
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client.clone()),
            ),
        };
    let identities_api: Api<EmailIdentity> = match &settings.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let account_wc = match &settings.account_selector {
        Some(sel) => watcher::Config::default().labels(sel),
        None => watcher::Config::default(),
    };
    let namespace_wc = match &settings.namespace {
        Some(ns) => watcher::Config::default().fields(&format!("metadata.name={ns}")),
        None => watcher::Config::default(),
    };
    let Writers {
        sets: sets_w,
        destinations: dests_w,
        policies: policies_w,
        accounts: accounts_w,
        namespaces: namespaces_w,
        identities: identities_w,
    } = writers;
    // Subscriptions before the writers move into their watches.
    let (Some(sets_for_sets), Some(sets_for_dests), Some(sets_for_policies), Some(sets_for_identities)) = (
        sets_w.subscribe(),
        sets_w.subscribe(),
        sets_w.subscribe(),
        sets_w.subscribe(),
    ) else {
        tracing::error!("shared stores expected");
        return;
    };
    let (Some(identities_for_identities), Some(identities_for_sets), Some(accounts_for_identities)) = (
        identities_w.subscribe(),
        identities_w.subscribe(),
        accounts_w.subscribe(),
    ) else {
        return;
    };
    let (Some(dests_for_dests), Some(dests_for_sets), Some(dests_for_policies)) =
        (dests_w.subscribe(), dests_w.subscribe(), dests_w.subscribe())
    else {
        return;
    };
    let (Some(policies_for_policies), Some(policies_for_sets)) = (policies_w.subscribe(), policies_w.subscribe())
    else {
        return;
    };
    let (Some(accounts_for_accounts), Some(accounts_for_sets), Some(accounts_for_dests), Some(accounts_for_policies)) = (
        accounts_w.subscribe(),
        accounts_w.subscribe(),
        accounts_w.subscribe(),
        accounts_w.subscribe(),
    ) else {
        return;
    };

    let feeds = future::join5(
        feed(
            "ConfigurationSet",
            watcher(sets_api, watcher::Config::default()),
            sets_w,
        ),
        feed(
            "EventDestination",
            watcher(dests_api, watcher::Config::default()),
            dests_w,
        ),
        feed(
            "ReputationPolicy",
            watcher(policies_api, watcher::Config::default()),
            policies_w,
        ),
        feed(
            "SesAccount",
            watcher(Api::<SesAccount>::all(client.clone()), account_wc),
            accounts_w,
        ),
        namespace_feed(
            ctx.clone(),
            watcher(Api::<PartialObjectMeta<Namespace>>::all(client.clone()), namespace_wc),
            namespaces_w,
        ),
    );
    let feeds = future::join(
        feeds,
        feed(
            "EmailIdentity",
            watcher(identities_api, watcher::Config::default()),
            identities_w,
        ),
    );
    let feeds = {
        let shutdown = shutdown.clone();
        async move {
            tokio::select! {
                _ = feeds => {},
                _ = shutdown => {},
            }
        }
    };

    // Bounded loosely (in-flight futures, memory); the passes that write
    // are bounded fairly in `drive`, and drift checks that would wait for
    // SES are requeued (`Context::drift_deferred`) rather than hold a slot:
    // kube's runner picks held objects in hash order, so slots held for
    // long starve some objects.
    let config = kube_controller::Config::default().concurrency(settings.concurrency.saturating_mul(4));
    let caches = ctx.caches.clone();
    let default_account = settings.default_account.clone();

    let set_ctrl = {
        let (sets, default_account) = (caches.sets.clone(), default_account.clone());
        let (sets2, sets3, sets4) = (caches.sets.clone(), caches.sets.clone(), caches.sets.clone());
        Controller::for_shared_stream(sets_for_sets, caches.sets.clone())
            .with_config(config.clone())
            .watches_shared_stream(accounts_for_sets, move |account: Arc<SesAccount>| {
                let name = account.name_any();
                refs(&sets, |s| {
                    s.spec.account_ref.as_deref().unwrap_or(&default_account) == name
                })
            })
            // A policy change can move any set of its namespace.
            .watches_shared_stream(policies_for_sets, move |policy: Arc<ReputationPolicy>| {
                let ns = policy.namespace();
                refs(&sets2, |s| s.namespace() == ns)
            })
            // A set being deleted waits for its destinations to go.
            .watches_shared_stream(dests_for_sets, move |d: Arc<EventDestination>| {
                let (ns, name) = (d.namespace(), d.spec.configuration_set_ref.name.clone());
                refs(&sets3, |s| s.namespace() == ns && s.name_any() == name)
            })
            // Status lists the identities using a set as default, and a set
            // being deleted waits for them.
            .watches_shared_stream(identities_for_sets, move |id: Arc<EmailIdentity>| {
                let ns = id.namespace();
                let name = id.spec.configuration_set_ref.as_ref().map(|r| r.name.clone());
                refs(&sets4, |s| s.namespace() == ns && Some(s.name_any()) == name)
            })
            .reconcile_on(ctx.reputation.set_triggers())
            .reconcile_on(namespace_members(&ctx, caches.sets.clone()))
            .graceful_shutdown_on(shutdown.clone())
            .run(
                |obj, ctx| instrumented("ConfigurationSet", configuration_set::reconcile, obj, ctx),
                error_policy,
                ctx.clone(),
            )
            .for_each(|_| future::ready(()))
    };

    let dest_ctrl = {
        let (dests, dests2) = (caches.destinations.clone(), caches.destinations.clone());
        let (sets, default_account) = (caches.sets.clone(), default_account.clone());
        Controller::for_shared_stream(dests_for_dests, caches.destinations.clone())
            .with_config(config.clone())
            .watches_shared_stream(sets_for_dests, move |set: Arc<ConfigurationSet>| {
                let (ns, name) = (set.namespace(), set.name_any());
                refs(&dests, |d| {
                    d.namespace() == ns && d.spec.configuration_set_ref.name == name
                })
            })
            .watches_shared_stream(accounts_for_dests, move |account: Arc<SesAccount>| {
                let name = account.name_any();
                let in_account: std::collections::HashSet<(Option<String>, String)> = sets
                    .state()
                    .iter()
                    .filter(|s| s.spec.account_ref.as_deref().unwrap_or(&default_account) == name)
                    .map(|s| (s.namespace(), s.name_any()))
                    .collect();
                refs(&dests2, |d| {
                    in_account.contains(&(d.namespace(), d.spec.configuration_set_ref.name.clone()))
                })
            })
            .reconcile_on(namespace_members(&ctx, caches.destinations.clone()))
            .graceful_shutdown_on(shutdown.clone())
            .run(
                |obj, ctx| instrumented("EventDestination", event_destination::reconcile, obj, ctx),
                error_policy,
                ctx.clone(),
            )
            .for_each(|_| future::ready(()))
    };

    let policy_ctrl = {
        let (policies, policies2, policies3) = (
            caches.policies.clone(),
            caches.policies.clone(),
            caches.policies.clone(),
        );
        Controller::for_shared_stream(policies_for_policies, caches.policies.clone())
            .with_config(config.clone())
            .watches_shared_stream(sets_for_policies, move |set: Arc<ConfigurationSet>| {
                let ns = set.namespace();
                refs(&policies, |p| p.namespace() == ns)
            })
            // Notify targets: an EventDestination's topic, an account's allow-list.
            .watches_shared_stream(dests_for_policies, move |d: Arc<EventDestination>| {
                let ns = d.namespace();
                refs(&policies2, |p| p.namespace() == ns && p.spec.actions.notify.is_some())
            })
            .watches_shared_stream(accounts_for_policies, move |_: Arc<SesAccount>| {
                refs(&policies3, |p| p.spec.actions.notify.is_some())
            })
            .graceful_shutdown_on(shutdown.clone())
            .run(
                |obj, ctx| instrumented("ReputationPolicy", kinds::reputation_policy::reconcile, obj, ctx),
                error_policy,
                ctx.clone(),
            )
            .for_each(|_| future::ready(()))
    };

    let identity_ctrl = {
        let (identities, identities2) = (caches.identities.clone(), caches.identities.clone());
        let default_account = default_account.clone();
        Controller::for_shared_stream(identities_for_identities, caches.identities.clone())
            .with_config(config.clone())
            .watches_shared_stream(sets_for_identities, move |set: Arc<ConfigurationSet>| {
                let (ns, name) = (set.namespace(), set.name_any());
                refs(&identities, |i| {
                    i.namespace() == ns && i.spec.configuration_set_ref.as_ref().is_some_and(|r| r.name == name)
                })
            })
            .watches_shared_stream(accounts_for_identities, move |account: Arc<SesAccount>| {
                let name = account.name_any();
                refs(&identities2, |i| {
                    i.spec.account_ref.as_deref().unwrap_or(&default_account) == name
                })
            })
            .reconcile_on(namespace_members(&ctx, caches.identities.clone()))
            .graceful_shutdown_on(shutdown.clone())
            .run(
                |obj, ctx| instrumented("EmailIdentity", email_identity::reconcile, obj, ctx),
                error_policy,
                ctx.clone(),
            )
            .for_each(|_| future::ready(()))
    };

    let account_ctrl = Controller::for_shared_stream(accounts_for_accounts, caches.accounts.clone())
        .with_config(config)
        .reconcile_on(ctx.reputation.account_triggers())
        .graceful_shutdown_on(shutdown.clone())
        .run(
            |obj, ctx| instrumented("SesAccount", account::reconcile, obj, ctx),
            error_policy,
            ctx.clone(),
        )
        .for_each(|_| future::ready(()));

    let rate_reader = crate::loops::rates::run_rate_reader(ctx.clone(), Box::pin(shutdown.clone()));
    // Leader only, like every AWS call: it runs with the controllers.
    let consumer = crate::loops::stream_consumer::run_consumer(ctx.clone(), Box::pin(shutdown.clone()));

    // Ready (for /readyz) once every cache has its first full list; the
    // caches also feed `ses_reputation_objects` on each scrape.
    let health = ctx.health.clone();
    let ready_caches = caches.clone();
    let readiness = async move {
        let synced = tokio::join!(
            ready_caches.sets.wait_until_ready(),
            ready_caches.destinations.wait_until_ready(),
            ready_caches.accounts.wait_until_ready(),
            ready_caches.policies.wait_until_ready(),
            ready_caches.namespaces.wait_until_ready(),
            ready_caches.identities.wait_until_ready(),
        );
        if let (Ok(()), Ok(()), Ok(()), Ok(()), Ok(()), Ok(())) = synced {
            tracing::info!("controller caches synced");
            health.set_synced(true);
        }
    };
    let counted = caches.clone();
    let source: ObjectSource = Arc::new(move || {
        vec![
            ("ConfigurationSet", count_conditions(&counted.sets)),
            ("EventDestination", count_conditions(&counted.destinations)),
            ("SesAccount", count_conditions(&counted.accounts)),
            ("ReputationPolicy", count_conditions(&counted.policies)),
            ("EmailIdentity", count_conditions(&counted.identities)),
        ]
    });
    ctx.metrics.set_object_source(Some(source));
    let registry_ctx = ctx.clone();
    let schedulers: SchedulerSource = Arc::new(move || {
        registry_ctx
            .aws
            .schedulers()
            .into_iter()
            .map(|((account, region), snapshot)| {
                let gauges = crate::ops::metrics::SchedulerGauges {
                    rate: snapshot.rate,
                    waiting: snapshot.waiting,
                };
                (account, region, gauges)
            })
            .collect()
    });
    ctx.metrics.set_scheduler_source(Some(schedulers));
    let readiness = {
        let shutdown = shutdown.clone();
        async move {
            tokio::select! {
                _ = readiness => {},
                _ = shutdown => {},
            }
        }
    };
    // On shutdown, SES calls waiting for a slot are cancelled so the
    // graceful drain only waits for calls already in flight.
    let closer = {
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        async move {
            shutdown.await;
            ctx.aws.close();
        }
    };

    tokio::join!(
        set_ctrl,
        dest_ctrl,
        identity_ctrl,
        account_ctrl,
        policy_ctrl,
        rate_reader,
        consumer,
        readiness,
        closer,
        feeds
    );
    ctx.health.set_synced(false);
    ctx.metrics.set_object_source(None);
    ctx.metrics.set_scheduler_source(None);
}

/// Drives one shared watch into its cache; errors are retried by the
/// watcher's back-off and logged.
async fn feed<K>(
    kind: &'static str,
    stream: impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
    writer: reflector::store::Writer<K>,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    stream
        .default_backoff()
        .modify(trim)
        .reflect_shared(writer)
        .for_each(|event| async move {
            if let Err(e) = event {
                tracing::warn!(error = %e, kind, "watch failed; retrying");
            }
        })
        .await;
}

/// Namespace labels decide `allowedNamespaces`: when they change, every
/// set and destination in that namespace is evaluated again at once.
async fn namespace_feed(
    ctx: Arc<Context>,
    stream: impl futures::Stream<Item = Result<watcher::Event<PartialObjectMeta<Namespace>>, watcher::Error>> + Send,
    writer: reflector::store::Writer<PartialObjectMeta<Namespace>>,
) {
    let mut seen: HashMap<String, u64> = HashMap::new();
    stream
        .default_backoff()
        .modify(trim)
        .reflect(writer)
        .applied_objects()
        .for_each(|ns| {
            match ns {
                Ok(ns) => {
                    let labels = fingerprint(ns.metadata.labels.as_ref());
                    let previous = seen.insert(ns.name_any(), labels);
                    if previous.is_some_and(|p| p != labels) {
                        // No subscriber yet: the controllers' first pass reads the labels.
                        let _ = ctx.namespace_triggers.send(ns.name_any());
                    }
                }
                Err(e) => tracing::warn!(error = %e, "namespace watch failed; retrying"),
            }
            future::ready(())
        })
        .await;
}

/// The cached objects of a namespace whose labels changed.
fn namespace_members<K>(ctx: &Context, store: Store<K>) -> impl futures::Stream<Item = ObjectRef<K>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    let changed = futures::stream::unfold(ctx.namespace_triggers.subscribe(), |mut rx| async move {
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
        futures::stream::iter(refs(&store, |o| o.namespace() == ns))
    })
}

/// Runs one reconcile and records its result and duration, so the
/// per-kind reconcilers stay free of metrics code. Waiting (for
/// dependents) is not a failure.
async fn instrumented<K, F, Fut>(
    kind: &'static str,
    reconcile: F,
    obj: Arc<K>,
    ctx: Arc<Context>,
) -> Result<Action, Error>
where
    F: FnOnce(Arc<K>, Arc<Context>) -> Fut,
    Fut: Future<Output = Result<Action, Error>>,
{
    let started = Instant::now();
    let result = reconcile(obj, ctx.clone()).await;
    let ok = match &result {
        Ok(_) => true,
        Err(e) => e.is_waiting(),
    };
    ctx.metrics.reconciled(kind, started.elapsed(), ok);
    result
}

/// Counts the cached objects of one kind by their Ready/Stalled conditions.
fn count_conditions<K: Managed>(store: &Store<K>) -> ConditionCounts {
    let mut counts = ConditionCounts::default();
    for obj in store.state() {
        counts.add(obj.status().map(|s| s.conditions()).unwrap_or_default());
    }
    counts
}

/// Errors that reached the controller: retry with the object's back-off
/// (recorded by the reconciler for AWS failures).
fn error_policy<K: Resource<DynamicType = ()>>(obj: Arc<K>, err: &Error, ctx: Arc<Context>) -> Action {
    match err {
        Error::Waiting(_) => Action::requeue(Duration::from_secs(2)),
        // The object is already gone: nothing left to retry.
        e if e.is_not_found() => Action::await_change(),
        // Leadership not confirmed lately (the fence): retry once it is.
        Error::Aws(e) if e.code == crate::aws::NOT_LEADER => Action::requeue(Duration::from_secs(5)),
        // Shutting down: nothing to retry.
        Error::Aws(e) if e.kind == crate::aws::ErrorKind::Cancelled => Action::await_change(),
        Error::Stalled(_) => ctx.requeue_after_error(&key_of(&*obj)),
        _ => {
            tracing::warn!(error = %err, object = %key_of(&*obj), "reconcile failed");
            ctx.requeue_after_error(&key_of(&*obj))
        }
    }
}
