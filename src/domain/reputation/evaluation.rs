//! The reputation verdict of one ConfigurationSet at one reconcile, as a
//! function of values: the set (labels, annotations, stored status),
//! CloudWatch's cached reading, the policies selecting it, the live window
//! and the time. It owns the levels the set is judged at, the pause step,
//! what status shows (the `reputation` block, the two rate conditions, the
//! pause), the events a change is worth and the body of the SNS alert.
//! Reading the caches, writing status, recording events and publishing
//! are the reconciler's (`reconcile::evaluation`).

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::runtime::events::EventType;
use serde_json::json;

use super::live_view::{self, LiveView, Source, combine, window_label};
use super::windows::Summary;
use super::{
    Applied, Level, Levels, Metric, Pause, PauseInput, PauseStep, Reading, Sample, applied_for, pause_step, percent,
    rate_condition, resume_in_future, source_label,
};
use crate::api::conditions::{self, Desired};
use crate::api::configuration_set::{PauseStatus, Reputation};
use crate::api::reputation_policy::Notify;
use crate::api::{ConfigurationSet, ConfigurationSetStatus, RESUME_ANNOTATION, ReputationPolicy};

/// What one evaluation is judged on.
pub struct Inputs<'a> {
    pub set: &'a ConfigurationSet,
    /// CloudWatch's newest reading of the set; `None` before the first
    /// read after start-up.
    pub reading: Option<Reading>,
    /// The policies of the set's namespace whose selector picks it.
    pub selecting: &'a [&'a ReputationPolicy],
    /// Some policy of the namespace has a selector kube cannot parse: it
    /// picks nothing, but may have been meant to pick this set.
    pub unreadable_selector: bool,
    /// The live window over [`live_view::window`] of the selecting
    /// policies' breaker; `None` when the set's SesAccount streams no events.
    pub live: Option<Summary>,
    /// CloudWatch datapoints older than this are no data (Unknown).
    pub staleness: Duration,
    /// AWS's HIGH-impact open findings about the identities whose default
    /// set this is.
    pub findings: Vec<SetFinding>,
    pub now: Timestamp,
}

/// A HIGH-impact open finding about an identity that sends through a set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetFinding {
    /// The identity as SES names it (`example.com`).
    pub identity: String,
    /// DKIM, SPF, DMARC, ...
    pub type_: String,
}

/// What AWS's findings count as for a set, under the selecting policy with
/// the strictest `findings.treatHighAs`.
#[derive(Clone, Debug, PartialEq)]
pub struct FindingsVerdict {
    /// Healthy without a HIGH open finding, else the level they count as.
    pub level: Level,
    pub policy: String,
    /// Whether that policy pauses at Critical.
    pub pauses: bool,
    /// What is open, for messages: `DMARC on example.com, SPF on example.com`.
    pub open: String,
}

impl FindingsVerdict {
    /// The policy with the strictest findings rule among `selecting`;
    /// `None` when none has one (findings then never judge the set).
    pub fn of(selecting: &[&ReputationPolicy], findings: &[SetFinding]) -> Option<Self> {
        use crate::api::reputation_policy::FindingLevel;
        let (policy, treat) = selecting
            .iter()
            .filter_map(|p| p.spec.findings.as_ref().map(|f| (*p, f.treat_high_as)))
            .max_by_key(|(p, level)| (*level == FindingLevel::Critical, std::cmp::Reverse(p.name_any())))?;
        let level = match (findings.is_empty(), treat) {
            (true, _) => Level::Healthy,
            (false, FindingLevel::Warning) => Level::Warning,
            (false, FindingLevel::Critical) => Level::Critical,
        };
        let mut open: Vec<String> = findings
            .iter()
            .map(|f| format!("{} on {}", f.type_, f.identity))
            .collect();
        open.sort();
        open.dedup();
        Some(Self {
            level,
            policy: policy.name_any(),
            pauses: policy.spec.actions.pause_sending,
            open: open.join(", "),
        })
    }

    /// The pause reason (and condition message) when findings judge.
    pub fn reason(&self) -> String {
        format!(
            "AWS's HIGH-impact finding(s) {} count as {} (ReputationPolicy {})",
            self.open,
            self.level.as_str(),
            self.policy
        )
    }

    /// The set's `Findings` condition (True while a HIGH finding is open,
    /// like an identity's).
    pub fn condition(&self) -> Desired {
        if self.level == Level::Healthy {
            Desired::new(
                FINDINGS_CONDITION,
                false,
                "NoneOpen",
                format!(
                    "no HIGH-impact finding open on the identities sending through this set (ReputationPolicy {})",
                    self.policy
                ),
            )
        } else {
            Desired::new(FINDINGS_CONDITION, true, "HighImpactOpen", self.reason())
        }
    }
}

/// Condition type of findings on a set (as on an EmailIdentity).
pub const FINDINGS_CONDITION: &str = "Findings";

/// The reputation verdict for one set at one reconcile.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// What the levels were judged on: per metric CloudWatch's sample, or
    /// the live rate where that is worse (see `sources`).
    pub reading: Reading,
    /// CloudWatch's own reading and levels (status `reputation` rates, gauges).
    pub cw_reading: Reading,
    pub cw_levels: Levels,
    /// Per metric (bounce, complaint), which source drove its level.
    pub sources: [Source; 2],
    pub live: Option<LiveView>,
    pub applied: Applied,
    pub levels: Levels,
    /// The overall level the stored status showed.
    pub previous: Level,
    /// The rate is known and below the pause point (re-arms after a resume).
    pub below_pause_point: bool,
    pub step: PauseStep,
    /// Policies selecting the set that want alerts, by name.
    pub notify: Vec<(String, Notify)>,
    /// A resume annotation refused for lying in the future.
    pub refused_resume_at: Option<String>,
    /// What AWS's findings count as, under a policy that asks.
    pub findings: Option<FindingsVerdict>,
    pub now: Timestamp,
}

