//! Property tests (proptest) of what reaches the pure core from outside:
//! SES event records from the queue, a stored live checkpoint, an SNS
//! topic policy someone else wrote, and the observed AWS state the diffs
//! compare with. Seeds: the real record shapes in `tests/fuzz-corpus/`.
//! `cargo test` runs the default 256 cases per property; `make fuzz` runs
//! many more (`PROPTEST_CASES`).

use jiff::Timestamp;
use proptest::prelude::*;
use serde_json::Value;

use super::diff::configuration_set::{self as set_diff, Delivery, SetChange, SetOptions, Tracking, Validation, Vdm};
use super::reputation::checkpoint;
use super::reputation::windows::{self, Event, Window};
use super::topic_policy;
use crate::api::configuration_set::{ConfidenceThreshold, Feature, HttpsPolicy, SuppressionReason, TlsPolicy};

fn corpus() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz-corpus/ses-events");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("the corpus directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("a corpus file"))
        .collect()
}

/// Replaces, deletes or retypes the node a random walk from the root
/// reaches (`seed` picks the branches).
fn mutate(v: &mut Value, seed: u32, op: u8, n: i64) {
    let len = match v {
        Value::Object(m) => m.len(),
        Value::Array(a) => a.len(),
        _ => 0,
    };
    if len > 0 && !seed.is_multiple_of(3) {
        let i = (seed as usize / 3) % len;
        let next = seed / 7;
        match v {
            Value::Object(m) if op == 0 && next.is_multiple_of(2) => {
                let key = m.keys().nth(i).cloned().unwrap_or_default();
                m.remove(&key);
            }
            Value::Object(m) => {
                if let Some(child) = m.values_mut().nth(i) {
                    mutate(child, next, op, n);
                }
            }
            Value::Array(a) => mutate(&mut a[i], next, op, n),
            _ => {}
        }
        return;
    }
    *v = match op {
        1 => Value::Null,
        2 => Value::from(n),
        3 => Value::from(format!("x{n}@y{n}")),
        4 => Value::Array(vec![Value::from(n), Value::Null]),
        5 => serde_json::json!({"k": n}),
        _ => Value::from(n % 2 == 0),
    };
}

fn counted(e: &Event) -> bool {
    !matches!(e.kind, windows::Kind::Other)
}

