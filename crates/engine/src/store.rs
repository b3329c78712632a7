//! The objects of a cluster as the engine needs them, with their [`Index`] kept across changes.
//!
//! The node agent and the sandbox feed objects into a `Store` and ask it for the index after each batch.
//! Pods are kept as [`PodFacts`] and their node, not as API objects (a fraction of the memory at 10,000
//! pods). Pods added, changed or deleted and policies added, edited or deleted update the existing index
//! in place (equal to a rebuild, property-tested); a Namespace's labels changing drops it, to be rebuilt on
//! the next [`Store::index`].

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::NetworkPolicy;

use crate::Index;
use crate::cnp::lower::NodeFacts;
use crate::cnp::{ClusterKind, ClusterObject, TierPolicy};
use crate::model::{Cluster, Kind, Labels, NAMESPACE_NAME_LABEL, Object, ObjectKey, PodFacts};

/// What the store keeps of a Pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPod {
    pub facts: PodFacts,
    /// `spec.nodeName`: which node enforces the pod.
    pub node_name: Option<String>,
}

impl StoredPod {
    pub fn of(p: &k8s_openapi::api::core::v1::Pod) -> Self {
        StoredPod { facts: PodFacts::of(p), node_name: p.spec.as_ref().and_then(|s| s.node_name.clone()) }
    }
}

/// What changed since the consumer last took the record ([`Store::take_changes`]): what an incremental
/// compiler needs to redo only what a change touches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Pods added, deleted, or whose facts, node or namespace labels changed, each with the addresses it had
    /// before the first of these changes (none for a new pod).
    pub pods: BTreeMap<ObjectKey, Vec<std::net::IpAddr>>,
    /// NetworkPolicies added, edited or deleted.
    pub policies: std::collections::BTreeSet<ObjectKey>,
    /// A tier policy (ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy) or a Node's
    /// labels or addresses changed: what the tiers resolve to may have changed anywhere.
    pub tiers: bool,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty() && self.policies.is_empty() && !self.tiers
    }
}

/// What the store keeps of a cluster-scoped object: a tier policy as written, a Node as the `nodes` peer
/// sees it (so its heartbeats change nothing).
#[derive(Debug, Clone, PartialEq)]
enum StoredClusterObject {
    Policy(Box<TierPolicy>),
    Node(NodeFacts),
}

impl StoredClusterObject {
    fn of(o: &ClusterObject) -> Self {
        match o {
            ClusterObject::Node(n) => StoredClusterObject::Node(NodeFacts::of(n)),
            _ => StoredClusterObject::Policy(Box::new(o.as_policy().expect("not a Node"))),
        }
    }
}

/// The objects of a cluster and, when still valid, their index.
#[derive(Debug, Clone, Default)]
pub struct Store {
    /// Declared namespaces and their labels (`kubernetes.io/metadata.name` included, as the apiserver sets it).
    namespaces: BTreeMap<String, Labels>,
    pods: BTreeMap<ObjectKey, StoredPod>,
    policies: BTreeMap<ObjectKey, NetworkPolicy>,
    /// Tier policies and Nodes.
    cluster: BTreeMap<(ClusterKind, String), StoredClusterObject>,
    /// The kept index's tiers are behind `cluster`: the next [`Store::index`] resolves them once (a batch of
    /// tier policies, as a first sync brings, costs one resolution, not one each).
    retier: bool,
    /// Pods and policies per namespace that holds any, and how many of those namespaces are not declared:
    /// kept as objects come and go so counting namespaces costs nothing per sync.
    in_namespace: BTreeMap<String, usize>,
    undeclared: usize,
    index: Option<Index>,
    changes: Changes,
}

