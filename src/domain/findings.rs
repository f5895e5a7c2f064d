//! AWS's own findings (SES `ListRecommendations`: DKIM, SPF, DMARC, BIMI,
//! BOUNCE, COMPLAINT, ...) as users see them: the few an EmailIdentity
//! shows with its `Findings` condition, the counts an SesAccount shows, and
//! which new ones deserve a Warning Event. Pure: the findings read and the
//! previous status come in as values.

use std::collections::BTreeMap;

use crate::api::account::FindingCount;
use crate::api::conditions::Desired;
use crate::api::email_identity::Finding;

/// Condition type on an EmailIdentity and an SesAccount. Abnormal-true,
/// like a Node's `MemoryPressure`: True while AWS has open findings.
pub const FINDINGS: &str = "Findings";

/// At most this many findings are copied into an identity's status (the
/// highest impact first); the condition message counts them all.
pub const SHOWN_PER_IDENTITY: usize = 5;

/// An open finding as the reader keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    /// The identity (`...:identity/<name>`) or account it is about.
    pub resource_arn: String,
    pub type_: String,
    /// HIGH or LOW.
    pub impact: String,
    pub description: String,
    /// When AWS last updated it (RFC 3339), if it says.
    pub updated: Option<String>,
}

impl Open {
    fn is_high(&self) -> bool {
        self.impact == "HIGH"
    }

    fn shown(&self) -> Finding {
        Finding {
            type_: self.type_.clone(),
            impact: self.impact.clone(),
            status: "OPEN".into(),
            description: self.description.clone(),
            last_updated: self.updated.clone(),
        }
    }
}

/// An account's open findings, by the resource they name.
pub type ByResource = BTreeMap<String, Vec<Open>>;

/// Groups what ListRecommendations returned, highest impact first, then by
/// type, so equal reads compare equal.
pub fn by_resource(findings: Vec<Open>) -> ByResource {
    let mut out = ByResource::new();
    for f in findings {
        out.entry(f.resource_arn.clone()).or_default().push(f);
    }
    for list in out.values_mut() {
        list.sort_by(|a, b| b.is_high().cmp(&a.is_high()).then_with(|| a.type_.cmp(&b.type_)));
    }
    out
}

/// What an identity's status shows for the open findings of the account's
/// latest read.
pub fn identity_view(open: &[Open]) -> (Vec<Finding>, Desired) {
    if open.is_empty() {
        return (
            Vec::new(),
            Desired::new(FINDINGS, false, "NoneOpen", "AWS reports no open finding"),
        );
    }
    let shown: Vec<Finding> = open.iter().take(SHOWN_PER_IDENTITY).map(Open::shown).collect();
    let high = open.iter().filter(|f| f.is_high()).count();
    let listed: Vec<String> = open.iter().map(|f| format!("{} ({})", f.type_, f.impact)).collect();
    let reason = if high > 0 { "HighImpactOpen" } else { "Open" };
    let message = format!(
        "AWS reports {} open finding(s): {}; see status.findings",
        open.len(),
        listed.join(", ")
    );
    (shown, Desired::new(FINDINGS, true, reason, message))
}

/// High-impact findings in `now` that `previous` (the status before) did
/// not show: each is worth one Warning Event.
pub fn newly_high<'a>(previous: &[Finding], now: &'a [Open]) -> Vec<&'a Open> {
    now.iter()
        .filter(|f| f.is_high())
        .filter(|f| !previous.iter().any(|p| p.type_ == f.type_ && p.impact == "HIGH"))
        .collect()
}

/// Open findings of the whole account, counted by type and impact.
pub fn counts(all: &ByResource) -> Vec<FindingCount> {
    let mut by: BTreeMap<(String, String), i64> = BTreeMap::new();
    for f in all.values().flatten() {
        *by.entry((f.type_.clone(), f.impact.clone())).or_default() += 1;
    }
    by.into_iter()
        .map(|((type_, impact), count)| FindingCount { type_, impact, count })
        .collect()
}

