//! The one reconcile pipeline every kind runs through: [`drive`] (span,
//! finalizer, the fresh read before a write, the permits that bound
//! writing passes), the object handle [`Obj`] with its status helpers, the
//! [`WriteGate`], the start and the end of a pass ([`Obj::begin`],
//! [`Obj::fail`]), account resolution for namespaced kinds, and how a
//! pass's result reaches the metrics and the controller's error policy.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tracing::{Instrument, info_span};

use super::context::Context;
use super::error::{Error, Halt, Outcome};
use super::gate::Pass;
use super::{MANAGER, key_of, now};
use crate::api::conditions::{self, Desired};
use crate::api::{
    ConfigurationSet, ConfigurationSetStatus, EmailIdentity, EmailIdentityStatus, EventDestination,
    EventDestinationStatus, FINALIZER, ReputationPolicy, ReputationPolicyStatus, SesAccount, SesAccountStatus,
};
use crate::aws::AccountKey;
use crate::aws::scheduler::Priority;
use crate::index::AccountAccess;

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
    pub fn ensure_fresh(&self) -> Result<(), Halt> {
        if self.fresh { Ok(()) } else { Err(Halt::Stale(None)) }
    }

    /// [`Self::ensure_fresh`] before AWS calls at `priority`.
    pub fn ensure_fresh_for(&self, priority: Priority) -> Result<(), Halt> {
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
    pub async fn record(self, status: K::Status, set: impl FnOnce(&mut K, K::Status)) -> Result<Self, Halt> {
        self.patch_status(&status).await?;
        let mut obj = (*self.obj).clone();
        set(&mut obj, status);
        Ok(Self {
            obj: Arc::new(obj),
            ..self
        })
    }

    /// Server-side-applies `status` unless it equals what the object has.
    pub async fn patch_status(&self, status: &K::Status) -> Result<(), Halt> {
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
    pub async fn write_conditions(&self, desired: &[Desired]) -> Result<(), Halt> {
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
    pub async fn blocked(&self, ctx: &Context, desired: &[Desired]) -> Result<Action, Halt> {
        self.write_conditions(desired).await?;
        ctx.forget(&key_of(&*self.obj));
        Ok(Action::requeue(ctx.settings.drift_interval))
    }

    /// A reference to an object that does not exist (an SesAccount, a
    /// ConfigurationSet): Reconciling for the grace period
    /// (`--account-grace-seconds`), since GitOps may apply it later, then
    /// Stalled, since a typo never fixes itself. Its creation triggers this
    /// object either way, and the next unblocked pass syncs at once.
    pub async fn missing(&self, ctx: &Context, reason: &str, message: String) -> Result<Action, Halt> {
        let age = self.obj.meta().creation_timestamp.as_ref().map_or(Duration::ZERO, |t| {
            jiff::Timestamp::now().duration_since(t.0).unsigned_abs()
        });
        ctx.forget(&key_of(&*self.obj));
        if age > ctx.settings.account_grace {
            self.stall(ctx, reason, message).await?;
            return self.blocked(ctx, &[]).await;
        }
        self.write_conditions(&conditions::reconciling(reason, message)).await?;
        Ok(Action::requeue(
            ctx.settings.account_grace.saturating_sub(age) + Duration::from_secs(1),
        ))
    }

    /// `Some`: the account's resources carry another cluster name (see
    /// [`crate::domain::ownership::identity_change`]); this object is
    /// Stalled saying so and nothing goes to AWS until the operator is told
    /// to migrate (or keeps the old name).
    pub async fn refuse_changed_identity(&self, ctx: &Context, account: &str) -> Result<Option<Action>, Halt> {
        let Some(why) = ctx.identity_refused(account) else {
            return Ok(None);
        };
        self.stall(ctx, CLUSTER_IDENTITY_CHANGED, why).await?;
        Ok(Some(self.blocked(ctx, &[]).await?))
    }

    /// Writes `desired` and announces it with a Warning Event once.
    pub async fn stall(&self, ctx: &Context, reason: &str, message: String) -> Result<(), Halt> {
        if !self.is_stalled_with(reason) {
            self.ensure_fresh()?;
            ctx.event(&*self.obj, EventType::Warning, reason, message.clone()).await;
        }
        self.write_conditions(&conditions::stalled(reason, message)).await
    }
}

/// The condition reason while the cluster name changed without migration
/// (see [`crate::domain::ownership::identity_change`]).
pub const CLUSTER_IDENTITY_CHANGED: &str = "ClusterIdentityChanged";

/// What a tagged resource's pass writes, once its plan is through the gate.
pub enum Proceed<C> {
    /// Status must record this adoption before any write.
    RecordAdoption(crate::api::configuration_set::Adoption),
    /// Apply these changes in order, then announce them as `report` says.
    Apply {
        changes: Vec<C>,
        report: crate::domain::ownership::Report,
    },
}

/// The start of a tagged resource's writes (sets, identities): the gate
/// before any write, the adoption to record first, and the Events for an
/// adoption or a restored owner tag. `what name`: "configuration set x".
pub async fn proceed<K: Resource<DynamicType = ()>, C>(
    plan: crate::domain::ownership::TaggedPlan<C>,
    obj: &K,
    ctx: &Context,
    gate: WriteGate,
    (what, name): (&str, &str),
) -> Result<Proceed<C>, Halt> {
    use crate::domain::ownership::TaggedPlan;
    let (changes, adopting, restoring_tag, report) = match plan {
        TaggedPlan::RecordAdoption(kept_tags) => {
            gate.check()?;
            let adoption = crate::api::configuration_set::Adoption {
                since: now(),
                kept_tags,
            };
            return Ok(Proceed::RecordAdoption(adoption));
        }
        TaggedPlan::Apply {
            changes,
            adopting,
            restoring_tag,
            report,
        } => (changes, adopting, restoring_tag, report),
    };
    if let Some(kept_tags) = &adopting {
        gate.check()?;
        let note = format!(
            "adopting existing {what} {name}; its tags {kept_tags:?} are kept; deletionPolicy defaults to Retain"
        );
        ctx.event(obj, EventType::Normal, "Adopted", note).await;
    }
    if !changes.is_empty() {
        gate.check()?;
    }
    if restoring_tag {
        let note = format!(
            "the owner tag {} of {what} {name} was removed outside the operator; restored (this object's status records it as its own)",
            crate::api::OWNER_TAG
        );
        ctx.event(obj, EventType::Warning, "OwnerTagRestored", note).await;
    }
    Ok(Proceed::Apply { changes, report })
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
) -> Result<Result<UsableAccount, Action>, Halt> {
    let obj = &*o.obj;
    let ns = obj.namespace().unwrap_or_default();
    let mut access = ctx.caches.account_for(&ns, account_ref);
    if let AccountAccess::NotOurs(account) = &access
        && !ctx.account_exists(account).await?
    {
        // Not another instance's: it does not exist at all.
        access = AccountAccess::Missing(account.clone());
    }
    match access {
        AccountAccess::Allowed { name, generation, key } => match o.refuse_changed_identity(ctx, &name).await? {
            Some(blocked) => Ok(Err(blocked)),
            None => Ok(Ok(UsableAccount { name, generation, key })),
        },
        AccountAccess::NotOurs(_) => Ok(Err(Action::await_change())),
        AccountAccess::Missing(account) => {
            let msg =
                format!("SesAccount {account} does not exist: create it, or set spec.accountRef to one that does");
            Ok(Err(o.missing(ctx, "AccountNotFound", msg).await?))
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
    pub fn check(self) -> Result<(), Halt> {
        if self.fresh {
            Ok(())
        } else {
            Err(Halt::Stale(Some(self.priority)))
        }
    }
}

/// How long a pass waits for the caches' first full list before it comes
/// back later (see [`drive`]).
const CACHE_WAIT: Duration = Duration::from_secs(5);

/// The shared reconcile pipeline of every kind: span, finalizer, apply or
/// cleanup, and the fresh read. A pass starts from the cached object; when
/// it needs to write (AWS, status, finalizer), it asks for a fresh read
/// ([`Halt::Stale`]) and runs once more on that. A converged object
/// therefore costs no API request.
pub async fn drive<K, A, AF, C, CF>(obj: Arc<K>, ctx: Arc<Context>, apply: A, cleanup: C) -> Result<Passed, Error>
where
    K: Managed,
    A: Fn(Obj<K>, Arc<Context>) -> AF,
    AF: Future<Output = Result<Action, Halt>>,
    C: Fn(Obj<K>, Arc<Context>) -> CF,
    CF: Future<Output = Result<Action, Halt>>,
{
    let api = obj.api_for(ctx.client.clone());
    let span = info_span!("reconcile", kind = %K::kind(&()), object = %key_of(&*obj));
    async move {
        // Every decision below reads the index (the account, the namespace,
        // the set a destination belongs to); before each store has its first
        // full list, "missing" may only mean "not listed yet", and a
        // deletion would skip its AWS side. A pass that comes that early
        // waits a little and otherwise comes back, having decided nothing.
        if tokio::time::timeout(CACHE_WAIT, ctx.caches.synced()).await.is_err() {
            return Ok(Passed::new(Action::requeue(CACHE_WAIT), Outcome::Unsynced));
        }
        let mut current = obj;
        // Finalizer changes and cleanup always work on a fresh read.
        let mut fresh = false;
        let mut permit: Option<tokio::sync::OwnedSemaphorePermit> = None;
        if current.meta().deletion_timestamp.is_some() || !current.finalizers().iter().any(|f| f == FINALIZER) {
            permit = Some(ctx.write_permit().await?);
            let Some(read) = read_fresh(&api, &current).await? else {
                return Ok(Passed::new(Action::await_change(), Outcome::Done));
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
                Ok(action) => Ok(Passed::new(action, Outcome::Done)),
                Err(F::ApplyFailed(Halt::Stale(priority)) | F::CleanupFailed(Halt::Stale(priority))) if !fresh => {
                    // Passes that write run a few at a time, first come first
                    // served, which bounds memory, connections and API load
                    // in a burst. Drift checks are already spread over the
                    // drift period and paced by the SES scheduler: they do
                    // not queue here behind spec changes.
                    if priority != Some(Priority::Drift) {
                        permit = Some(ctx.write_permit().await?);
                    }
                    let Some(read) = read_fresh(&api, &current).await? else {
                        return Ok(Passed::new(Action::await_change(), Outcome::Done));
                    };
                    current = read;
                    fresh = true;
                    continue;
                }
                Err(F::ApplyFailed(halt) | F::CleanupFailed(halt)) => match halt {
                    Halt::Stale(_) => Err(Error::Invariant("a pass on a fresh read asked for a fresh read")),
                    // An error keeps the finalizer; looked at again shortly.
                    Halt::Waiting(_) => Ok(Passed::new(Action::requeue(WAITING_RECHECK), Outcome::Waiting)),
                    Halt::Stalled(action) => Ok(Passed::new(action, Outcome::Stalled)),
                    Halt::Failed(e) => Err(e),
                },
                Err(F::AddFinalizer(source) | F::RemoveFinalizer(source)) => Err(Error::Kube {
                    action: "updating finalizers",
                    source,
                }),
                Err(F::UnnamedObject) => Err(Error::Invariant("object has no name")),
                Err(F::InvalidFinalizer) => Err(Error::Invariant("invalid finalizer name")),
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

/// How long a cleanup that waits for dependents waits before it looks
/// again (their deletion also triggers it).
const WAITING_RECHECK: Duration = Duration::from_secs(2);

/// A pass that did not fail: the controller's next action and how the pass
/// ended, for the reconcile metric.
#[derive(Debug)]
pub struct Passed {
    pub action: Action,
    pub outcome: Outcome,
}

impl Passed {
    fn new(action: Action, outcome: Outcome) -> Self {
        Self { action, outcome }
    }

    /// A pass that ended normally.
    pub fn done(action: Action) -> Self {
        Self::new(action, Outcome::Done)
    }
}

/// Who a pass is for, as the gate book keeps it: set by the kind once it
/// has resolved the object's account and fingerprint.
pub struct PassKey {
    /// The object ([`key_of`]).
    pub key: String,
    /// Everything that should cause immediate work (see [`fingerprint`]).
    pub fingerprint: u64,
    /// The SesAccount whose drift period and SES budget the pass uses.
    pub account: String,
    pub account_key: AccountKey,
}

/// A pass that goes to AWS: at which priority, and the gate to check
/// before each write.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    pub priority: Priority,
    pub gate: WriteGate,
}

/// What the start of a pass decided.
pub enum Begin {
    /// Nothing is due in AWS: the kind may refresh status from caches and
    /// returns this action.
    Skip(Action),
    Run(Run),
}

impl<K: Managed> Obj<K> {
    /// The SesAccount a deletion cleans up with. When the object may not
    /// use it (missing, not allowed), its AWS side (`what`) is left in
    /// place, said once in a Warning Event, and the finalizer goes; another
    /// instance's account (`--account-selector`) is left to that instance.
    pub async fn account_for_cleanup(
        &self,
        ctx: &Context,
        account_ref: Option<&str>,
        what: &str,
    ) -> Result<AccountKey, Action> {
        let obj = &*self.obj;
        let ns = obj.namespace().unwrap_or_default();
        match ctx.caches.account_for(&ns, account_ref) {
            AccountAccess::Allowed { key, .. } => Ok(key),
            AccountAccess::NotOurs(_) => Err(Action::await_change()),
            AccountAccess::Missing(account) | AccountAccess::NotAllowed(account) => {
                let note = format!("SesAccount {account} is missing or not allowed: {what} is left in AWS");
                ctx.event(obj, EventType::Warning, "DeleteSkipped", note).await;
                ctx.forget(&key_of(obj));
                Err(Action::await_change())
            }
        }
    }

    /// The start of every pass that may go to AWS, written once: the gate
    /// book says whether anything is due and at which priority (`urgent`:
    /// a pause or resume goes first); a drift check that would wait long for
    /// its SES slot is requeued for then; a pass that is not a drift check
    /// writes, so it runs on a fresh read.
    pub async fn begin(&self, ctx: &Context, pass: &PassKey, urgent: bool) -> Result<Begin, Halt> {
        let priority = match ctx.pass(&pass.key, pass.fingerprint, &pass.account) {
            Pass::Skip(action) => return Ok(Begin::Skip(action)),
            Pass::Run(_) if urgent => Priority::Pause,
            Pass::Run(priority) => priority,
        };
        if priority == Priority::Drift
            && let Some(later) = ctx.drift_deferred(&pass.account_key).await
        {
            return Ok(Begin::Skip(later));
        }
        let gate = self.write_gate(priority);
        if priority != Priority::Drift {
            gate.check()?;
        }
        Ok(Begin::Run(Run { priority, gate }))
    }

    /// The end of every pass that went to AWS and did not converge, written
    /// once: a failure retrying cannot fix stalls the object (condition,
    /// one Warning Event, retried on a spec change or once per drift
    /// period); any other failure is retried with the object's back-off,
    /// saying so in Reconciling unless it was a drift check of an object
    /// that is as it was (it stays Ready). Control flow passes through.
    pub async fn fail(&self, ctx: &Context, pass: &PassKey, run: Run, halt: Halt) -> Halt {
        // Failures outside AWS (the API server) go to the error policy as
        // they are: writing a condition would likely fail the same way.
        let e = match halt {
            Halt::Failed(e) if e.is_stopping() => return Halt::Failed(e),
            Halt::Failed(e @ (Error::Aws(_) | Error::Refused(_))) => e,
            other => return other,
        };
        if e.is_terminal() {
            if let Err(halt) = self.stall(ctx, &e.reason(), e.to_string()).await {
                return halt;
            }
            return Halt::Stalled(ctx.stalled(&pass.key, pass.fingerprint, &pass.account));
        }
        tracing::info!(error = %e, "pass failed, backing off");
        if run.priority != Priority::Drift
            && let Err(halt) = self
                .write_conditions(&conditions::reconciling(e.reason(), format!("retrying: {e}")))
                .await
        {
            return halt;
        }
        ctx.failed(&pass.key, pass.fingerprint, run.priority);
        Halt::Failed(e)
    }
}

/// Runs one reconcile and records how it ended and how long it took, so
/// the per-kind reconcilers stay free of metrics code.
pub async fn instrumented<K, F, Fut>(
    kind: &'static str,
    reconcile: F,
    obj: Arc<K>,
    ctx: Arc<Context>,
) -> Result<Action, Error>
where
    F: FnOnce(Arc<K>, Arc<Context>) -> Fut,
    Fut: Future<Output = Result<Passed, Error>>,
{
    let started = Instant::now();
    let result = reconcile(obj, ctx.clone()).await;
    let (label, failed) = match &result {
        Ok(passed) => (passed.outcome.metric_label(), false),
        Err(e) => (e.metric_label(), true),
    };
    ctx.metrics.reconciled(kind, started.elapsed(), label, failed);
    result.map(|passed| passed.action)
}

/// Failures that reached the controller: retry with the object's back-off
/// (recorded by [`Obj::fail`] for AWS failures).
pub fn error_policy<K: Resource<DynamicType = ()>>(obj: Arc<K>, err: &Error, ctx: Arc<Context>) -> Action {
    match err {
        // The object is already gone: nothing left to retry.
        e if e.is_not_found() => Action::await_change(),
        // Leadership not confirmed lately (the fence): retry once it is.
        Error::Aws(e) if e.code == crate::aws::NOT_LEADER => Action::requeue(Duration::from_secs(5)),
        // Shutting down: nothing to retry.
        Error::Aws(e) if e.kind == crate::aws::ErrorKind::Cancelled => Action::await_change(),
        Error::ShuttingDown => Action::await_change(),
        _ => {
            tracing::warn!(error = %err, object = %key_of(&*obj), "reconcile failed");
            ctx.requeue_after_error(&key_of(&*obj))
        }
    }
}
