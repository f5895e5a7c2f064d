//! Pure logic: what AWS should look like for a spec and the changes that
//! get it there (`diff`), and reputation levels, pauses, event windows and
//! a set's verdict (`reputation`), who owns an AWS resource (`ownership`)
//! whether a topic's policy lets SES publish (`topic_policy`), how much
//! of the sending quota is used (`quota`), what AWS's findings show
//! (`findings`) and which SES tenant holds what (`tenant`). No
//! clients and no clock of their own, so everything here unit-tests
//! without a cluster or AWS.

pub mod diff;
pub mod findings;
pub mod ownership;
pub mod quota;
pub mod reputation;
pub mod tenant;
pub mod topic_policy;

#[cfg(test)]
mod fuzz_tests;
