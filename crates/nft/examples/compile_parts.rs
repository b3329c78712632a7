//! Times compile, clone and delta on the benchmark's synthetic cluster (10k pods, 1k policies, 1/8 local).
use std::time::Instant;

use palisade_engine::synth::{Shape, cluster};
use palisade_engine::{Index, ObjectKey};
use palisade_nft::{CompileCache, Node, compile_with, delta};

fn main() {
    let c = cluster(Shape { pods: 10_000, policies: 1_000, seed: 42 });
    let index = Index::build(&c);
    let local: Vec<ObjectKey> = c
        .pods()
        .filter(|(_, p)| p.spec.as_ref().unwrap().node_name.as_deref() == Some("node-0"))
        .map(|(k, _)| k.clone())
        .collect();
    let node = Node { interfaces: local.iter().enumerate().map(|(i, k)| (k.clone(), format!("v{i}"))).collect() };
    let mut cache = CompileCache::default();
    for _ in 0..3 {
        let t = Instant::now();
        let a = compile_with(&index, &node, "palisade", &mut cache);
        let tc = t.elapsed();
        let t = Instant::now();
        let b = a.clone();
        let tl = t.elapsed();
        let t = Instant::now();
        let d = delta(&a, &b);
        let td = t.elapsed();
        let (rules, elems) = a.size();
        println!(
            "compile {tc:?} clone {tl:?} delta(same) {td:?} ({} sets, {rules} rules, {elems} elements, empty delta {})",
            a.sets.len(),
            d.is_empty()
        );
    }
}
