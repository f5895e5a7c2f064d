//! The findings reader (leader only: it runs with the controllers). Every
//! `--findings-interval-seconds` it lists each SesAccount's OPEN findings
//! (SES `ListRecommendations`, drift-class calls in the account's SES
//! budget), keeps them here by the resource they name, and asks the
//! EmailIdentity and SesAccount controllers to fold in only what changed.

use std::collections::HashMap;

use kube::ResourceExt;
use parking_lot::RwLock;
use tracing::{Instrument, info_span};

use super::{Shared, Trigger};
use crate::api::{EmailIdentity, SesAccount};
use crate::domain::findings::{self, ByResource, Open};
use crate::index::account_key;

/// The newest findings per account, and the channels that ask the
/// controllers to show them.
#[derive(Default)]
pub struct FindingsState {
    accounts: RwLock<HashMap<String, ByResource>>,
    identity_trigger: Trigger<EmailIdentity>,
    account_trigger: Trigger<SesAccount>,
}

impl FindingsState {
    /// An account's open findings, `None` before its first read.
    pub fn of_account(&self, account: &str) -> Option<ByResource> {
        self.accounts.read().get(account).cloned()
    }

    /// The open findings about one resource (an identity's ARN), `None`
    /// before the account's first read.
    pub fn of_resource(&self, account: &str, arn: &str) -> Option<Vec<Open>> {
        self.accounts
            .read()
            .get(account)
            .map(|all| all.get(arn).cloned().unwrap_or_default())
    }

    /// Forgets a deleted account.
    pub fn forget(&self, account: &str) {
        self.accounts.write().remove(account);
    }

    pub fn identity_triggers(
        &self,
    ) -> impl futures::Stream<Item = kube::runtime::reflector::ObjectRef<EmailIdentity>> + Send + 'static {
        self.identity_trigger.stream()
    }

    pub fn account_triggers(
        &self,
    ) -> impl futures::Stream<Item = kube::runtime::reflector::ObjectRef<SesAccount>> + Send + 'static {
        self.account_trigger.stream()
    }
}

/// Reads every account's findings each interval until `shutdown`.
pub async fn run_findings_reader(ctx: Shared, mut shutdown: impl std::future::Future<Output = ()> + Unpin) {
    tokio::select! {
        _ = &mut shutdown => return,
        _ = ctx.index.synced() => {}
    }
    loop {
        for account in ctx.index.accounts.state() {
            read_account(&ctx, &account)
                .instrument(info_span!("read_findings", account = %account.name_any()))
                .await;
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(ctx.settings.findings_interval) => {}
        }
    }
}

/// One account: a failed read keeps what was read before (advice that is
/// an interval old is still true enough) and is tried again next round.
async fn read_account(ctx: &Shared, account: &SesAccount) {
    let name = account.name_any();
    let session = match ctx.aws.session(&account_key(&account.spec)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "no AWS session for the findings read");
            return;
        }
    };
    let now = match session.list_open_findings().await {
        Ok(open) => findings::by_resource(open),
        Err(e) => {
            tracing::warn!(error = %e, "reading findings failed; keeping the last read");
            return;
        }
    };
    let before = ctx.findings.accounts.write().insert(name.clone(), now.clone());
    if before.as_ref() == Some(&now) {
        return;
    }
    // The gauges: counts that went to zero remove their series.
    for gone in before.as_ref().map(findings::counts).unwrap_or_default() {
        ctx.metrics.set_findings_open(&name, &gone.type_, &gone.impact, None);
    }
    for c in findings::counts(&now) {
        ctx.metrics.set_findings_open(&name, &c.type_, &c.impact, Some(c.count));
    }
    // The first read since start-up: the sets under a policy that weighs
    // findings gave no verdict before it.
    if before.is_none() {
        let weighing: std::collections::HashSet<String> = ctx
            .index
            .policies
            .state()
            .iter()
            .filter(|p| p.spec.findings.is_some())
            .filter_map(|p| p.namespace())
            .collect();
        for cs in ctx.index.sets_of_account(&name) {
            if cs.namespace().is_some_and(|ns| weighing.contains(&ns)) {
                ctx.rates.trigger_set(&cs);
            }
        }
    }
    // Only identities whose own findings changed (or that never saw a
    // read) are reconciled.
    for id in ctx.index.identities_of_account(&name) {
        let Some(arn) = id.status.as_ref().and_then(|s| s.arn.as_deref()) else {
            continue;
        };
        let was = before.as_ref().map(|b| b.get(arn));
        if was != Some(now.get(arn)) {
            ctx.findings.identity_trigger.send(&id);
            // Its default set too: a policy may weigh its findings.
            if let Some(set) = id
                .spec
                .configuration_set_ref
                .as_ref()
                .and_then(|r| ctx.index.set(&id.namespace().unwrap_or_default(), &r.name))
            {
                ctx.rates.trigger_set(&set);
            }
        }
    }
    ctx.findings.account_trigger.send(account);
}
