//! The live source end to end, through the emulator's real SES -> SNS ->
//! SQS path: the SesAccount's event stream (topic, queue, subscription, the
//! destination on each set), the consumer's counts in status, and the
//! breaker pausing a set through the same path as CloudWatch.

use std::time::Duration;

use kube::api::{Api, DeleteParams};
use serde_json::{Value, json};
use ses_reputation_operator::api::{ConfigurationSet, ReputationPolicy, SesAccount};
use ses_reputation_operator::reconcile::Context;

use crate::support::live::{
    SENDER, live_test_set, policy, record, send, ses_in, set_stream, set_stream_with, wait_stream_destination,
    world_options,
};
use crate::support::{World, apply_json, condition, emulator, eventually, unique};

async fn destination_names(ses: &aws_sdk_sesv2::Client, set: &str) -> Vec<String> {
    ses.get_configuration_set_event_destinations()
        .configuration_set_name(set)
        .send()
        .await
        .map(|o| o.event_destinations().iter().map(|d| d.name().to_string()).collect())
        .unwrap_or_default()
}

/// Sends `n` messages through `set`, every `bounce_every`th to the bounce
/// simulator, until SES refuses one; returns how many SES accepted.
async fn spike(ses: &aws_sdk_sesv2::Client, set: &str, n: usize, bounce_every: usize) -> (usize, Option<String>) {
    for i in 0..n {
        let to = if bounce_every > 0 && i % bounce_every == bounce_every - 1 {
            "bounce@simulator.amazonses.com"
        } else {
            "success@simulator.amazonses.com"
        };
        if let Err(code) = send(ses, set, to).await {
            return (i, Some(code));
        }
    }
    (n, None)
}

async fn live_of(sets: &Api<ConfigurationSet>, name: &str) -> (ConfigurationSet, Value) {
    let cs = sets.get(name).await.expect("get set");
    let live = cs
        .status
        .as_ref()
        .and_then(|s| s.reputation.as_ref())
        .map(|r| serde_json::to_value(&r.live).expect("json"))
        .unwrap_or(Value::Null);
    (cs, live)
}

