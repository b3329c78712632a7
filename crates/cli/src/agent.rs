//! `palisade agent`: the node agent (one per node, a DaemonSet on a cluster).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use palisade_agent::{Config, SourceConfig};

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// This node's name (pods with this `spec.nodeName` are enforced here); on a cluster, from the downward API
    #[arg(long, env = "NODE_NAME")]
    pub node_name: String,
    /// Kubeconfig to use instead of the in-cluster service account
    #[arg(long, conflicts_with = "manifests")]
    pub kubeconfig: Option<PathBuf>,
    /// Read a folder of manifests instead of the Kubernetes API (watched for changes)
    #[arg(long)]
    pub manifests: Option<PathBuf>,
    /// Serve /healthz, /readyz and /metrics here ("off" to disable)
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub metrics_addr: String,
    /// A full atomic resync this often
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub resync: Duration,
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// The nftables table (inet family) the agent owns
    #[arg(long, default_value = "palisade")]
    pub table: String,
    /// Write the last enforced revision here after each sync (used by the sandbox)
    #[arg(long)]
    pub status_file: Option<PathBuf>,
    /// Keep established connections when policy narrows (by default they are cut)
    #[arg(long)]
    pub keep_established: bool,
    /// A pod the agent has not programmed yet: "closed" drops new connections from or to addresses in the
    /// node's pod ranges that are not known pods yet; "open" lets them pass until the pod is programmed
    #[arg(long, value_enum, default_value = "closed")]
    pub pod_start: PodStartArg,
    /// A pod address range of this node (repeatable), besides its Node's spec.podCIDRs and a CNI bridge's subnet
    #[arg(long = "pod-cidr", value_parser = parse_cidr)]
    pub pod_cidrs: Vec<ipnet::IpNet>,
    /// Log denied packets (NFLOG group 5, deduplicated and rate-limited in the kernel) and serve them joined
    /// with the engine's explanation on /v1/flows; off when the kernel has no NFLOG
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub flow_log: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum PodStartArg {
    Closed,
    Open,
}

fn parse_cidr(s: &str) -> Result<ipnet::IpNet, String> {
    s.parse().map_err(|_| format!("{s:?}: expected a CIDR such as 10.244.1.0/24"))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    palisade_agent::parse_duration(s).ok_or_else(|| format!("{s:?}: expected a duration such as 30s, 5m or 1h"))
}

pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PALISADE_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

pub fn run(args: AgentArgs) -> Result<ExitCode> {
    let source = match args.manifests {
        Some(dir) => {
            anyhow::ensure!(dir.is_dir(), "--manifests {}: not a folder", dir.display());
            SourceConfig::Dir(dir)
        }
        None => SourceConfig::Kube { kubeconfig: args.kubeconfig },
    };
    let mut config = Config::new(&args.node_name, source);
    config.metrics_addr = match args.metrics_addr.as_str() {
        "off" | "" => None,
        a => Some(a.parse::<SocketAddr>().with_context(|| format!("--metrics-addr {a:?}"))?),
    };
    config.resync = args.resync;
    config.table = args.table;
    config.status_file = args.status_file;
    config.keep_established = args.keep_established;
    config.pod_start = match args.pod_start {
        PodStartArg::Closed => palisade_agent::PodStart::Closed,
        PodStartArg::Open => palisade_agent::PodStart::Open,
    };
    config.pod_cidrs = args.pod_cidrs;
    config.flow_log = args.flow_log;
    tracing::info!(node = %config.node_name, table = %config.table, "palisade agent starting");
    // Stopping (SIGTERM, SIGINT) ends the process and leaves the rules in place.
    palisade_agent::run(config, Arc::new(AtomicBool::new(false)))?;
    Ok(ExitCode::SUCCESS)
}
