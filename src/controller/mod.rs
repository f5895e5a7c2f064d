//! The controllers: one reconciler per kind, all following
//! observe AWS -> pure diff -> apply only what differs -> pure status.
//!
//! This module owns what they share: the [`Context`], the error type, the
//! gate that keeps status-only updates and back-off from causing AWS calls,
//! account resolution, status patching, Kubernetes Events, and running the
//! controllers with their reconcile metrics and cache readiness.

pub mod account;
pub mod configuration_set;
pub mod event_destination;
pub mod reputation;

use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use tokio::time::Instant;

use crate::api::{ConfigurationSet, EventDestination, ReputationPolicy, SesAccount};
use crate::aws::limiter::Priority;
use crate::aws::{AccountKey, AwsError, AwsSettings, Registry, Session};
use crate::metrics::{ConditionCounts, Metrics, ObjectSource};
use crate::server::Health;

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
    #[error("finalizer error: {0}")]
    Finalizer(String),
    /// Cleanup cannot finish yet (dependents still exist). Returned as an
    /// error so the finalizer stays: an `Ok` from cleanup removes it.
    #[error("waiting: {0}")]
    Waiting(String),
}

impl Error {
    fn kube(action: &'static str) -> impl FnOnce(kube::Error) -> Self {
        move |source| Error::Kube { action, source }
    }
}

/// Operator settings (flags of `run`).
#[derive(Clone, Debug)]
pub struct Settings {
    /// SesAccount used when a resource has no `accountRef`.
    pub default_account: String,
    /// How often converged objects are compared with AWS again.
    pub drift_interval: Duration,
    /// Watch only this namespace (all namespaces when `None`).
    pub namespace: Option<String>,
    /// Label selector limiting which SesAccounts this instance reconciles.
    pub account_selector: Option<String>,
    /// Identifies this cluster in the AWS ownership tag.
    pub cluster_name: String,
    pub aws: AwsSettings,
    /// Rate reader interval and staleness.
    pub reputation: reputation::ReputationSettings,
}

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
    pub reputation: reputation::ReputationState,
    recorder: Recorder,
    gates: Mutex<HashMap<String, Gate>>,
}

/// Per-object memory of the last reconcile: lets a reconcile triggered by
/// our own status patch, or during back-off, return without AWS calls.
#[derive(Clone, Debug)]
struct Gate {
    fingerprint: u64,
    synced_at: Option<Instant>,
    retry_at: Option<Instant>,
    failures: u32,
    stalled: bool,
}

