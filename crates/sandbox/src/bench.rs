//! `palisade bench dataplane`: per-packet cost and update latency of the Palisade ruleset, in one sandbox,
//! against no ruleset and against the same policies as linear rules, measured in the same run.

use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use palisade_engine::cnp::ClusterObject;
use palisade_engine::synth::{Shape, cluster_objects, objects};
use palisade_engine::{Connection, Endpoint, IpFamily, Object, ObjectKey, Protocol};
use palisade_nft::compile::render_linear;
use serde::Serialize;
use serde_json::json;

use crate::{Result, Sandbox, SandboxError, io};

/// Options of one benchmark run.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub pods: usize,
    pub policies: usize,
    /// Rounds of the scenarios; each round measures every table back to back, in a rotating order.
    pub rounds: usize,
    /// Length of each traffic measurement.
    pub measure: Duration,
    /// Single label changes timed for the update latency.
    pub changes: usize,
    /// ClusterNetworkPolicies (Admin and Baseline tiers) added to the synthetic cluster; with any, the bench
    /// pods' namespace carries `env`/`team` labels so that tier policies select the client and the server.
    pub cluster_policies: usize,
}

/// The results; JSON field names as the issue specifies.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub pods: usize,
    pub policies: usize,
    pub cluster_policies: usize,
    /// Tier policies selecting the client for egress and the server for ingress (their chains are on the
    /// measured packets' path).
    pub client_egress_tier_policies: usize,
    pub server_ingress_tier_policies: usize,
    pub local_pods: usize,
    pub rules: usize,
    pub set_elements: usize,
    pub linear_rules: usize,
    /// No table at all (conntrack off in the node namespace).
    pub baseline_conn_per_s: f64,
    /// A table that only switches conntrack on (`ct state established,related accept`).
    pub conntrack_conn_per_s: f64,
    pub palisade_conn_per_s: f64,
    pub linear_conn_per_s: f64,
    /// Ratios are medians of per-round ratios (each round measures every table back to back).
    pub conn_ratio: f64,
    /// Palisade against conntrack alone: the cost of Palisade's own rules.
    pub conn_ratio_vs_conntrack: f64,
    pub linear_conn_ratio: f64,
    pub baseline_gbps: f64,
    pub conntrack_gbps: f64,
    pub palisade_gbps: f64,
    pub throughput_ratio: f64,
    pub throughput_ratio_vs_conntrack: f64,
    pub full_load_ms: f64,
    pub update_p50_ms: f64,
    pub update_p99_ms: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or(0.0)
}

struct Killer(Child);
impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const ECHO_PORT: u16 = 5201;
const SINK_PORT: u16 = 5202;

/// The client and server pods and their policies; `labels` gives their namespace the synthetic namespaces'
/// labels (`env: prod`, `team: payments`), so that tier policies selecting by them select the bench pods too.
fn bench_objects(labels: bool) -> Vec<Object> {
    let labels = if labels { ", labels: {env: prod, team: payments}" } else { "" };
    let text = format!(
        r#"
apiVersion: v1
kind: Namespace
metadata: {{name: bench{labels}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: client, namespace: bench, labels: {{app: bench-client}}}}
spec: {{containers: [{{name: c}}]}}
status: {{podIP: 10.250.0.1, podIPs: [{{ip: 10.250.0.1}}]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: server, namespace: bench, labels: {{app: bench-server}}}}
spec: {{containers: [{{name: c, ports: [{{containerPort: {ECHO_PORT}}}]}}]}}
status: {{podIP: 10.250.0.2, podIPs: [{{ip: 10.250.0.2}}]}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: default-deny, namespace: bench}}
spec: {{podSelector: {{}}, policyTypes: [Ingress, Egress]}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: server-from-client, namespace: bench}}
spec:
  podSelector: {{matchLabels: {{app: bench-server}}}}
  ingress:
  - from: [{{podSelector: {{matchLabels: {{app: bench-client}}}}}}]
    ports: [{{port: {ECHO_PORT}, endPort: {SINK_PORT}}}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: client-to-server, namespace: bench}}
spec:
  podSelector: {{matchLabels: {{app: bench-client}}}}
  policyTypes: [Egress]
  egress:
  - to: [{{podSelector: {{matchLabels: {{app: bench-server}}}}}}]
