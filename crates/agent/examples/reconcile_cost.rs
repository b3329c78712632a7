//! Where a single change's time goes in the agent, without the kernel: the store and index, then the
//! incremental compile and its transaction. `cargo run --release -p palisade-agent --example reconcile_cost
//! [PODS POLICIES ROUNDS]` (default 10000 1000 3).

use std::sync::Arc;
use std::time::Instant;

use palisade_agent::Agent;
use palisade_agent::interfaces::FixedInterfaces;
use palisade_agent::source::{CLUSTER_KINDS, Change, Event, KINDS};
use palisade_engine::Object;
use palisade_engine::synth::{Shape, objects};
use palisade_nft::{NftDataplane, Recorder};

fn main() {
    let arg = |i: usize, default: usize| std::env::args().nth(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let all = objects(Shape { pods: arg(1, 10_000), policies: arg(2, 1_000), seed: 42, cluster_policies: 0 });
    let mut agent = Agent::new(
        "node-0",
        "palisade",
        NftDataplane::new(Recorder::default(), Recorder::default()),
        FixedInterfaces::default(),
        Arc::default(),
    );
    let t = Instant::now();
    for kind in KINDS {
        let objects = all.iter().filter(|o| o.kind_of() == kind).cloned().collect();
        agent.handle(Event::now(Change::Relisted { kind, objects }));
    }
    for kind in CLUSTER_KINDS {
        agent.handle(Event::now(Change::RelistedCluster { kind, objects: Vec::new() }));
    }
    agent.reconcile(false).unwrap();
    println!("first sync {:?}", t.elapsed());
    let pod = all
        .iter()
        .find(|o| matches!(o, Object::Pod(p) if p.spec.as_ref().unwrap().node_name.as_deref() == Some("node-0")))
        .unwrap()
        .clone();
    let policy = all.iter().find(|o| matches!(o, Object::NetworkPolicy(_))).unwrap().clone();
    for round in 0..arg(3, 3) {
        for what in ["label", "add", "policy"] {
            let change = match (what, pod.clone(), policy.clone()) {
                ("label", Object::Pod(mut p), _) => {
                    p.metadata.labels.as_mut().unwrap().insert("app".into(), format!("app-{round}"));
                    Object::Pod(p)
                }
                ("add", Object::Pod(mut p), _) => {
                    p.metadata.name = Some(format!("new-{round}"));
                    p.status.as_mut().unwrap().pod_ip = Some(format!("10.99.0.{round}"));
                    p.status.as_mut().unwrap().pod_ips = None;
                    Object::Pod(p)
                }
                (_, _, Object::NetworkPolicy(mut p)) => {
                    p.metadata.labels = Some([("r".to_owned(), round.to_string())].into());
                    p.spec.as_mut().unwrap().pod_selector = Some(
                        serde_json::from_value(serde_json::json!({"matchLabels": {"app": format!("app-{round}")}}))
                            .unwrap(),
                    );
                    Object::NetworkPolicy(p)
                }
                _ => unreachable!(),
            };
            let t = Instant::now();
            agent.handle(Event::now(Change::Apply(change)));
            let t1 = t.elapsed();
            let rebuild = agent.store().needs_rebuild();
            let t2 = Instant::now();
            let outcome = agent.reconcile(false).unwrap().unwrap();
            let total = t2.elapsed();
            println!(
                "{what:6} handle {t1:>10.2?} rebuild={rebuild:5} reconcile (index, compile, transaction) {total:>10.2?} statements {}",
                outcome.report.statements
            );
        }
    }
}
