//! Properties that must always hold: the fast index equals the spec-literal reference on random clusters,
//! the matrix equals per-connection decisions, and policies only add.

use palisade_engine::load::{Loaded, Origin, load_value};
use palisade_engine::{Cluster, Connection, Endpoint, Index, IpFamily, Object, Protocol, reference};
use proptest::prelude::*;
use serde_json::{Value, json};

const KEYS: [&str; 3] = ["app", "tier", "env"];
const VALUES: [&str; 3] = ["a", "b", "c"];
const NAMESPACES: [&str; 3] = ["x", "y", "z"];

fn label_map() -> impl Strategy<Value = Value> {
    proptest::collection::btree_map(prop::sample::select(&KEYS[..]), prop::sample::select(&VALUES[..]), 0..3)
        .prop_map(|m| json!(m))
}

fn selector() -> impl Strategy<Value = Value> {
    let expr = (
        prop::sample::select(&KEYS[..]),
        prop::sample::select(&["In", "NotIn", "Exists", "DoesNotExist"][..]),
        proptest::collection::vec(prop::sample::select(&VALUES[..]), 1..3),
    )
        .prop_map(|(k, op, vals)| match op {
            "In" | "NotIn" => json!({"key": k, "operator": op, "values": vals}),
            _ => json!({"key": k, "operator": op}),
        });
    (label_map(), proptest::collection::vec(expr, 0..2))
        .prop_map(|(labels, exprs)| json!({"matchLabels": labels, "matchExpressions": exprs}))
}

fn peer() -> impl Strategy<Value = Value> {
    prop_oneof![
        selector().prop_map(|s| json!({"podSelector": s})),
        selector().prop_map(|s| json!({"namespaceSelector": s})),
        (selector(), selector()).prop_map(|(n, p)| json!({"namespaceSelector": n, "podSelector": p})),
        (0u8..4, 24u8..=30, proptest::option::of(0u8..8)).prop_map(|(third, len, ex)| {
            let cidr = format!("10.244.{third}.0/{len}");
            match ex {
                Some(e) => json!({"ipBlock": {"cidr": format!("10.244.{third}.0/24"), "except": [format!("10.244.{third}.{}/30", e * 4)]}}),
                None => json!({"ipBlock": {"cidr": cidr}}),
            }
        }),
        Just(json!({"ipBlock": {"cidr": "fd00::/64"}})),
    ]
}

fn port() -> impl Strategy<Value = Value> {
    prop_oneof![
        (prop::sample::select(&["TCP", "UDP"][..]), 79u16..83).prop_map(|(p, n)| json!({"protocol": p, "port": n})),
        (79u16..82, 0u16..3).prop_map(|(n, w)| json!({"port": n, "endPort": n + w})),
        prop::sample::select(&["http", "alt", "dns"][..]).prop_map(|n| json!({"port": n})),
        Just(json!({"protocol": "UDP"})),
    ]
}

fn rule(dir: &'static str) -> impl Strategy<Value = Value> {
    (
        proptest::option::of(proptest::collection::vec(peer(), 0..3)),
        proptest::option::of(proptest::collection::vec(port(), 0..3)),
    )
        .prop_map(move |(peers, ports)| {
            let mut r = serde_json::Map::new();
            if let Some(p) = peers {
                r.insert(dir.to_owned(), json!(p));
            }
            if let Some(p) = ports {
                r.insert("ports".to_owned(), json!(p));
            }
            Value::Object(r)
        })
}

fn policy(i: usize) -> impl Strategy<Value = Value> {
    (
        prop::sample::select(&NAMESPACES[..]),
        selector(),
        proptest::option::of(proptest::collection::vec(rule("from"), 0..3)),
        proptest::option::of(proptest::collection::vec(rule("to"), 0..3)),
        prop::sample::select(vec![None, Some(vec!["Ingress"]), Some(vec!["Egress"]), Some(vec!["Ingress", "Egress"])]),
    )
        .prop_map(move |(ns, sel, ing, eg, types)| {
            let mut spec = serde_json::Map::new();
            spec.insert("podSelector".into(), sel);
            if let Some(r) = ing {
                spec.insert("ingress".into(), json!(r));
            }
            if let Some(r) = eg {
                spec.insert("egress".into(), json!(r));
            }
            if let Some(t) = types {
                spec.insert("policyTypes".into(), json!(t));
            }
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                   "metadata": {"name": format!("p{i}"), "namespace": ns}, "spec": spec})
        })
}

