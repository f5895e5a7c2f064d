//! What a set's evaluation takes from the live source (the SES event
//! stream): the window a set's selecting policies ask for, the live levels
//! a breaker judges from a window's counts, the worse-of combination with
//! CloudWatch, and the `status.reputation.live` block. Pure: the window's
//! counts come in as a [`Summary`]; the windows themselves are kept by the
//! stream consumer (`loops::stream_consumer`).

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::windows::Summary;
use super::{Applied, Level, Levels, Metric, Reading, Sample, level, parse_duration, percent};
use crate::api::ReputationPolicy;
use crate::api::configuration_set::{LiveReputation, NamedCount};

/// Window shown in status when no policy sets a breaker.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(15 * 60);

/// A live level is judged on counts as of now: it never goes stale within
/// the evaluation that reads it (any staleness longer than zero would do).
const LIVE_STALENESS: Duration = Duration::from_secs(3600);

/// The breaker in force for a set: the most sensitive of its selecting
/// policies' breakers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Breaker {
    pub window: Duration,
    pub minimum_sends: u32,
}

/// The most sensitive breaker of the selecting policies: the shortest
/// window and the smallest minimum (they may come from different
/// policies). A window that does not parse is ignored.
pub fn breaker(policies: &[&ReputationPolicy]) -> Option<Breaker> {
    policies
        .iter()
        .filter_map(|p| p.spec.breaker.as_ref())
        .filter_map(|b| {
            Some(Breaker {
                window: parse_duration(&b.window)?,
                minimum_sends: b.minimum_sends.max(1),
            })
        })
        .reduce(|a, b| Breaker {
            window: a.window.min(b.window),
            minimum_sends: a.minimum_sends.min(b.minimum_sends),
        })
}

/// The window a set's live counts are summed over: its breaker's, else
/// [`DEFAULT_WINDOW`] (shown, but it does not judge).
pub fn window(breaker: Option<Breaker>) -> Duration {
    breaker.map_or(DEFAULT_WINDOW, |b| b.window)
}

/// What the live source says about one set at one evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveView {
    pub summary: Summary,
    /// Minimum sends of the breaker; `None`: no selecting policy has one
    /// (the live rate is shown, it does not judge).
    pub minimum_sends: Option<u32>,
    /// Live levels: Unknown without a breaker or below its minimum sends.
    pub levels: Levels,
}

impl LiveView {
    /// Judges a window's counts against `applied`: only under a breaker,
    /// and only with at least its minimum sends (a handful of mails says
    /// nothing).
    pub fn judge(summary: Summary, breaker: Option<Breaker>, applied: &Applied, now: Timestamp) -> Self {
        let judged = breaker.is_some_and(|b| summary.counts.sends >= b.minimum_sends);
        let live_level = |rate: Option<f64>, t| {
            let sample = rate.filter(|_| judged).map(|value| Sample { value, at: now });
            level(sample, t, now, LIVE_STALENESS)
        };
        LiveView {
            levels: Levels {
                bounce: live_level(summary.bounce_rate, &applied.bounce),
                complaint: live_level(summary.complaint_rate, &applied.complaint),
            },
            minimum_sends: breaker.map(|b| b.minimum_sends),
            summary,
        }
    }

    /// The set's live verdict as the breaker sees it: its overall live
    /// level, `None` without a breaker (the consumer re-evaluates a set at
    /// once when this changes).
    pub fn verdict(&self) -> Option<Level> {
        self.minimum_sends.map(|_| self.levels.overall())
    }

    /// The `status.reputation.live` block.
    pub fn status(&self) -> LiveReputation {
        let s = &self.summary;
        let named = |list: Vec<(String, u32)>| {
            list.into_iter()
                .map(|(name, count)| NamedCount {
                    name,
                    count: i64::from(count),
                })
                .collect()
        };
        LiveReputation {
            window: window_label(s.window_secs),
            sends: i64::from(s.counts.sends),
            hard_bounces: i64::from(s.counts.hard_bounces),
            soft_bounces: i64::from(s.counts.soft_bounces),
            complaints: i64::from(s.counts.complaints),
            bounce_rate: s.bounce_rate.map(|r| r.to_string()),
            bounce_rate_percent: s.bounce_rate.map(|r| percent(r, Metric::Bounce)),
            complaint_rate: s.complaint_rate.map(|r| r.to_string()),
            complaint_rate_percent: s.complaint_rate.map(|r| percent(r, Metric::Complaint)),
            since: Time(s.since),
            warming_up: s.warming_up,
            top_bounce_sub_types: named(s.top_sub_types.iter().map(|(n, c)| (n.to_string(), *c)).collect()),
            top_hard_bounce_domains: named(s.top_domains.clone()),
        }
    }
}

