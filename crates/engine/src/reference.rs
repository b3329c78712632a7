//! The reference evaluator: the NetworkPolicy API documentation read literally, straight off the k8s-openapi
//! objects, with no precomputation. Slow by design; the fast [`crate::Index`] must always agree with it.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::cidr::parse_cidr_sloppy;
use crate::model::{Cluster, IpFamily, Labels, NAMESPACE_NAME_LABEL, ObjectKey, PodFacts, Protocol, namespace_of};
use crate::verdict::{Connection, Endpoint};

/// Whether the connection is allowed, or `None` if an endpoint pod does not exist or has terminated.
pub fn allowed(cluster: &Cluster, conn: &Connection) -> Option<bool> {
    let from = end(cluster, &conn.from)?;
    let to = end(cluster, &conn.to)?;
    if let (End::Pod(a, _), End::Pod(b, _)) = (&from, &to)
        && a == b
    {
        return Some(true);
    }
    let egress_ok = match &from {
        End::Pod(key, pod) => direction_allows(cluster, key, pod, &to, conn, false),
        End::Ip(_) => true,
    };
    let ingress_ok = match &to {
        End::Pod(key, pod) => direction_allows(cluster, key, pod, &from, conn, true),
        End::Ip(_) => true,
    };
    Some(egress_ok && ingress_ok)
}

enum End<'a> {
    Pod(ObjectKey, &'a Pod),
    Ip(IpAddr),
}

fn end<'a>(cluster: &'a Cluster, e: &Endpoint) -> Option<End<'a>> {
    match e {
        Endpoint::Ip(ip) => Some(End::Ip(*ip)),
        Endpoint::Pod(k) => {
            let pod = cluster.pod(k)?;
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            if matches!(phase, Some("Succeeded" | "Failed")) {
                return None;
            }
            Some(End::Pod(k.clone(), pod))
        }
    }
}

fn host_network(pod: &Pod) -> bool {
    pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false)
}

/// "isolated for ingress if any NetworkPolicy selects the pod and has Ingress in its policyTypes" — and then only
/// what some such policy's rules allow gets in. Same for egress.
fn direction_allows(
    cluster: &Cluster,
    key: &ObjectKey,
    pod: &Pod,
    other: &End<'_>,
    conn: &Connection,
    ingress: bool,
) -> bool {
    if host_network(pod) {
        return true;
    }
    let no_labels = Labels::new();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&no_labels);
    let mut isolated = false;
    for (pkey, np) in cluster.policies() {
        if pkey.namespace != key.namespace {
            continue;
        }
        let Some(spec) = np.spec.as_ref() else {
            // No spec: an empty podSelector, Ingress by default, no rules.
            isolated |= ingress;
            continue;
        };
        let everything = LabelSelector::default();
        if !selector_matches(spec.pod_selector.as_ref().unwrap_or(&everything), labels) {
            continue;
        }
        let types = spec.policy_types.as_deref().unwrap_or_default();
        let has_type = if types.is_empty() {
            // Defaulting (SetDefaults_NetworkPolicy): Ingress, plus Egress when there are egress rules.
            ingress || spec.egress.as_ref().is_some_and(|e| !e.is_empty())
        } else {
            types.iter().any(|t| t == if ingress { "Ingress" } else { "Egress" })
        };
        if !has_type {
            continue;
        }
        isolated = true;
        if rules_allow(cluster, np, other, conn, ingress) {
            return true;
        }
    }
    !isolated
}

fn rules_allow(cluster: &Cluster, np: &NetworkPolicy, other: &End<'_>, conn: &Connection, ingress: bool) -> bool {
    let Some(spec) = np.spec.as_ref() else { return false };
    let policy_ns = namespace_of(&np.metadata);
    let rules: Vec<(&[NetworkPolicyPeer], &[NetworkPolicyPort])> = if ingress {
        spec.ingress
            .iter()
            .flatten()
            .map(|r| (r.from.as_deref().unwrap_or_default(), r.ports.as_deref().unwrap_or_default()))
            .collect()
    } else {
        spec.egress
            .iter()
            .flatten()
            .map(|r| (r.to.as_deref().unwrap_or_default(), r.ports.as_deref().unwrap_or_default()))
            .collect()
    };
    // Named ports are looked up on the connection's destination.
    let dest_pod = match &conn.to {
        Endpoint::Pod(k) => cluster.pod(k),
        Endpoint::Ip(_) => None,
    };
    rules.iter().any(|(peers, ports)| {
        let peer_ok = peers.is_empty() || peers.iter().any(|p| peer_matches(cluster, p, policy_ns, other, conn.family));
        let port_ok = ports.is_empty() || ports.iter().any(|p| port_matches(p, conn, dest_pod));
        peer_ok && port_ok
    })
}

fn peer_matches(
    cluster: &Cluster,
    peer: &NetworkPolicyPeer,
    policy_ns: &str,
    other: &End<'_>,
    family: IpFamily,
) -> bool {
    if let Some(block) = &peer.ip_block {
        let ip = match other {
            End::Ip(ip) => Some(*ip),
            End::Pod(_, pod) => PodFacts::of(pod).ip(family),
        };
        let Some(ip) = ip else { return false };
        let Some(cidr) = parse_cidr_sloppy(&block.cidr) else { return false };
        let excepted = block.except.iter().flatten().filter_map(|e| parse_cidr_sloppy(e)).any(|e| e.contains(&ip));
        return cidr.contains(&ip) && !excepted;
    }
    let End::Pod(key, pod) = other else { return false };
    if host_network(pod) {
        return false;
    }
    let ns_ok = match &peer.namespace_selector {
        None => key.namespace == policy_ns,
        Some(sel) => {
            // A namespace that is not declared still carries its name label.
            let implicit = Labels::from([(NAMESPACE_NAME_LABEL.to_owned(), key.namespace.clone())]);
            let declared = cluster.namespace(&key.namespace).and_then(|n| n.metadata.labels.as_ref());
            selector_matches(sel, declared.unwrap_or(&implicit))
        }
    };
    let pod_ok = match &peer.pod_selector {
        None => true,
        Some(sel) => selector_matches(sel, pod.metadata.labels.as_ref().unwrap_or(&Labels::new())),
    };
    ns_ok && pod_ok
}

fn port_matches(p: &NetworkPolicyPort, conn: &Connection, dest_pod: Option<&Pod>) -> bool {
    let protocol = p.protocol.as_deref().unwrap_or("TCP");
    if protocol != conn.protocol.as_str() {
        return false;
    }
    match &p.port {
        None => true,
        Some(IntOrString::Int(n)) => {
            let end = p.end_port.unwrap_or(*n);
            *n <= i32::from(conn.port) && i32::from(conn.port) <= end
        }
        Some(IntOrString::String(name)) => dest_pod.is_some_and(|pod| {
            pod.spec.iter().flat_map(|s| &s.containers).flat_map(|c| c.ports.iter().flatten()).any(|cp| {
                cp.name.as_deref() == Some(name)
                    && cp.container_port == i32::from(conn.port)
                    && cp.protocol.as_deref().unwrap_or("TCP").parse::<Protocol>().ok() == Some(conn.protocol)
            })
        }),
    }
}

/// matchLabels and matchExpressions are ANDed; an empty selector selects everything.
fn selector_matches(sel: &LabelSelector, labels: &Labels) -> bool {
    let labels_ok = sel.match_labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = sel.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let v = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => v.is_some_and(|v| values.contains(v)),
            "NotIn" => v.is_none_or(|v| !values.contains(v)),
            "Exists" => v.is_some(),
            "DoesNotExist" => v.is_none(),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}
