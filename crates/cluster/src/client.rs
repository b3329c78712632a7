//! The sandbox's own verbs (`palisade sandbox apply/get/delete/label`) as clients of its API server, through
//! kube-rs and the sandbox's kubeconfig: one source of truth, as on a cluster.

use std::path::Path;
use std::time::{Duration, Instant};

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::ApiResource;
use serde_json::{Value, json};

use crate::resources::{self, Resource};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no sandbox named {0:?} is running (see `palisade sandbox up`)")]
    NotRunning(String),
    #[error("{}", kube_message(.0))]
    Kube(#[from] kube::Error),
    #[error("reading the kubeconfig: {0}")]
    Config(String),
    #[error("the server doesn't have a resource type \"{0}\"")]
    UnknownKind(String),
    #[error("timed out after {0:?} waiting for the sandbox to settle")]
    Timeout(Duration),
}

/// An API error as kubectl prints it (`Error from server (Invalid): ...`), other errors as they are.
fn kube_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => {
            let causes: Vec<String> =
                s.details.iter().flat_map(|d| d.causes.iter()).map(|c| format!("{}: {}", c.field, c.message)).collect();
            if s.reason == "Invalid" && !causes.is_empty() {
                let kind = s.details.as_ref().map_or("", |d| d.kind.as_str());
                let name = s.details.as_ref().map_or("", |d| d.name.as_str());
                format!("Error from server (Invalid): The {kind} \"{name}\" is invalid: {}", causes.join(", "))
            } else {
                format!("Error from server ({}): {}", s.reason, s.message)
            }
        }
        other => other.to_string(),
    }
}

/// A client of one sandbox's API.
#[derive(Clone)]
pub struct SandboxClient {
    client: kube::Client,
    dir: std::path::PathBuf,
}

fn api_resource(r: &Resource) -> ApiResource {
    ApiResource {
        group: r.group.to_owned(),
        version: r.version.to_owned(),
        api_version: r.api_version(),
        kind: r.kind.to_owned(),
        plural: r.plural.to_owned(),
    }
}

/// The resource a user names: plural, singular, short name or kind, any case (`netpol`, `pods`, `Deployment`).
pub fn resource_named(name: &str) -> Option<&'static Resource> {
    let n = name.to_ascii_lowercase();
    let (n, group) = n.split_once('.').map_or((n.as_str(), None), |(a, g)| (a, Some(g)));
    resources::RESOURCES.iter().find(|r| {
        group.is_none_or(|g| r.group == g)
            && (r.plural == n || r.singular == n || r.short.contains(&n) || r.kind.eq_ignore_ascii_case(n))
    })
}

impl SandboxClient {
    /// Connects to the sandbox named `name` (its kubeconfig in the run directory).
    pub async fn connect(name: &str) -> Result<SandboxClient, ClientError> {
        let dir = palisade_sandbox::run_root().join(name);
        let path = crate::controlplane::kubeconfig_file(&dir);
        if !path.exists() {
            return Err(ClientError::NotRunning(name.to_owned()));
        }
        Self::from_kubeconfig(&path, dir).await
    }

