//! Integration tests. They run against the test ground started by
//! `tools/ground.sh` (a real kube-apiserver + etcd and the moto-based AWS
//! emulator); `make test` starts it. One binary, so the crate links once.

mod support;

mod account_tests;
mod admission_fuzz_tests;
mod admission_tests;
mod chart_tests;
mod configuration_set_tests;
mod crd_files;
mod email_identity_tests;
mod emulator_tests;
mod event_destination_tests;
mod ground_tests;
mod kstatus_tests;
mod live_bench;
mod live_tests;
mod operations_tests;
mod reputation_tests;
mod resilience_tests;
mod scale_tests;
mod signals_tests;
mod startup_tests;
mod tenancy_tests;