/// An event worth recording for what an evaluation changed.
#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    pub type_: EventType,
    pub reason: String,
    pub message: String,
}

/// Evaluates a set's reputation. `None` until the first rate read after
/// start-up (unless a live rate already judges): the stored status stays
/// as it was rather than flapping to Unknown.
pub fn evaluate(input: Inputs<'_>) -> Option<Evaluation> {
    let Inputs {
        set: cs,
        reading: cw_reading,
        selecting,
        unreadable_selector,
        live,
        staleness,
        findings,
        now,
    } = input;
    let findings = FindingsVerdict::of(selecting, &findings);
    let applied = applied_for(selecting);
    let breaker = live_view::breaker(selecting);
    let live = live.map(|summary| LiveView::judge(summary, breaker, &applied, now));
    // Before the first CloudWatch read only a live rate that judges (a
    // breaker with enough sends) is news; otherwise status stays as stored.
    let cw_reading = match cw_reading {
        Some(r) => r,
        None if live.as_ref().is_some_and(|l| l.levels.overall() != Level::Unknown) => Reading::default(),
        None => return None,
    };
    let cw_levels = super::levels(&cw_reading, &applied, now, staleness);
    let (reading, levels, sources) = combine(&cw_reading, cw_levels, live.as_ref(), now);
    let stored = cs.status.as_ref();
    let stored_block = stored.and_then(|s| s.reputation.as_ref());
    let previous = stored_block
        .and_then(|r| r.level.as_deref())
        .map_or(Level::Unknown, Level::parse);
    let unknown = Levels {
        bounce: Level::Unknown,
        complaint: Level::Unknown,
    };
    let (pause_levels, previous_at_pause_point) = match &applied.pause_point {
        Some(point) => (
            point.levels(&reading, now, staleness),
            point
                .levels(&stored_reading(stored_block, now), now, staleness)
                .overall(),
        ),
        None => (unknown, Level::Unknown),
    };
    let current = stored_pause(cs);
    let resume_annotation = cs.annotations().get(RESUME_ANNOTATION);
    let resume_requested_at = resume_annotation.and_then(|v| v.parse::<Timestamp>().ok());
    let refused_resume_at = resume_in_future(resume_requested_at, now)
        .then(|| resume_annotation.cloned())
        .flatten();
    let mut reason = pause_reason(&reading, &applied, &pause_levels);
    // Which source reached the pause point: say so when it was the events.
    let driver = sources[usize::from(pause_levels.bounce != Level::Critical)];
    if let (Some(l), Source::Events) = (&live, driver)
        && !reason.is_empty()
    {
        reason.push_str(&format!("{LIVE_NOTE}{})", window_label(l.summary.window_secs)));
    }
    // A pause the live events drove: after a restart their windows start
    // empty, and an empty window is not quiet.
    let quiet_blocked = current.as_ref().is_some_and(|p| p.reason.contains(LIVE_NOTE))
        && live.as_ref().is_some_and(|l| l.summary.warming_up);
    let below_pause_point = matches!(pause_levels.overall(), Level::Healthy | Level::Warning)
        && findings.as_ref().is_none_or(|f| f.level != Level::Critical);
    let step = pause_step(PauseInput {
        current,
        levels,
        pause_levels,
        previous: previous_at_pause_point,
        applied: &applied,
        resumed_at: stored.and_then(|s| s.resumed_at.as_ref()).map(|t| t.0),
        rearmed_at: stored.and_then(|s| s.rearmed_at.as_ref()).map(|t| t.0),
        resume_requested_at,
        quiet_blocked,
        findings_pause: findings
            .as_ref()
            .filter(|f| f.pauses && f.level == Level::Critical)
            .map(|f| (f.policy.clone(), f.reason())),
        findings_level: findings.as_ref().map_or(Level::Unknown, |f| f.level),
        reason,
        now,
    });
    // A selector the apiserver accepted but kube cannot parse must not
    // silently release a paused set: keep the pause as it is.
    let step = match (unreadable_selector, &step) {
        (true, PauseStep::Resumed { how: "policy removed" }) => PauseStep::Stay(stored_pause(cs)),
        _ => step,
    };
    let notify = selecting
        .iter()
        .filter_map(|p| p.spec.actions.notify.clone().map(|n| (p.name_any(), n)))
        .collect();
    Some(Evaluation {
        reading,
        cw_reading,
        cw_levels,
        sources,
        live,
        applied,
        levels,
        previous,
        below_pause_point,
        step,
        notify,
        refused_resume_at,
        findings,
        now,
    })
}

impl Evaluation {
    /// The set's level: the worse of its rates' and what AWS's findings
    /// count as.
    pub fn overall(&self) -> Level {
        self.levels
            .overall()
            .max(self.findings.as_ref().map_or(Level::Unknown, |f| f.level))
    }

    /// Whether findings, not a rate, set the overall level.
    fn findings_drive(&self) -> bool {
        self.findings
            .as_ref()
            .is_some_and(|f| f.level > self.levels.overall() && f.level > Level::Healthy)
    }

    /// What this evaluation does to a pause (stay, pause, resume).
    pub fn step(&self) -> &PauseStep {
        &self.step
    }

    /// The pause in force after this evaluation.
    pub fn paused(&self) -> Option<&Pause> {
        self.step.pause()
    }

    /// Where the overall level came from (the worse metric's source).
    pub fn source(&self) -> Source {
        self.sources[usize::from(self.levels.complaint > self.levels.bounce)]
    }

