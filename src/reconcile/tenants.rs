//! An SesAccount's SES tenants (spec.tenants), from the SesAccount
//! reconciler's AWS pass: one tenant per namespace that has sets or
//! identities in the account, created with the owner tag, holding those
//! resources, with the SES-managed policy the spec names; deleted when the
//! namespace has nothing left (or tenants are turned off). A tenant of that
//! name without this cluster's owner tag is reported and never touched.

use std::collections::BTreeSet;

use kube::ResourceExt;
use kube::runtime::events::EventType;

use super::{Context, Error};
use crate::api::account::TenantStatus;
use crate::api::{OWNER_TAG, SesAccount};
use crate::aws::Session;
use crate::aws::scheduler::Priority;
use crate::domain::tenant::{self, Members};

/// Per namespace, the ARNs of the account's sets and identities that exist
/// in SES (their status records an ARN), from the caches.
fn members(ctx: &Context, account: &str) -> Members {
    let mut out = Members::new();
    let index = &ctx.caches;
    for cs in index.sets_of_account(account) {
        if let (Some(ns), Some(arn)) = (cs.namespace(), cs.status.as_ref().and_then(|s| s.arn.clone())) {
            out.entry(ns).or_default().insert(arn);
        }
    }
    for id in index.identities_of_account(account) {
        if let (Some(ns), Some(arn)) = (id.namespace(), id.status.as_ref().and_then(|s| s.arn.clone())) {
            out.entry(ns).or_default().insert(arn);
        }
    }
    out
}

/// Brings the account's tenants to the spec; returns what status shows.
pub async fn sync(
    ctx: &Context,
    account: &SesAccount,
    session: &Session,
    priority: Priority,
) -> Result<Vec<TenantStatus>, Error> {
    let cluster = &ctx.settings.cluster_name;
    let listed = if account.spec.tenants.is_some() || account.status.as_ref().is_some_and(|s| !s.tenants.is_empty()) {
        session.tenant_names(priority).await?
    } else {
        return Ok(Vec::new());
    };
    let plan = tenant::plan(
        account.spec.tenants.is_some(),
        members(ctx, &account.name_any()),
        &listed,
        cluster,
        &account.name_any(),
    );
    delete(ctx, account, session, &plan.delete, priority).await?;
    let mut out = Vec::new();
    for (ns, arns) in &plan.keep {
        out.push(sync_one(ctx, account, session, ns, arns, priority).await?);
    }
    Ok(out)
}

/// Every tenant of this cluster in the account, when the SesAccount goes
/// (its resources are gone by then: the finalizer waited for them).
pub async fn delete_all(ctx: &Context, account: &SesAccount, session: &Session) -> Result<(), Error> {
    let listed = session.tenant_names(Priority::Spec).await?;
    let plan = tenant::plan(
        false,
        Members::new(),
        &listed,
        &ctx.settings.cluster_name,
        &account.name_any(),
    );
    delete(ctx, account, session, &plan.delete, Priority::Spec).await
}

/// Deletes the (tenant, namespace) pairs whose owner tag proves them this
/// cluster's.
async fn delete(
    ctx: &Context,
    account: &SesAccount,
    session: &Session,
    doomed: &[(String, String)],
    priority: Priority,
) -> Result<(), Error> {
    for (name, ns) in doomed {
        let owner = tenant::owner_value(&ctx.settings.cluster_name, &account.name_any(), ns);
        let ours = session
            .get_tenant(name, priority)
            .await?
            .is_some_and(|t| t.tags.get(OWNER_TAG) == Some(&owner));
        if ours {
            session.delete_tenant(name, priority).await?;
            let note = format!("namespace {ns} has nothing left in this account: its SES tenant {name} was deleted");
            ctx.event(account, EventType::Normal, "TenantDeleted", note).await;
        }
    }
    Ok(())
}

/// One namespace's tenant: made (or checked to be ours), its missing
/// associations added, its policy set, its reputation entity read.
async fn sync_one(
    ctx: &Context,
    account: &SesAccount,
    session: &Session,
    ns: &str,
    arns: &BTreeSet<String>,
    priority: Priority,
) -> Result<TenantStatus, Error> {
    let owner = tenant::owner_value(&ctx.settings.cluster_name, &account.name_any(), ns);
    let name = tenant::tenant_name(&owner, ns);
    let mut status = TenantStatus {
        namespace: ns.to_string(),
        name: name.clone(),
        ..Default::default()
    };
    let arn = match session.get_tenant(&name, priority).await? {
        None => {
            let arn = session.create_tenant(&name, (OWNER_TAG, &owner), priority).await?;
            let note = format!("SES tenant {name} created for namespace {ns}");
            ctx.event(account, EventType::Normal, "TenantCreated", note).await;
            arn
        }
        Some(t) if t.tags.get(OWNER_TAG) == Some(&owner) => t.arn,
        Some(_) => {
            // Messages name no other owner: the tag may be another tenant's.
            status.problem = Some(format!(
                "an SES tenant named {name} exists and is not this operator's: it is left untouched and namespace {ns} has no tenant"
            ));
            return Ok(status);
        }
    };
    let held = session.tenant_resources(&name, priority).await?;
    for missing in arns.difference(&held) {
        session.associate(&name, missing, priority).await?;
    }
    let mut entity = session.reputation_entity(&arn, priority).await?;
    if let Some(policy) = account.spec.tenants.as_ref().and_then(|t| t.reputation_policy) {
        let want = tenant::policy_arn(session.partition(), &session.region, policy.as_str());
        if entity.policy.as_deref() != Some(want.as_str()) {
            session.set_entity_policy(&arn, &want, priority).await?;
            entity.policy = Some(want);
        }
    }
    status.arn = Some(arn);
    status.resources = arns.union(&held).count() as i64;
    status.sending = entity.aggregate;
    status.ses_status = entity.ses_status;
    status.ses_cause = entity.ses_cause;
    status.ses_status_since = entity.ses_since;
    status.customer_status = entity.customer_status;
    status.customer_cause = entity.customer_cause;
    status.customer_status_since = entity.customer_since;
    status.reputation_impact = entity.impact;
    status.policy = entity.policy;
    Ok(status)
}

