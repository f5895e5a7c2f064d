//! The AWS emulator (tests/aws-emulator: moto + the project's SES v2
//! extension) as the tests see it: SDK configuration pointing at it, and a
//! client for its `/_emulator/` admin API (call counts, faults, account state).
//!
//! The admin client is a few lines of HTTP/1.1 over a loopback socket
//! (`Connection: close`, JSON bodies), run on the blocking pool: the project
//! has no HTTP client dependency, and a blocking call can also run in `Drop`,
//! which is how a fault guard turns faults off even when its test panics.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sesv2::config::Credentials;
use serde_json::{Value, json};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Base URL of the emulator, from `SRO_AWS_ENDPOINT` (set by tools/ground.sh).
pub fn endpoint() -> String {
    std::env::var("SRO_AWS_ENDPOINT")
        .expect("SRO_AWS_ENDPOINT is not set: run the tests through `make test` (tools/ground.sh)")
}

/// SDK configuration for the emulator: us-east-1, static test credentials,
/// three attempts (so throttling tests see the SDK's own retries).
pub async fn sdk_config() -> SdkConfig {
    sdk_config_in("us-east-1").await
}

/// As [`sdk_config`], for another region (state and region-scoped faults are
/// per region, so a region of its own isolates a test).
pub async fn sdk_config_in(region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "emulator"))
        .endpoint_url(endpoint())
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .load()
        .await
}

/// Faults are global to the emulator, which all tests of the process share:
/// tests that turn faults on take this lock exclusively, tests that need
/// faults off may take it shared.
static FAULTS: RwLock<()> = RwLock::const_new(());

/// Held by a test that turns faults on; turns all faults off when dropped
/// (also when the test panics).
pub struct FaultGuard {
    _lock: RwLockWriteGuard<'static, ()>,
    regions: Vec<String>,
}

impl Drop for FaultGuard {
    fn drop(&mut self) {
        let _ = request(
            "POST",
            "/_emulator/faults",
            Some(&json!({"ses_rps": null, "error_rate": 0.0})),
        );
        for region in &self.regions {
            let _ = request(
                "POST",
                "/_emulator/faults",
                Some(&json!({"region": region, "ses_rps": null, "error_rate": 0.0})),
            );
        }
    }
}

impl FaultGuard {
    /// Faults for one region only, so tests in other regions are unaffected.
    pub async fn set_faults_in(&mut self, region: &str, ses_rps: Option<f64>, error_rate: f64) {
        self.regions.push(region.to_string());
        call(
            "POST",
            "/_emulator/faults",
            Some(json!({"region": region, "ses_rps": ses_rps, "error_rate": error_rate})),
        )
        .await;
    }
}

impl FaultGuard {
    /// Server errors on SES v2, SNS and SQS calls in one region (SQS is
    /// left alone by [`FaultGuard::set_faults_in`]).
    pub async fn set_faults_with_sqs_in(&mut self, region: &str, error_rate: f64) {
        self.regions.push(region.to_string());
        call(
            "POST",
            "/_emulator/faults",
            Some(json!({"region": region, "error_rate": error_rate, "sqs": true})),
        )
        .await;
    }
}

/// Exclusive: for tests that turn faults on.
pub async fn fault_lock() -> FaultGuard {
    FaultGuard {
        _lock: FAULTS.write().await,
        regions: Vec::new(),
    }
}

/// Shared: for tests that need global faults off while they run.
pub async fn no_faults() -> RwLockReadGuard<'static, ()> {
    FAULTS.read().await
}

/// A fresh SQS queue in `region`: (queue URL, queue ARN).
pub async fn sqs_queue(region: &str, prefix: &str) -> (String, String) {
    let name = crate::support::unique(prefix);
    let out = aws_sdk_sqs::Client::new(&sdk_config_in(region).await)
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .expect("create SQS queue");
    (
        out.queue_url.expect("queue URL"),
        format!("arn:aws:sqs:{region}:123456789012:{name}"),
    )
}

/// A fresh SNS topic in `region` (SNS's default policy) with a fresh SQS
/// queue subscribed to it, raw delivery: (topic ARN, queue URL).
pub async fn topic_with_queue(region: &str, prefix: &str) -> (String, String) {
    let (queue_url, queue_arn) = sqs_queue(region, prefix).await;
    let sns = aws_sdk_sns::Client::new(&sdk_config_in(region).await);
    let topic = sns
        .create_topic()
        .name(crate::support::unique(prefix))
        .send()
        .await
        .expect("topic")
        .topic_arn
        .expect("topic ARN");
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .expect("subscribe");
    (topic, queue_url)
}

/// Gives a topic the access policy the operator writes for its own topics:
/// SES may publish the events of `set_arn` (the emulator, like SNS, drops
/// what the policy does not allow).
pub async fn allow_ses(region: &str, topic: &str, set_arn: &str) {
    let policy = ses_reputation_operator::domain::diff::topic::access_policy(topic, "123456789012", set_arn);
    aws_sdk_sns::Client::new(&sdk_config_in(region).await)
        .set_topic_attributes()
        .topic_arn(topic)
        .attribute_name("Policy")
        .attribute_value(policy.to_string())
        .send()
        .await
        .expect("topic policy");
}

