//! Reputation: the rate reader (one CloudWatch batch per account per
//! interval, cached here), the per-set evaluation the ConfigurationSet
//! reconciler folds into its status (levels, conditions, pause/resume,
//! events and SNS alerts on level changes), and the ReputationPolicy
//! reconciler that reports which sets a policy covers and which breach.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::Api;
use kube::core::Selector;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use parking_lot::{Mutex, RwLock};
use serde_json::json;
use tokio::sync::mpsc;
use tracing::{Instrument, info_span};

use super::{Context, Error, Halt, Obj, Passed, account_key, key_of, now};
use crate::api::conditions::{self, Desired};
use crate::api::configuration_set::{PauseStatus, Reputation};
use crate::api::{
    ConfigurationSet, ConfigurationSetStatus, RESUME_ANNOTATION, ReputationPolicy, ReputationPolicyStatus, SesAccount,
};
use crate::aws::Session;
use crate::domain::reputation::{
    self as rep, Applied, Level, Levels, Metric, Pause, PauseInput, PauseStep, Reading, selects,
};

/// Flags of the rate reader.
#[derive(Clone, Debug)]
pub struct ReputationSettings {
    /// How often each account's rates are read.
    pub interval: Duration,
    /// Datapoints older than this count as no data (Unknown).
    pub staleness: Duration,
}

impl Default for ReputationSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            staleness: Duration::from_secs(2 * 3600),
        }
    }
}

/// Rates read from CloudWatch, and the channel that asks the
/// ConfigurationSet controller to re-evaluate sets after a read.
pub struct ReputationState {
    sets: RwLock<HashMap<String, Reading>>,
    accounts: RwLock<HashMap<String, Reading>>,
    /// Per account: failed reads in a row and when to try again.
    backoff: Mutex<HashMap<String, (u32, tokio::time::Instant)>>,
    set_trigger: Trigger<ConfigurationSet>,
    account_trigger: Trigger<SesAccount>,
}

impl Default for ReputationState {
    fn default() -> Self {
        Self {
            sets: Default::default(),
            accounts: Default::default(),
            backoff: Default::default(),
            set_trigger: Trigger::new(),
            account_trigger: Trigger::new(),
        }
    }
}

/// A channel of objects to reconcile, whose receiving end one controller
/// takes (`Controller::reconcile_on`).
struct Trigger<K: kube::Resource<DynamicType = ()>> {
    tx: mpsc::UnboundedSender<ObjectRef<K>>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<ObjectRef<K>>>>,
}

impl<K: kube::Resource<DynamicType = ()> + 'static> Trigger<K> {
    fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }

    fn send(&self, obj: &K) {
        // No receiver yet (or any more): the controller's own resync covers it.
        let _ = self.tx.send(ObjectRef::from_obj(obj));
    }

    fn stream(&self) -> impl futures::Stream<Item = ObjectRef<K>> + Send + 'static {
        let rx = self.rx.lock().take();
        futures::stream::unfold(rx, |rx| async move {
            let mut rx = rx?;
            let next = rx.recv().await?;
            Some((next, Some(rx)))
        })
    }
}

impl ReputationState {
    /// The newest reading of a set, `None` before the first read.
    pub fn set_reading(&self, namespace: &str, name: &str) -> Option<Reading> {
        self.sets.read().get(&format!("{namespace}/{name}")).copied()
    }

    pub fn account_reading(&self, account: &str) -> Option<Reading> {
        self.accounts.read().get(account).copied()
    }

    /// Whether an account's rates may be read now (not backing off).
    fn due(&self, account: &str) -> bool {
        let backoff = self.backoff.lock();
        backoff
            .get(account)
            .is_none_or(|(_, next)| *next <= tokio::time::Instant::now())
    }

    /// After a read: success clears the back-off; failures double the wait
    /// (one interval, two, four, ... up to 16), as for SES throttling.
    fn record(&self, account: &str, ok: bool, interval: Duration) {
        let mut backoff = self.backoff.lock();
        if ok {
            backoff.remove(account);
            return;
        }
        let failures = backoff.get(account).map_or(0, |(n, _)| *n) + 1;
        let wait = interval.saturating_mul(1 << (failures - 1).min(4));
        // The reader wakes every interval; the first retry is the next wake.
        let next = tokio::time::Instant::now() + wait.saturating_sub(interval);
        backoff.insert(account.to_string(), (failures, next));
    }

    /// Asks the ConfigurationSet controller to re-evaluate one set (the
    /// live source, when a set's live verdict changes).
    pub fn trigger_set(&self, cs: &ConfigurationSet) {
        self.set_trigger.send(cs);
    }

