//! Tier policies lowered to what they mean: selectors compiled, CIDRs parsed, ports as ranges, actions as
//! values. Lowering assumes a policy that passed validation; what it still cannot read is fail-closed: a
//! peer with no field it knows matches nothing in an Accept rule and everything in a Deny or Pass rule.

use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::{
    Action, ClusterNetworkPolicyEgressPeer, ClusterNetworkPolicyIngressPeer, ClusterNetworkPolicyProtocol,
    NamespacedPod, PolicyKind, Tier, TierPolicy,
};
use crate::model::{ContainerPort, IpFamily, Labels, Protocol};
use crate::policy::{Direction, Selector};

/// A tier policy, lowered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoweredPolicy {
    pub kind: PolicyKind,
    pub name: String,
    pub tier: Tier,
    pub priority: i64,
    pub subject: PodSet,
    pub ingress: Vec<TierRule>,
    pub egress: Vec<TierRule>,
}

impl LoweredPolicy {
    /// `None` when the tier is not Admin or Baseline (validation rejects it): such a policy takes no part.
    pub fn lower(p: &TierPolicy) -> Option<Self> {
        let tier = p.tier()?;
        let subject = match &p.spec.subject {
            Some(s) => match (&s.namespaces, &s.pods) {
                (Some(ns), None) => PodSet::namespaces(ns),
                (None, Some(pods)) => PodSet::pods(pods),
                // Not exactly one field (validation rejects it): selects nothing.
                _ => PodSet::nothing(),
            },
            None => PodSet::nothing(),
        };
        let ingress = p
            .spec
            .ingress
            .iter()
            .flatten()
            .map(|r| TierRule::lower(&r.name, &r.action, r.from.iter().flatten().map(lower_ingress_peer), &r.protocols))
            .collect();
        let egress = p
            .spec
            .egress
            .iter()
            .flatten()
            .map(|r| TierRule::lower(&r.name, &r.action, r.to.iter().flatten().map(lower_egress_peer), &r.protocols))
            .collect();
        Some(LoweredPolicy {
            kind: p.kind,
            name: p.name.clone(),
            tier,
            priority: p.spec.priority.unwrap_or(i64::MAX),
            subject,
            ingress,
            egress,
        })
    }

    pub fn rules(&self, direction: Direction) -> &[TierRule] {
        match direction {
            Direction::Ingress => &self.ingress,
            Direction::Egress => &self.egress,
        }
    }

    /// `ClusterNetworkPolicy deny-from-z (Admin, priority 10)`.
    pub fn title(&self) -> String {
        match self.kind {
            PolicyKind::BaselineAdminNetworkPolicy => format!("{} {} (Baseline)", self.kind, self.name),
            _ => format!("{} {} ({}, priority {})", self.kind, self.name, self.tier, self.priority),
        }
    }
}

/// Pods by namespace labels and pod labels (a subject, or a `namespaces`/`pods` peer). Host-network pods
/// are never in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PodSet {
    pub namespaces: Selector,
    pub pods: Selector,
    /// Matches nothing (a subject that names neither or both fields).
    pub none: bool,
}

impl PodSet {
    fn namespaces(sel: &LabelSelector) -> Self {
        PodSet { namespaces: Selector::from_label_selector(sel), pods: Selector::default(), none: false }
    }
    fn pods(p: &NamespacedPod) -> Self {
        PodSet {
            namespaces: Selector::from_label_selector(&p.namespace_selector.clone().unwrap_or_default()),
            pods: Selector::from_label_selector(&p.pod_selector.clone().unwrap_or_default()),
            none: false,
        }
    }
    fn nothing() -> Self {
        PodSet { namespaces: Selector::default(), pods: Selector::default(), none: true }
    }

    pub fn matches(&self, namespace_labels: &Labels, pod_labels: &Labels, host_network: bool) -> bool {
        !self.none && !host_network && self.namespaces.matches(namespace_labels) && self.pods.matches(pod_labels)
    }
}

