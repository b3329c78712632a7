//! Manifests as workloads: Deployments, StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs,
//! CronJobs and bare Pods, each with its pod template's labels and container ports; plus Services.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::networking::v1::NetworkPolicy;
use palisade_engine::load::{Loaded, Origin};
use palisade_engine::model::{ContainerPort, Labels, NAMESPACE_NAME_LABEL, namespace_of};
use palisade_engine::{Object, Protocol};
use serde_json::Value;

/// The kinds whose pod template makes a workload.
pub const WORKLOAD_KINDS: [&str; 7] =
    ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob"];

/// Something that runs pods, named `namespace/name[Kind]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub namespace: String,
    pub name: String,
    pub kind: String,
    pub labels: Labels,
    pub ports: Vec<ContainerPort>,
    /// Pod addresses, when the manifests carry them (`status.podIPs`).
    pub ips: Vec<std::net::IpAddr>,
    pub origin: Origin,
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}[{}]", self.namespace, self.name, self.kind)
    }
}

/// A Service port: what clients dial (`port`) and what the pod serves (`targetPort`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub name: Option<String>,
    pub port: i64,
    pub target: Option<Value>,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub namespace: String,
    pub name: String,
    pub selector: Labels,
    pub ports: Vec<ServicePort>,
    pub origin: Origin,
}

/// Everything the analysis reads from a set of manifests.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// Every namespace that is declared or holds a workload, with its labels (always with the name label).
    pub namespaces: BTreeMap<String, Labels>,
    pub workloads: Vec<Workload>,
    pub policies: Vec<(Origin, NetworkPolicy)>,
    pub services: Vec<Service>,
    /// ClusterNetworkPolicies, AdminNetworkPolicies and the BaselineAdminNetworkPolicy (for `lint`).
    pub tier_policies: Vec<(Origin, palisade_engine::cnp::ClusterObject)>,
}

fn labels_at(v: &Value) -> Labels {
    v.as_object()
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned()))).collect())
        .unwrap_or_default()
}

fn ports_of_containers(containers: Option<&Value>) -> Vec<ContainerPort> {
    let mut out = Vec::new();
    for c in containers.and_then(Value::as_array).into_iter().flatten() {
        for p in c.get("ports").and_then(Value::as_array).into_iter().flatten() {
            let Some(port) = p.get("containerPort").and_then(Value::as_u64).and_then(|n| u16::try_from(n).ok()) else {
                continue;
            };
            let protocol = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP").parse().unwrap_or(Protocol::Tcp);
            out.push(ContainerPort { name: p.get("name").and_then(Value::as_str).map(str::to_owned), port, protocol });
        }
    }
    out
}

fn str_at<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    v.pointer(path).and_then(Value::as_str)
}

impl Model {
    pub fn from_loaded(loaded: &Loaded) -> Model {
        let mut m = Model::default();
        let mut by_owner: BTreeMap<(String, String, String), usize> = BTreeMap::new();
        m.tier_policies = crate::tierlint::tier_objects(loaded);
        for o in &loaded.objects {
            match &o.value {
                Object::Namespace(ns) => {
                    let name = ns.metadata.name.clone().unwrap_or_default();
                    let mut labels = ns.metadata.labels.clone().unwrap_or_default();
                    labels.entry(NAMESPACE_NAME_LABEL.to_owned()).or_insert_with(|| name.clone());
                    m.namespaces.insert(name, labels);
                }
                Object::NetworkPolicy(p) => m.policies.push((o.origin.clone(), p.clone())),
                Object::Pod(p) => {
                    let name = p.metadata.name.clone().unwrap_or_default();
                    if name.starts_with("virt-launcher-") {
                        continue;
                    }
                    let namespace = namespace_of(&p.metadata).to_owned();
                    let owner = p
                        .metadata
                        .owner_references
                        .iter()
                        .flatten()
                        .find(|r| r.controller == Some(true) && r.kind != "Node");
                    let (wname, kind) = match owner {
                        Some(r) => (r.name.clone(), if r.kind.is_empty() { "Pod".to_owned() } else { r.kind.clone() }),
                        None => (name.clone(), "Pod".to_owned()),
                    };
                    // Replicas of one owner are one workload (the first pod's labels and ports).
                    let key = (namespace.clone(), wname.clone(), kind.clone());
                    let facts = palisade_engine::model::PodFacts::of(p);
                    if let Some(&i) = by_owner.get(&key) {
                        m.workloads[i].ips.extend(facts.ips);
                        continue;
                    }
                    by_owner.insert(key, m.workloads.len());
                    m.workloads.push(Workload {
                        namespace,
                        name: wname,
                        kind,
                        labels: p.metadata.labels.clone().unwrap_or_default(),
                        ports: facts.ports,
                        ips: facts.ips,
                        origin: o.origin.clone(),
                    });
                }
            }
        }
        for s in &loaded.skipped {
            let v = &s.value;
            let namespace = str_at(v, "/metadata/namespace").filter(|n| !n.is_empty()).unwrap_or("default").to_owned();
            let name = str_at(v, "/metadata/name").unwrap_or("").to_owned();
            if WORKLOAD_KINDS.contains(&s.kind.as_str()) {
                let template = if s.kind == "CronJob" {
                    v.pointer("/spec/jobTemplate/spec/template")
                } else {
                    v.pointer("/spec/template")
                };
                let template = template.cloned().unwrap_or(Value::Null);
                let key = (namespace.clone(), name.clone(), s.kind.clone());
                if by_owner.contains_key(&key) {
                    continue;
                }
                by_owner.insert(key, m.workloads.len());
                m.workloads.push(Workload {
                    namespace,
                    name,
                    kind: s.kind.clone(),
                    labels: labels_at(template.pointer("/metadata/labels").unwrap_or(&Value::Null)),
                    ports: ports_of_containers(template.pointer("/spec/containers")),
                    ips: Vec::new(),
                    origin: s.origin.clone(),
                });
            } else if s.kind == "Service" {
                let ports = v
                    .pointer("/spec/ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|p| ServicePort {
                        name: p.get("name").and_then(Value::as_str).map(str::to_owned),
                        port: p.get("port").and_then(Value::as_i64).unwrap_or(0),
                        target: p.get("targetPort").cloned(),
                        protocol: p
                            .get("protocol")
                            .and_then(Value::as_str)
                            .unwrap_or("TCP")
                            .parse()
                            .unwrap_or(Protocol::Tcp),
                    })
                    .collect();
                m.services.push(Service {
                    namespace,
                    name,
                    selector: labels_at(v.pointer("/spec/selector").unwrap_or(&Value::Null)),
                    ports,
                    origin: s.origin.clone(),
                });
            }
        }
        for w in &m.workloads {
            m.namespaces
                .entry(w.namespace.clone())
                .or_insert_with(|| Labels::from([(NAMESPACE_NAME_LABEL.to_owned(), w.namespace.clone())]));
        }
        m
    }

    pub fn namespace_labels(&self, ns: &str) -> Labels {
        self.namespaces
            .get(ns)
            .cloned()
            .unwrap_or_else(|| Labels::from([(NAMESPACE_NAME_LABEL.to_owned(), ns.to_owned())]))
    }
}
