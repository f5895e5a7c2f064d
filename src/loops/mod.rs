//! What runs beside the reconcilers, on the leader: the CloudWatch rate
//! reader ([`rates`]) and the consumer of each account's SES event stream
//! with the live windows it fills ([`stream_consumer`]). They read the
//! index and write their own state; the reconcilers read that state when
//! they evaluate a set. They know nothing of the reconcilers: what they
//! need from that side comes in [`Shared`].

pub mod live_checkpoint;
pub mod rates;
pub mod stream_consumer;

use std::sync::Arc;

use crate::api::account::DriftStatus;
use crate::aws::Registry;
use crate::config::ReputationSettings;
use crate::index::Index;
use crate::ops::metrics::Metrics;

/// The drift schedule the reconcilers keep, as the rate reader sees it:
/// refreshed once per read round, and shown in each account's status.
pub trait DriftSchedule: Send + Sync {
    /// Recomputes each account's drift period from the index.
    fn refresh(&self);
    /// The drift schedule an account's status should show.
    fn status(&self, account: &str) -> Option<DriftStatus>;
}

/// What the loops share with the rest of the process.
#[derive(Clone)]
pub struct Shared {
    pub index: Index,
    pub aws: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    pub settings: ReputationSettings,
    pub rates: Arc<rates::ReputationState>,
    pub live: Arc<stream_consumer::LiveState>,
    pub drift: Arc<dyn DriftSchedule>,
    /// Where the live windows are checkpointed (`None`: not at all).
    pub checkpoint: Option<live_checkpoint::Checkpointer>,
}
