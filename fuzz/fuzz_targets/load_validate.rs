//! Load any text as manifests, validate every NetworkPolicy and every ClusterNetworkPolicy (and v1alpha1
//! predecessor), build the index with the tiers, decide and explain: never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_engine::cnp::explain::explain_tier_policy;
use palisade_engine::cnp::validate::validate_cluster_object;
use palisade_engine::explain::{explain_policy, verdict_text};
use palisade_engine::validate::validate_network_policy;
use palisade_engine::{Cluster, Connection, Endpoint, Index, Object, Protocol, load_str};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let loaded = load_str("fuzz.yaml", text);
    let mut cluster = Cluster::new();
    for o in loaded.objects {
        if let Object::NetworkPolicy(p) = &o.value {
            if !validate_network_policy(p).is_empty() {
                continue;
            }
            let _ = explain_policy(p);
        }
        cluster.apply(o.value);
    }
    for o in loaded.cluster_objects {
        let errors = validate_cluster_object(&o.value);
        let _ = explain_tier_policy(&o.value);
        if errors.iter().all(|e| e.stricter) {
            cluster.apply_cluster(o.value);
        }
    }
    let index = Index::build(&cluster);
    let pods: Vec<_> = index.pods().iter().map(|p| p.key.clone()).take(8).collect();
    for a in &pods {
        for b in &pods {
            let c = Connection::new(Endpoint::Pod(a.clone()), Endpoint::Pod(b.clone()), Protocol::Tcp, 80);
            if let Ok(v) = index.decide(&c) {
                let _ = verdict_text(&index, &v);
            }
        }
    }
    let _ = index.matrix(Protocol::Udp, 53, Default::default());
});
