//! The compiled ruleset for the reference policy (a snapshot people read) and the dataplane's behaviour
//! against the recording fake.

mod live;
mod model;

use palisade_engine::{Cluster, Index, ObjectKey, load_str};
use palisade_nft::{Dataplane, NftDataplane, Node, Recorder, compile};

fn seed() -> Cluster {
    let text = include_str!("../../../../examples/test-network-policy.yaml");
    let loaded = load_str("test-network-policy.yaml", text);
    assert!(loaded.errors.is_empty());
    Cluster::from_objects(loaded.objects.into_iter().map(|o| o.value))
}

fn node(cluster: &Cluster) -> Node {
    Node {
        interfaces: cluster.pods().enumerate().map(|(i, (k, _))| (k.clone(), format!("veth{i}"))).collect(),
        ..Node::default()
    }
}

#[test]
fn the_reference_policy_compiles_to_sets_and_vmaps() {
    let c = seed();
    let rs = compile(&Index::build(&c), &node(&c), "palisade");
    insta::assert_snapshot!(rs.render_table());
}

#[test]
fn only_local_pods_get_chains() {
    let c = seed();
    let mut n = node(&c);
    n.interfaces.remove(&ObjectKey::new("default", "db"));
    let rs = compile(&Index::build(&c), &n, "palisade");
    assert!(rs.chains.is_empty(), "db is the only selected pod and it is not local");
    assert!(rs.maps.values().all(|m| m.is_empty()));
}

#[test]
fn sync_replaces_atomically_then_applies_deltas() {
    let c = seed();
    let rs = compile(&Index::build(&c), &node(&c), "palisade");
    let mut dp = NftDataplane::new(Recorder::default(), Recorder::default());
    assert!(dp.sync(&rs).unwrap().full, "the first sync replaces the table");
    assert_eq!(dp.sync(&rs).unwrap().statements, 0, "an unchanged ruleset applies nothing");
    assert_eq!(dp.nft.scripts.len(), 1);
    assert!(dp.nft.scripts[0].starts_with("table inet palisade {}\ndelete table inet palisade\ntable inet palisade {"));

    // Remove frontend from the cluster: db's ingress loses that peer, so the flows of frontend's address are
    // forgotten (and no other flow of db).
    let mut c2 = c.clone();
    c2.delete(palisade_engine::Kind::Pod, "default", "frontend");
    let rs2 = compile(&Index::build(&c2), &node(&c2), "palisade");
    let report = dp.sync(&rs2).unwrap();
    assert!(!report.full);
    insta::assert_snapshot!(dp.nft.scripts[1]);
    let frontend: std::net::IpAddr = "10.244.1.2".parse().unwrap();
    assert_eq!(dp.conntrack.deletes, vec![(None, Some(frontend)), (Some(frontend), None)]);

    // Widening (frontend back) deletes nothing; keep_established suppresses deletes altogether.
    dp.sync(&rs).unwrap();
    assert_eq!(dp.conntrack.deletes.len(), 2);
    dp.keep_established = true;
    dp.sync(&rs2).unwrap();
    assert_eq!(dp.conntrack.deletes.len(), 2);

    // When the tracked flows can be read, only filters that match one are deleted: here frontend has a flow
    // to db, but nothing comes *to* frontend.
    dp.keep_established = false;
    dp.sync(&rs).unwrap();
    let db: std::net::IpAddr = "10.244.1.1".parse().unwrap();
    dp.conntrack.flows = Some(vec![(frontend, db)]);
    dp.sync(&rs2).unwrap();
    assert_eq!(dp.conntrack.deletes[2..], [(Some(frontend), None)]);
}

