//! The tiers (ClusterNetworkPolicy Admin and Baseline, AdminNetworkPolicy, BaselineAdminNetworkPolicy) around
//! NetworkPolicy: the fast index equals the spec-literal reference on random clusters with all three tiers,
//! host-network pods and Nodes; the matrix equals per-connection decisions; an index changed in place
//! answers as a rebuilt one, explanations included.

use palisade_engine::cnp::ClusterKind;
use palisade_engine::load::{Loaded, Origin, load_value};
use palisade_engine::verdict::Stage;
use palisade_engine::{Cluster, Connection, Endpoint, Index, IpFamily, Object, Protocol, reference};
use proptest::prelude::*;
use serde_json::{Value, json};

const KEYS: [&str; 2] = ["app", "tier"];
const VALUES: [&str; 2] = ["a", "b"];
const NAMESPACES: [&str; 3] = ["x", "y", "z"];
/// Node addresses; host-network pods use them.
const NODE_IPS: [(&str, &str); 2] = [("172.18.0.2", "fc00::2"), ("172.18.0.3", "fc00::3")];

fn label_map() -> impl Strategy<Value = Value> {
    proptest::collection::btree_map(prop::sample::select(&KEYS[..]), prop::sample::select(&VALUES[..]), 0..2)
        .prop_map(|m| json!(m))
}

fn selector() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({})),
        label_map().prop_map(|l| json!({"matchLabels": l})),
        (prop::sample::select(&KEYS[..]), prop::sample::select(&["In", "NotIn", "Exists"][..])).prop_map(|(k, op)| {
            match op {
                "Exists" => json!({"matchExpressions": [{"key": k, "operator": op}]}),
                _ => json!({"matchExpressions": [{"key": k, "operator": op, "values": ["a"]}]}),
            }
        }),
        prop::sample::select(&NAMESPACES[..]).prop_map(|n| json!({"matchLabels": {"kubernetes.io/metadata.name": n}})),
    ]
}

fn pods_or_namespaces() -> impl Strategy<Value = Value> {
    prop_oneof![
        selector().prop_map(|s| json!({"namespaces": s})),
        (selector(), selector()).prop_map(|(n, p)| json!({"pods": {"namespaceSelector": n, "podSelector": p}})),
        selector().prop_map(|p| json!({"pods": {"podSelector": p}})),
    ]
}

fn egress_peer() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => pods_or_namespaces(),
        1 => prop::sample::select(&["10.244.1.0/24", "10.244.0.0/16", "0.0.0.0/0", "fd00::/64", "172.18.0.2/32", "192.0.2.0/24"][..])
            .prop_map(|c| json!({"networks": [c]})),
        1 => prop_oneof![Just(json!({})), Just(json!({"matchLabels": {"zone": "a"}}))].prop_map(|s| json!({"nodes": s})),
        1 => Just(json!({"domainNames": ["*.example.com"]})),
    ]
}

fn protocol() -> impl Strategy<Value = Value> {
    prop_oneof![
        (prop::sample::select(&["tcp", "udp", "sctp"][..]), 79i64..83)
            .prop_map(|(p, n)| json!({p: {"destinationPort": {"number": n}}})),
        (prop::sample::select(&["tcp", "udp"][..]), 79i64..82, 1i64..3)
            .prop_map(|(p, s, w)| json!({p: {"destinationPort": {"range": {"start": s, "end": s + w}}}})),
        prop::sample::select(&["http", "dns", "alt"][..]).prop_map(|n| json!({"destinationNamedPort": n})),
    ]
}

fn cnp_rule(dir: &'static str, peers: BoxedStrategy<Value>) -> impl Strategy<Value = Value> {
    (
        prop::sample::select(&["Accept", "Deny", "Pass"][..]),
        proptest::collection::vec(peers, 1..3),
        proptest::option::of(proptest::collection::vec(protocol(), 1..3)),
        proptest::option::of(prop::sample::select(&["r-a", "r-b"][..])),
    )
        .prop_map(move |(action, peers, protocols, name)| {
            let mut r = serde_json::Map::new();
            r.insert("action".into(), json!(action));
            r.insert(dir.into(), json!(peers));
            if let Some(p) = protocols {
                r.insert("protocols".into(), json!(p));
            }
            if let Some(n) = name {
                r.insert("name".into(), json!(n));
            }
            Value::Object(r)
        })
}

