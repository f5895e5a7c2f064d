//! Reconciler for `EventDestination`: wait for the configuration set, make
//! the SNS topic (if the operator owns it) with its policy and
//! subscriptions, then create or update the SES event destination.

use std::sync::Arc;

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

use crate::api::conditions;
use crate::api::event_destination::{ClaimState, DestinationClaim, SubscriptionStatus, TopicSpec};
use crate::api::{ConfigurationSet, DeletionPolicy, EventDestination, EventDestinationStatus, OWNER_TAG};
use crate::aws::scheduler::Priority;
use crate::aws::{AwsError, ErrorKind, Session};
use crate::domain::diff::event_destination::{self as diff, DestinationChange};
use crate::domain::diff::topic;
use crate::domain::ownership;
use crate::domain::topic_policy;
use crate::reconcile::{
    AccountAccess, Begin, Context, Error, Halt, Obj, PassKey, Passed, Refusal, WriteGate, drive, fingerprint, key_of,
};

pub async fn reconcile(ed: Arc<EventDestination>, ctx: Arc<Context>) -> Result<Passed, Error> {
    drive(ed, ctx, apply, cleanup).await
}

async fn apply(o: Obj<EventDestination>, ctx: Arc<Context>) -> Result<Action, Halt> {
    let r = match resolve(&o, &ctx).await? {
        Ok(resolved) => resolved,
        Err(blocked) => return Ok(blocked),
    };
    let run = match o.begin(&ctx, &r.pass, false).await? {
        Begin::Skip(action) => return Ok(action),
        Begin::Run(run) => run,
    };
    // Event destinations carry no tags: this object's claim on one is
    // recorded before the create call.
    let dest_name = o.obj.aws_name();
    let claim = claim_of(&o.obj, &r.set_name);
    let o = if claim == Claim::New {
        let mut status = o.status();
        status.claim = Some(DestinationClaim {
            configuration_set: r.set_name.clone(),
            name: dest_name.clone(),
            state: ClaimState::Pending,
        });
        o.record(status, |ed, s| ed.status = Some(s)).await?
    } else {
        o
    };
    let ed = &*o.obj;
    let result = async {
        let session = ctx.session(&r.pass.account_key).await?;
        let way = Way {
            priority: run.priority,
            gate: run.gate,
            drift_period: ctx.drift_period(&r.pass.account),
            claim,
        };
        sync(ed, &ctx, &session, &r, way).await
    }
    .await;
    match result {
        Ok(mut status) => {
            status.claim = Some(DestinationClaim {
                configuration_set: r.set_name.clone(),
                name: dest_name.clone(),
                state: ClaimState::Created,
            });
            status.account = Some(r.pass.account.clone());
            status.conditions = o.status().conditions;
            let desired = conditions::ready(format!("event destination {dest_name} of {} is in sync", r.set_name));
            o.merge_conditions(&mut status, &desired);
            o.patch_status(&status).await?;
            Ok(ctx.synced(&r.pass.key, r.pass.fingerprint, &r.pass.account))
        }
        Err(Halt::Failed(Error::Refused(refusal @ Refusal::DestinationNotOurs(_)))) => {
            // Not ours: give up the claim, so deleting this object leaves it.
            let mut status = o.status();
            status.claim = None;
            let o = o.record(status, |ed, s| ed.status = Some(s)).await?;
            Err(o.fail(&ctx, &r.pass, run, refusal.into()).await)
        }
        Err(halt) => Err(o.fail(&ctx, &r.pass, run, halt).await),
    }
}

/// What a pass over a destination works from.
struct Resolved {
    pass: PassKey,
    /// The set's name and ARN in SES.
    set_name: String,
    set_arn: String,
}