impl Store {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_cluster(cluster: &Cluster) -> Self {
        let mut s = Store::new();
        for (name, _) in cluster.namespaces() {
            if let Some(ns) = cluster.namespace(&name) {
                s.apply(Object::Namespace(ns.clone()));
            }
        }
        for (_, p) in cluster.pods() {
            s.apply(Object::Pod(Box::new(p.clone())));
        }
        for (_, p) in cluster.policies() {
            s.apply(Object::NetworkPolicy(p.clone()));
        }
        for o in cluster.cluster_objects() {
            s.apply_cluster(o);
        }
        s
    }

    /// The tier policies, in (kind, name) order.
    pub fn tier_policies(&self) -> impl Iterator<Item = &TierPolicy> {
        self.cluster.values().filter_map(|o| match o {
            StoredClusterObject::Policy(p) => Some(p.as_ref()),
            StoredClusterObject::Node(_) => None,
        })
    }

    /// The number of tier policies and Nodes of each kind.
    pub fn cluster_count(&self, kind: ClusterKind) -> usize {
        self.cluster.keys().filter(|(k, _)| *k == kind).count()
    }

    /// Creates or replaces a tier policy or Node. Returns `false` when nothing the engine keeps changed (a
    /// Node's status heartbeat, say).
    pub fn apply_cluster(&mut self, o: &ClusterObject) -> bool {
        let key = (o.kind(), o.name().to_owned());
        let stored = StoredClusterObject::of(o);
        if self.cluster.get(&key) == Some(&stored) {
            return false;
        }
        self.cluster.insert(key, stored);
        self.changes.tiers = true;
        self.retier = true;
        true
    }

    /// Deletes a tier policy or Node. Returns whether it existed.
    pub fn delete_cluster(&mut self, kind: ClusterKind, name: &str) -> bool {
        if self.cluster.remove(&(kind, name.to_owned())).is_none() {
            return false;
        }
        self.changes.tiers = true;
        self.retier = true;
        true
    }

    /// Makes the objects of a cluster-scoped kind exactly `objects` (a re-list). Returns whether anything
    /// changed.
    pub fn replace_cluster_kind(&mut self, kind: ClusterKind, objects: &[ClusterObject]) -> bool {
        let keep: std::collections::BTreeSet<&str> = objects.iter().map(ClusterObject::name).collect();
        let gone: Vec<String> = self
            .cluster
            .keys()
            .filter(|(k, n)| *k == kind && !keep.contains(n.as_str()))
            .map(|(_, n)| n.clone())
            .collect();
        let mut changed = false;
        for name in gone {
            changed |= self.delete_cluster(kind, &name);
        }
        for o in objects.iter().filter(|o| o.kind() == kind) {
            changed |= self.apply_cluster(o);
        }
        changed
    }

    pub fn pods(&self) -> impl Iterator<Item = (&ObjectKey, &StoredPod)> {
        self.pods.iter()
    }

    pub fn policies(&self) -> impl Iterator<Item = (&ObjectKey, &NetworkPolicy)> {
        self.policies.iter()
    }

    pub fn pod(&self, key: &ObjectKey) -> Option<&StoredPod> {
        self.pods.get(key)
    }

    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    pub fn policy_count(&self) -> usize {
        self.policies.len()
    }

    /// Declared namespaces and the ones pods or policies are in, with their labels.
    pub fn namespaces(&self) -> BTreeMap<String, Labels> {
        let mut out = self.namespaces.clone();
        for ns in self.in_namespace.keys() {
            out.entry(ns.clone()).or_insert_with(|| Labels::from([(NAMESPACE_NAME_LABEL.to_owned(), ns.clone())]));
        }
        out
    }

    /// The number of namespaces [`Store::namespaces`] lists, without building them (counted as objects come
    /// and go).
    pub fn namespace_count(&self) -> usize {
        self.namespaces.len() + self.undeclared
    }

    /// A pod or policy of `namespace` came.
    fn count_in(&mut self, namespace: &str) {
        match self.in_namespace.get_mut(namespace) {
            Some(n) => *n += 1,
            None => {
                self.in_namespace.insert(namespace.to_owned(), 1);
                if !self.namespaces.contains_key(namespace) {
                    self.undeclared += 1;
                }
            }
        }
    }

