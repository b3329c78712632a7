//! Live: an incremental transaction leaves the kernel exactly where a full replace would. Needs root and nft;
//! runs in a network namespace of its own.

use std::process::Command;

use palisade_engine::synth::{Shape, objects};
use palisade_engine::{Cluster, Index, Object};
use palisade_nft::{Nft, NftCommand, NftError, NftSession, Node, compile, delta};
use serde_json::Value;

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn live_ready() -> bool {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let nft = Command::new("nft").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(root && nft || std::env::var_os("CI").is_none(), "CI must run live tests as root with nft");
    root && nft
}

/// The table as the kernel lists it, with handles dropped and element/rule order normalised.
fn listing(ns: &str) -> Vec<String> {
    let out =
        Command::new("ip").args(["netns", "exec", ns, "nft", "-j", "list", "table", "inet", "t"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut items: Vec<String> = v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o.get("metainfo").is_none())
        .map(|o| {
            let mut o = o.clone();
            for kind in ["set", "map", "rule", "chain", "table", "counter", "limit"] {
                if let Some(inner) = o.get_mut(kind).and_then(Value::as_object_mut) {
                    inner.remove("handle");
                    if let Some(Value::Array(e)) = inner.get_mut("elem") {
                        e.sort_by_key(|x| x.to_string());
                    }
                }
            }
            o.to_string()
        })
        .collect();
    items.sort();
    items
}

fn ruleset(cluster: &Cluster) -> palisade_nft::Ruleset {
    let index = Index::build(cluster);
    // Every third pod is local to this node.
    let node = Node {
        interfaces: index
            .pods()
            .enumerate()
            .filter(|(i, _)| i % 3 == 0)
            .map(|(i, p)| (p.key.clone(), format!("v{i}")))
            .collect(),
        ..Node::default()
    };
    compile(&index, &node, "t")
}

fn netns(suffix: &str) -> Netns {
    let ns = Netns(format!("palisade-t{}-{suffix}", std::process::id()));
    assert!(Command::new("ip").args(["netns", "add", &ns.0]).status().unwrap().success());
    ns
}

#[test]
fn deltas_equal_full_replaces() {
    if !live_ready() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    let ns = netns("nft");
    // The walk goes through a session (as the agent and sandbox do); the listings are separate processes.
    let mut nft = NftSession::new(Some(ns.0.clone()));

    let all = objects(Shape { pods: 120, policies: 30, seed: 3, cluster_policies: 0 });
    let mut cluster = Cluster::from_objects(all.iter().cloned());
    let mut applied = ruleset(&cluster);
    nft.apply(&applied.render_replace()).unwrap();
    // A walk of changes: remove policies, relabel and remove pods, bring policies back.
    let policies: Vec<Object> = all.iter().filter(|o| matches!(o, Object::NetworkPolicy(_))).cloned().collect();
    let mut changed = 0;
    for step in 0..12 {
        match step % 4 {
            0 => {
                if let Some(Object::NetworkPolicy(p)) = policies.get(step) {
                    let key = palisade_engine::model::namespace_of(&p.metadata).to_owned();
                    cluster.delete(palisade_engine::Kind::NetworkPolicy, &key, p.metadata.name.as_deref().unwrap());
                }
            }
            1 => {
                let (k, pod) = cluster.pods().nth(step * 5).map(|(k, p)| (k.clone(), p.clone())).unwrap();
                let mut pod = pod;
                pod.metadata.labels.get_or_insert_with(Default::default).insert("app".into(), format!("app-{step}"));
                let _ = k;
                cluster.apply(Object::Pod(Box::new(pod)));
            }
            2 => {
                let k = cluster.pods().nth(step * 3).map(|(k, _)| k.clone()).unwrap();
                cluster.delete(palisade_engine::Kind::Pod, &k.namespace, &k.name);
            }
            _ => {
                for p in policies.iter().take(step) {
                    cluster.apply(p.clone());
                }
            }
        }
        let desired = ruleset(&cluster);
        let d = delta(&applied, &desired);
        if !d.is_empty() {
            changed += 1;
            nft.apply(&d.script).unwrap_or_else(|e| panic!("step {step}: {e}\n{}", d.script));
        }
        let incremental = listing(&ns.0);
        nft.apply(&desired.render_replace()).unwrap();
        assert_eq!(incremental, listing(&ns.0), "step {step}: the delta and the full replace differ");
        applied = desired;
    }
    assert!(changed >= 8, "the walk must change the ruleset ({changed} changes)");
}

fn has_element(ns: &str, set: &str, element: &str) -> bool {
    let out = Command::new("ip").args(["netns", "exec", ns, "nft", "list", "set", "inet", "t", set]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).contains(element)
}

#[test]
fn a_session_applies_all_or_nothing_and_survives_its_process() {
    if !live_ready() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    let ns = netns("sess");
    let mut nft = NftSession::new(Some(ns.0.clone()));
    nft.apply("table inet t {\n  set s { type ipv4_addr; }\n}\n").unwrap();
    assert!(nft.is_interactive(), "nft -i is usable on this machine");

    // A transaction whose second statement fails leaves nothing of the first, and says where it failed.
    let err = nft.apply("add element inet t s { 10.9.9.9 }\nadd element inet t nosuch { 10.9.9.8 }\n").unwrap_err();
    match &err {
        NftError::Failed { stderr, .. } => assert!(stderr.contains("nosuch"), "{stderr}"),
        other => panic!("expected nft's own error, got {other}"),
    }
    assert!(!has_element(&ns.0, "s", "10.9.9.9"));

    // The same session goes on; deletes return without waiting for the kernel's deferred release.
    nft.apply("add element inet t s { 10.9.9.9 }\n").unwrap();
    assert!(has_element(&ns.0, "s", "10.9.9.9"));
    nft.apply("delete element inet t s { 10.9.9.9 }\n").unwrap();
    assert!(!has_element(&ns.0, "s", "10.9.9.9"));

    // Its process gone, a transaction reports an unknown outcome, and the next one starts a new session.
    let pid = nft.pid().unwrap();
    assert!(Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap().success());
    let err = nft.apply("add element inet t s { 10.9.9.7 }\n").unwrap_err();
    assert!(matches!(err, NftError::Session(_)), "{err}");
    nft.apply("add element inet t s { 10.9.9.6 }\n").unwrap();
    assert!(has_element(&ns.0, "s", "10.9.9.6"));
    assert_ne!(nft.pid(), Some(pid));
}

#[test]
fn a_session_without_a_writable_scratch_directory_falls_back_to_one_process_per_transaction() {
    if !live_ready() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    let ns = netns("ro");
    let mut nft = NftSession::new(Some(ns.0.clone())).scratch_in("/nonexistent/palisade");
    nft.apply("table inet t {\n  set s { type ipv4_addr; }\n}\nadd element inet t s { 10.9.9.9 }\n").unwrap();
    assert!(has_element(&ns.0, "s", "10.9.9.9"));
    assert!(!nft.is_interactive());
    assert!(nft.apply("add element inet t nosuch { 10.9.9.8 }\n").is_err());
}

#[test]
fn one_process_per_transaction_still_works() {
    if !live_ready() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    let ns = netns("cmd");
    let mut nft = NftCommand { netns: Some(ns.0.clone()) };
    nft.apply("table inet t {\n  set s { type ipv4_addr; }\n}\nadd element inet t s { 10.9.9.9 }\n").unwrap();
    assert!(has_element(&ns.0, "s", "10.9.9.9"));
    assert!(nft.apply("add element inet t nosuch { 10.9.9.8 }\n").is_err());
}

/// Tables with both tiers of ClusterNetworkPolicy load into the kernel, and the incremental transactions of
/// a walk of changes (tier policies, pods, Namespace and Node labels) leave it where a full replace would.
#[test]
fn tier_tables_load_and_their_deltas_equal_full_replaces() {
    use palisade_engine::Store;
    use palisade_engine::synth::Rng;
    use palisade_nft::NodeCompiler;
    if !live_ready() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    let ns = netns("tiers");
    let mut nft = NftSession::new(Some(ns.0.clone()));
    let mut with_tiers = 0;
    for seed in 0..12u64 {
        let mut cluster = crate::model::random_cluster(seed);
        let mut store = Store::from_cluster(&cluster);
        // Deny logging on for odd seeds: its named counters and log rules go through the same deltas.
        let mut compiler = NodeCompiler::new("t").with_log((seed % 2 == 1).then(palisade_nft::LogOptions::default));
        let node = crate::model::all_local(&cluster);
        let mut previous = compiler.full(store.index(), &node);
        store.take_changes();
        nft.apply(&previous.render_replace())
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{}", previous.render_table()));
        let mut rng = Rng::new(seed);
        for step in 0..8 {
            crate::model::random_change(&mut rng, &mut cluster, &mut store);
            let node = crate::model::all_local(&cluster);
            let changes = store.take_changes();
            let d = compiler.update(store.index(), &node, &changes);
            if !d.is_empty() {
                nft.apply(&d.script).unwrap_or_else(|e| panic!("seed {seed} step {step}: {e}\n{}", d.script));
            }
            let desired = compiler.ruleset();
            with_tiers +=
                usize::from(desired.chains.iter().any(|c| c.name.starts_with("adm_") || c.name.starts_with("bl_")));
            let incremental = listing(&ns.0);
            nft.apply(&desired.render_replace()).unwrap();
            let replaced = listing(&ns.0);
            assert_eq!(incremental, replaced, "seed {seed} step {step}: the delta and the full replace differ");
            // The whole-table diff (the path of a caller holding rulesets) leads there too.
            nft.apply(&previous.render_replace()).unwrap();
            let d = delta(&previous, &desired);
            nft.apply(&d.script).unwrap_or_else(|e| panic!("seed {seed} step {step}: {e}\n{}", d.script));
            assert_eq!(
                listing(&ns.0),
                replaced,
                "seed {seed} step {step}: the ruleset diff and the full replace differ"
            );
            previous = desired;
        }
    }
    assert!(with_tiers >= 20, "the walk must hold tier chains often ({with_tiers} tables)");
}

/// Runs a command, panicking with its error output if it fails.
fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Runs `f` on a thread that has entered namespace `ns`: sockets it opens belong to it.
fn enter<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = std::path::PathBuf::from("/var/run/netns").join(ns);
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(&path).expect("the namespace's file");
            nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("the namespace thread")
    })
}

