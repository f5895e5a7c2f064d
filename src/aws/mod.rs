//! Thin adapters over the AWS SDKs. Everything that talks to AWS lives
//! below this module: sessions per SesAccount, the SES rate limiter, error
//! classification, and one function per AWS operation the operator uses.

pub mod cloudwatch;
mod fence;
#[cfg(test)]
mod mocked_tests;
pub mod scheduler;
pub mod ses;
pub mod sns;
pub mod sqs;
pub mod tenants;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use parking_lot::Mutex;
use scheduler::{Priority, Scheduler};
use tokio::time::Instant;

use crate::aws::ses::DestinationCache;

use crate::ops::leader::Fence;
use crate::ops::metrics::Metrics;

/// How an AWS error should be handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// TooManyRequests / Throttling: back off and retry.
    Throttled,
    NotFound,
    AlreadyExists,
    /// AWS refused the request as invalid: retrying the same spec is useless.
    BadRequest,
    /// An account limit: retrying the same spec is useless.
    LimitExceeded,
    ConcurrentModification,
    AccessDenied,
    /// 5xx from AWS.
    Server,
    /// No answer: timeout, connection refused, DNS.
    Transport,
    /// The operator is shutting down; the call was not made.
    Cancelled,
    Other,
}

impl ErrorKind {
    /// The `outcome` label of an AWS call that failed with this kind of error.
    pub fn outcome(self) -> &'static str {
        match self {
            ErrorKind::Throttled => "throttled",
            ErrorKind::Server => "server",
            ErrorKind::Transport => "transport",
            ErrorKind::BadRequest
            | ErrorKind::NotFound
            | ErrorKind::AlreadyExists
            | ErrorKind::LimitExceeded
            | ErrorKind::AccessDenied
            | ErrorKind::ConcurrentModification
            | ErrorKind::Other => "client",
            ErrorKind::Cancelled => "cancelled",
        }
    }
}

/// An AWS call that failed, with AWS's own code and message.
#[derive(Debug, thiserror::Error)]
#[error("AWS {operation} failed: {code}: {message}")]
pub struct AwsError {
    pub operation: &'static str,
    pub kind: ErrorKind,
    pub code: String,
    pub message: String,
}

impl AwsError {
    /// Errors that retrying the same request cannot fix: a spec change
    /// can, or something outside it (a limit freed, a permission granted),
    /// which the once-per-drift-period retry picks up.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::BadRequest | ErrorKind::LimitExceeded | ErrorKind::AccessDenied
        ) || self.names_a_missing_reference()
    }

    /// A NotFound for something the spec names, not for the resource the
    /// call acts on: a set cannot be missing while it is being created,
    /// so there it is the dedicated IP pool of `delivery.sendingPoolName`
    /// (AWS: "Dedicated IP pool X does not exist"), as it is when the
    /// delivery options name it. Retrying cannot make the pool appear.
    fn names_a_missing_reference(&self) -> bool {
        self.kind == ErrorKind::NotFound
            && (self.operation == "sesv2:CreateConfigurationSet"
                || (self.operation == "sesv2:PutConfigurationSetDeliveryOptions"
                    && self.message.to_ascii_lowercase().contains("pool")))
    }

    /// A condition reason for this error: AWS's code without the
    /// `Exception` suffix (BadRequest, LimitExceeded, TooManyRequests),
    /// so status says what AWS said.
    pub fn reason(&self) -> String {
        match self.code.trim_end_matches("Exception") {
            "" => "AwsError".into(),
            code => code.to_string(),
        }
    }

    pub fn from_sdk<E, R>(operation: &'static str, err: aws_smithy_runtime_api::client::result::SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + HttpStatus,
    {
        use aws_smithy_runtime_api::client::result::SdkError;
        // The SDK reports an interceptor's refusal before transmit as a
        // dispatch failure whose connector error wraps it.
        let fenced = match &err {
            SdkError::DispatchFailure(d) => d.as_connector_error().is_some_and(|c| fence::stopped_by_fence(c)),
            _ => false,
        };
        if fenced {
            return Self {
                operation,
                kind: ErrorKind::Cancelled,
                code: NOT_LEADER.into(),
                message: fence::FenceClosed.to_string(),
            };
        }
        let status = match &err {
            SdkError::ServiceError(e) => Some(e.raw().status()),
            SdkError::ResponseError(e) => Some(e.raw().status()),
            _ => None,
        };
        let code = err.code().map(str::to_string);
        let message = one_line(
            &err.message()
                .map(str::to_string)
                .unwrap_or_else(|| aws_smithy_types::error::display::DisplayErrorContext(&err).to_string()),
        );
        let kind = match (&err, code.as_deref()) {
            (SdkError::TimeoutError(_) | SdkError::DispatchFailure(_), _) => ErrorKind::Transport,
            (_, Some(code)) => classify(code, status),
            (_, None) => match status {
                Some(429) => ErrorKind::Throttled,
                Some(s) if s >= 500 => ErrorKind::Server,
                _ => ErrorKind::Other,
            },
        };
        Self {
            operation,
            kind,
            code: code.unwrap_or_else(|| status.map_or("Unknown".into(), |s| format!("HTTP{s}"))),
            message,
        }
    }
}

