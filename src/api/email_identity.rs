//! `EmailIdentity`: a verified SES sender (domain or address) with Easy
//! DKIM, MAIL FROM and a default configuration set, so that all mail from it
//! is measured; its status lists the DNS records to publish.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::DeletionPolicy;

/// A domain (`example.com`) or an address (`someone@example.com`): ASCII
/// labels, as SES accepts them.
pub const IDENTITY_PATTERN: &str = r"^([^@\s]{1,64}@)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$";

/// A domain name: the form of a MAIL FROM domain.
pub const DOMAIN_PATTERN: &str = r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$";

/// An Amazon SES v2 email identity.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ses.reputation.io",
    version = "v1alpha1",
    kind = "EmailIdentity",
    namespaced,
    shortname = "sesid",
    category = "ses",
    status = "EmailIdentityStatus",
    doc = "An Amazon SES v2 email identity (domain or address) kept in sync with this spec.",
    printcolumn(name = "Identity", type_ = "string", json_path = ".spec.identity"),
    printcolumn(name = "Verification", type_ = "string", json_path = ".status.verificationStatus"),
    printcolumn(name = "DKIM", type_ = "string", json_path = ".status.dkimStatus"),
    printcolumn(name = "Set", type_ = "string", json_path = ".spec.configurationSetRef.name"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("(has(self.spec.accountRef) ? self.spec.accountRef : '') == (has(oldSelf.spec.accountRef) ? oldSelf.spec.accountRef : '')").message("spec.accountRef is immutable (it cannot be added or removed either): create a new EmailIdentity for another account")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.mailFromDomain) || self.mailFromDomain.endsWith('.' + (self.identity.contains('@') ? self.identity.substring(self.identity.indexOf('@') + 1) : self.identity))").message("spec.mailFromDomain must be a subdomain of the identity's domain").field_path(".mailFromDomain"))]
#[x_kube(validation = Rule::new("!has(self.dmarc) || !self.identity.contains('@')").message("spec.dmarc belongs on the EmailIdentity of the domain, not of an address: a DMARC record covers the whole domain").field_path(".dmarc"))]
pub struct EmailIdentitySpec {
    /// The domain or email address to verify. Immutable.
    #[schemars(length(min = 1, max = 320), regex(pattern = IDENTITY_PATTERN))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.identity is immutable: create a new EmailIdentity"))]
    pub identity: String,
    /// SesAccount (cluster-scoped; a DNS subdomain name) to create the identity
    /// in. Defaults to the operator's `--default-account`. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub account_ref: Option<String>,
    /// Easy DKIM of a domain identity (an address is signed through its
    /// domain's identity, so this is ignored for addresses).
    #[serde(default)]
    pub dkim: DkimSpec,
    /// Custom MAIL FROM domain: a subdomain of the identity's domain.
    /// Omitted: mail uses SES's own MAIL FROM (amazonses.com).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = DOMAIN_PATTERN))]
    pub mail_from_domain: Option<String>,
    /// What SES does when the MAIL FROM domain's MX record is missing.
    #[serde(default)]
    pub behavior_on_mx_failure: MxFailureBehavior,
    /// The default configuration set (a ConfigurationSet in this namespace):
    /// mail from this identity that names no set goes through it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_set_ref: Option<SetRef>,
    /// Forward bounces and complaints by email to the sender (AWS default
    /// true). Turn it off only with an event destination in place.
    #[serde(default = "yes")]
    pub feedback_forwarding: bool,
    /// AWS tags on the identity (at most 49: SES allows 50 and the operator
    /// keeps one for ownership).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    // SES's tag rules, as for configuration sets: letters, digits, spaces
    // and _ . : / = + - @. The bounds come first so the key check stays
    // inside the CEL cost budget.
    #[schemars(extend(
        "maxProperties" = 49,
        "additionalProperties" = {"type": "string", "maxLength": 256, "pattern": "^[\\p{L}\\p{Z}\\p{N}_.:/=+@-]*$"}
    ))]
    #[x_kube(validation = Rule::new("self.all(k, k.matches(r'^[\\p{L}\\p{Z}\\p{N}_.:/=+@-]+$'))").message("tag keys may contain only letters, digits, spaces and _ . : / = + - @"))]
    #[x_kube(validation = Rule::new("self.all(k, !k.startsWith('aws:') && !k.startsWith('ses.reputation.io/') && k.size() <= 128)").message("tag keys must be at most 128 characters and must not start with 'aws:' or 'ses.reputation.io/'"))]
    pub tags: BTreeMap<String, String>,
    /// Publish the DNS records through external-dns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsSpec>,
    /// A DMARC policy for the domain: adds the `_dmarc` TXT record to
    /// status.dnsRecords (and the DNSEndpoint). Gmail and Yahoo require
    /// DMARC (at least `p=none`) from bulk senders. Domain identities only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dmarc: Option<DmarcSpec>,
    /// What happens in AWS when this object is deleted. Default: Delete
    /// for an identity this object created, Retain for one it adopted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
    /// Take over an existing identity that no operator owns, where the
    /// SesAccount's spec.adoption.allowedNamespaces lets this namespace.
    /// Without it such an identity is left untouched and this object goes
    /// Stalled with reason AlreadyExists.
    #[serde(default)]
    pub adopt: bool,
}

impl EmailIdentity {
    /// The deletion policy in force: adopted identities are retained unless
    /// the spec says otherwise, since the operator did not make them.
    pub fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy.unwrap_or_else(|| {
            if self.status.as_ref().is_some_and(|s| s.adoption.is_some()) {
                DeletionPolicy::Retain
            } else {
                DeletionPolicy::Delete
            }
        })
    }
}

