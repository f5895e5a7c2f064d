//! The per-object gate: what the last pass of an object left behind, and
//! whether the next pass goes to AWS now, at which priority, or waits (for
//! the drift period or a back-off). Pure: every call gets `now` and its
//! jitter from the caller, so the transitions unit-test without a clock.

use std::collections::HashMap;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use kube::runtime::controller::Action;
use tokio::time::Instant;

use crate::aws::scheduler::Priority;

/// Longest back-off after repeated transient failures (before jitter).
const MAX_BACKOFF: Duration = Duration::from_secs(256);

/// The back-off after transient failures, without jitter: 1 s doubling to
/// [`MAX_BACKOFF`], for as many failures as there are.
const BACKOFF: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_secs(1))
    .with_factor(2.0)
    .with_max_delay(MAX_BACKOFF)
    .without_max_times();

/// Failures after which the back-off stays at [`MAX_BACKOFF`] (1 s · 2⁸).
const FAILURES_TO_MAX: u32 = 9;

/// What a reconcile decided about the gate.
#[derive(Debug)]
pub enum Pass {
    /// Nothing to do now: return this action.
    Skip(Action),
    /// Go to AWS with this priority.
    Run(Priority),
}

/// Per-object memory of the last reconcile: lets a reconcile triggered by
/// our own status patch, a rate read or during back-off return without AWS
/// calls.
#[derive(Clone, Debug)]
struct Gate {
    fingerprint: u64,
    synced_at: Option<Instant>,
    retry_at: Option<Instant>,
    /// Priority of the retry: a drift check that failed is retried as one.
    retry_priority: Priority,
    failures: u32,
}

/// The gates of every object, by object key.
#[derive(Debug, Default)]
pub struct GateBook {
    gates: HashMap<String, Gate>,
}

impl GateBook {
    /// Whether the object's next pass goes to AWS: at once on a new
    /// fingerprint (or first sight), after a back-off or a stall's retry
    /// time, or as a drift check once `period` has passed since the sync.
    pub fn pass(&self, key: &str, fingerprint: u64, period: Duration, now: Instant) -> Pass {
        let Some(gate) = self.gates.get(key) else {
            return Pass::Run(Priority::Spec);
        };
        if gate.fingerprint != fingerprint {
            return Pass::Run(Priority::Spec);
        }
        if let Some(retry_at) = gate.retry_at {
            return if retry_at > now {
                Pass::Skip(Action::requeue(retry_at - now))
            } else {
                Pass::Run(gate.retry_priority)
            };
        }
        // Converged, or Stalled: what AWS refused can also be fixed outside
        // the spec (a limit freed), so a Stalled object is looked at again
        // once per drift period too.
        match gate.synced_at {
            Some(at) if at + period > now => Pass::Skip(Action::requeue(at + period - now)),
            Some(_) => Pass::Run(Priority::Drift),
            None => Pass::Run(Priority::Spec),
        }
    }

    /// A successful sync; returns when to look again. The jitter moves the
    /// sync time forward, so [`Self::pass`] agrees with the requeue.
    pub fn synced(
        &mut self,
        key: &str,
        fingerprint: u64,
        period: Duration,
        jitter: Duration,
        now: Instant,
    ) -> Duration {
        self.insert(key, fingerprint, Some(now + jitter), None, Priority::Spec, 0);
        period + jitter
    }

    /// Synced, but waiting on AWS (verification pending): looked at again
    /// after `delay` as a drift check.
    pub fn recheck(&mut self, key: &str, fingerprint: u64, delay: Duration, now: Instant) -> Duration {
        self.insert(key, fingerprint, None, Some(now + delay), Priority::Drift, 0);
        delay
    }

    /// A terminal failure: retried on a new fingerprint, else as a drift
    /// check after `period`.
    pub fn stalled(&mut self, key: &str, fingerprint: u64, period: Duration, now: Instant) -> Duration {
        self.insert(key, fingerprint, None, Some(now + period), Priority::Drift, 0);
        period
    }

    /// A transient failure: 1 s doubling to 256 s, plus up to a quarter of
    /// it from `spread` (a random number), retried at `priority`. The count
    /// restarts on a new fingerprint; the last sync time is kept, so a
    /// failed drift check does not make the object look never synced.
    ///
    /// The delay is [`BACKOFF`]'s n-th, from a fresh backon iterator: kube's
    /// controller owns the retry loop, so what survives between passes is
    /// the failure count in the book, not an iterator held by a retrying
    /// caller. backon's own jitter stays off: it draws from its own random
    /// source and adds up to the whole delay, while the gate is pure (the
    /// caller's `spread` decides) and adds at most a quarter.
    pub fn failed(&mut self, key: &str, fingerprint: u64, priority: Priority, spread: u64, now: Instant) -> Duration {
        let previous = self.gates.get(key).filter(|g| g.fingerprint == fingerprint);
        let failures = previous.map_or(0, |g| g.failures).saturating_add(1);
        let synced_at = previous.and_then(|g| g.synced_at);
        // Past the cap every delay is the same, so the walk stops there.
        let nth = failures.min(FAILURES_TO_MAX) - 1;
        let delay = BACKOFF.build().nth(nth as usize).unwrap_or(MAX_BACKOFF);
        let delay = delay + Duration::from_millis(spread % (delay.as_millis() as u64 / 4 + 1));
        self.insert(key, fingerprint, synced_at, Some(now + delay), priority, failures);
        delay
    }

