//! `palisade sandbox ...` and `palisade conformance --live`: argument parsing and rendering over palisade-sandbox.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use palisade_engine::{Connection, Endpoint, IpFamily, Protocol};
use palisade_sandbox::{LiveBackend, Sandbox};

use crate::commands::{Family, GetFormat, Resource, get_from, run_cases};
use crate::input;
use crate::render;

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Create a sandbox: a node namespace, one namespace per Pod with servers on its ports, the rules.
    Up {
        #[arg(long, default_value = "default")]
        name: String,
        #[arg(short = 'f', long = "filename", num_args = 1..)]
        files: Vec<PathBuf>,
        /// A host outside the cluster, for bare-IP endpoints: `IP` or `IP=tcp/80,udp/53` (the ports it serves).
        #[arg(long = "external")]
        externals: Vec<String>,
        /// This many nodes joined by an underlay, each enforced by its own `palisade agent` (pods spread by
        /// `spec.nodeName` node-0, node-1..., or in turn). Without it: one node enforced by the control plane.
        #[arg(long)]
        nodes: Option<usize>,
        /// The API server's port on 127.0.0.1 (default: any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// The kubelet writes a started pod's status (its address) only after this long: `500ms`, `2s`.
        #[arg(long, value_parser = parse_duration, default_value = "0ms")]
        kubelet_delay: Duration,
        /// With --nodes: what the agents let a pod they have not programmed yet do (`palisade agent
        /// --pod-start`): `closed` (its node's pod range drops unknown addresses) or `open`.
        #[arg(long, value_enum, default_value = "closed")]
        pod_start: crate::agent::PodStartArg,
        /// How pods are wired to their node: `routed` (a veth per pod with a host route, as Calico or Cilium)
        /// or `bridge` (one bridge per node holding the pods' gateway, as flannel's cni0).
        #[arg(long, default_value = "routed")]
        layout: palisade_sandbox::Layout,
    },
    /// (internal) The sandbox's control plane: API server, controllers, kubelet, kube-proxy, DNS.
    #[command(name = "control-plane", hide = true)]
    ControlPlane {
        #[arg(long)]
        name: String,
        #[arg(long = "external")]
        externals: Vec<String>,
        #[arg(long)]
        nodes: Option<usize>,
        #[arg(long, default_value_t = 0)]
        port: u16,
        #[arg(long, default_value_t = 0)]
        kubelet_delay_ms: u64,
        #[arg(long, value_enum, default_value = "closed")]
        pod_start: crate::agent::PodStartArg,
        #[arg(long, default_value = "routed")]
        layout: palisade_sandbox::Layout,
    },
    /// Print the path of the sandbox's kubeconfig: `export KUBECONFIG=$(palisade sandbox kubeconfig)`.
    Kubeconfig {
        #[arg(long, default_value = "default")]
        name: String,
    },
    /// Inject a fault into the sandbox's control plane, to see what clients and agents do: `restart-api`
    /// (every API connection ends and new ones are refused for `--down`), `drop-watches` (every watch ends;
    /// clients resume), `compact` (history forgotten and watches ended: a resume gets 410 Gone, clients list
    /// again).
    Fault {
        #[arg(long, default_value = "default")]
        name: String,
        #[arg(value_enum)]
        fault: FaultKind,
        /// How long a restarting API server refuses connections.
        #[arg(long, default_value = "1s", value_parser = parse_duration)]
        down: Duration,
    },
    /// Run a program of this machine inside a pod's network namespace (with the pod's resolver), as
    /// `kubectl exec` does: `palisade sandbox exec [-n NS] POD|deploy/NAME -- CMD...`. Exits with its code.
    Exec {
        #[arg(long, default_value = "default")]
        name: String,
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
        /// Keep stdin open (the program reads this command's stdin).
        #[arg(short = 'i', long)]
        stdin: bool,
        /// Accepted for kubectl compatibility: the program runs on this command's terminal.
        #[arg(short = 't', long)]
        tty: bool,
        pod: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Create or replace objects (pods get namespaces, policies get enforced).
    Apply {
        #[arg(long, default_value = "default")]
        name: String,
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// Let established connections outlive a policy that no longer admits them (older enforcers' behaviour).
        #[arg(long)]
        keep_established: bool,
    },
    /// Hold one TCP connection open and exchange a byte every interval: prints `.` per echo, `X` per loss.
    Hold {
        #[arg(long, default_value = "default")]
        name: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        port: u16,
        #[arg(long, default_value_t = 3)]
        seconds: u64,
        #[arg(long, default_value_t = 200)]
        interval_ms: u64,
    },
    /// (internal) Hold a connection from inside a namespace.
    #[command(name = "hold-raw", hide = true)]
    HoldRaw {
        #[arg(long)]
        ip: std::net::IpAddr,
        #[arg(long)]
        port: u16,
        #[arg(long)]
        seconds: u64,
        #[arg(long)]
        interval_ms: u64,
    },
    /// Delete an object: `delete netpol NAME -n NS` (any served kind: pods, deploy, svc, ns, cnp...).
    Delete {
        #[arg(long, default_value = "default")]
        name: String,
        kind: String,
        object: String,
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
    },
    /// Set or remove labels: `label pods NAME key=value other-` (namespaces: `label ns NAME ...`; any kind).
    Label {
        #[arg(long, default_value = "default")]
        name: String,
        kind: String,
        object: String,
        #[arg(required = true, num_args = 1..)]
        labels: Vec<String>,
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
    },
    /// kubectl-style tables of the sandbox's objects.
    Get {
        #[arg(long, default_value = "default")]
        name: String,
        #[arg(value_enum)]
        resource: Resource,
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        #[arg(short = 'o', long, value_enum)]
        output: Option<GetFormat>,
    },
    /// Make real connections: exit 0 connected, 1 blocked.
    Probe {
        #[arg(long, default_value = "default")]
        name: String,
        #[arg(long, required_unless_present = "matrix")]
        from: Option<String>,
        #[arg(long, required_unless_present = "matrix")]
        to: Option<String>,
        #[arg(long)]
        port: u16,
        #[arg(long, default_value = "TCP", value_parser = |s: &str| s.parse::<Protocol>())]
        protocol: Protocol,
        #[arg(long, value_enum, default_value = "IPv4")]
        ip_family: Family,
        /// Probe every pair of pods and print the matrix.
        #[arg(long)]
        matrix: bool,
    },
    /// The nftables ruleset the sandbox's node enforces.
    Ruleset {
        #[arg(long, default_value = "default")]
        name: String,
    },
    /// Remove a sandbox, or with --all every sandbox and leftover namespace.
    Down {
        #[arg(long, default_value = "default")]
        name: String,
        #[arg(long)]
        all: bool,
    },
    /// (internal) Serve ports inside a pod namespace.
    #[command(hide = true)]
    Serve {
        #[arg(long, value_delimiter = ',')]
        tcp: Vec<u16>,
        #[arg(long, value_delimiter = ',')]
        udp: Vec<u16>,
        #[arg(long, value_delimiter = ',')]
        sctp: Vec<u16>,
        /// TCP ports that read and discard (throughput benchmarks).
        #[arg(long, value_delimiter = ',')]
        sink: Vec<u16>,
        #[arg(long)]
        ready: Option<PathBuf>,
        /// The pod HTTP answers name.
        #[arg(long, default_value = "")]
        who: String,
    },
    /// (internal) Benchmark client: `crr` counts new connections, `stream` counts bytes, for --ms.
    #[command(name = "bench-client", hide = true)]
    BenchClient {
        mode: String,
        #[arg(long)]
        ip: std::net::IpAddr,
        #[arg(long)]
        port: u16,
        #[arg(long, default_value_t = 2000)]
        ms: u64,
    },
    /// Flow records of the sandbox's node agents: denied flows with the policies that isolate them and the
    /// engine's explanation (needs --nodes N).
    Observe {
        #[arg(default_value = "default")]
        name: String,
        /// Keep streaming new records.
        #[arg(short = 'f', long)]
        follow: bool,
        #[arg(short = 'o', long, value_enum, default_value = "text")]
        output: ObserveOutput,
    },
    /// (internal, inside a node namespace) GET a path from the agent there; the body to stdout.
    #[command(name = "agent-get", hide = true)]
    AgentGet {
        #[arg(long, default_value = crate::observe::AGENT_ADDR)]
        addr: String,
        path: String,
    },
    /// (internal) Probe targets `IP,PORT,PROTO` from inside a namespace; prints 1 or 0 per target.
    #[command(name = "probe-raw", hide = true)]
    ProbeRaw {
        #[arg(long, default_value_t = 900)]
        timeout_ms: u64,
        targets: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum ObserveOutput {
    Text,
    Json,
}

pub fn helper() -> Result<PathBuf> {
    std::env::current_exe().context("locating the palisade binary")
}

/// How long a sandbox verb waits for the sandbox to catch up with what it wrote.
const SETTLE: Duration = Duration::from_secs(60);

fn block_on<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?.block_on(f)
}

/// The faults `sandbox fault` injects.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FaultKind {
    RestartApi,
    DropWatches,
    Compact,
}

