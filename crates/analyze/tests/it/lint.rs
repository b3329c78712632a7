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
    assert_eq!(CASES.len(), palisade_analyze::lint::ALL_CHECKS.len());
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
