//! NetworkPolicies lowered to what they mean: defaults applied, selectors compiled, CIDRs parsed.
//!
//! Lowering assumes a policy that passed validation; anything it still cannot read matches nothing.

use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::cidr::{IpBlock, parse_cidr_sloppy};
use crate::model::{ContainerPort, Labels, ObjectKey, Protocol, namespace_of};

/// Ingress or egress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }
    /// The name of the peer list in a rule of this direction.
    pub fn peers_field(self) -> &'static str {
        match self {
            Direction::Ingress => "from",
            Direction::Egress => "to",
        }
    }
}

/// A compiled label selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Selector {
    pub requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    pub key: String,
    pub op: Operator,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Operator {
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    /// An operator validation would reject: it matches nothing.
    Invalid,
}

impl Selector {
    pub fn from_label_selector(sel: &LabelSelector) -> Self {
        let mut requirements: Vec<Requirement> = sel
            .match_labels
            .iter()
            .flatten()
            .map(|(k, v)| Requirement { key: k.clone(), op: Operator::In(vec![v.clone()]) })
            .collect();
        for e in sel.match_expressions.iter().flatten() {
            let values = e.values.clone().unwrap_or_default();
            let op = match e.operator.as_str() {
                "In" => Operator::In(values),
                "NotIn" => Operator::NotIn(values),
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                _ => Operator::Invalid,
            };
            requirements.push(Requirement { key: e.key.clone(), op });
        }
        Selector { requirements }
    }

    /// Whether the selector selects everything (`{}`).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.requirements.iter().all(|r| {
            let v = labels.get(&r.key);
            match &r.op {
                Operator::In(vals) => v.is_some_and(|v| vals.contains(v)),
                Operator::NotIn(vals) => v.is_none_or(|v| !vals.contains(v)),
                Operator::Exists => v.is_some(),
                Operator::DoesNotExist => v.is_none(),
                Operator::Invalid => false,
            }
        })
    }
}

/// Which namespaces a pod peer ranges over.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NamespaceScope {
    /// A `podSelector` without `namespaceSelector`: the policy's own namespace.
    Own(String),
    Selector(Selector),
}

/// One entry of `from` / `to`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Peer {
    Pods {
        namespaces: NamespaceScope,
        pods: Selector,
    },
    IpBlock(IpBlock),
    /// An ipBlock whose CIDR cannot be read (validation rejects it): matches nothing.
    Invalid,
}

/// What port entry matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PortMatch {
    /// No `port`: every port of the protocol.
    Any,
    /// `port`, or `port`..=`endPort`.
    Range(u16, u16),
    /// A named port, resolved on the destination pod.
    Named(String),
    /// A port validation would reject: matches nothing.
    Invalid,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortEntry {
    pub protocol: Protocol,
    pub port: PortMatch,
}

impl PortEntry {
    fn lower(p: &NetworkPolicyPort) -> Self {
        let protocol = p.protocol.as_deref();
        let Some(protocol) = protocol.map_or(Some(Protocol::Tcp), |s| s.parse().ok()) else {
            return PortEntry { protocol: Protocol::Tcp, port: PortMatch::Invalid };
        };
        let port = match &p.port {
            None => PortMatch::Any,
            Some(IntOrString::Int(n)) => {
                let end = p.end_port.unwrap_or(*n);
                match (u16::try_from(*n), u16::try_from(end)) {
                    (Ok(a), Ok(b)) if a >= 1 && a <= b => PortMatch::Range(a, b),
                    _ => PortMatch::Invalid,
                }
            }
            Some(IntOrString::String(s)) => PortMatch::Named(s.clone()),
        };
        PortEntry { protocol, port }
    }

    /// Whether this entry admits `protocol`/`port` on a destination declaring `dest_ports`
    /// (`None` for a destination that is not a pod, where named ports cannot resolve).
    pub fn matches(&self, protocol: Protocol, port: u16, dest_ports: Option<&[ContainerPort]>) -> bool {
        if self.protocol != protocol {
            return false;
        }
        match &self.port {
            PortMatch::Any => true,
            PortMatch::Range(a, b) => (*a..=*b).contains(&port),
            PortMatch::Named(name) => dest_ports.is_some_and(|ports| {
                ports.iter().any(|cp| cp.name.as_deref() == Some(name) && cp.protocol == protocol && cp.port == port)
            }),
            PortMatch::Invalid => false,
        }
    }
}

/// One ingress or egress rule. `None` means the list was empty or missing: all peers / all ports.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    pub peers: Option<Vec<Peer>>,
    pub ports: Option<Vec<PortEntry>>,
}

/// A rule as written: its peers (`from`/`to`) and ports.
type RawRule = (Option<Vec<NetworkPolicyPeer>>, Option<Vec<NetworkPolicyPort>>);