/// The account's condition: how many findings are open, and how many HIGH.
pub fn account_condition(all: &ByResource) -> Desired {
    let open: usize = all.values().map(Vec::len).sum();
    let high = all.values().flatten().filter(|f| f.is_high()).count();
    match (open, high) {
        (0, _) => Desired::new(
            FINDINGS,
            false,
            "NoneOpen",
            "AWS reports no open finding in this account",
        ),
        (n, 0) => Desired::new(
            FINDINGS,
            true,
            "Open",
            format!("AWS reports {n} open finding(s), none of high impact; see status.findings"),
        ),
        (n, h) => Desired::new(
            FINDINGS,
            true,
            "HighImpactOpen",
            format!("AWS reports {n} open finding(s), {h} of high impact; see status.findings and each EmailIdentity"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(arn: &str, type_: &str, impact: &str) -> Open {
        Open {
            resource_arn: arn.into(),
            type_: type_.into(),
            impact: impact.into(),
            description: format!("{type_} needs attention"),
            updated: None,
        }
    }

    const ID: &str = "arn:aws:ses:us-east-1:123456789012:identity/example.com";

    #[test]
    fn an_identity_shows_its_findings_highest_impact_first() {
        let all = by_resource(vec![open(ID, "SPF", "LOW"), open(ID, "DMARC", "HIGH")]);
        let (shown, cond) = identity_view(all.get(ID).map(Vec::as_slice).unwrap_or_default());
        let types: Vec<&str> = shown.iter().map(|f| f.type_.as_str()).collect();
        assert_eq!(types, ["DMARC", "SPF"]);
        assert_eq!((cond.status, cond.reason.as_str()), (Some(true), "HighImpactOpen"));
        assert!(cond.message.contains("DMARC (HIGH)"), "{}", cond.message);
    }

    #[test]
    fn none_open_is_false() {
        let (shown, cond) = identity_view(&[]);
        assert!(shown.is_empty());
        assert_eq!((cond.status, cond.reason.as_str()), (Some(false), "NoneOpen"));
    }

    #[test]
    fn status_shows_a_few_and_the_message_counts_all() {
        let many: Vec<Open> = ["A", "B", "C", "D", "E", "F", "G"]
            .iter()
            .map(|t| open(ID, t, "LOW"))
            .collect();
        let (shown, cond) = identity_view(&many);
        assert_eq!(shown.len(), SHOWN_PER_IDENTITY);
        assert!(
            cond.message.starts_with("AWS reports 7 open finding(s)"),
            "{}",
            cond.message
        );
    }

    #[test]
    fn only_a_new_high_finding_is_announced() {
        let now = vec![open(ID, "DMARC", "HIGH"), open(ID, "SPF", "LOW")];
        assert_eq!(newly_high(&[], &now).len(), 1);
        let before = vec![open(ID, "DMARC", "HIGH").shown()];
        assert!(newly_high(&before, &now).is_empty());
        // LOW before, HIGH now: worse, announced.
        let before = vec![open(ID, "DMARC", "LOW").shown()];
        assert_eq!(newly_high(&before, &now).len(), 1);
    }

    #[test]
    fn the_account_counts_by_type_and_impact() {
        let other = "arn:aws:ses:us-east-1:123456789012:identity/other.com";
        let all = by_resource(vec![
            open(ID, "DMARC", "HIGH"),
            open(other, "DMARC", "HIGH"),
            open(other, "SPF", "LOW"),
        ]);
        let got: Vec<(String, String, i64)> = counts(&all).into_iter().map(|c| (c.type_, c.impact, c.count)).collect();
        assert_eq!(
            got,
            [("DMARC".into(), "HIGH".into(), 2), ("SPF".into(), "LOW".into(), 1)]
        );
        let cond = account_condition(&all);
        assert_eq!((cond.status, cond.reason.as_str()), (Some(true), "HighImpactOpen"));
        assert_eq!(account_condition(&ByResource::new()).reason, "NoneOpen");
    }
}
