//! Objects and waits the integration tests share: the manifests they
//! apply, the status views they wait on, and the SES client that reads AWS
//! back.

use std::time::Duration;

use kube::api::Api;
use serde_json::json;
use ses_reputation_operator::api::{ConfigurationSet, EventDestination};

use super::{StatusView, condition, emulator, eventually, wait_ready};

pub fn set_status(cs: &ConfigurationSet) -> Option<StatusView> {
    cs.status
        .as_ref()
        .map(|s| (s.observed_generation, s.conditions.clone()))
}

pub fn ed_status(ed: &EventDestination) -> Option<StatusView> {
    ed.status
        .as_ref()
        .map(|s| (s.observed_generation, s.conditions.clone()))
}

pub async fn ses_client() -> aws_sdk_sesv2::Client {
    aws_sdk_sesv2::Client::new(&emulator::sdk_config().await)
}

pub fn cs_object(name: &str, spec: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "ses.reputation.io/v1alpha1", "kind": "ConfigurationSet", "metadata": {"name": name}, "spec": spec})
}

pub async fn wait_set_ready(api: &Api<ConfigurationSet>, name: &str) -> ConfigurationSet {
    wait_ready(api, name, set_status).await
}

/// Waits for the stored status to report a condition with this status and reason.
pub async fn wait_condition(
    api: &Api<ConfigurationSet>,
    name: &str,
    type_: &str,
    status: &str,
    reason: &str,
) -> ConfigurationSet {
    eventually(
        &format!("{name} {type_}={status} ({reason})"),
        Duration::from_secs(60),
        || async {
            let cs = api.get(name).await.map_err(|e| e.to_string())?;
            let conds = cs.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default();
            match condition(&conds, type_) {
                Some((s, r, _)) if s == status && r == reason => Ok(cs),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await
}

/// Waits until EventDestination `name` is Stalled with `reason`; returns
/// the message.
pub async fn ed_stalled(api: &Api<EventDestination>, name: &str, reason: &str) -> String {
    eventually(&format!("{name} Stalled {reason}"), Duration::from_secs(30), || async {
        let ed = api.get(name).await.map_err(|e| e.to_string())?;
        let conds = ed.status.map(|s| s.conditions).unwrap_or_default();
        match condition(&conds, "Stalled") {
            Some((s, r, m)) if s == "True" && r == reason => Ok(m),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

/// An EventDestination `name` on set `set` to CloudWatch, with one
/// message-tag dimension `dimension`.
pub fn cloudwatch_destination(name: &str, set: &str, dimension: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "ses.reputation.io/v1alpha1",
        "kind": "EventDestination",
        "metadata": {"name": name},
        "spec": {
            "configurationSetRef": {"name": set},
            "cloudWatch": {"dimensions": [{"name": dimension, "source": "MESSAGE_TAG", "defaultValue": "none"}]},
        },
    })
}