/// A NetworkPolicy with its defaults made explicit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub key: ObjectKey,
    pub pod_selector: Selector,
    /// `Some` when the policy isolates ingress (its effective policyTypes include Ingress), with its rules.
    pub ingress: Option<Vec<Rule>>,
    pub egress: Option<Vec<Rule>>,
}

impl Policy {
    pub fn lower(policy: &NetworkPolicy) -> Self {
        let ns = namespace_of(&policy.metadata).to_owned();
        let key = ObjectKey::new(&ns, policy.metadata.name.as_deref().unwrap_or(""));
        let spec = policy.spec.clone().unwrap_or_default();
        let (ingress_type, egress_type) =
            effective_policy_types(spec.policy_types.as_deref(), spec.egress.as_ref().is_some_and(|e| !e.is_empty()));
        let lower_rules = |rules: Vec<RawRule>| {
            rules
                .into_iter()
                .map(|(peers, ports)| Rule {
                    peers: peers.filter(|p| !p.is_empty()).map(|p| p.iter().map(|p| lower_peer(p, &ns)).collect()),
                    ports: ports.filter(|p| !p.is_empty()).map(|p| p.iter().map(PortEntry::lower).collect()),
                })
                .collect::<Vec<_>>()
        };
        let ingress = ingress_type.then(|| {
            lower_rules(spec.ingress.clone().unwrap_or_default().into_iter().map(|r| (r.from, r.ports)).collect())
        });
        let egress = egress_type.then(|| {
            lower_rules(spec.egress.clone().unwrap_or_default().into_iter().map(|r| (r.to, r.ports)).collect())
        });
        Policy {
            key,
            pod_selector: Selector::from_label_selector(&spec.pod_selector.clone().unwrap_or_default()),
            ingress,
            egress,
        }
    }

    pub fn rules(&self, direction: Direction) -> Option<&[Rule]> {
        match direction {
            Direction::Ingress => self.ingress.as_deref(),
            Direction::Egress => self.egress.as_deref(),
        }
    }
}

/// The directions a policy isolates: its `policyTypes`, or when omitted Ingress, plus Egress if it has egress
/// rules (`SetDefaults_NetworkPolicy`: `len(spec.Egress) != 0`; an empty `egress: []` does not count).
pub fn effective_policy_types(policy_types: Option<&[String]>, has_egress_rules: bool) -> (bool, bool) {
    match policy_types {
        Some(types) if !types.is_empty() => (types.iter().any(|t| t == "Ingress"), types.iter().any(|t| t == "Egress")),
        _ => (true, has_egress_rules),
    }
}

fn lower_peer(peer: &NetworkPolicyPeer, policy_ns: &str) -> Peer {
    if let Some(block) = &peer.ip_block {
        let Some(cidr) = parse_cidr_sloppy(&block.cidr) else { return Peer::Invalid };
        let except = block.except.iter().flatten().filter_map(|e| parse_cidr_sloppy(e)).collect();
        return Peer::IpBlock(IpBlock { cidr, except });
    }
    let pods = peer.pod_selector.as_ref().map(Selector::from_label_selector).unwrap_or_default();
    let namespaces = match &peer.namespace_selector {
        Some(sel) => NamespaceScope::Selector(Selector::from_label_selector(sel)),
        None => NamespaceScope::Own(policy_ns.to_owned()),
    };
    Peer::Pods { namespaces, pods }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn selector_operators() {
        let sel: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "NotIn", "values": ["db"]},
                {"key": "env", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist"},
            ]
        }))
        .unwrap();
        let s = Selector::from_label_selector(&sel);
        assert!(s.matches(&labels(&[("app", "web"), ("env", "prod")])), "NotIn matches a missing key");
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "prod"), ("tier", "db")])));
        assert!(!s.matches(&labels(&[("app", "web")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "x"), ("legacy", "")])));
        assert!(Selector::default().matches(&Labels::new()));
    }

    #[test]
    fn policy_types_default() {
        let t = |types: Option<&[&str]>, eg| {
            let v: Option<Vec<String>> = types.map(|t| t.iter().map(|s| (*s).to_owned()).collect());
            effective_policy_types(v.as_deref(), eg)
        };
        assert_eq!(t(None, false), (true, false));
        assert_eq!(t(None, true), (true, true));
        assert_eq!(t(Some(&["Egress"]), false), (false, true));
        assert_eq!(t(Some(&[]), true), (true, true));
    }

    #[test]
    fn empty_egress_list_without_policy_types_does_not_isolate_egress() {
        let np: NetworkPolicy = serde_json::from_value(
            serde_json::json!({"metadata": {"name": "p"}, "spec": {"podSelector": {}, "egress": []}}),
        )
        .unwrap();
        let p = Policy::lower(&np);
        assert!(p.ingress.is_some() && p.egress.is_none());
    }
}
