//! The Helm chart, deploy/ and the IAM policy: lint, render, server-side
//! validation (including Pod Security "restricted"), a real `helm install`,
//! and proof that the chart's RBAC is enough for the operator and no more.
//! helm and kubectl run as child processes against the ground's apiserver
//! (HELM and KUBECONFIG come from tools/ground.sh).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use ses_reputation_operator::api::ConfigurationSet;

use crate::support::{self, World, WorldOptions, apply_json, eventually, unique};
use crate::support::{cs_object, wait_set_ready};

const CHART_NAME: &str = "ses-reputation-operator";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chart() -> PathBuf {
    root().join("charts").join(CHART_NAME)
}

fn all_on_values() -> PathBuf {
    chart().join("ci/all-on-values.yaml")
}

fn helm() -> String {
    std::env::var("HELM").expect("HELM is not set: run through `tools/ground.sh run -- cargo test --test integration`")
}

/// Runs a command to completion, feeding `stdin`; panics with its output
/// unless it succeeds. Returns (stdout, stderr).
fn run(cmd: &mut Command, stdin: Option<&str>) -> (String, String) {
    let (ok, out, err) = try_run(cmd, stdin);
    assert!(ok, "{cmd:?} failed\n--- stdout\n{out}\n--- stderr\n{err}");
    (out, err)
}

