//! The compiled table judged packet by packet: a small model of how nftables walks our chains (verdict-map
//! dispatch, `jump`, `goto`, `return`, `accept`, `drop`, set lookups with intervals and concatenations)
//! decides the first packet of every connection of random clusters with NetworkPolicies and both tiers of
//! ClusterNetworkPolicy, and must agree with the engine's verdict on every one. The live conformance runs
//! check the same against the kernel on the corpus; this covers the combinations no corpus lists.

use std::net::IpAddr;

use palisade_engine::load::{Loaded, Origin, load_value};
use palisade_engine::synth::Rng;
use palisade_engine::{Cluster, Connection, Endpoint, Index, IpFamily, Protocol};
use palisade_nft::{LogOptions, Node, Ruleset, compile_with};
use serde_json::{Value, json};

/// The first packet of a connection.
#[derive(Debug, Clone, Copy)]
struct Packet {
    src: IpAddr,
    dst: IpAddr,
    protocol: &'static str,
    port: u16,
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Accept,
    Drop,
    /// Fell off the end of the chain or returned.
    Continue,
}

/// Whether one part of a set element (`a`, or an interval `a-b`) holds one part of a key.
fn part_holds(element: &str, key: &str) -> bool {
    if let (Ok(a), Ok(k)) = (element.parse::<IpAddr>(), key.parse::<IpAddr>()) {
        return a == k;
    }
    if let Some((a, b)) = element.split_once('-') {
        if let (Ok(a), Ok(b), Ok(k)) = (a.parse::<IpAddr>(), b.parse::<IpAddr>(), key.parse::<IpAddr>()) {
            return a <= k && k <= b;
        }
        if let (Ok(a), Ok(b), Ok(k)) = (a.parse::<u16>(), b.parse::<u16>(), key.parse::<u16>()) {
            return a <= k && k <= b;
        }
    }
    element == key
}

fn set_holds(rs: &Ruleset, name: &str, key: &[String]) -> bool {
    let set = rs.sets.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no set {name}"));
    set.elements.iter().any(|e| {
        let parts: Vec<&str> = e.split(" . ").collect();
        parts.len() == key.len() && parts.iter().zip(key).all(|(p, k)| part_holds(p, k))
    })
}

fn run(rs: &Ruleset, chain: &str, p: Packet, depth: usize) -> Outcome {
    assert!(depth < 16, "a jump loop at {chain}");
    let c = rs.chains.iter().find(|c| c.name == chain).unwrap_or_else(|| panic!("no chain {chain}"));
    let v4 = p.src.is_ipv4();
    'rules: for rule in &c.rules {
        let body = rule.split(" comment \"").next().unwrap_or(rule);
        let t: Vec<&str> = body.split_whitespace().collect();
        if t.contains(&"log") {
            // A log rule has no verdict (checked over every table by `verdicts_never_share_a_rule_with_log`):
            // whatever its dedup and limits do, the packet goes on to the next rule.
            continue 'rules;
        }
        let mut i = 0;
        while i < t.len() {
            let addr = |dir: &str| if dir == "saddr" { p.src } else { p.dst };
            match t[i] {
                "counter" if t.get(i + 1) == Some(&"name") => i += 3,
                "counter" => i += 1,
                "meta" if t[i + 1] == "nfproto" => {
                    if (t[i + 2] == "ipv4") != v4 {
                        continue 'rules;
                    }
                    i += 3;
                }
                "meta" if t[i + 1] == "l4proto" => {
                    assert_eq!(&t[i + 2..i + 5], &[".", "th", "dport"], "{rule}");
                    let set = t[i + 5].trim_start_matches('@');
                    if !set_holds(rs, set, &[p.protocol.to_owned(), p.port.to_string()]) {
                        continue 'rules;
                    }
                    i += 6;
                }
                fam @ ("ip" | "ip6") => {
                    if (fam == "ip") != v4 {
                        continue 'rules;
                    }
                    let a = addr(t[i + 1]).to_string();
                    if t[i + 2] == "." {
                        assert_eq!(&t[i + 3..i + 8], &["meta", "l4proto", ".", "th", "dport"], "{rule}");
                        let set = t[i + 8].trim_start_matches('@');
                        if !set_holds(rs, set, &[a, p.protocol.to_owned(), p.port.to_string()]) {
                            continue 'rules;
                        }
                        i += 9;
                    } else {
                        let set = t[i + 2].trim_start_matches('@');
                        if !set_holds(rs, set, &[a]) {
                            continue 'rules;
                        }
                        i += 3;
                    }
                }
                "accept" => return Outcome::Accept,
                "drop" => return Outcome::Drop,
                "return" => return Outcome::Continue,
                "jump" => match run(rs, t[i + 1], p, depth + 1) {
                    Outcome::Continue => continue 'rules,
                    o => return o,
                },
                "goto" => return run(rs, t[i + 1], p, depth + 1),
                other => panic!("the model does not know {other:?} in {rule}"),
            }
        }
        panic!("a rule without a verdict: {rule}");
    }
    Outcome::Continue
}

