//! SesAccount against the emulator: GetAccount in status, AWS's enforcement
//! status as a condition, account suppression applied, account-level rates.

use std::time::Duration;

use aws_sdk_cloudwatch::types::MetricDatum;
use kube::api::Api;
use serde_json::json;
use ses_reputation_operator::api::SesAccount;

use crate::support::{World, WorldOptions, apply_json, condition, emulator, eventually};

const REGION: &str = "eu-north-1";

/// Waits until the account's condition `type_` satisfies `ok`; returns it as
/// (status, reason, message).
async fn wait_account_condition(
    accounts: &Api<SesAccount>,
    name: &str,
    type_: &str,
    ok: impl Fn(&(String, String, String)) -> bool,
) -> (String, String, String) {
    eventually(&format!("SesAccount {type_}"), Duration::from_secs(30), || async {
        let a = accounts.get(name).await.map_err(|e| e.to_string())?;
        let conds = a.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default();
        match condition(&conds, type_) {
            Some(c) if ok(&c) => Ok(c),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn account_health_suppression_and_rates_show_in_status() {
    let _exclusive = emulator::fault_lock().await; // account state of the region is shared
    emulator::Emulator.set_account(REGION, "HEALTHY", true).await;
    let w = World::with(
        "account",
        WorldOptions {
            region: REGION,
            drift: Duration::from_secs(2),
            rate_interval: Duration::from_secs(1),
            ..Default::default()
        },
    )
    .await;
    let accounts: Api<SesAccount> = Api::all(w.client.clone());
    apply_json(
        &accounts,
        json!({
            "apiVersion": "ses.reputation.io/v1alpha1", "kind": "SesAccount",
            "metadata": {"name": w.account, "labels": {"test": w.ns}},
            "spec": {"region": REGION, "suppression": {"reasons": ["BOUNCE"]}},
        }),
    )
    .await;
    let ses = aws_sdk_sesv2::Client::new(&emulator::sdk_config_in(REGION).await);
    eventually("account suppression applied", Duration::from_secs(30), || async {
        let got = ses.get_account().send().await.map_err(|e| e.to_string())?;
        let reasons: Vec<String> = got
            .suppression_attributes()
            .map(|a| a.suppressed_reasons().iter().map(|r| r.as_str().to_string()).collect())
            .unwrap_or_default();
        if reasons == ["BOUNCE"] {
            Ok(())
        } else {
            Err(format!("{reasons:?}"))
        }
    })
    .await;

    let account = eventually("account Ready and Healthy", Duration::from_secs(30), || async {
        let a = accounts.get(&w.account).await.map_err(|e| e.to_string())?;
        let conds = a.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default();
        match condition(&conds, "EnforcementHealthy") {
            Some((s, _, _)) if s == "True" && condition(&conds, "Ready").is_some_and(|c| c.0 == "True") => Ok(a),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let status = account.status.expect("status");
    let (_, _, ready) = condition(&status.conditions, "Ready").expect("Ready");
    assert!(
        ready.contains("every namespace may use this account"),
        "an open account says so: {ready}"
    );
    assert_eq!(status.account_id.as_deref(), Some("123456789012"));
    assert_eq!(status.enforcement_status.as_deref(), Some("HEALTHY"));
    assert_eq!(status.sending_enabled, Some(true));
    assert!(status.send_quota.is_some_and(|q| q.max_send_rate > 0.0));

    // AWS puts the account under review: the condition says so, in AWS's words.
    emulator::Emulator.set_account(REGION, "PROBATION", true).await;
    let (_, reason, message) =
        wait_account_condition(&accounts, &w.account, "EnforcementHealthy", |c| c.0 == "False").await;
    assert_eq!(reason, "Probation");
    assert!(message.contains("review"), "{message}");

    // Account-level rate (no dimension) against AWS's levels.
    let cw = aws_sdk_cloudwatch::Client::new(&emulator::sdk_config_in(REGION).await);
    cw.put_metric_data()
        .namespace("AWS/SES")
        .metric_data(
            MetricDatum::builder()
                .metric_name("Reputation.BounceRate")
                .value(0.07)
                .build(),
        )
        .send()
        .await
        .expect("put account rate");
    // The reader only reads accounts that have sets; give it one.
    apply_json(
        &w.api::<ses_reputation_operator::api::ConfigurationSet>(),
        crate::support::cs_object("any", json!({"name": crate::support::unique("acct-any")})),
    )
    .await;
    let (_, reason, message) =
        wait_account_condition(&accounts, &w.account, "BounceRateHealthy", |c| c.0 == "False").await;
    assert_eq!(reason, "AboveWarning");
    assert!(message.contains("7.00%") && message.contains("5.00%"), "{message}");

    // The last resort, opted into: stricter account thresholds make 7%
    // Critical, and the whole account stops sending.
    apply_json(
        &accounts,
        json!({
            "apiVersion": "ses.reputation.io/v1alpha1", "kind": "SesAccount",
            "metadata": {"name": w.account, "labels": {"test": w.ns}},
            "spec": {
                "region": REGION,
                "suppression": {"reasons": ["BOUNCE"]},
                "thresholds": {"bounceRate": {"warning": 0.03, "critical": 0.06}},
                "pauseAccountSending": true,
            },
        }),
    )
    .await;
    eventually("account sending paused in SES", Duration::from_secs(30), || async {
        let got = ses.get_account().send().await.map_err(|e| e.to_string())?;
        if got.sending_enabled() {
            Err("still sending".to_string())
        } else {
            Ok(())
        }
    })
    .await;
    let (_, reason, _) = wait_account_condition(&accounts, &w.account, "SendingEnabled", |c| c.0 == "False").await;
    assert_eq!(reason, "Paused");
    // The documented resume by hand holds while the trailing rate is still
    // Critical: the operator does not pause the account again.
    ses.put_account_sending_attributes()
        .sending_enabled(true)
        .send()
        .await
        .expect("resume by hand");
    tokio::time::sleep(Duration::from_secs(6)).await; // three drift intervals
    assert!(
        ses.get_account().send().await.expect("get account").sending_enabled(),
        "re-paused after a manual resume"
    );
    emulator::Emulator.set_account(REGION, "HEALTHY", true).await;

    // An account is not deleted while a set still lives in it (a prune that
    // deletes everything at once must not strand the set's AWS side).
    accounts
        .delete(&w.account, &Default::default())
        .await
        .expect("delete account");
    let (_, _, message) = wait_account_condition(&accounts, &w.account, "Reconciling", |c| c.1 == "InUse").await;
    assert!(message.contains(&format!("ConfigurationSet {}/any", w.ns)), "{message}");
    let sets: Api<ses_reputation_operator::api::ConfigurationSet> = w.api();
    sets.delete("any", &Default::default()).await.expect("delete set");
    eventually("set and then account gone", Duration::from_secs(30), || async {
        let left = (
            sets.get_opt("any").await.map_err(|e| e.to_string())?.is_some(),
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

#[tokio::test(flavor = "multi_thread")]
async fn a_region_that_does_not_exist_is_a_dead_end() {
    // Region-shaped, so admission accepts it; SES has no endpoint there.
    let w = World::with(
        "no-region",
        WorldOptions {
            region: "us-east-99",
            ..Default::default()
        },
    )
    .await;
    let accounts: Api<SesAccount> = Api::all(w.client.clone());
    let sets: Api<ses_reputation_operator::api::ConfigurationSet> = w.api();
    apply_json(
        &sets,
        crate::support::cs_object("orders", json!({"name": crate::support::unique("orders")})),
    )
    .await;
    let (_, _, message) = wait_account_condition(&accounts, &w.account, "Stalled", |(s, r, _)| {
        s == "True" && r == "UnknownRegion"
    })
    .await;
    assert!(message.contains("us-east-99") && !message.contains('\n'), "{message}");
    let set = crate::support::wait_condition(&sets, "orders", "Stalled", "True", "UnknownRegion").await;
    let ready = condition(&set.status.expect("status").conditions, "Ready").expect("Ready");
    assert_eq!(ready.0, "False");
}
