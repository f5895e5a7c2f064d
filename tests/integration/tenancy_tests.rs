//! A hostile (or careless) tenant against resources it does not own:
//! event destinations carry no tags, so the operator touches only those
//! its object claimed before creating them.

use std::time::Duration;

use aws_sdk_sesv2::types::{
    CloudWatchDestination, CloudWatchDimensionConfiguration, DimensionValueSource, EventDestinationDefinition,
    EventType,
};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};
use ses_reputation_operator::api::{ConfigurationSet, EventDestination, ReputationPolicy, SesAccount};

use crate::configuration_set_tests::{cs_object, ses_client, wait_condition, wait_set_ready};
use crate::support::{World, WorldOptions, apply_json, condition, eventually, unique};

fn cloudwatch_destination(name: &str, set: &str, dimension: &str) -> Value {
    json!({
        "apiVersion": "ses.reputation.io/v1alpha1",
        "kind": "EventDestination",
        "metadata": {"name": name},
        "spec": {
            "configurationSetRef": {"name": set},
            "cloudWatch": {"dimensions": [{"name": dimension, "source": "MESSAGE_TAG", "defaultValue": "none"}]},
        },
    })
}

/// A destination made outside the operator (Terraform, the console).
async fn foreign_destination(ses: &aws_sdk_sesv2::Client, set: &str, name: &str) {
    let dimension = CloudWatchDimensionConfiguration::builder()
        .dimension_name("team")
        .dimension_value_source(DimensionValueSource::MessageTag)
        .default_dimension_value("victim")
        .build()
        .expect("dimension");
    ses.create_configuration_set_event_destination()
        .configuration_set_name(set)
        .event_destination_name(name)
        .event_destination(
            EventDestinationDefinition::builder()
                .enabled(true)
                .matching_event_types(EventType::Bounce)
                .cloud_watch_destination(
                    CloudWatchDestination::builder()
                        .dimension_configurations(dimension)
                        .build()
                        .expect("cloudwatch"),
                )
                .build(),
        )
        .send()
        .await
        .expect("create the foreign destination");
}

/// The foreign destination as AWS has it: (dimension name, default value).
async fn foreign_dimension(ses: &aws_sdk_sesv2::Client, set: &str, name: &str) -> Option<(String, String)> {
    let out = ses
        .get_configuration_set_event_destinations()
        .configuration_set_name(set)
        .send()
        .await
        .expect("list destinations");
    let dest = out.event_destinations().iter().find(|d| d.name() == name)?;
    let dim = &dest.cloud_watch_destination()?.dimension_configurations()[0];
    Some((
        dim.dimension_name().to_string(),
        dim.default_dimension_value().to_string(),
    ))
}

fn destination_writes(w: &World) -> u64 {
    [
        "sesv2:CreateConfigurationSetEventDestination",
        "sesv2:UpdateConfigurationSetEventDestination",
        "sesv2:DeleteConfigurationSetEventDestination",
    ]
    .iter()
    .map(|op| w.calls(op))
    .sum()
}