    /// Writes the reputation block, the rate conditions and the pause.
    /// `in_aws`: whether this reconcile applied the pause decision to AWS;
    /// if not, a pause or resume is not recorded yet (status must not claim
    /// what SES does not do). `written_at` stamps conditions that change.
    pub fn apply_to(
        &self,
        status: &mut ConfigurationSetStatus,
        generation: Option<i64>,
        in_aws: bool,
        written_at: &Time,
    ) {
        // Each condition names the policy of the threshold it was judged
        // against: warning and critical may come from different policies.
        let by = [
            self.applied.bounce_sources.for_level(self.levels.bounce),
            self.applied.complaint_sources.for_level(self.levels.complaint),
        ]
        .map(source_label);
        let mut from: Vec<&str> = [&self.applied.bounce_sources, &self.applied.complaint_sources]
            .into_iter()
            .flat_map(|s| [s.warning.as_deref(), s.critical.as_deref()])
            .map(|s| s.unwrap_or("AWS"))
            .collect();
        from.sort_unstable();
        from.dedup();
        let thresholds_from = from.join(", ");
        let live_by = |i: usize| match (&self.live, self.sources[i]) {
            (Some(l), Source::Events) => format!("{}, live events over {}", by[i], window_label(l.summary.window_secs)),
            _ => by[i].clone(),
        };
        // Conditions judge what drove each level; the block's rates stay
        // CloudWatch's, with the live counts beside them.
        let (_, mut desired) = rate_status(
            &self.reading,
            &self.levels,
            &self.applied,
            thresholds_from.clone(),
            [live_by(0), live_by(1)],
        );
        // Below the breaker's minimum the live rate does not judge yet;
        // say how far the count is, so "no data" is not all one sees.
        if let Some(l) = &self.live
            && let Some(minimum) = l.minimum_sends
            && l.summary.counts.sends < minimum
        {
            let note = format!(
                "; live events: {} of the {minimum} sends the breaker needs over {}",
                l.summary.counts.sends,
                window_label(l.summary.window_secs)
            );
            for d in desired.iter_mut().filter(|d| d.reason == "NoData") {
                d.message.push_str(&note);
            }
        }
        if let Some(f) = &self.findings {
            desired.push(f.condition());
        }
        let (mut block, _) = rate_status(&self.cw_reading, &self.levels, &self.applied, thresholds_from, by);
        block.level = Some(self.overall().as_str().to_string());
        block.source = Some(
            if self.findings_drive() {
                "Findings"
            } else {
                self.source().as_str()
            }
            .to_string(),
        );
        block.live = self.live.as_ref().map(LiveView::status);
        status.reputation = Some(hold_observed_at(status.reputation.as_ref(), block));
        match &self.step {
            PauseStep::Paused(_) | PauseStep::Resumed { .. } if !in_aws => {}
            PauseStep::Resumed { .. } => {
                status.pause = None;
                status.resumed_at = Some(Time(self.now));
            }
            step => {
                status.pause = step.pause().map(|p| PauseStatus {
                    policy: p.policy.clone(),
                    reason: p.reason.clone(),
                    since: Time(p.since),
                    quiet_since: p.quiet_since.map(Time),
                    refused_resume_at: self.refused_resume_at.clone(),
                })
            }
        }
        let rearmed = status.rearmed_at.as_ref().map(|t| t.0) >= status.resumed_at.as_ref().map(|t| t.0);
        if self.below_pause_point && status.pause.is_none() && status.resumed_at.is_some() && !rearmed {
            status.rearmed_at = Some(Time(self.now));
        }
        status.conditions = conditions::merge(&status.conditions, &desired, generation, written_at);
    }

    /// The overall level, when it changed in a way worth an event and an
    /// alert: every change between known levels, and a set first showing
    /// up at Warning or Critical; data gaps (Unknown) and a first Healthy
    /// reading are not news.
    pub fn level_change(&self) -> Option<Level> {
        let (previous, level) = (self.previous, self.overall());
        let news =
            previous != level && level != Level::Unknown && !(previous == Level::Unknown && level == Level::Healthy);
        news.then_some(level)
    }

    /// The events for what changed, in the order they are recorded.
    /// `cs` is the set as stored before this evaluation (a refused resume
    /// already recorded there is not repeated).
    pub fn notes(&self, cs: &ConfigurationSet, in_aws: bool) -> Vec<Note> {
        let note = |type_, reason: &str, message: String| Note {
            type_,
            reason: reason.to_string(),
            message,
        };
        let mut out = Vec::new();
        match &self.step {
            PauseStep::Paused(_) | PauseStep::Resumed { .. } if !in_aws => {}
            PauseStep::Paused(p) => out.push(note(
                EventType::Warning,
                "SendingPaused",
                format!("sending paused by ReputationPolicy {}: {}", p.policy, p.reason),
            )),
            PauseStep::Resumed { how } => out.push(note(
                EventType::Normal,
                "SendingResumed",
                format!("sending resumed ({how})"),
            )),
            PauseStep::Stay(_) => {}
        }
        let refused_before = cs
            .status
            .as_ref()
            .and_then(|s| s.pause.as_ref())
            .and_then(|p| p.refused_resume_at.as_ref());
        if let Some(refused) = &self.refused_resume_at
            && self.paused().is_some()
            && refused_before != Some(refused)
        {
            out.push(note(
                EventType::Warning,
                "ResumeRefused",
                format!(
                    "{RESUME_ANNOTATION}={refused} is in the future and was ignored (it would lift every later pause); set the current time to resume"
                ),
            ));
        }
        if let Some(level) = self.level_change() {
            let (metric, sample, _) = self.worst_metric();
            let detail = sample.map_or_else(String::new, |s| {
                format!(": {} {}", metric.noun(), percent(s.value, metric))
            });
            let type_ = if level >= Level::Warning {
                EventType::Warning
            } else {
                EventType::Normal
            };
            out.push(note(
                type_,
                &format!("Reputation{level}"),
                format!("reputation {} -> {}{detail}", self.previous, level),
            ));
        }
        out
    }

