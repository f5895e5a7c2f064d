//! SQS operations for the event stream's queue: the queue itself (owned,
//! tagged, with its access policy) and the consumer's receive and delete.

use std::collections::BTreeMap;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName};

use super::{AwsError, ErrorKind, Session};

/// A queue as SQS holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedQueue {
    pub url: String,
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

/// One received message.
#[derive(Clone, Debug)]
pub struct Received {
    pub receipt_handle: String,
    pub body: String,
}

impl Session {
    /// GetQueueUrl + GetQueueAttributes (All) + ListQueueTags; `None`
    /// when no queue has that name.
    pub async fn get_queue(&self, name: &str) -> Result<Option<ObservedQueue>, AwsError> {
        let url = match self
            .call("sqs:GetQueueUrl", self.sqs.get_queue_url().queue_name(name).send())
            .await
        {
            Ok(out) => out.queue_url.unwrap_or_default(),
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let attributes = match self
            .call(
                "sqs:GetQueueAttributes",
                self.sqs
                    .get_queue_attributes()
                    .queue_url(&url)
                    .attribute_names(QueueAttributeName::All)
                    .send(),
            )
            .await
        {
            Ok(out) => out
                .attributes
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.as_str().to_string(), v))
                .collect(),
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let tags = self
            .call("sqs:ListQueueTags", self.sqs.list_queue_tags().queue_url(&url).send())
            .await?
            .tags
            .unwrap_or_default()
            .into_iter()
            .collect();
        Ok(Some(ObservedQueue { url, attributes, tags }))
    }

    /// CreateQueue with the ownership tag and its attributes; returns the URL.
    pub async fn create_queue(
        &self,
        name: &str,
        owner: (&str, &str),
        attributes: &BTreeMap<String, String>,
    ) -> Result<String, AwsError> {
        let mut req = self.sqs.create_queue().queue_name(name).tags(owner.0, owner.1);
        for (k, v) in attributes {
            req = req.attributes(QueueAttributeName::from(k.as_str()), v);
        }
        let out = self.call("sqs:CreateQueue", req.send()).await?;
        Ok(out.queue_url.unwrap_or_default())
    }

    /// TagQueue with one tag (the owner tag after a cluster rename).
    pub async fn tag_queue(&self, url: &str, tag: (&str, &str)) -> Result<(), AwsError> {
        let req = self.sqs.tag_queue().queue_url(url).tags(tag.0, tag.1);
        self.call("sqs:TagQueue", req.send()).await.map(|_| ())
    }

    pub async fn set_queue_attributes(&self, url: &str, attributes: &BTreeMap<String, String>) -> Result<(), AwsError> {
        let mut req = self.sqs.set_queue_attributes().queue_url(url);
        for (k, v) in attributes {
            req = req.attributes(QueueAttributeName::from(k.as_str()), v);
        }
        self.call("sqs:SetQueueAttributes", req.send()).await.map(|_| ())
    }

    /// DeleteQueue; gone is fine.
    pub async fn delete_queue(&self, url: &str) -> Result<(), AwsError> {
        match self
            .call("sqs:DeleteQueue", self.sqs.delete_queue().queue_url(url).send())
            .await
        {
            Err(e) if e.kind != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// One long poll: up to 10 messages, waiting up to `wait_seconds` for
    /// the first (below the SDK's 20 s attempt timeout).
    pub async fn receive_events(&self, url: &str, wait_seconds: i32) -> Result<Vec<Received>, AwsError> {
        let req = self
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp);
        let out = self.call("sqs:ReceiveMessage", req.send()).await?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                Some(Received {
                    receipt_handle: m.receipt_handle?,
                    body: m.body.unwrap_or_default(),
                })
            })
            .collect())
    }

    /// DeleteMessageBatch (at most 10 handles); returns how many SQS
    /// refused (those come back after the visibility timeout).
    pub async fn delete_events(&self, url: &str, receipts: &[String]) -> Result<usize, AwsError> {
        if receipts.is_empty() {
            return Ok(0);
        }
        let entries: Vec<DeleteMessageBatchRequestEntry> = receipts
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(r)
                    .build()
                    .ok()
            })
            .collect();
        let req = self
            .sqs
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries));
        let out = self.call("sqs:DeleteMessageBatch", req.send()).await?;
        Ok(out.failed.len())
    }
}
