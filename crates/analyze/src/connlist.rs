//! Every allowed connection between workloads and address ranges outside the cluster, in netpol-analyzer's
//! `list` form (conformance/netpol-analyzer/SEMANTICS.md), NetworkPolicies and the tiers around them
//! (AdminNetworkPolicy, BaselineAdminNetworkPolicy, ClusterNetworkPolicy: see [`crate::tiers`]).

use std::collections::HashMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::networking::v1::NetworkPolicy;
use palisade_engine::bitset::BitSet;
use palisade_engine::cidr::{IpBlock, parse_cidr_sloppy};
use palisade_engine::policy::{Direction, NamespaceScope, Peer, Policy, PortMatch, Rule};
use serde::Serialize;

use crate::model::{Model, Workload};
use crate::ports::PortSet;
use crate::tiers::{self, TierLayer};

/// One side of a listed connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Workload(usize),
    /// An inclusive IPv4 range outside the cluster.
    External(u32, u32),
}

/// One line of the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connection {
    pub src: String,
    pub dst: String,
    pub conn: String,
    #[serde(skip)]
    pub ports: PortSet,
    /// The inclusive IPv4 range when the source is outside the cluster.
    #[serde(skip)]
    pub src_range: Option<(u32, u32)>,
    /// The inclusive IPv4 range when the destination is outside the cluster.
    #[serde(skip)]
    pub dst_range: Option<(u32, u32)>,
}

impl Connection {
    /// A connection between two named peers (workloads), for callers that build lists themselves.
    pub fn between(src: impl Into<String>, dst: impl Into<String>, ports: PortSet) -> Connection {
        Connection {
            src: src.into(),
            dst: dst.into(),
            conn: ports.to_string(),
            ports,
            src_range: None,
            dst_range: None,
        }
    }
}

pub fn external_name(a: u32, b: u32) -> String {
    format!("{}-{}[External]", Ipv4Addr::from(a), Ipv4Addr::from(b))
}

/// IPv4 ranges of an ipBlock (cidr minus except), or none for IPv6.
fn block_ranges(block: &IpBlock) -> Vec<(u32, u32)> {
    block
        .ranges()
        .into_iter()
        .filter_map(|(a, b)| match (a, b) {
            (std::net::IpAddr::V4(a), std::net::IpAddr::V4(b)) => Some((u32::from(a), u32::from(b))),
            _ => None,
        })
        .collect()
}

/// The partition of the IPv4 space cut at every ipBlock of one direction (all policies, as written) and at
/// the `extra` ranges (the tiers' egress `networks`).
fn partition(
    policies: &[(palisade_engine::Origin, NetworkPolicy)],
    direction: Direction,
    extra: &[(u32, u32)],
) -> Vec<(u32, u32)> {
    let mut cuts: Vec<u64> = vec![0, 1 << 32];
    for &(a, z) in extra {
        cuts.push(u64::from(a));
        cuts.push(u64::from(z) + 1);
    }
    for (_, np) in policies {
        let Some(spec) = &np.spec else { continue };
        let peers: Vec<_> = match direction {
            Direction::Ingress => spec.ingress.iter().flatten().flat_map(|r| r.from.iter().flatten()).collect(),
            Direction::Egress => spec.egress.iter().flatten().flat_map(|r| r.to.iter().flatten()).collect(),
        };
        for p in peers {
            let Some(b) = &p.ip_block else { continue };
            let Some(cidr) = parse_cidr_sloppy(&b.cidr) else { continue };
            let except = b.except.iter().flatten().filter_map(|e| parse_cidr_sloppy(e)).collect();
            for (a, z) in block_ranges(&IpBlock { cidr, except }) {
                cuts.push(u64::from(a));
                cuts.push(u64::from(z) + 1);
            }
        }
    }
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2).map(|w| (w[0] as u32, (w[1] - 1) as u32)).collect()
}

