//! The reference evaluator: the NetworkPolicy API documentation and the ClusterNetworkPolicy API text (tiers,
//! priorities, first match) read literally, straight off the objects, with no precomputation. Slow by design; the fast [`crate::Index`] must always agree with it.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::cidr::parse_cidr_sloppy;
use crate::cnp::{
    Action, ClusterNetworkPolicyEgressPeer, ClusterNetworkPolicyIngressPeer, ClusterNetworkPolicyProtocol,
    ClusterNetworkPolicySubject, NamespacedPod, TierPolicy,
};
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
        End::Pod(key, pod) => side_allows(cluster, key, pod, &to, conn, false),
        End::Ip(_) => true,
    };
    let ingress_ok = match &to {
        End::Pod(key, pod) => side_allows(cluster, key, pod, &from, conn, true),
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

/// One side, through the tiers: the Admin tier's first matching rule (Accept, Deny; Pass leaves the tier),
/// then NetworkPolicy if it isolates this direction, then the Baseline tier's first matching rule, then allow.
/// A host-network pod is a host: it is no subject, and NetworkPolicy does not apply to it either.
fn side_allows(
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
    let policies = cluster.tier_policies();
    match tier_action(cluster, &policies, "Admin", key, pod, other, conn, ingress) {
        Some(Action::Accept) => return true,
        Some(Action::Deny) => return false,
        Some(Action::Pass) | None => {}
    }
    if let Some(allowed) = direction_allows(cluster, key, pod, other, conn, ingress) {
        return allowed;
    }
    !matches!(tier_action(cluster, &policies, "Baseline", key, pod, other, conn, ingress), Some(Action::Deny))
}

/// The action of the first rule of `tier` that matches, walking its policies by ascending priority (then
/// name, then kind: equal priorities are undefined by the API) and each policy's rules as written.
#[expect(clippy::too_many_arguments, reason = "the side's facts, spelled out as the API text names them")]
fn tier_action(
    cluster: &Cluster,
    policies: &[TierPolicy],
    tier: &str,
    key: &ObjectKey,
    pod: &Pod,
    other: &End<'_>,
    conn: &Connection,
    ingress: bool,
) -> Option<Action> {
    let mut in_tier: Vec<&TierPolicy> = policies.iter().filter(|p| p.spec.tier.as_deref() == Some(tier)).collect();
    in_tier.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
    let no_labels = Labels::new();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&no_labels);
    let ns_labels = namespace_labels(cluster, &key.namespace);
    // Named ports resolve on the destination, when it is a pod that is not host-network.
    let dest_pod = match &conn.to {
        Endpoint::Pod(k) => cluster.pod(k).filter(|p| !host_network(p)),
        Endpoint::Ip(_) => None,
    };
    for p in in_tier {
        if !subject_selects(p.spec.subject.as_ref(), &ns_labels, labels) {
            continue;
        }
        let rules: Vec<RuleView<'_>> = if ingress {
            p.spec
                .ingress
                .iter()
                .flatten()
                .map(|r| {
                    let peer = r
                        .from
                        .iter()
                        .flatten()
                        .any(|peer| ingress_peer_matches(cluster, peer, r.action.as_deref(), other));
                    (&r.action, peer, &r.protocols)
                })
                .collect()
        } else {
            p.spec
                .egress
                .iter()
                .flatten()
                .map(|r| {
                    let peer =
                        r.to.iter()
                            .flatten()
                            .any(|peer| egress_peer_matches(cluster, peer, r.action.as_deref(), other, conn.family));
                    (&r.action, peer, &r.protocols)
                })
                .collect()
        };
        for (action, peer_ok, protocols) in rules {
            let Some(action) = action.as_deref().and_then(Action::parse) else { continue };
            let port_ok = match protocols {
                None => true,
                Some(entries) => entries.iter().any(|e| protocol_matches(e, conn, dest_pod)),
            };
            if peer_ok && port_ok {
                return Some(action);
            }
        }
    }
    None
}

/// A rule's action, whether one of its peers matches, and its protocols.
type RuleView<'a> = (&'a Option<String>, bool, &'a Option<Vec<ClusterNetworkPolicyProtocol>>);

fn namespace_labels(cluster: &Cluster, namespace: &str) -> Labels {
    let implicit = Labels::from([(NAMESPACE_NAME_LABEL.to_owned(), namespace.to_owned())]);
    cluster.namespace(namespace).and_then(|n| n.metadata.labels.clone()).unwrap_or(implicit)
}

/// A subject names exactly one of `namespaces` and `pods` (`pods.namespaceSelector` defaults to `{}`).
fn subject_selects(subject: Option<&ClusterNetworkPolicySubject>, ns_labels: &Labels, labels: &Labels) -> bool {
    match subject {
        Some(ClusterNetworkPolicySubject { namespaces: Some(ns), pods: None }) => selector_matches(ns, ns_labels),
        Some(ClusterNetworkPolicySubject { namespaces: None, pods: Some(p) }) => {
            namespaced_pod_matches(p, ns_labels, labels)
        }
        _ => false,
    }
}

