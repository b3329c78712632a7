//! The Kubernetes API source: watches (kube-rs `watcher`, the list-then-watch loop of a reflector) on
//! Namespaces, Pods and NetworkPolicies in all namespaces, on every Node (the `nodes` peer of the tier
//! policies; this node's own Node also gives its pod address ranges), and on the tier policies'
//! custom resources (ClusterNetworkPolicy v1alpha2, AdminNetworkPolicy and BaselineAdminNetworkPolicy
//! v1alpha1, through kube's dynamic API) when their CRDs are installed, feeding the agent's own store.
//!
//! A watch that ends is resumed from the last resourceVersion; one the apiserver refuses (`410 Gone`) is
//! restarted with a re-list: its objects as `Apply`, then [`Change::Listed`] so objects deleted meanwhile go away.
//! Pods are stripped to what the engine needs before they are kept.
//!
//! A tier kind whose CRD is not installed (discovery does not list it, or its list answers 404) is logged
//! once and reported listed-empty, so NetworkPolicy is still enforced; discovery is asked again every
//! [`Options::crd_recheck`], and a CRD installed later is then watched.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event as WatchEvent, watcher};
use kube::{Api, Client, Resource};
use palisade_engine::cnp::{ClusterKind, ClusterObject, GROUP};
use palisade_engine::{Kind, Object};

use crate::source::{Change, Event, Sink, check_cluster_object, strip_meta, strip_node, strip_pod};

/// A tier policy kind served as a custom resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierResource {
    pub kind: ClusterKind,
    pub kind_name: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
}

impl TierResource {
    /// `clusternetworkpolicies.policy.networking.k8s.io/v1alpha2`, as logs name it.
    pub fn display(&self) -> String {
        format!("{}.{GROUP}/{}", self.plural, self.version)
    }

    fn api_resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, self.version, self.kind_name), self.plural)
    }
}

/// The tier policy kinds the agent watches when their CRDs are installed.
pub const TIER_RESOURCES: [TierResource; 3] = [
    TierResource {
        kind: ClusterKind::ClusterNetworkPolicy,
        kind_name: "ClusterNetworkPolicy",
        version: "v1alpha2",
        plural: "clusternetworkpolicies",
    },
    TierResource {
        kind: ClusterKind::AdminNetworkPolicy,
        kind_name: "AdminNetworkPolicy",
        version: "v1alpha1",
        plural: "adminnetworkpolicies",
    },
    TierResource {
        kind: ClusterKind::BaselineAdminNetworkPolicy,
        kind_name: "BaselineAdminNetworkPolicy",
        version: "v1alpha1",
        plural: "baselineadminnetworkpolicies",
    },
];

/// How the source behaves where the defaults do not suit (tests).
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// How often discovery is asked again whether a missing CRD has been installed.
    pub crd_recheck: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options { crd_recheck: Duration::from_secs(60) }
    }
}

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

/// Watches the three kinds, every Node and the tier policies, until `sink` closes.
pub async fn run(client: Client, sink: Sink, node: String) {
    run_with(client, sink, node, Options::default()).await;
}

/// [`run`] with these options.
pub async fn run_with(client: Client, sink: Sink, node: String, options: Options) {
    let nodes = watch_nodes(Api::<Node>::all(client.clone()), sink.clone(), node);
    let ns = watch(Api::<Namespace>::all(client.clone()), sink.clone(), Kind::Namespace, |mut n| {
        strip_meta(&mut n.metadata);
        Object::Namespace(n)
    });
    let pods = watch(Api::<Pod>::all(client.clone()), sink.clone(), Kind::Pod, |mut p| {
        strip_pod(&mut p);
        Object::Pod(Box::new(p))
    });
    let policies = watch(Api::<NetworkPolicy>::all(client.clone()), sink.clone(), Kind::NetworkPolicy, |mut p| {
        strip_meta(&mut p.metadata);
        Object::NetworkPolicy(p)
    });
    let tiers = futures::future::join_all(
        TIER_RESOURCES.iter().map(|t| watch_tier_kind(client.clone(), sink.clone(), *t, options.crd_recheck)),
    );
    futures::join!(ns, pods, policies, nodes, tiers);
}

