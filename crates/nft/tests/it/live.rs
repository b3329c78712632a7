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
            for kind in ["set", "map", "rule", "chain", "table"] {
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
        let mut compiler = NodeCompiler::new("t");
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
