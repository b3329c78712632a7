//! The full matrix at two cluster sizes in one run: per-pair cost at each and their ratio, which stays near 1
//! when the matrix is linear in the pairs (issue 16: within 1.5× from 10k × 1k to 30k × 3k).
//!
//! `cargo bench -p palisade-engine --bench matrix [-- --sizes 10000x1000,30000x3000 --rounds 5 --seed 1]`

use std::time::Instant;

use palisade_engine::synth::{Shape, cluster};
use palisade_engine::{Index, IpFamily, Protocol};

struct Args {
    sizes: Vec<(usize, usize)>,
    rounds: usize,
    seed: u64,
}

fn args() -> Args {
    let mut a = Args { sizes: vec![(10_000, 1_000), (30_000, 3_000)], rounds: 5, seed: 1 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        // `cargo bench` adds `--bench`; anything else unknown is ignored the same way.
        match flag.as_str() {
            "--sizes" => {
                let v = it.next().expect("--sizes PODSxPOLICIES,...");
                a.sizes = v
                    .split(',')
                    .map(|s| {
                        let (p, q) = s.split_once('x').expect("PODSxPOLICIES");
                        (p.parse().expect("pods"), q.parse().expect("policies"))
                    })
                    .collect();
            }
            "--rounds" => a.rounds = it.next().and_then(|v| v.parse().ok()).expect("--rounds N"),
            "--seed" => a.seed = it.next().and_then(|v| v.parse().ok()).expect("--seed N"),
            _ => {}
        }
    }
    a
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let a = args();
    let mut per_pair = Vec::new();
    for &(pods, policies) in &a.sizes {
        let index = Index::build(&cluster(Shape { pods, policies, seed: a.seed, cluster_policies: 0 }));
        let n = index.pods().len();
        let pairs = (n * n) as f64;
        let mut ms = Vec::new();
        let mut allowed = 0;
        for _ in 0..a.rounds.max(1) {
            let t = Instant::now();
            let m = index.matrix(Protocol::Tcp, 8080, IpFamily::V4);
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            allowed = m.allowed_pairs();
            drop(std::hint::black_box(m));
        }
        let med = median(ms.clone());
        let ns = med * 1e6 / pairs;
        per_pair.push(ns);
        println!(
            "{pods} pods x {policies} policies: {pairs:.0} pairs ({allowed} allowed), matrix median {med:.1} ms \
             over {} rounds (min {:.1}, max {:.1}), {ns:.2} ns/pair",
            ms.len(),
            ms.iter().copied().fold(f64::INFINITY, f64::min),
            ms.iter().copied().fold(0.0, f64::max),
        );
    }
    if let (Some(first), Some(last)) = (per_pair.first(), per_pair.last())
        && per_pair.len() > 1
    {
        println!("per-pair cost, largest / smallest: {:.2}x (target <= 1.5x)", last / first);
    }
}
