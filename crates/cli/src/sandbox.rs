//! `palisade sandbox ...` and `palisade conformance --live`: argument parsing and rendering over palisade-sandbox.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use palisade_engine::{Connection, Endpoint, IpFamily, Kind, Object, Protocol};
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
        /// `spec.nodeName` node-0, node-1..., or in turn). Without it: one node enforced by this command.
        #[arg(long)]
        nodes: Option<usize>,
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
    /// Delete an object: `delete netpol NAME -n NS`.
    Delete {
        #[arg(long, default_value = "default")]
        name: String,
        kind: String,
        object: String,
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
    },
    /// Set or remove labels: `label pods NAME key=value other-` (namespaces: `label ns NAME ...`).
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
    /// (internal) Probe targets `IP,PORT,PROTO` from inside a namespace; prints 1 or 0 per target.
    #[command(name = "probe-raw", hide = true)]
    ProbeRaw {
        #[arg(long, default_value_t = 900)]
        timeout_ms: u64,
        targets: Vec<String>,
    },
}

pub fn helper() -> Result<PathBuf> {
    std::env::current_exe().context("locating the palisade binary")
}

fn objects(files: &[PathBuf]) -> Result<Vec<Object>> {
    let input = input::cluster(files)?;
    input::report(&input);
    if input.has_errors() {
        bail!("some objects were rejected; nothing was applied");
    }
    Ok(input.loaded.objects.into_iter().map(|o| o.value).collect())
}

pub fn run(cmd: SandboxCommand) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match cmd {
        SandboxCommand::Up { name, files, externals, nodes } => {
            let objs = if files.is_empty() { Vec::new() } else { objects(&files)? };
            let hosts = externals.iter().map(|e| parse_external(e)).collect::<Result<Vec<_>>>()?;
            let sb = Sandbox::up_with(&name, &objs, &hosts, &helper()?, nodes)?;
            let nodes = nodes.map(|n| format!(", {n} nodes with an agent each")).unwrap_or_default();
            writeln!(
                out,
                "sandbox {:?} is up: {} pods, {} outside hosts{nodes}",
                sb.name(),
                sb.pods().len(),
                hosts.len()
            )?;
        }
        SandboxCommand::Apply { name, files, keep_established } => {
            let objs = objects(&files)?;
            let mut sb = Sandbox::open(&name, &helper()?)?;
            if keep_established && sb.agent_mode() {
                bail!("--keep-established: the agents of a multi-node sandbox always cut what policy stops admitting");
            }
            sb.set_keep_established(keep_established);
            sb.apply(&objs)?;
            for o in &objs {
                writeln!(out, "{}/{} configured", o.kind().to_lowercase(), o.display_name())?;
            }
        }
        SandboxCommand::Delete { name, kind, object, namespace } => {
            let kind: Kind = kind.parse().map_err(anyhow::Error::msg)?;
            let mut sb = Sandbox::open(&name, &helper()?)?;
            if !sb.delete(kind, &namespace, &object)? {
                bail!("{object:?} not found in namespace {namespace:?}");
            }
            writeln!(out, "{object:?} deleted")?;
        }
        SandboxCommand::Label { name, kind, object, labels, namespace } => {
            let kind: Kind = kind.parse().map_err(anyhow::Error::msg)?;
            let mut sb = Sandbox::open(&name, &helper()?)?;
            let cluster = sb.cluster().clone();
            let mut obj = match kind {
                Kind::Pod => Object::Pod(Box::new(
                    cluster
                        .pod(&palisade_engine::ObjectKey::new(&namespace, &object))
                        .cloned()
                        .with_context(|| format!("pod {namespace}/{object} not found"))?,
                )),
                Kind::Namespace => Object::Namespace(cluster.namespace(&object).cloned().unwrap_or_else(|| {
                    let mut ns = k8s_openapi::api::core::v1::Namespace::default();
                    ns.metadata.name = Some(object.clone());
                    ns
                })),
                Kind::NetworkPolicy => bail!("label pods or namespaces"),
            };
            let map = obj.metadata_mut().labels.get_or_insert_with(Default::default);
            for l in &labels {
                if let Some(k) = l.strip_suffix('-') {
                    map.remove(k);
                } else if let Some((k, v)) = l.split_once('=') {
                    map.insert(k.to_owned(), v.to_owned());
                } else {
                    bail!("{l:?}: expected key=value or key-");
                }
            }
            sb.apply(&[obj])?;
            writeln!(out, "{} {object:?} labeled", kind_name(kind))?;
        }
        SandboxCommand::Get { name, resource, namespace, all_namespaces, output } => {
            let sb = Sandbox::open(&name, &helper()?)?;
            drop(out);
            return get_from(
                resource,
                sb.cluster(),
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
                let n = palisade_sandbox::down_all(&helper()?)?;
                writeln!(out, "removed {n} sandboxes and leftover namespaces")?;
            } else {
                Sandbox::open(&name, &helper()?)?.down()?;
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
        SandboxCommand::Serve { tcp, udp, sctp, sink, ready } => {
            let (t, u, s, k) = (tcp.clone(), udp.clone(), sctp.clone(), sink.clone());
            let server = std::thread::spawn(move || palisade_sandbox::net::serve(&t, &u, &s, &k));
            // Listeners bind within milliseconds; report readiness once they had the chance to.
            std::thread::sleep(Duration::from_millis(30));
            if server.is_finished() {
                server.join().map_err(|_| anyhow::anyhow!("server thread panicked"))??;
                bail!("the server stopped");
            }
            if let Some(r) = ready {
                std::fs::write(&r, b"ready").with_context(|| format!("writing {}", r.display()))?;
            }
            server.join().map_err(|_| anyhow::anyhow!("server thread panicked"))??;
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
    let (ip, ports) = s.split_once('=').unwrap_or((s, ""));
    let ip: std::net::IpAddr = ip.parse().with_context(|| format!("--external {s:?}: not an IP address"))?;
    let ports = ports
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (proto, port) = p.split_once('/').with_context(|| format!("--external {s:?}: expected PROTO/PORT"))?;
            let proto: Protocol = proto.parse().map_err(anyhow::Error::msg)?;
            let port: u16 = port.parse().with_context(|| format!("--external {s:?}: bad port {port:?}"))?;
            Ok((proto, port))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(palisade_conformance::ExternalHost { ip, ports })
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Pod => "pod",
        Kind::Namespace => "namespace",
        Kind::NetworkPolicy => "networkpolicy",
    }
}

pub fn conformance_live(paths: &[PathBuf], nodes: Option<usize>) -> Result<ExitCode> {
    let mut backend = LiveBackend::new(helper()?);
    backend.nodes = nodes;
    let code = run_cases(paths, &mut backend);
    drop(backend);
    code
}
