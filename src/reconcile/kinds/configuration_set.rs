//! Reconciler for `ConfigurationSet`: resolve the account, fold in the
//! reputation verdict, observe the set in SES, apply the per-group
//! differences, write status.

use std::sync::Arc;

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use tracing::info;

use crate::api::account::TenantStatus;
use crate::api::conditions::{self, Desired};
use crate::api::configuration_set::Adoption;
use crate::api::{ConfigurationSet, ConfigurationSetSpec, ConfigurationSetStatus, DeletionPolicy, OWNER_TAG};
use crate::aws::scheduler::Priority;
use crate::aws::ses::ObservedSet;
use crate::aws::{AwsError, ErrorKind};
use crate::domain::diff::configuration_set::{self as diff, SetChange};
use crate::domain::diff::event_stream::DESTINATION_NAME as STREAM_DESTINATION;
use crate::domain::ownership::{self, AdoptionAsk, Found, Owner, TaggedPlan};
use crate::domain::reputation::evaluation::stored_pause;
use crate::domain::reputation::{Pause, PauseStep};
use crate::domain::tenant;
use crate::reconcile::evaluation::SetEvaluation;
use crate::reconcile::{
    AccountAccess, Begin, Context, Error, Halt, Obj, PassKey, Passed, Proceed, Refusal, Run, WriteGate, drive,
    evaluation, event_stream as stream, fingerprint, key_of, proceed, tenants, usable_account,
};

pub async fn reconcile(cs: Arc<ConfigurationSet>, ctx: Arc<Context>) -> Result<Passed, Error> {
    drive(cs, ctx, apply, cleanup).await
}

async fn apply(o: Obj<ConfigurationSet>, ctx: Arc<Context>) -> Result<Action, Halt> {
    let r = match resolve(&o, &ctx).await? {
        Ok(resolved) => resolved,
        Err(blocked) => return Ok(blocked),
    };
    // Pausing or resuming sending goes before everything else.
    let urgent = r
        .evaluation
        .as_ref()
        .is_some_and(|ev| !matches!(ev.step(), PauseStep::Stay(_)));
    let run = match o.begin(&ctx, &r.pass, urgent).await? {
        Begin::Skip(action) => {
            // Nothing to do in AWS; the reputation in status still moves.
            let mut status = o.status();
            status.identities = identity_names(&o.obj, &ctx);
            let ns = o.obj.namespace().unwrap_or_default();
            let tenant = tenants::tenant_of(&ctx, &r.pass.account, &ns);
            if tenant.is_none() {
                // Tenants turned off (or the namespace's is gone): the set
                // no longer belongs to one.
                status.tenant = None;
            }
            let mut desired = Vec::new();
            let tenant_moved = fold_tenant(&o.obj, tenant.as_ref(), &mut status, &mut desired);
            o.merge_conditions(&mut status, &desired);
            if let Some(ev) = &r.evaluation {
                ev.apply_to(&mut status, o.obj.meta().generation, false);
            }
            o.patch_status(&status).await?;
            r.announce(&o.obj, &ctx, false).await;
            announce_tenant(&o.obj, &ctx, tenant_moved).await;
            return Ok(action);
        }
        Begin::Run(run) => run,
    };
    let target = Target {
        account: &r.pass.account_key,
        account_name: &r.pass.account,
        name: &r.name,
    };
    let paused = r.pause.is_some();
    let mut result = sync(&o.obj, &ctx, &target, run.gate, run.priority, paused).await;
    // Adoption is recorded before the first write to the set, so deleting
    // this object knows the set was not its own (default Retain).
    let o = match result {
        Ok(Synced::MustRecordAdoption(adoption)) => {
            let mut status = o.status();
            status.adoption = Some(adoption);
            let o = o.record(status, |cs, s| cs.status = Some(s)).await?;
            result = sync(&o.obj, &ctx, &target, run.gate, run.priority, paused).await;
            o
        }
        _ => o,
    };
    match result {
        Ok(Synced::InSync { arn }) => in_sync(o, &ctx, &r, run, arn).await,
        // Recorded above, so only a status write that did not stick gets
        // here: run the pass again.
        Ok(Synced::MustRecordAdoption(_)) => Err(Halt::Stale(Some(run.priority))),
        Err(halt) => Err(o.fail(&ctx, &r.pass, run, halt).await),
    }
}