fn try_run(cmd: &mut Command, stdin: Option<&str>) -> (bool, String, String) {
    let mut child = cmd
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait for child");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `helm template` for `namespace` with extra arguments (values files, --show-only).
fn template(release: &str, namespace: &str, extra: &[&str]) -> String {
    let mut cmd = Command::new(helm());
    cmd.args(["template", release])
        .arg(chart())
        .args(["--namespace", namespace])
        .args(extra);
    run(&mut cmd, None).0
}

/// `kubectl apply --dry-run=server`: the apiserver runs admission and
/// validation without storing anything. Returns stderr (warnings).
fn server_dry_run(namespace: &str, yaml: &str) -> String {
    run(
        Command::new("kubectl").args(["apply", "--dry-run=server", "--namespace", namespace, "-f", "-"]),
        Some(yaml),
    )
    .1
}

fn helm_install(release: &str, namespace: &str) {
    helm_install_with(release, namespace, &[]);
}

fn helm_install_with(release: &str, namespace: &str, extra: &[&str]) {
    run(
        Command::new(helm())
            .args(["install", release])
            .arg(chart())
            .args(["--namespace", namespace])
            .args(extra),
        None,
    );
}

/// The chart's full name for a release (see `sro.fullname`).
fn fullname(release: &str) -> String {
    if release.contains(CHART_NAME) {
        release.to_string()
    } else {
        format!("{release}-{CHART_NAME}")
    }
}

/// A client that acts as the chart's ServiceAccount (the ground's admin
/// user is in system:masters, which may impersonate).
async fn client_as_service_account(namespace: &str, name: &str) -> Client {
    let mut config = kube::Config::infer().await.expect("kube config");
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{namespace}:{name}"));
    Client::try_from(config).expect("impersonating client")
}

fn forbidden<T>(result: Result<T, kube::Error>) -> bool {
    matches!(result, Err(kube::Error::Api(ref s)) if s.code == 403)
}

#[test]
fn helm_lint_passes_with_default_and_all_on_values() {
    run(Command::new(helm()).args(["lint", "--strict"]).arg(chart()), None);
    run(
        Command::new(helm())
            .args(["lint", "--strict"])
            .arg(chart())
            .arg("--values")
            .arg(all_on_values()),
        None,
    );
}

#[test]
fn values_schema_rejects_unknown_keys() {
    // additionalProperties: false catches typos such as `replicas:` that
    // Helm would otherwise ignore silently.
    let (ok, _, err) = try_run(
        Command::new(helm())
            .args(["template", "x"])
            .arg(chart())
            .args(["--set", "operatr.clusterName=x"]),
        None,
    );
    assert!(
        !ok && err.contains("operatr"),
        "a misspelt top-level key must fail schema validation; stderr: {err}"
    );
}

#[test]
fn single_replica_without_leader_election_renders_and_two_do_not() {
    template(
        "x",
        "default",
        &[
            "--set",
            "replicaCount=1",
            "--set",
            "operator.leaderElection.enabled=false",
        ],
    );
    let (ok, _, err) = try_run(
        Command::new(helm())
            .args(["template", "x"])
            .arg(chart())
            .args(["--set", "operator.leaderElection.enabled=false"]),
        None,
    );
    assert!(
        !ok && err.contains("leaderElection"),
        "two replicas without leader election must be refused; stderr: {err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn default_render_is_accepted_by_the_apiserver() {
    let client = support::client().await;
    let ns = support::namespace(&client, "chart-default", &[]).await;
    let yaml = template(&unique("sro"), &ns, &[]);
    server_dry_run(&ns, &yaml);
}

#[tokio::test(flavor = "multi_thread")]
async fn all_on_render_is_accepted_by_the_apiserver() {
    let client = support::client().await;
    // Stand-ins for the Prometheus Operator CRDs (server-side apply:
    // idempotent across runs and parallel tests).
    let fixture = root().join("tests/integration/fixtures/monitoring-crds.yaml");
    run(
        Command::new("kubectl")
            .args(["apply", "--server-side", "--force-conflicts", "-f"])
            .arg(&fixture),
        None,
    );
    run(
        Command::new("kubectl").args([
            "wait",
            "--for=condition=Established",
            "--timeout=30s",
            "crd/servicemonitors.monitoring.coreos.com",
            "crd/prometheusrules.monitoring.coreos.com",
        ]),
        None,
    );
    let ns = support::namespace(&client, "chart-all-on", &[]).await;
    let yaml = template(
        &unique("sro"),
        &ns,
        &["--values", all_on_values().to_str().expect("utf-8 path")],
    );
    for kind in [
        "ServiceMonitor",
        "PrometheusRule",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Role",
        "ClusterRole",
        // The Grafana dashboard.
        "ConfigMap",
    ] {
        assert!(
            yaml.contains(&format!("\nkind: {kind}\n")),
            "all-on values must render a {kind}"
        );
    }
    server_dry_run(&ns, &yaml);
}

#[tokio::test(flavor = "multi_thread")]
async fn pod_meets_the_restricted_pod_security_standard() {
    let client = support::client().await;
    let ns = support::namespace(
        &client,
        "chart-psa",
        &[
            ("pod-security.kubernetes.io/enforce", "restricted"),
            ("pod-security.kubernetes.io/warn", "restricted"),
        ],
    )
    .await;
    let yaml = template(&unique("sro"), &ns, &["--show-only", "templates/deployment.yaml"]);

    // Admission only warns for Deployments; the warning is the signal.
    let warnings = server_dry_run(&ns, &yaml);
    assert!(
        !warnings.contains("PodSecurity"),
        "Deployment draws a Pod Security warning: {warnings}"
    );

    // Pods are where "enforce" rejects: build one from the pod template.
    let deployment: Deployment = serde_yaml::from_str(&yaml).expect("rendered Deployment");
    let template = deployment.spec.expect("spec").template;
    let pod_of = |spec| -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "operator", "labels": template.metadata.as_ref().and_then(|m| m.labels.clone())},
            "spec": spec,
        }))
        .expect("pod")
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let spec = template.spec.clone().expect("pod spec");
    pods.create(&dry, &pod_of(serde_json::to_value(&spec).expect("json")))
        .await
        .unwrap_or_else(|e| {
            panic!("the chart's pod is rejected in a namespace enforcing the restricted Pod Security Standard: {e}")
        });

    // Control: the same pod without its security contexts must be refused,
    // or the check above proves nothing.
    let mut bare = spec;
    bare.security_context = None;
    for c in &mut bare.containers {
        c.security_context = None;
    }
    let err = pods
        .create(&dry, &pod_of(serde_json::to_value(&bare).expect("json")))
        .await;
    assert!(
        forbidden(err),
        "PodSecurity admission did not reject a pod without security contexts: is it enabled?"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn helm_install_creates_crds_rbac_service_account_and_deployment() {
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "chart-install", &[]).await;
    let release = unique("sro");
    helm_install(&release, &ns);
    let name = fullname(&release);

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in ses_reputation_operator::api::crds() {
        crds.get(&crd.name_any())
            .await
            .unwrap_or_else(|e| panic!("CRD {}: {e}", crd.name_any()));
    }
    let cluster_role = Api::<ClusterRole>::all(client.clone())
        .get(&name)
        .await
        .expect("ClusterRole");
    let rules = cluster_role.rules.unwrap_or_default();
    assert!(
        rules
            .iter()
            .all(|r| !r.resources.iter().flatten().any(|res| res == "secrets" || res == "*")),
        "the ClusterRole must not grant Secrets or wildcards: {rules:?}"
    );
    let binding = Api::<ClusterRoleBinding>::all(client.clone())
        .get(&name)
        .await
        .expect("ClusterRoleBinding");
    let subject = &binding.subjects.expect("subjects")[0];
    assert_eq!(
        (subject.name.as_str(), subject.namespace.as_deref()),
        (name.as_str(), Some(ns.as_str()))
    );
    Api::<Role>::namespaced(client.clone(), &ns)
        .get(&format!("{name}-leader-election"))
        .await
        .expect("leader-election Role");
    Api::<RoleBinding>::namespaced(client.clone(), &ns)
        .get(&format!("{name}-leader-election"))
        .await
        .expect("leader-election RoleBinding");
    Api::<ServiceAccount>::namespaced(client.clone(), &ns)
        .get(&name)
        .await
        .expect("ServiceAccount");
    Api::<Service>::namespaced(client.clone(), &ns)
        .get(&name)
        .await
        .expect("Service");
    Api::<PodDisruptionBudget>::namespaced(client.clone(), &ns)
        .get(&name)
        .await
        .expect("PodDisruptionBudget");
    let deployment = Api::<Deployment>::namespaced(client.clone(), &ns)
        .get(&name)
        .await
        .expect("Deployment");
    let spec = deployment.spec.expect("spec");
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.expect("pod spec");
    assert_eq!(pod.service_account_name.as_deref(), Some(name.as_str()));
    let container = &pod.containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some("ghcr.io/ses-reputation-operator/ses-reputation-operator:0.1.0")
    );
    let env: Vec<&str> = container.env.iter().flatten().map(|e| e.name.as_str()).collect();
    for var in [
        "POD_NAMESPACE",
        "SRO_DEFAULT_ACCOUNT",
        "SRO_DRIFT_BUDGET_SHARE",
        "SRO_MAX_CONCURRENT_RECONCILES",
        "SRO_LEADER_ELECTION",
        "SRO_LEASE_NAME",
        "SRO_METRICS_ADDR",
    ] {
        assert!(env.contains(&var), "{var} missing from the operator's env: {env:?}");
    }
    // By default the cluster identity is derived (kube-system UID), not set.
    assert!(!env.contains(&"SRO_CLUSTER_NAME"), "{env:?}");
    // No kubelet runs on the ground, so no pod ever starts; that is expected.
}

