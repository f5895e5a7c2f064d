//! Pure reputation logic: levels from rates and thresholds, which policy
//! applies when several select a set, the condition each rate produces, and
//! when sending is paused or resumed. No clients: everything here is a
//! function of its inputs, so it unit-tests without AWS or a cluster.
//!
//! Beside this file: `windows` (the live event windows), `live_view` (what
//! an evaluation takes from them, and the worse-of combination with
//! CloudWatch), `evaluation` (one set's verdict and what status shows of
//! it), `notify` (where a policy's alerts may go) and `checkpoint` (the
//! windows as a failover hands them on).

pub mod checkpoint;
pub mod evaluation;
pub mod live_view;
pub mod notify;
pub mod windows;

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;

use crate::api::reputation_policy::{ReputationPolicySpec, Thresholds};

/// AWS's own levels (defined with the API, whose defaults they are).
pub use crate::api::reputation_policy::{AWS_BOUNCE, AWS_COMPLAINT};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Unknown,
    Healthy,
    Warning,
    Critical,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Unknown => "Unknown",
            Level::Healthy => "Healthy",
            Level::Warning => "Warning",
            Level::Critical => "Critical",
        }
    }

    pub fn parse(s: &str) -> Level {
        match s {
            "Healthy" => Level::Healthy,
            "Warning" => Level::Warning,
            "Critical" => Level::Critical,
            _ => Level::Unknown,
        }
    }

    /// Gauge value for metrics: -1 unknown, 0 healthy, 1 warning, 2 critical.
    pub fn gauge(self) -> i64 {
        match self {
            Level::Unknown => -1,
            Level::Healthy => 0,
            Level::Warning => 1,
            Level::Critical => 2,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rate as read from CloudWatch: a fraction and when it was measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub value: f64,
    pub at: Timestamp,
}

/// The newest bounce and complaint samples of one set (or account).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Reading {
    pub bounce: Option<Sample>,
    pub complaint: Option<Sample>,
    /// When the reading was taken.
    pub read_at: Option<Timestamp>,
}

/// Which metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Bounce,
    Complaint,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Bounce => "bounceRate",
            Metric::Complaint => "complaintRate",
        }
    }

    pub fn noun(self) -> &'static str {
        match self {
            Metric::Bounce => "bounce rate",
            Metric::Complaint => "complaint rate",
        }
    }
}

/// The thresholds that apply to one set, and where they came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    pub bounce: Thresholds,
    pub complaint: Thresholds,
    /// Policy that set each threshold (`None`: AWS's levels).
    pub bounce_sources: Sources,
    pub complaint_sources: Sources,
    /// First policy (by name) that asks to pause at critical.
    pub pause_by: Option<String>,
    /// Where sending pauses: the critical thresholds of the policies that
    /// pause only. A monitor-only policy's stricter threshold alerts but
    /// does not move the pause point.
    pub pause_point: Option<PausePoint>,
    pub auto_resume_after: Option<Duration>,
}

/// The policy each level of one metric's thresholds came from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sources {
    pub warning: Option<String>,
    pub critical: Option<String>,
}

impl Sources {
    /// The source of the threshold a level was judged against.
    pub fn for_level(&self, level: Level) -> Option<&str> {
        match level {
            Level::Critical => self.critical.as_deref(),
            _ => self.warning.as_deref(),
        }
    }
}

/// Per metric, the strictest critical threshold among pausing policies and
/// the policy it belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct PausePoint {
    pub bounce: (f64, String),
    pub complaint: (f64, String),
}

impl PausePoint {
    /// Levels at the pause point: Critical at or above it, Healthy below.
    pub fn levels(&self, reading: &Reading, now: Timestamp, staleness: Duration) -> Levels {
        let at = |critical: f64| Thresholds {
            warning: critical,
            critical,
        };
        Levels {
            bounce: level(reading.bounce, &at(self.bounce.0), now, staleness),
            complaint: level(reading.complaint, &at(self.complaint.0), now, staleness),
        }
    }

    /// The policy whose threshold `levels` (from [`Self::levels`]) reached.
    pub fn policy_for(&self, levels: &Levels) -> &str {
        if levels.bounce == Level::Critical {
            &self.bounce.1
        } else {
            &self.complaint.1
        }
    }
}