proptest! {
    #[test]
    fn the_event_parser_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = windows::parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn the_event_parser_takes_damaged_records(
        pick in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let records = corpus();
        let mut bytes = pick.get(&records).clone().into_bytes();
        for (at, b) in flips {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let _ = windows::parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn a_mutated_record_parses_to_an_event_or_an_error(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<u32>(), 0u8..7, any::<i64>()), 1..6),
    ) {
        let records = corpus();
        let mut v: Value = serde_json::from_str(pick.get(&records).as_str()).expect("corpus is JSON");
        for (seed, op, n) in edits {
            mutate(&mut v, seed, op, n);
        }
        if let Ok(event) = windows::parse(&v.to_string()) {
            prop_assert!(!event.set.is_empty());
            if let windows::Kind::Bounce(b) = &event.kind {
                // Only domains are kept, never an address.
                prop_assert!(b.domains.iter().all(|d| !d.contains('@') && d.len() <= windows::MAX_DOMAIN));
            }
        }
    }

    /// Any stream of events, in any order and with any send times: the
    /// window stays within its bound, a longer window never counts less
    /// than a shorter one, and a checkpoint of it restores the same sums.
    #[test]
    fn windows_stay_bounded_consistent_and_restorable(
        events in prop::collection::vec(
            (0usize..13, -100_000i64..600, 0i64..400, "[a-z]{1,60}"),
            1..200,
        ),
    ) {
        let records = corpus();
        let base = 1_800_000_000i64;
        let mut now = base;
        let mut w = Window::new(Timestamp::from_second(base).expect("time"));
        for (pick, sent, advance, domain) in events {
            now += advance;
            let Ok(mut event) = windows::parse(&records[pick % records.len()]) else { continue };
            event.sent_at = Timestamp::from_second(now + sent).ok();
            if let windows::Kind::Bounce(b) = &mut event.kind {
                b.domains = vec![format!("{domain}.example")];
            }
            let at = Timestamp::from_second(now).expect("time");
            let added = w.add(&event, at);
            prop_assert!(added || !counted(&event) || sent < -23 * 3600);
        }
        prop_assert!(w.bytes() <= Window::MAX_BYTES, "{} bytes", w.bytes());
        let at = Timestamp::from_second(now).expect("time");
        let sums: Vec<_> = [60, 900, 3600].iter().map(|s| w.summary(*s, at).counts).collect();
        for pair in sums.windows(2) {
            prop_assert!(pair[0].sends <= pair[1].sends && pair[0].hard_bounces <= pair[1].hard_bounces);
        }
        if let Some(snapshot) = w.snapshot(at) {
            let json = serde_json::to_string(&snapshot).expect("serialises");
            let back = serde_json::from_str(&json).expect("parses");
            let mut restored = Window::restore(&back, at);
            for secs in [60, 900, 3600, 86_400] {
                prop_assert_eq!(restored.summary(secs, at), w.summary(secs, at));
            }
        }
    }

    #[test]
    fn a_stored_checkpoint_of_any_shape_is_read_or_refused(
        text in ".{0,400}",
        edits in prop::collection::vec((any::<u32>(), 0u8..7, any::<i64>()), 0..6),
    ) {
        let _ = checkpoint::decode(&text);
        let entry = checkpoint::Entry {
            key: "ns/set".into(),
            uid: "u".into(),
            window: windows::Snapshot { since: 1, minutes: vec![(2, [1, 2, 3, 4])], ..Default::default() },
        };
        let (json, _) = checkpoint::encode(vec![(entry, 1)], 0, checkpoint::MAX_BYTES);
        let mut v: Value = serde_json::from_str(&json).expect("JSON");
        for (seed, op, n) in edits {
            mutate(&mut v, seed, op, n);
        }
        if let Ok(doc) = checkpoint::decode(&v.to_string()) {
            let now = Timestamp::from_second(1_800_000_000).expect("time");
            for e in &doc.sets {
                prop_assert!(Window::restore(&e.window, now).bytes() <= Window::MAX_BYTES);
            }
        }
    }

    #[test]
    fn any_topic_policy_is_judged_without_panicking(
        text in ".{0,300}",
        edits in prop::collection::vec((any::<u32>(), 0u8..7, any::<i64>()), 0..6),
    ) {
        const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:t";
        const SET: &str = "arn:aws:ses:us-east-1:123456789012:configuration-set/s";
        let request = topic_policy::Publish { topic_arn: TOPIC, source_account: "123456789012", source_arn: SET };
        let _ = topic_policy::ses_may_publish(&text, &request);
        let mut v = super::diff::topic::access_policy(TOPIC, "123456789012", SET);
        for (seed, op, n) in edits {
            mutate(&mut v, seed, op, n);
        }
        let _ = topic_policy::ses_may_publish(&v.to_string(), &request);
    }

    /// Applying the changes the diff returns to what AWS holds leaves
    /// nothing to change, and leaves every option the spec does not manage
    /// as it was.
    #[test]
    fn the_set_diff_converges_and_touches_only_what_the_spec_manages(
        mut desired in options(),
        observed in options(),
    ) {
        // As desired_options makes it from a spec.
        if let Some(reasons) = desired.suppression.as_mut() {
            reasons.sort();
            reasons.dedup();
        }
        let changes = set_diff::diff(&desired, &observed);
        let applied = apply(&observed, &changes);
        prop_assert_eq!(set_diff::diff(&desired, &applied), Vec::<SetChange>::new());
        if desired.suppression.is_none() {
            prop_assert_eq!(&applied.suppression, &observed.suppression);
        }
        if desired.validation.is_none() {
            prop_assert_eq!(&applied.validation, &observed.validation);
        }
        if desired.tracking.is_none() {
            prop_assert_eq!(&applied.tracking, &observed.tracking);
        }
        if desired.delivery.is_none() {
            prop_assert_eq!(&applied.delivery, &observed.delivery);
        }
        let (want, had, got) = (
            desired.vdm.clone().unwrap_or_default(),
            observed.vdm.clone().unwrap_or_default(),
            applied.vdm.clone().unwrap_or_default(),
        );
        if desired.vdm.is_none() || want.engagement_metrics.is_none() {
            prop_assert_eq!(got.engagement_metrics, had.engagement_metrics);
        }
        if desired.vdm.is_none() || want.optimized_shared_delivery.is_none() {
            prop_assert_eq!(got.optimized_shared_delivery, had.optimized_shared_delivery);
        }
    }

    #[test]
    fn the_tag_diff_converges_and_keeps_aws_tags(
        desired in prop::collection::btree_map("[a-c]{1,2}", "[x-z]{0,2}", 0..5),
        observed in prop::collection::btree_map("(aws:)?[a-c]{1,2}", "[x-z]{0,2}", 0..6),
    ) {
        let mut applied = observed.clone();
        for change in set_diff::diff_tags(&desired, &observed) {
            match change {
                SetChange::Tag(tags) => applied.extend(tags),
                SetChange::Untag(keys) => keys.iter().for_each(|k| { applied.remove(k); }),
                other => prop_assert!(false, "not a tag change: {:?}", other),
            }
        }
        prop_assert!(set_diff::diff_tags(&desired, &applied).is_empty());
        for (k, v) in observed.iter().filter(|(k, _)| k.starts_with("aws:")) {
            prop_assert_eq!(applied.get(k), Some(v));
        }
    }
}