/// Longest AWS message kept: condition messages must read in one line
/// (`kubectl get`, Argo CD), and an SDK error without an AWS message can
/// carry a dump of the HTTP response.
const MAX_MESSAGE: usize = 300;

/// The first line of `message`, whitespace collapsed, cut at
/// [`MAX_MESSAGE`] characters.
pub fn one_line(message: &str) -> String {
    let line = message.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
    let collapsed = line.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= MAX_MESSAGE {
        return collapsed;
    }
    let mut cut: String = collapsed.chars().take(MAX_MESSAGE - 1).collect();
    cut.push('…');
    cut
}

/// Lets [`AwsError::from_sdk`] read the HTTP status of any SDK response.
pub trait HttpStatus {
    fn status(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

/// Maps AWS error codes (SES v2 REST-JSON and SNS/CloudWatch query style)
/// onto the handling classes.
pub fn classify(code: &str, status: Option<u16>) -> ErrorKind {
    match code {
        "TooManyRequestsException"
        | "Throttling"
        | "ThrottlingException"
        | "Throttled"
        | "ThrottledException"
        | "RequestLimitExceeded" => ErrorKind::Throttled,
        "NotFoundException"
        | "NotFound"
        | "ResourceNotFound"
        | "ResourceNotFoundException"
        | "AWS.SimpleQueueService.NonExistentQueue"
        | "QueueDoesNotExist" => ErrorKind::NotFound,
        "AlreadyExistsException" => ErrorKind::AlreadyExists,
        "BadRequestException"
        | "InvalidParameter"
        | "InvalidParameterValue"
        | "ValidationError"
        | "InvalidParameterException"
        | "InvalidParameterValueException" => ErrorKind::BadRequest,
        "LimitExceededException" | "TopicLimitExceeded" | "SubscriptionLimitExceeded" | "TagLimitExceeded" => {
            ErrorKind::LimitExceeded
        }
        "ConcurrentModificationException" | "ConcurrentAccess" | "ConcurrentAccessException" => {
            ErrorKind::ConcurrentModification
        }
        "AccessDenied"
        | "AccessDeniedException"
        | "AuthorizationError"
        | "AuthorizationErrorException"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "ExpiredToken" => ErrorKind::AccessDenied,
        _ => match status {
            Some(429) => ErrorKind::Throttled,
            Some(s) if s >= 500 => ErrorKind::Server,
            _ => ErrorKind::Other,
        },
    }
}

/// Which SesAccount settings a session is built from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountKey {
    pub region: String,
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
}

/// Counts of AWS calls by `service:Operation` and outcome; shared by all
/// sessions of one operator instance. Tests read it in-process; the same
/// calls go to the Prometheus metrics through [`CallRecorder`].
#[derive(Debug, Default)]
pub struct CallCounter {
    calls: Mutex<BTreeMap<String, u64>>,
}

impl CallCounter {
    fn record(&self, operation: &str, outcome: &str) {
        let mut calls = self.calls.lock();
        *calls.entry(format!("{operation}:{outcome}")).or_default() += 1;
    }