/// The other end of a direction's question: a workload (possibly one the model does not hold, such as a
/// kube-dns stand-in) or an external range.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Other<'a> {
    Workload(&'a Workload),
    External(u32, u32),
}

/// Policies lowered once, with the workloads each selects per direction.
pub(crate) struct Analysis<'a> {
    pub(crate) model: &'a Model,
    pub(crate) policies: Vec<Policy>,
    /// Per workload: ids of the policies selecting it for ingress / egress.
    pub(crate) selecting: Vec<[Vec<usize>; 2]>,
    /// The tier policies, in walk order.
    pub(crate) tiers: TierLayer,
    /// Per workload: ids of the tier policies whose subject holds it, with rules for ingress / egress.
    tier_selecting: Vec<[Vec<usize>; 2]>,
    /// Per workload and direction: an id shared by workloads selected by exactly the same policies (of
    /// both kinds).
    set_ids: Vec<[usize; 2]>,
    kube_dns: Workload,
}

/// A rule of a side: rule `.1` of NetworkPolicy `.0`, or of tier policy `.0` (in walk order).
#[derive(Debug, Clone, Copy)]
enum RuleRef {
    Np(usize, usize),
    Tier(usize, usize),
}

fn dslot(d: Direction) -> usize {
    match d {
        Direction::Ingress => 0,
        Direction::Egress => 1,
    }
}

impl<'a> Analysis<'a> {
    pub(crate) fn new(model: &'a Model) -> Self {
        let policies: Vec<Policy> = model.policies.iter().map(|(_, p)| Policy::lower(p)).collect();
        let selecting: Vec<[Vec<usize>; 2]> = model
            .workloads
            .iter()
            .map(|w| {
                let mut s = [Vec::new(), Vec::new()];
                for (i, p) in policies.iter().enumerate() {
                    if p.key.namespace == w.namespace && p.pod_selector.matches(&w.labels) {
                        for d in [Direction::Ingress, Direction::Egress] {
                            if p.rules(d).is_some() {
                                s[dslot(d)].push(i);
                            }
                        }
                    }
                }
                s
            })
            .collect();
        let kube_dns = model
            .workloads
            .iter()
            .find(|w| w.namespace == "kube-system" && w.labels.get("k8s-app").map(String::as_str) == Some("kube-dns"))
            .cloned()
            .unwrap_or_else(|| Workload {
                namespace: "kube-system".into(),
                name: "kube-dns".into(),
                kind: "Deployment".into(),
                labels: [("k8s-app".to_owned(), "kube-dns".to_owned())].into(),
                ports: Vec::new(),
                ips: Vec::new(),
                origin: palisade_engine::Origin { source: String::new(), document: 0, item: None },
            });
        let tiers = TierLayer::new(model);
        let tier_selecting: Vec<[Vec<usize>; 2]> = if tiers.is_empty() {
            vec![[Vec::new(), Vec::new()]; model.workloads.len()]
        } else {
            model.workloads.iter().map(|w| tiers.selecting(model, w)).collect()
        };
        let mut interned: HashMap<(Vec<usize>, Vec<usize>), usize> = HashMap::new();
        let set_ids = selecting
            .iter()
            .zip(&tier_selecting)
            .map(|(s, t)| {
                [0, 1].map(|i| {
                    let next = interned.len();
                    *interned.entry((s[i].clone(), t[i].clone())).or_insert(next)
                })
            })
            .collect();
        Analysis { model, policies, selecting, tiers, tier_selecting, set_ids, kube_dns }
    }

    pub(crate) fn set_id(&self, w: usize, d: Direction) -> usize {
        self.set_ids[w][dslot(d)]
    }

    pub(crate) fn dns_target(&self) -> Workload {
        self.kube_dns.clone()
    }

