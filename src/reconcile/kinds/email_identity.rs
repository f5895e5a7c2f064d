//! Reconciler for `EmailIdentity`: resolve the account and the default
//! configuration set, observe the identity in SES (one GetEmailIdentity
//! gives settings, statuses, DKIM tokens and the ownership tag), apply the
//! per-attribute differences, write status with the DNS records to publish
//! (and, when asked, an external-dns `DNSEndpoint` owned by the identity),
//! and keep polling while verification is pending.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use tracing::info;

use crate::api::conditions;
use crate::api::configuration_set::Adoption;
use crate::api::email_identity::EmailIdentityStatus;
use crate::api::{ConfigurationSet, DeletionPolicy, EmailIdentity, OWNER_TAG};
use crate::aws::scheduler::Priority;
use crate::aws::{AccountKey, AwsError, ErrorKind, Session};
use crate::domain::diff::email_identity::{self as diff, IdentityChange, ObservedIdentity, Verification};
use crate::domain::findings;
use crate::domain::ownership::{self, AdoptionAsk, Found, Owner, TaggedPlan};
use crate::reconcile::{
    AccountAccess, Begin, Context, Error, Halt, MANAGER, Obj, PassKey, Passed, Proceed, Refusal, Run, WriteGate, drive,
    fingerprint, key_of, proceed, tenants, usable_account,
};

/// First look at a pending verification after this long; the interval
/// grows with the time spent pending (a tenth of it), up to the drift
/// period, so thousands of pending identities do not crowd out spec work.
const FIRST_VERIFICATION_POLL: Duration = Duration::from_secs(5);

pub async fn reconcile(id: Arc<EmailIdentity>, ctx: Arc<Context>) -> Result<Passed, Error> {
    drive(id, ctx, apply, cleanup).await
}

/// The default configuration set, from the cache.
#[derive(Debug, PartialEq)]
enum DefaultSet {
    None,
    Missing(String),
    /// Not created in AWS yet.
    NotReady(String),
    /// In another SesAccount than the identity: SES cannot use it.
    OtherAccount(String),
    Ready(String),
}

fn default_set(id: &EmailIdentity, ctx: &Context, account: &str) -> DefaultSet {
    let Some(r) = &id.spec.configuration_set_ref else {
        return DefaultSet::None;
    };
    let ns = id.namespace().unwrap_or_default();
    let set = ctx.caches.sets.get(&ObjectRef::new(&r.name).within(&ns));
    default_set_state(&r.name, set.as_deref(), &ctx.settings.default_account, account)
}

/// Whether the set `name` (as the cache holds it) can be the identity's
/// default in `account`. Pure.
fn default_set_state(name: &str, set: Option<&ConfigurationSet>, default_account: &str, account: &str) -> DefaultSet {
    let Some(set) = set else {
        return DefaultSet::Missing(name.to_string());
    };
    if set.spec.account_ref.as_deref().unwrap_or(default_account) != account {
        return DefaultSet::OtherAccount(name.to_string());
    }
    match set.status.as_ref().and_then(|s| s.arn.as_ref().and(s.aws_name.clone())) {
        Some(aws_name) => DefaultSet::Ready(aws_name),
        None => DefaultSet::NotReady(name.to_string()),
    }
}

