//! Live tests: real namespaces and packets. They need root and nft; CI runs them as root.

use std::process::Command;

fn live_ready() -> bool {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let nft = Command::new("nft").arg("--version").output().is_ok_and(|o| o.status.success());
    if !(root && nft) && std::env::var_os("CI").is_some() {
        panic!("CI must run the live tests as root with nft installed");
    }
    root && nft
}

fn sandbox(run_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("sandbox")
        .args(args)
        .env("PALISADE_RUN_DIR", run_dir)
        .output()
        .expect("run palisade")
}

const CLUSTER: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default, labels: {app: client}}
spec: {containers: [{name: c, ports: [{containerPort: 80}]}]}
status: {podIP: 10.244.9.1, podIPs: [{ip: 10.244.9.1}]}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: default, labels: {app: server}}
spec: {containers: [{name: c, ports: [{containerPort: 80}]}]}
status: {podIP: 10.244.9.2, podIPs: [{ip: 10.244.9.2}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: server-no-egress, namespace: default}
spec:
  podSelector: {matchLabels: {app: server}}
  policyTypes: [Egress]
"#;

/// The server may not open connections, yet its replies to an admitted connection pass (conntrack first).
#[test]
fn replies_pass_when_the_reverse_direction_is_denied() {
    if !live_ready() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    let dir = std::env::temp_dir().join(format!("palisade-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cluster.yaml");
    std::fs::write(&file, CLUSTER).unwrap();
    let name = format!("t{}", std::process::id() % 100_000);
    let up = sandbox(&dir, &["up", "--name", &name, "-f", file.to_str().unwrap()]);
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    let forward = sandbox(
        &dir,
        &["probe", "--name", &name, "--from", "default/client", "--to", "default/server", "--port", "80"],
    );
    let reverse = sandbox(
        &dir,
        &["probe", "--name", &name, "--from", "default/server", "--to", "default/client", "--port", "80"],
    );
    let down = sandbox(&dir, &["down", "--name", &name]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(down.status.success());
    assert_eq!(forward.status.code(), Some(0), "client -> server must connect (replies pass)");
    assert_eq!(reverse.status.code(), Some(1), "server -> client must be blocked (server egress isolated)");
}
