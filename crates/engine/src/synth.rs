//! Deterministic synthetic clusters for benchmarks: many namespaces, label vocabularies, and a realistic mix of
//! default-deny, app-to-app, namespace-selector, ipBlock, named-port and endPort policies; optionally the
//! ClusterNetworkPolicies (Admin and Baseline tiers) and Nodes cluster administrators add on top.

use serde_json::{Value, json};

use crate::cnp::ClusterObject;
use crate::load::{Loaded, Origin, load_value};
use crate::model::{Cluster, Object};

/// A small, fast, seedable PRNG (SplitMix64); good enough to shape test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// The shape of a generated cluster.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shape {
    pub pods: usize,
    pub policies: usize,
    pub seed: u64,
    /// ClusterNetworkPolicies added after the NetworkPolicies (with one Node per `node-N` the pods run on);
    /// 0 generates exactly what a shape without tiers always did.
    pub cluster_policies: usize,
}

const APPS: usize = 40;
const TIERS: [&str; 4] = ["web", "api", "db", "cache"];
const ENVS: [&str; 3] = ["prod", "staging", "dev"];
const TEAMS: [&str; 6] = ["payments", "search", "ads", "identity", "infra", "growth"];

/// Generates manifests (as JSON values) for a cluster of the given shape.
pub fn manifests(shape: Shape) -> Vec<Value> {
    let mut rng = Rng::new(shape.seed);
    let namespaces = (shape.pods / 50).clamp(3, 200);
    let mut out = Vec::new();
    for n in 0..namespaces {
        out.push(json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": format!("ns-{n}"), "labels": {
                "team": TEAMS[n % TEAMS.len()], "env": ENVS[n % ENVS.len()]
            }}
        }));
    }
    for i in 0..shape.pods {
        let ns = rng.below(namespaces);
        let app = rng.below(APPS);
        let tier = TIERS[app % TIERS.len()];
        let a = i / 65536;
        let b = (i / 256) % 256;
        let c = i % 256;
        out.push(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("pod-{i}"), "namespace": format!("ns-{ns}"),
                         "labels": {"app": format!("app-{app}"), "tier": tier, "version": format!("v{}", rng.below(3))}},
            "spec": {"nodeName": format!("node-{}", i % 8), "containers": [{"name": "main", "image": "agnhost", "ports": [
                {"containerPort": 8080, "name": "http", "protocol": "TCP"},
                {"containerPort": 9090 + (app % 3) as i64, "name": "metrics", "protocol": "TCP"},
                {"containerPort": 53, "name": "dns", "protocol": "UDP"}
            ]}]},
            "status": {"phase": "Running", "podIP": format!("10.{}.{b}.{c}", 100 + a),
                       "podIPs": [{"ip": format!("10.{}.{b}.{c}", 100 + a)}, {"ip": format!("fd00::{a:x}:{b:x}:{c:x}")}]}
        }));
    }
    for p in 0..shape.policies {
        let ns = format!("ns-{}", rng.below(namespaces));
        let app = format!("app-{}", rng.below(APPS));
        let other = format!("app-{}", rng.below(APPS));
        let team = TEAMS[rng.below(TEAMS.len())];
        let spec = match p % 8 {
            0 => json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
            1 => json!({"podSelector": {"matchLabels": {"app": app}}, "ingress": [{
                "from": [{"podSelector": {"matchLabels": {"app": other}}}],
                "ports": [{"protocol": "TCP", "port": 8080}]}]}),
            2 => json!({"podSelector": {"matchLabels": {"app": app}}, "ingress": [{
                "from": [{"namespaceSelector": {"matchLabels": {"team": team}}}],
                "ports": [{"port": "http"}]}]}),
            3 => {
                json!({"podSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["db", "cache"]}]},
                "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"env": "prod"}},
                                       "podSelector": {"matchLabels": {"tier": "api"}}}],
                             "ports": [{"protocol": "TCP", "port": 5432}, {"protocol": "TCP", "port": 6379}]}]})
            }
            4 => json!({"podSelector": {"matchLabels": {"app": app}}, "policyTypes": ["Egress"], "egress": [
                {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ns-0"}}}],
                 "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                {"to": [{"podSelector": {"matchLabels": {"app": other}}}]}]}),
            5 => json!({"podSelector": {"matchLabels": {"app": app}}, "ingress": [{
                "from": [{"ipBlock": {"cidr": "10.100.0.0/16", "except": [format!("10.100.{}.0/24", rng.below(256))]}}]}]}),
            6 => json!({"podSelector": {"matchLabels": {"tier": "web"}}, "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"ports": [{"protocol": "TCP", "port": 8000, "endPort": 8100}]}],
                "egress": [{"to": [{"podSelector": {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]}}],
                            "ports": [{"port": "metrics"}]}]}),
            _ => json!({"podSelector": {"matchLabels": {"app": app}}, "ingress": [{
                "from": [{"podSelector": {"matchLabels": {"app": other}}}, {"podSelector": {"matchLabels": {"tier": "api"}}}]}]}),
        };
        out.push(json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": format!("policy-{p}"), "namespace": ns},
            "spec": spec
        }));
    }
    if shape.cluster_policies > 0 {
        out.extend(nodes());
        out.extend(cluster_network_policies(shape, namespaces));
    }
    out
}