    /// `gone` pods and policies of `namespace` went.
    fn count_out(&mut self, namespace: &str, gone: usize) {
        let Some(n) = self.in_namespace.get_mut(namespace) else { return };
        *n = n.saturating_sub(gone);
        if *n == 0 {
            self.in_namespace.remove(namespace);
            if !self.namespaces.contains_key(namespace) {
                self.undeclared -= 1;
            }
        }
    }

    /// Declares or forgets a Namespace object (its labels), keeping the count of undeclared ones.
    fn set_namespace(&mut self, name: &str, labels: Option<Labels>) {
        let was = self.namespaces.contains_key(name);
        match labels {
            Some(l) => {
                self.namespaces.insert(name.to_owned(), l);
            }
            None => {
                self.namespaces.remove(name);
            }
        }
        let is = self.namespaces.contains_key(name);
        if was != is && self.in_namespace.contains_key(name) {
            if is {
                self.undeclared -= 1;
            } else {
                self.undeclared += 1;
            }
        }
    }

    /// What changed since the last call (and forgets it).
    pub fn take_changes(&mut self) -> Changes {
        std::mem::take(&mut self.changes)
    }

    fn touch_pod(&mut self, key: &ObjectKey) {
        if !self.changes.pods.contains_key(key) {
            let before = self.pods.get(key).map(|p| p.facts.ips.clone()).unwrap_or_default();
            self.changes.pods.insert(key.clone(), before);
        }
    }

    /// Every pod of a namespace (its labels changed, or it went).
    fn touch_namespace(&mut self, namespace: &str) {
        let start = ObjectKey::new(namespace, "");
        let keys: Vec<ObjectKey> =
            self.pods.range(start..).take_while(|(k, _)| k.namespace == namespace).map(|(k, _)| k.clone()).collect();
        for k in keys {
            self.touch_pod(&k);
        }
    }

    /// Whether the next [`Store::index`] rebuilds.
    pub fn needs_rebuild(&self) -> bool {
        self.index.is_none()
    }

    /// Creates or replaces an object. Returns `false` when nothing the engine keeps changed.
    pub fn apply(&mut self, o: Object) -> bool {
        let key = o.key();
        match o {
            Object::Pod(p) => {
                let new = StoredPod::of(&p);
                if self.pods.get(&key) == Some(&new) {
                    return false;
                }
                self.touch_pod(&key);
                let old = self.pods.get(&key);
                if let Some(index) = self.index.as_mut() {
                    let old = old.map(|o| &o.facts);
                    let f = &new.facts;
                    let same_but_labels = old.is_some_and(|old| {
                        old.ips == f.ips
                            && old.ports == f.ports
                            && old.host_network == f.host_network
                            && old.terminated == f.terminated
                    });
                    if old != Some(f) && !(same_but_labels && index.relabel_pod(&key, &f.labels)) {
                        index.upsert_pod(&key, f.clone());
                    }
                }
                let namespace = key.namespace.clone();
                if self.pods.insert(key, new).is_none() {
                    self.count_in(&namespace);
                }
            }
            Object::Namespace(n) => {
                let mut labels = n.metadata.labels.unwrap_or_default();
                labels.insert(NAMESPACE_NAME_LABEL.to_owned(), key.name.clone());
                if self.namespaces.get(&key.name) == Some(&labels) {
                    return false;
                }
                self.touch_namespace(&key.name);
                self.set_namespace(&key.name, Some(labels));
                // Namespace labels change what selectors match everywhere: rebuild.
                self.index = None;
            }
            Object::NetworkPolicy(mut p) => {
                p.metadata.namespace = Some(key.namespace.clone());
                if self.policies.get(&key).is_some_and(|old| old.spec == p.spec && old.metadata == p.metadata) {
                    return false;
                }
                self.changes.policies.insert(key.clone());
                if let Some(index) = self.index.as_mut() {
                    index.upsert_policy(&p);
                }
                let namespace = key.namespace.clone();
                if self.policies.insert(key, p).is_none() {
                    self.count_in(&namespace);
                }
            }
        }
        true
    }

