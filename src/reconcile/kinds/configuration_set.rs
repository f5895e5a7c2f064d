//! Reconciler for `ConfigurationSet`: resolve the account, fold in the
//! reputation verdict, observe the set in SES, apply the per-group
//! differences, write status.

use std::sync::Arc;

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use tracing::info;

use crate::api::conditions::{self, Desired};
use crate::api::configuration_set::Adoption;
use crate::api::{ConfigurationSet, DeletionPolicy, OWNER_TAG};
use crate::aws::scheduler::Priority;
use crate::aws::{AwsError, ErrorKind};
use crate::domain::diff::configuration_set::{self as diff, SetChange};
use crate::domain::reputation::evaluation::stored_pause;
use crate::domain::reputation::{Pause, PauseStep};
use crate::reconcile::{
    AccountAccess, Begin, Context, Error, Halt, Obj, PassKey, Passed, Refusal, Run, WriteGate, drive, evaluation,
    event_stream as stream, fingerprint, key_of, usable_account,
};

pub async fn reconcile(cs: Arc<ConfigurationSet>, ctx: Arc<Context>) -> Result<Passed, Error> {
    drive(cs, ctx, apply, cleanup).await
}

async fn apply(o: Obj<ConfigurationSet>, ctx: Arc<Context>) -> Result<Action, Halt> {
    let cs = &*o.obj;
    let key = key_of(cs);
    let ns = cs.namespace().unwrap_or_default();
    let name = cs.aws_name();
    let (account, account_generation, account_key) =
        match usable_account(&o, &ctx, cs.spec.account_ref.as_deref()).await? {
            Ok(a) => (a.name, a.generation, a.key),
            Err(blocked) => return Ok(blocked),
        };
    // Reputation comes from the rate reader's cache: no AWS call here.
    let evaluation = evaluation::evaluate(cs, &ctx);
    if let Some(ev) = &evaluation {
        ev.record_metrics(&ctx.metrics, &ns, &cs.name_any());
    }
    let pause = match &evaluation {
        Some(ev) => ev.paused().cloned(),
        // Before the first rate read: keep what status records.
        None => stored_pause(cs),
    };
    // The account's event stream: this set carries a destination to it.
    let stream_topic = stream::topic_for(&ctx, &account);
    let fp = fingerprint((
        cs.metadata.generation,
        account_generation,
        &account_key,
        pause.is_some(),
        &stream_topic,
    ));
    let pass = PassKey {
        key: key.clone(),
        fingerprint: fp,
        account: account.clone(),
        account_key: account_key.clone(),
    };
    // Pausing or resuming sending goes before everything else.
    let urgent = evaluation
        .as_ref()
        .is_some_and(|ev| !matches!(ev.step(), PauseStep::Stay(_)));
    let run = match o.begin(&ctx, &pass, urgent).await? {
        Begin::Skip(action) => {
            let mut status = o.status();
            status.identities = identities_using(cs, &ctx);
            if let Some(ev) = &evaluation {
                ev.apply_to(&mut status, cs.meta().generation, false);
            }
            o.patch_status(&status).await?;
            if let Some(ev) = &evaluation {
                let session = ctx.session(&account_key).await.ok();
                ev.announce(cs, &ctx, session.as_deref(), false).await;
            }
            return Ok(action);
        }
        Begin::Run(run) => run,
    };
    let Run { priority, gate } = run;
    let claimed = cs.status.as_ref().and_then(|s| s.stream_destination.as_ref()).is_some();

    let target = Target {
        account: &account_key,
        account_name: &account,
        name: &name,
    };
    let mut result = sync(cs, &ctx, &target, gate, priority, pause.is_some()).await;
    // Adoption is recorded before the first write to the set, so deleting
    // this object knows the set was not its own (default Retain).
    let o = match result {
        Ok(Synced::MustRecordAdoption(adoption)) => {
            let mut status = o.status();
            status.adoption = Some(adoption);
            let o = o.record(status, |cs, s| cs.status = Some(s)).await?;
            result = sync(&o.obj, &ctx, &target, gate, priority, pause.is_some()).await;
            o
        }
        _ => o,
    };
    let current = o.obj.clone();
    let cs = &*current;
    match result {
        Ok(Synced::InSync { arn }) => {
            // The set is this object's now (created, or its owner tag
            // checked). The stream destination is claimed in status before
            // it is created, so a crash in between never leaves one this set
            // does not know about; never on a set owned by someone else.
            let o = if stream_topic.is_some() && !claimed {
                let mut status = o.status();
                status.stream_destination = Some(crate::domain::diff::event_stream::DESTINATION_NAME.to_string());
                o.record(status, |cs, s| cs.status = Some(s)).await?
            } else {
                o
            };
            let claimed = claimed || stream_topic.is_some();
            // The stream destination after the set: a failure there must not
            // hold back recording (and announcing) a pause SES already has.
            let stream = async {
                let session = ctx.session(&account_key).await?;
                let period = ctx.drift_period(&account);
                stream::sync_destination(
                    &session,
                    &name,
                    stream_topic.as_deref(),
                    claimed,
                    period,
                    gate,
                    priority,
                )
                .await
            }
            .await;
            // A drift check from the cache that found the destination to fix.
            if let Err(Halt::Stale(priority)) = stream {
                return Err(Halt::Stale(priority));
            }
            let mut status = o.status();
            let claim = *stream.as_ref().unwrap_or(&claimed);
            status.stream_destination = claim.then(|| crate::domain::diff::event_stream::DESTINATION_NAME.to_string());
            status.aws_name = Some(name.clone());
            status.arn = Some(arn);
            status.account = Some(account.clone());
            status.identities = identities_using(cs, &ctx);
            status.unmanaged_options = diff::unmanaged_groups(&cs.spec);
            let mut desired = conditions::ready(format!("configuration set {name} is in sync"));
            desired.push(sending_condition(cs.spec.sending.enabled, pause.as_ref()));
            o.merge_conditions(&mut status, &desired);
            if let Some(ev) = &evaluation {
                ev.apply_to(&mut status, cs.meta().generation, true);
            }
            o.patch_status(&status).await?;
            if let Some(ev) = &evaluation {
                let session = ctx.session(&account_key).await.ok();
                ev.announce(cs, &ctx, session.as_deref(), true).await;
            }
            match stream {
                Ok(_) => Ok(ctx.synced(&key, fp, &account)),
                // No free destination slot (SES allows 10), or refused:
                // said once per drift period, when it is tried again. The
                // set itself is in sync and Ready.
                Err(Halt::Failed(e)) if e.is_terminal() => {
                    let note = format!("the event stream destination cannot be created: {e}");
                    ctx.event(cs, EventType::Warning, "StreamDestinationFailed", note).await;
                    Err(Halt::Stalled(ctx.stalled(&key, fp, &account)))
                }
                Err(Halt::Failed(e)) => {
                    tracing::info!(error = %e, "stream destination not in sync, backing off");
                    ctx.failed(&key, fp, priority);
                    Err(Halt::Failed(e))
                }
                Err(halt) => Err(halt),
            }
        }
        // Recorded above, so only a status write that did not stick gets
        // here: run the pass again.
        Ok(Synced::MustRecordAdoption(_)) => Err(Halt::Stale(Some(priority))),
        Err(halt) => Err(o.fail(&ctx, &pass, run, halt).await),
    }
}