/// The stricter thresholds of all selecting policies win, per metric and
/// per level; with no policy, AWS's levels apply (and nothing pauses).
pub fn applied(policies: &[(String, &ReputationPolicySpec)]) -> Applied {
    let mut out = Applied {
        bounce: AWS_BOUNCE,
        complaint: AWS_COMPLAINT,
        bounce_sources: Sources::default(),
        complaint_sources: Sources::default(),
        pause_by: None,
        pause_point: None,
        auto_resume_after: None,
    };
    let mut sorted: Vec<_> = policies.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut first = true;
    for (name, spec) in sorted {
        if first {
            out.bounce = spec.bounce_rate;
            out.complaint = spec.complaint_rate;
            out.bounce_sources = Sources {
                warning: Some(name.clone()),
                critical: Some(name.clone()),
            };
            out.complaint_sources = out.bounce_sources.clone();
            first = false;
        } else {
            // Per level: the first policy (by name) with the strictest value.
            stricter_from(&mut out.bounce, &mut out.bounce_sources, spec.bounce_rate, name);
            stricter_from(
                &mut out.complaint,
                &mut out.complaint_sources,
                spec.complaint_rate,
                name,
            );
        }
        if spec.actions.pause_sending {
            if out.pause_by.is_none() {
                out.pause_by = Some(name.clone());
            }
            let point = out.pause_point.get_or_insert_with(|| PausePoint {
                bounce: (spec.bounce_rate.critical, name.clone()),
                complaint: (spec.complaint_rate.critical, name.clone()),
            });
            if spec.bounce_rate.critical < point.bounce.0 {
                point.bounce = (spec.bounce_rate.critical, name.clone());
            }
            if spec.complaint_rate.critical < point.complaint.0 {
                point.complaint = (spec.complaint_rate.critical, name.clone());
            }
        }
        if let Some(after) = spec.actions.auto_resume.as_ref().and_then(|a| parse_duration(&a.after)) {
            // The longest quiet period asked for wins: resuming is the risky side.
            out.auto_resume_after = Some(out.auto_resume_after.map_or(after, |d: Duration| d.max(after)));
        }
    }
    out
}

/// [`applied`] for the policies selecting a set, named by their objects.
pub fn applied_for(policies: &[&crate::api::ReputationPolicy]) -> Applied {
    use kube::ResourceExt;
    let named: Vec<(String, &ReputationPolicySpec)> = policies.iter().map(|p| (p.name_any(), &p.spec)).collect();
    applied(&named)
}

fn stricter_from(t: &mut Thresholds, sources: &mut Sources, other: Thresholds, name: &str) {
    if other.warning < t.warning {
        t.warning = other.warning;
        sources.warning = Some(name.to_string());
    }
    if other.critical < t.critical {
        t.critical = other.critical;
        sources.critical = Some(name.to_string());
    }
}

/// Level of one sample. Missing or stale data is Unknown, never Healthy.
pub fn level(sample: Option<Sample>, t: &Thresholds, now: Timestamp, staleness: Duration) -> Level {
    let Some(s) = sample else { return Level::Unknown };
    if now.duration_since(s.at).as_secs_f64() > staleness.as_secs_f64() {
        return Level::Unknown;
    }
    if s.value >= t.critical {
        Level::Critical
    } else if s.value >= t.warning {
        Level::Warning
    } else {
        Level::Healthy
    }
}

/// Both metrics' levels and the overall (worst known) one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Levels {
    pub bounce: Level,
    pub complaint: Level,
}

impl Levels {
    pub fn overall(&self) -> Level {
        self.bounce.max(self.complaint)
    }
}

pub fn levels(reading: &Reading, applied: &Applied, now: Timestamp, staleness: Duration) -> Levels {
    Levels {
        bounce: level(reading.bounce, &applied.bounce, now, staleness),
        complaint: level(reading.complaint, &applied.complaint, now, staleness),
    }
}

/// A sample's value when its level is known (for gauges: a stale or
/// missing rate has no value, never 0).
pub fn known_value(level: Level, sample: Option<Sample>) -> Option<f64> {
    sample.filter(|_| level != Level::Unknown).map(|s| s.value)
}

/// `0.0312` -> `3.12%` (complaint rates need more digits: `0.0005` -> `0.050%`).
pub fn percent(value: f64, metric: Metric) -> String {
    match metric {
        Metric::Bounce => format!("{:.2}%", value * 100.0),
        Metric::Complaint => format!("{:.3}%", value * 100.0),
    }
}

