//! The SES control-plane scheduler: one per AWS account + region.
//!
//! SES allows one control-plane request per second per account and region,
//! and that budget is shared with every other tool (and cluster) using the
//! account. Every SES call the operator makes takes a slot here first:
//!
//! - classes in order: pause/resume, then spec changes and first creation,
//!   then drift checks; FIFO within a class, so no object starves;
//! - drift checks use at most a share of the rate (`drift_share`), leaving
//!   the rest for spec changes and for other tools;
//! - the rate adapts: a throttled answer cuts it by a fifth, each success
//!   adds a fiftieth of the target back, and a quarter more once nothing
//!   was throttled for 10 s, up to the target (a little under the
//!   configured ceiling so that network jitter does not turn into 429s);
//! - on shutdown every waiting caller is released with `Closed`.
//!
//! Hand-written because no crate combines priority classes, FIFO and an
//! adaptive (AIMD) rate: `governor` and `leaky-bucket` have a fixed rate
//! and no priorities.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

/// What a call is for; lower classes wait while a higher one is queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Pausing or resuming sending: protects the account, goes first.
    Pause = 0,
    /// A spec change, first creation or deletion.
    Spec = 1,
    /// Periodic drift check of a converged object.
    Drift = 2,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Pause => "pause",
            Priority::Spec => "spec",
            Priority::Drift => "drift",
        }
    }
}

/// Paced at this fraction of the configured ceiling: calls spaced exactly
/// at the limit arrive at SES with jitter and some would be throttled.
const PACE: f64 = 0.95;
/// The rate never adapts below this fraction of the target.
const FLOOR: f64 = 1.0 / 64.0;
/// A throttled answer multiplies the rate by this. Gentler than halving:
/// a budget shared with another tool throttles every few calls, and each
/// halving would waste more of it than the 429 did.
const DECREASE: f64 = 0.8;
/// Each success raises the rate by this fraction of the target...
const RECOVERY_STEP: f64 = 1.0 / 50.0;
/// ...and, once nothing was throttled for this long (the other tool
/// stopped), by a quarter of the rate too, so the operator is back at its
/// ceiling within seconds instead of creeping up.
const QUIET: Duration = Duration::from_secs(10);

/// The scheduler was closed (operator shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("shutting down: SES call cancelled")]
pub struct Closed;

#[derive(Debug)]
pub struct Scheduler {
    target: f64,
    drift_share: f64,
    state: Mutex<State>,
    changed: Notify,
    closed: AtomicBool,
    next_ticket: AtomicU64,
}

#[derive(Debug)]
struct State {
    /// Calls per second now (adapted).
    rate: f64,
    next_slot: Instant,
    next_drift_slot: Instant,
    last_throttled: Option<Instant>,
    queues: [VecDeque<u64>; 3],
}

/// A point-in-time view for status and metrics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Snapshot {
    /// Calls per second the scheduler paces at now.
    pub rate: f64,
    /// The most it paces at (configured ceiling x pace).
    pub target: f64,
    /// Callers waiting, by class (pause, spec, drift).
    pub waiting: [usize; 3],
}

impl Scheduler {
    /// `per_second`: the configured ceiling; `drift_share`: the fraction of
    /// the rate drift checks may use (0-1).
    pub fn new(per_second: f64, drift_share: f64) -> Self {
        let target = per_second.max(0.001) * PACE;
        let now = Instant::now();
        Self {
            target,
            drift_share: drift_share.clamp(0.01, 1.0),
            state: Mutex::new(State {
                rate: target,
                next_slot: now,
                next_drift_slot: now,
                last_throttled: None,
                queues: Default::default(),
            }),
            changed: Notify::new(),
            closed: AtomicBool::new(false),
            next_ticket: AtomicU64::new(0),
        }
    }

    /// Calls per second drift checks get at the target rate.
    pub fn drift_rate(&self) -> f64 {
        self.target * self.drift_share
    }

    /// Roughly how long a drift check asked for now would wait for its
    /// slot: drift checks that would wait long are better requeued than
    /// parked in the queue (where they hold a reconcile slot).
    pub fn drift_wait(&self) -> Duration {
        let state = self.lock();
        let now = Instant::now();
        let spacing = Duration::from_secs_f64(1.0 / (state.rate * self.drift_share));
        let due = state
            .next_slot
            .max(state.next_drift_slot)
            .saturating_duration_since(now);
        let queued = state.queues.iter().map(VecDeque::len).sum::<usize>() as u32;
        due + spacing * queued
    }

    pub fn snapshot(&self) -> Snapshot {
        let state = self.lock();
        Snapshot {
            rate: state.rate,
            target: self.target,
            waiting: [0, 1, 2].map(|i| state.queues[i].len()),
        }
    }

