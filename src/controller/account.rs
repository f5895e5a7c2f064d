//! Reconciler for `SesAccount`: checks the credentials (STS), reads the
//! account's SES state (GetAccount) and writes it to status.

use std::sync::Arc;

use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use tracing::{Instrument, info_span};

use super::configuration_set::aws_reason;
use super::{Context, Error, Pass, fingerprint, key_of, now, patch_status};
use crate::api::SesAccount;
use crate::api::account::SendQuota;
use crate::api::conditions::{self, Desired};
use crate::aws::AccountKey;

pub const ENFORCEMENT_HEALTHY: &str = "EnforcementHealthy";

pub async fn reconcile(account: Arc<SesAccount>, ctx: Arc<Context>) -> Result<Action, Error> {
    let span = info_span!("reconcile", kind = "SesAccount", object = %account.name_any());
    async move {
        let api: Api<SesAccount> = Api::all(ctx.client.clone());
        let key = key_of(&*account);
        let account_key = AccountKey {
            region: account.spec.region.clone(),
            role_arn: account.spec.role_arn.clone(),
            external_id: account.spec.external_id.clone(),
        };
        let fp = fingerprint((account.metadata.generation, &account_key));
        let priority = match ctx.pass(&key, fp) {
            Pass::Skip(action) => return Ok(action),
            Pass::Run(priority) => priority,
        };
        let observed = async {
            let session = ctx.session(&account_key).await?;
            let state = session.get_account(priority).await?;
            Ok::<_, Error>((session.account_id.clone(), state))
        }
        .await;
        let mut status = account.status.clone().unwrap_or_default();
        let generation = account.meta().generation;
        let (desired, action) = match observed {
            Ok((account_id, state)) => {
                status.account_id = Some(account_id);
                status.enforcement_status = state.enforcement_status.clone();
                status.sending_enabled = Some(state.sending_enabled);
                status.production_access_enabled = Some(state.production_access_enabled);
                status.send_quota = Some(SendQuota {
                    max24_hour_send: state.max_24_hour_send,
                    max_send_rate: state.max_send_rate,
                    sent_last24_hours: state.sent_last_24_hours,
                });
                let mut desired = conditions::ready(format!("credentials work in {}", account.spec.region));
                desired.push(if state.sending_enabled {
                    Desired::new(
                        conditions::SENDING_ENABLED,
                        true,
                        "Enabled",
                        "the account can send email",
                    )
                } else {
                    Desired::new(
                        conditions::SENDING_ENABLED,
                        false,
                        "Paused",
                        "sending is paused for the whole account",
                    )
                });
                desired.push(enforcement_condition(state.enforcement_status.as_deref()));
                (desired, ctx.synced(&key, fp))
            }
            Err(Error::Aws(e)) => (
                conditions::reconciling(aws_reason(&e), format!("retrying: {e}")),
                ctx.backoff(&key, fp),
            ),
            Err(e) => return Err(e),
        };
        status.conditions = conditions::merge(&status.conditions, &desired, generation, &now());
        status.observed_generation = generation;
        patch_status(&api, &account, account.status.as_ref(), &status).await?;
        Ok(action)
    }
    .instrument(span)
    .await
}

/// AWS's enforcement status as a condition; unknown values are kept and
/// reported, not guessed at.
fn enforcement_condition(status: Option<&str>) -> Desired {
    match status {
        Some("HEALTHY") | None => Desired::new(
            ENFORCEMENT_HEALTHY,
            true,
            "Healthy",
            "AWS reports no enforcement action",
        ),
        Some("PROBATION") => Desired::new(
            ENFORCEMENT_HEALTHY,
            false,
            "Probation",
            "AWS placed the account under review (probation): fix bounce/complaint rates before AWS pauses sending",
        ),
        Some("SHUTDOWN") => Desired::new(
            ENFORCEMENT_HEALTHY,
            false,
            "Shutdown",
            "AWS paused sending for the account (shutdown)",
        ),
        Some(other) => Desired::new(
            ENFORCEMENT_HEALTHY,
            false,
            "Unrecognized",
            format!("AWS reports enforcement status {other}"),
        ),
    }
}
