//! ses-reputation-operator: keeps Amazon SES v2 configuration sets, their
//! event destinations and SNS topics in sync with Kubernetes resources.
//!
//! Where things live: `api/` the CRD types; `domain/` pure logic (diffs,
//! reputation levels, pauses, windows) with no clients; `reconcile/` the
//! one reconcile pipeline and `reconcile/kinds/` one reconciler per kind;
//! `loops/` what runs beside the reconcilers (the event-stream consumer,
//! the CloudWatch rate reader); `aws/` every AWS call; `ops/` metrics,
//! leader election, the HTTP server and memory.

pub mod api;
pub mod app;
pub mod aws;
pub mod config;
pub mod domain;
pub mod index;
pub mod loops;
pub mod ops;
pub mod reconcile;