    /// An error that reached the controller's error policy: the back-off
    /// already recorded, or a new failure under the stored fingerprint.
    pub fn after_error(&mut self, key: &str, spread: u64, now: Instant) -> Duration {
        let (fingerprint, retry_at, priority) = self.gates.get(key).map_or((0, None, Priority::Spec), |g| {
            (g.fingerprint, g.retry_at, g.retry_priority)
        });
        match retry_at {
            Some(at) if at > now => at - now,
            _ => self.failed(key, fingerprint, priority, spread, now),
        }
    }

    /// Drops an object's gate: its next pass syncs at once.
    pub fn forget(&mut self, key: &str) {
        self.gates.remove(key);
    }

    fn insert(
        &mut self,
        key: &str,
        fingerprint: u64,
        synced_at: Option<Instant>,
        retry_at: Option<Instant>,
        retry_priority: Priority,
        failures: u32,
    ) {
        let gate = Gate {
            fingerprint,
            synced_at,
            retry_at,
            retry_priority,
            failures,
        };
        self.gates.insert(key.to_string(), gate);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_secs(600);
    const K: &str = "ConfigurationSet/ns/a";

    fn run(p: Pass) -> Option<Priority> {
        match p {
            Pass::Run(priority) => Some(priority),
            Pass::Skip(_) => None,
        }
    }

    fn skip(p: Pass) -> Option<Action> {
        match p {
            Pass::Skip(action) => Some(action),
            Pass::Run(_) => None,
        }
    }

    #[test]
    fn first_sight_goes_to_aws_as_a_spec_change() {
        let book = GateBook::default();
        assert_eq!(run(book.pass(K, 1, PERIOD, Instant::now())), Some(Priority::Spec));
    }

    #[test]
    fn synced_object_waits_for_the_drift_period_then_runs_as_drift() {
        let mut book = GateBook::default();
        let t0 = Instant::now();
        assert_eq!(book.synced(K, 1, PERIOD, Duration::ZERO, t0), PERIOD);
        let waiting = skip(book.pass(K, 1, PERIOD, t0 + Duration::from_secs(10)));
        assert_eq!(waiting, Some(Action::requeue(PERIOD - Duration::from_secs(10))));
        assert_eq!(run(book.pass(K, 1, PERIOD, t0 + PERIOD)), Some(Priority::Drift));
    }

    #[test]
    fn jitter_moves_the_drift_check_later_and_pass_agrees() {
        let mut book = GateBook::default();
        let t0 = Instant::now();
        let jitter = Duration::from_secs(30);
        assert_eq!(book.synced(K, 1, PERIOD, jitter, t0), PERIOD + jitter);
        assert!(skip(book.pass(K, 1, PERIOD, t0 + PERIOD)).is_some());
        assert_eq!(
            run(book.pass(K, 1, PERIOD, t0 + PERIOD + jitter)),
            Some(Priority::Drift)
        );
    }

    #[test]
    fn a_spec_change_runs_at_once_even_inside_the_drift_period() {
        let mut book = GateBook::default();
        let t0 = Instant::now();
        book.synced(K, 1, PERIOD, Duration::ZERO, t0);
        assert_eq!(run(book.pass(K, 2, PERIOD, t0)), Some(Priority::Spec));
    }

    #[test]
    fn a_spec_change_cuts_a_back_off_short() {
        let mut book = GateBook::default();
        let t0 = Instant::now();
        book.failed(K, 1, Priority::Spec, 0, t0);
        assert!(skip(book.pass(K, 1, PERIOD, t0)).is_some());
        assert_eq!(run(book.pass(K, 2, PERIOD, t0)), Some(Priority::Spec));
    }

    #[test]
    fn back_off_doubles_from_one_second_and_stops_at_256_seconds() {
        let mut book = GateBook::default();
        let t0 = Instant::now();
        let delays: Vec<u64> = (0..12)
            .map(|_| book.failed(K, 1, Priority::Spec, 0, t0).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 256, 256, 256]);
    }

    #[test]
    fn back_off_jitter_adds_at_most_a_quarter() {
        let mut book = GateBook::default();
        let t0 = Instant::now();
        for _ in 0..4 {
            book.failed(K, 1, Priority::Spec, 0, t0);
        }
        // The fifth failure: 16 s base, jitter below 4 s.
        let delay = book.failed(K, 1, Priority::Spec, u64::MAX, t0);
        assert!(
            delay >= Duration::from_secs(16) && delay <= Duration::from_secs(20),
            "{delay:?}"
        );
    }