    /// Sets to re-evaluate after each read (taken once by their controller).
    pub fn set_triggers(&self) -> impl futures::Stream<Item = ObjectRef<ConfigurationSet>> + Send + 'static {
        self.set_trigger.stream()
    }

    /// Accounts to re-evaluate after each read.
    pub fn account_triggers(&self) -> impl futures::Stream<Item = ObjectRef<SesAccount>> + Send + 'static {
        self.account_trigger.stream()
    }
}

/// Reads every account's rates each interval until `shutdown`.
pub async fn run_rate_reader(ctx: Arc<Context>, mut shutdown: impl std::future::Future<Output = ()> + Unpin) {
    let interval = ctx.settings.reputation.interval;
    // The caches must be listed before the first read means anything.
    tokio::select! {
        _ = &mut shutdown => return,
        _ = ctx.caches.sets.wait_until_ready() => {}
    }
    tokio::select! {
        _ = &mut shutdown => return,
        _ = ctx.caches.accounts.wait_until_ready() => {}
    }
    loop {
        ctx.refresh_drift_periods();
        read_all(&ctx).instrument(info_span!("read_rates")).await;
        crate::ops::memory::release_free_pages();
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// Whether a new reading changes what a set's evaluation can show: a new
/// value or datapoint, or a datapoint going stale since the last reading.
fn reading_changed(old: Option<&Reading>, new: &Reading, staleness: Duration) -> bool {
    let Some(old) = old else { return true };
    // Whether each sample was fresh when its reading was taken.
    let fresh = |reading: &Reading| {
        let at = reading.read_at.unwrap_or_else(Timestamp::now);
        [reading.bounce, reading.complaint].map(|s| s.map(|s| at.duration_since(s.at).unsigned_abs() < staleness))
    };
    old.bounce != new.bounce || old.complaint != new.complaint || fresh(old) != fresh(new)
}

async fn read_all(ctx: &Context) {
    // Group the sets that exist in AWS by the SesAccount they live in.
    let mut by_account: BTreeMap<String, Vec<Arc<ConfigurationSet>>> = BTreeMap::new();
    for cs in ctx.caches.sets.state() {
        if cs.status.as_ref().and_then(|s| s.aws_name.as_ref()).is_some() {
            let account = cs
                .spec
                .account_ref
                .clone()
                .unwrap_or_else(|| ctx.settings.default_account.clone());
            by_account.entry(account).or_default().push(cs);
        }
    }
    for (account_name, members) in by_account {
        if !ctx.reputation.due(&account_name) {
            continue;
        }
        let Some(account) = ctx.caches.accounts.get(&ObjectRef::new(&account_name)) else {
            continue;
        };
        let session = match ctx.aws.session(&account_key(&account.spec)).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, account = account_name, "no AWS session for rate read");
                continue;
            }
        };
        let names: Vec<String> = members
            .iter()
            .filter(|cs| cs.spec.reputation_metrics.enabled)
            .filter_map(|cs| cs.status.as_ref().and_then(|s| s.aws_name.clone()))
            .collect();
        match session
            .reputation_rates(&names, ctx.settings.reputation.staleness)
            .await
        {
            Ok(rates) => {
                let read_at = Some(Timestamp::now());
                let staleness = ctx.settings.reputation.staleness;
                // Only the sets whose evaluation can change are reconciled.
                let mut changed = Vec::new();
                {
                    let mut cache = ctx.reputation.sets.write();
                    for cs in &members {
                        let aws_name = cs.status.as_ref().and_then(|s| s.aws_name.clone()).unwrap_or_default();
                        // Metrics off: an empty reading, so the set shows NoData.
                        let reading = rates.sets.get(&aws_name).copied().unwrap_or(Reading {
                            read_at,
                            ..Default::default()
                        });
                        let key = format!("{}/{}", cs.namespace().unwrap_or_default(), cs.name_any());
                        // A set in an auto-resume quiet period changes with time alone.
                        let quiet = cs
                            .status
                            .as_ref()
                            .and_then(|s| s.pause.as_ref())
                            .is_some_and(|p| p.quiet_since.is_some());
                        if quiet || reading_changed(cache.get(&key), &reading, staleness) {
                            changed.push(cs.clone());
                        }
                        cache.insert(key, reading);
                    }
                }
                let account_changed = {
                    let mut accounts = ctx.reputation.accounts.write();
                    let changed = reading_changed(accounts.get(&account_name), &rates.account, staleness);
                    accounts.insert(account_name.clone(), rates.account);
                    changed
                };
                for cs in &changed {
                    ctx.reputation.set_trigger.send(cs);
                }
                // The account's status also shows its drift schedule.
                let drift_changed =
                    account.status.as_ref().and_then(|s| s.drift.clone()) != ctx.drift_status(&account_name);
                if account_changed || drift_changed {
                    ctx.reputation.account_trigger.send(&account);
                }
                ctx.reputation
                    .record(&account_name, true, ctx.settings.reputation.interval);
            }
            // CloudWatch throttling or errors: keep the last reading (it goes
            // Unknown once stale) and back off this account.
            Err(e) => {
                tracing::warn!(error = %e, account = account_name, "reading reputation rates failed");
                ctx.reputation
                    .record(&account_name, false, ctx.settings.reputation.interval);
            }
        }
    }
}