#[tokio::test(flavor = "multi_thread")]
async fn chart_rbac_lets_the_operator_work_and_denies_secrets() {
    let admin = support::client().await;
    support::install_crds(&admin).await;
    let release_ns = support::namespace(&admin, "chart-rbac", &[]).await;
    let release = unique("sro");
    helm_install(&release, &release_ns);
    let sa = fullname(&release);
    let operator = client_as_service_account(&release_ns, &sa).await;

    // RBAC is evaluated per request, but give the binding's creation a
    // moment to reach the authorizer's cache.
    eventually(
        "the chart's ClusterRoleBinding to take effect",
        Duration::from_secs(10),
        || async {
            Api::<ConfigurationSet>::all(operator.clone())
                .list(&ListParams::default().limit(1))
                .await
                .map_err(|e| e.to_string())
        },
    )
    .await;

    assert!(
        forbidden(Api::<Secret>::all(operator.clone()).list(&ListParams::default()).await),
        "Secrets must be forbidden cluster-wide"
    );
    assert!(
        forbidden(
            Api::<Secret>::namespaced(operator.clone(), &release_ns)
                .list(&ListParams::default())
                .await
        ),
        "Secrets must be forbidden in the release namespace"
    );
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let cs: ConfigurationSet = serde_json::from_value(cs_object("not-mine", json!({}))).expect("cs");
    assert!(
        forbidden(
            Api::<ConfigurationSet>::namespaced(operator.clone(), &release_ns)
                .create(&dry, &cs)
                .await
        ),
        "the operator must not create ConfigurationSets: users do"
    );
    let lease: Lease = serde_json::from_value(json!({"metadata": {"name": sa}})).expect("lease");
    Api::<Lease>::namespaced(operator.clone(), &release_ns)
        .create(&dry, &lease)
        .await
        .expect("create its Lease in the release namespace");
    assert!(
        forbidden(
            Api::<Lease>::namespaced(operator.clone(), "default")
                .create(&dry, &lease)
                .await
        ),
        "Leases outside the release namespace must be forbidden"
    );

    // The live-window checkpoint: the one ConfigMap the chart names, made
    // and read back the way the leader does (server-side apply), and no
    // other ConfigMap.
    let configmaps = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(operator.clone(), &release_ns);
    let checkpoint = |name: String| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"windows.json": "{}"}});
    let apply = kube::api::PatchParams::apply("ses-reputation-operator").force();
    let live = format!("{sa}-live");
    configmaps
        .patch(&live, &apply, &kube::api::Patch::Apply(checkpoint(live.clone())))
        .await
        .expect("apply the live checkpoint ConfigMap");
    configmaps.get(&live).await.expect("read it back");
    assert!(
        forbidden(
            configmaps
                .patch(
                    "someone-elses",
                    &apply,
                    &kube::api::Patch::Apply(checkpoint("someone-elses".into()))
                )
                .await
        ),
        "other ConfigMaps must be forbidden"
    );

    // The in-process operator, with only the chart's permissions, takes a
    // ConfigurationSet to Ready and through deletion (finalizer removal).
    let world = World::with_client("chart-rbac-op", WorldOptions::default(), operator).await;
    let api: Api<ConfigurationSet> = world.api();
    let name = unique("rbac");
    apply_json(&api, cs_object(&name, json!({}))).await;
    wait_set_ready(&api, &name).await;
    api.delete(&name, &DeleteParams::default()).await.expect("delete");
    eventually(&format!("{name} deleted"), Duration::from_secs(60), || async {
        match api.get_opt(&name).await {
            Ok(None) => Ok(()),
            other => Err(format!("{:?}", other.map(|o| o.map(|cs| cs.finalizers().to_vec())))),
        }
    })
    .await;
}

/// With `rbac.externalDNS`, the chart's permissions are enough for an
/// EmailIdentity that publishes its records: the identity, its status and
/// finalizer, and the DNSEndpoint it owns.
#[tokio::test(flavor = "multi_thread")]
async fn chart_rbac_with_external_dns_lets_the_operator_publish_identities() {
    use crate::support::identities::{dns_endpoint_resource, id_object, install_external_dns_crd, wait_identity};
    use kube::api::DynamicObject;
    use ses_reputation_operator::api::EmailIdentity;

    let admin = support::client().await;
    support::install_crds(&admin).await;
    install_external_dns_crd(&admin).await;
    let release_ns = support::namespace(&admin, "chart-rbac-dns", &[]).await;
    let release = unique("sro");
    helm_install_with(&release, &release_ns, &["--set", "rbac.externalDNS=true"]);
    let operator = client_as_service_account(&release_ns, &fullname(&release)).await;
    eventually(
        "the chart's ClusterRoleBinding to take effect",
        Duration::from_secs(10),
        || async {
            Api::<EmailIdentity>::all(operator.clone())
                .list(&ListParams::default().limit(1))
                .await
                .map_err(|e| e.to_string())
        },
    )
    .await;

    let world = World::with_client("chart-rbac-dns-op", WorldOptions::default(), operator).await;
    let ids: Api<EmailIdentity> = world.api();
    let endpoints: Api<DynamicObject> = Api::namespaced_with(world.client.clone(), &world.ns, &dns_endpoint_resource());
    let domain = format!("{}.example.org", unique("rbac"));
    apply_json(
        &ids,
        id_object("web", json!({"identity": domain, "dns": {"externalDNS": true}})),
    )
    .await;
    wait_identity(&ids, "web", "Reconciling", "True", "VerificationPending").await;
    eventually("DNSEndpoint written", Duration::from_secs(30), || async {
        endpoints
            .get_opt("web")
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "no DNSEndpoint".to_string())
    })
    .await;
    ids.delete("web", &DeleteParams::default()).await.expect("delete");
    eventually("identity and DNSEndpoint gone", Duration::from_secs(60), || async {
        let left = (
            ids.get_opt("web").await.map_err(|e| e.to_string())?.is_some(),
            endpoints.get_opt("web").await.map_err(|e| e.to_string())?.is_some(),
        );
        if left == (false, false) {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    })
    .await;
}