/// A rate condition (BounceRateHealthy / ComplaintRateHealthy): status
/// (`None` = Unknown), reason and message with the value, the threshold
/// and `by` (where the threshold comes from).
pub fn rate_condition(
    metric: Metric,
    level: Level,
    sample: Option<Sample>,
    t: &Thresholds,
    by: &str,
) -> (Option<bool>, &'static str, String) {
    let value = sample.map(|s| percent(s.value, metric)).unwrap_or_default();
    match level {
        Level::Unknown => (
            None,
            "NoData",
            format!(
                "no recent {} data in CloudWatch (is reputation metrics on?)",
                metric.noun()
            ),
        ),
        Level::Healthy => (
            Some(true),
            "BelowWarning",
            format!(
                "{} {value} is below the warning threshold {} ({by})",
                metric.noun(),
                percent(t.warning, metric)
            ),
        ),
        Level::Warning => (
            Some(false),
            "AboveWarning",
            format!(
                "{} {value} is at or above the warning threshold {} ({by})",
                metric.noun(),
                percent(t.warning, metric)
            ),
        ),
        Level::Critical => (
            Some(false),
            "AboveCritical",
            format!(
                "{} {value} is at or above the critical threshold {} ({by})",
                metric.noun(),
                percent(t.critical, metric)
            ),
        ),
    }
}

/// How a condition names where its threshold comes from.
pub fn source_label(policy: Option<&str>) -> String {
    policy.map_or_else(|| "AWS's own level".to_string(), |p| format!("ReputationPolicy {p}"))
}

/// A pause put on a set by a policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Pause {
    pub policy: String,
    pub reason: String,
    pub since: Timestamp,
    /// Since when both rates have been below warning (for auto-resume).
    pub quiet_since: Option<Timestamp>,
}

/// What the pause logic decided this round.
#[derive(Clone, Debug, PartialEq)]
pub enum PauseStep {
    Stay(Option<Pause>),
    Paused(Pause),
    Resumed { how: &'static str },
}

impl PauseStep {
    pub fn pause(&self) -> Option<&Pause> {
        match self {
            PauseStep::Stay(p) => p.as_ref(),
            PauseStep::Paused(p) => Some(p),
            PauseStep::Resumed { .. } => None,
        }
    }
}

/// Inputs of [`pause_step`].
pub struct PauseInput<'a> {
    pub current: Option<Pause>,
    /// Levels against the applied thresholds (auto-resume needs Healthy).
    pub levels: Levels,
    /// Levels against the pause point ([`PausePoint::levels`]).
    pub pause_levels: Levels,
    /// Overall level at the previous evaluation, against the pause point.
    pub previous: Level,
    pub applied: &'a Applied,
    /// Time of the last resume (manual or automatic), if any.
    pub resumed_at: Option<Timestamp>,
    /// When an evaluation after that resume first saw the rate below the
    /// pause point, as status records it.
    pub rearmed_at: Option<Timestamp>,
    /// Time in the resume annotation, if any.
    pub resume_requested_at: Option<Timestamp>,
    /// The quiet clock may not run: the source that paused the set cannot
    /// see yet (live windows warming up after a restart).
    pub quiet_blocked: bool,
    /// A pause a policy's findings rule asks for (policy, reason): a
    /// HIGH-impact finding it treats as Critical.
    pub findings_pause: Option<(String, String)>,
    /// The level findings count as (Unknown: they do not judge); the quiet
    /// clock needs it Healthy or Unknown too.
    pub findings_level: Level,
    pub reason: String,
    pub now: Timestamp,
}

/// How far ahead of the operator's clock a resume time may be (clock skew
/// between the user's machine and the cluster).
pub const RESUME_SKEW: Duration = Duration::from_secs(60);

/// A resume time in the future is refused: it would otherwise lift every
/// later pause until that time.
pub fn resume_in_future(requested: Option<Timestamp>, now: Timestamp) -> bool {
    requested.is_some_and(|at| at.duration_since(now).as_secs_f64() > RESUME_SKEW.as_secs_f64())
}

