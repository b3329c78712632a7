//! The control-plane process of one sandbox: the store, the API server (TLS on 127.0.0.1, a bearer
//! token, a kubeconfig for kubectl), the controllers, the node roles (kubelet, dataplane, kube-proxy) and
//! cluster DNS. It lives until it is told to stop (SIGTERM, `sandbox down`), then removes everything the
//! sandbox made.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use palisade_conformance::ExternalHost;
use palisade_sandbox::Sandbox;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::apiserver::{ApiState, PodRuntime};
use crate::kubelet::{CLUSTER_DOMAIN, DNS_SERVICE_IP, Kubelet};
use crate::node::{Dataplane, Node};
use crate::store::{Store, ns_name};
use crate::tls::Credentials;

/// How to start a sandbox's control plane.
#[derive(Debug, Clone)]
pub struct Config {
    pub name: String,
    /// Several nodes, each enforced by its own agent; `None`: one node enforced in this process.
    pub nodes: Option<usize>,
    pub externals: Vec<ExternalHost>,
    /// The palisade binary (servers, probes and agents run from it).
    pub helper: PathBuf,
    /// The API server's port on 127.0.0.1 (0: any free one).
    pub port: u16,
    /// The kubelet writes a started pod's status (its address) only after this long.
    pub kubelet_delay: Duration,
    /// The agents let pods they have not programmed yet pass (`palisade agent --pod-start=open`).
    pub pod_start_open: bool,
    /// How pods are wired to their node (routed veths, or a bridge per node as flannel does).
    pub layout: palisade_sandbox::Layout,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlPlaneError {
    #[error("sandbox {0:?} already exists; `palisade sandbox down --name {0}` first")]
    Exists(String),
    #[error("the control plane exited ({status}):\n{log}")]
    Exited { status: std::process::ExitStatus, log: String },
    #[error("the control plane did not get ready within 60 s (log: {0})")]
    NotReady(PathBuf),
    #[error(transparent)]
    Sandbox(#[from] palisade_sandbox::SandboxError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ControlPlaneError {
    let what = what.into();
    move |source| ControlPlaneError::Io { what, source }
}

/// The file a running control plane writes once its API is ready: `{"pid", "port", "kubeconfig"}`.
pub fn ready_file(dir: &Path) -> PathBuf {
    dir.join("control-plane.json")
}

/// The sandbox's kubeconfig.
pub fn kubeconfig_file(dir: &Path) -> PathBuf {
    dir.join("kubeconfig")
}

/// The control plane's own socket (root only, in the sandbox's run directory): faults injected on request,
/// to test what clients and agents do when the API server restarts, a watch drops, or history is compacted.
pub fn control_socket(dir: &Path) -> PathBuf {
    dir.join("control.sock")
}

/// A fault the control plane injects on request (`palisade sandbox fault`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Every API connection ends (watches included) and, for this long, new ones are closed on accept.
    RestartApi(Duration),
    /// Every open watch stream ends; clients resume from their last resourceVersion.
    DropWatches,
    /// The store forgets its event window (as etcd's compaction) and every watch ends: a resume gets
    /// `410 Gone`, and clients must list again.
    Compact,
}

impl Fault {
    /// The request line on the control socket.
    pub fn line(self) -> String {
        match self {
            Fault::RestartApi(d) => format!("restart-api {}", d.as_millis()),
            Fault::DropWatches => "drop-watches".into(),
            Fault::Compact => "compact".into(),
        }
    }

    pub fn parse(line: &str) -> Option<Fault> {
        let mut words = line.split_whitespace();
        let f = match (words.next()?, words.next()) {
            ("restart-api", ms) => Fault::RestartApi(Duration::from_millis(ms.map_or(Some(1000), |m| m.parse().ok())?)),
            ("drop-watches", None) => Fault::DropWatches,
            ("compact", None) => Fault::Compact,
            _ => return None,
        };
        words.next().is_none().then_some(f)
    }
}

/// Asks the running control plane of the sandbox in `dir` to inject `fault`.
pub fn inject(dir: &Path, fault: Fault) -> Result<(), ControlPlaneError> {
    use std::io::{BufRead, BufReader};
    let path = control_socket(dir);
    let mut s =
        std::os::unix::net::UnixStream::connect(&path).map_err(io(format!("connecting to {}", path.display())))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).map_err(io("waiting for the control plane"))?;
    writeln!(s, "{}", fault.line()).map_err(io("asking the control plane"))?;
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer).map_err(io("waiting for the control plane"))?;
    if answer.trim() == "ok" {
        Ok(())
    } else {
        Err(ControlPlaneError::Io {
            what: "the control plane refused the fault".into(),
            source: std::io::Error::other(answer.trim().to_owned()),
        })
    }
}

