//! Micro benchmark of the live window: CPU per event (parse + count) and
//! memory per 1,000 sets. Prints a Markdown table.

#[allow(dead_code)]
#[path = "../../../../src/domain/reputation/windows.rs"]
mod live;

use std::collections::HashMap;
use std::time::Instant;

use live::Window;

/// User + system CPU seconds of this thread (/proc/thread-self/stat).
fn thread_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // After the command name: state is field 0, utime 11, stime 12.
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// An SES event record shaped like the ones SES publishes (headers and all).
fn record(set: &str, i: usize) -> String {
    let mail = serde_json::json!({
        "timestamp": jiff::Timestamp::now().to_string(),
        "source": "sender@example.com",
        "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/example.com",
        "sendingAccountId": "123456789012",
        "messageId": format!("0100018c-{i:08x}-5c3f-4b7a-9d1e-3f0a8c2b1d4e-000000"),
        "destination": [format!("user{i}@domain{}.example", i % 50)],
        "headersTruncated": false,
        "headers": [
            {"name": "From", "value": "sender@example.com"},
            {"name": "To", "value": format!("user{i}@domain{}.example", i % 50)},
            {"name": "Subject", "value": "Your weekly newsletter"},
            {"name": "MIME-Version", "value": "1.0"},
            {"name": "Content-Type", "value": "text/plain; charset=UTF-8"}
        ],
        "commonHeaders": {"from": ["sender@example.com"], "to": [format!("user{i}@domain{}.example", i % 50)], "messageId": "x", "subject": "Your weekly newsletter"},
        "tags": {"ses:configuration-set": [set], "ses:source-ip": ["10.0.0.1"], "ses:from-domain": ["example.com"], "ses:caller-identity": ["operator"]}
    });
    let body = match i % 10 {
        9 => serde_json::json!({"eventType": "Bounce", "mail": mail, "bounce": {
            "bounceType": "Permanent", "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": format!("user{i}@domain{}.example", i % 50), "action": "failed", "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
            "timestamp": "2027-01-15T08:00:00.700Z", "feedbackId": "x", "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com"}}),
        _ => serde_json::json!({"eventType": "Send", "mail": mail, "send": {}}),
    };
    body.to_string()
}

fn main() {
    let sets = 1000;
    let events = 500_000;
    let names: Vec<String> = (0..sets).map(|i| format!("set-{i}")).collect();
    let bodies: Vec<String> = (0..10_000).map(|i| record(&names[i % sets], i)).collect();
    let avg_body = bodies.iter().map(String::len).sum::<usize>() / bodies.len();
    let started = jiff::Timestamp::now();

    let rss_before = rss_kib();
    let mut windows: HashMap<String, Window> = HashMap::with_capacity(sets);
    let (cpu0, wall0) = (thread_cpu(), Instant::now());
    for i in 0..events {
        let body = &bodies[i % bodies.len()];
        let now = jiff::Timestamp::now();
        if let Ok(event) = live::parse(body) {
            windows
                .entry(event.set.clone())
                .or_insert_with(|| Window::new(started))
                .add(&event, now);
        }
    }
    let (cpu, wall) = (thread_cpu() - cpu0, wall0.elapsed().as_secs_f64());
    let rss_after = rss_kib();
    let bytes: usize = windows.values().map(Window::bytes).sum();
    let max = windows.values().map(Window::bytes).max().unwrap_or(0);

    println!("| measure | value |");
    println!("| --- | --- |");
    println!("| events (parse + count, {sets} sets, {avg_body} B records, 10% hard bounces) | {events} |");
    println!("| CPU per event | {:.2} µs |", cpu * 1e6 / events as f64);
    println!("| events per CPU-second (one core) | {:.0} |", events as f64 / cpu.max(1e-9));
    println!("| wall per event | {:.2} µs |", wall * 1e6 / events as f64);
    println!("| window bytes, 1,000 sets (sum of Window::bytes) | {} KiB |", bytes / 1024);
    println!("| largest window | {max} B |");
    println!("| RSS added by 1,000 windows + map | {} KiB |", rss_after.saturating_sub(rss_before));
}