    /// Waits for a slot and returns how long it waited. `retry`: the caller
    /// was throttled and already waited its turn, so it goes to the front
    /// of its class.
    pub async fn acquire(&self, priority: Priority, retry: bool) -> Result<Duration, Closed> {
        let started = Instant::now();
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        {
            let mut state = self.lock();
            let queue = &mut state.queues[priority as usize];
            if retry {
                queue.push_front(ticket);
            } else {
                queue.push_back(ticket);
            }
        }
        let _queued = Queued {
            scheduler: self,
            priority,
            ticket,
        };
        self.changed.notify_waiters();
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.closed.load(Ordering::Acquire) {
                return Err(Closed);
            }
            let wake_at = {
                let mut state = self.lock();
                match state.head() {
                    Some((class, head)) if head == ticket => {
                        let now = Instant::now();
                        let ready_at = if class == Priority::Drift as usize {
                            state.next_slot.max(state.next_drift_slot)
                        } else {
                            state.next_slot
                        };
                        if ready_at <= now {
                            state.queues[class].pop_front();
                            let spacing = Duration::from_secs_f64(1.0 / state.rate);
                            state.next_slot = now + spacing;
                            if class == Priority::Drift as usize {
                                state.next_drift_slot = now + spacing.div_f64(self.drift_share);
                            }
                            drop(state);
                            self.changed.notify_waiters();
                            return Ok(started.elapsed());
                        }
                        Some(ready_at)
                    }
                    _ => None,
                }
            };
            match wake_at {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = &mut changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }

    /// SES answered TooManyRequests: another tool (or cluster) shares the
    /// budget. Slow down and keep the next slot one new interval away.
    pub fn throttled(&self) {
        let mut state = self.lock();
        let now = Instant::now();
        state.rate = (state.rate * DECREASE).max(self.target * FLOOR);
        state.last_throttled = Some(now);
        let earliest = now + Duration::from_secs_f64(1.0 / state.rate);
        state.next_slot = state.next_slot.max(earliest);
    }

    /// SES accepted a call: recover towards the target.
    pub fn succeeded(&self) {
        let mut state = self.lock();
        let quiet = state.last_throttled.is_none_or(|at| at.elapsed() >= QUIET);
        let grown = if quiet { state.rate * 1.25 } else { state.rate };
        state.rate = (grown + self.target * RECOVERY_STEP).min(self.target);
    }

    /// Releases every waiting caller with [`Closed`]; later calls fail at once.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.changed.notify_waiters();
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, State> {
        self.state.lock()
    }
}

impl State {
    /// The class and ticket served next: the front of the highest class.
    fn head(&self) -> Option<(usize, u64)> {
        self.queues
            .iter()
            .enumerate()
            .find_map(|(class, q)| q.front().map(|t| (class, *t)))
    }
}

/// Removes a ticket that leaves the queue without its slot (cancelled).
struct Queued<'a> {
    scheduler: &'a Scheduler,
    priority: Priority,
    ticket: u64,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        let mut state = self.scheduler.lock();
        let queue = &mut state.queues[self.priority as usize];
        if let Some(pos) = queue.iter().position(|t| *t == self.ticket) {
            queue.remove(pos);
            drop(state);
            self.scheduler.changed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    async fn order_of(scheduler: Arc<Scheduler>, callers: &[(&'static str, Priority)]) -> Vec<&'static str> {
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, priority) in callers.iter().copied() {
            let (scheduler, order) = (scheduler.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                scheduler.acquire(priority, false).await.expect("open");
                order.lock().push(name);
            }));
            tokio::task::yield_now().await;
        }
        for t in tasks {
            t.await.expect("task");
        }
        Arc::try_unwrap(order).expect("sole owner").into_inner()
    }

    #[tokio::test(start_paused = true)]
    async fn spaces_calls_a_little_under_the_ceiling() {
        let scheduler = Scheduler::new(2.0, 1.0);
        let start = Instant::now();
        for _ in 0..3 {
            scheduler.acquire(Priority::Spec, false).await.expect("open");
        }
        // Two intervals of 1 / (2 x 0.95) s.
        let expected = Duration::from_secs_f64(2.0 / (2.0 * PACE));
        assert!(
            start.elapsed().abs_diff(expected) < Duration::from_millis(2),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn classes_in_order_fifo_within_a_class() {
        let scheduler = Arc::new(Scheduler::new(1.0, 1.0));
        scheduler.acquire(Priority::Drift, false).await.expect("open"); // takes the first slot
        let order = order_of(
            scheduler,
            &[
                ("drift-1", Priority::Drift),
                ("spec-1", Priority::Spec),
                ("drift-2", Priority::Drift),
                ("spec-2", Priority::Spec),
                ("pause", Priority::Pause),
            ],
        )
        .await;
        assert_eq!(order, ["pause", "spec-1", "spec-2", "drift-1", "drift-2"]);
    }

    #[tokio::test(start_paused = true)]
    async fn drift_uses_at_most_its_share() {
        let scheduler = Arc::new(Scheduler::new(1.0, 0.5));
        let start = Instant::now();
        for _ in 0..5 {
            scheduler.acquire(Priority::Drift, false).await.expect("open");
        }
        // Four gaps at half of 0.95 calls/s.
        let expected = Duration::from_secs_f64(4.0 / (0.5 * PACE));
        assert!(
            start.elapsed().abs_diff(expected) < Duration::from_millis(5),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn drift_wait_grows_with_the_queue() {
        let scheduler = Arc::new(Scheduler::new(1.0, 0.5));
        assert_eq!(scheduler.drift_wait(), Duration::ZERO);
        scheduler.acquire(Priority::Drift, false).await.expect("open");
        let one = scheduler.drift_wait();
        assert!(one > Duration::from_secs(2), "{one:?}");
        let waiter = {
            let s = scheduler.clone();
            tokio::spawn(async move { s.acquire(Priority::Spec, false).await })
        };
        tokio::task::yield_now().await;
        assert!(scheduler.drift_wait() > one);
        waiter.await.expect("task").expect("open");
    }

    #[tokio::test(start_paused = true)]
    async fn a_spec_change_is_not_held_back_by_the_drift_share() {
        let scheduler = Arc::new(Scheduler::new(1.0, 0.25));
        scheduler.acquire(Priority::Drift, false).await.expect("open");
        let start = Instant::now();
        scheduler.acquire(Priority::Spec, false).await.expect("open");
        // One full-rate interval, not the drift class's four.
        assert!(start.elapsed() <= Duration::from_secs_f64(1.0 / PACE) + Duration::from_millis(1));
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_slows_down_and_successes_recover() {
        let scheduler = Scheduler::new(1.0, 1.0);
        scheduler.throttled();
        scheduler.throttled();
        let slow = scheduler.snapshot().rate;
        assert!((slow - PACE * DECREASE * DECREASE).abs() < 1e-9, "{slow}");
        // While throttling is recent, the rate creeps up.
        scheduler.succeeded();
        let crept = scheduler.snapshot().rate;
        assert!((crept - (slow + PACE * RECOVERY_STEP)).abs() < 1e-9, "{crept}");
        // Once it has been quiet, it comes back within a few calls.
        tokio::time::advance(QUIET).await;
        for _ in 0..5 {
            scheduler.succeeded();
        }
        assert_eq!(scheduler.snapshot().rate, PACE);
        for _ in 0..100 {
            scheduler.throttled();
        }
        assert!(scheduler.snapshot().rate >= PACE * FLOOR);
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_retry_goes_to_the_front_of_its_class() {
        let scheduler = Arc::new(Scheduler::new(1.0, 1.0));
        scheduler.acquire(Priority::Spec, false).await.expect("open");
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, retry) in [("new-1", false), ("new-2", false), ("retry", true)] {
            let (scheduler, order) = (scheduler.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                scheduler.acquire(Priority::Spec, retry).await.expect("open");
                order.lock().push(name);
            }));
            tokio::task::yield_now().await;
        }
        for t in tasks {
            t.await.expect("task");
        }
        assert_eq!(order.lock()[0], "retry");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_waiter_does_not_block_the_queue() {
        let scheduler = Arc::new(Scheduler::new(1.0, 1.0));
        scheduler.acquire(Priority::Spec, false).await.expect("open");
        let first = {
            let s = scheduler.clone();
            tokio::spawn(async move { s.acquire(Priority::Spec, false).await })
        };
        tokio::task::yield_now().await;
        first.abort();
        let start = Instant::now();
        scheduler.acquire(Priority::Spec, false).await.expect("open");
        assert!(start.elapsed() <= Duration::from_secs_f64(1.0 / PACE) + Duration::from_millis(1));
        assert_eq!(scheduler.snapshot().waiting, [0, 0, 0]);
    }

    #[tokio::test(start_paused = true)]
    async fn closing_releases_waiters() {
        let scheduler = Arc::new(Scheduler::new(0.01, 1.0));
        scheduler.acquire(Priority::Spec, false).await.expect("open");
        let waiter = {
            let s = scheduler.clone();
            tokio::spawn(async move { s.acquire(Priority::Drift, false).await })
        };
        tokio::task::yield_now().await;
        scheduler.close();
        assert_eq!(waiter.await.expect("task"), Err(Closed));
        assert_eq!(scheduler.acquire(Priority::Pause, false).await, Err(Closed));
    }
}
