//! The fast evaluator: policies lowered once, pods grouped into classes, selectors resolved to pod sets.
//!
//! A class is the set of pods with the same namespace, labels, container ports and host-network flag: every
//! policy question except ipBlock membership has the same answer for all of them, so selection and rule rows
//! are computed per class and shared.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::bitset::BitSet;
use crate::cidr::IpBlock;
use crate::cnp::lower::NodeFacts;
use crate::cnp::tiers::{Hit, Other, TierPod, Tiers};
use crate::cnp::{Action, ClusterKind, ClusterObject, Tier};
use crate::model::{Cluster, ContainerPort, IpFamily, Labels, ObjectKey, PodFacts, Protocol};
use crate::policy::{Direction, NamespaceScope, Peer, Policy, Rule};
use crate::verdict::{Connection, Endpoint, NearMiss, RuleMatch, Side, Stage, TierPolicyRef, TierRuleMatch, Verdict};

pub type PodId = usize;

/// Why a connection cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    #[error("pod {0} not found")]
    NoSuchPod(ObjectKey),
    #[error("pod {0} has terminated (phase Succeeded or Failed); it takes part in no connection")]
    Terminated(ObjectKey),
    #[error("the endpoints are of different address families ({0} and {1})")]
    MixedFamilies(IpAddr, IpAddr),
}

#[derive(Debug, Clone)]
pub struct PodEntry {
    pub key: ObjectKey,
    pub facts: PodFacts,
    class: usize,
}

/// The class of a free pod slot (no pod holds its id).
const HOLE: usize = usize::MAX;

#[derive(Debug, Clone)]
struct Class {
    namespace: String,
    labels: Labels,
    ports: Vec<ContainerPort>,
    host_network: bool,
    /// Policies selecting these pods, per direction, that isolate that direction.
    ingress: Vec<usize>,
    egress: Vec<usize>,
}

/// Pods per address family, each distinct set stored once: a pod selector matches the same pods in both
/// families, an ipBlock only pods of its own family. (Two full sets per peer and per rule were most of the
/// index's memory: 12.5 KB each at 100,000 pods.)
#[derive(Debug, Clone)]
enum FamilyPods {
    /// The same pods in both families.
    Both(BitSet),
    /// These pods in family slot `.0`, none in the other.
    One(usize, BitSet),
    /// Different pods per family.
    Each([BitSet; 2]),
    /// No pod in either family.
    Neither,
}

/// The set [`FamilyPods::get`] answers for a family without pods.
static NO_PODS: BitSet = BitSet::empty();

impl FamilyPods {
    /// Keeps of `sets` (one per family) only the families `has` says may hold pods.
    fn from_sets(has: [bool; 2], sets: [BitSet; 2]) -> Self {
        let [v4, v6] = sets;
        match has {
            [true, true] => FamilyPods::Each([v4, v6]),
            [true, false] => FamilyPods::One(0, v4),
            [false, true] => FamilyPods::One(1, v6),
            [false, false] => FamilyPods::Neither,
        }
    }

    /// Which families may hold pods.
    fn families(&self) -> [bool; 2] {
        match self {
            FamilyPods::Both(_) | FamilyPods::Each(_) => [true, true],
            FamilyPods::One(slot, _) => [*slot == 0, *slot == 1],
            FamilyPods::Neither => [false, false],
        }
    }

    fn get(&self, slot: usize) -> &BitSet {
        match self {
            FamilyPods::Both(s) => s,
            FamilyPods::One(at, s) if *at == slot => s,
            FamilyPods::Each(sets) => &sets[slot],
            FamilyPods::One(..) | FamilyPods::Neither => &NO_PODS,
        }
    }

    /// Sets pod `id` per family; `member` must be false for a family this value keeps no set for (and the
    /// same for both in `Both`), as the peer's kind guarantees.
    fn set(&mut self, id: PodId, member: [bool; 2]) {
        match self {
            FamilyPods::Both(s) => {
                debug_assert_eq!(member[0], member[1]);
                s.set(id, member[0]);
            }
            FamilyPods::One(slot, s) => {
                debug_assert!(!member[1 - *slot]);
                s.set(id, member[*slot]);
            }
            FamilyPods::Each(sets) => {
                sets[0].set(id, member[0]);
                sets[1].set(id, member[1]);
            }
            FamilyPods::Neither => debug_assert_eq!(member, [false, false]),
        }
    }

    /// The sets stored.
    fn sets_mut(&mut self) -> std::slice::IterMut<'_, BitSet> {
        match self {
            FamilyPods::Both(s) | FamilyPods::One(_, s) => std::slice::from_mut(s).iter_mut(),
            FamilyPods::Each(sets) => sets.iter_mut(),
            FamilyPods::Neither => [].iter_mut(),
        }
    }
}

/// A peer with the pods it matches, per address family.
#[derive(Debug, Clone)]
struct IndexedPeer {
    peer: Peer,
    pods: FamilyPods,
}

#[derive(Debug, Clone)]
struct IndexedRule {
    rule: Rule,
    peers: Vec<IndexedPeer>,
    /// Union of the peers' pods per family when the rule lists more than one peer (with one, it is that
    /// peer's; see [`IndexedRule::union`]).
    union: Option<FamilyPods>,
}

impl IndexedRule {
    /// The pods any peer of the rule matches, for family `slot`; `None` when the rule lists no peers
    /// (everything).
    fn union(&self, slot: usize) -> Option<&BitSet> {
        self.rule.peers.as_ref()?;
        Some(match (&self.union, self.peers.as_slice()) {
            (Some(u), _) => u.get(slot),
            (None, [only]) => only.pods.get(slot),
            (None, _) => &NO_PODS,
        })
    }
}

#[derive(Debug, Clone)]
struct IndexedPolicy {
    policy: Policy,
    ingress: Vec<IndexedRule>,
    egress: Vec<IndexedRule>,
}

impl IndexedPolicy {
    fn rules(&self, d: Direction) -> &[IndexedRule] {
        match d {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }
}

/// The connectivity of every ordered pair of pods for one protocol, port and family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matrix {
    /// `namespace/name` of each pod, rows and columns in this order.
    pub pods: Vec<ObjectKey>,
    /// `allowed[from]` holds the destinations `from` may connect to.
    pub allowed: Vec<BitSet>,
}

impl Matrix {
    pub fn get(&self, from: usize, to: usize) -> bool {
        self.allowed[from].contains(to)
    }

    pub fn allowed_pairs(&self) -> usize {
        self.allowed.iter().map(BitSet::count).sum()
    }
}