fn yes() -> bool {
    true
}

/// Easy DKIM settings.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DkimSpec {
    /// Sign outgoing mail with DKIM.
    #[serde(default = "yes")]
    pub signing_enabled: bool,
    /// Length of the signing key SES generates.
    #[serde(default)]
    pub key_length: DkimKeyLength,
}

impl Default for DkimSpec {
    fn default() -> Self {
        Self {
            signing_enabled: true,
            key_length: DkimKeyLength::default(),
        }
    }
}

#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DkimKeyLength {
    #[serde(rename = "RSA_1024_BIT")]
    Rsa1024,
    #[default]
    #[serde(rename = "RSA_2048_BIT")]
    Rsa2048,
}

impl DkimKeyLength {
    pub fn as_aws(self) -> &'static str {
        match self {
            DkimKeyLength::Rsa1024 => "RSA_1024_BIT",
            DkimKeyLength::Rsa2048 => "RSA_2048_BIT",
        }
    }
}

#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MxFailureBehavior {
    /// Fall back to SES's MAIL FROM domain.
    #[default]
    UseDefaultValue,
    /// Refuse to send.
    RejectMessage,
}

/// The default configuration set: a ConfigurationSet in the identity's
/// namespace.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Eq)]
pub struct SetRef {
    /// Name of the ConfigurationSet object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Must be left out: an identity can only use a set of its own
    /// namespace (a set in another tenant's namespace is not its to use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("false").message("spec.configurationSetRef.namespace: the default configuration set must be in the identity's own namespace; leave namespace out"))]
    pub namespace: Option<String>,
}

/// DNS publishing.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, Default, PartialEq)]
pub struct DnsSpec {
    /// Write an external-dns `DNSEndpoint` (externaldns.k8s.io/v1alpha1)
    /// with the records, next to this object and owned by it.
    #[serde(default, rename = "externalDNS")]
    pub external_dns: bool,
}

/// The DMARC record of a domain (RFC 7489).
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DmarcSpec {
    /// What receivers do with mail that fails DMARC (`p=`).
    pub policy: DmarcPolicy,
    /// The same for subdomains (`sp=`). Omitted: as `policy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdomain_policy: Option<DmarcPolicy>,
    /// Where receivers send aggregate reports (`rua=`): `mailto:` URIs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 5),
        inner(length(max = 320), regex(pattern = r"^mailto:[^\s,;!@]+@[^\s,;!@]+$"))
    )]
    pub rua: Vec<String>,
    /// Percentage of failing mail the policy applies to (`pct=`, 0-100).
    /// Omitted: 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub percentage: Option<u8>,
}

#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DmarcPolicy {
    /// Monitor only: report, deliver as usual.
    None,
    /// Deliver failing mail to spam.
    Quarantine,
    /// Refuse failing mail.
    Reject,
}

impl DmarcPolicy {
    pub fn as_tag(self) -> &'static str {
        match self {
            DmarcPolicy::None => "none",
            DmarcPolicy::Quarantine => "quarantine",
            DmarcPolicy::Reject => "reject",
        }
    }
}

/// Observed state of an identity.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EmailIdentityStatus {
    /// Generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling, Stalled (kstatus), Verified, DkimVerified,
    /// MailFromVerified.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// ARN of the identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// The SES tenant the identity belongs to (SesAccount spec.tenants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// SesAccount the identity lives in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// DOMAIN or EMAIL_ADDRESS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_type: Option<String>,
    /// As AWS reports it: SUCCESS, PENDING, FAILED, TEMPORARY_FAILURE,
    /// NOT_STARTED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_status: Option<String>,
    /// AWS's reason for a failed verification (VerificationInfo.ErrorType).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_error: Option<String>,
    /// DKIM status as AWS reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dkim_status: Option<String>,
    /// MAIL FROM domain status as AWS reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_from_status: Option<String>,
    /// AWS name of the default configuration set in effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_set: Option<String>,
    /// The DNS records to publish.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_records: Vec<DnsRecord>,
    /// The external-dns DNSEndpoint (same namespace) holding the records,
    /// while spec.dns.externalDNS is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_endpoint: Option<String>,
    /// Set when this object adopted an identity it did not create;
    /// recorded before the first write to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adoption: Option<super::configuration_set::Adoption>,
    /// AWS's open findings about this identity (ListRecommendations; at
    /// most five, highest impact first); the Findings condition counts them all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
    /// When verification was first seen pending for the current spec: the
    /// start of the bounded wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_since: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
}

/// One of AWS's findings (SES recommendations) about an identity.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// DKIM, SPF, DMARC, BIMI, BOUNCE, COMPLAINT, FEEDBACK_3P, IP_LISTING, ...
    #[serde(rename = "type")]
    pub type_: String,
    /// HIGH or LOW.
    pub impact: String,
    /// OPEN (fixed findings are not shown).
    pub status: String,
    /// AWS's description and advice.
    pub description: String,
    /// When AWS last updated it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
}

/// One DNS record to publish.
#[derive(Serialize, Deserialize, schemars::JsonSchema, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DnsRecord {
    /// CNAME, MX or TXT.
    #[serde(rename = "type")]
    pub type_: String,
    /// Fully qualified record name.
    pub name: String,
    /// Record value as it goes in the zone.
    pub value: String,
}
