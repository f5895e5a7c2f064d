//! The AWS emulator itself, through the same SDK crates the operator uses:
//! every SES v2 option group round-trips, typed errors surface, SES events
//! flow SES -> SNS -> SQS in AWS's documented JSON, throttling shows up as
//! TooManyRequestsException after the SDK's retries, and CloudWatch answers
//! the Rust SDK's CBOR protocol.

use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricDatum, MetricStat};
use aws_sdk_sesv2::operation::create_configuration_set::CreateConfigurationSetError;
use aws_sdk_sesv2::operation::create_configuration_set_event_destination::CreateConfigurationSetEventDestinationError;
use aws_sdk_sesv2::operation::get_account::GetAccountError;
use aws_sdk_sesv2::operation::get_configuration_set::GetConfigurationSetError;
use aws_sdk_sesv2::types::{
    Body, Content, DashboardOptions, DeliveryOptions, Destination, EmailContent, EventDestinationDefinition, EventType,
    FeatureStatus, HttpsPolicy, Message, ReputationOptions, SendingOptions, SnsDestination, SuppressionListReason,
    SuppressionOptions, Tag, TlsPolicy, TrackingOptions, VdmOptions,
};
use aws_smithy_types::DateTime;
use serde_json::Value;

use crate::support::emulator::{self, Emulator};
use crate::support::unique;

async fn ses() -> aws_sdk_sesv2::Client {
    aws_sdk_sesv2::Client::new(&emulator::sdk_config().await)
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build().expect("tag")
}

fn tracking(domain: &str, policy: HttpsPolicy) -> TrackingOptions {
    TrackingOptions::builder()
        .custom_redirect_domain(domain)
        .https_policy(policy)
        .build()
        .expect("tracking")
}

fn vdm(engagement: FeatureStatus, optimized: FeatureStatus) -> VdmOptions {
    VdmOptions::builder()
        .dashboard_options(DashboardOptions::builder().engagement_metrics(engagement).build())
        .guardian_options(
            aws_sdk_sesv2::types::GuardianOptions::builder()
                .optimized_shared_delivery(optimized)
                .build(),
        )
        .build()
}

