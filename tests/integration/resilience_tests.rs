//! The operator under a hostile AWS (SES throttled at 1 request/second and
//! 10% of calls failing) and a SIGKILL halfway through: everything
//! converges, nothing is marked Stalled, nothing is duplicated or orphaned.

use std::collections::BTreeSet;
use std::process::Child;
use std::sync::Mutex;
use std::time::Duration;

use kube::api::{Api, DeleteParams, ListParams};
use serde_json::json;
use ses_reputation_operator::api::{ConfigurationSet, EventDestination};

use crate::support::cs_object;
use crate::support::{self, World, WorldOptions, apply_json, condition, emulator, eventually, unique};

fn ed_object(name: &str, set: &str, topic: &str, queue_arn: &str) -> serde_json::Value {
    json!({
        "apiVersion": "ses.reputation.io/v1alpha1", "kind": "EventDestination",
        "metadata": {"name": name},
        "spec": {
            "configurationSetRef": {"name": set},
            "sns": {"topic": {"name": topic, "subscriptions": [{"protocol": "sqs", "endpoint": queue_arn}]}},
        },
    })
}

/// Counts Ready objects and remembers every Stalled condition ever seen.
async fn ready_counts(
    sets: &Api<ConfigurationSet>,
    dests: &Api<EventDestination>,
    stalled_seen: &Mutex<BTreeSet<String>>,
) -> Result<(usize, usize), String> {
    let mut ready = (0, 0);
    for cs in sets.list(&ListParams::default()).await.map_err(|e| e.to_string())? {
        let conds = cs.status.map(|s| s.conditions).unwrap_or_default();
        if let Some(c) = condition(&conds, "Stalled").filter(|c| c.0 == "True") {
            stalled_seen
                .lock()
                .expect("lock")
                .insert(format!("ConfigurationSet {:?}: {} {}", cs.metadata.name, c.1, c.2));
        }
        ready.0 += usize::from(condition(&conds, "Ready").is_some_and(|c| c.0 == "True"));
    }
    for ed in dests.list(&ListParams::default()).await.map_err(|e| e.to_string())? {
        let conds = ed.status.map(|s| s.conditions).unwrap_or_default();
        if let Some(c) = condition(&conds, "Stalled").filter(|c| c.0 == "True") {
            stalled_seen
                .lock()
                .expect("lock")
                .insert(format!("EventDestination {:?}: {} {}", ed.metadata.name, c.1, c.2));
        }
        ready.1 += usize::from(condition(&conds, "Ready").is_some_and(|c| c.0 == "True"));
    }
    Ok(ready)
}

/// N ConfigurationSets `cs-i` and EventDestinations `ed-i`, each with an
/// operator-owned topic subscribed by `queue_arn`.
async fn create_pairs(
    sets: &Api<ConfigurationSet>,
    dests: &Api<EventDestination>,
    prefix: &str,
    queue_arn: &str,
    n: usize,
) {
    for i in 0..n {
        apply_json(
            sets,
            cs_object(&format!("cs-{i}"), json!({"name": format!("{prefix}-cs-{i}")})),
        )
        .await;
        apply_json(
            dests,
            ed_object(
                &format!("ed-{i}"),
                &format!("cs-{i}"),
                &format!("{prefix}-topic-{i}"),
                queue_arn,
            ),
        )
        .await;
    }
}

/// Waits until all n pairs are Ready, noting any Stalled seen meanwhile.
async fn wait_all_ready(
    sets: &Api<ConfigurationSet>,
    dests: &Api<EventDestination>,
    stalled: &Mutex<BTreeSet<String>>,
    n: usize,
    timeout: Duration,
) {
    eventually("all sets and destinations Ready", timeout, || async move {
        match ready_counts(sets, dests, stalled).await? {
            (s, d) if s == n && d == n => Ok(()),
            (s, d) => Err(format!("{s}/{n} sets and {d}/{n} destinations Ready")),
        }
    })
    .await;
}

