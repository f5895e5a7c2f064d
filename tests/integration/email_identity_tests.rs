//! EmailIdentity against the real apiserver and the AWS emulator: the
//! identity and its attributes in SES, the DNS records in status,
//! verification as AWS reports it, the default configuration set measuring
//! mail that names no set, deletion, adoption, and admission.

use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use ses_reputation_operator::api::email_identity::DnsRecord;
use ses_reputation_operator::api::{ConfigurationSet, EmailIdentity, EventDestination};

use crate::support::identities::{dns_endpoint_resource, id_object, install_external_dns_crd, wait_identity};
use crate::support::{self, World, apply_json, condition, emulator, eventually, unique};
use crate::support::{cs_object, ses_client, wait_set_ready};

const REGION: &str = "us-east-1";

/// The records AWS asks for, built from what GetEmailIdentity returns.
async fn records_from_ses(ses: &aws_sdk_sesv2::Client, domain: &str, mail_from: &str) -> Vec<DnsRecord> {
    let got = ses
        .get_email_identity()
        .email_identity(domain)
        .send()
        .await
        .expect("GetEmailIdentity");
    let tokens = got.dkim_attributes().map(|d| d.tokens().to_vec()).unwrap_or_default();
    assert_eq!(tokens.len(), 3, "Easy DKIM gives three tokens");
    let mut records: Vec<DnsRecord> = tokens
        .iter()
        .map(|t| DnsRecord {
            type_: "CNAME".into(),
            name: format!("{t}._domainkey.{domain}"),
            value: format!("{t}.dkim.amazonses.com"),
        })
        .collect();
    records.push(DnsRecord {
        type_: "MX".into(),
        name: mail_from.into(),
        value: format!("10 feedback-smtp.{REGION}.amazonses.com"),
    });
    records.push(DnsRecord {
        type_: "TXT".into(),
        name: mail_from.into(),
        value: "\"v=spf1 include:amazonses.com ~all\"".into(),
    });
    records.sort();
    records
}