/// Answers fault requests on the control socket.
async fn serve_control(listener: tokio::net::UnixListener, state: Arc<ApiState>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    while let Ok((stream, _)) = listener.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut line = String::new();
            if BufReader::new(r).read_line(&mut line).await.is_err() {
                return;
            }
            let answer = match Fault::parse(&line) {
                Some(f) => {
                    tracing::info!(fault = ?f, "injecting a fault");
                    match f {
                        Fault::RestartApi(down) => state.restart(down),
                        Fault::DropWatches => state.drop_watches(),
                        Fault::Compact => {
                            state.store.compact();
                            state.drop_watches();
                        }
                    }
                    "ok\n".to_owned()
                }
                None => format!("unknown fault {:?}: restart-api [MS], drop-watches or compact\n", line.trim()),
            };
            let _ = w.write_all(answer.as_bytes()).await;
        });
    }
}

/// The sandbox's node names.
pub fn node_names(nodes: Option<usize>) -> Vec<String> {
    (0..nodes.unwrap_or(1)).map(palisade_sandbox::node_name).collect()
}

/// What a new cluster holds before anyone writes: system namespaces, the nodes, the `kubernetes` Service,
/// and cluster DNS (a `kube-system` Deployment labelled `k8s-app: kube-dns` behind Service `kube-dns`).
pub fn bootstrap(store: &Store, nodes: &[String]) {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let _ = store.create(
            "/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                   "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
        );
    }
    for (i, n) in nodes.iter().enumerate() {
        let ip = crate::kubelet::host_ip(n);
        let now = crate::store::now_rfc3339();
        let role = if i == 0 { json!({"node-role.kubernetes.io/control-plane": ""}) } else { json!({}) };
        let mut labels =
            json!({"kubernetes.io/hostname": n, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"});
        if let Some(m) = role.as_object() {
            for (k, v) in m {
                labels[k] = v.clone();
            }
        }
        let _ = store.create(
            "/nodes",
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n, "labels": labels},
                   "spec": {"podCIDR": palisade_sandbox::pod_range(i).to_string(),
                            "podCIDRs": [palisade_sandbox::pod_range(i).to_string()]},
                   "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                              "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now}],
                              "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": n}],
                              "nodeInfo": {"kubeletVersion": format!("v1.{}.0", crate::apiserver::SERVER_MINOR),
                                           "kubeProxyVersion": "", "containerRuntimeVersion": "palisade://sandbox",
                                           "osImage": "Palisade sandbox", "kernelVersion": "", "operatingSystem": "linux",
                                           "architecture": "amd64", "machineID": "", "systemUUID": "", "bootID": ""}}}),
        );
    }
    let mut svc = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"], "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}});
    crate::strategy::default("Service", &mut svc);
    let _ = store.create("/services", svc);
    let labels = json!({"k8s-app": "kube-dns"});
    let mut dns = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "coredns", "namespace": "kube-system", "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels, "annotations": {"sandbox.palisade.dev/serve": "none"}},
                              "spec": {"containers": [{"name": "coredns", "image": DNS_IMAGE,
                                "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                          {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"}]}],
                                       "dnsPolicy": "Default"}}}});
    crate::strategy::default("Deployment", &mut dns);
    let _ = store.create("apps/deployments", dns);
    let mut svc = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}},
        "spec": {"clusterIP": DNS_SERVICE_IP, "clusterIPs": [DNS_SERVICE_IP], "selector": labels,
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                           {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]}});
    crate::strategy::default("Service", &mut svc);
    let _ = store.create("/services", svc);
}

/// The image name the kubelet runs as cluster DNS (served by this process inside the pod's namespace).
pub const DNS_IMAGE: &str = "palisade.dev/sandbox/dns";

/// Runs commands in pods through `ip netns exec` (which also puts the pod's resolver in place).
struct NetnsRuntime {
    sandbox: Arc<Mutex<Sandbox>>,
}

