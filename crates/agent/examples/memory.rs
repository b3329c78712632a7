//! Resident memory of the agent's parts on the benchmark's cluster: objects, index, ruleset.
//! `cargo run --release -p palisade-agent --example memory [PODS POLICIES]` (default 10000 1000).
use palisade_engine::synth::{Shape, manifests};
use palisade_engine::{Cluster, Index};

fn rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn main() {
    let arg = |i: usize, default: usize| std::env::args().nth(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    println!("start {:.1} MB", rss_mb());
    let docs = manifests(Shape { pods: arg(1, 10_000), policies: arg(2, 1_000), seed: 42, cluster_policies: 0 });
    let text: Vec<String> = docs.iter().map(|d| d.to_string()).collect();
    drop(docs);
    println!("manifest text {:.1} MB", rss_mb());
    let mut objects = Vec::new();
    for t in &text {
        let l = palisade_engine::load_str("f", t);
        for o in l.objects {
            let mut o = o.value;
            if let palisade_engine::Object::Pod(p) = &mut o {
                palisade_agent::source::strip_pod(p);
            }
            objects.push(o);
        }
    }
    drop(text);
    println!("objects (stripped) {:.1} MB", rss_mb());
    let cluster = Cluster::from_objects(objects);
    println!("cluster {:.1} MB", rss_mb());
    let index = Index::build(&cluster);
    println!("index {:.1} MB", rss_mb());
    let local = cluster
        .pods()
        .filter(|(_, p)| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("node-0"))
        .map(|(k, _)| (k.clone(), String::new()))
        .collect();
    let rs = palisade_nft::compile(&index, &palisade_nft::Node { interfaces: local, ..Default::default() }, "palisade");
    println!("ruleset {:.1} MB ({} sets)", rss_mb(), rs.sets.len());
    let text = rs.render_replace();
    println!("rendered {:.1} MB ({} bytes)", rss_mb(), text.len());
}
