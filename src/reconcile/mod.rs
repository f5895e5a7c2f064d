//! Reconciling: the one pipeline every kind runs through ([`pipeline`]:
//! `drive`, the object handle, the start and end of a pass), the gate book
//! deciding when an object goes to AWS ([`gate`]), typed outcomes
//! ([`error`]), the shared [`Context`], and one reconciler per kind in
//! [`kinds`]. The account's event-stream plumbing ([`event_stream`]) and
//! the reputation evaluation ([`reputation`]) are used by several kinds.

pub mod context;
pub mod error;
pub mod evaluation;
pub mod event_stream;
pub mod gate;
pub mod kinds;
pub mod pipeline;
pub mod tenants;

use std::hash::{DefaultHasher, Hash, Hasher};

use kube::{Resource, ResourceExt};

pub use context::Context;
pub use error::{Error, Halt, Outcome, Refusal};
pub use gate::Pass;
pub use pipeline::{
    Begin, Managed, Obj, ObjectStatus, PassKey, Passed, Proceed, Run, UsableAccount, WriteGate, drive, error_policy,
    instrumented, proceed, usable_account,
};
// Kept here so kinds and loops name one place for account resolution.
pub use crate::index::{AccountAccess, account_key};

/// Name used as field manager and event reporter.
pub const MANAGER: &str = "ses-reputation-operator";

/// Hash of the parts of an object (and what it references) that should
/// trigger immediate work.
pub fn fingerprint(parts: impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// Unique key for the gate map.
pub fn key_of<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        obj.namespace().unwrap_or_default(),
        obj.name_any()
    )
}

pub fn now() -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now())
}
