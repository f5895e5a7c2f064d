//! What Flux, kpt and `kubectl wait`-style tooling see: the status of every
//! kind as kstatus (sigs.k8s.io/cli-utils `pkg/kstatus/status`, the real
//! library, built by tools/kstatus.sh) computes it. A dead end must read
//! `Failed` with a one-line message (GitOps tools stop waiting and show
//! it), work in progress `InProgress`, a Ready object `Current`.

use std::time::Duration;

use kube::api::Api;
use serde::Serialize;
use serde_json::json;
use ses_reputation_operator::api::{ConfigurationSet, EventDestination, ReputationPolicy, SesAccount};

use crate::support::argocd::argocd_health;
use crate::support::emulator::Emulator;
use crate::support::kstatus::kstatus;
use crate::support::{World, apply_json, eventually, unique};
use crate::support::{cs_object, wait_set_ready};

/// Polls `api` until kstatus says `want` for the object; returns the message.
async fn wait_kstatus<K>(api: &Api<K>, name: &str, want: &str) -> String
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + Serialize + std::fmt::Debug,
{
    eventually(
        &format!("kstatus {want} for {name}"),
        Duration::from_secs(60),
        || async {
            let obj = api.get(name).await.map_err(|e| e.to_string())?;
            match kstatus(&obj) {
                (status, message) if status == want => Ok(message),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await
}

/// A dead end's message: one line (checked by [`kstatus`]), says what is
/// wrong, and is not just the condition's reason.
fn assert_actionable(message: &str, needle: &str) {
    assert!(
        message.contains(needle) && message.len() > needle.len(),
        "message {message:?} should explain {needle:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ready_is_current_and_work_in_progress_is_in_progress() {
    let mut w = World::new("kstatus-ok").await;
    let sets: Api<ConfigurationSet> = w.api();
    apply_json(&sets, cs_object("ok", json!({}))).await;
    wait_set_ready(&sets, "ok").await;
    wait_kstatus(&sets, "ok", "Current").await;

    // Applied before its set (GitOps applies in any order): waiting, not failed.
    let dests: Api<EventDestination> = w.api();
    apply_json(
        &dests,
        json!({
            "apiVersion": "ses.reputation.io/v1alpha1",
            "kind": "EventDestination",
            "metadata": {"name": "early"},
            "spec": {"configurationSetRef": {"name": "later"}, "cloudWatch": {"dimensions": [
                {"name": "team", "source": "MESSAGE_TAG", "defaultValue": "none"}]}},
        }),
    )
    .await;
    let message = eventually("early waits for its set", Duration::from_secs(60), || async {
        let obj = dests.get("early").await.map_err(|e| e.to_string())?;
        match kstatus(&obj) {
            (status, message) if status == "InProgress" && message.contains("later") => Ok(message),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_actionable(&message, "ConfigurationSet later does not exist");

    // A spec change the operator has not acted on yet: observedGeneration
    // trails metadata.generation.
    w.stop().await;
    apply_json(&sets, cs_object("ok", json!({"sending": {"enabled": false}}))).await;
    let message = wait_kstatus(&sets, "ok", "InProgress").await;
    assert!(message.contains("generation is 2"), "{message}");

    // An object the operator has not seen at all is in progress too (the
    // CRDs default status.observedGeneration to 0), not Current.
    apply_json(&sets, cs_object("unseen", json!({}))).await;
    let obj = sets.get("unseen").await.expect("get");
    assert_eq!(obj.status.as_ref().and_then(|s| s.observed_generation), Some(0));
    let (status, message) = kstatus(&obj);
    assert_eq!(status, "InProgress", "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_dead_end_is_failed_with_a_one_line_message() {
    let w = World::new("kstatus-dead").await;
    let emulator = Emulator;

    // AccessDenied: the SesAccount's role may not create configuration sets.
    let role = format!("arn:aws:iam::123456789012:role/{}", unique("denied"));
    emulator.deny(&role, &["sesv2:CreateConfigurationSet"]).await;
    let denied_account = format!("{}-denied", w.account);
    apply_json::<SesAccount>(
        &Api::all(w.client.clone()),
        json!({
            "apiVersion": "ses.reputation.io/v1alpha1",
            "kind": "SesAccount",
            "metadata": {"name": denied_account, "labels": {"test": w.ns}},
            "spec": {"region": "us-east-1", "roleArn": role},
        }),
    )
    .await;
    let sets: Api<ConfigurationSet> = w.api();
    let aws_name = unique("denied");
    apply_json(
        &sets,
        cs_object("denied", json!({"name": aws_name, "accountRef": denied_account})),
    )
    .await;
    let message = wait_kstatus(&sets, "denied", "Failed").await;
    assert_actionable(&message, "not authorized to perform: ses:CreateConfigurationSet");

    // An EventDestination of a Stalled set is a dead end too.
    let dests: Api<EventDestination> = w.api();
    apply_json(
        &dests,
        json!({
            "apiVersion": "ses.reputation.io/v1alpha1",
            "kind": "EventDestination",
            "metadata": {"name": "orphan"},
            "spec": {"configurationSetRef": {"name": "denied"}, "cloudWatch": {"dimensions": [
                {"name": "team", "source": "MESSAGE_TAG", "defaultValue": "none"}]}},
        }),
    )
    .await;
    let message = wait_kstatus(&dests, "orphan", "Failed").await;
    assert_actionable(&message, "ConfigurationSet denied is Stalled");
    // Argo CD says the same of both dead ends.
    for (health, message) in [
        argocd_health(&sets.get("denied").await.expect("denied")),
        argocd_health(&dests.get("orphan").await.expect("orphan")),
    ] {
        assert_eq!(health, "Degraded", "{message}");
        assert_actionable(&message, "");
    }

    // ReputationPolicies whose notify target is refused or missing.
    let policies: Api<ReputationPolicy> = w.api();
    let policy = |name: &str, notify: serde_json::Value| {
        json!({
            "apiVersion": "ses.reputation.io/v1alpha1",
            "kind": "ReputationPolicy",
            "metadata": {"name": name},
            "spec": {"selector": {}, "actions": {"notify": notify}},
        })
    };
    apply_json(
        &policies,
        policy(
            "foreign",
            json!({"topicArn": "arn:aws:sns:us-east-1:123456789012:another-teams-topic"}),
        ),
    )
    .await;
    let message = wait_kstatus(&policies, "foreign", "Failed").await;
    assert_actionable(&message, "allowedTopicArns");
    apply_json(
        &policies,
        policy("missing", json!({"eventDestinationRef": {"name": "nope"}})),
    )
    .await;
    let message = wait_kstatus(&policies, "missing", "Failed").await;
    assert_actionable(&message, "nope");

    // Nothing was created by the denied role.
    assert!(
        emulator
            .writes_to(&format!("configuration-set/{aws_name}"))
            .await
            .is_empty()
    );
    emulator.deny(&role, &[]).await;
}

/// A set whose SesAccount never appears is Failed after the grace period,
/// also when the operator shards accounts with a selector.
#[tokio::test(flavor = "multi_thread")]
async fn a_set_whose_account_never_appears_is_failed() {
    let w = World::with(
        "kstatus-noacct",
        crate::support::WorldOptions {
            account_grace: Duration::from_secs(3),
            ..Default::default()
        },
    )
    .await;
    let sets: Api<ConfigurationSet> = w.api();
    let account = unique("never");
    apply_json(&sets, cs_object("lost", json!({"accountRef": account}))).await;
    let obj = eventually("lost Failed", Duration::from_secs(120), || async {
        let obj = sets.get("lost").await.map_err(|e| e.to_string())?;
        match kstatus(&obj) {
            (s, m) if s == "Failed" => Ok(m),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_actionable(&obj, &format!("SesAccount {account} does not exist"));
}

/// A mistyped `configurationSetRef` is a dead end like a missing account:
/// InProgress for the grace period, then Failed; the set's creation
/// still brings the destination to Current.
#[tokio::test(flavor = "multi_thread")]
async fn a_destination_whose_set_never_appears_is_failed_until_it_does() {
    let w = World::with(
        "kstatus-noset",
        crate::support::WorldOptions {
            account_grace: Duration::from_secs(3),
            ..Default::default()
        },
    )
    .await;
    let (sets, dests): (Api<ConfigurationSet>, Api<EventDestination>) = (w.api(), w.api());
    let destination = json!({
        "apiVersion": "ses.reputation.io/v1alpha1", "kind": "EventDestination",
        "metadata": {"name": "typo"},
        "spec": {
            "configurationSetRef": {"name": "orderz"},
            "cloudWatch": {"dimensions": [{"name": "team", "source": "MESSAGE_TAG", "defaultValue": "none"}]},
        },
    });
    apply_json(&dests, destination).await;
    let message = eventually("typo Failed", Duration::from_secs(60), || async {
        let obj = dests.get("typo").await.map_err(|e| e.to_string())?;
        match kstatus(&obj) {
            (s, m) if s == "Failed" => Ok(m),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert!(message.contains("ConfigurationSet orderz does not exist"), "{message}");
    apply_json(&sets, cs_object("orderz", json!({"name": unique("orderz")}))).await;
    eventually("typo Current once the set exists", Duration::from_secs(60), || async {
        let obj = dests.get("typo").await.map_err(|e| e.to_string())?;
        match kstatus(&obj) {
            (s, _) if s == "Current" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}
