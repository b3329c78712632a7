//! The Admin and Baseline tiers (ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy) as
//! nftables chains.
//!
//! A local pod's dispatch chain keeps the engine's order per side: `jump` to its Admin tier chain, then the
//! NetworkPolicy jumps and final drop when NetworkPolicy isolates the side, else `jump` to its Baseline tier
//! chain; what falls off the end is accepted. A tier chain holds, in walk order (priority, name, kind), the
//! rules of every tier policy whose subject holds the pod, each rule's verdict written as the action says:
//! Accept `accept`, Deny `drop`, Pass `return` (back to the pod chain, which goes on with NetworkPolicy or
//! the default). Pods selected by the same tier policies share one chain, named by those policies, so a
//! packet walks only the rules of the policies selecting its pod and the table holds each combination once.
//!
//! Peers and ports are sets named by the rule they belong to (`tp4_…`: pod and node addresses, hash;
//! `tn4_…`: `networks`, interval; `tq4_…`: a named port's `address . protocol . port` on destination pods,
//! `tports_…`: port ranges by content). A peer the lowering could not read matches every address in a Deny
//! or Pass rule and none in an Accept rule, as the engine decides.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use palisade_engine::bitset::BitSet;
use palisade_engine::cnp::lower::{NodeFacts, PodSet, TierPeer, TierPort, TierRule};
use palisade_engine::cnp::tiers::IndexedTierPolicy;
use palisade_engine::cnp::{Action, PolicyKind, Tier};
use palisade_engine::policy::{Direction, Selector};
use palisade_engine::store::Changes;
use palisade_engine::{Index, IpFamily, PodId, Protocol};

use crate::compile::{ip_num, ip_of, merge, num_ip, proto, quote, range_elem};

/// A set a tier chain uses: its type, whether it holds intervals, its elements (shared with the cache, so
/// an unchanged set is recognised without comparing its elements).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TierSet {
    pub kind: &'static str,
    pub interval: bool,
    pub elements: Arc<BTreeSet<String>>,
}

/// A tier rule: its policy's kind and name, the direction, its index.
type RuleKey = (PolicyKind, String, Direction, usize);

/// How an address set is filled: the pods the `pods`/`namespaces` peers `pes` of a rule match (their
/// resolved sets, found through the rule) and the addresses of the Nodes the `nodes` selectors match.
#[derive(Debug, Clone)]
struct AddressDef {
    rule: RuleKey,
    pes: Vec<usize>,
    nodes: Vec<Selector>,
    slot: usize,
}

/// A tier rule as last compiled: its lines depend only on its definition; the sets it names are filled
/// (and shared between rules) by what defines them.
#[derive(Debug)]
struct CachedRule {
    rule: TierRule,
    lines: Vec<String>,
    /// Sets with fixed contents (ports, networks).
    fixed: Vec<(String, TierSet)>,
    addresses: Vec<(String, AddressDef)>,
    /// Named-port sets: (name, family slot, port names).
    named: Vec<(String, usize, Vec<String>)>,
}

/// An address set as last filled, with the pods it was filled from.
#[derive(Debug)]
struct CachedSet {
    members: BitSet,
    nodes: BTreeSet<String>,
    elements: Arc<BTreeSet<String>>,
}

/// The tier rules and sets as last compiled, so that a change compiles again only what it touches: a
/// rule's lines while its definition is the same; an address set while the pods its peers match are the
/// same and none of them changed address (a label change that keeps a pod in the set costs nothing); a
/// named-port set while no pod changed. Sets are named by what defines them, so rules with the same peers
/// share one.
#[derive(Debug, Default)]
pub(crate) struct RuleCache {
    nodes: Vec<NodeFacts>,
    rules: HashMap<RuleKey, CachedRule>,
    sets: HashMap<String, CachedSet>,
    named: HashMap<String, Arc<BTreeSet<String>>>,
    /// This update: the tier policies' positions, the pods whose address changed (id, addresses before),
    /// whether any pod changed, the sets filled so far.
    positions: HashMap<(PolicyKind, String), usize>,
    readdressed: Vec<(PodId, [Option<IpAddr>; 2])>,
    pods_changed: bool,
    filled: HashSet<String>,
}

