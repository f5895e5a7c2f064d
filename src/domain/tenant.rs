//! SES tenants, one per namespace (SesAccount `spec.tenants`): the tenant's
//! name and owner tag, which resources each tenant should hold, and what
//! its reputation entity means for the sets in it (`TenantSending`). Pure:
//! the index's view and what AWS reports come in as values.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::account::TenantStatus;
use crate::api::conditions::Desired;
use crate::domain::diff::event_stream::fnv1a;

/// Condition type on a ConfigurationSet whose namespace is an SES tenant.
pub const TENANT_SENDING: &str = "TenantSending";

/// The tenant's name for `namespace` under this cluster: readable, unique
/// per cluster (a hash of the owner value), within SES's 64 characters of
/// `[A-Za-z0-9_-]` (namespaces are DNS labels, so they already fit).
pub fn tenant_name(owner: &str, namespace: &str) -> String {
    let ns: String = namespace.chars().take(50).collect();
    format!("sro-{ns}-{:08x}", fnv1a(owner))
}

/// The namespace a tenant name stands for under this cluster and
/// SesAccount, if it is a name [`tenant_name`] gives them (a name alone
/// proves nothing: the owner tag is checked before anything is deleted).
pub fn namespace_of(name: &str, cluster: &str, account: &str) -> Option<String> {
    let rest = name.strip_prefix("sro-")?;
    let (ns, _) = rest.rsplit_once('-')?;
    (tenant_name(&owner_value(cluster, account, ns), ns) == name).then(|| ns.to_string())
}

/// The owner tag value of a namespace's tenant under one SesAccount:
/// `<cluster>/<namespace>/SesAccount:<account>`. The account is part of it
/// (and of the name's hash) so that two SesAccounts of one AWS account and
/// region never take each other's tenants for their own.
pub fn owner_value(cluster: &str, account: &str, namespace: &str) -> String {
    format!("{cluster}/{namespace}/SesAccount:{account}")
}

/// The SES-managed policy ARN for `name` (`none`, `standard`, `strict`).
pub fn policy_arn(partition: &str, region: &str, name: &str) -> String {
    format!("arn:{partition}:ses:{region}:aws:reputation-policy/{name}")
}

/// Per namespace, the ARNs of the sets and identities that exist in SES.
pub type Members = BTreeMap<String, BTreeSet<String>>;

/// What one pass does to the tenants of an account.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Namespaces whose tenant must exist, with the resources it must hold.
    pub keep: Members,
    /// Tenants this cluster's names stand for (from ListTenants) whose
    /// namespace has nothing left, or all of them when tenants are off:
    /// (tenant, namespace), deleted once their owner tag proves them ours.
    pub delete: Vec<(String, String)>,
}

/// `enabled`: spec.tenants is set. `listed`: every tenant name in the
/// account, so a tenant made just before a crash is found too.
pub fn plan(enabled: bool, members: Members, listed: &[String], cluster: &str, account: &str) -> Plan {
    let keep = if enabled { members } else { Members::new() };
    let delete = listed
        .iter()
        .filter_map(|name| namespace_of(name, cluster, account).map(|ns| (name.clone(), ns)))
        .filter(|(_, ns)| !keep.contains_key(ns))
        .collect();
    Plan { keep, delete }
}