async fn apply(o: Obj<EmailIdentity>, ctx: Arc<Context>) -> Result<Action, Halt> {
    let id = &*o.obj;
    let key = key_of(id);
    let ns = id.namespace().unwrap_or_default();
    let name = id.spec.identity.clone();
    let (account, account_generation, account_key) =
        match usable_account(&o, &ctx, id.spec.account_ref.as_deref()).await? {
            Ok(a) => (a.name, a.generation, a.key),
            Err(blocked) => return Ok(blocked),
        };
    let set = match default_set(id, &ctx, &account) {
        DefaultSet::None => None,
        DefaultSet::Ready(aws_name) => Some(aws_name),
        DefaultSet::Missing(set) => {
            // The set's creation triggers this identity (watch).
            let msg = format!("ConfigurationSet {set} (spec.configurationSetRef) does not exist in namespace {ns}");
            return o.missing(&ctx, "ConfigurationSetNotFound", msg).await;
        }
        DefaultSet::NotReady(set) => {
            let msg = format!("waiting for ConfigurationSet {set} to be created in SES");
            return o
                .blocked(&ctx, &conditions::reconciling("WaitingForConfigurationSet", msg))
                .await;
        }
        DefaultSet::OtherAccount(set) => {
            let msg = format!(
                "ConfigurationSet {set} (spec.configurationSetRef) is in another SesAccount than {account}: SES can only use a set of the identity's own account"
            );
            o.stall(&ctx, "ConfigurationSetInOtherAccount", msg).await?;
            return o.blocked(&ctx, &[]).await;
        }
    };
    let fp = fingerprint((id.metadata.generation, account_generation, &account_key, &set));
    let pass = PassKey {
        key: key.clone(),
        fingerprint: fp,
        account: account.clone(),
        account_key: account_key.clone(),
    };
    let run = match o.begin(&ctx, &pass, false).await? {
        Begin::Skip(action) => {
            // In sync with AWS: only AWS's findings may have moved.
            let mut status = o.status();
            let tenant = tenants::tenant_of(&ctx, &account, &ns);
            if tenant.is_none() {
                status.tenant = None;
            }
            let (mut desired, new_high) = fold_findings(&ctx, id, &account, &mut status);
            fold_tenant_sending(tenant.as_ref(), &mut status, &mut desired);
            o.merge_conditions(&mut status, &desired);
            o.patch_status(&status).await?;
            announce_findings(&ctx, id, &new_high).await;
            return Ok(action);
        }
        Begin::Run(run) => run,
    };
    let Run { priority, gate } = run;

    let mut result = sync(id, &ctx, (&account_key, &account), &name, set.clone(), (gate, priority)).await;
    // Adoption is recorded before the first write to the identity, so
    // deleting this object knows it was not its own (default Retain).
    let o = match result {
        Ok(Synced::MustRecordAdoption(adoption)) => {
            let mut status = o.status();
            status.adoption = Some(adoption);
            let o = o.record(status, |id, s| id.status = Some(s)).await?;
            result = sync(&o.obj, &ctx, (&account_key, &account), &name, set, (gate, priority)).await;
            o
        }
        _ => o,
    };
    match result {
        Ok(Synced::InSync(session, observed)) => in_sync(o, &ctx, &pass, gate, &session, &observed).await,
        // Recorded above, so only a status write that did not stick gets
        // here: run the pass again.
        Ok(Synced::MustRecordAdoption(_)) => Err(Halt::Stale(Some(priority))),
        Err(halt) => Err(o.fail(&ctx, &pass, run, halt).await),
    }
}

/// AWS's open findings about this identity (from the findings reader) into
/// `status.findings` and the Findings condition; returns the HIGH-impact
/// ones the status did not show yet, to announce once it is written.
/// Nothing before the identity has an ARN (it is not in AWS yet), and
/// nothing before the account's findings were read since this operator
/// started: what status shows stays (a restart must not flap it).
fn fold_findings(
    ctx: &Context,
    id: &EmailIdentity,
    account: &str,
    status: &mut EmailIdentityStatus,
) -> (Vec<conditions::Desired>, Vec<findings::Open>) {
    let Some(arn) = status.arn.clone() else {
        return (Vec::new(), Vec::new());
    };
    let Some(open) = ctx.findings.of_resource(account, &arn) else {
        return (Vec::new(), Vec::new());
    };
    let previous = id.status.as_ref().map(|s| s.findings.as_slice()).unwrap_or_default();
    let new_high = findings::newly_high(previous, &open).into_iter().cloned().collect();
    let (shown, condition) = findings::identity_view(&open);
    status.findings = shown;
    (vec![condition], new_high)
}