impl RuleCache {
    /// Takes in what changed before a refresh.
    pub(crate) fn invalidate(&mut self, index: &Index, changes: &Changes) {
        if index.tiers().nodes() != self.nodes.as_slice() {
            self.sets.clear();
            self.nodes = index.tiers().nodes().to_vec();
        }
        if changes.tiers {
            let live: HashSet<(PolicyKind, &str)> =
                index.tiers().policies.iter().map(|p| (p.policy.kind, p.policy.name.as_str())).collect();
            self.rules.retain(|k, _| live.contains(&(k.0, k.1.as_str())));
        }
        if self.sets.is_empty() && self.named.is_empty() {
            // Nothing kept that a pod could have made stale.
            return;
        }
        self.pods_changed |= !changes.pods.is_empty();
        for (key, before) in &changes.pods {
            let Some(id) = index.pod_id(key) else { continue };
            let old = [IpFamily::V4, IpFamily::V6].map(|f| before.iter().copied().find(|ip| IpFamily::of(ip) == f));
            let now = [IpFamily::V4, IpFamily::V6].map(|f| index.pod(id).facts.ip(f));
            if old != now {
                self.readdressed.push((id, old));
            }
        }
    }

    /// Before compiling chains: where each tier policy is in the index.
    fn begin(&mut self, index: &Index) {
        if self.positions.is_empty() {
            self.positions = index
                .tiers()
                .policies
                .iter()
                .enumerate()
                .map(|(i, p)| ((p.policy.kind, p.policy.name.clone()), i))
                .collect();
        }
    }

    /// After a refresh: forgets the sets no chain used and what this update changed.
    pub(crate) fn finish(&mut self) {
        let filled = std::mem::take(&mut self.filled);
        self.sets.retain(|n, _| filled.contains(n));
        self.named.retain(|n, _| filled.contains(n));
        self.readdressed.clear();
        self.pods_changed = false;
        self.positions.clear();
    }

    /// The elements of an address set, from the cache while still valid.
    fn address_set(&mut self, index: &Index, name: &str, def: &AddressDef) -> Arc<BTreeSet<String>> {
        let tiers = index.tiers();
        let mut members = BitSet::new(index.pod_slots());
        if let Some(&i) = self.positions.get(&(def.rule.0, def.rule.1.clone()))
            && let Some(rule) = tiers.policies[i].rules(def.rule.2).get(def.rule.3)
        {
            for &pe in &def.pes {
                if let Some(p) = rule.peers.get(pe) {
                    members.union_with(&p[def.slot]);
                }
            }
        }
        let family = if def.slot == 0 { IpFamily::V4 } else { IpFamily::V6 };
        let nodes: BTreeSet<String> = tiers
            .nodes()
            .iter()
            .filter(|n| def.nodes.iter().any(|sel| sel.matches(&n.labels)))
            .flat_map(|n| n.addresses.iter().filter(|ip| IpFamily::of(ip) == family).map(ToString::to_string))
            .collect();
        if let Some(c) = self.sets.get(name) {
            let moved = self
                .readdressed
                .iter()
                .any(|(id, old)| members.contains(*id) && old[def.slot] != index.pod(*id).facts.ip(family));
            if c.members == members && c.nodes == nodes && !moved {
                return c.elements.clone();
            }
        }
        let mut elements: BTreeSet<String> = nodes.clone();
        for q in members.iter() {
            if let Some(ip) = index.pod(q).facts.ip(family) {
                elements.insert(ip.to_string());
            }
        }
        let elements = Arc::new(elements);
        self.sets.insert(name.to_owned(), CachedSet { members, nodes, elements: elements.clone() });
        elements
    }

    /// The elements of a named-port set, from the cache while no pod changed.
    fn named_set(&mut self, index: &Index, name: &str, slot: usize, names: &[String]) -> Arc<BTreeSet<String>> {
        if !self.pods_changed
            && let Some(e) = self.named.get(name)
        {
            return e.clone();
        }
        let family = if slot == 0 { IpFamily::V4 } else { IpFamily::V6 };
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let e = Arc::new(named_port_elements(index, family, &names));
        self.named.insert(name.to_owned(), e.clone());
        e
    }
}

/// The tier chain a local pod's side jumps to: its name, or `None` when no tier policy of `tier` selects the
/// pod with rules for `d`.
pub(crate) fn chain_of(index: &Index, pod: PodId, tier: Tier, d: Direction) -> Option<String> {
    let ids = selecting(index, pod, tier, d);
    (!ids.is_empty()).then(|| chain_name(index, tier, d, &ids))
}

/// The policies of `tier` whose subject holds `pod` and that have rules for `d`, in walk order.
pub(crate) fn selecting(index: &Index, pod: PodId, tier: Tier, d: Direction) -> Vec<usize> {
    let tiers = index.tiers();
    if tiers.policies.is_empty() || index.pod(pod).facts.host_network {
        return Vec::new();
    }
    tiers.selecting(pod, d).into_iter().filter(|&i| tiers.policies[i].policy.tier == tier).collect()
}

