//! Every lint check has a case where it fires and one where it stays quiet.

use palisade_analyze::Model;
use palisade_analyze::lint::lint;
use palisade_engine::load_str;

const PODS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: prod, labels: {env: prod}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, ports: [{containerPort: 8080, name: http}, {containerPort: 53, name: dns, protocol: UDP}]}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: prod}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: c, ports: [{containerPort: 9000}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default, labels: {app: client}}
spec: {containers: [{name: c}]}
status: {podIP: 10.244.1.7, podIPs: [{ip: 10.244.1.7}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"#;

fn policy(spec: &str) -> String {
    format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: p, namespace: default}}\nspec:\n{spec}"
    )
}

fn ids(extra: &str) -> Vec<&'static str> {
    let text = format!("{PODS}{extra}");
    let loaded = load_str("case.yaml", &text);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    lint(&Model::from_loaded(&loaded)).into_iter().map(|f| f.id).collect()
}

/// (check, manifests where it fires, manifests where it does not)
const CASES: &[(&str, &str, &str)] = &[
    (
        "PAL001",
        "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {env: prod}}\n    - podSelector: {matchLabels: {app: api}}\n",
        "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {env: prod}}\n      podSelector: {matchLabels: {app: api}}\n",
    ),
    (
        "PAL002",
        "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {env: prod}}\n      podSelector: {matchLabels: {app: client}}\n",
        "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n  ingress:\n  - from:\n    - namespaceSelector: {matchLabels: {env: prod}}\n      podSelector: {matchLabels: {app: api}}\n",
    ),
    (
        "PAL003",
        "  podSelector: {matchLabels: {app: client}}\n  policyTypes: [Egress]\n  egress:\n  - to: [{podSelector: {matchLabels: {app: web}}}]\n",
        "  podSelector: {matchLabels: {app: client}}\n  policyTypes: [Egress]\n  egress:\n  - to: [{podSelector: {matchLabels: {app: web}}}]\n  - to: [{namespaceSelector: {}, podSelector: {matchLabels: {k8s-app: kube-dns}}}]\n    ports: [{protocol: UDP, port: 53}, {protocol: TCP, port: 53}]\n",
    ),
    (
        "PAL004",
        "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n  ingress:\n  - from: [{podSelector: {matchLabels: {app: client}}}]\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-client-egress, namespace: default}\nspec: {podSelector: {matchLabels: {app: client}}, policyTypes: [Egress]}\n",
        "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n  ingress:\n  - from: [{podSelector: {matchLabels: {app: client}}}]\n",
    ),
    (
        "PAL005",
        "  podSelector: {matchLabels: {app: nothing}}\n  policyTypes: [Ingress]\n",
        "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n",
    ),
    (
        "PAL006",
        "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n  ingress:\n  - from: [{podSelector: {matchLabels: {app: ghost}}}]\n",
        "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n  ingress:\n  - from: [{podSelector: {matchLabels: {app: client}}}]\n",
    ),
    (
        "PAL007",
        "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n  ingress:\n  - from: [{podSelector: {matchLabels: {app: client}}}]\n  - from: [{podSelector: {matchLabels: {app: client}}}]\n    ports: [{port: 8080}]\n",
        "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n  ingress:\n  - from: [{podSelector: {matchLabels: {app: client}}}]\n    ports: [{port: 9090}]\n  - from: [{podSelector: {matchLabels: {app: client}}}]\n    ports: [{port: 8080}]\n",
    ),
    (
        "PAL008",
        "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n  ingress:\n  - ports: [{port: dns}]\n",
        "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n  ingress:\n  - ports: [{port: dns, protocol: UDP}]\n",
    ),
    (
        "PAL009",
        "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n  ingress: [{}]\n  egress: [{}]\n",
        "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress, Egress]\n  ingress: [{}]\n  egress: [{}]\n",
    ),
    (
        "PAL010",
        "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n  ingress:\n  - ports: [{port: 80}]\n",
        "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n  ingress:\n  - ports: [{port: 8080}]\n",
    ),
    (
        "PAL011",
        "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n  ingress:\n  - from: [{ipBlock: {cidr: 10.244.0.0/16}}]\n",
        "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n  ingress:\n  - from: [{ipBlock: {cidr: 192.0.2.0/24}}]\n",
    ),
    (
        "PAL012",
        "  podSelector: {matchLabels: {app: web}}\n  ingress: [{}]\n",
        "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n  ingress: [{}]\n",
    ),
];

