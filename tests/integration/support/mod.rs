//! Test support: the real kube-apiserver and AWS emulator started by
//! `tools/ground.sh`, a fresh namespace per test, the project's CRDs, and an
//! in-process operator scoped to that namespace.

#![allow(dead_code)]

pub mod argocd;
pub mod emulator;
pub mod identities;
pub mod kstatus;
pub mod live;
pub mod objects;
pub mod proxy;
pub mod replica;

pub use objects::{
    cloudwatch_destination, cs_object, ed_stalled, ed_status, ses_client, set_status, wait_condition, wait_set_ready,
};

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use ses_reputation_operator::aws::AwsSettings;
use ses_reputation_operator::config::{ConfigMapName, ReputationSettings, Settings};
use ses_reputation_operator::reconcile::Context;

/// A client for the ground's apiserver (KUBECONFIG set by tools/ground.sh).
pub async fn client() -> Client {
    assert!(
        std::env::var_os("KUBECONFIG").is_some() && std::env::var_os("SRO_AWS_ENDPOINT").is_some(),
        "run the tests through `make test` (tools/ground.sh run -- cargo test)"
    );
    Client::try_default().await.expect("kube client from KUBECONFIG")
}

/// Applies the project's CRDs (server-side apply: idempotent, safe from
/// parallel tests) and waits until they are Established.
pub async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in ses_reputation_operator::api::crds() {
        let name = crd.name_any();
        crds.patch(
            &name,
            &PatchParams::apply("integration-tests").force(),
            &Patch::Apply(&crd),
        )
        .await
        .expect("apply CRD");
        tokio::time::timeout(
            Duration::from_secs(30),
            await_condition(crds.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .expect("CRD established in time")
        .expect("watch CRD");
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique, DNS-safe name for this test run.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id() % 100_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh namespace (namespaces never finish deleting here: no
/// controller-manager runs, so each test gets its own).
pub async fn namespace(client: &Client, prefix: &str, labels: &[(&str, &str)]) -> String {
    let name = unique(prefix);
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": name,
            "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<std::collections::BTreeMap<_, _>>(),
        }
    }))
    .expect("namespace object");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    name
}

