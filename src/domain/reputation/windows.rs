//! Live rates from the SES event stream: parsing one SES event record (as
//! SES publishes it to SNS, delivered raw to SQS) and the per-set sliding
//! window it is counted into. Pure: no clients, no clock of its own (every
//! call gets `now`), so it unit-tests without AWS.
//!
//! Memory is bounded per set ([`Window::MAX_BYTES`]): fixed 1-minute buckets
//! for the last hour and 1-hour buckets for the last 24 hours, a fixed
//! table of bounce sub-types and a few slots for the recipient domains with
//! the most hard bounces. Recipient addresses are never kept: only their
//! domain, and only for hard bounces.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::Value;

/// One SES event record, reduced to what the window counts.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The configuration set's name in AWS (`mail.tags["ses:configuration-set"]`).
    pub set: String,
    /// The account that sent the mail (`mail.sendingAccountId`), if given.
    pub account_id: Option<String>,
    /// When the mail was sent (`mail.timestamp`): a bounce counts in the
    /// bucket of the send it belongs to, so that the rate over a window is
    /// the share of that window's mail that bounced.
    pub sent_at: Option<Timestamp>,
    pub kind: Kind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// Recipients the message went to.
    Send {
        recipients: u32,
    },
    Bounce(Bounce),
    Complaint {
        recipients: u32,
    },
    /// Delivery, Open, Click, ...: valid, not counted.
    Other,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Bounce {
    /// `bounceType: Permanent`: what AWS's bounce rate counts.
    pub hard: bool,
    pub sub_type: SubType,
    /// The domain of each bounced recipient (never the address).
    pub domains: Vec<String>,
}

/// Why a message was not counted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not an SES event record: {0}")]
    NotAnEvent(&'static str),
}

/// Parses one raw SES event record (event publishing format, `eventType`;
/// the older notification format's `notificationType` is read too).
pub fn parse(body: &str) -> Result<Event, ParseError> {
    let v: Value = serde_json::from_str(body).map_err(|e| ParseError::NotJson(e.to_string()))?;
    let kind = v
        .get("eventType")
        .or_else(|| v.get("notificationType"))
        .and_then(Value::as_str)
        .ok_or(ParseError::NotAnEvent("no eventType"))?;
    let mail = v.get("mail").ok_or(ParseError::NotAnEvent("no mail object"))?;
    let set = mail
        .get("tags")
        .and_then(|t| t.get("ses:configuration-set"))
        .and_then(|s| s.get(0))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(ParseError::NotAnEvent("no ses:configuration-set tag"))?
        .to_string();
    let sent_at = mail
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<Timestamp>().ok());
    let account_id = mail.get("sendingAccountId").and_then(Value::as_str).map(str::to_string);
    let count = |list: Option<&Value>| list.and_then(Value::as_array).map_or(0, |a| a.len()) as u32;
    let kind = match kind {
        "Send" => Kind::Send {
            recipients: count(mail.get("destination")).max(1),
        },
        "Bounce" => {
            let b = v
                .get("bounce")
                .ok_or(ParseError::NotAnEvent("Bounce without bounce object"))?;
            let recipients = b
                .get("bouncedRecipients")
                .and_then(Value::as_array)
                .ok_or(ParseError::NotAnEvent("Bounce without bouncedRecipients"))?;
            let hard = b.get("bounceType").and_then(Value::as_str) == Some("Permanent");
            let domains = recipients
                .iter()
                .map(|r| domain_of(r.get("emailAddress").and_then(Value::as_str).unwrap_or_default()))
                .collect();
            Kind::Bounce(Bounce {
                hard,
                sub_type: SubType::parse(b.get("bounceSubType").and_then(Value::as_str).unwrap_or_default()),
                domains,
            })
        }
        "Complaint" => {
            let c = v
                .get("complaint")
                .ok_or(ParseError::NotAnEvent("Complaint without complaint object"))?;
            Kind::Complaint {
                recipients: count(c.get("complainedRecipients")).max(1),
            }
        }
        _ => Kind::Other,
    };
    Ok(Event {
        set,
        account_id,
        sent_at,
        kind,
    })
}

