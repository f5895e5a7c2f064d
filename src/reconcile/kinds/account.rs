//! Reconciler for `SesAccount`: checks the credentials (STS), reads the
//! account's SES state (GetAccount) and writes it to status.

use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use crate::api::account::{AccountThresholds, AutoValidationStatus, FindingsStatus, SendQuota, TenantStatus};
use crate::api::conditions::{self, Desired};
use crate::api::{SesAccount, SesAccountStatus};
use crate::aws::scheduler::Priority;
use crate::domain::diff::configuration_set::Validation;
use crate::domain::findings;
use crate::domain::quota::{self, QuotaLevel};
use crate::domain::reputation::evaluation::rate_status;
use crate::domain::reputation::live_view::{self, LiveView};
use crate::domain::reputation::{self as rep, Level, Levels, Reading};
use crate::reconcile::{
    Begin, Context, Error, Halt, Obj, PassKey, Passed, Run, account_key, drive, event_stream as stream, fingerprint,
    key_of,
};

pub const ENFORCEMENT_HEALTHY: &str = "EnforcementHealthy";
/// The event stream (spec.eventStream) exists and is as it should be.
pub const EVENT_STREAM_READY: &str = "EventStreamReady";
/// Every namespace using the account has its SES tenant (spec.tenants).
pub const TENANTS_READY: &str = "TenantsReady";

pub async fn reconcile(account: Arc<SesAccount>, ctx: Arc<Context>) -> Result<Passed, Error> {
    drive(account, ctx, apply, cleanup).await
}

