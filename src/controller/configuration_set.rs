//! Reconciler for `ConfigurationSet`: resolve the account, observe the set
//! in SES, apply the per-group differences, write status.

use std::sync::Arc;

use kube::api::{Api, ListParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};
use tracing::{Instrument, info, info_span};

use super::{AccountAccess, Context, Error, Pass, fingerprint, fresh, key_of, now, patch_status, reputation};
use crate::api::conditions::{self, Desired};
use crate::api::{ConfigurationSet, ConfigurationSetStatus, DeletionPolicy, EventDestination, FINALIZER, OWNER_TAG};
use crate::aws::AwsError;
use crate::aws::limiter::Priority;
use crate::diff::configuration_set::{self as diff, SetChange};
use crate::reputation::Pause;

pub async fn reconcile(cs: Arc<ConfigurationSet>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = cs.namespace().unwrap_or_default();
    let api: Api<ConfigurationSet> = Api::namespaced(ctx.client.clone(), &ns);
    let span = info_span!("reconcile", kind = "ConfigurationSet", object = %key_of(&*cs));
    async {
        let Some(cs) = fresh(&api, &cs).await? else {
            return Ok(Action::await_change());
        };
        finalizer(&api, FINALIZER, cs, |event| async {
            match event {
                Finalizer::Apply(cs) => apply(&cs, &api, &ctx).await,
                Finalizer::Cleanup(cs) => cleanup(&cs, &api, &ctx).await,
            }
        })
        .await
        .map_err(|e| match e {
            kube::runtime::finalizer::Error::ApplyFailed(e) | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
            other => Error::Finalizer(other.to_string()),
        })
    }
    .instrument(span)
    .await
}

async fn apply(cs: &ConfigurationSet, api: &Api<ConfigurationSet>, ctx: &Context) -> Result<Action, Error> {
    let key = key_of(cs);
    let ns = cs.namespace().unwrap_or_default();
    let name = cs.aws_name();
    let (account, account_generation, account_key) = match ctx.account_for(&ns, cs.spec.account_ref.as_deref()).await? {
        AccountAccess::Missing(account) => {
            let msg = format!("SesAccount {account} does not exist");
            write_status(api, cs, conditions::reconciling("AccountNotFound", msg), None).await?;
            // Blocked before AWS: the next unblocked pass must sync at once.
            ctx.forget(&key);
            return Ok(Action::requeue(ctx.settings.drift_interval));
        }
        AccountAccess::NotAllowed(account) => {
            let msg = format!("namespace {ns} is not allowed to use SesAccount {account} (spec.allowedNamespaces)");
            if !is_stalled_with(cs, "AccountNotAllowed") {
                ctx.event(cs, EventType::Warning, "AccountNotAllowed", msg.clone())
                    .await;
            }
            write_status(api, cs, conditions::stalled("AccountNotAllowed", msg), None).await?;
            // Blocked before AWS: the next unblocked pass must sync at once.
            ctx.forget(&key);
            return Ok(Action::requeue(ctx.settings.drift_interval));
        }
        AccountAccess::Allowed { name, generation, key } => (name, generation, key),
    };
    // Reputation comes from the rate reader's cache: no AWS call here.
    let evaluation = reputation::evaluate(cs, ctx).await?;
    if let Some(ev) = &evaluation {
        ev.record_metrics(&ctx.metrics, &ns, &cs.name_any());
    }
    let pause = match &evaluation {
        Some(ev) => ev.paused().cloned(),
        // Before the first rate read: keep what status records.
        None => reputation::stored_pause(cs),
    };
    let fp = fingerprint((
        cs.metadata.generation,
        account_generation,
        &account_key,
        pause.is_some(),
    ));
    let priority = match ctx.pass(&key, fp) {
        Pass::Skip(action) => {
            if let Some(ev) = &evaluation {
                let mut status = cs.status.clone().unwrap_or_default();
                ev.apply_to(&mut status, cs.meta().generation, false);
                patch_status(api, cs, cs.status.as_ref(), &status).await?;
                let session = ctx.session(&account_key).await.ok();
                ev.announce(cs, ctx, session.as_deref(), false).await;
            }
            return Ok(action);
        }
        Pass::Run(priority) => priority,
    };

    match sync(cs, ctx, &account_key, &name, priority, pause.is_some()).await {
        Ok(synced) => {
            let mut status = ConfigurationSetStatus {
                aws_name: Some(name.clone()),
                arn: Some(synced.arn),
                account: Some(account),
                ..cs.status.clone().unwrap_or_default()
            };
            let mut desired = conditions::ready(format!("configuration set {name} is in sync"));
            desired.push(sending_condition(cs.spec.sending.enabled, pause.as_ref()));
            set_conditions(&mut status, cs, &desired);
            if let Some(ev) = &evaluation {
                ev.apply_to(&mut status, cs.meta().generation, true);
            }
            patch_status(api, cs, cs.status.as_ref(), &status).await?;
            if let Some(ev) = &evaluation {
                let session = ctx.session(&account_key).await.ok();
                ev.announce(cs, ctx, session.as_deref(), true).await;
            }
            Ok(ctx.synced(&key, fp))
        }
        Err(SyncError::NotOurs(msg)) => {
            if !is_stalled_with(cs, "AlreadyExists") {
                ctx.event(cs, EventType::Warning, "AlreadyExists", msg.clone()).await;
            }
            write_status(api, cs, conditions::stalled("AlreadyExists", msg), None).await?;
            Ok(ctx.stalled(&key, fp))
        }
        Err(SyncError::Kube(e)) => Err(e),
        Err(SyncError::Aws(e)) if e.is_terminal() => {
            let reason = aws_reason(&e);
            if !is_stalled_with(cs, &reason) {
                ctx.event(cs, EventType::Warning, &reason, e.to_string()).await;
            }
            write_status(api, cs, conditions::stalled(reason, e.to_string()), None).await?;
            Ok(ctx.stalled(&key, fp))
        }
        Err(SyncError::Aws(e)) => {
            tracing::info!(error = %e, "AWS call failed, backing off");
            write_status(
                api,
                cs,
                conditions::reconciling(aws_reason(&e), format!("retrying: {e}")),
                None,
            )
            .await?;
            Ok(ctx.backoff(&key, fp))
        }
    }
}

