//! Email identity settings as SES sees them, the per-attribute changes (one
//! Put call each) that move AWS to the spec, the DNS records AWS asks for,
//! and the verification verdict shown in status.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::api::conditions::{self, Desired};
use crate::api::email_identity::{DkimKeyLength, DmarcSpec, DnsRecord, EmailIdentitySpec, MxFailureBehavior};

/// Condition types of an EmailIdentity besides the kstatus triple.
pub const VERIFIED: &str = "Verified";
pub const DKIM_VERIFIED: &str = "DkimVerified";
pub const MAIL_FROM_VERIFIED: &str = "MailFromVerified";

/// How long verification may stay pending before the identity is Stalled.
/// AWS itself gives up on a domain after 72 hours (status FAILED); this
/// covers identities whose status never leaves PENDING or NOT_STARTED.
pub const VERIFICATION_WINDOW: Duration = Duration::from_secs(72 * 3600);

/// The settings of an identity that the operator manages, in SES's terms.
/// DKIM fields are `None` for an address identity (signed through its
/// domain).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentitySettings {
    pub dkim_signing: Option<bool>,
    pub key_length: Option<DkimKeyLength>,
    pub mail_from: Option<String>,
    pub behavior_on_mx_failure: MxFailureBehavior,
    /// AWS name of the default configuration set.
    pub configuration_set: Option<String>,
    pub feedback_forwarding: bool,
}

/// One SES call that moves one attribute group (or the tags) to the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityChange {
    DkimSigning(bool),
    KeyLength(DkimKeyLength),
    MailFrom {
        domain: Option<String>,
        behavior: MxFailureBehavior,
    },
    ConfigurationSet(Option<String>),
    Feedback(bool),
    Tag(BTreeMap<String, String>),
    Untag(Vec<String>),
}

impl IdentityChange {
    /// Short name for events and logs.
    pub fn group(&self) -> &'static str {
        match self {
            IdentityChange::DkimSigning(_) => "dkim",
            IdentityChange::KeyLength(_) => "dkim.keyLength",
            IdentityChange::MailFrom { .. } => "mailFrom",
            IdentityChange::ConfigurationSet(_) => "configurationSet",
            IdentityChange::Feedback(_) => "feedbackForwarding",
            IdentityChange::Tag(_) | IdentityChange::Untag(_) => "tags",
        }
    }
}

/// Whether an identity name is an email address (else a domain).
pub fn is_address(identity: &str) -> bool {
    identity.contains('@')
}

/// What SES should hold for `spec`; `set` is the default set's AWS name.
pub fn desired(spec: &EmailIdentitySpec, set: Option<String>) -> IdentitySettings {
    let domain = !is_address(&spec.identity);
    IdentitySettings {
        dkim_signing: domain.then_some(spec.dkim.signing_enabled),
        key_length: domain.then_some(spec.dkim.key_length),
        mail_from: spec.mail_from_domain.clone(),
        behavior_on_mx_failure: spec.behavior_on_mx_failure,
        configuration_set: set,
        feedback_forwarding: spec.feedback_forwarding,
    }
}

/// The spec's tags plus the ownership tag.
pub fn desired_tags(spec: &EmailIdentitySpec, owner: (&str, &str)) -> BTreeMap<String, String> {
    let mut tags = spec.tags.clone();
    tags.insert(owner.0.to_string(), owner.1.to_string());
    tags
}

/// The calls that move `observed` to `desired`, in a fixed order.
pub fn diff(desired: &IdentitySettings, observed: &IdentitySettings) -> Vec<IdentityChange> {
    let mut out = Vec::new();
    if let Some(signing) = desired.dkim_signing
        && observed.dkim_signing != Some(signing)
    {
        out.push(IdentityChange::DkimSigning(signing));
    }
    if let Some(length) = desired.key_length
        && observed.key_length != Some(length)
    {
        out.push(IdentityChange::KeyLength(length));
    }
    // Without a MAIL FROM domain the MX behaviour means nothing: only a
    // domain change is worth a call then.
    let mail_from_differs = desired.mail_from != observed.mail_from
        || (desired.mail_from.is_some() && desired.behavior_on_mx_failure != observed.behavior_on_mx_failure);
    if mail_from_differs {
        out.push(IdentityChange::MailFrom {
            domain: desired.mail_from.clone(),
            behavior: desired.behavior_on_mx_failure,
        });
    }
    if desired.configuration_set != observed.configuration_set {
        out.push(IdentityChange::ConfigurationSet(desired.configuration_set.clone()));
    }
    if desired.feedback_forwarding != observed.feedback_forwarding {
        out.push(IdentityChange::Feedback(desired.feedback_forwarding));
    }
    out
}