fn pod_resource() -> &'static palisade_cluster::resources::Resource {
    palisade_cluster::client::resource_named("pods").expect("pods are served")
}

/// `go-style` durations: `500ms`, `2s`, `1m`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit()).map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = num.parse().map_err(|_| format!("{s:?}: expected a duration like 500ms or 2s"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("{s:?}: expected a duration like 500ms or 2s")),
    }
}

/// Every document of the files, in order, each with where it came from. A document that cannot be read
/// fails the command before anything is applied.
fn documents(files: &[PathBuf]) -> Result<Vec<(String, serde_json::Value)>> {
    let mut out = Vec::new();
    for f in input::manifest_files(files)? {
        let (name, text) = if f.as_os_str() == "-" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).context("reading standard input")?;
            ("-".to_owned(), s)
        } else {
            (f.display().to_string(), std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?)
        };
        let docs = palisade_engine::load::parse_documents(&text).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        for (i, d) in docs.into_iter().enumerate() {
            match d {
                serde_json::Value::Null => {}
                serde_json::Value::Object(_) if d["kind"].as_str().is_some_and(|k| k.ends_with("List")) => {
                    for (j, item) in d["items"].as_array().cloned().unwrap_or_default().into_iter().enumerate() {
                        out.push((format!("{name}#{} items[{j}]", i + 1), item));
                    }
                }
                serde_json::Value::Object(_) => out.push((format!("{name}#{}", i + 1), d)),
                _ => bail!("{name}#{}: expected a Kubernetes object (a mapping)", i + 1),
            }
        }
    }
    Ok(out)
}