/// Longest domain kept: a domain is at most 253 characters, but a few
/// dozen tell which provider refuses the mail, and memory stays bounded.
pub const MAX_DOMAIN: usize = 48;

/// The domain of an address, lower-cased and cut at [`MAX_DOMAIN`]; the
/// local part is dropped here, before anything is stored.
pub fn domain_of(address: &str) -> String {
    // `Name <user@example.com>` or a bare address.
    let address = address.rsplit('<').next().unwrap_or_default().trim_end_matches('>');
    let Some((_, domain)) = address.rsplit_once('@') else {
        return "invalid".into();
    };
    let domain: String = domain
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        .take(MAX_DOMAIN)
        .collect::<String>()
        .to_ascii_lowercase();
    if domain.is_empty() { "invalid".into() } else { domain }
}

/// SES's documented bounce sub-types (a fixed table: no string per bounce).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubType {
    Undetermined,
    General,
    NoEmail,
    Suppressed,
    OnAccountSuppressionList,
    MailboxFull,
    MessageTooLarge,
    ContentRejected,
    AttachmentRejected,
    Other,
}

impl SubType {
    const ALL: [SubType; 10] = [
        SubType::Undetermined,
        SubType::General,
        SubType::NoEmail,
        SubType::Suppressed,
        SubType::OnAccountSuppressionList,
        SubType::MailboxFull,
        SubType::MessageTooLarge,
        SubType::ContentRejected,
        SubType::AttachmentRejected,
        SubType::Other,
    ];

    pub fn parse(s: &str) -> SubType {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .unwrap_or(SubType::Other)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SubType::Undetermined => "Undetermined",
            SubType::General => "General",
            SubType::NoEmail => "NoEmail",
            SubType::Suppressed => "Suppressed",
            SubType::OnAccountSuppressionList => "OnAccountSuppressionList",
            SubType::MailboxFull => "MailboxFull",
            SubType::MessageTooLarge => "MessageTooLarge",
            SubType::ContentRejected => "ContentRejected",
            SubType::AttachmentRejected => "AttachmentRejected",
            SubType::Other => "Other",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|t| *t == self).unwrap_or(Self::ALL.len() - 1)
    }
}

/// Counts of one bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub sends: u32,
    pub hard_bounces: u32,
    pub soft_bounces: u32,
    pub complaints: u32,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.sends = self.sends.saturating_add(other.sends);
        self.hard_bounces = self.hard_bounces.saturating_add(other.hard_bounces);
        self.soft_bounces = self.soft_bounces.saturating_add(other.soft_bounces);
        self.complaints = self.complaints.saturating_add(other.complaints);
    }
}

const MINUTES: usize = 60;
const HOURS: usize = 24;
/// Domain slots per set (Space-Saving: a new domain takes the smallest slot).
const DOMAIN_SLOTS: usize = 5;

/// Longest window a breaker or status may ask for.
pub const MAX_WINDOW_SECS: u64 = (HOURS as u64) * 3600;

/// A counter that remembers the minute it last moved: entries not seen
/// within the window asked for are left out of the top lists.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    count: u32,
    minute: u32,
}

/// The sliding window of one configuration set.
#[derive(Clone, Debug)]
pub struct Window {
    minutes: [Counts; MINUTES],
    hours: [Counts; HOURS],
    /// Newest minute (unix minutes) and hour the rings hold.
    head_minute: i64,
    head_hour: i64,
    /// When counting started for this set (start-up or the first event):
    /// a window longer than `now - since` is still warming up.
    since: Timestamp,
    sub_types: [Seen; SubType::ALL.len()],
    domains: Vec<(Box<str>, Seen)>,
}

