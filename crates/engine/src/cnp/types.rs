//! The API types of ClusterNetworkPolicy (`policy.networking.k8s.io/v1alpha2`, network-policy-api v0.2.0) and
//! of its predecessors AdminNetworkPolicy and BaselineAdminNetworkPolicy (`v1alpha1`, v0.1.x).
//!
//! Every field is optional here so that a missing required field is a validation error in the apiserver's
//! words, not a decoding failure; integers are `i64` so that an out-of-range value is reported the same way.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::{Deserialize, Serialize};

/// `ClusterNetworkPolicy` (cluster-scoped).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterNetworkPolicy {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<ClusterNetworkPolicySpec>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterNetworkPolicySpec {
    /// `Admin` or `Baseline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// 0..=1000, lower first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<ClusterNetworkPolicySubject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Vec<ClusterNetworkPolicyIngressRule>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<Vec<ClusterNetworkPolicyEgressRule>>,
}

/// Exactly one of `namespaces`, `pods`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterNetworkPolicySubject {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<NamespacedPod>,
}

/// Pods whose namespace matches `namespaceSelector` and whose labels match `podSelector`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespacedPod {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterNetworkPolicyIngressRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `Accept`, `Deny` or `Pass`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<ClusterNetworkPolicyIngressPeer>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocols: Option<Vec<ClusterNetworkPolicyProtocol>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterNetworkPolicyEgressRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<ClusterNetworkPolicyEgressPeer>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocols: Option<Vec<ClusterNetworkPolicyProtocol>>,
}

/// Exactly one of `namespaces`, `pods`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterNetworkPolicyIngressPeer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<NamespacedPod>,
}

/// Exactly one of `namespaces`, `pods`, `networks`, `nodes`, `domainNames`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterNetworkPolicyEgressPeer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<NamespacedPod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<Vec<String>>,
    /// Experimental channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<LabelSelector>,
    /// Experimental channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_names: Option<Vec<String>>,
}

/// Exactly one of `tcp`, `udp`, `sctp`, `destinationNamedPort`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterNetworkPolicyProtocol {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<ProtocolPort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp: Option<ProtocolPort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sctp: Option<ProtocolPort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_named_port: Option<String>,
}

/// `tcp`/`udp`/`sctp`: at least one field.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProtocolPort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_port: Option<Port>,
}

/// Exactly one of `number`, `range`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Port {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<PortRange>,
}

/// Inclusive at both ends; `start < end`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<i64>,
}

// ---- v1alpha1 ----------------------------------------------------------------------------------------------

/// `AdminNetworkPolicy` (v1alpha1, cluster-scoped).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminNetworkPolicy {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<AdminNetworkPolicySpec>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminNetworkPolicySpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<ClusterNetworkPolicySubject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Vec<AdminNetworkPolicyIngressRule>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<Vec<AdminNetworkPolicyEgressRule>>,
}

/// `BaselineAdminNetworkPolicy` (v1alpha1, cluster-scoped, a singleton named `default`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaselineAdminNetworkPolicy {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<BaselineAdminNetworkPolicySpec>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaselineAdminNetworkPolicySpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<ClusterNetworkPolicySubject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Vec<AdminNetworkPolicyIngressRule>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<Vec<AdminNetworkPolicyEgressRule>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminNetworkPolicyIngressRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `Allow`, `Deny`, `Pass` (BANP: `Allow`, `Deny`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<ClusterNetworkPolicyIngressPeer>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<AdminNetworkPolicyPort>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminNetworkPolicyEgressRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<ClusterNetworkPolicyEgressPeer>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<AdminNetworkPolicyPort>>,
}

/// Exactly one of `portNumber`, `namedPort`, `portRange`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminNetworkPolicyPort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_number: Option<AdminNetworkPolicyPortNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub named_port: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_range: Option<AdminNetworkPolicyPortRange>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminNetworkPolicyPortNumber {
    /// Defaults to TCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminNetworkPolicyPortRange {
    /// Defaults to TCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<i64>,
}

// ---- v1alpha1 as v1alpha2 ----------------------------------------------------------------------------------

