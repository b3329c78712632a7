//! `deploy/`: every manifest loads as its k8s-openapi type, the RBAC is exactly read access to Pods,
//! Namespaces, Nodes, NetworkPolicies and the tier policies (ClusterNetworkPolicy, AdminNetworkPolicy,
//! BaselineAdminNetworkPolicy), the DaemonSet runs the agent as a node agent should, and the Helm chart
//! renders to the same objects.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn docs(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text).expect("valid YAML").into_iter().filter(|v| !v.is_null()).collect()
}

/// Every object, round-tripped through its k8s-openapi type (an unknown field or kind fails).
fn typed(v: &Value) -> (String, Value) {
    fn rt<T: serde::de::DeserializeOwned + serde::Serialize>(v: &Value) -> Value {
        let t: T = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}: {v}"));
        serde_json::to_value(t).unwrap()
    }
    let kind = v["kind"].as_str().unwrap_or("").to_owned();
    let back = match kind.as_str() {
        "Namespace" => rt::<Namespace>(v),
        "ServiceAccount" => rt::<ServiceAccount>(v),
        "ClusterRole" => rt::<ClusterRole>(v),
        "ClusterRoleBinding" => rt::<ClusterRoleBinding>(v),
        "DaemonSet" => rt::<DaemonSet>(v),
        other => panic!("unexpected kind {other:?} in deploy/"),
    };
    // k8s-openapi drops what it does not know: the round trip must keep everything.
    assert_eq!(&back, v, "{kind} has fields k8s-openapi does not know");
    (kind, back)
}

fn deploy_objects() -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("deploy"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for f in files {
        for v in docs(&std::fs::read_to_string(&f).unwrap()) {
            let (kind, v) = typed(&v);
            out.insert(format!("{kind}/{}", v["metadata"]["name"].as_str().unwrap()), v);
        }
    }
    out
}

#[test]
fn rbac_is_read_only_access_to_exactly_the_watched_resources() {
    let objects = deploy_objects();
    let role: ClusterRole = serde_json::from_value(objects["ClusterRole/palisade"].clone()).unwrap();
    let mut granted = BTreeSet::new();
    for r in role.rules.unwrap_or_default() {
        assert!(r.resource_names.is_none() && r.non_resource_urls.is_none());
        for g in r.api_groups.unwrap_or_default() {
            for res in r.resources.clone().unwrap_or_default() {
                for v in &r.verbs {
                    granted.insert(format!("{g}/{res}:{v}"));
                }
            }
        }
    }
    let expected: BTreeSet<String> = [
        ("", "pods"),
        ("", "namespaces"),
        ("", "nodes"),
        ("networking.k8s.io", "networkpolicies"),
        ("policy.networking.k8s.io", "clusternetworkpolicies"),
        ("policy.networking.k8s.io", "adminnetworkpolicies"),
        ("policy.networking.k8s.io", "baselineadminnetworkpolicies"),
    ]
    .iter()
    .flat_map(|(g, r)| ["get", "list", "watch"].map(|v| format!("{g}/{r}:{v}")))
    .collect();
    assert_eq!(granted, expected);

    let binding: ClusterRoleBinding = serde_json::from_value(objects["ClusterRoleBinding/palisade"].clone()).unwrap();
    assert_eq!((binding.role_ref.kind.as_str(), binding.role_ref.name.as_str()), ("ClusterRole", "palisade"));
    let subjects = binding.subjects.unwrap();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0].kind, "ServiceAccount");
    let sa: ServiceAccount = serde_json::from_value(objects["ServiceAccount/palisade"].clone()).unwrap();
    assert_eq!(Some(subjects[0].name.as_str()), sa.metadata.name.as_deref());
    assert_eq!(subjects[0].namespace, sa.metadata.namespace);
}