/// The reputation verdict for one set at one reconcile.
pub struct SetEvaluation {
    /// What the levels were judged on: per metric CloudWatch's sample, or
    /// the live rate where that is worse (see `sources`).
    reading: Reading,
    /// CloudWatch's own reading and levels (status `reputation` rates, gauges).
    cw_reading: Reading,
    cw_levels: Levels,
    sources: [crate::loops::stream_consumer::Source; 2],
    live: Option<crate::loops::stream_consumer::LiveView>,
    applied: Applied,
    levels: Levels,
    previous: Level,
    step: PauseStep,
    /// Policies selecting the set that want alerts, by name.
    notify: Vec<(String, crate::api::reputation_policy::Notify)>,
    /// A resume annotation refused for lying in the future.
    refused_resume_at: Option<String>,
    now: Timestamp,
}

impl SetEvaluation {
    /// What this evaluation does to a pause (stay, pause, resume).
    pub fn step(&self) -> &PauseStep {
        &self.step
    }

    /// The pause in force after this evaluation.
    pub fn paused(&self) -> Option<&Pause> {
        self.step.pause()
    }

    /// Writes the reputation block, the rate conditions and the pause.
    /// `in_aws`: whether this reconcile applied the pause decision to AWS;
    /// if not, a pause or resume is not recorded yet (status must not claim
    /// what SES does not do).
    pub fn apply_to(&self, status: &mut ConfigurationSetStatus, generation: Option<i64>, in_aws: bool) {
        // Each condition names the policy of the threshold it was judged
        // against: warning and critical may come from different policies.
        let by = [
            self.applied.bounce_sources.for_level(self.levels.bounce),
            self.applied.complaint_sources.for_level(self.levels.complaint),
        ]
        .map(rep::source_label);
        let mut from: Vec<&str> = [&self.applied.bounce_sources, &self.applied.complaint_sources]
            .into_iter()
            .flat_map(|s| [s.warning.as_deref(), s.critical.as_deref()])
            .map(|s| s.unwrap_or("AWS"))
            .collect();
        from.sort_unstable();
        from.dedup();
        let thresholds_from = from.join(", ");
        let live_by = |i: usize| match (&self.live, self.sources[i]) {
            (Some(l), crate::loops::stream_consumer::Source::Events) => format!(
                "{}, live events over {}",
                by[i],
                crate::loops::stream_consumer::window_label(l.summary.window_secs)
            ),
            _ => by[i].clone(),
        };
        // Conditions judge what drove each level; the block's rates stay
        // CloudWatch's, with the live counts beside them.
        let (_, desired) = rate_status(
            &self.reading,
            &self.levels,
            &self.applied,
            thresholds_from.clone(),
            [live_by(0), live_by(1)],
        );
        let (mut block, _) = rate_status(&self.cw_reading, &self.levels, &self.applied, thresholds_from, by);
        block.source = Some(self.source().as_str().to_string());
        block.live = self.live.as_ref().map(crate::loops::stream_consumer::LiveView::status);
        status.reputation = Some(hold_observed_at(status.reputation.as_ref(), block));
        match &self.step {
            PauseStep::Paused(_) | PauseStep::Resumed { .. } if !in_aws => {}
            PauseStep::Resumed { .. } => {
                status.pause = None;
                status.resumed_at = Some(Time(self.now));
            }
            step => {
                status.pause = step.pause().map(|p| PauseStatus {
                    policy: p.policy.clone(),
                    reason: p.reason.clone(),
                    since: Time(p.since),
                    quiet_since: p.quiet_since.map(Time),
                    refused_resume_at: self.refused_resume_at.clone(),
                })
            }
        }
        status.conditions = conditions::merge(&status.conditions, &desired, generation, &now());
    }

    /// Where the overall level came from (the worse metric's source).
    pub fn source(&self) -> crate::loops::stream_consumer::Source {
        self.sources[usize::from(self.levels.complaint > self.levels.bounce)]
    }

    /// Feeds the Prometheus gauges; a stale or missing rate has no series.
    pub fn record_metrics(&self, metrics: &crate::ops::metrics::Metrics, namespace: &str, name: &str) {
        metrics.set_set_reputation(
            namespace,
            name,
            rep::known_value(self.cw_levels.bounce, self.cw_reading.bounce),
            rep::known_value(self.cw_levels.complaint, self.cw_reading.complaint),
            self.levels.overall().gauge(),
        );
        metrics.set_set_paused(namespace, name, self.paused().is_some());
        if let Some(live) = &self.live {
            let s = &live.summary;
            metrics.set_set_live(namespace, name, s.bounce_rate, s.complaint_rate, s.counts.sends);
        }
    }

