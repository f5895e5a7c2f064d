//! The API-server client and the timeouts that make it give up on a
//! connection whose peer vanished (a node or load balancer gone without a
//! reset) in about a minute instead of never.
//!
//! kube-rs speaks HTTP/1.1 without keepalive pings, so such a connection
//! looks open: a watch on it delivers nothing until the watcher's idle
//! timeout (the watch timeout plus 5 s), and a plain request on it waits
//! for an answer that cannot come unless the client has a read timeout.
//! client-go covers the same case with HTTP/2 health pings (30 s + 15 s).

use std::time::Duration;

use kube::runtime::watcher;

/// Server-side timeout of every watch: the apiserver ends each watch
/// after this, the watcher resumes it from its resourceVersion (served
/// from the watch cache, one request per kind a minute), and a watch that
/// stays silent past it plus 5 s is given up as dead.
pub const WATCH_TIMEOUT: Duration = Duration::from_secs(55);

/// The longest a request may wait between reads of its response. Above
/// [`WATCH_TIMEOUT`], so a quiet watch ends by the server's close, not by
/// this timeout.
pub const READ_TIMEOUT: Duration = Duration::from_secs(70);
// The watcher's own idle timeout is the watch timeout plus 5 s.
const _: () = assert!(WATCH_TIMEOUT.as_secs() + 5 < READ_TIMEOUT.as_secs());

/// A client from the environment (in-cluster or `KUBECONFIG`) with
/// [`READ_TIMEOUT`].
pub async fn from_env() -> Result<kube::Client, kube::Error> {
    let mut config = kube::Config::infer().await.map_err(kube::Error::InferConfig)?;
    config.read_timeout = Some(READ_TIMEOUT);
    // Count from the request, not from when its pooled connection went idle.
    config.reset_reader_on_write = true;
    kube::Client::try_from(config)
}

/// The watcher configuration every shared watch starts from.
pub fn watch_config() -> watcher::Config {
    watcher::Config::default().timeout(WATCH_TIMEOUT.as_secs() as u32)
}