/// Where a set lives.
struct Target<'a> {
    account: &'a crate::aws::AccountKey,
    account_name: &'a str,
    name: &'a str,
}

/// What a sync found.
enum Synced {
    /// The set is this object's and matches the spec.
    InSync { arn: String },
    /// The set may be adopted: record it in status, then sync again.
    MustRecordAdoption(Adoption),
}

/// The set exists in AWS and is not this object's to manage.
fn not_ours(message: String) -> Halt {
    Refusal::NotOurs(message).into()
}

/// Observe -> diff -> apply for one set.
async fn sync(
    cs: &ConfigurationSet,
    ctx: &Context,
    target: &Target<'_>,
    gate: WriteGate,
    priority: Priority,
    paused: bool,
) -> Result<Synced, Halt> {
    let name = target.name;
    let session = ctx.session(target.account).await?;
    let owner = ctx.owner_value(cs);
    let desired = diff::desired_options(&cs.spec, paused);
    let mut desired_tags = diff::desired_tags(&cs.spec, (OWNER_TAG, &owner));
    let arn = session.configuration_set_arn(name);

    // A set this object never created: create without reading first (the
    // create answers the same question: AlreadyExists), so a new set costs
    // one SES call, not two.
    let never_created = cs.status.as_ref().and_then(|s| s.arn.as_ref()).is_none();
    if never_created && priority != Priority::Drift {
        match create(cs, ctx, &session, name, &desired, &desired_tags, priority).await {
            Ok(()) => return Ok(Synced::InSync { arn }),
            Err(e) if e.kind == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        }
    }
    let Some(observed) = session.get_configuration_set(name, priority).await? else {
        gate.check()?;
        create(cs, ctx, &session, name, &desired, &desired_tags, priority).await?;
        return Ok(Synced::InSync { arn });
    };

    match observed.tags.get(OWNER_TAG) {
        tag if ctx.owns(tag, cs, !never_created) => {}
        Some(_) => {
            return Err(not_ours(format!(
                "configuration set {name} already exists in AWS and is owned by another resource (tag {OWNER_TAG}); it is left untouched"
            )));
        }
        None if cs.spec.adopt
            && !ctx
                .caches
                .adoption_allowed(&cs.namespace().unwrap_or_default(), target.account_name) =>
        {
            return Err(Refusal::AdoptionNotAllowed(format!(
                "configuration set {name} already exists in AWS and SesAccount {} does not let this namespace adopt sets (spec.adoption.allowedNamespaces); it is left untouched",
                target.account_name
            ))
            .into());
        }
        None if cs.spec.adopt => {
            gate.check()?;
            let Some(adoption) = cs.status.as_ref().and_then(|s| s.adoption.as_ref()) else {
                return Ok(Synced::MustRecordAdoption(Adoption {
                    since: crate::reconcile::now(),
                    kept_tags: observed.tags.keys().cloned().collect(),
                }));
            };
            ctx.event(
                cs,
                EventType::Normal,
                "Adopted",
                format!(
                    "adopting existing configuration set {name}; its tags {:?} are kept; deletionPolicy defaults to Retain",
                    adoption.kept_tags
                ),
            )
            .await;
        }
        None => {
            return Err(not_ours(format!(
                "configuration set {name} already exists in AWS and was not created by this resource; it is left untouched (set spec.adopt: true to take it over)"
            )));
        }
    }

    // Tags an adopted set came with stay as they are unless the spec sets them.
    if let Some(adoption) = cs.status.as_ref().and_then(|s| s.adoption.as_ref()) {
        for key in &adoption.kept_tags {
            if let Some(value) = observed.tags.get(key)
                && !desired_tags.contains_key(key)
            {
                desired_tags.insert(key.clone(), value.clone());
            }
        }
    }
    let mut changes = diff::diff(&desired, &observed.options);
    let tag_changes = diff::diff_tags(&desired_tags, &observed.tags);
    if observed.tags.contains_key(OWNER_TAG) {
        changes.extend(tag_changes);
    } else {
        // Adopting: the owner tag goes on first, since the IAM policy lets
        // the operator change only sets that carry it.
        changes.splice(0..0, tag_changes);
    }
    if !changes.is_empty() {
        gate.check()?;
    }
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
    Ok(Synced::InSync { arn })
}