fn sorted_tags(tags: &[Tag]) -> Vec<(String, String)> {
    let mut out: Vec<_> = tags
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn configuration_set_round_trips_every_option_group() {
    let _faults_off = emulator::no_faults().await;
    let ses = ses().await;
    let sns = aws_sdk_sns::Client::new(&emulator::sdk_config().await);
    let name = unique("emu-cs");
    let pool = unique("emu-pool");
    ses.create_dedicated_ip_pool()
        .pool_name(&pool)
        .send()
        .await
        .expect("create pool");

    let delivery = DeliveryOptions::builder()
        .tls_policy(TlsPolicy::Require)
        .sending_pool_name(&pool)
        .max_delivery_seconds(600)
        .build();
    let suppression = SuppressionOptions::builder()
        .suppressed_reasons(SuppressionListReason::Bounce)
        .suppressed_reasons(SuppressionListReason::Complaint)
        .build();
    ses.create_configuration_set()
        .configuration_set_name(&name)
        .sending_options(SendingOptions::builder().sending_enabled(true).build())
        .reputation_options(ReputationOptions::builder().reputation_metrics_enabled(true).build())
        .suppression_options(suppression.clone())
        .tracking_options(tracking("track.example.com", HttpsPolicy::Require))
        .delivery_options(delivery.clone())
        .vdm_options(vdm(FeatureStatus::Enabled, FeatureStatus::Disabled))
        .tags(tag("team", "mail"))
        .tags(tag("env", "test"))
        .send()
        .await
        .expect("create configuration set");

    let got = ses
        .get_configuration_set()
        .configuration_set_name(&name)
        .send()
        .await
        .expect("get");
    assert_eq!(got.configuration_set_name(), Some(name.as_str()));
    assert_eq!(
        got.sending_options(),
        Some(&SendingOptions::builder().sending_enabled(true).build())
    );
    assert_eq!(
        got.reputation_options(),
        Some(&ReputationOptions::builder().reputation_metrics_enabled(true).build())
    );
    assert_eq!(got.suppression_options(), Some(&suppression));
    assert_eq!(
        got.tracking_options(),
        Some(&tracking("track.example.com", HttpsPolicy::Require))
    );
    assert_eq!(got.delivery_options(), Some(&delivery));
    assert_eq!(
        got.vdm_options(),
        Some(&vdm(FeatureStatus::Enabled, FeatureStatus::Disabled))
    );
    assert_eq!(
        sorted_tags(got.tags()),
        vec![("env".into(), "test".into()), ("team".into(), "mail".into())]
    );

    // Each group through its own Put call. The SDK leaves `false` out of the
    // body; the emulator, like AWS, reads an absent boolean as false.
    let delivery = DeliveryOptions::builder()
        .tls_policy(TlsPolicy::Optional)
        .max_delivery_seconds(50_400)
        .build();
    ses.put_configuration_set_sending_options()
        .configuration_set_name(&name)
        .sending_enabled(false)
        .send()
        .await
        .expect("sending");
    ses.put_configuration_set_reputation_options()
        .configuration_set_name(&name)
        .reputation_metrics_enabled(false)
        .send()
        .await
        .expect("reputation");
    ses.put_configuration_set_suppression_options()
        .configuration_set_name(&name)
        .suppressed_reasons(SuppressionListReason::Complaint)
        .send()
        .await
        .expect("suppression");
    ses.put_configuration_set_tracking_options()
        .configuration_set_name(&name)
        .custom_redirect_domain("t.example.org")
        .https_policy(HttpsPolicy::RequireOpenOnly)
        .send()
        .await
        .expect("tracking");
    ses.put_configuration_set_delivery_options()
        .configuration_set_name(&name)
        .tls_policy(TlsPolicy::Optional)
        .max_delivery_seconds(50_400)
        .send()
        .await
        .expect("delivery");
    ses.put_configuration_set_vdm_options()
        .configuration_set_name(&name)
        .vdm_options(vdm(FeatureStatus::Disabled, FeatureStatus::Enabled))
        .send()
        .await
        .expect("vdm");
    let arn = format!("arn:aws:ses:us-east-1:123456789012:configuration-set/{name}");
    ses.tag_resource()
        .resource_arn(&arn)
        .tags(tag("owner", "platform"))
        .send()
        .await
        .expect("tag");
    ses.untag_resource()
        .resource_arn(&arn)
        .tag_keys("env")
        .send()
        .await
        .expect("untag");

    let got = ses
        .get_configuration_set()
        .configuration_set_name(&name)
        .send()
        .await
        .expect("get after puts");
    assert_eq!(
        got.sending_options(),
        Some(&SendingOptions::builder().sending_enabled(false).build())
    );
    assert_eq!(
        got.reputation_options(),
        Some(&ReputationOptions::builder().reputation_metrics_enabled(false).build())
    );
    assert_eq!(
        got.suppression_options(),
        Some(
            &SuppressionOptions::builder()
                .suppressed_reasons(SuppressionListReason::Complaint)
                .build()
        )
    );
    assert_eq!(
        got.tracking_options(),
        Some(&tracking("t.example.org", HttpsPolicy::RequireOpenOnly))
    );
    assert_eq!(got.delivery_options(), Some(&delivery));
    assert_eq!(
        got.vdm_options(),
        Some(&vdm(FeatureStatus::Disabled, FeatureStatus::Enabled))
    );
    assert_eq!(
        sorted_tags(got.tags()),
        vec![("owner".into(), "platform".into()), ("team".into(), "mail".into())]
    );

    // An SNS event destination, and the typed errors.
    let topic = sns
        .create_topic()
        .name(unique("emu-topic"))
        .send()
        .await
        .expect("topic")
        .topic_arn
        .expect("topic arn");
    let destination = EventDestinationDefinition::builder()
        .enabled(true)
        .matching_event_types(EventType::Bounce)
        .matching_event_types(EventType::Complaint)
        .sns_destination(
            SnsDestination::builder()
                .topic_arn(&topic)
                .build()
                .expect("sns destination"),
        )
        .build();
    let create_destination = || {
        ses.create_configuration_set_event_destination()
            .configuration_set_name(&name)
            .event_destination_name("bounces")
            .event_destination(destination.clone())
            .send()
    };
    create_destination().await.expect("create event destination");
    let dests = ses
        .get_configuration_set_event_destinations()
        .configuration_set_name(&name)
        .send()
        .await
        .expect("list");
    let [dest] = dests.event_destinations() else {
        panic!("one destination: {dests:?}")
    };
    assert_eq!(dest.name(), "bounces");
    assert!(dest.enabled());
    assert_eq!(dest.matching_event_types(), &[EventType::Bounce, EventType::Complaint]);
    assert_eq!(dest.sns_destination().map(|s| s.topic_arn()), Some(topic.as_str()));
    let err = create_destination().await.expect_err("duplicate destination");
    assert!(matches!(
        err.into_service_error(),
        CreateConfigurationSetEventDestinationError::AlreadyExistsException(_)
    ));
    let err = ses
        .create_configuration_set()
        .configuration_set_name(&name)
        .send()
        .await
        .expect_err("duplicate set");
    assert!(matches!(
        err.into_service_error(),
        CreateConfigurationSetError::AlreadyExistsException(_)
    ));

    ses.delete_configuration_set_event_destination()
        .configuration_set_name(&name)
        .event_destination_name("bounces")
        .send()
        .await
        .expect("delete destination");
    ses.delete_configuration_set()
        .configuration_set_name(&name)
        .send()
        .await
        .expect("delete set");
    let err = ses
        .get_configuration_set()
        .configuration_set_name(&name)
        .send()
        .await
        .expect_err("set is gone");
    assert!(matches!(
        err.into_service_error(),
        GetConfigurationSetError::NotFoundException(_)
    ));
}

#[tokio::test]
async fn bounce_to_the_simulator_reaches_sqs_as_documented() {
    let _faults_off = emulator::no_faults().await;
    let config = emulator::sdk_config().await;
    let (ses, sns, sqs) = (
        ses().await,
        aws_sdk_sns::Client::new(&config),
        aws_sdk_sqs::Client::new(&config),
    );
    let name = unique("emu-bounce");
    let topic = sns
        .create_topic()
        .name(unique("emu-events"))
        .send()
        .await
        .expect("topic")
        .topic_arn
        .expect("topic arn");
    let queue = sqs
        .create_queue()
        .queue_name(unique("emu-q"))
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("queue url");
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned())
        .expect("queue arn");
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .expect("subscribe");
    // SES sends only from verified identities (AlreadyExists when an
    // earlier test in this region made it).
    if let Err(e) = ses.create_email_identity().email_identity("example.com").send().await {
        assert!(
            e.as_service_error().is_some_and(|e| e.is_already_exists_exception()),
            "identity: {e:?}"
        );
    }
    ses.create_configuration_set()
        .configuration_set_name(&name)
        .send()
        .await
        .expect("set");
    ses.create_configuration_set_event_destination()
        .configuration_set_name(&name)
        .event_destination_name("sns")
        .event_destination(
            EventDestinationDefinition::builder()
                .enabled(true)
                .matching_event_types(EventType::Bounce)
                .sns_destination(
                    SnsDestination::builder()
                        .topic_arn(&topic)
                        .build()
                        .expect("sns destination"),
                )
                .build(),
        )
        .send()
        .await
        .expect("destination");

    // SNS takes SES's events only where the topic policy lets it (the
    // emulator enforces it as SNS does): the policy the operator writes.
    let set_arn = format!("arn:aws:ses:us-east-1:123456789012:configuration-set/{name}");
    emulator::allow_ses("us-east-1", &topic, &set_arn).await;

    let recipient = "bounce@simulator.amazonses.com";
    let text = |s: &str| Content::builder().data(s).build().expect("content");
    let sent = ses
        .send_email()
        .from_email_address("sender@example.com")
        .destination(Destination::builder().to_addresses(recipient).build())
        .content(
            EmailContent::builder()
                .simple(
                    Message::builder()
                        .subject(text("hello"))
                        .body(Body::builder().text(text("body")).build())
                        .build(),
                )
                .build(),
        )
        .configuration_set_name(&name)
        .send()
        .await
        .expect("send");

    let mut events: Vec<Value> = Vec::new();
    for _ in 0..5 {
        let out = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        events.extend(
            out.messages()
                .iter()
                .map(|m| serde_json::from_str(m.body().unwrap_or_default()).expect("event JSON")),
        );
        if !events.is_empty() {
            break;
        }
    }
    let [event] = events.as_slice() else {
        panic!("one Bounce event: {events:?}")
    };
    assert_eq!(event["eventType"], "Bounce");
    assert_eq!(event["mail"]["messageId"], sent.message_id().unwrap_or_default());
    assert_eq!(event["mail"]["source"], "sender@example.com");
    assert_eq!(event["mail"]["sendingAccountId"], "123456789012");
    assert_eq!(event["mail"]["destination"][0], recipient);
    assert_eq!(event["mail"]["tags"]["ses:configuration-set"][0], name.as_str());
    assert_eq!(event["mail"]["commonHeaders"]["subject"], "hello");
    let bounce = &event["bounce"];
    assert_eq!(bounce["bounceType"], "Permanent");
    assert_eq!(bounce["bounceSubType"], "General");
    assert_eq!(bounce["bouncedRecipients"][0]["emailAddress"], recipient);
    assert_eq!(bounce["bouncedRecipients"][0]["status"], "5.1.1");
    assert_eq!(bounce["bouncedRecipients"][0]["action"], "failed");
    assert!(bounce["timestamp"].is_string() && bounce["feedbackId"].is_string() && bounce["reportingMTA"].is_string());
}