/// Decides pause and resume. A set pauses when it reaches the pause point
/// (the critical threshold of a policy with `pauseSending`), except right
/// after a resume while the rate has stayed there (AWS rates trail:
/// re-pausing at once would make a resume impossible); it must drop below
/// first. Auto-resume needs `after` of continuous quiet: no rate at
/// Warning or above and at least one known; no data at all (both Unknown)
/// restarts the clock, so a set whose data stops while paused stays paused
/// until data returns or someone resumes it.
pub fn pause_step(input: PauseInput<'_>) -> PauseStep {
    let overall = input.levels.overall();
    if let Some(mut pause) = input.current {
        if input
            .resume_requested_at
            .is_some_and(|at| at > pause.since && !resume_in_future(Some(at), input.now))
        {
            return PauseStep::Resumed { how: "manual" };
        }
        let quiet = matches!(overall, Level::Healthy)
            && !input.quiet_blocked
            && matches!(input.findings_level, Level::Healthy | Level::Unknown);
        pause.quiet_since = if quiet {
            pause.quiet_since.or(Some(input.now))
        } else {
            None
        };
        if let (Some(after), Some(quiet_since)) = (input.applied.auto_resume_after, pause.quiet_since)
            && input.now.duration_since(quiet_since).as_secs_f64() >= after.as_secs_f64()
        {
            return PauseStep::Resumed { how: "automatic" };
        }
        if input.applied.pause_by.is_none() {
            // No policy asks for pausing any more: release the set.
            return PauseStep::Resumed { how: "policy removed" };
        }
        return PauseStep::Stay(Some(pause));
    }
    // After a resume, only a known level below Critical re-arms: a gap in
    // the data (Unknown) says nothing about the trailing rate. Seen once,
    // the re-arming is recorded in status: a pass that wrote the next
    // (Critical) reading but could not pause (SES failed, or the pass was
    // backing off) must not make that reading look like the old one.
    let rearmed = input
        .rearmed_at
        .zip(input.resumed_at)
        .is_some_and(|(rearmed, resumed)| rearmed >= resumed);
    let armed = input.resumed_at.is_none() || rearmed || matches!(input.previous, Level::Healthy | Level::Warning);
    // A finding stays open across a resume: only a re-arm (the finding
    // seen closed) lets it pause again.
    if let Some((policy, reason)) = input.findings_pause.filter(|_| input.resumed_at.is_none() || rearmed) {
        return PauseStep::Paused(Pause {
            policy,
            reason,
            since: input.now,
            quiet_since: None,
        });
    }
    match &input.applied.pause_point {
        Some(point) if armed && input.pause_levels.overall() == Level::Critical => PauseStep::Paused(Pause {
            policy: point.policy_for(&input.pause_levels).to_string(),
            reason: input.reason,
            since: input.now,
            quiet_since: None,
        }),
        _ => PauseStep::Stay(None),
    }
}

/// Parses the CRD's durations (`autoResume.after`, `breaker.window`):
/// whole numbers of hours, minutes and seconds, `90s`, `30m`, `2h`,
/// `1h30m`, exactly what their CEL rule `^([0-9]+(s|m|h))+$` admits. As
/// that rule (and Go, whose format the field docs name) allows, terms may
/// come in any order and repeat (`30m1h`). Days (`3d`), signs, fractions,
/// spaces and the longer labels jiff also reads (`1 hour`, `1.5h`, `-1h`,
/// `PT1H`) are refused, as the rule refuses them: the operator reads a
/// value the way the apiserver validated it, or not at all.
///
/// jiff reads each `<digits><unit>` term and the sum is checked (an
/// absurd count of hours is `None`, not an overflow). It is handed one
/// term at a time because its friendly format wants units largest first
/// and each once, which the CEL rule does not ask for.
pub fn parse_duration(s: &str) -> Option<Duration> {
    static PARSER: jiff::fmt::friendly::SpanParser = jiff::fmt::friendly::SpanParser::new();
    // Only digits and the three unit letters: what is left for jiff to
    // refuse is a term without digits (`s` of `5ms`) or without a unit.
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b's' | b'm' | b'h')) {
        return None;
    }
    s.split_inclusive(['s', 'm', 'h'])
        .try_fold(Duration::ZERO, |total, term| {
            total.checked_add(PARSER.parse_unsigned_duration(term).ok()?)
        })
}