/// Tag changes, as for configuration sets (`aws:` tags are AWS's own).
pub fn diff_tags(desired: &BTreeMap<String, String>, observed: &BTreeMap<String, String>) -> Vec<IdentityChange> {
    let (to_set, to_remove) = super::tag_changes(desired, observed);
    let mut changes = Vec::new();
    if !to_set.is_empty() {
        changes.push(IdentityChange::Tag(to_set));
    }
    if !to_remove.is_empty() {
        changes.push(IdentityChange::Untag(to_remove));
    }
    changes
}

/// An identity as GetEmailIdentity shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedIdentity {
    pub settings: IdentitySettings,
    pub tags: BTreeMap<String, String>,
    pub identity_type: String,
    pub verification_status: String,
    /// VerificationInfo.ErrorType.
    pub verification_error: Option<String>,
    pub dkim_status: Option<String>,
    pub dkim_tokens: Vec<String>,
    pub mail_from_status: Option<String>,
}

impl ObservedIdentity {
    /// What GetEmailIdentity would show after `change` succeeded, so a pass
    /// that writes needs no second read for its status.
    pub fn apply(&mut self, change: &IdentityChange) {
        let s = &mut self.settings;
        match change {
            IdentityChange::DkimSigning(on) => s.dkim_signing = Some(*on),
            IdentityChange::KeyLength(length) => s.key_length = Some(*length),
            IdentityChange::MailFrom { domain, behavior } => {
                if s.mail_from != *domain {
                    // A new MAIL FROM domain is checked again by AWS.
                    self.mail_from_status = domain.as_ref().map(|_| "PENDING".to_string());
                }
                s.mail_from = domain.clone();
                s.behavior_on_mx_failure = *behavior;
            }
            IdentityChange::ConfigurationSet(set) => s.configuration_set = set.clone(),
            IdentityChange::Feedback(on) => s.feedback_forwarding = *on,
            IdentityChange::Tag(tags) => self.tags.extend(tags.clone()),
            IdentityChange::Untag(keys) => self.tags.retain(|k, _| !keys.contains(k)),
        }
    }
}

/// The DNS records AWS asks for: one CNAME per Easy DKIM token, and for a
/// MAIL FROM domain its MX (the region's feedback endpoint) and SPF TXT;
/// plus the domain's `_dmarc` TXT when the spec sets a DMARC policy.
/// Sorted, so equal records compare equal.
pub fn dns_records(
    identity: &str,
    observed: &ObservedIdentity,
    region: &str,
    dmarc: Option<&DmarcSpec>,
) -> Vec<DnsRecord> {
    let domain = identity.rsplit('@').next().unwrap_or(identity);
    let mut out: Vec<DnsRecord> = Vec::new();
    if !is_address(identity) {
        for token in &observed.dkim_tokens {
            out.push(DnsRecord {
                type_: "CNAME".into(),
                name: format!("{token}._domainkey.{domain}"),
                value: format!("{token}.dkim.amazonses.com"),
            });
        }
    }
    if let Some(mail_from) = &observed.settings.mail_from {
        out.push(DnsRecord {
            type_: "MX".into(),
            name: mail_from.clone(),
            value: format!("10 feedback-smtp.{region}.amazonses.com"),
        });
        out.push(DnsRecord {
            type_: "TXT".into(),
            name: mail_from.clone(),
            value: "\"v=spf1 include:amazonses.com ~all\"".into(),
        });
    }
    if let Some(dmarc) = dmarc.filter(|_| !is_address(identity)) {
        out.push(DnsRecord {
            type_: "TXT".into(),
            name: format!("_dmarc.{domain}"),
            value: format!("\"{}\"", dmarc_value(dmarc)),
        });
    }
    out.sort();
    out
}