/// The tenant a namespace has in an account, as the account's status (in
/// the cache) records it; `None` without tenants or when it is not ours.
pub fn tenant_of(ctx: &Context, account: &str, namespace: &str) -> Option<TenantStatus> {
    let account = ctx
        .caches
        .accounts
        .get(&kube::runtime::reflector::ObjectRef::new(account))?;
    account.spec.tenants.as_ref()?;
    account
        .status
        .as_ref()?
        .tenants
        .iter()
        .find(|t| t.namespace == namespace)
        .cloned()
}

/// Associates a just-synced set or identity with its namespace's tenant
/// when its status does not record that yet (a new resource joins at once
/// instead of at the account's next drift pass); returns the tenant name
/// status should record. A failed association is logged and recorded as
/// not done, so the next pass (or the account's) tries again.
pub async fn join(
    session: &Session,
    tenant: Option<&TenantStatus>,
    arn: &str,
    recorded: Option<&str>,
    gate: super::WriteGate,
    priority: Priority,
) -> Result<Option<String>, super::Halt> {
    let Some(t) = tenant.filter(|t| t.problem.is_none() && t.arn.is_some()) else {
        return Ok(None);
    };
    if recorded == Some(t.name.as_str()) {
        return Ok(Some(t.name.clone()));
    }
    gate.check()?;
    match session.associate(&t.name, arn, priority).await {
        Ok(()) => Ok(Some(t.name.clone())),
        Err(e) => {
            tracing::warn!(error = %e, tenant = %t.name, "associating with the tenant failed; retried later");
            Ok(None)
        }
    }
}

/// The namespace's tenant follows a pause by a ReputationPolicy with
/// `actions.pauseTenant`: disabled (customer-managed status, pause class)
/// when the set is paused, reinstated when it resumes and no other set of
/// the namespace still holds the tenant paused. Returns the tenant status
/// should record as paused by this set.
pub async fn follow_pause(
    ctx: &Context,
    session: &Session,
    cs: &crate::api::ConfigurationSet,
    pause: Option<&crate::domain::reputation::Pause>,
    tenant: Option<&TenantStatus>,
    gate: super::WriteGate,
) -> Result<Option<String>, super::Halt> {
    let ns = cs.namespace().unwrap_or_default();
    let recorded = cs.status.as_ref().and_then(|s| s.tenant_paused.clone());
    let usable = tenant
        .filter(|t| t.problem.is_none())
        .and_then(|t| t.arn.as_ref().map(|arn| (t, arn)));
    let wants = pause.is_some_and(|p| {
        ctx.caches
            .policies_in(Some(&ns))
            .iter()
            .any(|policy| policy.name_any() == p.policy && policy.spec.actions.pause_tenant)
    });
    match (wants, usable, recorded) {
        (true, Some(_), Some(done)) => Ok(Some(done)),
        (true, Some((t, arn)), None) => {
            gate.check()?;
            session
                .set_customer_status(arn, "DISABLED", Priority::Pause)
                .await
                .map_err(Error::Aws)?;
            let note = format!(
                "tenant {} disabled with the set (actions.pauseTenant): SES refuses mail sent with TenantName {}",
                t.name, t.name
            );
            ctx.event(cs, EventType::Warning, "TenantPaused", note).await;
            Ok(Some(t.name.clone()))
        }
        (false, Some((t, arn)), Some(done)) if done == t.name => {
            let still_held = ctx.caches.sets.state().iter().any(|other| {
                other.namespace().as_deref() == Some(ns.as_str())
                    && other.name_any() != cs.name_any()
                    && other
                        .status
                        .as_ref()
                        .is_some_and(|s| s.pause.is_some() && s.tenant_paused.as_deref() == Some(done.as_str()))
            });
            if !still_held {
                gate.check()?;
                session
                    .set_customer_status(arn, "REINSTATED", Priority::Pause)
                    .await
                    .map_err(Error::Aws)?;
                // Read back, not from the account's last read: the note
                // must not claim tenant mail flows while SES holds it.
                let entity = session.reputation_entity(arn, Priority::Pause).await.ok();
                let ses_status = entity.and_then(|e| e.ses_status).or_else(|| t.ses_status.clone());
                let note = match ses_status.as_deref() {
                    Some("DISABLED") => format!(
                        "tenant {} reinstated, but SES itself still holds it disabled: mail sent with TenantName {} is still refused",
                        t.name, t.name
                    ),
                    _ => format!("tenant {} reinstated with the set", t.name),
                };
                ctx.event(cs, EventType::Normal, "TenantResumed", note).await;
            }
            Ok(None)
        }
        // No tenant (any more): nothing SES holds to undo here.
        (true, None, recorded) => Ok(recorded),
        _ => Ok(None),
    }
}