/// The pod address ranges a Node states (`spec.podCIDRs`, else `spec.podCIDR`); unparsable entries are skipped.
pub fn node_ranges(node: &k8s_openapi::api::core::v1::Node) -> Vec<ipnet::IpNet> {
    let spec = node.spec.as_ref();
    let cidrs = spec.and_then(|s| s.pod_cidrs.clone()).filter(|c| !c.is_empty());
    let cidrs = cidrs.or_else(|| spec.and_then(|s| s.pod_cidr.clone()).map(|c| vec![c])).unwrap_or_default();
    cidrs.iter().filter_map(|c| c.parse().ok()).collect()
}

fn send(sink: &Sink, change: Change) -> bool {
    sink.send(Event::now(change)).is_ok()
}

fn resource_version(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> u64 {
    meta.resource_version.as_deref().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

/// Whether a watch error says the caller may not list the resource, or that it is not served.
fn refused(e: &watcher::Error) -> Option<u16> {
    match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => Some(s.code),
        watcher::Error::WatchError(s) => Some(s.code),
        _ => None,
    }
    .filter(|c| matches!(c, 401 | 403 | 404))
}

/// Follows every Node (what the `nodes` peer matches: labels and addresses) and this node's own Node, whose
/// pod address ranges it reports when they change. Nodes that cannot be listed (RBAC without `nodes`) are
/// logged and reported as an empty list, so the agent still enforces; the other sources of ranges
/// (`--pod-cidr`, a CNI bridge) are then in charge. The watch keeps retrying.
async fn watch_nodes(api: Api<Node>, sink: Sink, node: String) {
    let stream = watcher(api, watcher::Config::default().any_semantic()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut ranges: Option<Vec<ipnet::IpNet>> = None;
    let mut listing: Vec<ClusterObject> = Vec::new();
    let mut own: Option<Vec<ipnet::IpNet>> = None;
    let mut listed = false;
    let mut warned = false;
    let mut newest = 0u64;
    while let Some(ev) = stream.next().await {
        let revision;
        let changes = match ev {
            Ok(WatchEvent::Init) => {
                listing.clear();
                own = None;
                continue;
            }
            Ok(WatchEvent::InitApply(mut n)) => {
                newest = newest.max(resource_version(&n.metadata));
                if n.metadata.name.as_deref() == Some(&node) {
                    own = Some(node_ranges(&n));
                }
                strip_node(&mut n);
                listing.push(ClusterObject::Node(Box::new(n)));
                continue;
            }
            Ok(WatchEvent::InitDone) => {
                listed = true;
                warned = false;
                revision = Some(newest);
                let objects = std::mem::take(&mut listing);
                vec![
                    Change::RelistedCluster { kind: ClusterKind::Node, objects },
                    Change::NodeRanges(own.take().unwrap_or_default()),
                ]
            }
            Ok(WatchEvent::Apply(mut n)) => {
                newest = newest.max(resource_version(&n.metadata));
                revision = Some(newest);
                let mine = (n.metadata.name.as_deref() == Some(&node)).then(|| node_ranges(&n));
                strip_node(&mut n);
                [Change::ApplyCluster(ClusterObject::Node(Box::new(n)))]
                    .into_iter()
                    .chain(mine.map(Change::NodeRanges))
                    .collect()
            }
            Ok(WatchEvent::Delete(n)) => {
                newest = newest.max(resource_version(&n.metadata));
                revision = Some(newest);
                let name = n.metadata.name.clone().unwrap_or_default();
                let mine = name == node;
                [Change::DeleteCluster { kind: ClusterKind::Node, name }]
                    .into_iter()
                    .chain(mine.then(|| Change::NodeRanges(Vec::new())))
                    .collect()
            }
            Err(e) => {
                if !warned {
                    tracing::warn!(error = %e, "cannot watch Nodes (the nodes peer, this node's podCIDRs); retrying");
                    warned = true;
                }
                // Not allowed to list Nodes: nothing to wait for (the nodes peer then matches no Node).
                if !listed && refused(&e).is_some() {
                    listed = true;
                    if !send(&sink, Change::RelistedCluster { kind: ClusterKind::Node, objects: Vec::new() }) {
                        return;
                    }
                }
                continue;
            }
        };
        for c in changes {
            if let Change::NodeRanges(r) = &c {
                if ranges.as_ref() == Some(r) {
                    continue;
                }
                tracing::info!(node = %node, ranges = ?r, "this node's pod address ranges");
                ranges = Some(r.clone());
            }
            if !send(&sink, c) {
                return;
            }
        }
        if let Some(r) = revision.filter(|r| *r > 0)
            && !send(&sink, Change::Revision(r.to_string()))
        {
            return;
        }
    }
}

/// Whether the API serves this tier kind: `Ok(false)` when discovery does not list it (its CRD is not
/// installed, or not at this version).
async fn served(client: &Client, t: &TierResource) -> Result<bool, kube::Error> {
    match client.list_api_group_resources(&format!("{GROUP}/{}", t.version)).await {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == t.plural)),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Follows one tier kind: watched while its CRD is installed, reported listed-empty while it is not (one
/// warning per absence), discovery asked again every `recheck`.
async fn watch_tier_kind(client: Client, sink: Sink, t: TierResource, recheck: Duration) {
    let mut absent_reported = false;
    let mut failing = false;
    loop {
        match served(&client, &t).await {
            Ok(true) => {
                failing = false;
                if absent_reported {
                    tracing::info!(resource = %t.display(), "the CRD is installed now; watching it");
                }
                match watch_tier(Api::all_with(client.clone(), &t.api_resource()), &sink, t).await {
                    TierWatchEnd::SinkClosed => return,
                    // Warned and reported empty already.
                    TierWatchEnd::NotServed => absent_reported = true,
                }
            }
            Ok(false) => {
                failing = false;
                if !absent_reported {
                    tracing::warn!(
                        resource = %t.display(),
                        "the CRD is not installed: {} objects are not enforced (NetworkPolicy is); checking again every {}s",
                        t.kind_name,
                        recheck.as_secs()
                    );
                    absent_reported = true;
                    if !send(&sink, Change::RelistedCluster { kind: t.kind, objects: Vec::new() }) {
                        return;
                    }
                }
                tokio::time::sleep(recheck).await;
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(resource = %t.display(), error = %e, "discovery failed; retrying");
                    failing = true;
                }
                tokio::time::sleep(recheck.min(Duration::from_secs(5))).await;
            }
        }
    }
}

enum TierWatchEnd {
    SinkClosed,
    /// The list answered 404: the CRD was removed (or never served at this version).
    NotServed,
}

/// Decodes a watched custom resource as the engine reads manifests, then validates it as the apiserver
/// would (plus the engine's stricter selector checks).
fn decode_tier(t: &TierResource, o: DynamicObject) -> Result<ClusterObject, String> {
    let name = o.metadata.name.clone().unwrap_or_default();
    let value = serde_json::to_value(&o).map_err(|e| format!("{} {name:?}: {e}", t.kind_name))?;
    let api_version = format!("{GROUP}/{}", t.version);
    let mut object = palisade_engine::cnp::decode_cluster_object(t.kind_name, &api_version, value)
        .map_err(|e| format!("{} {name:?}: {e}", t.kind_name))?;
    check_cluster_object(&object)?;
    match &mut object {
        ClusterObject::ClusterNetworkPolicy(p) => strip_meta(&mut p.metadata),
        ClusterObject::AdminNetworkPolicy(p) => strip_meta(&mut p.metadata),
        ClusterObject::BaselineAdminNetworkPolicy(p) => strip_meta(&mut p.metadata),
        ClusterObject::Node(n) => strip_node(n),
    }
    Ok(object)
}

/// Watches one tier kind until the sink closes or the kind stops being served. An invalid object is
/// reported ([`Change::Invalid`]) and skipped; the last valid version of it, if any, stays in force (as
/// the folder source keeps it), in re-lists too.
async fn watch_tier(api: Api<DynamicObject>, sink: &Sink, t: TierResource) -> TierWatchEnd {
    let stream = watcher(api, watcher::Config::default().any_semantic()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut valid: std::collections::BTreeMap<String, ClusterObject> = std::collections::BTreeMap::new();
    let mut listing: Vec<ClusterObject> = Vec::new();
    let mut newest = 0u64;
    let mut warned = false;
    let mut listed = false;
    while let Some(ev) = stream.next().await {
        let mut revision = None;
        let mut changes = Vec::new();
        match ev {
            Ok(WatchEvent::Init) => listing.clear(),
            Ok(WatchEvent::InitApply(o)) => {
                newest = newest.max(resource_version(&o.metadata));
                let name = o.metadata.name.clone().unwrap_or_default();
                match decode_tier(&t, o) {
                    Ok(object) => {
                        valid.insert(name, object.clone());
                        listing.push(object);
                    }
                    Err(message) => {
                        changes.push(Change::Invalid { message });
                        listing.extend(valid.get(&name).cloned());
                    }
                }
            }
            Ok(WatchEvent::InitDone) => {
                warned = false;
                listed = true;
                revision = Some(newest);
                let objects = std::mem::take(&mut listing);
                valid.retain(|name, _| objects.iter().any(|o| o.name() == name));
                changes.push(Change::RelistedCluster { kind: t.kind, objects });
            }
            Ok(WatchEvent::Apply(o)) => {
                newest = newest.max(resource_version(&o.metadata));
                revision = Some(newest);
                let name = o.metadata.name.clone().unwrap_or_default();
                match decode_tier(&t, o) {
                    Ok(object) => {
                        valid.insert(name, object.clone());
                        changes.push(Change::ApplyCluster(object));
                    }
                    Err(message) => changes.push(Change::Invalid { message }),
                }
            }
            Ok(WatchEvent::Delete(o)) => {
                newest = newest.max(resource_version(&o.metadata));
                revision = Some(newest);
                let name = o.metadata.name.clone().unwrap_or_default();
                valid.remove(&name);
                changes.push(Change::DeleteCluster { kind: t.kind, name });
            }
            Err(e) => match refused(&e) {
                Some(404) => {
                    tracing::warn!(resource = %t.display(), "the CRD is gone: {} objects are not enforced", t.kind_name);
                    if !send(sink, Change::RelistedCluster { kind: t.kind, objects: Vec::new() }) {
                        return TierWatchEnd::SinkClosed;
                    }
                    return TierWatchEnd::NotServed;
                }
                // Served but not allowed (RBAC without this resource): enforce the rest meanwhile.
                Some(code) if !listed => {
                    tracing::warn!(
                        resource = %t.display(), code, error = %e,
                        "not allowed to list it (the agent's ClusterRole needs get, list, watch on it): {} objects are not enforced; retrying",
                        t.kind_name
                    );
                    listed = true;
                    warned = true;
                    changes.push(Change::RelistedCluster { kind: t.kind, objects: Vec::new() });
                }
                _ if !warned => {
                    tracing::warn!(resource = %t.display(), error = %e, "watch failed; retrying with backoff");
                    warned = true;
                }
                _ => {}
            },
        }
        for c in changes {
            if !send(sink, c) {
                return TierWatchEnd::SinkClosed;
            }
        }
        if let Some(r) = revision.filter(|r| *r > 0)
            && !send(sink, Change::Revision(r.to_string()))
        {
            return TierWatchEnd::SinkClosed;
        }
    }
    TierWatchEnd::NotServed
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
