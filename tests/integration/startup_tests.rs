//! What a start (a restart, a failover) does before the caches have their
//! first full list: nothing that rests on an object being absent from a
//! cache. Deletions made while the operator was down still clean up AWS,
//! and objects in allowed namespaces raise no false account warnings and
//! keep `Ready`.

use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, DeleteParams};
use serde_json::json;
use ses_reputation_operator::api::{ConfigurationSet, EventDestination, SesAccount};

use crate::support::{
    World, WorldOptions, apply_json, cloudwatch_destination, cs_object, eventually, ses_client, unique, wait_set_ready,
};

/// Enough objects that the first passes of a start run while the other
/// stores are still being listed.
const OBJECTS: usize = 16;

fn options(prefix: &str) -> WorldOptions {
    // Namespaces matter too: the account lets only labelled ones in.
    WorldOptions {
        allowed_namespaces: Some(json!({"matchLabels": {"team": prefix}})),
        ..Default::default()
    }
}

/// Events in the world's namespace with one of `reasons`.
async fn events_with(w: &World, reasons: &[&str]) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(w.client.clone(), &w.ns);
    let list = events.list(&Default::default()).await.expect("list events");
    list.items
        .into_iter()
        .filter(|e| reasons.contains(&e.reason.as_deref().unwrap_or_default()))
        .map(|e| format!("{:?} {:?}: {:?}", e.involved_object.name, e.reason, e.message))
        .collect()
}

async fn ready_sets(sets: &Api<ConfigurationSet>) -> Vec<(String, String)> {
    let mut names = Vec::new();
    for i in 0..OBJECTS {
        let name = format!("s{i:02}");
        apply_json(sets, cs_object(&name, json!({"name": unique(&name)}))).await;
        names.push(name);
    }
    let mut out = Vec::new();
    for name in names {
        let cs = wait_set_ready(sets, &name).await;
        let aws = cs.status.and_then(|s| s.aws_name).expect("aws name");
        out.push((name, aws));
    }
    out
}