fn short(d: Direction) -> &'static str {
    &d.as_str()[..3]
}

fn stable_hash<T: std::hash::Hash>(v: &T) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x5449_4552_5345_5453).hash_one(v)
}

/// `adm_<hash>_ing`: named by the policies (kind and name) it holds, in order.
pub(crate) fn chain_name(index: &Index, tier: Tier, d: Direction, ids: &[usize]) -> String {
    let policies = &index.tiers().policies;
    let who: Vec<(&str, &str)> =
        ids.iter().map(|&i| (policies[i].policy.kind.as_str(), policies[i].policy.name.as_str())).collect();
    let prefix = match tier {
        Tier::Admin => "adm",
        Tier::Baseline => "bl",
    };
    format!("{prefix}_{:016x}_{}", stable_hash(&who), short(d))
}

/// The rules of a tier chain for the policies `ids` (walk order), adding the sets they use to `sets`.
pub(crate) fn chain_rules(
    cache: &mut RuleCache,
    index: &Index,
    d: Direction,
    ids: &[usize],
    sets: &mut BTreeMap<String, TierSet>,
) -> Vec<String> {
    cache.begin(index);
    let mut rules = Vec::new();
    for &i in ids {
        let p = &index.tiers().policies[i];
        for ri in 0..p.rules(d).len() {
            let key: RuleKey = (p.policy.kind, p.policy.name.clone(), d, ri);
            let rule = &p.rules(d)[ri];
            if cache.rules.get(&key).is_none_or(|c| c.rule != rule.rule) {
                let c = compile_rule(p, d, ri, key.clone());
                cache.rules.insert(key.clone(), c);
            }
            let c = &cache.rules[&key];
            rules.extend(c.lines.iter().cloned());
            for (name, set) in &c.fixed {
                sets.insert(name.clone(), set.clone());
            }
            let addresses = c.addresses.clone();
            let named = c.named.clone();
            for (name, def) in addresses {
                if sets.contains_key(&name) {
                    continue;
                }
                let elements = cache.address_set(index, &name, &def);
                cache.filled.insert(name.clone());
                let kind = if def.slot == 0 { "ipv4_addr" } else { "ipv6_addr" };
                sets.insert(name, TierSet { kind, interval: false, elements });
            }
            for (name, slot, names) in named {
                if sets.contains_key(&name) {
                    continue;
                }
                let elements = cache.named_set(index, &name, slot, &names);
                cache.filled.insert(name.clone());
                let kind = if slot == 0 {
                    "ipv4_addr . inet_proto . inet_service"
                } else {
                    "ipv6_addr . inet_proto . inet_service"
                };
                sets.insert(name, TierSet { kind, interval: false, elements });
            }
        }
    }
    rules
}

