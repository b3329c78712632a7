//! Deterministic synthetic clusters for benchmarks: many namespaces, label vocabularies, and a realistic mix of
//! default-deny, app-to-app, namespace-selector, ipBlock, named-port and endPort policies.

use serde_json::{Value, json};

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
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub pods: usize,
    pub policies: usize,
    pub seed: u64,
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
    out
}

/// The generated cluster as objects.
pub fn objects(shape: Shape) -> Vec<Object> {
    let mut loaded = Loaded::default();
    for (i, v) in manifests(shape).into_iter().enumerate() {
        load_value(Origin { source: "synthetic".into(), document: i + 1, item: None }, v, &mut loaded);
    }
    loaded.objects.into_iter().map(|o| o.value).collect()
}

/// The generated cluster.
pub fn cluster(shape: Shape) -> Cluster {
    Cluster::from_objects(objects(shape))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::validate_network_policy;

    #[test]
    fn generated_objects_are_valid_and_deterministic() {
        let shape = Shape { pods: 300, policies: 40, seed: 7 };
        let objs = objects(shape);
        assert_eq!(objs.len(), 6 + 300 + 40);
        for o in &objs {
            if let Object::NetworkPolicy(p) = o {
                assert!(validate_network_policy(p).is_empty());
            }
        }
        assert_eq!(objs, objects(shape));
    }
}
