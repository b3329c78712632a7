//! The Palisade node agent: one per node, watching Pods, Namespaces and NetworkPolicies (from the
//! Kubernetes API or a folder of manifests) and keeping the node's nftables table in sync.
//!
//! Shape: sources send [`source::Event`]s on a channel; one loop feeds them to [`reconcile::Agent`]
//! (pure but for its seams), waits for a short quiet moment (debounce), and reconciles; `/healthz`,
//! `/readyz` and `/metrics` are served beside it.
//!
//! Invariants: nothing is enforced before every kind has been listed once; the first sync replaces the
//! table atomically (a restart never opens a window); stopping leaves the rules in place.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use palisade_nft::{ConntrackCommand, NftDataplane, NftSession};

pub mod dir;
pub mod flowlog;
pub mod http;
pub mod interfaces;
pub mod kube;
pub mod metrics;
pub mod reconcile;
pub mod source;

pub use reconcile::{Agent, Outcome, PodStart};

/// Where the agent learns about the cluster.
#[derive(Debug, Clone)]
pub enum SourceConfig {
    /// The Kubernetes API (in-cluster config, or this kubeconfig).
    Kube { kubeconfig: Option<PathBuf> },
    /// A folder of manifests, watched for changes.
    Dir(PathBuf),
}

/// How to run the agent.
#[derive(Debug, Clone)]
pub struct Config {
    pub node_name: String,
    pub source: SourceConfig,
    pub metrics_addr: Option<SocketAddr>,
    /// A full atomic resync this often.
    pub resync: Duration,
    pub table: String,
    /// Written after each sync: `{"node", "revision", "ready", "syncs"}` (the sandbox waits on it).
    pub status_file: Option<PathBuf>,
    /// Changes arriving within this long of each other are applied together.
    pub debounce: Duration,
    /// Keep established connections when policy narrows.
    pub keep_established: bool,
    /// What a pod the agent has not programmed yet may do (closed by default).
    pub pod_start: PodStart,
    /// The node's pod address ranges, besides its Node's `spec.podCIDRs` and a CNI bridge's subnet.
    pub pod_cidrs: Vec<ipnet::IpNet>,
    /// Deny logging and the flow log (`/v1/flows`): on unless turned off or the kernel has no NFLOG.
    pub flow_log: bool,
}

impl Config {
    pub fn new(node_name: &str, source: SourceConfig) -> Self {
        Config {
            node_name: node_name.to_owned(),
            source,
            metrics_addr: None,
            resync: Duration::from_secs(300),
            table: "palisade".to_owned(),
            status_file: None,
            debounce: Duration::from_millis(2),
            keep_established: false,
            pod_start: PodStart::Closed,
            pod_cidrs: Vec::new(),
            flow_log: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("connecting to the Kubernetes API: {0}")]
    Kube(#[from] ::kube::Error),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the source stopped")]
    SourceStopped,
}

/// Longest a change waits for others to join it before it is applied.
const MAX_BATCH: Duration = Duration::from_millis(50);

/// Parses `300`, `90s`, `5m`, `1h` (seconds when no unit).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.parse().ok().map(Duration::from_millis);
    }
    let (num, mult) = match s.char_indices().last()? {
        (i, 's') => (&s[..i], 1),
        (i, 'm') => (&s[..i], 60),
        (i, 'h') => (&s[..i], 3600),
        _ => (s, 1),
    };
    num.parse::<u64>().ok().map(|n| Duration::from_secs(n * mult))
}