/// Rule `ri` of a tier policy: its kernel lines (one per family, peer set and port set it needs, all with
/// the rule's verdict, so the first rule matching decides, as in the engine) and the sets they name.
fn compile_rule(p: &IndexedTierPolicy, d: Direction, ri: usize, key: RuleKey) -> CachedRule {
    let rule = &p.rules(d)[ri];
    let lp = &p.policy;
    let verdict = match rule.rule.action {
        Action::Accept => "accept",
        Action::Deny => "drop",
        Action::Pass => "return",
    };
    let name = rule.rule.name.as_deref().map(|n| format!(" \"{n}\"")).unwrap_or_default();
    let comment = quote(&format!("{} {} {} spec.{}[{ri}]{name}", lp.tier, lp.kind, lp.name, d.as_str()));
    let mut out = CachedRule {
        rule: rule.rule.clone(),
        lines: Vec::new(),
        fixed: Vec::new(),
        addresses: Vec::new(),
        named: Vec::new(),
    };
    // Ports: any, or ranges (one set by content), or named ports resolved on the destination pods.
    let mut ranges: BTreeMap<Protocol, Vec<(u16, u16)>> = BTreeMap::new();
    let mut named: Vec<String> = Vec::new();
    let any_port = rule.rule.protocols.is_none();
    for port in rule.rule.protocols.iter().flatten() {
        match port {
            TierPort::Range(pr, a, b) => ranges.entry(*pr).or_default().push((*a, *b)),
            TierPort::Named(n) => named.push(n.clone()),
            TierPort::Nothing => {}
        }
    }
    named.sort_unstable();
    named.dedup();
    let mut port_elems = BTreeSet::new();
    for (pr, rs) in ranges {
        for (a, b) in merge(rs, |x: u16| x.checked_add(1)) {
            port_elems.insert(if a == b { format!("{} . {a}", proto(pr)) } else { format!("{} . {a}-{b}", proto(pr)) });
        }
    }
    let ports_set = (!port_elems.is_empty()).then(|| {
        let name = format!("tports_{:016x}", stable_hash(&port_elems));
        let set = TierSet { kind: "inet_proto . inet_service", interval: true, elements: Arc::new(port_elems) };
        out.fixed.push((name.clone(), set));
        name
    });
    let (peer_dir, dest_dir) = match d {
        Direction::Ingress => ("saddr", "daddr"),
        Direction::Egress => ("daddr", "daddr"),
    };
    // The peers: every address (a peer read as unknown in a Deny or Pass rule), or the pods and Nodes they
    // match (one hash set per family, named by those peers) and their networks (an interval set by content).
    let mut every = false;
    let mut pods: Vec<usize> = Vec::new();
    let mut pod_sets: Vec<&PodSet> = Vec::new();
    let mut nodes: Vec<Selector> = Vec::new();
    let mut nets: Vec<ipnet::IpNet> = Vec::new();
    for (pe, peer) in rule.rule.peers.iter().enumerate() {
        match peer {
            TierPeer::Pods(set) => {
                pods.push(pe);
                pod_sets.push(set);
            }
            TierPeer::Networks(list) => nets.extend(list.iter().copied()),
            TierPeer::Nodes(sel) => nodes.push(sel.clone()),
            TierPeer::DomainNames(_) => {}
            TierPeer::Unknown => every |= rule.rule.action != Action::Accept,
        }
    }
    for family in [IpFamily::V4, IpFamily::V6] {
        let (ipk, addr_type) = ip_of(family);
        let f = if family == IpFamily::V4 { "4" } else { "6" };
        let slot = usize::from(family == IpFamily::V6);
        let mut peer_exprs: Vec<String> = Vec::new();
        if every {
            peer_exprs.push(String::new());
        } else {
            if !pods.is_empty() || !nodes.is_empty() {
                let name = format!("tp{f}_{:016x}", stable_hash(&(slot, &pod_sets, &nodes)));
                let def = AddressDef { rule: key.clone(), pes: pods.clone(), nodes: nodes.clone(), slot };
                out.addresses.push((name.clone(), def));
                peer_exprs.push(format!("{ipk} {peer_dir} @{name} "));
            }
            let v4 = family == IpFamily::V4;
            let ranges: Vec<(u128, u128)> = nets
                .iter()
                .filter(|n| n.addr().is_ipv4() == v4)
                .map(|n| (ip_num(n.network()), ip_num(n.broadcast())))
                .collect();
            let ranges: BTreeSet<String> = merge(ranges, |x: u128| x.checked_add(1))
                .into_iter()
                .map(|(a, z)| range_elem(num_ip(a, v4), num_ip(z, v4)))
                .collect();
            if !ranges.is_empty() {
                let name = format!("tn{f}_{:016x}", stable_hash(&ranges));
                out.fixed.push((name.clone(), TierSet { kind: addr_type, interval: true, elements: Arc::new(ranges) }));
                peer_exprs.push(format!("{ipk} {peer_dir} @{name} "));
            }
        }
        if peer_exprs.is_empty() {
            continue;
        }
        let mut port_exprs: Vec<String> = Vec::new();
        if any_port {
            port_exprs.push(String::new());
        }
        if let Some(name) = &ports_set {
            port_exprs.push(format!("meta l4proto . th dport @{name} "));
        }
        if !named.is_empty() {
            let name = format!("tq{f}_{:016x}", stable_hash(&named));
            out.named.push((name.clone(), slot, named.clone()));
            port_exprs.push(format!("{ipk} {dest_dir} . meta l4proto . th dport @{name} "));
        }
        for pe in &peer_exprs {
            for po in &port_exprs {
                // Without an address the line would match both families: it is for this one only.
                let prefix = if pe.is_empty() { format!("meta nfproto ipv{f} ") } else { String::new() };
                out.lines.push(format!("{prefix}{pe}{po}{verdict} comment {comment}"));
            }
        }
    }
    out
}

/// `address . protocol . port` of every container port named one of `names` on a pod that is not
/// host-network (named ports resolve on the destination pod; a host-network one is a host).
fn named_port_elements(index: &Index, family: IpFamily, names: &[&str]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (q, entry) in index.pods_with_ids() {
        if entry.facts.host_network {
            continue;
        }
        let Some(ip) = entry.facts.ip(family) else { continue };
        for cp in index.pod_ports(q) {
            if cp.name.as_deref().is_some_and(|n| names.contains(&n)) {
                out.insert(format!("{ip} . {} . {}", proto(cp.protocol), cp.port));
            }
        }
    }
    out
}
