//! The tiers in the fast index: each tier policy lowered once, its subject and every peer resolved to a set
//! of pod ids per address family, walked in order (tier, priority, name, kind).
//!
//! Everything here is derived from the tier policies, the Nodes and the index's pods; the index re-derives it
//! after a change (cost O(policies × peers × pods), and nothing at all in a cluster without tier policies).

use std::net::IpAddr;

use super::lower::{LoweredPolicy, NodeFacts, PeerEnd, TierRule};
use super::{Action, ClusterKind, ClusterObject, Tier, TierPolicy};
use crate::bitset::BitSet;
use crate::model::{ContainerPort, IpFamily, Labels, Protocol};
use crate::policy::Direction;

/// What the tiers need to know of one pod of the index (in pod-id order).
#[derive(Debug, Clone, Copy)]
pub struct TierPod<'a> {
    pub namespace_labels: &'a Labels,
    pub labels: &'a Labels,
    pub host_network: bool,
    pub ips: &'a [IpAddr],
}

impl<'a> TierPod<'a> {
    fn ip(&self, family: IpFamily) -> Option<IpAddr> {
        self.ips.iter().copied().find(|ip| IpFamily::of(ip) == family)
    }

    /// The pod as a peer sees it over `family`: a host when it uses the host network.
    pub fn as_peer(&self, family: IpFamily) -> PeerEnd<'a> {
        if self.host_network {
            PeerEnd::Host(self.ip(family))
        } else {
            PeerEnd::Pod { namespace_labels: self.namespace_labels, labels: self.labels, ip: self.ip(family) }
        }
    }
}

/// A rule with each peer's pods per family and their union.
#[derive(Debug, Clone)]
pub struct IndexedTierRule {
    pub rule: TierRule,
    pub peers: Vec<[BitSet; 2]>,
    pub union: [BitSet; 2],
}

/// A tier policy with its subject's pods and its rules resolved.
#[derive(Debug, Clone)]
pub struct IndexedTierPolicy {
    pub policy: LoweredPolicy,
    pub subject: BitSet,
    pub ingress: Vec<IndexedTierRule>,
    pub egress: Vec<IndexedTierRule>,
}

impl IndexedTierPolicy {
    pub fn rules(&self, d: Direction) -> &[IndexedTierRule] {
        match d {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }
}

pub fn slot(f: IpFamily) -> usize {
    match f {
        IpFamily::V4 => 0,
        IpFamily::V6 => 1,
    }
}

/// The tier policies and Nodes of a cluster, and what they resolve to over the index's pods.
#[derive(Debug, Clone, Default)]
pub struct Tiers {
    sources: Vec<TierPolicy>,
    nodes: Vec<NodeFacts>,
    /// Admin policies then Baseline ones, each tier by (priority, name, kind).
    pub policies: Vec<IndexedTierPolicy>,
}

/// The other end of a side, for peer matching.
#[derive(Debug, Clone, Copy)]
pub enum Other {
    Pod(usize),
    Ip(IpAddr),
}

/// The first rule of a tier that matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub policy: usize,
    pub rule: usize,
    pub peer: usize,
    pub port: Option<usize>,
    pub action: Action,
}

impl Tiers {
    pub fn new(sources: Vec<TierPolicy>, nodes: Vec<NodeFacts>) -> Self {
        Tiers { sources, nodes, policies: Vec::new() }
    }

    /// Whether there is no tier policy at all (then the tiers decide nothing).
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    pub fn nodes(&self) -> &[NodeFacts] {
        &self.nodes
    }

    /// Adds or replaces a tier policy or Node; `pods` must follow with [`Tiers::resolve`].
    pub fn apply(&mut self, o: &ClusterObject) {
        match o {
            ClusterObject::Node(n) => {
                let facts = NodeFacts::of(n);
                self.nodes.retain(|x| x.name != facts.name);
                let at = self.nodes.partition_point(|x| x.name < facts.name);
                self.nodes.insert(at, facts);
            }
            _ => {
                if let Some(p) = o.as_policy() {
                    self.sources.retain(|x| !(x.kind == p.kind && x.name == p.name));
                    self.sources.push(p);
                }
            }
        }
    }

    /// Removes a tier policy or Node; returns whether it was there.
    pub fn delete(&mut self, kind: ClusterKind, name: &str) -> bool {
        let before = self.sources.len() + self.nodes.len();
        if kind == ClusterKind::Node {
            self.nodes.retain(|x| x.name != name);
        } else {
            self.sources.retain(|x| !(x.kind.cluster_kind() == kind && x.name == name));
        }
        before != self.sources.len() + self.nodes.len()
    }

