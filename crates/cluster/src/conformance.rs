//! `conformance --live --nodes N` on the sandbox's API: each case gets a fresh sandbox whose control plane
//! runs as for `palisade sandbox up --nodes N`; the case's objects go through the API server (server-side
//! apply, deletes), the kubelet starts its pods, and every node's `palisade agent` enforces what it watches
//! there, exactly as on a cluster. Probes are real packets between the pods' namespaces.

use std::path::PathBuf;
use std::time::Duration;

use palisade_conformance::{Backend, CaseError, ExternalHost};
use palisade_engine::cnp::{ClusterKind, ClusterObject};
use palisade_engine::{Connection, Kind, Object};
use palisade_sandbox::Sandbox;
use serde_json::Value;

use crate::client::SandboxClient;

/// How long a step may take to be enforced on every node (pods started, agents caught up).
const SETTLE: Duration = Duration::from_secs(60);

/// Runs conformance cases against sandboxes with a control plane and one agent per node.
pub struct ApiBackend {
    helper: PathBuf,
    prefix: String,
    nodes: usize,
    counter: usize,
    current: Option<(String, SandboxClient)>,
    rt: tokio::runtime::Runtime,
}

fn err(e: impl std::fmt::Display) -> CaseError {
    CaseError(e.to_string())
}

/// A case's object as written to the API: Pods keep their addresses (the API server turns `status.podIPs`
/// into the kubelet's address annotation) and keep `spec.nodeName` only when it names one of the sandbox's
/// nodes (cases come from clusters whose nodes have other names; the scheduler places the rest in turn).
pub fn api_object(o: &Object, nodes: &[String]) -> Value {
    let mut v = palisade_sandbox::object_json(o);
    if let Object::Pod(_) = o
        && let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut)
        && !spec.get("nodeName").and_then(Value::as_str).is_some_and(|n| nodes.iter().any(|m| m == n))
    {
        spec.remove("nodeName");
    }
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        // Written by the API server, not by clients.
        for k in ["creationTimestamp", "resourceVersion", "uid", "generation", "managedFields"] {
            meta.remove(k);
        }
    }
    v
}

/// A case's tier policy as written to the API (server-set metadata removed).
pub fn api_cluster_object(o: &ClusterObject) -> Value {
    let mut v = palisade_sandbox::cluster_object_json(o);
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["creationTimestamp", "resourceVersion", "uid", "generation", "managedFields"] {
            meta.remove(k);
        }
    }
    v
}

fn cluster_resource_of(kind: ClusterKind) -> Result<&'static crate::resources::Resource, CaseError> {
    crate::resources::RESOURCES
        .iter()
        .find(|r| r.group == palisade_engine::cnp::GROUP && r.kind.parse::<ClusterKind>().ok() == Some(kind))
        .ok_or_else(|| CaseError(format!("the sandbox's API does not serve {kind:?}")))
}

fn resource_of(kind: Kind) -> Result<&'static crate::resources::Resource, CaseError> {
    let (group, plural) = match kind {
        Kind::Namespace => ("", "namespaces"),
        Kind::Pod => ("", "pods"),
        Kind::NetworkPolicy => ("networking.k8s.io", "networkpolicies"),
    };
    crate::resources::find(group, "v1", plural)
        .ok_or_else(|| CaseError(format!("the sandbox's API does not serve {plural}")))
}

impl ApiBackend {
    /// `helper` is the palisade binary (the control plane, servers, probers and agents run from it).
    pub fn new(helper: PathBuf, nodes: usize) -> Result<ApiBackend, CaseError> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(err)?;
        let prefix = format!("ca{}", std::process::id() % 100_000);
        Ok(ApiBackend { helper, prefix, nodes, counter: 0, current: None, rt })
    }

    fn client(&self) -> Result<&SandboxClient, CaseError> {
        self.current.as_ref().map(|(_, c)| c).ok_or_else(|| CaseError("no sandbox".into()))
    }

    fn node_names(&self) -> Vec<String> {
        crate::controlplane::node_names(Some(self.nodes))
    }

    fn stop(&mut self) {
        if let Some((name, _)) = self.current.take() {
            crate::controlplane::stop(&name);
            crate::controlplane::set_temporary(&name, false);
        }
    }

    /// Writes objects through the API (Namespaces first), then waits until every node enforces them.
    fn write(&self, objects: &[Object]) -> Result<(), CaseError> {
        let c = self.client()?;
        let nodes = self.node_names();
        let mut ordered: Vec<&Object> = objects.iter().collect();
        ordered.sort_by_key(|o| !matches!(o, Object::Namespace(_)));
        self.rt.block_on(async {
            for o in ordered {
                c.apply(&api_object(o, &nodes)).await.map_err(|e| CaseError(format!("{}: {e}", o.key())))?;
            }
            c.wait_settled(SETTLE).await.map_err(err)
        })
    }
}

