//! The operator's settings, built from the flags of `run` (see `main.rs`).

use std::time::Duration;

use crate::aws::AwsSettings;

/// Operator settings (flags of `run`).
#[derive(Clone, Debug)]
pub struct Settings {
    /// SesAccount used when a resource has no `accountRef`.
    pub default_account: String,
    /// How often converged objects are compared with AWS again (stretched
    /// per account when the drift share of the SES budget is too small).
    pub drift_interval: Duration,
    /// How long an object waits for a missing SesAccount before it is Stalled.
    pub account_grace: Duration,
    /// Watch only this namespace (all namespaces when `None`).
    pub namespace: Option<String>,
    /// Label selector limiting which SesAccounts this instance reconciles.
    pub account_selector: Option<String>,
    /// Identifies this cluster in the AWS ownership tag.
    pub cluster_name: String,
    /// Names this cluster had before (`--previous-cluster-names`, and the
    /// `default` earlier versions used when the name is derived): objects
    /// whose status records a resource are still recognised by an owner tag
    /// with one of them, and re-tagged with `cluster_name`. A recorded
    /// identity not listed here stops the SesAccount (see
    /// `SesAccountStatus::cluster_identity`).
    pub previous_cluster_names: Vec<String>,
    pub aws: AwsSettings,
    /// Rate reader interval and staleness.
    pub reputation: ReputationSettings,
    /// Reconcile passes that write (API server or AWS) running at once, in
    /// arrival order: bounds memory, open connections and API-server load
    /// when thousands of objects are triggered together (start-up, a rate
    /// read). Drift checks are paced by the SES scheduler instead.
    pub concurrency: u16,
    /// The ConfigMap the leader checkpoints its live windows in, so that
    /// the next leader does not start counting from zero.
    pub live_checkpoint: Option<ConfigMapName>,
}

/// A ConfigMap by namespace and name.
#[derive(Clone, Debug)]
pub struct ConfigMapName {
    pub namespace: String,
    pub name: String,
}

/// Flags of the rate reader.
#[derive(Clone, Debug)]
pub struct ReputationSettings {
    /// How often each account's rates are read.
    pub interval: Duration,
    /// Datapoints older than this count as no data (Unknown).
    pub staleness: Duration,
    /// How often each account's findings (SES ListRecommendations) are read.
    pub findings_interval: Duration,
}

impl Default for ReputationSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            staleness: Duration::from_secs(2 * 3600),
            findings_interval: Duration::from_secs(900),
        }
    }
}
