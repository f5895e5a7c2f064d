//! Bad specs are refused by the apiserver at admission (OpenAPI schema and
//! CEL rules from the generated CRDs), with a message naming the field.

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};

use crate::support;

fn resource(kind: &str) -> ApiResource {
    let plural = match kind {
        "ConfigurationSet" => "configurationsets",
        "EventDestination" => "eventdestinations",
        "ReputationPolicy" => "reputationpolicies",
        "EmailIdentity" => "emailidentities",
        _ => "sesaccounts",
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("ses.reputation.io", "v1alpha1", kind), plural)
}

fn object(kind: &str, name: &str, spec: serde_json::Value) -> DynamicObject {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "ses.reputation.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("dynamic object")
}

async fn rejection(api: &Api<DynamicObject>, obj: &DynamicObject) -> String {
    match api.create(&PostParams::default(), obj).await {
        Ok(_) => panic!(
            "{} was accepted: {}",
            obj.metadata.name.clone().unwrap_or_default(),
            serde_json::to_string(obj).unwrap_or_default()
        ),
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "expected 422 Invalid, got {status:?}");
            status.message
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[tokio::test]
async fn bad_specs_are_rejected_with_a_message_naming_the_field() {
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "admission", &[]).await;
    let sns = |extra: serde_json::Value| {
        let mut spec = serde_json::json!({"configurationSetRef": {"name": "cs"}});
        for (k, v) in extra.as_object().expect("object") {
            spec[k] = v.clone();
        }
        spec
    };
    let topic_with = |sub: serde_json::Value| sns(serde_json::json!({"sns": {"topic": {"subscriptions": [sub]}}}));
    let fifty_tags: serde_json::Map<String, serde_json::Value> =
        (0..50).map(|i| (format!("k{i}"), "v".into())).collect();

    // (kind, metadata.name, spec, substrings the message must contain)
    let cases: Vec<(&str, &str, serde_json::Value, Vec<&str>)> = vec![
        (
            "ConfigurationSet",
            "bad-account-ref",
            serde_json::json!({"accountRef": "{\"a\": [1]}"}),
            vec!["spec.accountRef", "should match"],
        ),
        (
            "EmailIdentity",
            "bad-account-ref",
            serde_json::json!({"identity": "example.org", "accountRef": "Prod_Account"}),
            vec!["spec.accountRef", "should match"],
        ),
        (
            "ConfigurationSet",
            "bad-tag-key",
            serde_json::json!({"tags": {"team*": "orders"}}),
            vec!["spec.tags", "tag keys may contain only letters"],
        ),
        (
            "ConfigurationSet",
            "bad-tag-value",
            serde_json::json!({"tags": {"team": "<orders>"}}),
            vec!["spec.tags.team", "should match"],
        ),
        (
            "ConfigurationSet",
            "long-tag-value",
            serde_json::json!({"tags": {"team": "x".repeat(257)}}),
            vec!["spec.tags.team", "256"],
        ),
        (
            "ConfigurationSet",
            "bad-name",
            serde_json::json!({"name": "has space"}),
            vec!["spec.name", "should match"],
        ),
        (
            "ConfigurationSet",
            "long-name",
            serde_json::json!({"name": "x".repeat(65)}),
            vec!["spec.name", "64"],
        ),
        (
            "ConfigurationSet",
            "dotted.name",
            serde_json::json!({}),
            vec!["metadata.name is not a valid SES configuration set name"],
        ),
        (
            "ConfigurationSet",
            "short-delivery",
            serde_json::json!({"delivery": {"maxDeliverySeconds": 100}}),
            vec!["spec.delivery.maxDeliverySeconds", "300"],
        ),
        (
            "ConfigurationSet",
            "long-delivery",
            serde_json::json!({"delivery": {"maxDeliverySeconds": 60000}}),
            vec!["spec.delivery.maxDeliverySeconds", "50400"],
        ),
        (
            "ConfigurationSet",
            "many-tags",
            serde_json::json!({"tags": fifty_tags}),
            vec!["spec.tags", "at most 49 items"],
        ),
        (
            "ConfigurationSet",
            "aws-tag",
            serde_json::json!({"tags": {"aws:owner": "x"}}),
            vec!["spec.tags", "must not start with 'aws:'"],
        ),
        (
            "ConfigurationSet",
            "bad-reason",
            serde_json::json!({"suppression": {"reasons": ["SPAM"]}}),
            vec!["spec.suppression.reasons[0]", "Unsupported value", "BOUNCE"],
        ),
        (
            "ConfigurationSet",
            "bad-https",
            serde_json::json!({"tracking": {"customRedirectDomain": "t.example.com", "httpsPolicy": "SOMETIMES"}}),
            vec!["spec.tracking.httpsPolicy", "Unsupported value"],
        ),
        (
            "ConfigurationSet",
            "bad-domain",
            serde_json::json!({"tracking": {"customRedirectDomain": "not a domain"}}),
            vec!["spec.tracking.customRedirectDomain"],
        ),
        (
            "ConfigurationSet",
            "bad-policy",
            serde_json::json!({"deletionPolicy": "Orphan"}),
            vec!["spec.deletionPolicy", "Unsupported value"],
        ),
        (
            "EventDestination",
            "no-target",
            sns(serde_json::json!({})),
            vec!["exactly one target must be set"],
        ),
        (
            "EventDestination",
            "two-targets",
            sns(
                serde_json::json!({"sns": {"topicArn": "arn:aws:sns:us-east-1:123456789012:t"}, "eventBridge": {"eventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/default"}}),
            ),
            vec!["exactly one target must be set"],
        ),
        (
            "EventDestination",
            "arn-and-topic",
            sns(serde_json::json!({"sns": {"topicArn": "arn:aws:sns:us-east-1:123456789012:t", "topic": {}}})),
            vec!["spec.sns", "exactly one of topicArn"],
        ),
        (
            "EventDestination",
            "fifo",
            sns(serde_json::json!({"sns": {"topicArn": "arn:aws:sns:us-east-1:123456789012:t.fifo"}})),
            vec!["spec.sns.topicArn", "FIFO"],
        ),
        (
            "EventDestination",
            "bad-type",
            sns(
                serde_json::json!({"eventTypes": ["BOUNCE", "SPAM"], "sns": {"topicArn": "arn:aws:sns:us-east-1:123456789012:t"}}),
            ),
            vec!["spec.eventTypes[1]", "Unsupported value"],
        ),
        (
            "EventDestination",
            "no-types",
            sns(serde_json::json!({"eventTypes": [], "sns": {"topicArn": "arn:aws:sns:us-east-1:123456789012:t"}})),
            vec!["spec.eventTypes", "at least 1"],
        ),
        (
            "EventDestination",
            "repeated-types",
            sns(
                serde_json::json!({"eventTypes": ["BOUNCE", "BOUNCE"], "sns": {"topicArn": "arn:aws:sns:us-east-1:123456789012:t"}}),
            ),
            vec!["spec.eventTypes", "must not repeat"],
        ),
        (
            "EventDestination",
            "bad-email",
            topic_with(serde_json::json!({"protocol": "email", "endpoint": "ops"})),
            vec![
                "spec.sns.topic.subscriptions[0]",
                "email subscriptions need an email address",
            ],
        ),
        (
            "EventDestination",
            "bad-sqs",
            topic_with(serde_json::json!({"protocol": "sqs", "endpoint": "https://sqs.example.com/q"})),
            vec!["spec.sns.topic.subscriptions[0]", "SQS queue ARN"],
        ),
        (
            "EventDestination",
            "bad-https-endpoint",
            topic_with(serde_json::json!({"protocol": "https", "endpoint": "http://example.com"})),
            vec!["https:// URL"],
        ),
        (
            "EventDestination",
            "bad-protocol",
            topic_with(serde_json::json!({"protocol": "sms", "endpoint": "+15555550100"})),
            vec!["spec.sns.topic.subscriptions[0].protocol", "Unsupported value"],
        ),
        (
            "EventDestination",
            "raw-email",
            topic_with(
                serde_json::json!({"protocol": "email", "endpoint": "a@example.com", "rawMessageDelivery": true}),
            ),
            vec!["rawMessageDelivery is only valid"],
        ),
        (
            "EventDestination",
            "filter-not-object",
            topic_with(
                serde_json::json!({"protocol": "sqs", "endpoint": "arn:aws:sqs:us-east-1:123456789012:q", "filterPolicy": "not json"}),
            ),
            vec!["spec.sns.topic.subscriptions[0].filterPolicy", "should match"],
        ),
        (
            "ReputationPolicy",
            "window-too-short",
            serde_json::json!({"selector": {}, "breaker": {"window": "30s"}}),
            vec!["spec.breaker.window", "from 1m to 24h"],
        ),
        (
            "ReputationPolicy",
            "window-too-long",
            serde_json::json!({"selector": {}, "breaker": {"window": "25h"}}),
            vec!["spec.breaker.window", "from 1m to 24h"],
        ),
        (
            "SesAccount",
            "bad-region",
            serde_json::json!({"region": "mars"}),
            vec!["spec.region", "should match"],
        ),
        (
            "SesAccount",
            "bad-role",
            serde_json::json!({"region": "eu-west-1", "roleArn": "admin"}),
            vec!["spec.roleArn", "should match"],
        ),
    ];
    assert!(cases.len() >= 12);
    for (kind, name, spec, expected) in cases {
        let api: Api<DynamicObject> = if kind == "SesAccount" {
            Api::all_with(client.clone(), &resource(kind))
        } else {
            Api::namespaced_with(client.clone(), &ns, &resource(kind))
        };
        let message = rejection(&api, &object(kind, name, spec)).await;
        for needle in expected {
            assert!(
                message.contains(needle),
                "{kind} {name}: message {message:?} does not contain {needle:?}"
            );
        }
    }
}