    /// The SNS alert for a level change, for one notifying policy: its
    /// subject and JSON body. `paused`: whether sending is paused in SES
    /// after this reconcile.
    pub fn alert(&self, cs: &ConfigurationSet, policy: &str, in_aws: bool) -> (String, String) {
        let level = self.overall();
        let (metric, sample, threshold) = self.worst_metric();
        let driven_by_findings = self.findings_drive();
        let mut body = json!({
            "kind": "SesReputationAlert",
            "version": 1,
            "configurationSet": cs.name_any(),
            "awsName": cs.aws_name(),
            "namespace": cs.namespace().unwrap_or_default(),
            "policy": policy,
            "metric": metric.as_str(),
            "value": sample.map(|s| s.value),
            "threshold": threshold,
            "level": level.as_str(),
            "previousLevel": self.previous.as_str(),
            "source": self.source().as_str(),
            "paused": in_aws && self.paused().is_some(),
            "time": self.now.to_string(),
        });
        if let (true, Some(f)) = (driven_by_findings, &self.findings) {
            body["metric"] = json!("findings");
            body["value"] = json!(null);
            body["threshold"] = json!(null);
            body["findings"] = json!(f.open);
        }
        (format!("SES reputation {level}: {}", cs.aws_name()), body.to_string())
    }

    /// The metric driving the overall level, its sample and the threshold
    /// it crossed (or the warning threshold it is back under).
    pub fn worst_metric(&self) -> (Metric, Option<Sample>, f64) {
        let (metric, sample, t, level) = if self.levels.complaint > self.levels.bounce {
            (
                Metric::Complaint,
                self.reading.complaint,
                self.applied.complaint,
                self.levels.complaint,
            )
        } else {
            (
                Metric::Bounce,
                self.reading.bounce,
                self.applied.bounce,
                self.levels.bounce,
            )
        };
        (
            metric,
            sample,
            if level == Level::Critical {
                t.critical
            } else {
                t.warning
            },
        )
    }
}

/// Marks a pause reason whose rate came from the live events; the stored
/// reason is also how a later evaluation knows which source paused.
const LIVE_NOTE: &str = " (live events over ";

/// Why a set pauses: the rate at its pause point, the threshold and the
/// policy it came from.
fn pause_reason(reading: &Reading, applied: &Applied, pause_levels: &Levels) -> String {
    let Some(point) = &applied.pause_point else {
        return String::new();
    };
    let (metric, sample, (limit, policy)) = if pause_levels.bounce == Level::Critical {
        (Metric::Bounce, reading.bounce, &point.bounce)
    } else {
        (Metric::Complaint, reading.complaint, &point.complaint)
    };
    sample.map_or_else(String::new, |s| {
        format!(
            "{} {} >= critical {} (ReputationPolicy {policy})",
            metric.noun(),
            percent(s.value, metric),
            percent(*limit, metric)
        )
    })
}

/// The reading a set's stored status shows (the previous evaluation's):
/// per metric the worse of CloudWatch's rate and the live one.
fn stored_reading(block: Option<&Reputation>, now: Timestamp) -> Reading {
    let sample = |value: Option<&String>| -> Option<Sample> {
        Some(Sample {
            value: value?.parse().ok()?,
            at: block?.observed_at.as_ref()?.0,
        })
    };
    // Live rates are as of the last evaluation.
    let live = |value: Option<&String>| -> Option<Sample> {
        Some(Sample {
            value: value?.parse().ok()?,
            at: now,
        })
    };
    let worse = |a: Option<Sample>, b: Option<Sample>| match (a, b) {
        (Some(a), Some(b)) if b.value > a.value => Some(b),
        (None, b) => b,
        (a, _) => a,
    };
    let stream = block.and_then(|b| b.live.as_ref());
    Reading {
        bounce: worse(
            sample(block.and_then(|b| b.bounce_rate.as_ref())),
            live(stream.and_then(|l| l.bounce_rate.as_ref())),
        ),
        complaint: worse(
            sample(block.and_then(|b| b.complaint_rate.as_ref())),
            live(stream.and_then(|l| l.complaint_rate.as_ref())),
        ),
        read_at: None,
    }
}

/// The pause recorded in a set's status.
pub fn stored_pause(cs: &ConfigurationSet) -> Option<Pause> {
    cs.status.as_ref()?.pause.as_ref().map(|p| Pause {
        policy: p.policy.clone(),
        reason: p.reason.clone(),
        since: p.since.0,
        quiet_since: p.quiet_since.as_ref().map(|t| t.0),
    })
}

/// The `reputation` status block and the two rate conditions for a reading
/// judged against `applied`; `by` names where each metric's thresholds
/// come from (for the condition messages). Sets and SesAccounts share it.
pub fn rate_status(
    reading: &Reading,
    levels: &Levels,
    applied: &Applied,
    thresholds_from: String,
    by: [String; 2],
) -> (Reputation, Vec<Desired>) {
    let observed_at = [reading.bounce, reading.complaint]
        .into_iter()
        .flatten()
        .map(|s| s.at)
        .max();
    let block = Reputation {
        bounce_rate: reading.bounce.map(|s| s.value.to_string()),
        bounce_rate_percent: reading.bounce.map(|s| percent(s.value, Metric::Bounce)),
        complaint_rate: reading.complaint.map(|s| s.value.to_string()),
        complaint_rate_percent: reading.complaint.map(|s| percent(s.value, Metric::Complaint)),
        observed_at: observed_at.map(Time),
        level: Some(levels.overall().as_str().to_string()),
        thresholds_from: Some(thresholds_from),
        ..Default::default()
    };
    let [bounce_by, complaint_by] = by;
    let conditions = [
        (
            Metric::Bounce,
            levels.bounce,
            reading.bounce,
            &applied.bounce,
            bounce_by,
            conditions::BOUNCE_RATE_HEALTHY,
        ),
        (
            Metric::Complaint,
            levels.complaint,
            reading.complaint,
            &applied.complaint,
            complaint_by,
            conditions::COMPLAINT_RATE_HEALTHY,
        ),
    ]
    .into_iter()
    .map(|(metric, level, sample, t, by, type_)| {
        let (value, reason, message) = rate_condition(metric, level, sample, t, &by);
        Desired::tri(type_, value, reason, message)
    })
    .collect();
    (block, conditions)
}

