//! The compiled ruleset for the reference policy (a snapshot people read) and the dataplane's behaviour
//! against the recording fake.

mod live;

use palisade_engine::{Cluster, Index, ObjectKey, load_str};
use palisade_nft::{Dataplane, NftDataplane, Node, Recorder, compile};

fn seed() -> Cluster {
    let text = include_str!("../../../../examples/test-network-policy.yaml");
    let loaded = load_str("test-network-policy.yaml", text);
    assert!(loaded.errors.is_empty());
    Cluster::from_objects(loaded.objects.into_iter().map(|o| o.value))
}

fn node(cluster: &Cluster) -> Node {
    Node { interfaces: cluster.pods().enumerate().map(|(i, (k, _))| (k.clone(), format!("veth{i}"))).collect() }
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

/// A compile that reuses an earlier one's cache (across relabels, pods added and removed, policies edited)
/// produces exactly what a fresh compile does.
#[test]
fn cached_compiles_equal_fresh_ones() {
    use palisade_engine::synth::{Rng, Shape, objects};
    use palisade_engine::{Object, Store};
    use palisade_nft::{CompileCache, compile_with};
    let all = objects(Shape { pods: 300, policies: 60, seed: 7 });
    let mut cluster = Cluster::from_objects(all.clone());
    let mut store = Store::from_cluster(&cluster);
    let local: Vec<ObjectKey> = cluster.pods().map(|(k, _)| k.clone()).step_by(5).collect();
    let node = Node { interfaces: local.iter().enumerate().map(|(i, k)| (k.clone(), format!("v{i}"))).collect() };
    let mut cache = CompileCache::default();
    let mut rng = Rng::new(3);
    for step in 0..80 {
        let cached = compile_with(store.index(), &node, "palisade", &mut cache);
        let fresh = compile(&Index::build(&cluster), &node, "palisade");
        assert!(cached == fresh, "step {step}: the cached compile differs");
        let o = all[rng.below(all.len())].clone();
        match (step % 5, o) {
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
                // An existing pod comes back with another address (its id leaves and returns).
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
    }
}