    #[test]
    fn back_off_restarts_on_a_new_fingerprint() {
        let mut book = GateBook::default();
        let t0 = Instant::now();
        for _ in 0..5 {
            book.failed(K, 1, Priority::Spec, 0, t0);
        }
        assert_eq!(book.failed(K, 2, Priority::Spec, 0, t0), Duration::from_secs(1));
    }

    #[test]
    fn a_sync_resets_the_back_off() {
        let mut book = GateBook::default();
        let t0 = Instant::now();
        for _ in 0..5 {
            book.failed(K, 1, Priority::Spec, 0, t0);
        }
        book.synced(K, 1, PERIOD, Duration::ZERO, t0);
        assert_eq!(book.failed(K, 1, Priority::Spec, 0, t0), Duration::from_secs(1));
    }

    #[test]
    fn a_failed_drift_check_is_retried_as_a_drift_check() {
        let mut book = GateBook::default();
        let t0 = Instant::now();
        let delay = book.failed(K, 1, Priority::Drift, 0, t0);
        assert_eq!(run(book.pass(K, 1, PERIOD, t0 + delay)), Some(Priority::Drift));
    }

    #[test]
    fn a_failed_spec_change_is_retried_as_a_spec_change() {
        let mut book = GateBook::default();
        let t0 = Instant::now();
        let delay = book.failed(K, 1, Priority::Spec, 0, t0);
        assert!(skip(book.pass(K, 1, PERIOD, t0)).is_some());
        assert_eq!(run(book.pass(K, 1, PERIOD, t0 + delay)), Some(Priority::Spec));
    }

    #[test]
    fn a_stalled_object_is_looked_at_again_once_per_drift_period() {
        let mut book = GateBook::default();
        let t0 = Instant::now();
        assert_eq!(book.stalled(K, 1, PERIOD, t0), PERIOD);
        assert!(skip(book.pass(K, 1, PERIOD, t0 + Duration::from_secs(599))).is_some());
        assert_eq!(run(book.pass(K, 1, PERIOD, t0 + PERIOD)), Some(Priority::Drift));
    }

    #[test]
    fn a_stalled_object_resumes_at_once_when_its_spec_changes() {
        let mut book = GateBook::default();
        let t0 = Instant::now();
        book.stalled(K, 1, PERIOD, t0);
        assert_eq!(run(book.pass(K, 2, PERIOD, t0)), Some(Priority::Spec));
    }

    #[test]
    fn recheck_looks_again_after_the_delay_as_a_drift_check() {
        let mut book = GateBook::default();
        let t0 = Instant::now();
        let delay = Duration::from_secs(30);
        assert_eq!(book.recheck(K, 1, delay, t0), delay);
        assert!(skip(book.pass(K, 1, PERIOD, t0 + Duration::from_secs(29))).is_some());
        assert_eq!(run(book.pass(K, 1, PERIOD, t0 + delay)), Some(Priority::Drift));
    }

    #[test]
    fn forget_makes_the_next_pass_a_spec_change() {
        let mut book = GateBook::default();
        let t0 = Instant::now();
        book.synced(K, 1, PERIOD, Duration::ZERO, t0);
        book.forget(K);
        assert_eq!(run(book.pass(K, 1, PERIOD, t0)), Some(Priority::Spec));
    }

    #[test]
    fn a_shorter_drift_period_applies_to_objects_already_synced() {
        let mut book = GateBook::default();
        let t0 = Instant::now();
        book.synced(K, 1, PERIOD, Duration::ZERO, t0);
        let shorter = Duration::from_secs(60);
        assert_eq!(run(book.pass(K, 1, shorter, t0 + shorter)), Some(Priority::Drift));
    }

    #[test]
    fn an_error_policy_retry_keeps_a_pending_back_off() {
        let mut book = GateBook::default();
        let t0 = Instant::now();
        book.failed(K, 7, Priority::Drift, 0, t0);
        for _ in 0..3 {
            book.failed(K, 7, Priority::Drift, 0, t0);
        }
        // 8 s recorded; the error policy at t0 + 3 s keeps the remaining 5 s.
        assert_eq!(
            book.after_error(K, 0, t0 + Duration::from_secs(3)),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn an_error_policy_retry_without_a_back_off_starts_one_under_the_stored_fingerprint() {
        let mut book = GateBook::default();
        let t0 = Instant::now();
        book.synced(K, 7, PERIOD, Duration::ZERO, t0);
        assert_eq!(book.after_error(K, 0, t0), Duration::from_secs(1));
        // The fingerprint was kept: the retry is not mistaken for a spec change.
        assert!(skip(book.pass(K, 7, PERIOD, t0)).is_some());
        // After the back-off it runs at the priority the sync left (Spec).
        assert_eq!(
            run(book.pass(K, 7, PERIOD, t0 + Duration::from_secs(1))),
            Some(Priority::Spec)
        );
    }

    #[test]
    fn objects_do_not_share_gates() {
        let mut book = GateBook::default();
        let t0 = Instant::now();
        book.failed(K, 1, Priority::Spec, 0, t0);
        assert_eq!(
            run(book.pass("ConfigurationSet/ns/b", 1, PERIOD, t0)),
            Some(Priority::Spec)
        );
    }
}
