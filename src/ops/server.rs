//! The operations HTTP endpoint: `/metrics` (OpenMetrics text),
//! `/healthz` (the process runs) and `/readyz` (this replica does its job),
//! and the [`Health`] state that the probes read.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::ops::metrics::Metrics;

/// Content type of the OpenMetrics text format.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// This replica's part in leader election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Leader election is off: this replica always runs the controllers.
    Alone,
    /// Waiting for the Lease; `lease_healthy` is false while talking to the
    /// apiserver about it fails.
    Standby { lease_healthy: bool },
    /// Holds the Lease and runs the controllers.
    Leader,
}

/// What `/readyz` reports. Shared by the controllers (cache sync) and the
/// leader election loop (role).
#[derive(Debug)]
pub struct Health {
    synced: AtomicBool,
    role: AtomicU8,
    /// Per watched kind: its last failed list/watch request, cleared by the
    /// next event the watch delivers.
    watch_failures: Mutex<HashMap<&'static str, (Instant, String)>>,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            synced: AtomicBool::new(false),
            role: AtomicU8::new(encode_role(Role::Alone)),
            watch_failures: Mutex::new(HashMap::new()),
        }
    }
}

/// A watch whose last failure is this recent, with no event since, is
/// failing: kube's watcher retries a failing request at most 30 s apart,
/// so a watch still failing has failed again within this window, and one
/// that recovered quietly (no change to deliver) ages out of it.
const WATCH_FAILING: Duration = Duration::from_secs(40);

fn encode_role(role: Role) -> u8 {
    match role {
        Role::Alone => 0,
        Role::Standby { lease_healthy: true } => 1,
        Role::Standby { lease_healthy: false } => 2,
        Role::Leader => 3,
    }
}

impl Health {
    /// Set by the controllers once every watched kind's cache has its
    /// first complete list (and cleared when they stop).
    /// Whether the controllers' caches have their first full list.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    pub fn set_synced(&self, synced: bool) {
        self.synced.store(synced, Ordering::Release);
    }

    /// A list or watch request of `kind` failed.
    pub fn watch_failed(&self, kind: &'static str, error: String) {
        self.watch_failures.lock().insert(kind, (Instant::now(), error));
    }

    /// The watch of `kind` delivered an event: it works.
    pub fn watch_works(&self, kind: &'static str) {
        let mut failures = self.watch_failures.lock();
        if !failures.is_empty() {
            failures.remove(kind);
        }
    }

    /// The first watch that is failing now, with its error.
    fn failing_watch(&self) -> Option<String> {
        let failures = self.watch_failures.lock();
        let mut failing: Vec<_> = failures
            .iter()
            .filter(|(_, (at, _))| at.elapsed() < WATCH_FAILING)
            .map(|(kind, (_, error))| format!("the {kind} watch is failing: {error}"))
            .collect();
        failing.sort();
        failing.into_iter().next()
    }

    pub fn set_role(&self, role: Role) {
        self.role.store(encode_role(role), Ordering::Release);
    }

    pub fn role(&self) -> Role {
        match self.role.load(Ordering::Acquire) {
            0 => Role::Alone,
            1 => Role::Standby { lease_healthy: true },
            2 => Role::Standby { lease_healthy: false },
            _ => Role::Leader,
        }
    }

    /// `Ok` when ready, else why not. A standby is ready while its lease
    /// loop works: it is what takes over when the leader goes away. A
    /// replica that runs the controllers is ready once its caches synced
    /// and while its watches work (a failing watch means it acts on a
    /// cache that no longer follows the cluster).
    pub fn ready(&self) -> Result<(), String> {
        match self.role() {
            Role::Standby { lease_healthy: true } => Ok(()),
            Role::Standby { lease_healthy: false } => Err("standby: the leader election loop is failing".into()),
            Role::Alone | Role::Leader if !self.synced.load(Ordering::Acquire) => {
                Err("controller caches have not synced yet".into())
            }
            Role::Alone | Role::Leader => match self.failing_watch() {
                Some(why) => Err(why),
                None => Ok(()),
            },
        }
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

/// The routes, without a listener (unit tests call it directly).
pub fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(AppState { metrics, health })
}

async fn metrics_handler(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, OPENMETRICS)], state.metrics.encode())
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.health.ready() {
        Ok(()) => (StatusCode::OK, "ok\n".to_string()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    }
}

/// Binds the address first, so a taken port fails the start instead of a
/// background task.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(metrics, health))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_failing_watch_makes_the_leader_unready_until_it_works_or_ages_out() {
        let h = Health::default();
        h.set_role(Role::Leader);
        h.set_synced(true);
        h.watch_failed("ConfigurationSet", "connection refused".into());
        let why = h.ready().expect_err("a failing watch");
        assert!(
            why.contains("ConfigurationSet watch is failing: connection refused"),
            "{why}"
        );
        h.watch_works("ConfigurationSet");
        assert!(h.ready().is_ok(), "an event came through");
        h.watch_failed("SesAccount", "timeout".into());
        tokio::time::advance(WATCH_FAILING + Duration::from_secs(1)).await;
        assert!(
            h.ready().is_ok(),
            "no failure for longer than the watcher's longest retry"
        );
        // A standby's readiness is its lease loop only.
        h.watch_failed("SesAccount", "timeout".into());
        h.set_role(Role::Standby { lease_healthy: true });
        assert!(h.ready().is_ok());
    }

    #[test]
    fn readiness_follows_role_and_cache_sync() {
        let h = Health::default();
        assert!(h.ready().is_err(), "not synced");
        h.set_synced(true);
        assert!(h.ready().is_ok());

        let h = Health::default();
        h.set_role(Role::Standby { lease_healthy: false });
        assert!(h.ready().is_err());
        h.set_role(Role::Standby { lease_healthy: true });
        assert!(h.ready().is_ok(), "a healthy standby is ready");
        h.set_role(Role::Leader);
        assert!(h.ready().is_err(), "a new leader waits for its caches");
        h.set_synced(true);
        assert!(h.ready().is_ok());
    }

    #[tokio::test]
    async fn serves_metrics_health_and_readiness() {
        let metrics = Arc::new(Metrics::new());
        metrics.aws_call("sesv2:GetAccount", "ok", std::time::Duration::from_millis(3));
        let health = Arc::new(Health::default());
        let listener = bind("127.0.0.1:0".parse().expect("addr")).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, metrics, health.clone(), async {
            let _ = rx.await;
        }));

        let (status, head, body) = get_raw(addr, "/metrics").await;
        assert_eq!(status, 200);
        assert!(
            head.to_ascii_lowercase()
                .contains(&format!("content-type: {OPENMETRICS}")),
            "{head}"
        );
        assert!(body.contains(r#"operation="GetAccount""#), "{body}");
        assert_eq!(get_raw(addr, "/healthz").await.0, 200);
        assert_eq!(get_raw(addr, "/readyz").await.0, 503);
        health.set_synced(true);
        assert_eq!(get_raw(addr, "/readyz").await.0, 200);

        let _ = tx.send(());
        server.await.expect("join").expect("serve");
    }

    async fn get_raw(addr: SocketAddr, path: &str) -> (u16, String, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .expect("write");
        let mut buf = String::new();
        s.read_to_string(&mut buf).await.expect("read");
        let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        (status, head.to_string(), body.to_string())
    }
}