/// One entry of `from` / `to`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TierPeer {
    /// `namespaces` (pods of any label) or `pods`.
    Pods(PodSet),
    /// Addresses in any of these CIDRs, pod addresses included.
    Networks(Vec<IpNet>),
    /// Addresses in `status.addresses` (InternalIP, ExternalIP) of the Nodes the selector matches.
    Nodes(Selector),
    /// Not enforced: matches nothing.
    DomainNames(Vec<String>),
    /// No field this implementation knows (fail closed, see the module comment).
    Unknown,
}

/// What a `protocols` entry matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TierPort {
    /// `start..=end` of one protocol (`number` is a range of one).
    Range(Protocol, u16, u16),
    /// A container port of the destination pod with this name (its number and protocol).
    Named(String),
    /// An entry validation rejects: matches nothing.
    Nothing,
}

impl TierPort {
    fn lower(p: &ClusterNetworkPolicyProtocol) -> Self {
        let numbered = [(Protocol::Tcp, &p.tcp), (Protocol::Udp, &p.udp), (Protocol::Sctp, &p.sctp)];
        let set: Vec<_> = numbered.iter().filter(|(_, pp)| pp.is_some()).collect();
        match (set.as_slice(), &p.destination_named_port) {
            ([(proto, Some(pp))], None) => {
                let Some(port) = &pp.destination_port else { return TierPort::Nothing };
                let (a, b) = match (port.number, &port.range) {
                    (Some(n), None) => (n, n),
                    (None, Some(r)) => (r.start.unwrap_or(0), r.end.unwrap_or(0)),
                    _ => return TierPort::Nothing,
                };
                match (u16::try_from(a), u16::try_from(b)) {
                    (Ok(a), Ok(b)) if a >= 1 && a <= b => TierPort::Range(*proto, a, b),
                    _ => TierPort::Nothing,
                }
            }
            ([], Some(name)) => TierPort::Named(name.clone()),
            _ => TierPort::Nothing,
        }
    }

    /// Whether this entry matches `protocol`/`port` on a destination declaring `dest_ports` (`None` when the
    /// destination is not a pod: named ports never resolve there).
    pub fn matches(&self, protocol: Protocol, port: u16, dest_ports: Option<&[ContainerPort]>) -> bool {
        match self {
            TierPort::Range(p, a, b) => *p == protocol && (*a..=*b).contains(&port),
            TierPort::Named(name) => dest_ports.is_some_and(|ports| {
                ports.iter().any(|cp| cp.name.as_deref() == Some(name) && cp.protocol == protocol && cp.port == port)
            }),
            TierPort::Nothing => false,
        }
    }
}

/// One rule. `protocols: None`: any protocol, any port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TierRule {
    pub name: Option<String>,
    pub action: Action,
    pub peers: Vec<TierPeer>,
    pub protocols: Option<Vec<TierPort>>,
}

impl TierRule {
    fn lower(
        name: &Option<String>,
        action: &Option<String>,
        peers: impl Iterator<Item = TierPeer>,
        protocols: &Option<Vec<ClusterNetworkPolicyProtocol>>,
    ) -> Self {
        // An action validation rejects: the rule is kept (indexes stay as written) but matches nothing.
        let (action, valid) = match action.as_deref().and_then(Action::parse) {
            Some(a) => (a, true),
            None => (Action::Accept, false),
        };
        TierRule {
            name: name.clone(),
            action,
            peers: if valid { peers.collect() } else { Vec::new() },
            protocols: protocols.as_ref().map(|ps| ps.iter().map(TierPort::lower).collect()),
        }
    }

    /// The first protocols entry matching (`Some(None)`: the rule lists none, so every protocol and port).
    pub fn port_match(
        &self,
        protocol: Protocol,
        port: u16,
        dest_ports: Option<&[ContainerPort]>,
    ) -> Option<Option<usize>> {
        match &self.protocols {
            None => Some(None),
            Some(ps) => ps.iter().position(|p| p.matches(protocol, port, dest_ports)).map(Some),
        }
    }
}