/// An account stays while resources still live in it: deleting it first
/// (a GitOps prune, `kubectl delete -f dir/`) would leave their AWS side
/// without credentials to clean up with.
async fn cleanup(o: Obj<SesAccount>, ctx: Arc<Context>) -> Result<Action, Halt> {
    let account = &*o.obj;
    let name = account.name_any();
    // Only what this operator manages (its watch namespace, if any): sets
    // without accountRef belong to this operator's default account.
    let index = &ctx.caches;
    let mut users: Vec<String> = index
        .sets_of_account(&name)
        .iter()
        .map(|cs| described("ConfigurationSet", &**cs))
        .collect();
    users.extend(
        index
            .destinations_of_account(&name)
            .iter()
            .map(|d| described("EventDestination", &**d)),
    );
    users.extend(
        index
            .identities_of_account(&name)
            .iter()
            .map(|i| described("EmailIdentity", &**i)),
    );
    if users.is_empty() {
        if account.spec.tenants.is_some() || account.status.as_ref().is_some_and(|s| !s.tenants.is_empty()) {
            let session = ctx.session(&account_key(&account.spec)).await?;
            crate::reconcile::tenants::delete_all(&ctx, account, &session).await?;
        }
        // The stream goes last: the sets' destinations pointed at it.
        if account.spec.event_stream_enabled()
            || account.status.as_ref().and_then(|s| s.event_stream.as_ref()).is_some()
        {
            let session = ctx.session(&account_key(&account.spec)).await?;
            stream::delete(&ctx, account, &session).await?;
        }
        ctx.forget(&key_of(account));
        ctx.metrics.set_drift_period(&name, None);
        ctx.metrics.set_quota_used(&name, None);
        for c in ctx
            .findings
            .of_account(&name)
            .map(|all| findings::counts(&all))
            .unwrap_or_default()
        {
            ctx.metrics.set_findings_open(&name, &c.type_, &c.impact, None);
        }
        ctx.findings.forget(&name);
        export_tenants(&ctx, account, &[]);
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

/// `Kind namespace/name`, as the InUse message lists users.
fn described<K: kube::Resource>(kind: &str, obj: &K) -> String {
    format!("{kind} {}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

async fn apply(o: Obj<SesAccount>, ctx: Arc<Context>) -> Result<Action, Halt> {
    let account = &*o.obj;
    let name = account.name_any();
    let key = key_of(account);
    let account_key = account_key(&account.spec);
    let rates = rate_view(&ctx, account);
    let overall = rates.as_ref().map_or(Level::Unknown, |r| r.levels.overall());
    let pause = pause_decision(account, overall);
    // Only a needed account pause (a spec-like change) bypasses the gate.
    let fp = fingerprint((account.metadata.generation, &account_key, pause.wanted));
    // Resources tagged under another cluster name: acting would disown
    // them all and make a second event stream. Nothing until the operator
    // is told to migrate (or keeps the old name).
    if let Some(blocked) = o.refuse_changed_identity(&ctx, &name).await? {
        return Ok(blocked);
    }
    let mut status = o.status();
    status.paused_sending_at = pause.paused_at;
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
            let mut desired = fold_findings(&ctx, &name, &mut status);
            if let Some(r) = &rates {
                desired.extend(r.apply_to(&mut status));
            }
            o.merge_conditions(&mut status, &desired);
            o.patch_status(&status).await?;
            return Ok(action);
        }
        Begin::Run(run) => run,
    };
    // Every account pass writes status (the SES state it read), drift
    // checks too: fresh first.
    gate.check()?;
    let observed = observe(&ctx, account, priority, pause.wanted).await;
    // The event stream, once the credentials are known to work; its
    // failures show on EventStreamReady and do not make the account unready.
    let streamed = match &observed {
        Ok(_) => Some(stream_pass(&ctx, account).await),
        Err(_) => None,
    };
    // The tenants likewise: their failures show on TenantsReady.
    let tenanted = match &observed {
        Ok(_) => Some(tenant_pass(&ctx, account, priority).await),
        Err(_) => None,
    };
    let mut quota_moved = None;
    let (mut desired, mut outcome) = match observed {
        Ok(observed) => {
            let previous = account.status.as_ref().and_then(|s| s.enforcement_status.clone());
            if let Some((type_, note)) =
                enforcement_change(previous.as_deref(), observed.state.enforcement_status.as_deref())
            {
                ctx.event(account, type_, "EnforcementStatusChanged", note).await;
            }
            let desired = record_observed(&mut status, account, observed);
            quota_moved = quota_move(account, &status);
            ctx.metrics
                .set_quota_used(&name, status.send_quota.as_ref().and_then(quota::used));
            (desired, Ok(ctx.synced(&key, fp, &name)))
        }
        Err(e) if e.is_stopping() => return Err(e.into()),
        Err(Error::Aws(e)) if e.is_terminal() => {
            // AccessDenied, or a refused setting: a dead end until the
            // role's policy or the spec changes; looked at once per drift period.
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
    desired.extend(fold_findings(&ctx, &name, &mut status));
    let (failed, dropped) = record_side_passes(&ctx, account, &mut status, &mut desired, streamed, tenanted);
    if let Some(e) = failed
        && outcome.is_ok()
    {
        ctx.failed(&key, fp, priority);
        outcome = Err(Halt::Failed(e));
    }
    o.merge_conditions(&mut status, &desired);
    status.conditions.retain(|c| !dropped.contains(&c.type_.as_str()));
    o.patch_status(&status).await?;
    // After the status that records the new level: a retried pass sees
    // it and does not announce twice.
    if let Some(moved) = quota_moved {
        announce_quota(&ctx, account, moved).await;
    }
    outcome
}

/// The event stream's and the tenants' passes folded into status and
/// their conditions: the first transient failure (to retry with back-off),
/// and the condition types to drop because their feature is off.
fn record_side_passes(
    ctx: &Context,
    account: &SesAccount,
    status: &mut SesAccountStatus,
    desired: &mut Vec<Desired>,
    streamed: Option<Result<Option<crate::api::account::EventStreamStatus>, Error>>,
    tenanted: Option<Result<Vec<TenantStatus>, Error>>,
) -> (Option<Error>, Vec<&'static str>) {
    let mut dropped = Vec::new();
    if matches!(streamed, Some(Ok(None))) {
        dropped.push(EVENT_STREAM_READY);
    }
    if account.spec.tenants.is_none() && matches!(&tenanted, Some(Ok(t)) if t.is_empty()) {
        dropped.push(TENANTS_READY);
    }
    if let Some(Ok(now)) = &tenanted {
        export_tenants(ctx, account, now);
    }
    let stream_failed = streamed.and_then(|result| record_stream(status, desired, result));
    let tenants_failed = tenanted.and_then(|result| record_tenants(status, desired, result));
    (stream_failed.or(tenants_failed), dropped)
}

/// AWS's open findings in the account, counted, with the Findings
/// condition; nothing before the findings reader's first read.
fn fold_findings(ctx: &Context, name: &str, status: &mut SesAccountStatus) -> Vec<Desired> {
    let Some(all) = ctx.findings.of_account(name) else {
        return Vec::new();
    };
    status.findings = Some(FindingsStatus {
        open: findings::counts(&all),
    });
    vec![findings::account_condition(&all)]
}

/// A change of the quota level this pass read.
struct QuotaMove {
    previous: Option<QuotaLevel>,
    quota: SendQuota,
    event: (EventType, &'static str),
}

/// Whether the quota level moved since the status this pass started from. Pure.
fn quota_move(account: &SesAccount, status: &SesAccountStatus) -> Option<QuotaMove> {
    let quota = status.send_quota.clone()?;
    let spec = account.spec.quota.clone().unwrap_or_default();
    let previous = account
        .status
        .as_ref()
        .and_then(|s| quota::previous_level(&s.conditions));
    let event = quota::transition(previous, quota::level(&quota, &spec))?;
    Some(QuotaMove { previous, quota, event })
}

/// The Event, and the SNS alert when spec.quota.notifyTopicArn asks for
/// one; a failed publish is a Warning Event, not a failed pass.
async fn announce_quota(ctx: &Context, account: &SesAccount, moved: QuotaMove) {
    let spec = account.spec.quota.clone().unwrap_or_default();
    let condition = quota::condition(&moved.quota, &spec);
    let (type_, reason) = moved.event;
    ctx.event(account, type_, reason, condition.message).await;
    let Some(topic) = &spec.notify_topic_arn else { return };
    let (subject, body) = quota::alert(
        &account.name_any(),
        &moved.quota,
        &spec,
        moved.previous,
        jiff::Timestamp::now(),
    );
    let published = match ctx.session(&account_key(&account.spec)).await {
        Ok(session) => session.publish(topic, &subject, &body).await.map_err(Error::Aws),
        Err(e) => Err(e),
    };
    if let Err(e) = published {
        let note = format!("quota alert to {topic} not published: {e}");
        ctx.event(account, EventType::Warning, "NotifyFailed", note).await;
    }
}

/// Folds the event stream's pass into status and its condition; a
/// transient failure comes back to be retried with back-off (a refusal,
/// not ours or a bad policy, waits for the drift period). Pure.
fn record_stream(
    status: &mut SesAccountStatus,
    desired: &mut Vec<Desired>,
    streamed: Result<Option<crate::api::account::EventStreamStatus>, Error>,
) -> Option<Error> {
    match streamed {
        Ok(created) => {
            if created.is_some() {
                desired.push(Desired::new(
                    EVENT_STREAM_READY,
                    true,
                    "Ready",
                    "SES events of this account's sets flow to the operator through SNS and SQS",
                ));
            }
            status.event_stream = created;
            None
        }
        // Stopping says nothing about the stream: its condition stays.
        Err(e) if e.is_stopping() => None,
        Err(e) => {
            desired.push(Desired::new(EVENT_STREAM_READY, false, e.reason(), e.to_string()));
            (!e.is_terminal()).then_some(e)
        }
    }
}

/// `ses_reputation_tenant_sending` for the tenants read (`now`); the
/// series of tenants the status listed before and `now` does not go.
fn export_tenants(ctx: &Context, account: &SesAccount, now: &[TenantStatus]) {
    let name = account.name_any();
    let before = account
        .status
        .as_ref()
        .map(|s| s.tenants.as_slice())
        .unwrap_or_default();
    for gone in before.iter().filter(|b| !now.iter().any(|n| n.name == b.name)) {
        ctx.metrics.set_tenant_sending(&name, &gone.namespace, &gone.name, None);
    }
    for t in now {
        let sending = t.sending.as_deref().map(|s| s != "DISABLED");
        ctx.metrics.set_tenant_sending(&name, &t.namespace, &t.name, sending);
    }
}

/// The tenants' sync, when the account has or had tenants.
async fn tenant_pass(ctx: &Context, account: &SesAccount, priority: Priority) -> Result<Vec<TenantStatus>, Error> {
    let session = ctx.aws.session(&account_key(&account.spec)).await?;
    crate::reconcile::tenants::sync(ctx, account, &session, priority).await
}

/// Folds the tenants' pass into status and TenantsReady; a transient
/// failure comes back to be retried with back-off (the last tenants read
/// stay in status meanwhile). Pure.
fn record_tenants(
    status: &mut SesAccountStatus,
    desired: &mut Vec<Desired>,
    tenanted: Result<Vec<TenantStatus>, Error>,
) -> Option<Error> {
    match tenanted {
        Ok(tenants) => {
            if !tenants.is_empty() {
                let problems: Vec<&str> = tenants.iter().filter_map(|t| t.problem.as_deref()).collect();
                desired.push(if problems.is_empty() {
                    Desired::new(
                        TENANTS_READY,
                        true,
                        "Ready",
                        format!("{} namespace(s) have their SES tenant", tenants.len()),
                    )
                } else {
                    Desired::new(TENANTS_READY, false, "TenantNotOurs", problems.join("; "))
                });
            }
            status.tenants = tenants;
            None
        }
        Err(e) if e.is_stopping() => None,
        Err(e) => {
            desired.push(Desired::new(TENANTS_READY, false, e.reason(), e.to_string()));
            (!e.is_terminal()).then_some(e)
        }
    }
}

/// Whether this pass pauses the whole account, and since when the
/// operator's pause stands.
#[derive(Debug, PartialEq)]
struct PauseDecision {
    wanted: bool,
    paused_at: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
}

/// A pause the operator already made is not repeated after a resume by
/// hand until the rate has been seen below Critical (AWS rates trail).
/// Pure.
fn pause_decision(account: &SesAccount, overall: Level) -> PauseDecision {
    let status = account.status.as_ref();
    let paused_at = status
        .and_then(|s| s.paused_sending_at.clone())
        .filter(|_| !matches!(overall, Level::Healthy | Level::Warning));
    let wanted = account.spec.pause_account_sending
        && overall == Level::Critical
        && paused_at.is_none()
        && status.and_then(|s| s.sending_enabled) == Some(true);
    PauseDecision { wanted, paused_at }
}

/// What one account pass read from SES (after its corrections).
struct Observed {
    account_id: String,
    state: crate::aws::ses::Account,
    paused_now: bool,
}

/// GetAccount, then the account-level suppression list and the account
/// pause when they need correcting.
async fn observe(
    ctx: &Context,
    account: &SesAccount,
    priority: Priority,
    wants_pause: bool,
) -> Result<Observed, Error> {
    let session = ctx.session(&account_key(&account.spec)).await?;
    let mut state = session.get_account(priority).await?;
    let reasons = account.spec.suppression.as_ref().map(|want| {
        let mut want = want.reasons.clone();
        want.sort();
        want.dedup();
        want
    });
    let validation = account
        .spec
        .auto_validation
        .as_ref()
        .and_then(|want| Validation::from_spec(want).correction(state.validation.as_ref()));
    if reasons.as_ref().is_some_and(|want| *want != state.suppressed_reasons) || validation.is_some() {
        // One call sets both: the part the spec leaves out carries AWS's.
        let reasons = reasons.unwrap_or_else(|| state.suppressed_reasons.clone());
        let validation = validation.or(state.validation);
        session
            .put_account_suppression(&reasons, validation.as_ref(), priority)
            .await?;
        state.suppressed_reasons = reasons;
        state.validation = validation;
    }
    let mut paused_now = false;
    if wants_pause && state.sending_enabled {
        session.put_account_sending(false, Priority::Pause).await?;
        state.sending_enabled = false;
        paused_now = true;
        let note = "account-level rate is Critical: sending paused for the WHOLE account (spec.pauseAccountSending); resume with `aws sesv2 put-account-sending-attributes --sending-enabled`";
        ctx.event(account, EventType::Warning, "AccountSendingPaused", note.to_string())
            .await;
    }
    Ok(Observed {
        account_id: session.account_id.clone(),
        state,
        paused_now,
    })
}

/// An Event when AWS's enforcement status moved. Pure.
fn enforcement_change(previous: Option<&str>, now: Option<&str>) -> Option<(EventType, String)> {
    if previous.is_none() || previous == now {
        return None;
    }
    let now = now.unwrap_or("unknown");
    let type_ = if now == "HEALTHY" {
        EventType::Normal
    } else {
        EventType::Warning
    };
    let note = format!(
        "AWS enforcement status changed from {} to {now}",
        previous.unwrap_or("unknown")
    );
    Some((type_, note))
}

/// Writes what SES holds into status and returns the conditions it
/// implies. Pure.
fn record_observed(status: &mut SesAccountStatus, account: &SesAccount, observed: Observed) -> Vec<Desired> {
    let Observed {
        account_id,
        state,
        paused_now,
    } = observed;
    if paused_now {
        status.paused_sending_at = Some(crate::reconcile::now());
    }
    status.account_id = Some(account_id);
    status.enforcement_status = state.enforcement_status.clone();
    status.sending_enabled = Some(state.sending_enabled);
    status.production_access_enabled = Some(state.production_access_enabled);
    status.suppressed_reasons = Some(state.suppressed_reasons.clone());
    status.auto_validation = state.validation.map(|v| AutoValidationStatus {
        enabled: v.enabled,
        confidence_threshold: v.threshold,
    });
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
    if let Some(q) = &status.send_quota {
        desired.push(quota::condition(q, &account.spec.quota.clone().unwrap_or_default()));
    }
    desired
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

/// Account-level rates, judged against the account's thresholds: the rate
/// reader's CloudWatch reading and, with the event stream, the live rate
/// of all the account's sets (the worse of the two, per metric, once the
/// account breaker has its minimum sends).
struct RateView {
    reading: Reading,
    levels: Levels,
    applied: rep::Applied,
    live: Option<LiveView>,
    sources: [live_view::Source; 2],
}

/// Also exported on /metrics.
fn rate_view(ctx: &Context, account: &SesAccount) -> Option<RateView> {
    let thresholds = account.spec.thresholds.clone().unwrap_or(AccountThresholds {
        bounce_rate: rep::AWS_BOUNCE,
        complaint_rate: rep::AWS_COMPLAINT,
    });
    let applied = rep::Applied {
        bounce: thresholds.bounce_rate,
        complaint: thresholds.complaint_rate,
        bounce_sources: Default::default(),
        complaint_sources: Default::default(),
        pause_by: None,
        pause_point: None,
        auto_resume_after: None,
    };
    let now = jiff::Timestamp::now();
    let cloudwatch = ctx.reputation.account_reading(&account.name_any());
    let live = account_live(ctx, account, &applied, now);
    if cloudwatch.is_none() && live.is_none() {
        return None;
    }
    let cloudwatch = cloudwatch.unwrap_or_default();
    let cw_levels = rep::levels(&cloudwatch, &applied, now, ctx.settings.reputation.staleness);
    let (reading, levels, sources) = live_view::combine(&cloudwatch, cw_levels, live.as_ref(), now);
    ctx.metrics.set_account_reputation(
        &account.name_any(),
        rep::known_value(levels.bounce, reading.bounce),
        rep::known_value(levels.complaint, reading.complaint),
    );
    Some(RateView {
        reading,
        levels,
        applied,
        live,
        sources,
    })
}

/// The account's live window: its sets' windows added up, judged by the
/// account breaker (`spec.eventStream.breaker`); `None` without a stream.
fn account_live(ctx: &Context, account: &SesAccount, applied: &rep::Applied, now: jiff::Timestamp) -> Option<LiveView> {
    let stream = account.spec.event_stream.as_ref().filter(|s| s.enabled)?;
    let breaker = stream.breaker.as_ref().and_then(|b| {
        Some(live_view::Breaker {
            window: rep::parse_duration(&b.window)?,
            minimum_sends: b.minimum_sends.max(1),
        })
    });
    let sets = ctx.caches.sets_of_account(&account.name_any());
    let summary = ctx
        .live
        .account_summary(&sets, live_view::window(breaker).as_secs(), now)?;
    Some(LiveView::judge(summary, breaker, applied, now))
}

impl RateView {
    /// Fills `status.reputation` and returns the two rate conditions.
    fn apply_to(&self, status: &mut crate::api::SesAccountStatus) -> Vec<Desired> {
        let by = |source: live_view::Source| match source {
            live_view::Source::CloudWatch => "SesAccount thresholds".to_string(),
            live_view::Source::Events => "SesAccount thresholds (live rate, spec.eventStream.breaker)".to_string(),
        };
        let (mut block, conditions) = rate_status(
            &self.reading,
            &self.levels,
            &self.applied,
            "SesAccount".into(),
            [by(self.sources[0]), by(self.sources[1])],
        );
        block.live = self.live.as_ref().map(LiveView::status);
        block.source = Some(
            if self.sources.contains(&live_view::Source::Events) {
                live_view::Source::Events
            } else {
                live_view::Source::CloudWatch
            }
            .as_str()
            .to_string(),
        );
        status.reputation = Some(block);
        conditions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(pause: bool, status: Option<SesAccountStatus>) -> SesAccount {
        let spec = serde_json::json!({"region": "eu-west-1", "pauseAccountSending": pause});
        let mut account = SesAccount::new("default", serde_json::from_value(spec).expect("test spec deserializes"));
        account.status = status;
        account
    }

    fn sending(enabled: bool, paused_at: bool) -> Option<SesAccountStatus> {
        Some(SesAccountStatus {
            sending_enabled: Some(enabled),
            paused_sending_at: paused_at.then(crate::reconcile::now),
            ..Default::default()
        })
    }

    #[test]
    fn a_critical_rate_pauses_the_account_only_when_the_spec_asks() {
        assert!(pause_decision(&account(true, sending(true, false)), Level::Critical).wanted);
        assert!(!pause_decision(&account(false, sending(true, false)), Level::Critical).wanted);
        assert!(!pause_decision(&account(true, sending(true, false)), Level::Warning).wanted);
        // Not read yet: nothing to pause from.
        assert!(!pause_decision(&account(true, None), Level::Critical).wanted);
    }

    #[test]
    fn a_resume_by_hand_holds_until_the_rate_was_seen_below_critical() {
        // Paused by the operator, resumed by hand, the rate still Critical
        // (AWS's rate trails): no second pause.
        let held = pause_decision(&account(true, sending(true, true)), Level::Critical);
        assert!(!held.wanted);
        assert!(held.paused_at.is_some());
        // Unknown (no fresh reading) keeps the record too.
        assert!(
            pause_decision(&account(true, sending(true, true)), Level::Unknown)
                .paused_at
                .is_some()
        );
        // Seen healthy: the record goes, a later spike pauses again.
        let cleared = pause_decision(&account(true, sending(true, true)), Level::Healthy);
        assert_eq!(
            cleared,
            PauseDecision {
                wanted: false,
                paused_at: None
            }
        );
    }

    #[test]
    fn enforcement_changes_are_announced_after_the_first_read() {
        assert_eq!(enforcement_change(None, Some("PROBATION")), None);
        assert_eq!(enforcement_change(Some("HEALTHY"), Some("HEALTHY")), None);
        let (type_, note) = enforcement_change(Some("HEALTHY"), Some("PROBATION")).expect("changed");
        assert_eq!(type_, EventType::Warning);
        assert_eq!(note, "AWS enforcement status changed from HEALTHY to PROBATION");
        let (type_, _) = enforcement_change(Some("PROBATION"), Some("HEALTHY")).expect("changed");
        assert_eq!(type_, EventType::Normal);
    }

    #[test]
    fn status_shows_what_ses_holds_and_says_when_every_namespace_may_use_it() {
        let state = crate::aws::ses::Account {
            enforcement_status: Some("SHUTDOWN".into()),
            sending_enabled: false,
            production_access_enabled: true,
            max_24_hour_send: 50_000.0,
            max_send_rate: 14.0,
            sent_last_24_hours: 1_200.0,
            suppressed_reasons: vec![],
            validation: None,
        };
        let mut status = SesAccountStatus::default();
        let observed = Observed {
            account_id: "123456789012".into(),
            state,
            paused_now: true,
        };
        let desired = record_observed(&mut status, &account(true, None), observed);
        assert_eq!(status.account_id.as_deref(), Some("123456789012"));
        assert_eq!(status.sending_enabled, Some(false));
        assert!(status.paused_sending_at.is_some());
        assert_eq!(status.send_quota.as_ref().map(|q| q.max24_hour_send), Some(50_000.0));
        let ready = desired.iter().find(|d| d.type_ == conditions::READY).expect("Ready");
        assert!(
            ready.message.contains("every namespace may use this account"),
            "{}",
            ready.message
        );
        let by_type = |t: &str| {
            desired
                .iter()
                .find(|d| d.type_ == t)
                .map(|d| (d.status, d.reason.as_str()))
        };
        assert_eq!(by_type(conditions::SENDING_ENABLED), Some((Some(false), "Paused")));
        assert_eq!(by_type(ENFORCEMENT_HEALTHY), Some((Some(false), "Shutdown")));
    }
}
