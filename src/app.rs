//! The wiring of the process once it leads: the watches that fill the
//! index, one controller per kind with the relations that trigger it, the
//! rate reader and the event-stream consumer, readiness, and the metrics
//! sources; all stop together on `shutdown`.

use std::future::Future;
use std::sync::Arc;

use futures::{StreamExt, future};
use kube::Client;
use kube::runtime::Controller;
use kube::runtime::controller as kube_controller;
use kube::runtime::reflector::Store;

use crate::config::Settings;
use crate::index::fanout::{Fanout, Fed};
use crate::index::{Index, relations};
use crate::ops::metrics::{ConditionCounts, ObjectSource, SchedulerGauges, SchedulerSource};
use crate::reconcile::kinds::{account, configuration_set, email_identity, event_destination, reputation_policy};
use crate::reconcile::{Context, Error, Managed, ObjectStatus, Passed, error_policy, instrumented};

/// Runs every controller until `shutdown` resolves; in-flight reconciles
/// finish first.
pub async fn run(client: Client, settings: Settings, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let ctx = Context::new(client, settings).await;
    run_with(ctx, shutdown).await;
}

/// [`run`] with a context built by the caller (tests read its AWS call
/// counters). Every kind is watched once; the controllers share those
/// watches and the index.
pub async fn run_with(ctx: Arc<Context>, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let Some(fanout) = ctx.take_fanout() else {
        tracing::error!("controllers already ran with this context");
        return;
    };
    let shutdown = future::FutureExt::shared(Box::pin(shutdown));
    let index = ctx.caches.clone();
    // Bounded loosely (in-flight futures, memory); the passes that write
    // are bounded fairly in `drive`, and drift checks that would wait for
    // SES are requeued (`Context::drift_deferred`) rather than hold a slot:
    // kube's runner picks held objects in hash order, so slots held for
    // long starve some objects.
    let config = kube_controller::Config::default().concurrency(ctx.settings.concurrency.saturating_mul(4));
    let sets = relations::set_watches(controller_for(&fanout, index.sets.clone(), &config), &fanout, &index)
        .reconcile_on(ctx.reputation.set_triggers());
    let destinations = relations::destination_watches(
        controller_for(&fanout, index.destinations.clone(), &config),
        &fanout,
        &index,
    );
    let policies = relations::policy_watches(
        controller_for(&fanout, index.policies.clone(), &config),
        &fanout,
        &index,
    );
    let identities = relations::identity_watches(
        controller_for(&fanout, index.identities.clone(), &config),
        &fanout,
        &index,
    )
    .reconcile_on(ctx.findings.identity_triggers());
    let accounts = controller_for(&fanout, index.accounts.clone(), &config)
        .reconcile_on(ctx.reputation.account_triggers())
        .reconcile_on(ctx.findings.account_triggers());

    let watches = fanout.run(ctx.client.clone(), &ctx.settings, &ctx.health, &ctx.metrics);
    let rate_reader = crate::loops::rates::run_rate_reader(ctx.shared(), Box::pin(shutdown.clone()));
    // Leader only, like every AWS call: it runs with the controllers.
    let consumer = crate::loops::stream_consumer::run_consumer(ctx.shared(), Box::pin(shutdown.clone()));
    let findings_reader = crate::loops::findings::run_findings_reader(ctx.shared(), Box::pin(shutdown.clone()));
    install_metric_sources(&ctx, &index);
    let closer = async {
        // SES calls waiting for a slot are cancelled, so the graceful
        // drain only waits for calls already in flight.
        shutdown.clone().await;
        ctx.aws.close();
    };
    tokio::join!(
        drain(sets, "ConfigurationSet", configuration_set::reconcile, &ctx, &shutdown),
        drain(
            destinations,
            "EventDestination",
            event_destination::reconcile,
            &ctx,
            &shutdown
        ),
        drain(identities, "EmailIdentity", email_identity::reconcile, &ctx, &shutdown),
        drain(accounts, "SesAccount", account::reconcile, &ctx, &shutdown),
        drain(
            policies,
            "ReputationPolicy",
            reputation_policy::reconcile,
            &ctx,
            &shutdown
        ),
        rate_reader,
        consumer,
        findings_reader,
        until(readiness(&ctx, &index), &shutdown),
        until(watches, &shutdown),
        closer,
    );
    ctx.health.set_synced(false);
    ctx.metrics.set_object_source(None);
    ctx.metrics.set_scheduler_source(None);
}

/// A kind's controller on its shared watch.
fn controller_for<K: Fed>(fanout: &Fanout, store: Store<K>, config: &kube_controller::Config) -> Controller<K> {
    Controller::for_shared_stream(fanout.subscribe(), store).with_config(config.clone())
}

/// Runs one kind's controller until shutdown, every pass instrumented.
async fn drain<K, F, Fut, S>(
    controller: Controller<K>,
    kind: &'static str,
    reconcile: F,
    ctx: &Arc<Context>,
    shutdown: &S,
) where
    K: Managed + Fed,
    F: Fn(Arc<K>, Arc<Context>) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = Result<Passed, Error>> + Send + 'static,
    S: Future<Output = ()> + Clone + Send + Sync + 'static,
{
    controller
        .graceful_shutdown_on(shutdown.clone())
        .run(
            move |obj, ctx| instrumented(kind, reconcile, obj, ctx),
            error_policy::<K>,
            ctx.clone(),
        )
        .for_each(|_: Result<_, _>| future::ready(()))
        .await;
}

async fn until(work: impl Future<Output = ()>, shutdown: &(impl Future<Output = ()> + Clone)) {
    tokio::select! {
        _ = work => {},
        _ = shutdown.clone() => {},
    }
}

/// Ready (for /readyz) once every store has its first full list.
async fn readiness(ctx: &Context, index: &Index) {
    if index.record_synced().await {
        tracing::info!("controller caches synced");
        ctx.health.set_synced(true);
    }
}

/// What `/metrics` reads on each scrape: objects per kind by condition,
/// and each SES scheduler's rate and queue.
fn install_metric_sources(ctx: &Arc<Context>, index: &Index) {
    let counted = index.clone();
    let objects: ObjectSource = Arc::new(move || {
        vec![
            ("ConfigurationSet", count_conditions(&counted.sets)),
            ("EventDestination", count_conditions(&counted.destinations)),
            ("SesAccount", count_conditions(&counted.accounts)),
            ("ReputationPolicy", count_conditions(&counted.policies)),
            ("EmailIdentity", count_conditions(&counted.identities)),
        ]
    });
    ctx.metrics.set_object_source(Some(objects));
    let registry_ctx = ctx.clone();
    let schedulers: SchedulerSource = Arc::new(move || {
        registry_ctx
            .aws
            .schedulers()
            .into_iter()
            .map(|((account, region), snapshot)| {
                let gauges = SchedulerGauges {
                    rate: snapshot.rate,
                    waiting: snapshot.waiting,
                };
                (account, region, gauges)
            })
            .collect()
    });
    ctx.metrics.set_scheduler_source(Some(schedulers));
}

/// Counts the cached objects of one kind by their Ready/Stalled conditions.
fn count_conditions<K: Managed>(store: &Store<K>) -> ConditionCounts {
    let mut counts = ConditionCounts::default();
    for obj in store.state() {
        counts.add(obj.status().map(ObjectStatus::conditions).unwrap_or_default());
    }
    counts
}
