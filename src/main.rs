//! Command line: `run` starts the controllers (behind leader election)
//! and the metrics/health endpoint, `crds` prints the CRDs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use futures::FutureExt;
use ses_reputation_operator::aws::AwsSettings;
use ses_reputation_operator::config::{ConfigMapName, ReputationSettings, Settings};
use ses_reputation_operator::ops::leader::{self, ElectionSettings};
use ses_reputation_operator::ops::metrics::Metrics;
use ses_reputation_operator::ops::server::{self, Health, Role};
use ses_reputation_operator::reconcile::Context;

/// How long a leader may go without renewing its Lease before a standby
/// takes over.
const LEASE_DURATION: Duration = Duration::from_secs(15);

/// How long in-flight reconciles may take to finish after SIGTERM; below
/// the chart's terminationGracePeriodSeconds (30).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(25);

#[derive(Parser)]
#[command(name = "ses-reputation-operator", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controllers against the cluster in KUBECONFIG or in-cluster config.
    Run(Box<RunArgs>),
    /// Print every CRD as YAML.
    Crds,
    /// Print the CRD reference as Markdown (docs/crd-reference.md).
    Docs,
    /// Check a running operator: its Service answers /readyz and a leader
    /// renews the Lease (the chart's `helm test` hook). Exits 1 if not.
    Check(CheckArgs),
}

#[derive(clap::Args)]
struct CheckArgs {
    /// The operator's /readyz, usually through its Service.
    #[arg(long, env = "SRO_CHECK_URL")]
    url: String,
    /// Name of the leader-election Lease; without it, only /readyz is checked
    /// (leader election off).
    #[arg(long, env = "SRO_LEASE_NAME")]
    lease_name: Option<String>,
    /// Namespace of that Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
}

#[derive(clap::Args)]
struct RunArgs {
    /// SesAccount used by resources without spec.accountRef.
    #[arg(long, env = "SRO_DEFAULT_ACCOUNT", default_value = "default")]
    default_account: String,
    /// How often converged resources are compared with AWS again (drift check), in seconds.
    #[arg(long, env = "SRO_DRIFT_INTERVAL_SECONDS", default_value_t = 300.0)]
    drift_interval_seconds: f64,
    /// How long a resource waits for its SesAccount to appear (applied
    /// together by GitOps) before it is Stalled with AccountNotFound, in seconds.
    #[arg(long, env = "SRO_ACCOUNT_GRACE_SECONDS", default_value_t = 60.0)]
    account_grace_seconds: f64,
    /// SES control-plane calls per second per account+region (SES allows 1).
    #[arg(long, env = "SRO_SES_CALLS_PER_SECOND", default_value_t = 1.0)]
    ses_calls_per_second: f64,
    /// The share of the SES budget drift checks may use (0-1); the drift
    /// period of an account stretches when its objects need more.
    #[arg(long, env = "SRO_DRIFT_BUDGET_SHARE", default_value_t = 0.5)]
    drift_budget_share: f64,
    /// Reconcile passes that write (API server or AWS) running at once, first
    /// come first served (bounds memory, connections and API-server load
    /// when many objects are triggered together).
    #[arg(long, env = "SRO_MAX_CONCURRENT_RECONCILES", default_value_t = 8)]
    max_concurrent_reconciles: u16,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "SRO_NAMESPACE")]
    namespace: Option<String>,
    /// Reconcile only SesAccounts matching this label selector.
    #[arg(long, env = "SRO_ACCOUNT_SELECTOR")]
    account_selector: Option<String>,
    /// Name of this cluster in the AWS ownership tag (ses.reputation.io/owner).
    /// Default: derived from the kube-system namespace's UID, unique per cluster.
    #[arg(long, env = "SRO_CLUSTER_NAME")]
    cluster_name: Option<String>,
    /// Cluster names this cluster had before (comma-separated), to migrate
    /// what they tagged: resources whose owner status records them are
    /// re-tagged with the current name. Without it, a changed name stops
    /// every SesAccount whose resources carry the old one.
    #[arg(long, env = "SRO_PREVIOUS_CLUSTER_NAMES", value_delimiter = ',')]
    previous_cluster_names: Vec<String>,
    /// Send every AWS call to this endpoint (emulators); normally unset.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    aws_endpoint_url: Option<String>,
    /// How often bounce and complaint rates are read from CloudWatch, in seconds
    /// (one GetMetricData batch per account and region).
    #[arg(long, env = "SRO_RATE_INTERVAL_SECONDS", default_value_t = 60.0)]
    rate_interval_seconds: f64,
    /// A rate datapoint older than this (seconds) counts as no data (Unknown).
    #[arg(long, env = "SRO_RATE_STALENESS_SECONDS", default_value_t = 7200.0)]
    rate_staleness_seconds: f64,
    /// How often AWS's findings (SES ListRecommendations, drift-class SES
    /// calls, 100 findings a call) are read per account, in seconds.
    #[arg(long, env = "SRO_FINDINGS_INTERVAL_SECONDS", default_value_t = 900.0)]
    findings_interval_seconds: f64,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "SRO_LOG_JSON")]
    log_json: bool,
    /// Address of the HTTP endpoint serving /metrics, /healthz and /readyz.
    #[arg(long, env = "SRO_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Run the controllers only while holding a Lease, so several replicas
    /// can run with one active (`--leader-election=false` to turn off).
    #[arg(
        long,
        env = "SRO_LEADER_ELECTION",
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new(),
    )]
    leader_election: bool,
    /// Name of the coordination.k8s.io Lease used for leader election.
    #[arg(long, env = "SRO_LEASE_NAME", default_value = "ses-reputation-operator")]
    lease_name: String,
    /// Namespace of that Lease (the operator's own namespace in a cluster).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// ConfigMap (in the Lease's namespace) where the leader checkpoints
    /// its live event windows, so that the next leader's breaker is not
    /// blind until `minimumSends`; empty to turn checkpoints off.
    #[arg(long, env = "SRO_LIVE_CHECKPOINT", default_value = "ses-reputation-operator-live")]
    live_checkpoint: String,
}