#[test]
fn deploy_manifests_match_the_chart() {
    let (generated, _) = run(
        Command::new(root().join("tools/manifests.sh")).env("HELM", helm()),
        None,
    );
    let file = root().join("deploy/manifests.yaml");
    let shipped = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
    assert!(
        shipped == generated,
        "deploy/manifests.yaml is out of date with the chart: run `make manifests`"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_examples_are_accepted_by_the_apiserver() {
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "chart-examples", &[]).await;
    let crds = Api::<CustomResourceDefinition>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("list CRDs");
    let installed: BTreeSet<String> = crds
        .items
        .iter()
        .filter(|c| c.spec.group == "ses.reputation.io")
        .map(|c| c.spec.names.kind.clone())
        .collect();
    let mut seen = BTreeSet::new();
    let mut entries: Vec<_> = std::fs::read_dir(root().join("deploy/examples"))
        .expect("deploy/examples")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let yaml = std::fs::read_to_string(&path).expect("read example");
        let kinds: BTreeSet<String> = yaml
            .split("\n---")
            .filter_map(|doc| serde_yaml::from_str::<serde_json::Value>(doc).ok())
            .filter_map(|v| v["kind"].as_str().map(str::to_string))
            .collect();
        seen.extend(kinds.iter().cloned());
        if let Some(missing) = kinds.iter().find(|k| !installed.contains(*k)) {
            // ReputationPolicy's example is written ahead of its CRD.
            eprintln!("skipping {}: no CRD for {missing} yet", path.display());
            continue;
        }
        server_dry_run(&ns, &yaml);
    }
    let expected: BTreeSet<String> = [
        "SesAccount",
        "ConfigurationSet",
        "EventDestination",
        "ReputationPolicy",
        "EmailIdentity",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert!(
        expected.is_subset(&seen),
        "deploy/examples must show every kind; found {seen:?}"
    );
}

#[test]
fn argocd_health_checks_cover_every_kind_with_one_script() {
    let file = root().join("deploy/argocd/health.yaml");
    let cm: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&file).expect("read health.yaml")).expect("YAML");
    let data = cm["data"].as_object().expect("data");
    let scripts: Vec<&str> = [
        "ConfigurationSet",
        "EventDestination",
        "SesAccount",
        "ReputationPolicy",
        "EmailIdentity",
    ]
    .iter()
    .map(|k| {
        data.get(&format!("resource.customizations.health.ses.reputation.io_{k}"))
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("no health check for {k}"))
    })
    .collect();
    assert!(
        scripts.windows(2).all(|w| w[0] == w[1]),
        "every kind should share the same script"
    );
    for needle in [
        "\"Stalled\"",
        "\"Critical\"",
        "\"PausedByPolicy\"",
        "\"Reconciling\"",
        "\"Ready\"",
        "\"Suspended\"",
        "\"Degraded\"",
    ] {
        assert!(scripts[0].contains(needle), "health script does not handle {needle}");
    }
}

/// Operation labels that name a local request-building step, not an AWS
/// API call (they label errors from the SDK's builders), so they need no
/// IAM permission.
const NOT_AWS_CALLS: &[&str] = &["sesv2:Tag", "sesv2:TrackingOptions", "sesv2:ValidationOptions"];

/// IAM actions that no label names but that AWS requires for calls the code
/// makes, with the code that triggers them.
const IMPLIED: &[(&str, &str, &str)] = &[
    // CreateTopic is called with the ownership tag; tagging on create needs
    // sns:TagResource as well.
    ("sns.rs", "sns:CreateTopic", "sns:TagResource"),
    // SesAccount.spec.roleArn: the SDK's AssumeRoleProvider calls AssumeRole.
    ("mod.rs", "AssumeRoleProvider", "sts:AssumeRole"),
    // The event stream's queue is created with the ownership tag.
    ("sqs.rs", "sqs:CreateQueue", "sqs:TagQueue"),
    // Tenants are created with the ownership tag.
    ("tenants.rs", "sesv2:CreateTenant", "ses:TagResource"),
];

/// Calls whose IAM action has another name (SQS authorizes a batch as the
/// single-message action).
const IAM_ACTION_OF: &[(&str, &str)] = &[("sqs:DeleteMessageBatch", "sqs:DeleteMessage")];

/// `"service:Operation"` string literals in a source file.
fn operation_labels(source: &str) -> BTreeSet<String> {
    let mut labels = BTreeSet::new();
    for piece in source.split('"').skip(1).step_by(2) {
        if let Some((service, op)) = piece.split_once(':')
            && ["sesv2", "sns", "sqs", "cloudwatch", "sts"].contains(&service)
            && !op.is_empty()
            && op.chars().all(|c| c.is_ascii_alphabetic())
        {
            labels.insert(piece.to_string());
        }
    }
    labels
}