enum SyncError {
    /// The set exists in AWS and is not this object's to manage.
    NotOurs(String),
    Aws(AwsError),
    Kube(Error),
}

impl From<AwsError> for SyncError {
    fn from(e: AwsError) -> Self {
        SyncError::Aws(e)
    }
}

impl From<Error> for SyncError {
    fn from(e: Error) -> Self {
        match e {
            Error::Aws(e) => SyncError::Aws(e),
            other => SyncError::Kube(other),
        }
    }
}

struct Synced {
    arn: String,
}

/// Observe -> diff -> apply for one set.
async fn sync(
    cs: &ConfigurationSet,
    ctx: &Context,
    account: &crate::aws::AccountKey,
    name: &str,
    priority: Priority,
    paused: bool,
) -> Result<Synced, SyncError> {
    let session = ctx.session(account).await?;
    let owner = ctx.owner_value(cs);
    let desired = diff::desired_options(&cs.spec, paused);
    let desired_tags = diff::desired_tags(&cs.spec, (OWNER_TAG, &owner));
    let arn = session.configuration_set_arn(name);

    let Some(observed) = session.get_configuration_set(name, priority).await? else {
        session
            .create_configuration_set(name, &desired, &desired_tags, priority)
            .await?;
        // The SDK drops nested `false` bools in CreateConfigurationSet and
        // SES defaults sending to on, so a disabled set needs its Put call.
        if !desired.sending_enabled {
            session
                .apply_set_change(name, &SetChange::Sending(false), priority)
                .await?;
        }
        info!(name, "created configuration set");
        ctx.event(
            cs,
            EventType::Normal,
            "Created",
            format!("created configuration set {name} in {}", session.region),
        )
        .await;
        return Ok(Synced { arn });
    };

    match observed.tags.get(OWNER_TAG) {
        Some(tag) if *tag == owner => {}
        Some(other) => {
            return Err(SyncError::NotOurs(format!(
                "configuration set {name} already exists in AWS and belongs to {other} (tag {OWNER_TAG}); it is left untouched"
            )));
        }
        None if cs.spec.adopt => {
            ctx.event(
                cs,
                EventType::Normal,
                "Adopted",
                format!("adopting existing configuration set {name}"),
            )
            .await;
        }
        None => {
            return Err(SyncError::NotOurs(format!(
                "configuration set {name} already exists in AWS and was not created by this resource; it is left untouched (set spec.adopt: true to take it over)"
            )));
        }
    }

    let mut changes = diff::diff(&desired, &observed.options);
    changes.extend(diff::diff_tags(&desired_tags, &observed.tags));
    for change in &changes {
        session.apply_set_change(name, change, priority).await?;
    }
    if !changes.is_empty() {
        let groups: Vec<&str> = changes.iter().map(SetChange::group).collect();
        let adopting = !observed.tags.contains_key(OWNER_TAG);
        if priority == Priority::Drift && !adopting {
            let note = format!(
                "configuration set {name} was changed outside the operator; restored: {}",
                groups.join(", ")
            );
            ctx.event(cs, EventType::Warning, "DriftCorrected", note).await;
        } else {
            ctx.event(
                cs,
                EventType::Normal,
                "Updated",
                format!("updated {}", groups.join(", ")),
            )
            .await;
        }
    }
    Ok(Synced { arn })
}

