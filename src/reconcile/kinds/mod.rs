//! One reconciler per kind, each read top to bottom: resolve the account,
//! observe AWS, apply the pure diff, write status.

pub mod account;
pub mod configuration_set;
pub mod email_identity;
pub mod event_destination;
pub mod reputation_policy;
