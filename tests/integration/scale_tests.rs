//! The controller at scale, as a user sees it: it converges when configured
//! above what SES grants (the scheduler adapts to 429s instead of
//! livelocking), a namespace label change re-evaluates `allowedNamespaces`
//! at once (watch-fed, not on the next drift pass), unchanged rates cause no
//! status writes, and transient 5xx during drift checks never flip Ready.
//!
//! Each test runs in a region no other test uses, so the region-scoped
//! faults of one test do not reach another.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use ses_reputation_operator::api::{ConfigurationSet, EventDestination, ReputationPolicy};

use crate::support::{self, World, WorldOptions, apply_json, condition, emulator, eventually, unique};
use crate::support::{cs_object, ed_status, set_status, wait_condition};

fn set_conditions(cs: &ConfigurationSet) -> Vec<Condition> {
    cs.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default()
}

fn ed_conditions(ed: &EventDestination) -> Vec<Condition> {
    ed.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default()
}

/// An EventDestination on `set` publishing to an operator-created SNS topic.
fn sns_destination(name: &str, set: &str, topic: &str) -> Value {
    json!({
        "apiVersion": "ses.reputation.io/v1alpha1", "kind": "EventDestination",
        "metadata": {"name": name},
        "spec": {
            "configurationSetRef": {"name": set},
            "sns": {"topic": {"name": topic}},
        },
    })
}

/// Successful, throttled and failed calls the operator made, for messages.
fn call_summary(w: &World) -> String {
    let calls = w.all_calls();
    let sum = |suffix: &str| -> u64 {
        calls
            .iter()
            .filter(|(k, _)| k.starts_with("sesv2:") && k.ends_with(suffix))
            .map(|(_, v)| v)
            .sum()
    };
    format!(
        "SES ok {}, throttled {}, server errors {}; all calls {calls:?}",
        sum(":ok"),
        sum(":Throttled"),
        sum(":Server")
    )
}

/// Ready and Stalled counts of every set and destination in the namespace;
/// any Stalled=True seen goes into `stalled`.
async fn ready_counts(
    sets: &Api<ConfigurationSet>,
    dests: &Api<EventDestination>,
    stalled: &Mutex<Vec<String>>,
) -> Result<(usize, usize), String> {
    let mut ready = (0, 0);
    for cs in sets.list(&ListParams::default()).await.map_err(|e| e.to_string())? {
        let conds = set_conditions(&cs);
        if let Some(c) = condition(&conds, "Stalled").filter(|c| c.0 == "True") {
            stalled
                .lock()
                .expect("lock")
                .push(format!("ConfigurationSet {}: {} {}", cs.name_any(), c.1, c.2));
        }
        let current = cs.status.as_ref().and_then(|s| s.observed_generation) == cs.metadata.generation;
        ready.0 += usize::from(current && condition(&conds, "Ready").is_some_and(|c| c.0 == "True"));
    }
    for ed in dests.list(&ListParams::default()).await.map_err(|e| e.to_string())? {
        let conds = ed_conditions(&ed);
        if let Some(c) = condition(&conds, "Stalled").filter(|c| c.0 == "True") {
            stalled
                .lock()
                .expect("lock")
                .push(format!("EventDestination {}: {} {}", ed.name_any(), c.1, c.2));
        }
        let current = ed.status.as_ref().and_then(|s| s.observed_generation) == ed.metadata.generation;
        ready.1 += usize::from(current && condition(&conds, "Ready").is_some_and(|c| c.0 == "True"));
    }
    Ok(ready)
}