/// The DMARC record's tags in RFC 7489's order (`v` and `p` first);
/// defaults (`sp` = `p`, `pct=100`) are left out, as receivers assume them.
pub fn dmarc_value(dmarc: &DmarcSpec) -> String {
    let mut tags = vec!["v=DMARC1".to_string(), format!("p={}", dmarc.policy.as_tag())];
    if let Some(sp) = dmarc.subdomain_policy.filter(|sp| *sp != dmarc.policy) {
        tags.push(format!("sp={}", sp.as_tag()));
    }
    if !dmarc.rua.is_empty() {
        tags.push(format!("rua={}", dmarc.rua.join(",")));
    }
    if let Some(pct) = dmarc.percentage.filter(|p| *p != 100) {
        tags.push(format!("pct={pct}"));
    }
    tags.join("; ")
}

/// TTL of the records in the external-dns `DNSEndpoint`.
pub const DNS_TTL: i64 = 1800;

/// The `spec.endpoints` of an external-dns `DNSEndpoint` for `records`:
/// one endpoint per name and type, with every value of that pair as
/// targets (MX targets are "priority host", as external-dns expects).
pub fn external_dns_endpoints(records: &[DnsRecord]) -> Vec<serde_json::Value> {
    let mut grouped: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for r in records {
        grouped
            .entry((r.name.as_str(), r.type_.as_str()))
            .or_default()
            .push(r.value.as_str());
    }
    grouped
        .into_iter()
        .map(|((name, type_), targets)| {
            serde_json::json!({"dnsName": name, "recordType": type_, "targets": targets, "recordTTL": DNS_TTL})
        })
        .collect()
}

/// Where verification stands, and what the kstatus triple should say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    Verified,
    /// Still waiting for AWS (and the DNS records): Reconciling.
    Pending,
    /// FAILED, or pending past [`VERIFICATION_WINDOW`]: Stalled.
    Failed {
        reason: String,
        message: String,
    },
}

/// The verdict for an identity whose verification has been pending for
/// `pending_for` (None: not pending).
pub fn verification(observed: &ObservedIdentity, identity: &str, pending_for: Option<Duration>) -> Verification {
    match observed.verification_status.as_str() {
        "SUCCESS" => Verification::Verified,
        "FAILED" => {
            let reason = observed
                .verification_error
                .clone()
                .unwrap_or_else(|| "VerificationFailed".into());
            let message = format!(
                "AWS could not verify {identity}: {reason}; publish the records in status.dnsRecords{}",
                if is_address(identity) {
                    " (an address is verified through the link AWS mails to it), then delete and recreate this object to start again"
                } else {
                    ", then delete and recreate this object to start verification again"
                }
            );
            Verification::Failed { reason, message }
        }
        _ if pending_for.is_some_and(|d| d > VERIFICATION_WINDOW) => Verification::Failed {
            reason: "VerificationTimedOut".into(),
            message: format!(
                "verification of {identity} has been {} for over 72 hours: check the records in status.dnsRecords",
                observed.verification_status
            ),
        },
        _ => Verification::Pending,
    }
}

/// Conditions for an identity that SES holds as the spec says.
pub fn conditions(identity: &str, observed: &ObservedIdentity, verdict: &Verification) -> Vec<Desired> {
    let mut out = match verdict {
        Verification::Verified => conditions::ready(format!("{identity} is verified and in sync")),
        Verification::Pending => conditions::reconciling(
            "VerificationPending",
            format!(
                "waiting for AWS to verify {identity} ({}){}",
                observed.verification_status,
                if is_address(identity) {
                    ": follow the link AWS mailed to the address"
                } else {
                    ": publish the records in status.dnsRecords"
                }
            ),
        ),
        Verification::Failed { reason, message } => conditions::stalled(reason.clone(), message.clone()),
    };
    out.push(status_condition(
        VERIFIED,
        Some(&observed.verification_status),
        "identity",
    ));
    out.push(if is_address(identity) {
        Desired::tri(
            DKIM_VERIFIED,
            None,
            "NotApplicable",
            "an address is signed through its domain's identity",
        )
    } else {
        status_condition(DKIM_VERIFIED, observed.dkim_status.as_deref(), "DKIM")
    });
    out.push(match &observed.settings.mail_from {
        None => Desired::tri(
            MAIL_FROM_VERIFIED,
            None,
            "NotConfigured",
            "no MAIL FROM domain: SES uses its own",
        ),
        Some(_) => status_condition(MAIL_FROM_VERIFIED, observed.mail_from_status.as_deref(), "MAIL FROM"),
    });
    out
}

