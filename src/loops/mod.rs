//! What runs beside the reconcilers, on the leader: the consumer of each
//! account's SES event stream and the live windows it fills.

pub mod stream_consumer;