fn pod(i: usize) -> impl Strategy<Value = Value> {
    (prop::sample::select(&NAMESPACES[..]), label_map(), any::<bool>(), 0u8..4, any::<bool>()).prop_map(
        move |(ns, labels, named_http_80, third, v6)| {
            let http = if named_http_80 { 80 } else { 81 };
            let mut ips = vec![json!({"ip": format!("10.244.{third}.{}", i + 1)})];
            if v6 {
                ips.push(json!({"ip": format!("fd00::{}", i + 1)}));
            }
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": format!("pod{i}"), "namespace": ns, "labels": labels},
                   "spec": {"containers": [{"name": "c", "ports": [
                        {"containerPort": http, "name": "http"},
                        {"containerPort": 80, "name": "dns", "protocol": "UDP"},
                        {"containerPort": 82, "name": "alt"}]}]},
                   "status": {"phase": "Running", "podIPs": ips}})
        },
    )
}

fn namespaces() -> impl Strategy<Value = Vec<Value>> {
    proptest::collection::vec(label_map(), 3).prop_map(|labels| {
        NAMESPACES
            .iter()
            .zip(labels)
            .map(|(n, l)| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": l}}))
            .collect()
    })
}

fn cluster_docs() -> impl Strategy<Value = (Vec<Value>, Vec<Value>)> {
    let pods = (1usize..7).prop_flat_map(|n| (0..n).map(pod).collect::<Vec<_>>());
    let policies = (0usize..5).prop_flat_map(|n| (0..n).map(policy).collect::<Vec<_>>());
    (namespaces(), pods, policies).prop_map(|(mut ns, pods, pols)| {
        ns.extend(pods);
        (ns, pols)
    })
}

fn objects(docs: Vec<Value>) -> Vec<Object> {
    let mut l = Loaded::default();
    for (i, d) in docs.into_iter().enumerate() {
        load_value(Origin { source: "prop".into(), document: i + 1, item: None }, d, &mut l);
    }
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    l.objects.into_iter().map(|o| o.value).collect()
}

fn endpoints(cluster: &Cluster) -> Vec<Endpoint> {
    let mut e: Vec<Endpoint> = cluster.pods().map(|(k, _)| Endpoint::Pod(k.clone())).collect();
    e.push(Endpoint::Ip("10.244.1.9".parse().unwrap()));
    e.push(Endpoint::Ip("192.0.2.1".parse().unwrap()));
    e
}

fn all_connections(cluster: &Cluster) -> Vec<Connection> {
    let ends = endpoints(cluster);
    let mut out = Vec::new();
    for from in &ends {
        for to in &ends {
            if matches!((from, to), (Endpoint::Ip(_), Endpoint::Ip(_))) {
                continue;
            }
            for protocol in [Protocol::Tcp, Protocol::Udp] {
                for port in 79..84 {
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
    fn index_agrees_with_reference((base, pols) in cluster_docs()) {
        let mut docs = base;
        docs.extend(pols);
        let cluster = Cluster::from_objects(objects(docs));
        let index = Index::build(&cluster);
        for conn in all_connections(&cluster) {
            let fast = index.decide(&conn).unwrap();
            let slow = reference::allowed(&cluster, &conn).unwrap();
            prop_assert_eq!(fast.allowed, slow, "{}", conn);
            // An explanation names an admitting rule exactly when a side is isolated and allowed.
            for side in fast.egress.iter().chain(fast.ingress.iter()) {
                prop_assert_eq!(side.isolated && side.allowed, side.admitted_by.is_some());
            }
        }
    }

    #[test]
    fn matrix_agrees_with_decide((base, pols) in cluster_docs(), port in 79u16..83, udp in any::<bool>(), v6 in any::<bool>()) {
        let mut docs = base;
        docs.extend(pols);
        let cluster = Cluster::from_objects(objects(docs));
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

    /// Policies only add: a new policy on a pod already isolated in that direction never removes a connection.
    #[test]
    fn adding_a_policy_to_an_isolated_direction_never_removes(
        (base, pols) in cluster_docs(), extra in policy(99)
    ) {
        let mut docs = base;
        docs.extend(pols);
        let before = Cluster::from_objects(objects(docs.clone()));
        let mut after_docs = docs;
        after_docs.push(extra);
        let after = Cluster::from_objects(objects(after_docs));
        let (ib, ia) = (Index::build(&before), Index::build(&after));
        for conn in all_connections(&before) {
            let vb = ib.decide(&conn).unwrap();
            let va = ia.decide(&conn).unwrap();
            // Only sides that were isolated before are covered by the property.
            let was_isolated = |s: &Option<palisade_engine::Side>, now: &Option<palisade_engine::Side>| {
                match (s, now) {
                    (Some(b), Some(a)) => !b.isolated || b.allowed <= a.allowed,
                    _ => true,
                }
            };
            let egress_ok = was_isolated(&vb.egress, &va.egress);
            let ingress_ok = was_isolated(&vb.ingress, &va.ingress);
            if vb.egress.as_ref().is_none_or(|s| s.isolated) && vb.ingress.as_ref().is_none_or(|s| s.isolated) && vb.allowed {
                prop_assert!(va.allowed, "{} lost", conn);
            }
            prop_assert!(egress_ok && ingress_ok, "{}", conn);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Relabelling a pod in place answers exactly as an index rebuilt from scratch.
    #[test]
    fn relabel_in_place_equals_rebuild((base, pols) in cluster_docs(), which in 0usize..7, labels in label_map()) {
        let mut docs = base;
        docs.extend(pols);
        let mut cluster = Cluster::from_objects(objects(docs));
        let mut index = Index::build(&cluster);
        let keys: Vec<_> = cluster.pods().map(|(k, _)| k.clone()).collect();
        let key = keys[which % keys.len()].clone();
        let new_labels: palisade_engine::model::Labels = serde_json::from_value(labels).unwrap();
        let mut pod = cluster.pod(&key).unwrap().clone();
        pod.metadata.labels = Some(new_labels.clone());
        cluster.apply(Object::Pod(Box::new(pod)));
        prop_assert!(index.relabel_pod(&key, &new_labels));
        let fresh = Index::build(&cluster);
        for conn in all_connections(&cluster) {
            prop_assert_eq!(index.decide(&conn).unwrap().allowed, fresh.decide(&conn).unwrap().allowed, "{}", conn);
        }
        let m1 = index.matrix(Protocol::Tcp, 80, IpFamily::V4);
        let m2 = fresh.matrix(Protocol::Tcp, 80, IpFamily::V4);
        prop_assert_eq!(m1, m2);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Apply(Value),
    Terminate(usize),
    DeletePod(usize),
    DeletePolicy(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..9).prop_flat_map(pod).prop_map(Op::Apply),
        (0usize..6).prop_flat_map(policy).prop_map(Op::Apply),
        (0usize..9).prop_map(Op::Terminate),
        (0usize..9).prop_map(Op::DeletePod),
        (0usize..6).prop_map(Op::DeletePolicy),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// A store that updates its index in place (pods added, changed, terminated, deleted; policies added,
    /// edited, deleted) answers exactly as an index rebuilt from its cluster.
    #[test]
    fn store_updates_in_place_equal_rebuild((base, pols) in cluster_docs(), ops in proptest::collection::vec(op(), 1..7)) {
        let mut docs = base;
        docs.extend(pols);
        // The same changes to a plain cluster (rebuilt from) and to a store (updated in place).
        let mut cluster = Cluster::from_objects(objects(docs));
        let mut store = palisade_engine::Store::from_cluster(&cluster);
        store.index();
        for op in ops {
            let pods: Vec<_> = cluster.pods().map(|(k, _)| k.clone()).collect();
            let policies: Vec<_> = cluster.policies().map(|(k, _)| k.clone()).collect();
            match op {
                Op::Apply(doc) => {
                    let o = objects(vec![doc]).remove(0);
                    cluster.apply(o.clone());
                    store.apply(o);
                }
                Op::Terminate(i) if !pods.is_empty() => {
                    let mut p = cluster.pod(&pods[i % pods.len()]).unwrap().clone();
                    p.status.get_or_insert_with(Default::default).phase = Some("Succeeded".into());
                    cluster.apply(Object::Pod(Box::new(p.clone())));
                    store.apply(Object::Pod(Box::new(p)));
                }
                Op::DeletePod(i) if !pods.is_empty() => {
                    let k = &pods[i % pods.len()];
                    cluster.delete(palisade_engine::Kind::Pod, &k.namespace, &k.name);
                    store.delete(palisade_engine::Kind::Pod, &k.namespace, &k.name);
                }
                Op::DeletePolicy(i) if !policies.is_empty() => {
                    let k = &policies[i % policies.len()];
                    cluster.delete(palisade_engine::Kind::NetworkPolicy, &k.namespace, &k.name);
                    store.delete(palisade_engine::Kind::NetworkPolicy, &k.namespace, &k.name);
                }
                _ => {}
            }
        }
        prop_assert!(!store.needs_rebuild(), "pod and policy changes are made in place");
        prop_assert_eq!(store.namespace_count(), cluster.namespaces().len(), "namespaces counted as objects come and go");
        let fresh = Index::build(&cluster);
        let index = store.index();
        for conn in all_connections(&cluster) {
            let (a, b) = (index.decide(&conn), fresh.decide(&conn));
            prop_assert_eq!(a.as_ref().map(|v| v.allowed).ok(), b.as_ref().map(|v| v.allowed).ok(), "{}", conn);
            if let (Ok(a), Ok(b)) = (a, b) {
                prop_assert_eq!(a, b, "{}: the same explanation", conn);
            }
        }
        for (proto, port, fam) in [(Protocol::Tcp, 80, IpFamily::V4), (Protocol::Udp, 80, IpFamily::V6)] {
            prop_assert_eq!(index.matrix(proto, port, fam), fresh.matrix(proto, port, fam));
        }
    }
}