/// A cluster identity unique by default: two clusters sharing an AWS
/// account must not take each other's resources for their own.
async fn cluster_identity(client: &kube::Client) -> Result<String, kube::Error> {
    let ns = kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .get_metadata("kube-system")
        .await?;
    Ok(format!("k8s-{}", ns.metadata.uid.unwrap_or_default()))
}

// Two worker threads whatever the node's size: the work is I/O-bound, and
// each extra thread costs a stack and its own malloc arena (memory that a
// burst fragments and glibc keeps), which is what bounds the pod's RSS.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds => {
            print!("{}", ses_reputation_operator::api::crds_yaml()?);
            Ok(())
        }
        Command::Docs => {
            print!("{}", ses_reputation_operator::api::reference::markdown());
            Ok(())
        }
        Command::Run(args) => run(*args).await,
        Command::Check(args) => {
            let lease = args
                .lease_name
                .as_deref()
                .map(|name| (args.lease_namespace.as_str(), name));
            let checked = match ses_reputation_operator::ops::api_client::from_env().await {
                Ok(client) => ses_reputation_operator::ops::check::check(client, &args.url, lease)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(format!("no Kubernetes API client: {e}")),
            };
            match checked {
                Ok(found) => {
                    println!("healthy: {found}");
                    Ok(())
                }
                // One line that says what was looked at, not a Debug dump.
                Err(why) => {
                    eprintln!("unhealthy: {why}");
                    std::process::exit(1)
                }
            }
        }
    }
}