/// Evaluates connections of one cluster state. Built from a [`Cluster`], then changed in place.
///
/// A pod keeps its id (its slot in `pods`) while it exists: a new pod takes a free slot or a new one at the
/// end, a deleted pod frees its slot, so a change never renumbers the others or shifts the sets of pods
/// (that made adding a pod cost the size of the cluster). A built index has its pods in key order with no
/// free slot; the matrix, which answers in key order, uses a rebuilt copy otherwise.
#[derive(Debug, Clone)]
pub struct Index {
    /// Pod slots by id; a free slot has class [`HOLE`].
    pods: Vec<PodEntry>,
    free: Vec<PodId>,
    by_key: std::collections::BTreeMap<ObjectKey, PodId>,
    terminated: std::collections::BTreeSet<ObjectKey>,
    classes: Vec<Class>,
    /// The pods of each class.
    members: Vec<Vec<PodId>>,
    policies: Vec<IndexedPolicy>,
    namespaces: std::collections::BTreeMap<String, Labels>,
    class_of: HashMap<ClassKey, usize>,
    /// Pod ids are `0..n` in key order (as built, or pods added after every other since).
    ordered: bool,
    /// The Admin and Baseline tiers (ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy)
    /// and the Nodes their `nodes` peer reads, resolved over the pods.
    tiers: Tiers,
}

/// What makes two pods answer every policy question alike (but ipBlocks).
type ClassKey = (String, Labels, Vec<ContainerPort>, bool);

fn family_slot(f: IpFamily) -> usize {
    match f {
        IpFamily::V4 => 0,
        IpFamily::V6 => 1,
    }
}

impl Index {
    pub fn build(cluster: &Cluster) -> Self {
        let mut index = Self::build_parts(
            cluster.namespaces(),
            cluster.pods().map(|(k, p)| (k.clone(), PodFacts::of(p))),
            cluster.policies().map(|(_, np)| np),
        );
        index.tiers = Tiers::new(cluster.tier_policies(), cluster.nodes().map(NodeFacts::of).collect());
        index.refresh_tiers();
        index
    }