/// What the table does with a new connection: each side dispatched by its verdict map (base chains accept
/// what their dispatch does not drop).
fn admits(rs: &Ruleset, p: Packet) -> bool {
    let f = if p.src.is_ipv4() { "4" } else { "6" };
    let side = |map: &str, addr: IpAddr| {
        let Some(verdict) = rs.maps[map].get(&addr.to_string()) else { return true };
        let target = verdict.strip_prefix("goto ").expect("dispatch is a goto");
        run(rs, target, p, 0) != Outcome::Drop
    };
    side(if f == "4" { "eg4" } else { "eg6" }, p.src) && side(if f == "4" { "ing4" } else { "ing6" }, p.dst)
}

const NAMESPACES: [&str; 3] = ["x", "y", "z"];
const NODE_IPS: [(&str, &str); 2] = [("172.18.0.2", "fc00::2"), ("172.18.0.3", "fc00::3")];

fn pick<'a>(rng: &mut Rng, from: &[&'a str]) -> &'a str {
    from[rng.below(from.len())]
}

fn labels(rng: &mut Rng) -> Value {
    if rng.chance(50) { json!({}) } else { json!({ pick(rng, &["app", "tier"]): pick(rng, &["a", "b"]) }) }
}

fn selector(rng: &mut Rng) -> Value {
    match rng.below(4) {
        0 => json!({}),
        1 => json!({"matchLabels": labels(rng)}),
        2 => json!({"matchExpressions": [{"key": pick(rng, &["app", "tier"]), "operator": "NotIn", "values": ["a"]}]}),
        _ => json!({"matchLabels": {"kubernetes.io/metadata.name": pick(rng, &NAMESPACES)}}),
    }
}

fn pods_or_namespaces(rng: &mut Rng) -> Value {
    if rng.chance(40) {
        json!({"namespaces": selector(rng)})
    } else {
        json!({"pods": {"namespaceSelector": selector(rng), "podSelector": selector(rng)}})
    }
}

fn egress_peer(rng: &mut Rng) -> Value {
    match rng.below(6) {
        0 => {
            json!({"networks": [pick(rng, &["10.244.1.0/24", "10.244.0.0/16", "0.0.0.0/0", "fd00::/64", "172.18.0.2/32"])]})
        }
        1 => json!({"nodes": if rng.chance(50) { json!({}) } else { json!({"matchLabels": {"zone": "a"}}) }}),
        2 => json!({"domainNames": ["*.example.com"]}),
        _ => pods_or_namespaces(rng),
    }
}

fn protocol(rng: &mut Rng) -> Value {
    let n = 79 + rng.below(4) as i64;
    match rng.below(3) {
        0 => json!({ pick(rng, &["tcp", "udp"]): {"destinationPort": {"number": n}} }),
        1 => json!({ pick(rng, &["tcp", "udp"]): {"destinationPort": {"range": {"start": n, "end": n + 1}}} }),
        _ => json!({"destinationNamedPort": pick(rng, &["http", "dns", "alt"])}),
    }
}