/// What a reconcile decided about the gate.
pub enum Pass {
    /// Nothing to do now: return this action.
    Skip(Action),
    /// Go to AWS with this priority.
    Run(Priority),
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
        Arc::new(Self {
            client,
            aws,
            settings,
            metrics,
            health,
            recorder,
            reputation: Default::default(),
            gates: Default::default(),
        })
    }

    /// Decides whether a reconcile must talk to AWS. `fingerprint` covers
    /// everything that should cause immediate work (generation, deletion,
    /// finalizers, referenced objects); the rest waits for the drift timer.
    pub fn pass(&self, key: &str, fingerprint: u64) -> Pass {
        let gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        let Some(gate) = gates.get(key) else {
            return Pass::Run(Priority::Spec);
        };
        if gate.fingerprint != fingerprint {
            return Pass::Run(Priority::Spec);
        }
        let now = Instant::now();
        if gate.stalled {
            // Terminal errors wait for a spec change, but what AWS refused
            // can also be fixed outside the spec (a limit freed, a domain
            // verified): look again once per drift interval.
            return match gate.synced_at {
                Some(at) if at + self.settings.drift_interval > now => {
                    Pass::Skip(Action::requeue(at + self.settings.drift_interval - now))
                }
                _ => Pass::Run(Priority::Drift),
            };
        }
        if let Some(retry_at) = gate.retry_at {
            return if retry_at > now {
                Pass::Skip(Action::requeue(retry_at - now))
            } else {
                Pass::Run(Priority::Spec)
            };
        }
        match gate.synced_at {
            Some(at) if at + self.settings.drift_interval > now => {
                Pass::Skip(Action::requeue(at + self.settings.drift_interval - now))
            }
            Some(_) => Pass::Run(Priority::Drift),
            None => Pass::Run(Priority::Spec),
        }
    }

    /// Records a successful sync: next AWS visit after the drift interval.
    pub fn synced(&self, key: &str, fingerprint: u64) -> Action {
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        gates.insert(
            key.to_string(),
            Gate {
                fingerprint,
                synced_at: Some(Instant::now()),
                retry_at: None,
                failures: 0,
                stalled: false,
            },
        );
        Action::requeue(self.settings.drift_interval)
    }

    /// Records a terminal failure: retried when the fingerprint (the spec or
    /// what it references) changes, else once per drift interval.
    pub fn stalled(&self, key: &str, fingerprint: u64) -> Action {
        mark_reconcile_failed();
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        gates.insert(
            key.to_string(),
            Gate {
                fingerprint,
                synced_at: Some(Instant::now()),
                retry_at: None,
                failures: 0,
                stalled: true,
            },
        );
        Action::requeue(self.settings.drift_interval)
    }

    /// Records a transient failure and returns the per-object exponential
    /// back-off (1 s doubling to 5 min, with jitter); reset by [`Self::synced`].
    pub fn backoff(&self, key: &str, fingerprint: u64) -> Action {
        mark_reconcile_failed();
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        let failures = gates
            .get(key)
            .filter(|g| g.fingerprint == fingerprint)
            .map_or(0, |g| g.failures)
            + 1;
        let base = Duration::from_secs(1).saturating_mul(1 << failures.min(9).saturating_sub(1));
        let delay = base.min(Duration::from_secs(300));
        let jitter = Duration::from_millis(jitter_millis(key, failures) % (delay.as_millis() as u64 / 4 + 1));
        let delay = delay + jitter;
        gates.insert(
            key.to_string(),
            Gate {
                fingerprint,
                synced_at: None,
                retry_at: Some(Instant::now() + delay),
                failures,
                stalled: false,
            },
        );
        Action::requeue(delay)
    }

    /// Back-off for a failure outside the AWS sync (Kubernetes API errors,
    /// cleanup not finished): keeps the object's fingerprint, so the retry
    /// does not count as a spec change.
    pub fn retry_later(&self, key: &str) -> Action {
        let fingerprint = self
            .gates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .map_or(0, |g| g.fingerprint);
        self.backoff(key, fingerprint)
    }

    pub fn forget(&self, key: &str) {
        self.gates.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
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
    /// namespace may use it, before any AWS call.
    pub async fn account_for(&self, namespace: &str, account_ref: Option<&str>) -> Result<AccountAccess, Error> {
        let name = account_ref.unwrap_or(&self.settings.default_account).to_string();
        let Some(account) = Api::<SesAccount>::all(self.client.clone())
            .get_opt(&name)
            .await
            .map_err(Error::kube("reading SesAccount"))?
        else {
            return Ok(AccountAccess::Missing(name));
        };
        let labels = Api::<Namespace>::all(self.client.clone())
            .get_metadata(namespace)
            .await
            .map_err(Error::kube("reading Namespace labels"))?
            .metadata
            .labels
            .unwrap_or_default();
        if !account.spec.allows(&labels) {
            return Ok(AccountAccess::NotAllowed(name));
        }
        let key = AccountKey {
            region: account.spec.region.clone(),
            role_arn: account.spec.role_arn.clone(),
            external_id: account.spec.external_id.clone(),
        };
        Ok(AccountAccess::Allowed {
            name,
            generation: account.metadata.generation.unwrap_or(0),
            key,
        })
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
}

pub enum AccountAccess {
    Missing(String),
    NotAllowed(String),
    Allowed {
        name: String,
        generation: i64,
        key: AccountKey,
    },
}

fn jitter_millis(key: &str, n: u32) -> u64 {
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

/// The object as the apiserver has it now. Reconciles are triggered from a
/// cache that can trail our own writes (and the rate reader triggers often);
/// acting on a stale copy could undo a newer spec or status, so every
/// reconcile that may write starts from a fresh read. `None`: deleted.
pub async fn fresh<K>(api: &Api<K>, obj: &K) -> Result<Option<Arc<K>>, Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    Ok(api
        .get_opt(&obj.name_any())
        .await
        .map_err(Error::kube("reading the object"))?
        .map(Arc::new))
}

/// Server-side-applies `status` unless it equals what the object already has.
pub async fn patch_status<K, S>(api: &Api<K>, obj: &K, current: Option<&S>, status: &S) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    S: Serialize + PartialEq,
{
    if current == Some(status) {
        return Ok(());
    }
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(body),
    )
    .await
    .map_err(Error::kube("patching status"))?;
    Ok(())
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

/// [`run`] with a context built by the caller (tests read its AWS call
/// counters).
pub async fn run_with(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let settings = ctx.settings.clone();
    let shutdown = futures::future::FutureExt::shared(Box::pin(shutdown));
    let (sets, dests): (Api<ConfigurationSet>, Api<EventDestination>) = match &settings.namespace {
        Some(ns) => (Api::namespaced(client.clone(), ns), Api::namespaced(client.clone(), ns)),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    let accounts = Api::<SesAccount>::all(client.clone());
    let account_wc = match &settings.account_selector {
        Some(sel) => watcher::Config::default().labels(sel),
        None => watcher::Config::default(),
    };

    let set_controller = Controller::new(sets.clone(), watcher::Config::default());
    let set_store = set_controller.store();
    let set_cache = set_store.clone();
    let policy_store_for_sets = set_store.clone();
    let policies: Api<ReputationPolicy> = match &settings.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let default_account = settings.default_account.clone();
    let set_ctrl = set_controller
        .watches(
            accounts.clone(),
            watcher::Config::default(),
            move |account: SesAccount| {
                let account_name = account.name_any();
                set_store
                    .state()
                    .into_iter()
                    .filter(|s| s.spec.account_ref.as_deref().unwrap_or(&default_account) == account_name)
                    .map(|s| kube::runtime::reflector::ObjectRef::from_obj(&*s))
                    .collect::<Vec<_>>()
            },
        )
        .watches(
            policies.clone(),
            watcher::Config::default(),
            move |policy: ReputationPolicy| {
                // A policy change can move any set of its namespace.
                let ns = policy.namespace();
                policy_store_for_sets
                    .state()
                    .into_iter()
                    .filter(|s| s.namespace() == ns)
                    .map(|s| kube::runtime::reflector::ObjectRef::from_obj(&*s))
                    .collect::<Vec<_>>()
            },
        )
        .reconcile_on(ctx.reputation.set_triggers())
        .graceful_shutdown_on(shutdown.clone())
        .run(
            |obj, ctx| instrumented("ConfigurationSet", configuration_set::reconcile, obj, ctx),
            error_policy,
            ctx.clone(),
        )
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "configuration set reconcile error");
            }
        });

    let dest_controller = Controller::new(dests.clone(), watcher::Config::default());
    let dest_store = dest_controller.store();
    let dest_cache = dest_store.clone();
    let dest_ctrl = dest_controller
        .watches(
            sets.clone(),
            watcher::Config::default(),
            move |set: ConfigurationSet| {
                let (ns, name) = (set.namespace(), set.name_any());
                dest_store
                    .state()
                    .into_iter()
                    .filter(|d| d.namespace() == ns && d.spec.configuration_set_ref.name == name)
                    .map(|d| kube::runtime::reflector::ObjectRef::from_obj(&*d))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(shutdown.clone())
        .run(
            |obj, ctx| instrumented("EventDestination", event_destination::reconcile, obj, ctx),
            error_policy,
            ctx.clone(),
        )
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "event destination reconcile error");
            }
        });

    let policy_controller = Controller::new(policies, watcher::Config::default());
    let policy_store = policy_controller.store();
    let policy_cache = policy_store.clone();
    let policy_ctrl = policy_controller
        .watches(sets.clone(), watcher::Config::default(), {
            move |set: ConfigurationSet| {
                let ns = set.namespace();
                policy_store
                    .state()
                    .into_iter()
                    .filter(|p| p.namespace() == ns)
                    .map(|p| kube::runtime::reflector::ObjectRef::from_obj(&*p))
                    .collect::<Vec<_>>()
            }
        })
        .graceful_shutdown_on(shutdown.clone())
        .run(
            |obj, ctx| instrumented("ReputationPolicy", reputation::reconcile_policy, obj, ctx),
            error_policy,
            ctx.clone(),
        )
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "reputation policy reconcile error");
            }
        });
    let rate_reader = reputation::run_rate_reader(ctx.clone(), set_cache.clone(), Box::pin(shutdown.clone()));

    let account_controller = Controller::new(accounts, account_wc);
    let account_cache = account_controller.store();
    let account_ctrl = account_controller
        .reconcile_on(ctx.reputation.account_triggers())
        .graceful_shutdown_on(shutdown.clone())
        .run(
            |obj, ctx| instrumented("SesAccount", account::reconcile, obj, ctx),
            error_policy,
            ctx.clone(),
        )
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "account reconcile error");
            }
        });

    // Ready (for /readyz) once every cache has its first full list; the
    // caches also feed `ses_reputation_objects` on each scrape.
    let (set_ready, dest_ready, account_ready, policy_ready) = (
        set_cache.clone(),
        dest_cache.clone(),
        account_cache.clone(),
        policy_cache.clone(),
    );
    let health = ctx.health.clone();
    let readiness = async move {
        let synced = tokio::join!(
            set_ready.wait_until_ready(),
            dest_ready.wait_until_ready(),
            account_ready.wait_until_ready(),
            policy_ready.wait_until_ready()
        );
        if let (Ok(()), Ok(()), Ok(()), Ok(())) = synced {
            tracing::info!("controller caches synced");
            health.set_synced(true);
        }
    };
    let source: ObjectSource = Arc::new(move || {
        vec![
            (
                "ConfigurationSet",
                count_conditions(&set_cache, |o| o.status.as_ref().map(|s| &s.conditions[..])),
            ),
            (
                "EventDestination",
                count_conditions(&dest_cache, |o| o.status.as_ref().map(|s| &s.conditions[..])),
            ),
            (
                "SesAccount",
                count_conditions(&account_cache, |o| o.status.as_ref().map(|s| &s.conditions[..])),
            ),
            (
                "ReputationPolicy",
                count_conditions(&policy_cache, |o| o.status.as_ref().map(|s| &s.conditions[..])),
            ),
        ]
    });
    ctx.metrics.set_object_source(Some(source));
    let readiness = async move {
        tokio::select! {
            _ = readiness => {},
            _ = shutdown => {},
        }
    };

    tokio::join!(set_ctrl, dest_ctrl, account_ctrl, policy_ctrl, rate_reader, readiness);
    ctx.health.set_synced(false);
    ctx.metrics.set_object_source(None);
}