    /// Builds from the parts of a cluster: every namespace with its labels (implicit ones included), the
    /// pods' facts in key order, the policies in key order.
    pub fn build_parts<'a>(
        namespaces: std::collections::BTreeMap<String, Labels>,
        cluster_pods: impl IntoIterator<Item = (ObjectKey, PodFacts)>,
        cluster_policies: impl IntoIterator<Item = &'a k8s_openapi::api::networking::v1::NetworkPolicy>,
    ) -> Self {
        Self::build_lowered(namespaces, cluster_pods, cluster_policies.into_iter().map(Policy::lower))
    }

    /// Builds from namespaces, pods in key order and lowered policies in key order.
    fn build_lowered(
        namespaces: std::collections::BTreeMap<String, Labels>,
        cluster_pods: impl IntoIterator<Item = (ObjectKey, PodFacts)>,
        cluster_policies: impl IntoIterator<Item = Policy>,
    ) -> Self {
        let mut pods = Vec::new();
        let mut terminated = std::collections::BTreeSet::new();
        let mut classes: Vec<Class> = Vec::new();
        let mut class_of: HashMap<ClassKey, usize> = HashMap::new();
        for (key, facts) in cluster_pods {
            let key = &key;
            if facts.terminated {
                terminated.insert(key.clone());
                continue;
            }
            let ck = (key.namespace.clone(), facts.labels.clone(), facts.ports.clone(), facts.host_network);
            let class = *class_of.entry(ck).or_insert_with(|| {
                classes.push(Class {
                    namespace: key.namespace.clone(),
                    labels: facts.labels.clone(),
                    ports: facts.ports.clone(),
                    host_network: facts.host_network,
                    ingress: Vec::new(),
                    egress: Vec::new(),
                });
                classes.len() - 1
            });
            pods.push(PodEntry { key: key.clone(), facts, class });
        }
        let n = pods.len();
        let by_key = pods.iter().enumerate().map(|(i, p)| (p.key.clone(), i)).collect();
        let mut members: Vec<Vec<PodId>> = vec![Vec::new(); classes.len()];
        for (i, p) in pods.iter().enumerate() {
            members[p.class].push(i);
        }
        // Pod addresses per family, sorted, for ipBlock peers.
        let mut by_addr: [Vec<(u128, usize)>; 2] = [Vec::new(), Vec::new()];
        for (i, p) in pods.iter().enumerate() {
            for ip in &p.facts.ips {
                by_addr[family_slot(IpFamily::of(ip))].push((crate::cidr::ip_to_u128(*ip), i));
            }
        }
        by_addr[0].sort_unstable();
        by_addr[1].sort_unstable();
        // Classes by namespace: selection and most peers range over one namespace, or a few.
        let mut ns_classes: HashMap<&str, Vec<usize>> = HashMap::new();
        for (ci, c) in classes.iter().enumerate() {
            if !c.host_network {
                ns_classes.entry(c.namespace.as_str()).or_default().push(ci);
            }
        }
        let no_classes: Vec<usize> = Vec::new();

        // Selector peers are resolved per class; cache them since many policies repeat the same peer.
        let mut peer_cache: HashMap<Peer, FamilyPods> = HashMap::new();
        let mut resolve_peer = |peer: &Peer| -> FamilyPods {
            if let Some(hit) = peer_cache.get(peer) {
                return hit.clone();
            }
            let sets = match peer {
                Peer::Pods { namespaces: scope, pods: sel } => {
                    let mut s = BitSet::new(n);
                    let in_scope: Vec<&Vec<usize>> = match scope {
                        NamespaceScope::Own(ns) => vec![ns_classes.get(ns.as_str()).unwrap_or(&no_classes)],
                        NamespaceScope::Selector(nsel) => namespaces
                            .iter()
                            .filter(|(_, labels)| nsel.matches(labels))
                            .map(|(ns, _)| ns_classes.get(ns.as_str()).unwrap_or(&no_classes))
                            .collect(),
                    };
                    for &ci in in_scope.into_iter().flatten() {
                        if sel.matches(&classes[ci].labels) {
                            for &p in &members[ci] {
                                s.insert(p);
                            }
                        }
                    }
                    FamilyPods::Both(s)
                }
                Peer::IpBlock(block) => {
                    // Pod addresses sorted once: each range of the block is a binary search away.
                    let slot = family_slot(if block.cidr.addr().is_ipv4() { IpFamily::V4 } else { IpFamily::V6 });
                    let mut set = BitSet::new(n);
                    for (lo, hi) in block.ranges() {
                        let (lo, hi) = (crate::cidr::ip_to_u128(lo), crate::cidr::ip_to_u128(hi));
                        let list = &by_addr[slot];
                        let start = list.partition_point(|(a, _)| *a < lo);
                        for &(a, i) in &list[start..] {
                            if a > hi {
                                break;
                            }
                            set.insert(i);
                        }
                    }
                    FamilyPods::One(slot, set)
                }
                Peer::Invalid => FamilyPods::Neither,
            };
            peer_cache.insert(peer.clone(), sets.clone());
            sets
        };

        let mut policies = Vec::new();
        for policy in cluster_policies {
            let ingress = index_rules(policy.ingress.as_deref(), n, &mut resolve_peer);
            let egress = index_rules(policy.egress.as_deref(), n, &mut resolve_peer);
            policies.push(IndexedPolicy { policy, ingress, egress });
        }
        let ns_classes: HashMap<String, Vec<usize>> = ns_classes.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        for (pi, p) in policies.iter().enumerate() {
            for &ci in ns_classes.get(&p.policy.key.namespace).unwrap_or(&no_classes) {
                let c = &mut classes[ci];
                if !p.policy.pod_selector.matches(&c.labels) {
                    continue;
                }
                if p.policy.ingress.is_some() {
                    c.ingress.push(pi);
                }
                if p.policy.egress.is_some() {
                    c.egress.push(pi);
                }
            }
        }
        Index {
            pods,
            free: Vec::new(),
            by_key,
            terminated,
            classes,
            members,
            policies,
            namespaces,
            class_of,
            ordered: true,
            tiers: Tiers::default(),
        }
    }

    /// The same cluster built afresh: pod ids `0..n` in key order.
    fn rebuilt(&self) -> Index {
        let live = self.by_key.iter().map(|(k, &id)| (k.clone(), self.pods[id].facts.clone()));
        let gone = self.terminated.iter().map(|k| (k.clone(), PodFacts { terminated: true, ..PodFacts::default() }));
        let mut pods: Vec<(ObjectKey, PodFacts)> = live.chain(gone).collect();
        pods.sort_by(|a, b| a.0.cmp(&b.0));
        let policies = self.policies.iter().map(|p| p.policy.clone());
        let mut index = Index::build_lowered(self.namespaces.clone(), pods, policies);
        index.tiers = self.tiers.clone();
        index.refresh_tiers();
        index
    }

    /// The pods, in key order.
    pub fn pods(&self) -> impl ExactSizeIterator<Item = &PodEntry> {
        self.by_key.values().map(|&id| &self.pods[id])
    }

    /// The pods with their ids, in key order.
    pub fn pods_with_ids(&self) -> impl ExactSizeIterator<Item = (PodId, &PodEntry)> {
        self.by_key.values().map(|&id| (id, &self.pods[id]))
    }

    /// The pod with this id (which must be a pod's: ids come from [`Index::pod_id`] or a peer's set).
    pub fn pod(&self, id: PodId) -> &PodEntry {
        &self.pods[id]
    }

    /// One more than the largest pod id: the length of the sets of pods.
    pub fn pod_slots(&self) -> usize {
        self.pods.len()
    }

    pub fn pod_id(&self, key: &ObjectKey) -> Option<PodId> {
        self.by_key.get(key).copied()
    }

    /// Changes one pod's labels in place, as if the index were rebuilt: its class (and so the policies
    /// selecting it) and its membership in every selector peer. Returns `false`, changing nothing, when the
    /// pod is not in the index (a rebuild is needed).
    pub fn relabel_pod(&mut self, key: &ObjectKey, labels: &Labels) -> bool {
        let Some(&id) = self.by_key.get(key) else { return false };
        let before = self.pods[id].class;
        let old = &self.classes[before];
        let (namespace, ports, host_network) = (old.namespace.clone(), old.ports.clone(), old.host_network);
        let class = self.class_for(&namespace, labels, &ports, host_network);
        self.leave_class(id);
        self.pods[id].class = class;
        self.members[class].push(id);
        self.pods[id].facts.labels = labels.clone();
        self.place(id);
        self.refresh_tiers_for(id);
        true
    }

    /// Takes pod `id` out of its class's members.
    fn leave_class(&mut self, id: PodId) {
        let members = &mut self.members[self.pods[id].class];
        if let Some(at) = members.iter().position(|&m| m == id) {
            members.swap_remove(at);
        }
    }

    /// Sets pod `id`'s bit in every peer and rule union from its class and addresses. A selector peer holds
    /// every pod of a class or none, so when the class has another pod its bit is copied (one bit test per
    /// peer); a new class asks each selector once.
    fn place(&mut self, id: PodId) {
        let class = self.pods[id].class;
        let rep = self.members[class].iter().copied().find(|&m| m != id);
        let (c, ips, namespaces) = (&self.classes[class], &self.pods[id].facts.ips, &self.namespaces);
        for p in &mut self.policies {
            for rule in p.ingress.iter_mut().chain(p.egress.iter_mut()) {
                let mut any = [false, false];
                for peer in &mut rule.peers {
                    let m = match &peer.peer {
                        Peer::Pods { .. } => {
                            let m = match rep {
                                Some(r) => peer.pods.get(0).contains(r),
                                None => {
                                    peer_member(&peer.peer, &c.namespace, &c.labels, c.host_network, &[], namespaces, 0)
                                }
                            };
                            [m, m]
                        }
                        other => [0, 1].map(|slot| {
                            peer_member(other, &c.namespace, &c.labels, c.host_network, ips, namespaces, slot)
                        }),
                    };
                    peer.pods.set(id, m);
                    any[0] |= m[0];
                    any[1] |= m[1];
                }
                if let Some(union) = &mut rule.union {
                    union.set(id, any);
                }
            }
        }
    }

    /// All policies, lowered, in namespace/name order; a policy's position is its id below.
    pub fn policies(&self) -> impl ExactSizeIterator<Item = &Policy> {
        self.policies.iter().map(|p| &p.policy)
    }

    /// The id of the policy with this key.
    pub fn policy_id(&self, key: &ObjectKey) -> Option<usize> {
        self.policies.binary_search_by(|p| p.policy.key.cmp(key)).ok()
    }

    /// The policy with this id.
    pub fn policy_at(&self, id: usize) -> Option<&Policy> {
        self.policies.get(id).map(|p| &p.policy)
    }

    /// Ids of the policies that select `pod` and isolate it for `direction`.
    pub fn selecting_ids(&self, pod: PodId, direction: Direction) -> &[usize] {
        let c = &self.classes[self.pods[pod].class];
        match direction {
            Direction::Ingress => &c.ingress,
            Direction::Egress => &c.egress,
        }
    }

    /// The pods that policy `policy` selects and isolates for `direction` (a pass over the classes).
    pub fn selected_pods(&self, policy: usize, direction: Direction) -> impl Iterator<Item = PodId> + '_ {
        self.classes
            .iter()
            .zip(&self.members)
            .filter(move |(c, _)| {
                let ids = match direction {
                    Direction::Ingress => &c.ingress,
                    Direction::Egress => &c.egress,
                };
                ids.binary_search(&policy).is_ok()
            })
            .flat_map(|(_, m)| m.iter().copied())
    }

    /// The pods (by address family) that peer `peer` of rule `rule` of policy `policy` matches.
    pub fn peer_pods(
        &self,
        policy: usize,
        direction: Direction,
        rule: usize,
        peer: usize,
        family: IpFamily,
    ) -> &BitSet {
        self.policies[policy].rules(direction)[rule].peers[peer].pods.get(family_slot(family))
    }

    /// The container ports of a pod.
    pub fn pod_ports(&self, pod: PodId) -> &[ContainerPort] {
        &self.classes[self.pods[pod].class].ports
    }

    /// Why a peer of a rule does not match an endpoint, in words (`None` if it does match).
    pub fn peer_mismatch(&self, peer: &Peer, other: &Endpoint, family: IpFamily) -> Option<String> {
        let fmt_labels = |l: &Labels| {
            if l.is_empty() {
                "no labels".to_owned()
            } else {
                l.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
            }
        };
        match (peer, other) {
            (Peer::Invalid, _) => Some("the ipBlock cannot be read".into()),
            (Peer::IpBlock(b), Endpoint::Ip(ip)) => (!b.contains(ip)).then(|| ipblock_miss(b, ip)),
            (Peer::IpBlock(b), Endpoint::Pod(k)) => {
                let pod = self.pod_id(k).map(|i| &self.pods[i])?;
                match pod.facts.ip(family) {
                    None => Some(format!("{k} has no {family} address")),
                    Some(ip) => (!b.contains(&ip)).then(|| ipblock_miss(b, &ip)),
                }
            }
            (Peer::Pods { .. }, Endpoint::Ip(ip)) => Some(format!("{ip} is not a pod; only ipBlocks match it")),
            (Peer::Pods { namespaces, pods }, Endpoint::Pod(k)) => {
                let pod = self.pod_id(k).map(|i| &self.pods[i])?;
                if self.classes[pod.class].host_network {
                    return Some(format!("{k} uses the host network; selectors do not match it"));
                }
                match namespaces {
                    NamespaceScope::Own(ns) if *ns != k.namespace => {
                        return Some(format!(
                            "{k} is in namespace {}, and this peer only selects pods of {ns}",
                            k.namespace
                        ));
                    }
                    NamespaceScope::Selector(sel) => {
                        let empty = Labels::new();
                        let labels = self.namespaces.get(&k.namespace).unwrap_or(&empty);
                        if !sel.matches(labels) {
                            return Some(format!("namespace {} has {}", k.namespace, fmt_labels(labels)));
                        }
                    }
                    NamespaceScope::Own(_) => {}
                }
                (!pods.matches(&pod.facts.labels)).then(|| format!("{k} has {}", fmt_labels(&pod.facts.labels)))
            }
        }
    }

    /// The lowered policy with this key.
    pub fn policy(&self, key: &ObjectKey) -> Option<&Policy> {
        self.policy_id(key).and_then(|i| self.policy_at(i))
    }

    fn resolve(&self, e: &Endpoint) -> Result<End, ConnectionError> {
        match e {
            Endpoint::Ip(ip) => Ok(End::Ip(*ip)),
            Endpoint::Pod(k) => match self.by_key.get(k) {
                Some(&id) => Ok(End::Pod(id)),
                None if self.terminated.contains(k) => Err(ConnectionError::Terminated(k.clone())),
                None => Err(ConnectionError::NoSuchPod(k.clone())),
            },
        }
    }

    /// The verdict for one connection, with its explanation.
    pub fn decide(&self, conn: &Connection) -> Result<Verdict, ConnectionError> {
        let from = self.resolve(&conn.from)?;
        let to = self.resolve(&conn.to)?;
        if let (End::Ip(a), End::Ip(b)) = (from, to)
            && a.is_ipv4() != b.is_ipv4()
        {
            return Err(ConnectionError::MixedFamilies(a, b));
        }
        let self_connection = matches!((from, to), (End::Pod(a), End::Pod(b)) if a == b);
        let dest_ports = match to {
            End::Pod(d) => Some(self.classes[self.pods[d].class].ports.as_slice()),
            End::Ip(_) => None,
        };
        let mut egress = match from {
            End::Pod(s) => Some(self.side(s, Direction::Egress, to, conn, dest_ports)),
            End::Ip(_) => None,
        };
        let mut ingress = match to {
            End::Pod(d) => Some(self.side(d, Direction::Ingress, from, conn, dest_ports)),
            End::Ip(_) => None,
        };
        if !self.tiers.is_empty() && !self_connection {
            // Named ports of the tiers resolve on a destination pod that is not host-network (that one is a host).
            let tier_ports = match to {
                End::Pod(d) if !self.classes[self.pods[d].class].host_network => dest_ports,
                _ => None,
            };
            if let (End::Pod(s), Some(side)) = (from, egress.as_mut()) {
                self.tier_side(side, s, Direction::Egress, to, conn, tier_ports);
            }
            if let (End::Pod(d), Some(side)) = (to, ingress.as_mut()) {
                self.tier_side(side, d, Direction::Ingress, from, conn, tier_ports);
            }
        }
        let allowed = self_connection
            || (egress.as_ref().is_none_or(|s| s.allowed) && ingress.as_ref().is_none_or(|s| s.allowed));
        Ok(Verdict { connection: conn.clone(), allowed, self_connection, egress, ingress })
    }

    /// Completes a NetworkPolicy side with the tiers: the Admin tier's first match, then NetworkPolicy if it
    /// isolates the direction, then the Baseline tier's first match, then allow.
    fn tier_side(
        &self,
        side: &mut Side,
        pod: PodId,
        direction: Direction,
        other: End,
        conn: &Connection,
        dest_ports: Option<&[ContainerPort]>,
    ) {
        if self.classes[self.pods[pod].class].host_network {
            return;
        }
        let selecting = self.tiers.selecting(pod, direction);
        if selecting.is_empty() {
            return;
        }
        side.tier_policies = selecting.iter().map(|&i| self.tier_ref(i)).collect();
        let other = match other {
            End::Pod(q) => Other::Pod(q),
            End::Ip(ip) => Other::Ip(ip),
        };
        let walk =
            |tier| self.tiers.walk(tier, pod, direction, other, conn.protocol, conn.port, conn.family, dest_ports);
        let admin = walk(Tier::Admin);
        side.admin = admin.map(|h| self.tier_match(h, pod, direction));
        let (allowed, stage) = match admin.map(|h| h.action) {
            Some(Action::Accept) => (true, Stage::Admin),
            Some(Action::Deny) => (false, Stage::Admin),
            _ if side.isolated => (side.allowed, Stage::NetworkPolicy),
            _ => {
                let baseline = walk(Tier::Baseline);
                side.baseline = baseline.map(|h| self.tier_match(h, pod, direction));
                match baseline.map(|h| h.action) {
                    Some(Action::Accept) => (true, Stage::Baseline),
                    Some(Action::Deny) => (false, Stage::Baseline),
                    _ => (true, Stage::Default),
                }
            }
        };
        if matches!(stage, Stage::Admin | Stage::Baseline) {
            side.admitted_by = None;
            side.near_misses.clear();
        }
        side.allowed = allowed;
        side.decided_by = Some(stage);
    }

    fn tier_ref(&self, i: usize) -> TierPolicyRef {
        let p = &self.tiers.policies[i].policy;
        TierPolicyRef { kind: p.kind, name: p.name.clone(), tier: p.tier, priority: p.priority }
    }

    fn tier_match(&self, h: Hit, pod: PodId, direction: Direction) -> TierRuleMatch {
        let p = &self.tiers.policies[h.policy];
        let tied_with = self
            .tiers
            .selecting(pod, direction)
            .into_iter()
            .filter(|&i| i != h.policy)
            .map(|i| &self.tiers.policies[i].policy)
            .filter(|q| q.tier == p.policy.tier && q.priority == p.policy.priority)
            .map(|q| format!("{} {}", q.kind, q.name))
            .collect();
        TierRuleMatch {
            policy: self.tier_ref(h.policy),
            direction,
            rule: h.rule,
            rule_name: p.rules(direction)[h.rule].rule.name.clone(),
            action: h.action,
            peer: h.peer,
            protocol: h.port,
            tied_with,
        }
    }

    /// The tiers, resolved (for explanations and the compiler).
    pub fn tiers(&self) -> &Tiers {
        &self.tiers
    }

    /// Re-derives what pod `id` is in for the tiers, as [`Index::refresh_tiers`] would.
    fn refresh_tiers_for(&mut self, id: PodId) {
        if self.tiers.is_empty() {
            self.tiers.policies.clear();
            return;
        }
        let empty = Labels::new();
        let p = &self.pods[id];
        let pod = if p.class == HOLE {
            TierPod { namespace_labels: &empty, labels: &empty, host_network: true, ips: &[] }
        } else {
            let c = &self.classes[p.class];
            TierPod {
                namespace_labels: self.namespaces.get(&c.namespace).unwrap_or(&empty),
                labels: &c.labels,
                host_network: c.host_network,
                ips: &p.facts.ips,
            }
        };
        let mut tiers = std::mem::take(&mut self.tiers);
        tiers.resolve_pod(id, &pod);
        self.tiers = tiers;
    }

    /// Re-derives the tiers over the current pods and namespaces (nothing to do without tier policies).
    fn refresh_tiers(&mut self) {
        if self.tiers.is_empty() {
            self.tiers.policies.clear();
            return;
        }
        let empty = Labels::new();
        // A free slot is a pod no tier policy can select or match.
        let hole = TierPod { namespace_labels: &empty, labels: &empty, host_network: true, ips: &[] };
        let pods: Vec<TierPod<'_>> = self
            .pods
            .iter()
            .map(|p| {
                if p.class == HOLE {
                    return hole;
                }
                let c = &self.classes[p.class];
                TierPod {
                    namespace_labels: self.namespaces.get(&c.namespace).unwrap_or(&empty),
                    labels: &c.labels,
                    host_network: c.host_network,
                    ips: &p.facts.ips,
                }
            })
            .collect();
        let mut tiers = std::mem::take(&mut self.tiers);
        tiers.resolve(&pods);
        self.tiers = tiers;
    }

    /// Replaces every tier policy and Node at once (one resolution).
    pub fn set_tiers(&mut self, policies: Vec<crate::cnp::TierPolicy>, nodes: Vec<NodeFacts>) {
        self.tiers = Tiers::new(policies, nodes);
        self.refresh_tiers();
    }

    /// Adds or replaces a ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy or Node, as a
    /// rebuild would.
    pub fn apply_cluster_object(&mut self, o: &ClusterObject) {
        self.tiers.apply(o);
        self.refresh_tiers();
    }

    /// Removes a cluster-scoped object as a rebuild would. Returns whether it was there.
    pub fn delete_cluster_object(&mut self, kind: ClusterKind, name: &str) -> bool {
        let was = self.tiers.delete(kind, name);
        self.refresh_tiers();
        was
    }

    fn side(
        &self,
        pod: PodId,
        direction: Direction,
        other: End,
        conn: &Connection,
        dest_ports: Option<&[ContainerPort]>,
    ) -> Side {
        let entry = &self.pods[pod];
        let class = &self.classes[entry.class];
        let ids = match direction {
            Direction::Ingress => &class.ingress,
            Direction::Egress => &class.egress,
        };
        let mut side = Side {
            pod: entry.key.clone(),
            direction,
            isolated: !ids.is_empty(),
            selected_by: ids.iter().map(|&i| self.policies[i].policy.key.clone()).collect(),
            allowed: ids.is_empty(),
            admitted_by: None,
            near_misses: Vec::new(),
            exempt: class
                .host_network
                .then(|| "the pod uses the host network; NetworkPolicy does not apply to it".into()),
            tier_policies: Vec::new(),
            admin: None,
            baseline: None,
            decided_by: None,
        };
        let slot = family_slot(conn.family);
        for &pi in ids {
            let p = &self.policies[pi];
            for (ri, rule) in p.rules(direction).iter().enumerate() {
                let peer = match &rule.rule.peers {
                    None => Some(None),
                    Some(_) => rule
                        .peers
                        .iter()
                        .position(|peer| match other {
                            End::Pod(q) => peer.pods.get(slot).contains(q),
                            End::Ip(ip) => matches!(&peer.peer, Peer::IpBlock(b) if IpBlock::contains(b, &ip)),
                        })
                        .map(Some),
                };
                let port = match &rule.rule.ports {
                    None => Some(None),
                    Some(entries) => {
                        entries.iter().position(|e| e.matches(conn.protocol, conn.port, dest_ports)).map(Some)
                    }
                };
                let at = |peer: Option<Option<usize>>, port: Option<Option<usize>>| RuleMatch {
                    policy: p.policy.key.clone(),
                    direction,
                    rule: ri,
                    peer: peer.flatten(),
                    port: port.flatten(),
                };
                match (peer, port) {
                    (Some(_), Some(_)) => {
                        side.allowed = true;
                        side.admitted_by = Some(at(peer, port));
                        side.near_misses.clear();
                        return side;
                    }
                    (Some(_), None) => side.near_misses.push(NearMiss::PortDidNotMatch { rule: at(peer, None) }),
                    (None, Some(_)) => side.near_misses.push(NearMiss::PeerDidNotMatch { rule: at(None, port) }),
                    (None, None) => {}
                }
            }
        }
        side
    }

    /// Every ordered pair of pods for one protocol and port; pods are in namespace/name order.
    ///
    /// Linear in the pairs: each distinct row is computed once (classes selected by the same policies share
    /// it), which destinations a list of ports admits is decided per class once per list, and the rest is one
    /// blockwise transpose and one AND per word of the result.
    pub fn matrix(&self, protocol: Protocol, port: u16, family: IpFamily) -> Matrix {
        if !self.ordered {
            // Rows and columns are in key order: pods added or removed in place have ids out of it.
            return self.rebuilt().matrix(protocol, port, family);
        }
        let n = self.pods.len();
        let slot = family_slot(family);
        let members = self.class_members();
        // Ingress: per destination class, the sources admitted (None = not isolated). The row depends only on
        // the policies selecting the class and, through named ports, on its container ports.
        let mut ingress = SharedRows::default();
        let mut seen: HashMap<(&[usize], &[ContainerPort]), usize> = HashMap::new();
        for c in &self.classes {
            let id = *seen.entry((&c.ingress, &c.ports)).or_insert_with(|| {
                ingress.rows.push(self.ingress_row(c, protocol, port, slot));
                ingress.rows.len() - 1
            });
            ingress.of_class.push(id);
        }
        // Egress: the row depends only on the policies selecting the source class. Which destination pods an
        // egress rule's ports admit (named ports differ per destination) is shared by every rule with the
        // same ports; `None`: a numeric entry matches, so every destination.
        let mut dest_ports: HashMap<&[crate::policy::PortEntry], Option<BitSet>> = HashMap::new();
        let mut egress = SharedRows::default();
        let mut seen: HashMap<&[usize], usize> = HashMap::new();
        for c in &self.classes {
            if let Some(&id) = seen.get(c.egress.as_slice()) {
                egress.of_class.push(id);
                continue;
            }
            let row = (!c.egress.is_empty()).then(|| {
                let mut row = BitSet::new(n);
                for &pi in &c.egress {
                    for rule in &self.policies[pi].egress {
                        let ports = rule.rule.ports.as_deref().and_then(|entries| {
                            dest_ports
                                .entry(entries)
                                .or_insert_with(|| {
                                    if entries.iter().any(|e| e.matches(protocol, port, Some(&[]))) {
                                        return None;
                                    }
                                    Some(self.pods_where(&members, |dc| {
                                        entries.iter().any(|e| e.matches(protocol, port, Some(&dc.ports)))
                                    }))
                                })
                                .as_ref()
                        });
                        match (rule.union(slot), ports) {
                            (None, None) => return BitSet::full(n),
                            (None, Some(pset)) => row.union_with(pset),
                            (Some(u), None) => row.union_with(u),
                            (Some(u), Some(pset)) => row.union_with_intersection(u, pset),
                        }
                    }
                }
                row
            });
            egress.rows.push(row);
            let id = egress.rows.len() - 1;
            seen.insert(&c.egress, id);
            egress.of_class.push(id);
        }
        let (ingress, egress) = if self.tiers.is_empty() {
            (ingress, egress)
        } else {
            let [ingress, egress] = self.tier_rows(ingress, egress, &members, protocol, port, family);
            (ingress, egress)
        };
        // allowed[s][d] = egress(s) admits d AND ingress(d) admits s: transpose the ingress rows (per d, over s)
        // into rows per s, then it is one AND per word.
        let full = BitSet::full(n);
        let ingress_by_dest: Vec<&BitSet> = self.pods.iter().map(|p| ingress.row(p.class).unwrap_or(&full)).collect();
        let ingress_by_source = crate::bitset::transpose(&ingress_by_dest);
        let mut allowed = Vec::with_capacity(n);
        for (s, (sp, mut row)) in self.pods.iter().zip(ingress_by_source).enumerate() {
            if let Some(e) = egress.row(sp.class) {
                row.intersect_with(e);
            }
            row.insert(s);
            allowed.push(row);
        }
        Matrix { pods: self.pods.iter().map(|p| p.key.clone()).collect(), allowed }
    }

    /// The sources the NetworkPolicies selecting class `c` admit on its ingress (`None`: not isolated).
    fn ingress_row(&self, c: &Class, protocol: Protocol, port: u16, slot: usize) -> Option<BitSet> {
        if c.ingress.is_empty() {
            return None;
        }
        let n = self.pods.len();
        let mut row = BitSet::new(n);
        for &pi in &c.ingress {
            for rule in &self.policies[pi].ingress {
                let port_ok = rule
                    .rule
                    .ports
                    .as_ref()
                    .is_none_or(|es| es.iter().any(|e| e.matches(protocol, port, Some(&c.ports))));
                if port_ok {
                    match rule.union(slot) {
                        None => return Some(BitSet::full(n)),
                        Some(u) => row.union_with(u),
                    }
                }
            }
        }
        Some(row)
    }

    /// The pods of each class, in id order.
    fn class_members(&self) -> Vec<Vec<PodId>> {
        let mut members = vec![Vec::new(); self.classes.len()];
        for (i, p) in self.pods.iter().enumerate().filter(|(_, p)| p.class != HOLE) {
            members[p.class].push(i);
        }
        members
    }

    /// The pods whose class satisfies `pred`, asked once per class.
    fn pods_where(&self, members: &[Vec<PodId>], mut pred: impl FnMut(&Class) -> bool) -> BitSet {
        let mut s = BitSet::new(self.pods.len());
        for (c, pods) in self.classes.iter().zip(members) {
            if !pods.is_empty() && pred(c) {
                for &p in pods {
                    s.insert(p);
                }
            }
        }
        s
    }
}

