//! The sandbox: pods as Linux network namespaces on one machine, routed through a node namespace where the
//! Palisade dataplane enforces NetworkPolicy, with real servers on the pods' ports and real probes.
//!
//! Invariants: every namespace, link and nft table it creates carries the sandbox's own prefix; nothing is
//! done in the host namespace but creating and deleting those; no namespace gets a route off the machine
//! (pods route only to the node, the node only to its pods). State lives under a run directory so separate
//! commands share it.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::PodIP;
use palisade_conformance::{Backend, CaseError, ExternalHost};
use palisade_engine::cnp::{ClusterKind, ClusterObject};
use palisade_engine::model::PodFacts;
use palisade_engine::{Cluster, Connection, Endpoint, Index, IpFamily, Kind, Object, ObjectKey, Protocol, Store};
use palisade_nft::{
    ConntrackCommand, Dataplane, Nft, NftDataplane, NftSession, Node, NodeCompiler, Ruleset, SyncReport,
};
use serde::{Deserialize, Serialize};

pub mod bench;
pub mod net;
pub mod sctp;

/// `none` on a pod: no app server on its ports (something else serves them).
pub const SERVE_ANNOTATION: &str = "sandbox.palisade.dev/serve";

/// The nft table Palisade owns in a node namespace.
pub const TABLE: &str = "palisade";
/// Every sandbox namespace starts with this.
pub const NETNS_PREFIX: &str = "palisade-";
/// Probes give up after this long (the issue bounds it at 1 s).
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(900);

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("{command}: {stderr}")]
    Command { command: String, stderr: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Nft(#[from] palisade_nft::NftError),
}

type Result<T, E = SandboxError> = std::result::Result<T, E>;

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SandboxError {
    let what = what.into();
    move |source| SandboxError::Io { what, source }
}

/// Set once a signal asked this process to stop: no new namespaces from then on.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Runs `ip ARGS...` (the one way the sandbox changes the system).
fn ip(args: &[&str]) -> Result<()> {
    if args.starts_with(&["netns", "add"]) && INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(SandboxError::Invalid("interrupted".into()));
    }
    let out = Command::new("ip").args(args).stdin(Stdio::null()).output().map_err(io("running ip"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(SandboxError::Command {
            command: format!("ip {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

fn sysctl(netns: &str, settings: &[String]) -> Result<()> {
    let mut args = vec!["netns", "exec", netns, "sysctl", "-qw"];
    args.extend(settings.iter().map(String::as_str));
    ip(&args)
}

/// The run directory holding every sandbox's state.
pub fn run_root() -> PathBuf {
    std::env::var_os("PALISADE_RUN_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/run/palisade"))
}

/// How pods are wired to their node, as network plugins do it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Each pod's veth is routed (a /32 host route and proxy ARP on the node side), as Calico and Cilium do.
    #[default]
    Routed,
    /// Pods hang off one bridge per node holding the gateway (the first address of the node's pod range),
    /// as flannel's `cni0`: no host routes, and the forward hook sees the bridge, not the pod's port.
    Bridge,
}

impl std::str::FromStr for Layout {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "routed" => Ok(Layout::Routed),
            "bridge" => Ok(Layout::Bridge),
            _ => Err(format!("layout {s:?}: routed or bridge")),
        }
    }
}

/// One pod or outside host: its namespace, node-side interface, addresses and server process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Host {
    /// The node the host is attached to (0 in a single-node sandbox).
    #[serde(default)]
    pub node: usize,
    pub netns: String,
    pub ifname: String,
    pub ips: Vec<IpAddr>,
    pub ports: Vec<(Protocol, u16)>,
    pub pid: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct State {
    name: String,
    tag: String,
    next: u32,
    objects: Vec<serde_json::Value>,
    pods: BTreeMap<String, Host>,
    externals: BTreeMap<String, Host>,
    /// Agent mode: this many node namespaces, each enforced by its own `palisade agent` reading the
    /// sandbox's manifest folder. `None`: one node, enforced by this process directly.
    #[serde(default)]
    nodes: Option<usize>,
    /// The manifest folder's revision (agent mode).
    #[serde(default)]
    revision: u64,
    /// Round-robin position for pods without a sandbox node in `spec.nodeName`.
    #[serde(default)]
    next_node: usize,
    /// What each manifest file holds (agent mode), to rewrite only what changed.
    #[serde(default)]
    published: BTreeMap<String, String>,
    /// Agent mode on a cluster API: the agents watch the API server through this kubeconfig (the sandbox's
    /// control plane); nothing is published to the manifest folder.
    #[serde(default)]
    agent_kubeconfig: Option<PathBuf>,
    /// The agents run with `--pod-start=open` (pods they have not programmed yet pass).
    #[serde(default)]
    agent_pod_start_open: bool,
    #[serde(default)]
    layout: Layout,
    /// Host-network pods: hosts at their `status.podIPs` (their node's addresses) serving their ports. For
    /// policy they are those addresses, not pods (nothing selects them; ipBlock, networks and nodes peers
    /// name them), so they are kept apart from `pods`, whose hosts are the node's enforced pods.
    #[serde(default)]
    host_pods: BTreeMap<String, Host>,
}

/// The most nodes a sandbox has (interface names carry one digit per node).
pub const MAX_NODES: usize = 8;

/// Node `i`'s pod address range (its Node's `spec.podCIDRs`): the sandbox gives a pod without an address of
/// its own one from the range of the node it runs on, and each node's agent keeps the range closed to
/// addresses it does not know yet.
pub fn pod_range(i: usize) -> ipnet::Ipv4Net {
    let third = 128 + 16 * u8::try_from(i % MAX_NODES).unwrap_or(0);
    ipnet::Ipv4Net::new(std::net::Ipv4Addr::new(10, 244, third, 0), 20).unwrap_or_default()
}

/// The gateway of node `i`'s pods in the bridge layout (its bridge's address): the first of its range, which
/// no pod gets in either layout.
pub fn gateway(i: usize) -> std::net::Ipv4Addr {
    pod_range(i).hosts().next().unwrap_or(pod_range(i).addr())
}

/// The Kubernetes name of sandbox node `i`.
pub fn node_name(i: usize) -> String {
    format!("node-{i}")
}

/// The IPv4 address of node `i` on the underlay links.
fn underlay_v4(i: usize) -> String {
    format!("172.31.255.{}", i + 1)
}

/// The IPv6 link-local address of node `i` on the underlay links.
fn underlay_v6(i: usize) -> String {
    format!("fe80::ff:{}", i + 1)
}

/// A running sandbox.
#[derive(Debug)]
pub struct Sandbox {
    state: State,
    /// The cluster's objects as applied (for state, tables, the manifest folder).
    cluster: Cluster,
    /// What the engine keeps of them, with the index updated in place across changes.
    store: Store,
    dir: PathBuf,
    helper: PathBuf,
    /// Remove everything when dropped (tests, live conformance); a `sandbox up` keeps it. Set through
    /// [`Sandbox::set_ephemeral`] so signal handlers know about it too.
    ephemeral: bool,
    dataplane: NftDataplane<NftSession, ConntrackCommand>,
    /// Pods treated as local to the node without a namespace of their own (benchmarks: a node with many
    /// pods whose traffic is not generated). Not persisted.
    phantom: BTreeMap<ObjectKey, String>,
    /// Write the state after each change (off for benchmarks, whose clusters are large and throwaway).
    persist: bool,
    /// What the next compile can reuse from the last.
    /// The node's table in pieces (`None` until the first full compile of this process).
    compiler: Option<NodeCompiler>,
}

fn protocol_of(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

/// An engine object as the Kubernetes JSON the API and the manifest folder carry (with apiVersion and kind).
pub fn object_json(o: &Object) -> serde_json::Value {
    let v = match o {
        Object::Namespace(x) => serde_json::to_value(x),
        Object::Pod(x) => serde_json::to_value(x),
        Object::NetworkPolicy(x) => serde_json::to_value(x),
    };
    let mut v = v.unwrap_or_default();
    let (api, kind) = match o {
        Object::Namespace(_) => ("v1", "Namespace"),
        Object::Pod(_) => ("v1", "Pod"),
        Object::NetworkPolicy(_) => ("networking.k8s.io/v1", "NetworkPolicy"),
    };
    if let Some(m) = v.as_object_mut() {
        m.insert("apiVersion".into(), api.into());
        m.insert("kind".into(), kind.into());
    }
    v
}

/// A cluster-scoped object (tier policy, Node) as the Kubernetes JSON the API and the manifest folder carry.
pub fn cluster_object_json(o: &ClusterObject) -> serde_json::Value {
    let v = match o {
        ClusterObject::ClusterNetworkPolicy(x) => serde_json::to_value(x),
        ClusterObject::AdminNetworkPolicy(x) => serde_json::to_value(x),
        ClusterObject::BaselineAdminNetworkPolicy(x) => serde_json::to_value(x),
        ClusterObject::Node(x) => serde_json::to_value(x),
    };
    let mut v = v.unwrap_or_default();
    let (api, kind) = o.type_meta();
    if let Some(m) = v.as_object_mut() {
        m.insert("apiVersion".into(), api.into());
        m.insert("kind".into(), kind.into());
    }
    v
}

impl Sandbox {
    /// Node `i`'s namespace: `palisade-<name>-node`, then `-node1`, `-node2`...
    pub fn node_ns_of(&self, i: usize) -> String {
        if i == 0 {
            format!("{NETNS_PREFIX}{}-node", self.state.name)
        } else {
            format!("{NETNS_PREFIX}{}-node{i}", self.state.name)
        }
    }

    fn node_count(&self) -> usize {
        self.state.nodes.unwrap_or(1)
    }

    /// Whether agents enforce the sandbox (made with `--nodes`).
    pub fn agent_mode(&self) -> bool {
        self.state.nodes.is_some()
    }

    /// Agent mode: the folder the agents read (one file per object, then `.revision`).
    pub fn manifests_dir(&self) -> PathBuf {
        self.dir.join("manifests")
    }

    fn status_file(&self, i: usize) -> PathBuf {
        self.dir.join(format!("status-{}.json", node_name(i)))
    }

    /// Where node `i`'s agent logs.
    pub fn agent_log(&self, i: usize) -> PathBuf {
        self.dir.join(format!("agent-{}.log", node_name(i)))
    }

    /// Creates a single-node sandbox enforced by this process: the node namespace, then every pod of
    /// `objects`, then the rules.
    pub fn up(name: &str, objects: &[Object], externals: &[ExternalHost], helper: &Path) -> Result<Sandbox> {
        Self::up_with(name, objects, externals, helper, None)
    }

    /// Creates a sandbox; with `nodes`, that many node namespaces joined by an underlay, each enforced by
    /// its own agent process reading the sandbox's manifest folder.
    pub fn up_with(
        name: &str,
        objects: &[Object],
        externals: &[ExternalHost],
        helper: &Path,
        nodes: Option<usize>,
    ) -> Result<Sandbox> {
        Self::create(name, objects, externals, helper, nodes, true, Layout::Routed)
    }

    /// For a cluster's control plane: the sandbox's nodes without their agents, which start later on the
    /// cluster's API ([`Sandbox::start_agents_on_api`]), once it answers inside the node namespaces.
    pub fn up_for_control_plane(
        name: &str,
        externals: &[ExternalHost],
        helper: &Path,
        nodes: Option<usize>,
        layout: Layout,
    ) -> Result<Sandbox> {
        Self::create(name, &[], externals, helper, nodes, false, layout)
    }

    fn create(
        name: &str,
        objects: &[Object],
        externals: &[ExternalHost],
        helper: &Path,
        nodes: Option<usize>,
        start_agents: bool,
        layout: Layout,
    ) -> Result<Sandbox> {
        if let Some(n) = nodes
            && !(1..=MAX_NODES).contains(&n)
        {
            return Err(SandboxError::Invalid(format!("--nodes {n}: between 1 and {MAX_NODES}")));
        }
        if name.is_empty()
            || name.len() > 20
            || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(SandboxError::Invalid(format!(
                "sandbox name {name:?}: use 1-20 characters of a-z, 0-9 and '-'"
            )));
        }
        let dir = run_root().join(name);
        if dir.join("state.json").exists() {
            return Err(SandboxError::Invalid(format!(
                "sandbox {name:?} already exists; `palisade sandbox down --name {name}` first"
            )));
        }
        std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
        let hash = name.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        let state =
            State { name: name.to_owned(), tag: format!("p{:04x}", hash & 0xffff), nodes, layout, ..State::default() };
        let node = format!("{NETNS_PREFIX}{name}-node");
        let mut sb = Sandbox {
            state,
            cluster: Cluster::new(),
            store: Store::new(),
            dir,
            helper: helper.to_owned(),
            ephemeral: false,
            dataplane: NftDataplane::new(
                NftSession::new(Some(node.clone())),
                ConntrackCommand::new(Some(node.clone())),
            ),
            phantom: BTreeMap::new(),
            persist: true,
            compiler: None,
        };
        // From here on a failure tears down what was made.
        sb.set_ephemeral(true);
        for i in 0..sb.node_count() {
            let node = sb.node_ns_of(i);
            ip(&["netns", "add", &node])?;
            ip(&["-n", &node, "link", "set", "lo", "up"])?;
            ip(&["-n", &node, "addr", "add", "169.254.1.1/32", "dev", "lo"])?;
            sysctl(
                &node,
                &[
                    "net.ipv4.ip_forward=1".into(),
                    "net.ipv6.conf.all.forwarding=1".into(),
                    "net.ipv4.conf.all.rp_filter=0".into(),
                    "net.ipv4.conf.default.rp_filter=0".into(),
                ],
            )?;
            if layout == Layout::Bridge {
                let (br, gw) = (sb.bridge(), gateway(i));
                ip(&["-n", &node, "link", "add", &br, "type", "bridge"])?;
                ip(&["-n", &node, "addr", "add", &format!("{gw}/{}", pod_range(i).prefix_len()), "dev", &br])?;
                ip(&["-n", &node, "-6", "addr", "add", "fe80::1/64", "dev", &br, "nodad"])?;
                ip(&["-n", &node, "link", "set", &br, "up"])?;
                // Bridged IPv4 and IPv6 reach the forward hook (br_netfilter), where the policy is.
                sysctl(
                    &node,
                    &["net.bridge.bridge-nf-call-iptables=1".into(), "net.bridge.bridge-nf-call-ip6tables=1".into()],
                )?;
            }
        }
        if sb.agent_mode() {
            sb.link_nodes()?;
            let dir = sb.manifests_dir();
            std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
            if start_agents {
                for i in 0..sb.node_count() {
                    sb.start_agent(i)?;
                }
            }
        } else {
            sb.dataplane.nft.apply(&format!("table inet {TABLE} {{}}\n"))?;
        }
        for e in externals {
            let key = e.ip.to_string();
            let host = sb.add_host(0, &[e.ip], &e.ports, Some(&key), Layout::Routed)?;
            sb.state.externals.insert(key, host);
        }
        if start_agents {
            sb.apply(objects)?;
        } else {
            // Agents come later, on the API; there is nothing to publish or wait for yet.
            sb.save()?;
        }
        sb.set_ephemeral(false);
        Ok(sb)
    }

    /// Opens a sandbox made by an earlier command.
    pub fn open(name: &str, helper: &Path) -> Result<Sandbox> {
        let dir = run_root().join(name);
        let text = std::fs::read_to_string(dir.join("state.json"))
            .map_err(|_| SandboxError::Invalid(format!("no sandbox named {name:?} (see `palisade sandbox up`)")))?;
        let state: State = serde_json::from_str(&text).map_err(|e| SandboxError::Invalid(format!("{e}")))?;
        let mut loaded = palisade_engine::Loaded::default();
        for (i, v) in state.objects.iter().enumerate() {
            let origin = palisade_engine::Origin { source: "state".into(), document: i + 1, item: None };
            palisade_engine::load::load_value(origin, v.clone(), &mut loaded);
        }
        let mut cluster = Cluster::from_objects(loaded.objects.into_iter().map(|o| o.value));
        for o in loaded.cluster_objects {
            cluster.apply_cluster(o.value);
        }
        let node = format!("{NETNS_PREFIX}{name}-node");
        let dataplane = NftDataplane::new(NftSession::new(Some(node.clone())), ConntrackCommand::new(Some(node)));
        let mut sb = Sandbox {
            state,
            store: Store::from_cluster(&cluster),
            cluster,
            dir,
            helper: helper.to_owned(),
            ephemeral: false,
            dataplane,
            phantom: BTreeMap::new(),
            persist: true,
            compiler: None,
        };
        // The kernel holds what the saved state compiles to, so the next change is an incremental transaction.
        if !sb.agent_mode() {
            let current = sb.compile();
            sb.dataplane.assume_applied(current);
        }
        Ok(sb)
    }

    /// Makes the sandbox temporary: removed when dropped, or by [`cleanup_ephemeral`] on a signal.
    pub fn set_ephemeral(&mut self, on: bool) {
        self.ephemeral = on;
        register_ephemeral(&self.state.name, on);
    }

    pub fn name(&self) -> &str {
        &self.state.name
    }

    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    pub fn pods(&self) -> &BTreeMap<String, Host> {
        &self.state.pods
    }

    fn save(&mut self) -> Result<()> {
        if !self.persist {
            return Ok(());
        }
        self.state.objects = all_objects(&self.cluster)
            .iter()
            .map(object_json)
            .chain(self.cluster.cluster_objects().map(cluster_object_json))
            .collect();
        let text = serde_json::to_string_pretty(&self.state).map_err(|e| SandboxError::Invalid(e.to_string()))?;
        // Written whole and renamed into place: other processes (`sandbox probe`, tests) read it meanwhile.
        let tmp = self.dir.join(".state.json.tmp");
        std::fs::write(&tmp, text).map_err(io("writing sandbox state"))?;
        std::fs::rename(&tmp, self.dir.join("state.json")).map_err(io("writing sandbox state"))
    }

    fn used_ips(&self) -> Vec<IpAddr> {
        let hosts = self.state.pods.values().chain(self.state.host_pods.values()).chain(self.state.externals.values());
        hosts.flat_map(|h| h.ips.clone()).collect()
    }

    /// Creates a namespace routed through the node with these addresses, serving these ports.
    /// The bridge of each node namespace (bridge layout).
    fn bridge(&self) -> String {
        format!("{}br", self.state.tag)
    }

    /// Creates a namespace wired to the node with these addresses, serving these ports. Routed: a /32 (or
    /// /128) per address, a host route and proxy ARP on the node's side of the veth. Bridge: the veth joins the
    /// node's bridge; an address of the node's range gets the range's prefix (reached through the bridge's
    /// connected route), any other a /32 (or /128) with a host route through the bridge.
    fn add_host(
        &mut self,
        on: usize,
        ips: &[IpAddr],
        ports: &[(Protocol, u16)],
        who: Option<&str>,
        layout: Layout,
    ) -> Result<Host> {
        let n = self.state.next;
        self.state.next += 1;
        let node = self.node_ns_of(on);
        let netns = format!("{NETNS_PREFIX}{}-{n}", self.state.name);
        let ifname = format!("{}v{n}", self.state.tag);
        ip(&["netns", "add", &netns])?;
        let mut host = Host {
            node: on,
            netns: netns.clone(),
            ifname: ifname.clone(),
            ips: ips.to_vec(),
            ports: ports.to_vec(),
            pid: None,
        };
        ip(&["-n", &netns, "link", "set", "lo", "up"])?;
        sysctl(&netns, &["net.ipv6.conf.all.accept_dad=0".into(), "net.ipv6.conf.default.accept_dad=0".into()])?;
        ip(&["link", "add", &ifname, "netns", &node, "type", "veth", "peer", "name", "eth0", "netns", &netns])?;
        let range = pod_range(on);
        let bridged = |a: &IpAddr| layout == Layout::Bridge && matches!(a, IpAddr::V4(v) if range.contains(v));
        for addr in ips {
            let plen = match addr {
                _ if bridged(addr) => range.prefix_len(),
                IpAddr::V4(_) => 32,
                IpAddr::V6(_) => 128,
            };
            let fam = if addr.is_ipv4() { "-4" } else { "-6" };
            ip(&["-n", &netns, fam, "addr", "add", &format!("{addr}/{plen}"), "dev", "eth0", "nodad"])?;
        }
        ip(&["-n", &netns, "link", "set", "eth0", "up"])?;
        // Where the node reaches the pod, and the pod's next hop.
        let (node_dev, gw4, gw6) = match layout {
            Layout::Routed => {
                sysctl(
                    &node,
                    &[format!("net.ipv4.conf.{ifname}.proxy_arp=1"), format!("net.ipv4.neigh.{ifname}.proxy_delay=0")],
                )?;
                if ips.iter().any(IpAddr::is_ipv6) {
                    ip(&["-n", &node, "-6", "addr", "add", "fe80::1/64", "dev", &ifname, "nodad"])?;
                }
                (ifname.clone(), "169.254.1.1".to_owned(), "fe80::1")
            }
            Layout::Bridge => {
                ip(&["-n", &node, "link", "set", &ifname, "master", &self.bridge()])?;
                (self.bridge(), gateway(on).to_string(), "fe80::1")
            }
        };
        ip(&["-n", &node, "link", "set", &ifname, "up"])?;
        if ips.iter().any(IpAddr::is_ipv4) {
            if !ips.iter().filter(|a| a.is_ipv4()).all(bridged) {
                ip(&["-n", &netns, "route", "add", &gw4, "dev", "eth0", "scope", "link"])?;
            }
            ip(&["-n", &netns, "route", "add", "default", "via", &gw4, "dev", "eth0"])?;
        }
        if ips.iter().any(IpAddr::is_ipv6) {
            ip(&["-n", &netns, "-6", "route", "add", "default", "via", gw6, "dev", "eth0"])?;
        }
        for addr in ips {
            let plen = if addr.is_ipv4() { "32" } else { "128" };
            let dest = format!("{addr}/{plen}");
            if !bridged(addr) {
                ip(&["-n", &node, "route", "add", &dest, "dev", &node_dev])?;
            }
            // The other nodes reach it through the underlay.
            for other in (0..self.node_count()).filter(|&o| o != on) {
                let (via, link) = (self.underlay_via(on, addr), self.underlay_link(other, on));
                ip(&["-n", &self.node_ns_of(other), "route", "add", &dest, "via", &via, "dev", &link, "onlink"])?;
            }
        }
        if let Some(who) = who
            && !ports.is_empty()
        {
            host.pid = Some(self.start_server(&netns, ports, who)?);
        }
        Ok(host)
    }

    fn start_server(&self, netns: &str, ports: &[(Protocol, u16)], who: &str) -> Result<u32> {
        let list = |p: Protocol| {
            ports.iter().filter(|(q, _)| *q == p).map(|(_, n)| n.to_string()).collect::<Vec<_>>().join(",")
        };
        let ready = self.dir.join(format!("{netns}.ready"));
        let _ = std::fs::remove_file(&ready);
        let helper = self.helper.display().to_string();
        let ready_s = ready.display().to_string();
        let mut args = vec!["netns", "exec", netns, &helper, "sandbox", "serve", "--ready", &ready_s, "--who", who];
        let (t, u, s) = (list(Protocol::Tcp), list(Protocol::Udp), list(Protocol::Sctp));
        for (flag, v) in [("--tcp", &t), ("--udp", &u), ("--sctp", &s)] {
            if !v.is_empty() {
                args.push(flag);
                args.push(v);
            }
        }
        let child = Command::new("ip")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io("starting a pod server"))?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !ready.exists() {
            if Instant::now() > deadline {
                return Err(SandboxError::Invalid(format!("the server in {netns} did not start")));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(child.id())
    }

    fn remove_host(&self, host: &Host) {
        if let Some(pid) = host.pid {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).stderr(Stdio::null()).status();
        }
        let _ = ip(&["netns", "del", &host.netns]);
        if self.state.layout == Layout::Bridge {
            // Host routes through the bridge outlive the pod's port: remove them (the range's are connected).
            for addr in host.ips.iter().filter(|a| !matches!(a, IpAddr::V4(v) if pod_range(host.node).contains(v))) {
                let _ =
                    ip(&["-n", &self.node_ns_of(host.node), "route", "del", &addr.to_string(), "dev", &self.bridge()]);
            }
        }
        for other in (0..self.node_count()).filter(|&o| o != host.node) {
            for addr in &host.ips {
                let _ = ip(&["-n", &self.node_ns_of(other), "route", "del", &addr.to_string()]);
            }
        }
    }

    /// Node `from`'s underlay interface toward node `to`.
    fn underlay_link(&self, from: usize, to: usize) -> String {
        format!("{}u{from}{to}", self.state.tag)
    }

    /// The next hop to node `to` for an address of `addr`'s family.
    fn underlay_via(&self, to: usize, addr: &IpAddr) -> String {
        if addr.is_ipv4() { underlay_v4(to) } else { underlay_v6(to) }
    }

    /// A veth pair between every two nodes, each end carrying its node's underlay addresses.
    fn link_nodes(&self) -> Result<()> {
        let n = self.node_count();
        for a in 0..n {
            for b in a + 1..n {
                let (la, lb) = (self.underlay_link(a, b), self.underlay_link(b, a));
                let (na, nb) = (self.node_ns_of(a), self.node_ns_of(b));
                ip(&["link", "add", &la, "netns", &na, "type", "veth", "peer", "name", &lb, "netns", &nb])?;
                for (ns, link, me) in [(&na, &la, a), (&nb, &lb, b)] {
                    ip(&["-n", ns, "addr", "add", &format!("{}/32", underlay_v4(me)), "dev", link])?;
                    ip(&["-n", ns, "-6", "addr", "add", &format!("{}/64", underlay_v6(me)), "dev", link, "nodad"])?;
                    ip(&["-n", ns, "link", "set", link, "up"])?;
                }
                ip(&["-n", &na, "route", "add", &underlay_v4(b), "dev", &la, "scope", "link"])?;
                ip(&["-n", &nb, "route", "add", &underlay_v4(a), "dev", &lb, "scope", "link"])?;
            }
        }
        Ok(())
    }

    /// Agents started from now on let pods they have not programmed yet pass (`--pod-start=open`), as most
    /// enforcers do; by default they keep the node's pod range closed to addresses they do not know.
    pub fn set_agent_pod_start_open(&mut self, open: bool) {
        self.state.agent_pod_start_open = open;
    }

    /// Agent mode on a cluster API: starts every node's agent watching the API server through `kubeconfig`
    /// (its server must answer inside the node namespaces).
    pub fn start_agents_on_api(&mut self, kubeconfig: &Path) -> Result<()> {
        self.state.agent_kubeconfig = Some(kubeconfig.to_owned());
        for i in 0..self.node_count() {
            self.start_agent(i)?;
        }
        self.save()
    }

    /// The resourceVersion (or folder revision) each node's agent reports enforcing.
    pub fn agent_revisions(&self) -> Vec<Option<u64>> {
        (0..self.node_count()).map(|i| palisade_agent_status(&self.status_file(i))).collect()
    }

    /// Starts node `i`'s agent inside its namespace, on the API or the manifest folder.
    pub fn start_agent(&self, i: usize) -> Result<()> {
        let log = std::fs::File::create(self.agent_log(i)).map_err(io("creating the agent log"))?;
        let err = log.try_clone().map_err(io("creating the agent log"))?;
        let (manifests, status) = (self.manifests_dir(), self.status_file(i));
        let _ = std::fs::remove_file(&status);
        let mut source: Vec<std::ffi::OsString> = match &self.state.agent_kubeconfig {
            Some(kc) => vec!["--kubeconfig".into(), kc.into()],
            // The folder has no Node objects: the node's pod range comes as a flag.
            None => vec!["--manifests".into(), manifests.into(), "--pod-cidr".into(), pod_range(i).to_string().into()],
        };
        if self.state.agent_pod_start_open {
            source.extend(["--pod-start".into(), "open".into()]);
        }
        Command::new("ip")
            .args(["netns", "exec", &self.node_ns_of(i)])
            .arg(&self.helper)
            .args(["agent", "--node-name", &node_name(i), "--log-format", "json", "--metrics-addr", "127.0.0.1:9464"])
            .args(&source)
            .arg("--status-file")
            .arg(&status)
            .env_remove("PALISADE_LOG")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(io("starting an agent"))?;
        Ok(())
    }

    /// Kills node `i`'s agent as `kill -9` would (fault tests); its rules stay in the kernel.
    pub fn kill_agent(&self, i: usize) -> Result<()> {
        let pids = self.agent_pids(i)?;
        for pid in &pids {
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
        if pids.is_empty() {
            return Err(SandboxError::Invalid(format!("no agent runs on {}", node_name(i))));
        }
        // Gone for good (its port freed) before anyone starts another.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.agent_pids(i)?.is_empty() {
            if Instant::now() > deadline {
                return Err(SandboxError::Invalid(format!("the agent of {} did not die", node_name(i))));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// Starts node `i`'s agent again and waits until it enforces the current revision.
    pub fn restart_agent(&self, i: usize) -> Result<()> {
        self.start_agent(i)?;
        self.wait_for_agents()
    }

    fn agent_pids(&self, i: usize) -> Result<Vec<String>> {
        let out =
            Command::new("ip").args(["netns", "pids", &self.node_ns_of(i)]).output().map_err(io("listing pids"))?;
        // Node namespaces run nothing but their agent (and the `ip netns exec` that became it).
        Ok(String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect())
    }

    /// Agent mode: writes each object to the manifest folder (only what changed), then the revision, then
    /// waits until every node's agent reports enforcing it.
    fn publish(&mut self) -> Result<()> {
        let dir = self.manifests_dir();
        let mut files: BTreeMap<String, String> = BTreeMap::new();
        for o in all_objects(&self.cluster) {
            let k = o.key();
            let file = format!("{}.{}.{}.json", o.kind().to_lowercase(), k.namespace, k.name);
            files.insert(file, object_json(&o).to_string());
        }
        for o in self.cluster.cluster_objects() {
            let file = format!("{}..{}.json", o.type_meta().1.to_lowercase(), o.name());
            files.insert(file, cluster_object_json(o).to_string());
        }
        for (file, text) in &files {
            if self.state.published.get(file) != Some(text) {
                write_atomic(&dir.join(file), text)?;
            }
        }
        for file in self.state.published.keys().filter(|f| !files.contains_key(*f)) {
            let _ = std::fs::remove_file(dir.join(file));
        }
        self.state.published = files;
        self.bump_revision()?;
        self.wait_for_agents()
    }

    /// Agent mode: writes one file into the manifest folder (atomically), without publishing a revision.
    pub fn write_manifest(&self, file: &str, text: &str) -> Result<()> {
        write_atomic(&self.manifests_dir().join(file), text)
    }

    /// Agent mode: a new revision of the manifest folder, after the files written before it.
    pub fn bump_revision(&mut self) -> Result<u64> {
        self.state.revision += 1;
        write_atomic(&self.manifests_dir().join(".revision"), &self.state.revision.to_string())?;
        Ok(self.state.revision)
    }

    /// Agent mode: the process id of node `i`'s agent.
    pub fn agent_pid(&self, i: usize) -> Option<u32> {
        self.agent_pids(i).ok()?.first()?.parse().ok()
    }

    /// Waits (at most 20 s) until every agent enforces the folder's current revision.
    pub fn wait_for_agents(&self) -> Result<()> {
        let want = self.state.revision;
        let deadline = Instant::now() + Duration::from_secs(20);
        for i in 0..self.node_count() {
            loop {
                let seen = palisade_agent_status(&self.status_file(i));
                if seen.is_some_and(|r| r >= want) {
                    break;
                }
                if Instant::now() > deadline {
                    let log = std::fs::read_to_string(self.agent_log(i)).unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(5).collect();
                    return Err(SandboxError::Invalid(format!(
                        "the agent of {} did not enforce revision {want} within 20 s (it enforces {seen:?}); log tail:\n{}",
                        node_name(i),
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    )));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        Ok(())
    }

    /// The addresses a pod gets: its `status.podIPs`, or a free one of its node's [`pod_range`].
    fn pod_ips(&self, facts: &PodFacts, on: usize) -> Vec<IpAddr> {
        if !facts.ips.is_empty() {
            return facts.ips.clone();
        }
        let used: std::collections::HashSet<IpAddr> = self.used_ips().into_iter().collect();
        pod_range(on).hosts().skip(1).map(IpAddr::V4).find(|a| !used.contains(a)).into_iter().collect()
    }

    /// Creates or replaces objects, adjusts pod namespaces, and re-applies the ruleset. Like the apiserver,
    /// it stamps `creationTimestamp` on new objects and keeps it on replaced ones.
    pub fn apply(&mut self, objects: &[Object]) -> Result<()> {
        let objects: Vec<Object> = objects.iter().map(|o| self.stamped(o.clone())).collect();
        for o in &objects {
            if let Object::Pod(p) = o {
                let key = o.key();
                let mut facts = PodFacts::of(p);
                let ports: Vec<(Protocol, u16)> = facts.ports.iter().map(|c| (c.protocol, c.port)).collect();
                let existing = self.state.pods.get(&key.to_string()).cloned();
                let on = match &existing {
                    Some(h) => h.node,
                    None if facts.terminated || facts.host_network => 0,
                    None => self.place(p),
                };
                let ips = match &existing {
                    Some(h) if facts.ips.is_empty() || facts.ips == h.ips => h.ips.clone(),
                    _ => self.pod_ips(&facts, on),
                };
                if facts.terminated || facts.host_network {
                    if let Some(h) = self.state.pods.remove(&key.to_string()) {
                        self.remove_host(&h);
                    }
                    self.host_network_pod(p, &facts, &ports)?;
                } else if existing.as_ref().is_none_or(|h| h.ips != ips || h.ports != ports) {
                    if let Some(h) = &existing {
                        self.remove_host(h);
                    }
                    // A pod annotated `sandbox.palisade.dev/serve: none` gets no app server: something else
                    // serves its ports (the cluster's DNS).
                    let serve =
                        p.metadata.annotations.as_ref().and_then(|a| a.get(SERVE_ANNOTATION)).map(String::as_str)
                            != Some("none");
                    let who = key.to_string();
                    let host = self.add_host(on, &ips, &ports, serve.then_some(who.as_str()), self.state.layout)?;
                    self.state.pods.insert(key.to_string(), host);
                }
                // The cluster keeps the addresses the pod really has.
                facts.ips = ips.clone();
                let mut p = p.clone();
                if self.agent_mode()
                    && let Some(h) = self.state.pods.get(&key.to_string())
                {
                    // As the scheduler would: the node the pod runs on.
                    p.spec.get_or_insert_with(Default::default).node_name = Some(node_name(h.node));
                }
                let status = p.status.get_or_insert_with(Default::default);
                if status.pod_ip.is_none() {
                    status.pod_ip = ips.first().map(ToString::to_string);
                    status.pod_ips = Some(ips.iter().map(|i| PodIP { ip: i.to_string() }).collect());
                }
                self.cluster_apply(Object::Pod(p));
            } else {
                self.cluster_apply(o.clone());
            }
        }
        self.sync().map(|_| ())
    }

    /// A host-network pod with addresses becomes (or stays) a host at those addresses serving its ports,
    /// routed through its node like an outside host; one that ended or lost its addresses goes.
    fn host_network_pod(
        &mut self,
        p: &k8s_openapi::api::core::v1::Pod,
        facts: &PodFacts,
        ports: &[(Protocol, u16)],
    ) -> Result<()> {
        let key = ObjectKey::new(
            p.metadata.namespace.as_deref().unwrap_or("default"),
            p.metadata.name.as_deref().unwrap_or(""),
        )
        .to_string();
        let existing = self.state.host_pods.get(&key).cloned();
        let wanted = facts.host_network && !facts.terminated && !facts.ips.is_empty();
        if existing.as_ref().is_some_and(|h| wanted && h.ips == facts.ips && h.ports == ports) {
            return Ok(());
        }
        if let Some(h) = self.state.host_pods.remove(&key) {
            self.remove_host(&h);
        }
        if wanted {
            let on = match &existing {
                Some(h) => h.node,
                None => self.place(p),
            };
            let host = self.add_host(on, &facts.ips, ports, Some(&key), Layout::Routed)?;
            self.state.host_pods.insert(key, host);
        }
        Ok(())
    }

    /// The node a new pod runs on: the sandbox node its `spec.nodeName` names, else the next in turn.
    fn place(&mut self, p: &k8s_openapi::api::core::v1::Pod) -> usize {
        let n = self.node_count();
        let named = p.spec.as_ref().and_then(|s| s.node_name.as_deref());
        if let Some(i) = (0..n).find(|&i| named == Some(node_name(i).as_str())) {
            return i;
        }
        let i = self.state.next_node % n;
        self.state.next_node += 1;
        i
    }

    fn stamped(&self, mut o: Object) -> Object {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let key = o.key();
        let cluster = &self.cluster;
        let existing = match &o {
            Object::Namespace(_) => cluster.namespace(&key.name).map(|x| x.metadata.creation_timestamp.clone()),
            Object::Pod(_) => cluster.pod(&key).map(|x| x.metadata.creation_timestamp.clone()),
            Object::NetworkPolicy(_) => cluster.policy(&key).map(|x| x.metadata.creation_timestamp.clone()),
        };
        let meta = o.metadata_mut();
        meta.creation_timestamp = existing.flatten().or_else(|| Some(Time(now())));
        o
    }

    /// Deletes an object (a pod's namespace goes with it) and re-applies the ruleset.
    pub fn delete(&mut self, kind: Kind, namespace: &str, name: &str) -> Result<bool> {
        let existed = self.cluster.delete(kind, namespace, name);
        self.store.delete(kind, namespace, name);
        let live: Vec<String> = self.cluster.pods().map(|(k, _)| k.to_string()).collect();
        let gone: Vec<String> = self.state.pods.keys().filter(|k| !live.contains(k)).cloned().collect();
        for k in gone {
            if let Some(h) = self.state.pods.remove(&k) {
                self.remove_host(&h);
            }
        }
        let gone: Vec<String> = self.state.host_pods.keys().filter(|k| !live.contains(k)).cloned().collect();
        for k in gone {
            if let Some(h) = self.state.host_pods.remove(&k) {
                self.remove_host(&h);
            }
        }
        self.sync()?;
        Ok(existed)
    }

    /// Creates or replaces cluster-scoped objects (ClusterNetworkPolicies, AdminNetworkPolicies,
    /// BaselineAdminNetworkPolicies, Nodes) and re-applies the ruleset; as for [`Sandbox::apply`],
    /// `creationTimestamp` is stamped on new objects and kept on replaced ones. With agents, they are written
    /// to the manifest folder the agents read.
    pub fn apply_cluster(&mut self, objects: &[ClusterObject]) -> Result<()> {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        for o in objects {
            let existing = self
                .cluster
                .cluster_objects()
                .find(|x| x.kind() == o.kind() && x.name() == o.name())
                .and_then(|x| x.metadata().creation_timestamp.clone());
            let mut o = o.clone();
            let meta = match &mut o {
                ClusterObject::ClusterNetworkPolicy(x) => &mut x.metadata,
                ClusterObject::AdminNetworkPolicy(x) => &mut x.metadata,
                ClusterObject::BaselineAdminNetworkPolicy(x) => &mut x.metadata,
                ClusterObject::Node(x) => &mut x.metadata,
            };
            meta.creation_timestamp = existing.or_else(|| Some(Time(now())));
            self.store.apply_cluster(&o);
            self.cluster.apply_cluster(o);
        }
        self.sync().map(|_| ())
    }

    /// Deletes a cluster-scoped object and re-applies the ruleset. Returns whether it existed.
    pub fn delete_cluster(&mut self, kind: ClusterKind, name: &str) -> Result<bool> {
        let existed = self.cluster.delete_cluster(kind, name);
        self.store.delete_cluster(kind, name);
        self.sync()?;
        Ok(existed)
    }

    /// The sandbox's node: every pod is local to it.
    fn node(&self) -> Node {
        Node {
            interfaces: self
                .state
                .pods
                .iter()
                .filter_map(|(k, h)| ObjectKey::parse(k).map(|k| (k, h.ifname.clone())))
                .chain(self.phantom.iter().map(|(k, i)| (k.clone(), i.clone())))
                .collect(),
            // Every pod of a single-node sandbox is programmed in the change that starts it; its range stays
            // closed to anything else.
            pod_ranges: vec![ipnet::IpNet::V4(pod_range(0))],
        }
    }

    /// The whole ruleset for the sandbox's node, compiled afresh (what it should enforce now).
    fn compile(&mut self) -> Ruleset {
        let node = self.node();
        palisade_nft::compile(self.store.index(), &node, TABLE)
    }

    /// A full compile that the incremental compiler continues from: the changes so far are in it.
    fn compile_for_sync(&mut self) -> Ruleset {
        let node = self.node();
        self.store.take_changes();
        let mut compiler = NodeCompiler::new(TABLE);
        let r = compiler.full(self.store.index(), &node);
        self.compiler = Some(compiler);
        r
    }

    fn cluster_apply(&mut self, o: Object) {
        self.cluster.apply(o.clone());
        self.store.apply(o);
    }

    /// The compiled ruleset and the index it came from.
    pub fn compiled(&mut self) -> (Index, Ruleset) {
        let r = self.compile();
        (self.store.index().clone(), r)
    }

    /// Benchmarks: add pods that exist only as policy peers or phantom local pods (no namespaces), and stop
    /// persisting state. `local` names the pods to treat as local, with made-up interface names.
    pub fn add_synthetic(&mut self, objects: &[Object], local: &[ObjectKey]) -> Result<SyncReport> {
        self.persist = false;
        for o in objects {
            self.cluster_apply(o.clone());
        }
        for (i, k) in local.iter().enumerate() {
            self.phantom.insert(k.clone(), format!("{}s{i}", self.state.tag));
        }
        self.sync()
    }

    /// Benchmarks: change objects of the cluster without touching namespaces, then sync.
    pub fn apply_synthetic(&mut self, objects: &[Object]) -> Result<SyncReport> {
        for o in objects {
            self.cluster_apply(o.clone());
        }
        self.sync()
    }

    /// Applies an nft script in the node namespace (benchmarks: alternative rulesets).
    pub fn nft_apply(&mut self, script: &str) -> Result<()> {
        Ok(self.dataplane.nft.apply(script)?)
    }

    /// Forgets what the dataplane believes is applied, so the next sync is a full replace.
    pub fn force_full_sync(&mut self) -> Result<SyncReport> {
        let r = self.compile_for_sync();
        Ok(self.dataplane.resync(&r)?)
    }

    /// Runs a helper subcommand of the palisade binary inside a host's namespace and returns its stdout.
    pub fn run_in(&self, netns: &str, args: &[&str]) -> Result<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", netns])
            .arg(&self.helper)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(io("running a helper"))?;
        if !out.status.success() {
            return Err(SandboxError::Command {
                command: args.join(" "),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Compiles the cluster for this node and makes the kernel enforce it, exactly as the agent does:
    /// an incremental transaction, then the conntrack entries of pods whose policy may have narrowed deleted.
    pub fn sync(&mut self) -> Result<SyncReport> {
        if self.agent_mode() && self.state.agent_kubeconfig.is_some() {
            // The agents watch the API: nothing to publish; the control plane waits for them.
            self.save()?;
            return Ok(SyncReport::default());
        }
        if self.agent_mode() {
            self.publish()?;
            self.save()?;
            return Ok(SyncReport::default());
        }
        // As the agent: a whole table the first time (a delta from what the kernel holds), then one transaction
        // from the pieces each change touched.
        let report = if self.compiler.is_none() {
            let ruleset = self.compile_for_sync();
            self.dataplane.sync(&ruleset)
        } else {
            let changes = self.store.take_changes();
            let node = self.node();
            let index = self.store.index();
            let delta = self.compiler.as_mut().map(|c| c.update(index, &node, &changes)).unwrap_or_default();
            self.dataplane.apply_delta(&delta)
        };
        let report = report.inspect_err(|_| self.compiler = None)?;
        self.save()?;
        Ok(report)
    }

    /// Agent mode: each node's table as the kernel holds it.
    pub fn kernel_rulesets(&self) -> Result<Vec<(String, String)>> {
        (0..self.node_count())
            .map(|i| {
                let out = Command::new("ip")
                    .args(["netns", "exec", &self.node_ns_of(i), "nft", "list", "table", "inet", TABLE])
                    .output()
                    .map_err(io("running nft"))?;
                Ok((node_name(i), String::from_utf8_lossy(&out.stdout).into_owned()))
            })
            .collect()
    }

    /// Keep established connections when policy narrows (the older enforcers' behaviour).
    pub fn set_keep_established(&mut self, keep: bool) {
        self.dataplane.keep_established = keep;
    }

    /// The ruleset currently compiled, as nft text.
    pub fn ruleset_text(&mut self) -> String {
        self.compile().render_table()
    }

    /// The namespace of an endpoint and its address of `family`.
    pub fn locate(&self, e: &Endpoint, family: IpFamily) -> Result<(String, Option<IpAddr>)> {
        let host = match e {
            Endpoint::Pod(k) => self
                .state
                .pods
                .get(&k.to_string())
                .or_else(|| self.state.host_pods.get(&k.to_string()))
                .ok_or_else(|| SandboxError::Invalid(format!("pod {k} is not in the sandbox")))?,
            Endpoint::Ip(ip) => self.state.externals.get(&ip.to_string()).ok_or_else(|| {
                SandboxError::Invalid(format!("{ip} is not a host of this sandbox (only its own addresses are probed)"))
            })?,
        };
        let want = match e {
            Endpoint::Ip(ip) => IpFamily::of(ip),
            Endpoint::Pod(_) => family,
        };
        Ok((host.netns.clone(), host.ips.iter().copied().find(|i| IpFamily::of(i) == want)))
    }

    /// Probes every connection with real packets, in parallel: one bounded prober process per source.
    pub fn probe(&self, conns: &[Connection]) -> Result<Vec<bool>> {
        let mut by_source: BTreeMap<String, Vec<(usize, String)>> = BTreeMap::new();
        let mut results = vec![false; conns.len()];
        for (i, c) in conns.iter().enumerate() {
            let (src_ns, src_ip) = self.locate(&c.from, c.family)?;
            let (_, dst_ip) = self.locate(&c.to, c.family)?;
            if matches!((&c.from, &c.to), (Endpoint::Pod(a), Endpoint::Pod(b)) if a == b) {
                results[i] = true; // a pod reaching itself stays inside its own namespace
                continue;
            }
            let (Some(_), Some(dst)) = (src_ip, dst_ip) else { continue }; // no address of that family: no connection
            by_source.entry(src_ns).or_default().push((i, format!("{dst},{},{}", c.port, protocol_of(c.protocol))));
        }
        let helper = self.helper.display().to_string();
        let timeout = PROBE_TIMEOUT.as_millis().to_string();
        let mut children = Vec::new();
        for (ns, targets) in by_source {
            let mut args: Vec<String> =
                vec!["netns".into(), "exec".into(), ns, helper.clone(), "sandbox".into(), "probe-raw".into()];
            args.push("--timeout-ms".into());
            args.push(timeout.clone());
            args.extend(targets.iter().map(|(_, t)| t.clone()));
            let child = Command::new("ip")
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .map_err(io("starting a prober"))?;
            children.push((child, targets));
        }
        for (mut child, targets) in children {
            let mut out = String::new();
            if let Some(mut s) = child.stdout.take() {
                s.read_to_string(&mut out).map_err(io("reading probe results"))?;
            }
            let _ = child.wait();
            for ((i, _), line) in targets.iter().zip(out.lines()) {
                results[*i] = line.trim() == "1";
            }
        }
        Ok(results)
    }

    /// Removes every namespace and server of this sandbox, and its state.
    pub fn down(mut self) -> Result<()> {
        self.teardown();
        Ok(())
    }

    fn teardown(&mut self) {
        // Everything runs in the sandbox's namespaces: kill it, then delete them.
        let _ = remove_namespaces(&format!("{NETNS_PREFIX}{}-", self.state.name));
        self.state.pods.clear();
        self.state.host_pods.clear();
        self.state.externals.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
        self.set_ephemeral(false);
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.ephemeral {
            self.teardown();
        }
    }
}

/// Every object of the cluster: declared namespaces, pods, policies.
fn all_objects(cluster: &Cluster) -> Vec<Object> {
    let namespaces = cluster.namespaces();
    namespaces
        .keys()
        .filter_map(|n| cluster.namespace(n).cloned().map(Object::Namespace))
        .chain(cluster.pods().map(|(_, p)| Object::Pod(Box::new(p.clone()))))
        .chain(cluster.policies().map(|(_, p)| Object::NetworkPolicy(p.clone())))
        .collect()
}

/// Writes a file whole: a temporary file renamed into place, so a reader never sees half of it.
fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(io(format!("writing {}", path.display())))
}

/// The revision an agent's status file says it enforces.
fn palisade_agent_status(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("revision")?.as_str()?.parse().ok()
}

/// The current time as a Kubernetes timestamp (whole seconds, as the apiserver stores them).
pub fn now() -> k8s_openapi::jiff::Timestamp {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    k8s_openapi::jiff::Timestamp::from_second(i64::try_from(secs).unwrap_or(0))
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
}

/// Names of the sandboxes with state in the run directory.
pub fn list() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(run_root())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("state.json").exists())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .collect();
    v.sort();
    v
}

/// Every directory of the run directory (sandboxes, including ones whose state is not written yet).
pub fn list_dirs() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(run_root())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .collect();
    v.sort();
    v
}

/// Sandboxes that must not outlive this process (tests, demo, live conformance, benchmarks).
static EPHEMERAL: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn register_ephemeral(name: &str, on: bool) {
    if let Ok(mut v) = EPHEMERAL.lock() {
        v.retain(|n| n != name);
        if on {
            v.push(name.to_owned());
        }
    }
}

/// Deletes every namespace whose name starts with `prefix`, killing what runs inside first.
fn remove_namespaces(prefix: &str) -> Result<usize> {
    let out = Command::new("ip").args(["netns", "list"]).output().map_err(io("listing namespaces"))?;
    let mut n = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if name.starts_with(prefix) {
            let pids = Command::new("ip").args(["netns", "pids", name]).output().map_err(io("listing pids"))?;
            for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
            let _ = ip(&["netns", "del", name]);
            // A pod's resolver file (`ip netns exec` mounts /etc/netns/NAME/resolv.conf).
            let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(name));
            n += 1;
        }
    }
    Ok(n)
}

/// For signal handlers (Ctrl-C, SIGTERM), where destructors do not run: stops creating namespaces, then
/// removes this process's temporary sandboxes, twice, so a namespace being created at that moment goes too.
pub fn interrupt() {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
    cleanup_ephemeral();
    std::thread::sleep(Duration::from_millis(200));
    cleanup_ephemeral();
}

/// Removes the sandboxes this process made to be temporary.
pub fn cleanup_ephemeral() {
    let names: Vec<String> = EPHEMERAL.lock().map(|v| v.clone()).unwrap_or_default();
    for name in names {
        let _ = remove_namespaces(&format!("{NETNS_PREFIX}{name}-"));
        let _ = std::fs::remove_dir_all(run_root().join(&name));
    }
}

/// Removes every sandbox, including leftovers whose state is gone: all `palisade-*` namespaces.
pub fn down_all(helper: &Path) -> Result<usize> {
    let mut n = 0;
    for name in list() {
        if let Ok(sb) = Sandbox::open(&name, helper) {
            sb.down()?;
            n += 1;
        }
    }
    n += remove_namespaces(NETNS_PREFIX)?;
    let _ = std::fs::remove_dir_all(run_root());
    Ok(n)
}

/// The sandbox as a conformance backend: each case gets a fresh sandbox.
pub struct LiveBackend {
    pub helper: PathBuf,
    pub prefix: String,
    /// Agent mode with this many nodes (`conformance --live --nodes N`).
    pub nodes: Option<usize>,
    counter: usize,
    current: Option<Sandbox>,
}

impl LiveBackend {
    pub fn new(helper: PathBuf) -> Self {
        let prefix = format!("cf{}", std::process::id() % 100_000);
        LiveBackend { helper, prefix, nodes: None, counter: 0, current: None }
    }

    fn sandbox(&mut self) -> Result<&mut Sandbox, CaseError> {
        self.current.as_mut().ok_or_else(|| CaseError("no sandbox".into()))
    }
}

fn case_err(e: SandboxError) -> CaseError {
    CaseError(e.to_string())
}

impl Backend for LiveBackend {
    fn reset(&mut self, objects: &[Object], external_hosts: &[ExternalHost]) -> Result<(), CaseError> {
        if let Some(old) = self.current.take() {
            old.down().map_err(case_err)?;
        }
        self.counter += 1;
        let name = format!("{}-{}", self.prefix, self.counter);
        let mut sb = Sandbox::up_with(&name, objects, external_hosts, &self.helper, self.nodes).map_err(case_err)?;
        sb.set_ephemeral(true);
        self.current = Some(sb);
        Ok(())
    }

    fn apply(&mut self, objects: &[Object]) -> Result<(), CaseError> {
        self.sandbox()?.apply(objects).map_err(case_err)
    }

    fn delete(&mut self, kind: Kind, namespace: &str, name: &str) -> Result<(), CaseError> {
        self.sandbox()?.delete(kind, namespace, name).map(|_| ()).map_err(case_err)
    }

    fn probe(&mut self, connections: &[Connection]) -> Result<Vec<bool>, CaseError> {
        self.sandbox()?.probe(connections).map_err(case_err)
    }

    fn apply_cluster(&mut self, objects: &[ClusterObject]) -> Result<(), CaseError> {
        self.sandbox()?.apply_cluster(objects).map_err(case_err)
    }

    fn delete_cluster(&mut self, kind: ClusterKind, name: &str) -> Result<(), CaseError> {
        if !self.sandbox()?.delete_cluster(kind, name).map_err(case_err)? {
            return Err(CaseError(format!("{kind:?} {name} not found")));
        }
        Ok(())
    }
}