#[test]
fn iam_policy_grants_exactly_the_aws_calls_the_code_makes() {
    let mut needed = BTreeSet::new();
    for entry in std::fs::read_dir(root().join("src/aws")).expect("src/aws") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("read source");
        let file = path.file_name().and_then(|f| f.to_str()).unwrap_or_default();
        for label in operation_labels(&source) {
            // Any principal may call GetCallerIdentity; IAM cannot deny it.
            if label == "sts:GetCallerIdentity" || NOT_AWS_CALLS.contains(&label.as_str()) {
                continue;
            }
            let label = IAM_ACTION_OF
                .iter()
                .find(|(call, _)| *call == label)
                .map_or(label.clone(), |(_, action)| action.to_string());
            let (service, op) = label.split_once(':').expect("label");
            needed.insert(format!("{}:{op}", if service == "sesv2" { "ses" } else { service }));
        }
        for (implied_file, trigger, action) in IMPLIED {
            if file == *implied_file && source.contains(trigger) {
                needed.insert(action.to_string());
            }
        }
    }

    let policy: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/iam-policy.json")).expect("read iam-policy.json"),
    )
    .expect("JSON");
    let mut granted = BTreeSet::new();
    for statement in policy["Statement"].as_array().expect("Statement") {
        assert_eq!(statement["Effect"], "Allow", "only Allow statements expected");
        match &statement["Action"] {
            serde_json::Value::String(a) => {
                granted.insert(a.clone());
            }
            serde_json::Value::Array(actions) => {
                granted.extend(actions.iter().map(|a| a.as_str().expect("action").to_string()))
            }
            other => panic!("unexpected Action {other}"),
        }
    }

    let missing: Vec<_> = needed.difference(&granted).collect();
    let extra: Vec<_> = granted.difference(&needed).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "deploy/iam-policy.json is out of date with src/aws/*.rs\n  missing (add): {missing:?}\n  extra (remove): {extra:?}"
    );

    iam_policy_is_scoped(&policy);
    let in_chart = std::fs::read_to_string(chart().join("files/iam-policy.json")).expect("read chart copy");
    let in_chart: serde_json::Value = serde_json::from_str(&in_chart).expect("JSON");
    assert_eq!(
        in_chart, policy,
        "charts/ses-reputation-operator/files/iam-policy.json must equal deploy/iam-policy.json (copy it)"
    );
}

/// The owner tag every operator-made set and topic carries.
const OWNER_TAG_KEY: &str = "ses.reputation.io/owner";

/// Actions AWS defines without a resource type (Service Authorization
/// Reference): they need `"Resource": "*"`.
const RESOURCELESS: &[&str] = &[
    "ses:GetAccount",
    "ses:ListRecommendations",
    "ses:ListTenants",
    "ses:PutAccountSendingAttributes",
    "ses:PutAccountSuppressionAttributes",
    "cloudwatch:GetMetricData",
];

/// Mutating SES/SNS actions without an owner-tag condition, each with the
/// reason (README.md "IAM scope" repeats them; the test checks it names each).
const UNCONDITIONED_WRITES: &[(&str, &str)] = &[
    ("ses:PutAccountSendingAttributes", "account-level, no resource type"),
    ("ses:PutAccountSuppressionAttributes", "account-level, no resource type"),
    (
        "sns:Publish",
        "notify topics the SesAccount allows need not be the operator's",
    ),
    (
        "sns:SetSubscriptionAttributes",
        "acts on a subscription ARN, not a tagged topic",
    ),
    ("sns:Unsubscribe", "acts on a subscription ARN, not a tagged topic"),
];

/// Condition keys the Service Authorization Reference documents for each
/// action the policy grants (SES v2 `ses:`, SNS `sns:`). A key an action
/// does not document is never present in its request context: a condition
/// on it would silently deny (Null/String*) or silently allow (negated).
fn documented_condition_keys(action: &str) -> &'static [&'static str] {
    const RESOURCE: &[&str] = &["aws:ResourceTag"];
    const CREATE: &[&str] = &["aws:RequestTag", "aws:TagKeys"];
    const TAG: &[&str] = &["aws:RequestTag", "aws:ResourceTag", "aws:TagKeys"];
    const UNTAG: &[&str] = &["aws:ResourceTag", "aws:TagKeys"];
    match action {
        "ses:CreateConfigurationSet" | "ses:CreateEmailIdentity" | "ses:CreateTenant" => CREATE,
        "ses:TagResource" | "sns:TagResource" | "sns:CreateTopic" => TAG,
        "ses:UntagResource" => UNTAG,
        "sns:Subscribe" => &["aws:ResourceTag", "sns:Endpoint", "sns:Protocol"],
        a if RESOURCELESS.contains(&a) || a.starts_with("sts:") => &[],
        a if a.starts_with("ses:") || a.starts_with("sns:") => RESOURCE,
        _ => &[],
    }
}

fn is_mutating(action: &str) -> bool {
    let op = action.split_once(':').map_or(action, |(_, op)| op);
    !(op.starts_with("Get") || op.starts_with("List"))
}

