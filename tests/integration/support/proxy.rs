//! A loopback TCP proxy in front of the API server for one operator
//! process, so a test can cut that process off (an API-server blip, a
//! network partition) without stopping the API server every other test
//! shares. Faults look like a network: open connections are dropped and
//! new ones are refused while the proxy is down, or open connections go
//! silent while staying open, as when the peer vanished without a reset.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub addr: SocketAddr,
    /// Bumped on each cut: connections opened before a cut end with it.
    epoch: watch::Sender<u64>,
    /// Bumped on each silence: connections opened before it go silent.
    silenced: watch::Sender<u64>,
    down: Arc<AtomicU64>,
}

impl Proxy {
    /// A proxy to `upstream` on a free loopback port.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (epoch, _) = watch::channel(0u64);
        let (silenced, _) = watch::channel(0u64);
        let down = Arc::new(AtomicU64::new(0));
        let (epochs, silences, is_down) = (epoch.clone(), silenced.clone(), down.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if is_down.load(Ordering::Acquire) > 0 {
                    drop(inbound);
                    continue;
                }
                let mut cut = epochs.subscribe();
                let mut silence = silences.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let mut inbound = inbound;
                    tokio::select! {
                        _ = copy_bidirectional(&mut inbound, &mut outbound) => return,
                        _ = cut.changed() => return,
                        _ = silence.changed() => {}
                    }
                    // The upstream is gone; the client's side stays open,
                    // its writes are taken and nothing ever answers.
                    drop(outbound);
                    let mut swallowed = tokio::io::sink();
                    tokio::select! {
                        _ = tokio::io::copy(&mut inbound, &mut swallowed) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self {
            addr,
            epoch,
            silenced,
            down,
        }
    }

    /// Drops every connection and refuses new ones for `duration`.
    pub async fn cut_for(&self, duration: Duration) {
        self.down.fetch_add(1, Ordering::AcqRel);
        self.epoch.send_modify(|e| *e += 1);
        tokio::time::sleep(duration).await;
        self.down.fetch_sub(1, Ordering::AcqRel);
    }

    /// Every open connection goes silent for good and stays open, as when
    /// the API server's node vanished without a reset; new connections work.
    pub fn silence_open_connections(&self) {
        self.silenced.send_modify(|e| *e += 1);
    }
}

/// The ground's kubeconfig with its server pointed at `proxy`, written to
/// `path` (the API server's certificate names 127.0.0.1, whatever the port).
pub fn kubeconfig_via(proxy: &Proxy, path: &std::path::Path) {
    let source = std::env::var("KUBECONFIG").expect("the ground sets KUBECONFIG");
    let text = std::fs::read_to_string(&source).expect("read the ground's kubeconfig");
    let rewritten: String = text
        .lines()
        .map(|line| match line.trim_start().strip_prefix("server: https://") {
            Some(hostport) => line.replace(hostport, &proxy.addr.to_string()),
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(path, rewritten).expect("write the proxied kubeconfig");
}

/// The API server's address from the ground's kubeconfig.
pub fn api_server() -> SocketAddr {
    let source = std::env::var("KUBECONFIG").expect("the ground sets KUBECONFIG");
    let text = std::fs::read_to_string(&source).expect("read the ground's kubeconfig");
    text.lines()
        .find_map(|line| line.trim_start().strip_prefix("server: https://")?.parse().ok())
        .expect("the kubeconfig names a 127.0.0.1 server")
}
