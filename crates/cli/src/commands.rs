//! Argument parsing and the engine-backed commands.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use palisade_conformance::engine::EngineBackend;
use palisade_conformance::{
    Backend, Case, ClusterSource, Outcome, parse_cluster, parse_cluster_objects, run_case_with,
};
use palisade_engine::cnp::ClusterObject;
use palisade_engine::explain::explain_policy;
use palisade_engine::{Connection, Endpoint, Index, IpFamily, Object, ObjectKey, Protocol};
use serde_json::json;

use crate::input;
use crate::render;

#[derive(Debug, Parser)]
#[command(name = "palisade", version, about = "Kubernetes NetworkPolicy made real and visible")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Family {
    #[value(name = "IPv4", alias = "ipv4", alias = "4")]
    V4,
    #[value(name = "IPv6", alias = "ipv6", alias = "6")]
    V6,
}

impl From<Family> for IpFamily {
    fn from(f: Family) -> Self {
        match f {
            Family::V4 => IpFamily::V4,
            Family::V6 => IpFamily::V6,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum TextJson {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum MatrixFormat {
    Text,
    Json,
    Csv,
    Dot,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ListFormat {
    Txt,
    Json,
    Dot,
    Html,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LintFormat {
    Text,
    Json,
    Sarif,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum DiffFormat {
    Text,
    /// netpol-analyzer's `diff -o txt`, byte for byte
    Txt,
    Json,
    Markdown,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum GetFormat {
    Wide,
    Json,
    Yaml,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Resource {
    #[value(alias = "networkpolicy", alias = "networkpolicies")]
    Netpol,
    #[value(alias = "pod", alias = "po")]
    Pods,
    #[value(alias = "namespace", alias = "namespaces")]
    Ns,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate manifests as the apiserver would: exit 0 valid, 1 invalid.
    Validate {
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
    },
    /// Decide one connection and explain why: exit 0 allowed, 1 denied, 2 error (a document that could not be
    /// read included).
    Check {
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// NAMESPACE/POD or an IP address
        #[arg(long)]
        from: String,
        /// NAMESPACE/POD or an IP address
        #[arg(long)]
        to: String,
        #[arg(long)]
        port: u16,
        #[arg(long, default_value = "TCP", value_parser = parse_protocol)]
        protocol: Protocol,
        #[arg(long, value_enum)]
        ip_family: Option<Family>,
        #[arg(short = 'o', long, value_enum, default_value = "text")]
        output: TextJson,
    },
    /// The connectivity of every pair of pods (rows: clients, columns: servers): exit 1 when a document could
    /// not be read.
    Matrix {
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        #[arg(long, default_value_t = 80)]
        port: u16,
        #[arg(long, default_value = "TCP", value_parser = parse_protocol)]
        protocol: Protocol,
        #[arg(long, value_enum, default_value = "IPv4")]
        ip_family: Family,
        /// Only pods of this namespace
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        #[arg(short = 'o', long, value_enum, default_value = "text")]
        output: MatrixFormat,
    },
    /// Each policy in plain words: exit 1 when a document could not be read.
    Explain {
        /// Repeat -f for several paths (the policy name may follow)
        #[arg(short = 'f', long = "filename", required = true, action = clap::ArgAction::Append)]
        files: Vec<PathBuf>,
        /// NAMESPACE/POLICY; all policies when omitted
        policy: Option<String>,
    },
    /// kubectl-style tables of what the manifests define: exit 1 when a document could not be read.
    Get {
        #[arg(value_enum)]
        resource: Resource,
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        #[arg(short = 'o', long, value_enum)]
        output: Option<GetFormat>,
    },
    /// Every allowed connection between workloads and outside address ranges (netpol-analyzer's `list` form):
    /// exit 1 when a document could not be read.
    List {
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        #[arg(short = 'o', long, value_enum, default_value = "txt")]
        output: ListFormat,
        /// Also what each workload is open to beyond the manifests: the entire cluster, namespaces or pods by
        /// label that no workload stands for, outside addresses; and which directions no policy protects.
        #[arg(long)]
        exposure: bool,
        /// Only connections of this workload (NAME or NAMESPACE/NAME); repeat for several.
        #[arg(long = "focus-workload", value_name = "NAME")]
        focus_workloads: Vec<String>,
        /// With --focus-workload: only connections between a focus workload and this one; repeat for several.
        #[arg(long = "focus-workload-peer", value_name = "NAME")]
        focus_peers: Vec<String>,
    },
    /// Findings about policies people get wrong: exit 1 when one is a warning or worse.
    Lint {
        #[arg(short = 'f', long = "filename", required_unless_present = "list_checks", num_args = 1..)]
        files: Vec<PathBuf>,
        #[arg(short = 'o', long, value_enum, default_value = "text")]
        output: LintFormat,
        /// Skip a check (its ID such as PAL107, or its name); repeat or separate with commas.
        #[arg(long = "disable", value_name = "CHECK", value_delimiter = ',')]
        disable: Vec<String>,
        /// Print every check (ID, severity, name, what it finds) and exit.
        #[arg(long)]
        list_checks: bool,
    },
    /// Connections added, removed and changed between two versions of the manifests: exit 1 if any, 2 when a
    /// document could not be read.
    Diff {
        old: PathBuf,
        new: PathBuf,
        #[arg(short = 'o', long, value_enum, default_value = "text")]
        output: DiffFormat,
    },
    /// Run conformance cases (files or folders) against the engine.
    Conformance {
        #[arg(required = true, num_args = 1..)]
        paths: Vec<PathBuf>,
        /// Run each case in a fresh sandbox with real packets (needs root and nft).
        #[arg(long)]
        live: bool,
        /// With --live: this many nodes, each enforced by its own agent.
        #[arg(long, requires = "live")]
        nodes: Option<usize>,
    },
    /// A cluster-free sandbox: pods as network namespaces, policies enforced by nftables, real probes.
    Sandbox {
        #[command(subcommand)]
        what: crate::sandbox::SandboxCommand,
    },
    /// The frontend / backend tutorial, run for real in a sandbox and narrated.
    Demo,
    /// The policy editor in the browser: a YAML pane, a form, the policy's graph, the matrix, explanations.
    Ui {
        /// The cluster to edit against (Namespaces, Pods, workloads, other policies)
        #[arg(short = 'f', long = "filename", num_args = 1..)]
        files: Vec<PathBuf>,
        /// Where to listen (loopback unless told otherwise)
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
    },
    /// The node agent: watch the cluster (or a folder) and keep this node's nftables in sync.
    Agent(crate::agent::AgentArgs),
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: crate::bench::BenchCommand,
    },
}

fn parse_protocol(s: &str) -> Result<Protocol, String> {
    s.parse()
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Validate { files } => validate(&files),
        Command::Check { files, from, to, port, protocol, ip_family, output } => {
            check(&files, &from, &to, port, protocol, ip_family, output)
        }
        Command::Matrix { files, port, protocol, ip_family, namespace, output } => {
            matrix(&files, port, protocol, ip_family.into(), namespace.as_deref(), output)
        }
        Command::Explain { files, policy } => explain(&files, policy.as_deref()),
        Command::Get { resource, files, namespace, all_namespaces, output } => {
            get(resource, &files, namespace.as_deref(), all_namespaces, output)
        }
        Command::List { files, output, exposure, focus_workloads, focus_peers } => {
            crate::analysis::list(crate::analysis::ListArgs {
                files: &files,
                output,
                options: palisade_analyze::exposure::Options { exposure, focus_workloads, focus_peers },
            })
        }
        Command::Lint { files, output, disable, list_checks } => {
            crate::analysis::lint(crate::analysis::LintArgs { files: &files, output, disable: &disable, list_checks })
        }
        Command::Diff { old, new, output } => crate::analysis::diff(&old, &new, output),
        Command::Conformance { paths, live: false, .. } => conformance(&paths),
        Command::Conformance { paths, live: true, nodes } => crate::sandbox::conformance_live(&paths, nodes),
        Command::Sandbox { what } => crate::sandbox::run(what),
        Command::Demo => crate::demo::run(),
        Command::Bench { what } => crate::bench::run(what),
        Command::Agent(args) => crate::agent::run(args),
        Command::Ui { files, addr } => ui(&files, addr),
    }
}

fn ui(files: &[PathBuf], addr: std::net::SocketAddr) -> Result<ExitCode> {
    let loaded = if files.is_empty() { palisade_engine::Loaded::default() } else { input::load(files)? };
    for e in &loaded.errors {
        eprintln!("error: {e}");
    }
    let base = palisade_ui::Base { loaded };
    palisade_ui::serve(base, addr, |a| {
        println!("Palisade policy editor on http://{a}/ (Ctrl-C to stop)");
        let _ = std::io::stdout().flush();
    })
    .with_context(|| format!("serving on {addr}"))?;
    Ok(ExitCode::SUCCESS)
}

fn validate(files: &[PathBuf]) -> Result<ExitCode> {
    let input = input::cluster(files)?;
    let mut out = std::io::stdout().lock();
    for e in &input.loaded.errors {
        writeln!(out, "{e}")?;
    }
    for r in &input.rejected {
        for l in r.lines() {
            writeln!(out, "{l}")?;
        }
    }
    for (_, l) in &input.cluster_findings {
        writeln!(out, "{l}")?;
    }
    for s in &input.loaded.skipped {
        eprintln!("note: {s}");
    }
    if input.has_errors() {
        return Ok(ExitCode::from(1));
    }
    let count = |k: &str| input.loaded.objects.iter().filter(|o| o.value.kind() == k).count();
    let tiers = input.loaded.cluster_objects.iter().filter(|o| o.value.as_policy().is_some()).count();
    let tiers =
        if tiers > 0 { format!(", {tiers} ClusterNetworkPolicies (and v1alpha1 kinds)") } else { String::new() };
    writeln!(
        out,
        "valid: {} NetworkPolicies, {} Pods, {} Namespaces{tiers}",
        count("NetworkPolicy"),
        count("Pod"),
        count("Namespace")
    )?;
    Ok(ExitCode::SUCCESS)
}

fn check(
    files: &[PathBuf],
    from: &str,
    to: &str,
    port: u16,
    protocol: Protocol,
    family: Option<Family>,
    output: TextJson,
) -> Result<ExitCode> {
    let input = input::cluster(files)?;
    input::report(&input);
    let from = Endpoint::parse(from).map_err(anyhow::Error::msg).context("--from")?;
    let to = Endpoint::parse(to).map_err(anyhow::Error::msg).context("--to")?;
    if port == 0 {
        bail!("--port: must be between 1 and 65535, inclusive");
    }
    let mut conn = Connection::new(from, to, protocol, port);
    if let Some(f) = family {
        conn = conn.with_family(f.into());
    }
    let index = Index::build(&input.cluster);
    let verdict = index.decide(&conn)?;
    let mut out = std::io::stdout().lock();
    match output {
        TextJson::Text => render::verdict_text(&mut out, &index, &verdict)?,
        TextJson::Json => writeln!(out, "{}", serde_json::to_string_pretty(&verdict)?)?,
    }
    // The verdict of what could be read is printed; a document that could not be read makes it an error.
    Ok(if unreadable(&input) {
        ExitCode::from(2)
    } else if verdict.allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn matrix(
    files: &[PathBuf],
    port: u16,
    protocol: Protocol,
    family: IpFamily,
    namespace: Option<&str>,
    output: MatrixFormat,
) -> Result<ExitCode> {
    let input = input::cluster(files)?;
    input::report(&input);
    let index = Index::build(&input.cluster);
    let m = index.matrix(protocol, port, family);
    let keep: Vec<usize> =
        (0..m.pods.len()).filter(|&i| namespace.is_none_or(|ns| m.pods[i].namespace == ns)).collect();
    let text = match output {
        MatrixFormat::Text => render::matrix_text(&m, &keep),
        MatrixFormat::Csv => render::matrix_csv(&m, &keep),
        MatrixFormat::Dot => render::matrix_dot(&m, &keep),
        MatrixFormat::Json => {
            let pods: Vec<String> = keep.iter().map(|&i| m.pods[i].to_string()).collect();
            let allowed: Vec<Vec<bool>> = keep.iter().map(|&i| keep.iter().map(|&j| m.get(i, j)).collect()).collect();
            let v = json!({"protocol": protocol.as_str(), "port": port, "ipFamily": family.to_string(), "pods": pods, "allowed": allowed});
            format!("{}\n", serde_json::to_string_pretty(&v)?)
        }
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(exit_read(&input))
}

fn explain(files: &[PathBuf], policy: Option<&str>) -> Result<ExitCode> {
    let input = input::cluster(files)?;
    input::report(&input);
    // A bare name is a cluster-scoped tier policy (ClusterNetworkPolicy and the v1alpha1 kinds).
    let tier_wanted = policy.filter(|p| !p.contains('/'));
    let wanted = match policy {
        Some(p) if tier_wanted.is_none() => {
            Some(ObjectKey::parse(p).with_context(|| format!("{p:?}: expected NAMESPACE/POLICY or NAME"))?)
        }
        _ => None,
    };
    let mut out = std::io::stdout().lock();
    let mut shown = 0;
    for o in input.cluster.cluster_objects() {
        if o.as_policy().is_none() || tier_wanted.is_some_and(|n| n != o.name()) || wanted.is_some() {
            continue;
        }
        if shown > 0 {
            writeln!(out)?;
        }
        out.write_all(palisade_engine::cnp::explain::explain_tier_policy(o).as_bytes())?;
        shown += 1;
    }
    if let Some(n) = tier_wanted
        && shown == 0
    {
        bail!("clusternetworkpolicies {n:?} not found");
    }
    for (key, np) in input.cluster.policies() {
        if tier_wanted.is_some() {
            break;
        }
        if wanted.as_ref().is_some_and(|w| w != key) {
            continue;
        }
        if shown > 0 {
            writeln!(out)?;
        }
        out.write_all(explain_policy(np).as_bytes())?;
        shown += 1;
    }
    if let Some(w) = wanted
        && shown == 0
    {
        bail!("networkpolicies {:?} not found in namespace {:?}", w.name, w.namespace);
    }
    Ok(exit_read(&input))
}

/// Whether some document of the input could not be read (each was reported on stderr).
fn unreadable(input: &input::Input) -> bool {
    !input.loaded.errors.is_empty()
}

/// Exit 1 when some document could not be read, after printing what could be, as kubectl does.
fn exit_read(input: &input::Input) -> ExitCode {
    if unreadable(input) { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

/// `metav1.FormatLabelSelector`: `k=v,k in (a,b),k notin (a),k,!k`, or `<none>`.
fn format_selector(sel: Option<&LabelSelector>) -> String {
    let Some(sel) = sel else { return "<none>".into() };
    let mut reqs: Vec<(String, String)> = Vec::new();
    for (k, v) in sel.match_labels.iter().flatten() {
        reqs.push((k.clone(), format!("{k}={v}")));
    }
    for e in sel.match_expressions.iter().flatten() {
        let mut vals = e.values.clone().unwrap_or_default();
        vals.sort();
        let s = match e.operator.as_str() {
            "In" if vals.len() == 1 => format!("{}={}", e.key, vals[0]),
            "In" => format!("{} in ({})", e.key, vals.join(",")),
            "NotIn" if vals.len() == 1 => format!("{}!={}", e.key, vals[0]),
            "NotIn" => format!("{} notin ({})", e.key, vals.join(",")),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            _ => "<error>".into(),
        };
        reqs.push((e.key.clone(), s));
    }
    reqs.sort();
    let s: Vec<String> = reqs.into_iter().map(|(_, s)| s).collect();
    if s.is_empty() { "<none>".into() } else { s.join(",") }
}

fn get(
    resource: Resource,
    files: &[PathBuf],
    namespace: Option<&str>,
    all: bool,
    output: Option<GetFormat>,
) -> Result<ExitCode> {
    let input = input::cluster(files)?;
    input::report(&input);
    let code = get_from(resource, &input.cluster, namespace, all, output, None)?;
    Ok(if unreadable(&input) { exit_read(&input) } else { code })
}

/// kubectl's `HumanDuration`: `45s`, `3m12s`, `5h`, `2d4h`.
fn human_duration(secs: i64) -> String {
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    if secs < 0 {
        "0s".into()
    } else if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        if secs % 60 == 0 { format!("{m}m") } else { format!("{m}m{}s", secs % 60) }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 { format!("{h}h") } else { format!("{h}h{}m", m % 60) }
    } else if h < 48 {
        format!("{h}h")
    } else if d < 8 {
        if h % 24 == 0 { format!("{d}d") } else { format!("{d}d{}h", h % 24) }
    } else {
        format!("{d}d")
    }
}

/// `get` over a cluster already in hand (files, or a sandbox's state).
pub fn get_from(
    resource: Resource,
    cluster: &palisade_engine::Cluster,
    namespace: Option<&str>,
    all: bool,
    output: Option<GetFormat>,
    now: Option<k8s_openapi::jiff::Timestamp>,
) -> Result<ExitCode> {
    let ns_filter = if all { None } else { Some(namespace.unwrap_or("default")) };
    let in_ns = |ns: &str| ns_filter.is_none_or(|f| f == ns);
    let objects: Vec<Object> = match resource {
        Resource::Netpol => cluster
            .policies()
            .filter(|(k, _)| in_ns(&k.namespace))
            .map(|(_, p)| Object::NetworkPolicy(p.clone()))
            .collect(),
        Resource::Pods => {
            cluster.pods().filter(|(k, _)| in_ns(&k.namespace)).map(|(_, p)| Object::Pod(Box::new(p.clone()))).collect()
        }
        Resource::Ns => cluster
            .namespaces()
            .into_iter()
            .map(|(name, labels)| {
                let mut ns = cluster.namespace(&name).cloned().unwrap_or_default();
                ns.metadata.name = Some(name);
                ns.metadata.labels = Some(labels);
                Object::Namespace(ns)
            })
            .collect(),
    };
    let mut out = std::io::stdout().lock();
    match output {
        Some(GetFormat::Json) | Some(GetFormat::Yaml) => {
            let items: Vec<serde_json::Value> = objects
                .iter()
                .map(|o| match o {
                    Object::Namespace(x) => serde_json::to_value(x),
                    Object::Pod(x) => serde_json::to_value(x),
                    Object::NetworkPolicy(x) => serde_json::to_value(x),
                })
                .collect::<Result<_, _>>()?;
            let doc = json!({"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}});
            if output == Some(GetFormat::Json) {
                writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
            } else {
                out.write_all(serde_saphyr::to_string(&doc)?.as_bytes())?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    if objects.is_empty() {
        match ns_filter {
            Some(ns) if resource != Resource::Ns => eprintln!("No resources found in {ns} namespace."),
            _ => eprintln!("No resources found"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let wide = output == Some(GetFormat::Wide);
    let (mut header, mut rows): (Vec<&str>, Vec<Vec<String>>) = match resource {
        Resource::Netpol => (
            vec!["NAME", "POD-SELECTOR"],
            objects
                .iter()
                .filter_map(|o| match o {
                    Object::NetworkPolicy(p) => Some(vec![
                        p.metadata.name.clone().unwrap_or_default(),
                        format_selector(p.spec.as_ref().and_then(|s| s.pod_selector.as_ref())),
                    ]),
                    _ => None,
                })
                .collect(),
        ),
        Resource::Pods => {
            let mut h = vec!["NAME", "READY", "STATUS", "RESTARTS"];
            if wide {
                h.extend(["IP", "NODE"]);
            }
            let rows = objects
                .iter()
                .filter_map(|o| match o {
                    Object::Pod(p) => {
                        let containers = p.spec.as_ref().map_or(0, |s| s.containers.len());
                        let st = p.status.as_ref();
                        let statuses = st.and_then(|s| s.container_statuses.as_ref());
                        let ready = statuses.map_or(0, |c| c.iter().filter(|c| c.ready).count());
                        let restarts: i32 = statuses.map_or(0, |c| c.iter().map(|c| c.restart_count).sum());
                        let mut r = vec![
                            p.metadata.name.clone().unwrap_or_default(),
                            format!("{ready}/{containers}"),
                            st.and_then(|s| s.phase.clone()).unwrap_or_else(|| "Pending".into()),
                            restarts.to_string(),
                        ];
                        if wide {
                            r.push(st.and_then(|s| s.pod_ip.clone()).unwrap_or_else(|| "<none>".into()));
                            r.push(
                                p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_else(|| "<none>".into()),
                            );
                        }
                        Some(r)
                    }
                    _ => None,
                })
                .collect();
            (h, rows)
        }
        Resource::Ns => {
            let mut h = vec!["NAME", "STATUS"];
            if wide {
                h.push("LABELS");
            }
            let rows = objects
                .iter()
                .filter_map(|o| match o {
                    Object::Namespace(n) => {
                        let mut r = vec![n.metadata.name.clone().unwrap_or_default(), "Active".into()];
                        if wide {
                            let l: Vec<String> =
                                n.metadata.labels.iter().flatten().map(|(k, v)| format!("{k}={v}")).collect();
                            r.push(l.join(","));
                        }
                        Some(r)
                    }
                    _ => None,
                })
                .collect();
            (h, rows)
        }
    };
    // AGE (from creationTimestamp) when the objects live somewhere with a clock, like a sandbox.
    if let Some(now) = now {
        let at = match resource {
            Resource::Pods => 4,
            Resource::Netpol | Resource::Ns => 2,
        };
        header.insert(at, "AGE");
        for (r, o) in rows.iter_mut().zip(&objects) {
            let age = o
                .metadata()
                .creation_timestamp
                .as_ref()
                .map_or("<unknown>".to_owned(), |t| human_duration(now.as_second() - t.0.as_second()));
            r.insert(at, age);
        }
    }
    if ns_filter.is_none() && resource != Resource::Ns {
        header.insert(0, "NAMESPACE");
        for (r, o) in rows.iter_mut().zip(&objects) {
            r.insert(0, o.key().namespace);
        }
    }
    out.write_all(render::table(&header, &rows).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// The case files under the paths (YAML files only; README/INDEX files are skipped).
pub fn case_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let files = input::manifest_files(paths)?;
    Ok(files.into_iter().filter(|f| f.extension().is_some_and(|e| e == "yaml" || e == "yml")).collect())
}

/// Reads a case and its cluster (`cluster: NAME` is `../clusters/NAME.yaml` beside the case's folder), with
/// the cluster file's cluster-scoped objects (Nodes).
pub fn read_case(path: &Path) -> Result<(Case, Vec<Object>, Vec<ClusterObject>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let source = path.display().to_string();
    let case = Case::parse(&source, &text)?;
    let (cluster, cluster_objects) = match &case.cluster {
        ClusterSource::Inline(objects) => (objects.clone(), Vec::new()),
        ClusterSource::Named(name) => {
            let dir = path.parent().unwrap_or(Path::new("."));
            let file = dir.join("..").join("clusters").join(format!("{name}.yaml"));
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("{source}: cluster {name:?}: reading {}", file.display()))?;
            let source = file.display().to_string();
            (parse_cluster(&source, &text)?, parse_cluster_objects(&source, &text)?)
        }
    };
    Ok((case, cluster, cluster_objects))
}

/// Runs cases with a backend and prints PASS/FAIL lines and the tally; exit 0 only if all pass.
pub fn run_cases(paths: &[PathBuf], backend: &mut dyn Backend) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let (mut passed, mut failed) = (0, 0);
    for file in case_files(paths)? {
        let outcome = match read_case(&file) {
            Ok((case, cluster, cluster_objects)) => run_case_with(&case, &cluster, &cluster_objects, backend),
            Err(e) => Outcome {
                id: file.display().to_string(),
                probes: 0,
                mismatches: Vec::new(),
                error: Some(format!("{e:#}")),
            },
        };
        if outcome.passed() {
            passed += 1;
            writeln!(out, "PASS {} ({} probes)", outcome.id, outcome.probes)?;
        } else {
            failed += 1;
            writeln!(out, "FAIL {}", outcome.id)?;
            if let Some(e) = &outcome.error {
                writeln!(out, "  error: {e}")?;
            }
            for m in &outcome.mismatches {
                writeln!(out, "  {m}")?;
            }
        }
        out.flush()?;
    }
    writeln!(out, "{passed} passed, {failed} failed")?;
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn conformance(paths: &[PathBuf]) -> Result<ExitCode> {
    run_cases(paths, &mut EngineBackend::new())
}