/// `run`: the controllers, the metrics and health endpoint, leader election
/// when asked, and a bounded drain on SIGTERM.
async fn run(args: RunArgs) -> Result<(), Box<dyn std::error::Error>> {
    init_logging(args.log_json);
    let client = ses_reputation_operator::ops::api_client::from_env().await?;
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    let listener = server::bind(args.metrics_addr)
        .await
        .map_err(|e| format!("cannot listen on {} (--metrics-addr): {e}", args.metrics_addr))?;
    let shutdown = shutdown_signal().boxed().shared();
    let cluster_name = match &args.cluster_name {
        Some(name) => name.clone(),
        None => cluster_identity(&client).await.map_err(|e| {
            format!("cannot derive the cluster identity from the kube-system namespace (set --cluster-name): {e}")
        })?,
    };
    let settings = settings_of(&args, cluster_name);
    tracing::info!(?settings, metrics_addr = %args.metrics_addr, leader_election = args.leader_election, "starting");
    let http = tokio::spawn(server::serve(
        listener,
        metrics.clone(),
        health.clone(),
        shutdown.clone(),
    ));
    let run = async {
        if args.leader_election {
            let election = ElectionSettings {
                lease_name: args.lease_name,
                lease_namespace: args.lease_namespace,
                identity: leader::default_identity(),
                lease_duration: LEASE_DURATION,
            };
            let lead = {
                let (client, metrics, health, shutdown) =
                    (client.clone(), metrics.clone(), health.clone(), shutdown.clone());
                move |fence| async move {
                    let ctx = Context::leading(client, settings, metrics, health, fence).await;
                    ses_reputation_operator::app::run_with(ctx, shutdown).await;
                }
            };
            leader::run(client, election, metrics, health, lead, shutdown.clone()).await
        } else {
            health.set_role(Role::Alone);
            metrics.set_leader(true);
            let ctx = Context::with_metrics(client, settings, metrics, health).await;
            ses_reputation_operator::app::run_with(ctx, shutdown.clone()).await;
            Ok(())
        }
    };
    // In-flight reconciles may finish after SIGTERM, but not forever:
    // a controller whose watch keeps failing (CRDs missing) never
    // drains, and the kubelet's SIGKILL would cut the logs short.
    let drain_deadline = shutdown.clone().then(|()| tokio::time::sleep(DRAIN_TIMEOUT));
    tokio::select! {
        result = run => if let Err(e) = result {
            // Reconciling must stop at once; Kubernetes restarts the
            // container, which comes back as a standby.
            tracing::error!(error = %e, "stopping: this replica is no longer the leader");
            std::process::exit(1);
        },
        () = drain_deadline => {
            tracing::warn!(timeout = ?DRAIN_TIMEOUT, "controllers did not stop in time after the shutdown signal, exiting");
            std::process::exit(1);
        }
    }
    match tokio::time::timeout(Duration::from_secs(5), http).await {
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "metrics endpoint failed"),
        Ok(Err(e)) => tracing::warn!(error = %e, "metrics endpoint task failed"),
        Ok(Ok(Ok(()))) | Err(_) => {}
    }
    tracing::info!("stopped");
    Ok(())
}

/// The settings the flags give, with the cluster identity resolved.
fn settings_of(args: &RunArgs, cluster_name: String) -> Settings {
    Settings {
        default_account: args.default_account.clone(),
        drift_interval: seconds(args.drift_interval_seconds, 1.0),
        account_grace: seconds(args.account_grace_seconds, 0.0),
        namespace: args.namespace.clone(),
        account_selector: args.account_selector.clone(),
        previous_cluster_names: {
            let mut names = args.previous_cluster_names.clone();
            // Earlier versions used `default` when the name was derived.
            if args.cluster_name.is_none() {
                names.push("default".to_string());
            }
            names
        },
        cluster_name,
        aws: AwsSettings {
            ses_calls_per_second: args.ses_calls_per_second,
            endpoint_url: args.aws_endpoint_url.clone(),
            drift_share: args.drift_budget_share.clamp(0.01, 1.0),
        },
        reputation: ReputationSettings {
            interval: seconds(args.rate_interval_seconds, 1.0),
            staleness: seconds(args.rate_staleness_seconds, 60.0),
            findings_interval: seconds(args.findings_interval_seconds, 1.0),
        },
        concurrency: args.max_concurrent_reconciles.max(1),
        live_checkpoint: (!args.live_checkpoint.is_empty()).then(|| ConfigMapName {
            namespace: args.lease_namespace.clone(),
            name: args.live_checkpoint.clone(),
        }),
    }
}

/// A duration flag, clamped to [min, one year] (NaN counts as the minimum),
/// so no flag value can overflow a timer.
fn seconds(value: f64, min: f64) -> Duration {
    let value = if value.is_nan() { min } else { value };
    Duration::from_secs_f64(value.clamp(min, 365.0 * 24.0 * 3600.0))
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube_runtime=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves on SIGTERM or Ctrl-C; the controllers then finish in-flight
/// reconciles and stop.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or(());
}