/// The incremental compiler's transactions say what they may narrow, as whole-table deltas do: a peer
/// leaving a set (its flows), a policy chain edited (the flows of the pods jumping to it); widening nothing.
#[test]
fn incremental_transactions_name_what_they_narrow() {
    use palisade_engine::{Kind, Object, Store};
    use palisade_nft::NodeCompiler;
    let c = seed();
    let mut store = Store::from_cluster(&c);
    let node = node(&c);
    let mut compiler = NodeCompiler::new("palisade");
    compiler.full(store.index(), &node);
    store.take_changes();
    let frontend: std::net::IpAddr = "10.244.1.2".parse().unwrap();
    let db: std::net::IpAddr = "10.244.1.1".parse().unwrap();
    let pod = c.pods().find(|(k, _)| k.name == "frontend").map(|(_, p)| p.clone()).unwrap();
    store.delete(Kind::Pod, "default", "frontend");
    let mut update = |store: &mut Store| {
        let changes = store.take_changes();
        compiler.update(store.index(), &node, &changes)
    };
    let d = update(&mut store);
    assert!(d.narrowed_peers.contains(&frontend), "{d:?}");
    assert!(d.narrowed_ingress.is_empty() && d.narrowed_egress.is_empty(), "{d:?}");
    store.apply(Object::Pod(Box::new(pod)));
    let d = update(&mut store);
    assert!(d.narrowed_peers.is_empty() && d.narrowed_ingress.is_empty(), "a peer coming back widens: {d:?}");
    assert!(!d.is_empty());
    let (_, policy) = c.policies().next().map(|(k, p)| (k.clone(), p.clone())).unwrap();
    let mut edited = policy.clone();
    edited.spec.as_mut().unwrap().ingress.as_mut().unwrap()[0].ports = None;
    edited.spec.as_mut().unwrap().ingress.as_mut().unwrap()[0].from = None;
    store.apply(Object::NetworkPolicy(edited));
    let d = update(&mut store);
    assert!(d.narrowed_ingress.contains(&db), "db's chain's policy changed: {d:?}");
    assert_eq!(update(&mut store).statements, 0, "nothing left to do");
}

/// An nft that fails in the two ways a transaction can: rejected (the kernel unchanged) or lost with its
/// session (the kernel's state unknown).
#[derive(Default)]
struct Failing {
    next: Option<palisade_nft::NftError>,
    scripts: Vec<String>,
}

impl palisade_nft::Nft for Failing {
    fn apply(&mut self, script: &str) -> Result<(), palisade_nft::NftError> {
        if let Some(e) = self.next.take() {
            return Err(e);
        }
        self.scripts.push(script.to_owned());
        Ok(())
    }
}

#[test]
fn a_rejected_transaction_retries_as_a_delta_and_a_lost_one_as_a_full_replace() {
    use palisade_nft::NftError;
    let c = seed();
    let rs = compile(&Index::build(&c), &node(&c), "palisade");
    let mut c2 = c.clone();
    c2.delete(palisade_engine::Kind::Pod, "default", "frontend");
    let rs2 = compile(&Index::build(&c2), &node(&c2), "palisade");
    let mut dp = NftDataplane::new(Failing::default(), Recorder::default());
    dp.sync(&rs).unwrap();

    dp.nft.next = Some(NftError::Failed { program: "nft".into(), stderr: "Error: no".into() });
    assert!(dp.sync(&rs2).is_err());
    assert!(!dp.sync(&rs2).unwrap().full, "nft rejected it whole: the kernel still holds what was applied");

    dp.nft.next = Some(NftError::Session("nft -i exited".into()));
    assert!(dp.sync(&rs).is_err());
    let report = dp.sync(&rs).unwrap();
    assert!(report.full, "after a lost transaction the kernel's state is unknown: replace everything");
    assert!(dp.nft.scripts.last().unwrap().starts_with("table inet palisade {}\ndelete table inet palisade"));
}

/// Lines only in `a` (`-`) or only in `b` (`+`).
fn diff_lines(a: &str, b: &str) -> Vec<String> {
    let (x, y): (std::collections::BTreeSet<&str>, std::collections::BTreeSet<&str>) =
        (a.lines().collect(), b.lines().collect());
    x.difference(&y).map(|l| format!("- {l}")).chain(y.difference(&x).map(|l| format!("+ {l}"))).collect()
}

