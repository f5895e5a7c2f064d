//! The CloudWatch rate reader (leader only: it runs with the controllers).
//! Each interval it reads every account's rates in one CloudWatch batch,
//! caches the readings here for the reconcilers, backs off an account
//! whose reads fail, and asks the ConfigurationSet and SesAccount
//! controllers to re-evaluate only what a new reading can change.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use parking_lot::{Mutex, RwLock};
use tracing::{Instrument, info_span};

use super::{Shared, Trigger};
use crate::api::{ConfigurationSet, SesAccount};
use crate::domain::reputation::Reading;
use crate::index::account_key;

/// The waits between an account's failed reads.
type Delays = <ExponentialBuilder as BackoffBuilder>::Backoff;

/// An account whose reads fail: the waits still to come and when to try
/// again.
struct Failing {
    delays: Delays,
    next: tokio::time::Instant,
}

/// Waits after failed reads of one account: one interval, doubling up to
/// 16, as for SES throttling. No jitter: one reader loop reads all
/// accounts and wakes once per interval, so there is no herd to spread.
fn delays(interval: Duration) -> Delays {
    ExponentialBuilder::new()
        .with_min_delay(interval)
        .with_factor(2.0)
        .with_max_delay(interval.saturating_mul(16))
        .without_max_times()
        .build()
}

/// Rates read from CloudWatch, and the channel that asks the
/// ConfigurationSet controller to re-evaluate sets after a read.
#[derive(Default)]
pub struct ReputationState {
    sets: RwLock<HashMap<String, Reading>>,
    accounts: RwLock<HashMap<String, Reading>>,
    /// Accounts backing off after failed reads.
    backoff: Mutex<HashMap<String, Failing>>,
    set_trigger: Trigger<ConfigurationSet>,
    account_trigger: Trigger<SesAccount>,
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
            .is_none_or(|f| f.next <= tokio::time::Instant::now())
    }

    /// After a read: success clears the back-off; each failure in a row
    /// waits the next of [`delays`].
    fn record(&self, account: &str, ok: bool, interval: Duration) {
        let mut backoff = self.backoff.lock();
        if ok {
            backoff.remove(account);
            return;
        }
        let now = tokio::time::Instant::now();
        let failing = backoff.entry(account.to_string()).or_insert_with(|| Failing {
            delays: delays(interval),
            next: now,
        });
        // `delays` never runs out; its cap stands in if it ever did.
        let wait = failing.delays.next().unwrap_or(interval.saturating_mul(16));
        // The reader wakes every interval; the first retry is the next wake.
        failing.next = now + wait.saturating_sub(interval);
    }

    /// Asks the ConfigurationSet controller to re-evaluate one set (the
    /// live source, when a set's live verdict changes).
    pub fn trigger_set(&self, cs: &ConfigurationSet) {
        self.set_trigger.send(cs);
    }

    /// Asks the SesAccount controller to re-evaluate one account (its live
    /// counts moved).
    pub fn trigger_account(&self, account: &SesAccount) {
        self.account_trigger.send(account);
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
pub async fn run_rate_reader(ctx: Shared, mut shutdown: impl std::future::Future<Output = ()> + Unpin) {
    let interval = ctx.settings.interval;
    // The caches must be listed before the first read means anything.
    tokio::select! {
        _ = &mut shutdown => return,
        _ = ctx.index.synced() => {}
    }
    loop {
        ctx.drift.refresh();
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

async fn read_all(ctx: &Shared) {
    // Group the sets that exist in AWS by the SesAccount they live in.
    let mut by_account: BTreeMap<String, Vec<Arc<ConfigurationSet>>> = BTreeMap::new();
    for cs in ctx.index.sets.state() {
        if cs.status.as_ref().and_then(|s| s.aws_name.as_ref()).is_some() {
            let account = ctx.index.account_name(cs.spec.account_ref.as_deref()).to_string();
            by_account.entry(account).or_default().push(cs);
        }
    }
    for (account_name, members) in by_account {
        if !ctx.rates.due(&account_name) {
            continue;
        }
        let Some(account) = ctx.index.accounts.get(&ObjectRef::new(&account_name)) else {
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
        match session.reputation_rates(&names, ctx.settings.staleness).await {
            Ok(rates) => {
                let read_at = Some(Timestamp::now());
                let staleness = ctx.settings.staleness;
                // Only the sets whose evaluation can change are reconciled.
                let mut changed = Vec::new();
                {
                    let mut cache = ctx.rates.sets.write();
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
                    let mut accounts = ctx.rates.accounts.write();
                    let changed = reading_changed(accounts.get(&account_name), &rates.account, staleness);
                    accounts.insert(account_name.clone(), rates.account);
                    changed
                };
                for cs in &changed {
                    ctx.rates.set_trigger.send(cs);
                }
                // The account's status also shows its drift schedule.
                let drift_changed =
                    account.status.as_ref().and_then(|s| s.drift.clone()) != ctx.drift.status(&account_name);
                if account_changed || drift_changed {
                    ctx.rates.account_trigger.send(&account);
                }
                ctx.rates.record(&account_name, true, ctx.settings.interval);
            }
            // CloudWatch throttling or errors: keep the last reading (it goes
            // Unknown once stale) and back off this account.
            Err(e) => {
                tracing::warn!(error = %e, account = account_name, "reading reputation rates failed");
                ctx.rates.record(&account_name, false, ctx.settings.interval);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::reputation::Sample;

    #[test]
    fn failed_reads_wait_one_interval_doubling_to_sixteen() {
        let interval = Duration::from_secs(60);
        let waits: Vec<Duration> = delays(interval).take(7).collect();
        let expected: Vec<Duration> = [1, 2, 4, 8, 16, 16, 16].map(|n| interval * n).to_vec();
        assert_eq!(waits, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn an_account_backs_off_after_failures_and_recovers_on_success() {
        let state = ReputationState::default();
        let interval = Duration::from_secs(60);
        assert!(state.due("a"));
        // The first failure retries at the next wake (no extra wait)...
        state.record("a", false, interval);
        assert!(state.due("a"));
        // ...the second skips one wake: due again after two intervals.
        state.record("a", false, interval);
        assert!(!state.due("a"));
        assert!(state.due("b"), "other accounts read on");
        tokio::time::advance(interval).await;
        assert!(state.due("a"));
        state.record("a", true, interval);
        state.record("a", false, interval);
        assert!(state.due("a"), "a success starts the back-off over");
    }

    #[test]
    fn a_reading_changes_on_new_data_or_when_it_goes_stale() {
        let now = Timestamp::now();
        let sample = |value: f64, ago: i64| Sample {
            value,
            at: now - jiff::SignedDuration::from_secs(ago),
        };
        let reading = |b: Option<Sample>, read_ago: i64| Reading {
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