/// Configuration sets whose name starts with `prefix` in `region`, each
/// with the names of its event destinations; and the SNS topics with the
/// prefix.
async fn aws_inventory(region: &str, prefix: &str) -> (Vec<(String, Vec<String>)>, Vec<String>) {
    let config = emulator::sdk_config_in(region).await;
    let (ses, sns) = (aws_sdk_sesv2::Client::new(&config), aws_sdk_sns::Client::new(&config));
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = ses
            .list_configuration_sets()
            .set_next_token(token)
            .send()
            .await
            .expect("list configuration sets");
        names.extend(
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
    let mut sets = Vec::new();
    for name in names {
        let dests = ses
            .get_configuration_set_event_destinations()
            .configuration_set_name(&name)
            .send()
            .await
            .expect("event destinations")
            .event_destinations()
            .iter()
            .map(|d| d.name().to_string())
            .collect();
        sets.push((name, dests));
    }
    sets.sort();
    let topics = sns
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
    (sets, topics)
}

/// 4 ConfigurationSets and 4 EventDestinations with SNS topics; SES grants
/// 0.5 control-plane call/s in the region, the operator is configured for
/// 2.5/s (5x too many).
///
/// The bound: a new set and its destination need 2 SES control-plane calls
/// (CreateConfigurationSet, CreateConfigurationSetEventDestination; SNS is
/// not under the SES limit) and the SesAccount 1 (GetAccount): 2 x 4 + 1 =
/// 9 calls, 18 s at the 0.5/s SES grants (burst 1). 60 s is a bit over
/// three times that, plus a few seconds for the first 429s: the scheduler
/// may spend up to two thirds of the budget learning the real rate (429
/// probes, halving, recovering) and still pass, while one that keeps
/// re-spending the only token at the configured 2.5/s never creates
/// anything (the livelock this guards against: 0 sets in 120 s).
#[tokio::test(flavor = "multi_thread")]
async fn converges_when_configured_above_what_ses_grants() {
    const REGION: &str = "ap-south-2";
    const N: usize = 4;
    const BOUND: Duration = Duration::from_secs(60);
    let mut faults = emulator::fault_lock().await;
    faults.set_faults_in(REGION, Some(0.5), 0.0).await;
    let w = World::with(
        "scale-grant",
        WorldOptions {
            region: REGION,
            ses_rps: 2.5,
            ..Default::default()
        },
    )
    .await;
    let (sets, dests): (Api<ConfigurationSet>, Api<EventDestination>) = (w.api(), w.api());
    let prefix = unique("grant");
    let started = tokio::time::Instant::now();
    for i in 0..N {
        apply_json(
            &sets,
            cs_object(&format!("cs-{i}"), json!({"name": format!("{prefix}-cs-{i}")})),
        )
        .await;
        apply_json(
            &dests,
            sns_destination(&format!("ed-{i}"), &format!("cs-{i}"), &format!("{prefix}-topic-{i}")),
        )
        .await;
    }
    let stalled = Mutex::new(Vec::new());
    eventually("all sets and destinations Ready", BOUND, || {
        let (sets, dests, stalled, w) = (&sets, &dests, &stalled, &w);
        async move {
            match ready_counts(sets, dests, stalled).await? {
                (s, d) if s == N && d == N => Ok(()),
                (s, d) => Err(format!(
                    "{s}/{N} sets and {d}/{N} destinations Ready after {:?}; {}",
                    started.elapsed(),
                    call_summary(w)
                )),
            }
        }
    })
    .await;
    let took = started.elapsed();
    eprintln!(
        "converges_when_configured_above_what_ses_grants: all Ready after {took:?}; {}",
        call_summary(&w)
    );
    let stalled = stalled.into_inner().expect("lock");
    assert!(
        stalled.is_empty(),
        "throttling must never mark anything Stalled: {stalled:?}"
    );
    let throttled: u64 = w
        .all_calls()
        .iter()
        .filter(|(k, _)| k.ends_with(":Throttled"))
        .map(|(_, v)| v)
        .sum();
    assert!(
        throttled > 0,
        "SES really refused calls above 0.5/s: {}",
        call_summary(&w)
    );

    // The inventory reads SES too: lift the throttle first so the test's
    // own reads are not refused.
    faults.set_faults_in(REGION, None, 0.0).await;
    let (aws_sets, topics) = aws_inventory(REGION, &prefix).await;
    let expected: Vec<(String, Vec<String>)> = (0..N)
        .map(|i| (format!("{prefix}-cs-{i}"), vec![format!("ed-{i}")]))
        .collect();
    assert_eq!(
        aws_sets, expected,
        "exactly {N} sets with one destination each, no duplicates"
    );
    assert_eq!(topics.len(), N, "one topic per destination: {topics:?}");
    drop(faults);
}

/// `allowedNamespaces` selects by namespace label; the drift interval is
/// 300 s, so only a watch on Namespaces can turn the set within 10 s.
#[tokio::test(flavor = "multi_thread")]
async fn namespace_label_change_reevaluates_allowed_namespaces() {
    const REGION: &str = "me-central-1";
    const PROMPT: Duration = Duration::from_secs(10);
    let w = World::with(
        "scale-nslabel",
        WorldOptions {
            region: REGION,
            drift: Duration::from_secs(300),
            allowed_namespaces: Some(json!({"matchLabels": {"ses-allowed": "yes"}})),
            ..Default::default()
        },
    )
    .await;
    let api: Api<ConfigurationSet> = w.api();
    let namespaces: Api<Namespace> = Api::all(w.client.clone());
    let aws_name = unique("nslabel");
    apply_json(&api, cs_object("gated", json!({"name": aws_name}))).await;
    let cs = wait_condition(&api, "gated", "Stalled", "True", "AccountNotAllowed").await;
    let (ready, _, _) = condition(&set_conditions(&cs), "Ready").expect("Ready condition");
    assert_eq!(ready, "False");

    let label = |value: Value| {
        let namespaces = namespaces.clone();
        let ns = w.ns.clone();
        async move {
            namespaces
                .patch(
                    &ns,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"labels": {"ses-allowed": value}}})),
                )
                .await
                .expect("label namespace");
        }
    };

    label(json!("yes")).await;
    let at = tokio::time::Instant::now();
    eventually("Ready after the namespace was labelled", PROMPT, || async {
        let cs = api.get("gated").await.map_err(|e| e.to_string())?;
        match set_status(&cs) {
            Some((observed, conds))
                if observed == cs.metadata.generation && condition(&conds, "Ready").is_some_and(|c| c.0 == "True") =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    eprintln!(
        "namespace_label_change_reevaluates_allowed_namespaces: Ready {:?} after labelling",
        at.elapsed()
    );
    aws_sdk_sesv2::Client::new(&emulator::sdk_config_in(REGION).await)
        .get_configuration_set()
        .configuration_set_name(&aws_name)
        .send()
        .await
        .expect("the set exists in SES once the namespace is allowed");

    label(Value::Null).await;
    let at = tokio::time::Instant::now();
    eventually("AccountNotAllowed after the label was removed", PROMPT, || async {
        let cs = api.get("gated").await.map_err(|e| e.to_string())?;
        let conds = set_conditions(&cs);
        match (condition(&conds, "Stalled"), condition(&conds, "Ready")) {
            (Some((s, r, _)), Some((ready, _, _))) if s == "True" && r == "AccountNotAllowed" && ready == "False" => {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    eprintln!(
        "namespace_label_change_reevaluates_allowed_namespaces: AccountNotAllowed {:?} after unlabelling",
        at.elapsed()
    );
}

/// Every version of one object that a watch delivers, as `view` renders it
/// (with its resourceVersion), from the first list on.
struct Recorder {
    seen: Arc<Mutex<Vec<(String, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    fn start<K>(api: Api<K>, name: &str, view: fn(&K) -> String) -> Self
    where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
        K::DynamicType: Default,
    {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let sink = seen.clone();
        let task = tokio::spawn(async move {
            let mut stream = watcher(api, config).default_backoff().applied_objects().boxed();
            while let Some(item) = stream.next().await {
                if let Ok(obj) = item {
                    sink.lock()
                        .expect("lock")
                        .push((obj.resource_version().unwrap_or_default(), view(&obj)));
                }
            }
        });
        Recorder { seen, task }
    }

    fn seen(&self) -> Vec<(String, String)> {
        self.seen.lock().expect("lock").clone()
    }

    /// Waits until the watch delivered the object at least once.
    async fn primed(&self, what: &str) {
        eventually(&format!("watch of {what} started"), Duration::from_secs(10), || async {
            if self.seen.lock().expect("lock").is_empty() {
                Err("nothing yet".to_string())
            } else {
                Ok(())
            }
        })
        .await;
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn rate(value: Option<&String>) -> Option<f64> {
    value.and_then(|v| v.trim().parse().ok())
}

async fn seed_rates(region: &str, aws_name: &str, bounce: f64, complaint: f64, minutes_ago: u64) {
    let cw = aws_sdk_cloudwatch::Client::new(&emulator::sdk_config_in(region).await);
    let at = std::time::SystemTime::now() - Duration::from_secs(minutes_ago * 60);
    let datum = |metric: &str, value: f64| {
        MetricDatum::builder()
            .metric_name(metric)
            .dimensions(
                Dimension::builder()
                    .name("ses:configuration-set")
                    .value(aws_name)
                    .build(),
            )
            .value(value)
            .unit(StandardUnit::None)
            .timestamp(aws_smithy_types::DateTime::from(at))
            .build()
    };
    cw.put_metric_data()
        .namespace("AWS/SES")
        .metric_data(datum("Reputation.BounceRate", bounce))
        .metric_data(datum("Reputation.ComplaintRate", complaint))
        .send()
        .await
        .expect("PutMetricData");
}

/// An object as JSON without the fields every write changes.
fn object_view<K: serde::Serialize>(obj: &K) -> String {
    let mut v = serde_json::to_value(obj).unwrap_or_default();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        meta.remove("resourceVersion");
    }
    v.to_string()
}

/// The paths at which two JSON values differ, with both values.
fn diff_paths(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                diff_paths(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    &format!("{path}.{k}"),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                diff_paths(p, q, &format!("{path}[{i}]"), out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} -> {b}")),
        _ => {}
    }
}

/// What changed between the consecutive versions a [`Recorder`] saw.
fn changes(seen: &[(String, String)]) -> String {
    let mut lines = vec![format!("{} writes in 60 s", seen.len().saturating_sub(1))];
    for pair in seen.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let (x, y): (Value, Value) = (
            serde_json::from_str(&a.1).unwrap_or_default(),
            serde_json::from_str(&b.1).unwrap_or_default(),
        );
        let mut diffs = Vec::new();
        diff_paths(&x, &y, "", &mut diffs);
        lines.push(format!("rv {} -> {}: {}", a.0, b.0, diffs.join("; ")));
    }
    lines.join("\n")
}

/// Rates read every 2 s and never changing: after the first reading shows,
/// neither the set nor the policy that covers it is written again for a
/// minute (30 reads).
#[tokio::test(flavor = "multi_thread")]
async fn no_status_writes_while_rates_are_unchanged() {
    const REGION: &str = "eu-central-2";
    const BOUNCE: f64 = 0.01;
    const COMPLAINT: f64 = 0.0002;
    let w = World::with(
        "scale-quiet",
        WorldOptions {
            region: REGION,
            rate_interval: Duration::from_secs(2),
            ..Default::default()
        },
    )
    .await;
    let (sets, policies): (Api<ConfigurationSet>, Api<ReputationPolicy>) = (w.api(), w.api());
    let aws_name = unique("quiet");
    seed_rates(REGION, &aws_name, BOUNCE, COMPLAINT, 10).await;
    let mut set = cs_object("quiet", json!({"name": aws_name}));
    set["metadata"]["labels"] = json!({"tier": "quiet"});
    apply_json(&sets, set).await;
    apply_json(
        &policies,
        json!({
            "apiVersion": "ses.reputation.io/v1alpha1", "kind": "ReputationPolicy",
            "metadata": {"name": "quiet"},
            "spec": {"selector": {"matchLabels": {"tier": "quiet"}}},
        }),
    )
    .await;

    eventually("the rates in the set's status", Duration::from_secs(60), || async {
        let cs = sets.get("quiet").await.map_err(|e| e.to_string())?;
        let rep = cs.status.as_ref().and_then(|s| s.reputation.clone());
        let shown = rep.as_ref().is_some_and(|r| {
            rate(r.bounce_rate.as_ref()) == Some(BOUNCE)
                && rate(r.complaint_rate.as_ref()) == Some(COMPLAINT)
                && r.level.as_deref() == Some("Healthy")
        });
        let ready = condition(&set_conditions(&cs), "Ready").is_some_and(|c| c.0 == "True");
        if shown && ready {
            Ok(())
        } else {
            Err(format!("ready {ready}, reputation {rep:?}"))
        }
    })
    .await;
    eventually(
        "the policy Ready, covering the set",
        Duration::from_secs(30),
        || async {
            let p = policies.get("quiet").await.map_err(|e| e.to_string())?;
            let status = p.status.clone().unwrap_or_default();
            let ready = status.observed_generation == p.metadata.generation
                && condition(&status.conditions, "Ready").is_some_and(|c| c.0 == "True");
            if ready && status.covered == ["quiet"] {
                Ok(())
            } else {
                Err(format!("{status:?}"))
            }
        },
    )
    .await;

    // Writes that follow from the first reading (the policy picking up the
    // set's new status) may still land: wait until neither object changed
    // for three rate intervals (at most 20 s; if they never settle, the
    // check below shows what keeps changing).
    let versions = || async {
        (
            sets.get("quiet").await.expect("get set").resource_version(),
            policies.get("quiet").await.expect("get policy").resource_version(),
        )
    };
    let mut last = versions().await;
    let mut stable_since = tokio::time::Instant::now();
    let settle_deadline = stable_since + Duration::from_secs(20);
    while stable_since.elapsed() < Duration::from_secs(6) && tokio::time::Instant::now() < settle_deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = versions().await;
        if now != last {
            last = now;
            stable_since = tokio::time::Instant::now();
        }
    }

    let set_watch = Recorder::start(sets.clone(), "quiet", |cs: &ConfigurationSet| object_view(cs));
    let policy_watch = Recorder::start(policies.clone(), "quiet", |p: &ReputationPolicy| object_view(p));
    set_watch.primed("the set").await;
    policy_watch.primed("the policy").await;
    let before = (
        sets.get("quiet").await.expect("set"),
        policies.get("quiet").await.expect("policy"),
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    let after = (
        sets.get("quiet").await.expect("set"),
        policies.get("quiet").await.expect("policy"),
    );
    let (set_seen, policy_seen) = (set_watch.seen(), policy_watch.seen());
    let reads = w.calls("cloudwatch:GetMetricData");
    eprintln!(
        "no_status_writes_while_rates_are_unchanged: {} set and {} policy versions seen in 60 s, {reads} GetMetricData calls in all",
        set_seen.len(),
        policy_seen.len()
    );
    assert!(reads >= 20, "the rates were really read every 2 s: {reads} reads");
    assert_eq!(
        before.0.resource_version(),
        after.0.resource_version(),
        "the set was written while its rates did not change: {}",
        changes(&set_seen)
    );
    assert_eq!(
        before.1.resource_version(),
        after.1.resource_version(),
        "the policy was written while no rate changed: {}",
        changes(&policy_seen)
    );
}

/// The Ready condition as "status reason message", or "absent".
fn ready_view(conds: &[Condition]) -> String {
    condition(conds, "Ready").map_or_else(|| "absent".to_string(), |c| format!("{} {} {}", c.0, c.1, c.2))
}

/// Drift checks every second while 30% of SES, SNS and CloudWatch calls
/// fail with a 500 for 30 s: a failed check is retried, it is not news, so
/// no watcher of the set or the destination ever sees Ready leave True.
#[tokio::test(flavor = "multi_thread")]
async fn transient_drift_errors_do_not_flip_ready() {
    const REGION: &str = "ap-northeast-3";
    let mut faults = emulator::fault_lock().await;
    let w = World::with(
        "scale-flaky",
        WorldOptions {
            region: REGION,
            drift: Duration::from_secs(1),
            ..Default::default()
        },
    )
    .await;
    let (sets, dests): (Api<ConfigurationSet>, Api<EventDestination>) = (w.api(), w.api());
    let prefix = unique("flaky");
    apply_json(&sets, cs_object("steady", json!({"name": format!("{prefix}-cs")}))).await;
    apply_json(
        &dests,
        sns_destination("steady-events", "steady", &format!("{prefix}-topic")),
    )
    .await;
    support::wait_ready(&sets, "steady", set_status).await;
    support::wait_ready(&dests, "steady-events", ed_status).await;

    let set_watch = Recorder::start(sets.clone(), "steady", |cs: &ConfigurationSet| {
        ready_view(&set_conditions(cs))
    });
    let dest_watch = Recorder::start(dests.clone(), "steady-events", |ed: &EventDestination| {
        ready_view(&ed_conditions(ed))
    });
    set_watch.primed("the set").await;
    dest_watch.primed("the destination").await;

    let failed_before: u64 = w
        .all_calls()
        .iter()
        .filter(|(k, _)| k.ends_with(":Server"))
        .map(|(_, v)| v)
        .sum();
    faults.set_faults_in(REGION, None, 0.3).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    faults.set_faults_in(REGION, None, 0.0).await;
    // A flip written by a check that failed just before the faults ended
    // still counts: give it a moment to arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let failed: u64 = w
        .all_calls()
        .iter()
        .filter(|(k, _)| k.ends_with(":Server"))
        .map(|(_, v)| v)
        .sum::<u64>()
        - failed_before;
    drop(faults);

    let (set_seen, dest_seen) = (set_watch.seen(), dest_watch.seen());
    eprintln!(
        "transient_drift_errors_do_not_flip_ready: {failed} calls failed with 5xx; {} set and {} destination versions seen",
        set_seen.len(),
        dest_seen.len()
    );
    assert!(
        failed > 0,
        "the drift checks really hit the 5xx faults: {}",
        call_summary(&w)
    );
    for (what, seen) in [("ConfigurationSet", &set_seen), ("EventDestination", &dest_seen)] {
        let flipped: Vec<_> = seen.iter().filter(|(_, ready)| !ready.starts_with("True ")).collect();
        assert!(
            flipped.is_empty(),
            "{what} Ready left True during transient 5xx: {flipped:?} (all seen: {seen:?})"
        );
    }
    // And still Ready now, for the current generation.
    let cs = sets.get("steady").await.expect("set");
    let now = ready_view(&set_conditions(&cs));
    assert!(now.starts_with("True "), "set Ready now: {now}");
    let ed = dests.get("steady-events").await.expect("destination");
    let now = ready_view(&ed_conditions(&ed));
    assert!(now.starts_with("True "), "destination Ready now: {now}");
}