    /// Calls by `service:Operation:outcome` (outcome `ok` or an error class).
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.calls.lock().clone()
    }

    /// Successful calls of one `service:Operation`.
    pub fn ok(&self, operation: &str) -> u64 {
        self.snapshot().get(&format!("{operation}:ok")).copied().unwrap_or(0)
    }
}

/// Where every AWS call is recorded: the in-process counter and the
/// Prometheus metrics, so both always agree.
#[derive(Clone, Debug)]
struct CallRecorder {
    counter: Arc<CallCounter>,
    metrics: Arc<Metrics>,
}

impl CallRecorder {
    fn record<T, E, R>(
        &self,
        operation: &'static str,
        started: Instant,
        result: Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>,
    ) -> Result<T, AwsError>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + HttpStatus,
    {
        let took = started.elapsed();
        match result {
            Ok(v) => {
                self.counter.record(operation, "ok");
                self.metrics.aws_call(operation, "ok", took);
                Ok(v)
            }
            Err(e) => {
                let err = AwsError::from_sdk(operation, e);
                self.counter.record(operation, &format!("{:?}", err.kind));
                self.metrics.aws_call(operation, err.kind.outcome(), took);
                Err(err)
            }
        }
    }
}

/// Error code of a call the leadership fence refused.
pub const NOT_LEADER: &str = "NotLeader";

/// A call the leadership fence refuses fails as [`NOT_LEADER`] without
/// reaching AWS.
fn fence_check(fence: &Fence, operation: &'static str) -> Result<(), AwsError> {
    if fence.is_open() {
        Ok(())
    } else {
        Err(AwsError {
            operation,
            kind: ErrorKind::Cancelled,
            code: NOT_LEADER.into(),
            message: "leadership not confirmed within the Lease duration: no AWS call".into(),
        })
    }
}

/// Clients for one AWS account + region, with its SES scheduler.
#[derive(Debug)]
pub struct Session {
    pub account_id: String,
    pub region: String,
    ses: aws_sdk_sesv2::Client,
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    scheduler: Arc<Scheduler>,
    recorder: CallRecorder,
    destinations: DestinationCache,
    fence: Arc<Fence>,
}

#[cfg(test)]
impl Session {
    /// A session whose SES client is `ses` (an aws-smithy-mocks client, for
    /// the answers the emulator cannot give); the other clients are never
    /// called. Returns the counter its calls are recorded in.
    pub(crate) fn with_ses(ses: aws_sdk_sesv2::Client, per_second: f64) -> (Self, Arc<CallCounter>) {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .build();
        let counter = Arc::new(CallCounter::default());
        // As in production: no SDK retries of SES calls (see `session`).
        let ses = aws_sdk_sesv2::Client::from_conf(
            ses.config()
                .to_builder()
                .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
                .build(),
        );
        let session = Session {
            account_id: "123456789012".into(),
            region: "eu-west-1".into(),
            ses,
            sns: aws_sdk_sns::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
            scheduler: Arc::new(Scheduler::new(per_second, 0.5)),
            recorder: CallRecorder {
                counter: counter.clone(),
                metrics: Arc::new(Metrics::new()),
            },
            destinations: Default::default(),
            fence: Arc::new(Fence::default()),
        };
        (session, counter)
    }
}

/// A throttled SES call is retried (as the same call, at the front of its
/// class) this many times before the error reaches the reconciler.
const THROTTLED_RETRIES: u32 = 30;

