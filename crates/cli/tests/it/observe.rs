//! `palisade sandbox observe`, live: a probe the policy denies shows up as the receiving node's deny record,
//! joined with the engine's explanation, and the kernel agrees with the engine.

use std::path::Path;
use std::time::{Duration, Instant};

use palisade_engine::{Cluster, Connection, Endpoint, Index, ObjectKey, Protocol};
use palisade_observe::{FlowRecord, Kind, Verdict};
use palisade_sandbox::Sandbox;

use crate::live::live_ready;

const CLUSTER: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default, labels: {app: client}}
spec: {nodeName: node-0, containers: [{name: c, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: other, namespace: default, labels: {app: other}}
spec: {nodeName: node-0, containers: [{name: c, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: default, labels: {app: server}}
spec: {nodeName: node-1, containers: [{name: c, ports: [{containerPort: 80}]}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: server-in, namespace: default}
spec:
  podSelector: {matchLabels: {app: server}}
  ingress: [{from: [{podSelector: {matchLabels: {app: other}}}], ports: [{port: 80}]}]
"#;

fn conn(from: &str, to: &str) -> Connection {
    Connection::new(
        Endpoint::Pod(ObjectKey::new("default", from)),
        Endpoint::Pod(ObjectKey::new("default", to)),
        Protocol::Tcp,
        80,
    )
}

#[test]
fn a_denied_probe_yields_a_deny_record_the_engine_explains_and_the_kernel_agrees_with() {
    if !live_ready() {
        return;
    }
    let loaded = palisade_engine::load_str("observe.yaml", CLUSTER);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let objects: Vec<_> = loaded.objects.into_iter().map(|o| o.value).collect();
    let name = format!("obs{}", std::process::id() % 100_000);
    let helper = Path::new(env!("CARGO_BIN_EXE_palisade"));
    let mut sb = Sandbox::up_with(&name, &objects, &[], helper, Some(2)).expect("sandbox up");
    sb.set_ephemeral(true);
    assert_eq!(sb.probe(&[conn("client", "server"), conn("other", "server")]).unwrap(), [false, true]);
    let index = Index::build(&Cluster::from_objects(objects));
    let engine = index.decide(&conn("client", "server")).unwrap();
    let isolated: Vec<String> = engine.ingress.as_ref().unwrap().selected_by.iter().map(ToString::to_string).collect();

    // The records reach the ring within the agent's loop turn; read them as the CLI prints them.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (records, text) = loop {
        let json = crate::palisade(&["sandbox", "observe", &name, "-o", "json"]);
        assert!(json.status.success(), "{}", String::from_utf8_lossy(&json.stderr));
        let records: Vec<FlowRecord> = String::from_utf8_lossy(&json.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        if records.iter().any(|r| r.kernel.kind == Kind::D) || Instant::now() > deadline {
            let text = crate::palisade(&["sandbox", "observe", &name]);
            break (records, String::from_utf8_lossy(&text.stdout).into_owned());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let denied: Vec<&FlowRecord> = records.iter().filter(|r| r.kernel.kind == Kind::D).collect();
    assert_eq!(denied.len(), 1, "exactly one deny record for the denied probe: {records:?}");
    let r = denied[0];
    assert_eq!((r.node.as_deref(), r.verdict), (Some("node-1"), Some(Verdict::Denied)));
    assert_eq!((r.src.pod.as_deref(), r.dst.pod.as_deref(), r.dst.port), (Some("client"), Some("server"), Some(80)));
    assert_eq!(r.isolated_by.as_ref(), Some(&isolated), "isolatedBy is the engine's");
    assert_eq!(r.kernel_agrees, Some(true));
    assert_eq!(r.kernel.chain.as_deref(), Some("ing_default__server"));
    assert!(
        text.contains("node-1 DENIED ingress default/client → default/server TCP/80")
            && text.contains("isolated by default/server-in"),
        "{text}"
    );
    // The allowed probe left no record (only drops are logged).
    assert!(records.iter().all(|r| r.src.pod.as_deref() != Some("other")), "{records:?}");
    eprintln!("{text}");
}