#[test]
fn the_daemonset_runs_the_agent_on_every_node_with_only_the_capabilities_it_needs() {
    let objects = deploy_objects();
    let ds: DaemonSet = serde_json::from_value(objects["DaemonSet/palisade"].clone()).unwrap();
    let spec = ds.spec.unwrap().template.spec.unwrap();
    assert_eq!(spec.host_network, Some(true), "the agent programs the node's own network namespace");
    assert_eq!(spec.service_account_name.as_deref(), Some("palisade"));
    let tolerations = spec.tolerations.unwrap();
    assert!(tolerations.iter().any(|t| t.operator.as_deref() == Some("Exists") && t.key.is_none()), "every node");
    let c = &spec.containers[0];
    let sc = c.security_context.as_ref().unwrap();
    assert_ne!(sc.privileged, Some(true));
    let caps = sc.capabilities.as_ref().unwrap();
    assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_owned()][..]));
    let added: BTreeSet<&str> = caps.add.iter().flatten().map(String::as_str).collect();
    assert_eq!(added, BTreeSet::from(["NET_ADMIN", "NET_RAW"]));
    // The root filesystem is read-only; nft's transaction file needs a writable /tmp of the pod's own.
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    let tmp = c.volume_mounts.iter().flatten().find(|m| m.mount_path == "/tmp").expect("a /tmp mount");
    let volume = spec.volumes.iter().flatten().find(|v| v.name == tmp.name).expect("the /tmp volume");
    assert!(volume.empty_dir.is_some(), "/tmp is an emptyDir, not a host path");
    let args = c.args.clone().unwrap();
    assert_eq!(args[0], "agent");
    let port = c.ports.as_ref().unwrap()[0].container_port;
    assert!(args.contains(&format!("--metrics-addr=0.0.0.0:{port}")));
    for (probe, path) in [(&c.liveness_probe, "/healthz"), (&c.readiness_probe, "/readyz")] {
        let get = probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(get.port, k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(port));
    }
    let requests = c.resources.as_ref().unwrap().requests.as_ref().unwrap();
    assert!(requests.contains_key("cpu") && requests.contains_key("memory"));
    let env = c.env.as_ref().unwrap();
    let node = env.iter().find(|e| e.name == "NODE_NAME").unwrap();
    assert_eq!(node.value_from.as_ref().unwrap().field_ref.as_ref().unwrap().field_path, "spec.nodeName");

    // Every flag the manifest passes is one `palisade agent` knows.
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_palisade")).args(["agent", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for a in args.iter().skip(1) {
        let flag = a.split('=').next().unwrap();
        assert!(help.contains(flag), "{flag} is not a flag of `palisade agent`:\n{help}");
    }
}

/// Renders the chart's templates as Helm would for `helm install palisade -n palisade-system` with the
/// default values. The templates only use `{{ .Values.x.y }}`, `{{ .Release.Name }}` and
/// `{{ .Release.Namespace }}`; anything else fails here so the two never drift apart.
fn render_chart() -> Vec<Value> {
    let chart = root().join("deploy/helm/palisade");
    let values: Value = serde_saphyr::from_str(&std::fs::read_to_string(chart.join("values.yaml")).unwrap()).unwrap();
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(chart.join("templates")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let mut rendered = String::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find("{{") {
            rendered.push_str(&rest[..start]);
            let end = rest[start..].find("}}").expect("closed action") + start;
            let expr = rest[start + 2..end].trim();
            let value = match expr {
                ".Release.Name" => "palisade".to_owned(),
                ".Release.Namespace" => "palisade-system".to_owned(),
                e if e.starts_with(".Values.") => {
                    let mut v = &values;
                    for part in e[".Values.".len()..].split('.') {
                        v = &v[part];
                    }
                    match v {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        other => panic!("{}: {e} is {other}", f.display()),
                    }
                }
                other => panic!("{}: template action {other:?} is not supported by this test", f.display()),
            };
            rendered.push_str(&value);
            rest = &rest[end + 2..];
        }
        rendered.push_str(rest);
        out.extend(docs(&rendered));
    }
    out
}

#[test]
fn the_helm_chart_renders_to_the_plain_manifests() {
    let plain = deploy_objects();
    let mut chart = BTreeMap::new();
    for v in render_chart() {
        let (kind, v) = typed(&v);
        chart.insert(format!("{kind}/{}", v["metadata"]["name"].as_str().unwrap()), v);
    }
    // The chart installs into the release's namespace; it does not create one.
    let expected: BTreeMap<String, Value> = plain.into_iter().filter(|(k, _)| !k.starts_with("Namespace/")).collect();
    assert_eq!(chart.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
    for (k, v) in &expected {
        assert_eq!(&chart[k], v, "{k} differs between deploy/ and the chart");
    }
}

#[test]
fn the_image_carries_nft() {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let stages: Vec<&str> = dockerfile.split("\nFROM ").collect();
    assert!(stages.len() >= 2, "multi-stage");
    let runtime = stages.last().unwrap();
    assert!(runtime.contains("nftables") && runtime.contains("conntrack"), "{runtime}");
    assert!(runtime.contains("COPY --from=build") && runtime.contains("ENTRYPOINT [\"/usr/local/bin/palisade\"]"));
}