#[tokio::test]
async fn aws_names_and_account_are_immutable() {
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "immutable", &[]).await;
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &resource("ConfigurationSet"));
    let pp = PatchParams::apply("integration-tests").force();
    let mut obj = object(
        "ConfigurationSet",
        "cs",
        serde_json::json!({"name": "first", "accountRef": "a"}),
    );
    api.patch("cs", &pp, &Patch::Apply(&obj)).await.expect("create");

    obj.data["spec"]["name"] = "second".into();
    let err = api
        .patch("cs", &pp, &Patch::Apply(&obj))
        .await
        .expect_err("name change refused");
    assert!(err.to_string().contains("spec.name is immutable"), "{err}");

    let mut unnamed = object("ConfigurationSet", "cs2", serde_json::json!({}));
    api.patch("cs2", &pp, &Patch::Apply(&unnamed))
        .await
        .expect("create without spec.name");
    unnamed.data["spec"]["name"] = "other".into();
    let err = api
        .patch("cs2", &pp, &Patch::Apply(&unnamed))
        .await
        .expect_err("adding a different name refused");
    assert!(err.to_string().contains("spec.name is immutable"), "{err}");
    unnamed.data["spec"]["name"] = "cs2".into();
    api.patch("cs2", &pp, &Patch::Apply(&unnamed))
        .await
        .expect("spelling out the default name is no change");
    unnamed.data["spec"]["accountRef"] = "b".into();
    let err = api
        .patch("cs2", &pp, &Patch::Apply(&unnamed))
        .await
        .expect_err("adding an account refused");
    assert!(err.to_string().contains("spec.accountRef is immutable"), "{err}");

    obj.data["spec"]["name"] = "first".into();
    obj.data["spec"]["accountRef"] = "b".into();
    let err = api
        .patch("cs", &pp, &Patch::Apply(&obj))
        .await
        .expect_err("account change refused");
    assert!(err.to_string().contains("spec.accountRef is immutable"), "{err}");

    let accounts: Api<DynamicObject> = Api::all_with(client.clone(), &resource("SesAccount"));
    let name = support::unique("acct-immutable");
    let mut acct = object("SesAccount", &name, serde_json::json!({"region": "eu-west-1"}));
    accounts
        .patch(&name, &pp, &Patch::Apply(&acct))
        .await
        .expect("create account");
    acct.data["spec"]["region"] = "us-west-2".into();
    let err = accounts
        .patch(&name, &pp, &Patch::Apply(&acct))
        .await
        .expect_err("region change refused");
    assert!(err.to_string().contains("region is immutable"), "{err}");
}
