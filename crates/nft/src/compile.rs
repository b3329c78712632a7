//! Engine state → one nftables table (inet: IPv4 and IPv6), rendered as nft text.
//!
//! Layout (measured in DATAPLANE-NOTES): two base chains on the forward hook, `ct state established,related
//! accept` first; verdict maps keyed by pod address dispatch to one chain per isolated local pod, which jumps
//! to one chain per selecting policy; peers and ports live in named sets, so a packet walks
//! O(policies selecting the pod) rules whatever the cluster size.

use std::collections::{BTreeMap, BTreeSet};

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use palisade_engine::policy::{Direction, Peer, PortMatch};
use palisade_engine::{Index, IpFamily, ObjectKey, Protocol};

/// What the node enforces for: its local pods and the host-side interface of each.
#[derive(Debug, Clone, Default)]
pub struct Node {
    /// Local pod → the name of its veth on the node side; empty when not known (a pod behind a bridge):
    /// such a pod is enforced like any other but its source address is not checked against its interface.
    pub interfaces: BTreeMap<ObjectKey, String>,
    /// The node's pod address ranges (its Node's `spec.podCIDRs`, `--pod-cidr`, a CNI bridge's subnet): a
    /// new connection from or to an address in them that is not yet a known local pod is dropped, so a pod
    /// is isolated from its first packet even before the agent has learned it. Empty: no such drop
    /// (`--pod-start=open`).
    pub pod_ranges: Vec<ipnet::IpNet>,
}

/// Deny logging (OBSERVABILITY.md §4.2, §4.4): an NFLOG rule before each local pod's final drop (kind D), before
/// `ct state invalid drop` (I) and before each anti-spoofing drop (S). Each rule is its own: a verdict never shares
/// a rule with `log`, `limit` or a set `update`, because a rule stopped by its limit skips its verdict (§3f).
/// Each rule logs at most one packet per second per (source, destination, protocol, destination port) through
/// a dynamic set, and all of them together at most `rate` per second through the node-wide limit `log_deny`.
/// NFLOG costs even with nobody listening, so logging off ([`Ruleset::log`] `None`) means no log rules at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOptions {
    /// The NFLOG group the agent reads.
    pub group: u16,
    /// The node-wide ceiling, packets per second, and its burst.
    pub rate: u32,
    pub burst: u32,
    /// The most keys each dedup set holds; when full, `update` fails and the log (never the packet) is skipped.
    pub dedup_size: u32,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions { group: DENY_LOG_GROUP, rate: 500, burst: 1000, dedup_size: 65536 }
    }
}

/// The NFLOG group of deny logs (D, S, I).
pub const DENY_LOG_GROUP: u16 = 5;
/// The node-wide named limit every deny log rule shares.
pub const LOG_DENY_LIMIT: &str = "log_deny";
/// The log prefix of a Palisade log rule: `pal1 <kind> <8 hex digits>` (read back by `palisade-observe`).
pub fn log_prefix(kind: char, id: u32) -> String {
    format!("pal1 {kind} {id:08x}")
}
/// The name of a pod chain's named drop counter (the id is its log prefix's).
pub fn drop_counter(id: u32) -> String {
    format!("d_{id:08x}")
}

/// The dedup sets, one per log point and family: (name, address type).
pub(crate) fn dedup_sets() -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    for point in ["deny_ing", "deny_egr", "invalid", "spoof"] {
        for (f, t) in [("4", "ipv4_addr"), ("6", "ipv6_addr")] {
            out.push((format!("seen_{point}{f}"), t));
        }
    }
    out
}

/// One log rule (no verdict): per-key dedup through `set`, the node-wide limit, then `log`.
pub(crate) fn log_rule(log: &LogOptions, matches: &str, set: &str, v4: bool, kind: char, id: u32) -> String {
    let ip = if v4 { "ip" } else { "ip6" };
    format!(
        "{matches}update @{set} {{ {ip} saddr . {ip} daddr . meta l4proto . th dport limit rate 1/second burst 1 packets }} limit name \"{LOG_DENY_LIMIT}\" log group {} prefix \"{}\"",
        log.group,
        log_prefix(kind, id)
    )
}