async fn cleanup(cs: &ConfigurationSet, api: &Api<ConfigurationSet>, ctx: &Context) -> Result<Action, Error> {
    let key = key_of(cs);
    ctx.metrics
        .remove_set(&cs.namespace().unwrap_or_default(), &cs.name_any());
    let name = cs.aws_name();
    if cs.spec.deletion_policy == DeletionPolicy::Retain {
        ctx.event(
            cs,
            EventType::Normal,
            "Retained",
            format!("deletionPolicy Retain: configuration set {name} is left in AWS"),
        )
        .await;
        ctx.forget(&key);
        return Ok(Action::await_change());
    }
    let ns = cs.namespace().unwrap_or_default();
    let dests: Vec<String> = Api::<EventDestination>::namespaced(ctx.client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .map_err(Error::kube("listing EventDestinations"))?
        .into_iter()
        .filter(|d| d.spec.configuration_set_ref.name == cs.name_any())
        .map(|d| d.name_any())
        .collect();
    if !dests.is_empty() {
        let msg = format!(
            "waiting for EventDestinations to be deleted first: {}",
            dests.join(", ")
        );
        write_status(
            api,
            cs,
            conditions::reconciling("WaitingForEventDestinations", msg.clone()),
            None,
        )
        .await?;
        return Err(Error::Waiting(msg));
    }
    let account_key = match ctx.account_for(&ns, cs.spec.account_ref.as_deref()).await? {
        AccountAccess::Allowed { key, .. } => key,
        AccountAccess::Missing(a) | AccountAccess::NotAllowed(a) => {
            let note = format!("SesAccount {a} is missing or not allowed: configuration set {name} is left in AWS");
            ctx.event(cs, EventType::Warning, "DeleteSkipped", note).await;
            ctx.forget(&key);
            return Ok(Action::await_change());
        }
    };
    let result: Result<(), AwsError> = async {
        let session = ctx.aws.session(&account_key).await?;
        let owner = ctx.owner_value(cs);
        match session.get_configuration_set(&name, Priority::Spec).await? {
            Some(observed) if observed.tags.get(OWNER_TAG) == Some(&owner) => {
                session.delete_configuration_set(&name, Priority::Spec).await?;
                ctx.event(
                    cs,
                    EventType::Normal,
                    "Deleted",
                    format!("deleted configuration set {name}"),
                )
                .await;
            }
            Some(_) => {
                ctx.event(
                    cs,
                    EventType::Normal,
                    "DeleteSkipped",
                    format!("configuration set {name} is not owned by this resource; left in AWS"),
                )
                .await;
            }
            None => {}
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            ctx.forget(&key);
            Ok(Action::await_change())
        }
        Err(e) => {
            write_status(
                api,
                cs,
                conditions::reconciling(aws_reason(&e), format!("deleting: {e}")),
                None,
            )
            .await?;
            Err(Error::Aws(e))
        }
    }
}

fn sending_condition(enabled: bool, pause: Option<&Pause>) -> Desired {
    match pause {
        Some(p) => Desired::new(
            conditions::SENDING_ENABLED,
            false,
            "PausedByPolicy",
            format!(
                "paused by ReputationPolicy {} since {}: {}",
                p.policy, p.since, p.reason
            ),
        ),
        None if enabled => Desired::new(conditions::SENDING_ENABLED, true, "Enabled", "sending is enabled"),
        None => Desired::new(
            conditions::SENDING_ENABLED,
            false,
            "DisabledBySpec",
            "spec.sending.enabled is false",
        ),
    }
}

fn set_conditions(status: &mut ConfigurationSetStatus, cs: &ConfigurationSet, desired: &[Desired]) {
    let generation = cs.meta().generation;
    status.conditions = conditions::merge(&status.conditions, desired, generation, &now());
    status.observed_generation = generation;
}

/// Writes kstatus conditions, keeping the rest of the status.
async fn write_status(
    api: &Api<ConfigurationSet>,
    cs: &ConfigurationSet,
    desired: Vec<Desired>,
    extra: Option<Desired>,
) -> Result<(), Error> {
    let mut status = cs.status.clone().unwrap_or_default();
    let mut all = desired;
    all.extend(extra);
    set_conditions(&mut status, cs, &all);
    patch_status(api, cs, cs.status.as_ref(), &status).await
}

fn is_stalled_with(cs: &ConfigurationSet, reason: &str) -> bool {
    cs.status
        .as_ref()
        .and_then(|s| conditions::status_of(&s.conditions, conditions::STALLED))
        .is_some_and(|c| c.status == "True" && c.reason == reason)
}

/// Condition reason for an AWS error: AWS's error code without the
/// `Exception` suffix (BadRequest, LimitExceeded, TooManyRequests, ...).
pub fn aws_reason(e: &AwsError) -> String {
    let code = e.code.trim_end_matches("Exception");
    if code.is_empty() {
        "AwsError".into()
    } else {
        code.to_string()
    }
}