"#
    );
    palisade_engine::load_str("bench", &text).objects.into_iter().map(|o| o.value).collect()
}

/// Runs the whole benchmark in a fresh, ephemeral sandbox named `name`.
pub fn run(name: &str, helper: &std::path::Path, opts: Options) -> Result<Report> {
    let mut sb = Sandbox::up(name, &bench_objects(opts.cluster_policies > 0), &[], helper)?;
    sb.set_ephemeral(true);
    let client = Endpoint::Pod(ObjectKey::new("bench", "client"));
    let server = Endpoint::Pod(ObjectKey::new("bench", "server"));
    let (client_ns, _) = sb.locate(&client, IpFamily::V4)?;
    let (server_ns, server_ip) = sb.locate(&server, IpFamily::V4)?;
    let server_ip: IpAddr = server_ip.ok_or_else(|| SandboxError::Invalid("the server has no address".into()))?;
    let _sink = Killer(
        Command::new("ip")
            .args(["netns", "exec", &server_ns])
            .arg(helper)
            .args(["sandbox", "serve", "--sink", &SINK_PORT.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io("starting the sink"))?,
    );

    // The synthetic cluster: every pod a peer; one in ten local to this node (chains, map entries).
    let shape = Shape { pods: opts.pods, policies: opts.policies, seed: 42, cluster_policies: opts.cluster_policies };
    let synthetic = objects(shape);
    let local: Vec<ObjectKey> =
        synthetic.iter().filter(|o| matches!(o, Object::Pod(_))).map(Object::key).step_by(10).collect();
    sb.add_synthetic(&synthetic, &local)?;
    add_cluster_objects(&mut sb, &cluster_objects(shape))?;
    let (index, ruleset) = sb.compiled();
    // The tiers must leave the measured connection admitted (or the bench would count refused connections).
    let verdict = index
        .decide(&Connection::new(client.clone(), server.clone(), Protocol::Tcp, ECHO_PORT))
        .map_err(|e| SandboxError::Invalid(e.to_string()))?;
    if !verdict.allowed {
        return Err(SandboxError::Invalid("the synthetic policies deny the bench client -> server".into()));
    }
    let tier_count = |side: &Option<palisade_engine::verdict::Side>| side.as_ref().map_or(0, |s| s.tier_policies.len());
    let (client_egress_tier_policies, server_ingress_tier_policies) =
        (tier_count(&verdict.egress), tier_count(&verdict.ingress));
    let (rules, set_elements) = ruleset.size();
    let full_script = ruleset.render_replace();

    // Full load: replace the whole table, median of 5.
    let mut loads = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        sb.nft_apply(&full_script)?;
        loads.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let full_load_ms = median(loads);

    let node = palisade_nft::Node {
        interfaces: local.iter().cloned().enumerate().map(|(i, k)| (k, format!("x{i}"))).collect(),
        ..palisade_nft::Node::default()
    };
    let (linear_script, linear_rules) = render_linear(
        &index,
        &node,
        crate::TABLE,
        &format!("ip daddr {server_ip} tcp dport {ECHO_PORT}-{SINK_PORT} accept"),
    );
    let empty = format!("table inet {t} {{}}\ndelete table inet {t}\ntable inet {t} {{}}\n", t = crate::TABLE);

    let ms = opts.measure.as_millis().to_string();
    let measure = |sb: &Sandbox, mode: &str, port: u16| -> Result<f64> {
        let out = sb.run_in(
            &client_ns,
            &[
                "sandbox",
                "bench-client",
                mode,
                "--ip",
                &server_ip.to_string(),
                "--port",
                &port.to_string(),
                "--ms",
                &ms,
            ],
        )?;
        Ok(out.trim().parse::<f64>().unwrap_or(0.0) / opts.measure.as_secs_f64())
    };
    // Conntrack switched on and nothing else: the cost every stateful enforcer pays, so the ratio against it
    // is what Palisade's own rules cost.
    let conntrack_only = format!(
        "table inet {t} {{}}\ndelete table inet {t}\ntable inet {t} {{\n  chain forward {{\n    type filter hook forward priority filter; policy accept;\n    ct state established,related accept\n  }}\n}}\n",
        t = crate::TABLE
    );
    // Per scenario (none, conntrack only, Palisade): connections/s and Gbit/s of each round.
    let mut conn: [Vec<f64>; 3] = Default::default();
    let mut gbps: [Vec<f64>; 3] = Default::default();
    let mut lin_c = Vec::new();
    // Replacing a large table frees the old one in the background (RCU); let that finish before measuring.
    let settle = || std::thread::sleep(Duration::from_secs(2));
    // Each round measures the three tables back to back, starting with a different one each round, and ratios
    // are taken per round: measurements close in time cancel most of this VM's drift, and the order favours
    // none of them.
    for round in 0..opts.rounds.max(1) {
        for k in 0..3 {
            let scenario = (round + k) % 3;
            sb.nft_apply([&empty, &conntrack_only, &full_script][scenario])?;
            settle();
            conn[scenario].push(measure(&sb, "crr", ECHO_PORT)?);
            gbps[scenario].push(measure(&sb, "stream", SINK_PORT)? * 8.0 / 1e9);
        }
        sb.nft_apply(&linear_script)?;
        settle();
        lin_c.push(measure(&sb, "crr", ECHO_PORT)?);
    }
    sb.force_full_sync()?;

    // Update latency: one pod label change at a time, from the change to the kernel holding the new rules.
    let mut pod = synthetic
        .iter()
        .find_map(|o| match o {
            Object::Pod(p) if local.first().is_some_and(|k| Some(k.name.as_str()) == p.metadata.name.as_deref()) => {
                Some(p.clone())
            }
            _ => None,
        })
        .ok_or_else(|| SandboxError::Invalid("no local synthetic pod".into()))?;
    let mut latencies = Vec::new();
    for i in 0..opts.changes {
        let labels = pod.metadata.labels.get_or_insert_with(Default::default);
        labels.insert("app".into(), format!("app-{}", i % 40));
        let t = Instant::now();
        let report = sb.apply_synthetic(&[Object::Pod(pod.clone())])?;
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
        tracing::debug!(
            ms = latencies.last().copied().unwrap_or(0.0),
            statements = report.statements,
            conntrack = report.conntrack_deletes,
            nft_ms = report.nft_time.as_secs_f64() * 1e3,
            conntrack_ms = report.conntrack_time.as_secs_f64() * 1e3,
            "label change applied"
        );
    }

    let paired = |a: &[f64], b: &[f64]| median(a.iter().zip(b).map(|(x, y)| x / y.max(1e-9)).collect());
    let [none_c, ct_c, pal_c] = &conn;
    let [none_t, ct_t, pal_t] = &gbps;
    Ok(Report {
        pods: opts.pods,
        policies: opts.policies,
        cluster_policies: opts.cluster_policies,
        client_egress_tier_policies,
        server_ingress_tier_policies,
        local_pods: local.len(),
        rules,
        set_elements,
        linear_rules,
        baseline_conn_per_s: median(none_c.clone()),
        conntrack_conn_per_s: median(ct_c.clone()),
        palisade_conn_per_s: median(pal_c.clone()),
        linear_conn_per_s: median(lin_c.clone()),
        conn_ratio: paired(pal_c, none_c),
        conn_ratio_vs_conntrack: paired(pal_c, ct_c),
        linear_conn_ratio: paired(&lin_c, none_c),
        baseline_gbps: median(none_t.clone()),
        conntrack_gbps: median(ct_t.clone()),
        palisade_gbps: median(pal_t.clone()),
        throughput_ratio: paired(pal_t, none_t),
        throughput_ratio_vs_conntrack: paired(pal_t, ct_t),
        full_load_ms,
        update_p50_ms: percentile(latencies.clone(), 0.5),
        update_p99_ms: percentile(latencies, 0.99),
    })
}

/// Benchmarks: adds cluster-scoped objects (tier policies, Nodes) to a sandbox's cluster and syncs.
fn add_cluster_objects(sb: &mut Sandbox, objects: &[ClusterObject]) -> Result<()> {
    if objects.is_empty() {
        return Ok(());
    }
    for o in objects {
        sb.store.apply_cluster(o);
        sb.cluster.apply_cluster(o.clone());
    }
    sb.sync().map(|_| ())
}

impl Report {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(|_| json!({}))
    }
}