/// Applies documents in order (Namespaces first, so objects in them can follow); the lines kubectl prints.
async fn apply_all(
    c: &palisade_cluster::client::SandboxClient,
    docs: &[(String, serde_json::Value)],
) -> Result<Vec<String>> {
    let mut ordered: Vec<&(String, serde_json::Value)> = docs.iter().collect();
    ordered.sort_by_key(|(_, d)| d["kind"] != "Namespace");
    let mut lines = Vec::new();
    for (origin, d) in ordered {
        let out = c.apply(d).await.map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        let kind = out["kind"].as_str().or(d["kind"].as_str()).unwrap_or("").to_lowercase();
        let group = palisade_cluster::resources::of_kind(
            d["apiVersion"].as_str().unwrap_or(""),
            d["kind"].as_str().unwrap_or(""),
        )
        .map(|r| r.group)
        .unwrap_or("");
        let kind = if group.is_empty() { kind } else { format!("{kind}.{group}") };
        lines.push(format!("{kind}/{} serverside-applied", d["metadata"]["name"].as_str().unwrap_or("")));
    }
    Ok(lines)
}

/// A pod by name, or the first running pod of `deploy/NAME` (or another workload) in the namespace.
async fn resolve_pod(c: &palisade_cluster::client::SandboxClient, namespace: &str, target: &str) -> Result<String> {
    let Some((kind, name)) = target.split_once('/') else { return Ok(target.to_owned()) };
    let r =
        palisade_cluster::client::resource_named(kind).with_context(|| format!("unknown resource type {kind:?}"))?;
    if r.kind == "Pod" {
        return Ok(name.to_owned());
    }
    let workload = c
        .list(r, Some(namespace))
        .await?
        .into_iter()
        .find(|o| o["metadata"]["name"] == name)
        .with_context(|| format!("{} \"{name}\" not found", r.qualified()))?;
    let selector = palisade_cluster::selector::LabelSelector::from_object(&workload["spec"]["selector"]);
    c.list(pod_resource(), Some(namespace))
        .await?
        .into_iter()
        .find(|p| selector.matches(p) && p["status"]["phase"] == "Running")
        .and_then(|p| p["metadata"]["name"].as_str().map(str::to_owned))
        .with_context(|| format!("no running pod of {target}"))
}

