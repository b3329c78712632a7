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
use palisade_engine::cnp::lower::{NodeFacts, TierPeer, TierPort, TierRule};
use palisade_engine::cnp::tiers::IndexedTierPolicy;
use palisade_engine::cnp::{Action, PolicyKind, Tier};
use palisade_engine::policy::Direction;
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

/// A tier rule as last compiled, with what it was compiled from.
#[derive(Debug)]
struct CachedRule {
    rule: TierRule,
    peers: Vec<[BitSet; 2]>,
    /// It resolves named ports, on any pod of the cluster.
    named: bool,
    lines: Vec<String>,
    sets: Vec<(String, TierSet)>,
    /// The addresses its sets hold.
    addresses: HashSet<IpAddr>,
}

/// The tier rules as last compiled, so that a change compiles again only the rules it touches: a rule is
/// reused while its definition and its peers' pods are the same and none of those pods (nor any pod, for a
/// rule with named ports) changed; Nodes changing drops everything.
#[derive(Debug, Default)]
pub(crate) struct RuleCache {
    nodes: Vec<NodeFacts>,
    rules: HashMap<RuleKey, CachedRule>,
}

impl RuleCache {
    /// Drops the rules `changes` may have made stale.
    pub(crate) fn invalidate(&mut self, index: &Index, changes: &Changes) {
        if index.tiers().nodes() != self.nodes.as_slice() {
            self.rules.clear();
            self.nodes = index.tiers().nodes().to_vec();
        }
        if changes.tiers {
            let live: HashSet<(PolicyKind, &str)> =
                index.tiers().policies.iter().map(|p| (p.policy.kind, p.policy.name.as_str())).collect();
            self.rules.retain(|k, _| live.contains(&(k.0, k.1.as_str())));
        }
        if changes.pods.is_empty() {
            return;
        }
        let ids: Vec<PodId> = changes.pods.keys().filter_map(|k| index.pod_id(k)).collect();
        let before: HashSet<IpAddr> = changes.pods.values().flatten().copied().collect();
        self.rules.retain(|_, c| {
            !c.named
                && !c.addresses.iter().any(|a| before.contains(a))
                && !ids.iter().any(|&q| c.peers.iter().any(|p| p[0].contains(q) || p[1].contains(q)))
        });
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
    let mut rules = Vec::new();
    for &i in ids {
        let p = &index.tiers().policies[i];
        for ri in 0..p.rules(d).len() {
            let key: RuleKey = (p.policy.kind, p.policy.name.clone(), d, ri);
            let rule = &p.rules(d)[ri];
            let hit = cache.rules.get(&key).filter(|c| c.rule == rule.rule && c.peers == rule.peers);
            let cached = match hit {
                Some(c) => c,
                None => {
                    let mut own = BTreeMap::new();
                    let lines = rule_lines(index, p, d, ri, &mut own);
                    let addresses = own
                        .values()
                        .filter(|s| !s.interval)
                        .flat_map(|s| s.elements.iter())
                        .filter_map(|e| e.split(" . ").next().and_then(|a| a.parse().ok()))
                        .collect();
                    let named = rule.rule.protocols.iter().flatten().any(|p| matches!(p, TierPort::Named(_)));
                    let c = CachedRule {
                        rule: rule.rule.clone(),
                        peers: rule.peers.clone(),
                        named,
                        lines,
                        sets: own.into_iter().collect(),
                        addresses,
                    };
                    cache.rules.insert(key.clone(), c);
                    &cache.rules[&key]
                }
            };
            rules.extend(cached.lines.iter().cloned());
            for (name, set) in &cached.sets {
                sets.insert(name.clone(), set.clone());
            }
        }
    }
    rules
}

/// The kernel rules of rule `ri` of a tier policy: one per family, peer set and port set it needs, all
/// with the rule's verdict (so the first rule matching decides, as in the engine).
fn rule_lines(
    index: &Index,
    p: &IndexedTierPolicy,
    d: Direction,
    ri: usize,
    sets: &mut BTreeMap<String, TierSet>,
) -> Vec<String> {
    let rule = &p.rules(d)[ri];
    let lp = &p.policy;
    let id = stable_hash(&(lp.kind.as_str(), lp.name.as_str(), d.as_str(), ri));
    let verdict = match rule.rule.action {
        Action::Accept => "accept",
        Action::Deny => "drop",
        Action::Pass => "return",
    };
    let name = rule.rule.name.as_deref().map(|n| format!(" \"{n}\"")).unwrap_or_default();
    let comment = quote(&format!("{} {} {} spec.{}[{ri}]{name}", lp.tier, lp.kind, lp.name, d.as_str()));
    // Ports: any, or ranges (one set by content), or named ports resolved on the destination pods.
    let mut ranges: BTreeMap<Protocol, Vec<(u16, u16)>> = BTreeMap::new();
    let mut named: Vec<&str> = Vec::new();
    let any_port = rule.rule.protocols.is_none();
    for port in rule.rule.protocols.iter().flatten() {
        match port {
            TierPort::Range(pr, a, b) => ranges.entry(*pr).or_default().push((*a, *b)),
            TierPort::Named(n) => named.push(n),
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
        sets.insert(
            name.clone(),
            TierSet { kind: "inet_proto . inet_service", interval: true, elements: Arc::new(port_elems) },
        );
        name
    });
    let (peer_dir, dest_dir) = match d {
        Direction::Ingress => ("saddr", "daddr"),
        Direction::Egress => ("daddr", "daddr"),
    };
    let mut out = Vec::new();
    for family in [IpFamily::V4, IpFamily::V6] {
        let (ipk, addr_type) = ip_of(family);
        let f = if family == IpFamily::V4 { "4" } else { "6" };
        let slot = usize::from(family == IpFamily::V6);
        // Peers: every address (a peer read as unknown in a Deny or Pass rule), or the addresses of the
        // pods and nodes the peers match (a hash set) and their networks (an interval set).
        let mut every = false;
        let mut addrs: BTreeSet<String> = BTreeSet::new();
        let mut nets: Vec<(u128, u128)> = Vec::new();
        for (pe, peer) in rule.rule.peers.iter().enumerate() {
            match peer {
                TierPeer::Pods(_) => {
                    for q in rule.peers[pe][slot].iter() {
                        if let Some(ip) = index.pod(q).facts.ip(family) {
                            addrs.insert(ip.to_string());
                        }
                    }
                }
                TierPeer::Networks(list) => {
                    for n in list.iter().filter(|n| n.addr().is_ipv4() == (family == IpFamily::V4)) {
                        nets.push((ip_num(n.network()), ip_num(n.broadcast())));
                    }
                }
                TierPeer::Nodes(sel) => {
                    for n in index.tiers().nodes().iter().filter(|n| sel.matches(&n.labels)) {
                        for ip in n.addresses.iter().filter(|ip| IpFamily::of(ip) == family) {
                            addrs.insert(ip.to_string());
                        }
                    }
                }
                TierPeer::DomainNames(_) => {}
                TierPeer::Unknown => every |= rule.rule.action != Action::Accept,
            }
        }
        let mut peer_exprs: Vec<String> = Vec::new();
        if every {
            peer_exprs.push(String::new());
        } else {
            if !addrs.is_empty() {
                let name = format!("tp{f}_{id:016x}");
                sets.insert(name.clone(), TierSet { kind: addr_type, interval: false, elements: Arc::new(addrs) });
                peer_exprs.push(format!("{ipk} {peer_dir} @{name} "));
            }
            let v4 = family == IpFamily::V4;
            let nets: BTreeSet<String> = merge(nets, |x: u128| x.checked_add(1))
                .into_iter()
                .map(|(a, z)| range_elem(num_ip(a, v4), num_ip(z, v4)))
                .collect();
            if !nets.is_empty() {
                let name = format!("tn{f}_{id:016x}");
                sets.insert(name.clone(), TierSet { kind: addr_type, interval: true, elements: Arc::new(nets) });
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
            let elements = named_port_elements(index, family, &named);
            if !elements.is_empty() {
                let name = format!("tq{f}_{id:016x}");
                let kind = if family == IpFamily::V4 {
                    "ipv4_addr . inet_proto . inet_service"
                } else {
                    "ipv6_addr . inet_proto . inet_service"
                };
                sets.insert(name.clone(), TierSet { kind, interval: false, elements: Arc::new(elements) });
                port_exprs.push(format!("{ipk} {dest_dir} . meta l4proto . th dport @{name} "));
            }
        }
        for pe in &peer_exprs {
            for po in &port_exprs {
                // Without an address the line would match both families: it is for this one only.
                let prefix = if pe.is_empty() { format!("meta nfproto ipv{f} ") } else { String::new() };
                out.push(format!("{prefix}{pe}{po}{verdict} comment {comment}"));
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
