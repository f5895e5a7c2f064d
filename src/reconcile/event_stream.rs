//! An SesAccount's event stream in AWS: the operator-owned SNS topic, the
//! SQS queue only that topic may send to and the raw-delivery subscription
//! between them (created, drift-corrected and deleted from the SesAccount
//! reconciler), and the operator-owned event destination on each set
//! (from the ConfigurationSet reconciler). Ownership as everywhere: the
//! owner tag on topic and queue, a claim in the set's status before its
//! destination is created.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::ResourceExt;

use super::{Context, Error, Halt, Refusal, WriteGate};
use crate::api::OWNER_TAG;
use crate::api::SesAccount;
use crate::api::account::EventStreamStatus;
use crate::aws::Session;
use crate::aws::scheduler::Priority;
use crate::domain::diff::event_stream as stream;

fn not_ours(what: String) -> Error {
    Refusal::NotOurs(format!(
        "{what} already exists and is not owned by this SesAccount; it is left untouched"
    ))
    .into()
}

/// The stream's topic and queue name: the one status records (a cluster
/// renamed with `--previous-cluster-names` keeps its stream), else the
/// one this cluster's identity gives.
fn stream_name(account: &SesAccount, owner: &str) -> String {
    let recorded = account.status.as_ref().and_then(|s| s.event_stream.as_ref());
    recorded
        .and_then(|s| s.topic_arn.as_deref())
        .and_then(|arn| arn.rsplit(':').next())
        .filter(|name| !name.is_empty())
        .map_or_else(|| stream::resource_name(owner, &account.name_any()), str::to_string)
}

/// A part of a stream status recorded was gone and had to be made again:
/// said with a Warning (events sent meanwhile were lost).
async fn recreated(ctx: &Context, account: &SesAccount, recorded: bool, what: &str) {
    if recorded {
        let note = format!(
            "{what} of the event stream was deleted outside the operator; recreated (events sent meanwhile are lost)"
        );
        ctx.event(
            account,
            kube::runtime::events::EventType::Warning,
            "EventStreamRecreated",
            note,
        )
        .await;
    }
}

/// Creates or corrects the stream of one account; returns what status shows.
pub async fn sync(ctx: &Context, account: &SesAccount, session: &Session) -> Result<EventStreamStatus, Error> {
    let owner = ctx.owner_value(account);
    let name = stream_name(account, &owner);
    let recorded = account.status.as_ref().and_then(|s| s.event_stream.as_ref()).is_some();

    let topic_arn = session.topic_arn(&name);
    let topic_attributes = match session.get_topic(&topic_arn).await? {
        None => {
            session.create_topic(&name, (OWNER_TAG, &owner)).await?;
            recreated(ctx, account, recorded, &format!("SNS topic {name}")).await;
            BTreeMap::new()
        }
        Some(t) if ctx.owns(t.tags.get(OWNER_TAG), account, recorded) => {
            let retag = session.tag_topic(&topic_arn, (OWNER_TAG, &owner));
            ctx.migrate_owner_tag(account, t.tags.get(OWNER_TAG), &format!("SNS topic {name}"), retag)
                .await?;
            t.attributes
        }
        Some(_) => return Err(not_ours(format!("SNS topic {name}"))),
    };
    let policy = stream::topic_policy(
        &topic_arn,
        &session.account_id,
        &session.configuration_sets_arn_pattern(),
    )
    .to_string();
    let want = BTreeMap::from([("Policy".to_string(), policy)]);
    for (k, v) in stream::differing(&want, &topic_attributes) {
        session.set_topic_attribute(&topic_arn, &k, &v).await?;
    }

    let queue_arn = session.queue_arn(&name);
    let want = stream::queue_attributes(&queue_arn, &topic_arn);
    let queue_url = match session.get_queue(&name).await? {
        None => {
            let url = session.create_queue(&name, (OWNER_TAG, &owner), &want).await?;
            recreated(ctx, account, recorded, &format!("SQS queue {name}")).await;
            url
        }
        Some(q) if ctx.owns(q.tags.get(OWNER_TAG), account, recorded) => {
            let retag = session.tag_queue(&q.url, (OWNER_TAG, &owner));
            ctx.migrate_owner_tag(account, q.tags.get(OWNER_TAG), &format!("SQS queue {name}"), retag)
                .await?;
            let fix = stream::differing(&want, &q.attributes);
            if !fix.is_empty() {
                session.set_queue_attributes(&q.url, &fix).await?;
            }
            q.url
        }
        Some(_) => return Err(not_ours(format!("SQS queue {name}"))),
    };

    let subscription = session
        .list_subscriptions(&topic_arn)
        .await?
        .into_iter()
        .find(|s| s.protocol == "sqs" && s.endpoint == queue_arn);
    match subscription {
        None => {
            let raw = BTreeMap::from([("RawMessageDelivery".to_string(), "true".to_string())]);
            session.subscribe(&topic_arn, "sqs", &queue_arn, raw).await?;
        }
        Some(s) => {
            let attrs = session.get_subscription_attributes(&s.arn).await?;
            if attrs.get("RawMessageDelivery").map(String::as_str) != Some("true") {
                session
                    .set_subscription_attribute(&s.arn, "RawMessageDelivery", "true")
                    .await?;
            }
        }
    }
    Ok(EventStreamStatus {
        topic_arn: Some(topic_arn),
        queue_url: Some(queue_url),
        queue_arn: Some(queue_arn),
    })
}

