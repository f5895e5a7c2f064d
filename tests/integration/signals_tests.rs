//! SES's own signals in Kubernetes, through the emulator: the sending
//! quota (QuotaHealthy, Events, the SNS alert), Auto Validation on sets and
//! the account (read back with the SDK), the DMARC record of a domain, and
//! AWS's findings on the identities they name.

use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::{Value, json};
use ses_reputation_operator::api::{ConfigurationSet, EmailIdentity, SesAccount};

use crate::support::argocd::argocd_health;
use crate::support::identities::{dns_endpoint_resource, id_object, install_external_dns_crd, wait_identity};
use crate::support::kstatus::kstatus;
use crate::support::{
    World, WorldOptions, apply_json, condition, cs_object, emulator, eventually, unique, wait_condition, wait_event,
    wait_set_ready,
};

/// A World in its own region, reading AWS every 2 s and rates every second.
async fn world(prefix: &str, region: &'static str) -> World {
    World::with(
        prefix,
        WorldOptions {
            region,
            drift: Duration::from_secs(2),
            rate_interval: Duration::from_secs(1),
            ..Default::default()
        },
    )
    .await
}

/// Waits until set `name` records the tenant it joined; returns its name.
async fn wait_joined(sets: &Api<ConfigurationSet>, name: &str) -> String {
    eventually("the set joined its tenant", Duration::from_secs(60), || async {
        let cs = sets.get(name).await.map_err(|e| e.to_string())?;
        cs.status.and_then(|s| s.tenant).ok_or("no tenant yet".to_string())
    })
    .await
}

