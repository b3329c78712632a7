//! The kinds the API server serves: group, version, plural, kind, scope, short names, categories and
//! subresources. Discovery (aggregated and legacy), OpenAPI and routing are all derived from this one table.

use palisade_engine::cnp::ClusterKind;
use serde_json::{Value, json};

/// One served resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [Sub],
}

/// A subresource and the kind it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sub {
    pub name: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

const STATUS: Sub = Sub { name: "status", group: "", version: "", kind: "", verbs: &["get", "patch", "update"] };
const SCALE: Sub =
    Sub { name: "scale", group: "autoscaling", version: "v1", kind: "Scale", verbs: &["get", "patch", "update"] };

#[expect(clippy::too_many_arguments, reason = "one row of the table, positional like the table itself")]
const fn r(
    group: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    categories: &'static [&'static str],
    subresources: &'static [Sub],
) -> Resource {
    Resource { group, version: "v1", plural, singular, kind, namespaced, short, categories, subresources }
}

/// Everything the sandbox serves.
pub const RESOURCES: &[Resource] = &[
    r("", "namespaces", "namespace", "Namespace", false, &["ns"], &[], &[STATUS]),
    r("", "nodes", "node", "Node", false, &["no"], &[], &[STATUS]),
    r(
        "",
        "pods",
        "pod",
        "Pod",
        true,
        &["po"],
        &["all"],
        &[
            STATUS,
            Sub { name: "exec", group: "", version: "v1", kind: "PodExecOptions", verbs: &["create", "get"] },
            Sub { name: "attach", group: "", version: "v1", kind: "PodAttachOptions", verbs: &["create", "get"] },
            Sub { name: "log", group: "", version: "v1", kind: "Pod", verbs: &["get"] },
        ],
    ),
    r("", "services", "service", "Service", true, &["svc"], &["all"], &[STATUS]),
    r("", "endpoints", "endpoints", "Endpoints", true, &["ep"], &[], &[]),
    r("", "events", "event", "Event", true, &["ev"], &[], &[]),
    r("", "configmaps", "configmap", "ConfigMap", true, &["cm"], &[], &[]),
    r("", "secrets", "secret", "Secret", true, &[], &[], &[]),
    r("", "serviceaccounts", "serviceaccount", "ServiceAccount", true, &["sa"], &[], &[]),
    r(
        "",
        "replicationcontrollers",
        "replicationcontroller",
        "ReplicationController",
        true,
        &["rc"],
        &["all"],
        &[STATUS, SCALE],
    ),
    r("apps", "deployments", "deployment", "Deployment", true, &["deploy"], &["all"], &[STATUS, SCALE]),
    r("apps", "replicasets", "replicaset", "ReplicaSet", true, &["rs"], &["all"], &[STATUS, SCALE]),
    r("apps", "statefulsets", "statefulset", "StatefulSet", true, &["sts"], &["all"], &[STATUS, SCALE]),
    r("apps", "daemonsets", "daemonset", "DaemonSet", true, &["ds"], &["all"], &[STATUS]),
    r("batch", "jobs", "job", "Job", true, &[], &["all"], &[STATUS]),
    r("batch", "cronjobs", "cronjob", "CronJob", true, &["cj"], &["all"], &[STATUS]),
    r("networking.k8s.io", "networkpolicies", "networkpolicy", "NetworkPolicy", true, &["netpol"], &[], &[]),
    r("discovery.k8s.io", "endpointslices", "endpointslice", "EndpointSlice", true, &[], &[], &[]),
    // The tier policies (kubernetes-sigs/network-policy-api CRDs: v0.2.0, and v0.1.x for v1alpha1), served as
    // if their CRDs were installed; the preferred version of the group first.
    tier(ClusterKind::ClusterNetworkPolicy),
    tier(ClusterKind::AdminNetworkPolicy),
    tier(ClusterKind::BaselineAdminNetworkPolicy),
];

/// A tier policy kind's resource, as its upstream CRD names it.
const fn tier(kind: ClusterKind) -> Resource {
    let (version, plural, singular, kind, short): (_, _, _, _, &'static [&'static str]) = match kind {
        ClusterKind::AdminNetworkPolicy => {
            ("v1alpha1", "adminnetworkpolicies", "adminnetworkpolicy", "AdminNetworkPolicy", &["anp"])
        }
        ClusterKind::BaselineAdminNetworkPolicy => (
            "v1alpha1",
            "baselineadminnetworkpolicies",
            "baselineadminnetworkpolicy",
            "BaselineAdminNetworkPolicy",
            &["banp"],
        ),
        _ => ("v1alpha2", "clusternetworkpolicies", "clusternetworkpolicy", "ClusterNetworkPolicy", &["cnp"]),
    };
    Resource {
        group: palisade_engine::cnp::GROUP,
        version,
        plural,
        singular,
        kind,
        namespaced: false,
        short,
        categories: &[],
        subresources: &[],
    }
}