/// A tiny model of the kernel's table: applies a transaction as nft would, refusing what nft refuses
/// (adding what exists, deleting what does not), so a delta that would fail in the kernel fails here.
fn apply_script(rs: &mut palisade_nft::Ruleset, script: &str) {
    use palisade_nft::compile::{Chain, Set};
    use std::collections::BTreeSet;
    use std::sync::Arc;
    let prefix = format!("inet {} ", rs.table);
    let body_elements = |body: &str| -> Vec<String> {
        let Some(i) = body.find('{') else { return vec![] };
        let inner = body[i + 1..].trim_end().trim_end_matches('}').trim();
        inner.split(", ").map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned).collect()
    };
    for line in script.lines() {
        let (verb, rest) = line.split_once(' ').unwrap();
        let (what, rest) = rest.split_once(' ').unwrap();
        let rest = rest.strip_prefix(&prefix).unwrap_or_else(|| panic!("{line}"));
        let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        match (verb, what) {
            ("add", "set") => {
                assert!(!rs.sets.iter().any(|s| s.name == name), "set {name} exists: {line}");
                let kind = tail.split("type ").nth(1).unwrap().split(';').next().unwrap().trim().to_owned();
                let interval = tail.contains("flags interval;");
                let elements: BTreeSet<String> = tail
                    .split_once("elements = ")
                    .map(|(_, e)| body_elements(e.trim_end().trim_end_matches('}').trim()))
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                let kind: &'static str = Box::leak(kind.into_boxed_str());
                rs.sets.push(Set { name: name.to_owned(), kind, interval, elements: Arc::new(elements) });
            }
            ("add", "counter") => {
                assert!(rs.counters.insert(name.to_owned()), "counter {name} exists: {line}");
            }
            ("delete", "counter") => {
                assert!(rs.counters.remove(name), "no counter {name}: {line}");
                let user = rs.chains.iter().flat_map(|c| &c.rules).find(|r| r.contains(&format!("\"{name}\"")));
                assert!(user.is_none(), "counter {name} is still used by {user:?}: {line}");
            }
            ("add", "chain") => {
                assert!(!rs.chains.iter().any(|c| c.name == name), "chain {name} exists: {line}");
                rs.chains.push(Chain { name: name.to_owned(), rules: vec![] });
            }
            ("flush", "chain") => rs.chains.iter_mut().find(|c| c.name == name).expect(line).rules.clear(),
            ("add", "rule") => {
                if let Some(c) = tail.split("counter name \"").nth(1).and_then(|r| r.split('"').next()) {
                    assert!(rs.counters.contains(c), "no counter {c}: {line}");
                }
                rs.chains.iter_mut().find(|c| c.name == name).expect(line).rules.push(tail.to_owned())
            }
            ("delete", "chain") => {
                let n = rs.chains.len();
                rs.chains.retain(|c| c.name != name);
                assert_eq!(rs.chains.len() + 1, n, "{line}");
            }
            ("delete", "set") => {
                let n = rs.sets.len();
                rs.sets.retain(|s| s.name != name);
                assert_eq!(rs.sets.len() + 1, n, "{line}");
            }
            (op, "element") => {
                let elems = body_elements(tail);
                if let Some(m) = rs.maps.get_mut(name) {
                    for e in elems {
                        if op == "add" {
                            let (k, v) = e.split_once(" : ").expect(line);
                            assert!(m.insert(k.to_owned(), v.to_owned()).is_none(), "{k} is in {name}: {line}");
                        } else {
                            assert!(m.remove(&e).is_some(), "{e} not in {name}: {line}");
                        }
                    }
                } else {
                    let s = rs.sets.iter_mut().find(|s| s.name == name).expect(line);
                    let set = Arc::make_mut(&mut s.elements);
                    for e in elems {
                        if op == "add" {
                            set.insert(e);
                        } else {
                            assert!(set.remove(&e), "{e} not in {name}: {line}");
                        }
                    }
                }
            }
            _ => panic!("unexpected statement: {line}"),
        }
    }
    rs.sets.sort_by(|a, b| a.name.cmp(&b.name));
    rs.chains.sort_by(|a, b| a.name.cmp(&b.name));
}