/// A ClusterNetworkPolicy in either tier, at one of three priorities (so ties happen and are broken by name).
fn cnp(i: usize) -> impl Strategy<Value = Value> {
    (
        prop::sample::select(&["Admin", "Baseline"][..]),
        1i64..4,
        pods_or_namespaces(),
        proptest::collection::vec(cnp_rule("from", pods_or_namespaces().boxed()), 0..3),
        proptest::collection::vec(cnp_rule("to", egress_peer().boxed()), 0..3),
    )
        .prop_map(move |(tier, priority, subject, ingress, egress)| {
            json!({"apiVersion": "policy.networking.k8s.io/v1alpha2", "kind": "ClusterNetworkPolicy",
                   "metadata": {"name": format!("c{i}")},
                   "spec": {"tier": tier, "priority": priority, "subject": subject, "ingress": ingress, "egress": egress}})
        })
}

/// A v1alpha1 policy: an AdminNetworkPolicy, or the BaselineAdminNetworkPolicy (the same rules, v1alpha1 words).
fn v1alpha1(i: usize) -> impl Strategy<Value = Value> {
    (any::<bool>(), cnp(i)).prop_map(move |(baseline, c)| {
        let spec = &c["spec"];
        let convert = |rules: &Value, peers: &str| -> Value {
            let rules: Vec<Value> = rules
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    let action = match r["action"].as_str() {
                        Some("Accept") => "Allow",
                        Some("Pass") if baseline => "Deny",
                        Some(a) => a,
                        None => "Deny",
                    };
                    let mut out = json!({"action": action, peers: r[peers].clone()});
                    if let Some(ps) = r["protocols"].as_array() {
                        let ports: Vec<Value> = ps
                            .iter()
                            .map(|p| {
                                if let Some(n) = p["destinationNamedPort"].as_str() {
                                    return json!({"namedPort": n});
                                }
                                let (proto, body) = p.as_object().and_then(|m| m.iter().next()).expect("one protocol");
                                let port = &body["destinationPort"];
                                let protocol = proto.to_uppercase();
                                match port.get("number") {
                                    Some(n) => json!({"portNumber": {"protocol": protocol, "port": n}}),
                                    None => json!({"portRange": {"protocol": protocol, "start": port["range"]["start"], "end": port["range"]["end"]}}),
                                }
                            })
                            .collect();
                        out["ports"] = json!(ports);
                    }
                    out
                })
                .collect();
            json!(rules)
        };
        let ingress = convert(&spec["ingress"], "from");
        let mut egress = convert(&spec["egress"], "to");
        // domainNames is not in the BaselineAdminNetworkPolicy schema.
        if baseline && let Some(rules) = egress.as_array_mut() {
            for r in rules {
                if let Some(peers) = r["to"].as_array_mut() {
                    peers.retain(|p| p.get("domainNames").is_none());
                    if peers.is_empty() {
                        peers.push(json!({"namespaces": {}}));
                    }
                }
            }
        }
        let mut subject = spec["subject"].clone();
        if let Some(p) = subject.get_mut("pods")
            && p.get("namespaceSelector").is_none()
        {
            p["namespaceSelector"] = json!({});
        }
        if baseline {
            json!({"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "BaselineAdminNetworkPolicy",
                   "metadata": {"name": "default"},
                   "spec": {"subject": subject, "ingress": ingress, "egress": egress}})
        } else {
            json!({"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy",
                   "metadata": {"name": format!("a{i}")},
                   "spec": {"priority": spec["priority"], "subject": subject, "ingress": ingress, "egress": egress}})
        }
    })
}

fn netpol(i: usize) -> impl Strategy<Value = Value> {
    (
        prop::sample::select(&NAMESPACES[..]),
        selector(),
        prop::sample::select(vec![vec!["Ingress"], vec!["Egress"], vec!["Ingress", "Egress"]]),
        proptest::option::of(selector()),
    )
        .prop_map(move |(ns, sel, types, allow)| {
            let rules = match allow {
                Some(s) => json!([{"from": [{"namespaceSelector": {}, "podSelector": s}], "ports": [{"port": 80}]}]),
                None => json!([]),
            };
            let eg = match types.contains(&"Egress") {
                true => json!([{"to": [{"ipBlock": {"cidr": "10.244.0.0/16"}}], "ports": [{"protocol": "UDP", "port": 80}]}]),
                false => json!([]),
            };
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                   "metadata": {"name": format!("p{i}"), "namespace": ns},
                   "spec": {"podSelector": sel, "policyTypes": types, "ingress": rules, "egress": eg}})
        })
}

