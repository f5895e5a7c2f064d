//! ConfigurationSet against the real apiserver and the AWS emulator: what
//! lands in SES, which calls are made, status, deletion, drift, ownership.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_sesv2::types as ses;
use k8s_openapi::api::core::v1::Event;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::json;
use ses_reputation_operator::api::ConfigurationSet;

use crate::support::{
    World, WorldOptions, apply_json, condition, cs_object, eventually, ses_client, unique, wait_condition, wait_event,
    wait_set_ready,
};

fn tags_of(
    out: &aws_sdk_sesv2::operation::get_configuration_set::GetConfigurationSetOutput,
) -> BTreeMap<String, String> {
    out.tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

async fn events_for(client: &kube::Client, ns: &str, name: &str) -> Vec<Event> {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_option_lands_in_ses_and_each_change_uses_only_its_put_call() {
    let w = World::new("cs-options").await;
    let api: Api<ConfigurationSet> = w.api();
    let ses = ses_client().await;
    let aws_name = unique("all-options");
    let mut spec = json!({
        "name": aws_name,
        "sending": {"enabled": false},
        "reputationMetrics": {"enabled": true},
        "suppression": {"reasons": ["BOUNCE", "COMPLAINT"]},
        "autoValidation": {"enabled": true, "confidenceThreshold": "MEDIUM"},
        "tracking": {"customRedirectDomain": "track.example.com", "httpsPolicy": "REQUIRE"},
        "delivery": {"tlsPolicy": "REQUIRE", "maxDeliverySeconds": 600},
        "vdm": {"engagementMetrics": "ENABLED", "optimizedSharedDelivery": "DISABLED"},
        "tags": {"team": "mail", "env": "test"},
    });
    apply_json(&api, cs_object("all", spec.clone())).await;
    let cs = wait_set_ready(&api, "all").await;
    let status = cs.status.clone().expect("status");
    assert!(status.unmanaged_options.is_empty(), "{:?}", status.unmanaged_options);
    assert_eq!(status.aws_name.as_deref(), Some(aws_name.as_str()));
    assert_eq!(
        status.arn,
        Some(format!(
            "arn:aws:ses:us-east-1:123456789012:configuration-set/{aws_name}"
        ))
    );
    assert_eq!(status.observed_generation, cs.metadata.generation);
    assert_eq!(
        condition(&status.conditions, "SendingEnabled").map(|c| (c.0, c.1)),
        Some(("False".into(), "DisabledBySpec".into()))
    );
    assert_eq!(
        condition(&status.conditions, "Stalled").map(|c| c.0),
        Some("False".into())
    );

    let got = ses
        .get_configuration_set()
        .configuration_set_name(&aws_name)
        .send()
        .await
        .expect("set exists in SES");
    assert_eq!(got.sending_options().map(|s| s.sending_enabled()), Some(false));
    assert_eq!(
        got.reputation_options().map(|r| r.reputation_metrics_enabled()),
        Some(true)
    );
    let mut reasons: Vec<_> = got
        .suppression_options()
        .expect("suppression")
        .suppressed_reasons()
        .iter()
        .map(|r| r.as_str().to_string())
        .collect();
    reasons.sort();
    assert_eq!(reasons, ["BOUNCE", "COMPLAINT"]);
    let validation = got
        .suppression_options()
        .and_then(|s| s.validation_options())
        .and_then(|v| v.condition_threshold())
        .expect("validation options");
    assert_eq!(validation.condition_threshold_enabled(), &ses::FeatureStatus::Enabled);
    assert_eq!(
        validation
            .overall_confidence_threshold()
            .map(|t| t.confidence_verdict_threshold().as_str()),
        Some("MEDIUM")
    );
    let tracking = got.tracking_options().expect("tracking");
    assert_eq!(tracking.custom_redirect_domain(), "track.example.com");
    assert_eq!(tracking.https_policy(), Some(&ses::HttpsPolicy::Require));
    let delivery = got.delivery_options().expect("delivery");
    assert_eq!(delivery.tls_policy(), Some(&ses::TlsPolicy::Require));
    assert_eq!(delivery.max_delivery_seconds(), Some(600));
    let vdm = got.vdm_options().expect("vdm");
    assert_eq!(
        vdm.dashboard_options().and_then(|d| d.engagement_metrics()),
        Some(&ses::FeatureStatus::Enabled)
    );
    assert_eq!(
        vdm.guardian_options().and_then(|g| g.optimized_shared_delivery()),
        Some(&ses::FeatureStatus::Disabled)
    );
    let tags = tags_of(&got);
    assert_eq!(tags.get("team").map(String::as_str), Some("mail"));
    assert_eq!(tags.get("env").map(String::as_str), Some("test"));
    assert_eq!(
        tags.get("ses.reputation.io/owner").map(String::as_str),
        Some(format!("test/{}/all", w.ns).as_str())
    );
    assert_eq!(tags.len(), 3);

    // Each option group in turn: exactly its own call, and SES reflects it.
    let puts = [
        "sesv2:PutConfigurationSetSendingOptions",
        "sesv2:PutConfigurationSetReputationOptions",
        "sesv2:PutConfigurationSetSuppressionOptions",
        "sesv2:PutConfigurationSetTrackingOptions",
        "sesv2:PutConfigurationSetDeliveryOptions",
        "sesv2:PutConfigurationSetVdmOptions",
        "sesv2:TagResource",
        "sesv2:UntagResource",
        "sesv2:CreateConfigurationSet",
    ];
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let steps: Vec<(&str, Edit, Vec<&str>)> = vec![
        (
            "sending",
            Box::new(|s| s["sending"]["enabled"] = json!(true)),
            vec!["sesv2:PutConfigurationSetSendingOptions"],
        ),
        (
            "reputation",
            Box::new(|s| s["reputationMetrics"]["enabled"] = json!(false)),
            vec!["sesv2:PutConfigurationSetReputationOptions"],
        ),
        (
            "suppression",
            Box::new(|s| s["suppression"]["reasons"] = json!(["COMPLAINT"])),
            vec!["sesv2:PutConfigurationSetSuppressionOptions"],
        ),
        (
            "autoValidation",
            Box::new(|s| s["autoValidation"]["confidenceThreshold"] = json!("HIGH")),
            vec!["sesv2:PutConfigurationSetSuppressionOptions"],
        ),
        (
            "tracking",
            Box::new(|s| s["tracking"]["httpsPolicy"] = json!("OPTIONAL")),
            vec!["sesv2:PutConfigurationSetTrackingOptions"],
        ),
        (
            "delivery",
            Box::new(|s| s["delivery"]["maxDeliverySeconds"] = json!(900)),
            vec!["sesv2:PutConfigurationSetDeliveryOptions"],
        ),
        (
            "vdm",
            Box::new(|s| s["vdm"]["engagementMetrics"] = json!("DISABLED")),
            vec!["sesv2:PutConfigurationSetVdmOptions"],
        ),
        (
            "tags",
            Box::new(|s| s["tags"] = json!({"team": "mail", "cost": "42"})),
            vec!["sesv2:TagResource", "sesv2:UntagResource"],
        ),
    ];
    for (group, change, expected) in steps {
        let before: Vec<u64> = puts.iter().map(|op| w.calls(op)).collect();
        change(&mut spec);
        apply_json(&api, cs_object("all", spec.clone())).await;
        wait_set_ready(&api, "all").await;
        for (op, was) in puts.iter().zip(before) {
            let want = if expected.contains(op) { was + 1 } else { was };
            assert_eq!(
                w.calls(op),
                want,
                "changing {group}: {op} called {} times, expected {want}",
                w.calls(op) - was
            );
        }
    }
    let got = ses
        .get_configuration_set()
        .configuration_set_name(&aws_name)
        .send()
        .await
        .expect("get");
    assert_eq!(got.sending_options().map(|s| s.sending_enabled()), Some(true));
    assert_eq!(
        got.reputation_options().map(|r| r.reputation_metrics_enabled()),
        Some(false)
    );
    assert_eq!(
        got.suppression_options().expect("suppression").suppressed_reasons(),
        [ses::SuppressionListReason::Complaint]
    );
    assert_eq!(
        got.tracking_options().and_then(|t| t.https_policy()),
        Some(&ses::HttpsPolicy::Optional)
    );
    assert_eq!(got.delivery_options().and_then(|d| d.max_delivery_seconds()), Some(900));
    assert_eq!(
        got.vdm_options()
            .and_then(|v| v.dashboard_options())
            .and_then(|d| d.engagement_metrics()),
        Some(&ses::FeatureStatus::Disabled)
    );
    let tags = tags_of(&got);
    assert_eq!(tags.get("cost").map(String::as_str), Some("42"));
    assert!(!tags.contains_key("env"), "removed tag still present: {tags:?}");
    assert!(tags.contains_key("ses.reputation.io/owner"));
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_in_aws_is_put_back_and_recorded_as_an_event() {
    let w = World::with(
        "cs-drift",
        WorldOptions {
            drift: Duration::from_secs(2),
            ..Default::default()
        },
    )
    .await;
    let api: Api<ConfigurationSet> = w.api();
    let ses = ses_client().await;
    let aws_name = unique("drift");
    apply_json(
        &api,
        cs_object(
            "drift",
            json!({"name": aws_name, "sending": {"enabled": false}, "tags": {"team": "mail"}}),
        ),
    )
    .await;
    let cs = wait_set_ready(&api, "drift").await;
    assert_eq!(
        cs.status.expect("status").unmanaged_options,
        ["suppression", "autoValidation", "tracking", "delivery", "vdm"],
        "status names the groups left to AWS"
    );

    // Someone turns sending back on and retags the set in the console.
    ses.put_configuration_set_sending_options()
        .configuration_set_name(&aws_name)
        .sending_enabled(true)
        .send()
        .await
        .expect("out-of-band put");
    ses.untag_resource()
        .resource_arn(format!(
            "arn:aws:ses:us-east-1:123456789012:configuration-set/{aws_name}"
        ))
        .tag_keys("team")
        .send()
        .await
        .expect("out-of-band untag");

    eventually("drift corrected in SES", Duration::from_secs(20), || async {
        let got = ses
            .get_configuration_set()
            .configuration_set_name(&aws_name)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let sending = got.sending_options().map(|s| s.sending_enabled());
        let team = tags_of(&got).get("team").cloned();
        if sending == Some(false) && team.as_deref() == Some("mail") {
            Ok(())
        } else {
            Err(format!("sending={sending:?} team={team:?}"))
        }
    })
    .await;
    eventually("DriftCorrected event", Duration::from_secs(10), || async {
        let events = events_for(&w.client, &w.ns, "drift").await;
        events
            .iter()
            .find(|e| e.reason.as_deref() == Some("DriftCorrected"))
            .map(|e| e.message.clone().unwrap_or_default())
            .ok_or_else(|| format!("{:?}", events.iter().map(|e| e.reason.clone()).collect::<Vec<_>>()))
    })
    .await;

    // A later, different change gets an Event of its own, saying what it
    // restored (not a repeat of the first one's text).
    ses.put_configuration_set_reputation_options()
        .configuration_set_name(&aws_name)
        .reputation_metrics_enabled(false)
        .send()
        .await
        .expect("out-of-band reputation put");
    eventually("a second DriftCorrected event", Duration::from_secs(20), || async {
        let events = events_for(&w.client, &w.ns, "drift").await;
        let notes: Vec<String> = events
            .iter()
            .filter(|e| e.reason.as_deref() == Some("DriftCorrected"))
            .map(|e| e.message.clone().unwrap_or_default())
            .collect();
        if notes.iter().any(|n| n.ends_with("restored: reputationMetrics")) {
            Ok(())
        } else {
            Err(format!("{notes:?}"))
        }
    })
    .await;
}

/// The owner tag removed by hand: status proves the set is this object's,
/// so the tag goes back (with a Warning) and the rest of the drift is put
/// back too, instead of the set disowning itself.
#[tokio::test(flavor = "multi_thread")]
async fn an_owner_tag_removed_by_hand_is_restored_with_the_rest_of_the_drift() {
    let w = World::with(
        "cs-untag",
        WorldOptions {
            drift: Duration::from_secs(2),
            ..Default::default()
        },
    )
    .await;
    let api: Api<ConfigurationSet> = w.api();
    let ses = ses_client().await;
    let aws_name = unique("untagged");
    apply_json(&api, cs_object("untagged", json!({"name": aws_name}))).await;
    wait_set_ready(&api, "untagged").await;
    let arn = format!("arn:aws:ses:us-east-1:123456789012:configuration-set/{aws_name}");
    ses.untag_resource()
        .resource_arn(&arn)
        .tag_keys("ses.reputation.io/owner")
        .send()
        .await
        .expect("out-of-band untag");
    ses.put_configuration_set_sending_options()
        .configuration_set_name(&aws_name)
        .sending_enabled(false)
        .send()
        .await
        .expect("out-of-band put");

    eventually("tag and sending restored in SES", Duration::from_secs(20), || async {
        let got = ses
            .get_configuration_set()
            .configuration_set_name(&aws_name)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let sending = got.sending_options().map(|s| s.sending_enabled());
        let owner = tags_of(&got).get("ses.reputation.io/owner").cloned();
        let want = format!("test/{}/untagged", w.ns);
        if sending == Some(true) && owner.as_deref() == Some(want.as_str()) {
            Ok(())
        } else {
            Err(format!("sending={sending:?} owner={owner:?}"))
        }
    })
    .await;
    let event = wait_event(&w.client, &w.ns, "untagged", "OwnerTagRestored").await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    let cs = wait_set_ready(&api, "untagged").await;
    let stalled = cs
        .status
        .as_ref()
        .and_then(|s| condition(&s.conditions, "Stalled"))
        .filter(|c| c.0 == "True");
    assert_eq!(stalled, None, "the set disowned itself");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_set_is_left_alone_unless_adoption_is_asked_for() {
    let w = World::new("cs-adopt").await;
    let api: Api<ConfigurationSet> = w.api();
    let ses = ses_client().await;
    let aws_name = unique("preexisting");
    ses.create_configuration_set()
        .configuration_set_name(&aws_name)
        .tags(ses::Tag::builder().key("made-by").value("hand").build().expect("tag"))
        .send()
        .await
        .expect("create by hand");

    apply_json(
        &api,
        cs_object("pre", json!({"name": aws_name, "sending": {"enabled": false}})),
    )
    .await;
    let cs = wait_condition(&api, "pre", "Stalled", "True", "AlreadyExists").await;
    let (_, _, message) = condition(&cs.status.expect("status").conditions, "Stalled").expect("Stalled");
    assert!(message.contains("spec.adopt"), "message tells how to adopt: {message}");
    let got = ses
        .get_configuration_set()
        .configuration_set_name(&aws_name)
        .send()
        .await
        .expect("get");
    assert_eq!(
        got.sending_options().map(|s| s.sending_enabled()),
        Some(true),
        "untouched while not adopted"
    );
    assert!(!tags_of(&got).contains_key("ses.reputation.io/owner"));

    // Asking to adopt is not enough: the SesAccount must let this namespace.
    apply_json(
        &api,
        cs_object(
            "pre",
            json!({"name": aws_name, "sending": {"enabled": false}, "adopt": true}),
        ),
    )
    .await;
    let cs = wait_condition(&api, "pre", "Stalled", "True", "AdoptionNotAllowed").await;
    let (_, _, message) = condition(&cs.status.expect("status").conditions, "Stalled").expect("Stalled");
    assert!(
        message.contains("spec.adoption"),
        "message tells who decides: {message}"
    );
    let got = ses
        .get_configuration_set()
        .configuration_set_name(&aws_name)
        .send()
        .await
        .expect("get");
    assert_eq!(got.sending_options().map(|s| s.sending_enabled()), Some(true));
    assert!(!tags_of(&got).contains_key("ses.reputation.io/owner"));

    let accounts: Api<ses_reputation_operator::api::SesAccount> = Api::all(w.client.clone());
    accounts
        .patch(
            &w.account,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"adoption": {"allowedNamespaces": {
                "matchLabels": {"kubernetes.io/metadata.name": w.ns}
            }}}})),
        )
        .await
        .expect("allow adoption");
    let cs = wait_set_ready(&api, "pre").await;
    let adoption = cs
        .status
        .as_ref()
        .and_then(|s| s.adoption.clone())
        .expect("adoption recorded");
    assert_eq!(adoption.kept_tags, ["made-by"]);
    let got = ses
        .get_configuration_set()
        .configuration_set_name(&aws_name)
        .send()
        .await
        .expect("get");
    assert_eq!(got.sending_options().map(|s| s.sending_enabled()), Some(false));
    let tags = tags_of(&got);
    assert_eq!(
        tags.get("ses.reputation.io/owner").map(String::as_str),
        Some(format!("test/{}/pre", w.ns).as_str())
    );
    assert_eq!(
        tags.get("made-by").map(String::as_str),
        Some("hand"),
        "the set's own tags are kept: {tags:?}"
    );

    // Deleting the object leaves an adopted set in AWS (default Retain).
    api.delete("pre", &DeleteParams::default()).await.expect("delete");
    eventually("pre deleted", Duration::from_secs(30), || async {
        match api.get_opt("pre").await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(_) => Err("still present".to_string()),
        }
    })
    .await;
    let got = ses
        .get_configuration_set()
        .configuration_set_name(&aws_name)
        .send()
        .await
        .expect("an adopted set is retained");
    // As it was before the adoption: its own tags, no owner tag naming a
    // deleted object (so it can be adopted again).
    let tags = tags_of(&got);
    assert_eq!(tags.get("ses.reputation.io/owner"), None, "{tags:?}");
    assert_eq!(tags.get("made-by").map(String::as_str), Some("hand"), "{tags:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_namespace_the_account_does_not_allow_gets_account_not_allowed_and_no_aws_call() {
    let w = World::with(
        "cs-fenced",
        WorldOptions {
            allowed_namespaces: Some(json!({"matchLabels": {"team": "someone-else"}})),
            ..Default::default()
        },
    )
    .await;
    let api: Api<ConfigurationSet> = w.api();
    let aws_name = unique("fenced");
    apply_json(&api, cs_object("fenced", json!({"name": aws_name}))).await;
    let cs = wait_condition(&api, "fenced", "Stalled", "True", "AccountNotAllowed").await;
    let (_, _, message) = condition(&cs.status.expect("status").conditions, "Ready").expect("Ready");
    assert!(message.contains(&w.ns) && message.contains(&w.account), "{message}");
    let ses_calls: Vec<_> = w
        .all_calls()
        .into_iter()
        // The account's own reads (GetAccount, its findings) are not the set's.
        .filter(|(k, _)| {
            k.starts_with("sesv2:") && k != "sesv2:GetAccount:ok" && !k.starts_with("sesv2:ListRecommendations:")
        })
        .collect();
    assert!(
        ses_calls.is_empty(),
        "no SES call for a fenced namespace: {ses_calls:?}"
    );
    let err = ses_client()
        .await
        .get_configuration_set()
        .configuration_set_name(&aws_name)
        .send()
        .await
        .expect_err("not created");
    assert!(err.into_service_error().is_not_found_exception());
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_removes_the_set_and_retain_keeps_it() {
    let w = World::new("cs-delete").await;
    let api: Api<ConfigurationSet> = w.api();
    let ses = ses_client().await;
    let bystander = unique("bystander");
    ses.create_configuration_set()
        .configuration_set_name(&bystander)
        .send()
        .await
        .expect("bystander");

    let (deleted, retained) = (unique("deleted"), unique("retained"));
    apply_json(&api, cs_object("deleted", json!({"name": deleted}))).await;
    apply_json(
        &api,
        cs_object("retained", json!({"name": retained, "deletionPolicy": "Retain"})),
    )
    .await;
    wait_set_ready(&api, "deleted").await;
    wait_set_ready(&api, "retained").await;

    for name in ["deleted", "retained"] {
        api.delete(name, &DeleteParams::default()).await.expect("delete");
    }
    for name in ["deleted", "retained"] {
        eventually(
            &format!("{name} gone from Kubernetes"),
            Duration::from_secs(30),
            || async {
                match api.get_opt(name).await.map_err(|e| e.to_string())? {
                    None => Ok(()),
                    Some(cs) => Err(format!("{:?}", cs.status.map(|s| s.conditions))),
                }
            },
        )
        .await;
    }
    let err = ses
        .get_configuration_set()
        .configuration_set_name(&deleted)
        .send()
        .await
        .expect_err("deleted in SES");
    assert!(err.into_service_error().is_not_found_exception());
    ses.get_configuration_set()
        .configuration_set_name(&retained)
        .send()
        .await
        .expect("retained in SES");
    let untouched = ses
        .get_configuration_set()
        .configuration_set_name(&bystander)
        .send()
        .await
        .expect("bystander still there");
    assert!(untouched.tags().is_empty());
    assert!(
        api.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .iter()
            .all(|cs| cs.name_any() != "deleted")
    );
}