/// Matrix rows shared between classes: `rows[of_class[c]]` is class `c`'s (`None`: not isolated).
#[derive(Debug, Default)]
struct SharedRows {
    rows: Vec<Option<BitSet>>,
    of_class: Vec<usize>,
}

impl SharedRows {
    fn row(&self, class: usize) -> Option<&BitSet> {
        self.rows[self.of_class[class]].as_ref()
    }
}

impl Index {
    /// The NetworkPolicy rows of every class (`None`: not isolated) completed with the tiers: per side,
    /// Admin accepts, then (Admin's undecided) NetworkPolicy if isolated, else all but what Baseline denies.
    /// Classes with the same NetworkPolicy row, selected by the same tier policies (and, for ingress, with the
    /// same container ports) share the result.
    fn tier_rows(
        &self,
        ingress: SharedRows,
        egress: SharedRows,
        members: &[Vec<PodId>],
        protocol: Protocol,
        port: u16,
        family: IpFamily,
    ) -> [SharedRows; 2] {
        let n = self.pods.len();
        // Which destinations an egress rule's protocols admit, per list of protocols: named ports differ per
        // destination, and a host-network destination is a host (no named ports).
        let mut dest_ports: HashMap<Vec<crate::cnp::lower::TierPort>, Option<BitSet>> = HashMap::new();
        let mut egress_ports = |rule: &crate::cnp::tiers::IndexedTierRule| -> Option<BitSet> {
            let entries = rule.rule.protocols.as_deref()?;
            if let Some(hit) = dest_ports.get(entries) {
                return hit.clone();
            }
            let ports = (!entries.iter().any(|e| e.matches(protocol, port, Some(&[])))).then(|| {
                self.pods_where(members, |c| {
                    !c.host_network && entries.iter().any(|e| e.matches(protocol, port, Some(&c.ports)))
                })
            });
            dest_ports.insert(entries.to_vec(), ports.clone());
            ports
        };
        [(Direction::Ingress, ingress), (Direction::Egress, egress)].map(|(direction, np)| {
            let mut out = SharedRows::default();
            // (NetworkPolicy row, tier policies selecting the class or `None` when none, ports for ingress)
            type Key<'a> = (usize, Option<Vec<usize>>, &'a [ContainerPort]);
            let mut seen: HashMap<Key<'_>, usize> = HashMap::new();
            for (ci, c) in self.classes.iter().enumerate() {
                let np_id = np.of_class[ci];
                let rep = members[ci].first().copied().filter(|_| !c.host_network);
                let selecting = rep.map(|r| self.tiers.selecting(r, direction)).filter(|s| !s.is_empty());
                let ports: &[ContainerPort] = match (direction, &selecting) {
                    (Direction::Ingress, Some(_)) => &c.ports,
                    _ => &[],
                };
                let key = (np_id, selecting, ports);
                if let Some(&id) = seen.get(&key) {
                    out.of_class.push(id);
                    continue;
                }
                let row = match (rep, &key.1) {
                    (Some(r), Some(_)) => {
                        let mut port_ok = |rule: &crate::cnp::tiers::IndexedTierRule| match direction {
                            Direction::Egress => egress_ports(rule),
                            Direction::Ingress => {
                                rule.rule.port_match(protocol, port, Some(&c.ports)).is_none().then(|| BitSet::new(n))
                            }
                        };
                        let (accept, deny) = self.tiers.rows(Tier::Admin, r, direction, family, n, &mut port_ok);
                        let mut row = match &np.rows[np_id] {
                            Some(row) => row.clone(),
                            None => {
                                let (_, b_deny) =
                                    self.tiers.rows(Tier::Baseline, r, direction, family, n, &mut port_ok);
                                let mut all = BitSet::full(n);
                                all.subtract(&b_deny);
                                all
                            }
                        };
                        row.subtract(&deny);
                        row.union_with(&accept);
                        Some(row)
                    }
                    _ => np.rows[np_id].clone(),
                };
                out.rows.push(row);
                let id = out.rows.len() - 1;
                seen.insert(key, id);
                out.of_class.push(id);
            }
            out
        })
    }
}

