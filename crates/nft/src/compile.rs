//! Engine state → one nftables table (inet: IPv4 and IPv6), rendered as nft text.
//!
//! Layout (measured in DATAPLANE-NOTES): two base chains on the forward hook, `ct state established,related
//! accept` first; verdict maps keyed by pod address dispatch to one chain per isolated local pod, which jumps
//! to one chain per selecting policy; peers and ports live in named sets, so a packet walks
//! O(policies selecting the pod) rules whatever the cluster size.

use std::collections::{BTreeMap, BTreeSet};

use foldhash::{HashMap, HashSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use palisade_engine::bitset::BitSet;
use palisade_engine::policy::{Direction, Peer, PortMatch};
use palisade_engine::{Index, IpFamily, ObjectKey, PodId, Protocol};

/// What the node enforces for: its local pods and the host-side interface of each.
#[derive(Debug, Clone, Default)]
pub struct Node {
    /// Local pod → the name of its veth on the node side; empty when not known (a pod behind a bridge):
    /// such a pod is enforced like any other but its source address is not checked against its interface.
    pub interfaces: BTreeMap<ObjectKey, String>,
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
}

/// Sets every ruleset has: local pod interfaces and their `ifname . address` pairs, for anti-spoofing.
pub const POD_IFS: &str = "pod_ifs";
pub const POD_IFADDR4: &str = "pod_ifaddr4";
pub const POD_IFADDR6: &str = "pod_ifaddr6";

fn ident(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

fn quote(s: &str) -> String {
    let clean: String = s.chars().filter(|c| *c != '"' && *c != '\\').take(120).collect();
    format!("\"{clean}\"")
}

fn proto(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

fn ip_of(family: IpFamily) -> (&'static str, &'static str) {
    match family {
        IpFamily::V4 => ("ip", "ipv4_addr"),
        IpFamily::V6 => ("ip6", "ipv6_addr"),
    }
}

fn range_elem(a: IpAddr, b: IpAddr) -> String {
    if a == b { a.to_string() } else { format!("{a}-{b}") }
}

fn ip_num(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v) => u32::from(v).into(),
        IpAddr::V6(v) => v.into(),
    }
}

fn num_ip(n: u128, v4: bool) -> IpAddr {
    if v4 { IpAddr::V4(u32::try_from(n).unwrap_or(u32::MAX).into()) } else { IpAddr::V6(n.into()) }
}

/// Merges overlapping or adjacent inclusive ranges: interval sets refuse overlapping elements.
fn merge<T: Copy + Ord>(mut ranges: Vec<(T, T)>, next: impl Fn(T) -> Option<T>) -> Vec<(T, T)> {
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

/// Adds a set unless an identical one exists; returns the name rules should reference. Many rules peer with
/// the same pods (the same selector in several policies), so sharing keeps the table small.
fn intern(
    rs: &mut Ruleset,
    seen: &mut HashMap<(&'static str, bool, usize), String>,
    name: String,
    kind: &'static str,
    interval: bool,
    elements: Arc<BTreeSet<String>>,
) -> String {
    // Every element set comes from `CompileCache::shared`: equal contents are one allocation.
    let key = (kind, interval, Arc::as_ptr(&elements) as usize);
    if let Some(existing) = seen.get(&key) {
        return existing.clone();
    }
    rs.sets.push(Set { name: name.clone(), kind, interval, elements });
    seen.insert(key, name.clone());
    name
}

type NamedKey = (usize, BitSet, Vec<(String, Protocol)>);

/// What successive compiles of one node reuse, so that a small change costs little: the pods' addresses as
/// text, the element sets of pod-address and named-port sets by the pods they hold (valid while the index's
/// pods, their addresses and ports stay the same), and every element set by content, shared (`Arc`)
/// between rulesets so that cloning and diffing them compares pointers where nothing changed.
#[derive(Debug, Default)]
pub struct CompileCache {
    fingerprint: Option<u64>,
    ip_text: [Vec<Option<String>>; 2],
    by_pods: [HashMap<BitSet, Keyed>; 2],
    by_named: HashMap<NamedKey, Keyed>,
    /// The two maps above as the previous compile left them (entries move back when used again).
    old_by_pods: [HashMap<BitSet, Keyed>; 2],
    old_by_named: HashMap<NamedKey, Keyed>,
    /// Element sets of this compile and of the previous one (older ones are dropped).
    current: HashSet<Keyed>,
    previous: HashSet<Keyed>,
}

/// An element set with the hash of its contents, computed once: a compile looks up every set it reuses,
/// and hashing thousands of addresses each time was most of a small change's cost.
#[derive(Debug, Clone)]
struct Keyed {
    hash: u64,
    set: Arc<BTreeSet<String>>,
}

impl Keyed {
    fn new(set: BTreeSet<String>) -> Keyed {
        use std::hash::BuildHasher;
        Keyed { hash: foldhash::fast::FixedState::default().hash_one(&set), set: Arc::new(set) }
    }
}

impl std::hash::Hash for Keyed {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl PartialEq for Keyed {
    fn eq(&self, other: &Keyed) -> bool {
        Arc::ptr_eq(&self.set, &other.set) || (self.hash == other.hash && self.set == other.set)
    }
}

impl Eq for Keyed {}

impl CompileCache {
    /// The shared copy of a set with these elements.
    fn shared(&mut self, elements: BTreeSet<String>) -> Arc<BTreeSet<String>> {
        self.shared_keyed(elements).set
    }

    fn shared_keyed(&mut self, elements: BTreeSet<String>) -> Keyed {
        let k = Keyed::new(elements);
        if let Some(x) = self.current.get(&k) {
            return x.clone();
        }
        let x = self.previous.get(&k).cloned().unwrap_or(k);
        self.current.insert(x.clone());
        x
    }

    /// A cached set made this compile's copy of its contents (so that `intern` may compare pointers).
    fn adopt(&mut self, k: Keyed) -> Arc<BTreeSet<String>> {
        if let Some(x) = self.current.get(&k) {
            return x.set.clone();
        }
        self.current.insert(k.clone());
        k.set
    }

    /// Starts a compile of `index`: forgets what no longer holds.
    fn begin(&mut self, index: &Index) {
        let fp = index.pods_generation();
        if self.fingerprint != Some(fp) {
            let followed = match self.fingerprint.and_then(|g| index.pod_edits_since(g)) {
                Some(edits) => self.follow(index, &edits),
                None => false,
            };
            if !followed {
                self.ip_text = [IpFamily::V4, IpFamily::V6]
                    .map(|f| index.pods().iter().map(|p| p.facts.ip(f).map(|ip| ip.to_string())).collect());
                self.by_pods = Default::default();
                self.by_named.clear();
            }
            self.fingerprint = Some(fp);
        }
        self.previous = std::mem::take(&mut self.current);
        self.old_by_pods = std::mem::take(&mut self.by_pods);
        self.old_by_named = std::mem::take(&mut self.by_named);
    }

    /// Carries the cache across pods added and removed since the last compile (ids shift): sets keyed by
    /// pods that include a removed one are dropped (their elements name it), the others' keys shift with the
    /// ids, and new pods' addresses are formatted. Returns false when it cannot (then everything starts over).
    fn follow(&mut self, index: &Index, edits: &[palisade_engine::index::PodEdit]) -> bool {
        use palisade_engine::index::PodEdit;
        let mut known = vec![true; self.ip_text[0].len()];
        for &e in edits {
            match e {
                PodEdit::Removed(id) if id < known.len() => {
                    known.remove(id);
                    for t in &mut self.ip_text {
                        t.remove(id);
                    }
                    // A set that held the pod lists its address: gone; the others' keys shift down.
                    self.rekey(|k| {
                        if k.contains(id) {
                            return None;
                        }
                        let mut k = k.clone();
                        k.remove_at(id);
                        Some(k)
                    });
                }
                PodEdit::Inserted(id) if id <= known.len() => {
                    known.insert(id, false);
                    for t in &mut self.ip_text {
                        t.insert(id, None);
                    }
                    self.rekey(|k| {
                        let mut k = k.clone();
                        k.insert_at(id, false);
                        Some(k)
                    });
                }
                _ => return false,
            }
        }
        let pods = index.pods();
        if known.len() != pods.len() {
            return false;
        }
        for (i, _) in known.iter().enumerate().filter(|(_, k)| !**k) {
            for (slot, f) in [IpFamily::V4, IpFamily::V6].into_iter().enumerate() {
                self.ip_text[slot][i] = pods[i].facts.ip(f).map(|ip| ip.to_string());
            }
        }
        true
    }

    /// Maps every cached set's pods to `f(pods)`, dropping the sets for which it says `None`.
    fn rekey(&mut self, f: impl Fn(&BitSet) -> Option<BitSet>) {
        for m in &mut self.by_pods {
            *m = std::mem::take(m).into_iter().filter_map(|(k, v)| Some((f(&k)?, v))).collect();
        }
        self.by_named = std::mem::take(&mut self.by_named)
            .into_iter()
            .filter_map(|((slot, k, names), v)| Some(((slot, f(&k)?, names), v)))
            .collect();
    }

    fn pods_set(&mut self, slot: usize, pods: &BitSet) -> Option<Keyed> {
        if let Some(a) = self.by_pods[slot].get(pods) {
            return Some(a.clone());
        }
        let a = self.old_by_pods[slot].remove(pods)?;
        self.by_pods[slot].insert(pods.clone(), a.clone());
        Some(a)
    }

    fn named_set(&mut self, key: &NamedKey) -> Option<Keyed> {
        if let Some(a) = self.by_named.get(key) {
            return Some(a.clone());
        }
        let a = self.old_by_named.remove(key)?;
        self.by_named.insert(key.clone(), a.clone());
        Some(a)
    }
}

/// Compiles the rules for the node's local pods; every pod of the cluster is a possible peer.
pub fn compile(index: &Index, node: &Node, table: &str) -> Ruleset {
    compile_with(index, node, table, &mut CompileCache::default())
}

/// [`compile`], reusing what an earlier compile of the same node computed.
pub fn compile_with(index: &Index, node: &Node, table: &str, cache: &mut CompileCache) -> Ruleset {
    cache.begin(index);
    let mut rs = Ruleset {
        table: table.to_owned(),
        sets: Vec::new(),
        chains: Vec::new(),
        maps: ["ing4", "ing6", "eg4", "eg6"].into_iter().map(|m| (m, BTreeMap::new())).collect(),
    };
    let mut ifs = BTreeSet::new();
    let (mut ifaddr4, mut ifaddr6) = (BTreeSet::new(), BTreeSet::new());
    let pods = index.pods();
    let local: Vec<(PodId, &String)> =
        node.interfaces.iter().filter_map(|(k, ifname)| index.pod_id(k).map(|id| (id, ifname))).collect();
    for (id, ifname) in local.iter().filter(|(_, i)| !i.is_empty()) {
        ifs.insert(quote(ifname));
        for ip in &pods[*id].facts.ips {
            let e = format!("{} . {ip}", quote(ifname));
            if ip.is_ipv4() {
                ifaddr4.insert(e);
            } else {
                ifaddr6.insert(e);
            }
        }
    }
    for (name, kind, elements) in [
        (POD_IFS, "ifname", ifs),
        (POD_IFADDR4, "ifname . ipv4_addr", ifaddr4),
        (POD_IFADDR6, "ifname . ipv6_addr", ifaddr6),
    ] {
        let elements = cache.shared(elements);
        rs.sets.push(Set { name: name.into(), kind, interval: false, elements });
    }
    // Policy chains, only for policies that select a local pod.
    let mut needed: BTreeSet<(usize, Direction)> = BTreeSet::new();
    for (id, _) in &local {
        for d in [Direction::Ingress, Direction::Egress] {
            for &p in index.selecting_ids(*id, d) {
                needed.insert((p, d));
            }
        }
    }
    let policies: Vec<_> = index.policies().collect();
    let mut seen = HashMap::default();
    let mut by_pods: [HashMap<BitSet, String>; 2] = [HashMap::default(), HashMap::default()];
    let mut by_named: HashMap<NamedKey, String> = HashMap::default();
    for &(pi, d) in &needed {
        let policy = policies[pi];
        let base = format!("pol_{}__{}_{}", ident(&policy.key.namespace), ident(&policy.key.name), &d.as_str()[..3]);
        let mut chain = Chain { name: base.clone(), rules: Vec::new() };
        for (ri, rule) in policy.rules(d).unwrap_or_default().iter().enumerate() {
            let comment = quote(&format!("{} spec.{}[{ri}]", policy.key, d.as_str()));
            // Port entries: numeric ones in one concatenated interval set, named ones resolved per destination.
            let mut port_ranges: BTreeMap<Protocol, Vec<(u16, u16)>> = BTreeMap::new();
            let mut named: Vec<(&String, Protocol)> = Vec::new();
            for e in rule.ports.iter().flatten() {
                let r = port_ranges.entry(e.protocol).or_default();
                match &e.port {
                    PortMatch::Any => r.push((0, 65535)),
                    PortMatch::Range(a, b) => r.push((*a, *b)),
                    PortMatch::Named(n) => named.push((n, e.protocol)),
                    PortMatch::Invalid => {}
                }
            }
            let mut ports = BTreeSet::new();
            for (p, rs) in port_ranges {
                for (a, b) in merge(rs, |x: u16| x.checked_add(1)) {
                    ports.insert(if a == b {
                        format!("{} . {a}", proto(p))
                    } else {
                        format!("{} . {a}-{b}", proto(p))
                    });
                }
            }
            for family in [IpFamily::V4, IpFamily::V6] {
                let (ipk, addr_type) = ip_of(family);
                let fam = if family == IpFamily::V4 { "4" } else { "6" };
                let (peer_dir, dest_dir) = match d {
                    Direction::Ingress => ("saddr", "daddr"),
                    Direction::Egress => ("daddr", "daddr"),
                };
                // Peer matches: a hash set of pod addresses and an interval set of ipBlock ranges.
                let mut peer_exprs: Vec<String> = Vec::new();
                let mut peer_pods: Option<BitSet> = None;
                match &rule.peers {
                    None => peer_exprs.push(String::new()),
                    Some(peers) => {
                        let mut selected = BitSet::new(pods.len());
                        let mut ranges: Vec<(u128, u128)> = Vec::new();
                        let mut union = BitSet::new(pods.len());
                        for (pe, peer) in peers.iter().enumerate() {
                            match peer {
                                Peer::Pods { .. } => {
                                    let set = index.peer_pods(pi, d, ri, pe, family);
                                    union.union_with(set);
                                    selected.union_with(set);
                                }
                                Peer::IpBlock(b) if (b.cidr.addr().is_ipv4()) == (family == IpFamily::V4) => {
                                    union.union_with(index.peer_pods(pi, d, ri, pe, family));
                                    ranges.extend(b.ranges().into_iter().map(|(a, z)| (ip_num(a), ip_num(z))));
                                }
                                _ => {}
                            }
                        }
                        peer_pods = Some(union);
                        // The same pods often peer with many rules: format their addresses once per distinct set.
                        let slot = usize::from(family == IpFamily::V6);
                        let name = match by_pods[slot].get(&selected) {
                            Some(name) => name.clone(),
                            None => {
                                let addrs = match cache.pods_set(slot, &selected) {
                                    Some(a) => a,
                                    None => {
                                        let set: BTreeSet<String> =
                                            selected.iter().filter_map(|q| cache.ip_text[slot][q].clone()).collect();
                                        let a = cache.shared_keyed(set);
                                        cache.by_pods[slot].insert(selected.clone(), a.clone());
                                        a
                                    }
                                };
                                let addrs = cache.adopt(addrs);
                                let name = if addrs.is_empty() {
                                    String::new()
                                } else {
                                    intern(&mut rs, &mut seen, format!("{base}{ri}_pods{fam}"), addr_type, false, addrs)
                                };
                                by_pods[slot].insert(selected.clone(), name.clone());
                                name
                            }
                        };
                        if !name.is_empty() {
                            peer_exprs.push(format!("{ipk} {peer_dir} @{name} "));
                        }
                        let v4 = family == IpFamily::V4;
                        let ranges: BTreeSet<String> = merge(ranges, |x: u128| x.checked_add(1))
                            .into_iter()
                            .map(|(a, z)| range_elem(num_ip(a, v4), num_ip(z, v4)))
                            .collect();
                        if !ranges.is_empty() {
                            let ranges = cache.shared(ranges);
                            let name =
                                intern(&mut rs, &mut seen, format!("{base}{ri}_cidr{fam}"), addr_type, true, ranges);
                            peer_exprs.push(format!("{ipk} {peer_dir} @{name} "));
                        }
                    }
                }
                if peer_exprs.is_empty() {
                    continue;
                }
                let mut port_exprs: Vec<String> = Vec::new();
                if rule.ports.is_none() {
                    port_exprs.push(String::new());
                }
                if !ports.is_empty() {
                    let name = intern(
                        &mut rs,
                        &mut seen,
                        format!("{base}{ri}_ports{fam}"),
                        "inet_proto . inet_service",
                        true,
                        cache.shared(ports.clone()),
                    );
                    port_exprs.push(format!("meta l4proto . th dport @{name} "));
                }
                if !named.is_empty() {
                    // Destinations that define the named port: the selected local pods (ingress) or the peers (egress).
                    let mut candidates = BitSet::new(pods.len());
                    match d {
                        Direction::Ingress => {
                            for (id, _) in &local {
                                if index.selecting_ids(*id, d).contains(&pi) {
                                    candidates.insert(*id);
                                }
                            }
                        }
                        Direction::Egress => match &peer_pods {
                            Some(u) if rule.peers.is_some() => candidates.union_with(u),
                            _ => candidates = BitSet::full(pods.len()),
                        },
                    }
                    // Many rules resolve the same names on the same pods: build each set once.
                    let slot = usize::from(family == IpFamily::V6);
                    let mut names: Vec<(String, Protocol)> = named.iter().map(|(n, p)| ((*n).clone(), *p)).collect();
                    names.sort();
                    let cache_key = (slot, candidates, names);
                    let name = match by_named.get(&cache_key) {
                        Some(name) => name.clone(),
                        None => {
                            let elems = match cache.named_set(&cache_key) {
                                Some(e) => e,
                                None => {
                                    let mut elems = BTreeSet::new();
                                    for q in cache_key.1.iter() {
                                        let Some(ip) = &cache.ip_text[slot][q] else { continue };
                                        for cp in index.pod_ports(q) {
                                            if named.iter().any(|(n, p)| {
                                                cp.name.as_deref() == Some(n.as_str()) && cp.protocol == *p
                                            }) {
                                                elems.insert(format!("{ip} . {} . {}", proto(cp.protocol), cp.port));
                                            }
                                        }
                                    }
                                    let e = cache.shared_keyed(elems);
                                    cache.by_named.insert(cache_key.clone(), e.clone());
                                    e
                                }
                            };
                            let elems = cache.adopt(elems);
                            let name = if elems.is_empty() {
                                String::new()
                            } else {
                                let kind = if family == IpFamily::V4 {
                                    "ipv4_addr . inet_proto . inet_service"
                                } else {
                                    "ipv6_addr . inet_proto . inet_service"
                                };
                                intern(&mut rs, &mut seen, format!("{base}{ri}_named{fam}"), kind, false, elems)
                            };
                            by_named.insert(cache_key, name.clone());
                            name
                        }
                    };
                    if !name.is_empty() {
                        port_exprs.push(format!("{ipk} {dest_dir} . meta l4proto . th dport @{name} "));
                    }
                }
                for pe in &peer_exprs {
                    for po in &port_exprs {
                        let prefix = if pe.is_empty() && po.is_empty() {
                            format!("meta nfproto ipv{fam} ")
                        } else {
                            String::new()
                        };
                        chain.rules.push(format!("{prefix}{pe}{po}accept comment {comment}"));
                    }
                }
            }
        }
        rs.chains.push(chain);
    }
    // Per-pod chains and the dispatch maps.
    for (id, _) in &local {
        let pod = &pods[*id];
        for d in [Direction::Ingress, Direction::Egress] {
            let ids = index.selecting_ids(*id, d);
            if ids.is_empty() {
                continue;
            }
            let short = &d.as_str()[..3];
            let name = format!("{short}_{}__{}", ident(&pod.key.namespace), ident(&pod.key.name));
            let mut rules: Vec<String> = ids
                .iter()
                .map(|&pi| {
                    let p = policies[pi];
                    format!("jump pol_{}__{}_{short}", ident(&p.key.namespace), ident(&p.key.name))
                })
                .collect();
            rules.push(format!(
                "counter drop comment {}",
                quote(&format!("{} {}: no policy admits", pod.key, d.as_str()))
            ));
            rs.chains.push(Chain { name: name.clone(), rules });
            for ip in &pod.facts.ips {
                let map = match (d, ip.is_ipv4()) {
                    (Direction::Ingress, true) => "ing4",
                    (Direction::Ingress, false) => "ing6",
                    (Direction::Egress, true) => "eg4",
                    (Direction::Egress, false) => "eg6",
                };
                rs.maps.get_mut(map).map(|m| m.insert(ip.to_string(), format!("goto {name}")));
            }
        }
    }
    rs
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
        let _ = writeln!(o, "    ct state invalid drop");
        let _ = writeln!(
            o,
            "    iifname @{POD_IFS} iifname . ip saddr != @{POD_IFADDR4} counter drop comment \"source address is not its pod's\""
        );
        let _ = writeln!(
            o,
            "    iifname @{POD_IFS} iifname . ip6 saddr != @{POD_IFADDR6} counter drop comment \"source address is not its pod's\""
        );
        let _ = writeln!(o, "    ip saddr vmap @eg4");
        let _ = writeln!(o, "    ip6 saddr vmap @eg6");
        let _ = writeln!(o, "  }}");
        let _ = writeln!(o, "  chain fwd_ingress {{");
        let _ = writeln!(o, "    type filter hook forward priority filter + 10; policy accept;");
        let _ = writeln!(o, "    ct state established,related accept");
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
    let pods = index.pods();
    let policies: Vec<_> = index.policies().collect();
    let mut rules: Vec<String> = Vec::new();
    for key in node.interfaces.keys() {
        let Some(id) = index.pod_id(key) else { continue };
        let Some(dst) = pods[id].facts.ip(IpFamily::V4) else { continue };
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
                                        if let Some(ip) = pods[q].facts.ip(IpFamily::V4) {
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