/// Runs the agent until `stop` is set (the rules stay in place) or a source fails for good.
pub fn run(config: Config, stop: Arc<AtomicBool>) -> Result<(), AgentError> {
    let metrics = Arc::new(metrics::Metrics::new());
    let health = Arc::new(http::Health::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| AgentError::Io { what: "starting the runtime".into(), source })?;
    let (tx, rx) = mpsc::channel();
    let mut flows = config.flow_log.then(start_flow_log).flatten();
    if let Some(addr) = config.metrics_addr {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(addr))
            .map_err(|source| AgentError::Io { what: format!("listening on {addr}"), source })?;
        let app = http::router_with_flows(metrics.clone(), health.clone(), flows.as_ref().map(|f| f.ring()));
        rt.spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the metrics server stopped");
            }
        });
        tracing::info!(%addr, "serving /healthz /readyz /metrics");
    }
    match &config.source {
        SourceConfig::Dir(path) => {
            let source = dir::DirSource::new(path);
            let rescan = config.resync.min(Duration::from_secs(10));
            std::thread::Builder::new()
                .name("dir-source".into())
                .spawn(move || source.run(tx, rescan))
                .map_err(|source| AgentError::Io { what: "starting the folder watch".into(), source })?;
            tracing::info!(dir = %path.display(), "watching a folder of manifests");
        }
        SourceConfig::Kube { kubeconfig } => {
            let client = rt.block_on(kube::client(kubeconfig.as_deref()))?;
            rt.spawn(kube::run(client, tx, config.node_name.clone()));
            tracing::info!(
                "watching Namespaces, Pods, NetworkPolicies, Nodes, and ClusterNetworkPolicies, AdminNetworkPolicies and BaselineAdminNetworkPolicies where their CRDs are installed"
            );
        }
    }
    let mut dataplane = NftDataplane::new(NftSession::new(None), ConntrackCommand::default());
    dataplane.keep_established = config.keep_established;
    let mut agent = Agent::new(&config.node_name, &config.table, dataplane, interfaces::RouteTable::default(), metrics);
    agent.set_pod_start(config.pod_start, config.pod_cidrs.clone());
    agent.set_flow_log(flows.is_some().then(palisade_nft::LogOptions::default));
    // With the flow log on, the loop turns often enough to publish records within tens of milliseconds.
    let turn = if flows.is_some() { Duration::from_millis(25) } else { Duration::from_millis(500) };
    let mut seen = palisade_observe::ReaderStats::default();
    let mut syncs = 0u64;
    let mut failures = 0u32;
    while !stop.load(Ordering::Relaxed) {
        health.beat();
        if let Some(f) = flows.as_mut() {
            observe_flows(&mut agent, f, &mut seen);
        }
        match rx.recv_timeout(turn) {
            Ok(ev) => {
                agent.handle(ev);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Err(AgentError::SourceStopped),
        }
        // Let the changes that arrive together be applied together.
        while let Some(since) = agent.pending_since() {
            let left = MAX_BATCH.saturating_sub(since.elapsed()).min(config.debounce);
            if left.is_zero() {
                break;
            }
            match rx.recv_timeout(left) {
                Ok(ev) => {
                    agent.handle(ev);
                }
                Err(_) => break,
            }
        }
        let full = agent.resync_due(config.resync);
        if !(agent.dirty() || full) || !agent.initialized() {
            publish_pending(&health, &agent);
            continue;
        }
        let started = Instant::now();
        match agent.reconcile(full) {
            Ok(Some(outcome)) => {
                failures = 0;
                syncs += 1;
                health.ready.store(true, Ordering::Relaxed);
                let r = outcome.report;
                if r.full || r.statements > 0 {
                    tracing::info!(
                        full = r.full,
                        statements = r.statements,
                        conntrack_deletes = r.conntrack_deletes,
                        ms = started.elapsed().as_secs_f64() * 1e3,
                        nft_ms = r.nft_time.as_secs_f64() * 1e3,
                        conntrack_ms = r.conntrack_time.as_secs_f64() * 1e3,
                        "synced"
                    );
                }
                publish_pending(&health, &agent);
                if let Some(path) = &config.status_file {
                    let status = Status {
                        node: &config.node_name,
                        revision: outcome.revision.as_deref(),
                        syncs,
                        pending: agent.pending_pods().len(),
                        last_realization: agent.last_realization(),
                    };
                    write_status(path, &status);
                }
            }
            Ok(None) => {}
            Err(e) => {
                failures += 1;
                tracing::error!(error = %e, "applying the ruleset failed; retrying with a full replace");
                std::thread::sleep(Duration::from_millis(100u64 << failures.min(5)));
            }
        }
    }
    Ok(())
}

/// The NFLOG reader on the deny log group, in the agent's namespace; `None` (logged) when the kernel cannot.
fn start_flow_log() -> Option<flowlog::FlowLog> {
    let config = palisade_observe::ReaderConfig {
        nflog: palisade_observe::NflogConfig {
            group: palisade_nft::compile::DENY_LOG_GROUP,
            ..palisade_observe::NflogConfig::default()
        },
        ..palisade_observe::ReaderConfig::default()
    };
    match palisade_observe::Reader::start(&config) {
        Ok(reader) => {
            tracing::info!(group = config.nflog.group, "flow log on: reading deny events (NFLOG)");
            Some(flowlog::FlowLog::new(Some(reader)))
        }
        Err(e) => {
            tracing::warn!(error = %e, "flow log off: cannot read NFLOG here; no log rules are written");
            None
        }
    }
}

/// Publishes the flow log's complete records and counts what the reader saw since the last turn.
fn observe_flows<D: palisade_nft::Dataplane, I: interfaces::Interfaces>(
    agent: &mut Agent<D, I>,
    flows: &mut flowlog::FlowLog,
    seen: &mut palisade_observe::ReaderStats,
) {
    let p = agent.observe(flows, Duration::ZERO);
    let metrics = agent.metrics();
    metrics.explain_divergence.inc_by(p.divergent as u64);
    if let Some(stats) = flows.reader().map(palisade_observe::Reader::stats) {
        for kind in palisade_observe::Kind::ALL {
            let new = stats.events_of(kind).saturating_sub(seen.events_of(kind));
            if new > 0 {
                metrics.flowlog_events.get_or_create(&metrics::Metrics::label("kind", &kind.to_string())).inc_by(new);
            }
        }
        let lost = (stats.lost + stats.dropped).saturating_sub(seen.lost + seen.dropped);
        metrics.flowlog_lost.inc_by(lost);
        *seen = stats;
    }
}

/// Hands the loop's view of the local pods still waiting to the HTTP server.
fn publish_pending<D: palisade_nft::Dataplane, I: interfaces::Interfaces>(health: &http::Health, agent: &Agent<D, I>) {
    let pods = agent.pending_pods();
    if let Ok(mut p) = health.pending.lock()
        && *p != pods
    {
        *p = pods;
    }
}

/// What the status file says after a sync.
struct Status<'a> {
    node: &'a str,
    revision: Option<&'a str>,
    syncs: u64,
    pending: usize,
    last_realization: Option<Duration>,
}

/// The status file, written whole and renamed into place so readers never see half of it.
fn write_status(path: &std::path::Path, s: &Status) {
    let v = serde_json::json!({ "node": s.node, "revision": s.revision, "ready": true, "syncs": s.syncs,
        "pendingPods": s.pending,
        "lastRealizationMs": s.last_realization.map(|d| d.as_secs_f64() * 1e3) });
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, v.to_string()).and_then(|()| std::fs::rename(&tmp, path)).is_err() {
        tracing::warn!(path = %path.display(), "cannot write the status file");
    }
}

/// Reads a status file: the revision the agent last enforced.
pub fn read_status_revision(path: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("revision").and_then(|r| r.as_str()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("42"), Some(Duration::from_secs(42)));
        assert_eq!(parse_duration("soon"), None);
    }
}
