//! The Kubernetes half of the test ground: kube-rs against the real
//! apiserver (CRD lifecycle, status subresource, schema validation).

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{CustomResource, CustomResourceExt, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::support;

#[derive(CustomResource, Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[kube(
    group = "ground.test.io",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus"
)]
pub struct WidgetSpec {
    #[schemars(range(min = 1, max = 10))]
    size: i32,
}

#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
pub struct WidgetStatus {
    phase: String,
}

#[tokio::test]
async fn apiserver_serves_the_real_version() {
    let client = support::client().await;
    let version = client.apiserver_version().await.expect("GET /version");
    assert_eq!(version.major, "1");
    assert!(
        version.git_version.starts_with("v1."),
        "gitVersion {}",
        version.git_version
    );
    assert_ne!(
        version.git_version, "v0.0.0-master+$Format:%H$",
        "version ldflags were not set"
    );
}

#[tokio::test]
async fn custom_resource_lifecycle_on_the_real_apiserver() {
    let client = support::client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        "widgets.ground.test.io",
        &PatchParams::apply("ground-tests").force(),
        &Patch::Apply(Widget::crd()),
    )
    .await
    .expect("apply CRD");
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(crds, "widgets.ground.test.io", conditions::is_crd_established()),
    )
    .await
    .expect("established in time")
    .expect("watch");

    let ns = support::namespace(&client, "ground", &[]).await;
    let widgets: Api<Widget> = Api::namespaced(client.clone(), &ns);
    // Discovery can lag establishment by a moment.
    let created = support::eventually("widget create", Duration::from_secs(20), || async {
        widgets
            .create(&PostParams::default(), &Widget::new("w1", WidgetSpec { size: 3 }))
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    assert_eq!(created.spec.size, 3);

    let list = widgets.list(&ListParams::default()).await.expect("list");
    assert_eq!(list.items.iter().map(|w| w.name_any()).collect::<Vec<_>>(), ["w1"]);

    let patched = widgets
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {"phase": "Done"}})),
        )
        .await
        .expect("patch status");
    assert_eq!(patched.status.expect("status").phase, "Done");
    assert_eq!(
        patched.metadata.generation, created.metadata.generation,
        "status patch must not bump generation"
    );

    let err = widgets
        .create(&PostParams::default(), &Widget::new("w2", WidgetSpec { size: 42 }))
        .await
        .expect_err("size 42 violates the schema");
    let kube::Error::Api(status) = err else {
        panic!("expected API error, got {err:?}")
    };
    assert_eq!(status.code, 422);
    assert!(
        status.message.contains("spec.size"),
        "message names the field: {}",
        status.message
    );
    assert!(
        status.message.contains("less than or equal to 10"),
        "message: {}",
        status.message
    );

    widgets.delete("w1", &DeleteParams::default()).await.expect("delete");
    support::eventually("widget gone", Duration::from_secs(10), || async {
        match widgets.get_opt("w1").await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(_) => Err("still there".into()),
        }
    })
    .await;
}
