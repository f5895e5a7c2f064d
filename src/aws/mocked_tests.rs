//! The SES adapter against answers the emulator cannot give on demand (an
//! account at its set limit, throttling of exactly one call, a set shown
//! without its option blocks), with aws-smithy-mocks clients: what the
//! reconcilers get back decides a Stalled condition or a retry.

use std::collections::BTreeMap;

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::ErrorMetadata;
use aws_sdk_sesv2::operation::create_configuration_set::{CreateConfigurationSetError, CreateConfigurationSetOutput};
use aws_sdk_sesv2::operation::get_configuration_set::{GetConfigurationSetError, GetConfigurationSetOutput};
use aws_sdk_sesv2::operation::put_configuration_set_sending_options::{
    PutConfigurationSetSendingOptionsError, PutConfigurationSetSendingOptionsOutput,
};
use aws_sdk_sesv2::types::error::{LimitExceededException, NotFoundException, TooManyRequestsException};
use aws_smithy_mocks::{RuleMode, mock, mock_client};

use super::scheduler::Priority;
use super::{ErrorKind, Session};
use crate::domain::diff::configuration_set::{SetChange, SetOptions};

fn meta(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

fn options() -> SetOptions {
    SetOptions {
        sending_enabled: true,
        reputation_metrics_enabled: true,
        suppression: None,
        validation: None,
        tracking: None,
        delivery: None,
        vdm: None,
    }
}

#[tokio::test]
async fn the_set_limit_is_a_dead_end_that_carries_aws_message() {
    let limit = "Maximum number of configuration sets (10000) exceeded";
    let create = mock!(Client::create_configuration_set).then_error(move || {
        CreateConfigurationSetError::LimitExceededException(
            LimitExceededException::builder()
                .message(limit)
                .meta(meta("LimitExceededException", limit))
                .build(),
        )
    });
    let (session, counter) = Session::with_ses(mock_client!(aws_sdk_sesv2, [&create]), 100.0);
    let err = session
        .create_configuration_set("orders", &options(), &BTreeMap::new(), Priority::Spec)
        .await
        .expect_err("SES refuses the 10,001st set");
    assert_eq!(err.kind, ErrorKind::LimitExceeded);
    // Terminal: the object goes Stalled with AWS's words, not into back-off.
    assert!(err.is_terminal());
    assert_eq!(err.reason(), "LimitExceeded");
    assert!(err.to_string().contains(limit), "{err}");
    assert_eq!(create.num_calls(), 1, "a refused create is not retried");
    assert_eq!(
        counter.snapshot().get("sesv2:CreateConfigurationSet:LimitExceeded"),
        Some(&1)
    );
}

#[tokio::test(start_paused = true)]
async fn a_throttled_write_is_written_again_without_a_read_in_between() {
    let sending = mock!(Client::put_configuration_set_sending_options)
        .sequence()
        .error(|| {
            PutConfigurationSetSendingOptionsError::TooManyRequestsException(
                TooManyRequestsException::builder()
                    .meta(meta("TooManyRequestsException", "Too many requests"))
                    .build(),
            )
        })
        .times(2)
        .output(|| PutConfigurationSetSendingOptionsOutput::builder().build())
        .build();
    let read = mock!(Client::get_configuration_set).then_output(|| GetConfigurationSetOutput::builder().build());
    let client = mock_client!(aws_sdk_sesv2, RuleMode::MatchAny, [&sending, &read]);
    let (session, counter) = Session::with_ses(client, 1.0);
    session
        .apply_set_change("orders", &SetChange::Sending(false), Priority::Pause)
        .await
        .expect("the pause lands once SES takes it");
    assert_eq!(sending.num_calls(), 3);
    assert_eq!(read.num_calls(), 0, "no read spent between the retries");
    let calls = counter.snapshot();
    assert_eq!(calls.get("sesv2:PutConfigurationSetSendingOptions:Throttled"), Some(&2));
    assert_eq!(calls.get("sesv2:PutConfigurationSetSendingOptions:ok"), Some(&1));
}

#[tokio::test]
async fn a_set_shown_without_option_blocks_reads_as_ses_defaults() {
    let tags = aws_sdk_sesv2::types::Tag::builder()
        .key("ses.reputation.io/owner")
        .value("prod/team-a/orders")
        .build()
        .expect("key and value set");
    let get = mock!(Client::get_configuration_set).then_output(move || {
        GetConfigurationSetOutput::builder()
            .configuration_set_name("orders")
            .tags(tags.clone())
            .build()
    });
    let (session, _) = Session::with_ses(mock_client!(aws_sdk_sesv2, [&get]), 100.0);
    let observed = session
        .get_configuration_set("orders", Priority::Spec)
        .await
        .expect("read")
        .expect("the set exists");
    // No SendingOptions: SES sends. No ReputationOptions: metrics off.
    assert!(observed.options.sending_enabled);
    assert!(!observed.options.reputation_metrics_enabled);
    assert_eq!(observed.options.suppression, None);
    assert_eq!(
        observed.tags.get("ses.reputation.io/owner").map(String::as_str),
        Some("prod/team-a/orders")
    );
}

#[tokio::test]
async fn a_set_that_is_gone_reads_as_absent_and_a_create_that_lands_is_recorded() {
    let get = mock!(Client::get_configuration_set).then_error(|| {
        GetConfigurationSetError::NotFoundException(
            NotFoundException::builder()
                .meta(meta("NotFoundException", "Configuration set <orders> does not exist."))
                .build(),
        )
    });
    let create =
        mock!(Client::create_configuration_set).then_output(|| CreateConfigurationSetOutput::builder().build());
    let client = mock_client!(aws_sdk_sesv2, RuleMode::MatchAny, [&get, &create]);
    let (session, counter) = Session::with_ses(client, 100.0);
    let observed = session.get_configuration_set("orders", Priority::Spec).await;
    assert!(matches!(observed, Ok(None)), "{observed:?}");
    session
        .create_configuration_set("orders", &options(), &BTreeMap::new(), Priority::Spec)
        .await
        .expect("created");
    let calls = counter.snapshot();
    assert_eq!(calls.get("sesv2:GetConfigurationSet:NotFound"), Some(&1));
    assert_eq!(calls.get("sesv2:CreateConfigurationSet:ok"), Some(&1));
}
