//! EventDestination with an operator-owned SNS topic feeding SQS: topic
//! policy, subscriptions, real bounce events, deletion order and limits.

use std::time::Duration;

use kube::api::{Api, DeleteParams};
use serde_json::{Value, json};
use ses_reputation_operator::api::{ConfigurationSet, EventDestination};

use crate::support::{self, World, apply_json, condition, emulator, eventually, unique};
use crate::support::{cs_object, ed_status, ses_client, wait_condition, wait_set_ready};

fn ed_object(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "ses.reputation.io/v1alpha1", "kind": "EventDestination", "metadata": {"name": name}, "spec": spec})
}

/// The destination of the SNS test: an owned topic feeding one SQS queue.
fn bounce_destination(topic_name: &str, queue_arn: &str, raw: bool) -> Value {
    ed_object(
        "bounces",
        json!({
            "configurationSetRef": {"name": "events"},
            "sns": {"topic": {
                "name": topic_name,
                "displayName": "SES bounces",
                "subscriptions": [{"protocol": "sqs", "endpoint": queue_arn, "rawMessageDelivery": raw}],
            }},
        }),
    )
}

async fn gone<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    eventually(&format!("{name} deleted"), Duration::from_secs(30), || async {
        match api.get_opt(name).await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(_) => Err("still present".to_string()),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn owned_topic_gets_the_ses_policy_and_bounces_reach_the_queue() {
    let w = World::new("ed-sns").await;
    let sets: Api<ConfigurationSet> = w.api();
    let dests: Api<EventDestination> = w.api();
    let config = emulator::sdk_config().await;
    let (sqs, sns, ses) = (
        aws_sdk_sqs::Client::new(&config),
        aws_sdk_sns::Client::new(&config),
        ses_client().await,
    );

    let (queue_url, queue_arn) = emulator::sqs_queue("us-east-1", "bounces").await;
    let set_name = unique("events");
    let topic_name = unique("bounce-topic");

    apply_json(&sets, cs_object("events", json!({"name": set_name}))).await;
    apply_json(&dests, bounce_destination(&topic_name, &queue_arn, true)).await;
    let ed = support::wait_ready(&dests, "bounces", ed_status).await;
    let status = ed.status.expect("status");
    let topic_arn = format!("arn:aws:sns:us-east-1:123456789012:{topic_name}");
    assert_eq!(status.topic_arn.as_deref(), Some(topic_arn.as_str()));
    assert!(status.topic_owned);
    assert_eq!(status.target.as_deref(), Some("sns"));
    assert_eq!(status.subscriptions.len(), 1);
    assert_eq!(status.subscriptions[0].endpoint, queue_arn);
    assert_eq!(status.subscriptions[0].state, "Confirmed");

    let attrs = sns
        .get_topic_attributes()
        .topic_arn(&topic_arn)
        .send()
        .await
        .expect("topic")
        .attributes
        .unwrap_or_default();
    assert_eq!(attrs.get("SignatureVersion").map(String::as_str), Some("2"));
    assert_eq!(attrs.get("DisplayName").map(String::as_str), Some("SES bounces"));
    let policy: Value = serde_json::from_str(attrs.get("Policy").expect("policy")).expect("policy JSON");
    let statement = &policy["Statement"][0];
    assert_eq!(statement["Principal"]["Service"], "ses.amazonaws.com");
    assert_eq!(
        statement["Condition"]["StringEquals"]["AWS:SourceArn"],
        format!("arn:aws:ses:us-east-1:123456789012:configuration-set/{set_name}")
    );
    assert_eq!(
        statement["Condition"]["StringEquals"]["AWS:SourceAccount"],
        "123456789012"
    );

    let dest = ses
        .get_configuration_set_event_destinations()
        .configuration_set_name(&set_name)
        .send()
        .await
        .expect("destinations");
    let dest = dest
        .event_destinations()
        .iter()
        .find(|d| d.name() == "bounces")
        .expect("destination in SES");
    assert!(dest.enabled());
    assert_eq!(dest.sns_destination().map(|s| s.topic_arn()), Some(topic_arn.as_str()));
    let mut types: Vec<_> = dest
        .matching_event_types()
        .iter()
        .map(|t| t.as_str().to_string())
        .collect();
    types.sort();
    assert_eq!(types, ["BOUNCE", "COMPLAINT"]);

    // A real send through the set to the bounce simulator.
    ses.create_email_identity()
        .email_identity("sender@example.com")
        .send()
        .await
        .ok();
    ses.send_email()
        .from_email_address("sender@example.com")
        .destination(
            aws_sdk_sesv2::types::Destination::builder()
                .to_addresses("bounce@simulator.amazonses.com")
                .build(),
        )
        .content(
            aws_sdk_sesv2::types::EmailContent::builder()
                .simple(
                    aws_sdk_sesv2::types::Message::builder()
                        .subject(
                            aws_sdk_sesv2::types::Content::builder()
                                .data("hi")
                                .build()
                                .expect("subject"),
                        )
                        .body(
                            aws_sdk_sesv2::types::Body::builder()
                                .text(
                                    aws_sdk_sesv2::types::Content::builder()
                                        .data("hello")
                                        .build()
                                        .expect("text"),
                                )
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .configuration_set_name(&set_name)
        .send()
        .await
        .expect("send email");
    let event: Value = eventually("bounce event in the queue", Duration::from_secs(20), || async {
        let out = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        for m in out.messages() {
            let body: Value = serde_json::from_str(m.body().unwrap_or("{}")).map_err(|e| e.to_string())?;
            // Raw delivery gives the SES event itself; unwrap an SNS envelope otherwise.
            let event = match body.get("Message").and_then(Value::as_str) {
                Some(inner) => serde_json::from_str(inner).map_err(|e| e.to_string())?,
                None => body,
            };
            if event["eventType"] == "Bounce" {
                return Ok(event);
            }
        }
        Err("no Bounce yet".into())
    })
    .await;
    assert_eq!(event["mail"]["tags"]["ses:configuration-set"][0], set_name.as_str());
    assert_eq!(event["bounce"]["bounceType"], "Permanent");
    assert_eq!(
        event["bounce"]["bouncedRecipients"][0]["emailAddress"],
        "bounce@simulator.amazonses.com"
    );

    // A subscription attribute changed in the spec reaches the existing
    // subscription (no resubscribe).
    let sub_arn = status.subscriptions[0].arn.clone().expect("confirmed subscription ARN");
    apply_json(&dests, bounce_destination(&topic_name, &queue_arn, false)).await;
    eventually("RawMessageDelivery false", Duration::from_secs(20), || async {
        let attrs = sns
            .get_subscription_attributes()
            .subscription_arn(&sub_arn)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        match attrs
            .attributes()
            .and_then(|a| a.get("RawMessageDelivery"))
            .map(String::as_str)
        {
            Some("false") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let ed = support::wait_ready(&dests, "bounces", ed_status).await;
    assert_eq!(
        ed.status.expect("status").subscriptions[0].arn.as_deref(),
        Some(sub_arn.as_str())
    );

    // Deleting the set first waits for the destination.
    sets.delete("events", &DeleteParams::default())
        .await
        .expect("delete set");
    wait_condition(&sets, "events", "Reconciling", "True", "WaitingForEventDestinations").await;
    ses.get_configuration_set()
        .configuration_set_name(&set_name)
        .send()
        .await
        .expect("set still in SES while a destination points at it");

    dests
        .delete("bounces", &DeleteParams::default())
        .await
        .expect("delete destination");
    gone(&dests, "bounces").await;
    gone(&sets, "events").await;
    let err = sns
        .get_topic_attributes()
        .topic_arn(&topic_arn)
        .send()
        .await
        .expect_err("owned topic deleted");
    assert!(err.into_service_error().is_not_found_exception());
    let err = ses
        .get_configuration_set()
        .configuration_set_name(&set_name)
        .send()
        .await
        .expect_err("set deleted");
    assert!(err.into_service_error().is_not_found_exception());
    sqs.get_queue_attributes()
        .queue_url(&queue_url)
        .send()
        .await
        .expect("the user's queue is not touched");
}

/// The subscription's attributes as SNS reports them.
async fn subscription_attributes(
    sns: &aws_sdk_sns::Client,
    arn: &str,
) -> Result<std::collections::HashMap<String, String>, String> {
    let out = sns
        .get_subscription_attributes()
        .subscription_arn(arn)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    Ok(out.attributes().cloned().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread")]
async fn subscription_options_removed_from_the_spec_are_removed_in_aws() {
    let w = World::new("ed-sub-options").await;
    let sets: Api<ConfigurationSet> = w.api();
    let dests: Api<EventDestination> = w.api();
    let sns = aws_sdk_sns::Client::new(&emulator::sdk_config().await);
    let (_, queue_arn) = emulator::sqs_queue("us-east-1", "options").await;
    let topic_name = unique("options-topic");
    let with_options = |subscription: Value| {
        ed_object(
            "bounces",
            json!({
                "configurationSetRef": {"name": "events"},
                "sns": {"topic": {"name": topic_name, "subscriptions": [subscription]}},
            }),
        )
    };
    let policy = r#"{"eventType": ["Bounce"]}"#;

    apply_json(&sets, cs_object("events", json!({"name": unique("events")}))).await;
    apply_json(
        &dests,
        with_options(
            json!({"protocol": "sqs", "endpoint": queue_arn, "rawMessageDelivery": true, "filterPolicy": policy}),
        ),
    )
    .await;
    let ed = support::wait_ready(&dests, "bounces", ed_status).await;
    let sub_arn = ed.status.expect("status").subscriptions[0]
        .arn
        .clone()
        .expect("confirmed");
    let attrs = subscription_attributes(&sns, &sub_arn).await.expect("attributes");
    assert_eq!(attrs.get("RawMessageDelivery").map(String::as_str), Some("true"));
    let set_policy: Value = serde_json::from_str(attrs.get("FilterPolicy").expect("filter policy")).expect("JSON");
    assert_eq!(set_policy, json!({"eventType": ["Bounce"]}));

    // Both options removed from the spec: gone in AWS too.
    apply_json(&dests, with_options(json!({"protocol": "sqs", "endpoint": queue_arn}))).await;
    eventually("options removed in SNS", Duration::from_secs(30), || async {
        let attrs = subscription_attributes(&sns, &sub_arn).await?;
        let raw = attrs.get("RawMessageDelivery").map(String::as_str);
        let policy = attrs.get("FilterPolicy").map(String::as_str).unwrap_or("");
        if raw == Some("false") && policy.is_empty() {
            Ok(())
        } else {
            Err(format!("RawMessageDelivery {raw:?}, FilterPolicy {policy:?}"))
        }
    })
    .await;

    // An object shape that is not JSON passes admission's outer check and
    // is Stalled with the parser's message; SNS keeps what it had.
    apply_json(
        &dests,
        with_options(json!({"protocol": "sqs", "endpoint": queue_arn, "filterPolicy": "{eventType: Bounce}"})),
    )
    .await;
    let message = crate::support::ed_stalled(&dests, "bounces", "InvalidFilterPolicy").await;
    assert!(message.contains("not valid JSON"), "{message}");
    let attrs = subscription_attributes(&sns, &sub_arn).await.expect("attributes");
    assert_eq!(attrs.get("FilterPolicy").map(String::as_str).unwrap_or(""), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_eleventh_destination_is_stalled_with_the_aws_message() {
    let w = World::new("ed-limit").await;
    let sets: Api<ConfigurationSet> = w.api();
    let dests: Api<EventDestination> = w.api();
    apply_json(&sets, cs_object("crowded", json!({"name": unique("crowded")}))).await;
    wait_set_ready(&sets, "crowded").await;
    for i in 0..11 {
        apply_json(
            &dests,
            ed_object(
                &format!("bus-{i}"),
                json!({"configurationSetRef": {"name": "crowded"}, "eventBridge": {"eventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/default"}}),
            ),
        )
        .await;
    }
    let (ready, stalled) = eventually("10 Ready and 1 Stalled", Duration::from_secs(60), || async {
        let mut ready = 0;
        let mut stalled = Vec::new();
        for i in 0..11 {
            let ed = dests.get(&format!("bus-{i}")).await.map_err(|e| e.to_string())?;
            let conds = ed.status.map(|s| s.conditions).unwrap_or_default();
            if condition(&conds, "Ready").is_some_and(|c| c.0 == "True") {
                ready += 1;
            } else if let Some(c) = condition(&conds, "Stalled").filter(|c| c.0 == "True") {
                stalled.push(c);
            }
        }
        if ready + stalled.len() == 11 {
            Ok((ready, stalled))
        } else {
            Err(format!("{ready} ready, {stalled:?}"))
        }
    })
    .await;
    assert_eq!(ready, 10);
    assert_eq!(stalled.len(), 1);
    assert_eq!(stalled[0].1, "LimitExceeded");
    assert!(!stalled[0].2.is_empty(), "AWS's message is shown");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_topic_deleted_outside_the_operator_is_recreated_with_a_warning() {
    let w = World::with(
        "ed-topic-gone",
        support::WorldOptions {
            drift: Duration::from_secs(2),
            ..Default::default()
        },
    )
    .await;
    let sets: Api<ConfigurationSet> = w.api();
    let dests: Api<EventDestination> = w.api();
    let sns = aws_sdk_sns::Client::new(&emulator::sdk_config().await);
    let (_, queue_arn) = emulator::sqs_queue("us-east-1", "recreated").await;
    let topic_name = unique("gone-topic");
    apply_json(&sets, cs_object("events", json!({"name": unique("events")}))).await;
    apply_json(&dests, bounce_destination(&topic_name, &queue_arn, true)).await;
    let ed = support::wait_ready(&dests, "bounces", ed_status).await;
    let topic_arn = ed.status.and_then(|s| s.topic_arn).expect("topic ARN");

    sns.delete_topic()
        .topic_arn(&topic_arn)
        .send()
        .await
        .expect("delete by hand");
    let event = support::wait_event(&w.client, &w.ns, "bounces", "TopicRecreated").await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    eventually("its subscription is back too", Duration::from_secs(30), || async {
        let subs = sns
            .list_subscriptions_by_topic()
            .topic_arn(&topic_arn)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        match subs.subscriptions().len() {
            1 => Ok(()),
            n => Err(format!("{n} subscriptions")),
        }
    })
    .await;
}

/// An existing topic (allowed by the SesAccount) whose access policy does
/// not let SES publish this set's events: SNS would drop every event, so
/// the destination is Stalled `TopicPolicyDeniesSes` rather than Ready.
/// Once the topic's owner adds the statement, it goes Ready and events
/// arrive (the emulator enforces topic policies as SNS does).
#[tokio::test(flavor = "multi_thread")]
async fn a_topic_whose_policy_refuses_ses_is_stalled_until_its_owner_allows_the_set() {
    use crate::support::live::{SENDER, send};
    let w = World::with(
        "ed-policy",
        crate::support::WorldOptions {
            drift: Duration::from_secs(5),
            ..Default::default()
        },
    )
    .await;
    let sqs = aws_sdk_sqs::Client::new(&emulator::sdk_config().await);
    let (topic, queue_url) = emulator::topic_with_queue("us-east-1", "hand-made").await;
    crate::support::identities::allow_topic(&w, &topic).await;
    let (sets, dests): (Api<ConfigurationSet>, Api<EventDestination>) = (w.api(), w.api());
    let set_name = unique("ed-policy");
    apply_json(&sets, cs_object("events", json!({"name": set_name}))).await;
    let cs = wait_set_ready(&sets, "events").await;
    let set_arn = cs.status.and_then(|s| s.arn).expect("set ARN");
    apply_json(
        &dests,
        ed_object(
            "hand-made",
            json!({"configurationSetRef": {"name": "events"}, "eventTypes": ["SEND"], "sns": {"topicArn": topic}}),
        ),
    )
    .await;
    // SNS's default policy: the owner's principals, not SES.
    let message = eventually("Stalled TopicPolicyDeniesSes", Duration::from_secs(30), || async {
        let ed = dests.get("hand-made").await.map_err(|e| e.to_string())?;
        let conds = ed.status.map(|s| s.conditions).unwrap_or_default();
        match (condition(&conds, "Stalled"), condition(&conds, "Ready")) {
            (Some((s, r, m)), Some((ready, _, _)))
                if s == "True" && r == "TopicPolicyDeniesSes" && ready == "False" =>
            {
                Ok(m)
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert!(message.contains(&topic) && message.contains(&set_arn), "{message}");
    let ses = ses_client().await;
    ses.create_email_identity().email_identity(SENDER).send().await.ok();

    // The owner allows this set: Ready within a drift period, and events arrive.
    emulator::allow_ses("us-east-1", &topic, &set_arn).await;
    crate::support::wait_ready(&dests, "hand-made", ed_status).await;
    send(&ses, &set_name, "success@simulator.amazonses.com")
        .await
        .expect("send");
    eventually("the Send event in the queue", Duration::from_secs(20), || async {
        let out = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let sends = out
            .messages()
            .iter()
            .filter_map(|m| serde_json::from_str::<Value>(m.body().unwrap_or("{}")).ok())
            .filter(|e| e["eventType"] == "Send" && e["mail"]["tags"]["ses:configuration-set"][0] == set_name.as_str())
            .count();
        if sends > 0 {
            Ok(())
        } else {
            Err("no Send yet".to_string())
        }
    })
    .await;
}