/// What SES holds after the calls: each Put replaces its group.
fn apply(observed: &SetOptions, changes: &[SetChange]) -> SetOptions {
    let mut s = observed.clone();
    for change in changes {
        match change.clone() {
            SetChange::Sending(on) => s.sending_enabled = on,
            SetChange::ReputationMetrics(on) => s.reputation_metrics_enabled = on,
            SetChange::Suppression { reasons, validation } => {
                s.suppression = reasons;
                s.validation = validation;
            }
            SetChange::Tracking(t) => s.tracking = Some(t),
            SetChange::Delivery(d) => s.delivery = Some(d),
            SetChange::Vdm(v) => s.vdm = Some(v),
            SetChange::Tag(_) | SetChange::Untag(_) => {}
        }
    }
    s
}

fn feature() -> impl Strategy<Value = Option<Feature>> {
    prop_oneof![Just(None), Just(Some(Feature::Enabled)), Just(Some(Feature::Disabled))]
}

fn options() -> impl Strategy<Value = SetOptions> {
    let reasons = prop::collection::vec(
        prop_oneof![Just(SuppressionReason::Bounce), Just(SuppressionReason::Complaint)],
        0..4,
    );
    let tracking = ("[a-b]{0,2}", 0..3u8).prop_map(|(domain, p)| Tracking {
        custom_redirect_domain: domain,
        https_policy: [
            HttpsPolicy::Require,
            HttpsPolicy::RequireOpenOnly,
            HttpsPolicy::Optional,
        ][p as usize],
    });
    let delivery =
        (any::<bool>(), prop::option::of("[p-q]"), prop::option::of(300i64..302)).prop_map(|(require, pool, max)| {
            Delivery {
                tls_policy: if require {
                    TlsPolicy::Require
                } else {
                    TlsPolicy::Optional
                },
                sending_pool_name: pool,
                max_delivery_seconds: max,
            }
        });
    let validation = (
        any::<bool>(),
        prop::option::of(prop_oneof![
            Just(ConfidenceThreshold::Medium),
            Just(ConfidenceThreshold::High),
            Just(ConfidenceThreshold::Managed)
        ]),
    )
        .prop_map(|(enabled, threshold)| Validation { enabled, threshold });
    let vdm = (feature(), feature()).prop_map(|(engagement_metrics, optimized_shared_delivery)| Vdm {
        engagement_metrics,
        optimized_shared_delivery,
    });
    (
        any::<bool>(),
        any::<bool>(),
        (prop::option::of(reasons), prop::option::of(validation)),
        prop::option::of(tracking),
        prop::option::of(delivery),
        prop::option::of(vdm),
    )
        .prop_map(
            |(sending_enabled, reputation_metrics_enabled, (suppression, validation), tracking, delivery, vdm)| {
                SetOptions {
                    sending_enabled,
                    reputation_metrics_enabled,
                    suppression,
                    validation,
                    tracking,
                    delivery,
                    vdm,
                }
            },
        )
}

#[test]
fn the_corpus_parses() {
    let records = corpus();
    assert!(records.len() >= 10);
    for r in &records {
        windows::parse(r).unwrap_or_else(|e| panic!("{e}: {r}"));
    }
}
