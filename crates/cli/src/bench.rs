//! `palisade bench`: timings on synthetic clusters, compared with a baseline in the same run.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::Subcommand;
use palisade_engine::synth::{Rng, Shape, cluster};
use palisade_engine::{Connection, Endpoint, Index, IpFamily, Protocol, reference};
use serde_json::json;

use crate::commands::TextJson;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Time the workload connectivity list on a synthetic cluster (every pod its own workload).
    List {
        #[arg(long, default_value_t = 2000)]
        workloads: usize,
        #[arg(long, default_value_t = 500)]
        policies: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(short = 'o', long, value_enum, default_value = "text")]
        output: TextJson,
    },
    /// Time `diff` of two versions of a synthetic cluster (the second: every 20th policy's ports moved, 1 % of
    /// the workloads removed, 2 % added) and exposure analysis of the second, each against one `list` of the
    /// second, in the same run.
    Diff {
        #[arg(long, default_value_t = 2000)]
        workloads: usize,
        #[arg(long, default_value_t = 500)]
        policies: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(short = 'o', long, value_enum, default_value = "text")]
        output: TextJson,
    },
    /// Per-packet cost and update latency of the nftables dataplane in a sandbox (needs root and nft):
    /// no ruleset vs the Palisade ruleset vs the same policies as linear rules.
    Dataplane {
        #[arg(long, default_value_t = 10000)]
        pods: usize,
        #[arg(long, default_value_t = 1000)]
        policies: usize,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Seconds per traffic measurement.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Single label changes timed for the update latency (at least 50 for a meaningful p99).
        #[arg(long, default_value_t = 60)]
        changes: usize,
        /// Add this many ClusterNetworkPolicies (Admin and Baseline tiers): the ruleset is compiled with the
        /// tiers and the bench pods' namespace is labelled so that tier policies select them.
        #[arg(long, default_value_t = 0)]
        cluster_policies: usize,
        #[arg(short = 'o', long, value_enum, default_value = "text")]
        output: TextJson,
    },
    /// The node agent with the folder source on a sandbox node (needs root and nft): time to the first full
    /// sync, change -> kernel latency, peak memory.
    Agent {
        #[arg(long, default_value_t = 10000)]
        pods: usize,
        #[arg(long, default_value_t = 1000)]
        policies: usize,
        /// Single changes timed, in turn: pod added, label changed, policy edited, namespace relabelled, and
        /// with --cluster-policies a ClusterNetworkPolicy's rule edited (at least 100).
        #[arg(long, default_value_t = 120)]
        changes: usize,
        /// Add this many ClusterNetworkPolicies (Admin and Baseline tiers, with the Nodes their `nodes` peers
        /// read) to the synthetic cluster.
        #[arg(long, default_value_t = 0)]
        cluster_policies: usize,
        /// Cluster sizes run one after the other in this process, each `PODSxPOLICIES` in its own sandbox
        /// (e.g. `10000x1000,30000x3000,100000x10000`); replaces --pods and --policies.
        #[arg(long, value_delimiter = ',', value_parser = parse_size)]
        sizes: Vec<(usize, usize)>,
        #[arg(short = 'o', long, value_enum, default_value = "text")]
        output: TextJson,
    },
    /// The local cluster (needs root, nft and kubectl): `sandbox up` to API ready, the tutorial app applied
    /// with kubectl to every pod Ready, a Deployment scaled 0 -> N Ready, `kubectl get pods -A` with
    /// `--listed` pods, a policy written through the API -> enforced on every node, control-plane peak RSS.
    Sandbox {
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Replicas of the Deployment scaled from 0.
        #[arg(long, default_value_t = 100)]
        scale: usize,
        /// Pods in the cluster for `kubectl get pods` and the policy timings (the rest are pods of a completed
        /// Job: listed, without namespaces).
        #[arg(long, default_value_t = 1000)]
        listed: usize,
        /// Policy writes timed.
        #[arg(long, default_value_t = 60)]
        changes: usize,
        #[arg(short = 'o', long, value_enum, default_value = "text")]
        output: TextJson,
    },
    /// Time the full connectivity matrix with the engine (and the reference evaluator with --reference).
    #[command(alias = "matrix")]
    Engine {
        #[arg(long, default_value_t = 1000)]
        pods: usize,
        #[arg(long, default_value_t = 100)]
        policies: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also time the spec-literal reference evaluator over every pair.
        #[arg(long)]
        reference: bool,
        /// Add this many ClusterNetworkPolicies (Admin and Baseline tiers) and time the full matrix with them
        /// against the same cluster without them, in the same run, round after round.
        #[arg(long, default_value_t = 0)]
        cluster_policies: usize,
        /// Rounds of the comparison with --cluster-policies (medians are reported).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        #[arg(short = 'o', long, value_enum, default_value = "text")]
        output: TextJson,
    },
}