/// Deletes the stream's topic (with its subscriptions) and queue, each
/// only if it carries this account's owner tag.
pub async fn delete(ctx: &Context, account: &SesAccount, session: &Session) -> Result<(), Error> {
    let owner = ctx.owner_value(account);
    let name = stream_name(account, &owner);
    let recorded = account.status.as_ref().and_then(|s| s.event_stream.as_ref()).is_some();
    let topic_arn = session.topic_arn(&name);
    if let Some(t) = session.get_topic(&topic_arn).await?
        && ctx.owns(t.tags.get(OWNER_TAG), account, recorded)
    {
        session.delete_topic(&topic_arn).await?;
    }
    if let Some(q) = session.get_queue(&name).await?
        && ctx.owns(q.tags.get(OWNER_TAG), account, recorded)
    {
        session.delete_queue(&q.url).await?;
    }
    Ok(())
}

/// The stream topic a set's destination should point to: the account's,
/// while its stream is on and created.
pub fn topic_for(ctx: &Context, account: &str) -> Option<String> {
    ctx.caches.stream_topic(account)
}

/// Brings a set's operator-owned destination in line with `topic` (`None`:
/// the stream is off: remove it). Acts only on a destination this set
/// claimed (`claimed`, recorded in status before the create). Returns
/// whether the claim stays.
pub async fn sync_destination(
    session: &Session,
    set: &str,
    topic: Option<&str>,
    claimed: bool,
    max_age: Duration,
    gate: WriteGate,
    priority: Priority,
) -> Result<bool, Halt> {
    if !claimed {
        // Never claimed: nothing of ours can exist (the caller claims first).
        return Ok(false);
    }
    let Some(dests) = session.event_destinations_within(set, max_age, priority).await? else {
        // The set is gone; so is its destination.
        return Ok(false);
    };
    let existing = dests.into_iter().find(|d| d.name == stream::DESTINATION_NAME);
    match (topic, existing) {
        (Some(topic), None) => {
            gate.check()?;
            session
                .put_event_destination(set, &stream::destination(topic), true, priority)
                .await?;
            Ok(true)
        }
        (Some(topic), Some(d)) => {
            let want = stream::destination(topic);
            if d != want {
                gate.check()?;
                session.put_event_destination(set, &want, false, priority).await?;
            }
            Ok(true)
        }
        (None, Some(_)) => {
            gate.check()?;
            session
                .delete_event_destination(set, stream::DESTINATION_NAME, priority)
                .await?;
            Ok(false)
        }
        (None, None) => Ok(false),
    }
}
