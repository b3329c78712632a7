//! Where the time of one pod label change goes at scale (no kernel): index, compile, delta.
use std::time::Instant;

use palisade_engine::synth::{Shape, objects};
use palisade_engine::{Cluster, Index};
use palisade_nft::{Node, compile, delta};

fn main() {
    let objs = objects(Shape { pods: 10000, policies: 1000, seed: 42 });
    let cluster = Cluster::from_objects(objs.iter().cloned());
    let index = Index::build(&cluster);
    let node = Node {
        interfaces: index
            .pods()
            .iter()
            .step_by(10)
            .enumerate()
            .map(|(i, p)| (p.key.clone(), format!("x{i}")))
            .collect(),
    };
    let old = compile(&index, &node, "t");
    for _ in 0..3 {
        let t = Instant::now();
        let index = Index::build(&cluster);
        let t1 = t.elapsed();
        let new = compile(&index, &node, "t");
        let t2 = t.elapsed();
        let d = delta(&old, &new);
        let t3 = t.elapsed();
        println!("index {t1:?} compile {:?} delta {:?} ({} statements)", t2 - t1, t3 - t2, d.statements);
    }
}