fn pod(i: usize) -> impl Strategy<Value = Value> {
    (prop::sample::select(&NAMESPACES[..]), label_map(), any::<bool>(), 0u8..3, prop::bool::weighted(0.2), 0usize..2)
        .prop_map(move |(ns, labels, named_http_80, third, host, node)| {
            let http = if named_http_80 { 80 } else { 81 };
            let ips = if host {
                vec![json!({"ip": NODE_IPS[node].0}), json!({"ip": NODE_IPS[node].1})]
            } else {
                vec![json!({"ip": format!("10.244.{third}.{}", i + 1)}), json!({"ip": format!("fd00::{}", i + 1)})]
            };
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": format!("pod{i}"), "namespace": ns, "labels": labels},
                   "spec": {"hostNetwork": host, "containers": [{"name": "c", "ports": [
                        {"containerPort": http, "name": "http"},
                        {"containerPort": 80, "name": "dns", "protocol": "UDP"},
                        {"containerPort": 82, "name": "alt"}]}]},
                   "status": {"phase": "Running", "podIPs": ips}})
        })
}

fn base() -> impl Strategy<Value = Vec<Value>> {
    let namespaces = proptest::collection::vec(label_map(), 3);
    let pods = (1usize..6).prop_flat_map(|n| (0..n).map(pod).collect::<Vec<_>>());
    let zone = proptest::collection::vec(any::<bool>(), 2);
    (namespaces, pods, zone).prop_map(|(labels, pods, zone)| {
        let mut docs: Vec<Value> = NAMESPACES
            .iter()
            .zip(labels)
            .map(|(n, l)| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": l}}))
            .collect();
        for (i, (v4, v6)) in NODE_IPS.iter().enumerate() {
            let labels = if zone[i] { json!({"zone": "a"}) } else { json!({}) };
            docs.push(
                json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": format!("node-{i}"), "labels": labels},
                "status": {"addresses": [{"type": "InternalIP", "address": v4}, {"type": "InternalIP", "address": v6},
                                         {"type": "Hostname", "address": format!("node-{i}")}]}}),
            );
        }
        docs.extend(pods);
        docs
    })
}

fn policies() -> impl Strategy<Value = Vec<Value>> {
    let cnps = (0usize..4).prop_flat_map(|n| (0..n).map(cnp).collect::<Vec<_>>());
    let old = (0usize..2).prop_flat_map(|n| (0..n).map(v1alpha1).collect::<Vec<_>>());
    let nps = (0usize..3).prop_flat_map(|n| (0..n).map(netpol).collect::<Vec<_>>());
    (cnps, old, nps).prop_map(|(mut a, b, c)| {
        a.extend(b);
        a.extend(c);
        a
    })
}

fn load(docs: Vec<Value>) -> Loaded {
    let mut l = Loaded::default();
    for (i, d) in docs.into_iter().enumerate() {
        load_value(Origin { source: "prop".into(), document: i + 1, item: None }, d, &mut l);
    }
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    l
}

fn cluster(docs: Vec<Value>) -> Cluster {
    let l = load(docs);
    let mut c = Cluster::from_objects(l.objects.into_iter().map(|o| o.value));
    for o in l.cluster_objects {
        c.apply_cluster(o.value);
    }
    c
}