/// Runs a `tools/*.sh` that builds a helper binary into the cache (once,
/// keyed by its sources; a lock serialises concurrent first runs) and
/// returns the path it prints.
pub fn cached_tool(script: &str) -> String {
    let script = format!("{}/tools/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(out.status.success(), "{script} failed");
    String::from_utf8(out.stdout).expect("utf-8 path").trim().to_string()
}

/// The ConfigMap (in the test's namespace) the operator checkpoints its
/// live windows in, as the chart's default does in its own namespace.
pub const LIVE_CHECKPOINT: &str = "ses-reputation-operator-live";

/// One test's world: namespace, SesAccount and a running operator.
pub struct World {
    pub client: Client,
    pub ns: String,
    pub account: String,
    pub ctx: Arc<Context>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

pub struct WorldOptions {
    pub region: &'static str,
    pub drift: Duration,
    pub ses_rps: f64,
    pub allowed_namespaces: Option<serde_json::Value>,
    pub start_operator: bool,
    /// How often the operator reads rates from CloudWatch.
    pub rate_interval: Duration,
    /// Share of the SES rate drift checks may use.
    pub drift_share: f64,
    /// How long objects wait for a missing SesAccount.
    pub account_grace: Duration,
}

impl Default for WorldOptions {
    fn default() -> Self {
        Self {
            region: "us-east-1",
            drift: Duration::from_secs(300),
            ses_rps: 50.0,
            allowed_namespaces: None,
            start_operator: true,
            rate_interval: Duration::from_secs(30),
            drift_share: 0.5,
            account_grace: Duration::from_secs(60),
        }
    }
}

impl World {
    pub async fn new(prefix: &str) -> Self {
        Self::with(prefix, WorldOptions::default()).await
    }

    pub async fn with(prefix: &str, opts: WorldOptions) -> Self {
        Self::build(prefix, opts, None).await
    }

    /// Like [`World::with`], but the operator talks to the apiserver through
    /// `operator_client` (for example one impersonating the chart's
    /// ServiceAccount); setup and `World::client` stay the test's admin.
    pub async fn with_client(prefix: &str, opts: WorldOptions, operator_client: Client) -> Self {
        Self::build(prefix, opts, Some(operator_client)).await
    }

    async fn build(prefix: &str, opts: WorldOptions, operator_client: Option<Client>) -> Self {
        let client = client().await;
        install_crds(&client).await;
        let ns = namespace(&client, prefix, &[("team", prefix)]).await;
        let account = format!("acct-{ns}");
        let mut spec = serde_json::json!({"region": opts.region});
        if let Some(sel) = &opts.allowed_namespaces {
            spec["allowedNamespaces"] = sel.clone();
        }
        apply_json::<ses_reputation_operator::api::SesAccount>(
            &Api::all(client.clone()),
            serde_json::json!({
                "apiVersion": "ses.reputation.io/v1alpha1",
                "kind": "SesAccount",
                "metadata": {"name": account, "labels": {"test": ns}},
                "spec": spec,
            }),
        )
        .await;
        let settings = Settings {
            default_account: account.clone(),
            drift_interval: opts.drift,
            account_grace: opts.account_grace,
            namespace: Some(ns.clone()),
            account_selector: Some(format!("test={ns}")),
            cluster_name: "test".into(),
            previous_cluster_names: Vec::new(),
            aws: AwsSettings {
                ses_calls_per_second: opts.ses_rps,
                endpoint_url: Some(emulator::endpoint()),
                drift_share: opts.drift_share,
            },
            reputation: ReputationSettings {
                interval: opts.rate_interval,
                findings_interval: opts.rate_interval,
                ..Default::default()
            },
            concurrency: 8,
            live_checkpoint: Some(ConfigMapName {
                namespace: ns.clone(),
                name: LIVE_CHECKPOINT.into(),
            }),
        };
        // The SDK's default chain reads these; the ground script sets them too.
        let ctx = Context::new(operator_client.unwrap_or_else(|| client.clone()), settings).await;
        let mut world = World {
            client,
            ns,
            account,
            ctx,
            stop: None,
            task: None,
        };
        if opts.start_operator {
            world.start();
        }
        world
    }

    /// Starts the in-process operator for this namespace.
    pub fn start(&mut self) {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let ctx = self.ctx.clone();
        self.task = Some(tokio::spawn(ses_reputation_operator::app::run_with(ctx, async move {
            let _ = rx.await;
        })));
        self.stop = Some(tx);
    }

    /// Stops the operator (graceful: in-flight reconciles finish).
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
    }

    /// Stops the operator and starts a new one (a restart or a failover:
    /// empty caches, empty in-memory state), with the same settings.
    pub async fn restart(&mut self) {
        self.restart_with(|_| {}).await;
    }

    /// [`World::restart`] with changed settings (flags).
    pub async fn restart_with(&mut self, change: impl FnOnce(&mut Settings)) {
        self.stop().await;
        let mut settings = self.ctx.settings.clone();
        change(&mut settings);
        self.ctx = Context::new(self.client.clone(), settings).await;
        self.start();
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Successful AWS calls of one `service:Operation` made by this operator.
    pub fn calls(&self, operation: &str) -> u64 {
        self.ctx.aws.counter().ok(operation)
    }

    pub fn all_calls(&self) -> std::collections::BTreeMap<String, u64> {
        self.ctx.aws.counter().snapshot()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The operator binary set up for a world: its namespace, account and the
/// emulator; callers add leader-election and HTTP flags.
pub fn operator_command(w: &World) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ses-reputation-operator"));
    cmd.args(["run", "--namespace", &w.ns, "--default-account", &w.account])
        .args([
            "--account-selector",
            &format!("test={}", w.ns),
            "--cluster-name",
            "test",
        ])
        .args(["--ses-calls-per-second", "20"])
        .env("AWS_ENDPOINT_URL", emulator::endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env(
            "RUST_LOG",
            std::env::var("SRO_OPERATOR_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::inherit());
    cmd
}

/// A tenant of `ns`: the ServiceAccount `tenant` there, bound to a Role
/// that may edit `ses.reputation.io` objects in that namespace only (what a
/// platform team gives an application team), and a client that acts as it
/// (the ground's admin is in system:masters, which may impersonate).
/// Returns once the apiserver's authorizer honours the binding.
pub async fn tenant_client(admin: &Client, ns: &str) -> Client {
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    apply_json::<ServiceAccount>(
        &Api::namespaced(admin.clone(), ns),
        serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "tenant"}}),
    )
    .await;
    apply_json::<Role>(
        &Api::namespaced(admin.clone(), ns),
        serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "ses-editor"},
            "rules": [{
                "apiGroups": ["ses.reputation.io"],
                "resources": ["configurationsets", "eventdestinations", "reputationpolicies", "emailidentities"],
                "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
            }],
        }),
    )
    .await;
    apply_json::<RoleBinding>(
        &Api::namespaced(admin.clone(), ns),
        serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "tenant-ses-editor"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ses-editor"},
            "subjects": [{"kind": "ServiceAccount", "name": "tenant", "namespace": ns}],
        }),
    )
    .await;
    let mut config = kube::Config::infer().await.expect("kube config");
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{ns}:tenant"));
    let tenant = Client::try_from(config).expect("impersonating client");
    let sets: Api<ses_reputation_operator::api::ConfigurationSet> = Api::namespaced(tenant.clone(), ns);
    eventually(
        "the tenant's RoleBinding in effect",
        Duration::from_secs(10),
        || async {
            sets.list(&Default::default())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        },
    )
    .await;
    tenant
}

