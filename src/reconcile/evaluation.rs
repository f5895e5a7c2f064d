//! The reputation evaluation the ConfigurationSet reconciler folds into a
//! set's status: it gathers the values the pure verdict is judged on
//! (`domain::reputation::evaluation`) from the caches, the rate reader and
//! the live windows, and does what the verdict asks of the world: status at
//! write time, gauges, events and SNS alerts on level changes. It also
//! resolves notify targets against the caches (shared with the
//! ReputationPolicy reconciler).

use std::sync::Arc;

use jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;

use super::{Context, now};
use crate::api::reputation_policy::Notify;
use crate::api::{ConfigurationSet, ConfigurationSetStatus, SesAccount};
use crate::aws::Session;
use crate::domain::reputation::evaluation::{self as verdict, Evaluation, Inputs, SetFinding};
use crate::domain::reputation::live_view;
use crate::domain::reputation::notify::{self, NotifyTarget};
use crate::domain::reputation::{Pause, PauseStep, known_value, selector_unreadable};

/// The reputation verdict for one set at one reconcile, and what the
/// reconciler does with it.
pub struct SetEvaluation(Evaluation);

/// Evaluates a set's reputation from the cached reading and the policies
/// that select it. `None` until the first rate read after start-up: the
/// stored status stays as it was rather than flapping to Unknown.
pub fn evaluate(cs: &ConfigurationSet, ctx: &Context) -> Option<SetEvaluation> {
    let ns = cs.namespace();
    let reading = ctx
        .reputation
        .set_reading(ns.as_deref().unwrap_or_default(), &cs.name_any());
    let policies = ctx.caches.policies_in(ns.as_deref());
    let selecting = crate::domain::reputation::selecting(cs, &policies);
    let now = Timestamp::now();
    // A policy weighs findings the operator has not read since it started:
    // no verdict yet, the stored one stands (as before the first rate read).
    let findings = high_findings(cs, ctx, &selecting)?;
    let live = ctx
        .live
        .summary_of(cs, &ctx.caches, live_view::breaker(&selecting), now);
    verdict::evaluate(Inputs {
        set: cs,
        reading,
        selecting: &selecting,
        unreadable_selector: policies.iter().any(|p| selector_unreadable(p)),
        live,
        staleness: ctx.settings.reputation.staleness,
        findings,
        now,
    })
    .map(SetEvaluation)
}

/// The HIGH-impact open findings of the identities whose default set is
/// `cs` (from the findings reader), when a selecting policy weighs them;
/// `None` while the account's findings have not been read yet.
fn high_findings(
    cs: &ConfigurationSet,
    ctx: &Context,
    selecting: &[&crate::api::ReputationPolicy],
) -> Option<Vec<SetFinding>> {
    if selecting.iter().all(|p| p.spec.findings.is_none()) {
        return Some(Vec::new());
    }
    let account = ctx.caches.account_name(cs.spec.account_ref.as_deref()).to_string();
    ctx.findings.of_account(&account)?;
    let mut out = Vec::new();
    for id in ctx.caches.identities_using(cs.namespace().as_deref(), &cs.name_any()) {
        let Some(arn) = id.status.as_ref().and_then(|s| s.arn.as_deref()) else {
            continue;
        };
        for f in ctx.findings.of_resource(&account, arn).unwrap_or_default() {
            if f.impact == "HIGH" {
                out.push(SetFinding {
                    identity: id.spec.identity.clone(),
                    type_: f.type_,
                });
            }
        }
    }
    Some(out)
}

impl SetEvaluation {
    /// What this evaluation does to a pause (stay, pause, resume).
    pub fn step(&self) -> &PauseStep {
        self.0.step()
    }

    /// The set's overall level (rates and, where a policy asks, findings).
    pub fn overall(&self) -> crate::domain::reputation::Level {
        self.0.overall()
    }

    /// The pause in force after this evaluation.
    pub fn paused(&self) -> Option<&Pause> {
        self.0.paused()
    }

    /// Writes the reputation block, the rate conditions and the pause (see
    /// [`Evaluation::apply_to`]); conditions that change are stamped now.
    pub fn apply_to(&self, status: &mut ConfigurationSetStatus, generation: Option<i64>, in_aws: bool) {
        self.0.apply_to(status, generation, in_aws, &now());
    }

    /// Feeds the Prometheus gauges; a stale or missing rate has no series.
    pub fn record_metrics(&self, metrics: &crate::ops::metrics::Metrics, namespace: &str, name: &str) {
        let ev = &self.0;
        metrics.set_set_reputation(
            namespace,
            name,
            known_value(ev.cw_levels.bounce, ev.cw_reading.bounce),
            known_value(ev.cw_levels.complaint, ev.cw_reading.complaint),
            ev.overall().gauge(),
        );
        metrics.set_set_paused(namespace, name, ev.paused().is_some());
        if let Some(live) = &ev.live {
            let s = &live.summary;
            metrics.set_set_live(namespace, name, s.bounce_rate, s.complaint_rate, s.counts.sends);
        }
    }

    /// Events and SNS alerts for what changed; call after the status that
    /// records the change is written, so a retry does not repeat them.
    pub async fn announce(&self, cs: &ConfigurationSet, ctx: &Context, session: Option<&Session>, in_aws: bool) {
        let ev = &self.0;
        for note in ev.notes(cs, in_aws) {
            ctx.event(cs, note.type_, &note.reason, note.message).await;
        }
        if ev.level_change().is_none() {
            return;
        }
        let Some(session) = session else { return };
        let ns = cs.namespace().unwrap_or_default();
        let account = account_of(ctx, cs);
        for (policy, notify) in &ev.notify {
            let topic = match notify_target(ctx, &ns, account.as_deref(), notify) {
                NotifyTarget::Topic(topic) => topic,
                NotifyTarget::Waiting(why) | NotifyTarget::Refused(_, why) => {
                    ctx.event(
                        cs,
                        EventType::Warning,
                        "NotifyFailed",
                        format!("ReputationPolicy {policy}: not notified: {why}"),
                    )
                    .await;
                    continue;
                }
            };
            let (subject, body) = ev.alert(cs, policy, in_aws);
            if let Err(e) = session.publish(&topic, &subject, &body).await {
                ctx.event(
                    cs,
                    EventType::Warning,
                    "NotifyFailed",
                    format!("publishing to {topic}: {e}"),
                )
                .await;
            }
        }
    }
}

/// Resolves a policy's notify target in `namespace` for sets of `account`
/// (see [`notify::target`]), with the EventDestination from the cache.
pub fn notify_target(ctx: &Context, namespace: &str, account: Option<&SesAccount>, notify: &Notify) -> NotifyTarget {
    let destination = notify
        .event_destination_ref
        .as_ref()
        .and_then(|r| ctx.caches.destinations.get(&ObjectRef::new(&r.name).within(namespace)));
    notify::target(&ctx.settings.default_account, account, notify, destination.as_deref())
}

/// The cached SesAccount a set lives in.
fn account_of(ctx: &Context, cs: &ConfigurationSet) -> Option<Arc<SesAccount>> {
    let name = cs.spec.account_ref.as_deref().unwrap_or(&ctx.settings.default_account);
    ctx.caches.accounts.get(&ObjectRef::new(name))
}