/// TenantSending from the namespace's tenant as the account's status
/// records it (removed when the namespace has no tenant); returns the new
/// condition when its status moved, for a Warning Event once written.
fn fold_tenant(
    cs: &ConfigurationSet,
    tenant: Option<&TenantStatus>,
    status: &mut ConfigurationSetStatus,
    desired: &mut Vec<Desired>,
) -> Option<Desired> {
    let Some(condition) = tenant::sending_condition(tenant) else {
        status.conditions.retain(|c| c.type_ != tenant::TENANT_SENDING);
        return None;
    };
    let before = cs
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == tenant::TENANT_SENDING))
        .map(|c| c.status.clone());
    let now = match condition.status {
        Some(true) => "True",
        Some(false) => "False",
        None => "Unknown",
    };
    let moved =
        before.as_deref() != Some(now) && (condition.status == Some(false) || before.as_deref() == Some("False"));
    desired.push(condition.clone());
    moved.then_some(condition)
}

/// The set's own sending may be on while its tenant cannot send: then
/// SendingEnabled says so, instead of only claiming sending is on (a
/// resume does not undo what SES holds on the tenant).
fn honest_sending(desired: &mut [Desired]) {
    let tenant_off = desired
        .iter()
        .find(|d| d.type_ == tenant::TENANT_SENDING && d.status == Some(false))
        .map(|d| d.message.clone());
    if let Some(why) = tenant_off
        && let Some(sending) = desired
            .iter_mut()
            .find(|d| d.type_ == conditions::SENDING_ENABLED && d.status == Some(true))
    {
        sending.message = format!("{}; but {why}", sending.message);
    }
}

/// A Warning Event when SES stops the set's tenant, a Normal one when it
/// lets it send again.
async fn announce_tenant(cs: &ConfigurationSet, ctx: &Context, moved: Option<Desired>) {
    let Some(c) = moved else { return };
    let type_ = if c.status == Some(false) {
        EventType::Warning
    } else {
        EventType::Normal
    };
    ctx.event(cs, type_, &format!("Tenant{}", c.reason), c.message).await;
}

/// What a pass over a set works from: resolved before the gate decides.
struct Resolved {
    pass: PassKey,
    /// The set's name in SES.
    name: String,
    evaluation: Option<SetEvaluation>,
    pause: Option<Pause>,
    /// The account's event stream topic: the set carries a destination to it.
    stream_topic: Option<String>,
}

/// The account, the reputation verdict (from the rate reader's cache: no
/// AWS call here) and the fingerprint of everything that needs work at once.
async fn resolve(o: &Obj<ConfigurationSet>, ctx: &Context) -> Result<Result<Resolved, Action>, Halt> {
    let cs = &*o.obj;
    let account = match usable_account(o, ctx, cs.spec.account_ref.as_deref()).await? {
        Ok(a) => a,
        Err(blocked) => return Ok(Err(blocked)),
    };
    let evaluation = evaluation::evaluate(cs, ctx);
    if let Some(ev) = &evaluation {
        ev.record_metrics(&ctx.metrics, &cs.namespace().unwrap_or_default(), &cs.name_any());
    }
    let pause = match &evaluation {
        Some(ev) => ev.paused().cloned(),
        // Before the first rate read: keep what status records.
        None => stored_pause(cs),
    };
    let stream_topic = stream::topic_for(ctx, &account.name);
    let fingerprint = fingerprint((
        cs.metadata.generation,
        account.generation,
        &account.key,
        pause.is_some(),
        &stream_topic,
    ));
    Ok(Ok(Resolved {
        pass: PassKey {
            key: key_of(cs),
            fingerprint,
            account: account.name,
            account_key: account.key,
        },
        name: cs.aws_name(),
        evaluation,
        pause,
        stream_topic,
    }))
}

