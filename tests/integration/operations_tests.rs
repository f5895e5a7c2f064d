//! The operator binary as operations see it: two replicas with leader
//! election on, exactly one reconciling; the standby taking over within the
//! lease duration after the leader is SIGKILLed; a frozen leader that
//! resumes after the takeover makes no AWS call; `/metrics`, `/healthz` and
//! `/readyz` on each replica.

use std::process::Child;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use serde_json::json;
use ses_reputation_operator::api::ConfigurationSet;

use crate::support::replica::{LEASE_DURATION, Replica, holder};
use crate::support::{self, World, WorldOptions, apply_json, eventually, unique};
use crate::support::{cs_object, wait_set_ready};

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
    // The holder field is written first of the steps of an acquisition;
    // an intruder patched in between is taken for an expired holder and
    // the Lease taken back. Wait until the replica leads.
    eventually("the replica leads", Duration::from_secs(30), || async {
        match replica.get("/metrics").await? {
            (200, body) if body.contains("ses_reputation_leader 1") => Ok(()),
            (200, _) => Err("not leading yet".to_string()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

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

/// The API server's connections go silent without a reset (its node
/// vanished): the operator gives them up within about a minute and a spec
/// change made meanwhile reaches AWS and status. Without timeouts of its
/// own the watch waited 295 s for the server's close, and a request on a
/// silent pooled connection waited for ever.
#[tokio::test(flavor = "multi_thread")]
async fn connections_that_go_silent_are_given_up_and_spec_changes_still_arrive() {
    use crate::support::proxy::{Proxy, api_server, kubeconfig_via};
    let w = World::with(
        "ops-silent",
        WorldOptions {
            start_operator: false,
            ..Default::default()
        },
    )
    .await;
    let proxy = Proxy::start(api_server()).await;
    let dir = std::env::temp_dir().join(unique("sro-silent"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (kubeconfig, log) = (dir.join("kubeconfig"), dir.join("replica.log"));
    kubeconfig_via(&proxy, &kubeconfig);
    let _replica = Replica::start_via(&w, None, &kubeconfig, &log);
    let sets: Api<ConfigurationSet> = w.api();
    let aws_name = unique("silent");
    let spec = |team: &str| json!({"name": aws_name, "tags": {"team": team}});
    apply_json(&sets, cs_object("silent", spec("before"))).await;
    wait_set_ready(&sets, "silent").await;

    proxy.silence_open_connections();
    let changed = apply_json(&sets, cs_object("silent", spec("after"))).await;
    let ses = support::ses_client().await;
    let since = Instant::now();
    eventually("the new tag in SES", Duration::from_secs(100), || async {
        let got = ses
            .get_configuration_set()
            .configuration_set_name(&aws_name)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        match got.tags().iter().find(|t| t.key() == "team").map(|t| t.value()) {
            Some("after") => Ok(()),
            other => Err(format!("team tag {other:?}")),
        }
    })
    .await;
    eprintln!(
        "the change reached SES {:?} after the connections went silent",
        since.elapsed()
    );
    eventually("status of the new generation", Duration::from_secs(150), || async {
        let cs = sets.get("silent").await.map_err(|e| e.to_string())?;
        let observed = cs.status.as_ref().and_then(|s| s.observed_generation);
        match observed == changed.metadata.generation {
            true => Ok(()),
            false => Err(format!(
                "observedGeneration {observed:?}, generation {:?}",
                changed.metadata.generation
            )),
        }
    })
    .await;
}

/// A failover in the middle of a spike: the new leader starts from the
/// counts the killed one checkpointed, so sends before and after the
/// failover together reach `minimumSends` and trip the breaker. Without the
/// checkpoint the new leader would count only what came after.
#[tokio::test(flavor = "multi_thread")]
async fn a_failover_in_a_spike_keeps_the_live_counts_and_trips_the_breaker() {
    use crate::support::live::{SENDER, live_test_set, policy, send, ses_in, set_stream, wait_stream_destination};
    use k8s_openapi::api::core::v1::ConfigMap;
    use ses_reputation_operator::api::ReputationPolicy;
    const REGION: &str = "us-west-2";
    let w = World::with(
        "ops-failover",
        WorldOptions {
            start_operator: false,
            ..crate::support::live::world_options(REGION)
        },
    )
    .await;
    let leases: Api<Lease> = Api::namespaced(w.client.clone(), &w.ns);
    let lease = "sro-failover";
    let first = Replica::start(&w, lease);
    eventually("the first replica leads", Duration::from_secs(60), || async {
        let h = holder(&leases, lease).await?;
        if first.holds(&h) { Ok(()) } else { Err(h) }
    })
    .await;
    let second = Replica::start(&w, lease);
    set_stream(&w, REGION, true).await;
    let (sets, policies): (Api<ConfigurationSet>, Api<ReputationPolicy>) = (w.api(), w.api());
    apply_json(&policies, policy("breaker", "campaign", 100)).await;
    let aws = unique("failover");
    apply_json(&sets, live_test_set("campaign", &aws, "campaign")).await;
    wait_stream_destination(&sets, "campaign").await;
    let ses = ses_in(REGION).await;
    ses.create_email_identity().email_identity(SENDER).send().await.ok();

    // 70 sends, every tenth a hard bounce: twice the critical rate, below
    // minimumSends, so nothing trips yet.
    // Sends until SES refuses one; returns how many it accepted.
    let spike = |n: usize| {
        let ses = ses.clone();
        let aws = aws.clone();
        async move {
            for i in 0..n {
                let to = if i % 10 == 9 {
                    "bounce@simulator.amazonses.com"
                } else {
                    "success@simulator.amazonses.com"
                };
                if let Err(code) = send(&ses, &aws, to).await {
                    assert_eq!(code, "SendingPausedException");
                    return i;
                }
            }
            n
        }
    };
    assert_eq!(spike(70).await, 70);
    let configmaps: Api<ConfigMap> = w.api();
    let key = format!("{}/campaign", w.ns);
    eventually("the checkpoint holds the 70 sends", Duration::from_secs(60), || async {
        let cm = configmaps
            .get(support::LIVE_CHECKPOINT)
            .await
            .map_err(|e| e.to_string())?;
        let text = cm.data.and_then(|d| d.get("windows.json").cloned()).unwrap_or_default();
        let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let sends: u64 = doc["sets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["key"] == key.as_str())
            .flat_map(|e| e["window"]["minutes"].as_array().cloned().unwrap_or_default())
            .filter_map(|m| m[1][0].as_u64())
            .sum();
        if sends == 70 {
            Ok(())
        } else {
            Err(format!("{sends} sends in {text}"))
        }
    })
    .await;
    let cs = sets.get("campaign").await.expect("campaign");
    assert!(cs.status.and_then(|s| s.pause).is_none(), "paused below minimumSends");

    // SIGKILL the leader: no graceful stop, no last checkpoint.
    let mut first = first;
    first.child.kill().expect("SIGKILL the leader");
    first.child.wait().expect("reaped");
    eventually(
        "the second replica leads",
        LEASE_DURATION + Duration::from_secs(20),
        || async {
            let h = holder(&leases, lease).await?;
            if second.holds(&h) { Ok(()) } else { Err(h) }
        },
    )
    .await;

    // 30 more reach minimumSends with the ones before the failover: the
    // breaker trips within the next 40 (without the checkpoint the new
    // leader would have needed 100).
    let after = spike(40).await;
    assert!(after >= 30, "paused after {after} sends: below minimumSends");
    let refused = eventually("SES refuses mail through the set", Duration::from_secs(60), || async {
        match send(&ses, &aws, "success@simulator.amazonses.com").await {
            Err(code) => Ok(code),
            Ok(()) => Err("accepted".to_string()),
        }
    })
    .await;
    assert_eq!(refused, "SendingPausedException");
    let status = eventually(
        "status shows the pause and the sends from both leaders",
        Duration::from_secs(30),
        || async {
            let status = sets
                .get("campaign")
                .await
                .map_err(|e| e.to_string())?
                .status
                .unwrap_or_default();
            let live = serde_json::to_value(status.reputation.as_ref().and_then(|r| r.live.clone()))
                .map_err(|e| e.to_string())?;
            match (&status.pause, live["sends"].as_i64()) {
                (Some(_), Some(n)) if n >= 100 => Ok(status),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert_eq!(status.pause.map(|p| p.policy).as_deref(), Some("breaker"));
    let metrics = second.metrics().await;
    assert!(
        metrics.contains(r#"ses_reputation_live_checkpoints_total{outcome="restored"} 1"#),
        "{metrics}"
    );
}

/// A replica that finds its own name on a Lease it did not just renew
/// (its container restarted under the same Pod name, or its acquisition
/// returned long after the renewTime it wrote) and then cannot renew:
/// its AWS fence must follow the Lease's renewTime, which is what the
/// standby counts from, and stay shut once the Lease is lost.
#[tokio::test(flavor = "multi_thread")]
async fn the_fence_follows_the_leases_renewal_not_the_moment_leadership_was_seen() {
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    use ses_reputation_operator::ops::leader::{self, ElectionSettings};
    use ses_reputation_operator::ops::metrics::Metrics;
    use ses_reputation_operator::ops::server::Health;
    use std::sync::Arc;

    let admin = support::client().await;
    let ns = support::namespace(&admin, "ops-fence", &[]).await;
    // The replica may read its Lease but not renew it: every renewal fails
    // while its reads keep answering.
    apply_json::<Role>(
        &Api::namespaced(admin.clone(), &ns),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "lease-reader"},
            "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "list", "watch"]}],
        }),
    )
    .await;
    apply_json::<RoleBinding>(
        &Api::namespaced(admin.clone(), &ns),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "lease-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "lease-reader"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "fence-replica"}],
        }),
    )
    .await;
    let mut config = kube::Config::infer().await.expect("kube config");
    config.auth_info.impersonate = Some("fence-replica".into());
    let replica = kube::Client::try_from(config).expect("impersonating client");
    let leases: Api<Lease> = Api::namespaced(replica.clone(), &ns);
    let lease = "sro-fence-lease";
    let renewed = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(10);
    let written = k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(renewed);
    Api::<Lease>::namespaced(admin.clone(), &ns)
        .create(
            &Default::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": lease},
                "spec": {"holderIdentity": "fence-replica-0", "leaseDurationSeconds": 15,
                         "acquireTime": written, "renewTime": written},
            }))
            .expect("lease"),
        )
        .await
        .expect("create the Lease");
    eventually("the replica can read its Lease", Duration::from_secs(10), || async {
        leases.get(lease).await.map(|_| ()).map_err(|e| e.to_string())
    })
    .await;
    let expires = renewed + jiff::SignedDuration::from_secs(15);

    let last_open = Arc::new(parking_lot::Mutex::new(None::<jiff::Timestamp>));
    let seen = last_open.clone();
    let lead = move |fence: Arc<leader::Fence>| async move {
        let until = tokio::time::Instant::now() + Duration::from_secs(25);
        while tokio::time::Instant::now() < until {
            if fence.is_open() {
                *seen.lock() = Some(jiff::Timestamp::now());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let election = ElectionSettings {
        lease_name: lease.into(),
        lease_namespace: ns.clone(),
        identity: "fence-replica-0".into(),
        lease_duration: Duration::from_secs(15),
    };
    let outcome = leader::run(
        replica,
        election,
        Arc::new(Metrics::new()),
        Arc::new(Health::default()),
        lead,
        std::future::pending::<()>(),
    )
    .await;
    assert!(
        outcome.is_err(),
        "a replica that cannot renew must lose the Lease: {outcome:?}"
    );
    let last_open = *last_open.lock();
    if let Some(open) = last_open {
        assert!(
            open < expires,
            "AWS calls were let through at {open}, after the Lease expired at {expires} (renewed {renewed})"
        );
    }
}