    /// Resolves every policy over `pods` (in pod-id order).
    pub fn resolve(&mut self, pods: &[TierPod<'_>]) {
        let n = pods.len();
        let mut lowered: Vec<LoweredPolicy> = self.sources.iter().filter_map(LoweredPolicy::lower).collect();
        lowered.sort_by(|a, b| (a.tier, a.priority, &a.name, a.kind).cmp(&(b.tier, b.priority, &b.name, b.kind)));
        let nodes = &self.nodes;
        let resolve_rules = |rules: &[TierRule]| -> Vec<IndexedTierRule> {
            rules
                .iter()
                .map(|rule| {
                    let peers: Vec<[BitSet; 2]> = rule
                        .peers
                        .iter()
                        .map(|peer| {
                            [IpFamily::V4, IpFamily::V6].map(|f| {
                                let mut s = BitSet::new(n);
                                for (i, p) in pods.iter().enumerate() {
                                    if peer.matches(rule.action, &p.as_peer(f), nodes) {
                                        s.insert(i);
                                    }
                                }
                                s
                            })
                        })
                        .collect();
                    let mut union = [BitSet::new(n), BitSet::new(n)];
                    for p in &peers {
                        union[0].union_with(&p[0]);
                        union[1].union_with(&p[1]);
                    }
                    IndexedTierRule { rule: rule.clone(), peers, union }
                })
                .collect()
        };
        self.policies = lowered
            .into_iter()
            .map(|policy| {
                let mut subject = BitSet::new(n);
                for (i, p) in pods.iter().enumerate() {
                    if policy.subject.matches(p.namespace_labels, p.labels, p.host_network) {
                        subject.insert(i);
                    }
                }
                let ingress = resolve_rules(&policy.ingress);
                let egress = resolve_rules(&policy.egress);
                IndexedTierPolicy { policy, subject, ingress, egress }
            })
            .collect();
    }

    /// Re-derives what one pod (id `i`, one past the last id for a new one) is in, as [`Tiers::resolve`]
    /// over all pods would: its subject bits and its bit in every rule's peers. Costs O(tier peers).
    pub fn resolve_pod(&mut self, i: usize, pod: &TierPod<'_>) {
        let nodes = &self.nodes;
        for p in &mut self.policies {
            let sets = std::iter::once(&mut p.subject).chain(
                p.ingress
                    .iter_mut()
                    .chain(p.egress.iter_mut())
                    .flat_map(|r| r.peers.iter_mut().flatten().chain(r.union.iter_mut())),
            );
            for set in sets {
                while set.len() <= i {
                    set.insert_at(set.len(), false);
                }
            }
            p.subject.set(i, p.policy.subject.matches(pod.namespace_labels, pod.labels, pod.host_network));
            for rule in p.ingress.iter_mut().chain(p.egress.iter_mut()) {
                let mut any = [false, false];
                for (pe, peer) in rule.rule.peers.iter().enumerate() {
                    for (s, f) in [IpFamily::V4, IpFamily::V6].into_iter().enumerate() {
                        let hit = peer.matches(rule.rule.action, &pod.as_peer(f), nodes);
                        rule.peers[pe][s].set(i, hit);
                        any[s] |= hit;
                    }
                }
                rule.union[0].set(i, any[0]);
                rule.union[1].set(i, any[1]);
            }
        }
    }

    /// Whether a peer of a rule matches the other end.
    fn peer_hit(&self, rule: &IndexedTierRule, peer: usize, other: Other, family: IpFamily) -> bool {
        match other {
            Other::Pod(q) => rule.peers[peer][slot(family)].contains(q),
            Other::Ip(ip) => rule.rule.peers[peer].matches(rule.rule.action, &PeerEnd::Host(Some(ip)), &self.nodes),
        }
    }

    /// The first matching rule of `tier` for `pod` in `direction` (named ports resolve on `dest_ports`, `None`
    /// when the destination is not a pod or uses the host network).
    #[expect(clippy::too_many_arguments, reason = "one side of one connection")]
    pub fn walk(
        &self,
        tier: Tier,
        pod: usize,
        direction: Direction,
        other: Other,
        protocol: Protocol,
        port: u16,
        family: IpFamily,
        dest_ports: Option<&[ContainerPort]>,
    ) -> Option<Hit> {
        for (pi, p) in self.policies.iter().enumerate() {
            if p.policy.tier != tier || !p.subject.contains(pod) {
                continue;
            }
            for (ri, rule) in p.rules(direction).iter().enumerate() {
                let Some(port_at) = rule.rule.port_match(protocol, port, dest_ports) else { continue };
                if let Some(peer) = (0..rule.peers.len()).find(|&i| self.peer_hit(rule, i, other, family)) {
                    return Some(Hit { policy: pi, rule: ri, peer, port: port_at, action: rule.rule.action });
                }
            }
        }
        None
    }

    /// Ids of the policies whose subject holds `pod` and that have rules for `direction`, in walk order.
    pub fn selecting(&self, pod: usize, direction: Direction) -> Vec<usize> {
        (0..self.policies.len())
            .filter(|&i| self.policies[i].subject.contains(pod) && !self.policies[i].rules(direction).is_empty())
            .collect()
    }

    /// For the pod `rep` (one of its class) in `direction`, over all `n` other pods: those the tier accepts and
    /// those it denies (the rest pass on). `port_ok(rule)` gives, per rule, which others its protocols admit.
    pub fn rows(
        &self,
        tier: Tier,
        rep: usize,
        direction: Direction,
        family: IpFamily,
        n: usize,
        port_ok: &mut dyn FnMut(&IndexedTierRule) -> Option<BitSet>,
    ) -> (BitSet, BitSet) {
        let mut accept = BitSet::new(n);
        let mut deny = BitSet::new(n);
        let mut undecided = BitSet::full(n);
        for p in &self.policies {
            if p.policy.tier != tier || !p.subject.contains(rep) {
                continue;
            }
            for rule in p.rules(direction) {
                let mut m = rule.union[slot(family)].clone();
                if let Some(ports) = port_ok(rule) {
                    m.intersect_with(&ports);
                }
                m.intersect_with(&undecided);
                match rule.rule.action {
                    Action::Accept => accept.union_with(&m),
                    Action::Deny => deny.union_with(&m),
                    Action::Pass => {}
                }
                undecided.subtract(&m);
            }
        }
        (accept, deny)
    }
}