/// While rates, level and thresholds stay the same, `observedAt` moves at
/// most every [`OBSERVED_AT_REFRESH`]: CloudWatch publishes a datapoint a
/// minute, and writing each one would patch every set's status every
/// rate interval for nothing a user would notice.
pub fn hold_observed_at(previous: Option<&Reputation>, mut block: Reputation) -> Reputation {
    if let Some(previous) = previous {
        let same = Reputation {
            observed_at: previous.observed_at.clone(),
            ..block.clone()
        } == *previous;
        let recent = match (&previous.observed_at, &block.observed_at) {
            (Some(old), Some(new)) => new.0.duration_since(old.0).unsigned_abs() < OBSERVED_AT_REFRESH,
            _ => false,
        };
        if same && recent {
            block.observed_at = previous.observed_at.clone();
        }
    }
    block
}

/// See [`hold_observed_at`].
pub const OBSERVED_AT_REFRESH: Duration = Duration::from_secs(600);

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    use super::*;
    use crate::api::configuration_set::ConfigurationSetSpec;
    use crate::api::reputation_policy::{Actions, Breaker as BreakerSpec, ReputationPolicySpec, Thresholds};
    use crate::domain::reputation::live_view::tests::{now, summary};

    const STALE: Duration = Duration::from_secs(7200);

    fn ago(secs: i64) -> Timestamp {
        now() - jiff::SignedDuration::from_secs(secs)
    }

    fn set() -> ConfigurationSet {
        let spec: ConfigurationSetSpec =
            serde_json::from_value(serde_json::json!({})).expect("empty spec deserializes with defaults");
        let mut cs = ConfigurationSet::new("orders", spec);
        cs.metadata.namespace = Some("shop".into());
        cs
    }

    /// A set whose stored status shows `level` (as the last evaluation wrote it).
    fn set_at(level: Level) -> ConfigurationSet {
        let mut cs = set();
        cs.status = Some(ConfigurationSetStatus {
            reputation: Some(Reputation {
                level: Some(level.as_str().into()),
                ..Default::default()
            }),
            ..Default::default()
        });
        cs
    }

    fn policy(name: &str, bounce: (f64, f64), pause: bool) -> ReputationPolicy {
        ReputationPolicy::new(
            name,
            ReputationPolicySpec {
                selector: LabelSelector::default(),
                bounce_rate: Thresholds {
                    warning: bounce.0,
                    critical: bounce.1,
                },
                complaint_rate: Thresholds::complaint_default(),
                actions: Actions {
                    pause_sending: pause,
                    ..Default::default()
                },
                breaker: None,
                findings: None,
            },
        )
    }

    fn treating_high_as(
        mut p: ReputationPolicy,
        level: crate::api::reputation_policy::FindingLevel,
    ) -> ReputationPolicy {
        p.spec.findings = Some(crate::api::reputation_policy::FindingsPolicy { treat_high_as: level });
        p
    }

    fn dmarc() -> Vec<SetFinding> {
        vec![SetFinding {
            identity: "example.com".into(),
            type_: "DMARC".into(),
        }]
    }

    fn eval_with_findings(
        cs: &ConfigurationSet,
        selecting: &[&ReputationPolicy],
        findings: Vec<SetFinding>,
    ) -> Option<Evaluation> {
        evaluate(Inputs {
            set: cs,
            reading: Some(reading(0.001, 0.0, 60)),
            selecting,
            unreadable_selector: false,
            live: None,
            staleness: STALE,
            findings,
            now: now(),
        })
    }

    #[test]
    fn a_high_finding_treated_as_critical_pauses_while_the_rates_stay_healthy() {
        use crate::api::reputation_policy::FindingLevel;
        let p = treating_high_as(policy("guard", (0.025, 0.05), true), FindingLevel::Critical);
        let cs = set_at(Level::Healthy);
        let ev = eval_with_findings(&cs, &[&p], dmarc()).expect("verdict");
        assert_eq!(ev.overall(), Level::Critical);
        let pause = ev.paused().expect("paused");
        assert_eq!(pause.policy, "guard");
        assert!(pause.reason.contains("DMARC on example.com"), "{}", pause.reason);
        let mut status = ConfigurationSetStatus::default();
        ev.apply_to(&mut status, Some(1), true, &Time(now()));
        // The rates are healthy and say so; the level and Findings say why.
        assert_eq!(condition(&status, "BounceRateHealthy").reason, "BelowWarning");
        let findings = condition(&status, FINDINGS_CONDITION);
        assert_eq!(
            (findings.status.as_str(), findings.reason.as_str()),
            ("True", "HighImpactOpen")
        );
        let block = status.reputation.as_ref().expect("block");
        assert_eq!(
            (block.level.as_deref(), block.source.as_deref()),
            (Some("Critical"), Some("Findings"))
        );
        let (_, body) = ev.alert(&cs, "guard", true);
        let body: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(
            (body["metric"].as_str(), body["level"].as_str()),
            (Some("findings"), Some("Critical"))
        );
    }

    #[test]
    fn findings_judge_only_under_a_policy_that_asks_and_warning_does_not_pause() {
        use crate::api::reputation_policy::FindingLevel;
        let plain = policy("guard", (0.025, 0.05), true);
        let cs = set_at(Level::Healthy);
        let ev = eval_with_findings(&cs, &[&plain], dmarc()).expect("verdict");
        assert_eq!((ev.overall(), ev.paused()), (Level::Healthy, None));
        let warn = treating_high_as(policy("watch", (0.025, 0.05), true), FindingLevel::Warning);
        let ev = eval_with_findings(&cs, &[&warn], dmarc()).expect("verdict");
        assert_eq!((ev.overall(), ev.paused()), (Level::Warning, None));
        // None open: the rule shows NoneOpen, the level is the rates'.
        let ev = eval_with_findings(&cs, &[&warn], Vec::new()).expect("verdict");
        assert_eq!(ev.overall(), Level::Healthy);
        let mut status = ConfigurationSetStatus::default();
        ev.apply_to(&mut status, Some(1), true, &Time(now()));
        assert_eq!(condition(&status, FINDINGS_CONDITION).reason, "NoneOpen");
    }

    #[test]
    fn a_resume_holds_while_the_finding_stays_open() {
        use crate::api::reputation_policy::FindingLevel;
        let p = treating_high_as(policy("guard", (0.025, 0.05), true), FindingLevel::Critical);
        let mut cs = set_at(Level::Critical);
        if let Some(status) = cs.status.as_mut() {
            status.resumed_at = Some(Time(ago(30)));
        }
        let ev = eval_with_findings(&cs, &[&p], dmarc()).expect("verdict");
        assert_eq!(
            ev.paused(),
            None,
            "a resumed set is not paused again by the same open finding"
        );
        assert!(!ev.below_pause_point);
        // The finding closes: re-armed, so a new one would pause again.
        let ev = eval_with_findings(&cs, &[&p], Vec::new()).expect("verdict");
        assert!(ev.below_pause_point);
    }

    fn with_breaker(mut p: ReputationPolicy, window: &str, minimum_sends: u32) -> ReputationPolicy {
        p.spec.breaker = Some(BreakerSpec {
            window: window.into(),
            minimum_sends,
        });
        p
    }

    /// CloudWatch's reading: these rates, measured `age` seconds ago.
    fn reading(bounce: f64, complaint: f64, age: i64) -> Reading {
        Reading {
            bounce: Some(Sample {
                value: bounce,
                at: ago(age),
            }),
            complaint: Some(Sample {
                value: complaint,
                at: ago(age),
            }),
            read_at: Some(now()),
        }
    }

    fn eval(
        cs: &ConfigurationSet,
        reading: Option<Reading>,
        selecting: &[&ReputationPolicy],
        live: Option<Summary>,
    ) -> Option<Evaluation> {
        evaluate(Inputs {
            set: cs,
            reading,
            selecting,
            unreadable_selector: false,
            live,
            staleness: STALE,
            findings: Vec::new(),
            now: now(),
        })
    }

    fn condition<'a>(
        status: &'a ConfigurationSetStatus,
        type_: &str,
    ) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .unwrap_or_else(|| panic!("no {type_} condition"))
    }

    #[test]
    fn no_verdict_before_the_first_read_unless_the_live_rate_judges() {
        let cs = set();
        // Nothing read yet: status stays as stored.
        assert_eq!(eval(&cs, None, &[], None), None);
        // Live counts without a breaker do not judge: still nothing.
        assert_eq!(eval(&cs, None, &[], Some(summary(500, 0.2, 0.0))), None);
        // A breaker with enough sends does: the set is judged on its own.
        let b = with_breaker(policy("breaker", (0.02, 0.05), false), "15m", 100);
        let ev = eval(&cs, None, &[&b], Some(summary(500, 0.2, 0.0))).expect("a verdict");
        assert_eq!(ev.levels.bounce, Level::Critical);
        assert_eq!(ev.source(), Source::Events);
        assert_eq!(ev.cw_reading, Reading::default());
    }

    #[test]
    fn a_stale_reading_gives_no_level_and_no_data_conditions() {
        let cs = set_at(Level::Healthy);
        // Three hours old with a two-hour staleness: whatever the value says.
        let ev = eval(&cs, Some(reading(0.5, 0.5, 3 * 3600)), &[], None).expect("a verdict");
        assert_eq!(ev.levels.overall(), Level::Unknown);
        // Going to Unknown is a data gap, not news.
        assert_eq!(ev.level_change(), None);
        let mut status = ConfigurationSetStatus::default();
        ev.apply_to(&mut status, Some(1), true, &Time(now()));
        let bounce = condition(&status, conditions::BOUNCE_RATE_HEALTHY);
        assert_eq!((bounce.status.as_str(), bounce.reason.as_str()), ("Unknown", "NoData"));
        assert_eq!(status.reputation.and_then(|r| r.level).as_deref(), Some("Unknown"));
    }

    #[test]
    fn below_the_breakers_minimum_the_no_data_conditions_show_the_live_count() {
        let cs = set_at(Level::Healthy);
        let b = with_breaker(policy("breaker", (0.02, 0.05), false), "15m", 100);
        let ev = eval(
            &cs,
            Some(reading(0.5, 0.5, 3 * 3600)),
            &[&b],
            Some(summary(40, 0.1, 0.0)),
        )
        .expect("a verdict");
        let mut status = ConfigurationSetStatus::default();
        ev.apply_to(&mut status, Some(1), true, &Time(now()));
        let bounce = condition(&status, conditions::BOUNCE_RATE_HEALTHY);
        assert_eq!(bounce.reason, "NoData");
        assert!(
            bounce
                .message
                .ends_with("; live events: 40 of the 100 sends the breaker needs over 15m"),
            "{}",
            bounce.message
        );
    }

    #[test]
    fn the_strictest_selecting_policy_sets_the_level_and_is_named() {
        let cs = set();
        let loose = policy("loose", (0.05, 0.10), false);
        let strict = policy("strict", (0.02, 0.04), false);
        // 3% bounces: Healthy for AWS and `loose`, Warning for `strict`.
        let ev = eval(&cs, Some(reading(0.03, 0.0, 60)), &[&loose, &strict], None).expect("a verdict");
        assert_eq!(ev.levels.bounce, Level::Warning);
        let mut status = ConfigurationSetStatus::default();
        ev.apply_to(&mut status, None, true, &Time(now()));
        let bounce = condition(&status, conditions::BOUNCE_RATE_HEALTHY);
        assert_eq!(bounce.reason, "AboveWarning");
        assert!(bounce.message.contains("ReputationPolicy strict"), "{}", bounce.message);
        let block = status.reputation.expect("reputation block");
        assert_eq!(block.thresholds_from.as_deref(), Some("loose, strict"));
        assert_eq!(block.source.as_deref(), Some("CloudWatch"));
        // Without policies AWS's own levels apply: 3% is Healthy.
        let ev = eval(&cs, Some(reading(0.03, 0.0, 60)), &[], None).expect("a verdict");
        assert_eq!(ev.levels.bounce, Level::Healthy);
    }

    #[test]
    fn a_breach_at_the_pause_point_pauses_and_is_announced() {
        let cs = set_at(Level::Healthy);
        let pausing = policy("guard", (0.02, 0.05), true);
        let ev = eval(&cs, Some(reading(0.06, 0.0, 60)), &[&pausing], None).expect("a verdict");
        let PauseStep::Paused(pause) = ev.step() else {
            panic!("expected a pause, got {:?}", ev.step());
        };
        assert_eq!(pause.policy, "guard");
        assert_eq!(
            pause.reason,
            "bounce rate 6.00% >= critical 5.00% (ReputationPolicy guard)"
        );
        let reasons: Vec<String> = ev.notes(&cs, true).into_iter().map(|n| n.reason).collect();
        assert_eq!(reasons, ["SendingPaused", "ReputationCritical"]);
        // Not applied to SES in this pass: status and events keep quiet
        // about the pause, but the level change is still news.
        let reasons: Vec<String> = ev.notes(&cs, false).into_iter().map(|n| n.reason).collect();
        assert_eq!(reasons, ["ReputationCritical"]);
        let mut status = cs.status.clone().unwrap_or_default();
        ev.apply_to(&mut status, None, false, &Time(now()));
        assert_eq!(status.pause, None);
        ev.apply_to(&mut status, None, true, &Time(now()));
        assert_eq!(status.pause.map(|p| p.policy).as_deref(), Some("guard"));
    }

    /// Soak run 4: resumed at 9%, then 0% (re-armed), then a new 9% that a
    /// pass wrote to status without pausing (SES failed); the next pass
    /// must still pause rather than take the 9% for the old, trailing one.
    #[test]
    fn a_spike_after_re_arming_pauses_even_if_a_failed_pass_wrote_it_first() {
        let pausing = policy("guard", (0.02, 0.05), true);
        let mut cs = set_at(Level::Critical);
        let mut status = cs.status.clone().unwrap_or_default();
        status.resumed_at = Some(Time(ago(300)));
        cs.status = Some(status);
        let write = |cs: &mut ConfigurationSet, ev: &Evaluation| {
            let mut status = cs.status.clone().unwrap_or_default();
            ev.apply_to(&mut status, None, false, &Time(now()));
            cs.status = Some(status);
        };
        // Still at the resumed rate: not a new breach.
        let ev = eval(&cs, Some(reading(0.09, 0.0, 240)), &[&pausing], None).expect("a verdict");
        assert!(matches!(ev.step(), PauseStep::Stay(None)), "{:?}", ev.step());
        write(&mut cs, &ev);
        // The rate falls: re-armed.
        let ev = eval(&cs, Some(reading(0.0, 0.0, 180)), &[&pausing], None).expect("a verdict");
        assert!(matches!(ev.step(), PauseStep::Stay(None)), "{:?}", ev.step());
        write(&mut cs, &ev);
        // A new spike, written by a pass that could not apply the pause.
        let ev = eval(&cs, Some(reading(0.09, 0.0, 60)), &[&pausing], None).expect("a verdict");
        assert!(matches!(ev.step(), PauseStep::Paused(_)), "{:?}", ev.step());
        write(&mut cs, &ev);
        // The next pass sees the stored level at Critical already.
        let ev = eval(&cs, Some(reading(0.09, 0.0, 60)), &[&pausing], None).expect("a verdict");
        assert!(
            matches!(ev.step(), PauseStep::Paused(_)),
            "the spike was lost: {:?}",
            ev.step()
        );
    }

    #[test]
    fn a_monitor_only_policy_alerts_but_does_not_pause() {
        let cs = set_at(Level::Healthy);
        let monitor = policy("watch", (0.01, 0.02), false);
        let ev = eval(&cs, Some(reading(0.06, 0.0, 60)), &[&monitor], None).expect("a verdict");
        assert_eq!(ev.levels.bounce, Level::Critical);
        assert_eq!(ev.step(), &PauseStep::Stay(None));
        assert_eq!(ev.level_change(), Some(Level::Critical));
    }

    #[test]
    fn a_live_spike_pauses_before_cloudwatch_sees_it_and_says_so() {
        let cs = set_at(Level::Healthy);
        let guard = with_breaker(policy("guard", (0.02, 0.05), true), "5m", 100);
        let mut live = summary(400, 0.08, 0.0);
        live.window_secs = 300;
        // CloudWatch still shows 1%: the live 8% over 400 sends drives the level.
        let ev = eval(&cs, Some(reading(0.01, 0.0, 60)), &[&guard], Some(live)).expect("a verdict");
        assert_eq!(ev.sources[0], Source::Events);
        let pause = ev.paused().expect("paused");
        assert_eq!(
            pause.reason,
            "bounce rate 8.00% >= critical 5.00% (ReputationPolicy guard) (live events over 5m)"
        );
        let mut status = ConfigurationSetStatus::default();
        ev.apply_to(&mut status, None, true, &Time(now()));
        let bounce = condition(&status, conditions::BOUNCE_RATE_HEALTHY);
        assert!(bounce.message.contains("live events over 5m"), "{}", bounce.message);
        // The block keeps CloudWatch's own rate, with the live one beside it.
        let block = status.reputation.expect("reputation block");
        assert_eq!(block.bounce_rate.as_deref(), Some("0.01"));
        assert_eq!(block.source.as_deref(), Some("Events"));
        assert_eq!(block.live.map(|l| l.window).as_deref(), Some("5m"));
        // The same spike under the breaker's minimum sends changes nothing.
        let ev = eval(
            &cs,
            Some(reading(0.01, 0.0, 60)),
            &[&guard],
            Some(summary(99, 0.08, 0.0)),
        )
        .expect("a verdict");
        assert_eq!(ev.paused(), None);
        assert_eq!(ev.source(), Source::CloudWatch);
    }

    #[test]
    fn an_unreadable_selector_keeps_a_pause_the_removed_policy_would_lift() {
        let mut cs = set_at(Level::Critical);
        if let Some(status) = cs.status.as_mut() {
            status.pause = Some(PauseStatus {
                policy: "guard".into(),
                reason: "bounce rate 6.00% >= critical 5.00% (ReputationPolicy guard)".into(),
                since: Time(ago(600)),
                quiet_since: None,
                refused_resume_at: None,
            });
        }
        let input = |unreadable_selector| Inputs {
            set: &cs,
            reading: Some(reading(0.06, 0.0, 60)),
            selecting: &[],
            unreadable_selector,
            live: None,
            staleness: STALE,
            findings: Vec::new(),
            now: now(),
        };
        // No policy selects the set any more: released...
        let ev = evaluate(input(false)).expect("a verdict");
        assert_eq!(ev.step(), &PauseStep::Resumed { how: "policy removed" });
        // ...unless a selector that cannot be parsed may have meant it.
        let ev = evaluate(input(true)).expect("a verdict");
        assert_eq!(ev.paused().map(|p| p.policy.as_str()), Some("guard"));
    }

    #[test]
    fn a_future_resume_time_is_refused_once_and_keeps_the_pause() {
        let mut cs = set_at(Level::Critical);
        let future = (now() + jiff::SignedDuration::from_secs(3600)).to_string();
        cs.metadata.annotations = Some(BTreeMap::from([(RESUME_ANNOTATION.to_string(), future.clone())]));
        if let Some(status) = cs.status.as_mut() {
            status.pause = Some(PauseStatus {
                policy: "guard".into(),
                reason: "bounce".into(),
                since: Time(ago(600)),
                quiet_since: None,
                refused_resume_at: None,
            });
        }
        let guard = policy("guard", (0.02, 0.05), true);
        let ev = eval(&cs, Some(reading(0.06, 0.0, 60)), &[&guard], None).expect("a verdict");
        assert!(ev.paused().is_some());
        assert_eq!(ev.refused_resume_at.as_deref(), Some(future.as_str()));
        let notes = ev.notes(&cs, true);
        assert_eq!(notes.len(), 1);
        assert_eq!(
            (notes[0].type_, notes[0].reason.as_str()),
            (EventType::Warning, "ResumeRefused")
        );
        // Once status records the refusal, the event is not repeated.
        let mut status = cs.status.clone().unwrap_or_default();
        ev.apply_to(&mut status, None, true, &Time(now()));
        cs.status = Some(status);
        assert!(ev.notes(&cs, true).is_empty());
    }

    #[test]
    fn only_real_level_changes_are_news() {
        let change = |previous: Level, bounce: f64| {
            eval(&set_at(previous), Some(reading(bounce, 0.0, 60)), &[], None)
                .expect("a verdict")
                .level_change()
        };
        // A first Healthy reading is not news; a first Warning is.
        assert_eq!(change(Level::Unknown, 0.01), None);
        assert_eq!(change(Level::Unknown, 0.06), Some(Level::Warning));
        // Back to Healthy after a breach is news too; staying is not.
        assert_eq!(change(Level::Warning, 0.01), Some(Level::Healthy));
        assert_eq!(change(Level::Healthy, 0.01), None);
    }

    #[test]
    fn the_alert_names_the_metric_threshold_and_pause() {
        let cs = set_at(Level::Healthy);
        let mut guard = policy("guard", (0.02, 0.05), true);
        guard.spec.actions.notify = Some(Notify {
            topic_arn: Some("arn:aws:sns:eu-west-1:123456789012:alerts".into()),
            event_destination_ref: None,
        });
        let ev = eval(&cs, Some(reading(0.0, 0.006, 60)), &[&guard], None).expect("a verdict");
        assert_eq!(ev.notify.len(), 1);
        let (subject, body) = ev.alert(&cs, "guard", true);
        assert_eq!(subject, "SES reputation Critical: orders");
        let body: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(body["metric"], "complaintRate");
        assert_eq!(body["threshold"], 0.001);
        assert_eq!(body["previousLevel"], "Healthy");
        assert_eq!(body["paused"], true);
        // Not applied to SES yet: the alert must not claim a pause.
        let (_, body) = ev.alert(&cs, "guard", false);
        assert!(body.contains("\"paused\":false"), "{body}");
    }

    fn block(rate: &str, at: &str) -> Reputation {
        Reputation {
            bounce_rate: Some(rate.into()),
            observed_at: Some(Time(at.parse().expect("timestamp"))),
            level: Some("Healthy".into()),
            ..Default::default()
        }
    }

    #[test]
    fn observed_at_holds_while_the_rate_is_unchanged() {
        let old = block("0.01", "2026-01-01T00:00:00Z");
        let next_minute = block("0.01", "2026-01-01T00:01:00Z");
        assert_eq!(hold_observed_at(Some(&old), next_minute), old);
        // Ten minutes on, the time moves even though the rate did not.
        let later = block("0.01", "2026-01-01T00:10:00Z");
        assert_eq!(hold_observed_at(Some(&old), later.clone()), later);
        // A new value always shows its own time.
        let changed = block("0.02", "2026-01-01T00:01:00Z");
        assert_eq!(hold_observed_at(Some(&old), changed.clone()), changed);
        assert_eq!(hold_observed_at(None, changed.clone()), changed);
    }
}