/// The policies (of the set's namespace) whose selector picks the set.
pub fn selecting<'p>(
    cs: &crate::api::ConfigurationSet,
    policies: &'p [std::sync::Arc<crate::api::ReputationPolicy>],
) -> Vec<&'p crate::api::ReputationPolicy> {
    policies
        .iter()
        .map(|p| &**p)
        .filter(|p| selects(p, kube::ResourceExt::labels(cs)))
        .collect()
}

/// Whether a policy's label selector picks a set with these labels (a
/// selector kube cannot parse picks nothing).
pub fn selects(policy: &crate::api::ReputationPolicy, labels: &std::collections::BTreeMap<String, String>) -> bool {
    use kube::core::{Selector, SelectorExt};
    Selector::try_from(policy.spec.selector.clone()).is_ok_and(|s| s.matches(labels))
}

/// Whether a policy's selector is one kube cannot parse (the apiserver
/// accepted it): it selects nothing, and says so in its status.
pub fn selector_unreadable(policy: &crate::api::ReputationPolicy) -> bool {
    kube::core::Selector::try_from(policy.spec.selector.clone()).is_err()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::reputation_policy::Actions;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).expect("timestamp")
    }

    fn policy(bounce: (f64, f64), complaint: (f64, f64), pause: bool) -> ReputationPolicySpec {
        ReputationPolicySpec {
            selector: Default::default(),
            bounce_rate: Thresholds {
                warning: bounce.0,
                critical: bounce.1,
            },
            complaint_rate: Thresholds {
                warning: complaint.0,
                critical: complaint.1,
            },
            actions: Actions {
                pause_sending: pause,
                ..Default::default()
            },
            breaker: None,
            findings: None,
        }
    }

    const STALE: Duration = Duration::from_secs(3600);

    #[test]
    fn no_data_is_unknown_never_healthy() {
        assert_eq!(level(None, &AWS_BOUNCE, at(0), STALE), Level::Unknown);
        let old = Sample { value: 0.0, at: at(0) };
        assert_eq!(level(Some(old), &AWS_BOUNCE, at(7200), STALE), Level::Unknown);
    }

    #[test]
    fn aws_levels_apply_without_a_policy() {
        let a = applied(&[]);
        let s = |v| Some(Sample { value: v, at: at(0) });
        assert_eq!(level(s(0.01), &a.bounce, at(0), STALE), Level::Healthy);
        assert_eq!(level(s(0.05), &a.bounce, at(0), STALE), Level::Warning);
        assert_eq!(level(s(0.10), &a.bounce, at(0), STALE), Level::Critical);
        assert_eq!(level(s(0.002), &a.complaint, at(0), STALE), Level::Warning);
        assert!(a.pause_by.is_none());
    }

    #[test]
    fn the_stricter_policy_wins_per_metric_and_is_named() {
        let loose = policy((0.03, 0.06), (0.0005, 0.001), false);
        let strict = policy((0.02, 0.04), (0.001, 0.002), true);
        let a = applied(&[("loose".into(), &loose), ("strict".into(), &strict)]);
        assert_eq!(
            a.bounce,
            Thresholds {
                warning: 0.02,
                critical: 0.04
            }
        );
        assert_eq!(a.bounce_sources.for_level(Level::Warning), Some("strict"));
        assert_eq!(a.bounce_sources.for_level(Level::Critical), Some("strict"));
        assert_eq!(
            a.complaint,
            Thresholds {
                warning: 0.0005,
                critical: 0.001
            }
        );
        assert_eq!(a.complaint_sources.for_level(Level::Healthy), Some("loose"));
        assert_eq!(a.pause_by.as_deref(), Some("strict"));
    }

    #[test]
    fn warning_and_critical_name_the_policy_each_came_from() {
        let early = policy((0.01, 0.08), (0.001, 0.005), false);
        let hard = policy((0.03, 0.05), (0.001, 0.005), true);
        let a = applied(&[("early".into(), &early), ("hard".into(), &hard)]);
        assert_eq!(
            a.bounce,
            Thresholds {
                warning: 0.01,
                critical: 0.05
            }
        );
        assert_eq!(a.bounce_sources.for_level(Level::Warning), Some("early"));
        assert_eq!(a.bounce_sources.for_level(Level::Critical), Some("hard"));
    }

    #[test]
    fn a_monitor_only_policy_does_not_move_the_pause_point() {
        let monitor = policy((0.01, 0.02), (0.0005, 0.001), false);
        let pauser = policy((0.025, 0.05), (0.0005, 0.001), true);
        let a = applied(&[("monitor".into(), &monitor), ("pauser".into(), &pauser)]);
        let point = a.pause_point.clone().expect("pause point");
        assert_eq!(point.bounce, (0.05, "pauser".to_string()));
        let reading = Reading {
            bounce: Some(Sample { value: 0.03, at: at(0) }),
            complaint: Some(Sample { value: 0.0, at: at(0) }),
            read_at: None,
        };
        // Critical for the monitor (alerts), below the pauser's point.
        assert_eq!(levels(&reading, &a, at(0), STALE).bounce, Level::Critical);
        let at_point = point.levels(&reading, at(0), STALE);
        assert_eq!(at_point.overall(), Level::Healthy);
        let mut i = input(None, Level::Critical, Level::Warning, &a, 0);
        i.pause_levels = at_point;
        assert_eq!(pause_step(i), PauseStep::Stay(None));
        // At the pauser's point the pause names the pauser.
        let high = Reading {
            bounce: Some(Sample { value: 0.06, at: at(0) }),
            ..reading
        };
        let mut i = input(None, Level::Critical, Level::Warning, &a, 0);
        i.pause_levels = point.levels(&high, at(0), STALE);
        assert!(matches!(pause_step(i), PauseStep::Paused(ref p) if p.policy == "pauser"));
    }

    #[test]
    fn conditions_carry_value_threshold_and_source() {
        let t = Thresholds {
            warning: 0.025,
            critical: 0.05,
        };
        let s = Some(Sample { value: 0.03, at: at(0) });
        let (status, reason, msg) =
            rate_condition(Metric::Bounce, Level::Warning, s, &t, &source_label(Some("strict")));
        assert_eq!((status, reason), (Some(false), "AboveWarning"));
        assert_eq!(
            msg,
            "bounce rate 3.00% is at or above the warning threshold 2.50% (ReputationPolicy strict)"
        );
        assert_eq!(
            rate_condition(Metric::Complaint, Level::Unknown, None, &t, &source_label(None)).1,
            "NoData"
        );
    }

    fn input<'a>(current: Option<Pause>, overall: Level, previous: Level, a: &'a Applied, now: i64) -> PauseInput<'a> {
        PauseInput {
            current,
            levels: Levels {
                bounce: overall,
                complaint: Level::Healthy,
            },
            pause_levels: Levels {
                bounce: overall,
                complaint: Level::Healthy,
            },
            previous,
            applied: a,
            rearmed_at: None,
            resumed_at: None,
            resume_requested_at: None,
            quiet_blocked: false,
            findings_pause: None,
            findings_level: Level::Unknown,
            reason: "bounce rate 6.00%".into(),
            now: at(now),
        }
    }

    #[test]
    fn critical_pauses_only_with_pause_sending() {
        let p = policy((0.025, 0.05), (0.0005, 0.001), true);
        let a = applied(&[("p".into(), &p)]);
        let step = pause_step(input(None, Level::Critical, Level::Warning, &a, 0));
        assert!(matches!(step, PauseStep::Paused(ref pause) if pause.policy == "p"));
        let no = policy((0.025, 0.05), (0.0005, 0.001), false);
        let a = applied(&[("p".into(), &no)]);
        assert_eq!(
            pause_step(input(None, Level::Critical, Level::Warning, &a, 0)),
            PauseStep::Stay(None)
        );
    }

    #[test]
    fn a_manual_resume_holds_until_the_rate_drops_below_critical() {
        let p = policy((0.025, 0.05), (0.0005, 0.001), true);
        let a = applied(&[("p".into(), &p)]);
        let paused = Pause {
            policy: "p".into(),
            reason: "x".into(),
            since: at(0),
            quiet_since: None,
        };
        let mut i = input(Some(paused.clone()), Level::Critical, Level::Critical, &a, 10);
        i.resume_requested_at = Some(at(5));
        assert_eq!(pause_step(i), PauseStep::Resumed { how: "manual" });
        // A resume time in the future is refused, not kept as a standing
        // exemption from later pauses.
        let mut i = input(Some(paused.clone()), Level::Critical, Level::Critical, &a, 10);
        i.resume_requested_at = Some(at(10 + 3600));
        assert!(matches!(pause_step(i), PauseStep::Stay(Some(_))));
        assert!(resume_in_future(Some(at(10 + 3600)), at(10)));
        assert!(!resume_in_future(Some(at(30)), at(10)), "clock skew is tolerated");
        // An annotation older than the pause does not resume it.
        let mut i = input(Some(paused), Level::Critical, Level::Critical, &a, 10);
        i.resume_requested_at = Some(at(-5));
        assert!(matches!(pause_step(i), PauseStep::Stay(Some(_))));
        // Still critical right after the resume: not paused again...
        let mut i = input(None, Level::Critical, Level::Critical, &a, 20);
        i.resumed_at = Some(at(10));
        assert_eq!(pause_step(i), PauseStep::Stay(None));
        // ...but a new climb into critical pauses.
        let mut i = input(None, Level::Critical, Level::Warning, &a, 30);
        i.resumed_at = Some(at(10));
        assert!(matches!(pause_step(i), PauseStep::Paused(_)));
    }

    #[test]
    fn auto_resume_waits_for_the_whole_quiet_period() {
        let mut p = policy((0.025, 0.05), (0.0005, 0.001), true);
        p.actions.auto_resume = Some(crate::api::reputation_policy::AutoResume { after: "10m".into() });
        let a = applied(&[("p".into(), &p)]);
        let paused = Pause {
            policy: "p".into(),
            reason: "x".into(),
            since: at(0),
            quiet_since: None,
        };
        let PauseStep::Stay(Some(quiet)) = pause_step(input(Some(paused), Level::Healthy, Level::Critical, &a, 60))
        else {
            panic!("stays paused while the quiet period starts");
        };
        assert_eq!(quiet.quiet_since, Some(at(60)));
        assert!(matches!(
            pause_step(input(Some(quiet.clone()), Level::Healthy, Level::Healthy, &a, 659)),
            PauseStep::Stay(Some(_))
        ));
        // A warning in between restarts the clock.
        let PauseStep::Stay(Some(reset)) =
            pause_step(input(Some(quiet.clone()), Level::Warning, Level::Healthy, &a, 300))
        else {
            panic!("still paused");
        };
        assert_eq!(reset.quiet_since, None);
        // A source that cannot see yet (live windows warming up after a
        // restart) does not start the clock either.
        let mut blind = input(Some(quiet.clone()), Level::Healthy, Level::Healthy, &a, 300);
        blind.quiet_blocked = true;
        let PauseStep::Stay(Some(held)) = pause_step(blind) else {
            panic!("still paused");
        };
        assert_eq!(held.quiet_since, None);
        // So does a gap in the data: auto-resume needs observed quiet.
        let mut no_data = input(Some(quiet.clone()), Level::Unknown, Level::Healthy, &a, 300);
        no_data.levels.complaint = Level::Unknown;
        let PauseStep::Stay(Some(gap)) = pause_step(no_data) else {
            panic!("still paused");
        };
        assert_eq!(gap.quiet_since, None);
        assert_eq!(
            pause_step(input(Some(quiet), Level::Healthy, Level::Healthy, &a, 660)),
            PauseStep::Resumed { how: "automatic" }
        );
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("3d"), None);
    }

    #[test]
    fn durations_take_terms_in_any_order_as_the_cel_rule_does() {
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1h30m15s"), Some(Duration::from_secs(5415)));
        assert_eq!(parse_duration("30m1h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1m1m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
        assert_eq!(parse_duration("007s"), Some(Duration::from_secs(7)));
    }

    #[test]
    fn durations_refuse_what_the_cel_rule_refuses_though_jiff_reads_it() {
        for s in [
            "1h 30m", " 90s", "90s ", "-90s", "+90s", "1.5h", "1,5h", "5ms", "1 hour", "1hr", "2hours", "PT1H",
            "01:30:00", "1h ago", "1w", "1d2h", "h", "1h5", "90S",
        ] {
            assert_eq!(parse_duration(s), None, "{s:?}");
        }
    }

    #[test]
    fn an_absurd_duration_is_refused_not_overflowed() {
        assert_eq!(parse_duration("99999999999999999999s"), None);
        assert_eq!(parse_duration("5124095576030432h"), None);
        assert_eq!(parse_duration("5124095576030430h5124095576030430h"), None);
    }
}