/// Sends five SES control-plane calls at once to `region`; returns how many
/// ended in TooManyRequestsException after the SDK's three attempts.
async fn burst(region: &str) -> usize {
    let ses = aws_sdk_sesv2::Client::new(&emulator::sdk_config_in(region).await);
    let results = futures::future::join_all((0..5).map(|_| ses.get_account().send())).await;
    results
        .into_iter()
        .filter(|r| match r {
            Ok(_) => false,
            Err(e) => match e.as_service_error() {
                Some(GetAccountError::TooManyRequestsException(_)) => true,
                _ => panic!("unexpected error: {e:?}"),
            },
        })
        .count()
}

#[tokio::test]
async fn throttling_surfaces_as_too_many_requests_after_retries() {
    // A region no other test uses: the faults stay out of their way.
    const REGION: &str = "ca-central-1";
    let mut faults = emulator::fault_lock().await;
    faults.set_faults_in(REGION, Some(1.0), 0.0).await;
    let throttled = burst(REGION).await;
    assert!(
        throttled >= 1,
        "5 calls at 1 rps with 3 attempts each must not all pass"
    );
    faults.set_faults_in(REGION, None, 0.0).await;
    assert_eq!(burst(REGION).await, 0);
}

#[tokio::test]
async fn account_state_is_settable_per_region() {
    const REGION: &str = "sa-east-1";
    let _faults_off = emulator::no_faults().await;
    let ses = aws_sdk_sesv2::Client::new(&emulator::sdk_config_in(REGION).await);
    Emulator.set_account(REGION, "PROBATION", false).await;
    let account = ses.get_account().send().await.expect("get account");
    assert_eq!(account.enforcement_status(), Some("PROBATION"));
    assert!(!account.sending_enabled());
    Emulator.set_account(REGION, "HEALTHY", true).await;
    let account = ses.get_account().send().await.expect("get account");
    assert_eq!(account.enforcement_status(), Some("HEALTHY"));
    assert!(account.sending_enabled());
    assert!(Emulator.calls().await.get("sesv2:GetAccount").copied().unwrap_or(0) >= 2);
}