impl PodRuntime for NetnsRuntime {
    fn exec_command(&self, namespace: &str, pod: &str, argv: &[String]) -> Result<tokio::process::Command, String> {
        if argv.is_empty() {
            return Err("you must specify at least one command for the container".into());
        }
        let sb = self.sandbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let host = sb
            .pods()
            .get(&format!("{namespace}/{pod}"))
            .ok_or_else(|| format!("container for pod {namespace}/{pod} is not running"))?;
        let mut cmd = tokio::process::Command::new("ip");
        cmd.args(["netns", "exec", &host.netns]).args(argv);
        Ok(cmd)
    }
}

/// Binds UDP and TCP `addr` inside a network namespace (a thread enters it, binds, and ends; the sockets
/// stay in that namespace).
pub fn bind_in_netns(netns: &str, addr: SocketAddr) -> std::io::Result<(std::net::UdpSocket, std::net::TcpListener)> {
    let path = PathBuf::from("/var/run/netns").join(netns);
    std::thread::scope(|s| {
        s.spawn(|| {
            let f = std::fs::File::open(&path)?;
            nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
            let udp = std::net::UdpSocket::bind(addr)?;
            let tcp = std::net::TcpListener::bind(addr)?;
            udp.set_nonblocking(true)?;
            tcp.set_nonblocking(true)?;
            Ok((udp, tcp))
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the namespace thread panicked")))
    })
}

/// DNS records from the store: Services (cluster IPs, or ready endpoints when headless) and pods.
pub fn dns_records(store: &Store) -> (Vec<crate::dns::ServiceRecord>, Vec<crate::dns::PodRecord>) {
    use crate::dns::{EndpointRecord, PodRecord, PortRecord, ServiceRecord};
    let slices = store.list("discovery.k8s.io/endpointslices", None).0;
    let services = store
        .list("/services", None)
        .0
        .iter()
        .map(|s| {
            let (ns, name) = ns_name(s);
            let cluster_ips: Vec<IpAddr> = s["spec"]["clusterIPs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i.as_str()?.parse().ok())
                .collect();
            let endpoints = slices
                .iter()
                .filter(|e| {
                    e["metadata"]["namespace"] == ns.as_str()
                        && e["metadata"]["labels"]["kubernetes.io/service-name"] == name.as_str()
                })
                .flat_map(|e| e["endpoints"].as_array().cloned().unwrap_or_default())
                .filter(|e| e["conditions"]["ready"] == true)
                .flat_map(|e| {
                    let hostname = e["hostname"].as_str().map(str::to_owned);
                    e["addresses"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|a| a.as_str()?.parse().ok())
                        .map(|ip| EndpointRecord { ip, hostname: hostname.clone() })
                        .collect::<Vec<_>>()
                })
                .collect();
            let ports = s["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    Some(PortRecord {
                        name: p["name"].as_str().unwrap_or("").to_owned(),
                        protocol: p["protocol"].as_str().unwrap_or("TCP").to_owned(),
                        port: u16::try_from(p["port"].as_u64()?).ok()?,
                    })
                })
                .collect();
            ServiceRecord { namespace: ns, name, cluster_ips, endpoints, ports }
        })
        .collect();
    let pods = store
        .list("/pods", None)
        .0
        .iter()
        .filter_map(|p| Some(PodRecord { namespace: ns_name(p).0, ip: p["status"]["podIP"].as_str()?.parse().ok()? }))
        .collect();
    (services, pods)
}