/// A CloudWatch destination `<set>-cw` on each set, all Ready.
async fn ready_destinations(dests: &Api<EventDestination>, sets: &[(String, String)]) {
    for (name, _) in sets {
        apply_json(dests, cloudwatch_destination(&format!("{name}-cw"), name, "team")).await;
    }
    for (name, _) in sets {
        crate::support::wait_ready(dests, &format!("{name}-cw"), crate::support::ed_status).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deletions_made_while_the_operator_was_down_clean_up_aws_when_it_starts() {
    let mut w = World::with("start-del", options("start-del")).await;
    let (sets, dests): (Api<ConfigurationSet>, Api<EventDestination>) = (w.api(), w.api());
    let created = ready_sets(&sets).await;
    ready_destinations(&dests, &created).await;

    w.stop().await;
    for (name, _) in &created {
        dests
            .delete(&format!("{name}-cw"), &DeleteParams::default())
            .await
            .expect("delete destination");
        sets.delete(name, &DeleteParams::default()).await.expect("delete set");
    }
    w.restart().await;
    eventually("every object is gone", Duration::from_secs(120), || async {
        let left = sets
            .list(&Default::default())
            .await
            .map_err(|e| e.to_string())?
            .items
            .len()
            + dests
                .list(&Default::default())
                .await
                .map_err(|e| e.to_string())?
                .items
                .len();
        if left == 0 { Ok(()) } else { Err(format!("{left} left")) }
    })
    .await;

    let ses = ses_client().await;
    for (name, aws) in &created {
        let found = ses.get_configuration_set().configuration_set_name(aws).send().await;
        assert!(found.is_err(), "{name}: configuration set {aws} is still in AWS");
    }
    let skipped = events_with(&w, &["DeleteSkipped"]).await;
    assert!(skipped.is_empty(), "deletions skipped: {skipped:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn restarts_raise_no_false_account_warnings_and_ready_never_flips() {
    let mut w = World::with("start-ready", options("start-ready")).await;
    let (sets, dests): (Api<ConfigurationSet>, Api<EventDestination>) = (w.api(), w.api());
    let created = ready_sets(&sets).await;
    ready_destinations(&dests, &created).await;
    let before = ready_since_all(&sets, &dests, &created).await;
    for _ in 0..5 {
        w.restart().await;
        eventually("the caches are synced", Duration::from_secs(30), || async {
            if w.ctx.health.is_synced() {
                Ok(())
            } else {
                Err("not yet".to_string())
            }
        })
        .await;
        // Every object's first pass of this start has run by now.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let warnings = events_with(&w, &["AccountNotFound", "AccountNotAllowed"]).await;
    assert!(warnings.is_empty(), "false account warnings: {warnings:#?}");
    assert_eq!(
        ready_since_all(&sets, &dests, &created).await,
        before,
        "Ready changed across the restarts"
    );
}

/// Each object's Ready status and when it last changed.
async fn ready_since_all(
    sets: &Api<ConfigurationSet>,
    dests: &Api<EventDestination>,
    created: &[(String, String)],
) -> Vec<(String, String, String)> {
    let ready = |name: &str, conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]| {
        let c = conditions.iter().find(|c| c.type_ == "Ready");
        (
            name.to_string(),
            c.map(|c| c.status.clone()).unwrap_or_default(),
            c.map(|c| format!("{} {} {}", c.last_transition_time.0, c.reason, c.message))
                .unwrap_or_default(),
        )
    };
    let mut out = Vec::new();
    for (name, _) in created {
        let cs = sets.get(name).await.expect("set");
        out.push(ready(name, &cs.status.map(|s| s.conditions).unwrap_or_default()));
        let ed_name = format!("{name}-cw");
        let ed = dests.get(&ed_name).await.expect("destination");
        out.push(ready(&ed_name, &ed.status.map(|s| s.conditions).unwrap_or_default()));
    }
    out
}

/// `--cluster-name` changed under objects that are in sync: without
/// `--previous-cluster-names` nothing is touched (the SesAccount and its
/// objects say why, Stalled `ClusterIdentityChanged`); with it, the
/// resources are re-tagged under the new name and everything is Ready.
#[tokio::test(flavor = "multi_thread")]
async fn a_changed_cluster_name_is_refused_until_it_is_migrated() {
    const REGION: &str = "il-central-1";
    let mut w = World::with("start-rename", crate::support::live::world_options(REGION)).await;
    let stream = crate::support::live::set_stream(&w, REGION, true).await;
    let sets: Api<ConfigurationSet> = w.api();
    let accounts: Api<SesAccount> = Api::all(w.client.clone());
    let aws = unique("renamed");
    apply_json(&sets, cs_object("renamed", json!({"name": aws}))).await;
    wait_set_ready(&sets, "renamed").await;
    let dests: Api<EventDestination> = w.api();
    let ed_topic = unique("renamed-bounces");
    apply_json(
        &dests,
        json!({
            "apiVersion": "ses.reputation.io/v1alpha1", "kind": "EventDestination",
            "metadata": {"name": "bounces"},
            "spec": {"configurationSetRef": {"name": "renamed"}, "sns": {"topic": {"name": ed_topic}}},
        }),
    )
    .await;
    crate::support::wait_ready(&dests, "bounces", crate::support::ed_status).await;
    let config = crate::support::emulator::sdk_config_in(REGION).await;
    let (sns, sqs) = (aws_sdk_sns::Client::new(&config), aws_sdk_sqs::Client::new(&config));
    let topic_owner = |arn: String| {
        let sns = sns.clone();
        async move {
            let tags = sns
                .list_tags_for_resource()
                .resource_arn(arn)
                .send()
                .await
                .expect("topic tags");
            tags.tags()
                .iter()
                .find(|t| t.key() == "ses.reputation.io/owner")
                .map(|t| t.value().to_string())
                .unwrap_or_default()
        }
    };
    let queue_owner = |url: String| {
        let sqs = sqs.clone();
        async move {
            let tags = sqs.list_queue_tags().queue_url(url).send().await.expect("queue tags");
            tags.tags()
                .and_then(|t| t.get("ses.reputation.io/owner").cloned())
                .unwrap_or_default()
        }
    };
    let stream_topic = stream["topicArn"].as_str().expect("stream topic").to_string();
    let stream_queue = stream["queueUrl"].as_str().expect("stream queue").to_string();
    let ed_topic_arn = format!("arn:aws:sns:{REGION}:123456789012:{ed_topic}");
    assert!(topic_owner(stream_topic.clone()).await.starts_with("test/"));
    assert_eq!(
        topic_owner(ed_topic_arn.clone()).await,
        format!("test/{}/bounces", w.ns)
    );
    let ses = aws_sdk_sesv2::Client::new(&config);
    let owner_tag = || async {
        let arn = format!("arn:aws:ses:{REGION}:123456789012:configuration-set/{aws}");
        let tags = ses
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .expect("tags");
        tags.tags()
            .iter()
            .find(|t| t.key() == "ses.reputation.io/owner")
            .map(|t| t.value().to_string())
    };
    assert_eq!(owner_tag().await, Some(format!("test/{}/renamed", w.ns)));

    w.restart_with(|s| s.cluster_name = "test-2".into()).await;
    let stalled = |reason: &'static str| {
        move |conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]| {
            conditions
                .iter()
                .find(|c| c.type_ == "Stalled")
                .filter(|c| c.status == "True" && c.reason == reason)
                .map(|c| c.message.clone())
        }
    };
    let message = eventually("the account refuses the new name", Duration::from_secs(30), || async {
        let a = accounts.get(&w.account).await.map_err(|e| e.to_string())?;
        let conditions = a.status.map(|s| s.conditions).unwrap_or_default();
        stalled("ClusterIdentityChanged")(&conditions).ok_or_else(|| format!("{conditions:?}"))
    })
    .await;
    assert!(message.contains("--previous-cluster-names=test"), "{message}");
    eventually("the set says so too", Duration::from_secs(30), || async {
        let cs = sets.get("renamed").await.map_err(|e| e.to_string())?;
        let conditions = cs.status.map(|s| s.conditions).unwrap_or_default();
        stalled("ClusterIdentityChanged")(&conditions).ok_or_else(|| format!("{conditions:?}"))
    })
    .await;
    let writes: Vec<String> = w
        .all_calls()
        .into_keys()
        .filter(|k| !k.contains(":Get") && !k.contains(":List") && !k.starts_with("sts:"))
        .collect();
    assert!(writes.is_empty(), "AWS writes under the refused name: {writes:?}");
    assert_eq!(owner_tag().await, Some(format!("test/{}/renamed", w.ns)));

    w.restart_with(|s| s.previous_cluster_names = vec!["test".into()]).await;
    wait_set_ready(&sets, "renamed").await;
    eventually("re-tagged under the new name", Duration::from_secs(30), || async {
        match owner_tag().await {
            Some(tag) if tag == format!("test-2/{}/renamed", w.ns) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let status = eventually("the account records the new name", Duration::from_secs(30), || async {
        let status = accounts
            .get(&w.account)
            .await
            .map_err(|e| e.to_string())?
            .status
            .unwrap_or_default();
        match status.cluster_identity.as_deref() {
            Some("test-2") => Ok(status),
            _ => Err(format!("{:?}", status.conditions)),
        }
    })
    .await;
    // The event stream is the one the old name made, not a second one.
    let now = serde_json::to_value(&status.event_stream).expect("json");
    assert_eq!(now["topicArn"], stream["topicArn"], "{now}");
    assert_eq!(now["queueUrl"], stream["queueUrl"], "{now}");
    // The stream's topic and queue and the destination's topic carry the
    // new name too (with an Event), so the old one can leave
    // --previous-cluster-names.
    crate::support::wait_event(&w.client, &w.ns, "bounces", "OwnerTagMigrated").await;
    assert_eq!(topic_owner(ed_topic_arn).await, format!("test-2/{}/bounces", w.ns));
    let stream_owner = topic_owner(stream_topic).await;
    assert!(stream_owner.starts_with("test-2/"), "{stream_owner}");
    assert_eq!(queue_owner(stream_queue).await, stream_owner);
}