#[test]
fn every_check_fires_and_stays_quiet() {
    let mut problems = Vec::new();
    for (id, fires, quiet) in CASES {
        let got = ids(&policy(fires));
        if !got.contains(id) {
            problems.push(format!("{id} should fire, got {got:?}"));
        }
        let got = ids(&policy(quiet));
        if got.contains(id) {
            problems.push(format!("{id} should stay quiet, got {got:?}"));
        }
    }
    assert_eq!(CASES.len(), palisade_analyze::lint::NETWORKPOLICY_CHECKS.len());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn example(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name);
    std::fs::read_to_string(path).unwrap()
}

/// The two mistakes of our own source tutorials are caught, with clear messages.
#[test]
fn the_seed_tutorials_mistakes_are_caught() {
    let loaded = load_str("test-network-policy.yaml", &example("test-network-policy.yaml"));
    let text: String = lint(&Model::from_loaded(&loaded)).iter().map(ToString::to_string).collect();
    insta::assert_snapshot!("seed-001-separate-peers", text);

    let loaded = load_str("frontend-backend-step5.yaml", &example("frontend-backend-step5.yaml"));
    let text: String = lint(&Model::from_loaded(&loaded)).iter().map(ToString::to_string).collect();
    insta::assert_snapshot!("seed-004-one-sided-allow", text);
}

/// (tier check, manifests where it fires, manifests where it does not), over the pods of `PODS`.
const TIER_CASES: &[(&str, &str, &str)] = &[
    (
        "PAL101",
        "---\napiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: a}\nspec: {priority: 5, subject: {namespaces: {}}, ingress: [{action: Deny, from: [{namespaces: {matchLabels: {env: prod}}}]}]}\n---\napiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: b}\nspec: {priority: 5, subject: {namespaces: {}}, ingress: [{action: Allow, from: [{namespaces: {}}]}]}\n",
        "---\napiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: a}\nspec: {priority: 5, subject: {namespaces: {}}, ingress: [{action: Deny, from: [{namespaces: {matchLabels: {env: prod}}}]}]}\n---\napiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: b}\nspec: {priority: 6, subject: {namespaces: {}}, ingress: [{action: Allow, from: [{namespaces: {}}]}]}\n",
    ),
    (
        "PAL102",
        "---\napiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: a}\nspec: {priority: 5, subject: {namespaces: {}}, ingress: [{action: Deny, from: [{namespaces: {}}]}, {action: Allow, from: [{namespaces: {matchLabels: {env: prod}}}]}]}\n",
        "---\napiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: a}\nspec: {priority: 5, subject: {namespaces: {}}, ingress: [{action: Allow, from: [{namespaces: {matchLabels: {env: prod}}}]}, {action: Deny, from: [{namespaces: {}}]}]}\n",
    ),
    (
        "PAL103",
        "---\napiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: a}\nspec: {tier: Admin, priority: 5, subject: {namespaces: {}}, egress: [{action: Deny, to: [{domainNames: [evil.example.com]}]}]}\n",
        "---\napiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: a}\nspec: {tier: Admin, priority: 5, subject: {namespaces: {}}, egress: [{action: Deny, to: [{networks: [192.0.2.0/24]}]}]}\n",
    ),
    (
        "PAL104",
        "---\napiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: a}\nspec: {tier: Admin, priority: 5, subject: {namespaces: {}}, egress: [{action: Accept, to: [{networks: [192.0.2.0/24]}], protocols: [{destinationNamedPort: http}]}]}\n",
        "---\napiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: a}\nspec: {tier: Admin, priority: 5, subject: {namespaces: {}}, egress: [{action: Accept, to: [{pods: {namespaceSelector: {}, podSelector: {}}}], protocols: [{destinationNamedPort: http}]}]}\n",
    ),
    (
        "PAL105",
        "---\napiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: a}\nspec: {tier: Baseline, priority: 5, subject: {namespaces: {}}, egress: [{action: Pass, to: [{namespaces: {}}]}]}\n",
        "---\napiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: a}\nspec: {tier: Baseline, priority: 5, subject: {namespaces: {}}, egress: [{action: Accept, to: [{namespaces: {}}]}]}\n",
    ),
    (
        "PAL106",
        "---\napiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: a}\nspec: {tier: Admin, priority: 5, subject: {namespaces: {}}, egress: [{action: Accept, to: [{domainNames: [api.example.com]}]}]}\n",
        "---\napiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: a}\nspec: {tier: Admin, priority: 5, subject: {namespaces: {}}, egress: [{action: Accept, to: [{networks: [192.0.2.0/24]}]}]}\n",
    ),
    (
        // A Baseline Deny under an Admin Allow of everything it matches.
        "PAL107",
        "---\napiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: a}\nspec: {priority: 5, subject: {namespaces: {}}, ingress: [{action: Allow, from: [{namespaces: {}}], ports: [{portNumber: {port: 8080}}]}]}\n---\napiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\nmetadata: {name: default}\nspec: {subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: default}}}, ingress: [{action: Deny, from: [{namespaces: {matchLabels: {env: prod}}}], ports: [{portNumber: {port: 8080}}]}]}\n",
        "---\napiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: a}\nspec: {priority: 5, subject: {namespaces: {}}, ingress: [{action: Pass, from: [{namespaces: {}}], ports: [{portNumber: {port: 8080}}]}]}\n---\napiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\nmetadata: {name: default}\nspec: {subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: default}}}, ingress: [{action: Deny, from: [{namespaces: {matchLabels: {env: prod}}}], ports: [{portNumber: {port: 8080}}]}]}\n",
    ),
    (
        // The policy `p` of `policy()` admits from prod on 8080; an Admin Deny takes all of it first.
        "PAL108",
        "---\napiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: a}\nspec: {priority: 5, subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: web}}}}, ingress: [{action: Deny, from: [{namespaces: {matchLabels: {env: prod}}}]}]}\n",
        "---\napiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: a}\nspec: {priority: 5, subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: web}}}}, ingress: [{action: Allow, from: [{namespaces: {}}], ports: [{portNumber: {port: 8080}}]}, {action: Deny, from: [{namespaces: {matchLabels: {env: prod}}}]}]}\n",
    ),
];