/// Under a flood of one denied flow, the deny log changes no verdict: not one denied packet is delivered
/// while allowed UDP and TCP still pass, and an NFLOG reader in the node's namespace gets that flow's D
/// events with the id the compiler maps to the server's ingress, at most one per key per second (§3f, §4.4).
#[test]
fn a_flooded_denied_flow_stays_denied_and_is_logged_once_per_second() {
    use palisade_nft::{LogOptions, NodeCompiler};
    use palisade_observe::reader::NflogSocket;
    use palisade_observe::{Kind, NflogConfig, Prefix, Reader, ReaderConfig};
    use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
    use std::time::{Duration, Instant};
    if !live_ready() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    // node: the forward hook; a (10.244.0.2, client) and b (10.244.0.3, server) wired routed, as the sandbox does.
    let node = netns("flood-n");
    let a = netns("flood-a");
    let b = netns("flood-b");
    let mut nft = NftSession::new(Some(node.0.clone()));
    sh(&["ip", "netns", "exec", &node.0, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    // The pods' gateway: proxy ARP answers for it because the node routes it (to its own loopback).
    sh(&["ip", "-n", &node.0, "link", "set", "lo", "up"]);
    sh(&["ip", "-n", &node.0, "addr", "add", "169.254.1.1/32", "dev", "lo"]);
    for (pod, ip, veth) in [(&a, "10.244.0.2", "va"), (&b, "10.244.0.3", "vb")] {
        sh(&["ip", "-n", &node.0, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", &pod.0]);
        sh(&["ip", "netns", "exec", &node.0, "sysctl", "-qw", &format!("net.ipv4.conf.{veth}.proxy_arp=1")]);
        sh(&["ip", "netns", "exec", &node.0, "sysctl", "-qw", &format!("net.ipv4.neigh.{veth}.proxy_delay=0")]);
        sh(&["ip", "-n", &node.0, "link", "set", veth, "up"]);
        sh(&["ip", "-n", &node.0, "route", "add", &format!("{ip}/32"), "dev", veth]);
        sh(&["ip", "-n", &pod.0, "link", "set", "lo", "up"]);
        sh(&["ip", "-n", &pod.0, "link", "set", "eth0", "up"]);
        sh(&["ip", "-n", &pod.0, "addr", "add", &format!("{ip}/32"), "dev", "eth0"]);
        sh(&["ip", "-n", &pod.0, "route", "add", "169.254.1.1", "dev", "eth0"]);
        sh(&["ip", "-n", &pod.0, "route", "add", "default", "via", "169.254.1.1", "dev", "eth0"]);
    }
    let text = r#"
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {app: client}}
status: {podIP: 10.244.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: x, labels: {app: server}}
status: {podIP: 10.244.0.3}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: b-in, namespace: x}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress: [{from: [{podSelector: {matchLabels: {app: client}}}], ports: [{protocol: UDP, port: 80}, {protocol: TCP, port: 80}]}]
"#;
    let loaded = palisade_engine::load_str("flood.yaml", text);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let cluster = Cluster::from_objects(loaded.objects.into_iter().map(|o| o.value));
    let n = Node {
        interfaces: [("a", "va"), ("b", "vb")]
            .into_iter()
            .map(|(p, v)| (palisade_engine::ObjectKey::new("x", p), v.to_owned()))
            .collect(),
        ..Node::default()
    };
    let mut compiler = NodeCompiler::new("palisade").with_log(Some(LogOptions::default()));
    let rs = compiler.full(&Index::build(&cluster), &n);
    nft.apply(&rs.render_replace()).unwrap_or_else(|e| panic!("{e}\n{}", rs.render_table()));
    let (id, _) = compiler
        .log_ids()
        .iter()
        .find(|(_, t)| t.pod.name == "b" && t.direction == palisade_engine::policy::Direction::Ingress)
        .expect("b's ingress drop has an id");
    let id = *id;

    let config = ReaderConfig { nflog: NflogConfig { group: 5, ..NflogConfig::default() }, ..ReaderConfig::default() };
    let socket = enter(&node.0, || NflogSocket::open(&config).expect("bind NFLOG in the node's namespace"));
    let reader = Reader::with_socket(socket, &config).unwrap();
    let (denied_rx, allowed_rx, listener) = enter(&b.0, || {
        let d = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 9)).unwrap();
        let ok = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 80)).unwrap();
        for s in [&d, &ok] {
            s.set_nonblocking(true).unwrap();
        }
        (d, ok, TcpListener::bind((Ipv4Addr::UNSPECIFIED, 80)).unwrap())
    });
    listener.set_nonblocking(true).unwrap();
    let tx = enter(&a.0, || UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap());
    tx.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    let server: SocketAddr = (Ipv4Addr::new(10, 244, 0, 3), 9).into();
    let allowed: SocketAddr = (Ipv4Addr::new(10, 244, 0, 3), 80).into();
    let drain = |s: &UdpSocket| {
        let mut buf = [0u8; 64];
        std::iter::from_fn(|| s.recv(&mut buf).ok()).count()
    };

    // The flood: one key, as fast as the client can send for 2.5 s, with allowed traffic interleaved.
    let started = Instant::now();
    let (mut allowed_sent, mut allowed_got, mut connects, mut tried) = (0usize, 0usize, 0usize, 0usize);
    let mut sent = 0usize;
    for i in 0.. {
        if i % 1000 == 0 && started.elapsed() > Duration::from_millis(2500) {
            break;
        }
        sent += 1;
        let _ = tx.send_to(b"denied", server);
        if i % 1000 == 0 {
            tx.send_to(b"allowed", allowed).unwrap();
            allowed_sent += 1;
            allowed_got += drain(&allowed_rx);
        }
        if i % 6000 == 0 {
            let ok = enter(&a.0, || TcpStream::connect_timeout(&allowed, Duration::from_secs(1)).is_ok());
            connects += usize::from(ok);
            tried += 1;
            while listener.accept().is_ok() {}
        }
    }
    let elapsed = started.elapsed();
    std::thread::sleep(Duration::from_millis(200));
    allowed_got += drain(&allowed_rx);
    let delivered = drain(&denied_rx);
    assert_eq!(delivered, 0, "denied packets delivered under the flood");
    assert_eq!(allowed_got, allowed_sent, "allowed UDP lost under the flood");
    assert_eq!(connects, tried, "allowed TCP connections refused under the flood");

    // The reader: D events for the flooded key, deduplicated.
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        reader.queue().drain_into(&mut events, 10_000, Duration::from_millis(50));
    }
    let port = tx.local_addr().unwrap().port();
    let flood: Vec<_> = events.iter().filter(|e| e.packet.dst_port() == Some(9)).collect();
    assert!(!flood.is_empty(), "no D event for the flood: {events:?}");
    for e in &flood {
        assert_eq!(e.prefix, Prefix::new(Kind::D, id));
        assert_eq!(
            (e.packet.src, e.packet.dst),
            (Ipv4Addr::new(10, 244, 0, 2).into(), Ipv4Addr::new(10, 244, 0, 3).into())
        );
        assert_eq!(e.packet.src_port(), Some(port));
        assert_eq!(e.packet.protocol, palisade_observe::Protocol::UDP);
    }
    // One per second per key (burst 1), and the key logs again once its second is over.
    let most = elapsed.as_secs() as usize + 2;
    assert!(flood.len() >= 2, "the key logged only once in {elapsed:?}");
    assert!(flood.len() <= most, "{} events for one key in {elapsed:?}: not deduplicated", flood.len());
    assert!(
        events.iter().all(|e| e.prefix.kind == Kind::D && e.packet.dst_port() == Some(9)),
        "only the denied flow logs"
    );
    let stats = reader.stop().unwrap();
    assert_eq!(stats.lost, 0, "{stats:?}");
    eprintln!(
        "{sent} denied packets in {elapsed:?}: {} D events, 0 delivered; {allowed_sent} allowed datagrams and {connects} connections passed",
        flood.len()
    );
}
