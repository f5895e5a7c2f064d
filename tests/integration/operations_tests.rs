//! The operator binary as operations see it: two replicas with leader
//! election on, exactly one reconciling; the standby taking over within the
//! lease duration after the leader is SIGKILLed; a frozen leader that
//! resumes after the takeover makes no AWS call; `/metrics`, `/healthz` and
//! `/readyz` on each replica.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Child;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use serde_json::json;
use ses_reputation_operator::api::ConfigurationSet;

use crate::support::{self, World, WorldOptions, apply_json, eventually, unique};
use crate::support::{cs_object, wait_set_ready};

/// The binary's lease duration (main.rs `LEASE_DURATION`).
const LEASE_DURATION: Duration = Duration::from_secs(15);

/// One operator process with leader election on and its own HTTP port.
struct Replica {
    child: Child,
    addr: SocketAddr,
}

impl Replica {
    fn start(w: &World, lease: &str) -> Self {
        Self::start_as(w, lease, "testing")
    }

    /// Signs its AWS calls with `access_key`, so the emulator's per-key
    /// counters tell which replica made a call.
    fn start_as(w: &World, lease: &str, access_key: &str) -> Self {
        let addr = free_port();
        let child = support::operator_command(w)
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
    fn start_via(w: &World, lease: Option<&str>, kubeconfig: &std::path::Path, log: &std::path::Path) -> Self {
        let addr = free_port();
        let file = std::fs::File::create(log).expect("create the replica log");
        let mut cmd = support::operator_command(w);
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

    fn holds(&self, holder: &str) -> bool {
        holder.ends_with(&format!("-{}", self.child.id()))
    }

    async fn get(&self, path: &'static str) -> Result<(u16, String), String> {
        let addr = self.addr;
        tokio::task::spawn_blocking(move || http_get(addr, path))
            .await
            .map_err(|e| e.to_string())?
    }

    async fn metrics(&self) -> String {
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
fn free_port() -> SocketAddr {
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

async fn holder(leases: &Api<Lease>, name: &str) -> Result<String, String> {
    leases
        .get_opt(name)
        .await
        .map_err(|e| e.to_string())?
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
        .ok_or_else(|| "no holder yet".to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn one_of_two_replicas_leads_and_the_standby_takes_over_after_sigkill() {
    let w = World::with(
        "ops",
        WorldOptions {
            start_operator: false,
            ..Default::default()
        },
    )
    .await;
    let sets: Api<ConfigurationSet> = w.api();
    let leases: Api<Lease> = Api::namespaced(w.client.clone(), &w.ns);
    let lease = "sro-test-lease";
    let prefix = unique("ops");
    let replicas = [Replica::start(&w, lease), Replica::start(&w, lease)];

    let first = eventually("a replica holds the Lease", Duration::from_secs(60), || {
        holder(&leases, lease)
    })
    .await;
    let leading: Vec<usize> = (0..2).filter(|&i| replicas[i].holds(&first)).collect();
    assert_eq!(leading.len(), 1, "exactly one replica holds {first:?}");
    let (leader, standby) = (leading[0], 1 - leading[0]);

    apply_json(&sets, cs_object("first", json!({"name": format!("{prefix}-first")}))).await;
    wait_set_ready(&sets, "first").await;

    // The leader's endpoint: live, ready once its caches synced, and its
    // metrics show the AWS calls and reconciles it made.
    let l = &replicas[leader];
    assert_eq!(l.get("/healthz").await.map(|r| r.0), Ok(200));
    eventually("leader /readyz 200", Duration::from_secs(30), || async {
        match l.get("/readyz").await? {
            (200, _) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let metrics = l.metrics().await;
    for needle in [
        r#"ses_reputation_aws_calls_total{service="sesv2",operation="CreateConfigurationSet",outcome="ok"} "#,
        r#"ses_reputation_reconciles_total{kind="ConfigurationSet",result="ok"} "#,
        r#"ses_reputation_objects{kind="ConfigurationSet",condition="Ready",status="True"} 1"#,
        "ses_reputation_leader 1",
        "ses_reputation_ses_token_wait_seconds_count ",
        "# EOF",
    ] {
        assert!(metrics.contains(needle), "leader /metrics lacks {needle}:\n{metrics}");
    }

    // The standby: ready (its lease loop works), and it has not reconciled.
    let s = &replicas[standby];
    assert_eq!(s.get("/healthz").await.map(|r| r.0), Ok(200));
    eventually("standby /readyz 200", Duration::from_secs(30), || async {
        match s.get("/readyz").await? {
            (200, _) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let metrics = s.metrics().await;
    assert!(metrics.contains("ses_reputation_leader 0"), "{metrics}");
    assert!(!metrics.contains("ses_reputation_aws_calls_total{"), "{metrics}");
    assert!(!metrics.contains("ses_reputation_reconciles_total{"), "{metrics}");

    // SIGKILL the leader: no release, so the standby must wait for expiry.
    let mut replicas = replicas;
    replicas[leader].child.kill().expect("SIGKILL the leader");
    replicas[leader].child.wait().expect("reaped");
    let killed = Instant::now();
    let standby_identity = eventually(
        "the standby holds the Lease",
        LEASE_DURATION + Duration::from_secs(15),
        || async {
            let h = holder(&leases, lease).await?;
            if replicas[standby].holds(&h) {
                Ok(h)
            } else {
                Err(format!("holder {h}"))
            }
        },
    )
    .await;
    let took = killed.elapsed();
    eprintln!("standby took the Lease {took:?} after the leader was killed");
    assert!(
        took <= LEASE_DURATION + Duration::from_secs(5),
        "{standby_identity} took the Lease {took:?} after the leader died (lease {LEASE_DURATION:?})"
    );

    apply_json(&sets, cs_object("second", json!({"name": format!("{prefix}-second")}))).await;
    wait_set_ready(&sets, "second").await;
    let metrics = replicas[standby].metrics().await;
    for needle in [
        r#"ses_reputation_aws_calls_total{service="sesv2",operation="CreateConfigurationSet",outcome="ok"} 1"#,
        "ses_reputation_leader 1",
    ] {
        assert!(
            metrics.contains(needle),
            "new leader /metrics lacks {needle}:\n{metrics}"
        );
    }
    eventually("new leader /readyz 200", Duration::from_secs(30), || async {
        match replicas[standby].get("/readyz").await? {
            (200, _) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_that_loses_its_lease_exits_at_its_next_renewal() {
    let w = World::with(
        "ops-lost",
        WorldOptions {
            start_operator: false,
            ..Default::default()
        },
    )
    .await;
    let leases: Api<Lease> = Api::namespaced(w.client.clone(), &w.ns);
    let lease = "sro-lost-lease";
    let mut replica = Replica::start(&w, lease);
    let first = eventually("the replica holds the Lease", Duration::from_secs(60), || {
        holder(&leases, lease)
    })
    .await;
    assert!(replica.holds(&first), "{first}");

    // Someone else takes the Lease (as an operator with a stale view, or a
    // human, might): the replica must stop reconciling, i.e. exit.
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(jiff::Timestamp::now());
    leases
        .patch(
            lease,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"holderIdentity": "intruder", "renewTime": now}})),
        )
        .await
        .expect("take the Lease");
    let status = eventually("the replica exits", LEASE_DURATION + Duration::from_secs(10), || {
        let done = replica.child.try_wait().map_err(|e| e.to_string());
        async move { done?.ok_or_else(|| "still running".to_string()) }
    })
    .await;
    assert_eq!(status.code(), Some(1), "exit status after losing the Lease: {status:?}");
}

/// AWS calls signed with one access key, from the emulator.
async fn calls_by(access_key: &str) -> std::collections::BTreeMap<String, u64> {
    let v = support::emulator::admin_get("/_emulator/calls").await;
    serde_json::from_value(v["by_access_key"][access_key].clone()).unwrap_or_default()
}

fn signal(child: &Child, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill {sig}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_leader_makes_no_aws_call_after_the_standby_took_over() {
    let w = World::with(
        "ops-frozen",
        WorldOptions {
            start_operator: false,
            ..Default::default()
        },
    )
    .await;
    let leases: Api<Lease> = Api::namespaced(w.client.clone(), &w.ns);
    let sets: Api<ConfigurationSet> = w.api();
    let lease = "sro-frozen";
    let (key_a, key_b) = (unique("replica-a"), unique("replica-b"));
    let mut a = Replica::start_as(&w, lease, &key_a);
    let first = eventually("replica A holds the Lease", Duration::from_secs(60), || {
        holder(&leases, lease)
    })
    .await;
    assert!(a.holds(&first), "{first}");
    let b = Replica::start_as(&w, lease, &key_b);
    apply_json(&sets, cs_object("before", json!({"name": unique("before")}))).await;
    wait_set_ready(&sets, "before").await;
    assert!(!calls_by(&key_a).await.is_empty(), "A did the work while leading");

    // Freeze A (a stalled node, a long GC pause) past its Lease.
    signal(&a.child, "-STOP");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let frozen = calls_by(&key_a).await;
    let taken = eventually(
        "replica B takes the Lease",
        LEASE_DURATION + Duration::from_secs(20),
        || {
            let (leases, first) = (leases.clone(), first.clone());
            async move {
                let h = holder(&leases, lease).await?;
                if h == first { Err(format!("still {h}")) } else { Ok(h) }
            }
        },
    )
    .await;
    assert!(b.holds(&taken), "{taken}");
    // Work that A's caches will show it when it wakes up.
    apply_json(&sets, cs_object("after", json!({"name": unique("after")}))).await;
    wait_set_ready(&sets, "after").await;

    signal(&a.child, "-CONT");
    // A finds out it lost the Lease and exits; meanwhile its reconciles
    // and rate reader must not reach AWS.
    let _ = eventually("replica A exits", LEASE_DURATION + Duration::from_secs(10), || {
        let done = a.child.try_wait().map_err(|e| e.to_string());
        async move { done?.ok_or_else(|| "still running".to_string()) }
    })
    .await;
    assert_eq!(
        calls_by(&key_a).await,
        frozen,
        "AWS calls from the old leader after the takeover"
    );
    assert!(!calls_by(&key_b).await.is_empty(), "B did the work after the takeover");
}

/// The event stream is consumed by the leader only: the standby makes no
/// SQS call while the leader long-polls the queue.
#[tokio::test(flavor = "multi_thread")]
async fn only_the_leader_consumes_the_event_stream() {
    let w = World::with(
        "ops-stream",
        WorldOptions {
            start_operator: false,
            ..Default::default()
        },
    )
    .await;
    let leases: Api<Lease> = Api::namespaced(w.client.clone(), &w.ns);
    let lease = "sro-stream";
    let (key_a, key_b) = (unique("stream-a"), unique("stream-b"));
    let a = Replica::start_as(&w, lease, &key_a);
    let first = eventually("replica A holds the Lease", Duration::from_secs(60), || {
        holder(&leases, lease)
    })
    .await;
    assert!(a.holds(&first), "{first}");
    let b = Replica::start_as(&w, lease, &key_b);
    crate::support::live::set_stream(&w, "us-east-1", true).await;
    eventually("the leader long-polls the queue", Duration::from_secs(60), || async {
        let calls = calls_by(&key_a).await;
        match calls.get("sqs:ReceiveMessage") {
            Some(n) if *n >= 1 => Ok(()),
            _ => Err(format!("{calls:?}")),
        }
    })
    .await;
    // B runs (its /metrics answers) and is the standby.
    assert!(b.metrics().await.contains("ses_reputation_leader 0"));
    let standby = calls_by(&key_b).await;
    assert!(
        standby.keys().all(|k| !k.starts_with("sqs:")),
        "the standby called SQS: {standby:?}"
    );
}

/// An API-server blip of a few seconds over a renewal: the leader retries
/// within the Lease (the fence keeps it from AWS if it lapses) instead of
/// exiting, and keeps the Lease and its process (and so its live windows).
#[tokio::test(flavor = "multi_thread")]
async fn a_leader_keeps_its_lease_through_an_api_server_blip() {
    use crate::support::proxy::{Proxy, api_server, kubeconfig_via};
    let w = World::with(
        "ops-blip",
        WorldOptions {
            start_operator: false,
            ..Default::default()
        },
    )
    .await;
    let leases: Api<Lease> = Api::namespaced(w.client.clone(), &w.ns);
    let lease = "sro-blip-lease";
    let proxy = Proxy::start(api_server()).await;
    let dir = std::env::temp_dir().join(unique("sro-blip"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (kubeconfig, log) = (dir.join("kubeconfig"), dir.join("replica.log"));
    kubeconfig_via(&proxy, &kubeconfig);
    let mut replica = Replica::start_via(&w, Some(lease), &kubeconfig, &log);
    let first = eventually("the replica holds the Lease", Duration::from_secs(60), || {
        holder(&leases, lease)
    })
    .await;
    assert!(replica.holds(&first), "{first}");

    // Cut the replica off across its next renewal (10 s after the last of
    // a 15 s Lease), for less than the Lease.
    let failed_renewal = "renewing the leader Lease failed";
    for _ in 0..3 {
        let renewed = leases
            .get(lease)
            .await
            .expect("lease")
            .spec
            .and_then(|s| s.renew_time)
            .map(|t| t.0)
            .expect("renewTime");
        let next = renewed + jiff::SignedDuration::from_secs(10);
        let wait = jiff::Timestamp::now().duration_until(next).unsigned_abs();
        tokio::time::sleep(wait.saturating_sub(Duration::from_secs(1)).min(Duration::from_secs(15))).await;
        proxy.cut_for(Duration::from_secs(4)).await;
        if std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains(failed_renewal)
        {
            break;
        }
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains(failed_renewal), "the blip never hit a renewal:\n{text}");
    // A renewal or two later, the same process still leads.
    tokio::time::sleep(LEASE_DURATION).await;
    let exited = replica.child.try_wait().expect("try_wait");
    assert!(exited.is_none(), "the leader exited over a blip: {exited:?}\n{text}");
    let now = holder(&leases, lease).await.expect("holder");
    assert_eq!(now, first, "the Lease changed hands");
}

/// An API-server outage shows: `/readyz` fails (naming the watch) while
/// the watches fail, the watch error counter rises, and both recover.
#[tokio::test(flavor = "multi_thread")]
async fn an_api_server_outage_makes_readyz_fail_and_is_counted() {
    use crate::support::proxy::{Proxy, api_server, kubeconfig_via};
    let w = World::with(
        "ops-outage",
        WorldOptions {
            start_operator: false,
            ..Default::default()
        },
    )
    .await;
    let proxy = std::sync::Arc::new(Proxy::start(api_server()).await);
    let dir = std::env::temp_dir().join(unique("sro-outage"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (kubeconfig, log) = (dir.join("kubeconfig"), dir.join("replica.log"));
    kubeconfig_via(&proxy, &kubeconfig);
    let replica = Replica::start_via(&w, None, &kubeconfig, &log);
    eventually("ready", Duration::from_secs(60), || async {
        match replica.get("/readyz").await {
            Ok((200, _)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    let outage = tokio::spawn({
        let proxy = proxy.clone();
        async move { proxy.cut_for(Duration::from_secs(30)).await }
    });
    let why = eventually("unready during the outage", Duration::from_secs(25), || async {
        match replica.get("/readyz").await {
            Ok((503, body)) => Ok(body),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert!(why.contains("watch is failing"), "{why}");
    let metrics = replica.metrics().await;
    let errors: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("ses_reputation_watch_errors_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(errors >= 1.0, "no watch errors counted:\n{metrics}");
    outage.await.expect("outage");
    eventually("ready again after the outage", Duration::from_secs(90), || async {
        match replica.get("/readyz").await {
            Ok((200, _)) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}
