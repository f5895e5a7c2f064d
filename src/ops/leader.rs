//! Leader election over a `coordination.k8s.io/v1` Lease: of several
//! replicas only the Lease holder runs the controllers; the others stand by
//! and take over when the holder stops renewing.
//!
//! A leader that loses the Lease (another replica took it, or renewing it
//! kept failing until it lapsed) ends the process instead of stopping and later restarting its
//! controllers in place. Exiting stops every in-flight reconcile at once,
//! which a graceful controller shutdown does not (it lets AWS calls of up
//! to ~40 s finish, while the new leader may already be reconciling), and
//! leaves no per-object gate or cache state behind to reason about on a
//! second term. Kubernetes restarts the container, which comes back as a
//! standby. controller-runtime and client-go based operators do the same.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube_lease_manager::{LeaseCreateMode, LeaseManager, LeaseManagerError, LeaseParams};

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::ops::metrics::Metrics;
use crate::ops::server::{Health, Role};

/// Leadership fence. While armed (by leader election), AWS calls are made
/// only before `valid_until`, which the leader moves forward each time it
/// reads its own Lease renewal; a leader frozen or cut off from the
/// API server stops calling AWS before a standby may take over, even if its
/// renewal hangs or its process resumes after the Lease expired. Once
/// [`Fence::close`]d (the Lease is lost or handed over) it stays closed.
#[derive(Debug, Default)]
pub struct Fence {
    state: Mutex<FenceState>,
}

#[derive(Debug, Default)]
struct FenceState {
    valid_until: Option<Instant>,
    closed_for_good: bool,
}

impl Fence {
    /// An armed fence that lets nothing through until it is extended.
    pub fn armed_shut() -> Self {
        let fence = Self::default();
        fence.state.lock().valid_until = Some(Instant::now());
        fence
    }

    /// Arms the fence (if it was not) and lets calls through until `until`.
    pub fn extend_to(&self, until: Instant) {
        let mut state = self.state.lock();
        if !state.closed_for_good && state.valid_until.is_none_or(|v| v < until) {
            state.valid_until = Some(until);
        }
    }

    /// Shuts the fence for the rest of the process: the tasks the
    /// controllers spawned keep running until the process exits, and may
    /// not call AWS once this replica has stopped leading.
    pub fn close(&self) {
        let mut state = self.state.lock();
        state.closed_for_good = true;
        state.valid_until = Some(Instant::now());
    }

    /// Whether AWS calls may be made now: unarmed (no leader election),
    /// or armed and not yet past `valid_until`.
    pub fn is_open(&self) -> bool {
        let state = self.state.lock();
        match state.valid_until {
            _ if state.closed_for_good => false,
            Some(until) => Instant::now() < until,
            None => true,
        }
    }
}

/// How the Lease is named and held.
#[derive(Clone, Debug)]
pub struct ElectionSettings {
    pub lease_name: String,
    pub lease_namespace: String,
    /// This replica's holder identity (the Pod name in a cluster).
    pub identity: String,
    /// A holder that has not renewed for this long loses the Lease.
    pub lease_duration: Duration,
}

/// Why leader election ended the run.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("lost the leader Lease {namespace}/{name}: {reason}")]
    Lost {
        namespace: String,
        name: String,
        reason: String,
    },
}