impl Session {
    /// Runs one SES control-plane call in the account's scheduler. A
    /// throttled call is retried as itself: a write that SES throttled is
    /// written again, without spending another slot on a read first (which
    /// livelocks when the budget is shared), and the object does not fall
    /// into a per-object back-off that outlasts the throttling.
    async fn ses_call<T, E, R, F, Fut>(
        &self,
        operation: &'static str,
        priority: Priority,
        call: F,
    ) -> Result<T, AwsError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + HttpStatus,
    {
        let mut attempt = 0;
        loop {
            let waited = self
                .scheduler
                .acquire(priority, attempt > 0)
                .await
                .map_err(|e| AwsError {
                    operation,
                    kind: ErrorKind::Cancelled,
                    code: "Cancelled".into(),
                    message: e.to_string(),
                })?;
            self.recorder.metrics.ses_token_waited(waited);
            fence_check(&self.fence, operation)?;
            let started = Instant::now();
            match self.recorder.record(operation, started, call().await) {
                Err(e) if e.kind == ErrorKind::Throttled => {
                    self.scheduler.throttled();
                    attempt += 1;
                    if attempt > THROTTLED_RETRIES {
                        return Err(e);
                    }
                }
                other => {
                    if other.is_ok() {
                        self.scheduler.succeeded();
                    }
                    return other;
                }
            }
        }
    }

    /// The account's SES scheduler (pacing, queue depth, drift share).
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// Runs one call that SES's 1/s limit does not cover (SNS, STS, CloudWatch).
    async fn call<T, E, R, F>(&self, operation: &'static str, call: F) -> Result<T, AwsError>
    where
        F: std::future::Future<Output = Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + HttpStatus,
    {
        fence_check(&self.fence, operation)?;
        let started = Instant::now();
        self.recorder.record(operation, started, call.await)
    }

    /// ARN of a configuration set in this account.
    pub fn configuration_set_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:ses:{}:{}:configuration-set/{name}",
            partition(&self.region),
            self.region,
            self.account_id
        )
    }

    /// ARN of an SQS queue in this account.
    pub fn queue_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:sqs:{}:{}:{name}",
            partition(&self.region),
            self.region,
            self.account_id
        )
    }

    /// ARN pattern of every configuration set in this account (the
    /// stream topic's `AWS:SourceArn` condition).
    pub fn configuration_sets_arn_pattern(&self) -> String {
        self.configuration_set_arn("*")
    }

    /// ARN of an SNS topic in this account.
    pub fn topic_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:sns:{}:{}:{name}",
            partition(&self.region),
            self.region,
            self.account_id
        )
    }
}

pub(crate) fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Settings for talking to AWS.
#[derive(Clone, Debug)]
pub struct AwsSettings {
    /// SES control-plane calls per second per account+region.
    pub ses_calls_per_second: f64,
    /// The share of that rate drift checks may use (0-1).
    pub drift_share: f64,
    /// Endpoint override for every service (tests, LocalStack-like emulators).
    pub endpoint_url: Option<String>,
}

/// Builds and caches a [`Session`] per account settings.
pub struct Registry {
    base: SdkConfig,
    settings: AwsSettings,
    /// One cell per account settings: building a session (AssumeRole, STS)
    /// for one account never waits on another's.
    sessions: Mutex<HashMap<AccountKey, Arc<tokio::sync::OnceCell<Arc<Session>>>>>,
    schedulers: Mutex<HashMap<(String, String), Arc<Scheduler>>>,
    recorder: CallRecorder,
    fence: Arc<Fence>,
}

impl Registry {
    /// Loads the default credential chain (env, IRSA web identity, EKS Pod
    /// Identity, instance profile) once.
    pub async fn new(settings: AwsSettings) -> Self {
        Self::with_metrics(settings, Arc::new(Metrics::new())).await
    }