/// TenantSending, as on the sets of the namespace: whether SES lets the
/// identity's tenant send (removed without a tenant).
fn fold_tenant_sending(
    tenant: Option<&crate::api::account::TenantStatus>,
    status: &mut EmailIdentityStatus,
    desired: &mut Vec<conditions::Desired>,
) {
    match crate::domain::tenant::sending_condition(tenant) {
        Some(c) => desired.push(c),
        None => status
            .conditions
            .retain(|c| c.type_ != crate::domain::tenant::TENANT_SENDING),
    }
}

/// One Warning Event per new HIGH-impact finding.
async fn announce_findings(ctx: &Context, id: &EmailIdentity, new_high: &[findings::Open]) {
    for f in new_high {
        let note = format!("AWS opened a HIGH-impact {} finding: {}", f.type_, f.description);
        ctx.event(id, EventType::Warning, "HighImpactFinding", note).await;
    }
}

/// The identity is this object's and in sync: status with the DNS
/// records (published when asked), then when to look again.
async fn in_sync(
    o: Obj<EmailIdentity>,
    ctx: &Context,
    pass: &PassKey,
    gate: WriteGate,
    session: &Session,
    observed: &ObservedIdentity,
) -> Result<Action, Halt> {
    let id = &*o.obj;
    let name = id.spec.identity.clone();
    let (key, fp, account) = (&pass.key, pass.fingerprint, &pass.account);
    let mut status = o.status();
    // The wait for verification starts over with each spec.
    let pending = observed.verification_status != "SUCCESS" && observed.verification_status != "FAILED";
    let same_spec = status.observed_generation == id.metadata.generation;
    status.pending_since = match (pending, status.pending_since.take()) {
        (false, _) => None,
        (true, Some(since)) if same_spec => Some(since),
        (true, _) => Some(crate::reconcile::now()),
    };
    let pending_for = status
        .pending_since
        .as_ref()
        .map(|t| jiff::Timestamp::now().duration_since(t.0).unsigned_abs());
    let verdict = diff::verification(observed, &name, pending_for);
    status.arn = Some(session.identity_arn(&name));
    status.account = Some(account.clone());
    status.identity_type = Some(observed.identity_type.clone()).filter(|t| !t.is_empty());
    status.verification_status = Some(observed.verification_status.clone());
    status.verification_error = observed.verification_error.clone();
    status.dkim_status = observed.dkim_status.clone();
    status.mail_from_status = observed.mail_from_status.clone();
    status.configuration_set = observed.settings.configuration_set.clone();
    status.dns_records = diff::dns_records(&name, observed, &session.region, o.obj.spec.dmarc.as_ref());
    // A new identity joins its namespace's tenant at once (spec-class: it
    // follows a create); the account's pass keeps the association after.
    let ns = id.namespace().unwrap_or_default();
    let tenant = tenants::tenant_of(ctx, account, &ns);
    let recorded = id.status.as_ref().and_then(|s| s.tenant.as_deref());
    let arn = session.identity_arn(&name);
    status.tenant = tenants::join(session, tenant.as_ref(), &arn, recorded, gate, Priority::Spec).await?;
    let mut tenant_sending = Vec::new();
    fold_tenant_sending(tenant.as_ref(), &mut status, &mut tenant_sending);
    let mut desired = diff::conditions(&name, observed, &verdict);
    let (found, new_high) = fold_findings(ctx, id, account, &mut status);
    desired.extend(found);
    desired.extend(tenant_sending);
    match publish_dns(&o, ctx, &status.dns_records, gate).await? {
        Published::Written(endpoint) => status.dns_endpoint = Some(endpoint),
        Published::Off => status.dns_endpoint = None,
        Published::Blocked(reason, message) => {
            // The records are still in status; only the asked-for
            // publishing is impossible until someone fixes the cluster.
            status.dns_endpoint = None;
            desired.retain(|d| ![conditions::READY, conditions::RECONCILING, conditions::STALLED].contains(&d.type_));
            desired.extend(conditions::stalled(reason, message));
        }
    }
    o.merge_conditions(&mut status, &desired);
    // Announced once, after the status that records it is written
    // (a pass from the cache re-runs fresh at that write).
    let announce = matches!(&verdict, Verification::Failed { reason, .. } if !o.is_stalled_with(reason));
    o.patch_status(&status).await?;
    if let (true, Verification::Failed { reason, message }) = (announce, &verdict) {
        ctx.event(id, EventType::Warning, reason, message.clone()).await;
    }
    announce_findings(ctx, id, &new_high).await;
    Ok(match verdict {
        // Look again soon: nothing in the spec changes when AWS
        // verifies, so no watch event would bring it.
        Verification::Pending => {
            // Never later than a drift check would be (which may
            // come sooner than the first poll).
            let longest = ctx.drift_period(account);
            let delay = pending_for
                .map_or(FIRST_VERIFICATION_POLL, |d| d / 10)
                .max(FIRST_VERIFICATION_POLL)
                .min(longest);
            ctx.recheck(key, fp, delay)
        }
        _ => ctx.synced(key, fp, account),
    })
}