/// This replica's holder identity: `POD_NAME`, else hostname and PID (so
/// two processes on one machine differ).
pub fn default_identity() -> String {
    if let Some(pod) = std::env::var("POD_NAME").ok().filter(|s| !s.is_empty()) {
        return pod;
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{host}-{}", std::process::id())
}

/// Seconds before expiry at which the holder renews: a third of the
/// duration (5 s of 15 s), which leaves two renewal attempts' worth of
/// slack for a slow apiserver and covers clock skew between nodes.
fn grace_of(duration: u64) -> u64 {
    (duration / 3).clamp(1, duration.saturating_sub(1).max(1))
}

/// Waits for the Lease, then runs `lead` (the controllers, whose AWS calls
/// go through the fence it is given) while holding it, until `shutdown`
/// resolves (Ok, after the controllers drained and the Lease was released)
/// or the Lease is lost (Err: the caller must exit the process).
pub async fn run<S, L, F>(
    client: Client,
    election: ElectionSettings,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    lead: L,
    shutdown: S,
) -> Result<(), LeaderError>
where
    S: Future<Output = ()> + Clone + Send + Sync + 'static,
    L: FnOnce(Arc<Fence>) -> F,
    F: Future<Output = ()>,
{
    health.set_role(Role::Standby { lease_healthy: false });
    metrics.set_leader(false);
    let duration = election.lease_duration.as_secs().max(2);
    let grace = grace_of(duration);
    let params = LeaseParams::new(election.identity.clone(), duration, grace);
    // When the lease manager renews: the fence's reads are timed by it.
    let renew_period = Duration::from_secs(duration - grace);
    let lost = |reason: String| LeaderError::Lost {
        namespace: election.lease_namespace.clone(),
        name: election.lease_name.clone(),
        reason,
    };

    // Building the manager reads (or creates) the Lease; retry while the
    // apiserver is not reachable rather than crash-looping: 1 s doubling to
    // 30 s, for as long as it takes (backon's retry owns the loop; shutdown
    // also ends a read in flight). No jitter: each replica has one such
    // call at a time, too few to gang up on the apiserver, and backon's
    // jitter (up to the whole delay) would stretch the 30 s to up to 60 s.
    let build = || {
        LeaseManager::new(
            client.clone(),
            &election.lease_name,
            &election.lease_namespace,
            params.clone(),
            LeaseCreateMode::AutoCreate,
        )
    };
    let built = build.retry(LEASE_RETRY).sleep(tokio::time::sleep).notify(
        |e, _| tracing::warn!(error = %e, lease = %election.lease_name, "cannot use the leader Lease, retrying"),
    );
    let manager = tokio::select! {
        _ = shutdown.clone() => return Ok(()),
        built = built => match built {
            Ok(m) => m,
            // Not reached: LEASE_RETRY never gives up.
            Err(e) => return Err(lost(format!("cannot use it: {e}"))),
        },
    };
    tracing::info!(identity = %election.identity, lease = %election.lease_name, namespace = %election.lease_namespace, "standing by for the leader Lease");

    if !stand_by(&manager, &health, shutdown.clone()).await {
        return Ok(());
    }

    tracing::info!(identity = %election.identity, "acquired the leader Lease, starting the controllers");
    health.set_role(Role::Leader);
    metrics.set_leader(true);
    // The fence opens when this replica reads its own renewal on the
    // Lease, never from when the acquisition returned: that can come
    // seconds after the renewTime it wrote (a stalled API server), or
    // without any write at all (a restarted container whose name the Lease
    // still holds), and the standby counts from renewTime.
    let fence = Arc::new(Fence::armed_shut());
    let controllers = lead(fence.clone());
    tokio::pin!(controllers);
    let confirm = confirm_leadership(client, &election, renew_period, fence.clone());
    tokio::pin!(confirm);

    // Keep renewing while the context is built, while the controllers run
    // and while they drain on shutdown: a Lease that lapsed mid-drain would
    // let the standby start while this replica still has AWS calls in flight.
    let renewals = renew_while_valid(&manager, &fence);
    tokio::pin!(renewals);
    let outcome = tokio::select! {
        _ = &mut controllers => Ok(()),
        _ = &mut confirm => Ok(()),
        reason = &mut renewals => Err(reason),
    };
    fence.close();
    metrics.set_leader(false);
    match outcome {
        Ok(()) => {
            release(&manager).await;
            tracing::info!("controllers stopped, released the leader Lease");
            Ok(())
        }
        Err(reason) => {
            // If the apiserver still answers, handing the Lease over now
            // spares the standby waiting for it to expire.
            release(&manager).await;
            Err(lost(reason))
        }
    }
}

/// Standby until this replica holds the Lease (`true`) or shuts down
/// (`false`, the Lease released).
async fn stand_by<S>(manager: &LeaseManager, health: &Health, shutdown: S) -> bool
where
    S: Future<Output = ()> + Clone,
{
    // Standby: `changed()` returns when we become the holder, or on an API
    // error. It fails fast (its first step reads the Lease), so one that
    // has run for a few seconds without failing means the loop is healthy.
    loop {
        let changed = manager.changed();
        tokio::pin!(changed);
        let healthy_after = tokio::time::sleep(Duration::from_secs(3));
        tokio::pin!(healthy_after);
        let mut marked = false;
        let result = loop {
            tokio::select! {
                _ = shutdown.clone() => {
                    release(manager).await;
                    return false;
                }
                r = &mut changed => break r,
                _ = &mut healthy_after, if !marked => {
                    marked = true;
                    health.set_role(Role::Standby { lease_healthy: true });
                }
            }
        };
        match result {
            Ok(true) => return true,
            Ok(false) => health.set_role(Role::Standby { lease_healthy: true }),
            Err(e) => {
                tracing::warn!(error = %e, "leader election loop failed, retrying");
                health.set_role(Role::Standby { lease_healthy: false });
                tokio::select! {
                    _ = shutdown.clone() => return false,
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
        }
    }
}

/// Keeps renewing the Lease; returns why this replica lost it. An API
/// blip does not lose it: the Lease stays this replica's until it expires,
/// and the fence stops AWS calls before it may have. Exiting at the first
/// failed renewal would restart the leader (and empty its live windows)
/// for a failure of a second or two.
async fn renew_while_valid(manager: &LeaseManager, fence: &Fence) -> String {
    loop {
        match manager.changed().await {
            Ok(true) => {}
            Ok(false) => return "another replica holds it now".to_string(),
            Err(e) if fence.is_open() => {
                tracing::warn!(error = %e, "renewing the leader Lease failed, retrying while it is valid");
                tokio::time::sleep(RENEW_RETRY).await;
            }
            Err(e) => return format!("renewing it failed until it lapsed: {e}"),
        }
    }
}

/// Wait between renewal attempts after one failed (a lease of 15 s renews
/// 5 s before expiry, so this leaves several attempts).
const RENEW_RETRY: Duration = Duration::from_secs(1);

/// Retries of the first read (or creation) of the Lease.
const LEASE_RETRY: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_secs(1))
    .with_factor(2.0)
    .with_max_delay(Duration::from_secs(30))
    .without_max_times();

/// AWS calls stop this long before the Lease could expire: the standby
/// takes over at renewTime + duration, and clocks and requests take time.
const FENCE_MARGIN: Duration = Duration::from_secs(2);

/// How long after a renewal of age `age` this replica may still call AWS.
fn fenced_for(lease_duration: Duration, age: Duration) -> Duration {
    lease_duration.saturating_sub(FENCE_MARGIN).saturating_sub(age)
}

/// How long after the lease manager's renewal is due the fence reads the
/// Lease: the renewal (a read and a write) must have reached the API
/// server by then.
const CONFIRM_LAG: Duration = Duration::from_secs(1);

/// How soon the Lease is read again when the renewal due was not there yet.
const CONFIRM_LATE_RETRY: Duration = Duration::from_millis(250);

/// How soon a failed read (or one that did not show this replica holding
/// the Lease) is tried again.
const CONFIRM_RETRY: Duration = Duration::from_secs(1);

/// When to read the Lease next, given the age of the renewal the last read
/// saw (`None`: it saw none of this replica's). The lease manager renews
/// every `renew_period` (the duration less the grace), and each renewal
/// keeps the fence open for the duration less [`FENCE_MARGIN`] (13 s of
/// 15 s, 3 s past the next renewal), so the read is timed just after the
/// next renewal is due. A fixed beat of a third of the duration left the
/// fence shut for up to 2 s in two renewals of five, and a 10 s loop in
/// phase with those gaps (the rate reads, in a soak) had every AWS call
/// refused. At most `every` apart, so a lost Lease is still seen soon.
fn next_read_in(renewed_ago: Option<Duration>, renew_period: Duration, every: Duration) -> Duration {
    match renewed_ago {
        Some(age) if age < renew_period + CONFIRM_LAG => (renew_period + CONFIRM_LAG - age).min(every),
        Some(_) => CONFIRM_LATE_RETRY,
        None => CONFIRM_RETRY,
    }
}

/// Reads the Lease at once and then as [`next_read_in`] says for renewals
/// every `renew_period` (with a third of its duration as timeout) and,
/// while this replica holds it, moves the AWS fence to the renewal time
/// plus the duration less a margin. A
/// renewal that hangs, a process frozen past the Lease (SIGSTOP, a stalled
/// node), or another holder all let the fence close by itself before a
/// standby may start. Runs until cancelled.
async fn confirm_leadership(client: Client, election: &ElectionSettings, renew_period: Duration, fence: Arc<Fence>) {
    let leases: kube::Api<Lease> = kube::Api::namespaced(client, &election.lease_namespace);
    let every = election.lease_duration / 3;
    loop {
        let sent = tokio::time::Instant::now();
        let mut renewed_ago = None;
        match tokio::time::timeout(every, leases.get(&election.lease_name)).await {
            Ok(Ok(lease)) => {
                let now = jiff::Timestamp::now();
                if let Some(until) = valid_until(&lease, election, sent, now) {
                    fence.extend_to(until);
                    let renewed = lease.spec.as_ref().and_then(|s| s.renew_time.as_ref());
                    renewed_ago = renewed.map(|r| now.duration_since(r.0).unsigned_abs());
                }
            }
            _ => tracing::warn!("cannot read the leader Lease; AWS calls stop when it may have lapsed"),
        }
        tokio::time::sleep(next_read_in(renewed_ago, renew_period, every)).await;
    }
}

/// Until when a Lease read (requested at `sent`, answered by `now` on the
/// wall clock) lets this replica call AWS: `None` unless it is the holder.
/// renewTime is written by this replica's lease manager with this
/// machine's clock, so its age is measured on the same clock; counting
/// from `sent` rather than from the answer keeps a slow answer on the safe
/// side.
fn valid_until(lease: &Lease, election: &ElectionSettings, sent: Instant, now: jiff::Timestamp) -> Option<Instant> {
    let spec = lease.spec.as_ref()?;
    if spec.holder_identity.as_deref() != Some(election.identity.as_str()) {
        return None;
    }
    let renewed = spec.renew_time.as_ref()?;
    let age = now.duration_since(renewed.0).unsigned_abs();
    Some(sent + fenced_for(election.lease_duration, age))
}

async fn release(manager: &LeaseManager) {
    match tokio::time::timeout(Duration::from_secs(3), manager.release()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => log_release_error(&e),
        Err(_) => tracing::warn!("timed out releasing the leader Lease; it expires by itself"),
    }
}

fn log_release_error(e: &LeaseManagerError) {
    tracing::warn!(error = %e, "could not release the leader Lease; it expires by itself");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_is_read_just_after_each_renewal_is_due() {
        let (period, every) = (Duration::from_secs(10), Duration::from_secs(5));
        let ms = Duration::from_millis;
        // Just renewed: at most `every` later; 8 s old: just after the next.
        assert_eq!(next_read_in(Some(ms(200)), period, every), every);
        assert_eq!(next_read_in(Some(ms(8_000)), period, every), ms(3_000));
        // The renewal is late: soon again; the read failed: a second later.
        assert_eq!(next_read_in(Some(ms(11_300)), period, every), CONFIRM_LATE_RETRY);
        assert_eq!(next_read_in(None, period, every), CONFIRM_RETRY);
    }

    /// Renewals every 10 s as the lease manager makes them (a read and a
    /// write: visible after two round trips), reads as `next_read_in`
    /// schedules them, each answered after one: the fence never shuts while
    /// the renewals keep coming, up to round trips of 450 ms. A fixed 5 s
    /// beat fails this (shut up to 2 s in two renewals of five).
    #[test]
    fn renewals_on_time_keep_the_fence_open_without_a_gap() {
        let election = election();
        let duration = election.lease_duration;
        let every = duration / 3;
        let renew_period = Duration::from_secs(10);
        for rtt_ms in [5u64, 150, 300, 450] {
            let rtt = Duration::from_millis(rtt_ms);
            let (mut now, mut fence_until) = (Duration::ZERO, Duration::ZERO);
            // The lease was acquired at 0 (its renewTime) and read at once.
            let mut read_at = rtt;
            while now < Duration::from_secs(300) {
                // What the read sent at `read_at - rtt` saw: the last renewal
                // that reached the API server before it.
                let sent = read_at - rtt;
                let renewals = (sent.saturating_sub(rtt * 2).as_millis() / renew_period.as_millis()) as u32;
                let renewed = renew_period * renewals;
                let age = read_at - renewed;
                let until = sent + fenced_for(duration, age);
                assert!(
                    fence_until >= read_at || read_at < rtt * 2,
                    "rtt {rtt:?}: the fence shut at {fence_until:?}, the next read answered at {read_at:?}"
                );
                fence_until = fence_until.max(until);
                now = read_at;
                read_at = now + next_read_in(Some(age), renew_period, every) + rtt;
            }
        }
    }

    #[test]
    fn the_fence_closes_before_the_lease_can_expire() {
        let d = Duration::from_secs(15);
        assert_eq!(fenced_for(d, Duration::ZERO), Duration::from_secs(13));
        assert_eq!(fenced_for(d, Duration::from_secs(4)), Duration::from_secs(9));
        assert_eq!(fenced_for(d, Duration::from_secs(60)), Duration::ZERO);
    }

    fn lease(holder: &str, renewed_ago: i64) -> Lease {
        let renewed = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(renewed_ago);
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "l"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                     "renewTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(renewed)},
        }))
        .expect("lease")
    }

    fn election() -> ElectionSettings {
        ElectionSettings {
            lease_name: "l".into(),
            lease_namespace: "ns".into(),
            identity: "me".into(),
            lease_duration: Duration::from_secs(15),
        }
    }

    #[test]
    fn the_fence_counts_from_the_renewal_read_back() {
        let sent = Instant::now();
        let now = jiff::Timestamp::now();
        let until = valid_until(&lease("me", 10), &election(), sent, now).expect("holder");
        // 15 s lease, 2 s margin, renewed 10 s ago: 3 s left (give or take
        // the time between the two clock reads above).
        let left = until - sent;
        assert!(
            left <= Duration::from_millis(3100) && left > Duration::from_millis(2900),
            "{left:?}"
        );
        assert_eq!(valid_until(&lease("me", 40), &election(), sent, now), Some(sent));
        assert_eq!(valid_until(&lease("someone-else", 0), &election(), sent, now), None);
    }

    #[test]
    fn a_closed_fence_stays_closed() {
        let fence = Fence::default();
        assert!(fence.is_open(), "unarmed: no leader election");
        let shut = Fence::armed_shut();
        assert!(!shut.is_open());
        shut.extend_to(Instant::now() + Duration::from_secs(10));
        assert!(shut.is_open());
        shut.close();
        shut.extend_to(Instant::now() + Duration::from_secs(10));
        assert!(!shut.is_open(), "a lost Lease is not won back by a late read");
    }

    #[test]
    fn grace_is_a_third_of_the_duration_and_always_valid() {
        assert_eq!(grace_of(15), 5);
        for d in 2..100 {
            let g = grace_of(d);
            assert!(g > 0 && g < d, "duration {d} grace {g}");
        }
    }
}
