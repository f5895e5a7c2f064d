//! Reputation end to end: CloudWatch rates (seeded with PutMetricData) show
//! up in ConfigurationSet status, ReputationPolicy thresholds turn the
//! conditions, Critical pauses sending, resume works as documented, and
//! each level change sends exactly one alert to SNS.

use std::time::Duration;

use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use ses_reputation_operator::api::{ConfigurationSet, ReputationPolicy};

use crate::support::{World, WorldOptions, apply_json, condition, emulator, eventually, unique};
use crate::support::{cs_object, ses_client, wait_set_ready};

/// Rates read every second, so each step shows within a second or two.
fn fast_rates() -> WorldOptions {
    WorldOptions {
        rate_interval: Duration::from_secs(1),
        ..Default::default()
    }
}

fn policy(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "ses.reputation.io/v1alpha1", "kind": "ReputationPolicy", "metadata": {"name": name}, "spec": spec})
}

fn labelled_set(name: &str, aws_name: &str, tier: &str) -> Value {
    let mut obj = cs_object(name, json!({"name": aws_name}));
    obj["metadata"]["labels"] = json!({"tier": tier});
    obj
}

/// Puts one bounce-rate datapoint `minutes_ago` minutes back: each step of a
/// test uses a later minute, so the newest datapoint is the step's value.
async fn seed_bounce(aws_name: &str, value: f64, minutes_ago: i64) {
    emulator::seed_bounce_in("us-east-1", aws_name, value, minutes_ago.unsigned_abs()).await;
}

