//! SNS operations for operator-owned topics and their subscriptions.

use std::collections::BTreeMap;

use aws_sdk_sns::types::Tag;

use super::{AwsError, ErrorKind, Session};
use crate::domain::diff::topic::ObservedSubscription;

/// A topic as SNS holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedTopic {
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

impl Session {
    /// GetTopicAttributes + ListTagsForResource; `None` when the topic does not exist.
    pub async fn get_topic(&self, arn: &str) -> Result<Option<ObservedTopic>, AwsError> {
        let attrs = match self
            .call(
                "sns:GetTopicAttributes",
                self.sns.get_topic_attributes().topic_arn(arn).send(),
            )
            .await
        {
            Ok(out) => out.attributes.unwrap_or_default().into_iter().collect(),
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let tags = self
            .call(
                "sns:ListTagsForResource",
                self.sns.list_tags_for_resource().resource_arn(arn).send(),
            )
            .await?
            .tags
            .unwrap_or_default()
            .into_iter()
            .map(|t| (t.key, t.value))
            .collect();
        Ok(Some(ObservedTopic {
            attributes: attrs,
            tags,
        }))
    }

    /// A topic's access policy (GetTopicAttributes only: no tags), `None`
    /// when the topic does not exist.
    pub async fn get_topic_policy(&self, arn: &str) -> Result<Option<String>, AwsError> {
        match self
            .call(
                "sns:GetTopicAttributes",
                self.sns.get_topic_attributes().topic_arn(arn).send(),
            )
            .await
        {
            Ok(out) => Ok(Some(
                out.attributes.and_then(|mut a| a.remove("Policy")).unwrap_or_default(),
            )),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// CreateTopic with a bare name and the ownership tag only: CreateTopic
    /// is idempotent only for identical attributes, so everything else is set
    /// afterwards with SetTopicAttributes.
    pub async fn create_topic(&self, name: &str, owner: (&str, &str)) -> Result<String, AwsError> {
        let tag = Tag::builder()
            .key(owner.0)
            .value(owner.1)
            .build()
            .map_err(|e| AwsError {
                operation: "sns:CreateTopic",
                kind: ErrorKind::BadRequest,
                code: "InvalidTag".into(),
                message: e.to_string(),
            })?;
        let out = self
            .call("sns:CreateTopic", self.sns.create_topic().name(name).tags(tag).send())
            .await?;
        Ok(out.topic_arn.unwrap_or_else(|| self.topic_arn(name)))
    }

    /// TagResource with one tag: the owner tag, moved to this cluster's
    /// name after a rename (`--previous-cluster-names`).
    pub async fn tag_topic(&self, arn: &str, tag: (&str, &str)) -> Result<(), AwsError> {
        let tag = Tag::builder().key(tag.0).value(tag.1).build().map_err(|e| AwsError {
            operation: "sns:TagResource",
            kind: ErrorKind::BadRequest,
            code: "InvalidTag".into(),
            message: e.to_string(),
        })?;
        let req = self.sns.tag_resource().resource_arn(arn).tags(tag);
        self.call("sns:TagResource", req.send()).await.map(|_| ())
    }

    pub async fn set_topic_attribute(&self, arn: &str, name: &str, value: &str) -> Result<(), AwsError> {
        let req = self
            .sns
            .set_topic_attributes()
            .topic_arn(arn)
            .attribute_name(name)
            .attribute_value(value);
        self.call("sns:SetTopicAttributes", req.send()).await.map(|_| ())
    }

    /// DeleteTopic (which also removes its subscriptions); gone is fine.
    pub async fn delete_topic(&self, arn: &str) -> Result<(), AwsError> {
        match self
            .call("sns:DeleteTopic", self.sns.delete_topic().topic_arn(arn).send())
            .await
        {
            Err(e) if e.kind != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// All subscriptions of a topic (follows NextToken).
    pub async fn list_subscriptions(&self, arn: &str) -> Result<Vec<ObservedSubscription>, AwsError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .call(
                    "sns:ListSubscriptionsByTopic",
                    self.sns
                        .list_subscriptions_by_topic()
                        .topic_arn(arn)
                        .set_next_token(token.take())
                        .send(),
                )
                .await?;
            for s in page.subscriptions.unwrap_or_default() {
                out.push(ObservedSubscription {
                    protocol: s.protocol.unwrap_or_default(),
                    endpoint: s.endpoint.unwrap_or_default(),
                    arn: s.subscription_arn.unwrap_or_default(),
                });
            }
            token = page.next_token;
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    pub async fn subscribe(
        &self,
        topic_arn: &str,
        protocol: &str,
        endpoint: &str,
        attributes: BTreeMap<String, String>,
    ) -> Result<(), AwsError> {
        let req = self
            .sns
            .subscribe()
            .topic_arn(topic_arn)
            .protocol(protocol)
            .endpoint(endpoint)
            .set_attributes((!attributes.is_empty()).then(|| attributes.into_iter().collect()))
            .return_subscription_arn(true);
        self.call("sns:Subscribe", req.send()).await.map(|_| ())
    }

    pub async fn unsubscribe(&self, subscription_arn: &str) -> Result<(), AwsError> {
        match self
            .call(
                "sns:Unsubscribe",
                self.sns.unsubscribe().subscription_arn(subscription_arn).send(),
            )
            .await
        {
            Err(e) if e.kind != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Publishes one message (reputation alerts).
    pub async fn publish(&self, topic_arn: &str, subject: &str, message: &str) -> Result<(), AwsError> {
        let req = self
            .sns
            .publish()
            .topic_arn(topic_arn)
            .subject(subject)
            .message(message);
        self.call("sns:Publish", req.send()).await.map(|_| ())
    }

    /// GetSubscriptionAttributes.
    pub async fn get_subscription_attributes(&self, arn: &str) -> Result<BTreeMap<String, String>, AwsError> {
        let req = self.sns.get_subscription_attributes().subscription_arn(arn);
        let out = self.call("sns:GetSubscriptionAttributes", req.send()).await?;
        Ok(out.attributes.unwrap_or_default().into_iter().collect())
    }

    /// SetSubscriptionAttributes for one attribute.
    pub async fn set_subscription_attribute(&self, arn: &str, name: &str, value: &str) -> Result<(), AwsError> {
        let req = self
            .sns
            .set_subscription_attributes()
            .subscription_arn(arn)
            .attribute_name(name)
            .attribute_value(value);
        self.call("sns:SetSubscriptionAttributes", req.send()).await.map(|_| ())
    }
}