/// Waits until SES reports no tenant named `tenant`.
async fn wait_tenant_gone(ses: &aws_sdk_sesv2::Client, tenant: &str) {
    eventually("the tenant deleted", Duration::from_secs(60), || async {
        match ses.get_tenant().tenant_name(tenant).send().await {
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found_exception()) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

/// Waits until the account's condition `type_` has `status` and `reason`.
async fn wait_account(accounts: &Api<SesAccount>, name: &str, type_: &str, status: &str, reason: &str) -> SesAccount {
    eventually(
        &format!("SesAccount {type_}={status} ({reason})"),
        Duration::from_secs(30),
        || async {
            let a = accounts.get(name).await.map_err(|e| e.to_string())?;
            let conds = a.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default();
            match condition(&conds, type_) {
                Some((s, r, _)) if s == status && r == reason => Ok(a),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await
}

async fn apply_account(w: &World, region: &str, extra: Value) {
    let mut spec = json!({"region": region});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    apply_json(
        &Api::<SesAccount>::all(w.client.clone()),
        json!({
            "apiVersion": "ses.reputation.io/v1alpha1", "kind": "SesAccount",
            "metadata": {"name": w.account, "labels": {"test": w.ns}},
            "spec": spec,
        }),
    )
    .await;
}

/// Events about `name` with `reason` in `ns`.
async fn count_events(w: &World, ns: &str, name: &str, reason: &str) -> usize {
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(w.client.clone(), ns);
    let list = events.list(&Default::default()).await.expect("events");
    list.items
        .iter()
        .filter(|e| e.reason.as_deref() == Some(reason) && e.involved_object.name.as_deref() == Some(name))
        .map(|e| e.count.unwrap_or(1).max(1) as usize)
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn quota_at_85_percent_is_warning_and_at_96_critical_with_one_event_and_alert_each() {
    const REGION: &str = "ap-south-1";
    let w = world("quota", REGION).await;
    let accounts: Api<SesAccount> = Api::all(w.client.clone());
    let (topic, queue) = emulator::topic_with_queue(REGION, "quota-alerts").await;
    emulator::admin_post(
        "/_emulator/account",
        json!({"region": REGION, "max_24_hour_send": 50000, "sent_last_24_hours": 1000}),
    )
    .await;
    apply_account(&w, REGION, json!({"quota": {"notifyTopicArn": topic}})).await;
    // The operator may have read the account before the quota was set.
    eventually("QuotaHealthy at 2%", Duration::from_secs(30), || async {
        let a = accounts.get(&w.account).await.map_err(|e| e.to_string())?;
        let conds = a.status.map(|s| s.conditions).unwrap_or_default();
        match condition(&conds, "QuotaHealthy") {
            Some((s, r, m)) if s == "True" && r == "Healthy" && m.contains("2.0%") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    emulator::admin_post(
        "/_emulator/account",
        json!({"region": REGION, "sent_last_24_hours": 42500}),
    )
    .await;
    let a = wait_account(&accounts, &w.account, "QuotaHealthy", "False", "Warning").await;
    let (_, _, message) = condition(&a.status.expect("status").conditions, "QuotaHealthy").expect("condition");
    assert!(message.contains("85.0%") && message.contains("80.0%"), "{message}");
    wait_event(&w.client, "default", &w.account, "QuotaWarning").await;

    emulator::admin_post(
        "/_emulator/account",
        json!({"region": REGION, "sent_last_24_hours": 48000}),
    )
    .await;
    let critical = wait_account(&accounts, &w.account, "QuotaHealthy", "False", "Critical").await;
    wait_event(&w.client, "default", &w.account, "QuotaCritical").await;
    // Argo CD shows it as Degraded with the condition's one line; for
    // kstatus (Flux) the account itself is still Current: it works, it is
    // the sending that is about to stop.
    let (health, message) = argocd_health(&critical);
    assert_eq!(health, "Degraded", "{message}");
    assert!(message.contains("96.0%"), "{message}");
    assert_eq!(kstatus(&critical).0, "Current");

    // Several more reads at the same level: still one Event each.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(count_events(&w, "default", &w.account, "QuotaWarning").await, 1);
    assert_eq!(count_events(&w, "default", &w.account, "QuotaCritical").await, 1);

    // The alerts on the topic: one per change, the last one Critical.
    let sqs = aws_sdk_sqs::Client::new(&emulator::sdk_config_in(REGION).await);
    let alerts: Vec<Value> = eventually("two quota alerts", Duration::from_secs(30), || async {
        let got = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let bodies: Vec<Value> = got
            .messages()
            .iter()
            .filter_map(|m| m.body().and_then(|b| serde_json::from_str(b).ok()))
            .collect();
        if bodies.len() >= 2 {
            Ok(bodies)
        } else {
            Err(format!("{bodies:?}"))
        }
    })
    .await;
    let levels: Vec<&str> = alerts.iter().filter_map(|a| a["level"].as_str()).collect();
    assert_eq!(levels, ["Warning", "Critical"], "{alerts:?}");
    assert_eq!(alerts[1]["kind"], "SesQuotaAlert");
    assert_eq!(alerts[1]["sesAccount"], w.account.as_str());
    assert_eq!(alerts[1]["used"], 0.96);

    // Back under the warning threshold: a Normal Event, condition True.
    emulator::admin_post(
        "/_emulator/account",
        json!({"region": REGION, "sent_last_24_hours": null, "max_24_hour_send": null}),
    )
    .await;
    wait_account(&accounts, &w.account, "QuotaHealthy", "True", "Healthy").await;
    wait_event(&w.client, "default", &w.account, "QuotaHealthy").await;

    // Admission: warning above critical is refused, naming the rule.
    let err = accounts
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "ses.reputation.io/v1alpha1", "kind": "SesAccount",
                "metadata": {"name": unique("quota-bad")},
                "spec": {"region": REGION, "quota": {"warning": 0.9, "critical": 0.5}},
            }))
            .expect("object"),
        )
        .await
        .expect_err("warning above critical refused");
    assert!(
        err.to_string()
            .contains("quota.warning must not be above quota.critical"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_validation_round_trips_on_sets_and_the_account_and_drift_is_put_back() {
    const REGION: &str = "me-south-1";
    let w = world("validation", REGION).await;
    apply_account(
        &w,
        REGION,
        json!({"autoValidation": {"enabled": true, "confidenceThreshold": "MEDIUM"}}),
    )
    .await;
    let sets: Api<ConfigurationSet> = w.api();
    let aws_name = unique("validated");
    apply_json(
        &sets,
        cs_object(
            "validated",
            json!({"name": aws_name, "suppression": {"reasons": ["BOUNCE"]},
                   "autoValidation": {"enabled": true, "confidenceThreshold": "HIGH"}}),
        ),
    )
    .await;
    wait_set_ready(&sets, "validated").await;
    let ses = aws_sdk_sesv2::Client::new(&emulator::sdk_config_in(REGION).await);
    let read_set = || async {
        let got = ses
            .get_configuration_set()
            .configuration_set_name(&aws_name)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let s = got.suppression_options().ok_or("no suppression options")?;
        let t = s
            .validation_options()
            .and_then(|v| v.condition_threshold())
            .ok_or("no validation options")?;
        let reasons: Vec<String> = s.suppressed_reasons().iter().map(|r| r.as_str().to_string()).collect();
        Ok::<_, String>((
            t.condition_threshold_enabled().as_str().to_string(),
            t.overall_confidence_threshold()
                .map(|c| c.confidence_verdict_threshold().as_str().to_string()),
            reasons,
        ))
    };
    let set = read_set().await.expect("set readback");
    assert_eq!(set, ("ENABLED".into(), Some("HIGH".into()), vec!["BOUNCE".to_string()]));

    let account = eventually("account validation in AWS", Duration::from_secs(30), || async {
        let got = ses.get_account().send().await.map_err(|e| e.to_string())?;
        let t = got
            .suppression_attributes()
            .and_then(|a| a.validation_attributes())
            .and_then(|v| v.condition_threshold())
            .ok_or("no validation attributes")?;
        Ok::<_, String>((
            t.condition_threshold_enabled().as_str().to_string(),
            t.overall_confidence_threshold()
                .map(|c| c.confidence_verdict_threshold().as_str().to_string()),
        ))
    })
    .await;
    assert_eq!(account, ("ENABLED".into(), Some("MEDIUM".into())));
    let accounts: Api<SesAccount> = Api::all(w.client.clone());
    eventually("account status shows validation", Duration::from_secs(30), || async {
        let a = accounts.get(&w.account).await.map_err(|e| e.to_string())?;
        let v = a.status.and_then(|s| s.auto_validation).ok_or("none yet")?;
        let shown = serde_json::to_value(&v).map_err(|e| e.to_string())?;
        if shown == json!({"enabled": true, "confidenceThreshold": "MEDIUM"}) {
            Ok(())
        } else {
            Err(shown.to_string())
        }
    })
    .await;

    // Someone turns validation off on the set behind the operator's back,
    // keeping the reasons: the drift check puts the spec back, reasons kept.
    let off = aws_sdk_sesv2::types::SuppressionConditionThreshold::builder()
        .condition_threshold_enabled(aws_sdk_sesv2::types::FeatureStatus::Disabled)
        .build()
        .expect("threshold");
    ses.put_configuration_set_suppression_options()
        .configuration_set_name(&aws_name)
        .suppressed_reasons(aws_sdk_sesv2::types::SuppressionListReason::Bounce)
        .validation_options(
            aws_sdk_sesv2::types::SuppressionValidationOptions::builder()
                .condition_threshold(off)
                .build(),
        )
        .send()
        .await
        .expect("out-of-band change");
    eventually("set validation put back", Duration::from_secs(30), || async {
        let got = read_set().await?;
        if got == ("ENABLED".into(), Some("HIGH".into()), vec!["BOUNCE".to_string()]) {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await;

    // Admission: a threshold with validation off says which rule.
    let err = sets
        .create(
            &PostParams::default(),
            &serde_json::from_value(cs_object(
                "bad-validation",
                json!({"autoValidation": {"enabled": false, "confidenceThreshold": "HIGH"}}),
            ))
            .expect("object"),
        )
        .await
        .expect_err("threshold without validation refused");
    assert!(
        err.to_string()
            .contains("autoValidation.confidenceThreshold applies only while autoValidation.enabled is true"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dmarc_policy_publishes_the_dmarc_record_in_status_and_the_dns_endpoint() {
    let w = World::new("dmarc").await;
    install_external_dns_crd(&w.client).await;
    let ids: Api<EmailIdentity> = w.api();
    let endpoints: Api<DynamicObject> = Api::namespaced_with(w.client.clone(), &w.ns, &dns_endpoint_resource());
    let domain = format!("{}.example.org", unique("dmarc"));
    apply_json(
        &ids,
        id_object(
            "brand",
            json!({"identity": domain, "dns": {"externalDNS": true},
                   "dmarc": {"policy": "quarantine", "rua": [format!("mailto:dmarc@{domain}")], "percentage": 25}}),
        ),
    )
    .await;
    let id = wait_identity(&ids, "brand", "Reconciling", "True", "VerificationPending").await;
    let expected = format!("\"v=DMARC1; p=quarantine; rua=mailto:dmarc@{domain}; pct=25\"");
    let dmarc: Vec<(String, String)> = id
        .status
        .expect("status")
        .dns_records
        .into_iter()
        .filter(|r| r.name == format!("_dmarc.{domain}"))
        .map(|r| (r.type_, r.value))
        .collect();
    assert_eq!(dmarc, [("TXT".to_string(), expected.clone())]);
    eventually("DMARC record in the DNSEndpoint", Duration::from_secs(30), || async {
        let ep = endpoints
            .get_opt("brand")
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no DNSEndpoint yet")?;
        let endpoints = ep.data["spec"]["endpoints"].as_array().cloned().unwrap_or_default();
        let found = endpoints.iter().any(|e| {
            e["dnsName"] == format!("_dmarc.{domain}").as_str()
                && e["recordType"] == "TXT"
                && e["targets"] == json!([expected])
        });
        if found { Ok(()) } else { Err(format!("{endpoints:?}")) }
    })
    .await;

    // Admission names the field for an address identity and a bad report URI.
    let raw_ids: Api<DynamicObject> =
        Api::namespaced_with(w.client.clone(), &w.ns, &ApiResource::erase::<EmailIdentity>(&()));
    for (spec, message) in [
        (
            json!({"identity": format!("a@{domain}"), "dmarc": {"policy": "none"}}),
            "spec.dmarc belongs on the EmailIdentity of the domain",
        ),
        (
            json!({"identity": domain, "dmarc": {"policy": "none", "rua": ["dmarc@example.org"]}}),
            "spec.dmarc.rua[0]",
        ),
        (
            json!({"identity": domain, "dmarc": {"policy": "none", "percentage": 101}}),
            "spec.dmarc.percentage",
        ),
        (
            json!({"identity": domain, "dmarc": {"policy": "monitor"}}),
            "spec.dmarc.policy",
        ),
    ] {
        // Untyped: the bad values would not even deserialize here.
        let err = raw_ids
            .create(
                &PostParams::default(),
                &serde_json::from_value(id_object(&unique("bad-dmarc"), spec.clone())).expect("object"),
            )
            .await
            .expect_err("bad DMARC refused");
        assert!(err.to_string().contains(message), "{spec}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_high_dmarc_finding_shows_on_the_identity_and_the_account_and_clears_when_closed() {
    const REGION: &str = "mx-central-1";
    let w = world("findings", REGION).await;
    let ids: Api<EmailIdentity> = w.api();
    let domain = format!("{}.example.org", unique("findings"));
    apply_json(&ids, id_object("brand", json!({"identity": domain}))).await;
    // Read once with nothing open: the condition says so (not Unknown).
    let id = wait_identity(&ids, "brand", "Findings", "False", "NoneOpen").await;
    let arn = id.status.and_then(|s| s.arn).expect("identity ARN");

    let description = "Your domain has no DMARC record: publish one (p=none at least)";
    emulator::admin_post(
        "/_emulator/recommendation",
        json!({"region": REGION, "resource_arn": arn, "type": "DMARC", "impact": "HIGH",
               "status": "OPEN", "description": description}),
    )
    .await;
    let id = wait_identity(&ids, "brand", "Findings", "True", "HighImpactOpen").await;
    let findings = id.status.expect("status").findings;
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(
        (
            findings[0].type_.as_str(),
            findings[0].impact.as_str(),
            findings[0].status.as_str()
        ),
        ("DMARC", "HIGH", "OPEN")
    );
    assert_eq!(findings[0].description, description);
    let event = wait_event(&w.client, &w.ns, "brand", "HighImpactFinding").await;
    assert!(
        event.message.as_deref().is_some_and(|m| m.contains("DMARC")),
        "{event:?}"
    );
    let accounts: Api<SesAccount> = Api::all(w.client.clone());
    let account = wait_account(&accounts, &w.account, "Findings", "True", "HighImpactOpen").await;
    let counts = serde_json::to_value(account.status.and_then(|s| s.findings)).expect("json");
    assert_eq!(
        counts,
        json!({"open": [{"type": "DMARC", "impact": "HIGH", "count": 1}]})
    );

    // Closed in AWS: gone from status, condition back to NoneOpen, and
    // the one Event was the only one.
    emulator::admin_post(
        "/_emulator/recommendation",
        json!({"region": REGION, "resource_arn": arn, "type": "DMARC", "status": "FIXED"}),
    )
    .await;
    let id = wait_identity(&ids, "brand", "Findings", "False", "NoneOpen").await;
    assert!(id.status.expect("status").findings.is_empty());
    wait_account(&accounts, &w.account, "Findings", "False", "NoneOpen").await;
    assert_eq!(count_events(&w, &w.ns, "brand", "HighImpactFinding").await, 1);
}

/// SendEmail from `from` through `set` as tenant `tenant` to the simulator.
async fn send_as_tenant(ses: &aws_sdk_sesv2::Client, from: &str, set: &str, tenant: &str) -> Result<(), String> {
    crate::support::live::send_from(ses, from, set, "success@simulator.amazonses.com", Some(tenant)).await
}

/// The ARNs a tenant holds, read with the SDK.
async fn tenant_resources(ses: &aws_sdk_sesv2::Client, tenant: &str) -> Vec<String> {
    let mut arns: Vec<String> = ses
        .list_tenant_resources()
        .tenant_name(tenant)
        .send()
        .await
        .expect("ListTenantResources")
        .tenant_resources()
        .iter()
        .filter_map(|r| r.resource_arn().map(str::to_string))
        .collect();
    arns.sort();
    arns
}

#[tokio::test(flavor = "multi_thread")]
async fn a_namespace_gets_one_tenant_holding_its_resources_and_ses_disabling_it_shows_on_its_sets() {
    const REGION: &str = "ap-southeast-3";
    let w = world("tenants", REGION).await;
    apply_account(&w, REGION, json!({"tenants": {"reputationPolicy": "strict"}})).await;
    let sets: Api<ConfigurationSet> = w.api();
    let ids: Api<EmailIdentity> = w.api();
    let aws_name = unique("orders");
    let domain = format!("{}.example.org", unique("tenant"));
    apply_json(&sets, cs_object("orders", json!({"name": aws_name}))).await;
    apply_json(&ids, id_object("shop", json!({"identity": domain}))).await;
    let cs = wait_set_ready(&sets, "orders").await;
    let set_arn = cs.status.as_ref().and_then(|s| s.arn.clone()).expect("set ARN");
    let accounts: Api<SesAccount> = Api::all(w.client.clone());
    let ses = aws_sdk_sesv2::Client::new(&emulator::sdk_config_in(REGION).await);

    // One tenant for the namespace, holding the set and the identity, with
    // the strict policy, recorded on the account and on the set.
    let account = eventually("the namespace's tenant holds both", Duration::from_secs(60), || async {
        let a = accounts.get(&w.account).await.map_err(|e| e.to_string())?;
        let tenants = a.status.as_ref().map(|s| s.tenants.clone()).unwrap_or_default();
        match tenants.as_slice() {
            [t] if t.resources == 2 && t.sending.as_deref() == Some("ENABLED") => Ok(a),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let tenant = account.status.expect("status").tenants[0].clone();
    assert_eq!(tenant.namespace, w.ns);
    assert!(
        tenant
            .policy
            .as_deref()
            .is_some_and(|p| p.ends_with(":aws:reputation-policy/strict")),
        "{tenant:?}"
    );
    let identity_arn = format!("arn:aws:ses:{REGION}:123456789012:identity/{domain}");
    let mut want = vec![set_arn.clone(), identity_arn];
    want.sort();
    assert_eq!(tenant_resources(&ses, &tenant.name).await, want);
    let got = ses
        .get_tenant()
        .tenant_name(&tenant.name)
        .send()
        .await
        .expect("GetTenant");
    let tags: Vec<(String, String)> = got
        .tenant()
        .map(|t| {
            t.tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        tags,
        [(
            "ses.reputation.io/owner".to_string(),
            format!("test/{}/SesAccount:{}", w.ns, w.account)
        )]
    );
    eventually("the set names its tenant", Duration::from_secs(30), || async {
        let cs = sets.get("orders").await.map_err(|e| e.to_string())?;
        let status = cs.status.unwrap_or_default();
        let sending = condition(&status.conditions, "TenantSending");
        if status.tenant.as_deref() == Some(tenant.name.as_str()) && sending.as_ref().is_some_and(|c| c.0 == "True") {
            Ok(())
        } else {
            Err(format!("{:?} {sending:?}", status.tenant))
        }
    })
    .await;
    send_as_tenant(&ses, &format!("orders@{domain}"), &aws_name, &tenant.name)
        .await
        .expect("mail as the enabled tenant");

    // SES disables the tenant: its set says so within a read, with AWS's
    // cause, and a Warning Event; mail as that tenant is refused while the
    // set's own SendingEnabled stays true (mail without TenantName flows).
    let cause = "bounce rate above the strict policy";
    emulator::admin_post(
        "/_emulator/reputation-entity",
        json!({"region": REGION, "reference": tenant.arn, "ses_status": "DISABLED", "cause": cause}),
    )
    .await;
    let cs = wait_condition(&sets, "orders", "TenantSending", "False", "DisabledBySes").await;
    let conds = cs.status.expect("status").conditions;
    let (_, _, message) = condition(&conds, "TenantSending").expect("TenantSending");
    assert!(message.contains(cause) && message.contains(&tenant.name), "{message}");
    assert_eq!(condition(&conds, "SendingEnabled").map(|c| c.0), Some("True".into()));
    wait_event(&w.client, &w.ns, "orders", "TenantDisabledBySes").await;
    // The identity of the namespace says so too, and the account shows
    // SES's status with its cause and time.
    wait_identity(&ids, "shop", "TenantSending", "False", "DisabledBySes").await;
    let a = accounts.get(&w.account).await.expect("account");
    let t = a.status.expect("status").tenants.into_iter().next().expect("tenant");
    assert_eq!(
        (t.sending.as_deref(), t.ses_status.as_deref(), t.ses_cause.as_deref()),
        (Some("DISABLED"), Some("DISABLED"), Some(cause))
    );
    assert!(t.ses_status_since.is_some(), "{t:?}");
    assert_eq!(
        send_as_tenant(&ses, &format!("orders@{domain}"), &aws_name, &tenant.name).await,
        Err("SendingPausedException".to_string())
    );
    emulator::admin_post(
        "/_emulator/reputation-entity",
        json!({"region": REGION, "reference": tenant.arn, "ses_status": "ENABLED", "cause": null}),
    )
    .await;
    wait_condition(&sets, "orders", "TenantSending", "True", "Enabled").await;

    // Nothing left in the namespace: the tenant goes, nothing orphaned.
    sets.delete("orders", &Default::default()).await.expect("delete set");
    ids.delete("shop", &Default::default()).await.expect("delete identity");
    wait_tenant_gone(&ses, &tenant.name).await;
    eventually("status lists no tenant", Duration::from_secs(30), || async {
        let a = accounts.get(&w.account).await.map_err(|e| e.to_string())?;
        let tenants = a.status.map(|s| s.tenants).unwrap_or_default();
        if tenants.is_empty() {
            Ok(())
        } else {
            Err(format!("{tenants:?}"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_the_operator_did_not_create_is_never_touched() {
    const REGION: &str = "eu-south-2";
    let w = world("foreign-tenant", REGION).await;
    // Someone made a tenant under the very name this namespace would get.
    let name = ses_reputation_operator::domain::tenant::tenant_name(
        &ses_reputation_operator::domain::tenant::owner_value("test", &w.account, &w.ns),
        &w.ns,
    );
    let ses = aws_sdk_sesv2::Client::new(&emulator::sdk_config_in(REGION).await);
    ses.create_tenant()
        .tenant_name(&name)
        .send()
        .await
        .expect("foreign tenant");
    apply_account(&w, REGION, json!({"tenants": {"reputationPolicy": "none"}})).await;
    let sets: Api<ConfigurationSet> = w.api();
    apply_json(&sets, cs_object("orders", json!({"name": unique("foreign")}))).await;
    wait_set_ready(&sets, "orders").await;
    let accounts: Api<SesAccount> = Api::all(w.client.clone());
    let a = wait_account(&accounts, &w.account, "TenantsReady", "False", "TenantNotOurs").await;
    let (_, _, message) = condition(&a.status.expect("status").conditions, "TenantsReady").expect("condition");
    assert!(message.contains("left untouched"), "{message}");
    // Untouched: no association, no tag, no policy change, still there
    // after the account (and its tenants setting) is gone.
    assert!(tenant_resources(&ses, &name).await.is_empty());
    let entity_arn = ses
        .get_tenant()
        .tenant_name(&name)
        .send()
        .await
        .expect("GetTenant")
        .tenant()
        .and_then(|t| t.tenant_arn().map(str::to_string))
        .expect("ARN");
    let tags = ses
        .get_tenant()
        .tenant_name(&name)
        .send()
        .await
        .expect("GetTenant")
        .tenant()
        .map(|t| t.tags().len())
        .unwrap_or_default();
    assert_eq!(tags, 0);
    let entity = ses
        .get_reputation_entity()
        .reputation_entity_type(aws_sdk_sesv2::types::ReputationEntityType::Resource)
        .reputation_entity_reference(&entity_arn)
        .send()
        .await
        .expect("GetReputationEntity");
    assert!(
        entity
            .reputation_entity()
            .and_then(|e| e.reputation_management_policy())
            .is_none_or(|p| !p.ends_with("/none")),
        "the policy was left as it was"
    );
    apply_account(&w, REGION, json!({})).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        ses.get_tenant().tenant_name(&name).send().await.is_ok(),
        "a foreign tenant is never deleted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_pausing_at_tenant_level_stops_tenant_mail_and_the_resume_lets_it_through() {
    const REGION: &str = "ca-west-1";
    let w = world("tenant-pause", REGION).await;
    apply_account(&w, REGION, json!({"tenants": {}})).await;
    let sets: Api<ConfigurationSet> = w.api();
    let ids: Api<EmailIdentity> = w.api();
    let aws_name = unique("promo");
    let domain = format!("{}.example.org", unique("tpause"));
    let mut set = cs_object("promo", json!({"name": aws_name}));
    set["metadata"]["labels"] = json!({"tier": "guarded"});
    apply_json(&sets, set).await;
    apply_json(&ids, id_object("shop", json!({"identity": domain}))).await;
    apply_json(
        &w.api::<ses_reputation_operator::api::ReputationPolicy>(),
        json!({
            "apiVersion": "ses.reputation.io/v1alpha1", "kind": "ReputationPolicy",
            "metadata": {"name": "guard"},
            "spec": {"selector": {"matchLabels": {"tier": "guarded"}},
                     "actions": {"pauseSending": true, "pauseTenant": true}},
        }),
    )
    .await;
    wait_set_ready(&sets, "promo").await;
    let tenant = wait_joined(&sets, "promo").await;
    let ses = aws_sdk_sesv2::Client::new(&emulator::sdk_config_in(REGION).await);
    let from = format!("promo@{domain}");
    send_as_tenant(&ses, &from, &aws_name, &tenant)
        .await
        .expect("mail before the pause");

    emulator::seed_bounce_in(REGION, &aws_name, 0.08, 30).await;
    eventually("the tenant refuses mail", Duration::from_secs(30), || async {
        match send_as_tenant(&ses, &from, &aws_name, &tenant).await {
            Err(code) if code == "SendingPausedException" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    wait_event(&w.client, &w.ns, "promo", "TenantPaused").await;
    let cs = wait_condition(&sets, "promo", "TenantSending", "False", "DisabledByCustomer").await;
    assert_eq!(
        cs.status.as_ref().and_then(|s| s.tenant_paused.as_deref()),
        Some(tenant.as_str())
    );

    // Meanwhile SES itself disables the tenant. The documented resume
    // reinstates what the policy did, and says SES still holds the tenant:
    // nothing claims that tenant mail flows.
    let tenant_arn = eventually("the tenant's ARN", Duration::from_secs(30), || async {
        let a = Api::<SesAccount>::all(w.client.clone())
            .get(&w.account)
            .await
            .map_err(|e| e.to_string())?;
        a.status
            .and_then(|s| s.tenants.into_iter().find(|t| t.name == tenant))
            .and_then(|t| t.arn)
            .ok_or("no ARN yet".to_string())
    })
    .await;
    emulator::admin_post(
        "/_emulator/reputation-entity",
        json!({"region": REGION, "reference": tenant_arn, "ses_status": "DISABLED", "cause": "complaints"}),
    )
    .await;
    emulator::seed_bounce_in(REGION, &aws_name, 0.001, 0).await;
    sets.patch(
        "promo",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(
            json!({"metadata": {"annotations": {"ses.reputation.io/resume-at": jiff::Timestamp::now().to_string()}}}),
        ),
    )
    .await
    .expect("annotate");
    let resumed = wait_event(&w.client, &w.ns, "promo", "TenantResumed").await;
    let note = resumed.message.unwrap_or_default();
    assert!(note.contains("SES itself still holds it disabled"), "{note}");
    let cs = eventually(
        "SendingEnabled says the tenant is still off",
        Duration::from_secs(30),
        || async {
            let cs = sets.get("promo").await.map_err(|e| e.to_string())?;
            let conds = cs.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default();
            match (condition(&conds, "SendingEnabled"), condition(&conds, "TenantSending")) {
                (Some((s, _, m)), Some((t, r, _)))
                    if s == "True" && t == "False" && r == "DisabledBySes" && m.contains("complaints") =>
                {
                    Ok(cs)
                }
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert_eq!(cs.status.and_then(|s| s.tenant_paused), None);
    assert_eq!(
        send_as_tenant(&ses, &from, &aws_name, &tenant).await,
        Err("SendingPausedException".to_string())
    );
    // SES lets it go: tenant mail flows again.
    emulator::admin_post(
        "/_emulator/reputation-entity",
        json!({"region": REGION, "reference": tenant_arn, "ses_status": "ENABLED", "cause": null}),
    )
    .await;
    eventually("tenant mail flows again", Duration::from_secs(30), || async {
        send_as_tenant(&ses, &from, &aws_name, &tenant).await
    })
    .await;

    // Admission: pauseTenant alone is refused, naming the rule.
    let policies: Api<DynamicObject> = Api::namespaced_with(
        w.client.clone(),
        &w.ns,
        &ApiResource::erase::<ses_reputation_operator::api::ReputationPolicy>(&()),
    );
    let err = policies
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "ses.reputation.io/v1alpha1", "kind": "ReputationPolicy",
                "metadata": {"name": "tenant-only"},
                "spec": {"selector": {}, "actions": {"pauseTenant": true}},
            }))
            .expect("object"),
        )
        .await
        .expect_err("pauseTenant without pauseSending refused");
    assert!(err.to_string().contains("actions.pauseTenant"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_account_shows_the_live_rate_of_all_its_sets_and_its_breaker_pauses_the_account() {
    use crate::support::live::{SENDER, live_test_set, send, set_stream_with, wait_stream_destination};
    const REGION: &str = "eu-west-1";
    let w = world("account-live", REGION).await;
    emulator::Emulator.set_account(REGION, "HEALTHY", true).await;
    set_stream_with(
        &w,
        REGION,
        true,
        json!({
            "eventStream": {"enabled": true, "breaker": {"window": "15m", "minimumSends": 10}},
            "thresholds": {"bounceRate": {"warning": 0.03, "critical": 0.05}},
            "pauseAccountSending": true,
        }),
    )
    .await;
    let sets: Api<ConfigurationSet> = w.api();
    let (a, b) = (unique("acct-live-a"), unique("acct-live-b"));
    apply_json(&sets, live_test_set("a", &a, "none")).await;
    apply_json(&sets, live_test_set("b", &b, "none")).await;
    wait_stream_destination(&sets, "a").await;
    wait_stream_destination(&sets, "b").await;
    let ses = aws_sdk_sesv2::Client::new(&emulator::sdk_config_in(REGION).await);
    ses.create_email_identity().email_identity(SENDER).send().await.ok();
    // 20 mails over two sets, two of them hard bounces (10%): no set has a
    // breaker of its own, the account's judges their sum.
    for i in 0..18 {
        let set = if i % 2 == 0 { &a } else { &b };
        send(&ses, set, "success@simulator.amazonses.com").await.expect("send");
    }
    send(&ses, &a, "bounce@simulator.amazonses.com").await.expect("bounce");
    send(&ses, &b, "bounce@simulator.amazonses.com").await.expect("bounce");

    let accounts: Api<SesAccount> = Api::all(w.client.clone());
    let account = eventually("the account's live counts", Duration::from_secs(60), || async {
        let acct = accounts.get(&w.account).await.map_err(|e| e.to_string())?;
        let live = acct
            .status
            .as_ref()
            .and_then(|s| s.reputation.as_ref())
            .and_then(|r| r.live.clone())
            .ok_or("no live block yet")?;
        if live.sends == 20 && live.hard_bounces == 2 {
            Ok(acct)
        } else {
            Err(format!("{live:?}"))
        }
    })
    .await;
    let reputation = account
        .status
        .as_ref()
        .and_then(|s| s.reputation.clone())
        .expect("reputation");
    assert_eq!(reputation.source.as_deref(), Some("Events"));
    let live = reputation.live.expect("live");
    assert_eq!((live.window.as_str(), live.complaints), ("15m", 0));
    assert_eq!(live.bounce_rate.as_deref(), Some("0.1"));
    let (status, reason, _) =
        condition(&account.status.expect("status").conditions, "BounceRateHealthy").expect("condition");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "AboveCritical"));

    // The account breaker pauses the whole account in SES.
    eventually("account sending paused in SES", Duration::from_secs(30), || async {
        let got = ses.get_account().send().await.map_err(|e| e.to_string())?;
        if got.sending_enabled() {
            Err("still sending".to_string())
        } else {
            Ok(())
        }
    })
    .await;
    wait_event(&w.client, "default", &w.account, "AccountSendingPaused").await;
    emulator::Emulator.set_account(REGION, "HEALTHY", true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_that_treats_high_findings_as_critical_pauses_the_set_its_identity_sends_through() {
    const REGION: &str = "ap-southeast-5";
    let w = world("findings-policy", REGION).await;
    let sets: Api<ConfigurationSet> = w.api();
    let ids: Api<EmailIdentity> = w.api();
    let aws_name = unique("brand-mail");
    let domain = format!("{}.example.org", unique("brand"));
    let mut set = cs_object("orders", json!({"name": aws_name}));
    set["metadata"]["labels"] = json!({"tier": "guarded"});
    apply_json(&sets, set).await;
    apply_json(
        &ids,
        id_object(
            "brand",
            json!({"identity": domain, "configurationSetRef": {"name": "orders"}}),
        ),
    )
    .await;
    apply_json(
        &w.api::<ses_reputation_operator::api::ReputationPolicy>(),
        json!({
            "apiVersion": "ses.reputation.io/v1alpha1", "kind": "ReputationPolicy",
            "metadata": {"name": "guard"},
            "spec": {"selector": {"matchLabels": {"tier": "guarded"}},
                     "actions": {"pauseSending": true},
                     "findings": {"treatHighAs": "Critical"}},
        }),
    )
    .await;
    wait_set_ready(&sets, "orders").await;
    let id = wait_identity(&ids, "brand", "Findings", "False", "NoneOpen").await;
    let arn = id.status.and_then(|s| s.arn).expect("identity ARN");

    emulator::admin_post(
        "/_emulator/recommendation",
        json!({"region": REGION, "resource_arn": arn, "type": "DMARC", "impact": "HIGH",
               "status": "OPEN", "description": "no DMARC record"}),
    )
    .await;
    let cs = wait_condition(&sets, "orders", "SendingEnabled", "False", "PausedByPolicy").await;
    let status = cs.status.expect("status");
    let reason = status.pause.as_ref().map(|p| p.reason.clone()).unwrap_or_default();
    assert!(reason.contains(&format!("DMARC on {domain}")), "{reason}");
    assert_eq!(
        condition(&status.conditions, "Findings").map(|c| (c.0, c.1)),
        Some(("True".into(), "HighImpactOpen".into()))
    );
    // The rates themselves are not blamed.
    assert_ne!(
        condition(&status.conditions, "BounceRateHealthy").map(|c| c.1),
        Some("AboveCritical".into())
    );
    let ses = aws_sdk_sesv2::Client::new(&emulator::sdk_config_in(REGION).await);
    eventually("SES sending off", Duration::from_secs(10), || async {
        let got = ses
            .get_configuration_set()
            .configuration_set_name(&aws_name)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        match got.sending_options().map(|s| s.sending_enabled()) {
            Some(false) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // Fixed in AWS, then the documented resume: sending is back on and
    // stays on.
    emulator::admin_post(
        "/_emulator/recommendation",
        json!({"region": REGION, "resource_arn": arn, "type": "DMARC", "status": "FIXED"}),
    )
    .await;
    sets.patch(
        "orders",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(
            json!({"metadata": {"annotations": {"ses.reputation.io/resume-at": jiff::Timestamp::now().to_string()}}}),
        ),
    )
    .await
    .expect("annotate");
    eventually("sending resumed", Duration::from_secs(30), || async {
        let cs = sets.get("orders").await.map_err(|e| e.to_string())?;
        let conds = cs.status.map(|s| s.conditions).unwrap_or_default();
        match (condition(&conds, "SendingEnabled"), condition(&conds, "Findings")) {
            (Some((s, _, _)), Some((f, _, _))) if s == "True" && f == "False" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn turning_tenants_off_deletes_the_tenant_and_its_sets_forget_it() {
    const REGION: &str = "eu-central-1";
    let w = world("tenants-off", REGION).await;
    apply_account(&w, REGION, json!({"tenants": {}})).await;
    let sets: Api<ConfigurationSet> = w.api();
    apply_json(&sets, cs_object("orders", json!({"name": unique("tenants-off")}))).await;
    wait_set_ready(&sets, "orders").await;
    let tenant = wait_joined(&sets, "orders").await;
    apply_account(&w, REGION, json!({})).await;
    let ses = aws_sdk_sesv2::Client::new(&emulator::sdk_config_in(REGION).await);
    wait_tenant_gone(&ses, &tenant).await;
    eventually("the set no longer names a tenant", Duration::from_secs(30), || async {
        let cs = sets.get("orders").await.map_err(|e| e.to_string())?;
        let status = cs.status.unwrap_or_default();
        let sending = condition(&status.conditions, "TenantSending");
        if status.tenant.is_none() && sending.is_none() {
            Ok(())
        } else {
            Err(format!("{:?} {sending:?}", status.tenant))
        }
    })
    .await;
    let accounts: Api<SesAccount> = Api::all(w.client.clone());
    let account = accounts.get(&w.account).await.expect("account");
    let status = account.status.expect("status");
    assert!(status.tenants.is_empty(), "{:?}", status.tenants);
    assert!(condition(&status.conditions, "TenantsReady").is_none());
}