#[tokio::test]
async fn cloudwatch_reputation_metric_round_trips() {
    let _faults_off = emulator::no_faults().await;
    let cw = aws_sdk_cloudwatch::Client::new(&emulator::sdk_config().await);
    let name = unique("emu-cw");
    let dimension = Dimension::builder().name("ses:configuration-set").value(&name).build();
    let now = SystemTime::now();
    cw.put_metric_data()
        .namespace("AWS/SES")
        .metric_data(
            MetricDatum::builder()
                .metric_name("Reputation.BounceRate")
                .dimensions(dimension.clone())
                .value(0.03)
                .timestamp(DateTime::from(now))
                .build(),
        )
        .send()
        .await
        .expect("put metric data");
    let out = cw
        .get_metric_data()
        .start_time(DateTime::from(now - Duration::from_secs(300)))
        .end_time(DateTime::from(now + Duration::from_secs(60)))
        .metric_data_queries(
            MetricDataQuery::builder()
                .id("bounce")
                .metric_stat(
                    MetricStat::builder()
                        .metric(
                            Metric::builder()
                                .namespace("AWS/SES")
                                .metric_name("Reputation.BounceRate")
                                .dimensions(dimension)
                                .build(),
                        )
                        .period(60)
                        .stat("Average")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("get metric data");
    let [result] = out.metric_data_results() else {
        panic!("one result: {out:?}")
    };
    assert_eq!(result.id(), Some("bounce"));
    assert_eq!(result.values(), &[0.03]);
    assert_eq!(result.timestamps().len(), 1);
}