/// A named set of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    pub name: String,
    pub kind: &'static str,
    pub interval: bool,
    /// Shared between rulesets compiled with the same [`CompileCache`], so cloning a ruleset and comparing
    /// two are cheap when sets did not change.
    pub elements: Arc<BTreeSet<String>>,
}

/// A regular chain: its rules, each already rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub name: String,
    pub rules: Vec<String>,
}

/// The whole table Palisade owns on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    pub table: String,
    pub sets: Vec<Set>,
    pub chains: Vec<Chain>,
    /// Verdict maps `ing4`, `ing6`, `eg4`, `eg6`: address → `goto <pod chain>`.
    pub maps: BTreeMap<&'static str, BTreeMap<String, String>>,
    /// Named counters (`d_<id>`: a pod chain's final drop), created and deleted with their chain.
    pub counters: BTreeSet<String>,
    /// Deny logging, when on: the limit `log_deny`, the dedup sets and the base chains' log rules.
    pub log: Option<LogOptions>,
}

/// Sets every ruleset has: local pod interfaces and their `ifname . address` pairs, for anti-spoofing.
pub const POD_IFS: &str = "pod_ifs";
pub const POD_IFADDR4: &str = "pod_ifaddr4";
pub const POD_IFADDR6: &str = "pod_ifaddr6";
/// Every local pod address the table knows (added in the transaction that adds the pod's dispatch).
pub const POD_KNOWN4: &str = "pod_known4";
pub const POD_KNOWN6: &str = "pod_known6";
/// The node's pod address ranges (interval sets): unknown addresses in them are dropped.
pub const POD_RANGES4: &str = "pod_ranges4";
pub const POD_RANGES6: &str = "pod_ranges6";
/// The comment on the drops of pods the node does not know yet (the pod-start window, closed).
pub const UNKNOWN_POD: &str = "pod not yet known to this node";

pub(crate) fn ident(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

pub(crate) fn quote(s: &str) -> String {
    let clean: String = s.chars().filter(|c| *c != '"' && *c != '\\').take(120).collect();
    format!("\"{clean}\"")
}

pub(crate) fn proto(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

pub(crate) fn ip_of(family: IpFamily) -> (&'static str, &'static str) {
    match family {
        IpFamily::V4 => ("ip", "ipv4_addr"),
        IpFamily::V6 => ("ip6", "ipv6_addr"),
    }
}

pub(crate) fn range_elem(a: IpAddr, b: IpAddr) -> String {
    if a == b { a.to_string() } else { format!("{a}-{b}") }
}

pub(crate) fn ip_num(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v) => u32::from(v).into(),
        IpAddr::V6(v) => v.into(),
    }
}

pub(crate) fn num_ip(n: u128, v4: bool) -> IpAddr {
    if v4 { IpAddr::V4(u32::try_from(n).unwrap_or(u32::MAX).into()) } else { IpAddr::V6(n.into()) }
}

/// Merges overlapping or adjacent inclusive ranges: interval sets refuse overlapping elements.
pub(crate) fn merge<T: Copy + Ord>(mut ranges: Vec<(T, T)>, next: impl Fn(T) -> Option<T>) -> Vec<(T, T)> {
    ranges.sort();
    let mut out: Vec<(T, T)> = Vec::new();
    for (a, b) in ranges {
        if let Some(last) = out.last_mut()
            && (a <= last.1 || next(last.1) == Some(a))
        {
            last.1 = last.1.max(b);
            continue;
        }
        out.push((a, b));
    }
    out
}

/// Compiles the rules for the node's local pods; every pod of the cluster is a possible peer. (The
/// whole table at once: [`crate::NodeCompiler`] keeps it in pieces and updates what a change touches.)
pub fn compile(index: &Index, node: &Node, table: &str) -> Ruleset {
    crate::NodeCompiler::new(table).full(index, node)
}

/// [`compile`] with deny logging on (`Some`) or off.
pub fn compile_with(index: &Index, node: &Node, table: &str, log: Option<LogOptions>) -> Ruleset {
    crate::NodeCompiler::new(table).with_log(log).full(index, node)
}