/// Server-side applies a JSON object as the test user.
pub async fn apply_json<K>(api: &Api<K>, obj: serde_json::Value) -> K
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let name = obj["metadata"]["name"].as_str().expect("metadata.name").to_string();
    api.patch(
        &name,
        &PatchParams::apply("integration-tests").force(),
        &Patch::Apply(&obj),
    )
    .await
    .unwrap_or_else(|e| panic!("apply {name}: {e}"))
}

/// Polls until `check` returns Some, or panics after `timeout` with the
/// last state seen.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match check().await {
            Ok(v) => return v,
            Err(state) => state,
        };
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}; last state: {last}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The status of a condition (`True`/`False`/`Unknown`) and its reason.
pub fn condition(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    type_: &str,
) -> Option<(String, String, String)> {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// (observedGeneration, conditions) of an object's status.
pub type StatusView = (
    Option<i64>,
    Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
);

/// Waits until an object has Ready=True for its current generation;
/// `status_of` extracts (observedGeneration, conditions).
pub async fn wait_ready<K>(api: &Api<K>, name: &str, status_of: fn(&K) -> Option<StatusView>) -> K
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    eventually(&format!("{name} Ready"), Duration::from_secs(60), || async {
        let obj = api.get(name).await.map_err(|e| e.to_string())?;
        let generation = obj.meta().generation;
        match status_of(&obj) {
            Some((observed, conds))
                if observed == generation && condition(&conds, "Ready").is_some_and(|c| c.0 == "True") =>
            {
                Ok(obj)
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

/// Waits for an Event with `reason` about the object `name` in `ns`.
pub async fn wait_event(client: &Client, ns: &str, name: &str, reason: &str) -> k8s_openapi::api::core::v1::Event {
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), ns);
    eventually(
        &format!("{reason} event for {name}"),
        Duration::from_secs(30),
        || async {
            let list = events.list(&Default::default()).await.map_err(|e| e.to_string())?;
            list.items
                .into_iter()
                .find(|e| e.reason.as_deref() == Some(reason) && e.involved_object.name.as_deref() == Some(name))
                .ok_or_else(|| format!("no {reason} yet"))
        },
    )
    .await
}
