//! Reconciler for `ReputationPolicy`: which sets it covers and which
//! breach, computed from the set cache (the sets' own evaluations wrote
//! their levels), and whether its notify target may be used. Triggered by
//! set, policy, destination and account changes, so it needs no timer and
//! writes only when what it reports changes. No AWS call.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use tracing::{Instrument, info_span};

use crate::api::conditions;
use crate::api::reputation_policy::Breach;
use crate::api::{ConfigurationSet, ReputationPolicy, ReputationPolicyStatus};
use crate::domain::reputation::notify::NotifyTarget;
use crate::domain::reputation::{Level, selector_unreadable, selects};
use crate::reconcile::evaluation::notify_target;
use crate::reconcile::{Context, Error, Halt, Obj, Passed, key_of};

pub async fn reconcile(policy: Arc<ReputationPolicy>, ctx: Arc<Context>) -> Result<Passed, Error> {
    let span = info_span!("reconcile", kind = "ReputationPolicy", object = %key_of(&*policy));
    async move {
        let ns = policy.namespace().unwrap_or_default();
        let api: Api<ReputationPolicy> = Api::namespaced(ctx.client.clone(), &ns);
        let cached = Obj {
            obj: policy,
            api: api.clone(),
            fresh: false,
        };
        match write_status(&cached, &ctx).await {
            // The cached copy lost a write race: once more on the object
            // as the API server has it now.
            Err(Halt::Stale(_)) => {
                let Some(obj) = api
                    .get_opt(&cached.obj.name_any())
                    .await
                    .map_err(Error::kube("reading the object"))?
                else {
                    return Ok(Passed::done(Action::await_change()));
                };
                let fresh = Obj {
                    obj: Arc::new(obj),
                    api,
                    fresh: true,
                };
                write_status(&fresh, &ctx).await.map_err(Halt::into_error)?;
            }
            other => other.map_err(Halt::into_error)?,
        }
        Ok(Passed::done(Action::await_change()))
    }
    .instrument(span)
    .await
}

/// A covered set at Warning or above, as its stored status shows it.
fn breach(cs: &ConfigurationSet) -> Option<Breach> {
    let r = cs.status.as_ref()?.reputation.as_ref()?;
    let level = r.level.as_deref().map_or(Level::Unknown, Level::parse);
    if level < Level::Warning {
        return None;
    }
    let thresholds_from = r.thresholds_from.as_deref().unwrap_or("AWS");
    Some(Breach {
        configuration_set: cs.name_any(),
        level: level.as_str().to_string(),
        detail: match (r.source.as_deref(), r.live.as_ref()) {
            // The live source drove the level: its rates are the news.
            (Some("Events"), Some(live)) => format!(
                "live bounce {} / complaint {} over {} (thresholds from {thresholds_from})",
                live.bounce_rate_percent.as_deref().unwrap_or("n/a"),
                live.complaint_rate_percent.as_deref().unwrap_or("n/a"),
                live.window,
            ),
            _ => format!(
                "bounce {} / complaint {} (thresholds from {thresholds_from})",
                r.bounce_rate_percent.as_deref().unwrap_or("n/a"),
                r.complaint_rate_percent.as_deref().unwrap_or("n/a"),
            ),
        },
    })
}

async fn write_status(o: &Obj<ReputationPolicy>, ctx: &Context) -> Result<(), Halt> {
    let policy = &*o.obj;
    let ns = policy.namespace();
    let mut covered = Vec::new();
    let mut breaching = Vec::new();
    let mut newest: Option<Time> = None;
    let sets = ctx.caches.sets.state();
    let members = sets
        .iter()
        .filter(|cs| cs.namespace() == ns && cs.metadata.deletion_timestamp.is_none())
        .filter(|cs| selects(policy, cs.labels()));
    for cs in members {
        covered.push(cs.name_any());
        let Some(r) = cs.status.as_ref().and_then(|s| s.reputation.as_ref()) else {
            continue;
        };
        if let Some(at) = &r.observed_at
            && newest.as_ref().is_none_or(|n| n.0 < at.0)
        {
            newest = Some(at.clone());
        }
        breaching.extend(breach(cs));
    }
    covered.sort();
    breaching.sort_by(|a, b| a.configuration_set.cmp(&b.configuration_set));
    let notify = policy.spec.actions.notify.as_ref().map(|notify| {
        // The accounts of the covered sets (the default account if none).
        let mut accounts: Vec<String> = sets
            .iter()
            .filter(|cs| cs.namespace() == ns && covered.contains(&cs.name_any()))
            .map(|cs| {
                cs.spec
                    .account_ref
                    .clone()
                    .unwrap_or_else(|| ctx.settings.default_account.clone())
            })
            .collect();
        if accounts.is_empty() {
            accounts.push(ctx.settings.default_account.clone());
        }
        accounts.sort();
        accounts.dedup();
        let ns = ns.clone().unwrap_or_default();
        accounts
            .iter()
            .map(|a| notify_target(ctx, &ns, ctx.caches.accounts.get(&ObjectRef::new(a)).as_deref(), notify))
            .find(|t| !matches!(t, NotifyTarget::Topic(_)))
    });
    let ready = if selector_unreadable(policy) {
        conditions::stalled("InvalidSelector", "spec.selector cannot be parsed")
    } else if let Some(Some(NotifyTarget::Refused(reason, message))) = notify {
        conditions::stalled(reason, format!("spec.actions.notify: {message}"))
    } else if let Some(Some(NotifyTarget::Waiting(message))) = notify {
        conditions::reconciling("WaitingForNotifyTarget", message)
    } else {
        conditions::ready(format!(
            "covers {} configuration set(s), {} breaching",
            covered.len(),
            breaching.len()
        ))
    };
    let mut status = o.status();
    let last_evaluation_time = newest.or(status.last_evaluation_time.take());
    o.merge_conditions(&mut status, &ready);
    let status = ReputationPolicyStatus {
        covered_count: covered.len() as i64,
        covered,
        breaching_count: breaching.len() as i64,
        breaching,
        last_evaluation_time,
        ..status
    };
    o.patch_status(&status).await
}
