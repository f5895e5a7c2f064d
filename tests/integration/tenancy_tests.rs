//! A hostile (or careless) tenant against resources it does not own. The
//! attacker acts as a tenant, not as cluster-admin: the ServiceAccount
//! `tenant` of its namespace with a Role that may edit `ses.reputation.io`
//! objects there only (`support::tenant_client`). Every attack asserts
//! that nothing was written to the victim's AWS resources (the emulator's
//! per-resource write log) and that the attacker gets a clear status that
//! never names the victim's namespace or objects. Event destinations carry
//! no tags, so the operator touches only those its object claimed before
//! creating them.

use std::time::Duration;

use aws_sdk_sesv2::types::{
    CloudWatchDestination, CloudWatchDimensionConfiguration, DimensionValueSource, EventDestinationDefinition,
    EventType,
};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};
use ses_reputation_operator::api::{ConfigurationSet, EventDestination, ReputationPolicy, SesAccount};

use crate::support::emulator::Emulator;
use crate::support::identities::allow_topic;
use crate::support::kstatus::kstatus;
use crate::support::{World, WorldOptions, apply_json, condition, eventually, tenant_client, unique};
use crate::support::{cloudwatch_destination, cs_object, ses_client, wait_condition, wait_set_ready};

/// A destination made outside the operator (Terraform, the console).
async fn foreign_destination(ses: &aws_sdk_sesv2::Client, set: &str, name: &str) {
    let dimension = CloudWatchDimensionConfiguration::builder()
        .dimension_name("team")
        .dimension_value_source(DimensionValueSource::MessageTag)
        .default_dimension_value("victim")
        .build()
        .expect("dimension");
    ses.create_configuration_set_event_destination()
        .configuration_set_name(set)
        .event_destination_name(name)
        .event_destination(
            EventDestinationDefinition::builder()
                .enabled(true)
                .matching_event_types(EventType::Bounce)
                .cloud_watch_destination(
                    CloudWatchDestination::builder()
                        .dimension_configurations(dimension)
                        .build()
                        .expect("cloudwatch"),
                )
                .build(),
        )
        .send()
        .await
        .expect("create the foreign destination");
}

/// The foreign destination as AWS has it: (dimension name, default value).
async fn foreign_dimension(ses: &aws_sdk_sesv2::Client, set: &str, name: &str) -> Option<(String, String)> {
    let out = ses
        .get_configuration_set_event_destinations()
        .configuration_set_name(set)
        .send()
        .await
        .expect("list destinations");
    let dest = out.event_destinations().iter().find(|d| d.name() == name)?;
    let dim = &dest.cloud_watch_destination()?.dimension_configurations()[0];
    Some((
        dim.dimension_name().to_string(),
        dim.default_dimension_value().to_string(),
    ))
}

fn destination_writes(w: &World) -> u64 {
    [
        "sesv2:CreateConfigurationSetEventDestination",
        "sesv2:UpdateConfigurationSetEventDestination",
        "sesv2:DeleteConfigurationSetEventDestination",
    ]
    .iter()
    .map(|op| w.calls(op))
    .sum()
}

