//! ses-reputation-operator: keeps Amazon SES v2 configuration sets, their
//! event destinations and SNS topics in sync with Kubernetes resources.

pub mod api;
pub mod aws;
pub mod controller;
pub mod diff;
pub mod leader;
pub mod memory;
pub mod metrics;
pub mod reputation;
pub mod server;