fn rule(rng: &mut Rng, egress: bool) -> Value {
    let peers: Vec<Value> =
        (0..1 + rng.below(2)).map(|_| if egress { egress_peer(rng) } else { pods_or_namespaces(rng) }).collect();
    let mut r = json!({"action": pick(rng, &["Accept", "Deny", "Pass"]), (if egress { "to" } else { "from" }): peers});
    if rng.chance(60) {
        r["protocols"] = json!((0..1 + rng.below(2)).map(|_| protocol(rng)).collect::<Vec<_>>());
    }
    r
}

/// A random ClusterNetworkPolicy `c{i}`.
pub(crate) fn random_cnp(rng: &mut Rng, i: usize) -> Value {
    let ingress: Vec<Value> = (0..rng.below(3)).map(|_| rule(rng, false)).collect();
    let egress: Vec<Value> = (0..rng.below(3)).map(|_| rule(rng, true)).collect();
    json!({"apiVersion": "policy.networking.k8s.io/v1alpha2", "kind": "ClusterNetworkPolicy",
        "metadata": {"name": format!("c{i}")},
        "spec": {"tier": pick(rng, &["Admin", "Baseline"]), "priority": 1 + rng.below(3),
                 "subject": pods_or_namespaces(rng), "ingress": ingress, "egress": egress}})
}

/// A random pod `pod{i}` (one in seven on the host network).
pub(crate) fn random_pod(rng: &mut Rng, i: usize) -> Value {
    let host = rng.chance(15);
    let ips = if host {
        let (v4, v6) = NODE_IPS[rng.below(2)];
        json!([{"ip": v4}, {"ip": v6}])
    } else {
        json!([{"ip": format!("10.244.{}.{}", rng.below(3), i + 1)}, {"ip": format!("fd00::{}", i + 1)}])
    };
    let http = if rng.chance(50) { 80 } else { 81 };
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("pod{i}"), "namespace": pick(rng, &NAMESPACES), "labels": labels(rng)},
        "spec": {"hostNetwork": host, "containers": [{"name": "c", "ports": [
            {"containerPort": http, "name": "http"}, {"containerPort": 80, "name": "dns", "protocol": "UDP"},
            {"containerPort": 82, "name": "alt"}]}]},
        "status": {"phase": "Running", "podIPs": ips}})
}

/// A random Namespace or Node, relabelled.
pub(crate) fn random_relabel(rng: &mut Rng) -> Value {
    if rng.chance(50) {
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": pick(rng, &NAMESPACES), "labels": labels(rng)}})
    } else {
        let i = rng.below(2);
        let l = if rng.chance(50) { json!({"zone": "a"}) } else { json!({}) };
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": format!("node-{i}"), "labels": l},
            "status": {"addresses": [{"type": "InternalIP", "address": NODE_IPS[i].0}, {"type": "InternalIP", "address": NODE_IPS[i].1}]}})
    }
}

pub(crate) fn load_docs(docs: Vec<Value>) -> Loaded {
    let mut loaded = Loaded::default();
    for (i, d) in docs.into_iter().enumerate() {
        load_value(Origin { source: "random".into(), document: i + 1, item: None }, d, &mut loaded);
    }
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    loaded
}

/// A random cluster: three namespaces, two Nodes, a few pods (some on the host network), ClusterNetworkPolicies
/// in both tiers at three priorities (so ties happen) and NetworkPolicies.
pub(crate) fn random_cluster(seed: u64) -> Cluster {
    let mut rng = Rng::new(seed);
    let mut docs: Vec<Value> = NAMESPACES
        .iter()
        .map(|n| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": labels(&mut rng)}}))
        .collect();
    for (i, (v4, v6)) in NODE_IPS.iter().enumerate() {
        let l = if rng.chance(50) { json!({"zone": "a"}) } else { json!({}) };
        docs.push(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": format!("node-{i}"), "labels": l},
            "status": {"addresses": [{"type": "InternalIP", "address": v4}, {"type": "InternalIP", "address": v6}]}}));
    }
    for i in 0..2 + rng.below(5) {
        docs.push(random_pod(&mut rng, i));
    }
    for i in 0..rng.below(5) {
        docs.push(random_cnp(&mut rng, i));
    }
    for i in 0..rng.below(3) {
        let types = pick(&mut rng, &["Ingress", "Egress", "Both"]);
        let types: Vec<&str> = if types == "Both" { vec!["Ingress", "Egress"] } else { vec![types] };
        docs.push(json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": format!("p{i}"), "namespace": pick(&mut rng, &NAMESPACES)},
            "spec": {"podSelector": selector(&mut rng), "policyTypes": types,
                     "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": selector(&mut rng)}], "ports": [{"port": "http"}]}],
                     "egress": [{"to": [{"ipBlock": {"cidr": "10.244.0.0/16"}}], "ports": [{"protocol": "UDP", "port": 80}]}]}}));
    }
    let loaded = load_docs(docs);
    let mut cluster = Cluster::from_objects(loaded.objects.into_iter().map(|o| o.value));
    for o in loaded.cluster_objects {
        cluster.apply_cluster(o.value);
    }
    cluster
}

