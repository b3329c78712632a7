//! A cluster that changes one object at a time, with its [`Index`] kept across changes that allow it.
//!
//! The sandbox and the node agent both feed objects into a `Store` and ask it for the index after each
//! batch. A pod whose only change is its labels is moved in the existing index
//! ([`Index::relabel_pod`], proven equal to a rebuild); any other change drops the index, to be rebuilt
//! on the next [`Store::index`].

use crate::Index;
use crate::model::{Cluster, Kind, Object, ObjectKey, PodFacts};

/// The objects of a cluster and, when still valid, their index.
#[derive(Debug, Clone, Default)]
pub struct Store {
    cluster: Cluster,
    index: Option<Index>,
}

impl Store {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_cluster(cluster: Cluster) -> Self {
        Store { cluster, index: None }
    }

    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Whether the next [`Store::index`] rebuilds.
    pub fn needs_rebuild(&self) -> bool {
        self.index.is_none()
    }

    /// Creates or replaces an object. Returns `false` when it was already there, unchanged.
    pub fn apply(&mut self, o: Object) -> bool {
        let key = o.key();
        match &o {
            Object::Pod(p) => {
                let new = PodFacts::of(p);
                let old = self.cluster.pod(&key);
                if old.is_some_and(|old| **p == *old) {
                    return false;
                }
                let old = old.map(PodFacts::of);
                if old.as_ref() == Some(&new) {
                    // Nothing NetworkPolicy depends on changed (annotations, other status fields).
                    self.cluster.apply(o);
                    return true;
                }
                if let Some(index) = self.index.as_mut() {
                    let same_but_labels = old.as_ref().is_some_and(|old| {
                        old.ips == new.ips
                            && old.ports == new.ports
                            && old.host_network == new.host_network
                            && old.terminated == new.terminated
                    });
                    if !(same_but_labels && index.relabel_pod(&key, &new.labels)) {
                        index.upsert_pod(&key, new);
                    }
                }
            }
            Object::Namespace(n) => {
                if self.cluster.namespace(&key.name).is_some_and(|old| same_namespace(old, n)) {
                    return false;
                }
                // Namespace labels change what selectors match everywhere: rebuild.
                self.index = None;
            }
            Object::NetworkPolicy(p) => {
                if self.cluster.policy(&key).is_some_and(|old| old.spec == p.spec && old.metadata == p.metadata) {
                    return false;
                }
                if let Some(index) = self.index.as_mut() {
                    index.upsert_policy(p);
                }
            }
        }
        self.cluster.apply(o);
        true
    }

    /// Deletes an object (a namespace takes its pods and policies with it). Returns whether it existed.
    pub fn delete(&mut self, kind: Kind, namespace: &str, name: &str) -> bool {
        let existed = self.cluster.delete(kind, namespace, name);
        if existed {
            let key = ObjectKey::new(namespace, name);
            match (kind, self.index.as_mut()) {
                (Kind::Pod, Some(index)) => {
                    index.remove_pod(&key);
                }
                (Kind::NetworkPolicy, Some(index)) => {
                    index.remove_policy(&key);
                }
                _ => self.index = None,
            }
        }
        existed
    }

    /// Makes the objects of `kind` exactly `objects` (a re-list): the missing ones are deleted, the rest
    /// applied. Returns whether anything changed.
    pub fn replace_kind(&mut self, kind: Kind, objects: Vec<Object>) -> bool {
        let keep: std::collections::BTreeSet<ObjectKey> = objects.iter().map(Object::key).collect();
        let existing: Vec<ObjectKey> = match kind {
            Kind::Namespace => self
                .cluster
                .namespaces()
                .keys()
                .filter(|n| self.cluster.namespace(n).is_some())
                .map(|n| ObjectKey::new("", n))
                .collect(),
            Kind::Pod => self.cluster.pods().map(|(k, _)| k.clone()).collect(),
            Kind::NetworkPolicy => self.cluster.policies().map(|(k, _)| k.clone()).collect(),
        };
        let mut changed = false;
        for k in existing.iter().filter(|k| !keep.contains(k)) {
            changed |= match kind {
                // A namespace missing from a re-list goes, but not what the other kinds' lists still hold.
                Kind::Namespace => self.delete_namespace_object(&k.name),
                _ => self.delete(kind, &k.namespace, &k.name),
            };
        }
        for o in objects {
            changed |= self.apply(o);
        }
        changed
    }