/// Which source a metric's level came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    CloudWatch,
    Events,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::CloudWatch => "CloudWatch",
            Source::Events => "Events",
        }
    }
}

/// Per metric, the worse of the CloudWatch rate and the live rate (only
/// known with a breaker and enough sends): the reading and levels the
/// evaluation judges by, and where each came from.
pub fn combine(
    cw: &Reading,
    cw_levels: Levels,
    live: Option<&LiveView>,
    now: Timestamp,
) -> (Reading, Levels, [Source; 2]) {
    let Some(live) = live else {
        return (*cw, cw_levels, [Source::CloudWatch; 2]);
    };
    let mut reading = *cw;
    let mut levels = cw_levels;
    let mut sources = [Source::CloudWatch; 2];
    // Per metric the higher rate wins, not only the higher level: a pause
    // point between two thresholds (a stricter monitor-only policy) must
    // see a live 6% even when CloudWatch's 3% is already Critical.
    let worse = |live_level: Level, live_rate: Option<f64>, cw_level: Level, cw_sample: Option<Sample>| {
        live_level != Level::Unknown
            && live_rate.is_some_and(|v| cw_level == Level::Unknown || cw_sample.is_none_or(|c| v > c.value))
    };
    if worse(
        live.levels.bounce,
        live.summary.bounce_rate,
        cw_levels.bounce,
        cw.bounce,
    ) {
        reading.bounce = live.summary.bounce_rate.map(|value| Sample { value, at: now });
        levels.bounce = live.levels.bounce.max(cw_levels.bounce);
        sources[0] = Source::Events;
    }
    if worse(
        live.levels.complaint,
        live.summary.complaint_rate,
        cw_levels.complaint,
        cw.complaint,
    ) {
        reading.complaint = live.summary.complaint_rate.map(|value| Sample { value, at: now });
        levels.complaint = live.levels.complaint.max(cw_levels.complaint);
        sources[1] = Source::Events;
    }
    (reading, levels, sources)
}

