//! What the agent learns about the cluster, from whichever source: one seam, [`Change`] events on a channel.

use std::time::Instant;

use palisade_engine::cnp::{ClusterKind, ClusterObject};
use palisade_engine::{Kind, Object};

/// One thing a source observed.
// Events are short-lived and mostly `Apply`: boxing it would only add an allocation per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Change {
    /// An object was created or modified.
    Apply(Object),
    /// An object was deleted.
    Delete { kind: Kind, namespace: String, name: String },
    /// A (re-)list: every object of `kind` is now exactly `objects`. The first one of each kind completes
    /// the initial state; later ones follow a restarted watch (e.g. after `410 Gone`).
    Relisted { kind: Kind, objects: Vec<Object> },
    /// The end of a (re-)list whose objects came as `Apply`s: every object of `kind` not in `keys` is gone.
    /// Sources stream long lists this way so that they never hold every object at once.
    Listed { kind: Kind, keys: std::collections::BTreeSet<palisade_engine::ObjectKey> },
    /// An object the source could not use (malformed, invalid): reported and skipped.
    Invalid { message: String },
    /// The source's position after the changes before it (the directory source's `.revision` file).
    Revision(String),
    /// This node's pod address ranges as its Node object states them (`spec.podCIDRs`).
    NodeRanges(Vec<ipnet::IpNet>),
    /// A cluster-scoped object (ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy,
    /// Node) was created or modified.
    ApplyCluster(ClusterObject),
    /// A cluster-scoped object was deleted.
    DeleteCluster { kind: ClusterKind, name: String },
    /// A (re-)list of a cluster-scoped kind: its objects are now exactly `objects`. A source whose cluster
    /// does not serve the kind (its CRD is not installed) sends it empty, so the kind counts as listed.
    RelistedCluster { kind: ClusterKind, objects: Vec<ClusterObject> },
}

/// A change and when the agent received it (for event-to-kernel latency).
#[derive(Debug, Clone)]
pub struct Event {
    pub change: Change,
    pub at: Instant,
}

impl Event {
    pub fn now(change: Change) -> Self {
        Event { change, at: Instant::now() }
    }
}

/// Where events go: a channel to the reconcile loop.
pub type Sink = std::sync::mpsc::Sender<Event>;

/// Every kind the agent watches.
pub const KINDS: [Kind; 3] = [Kind::Namespace, Kind::Pod, Kind::NetworkPolicy];

/// Every cluster-scoped kind the agent watches: the tier policies and the Nodes their `nodes` peer reads.
/// Each must be listed once (possibly empty: a CRD that is not installed) before anything is enforced.
pub const CLUSTER_KINDS: [ClusterKind; 4] = [
    ClusterKind::ClusterNetworkPolicy,
    ClusterKind::AdminNetworkPolicy,
    ClusterKind::BaselineAdminNetworkPolicy,
    ClusterKind::Node,
];

/// Keeps from a Node only what the `nodes` peer reads (name, labels, `status.addresses`) and what the agent
/// reads of its own Node (`spec.podCIDR(s)`), so that a large cluster's Nodes cost little.
pub fn strip_node(node: &mut k8s_openapi::api::core::v1::Node) {
    use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus};
    strip_meta(&mut node.metadata);
    node.metadata.owner_references = None;
    node.metadata.finalizers = None;
    node.spec =
        node.spec.take().map(|s| NodeSpec { pod_cidr: s.pod_cidr, pod_cidrs: s.pod_cidrs, ..NodeSpec::default() });
    node.status = node.status.take().map(|s| NodeStatus { addresses: s.addresses, ..NodeStatus::default() });
}

/// Validates a tier policy as the engine does (the CRD's schema and CEL rules, selector syntax): `Err` with
/// every error on one line, the object named as the apiserver names it.
pub fn check_cluster_object(o: &ClusterObject) -> Result<(), String> {
    let errors = palisade_engine::cnp::validate::validate_cluster_object(o);
    if errors.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let (api_version, kind) = o.type_meta();
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    let qualified = if group.is_empty() { kind.to_owned() } else { format!("{kind}.{group}") };
    Err(format!("{qualified} {:?} is invalid: {}", o.name(), list.join(", ")))
}

/// Keeps from a Pod only what the engine and the agent need (labels, node, ports, addresses, phase), so
/// that 10,000 watched pods cost little memory.
pub fn strip_pod(pod: &mut k8s_openapi::api::core::v1::Pod) {
    use k8s_openapi::api::core::v1::{Container, PodSpec, PodStatus};
    let m = &mut pod.metadata;
    m.annotations = None;
    m.managed_fields = None;
    m.owner_references = None;
    m.finalizers = None;
    m.generate_name = None;
    pod.spec = pod.spec.take().map(|s| PodSpec {
        node_name: s.node_name,
        host_network: s.host_network,
        containers: s
            .containers
            .into_iter()
            .filter(|c| c.ports.as_ref().is_some_and(|p| !p.is_empty()))
            .map(|c| Container { name: c.name, ports: c.ports, ..Container::default() })
            .collect(),
        ..PodSpec::default()
    });
    pod.status = pod.status.take().map(|s| PodStatus {
        phase: s.phase,
        pod_ip: s.pod_ip,
        pod_ips: s.pod_ips,
        ..PodStatus::default()
    });
}

/// Keeps from any object only its identity, labels and spec (policies and namespaces are small already).
pub fn strip_meta(meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) {
    meta.annotations = None;
    meta.managed_fields = None;
}