/// Resource and Condition of every statement: no `*` except for
/// resource-less actions, ARNs with the `${Partition}` placeholder, an
/// owner-tag condition on every SES/SNS write unless documented as an
/// exception, only condition keys AWS documents for the action, and
/// sts:AssumeRole only on listed roles.
fn iam_policy_is_scoped(policy: &serde_json::Value) {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
    for (action, _) in UNCONDITIONED_WRITES {
        assert!(
            readme.contains(&format!("`{action}`")),
            "README.md must explain why {action} has no owner-tag condition"
        );
    }
    for statement in policy["Statement"].as_array().expect("Statement") {
        let sid = statement["Sid"].as_str().unwrap_or("?");
        let actions: Vec<&str> = match &statement["Action"] {
            serde_json::Value::String(a) => vec![a.as_str()],
            v => v
                .as_array()
                .expect("Action")
                .iter()
                .map(|a| a.as_str().expect("action"))
                .collect(),
        };
        let resources: Vec<&str> = match &statement["Resource"] {
            serde_json::Value::String(r) => vec![r.as_str()],
            v => v
                .as_array()
                .unwrap_or_else(|| panic!("{sid}: Resource"))
                .iter()
                .map(|r| r.as_str().expect("resource"))
                .collect(),
        };
        assert!(statement.get("NotAction").is_none() && statement.get("NotResource").is_none());
        for resource in &resources {
            if *resource == "*" {
                let scoped: Vec<_> = actions.iter().filter(|a| !RESOURCELESS.contains(a)).collect();
                assert!(
                    scoped.is_empty(),
                    "{sid}: Resource \"*\" for {scoped:?}, which take a resource"
                );
            } else {
                assert!(
                    resource.starts_with("arn:${Partition}:"),
                    "{sid}: {resource} must start with arn:${{Partition}}: (China, GovCloud)"
                );
            }
        }
        let condition = statement.get("Condition").and_then(|c| c.as_object());
        let keys: Vec<&str> = condition
            .map(|c| {
                c.values()
                    .flat_map(|m| m.as_object().expect("condition operator").keys())
                    .map(String::as_str)
                    .collect()
            })
            .unwrap_or_default();
        let owner_tag_condition = keys.iter().any(|k| {
            *k == format!("aws:ResourceTag/{OWNER_TAG_KEY}") || *k == format!("aws:RequestTag/{OWNER_TAG_KEY}")
        });
        if owner_tag_condition {
            // The tag's value starts with the cluster: this cluster's, not any owner's.
            let pinned = condition
                .and_then(|c| c.get("StringLike"))
                .and_then(|m| m.as_object())
                .is_some_and(|m| {
                    m.iter()
                        .filter(|(k, _)| k.ends_with(OWNER_TAG_KEY))
                        .all(|(_, v)| v == "${Cluster}/*")
                });
            assert!(
                pinned,
                "{sid}: the owner-tag condition must be StringLike \"${{Cluster}}/*\""
            );
        }
        for action in &actions {
            for key in &keys {
                let base = key.split_once('/').map_or(*key, |(b, _)| b);
                assert!(
                    documented_condition_keys(action).contains(&base),
                    "{sid}: AWS documents no condition key {base} for {action}"
                );
            }
            let service_write = (action.starts_with("ses:") || action.starts_with("sns:")) && is_mutating(action);
            let excepted = UNCONDITIONED_WRITES.iter().any(|(a, _)| a == action);
            if service_write && !excepted {
                assert!(
                    owner_tag_condition,
                    "{sid}: {action} writes without a condition on the {OWNER_TAG_KEY} tag"
                );
            }
            if *action == "sts:AssumeRole" {
                assert!(
                    resources
                        .iter()
                        .all(|r| r.starts_with("arn:${Partition}:iam::") && r.contains(":role/")),
                    "{sid}: sts:AssumeRole only on the SesAccount roles, not {resources:?}"
                );
            }
        }
    }
}

/// The chart renders the policy for its `aws` values: partition, account
/// and region filled in, sts:AssumeRole on exactly the listed roles (or no
/// such statement), and otherwise the same statements as deploy/.
#[test]
fn chart_renders_the_iam_policy_for_its_aws_values() {
    let policy_of = |yaml: &str| -> serde_json::Value {
        let cm: serde_json::Value = serde_yaml::from_str(yaml).expect("ConfigMap YAML");
        assert_eq!(cm["kind"], "ConfigMap");
        serde_json::from_str(cm["data"]["policy.json"].as_str().expect("policy.json")).expect("policy JSON")
    };
    let show = ["--show-only", "templates/iam-policy.yaml"];
    let all_on = all_on_values();
    let mut args = vec!["--values", all_on.to_str().expect("utf-8 path")];
    args.extend(show);
    let rendered = template("iam", "default", &args);
    assert!(
        !rendered.contains("${"),
        "placeholders left in the rendered policy:\n{rendered}"
    );
    let policy = policy_of(&rendered);

    let source: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/iam-policy.json"))
            .expect("read iam-policy.json")
            .replace("${Partition}", "aws-us-gov")
            .replace("${Region}", "us-gov-west-1")
            .replace("${Account}", "123456789012")
            .replace("${Cluster}", "prod-eu-1"),
    )
    .expect("JSON");
    let by_sid = |p: &serde_json::Value| -> std::collections::BTreeMap<String, serde_json::Value> {
        p["Statement"]
            .as_array()
            .expect("Statement")
            .iter()
            .map(|s| (s["Sid"].as_str().expect("Sid").to_string(), s.clone()))
            .collect()
    };
    let (rendered_sids, mut source_sids) = (by_sid(&policy), by_sid(&source));
    let assume = rendered_sids
        .values()
        .find(|s| s["Action"] == json!(["sts:AssumeRole"]))
        .expect("AssumeRole statement");
    assert_eq!(
        assume["Resource"],
        json!([
            "arn:aws-us-gov:iam::210987654321:role/ses-mail",
            "arn:aws-us-gov:iam::210987654321:role/ses-billing"
        ])
    );
    let assume_sid = assume["Sid"].as_str().expect("Sid").to_string();
    source_sids.get_mut(&assume_sid).expect("same Sid in deploy/")["Resource"] = assume["Resource"].clone();
    assert_eq!(
        rendered_sids, source_sids,
        "the chart and deploy/iam-policy.json differ"
    );

    // No roles listed: no sts:AssumeRole at all.
    let rendered = template(
        "iam",
        "default",
        &[
            "--set",
            "aws.iamPolicy.render=true",
            "--set-string",
            "aws.accountId=123456789012",
            "--show-only",
            "templates/iam-policy.yaml",
        ],
    );
    let policy = policy_of(&rendered);
    assert!(
        !policy.to_string().contains("sts:AssumeRole"),
        "no assumeRoleArns must mean no sts:AssumeRole"
    );
    assert!(
        policy
            .to_string()
            .contains("arn:aws:ses:*:123456789012:configuration-set/*")
    );
    // No operator.clusterName (derived at run time): any cluster's owner tag.
    assert!(
        policy
            .to_string()
            .contains(r#""aws:ResourceTag/ses.reputation.io/owner":"*/*""#)
    );

    // Off by default; on without an account it fails instead of guessing.
    assert!(!template("iam", "default", &[]).contains("iam-policy"));
    let mut cmd = Command::new(helm());
    cmd.args(["template", "iam"])
        .arg(chart())
        .args(["--set", "aws.iamPolicy.render=true"]);
    let (ok, _, err) = try_run(&mut cmd, None);
    assert!(!ok && err.contains("aws.accountId is required"), "{err}");
}