tokio::task_local! {
    /// Set when a reconcile records a failure through [`Context::backoff`] or
    /// [`Context::stalled`]: reconcilers turn AWS errors into status and an
    /// `Ok` action, so the returned `Result` alone would hide them.
    static RECONCILE_FAILED: Cell<bool>;
}

fn mark_reconcile_failed() {
    // Outside a reconcile (error_policy) there is nothing to mark: the
    // reconcile already counted its `Err`.
    let _ = RECONCILE_FAILED.try_with(|failed| failed.set(true));
}

/// Runs one reconcile and records its result and duration, so the
/// per-kind reconcilers stay free of metrics code.
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
    let (result, failed) = RECONCILE_FAILED
        .scope(Cell::new(false), async {
            let result = reconcile(obj, ctx.clone()).await;
            (result, RECONCILE_FAILED.with(Cell::get))
        })
        .await;
    ctx.metrics
        .reconciled(kind, started.elapsed(), result.is_ok() && !failed);
    result
}

/// Counts the cached objects of one kind by their Ready/Stalled conditions.
fn count_conditions<K>(store: &Store<K>, conditions: impl Fn(&K) -> Option<&[Condition]>) -> ConditionCounts
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let mut counts = ConditionCounts::default();
    for obj in store.state() {
        counts.add(conditions(&obj).unwrap_or_default());
    }
    counts
}

/// Errors that escaped a reconciler (Kubernetes API failures, cleanup that
/// must be retried): retry with the object's back-off.
fn error_policy<K: Resource<DynamicType = ()>>(obj: Arc<K>, err: &Error, ctx: Arc<Context>) -> Action {
    match err {
        Error::Waiting(_) => Action::requeue(Duration::from_secs(2)),
        // The object is already gone: nothing left to retry.
        Error::Finalizer(msg) if msg.contains("NotFound") => Action::await_change(),
        _ => {
            tracing::warn!(error = %err, object = %key_of(&*obj), "reconcile failed");
            ctx.retry_later(&key_of(&*obj))
        }
    }
}