fn ipblock_miss(b: &IpBlock, ip: &IpAddr) -> String {
    match b.except.iter().find(|e| e.contains(ip)) {
        Some(e) => format!("{ip} is in the except {e}"),
        None => format!("{ip} is outside {}", b.cidr),
    }
}

#[derive(Debug, Clone, Copy)]
enum End {
    Pod(PodId),
    Ip(IpAddr),
}

// ---- Changing the index in place --------------------------------------------------------------------------
//
// Each operation leaves the index answering exactly as `Index::build` of the changed cluster would, with the
// same pod and policy ids (pods in key order, policies in key order): property-tested against rebuilds in
// `tests/it/properties.rs`. A namespace's labels changing is not handled here; rebuild for that.

/// Whether a pod (given by its class data and addresses) is in a peer, for address family `slot`.
fn peer_member(
    peer: &Peer,
    namespace: &str,
    labels: &Labels,
    host_network: bool,
    ips: &[IpAddr],
    namespaces: &std::collections::BTreeMap<String, Labels>,
    slot: usize,
) -> bool {
    match peer {
        Peer::Pods { namespaces: scope, pods: sel } => {
            let ns_ok = match scope {
                NamespaceScope::Own(ns) => ns == namespace,
                NamespaceScope::Selector(nsel) => match namespaces.get(namespace) {
                    Some(l) => nsel.matches(l),
                    None => nsel.matches(&Labels::new()),
                },
            };
            !host_network && ns_ok && sel.matches(labels)
        }
        Peer::IpBlock(b) => {
            let block_slot = family_slot(if b.cidr.addr().is_ipv4() { IpFamily::V4 } else { IpFamily::V6 });
            block_slot == slot && ips.iter().any(|ip| b.contains(ip))
        }
        Peer::Invalid => false,
    }
}

