//! The live windows' checkpoint: the document the leader writes (into a
//! ConfigMap, see `loops::live_checkpoint`) so that a restart or a
//! failover does not reopen the breaker's blind spot: the new leader starts
//! from the counts the old one had, not from zero sends. Pure: the format,
//! its size bound and which sets it keeps when full.

use serde::{Deserialize, Serialize};

use super::windows::Snapshot;

/// Format version; a document of another version is ignored (counting
/// starts empty, as before checkpoints existed).
pub const VERSION: u32 = 1;

/// A ConfigMap holds at most 1 MiB (etcd's request limit); the document
/// stays well below it whatever the number of sets.
pub const MAX_BYTES: usize = 768 * 1024;

/// The whole checkpoint of one operator instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    pub version: u32,
    /// Unix seconds.
    pub written_at: i64,
    /// Sets with counts that did not fit (the quietest ones).
    #[serde(default)]
    pub omitted: usize,
    pub sets: Vec<Entry>,
}

/// One set's window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// `namespace/name` of the ConfigurationSet object.
    pub key: String,
    /// Its uid: a window is restored only into the object it was counted
    /// for, not into a new object that took the name since.
    pub uid: String,
    pub window: Snapshot,
}

/// Why a stored checkpoint was not used.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a checkpoint: {0}")]
    Malformed(String),
    #[error("checkpoint version {0}, this operator reads {VERSION}")]
    Version(u32),
}

/// The document for `candidates` (each with its sends over the last hour),
/// at most `max_bytes` long: the busiest sets first, since their breaker
/// is the one a spike trips. Returns the JSON and how many were left out.
pub fn encode(mut candidates: Vec<(Entry, u32)>, written_at: i64, max_bytes: usize) -> (String, usize) {
    candidates.sort_by(|(a, sa), (b, sb)| sb.cmp(sa).then_with(|| a.key.cmp(&b.key)));
    let total = candidates.len();
    // Each entry is serialised once: its length decides whether it fits,
    // and the same text goes into the document (the envelope is written
    // here, in the field order `Document` declares; the tests decode it).
    let mut sets = String::new();
    let mut kept = 0;
    for (entry, _) in candidates {
        let Ok(json) = serde_json::to_string(&entry) else {
            continue;
        };
        // The envelope takes well under 100 bytes.
        if 100 + sets.len() + json.len() + 1 > max_bytes {
            break;
        }
        if kept > 0 {
            sets.push(',');
        }
        sets.push_str(&json);
        kept += 1;
    }
    let omitted = total - kept;
    let json = format!(r#"{{"version":{VERSION},"writtenAt":{written_at},"omitted":{omitted},"sets":[{sets}]}}"#);
    (json, omitted)
}

/// Reads a stored document.
pub fn decode(json: &str) -> Result<Document, DecodeError> {
    #[derive(Deserialize)]
    struct Versioned {
        version: u32,
    }
    let versioned: Versioned = serde_json::from_str(json).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if versioned.version != VERSION {
        return Err(DecodeError::Version(versioned.version));
    }
    serde_json::from_str(json).map_err(|e| DecodeError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, sends: u32) -> (Entry, u32) {
        let window = Snapshot {
            since: 1_800_000_000,
            minutes: (0..60).map(|m| (30_000_000 + m, [sends, 1, 0, 0])).collect(),
            hours: vec![(500_000, [sends * 60, 60, 0, 0])],
            ..Default::default()
        };
        (
            Entry {
                key: key.into(),
                uid: format!("uid-{key}"),
                window,
            },
            sends,
        )
    }

    #[test]
    fn a_document_round_trips() {
        let (json, omitted) = encode(vec![entry("a/one", 5), entry("b/two", 9)], 42, MAX_BYTES);
        assert_eq!(omitted, 0);
        let doc = decode(&json).expect("decodes");
        assert_eq!(doc.written_at, 42);
        let keys: Vec<&str> = doc.sets.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["b/two", "a/one"], "busiest first");
        assert_eq!(doc.sets[1], entry("a/one", 5).0);
    }

    #[test]
    fn a_full_document_keeps_the_busiest_sets_within_the_bound() {
        let candidates: Vec<_> = (0..10_000).map(|i| entry(&format!("ns/set-{i:05}"), i)).collect();
        let (json, omitted) = encode(candidates, 0, MAX_BYTES);
        assert!(json.len() <= MAX_BYTES, "{} bytes", json.len());
        let doc = decode(&json).expect("decodes");
        assert!(omitted > 0 && doc.omitted == omitted);
        assert_eq!(doc.sets.len() + omitted, 10_000);
        assert_eq!(doc.sets[0].key, "ns/set-09999");
        let quietest_kept = doc.sets.last().map(|e| e.key.clone()).unwrap_or_default();
        assert!(quietest_kept.as_str() > "ns/set-05000", "{quietest_kept}");
    }

    #[test]
    fn other_versions_and_garbage_are_refused() {
        assert!(matches!(
            decode(r#"{"version":2,"writtenAt":0,"sets":[]}"#),
            Err(DecodeError::Version(2))
        ));
        for junk in [
            "",
            "{",
            "[]",
            r#"{"version":1}"#,
            r#"{"version":1,"writtenAt":0,"sets":[{"key":1}]}"#,
        ] {
            assert!(matches!(decode(junk), Err(DecodeError::Malformed(_))), "{junk}");
        }
    }
}