async fn delete_and_wait_gone(api: &Api<EventDestination>, name: &str) {
    api.delete(name, &DeleteParams::default()).await.expect("delete");
    eventually(&format!("{name} gone"), Duration::from_secs(30), || async {
        match api.get_opt(name).await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(_) => Err("still there".to_string()),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_cannot_delete_another_teams_event_destination() {
    let ses = ses_client().await;
    // The victim's set and destination, managed outside this cluster.
    let victim_set = unique("victim");
    ses.create_configuration_set()
        .configuration_set_name(&victim_set)
        .send()
        .await
        .expect("victim set");
    foreign_destination(&ses, &victim_set, "alerts").await;

    let w = World::new("tenant-attack").await;
    let (sets, dests): (Api<ConfigurationSet>, Api<EventDestination>) = (w.api(), w.api());
    apply_json(&sets, cs_object("stolen", json!({"name": victim_set}))).await;
    let cs = wait_condition(&sets, "stolen", "Stalled", "True", "AlreadyExists").await;
    let conds = cs.status.expect("status").conditions;
    let (_, _, message) = condition(&conds, "Stalled").expect("Stalled");
    assert!(message.contains("left untouched"), "{message}");

    apply_json(&dests, cloudwatch_destination("alerts", "stolen", "attacker")).await;
    // Its set is a dead end, so the destination is one too (not "waiting").
    eventually("destination Stalled with its set", Duration::from_secs(30), || async {
        let ed = dests.get("alerts").await.map_err(|e| e.to_string())?;
        let conds = ed.status.map(|s| s.conditions).unwrap_or_default();
        match condition(&conds, "Stalled") {
            Some((s, r, _)) if s == "True" && r == "ConfigurationSetStalled" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    delete_and_wait_gone(&dests, "alerts").await;

    assert_eq!(
        foreign_dimension(&ses, &victim_set, "alerts").await,
        Some(("team".into(), "victim".into())),
        "the victim's destination is untouched"
    );
    assert_eq!(destination_writes(&w), 0, "{:?}", w.all_calls());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_destination_made_outside_the_operator_is_not_taken_over() {
    let w = World::new("tenant-foreign").await;
    let (sets, dests): (Api<ConfigurationSet>, Api<EventDestination>) = (w.api(), w.api());
    let ses = ses_client().await;
    let set_name = unique("mine");
    apply_json(&sets, cs_object("mine", json!({"name": set_name}))).await;
    wait_set_ready(&sets, "mine").await;
    foreign_destination(&ses, &set_name, "console").await;

    apply_json(&dests, cloudwatch_destination("console", "mine", "ours")).await;
    let ed = eventually("the destination is Stalled", Duration::from_secs(30), || async {
        let ed = dests.get("console").await.map_err(|e| e.to_string())?;
        let conds = ed.status.clone().map(|s| s.conditions).unwrap_or_default();
        match condition(&conds, "Stalled") {
            Some((s, r, _)) if s == "True" && r == "AlreadyExists" => Ok(ed),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let status = ed.status.expect("status");
    assert!(
        status.claim.is_none(),
        "no claim on a foreign destination: {:?}",
        status.claim
    );
    let (_, _, message) = condition(&status.conditions, "Stalled").expect("Stalled");
    assert!(message.contains("owned by another resource"), "{message}");

    delete_and_wait_gone(&dests, "console").await;
    assert_eq!(
        foreign_dimension(&ses, &set_name, "console").await,
        Some(("team".into(), "victim".into())),
        "the foreign destination is neither updated nor deleted"
    );
    // One create attempt (answered AlreadyExists), no update, no delete.
    assert_eq!(w.calls("sesv2:UpdateConfigurationSetEventDestination"), 0);
    assert_eq!(w.calls("sesv2:DeleteConfigurationSetEventDestination"), 0);
}

/// Adds `topic` to the world's SesAccount `spec.notify.allowedTopicArns`.
pub async fn allow_topic(w: &World, topic: &str) {
    Api::<SesAccount>::all(w.client.clone())
        .patch(
            &w.account,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"notify": {"allowedTopicArns": [topic]}}})),
        )
        .await
        .expect("allow the topic");
}

async fn wait_policy(api: &Api<ReputationPolicy>, name: &str, type_: &str, reason: &str) -> String {
    eventually(&format!("{name} {type_} {reason}"), Duration::from_secs(30), || async {
        let p = api.get(name).await.map_err(|e| e.to_string())?;
        let conds = p.status.map(|s| s.conditions).unwrap_or_default();
        match condition(&conds, type_) {
            Some((s, r, m)) if s == "True" && r == reason => Ok(m),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_go_only_to_topics_the_account_allows() {
    let w = World::new("tenant-notify").await;
    let policies: Api<ReputationPolicy> = w.api();
    let foreign = "arn:aws:sns:us-east-1:123456789012:another-teams-topic";
    let policy = |name: &str, notify: Value| {
        json!({
            "apiVersion": "ses.reputation.io/v1alpha1",
            "kind": "ReputationPolicy",
            "metadata": {"name": name},
            "spec": {"selector": {}, "actions": {"notify": notify}},
        })
    };
    apply_json(&policies, policy("foreign", json!({"topicArn": foreign}))).await;
    let message = wait_policy(&policies, "foreign", "Stalled", "NotifyNotAllowed").await;
    assert!(message.contains("allowedTopicArns"), "{message}");

    apply_json(
        &policies,
        policy("missing", json!({"eventDestinationRef": {"name": "nope"}})),
    )
    .await;
    wait_policy(&policies, "missing", "Stalled", "NotifyTargetNotFound").await;

    // The platform team allows the topic: the policy becomes Ready.
    allow_topic(&w, foreign).await;
    wait_policy(&policies, "foreign", "Ready", "Synced").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn role_arn_and_external_id_are_immutable() {
    let w = World::with(
        "tenant-role",
        WorldOptions {
            start_operator: false,
            ..Default::default()
        },
    )
    .await;
    let accounts: Api<SesAccount> = Api::all(w.client.clone());
    let err = accounts
        .patch(
            &w.account,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"roleArn": "arn:aws:iam::210987654321:role/elsewhere"}})),
        )
        .await
        .expect_err("roleArn is immutable");
    let kube::Error::Api(status) = err else {
        panic!("unexpected error {err:?}")
    };
    assert_eq!(status.code, 422, "{status:?}");
    assert!(
        status
            .message
            .contains("spec.roleArn and spec.externalId are immutable"),
        "{}",
        status.message
    );
}