/// A window's totals, as status shows them.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub window_secs: u64,
    pub counts: Counts,
    /// Hard bounces / sends; `None` without sends.
    pub bounce_rate: Option<f64>,
    pub complaint_rate: Option<f64>,
    pub since: Timestamp,
    pub warming_up: bool,
    /// Bounce sub-types seen in the window (hard and soft), most first.
    pub top_sub_types: Vec<(&'static str, u32)>,
    /// Recipient domains by hard bounces, most first (approximate counts:
    /// a slot counts from when its domain took it).
    pub top_domains: Vec<(String, u32)>,
}

impl Window {
    /// Upper bound of one set's memory (struct and heap), kept by tests.
    pub const MAX_BYTES: usize = 2048;

    pub fn new(since: Timestamp) -> Self {
        let minute = since.as_second().div_euclid(60);
        Self {
            minutes: [Counts::default(); MINUTES],
            hours: [Counts::default(); HOURS],
            head_minute: minute,
            head_hour: minute.div_euclid(60),
            since,
            sub_types: Default::default(),
            domains: Vec::new(),
        }
    }

    pub fn since(&self) -> Timestamp {
        self.since
    }

    /// Bytes this window holds (for the memory bound).
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.domains.capacity() * std::mem::size_of::<(Box<str>, Seen)>()
            + self.domains.iter().map(|(d, _)| d.len()).sum::<usize>()
    }

    /// Moves the rings forward to `now`, clearing buckets that fell out.
    fn advance(&mut self, now: Timestamp) {
        let minute = now.as_second().div_euclid(60);
        if minute > self.head_minute {
            let steps = (minute - self.head_minute).min(MINUTES as i64);
            for m in (minute - steps + 1)..=minute {
                self.minutes[m.rem_euclid(MINUTES as i64) as usize] = Counts::default();
            }
            self.head_minute = minute;
        }
        let hour = minute.div_euclid(60);
        if hour > self.head_hour {
            let steps = (hour - self.head_hour).min(HOURS as i64);
            for h in (hour - steps + 1)..=hour {
                self.hours[h.rem_euclid(HOURS as i64) as usize] = Counts::default();
            }
            self.head_hour = hour;
        }
    }

    /// Counts one event. Returns false when it is older than the 24-hour
    /// window (not counted).
    pub fn add(&mut self, event: &Event, now: Timestamp) -> bool {
        self.advance(now);
        // A clock ahead of ours counts now; no time (older formats) too.
        let at = event.sent_at.filter(|t| *t <= now).unwrap_or(now);
        let minute = at.as_second().div_euclid(60);
        let hour = minute.div_euclid(60);
        if hour <= self.head_hour - HOURS as i64 {
            return false;
        }
        let mut c = Counts::default();
        match &event.kind {
            Kind::Send { recipients } => c.sends = *recipients,
            Kind::Bounce(b) => {
                let n = b.domains.len().max(1) as u32;
                if b.hard {
                    c.hard_bounces = n;
                    for d in &b.domains {
                        self.count_domain(d, minute);
                    }
                } else {
                    c.soft_bounces = n;
                }
                let slot = &mut self.sub_types[b.sub_type.index()];
                slot.count = slot.count.saturating_add(n);
                slot.minute = minute as u32;
            }
            Kind::Complaint { recipients } => c.complaints = *recipients,
            Kind::Other => return true,
        }
        if minute > self.head_minute - MINUTES as i64 {
            self.minutes[minute.rem_euclid(MINUTES as i64) as usize].add(&c);
        }
        self.hours[hour.rem_euclid(HOURS as i64) as usize].add(&c);
        true
    }

    fn count_domain(&mut self, domain: &str, minute: i64) {
        // `parse` already cuts domains; a window holds to its bound whatever
        // it is given (and restores a checkpoint to the same key).
        let cut: String;
        let domain = if domain.len() > MAX_DOMAIN {
            cut = domain.chars().take(MAX_DOMAIN).collect();
            cut.as_str()
        } else {
            domain
        };
        let minute = minute as u32;
        if let Some((_, seen)) = self.domains.iter_mut().find(|(d, _)| &**d == domain) {
            seen.count = seen.count.saturating_add(1);
            seen.minute = seen.minute.max(minute);
            return;
        }
        if self.domains.len() < DOMAIN_SLOTS {
            if self.domains.capacity() == 0 {
                self.domains.reserve_exact(DOMAIN_SLOTS);
            }
            self.domains.push((domain.into(), Seen { count: 1, minute }));
            return;
        }
        // Space-Saving: the smallest slot goes to the newcomer, which
        // inherits its count (an upper bound of the newcomer's own).
        if let Some(slot) = self.domains.iter_mut().min_by_key(|(_, s)| (s.count, s.minute)) {
            *slot = (
                domain.into(),
                Seen {
                    count: slot.1.count.saturating_add(1),
                    minute,
                },
            );
        }
    }

    /// Totals over the last `window_secs` (at most 24 h): 1-minute
    /// buckets up to an hour, 1-hour buckets beyond.
    pub fn summary(&mut self, window_secs: u64, now: Timestamp) -> Summary {
        self.advance(now);
        let window_secs = window_secs.clamp(60, MAX_WINDOW_SECS);
        let mut counts = Counts::default();
        if window_secs <= 3600 {
            let n = window_secs.div_ceil(60) as i64;
            for m in (self.head_minute - n + 1)..=self.head_minute {
                counts.add(&self.minutes[m.rem_euclid(MINUTES as i64) as usize]);
            }
        } else {
            let n = window_secs.div_ceil(3600) as i64;
            for h in (self.head_hour - n + 1)..=self.head_hour {
                counts.add(&self.hours[h.rem_euclid(HOURS as i64) as usize]);
            }
        }
        let first_minute = self.head_minute - window_secs.div_ceil(60) as i64 + 1;
        let recent = |s: &Seen| s.count > 0 && i64::from(s.minute) >= first_minute;
        let mut top_sub_types: Vec<(&'static str, u32)> = SubType::ALL
            .iter()
            .zip(self.sub_types.iter())
            .filter(|(_, s)| recent(s))
            .map(|(t, s)| (t.as_str(), s.count))
            .collect();
        top_sub_types.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        top_sub_types.truncate(3);
        let mut top_domains: Vec<(String, u32)> = self
            .domains
            .iter()
            .filter(|(_, s)| recent(s))
            .map(|(d, s)| (d.to_string(), s.count))
            .collect();
        top_domains.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        top_domains.truncate(3);
        let rate = |n: u32| (counts.sends > 0).then(|| f64::from(n) / f64::from(counts.sends));
        Summary {
            window_secs,
            counts,
            bounce_rate: rate(counts.hard_bounces),
            complaint_rate: rate(counts.complaints),
            since: self.since,
            warming_up: now.duration_since(self.since).as_secs_f64() < window_secs as f64,
            top_sub_types,
            top_domains,
        }
    }
}