    pub async fn from_kubeconfig(path: &Path, dir: std::path::PathBuf) -> Result<SandboxClient, ClientError> {
        let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| ClientError::Config(e.to_string()))?;
        let config = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| ClientError::Config(e.to_string()))?;
        Ok(SandboxClient { client: kube::Client::try_from(config)?, dir })
    }

    fn api(&self, r: &Resource, namespace: Option<&str>) -> Api<DynamicObject> {
        let ar = api_resource(r);
        match namespace {
            Some(ns) if r.namespaced => Api::namespaced_with(self.client.clone(), ns, &ar),
            _ => Api::all_with(self.client.clone(), &ar),
        }
    }

    /// Server-side apply of one object (created when missing), as `kubectl apply --server-side --force-conflicts`.
    pub async fn apply(&self, obj: &Value) -> Result<Value, ClientError> {
        let api_version = obj["apiVersion"].as_str().unwrap_or("");
        let kind = obj["kind"].as_str().unwrap_or("");
        let r = resources::of_kind(api_version, kind)
            .ok_or_else(|| ClientError::UnknownKind(format!("{kind} ({api_version})")))?;
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or("default");
        let name = obj["metadata"]["name"].as_str().unwrap_or("");
        let mut body = obj.clone();
        if r.kind != "Pod"
            && let Some(m) = body.as_object_mut()
        {
            m.remove("status");
        }
        let out =
            self.api(r, Some(ns)).patch(name, &PatchParams::apply("palisade").force(), &Patch::Apply(&body)).await?;
        Ok(serde_json::to_value(out).unwrap_or(Value::Null))
    }

    /// Deletes one object; false when it did not exist.
    pub async fn delete(&self, r: &Resource, namespace: &str, name: &str) -> Result<bool, ClientError> {
        match self.api(r, Some(namespace)).delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Sets (`k=v`) and removes (`k-`) labels with a merge patch, as `kubectl label --overwrite`.
    pub async fn label(
        &self,
        r: &Resource,
        namespace: &str,
        name: &str,
        labels: &[(String, Option<String>)],
    ) -> Result<(), ClientError> {
        let mut map = serde_json::Map::new();
        for (k, v) in labels {
            map.insert(k.clone(), v.clone().map_or(Value::Null, Value::String));
        }
        let patch = json!({"metadata": {"labels": map}});
        self.api(r, Some(namespace)).patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        Ok(())
    }

    /// Every object of a resource (in `namespace` when given), as JSON.
    pub async fn list(&self, r: &Resource, namespace: Option<&str>) -> Result<Vec<Value>, ClientError> {
        let list = self.api(r, namespace).list(&ListParams::default()).await?;
        Ok(list
            .items
            .into_iter()
            .map(|o| {
                let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
                v["apiVersion"] = json!(r.api_version());
                v["kind"] = json!(r.kind);
                v
            })
            .collect())
    }

    /// Waits until the sandbox has caught up with every write so far: every pod started (or finished) and
    /// no pod being deleted, and the node roles (kubelet, dataplane, kube-proxy) past the store's current
    /// version, twice in a row (controllers write in reaction to each other).
    pub async fn wait_settled(&self, timeout: Duration) -> Result<(), ClientError> {
        let pods = resources::find("", "v1", "pods").ok_or_else(|| ClientError::UnknownKind("pods".into()))?;
        let deadline = Instant::now() + timeout;
        let mut stable = 0;
        loop {
            let list = self.api(pods, None).list(&ListParams::default()).await?;
            let rv: u64 = list.metadata.resource_version.as_deref().and_then(|v| v.parse().ok()).unwrap_or(0);
            let busy = list.items.iter().any(|p| {
                let v = serde_json::to_value(p).unwrap_or(Value::Null);
                crate::store::terminating(&v)
                    || !matches!(v["status"]["phase"].as_str(), Some("Running" | "Succeeded" | "Failed"))
            });
            let synced = crate::node::read_synced(&self.dir).unwrap_or(0);
            if !busy && synced >= rv {
                stable += 1;
                if stable >= 2 {
                    return Ok(());
                }
            } else {
                stable = 0;
            }
            if Instant::now() > deadline {
                return Err(ClientError::Timeout(timeout));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_by_any_name() {
        for (n, kind) in [
            ("netpol", "NetworkPolicy"),
            ("pods", "Pod"),
            ("po", "Pod"),
            ("Deployment", "Deployment"),
            ("deploy", "Deployment"),
            ("ns", "Namespace"),
            ("deployments.apps", "Deployment"),
        ] {
            assert_eq!(resource_named(n).map(|r| r.kind), Some(kind), "{n}");
        }
        assert!(resource_named("widgets").is_none());
    }
}
