//! Where the live windows' checkpoint is kept: one ConfigMap in the
//! operator's namespace, read by a new leader before it counts and written
//! by the leader at most every [`EVERY`] while events arrive (and once more
//! on a graceful shutdown). The document itself is
//! `domain::reputation::checkpoint`.
//!
//! Events counted after the last write are lost when the leader is killed
//! (at most [`EVERY`] of them); the checkpoint is not a log, only what
//! keeps the breaker from being blind for `minimumSends` after a failover.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::domain::reputation::checkpoint::{self, Document};

/// Longest time between two writes while events arrive.
pub const EVERY: Duration = Duration::from_secs(10);
/// One write or read at most this long: the consumer does not wait on a
/// slow API server.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
const KEY: &str = "windows.json";
const MANAGER: &str = "ses-reputation-operator";

/// The ConfigMap the checkpoint lives in.
#[derive(Clone)]
pub struct Checkpointer {
    api: Api<ConfigMap>,
    name: String,
}

/// Why a checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("ConfigMap {name}: {source}")]
    Kube {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("ConfigMap {name}: no answer within {CALL_TIMEOUT:?}")]
    Timeout { name: String },
    #[error("ConfigMap {name}: {source}")]
    Decode {
        name: String,
        #[source]
        source: checkpoint::DecodeError,
    },
}

impl Checkpointer {
    pub fn new(client: kube::Client, namespace: &str, name: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
        }
    }

    /// The stored document, `None` when there is none yet.
    pub async fn load(&self) -> Result<Option<Document>, CheckpointError> {
        let found = tokio::time::timeout(CALL_TIMEOUT, self.api.get_opt(&self.name))
            .await
            .map_err(|_| self.timeout())?
            .map_err(|source| self.kube(source))?;
        let Some(text) = found.and_then(|cm| cm.data).and_then(|mut d| d.remove(KEY)) else {
            return Ok(None);
        };
        checkpoint::decode(&text)
            .map(Some)
            .map_err(|source| CheckpointError::Decode {
                name: self.name.clone(),
                source,
            })
    }

    /// Replaces the stored document (one server-side apply).
    pub async fn save(&self, document: String) -> Result<(), CheckpointError> {
        let body = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.name,
                "labels": {"app.kubernetes.io/managed-by": MANAGER},
                "annotations": {"ses.reputation.io/what": "live event windows, for the next leader"},
            },
            "data": {KEY: document},
        });
        tokio::time::timeout(
            CALL_TIMEOUT,
            self.api
                .patch(&self.name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&body)),
        )
        .await
        .map_err(|_| self.timeout())?
        .map_err(|source| self.kube(source))?;
        Ok(())
    }

    fn kube(&self, source: kube::Error) -> CheckpointError {
        CheckpointError::Kube {
            name: self.name.clone(),
            source,
        }
    }

    fn timeout(&self) -> CheckpointError {
        CheckpointError::Timeout {
            name: self.name.clone(),
        }
    }
}