/// How many nodes the generated pods are spread over (`spec.nodeName` `node-0`..).
const NODES: usize = 8;

/// The Nodes the pods run on, for the `nodes` peer: `node-0` the control plane, zones `a`..`c`.
fn nodes() -> Vec<Value> {
    (0..NODES)
        .map(|i| {
            let mut labels = json!({
                "kubernetes.io/hostname": format!("node-{i}"),
                "topology.kubernetes.io/zone": format!("zone-{}", ["a", "b", "c"][i % 3]),
            });
            if i == 0 {
                labels["node-role.kubernetes.io/control-plane"] = json!("");
            }
            json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": format!("node-{i}"), "labels": labels},
                "status": {"addresses": [
                    {"type": "InternalIP", "address": format!("172.18.0.{}", i + 2)},
                    {"type": "InternalIP", "address": format!("fc00:f853:ccd:e793::{:x}", i + 2)},
                    {"type": "Hostname", "address": format!("node-{i}")}
                ]}
            })
        })
        .collect()
}

/// The cluster's own address ranges (pods, Services, nodes), which the Baseline egress default leaves open.
const CLUSTER_RANGES: [&str; 4] = ["10.0.0.0/8", "172.18.0.0/16", "fd00::/64", "fc00:f853:ccd:e793::/64"];

