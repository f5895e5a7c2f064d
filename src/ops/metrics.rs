//! Prometheus metrics of one operator process: the registry, every metric
//! family the operator exports, and the OpenMetrics text that `/metrics`
//! serves.
//!
//! Labels are bounded on purpose: kinds, AWS operations, outcome classes,
//! and (for the reputation gauges) the configuration sets and accounts the
//! operator manages. AWS messages never become labels.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    kind: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    service: String,
    operation: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    service: String,
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectLabels {
    kind: String,
    condition: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SetLabels {
    namespace: String,
    configuration_set: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccountLabels {
    account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabels {
    account: String,
    namespace: String,
    tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    account: String,
    r#type: String,
    impact: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SchedulerLabels {
    aws_account: String,
    region: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    aws_account: String,
    region: String,
    class: &'static str,
}

/// Pacing of one SES scheduler as the gauges show it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SchedulerGauges {
    /// Calls per second the scheduler paces at now.
    pub rate: f64,
    /// Callers waiting, by class (pause, spec, drift).
    pub waiting: [usize; 3],
}

/// Pacing of each SES scheduler, read on every scrape: (AWS account ID,
/// region, gauges).
pub type SchedulerSource = Arc<dyn Fn() -> Vec<(String, String, SchedulerGauges)> + Send + Sync>;

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;
type RateFamily<L> = Family<L, Gauge<f64, AtomicU64>>;

/// How many objects of one kind have `Ready` / `Stalled` at True and at False.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConditionCounts {
    pub ready_true: i64,
    pub ready_false: i64,
    pub stalled_true: i64,
    pub stalled_false: i64,
}

impl ConditionCounts {
    /// Adds one object's conditions; an object without a condition (or with
    /// status Unknown) counts in neither of its series.
    pub fn add(&mut self, conditions: &[Condition]) {
        for c in conditions {
            let slot = match (c.type_.as_str(), c.status.as_str()) {
                ("Ready", "True") => &mut self.ready_true,
                ("Ready", "False") => &mut self.ready_false,
                ("Stalled", "True") => &mut self.stalled_true,
                ("Stalled", "False") => &mut self.stalled_false,
                _ => continue,
            };
            *slot += 1;
        }
    }
}

/// Counts objects per kind from the controllers' caches. Installed by the
/// controllers while they run and called on every scrape: the caches are in
/// memory, so counting there is cheaper and fresher than a periodic task.
pub type ObjectSource = Arc<dyn Fn() -> Vec<(&'static str, ConditionCounts)> + Send + Sync>;

/// Every metric of the operator, shared by the controllers, the AWS
/// sessions and the HTTP server.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ReconcileLabels, Counter>,
    reconcile_errors: Family<KindLabels, Counter>,
    reconcile_duration: HistogramFamily<KindLabels>,
    aws_calls: Family<CallLabels, Counter>,
    aws_call_duration: HistogramFamily<OperationLabels>,
    ses_token_wait: Histogram,
    objects: Family<ObjectLabels, Gauge>,
    object_source: Mutex<Option<ObjectSource>>,
    leader: Gauge,
    bounce_rate: RateFamily<SetLabels>,
    complaint_rate: RateFamily<SetLabels>,
    level: Family<SetLabels, Gauge>,
    account_bounce_rate: RateFamily<AccountLabels>,
    account_complaint_rate: RateFamily<AccountLabels>,
    quota_used: RateFamily<AccountLabels>,
    tenant_sending: RateFamily<TenantLabels>,
    findings_open: RateFamily<FindingLabels>,
    ses_rate: RateFamily<SchedulerLabels>,
    ses_waiting: Family<QueueLabels, Gauge>,
    scheduler_source: Mutex<Option<SchedulerSource>>,
    drift_period: RateFamily<AccountLabels>,
    live_bounce_rate: RateFamily<SetLabels>,
    live_complaint_rate: RateFamily<SetLabels>,
    live_sends: Family<SetLabels, Gauge>,
    paused: Family<SetLabels, Gauge>,
    stream_events: Family<OutcomeLabels, Counter>,
    watch_errors: Family<KindLabels, Counter>,
    live_checkpoints: Family<OutcomeLabels, Counter>,
    stream_newest_age: Gauge<f64, AtomicU64>,
    /// Unix seconds of the newest event counted (age computed per scrape).
    stream_newest: Mutex<Option<f64>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn reconcile_histogram() -> Histogram {
    // 10 ms to ~80 s: a reconcile waits for the 1/s SES token bucket.
    Histogram::new(exponential_buckets(0.01, 2.0, 14))
}

fn aws_call_histogram() -> Histogram {
    // 5 ms to ~40 s (the SDK's attempt timeout is 20 s, two attempts).
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

impl Metrics {
    // One flat list of registrations, over 100 lines: each metric's name,
    // help and handle stay side by side, in the order /metrics shows them;
    // helpers per group would only move the list around.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register(
            "ses_reputation_reconciles",
            "Reconciles by kind and result: ok, waiting, stalled, refused, aws_error, throttled, kube_error, not_leader, shutdown, invariant",
            reconciles.clone(),
        );
        let reconcile_errors = Family::<KindLabels, Counter>::default();
        registry.register(
            "ses_reputation_reconcile_errors",
            "Reconciles that failed (a Kubernetes or AWS error, retried with back-off); objects that wait or are Stalled on their spec are not counted",
            reconcile_errors.clone(),
        );
        let reconcile_duration: HistogramFamily<KindLabels> = Family::new_with_constructor(reconcile_histogram);
        registry.register_with_unit(
            "ses_reputation_reconcile_duration",
            "Time one reconcile took, including waits for the SES token bucket",
            Unit::Seconds,
            reconcile_duration.clone(),
        );
        let aws_calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "ses_reputation_aws_calls",
            "AWS API calls by service, operation and outcome (ok, throttled, client, server, transport)",
            aws_calls.clone(),
        );
        let aws_call_duration: HistogramFamily<OperationLabels> = Family::new_with_constructor(aws_call_histogram);
        registry.register_with_unit(
            "ses_reputation_aws_call_duration",
            "Latency of AWS API calls (SDK retries included, token-bucket wait excluded)",
            Unit::Seconds,
            aws_call_duration.clone(),
        );
        // 10 ms to ~5 min: thousands of drift checks queue at 1/s.
        let ses_token_wait = Histogram::new(exponential_buckets(0.01, 2.0, 16));
        registry.register_with_unit(
            "ses_reputation_ses_token_wait",
            "Time SES calls waited in the per-account+region token bucket",
            Unit::Seconds,
            ses_token_wait.clone(),
        );
        let objects = Family::<ObjectLabels, Gauge>::default();
        registry.register(
            "ses_reputation_objects",
            "Objects per kind whose Ready or Stalled condition is True or False (leader only)",
            objects.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "ses_reputation_leader",
            "1 while this replica runs the controllers (leader, or leader election off)",
            leader.clone(),
        );
        let bounce_rate = RateFamily::<SetLabels>::default();
        registry.register(
            "ses_reputation_bounce_rate",
            "Bounce rate of a configuration set (fraction 0-1, CloudWatch Reputation.BounceRate)",
            bounce_rate.clone(),
        );
        let complaint_rate = RateFamily::<SetLabels>::default();
        registry.register(
            "ses_reputation_complaint_rate",
            "Complaint rate of a configuration set (fraction 0-1, CloudWatch Reputation.ComplaintRate)",
            complaint_rate.clone(),
        );
        let level = Family::<SetLabels, Gauge>::default();
        registry.register(
            "ses_reputation_level",
            "Reputation level of a configuration set: 0 healthy, 1 warning, 2 critical, -1 unknown",
            level.clone(),
        );
        let account_bounce_rate = RateFamily::<AccountLabels>::default();
        registry.register(
            "ses_reputation_account_bounce_rate",
            "Account-level bounce rate of an SesAccount (fraction 0-1)",
            account_bounce_rate.clone(),
        );
        let account_complaint_rate = RateFamily::<AccountLabels>::default();
        registry.register(
            "ses_reputation_account_complaint_rate",
            "Account-level complaint rate of an SesAccount (fraction 0-1)",
            account_complaint_rate.clone(),
        );
        let quota_used = RateFamily::<AccountLabels>::default();
        registry.register(
            "ses_reputation_account_quota_used",
            "Share of an SesAccount's 24-hour sending quota used (sentLast24Hours / max24HourSend, 0-1)",
            quota_used.clone(),
        );
        let tenant_sending = RateFamily::<TenantLabels>::default();
        registry.register(
            "ses_reputation_tenant_sending",
            "Whether SES lets a namespace's tenant send (1: aggregate sending status ENABLED, 0: DISABLED)",
            tenant_sending.clone(),
        );
        let findings_open = RateFamily::<FindingLabels>::default();
        registry.register(
            "ses_reputation_findings_open",
            "Open SES findings (ListRecommendations) of an SesAccount by type and impact",
            findings_open.clone(),
        );
        let ses_rate = RateFamily::<SchedulerLabels>::default();
        registry.register(
            "ses_reputation_ses_rate",
            "SES control-plane calls per second the scheduler paces at now (cut on throttling, recovering to the configured ceiling)",
            ses_rate.clone(),
        );
        let ses_waiting = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "ses_reputation_ses_waiting",
            "SES calls waiting for a slot, by class (pause, spec, drift)",
            ses_waiting.clone(),
        );
        let drift_period = RateFamily::<AccountLabels>::default();
        registry.register_with_unit(
            "ses_reputation_drift_period",
            "Effective drift-check period of an SesAccount: the configured interval, stretched when its objects need more than the drift share of the SES budget",
            Unit::Seconds,
            drift_period.clone(),
        );
        let live_bounce_rate = RateFamily::<SetLabels>::default();
        registry.register(
            "ses_reputation_live_bounce_rate",
            "Hard-bounce rate of a configuration set over its live window (fraction 0-1, from the SES event stream)",
            live_bounce_rate.clone(),
        );
        let live_complaint_rate = RateFamily::<SetLabels>::default();
        registry.register(
            "ses_reputation_live_complaint_rate",
            "Complaint rate of a configuration set over its live window (fraction 0-1, from the SES event stream)",
            live_complaint_rate.clone(),
        );
        let live_sends = Family::<SetLabels, Gauge>::default();
        registry.register(
            "ses_reputation_live_sends",
            "Sends (recipients) of a configuration set in its live window",
            live_sends.clone(),
        );
        let paused = Family::<SetLabels, Gauge>::default();
        registry.register(
            "ses_reputation_paused",
            "1 while a ReputationPolicy keeps sending through a configuration set paused, else 0",
            paused.clone(),
        );
        let stream_events = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "ses_reputation_stream_events",
            "SES event stream messages consumed, by outcome (counted, malformed, foreign)",
            stream_events.clone(),
        );
        let watch_errors = Family::<KindLabels, Counter>::default();
        registry.register(
            "ses_reputation_watch_errors",
            "Failed list/watch requests of each watched kind (each retried with back-off); /readyz fails while a watch keeps failing",
            watch_errors.clone(),
        );
        let live_checkpoints = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "ses_reputation_live_checkpoints",
            "Live-window checkpoints by outcome: written, failed (retried within 10 s), restored (by a new leader), unusable (a stored one that could not be read)",
            live_checkpoints.clone(),
        );
        let stream_newest_age = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "ses_reputation_stream_newest_event_age",
            "Age of the newest SES event counted (its send time), at scrape time",
            Unit::Seconds,
            stream_newest_age.clone(),
        );
        Self {
            registry,
            live_bounce_rate,
            live_complaint_rate,
            live_sends,
            paused,
            stream_events,
            watch_errors,
            live_checkpoints,
            stream_newest_age,
            stream_newest: Mutex::new(None),
            ses_rate,
            ses_waiting,
            scheduler_source: Mutex::new(None),
            drift_period,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            aws_calls,
            aws_call_duration,
            ses_token_wait,
            objects,
            object_source: Mutex::new(None),
            leader,
            bounce_rate,
            complaint_rate,
            level,
            account_bounce_rate,
            account_complaint_rate,
            quota_used,
            tenant_sending,
            findings_open,
        }
    }

    /// Records one finished reconcile. `result` names how it ended (`ok`,
    /// `waiting`, `stalled`, or how it failed: `aws_error`, `kube_error`,
    /// ...); only failures count in `ses_reputation_reconcile_errors`.
    pub fn reconciled(&self, kind: &str, took: Duration, result: &'static str, failed: bool) {
        self.reconciles
            .get_or_create(&ReconcileLabels {
                kind: kind.to_string(),
                result,
            })
            .inc();
        let kind = KindLabels { kind: kind.to_string() };
        if failed {
            self.reconcile_errors.get_or_create(&kind).inc();
        }
        self.reconcile_duration.get_or_create(&kind).observe(took.as_secs_f64());
    }

    /// Records one AWS call; `operation` is `service:Operation` (as in
    /// the AWS adapters' call counter), `outcome` `ok` or the bounded class
    /// of its error (`throttled`, `server`, `transport`, `client`, `cancelled`).
    pub fn aws_call(&self, operation: &str, outcome: &'static str, took: Duration) {
        let (service, operation) = operation.split_once(':').unwrap_or(("unknown", operation));
        self.aws_calls
            .get_or_create(&CallLabels {
                service: service.to_string(),
                operation: operation.to_string(),
                outcome,
            })
            .inc();
        self.aws_call_duration
            .get_or_create(&OperationLabels {
                service: service.to_string(),
                operation: operation.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// Records how long an SES call waited for its account's token.
    pub fn ses_token_waited(&self, waited: Duration) {
        // One histogram for every class keeps the series count fixed; the
        // queue gauges show which class waits.
        self.ses_token_wait.observe(waited.as_secs_f64());
    }

    /// Whether this replica runs the controllers.
    /// One failed list or watch request of `kind`.
    pub fn watch_error(&self, kind: &str) {
        self.watch_errors
            .get_or_create(&KindLabels { kind: kind.to_string() })
            .inc();
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Installs (or with `None` removes) what counts objects per condition;
    /// removing also drops the series, so a standby exports none.
    pub fn set_object_source(&self, source: Option<ObjectSource>) {
        let empty = source.is_none();
        *self.object_source.lock() = source;
        if empty {
            self.objects.clear();
        }
    }

    /// Reputation of one configuration set; `None` removes that rate's
    /// series (no data is Unknown, never 0).
    pub fn set_set_reputation(
        &self,
        namespace: &str,
        set: &str,
        bounce: Option<f64>,
        complaint: Option<f64>,
        level: i64,
    ) {
        let labels = SetLabels {
            namespace: namespace.to_string(),
            configuration_set: set.to_string(),
        };
        set_or_remove(&self.bounce_rate, &labels, bounce);
        set_or_remove(&self.complaint_rate, &labels, complaint);
        self.level.get_or_create(&labels).set(level);
    }

    /// Drops every series of a configuration set (deleted, or no longer ours).
    pub fn remove_set(&self, namespace: &str, set: &str) {
        let labels = SetLabels {
            namespace: namespace.to_string(),
            configuration_set: set.to_string(),
        };
        self.bounce_rate.remove(&labels);
        self.complaint_rate.remove(&labels);
        self.level.remove(&labels);
        self.live_bounce_rate.remove(&labels);
        self.live_complaint_rate.remove(&labels);
        self.live_sends.remove(&labels);
        self.paused.remove(&labels);
    }

    /// Whether a policy keeps the set paused.
    pub fn set_set_paused(&self, namespace: &str, set: &str, paused: bool) {
        let labels = SetLabels {
            namespace: namespace.to_string(),
            configuration_set: set.to_string(),
        };
        self.paused.get_or_create(&labels).set(i64::from(paused));
    }

    /// Live counts of one set; a rate without sends has no series.
    pub fn set_set_live(&self, namespace: &str, set: &str, bounce: Option<f64>, complaint: Option<f64>, sends: u32) {
        let labels = SetLabels {
            namespace: namespace.to_string(),
            configuration_set: set.to_string(),
        };
        set_or_remove(&self.live_bounce_rate, &labels, bounce);
        set_or_remove(&self.live_complaint_rate, &labels, complaint);
        self.live_sends.get_or_create(&labels).set(i64::from(sends));
    }

    /// Stream messages by outcome (`counted`, `malformed`, `foreign`).
    pub fn stream_events(&self, outcome: &'static str, n: u64) {
        if n > 0 {
            self.stream_events.get_or_create(&OutcomeLabels { outcome }).inc_by(n);
        }
    }

    /// One live-window checkpoint read or write (`written`, `failed`,
    /// `restored`, `unusable`).
    pub fn live_checkpoint(&self, outcome: &'static str) {
        self.live_checkpoints.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// The send time of the newest event counted (unix seconds).
    pub fn stream_newest(&self, unix_seconds: f64) {
        let mut newest = self.stream_newest.lock();
        if newest.is_none_or(|n| n < unix_seconds) {
            *newest = Some(unix_seconds);
        }
    }

    /// Account-level rates of one SesAccount; `None` removes that series.
    pub fn set_account_reputation(&self, account: &str, bounce: Option<f64>, complaint: Option<f64>) {
        let labels = AccountLabels {
            account: account.to_string(),
        };
        set_or_remove(&self.account_bounce_rate, &labels, bounce);
        set_or_remove(&self.account_complaint_rate, &labels, complaint);
    }

    /// The share of an account's sending quota used (`None`: no quota, or
    /// the account is gone).
    pub fn set_quota_used(&self, account: &str, used: Option<f64>) {
        let labels = AccountLabels {
            account: account.to_string(),
        };
        set_or_remove(&self.quota_used, &labels, used);
    }

    /// A namespace's tenant: `Some(true)` sending, `Some(false)` disabled,
    /// `None` gone or unknown.
    pub fn set_tenant_sending(&self, account: &str, namespace: &str, tenant: &str, sending: Option<bool>) {
        let labels = TenantLabels {
            account: account.to_string(),
            namespace: namespace.to_string(),
            tenant: tenant.to_string(),
        };
        set_or_remove(
            &self.tenant_sending,
            &labels,
            sending.map(|s| if s { 1.0 } else { 0.0 }),
        );
    }

    /// The number of open findings of one type and impact (`None` or 0:
    /// the series goes).
    pub fn set_findings_open(&self, account: &str, type_: &str, impact: &str, count: Option<i64>) {
        let labels = FindingLabels {
            account: account.to_string(),
            r#type: type_.to_string(),
            impact: impact.to_string(),
        };
        set_or_remove(&self.findings_open, &labels, count.filter(|c| *c > 0).map(|c| c as f64));
    }

    /// Installs (or removes) what reports the SES schedulers' pacing.
    pub fn set_scheduler_source(&self, source: Option<SchedulerSource>) {
        let empty = source.is_none();
        *self.scheduler_source.lock() = source;
        if empty {
            self.ses_rate.clear();
            self.ses_waiting.clear();
        }
    }

    /// The effective drift period of an SesAccount; `None` removes it.
    pub fn set_drift_period(&self, account: &str, period: Option<Duration>) {
        let labels = AccountLabels {
            account: account.to_string(),
        };
        set_or_remove(&self.drift_period, &labels, period.map(|p| p.as_secs_f64()));
    }

    /// Every metric as OpenMetrics text (ends with `# EOF`).
    pub fn encode(&self) -> String {
        self.refresh_objects();
        self.refresh_schedulers();
        if let Some(newest) = *self.stream_newest.lock() {
            let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
            self.stream_newest_age.set((now - newest).max(0.0));
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            // Writing to a String only fails if a metric's encoder does;
            // serve what was written rather than nothing.
            tracing::warn!(error = %e, "could not encode metrics");
        }
        out
    }

    fn refresh_schedulers(&self) {
        let source = self.scheduler_source.lock().clone();
        let Some(source) = source else { return };
        for (aws_account, region, snapshot) in source() {
            let labels = SchedulerLabels {
                aws_account: aws_account.clone(),
                region: region.clone(),
            };
            self.ses_rate.get_or_create(&labels).set(snapshot.rate);
            for (class, waiting) in ["pause", "spec", "drift"].into_iter().zip(snapshot.waiting) {
                self.ses_waiting
                    .get_or_create(&QueueLabels {
                        aws_account: aws_account.clone(),
                        region: region.clone(),
                        class,
                    })
                    .set(waiting as i64);
            }
        }
    }

    fn refresh_objects(&self) {
        let source = self.object_source.lock().clone();
        let Some(source) = source else { return };
        for (kind, counts) in source() {
            for (condition, status, value) in [
                ("Ready", "True", counts.ready_true),
                ("Ready", "False", counts.ready_false),
                ("Stalled", "True", counts.stalled_true),
                ("Stalled", "False", counts.stalled_false),
            ] {
                self.objects
                    .get_or_create(&ObjectLabels {
                        kind: kind.to_string(),
                        condition,
                        status,
                    })
                    .set(value);
            }
        }
    }
}

fn set_or_remove<L>(family: &RateFamily<L>, labels: &L, value: Option<f64>)
where
    L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug + Send + Sync + 'static,
{
    match value {
        Some(v) => {
            family.get_or_create(labels).set(v);
        }
        None => {
            family.remove(labels);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(type_: &str, status: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: "R".into(),
            message: String::new(),
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
            observed_generation: None,
        }
    }

    #[test]
    fn encodes_calls_reconciles_and_token_waits() {
        let m = Metrics::new();
        m.aws_call("sesv2:CreateConfigurationSet", "ok", Duration::from_millis(20));
        m.aws_call("sesv2:CreateConfigurationSet", "throttled", Duration::from_millis(5));
        m.aws_call("sns:CreateTopic", "client", Duration::from_millis(5));
        m.reconciled("ConfigurationSet", Duration::from_millis(300), "ok", false);
        m.reconciled("ConfigurationSet", Duration::from_millis(300), "aws_error", true);
        m.reconciled("ConfigurationSet", Duration::from_millis(300), "stalled", false);
        m.ses_token_waited(Duration::from_millis(700));
        let text = m.encode();
        for line in [
            r#"ses_reputation_aws_calls_total{service="sesv2",operation="CreateConfigurationSet",outcome="ok"} 1"#,
            r#"ses_reputation_aws_calls_total{service="sesv2",operation="CreateConfigurationSet",outcome="throttled"} 1"#,
            r#"ses_reputation_aws_calls_total{service="sns",operation="CreateTopic",outcome="client"} 1"#,
            r#"ses_reputation_aws_call_duration_seconds_count{service="sesv2",operation="CreateConfigurationSet"} 2"#,
            r#"ses_reputation_reconciles_total{kind="ConfigurationSet",result="ok"} 1"#,
            r#"ses_reputation_reconciles_total{kind="ConfigurationSet",result="aws_error"} 1"#,
            r#"ses_reputation_reconciles_total{kind="ConfigurationSet",result="stalled"} 1"#,
            r#"ses_reputation_reconcile_errors_total{kind="ConfigurationSet"} 1"#,
            r#"ses_reputation_reconcile_duration_seconds_count{kind="ConfigurationSet"} 3"#,
            "ses_reputation_ses_token_wait_seconds_count 1",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn none_removes_a_rate_and_remove_set_drops_every_series() {
        let m = Metrics::new();
        m.set_set_reputation("team-a", "marketing", Some(0.02), Some(0.0005), 1);
        let text = m.encode();
        assert!(text.contains(r#"ses_reputation_bounce_rate{namespace="team-a",configuration_set="marketing"} 0.02"#));
        assert!(text.contains(r#"ses_reputation_level{namespace="team-a",configuration_set="marketing"} 1"#));

        m.set_set_reputation("team-a", "marketing", None, Some(0.0005), -1);
        let text = m.encode();
        assert!(!text.contains("ses_reputation_bounce_rate{"), "{text}");
        assert!(text.contains(r#"ses_reputation_level{namespace="team-a",configuration_set="marketing"} -1"#));

        m.remove_set("team-a", "marketing");
        let text = m.encode();
        assert!(!text.contains(r#"configuration_set="marketing""#), "{text}");

        m.set_account_reputation("prod", Some(0.01), None);
        let text = m.encode();
        assert!(text.contains(r#"ses_reputation_account_bounce_rate{account="prod"} 0.01"#));
        assert!(!text.contains("ses_reputation_account_complaint_rate{"), "{text}");
    }

    #[test]
    fn tenants_findings_and_quota_are_exported_and_go_when_gone() {
        let m = Metrics::new();
        m.set_tenant_sending("prod", "mail", "sro-mail-1", Some(false));
        m.set_findings_open("prod", "DMARC", "HIGH", Some(2));
        m.set_quota_used("prod", Some(0.85));
        let text = m.encode();
        assert!(
            text.contains(r#"ses_reputation_tenant_sending{account="prod",namespace="mail",tenant="sro-mail-1"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"ses_reputation_findings_open{account="prod",type="DMARC",impact="HIGH"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"ses_reputation_account_quota_used{account="prod"} 0.85"#),
            "{text}"
        );
        m.set_tenant_sending("prod", "mail", "sro-mail-1", None);
        m.set_findings_open("prod", "DMARC", "HIGH", Some(0));
        m.set_quota_used("prod", None);
        let text = m.encode();
        assert!(!text.contains("ses_reputation_tenant_sending{"), "{text}");
        assert!(!text.contains("ses_reputation_findings_open{"), "{text}");
        assert!(!text.contains("ses_reputation_account_quota_used{"), "{text}");
    }

    #[test]
    fn objects_are_counted_from_the_source_on_scrape() {
        let m = Metrics::new();
        let mut counts = ConditionCounts::default();
        counts.add(&[condition("Ready", "True"), condition("Stalled", "False")]);
        counts.add(&[condition("Ready", "False"), condition("Stalled", "True")]);
        counts.add(&[condition("Reconciling", "True")]);
        m.set_object_source(Some(Arc::new(move || vec![("ConfigurationSet", counts)])));
        let text = m.encode();
        for line in [
            r#"ses_reputation_objects{kind="ConfigurationSet",condition="Ready",status="True"} 1"#,
            r#"ses_reputation_objects{kind="ConfigurationSet",condition="Ready",status="False"} 1"#,
            r#"ses_reputation_objects{kind="ConfigurationSet",condition="Stalled",status="True"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        m.set_object_source(None);
        assert!(!m.encode().contains("ses_reputation_objects{"));
    }
}