/// Waits until the set's live block satisfies `ok`.
async fn wait_live(
    sets: &Api<ConfigurationSet>,
    name: &str,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> ConfigurationSet {
    eventually(&format!("{name}: {what}"), Duration::from_secs(60), || async {
        let (cs, live) = live_of(sets, name).await;
        if ok(&live) { Ok(cs) } else { Err(live.to_string()) }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spike_trips_the_breaker_in_seconds_while_another_set_keeps_sending_and_a_restart_keeps_the_pause() {
    const REGION: &str = "us-east-2";
    let mut w = World::with("live-spike", world_options(REGION)).await;
    set_stream(&w, REGION, true).await;
    let (sets, policies): (Api<ConfigurationSet>, Api<ReputationPolicy>) = (w.api(), w.api());
    apply_json(&policies, policy("breaker", "campaign", 100)).await;
    let (campaign, marketing) = (unique("campaign"), unique("marketing"));
    apply_json(&sets, live_test_set("campaign", &campaign, "campaign")).await;
    apply_json(&sets, live_test_set("marketing", &marketing, "marketing")).await;
    wait_stream_destination(&sets, "campaign").await;
    wait_stream_destination(&sets, "marketing").await;
    let ses = ses_in(REGION).await;
    assert!(
        destination_names(&ses, &campaign)
            .await
            .contains(&"ses-reputation-operator-stream".to_string())
    );
    ses.create_email_identity().email_identity(SENDER).send().await.ok();

    // 300 messages, 10% to the bounce simulator: SES refuses mail through
    // the set before the spike is through.
    let (accepted, refused) = spike(&ses, &campaign, 300, 10).await;
    let refused = match refused {
        Some(code) => code,
        // The pause may land just after the last send: wait for it.
        None => {
            eventually("SES refuses the campaign", Duration::from_secs(30), || async {
                match send(&ses, &campaign, "success@simulator.amazonses.com").await {
                    Err(code) => Ok(code),
                    Ok(()) => Err("accepted".into()),
                }
            })
            .await
        }
    };
    assert_eq!(refused, "SendingPausedException");
    assert!(accepted >= 100, "paused below minimumSends after {accepted} sends");

    // The other set keeps sending.
    let (sent, refused) = spike(&ses, &marketing, 20, 0).await;
    assert_eq!((sent, refused), (20, None));

    // Paused through the usual path, and status says the events drove it.
    let cs = wait_live(&sets, "campaign", "live counts", |l| l["sends"].as_i64() >= Some(100)).await;
    let status = cs.status.clone().expect("status");
    let pause = status.pause.clone().expect("paused");
    assert_eq!(pause.policy, "breaker");
    assert!(pause.reason.contains("live events over 15m"), "{}", pause.reason);
    let reputation = status.reputation.clone().expect("reputation");
    assert_eq!(reputation.source.as_deref(), Some("Events"));
    assert_eq!(reputation.level.as_deref(), Some("Critical"));
    // CloudWatch has nothing for this set (Unknown): the live rate judged.
    assert_eq!(reputation.bounce_rate, None);
    let live = serde_json::to_value(reputation.live.clone().expect("live")).expect("json");
    assert_eq!(live["window"], "15m");
    assert!(live["hardBounces"].as_i64() >= Some(10), "{live}");
    assert_eq!(live["topHardBounceDomains"][0]["name"], "simulator.amazonses.com");
    // The policy names the breach with the live rate.
    let breach = eventually("the policy lists the breach", Duration::from_secs(30), || async {
        let p = policies.get("breaker").await.map_err(|e| e.to_string())?;
        let breaching = p.status.map(|s| s.breaching).unwrap_or_default();
        breaching
            .into_iter()
            .find(|b| b.configuration_set == "campaign")
            .ok_or_else(|| "not breaching yet".to_string())
    })
    .await;
    assert!(breach.detail.starts_with("live bounce"), "{}", breach.detail);
    let (sending, reason, _) = condition(&status.conditions, "SendingEnabled").expect("SendingEnabled");
    assert_eq!((sending.as_str(), reason.as_str()), ("False", "PausedByPolicy"));
    // Argo CD: the pause is the remedy, not a failure, while the rate that
    // caused it is still Critical.
    let (health, message) = crate::support::argocd::argocd_health(&cs);
    assert_eq!(health, "Suspended", "{message}");
    assert!(message.contains("paused by ReputationPolicy breaker"), "{message}");
    assert!(!message.contains("%%"), "{message}");
    // Recipient addresses never reach status.
    let text = serde_json::to_string(&status).expect("json");
    assert!(!text.contains('@'), "status holds an address: {text}");
    let (_, marketing_live) = live_of(&sets, "marketing").await;
    let m = sets.get("marketing").await.expect("marketing");
    assert!(m.status.as_ref().and_then(|s| s.pause.as_ref()).is_none());
    assert!(marketing_live.is_object(), "{marketing_live}");
    assert!(w.ctx.live.consumed.load(std::sync::atomic::Ordering::Relaxed) >= 100);

    // A restart: the new process takes the counts from the checkpoint the
    // old one left (same start, not warming up again), and the pause stays.
    let before = live["since"].as_str().expect("since").to_string();
    let sends_before = live["sends"].as_i64().expect("sends");
    w.stop().await;
    w.ctx = Context::new(w.client.clone(), w.ctx.settings.clone()).await;
    w.start();
    eventually("the checkpoint restored", Duration::from_secs(30), || async {
        let metrics = w.ctx.metrics.encode();
        let restored = r#"ses_reputation_live_checkpoints_total{outcome="restored"} 1"#;
        if metrics.contains(restored) {
            Ok(())
        } else {
            Err(metrics)
        }
    })
    .await;
    let cs = wait_live(&sets, "campaign", "the counts from before the restart", |l| {
        l["since"].as_str() == Some(before.as_str()) && l["sends"].as_i64() >= Some(sends_before)
    })
    .await;
    let status = cs.status.expect("status");
    assert!(status.pause.is_some(), "a restart lifted the pause");
    assert_eq!(
        send(&ses, &campaign, "success@simulator.amazonses.com").await,
        Err("SendingPausedException".into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn below_minimum_sends_nothing_trips() {
    const REGION: &str = "ap-northeast-1";
    let w = World::with("live-few", world_options(REGION)).await;
    set_stream(&w, REGION, true).await;
    let (sets, policies): (Api<ConfigurationSet>, Api<ReputationPolicy>) = (w.api(), w.api());
    apply_json(&policies, policy("breaker", "small", 100)).await;
    let aws = unique("small");
    apply_json(&sets, live_test_set("small", &aws, "small")).await;
    wait_stream_destination(&sets, "small").await;
    let ses = ses_in(REGION).await;
    ses.create_email_identity().email_identity(SENDER).send().await.ok();
    // 50 sends, 20% hard bounces: four times the critical rate, too few sends.
    assert_eq!(spike(&ses, &aws, 50, 5).await, (50, None));
    let cs = wait_live(&sets, "small", "all 50 counted", |l| {
        l["sends"] == 50 && l["hardBounces"] == 10
    })
    .await;
    let status = cs.status.expect("status");
    assert!(status.pause.is_none());
    let reputation = status.reputation.expect("reputation");
    assert_eq!(reputation.live.and_then(|l| l.bounce_rate).as_deref(), Some("0.2"));
    assert_ne!(reputation.level.as_deref(), Some("Critical"));
    assert_eq!(reputation.source.as_deref(), Some("CloudWatch"));
    assert_eq!(send(&ses, &aws, "success@simulator.amazonses.com").await, Ok(()));
}

#[tokio::test(flavor = "multi_thread")]
async fn soft_bounces_do_not_count_and_malformed_messages_are_dropped_and_counted() {
    const REGION: &str = "ap-southeast-1";
    let w = World::with("live-soft", world_options(REGION)).await;
    let stream = set_stream(&w, REGION, true).await;
    let topic = stream["topicArn"].as_str().expect("topic").to_string();
    let (sets, policies): (Api<ConfigurationSet>, Api<ReputationPolicy>) = (w.api(), w.api());
    apply_json(&policies, policy("breaker", "soft", 10)).await;
    let aws = unique("soft");
    apply_json(&sets, live_test_set("soft", &aws, "soft")).await;
    wait_stream_destination(&sets, "soft").await;
    let sns = aws_sdk_sns::Client::new(&emulator::sdk_config_in(REGION).await);
    let publish = |body: String| {
        let (sns, topic) = (sns.clone(), topic.clone());
        async move {
            sns.publish()
                .topic_arn(topic)
                .message(body)
                .send()
                .await
                .expect("publish")
        }
    };
    // Garbage and a set this operator does not manage, first: the consumer
    // drops them and carries on.
    publish("not an SES event".into()).await;
    publish(record("someone-elses-set", "Send", json!({"send": {}}))).await;
    for _ in 0..20 {
        publish(record(&aws, "Send", json!({"send": {}}))).await;
    }
    for (kind, sub) in [("Transient", "MailboxFull"), ("Undetermined", "Undetermined")] {
        for _ in 0..5 {
            publish(record(
                &aws,
                "Bounce",
                json!({"bounce": {"bounceType": kind, "bounceSubType": sub,
                    "bouncedRecipients": [{"emailAddress": "someone@example.org"}]}}),
            ))
            .await;
        }
    }
    let cs = wait_live(&sets, "soft", "soft bounces counted", |l| {
        l["sends"] == 20 && l["softBounces"] == 10
    })
    .await;
    let status = cs.status.expect("status");
    let live = serde_json::to_value(status.reputation.as_ref().and_then(|r| r.live.clone())).expect("json");
    assert_eq!(live["hardBounces"], 0);
    assert_eq!(live["bounceRate"], "0");
    assert!(live.get("topHardBounceDomains").is_none(), "{live}");
    assert_eq!(live["topBounceSubTypes"][0]["name"], "MailboxFull");
    assert!(status.pause.is_none());
    use std::sync::atomic::Ordering::Relaxed;
    assert!(w.ctx.live.malformed.load(Relaxed) >= 1);
    assert!(w.ctx.live.foreign.load(Relaxed) >= 1);
    let metrics = w.ctx.metrics.encode();
    assert!(
        metrics.contains("ses_reputation_stream_events_total{outcome=\"malformed\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("ses_reputation_live_sends{"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stream_is_deleted_on_opt_out_and_with_the_account_nothing_orphaned() {
    const REGION: &str = "eu-west-3";
    let w = World::with("live-cleanup", world_options(REGION)).await;
    let stream = set_stream(&w, REGION, true).await;
    let sets: Api<ConfigurationSet> = w.api();
    let aws = unique("cleanup");
    apply_json(&sets, live_test_set("cleanup", &aws, "none")).await;
    wait_stream_destination(&sets, "cleanup").await;
    // A set kept in AWS on deletion keeps nothing of the stream.
    let kept = unique("kept");
    let mut retained = live_test_set("kept", &kept, "none");
    retained["spec"]["deletionPolicy"] = json!("Retain");
    apply_json(&sets, retained).await;
    wait_stream_destination(&sets, "kept").await;
    let config = emulator::sdk_config_in(REGION).await;
    let (sns, sqs) = (aws_sdk_sns::Client::new(&config), aws_sdk_sqs::Client::new(&config));
    let ses = ses_in(REGION).await;
    let topic = stream["topicArn"].as_str().expect("topic").to_string();
    let queue = stream["queueUrl"].as_str().expect("queue").to_string();
    assert!(
        destination_names(&ses, &kept)
            .await
            .contains(&"ses-reputation-operator-stream".to_string())
    );
    sets.delete("kept", &DeleteParams::default())
        .await
        .expect("delete kept");
    eventually("the kept set deleted", Duration::from_secs(60), || async {
        match sets.get_opt("kept").await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(_) => Err("still there".into()),
        }
    })
    .await;
    let left = ses
        .get_configuration_set_event_destinations()
        .configuration_set_name(&kept)
        .send()
        .await
        .expect("the retained set is still in SES");
    assert!(
        left.event_destinations()
            .iter()
            .all(|d| d.name() != "ses-reputation-operator-stream"),
        "the retained set kept the stream destination"
    );

    // The topic only lets SES publish for this account's sets; the queue
    // only takes the topic's messages, delivered raw.
    let attrs = sns
        .get_topic_attributes()
        .topic_arn(&topic)
        .send()
        .await
        .expect("topic");
    let policy: Value = serde_json::from_str(&attrs.attributes().expect("attrs")["Policy"]).expect("policy");
    let cond = &policy["Statement"][0]["Condition"];
    assert_eq!(cond["StringEquals"]["AWS:SourceAccount"], "123456789012");
    assert!(
        cond["ArnLike"]["AWS:SourceArn"]
            .as_str()
            .is_some_and(|a| a.contains(":configuration-set/"))
    );
    let subs = sns
        .list_subscriptions_by_topic()
        .topic_arn(&topic)
        .send()
        .await
        .expect("subs");
    let sub = subs.subscriptions().first().expect("one subscription");
    assert_eq!(sub.protocol(), Some("sqs"));
    let sub_attrs = sns
        .get_subscription_attributes()
        .subscription_arn(sub.subscription_arn().expect("arn"))
        .send()
        .await
        .expect("sub attrs");
    assert_eq!(
        sub_attrs
            .attributes()
            .and_then(|a| a.get("RawMessageDelivery"))
            .map(String::as_str),
        Some("true")
    );

    let gone = |topic: String, queue: String| {
        let (sns, sqs) = (sns.clone(), sqs.clone());
        async move {
            let topic_gone = sns.get_topic_attributes().topic_arn(topic).send().await.is_err();
            let queue_gone = sqs.get_queue_attributes().queue_url(queue).send().await.is_err();
            topic_gone && queue_gone
        }
    };

    // Opt out: the topic, the queue and the set's destination go.
    set_stream(&w, REGION, false).await;
    assert!(
        gone(topic.clone(), queue.clone()).await,
        "stream left behind after opt-out"
    );
    eventually("destination removed", Duration::from_secs(60), || async {
        let cs = sets.get("cleanup").await.map_err(|e| e.to_string())?;
        let names = destination_names(&ses, &aws).await;
        let claimed = cs.status.as_ref().and_then(|s| s.stream_destination.clone());
        if claimed.is_none() && !names.contains(&"ses-reputation-operator-stream".to_string()) {
            Ok(())
        } else {
            Err(format!("{claimed:?} {names:?}"))
        }
    })
    .await;

    // On again, then the set and the account go: nothing stays in AWS.
    let stream = set_stream(&w, REGION, true).await;
    wait_stream_destination(&sets, "cleanup").await;
    sets.delete("cleanup", &DeleteParams::default())
        .await
        .expect("delete set");
    let accounts: Api<SesAccount> = Api::all(w.client.clone());
    accounts
        .delete(&w.account, &DeleteParams::default())
        .await
        .expect("delete account");
    eventually("account deleted", Duration::from_secs(60), || async {
        match accounts.get_opt(&w.account).await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(a) => Err(format!("{:?}", a.status.map(|s| s.conditions))),
        }
    })
    .await;
    let (topic, queue) = (
        stream["topicArn"].as_str().expect("topic").to_string(),
        stream["queueUrl"].as_str().expect("queue").to_string(),
    );
    assert!(
        gone(topic, queue).await,
        "stream left behind after the account was deleted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_breaker_trips_through_sqs_and_ses_server_errors() {
    const REGION: &str = "ap-northeast-2";
    let w = World::with("live-faults", world_options(REGION)).await;
    set_stream(&w, REGION, true).await;
    let (sets, policies): (Api<ConfigurationSet>, Api<ReputationPolicy>) = (w.api(), w.api());
    apply_json(&policies, policy("breaker", "campaign", 100)).await;
    let aws = unique("faulty");
    apply_json(&sets, live_test_set("faulty", &aws, "campaign")).await;
    wait_stream_destination(&sets, "faulty").await;
    let ses = ses_in(REGION).await;
    ses.create_email_identity().email_identity(SENDER).send().await.ok();

    // Half of the SES v2, SNS and SQS calls in this region fail with a 500.
    let mut faults = emulator::fault_lock().await;
    faults.set_faults_with_sqs_in(REGION, 0.5).await;
    let mut i = 0;
    let refused = loop {
        let to = if i % 10 == 9 {
            "bounce@simulator.amazonses.com"
        } else {
            "success@simulator.amazonses.com"
        };
        match send(&ses, &aws, to).await {
            Ok(()) => i += 1,
            // The sender's own calls fail too; it retries like any client.
            Err(code) if code == "InternalFailure" => {}
            Err(code) => break code,
        }
        assert!(i < 5000, "never paused");
        if i >= 300 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert_eq!(refused, "SendingPausedException");
    let failed: u64 = w
        .all_calls()
        .iter()
        .filter(|(k, _)| k.starts_with("sqs:") && k.ends_with(":Server"))
        .map(|(_, v)| v)
        .sum();
    assert!(failed > 0, "the consumer met no SQS errors: {:?}", w.all_calls());
    drop(faults);
    // Status follows SES once the set's reconcile gets through.
    eventually("the pause in status", Duration::from_secs(60), || async {
        let cs = sets.get("faulty").await.map_err(|e| e.to_string())?;
        match cs.status.and_then(|s| s.pause) {
            Some(p) => Ok(p),
            None => Err("not recorded yet".into()),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_alert_says_the_event_stream_drove_the_level() {
    const REGION: &str = "eu-central-1";
    let w = World::with("live-alert", world_options(REGION)).await;
    let sqs = aws_sdk_sqs::Client::new(&emulator::sdk_config_in(REGION).await);
    let (topic, queue_url) = emulator::topic_with_queue(REGION, "live-alerts").await;
    set_stream_with(&w, REGION, true, json!({"notify": {"allowedTopicArns": [topic]}})).await;
    let (sets, policies): (Api<ConfigurationSet>, Api<ReputationPolicy>) = (w.api(), w.api());
    let mut p = policy("breaker", "campaign", 100);
    p["spec"]["actions"]["notify"] = json!({"topicArn": topic});
    apply_json(&policies, p).await;
    let aws = unique("alerted");
    apply_json(&sets, live_test_set("alerted", &aws, "campaign")).await;
    wait_stream_destination(&sets, "alerted").await;
    let ses = ses_in(REGION).await;
    ses.create_email_identity().email_identity(SENDER).send().await.ok();
    let (accepted, refused) = spike(&ses, &aws, 300, 10).await;
    assert!(accepted >= 100, "{accepted}");
    if refused.is_none() {
        eventually("SES refuses the set", Duration::from_secs(30), || async {
            send(&ses, &aws, "success@simulator.amazonses.com")
                .await
                .err()
                .ok_or_else(|| "accepted".to_string())
        })
        .await;
    }
    let alert = eventually("the Critical alert", Duration::from_secs(30), || async {
        let out = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        out.messages()
            .iter()
            .filter_map(|m| serde_json::from_str::<Value>(m.body().unwrap_or_default()).ok())
            .find(|a| a["level"] == "Critical")
            .ok_or_else(|| "no Critical alert yet".to_string())
    })
    .await;
    assert_eq!(alert["source"], "Events", "{alert}");
    assert_eq!(alert["metric"], "bounceRate", "{alert}");
    assert_eq!(alert["paused"], true, "{alert}");
    assert!(alert["value"].as_f64() >= Some(0.05), "{alert}");
}

/// Two objects name one AWS set (the second is Stalled `AlreadyExists`):
/// whatever order each start's cache yields them in, the events count for
/// the object that owns the set, and its breaker pauses a spike.
#[tokio::test(flavor = "multi_thread")]
async fn events_of_a_set_named_twice_count_for_its_owner_across_restarts() {
    const REGION: &str = "af-south-1";
    let mut w = World::with("live-twice", world_options(REGION)).await;
    set_stream(&w, REGION, true).await;
    let (sets, policies): (Api<ConfigurationSet>, Api<ReputationPolicy>) = (w.api(), w.api());
    apply_json(&policies, policy("breaker", "campaign", 100)).await;
    let shared = unique("shared-name");
    apply_json(&sets, live_test_set("owner", &shared, "campaign")).await;
    wait_stream_destination(&sets, "owner").await;
    // Several objects naming it, so a cache order that happens to put the
    // owner last cannot hide a wrong mapping.
    for intruder in ["intruder", "intruder-2", "intruder-3", "intruder-4"] {
        apply_json(&sets, live_test_set(intruder, &shared, "campaign")).await;
    }
    let stalled = |cs: &ConfigurationSet| {
        cs.status
            .as_ref()
            .and_then(|s| condition(&s.conditions, "Stalled"))
            .is_some_and(|c| c.0 == "True" && c.1 == "AlreadyExists")
    };
    eventually("the intruder is Stalled", Duration::from_secs(30), || async {
        let cs = sets.get("intruder").await.map_err(|e| e.to_string())?;
        if stalled(&cs) {
            Ok(())
        } else {
            Err(format!("{:?}", cs.status))
        }
    })
    .await;
    // Each start lists the two objects in its own (hash) order.
    for _ in 0..3 {
        w.restart().await;
        wait_stream_destination(&sets, "owner").await;
    }
    let ses = ses_in(REGION).await;
    ses.create_email_identity().email_identity(SENDER).send().await.ok();
    let (accepted, refused) = spike(&ses, &shared, 300, 10).await;
    if refused.is_none() {
        eventually("SES refuses the owner's set", Duration::from_secs(30), || async {
            match send(&ses, &shared, "success@simulator.amazonses.com").await {
                Err(code) => Ok(code),
                Ok(()) => Err("accepted".into()),
            }
        })
        .await;
    }
    assert!(accepted >= 100, "paused below minimumSends after {accepted} sends");
    let cs = wait_live(&sets, "owner", "the owner's live counts", |l| {
        l["sends"].as_i64() >= Some(100)
    })
    .await;
    assert_eq!(
        cs.status.and_then(|s| s.pause).map(|p| p.policy).as_deref(),
        Some("breaker")
    );
    let intruder = sets.get("intruder").await.expect("intruder");
    let live = intruder
        .status
        .as_ref()
        .and_then(|s| s.reputation.as_ref())
        .and_then(|r| r.live.as_ref());
    let sends = live.map_or(0, |l| l.sends);
    assert_eq!(sends, 0, "the intruder counted the owner's events: {live:?}");
    assert!(stalled(&intruder), "{:?}", intruder.status);
}

/// The stream's queue deleted by hand: the account's next pass makes it
/// again and says so with a Warning (events sent meanwhile were lost).
#[tokio::test(flavor = "multi_thread")]
async fn a_stream_queue_deleted_by_hand_is_recreated_with_a_warning() {
    const REGION: &str = "eu-south-1";
    let options = crate::support::WorldOptions {
        drift: Duration::from_secs(2),
        ..world_options(REGION)
    };
    let w = World::with("live-requeue", options).await;
    let stream = set_stream(&w, REGION, true).await;
    let queue = stream["queueUrl"].as_str().expect("queue").to_string();
    let sqs = aws_sdk_sqs::Client::new(&emulator::sdk_config_in(REGION).await);
    sqs.delete_queue()
        .queue_url(&queue)
        .send()
        .await
        .expect("delete by hand");
    // Events of a cluster-scoped SesAccount go to `default`.
    let event = crate::support::wait_event(&w.client, "default", &w.account, "EventStreamRecreated").await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert!(
        event.message.as_deref().is_some_and(|m| m.contains("SQS queue")),
        "{event:?}"
    );
    eventually("the queue is back", Duration::from_secs(30), || async {
        sqs.get_queue_attributes()
            .queue_url(&queue)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await;
}