impl Resource {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_owned() } else { format!("{}/{}", self.group, self.version) }
    }

    /// The store's key for this resource: `group/plural`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.group, self.plural)
    }

    /// `pods`, `deployments.apps`: how the apiserver names the resource in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() { self.plural.to_owned() } else { format!("{}.{}", self.plural, self.group) }
    }

    pub fn verbs(&self) -> Vec<&'static str> {
        let mut v = vec!["create", "delete", "get", "list", "patch", "update", "watch"];
        if self.namespaced {
            v.insert(1, "deletecollection");
        }
        v
    }

    /// The collection's URL path, in `namespace` when namespaced.
    pub fn path(&self, namespace: Option<&str>) -> String {
        let base = if self.group.is_empty() { "/api/v1".to_owned() } else { format!("/apis/{}", self.api_version()) };
        match namespace {
            Some(ns) if self.namespaced => format!("{base}/namespaces/{ns}/{}", self.plural),
            _ => format!("{base}/{}", self.plural),
        }
    }
}

/// The resource served at `group`/`version` under this plural name.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource of an object's `apiVersion` and `kind`.
pub fn of_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.api_version() == api_version && r.kind == kind)
}

/// The resource by store key (`apps/deployments`).
pub fn by_key(key: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.key() == key)
}

fn groups() -> Vec<&'static str> {
    let mut g: Vec<&'static str> = Vec::new();
    for r in RESOURCES {
        if !r.group.is_empty() && !g.contains(&r.group) {
            g.push(r.group);
        }
    }
    g
}

/// The versions a group serves, the preferred (first in the table) first.
fn versions_of(group: &str) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = Vec::new();
    for r in RESOURCES.iter().filter(|r| r.group == group) {
        if !v.contains(&r.version) {
            v.push(r.version);
        }
    }
    v
}

fn aggregated_resource(r: &Resource) -> Value {
    let subs: Vec<Value> = r
        .subresources
        .iter()
        .map(|s| {
            let (g, v, k) = if s.kind.is_empty() { (r.group, r.version, r.kind) } else { (s.group, s.version, s.kind) };
            json!({"subresource": s.name, "responseKind": {"group": g, "version": v, "kind": k}, "verbs": s.verbs})
        })
        .collect();
    json!({
        "resource": r.plural,
        "singularResource": r.singular,
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "shortNames": r.short,
        "categories": r.categories,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "verbs": r.verbs(),
        "subresources": subs,
    })
}

/// The aggregated discovery document (`apidiscovery.k8s.io/v2`) for `/api` (core) or `/apis` (groups).
pub fn aggregated(core: bool) -> Value {
    let group_names: Vec<&str> = if core { vec![""] } else { groups() };
    let items: Vec<Value> = group_names
        .iter()
        .map(|g| {
            let versions: Vec<Value> = versions_of(g)
                .into_iter()
                .map(|v| {
                    let resources: Vec<Value> =
                        RESOURCES.iter().filter(|r| r.group == *g && r.version == v).map(aggregated_resource).collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

/// Legacy `/api`.
pub fn api_versions(server: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
           "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}]})
}

/// Legacy `/apis`.
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = groups()
        .iter()
        .map(|g| {
            let versions: Vec<Value> =
                versions_of(g).into_iter().map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v})).collect();
            json!({"name": g, "preferredVersion": versions[0].clone(), "versions": versions})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// Legacy `/api/v1` or `/apis/{group}/{version}`; None for a group-version not served.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let rs: Vec<&Resource> = RESOURCES.iter().filter(|r| r.group == group && r.version == version).collect();
    if rs.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for r in rs {
        out.push(json!({"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
                        "verbs": r.verbs(), "shortNames": r.short, "categories": r.categories}));
        for s in r.subresources {
            let kind = if s.kind.is_empty() { r.kind } else { s.kind };
            out.push(
                json!({"name": format!("{}/{}", r.plural, s.name), "singularName": "", "namespaced": r.namespaced,
                            "kind": kind, "verbs": s.verbs}),
            );
        }
    }
    let gv = if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}))
}