/// What became of the external-dns `DNSEndpoint`.
enum Published {
    /// Written (server-side apply) with this name.
    Written(String),
    /// Not asked for (any earlier one deleted).
    Off,
    /// Asked for, but impossible: (reason, message). No DNSEndpoint CRD,
    /// or a DNSEndpoint of that name that this identity does not own.
    Blocked(&'static str, String),
}

fn dns_endpoint_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("externaldns.k8s.io", "v1alpha1", "DNSEndpoint"),
        "dnsendpoints",
    )
}

fn dns_endpoints_api(id: &EmailIdentity, ctx: &Context) -> kube::Api<DynamicObject> {
    kube::Api::namespaced_with(
        ctx.client.clone(),
        &id.namespace().unwrap_or_default(),
        &dns_endpoint_resource(),
    )
}

/// Writes the records as an external-dns `DNSEndpoint` named like the
/// identity and owned by it (so garbage collection removes it with the
/// identity), or deletes the one written before when publishing was turned
/// off. Runs only in passes that went to AWS, so it adds no API request to
/// a converged pass.
async fn publish_dns(
    o: &Obj<EmailIdentity>,
    ctx: &Context,
    records: &[crate::api::email_identity::DnsRecord],
    gate: WriteGate,
) -> Result<Published, Halt> {
    let id = &*o.obj;
    let api = dns_endpoints_api(id, ctx);
    let name = id.name_any();
    let wanted = id.spec.dns.as_ref().is_some_and(|d| d.external_dns);
    if !wanted {
        if id.status.as_ref().and_then(|s| s.dns_endpoint.as_ref()).is_some() {
            gate.check()?;
            delete_dns_endpoint(&api, &name).await?;
        }
        return Ok(Published::Off);
    }
    let endpoints = diff::external_dns_endpoints(records);
    // Never take over a DNSEndpoint someone else made under this name.
    match api.get_opt(&name).await {
        Ok(Some(existing))
            if !existing
                .owner_references()
                .iter()
                .any(|r| Some(&r.uid) == id.meta().uid.as_ref() && r.controller == Some(true)) =>
        {
            return Ok(Published::Blocked(
                "DNSEndpointExists",
                format!(
                    "a DNSEndpoint named {name} already exists and is not owned by this EmailIdentity; it is left untouched (rename or delete it)"
                ),
            ));
        }
        // Ours and as it should be: nothing to write (a drift check stays
        // a read).
        Ok(Some(existing)) if existing.data["spec"]["endpoints"] == serde_json::json!(endpoints) => {
            return Ok(Published::Written(name));
        }
        // Absent, changed by someone (or no such CRD: the apply below tells).
        Ok(_) => gate.check()?,
        Err(source) => {
            return Err(Error::Kube {
                action: "reading the DNSEndpoint",
                source,
            }
            .into());
        }
    }
    let mut owner = id
        .controller_owner_ref(&())
        .ok_or(Error::Invariant("object has no name or uid"))?;
    // blockOwnerDeletion would need update rights on emailidentities/finalizers
    // where OwnerReferencesPermissionEnforcement is on; nothing waits on it.
    owner.block_owner_deletion = None;
    let body = serde_json::json!({
        "apiVersion": "externaldns.k8s.io/v1alpha1",
        "kind": "DNSEndpoint",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/managed-by": MANAGER},
            "ownerReferences": [owner],
        },
        "spec": {"endpoints": endpoints},
    });
    match api
        .patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&body))
        .await
    {
        Ok(_) => Ok(Published::Written(name)),
        Err(kube::Error::Api(status)) if status.code == 404 => {
            Ok(Published::Blocked("DNSEndpointCRDMissing", no_crd()))
        }
        Err(source) => Err(Error::Kube {
            action: "writing the DNSEndpoint",
            source,
        }
        .into()),
    }
}

