//! Benchmarks of the live source on the ground (ignored by `cargo test`;
//! `make bench-live` runs them): time to protect (first SendEmail of a
//! spike to SES refusing mail through the set) and the consumer's
//! throughput through the emulator's SQS, beside the emulator's own drain
//! rate. They print Markdown for docs/benchmarks.md.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use kube::api::Api;
use serde_json::json;
use ses_reputation_operator::api::{ConfigurationSet, ReputationPolicy};
use ses_reputation_operator::reconcile::Context;

use crate::support::live::{live_test_set, send, set_stream, wait_stream_destination, world_options};
use crate::support::{World, apply_json, emulator, unique};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// User + system CPU seconds of this process (the in-process operator).
fn process_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: make bench-live"]
async fn bench_time_to_protect() {
    const REGION: &str = "us-west-1";
    let runs: usize = std::env::var("RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(5);
    let w = World::with("bench-ttp", world_options(REGION)).await;
    set_stream(&w, REGION, true).await;
    let (sets, policies): (Api<ConfigurationSet>, Api<ReputationPolicy>) = (w.api(), w.api());
    apply_json(&policies, crate::support::live::policy("breaker", "campaign", 100)).await;
    let ses = aws_sdk_sesv2::Client::new(&emulator::sdk_config_in(REGION).await);
    ses.create_email_identity()
        .email_identity(crate::support::live::SENDER)
        .send()
        .await
        .ok();
    let mut rows = Vec::new();
    for run in 0..runs {
        let name = format!("ttp-{run}");
        let aws = unique("ttp");
        apply_json(&sets, live_test_set(&name, &aws, "campaign")).await;
        wait_stream_destination(&sets, &name).await;
        let started = Instant::now();
        let mut accepted = 0;
        let mut bounced = 0;
        loop {
            let bounce = accepted % 10 == 9 && accepted < 300;
            let to = if bounce {
                "bounce@simulator.amazonses.com"
            } else {
                "success@simulator.amazonses.com"
            };
            match send(&ses, &aws, to).await {
                Ok(()) => {
                    accepted += 1;
                    bounced += usize::from(bounce);
                }
                Err(code) => {
                    assert_eq!(code, "SendingPausedException");
                    break;
                }
            }
            assert!(started.elapsed() < Duration::from_secs(120), "never paused");
        }
        let took = started.elapsed().as_secs_f64();
        rows.push((took, accepted, bounced));
    }
    println!("\n| run | first SendEmail -> SendingPausedException | accepted | of them bounces |");
    println!("| --- | --- | --- | --- |");
    for (i, (took, accepted, bounced)) in rows.iter().enumerate() {
        println!("| {} | {took:.2} s | {accepted} | {bounced} |", i + 1);
    }
    let m = median(rows.iter().map(|r| r.0).collect());
    let rate = rows.iter().map(|r| r.1 as f64 / r.0).sum::<f64>() / rows.len() as f64;
    println!("\nmedian time to protect: {m:.2} s over {runs} runs (sender at ~{rate:.0} SendEmail/s)");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: make bench-live"]
async fn bench_consumer_throughput() {
    const REGION: &str = "us-west-1";
    let n: usize = std::env::var("EVENTS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5000);
    let mut w = World::with("bench-consume", world_options(REGION)).await;
    let stream = set_stream(&w, REGION, true).await;
    let queue = stream["queueUrl"].as_str().expect("queue").to_string();
    let sets: Api<ConfigurationSet> = w.api();
    let aws = unique("consume");
    apply_json(&sets, live_test_set("consume", &aws, "none")).await;
    wait_stream_destination(&sets, "consume").await;
    w.stop().await;

    let sqs = aws_sdk_sqs::Client::new(&emulator::sdk_config_in(REGION).await);
    let fill = |queue: String, n: usize| {
        let (sqs, aws) = (sqs.clone(), aws.clone());
        async move {
            let mut tasks = tokio::task::JoinSet::new();
            for t in 0..8 {
                let (sqs, queue, aws) = (sqs.clone(), queue.clone(), aws.clone());
                tasks.spawn(async move {
                    for batch in (t * 10..n).step_by(80) {
                        let entries = (batch..(batch + 10).min(n)).map(|i| {
                            let body = crate::support::live::record(
                                &aws,
                                if i % 10 == 9 { "Bounce" } else { "Send" },
                                json!({"send": {}, "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                                    "bouncedRecipients": [{"emailAddress": "x@example.org"}]}}),
                            );
                            SendMessageBatchRequestEntry::builder()
                                .id(i.to_string())
                                .message_body(body)
                                .build()
                                .expect("entry")
                        });
                        sqs.send_message_batch()
                            .queue_url(&queue)
                            .set_entries(Some(entries.collect()))
                            .send()
                            .await
                            .expect("SendMessageBatch");
                    }
                });
            }
            tasks.join_all().await;
        }
    };
    fill(queue.clone(), n).await;

    // The operator drains it.
    let ctx = Context::new(w.client.clone(), w.ctx.settings.clone()).await;
    w.ctx = ctx.clone();
    let (cpu0, started) = (process_cpu(), Instant::now());
    w.start();
    while ctx.live.consumed.load(Relaxed) < n as u64 {
        assert!(started.elapsed() < Duration::from_secs(600), "not drained");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (took, cpu) = (started.elapsed().as_secs_f64(), process_cpu() - cpu0);
    w.stop().await;

    // The emulator alone: 8 plain SDK pollers receive and delete the same load.
    let (other, _) = emulator::sqs_queue(REGION, "drain").await;
    fill(other.clone(), n).await;
    let drained = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started_plain = Instant::now();
    let mut pollers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (sqs, queue, drained) = (sqs.clone(), other.clone(), drained.clone());
        pollers.spawn(async move {
            while drained.load(Relaxed) < n {
                assert!(started_plain.elapsed() < Duration::from_secs(600), "not drained");
                let out = sqs
                    .receive_message()
                    .queue_url(&queue)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .send()
                    .await
                    .expect("receive");
                let msgs = out.messages.unwrap_or_default();
                if msgs.is_empty() {
                    continue;
                }
                drained.fetch_add(msgs.len(), Relaxed);
                let entries = msgs.iter().enumerate().map(|(i, m)| {
                    aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                        .build()
                        .expect("entry")
                });
                sqs.delete_message_batch()
                    .queue_url(&queue)
                    .set_entries(Some(entries.collect()))
                    .send()
                    .await
                    .expect("delete");
            }
        });
    }
    pollers.join_all().await;
    let plain = started_plain.elapsed().as_secs_f64();

    println!("\n| measure | value |");
    println!("| --- | --- |");
    println!("| events | {n} |");
    println!(
        "| operator drain (debug build, in-process) | {:.0} events/s |",
        n as f64 / took
    );
    println!(
        "| process CPU during the drain | {:.0} µs/event |",
        cpu * 1e6 / n as f64
    );
    println!(
        "| emulator alone, 8 plain SDK pollers | {:.0} events/s |",
        n as f64 / plain
    );
}

/// Time to protect when the leader is SIGKILLed in the middle of a spike:
/// two replicas with leader election, a sender at `SEND_RATE` SendEmail/s
/// (default 3; 10% hard bounces, breaker `minimumSends: 100`) and the
/// leader killed after `KILL_AFTER` sends (default 60). The same runs with
/// the live checkpoint off (`--live-checkpoint=`, what every release before
/// it did: the new leader counts from zero) and on.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: make bench-live"]
async fn bench_time_to_protect_after_failover() {
    use crate::support::WorldOptions;
    use crate::support::replica::{Replica, holder};
    use k8s_openapi::api::coordination::v1::Lease;
    const REGION: &str = "us-west-2";
    let env = |k: &str, d: f64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let runs = env("RUNS", 3.0) as usize;
    let rate = env("SEND_RATE", 3.0);
    let kill_after = env("KILL_AFTER", 60.0) as usize;
    let ses = aws_sdk_sesv2::Client::new(&emulator::sdk_config_in(REGION).await);
    ses.create_email_identity()
        .email_identity(crate::support::live::SENDER)
        .send()
        .await
        .ok();
    let mut table = Vec::new();
    for (label, flags) in [("off (before)", vec!["--live-checkpoint="]), ("on", vec![])] {
        let mut rows = Vec::new();
        for _ in 0..runs {
            let opts = WorldOptions {
                start_operator: false,
                ..world_options(REGION)
            };
            let w = World::with("bench-failover", opts).await;
            let leases: Api<Lease> = Api::namespaced(w.client.clone(), &w.ns);
            let mut first = Replica::start_with(&w, "bench", "testing", &flags);
            while holder(&leases, "bench").await.map_or(true, |h| !first.holds(&h)) {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let second = Replica::start_with(&w, "bench", "testing", &flags);
            set_stream(&w, REGION, true).await;
            let (sets, policies): (Api<ConfigurationSet>, Api<ReputationPolicy>) = (w.api(), w.api());
            apply_json(&policies, crate::support::live::policy("breaker", "campaign", 100)).await;
            let aws = unique("failover");
            apply_json(&sets, live_test_set("campaign", &aws, "campaign")).await;
            wait_stream_destination(&sets, "campaign").await;
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            let started = Instant::now();
            let mut accepted = 0;
            loop {
                tick.tick().await;
                if accepted == kill_after {
                    first.child.kill().expect("SIGKILL the leader");
                    first.child.wait().expect("reaped");
                }
                let to = if accepted % 10 == 9 {
                    "bounce@simulator.amazonses.com"
                } else {
                    "success@simulator.amazonses.com"
                };
                match send(&ses, &aws, to).await {
                    Ok(()) => accepted += 1,
                    Err(code) => {
                        assert_eq!(code, "SendingPausedException");
                        break;
                    }
                }
                assert!(started.elapsed() < Duration::from_secs(300), "never paused");
            }
            let took = started.elapsed().as_secs_f64();
            assert!(second.holds(&holder(&leases, "bench").await.unwrap_or_default()));
            rows.push((took, accepted));
        }
        let after_kill = |r: &(f64, usize)| r.0 - kill_after as f64 / rate;
        table.push((
            label,
            median(rows.iter().map(|r| r.0).collect()),
            median(rows.iter().map(after_kill).collect()),
            median(rows.iter().map(|r| r.1 as f64).collect()),
            rows,
        ));
    }
    println!(
        "\n{runs} runs each, sender at {rate} SendEmail/s, 10% hard bounces, minimumSends 100, leader SIGKILLed after {kill_after} sends (lease 15 s)\n"
    );
    println!(
        "| live checkpoint | first SendEmail -> SendingPausedException (median) | of it after the kill | mails accepted (median) | runs (s, accepted) |"
    );
    println!("| --- | --- | --- | --- | --- |");
    for (label, took, after, accepted, rows) in &table {
        let runs: Vec<String> = rows.iter().map(|(t, a)| format!("{t:.1}/{a}")).collect();
        println!(
            "| {label} | {took:.1} s | {after:.1} s | {accepted:.0} | {} |",
            runs.join(", ")
        );
    }
}
