//! Custom resource types of group `ses.reputation.io/v1alpha1`, one file per
//! kind, and the CRD documents generated from them.

pub mod account;
pub mod conditions;
pub mod configuration_set;
pub mod email_identity;
pub mod event_destination;
pub mod reference;
pub mod reputation_policy;

pub use account::{SesAccount, SesAccountSpec, SesAccountStatus};
pub use configuration_set::{ConfigurationSet, ConfigurationSetSpec, ConfigurationSetStatus};
pub use email_identity::{EmailIdentity, EmailIdentitySpec, EmailIdentityStatus};
pub use event_destination::{EventDestination, EventDestinationSpec, EventDestinationStatus};
pub use reputation_policy::{ReputationPolicy, ReputationPolicySpec, ReputationPolicyStatus};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// API group of every kind this operator owns.
pub const GROUP: &str = "ses.reputation.io";
/// Finalizer put on every resource whose AWS side must be cleaned up.
pub const FINALIZER: &str = "ses.reputation.io/cleanup";
/// AWS tag that marks a configuration set, email identity or SNS topic as created by this
/// operator for one Kubernetes object; its value is `<cluster>/<namespace>/<name>`.
pub const OWNER_TAG: &str = "ses.reputation.io/owner";
/// Annotation on a ConfigurationSet that resumes sending paused by a
/// policy: an RFC 3339 time later than the pause (`kubectl annotate sescs
/// NAME ses.reputation.io/resume-at=$(date -u +%Y-%m-%dT%H:%M:%SZ) --overwrite`).
pub const RESUME_ANNOTATION: &str = "ses.reputation.io/resume-at";

/// Every CRD of this operator, in the order they should be applied.
pub fn crds() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![
        SesAccount::crd(),
        ConfigurationSet::crd(),
        EventDestination::crd(),
        ReputationPolicy::crd(),
        EmailIdentity::crd(),
    ];
    for crd in &mut crds {
        default_unobserved_status(crd);
    }
    crds
}

/// An object the operator has not looked at yet reads as
/// `status.observedGeneration: 0` (the API server applies the default when
/// it serves the object), so kstatus, Flux and Argo CD see it in progress
/// instead of Current until the first status write.
fn default_unobserved_status(crd: &mut CustomResourceDefinition) {
    for version in &mut crd.spec.versions {
        let status = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
            .and_then(|s| s.properties.as_mut())
            .and_then(|p| p.get_mut("status"));
        if let Some(status) = status {
            let mut default = serde_json::json!({"observedGeneration": 0});
            // Required status fields (counts) default to their zero value.
            for field in status.required.iter().flatten() {
                let zero = match status
                    .properties
                    .as_ref()
                    .and_then(|p| p.get(field))
                    .and_then(|p| p.type_.as_deref())
                {
                    Some("integer" | "number") => serde_json::json!(0),
                    Some("array") => serde_json::json!([]),
                    Some("boolean") => serde_json::json!(false),
                    _ => serde_json::json!(""),
                };
                default[field] = zero;
            }
            status.default = Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSON(default));
        }
    }
}

/// All CRDs as one multi-document YAML stream (what `crds` prints).
pub fn crds_yaml() -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd)?);
    }
    Ok(out)
}

/// Policy for the AWS side when the Kubernetes object is deleted.
#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeletionPolicy {
    /// Delete the AWS resources this object created.
    #[default]
    Delete,
    /// Leave the AWS resources in place.
    Retain,
}