/// The configuration set (Ready, else the destination waits or stalls with
/// it) and its account, from the cache.
async fn resolve(o: &Obj<EventDestination>, ctx: &Context) -> Result<Result<Resolved, Action>, Halt> {
    let ed = &*o.obj;
    let ns = ed.namespace().unwrap_or_default();
    let set_ref = &ed.spec.configuration_set_ref.name;
    let cached = ctx.caches.sets.get(&ObjectRef::new(set_ref).within(&ns));
    let (set, set_name, set_arn) = match set_state(set_ref, cached) {
        SetState::Ready { set, aws_name, arn } => (set, aws_name, arn),
        SetState::Missing(name) => {
            let msg = format!("ConfigurationSet {name} does not exist in namespace {ns}");
            return o.missing(ctx, "ConfigurationSetNotFound", msg).await.map(Err);
        }
        waiting => return o.blocked(ctx, &waiting.conditions()).await.map(Err),
    };
    let (account, generation, account_key) = match ctx.caches.account_for(&ns, set.spec.account_ref.as_deref()) {
        AccountAccess::Allowed { name, generation, key } => match o.refuse_changed_identity(ctx, &name).await? {
            Some(blocked) => return Ok(Err(blocked)),
            None => (name, generation, key),
        },
        AccountAccess::NotOurs(_) => return Ok(Err(Action::await_change())),
        AccountAccess::Missing(a) | AccountAccess::NotAllowed(a) => {
            let msg = format!(
                "SesAccount {a} of ConfigurationSet {} is missing or not allowed",
                set.name_any()
            );
            let blocked = o.blocked(ctx, &conditions::stalled("AccountNotAllowed", msg)).await?;
            return Ok(Err(blocked));
        }
    };
    let fingerprint = fingerprint((ed.metadata.generation, generation, &account_key, set.uid(), &set_arn));
    Ok(Ok(Resolved {
        pass: PassKey {
            key: key_of(ed),
            fingerprint,
            account,
            account_key,
        },
        set_name,
        set_arn,
    }))
}

/// The configuration set this destination belongs to, once it is Ready.
#[derive(Debug)]
enum SetState {
    Missing(String),
    NotReady(String),
    /// The set is Stalled: (name, its reason). Waiting would never end.
    Stalled(String, String),
    Ready {
        set: Arc<ConfigurationSet>,
        aws_name: String,
        arn: String,
    },
}

/// From the cached set: its status says whether it exists in AWS. Pure.
fn set_state(name: &str, set: Option<Arc<ConfigurationSet>>) -> SetState {
    let Some(set) = set else {
        return SetState::Missing(name.to_string());
    };
    let status = set.status.clone().unwrap_or_default();
    match (status.aws_name, status.arn) {
        (Some(aws_name), Some(arn)) if conditions::is_true(&status.conditions, conditions::READY) => {
            SetState::Ready { set, aws_name, arn }
        }
        _ => match conditions::status_of(&status.conditions, conditions::STALLED) {
            Some(c) if c.status == "True" => SetState::Stalled(name.to_string(), c.reason.clone()),
            _ => SetState::NotReady(name.to_string()),
        },
    }
}

impl SetState {
    /// The destination's conditions while the set exists and is not Ready.
    fn conditions(&self) -> Vec<conditions::Desired> {
        match self {
            SetState::NotReady(name) => conditions::reconciling(
                "WaitingForConfigurationSet",
                format!("waiting for ConfigurationSet {name} to be Ready"),
            ),
            SetState::Stalled(name, reason) => conditions::stalled(
                "ConfigurationSetStalled",
                format!("ConfigurationSet {name} is Stalled ({reason}); this destination waits for it to be fixed"),
            ),
            SetState::Missing(_) | SetState::Ready { .. } => Vec::new(),
        }
    }
}

/// What this object knows about its claim on the SES event destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Claim {
    /// Claimed in this pass: an existing destination is someone else's.
    New,
    /// Claimed in an earlier pass whose create may have succeeded.
    Unknown,
    Created,
}

/// The claim status records on the destination `set_name` needs. Pure.
fn claim_of(ed: &EventDestination, set_name: &str) -> Claim {
    match ed.status.as_ref().and_then(|s| s.claim.as_ref()) {
        Some(c) if c.configuration_set == set_name && c.name == ed.aws_name() => match c.state {
            ClaimState::Created => Claim::Created,
            ClaimState::Pending => Claim::Unknown,
        },
        // Created by a version that did not record claims.
        _ if created_before_claims(ed, set_name) => Claim::Created,
        _ => Claim::New,
    }
}