    fn peer_matches(&self, peer: &Peer, other: Other<'_>) -> bool {
        match (peer, other) {
            (Peer::IpBlock(b), Other::External(a, z)) => block_ranges(b).iter().any(|(lo, hi)| *lo <= a && z <= *hi),
            (Peer::Pods { namespaces, pods }, Other::Workload(w)) => {
                let ns_ok = match namespaces {
                    NamespaceScope::Own(ns) => *ns == w.namespace,
                    NamespaceScope::Selector(sel) => sel.matches(&self.model.namespace_labels(&w.namespace)),
                };
                ns_ok && pods.matches(&w.labels)
            }
            _ => false,
        }
    }

    /// Whether a rule's peers match the workload (an empty list matches everyone).
    pub(crate) fn rule_matches_workload(&self, rule: &Rule, w: usize) -> bool {
        let other = Other::Workload(&self.model.workloads[w]);
        rule.peers.as_ref().is_none_or(|ps| ps.iter().any(|p| self.peer_matches(p, other)))
    }

    /// The ports one rule admits toward `dest` (named ports resolve on the destination workload).
    pub(crate) fn rule_ports(rule: &Rule, dest: Option<&Workload>) -> PortSet {
        let Some(entries) = &rule.ports else { return PortSet::all() };
        let mut out = PortSet::none();
        for e in entries {
            match &e.port {
                PortMatch::Any => out.add(e.protocol, 1, 65535),
                PortMatch::Range(a, b) => out.add(e.protocol, *a, *b),
                PortMatch::Named(name) => {
                    // The first container port with that name, and only if its protocol is the entry's.
                    if let Some(cp) = dest.and_then(|d| d.ports.iter().find(|p| p.name.as_deref() == Some(name)))
                        && cp.protocol == e.protocol
                    {
                        out.add(e.protocol, cp.port, cp.port);
                    }
                }
                PortMatch::Invalid => {}
            }
        }
        out
    }

    /// What the subject's policies of `direction` allow with `other`, or `None` when none selects it.
    fn allowed_by(
        &self,
        policy_ids: &[usize],
        direction: Direction,
        other: Other<'_>,
        dest: Option<&Workload>,
    ) -> Option<PortSet> {
        if policy_ids.is_empty() {
            return None;
        }
        let mut allowed = PortSet::none();
        for &pi in policy_ids {
            for rule in self.policies[pi].rules(direction).unwrap_or_default() {
                if rule.peers.as_ref().is_none_or(|ps| ps.iter().any(|p| self.peer_matches(p, other))) {
                    allowed = allowed.union(&Self::rule_ports(rule, dest));
                }
            }
        }
        Some(allowed)
    }

    /// What a workload's side allows in `direction` with `other`, tiers included (named ports resolve on
    /// `dest`).
    fn side_with_tiers(
        &self,
        subject: usize,
        direction: Direction,
        other: Other<'_>,
        dest: Option<&Workload>,
    ) -> PortSet {
        let np = self.allowed_by(&self.selecting[subject][dslot(direction)], direction, other, dest);
        let matched = self.tier_selecting[subject][dslot(direction)].iter().flat_map(|&ti| {
            let p = &self.tiers.policies[ti];
            p.rules(direction)
                .iter()
                .filter(move |r| tiers::rule_matches(self.model, r, other))
                .map(move |r| (p.tier, r.action, tiers::rule_ports(r, dest)))
        });
        tiers::decide(np, matched)
    }

    /// A workload's NetworkPolicy side for a direction toward another workload: `None` when not isolated.
    pub(crate) fn side(&self, subject: usize, direction: Direction, other: usize) -> Option<PortSet> {
        let dest = if direction == Direction::Egress { other } else { subject };
        self.allowed_by(
            &self.selecting[subject][dslot(direction)],
            direction,
            Other::Workload(&self.model.workloads[other]),
            Some(&self.model.workloads[dest]),
        )
    }

    /// What a workload's egress allows toward any workload (even one not in the model), tiers included.
    pub(crate) fn egress_to(&self, subject: usize, dest: &Workload) -> PortSet {
        self.side_with_tiers(subject, Direction::Egress, Other::Workload(dest), Some(dest))
    }