/// The NetworkPolicy the tier cases run beside.
const TIER_CASE_POLICY: &str = "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {env: prod}}}]\n    ports: [{port: 8080}]\n";

#[test]
fn every_tier_check_fires_and_stays_quiet() {
    let mut problems = Vec::new();
    for (id, fires, quiet) in TIER_CASES {
        let got = ids(&format!("{}{fires}", policy(TIER_CASE_POLICY)));
        if !got.contains(id) {
            problems.push(format!("{id} should fire, got {got:?}"));
        }
        let got = ids(&format!("{}{quiet}", policy(TIER_CASE_POLICY)));
        if got.contains(id) {
            problems.push(format!("{id} should stay quiet, got {got:?}"));
        }
    }
    assert_eq!(CASES.len() + TIER_CASES.len(), palisade_analyze::lint::ALL_CHECKS.len());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

mod unreachable_against_the_engine {
    //! Every rule PAL107 or PAL108 reports is unreachable by the engine's own verdicts, on random clusters
    //! with NetworkPolicies and both tiers: a reported tier rule never decides a side, and every connection
    //! a reported NetworkPolicy rule would admit is denied by the Admin tier.

    use palisade_analyze::Model;
    use palisade_analyze::lint::lint;
    use palisade_engine::cnp::lower::{LoweredPolicy, PeerEnd};
    use palisade_engine::cnp::validate::validate_cluster_object;
    use palisade_engine::model::{NAMESPACE_NAME_LABEL, PodFacts, namespace_of};
    use palisade_engine::policy::{Direction, NamespaceScope, Peer, Policy};
    use palisade_engine::synth::{Rng, Shape, manifests};
    use palisade_engine::verdict::Stage;
    use palisade_engine::{Cluster, Connection, Endpoint, Index, Loaded, Object, ObjectKey, Origin, Protocol};
    use serde_json::{Value, json};

    fn pick<T: Clone>(rng: &mut Rng, items: &[T]) -> T {
        items[rng.below(items.len())].clone()
    }

    fn selectors(rng: &mut Rng, pool: &[Value]) -> Value {
        pick(rng, pool)
    }

    /// Tier policies and NetworkPolicies drawn from small pools, so rules often cover each other.
    fn policies(seed: u64) -> Vec<Value> {
        let mut rng = Rng::new(seed);
        let ns = [
            json!({}),
            json!({"matchLabels": {"env": "prod"}}),
            json!({"matchLabels": {"team": "payments"}}),
            json!({"matchLabels": {NAMESPACE_NAME_LABEL: "ns-0"}}),
            json!({"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "staging"]}]}),
        ];
        let pods = [
            json!({}),
            json!({"matchLabels": {"tier": "web"}}),
            json!({"matchLabels": {"tier": "db"}}),
            json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]}),
            json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]}),
        ];
        let protocols = [
            Value::Null,
            json!([{"tcp": {"destinationPort": {"number": 8080}}}]),
            json!([{"tcp": {"destinationPort": {"range": {"start": 8000, "end": 9100}}}}]),
            json!([{"destinationNamedPort": "http"}]),
            json!([{"udp": {"destinationPort": {"number": 53}}}, {"tcp": {"destinationPort": {"number": 53}}}]),
        ];
        let mut out = Vec::new();
        for i in 0..8 {
            let tier = if i < 6 { "Admin" } else { "Baseline" };
            let subject = if rng.chance(50) {
                json!({"namespaces": selectors(&mut rng, &ns)})
            } else {
                json!({"pods": {"namespaceSelector": selectors(&mut rng, &ns), "podSelector": selectors(&mut rng, &pods)}})
            };
            let rules = |egress: bool, rng: &mut Rng| -> Vec<Value> {
                (0..1 + rng.below(3))
                    .map(|_| {
                        let peer = match rng.below(if egress { 4 } else { 3 }) {
                            0 => json!({"namespaces": selectors(rng, &ns)}),
                            1 | 2 => json!({"pods": {"namespaceSelector": selectors(rng, &ns), "podSelector": selectors(rng, &pods)}}),
                            _ => json!({"networks": [pick(rng, &["10.100.0.0/16", "10.100.0.0/24", "0.0.0.0/0"])]}),
                        };
                        let action = pick(rng, &["Accept", "Deny", "Pass"]);
                        let mut r = json!({"action": action});
                        r[if egress { "to" } else { "from" }] = json!([peer]);
                        let p = pick(rng, &protocols);
                        let named_with_networks = egress && peer.get("networks").is_some() && p.to_string().contains("Named");
                        if !p.is_null() && !named_with_networks {
                            r["protocols"] = p;
                        }
                        r
                    })
                    .collect()
            };
            let ingress = rules(false, &mut rng);
            let egress = rules(true, &mut rng);
            out.push(json!({"apiVersion": "policy.networking.k8s.io/v1alpha2", "kind": "ClusterNetworkPolicy",
                "metadata": {"name": format!("cnp-{i}")},
                "spec": {"tier": tier, "priority": rng.below(4), "subject": subject, "ingress": ingress, "egress": egress}}));
        }
        let ports = [
            Value::Null,
            json!([{"protocol": "TCP", "port": 8080}]),
            json!([{"protocol": "TCP", "port": "http"}]),
            json!([{"protocol": "UDP", "port": 53}]),
            json!([{"protocol": "TCP", "port": 8000, "endPort": 8100}]),
        ];
        for i in 0..6 {
            let rule = |rng: &mut Rng| {
                let peer = match rng.below(3) {
                    0 => json!({"namespaceSelector": selectors(rng, &ns), "podSelector": selectors(rng, &pods)}),
                    1 => json!({"podSelector": selectors(rng, &pods)}),
                    _ => json!({"ipBlock": {"cidr": pick(rng, &["10.100.0.0/24", "10.100.0.0/16"])}}),
                };
                let mut r = json!({"from": [peer.clone()], "to": [peer]});
                let p = pick(rng, &ports);
                if !p.is_null() {
                    r["ports"] = p;
                }
                r
            };
            let (ri, re) = (rule(&mut rng), rule(&mut rng));
            out.push(json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": format!("np-{i}"), "namespace": format!("ns-{}", rng.below(3))},
                "spec": {"podSelector": selectors(&mut rng, &pods), "policyTypes": ["Ingress", "Egress"],
                         "ingress": [{"from": ri["from"], "ports": ri.get("ports")}],
                         "egress": [{"to": re["to"], "ports": re.get("ports")}]}}));
        }
        // `ports: null` reads as no ports.
        for p in &mut out {
            for d in ["ingress", "egress"] {
                if let Some(rules) = p.pointer_mut(&format!("/spec/{d}")).and_then(Value::as_array_mut) {
                    for r in rules {
                        if r.get("ports").is_some_and(Value::is_null) {
                            r.as_object_mut().map(|m| m.remove("ports"));
                        }
                    }
                }
            }
        }
        out
    }

    const PORTS: [(Protocol, u16); 12] = [
        (Protocol::Tcp, 80),
        (Protocol::Tcp, 8080),
        (Protocol::Tcp, 8000),
        (Protocol::Tcp, 9100),
        (Protocol::Tcp, 9090),
        (Protocol::Tcp, 9091),
        (Protocol::Tcp, 53),
        (Protocol::Tcp, 65535),
        (Protocol::Udp, 53),
        (Protocol::Udp, 5353),
        (Protocol::Sctp, 9003),
        (Protocol::Sctp, 1),
    ];

    #[test]
    fn reported_rules_never_decide() {
        let (mut tier_findings, mut np_findings, mut checked) = (0, 0, 0usize);
        for seed in 1..40 {
            let mut loaded = Loaded::default();
            let docs =
                manifests(Shape { pods: 30, policies: 0, seed, cluster_policies: 0 }).into_iter().chain(policies(seed));
            for (i, v) in docs.enumerate() {
                palisade_engine::load::load_value(
                    Origin { source: "s".into(), document: i + 1, item: None },
                    v,
                    &mut loaded,
                );
            }
            assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
            for o in &loaded.cluster_objects {
                assert!(
                    validate_cluster_object(&o.value).is_empty(),
                    "{}: {:?}",
                    o.value.name(),
                    validate_cluster_object(&o.value)
                );
            }
            let model = Model::from_loaded(&loaded);
            let findings: Vec<_> = lint(&model).into_iter().filter(|f| f.id == "PAL107" || f.id == "PAL108").collect();
            if findings.is_empty() {
                continue;
            }
            let mut cluster = Cluster::new();
            for o in &loaded.objects {
                cluster.apply(o.value.clone());
            }
            for o in &loaded.cluster_objects {
                cluster.apply_cluster(o.value.clone());
            }
            let index = Index::build(&cluster);
            let pods: Vec<(ObjectKey, PodFacts, palisade_engine::model::Labels)> = loaded
                .objects
                .iter()
                .filter_map(|o| match &o.value {
                    Object::Pod(p) => {
                        let key = ObjectKey::new(namespace_of(&p.metadata), p.metadata.name.as_deref().unwrap_or(""));
                        let ns = model.namespace_labels(&key.namespace);
                        Some((key, PodFacts::of(p), ns))
                    }
                    _ => None,
                })
                .collect();
            for f in &findings {
                let d =
                    if f.location.field.starts_with("spec.ingress") { Direction::Ingress } else { Direction::Egress };
                let ri: usize = f.location.field.rsplit('[').next().unwrap().trim_end_matches(']').parse().unwrap();
                // (subject, other) ordered as (source, destination).
                let conn = |s: &ObjectKey, o: &ObjectKey, protocol, port| {
                    let (from, to) = if d == Direction::Egress { (s, o) } else { (o, s) };
                    Connection::new(Endpoint::Pod(from.clone()), Endpoint::Pod(to.clone()), protocol, port)
                };
                if f.id == "PAL107" {
                    tier_findings += 1;
                    let name = f.location.object.rsplit(' ').next().unwrap();
                    let o = loaded.cluster_objects.iter().find(|o| o.value.name() == name).unwrap();
                    let p = LoweredPolicy::lower(&o.value.as_policy().unwrap()).unwrap();
                    let rule = &p.rules(d)[ri];
                    for (sk, sf, sns) in pods.iter().filter(|(_, f, ns)| p.subject.matches(ns, &f.labels, false)) {
                        for (ok, of, ons) in pods.iter().filter(|(k, ..)| k != sk) {
                            let end =
                                PeerEnd::Pod { namespace_labels: ons, labels: &of.labels, ip: of.ips.first().copied() };
                            if !rule.peers.iter().any(|x| x.matches(rule.action, &end, &[])) {
                                continue;
                            }
                            let dest = if d == Direction::Egress { &of.ports } else { &sf.ports };
                            for (protocol, port) in PORTS {
                                if rule.port_match(protocol, port, Some(dest)).is_none() {
                                    continue;
                                }
                                let _ = sns;
                                let v = index.decide(&conn(sk, ok, protocol, port)).unwrap();
                                let side = if d == Direction::Egress { v.egress } else { v.ingress }.unwrap();
                                for m in side.admin.iter().chain(&side.baseline) {
                                    assert!(
                                        !(m.policy.name == p.name && m.direction == d && m.rule == ri),
                                        "seed {seed}: {f}\nyet it decides {sk} / {ok} {protocol} {port}"
                                    );
                                }
                                checked += 1;
                            }
                        }
                    }
                } else {
                    np_findings += 1;
                    let key = f.location.object.trim_start_matches("NetworkPolicy ");
                    let np = loaded
                        .objects
                        .iter()
                        .find_map(|o| match &o.value {
                            Object::NetworkPolicy(n)
                                if format!(
                                    "{}/{}",
                                    namespace_of(&n.metadata),
                                    n.metadata.name.as_deref().unwrap_or("")
                                ) == key =>
                            {
                                Some(n)
                            }
                            _ => None,
                        })
                        .unwrap();
                    let policy = Policy::lower(np);
                    let rule = &policy.rules(d).unwrap()[ri];
                    let selected = |k: &ObjectKey, f: &PodFacts| {
                        k.namespace == policy.key.namespace && policy.pod_selector.matches(&f.labels)
                    };
                    for (sk, sf, _) in pods.iter().filter(|(k, f, _)| selected(k, f)) {
                        for (ok, of, ons) in pods.iter().filter(|(k, ..)| k != sk) {
                            let peer_ok = rule.peers.as_ref().is_none_or(|ps| {
                                ps.iter().any(|p| match p {
                                    Peer::Pods { namespaces, pods } => {
                                        let ns_ok = match namespaces {
                                            NamespaceScope::Own(n) => *n == ok.namespace,
                                            NamespaceScope::Selector(s) => s.matches(ons),
                                        };
                                        ns_ok && pods.matches(&of.labels)
                                    }
                                    Peer::IpBlock(b) => of.ips.iter().any(|ip| ip.is_ipv4() && b.contains(ip)),
                                    Peer::Invalid => false,
                                })
                            });
                            if !peer_ok {
                                continue;
                            }
                            let dest = if d == Direction::Egress { &of.ports } else { &sf.ports };
                            for (protocol, port) in PORTS {
                                let port_ok = rule
                                    .ports
                                    .as_ref()
                                    .is_none_or(|es| es.iter().any(|e| e.matches(protocol, port, Some(dest))));
                                if !port_ok {
                                    continue;
                                }
                                let v = index.decide(&conn(sk, ok, protocol, port)).unwrap();
                                let side = if d == Direction::Egress { v.egress } else { v.ingress }.unwrap();
                                assert!(
                                    side.decided_by == Some(Stage::Admin)
                                        && side
                                            .admin
                                            .as_ref()
                                            .is_some_and(|m| m.action == palisade_engine::cnp::Action::Deny),
                                    "seed {seed}: {f}\nyet {sk} / {ok} {protocol} {port} is not denied by the Admin tier: {side:?}"
                                );
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
        eprintln!("PAL107 {tier_findings}, PAL108 {np_findings}, {checked} connections");
        assert!(
            tier_findings >= 5 && np_findings >= 5 && checked > 1000,
            "too few findings to judge: PAL107 {tier_findings}, PAL108 {np_findings}, {checked} connections"
        );
    }
}