/// After any sequence of changes (relabels, pods added, moved to new addresses and removed, namespaces
/// relabelled, local pods coming and going, policies edited and deleted) the incrementally maintained
/// table equals a fresh compile, and each transaction takes the previous table exactly to the new one.
#[test]
fn incremental_updates_equal_fresh_compiles() {
    use palisade_engine::synth::{Rng, Shape, objects};
    use palisade_engine::{Object, Store};
    use palisade_nft::NodeCompiler;
    for seed in [7, 11, 23] {
        let all = objects(Shape { pods: 300, policies: 60, seed, cluster_policies: 0 });
        let mut cluster = Cluster::from_objects(all.clone());
        let mut store = Store::from_cluster(&cluster);
        let mut node = Node {
            interfaces: cluster.pods().step_by(5).enumerate().map(|(i, (k, _))| (k.clone(), format!("v{i}"))).collect(),
            pod_ranges: vec!["10.199.0.0/24".parse().unwrap()],
        };
        // Deny logging on for two of the three walks (its log rules and named counters follow the pods).
        let log = (seed != 7).then(palisade_nft::LogOptions::default);
        let mut compiler = NodeCompiler::new("palisade").with_log(log);
        let mut kernel = compiler.full(store.index(), &node);
        store.take_changes();
        let mut rng = Rng::new(seed);
        for step in 0..120 {
            // Local pods that came or went this step: told to `update_with` on odd steps.
            let mut moved: std::collections::BTreeSet<ObjectKey> = std::collections::BTreeSet::new();
            let o = all[rng.below(all.len())].clone();
            match (step % 7, o) {
                (0, Object::Pod(mut p)) => {
                    p.metadata
                        .labels
                        .get_or_insert_with(Default::default)
                        .insert("app".into(), format!("app-{}", rng.below(40)));
                    cluster.apply(Object::Pod(p.clone()));
                    store.apply(Object::Pod(p));
                }
                (1, Object::Pod(mut p)) => {
                    p.metadata.name = Some(format!("extra-{step}"));
                    p.status.get_or_insert_with(Default::default).pod_ip = Some(format!("10.199.0.{step}"));
                    p.status.get_or_insert_with(Default::default).pod_ips = None;
                    cluster.apply(Object::Pod(p.clone()));
                    store.apply(Object::Pod(p));
                }
                (4, Object::Pod(mut p)) => {
                    // An existing pod comes back with another address.
                    p.status.get_or_insert_with(Default::default).pod_ip = Some(format!("10.198.0.{step}"));
                    p.status.get_or_insert_with(Default::default).pod_ips = None;
                    cluster.apply(Object::Pod(p.clone()));
                    store.apply(Object::Pod(p));
                }
                (2, Object::Pod(p)) => {
                    let k = ObjectKey::new(
                        p.metadata.namespace.as_deref().unwrap_or(""),
                        p.metadata.name.as_deref().unwrap_or(""),
                    );
                    cluster.delete(palisade_engine::Kind::Pod, &k.namespace, &k.name);
                    store.delete(palisade_engine::Kind::Pod, &k.namespace, &k.name);
                }
                (5, Object::Pod(p)) => {
                    // A pod becomes local, or stops being local.
                    let k = ObjectKey::new(
                        p.metadata.namespace.as_deref().unwrap_or(""),
                        p.metadata.name.as_deref().unwrap_or(""),
                    );
                    moved.insert(k.clone());
                    if node.interfaces.remove(&k).is_none() {
                        node.interfaces.insert(k, format!("w{step}"));
                    }
                    // The node's pod ranges change too (learned from its Node, a bridge, a flag).
                    node.pod_ranges = match rng.below(3) {
                        0 => Vec::new(),
                        1 => vec!["10.199.0.0/24".parse().unwrap(), "10.199.0.128/25".parse().unwrap()],
                        _ => vec!["10.198.0.0/16".parse().unwrap(), "fd00:1::/64".parse().unwrap()],
                    };
                }
                (6, Object::Pod(p)) => {
                    // Its namespace gets new labels: every selector with a namespaceSelector looks again.
                    let ns = p.metadata.namespace.clone().unwrap_or_default();
                    let text = format!(
                        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}, labels: {{team: t{}}}}}\n",
                        rng.below(3)
                    );
                    let n = load_str("ns.yaml", &text).objects.remove(0).value;
                    cluster.apply(n.clone());
                    store.apply(n);
                }
                (3, Object::NetworkPolicy(p)) => {
                    let k = ObjectKey::new(
                        p.metadata.namespace.as_deref().unwrap_or(""),
                        p.metadata.name.as_deref().unwrap_or(""),
                    );
                    cluster.delete(palisade_engine::Kind::NetworkPolicy, &k.namespace, &k.name);
                    store.delete(palisade_engine::Kind::NetworkPolicy, &k.namespace, &k.name);
                }
                (_, Object::NetworkPolicy(mut p)) => {
                    p.metadata.labels = Some([("edit".to_owned(), step.to_string())].into());
                    if let Some(s) = p.spec.as_mut() {
                        s.pod_selector = Some(
                            serde_json::from_value(
                                serde_json::json!({"matchLabels": {"app": format!("app-{}", rng.below(40))}}),
                            )
                            .unwrap(),
                        );
                    }
                    cluster.apply(Object::NetworkPolicy(p.clone()));
                    store.apply(Object::NetworkPolicy(p));
                }
                _ => {}
            }
            let changes = store.take_changes();
            let delta = if step % 2 == 0 {
                compiler.update(store.index(), &node, &changes)
            } else {
                compiler.update_with(store.index(), &node, &changes, Some(&moved))
            };
            let fresh = palisade_nft::compile_with(&Index::build(&cluster), &node, "palisade", log);
            assert_verdicts_apart(&fresh.render_table());
            assert_eq!(
                compiler.ruleset().render_table(),
                fresh.render_table(),
                "seed {seed} step {step}: the incremental table differs from a fresh compile"
            );
            // The metrics' counts, kept as pieces change, are those of the table.
            let dispatching: std::collections::BTreeSet<&str> = fresh
                .chains
                .iter()
                .filter_map(|c| c.name.strip_prefix("ing_").or_else(|| c.name.strip_prefix("egr_")))
                .collect();
            assert_eq!(compiler.size(), fresh.size(), "seed {seed} step {step}: rules and elements");
            assert_eq!(compiler.isolated_pods(), dispatching.len(), "seed {seed} step {step}: isolated pods");
            apply_script(&mut kernel, &delta.script);
            let (got, want) = (kernel.render_table(), fresh.render_table());
            if got != want {
                let diff: Vec<String> = diff_lines(&got, &want);
                panic!(
                    "seed {seed} step {step}: the transaction does not lead to the new table:\n{}\n-- transaction:\n{}",
                    diff.join("\n"),
                    delta.script
                );
            }
        }
    }
}

