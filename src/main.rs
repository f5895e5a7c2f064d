//! Command line: `run` starts the controllers, `crds` prints the CRDs.

use std::time::Duration;

use clap::{Parser, Subcommand};
use ses_reputation_operator::aws::AwsSettings;
use ses_reputation_operator::controller::{self, Settings};

#[derive(Parser)]
#[command(name = "ses-reputation-operator", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controllers against the cluster in KUBECONFIG or in-cluster config.
    Run(RunArgs),
    /// Print every CRD as YAML.
    Crds,
}

#[derive(clap::Args)]
struct RunArgs {
    /// SesAccount used by resources without spec.accountRef.
    #[arg(long, env = "SRO_DEFAULT_ACCOUNT", default_value = "default")]
    default_account: String,
    /// How often converged resources are compared with AWS again (drift check), in seconds.
    #[arg(long, env = "SRO_DRIFT_INTERVAL_SECONDS", default_value_t = 300.0)]
    drift_interval_seconds: f64,
    /// SES control-plane calls per second per account+region (SES allows 1).
    #[arg(long, env = "SRO_SES_CALLS_PER_SECOND", default_value_t = 1.0)]
    ses_calls_per_second: f64,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "SRO_NAMESPACE")]
    namespace: Option<String>,
    /// Reconcile only SesAccounts matching this label selector.
    #[arg(long, env = "SRO_ACCOUNT_SELECTOR")]
    account_selector: Option<String>,
    /// Name of this cluster in the AWS ownership tag (ses.reputation.io/owner).
    #[arg(long, env = "SRO_CLUSTER_NAME", default_value = "default")]
    cluster_name: String,
    /// Send every AWS call to this endpoint (emulators); normally unset.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    aws_endpoint_url: Option<String>,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "SRO_LOG_JSON")]
    log_json: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds => {
            print!("{}", ses_reputation_operator::api::crds_yaml()?);
            Ok(())
        }
        Command::Run(args) => {
            init_logging(args.log_json);
            let client = kube::Client::try_default().await?;
            let settings = Settings {
                default_account: args.default_account,
                drift_interval: Duration::from_secs_f64(args.drift_interval_seconds.max(1.0)),
                namespace: args.namespace,
                account_selector: args.account_selector,
                cluster_name: args.cluster_name,
                aws: AwsSettings {
                    ses_calls_per_second: args.ses_calls_per_second,
                    endpoint_url: args.aws_endpoint_url,
                },
            };
            tracing::info!(?settings, "starting controllers");
            controller::run(client, settings, shutdown_signal()).await;
            tracing::info!("stopped");
            Ok(())
        }
    }
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
