//! SES v2 tenants and reputation entities: the tenant of a namespace, its
//! resource associations, and the reputation entity whose statuses decide
//! whether mail with that `TenantName` goes out.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_sesv2::types as ses;

use super::scheduler::Priority;
use super::{AwsError, ErrorKind, Session};

/// A tenant as GetTenant shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    pub arn: String,
    pub tags: BTreeMap<String, String>,
}

/// A reputation entity's statuses, as AWS reports them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entity {
    pub aggregate: Option<String>,
    pub ses_status: Option<String>,
    pub ses_cause: Option<String>,
    pub ses_since: Option<String>,
    pub customer_status: Option<String>,
    pub customer_cause: Option<String>,
    pub customer_since: Option<String>,
    pub impact: Option<String>,
    pub policy: Option<String>,
}

impl Session {
    /// ListTenants, every page: the names of the account's tenants.
    pub async fn tenant_names(&self, priority: Priority) -> Result<Vec<String>, AwsError> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let req = self.ses.list_tenants().page_size(100).set_next_token(next.take());
            let page = self
                .ses_call("sesv2:ListTenants", priority, || req.clone().send())
                .await?;
            out.extend(
                page.tenants()
                    .iter()
                    .filter_map(|t| t.tenant_name().map(str::to_string)),
            );
            match page.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_string()),
                _ => return Ok(out),
            }
        }
    }

    /// The partition of this session's region.
    pub fn partition(&self) -> &'static str {
        super::partition(&self.region)
    }

    /// GetTenant; `None` when there is no tenant of that name.
    pub async fn get_tenant(&self, name: &str, priority: Priority) -> Result<Option<Tenant>, AwsError> {
        let out = self
            .ses_call("sesv2:GetTenant", priority, || {
                self.ses.get_tenant().tenant_name(name).send()
            })
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(t) = out.tenant() else { return Ok(None) };
        Ok(Some(Tenant {
            arn: t.tenant_arn().unwrap_or_default().to_string(),
            tags: t
                .tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect(),
        }))
    }

    /// CreateTenant with the owner tag; returns its ARN.
    pub async fn create_tenant(&self, name: &str, owner: (&str, &str), priority: Priority) -> Result<String, AwsError> {
        let tags = BTreeMap::from([(owner.0.to_string(), owner.1.to_string())]);
        let req = self
            .ses
            .create_tenant()
            .tenant_name(name)
            .set_tags(Some(super::ses::aws_tags(&tags)?));
        let out = self
            .ses_call("sesv2:CreateTenant", priority, || req.clone().send())
            .await?;
        Ok(out.tenant_arn().unwrap_or_default().to_string())
    }

    /// DeleteTenant; already gone is fine.
    pub async fn delete_tenant(&self, name: &str, priority: Priority) -> Result<(), AwsError> {
        match self
            .ses_call("sesv2:DeleteTenant", priority, || {
                self.ses.delete_tenant().tenant_name(name).send()
            })
            .await
        {
            Err(e) if e.kind != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// ListTenantResources, every page: the ARNs associated with a tenant.
    pub async fn tenant_resources(&self, name: &str, priority: Priority) -> Result<BTreeSet<String>, AwsError> {
        let mut out = BTreeSet::new();
        let mut next: Option<String> = None;
        loop {
            let req = self
                .ses
                .list_tenant_resources()
                .tenant_name(name)
                .page_size(100)
                .set_next_token(next.take());
            let page = self
                .ses_call("sesv2:ListTenantResources", priority, || req.clone().send())
                .await?;
            out.extend(
                page.tenant_resources()
                    .iter()
                    .filter_map(|r| r.resource_arn().map(str::to_string)),
            );
            match page.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_string()),
                _ => return Ok(out),
            }
        }
    }

    /// CreateTenantResourceAssociation; already associated is fine, and so
    /// is a resource deleted meanwhile (its owner's pass catches up).
    pub async fn associate(&self, tenant: &str, arn: &str, priority: Priority) -> Result<(), AwsError> {
        let req = self
            .ses
            .create_tenant_resource_association()
            .tenant_name(tenant)
            .resource_arn(arn);
        match self
            .ses_call("sesv2:CreateTenantResourceAssociation", priority, || req.clone().send())
            .await
        {
            Err(e) if !matches!(e.kind, ErrorKind::AlreadyExists | ErrorKind::NotFound) => Err(e),
            _ => Ok(()),
        }
    }

    /// GetReputationEntity of a resource (a tenant's ARN).
    pub async fn reputation_entity(&self, arn: &str, priority: Priority) -> Result<Entity, AwsError> {
        let out = self
            .ses_call("sesv2:GetReputationEntity", priority, || {
                self.ses
                    .get_reputation_entity()
                    .reputation_entity_type(ses::ReputationEntityType::Resource)
                    .reputation_entity_reference(arn)
                    .send()
            })
            .await?;
        let Some(e) = out.reputation_entity() else {
            return Ok(Entity::default());
        };
        let status = |r: Option<&ses::StatusRecord>| {
            (
                r.and_then(|r| r.status()).map(|s| s.as_str().to_string()),
                r.and_then(|r| r.cause()).map(str::to_string),
                r.and_then(|r| r.last_updated_timestamp())
                    .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
            )
        };
        let (ses_status, ses_cause, ses_since) = status(e.aws_ses_managed_status());
        let (customer_status, customer_cause, customer_since) = status(e.customer_managed_status());
        Ok(Entity {
            aggregate: e.sending_status_aggregate().map(|s| s.as_str().to_string()),
            ses_status,
            ses_cause,
            ses_since,
            customer_status,
            customer_cause,
            customer_since,
            impact: e.reputation_impact().map(|i| i.as_str().to_string()),
            policy: e.reputation_management_policy().map(str::to_string),
        })
    }

    /// UpdateReputationEntityCustomerManagedStatus of a resource:
    /// `DISABLED` to pause it, `REINSTATED` to lift that pause.
    pub async fn set_customer_status(&self, arn: &str, status: &str, priority: Priority) -> Result<(), AwsError> {
        let req = self
            .ses
            .update_reputation_entity_customer_managed_status()
            .reputation_entity_type(ses::ReputationEntityType::Resource)
            .reputation_entity_reference(arn)
            .sending_status(ses::SendingStatus::from(status));
        self.ses_call("sesv2:UpdateReputationEntityCustomerManagedStatus", priority, || {
            req.clone().send()
        })
        .await
        .map(|_| ())
    }

    /// UpdateReputationEntityPolicy of a resource.
    pub async fn set_entity_policy(&self, arn: &str, policy_arn: &str, priority: Priority) -> Result<(), AwsError> {
        let req = self
            .ses
            .update_reputation_entity_policy()
            .reputation_entity_type(ses::ReputationEntityType::Resource)
            .reputation_entity_reference(arn)
            .reputation_entity_policy(policy_arn);
        self.ses_call("sesv2:UpdateReputationEntityPolicy", priority, || req.clone().send())
            .await
            .map(|_| ())
    }
}
