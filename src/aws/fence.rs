//! The leadership fence inside the SDK: checked again right before each
//! attempt goes on the wire. The check in `Session` before a call does
//! not cover what the SDK does on its own after it (SNS, SQS and
//! CloudWatch retries, a request resumed after the process was frozen
//! between the check and the send), and each of those could reach AWS
//! after the Lease was lost.

use std::sync::Arc;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::ops::leader::Fence;

/// Fails an attempt while the fence is closed; nothing is sent.
#[derive(Debug)]
pub struct FenceInterceptor {
    pub fence: Arc<Fence>,
}

/// The error an attempt stopped by the fence fails with.
#[derive(Debug, thiserror::Error)]
#[error("leadership not confirmed within the Lease duration: the SDK's attempt was not sent")]
pub struct FenceClosed;

impl Intercept for FenceInterceptor {
    fn name(&self) -> &'static str {
        "LeadershipFence"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.fence.is_open() {
            Ok(())
        } else {
            Err(Box::new(FenceClosed))
        }
    }
}

/// Whether `err` (or what caused it) is [`FenceClosed`].
pub fn stopped_by_fence(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.is::<FenceClosed>() {
            return true;
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An SQS client (standard SDK retries) pointed at a loopback port
    /// that records whether anything connected.
    #[tokio::test]
    async fn an_attempt_after_the_fence_closed_is_not_sent() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = tokio::spawn(async move {
            tokio::time::timeout(std::time::Duration::from_secs(2), listener.accept())
                .await
                .is_ok()
        });
        let closed = Arc::new(Fence::default());
        closed.extend_to(tokio::time::Instant::now());
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .endpoint_url(format!("http://{addr}"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::for_tests())
            .interceptor(FenceInterceptor { fence: closed })
            .build();
        let err = aws_sdk_sqs::Client::from_conf(config)
            .receive_message()
            .queue_url(format!("http://{addr}/123456789012/q"))
            .send()
            .await
            .expect_err("the fence is closed");
        let err = crate::aws::AwsError::from_sdk("sqs:ReceiveMessage", err);
        assert_eq!(err.code, crate::aws::NOT_LEADER, "{err}");
        assert_eq!(err.kind, crate::aws::ErrorKind::Cancelled);
        assert!(!accepted.await.expect("accept task"), "a request reached the endpoint");
    }
}