impl Summary {
    /// Several sets' windows over the same span as one (an account's live
    /// rate): counts added, rates recomputed from them, the earliest start,
    /// warming up while any is, and the most frequent sub-types and
    /// domains across them. `None` for no summaries.
    pub fn merge(parts: &[Summary]) -> Option<Summary> {
        let first = parts.first()?;
        let mut counts = Counts::default();
        let mut sub_types: BTreeMap<&'static str, u32> = BTreeMap::new();
        let mut domains: BTreeMap<String, u32> = BTreeMap::new();
        for p in parts {
            counts.add(&p.counts);
            for (t, n) in &p.top_sub_types {
                *sub_types.entry(t).or_default() += n;
            }
            for (d, n) in &p.top_domains {
                *domains.entry(d.clone()).or_default() += n;
            }
        }
        fn top<K: Ord>(m: BTreeMap<K, u32>) -> Vec<(K, u32)> {
            let mut v: Vec<(K, u32)> = m.into_iter().collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            v.truncate(3);
            v
        }
        let rate = |n: u32| (counts.sends > 0).then(|| f64::from(n) / f64::from(counts.sends));
        Some(Summary {
            window_secs: first.window_secs,
            counts,
            bounce_rate: rate(counts.hard_bounces),
            complaint_rate: rate(counts.complaints),
            since: parts.iter().map(|p| p.since).min().unwrap_or(first.since),
            warming_up: parts.iter().any(|p| p.warming_up),
            top_sub_types: top(sub_types),
            top_domains: top(domains),
        })
    }
}