/// A policy's rules with each peer resolved to its pods (`resolve`) and, for a rule of several peers, their
/// union, over `n` pods.
fn index_rules(rules: Option<&[Rule]>, n: usize, resolve: &mut dyn FnMut(&Peer) -> FamilyPods) -> Vec<IndexedRule> {
    rules
        .unwrap_or_default()
        .iter()
        .map(|rule| {
            let peers: Vec<IndexedPeer> =
                rule.peers.iter().flatten().map(|p| IndexedPeer { peer: p.clone(), pods: resolve(p) }).collect();
            let union = (peers.len() > 1).then(|| {
                let mut u = [BitSet::new(n), BitSet::new(n)];
                let mut has = [false, false];
                for p in &peers {
                    u[0].union_with(p.pods.get(0));
                    u[1].union_with(p.pods.get(1));
                    let f = p.pods.families();
                    has = [has[0] | f[0], has[1] | f[1]];
                }
                if peers.iter().all(|p| matches!(p.pods, FamilyPods::Both(_))) {
                    let [v4, _] = u;
                    FamilyPods::Both(v4)
                } else {
                    FamilyPods::from_sets(has, u)
                }
            });
            IndexedRule { rule: rule.clone(), peers, union }
        })
        .collect()
}

fn insert_sorted(v: &mut Vec<usize>, x: usize) {
    if let Err(at) = v.binary_search(&x) {
        v.insert(at, x);
    }
}

