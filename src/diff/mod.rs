//! Pure desired-vs-observed logic: what AWS should look like for a spec,
//! and the smallest set of changes that gets it there. No clients here, so
//! all of it unit-tests without a cluster or AWS.

pub mod configuration_set;
pub mod email_identity;
pub mod event_destination;
pub mod stream;
pub mod topic;