/// Helm 4 (`HELM4` from tools/ground.sh) lints, renders and installs the
/// same chart: the chart supports both majors.
#[tokio::test(flavor = "multi_thread")]
async fn helm4_lints_renders_and_installs_the_chart() {
    let helm4 = std::env::var("HELM4").expect("HELM4 is not set: run through tools/ground.sh");
    run(Command::new(&helm4).args(["lint", "--strict"]).arg(chart()), None);
    run(
        Command::new(&helm4)
            .args(["lint", "--strict"])
            .arg(chart())
            .arg("--values")
            .arg(all_on_values()),
        None,
    );
    let client = support::client().await;
    let ns = support::namespace(&client, "chart-helm4", &[]).await;
    let release = unique("sro4");
    let (yaml, _) = run(
        Command::new(&helm4)
            .args(["template", &release])
            .arg(chart())
            .args(["--namespace", &ns]),
        None,
    );
    server_dry_run(&ns, &yaml);
    run(
        Command::new(&helm4)
            .args(["install", &release])
            .arg(chart())
            .args(["--namespace", &ns]),
        None,
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let deployment = deployments
        .get(&fullname(&release))
        .await
        .expect("Deployment installed by Helm 4");
    assert_eq!(deployment.spec.and_then(|s| s.replicas), Some(2));
}

/// Expands the `{{ $labels.NAME }}` placeholders of an alert annotation
/// the way Prometheus does for the given labels.
fn expand_labels(template: &str, labels: &[(&str, &str)]) -> String {
    labels.iter().fold(template.to_string(), |text, (name, value)| {
        text.replace(&format!("{{{{ $labels.{name} }}}}"), value)
    })
}

/// The chart's PrometheusRule, run through Prometheus's own rule tester
/// (`promtool test rules`): each alert fires after its `for` on the series
/// the operator exports; Stalled objects and objects waiting for others
/// add no reconcile errors (the operator does not count them), so they do
/// not page.
#[test]
fn prometheus_rule_alerts_fire_as_documented() {
    let release = "x";
    let namespace = "sro";
    let rendered = template(
        release,
        namespace,
        &[
            "--set",
            "prometheusRule.enabled=true",
            "--show-only",
            "templates/prometheusrule.yaml",
        ],
    );
    let rule: serde_json::Value = serde_yaml::from_str(&rendered).expect("PrometheusRule YAML");
    let groups = rule["spec"]["groups"].clone();
    let annotations = |alert: &str, labels: &[(&str, &str)]| -> serde_json::Value {
        let found = groups
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .find(|r| r["alert"] == alert)
            .unwrap_or_else(|| panic!("no alert {alert} in the chart"));
        let mut out = serde_json::Map::new();
        for (key, value) in found["annotations"].as_object().into_iter().flatten() {
            out.insert(
                key.clone(),
                json!(expand_labels(value.as_str().unwrap_or_default(), labels)),
            );
        }
        serde_json::Value::Object(out)
    };
    let job = fullname(release);
    let orders = [("namespace", "mail"), ("configuration_set", "orders")];
    let cases = json!({
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    // 0 healthy, 1 warning, 2 critical, -1 unknown.
                    {"series": "ses_reputation_level{namespace=\"mail\",configuration_set=\"orders\"}", "values": "2x40"},
                    {"series": "ses_reputation_level{namespace=\"mail\",configuration_set=\"news\"}", "values": "1x40"},
                    {"series": "ses_reputation_level{namespace=\"mail\",configuration_set=\"quiet\"}", "values": "-1x40"},
                    // Failing ConfigurationSet passes; EventDestinations only waiting or Stalled.
                    {"series": "ses_reputation_reconcile_errors_total{kind=\"ConfigurationSet\"}", "values": "0+2x40"},
                    {"series": "ses_reputation_reconcile_errors_total{kind=\"EventDestination\"}", "values": "0x40"},
                    {"series": format!("up{{job=\"{job}\",namespace=\"{namespace}\"}}"), "values": "1x40"},
                ],
                "alert_rule_test": [
                    {"eval_time": "4m", "alertname": "SesConfigurationSetReputationCritical", "exp_alerts": []},
                    {"eval_time": "6m", "alertname": "SesConfigurationSetReputationCritical", "exp_alerts": [{
                        "exp_labels": {"severity": "critical", "namespace": "mail", "configuration_set": "orders"},
                        "exp_annotations": annotations("SesConfigurationSetReputationCritical", &orders),
                    }]},
                    {"eval_time": "29m", "alertname": "SesConfigurationSetReputationWarning", "exp_alerts": []},
                    {"eval_time": "31m", "alertname": "SesConfigurationSetReputationWarning", "exp_alerts": [{
                        "exp_labels": {"severity": "warning", "namespace": "mail", "configuration_set": "news"},
                        "exp_annotations": annotations(
                            "SesConfigurationSetReputationWarning",
                            &[("namespace", "mail"), ("configuration_set", "news")],
                        ),
                    }]},
                    {"eval_time": "30m", "alertname": "SesReputationOperatorReconcileErrors", "exp_alerts": [{
                        "exp_labels": {"severity": "warning", "kind": "ConfigurationSet"},
                        "exp_annotations": annotations("SesReputationOperatorReconcileErrors", &[("kind", "ConfigurationSet")]),
                    }]},
                    {"eval_time": "30m", "alertname": "SesReputationOperatorDown", "exp_alerts": []},
                ],
            },
            {
                // Scraped but failing: down after 10 minutes too.
                "interval": "1m",
                "input_series": [{"series": format!("up{{job=\"{job}\",namespace=\"{namespace}\"}}"), "values": "0x20"}],
                "alert_rule_test": [
                    {"eval_time": "11m", "alertname": "SesReputationOperatorDown", "exp_alerts": [{
                        "exp_labels": {"severity": "critical", "job": job, "namespace": namespace},
                        "exp_annotations": annotations("SesReputationOperatorDown", &[]),
                    }]},
                ],
            },
            {
                // Nothing scrapes the operator: down after 10 minutes.
                "interval": "1m",
                "input_series": [],
                "alert_rule_test": [
                    {"eval_time": "9m", "alertname": "SesReputationOperatorDown", "exp_alerts": []},
                    {"eval_time": "11m", "alertname": "SesReputationOperatorDown", "exp_alerts": [{
                        "exp_labels": {"severity": "critical", "job": job, "namespace": namespace},
                        "exp_annotations": annotations("SesReputationOperatorDown", &[]),
                    }]},
                ],
            },
        ],
    });
    let dir = std::env::temp_dir().join(unique("promtool"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // JSON is YAML: promtool reads both files as they are.
    std::fs::write(dir.join("rules.yaml"), json!({"groups": groups}).to_string()).expect("rules file");
    std::fs::write(dir.join("tests.yaml"), cases.to_string()).expect("tests file");
    let promtool = run(&mut Command::new(root().join("tools/promtool.sh")), None).0;
    run(
        Command::new(promtool.trim())
            .args(["test", "rules", "tests.yaml"])
            .current_dir(&dir),
        None,
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The metric series the operator exports, from its own `/metrics` text
/// with every family holding a series.
fn exported_series() -> BTreeSet<String> {
    use ses_reputation_operator::ops::metrics::Metrics;
    let m = Metrics::new();
    m.reconciled("ConfigurationSet", Duration::from_millis(5), "aws_error", true);
    m.aws_call("sesv2:GetAccount", "ok", Duration::from_millis(5));
    m.ses_token_waited(Duration::from_millis(5));
    m.set_leader(true);
    m.set_set_reputation("ns", "set", Some(0.01), Some(0.0), 0);
    m.set_set_live("ns", "set", Some(0.01), Some(0.0), 10);
    m.set_set_paused("ns", "set", false);
    m.set_account_reputation("acct", Some(0.01), Some(0.0));
    m.set_drift_period("acct", Some(Duration::from_secs(60)));
    m.set_quota_used("acct", Some(0.5));
    m.set_tenant_sending("acct", "ns", "tenant", Some(true));
    m.set_findings_open("acct", "DMARC", "HIGH", Some(1));
    m.stream_events("counted", 1);
    m.stream_newest(1.0);
    let snapshot = ses_reputation_operator::ops::metrics::SchedulerGauges {
        rate: 1.0,
        waiting: [0, 0, 0],
    };
    m.set_scheduler_source(Some(std::sync::Arc::new(move || {
        vec![("123456789012".to_string(), "us-east-1".to_string(), snapshot)]
    })));
    m.set_object_source(Some(std::sync::Arc::new(|| {
        vec![("ConfigurationSet", Default::default())]
    })));
    m.encode()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or_default().to_string())
        .collect()
}

/// `expr` with string literals, label matchers, groupings and ranges
/// removed: what is left are functions, keywords and metric names.
fn identifiers(expr: &str) -> Vec<String> {
    let mut out = String::new();
    let (mut depth_brace, mut depth_bracket, mut in_string) = (0, 0, false);
    for c in expr.chars() {
        match c {
            '"' => in_string = !in_string,
            _ if in_string => {}
            '{' => depth_brace += 1,
            '}' => depth_brace -= 1,
            '[' => depth_bracket += 1,
            ']' => depth_bracket -= 1,
            _ if depth_brace > 0 || depth_bracket > 0 => {}
            c => out.push(c),
        }
    }
    // `by (a, b)`: the labels are not metrics.
    let mut words: Vec<String> = Vec::new();
    let mut skip_group = false;
    for token in out.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '(' || c == ')')) {
        for part in token.split_inclusive(['(', ')']) {
            let word = part.trim_matches(['(', ')']);
            if skip_group {
                if part.ends_with(')') {
                    skip_group = false;
                }
                continue;
            }
            if word == "by" || word == "without" {
                skip_group = true;
                continue;
            }
            if !word.is_empty() && !word.chars().all(|c| c.is_ascii_digit() || c == '.') {
                words.push(word.to_string());
            }
        }
    }
    words
}

