//! The Kubernetes API source: watches (kube-rs `watcher`, the list-then-watch loop of a reflector) on
//! Namespaces, Pods and NetworkPolicies in all namespaces, feeding the agent's own store.
//!
//! A watch that ends is resumed from the last resourceVersion; one the apiserver refuses (`410 Gone`) is
//! restarted with a re-list: its objects as `Apply`, then [`Change::Listed`] so objects deleted meanwhile go away.
//! Pods are stripped to what the engine needs before they are kept.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event as WatchEvent, watcher};
use kube::{Api, Client, Resource};
use palisade_engine::{Kind, Object};

use crate::source::{Change, Event, Sink, strip_meta, strip_pod};

/// Builds a client from a kubeconfig file, or from the environment (in-cluster service account, then
/// `$KUBECONFIG` / `~/.kube/config`).
pub async fn client(kubeconfig: Option<&std::path::Path>) -> Result<Client, kube::Error> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default()).await?
        }
        None => kube::Config::infer().await.map_err(kube::Error::InferConfig)?,
    };
    Client::try_from(config)
}

/// Watches the three kinds, and this node's own Node for its pod address ranges, until `sink` closes.
pub async fn run(client: Client, sink: Sink, node: String) {
    let ranges = watch_node(Api::<k8s_openapi::api::core::v1::Node>::all(client.clone()), sink.clone(), node);
    let ns = watch(Api::<Namespace>::all(client.clone()), sink.clone(), Kind::Namespace, |mut n| {
        strip_meta(&mut n.metadata);
        Object::Namespace(n)
    });
    let pods = watch(Api::<Pod>::all(client.clone()), sink.clone(), Kind::Pod, |mut p| {
        strip_pod(&mut p);
        Object::Pod(Box::new(p))
    });
    let policies = watch(Api::<NetworkPolicy>::all(client), sink, Kind::NetworkPolicy, |mut p| {
        strip_meta(&mut p.metadata);
        Object::NetworkPolicy(p)
    });
    futures::join!(ns, pods, policies, ranges);
}

/// The pod address ranges a Node states (`spec.podCIDRs`, else `spec.podCIDR`); unparsable entries are skipped.
pub fn node_ranges(node: &k8s_openapi::api::core::v1::Node) -> Vec<ipnet::IpNet> {
    let spec = node.spec.as_ref();
    let cidrs = spec.and_then(|s| s.pod_cidrs.clone()).filter(|c| !c.is_empty());
    let cidrs = cidrs.or_else(|| spec.and_then(|s| s.pod_cidr.clone()).map(|c| vec![c])).unwrap_or_default();
    cidrs.iter().filter_map(|c| c.parse().ok()).collect()
}

/// Follows this node's Node object (a field selector on its name) and reports its pod address ranges when
/// they change. A Node that cannot be read (RBAC without `nodes`, a node name the API does not know) leaves
/// the other sources of ranges (`--pod-cidr`, a CNI bridge) in charge; it is logged, never fatal.
async fn watch_node(api: Api<k8s_openapi::api::core::v1::Node>, sink: Sink, node: String) {
    let config = watcher::Config::default().any_semantic().fields(&format!("metadata.name={node}"));
    let stream = watcher(api, config).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut last: Option<Vec<ipnet::IpNet>> = None;
    let mut warned = false;
    while let Some(ev) = stream.next().await {
        let ranges = match ev {
            Ok(WatchEvent::Apply(n) | WatchEvent::InitApply(n)) if n.metadata.name.as_deref() == Some(&node) => {
                node_ranges(&n)
            }
            Ok(WatchEvent::Delete(_)) => Vec::new(),
            Ok(_) => continue,
            Err(e) => {
                if !warned {
                    tracing::warn!(node = %node, error = %e, "cannot watch this node's Node (its podCIDRs); retrying");
                    warned = true;
                }
                continue;
            }
        };
        if last.as_ref() != Some(&ranges) {
            tracing::info!(node = %node, ranges = ?ranges, "this node's pod address ranges");
            last = Some(ranges.clone());
            if sink.send(Event::now(Change::NodeRanges(ranges))).is_err() {
                return;
            }
        }
    }
}

async fn watch<K>(api: Api<K>, sink: Sink, kind: Kind, to_object: impl Fn(K) -> Object)
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let stream = watcher(api, watcher::Config::default().any_semantic()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    // A (re-)list streams its objects as they arrive and ends with the keys it saw: nothing holds the whole
    // list at once.
    let mut listing = std::collections::BTreeSet::new();
    // The newest resourceVersion applied: reported as the source's revision after each change (and after a
    // list), so whoever wrote to the API can wait until this node enforces it (the sandbox does).
    let mut newest: u64 = 0;
    let rv = |o: &K| o.meta().resource_version.as_deref().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let mut lists = 0u64;
    while let Some(ev) = stream.next().await {
        let mut revision = None;
        let change = match ev {
            Ok(WatchEvent::Init) => {
                if lists > 0 {
                    // The watch could not resume (410 Gone: history compacted past our version).
                    tracing::info!(kind = ?kind, "the watch could not resume; listed again");
                }
                lists += 1;
                listing.clear();
                continue;
            }
            Ok(WatchEvent::InitApply(o)) => {
                newest = newest.max(rv(&o));
                let o = to_object(o);
                listing.insert(o.key());
                Change::Apply(o)
            }
            Ok(WatchEvent::InitDone) => {
                revision = Some(newest);
                Change::Listed { kind, keys: std::mem::take(&mut listing) }
            }
            Ok(WatchEvent::Apply(o)) => {
                newest = newest.max(rv(&o));
                revision = Some(newest);
                Change::Apply(to_object(o))
            }
            Ok(WatchEvent::Delete(o)) => {
                newest = newest.max(rv(&o));
                revision = Some(newest);
                let o = to_object(o);
                let key = o.key();
                Change::Delete { kind, namespace: key.namespace, name: key.name }
            }
            Err(e) => {
                tracing::warn!(kind = ?kind, error = %e, "watch failed; retrying with backoff");
                continue;
            }
        };
        if sink.send(Event::now(change)).is_err() {
            return;
        }
        if let Some(r) = revision.filter(|r| *r > 0)
            && sink.send(Event::now(Change::Revision(r.to_string()))).is_err()
        {
            return;
        }
    }
}