    /// Removes a Namespace object only (its labels), keeping pods and policies, which their own watches own.
    pub fn delete_namespace_object(&mut self, name: &str) -> bool {
        let Some(_) = self.cluster.namespace(name) else { return false };
        let keep: Vec<Object> = self
            .cluster
            .pods()
            .filter(|(k, _)| k.namespace == name)
            .map(|(_, p)| Object::Pod(Box::new(p.clone())))
            .chain(
                self.cluster
                    .policies()
                    .filter(|(k, _)| k.namespace == name)
                    .map(|(_, p)| Object::NetworkPolicy(p.clone())),
            )
            .collect();
        self.cluster.delete(Kind::Namespace, "", name);
        for o in keep {
            self.cluster.apply(o);
        }
        self.index = None;
        true
    }

    /// The index of the current objects, rebuilt only when a change required it.
    pub fn index(&mut self) -> &Index {
        self.index.get_or_insert_with(|| Index::build(&self.cluster))
    }
}

fn same_namespace(a: &k8s_openapi::api::core::v1::Namespace, b: &k8s_openapi::api::core::v1::Namespace) -> bool {
    // The cluster adds `kubernetes.io/metadata.name`; compare labels without caring whether it is there.
    let labels = |n: &k8s_openapi::api::core::v1::Namespace| {
        let mut l = n.metadata.labels.clone().unwrap_or_default();
        l.remove(crate::model::NAMESPACE_NAME_LABEL);
        l
    };
    labels(a) == labels(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::load_str;
    use crate::{Connection, Endpoint, Protocol};

    fn objects(text: &str) -> Vec<Object> {
        let l = load_str("t.yaml", text);
        assert!(l.errors.is_empty(), "{:?}", l.errors);
        l.objects.into_iter().map(|o| o.value).collect()
    }

    const BASE: &str = "
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {app: a}}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: x, labels: {app: b}}
spec: {containers: [{name: c, ports: [{containerPort: 80}]}]}
status: {podIP: 10.0.0.2}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: x}
spec:
  podSelector: {matchLabels: {app: b}}
  ingress: [{from: [{podSelector: {matchLabels: {app: a}}}]}]
";

    fn allowed(s: &mut Store) -> bool {
        let c = Connection {
            from: Endpoint::Pod(ObjectKey::new("x", "a")),
            to: Endpoint::Pod(ObjectKey::new("x", "b")),
            port: 80,
            protocol: Protocol::Tcp,
            family: crate::IpFamily::V4,
        };
        s.index().decide(&c).expect("pods exist").allowed
    }

    #[test]
    fn relabel_keeps_the_index_and_answers_as_a_rebuild() {
        let mut s = Store::new();
        for o in objects(BASE) {
            s.apply(o);
        }
        assert!(allowed(&mut s));
        let relabelled = objects(
            &BASE.replace("{name: a, namespace: x, labels: {app: a}}", "{name: a, namespace: x, labels: {app: z}}"),
        );
        assert!(s.apply(relabelled[0].clone()));
        assert!(!s.needs_rebuild(), "a relabel is done in place");
        assert!(!allowed(&mut s));
        assert!(!s.apply(relabelled[0].clone()), "the same object again is no change");
    }

    #[test]
    fn relist_deletes_what_is_gone_and_keeps_other_kinds() {
        let mut s = Store::new();
        for o in objects(BASE) {
            s.apply(o);
        }
        let pods: Vec<Object> = objects(BASE).into_iter().filter(|o| matches!(o, Object::Pod(_))).collect();
        assert!(!s.replace_kind(Kind::Pod, pods.clone()), "the same list changes nothing");
        assert!(s.replace_kind(Kind::Pod, pods[..1].to_vec()));
        assert_eq!(s.cluster().pods().count(), 1);
        assert_eq!(s.cluster().policies().count(), 1);
        assert!(s.replace_kind(Kind::NetworkPolicy, vec![]));
        assert_eq!(s.cluster().policies().count(), 0);
    }
}