/// How one sync runs.
struct Way {
    priority: Priority,
    /// Checked before each AWS write (drift checks read from the cache).
    gate: WriteGate,
    /// Drift reads of the set's destination list younger than this are reused.
    drift_period: std::time::Duration,
    claim: Claim,
}

fn not_ours(set_name: &str, dest_name: &str) -> Refusal {
    Refusal::DestinationNotOurs(format!(
        "event destination {dest_name} already exists on configuration set {set_name} and is owned by another resource; it is left untouched"
    ))
}

/// A destination synced by an operator version that recorded no claim.
fn created_before_claims(ed: &EventDestination, set_name: &str) -> bool {
    ed.status
        .as_ref()
        .is_some_and(|s| s.claim.is_none() && s.target.is_some() && s.configuration_set.as_deref() == Some(set_name))
}

/// Observe -> plan -> apply for the topic, its subscriptions and the
/// destination; returns the AWS part of the status.
async fn sync(
    ed: &EventDestination,
    ctx: &Context,
    session: &Session,
    r: &Resolved,
    way: Way,
) -> Result<EventDestinationStatus, Halt> {
    let set_name = r.set_name.as_str();
    let mut status = EventDestinationStatus {
        observed_generation: ed.meta().generation,
        configuration_set: Some(set_name.to_string()),
        ..Default::default()
    };
    let dest_name = ed.aws_name();
    let topic_arn = match &ed.spec.sns {
        Some(sns) => match (&sns.topic_arn, &sns.topic) {
            (Some(arn), _) => {
                // A drift check of a topic the last pass accepted reads no
                // tags again: only a spec change (or the allow list) changes
                // the answer, and those come as spec passes.
                let accepted = way.priority == Priority::Drift
                    && ed.status.as_ref().and_then(|s| s.topic_arn.as_deref()) == Some(arn.as_str());
                let read = match accepted {
                    false => check_topic_arn(ed, ctx, session, arn, &r.pass.account).await?,
                    true => None,
                };
                // The policy is read on every pass (one SNS call, outside
                // the SES budget, none when the check above read it): its
                // owner may change it at any time.
                check_topic_policy(session, arn, &r.set_arn, read).await?;
                Some(arn.clone())
            }
            (None, Some(spec)) => {
                if let Some(message) = topic::invalid_filter_policy(&spec.subscriptions) {
                    return Err(Refusal::InvalidFilterPolicy(message).into());
                }
                let name = topic_name(spec, set_name, &dest_name);
                let arn = ensure_topic(ed, ctx, session, &name, spec, &r.set_arn, way.gate).await?;
                status.topic_owned = true;
                status.subscriptions = ensure_subscriptions(session, &arn, spec, way.gate).await?;
                Some(arn)
            }
            (None, None) => None,
        },
        None => None,
    };
    status.topic_arn = topic_arn.clone();
    let Some(desired) = diff::desired(&ed.spec, dest_name.clone(), topic_arn.as_deref()) else {
        return Err(Refusal::InvalidTarget("sns needs topicArn or topic".into()).into());
    };
    status.target = Some(desired.target.kind().to_string());
    ensure_destination(ed, ctx, session, set_name, &desired, &way).await?;
    // A topic this object created earlier and no longer uses (renamed, or
    // replaced by topicArn) is deleted once the destination points away.
    if let Some(previous) = abandoned_topic(ed.status.as_ref(), status.topic_arn.as_deref()) {
        way.gate.check()?;
        delete_owned_topic(ed, ctx, session, previous).await?;
    }
    Ok(status)
}