/// Options of `palisade bench agent`.
#[derive(Debug, Clone, Copy)]
pub struct AgentOptions {
    pub pods: usize,
    pub policies: usize,
    /// Single changes timed (pod added, label changed, policy edited, namespace relabelled, and with
    /// `cluster_policies` a ClusterNetworkPolicy's rule edited, in turn).
    pub changes: usize,
    /// ClusterNetworkPolicies (and the Nodes their `nodes` peers read) added to the synthetic cluster.
    pub cluster_policies: usize,
}

/// The kinds of change `palisade bench agent` times, in the order it makes them (the last one only with
/// ClusterNetworkPolicies in the cluster).
pub const AGENT_CHANGE_KINDS: [&str; 5] =
    ["pod added", "label changed", "policy edited", "namespace relabelled", "cluster policy edited"];

/// Change -> kernel latency of one kind of change.
#[derive(Debug, Clone, Serialize)]
pub struct KindLatency {
    pub kind: &'static str,
    pub changes: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Results of `palisade bench agent` for one cluster size.
#[derive(Debug, Clone, Serialize)]
pub struct AgentReport {
    pub pods: usize,
    pub policies: usize,
    pub cluster_policies: usize,
    pub local_pods: usize,
    pub first_sync_ms: f64,
    pub changes: usize,
    pub update_p50_ms: f64,
    pub update_p99_ms: f64,
    pub pod_added_p50_ms: f64,
    pub label_changed_p50_ms: f64,
    pub policy_edited_p50_ms: f64,
    pub namespace_relabelled_p50_ms: f64,
    /// With ClusterNetworkPolicies: one rule of one of them edited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_policy_edited_p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_policy_edited_p99_ms: Option<f64>,
    /// Per kind of change made (the first four, and the fifth with ClusterNetworkPolicies).
    pub by_kind: Vec<KindLatency>,
    pub peak_rss_mb: f64,
    /// Resident memory after the changes.
    pub rss_mb: f64,
    /// Resident memory of the agent after syncing an empty folder, the pods and namespaces alone, and the
    /// whole cluster (each a fresh start of the agent).
    pub rss_empty_mb: f64,
    pub rss_pods_mb: f64,
    pub rss_full_mb: f64,
    /// (pods-only RSS - empty RSS) / pods and (full RSS - pods-only RSS) / policies: resident memory growth,
    /// so allocator slack and what the first sync freed but the allocator kept are counted too.
    pub bytes_per_pod: f64,
    pub bytes_per_policy: f64,
    /// How long the benchmark waited at most for the first sync and for each change (scaled with the size).
    pub first_sync_limit_s: f64,
    pub change_limit_s: f64,
}

impl AgentReport {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(|_| json!({}))
    }
}