    fn allowed(&self, src: &Endpoint, dst: &Endpoint) -> PortSet {
        let dest = match dst {
            Endpoint::Workload(d) => Some(&self.model.workloads[*d]),
            Endpoint::External(..) => None,
        };
        let as_other = |e: &Endpoint| match e {
            Endpoint::Workload(w) => Other::Workload(&self.model.workloads[*w]),
            Endpoint::External(a, b) => Other::External(*a, *b),
        };
        let egress = match src {
            Endpoint::Workload(s) => self.side_with_tiers(*s, Direction::Egress, as_other(dst), dest),
            Endpoint::External(..) => PortSet::all(),
        };
        if egress.is_empty() {
            return PortSet::none();
        }
        let ingress = match dst {
            Endpoint::Workload(d) => self.side_with_tiers(*d, Direction::Ingress, as_other(src), dest),
            Endpoint::External(..) => PortSet::all(),
        };
        egress.intersect(&ingress)
    }
}

/// Every allowed connection, sorted by source then destination as byte strings.
///
/// Between workloads the answer depends only on which rules of the two sides match (and, for named ports,
/// on the destination), so pairs are keyed by (policies, matching-rule mask) of each side and computed once.
pub fn connlist(model: &Model) -> Vec<Connection> {
    let analysis = Analysis::new(model);
    let sources = partition(&model.policies, Direction::Ingress, &[]);
    let dests = partition(&model.policies, Direction::Egress, &analysis.tiers.egress_ranges());
    let n = model.workloads.len();
    let names: Vec<String> = model.workloads.iter().map(ToString::to_string).collect();
    let ext_names = |v: &[(u32, u32)]| v.iter().map(|(a, b)| external_name(*a, *b)).collect::<Vec<_>>();
    let (source_names, dest_names) = (ext_names(&sources), ext_names(&dests));
    // Ranks of every name, so sorting compares integers.
    let mut all: Vec<&str> = names.iter().chain(&source_names).chain(&dest_names).map(String::as_str).collect();
    all.sort_unstable();
    all.dedup();
    let rank = |s: &str| all.binary_search(&s).unwrap_or(0);
    let wrank: Vec<usize> = names.iter().map(|s| rank(s)).collect();

    let mut out: Vec<(usize, usize, Connection)> = Vec::new();
    let mut emit = |rs: usize, rd: usize, src: &str, dst: &str, ports: PortSet, ranges: [Option<(u32, u32)>; 2]| {
        if !ports.is_empty() {
            let mut c = Connection::between(src, dst, ports);
            [c.src_range, c.dst_range] = ranges;
            out.push((rs, rd, c));
        }
    };

    // Rule matches as bitsets over workloads: matches[policy][direction][rule].
    let matches: Vec<[Vec<BitSet>; 2]> = analysis
        .policies
        .iter()
        .map(|p| {
            [Direction::Ingress, Direction::Egress].map(|d| {
                p.rules(d)
                    .unwrap_or_default()
                    .iter()
                    .map(|r| {
                        let mut b = BitSet::new(n);
                        for w in 0..n {
                            if analysis.rule_matches_workload(r, w) {
                                b.insert(w);
                            }
                        }
                        b
                    })
                    .collect()
            })
        })
        .collect();
    // The same for the tier rules: tier_matches[policy][direction][rule].
    let tier_matches: Vec<[Vec<BitSet>; 2]> = analysis
        .tiers
        .policies
        .iter()
        .map(|p| {
            [Direction::Ingress, Direction::Egress].map(|d| {
                p.rules(d)
                    .iter()
                    .map(|r| {
                        let mut b = BitSet::new(n);
                        for w in 0..n {
                            if tiers::rule_matches(model, r, Other::Workload(&model.workloads[w])) {
                                b.insert(w);
                            }
                        }
                        b
                    })
                    .collect()
            })
        })
        .collect();
    // Each workload's rules per direction, flattened: its NetworkPolicies' rules, then its tier rules in walk
    // order.
    let rules_of = |w: usize, d: Direction| -> Vec<RuleRef> {
        let np = analysis.selecting[w][dslot(d)]
            .iter()
            .flat_map(|&pi| (0..analysis.policies[pi].rules(d).map_or(0, <[_]>::len)).map(move |r| RuleRef::Np(pi, r)));
        let tier = analysis.tier_selecting[w][dslot(d)]
            .iter()
            .flat_map(|&ti| (0..analysis.tiers.policies[ti].rules(d).len()).map(move |r| RuleRef::Tier(ti, r)));
        np.chain(tier).collect()
    };
    let egress_rules: Vec<Vec<RuleRef>> = (0..n).map(|w| rules_of(w, Direction::Egress)).collect();
    let ingress_rules: Vec<Vec<RuleRef>> = (0..n).map(|w| rules_of(w, Direction::Ingress)).collect();
    let named = |rule: RuleRef, d: Direction| match rule {
        RuleRef::Np(pi, r) => analysis.policies[pi]
            .rules(d)
            .and_then(|rs| rs.get(r))
            .is_some_and(|rule| rule.ports.iter().flatten().any(|e| matches!(e.port, PortMatch::Named(_)))),
        RuleRef::Tier(ti, r) => tiers::uses_named_port(&analysis.tiers.policies[ti].rules(d)[r]),
    };
    let mask = |rules: &[RuleRef], d: Direction, other: usize| -> u64 {
        let mut m = 0u64;
        for (bit, &rule) in rules.iter().enumerate() {
            let hit = match rule {
                RuleRef::Np(pi, r) => matches[pi][dslot(d)][r].contains(other),
                RuleRef::Tier(ti, r) => tier_matches[ti][dslot(d)][r].contains(other),
            };
            if hit {
                m |= 1 << bit;
            }
        }
        m
    };
    // One side from the rules its mask says match: NetworkPolicy rules add up (when a NetworkPolicy selects
    // the workload: `isolated`), tier rules decide in order.
    let side_of = |rules: &[RuleRef], m: u64, d: Direction, isolated: bool, dest: &Workload| -> PortSet {
        let mut np = isolated.then(PortSet::none);
        let mut matched = Vec::new();
        for (bit, &rule) in rules.iter().enumerate() {
            if m & (1 << bit) == 0 {
                continue;
            }
            match rule {
                RuleRef::Np(pi, r) => {
                    if let (Some(acc), Some(rule)) = (&mut np, analysis.policies[pi].rules(d).and_then(|rs| rs.get(r)))
                    {
                        *acc = acc.union(&Analysis::rule_ports(rule, Some(dest)));
                    }
                }
                RuleRef::Tier(ti, r) => {
                    let p = &analysis.tiers.policies[ti];
                    let rule = &p.rules(d)[r];
                    matched.push((p.tier, rule.action, tiers::rule_ports(rule, Some(dest))));
                }
            }
        }
        tiers::decide(np, matched)
    };
    type Key = (usize, u64, usize, u64, usize);
    let mut cache: HashMap<Key, PortSet> = HashMap::new();
    for s in 0..n {
        let er = &egress_rules[s];
        for d in 0..n {
            if s == d || names[s] == names[d] {
                continue;
            }
            let ir = &ingress_rules[d];
            let ports = if er.len() > 64 || ir.len() > 64 {
                analysis.allowed(&Endpoint::Workload(s), &Endpoint::Workload(d))
            } else {
                let (me, mi) = (mask(er, Direction::Egress, d), mask(ir, Direction::Ingress, s));
                let uses_names = er.iter().enumerate().any(|(b, &x)| me & (1 << b) != 0 && named(x, Direction::Egress))
                    || ir.iter().enumerate().any(|(b, &x)| mi & (1 << b) != 0 && named(x, Direction::Ingress));
                let key: Key = (s, me, d, mi, if uses_names { d } else { usize::MAX });
                // Key on the rule lists' owners (the sides' selecting sets), not on s and d themselves.
                let key = (
                    analysis.set_id(s, Direction::Egress),
                    key.1,
                    analysis.set_id(d, Direction::Ingress),
                    key.3,
                    key.4,
                );
                cache
                    .entry(key)
                    .or_insert_with(|| {
                        let dest = &model.workloads[d];
                        // Isolation comes from being selected, even by a policy without rules.
                        let e = side_of(er, me, Direction::Egress, !analysis.selecting[s][1].is_empty(), dest);
                        if e.is_empty() {
                            return e;
                        }
                        let i = side_of(ir, mi, Direction::Ingress, !analysis.selecting[d][0].is_empty(), dest);
                        e.intersect(&i)
                    })
                    .clone()
            };
            emit(wrank[s], wrank[d], &names[s], &names[d], ports, [None, None]);
        }
        for (j, &(a, b)) in dests.iter().enumerate() {
            let ports = analysis.allowed(&Endpoint::Workload(s), &Endpoint::External(a, b));
            emit(wrank[s], rank(&dest_names[j]), &names[s], &dest_names[j], ports, [None, Some((a, b))]);
        }
    }
    for (j, &(a, b)) in sources.iter().enumerate() {
        for d in 0..n {
            let ports = analysis.allowed(&Endpoint::External(a, b), &Endpoint::Workload(d));
            emit(rank(&source_names[j]), wrank[d], &source_names[j], &names[d], ports, [Some((a, b)), None]);
        }
    }
    out.sort_unstable_by_key(|(a, b, _)| (*a, *b));
    out.into_iter().map(|(_, _, c)| c).collect()
}