/// `TenantSending` for a set in a namespace whose tenant is `tenant`:
/// False while SES (or a customer-managed pause) keeps the tenant from
/// sending, with the cause AWS gives; `None` when the namespace has no
/// tenant (the condition is then removed).
pub fn sending_condition(tenant: Option<&TenantStatus>) -> Option<Desired> {
    let t = tenant?;
    if let Some(problem) = &t.problem {
        return Some(Desired::tri(TENANT_SENDING, None, "TenantNotOurs", problem.clone()));
    }
    let Some(sending) = t.sending.as_deref() else {
        return Some(Desired::tri(
            TENANT_SENDING,
            None,
            "NotRead",
            format!("tenant {}'s status has not been read yet", t.name),
        ));
    };
    if sending != "DISABLED" {
        return Some(Desired::new(
            TENANT_SENDING,
            true,
            "Enabled",
            format!("SES lets tenant {} send", t.name),
        ));
    }
    let by_ses = t.ses_status.as_deref() == Some("DISABLED");
    let (reason, cause) = if by_ses {
        ("DisabledBySes", t.ses_cause.as_deref())
    } else {
        ("DisabledByCustomer", t.customer_cause.as_deref())
    };
    let who = if by_ses {
        "SES disabled"
    } else {
        "the customer-managed status disabled"
    };
    let cause = cause.map(|c| format!(": {c}")).unwrap_or_default();
    Some(Desired::new(
        TENANT_SENDING,
        false,
        reason,
        format!(
            "{who} tenant {}{cause}; SES refuses mail sent with TenantName {}",
            t.name, t.name
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(ns: &str) -> TenantStatus {
        TenantStatus {
            namespace: ns.into(),
            name: tenant_name(&owner_value("test", "default", ns), ns),
            ..Default::default()
        }
    }

    #[test]
    fn names_fit_ses_and_differ_per_cluster() {
        let long = "a".repeat(63);
        let name = tenant_name("prod", &long);
        assert!(name.len() <= 64, "{name}");
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(tenant_name("prod", "mail"), tenant_name("staging", "mail"));
        assert_eq!(tenant_name("prod", "mail"), tenant_name("prod", "mail"));
    }

    #[test]
    fn a_tenant_name_leads_back_to_its_namespace_only_for_this_cluster() {
        let name = tenant_name(&owner_value("prod", "default", "mail-team"), "mail-team");
        assert_eq!(namespace_of(&name, "prod", "default").as_deref(), Some("mail-team"));
        assert_eq!(namespace_of(&name, "staging", "default"), None);
        // Another SesAccount of the same AWS account never claims it.
        assert_eq!(namespace_of(&name, "prod", "other"), None);
        assert_eq!(namespace_of("someone-elses-tenant", "prod", "default"), None);
    }

    #[test]
    fn a_namespace_with_nothing_left_loses_its_tenant_and_off_removes_all() {
        let members = Members::from([("mail".to_string(), BTreeSet::from(["arn:set".to_string()]))]);
        let listed = [recorded("mail").name, recorded("gone").name, "hand-made".to_string()];
        let p = plan(true, members.clone(), &listed, "test", "default");
        assert_eq!(p.keep, members);
        assert_eq!(p.delete, [(recorded("gone").name, "gone".to_string())]);
        let off = plan(false, members, &listed, "test", "default");
        assert!(off.keep.is_empty());
        assert_eq!(off.delete.len(), 2, "never the tenant someone made by hand");
    }

    #[test]
    fn tenant_sending_says_who_disabled_it_and_why() {
        let mut t = recorded("mail");
        assert_eq!(sending_condition(None), None);
        assert_eq!(sending_condition(Some(&t)).map(|c| c.status), Some(None));
        t.sending = Some("ENABLED".into());
        assert_eq!(sending_condition(Some(&t)).map(|c| c.status), Some(Some(true)));
        t.sending = Some("DISABLED".into());
        t.ses_status = Some("DISABLED".into());
        t.ses_cause = Some("bounce rate above the policy".into());
        let c = sending_condition(Some(&t)).expect("condition");
        assert_eq!((c.status, c.reason.as_str()), (Some(false), "DisabledBySes"));
        assert!(c.message.contains("bounce rate above the policy"), "{}", c.message);
        t.ses_status = Some("ENABLED".into());
        t.customer_status = Some("DISABLED".into());
        let c = sending_condition(Some(&t)).expect("condition");
        assert_eq!(c.reason, "DisabledByCustomer");
    }
}