    /// Events and SNS alerts for what changed; call after the status that
    /// records the change is written, so a retry does not repeat them.
    pub async fn announce(&self, cs: &ConfigurationSet, ctx: &Context, session: Option<&Session>, in_aws: bool) {
        match &self.step {
            PauseStep::Paused(_) | PauseStep::Resumed { .. } if !in_aws => {}
            PauseStep::Paused(p) => {
                let note = format!("sending paused by ReputationPolicy {}: {}", p.policy, p.reason);
                ctx.event(cs, EventType::Warning, "SendingPaused", note).await;
            }
            PauseStep::Resumed { how } => {
                ctx.event(
                    cs,
                    EventType::Normal,
                    "SendingResumed",
                    format!("sending resumed ({how})"),
                )
                .await;
            }
            PauseStep::Stay(_) => {}
        }
        let refused_before = cs
            .status
            .as_ref()
            .and_then(|s| s.pause.as_ref())
            .and_then(|p| p.refused_resume_at.as_ref());
        if let Some(refused) = &self.refused_resume_at
            && self.paused().is_some()
            && refused_before != Some(refused)
        {
            let note = format!(
                "{RESUME_ANNOTATION}={refused} is in the future and was ignored (it would lift every later pause); set the current time to resume"
            );
            ctx.event(cs, EventType::Warning, "ResumeRefused", note).await;
        }
        let level = self.levels.overall();
        if !is_alertable(self.previous, level) {
            return;
        }
        let (metric, sample, threshold) = self.worst_metric();
        let detail = sample.map_or_else(String::new, |s| {
            format!(": {} {}", metric.noun(), rep::percent(s.value, metric))
        });
        let type_ = if level >= Level::Warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        let note = format!("reputation {} -> {}{detail}", self.previous, level);
        ctx.event(cs, type_, &format!("Reputation{level}"), note).await;
        let Some(session) = session else { return };
        let ns = cs.namespace().unwrap_or_default();
        let account = account_of(ctx, cs);
        for (policy, notify) in &self.notify {
            let topic = match notify_target(ctx, &ns, account.as_deref(), notify) {
                NotifyTarget::Topic(topic) => topic,
                NotifyTarget::Waiting(why) | NotifyTarget::Refused(_, why) => {
                    ctx.event(
                        cs,
                        EventType::Warning,
                        "NotifyFailed",
                        format!("ReputationPolicy {policy}: not notified: {why}"),
                    )
                    .await;
                    continue;
                }
            };
            let alert = json!({
                "kind": "SesReputationAlert",
                "version": 1,
                "configurationSet": cs.name_any(),
                "awsName": cs.aws_name(),
                "namespace": cs.namespace().unwrap_or_default(),
                "policy": policy,
                "metric": metric.as_str(),
                "value": sample.map(|s| s.value),
                "threshold": threshold,
                "level": level.as_str(),
                "previousLevel": self.previous.as_str(),
                "source": self.source().as_str(),
                "paused": in_aws && self.paused().is_some(),
                "time": self.now.to_string(),
            });
            let subject = format!("SES reputation {level}: {}", cs.aws_name());
            if let Err(e) = session.publish(&topic, &subject, &alert.to_string()).await {
                ctx.event(
                    cs,
                    EventType::Warning,
                    "NotifyFailed",
                    format!("publishing to {topic}: {e}"),
                )
                .await;
            }
        }
    }

    /// The metric driving the overall level, its sample and the threshold
    /// it crossed (or the warning threshold it is back under).
    fn worst_metric(&self) -> (Metric, Option<rep::Sample>, f64) {
        let (metric, sample, t, level) = if self.levels.complaint > self.levels.bounce {
            (
                Metric::Complaint,
                self.reading.complaint,
                self.applied.complaint,
                self.levels.complaint,
            )
        } else {
            (
                Metric::Bounce,
                self.reading.bounce,
                self.applied.bounce,
                self.levels.bounce,
            )
        };
        (
            metric,
            sample,
            if level == Level::Critical {
                t.critical
            } else {
                t.warning
            },
        )
    }
}