/// `900` -> `15m`, `3600` -> `1h`, `90` -> `90s`.
pub fn window_label(secs: u64) -> String {
    if secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::api::reputation_policy::{Breaker as BreakerSpec, ReputationPolicySpec, Thresholds};
    use crate::domain::reputation::applied;
    use crate::domain::reputation::windows::Counts;

    pub(crate) fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).expect("timestamp")
    }

    /// A window of `sends` sends with these rates, 15 minutes long.
    pub(crate) fn summary(sends: u32, bounce_rate: f64, complaint_rate: f64) -> Summary {
        Summary {
            window_secs: 900,
            counts: Counts {
                sends,
                ..Default::default()
            },
            bounce_rate: Some(bounce_rate),
            complaint_rate: Some(complaint_rate),
            since: now(),
            warming_up: false,
            top_sub_types: Vec::new(),
            top_domains: Vec::new(),
        }
    }

    fn live(bounce_rate: f64, level: Level) -> LiveView {
        LiveView {
            summary: summary(200, bounce_rate, 0.0),
            minimum_sends: Some(100),
            levels: Levels {
                bounce: level,
                complaint: Level::Healthy,
            },
        }
    }

    fn with_breaker(window: &str, minimum_sends: u32) -> ReputationPolicy {
        ReputationPolicy::new(
            "p",
            ReputationPolicySpec {
                selector: Default::default(),
                bounce_rate: Thresholds::bounce_default(),
                complaint_rate: Thresholds::complaint_default(),
                actions: Default::default(),
                breaker: Some(BreakerSpec {
                    window: window.into(),
                    minimum_sends,
                }),
                findings: None,
            },
        )
    }

    #[test]
    fn the_higher_rate_wins_even_at_the_same_level() {
        let now = now();
        let cw = Reading {
            bounce: Some(Sample { value: 0.03, at: now }),
            complaint: Some(Sample { value: 0.0, at: now }),
            read_at: Some(now),
        };
        let cw_levels = Levels {
            bounce: Level::Critical,
            complaint: Level::Healthy,
        };
        // Both Critical for a strict monitor policy: the live 6% must show,
        // so a pause point at 5% sees it.
        let (reading, levels, sources) = combine(&cw, cw_levels, Some(&live(0.06, Level::Critical)), now);
        assert_eq!(reading.bounce.map(|s| s.value), Some(0.06));
        assert_eq!(levels.bounce, Level::Critical);
        assert_eq!(sources, [Source::Events, Source::CloudWatch]);
        // A lower live rate leaves CloudWatch's.
        let (reading, _, sources) = combine(&cw, cw_levels, Some(&live(0.01, Level::Healthy)), now);
        assert_eq!(reading.bounce.map(|s| s.value), Some(0.03));
        assert_eq!(sources[0], Source::CloudWatch);
        // Below the breaker's minimum the live rate does not judge at all.
        let (reading, _, _) = combine(&cw, cw_levels, Some(&live(0.5, Level::Unknown)), now);
        assert_eq!(reading.bounce.map(|s| s.value), Some(0.03));
    }

    #[test]
    fn a_live_rate_fills_in_when_cloudwatch_has_no_data() {
        let now = now();
        let unknown = Levels {
            bounce: Level::Unknown,
            complaint: Level::Unknown,
        };
        // No CloudWatch datapoint at all (a new set): even a lower-looking
        // live rate is the only judged one and drives the level.
        let (reading, levels, sources) = combine(&Reading::default(), unknown, Some(&live(0.01, Level::Healthy)), now);
        assert_eq!(reading.bounce, Some(Sample { value: 0.01, at: now }));
        assert_eq!(levels.bounce, Level::Healthy);
        assert_eq!(sources[0], Source::Events);
        // The complaint side had a live level too (Healthy at 0%).
        assert_eq!(sources[1], Source::Events);
        // Without a live view CloudWatch's reading stands as it is.
        let (reading, levels, sources) = combine(&Reading::default(), unknown, None, now);
        assert_eq!(reading, Reading::default());
        assert_eq!(levels, unknown);
        assert_eq!(sources, [Source::CloudWatch; 2]);
    }

    #[test]
    fn window_labels_use_the_largest_whole_unit() {
        assert_eq!(window_label(900), "15m");
        assert_eq!(window_label(3600), "1h");
        assert_eq!(window_label(7200), "2h");
        assert_eq!(window_label(5400), "90m");
        assert_eq!(window_label(90), "90s");
        assert_eq!(window_label(60), "1m");
    }

    #[test]
    fn the_most_sensitive_breaker_wins_per_field() {
        let short = with_breaker("5m", 500);
        let small = with_breaker("1h", 50);
        let broken = with_breaker("soon", 1);
        let b = breaker(&[&short, &small, &broken]).expect("a breaker");
        // Shortest window from one policy, smallest minimum from another;
        // the unparsable window is left out entirely.
        assert_eq!(
            b,
            Breaker {
                window: Duration::from_secs(300),
                minimum_sends: 50
            }
        );
        assert_eq!(breaker(&[]), None);
        assert_eq!(window(None), DEFAULT_WINDOW);
        assert_eq!(window(Some(b)), Duration::from_secs(300));
    }

    #[test]
    fn a_breaker_judges_only_with_enough_sends() {
        let applied = applied(&[]);
        let b = Some(Breaker {
            window: DEFAULT_WINDOW,
            minimum_sends: 100,
        });
        // 20% hard bounces over 99 sends: shown, not judged.
        let few = LiveView::judge(summary(99, 0.2, 0.0), b, &applied, now());
        assert_eq!(few.levels.bounce, Level::Unknown);
        assert_eq!(few.verdict(), Some(Level::Unknown));
        // The same rate over 100 sends is Critical against AWS's 10%.
        let enough = LiveView::judge(summary(100, 0.2, 0.0), b, &applied, now());
        assert_eq!(enough.levels.bounce, Level::Critical);
        assert_eq!(enough.verdict(), Some(Level::Critical));
        // Without a breaker nothing is judged and there is no verdict.
        let shown = LiveView::judge(summary(10_000, 0.2, 0.0), None, &applied, now());
        assert_eq!(shown.levels.overall(), Level::Unknown);
        assert_eq!(shown.verdict(), None);
        assert_eq!(shown.status().window, "15m");
        assert_eq!(shown.status().bounce_rate_percent.as_deref(), Some("20.00%"));
    }
}