/// A window as a checkpoint holds it (see [`crate::domain::reputation::checkpoint`]):
/// the non-empty buckets by their unix minute or hour, the bounce sub-types
/// and the domain slots. Times are unix seconds, minutes and hours, so the
/// format needs no date parser and does not depend on the ring layout.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub since: i64,
    /// (unix minute, [sends, hard bounces, soft bounces, complaints]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub minutes: Vec<(i64, [u32; 4])>,
    /// (unix hour, counts as above).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hours: Vec<(i64, [u32; 4])>,
    /// (sub-type, count, unix minute last seen).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_types: Vec<(String, u32, u32)>,
    /// (domain, count, unix minute last seen).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<(String, u32, u32)>,
}

impl Counts {
    fn to_array(self) -> [u32; 4] {
        [self.sends, self.hard_bounces, self.soft_bounces, self.complaints]
    }

    fn from_array([sends, hard_bounces, soft_bounces, complaints]: [u32; 4]) -> Self {
        Self {
            sends,
            hard_bounces,
            soft_bounces,
            complaints,
        }
    }
}

impl Window {
    /// What a checkpoint keeps of this window at `now`: `None` when the
    /// last 24 hours hold nothing (a checkpoint only carries sets that sent).
    pub fn snapshot(&mut self, now: Timestamp) -> Option<Snapshot> {
        self.advance(now);
        let minutes: Vec<(i64, [u32; 4])> = ((self.head_minute - MINUTES as i64 + 1)..=self.head_minute)
            .map(|m| (m, self.minutes[m.rem_euclid(MINUTES as i64) as usize]))
            .filter(|(_, c)| *c != Counts::default())
            .map(|(m, c)| (m, c.to_array()))
            .collect();
        let hours: Vec<(i64, [u32; 4])> = ((self.head_hour - HOURS as i64 + 1)..=self.head_hour)
            .map(|h| (h, self.hours[h.rem_euclid(HOURS as i64) as usize]))
            .filter(|(_, c)| *c != Counts::default())
            .map(|(h, c)| (h, c.to_array()))
            .collect();
        if hours.is_empty() && minutes.is_empty() {
            return None;
        }
        let sub_types = SubType::ALL
            .iter()
            .zip(self.sub_types.iter())
            .filter(|(_, s)| s.count > 0)
            .map(|(t, s)| (t.as_str().to_string(), s.count, s.minute))
            .collect();
        let domains = self
            .domains
            .iter()
            .map(|(d, s)| (d.to_string(), s.count, s.minute))
            .collect();
        Some(Snapshot {
            since: self.since.as_second(),
            minutes,
            hours,
            sub_types,
            domains,
        })
    }