/// Waits until the set reports this overall level, returning the set.
async fn wait_level(api: &Api<ConfigurationSet>, name: &str, level: &str) -> ConfigurationSet {
    eventually(&format!("{name} at {level}"), Duration::from_secs(30), || async {
        let cs = api.get(name).await.map_err(|e| e.to_string())?;
        let got = cs
            .status
            .as_ref()
            .and_then(|s| s.reputation.as_ref())
            .and_then(|r| r.level.clone());
        if got.as_deref() == Some(level) {
            Ok(cs)
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await
}

fn cond(cs: &ConfigurationSet, type_: &str) -> (String, String, String) {
    condition(&cs.status.as_ref().expect("status").conditions, type_).unwrap_or_else(|| panic!("no {type_} condition"))
}

async fn sending_in_ses(aws_name: &str) -> Option<bool> {
    let got = ses_client()
        .await
        .get_configuration_set()
        .configuration_set_name(aws_name)
        .send()
        .await
        .expect("get set");
    got.sending_options().map(|s| s.sending_enabled())
}

#[tokio::test(flavor = "multi_thread")]
async fn rates_turn_the_conditions_and_each_level_change_alerts_once() {
    let w = World::with("rep-levels", fast_rates()).await;
    let (sets, policies): (Api<ConfigurationSet>, Api<ReputationPolicy>) = (w.api(), w.api());
    let sqs = aws_sdk_sqs::Client::new(&emulator::sdk_config().await);
    let (topic, queue_url) = emulator::topic_with_queue("us-east-1", "alerts").await;
    // The platform team allows alerts to that topic in the account.
    crate::support::identities::allow_topic(&w, &topic).await;

    let aws_name = unique("levels");
    apply_json(&sets, labelled_set("levels", &aws_name, "gold")).await;
    apply_json(
        &policies,
        policy(
            "gold",
            json!({"selector": {"matchLabels": {"tier": "gold"}}, "actions": {"notify": {"topicArn": topic}}}),
        ),
    )
    .await;
    wait_set_ready(&sets, "levels").await;

    let cs = wait_level(&sets, "levels", "Unknown").await;
    assert_eq!(cond(&cs, "BounceRateHealthy").0, "Unknown");
    assert_eq!(cond(&cs, "BounceRateHealthy").1, "NoData");

    seed_bounce(&aws_name, 0.01, 30).await;
    let cs = wait_level(&sets, "levels", "Healthy").await;
    let (status, reason, message) = cond(&cs, "BounceRateHealthy");
    assert_eq!((status.as_str(), reason.as_str()), ("True", "BelowWarning"));
    assert!(
        message.contains("1.00%") && message.contains("2.50%") && message.contains("ReputationPolicy gold"),
        "{message}"
    );
    let reputation = cs
        .status
        .as_ref()
        .and_then(|s| s.reputation.clone())
        .expect("reputation");
    assert_eq!(reputation.bounce_rate_percent.as_deref(), Some("1.00%"));
    assert_eq!(reputation.thresholds_from.as_deref(), Some("gold"));

    seed_bounce(&aws_name, 0.03, 20).await;
    let cs = wait_level(&sets, "levels", "Warning").await;
    let (status, reason, message) = cond(&cs, "BounceRateHealthy");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "AboveWarning"));
    assert!(message.contains("3.00%"), "{message}");
    assert_eq!(cond(&cs, "SendingEnabled").0, "True", "no pauseSending in this policy");

    seed_bounce(&aws_name, 0.06, 10).await;
    let cs = wait_level(&sets, "levels", "Critical").await;
    assert_eq!(cond(&cs, "BounceRateHealthy").1, "AboveCritical");
    assert_eq!(sending_in_ses(&aws_name).await, Some(true));

    let policy_status = eventually("policy status lists the breach", Duration::from_secs(30), || async {
        let p = policies.get("gold").await.map_err(|e| e.to_string())?;
        let s = p.status.clone().unwrap_or_default();
        if s.breaching
            .iter()
            .any(|b| b.configuration_set == "levels" && b.level == "Critical")
        {
            Ok(s)
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
    assert_eq!(policy_status.covered, vec!["levels".to_string()]);

    // Healthy -> Warning and Warning -> Critical: exactly two alerts.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut alerts = Vec::new();
    for _ in 0..5 {
        let out = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        for m in out.messages() {
            alerts.push(serde_json::from_str::<Value>(m.body().unwrap_or("{}")).expect("alert JSON"));
            sqs.delete_message()
                .queue_url(&queue_url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
    }
    alerts.sort_by_key(|a| a["time"].as_str().unwrap_or_default().to_string());
    let levels: Vec<(&str, &str)> = alerts
        .iter()
        .map(|a| {
            (
                a["previousLevel"].as_str().unwrap_or(""),
                a["level"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(levels, [("Healthy", "Warning"), ("Warning", "Critical")], "{alerts:#?}");
    let critical = &alerts[1];
    assert_eq!(critical["kind"], "SesReputationAlert");
    assert_eq!(critical["configurationSet"], "levels");
    assert_eq!(critical["awsName"], aws_name.as_str());
    assert_eq!(critical["namespace"], w.ns.as_str());
    assert_eq!(critical["policy"], "gold");
    assert_eq!(critical["metric"], "bounceRate");
    assert_eq!(critical["value"], 0.06);
    assert_eq!(critical["threshold"], 0.05);
    assert!(
        critical["time"]
            .as_str()
            .is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok())
    );

    // The same numbers on /metrics.
    let metrics = w.ctx.metrics.encode();
    let series = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l.contains("configuration_set=\"levels\""))
            .map(str::to_string)
    };
    assert!(
        series("ses_reputation_bounce_rate{").is_some_and(|l| l.ends_with(" 0.06")),
        "{metrics}"
    );
    assert!(
        series("ses_reputation_level{").is_some_and(|l| l.ends_with(" 2")),
        "{metrics}"
    );
    assert!(
        series("ses_reputation_complaint_rate{").is_none(),
        "no complaint data, no series"
    );

    // Kubernetes Events on transitions only, not every loop.
    let events = Api::<k8s_openapi::api::core::v1::Event>::namespaced(w.client.clone(), &w.ns)
        .list(&ListParams::default())
        .await
        .expect("events")
        .items;
    let count = |reason: &str| {
        events
            .iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .map(|e| e.count.unwrap_or(1).max(1))
            .sum::<i32>()
    };
    assert_eq!(count("ReputationWarning"), 1);
    assert_eq!(count("ReputationCritical"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn critical_pauses_sending_until_the_documented_resume() {
    let w = World::with("rep-pause", fast_rates()).await;
    let (sets, policies): (Api<ConfigurationSet>, Api<ReputationPolicy>) = (w.api(), w.api());
    let aws_name = unique("paused");
    apply_json(&sets, labelled_set("paused", &aws_name, "strict")).await;
    apply_json(
        &policies,
        policy(
            "brake",
            json!({"selector": {"matchLabels": {"tier": "strict"}}, "actions": {"pauseSending": true}}),
        ),
    )
    .await;
    wait_set_ready(&sets, "paused").await;

    seed_bounce(&aws_name, 0.06, 30).await;
    let cs = eventually("sending paused", Duration::from_secs(30), || async {
        let cs = sets.get("paused").await.map_err(|e| e.to_string())?;
        let c = condition(
            &cs.status.as_ref().map(|s| s.conditions.clone()).unwrap_or_default(),
            "SendingEnabled",
        );
        match c {
            Some((s, r, _)) if s == "False" && r == "PausedByPolicy" => Ok(cs),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let (_, _, message) = cond(&cs, "SendingEnabled");
    assert!(
        message.contains("ReputationPolicy brake") && message.contains("6.00%"),
        "{message}"
    );
    assert_eq!(
        cs.status
            .as_ref()
            .and_then(|s| s.pause.as_ref())
            .map(|p| p.policy.as_str()),
        Some("brake")
    );
    eventually("SES sending off", Duration::from_secs(10), || async {
        if sending_in_ses(&aws_name).await == Some(false) {
            Ok(())
        } else {
            Err("still on".to_string())
        }
    })
    .await;

    // An unrelated spec change does not turn sending back on.
    let mut obj = labelled_set("paused", &aws_name, "strict");
    obj["spec"]["tags"] = json!({"team": "mail"});
    apply_json(&sets, obj).await;
    let cs = wait_set_ready(&sets, "paused").await;
    assert_eq!(cond(&cs, "SendingEnabled").1, "PausedByPolicy");
    assert_eq!(sending_in_ses(&aws_name).await, Some(false));

    // The documented resume: annotate with the current time.
    let resume_at = jiff::Timestamp::now().to_string();
    sets.patch(
        "paused",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"ses.reputation.io/resume-at": resume_at}}})),
    )
    .await
    .expect("annotate");
    eventually("sending resumed", Duration::from_secs(30), || async {
        let cs = sets.get("paused").await.map_err(|e| e.to_string())?;
        let (s, r, _) = cond(&cs, "SendingEnabled");
        if s == "True" && sending_in_ses(&aws_name).await == Some(true) {
            Ok(())
        } else {
            Err(format!("{s} {r}"))
        }
    })
    .await;
    // Still Critical right after the resume: it stays resumed.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cs = sets.get("paused").await.expect("get");
    assert_eq!(cond(&cs, "SendingEnabled").0, "True");
    assert_eq!(sending_in_ses(&aws_name).await, Some(true));
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_resume_waits_for_the_quiet_period() {
    let w = World::with("rep-auto", fast_rates()).await;
    let (sets, policies): (Api<ConfigurationSet>, Api<ReputationPolicy>) = (w.api(), w.api());
    let aws_name = unique("auto");
    apply_json(&sets, labelled_set("auto", &aws_name, "auto")).await;
    apply_json(
        &policies,
        policy("auto", json!({"selector": {"matchLabels": {"tier": "auto"}}, "actions": {"pauseSending": true, "autoResume": {"after": "6s"}}})),
    )
    .await;
    wait_set_ready(&sets, "auto").await;
    seed_bounce(&aws_name, 0.08, 30).await;
    wait_level(&sets, "auto", "Critical").await;
    eventually("paused", Duration::from_secs(20), || async {
        if sending_in_ses(&aws_name).await == Some(false) {
            Ok(())
        } else {
            Err("on".to_string())
        }
    })
    .await;

    seed_bounce(&aws_name, 0.01, 20).await;
    let quiet_since = eventually("quiet period started", Duration::from_secs(20), || async {
        let cs = sets.get("auto").await.map_err(|e| e.to_string())?;
        cs.status
            .and_then(|s| s.pause)
            .and_then(|p| p.quiet_since)
            .ok_or_else(|| "no quietSince yet".to_string())
    })
    .await;
    assert_eq!(
        sending_in_ses(&aws_name).await,
        Some(false),
        "not resumed before the quiet period ends"
    );
    let cs = eventually("resumed after the quiet period", Duration::from_secs(30), || async {
        let cs = sets.get("auto").await.map_err(|e| e.to_string())?;
        if cond(&cs, "SendingEnabled").0 == "True" {
            Ok(cs)
        } else {
            Err("still paused".to_string())
        }
    })
    .await;
    let resumed_at = cs.status.and_then(|s| s.resumed_at).expect("resumedAt");
    let waited = resumed_at.0.duration_since(quiet_since.0).as_secs_f64();
    assert!(waited >= 6.0, "resumed {waited}s after the quiet period began");
    assert_eq!(sending_in_ses(&aws_name).await, Some(true));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pausing_policy_sets_the_pause_point_and_a_future_resume_is_refused() {
    let w = World::with("rep-point", fast_rates()).await;
    let (sets, policies): (Api<ConfigurationSet>, Api<ReputationPolicy>) = (w.api(), w.api());
    let aws_name = unique("point");
    apply_json(&sets, labelled_set("point", &aws_name, "gold")).await;
    // A stricter monitor-only policy beside the one that pauses (2.5%/5%).
    apply_json(
        &policies,
        policy(
            "monitor",
            json!({"selector": {"matchLabels": {"tier": "gold"}}, "bounceRate": {"warning": 0.01, "critical": 0.02}}),
        ),
    )
    .await;
    apply_json(
        &policies,
        policy(
            "brake",
            json!({"selector": {"matchLabels": {"tier": "gold"}}, "actions": {"pauseSending": true}}),
        ),
    )
    .await;
    wait_set_ready(&sets, "point").await;

    // 3%: Critical for the monitor, below the brake's 5%: alert, no pause.
    seed_bounce(&aws_name, 0.03, 30).await;
    let cs = wait_level(&sets, "point", "Critical").await;
    let (_, reason, message) = cond(&cs, "BounceRateHealthy");
    assert_eq!(reason, "AboveCritical");
    assert!(message.contains("ReputationPolicy monitor"), "{message}");
    assert_eq!(cond(&cs, "SendingEnabled").0, "True");
    assert!(cs.status.as_ref().and_then(|s| s.pause.as_ref()).is_none());
    assert_eq!(sending_in_ses(&aws_name).await, Some(true));

    // 6%: at the brake's point; the pause names the brake and its threshold.
    seed_bounce(&aws_name, 0.06, 29).await;
    let cs = eventually("paused by brake", Duration::from_secs(30), || async {
        let cs = sets.get("point").await.map_err(|e| e.to_string())?;
        match cs.status.as_ref().and_then(|s| s.pause.clone()) {
            Some(p) => Ok((cs, p)),
            None => Err("not paused".to_string()),
        }
    })
    .await;
    let (cs, pause) = cs;
    assert_eq!(pause.policy, "brake");
    assert!(
        pause.reason.contains("5.00%") && pause.reason.contains("ReputationPolicy brake"),
        "{}",
        pause.reason
    );
    assert_eq!(cond(&cs, "SendingEnabled").1, "PausedByPolicy");

    // A resume time an hour ahead is refused, with a Warning, not kept.
    let later = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string();
    sets.patch(
        "point",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"ses.reputation.io/resume-at": later}}})),
    )
    .await
    .expect("annotate");
    crate::support::wait_event(&w.client, &w.ns, "point", "ResumeRefused").await;
    let cs = sets.get("point").await.expect("get");
    let pause = cs.status.as_ref().and_then(|s| s.pause.clone()).expect("still paused");
    assert_eq!(pause.refused_resume_at.as_deref(), Some(later.as_str()));
    assert_eq!(sending_in_ses(&aws_name).await, Some(false));
}
