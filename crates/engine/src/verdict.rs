//! Connections and the verdicts that explain them.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use crate::cnp::{Action, PolicyKind, Tier};
use crate::model::{IpFamily, ObjectKey, Protocol};
use crate::policy::Direction;

/// One end of a connection: a pod, or a host outside the cluster with an address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Pod(ObjectKey),
    Ip(IpAddr),
}

impl Endpoint {
    /// Parses `NS/POD` or an IP address.
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Endpoint::Ip(ip));
        }
        ObjectKey::parse(s)
            .map(Endpoint::Pod)
            .ok_or_else(|| format!("{s:?} is neither NAMESPACE/POD nor an IP address"))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Pod(k) => write!(f, "{k}"),
            Endpoint::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl Serialize for Endpoint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for ObjectKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for Protocol {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Protocol {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for IpFamily {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for Direction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Direction::Ingress => "Ingress",
            Direction::Egress => "Egress",
        })
    }
}

/// A new connection from one endpoint to another's port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Connection {
    pub from: Endpoint,
    pub to: Endpoint,
    pub protocol: Protocol,
    pub port: u16,
    /// The address family used between two pods; a bare IP endpoint fixes it to its own.
    pub family: IpFamily,
}

impl Connection {
    pub fn new(from: Endpoint, to: Endpoint, protocol: Protocol, port: u16) -> Self {
        let family = [&from, &to]
            .into_iter()
            .find_map(|e| match e {
                Endpoint::Ip(ip) => Some(IpFamily::of(ip)),
                Endpoint::Pod(_) => None,
            })
            .unwrap_or_default();
        Connection { from, to, protocol, port, family }
    }

    pub fn with_family(mut self, family: IpFamily) -> Self {
        self.family = family;
        self
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {} {}/{}", self.from, self.to, self.protocol, self.port)
    }
}

/// A rule of a policy, and which of its peers and ports matched (`None`: the list is empty, so everything matches).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct RuleMatch {
    pub policy: ObjectKey,
    pub direction: Direction,
    pub rule: usize,
    pub peer: Option<usize>,
    pub port: Option<usize>,
}

impl RuleMatch {
    /// `spec.ingress[0]`
    pub fn rule_path(&self) -> String {
        format!("spec.{}[{}]", self.direction.as_str(), self.rule)
    }

    /// `spec.ingress[0].from[1]`, or the rule's path with "(all peers)" when it lists none.
    pub fn peer_path(&self) -> String {
        match self.peer {
            Some(i) => format!("{}.{}[{i}]", self.rule_path(), self.direction.peers_field()),
            None => format!("{} (no {}: all peers)", self.rule_path(), self.direction.peers_field()),
        }
    }

    pub fn port_path(&self) -> String {
        match self.port {
            Some(i) => format!("{}.ports[{i}]", self.rule_path()),
            None => format!("{} (no ports: all ports)", self.rule_path()),
        }
    }
}

/// A rule that came close to admitting the connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum NearMiss {
    /// The peer matched (at `peer`) but no port entry did.
    PortDidNotMatch { rule: RuleMatch },
    /// A port entry matched (at `port`) but no peer did.
    PeerDidNotMatch { rule: RuleMatch },
}

/// What one side of the connection decided: the source pod's egress or the destination pod's ingress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Side {
    pub pod: ObjectKey,
    pub direction: Direction,
    /// Some policy selects the pod for this direction.
    pub isolated: bool,
    /// The policies that select the pod for this direction, in namespace/name order.
    pub selected_by: Vec<ObjectKey>,
    pub allowed: bool,
    pub admitted_by: Option<RuleMatch>,
    /// When nothing admitted: rules where the peer or the port matched, but not both.
    pub near_misses: Vec<NearMiss>,
    /// Why the pod takes no part in policy at all, if so (e.g. it uses the host network).
    pub exempt: Option<String>,
    /// The tier policies (Admin, then Baseline, in walk order) whose subject selects the pod and that have
    /// rules for this direction.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tier_policies: Vec<TierPolicyRef>,
    /// The first Admin rule that matched (Accept, Deny or Pass).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin: Option<TierRuleMatch>,
    /// The first Baseline rule that matched, when the side reached the Baseline tier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<TierRuleMatch>,
    /// Which stage decided; set only when some tier policy selects the pod for this direction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<Stage>,
}

/// The stages of one side, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Stage {
    Admin,
    NetworkPolicy,
    Baseline,
    /// Nothing decided: allowed.
    Default,
}

/// A tier policy, as explanations name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TierPolicyRef {
    pub kind: PolicyKind,
    pub name: String,
    pub tier: Tier,
    pub priority: i64,
}

impl fmt::Display for TierPolicyRef {
    /// `ClusterNetworkPolicy deny-from-z (Admin, priority 10)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            PolicyKind::BaselineAdminNetworkPolicy => write!(f, "{} {} (Baseline)", self.kind, self.name),
            _ => write!(f, "{} {} ({}, priority {})", self.kind, self.name, self.tier, self.priority),
        }
    }
}

/// The tier rule that matched a connection first, and which of its peers and protocols matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TierRuleMatch {
    pub policy: TierPolicyRef,
    pub direction: Direction,
    pub rule: usize,
    /// The rule's `name`, if it has one.
    pub rule_name: Option<String>,
    pub action: Action,
    pub peer: usize,
    /// `None`: the rule lists no protocols (any protocol, any port).
    pub protocol: Option<usize>,
    /// Other policies of the same tier and priority that also select the pod: the API leaves their order
    /// undefined; Palisade walks them by name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tied_with: Vec<String>,
}

impl TierRuleMatch {
    /// `spec.ingress[1] "deny-z"`
    pub fn rule_path(&self) -> String {
        let path = format!("spec.{}[{}]", self.direction.as_str(), self.rule);
        match &self.rule_name {
            Some(n) => format!("{path} {n:?}"),
            None => path,
        }
    }
}

/// The decision for one connection, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub connection: Connection,
    pub allowed: bool,
    /// A pod connecting to itself is always allowed.
    pub self_connection: bool,
    /// The source pod's egress; `None` when the source is not a pod.
    pub egress: Option<Side>,
    /// The destination pod's ingress; `None` when the destination is not a pod.
    pub ingress: Option<Side>,
}