    /// A window rebuilt from a checkpoint at `now`: buckets that have left
    /// the rings since, or lie in the future, are dropped; domains and
    /// sub-types are held to the same bounds as counted ones.
    pub fn restore(snapshot: &Snapshot, now: Timestamp) -> Self {
        let since = Timestamp::from_second(snapshot.since).unwrap_or(now).min(now);
        let mut w = Window::new(since);
        w.advance(now);
        for &(m, counts) in &snapshot.minutes {
            if m > w.head_minute - MINUTES as i64 && m <= w.head_minute {
                w.minutes[m.rem_euclid(MINUTES as i64) as usize].add(&Counts::from_array(counts));
            }
        }
        for &(h, counts) in &snapshot.hours {
            if h > w.head_hour - HOURS as i64 && h <= w.head_hour {
                w.hours[h.rem_euclid(HOURS as i64) as usize].add(&Counts::from_array(counts));
            }
        }
        for (name, count, minute) in &snapshot.sub_types {
            let slot = &mut w.sub_types[SubType::parse(name).index()];
            slot.count = slot.count.saturating_add(*count);
            slot.minute = slot.minute.max(*minute);
        }
        for (domain, count, minute) in snapshot.domains.iter().take(DOMAIN_SLOTS) {
            if w.domains.capacity() == 0 {
                w.domains.reserve_exact(DOMAIN_SLOTS);
            }
            let domain = domain_of(&format!("@{domain}"));
            w.domains.push((
                domain.into(),
                Seen {
                    count: *count,
                    minute: *minute,
                },
            ));
        }
        w
    }