    /// Deletes an object (a namespace takes its pods and policies with it, as the apiserver does). Returns
    /// whether it existed.
    pub fn delete(&mut self, kind: Kind, namespace: &str, name: &str) -> bool {
        let key = ObjectKey::new(namespace, name);
        match kind {
            Kind::Pod => {
                if self.pods.contains_key(&key) {
                    self.touch_pod(&key);
                }
                let existed = self.pods.remove(&key).is_some();
                if existed {
                    self.count_out(namespace, 1);
                }
                if let Some(index) = self.index.as_mut() {
                    index.remove_pod(&key);
                }
                existed
            }
            Kind::NetworkPolicy => {
                let existed = self.policies.remove(&key).is_some();
                if existed {
                    self.changes.policies.insert(key.clone());
                    self.count_out(namespace, 1);
                }
                if let Some(index) = self.index.as_mut() {
                    index.remove_policy(&key);
                }
                existed
            }
            Kind::Namespace => {
                let before = self.pods.len() + self.policies.len();
                self.touch_namespace(name);
                let gone: Vec<ObjectKey> = self.policies.keys().filter(|k| k.namespace == name).cloned().collect();
                self.changes.policies.extend(gone);
                let existed = self.namespaces.contains_key(name);
                self.set_namespace(name, None);
                self.pods.retain(|k, _| k.namespace != name);
                self.policies.retain(|k, _| k.namespace != name);
                self.count_out(name, before - self.pods.len() - self.policies.len());
                let changed = existed || before != self.pods.len() + self.policies.len();
                if changed {
                    self.index = None;
                }
                changed
            }
        }
    }

    /// Makes the objects of `kind` exactly `objects` (a re-list): the missing ones are deleted, the rest
    /// applied. Returns whether anything changed.
    pub fn replace_kind(&mut self, kind: Kind, objects: Vec<Object>) -> bool {
        let keep: std::collections::BTreeSet<ObjectKey> = objects.iter().map(Object::key).collect();
        // A namespace missing from a re-list goes, but not what the other kinds' lists still hold.
        let mut changed = self.retain_kind(kind, &keep);
        for o in objects {
            changed |= self.apply(o);
        }
        changed
    }

    /// Deletes every object of `kind` whose key is not in `keys` (the end of a re-list whose objects were
    /// applied one by one). Returns whether anything changed.
    pub fn retain_kind(&mut self, kind: Kind, keys: &std::collections::BTreeSet<ObjectKey>) -> bool {
        let gone: Vec<ObjectKey> = match kind {
            Kind::Namespace => self.namespaces.keys().map(|n| ObjectKey::new("", n)).collect(),
            Kind::Pod => self.pods.keys().cloned().collect(),
            Kind::NetworkPolicy => self.policies.keys().cloned().collect(),
        };
        let mut changed = false;
        for k in gone.iter().filter(|k| !keys.contains(k)) {
            changed |= match kind {
                Kind::Namespace => self.delete_namespace_object(&k.name),
                _ => self.delete(kind, &k.namespace, &k.name),
            };
        }
        changed
    }

    /// Removes a Namespace object only (its labels), keeping pods and policies, which their own watches own.
    pub fn delete_namespace_object(&mut self, name: &str) -> bool {
        let existed = self.namespaces.contains_key(name);
        if existed {
            self.touch_namespace(name);
            self.set_namespace(name, None);
            self.index = None;
        }
        existed
    }