/// What the list cannot take into account in these manifests (tier peers it does not analyse, tier policies
/// whose order is undefined), one sentence each.
pub fn warnings(model: &Model) -> Vec<String> {
    TierLayer::new(model).warnings
}

/// The `txt` form: one `SRC => DST : CONN` line per connection.
pub fn render_txt(conns: &[Connection]) -> String {
    conns.iter().map(|c| format!("{} => {} : {}\n", c.src, c.dst, c.conn)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_engine::synth::{Shape, manifests};
    use palisade_engine::{Loaded, Origin, load::load_value};

    /// Admin and Baseline policies over the synthetic clusters' labels: every action, port numbers, ranges and
    /// named ports, pods, namespaces and networks peers.
    fn tier_policies(seed: u64) -> Vec<serde_json::Value> {
        use serde_json::json;
        let mut rng = palisade_engine::synth::Rng::new(seed);
        let tiers = ["web", "api", "db", "cache"];
        let teams = ["payments", "search", "ads", "identity", "infra", "growth"];
        let mut out = Vec::new();
        let peer = |rng: &mut palisade_engine::synth::Rng, egress: bool| match rng.below(if egress { 4 } else { 3 }) {
            0 => json!({"namespaces": {"matchLabels": {"team": teams[rng.below(teams.len())]}}}),
            1 => {
                json!({"pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"tier": tiers[rng.below(4)]}}}})
            }
            2 => json!({"pods": {"namespaceSelector": {"matchLabels": {"env": "prod"}},
                                 "podSelector": {"matchLabels": {"app": format!("app-{}", rng.below(40))}}}}),
            _ => json!({"networks": [format!("{}.0.0.0/{}", 1 + rng.below(200), 8 + rng.below(16))]}),
        };
        let ports = |rng: &mut palisade_engine::synth::Rng| match rng.below(5) {
            0 => serde_json::Value::Null,
            1 => {
                json!([{"portNumber": {"protocol": "TCP", "port": 8080}}, {"portNumber": {"protocol": "UDP", "port": 53}}])
            }
            2 => json!([{"namedPort": "http"}, {"namedPort": "metrics"}]),
            3 => json!([{"portRange": {"protocol": "TCP", "start": 8000, "end": 9100}}]),
            _ => json!([{"portNumber": {"protocol": "SCTP", "port": 9003}}, {"namedPort": "dns"}]),
        };
        let rule = |rng: &mut palisade_engine::synth::Rng, egress: bool, actions: &[&str]| {
            let peers: Vec<_> = (0..1 + rng.below(2)).map(|_| peer(rng, egress)).collect();
            let mut r = json!({"name": "r", "action": actions[rng.below(actions.len())]});
            r[if egress { "to" } else { "from" }] = json!(peers);
            let p = ports(rng);
            if !p.is_null() {
                r["ports"] = p;
            }
            r
        };
        for i in 0..6 {
            let subject = if i % 2 == 0 {
                let env = ["prod", "staging", "dev"][rng.below(3)];
                json!({"namespaces": {"matchLabels": {"env": env}}})
            } else {
                json!({"pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"tier": tiers[rng.below(4)]}}}})
            };
            let actions = ["Allow", "Deny", "Pass"];
            let ingress: Vec<_> = (0..rng.below(4)).map(|_| rule(&mut rng, false, &actions)).collect();
            let egress: Vec<_> = (0..rng.below(4)).map(|_| rule(&mut rng, true, &actions)).collect();
            out.push(json!({"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy",
                "metadata": {"name": format!("anp-{i}")},
                "spec": {"priority": rng.below(4), "subject": subject, "ingress": ingress, "egress": egress}}));
        }
        let ingress: Vec<_> = (0..3).map(|_| rule(&mut rng, false, &["Allow", "Deny"])).collect();
        let egress: Vec<_> = (0..3).map(|_| rule(&mut rng, true, &["Allow", "Deny"])).collect();
        out.push(json!({"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "BaselineAdminNetworkPolicy",
            "metadata": {"name": "default"},
            "spec": {"subject": {"namespaces": {}}, "ingress": ingress, "egress": egress}}));
        out
    }

    /// The memoised pair computation equals asking each pair directly, with and without tier policies.
    #[test]
    fn memoised_list_equals_pairwise_answers() {
        for seed in 1..7 {
            let mut loaded = Loaded::default();
            let mut docs = manifests(Shape { pods: 150, policies: 60, seed, cluster_policies: 0 });
            if seed > 3 {
                docs.extend(tier_policies(seed));
            }
            for (i, v) in docs.into_iter().enumerate() {
                load_value(Origin { source: "s".into(), document: i + 1, item: None }, v, &mut loaded);
            }
            assert_eq!(loaded.cluster_objects.len(), if seed > 3 { 7 } else { 0 }, "{:?}", loaded.errors);
            let model = Model::from_loaded(&loaded);
            let analysis = Analysis::new(&model);
            let listed: HashMap<(String, String), String> =
                connlist(&model).into_iter().map(|c| ((c.src, c.dst), c.conn)).collect();
            if seed > 3 {
                let without = Model { tier_policies: Vec::new(), ..model.clone() };
                let plain: HashMap<(String, String), String> =
                    connlist(&without).into_iter().map(|c| ((c.src, c.dst), c.conn)).collect();
                assert_ne!(listed, plain, "the tier policies change nothing: the test tests nothing");
            }
            let mut expected = 0;
            for s in 0..model.workloads.len() {
                for d in 0..model.workloads.len() {
                    if s == d {
                        continue;
                    }
                    let ports = analysis.allowed(&Endpoint::Workload(s), &Endpoint::Workload(d));
                    let key = (model.workloads[s].to_string(), model.workloads[d].to_string());
                    if ports.is_empty() {
                        assert!(!listed.contains_key(&key), "{key:?}");
                    } else {
                        expected += 1;
                        assert_eq!(listed.get(&key), Some(&ports.to_string()), "{key:?}");
                    }
                }
            }
            assert!(expected > 0);
        }
    }
}