/// CreateConfigurationSet with every group and the owner tag.
async fn create(
    cs: &ConfigurationSet,
    ctx: &Context,
    session: &crate::aws::Session,
    name: &str,
    desired: &diff::SetOptions,
    tags: &std::collections::BTreeMap<String, String>,
    priority: Priority,
) -> Result<(), AwsError> {
    session.create_configuration_set(name, desired, tags, priority).await?;
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
    Ok(())
}

async fn cleanup(o: Obj<ConfigurationSet>, ctx: Arc<Context>) -> Result<Action, Halt> {
    let cs = &*o.obj;
    let key = key_of(cs);
    let ns = cs.namespace().unwrap_or_default();
    ctx.metrics.remove_set(&ns, &cs.name_any());
    ctx.live.forget(&ns, &cs.name_any());
    let name = cs.aws_name();
    if cs.deletion_policy() == DeletionPolicy::Retain {
        // The set stays, the operator's stream destination does not: it
        // would keep publishing to a topic nobody reads (or that is gone).
        let claimed = cs.status.as_ref().and_then(|s| s.stream_destination.as_ref()).is_some();
        if claimed
            && let AccountAccess::Allowed { key: account_key, .. } =
                ctx.caches.account_for(&ns, cs.spec.account_ref.as_deref())
        {
            let session = ctx.session(&account_key).await?;
            session
                .delete_event_destination(
                    &name,
                    crate::domain::diff::event_stream::DESTINATION_NAME,
                    Priority::Spec,
                )
                .await?;
        }
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
    let mut dests: Vec<String> = ctx
        .caches
        .destinations
        .state()
        .iter()
        .filter(|d| d.namespace().as_deref() == Some(ns.as_str()) && d.spec.configuration_set_ref.name == cs.name_any())
        .map(|d| d.name_any())
        .collect();
    let identities = identities_using(cs, &ctx);
    if !identities.is_empty() {
        let msg = format!(
            "waiting for EmailIdentities that use this set as default to be deleted or to use another set: {}",
            identities.join(", ")
        );
        o.write_conditions(&conditions::reconciling("WaitingForEmailIdentities", msg.clone()))
            .await?;
        return Err(Halt::Waiting(msg));
    }
    if !dests.is_empty() {
        dests.sort();
        let msg = format!(
            "waiting for EventDestinations to be deleted first: {}",
            dests.join(", ")
        );
        o.write_conditions(&conditions::reconciling("WaitingForEventDestinations", msg.clone()))
            .await?;
        return Err(Halt::Waiting(msg));
    }
    let what = format!("configuration set {name}");
    let account_key = match o.account_for_cleanup(&ctx, cs.spec.account_ref.as_deref(), &what).await {
        Ok(key) => key,
        Err(action) => return Ok(action),
    };
    let result: Result<(), AwsError> = async {
        let session = ctx.aws.session(&account_key).await?;
        let recorded = cs.status.as_ref().and_then(|s| s.arn.as_ref()).is_some();
        match session.get_configuration_set(&name, Priority::Spec).await? {
            Some(observed) if ctx.owns(observed.tags.get(OWNER_TAG), cs, recorded) => {
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
            o.write_conditions(&conditions::reconciling(e.reason(), format!("deleting: {e}")))
                .await?;
            Err(Error::Aws(e).into())
        }
    }
}

/// The EmailIdentities of the set's namespace that name it as their
/// default set (from the cache), sorted.
fn identities_using(cs: &ConfigurationSet, ctx: &Context) -> Vec<String> {
    let (ns, name) = (cs.namespace(), cs.name_any());
    let mut names: Vec<String> = ctx
        .caches
        .identities
        .state()
        .iter()
        .filter(|i| i.namespace() == ns && i.spec.configuration_set_ref.as_ref().is_some_and(|r| r.name == name))
        .map(|i| i.name_any())
        .collect();
    names.sort();
    names
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