/// A domain condition from an AWS status string: True on SUCCESS, False
/// otherwise, with AWS's status as the reason (`TEMPORARY_FAILURE` ->
/// `TemporaryFailure`).
fn status_condition(type_: &'static str, status: Option<&str>, what: &str) -> Desired {
    let status = status.unwrap_or("NOT_STARTED");
    let reason: String = status
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next().map_or(String::new(), |f| {
                f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase()
            })
        })
        .collect();
    let reason = if reason.is_empty() {
        "Unknown".to_string()
    } else {
        reason
    };
    Desired::new(
        type_,
        status == "SUCCESS",
        reason,
        format!("{what} verification status is {status}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> EmailIdentitySpec {
        serde_json::from_value(v).expect("spec")
    }

    fn observed(settings: IdentitySettings) -> ObservedIdentity {
        ObservedIdentity {
            settings,
            tags: BTreeMap::new(),
            identity_type: "DOMAIN".into(),
            verification_status: "PENDING".into(),
            verification_error: None,
            dkim_status: Some("PENDING".into()),
            dkim_tokens: vec!["b".into(), "a".into(), "c".into()],
            mail_from_status: Some("PENDING".into()),
        }
    }

    #[test]
    fn a_converged_identity_needs_no_calls() {
        let d = desired(
            &spec(serde_json::json!({"identity": "example.com", "mailFromDomain": "mail.example.com"})),
            Some("cs".into()),
        );
        assert_eq!(diff(&d, &d.clone()), vec![]);
    }

    #[test]
    fn each_difference_is_its_own_call() {
        let d = desired(
            &spec(
                serde_json::json!({"identity": "example.com", "mailFromDomain": "mail.example.com",
                "behaviorOnMxFailure": "REJECT_MESSAGE", "dkim": {"keyLength": "RSA_1024_BIT", "signingEnabled": false},
                "feedbackForwarding": false}),
            ),
            Some("cs".into()),
        );
        let o = IdentitySettings {
            dkim_signing: Some(true),
            key_length: Some(DkimKeyLength::Rsa2048),
            mail_from: None,
            behavior_on_mx_failure: MxFailureBehavior::UseDefaultValue,
            configuration_set: None,
            feedback_forwarding: true,
        };
        let groups: Vec<&str> = diff(&d, &o).iter().map(IdentityChange::group).collect();
        assert_eq!(
            groups,
            [
                "dkim",
                "dkim.keyLength",
                "mailFrom",
                "configurationSet",
                "feedbackForwarding"
            ]
        );
        let mut obs = observed(o);
        for c in diff(&d, &obs.settings.clone()) {
            obs.apply(&c);
        }
        assert_eq!(obs.settings, d);
    }

    #[test]
    fn an_address_identity_leaves_dkim_alone() {
        let d = desired(&spec(serde_json::json!({"identity": "a@example.com"})), None);
        assert_eq!(d.dkim_signing, None);
        let o = IdentitySettings {
            dkim_signing: Some(false),
            key_length: Some(DkimKeyLength::Rsa1024),
            ..d.clone()
        };
        assert_eq!(diff(&d, &o), vec![]);
    }

    #[test]
    fn mx_behaviour_alone_costs_nothing_without_a_mail_from_domain() {
        let d = desired(
            &spec(serde_json::json!({"identity": "example.com", "behaviorOnMxFailure": "REJECT_MESSAGE"})),
            None,
        );
        let o = IdentitySettings {
            behavior_on_mx_failure: MxFailureBehavior::UseDefaultValue,
            ..d.clone()
        };
        assert_eq!(diff(&d, &o), vec![]);
    }

    #[test]
    fn records_are_the_dkim_cnames_and_the_mail_from_mx_and_spf() {
        let mut o = observed(desired(
            &spec(serde_json::json!({"identity": "example.com", "mailFromDomain": "mail.example.com"})),
            None,
        ));
        o.dkim_tokens = vec!["tok1".into()];
        let records = dns_records("example.com", &o, "eu-west-1", None);
        let got: Vec<(&str, &str, &str)> = records
            .iter()
            .map(|r| (r.type_.as_str(), r.name.as_str(), r.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("CNAME", "tok1._domainkey.example.com", "tok1.dkim.amazonses.com"),
                ("MX", "mail.example.com", "10 feedback-smtp.eu-west-1.amazonses.com"),
                ("TXT", "mail.example.com", "\"v=spf1 include:amazonses.com ~all\""),
            ]
        );
    }

    #[test]
    fn external_dns_gets_one_endpoint_per_name_and_type() {
        let mut o = observed(desired(
            &spec(serde_json::json!({"identity": "example.com", "mailFromDomain": "mail.example.com"})),
            None,
        ));
        o.dkim_tokens = vec!["t1".into(), "t2".into()];
        let endpoints = external_dns_endpoints(&dns_records("example.com", &o, "us-east-1", None));
        let got: Vec<(String, String, usize)> = endpoints
            .iter()
            .map(|e| {
                (
                    e["dnsName"].as_str().unwrap_or_default().to_string(),
                    e["recordType"].as_str().unwrap_or_default().to_string(),
                    e["targets"].as_array().map_or(0, Vec::len),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("mail.example.com".into(), "MX".into(), 1),
                ("mail.example.com".into(), "TXT".into(), 1),
                ("t1._domainkey.example.com".into(), "CNAME".into(), 1),
                ("t2._domainkey.example.com".into(), "CNAME".into(), 1),
            ]
        );
    }

    #[test]
    fn a_dmarc_policy_adds_the_domains_dmarc_record() {
        let s = spec(serde_json::json!({"identity": "example.com", "dmarc": {
            "policy": "quarantine", "subdomainPolicy": "reject",
            "rua": ["mailto:dmarc@example.com", "mailto:agg@example.net"], "percentage": 50}}));
        let o = observed(desired(&s, None));
        let records = dns_records("example.com", &o, "us-east-1", s.dmarc.as_ref());
        let dmarc: Vec<&DnsRecord> = records.iter().filter(|r| r.name == "_dmarc.example.com").collect();
        assert_eq!(dmarc.len(), 1, "{records:?}");
        assert_eq!(dmarc[0].type_, "TXT");
        assert_eq!(
            dmarc[0].value,
            "\"v=DMARC1; p=quarantine; sp=reject; rua=mailto:dmarc@example.com,mailto:agg@example.net; pct=50\""
        );
        // Defaults are left out: the shortest record receivers read the same.
        let minimal = spec(serde_json::json!({"identity": "example.com", "dmarc": {
            "policy": "none", "subdomainPolicy": "none", "percentage": 100}}));
        assert_eq!(dmarc_value(minimal.dmarc.as_ref().expect("dmarc")), "v=DMARC1; p=none");
        // An address identity publishes no record for its domain.
        let addr = dns_records("a@example.com", &o, "us-east-1", s.dmarc.as_ref());
        assert!(addr.iter().all(|r| !r.name.starts_with("_dmarc.")), "{addr:?}");
    }

    #[test]
    fn pending_is_reconciling_until_the_window_then_stalled() {
        let o = observed(desired(&spec(serde_json::json!({"identity": "example.com"})), None));
        assert_eq!(
            verification(&o, "example.com", Some(Duration::from_secs(60))),
            Verification::Pending
        );
        assert!(matches!(
            verification(&o, "example.com", Some(VERIFICATION_WINDOW + Duration::from_secs(1))),
            Verification::Failed { reason, .. } if reason == "VerificationTimedOut"
        ));
    }

    #[test]
    fn failed_is_stalled_with_the_reason_aws_gives() {
        let mut o = observed(desired(&spec(serde_json::json!({"identity": "example.com"})), None));
        o.verification_status = "FAILED".into();
        o.verification_error = Some("HOST_NOT_FOUND".into());
        let verdict = verification(&o, "example.com", None);
        let conds = conditions("example.com", &o, &verdict);
        let stalled = conds.iter().find(|c| c.type_ == conditions::STALLED).expect("stalled");
        assert_eq!(
            (stalled.status, stalled.reason.as_str()),
            (Some(true), "HOST_NOT_FOUND")
        );
        let verified = conds.iter().find(|c| c.type_ == VERIFIED).expect("verified");
        assert_eq!((verified.status, verified.reason.as_str()), (Some(false), "Failed"));
    }

    #[test]
    fn aws_statuses_become_condition_reasons() {
        let c = status_condition(DKIM_VERIFIED, Some("TEMPORARY_FAILURE"), "DKIM");
        assert_eq!((c.status, c.reason.as_str()), (Some(false), "TemporaryFailure"));
        let c = status_condition(DKIM_VERIFIED, Some("SUCCESS"), "DKIM");
        assert_eq!((c.status, c.reason.as_str()), (Some(true), "Success"));
    }
}
