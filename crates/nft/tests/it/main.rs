//! The compiled ruleset for the reference policy (a snapshot people read) and the dataplane's behaviour
//! against the recording fake.

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
fn sync_replaces_atomically_and_skips_no_ops() {
    let c = seed();
    let rs = compile(&Index::build(&c), &node(&c), "palisade");
    let mut dp = NftDataplane::new(Recorder::default(), Recorder::default());
    dp.sync(&rs, true).unwrap();
    dp.sync(&rs, true).unwrap();
    assert_eq!(dp.nft.scripts.len(), 1, "an unchanged ruleset applies nothing");
    assert!(dp.nft.scripts[0].starts_with("table inet palisade {}\ndelete table inet palisade\ntable inet palisade {"));
    assert_eq!(dp.conntrack.flushes, 1);
    let mut other = rs.clone();
    other.chains.pop();
    dp.keep_established = true;
    dp.sync(&other, true).unwrap();
    assert_eq!(dp.nft.scripts.len(), 2);
    assert_eq!(dp.conntrack.flushes, 1, "keep_established leaves conntrack alone");
}
