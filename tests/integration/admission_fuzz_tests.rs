//! Random specs, generated from the CRD schemas the operator installs, sent
//! to the real API server: each is refused at admission or, once admitted,
//! settles (Ready or Stalled, never retrying forever), and every admitted
//! object can be deleted (its finalizer comes off). `FUZZ_SEED` repeats a
//! run (the seed is printed); `ADMISSION_FUZZ_N` sets how many objects.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use ses_reputation_operator::api::ConfigurationSet;

use crate::support::{World, WorldOptions, apply_json, cs_object, eventually, unique, wait_set_ready};

/// xorshift64*: a seeded stream the run can be repeated from (the
/// generator must not depend on proptest's runner, which cannot await).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const STRINGS: &[&str] = &[
    "",
    "a",
    "example.com",
    "Bounce-Feed_1",
    "UPPER",
    "30s",
    "15m",
    "25h",
    "../etc",
    "ü@ß.example",
    "arn:aws:sns:us-east-1:123456789012:topic",
    "https://hooks.example.com/ses",
    "{\"a\": [1]}",
    "{not json",
];

/// A value a user would likely write for a string field: what its name
/// and pattern suggest.
fn plausible_string(key: &str, schema: &Value, rng: &mut Rng) -> Value {
    let pattern = schema["pattern"].as_str().unwrap_or_default();
    let key = key.to_ascii_lowercase();
    let s = if pattern.contains(":sns:") || key.contains("topicarn") {
        "arn:aws:sns:us-east-1:123456789012:fuzz-topic".to_string()
    } else if pattern.contains(":events:") {
        "arn:aws:events:us-east-1:123456789012:event-bus/default".to_string()
    } else if key.contains("domain") {
        "track.example.com".to_string()
    } else if key.contains("filterpolicy") {
        r#"{"eventType": ["Bounce"]}"#.to_string()
    } else if key.contains("endpoint") {
        rng.pick(&[
            "ops@example.com",
            "https://hooks.example.com/ses",
            "arn:aws:sqs:us-east-1:123456789012:q",
        ])
        .to_string()
    } else if key.contains("window") || key.contains("after") || key.contains("for") {
        rng.pick(&["15m", "1h", "90s"]).to_string()
    } else if key.contains("kms") {
        "alias/aws/sns".to_string()
    } else {
        format!("fuzz-{}", rng.below(1000))
    };
    json!(s)
}

/// A value for `schema`. `wild`: mostly what the schema describes,
/// sometimes just outside it (a bad enum value, a number out of range, an
/// odd string); tame: what a user would plausibly write.
fn generate(key: &str, schema: &Value, rng: &mut Rng, depth: usize, wild: bool) -> Value {
    if let Some(values) = schema["enum"].as_array()
        && !values.is_empty()
    {
        let valid: Vec<Value> = values.iter().filter(|v| !v.is_null()).cloned().collect();
        return match (wild && rng.chance(15), valid.is_empty()) {
            (false, false) => rng.pick(&valid).clone(),
            _ => json!("Garbage"),
        };
    }
    for branch in ["oneOf", "anyOf"] {
        if let Some(options) = schema[branch].as_array().filter(|o| !o.is_empty()) {
            let mut merged = schema.clone();
            if let (Some(m), Some(o)) = (merged.as_object_mut(), rng.pick(options).as_object()) {
                m.remove(branch);
                m.extend(o.clone());
            }
            return generate(key, &merged, rng, depth, wild);
        }
    }
    if schema["x-kubernetes-int-or-string"] == true {
        return if rng.chance(50) {
            json!(rng.below(100))
        } else {
            json!(rng.pick(STRINGS))
        };
    }
    match schema["type"].as_str().unwrap_or("object") {
        "string" if !wild => plausible_string(key, schema, rng),
        "string" => {
            if rng.chance(10) {
                json!("x".repeat(rng.below(400) as usize))
            } else {
                json!(*rng.pick(STRINGS))
            }
        }
        "integer" | "number" => {
            let (min, max) = (schema["minimum"].as_f64(), schema["maximum"].as_f64());
            let integer = schema["type"] == "integer";
            let within = |rng: &mut Rng, lo: f64, hi: f64| {
                let x = lo + (hi - lo) * (rng.below(1001) as f64 / 1000.0);
                if integer { json!(x.round() as i64) } else { json!(x) }
            };
            match (min, max, wild.then(|| rng.below(3))) {
                (Some(lo), _, Some(1)) => json!(lo - 1.0),
                (_, Some(hi), Some(2)) => json!(hi + 1.0),
                (Some(lo), Some(hi), _) => within(rng, lo, hi),
                (Some(lo), None, _) => within(rng, lo, lo + 1000.0),
                _ => json!(*rng.pick(&[-1i64, 0, 1, 300, 50_400, 1_000_000_000])),
            }
        }
        "boolean" => json!(rng.chance(50)),
        "array" => {
            let n = rng.below(if depth > 4 { 1 } else { 4 });
            Value::Array(
                (0..n)
                    .map(|_| generate(key, &schema["items"], rng, depth + 1, wild))
                    .collect(),
            )
        }
        _ => {
            let mut out = serde_json::Map::new();
            let required: Vec<&str> = schema["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(props) = schema["properties"].as_object() {
                for (name, sub) in props {
                    if depth < 6 && (required.contains(&name.as_str()) || rng.chance(40)) {
                        out.insert(name.clone(), generate(name, sub, rng, depth + 1, wild));
                    }
                }
            } else if schema["additionalProperties"].is_object() {
                for _ in 0..rng.below(3) {
                    let name = if wild {
                        rng.pick(STRINGS).to_string()
                    } else {
                        format!("k{}", rng.below(9))
                    };
                    out.insert(
                        name,
                        generate(key, &schema["additionalProperties"], rng, depth + 1, wild),
                    );
                }
            }
            Value::Object(out)
        }
    }
}