/// Creates or corrects the SES event destination.
async fn ensure_destination(
    ed: &EventDestination,
    ctx: &Context,
    session: &Session,
    set_name: &str,
    desired: &diff::Destination,
    way: &Way,
) -> Result<(), Halt> {
    let (priority, dest_name) = (way.priority, &desired.name);
    let created = || format!("created event destination {dest_name} on {set_name}");
    // Never created by this object: create without listing first (a set
    // created moments ago has no destinations); AlreadyExists falls back to
    // the list and diff below. Not when the last pass found the name taken.
    let never_created = ed
        .status
        .as_ref()
        .is_none_or(|s| s.target.is_none() && !conditions::found_name_taken(&s.conditions));
    if never_created && priority != Priority::Drift {
        match session.put_event_destination(set_name, desired, true, priority).await {
            Ok(()) => {
                ctx.event(ed, EventType::Normal, "Created", created()).await;
                return Ok(());
            }
            Err(e) if e.kind == ErrorKind::AlreadyExists && way.claim == Claim::New => {
                return Err(not_ours(set_name, dest_name).into());
            }
            Err(e) if e.kind == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Drift checks of a set's destinations share one read per drift period.
    let observed = match priority {
        Priority::Drift => {
            session
                .event_destinations_within(set_name, way.drift_period.mul_f64(0.9), priority)
                .await?
        }
        _ => session.get_event_destinations(set_name, priority).await?,
    };
    let Some(observed) = observed else {
        return Err(AwsError {
            operation: "sesv2:GetConfigurationSetEventDestinations",
            kind: ErrorKind::NotFound,
            code: "NotFoundException".into(),
            message: format!("configuration set {set_name} is not in AWS yet"),
        }
        .into());
    };
    let current = observed.iter().find(|d| d.name == *dest_name);
    let Some(change) = destination_plan(desired, current, way.claim, set_name)? else {
        return Ok(());
    };
    way.gate.check()?;
    session
        .put_event_destination(set_name, desired, change == DestinationChange::Create, priority)
        .await?;
    let (type_, reason, note) = match (change, priority) {
        (DestinationChange::Create, _) => (EventType::Normal, "Created", created()),
        (DestinationChange::Update, Priority::Drift) => (
            EventType::Warning,
            "DriftCorrected",
            format!("event destination {dest_name} was changed outside the operator; restored"),
        ),
        (DestinationChange::Update, _) => (
            EventType::Normal,
            "Updated",
            format!("updated event destination {dest_name}"),
        ),
    };
    ctx.event(ed, type_, reason, note).await;
    Ok(())
}

/// The change the destination needs, if any; refused when one of that
/// name exists on the set that this object never claimed. Pure.
fn destination_plan(
    desired: &diff::Destination,
    current: Option<&diff::Destination>,
    claim: Claim,
    set_name: &str,
) -> Result<Option<DestinationChange>, Refusal> {
    if current.is_some() && claim == Claim::New {
        return Err(not_ours(set_name, &desired.name));
    }
    Ok(diff::diff(desired, current))
}

/// The topic this object created earlier and no longer points at. Pure.
fn abandoned_topic<'a>(previous: Option<&'a EventDestinationStatus>, now: Option<&str>) -> Option<&'a str> {
    previous
        .filter(|s| s.topic_owned)
        .and_then(|s| s.topic_arn.as_deref())
        .filter(|arn| now != Some(*arn))
}