fn no_crd() -> String {
    "spec.dns.externalDNS is on but the cluster has no DNSEndpoint CRD (externaldns.k8s.io/v1alpha1): install external-dns's CRD; the records are in status.dnsRecords".into()
}

async fn delete_dns_endpoint(api: &kube::Api<DynamicObject>, name: &str) -> Result<(), Error> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(Error::Kube {
            action: "deleting the DNSEndpoint",
            source,
        }),
    }
}

/// What a sync found.
enum Synced {
    /// The identity is this object's; what SES holds now.
    InSync(Arc<Session>, ObservedIdentity),
    /// The identity may be adopted: record it in status, then sync again.
    MustRecordAdoption(Adoption),
}

/// Observe -> diff -> apply for one identity; returns what SES holds now.
async fn sync(
    id: &EmailIdentity,
    ctx: &Context,
    (account, account_name): (&AccountKey, &str),
    name: &str,
    set: Option<String>,
    (gate, priority): (WriteGate, Priority),
) -> Result<Synced, Halt> {
    let session = ctx.session(account).await?;
    let owner = ctx.owner(id);
    let desired = diff::desired(&id.spec, set);
    let desired_tags = diff::desired_tags(&id.spec, (OWNER_TAG, &owner.value));
    let recorded = id.status.as_ref().and_then(|s| s.arn.as_ref()).is_some();

    // Never created by this object: create first (AlreadyExists answers
    // whether it exists); status needs the read that follows anyway.
    let mut created = false;
    if !recorded && priority != Priority::Drift {
        match create(id, ctx, &session, name, &desired, &desired_tags, priority).await {
            Ok(()) => created = true,
            Err(e) if e.kind == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut observed = match session.get_email_identity(name, priority).await? {
        Some(observed) => observed,
        None => {
            gate.check()?;
            create(id, ctx, &session, name, &desired, &desired_tags, priority).await?;
            created = true;
            session
                .get_email_identity(name, priority)
                .await?
                .ok_or_else(|| AwsError {
                    operation: "sesv2:GetEmailIdentity",
                    kind: ErrorKind::NotFound,
                    code: "NotFound".into(),
                    message: format!("identity {name} vanished right after it was created"),
                })?
        }
    };

    let facts = Facts {
        name,
        account: account_name,
        owner: &owner,
        adoption_allowed: ctx
            .caches
            .adoption_allowed(&id.namespace().unwrap_or_default(), account_name),
        created,
        drift_check: priority == Priority::Drift,
    };
    let (changes, report) = match proceed(
        plan(id, &desired, &observed, &facts)?,
        id,
        ctx,
        gate,
        ("email identity", name),
    )
    .await?
    {
        Proceed::RecordAdoption(adoption) => return Ok(Synced::MustRecordAdoption(adoption)),
        Proceed::Apply { changes, report } => (changes, report),
    };
    for change in &changes {
        session.apply_identity_change(name, change, priority).await?;
        observed.apply(change);
    }
    let groups: Vec<&str> = changes.iter().map(IdentityChange::group).collect();
    ctx.report_changes(id, report, &groups, |groups| {
        format!("email identity {name} was changed outside the operator; restored: {groups}")
    })
    .await;
    Ok(Synced::InSync(session, observed))
}

/// What a plan needs besides the object and what SES holds.
struct Facts<'a> {
    name: &'a str,
    account: &'a str,
    owner: &'a Owner,
    /// The SesAccount lets this namespace adopt.
    adoption_allowed: bool,
    /// This pass created the identity (its Created Event says it all).
    created: bool,
    drift_check: bool,
}

/// What to do with the identity SES holds.
type IdentityPlan = TaggedPlan<IdentityChange>;

/// Whose the identity is and the changes that bring it to `desired`. Pure.
fn plan(
    id: &EmailIdentity,
    desired: &diff::IdentitySettings,
    observed: &ObservedIdentity,
    facts: &Facts<'_>,
) -> Result<IdentityPlan, Refusal> {
    let status = id.status.as_ref();
    let found = Found {
        tags: &observed.tags,
        recorded: facts.created || status.and_then(|s| s.arn.as_ref()).is_some(),
        adoption: AdoptionAsk {
            asked: id.spec.adopt,
            allowed: facts.adoption_allowed,
            recorded: status.and_then(|s| s.adoption.as_ref()).map(|a| a.kept_tags.as_slice()),
        },
        drift_check: facts.drift_check,
        created: facts.created,
    };
    ownership::plan_tagged(
        facts.owner,
        OWNER_TAG,
        found,
        diff::desired_tags(&id.spec, (OWNER_TAG, &facts.owner.value)),
        diff::diff(desired, &observed.settings),
        diff::diff_tags,
    )
    .map_err(|why| Refusal::not_ours(why, "email identity", facts.name, facts.account))
}

async fn create(
    id: &EmailIdentity,
    ctx: &Context,
    session: &Session,
    name: &str,
    desired: &diff::IdentitySettings,
    tags: &std::collections::BTreeMap<String, String>,
    priority: Priority,
) -> Result<(), AwsError> {
    session.create_email_identity(name, desired, tags, priority).await?;
    info!(identity = name, "created email identity");
    ctx.event(
        id,
        EventType::Normal,
        "Created",
        format!("created email identity {name} in {}", session.region),
    )
    .await;
    Ok(())
}

async fn cleanup(o: Obj<EmailIdentity>, ctx: Arc<Context>) -> Result<Action, Halt> {
    let id = &*o.obj;
    let key = key_of(id);
    let name = id.spec.identity.clone();
    // No garbage collector may run (or it runs later): the records go with
    // the identity either way.
    if id.status.as_ref().and_then(|s| s.dns_endpoint.as_ref()).is_some() {
        delete_dns_endpoint(&dns_endpoints_api(id, &ctx), &id.name_any()).await?;
    }
    if id.deletion_policy() == DeletionPolicy::Retain {
        // An adopted identity loses the owner tag the adoption put on: as it
        // was, so it can be adopted again.
        let status = id.status.as_ref();
        if status.and_then(|s| s.adoption.as_ref()).is_some()
            && status.and_then(|s| s.arn.as_ref()).is_some()
            && let AccountAccess::Allowed { key: account_key, .. } = ctx
                .caches
                .account_for(&id.namespace().unwrap_or_default(), id.spec.account_ref.as_deref())
        {
            let session = ctx.session(&account_key).await?;
            let untag = IdentityChange::Untag(vec![OWNER_TAG.to_string()]);
            match session.apply_identity_change(&name, &untag, Priority::Spec).await {
                Err(e) if e.kind == ErrorKind::NotFound => {}
                result => result?,
            }
        }
        ctx.event(
            id,
            EventType::Normal,
            "Retained",
            format!("deletionPolicy Retain: email identity {name} is left in AWS"),
        )
        .await;
        ctx.forget(&key);
        return Ok(Action::await_change());
    }
    let what = format!("email identity {name}");
    let account_key = match o.account_for_cleanup(&ctx, id.spec.account_ref.as_deref(), &what).await {
        Ok(key) => key,
        Err(action) => return Ok(action),
    };
    let result: Result<(), AwsError> = async {
        let session = ctx.aws.session(&account_key).await?;
        let recorded = id.status.as_ref().and_then(|s| s.arn.as_ref()).is_some();
        match session.get_email_identity(&name, Priority::Spec).await? {
            Some(observed) if ctx.owns(observed.tags.get(OWNER_TAG), id, recorded) => {
                session.delete_email_identity(&name, Priority::Spec).await?;
                ctx.event(
                    id,
                    EventType::Normal,
                    "Deleted",
                    format!("deleted email identity {name}"),
                )
                .await;
            }
            Some(_) => {
                ctx.event(
                    id,
                    EventType::Normal,
                    "DeleteSkipped",
                    format!("email identity {name} is not owned by this resource; left in AWS"),
                )
                .await;
            }
            None => {}
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            ctx.forget(&key);
            Ok(Action::await_change())
        }
        // Stopping, not failing: the next leader deletes it.
        Err(e) if e.kind == ErrorKind::Cancelled => Err(Error::Aws(e).into()),
        Err(e) => {
            o.write_conditions(&conditions::reconciling(e.reason(), format!("deleting: {e}")))
                .await?;
            Err(Error::Aws(e).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::api::EmailIdentityStatus;
    use crate::domain::ownership::Report;

    fn identity(spec: serde_json::Value, status: Option<EmailIdentityStatus>) -> EmailIdentity {
        let mut id = EmailIdentity::new("welcome", serde_json::from_value(spec).expect("test spec deserializes"));
        id.metadata.namespace = Some("team-a".into());
        id.status = status;
        id
    }

    fn owner() -> Owner {
        Owner::new("prod", &[], "team-a", "welcome")
    }

    fn facts(owner: &Owner) -> Facts<'_> {
        Facts {
            name: "example.com",
            account: "default",
            owner,
            adoption_allowed: true,
            created: false,
            drift_check: false,
        }
    }

    /// The identity as SES would hold it for `desired`, with `tags`.
    fn in_aws(desired: &diff::IdentitySettings, tags: &[(&str, &str)]) -> ObservedIdentity {
        ObservedIdentity {
            settings: desired.clone(),
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            identity_type: "DOMAIN".into(),
            verification_status: "SUCCESS".into(),
            verification_error: None,
            dkim_status: Some("SUCCESS".into()),
            dkim_tokens: vec![],
            mail_from_status: None,
        }
    }

    fn recorded() -> Option<EmailIdentityStatus> {
        Some(EmailIdentityStatus {
            arn: Some("arn:aws:ses:eu-west-1:123456789012:identity/example.com".into()),
            ..Default::default()
        })
    }

    #[test]
    fn a_drift_check_restores_the_default_set_and_says_so() {
        let owner = owner();
        let id = identity(serde_json::json!({"identity": "example.com"}), recorded());
        let desired = diff::desired(&id.spec, Some("orders".into()));
        let mut observed = in_aws(&desired, &[(OWNER_TAG, &owner.value)]);
        observed.settings.configuration_set = None;
        let facts = Facts {
            drift_check: true,
            ..facts(&owner)
        };
        assert_eq!(
            plan(&id, &desired, &observed, &facts),
            Ok(IdentityPlan::Apply {
                changes: vec![IdentityChange::ConfigurationSet(Some("orders".into()))],
                adopting: None,
                restoring_tag: false,
                report: Report::DriftCorrected,
            })
        );
    }

    #[test]
    fn what_a_create_left_to_set_is_applied_without_another_event() {
        let owner = owner();
        let id = identity(serde_json::json!({"identity": "example.com"}), None);
        let desired = diff::desired(&id.spec, Some("orders".into()));
        let mut observed = in_aws(&desired, &[(OWNER_TAG, &owner.value)]);
        observed.settings.configuration_set = None;
        let facts = Facts {
            created: true,
            ..facts(&owner)
        };
        let Ok(IdentityPlan::Apply { changes, report, .. }) = plan(&id, &desired, &observed, &facts) else {
            panic!("a created identity is ours");
        };
        assert_eq!(changes.len(), 1);
        assert_eq!(report, Report::Quiet);
    }

    #[test]
    fn an_identity_another_tenant_owns_is_refused() {
        let id = identity(serde_json::json!({"identity": "example.com", "adopt": true}), None);
        let desired = diff::desired(&id.spec, None);
        let observed = in_aws(&desired, &[(OWNER_TAG, "prod/team-b/welcome")]);
        let refused = plan(&id, &desired, &observed, &facts(&owner())).expect_err("not ours");
        assert_eq!(refused.reason(), "AlreadyExists");
        assert!(refused.to_string().contains("email identity example.com"), "{refused}");
    }

    #[test]
    fn an_adopted_identity_gets_the_owner_tag_first_and_keeps_its_tags() {
        let owner = owner();
        let status = EmailIdentityStatus {
            adoption: Some(Adoption {
                since: crate::reconcile::now(),
                kept_tags: vec!["team".into()],
            }),
            ..Default::default()
        };
        let id = identity(
            serde_json::json!({"identity": "example.com", "adopt": true}),
            Some(status),
        );
        let desired = diff::desired(&id.spec, None);
        let mut observed = in_aws(&desired, &[("team", "mail")]);
        observed.settings.feedback_forwarding = !desired.feedback_forwarding;
        let tagged = BTreeMap::from([(OWNER_TAG.to_string(), owner.value.clone())]);
        assert_eq!(
            plan(&id, &desired, &observed, &facts(&owner)),
            Ok(IdentityPlan::Apply {
                changes: vec![
                    IdentityChange::Tag(tagged),
                    IdentityChange::Feedback(desired.feedback_forwarding)
                ],
                adopting: Some(vec!["team".into()]),
                restoring_tag: false,
                report: Report::Updated,
            })
        );
    }

    fn set(account_ref: Option<&str>, created: bool) -> ConfigurationSet {
        let spec = match account_ref {
            Some(a) => serde_json::json!({"accountRef": a}),
            None => serde_json::json!({}),
        };
        let mut set = ConfigurationSet::new("orders", serde_json::from_value(spec).expect("set spec"));
        set.status = created.then(|| crate::api::ConfigurationSetStatus {
            arn: Some("arn:aws:ses:eu-west-1:123456789012:configuration-set/orders-aws".into()),
            aws_name: Some("orders-aws".into()),
            ..Default::default()
        });
        set
    }

    #[test]
    fn the_default_set_must_exist_in_the_identitys_own_account() {
        let state = |set: Option<&ConfigurationSet>| default_set_state("orders", set, "default", "default");
        assert_eq!(state(None), DefaultSet::Missing("orders".into()));
        assert_eq!(state(Some(&set(None, false))), DefaultSet::NotReady("orders".into()));
        assert_eq!(state(Some(&set(None, true))), DefaultSet::Ready("orders-aws".into()));
        assert_eq!(
            state(Some(&set(Some("eu"), true))),
            DefaultSet::OtherAccount("orders".into())
        );
        assert_eq!(
            default_set_state("orders", Some(&set(Some("eu"), true)), "default", "eu"),
            DefaultSet::Ready("orders-aws".into())
        );
    }
}