fn lower_pods_or_namespaces(namespaces: &Option<LabelSelector>, pods: &Option<NamespacedPod>) -> Option<TierPeer> {
    match (namespaces, pods) {
        (Some(ns), None) => Some(TierPeer::Pods(PodSet::namespaces(ns))),
        (None, Some(p)) => Some(TierPeer::Pods(PodSet::pods(p))),
        _ => None,
    }
}

fn lower_ingress_peer(p: &ClusterNetworkPolicyIngressPeer) -> TierPeer {
    lower_pods_or_namespaces(&p.namespaces, &p.pods).unwrap_or(TierPeer::Unknown)
}

fn lower_egress_peer(p: &ClusterNetworkPolicyEgressPeer) -> TierPeer {
    let set =
        [p.namespaces.is_some(), p.pods.is_some(), p.networks.is_some(), p.nodes.is_some(), p.domain_names.is_some()];
    if set.iter().filter(|b| **b).count() != 1 {
        return TierPeer::Unknown;
    }
    if let Some(peer) = lower_pods_or_namespaces(&p.namespaces, &p.pods) {
        return peer;
    }
    if let Some(nets) = &p.networks {
        return TierPeer::Networks(
            nets.iter().filter_map(|n| n.trim().parse::<IpNet>().ok()).map(|n| n.trunc()).collect(),
        );
    }
    if let Some(sel) = &p.nodes {
        return TierPeer::Nodes(Selector::from_label_selector(sel));
    }
    TierPeer::DomainNames(p.domain_names.clone().unwrap_or_default())
}

/// What a peer is matched against: a pod that is not host-network, or a host (an address outside the
/// pod network, a node, a host-network pod).
#[derive(Debug, Clone, Copy)]
pub enum PeerEnd<'a> {
    Pod { namespace_labels: &'a Labels, labels: &'a Labels, ip: Option<IpAddr> },
    Host(Option<IpAddr>),
}

impl PeerEnd<'_> {
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            PeerEnd::Pod { ip, .. } | PeerEnd::Host(ip) => *ip,
        }
    }
}

/// A Node as the `nodes` peer sees it: labels and the addresses of `status.addresses` that are IPs
/// (InternalIP, ExternalIP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    pub name: String,
    pub labels: Labels,
    pub addresses: Vec<IpAddr>,
}

impl NodeFacts {
    pub fn of(node: &Node) -> Self {
        let addresses = node
            .status
            .iter()
            .flat_map(|s| s.addresses.iter().flatten())
            .filter(|a| a.type_ == "InternalIP" || a.type_ == "ExternalIP")
            .filter_map(|a| a.address.trim().parse::<IpAddr>().ok())
            .collect();
        NodeFacts {
            name: node.metadata.name.clone().unwrap_or_default(),
            labels: node.metadata.labels.clone().unwrap_or_default(),
            addresses,
        }
    }
}

impl TierPeer {
    /// Whether the peer matches the endpoint, for a rule with `action` (which decides what an unknown peer
    /// does) over `family` (a pod's address of that family is the one compared with CIDRs and nodes).
    pub fn matches(&self, action: Action, end: &PeerEnd<'_>, nodes: &[NodeFacts]) -> bool {
        match self {
            TierPeer::Pods(set) => match end {
                PeerEnd::Pod { namespace_labels, labels, .. } => set.matches(namespace_labels, labels, false),
                PeerEnd::Host(_) => false,
            },
            TierPeer::Networks(nets) => end.ip().is_some_and(|ip| nets.iter().any(|n| n.contains(&ip))),
            TierPeer::Nodes(sel) => {
                end.ip().is_some_and(|ip| nodes.iter().any(|n| sel.matches(&n.labels) && n.addresses.contains(&ip)))
            }
            TierPeer::DomainNames(_) => false,
            TierPeer::Unknown => action != Action::Accept,
        }
    }

    /// Whether the peer's membership depends on the endpoint's address rather than on its labels.
    pub fn by_address(&self) -> bool {
        matches!(self, TierPeer::Networks(_) | TierPeer::Nodes(_))
    }
}

/// The family slot of an address.
pub fn family_of(ip: &IpAddr) -> IpFamily {
    IpFamily::of(ip)
}