impl Drop for ApiBackend {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Backend for ApiBackend {
    fn reset(&mut self, objects: &[Object], external_hosts: &[ExternalHost]) -> Result<(), CaseError> {
        self.stop();
        self.counter += 1;
        let name = format!("{}-{}", self.prefix, self.counter);
        crate::controlplane::set_temporary(&name, true);
        crate::controlplane::spawn(&crate::controlplane::Config {
            name: name.clone(),
            nodes: Some(self.nodes),
            externals: external_hosts.to_vec(),
            helper: self.helper.clone(),
            port: 0,
            kubelet_delay: Duration::ZERO,
            pod_start_open: false,
            layout: palisade_sandbox::Layout::Routed,
        })
        .map_err(err)?;
        let client = match self.rt.block_on(SandboxClient::connect(&name)) {
            Ok(c) => c,
            Err(e) => {
                crate::controlplane::stop(&name);
                return Err(err(e));
            }
        };
        self.current = Some((name, client));
        self.write(objects)
    }

    fn apply(&mut self, objects: &[Object]) -> Result<(), CaseError> {
        if objects.is_empty() {
            return Ok(());
        }
        self.write(objects)
    }

    fn delete(&mut self, kind: Kind, namespace: &str, name: &str) -> Result<(), CaseError> {
        let c = self.client()?;
        self.rt.block_on(async {
            if !c.delete(resource_of(kind)?, namespace, name).await.map_err(err)? {
                return Err(CaseError(format!("{kind:?} {namespace}/{name} not found")));
            }
            c.wait_settled(SETTLE).await.map_err(err)
        })
    }

    /// Tier policies go through the API like any object. A case's Nodes are not written: the sandbox's
    /// control plane has its own Nodes (the ones its pods run on, with their real addresses), which the
    /// agents watch for the `nodes` peer.
    fn apply_cluster(&mut self, objects: &[ClusterObject]) -> Result<(), CaseError> {
        let policies: Vec<&ClusterObject> = objects.iter().filter(|o| o.kind() != ClusterKind::Node).collect();
        if policies.is_empty() {
            return Ok(());
        }
        let c = self.client()?;
        self.rt.block_on(async {
            for o in policies {
                let what = format!("{} {}", o.type_meta().1, o.name());
                c.apply(&api_cluster_object(o)).await.map_err(|e| CaseError(format!("{what}: {e}")))?;
            }
            c.wait_settled(SETTLE).await.map_err(err)
        })
    }

    fn delete_cluster(&mut self, kind: ClusterKind, name: &str) -> Result<(), CaseError> {
        if kind == ClusterKind::Node {
            return Ok(());
        }
        let c = self.client()?;
        self.rt.block_on(async {
            if !c.delete(cluster_resource_of(kind)?, "", name).await.map_err(err)? {
                return Err(CaseError(format!("{kind:?} {name} not found")));
            }
            c.wait_settled(SETTLE).await.map_err(err)
        })
    }

    fn probe(&mut self, connections: &[Connection]) -> Result<Vec<bool>, CaseError> {
        let (name, _) = self.current.as_ref().ok_or_else(|| CaseError("no sandbox".into()))?;
        Sandbox::open(name, &self.helper).map_err(err)?.probe(connections).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(node: &str) -> Object {
        let text = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: a, namespace: x, labels: {{app: a}}}}\nspec:\n  nodeName: {node}\n  containers: [{{name: c, image: i, ports: [{{containerPort: 80}}]}}]\nstatus: {{podIP: 10.244.1.1, podIPs: [{{ip: 10.244.1.1}}]}}\n"
        );
        let loaded = palisade_engine::load_str("t", &text);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        loaded.objects.into_iter().next().map(|o| o.value).expect("one pod")
    }

    #[test]
    fn pods_keep_their_addresses_and_only_the_sandbox_node_names() {
        let nodes = vec!["node-0".to_owned(), "node-1".to_owned()];
        let on_sandbox = api_object(&pod("node-1"), &nodes);
        assert_eq!(on_sandbox["spec"]["nodeName"], "node-1");
        assert_eq!(on_sandbox["status"]["podIPs"][0]["ip"], "10.244.1.1");
        assert_eq!((on_sandbox["apiVersion"].as_str(), on_sandbox["kind"].as_str()), (Some("v1"), Some("Pod")));
        let elsewhere = api_object(&pod("minikube"), &nodes);
        assert!(elsewhere["spec"].get("nodeName").is_none(), "{elsewhere}");
        assert_eq!(elsewhere["metadata"]["labels"]["app"], "a");
    }

    #[test]
    fn every_tier_kind_has_its_resource() {
        for (k, plural) in [
            (ClusterKind::ClusterNetworkPolicy, "clusternetworkpolicies"),
            (ClusterKind::AdminNetworkPolicy, "adminnetworkpolicies"),
            (ClusterKind::BaselineAdminNetworkPolicy, "baselineadminnetworkpolicies"),
        ] {
            assert_eq!(cluster_resource_of(k).map(|r| r.plural).ok(), Some(plural));
        }
        assert!(cluster_resource_of(ClusterKind::Node).is_err(), "Nodes are the core group's");
    }

    #[test]
    fn every_engine_kind_has_its_resource() {
        for (k, plural) in
            [(Kind::Namespace, "namespaces"), (Kind::Pod, "pods"), (Kind::NetworkPolicy, "networkpolicies")]
        {
            assert_eq!(resource_of(k).map(|r| r.plural).ok(), Some(plural));
        }
    }
}