fn all_connections(cluster: &Cluster) -> Vec<Connection> {
    let mut ends: Vec<Endpoint> = cluster.pods().map(|(k, _)| Endpoint::Pod(k.clone())).collect();
    for ip in ["10.244.1.9", "192.0.2.1", "172.18.0.3"] {
        ends.push(Endpoint::Ip(ip.parse().unwrap()));
    }
    let mut out = Vec::new();
    for from in &ends {
        for to in &ends {
            if matches!((from, to), (Endpoint::Ip(_), Endpoint::Ip(_))) {
                continue;
            }
            for protocol in [Protocol::Tcp, Protocol::Udp] {
                for port in [79, 80, 81, 82] {
                    let c = Connection::new(from.clone(), to.clone(), protocol, port);
                    if matches!((from, to), (Endpoint::Pod(_), Endpoint::Pod(_))) {
                        out.push(c.clone().with_family(IpFamily::V6));
                    }
                    out.push(c);
                }
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn index_agrees_with_reference_across_tiers(base in base(), pols in policies()) {
        let mut docs = base;
        docs.extend(pols);
        let cluster = cluster(docs);
        let index = Index::build(&cluster);
        for conn in all_connections(&cluster) {
            let fast = index.decide(&conn).unwrap();
            let slow = reference::allowed(&cluster, &conn).unwrap();
            prop_assert_eq!(fast.allowed, slow, "{}", conn);
            for side in fast.egress.iter().chain(fast.ingress.iter()) {
                // The stage named is the one that decided.
                match side.decided_by {
                    Some(Stage::Admin) => prop_assert!(side.admin.as_ref().is_some_and(|m| (m.action == palisade_engine::cnp::Action::Accept) == side.allowed)),
                    Some(Stage::Baseline) => prop_assert!(side.baseline.as_ref().is_some_and(|m| (m.action == palisade_engine::cnp::Action::Accept) == side.allowed)),
                    Some(Stage::Default) => prop_assert!(side.allowed && !side.isolated),
                    Some(Stage::NetworkPolicy) | None => prop_assert_eq!(side.isolated && side.allowed, side.admitted_by.is_some()),
                }
            }
        }
    }

    #[test]
    fn matrix_agrees_with_decide_across_tiers(base in base(), pols in policies(), port in 79u16..83, udp in any::<bool>(), v6 in any::<bool>()) {
        let mut docs = base;
        docs.extend(pols);
        let cluster = cluster(docs);
        let index = Index::build(&cluster);
        let protocol = if udp { Protocol::Udp } else { Protocol::Tcp };
        let family = if v6 { IpFamily::V6 } else { IpFamily::V4 };
        let m = index.matrix(protocol, port, family);
        for (i, a) in m.pods.iter().enumerate() {
            for (j, b) in m.pods.iter().enumerate() {
                let c = Connection::new(Endpoint::Pod(a.clone()), Endpoint::Pod(b.clone()), protocol, port).with_family(family);
                prop_assert_eq!(m.get(i, j), index.decide(&c).unwrap().allowed, "{}", c);
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Apply(Value),
    DeleteCluster(ClusterKind, String),
    DeletePod(usize),
    Relabel(usize, Value),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..5).prop_flat_map(cnp).prop_map(Op::Apply),
        (0usize..2).prop_flat_map(v1alpha1).prop_map(Op::Apply),
        (0usize..3).prop_flat_map(netpol).prop_map(Op::Apply),
        (0usize..7).prop_flat_map(pod).prop_map(Op::Apply),
        (0usize..5).prop_map(|i| Op::DeleteCluster(ClusterKind::ClusterNetworkPolicy, format!("c{i}"))),
        Just(Op::DeleteCluster(ClusterKind::BaselineAdminNetworkPolicy, "default".into())),
        Just(Op::DeleteCluster(ClusterKind::Node, "node-0".into())),
        (0usize..7).prop_map(Op::DeletePod),
        (0usize..7, label_map()).prop_map(|(i, l)| Op::Relabel(i, l)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    /// Tier policies, Nodes, pods and NetworkPolicies changed in place answer as a rebuilt index, explanations
    /// included.
    #[test]
    fn in_place_updates_equal_rebuild_across_tiers(base in base(), pols in policies(), ops in proptest::collection::vec(op(), 1..6)) {
        let mut docs = base;
        docs.extend(pols);
        let mut cluster = cluster(docs);
        let mut index = Index::build(&cluster);
        for op in ops {
            let pods: Vec<_> = cluster.pods().map(|(k, _)| k.clone()).collect();
            match op {
                Op::Apply(doc) => {
                    let l = load(vec![doc]);
                    for o in l.objects {
                        match &o.value {
                            Object::Pod(p) => index.upsert_pod(&o.value.key(), palisade_engine::model::PodFacts::of(p)),
                            Object::NetworkPolicy(np) => index.upsert_policy(np),
                            Object::Namespace(_) => {}
                        }
                        cluster.apply(o.value);
                    }
                    for o in l.cluster_objects {
                        index.apply_cluster_object(&o.value);
                        cluster.apply_cluster(o.value);
                    }
                }
                Op::DeleteCluster(kind, name) => {
                    prop_assert_eq!(index.delete_cluster_object(kind, &name), cluster.delete_cluster(kind, &name));
                }
                Op::DeletePod(i) if !pods.is_empty() => {
                    let k = &pods[i % pods.len()];
                    cluster.delete(palisade_engine::Kind::Pod, &k.namespace, &k.name);
                    index.remove_pod(k);
                }
                Op::Relabel(i, labels) if !pods.is_empty() => {
                    let k = &pods[i % pods.len()];
                    let labels: palisade_engine::model::Labels = serde_json::from_value(labels).unwrap();
                    let mut p = cluster.pod(k).unwrap().clone();
                    p.metadata.labels = Some(labels.clone());
                    cluster.apply(Object::Pod(Box::new(p)));
                    prop_assert!(index.relabel_pod(k, &labels));
                }
                _ => {}
            }
        }
        let fresh = Index::build(&cluster);
        for conn in all_connections(&cluster) {
            let (a, b) = (index.decide(&conn), fresh.decide(&conn));
            prop_assert_eq!(a.as_ref().ok(), b.as_ref().ok(), "{}: the same verdict and explanation", conn);
            prop_assert_eq!(a.map(|v| v.allowed).ok(), reference::allowed(&cluster, &conn), "{}", conn);
        }
        for (proto, port, fam) in [(Protocol::Tcp, 80, IpFamily::V4), (Protocol::Udp, 80, IpFamily::V6)] {
            prop_assert_eq!(index.matrix(proto, port, fam), fresh.matrix(proto, port, fam));
        }
    }
}
