//! The per-account+region token bucket for SES control-plane calls.
//!
//! SES allows one control-plane request per second per account and region.
//! Every SES call the operator makes waits here first; spec changes
//! (`Priority::Spec`) are served before periodic drift checks
//! (`Priority::Drift`), so a user's edit is not stuck behind a resync of
//! thousands of sets.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// Work caused by a spec change or a not-yet-ready object.
    Spec,
    /// Periodic drift checks of converged objects.
    Drift,
}

#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next_slot: Mutex<Instant>,
    spec_waiting: AtomicUsize,
}

impl RateLimiter {
    /// A bucket of depth one refilled `per_second` times a second.
    pub fn new(per_second: f64) -> Self {
        let interval = Duration::from_secs_f64(1.0 / per_second.max(0.001));
        Self {
            interval,
            next_slot: Mutex::new(Instant::now()),
            spec_waiting: AtomicUsize::new(0),
        }
    }

    /// Waits for a slot and returns how long it waited.
    pub async fn acquire(&self, priority: Priority) -> Duration {
        let started = Instant::now();
        let _guard = (priority == Priority::Spec).then(|| SpecWaiter::new(&self.spec_waiting));
        loop {
            let wait = {
                let mut next = self.next_slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let now = Instant::now();
                let yields = priority == Priority::Drift && self.spec_waiting.load(Ordering::Acquire) > 0;
                if *next <= now && !yields {
                    *next = now + self.interval;
                    return started.elapsed();
                }
                if *next > now { *next - now } else { self.interval }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

struct SpecWaiter<'a>(&'a AtomicUsize);

impl<'a> SpecWaiter<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Self(counter)
    }
}

impl Drop for SpecWaiter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn spaces_calls_by_the_interval() {
        let limiter = RateLimiter::new(2.0);
        let start = Instant::now();
        for _ in 0..3 {
            limiter.acquire(Priority::Spec).await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(1000));
    }

    #[tokio::test(start_paused = true)]
    async fn spec_changes_go_before_drift_checks() {
        let limiter = Arc::new(RateLimiter::new(1.0));
        limiter.acquire(Priority::Drift).await; // uses the first slot
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, priority) in [
            ("drift-1", Priority::Drift),
            ("drift-2", Priority::Drift),
            ("spec", Priority::Spec),
        ] {
            let (limiter, order) = (limiter.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                limiter.acquire(priority).await;
                order.lock().expect("lock").push(name);
            }));
            tokio::task::yield_now().await;
        }
        for t in tasks {
            t.await.expect("task");
        }
        assert_eq!(order.lock().expect("lock")[0], "spec");
    }
}