/// The admin API of the emulator.
pub struct Emulator;

impl Emulator {
    /// Calls per `service:Operation` (e.g. `sesv2:PutConfigurationSetSendingOptions`)
    /// since the last reset, by every test of the process.
    pub async fn calls(&self) -> BTreeMap<String, u64> {
        let v = call("GET", "/_emulator/calls", None).await;
        serde_json::from_value(v["calls"].clone()).expect("calls map")
    }

    pub async fn reset_calls(&self) {
        call("POST", "/_emulator/calls/reset", None).await;
    }

    /// Global faults: `ses_rps` throttles SES v2 control-plane calls (429
    /// TooManyRequestsException), `error_rate` fails that fraction of SES v2,
    /// SNS and CloudWatch calls with a 500. Hold [`fault_lock`] while on.
    pub async fn set_faults(&self, ses_rps: Option<f64>, error_rate: f64) {
        call(
            "POST",
            "/_emulator/faults",
            Some(json!({"ses_rps": ses_rps, "error_rate": error_rate})),
        )
        .await;
    }

    /// Writes to one resource (`configuration-set/<name>` or `topic/<ARN>`)
    /// per `service:Operation` that got past the faults: option groups,
    /// tags, event destinations, create and delete of a set; SNS writes and
    /// publishes to a topic. Emptied by [`Emulator::reset_calls`].
    pub async fn writes_to(&self, resource: &str) -> BTreeMap<String, u64> {
        let v = call("GET", "/_emulator/calls", None).await;
        serde_json::from_value(v["writes"][resource].clone()).unwrap_or_default()
    }

    /// Calls signed with credentials from AssumeRole of `role_arn` fail with
    /// AccessDenied for these `service:Operation`s (`service:*` for all);
    /// an empty list lifts the rule. Give each test a role of its own.
    pub async fn deny(&self, role_arn: &str, operations: &[&str]) {
        call(
            "POST",
            "/_emulator/deny",
            Some(json!({"role_arn": role_arn, "operations": operations})),
        )
        .await;
    }

    /// The account state GetAccount shows in `region` (test-only control).
    pub async fn set_account(&self, region: &str, enforcement_status: &str, sending_enabled: bool) {
        call(
            "POST",
            "/_emulator/account",
            Some(
                json!({"region": region, "enforcement_status": enforcement_status, "sending_enabled": sending_enabled}),
            ),
        )
        .await;
    }

    /// What AWS's DNS checks would decide for an identity (test-only
    /// control): `update` holds `verification`, `error_type`, `dkim`,
    /// `mail_from`, `rotate_dkim` as `POST /_emulator/identity` takes them.
    pub async fn set_identity(&self, region: &str, identity: &str, mut update: Value) -> Value {
        update["region"] = region.into();
        update["identity"] = identity.into();
        call("POST", "/_emulator/identity", Some(update)).await
    }
}

async fn call(method: &'static str, path: &'static str, body: Option<Value>) -> Value {
    tokio::task::spawn_blocking(move || request(method, path, body.as_ref()))
        .await
        .expect("admin request task")
        .unwrap_or_else(|e| panic!("emulator admin {method} {path}: {e}"))
}

/// One blocking HTTP/1.1 exchange with the admin API.
fn request(method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let endpoint = endpoint();
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(host).map_err(|e| format!("connect {host}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(body.as_bytes()))
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(|e| e.to_string())?;
    let response = String::from_utf8_lossy(&response);
    let (head, payload) = response.split_once("\r\n\r\n").ok_or("malformed HTTP response")?;
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    if status != "200" {
        return Err(format!("HTTP {status}: {payload}"));
    }
    serde_json::from_str(payload).map_err(|e| format!("{e}: {payload}"))
}

/// Puts a per-set CloudWatch `Reputation.BounceRate` in `region`, stamped
/// `minutes_ago`.
pub async fn seed_bounce_in(region: &str, aws_name: &str, value: f64, minutes_ago: u64) {
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
    let cw = aws_sdk_cloudwatch::Client::new(&sdk_config_in(region).await);
    let at = std::time::SystemTime::now() - Duration::from_secs(minutes_ago * 60);
    cw.put_metric_data()
        .namespace("AWS/SES")
        .metric_data(
            MetricDatum::builder()
                .metric_name("Reputation.BounceRate")
                .dimensions(
                    Dimension::builder()
                        .name("ses:configuration-set")
                        .value(aws_name)
                        .build(),
                )
                .value(value)
                .unit(StandardUnit::None)
                .timestamp(aws_smithy_types::DateTime::from(at))
                .build(),
        )
        .send()
        .await
        .expect("PutMetricData");
}

/// POST on the emulator's admin API (JSON).
pub async fn admin_post(path: &'static str, body: Value) -> Value {
    call("POST", path, Some(body)).await
}

/// GET on the emulator's admin API (JSON).
pub async fn admin_get(path: &'static str) -> Value {
    call("GET", path, None).await
}