fn namespaced_pod_matches(p: &NamespacedPod, ns_labels: &Labels, labels: &Labels) -> bool {
    let everything = LabelSelector::default();
    selector_matches(p.namespace_selector.as_ref().unwrap_or(&everything), ns_labels)
        && selector_matches(p.pod_selector.as_ref().unwrap_or(&everything), labels)
}

/// `namespaces` / `pods` peers match pods that are not host-network; nothing else.
fn pod_peer_matches(
    cluster: &Cluster,
    namespaces: &Option<LabelSelector>,
    pods: &Option<NamespacedPod>,
    other: &End<'_>,
) -> bool {
    let End::Pod(key, pod) = other else { return false };
    if host_network(pod) {
        return false;
    }
    let ns_labels = namespace_labels(cluster, &key.namespace);
    let no_labels = Labels::new();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&no_labels);
    match (namespaces, pods) {
        (Some(ns), None) => selector_matches(ns, &ns_labels),
        (None, Some(p)) => namespaced_pod_matches(p, &ns_labels, labels),
        _ => false,
    }
}

/// A peer with no field (or several) fails closed: it matches nothing in an Accept rule, everything otherwise.
fn fail_closed(action: Option<&str>) -> bool {
    action != Some("Accept")
}

fn ingress_peer_matches(
    cluster: &Cluster,
    peer: &ClusterNetworkPolicyIngressPeer,
    action: Option<&str>,
    other: &End<'_>,
) -> bool {
    if peer.namespaces.is_some() == peer.pods.is_some() {
        return fail_closed(action);
    }
    pod_peer_matches(cluster, &peer.namespaces, &peer.pods, other)
}

fn egress_peer_matches(
    cluster: &Cluster,
    peer: &ClusterNetworkPolicyEgressPeer,
    action: Option<&str>,
    other: &End<'_>,
    family: IpFamily,
) -> bool {
    let fields = [
        peer.namespaces.is_some(),
        peer.pods.is_some(),
        peer.networks.is_some(),
        peer.nodes.is_some(),
        peer.domain_names.is_some(),
    ];
    if fields.iter().filter(|b| **b).count() != 1 {
        return fail_closed(action);
    }
    // The address compared with networks and nodes: the pod's of the connection's family, or the host's.
    let ip = match other {
        End::Ip(ip) => Some(*ip),
        End::Pod(_, pod) => PodFacts::of(pod).ip(family),
    };
    if let Some(nets) = &peer.networks {
        return ip.is_some_and(|ip| {
            nets.iter().filter_map(|n| n.trim().parse::<ipnet::IpNet>().ok()).any(|n| n.contains(&ip))
        });
    }
    if let Some(sel) = &peer.nodes {
        return ip.is_some_and(|ip| {
            cluster.nodes().any(|node| {
                selector_matches(sel, node.metadata.labels.as_ref().unwrap_or(&Labels::new()))
                    && node.status.iter().flat_map(|s| s.addresses.iter().flatten()).any(|a| {
                        (a.type_ == "InternalIP" || a.type_ == "ExternalIP")
                            && a.address.trim().parse::<IpAddr>().ok() == Some(ip)
                    })
            })
        });
    }
    if peer.domain_names.is_some() {
        // Not enforced: no name is resolved, so no address matches.
        return false;
    }
    pod_peer_matches(cluster, &peer.namespaces, &peer.pods, other)
}

/// `tcp`/`udp`/`sctp` with a number or an inclusive range, or a named port of the destination pod (its
/// number and protocol).
fn protocol_matches(e: &ClusterNetworkPolicyProtocol, conn: &Connection, dest_pod: Option<&Pod>) -> bool {
    let numbered = [(Protocol::Tcp, &e.tcp), (Protocol::Udp, &e.udp), (Protocol::Sctp, &e.sctp)];
    let set = numbered.iter().filter(|(_, x)| x.is_some()).count() + usize::from(e.destination_named_port.is_some());
    if set != 1 {
        return false;
    }
    if let Some(name) = &e.destination_named_port {
        return dest_pod.is_some_and(|pod| {
            pod.spec.iter().flat_map(|s| &s.containers).flat_map(|c| c.ports.iter().flatten()).any(|cp| {
                cp.name.as_deref() == Some(name)
                    && cp.container_port == i32::from(conn.port)
                    && cp.protocol.as_deref().unwrap_or("TCP").parse::<Protocol>().ok() == Some(conn.protocol)
            })
        });
    }
    numbered.iter().any(|(proto, pp)| {
        let Some(port) = pp.as_ref().and_then(|pp| pp.destination_port.as_ref()) else { return false };
        let n = i64::from(conn.port);
        *proto == conn.protocol
            && match (port.number, &port.range) {
                (Some(x), None) => x == n,
                (None, Some(r)) => r.start.is_some_and(|s| s <= n) && r.end.is_some_and(|e| n <= e),
                _ => false,
            }
    })
}

/// "isolated for ingress if any NetworkPolicy selects the pod and has Ingress in its policyTypes" — and then only
/// what some such policy's rules allow gets in. Same for egress. `None`: not isolated in this direction.
fn direction_allows(
    cluster: &Cluster,
    key: &ObjectKey,
    pod: &Pod,
    other: &End<'_>,
    conn: &Connection,
    ingress: bool,
) -> Option<bool> {
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
            return Some(true);
        }
    }
    isolated.then_some(false)
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