/// Topics and configuration sets with this prefix in one region.
async fn aws_inventory(region: &str, prefix: &str) -> (Vec<String>, Vec<String>, usize) {
    let config = emulator::sdk_config_in(region).await;
    let (ses, sns) = (aws_sdk_sesv2::Client::new(&config), aws_sdk_sns::Client::new(&config));
    let mut sets = Vec::new();
    let mut token = None;
    loop {
        let page = ses
            .list_configuration_sets()
            .set_next_token(token)
            .send()
            .await
            .expect("list sets");
        sets.extend(
            page.configuration_sets()
                .iter()
                .filter(|n| n.starts_with(prefix))
                .cloned(),
        );
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    let topics: Vec<String> = sns
        .list_topics()
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("list topics")
        .into_iter()
        .filter_map(|t| t.topic_arn)
        .filter(|arn| arn.rsplit(':').next().is_some_and(|n| n.starts_with(prefix)))
        .collect();
    let mut subscriptions = 0;
    for arn in &topics {
        subscriptions += sns
            .list_subscriptions_by_topic()
            .topic_arn(arn)
            .send()
            .await
            .expect("subs")
            .subscriptions()
            .len();
    }
    (sets, topics, subscriptions)
}

async fn create_queue(region: &str) -> String {
    emulator::sqs_queue(region, "events-queue").await.1
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_sets_converge_under_throttling_and_server_errors() {
    const REGION: &str = "eu-west-2";
    const N: usize = 20;
    let mut faults = emulator::fault_lock().await;
    faults.set_faults_in(REGION, Some(1.0), 0.10).await;
    let w = World::with(
        "hostile",
        WorldOptions {
            region: REGION,
            ses_rps: 1.0,
            ..Default::default()
        },
    )
    .await;
    let (sets, dests): (Api<ConfigurationSet>, Api<EventDestination>) = (w.api(), w.api());
    let queue = create_queue(REGION).await;
    let prefix = unique("hostile");
    create_pairs(&sets, &dests, &prefix, &queue, N).await;
    let stalled = Mutex::new(BTreeSet::new());
    wait_all_ready(&sets, &dests, &stalled, N, Duration::from_secs(420)).await;
    let stalled = stalled.into_inner().expect("lock");
    assert!(
        stalled.is_empty(),
        "throttling and 5xx must never mark anything Stalled: {stalled:?}"
    );
    let retried: u64 = w
        .all_calls()
        .iter()
        .filter(|(k, _)| k.ends_with(":Throttled") || k.ends_with(":Server"))
        .map(|(_, v)| v)
        .sum();
    assert!(retried > 0, "the faults were really hit: {:?}", w.all_calls());
    drop(faults);
    let (aws_sets, topics, subscriptions) = aws_inventory(REGION, &prefix).await;
    assert_eq!(aws_sets.len(), N, "{aws_sets:?}");
    assert_eq!(topics.len(), N, "no duplicate topics: {topics:?}");
    assert_eq!(subscriptions, N, "exactly one subscription per topic");
}

struct Operator(Child);

impl Operator {
    fn start(w: &World) -> Self {
        let child = support::operator_command(w)
            .args(["--leader-election=false", "--metrics-addr", "127.0.0.1:0"])
            .spawn()
            .expect("start the operator binary");
        Operator(child)
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sigkill_halfway_leaves_no_duplicates_or_orphans() {
    const REGION: &str = "ap-southeast-2";
    const N: usize = 20;
    let w = World::with(
        "sigkill",
        WorldOptions {
            region: REGION,
            start_operator: false,
            ..Default::default()
        },
    )
    .await;
    let (sets, dests): (Api<ConfigurationSet>, Api<EventDestination>) = (w.api(), w.api());
    let queue = create_queue(REGION).await;
    let prefix = unique("killed");
    let mut operator = Operator::start(&w);
    create_pairs(&sets, &dests, &prefix, &queue, N).await;
    let stalled = Mutex::new(BTreeSet::new());
    eventually("some but not all converged", Duration::from_secs(60), || {
        let (sets, dests, stalled) = (&sets, &dests, &stalled);
        async move {
            match ready_counts(sets, dests, stalled).await? {
                (s, d) if s + d >= 4 => Ok(()),
                (s, d) => Err(format!("{s} sets, {d} destinations Ready")),
            }
        }
    })
    .await;
    operator.0.kill().expect("SIGKILL");
    operator.0.wait().expect("reaped");
    let (s, d) = ready_counts(&sets, &dests, &stalled).await.expect("counts");
    assert!(
        s + d < 2 * N,
        "killed before finishing ({s} sets, {d} destinations Ready)"
    );

    let _operator = Operator::start(&w);
    wait_all_ready(&sets, &dests, &stalled, N, Duration::from_secs(120)).await;
    let stalled = stalled.into_inner().expect("lock");
    assert!(stalled.is_empty(), "{stalled:?}");
    let (aws_sets, topics, subscriptions) = aws_inventory(REGION, &prefix).await;
    assert_eq!(
        (aws_sets.len(), topics.len(), subscriptions),
        (N, N, N),
        "no duplicates: {aws_sets:?} {topics:?}"
    );

    // Delete everything: nothing may be left behind in AWS.
    for i in 0..N {
        dests
            .delete(&format!("ed-{i}"), &DeleteParams::default())
            .await
            .expect("delete ed");
        sets.delete(&format!("cs-{i}"), &DeleteParams::default())
            .await
            .expect("delete cs");
    }
    eventually("all deleted in Kubernetes", Duration::from_secs(120), || async {
        let left = sets
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?
            .items
            .len()
            + dests
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?
                .items
                .len();
        if left == 0 {
            Ok(())
        } else {
            Err(format!("{left} objects left"))
        }
    })
    .await;
    let (aws_sets, topics, subscriptions) = aws_inventory(REGION, &prefix).await;
    let events: Vec<String> = Api::<k8s_openapi::api::core::v1::Event>::namespaced(w.client.clone(), &w.ns)
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .map(|e| format!("{:?} {:?} {:?}", e.involved_object.name, e.reason, e.message))
        .collect();
    assert_eq!(
        (aws_sets.len(), topics.len(), subscriptions),
        (0, 0, 0),
        "orphans: {aws_sets:?} {topics:?}; events: {events:#?}"
    );
}