/// An existing topic named in `sns.topicArn` must be one the operator made
/// for this namespace or one the SesAccount allows: SES publishes this
/// set's events to it, so a tenant could otherwise feed (or, with AWS's
/// topic policy, silently fail to feed) another team's subscribers.
/// Returns the topic's policy when it had to read the topic.
async fn check_topic_arn(
    ed: &EventDestination,
    ctx: &Context,
    session: &Session,
    arn: &str,
    account: &str,
) -> Result<Option<String>, Halt> {
    let allowed: Vec<String> = ctx
        .caches
        .accounts
        .get(&ObjectRef::new(account))
        .and_then(|a| a.spec.notify.as_ref().map(|n| n.allowed_topic_arns.clone()))
        .unwrap_or_default();
    let namespace = ed.namespace().unwrap_or_default();
    let cluster = &ctx.settings.cluster_name;
    if ownership::topic_usable(None, cluster, &namespace, arn, &allowed) {
        return Ok(None);
    }
    // A topic elsewhere (another account) cannot be read: only the allow
    // list can admit it.
    let topic = match session.get_topic(arn).await {
        Ok(topic) => topic,
        Err(e)
            if matches!(
                e.kind,
                ErrorKind::AccessDenied | ErrorKind::NotFound | ErrorKind::BadRequest
            ) =>
        {
            None
        }
        Err(e) => return Err(e.into()),
    };
    let tag = topic.as_ref().and_then(|t| t.tags.get(OWNER_TAG));
    if ownership::topic_usable(tag.map(String::as_str), cluster, &namespace, arn, &allowed) {
        return Ok(topic.map(|mut t| t.attributes.remove("Policy").unwrap_or_default()));
    }
    Err(Refusal::TopicNotAllowed(format!(
        "SNS topic {arn} (spec.sns.topicArn) was not made by the operator for this namespace and is not in spec.notify.allowedTopicArns of SesAccount {account}"
    ))
    .into())
}

