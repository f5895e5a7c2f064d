//! What runs beside the reconcilers, on the leader: the CloudWatch rate
//! reader ([`rates`]), the findings reader ([`findings`]) and the consumer of each account's SES event stream
//! with the live windows it fills ([`stream_consumer`]). They read the
//! index and write their own state; the reconcilers read that state when
//! they evaluate a set. They know nothing of the reconcilers: what they
//! need from that side comes in [`Shared`].

pub mod findings;
pub mod live_checkpoint;
pub mod rates;
pub mod stream_consumer;

use std::sync::Arc;

use kube::runtime::reflector::ObjectRef;
use parking_lot::Mutex;
use tokio::sync::mpsc;

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
    pub findings: Arc<findings::FindingsState>,
    pub live: Arc<stream_consumer::LiveState>,
    pub drift: Arc<dyn DriftSchedule>,
    /// Where the live windows are checkpointed (`None`: not at all).
    pub checkpoint: Option<live_checkpoint::Checkpointer>,
}

/// A channel of objects to reconcile, whose receiving end one controller
/// takes (`Controller::reconcile_on`).
pub struct Trigger<K: kube::Resource<DynamicType = ()>> {
    tx: mpsc::UnboundedSender<ObjectRef<K>>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<ObjectRef<K>>>>,
}

impl<K: kube::Resource<DynamicType = ()> + 'static> Default for Trigger<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: kube::Resource<DynamicType = ()> + 'static> Trigger<K> {
    pub fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            tx,
            rx: Mutex::new(Some(rx)),
        }
    }

    pub fn send(&self, obj: &K) {
        // No receiver yet (or any more): the controller's own resync covers it.
        let _ = self.tx.send(ObjectRef::from_obj(obj));
    }

    pub fn stream(&self) -> impl futures::Stream<Item = ObjectRef<K>> + Send + 'static {
        let rx = self.rx.lock().take();
        futures::stream::unfold(rx, |rx| async move {
            let mut rx = rx?;
            let next = rx.recv().await?;
            Some((next, Some(rx)))
        })
    }
}
