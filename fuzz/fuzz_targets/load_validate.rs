//! Load any text as manifests, validate every NetworkPolicy, build the index, decide and explain: never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_engine::explain::explain_policy;
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
    let index = Index::build(&cluster);
    let pods: Vec<_> = index.pods().iter().map(|p| p.key.clone()).take(8).collect();
    for a in &pods {
        for b in &pods {
            let c = Connection::new(Endpoint::Pod(a.clone()), Endpoint::Pod(b.clone()), Protocol::Tcp, 80);
            let _ = index.decide(&c);
        }
    }
    let _ = index.matrix(Protocol::Udp, 53, Default::default());
});