impl Set {
    /// `{ type ...; flags interval; elements = { ... } }`, optionally without the elements.
    pub fn body(&self, with_elements: bool) -> String {
        let flags = if self.interval { " flags interval;" } else { "" };
        let mut out = format!("{{ type {};{flags}", self.kind);
        if with_elements && !self.elements.is_empty() {
            let v: Vec<&str> = self.elements.iter().map(String::as_str).collect();
            out.push_str(&format!(" elements = {{ {} }}", v.join(", ")));
        }
        out.push_str(" }");
        out
    }
}

impl Ruleset {
    /// The table definition alone.
    pub fn render_table(&self) -> String {
        let mut o = String::new();
        let t = &self.table;
        let _ = writeln!(o, "table inet {t} {{");
        if let Some(log) = &self.log {
            let _ = writeln!(o, "  limit {LOG_DENY_LIMIT} {{ rate {}/second burst {} packets }}", log.rate, log.burst);
            for (name, addr) in dedup_sets() {
                let _ = writeln!(
                    o,
                    "  set {name} {{ type {addr} . {addr} . inet_proto . inet_service; size {}; flags dynamic,timeout; timeout 2m; }}",
                    log.dedup_size
                );
            }
        }
        for c in &self.counters {
            let _ = writeln!(o, "  counter {c} {{ }}");
        }
        for s in &self.sets {
            let _ = writeln!(o, "  set {} {}", s.name, s.body(true));
        }
        for c in &self.chains {
            let _ = writeln!(o, "  chain {} {{", c.name);
            for r in &c.rules {
                let _ = writeln!(o, "    {r}");
            }
            let _ = writeln!(o, "  }}");
        }
        for (name, elems) in &self.maps {
            let kind = if name.ends_with('4') { "ipv4_addr" } else { "ipv6_addr" };
            let _ = write!(o, "  map {name} {{ type {kind} : verdict;");
            if !elems.is_empty() {
                let v: Vec<String> = elems.iter().map(|(k, v)| format!("{k} : {v}")).collect();
                let _ = write!(o, " elements = {{ {} }}", v.join(", "));
            }
            let _ = writeln!(o, " }}");
        }
        let _ = writeln!(o, "  chain fwd_egress {{");
        let _ = writeln!(o, "    type filter hook forward priority filter; policy accept;");
        let _ = writeln!(o, "    ct state established,related accept");
        if let Some(log) = &self.log {
            for (v4, f) in [(true, "4"), (false, "6")] {
                let _ =
                    writeln!(o, "    {}", log_rule(log, "ct state invalid ", &format!("seen_invalid{f}"), v4, 'I', 0));
            }
        }
        let _ = writeln!(o, "    ct state invalid drop");
        for (v4, ip, addrs) in [(true, "ip", POD_IFADDR4), (false, "ip6", POD_IFADDR6)] {
            let matches = format!("iifname @{POD_IFS} iifname . {ip} saddr != @{addrs} ");
            if let Some(log) = &self.log {
                let set = format!("seen_spoof{}", if v4 { "4" } else { "6" });
                let _ = writeln!(o, "    {}", log_rule(log, &matches, &set, v4, 'S', 0));
            }
            let _ = writeln!(o, "    {matches}counter drop comment \"source address is not its pod's\"");
        }
        for (ip, known, ranges) in [("ip", POD_KNOWN4, POD_RANGES4), ("ip6", POD_KNOWN6, POD_RANGES6)] {
            let _ =
                writeln!(o, "    {ip} saddr @{ranges} {ip} saddr != @{known} counter drop comment \"{UNKNOWN_POD}\"");
        }
        let _ = writeln!(o, "    ip saddr vmap @eg4");
        let _ = writeln!(o, "    ip6 saddr vmap @eg6");
        let _ = writeln!(o, "  }}");
        let _ = writeln!(o, "  chain fwd_ingress {{");
        let _ = writeln!(o, "    type filter hook forward priority filter + 10; policy accept;");
        let _ = writeln!(o, "    ct state established,related accept");
        for (ip, known, ranges) in [("ip", POD_KNOWN4, POD_RANGES4), ("ip6", POD_KNOWN6, POD_RANGES6)] {
            let _ =
                writeln!(o, "    {ip} daddr @{ranges} {ip} daddr != @{known} counter drop comment \"{UNKNOWN_POD}\"");
        }
        let _ = writeln!(o, "    ip daddr vmap @ing4");
        let _ = writeln!(o, "    ip6 daddr vmap @ing6");
        let _ = writeln!(o, "  }}");
        let _ = writeln!(o, "}}");
        o
    }