/// ClusterNetworkPolicies as cluster administrators write them: nine in ten in the Admin tier (priorities
/// spread over 1..1000, every 16th equal to the one before), the rest Baseline; subjects by namespace labels
/// (`env`, `team`) or by pods; Accept, Deny and Pass rules with namespace, pod, `networks` and `nodes` peers,
/// port numbers, ranges and named ports. Drawn from their own generator so the rest of the cluster does not
/// depend on how many there are.
fn cluster_network_policies(shape: Shape, namespaces: usize) -> Vec<Value> {
    let mut rng = Rng::new(shape.seed ^ 0xC1A5_5E5D_0A7E_7135);
    let mut out = Vec::new();
    let mut previous = 500;
    let port = |p: u16| json!({"tcp": {"destinationPort": {"number": p}}});
    let dns = json!([{"udp": {"destinationPort": {"number": 53}}}, {"tcp": {"destinationPort": {"number": 53}}}]);
    let ns_label = |k: &str, v: &str| json!({"matchLabels": {k: v}});
    for i in 0..shape.cluster_policies {
        let env = ENVS[rng.below(ENVS.len())];
        let team = TEAMS[rng.below(TEAMS.len())];
        let app = format!("app-{}", rng.below(APPS));
        let baseline = i % 10 == 9;
        let priority = if i % 16 == 15 { previous } else { 1 + rng.below(1000) };
        previous = priority;
        let (name, subject, ingress, egress) = if baseline {
            match (i / 10) % 3 {
                0 => (
                    "default-deny-external-egress".to_owned(),
                    json!({"namespaces": {}}),
                    json!(null),
                    json!([
                        {"name": "cluster", "action": "Accept", "to": [{"networks": CLUSTER_RANGES}]},
                        {"name": "everything-else", "action": "Deny", "to": [{"networks": ["0.0.0.0/0", "::/0"]}]}
                    ]),
                ),
                1 => (
                    format!("baseline-isolate-team-{team}"),
                    json!({"namespaces": ns_label("team", team)}),
                    json!([
                        {"name": "same-team", "action": "Accept", "from": [{"namespaces": ns_label("team", team)}]},
                        {"name": "monitoring", "action": "Accept", "from": [{"namespaces": ns_label("team", "infra")}],
                         "protocols": [{"destinationNamedPort": "metrics"}]},
                        {"name": "others", "action": "Deny", "from": [{"namespaces": {}}]}
                    ]),
                    json!(null),
                ),
                _ => (
                    format!("baseline-{env}-egress"),
                    json!({"namespaces": ns_label("env", env)}),
                    json!(null),
                    json!([
                        {"name": "dns", "action": "Accept", "to": [{"pods": {
                            "namespaceSelector": ns_label("kubernetes.io/metadata.name", "ns-0"),
                            "podSelector": {"matchLabels": {"tier": "cache"}}}}], "protocols": dns},
                        {"name": "same-env", "action": "Accept", "to": [{"namespaces": ns_label("env", env)}]},
                        {"name": "kubelet", "action": "Deny", "to": [{"nodes": {}}],
                         "protocols": [{"tcp": {"destinationPort": {"range": {"start": 10250, "end": 10259}}}}]},
                        {"name": "rest", "action": "Deny", "to": [{"namespaces": {}}]}
                    ]),
                ),
            }
        } else {
            match i % 8 {
                0 => (
                    format!("isolate-env-{env}"),
                    json!({"namespaces": ns_label("env", env)}),
                    json!([
                        {"name": "monitoring", "action": "Accept", "from": [{"namespaces": ns_label("team", "infra")}],
                         "protocols": [{"destinationNamedPort": "metrics"}]},
                        {"name": "other-environments", "action": "Deny", "from": [{"namespaces": {"matchExpressions": [
                            {"key": "env", "operator": "NotIn", "values": [env]}]}}]}
                    ]),
                    json!(null),
                ),
                1 => (
                    "allow-dns".to_owned(),
                    json!({"namespaces": {"matchExpressions": [{"key": "env", "operator": "Exists"}]}}),
                    json!(null),
                    json!([{"name": "kube-dns", "action": "Accept", "to": [{"pods": {
                        "namespaceSelector": ns_label("kubernetes.io/metadata.name", "ns-0"),
                        "podSelector": {"matchLabels": {"tier": "cache"}}}}], "protocols": dns}]),
                ),
                2 => (
                    format!("delegate-team-{team}"),
                    json!({"namespaces": ns_label("team", team)}),
                    json!([{"name": "same-team", "action": "Pass", "from": [{"namespaces": ns_label("team", team)}]}]),
                    json!([{"name": "same-team", "action": "Pass", "to": [{"namespaces": ns_label("team", team)}]}]),
                ),
                3 => (
                    format!("protect-db-{env}"),
                    json!({"pods": {"namespaceSelector": ns_label("env", env),
                                    "podSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["db", "cache"]}]}}}),
                    json!([
                        {"name": "api", "action": "Accept", "from": [{"pods": {"namespaceSelector": ns_label("env", env),
                            "podSelector": {"matchLabels": {"tier": "api"}}}}],
                         "protocols": [port(5432), port(6379)]},
                        {"name": "monitoring", "action": "Pass", "from": [{"namespaces": ns_label("team", "infra")}]},
                        {"name": "everyone-else", "action": "Deny", "from": [{"namespaces": {}}]}
                    ]),
                    json!(null),
                ),
                4 => (
                    format!("nodes-{team}"),
                    json!({"namespaces": ns_label("team", team)}),
                    json!(null),
                    if team == "infra" {
                        json!([{"name": "scrape-kubelet", "action": "Accept", "to": [{"nodes": {}}],
                                "protocols": [port(10250), port(9100)]}])
                    } else {
                        json!([
                            {"name": "control-plane", "action": "Deny", "to": [{"nodes": {"matchExpressions": [
                                {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}}]},
                            {"name": "node-exporter", "action": "Accept", "to": [{"nodes": {}}], "protocols": [port(9100)]}
                        ])
                    },
                ),
                5 => (
                    format!("quarantine-{app}"),
                    json!({"pods": {"podSelector": {"matchLabels": {"app": app, "version": "v2"}}}}),
                    json!([{"name": "all", "action": "Deny", "from": [{"namespaces": {}}]}]),
                    json!([{"name": "all", "action": "Deny", "to": [{"namespaces": {}}, {"networks": ["0.0.0.0/0", "::/0"]}]}]),
                ),
                6 => (
                    format!("expose-{team}-web"),
                    json!({"pods": {"namespaceSelector": ns_label("team", team),
                                    "podSelector": {"matchLabels": {"tier": "web"}}}}),
                    json!([{"name": "from-prod", "action": "Accept", "from": [{"namespaces": ns_label("env", "prod")}],
                            "protocols": [{"tcp": {"destinationPort": {"range": {"start": 8000, "end": 8100}}}},
                                          {"destinationNamedPort": "http"}]}]),
                    json!(null),
                ),
                _ => {
                    let blocked = format!("ns-{}", rng.below(namespaces));
                    (
                        format!("deny-egress-{env}"),
                        json!({"namespaces": ns_label("env", env)}),
                        json!(null),
                        json!([
                            {"name": "metadata-service", "action": "Deny", "to": [{"networks": ["169.254.169.254/32", "fd00:ec2::254/128"]}]},
                            {"name": "partner", "action": "Accept", "to": [{"networks": [format!("203.0.113.{}/32", rng.below(256))]}],
                             "protocols": [port(443)]},
                            {"name": format!("to-{blocked}"), "action": "Deny",
                             "to": [{"namespaces": ns_label("kubernetes.io/metadata.name", &blocked)}]}
                        ]),
                    )
                }
            }
        };
        let mut spec =
            json!({"tier": if baseline { "Baseline" } else { "Admin" }, "priority": priority, "subject": subject});
        if !ingress.is_null() {
            spec["ingress"] = ingress;
        }
        if !egress.is_null() {
            spec["egress"] = egress;
        }
        out.push(json!({
            "apiVersion": "policy.networking.k8s.io/v1alpha2", "kind": "ClusterNetworkPolicy",
            "metadata": {"name": format!("cnp-{i}-{name}")},
            "spec": spec
        }));
    }
    out
}

fn loaded(shape: Shape) -> Loaded {
    let mut loaded = Loaded::default();
    for (i, v) in manifests(shape).into_iter().enumerate() {
        load_value(Origin { source: "synthetic".into(), document: i + 1, item: None }, v, &mut loaded);
    }
    loaded
}

/// The generated cluster as objects (Namespaces, Pods, NetworkPolicies; see [`cluster_objects`] for the rest).
pub fn objects(shape: Shape) -> Vec<Object> {
    loaded(shape).objects.into_iter().map(|o| o.value).collect()
}

/// The generated cluster-scoped objects: Nodes and ClusterNetworkPolicies (none when
/// `shape.cluster_policies` is 0).
pub fn cluster_objects(shape: Shape) -> Vec<ClusterObject> {
    if shape.cluster_policies == 0 {
        return Vec::new();
    }
    loaded(shape).cluster_objects.into_iter().map(|o| o.value).collect()
}

/// The generated cluster, tier policies and Nodes included.
pub fn cluster(shape: Shape) -> Cluster {
    let loaded = loaded(shape);
    let mut c = Cluster::from_objects(loaded.objects.into_iter().map(|o| o.value));
    for o in loaded.cluster_objects {
        c.apply_cluster(o.value);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::validate_network_policy;

    #[test]
    fn generated_objects_are_valid_and_deterministic() {
        let shape = Shape { pods: 300, policies: 40, seed: 7, cluster_policies: 0 };
        let objs = objects(shape);
        assert_eq!(objs.len(), 6 + 300 + 40);
        for o in &objs {
            if let Object::NetworkPolicy(p) = o {
                assert!(validate_network_policy(p).is_empty());
            }
        }
        assert_eq!(objs, objects(shape));
        assert!(cluster_objects(shape).is_empty());
    }

    /// Text, not objects: the tier policies load from manifests with no error and pass the CRD's validation.
    #[test]
    fn generated_cluster_network_policies_load_and_are_valid() {
        let shape = Shape { pods: 300, policies: 40, seed: 7, cluster_policies: 100 };
        let text = serde_json::to_string(&manifests(shape)).unwrap();
        let loaded = crate::load::load_str("synthetic", &text);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        let cnps: Vec<_> = loaded
            .cluster_objects
            .iter()
            .filter(|o| matches!(o.value, ClusterObject::ClusterNetworkPolicy(_)))
            .collect();
        assert_eq!(cnps.len(), 100);
        assert_eq!(loaded.cluster_objects.len(), 100 + NODES);
        for o in &loaded.cluster_objects {
            let errs = crate::cnp::validate::validate_cluster_object(&o.value);
            assert!(errs.is_empty(), "{}: {errs:?}", o.value.name());
        }
        let tiers: Vec<_> = cnps
            .iter()
            .filter_map(|o| o.value.as_policy())
            .map(|p| (p.tier(), p.spec.priority.unwrap_or(-1)))
            .collect();
        let baseline = tiers.iter().filter(|(t, _)| *t == Some(crate::cnp::Tier::Baseline)).count();
        assert_eq!(baseline, 10);
        let mut priorities: Vec<i64> =
            tiers.iter().filter(|(t, _)| *t == Some(crate::cnp::Tier::Admin)).map(|(_, p)| *p).collect();
        assert!(priorities.iter().all(|p| (1..=1000).contains(p)));
        let admin = priorities.len();
        priorities.sort_unstable();
        priorities.dedup();
        assert!(priorities.len() < admin, "some Admin priorities are equal");
        assert_eq!(cluster_objects(shape), cluster_objects(shape));
        // Without tier policies the rest of the cluster is what it was.
        assert_eq!(objects(shape), objects(Shape { cluster_policies: 0, ..shape }));
    }

    #[test]
    fn the_tiers_decide_some_connections() {
        use crate::{Connection, Endpoint, Index, Protocol};
        let c = cluster(Shape { pods: 300, policies: 40, seed: 7, cluster_policies: 30 });
        let index = Index::build(&c);
        let keys: Vec<_> = index.pods().map(|p| p.key.clone()).collect();
        let mut rng = Rng::new(1);
        let mut decided_by_tier = 0;
        for _ in 0..500 {
            let a = Endpoint::Pod(keys[rng.below(keys.len())].clone());
            let b = Endpoint::Pod(keys[rng.below(keys.len())].clone());
            let v = index.decide(&Connection::new(a, b, Protocol::Tcp, 8080)).unwrap();
            let sides = v.ingress.iter().chain(&v.egress);
            decided_by_tier += sides.filter(|s| s.admin.is_some() || s.baseline.is_some()).count();
        }
        assert!(decided_by_tier > 0);
    }
}