fn start_control_plane(
    name: &str,
    externals: &[String],
    nodes: Option<usize>,
    port: u16,
    kubelet_delay: Duration,
    pod_start_open: bool,
    layout: palisade_sandbox::Layout,
) -> Result<PathBuf> {
    let externals = externals.iter().map(|e| parse_external(e)).collect::<Result<Vec<_>>>()?;
    Ok(palisade_cluster::controlplane::spawn(&palisade_cluster::controlplane::Config {
        name: name.to_owned(),
        nodes,
        externals,
        helper: helper()?,
        port,
        kubelet_delay,
        pod_start_open,
        layout,
    })?)
}

pub fn run(cmd: SandboxCommand) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match cmd {
        SandboxCommand::Up { name, files, externals, nodes, port, kubelet_delay, pod_start, layout } => {
            let docs = if files.is_empty() { Vec::new() } else { documents(&files)? };
            for e in &externals {
                parse_external(e)?;
            }
            let started = std::time::Instant::now();
            let open = pod_start == crate::agent::PodStartArg::Open;
            let kubeconfig = start_control_plane(&name, &externals, nodes, port, kubelet_delay, open, layout)?;
            let ready = started.elapsed();
            let pods = if docs.is_empty() {
                0
            } else {
                block_on(async {
                    let c = palisade_cluster::client::SandboxClient::connect(&name).await?;
                    apply_all(&c, &docs).await?;
                    c.wait_settled(SETTLE).await?;
                    Ok::<_, anyhow::Error>(c.list(pod_resource(), None).await?.len())
                })?
            };
            let nodes = nodes.map(|n| format!(", {n} nodes with an agent each")).unwrap_or_default();
            writeln!(
                out,
                "sandbox {name:?} is up: API ready in {} ms, {pods} pods, {} outside hosts{nodes}\nexport KUBECONFIG={}",
                ready.as_millis(),
                externals.len(),
                kubeconfig.display()
            )?;
        }
        SandboxCommand::ControlPlane { name, externals, nodes, port, kubelet_delay_ms, pod_start, layout } => {
            let externals = externals.iter().map(|e| parse_external(e)).collect::<Result<Vec<_>>>()?;
            palisade_cluster::controlplane::run(palisade_cluster::controlplane::Config {
                name,
                nodes,
                externals,
                helper: helper()?,
                port,
                kubelet_delay: Duration::from_millis(kubelet_delay_ms),
                pod_start_open: pod_start == crate::agent::PodStartArg::Open,
                layout,
            })?;
        }
        SandboxCommand::Fault { name, fault, down } => {
            use palisade_cluster::controlplane::{Fault, inject};
            let fault = match fault {
                FaultKind::RestartApi => Fault::RestartApi(down),
                FaultKind::DropWatches => Fault::DropWatches,
                FaultKind::Compact => Fault::Compact,
            };
            let dir = palisade_sandbox::run_root().join(&name);
            if palisade_cluster::controlplane::read_ready(&dir).is_none() {
                bail!("no sandbox named {name:?} is running (see `palisade sandbox up`)");
            }
            inject(&dir, fault)?;
            writeln!(out, "injected {}", fault.line())?;
        }
        SandboxCommand::Kubeconfig { name } => {
            let path = palisade_cluster::controlplane::kubeconfig_file(&palisade_sandbox::run_root().join(&name));
            if !path.exists() {
                bail!("no sandbox named {name:?} is running (see `palisade sandbox up`)");
            }
            writeln!(out, "{}", path.display())?;
        }
        SandboxCommand::Exec { name, namespace, stdin, tty: _, pod, command } => {
            let netns = block_on(async {
                let c = palisade_cluster::client::SandboxClient::connect(&name).await?;
                let pod = resolve_pod(&c, &namespace, &pod).await?;
                Ok::<_, anyhow::Error>(pod)
            })?;
            let sb = Sandbox::open(&name, &helper()?)?;
            let host = sb
                .pods()
                .get(&format!("{namespace}/{netns}"))
                .with_context(|| format!("pod {namespace}/{netns} is not running"))?;
            let status = std::process::Command::new("ip")
                .args(["netns", "exec", &host.netns])
                .args(&command)
                .stdin(if stdin { std::process::Stdio::inherit() } else { std::process::Stdio::null() })
                .status()
                .context("running the command")?;
            drop(out);
            return Ok(ExitCode::from(u8::try_from(status.code().unwrap_or(1)).unwrap_or(1)));
        }
        SandboxCommand::Apply { name, files, keep_established } => {
            let docs = documents(&files)?;
            block_on(async {
                let c = palisade_cluster::client::SandboxClient::connect(&name).await?;
                if keep_established && Sandbox::open(&name, &helper()?)?.agent_mode() {
                    bail!(
                        "--keep-established: the agents of a multi-node sandbox always cut what policy stops admitting"
                    );
                }
                c.apply(&serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": palisade_cluster::node::SETTINGS, "namespace": "kube-system"},
                    "data": {"keepEstablished": keep_established.to_string()}}))
                    .await?;
                for line in apply_all(&c, &docs).await? {
                    writeln!(out, "{line}")?;
                }
                c.wait_settled(SETTLE).await?;
                Ok(())
            })?;
        }
        SandboxCommand::Delete { name, kind, object, namespace } => {
            let r = palisade_cluster::client::resource_named(&kind)
                .with_context(|| format!("the server doesn't have a resource type {kind:?}"))?;
            block_on(async {
                let c = palisade_cluster::client::SandboxClient::connect(&name).await?;
                if !c.delete(r, &namespace, &object).await? {
                    if r.namespaced {
                        bail!("{} {object:?} not found in namespace {namespace:?}", r.qualified());
                    }
                    bail!("{} {object:?} not found", r.qualified());
                }
                c.wait_settled(SETTLE).await?;
                Ok(())
            })?;
            writeln!(out, "{} \"{object}\" deleted", r.singular)?;
        }
        SandboxCommand::Label { name, kind, object, labels, namespace } => {
            let r = palisade_cluster::client::resource_named(&kind)
                .with_context(|| format!("the server doesn't have a resource type {kind:?}"))?;
            let mut changes = Vec::new();
            for l in &labels {
                if let Some(k) = l.strip_suffix('-') {
                    changes.push((k.to_owned(), None));
                } else if let Some((k, v)) = l.split_once('=') {
                    changes.push((k.to_owned(), Some(v.to_owned())));
                } else {
                    bail!("{l:?}: expected key=value or key-");
                }
            }
            block_on(async {
                let c = palisade_cluster::client::SandboxClient::connect(&name).await?;
                c.label(r, &namespace, &object, &changes).await?;
                c.wait_settled(SETTLE).await?;
                Ok::<_, anyhow::Error>(())
            })?;
            writeln!(out, "{} \"{object}\" labeled", r.singular)?;
        }
        SandboxCommand::Get { name, resource, namespace, all_namespaces, output } => {
            let cluster = block_on(async {
                let c = palisade_cluster::client::SandboxClient::connect(&name).await?;
                let mut loaded = palisade_engine::Loaded::default();
                for kind in ["namespaces", "pods", "networkpolicies"] {
                    let r = palisade_cluster::client::resource_named(kind).context("served resources")?;
                    for (i, v) in c.list(r, None).await?.into_iter().enumerate() {
                        let origin = palisade_engine::Origin { source: "api".into(), document: i + 1, item: None };
                        palisade_engine::load::load_value(origin, v, &mut loaded);
                    }
                }
                Ok::<_, anyhow::Error>(palisade_engine::Cluster::from_objects(
                    loaded.objects.into_iter().map(|o| o.value),
                ))
            })?;
            drop(out);
            return get_from(
                resource,
                &cluster,
                namespace.as_deref(),
                all_namespaces,
                output,
                Some(palisade_sandbox::now()),
            );
        }
        SandboxCommand::Probe { name, from, to, port, protocol, ip_family, matrix } => {
            let sb = Sandbox::open(&name, &helper()?)?;
            let family: IpFamily = ip_family.into();
            if matrix {
                let keys: Vec<_> = sb
                    .cluster()
                    .pods()
                    .map(|(k, _)| k.clone())
                    .filter(|k| sb.pods().contains_key(&k.to_string()))
                    .collect();
                let mut conns = Vec::new();
                for a in &keys {
                    for b in &keys {
                        conns.push(
                            Connection::new(Endpoint::Pod(a.clone()), Endpoint::Pod(b.clone()), protocol, port)
                                .with_family(family),
                        );
                    }
                }
                let got = sb.probe(&conns)?;
                let n = keys.len();
                let m = palisade_engine::Matrix {
                    pods: keys.clone(),
                    allowed: (0..n)
                        .map(|i| {
                            let mut row = palisade_engine::bitset::BitSet::new(n);
                            for j in 0..n {
                                if got[i * n + j] {
                                    row.insert(j);
                                }
                            }
                            row
                        })
                        .collect(),
                };
                let keep: Vec<usize> = (0..n).collect();
                out.write_all(render::matrix_text(&m, &keep).as_bytes())?;
                return Ok(ExitCode::SUCCESS);
            }
            let (Some(from), Some(to)) = (from, to) else { bail!("--from and --to, or --matrix") };
            let conn = Connection::new(
                Endpoint::parse(&from).map_err(anyhow::Error::msg)?,
                Endpoint::parse(&to).map_err(anyhow::Error::msg)?,
                protocol,
                port,
            );
            let conn = if matches!((&conn.from, &conn.to), (Endpoint::Pod(_), Endpoint::Pod(_))) {
                conn.with_family(family)
            } else {
                conn
            };
            let ok = sb.probe(std::slice::from_ref(&conn))?[0];
            writeln!(out, "{}: {conn}", if ok { "connected" } else { "blocked" })?;
            return Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) });
        }
        SandboxCommand::Hold { name, from, to, port, seconds, interval_ms } => {
            let sb = Sandbox::open(&name, &helper()?)?;
            let from = Endpoint::parse(&from).map_err(anyhow::Error::msg)?;
            let to = Endpoint::parse(&to).map_err(anyhow::Error::msg)?;
            let (ns, _) = sb.locate(&from, IpFamily::V4)?;
            let (_, Some(ip)) = sb.locate(&to, IpFamily::V4)? else { bail!("{to} has no IPv4 address") };
            let seconds = seconds.min(60);
            let status = std::process::Command::new("ip")
                .args(["netns", "exec", &ns])
                .arg(helper()?)
                .args(["sandbox", "hold-raw", "--ip", &ip.to_string(), "--port", &port.to_string()])
                .args(["--seconds", &seconds.to_string(), "--interval-ms", &interval_ms.to_string()])
                .status()
                .context("running the connection holder")?;
            return Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::from(1) });
        }
        SandboxCommand::HoldRaw { ip, port, seconds, interval_ms } => {
            let flags = palisade_sandbox::net::hold(
                ip,
                port,
                Duration::from_secs(seconds.min(60)),
                Duration::from_millis(interval_ms.clamp(10, 1000)),
            )
            .context("connecting")?;
            let line: String = flags.iter().map(|ok| if *ok { '.' } else { 'X' }).collect();
            writeln!(out, "{line}")?;
            return Ok(if flags.iter().all(|ok| *ok) { ExitCode::SUCCESS } else { ExitCode::from(1) });
        }
        SandboxCommand::Ruleset { name } => {
            let mut sb = Sandbox::open(&name, &helper()?)?;
            if sb.agent_mode() {
                for (node, text) in sb.kernel_rulesets()? {
                    writeln!(out, "# {node} (as its agent applied it)")?;
                    out.write_all(text.as_bytes())?;
                }
            } else {
                out.write_all(sb.ruleset_text().as_bytes())?;
            }
        }
        SandboxCommand::Down { name, all } => {
            if all {
                for n in palisade_sandbox::list_dirs() {
                    palisade_cluster::controlplane::stop(&n);
                }
                let n = palisade_sandbox::down_all(&helper()?)?;
                writeln!(out, "removed {n} sandboxes and leftover namespaces")?;
            } else {
                let had_control_plane = palisade_cluster::controlplane::stop(&name);
                match Sandbox::open(&name, &helper()?) {
                    Ok(sb) => sb.down()?,
                    Err(_) if had_control_plane => {}
                    Err(e) => return Err(e.into()),
                }
                writeln!(out, "sandbox {name:?} removed")?;
            }
        }
        SandboxCommand::BenchClient { mode, ip, port, ms } => {
            let d = Duration::from_millis(ms.min(30_000));
            let n = match mode.as_str() {
                "crr" => palisade_sandbox::net::connect_loop(ip, port, d),
                "stream" => palisade_sandbox::net::stream(ip, port, d),
                other => bail!("unknown mode {other:?} (crr or stream)"),
            };
            writeln!(out, "{n}")?;
        }
        SandboxCommand::Serve { tcp, udp, sctp, sink, ready, who } => {
            palisade_sandbox::net::serve(&tcp, &udp, &sctp, &sink, &who, || match &ready {
                Some(r) => std::fs::write(r, b"ready"),
                None => Ok(()),
            })
            .context("serving the pod's ports")?;
        }
        SandboxCommand::Observe { name, follow, output } => {
            let sb = Sandbox::open(&name, &helper()?)?;
            crate::observe::sandbox_observe(&sb, follow, output == ObserveOutput::Json, &mut out)?;
        }
        SandboxCommand::AgentGet { addr, path } => {
            crate::observe::agent_get(&addr, &path, &mut out)?;
        }
        SandboxCommand::ProbeRaw { timeout_ms, targets } => {
            let timeout = Duration::from_millis(timeout_ms.min(1000));
            let parsed: Vec<(std::net::IpAddr, u16, Protocol)> = targets
                .iter()
                .map(|t| {
                    let mut it = t.split(',');
                    let ip = it.next().unwrap_or("").parse().with_context(|| format!("{t}: address"))?;
                    let port = it.next().unwrap_or("").parse().with_context(|| format!("{t}: port"))?;
                    let proto = it.next().unwrap_or("").parse().map_err(anyhow::Error::msg)?;
                    Ok((ip, port, proto))
                })
                .collect::<Result<_>>()?;
            // Bounded parallelism: at most 64 probes at once, each bounded by the timeout.
            let mut results = vec![false; parsed.len()];
            for (ci, chunk) in parsed.chunks(64).enumerate() {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|&(ip, port, proto)| {
                        std::thread::spawn(move || palisade_sandbox::net::probe(ip, port, proto, timeout))
                    })
                    .collect();
                for (i, h) in handles.into_iter().enumerate() {
                    results[ci * 64 + i] = h.join().unwrap_or(false);
                }
            }
            for r in results {
                writeln!(out, "{}", u8::from(r))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `IP` or `IP=tcp/80,udp/53`.
fn parse_external(s: &str) -> Result<palisade_conformance::ExternalHost> {
    palisade_conformance::ExternalHost::parse(s).map_err(anyhow::Error::msg)
}

/// Every case live: on one node enforced in process, or (`--nodes N`) on a control plane whose agents, one per
/// node, watch its API.
pub fn conformance_live(paths: &[PathBuf], nodes: Option<usize>) -> Result<ExitCode> {
    match nodes {
        None => run_cases(paths, &mut LiveBackend::new(helper()?)),
        Some(n) => {
            anyhow::ensure!(
                (1..=palisade_sandbox::MAX_NODES).contains(&n),
                "--nodes {n}: between 1 and {}",
                palisade_sandbox::MAX_NODES
            );
            let mut backend =
                palisade_cluster::conformance::ApiBackend::new(helper()?, n).map_err(|e| anyhow::anyhow!(e.0))?;
            run_cases(paths, &mut backend)
        }
    }
}