impl Index {
    /// The class of pods with these facts, created (with the policies selecting it) if new.
    fn class_for(&mut self, namespace: &str, labels: &Labels, ports: &[ContainerPort], host_network: bool) -> usize {
        let ck: ClassKey = (namespace.to_owned(), labels.clone(), ports.to_vec(), host_network);
        if let Some(&c) = self.class_of.get(&ck) {
            return c;
        }
        let mut c = Class {
            namespace: namespace.to_owned(),
            labels: labels.clone(),
            ports: ports.to_vec(),
            host_network,
            ingress: Vec::new(),
            egress: Vec::new(),
        };
        if !host_network {
            for (pi, p) in self.policies.iter().enumerate() {
                if p.policy.key.namespace == namespace && p.policy.pod_selector.matches(labels) {
                    if p.policy.ingress.is_some() {
                        c.ingress.push(pi);
                    }
                    if p.policy.egress.is_some() {
                        c.egress.push(pi);
                    }
                }
            }
        }
        self.classes.push(c);
        self.members.push(Vec::new());
        self.class_of.insert(ck, self.classes.len() - 1);
        self.classes.len() - 1
    }

    fn note_namespace(&mut self, namespace: &str) {
        if !self.namespaces.contains_key(namespace) {
            let labels = Labels::from([(crate::model::NAMESPACE_NAME_LABEL.to_owned(), namespace.to_owned())]);
            self.namespaces.insert(namespace.to_owned(), labels);
        }
    }

