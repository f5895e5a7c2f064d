//! The state every reconciler shares: clients, settings, metrics, the
//! [`Index`], the gate book (when each object next goes to AWS), the drift
//! period per account, the permits that bound writing passes, and the
//! Kubernetes Event recorder.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use parking_lot::Mutex;
use tokio::time::Instant;

use super::MANAGER;
use super::error::Error;
use super::gate::{GateBook, Pass};
use crate::api::SesAccount;
use crate::aws::scheduler::Priority;
use crate::aws::{AccountKey, Registry, Session};
use crate::config::Settings;
use crate::domain::ownership::{Owner, Report};
use crate::index::Index;
use crate::index::fanout::Fanout;
use crate::ops::leader::Fence;
use crate::ops::metrics::Metrics;
use crate::ops::server::Health;

/// State shared by all reconcilers.
pub struct Context {
    pub client: Client,
    pub aws: Arc<Registry>,
    pub settings: Settings,
    /// Prometheus metrics (shared with the HTTP server and AWS sessions).
    pub metrics: Arc<Metrics>,
    /// What `/readyz` reads; the controllers set its cache-sync flag.
    pub health: Arc<Health>,
    /// Rates read from CloudWatch and the re-evaluation trigger.
    pub reputation: Arc<crate::loops::rates::ReputationState>,
    /// Live windows filled from the SES event stream.
    pub live: Arc<crate::loops::stream_consumer::LiveState>,
    /// AWS's open findings per account, and their triggers.
    pub findings: Arc<crate::loops::findings::FindingsState>,
    pub caches: Index,
    /// The watches feeding `caches`, taken once by [`crate::app::run_with`].
    fanout: Mutex<Option<Fanout>>,
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
        Self::leading(client, settings, metrics, health, Arc::new(Fence::default())).await
    }

    /// [`Context::with_metrics`] for a replica that won leader election:
    /// its AWS calls pass only while `fence` says it still leads.
    pub async fn leading(
        client: Client,
        settings: Settings,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        fence: Arc<Fence>,
    ) -> Arc<Self> {
        let aws = Arc::new(
            Registry::with_metrics(settings.aws.clone(), metrics.clone())
                .await
                .with_fence(fence),
        );
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: MANAGER.into(),
                instance: None,
            },
        );
        let (caches, fanout) = Fanout::new(&settings);
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
            findings: Default::default(),
            caches,
            fanout: Mutex::new(Some(fanout)),
            writers_permits,
            gates: Default::default(),
            drift_periods: Default::default(),
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
    pub(super) fn requeue_after_error(&self, key: &str) -> Action {
        let spread = jitter(key, 0);
        Action::requeue(self.gates.lock().after_error(key, spread, Instant::now()))
    }

    /// One of the fair permits a writing pass holds (see `writers_permits`).
    pub(super) async fn write_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Error> {
        self.writers_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::ShuttingDown)
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
        self.event_of(obj, type_, reason, reason, note).await;
    }

    /// [`Self::event`] with its own `action`. kube's recorder folds Events
    /// of one object, reason and action into one series that keeps the
    /// first note; Events whose note says what changed name it in the
    /// action too, so a later, different change is an Event of its own.
    pub async fn event_of<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        // The API server's limit for `action`.
        let action: String = action.chars().take(128).collect();
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action,
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "could not publish event");
        }
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
    /// The owner tag this object writes and accepts (see [`Owner`]).
    pub fn owner<K: Resource>(&self, obj: &K) -> Owner {
        Owner::new(
            &self.settings.cluster_name,
            &self.settings.previous_cluster_names,
            &obj.namespace().unwrap_or_default(),
            &obj.name_any(),
        )
    }

    /// Why this cluster may not act on SesAccount `account` now (its
    /// resources carry another cluster name), from the cache.
    pub fn identity_refused(&self, account: &str) -> Option<String> {
        let cached = self
            .caches
            .accounts
            .get(&kube::runtime::reflector::ObjectRef::new(account))?;
        let recorded = cached.status.as_ref().and_then(|s| s.cluster_identity.as_deref());
        crate::domain::ownership::identity_change(
            recorded,
            &self.settings.cluster_name,
            &self.settings.previous_cluster_names,
        )
    }

    pub fn owner_value<K: Resource>(&self, obj: &K) -> String {
        self.owner(obj).value
    }

    /// Whether an AWS ownership tag names this object. `recorded`: the
    /// object's status says it created the resource, which lets the tag of
    /// an earlier version's default cluster name count too.
    pub fn owns<K: Resource>(&self, tag: Option<&String>, obj: &K, recorded: bool) -> bool {
        self.owner(obj).owns(tag.map(String::as_str), recorded)
    }

    /// An owner tag this object owns by an earlier cluster name, or lost
    /// while status records the resource (see [`Self::owns`]), is set to
    /// the current value, with an Event: after a rename, what status
    /// proves is ours carries this cluster's name, so the old name can
    /// leave `--previous-cluster-names`. `retag` runs only when the tag is
    /// not the current one.
    pub async fn migrate_owner_tag<K, F>(
        &self,
        obj: &K,
        tag: Option<&String>,
        what: &str,
        retag: F,
    ) -> Result<(), Error>
    where
        K: Resource<DynamicType = ()>,
        F: std::future::Future<Output = Result<(), crate::aws::AwsError>>,
    {
        let current = self.owner_value(obj);
        if tag.map(String::as_str) == Some(current.as_str()) {
            return Ok(());
        }
        retag.await?;
        let tag_key = crate::api::OWNER_TAG;
        let (type_, reason, note) = match tag {
            Some(_) => (
                EventType::Normal,
                "OwnerTagMigrated",
                format!("{what} carried the owner tag of an earlier cluster name; re-tagged {tag_key}={current}"),
            ),
            None => (
                EventType::Warning,
                "OwnerTagRestored",
                format!(
                    "the owner tag {tag_key} of {what} was removed outside the operator; restored (this object's status records it as its own)"
                ),
            ),
        };
        self.event(obj, type_, reason, note).await;
        Ok(())
    }

    /// Announces the changes a pass applied, as [`Report`] says: `drift`
    /// is the note for a drift correction.
    pub async fn report_changes<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        report: Report,
        groups: &[&str],
        drift: impl FnOnce(&str) -> String,
    ) {
        let groups = groups.join(", ");
        match report {
            Report::Quiet => {}
            Report::Updated => {
                let action = format!("Update:{}", groups.replace(", ", ","));
                self.event_of(obj, EventType::Normal, "Updated", &action, format!("updated {groups}"))
                    .await
            }
            Report::DriftCorrected => {
                let action = format!("Restore:{}", groups.replace(", ", ","));
                self.event_of(obj, EventType::Warning, "DriftCorrected", &action, drift(&groups))
                    .await
            }
        }
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
            // The account's own reads: GetAccount, and with tenants one
            // ListTenants plus GetTenant, ListTenantResources and
            // GetReputationEntity per namespace. (Findings are read on
            // their own interval, also in the drift class, which the
            // scheduler caps at the drift share whatever this period says.)
            let tenants = account.status.as_ref().map_or(0, |s| s.tenants.len() as i64);
            let tenant_reads = if account.spec.tenants.is_some() {
                1 + 3 * tenants
            } else {
                0
            };
            let n = checks.get(&name).copied().unwrap_or(0) + 1 + tenant_reads;
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

/// A random spread per call (std's per-instance random hasher seed), so
/// objects that fail or sync together do not retry together.
fn jitter(key: &str, n: u32) -> u64 {
    RandomState::new().hash_one((key, n))
}

impl Context {
    /// The watches feeding the index, once: a second run on the same
    /// context gets `None`.
    pub(crate) fn take_fanout(&self) -> Option<Fanout> {
        self.fanout.lock().take()
    }
}

impl crate::loops::DriftSchedule for Context {
    fn refresh(&self) {
        self.refresh_drift_periods();
    }

    fn status(&self, account: &str) -> Option<crate::api::account::DriftStatus> {
        self.drift_status(account)
    }
}

impl Context {
    /// What the loops get of this context.
    pub fn shared(self: &Arc<Self>) -> crate::loops::Shared {
        crate::loops::Shared {
            index: self.caches.clone(),
            aws: self.aws.clone(),
            metrics: self.metrics.clone(),
            settings: self.settings.reputation.clone(),
            rates: self.reputation.clone(),
            findings: self.findings.clone(),
            live: self.live.clone(),
            drift: self.clone(),
            checkpoint: self.settings.live_checkpoint.as_ref().map(|at| {
                crate::loops::live_checkpoint::Checkpointer::new(self.client.clone(), &at.namespace, &at.name)
            }),
        }
    }
}