/// Two pods that hold one address (reused while the old pod goes): when one of them leaves, the address
/// stays in the sets the other belongs to (peer sets and named-port sets), as in a fresh compile.
#[test]
fn an_address_held_by_two_pods_stays_while_one_remains() {
    use palisade_engine::{Kind, Store};
    use palisade_nft::NodeCompiler;
    let pods = r#"
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: x, labels: {app: client}}
spec: {nodeName: n1}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: old, namespace: x, labels: {app: web}}
spec: {containers: [{name: c, ports: [{name: http, containerPort: 80}]}]}
status: {podIP: 10.0.0.5}
---
apiVersion: v1
kind: Pod
metadata: {name: new, namespace: x, labels: {app: web}}
spec: {containers: [{name: c, ports: [{name: http, containerPort: 80}]}]}
status: {podIP: 10.0.0.5}
"#;
    for egress in
        ["[{to: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: http}]}]", "[{ports: [{port: http}]}]"]
    {
        let text = format!(
            "{pods}---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: out, namespace: x}}\nspec: {{podSelector: {{matchLabels: {{app: client}}}}, policyTypes: [Egress], egress: {egress}}}\n"
        );
        let loaded = load_str("t.yaml", &text);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        let mut cluster = Cluster::from_objects(loaded.objects.into_iter().map(|o| o.value));
        let mut store = Store::from_cluster(&cluster);
        let node = Node { interfaces: [(ObjectKey::new("x", "client"), "v1".to_owned())].into(), ..Node::default() };
        let mut compiler = NodeCompiler::new("palisade");
        compiler.full(store.index(), &node);
        store.take_changes();
        cluster.delete(Kind::Pod, "x", "old");
        store.delete(Kind::Pod, "x", "old");
        let changes = store.take_changes();
        compiler.update(store.index(), &node, &changes);
        let got = compiler.ruleset().render_table();
        assert_eq!(got, compile(&Index::build(&cluster), &node, "palisade").render_table(), "{egress}");
        assert!(got.contains("10.0.0.5 . tcp . 80"), "{got}");
    }
}

/// The tiers around NetworkPolicy, as people read them: each local pod's chain jumps to its Admin tier
/// chain first, then to its NetworkPolicy chains and their final drop, or, when no NetworkPolicy isolates the
/// side, to its Baseline tier chain; tier rules carry their action as the verdict (Pass is `return`).
#[test]
fn tiers_compile_around_networkpolicy_in_the_engines_order() {
    let text = include_str!("../../../engine/src/cnp/testdata/tiers.yaml");
    let loaded = load_str("tiers.yaml", text);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let mut c = Cluster::from_objects(loaded.objects.into_iter().map(|o| o.value));
    for o in loaded.cluster_objects {
        c.apply_cluster(o.value);
    }
    let rs = compile(&Index::build(&c), &model::all_local(&c), "palisade");
    assert!(
        rs.chains.iter().any(|ch| ch.name.starts_with("adm_")) && rs.chains.iter().any(|ch| ch.name.starts_with("bl_"))
    );
    insta::assert_snapshot!(rs.render_table());
}

