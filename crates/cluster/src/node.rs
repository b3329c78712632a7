//! What runs on the sandbox's nodes, driven by the store: the kubelet (pods), the Palisade dataplane
//! (NetworkPolicy, on a single node in this process; with several nodes each node's own `palisade agent`),
//! and kube-proxy (Services). One thread runs their passes in turn, since they share the sandbox's runtime.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use palisade_engine::cnp::{ClusterKind, ClusterObject};
use palisade_engine::{Kind, Object};
use palisade_sandbox::Sandbox;
use serde_json::Value;

use crate::kubelet::Kubelet;
use crate::store::{Store, ns_name, rv_of};

/// The Palisade dataplane's view of the store: Namespaces, NetworkPolicies and running pods, handed to the
/// sandbox's enforcement as they change (the same compile and incremental nft path the agent uses).
#[derive(Default)]
pub struct Dataplane {
    applied: BTreeMap<(Kind, String, String), u64>,
    /// Tier policies and Nodes handed over, by kind and name, at their resourceVersion.
    applied_cluster: BTreeMap<(ClusterKind, String), u64>,
}

/// The cluster-scoped kinds the dataplane reads: the tier policies, and the Nodes their `nodes` peer matches.
const CLUSTER_RESOURCES: [(ClusterKind, &str); 4] = [
    (ClusterKind::ClusterNetworkPolicy, "policy.networking.k8s.io/clusternetworkpolicies"),
    (ClusterKind::AdminNetworkPolicy, "policy.networking.k8s.io/adminnetworkpolicies"),
    (ClusterKind::BaselineAdminNetworkPolicy, "policy.networking.k8s.io/baselineadminnetworkpolicies"),
    (ClusterKind::Node, "/nodes"),
];

/// A stored tier policy or Node as the engine reads it (the API server validated it on the way in).
fn engine_cluster_object(v: &Value) -> Option<ClusterObject> {
    let kind = v["kind"].as_str()?;
    let api_version = v["apiVersion"].as_str().unwrap_or("");
    match palisade_engine::cnp::decode_cluster_object(kind, api_version, v.clone()) {
        Ok(o) => Some(o),
        Err(e) => {
            tracing::warn!(kind, error = %e, "a stored object the engine cannot read; skipped");
            None
        }
    }
}

fn engine_object(kind: Kind, v: &Value) -> Option<Object> {
    Some(match kind {
        Kind::Namespace => Object::Namespace(serde_json::from_value(v.clone()).ok()?),
        Kind::Pod => Object::Pod(Box::new(serde_json::from_value(v.clone()).ok()?)),
        Kind::NetworkPolicy => Object::NetworkPolicy(serde_json::from_value(v.clone()).ok()?),
    })
}

impl Dataplane {
    pub fn reconcile(&mut self, store: &Store, sandbox: &mut Sandbox) {
        let mut seen = BTreeMap::new();
        let mut changed = Vec::new();
        for (kind, resource) in [
            (Kind::Namespace, "/namespaces"),
            (Kind::NetworkPolicy, "networking.k8s.io/networkpolicies"),
            (Kind::Pod, "/pods"),
        ] {
            for o in store.list(resource, None).0 {
                if kind == Kind::Pod
                    && (o["status"]["phase"] != "Running"
                        || !o["status"]["podIP"].is_string()
                        || o["spec"]["hostNetwork"] == true)
                {
                    continue;
                }
                let (ns, name) = ns_name(&o);
                let k = (kind, ns, name);
                let rv = rv_of(&o).unwrap_or(0);
                if self.applied.get(&k) != Some(&rv)
                    && let Some(obj) = engine_object(kind, &o)
                {
                    changed.push(obj);
                }
                seen.insert(k, rv);
            }
        }
        if !changed.is_empty()
            && let Err(e) = sandbox.apply(&changed)
        {
            tracing::warn!(error = %e, "enforcing the change failed");
        }
        for (kind, ns, name) in self.applied.keys() {
            if !seen.contains_key(&(*kind, ns.clone(), name.clone())) && *kind != Kind::Pod {
                let _ = sandbox.delete(*kind, ns, name);
            }
        }
        self.applied = seen;
        self.reconcile_cluster(store, sandbox);
    }

