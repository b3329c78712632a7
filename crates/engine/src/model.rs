//! The cluster as the apiserver holds it: Namespaces, Pods and NetworkPolicies, keyed like kubectl keys them.
//!
//! Objects are kept as k8s-openapi values; the fast index lowers them, the reference evaluator reads them as they are.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The label every namespace carries (set by the apiserver since Kubernetes 1.21).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

pub type Labels = BTreeMap<String, String>;

/// A transport protocol NetworkPolicy can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub const ALL: [Protocol; 3] = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp];

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "TCP" => Ok(Protocol::Tcp),
            "UDP" => Ok(Protocol::Udp),
            "SCTP" => Ok(Protocol::Sctp),
            _ => Err(format!("unsupported protocol {s:?}: supported values: \"TCP\", \"UDP\", \"SCTP\"")),
        }
    }
}

/// IPv4 or IPv6, for pods with addresses of both families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IpFamily {
    #[default]
    V4,
    V6,
}

impl IpFamily {
    pub fn of(ip: &IpAddr) -> Self {
        if ip.is_ipv4() { IpFamily::V4 } else { IpFamily::V6 }
    }
}

impl fmt::Display for IpFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IpFamily::V4 => "IPv4",
            IpFamily::V6 => "IPv6",
        })
    }
}

/// `namespace/name` of a namespaced object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: &str, name: &str) -> Self {
        ObjectKey { namespace: namespace.to_owned(), name: name.to_owned() }
    }

    /// Parses `NS/NAME`.
    pub fn parse(s: &str) -> Option<Self> {
        let (ns, name) = s.split_once('/')?;
        (!ns.is_empty() && !name.is_empty() && !name.contains('/')).then(|| ObjectKey::new(ns, name))
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A Kubernetes object the engine understands.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    Namespace(Namespace),
    Pod(Box<Pod>),
    NetworkPolicy(NetworkPolicy),
}

impl Object {
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Namespace(_) => "Namespace",
            Object::Pod(_) => "Pod",
            Object::NetworkPolicy(_) => "NetworkPolicy",
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Object::Namespace(o) => &o.metadata,
            Object::Pod(o) => &o.metadata,
            Object::NetworkPolicy(o) => &o.metadata,
        }
    }

    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Object::Namespace(o) => &mut o.metadata,
            Object::Pod(o) => &mut o.metadata,
            Object::NetworkPolicy(o) => &mut o.metadata,
        }
    }

    /// The kind of object this is, as `delete` names it.
    pub fn kind_of(&self) -> Kind {
        match self {
            Object::Namespace(_) => Kind::Namespace,
            Object::Pod(_) => Kind::Pod,
            Object::NetworkPolicy(_) => Kind::NetworkPolicy,
        }
    }

    /// The object's key (for a Namespace, the namespace field is empty).
    pub fn key(&self) -> ObjectKey {
        match self {
            Object::Namespace(ns) => ObjectKey::new("", ns.metadata.name.as_deref().unwrap_or("")),
            _ => key_of(self.metadata()),
        }
    }

    /// `namespace/name` for namespaced objects, `name` for namespaces.
    pub fn display_name(&self) -> String {
        match self {
            Object::Namespace(_) => self.key().name,
            _ => self.key().to_string(),
        }
    }
}

/// The object's namespace, `default` when the manifest leaves it out (as kubectl does).
pub fn namespace_of(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().filter(|n| !n.is_empty()).unwrap_or("default")
}

fn key_of(meta: &ObjectMeta) -> ObjectKey {
    ObjectKey::new(namespace_of(meta), meta.name.as_deref().unwrap_or(""))
}

/// Which kind a `delete` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Namespace,
    Pod,
    NetworkPolicy,
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "namespace" | "namespaces" | "ns" => Ok(Kind::Namespace),
            "pod" | "pods" | "po" => Ok(Kind::Pod),
            "networkpolicy" | "networkpolicies" | "netpol" => Ok(Kind::NetworkPolicy),
            _ => Err(format!("unknown kind {s:?} (expected Namespace, Pod or NetworkPolicy)")),
        }
    }
}

/// The objects of one cluster, as `kubectl apply` leaves them: applying an object replaces the one with its key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cluster {
    namespaces: BTreeMap<String, Namespace>,
    pods: BTreeMap<ObjectKey, Pod>,
    policies: BTreeMap<ObjectKey, NetworkPolicy>,
    /// ClusterNetworkPolicies, AdminNetworkPolicies, the BaselineAdminNetworkPolicy and Nodes, by kind and name.
    cluster_objects: BTreeMap<(crate::cnp::ClusterKind, String), crate::cnp::ClusterObject>,
}

impl Cluster {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_objects(objects: impl IntoIterator<Item = Object>) -> Self {
        let mut c = Cluster::new();
        for o in objects {
            c.apply(o);
        }
        c
    }

    /// Creates or replaces the object. Namespaces get their `kubernetes.io/metadata.name` label, as the apiserver sets it.
    pub fn apply(&mut self, object: Object) {
        match object {
            Object::Namespace(mut ns) => {
                let name = ns.metadata.name.clone().unwrap_or_default();
                ns.metadata
                    .labels
                    .get_or_insert_with(Default::default)
                    .insert(NAMESPACE_NAME_LABEL.to_owned(), name.clone());
                self.namespaces.insert(name, ns);
            }
            Object::Pod(mut p) => {
                let key = key_of(&p.metadata);
                p.metadata.namespace = Some(key.namespace.clone());
                self.pods.insert(key, *p);
            }
            Object::NetworkPolicy(mut p) => {
                let key = key_of(&p.metadata);
                p.metadata.namespace = Some(key.namespace.clone());
                self.policies.insert(key, p);
            }
        }
    }