/// SES publishes to an existing topic only if the topic's policy lets it
/// (for this set's ARN); otherwise SNS drops every event and nothing
/// shows it. A topic in another account whose policy this role may not
/// read is taken on trust. `read`: the policy, when this pass read it.
async fn check_topic_policy(session: &Session, arn: &str, set_arn: &str, read: Option<String>) -> Result<(), Halt> {
    let observed = match read {
        Some(policy) => Ok(Some(policy)),
        None => session.get_topic_policy(arn).await,
    };
    let policy = match observed {
        Ok(Some(policy)) => policy,
        Ok(None) => {
            return Err(Refusal::TopicPolicyDeniesSes(format!(
                "SNS topic {arn} (spec.sns.topicArn) does not exist: SES has nowhere to publish"
            ))
            .into());
        }
        Err(e) if e.kind == ErrorKind::AccessDenied => {
            tracing::debug!(topic = arn, "topic policy not readable: taken on trust");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let request = topic_policy::Publish {
        topic_arn: arn,
        source_account: &session.account_id,
        source_arn: set_arn,
    };
    topic_policy::ses_may_publish(&policy, &request).map_err(|why| {
        Refusal::TopicPolicyDeniesSes(format!(
            "the access policy of SNS topic {arn} (spec.sns.topicArn) does not let SES publish this set's events, so SNS would drop them: {why}"
        ))
        .into()
    })
}

/// Deletes a topic if it carries this object's ownership tag.
async fn delete_owned_topic(ed: &EventDestination, ctx: &Context, session: &Session, arn: &str) -> Result<(), Halt> {
    if let Some(t) = session.get_topic(arn).await?
        && ctx.owns(
            t.tags.get(OWNER_TAG),
            ed,
            ed.status.as_ref().is_some_and(|s| s.topic_owned),
        )
    {
        session.delete_topic(arn).await?;
    }
    Ok(())
}

fn topic_name(spec: &TopicSpec, set_name: &str, dest_name: &str) -> String {
    spec.name.clone().unwrap_or_else(|| {
        let mut name = format!("{set_name}-{dest_name}");
        name.truncate(256);
        name
    })
}

/// Creates the topic if needed, checks it is ours, and sets its attributes
/// and access policy.
async fn ensure_topic(
    ed: &EventDestination,
    ctx: &Context,
    session: &Session,
    name: &str,
    spec: &TopicSpec,
    set_arn: &str,
    gate: WriteGate,
) -> Result<String, Halt> {
    let owner = ctx.owner_value(ed);
    let arn = session.topic_arn(name);
    let observed = match session.get_topic(&arn).await? {
        Some(t)
            if ctx.owns(
                t.tags.get(OWNER_TAG),
                ed,
                ed.status.as_ref().is_some_and(|s| s.topic_owned),
            ) =>
        {
            let tag = t.tags.get(OWNER_TAG);
            if tag != Some(&owner) {
                gate.check()?;
                let retag = session.tag_topic(&arn, (OWNER_TAG, &owner));
                ctx.migrate_owner_tag(ed, tag, &format!("SNS topic {name}"), retag)
                    .await?;
            }
            t.attributes
        }
        Some(_) => {
            return Err(Refusal::TopicNotOurs(format!("SNS topic {name} already exists and was not created by this resource; set spec.sns.topicArn to use it, or choose another topic name")).into());
        }
        None => {
            gate.check()?;
            session.create_topic(name, (OWNER_TAG, &owner)).await?;
            // A topic this object had made and someone deleted is drift:
            // its subscriptions had to be made anew too.
            let recreated = ed
                .status
                .as_ref()
                .is_some_and(|s| s.topic_owned && s.topic_arn.as_deref() == Some(arn.as_str()));
            let (type_, reason, note) = if recreated {
                (
                    EventType::Warning,
                    "TopicRecreated",
                    format!(
                        "SNS topic {name} was deleted outside the operator; recreated with its policy and subscriptions"
                    ),
                )
            } else {
                (EventType::Normal, "TopicCreated", format!("created SNS topic {name}"))
            };
            ctx.event(ed, type_, reason, note).await;
            Default::default()
        }
    };
    let desired = topic::desired_attributes(spec, &arn, &session.account_id, set_arn);
    let changes = topic::diff_attributes(&desired, &observed);
    if !changes.is_empty() {
        gate.check()?;
    }
    for (attr, value) in changes {
        session.set_topic_attribute(&arn, &attr, &value).await?;
    }
    Ok(arn)
}

async fn ensure_subscriptions(
    session: &Session,
    arn: &str,
    spec: &TopicSpec,
    gate: WriteGate,
) -> Result<Vec<SubscriptionStatus>, Halt> {
    let observed = session.list_subscriptions(arn).await?;
    let plan = topic::plan_subscriptions(&spec.subscriptions, &observed);
    let changed = !plan.subscribe.is_empty() || !plan.unsubscribe.is_empty();
    if changed {
        gate.check()?;
    }
    for sub in plan.subscribe {
        session
            .subscribe(
                arn,
                sub.protocol.as_str(),
                &sub.endpoint,
                topic::subscribe_attributes(sub),
            )
            .await?;
    }
    for sub_arn in plan.unsubscribe {
        session.unsubscribe(&sub_arn).await?;
    }
    // Confirmed subscriptions carry exactly the options the spec sets
    // (raw delivery, filter policy); pending ones cannot be changed yet.
    for sub in &spec.subscriptions {
        let Some(existing) = observed
            .iter()
            .find(|o| !o.is_pending() && o.protocol == sub.protocol.as_str() && o.endpoint == sub.endpoint)
        else {
            continue;
        };
        let current = session.get_subscription_attributes(&existing.arn).await?;
        let changes = topic::subscription_changes(sub, &current);
        if !changes.is_empty() {
            gate.check()?;
        }
        for (name, value) in changes {
            session.set_subscription_attribute(&existing.arn, &name, &value).await?;
        }
    }
    let current = if changed {
        session.list_subscriptions(arn).await?
    } else {
        observed
    };
    let mut out: Vec<SubscriptionStatus> = current
        .into_iter()
        .map(|s| SubscriptionStatus {
            state: if s.is_pending() {
                "PendingConfirmation".into()
            } else {
                "Confirmed".into()
            },
            arn: (!s.is_pending()).then_some(s.arn),
            protocol: s.protocol,
            endpoint: s.endpoint,
        })
        .collect();
    out.sort_by(|a, b| (&a.protocol, &a.endpoint).cmp(&(&b.protocol, &b.endpoint)));
    Ok(out)
}

async fn cleanup(o: Obj<EventDestination>, ctx: Arc<Context>) -> Result<Action, Halt> {
    let ed = &*o.obj;
    let key = key_of(ed);
    if ed.spec.deletion_policy == DeletionPolicy::Retain {
        ctx.event(
            ed,
            EventType::Normal,
            "Retained",
            "deletionPolicy Retain: AWS resources are left in place".into(),
        )
        .await;
        ctx.forget(&key);
        return Ok(Action::await_change());
    }
    let status = ed.status.clone().unwrap_or_default();
    let ns = ed.namespace().unwrap_or_default();
    let set = ctx
        .caches
        .sets
        .get(&ObjectRef::new(&ed.spec.configuration_set_ref.name).within(&ns));
    let account_ref = status
        .account
        .clone()
        .or_else(|| set.as_ref().and_then(|s| s.spec.account_ref.clone()));
    // Only a destination this object claimed is deleted: a name alone
    // could be another team's destination on a set of the same name.
    let claimed = status
        .claim
        .as_ref()
        .filter(|c| c.name == ed.aws_name())
        .map(|c| c.configuration_set.clone())
        .or_else(|| {
            let legacy = status.configuration_set.clone()?;
            created_before_claims(ed, &legacy).then_some(legacy)
        });
    let Some(set_name) = claimed else {
        ctx.forget(&key);
        return Ok(Action::await_change());
    };
    let what = format!(
        "event destination {} of {set_name} (and its owned topic)",
        ed.aws_name()
    );
    let account_key = match o.account_for_cleanup(&ctx, account_ref.as_deref(), &what).await {
        Ok(key) => key,
        Err(action) => return Ok(action),
    };
    let result: Result<(), Halt> = async {
        let session = ctx.session(&account_key).await?;
        session
            .delete_event_destination(&set_name, &ed.aws_name(), Priority::Spec)
            .await?;
        // The topic recorded in status, else the one the spec names (a
        // crash before the first status write).
        let owned_topic = if status.topic_owned {
            status.topic_arn.clone()
        } else {
            ed.spec
                .sns
                .as_ref()
                .filter(|s| s.topic_arn.is_none())
                .and_then(|s| s.topic.as_ref())
                .map(|spec| session.topic_arn(&topic_name(spec, &set_name, &ed.aws_name())))
        };
        if let Some(arn) = owned_topic {
            delete_owned_topic(ed, &ctx, &session, &arn).await?;
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            ctx.event(
                ed,
                EventType::Normal,
                "Deleted",
                format!("deleted event destination {} and its owned topic", ed.aws_name()),
            )
            .await;
            ctx.forget(&key);
            Ok(Action::await_change())
        }
        Err(Halt::Failed(e)) if e.is_stopping() => Err(e.into()),
        Err(Halt::Failed(Error::Aws(e))) => {
            o.write_conditions(&conditions::reconciling(e.reason(), format!("deleting: {e}")))
                .await?;
            Err(Error::Aws(e).into())
        }
        Err(halt) => Err(halt),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ConfigurationSetStatus;

    fn destination(status: Option<EventDestinationStatus>) -> EventDestination {
        let spec = serde_json::json!({
            "configurationSetRef": {"name": "orders"},
            "eventTypes": ["BOUNCE"],
            "sns": {"topicArn": "arn:aws:sns:eu-west-1:123456789012:bounces"},
        });
        let mut ed = EventDestination::new("bounces", serde_json::from_value(spec).expect("test spec deserializes"));
        ed.metadata.namespace = Some("team-a".into());
        ed.status = status;
        ed
    }

    fn claimed(set: &str, state: ClaimState) -> Option<EventDestinationStatus> {
        Some(EventDestinationStatus {
            claim: Some(DestinationClaim {
                configuration_set: set.into(),
                name: "bounces".into(),
                state,
            }),
            ..Default::default()
        })
    }

    #[test]
    fn a_claim_counts_only_for_the_set_it_names() {
        assert_eq!(claim_of(&destination(None), "orders"), Claim::New);
        assert_eq!(
            claim_of(&destination(claimed("orders", ClaimState::Pending)), "orders"),
            Claim::Unknown
        );
        assert_eq!(
            claim_of(&destination(claimed("orders", ClaimState::Created)), "orders"),
            Claim::Created
        );
        // The set was renamed: the old claim says nothing about the new one.
        assert_eq!(
            claim_of(&destination(claimed("orders", ClaimState::Created)), "orders-v2"),
            Claim::New
        );
        let legacy = EventDestinationStatus {
            target: Some("sns".into()),
            configuration_set: Some("orders".into()),
            ..Default::default()
        };
        assert_eq!(claim_of(&destination(Some(legacy)), "orders"), Claim::Created);
    }

    fn desired() -> diff::Destination {
        let ed = destination(None);
        diff::desired(
            &ed.spec,
            ed.aws_name(),
            Some("arn:aws:sns:eu-west-1:123456789012:bounces"),
        )
        .expect("sns target")
    }

    #[test]
    fn an_existing_destination_this_object_never_claimed_is_refused() {
        let want = desired();
        let refused = destination_plan(&want, Some(&want), Claim::New, "orders").expect_err("not ours");
        assert_eq!(refused.reason(), "AlreadyExists");
        assert!(refused.to_string().contains("configuration set orders"), "{refused}");
        // A claim from a pass that may have created it: the same one is ours.
        assert_eq!(destination_plan(&want, Some(&want), Claim::Unknown, "orders"), Ok(None));
    }

    #[test]
    fn a_missing_destination_is_created_and_a_changed_one_updated() {
        let want = desired();
        assert_eq!(
            destination_plan(&want, None, Claim::Created, "orders"),
            Ok(Some(DestinationChange::Create))
        );
        let mut changed = want.clone();
        changed.enabled = !want.enabled;
        assert_eq!(
            destination_plan(&want, Some(&changed), Claim::Created, "orders"),
            Ok(Some(DestinationChange::Update))
        );
    }

    #[test]
    fn only_an_owned_topic_no_longer_used_is_abandoned() {
        let status = |owned| EventDestinationStatus {
            topic_owned: owned,
            topic_arn: Some("arn:old".into()),
            ..Default::default()
        };
        assert_eq!(abandoned_topic(Some(&status(true)), Some("arn:new")), Some("arn:old"));
        assert_eq!(abandoned_topic(Some(&status(true)), None), Some("arn:old"));
        assert_eq!(abandoned_topic(Some(&status(true)), Some("arn:old")), None);
        assert_eq!(abandoned_topic(Some(&status(false)), Some("arn:new")), None);
        assert_eq!(abandoned_topic(None, Some("arn:new")), None);
    }

    fn set(status: ConfigurationSetStatus) -> Option<Arc<ConfigurationSet>> {
        let mut set = ConfigurationSet::new("orders", serde_json::from_value(serde_json::json!({})).expect("spec"));
        set.status = Some(status);
        Some(Arc::new(set))
    }

    fn condition(type_: &str, status: &str, reason: &str) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: crate::reconcile::now(),
        }
    }

    #[test]
    fn a_destination_waits_for_a_ready_set_and_stalls_with_a_stalled_one() {
        assert!(matches!(set_state("orders", None), SetState::Missing(_)));
        let created = ConfigurationSetStatus {
            aws_name: Some("orders".into()),
            arn: Some("arn:set".into()),
            ..Default::default()
        };
        assert!(matches!(
            set_state("orders", set(created.clone())),
            SetState::NotReady(_)
        ));
        let stalled = ConfigurationSetStatus {
            conditions: vec![condition(conditions::STALLED, "True", "AlreadyExists")],
            ..Default::default()
        };
        let state = set_state("orders", set(stalled));
        assert!(matches!(&state, SetState::Stalled(_, reason) if reason == "AlreadyExists"));
        let shown = state.conditions();
        assert!(shown.iter().any(|d| d.reason == "ConfigurationSetStalled"), "{shown:?}");
        let ready = ConfigurationSetStatus {
            conditions: vec![condition(conditions::READY, "True", "InSync")],
            ..created
        };
        assert!(matches!(set_state("orders", set(ready)), SetState::Ready { arn, .. } if arn == "arn:set"));
    }
}