async fn send_without_set(ses: &aws_sdk_sesv2::Client, from: &str) -> String {
    use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
    let content = |s: &str| Content::builder().data(s).build().expect("content");
    ses.send_email()
        .from_email_address(from)
        .destination(
            Destination::builder()
                .to_addresses("success@simulator.amazonses.com")
                .build(),
        )
        .content(
            EmailContent::builder()
                .simple(
                    Message::builder()
                        .subject(content("hi"))
                        .body(Body::builder().text(content("hello")).build())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("send email")
        .message_id
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn domain_identity_verifies_and_its_default_set_measures_mail_that_names_no_set() {
    let w = World::new("id-domain").await;
    let sets: Api<ConfigurationSet> = w.api();
    let dests: Api<EventDestination> = w.api();
    let ids: Api<EmailIdentity> = w.api();
    let ses = ses_client().await;
    let sqs = aws_sdk_sqs::Client::new(&emulator::sdk_config().await);
    let domain = format!("{}.example.org", unique("dom"));
    let mail_from = format!("bounce.{domain}");
    let set_name = unique("measured");
    let (queue_url, queue_arn) = emulator::sqs_queue(REGION, "sends").await;

    apply_json(&sets, cs_object("measured", json!({"name": set_name}))).await;
    apply_json(
        &dests,
        json!({"apiVersion": "ses.reputation.io/v1alpha1", "kind": "EventDestination", "metadata": {"name": "sends"},
               "spec": {"configurationSetRef": {"name": "measured"}, "eventTypes": ["SEND"],
                        "sns": {"topic": {"name": unique("sends"),
                                          "subscriptions": [{"protocol": "sqs", "endpoint": queue_arn, "rawMessageDelivery": true}]}}}}),
    )
    .await;
    apply_json(
        &ids,
        id_object(
            "web",
            json!({"identity": domain, "dkim": {"keyLength": "RSA_1024_BIT"}, "mailFromDomain": mail_from,
                   "behaviorOnMxFailure": "REJECT_MESSAGE", "configurationSetRef": {"name": "measured"},
                   "feedbackForwarding": false, "tags": {"team": "web"}}),
        ),
    )
    .await;

    // Pending verification is Reconciling, with the records to publish.
    let id = wait_identity(&ids, "web", "Reconciling", "True", "VerificationPending").await;
    let status = id.status.clone().expect("status");
    assert_eq!(status.verification_status.as_deref(), Some("PENDING"));
    assert_eq!(status.dkim_status.as_deref(), Some("PENDING"));
    assert_eq!(status.mail_from_status.as_deref(), Some("PENDING"));
    assert_eq!(status.identity_type.as_deref(), Some("DOMAIN"));
    assert_eq!(status.configuration_set.as_deref(), Some(set_name.as_str()));
    assert_eq!(
        status.arn.as_deref(),
        Some(format!("arn:aws:ses:{REGION}:123456789012:identity/{domain}").as_str())
    );
    assert_eq!(status.dns_records, records_from_ses(&ses, &domain, &mail_from).await);
    assert_eq!(
        condition(&status.conditions, "Verified").map(|c| c.0),
        Some("False".into())
    );

    // Every attribute landed in SES.
    let got = ses
        .get_email_identity()
        .email_identity(&domain)
        .send()
        .await
        .expect("identity");
    let dkim = got.dkim_attributes().expect("dkim");
    assert!(dkim.signing_enabled());
    assert_eq!(dkim.next_signing_key_length().map(|l| l.as_str()), Some("RSA_1024_BIT"));
    let mf = got.mail_from_attributes().expect("mail from");
    assert_eq!(mf.mail_from_domain(), mail_from);
    assert_eq!(mf.behavior_on_mx_failure().as_str(), "REJECT_MESSAGE");
    assert_eq!(got.configuration_set_name(), Some(set_name.as_str()));
    assert!(!got.feedback_forwarding_status());
    let tags: Vec<(&str, &str)> = got.tags().iter().map(|t| (t.key(), t.value())).collect();
    assert!(tags.contains(&("team", "web")), "{tags:?}");
    assert!(
        tags.iter()
            .any(|(k, v)| *k == "ses.reputation.io/owner" && v.ends_with("/web")),
        "{tags:?}"
    );

    // AWS verifies the domain: Verified, DkimVerified, then Ready.
    emulator::Emulator
        .set_identity(
            REGION,
            &domain,
            json!({"verification": "SUCCESS", "mail_from": "SUCCESS"}),
        )
        .await;
    let id = wait_identity(&ids, "web", "Ready", "True", "Synced").await;
    let status = id.status.clone().expect("status");
    assert_eq!(
        condition(&status.conditions, "Verified").map(|c| c.0),
        Some("True".into())
    );
    assert_eq!(
        condition(&status.conditions, "DkimVerified").map(|c| c.0),
        Some("True".into())
    );
    assert_eq!(
        condition(&status.conditions, "MailFromVerified").map(|c| c.0),
        Some("True".into())
    );
    assert_eq!(status.verification_status.as_deref(), Some("SUCCESS"));

    // Mail that names no configuration set is measured by the default set.
    let message_id = send_without_set(&ses, &format!("app@{domain}")).await;
    let event: Value = eventually(
        "Send event in the set's destination",
        Duration::from_secs(30),
        || async {
            let out = sqs
                .receive_message()
                .queue_url(&queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            for m in out.messages() {
                let event: Value = serde_json::from_str(m.body().unwrap_or("{}")).map_err(|e| e.to_string())?;
                if event["mail"]["messageId"] == message_id.as_str() {
                    return Ok(event);
                }
            }
            Err("no Send event yet".into())
        },
    )
    .await;
    assert_eq!(event["eventType"], "Send");
    assert_eq!(event["mail"]["tags"]["ses:configuration-set"][0], set_name.as_str());

    // The set lists the identity; deleting the set waits for it.
    let cs = wait_set_ready(&sets, "measured").await;
    assert_eq!(cs.status.expect("status").identities, ["web"]);
    dests
        .delete("sends", &DeleteParams::default())
        .await
        .expect("delete destination");
    sets.delete("measured", &DeleteParams::default())
        .await
        .expect("delete set");
    eventually("set waits for its identity", Duration::from_secs(30), || async {
        let cs = sets.get("measured").await.map_err(|e| e.to_string())?;
        let conds = cs.status.map(|s| s.conditions).unwrap_or_default();
        match condition(&conds, "Reconciling") {
            Some((s, r, m)) if s == "True" && r == "WaitingForEmailIdentities" && m.contains("web") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert!(
        ses.get_configuration_set()
            .configuration_set_name(&set_name)
            .send()
            .await
            .is_ok(),
        "the set stays in SES while an identity uses it"
    );

    // Deleting the identity (deletionPolicy Delete) removes it from SES,
    // and then the set goes too.
    ids.delete("web", &DeleteParams::default())
        .await
        .expect("delete identity");
    eventually("identity and set gone", Duration::from_secs(60), || async {
        let id_gone = ids.get_opt("web").await.map_err(|e| e.to_string())?.is_none();
        let set_gone = sets.get_opt("measured").await.map_err(|e| e.to_string())?.is_none();
        if id_gone && set_gone {
            Ok(())
        } else {
            Err(format!("identity gone {id_gone}, set gone {set_gone}"))
        }
    })
    .await;
    let err = ses
        .get_email_identity()
        .email_identity(&domain)
        .send()
        .await
        .expect_err("identity deleted in SES");
    assert!(
        err.as_service_error().is_some_and(|e| e.is_not_found_exception()),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_verification_is_stalled_with_the_reason_aws_gives_and_retain_keeps_it() {
    let w = World::new("id-failed").await;
    let ids: Api<EmailIdentity> = w.api();
    let ses = ses_client().await;
    let domain = format!("{}.example.org", unique("fail"));
    apply_json(
        &ids,
        id_object("shop", json!({"identity": domain, "deletionPolicy": "Retain"})),
    )
    .await;
    wait_identity(&ids, "shop", "Reconciling", "True", "VerificationPending").await;

    emulator::Emulator
        .set_identity(
            REGION,
            &domain,
            json!({"verification": "FAILED", "error_type": "HOST_NOT_FOUND"}),
        )
        .await;
    let id = wait_identity(&ids, "shop", "Stalled", "True", "HOST_NOT_FOUND").await;
    let status = id.status.expect("status");
    assert_eq!(status.verification_status.as_deref(), Some("FAILED"));
    assert_eq!(status.verification_error.as_deref(), Some("HOST_NOT_FOUND"));
    let (_, _, message) = condition(&status.conditions, "Stalled").expect("Stalled");
    assert!(
        message.contains("HOST_NOT_FOUND") && message.contains(&domain),
        "{message}"
    );
    assert_eq!(
        condition(&status.conditions, "Ready").map(|c| c.0),
        Some("False".into())
    );

    ids.delete("shop", &DeleteParams::default()).await.expect("delete");
    eventually("object gone", Duration::from_secs(30), || async {
        match ids.get_opt("shop").await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(_) => Err("still present".to_string()),
        }
    })
    .await;
    let kept = ses.get_email_identity().email_identity(&domain).send().await;
    assert!(
        kept.is_ok(),
        "deletionPolicy Retain leaves the identity in SES: {kept:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_identity_made_outside_the_operator_is_stalled_until_adopted() {
    let w = World::new("id-adopt").await;
    let ids: Api<EmailIdentity> = w.api();
    let ses = ses_client().await;
    let address = format!("{}@example.net", unique("ops"));
    ses.create_email_identity()
        .email_identity(&address)
        .tags(
            aws_sdk_sesv2::types::Tag::builder()
                .key("made-by")
                .value("hand")
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("identity made outside");

    apply_json(
        &ids,
        id_object("ops", json!({"identity": address, "feedbackForwarding": false})),
    )
    .await;
    let id = wait_identity(&ids, "ops", "Stalled", "True", "AlreadyExists").await;
    let (_, _, message) = condition(&id.status.expect("status").conditions, "Stalled").expect("Stalled");
    assert!(message.contains("spec.adopt"), "{message}");
    let got = ses
        .get_email_identity()
        .email_identity(&address)
        .send()
        .await
        .expect("identity");
    assert_eq!(got.tags().len(), 1, "left untouched while not adopted");
    assert!(got.feedback_forwarding_status());

    // Asking to adopt is not enough: the SesAccount must let this namespace.
    let spec = json!({"identity": address, "feedbackForwarding": false, "adopt": true});
    apply_json(&ids, id_object("ops", spec)).await;
    let id = wait_identity(&ids, "ops", "Stalled", "True", "AdoptionNotAllowed").await;
    let (_, _, message) = condition(&id.status.expect("status").conditions, "Stalled").expect("Stalled");
    assert!(message.contains("spec.adoption"), "{message}");
    let got = ses
        .get_email_identity()
        .email_identity(&address)
        .send()
        .await
        .expect("identity");
    assert!(got.feedback_forwarding_status(), "still untouched");

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
    let id = wait_identity(&ids, "ops", "Reconciling", "True", "VerificationPending").await;
    let status = id.status.expect("status");
    assert_eq!(
        status.adoption.as_ref().map(|a| a.kept_tags.clone()),
        Some(vec!["made-by".to_string()])
    );
    assert_eq!(status.identity_type.as_deref(), Some("EMAIL_ADDRESS"));
    assert!(status.dns_records.is_empty(), "an address has no records to publish");
    assert_eq!(
        condition(&status.conditions, "DkimVerified").map(|c| c.0),
        Some("Unknown".into())
    );
    let got = ses
        .get_email_identity()
        .email_identity(&address)
        .send()
        .await
        .expect("identity");
    assert!(
        got.tags().iter().any(|t| t.key() == "ses.reputation.io/owner"),
        "adopted: the owner tag is set"
    );
    assert!(
        got.tags().iter().any(|t| t.key() == "made-by" && t.value() == "hand"),
        "its own tags are kept"
    );
    assert!(!got.feedback_forwarding_status(), "the spec applies once adopted");

    // Deleting the object leaves an adopted identity in AWS (default Retain).
    ids.delete("ops", &DeleteParams::default()).await.expect("delete");
    eventually("ops deleted", Duration::from_secs(30), || async {
        match ids.get_opt("ops").await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(_) => Err("still present".to_string()),
        }
    })
    .await;
    let got = ses
        .get_email_identity()
        .email_identity(&address)
        .send()
        .await
        .expect("an adopted identity is retained by default");
    // As it was before: its own tags, no owner tag naming a deleted object.
    assert!(
        !got.tags().iter().any(|t| t.key() == "ses.reputation.io/owner"),
        "the adoption's owner tag stays on a retained identity"
    );
    assert!(got.tags().iter().any(|t| t.key() == "made-by" && t.value() == "hand"));
}

#[tokio::test]
async fn bad_identity_specs_are_rejected_at_admission_naming_the_field() {
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "id-admission", &[]).await;
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("ses.reputation.io", "v1alpha1", "EmailIdentity"),
        "emailidentities",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &resource);
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "not-an-identity",
            json!({"identity": "not an identity"}),
            vec!["spec.identity", "should match"],
        ),
        (
            "bare-word",
            json!({"identity": "localhost"}),
            vec!["spec.identity", "should match"],
        ),
        (
            "key-length",
            json!({"identity": "example.com", "dkim": {"keyLength": "RSA_4096_BIT"}}),
            vec!["spec.dkim.keyLength", "Unsupported value"],
        ),
        (
            "mail-from-elsewhere",
            json!({"identity": "example.com", "mailFromDomain": "bounce.example.org"}),
            vec!["spec.mailFromDomain", "subdomain of the identity"],
        ),
        (
            "mail-from-is-identity",
            json!({"identity": "a@example.com", "mailFromDomain": "example.com"}),
            vec!["spec.mailFromDomain", "subdomain of the identity"],
        ),
        (
            "set-elsewhere",
            json!({"identity": "example.com", "configurationSetRef": {"name": "cs", "namespace": "other"}}),
            vec!["spec.configurationSetRef.namespace", "own namespace"],
        ),
        (
            "bad-tag",
            json!({"identity": "example.com", "tags": {"team!": "x"}}),
            vec!["spec.tags", "tag keys may contain only"],
        ),
        (
            "owner-tag",
            json!({"identity": "example.com", "tags": {"ses.reputation.io/owner": "x"}}),
            vec!["spec.tags", "must not start with"],
        ),
        (
            "mx",
            json!({"identity": "example.com", "behaviorOnMxFailure": "BOUNCE"}),
            vec!["spec.behaviorOnMxFailure", "Unsupported value"],
        ),
    ];
    for (name, spec, expected) in cases {
        let obj: DynamicObject = serde_json::from_value(id_object(name, spec)).expect("object");
        let message = match api.create(&PostParams::default(), &obj).await {
            Ok(_) => panic!("{name} was accepted"),
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 422, "{name}: expected 422 Invalid, got {status:?}");
                status.message
            }
            Err(e) => panic!("{name}: unexpected error {e}"),
        };
        for needle in expected {
            assert!(
                message.contains(needle),
                "{name}: message {message:?} does not contain {needle:?}"
            );
        }
    }

    // A good spec passes, and the identity cannot change afterwards.
    let obj: DynamicObject = serde_json::from_value(id_object(
        "ok",
        json!({"identity": "a@example.com", "mailFromDomain": "mail.example.com"}),
    ))
    .expect("object");
    let mut created = api
        .create(&PostParams::default(), &obj)
        .await
        .expect("valid spec accepted");
    created.data["spec"]["identity"] = "b@example.com".into();
    let err = api
        .replace("ok", &PostParams::default(), &created)
        .await
        .expect_err("identity change refused");
    assert!(err.to_string().contains("spec.identity is immutable"), "{err}");
}

/// The records of a DNSEndpoint as (type, name, value), sorted.
fn endpoint_records(ep: &DynamicObject) -> Vec<DnsRecord> {
    let mut out = Vec::new();
    for e in ep.data["spec"]["endpoints"].as_array().cloned().unwrap_or_default() {
        for t in e["targets"].as_array().cloned().unwrap_or_default() {
            out.push(DnsRecord {
                type_: e["recordType"].as_str().unwrap_or_default().into(),
                name: e["dnsName"].as_str().unwrap_or_default().into(),
                value: t.as_str().unwrap_or_default().into(),
            });
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn external_dns_endpoint_holds_exactly_the_records_follows_dkim_tokens_and_goes_with_the_identity() {
    // A short drift period: a DKIM key rotation in AWS changes no spec, so
    // only the periodic read notices it.
    let w = World::with(
        "id-dns",
        support::WorldOptions {
            drift: Duration::from_secs(3),
            ..Default::default()
        },
    )
    .await;
    install_external_dns_crd(&w.client).await;
    let ids: Api<EmailIdentity> = w.api();
    let endpoints: Api<DynamicObject> = Api::namespaced_with(w.client.clone(), &w.ns, &dns_endpoint_resource());
    let ses = ses_client().await;
    let domain = format!("{}.example.org", unique("dns"));
    let mail_from = format!("mail.{domain}");
    apply_json(
        &ids,
        id_object(
            "news",
            json!({"identity": domain, "mailFromDomain": mail_from, "dns": {"externalDNS": true}}),
        ),
    )
    .await;

    let id = wait_identity(&ids, "news", "Reconciling", "True", "VerificationPending").await;
    let expected = records_from_ses(&ses, &domain, &mail_from).await;
    assert_eq!(id.status.as_ref().expect("status").dns_records, expected);
    let ep = eventually("DNSEndpoint written", Duration::from_secs(30), || async {
        endpoints
            .get_opt("news")
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "no DNSEndpoint yet".to_string())
    })
    .await;
    assert_eq!(endpoint_records(&ep), expected, "exactly the records AWS asks for");
    let owners = ep.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0].kind, "EmailIdentity");
    assert_eq!(Some(owners[0].uid.clone()), id.metadata.uid);
    assert_eq!(owners[0].controller, Some(true));
    assert_eq!(id.status.as_ref().and_then(|s| s.dns_endpoint.as_deref()), Some("news"));

    // New DKIM tokens in AWS reach status and the DNSEndpoint.
    emulator::Emulator
        .set_identity(REGION, &domain, json!({"rotate_dkim": true}))
        .await;
    let rotated = records_from_ses(&ses, &domain, &mail_from).await;
    assert_ne!(rotated, expected);
    eventually(
        "DNSEndpoint follows the new tokens",
        Duration::from_secs(60),
        || async {
            let ep = endpoints.get("news").await.map_err(|e| e.to_string())?;
            let id = ids.get("news").await.map_err(|e| e.to_string())?;
            let in_status = id.status.map(|s| s.dns_records).unwrap_or_default();
            if endpoint_records(&ep) == rotated && in_status == rotated {
                Ok(())
            } else {
                Err(format!("{:?}", endpoint_records(&ep)))
            }
        },
    )
    .await;

    // A DNSEndpoint someone else made under the identity's name is never
    // taken over.
    let foreign: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "externaldns.k8s.io/v1alpha1", "kind": "DNSEndpoint",
        "metadata": {"name": "taken"},
        "spec": {"endpoints": [{"dnsName": "www.example.org", "recordType": "A", "targets": ["192.0.2.1"]}]},
    }))
    .expect("DNSEndpoint");
    endpoints
        .create(&PostParams::default(), &foreign)
        .await
        .expect("foreign DNSEndpoint");
    let other = format!("{}.example.org", unique("taken"));
    apply_json(
        &ids,
        id_object("taken", json!({"identity": other, "dns": {"externalDNS": true}})),
    )
    .await;
    wait_identity(&ids, "taken", "Stalled", "True", "DNSEndpointExists").await;
    let kept = endpoints.get("taken").await.expect("foreign DNSEndpoint");
    assert_eq!(kept.data["spec"], foreign.data["spec"], "left untouched");
    assert!(kept.metadata.owner_references.is_none());

    // Removed with the identity.
    ids.delete("news", &DeleteParams::default()).await.expect("delete");
    eventually("identity and DNSEndpoint gone", Duration::from_secs(30), || async {
        let id_gone = ids.get_opt("news").await.map_err(|e| e.to_string())?.is_none();
        let ep_gone = endpoints.get_opt("news").await.map_err(|e| e.to_string())?.is_none();
        if id_gone && ep_gone {
            Ok(())
        } else {
            Err(format!("identity gone {id_gone}, endpoint gone {ep_gone}"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_identity_costs_one_call_per_attribute_and_one_read_per_drift_round() {
    let w = World::with(
        "id-budget",
        support::WorldOptions {
            drift: Duration::from_secs(2),
            rate_interval: Duration::from_secs(1),
            ..Default::default()
        },
    )
    .await;
    let ids: Api<EmailIdentity> = w.api();
    let domain = format!("{}.example.org", unique("budget"));
    apply_json(
        &ids,
        id_object(
            "budget",
            json!({"identity": domain, "dkim": {"keyLength": "RSA_1024_BIT"},
                   "mailFromDomain": format!("mail.{domain}"), "feedbackForwarding": false, "tags": {"a": "b"}}),
        ),
    )
    .await;
    wait_identity(&ids, "budget", "Reconciling", "True", "VerificationPending").await;
    emulator::Emulator
        .set_identity(
            REGION,
            &domain,
            json!({"verification": "SUCCESS", "mail_from": "SUCCESS"}),
        )
        .await;
    wait_identity(&ids, "budget", "Ready", "True", "Synced").await;

    // The account's drift round counts the identity: GetAccount + one
    // GetEmailIdentity.
    let accounts: Api<ses_reputation_operator::api::SesAccount> = Api::all(w.client.clone());
    eventually("drift round counts the identity", Duration::from_secs(30), || async {
        let acct = accounts.get(&w.account).await.map_err(|e| e.to_string())?;
        match acct.status.and_then(|s| s.drift).map(|d| d.checks_per_period) {
            Some(2) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // Several drift rounds later (2 s each): still only reads. Creation
    // carried the key length and tags; MAIL FROM and feedback took one Put
    // each; nothing was written twice.
    let reads = w.calls("sesv2:GetEmailIdentity");
    eventually("three more drift reads", Duration::from_secs(30), || async {
        let now = w.calls("sesv2:GetEmailIdentity");
        if now >= reads + 3 {
            Ok(())
        } else {
            Err(format!("{now} reads"))
        }
    })
    .await;
    let writes: Vec<(String, u64)> = w
        .all_calls()
        .into_iter()
        .filter(|(k, v)| k.starts_with("sesv2:") && !k.starts_with("sesv2:Get") && k.contains("Identit") && *v > 0)
        .collect();
    assert_eq!(
        writes,
        [
            ("sesv2:CreateEmailIdentity:ok".to_string(), 1),
            ("sesv2:PutEmailIdentityFeedbackAttributes:ok".to_string(), 1),
            ("sesv2:PutEmailIdentityMailFromAttributes:ok".to_string(), 1),
        ],
        "{:?}",
        w.all_calls()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_namespace_the_account_does_not_allow_gets_no_identity() {
    let w = World::with(
        "id-fenced",
        support::WorldOptions {
            allowed_namespaces: Some(json!({"matchLabels": {"team": "someone-else"}})),
            ..Default::default()
        },
    )
    .await;
    let ids: Api<EmailIdentity> = w.api();
    let domain = format!("{}.example.org", unique("fenced"));
    apply_json(&ids, id_object("fenced", json!({"identity": domain}))).await;
    let id = wait_identity(&ids, "fenced", "Stalled", "True", "AccountNotAllowed").await;
    let (_, _, message) = condition(&id.status.expect("status").conditions, "Ready").expect("Ready");
    assert!(message.contains(&w.ns) && message.contains(&w.account), "{message}");
    let identity_calls: Vec<_> = w
        .all_calls()
        .into_iter()
        .filter(|(k, _)| k.contains("EmailIdentit"))
        .collect();
    assert!(
        identity_calls.is_empty(),
        "no SES call for a fenced namespace: {identity_calls:?}"
    );
    let err = ses_client()
        .await
        .get_email_identity()
        .email_identity(&domain)
        .send()
        .await
        .expect_err("not created");
    assert!(err.into_service_error().is_not_found_exception());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_default_set_in_another_account_is_stalled_and_a_missing_one_waits() {
    let w = World::new("id-other-acct").await;
    let (sets, ids): (Api<ConfigurationSet>, Api<EmailIdentity>) = (w.api(), w.api());
    let other = format!("other-{}", w.ns);
    apply_json::<ses_reputation_operator::api::SesAccount>(
        &Api::all(w.client.clone()),
        json!({"apiVersion": "ses.reputation.io/v1alpha1", "kind": "SesAccount",
               "metadata": {"name": other, "labels": {"test": w.ns}}, "spec": {"region": "eu-west-1"}}),
    )
    .await;
    let domain = format!("{}.example.org", unique("other"));
    apply_json(
        &ids,
        id_object(
            "web",
            json!({"identity": domain, "configurationSetRef": {"name": "elsewhere"}}),
        ),
    )
    .await;
    let id = wait_identity(&ids, "web", "Reconciling", "True", "ConfigurationSetNotFound").await;
    let (_, _, message) = condition(&id.status.expect("status").conditions, "Reconciling").expect("Reconciling");
    assert!(message.contains("elsewhere"), "{message}");

    apply_json(
        &sets,
        cs_object("elsewhere", json!({"name": unique("elsewhere"), "accountRef": other})),
    )
    .await;
    let id = wait_identity(&ids, "web", "Stalled", "True", "ConfigurationSetInOtherAccount").await;
    let (_, _, message) = condition(&id.status.expect("status").conditions, "Stalled").expect("Stalled");
    assert!(message.contains("another SesAccount"), "{message}");

    // The identity's account is not deleted while the identity lives in it.
    let accounts: Api<ses_reputation_operator::api::SesAccount> = Api::all(w.client.clone());
    accounts
        .delete(&w.account, &DeleteParams::default())
        .await
        .expect("delete account");
    let wanted = format!("EmailIdentity {}/web", w.ns);
    eventually("account waits for the identity", Duration::from_secs(30), || async {
        let acct = accounts.get(&w.account).await.map_err(|e| e.to_string())?;
        let conds = acct.status.map(|s| s.conditions).unwrap_or_default();
        match condition(&conds, "Reconciling") {
            Some((s, r, m)) if s == "True" && r == "InUse" && m.contains(&wanted) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    ids.delete("web", &DeleteParams::default())
        .await
        .expect("delete identity");
    eventually("identity and then account gone", Duration::from_secs(30), || async {
        let left = (
            ids.get_opt("web").await.map_err(|e| e.to_string())?.is_some(),
            accounts.get_opt(&w.account).await.map_err(|e| e.to_string())?.is_some(),
        );
        if left == (false, false) {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    })
    .await;
}

/// What Flux and kpt see (kstatus, the real library): pending verification
/// is InProgress, a verified identity Current, AWS's FAILED a Failed dead
/// end with a one-line message.
#[tokio::test(flavor = "multi_thread")]
async fn kstatus_reads_pending_as_in_progress_verified_as_current_and_failed_as_failed() {
    use crate::support::kstatus::kstatus;
    let w = World::new("id-kstatus").await;
    let ids: Api<EmailIdentity> = w.api();
    let (ok, bad) = (
        format!("{}.example.org", unique("ks-ok")),
        format!("{}.example.org", unique("ks-bad")),
    );
    apply_json(&ids, id_object("ok", json!({"identity": ok}))).await;
    apply_json(&ids, id_object("bad", json!({"identity": bad}))).await;
    // (status, words of the message): before the operator's first status
    // write kstatus says InProgress too, for the unobserved generation.
    let wait = |name: &'static str, want: &'static str, saying: String| {
        let ids = ids.clone();
        async move {
            eventually(
                &format!("kstatus {want} for {name}"),
                Duration::from_secs(60),
                || async {
                    let obj = ids.get(name).await.map_err(|e| e.to_string())?;
                    match kstatus(&obj) {
                        (status, message) if status == want && message.contains(&saying) => Ok(message),
                        other => Err(format!("{other:?}")),
                    }
                },
            )
            .await
        }
    };
    wait("ok", "InProgress", "waiting for AWS to verify".into()).await;

    verify_as(&ok, json!({"verification": "SUCCESS"})).await;
    wait("ok", "Current", String::new()).await;

    verify_as(&bad, json!({"verification": "FAILED", "error_type": "TYPE_NOT_FOUND"})).await;
    let message = wait("bad", "Failed", "TYPE_NOT_FOUND".into()).await;
    assert!(message.contains(&bad), "{message}");
}

async fn verify_as(identity: &str, update: Value) {
    emulator::Emulator.set_identity(REGION, identity, update).await;
}

/// A tenant names another tenant's domain: its identity is Stalled without
/// saying whose the domain is, `adopt` does not help (the identity has an
/// owner), and deleting its object deletes nothing; nothing is written to
/// the victim's identity (the emulator's per-resource write log).
#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_cannot_take_over_or_delete_another_tenants_identity() {
    let victim = World::new("id-victim").await;
    let victim_ids: Api<EmailIdentity> = victim.api();
    let domain = format!("{}.example.org", unique("victim"));
    apply_json(&victim_ids, id_object("brand", json!({"identity": domain}))).await;
    wait_identity(&victim_ids, "brand", "Reconciling", "True", "VerificationPending").await;
    let resource = format!("identity/{domain}");
    let before = emulator::Emulator.writes_to(&resource).await;
    assert_eq!(before.get("sesv2:CreateEmailIdentity"), Some(&1), "{before:?}");

    let w = World::new("id-attacker").await;
    // Even an account that lets the attacker adopt does not hand over an
    // identity another object owns.
    let accounts: Api<ses_reputation_operator::api::SesAccount> = Api::all(w.client.clone());
    accounts
        .patch(
            &w.account,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"adoption": {"allowedNamespaces": {}}}})),
        )
        .await
        .expect("allow adoption");
    let tenant = support::tenant_client(&w.client, &w.ns).await;
    let ids: Api<EmailIdentity> = Api::namespaced(tenant, &w.ns);
    apply_json(
        &ids,
        id_object(
            "mine",
            json!({"identity": domain, "adopt": true, "deletionPolicy": "Delete"}),
        ),
    )
    .await;
    let id = wait_identity(&ids, "mine", "Stalled", "True", "AlreadyExists").await;
    let (status, summary) = crate::support::kstatus::kstatus(&id);
    assert_eq!(status, "Failed", "{summary}");
    let messages: String = id
        .status
        .expect("status")
        .conditions
        .iter()
        .map(|c| c.message.clone())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(messages.contains("owned by another resource"), "{messages}");
    assert!(
        !messages.contains(&victim.ns) && !messages.contains("brand"),
        "names the victim:\n{messages}"
    );

    ids.delete("mine", &DeleteParams::default()).await.expect("delete");
    eventually("attacker identity gone", Duration::from_secs(30), || async {
        match ids.get_opt("mine").await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(_) => Err("still there".to_string()),
        }
    })
    .await;
    assert_eq!(
        emulator::Emulator.writes_to(&resource).await,
        before,
        "nothing written to the victim's identity"
    );
    ses_client()
        .await
        .get_email_identity()
        .email_identity(&domain)
        .send()
        .await
        .expect("the victim's identity is still there");
}