fn file_name(v: &serde_json::Value) -> String {
    let kind = v["kind"].as_str().unwrap_or("object").to_lowercase();
    let ns = v["metadata"]["namespace"].as_str().unwrap_or("");
    let name = v["metadata"]["name"].as_str().unwrap_or("");
    format!("{kind}.{ns}.{name}.json")
}

/// How long the first sync of a cluster this size may take before the benchmark gives up: 20 s at 10,000
/// pods × 1,000 policies, growing with pods × policies (what a sync quadratic in the cluster would take).
pub fn first_sync_limit(pods: usize, policies: usize) -> Duration {
    let scale = (pods as f64 / 10_000.0) * (policies as f64 / 1_000.0);
    Duration::from_secs_f64(20.0 * scale.max(1.0))
}

/// Waits until node 0's agent enforces the folder's current revision `want`, at most `limit`.
fn wait_agent(sb: &Sandbox, want: u64, limit: Duration) -> Result<()> {
    let started = Instant::now();
    loop {
        let seen = sb.agent_revisions().first().copied().flatten();
        if seen.is_some_and(|r| r >= want) {
            return Ok(());
        }
        // An agent just spawned takes a moment to enter the node's namespace (where its pid is looked for).
        let exited = started.elapsed() > Duration::from_secs(1) && sb.agent_pid(0).is_none();
        if exited || started.elapsed() > limit {
            let log = std::fs::read_to_string(sb.agent_log(0)).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            let why = if exited { "exited" } else { "timed out" };
            return Err(SandboxError::Invalid(format!(
                "the agent {why} before enforcing revision {want} (limit {:.0} s, it enforces {seen:?}); log tail:\n{}",
                limit.as_secs_f64(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A field of `/proc/PID/status` in MB (`VmRSS:`, `VmHWM:`).
fn status_mb(pid: Option<u32>, field: &str) -> f64 {
    pid.and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Restarts node 0's agent on the folder as it is (a new revision), waits at most `limit` for it to enforce
/// it; returns how long that took.
fn restart_timed(sb: &mut Sandbox, limit: Duration) -> Result<Duration> {
    sb.kill_agent(0)?;
    let want = sb.bump_revision()?;
    // The killed agent's metrics port can stay bound for a moment after it left the namespace's process
    // list: a start that fails on it is retried (and not timed).
    for _ in 0..50 {
        let t = Instant::now();
        sb.start_agent(0)?;
        match wait_agent(sb, want, limit) {
            Ok(()) => return Ok(t.elapsed()),
            Err(e) if e.to_string().contains("Address already in use") => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e),
        }
    }
    Err(SandboxError::Invalid("the agent's metrics port stayed in use".into()))
}

/// The node agent with the folder source on a one-node sandbox: its memory on an empty folder, on the pods
/// alone and on the whole synthetic cluster (each a fresh start; the last one timed as the first full sync),
/// then the latency from a single change written to the folder to the agent reporting it enforced, and the
/// agent's peak memory.
pub fn run_agent(name: &str, helper: &std::path::Path, opts: AgentOptions) -> Result<AgentReport> {
    let mut sb = Sandbox::up_with(name, &[], &[], helper, Some(1))?;
    sb.set_ephemeral(true);
    let first_limit = first_sync_limit(opts.pods, opts.policies);
    // The agent the sandbox started holds an empty folder.
    let want = sb.bump_revision()?;
    wait_agent(&sb, want, first_limit)?;
    let rss_empty_mb = status_mb(sb.agent_pid(0), "VmRSS:");

    let manifests = palisade_engine::synth::manifests(Shape {
        pods: opts.pods,
        policies: opts.policies,
        seed: 42,
        cluster_policies: opts.cluster_policies,
    });
    let node = crate::node_name(0);
    let local_pods = manifests.iter().filter(|v| v["spec"]["nodeName"].as_str() == Some(node.as_str())).count();
    // The pods, namespaces (and Nodes) alone, then the whole cluster, as after a node reboot.
    let (all_policies, rest): (Vec<&serde_json::Value>, Vec<&serde_json::Value>) =
        manifests.iter().partition(|v| v["kind"] == "NetworkPolicy" || v["kind"] == "ClusterNetworkPolicy");
    let (cluster_policies, policies): (Vec<&serde_json::Value>, Vec<&serde_json::Value>) =
        all_policies.iter().partition(|v| v["kind"] == "ClusterNetworkPolicy");
    for v in &rest {
        sb.write_manifest(&file_name(v), &v.to_string())?;
    }
    restart_timed(&mut sb, first_limit)?;
    let rss_pods_mb = status_mb(sb.agent_pid(0), "VmRSS:");
    for v in &all_policies {
        sb.write_manifest(&file_name(v), &v.to_string())?;
    }
    let first_sync = restart_timed(&mut sb, first_limit)?;
    let first_sync_ms = first_sync.as_secs_f64() * 1e3;
    let rss_full_mb = status_mb(sb.agent_pid(0), "VmRSS:");
    // A single change may take at most ten first syncs (a namespace relabelled rebuilds the index).
    let change_limit = (first_sync * 10).max(Duration::from_secs(20));

    let local: Vec<&serde_json::Value> =
        manifests.iter().filter(|v| v["spec"]["nodeName"].as_str() == Some(node.as_str())).collect();
    let namespaces: Vec<&serde_json::Value> = manifests.iter().filter(|v| v["kind"] == "Namespace").collect();
    let mut all = Vec::new();
    let kinds = if cluster_policies.is_empty() { AGENT_CHANGE_KINDS.len() - 1 } else { AGENT_CHANGE_KINDS.len() };
    let mut by_kind: Vec<Vec<f64>> = vec![Vec::new(); kinds];
    for i in 0..opts.changes {
        let kind = i % kinds;
        let change = match kind {
            0 => {
                // A new pod scheduled on this node.
                let mut v = local[i % local.len().max(1)].clone();
                let ip = format!("10.99.{}.{}", (i / 250) % 250, i % 250 + 1);
                v["metadata"]["name"] = format!("new-{i}").into();
                v["status"]["podIP"] = ip.clone().into();
                v["status"]["podIPs"] = json!([{ "ip": ip }]);
                v
            }
            1 => {
                let mut v = local[(i * 7) % local.len().max(1)].clone();
                v["metadata"]["labels"]["app"] = format!("app-{}", i % 40).into();
                v
            }
            2 => {
                let mut v = policies[(i * 13) % policies.len().max(1)].clone();
                v["metadata"]["labels"] = json!({ "edit": i.to_string() });
                v["spec"]["podSelector"] = json!({ "matchLabels": { "app": format!("app-{}", i % 40) } });
                v
            }
            3 => {
                // A namespace moved to another environment: what namespaceSelector peers match changes.
                let mut v = namespaces[(i * 11) % namespaces.len().max(1)].clone();
                let env = ["prod", "staging", "dev"][(i / kinds) % 3];
                v["metadata"]["labels"]["env"] = env.into();
                v["metadata"]["labels"]["edit"] = i.to_string().into();
                v
            }
            _ => {
                // One rule of a ClusterNetworkPolicy now admits, denies or passes another port.
                let mut v = cluster_policies[(i * 17) % cluster_policies.len()].clone();
                let direction = if v["spec"]["ingress"].is_array() { "ingress" } else { "egress" };
                v["spec"][direction][0]["protocols"] =
                    json!([{ "tcp": { "destinationPort": { "number": 1024 + i } } }]);
                v["metadata"]["labels"] = json!({ "edit": i.to_string() });
                v
            }
        };
        let t = Instant::now();
        sb.write_manifest(&file_name(&change), &change.to_string())?;
        let want = sb.bump_revision()?;
        wait_agent(&sb, want, change_limit)?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        all.push(ms);
        by_kind[kind].push(ms);
        // Single changes, not a burst: let the agent go idle between them.
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = sb.agent_pid(0);
    let (peak_rss_mb, rss_mb) = (status_mb(pid, "VmHWM:"), status_mb(pid, "VmRSS:"));
    if let Some(keep) = std::env::var_os("PALISADE_BENCH_KEEP_LOG") {
        let _ = std::fs::copy(sb.agent_log(0), keep);
    }
    let per = |grew_mb: f64, n: usize| if n == 0 { 0.0 } else { grew_mb * 1024.0 * 1024.0 / n as f64 };
    let by_kind: Vec<KindLatency> = AGENT_CHANGE_KINDS
        .iter()
        .zip(by_kind)
        .filter(|(_, v)| !v.is_empty())
        .map(|(kind, v)| KindLatency {
            kind,
            changes: v.len(),
            p50_ms: percentile(v.clone(), 0.5),
            p99_ms: percentile(v, 0.99),
        })
        .collect();
    let kind = |k: usize| by_kind.iter().find(|x| x.kind == AGENT_CHANGE_KINDS[k]);
    let p50 = |k: usize| kind(k).map_or(0.0, |k| k.p50_ms);
    let cluster_policy_edited = kind(4);
    Ok(AgentReport {
        pods: opts.pods,
        policies: opts.policies,
        cluster_policies: cluster_policies.len(),
        local_pods,
        first_sync_ms,
        changes: opts.changes,
        update_p50_ms: percentile(all.clone(), 0.5),
        update_p99_ms: percentile(all, 0.99),
        pod_added_p50_ms: p50(0),
        label_changed_p50_ms: p50(1),
        policy_edited_p50_ms: p50(2),
        namespace_relabelled_p50_ms: p50(3),
        cluster_policy_edited_p50_ms: cluster_policy_edited.map(|k| k.p50_ms),
        cluster_policy_edited_p99_ms: cluster_policy_edited.map(|k| k.p99_ms),
        by_kind,
        peak_rss_mb,
        rss_mb,
        rss_empty_mb,
        rss_pods_mb,
        rss_full_mb,
        bytes_per_pod: per(rss_pods_mb - rss_empty_mb, opts.pods),
        bytes_per_policy: per(rss_full_mb - rss_pods_mb, opts.policies + cluster_policies.len()),
        first_sync_limit_s: first_limit.as_secs_f64(),
        change_limit_s: change_limit.as_secs_f64(),
    })
}