async fn delete_and_wait_gone(api: &Api<EventDestination>, name: &str) {
    api.delete(name, &DeleteParams::default()).await.expect("delete");
    eventually(&format!("{name} gone"), Duration::from_secs(30), || async {
        match api.get_opt(name).await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(_) => Err("still there".to_string()),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_cannot_delete_another_teams_event_destination() {
    let ses = ses_client().await;
    // The victim's set and destination, managed outside this cluster.
    let victim_set = unique("victim");
    ses.create_configuration_set()
        .configuration_set_name(&victim_set)
        .send()
        .await
        .expect("victim set");
    foreign_destination(&ses, &victim_set, "alerts").await;

    let w = World::new("tenant-attack").await;
    let tenant = tenant_client(&w.client, &w.ns).await;
    let (sets, dests): (Api<ConfigurationSet>, Api<EventDestination>) =
        (Api::namespaced(tenant.clone(), &w.ns), Api::namespaced(tenant, &w.ns));
    apply_json(&sets, cs_object("stolen", json!({"name": victim_set}))).await;
    let cs = wait_condition(&sets, "stolen", "Stalled", "True", "AlreadyExists").await;
    let conds = cs.status.expect("status").conditions;
    let (_, _, message) = condition(&conds, "Stalled").expect("Stalled");
    assert!(message.contains("left untouched"), "{message}");

    apply_json(&dests, cloudwatch_destination("alerts", "stolen", "attacker")).await;
    // Its set is a dead end, so the destination is one too (not "waiting").
    eventually("destination Stalled with its set", Duration::from_secs(30), || async {
        let ed = dests.get("alerts").await.map_err(|e| e.to_string())?;
        let conds = ed.status.map(|s| s.conditions).unwrap_or_default();
        match condition(&conds, "Stalled") {
            Some((s, r, _)) if s == "True" && r == "ConfigurationSetStalled" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    delete_and_wait_gone(&dests, "alerts").await;

    assert_eq!(
        foreign_dimension(&ses, &victim_set, "alerts").await,
        Some(("team".into(), "victim".into())),
        "the victim's destination is untouched"
    );
    assert_eq!(destination_writes(&w), 0, "{:?}", w.all_calls());
    assert_eq!(
        Emulator.writes_to(&format!("configuration-set/{victim_set}")).await,
        [
            ("sesv2:CreateConfigurationSet".to_string(), 1),
            ("sesv2:CreateConfigurationSetEventDestination".to_string(), 1),
        ]
        .into(),
        "only the victim's own two writes"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_destination_made_outside_the_operator_is_not_taken_over() {
    let w = World::new("tenant-foreign").await;
    let (sets, dests): (Api<ConfigurationSet>, Api<EventDestination>) = (w.api(), w.api());
    let ses = ses_client().await;
    let set_name = unique("mine");
    apply_json(&sets, cs_object("mine", json!({"name": set_name}))).await;
    wait_set_ready(&sets, "mine").await;
    foreign_destination(&ses, &set_name, "console").await;

    apply_json(&dests, cloudwatch_destination("console", "mine", "ours")).await;
    let ed = eventually("the destination is Stalled", Duration::from_secs(30), || async {
        let ed = dests.get("console").await.map_err(|e| e.to_string())?;
        let conds = ed.status.clone().map(|s| s.conditions).unwrap_or_default();
        match condition(&conds, "Stalled") {
            Some((s, r, _)) if s == "True" && r == "AlreadyExists" => Ok(ed),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let status = ed.status.expect("status");
    assert!(
        status.claim.is_none(),
        "no claim on a foreign destination: {:?}",
        status.claim
    );
    let (_, _, message) = condition(&status.conditions, "Stalled").expect("Stalled");
    assert!(message.contains("owned by another resource"), "{message}");

    delete_and_wait_gone(&dests, "console").await;
    assert_eq!(
        foreign_dimension(&ses, &set_name, "console").await,
        Some(("team".into(), "victim".into())),
        "the foreign destination is neither updated nor deleted"
    );
    // One create attempt (answered AlreadyExists), no update, no delete.
    assert_eq!(w.calls("sesv2:UpdateConfigurationSetEventDestination"), 0);
    assert_eq!(w.calls("sesv2:DeleteConfigurationSetEventDestination"), 0);
}

async fn wait_policy(api: &Api<ReputationPolicy>, name: &str, type_: &str, reason: &str) -> String {
    eventually(&format!("{name} {type_} {reason}"), Duration::from_secs(30), || async {
        let p = api.get(name).await.map_err(|e| e.to_string())?;
        let conds = p.status.map(|s| s.conditions).unwrap_or_default();
        match condition(&conds, type_) {
            Some((s, r, m)) if s == "True" && r == reason => Ok(m),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_go_only_to_topics_the_account_allows() {
    let w = World::new("tenant-notify").await;
    let policies: Api<ReputationPolicy> = Api::namespaced(tenant_client(&w.client, &w.ns).await, &w.ns);
    let foreign = "arn:aws:sns:us-east-1:123456789012:another-teams-topic";
    let policy = |name: &str, notify: Value| {
        json!({
            "apiVersion": "ses.reputation.io/v1alpha1",
            "kind": "ReputationPolicy",
            "metadata": {"name": name},
            "spec": {"selector": {}, "actions": {"notify": notify}},
        })
    };
    apply_json(&policies, policy("foreign", json!({"topicArn": foreign}))).await;
    let message = wait_policy(&policies, "foreign", "Stalled", "NotifyNotAllowed").await;
    assert!(message.contains("allowedTopicArns"), "{message}");

    apply_json(
        &policies,
        policy("missing", json!({"eventDestinationRef": {"name": "nope"}})),
    )
    .await;
    wait_policy(&policies, "missing", "Stalled", "NotifyTargetNotFound").await;

    // The platform team allows the topic: the policy becomes Ready.
    allow_topic(&w, foreign).await;
    wait_policy(&policies, "foreign", "Ready", "Synced").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn role_arn_and_external_id_are_immutable() {
    let w = World::with(
        "tenant-role",
        WorldOptions {
            start_operator: false,
            ..Default::default()
        },
    )
    .await;
    let accounts: Api<SesAccount> = Api::all(w.client.clone());
    let err = accounts
        .patch(
            &w.account,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"roleArn": "arn:aws:iam::210987654321:role/elsewhere"}})),
        )
        .await
        .expect_err("roleArn is immutable");
    let kube::Error::Api(status) = err else {
        panic!("unexpected error {err:?}")
    };
    assert_eq!(status.code, 422, "{status:?}");
    assert!(
        status
            .message
            .contains("spec.roleArn and spec.externalId are immutable"),
        "{}",
        status.message
    );
}

// --- two tenants of one cluster ---------------------------------------------

/// The victim: a tenant whose ConfigurationSet `newsletter` (AWS name
/// returned) and EventDestination `newsletter-bounces` (an SNS topic the
/// operator creates, ARN returned) are Ready. The attacker's objects have
/// other names, so a message naming the victim's objects is caught.
async fn victim_with_set_and_topic() -> (World, String, String) {
    let w = World::new("victim").await;
    let (sets, dests): (Api<ConfigurationSet>, Api<EventDestination>) = (w.api(), w.api());
    let aws_name = unique("victim-mail");
    let topic = unique("victim-bounces");
    apply_json(
        &sets,
        cs_object("newsletter", json!({"name": aws_name, "tags": {"team": "victim"}})),
    )
    .await;
    wait_set_ready(&sets, "newsletter").await;
    apply_json(
        &dests,
        json!({
            "apiVersion": "ses.reputation.io/v1alpha1",
            "kind": "EventDestination",
            "metadata": {"name": "newsletter-bounces"},
            "spec": {"configurationSetRef": {"name": "newsletter"}, "sns": {"topic": {"name": topic}}},
        }),
    )
    .await;
    let topic_arn = eventually("victim destination Ready", Duration::from_secs(60), || async {
        let ed = dests.get("newsletter-bounces").await.map_err(|e| e.to_string())?;
        let status = ed.status.unwrap_or_default();
        match (condition(&status.conditions, "Ready"), status.topic_arn) {
            (Some((s, _, _)), Some(arn)) if s == "True" => Ok(arn),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    (w, aws_name, topic_arn)
}

/// Every condition message of an attacker's object, for the check that
/// none names the victim.
fn messages(conds: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]) -> String {
    conds.iter().map(|c| c.message.as_str()).collect::<Vec<_>>().join("\n")
}

fn assert_names_no_victim(messages: &str, victim: &World) {
    assert!(
        !messages.contains(&victim.ns) && !messages.contains("newsletter"),
        "an attacker's status names the victim's namespace or objects:\n{messages}"
    );
}

async fn set_tags(ses: &aws_sdk_sesv2::Client, name: &str) -> std::collections::BTreeMap<String, String> {
    ses.get_configuration_set()
        .configuration_set_name(name)
        .send()
        .await
        .expect("get set")
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

/// (a), (e): a tenant names another tenant's set and destination. Its set
/// and destination are Stalled (the names are taken) without saying whose
/// they are; deleting them deletes nothing of the victim's.
#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_cannot_take_over_or_delete_another_tenants_set() {
    let (victim, aws_name, _) = victim_with_set_and_topic().await;
    let resource = format!("configuration-set/{aws_name}");
    let before = Emulator.writes_to(&resource).await;
    let ses = ses_client().await;
    let tags_before = set_tags(&ses, &aws_name).await;

    let w = World::new("attacker").await;
    let tenant = tenant_client(&w.client, &w.ns).await;
    let (sets, dests): (Api<ConfigurationSet>, Api<EventDestination>) =
        (Api::namespaced(tenant.clone(), &w.ns), Api::namespaced(tenant, &w.ns));
    apply_json(&sets, cs_object("mail", json!({"name": aws_name}))).await;
    let cs = wait_condition(&sets, "mail", "Stalled", "True", "AlreadyExists").await;
    // What the attacker's GitOps tool shows: Failed, and why.
    let (status, summary) = kstatus(&cs);
    assert_eq!(status, "Failed", "{summary}");
    assert!(summary.contains("owned by another resource"), "{summary}");
    let conds = cs.status.expect("status").conditions;
    let (_, _, message) = condition(&conds, "Stalled").expect("Stalled");
    assert!(message.contains("owned by another resource"), "{message}");
    assert_names_no_victim(&messages(&conds), &victim);

    apply_json(&dests, cloudwatch_destination("bounces", "mail", "attacker")).await;
    let ed = eventually("attacker destination Stalled", Duration::from_secs(30), || async {
        let ed = dests.get("bounces").await.map_err(|e| e.to_string())?;
        let conds = ed.status.clone().map(|s| s.conditions).unwrap_or_default();
        match condition(&conds, "Stalled") {
            Some((s, r, _)) if s == "True" && r == "ConfigurationSetStalled" => Ok(ed),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(kstatus(&ed).0, "Failed");
    assert_names_no_victim(&messages(&ed.status.expect("status").conditions), &victim);

    delete_and_wait_gone(&dests, "bounces").await;
    sets.delete("mail", &DeleteParams::default()).await.expect("delete");
    eventually("attacker set gone", Duration::from_secs(30), || async {
        match sets.get_opt("mail").await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(_) => Err("still there".to_string()),
        }
    })
    .await;

    assert_eq!(
        Emulator.writes_to(&resource).await,
        before,
        "nothing written to the victim's set"
    );
    assert_eq!(set_tags(&ses, &aws_name).await, tags_before);
    assert_eq!(destination_writes(&w), 0, "{:?}", w.all_calls());
    wait_set_ready(&victim.api(), "newsletter").await;
}

/// (b): alerts to another tenant's topic are refused, and so is a
/// reference to its EventDestination (references stay in one namespace).
#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_cannot_send_alerts_to_another_tenants_topic() {
    let (victim, _, topic_arn) = victim_with_set_and_topic().await;
    let resource = format!("topic/{topic_arn}");
    let before = Emulator.writes_to(&resource).await;

    let w = World::new("attacker-notify").await;
    let policies: Api<ReputationPolicy> = Api::namespaced(tenant_client(&w.client, &w.ns).await, &w.ns);
    let policy = |name: &str, notify: Value| {
        json!({
            "apiVersion": "ses.reputation.io/v1alpha1",
            "kind": "ReputationPolicy",
            "metadata": {"name": name},
            "spec": {"selector": {}, "actions": {"notify": notify}},
        })
    };
    apply_json(&policies, policy("by-arn", json!({"topicArn": topic_arn}))).await;
    let message = wait_policy(&policies, "by-arn", "Stalled", "NotifyNotAllowed").await;
    assert_names_no_victim(&message, &victim);
    apply_json(
        &policies,
        policy("by-ref", json!({"eventDestinationRef": {"name": "newsletter-bounces"}})),
    )
    .await;
    let message = wait_policy(&policies, "by-ref", "Stalled", "NotifyTargetNotFound").await;
    // It echoes the name the attacker wrote, and says nothing of where else it exists.
    assert!(message.contains("does not exist in this namespace"), "{message}");
    assert!(!message.contains(&victim.ns), "{message}");

    assert_eq!(
        Emulator.writes_to(&resource).await,
        before,
        "nothing published or changed"
    );
    assert_eq!(w.calls("sns:Publish"), 0);
}

/// (c): `spec.adopt: true` on a set another tenant owns changes nothing:
/// adoption is for sets nobody owns.
#[tokio::test(flavor = "multi_thread")]
async fn adopt_cannot_take_another_tenants_set() {
    let (victim, aws_name, _) = victim_with_set_and_topic().await;
    let resource = format!("configuration-set/{aws_name}");
    let before = Emulator.writes_to(&resource).await;
    let ses = ses_client().await;
    let tags_before = set_tags(&ses, &aws_name).await;

    let w = World::new("attacker-adopt").await;
    let sets: Api<ConfigurationSet> = Api::namespaced(tenant_client(&w.client, &w.ns).await, &w.ns);
    apply_json(
        &sets,
        cs_object(
            "grab",
            json!({"name": aws_name, "adopt": true, "sending": {"enabled": false}, "tags": {"team": "attacker"}}),
        ),
    )
    .await;
    let cs = wait_condition(&sets, "grab", "Stalled", "True", "AlreadyExists").await;
    let conds = cs.status.expect("status").conditions;
    let (_, _, message) = condition(&conds, "Stalled").expect("Stalled");
    assert!(message.contains("owned by another resource"), "{message}");
    assert_names_no_victim(&messages(&conds), &victim);

    assert_eq!(
        Emulator.writes_to(&resource).await,
        before,
        "nothing written to the victim's set"
    );
    assert_eq!(set_tags(&ses, &aws_name).await, tags_before);
    let out = ses
        .get_configuration_set()
        .configuration_set_name(&aws_name)
        .send()
        .await
        .expect("get set");
    assert!(
        out.sending_options().is_none_or(|o| o.sending_enabled()),
        "the victim's set still sends"
    );
}

/// (c): adopting a set made outside the operator needs the platform team's
/// permission on the SesAccount; without it the set is left untouched.
#[tokio::test(flavor = "multi_thread")]
async fn adopt_needs_the_accounts_permission_for_an_unmanaged_set() {
    let ses = ses_client().await;
    let aws_name = unique("unmanaged");
    ses.create_configuration_set()
        .configuration_set_name(&aws_name)
        .tags(
            aws_sdk_sesv2::types::Tag::builder()
                .key("team")
                .value("platform")
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("unmanaged set");
    let resource = format!("configuration-set/{aws_name}");
    let before = Emulator.writes_to(&resource).await;

    let w = World::new("attacker-unmanaged").await;
    let sets: Api<ConfigurationSet> = Api::namespaced(tenant_client(&w.client, &w.ns).await, &w.ns);
    apply_json(
        &sets,
        cs_object(
            "grab",
            json!({"name": aws_name, "adopt": true, "sending": {"enabled": false}}),
        ),
    )
    .await;
    let cs = eventually("adoption refused", Duration::from_secs(30), || async {
        let cs = sets.get("grab").await.map_err(|e| e.to_string())?;
        let conds = cs.status.clone().map(|s| s.conditions).unwrap_or_default();
        match condition(&conds, "Stalled") {
            Some((s, _, m)) if s == "True" && m.contains("adopt") => Ok(cs),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let (_, _, message) = condition(&cs.status.expect("status").conditions, "Stalled").expect("Stalled");
    assert!(message.contains("SesAccount"), "says who can allow it: {message}");
    assert_eq!(Emulator.writes_to(&resource).await, before, "nothing written");
    assert_eq!(
        set_tags(&ses, &aws_name).await,
        [("team".to_string(), "platform".to_string())].into()
    );

    // The platform team allows adoption for this namespace: now it happens.
    Api::<SesAccount>::all(w.client.clone())
        .patch(
            &w.account,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"adoption": {"allowedNamespaces": {
                "matchLabels": {"kubernetes.io/metadata.name": w.ns}}}}})),
        )
        .await
        .expect("allow adoption");
    wait_set_ready(&sets, "grab").await;
    assert!(set_tags(&ses, &aws_name).await.contains_key("ses.reputation.io/owner"));
}

fn forbidden<T: std::fmt::Debug>(result: Result<T, kube::Error>) {
    match result {
        Err(kube::Error::Api(s)) if s.code == 403 => {}
        other => panic!("expected 403 Forbidden, got {other:?}"),
    }
}

/// (d), (f): the tenant's RBAC is the wall: it cannot touch SesAccounts
/// (cluster-scoped, the platform team's), nor any object in another
/// namespace. Nothing reaches AWS.
#[tokio::test(flavor = "multi_thread")]
async fn a_tenants_rbac_stops_it_at_its_namespace_and_off_sesaccounts() {
    let (victim, aws_name, _) = victim_with_set_and_topic().await;
    let resource = format!("configuration-set/{aws_name}");
    let before = Emulator.writes_to(&resource).await;

    let w = World::with(
        "attacker-rbac",
        WorldOptions {
            start_operator: false,
            ..Default::default()
        },
    )
    .await;
    let tenant = tenant_client(&w.client, &w.ns).await;

    // (d) SesAccount.spec.roleArn: neither its own account nor the
    // victim's, and no new SesAccount either.
    let accounts: Api<SesAccount> = Api::all(tenant.clone());
    for account in [&w.account, &victim.account] {
        forbidden(
            accounts
                .patch(
                    account,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"roleArn": "arn:aws:iam::210987654321:role/attacker"}})),
                )
                .await,
        );
    }
    forbidden(
        accounts
            .create(
                &Default::default(),
                &serde_json::from_value(json!({
                    "apiVersion": "ses.reputation.io/v1alpha1",
                    "kind": "SesAccount",
                    "metadata": {"name": unique("attacker")},
                    "spec": {"region": "us-east-1", "roleArn": "arn:aws:iam::210987654321:role/attacker"},
                }))
                .expect("SesAccount"),
            )
            .await,
    );

    // (f) The victim's namespace: no create, no change, no delete.
    let theirs: Api<ConfigurationSet> = Api::namespaced(tenant.clone(), &victim.ns);
    forbidden(
        theirs
            .create(
                &Default::default(),
                &serde_json::from_value(cs_object("planted", json!({"name": unique("planted")}))).expect("set"),
            )
            .await,
    );
    forbidden(
        theirs
            .patch(
                "newsletter",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"sending": {"enabled": false}}})),
            )
            .await,
    );
    forbidden(theirs.delete("newsletter", &DeleteParams::default()).await);
    let their_policies: Api<ReputationPolicy> = Api::namespaced(tenant, &victim.ns);
    forbidden(
        their_policies
            .create(
                &Default::default(),
                &serde_json::from_value(json!({
                    "apiVersion": "ses.reputation.io/v1alpha1",
                    "kind": "ReputationPolicy",
                    "metadata": {"name": "pause-them"},
                    "spec": {"selector": {}, "actions": {"pauseSending": true}},
                }))
                .expect("policy"),
            )
            .await,
    );

    assert_eq!(
        Emulator.writes_to(&resource).await,
        before,
        "nothing written to the victim's set"
    );
    wait_set_ready(&victim.api(), "newsletter").await;
}

/// Tenant B names tenant A's operator-made topic in `sns.topicArn`: Stalled
/// `TopicNotAllowed` (B's events would reach A's subscribers); once B's
/// SesAccount allows that topic, Stalled `TopicPolicyDeniesSes` (A's topic
/// policy admits A's set only). A topic made for B's own namespace is fine.
#[tokio::test(flavor = "multi_thread")]
async fn a_destination_may_not_name_another_tenants_topic_unless_the_account_allows_it() {
    let a = World::new("tenant-topic-a").await;
    let b = World::new("tenant-topic-b").await;
    let (a_sets, a_dests): (Api<ConfigurationSet>, Api<EventDestination>) = (a.api(), a.api());
    apply_json(&a_sets, cs_object("orders", json!({"name": unique("a-orders")}))).await;
    wait_set_ready(&a_sets, "orders").await;
    let owned = json!({
        "apiVersion": "ses.reputation.io/v1alpha1", "kind": "EventDestination",
        "metadata": {"name": "bounces"},
        "spec": {"configurationSetRef": {"name": "orders"}, "sns": {"topic": {"name": unique("a-bounces")}}},
    });
    apply_json(&a_dests, owned).await;
    let ed = crate::support::wait_ready(&a_dests, "bounces", crate::support::ed_status).await;
    let topic = ed.status.and_then(|s| s.topic_arn).expect("A's topic");

    let (b_sets, b_dests): (Api<ConfigurationSet>, Api<EventDestination>) = (b.api(), b.api());
    apply_json(&b_sets, cs_object("orders", json!({"name": unique("b-orders")}))).await;
    wait_set_ready(&b_sets, "orders").await;
    let borrowed = json!({
        "apiVersion": "ses.reputation.io/v1alpha1", "kind": "EventDestination",
        "metadata": {"name": "borrowed"},
        "spec": {"configurationSetRef": {"name": "orders"}, "sns": {"topicArn": topic}},
    });
    apply_json(&b_dests, borrowed).await;
    let message = crate::support::ed_stalled(&b_dests, "borrowed", "TopicNotAllowed").await;
    assert!(message.contains("allowedTopicArns"), "{message}");
    let b_set = b_sets.get("orders").await.expect("B's set");
    let b_set_name = b_set.status.and_then(|s| s.aws_name).expect("aws name");
    let ses = ses_client().await;
    let destinations = ses
        .get_configuration_set_event_destinations()
        .configuration_set_name(&b_set_name)
        .send()
        .await
        .expect("B's destinations");
    assert!(
        destinations.event_destinations().iter().all(|d| d.name() != "borrowed"),
        "a destination to A's topic was made on B's set"
    );

    // B's own operator-made topic may be named by B.
    let own = json!({
        "apiVersion": "ses.reputation.io/v1alpha1", "kind": "EventDestination",
        "metadata": {"name": "own"},
        "spec": {"configurationSetRef": {"name": "orders"}, "sns": {"topic": {"name": unique("b-own")}}},
    });
    apply_json(&b_dests, own).await;
    let own = crate::support::wait_ready(&b_dests, "own", crate::support::ed_status).await;
    let own_topic = own.status.and_then(|s| s.topic_arn).expect("B's topic");
    let reuse = json!({
        "apiVersion": "ses.reputation.io/v1alpha1", "kind": "EventDestination",
        "metadata": {"name": "reuse"},
        "spec": {"configurationSetRef": {"name": "orders"}, "eventTypes": ["DELIVERY"], "sns": {"topicArn": own_topic}},
    });
    apply_json(&b_dests, reuse).await;
    crate::support::wait_ready(&b_dests, "reuse", crate::support::ed_status).await;

    // The account allows A's topic for B: B may name it now, but A's topic
    // policy lets only A's set publish, so SNS would drop B's events: still
    // Stalled, and honest about why.
    allow_topic(&b, &topic).await;
    let message = crate::support::ed_stalled(&b_dests, "borrowed", "TopicPolicyDeniesSes").await;
    assert!(message.contains("does not let SES publish"), "{message}");
    assert!(!message.contains("a-orders"), "names A's set: {message}");
}