/// Keeps the DNS records current and serves them inside the DNS pod's namespace (re-binding when that pod
/// is replaced).
async fn run_dns(store: Store, sandbox: Arc<Mutex<Sandbox>>) {
    let records = crate::dns::Records::new(CLUSTER_DOMAIN);
    let Ok((_, mut rx)) = store.watch(0) else { return };
    let mut serving: Option<(String, tokio::task::JoinHandle<()>)> = None;
    loop {
        let (services, pods) = dns_records(&store);
        records.replace(services, pods);
        let dns_pod = store
            .list("/pods", Some("kube-system"))
            .0
            .into_iter()
            .find(|p| p["status"]["phase"] == "Running" && p["spec"]["containers"][0]["image"] == DNS_IMAGE);
        let netns = dns_pod.and_then(|p| {
            let (ns, name) = ns_name(&p);
            let sb = sandbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            sb.pods().get(&format!("{ns}/{name}")).map(|h| h.netns.clone())
        });
        if serving.as_ref().map(|(n, _)| n) != netns.as_ref() {
            if let Some((_, h)) = serving.take() {
                h.abort();
            }
            if let Some(netns) = netns {
                match bind_in_netns(&netns, SocketAddr::from(([0, 0, 0, 0], 53))) {
                    Ok((udp, tcp)) => {
                        match (tokio::net::UdpSocket::from_std(udp), tokio::net::TcpListener::from_std(tcp)) {
                            (Ok(udp), Ok(tcp)) => {
                                let r = records.clone();
                                let h = tokio::spawn(async move {
                                    if let Err(e) = crate::dns::serve(udp, tcp, r).await {
                                        tracing::warn!(error = %e, "cluster DNS stopped");
                                    }
                                });
                                serving = Some((netns, h));
                            }
                            _ => tracing::warn!("cluster DNS: could not register its sockets"),
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cluster DNS: could not bind port 53 in its pod"),
                }
            }
        }
        match rx.recv().await {
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        while rx.try_recv().is_ok() {}
    }
}

fn write_private(path: &Path, text: &str) -> Result<(), ControlPlaneError> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(format!("writing {}", tmp.display())))?;
    f.write_all(text.as_bytes()).map_err(io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io(format!("writing {}", path.display())))
}

/// Runs the control plane until SIGTERM or SIGINT, then tears the sandbox down.
pub fn run(config: Config) -> Result<(), ControlPlaneError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(io("starting the runtime"))?;
    let mut sandbox =
        Sandbox::up_for_control_plane(&config.name, &config.externals, &config.helper, config.nodes, config.layout)?;
    // Removed on every exit path from here: drop, or the signal handler's cleanup of temporary sandboxes.
    sandbox.set_ephemeral(true);
    let dir = palisade_sandbox::run_root().join(&config.name);
    let node_netns: Vec<String> = (0..config.nodes.unwrap_or(1)).map(|i| sandbox.node_ns_of(i)).collect();
    let node_netns_for_api = node_netns.clone();
    let nodes = node_names(config.nodes);
    let sandbox = Arc::new(Mutex::new(sandbox));
    let creds = Credentials::generate(&config.name)?;
    // Watches resume within the last 4,096 changes (etcd keeps minutes of history; clients re-list after 410).
    let store = Store::new(4096);
    bootstrap(&store, &nodes);
    let stop = Arc::new(AtomicBool::new(false));
    let mut kubelet = Kubelet::new(nodes.clone());
    kubelet.status_delay = config.kubelet_delay;
    let node = Node {
        dir: dir.clone(),
        kubelet,
        dataplane: config.nodes.is_none().then(Dataplane::default),
        proxy: crate::kubeproxy::KubeProxy::new(node_netns),
        sandbox: sandbox.clone(),
        relevant_rv: 0,
    };
    let node_thread = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || node.run(store, stop))
    };
    let result = rt.block_on(async {
        let (listener, addr) = crate::apiserver::bind(config.port).await.map_err(io("binding the API server"))?;
        let runtime: Arc<dyn PodRuntime> = Arc::new(NetnsRuntime { sandbox: sandbox.clone() });
        let state = ApiState::new(store.clone(), creds.token.clone(), Some(runtime));
        let tls = creds.server_config()?;
        // With agents, the API also answers on 127.0.0.1 inside each node namespace (same port, same
        // certificate): agents reach it as on a cluster, and nothing of it is exposed beyond loopback.
        if config.nodes.is_some() {
            for netns in &node_netns_for_api {
                let (_, tcp) = bind_in_netns(netns, addr).map_err(io(format!("serving the API in {netns}")))?;
                let l = TcpListener::from_std(tcp).map_err(io("serving the API"))?;
                let (tls, state) = (tls.clone(), state.clone());
                tokio::spawn(async move {
                    if let Err(e) = crate::apiserver::serve_tls(l, tls, state).await {
                        tracing::error!(error = %e, "the API server stopped");
                    }
                });
            }
        }
        let sock = control_socket(&dir);
        let _ = std::fs::remove_file(&sock);
        let control = tokio::net::UnixListener::bind(&sock).map_err(io(format!("binding {}", sock.display())))?;
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600));
        }
        tokio::spawn(serve_control(control, state.clone()));
        tokio::spawn(async move {
            if let Err(e) = crate::apiserver::serve_tls(listener, tls, state).await {
                tracing::error!(error = %e, "the API server stopped");
            }
        });
        tokio::spawn(crate::controllers::run(store.clone()));
        tokio::spawn(run_dns(store.clone(), sandbox.clone()));
        let kubeconfig = kubeconfig_file(&dir);
        write_private(&kubeconfig, &creds.kubeconfig(&config.name, addr.port()))?;
        if config.nodes.is_some() {
            let mut sb = sandbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            sb.set_agent_pod_start_open(config.pod_start_open);
            sb.start_agents_on_api(&kubeconfig)?;
        }
        write_private(
            &ready_file(&dir),
            &json!({"pid": std::process::id(), "port": addr.port(), "kubeconfig": kubeconfig}).to_string(),
        )?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(io("waiting for signals"))?;
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok::<(), ControlPlaneError>(())
    });
    stop.store(true, Ordering::SeqCst);
    let _ = node_thread.join();
    rt.shutdown_timeout(Duration::from_secs(1));
    if let Ok(m) = Arc::try_unwrap(sandbox) {
        let sb = m.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        sb.down()?;
    } else {
        palisade_sandbox::cleanup_ephemeral();
    }
    result
}

