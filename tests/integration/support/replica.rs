//! Operator processes with leader election: one [`Replica`] is one
//! `ses-reputation-operator run` with its own HTTP port, and the helpers
//! that read its endpoint and the Lease.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Child;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;

use super::World;

/// The binary's lease duration (main.rs `LEASE_DURATION`).
pub const LEASE_DURATION: Duration = Duration::from_secs(15);

/// One operator process with leader election on and its own HTTP port.
pub struct Replica {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Replica {
    pub fn start(w: &World, lease: &str) -> Self {
        Self::start_as(w, lease, "testing")
    }

    /// Signs its AWS calls with `access_key`, so the emulator's per-key
    /// counters tell which replica made a call.
    pub fn start_as(w: &World, lease: &str, access_key: &str) -> Self {
        Self::start_with(w, lease, access_key, &[])
    }

    /// [`Self::start_as`] with more flags of `run`.
    pub fn start_with(w: &World, lease: &str, access_key: &str, flags: &[&str]) -> Self {
        let addr = free_port();
        let child = super::operator_command(w)
            .args(flags)
            .env("AWS_ACCESS_KEY_ID", access_key)
            .args(["--leader-election"])
            .args(["--lease-name", lease, "--lease-namespace", &w.ns])
            .args(["--metrics-addr", &addr.to_string()])
            // Identity falls back to hostname + PID: distinct per process.
            .env_remove("POD_NAME")
            .env_remove("POD_NAMESPACE")
            .spawn()
            .expect("start the operator binary");
        Replica { child, addr }
    }

    /// A replica that reaches the API server through `kubeconfig` and
    /// writes its log to `log`.
    /// `lease`: `None` runs it without leader election.
    pub fn start_via(w: &World, lease: Option<&str>, kubeconfig: &std::path::Path, log: &std::path::Path) -> Self {
        let addr = free_port();
        let file = std::fs::File::create(log).expect("create the replica log");
        let mut cmd = super::operator_command(w);
        match lease {
            Some(lease) => cmd
                .args(["--leader-election"])
                .args(["--lease-name", lease, "--lease-namespace", &w.ns]),
            None => cmd.args(["--leader-election=false"]),
        };
        let child = cmd
            .env("KUBECONFIG", kubeconfig)
            .args(["--metrics-addr", &addr.to_string()])
            .env_remove("POD_NAME")
            .env_remove("POD_NAMESPACE")
            .stderr(file.try_clone().expect("log file"))
            .stdout(file)
            .spawn()
            .expect("start the operator binary");
        Replica { child, addr }
    }

    pub fn holds(&self, holder: &str) -> bool {
        holder.ends_with(&format!("-{}", self.child.id()))
    }

    pub async fn get(&self, path: &'static str) -> Result<(u16, String), String> {
        let addr = self.addr;
        tokio::task::spawn_blocking(move || http_get(addr, path))
            .await
            .map_err(|e| e.to_string())?
    }

    pub async fn metrics(&self) -> String {
        match self.get("/metrics").await {
            Ok((200, body)) => body,
            other => panic!("GET /metrics on {}: {other:?}", self.addr),
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

/// One blocking HTTP/1.1 GET: (status, body).
fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(|e| e.to_string())?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").ok_or("malformed HTTP response")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {head}"))?;
    Ok((status, body.to_string()))
}

pub async fn holder(leases: &Api<Lease>, name: &str) -> Result<String, String> {
    leases
        .get_opt(name)
        .await
        .map_err(|e| e.to_string())?
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
        .ok_or_else(|| "no holder yet".to_string())
}