/// The `reputation` status block and the two rate conditions for a reading
/// judged against `applied`; `by` names where each metric's thresholds
/// come from (for the condition messages).
pub fn rate_status(
    reading: &Reading,
    levels: &Levels,
    applied: &Applied,
    thresholds_from: String,
    by: [String; 2],
) -> (Reputation, Vec<Desired>) {
    let observed_at = [reading.bounce, reading.complaint]
        .into_iter()
        .flatten()
        .map(|s| s.at)
        .max();
    let block = Reputation {
        bounce_rate: reading.bounce.map(|s| s.value.to_string()),
        bounce_rate_percent: reading.bounce.map(|s| rep::percent(s.value, Metric::Bounce)),
        complaint_rate: reading.complaint.map(|s| s.value.to_string()),
        complaint_rate_percent: reading.complaint.map(|s| rep::percent(s.value, Metric::Complaint)),
        observed_at: observed_at.map(Time),
        level: Some(levels.overall().as_str().to_string()),
        thresholds_from: Some(thresholds_from),
        ..Default::default()
    };
    let [bounce_by, complaint_by] = by;
    let conditions = [
        (
            Metric::Bounce,
            levels.bounce,
            reading.bounce,
            &applied.bounce,
            bounce_by,
            conditions::BOUNCE_RATE_HEALTHY,
        ),
        (
            Metric::Complaint,
            levels.complaint,
            reading.complaint,
            &applied.complaint,
            complaint_by,
            conditions::COMPLAINT_RATE_HEALTHY,
        ),
    ]
    .into_iter()
    .map(|(metric, level, sample, t, by, type_)| {
        let (value, reason, message) = rep::rate_condition(metric, level, sample, t, &by);
        Desired::tri(type_, value, reason, message)
    })
    .collect();
    (block, conditions)
}

/// While rates, level and thresholds stay the same, `observedAt` moves at
/// most every [`OBSERVED_AT_REFRESH`]: CloudWatch publishes a datapoint a
/// minute, and writing each one would patch every set's status every
/// rate interval for nothing a user would notice.
pub fn hold_observed_at(previous: Option<&Reputation>, mut block: Reputation) -> Reputation {
    if let Some(previous) = previous {
        let same = Reputation {
            observed_at: previous.observed_at.clone(),
            ..block.clone()
        } == *previous;
        let recent = match (&previous.observed_at, &block.observed_at) {
            (Some(old), Some(new)) => new.0.duration_since(old.0).unsigned_abs() < OBSERVED_AT_REFRESH,
            _ => false,
        };
        if same && recent {
            block.observed_at = previous.observed_at.clone();
        }
    }
    block
}

/// See [`hold_observed_at`].
pub const OBSERVED_AT_REFRESH: Duration = Duration::from_secs(600);

/// Alerts go out on every change between known levels, and when a set
/// first shows up at Warning or Critical; data gaps (Unknown) and a first
/// Healthy reading are not news.
fn is_alertable(previous: Level, level: Level) -> bool {
    previous != level && level != Level::Unknown && !(previous == Level::Unknown && level == Level::Healthy)
}

/// Where a policy's alerts may go for sets of one SesAccount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotifyTarget {
    Topic(String),
    /// Not yet known (the EventDestination has no topic yet).
    Waiting(String),
    /// Refused: (condition reason, message).
    Refused(&'static str, String),
}

