//! CloudWatch reads of SES reputation: `AWS/SES` `Reputation.BounceRate`
//! and `Reputation.ComplaintRate`, per configuration set (dimension
//! `ses:configuration-set`) and for the account (no dimension), batched
//! into as few GetMetricData calls as the 500-query limit allows.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
use aws_smithy_types::DateTime;
use jiff::Timestamp;

use super::{AwsError, Session};
use crate::domain::reputation::{Reading, Sample};

/// GetMetricData accepts at most 500 queries per call.
const MAX_QUERIES: usize = 500;
const NAMESPACE: &str = "AWS/SES";
const BOUNCE: &str = "Reputation.BounceRate";
const COMPLAINT: &str = "Reputation.ComplaintRate";
/// The period of every query, in seconds.
const PERIOD_SECONDS: i32 = 60;

/// Rates of an account and of some of its configuration sets.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rates {
    pub account: Reading,
    pub sets: HashMap<String, Reading>,
}

impl Session {
    /// Newest bounce and complaint rate of the account and of each set,
    /// looking back `window`; a set without data gets an empty reading.
    pub async fn reputation_rates(&self, sets: &[String], window: Duration) -> Result<Rates, AwsError> {
        // One query per (subject, metric); subject None is the account.
        let mut subjects: Vec<Option<&str>> = vec![None];
        subjects.extend(sets.iter().map(|s| Some(s.as_str())));
        let queries: Vec<(String, Option<&str>, &str)> = subjects
            .iter()
            .enumerate()
            .flat_map(|(i, subject)| {
                [
                    (format!("b{i}"), *subject, BOUNCE),
                    (format!("c{i}"), *subject, COMPLAINT),
                ]
            })
            .collect();
        // Aligned to the 60 s period: CloudWatch places datapoints relative
        // to StartTime, so an unaligned window moves every timestamp (and
        // every status that shows one) with each read.
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let end =
            SystemTime::UNIX_EPOCH + Duration::from_secs(now - now % PERIOD_SECONDS as u64 + PERIOD_SECONDS as u64);
        let window_secs = window.as_secs().div_ceil(PERIOD_SECONDS as u64) * PERIOD_SECONDS as u64;
        let start = end - Duration::from_secs(window_secs);
        let mut newest: HashMap<String, Sample> = HashMap::new();
        for chunk in queries.chunks(MAX_QUERIES) {
            let built: Vec<MetricDataQuery> = chunk
                .iter()
                .map(|(id, subject, metric)| query(id, *subject, metric))
                .collect();
            let mut token: Option<String> = None;
            loop {
                let req = self
                    .cloudwatch
                    .get_metric_data()
                    .set_metric_data_queries(Some(built.clone()))
                    .start_time(DateTime::from(start))
                    .end_time(DateTime::from(end))
                    .scan_by(ScanBy::TimestampDescending)
                    .set_next_token(token.take());
                let out = self.call("cloudwatch:GetMetricData", req.send()).await?;
                for result in out.metric_data_results() {
                    let Some(id) = result.id() else { continue };
                    // Descending scan: the first point is the newest; pages
                    // can repeat an id, so keep the newest seen.
                    let points = result.timestamps().iter().zip(result.values());
                    for (ts, value) in points {
                        let Ok(at) = Timestamp::from_second(ts.secs()) else {
                            continue;
                        };
                        let entry = newest.entry(id.to_string()).or_insert(Sample { value: *value, at });
                        if at > entry.at {
                            *entry = Sample { value: *value, at };
                        }
                    }
                }
                token = out.next_token;
                if token.is_none() {
                    break;
                }
            }
        }
        let read_at = Some(Timestamp::now());
        let reading = |i: usize| Reading {
            bounce: newest.get(&format!("b{i}")).copied(),
            complaint: newest.get(&format!("c{i}")).copied(),
            read_at,
        };
        Ok(Rates {
            account: reading(0),
            sets: sets
                .iter()
                .enumerate()
                .map(|(i, name)| (name.clone(), reading(i + 1)))
                .collect(),
        })
    }
}

fn query(id: &str, set: Option<&str>, metric: &str) -> MetricDataQuery {
    let dimensions = set.map(|name| vec![Dimension::builder().name("ses:configuration-set").value(name).build()]);
    let metric = Metric::builder()
        .namespace(NAMESPACE)
        .metric_name(metric)
        .set_dimensions(dimensions)
        .build();
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(metric)
                .period(PERIOD_SECONDS)
                .stat("Average")
                .build(),
        )
        .return_data(true)
        .build()
}