    /// [`Registry::new`] recording calls into the given metrics.
    pub async fn with_metrics(settings: AwsSettings, metrics: Arc<Metrics>) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_secs(20))
                    .build(),
            );
        if let Some(url) = &settings.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let base = loader.load().await;
        Self {
            base,
            settings,
            sessions: Default::default(),
            schedulers: Default::default(),
            fence: Default::default(),
            recorder: CallRecorder {
                counter: Default::default(),
                metrics,
            },
        }
    }

    /// Cancels every SES call waiting for a slot, and every later one: on
    /// shutdown, reconciles waiting for the budget end at once instead of
    /// holding up the drain.
    pub fn close(&self) {
        for scheduler in self.schedulers.lock().values() {
            scheduler.close();
        }
    }

    /// The leadership fence every session checks before a call.
    pub fn fence(&self) -> &Arc<Fence> {
        &self.fence
    }

    fn fence_interceptor(&self) -> fence::FenceInterceptor {
        fence::FenceInterceptor {
            fence: self.fence.clone(),
        }
    }

    /// This registry with the fence leader election moves (see
    /// [`crate::ops::leader`]).
    pub fn with_fence(mut self, fence: Arc<Fence>) -> Self {
        self.fence = fence;
        self
    }

    /// Pacing of every account+region scheduler built so far.
    pub fn schedulers(&self) -> Vec<((String, String), scheduler::Snapshot)> {
        self.schedulers
            .lock()
            .iter()
            .map(|(k, s)| (k.clone(), s.snapshot()))
            .collect()
    }

    pub fn counter(&self) -> Arc<CallCounter> {
        self.recorder.counter.clone()
    }

    /// The session for an account, built on first use (assuming the role
    /// and resolving the account ID through STS).
    pub async fn session(&self, key: &AccountKey) -> Result<Arc<Session>, AwsError> {
        let cell = {
            let mut sessions = self.sessions.lock();
            sessions.entry(key.clone()).or_default().clone()
        };
        // A failed build leaves the cell empty: the next caller tries again.
        cell.get_or_try_init(|| self.build_session(key)).await.cloned()
    }

    async fn build_session(&self, key: &AccountKey) -> Result<Arc<Session>, AwsError> {
        check_region(&key.region).await?;
        let mut config = self.base.to_builder().region(Region::new(key.region.clone())).build();
        if let Some(role) = &key.role_arn {
            let mut provider = aws_config::sts::AssumeRoleProvider::builder(role)
                .session_name("ses-reputation-operator")
                .region(Region::new(key.region.clone()))
                .configure(&config);
            if let Some(id) = &key.external_id {
                provider = provider.external_id(id);
            }
            let provider = provider.build().await;
            config = config
                .to_builder()
                .credentials_provider(aws_sdk_sts::config::SharedCredentialsProvider::new(provider))
                .build();
        }
        let sts = aws_sdk_sts::Client::new(&config);
        let started = Instant::now();
        let identity =
            self.recorder
                .record("sts:GetCallerIdentity", started, sts.get_caller_identity().send().await)?;
        let account_id = identity.account().unwrap_or_default().to_string();
        let scheduler = {
            let mut schedulers = self.schedulers.lock();
            schedulers
                .entry((account_id.clone(), key.region.clone()))
                .or_insert_with(|| {
                    Arc::new(Scheduler::new(
                        self.settings.ses_calls_per_second,
                        self.settings.drift_share,
                    ))
                })
                .clone()
        };
        let session = Arc::new(Session {
            account_id,
            region: key.region.clone(),
            // SES retries go back through the token bucket (per-object back-off),
            // never straight from the SDK: that would add load exactly when SES
            // is throttling.
            ses: aws_sdk_sesv2::Client::from_conf(
                aws_sdk_sesv2::config::Builder::from(&config)
                    .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
                    .interceptor(self.fence_interceptor())
                    .build(),
            ),
            sns: aws_sdk_sns::Client::from_conf(
                aws_sdk_sns::config::Builder::from(&config)
                    .interceptor(self.fence_interceptor())
                    .build(),
            ),
            sqs: aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::config::Builder::from(&config)
                    .interceptor(self.fence_interceptor())
                    .build(),
            ),
            cloudwatch: aws_sdk_cloudwatch::Client::from_conf(
                aws_sdk_cloudwatch::config::Builder::from(&config)
                    .interceptor(self.fence_interceptor())
                    .build(),
            ),
            scheduler,
            recorder: self.recorder.clone(),
            destinations: Default::default(),
            fence: self.fence.clone(),
        });
        Ok(session)
    }
}