/// `Allow` is v1alpha1's `Accept`.
fn action_v2(a: &Option<String>) -> Option<String> {
    a.as_ref().map(|a| if a == "Allow" { "Accept".to_owned() } else { a.clone() })
}

/// v1alpha1 ports as v1alpha2 protocols: `portNumber` and `portRange` (protocol default TCP) become the
/// protocol's `destinationPort`, `namedPort` becomes `destinationNamedPort`. A protocol other than TCP, UDP or
/// SCTP becomes an entry with no field, which matches nothing.
fn protocols_v2(ports: &Option<Vec<AdminNetworkPolicyPort>>) -> Option<Vec<ClusterNetworkPolicyProtocol>> {
    let entry = |protocol: &Option<String>, port: Port| {
        let pp = Some(ProtocolPort { destination_port: Some(port) });
        match protocol.as_deref().unwrap_or("TCP") {
            "TCP" => ClusterNetworkPolicyProtocol { tcp: pp, ..Default::default() },
            "UDP" => ClusterNetworkPolicyProtocol { udp: pp, ..Default::default() },
            "SCTP" => ClusterNetworkPolicyProtocol { sctp: pp, ..Default::default() },
            _ => ClusterNetworkPolicyProtocol::default(),
        }
    };
    ports.as_ref().map(|ports| {
        ports
            .iter()
            .map(|p| {
                if let Some(n) = &p.port_number {
                    entry(&n.protocol, Port { number: n.port, range: None })
                } else if let Some(r) = &p.port_range {
                    entry(&r.protocol, Port { number: None, range: Some(PortRange { start: r.start, end: r.end }) })
                } else {
                    ClusterNetworkPolicyProtocol { destination_named_port: p.named_port.clone(), ..Default::default() }
                }
            })
            .collect()
    })
}

fn ingress_v2(rules: &Option<Vec<AdminNetworkPolicyIngressRule>>) -> Option<Vec<ClusterNetworkPolicyIngressRule>> {
    rules.as_ref().map(|rules| {
        rules
            .iter()
            .map(|r| ClusterNetworkPolicyIngressRule {
                name: r.name.clone(),
                action: action_v2(&r.action),
                from: r.from.clone(),
                protocols: protocols_v2(&r.ports),
            })
            .collect()
    })
}

fn egress_v2(rules: &Option<Vec<AdminNetworkPolicyEgressRule>>) -> Option<Vec<ClusterNetworkPolicyEgressRule>> {
    rules.as_ref().map(|rules| {
        rules
            .iter()
            .map(|r| ClusterNetworkPolicyEgressRule {
                name: r.name.clone(),
                action: action_v2(&r.action),
                to: r.to.clone(),
                protocols: protocols_v2(&r.ports),
            })
            .collect()
    })
}

/// The priority a BaselineAdminNetworkPolicy sorts at inside the Baseline tier: after every Baseline
/// ClusterNetworkPolicy (whose priorities end at 1000), so it never ties with one.
pub const BANP_PRIORITY: i64 = 1001;

impl AdminNetworkPolicySpec {
    /// The same policy as a v1alpha2 spec in the Admin tier (`Allow` = `Accept`, ports as protocols).
    pub fn to_v1alpha2(&self) -> ClusterNetworkPolicySpec {
        ClusterNetworkPolicySpec {
            tier: Some("Admin".to_owned()),
            priority: self.priority,
            subject: self.subject.clone(),
            ingress: ingress_v2(&self.ingress),
            egress: egress_v2(&self.egress),
        }
    }
}

impl BaselineAdminNetworkPolicySpec {
    /// The same policy as a v1alpha2 spec in the Baseline tier, at [`BANP_PRIORITY`].
    pub fn to_v1alpha2(&self) -> ClusterNetworkPolicySpec {
        ClusterNetworkPolicySpec {
            tier: Some("Baseline".to_owned()),
            priority: Some(BANP_PRIORITY),
            subject: self.subject.clone(),
            ingress: ingress_v2(&self.ingress),
            egress: egress_v2(&self.egress),
        }
    }
}
