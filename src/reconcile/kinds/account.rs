//! Reconciler for `SesAccount`: checks the credentials (STS), reads the
//! account's SES state (GetAccount) and writes it to status.

use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use crate::api::SesAccount;
use crate::api::account::{AccountThresholds, SendQuota};
use crate::api::conditions::{self, Desired};
use crate::aws::scheduler::Priority;
use crate::domain::reputation::evaluation::rate_status;
use crate::domain::reputation::{self as rep, Level, Levels, Reading};
use crate::reconcile::{
    Begin, Context, Error, Halt, Obj, PassKey, Passed, Run, account_key, drive, event_stream as stream, fingerprint,
    key_of,
};

pub const ENFORCEMENT_HEALTHY: &str = "EnforcementHealthy";
/// The event stream (spec.eventStream) exists and is as it should be.
pub const EVENT_STREAM_READY: &str = "EventStreamReady";

pub async fn reconcile(account: Arc<SesAccount>, ctx: Arc<Context>) -> Result<Passed, Error> {
    drive(account, ctx, apply, cleanup).await
}

/// An account stays while resources still live in it: deleting it first
/// (a GitOps prune, `kubectl delete -f dir/`) would leave their AWS side
/// without credentials to clean up with.
async fn cleanup(o: Obj<SesAccount>, ctx: Arc<Context>) -> Result<Action, Halt> {
    let account = &*o.obj;
    let name = account.name_any();
    let is_default = name == ctx.settings.default_account;
    // Only what this operator manages (its watch namespace, if any): sets
    // without accountRef belong to this operator's default account.
    let mut users: Vec<String> = ctx
        .caches
        .sets
        .state()
        .iter()
        .filter(|cs| cs.spec.account_ref.as_deref().map_or(is_default, |a| a == name))
        .map(|cs| {
            format!(
                "ConfigurationSet {}/{}",
                cs.namespace().unwrap_or_default(),
                cs.name_any()
            )
        })
        .collect();
    users.extend(
        ctx.caches
            .destinations
            .state()
            .iter()
            .filter(|d| d.status.as_ref().and_then(|s| s.account.as_deref()) == Some(name.as_str()))
            .map(|d| {
                format!(
                    "EventDestination {}/{}",
                    d.namespace().unwrap_or_default(),
                    d.name_any()
                )
            }),
    );
    users.extend(
        ctx.caches
            .identities
            .state()
            .iter()
            .filter(|i| i.spec.account_ref.as_deref().map_or(is_default, |a| a == name))
            .map(|i| format!("EmailIdentity {}/{}", i.namespace().unwrap_or_default(), i.name_any())),
    );
    if users.is_empty() {
        // The stream goes last: the sets' destinations pointed at it.
        if account.spec.event_stream_enabled()
            || account.status.as_ref().and_then(|s| s.event_stream.as_ref()).is_some()
        {
            let session = ctx.session(&account_key(&account.spec)).await?;
            stream::delete(&ctx, account, &session).await?;
        }
        ctx.forget(&key_of(account));
        ctx.metrics.set_drift_period(&name, None);
        return Ok(Action::await_change());
    }
    users.sort();
    let msg = format!(
        "waiting for {} resource(s) in this account to be deleted first: {}",
        users.len(),
        users.join(", ")
    );
    o.write_conditions(&conditions::reconciling("InUse", msg.clone()))
        .await?;
    Err(Halt::Waiting(msg))
}