/// Starts the control-plane process of sandbox `name` from the palisade binary `helper` (detached, in its own
/// process group: it lives until [`stop`]) and waits until its API answers; returns the kubeconfig's path.
pub fn spawn(config: &Config) -> Result<PathBuf, ControlPlaneError> {
    use std::os::unix::process::CommandExt;
    let Config { name, nodes, externals, helper, port, kubelet_delay, pod_start_open, layout } = config;
    let dir = palisade_sandbox::run_root().join(name);
    if read_ready(&dir).is_some() || dir.join("state.json").exists() {
        return Err(ControlPlaneError::Exists(name.to_owned()));
    }
    std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
    let log_path = dir.join("control-plane.log");
    let log = std::fs::File::create(&log_path).map_err(io("creating the control plane's log"))?;
    let log_err = log.try_clone().map_err(io("creating the control plane's log"))?;
    let mut cmd = std::process::Command::new(helper);
    cmd.args(["sandbox", "control-plane", "--name", name, "--port", &port.to_string()])
        .args(["--kubelet-delay-ms", &kubelet_delay.as_millis().to_string()]);
    for e in externals {
        cmd.args(["--external", &e.arg()]);
    }
    if let Some(n) = nodes {
        cmd.args(["--nodes", &n.to_string()]);
    }
    if *pod_start_open {
        cmd.args(["--pod-start", "open"]);
    }
    if *layout == palisade_sandbox::Layout::Bridge {
        cmd.args(["--layout", "bridge"]);
    }
    // Its roles run on several threads that allocate and free each other's objects: glibc's per-thread arenas
    // would keep ~13 MB of freed memory stranded at 1,000 pods (measured: 61 MB peak without, 55 MB with).
    cmd.env("MALLOC_ARENA_MAX", "2");
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .process_group(0)
        .spawn()
        .map_err(io("starting the control plane"))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(ready) = read_ready(&dir) {
            return Ok(PathBuf::from(ready["kubeconfig"].as_str().unwrap_or_default()));
        }
        if let Some(status) = child.try_wait().map_err(io("waiting for the control plane"))? {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default().trim().to_owned();
            let _ = std::fs::remove_dir_all(&dir);
            return Err(ControlPlaneError::Exited { status, log });
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            return Err(ControlPlaneError::NotReady(log_path));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Stops a sandbox's control plane (SIGTERM, then waits until it has removed what it made; SIGKILL after
/// 30 s); false when none was running.
pub fn stop(name: &str) -> bool {
    let dir = palisade_sandbox::run_root().join(name);
    let Some(ready) = read_ready(&dir) else { return false };
    let Some(pid) = ready["pid"].as_u64().and_then(|p| i32::try_from(p).ok()) else { return false };
    let alive = || std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.contains("control-plane"));
    let pid = nix::unistd::Pid::from_raw(pid);
    if alive() {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while alive() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if alive() {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
    true
}

/// Control planes this process started for itself (live conformance), stopped by [`stop_temporary`] from a
/// signal handler, where destructors do not run.
static TEMPORARY: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Marks the control plane of sandbox `name` as this process's own (or no longer).
pub fn set_temporary(name: &str, on: bool) {
    let mut v = TEMPORARY.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    v.retain(|n| n != name);
    if on {
        v.push(name.to_owned());
    }
}

/// Stops every control plane this process marked temporary (each removes its sandbox).
pub fn stop_temporary() {
    let names = std::mem::take(&mut *TEMPORARY.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    for n in names {
        stop(&n);
    }
}

/// What `sandbox up` reads from a running control plane.
pub fn read_ready(dir: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(ready_file(dir)).ok()?).ok()
}