/// The OpenAPI v3 root: one entry per group-version, its URL carrying `hash` so kubectl's cache follows
/// changes of the documents.
pub fn openapi_root(hash: &str) -> Value {
    let mut paths = serde_json::Map::new();
    paths.insert("api/v1".into(), json!({"serverRelativeURL": format!("/openapi/v3/api/v1?hash={hash}")}));
    for g in groups() {
        for v in versions_of(g) {
            let gv = format!("apis/{g}/{v}");
            paths.insert(gv.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash={hash}")}));
        }
    }
    json!({"paths": paths})
}

/// The OpenAPI v3 document of one group-version: each kind's PATCH operation declares its
/// group-version-kind and the `fieldValidation` parameter, so kubectl leaves validation to this server
/// (which validates as the apiserver does). No schemas: kubectl then builds patches from its compiled-in
/// types, as it does for built-in kinds.
pub fn openapi_group_version(group: &str, version: &str) -> Option<Value> {
    let rs: Vec<&Resource> = RESOURCES.iter().filter(|r| r.group == group && r.version == version).collect();
    if rs.is_empty() {
        return None;
    }
    let mut paths = serde_json::Map::new();
    for r in rs {
        let path = format!("{}/{{name}}", r.path(Some("{namespace}")));
        let op = json!({"patch": {
            "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
            "parameters": [{"name": "fieldValidation", "in": "query"}, {"name": "dryRun", "in": "query"}]}});
        paths.insert(path, op);
    }
    Some(json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0"}, "paths": paths}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_names() {
        let d = find("apps", "v1", "deployments").unwrap();
        assert_eq!(d.path(Some("web")), "/apis/apps/v1/namespaces/web/deployments");
        assert_eq!(d.qualified(), "deployments.apps");
        let ns = find("", "v1", "namespaces").unwrap();
        assert_eq!(ns.path(Some("x")), "/api/v1/namespaces");
        assert_eq!(of_kind("networking.k8s.io/v1", "NetworkPolicy").unwrap().plural, "networkpolicies");
        assert!(!ns.verbs().contains(&"deletecollection"));
    }

    #[test]
    fn discovery_lists_every_group() {
        let apis = aggregated(false);
        let names: Vec<&str> =
            apis["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["apps", "batch", "networking.k8s.io", "discovery.k8s.io", "policy.networking.k8s.io"]);
        let tiers = &apis["items"][4]["versions"];
        assert_eq!(tiers[0]["version"], "v1alpha2", "the preferred version first");
        assert_eq!(tiers[0]["resources"][0]["resource"], "clusternetworkpolicies");
        assert_eq!(tiers[0]["resources"][0]["scope"], "Cluster");
        assert_eq!(tiers[0]["resources"][0]["shortNames"], json!(["cnp"]));
        let v1alpha1: Vec<&str> =
            tiers[1]["resources"].as_array().unwrap().iter().map(|r| r["resource"].as_str().unwrap()).collect();
        assert_eq!(v1alpha1, ["adminnetworkpolicies", "baselineadminnetworkpolicies"]);
        let legacy = api_group_list();
        let policy = legacy["groups"].as_array().unwrap().iter().find(|g| g["name"] == "policy.networking.k8s.io");
        assert_eq!(policy.unwrap()["preferredVersion"]["version"], "v1alpha2");
        assert_eq!(
            resource_list("policy.networking.k8s.io", "v1alpha1").unwrap()["resources"][1]["shortNames"],
            json!(["banp"])
        );
        let doc = openapi_group_version("policy.networking.k8s.io", "v1alpha2").unwrap();
        let p = &doc["paths"]["/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies/{name}"]["patch"];
        assert_eq!(p["x-kubernetes-group-version-kind"]["kind"], "ClusterNetworkPolicy");
        assert!(openapi_root("h")["paths"]["apis/policy.networking.k8s.io/v1alpha1"].is_object());
        let core = aggregated(true);
        let pods = &core["items"][0]["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "pods")
            .unwrap()
            .clone();
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert!(pods["subresources"].as_array().unwrap().iter().any(|s| s["subresource"] == "exec"));
        assert!(
            resource_list("", "v1").unwrap()["resources"].as_array().unwrap().iter().any(|r| r["name"] == "pods/exec")
        );
        assert!(resource_list("nope", "v1").is_none());
        let doc = openapi_group_version("networking.k8s.io", "v1").unwrap();
        let p = &doc["paths"]["/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/{name}"]["patch"];
        assert_eq!(p["x-kubernetes-group-version-kind"]["kind"], "NetworkPolicy");
    }
}