/// Resolves a policy's notify target in `namespace` for sets of `account`.
/// A topic the operator created for an EventDestination of the namespace is
/// always allowed; any other topic only if the SesAccount lists it in
/// `spec.notify.allowedTopicArns`: the operator publishes with its own
/// role, so a tenant must not be able to point it at any topic.
pub fn notify_target(
    ctx: &Context,
    namespace: &str,
    account: Option<&SesAccount>,
    notify: &crate::api::reputation_policy::Notify,
) -> NotifyTarget {
    let allowed = |arn: &str| {
        account
            .and_then(|a| a.spec.notify.as_ref())
            .is_some_and(|n| n.allowed_topic_arns.iter().any(|t| t == arn))
    };
    let refuse = |arn: &str| {
        let account = account.map_or_else(|| ctx.settings.default_account.clone(), |a| a.name_any());
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
    let Some(dest) = ctx.caches.destinations.get(&ObjectRef::new(name).within(namespace)) else {
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

/// The cached SesAccount a set lives in.
fn account_of(ctx: &Context, cs: &ConfigurationSet) -> Option<Arc<SesAccount>> {
    let name = cs.spec.account_ref.as_deref().unwrap_or(&ctx.settings.default_account);
    ctx.caches.accounts.get(&ObjectRef::new(name))
}

/// Evaluates a set's reputation from the cached reading and the policies
/// that select it. `None` until the first rate read after start-up: the
/// stored status stays as it was rather than flapping to Unknown.
pub fn evaluate(cs: &ConfigurationSet, ctx: &Context) -> Option<SetEvaluation> {
    let ns = cs.namespace();
    let cw_reading = ctx
        .reputation
        .set_reading(ns.as_deref().unwrap_or_default(), &cs.name_any());
    let labels = cs.labels();
    let all_policies: Vec<Arc<ReputationPolicy>> = ctx
        .caches
        .policies
        .state()
        .into_iter()
        .filter(|p| p.namespace() == ns)
        .collect();
    let selecting: Vec<&ReputationPolicy> = all_policies
        .iter()
        .map(|p| &**p)
        .filter(|p| selects(p, labels))
        .collect();
    let named: Vec<(String, &crate::api::ReputationPolicySpec)> =
        selecting.iter().map(|p| (p.name_any(), &p.spec)).collect();
    let applied = rep::applied(&named);
    let now_ts = Timestamp::now();
    let live = crate::loops::stream_consumer::view(cs, ctx, &selecting, &applied, now_ts);
    // Before the first CloudWatch read only a live rate that judges (a
    // breaker with enough sends) is news; otherwise status stays as stored.
    let cw_reading = match cw_reading {
        Some(r) => r,
        None if live.as_ref().is_some_and(|l| l.levels.overall() != Level::Unknown) => Reading::default(),
        None => return None,
    };
    let cw_levels = rep::levels(&cw_reading, &applied, now_ts, ctx.settings.reputation.staleness);
    let (reading, levels, sources) =
        crate::loops::stream_consumer::combine(&cw_reading, cw_levels, live.as_ref(), now_ts);
    let status = cs.status.clone().unwrap_or_default();
    let previous = status
        .reputation
        .as_ref()
        .and_then(|r| r.level.as_deref())
        .map_or(Level::Unknown, Level::parse);
    let staleness = ctx.settings.reputation.staleness;
    let unknown = Levels {
        bounce: Level::Unknown,
        complaint: Level::Unknown,
    };
    let (pause_levels, previous_at_pause_point) = match &applied.pause_point {
        Some(point) => (
            point.levels(&reading, now_ts, staleness),
            point
                .levels(&stored_reading(status.reputation.as_ref(), now_ts), now_ts, staleness)
                .overall(),
        ),
        None => (unknown, Level::Unknown),
    };
    let current = stored_pause(cs);
    let resume_requested_at = cs
        .annotations()
        .get(RESUME_ANNOTATION)
        .and_then(|v| v.parse::<Timestamp>().ok());
    let refused_resume_at = rep::resume_in_future(resume_requested_at, now_ts)
        .then(|| cs.annotations().get(RESUME_ANNOTATION).cloned())
        .flatten();
    let mut reason = pause_reason(&reading, &applied, &pause_levels);
    // Which source reached the pause point: say so when it was the events.
    let driver = sources[usize::from(pause_levels.bounce != Level::Critical)];
    if let (Some(l), crate::loops::stream_consumer::Source::Events) = (&live, driver)
        && !reason.is_empty()
    {
        reason.push_str(&format!(
            "{LIVE_NOTE}{})",
            crate::loops::stream_consumer::window_label(l.summary.window_secs)
        ));
    }
    // A selector the apiserver accepted but kube cannot parse must not
    // silently release a paused set: keep the pause as it is.
    let unreadable = selecting_errors(&all_policies);
    // A pause the live events drove: after a restart their windows start
    // empty, and an empty window is not quiet.
    let quiet_blocked = current.as_ref().is_some_and(|p| p.reason.contains(LIVE_NOTE))
        && live.as_ref().is_some_and(|l| l.summary.warming_up);
    let step = rep::pause_step(PauseInput {
        current,
        levels,
        pause_levels,
        previous: previous_at_pause_point,
        applied: &applied,
        resumed_at: status.resumed_at.as_ref().map(|t| t.0),
        resume_requested_at,
        quiet_blocked,
        reason,
        now: now_ts,
    });
    let step = match (unreadable, &step) {
        (true, PauseStep::Resumed { how: "policy removed" }) => PauseStep::Stay(stored_pause(cs)),
        _ => step,
    };
    let notify = selecting
        .iter()
        .filter_map(|p| p.spec.actions.notify.clone().map(|n| (p.name_any(), n)))
        .collect();
    Some(SetEvaluation {
        reading,
        cw_reading,
        cw_levels,
        sources,
        live,
        applied,
        levels,
        previous,
        step,
        notify,
        refused_resume_at,
        now: now_ts,
    })
}

/// Marks a pause reason whose rate came from the live events; the stored
/// reason is also how a later evaluation knows which source paused.
const LIVE_NOTE: &str = " (live events over ";

/// Why a set pauses: the rate at its pause point, the threshold and the
/// policy it came from.
fn pause_reason(reading: &Reading, applied: &Applied, pause_levels: &Levels) -> String {
    let Some(point) = &applied.pause_point else {
        return String::new();
    };
    let (metric, sample, (limit, policy)) = if pause_levels.bounce == Level::Critical {
        (Metric::Bounce, reading.bounce, &point.bounce)
    } else {
        (Metric::Complaint, reading.complaint, &point.complaint)
    };
    sample.map_or_else(String::new, |s| {
        format!(
            "{} {} >= critical {} (ReputationPolicy {policy})",
            metric.noun(),
            rep::percent(s.value, metric),
            rep::percent(*limit, metric)
        )
    })
}

/// The reading a set's stored status shows (the previous evaluation's):
/// per metric the worse of CloudWatch's rate and the live one.
fn stored_reading(block: Option<&Reputation>, now: Timestamp) -> Reading {
    let sample = |value: Option<&String>| -> Option<rep::Sample> {
        Some(rep::Sample {
            value: value?.parse().ok()?,
            at: block?.observed_at.as_ref()?.0,
        })
    };
    // Live rates are as of the last evaluation.
    let live = |value: Option<&String>| -> Option<rep::Sample> {
        Some(rep::Sample {
            value: value?.parse().ok()?,
            at: now,
        })
    };
    let worse = |a: Option<rep::Sample>, b: Option<rep::Sample>| match (a, b) {
        (Some(a), Some(b)) if b.value > a.value => Some(b),
        (None, b) => b,
        (a, _) => a,
    };
    let stream = block.and_then(|b| b.live.as_ref());
    Reading {
        bounce: worse(
            sample(block.and_then(|b| b.bounce_rate.as_ref())),
            live(stream.and_then(|l| l.bounce_rate.as_ref())),
        ),
        complaint: worse(
            sample(block.and_then(|b| b.complaint_rate.as_ref())),
            live(stream.and_then(|l| l.complaint_rate.as_ref())),
        ),
        read_at: None,
    }
}

/// The pause recorded in a set's status.
pub fn stored_pause(cs: &ConfigurationSet) -> Option<Pause> {
    cs.status.as_ref()?.pause.as_ref().map(|p| Pause {
        policy: p.policy.clone(),
        reason: p.reason.clone(),
        since: p.since.0,
        quiet_since: p.quiet_since.as_ref().map(|t| t.0),
    })
}

fn selecting_errors(policies: &[Arc<ReputationPolicy>]) -> bool {
    policies
        .iter()
        .any(|p| Selector::try_from(p.spec.selector.clone()).is_err())
}

/// ReputationPolicy reconciler: which sets it covers and which breach,
/// computed from the set cache; triggered by set and policy changes, so it
/// needs no timer and writes only when that list changes.
pub async fn reconcile_policy(policy: Arc<ReputationPolicy>, ctx: Arc<Context>) -> Result<Passed, Error> {
    let span = info_span!("reconcile", kind = "ReputationPolicy", object = %key_of(&*policy));
    async move {
        let ns = policy.namespace().unwrap_or_default();
        let api: Api<ReputationPolicy> = Api::namespaced(ctx.client.clone(), &ns);
        let cached = Obj {
            obj: policy,
            api: api.clone(),
            fresh: false,
        };
        match write_policy_status(&cached, &ctx).await {
            Err(Halt::Stale(_)) => {
                let Some(obj) = api
                    .get_opt(&cached.obj.name_any())
                    .await
                    .map_err(Error::kube("reading the object"))?
                else {
                    return Ok(Passed::done(Action::await_change()));
                };
                let fresh = Obj {
                    obj: Arc::new(obj),
                    api,
                    fresh: true,
                };
                write_policy_status(&fresh, &ctx).await.map_err(Halt::into_error)?;
            }
            other => other.map_err(Halt::into_error)?,
        }
        Ok(Passed::done(Action::await_change()))
    }
    .instrument(span)
    .await
}

async fn write_policy_status(o: &Obj<ReputationPolicy>, ctx: &Context) -> Result<(), Halt> {
    let policy = &*o.obj;
    let ns = policy.namespace();
    let mut covered = Vec::new();
    let mut breaching = Vec::new();
    let mut newest: Option<Time> = None;
    let sets = ctx.caches.sets.state();
    let members = sets
        .iter()
        .filter(|cs| cs.namespace() == ns && cs.metadata.deletion_timestamp.is_none())
        .filter(|cs| selects(policy, cs.labels()));
    for cs in members {
        covered.push(cs.name_any());
        let Some(r) = cs.status.as_ref().and_then(|s| s.reputation.as_ref()) else {
            continue;
        };
        if let Some(at) = &r.observed_at
            && newest.as_ref().is_none_or(|n| n.0 < at.0)
        {
            newest = Some(at.clone());
        }
        let level = r.level.as_deref().map_or(Level::Unknown, Level::parse);
        if level >= Level::Warning {
            breaching.push(crate::api::reputation_policy::Breach {
                configuration_set: cs.name_any(),
                level: level.as_str().to_string(),
                detail: match (r.source.as_deref(), r.live.as_ref()) {
                    // The live source drove the level: its rates are the news.
                    (Some("Events"), Some(live)) => format!(
                        "live bounce {} / complaint {} over {} (thresholds from {})",
                        live.bounce_rate_percent.as_deref().unwrap_or("n/a"),
                        live.complaint_rate_percent.as_deref().unwrap_or("n/a"),
                        live.window,
                        r.thresholds_from.as_deref().unwrap_or("AWS")
                    ),
                    _ => format!(
                        "bounce {} / complaint {} (thresholds from {})",
                        r.bounce_rate_percent.as_deref().unwrap_or("n/a"),
                        r.complaint_rate_percent.as_deref().unwrap_or("n/a"),
                        r.thresholds_from.as_deref().unwrap_or("AWS")
                    ),
                },
            });
        }
    }
    covered.sort();
    breaching.sort_by(|a, b| a.configuration_set.cmp(&b.configuration_set));
    let notify = policy.spec.actions.notify.as_ref().map(|notify| {
        // The accounts of the covered sets (the default account if none).
        let mut accounts: Vec<String> = sets
            .iter()
            .filter(|cs| cs.namespace() == ns && covered.contains(&cs.name_any()))
            .map(|cs| {
                cs.spec
                    .account_ref
                    .clone()
                    .unwrap_or_else(|| ctx.settings.default_account.clone())
            })
            .collect();
        if accounts.is_empty() {
            accounts.push(ctx.settings.default_account.clone());
        }
        accounts.sort();
        accounts.dedup();
        let ns = ns.clone().unwrap_or_default();
        accounts
            .iter()
            .map(|a| notify_target(ctx, &ns, ctx.caches.accounts.get(&ObjectRef::new(a)).as_deref(), notify))
            .find(|t| !matches!(t, NotifyTarget::Topic(_)))
    });
    let ready = if Selector::try_from(policy.spec.selector.clone()).is_err() {
        conditions::stalled("InvalidSelector", "spec.selector cannot be parsed")
    } else if let Some(Some(NotifyTarget::Refused(reason, message))) = notify {
        conditions::stalled(reason, format!("spec.actions.notify: {message}"))
    } else if let Some(Some(NotifyTarget::Waiting(message))) = notify {
        conditions::reconciling("WaitingForNotifyTarget", message)
    } else {
        conditions::ready(format!(
            "covers {} configuration set(s), {} breaching",
            covered.len(),
            breaching.len()
        ))
    };
    let mut status = o.status();
    let last_evaluation_time = newest.or(status.last_evaluation_time.take());
    o.merge_conditions(&mut status, &ready);
    let status = ReputationPolicyStatus {
        covered_count: covered.len() as i64,
        covered,
        breaching_count: breaching.len() as i64,
        breaching,
        last_evaluation_time,
        ..status
    };
    o.patch_status(&status).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(rate: &str, at: &str) -> Reputation {
        Reputation {
            bounce_rate: Some(rate.into()),
            observed_at: Some(Time(at.parse().expect("timestamp"))),
            level: Some("Healthy".into()),
            ..Default::default()
        }
    }

    #[test]
    fn observed_at_holds_while_the_rate_is_unchanged() {
        let old = block("0.01", "2026-01-01T00:00:00Z");
        let next_minute = block("0.01", "2026-01-01T00:01:00Z");
        assert_eq!(hold_observed_at(Some(&old), next_minute), old);
        // Ten minutes on, the time moves even though the rate did not.
        let later = block("0.01", "2026-01-01T00:10:00Z");
        assert_eq!(hold_observed_at(Some(&old), later.clone()), later);
        // A new value always shows its own time.
        let changed = block("0.02", "2026-01-01T00:01:00Z");
        assert_eq!(hold_observed_at(Some(&old), changed.clone()), changed);
        assert_eq!(hold_observed_at(None, changed.clone()), changed);
    }

    #[test]
    fn a_reading_changes_on_new_data_or_when_it_goes_stale() {
        let now = Timestamp::now();
        let sample = |value: f64, ago: i64| rep::Sample {
            value,
            at: now - jiff::SignedDuration::from_secs(ago),
        };
        let reading = |b: Option<rep::Sample>, read_ago: i64| Reading {
            bounce: b,
            complaint: None,
            read_at: Some(now - jiff::SignedDuration::from_secs(read_ago)),
        };
        let staleness = Duration::from_secs(3600);
        let old = reading(Some(sample(0.01, 120)), 60);
        // Only the read time moved: nothing to re-evaluate.
        assert!(!reading_changed(
            Some(&old),
            &reading(Some(sample(0.01, 120)), 0),
            staleness
        ));
        assert!(reading_changed(
            Some(&old),
            &reading(Some(sample(0.02, 60)), 0),
            staleness
        ));
        assert!(reading_changed(None, &old, staleness));
        // The same datapoint, read again once it is older than the
        // staleness: Unknown now.
        let stale = Duration::from_secs(100);
        let before = reading(Some(sample(0.01, 120)), 30);
        let again = reading(Some(sample(0.01, 120)), 0);
        assert!(reading_changed(Some(&before), &again, stale));
        assert!(!reading_changed(Some(&again), &again, stale));
    }
}