    /// Hands the tier policies and Nodes that changed to the sandbox, and deletes the ones gone.
    fn reconcile_cluster(&mut self, store: &Store, sandbox: &mut Sandbox) {
        let mut seen = BTreeMap::new();
        let mut changed = Vec::new();
        for (kind, resource) in CLUSTER_RESOURCES {
            for o in store.list(resource, None).0 {
                let k = (kind, ns_name(&o).1);
                let rv = rv_of(&o).unwrap_or(0);
                if self.applied_cluster.get(&k) != Some(&rv)
                    && let Some(obj) = engine_cluster_object(&o)
                {
                    changed.push(obj);
                }
                seen.insert(k, rv);
            }
        }
        if !changed.is_empty()
            && let Err(e) = sandbox.apply_cluster(&changed)
        {
            tracing::warn!(error = %e, "enforcing the change of the tier policies failed");
        }
        for (kind, name) in self.applied_cluster.keys().filter(|k| !seen.contains_key(*k)) {
            if let Err(e) = sandbox.delete_cluster(*kind, name) {
                tracing::warn!(error = %e, "enforcing the deletion of {kind:?} {name} failed");
            }
        }
        self.applied_cluster = seen;
    }
}

/// The ConfigMap (in `kube-system`) holding the sandbox's own settings: `keepEstablished: "true"` lets
/// established connections outlive a policy that no longer admits them (the older enforcers' behaviour).
pub const SETTINGS: &str = "palisade-sandbox";

fn synced_file(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join("synced-rv")
}

/// The store version the node roles last caught up with.
pub fn read_synced(dir: &std::path::Path) -> Option<u64> {
    std::fs::read_to_string(synced_file(dir)).ok()?.trim().parse().ok()
}

/// The roles that run on nodes, and their runtime.
pub struct Node {
    /// The sandbox's run directory: the node roles write there the store version they have caught up with.
    pub dir: std::path::PathBuf,
    pub kubelet: Kubelet,
    pub dataplane: Option<Dataplane>,
    pub proxy: crate::kubeproxy::KubeProxy,
    pub sandbox: Arc<Mutex<Sandbox>>,
    /// The newest change the agents care about (Pods, Namespaces, NetworkPolicies, the tier policies, Nodes):
    /// with agents, a pass is done once every agent reports enforcing it.
    pub relevant_rv: u64,
}

/// The resources a node agent watches.
fn agent_watches(resource: &str) -> bool {
    matches!(resource, "/pods" | "/namespaces" | "networking.k8s.io/networkpolicies" | "/nodes")
        || CLUSTER_RESOURCES.iter().any(|(_, r)| *r == resource)
}

impl Node {
    /// One pass of every role.
    pub fn reconcile(&mut self, store: &Store) {
        let rv = store.current_rv();
        let mut sb = self.sandbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.kubelet.reconcile(store, &mut sb);
        if let Some(d) = &mut self.dataplane {
            let keep = store
                .get("/configmaps", "kube-system", SETTINGS)
                .is_some_and(|c| c["data"]["keepEstablished"] == "true");
            sb.set_keep_established(keep);
            d.reconcile(store, &mut sb);
        }
        drop(sb);
        self.proxy.reconcile(store);
        if self.dataplane.is_none() {
            self.wait_for_agents();
        }
        let _ = std::fs::write(synced_file(&self.dir), rv.to_string());
    }

    /// With agents: waits (bounded) until every node's agent reports enforcing `relevant_rv`.
    fn wait_for_agents(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let revs = self.sandbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner).agent_revisions();
            if revs.iter().all(|r| r.is_some_and(|r| r >= self.relevant_rv)) {
                return;
            }
            if std::time::Instant::now() > deadline {
                tracing::warn!(want = self.relevant_rv, agents = ?revs, "the agents did not catch up within 20 s");
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Runs passes whenever the store changes, until `stop` is set.
    pub fn run(mut self, store: Store, stop: Arc<std::sync::atomic::AtomicBool>) {
        let Ok((_, mut rx)) = store.watch(0) else { return };
        self.relevant_rv = store.current_rv();
        self.reconcile(&store);
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let mut woke = false;
            let deadline = std::time::Instant::now() + Duration::from_millis(200);
            while std::time::Instant::now() < deadline {
                match rx.try_recv() {
                    Ok(ev) => {
                        if agent_watches(&ev.resource) {
                            self.relevant_rv = self.relevant_rv.max(ev.rv);
                        }
                        woke = true;
                        break;
                    }
                    Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {
                        self.relevant_rv = store.current_rv();
                        woke = true;
                        break;
                    }
                    Err(tokio::sync::broadcast::error::TryRecvError::Closed) => return,
                    Err(tokio::sync::broadcast::error::TryRecvError::Empty) => {
                        std::thread::sleep(Duration::from_millis(2))
                    }
                }
            }
            if woke || self.kubelet.pending_status() {
                std::thread::sleep(Duration::from_millis(2));
                loop {
                    match rx.try_recv() {
                        Ok(ev) if agent_watches(&ev.resource) => self.relevant_rv = self.relevant_rv.max(ev.rv),
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {
                            self.relevant_rv = store.current_rv()
                        }
                        Err(_) => break,
                    }
                }
                self.reconcile(&store);
            }
        }
    }
}