    /// Sends over the last hour: what orders sets when a checkpoint is full.
    pub fn recent_sends(&mut self, now: Timestamp) -> u32 {
        self.summary(3600, now).counts.sends
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).expect("timestamp")
    }

    fn record(kind: &str, extra: Value) -> String {
        let mut v = serde_json::json!({
            "eventType": kind,
            "mail": {
                "timestamp": "2027-01-15T08:00:00.000Z",
                "sendingAccountId": "123456789012",
                "destination": ["a@example.com", "b@example.com"],
                "tags": {"ses:configuration-set": ["campaign"]},
            },
        });
        if let (Some(obj), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
            obj.extend(extra.clone());
        }
        v.to_string()
    }

    fn bounce(kind: &str, sub: &str, to: &[&str]) -> String {
        let recipients: Vec<Value> = to.iter().map(|r| serde_json::json!({"emailAddress": r})).collect();
        record(
            "Bounce",
            serde_json::json!({"bounce": {"bounceType": kind, "bounceSubType": sub, "bouncedRecipients": recipients}}),
        )
    }

    fn event(body: &str, sent: i64) -> Event {
        let mut e = parse(body).expect("parses");
        e.sent_at = Some(at(sent));
        e
    }

    #[test]
    fn an_accounts_summary_adds_its_sets_counts_and_recomputes_the_rates() {
        let summary = |sends, hard, complaints, since| Summary {
            window_secs: 900,
            counts: Counts {
                sends,
                hard_bounces: hard,
                soft_bounces: 0,
                complaints,
            },
            bounce_rate: None,
            complaint_rate: None,
            since: at(since),
            warming_up: since > 0,
            top_sub_types: vec![("General", hard)],
            top_domains: vec![],
        };
        let merged = Summary::merge(&[summary(90, 0, 0, 0), summary(10, 10, 1, 60)]).expect("merged");
        assert_eq!(merged.counts.sends, 100);
        assert_eq!(merged.bounce_rate, Some(0.1));
        assert_eq!(merged.complaint_rate, Some(0.01));
        assert_eq!(merged.since, at(0));
        assert!(merged.warming_up);
        assert_eq!(merged.top_sub_types, [("General", 10)]);
        assert_eq!(Summary::merge(&[]), None);
    }

    #[test]
    fn parses_the_documented_records() {
        let send = parse(&record("Send", serde_json::json!({"send": {}}))).expect("send");
        assert_eq!(send.set, "campaign");
        assert_eq!(send.account_id.as_deref(), Some("123456789012"));
        assert_eq!(send.kind, Kind::Send { recipients: 2 });
        assert!(send.sent_at.is_some());
        let b = parse(&bounce("Permanent", "General", &["Bob <bob@Example.COM>"])).expect("bounce");
        assert_eq!(
            b.kind,
            Kind::Bounce(Bounce {
                hard: true,
                sub_type: SubType::General,
                domains: vec!["example.com".into()]
            })
        );
        let soft = parse(&bounce("Transient", "MailboxFull", &["x@y.org"])).expect("soft");
        assert!(matches!(soft.kind, Kind::Bounce(Bounce { hard: false, .. })));
        let c = parse(&record(
            "Complaint",
            serde_json::json!({"complaint": {"complainedRecipients": [{"emailAddress": "a@b.c"}]}}),
        ))
        .expect("complaint");
        assert_eq!(c.kind, Kind::Complaint { recipients: 1 });
        let d = parse(&record("Delivery", serde_json::json!({}))).expect("delivery");
        assert_eq!(d.kind, Kind::Other);
    }

    #[test]
    fn malformed_and_foreign_messages_are_errors_not_panics() {
        for body in [
            "",
            "not json",
            "[]",
            "{}",
            r#"{"eventType":"Send"}"#,
            r#"{"eventType":"Send","mail":{}}"#,
            r#"{"eventType":"Send","mail":{"tags":{"ses:configuration-set":[]}}}"#,
            r#"{"eventType":"Bounce","mail":{"tags":{"ses:configuration-set":["x"]}}}"#,
            r#"{"Type":"Notification","Message":"{}"}"#,
        ] {
            assert!(parse(body).is_err(), "{body:?} must not parse");
        }
    }

    #[test]
    fn only_permanent_bounces_count_as_hard() {
        let mut w = Window::new(at(0));
        for _ in 0..10 {
            w.add(&event(&record("Send", serde_json::json!({})), 10), at(20));
        }
        w.add(&event(&bounce("Permanent", "General", &["a@x.com"]), 10), at(20));
        w.add(&event(&bounce("Transient", "MailboxFull", &["b@y.com"]), 10), at(20));
        w.add(
            &event(&bounce("Undetermined", "Undetermined", &["c@z.com"]), 10),
            at(20),
        );
        let s = w.summary(900, at(30));
        assert_eq!(s.counts.sends, 20);
        assert_eq!(s.counts.hard_bounces, 1);
        assert_eq!(s.counts.soft_bounces, 2);
        assert_eq!(s.bounce_rate, Some(0.05));
        // Only hard bounces name domains.
        assert_eq!(s.top_domains, vec![("x.com".to_string(), 1)]);
        assert_eq!(s.top_sub_types.len(), 3);
    }

    #[test]
    fn the_window_slides_and_bounces_count_with_their_send() {
        let mut w = Window::new(at(0));
        w.add(&event(&record("Send", serde_json::json!({})), 0), at(0));
        w.add(&event(&bounce("Permanent", "General", &["a@x.com"]), 0), at(5));
        assert_eq!(w.summary(900, at(60)).counts.hard_bounces, 1);
        // 20 minutes on, a 15-minute window no longer has them; an hour does.
        let later = w.summary(900, at(20 * 60));
        assert_eq!(later.counts, Counts::default());
        assert_eq!(later.bounce_rate, None);
        assert!(later.top_domains.is_empty());
        assert_eq!(w.summary(3600, at(20 * 60)).counts.sends, 2);
        // Past an hour, the hour buckets answer longer windows.
        assert_eq!(w.summary(6 * 3600, at(3 * 3600)).counts.sends, 2);
        assert_eq!(w.summary(3600, at(3 * 3600)).counts.sends, 0);
        // A day later everything is gone, and events that old are refused.
        assert_eq!(w.summary(MAX_WINDOW_SECS, at(25 * 3600)).counts.sends, 0);
        assert!(!w.add(&event(&record("Send", serde_json::json!({})), 0), at(25 * 3600)));
    }

    #[test]
    fn a_new_window_is_warming_up_until_it_covers_the_window() {
        let mut w = Window::new(at(0));
        let s = w.summary(900, at(60));
        assert!(s.warming_up);
        assert_eq!(s.since, at(0));
        assert!(!w.summary(900, at(901)).warming_up);
    }

    #[test]
    fn memory_stays_bounded_with_many_domains() {
        let mut w = Window::new(at(0));
        let long = "d".repeat(300);
        for i in 0..10_000 {
            let to = format!("user{i}@{long}{i}.example");
            w.add(&event(&bounce("Permanent", "General", &[&to]), i), at(i));
            w.add(&event(&record("Send", serde_json::json!({})), i), at(i));
        }
        assert!(w.bytes() <= Window::MAX_BYTES, "{} bytes", w.bytes());
        let s = w.summary(3600, at(10_000));
        assert!(s.top_domains.len() <= 3);
        for (d, _) in &s.top_domains {
            assert!(d.len() <= MAX_DOMAIN && !d.contains('@') && !d.contains("user"), "{d}");
        }
    }

    #[test]
    fn the_busiest_domain_keeps_its_slot() {
        let mut w = Window::new(at(0));
        for i in 0..200 {
            w.add(&event(&bounce("Permanent", "General", &["x@gmail.com"]), 1), at(1));
            let other = format!("x@d{i}.org");
            w.add(&event(&bounce("Permanent", "General", &[&other]), 1), at(1));
        }
        let s = w.summary(900, at(2));
        assert_eq!(s.top_domains[0].0, "gmail.com");
        assert!(s.top_domains[0].1 >= 200);
    }

    #[test]
    fn a_restored_snapshot_summarises_like_the_window_it_came_from() {
        let mut w = Window::new(at(0));
        for i in 0..120 {
            w.add(&event(&record("Send", serde_json::json!({})), i * 30), at(i * 30));
            if i % 10 == 0 {
                w.add(
                    &event(&bounce("Permanent", "General", &["a@gmail.com"]), i * 30),
                    at(i * 30),
                );
                w.add(
                    &event(&bounce("Transient", "MailboxFull", &["b@y.org"]), i * 30),
                    at(i * 30),
                );
            }
        }
        let now = at(3600);
        let snapshot = w.snapshot(now).expect("counts");
        let json = serde_json::to_string(&snapshot).expect("serialises");
        let back: Snapshot = serde_json::from_str(&json).expect("parses");
        let mut restored = Window::restore(&back, now);
        for secs in [60, 900, 3600, 6 * 3600] {
            assert_eq!(restored.summary(secs, now), w.summary(secs, now), "window {secs}");
        }
        // Restored later, what left the window is gone and nothing else.
        let later = at(3600 + 20 * 60);
        assert_eq!(Window::restore(&back, later).summary(900, later), w.summary(900, later));
    }

    #[test]
    fn an_empty_window_has_no_snapshot_and_a_hostile_one_stays_bounded() {
        assert_eq!(Window::new(at(0)).snapshot(at(10)), None);
        let now = at(10_000);
        let now_minute = now.as_second() / 60;
        let hostile = Snapshot {
            since: i64::MIN,
            // Every bucket of the last hour twice at the maximum, a
            // thousand from 1970 and a thousand from the future.
            minutes: (0..120)
                .map(|i| (now_minute - i % 60, [u32::MAX; 4]))
                .chain((0..1000).map(|m| (m, [1; 4])))
                .chain((1..1000).map(|m| (now_minute + m, [1; 4])))
                .collect(),
            hours: vec![(i64::MAX, [1; 4]), (i64::MIN, [1; 4])],
            sub_types: vec![("Nope".into(), 1, 1)],
            domains: (0..50)
                .map(|i| (format!("{}{i}.example", "x".repeat(500)), 1, 1))
                .collect(),
        };
        let mut w = Window::restore(&hostile, now);
        assert!(w.bytes() <= Window::MAX_BYTES, "{} bytes", w.bytes());
        // An impossible start means counting starts now (warming up).
        assert_eq!(w.since(), now);
        let s = w.summary(3600, now);
        assert_eq!(s.counts.sends, u32::MAX, "saturates, never wraps");
        let snapshot = w.snapshot(now).expect("counts");
        assert_eq!(snapshot.minutes.len(), 60, "only the last hour's buckets");
    }
}
