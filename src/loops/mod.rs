//! What runs beside the reconcilers, on the leader: the CloudWatch rate
//! reader and the readings it caches, and the consumer of each account's
//! SES event stream and the live windows it fills.

pub mod rates;
pub mod stream_consumer;