pub fn run(cmd: BenchCommand) -> Result<ExitCode> {
    match cmd {
        BenchCommand::List { workloads, policies, seed, output } => {
            let mut loaded = palisade_engine::Loaded::default();
            for (i, v) in
                palisade_engine::synth::manifests(Shape { pods: workloads, policies, seed, cluster_policies: 0 })
                    .into_iter()
                    .enumerate()
            {
                let origin = palisade_engine::Origin { source: "synthetic".into(), document: i + 1, item: None };
                palisade_engine::load::load_value(origin, v, &mut loaded);
            }
            let t = Instant::now();
            let model = palisade_analyze::Model::from_loaded(&loaded);
            let conns = palisade_analyze::connlist(&model);
            let text = palisade_analyze::render_txt(&conns);
            let ms = t.elapsed().as_secs_f64() * 1e3;
            let mut out = std::io::stdout().lock();
            match output {
                TextJson::Json => writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({"workloads": model.workloads.len(), "policies": policies, "connections": conns.len(), "bytes": text.len(), "list_ms": ms})
                    )?
                )?,
                TextJson::Text => writeln!(
                    out,
                    "{} workloads, {policies} policies: {} connections listed ({} bytes of txt) in {ms:.0} ms",
                    model.workloads.len(),
                    conns.len(),
                    text.len()
                )?,
            }
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Diff { workloads, policies, seed, output } => bench_diff(workloads, policies, seed, output),
        BenchCommand::Agent { pods, policies, changes, cluster_policies, sizes, output } => {
            let sizes = if sizes.is_empty() { vec![(pods, policies)] } else { sizes };
            bench_agent(&sizes, changes, cluster_policies, output)
        }
        BenchCommand::Dataplane { pods, policies, rounds, seconds, changes, cluster_policies, output } => {
            let opts = palisade_sandbox::bench::Options {
                pods,
                policies,
                rounds,
                measure: std::time::Duration::from_secs_f64(seconds.clamp(0.2, 30.0)),
                changes,
                cluster_policies,
            };
            let name = format!("bench{}", std::process::id() % 100_000);
            let r = palisade_sandbox::bench::run(&name, &crate::sandbox::helper()?, opts)?;
            let mut out = std::io::stdout().lock();
            match output {
                TextJson::Json => writeln!(out, "{}", serde_json::to_string_pretty(&r.to_json())?)?,
                TextJson::Text => {
                    writeln!(
                        out,
                        "cluster: {} pods ({} local), {} policies -> {} rules, {} set/map elements; linear: {} rules",
                        r.pods, r.local_pods, r.policies, r.rules, r.set_elements, r.linear_rules
                    )?;
                    if r.cluster_policies > 0 {
                        writeln!(
                            out,
                            "tiers: {} ClusterNetworkPolicies; {} select the client's egress, {} the server's ingress",
                            r.cluster_policies, r.client_egress_tier_policies, r.server_ingress_tier_policies
                        )?;
                    }
                    writeln!(
                        out,
                        "new TCP connections/s: none {:.0}, conntrack only {:.0}, palisade {:.0} ({:.3}x none, {:.3}x conntrack only), linear {:.0} ({:.3}x)",
                        r.baseline_conn_per_s,
                        r.conntrack_conn_per_s,
                        r.palisade_conn_per_s,
                        r.conn_ratio,
                        r.conn_ratio_vs_conntrack,
                        r.linear_conn_per_s,
                        r.linear_conn_ratio
                    )?;
                    writeln!(
                        out,
                        "bulk TCP Gbit/s:       none {:.2}, conntrack only {:.2}, palisade {:.2} ({:.3}x none, {:.3}x conntrack only)",
                        r.baseline_gbps,
                        r.conntrack_gbps,
                        r.palisade_gbps,
                        r.throughput_ratio,
                        r.throughput_ratio_vs_conntrack
                    )?;
                    writeln!(out, "full ruleset load:     {:.0} ms (median of 5)", r.full_load_ms)?;
                    writeln!(
                        out,
                        "label change -> kernel: p50 {:.1} ms, p99 {:.1} ms",
                        r.update_p50_ms, r.update_p99_ms
                    )?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Sandbox { nodes, scale, listed, changes, output } => {
            let r = crate::bench_sandbox::run(nodes, scale, listed, changes)?;
            let mut out = std::io::stdout().lock();
            match output {
                TextJson::Json => writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?,
                TextJson::Text => {
                    for (k, v) in r.as_object().into_iter().flatten() {
                        writeln!(out, "{k:<28} {v}")?;
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        BenchCommand::Engine { pods, policies, seed, reference, cluster_policies: 0, output, .. } => {
            engine(pods, policies, seed, reference, output)
        }
        BenchCommand::Engine { pods, policies, seed, cluster_policies, rounds, output, .. } => {
            engine_tiers(Shape { pods, policies, seed, cluster_policies }, rounds, output)
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn engine(pods: usize, policies: usize, seed: u64, with_reference: bool, output: TextJson) -> Result<ExitCode> {
    let c = cluster(Shape { pods, policies, seed, cluster_policies: 0 });
    let t = Instant::now();
    let index = Index::build(&c);
    let build_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let m = index.matrix(Protocol::Tcp, 8080, IpFamily::V4);
    let matrix_ms = t.elapsed().as_secs_f64() * 1e3;
    let engine_ms = build_ms + matrix_ms;
    let n = index.pods().len();
    let pairs = n * n;
    let allowed = m.allowed_pairs();

    // One check after loading: median over random pod pairs.
    let mut rng = Rng::new(seed ^ 0x5eed);
    let keys: Vec<_> = index.pods().map(|p| p.key.clone()).collect();
    let mut samples = Vec::new();
    for _ in 0..2000 {
        let a = Endpoint::Pod(keys[rng.below(keys.len())].clone());
        let b = Endpoint::Pod(keys[rng.below(keys.len())].clone());
        let conn = Connection::new(a, b, Protocol::Tcp, 8080);
        let t = Instant::now();
        let v = index.decide(&conn)?;
        samples.push(t.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(v);
    }
    let check_us = median(samples);

    let reference_ms = with_reference.then(|| {
        let t = Instant::now();
        let mut count = 0usize;
        for a in &keys {
            for b in &keys {
                let conn = Connection::new(Endpoint::Pod(a.clone()), Endpoint::Pod(b.clone()), Protocol::Tcp, 8080);
                if reference::allowed(&c, &conn) == Some(true) {
                    count += 1;
                }
            }
        }
        (t.elapsed().as_secs_f64() * 1e3, count)
    });
    if let Some((_, count)) = reference_ms
        && count != allowed
    {
        anyhow::bail!("the engine and the reference disagree: {allowed} vs {count} allowed pairs");
    }
    let speedup = reference_ms.map(|(r, _)| r / engine_ms.max(1e-9));
    let mut out = std::io::stdout().lock();
    match output {
        TextJson::Json => {
            let v = json!({
                "pods": n, "policies": policies, "pairs": pairs, "allowed_pairs": allowed,
                "engine_ms": engine_ms, "build_ms": build_ms, "matrix_ms": matrix_ms,
                "reference_ms": reference_ms.map(|r| r.0), "speedup": speedup,
                "check_median_us": check_us,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        TextJson::Text => {
            writeln!(
                out,
                "cluster: {n} pods, {policies} policies (seed {seed}); {pairs} pairs, {allowed} allowed on TCP/8080"
            )?;
            writeln!(
                out,
                "engine:    {engine_ms:.1} ms (index {build_ms:.1} ms + matrix {matrix_ms:.1} ms), {:.0} pairs/s",
                pairs as f64 / (engine_ms / 1e3)
            )?;
            writeln!(out, "check:     {check_us:.2} µs median over 2000 random pairs")?;
            if let (Some((r, _)), Some(s)) = (reference_ms, speedup) {
                writeln!(out, "reference: {r:.1} ms, {:.0} pairs/s", pairs as f64 / (r / 1e3))?;
                writeln!(out, "speedup:   {s:.1}x")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Medians of `samples` random pod-to-pod TCP/8080 checks (`Index::decide`), in µs per call.
fn check_median_us(index: &Index, seed: u64, samples: usize) -> Result<f64> {
    let mut rng = Rng::new(seed ^ 0x5eed);
    let keys: Vec<_> = index.pods().map(|p| p.key.clone()).collect();
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let a = Endpoint::Pod(keys[rng.below(keys.len())].clone());
        let b = Endpoint::Pod(keys[rng.below(keys.len())].clone());
        let conn = Connection::new(a, b, Protocol::Tcp, 8080);
        let t = Instant::now();
        let v = index.decide(&conn)?;
        times.push(t.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(v);
    }
    Ok(median(times))
}

/// One full matrix from the cluster: the index built, then the TCP/8080 matrix; (build ms, matrix ms, allowed).
fn full_matrix(c: &palisade_engine::Cluster) -> (f64, f64, usize) {
    let t = Instant::now();
    let index = Index::build(c);
    let build_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let m = index.matrix(Protocol::Tcp, 8080, IpFamily::V4);
    let matrix_ms = t.elapsed().as_secs_f64() * 1e3;
    let allowed = m.allowed_pairs();
    drop(std::hint::black_box((m, index)));
    (build_ms, matrix_ms, allowed)
}

/// `bench engine --cluster-policies N`: the full matrix (index + matrix) of the synthetic cluster with its N
/// ClusterNetworkPolicies against the same cluster without them, both in every round (in alternating order),
/// and `check` on both; ratios are medians of the per-round ratios.
fn engine_tiers(shape: Shape, rounds: usize, output: TextJson) -> Result<ExitCode> {
    let tiered = cluster(shape);
    let mut plain = tiered.clone();
    let cluster_objects: Vec<_> = tiered.cluster_objects().map(|o| (o.kind(), o.name().to_owned())).collect();
    for (kind, name) in &cluster_objects {
        plain.delete_cluster(*kind, name);
    }
    let tier_policies = tiered.tier_policies().len();
    // [NetworkPolicy only, tiered] per round: (build, matrix, total).
    let mut runs: [Vec<(f64, f64, f64)>; 2] = Default::default();
    let mut allowed = [0usize; 2];
    for round in 0..rounds.max(1) {
        for k in 0..2 {
            let which = (round + k) % 2;
            let (b, m, a) = full_matrix(if which == 0 { &plain } else { &tiered });
            runs[which].push((b, m, b + m));
            allowed[which] = a;
        }
    }
    let (plain_index, tiered_index) = (Index::build(&plain), Index::build(&tiered));
    let n = tiered_index.pods().len();
    let samples = 2000;
    let check_plain_us = check_median_us(&plain_index, shape.seed, samples)?;
    let check_tiered_us = check_median_us(&tiered_index, shape.seed, samples)?;

    type Part = fn(&(f64, f64, f64)) -> f64;
    let col = |which: usize, f: Part| median(runs[which].iter().map(f).collect());
    let ratio = |f: Part| median(runs[1].iter().zip(&runs[0]).map(|(t, p)| f(t) / f(p).max(1e-9)).collect());
    let (total, build, matrix): (Part, Part, Part) = (|r| r.2, |r| r.0, |r| r.1);
    let (plain_ms, tiered_ms, full_ratio) = (col(0, total), col(1, total), ratio(total));
    let (plain_build, tiered_build, build_ratio) = (col(0, build), col(1, build), ratio(build));
    let (plain_matrix, tiered_matrix, matrix_ratio) = (col(0, matrix), col(1, matrix), ratio(matrix));
    let mut out = std::io::stdout().lock();
    match output {
        TextJson::Json => {
            let v = json!({
                "pods": n, "policies": shape.policies, "cluster_policies": tier_policies, "seed": shape.seed,
                "rounds": runs[0].len(), "pairs": n * n,
                "allowed_pairs_network_policy_only": allowed[0], "allowed_pairs_tiered": allowed[1],
                "network_policy_only_ms": plain_ms, "tiered_ms": tiered_ms, "full_matrix_ratio": full_ratio,
                "network_policy_only_build_ms": plain_build, "tiered_build_ms": tiered_build, "build_ratio": build_ratio,
                "network_policy_only_matrix_ms": plain_matrix, "tiered_matrix_ms": tiered_matrix,
                "matrix_ratio": matrix_ratio,
                "check_median_us_network_policy_only": check_plain_us, "check_median_us": check_tiered_us,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        TextJson::Text => {
            writeln!(
                out,
                "cluster: {n} pods, {} policies + {tier_policies} ClusterNetworkPolicies (seed {}); {} pairs on TCP/8080, {} allowed (NetworkPolicy only: {})",
                shape.policies,
                shape.seed,
                n * n,
                allowed[1],
                allowed[0]
            )?;
            writeln!(out, "full matrix (index + matrix), medians over {} rounds:", runs[0].len())?;
            writeln!(
                out,
                "  NetworkPolicy only: {plain_ms:.1} ms (index {plain_build:.1} + matrix {plain_matrix:.1})"
            )?;
            writeln!(
                out,
                "  with the tiers:     {tiered_ms:.1} ms (index {tiered_build:.1} + matrix {tiered_matrix:.1})"
            )?;
            writeln!(
                out,
                "  ratio:              {full_ratio:.2}x (index {build_ratio:.2}x, matrix {matrix_ratio:.2}x; medians of per-round ratios)"
            )?;
            writeln!(
                out,
                "check:     {check_tiered_us:.2} µs median over {samples} random pairs with the tiers ({check_plain_us:.2} µs NetworkPolicy only)"
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A second version of synthetic manifests: every 20th policy's numeric ports moved by one, every 100th pod
/// removed, every 50th pod copied under a new name.
fn next_version(docs: &[serde_json::Value]) -> Vec<serde_json::Value> {
    fn bump_ports(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    if k == "port"
                        && let Some(n) = x.as_u64()
                    {
                        *x = json!(n % 65535 + 1);
                    } else {
                        bump_ports(x);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(bump_ports),
            _ => {}
        }
    }
    let (mut policy, mut pod) = (0usize, 0usize);
    let mut out = Vec::new();
    for d in docs {
        match d["kind"].as_str() {
            Some("NetworkPolicy") => {
                let mut d = d.clone();
                if policy % 20 == 0 {
                    bump_ports(&mut d["spec"]);
                }
                policy += 1;
                out.push(d);
            }
            Some("Pod") => {
                pod += 1;
                if pod % 100 == 0 {
                    continue;
                }
                if pod % 50 == 1 {
                    let mut copy = d.clone();
                    copy["metadata"]["name"] =
                        json!(format!("{}-new", d["metadata"]["name"].as_str().unwrap_or("pod")));
                    out.push(copy);
                }
                out.push(d.clone());
            }
            _ => out.push(d.clone()),
        }
    }
    out
}

fn loaded_of(docs: Vec<serde_json::Value>) -> palisade_engine::Loaded {
    let mut loaded = palisade_engine::Loaded::default();
    for (i, v) in docs.into_iter().enumerate() {
        let origin = palisade_engine::Origin { source: "synthetic".into(), document: i + 1, item: None };
        palisade_engine::load::load_value(origin, v, &mut loaded);
    }
    loaded
}

fn bench_diff(workloads: usize, policies: usize, seed: u64, output: TextJson) -> Result<ExitCode> {
    use palisade_analyze::exposure::{Options, list, render_txt};
    let old_docs = palisade_engine::synth::manifests(Shape { pods: workloads, policies, seed, cluster_policies: 0 });
    let new_docs = next_version(&old_docs);
    let (old, new) = (loaded_of(old_docs), loaded_of(new_docs));

    let t = Instant::now();
    let model = palisade_analyze::Model::from_loaded(&new);
    let conns = palisade_analyze::connlist(&model);
    let text = palisade_analyze::render_txt(&conns);
    let list_ms = t.elapsed().as_secs_f64() * 1e3;
    drop((conns, text));

    let t = Instant::now();
    let (a, b) = (palisade_analyze::Model::from_loaded(&old), palisade_analyze::Model::from_loaded(&new));
    let changes = palisade_analyze::diff::diff_models(&a, &b);
    let diff_text = palisade_analyze::diff::render_text(&changes);
    let diff_ms = t.elapsed().as_secs_f64() * 1e3;

    let t = Instant::now();
    let model = palisade_analyze::Model::from_loaded(&new);
    let listing = list(&model, &Options { exposure: true, ..Options::default() });
    let exposure_text = render_txt(&listing);
    let exposure_ms = t.elapsed().as_secs_f64() * 1e3;
    let exposure_lines = listing.exposure.as_ref().map_or(0, |e| e.egress.len() + e.ingress.len());

    let (diff_ratio, exposure_ratio) = (diff_ms / list_ms, exposure_ms / list_ms);
    let mut out = std::io::stdout().lock();
    match output {
        TextJson::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&json!({
                "workloads": [a.workloads.len(), b.workloads.len()], "policies": policies,
                "changes": changes.len(), "diff_bytes": diff_text.len(), "exposure_lines": exposure_lines,
                "exposure_bytes": exposure_text.len(), "list_ms": list_ms, "diff_ms": diff_ms,
                "exposure_ms": exposure_ms, "diff_ratio": diff_ratio, "exposure_ratio": exposure_ratio,
            }))?
        )?,
        TextJson::Text => {
            writeln!(out, "versions: {} and {} workloads, {policies} policies", a.workloads.len(), b.workloads.len())?;
            writeln!(out, "list (new version):  {list_ms:.0} ms")?;
            writeln!(out, "diff:                {diff_ms:.0} ms ({} changes): {diff_ratio:.2}x list", changes.len())?;
            writeln!(
                out,
                "exposure:            {exposure_ms:.0} ms ({exposure_lines} exposure lines): {exposure_ratio:.2}x list"
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `PODSxPOLICIES`, e.g. `30000x3000`.
fn parse_size(s: &str) -> std::result::Result<(usize, usize), String> {
    let (pods, policies) = s.split_once(['x', 'X']).ok_or_else(|| format!("`{s}`: expected PODSxPOLICIES"))?;
    let n = |v: &str| v.trim().parse::<usize>().map_err(|e| format!("`{s}`: {e}"));
    Ok((n(pods)?, n(policies)?))
}

/// `palisade bench agent` over one or more sizes: each size in a fresh sandbox, its results printed as soon as
/// it is done; a size that fails is reported and the next one still runs.
fn bench_agent(
    sizes: &[(usize, usize)],
    changes: usize,
    cluster_policies: usize,
    output: TextJson,
) -> Result<ExitCode> {
    use palisade_sandbox::bench::{AgentOptions, AgentReport, run_agent};
    let helper = crate::sandbox::helper()?;
    let mut out = std::io::stdout().lock();
    let mut reports: Vec<std::result::Result<AgentReport, String>> = Vec::new();
    for (i, &(pods, policies)) in sizes.iter().enumerate() {
        let name = format!("bagent{}{i}", std::process::id() % 10_000);
        let t = Instant::now();
        let r = run_agent(&name, &helper, AgentOptions { pods, policies, changes, cluster_policies })
            .map_err(|e| e.to_string());
        let secs = t.elapsed().as_secs_f64();
        if output == TextJson::Text {
            match &r {
                Ok(r) => write_agent_report(&mut out, r, secs)?,
                Err(e) => writeln!(out, "{pods} pods x {policies} policies: failed after {secs:.0} s: {e}")?,
            }
            out.flush()?;
        }
        reports.push(r);
    }
    match output {
        TextJson::Json => {
            let v: Vec<serde_json::Value> = reports
                .iter()
                .zip(sizes)
                .map(|(r, (pods, policies))| match r {
                    Ok(r) => r.to_json(),
                    Err(e) => json!({"pods": pods, "policies": policies, "error": e}),
                })
                .collect();
            let v = if v.len() == 1 { v.into_iter().next().unwrap_or_default() } else { json!(v) };
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        TextJson::Text if sizes.len() > 1 => {
            writeln!(
                out,
                "\n| cluster (local pods) | first sync | change -> kernel p50 / p99 | pod added | label changed | policy edited | namespace relabelled |{} peak RSS | bytes/pod | bytes/policy |",
                if cluster_policies > 0 { " cluster policy edited |" } else { "" }
            )?;
            writeln!(
                out,
                "|---|---|---|---|---|---|---|---|---|---|{}",
                if cluster_policies > 0 { "---|" } else { "" }
            )?;
            for (r, (pods, policies)) in reports.iter().zip(sizes) {
                match r {
                    Ok(r) => {
                        let k = |i: usize| {
                            r.by_kind
                                .iter()
                                .find(|k| k.kind == palisade_sandbox::bench::AGENT_CHANGE_KINDS[i])
                                .map_or("-".to_owned(), |k| format!("{:.1} / {:.1}", k.p50_ms, k.p99_ms))
                        };
                        let tiers = if r.cluster_policies > 0 {
                            format!(" + {} CNPs", r.cluster_policies)
                        } else {
                            String::new()
                        };
                        let cnp_column = if cluster_policies > 0 { format!(" {} |", k(4)) } else { String::new() };
                        writeln!(
                            out,
                            "| {} pods x {} policies{tiers} ({}) | {:.2} s | {:.1} / {:.1} ms | {} | {} | {} | {} |{cnp_column} {:.0} MB | {:.0} | {:.0} |",
                            r.pods,
                            r.policies,
                            r.local_pods,
                            r.first_sync_ms / 1e3,
                            r.update_p50_ms,
                            r.update_p99_ms,
                            k(0),
                            k(1),
                            k(2),
                            k(3),
                            r.peak_rss_mb,
                            r.bytes_per_pod,
                            r.bytes_per_policy
                        )?;
                    }
                    Err(e) => writeln!(out, "| {pods} pods x {policies} policies | failed: {e} |")?,
                }
            }
        }
        TextJson::Text => {}
    }
    Ok(if reports.iter().all(|r| r.is_ok()) { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn write_agent_report(out: &mut impl Write, r: &palisade_sandbox::bench::AgentReport, secs: f64) -> Result<()> {
    writeln!(
        out,
        "cluster: {} pods ({} on this node), {} policies, {} ClusterNetworkPolicies ({secs:.0} s)",
        r.pods, r.local_pods, r.policies, r.cluster_policies
    )?;
    writeln!(out, "first full sync:       {:.0} ms (limit {:.0} s)", r.first_sync_ms, r.first_sync_limit_s)?;
    writeln!(
        out,
        "change -> kernel:      p50 {:.1} ms, p99 {:.1} ms over {} changes (limit {:.0} s each)",
        r.update_p50_ms, r.update_p99_ms, r.changes, r.change_limit_s
    )?;
    for k in &r.by_kind {
        writeln!(out, "  {:<21} p50 {:.1} ms, p99 {:.1} ms ({} changes)", k.kind, k.p50_ms, k.p99_ms, k.changes)?;
    }
    writeln!(out, "agent RSS:             peak {:.1} MB, after the changes {:.1} MB", r.peak_rss_mb, r.rss_mb)?;
    writeln!(
        out,
        "agent RSS after sync:  empty {:.1} MB, pods alone {:.1} MB, whole cluster {:.1} MB: {:.0} bytes per pod, {:.0} bytes per policy (RSS growth)",
        r.rss_empty_mb, r.rss_pods_mb, r.rss_full_mb, r.bytes_per_pod, r.bytes_per_policy
    )?;
    Ok(())
}