/// Every pod is local (both sides of a connection between pods are enforced on this node); host-network
/// pods too, as an agent would have them (no interface).
pub(crate) fn all_local(cluster: &Cluster) -> Node {
    Node {
        interfaces: cluster
            .pods()
            .enumerate()
            .map(|(i, (k, p))| {
                let host = p.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false);
                (k.clone(), if host { String::new() } else { format!("v{i}") })
            })
            .collect(),
        ..Node::default()
    }
}

fn address(index: &Index, end: &Endpoint, family: IpFamily) -> Option<IpAddr> {
    match end {
        Endpoint::Pod(k) => index.pod(index.pod_id(k)?).facts.ip(family),
        Endpoint::Ip(ip) => Some(*ip),
    }
}

#[test]
fn the_table_decides_every_connection_as_the_engine_does() {
    let mut checked = 0usize;
    for seed in 0..400u64 {
        let cluster = random_cluster(seed);
        let index = Index::build(&cluster);
        // Deny logging on for most seeds: the log rules before each drop must change no verdict.
        let log = (seed % 4 != 0).then(LogOptions::default);
        let rs = compile_with(&index, &all_local(&cluster), "palisade", log);
        crate::assert_verdicts_apart(&rs.render_table());
        let mut ends: Vec<Endpoint> = cluster.pods().map(|(k, _)| Endpoint::Pod(k.clone())).collect();
        ends.extend(["10.244.1.9", "192.0.2.1", "172.18.0.3"].map(|ip| Endpoint::Ip(ip.parse().unwrap())));
        for from in &ends {
            for to in &ends {
                if from == to || matches!((from, to), (Endpoint::Ip(_), Endpoint::Ip(_))) {
                    continue;
                }
                for family in [IpFamily::V4, IpFamily::V6] {
                    let (Some(src), Some(dst)) = (address(&index, from, family), address(&index, to, family)) else {
                        continue;
                    };
                    if src.is_ipv4() != dst.is_ipv4() || src == dst {
                        continue;
                    }
                    for (protocol, name) in [(Protocol::Tcp, "tcp"), (Protocol::Udp, "udp")] {
                        for port in 79..=82 {
                            let conn = Connection::new(from.clone(), to.clone(), protocol, port).with_family(family);
                            let want = index.decide(&conn).expect("the ends exist").allowed;
                            let got = admits(&rs, Packet { src, dst, protocol: name, port });
                            assert_eq!(
                                got,
                                want,
                                "seed {seed}: {conn}: the table says {got}, the engine {want}\n{}",
                                rs.render_table()
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 10_000, "only {checked} connections checked");
}

/// One random change, to the cluster and the store alike: a ClusterNetworkPolicy applied or deleted, a pod
/// added (or moved, names are reused) or deleted, a Namespace or Node relabelled.
pub(crate) fn random_change(rng: &mut Rng, cluster: &mut Cluster, store: &mut palisade_engine::Store) {
    use palisade_engine::cnp::ClusterKind;
    use palisade_engine::{Kind, Object, ObjectKey};
    let doc = match rng.below(5) {
        0 => {
            let i = rng.below(5);
            Some(random_cnp(rng, i))
        }
        1 => {
            let name = format!("c{}", rng.below(5));
            cluster.delete_cluster(ClusterKind::ClusterNetworkPolicy, &name);
            store.delete_cluster(ClusterKind::ClusterNetworkPolicy, &name);
            None
        }
        2 => {
            let i = rng.below(7);
            Some(random_pod(rng, i))
        }
        3 => {
            let keys: Vec<ObjectKey> = cluster.pods().map(|(k, _)| k.clone()).collect();
            if let Some(k) = keys.get(rng.below(keys.len().max(1))) {
                cluster.delete(Kind::Pod, &k.namespace, &k.name);
                store.delete(Kind::Pod, &k.namespace, &k.name);
            }
            None
        }
        _ => Some(random_relabel(rng)),
    };
    if let Some(doc) = doc {
        let loaded = load_docs(vec![doc]);
        for o in loaded.objects {
            if let Object::Pod(p) = &o.value {
                // A pod of the same name elsewhere goes first (the generator reuses names).
                let name = p.metadata.name.clone().unwrap_or_default();
                let old: Vec<ObjectKey> =
                    cluster.pods().filter(|(k, _)| k.name == name).map(|(k, _)| k.clone()).collect();
                for k in old {
                    cluster.delete(Kind::Pod, &k.namespace, &k.name);
                    store.delete(Kind::Pod, &k.namespace, &k.name);
                }
            }
            cluster.apply(o.value.clone());
            store.apply(o.value);
        }
        for o in loaded.cluster_objects {
            cluster.apply_cluster(o.value.clone());
            store.apply_cluster(&o.value);
        }
    }
}

/// After any sequence of changes with tiers (ClusterNetworkPolicies applied, edited and deleted, pods
/// added, moved and deleted, namespaces and Nodes relabelled) the incrementally maintained table equals a
/// fresh compile, its counts are the table's, and each transaction takes the previous table exactly to the
/// new one.
#[test]
fn incremental_updates_with_tiers_equal_fresh_compiles() {
    use palisade_engine::{ObjectKey, Store};
    use palisade_nft::NodeCompiler;
    for seed in 0..80u64 {
        let mut rng = Rng::new(seed ^ 0x7469_6572);
        let mut cluster = random_cluster(seed);
        let mut store = Store::from_cluster(&cluster);
        let mut node = all_local(&cluster);
        let log = (seed % 2 == 1).then(LogOptions::default);
        let mut compiler = NodeCompiler::new("palisade").with_log(log);
        let mut kernel = compiler.full(store.index(), &node);
        store.take_changes();
        for step in 0..25 {
            random_change(&mut rng, &mut cluster, &mut store);
            let now = all_local(&cluster);
            let moved: std::collections::BTreeSet<ObjectKey> = now
                .interfaces
                .iter()
                .filter(|(k, i)| node.interfaces.get(*k) != Some(*i))
                .map(|(k, _)| k.clone())
                .chain(node.interfaces.keys().filter(|k| !now.interfaces.contains_key(*k)).cloned())
                .collect();
            node = now;
            let changes = store.take_changes();
            let delta = if step % 2 == 0 {
                compiler.update(store.index(), &node, &changes)
            } else {
                compiler.update_with(store.index(), &node, &changes, Some(&moved))
            };
            let fresh = compile_with(&Index::build(&cluster), &node, "palisade", log);
            crate::assert_verdicts_apart(&fresh.render_table());
            let (kept, want) = (compiler.ruleset().render_table(), fresh.render_table());
            assert!(
                kept == want,
                "seed {seed} step {step}: the incremental table differs from a fresh compile:\n{}",
                crate::diff_lines(&kept, &want).join("\n")
            );
            assert_eq!(compiler.size(), fresh.size(), "seed {seed} step {step}: rules and elements");
            crate::apply_script(&mut kernel, &delta.script);
            let (got, want) = (kernel.render_table(), fresh.render_table());
            assert!(
                got == want,
                "seed {seed} step {step}: the transaction does not lead to the new table:\n{}\n-- transaction:\n{}",
                crate::diff_lines(&got, &want).join("\n"),
                delta.script
            );
        }
    }
}