    fn bitsets_mut(&mut self) -> impl Iterator<Item = &mut BitSet> {
        self.policies.iter_mut().flat_map(|p| p.ingress.iter_mut().chain(p.egress.iter_mut())).flat_map(|r| {
            r.peers
                .iter_mut()
                .flat_map(|pe| pe.pods.sets_mut())
                .chain(r.union.iter_mut().flat_map(FamilyPods::sets_mut))
        })
    }

    /// Adds a pod, or replaces it (any of its facts may change), as a rebuild would. Costs what the pod
    /// touches: a slot, its class, one bit per peer; no other pod's id moves.
    pub fn upsert_pod(&mut self, key: &ObjectKey, facts: PodFacts) {
        self.remove_pod(key);
        self.note_namespace(&key.namespace);
        if facts.terminated {
            self.terminated.insert(key.clone());
            return;
        }
        let class = self.class_for(&key.namespace, &facts.labels, &facts.ports, facts.host_network);
        let entry = PodEntry { key: key.clone(), facts, class };
        let id = match self.free.pop() {
            Some(id) => {
                self.ordered = false;
                self.pods[id] = entry;
                id
            }
            None => {
                // Still in key order if it sorts after every pod.
                self.ordered &= self.by_key.last_key_value().is_none_or(|(last, _)| last < key);
                self.pods.push(entry);
                self.pods.len() - 1
            }
        };
        self.members[class].push(id);
        self.by_key.insert(key.clone(), id);
        self.place(id);
        self.refresh_tiers_for(id);
    }

    /// Removes a pod as a rebuild would. Returns whether it was there. Its id is free for the next pod.
    pub fn remove_pod(&mut self, key: &ObjectKey) -> bool {
        if self.terminated.remove(key) {
            return true;
        }
        let Some(id) = self.by_key.remove(key) else { return false };
        self.leave_class(id);
        for set in self.bitsets_mut() {
            set.set(id, false);
        }
        self.pods[id] = PodEntry { key: ObjectKey::new("", ""), facts: PodFacts::default(), class: HOLE };
        self.free.push(id);
        self.ordered = false;
        self.refresh_tiers_for(id);
        true
    }

    /// The pods of one peer, resolved against the pods the index holds now.
    fn resolve_now(&self, peer: &Peer) -> FamilyPods {
        let n = self.pods.len();
        match peer {
            // Per class, then its pods.
            Peer::Pods { .. } => {
                let mut set = BitSet::new(n);
                for (c, members) in self.classes.iter().zip(&self.members) {
                    if !members.is_empty()
                        && peer_member(peer, &c.namespace, &c.labels, c.host_network, &[], &self.namespaces, 0)
                    {
                        for &p in members {
                            set.insert(p);
                        }
                    }
                }
                FamilyPods::Both(set)
            }
            Peer::Invalid => FamilyPods::Neither,
            Peer::IpBlock(b) => {
                let mut sets = [BitSet::new(n), BitSet::new(n)];
                for (i, p) in self.pods.iter().enumerate().filter(|(_, p)| p.class != HOLE) {
                    let c = &self.classes[p.class];
                    for (slot, set) in sets.iter_mut().enumerate() {
                        if peer_member(
                            peer,
                            &c.namespace,
                            &c.labels,
                            c.host_network,
                            &p.facts.ips,
                            &self.namespaces,
                            slot,
                        ) {
                            set.insert(i);
                        }
                    }
                }
                let slot = family_slot(if b.cidr.addr().is_ipv4() { IpFamily::V4 } else { IpFamily::V6 });
                FamilyPods::from_sets([slot == 0, slot == 1], sets)
            }
        }
    }

    /// Re-derives which classes policy `pi` selects.
    fn reselect(&mut self, pi: usize) {
        let p = &self.policies[pi].policy;
        for c in &mut self.classes {
            c.ingress.retain(|&x| x != pi);
            c.egress.retain(|&x| x != pi);
            if c.host_network || c.namespace != p.key.namespace || !p.pod_selector.matches(&c.labels) {
                continue;
            }
            if p.ingress.is_some() {
                insert_sorted(&mut c.ingress, pi);
            }
            if p.egress.is_some() {
                insert_sorted(&mut c.egress, pi);
            }
        }
    }

    /// Adds a NetworkPolicy, or replaces the one with its key, as a rebuild would.
    pub fn upsert_policy(&mut self, np: &k8s_openapi::api::networking::v1::NetworkPolicy) {
        let policy = Policy::lower(np);
        self.note_namespace(&policy.key.namespace);
        let n = self.pods.len();
        let ingress = index_rules(policy.ingress.as_deref(), n, &mut |p| self.resolve_now(p));
        let egress = index_rules(policy.egress.as_deref(), n, &mut |p| self.resolve_now(p));
        let key = policy.key.clone();
        let indexed = IndexedPolicy { policy, ingress, egress };
        let pi = match self.policies.binary_search_by(|p| p.policy.key.cmp(&key)).ok() {
            Some(pi) => {
                self.policies[pi] = indexed;
                pi
            }
            None => {
                let at = self.policies.partition_point(|p| p.policy.key < key);
                for c in &mut self.classes {
                    for x in c.ingress.iter_mut().chain(c.egress.iter_mut()) {
                        if *x >= at {
                            *x += 1;
                        }
                    }
                }
                self.policies.insert(at, indexed);
                at
            }
        };
        self.reselect(pi);
    }

    /// Removes a NetworkPolicy as a rebuild would. Returns whether it was there.
    pub fn remove_policy(&mut self, key: &ObjectKey) -> bool {
        let Ok(pi) = self.policies.binary_search_by(|p| p.policy.key.cmp(key)) else { return false };
        self.policies.remove(pi);
        for c in &mut self.classes {
            for v in [&mut c.ingress, &mut c.egress] {
                v.retain(|&x| x != pi);
                for x in v.iter_mut() {
                    if *x > pi {
                        *x -= 1;
                    }
                }
            }
        }
        true
    }
}