    /// The index of the current objects, rebuilt only when a change required it.
    pub fn index(&mut self) -> &Index {
        let mut index = match self.index.take() {
            Some(index) => index,
            None => {
                let pods = self.pods.iter().map(|(k, p)| (k.clone(), p.facts.clone()));
                self.retier = !self.cluster.is_empty();
                Index::build_parts(self.namespaces(), pods, self.policies.values())
            }
        };
        if std::mem::take(&mut self.retier) {
            let nodes = self.cluster.values().filter_map(|o| match o {
                StoredClusterObject::Node(n) => Some(n.clone()),
                StoredClusterObject::Policy(_) => None,
            });
            index.set_tiers(self.tier_policies().cloned().collect(), nodes.collect());
        }
        self.index.insert(index)
    }
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

    const DENY_A_TO_B: &str = "
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: deny-a}
spec:
  tier: Admin
  priority: 5
  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: b}}}}
  ingress: [{action: Deny, from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: a}}}}]}]
";

    const NODE: &str = "
apiVersion: v1
kind: Node
metadata: {name: n1, labels: {zone: a}}
status: {addresses: [{type: InternalIP, address: 172.18.0.2}], conditions: [{type: Ready, status: 'True'}]}
";

    fn cluster_objects(text: &str) -> Vec<ClusterObject> {
        let l = load_str("t.yaml", text);
        assert!(l.errors.is_empty(), "{:?}", l.errors);
        l.cluster_objects.into_iter().map(|o| o.value).collect()
    }

    /// Tier policies and Nodes change the kept index in place, as a rebuild would, and are recorded as a
    /// change of the tiers; a Node's heartbeat is no change.
    #[test]
    fn tier_policies_and_nodes_update_the_index_in_place() {
        let mut s = Store::new();
        for o in objects(BASE) {
            s.apply(o);
        }
        assert!(allowed(&mut s));
        s.take_changes();
        let deny = cluster_objects(DENY_A_TO_B).remove(0);
        assert!(s.apply_cluster(&deny));
        assert!(!s.needs_rebuild());
        assert!(s.take_changes().tiers);
        assert!(!allowed(&mut s), "the Admin tier denies before the NetworkPolicy admits");
        assert!(!s.apply_cluster(&deny), "the same policy again is no change");

        let node = cluster_objects(NODE).remove(0);
        assert!(s.apply_cluster(&node));
        let heartbeat = cluster_objects(&NODE.replace("status: 'True'", "status: 'False'")).remove(0);
        assert!(!s.apply_cluster(&heartbeat), "only labels and addresses count");
        assert!(s.apply_cluster(&cluster_objects(&NODE.replace("zone: a", "zone: b")).remove(0)));

        // A namespace deleted drops the index: the rebuild keeps the tiers.
        s.apply(objects("apiVersion: v1\nkind: Namespace\nmetadata: {name: gone}").remove(0));
        s.delete(Kind::Namespace, "", "gone");
        assert!(s.needs_rebuild());
        assert!(!allowed(&mut s), "the rebuilt index has the tier policy");
        assert_eq!(s.cluster_count(ClusterKind::ClusterNetworkPolicy), 1);

        assert!(s.replace_cluster_kind(ClusterKind::ClusterNetworkPolicy, &[]));
        assert!(s.take_changes().tiers);
        assert!(allowed(&mut s));
        assert!(!s.delete_cluster(ClusterKind::ClusterNetworkPolicy, "deny-a"), "already gone");
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
        assert_eq!(s.pods().count(), 1);
        assert_eq!(s.policies().count(), 1);
        assert!(s.replace_kind(Kind::NetworkPolicy, vec![]));
        assert_eq!(s.policies().count(), 0);
    }

    #[test]
    fn changes_name_the_pods_with_their_old_addresses_and_the_policies() {
        let mut s = Store::new();
        for o in objects(BASE) {
            s.apply(o);
        }
        let first = s.take_changes();
        assert_eq!(first.pods.keys().map(ToString::to_string).collect::<Vec<_>>(), ["x/a", "x/b"]);
        assert!(first.pods.values().all(Vec::is_empty), "new pods had no address");
        assert!(s.take_changes().is_empty());
        // A pod moves to a new address, then is relabelled: one record, with the address it had first.
        let moved = objects(&BASE.replace("10.0.0.1", "10.0.0.9"));
        s.apply(moved[0].clone());
        s.apply(
            objects(&BASE.replace("10.0.0.1", "10.0.0.9").replace("labels: {app: a}", "labels: {app: z}"))[0].clone(),
        );
        let c = s.take_changes();
        assert_eq!(c.pods.len(), 1);
        assert_eq!(c.pods[&ObjectKey::new("x", "a")], vec!["10.0.0.1".parse::<std::net::IpAddr>().unwrap()]);
        // Namespace labels touch every pod of it; deleting it, its policies too.
        s.apply(objects("apiVersion: v1\nkind: Namespace\nmetadata: {name: x, labels: {team: t}}\n").remove(0));
        assert_eq!(s.take_changes().pods.len(), 2);
        s.delete(Kind::Namespace, "", "x");
        let c = s.take_changes();
        assert_eq!((c.pods.len(), c.policies.len()), (2, 1));
    }

    #[test]
    fn namespace_count_counts_declared_and_implied_namespaces_once() {
        let mut s = Store::new();
        for o in objects(BASE) {
            s.apply(o);
        }
        let extra = objects(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns-y}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: q, namespace: ns-z}\nspec: {podSelector: {}}\n",
        );
        for o in extra {
            s.apply(o);
        }
        // x (pods and a policy, undeclared), ns-y (declared, empty), ns-z (a policy only).
        assert_eq!(s.namespace_count(), 3);
        assert_eq!(s.namespace_count(), s.namespaces().len());
        // Counted as objects go: ns-z's only policy, then x declared (still 2), then x's objects and object.
        s.delete(Kind::NetworkPolicy, "ns-z", "q");
        assert_eq!(s.namespace_count(), 2);
        s.apply(objects("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n").remove(0));
        assert_eq!(s.namespace_count(), 2);
        s.delete(Kind::Pod, "x", "a");
        s.delete_namespace_object("x");
        assert_eq!(s.namespace_count(), 2, "x still holds a pod and a policy");
        s.delete(Kind::Pod, "x", "b");
        s.delete(Kind::NetworkPolicy, "x", "p");
        assert_eq!(s.namespace_count(), 1);
        s.delete(Kind::Namespace, "", "ns-y");
        assert_eq!(s.namespace_count(), 0);
        assert_eq!(s.namespace_count(), s.namespaces().len());
    }

    #[test]
    fn pod_ids_stay_put_and_a_new_pod_takes_a_free_one() {
        let mut s = Store::new();
        for o in objects(BASE) {
            s.apply(o);
        }
        let (a, b) = (ObjectKey::new("x", "a"), ObjectKey::new("x", "b"));
        let id_b = s.index().pod_id(&b).unwrap();
        // x/aa sorts between x/a and x/b: a rebuild would move x/b; the index in place does not.
        let added = objects(&BASE.replace("{name: a, namespace: x, labels: {app: a}}", "{name: aa, namespace: x}"));
        s.apply(added[0].clone());
        assert_eq!(s.index().pod_id(&b), Some(id_b));
        let id_a = s.index().pod_id(&a).unwrap();
        s.delete(Kind::Pod, "x", "a");
        assert_eq!(s.index().pod_id(&b), Some(id_b));
        let again = objects(&BASE.replace("{name: a, namespace: x, labels: {app: a}}", "{name: c, namespace: x}"));
        s.apply(again[0].clone());
        assert_eq!(s.index().pod_id(&ObjectKey::new("x", "c")), Some(id_a), "the freed id is used again");
        let keys: Vec<String> = s.index().pods().map(|p| p.key.to_string()).collect();
        assert_eq!(keys, ["x/aa", "x/b", "x/c"], "pods() is in key order whatever the ids");
    }
}