/// Regions where SES v2 runs (AWS's SES endpoints page, 2026). The SDK
/// builds an endpoint for any region-shaped name and retries one that never
/// resolves forever, so a typo like `us-east-99` would look like a slow
/// network instead of the dead end it is.
const SES_REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "ca-west-1",
    "sa-east-1",
    "mx-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "af-south-1",
    "il-central-1",
    "me-south-1",
    "me-central-1",
    "ap-south-1",
    "ap-south-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-5",
    "us-gov-west-1",
    "us-gov-east-1",
    "cn-north-1",
    "cn-northwest-1",
];

/// Refuses a region that is neither a known SES region nor one whose SES
/// endpoint resolves (a region AWS opened after this list was written).
/// Refused regions are looked at again each drift period, like every
/// dead end.
async fn check_region(region: &str) -> Result<(), AwsError> {
    if SES_REGIONS.contains(&region) {
        return Ok(());
    }
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    let host = format!("email.{region}.{domain}");
    let lookup = tokio::time::timeout(Duration::from_secs(5), tokio::net::lookup_host((host.as_str(), 443))).await;
    let resolves = lookup
        .ok()
        .and_then(Result::ok)
        .is_some_and(|mut addrs| addrs.next().is_some());
    if resolves {
        return Ok(());
    }
    Err(AwsError {
        operation: "SES endpoint lookup",
        kind: ErrorKind::BadRequest,
        code: "UnknownRegion".into(),
        message: format!(
            "{region} is not a region where SES runs: the SES endpoint {host} does not resolve; check spec.region of the SesAccount"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_short_line() {
        assert_eq!(one_line("  Access  denied\nheaders: {...}\n<html>"), "Access denied");
        let long = "x".repeat(2000);
        let cut = one_line(&long);
        assert_eq!(cut.chars().count(), MAX_MESSAGE);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn access_denied_is_terminal_throttling_is_not() {
        let err = |code: &str| AwsError {
            operation: "sesv2:GetAccount",
            kind: classify(code, Some(400)),
            code: code.into(),
            message: String::new(),
        };
        assert!(err("AccessDeniedException").is_terminal());
        assert!(err("BadRequestException").is_terminal());
        assert!(!err("TooManyRequestsException").is_terminal());
        assert!(!err("ConcurrentModificationException").is_terminal());
        // A missing set is retried (or recreated); a missing IP pool the
        // spec names is not something a retry fixes.
        let not_found = |operation: &'static str, message: &str| AwsError {
            operation,
            kind: ErrorKind::NotFound,
            code: "NotFoundException".into(),
            message: message.into(),
        };
        assert!(not_found("sesv2:CreateConfigurationSet", "Dedicated IP pool p does not exist.").is_terminal());
        assert!(
            not_found(
                "sesv2:PutConfigurationSetDeliveryOptions",
                "Dedicated IP pool p does not exist."
            )
            .is_terminal()
        );
        assert!(
            !not_found(
                "sesv2:PutConfigurationSetDeliveryOptions",
                "Configuration set x does not exist."
            )
            .is_terminal()
        );
        assert!(!not_found("sesv2:GetConfigurationSet", "").is_terminal());
    }

    #[test]
    fn every_error_kind_has_a_bounded_outcome() {
        for (kind, outcome) in [
            (ErrorKind::Throttled, "throttled"),
            (ErrorKind::BadRequest, "client"),
            (ErrorKind::NotFound, "client"),
            (ErrorKind::AlreadyExists, "client"),
            (ErrorKind::LimitExceeded, "client"),
            (ErrorKind::AccessDenied, "client"),
            (ErrorKind::ConcurrentModification, "client"),
            (ErrorKind::Other, "client"),
            (ErrorKind::Server, "server"),
            (ErrorKind::Transport, "transport"),
            (ErrorKind::Cancelled, "cancelled"),
        ] {
            assert_eq!(kind.outcome(), outcome, "{kind:?}");
        }
    }
}