impl Resolved {
    /// Tells the policy's subscribers about a pause or resume, once status
    /// records it (`applied`: this pass changed SES).
    async fn announce(&self, cs: &ConfigurationSet, ctx: &Context, applied: bool) {
        if let Some(ev) = &self.evaluation {
            let session = ctx.session(&self.pass.account_key).await.ok();
            ev.announce(cs, ctx, session.as_deref(), applied).await;
        }
    }
}

/// The set is this object's and in sync: its stream destination, then
/// status (Ready, the pause, the reputation).
async fn in_sync(o: Obj<ConfigurationSet>, ctx: &Context, r: &Resolved, run: Run, arn: String) -> Result<Action, Halt> {
    let Run { priority, gate } = run;
    let (key, fp, account) = (&r.pass.key, r.pass.fingerprint, &r.pass.account);
    let claimed = o
        .obj
        .status
        .as_ref()
        .and_then(|s| s.stream_destination.as_ref())
        .is_some();
    // The set is this object's now (created, or its owner tag checked).
    // The stream destination is claimed in status before it is created, so
    // a crash in between never leaves one this set does not know about;
    // never on a set owned by someone else.
    let o = if r.stream_topic.is_some() && !claimed {
        let mut status = o.status();
        status.stream_destination = Some(STREAM_DESTINATION.to_string());
        o.record(status, |cs, s| cs.status = Some(s)).await?
    } else {
        o
    };
    let claimed = claimed || r.stream_topic.is_some();
    // The stream destination after the set: a failure there must not hold
    // back recording (and announcing) a pause SES already has.
    let stream = async {
        let session = ctx.session(&r.pass.account_key).await?;
        let period = ctx.drift_period(account);
        stream::sync_destination(
            &session,
            &r.name,
            r.stream_topic.as_deref(),
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
    let cs = &*o.obj;
    let ns = cs.namespace().unwrap_or_default();
    let tenant = tenants::tenant_of(ctx, account, &ns);
    let recorded = cs.status.as_ref().and_then(|s| s.tenant.as_deref());
    let session = ctx.session(&r.pass.account_key).await?;
    let joined = tenants::join(&session, tenant.as_ref(), &arn, recorded, gate, priority).await?;
    let tenant_paused = tenants::follow_pause(ctx, &session, cs, r.pause.as_ref(), tenant.as_ref(), gate).await?;
    let mut status = o.status();
    status.tenant = joined;
    status.tenant_paused = tenant_paused;
    let claim = *stream.as_ref().unwrap_or(&claimed);
    status.stream_destination = claim.then(|| STREAM_DESTINATION.to_string());
    status.aws_name = Some(r.name.clone());
    status.arn = Some(arn);
    status.account = Some(account.clone());
    status.identities = identity_names(cs, ctx);
    status.unmanaged_options = diff::unmanaged_groups(&cs.spec);
    let mut desired = conditions::ready(format!("configuration set {} is in sync", r.name));
    desired.push(sending_condition(cs.spec.sending.enabled, r.pause.as_ref()));
    let tenant_moved = fold_tenant(cs, tenant.as_ref(), &mut status, &mut desired);
    honest_sending(&mut desired);
    o.merge_conditions(&mut status, &desired);
    if let Some(ev) = &r.evaluation {
        ev.apply_to(&mut status, cs.meta().generation, true);
    }
    o.patch_status(&status).await?;
    r.announce(cs, ctx, true).await;
    announce_tenant(cs, ctx, tenant_moved).await;
    match stream {
        Ok(_) => Ok(ctx.synced(key, fp, account)),
        // No free destination slot (SES allows 10), or refused: said once
        // per drift period, when it is tried again. The set itself is in
        // sync and Ready.
        Err(Halt::Failed(e)) if e.is_terminal() => {
            let note = format!("the event stream destination cannot be created: {e}");
            ctx.event(cs, EventType::Warning, "StreamDestinationFailed", note).await;
            Err(Halt::Stalled(ctx.stalled(key, fp, account)))
        }
        Err(Halt::Failed(e)) => {
            tracing::info!(error = %e, "stream destination not in sync, backing off");
            ctx.failed(key, fp, priority);
            Err(Halt::Failed(e))
        }
        Err(halt) => Err(halt),
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

/// Observe -> plan -> apply for one set.
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
    let owner = ctx.owner(cs);
    let desired = diff::desired_options(&cs.spec, paused);
    let arn = session.configuration_set_arn(name);

    // A set this object never created: create without reading first (the
    // create answers the same question: AlreadyExists), so a new set costs
    // one SES call, not two. Not when the last pass found the name taken.
    let never_created = cs
        .status
        .as_ref()
        .is_none_or(|s| s.arn.is_none() && !conditions::found_name_taken(&s.conditions));
    if never_created && priority != Priority::Drift {
        let tags = diff::desired_tags(&cs.spec, (OWNER_TAG, &owner.value));
        match create(cs, ctx, &session, name, &desired, &tags, priority).await {
            Ok(()) => return Ok(Synced::InSync { arn }),
            Err(e) if e.kind == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        }
    }
    let Some(observed) = session.get_configuration_set(name, priority).await? else {
        gate.check()?;
        let tags = diff::desired_tags(&cs.spec, (OWNER_TAG, &owner.value));
        create(cs, ctx, &session, name, &desired, &tags, priority).await?;
        return Ok(Synced::InSync { arn });
    };
    let facts = Facts {
        name,
        account: target.account_name,
        owner: &owner,
        adoption_allowed: ctx
            .caches
            .adoption_allowed(&cs.namespace().unwrap_or_default(), target.account_name),
        paused,
        drift_check: priority == Priority::Drift,
    };
    let (changes, report) = match proceed(
        plan(&cs.spec, cs.status.as_ref(), &observed, &facts)?,
        cs,
        ctx,
        gate,
        ("configuration set", name),
    )
    .await?
    {
        Proceed::RecordAdoption(adoption) => return Ok(Synced::MustRecordAdoption(adoption)),
        Proceed::Apply { changes, report } => (changes, report),
    };
    for change in &changes {
        session.apply_set_change(name, change, priority).await?;
    }
    let groups: Vec<&str> = changes.iter().map(SetChange::group).collect();
    ctx.report_changes(cs, report, &groups, |groups| {
        format!("configuration set {name} was changed outside the operator; restored: {groups}")
    })
    .await;
    Ok(Synced::InSync { arn })
}

/// What a plan needs besides the object and what SES holds.
struct Facts<'a> {
    name: &'a str,
    account: &'a str,
    owner: &'a Owner,
    /// The SesAccount lets this namespace adopt.
    adoption_allowed: bool,
    /// A reputation policy pauses the set.
    paused: bool,
    drift_check: bool,
}

/// What to do with the set SES holds.
type SetPlan = TaggedPlan<SetChange>;

/// Whose the set is and the changes that bring it to the spec. Pure.
fn plan(
    spec: &ConfigurationSetSpec,
    status: Option<&ConfigurationSetStatus>,
    observed: &ObservedSet,
    facts: &Facts<'_>,
) -> Result<SetPlan, Refusal> {
    let found = Found {
        tags: &observed.tags,
        recorded: status.and_then(|s| s.arn.as_ref()).is_some(),
        adoption: AdoptionAsk {
            asked: spec.adopt,
            allowed: facts.adoption_allowed,
            recorded: status.and_then(|s| s.adoption.as_ref()).map(|a| a.kept_tags.as_slice()),
        },
        drift_check: facts.drift_check,
        created: false,
    };
    ownership::plan_tagged(
        facts.owner,
        OWNER_TAG,
        found,
        diff::desired_tags(spec, (OWNER_TAG, &facts.owner.value)),
        diff::diff(&diff::desired_options(spec, facts.paused), &observed.options),
        diff::diff_tags,
    )
    .map_err(|why| Refusal::not_ours(why, "configuration set", facts.name, facts.account))
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
    let ns = cs.namespace().unwrap_or_default();
    ctx.metrics.remove_set(&ns, &cs.name_any());
    ctx.live.forget(&ns, &cs.name_any());
    if cs.deletion_policy() == DeletionPolicy::Retain {
        return retain(cs, &ctx).await;
    }
    let destinations: Vec<String> = ctx
        .caches
        .destinations_of(Some(&ns), &cs.name_any())
        .iter()
        .map(|d| d.name_any())
        .collect();
    if let Some((reason, msg)) = waiting_on(&identity_names(cs, &ctx), &destinations) {
        o.write_conditions(&conditions::reconciling(reason, msg.clone()))
            .await?;
        return Err(Halt::Waiting(msg));
    }
    let name = cs.aws_name();
    let what = format!("configuration set {name}");
    let account_key = match o.account_for_cleanup(&ctx, cs.spec.account_ref.as_deref(), &what).await {
        Ok(key) => key,
        Err(action) => return Ok(action),
    };
    match delete_if_owned(cs, &ctx, &account_key, &name).await {
        Ok(()) => {
            ctx.forget(&key_of(cs));
            Ok(Action::await_change())
        }
        // Stopping, not failing: the next leader deletes it.
        Err(e) if e.kind == ErrorKind::Cancelled => Err(Error::Aws(e).into()),
        Err(e) => {
            o.write_conditions(&conditions::reconciling(e.reason(), format!("deleting: {e}")))
                .await?;
            Err(Error::Aws(e).into())
        }
    }
}

/// deletionPolicy Retain: the set stays, the operator's stream destination
/// does not (it would keep publishing to a topic nobody reads, or that is
/// gone); an adopted set also loses the owner tag the adoption put on, so
/// it is as it was and can be adopted again.
async fn retain(cs: &ConfigurationSet, ctx: &Context) -> Result<Action, Halt> {
    let name = cs.aws_name();
    let status = cs.status.as_ref();
    let claimed = status.and_then(|s| s.stream_destination.as_ref()).is_some();
    let adopted = status.and_then(|s| s.adoption.as_ref()).is_some() && status.and_then(|s| s.arn.as_ref()).is_some();
    if (claimed || adopted)
        && let AccountAccess::Allowed { key: account_key, .. } = ctx
            .caches
            .account_for(&cs.namespace().unwrap_or_default(), cs.spec.account_ref.as_deref())
    {
        let session = ctx.session(&account_key).await?;
        if claimed {
            session
                .delete_event_destination(&name, STREAM_DESTINATION, Priority::Spec)
                .await?;
        }
        if adopted {
            let untag = SetChange::Untag(vec![OWNER_TAG.to_string()]);
            match session.apply_set_change(&name, &untag, Priority::Spec).await {
                // Gone already: nothing to give back.
                Err(e) if e.kind == ErrorKind::NotFound => {}
                result => result?,
            }
        }
    }
    let note = format!("deletionPolicy Retain: configuration set {name} is left in AWS");
    ctx.event(cs, EventType::Normal, "Retained", note).await;
    ctx.forget(&key_of(cs));
    Ok(Action::await_change())
}

/// What a set's deletion waits for: identities first (SES refuses to
/// delete a set an identity uses as default), then destinations.
fn waiting_on(identities: &[String], destinations: &[String]) -> Option<(&'static str, String)> {
    if !identities.is_empty() {
        let msg = format!(
            "waiting for EmailIdentities that use this set as default to be deleted or to use another set: {}",
            identities.join(", ")
        );
        return Some(("WaitingForEmailIdentities", msg));
    }
    if !destinations.is_empty() {
        let msg = format!(
            "waiting for EventDestinations to be deleted first: {}",
            destinations.join(", ")
        );
        return Some(("WaitingForEventDestinations", msg));
    }
    None
}

/// Deletes the set if its owner tag names this object; one that is gone
/// already is fine.
async fn delete_if_owned(
    cs: &ConfigurationSet,
    ctx: &Context,
    account_key: &crate::aws::AccountKey,
    name: &str,
) -> Result<(), AwsError> {
    let session = ctx.aws.session(account_key).await?;
    let recorded = cs.status.as_ref().and_then(|s| s.arn.as_ref()).is_some();
    match session.get_configuration_set(name, Priority::Spec).await? {
        Some(observed) if ctx.owns(observed.tags.get(OWNER_TAG), cs, recorded) => {
            session.delete_configuration_set(name, Priority::Spec).await?;
            let note = format!("deleted configuration set {name}");
            ctx.event(cs, EventType::Normal, "Deleted", note).await;
        }
        Some(_) => {
            let note = format!("configuration set {name} is not owned by this resource; left in AWS");
            ctx.event(cs, EventType::Normal, "DeleteSkipped", note).await;
        }
        None => {}
    }
    Ok(())
}

/// The EmailIdentities of the set's namespace that name it as their
/// default set (from the cache), sorted.
fn identity_names(cs: &ConfigurationSet, ctx: &Context) -> Vec<String> {
    let using = ctx.caches.identities_using(cs.namespace().as_deref(), &cs.name_any());
    using.iter().map(|i| i.name_any()).collect()
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::ownership::Report;

    fn spec(json: serde_json::Value) -> ConfigurationSetSpec {
        serde_json::from_value(json).expect("test spec deserializes")
    }

    fn owner() -> Owner {
        Owner::new("prod", &[], "team-a", "orders")
    }

    fn facts(owner: &Owner) -> Facts<'_> {
        Facts {
            name: "orders",
            account: "default",
            owner,
            adoption_allowed: true,
            paused: false,
            drift_check: false,
        }
    }

    /// The set as SES would hold it for `spec`, tagged for `owner_value`.
    fn in_aws(spec: &ConfigurationSetSpec, owner_value: Option<&str>) -> ObservedSet {
        let mut tags = spec.tags.clone();
        if let Some(value) = owner_value {
            tags.insert(OWNER_TAG.to_string(), value.to_string());
        }
        ObservedSet {
            options: diff::desired_options(spec, false),
            tags,
        }
    }

    fn created() -> ConfigurationSetStatus {
        ConfigurationSetStatus {
            arn: Some("arn:aws:ses:eu-west-1:123456789012:configuration-set/orders".into()),
            ..Default::default()
        }
    }

    #[test]
    fn deletion_waits_for_identities_before_destinations() {
        let ids = ["welcome".to_string()];
        let dests = ["bounces".to_string(), "opens".to_string()];
        let (reason, msg) = waiting_on(&ids, &dests).expect("waits");
        assert_eq!(reason, "WaitingForEmailIdentities");
        assert!(msg.ends_with(": welcome"), "{msg}");
        let (reason, msg) = waiting_on(&[], &dests).expect("waits");
        assert_eq!(reason, "WaitingForEventDestinations");
        assert!(msg.ends_with(": bounces, opens"), "{msg}");
        assert_eq!(waiting_on(&[], &[]), None);
    }

    #[test]
    fn an_owned_set_in_sync_needs_nothing() {
        let (owner, spec) = (owner(), spec(serde_json::json!({})));
        let observed = in_aws(&spec, Some(&owner.value));
        assert_eq!(
            plan(&spec, Some(&created()), &observed, &facts(&owner)),
            Ok(SetPlan::Apply {
                changes: vec![],
                adopting: None,
                restoring_tag: false,
                report: Report::Quiet
            })
        );
    }

    #[test]
    fn a_pause_turns_sending_off_and_a_drift_check_reports_drift() {
        let (owner, spec) = (owner(), spec(serde_json::json!({})));
        let mut observed = in_aws(&spec, Some(&owner.value));
        observed.tags.insert("added-by-hand".into(), "x".into());
        let facts = Facts {
            paused: true,
            drift_check: true,
            ..facts(&owner)
        };
        assert_eq!(
            plan(&spec, Some(&created()), &observed, &facts),
            Ok(SetPlan::Apply {
                changes: vec![
                    SetChange::Sending(false),
                    SetChange::Untag(vec!["added-by-hand".into()])
                ],
                adopting: None,
                restoring_tag: false,
                report: Report::DriftCorrected
            })
        );
    }

    #[test]
    fn an_owner_tag_removed_by_hand_goes_back_first() {
        let (owner, spec) = (owner(), spec(serde_json::json!({})));
        let mut observed = in_aws(&spec, None);
        observed.options.sending_enabled = false;
        let facts = Facts {
            drift_check: true,
            ..facts(&owner)
        };
        let tagged = BTreeMap::from([(OWNER_TAG.to_string(), owner.value.clone())]);
        assert_eq!(
            plan(&spec, Some(&created()), &observed, &facts),
            Ok(SetPlan::Apply {
                changes: vec![SetChange::Tag(tagged), SetChange::Sending(true)],
                adopting: None,
                restoring_tag: true,
                report: Report::DriftCorrected
            })
        );
    }

    #[test]
    fn a_set_of_another_tenant_is_refused_with_its_reason() {
        let spec = spec(serde_json::json!({"adopt": true}));
        let observed = in_aws(&spec, Some("prod/team-b/orders"));
        let refused = plan(&spec, None, &observed, &facts(&owner())).expect_err("not ours");
        assert_eq!(refused.reason(), "AlreadyExists");
        assert!(refused.to_string().contains("owned by another resource"), "{refused}");
    }

    #[test]
    fn an_untagged_set_needs_adopt() {
        let spec = spec(serde_json::json!({}));
        let refused = plan(&spec, None, &in_aws(&spec, None), &facts(&owner())).expect_err("not ours");
        assert_eq!(refused.reason(), "AlreadyExists");
        assert!(refused.to_string().contains("spec.adopt: true"), "{refused}");
    }

    #[test]
    fn adoption_the_account_forbids_is_refused() {
        let (owner, spec) = (owner(), spec(serde_json::json!({"adopt": true})));
        let facts = Facts {
            adoption_allowed: false,
            ..facts(&owner)
        };
        let refused = plan(&spec, None, &in_aws(&spec, None), &facts).expect_err("not allowed");
        assert_eq!(refused.reason(), "AdoptionNotAllowed");
    }

    #[test]
    fn adoption_is_recorded_then_the_owner_tag_goes_first_and_found_tags_stay() {
        let (owner, spec) = (
            owner(),
            spec(serde_json::json!({"adopt": true, "sending": {"enabled": false}})),
        );
        let mut observed = in_aws(&spec, None);
        observed.options.sending_enabled = true;
        observed.tags = BTreeMap::from([("cost-center".to_string(), "42".to_string())]);
        assert_eq!(
            plan(&spec, None, &observed, &facts(&owner)),
            Ok(SetPlan::RecordAdoption(vec!["cost-center".into()]))
        );
        let status = ConfigurationSetStatus {
            adoption: Some(Adoption {
                since: crate::reconcile::now(),
                kept_tags: vec!["cost-center".into()],
            }),
            ..Default::default()
        };
        // A drift check while adopting is not drift: the tag is new.
        let facts = Facts {
            drift_check: true,
            ..facts(&owner)
        };
        let tagged = BTreeMap::from([(OWNER_TAG.to_string(), owner.value.clone())]);
        assert_eq!(
            plan(&spec, Some(&status), &observed, &facts),
            Ok(SetPlan::Apply {
                changes: vec![SetChange::Tag(tagged), SetChange::Sending(false)],
                adopting: Some(vec!["cost-center".into()]),
                restoring_tag: false,
                report: Report::Updated
            })
        );
    }
}