/// The rules of a rendered table that hold a verdict together with `log`, `limit`, a set `update` or a meter:
/// such a rule, stopped by its limit, skips its verdict (OBSERVABILITY.md §3f: a denied flow forwarded, or
/// allowed connections dropped). Quoted text (prefixes, comments) is not looked at.
fn verdict_with_rate_limit(table: &str) -> Vec<String> {
    const VERDICTS: [&str; 8] = ["accept", "drop", "reject", "return", "jump", "goto", "queue", "vmap"];
    const LIMITED: [&str; 5] = ["log", "limit", "update", "meter", "quota"];
    let mut bad = Vec::new();
    let mut in_chain = false;
    for line in table.lines() {
        let l = line.trim();
        if l.starts_with("chain ") {
            in_chain = true;
            continue;
        }
        if l == "}" {
            in_chain = false;
            continue;
        }
        if !in_chain || l.starts_with("type ") {
            continue;
        }
        let unquoted: String = l.split('"').step_by(2).collect::<Vec<_>>().join(" ");
        let words: Vec<&str> = unquoted.split_whitespace().collect();
        if words.iter().any(|w| VERDICTS.contains(w)) && words.iter().any(|w| LIMITED.contains(w)) {
            bad.push(l.to_owned());
        }
    }
    bad
}

pub(crate) fn assert_verdicts_apart(table: &str) {
    let bad = verdict_with_rate_limit(table);
    assert!(bad.is_empty(), "rules with a verdict and a log, limit or update:\n{}", bad.join("\n"));
}

#[test]
fn the_verdict_check_finds_the_trap() {
    let bad = "table inet t {\n  chain c {\n    limit rate 5/second log group 5 prefix \"x drop\" drop\n    log prefix \"accept\"\n    update @s { ip saddr } accept\n  }\n}\n";
    assert_eq!(verdict_with_rate_limit(bad).len(), 2, "a limit with drop, an update with accept; not a prefix");
}

/// Deny logging as people read it: each isolated pod's chain logs (one rule per family it has addresses in,
/// deduplicated per key, under the node-wide limit) right before its named drop counter; the base chains log
/// invalid and spoofed packets before dropping them; the ids map back to pod and direction.
#[test]
fn deny_logs_stand_apart_from_the_drops_they_explain() {
    use palisade_nft::{LogOptions, NodeCompiler};
    let c = seed();
    let mut compiler = NodeCompiler::new("palisade").with_log(Some(LogOptions::default()));
    let rs = compiler.full(&Index::build(&c), &node(&c));
    let text = rs.render_table();
    assert_verdicts_apart(&text);
    assert!(text.contains("limit log_deny { rate 500/second burst 1000 packets }"), "{text}");
    assert!(text.contains("ct state invalid update @seen_invalid4"), "{text}");
    assert!(text.contains("prefix \"pal1 S 00000000\""), "{text}");
    let ids = compiler.log_ids();
    assert!(!ids.is_empty());
    for (id, target) in ids {
        let chain = rs.chains.iter().find(|ch| ch.name == target.chain).expect("the pod's chain");
        let n = chain.rules.len();
        assert!(chain.rules[n - 1].starts_with(&format!("counter name \"d_{id:08x}\" drop")), "{:?}", chain.rules);
        assert!(chain.rules[n - 2].contains(&format!("prefix \"pal1 D {id:08x}\"")), "{:?}", chain.rules);
        assert!(rs.counters.contains(&format!("d_{id:08x}")));
    }
    assert_eq!(rs.counters.len(), ids.len());
    insta::assert_snapshot!(text);
    // Off: no log rule and no dedup set anywhere, the named counters stay.
    let off = compile(&Index::build(&c), &node(&c), "palisade");
    let off_text = off.render_table();
    assert!(!off_text.contains(" log ") && !off_text.contains("seen_"), "{off_text}");
    assert_eq!(off.counters, rs.counters);
}

/// Every table the generators make, with logging on: no rule mixes a verdict with a rate limit.
#[test]
fn verdicts_never_share_a_rule_with_log() {
    use palisade_engine::synth::{Shape, objects};
    let log = Some(palisade_nft::LogOptions::default());
    for seed in 0..6 {
        let c = Cluster::from_objects(objects(Shape { pods: 80, policies: 20, seed, cluster_policies: 4 }));
        let n = Node { interfaces: c.pods().map(|(k, _)| (k.clone(), String::new())).collect(), ..Node::default() };
        assert_verdicts_apart(&palisade_nft::compile_with(&Index::build(&c), &n, "palisade", log).render_table());
    }
    for seed in 0..200 {
        let c = model::random_cluster(seed);
        let rs = palisade_nft::compile_with(&Index::build(&c), &model::all_local(&c), "palisade", log);
        assert_verdicts_apart(&rs.render_table());
    }
}