    /// One atomic transaction that replaces the whole table (creating it if absent).
    pub fn render_replace(&self) -> String {
        let t = &self.table;
        format!("table inet {t} {{}}\ndelete table inet {t}\n{}", self.render_table())
    }

    /// Number of rules and set/map elements, for metrics and benchmarks.
    pub fn size(&self) -> (usize, usize) {
        let rules = self.chains.iter().map(|c| c.rules.len()).sum();
        let elems = self.sets.iter().map(|s| s.elements.len()).sum::<usize>()
            + self.maps.values().map(BTreeMap::len).sum::<usize>();
        (rules, elems)
    }
}

/// The same policies as one rule per (destination pod, peer address, port), all in one chain: how
/// iptables-era enforcers expressed them. Only for benchmarks, as the baseline the set layout is measured
/// against; `last` is put at the very end of the chain (the rule the measured traffic hits). Returns the
/// script and its number of rules.
pub fn render_linear(index: &Index, node: &Node, table: &str, last: &str) -> (String, usize) {
    let policies: Vec<_> = index.policies().collect();
    let mut rules: Vec<String> = Vec::new();
    for key in node.interfaces.keys() {
        let Some(id) = index.pod_id(key) else { continue };
        let Some(dst) = index.pod(id).facts.ip(IpFamily::V4) else { continue };
        for &pi in index.selecting_ids(id, Direction::Ingress) {
            for (ri, rule) in policies[pi].rules(Direction::Ingress).unwrap_or_default().iter().enumerate() {
                let mut peers: Vec<String> = Vec::new();
                match &rule.peers {
                    None => peers.push(String::new()),
                    Some(ps) => {
                        for (pe, peer) in ps.iter().enumerate() {
                            match peer {
                                Peer::Pods { .. } => {
                                    for q in index.peer_pods(pi, Direction::Ingress, ri, pe, IpFamily::V4).iter() {
                                        if let Some(ip) = index.pod(q).facts.ip(IpFamily::V4) {
                                            peers.push(format!("ip saddr {ip} "));
                                        }
                                    }
                                }
                                Peer::IpBlock(b) if b.cidr.addr().is_ipv4() => {
                                    for (a, z) in b.ranges() {
                                        peers.push(format!("ip saddr {} ", range_elem(a, z)));
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                }
                let mut ports: Vec<String> = Vec::new();
                match &rule.ports {
                    None => ports.push(String::new()),
                    Some(es) => {
                        for e in es {
                            let p = proto(e.protocol);
                            match &e.port {
                                PortMatch::Any => ports.push(format!("meta l4proto {p} ")),
                                PortMatch::Range(a, b) if a == b => ports.push(format!("{p} dport {a} ")),
                                PortMatch::Range(a, b) => ports.push(format!("{p} dport {a}-{b} ")),
                                PortMatch::Named(n) => {
                                    for cp in index.pod_ports(id) {
                                        if cp.name.as_deref() == Some(n.as_str()) && cp.protocol == e.protocol {
                                            ports.push(format!("{p} dport {} ", cp.port));
                                        }
                                    }
                                }
                                PortMatch::Invalid => {}
                            }
                        }
                    }
                }
                for pe in &peers {
                    for po in &ports {
                        rules.push(format!("ip daddr {dst} {pe}{po}accept"));
                    }
                }
            }
        }
    }
    rules.push(last.to_owned());
    let n = rules.len();
    let mut o =
        format!("table inet {table} {{}}\ndelete table inet {table}\ntable inet {table} {{\n  chain linear {{\n");
    let _ = writeln!(o, "    type filter hook forward priority filter; policy accept;");
    let _ = writeln!(o, "    ct state established,related accept");
    for r in &rules {
        let _ = writeln!(o, "    {r}");
    }
    let _ = writeln!(o, "  }}\n}}");
    (o, n)
}