async fn apply(o: Obj<SesAccount>, ctx: Arc<Context>) -> Result<Action, Halt> {
    let account = &*o.obj;
    let name = account.name_any();
    let key = key_of(account);
    let account_key = account_key(&account.spec);
    let thresholds = account.spec.thresholds.clone().unwrap_or(AccountThresholds {
        bounce_rate: rep::AWS_BOUNCE,
        complaint_rate: rep::AWS_COMPLAINT,
    });
    let rates = rate_view(&ctx, account, &thresholds);
    if let Some(r) = &rates {
        ctx.metrics.set_account_reputation(
            &name,
            rep::known_value(r.levels.bounce, r.reading.bounce),
            rep::known_value(r.levels.complaint, r.reading.complaint),
        );
    }
    // Only a needed account pause (a spec-like change) bypasses the gate.
    // A pause the operator already made is not repeated after a resume by
    // hand until the rate has been seen below Critical (AWS rates trail).
    let overall = rates.as_ref().map_or(Level::Unknown, |r| r.levels.overall());
    let mut paused_at = account.status.as_ref().and_then(|s| s.paused_sending_at.clone());
    if matches!(overall, Level::Healthy | Level::Warning) {
        paused_at = None;
    }
    let wants_pause = account.spec.pause_account_sending
        && overall == Level::Critical
        && paused_at.is_none()
        && account.status.as_ref().and_then(|s| s.sending_enabled) == Some(true);
    let fp = fingerprint((account.metadata.generation, &account_key, wants_pause));
    let mut status = o.status();
    status.paused_sending_at = paused_at;
    status.drift = ctx.drift_status(&name);
    status.cluster_identity = Some(ctx.settings.cluster_name.clone());
    let pass = PassKey {
        key: key.clone(),
        fingerprint: fp,
        account: name.clone(),
        account_key: account_key.clone(),
    };
    let Run { priority, gate } = match o.begin(&ctx, &pass, false).await? {
        Begin::Skip(action) => {
            if let Some(r) = &rates {
                let desired = r.apply_to(&mut status);
                o.merge_conditions(&mut status, &desired);
            }
            o.patch_status(&status).await?;
            return Ok(action);
        }
        Begin::Run(run) => run,
    };
    // Every account pass writes status (the SES state it read), drift
    // checks too: fresh first.
    gate.check()?;
    let observed = async {
        let session = ctx.session(&account_key).await?;
        let mut state = session.get_account(priority).await?;
        if let Some(want) = &account.spec.suppression {
            let mut want = want.reasons.clone();
            want.sort();
            want.dedup();
            if want != state.suppressed_reasons {
                session.put_account_suppression(&want, priority).await?;
                state.suppressed_reasons = want;
            }
        }
        let mut paused_now = false;
        if wants_pause && state.sending_enabled {
            session.put_account_sending(false, Priority::Pause).await?;
            state.sending_enabled = false;
            paused_now = true;
            let note = "account-level rate is Critical: sending paused for the WHOLE account (spec.pauseAccountSending); resume with `aws sesv2 put-account-sending-attributes --sending-enabled`";
            ctx.event(account, EventType::Warning, "AccountSendingPaused", note.to_string()).await;
        }
        Ok::<_, Error>((session.account_id.clone(), state, paused_now))
    }
    .await;
    // The event stream, once the credentials are known to work; its
    // failures show on EventStreamReady and do not make the account unready.
    let streamed = match &observed {
        Ok(_) => Some(stream_pass(&ctx, account).await),
        Err(_) => None,
    };
    let (mut desired, outcome) = match observed {
        Ok((account_id, state, paused_now)) => {
            if paused_now {
                status.paused_sending_at = Some(crate::reconcile::now());
            }
            status.account_id = Some(account_id);
            let previous = account.status.as_ref().and_then(|s| s.enforcement_status.clone());
            if previous.is_some() && previous != state.enforcement_status {
                let now = state.enforcement_status.as_deref().unwrap_or("unknown");
                let type_ = if now == "HEALTHY" {
                    EventType::Normal
                } else {
                    EventType::Warning
                };
                let note = format!(
                    "AWS enforcement status changed from {} to {now}",
                    previous.as_deref().unwrap_or("unknown")
                );
                ctx.event(account, type_, "EnforcementStatusChanged", note).await;
            }
            status.enforcement_status = state.enforcement_status.clone();
            status.sending_enabled = Some(state.sending_enabled);
            status.production_access_enabled = Some(state.production_access_enabled);
            status.suppressed_reasons = Some(state.suppressed_reasons.clone());
            status.send_quota = Some(SendQuota {
                max24_hour_send: state.max_24_hour_send,
                max_send_rate: state.max_send_rate,
                sent_last24_hours: state.sent_last_24_hours,
            });
            // Open to every namespace is a choice a reviewer should see.
            let scope = if account.spec.allowed_namespaces.is_none() {
                "; every namespace may use this account (spec.allowedNamespaces is not set)"
            } else {
                ""
            };
            let mut desired = conditions::ready(format!("credentials work in {}{scope}", account.spec.region));
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
            (desired, Ok(ctx.synced(&key, fp, &name)))
        }
        Err(Error::Aws(e)) if e.is_terminal() => {
            // AccessDenied, or a refused setting: a dead end until the
            // role's policy or the spec changes; looked at once per drift period.
            ctx.stalled(&key, fp, &name);
            let again = ctx.stalled(&key, fp, &name);
            (
                conditions::stalled(e.reason(), e.to_string()),
                Err(Halt::Stalled(again)),
            )
        }
        Err(Error::Aws(e)) => {
            ctx.failed(&key, fp, priority);
            // A failed drift read of a working account keeps it Ready.
            let desired = if priority == Priority::Drift {
                Vec::new()
            } else {
                conditions::reconciling(e.reason(), format!("retrying: {e}"))
            };
            (desired, Err(Halt::Failed(Error::Aws(e))))
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(r) = &rates {
        desired.extend(r.apply_to(&mut status));
    }
    let mut outcome = outcome;
    let mut stream_off = false;
    match streamed {
        Some(Ok(Some(created))) => {
            status.event_stream = Some(created);
            desired.push(Desired::new(
                EVENT_STREAM_READY,
                true,
                "Ready",
                "SES events of this account's sets flow to the operator through SNS and SQS",
            ));
        }
        Some(Ok(None)) => {
            status.event_stream = None;
            stream_off = true;
        }
        Some(Err(e)) => {
            desired.push(Desired::new(EVENT_STREAM_READY, false, e.reason(), e.to_string()));
            // A transient failure is retried with back-off; a refusal
            // (not ours, a bad policy) waits for the drift period.
            if !e.is_terminal() && outcome.is_ok() {
                ctx.failed(&key, fp, priority);
                outcome = Err(Halt::Failed(e));
            }
        }
        None => {}
    }
    o.merge_conditions(&mut status, &desired);
    if stream_off {
        status.conditions.retain(|c| c.type_ != EVENT_STREAM_READY);
    }
    o.patch_status(&status).await?;
    outcome
}

/// Creates or corrects the event stream when the spec asks for it, deletes
/// it when it was turned off. `Ok(None)`: no stream.
async fn stream_pass(
    ctx: &Context,
    account: &SesAccount,
) -> Result<Option<crate::api::account::EventStreamStatus>, Error> {
    let had = account.status.as_ref().and_then(|s| s.event_stream.as_ref()).is_some();
    if !account.spec.event_stream_enabled() && !had {
        return Ok(None);
    }
    let session = ctx.aws.session(&account_key(&account.spec)).await?;
    if account.spec.event_stream_enabled() {
        return stream::sync(ctx, account, &session).await.map(Some);
    }
    stream::delete(ctx, account, &session).await?;
    ctx.event(
        account,
        EventType::Normal,
        "EventStreamDeleted",
        "spec.eventStream is off: the event stream's topic and queue were deleted".to_string(),
    )
    .await;
    Ok(None)
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

/// Account-level rates from the rate reader's cache, judged against the
/// account's thresholds.
struct RateView {
    reading: Reading,
    levels: Levels,
    applied: rep::Applied,
}

fn rate_view(ctx: &Context, account: &SesAccount, thresholds: &AccountThresholds) -> Option<RateView> {
    let reading = ctx.reputation.account_reading(&account.name_any())?;
    let applied = rep::Applied {
        bounce: thresholds.bounce_rate,
        complaint: thresholds.complaint_rate,
        bounce_sources: Default::default(),
        complaint_sources: Default::default(),
        pause_by: None,
        pause_point: None,
        auto_resume_after: None,
    };
    let levels = rep::levels(
        &reading,
        &applied,
        jiff::Timestamp::now(),
        ctx.settings.reputation.staleness,
    );
    Some(RateView {
        reading,
        levels,
        applied,
    })
}

impl RateView {
    /// Fills `status.reputation` and returns the two rate conditions.
    fn apply_to(&self, status: &mut crate::api::SesAccountStatus) -> Vec<Desired> {
        let by = || "SesAccount thresholds".to_string();
        let (block, conditions) = rate_status(
            &self.reading,
            &self.levels,
            &self.applied,
            "SesAccount".into(),
            [by(), by()],
        );
        status.reputation = Some(block);
        conditions
    }
}