fn spec_schema(kind: &str) -> Value {
    let crd = ses_reputation_operator::api::crds()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .expect("CRD");
    let schema = serde_json::to_value(&crd.spec.versions[0].schema).expect("schema");
    schema["openAPIV3Schema"]["properties"]["spec"].clone()
}

fn resource(kind: &str) -> ApiResource {
    let plural = match kind {
        "ConfigurationSet" => "configurationsets",
        "EventDestination" => "eventdestinations",
        _ => "reputationpolicies",
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("ses.reputation.io", "v1alpha1", kind), plural)
}

/// Ready or Stalled: the states kstatus calls Current and Failed.
fn settled(obj: &DynamicObject) -> Option<String> {
    let conditions = obj.data["status"]["conditions"].as_array()?;
    let is = |t: &str| {
        conditions
            .iter()
            .find(|c| c["type"] == t && c["status"] == "True")
            .map(|c| format!("{t} {}", c["reason"].as_str().unwrap_or_default()))
    };
    is("Ready").or_else(|| is("Stalled"))
}

#[tokio::test(flavor = "multi_thread")]
async fn random_specs_are_refused_at_admission_or_settle_and_delete() {
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5e5_f022);
    let n: usize = std::env::var("ADMISSION_FUZZ_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(250);
    eprintln!("admission fuzz: FUZZ_SEED={seed} ADMISSION_FUZZ_N={n}");
    let w = World::with(
        "fuzz",
        WorldOptions {
            account_grace: Duration::from_secs(3),
            ..Default::default()
        },
    )
    .await;
    let sets: Api<ConfigurationSet> = w.api();
    apply_json(&sets, cs_object("base", json!({"name": unique("fuzz-base")}))).await;
    wait_set_ready(&sets, "base").await;

    let mut rng = Rng(seed | 1);
    let kinds = ["ConfigurationSet", "EventDestination", "ReputationPolicy"];
    let schemas: BTreeMap<&str, Value> = kinds.iter().map(|k| (*k, spec_schema(k))).collect();
    let mut admitted: Vec<(&str, String)> = Vec::new();
    let mut refused = 0;
    for i in 0..n {
        let kind = *rng.pick(&kinds);
        let wild = rng.chance(40);
        let mut spec = generate("spec", &schemas[kind], &mut rng, 0, wild);
        if kind == "EventDestination" && !wild {
            // One target, as a user writes it.
            let keep = *rng.pick(&["sns", "cloudWatch", "eventBridge"]);
            if let Some(m) = spec.as_object_mut() {
                m.retain(|k, _| !["sns", "cloudWatch", "eventBridge"].contains(&k.as_str()) || k == keep);
                if !m.contains_key(keep) {
                    m.insert(
                        keep.to_string(),
                        generate(keep, &schemas[kind]["properties"][keep], &mut rng, 1, false),
                    );
                }
            }
        }
        // Mostly names no other test uses, and references that resolve.
        if kind == "ConfigurationSet" && rng.chance(80) {
            spec["name"] = json!(unique("fuzz"));
        }
        if kind == "EventDestination" && rng.chance(70) {
            spec["configurationSetRef"] = json!({"name": "base"});
        }
        let name = format!("f{i}");
        let body = json!({
            "apiVersion": "ses.reputation.io/v1alpha1", "kind": kind,
            "metadata": {"name": name}, "spec": spec,
        });
        let api: Api<DynamicObject> = Api::namespaced_with(w.client.clone(), &w.ns, &resource(kind));
        match api
            .patch(&name, &PatchParams::apply("fuzz").force(), &Patch::Apply(&body))
            .await
        {
            Ok(_) => admitted.push((kind, name)),
            Err(kube::Error::Api(status)) if status.code == 422 || status.code == 400 => {
                refused += 1;
                if std::env::var("FUZZ_VERBOSE").is_ok() {
                    eprintln!("refused {kind}: {}", status.message);
                }
            }
            Err(e) => panic!("{kind} {name}: {e}\n{body}"),
        }
    }
    eprintln!("admission fuzz: {} admitted, {refused} refused", admitted.len());
    assert!(
        refused > 0 && admitted.len() > n / 4,
        "the generator is off: {refused} refused"
    );

    // Every admitted object settles: Ready, or Stalled with a reason.
    for (kind, name) in &admitted {
        let api: Api<DynamicObject> = Api::namespaced_with(w.client.clone(), &w.ns, &resource(kind));
        eventually(&format!("{kind} {name} settles"), Duration::from_secs(90), || async {
            let obj = api.get(name).await.map_err(|e| e.to_string())?;
            settled(&obj).ok_or_else(|| format!("{} {}", obj.data["spec"], obj.data["status"]))
        })
        .await;
    }
    let metrics = w.ctx.metrics.encode();
    assert!(!metrics.contains(r#"result="invariant""#), "{metrics}");

    // And goes away when deleted (a cleanup that loops would keep it).
    for (kind, name) in &admitted {
        let api: Api<DynamicObject> = Api::namespaced_with(w.client.clone(), &w.ns, &resource(kind));
        api.delete(name, &DeleteParams::default()).await.ok();
    }
    for (kind, name) in &admitted {
        let api: Api<DynamicObject> = Api::namespaced_with(w.client.clone(), &w.ns, &resource(kind));
        eventually(&format!("{kind} {name} deleted"), Duration::from_secs(60), || async {
            match api.get_opt(name).await.map_err(|e| e.to_string())? {
                None => Ok(()),
                Some(o) => Err(format!("{}", o.data["status"])),
            }
        })
        .await;
    }
}
