//! The live source's helpers: the SesAccount's event stream, breaker
//! policies, sending through the emulator and stream records.

use std::time::Duration;

use kube::api::Api;
use serde_json::{Value, json};
use ses_reputation_operator::api::{ConfigurationSet, SesAccount};

use super::{World, WorldOptions, apply_json, condition, cs_object, emulator, eventually, unique};

pub const SENDER: &str = "sender@live.example.com";

pub fn world_options(region: &'static str) -> WorldOptions {
    WorldOptions {
        region,
        rate_interval: Duration::from_secs(1),
        ..Default::default()
    }
}

/// Turns the World's SesAccount stream on (or off) and returns its status
/// once the stream is there (or gone).
pub async fn set_stream(w: &World, region: &str, enabled: bool) -> Value {
    set_stream_with(w, region, enabled, json!({})).await
}

/// [`set_stream`] with more of the SesAccount's spec.
pub async fn set_stream_with(w: &World, region: &str, enabled: bool, extra: Value) -> Value {
    let accounts: Api<SesAccount> = Api::all(w.client.clone());
    let mut spec = json!({"region": region, "eventStream": {"enabled": enabled}});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    apply_json(
        &accounts,
        json!({
            "apiVersion": "ses.reputation.io/v1alpha1", "kind": "SesAccount",
            "metadata": {"name": w.account, "labels": {"test": w.ns}},
            "spec": spec,
        }),
    )
    .await;
    eventually("event stream state", Duration::from_secs(60), || async {
        let a = accounts.get(&w.account).await.map_err(|e| e.to_string())?;
        let status = a.status.clone().unwrap_or_default();
        let ready = condition(&status.conditions, "EventStreamReady");
        let stream = serde_json::to_value(&status.event_stream).map_err(|e| e.to_string())?;
        match (enabled, &ready) {
            (true, Some(c)) if c.0 == "True" && stream["queueUrl"].is_string() => Ok(stream),
            (false, None) if stream.is_null() => Ok(stream),
            _ => Err(format!("{ready:?} {stream}")),
        }
    })
    .await
}

pub fn policy(name: &str, tier: &str, minimum_sends: u32) -> Value {
    json!({
        "apiVersion": "ses.reputation.io/v1alpha1", "kind": "ReputationPolicy",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"tier": tier}},
            "bounceRate": {"warning": 0.025, "critical": 0.05},
            "actions": {"pauseSending": true},
            "breaker": {"window": "15m", "minimumSends": minimum_sends},
        },
    })
}

pub fn live_test_set(name: &str, aws_name: &str, tier: &str) -> Value {
    let mut obj = cs_object(name, json!({"name": aws_name}));
    obj["metadata"]["labels"] = json!({"tier": tier});
    obj
}

pub async fn ses_in(region: &str) -> aws_sdk_sesv2::Client {
    aws_sdk_sesv2::Client::new(&emulator::sdk_config_in(region).await)
}

/// Waits until the set carries the operator's stream destination.
pub async fn wait_stream_destination(sets: &Api<ConfigurationSet>, name: &str) -> ConfigurationSet {
    eventually(
        &format!("{name} stream destination"),
        Duration::from_secs(60),
        || async {
            let cs = sets.get(name).await.map_err(|e| e.to_string())?;
            let claimed = cs.status.as_ref().and_then(|s| s.stream_destination.clone());
            let ready = cs
                .status
                .as_ref()
                .and_then(|s| condition(&s.conditions, "Ready"))
                .is_some_and(|c| c.0 == "True");
            if claimed.is_some() && ready {
                Ok(cs)
            } else {
                Err(format!("{claimed:?}"))
            }
        },
    )
    .await
}

/// SendEmail through `set` to `to`: Ok, or AWS's error code.
pub async fn send(ses: &aws_sdk_sesv2::Client, set: &str, to: &str) -> Result<(), String> {
    send_from(ses, SENDER, set, to, None).await
}

/// SendEmail from `from` through `set` to `to`, as SES tenant `tenant` if
/// given: Ok, or AWS's error code.
pub async fn send_from(
    ses: &aws_sdk_sesv2::Client,
    from: &str,
    set: &str,
    to: &str,
    tenant: Option<&str>,
) -> Result<(), String> {
    use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
    let text = |s: &str| Content::builder().data(s).build().expect("content");
    ses.send_email()
        .from_email_address(from)
        .destination(Destination::builder().to_addresses(to).build())
        .content(
            EmailContent::builder()
                .simple(
                    Message::builder()
                        .subject(text("campaign"))
                        .body(Body::builder().text(text("hello")).build())
                        .build(),
                )
                .build(),
        )
        .configuration_set_name(set)
        .set_tenant_name(tenant.map(str::to_string))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            use aws_smithy_types::error::metadata::ProvideErrorMetadata;
            e.code().unwrap_or("unknown").to_string()
        })
}

/// One SES event record as SES publishes it (the emulator's simulator has
/// no soft bounce, so the test publishes the record to the stream topic).
pub fn record(set: &str, kind: &str, extra: Value) -> String {
    let mut v = json!({
        "eventType": kind,
        "mail": {
            "timestamp": jiff::Timestamp::now().to_string(),
            "sendingAccountId": "123456789012",
            "messageId": unique("msg"),
            "destination": ["someone@example.org"],
            "tags": {"ses:configuration-set": [set]},
        },
    });
    if let (Some(obj), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
        obj.extend(extra.clone());
    }
    v.to_string()
}