    /// Removes an object; returns whether it existed. Deleting a namespace deletes what is in it, as the apiserver does.
    pub fn delete(&mut self, kind: Kind, namespace: &str, name: &str) -> bool {
        match kind {
            Kind::Namespace => {
                let existed = self.namespaces.remove(name).is_some();
                let before = self.pods.len() + self.policies.len();
                self.pods.retain(|k, _| k.namespace != name);
                self.policies.retain(|k, _| k.namespace != name);
                existed || before != self.pods.len() + self.policies.len()
            }
            Kind::Pod => self.pods.remove(&ObjectKey::new(namespace, name)).is_some(),
            Kind::NetworkPolicy => self.policies.remove(&ObjectKey::new(namespace, name)).is_some(),
        }
    }

    pub fn pods(&self) -> impl Iterator<Item = (&ObjectKey, &Pod)> {
        self.pods.iter()
    }

    pub fn pod(&self, key: &ObjectKey) -> Option<&Pod> {
        self.pods.get(key)
    }

    pub fn policies(&self) -> impl Iterator<Item = (&ObjectKey, &NetworkPolicy)> {
        self.policies.iter()
    }

    pub fn policy(&self, key: &ObjectKey) -> Option<&NetworkPolicy> {
        self.policies.get(key)
    }

    /// Declared namespaces and the ones pods or policies refer to, each with its labels
    /// (an undeclared namespace has only `kubernetes.io/metadata.name`).
    pub fn namespaces(&self) -> BTreeMap<String, Labels> {
        let mut out: BTreeMap<String, Labels> = self
            .namespaces
            .iter()
            .map(|(name, ns)| (name.clone(), ns.metadata.labels.clone().unwrap_or_default()))
            .collect();
        for key in self.pods.keys().chain(self.policies.keys()) {
            out.entry(key.namespace.clone())
                .or_insert_with(|| Labels::from([(NAMESPACE_NAME_LABEL.to_owned(), key.namespace.clone())]));
        }
        out
    }

    /// Creates or replaces a cluster-scoped object (tier policy or Node).
    pub fn apply_cluster(&mut self, object: crate::cnp::ClusterObject) {
        self.cluster_objects.insert((object.kind(), object.name().to_owned()), object);
    }

    /// Removes a cluster-scoped object; returns whether it existed.
    pub fn delete_cluster(&mut self, kind: crate::cnp::ClusterKind, name: &str) -> bool {
        self.cluster_objects.remove(&(kind, name.to_owned())).is_some()
    }

    /// Cluster-scoped objects in kind/name order.
    pub fn cluster_objects(&self) -> impl Iterator<Item = &crate::cnp::ClusterObject> {
        self.cluster_objects.values()
    }

    /// Every tier policy (ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy) as a v1alpha2 spec.
    pub fn tier_policies(&self) -> Vec<crate::cnp::TierPolicy> {
        self.cluster_objects.values().filter_map(crate::cnp::ClusterObject::as_policy).collect()
    }

    /// The Nodes, in name order.
    pub fn nodes(&self) -> impl Iterator<Item = &k8s_openapi::api::core::v1::Node> {
        self.cluster_objects.values().filter_map(|o| match o {
            crate::cnp::ClusterObject::Node(n) => Some(n.as_ref()),
            _ => None,
        })
    }

    /// The declared Namespace object, if any.
    pub fn namespace(&self, name: &str) -> Option<&Namespace> {
        self.namespaces.get(name)
    }
}

/// Facts about a pod that NetworkPolicy semantics depend on, read from its manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodFacts {
    pub labels: Labels,
    pub ips: Vec<IpAddr>,
    pub ports: Vec<ContainerPort>,
    pub host_network: bool,
    /// `status.phase` is `Succeeded` or `Failed`: the pod no longer runs and its IP may belong to another pod.
    pub terminated: bool,
}

/// A declared container port: `containerPort`, `protocol` (default TCP), optional `name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerPort {
    pub name: Option<String>,
    pub port: u16,
    pub protocol: Protocol,
}

impl PodFacts {
    pub fn of(pod: &Pod) -> Self {
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        let spec = pod.spec.as_ref();
        let status = pod.status.as_ref();
        let mut ips: Vec<IpAddr> = Vec::new();
        if let Some(st) = status {
            let listed = st.pod_ips.iter().flatten().map(|p| p.ip.as_str());
            for s in st.pod_ip.as_deref().into_iter().chain(listed) {
                if let Ok(ip) = s.trim().parse::<IpAddr>()
                    && !ips.contains(&ip)
                {
                    ips.push(ip);
                }
            }
        }
        let mut ports = Vec::new();
        for c in spec.map(|s| s.containers.as_slice()).unwrap_or_default() {
            for p in c.ports.iter().flatten() {
                let Ok(port) = u16::try_from(p.container_port) else { continue };
                let protocol = p.protocol.as_deref().unwrap_or("TCP").parse().unwrap_or(Protocol::Tcp);
                ports.push(ContainerPort { name: p.name.clone(), port, protocol });
            }
        }
        ports.sort();
        ports.dedup();
        let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("");
        PodFacts {
            labels,
            ips,
            ports,
            host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
            terminated: matches!(phase, "Succeeded" | "Failed"),
        }
    }

    pub fn ip(&self, family: IpFamily) -> Option<IpAddr> {
        self.ips.iter().copied().find(|ip| IpFamily::of(ip) == family)
    }
}
