//! Where the time of one pod label change goes at scale (no kernel): rebuild vs in-place relabel of the
//! index, then compile and delta.
use std::time::Instant;

use palisade_engine::synth::{Shape, objects};
use palisade_engine::{Cluster, Index};
use palisade_nft::{Node, compile, delta};

fn main() {
    let objs = objects(Shape { pods: 10000, policies: 1000, seed: 42, cluster_policies: 0 });
    let cluster = Cluster::from_objects(objs.iter().cloned());
    let mut index = Index::build(&cluster);
    let node = Node {
        interfaces: index.pods().step_by(10).enumerate().map(|(i, p)| (p.key.clone(), format!("x{i}"))).collect(),
        ..Node::default()
    };
    let mut old = compile(&index, &node, "t");
    let key = index.pod(0).key.clone();
    for round in 0..5 {
        let t = Instant::now();
        let rebuilt = Index::build(&cluster);
        let rebuild = t.elapsed();
        drop(rebuilt);
        let mut labels = index.pod(0).facts.labels.clone();
        labels.insert("app".into(), format!("app-{round}"));
        let t = Instant::now();
        index.relabel_pod(&key, &labels);
        let t1 = t.elapsed();
        let new = compile(&index, &node, "t");
        let t2 = t.elapsed();
        let d = delta(&old, &new);
        let t3 = t.elapsed();
        println!(
            "rebuild {rebuild:?}; relabel {t1:?} compile {:?} delta {:?} ({} statements)",
            t2 - t1,
            t3 - t2,
            d.statements
        );
        old = new;
    }
}