/// The chart's Grafana dashboard: every PromQL expression parses (promtool
/// from the Go module proxy, tools/promtool.sh) and reads only metrics the
/// operator exports.
#[test]
fn dashboard_queries_parse_and_use_only_exported_metrics() {
    let path = chart().join("dashboards/ses-reputation.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read dashboard")).expect("dashboard JSON");
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().expect("every target has an expr").to_string())
        .collect();
    assert!(exprs.len() >= 8, "{exprs:?}");

    let exported = exported_series();
    const PROMQL: &[&str] = &["sum", "max", "min", "avg", "rate", "histogram_quantile"];
    for expr in &exprs {
        for word in identifiers(expr) {
            assert!(
                PROMQL.contains(&word.as_str()) || exported.contains(&word),
                "{expr}: {word} is neither a PromQL function used here nor a metric the operator exports ({exported:?})"
            );
        }
    }

    // promtool parses each expression as a recording rule.
    let rules = json!({"groups": [{"name": "dashboard", "rules": exprs.iter().enumerate()
        .map(|(i, e)| json!({"record": format!("dashboard:expr_{i}:check"), "expr": e}))
        .collect::<Vec<_>>()}]});
    let dir = std::env::temp_dir().join(unique("dashboard-rules"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("rules.yaml");
    std::fs::write(&file, serde_yaml::to_string(&rules).expect("yaml")).expect("write rules");
    let (promtool, _) = run(&mut Command::new(root().join("tools/promtool.sh")), None);
    run(Command::new(promtool.trim()).args(["check", "rules"]).arg(&file), None);
}
