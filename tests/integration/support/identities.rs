//! EmailIdentity objects, waits, and external-dns's DNSEndpoint CRD.

use std::time::Duration;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use ses_reputation_operator::api::{EmailIdentity, SesAccount};

use super::{World, condition, eventually};

pub fn id_object(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "ses.reputation.io/v1alpha1", "kind": "EmailIdentity", "metadata": {"name": name}, "spec": spec})
}

/// Waits until a condition of the identity has this status and reason.
pub async fn wait_identity(
    api: &Api<EmailIdentity>,
    name: &str,
    type_: &str,
    status: &str,
    reason: &str,
) -> EmailIdentity {
    eventually(
        &format!("{name} {type_}={status} ({reason})"),
        Duration::from_secs(60),
        || async {
            let id = api.get(name).await.map_err(|e| e.to_string())?;
            let status_now = id.status.clone().unwrap_or_default();
            match condition(&status_now.conditions, type_) {
                Some((s, r, _))
                    if s == status && r == reason && status_now.observed_generation == id.metadata.generation =>
                {
                    Ok(id)
                }
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await
}

/// Installs external-dns's own DNSEndpoint CRD, fetched from its Go module
/// by tools/external-dns-crd.sh (cached), and waits until it is served.
pub async fn install_external_dns_crd(client: &kube::Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/external-dns-crd.sh");
    let out = tokio::task::spawn_blocking(move || std::process::Command::new(script).output())
        .await
        .expect("task")
        .expect("run tools/external-dns-crd.sh");
    assert!(
        out.status.success(),
        "tools/external-dns-crd.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let yaml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let crd: CustomResourceDefinition = serde_yaml::from_str(&yaml).expect("DNSEndpoint CRD");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        "dnsendpoints.externaldns.k8s.io",
        &kube::api::PatchParams::apply("integration-tests").force(),
        &kube::api::Patch::Apply(&crd),
    )
    .await
    .expect("install the DNSEndpoint CRD");
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &dns_endpoint_resource());
    eventually("DNSEndpoint served", Duration::from_secs(30), || async {
        api.list(&Default::default())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await;
}

pub fn dns_endpoint_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("externaldns.k8s.io", "v1alpha1", "DNSEndpoint"),
        "dnsendpoints",
    )
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
