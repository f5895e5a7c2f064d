//! Reputation: the rate reader (one CloudWatch batch per account per
//! interval, cached here), the per-set evaluation the ConfigurationSet
//! reconciler folds into its status (levels, conditions, pause/resume,
//! events and SNS alerts on level changes), and the ReputationPolicy
//! reconciler that reports which sets a policy covers and which breach.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams};
use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tokio::sync::mpsc;
use tracing::{Instrument, info_span};

use super::{Context, Error, key_of, now, patch_status};
use crate::api::conditions::{self, Desired};
use crate::api::configuration_set::{PauseStatus, Reputation};
use crate::api::{
    ConfigurationSet, ConfigurationSetStatus, EventDestination, RESUME_ANNOTATION, ReputationPolicy,
    ReputationPolicyStatus, SesAccount,
};
use crate::aws::{AccountKey, Session};
use crate::reputation::{self as rep, Applied, Level, Levels, Metric, Pause, PauseInput, PauseStep, Reading};

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
        let rx = self.rx.lock().unwrap_or_else(|p| p.into_inner()).take();
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
        self.sets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&format!("{namespace}/{name}"))
            .copied()
    }

    pub fn account_reading(&self, account: &str) -> Option<Reading> {
        self.accounts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(account)
            .copied()
    }

    /// Whether an account's rates may be read now (not backing off).
    fn due(&self, account: &str) -> bool {
        let backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        backoff
            .get(account)
            .is_none_or(|(_, next)| *next <= tokio::time::Instant::now())
    }

    /// After a read: success clears the back-off; failures double the wait
    /// (one interval, two, four, ... up to 16), as for SES throttling.
    fn record(&self, account: &str, ok: bool, interval: Duration) {
        let mut backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
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
pub async fn run_rate_reader(
    ctx: Arc<Context>,
    sets: Store<ConfigurationSet>,
    mut shutdown: impl std::future::Future<Output = ()> + Unpin,
) {
    let interval = ctx.settings.reputation.interval;
    loop {
        read_all(&ctx, &sets).instrument(info_span!("read_rates")).await;
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

async fn read_all(ctx: &Context, sets: &Store<ConfigurationSet>) {
    // Group the sets that exist in AWS by the SesAccount they live in.
    let mut by_account: BTreeMap<String, Vec<Arc<ConfigurationSet>>> = BTreeMap::new();
    for cs in sets.state() {
        if cs.status.as_ref().and_then(|s| s.aws_name.as_ref()).is_some() {
            let account = cs
                .spec
                .account_ref
                .clone()
                .unwrap_or_else(|| ctx.settings.default_account.clone());
            by_account.entry(account).or_default().push(cs);
        }
    }
    let accounts: Api<SesAccount> = Api::all(ctx.client.clone());
    for (account_name, members) in by_account {
        if !ctx.reputation.due(&account_name) {
            continue;
        }
        let account = match accounts.get_opt(&account_name).await {
            Ok(Some(a)) => a,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, account = account_name, "cannot read SesAccount");
                continue;
            }
        };
        let key = AccountKey {
            region: account.spec.region.clone(),
            role_arn: account.spec.role_arn.clone(),
            external_id: account.spec.external_id.clone(),
        };
        let session = match ctx.aws.session(&key).await {
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
                {
                    let mut cache = ctx.reputation.sets.write().unwrap_or_else(|p| p.into_inner());
                    for cs in &members {
                        let aws_name = cs.status.as_ref().and_then(|s| s.aws_name.clone()).unwrap_or_default();
                        // Metrics off: an empty reading, so the set shows NoData.
                        let reading = rates.sets.get(&aws_name).copied().unwrap_or(Reading {
                            read_at,
                            ..Default::default()
                        });
                        cache.insert(
                            format!("{}/{}", cs.namespace().unwrap_or_default(), cs.name_any()),
                            reading,
                        );
                    }
                }
                ctx.reputation
                    .accounts
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(account_name.clone(), rates.account);
                for cs in &members {
                    ctx.reputation.set_trigger.send(cs);
                }
                ctx.reputation.account_trigger.send(&account);
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
    reading: Reading,
    applied: Applied,
    levels: Levels,
    previous: Level,
    step: PauseStep,
    /// Policies selecting the set that want alerts, by name.
    notify: Vec<(String, crate::api::reputation_policy::Notify)>,
    now: Timestamp,
}

impl SetEvaluation {
    /// The pause in force after this evaluation.
    pub fn paused(&self) -> Option<&Pause> {
        self.step.pause()
    }

    /// Writes the reputation block, the rate conditions and the pause.
    /// `in_aws`: whether this reconcile applied the pause decision to AWS;
    /// if not, a pause or resume is not recorded yet (status must not claim
    /// what SES does not do).
    pub fn apply_to(&self, status: &mut ConfigurationSetStatus, generation: Option<i64>, in_aws: bool) {
        let sources = [
            self.applied.bounce_source.as_deref(),
            self.applied.complaint_source.as_deref(),
        ];
        let [bounce, complaint] = sources.map(|s| s.unwrap_or("AWS"));
        let thresholds_from = if bounce == complaint {
            bounce.to_string()
        } else {
            format!("{bounce}, {complaint}")
        };
        let (block, desired) = rate_status(
            &self.reading,
            &self.levels,
            &self.applied,
            thresholds_from,
            sources.map(rep::source_label),
        );
        status.reputation = Some(block);
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
                })
            }
        }
        status.conditions = conditions::merge(&status.conditions, &desired, generation, &now());
    }

    /// Feeds the Prometheus gauges; a stale or missing rate has no series.
    pub fn record_metrics(&self, metrics: &crate::metrics::Metrics, namespace: &str, name: &str) {
        metrics.set_set_reputation(
            namespace,
            name,
            rep::known_value(self.levels.bounce, self.reading.bounce),
            rep::known_value(self.levels.complaint, self.reading.complaint),
            self.levels.overall().gauge(),
        );
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
        for (policy, notify) in &self.notify {
            let Some(topic) = notify_topic(ctx, cs, notify).await else {
                ctx.event(
                    cs,
                    EventType::Warning,
                    "NotifyFailed",
                    format!("ReputationPolicy {policy}: no topic to notify"),
                )
                .await;
                continue;
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

/// Alerts go out on every change between known levels, and when a set
/// first shows up at Warning or Critical; data gaps (Unknown) and a first
/// Healthy reading are not news.
fn is_alertable(previous: Level, level: Level) -> bool {
    previous != level && level != Level::Unknown && !(previous == Level::Unknown && level == Level::Healthy)
}

async fn notify_topic(
    ctx: &Context,
    cs: &ConfigurationSet,
    notify: &crate::api::reputation_policy::Notify,
) -> Option<String> {
    if let Some(arn) = &notify.topic_arn {
        return Some(arn.clone());
    }
    let name = &notify.event_destination_ref.as_ref()?.name;
    let api: Api<EventDestination> = Api::namespaced(ctx.client.clone(), &cs.namespace().unwrap_or_default());
    api.get_opt(name).await.ok()??.status?.topic_arn
}

/// Evaluates a set's reputation from the cached reading and the policies
/// that select it. `None` until the first rate read after start-up: the
/// stored status stays as it was rather than flapping to Unknown.
pub async fn evaluate(cs: &ConfigurationSet, ctx: &Context) -> Result<Option<SetEvaluation>, Error> {
    let ns = cs.namespace().unwrap_or_default();
    let Some(reading) = ctx.reputation.set_reading(&ns, &cs.name_any()) else {
        return Ok(None);
    };
    let policies = Api::<ReputationPolicy>::namespaced(ctx.client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .map_err(Error::kube("listing ReputationPolicies"))?;
    let labels = cs.labels();
    let all_policies = policies.items;
    let selecting: Vec<ReputationPolicy> = all_policies.iter().filter(|p| selects(p, labels)).cloned().collect();
    let named: Vec<(String, &crate::api::ReputationPolicySpec)> =
        selecting.iter().map(|p| (p.name_any(), &p.spec)).collect();
    let applied = rep::applied(&named);
    let now_ts = Timestamp::now();
    let levels = rep::levels(&reading, &applied, now_ts, ctx.settings.reputation.staleness);
    let status = cs.status.clone().unwrap_or_default();
    let previous = status
        .reputation
        .as_ref()
        .and_then(|r| r.level.as_deref())
        .map_or(Level::Unknown, Level::parse);
    let current = stored_pause(cs);
    let resume_requested_at = cs
        .annotations()
        .get(RESUME_ANNOTATION)
        .and_then(|v| v.parse::<Timestamp>().ok());
    let worst = if levels.complaint > levels.bounce {
        reading.complaint.map(|s| {
            (
                "complaint rate",
                rep::percent(s.value, Metric::Complaint),
                rep::percent(applied.complaint.critical, Metric::Complaint),
            )
        })
    } else {
        reading.bounce.map(|s| {
            (
                "bounce rate",
                rep::percent(s.value, Metric::Bounce),
                rep::percent(applied.bounce.critical, Metric::Bounce),
            )
        })
    };
    let reason = worst.map_or_else(String::new, |(noun, value, limit)| {
        format!("{noun} {value} >= critical {limit}")
    });
    // A selector the apiserver accepted but kube cannot parse must not
    // silently release a paused set: keep the pause as it is.
    let unreadable = selecting_errors(&all_policies);
    let step = rep::pause_step(PauseInput {
        current,
        levels,
        previous,
        applied: &applied,
        resumed_at: status.resumed_at.as_ref().map(|t| t.0),
        resume_requested_at,
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
    Ok(Some(SetEvaluation {
        reading,
        applied,
        levels,
        previous,
        step,
        notify,
        now: now_ts,
    }))
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

fn selecting_errors(policies: &[ReputationPolicy]) -> bool {
    policies
        .iter()
        .any(|p| Selector::try_from(p.spec.selector.clone()).is_err())
}

fn selects(policy: &ReputationPolicy, labels: &BTreeMap<String, String>) -> bool {
    Selector::try_from(policy.spec.selector.clone()).is_ok_and(|s| s.matches(labels))
}

/// ReputationPolicy reconciler: which sets it covers and which breach.
pub async fn reconcile_policy(policy: Arc<ReputationPolicy>, ctx: Arc<Context>) -> Result<Action, Error> {
    let span = info_span!("reconcile", kind = "ReputationPolicy", object = %key_of(&*policy));
    async move {
        let ns = policy.namespace().unwrap_or_default();
        let api: Api<ReputationPolicy> = Api::namespaced(ctx.client.clone(), &ns);
        let Some(policy) = super::fresh(&api, &policy).await? else {
            return Ok(Action::await_change());
        };
        let sets = Api::<ConfigurationSet>::namespaced(ctx.client.clone(), &ns)
            .list(&ListParams::default())
            .await
            .map_err(Error::kube("listing ConfigurationSets"))?;
        let mut status = policy.status.clone().unwrap_or_default();
        let mut covered = Vec::new();
        let mut breaching = Vec::new();
        let mut newest: Option<Time> = None;
        for cs in sets.items.iter().filter(|cs| selects(&policy, cs.labels())) {
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
                    detail: format!(
                        "bounce {} / complaint {} (thresholds from {})",
                        r.bounce_rate_percent.as_deref().unwrap_or("n/a"),
                        r.complaint_rate_percent.as_deref().unwrap_or("n/a"),
                        r.thresholds_from.as_deref().unwrap_or("AWS")
                    ),
                });
            }
        }
        covered.sort();
        breaching.sort_by(|a, b| a.configuration_set.cmp(&b.configuration_set));
        let generation = policy.meta().generation;
        let ready = if Selector::try_from(policy.spec.selector.clone()).is_err() {
            conditions::stalled("InvalidSelector", "spec.selector cannot be parsed")
        } else {
            conditions::ready(format!(
                "covers {} configuration set(s), {} breaching",
                covered.len(),
                breaching.len()
            ))
        };
        status = ReputationPolicyStatus {
            observed_generation: generation,
            conditions: conditions::merge(&status.conditions, &ready, generation, &now()),
            covered_count: covered.len() as i64,
            covered,
            breaching_count: breaching.len() as i64,
            breaching,
            last_evaluation_time: newest.or(status.last_evaluation_time),
        };
        patch_status(&api, &*policy, policy.status.as_ref(), &status).await?;
        Ok(Action::requeue(ctx.settings.reputation.interval))
    }
    .instrument(span)
    .await
}
