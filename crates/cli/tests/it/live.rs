//! Live tests: real namespaces and packets. They need root and nft; CI runs them as root.

use std::process::Command;

pub(crate) fn live_ready() -> bool {
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

/// A sandbox of a test, with its own run directory; removed when dropped, also when an assertion fails.
struct LiveSandbox {
    dir: std::path::PathBuf,
    name: String,
}

impl LiveSandbox {
    fn up(tag: &str, manifests: &str) -> LiveSandbox {
        let dir = std::env::temp_dir().join(format!("palisade-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sb = LiveSandbox { name: format!("{tag}{}", std::process::id() % 100_000), dir };
        let file = sb.dir.join("manifests.yaml");
        std::fs::write(&file, manifests).unwrap();
        let up = sb.run(&["up", "-f", file.to_str().unwrap()]);
        assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
        sb
    }

    /// `palisade sandbox SUBCOMMAND --name NAME ARGS...`
    fn run(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec![args[0], "--name", &self.name];
        all.extend(&args[1..]);
        sandbox(&self.dir, &all)
    }

    fn probe(&self, from: &str, to: &str, port: &str) -> Option<i32> {
        self.run(&["probe", "--from", from, "--to", to, "--port", port]).status.code()
    }
}

impl Drop for LiveSandbox {
    fn drop(&mut self) {
        let _ = self.run(&["down"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default, labels: {app: client}}
spec: {containers: [{name: c, image: nginx, ports: [{containerPort: 80}]}]}
status: {podIP: 10.244.9.1, podIPs: [{ip: 10.244.9.1}]}
---
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: default, labels: {app: server}}
spec: {containers: [{name: c, image: nginx, ports: [{containerPort: 80}]}]}
status: {podIP: 10.244.9.2, podIPs: [{ip: 10.244.9.2}]}
"#;

const DENY_SERVER_INGRESS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-server-ingress, namespace: default}
spec:
  podSelector: {matchLabels: {app: server}}
  policyTypes: [Ingress]
"#;

/// Holds a connection client -> server for 3 s and applies the deny policy after 1.2 s; returns the holder's
/// timeline (`.` an echo came back, `X` it did not).
fn hold_while_denying(sb: &LiveSandbox, keep_established: bool) -> String {
    let holder = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["sandbox", "hold", "--name", &sb.name, "--from", "default/client", "--to", "default/server"])
        .args(["--port", "80", "--seconds", "3", "--interval-ms", "100"])
        .env("PALISADE_RUN_DIR", &sb.dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let policy = sb.dir.join("deny.yaml");
    std::fs::write(&policy, DENY_SERVER_INGRESS).unwrap();
    let mut args = vec!["apply", "-f", policy.to_str().unwrap()];
    if keep_established {
        args.push("--keep-established");
    }
    let applied = sb.run(&args);
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    let out = holder.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Conntrack keeps established flows for days; a change that stops admitting one must cut it, unless the
/// older behaviour is asked for.
#[test]
fn an_established_connection_is_cut_when_policy_stops_admitting_it() {
    if !live_ready() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    let sb = LiveSandbox::up("cut", PODS);
    let kept = hold_while_denying(&sb, true);
    assert!(sb.run(&["delete", "netpol", "deny-server-ingress"]).status.success());
    let cut = hold_while_denying(&sb, false);
    let new_conn = sb.probe("default/client", "default/server", "80");

    assert!(kept.len() >= 20 && !kept.contains('X'), "with --keep-established the flow survives: {kept}");
    assert!(cut.starts_with("....."), "the flow works before the change: {cut}");
    let first_loss = cut.find('X').unwrap_or_else(|| panic!("the flow must be cut: {cut}"));
    assert!(cut[first_loss..].chars().all(|c| c == 'X'), "once cut it stays cut: {cut}");
    assert_eq!(new_conn, Some(1), "new connections are refused too");
}

const SERVER_NO_EGRESS: &str = r#"
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
    let sb = LiveSandbox::up("rp", &format!("{PODS}---\n{SERVER_NO_EGRESS}"));
    let forward = sb.probe("default/client", "default/server", "80");
    let reverse = sb.probe("default/server", "default/client", "80");
    assert_eq!(forward, Some(0), "client -> server must connect (replies pass)");
    assert_eq!(reverse, Some(1), "server -> client must be blocked (server egress isolated)");
}

/// Ctrl-C in the middle of the demo still removes its namespaces (destructors do not run on signals).
#[test]
fn an_interrupted_demo_leaves_nothing_behind() {
    if !live_ready() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    let dir = std::env::temp_dir().join(format!("palisade-int-{}", std::process::id()));
    let child = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .arg("demo")
        .env("PALISADE_RUN_DIR", &dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let prefix = format!("palisade-demo{}-", child.id() % 100_000);
    let namespaces = || {
        let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.starts_with(&prefix)).count()
    };
    // Wait (bounded) until the sandbox exists, then interrupt.
    let start = std::time::Instant::now();
    while namespaces() == 0 && start.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(namespaces() > 0, "the demo created its sandbox");
    // Interrupt while it is still creating namespaces: the hardest moment to clean up.
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(130));
    assert_eq!(namespaces(), 0, "no namespace of the demo is left");
}

/// The dataplane benchmark end to end at a tiny size: every scenario measured, the issue's JSON fields
/// present, traffic flowing in each (numbers are not judged here; they live in the README).
#[test]
fn bench_dataplane_runs_every_scenario_and_prints_the_fields() {
    if !live_ready() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    let dir = std::env::temp_dir().join(format!("palisade-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["bench", "dataplane", "--pods", "60", "--policies", "12", "--rounds", "1", "--seconds", "0.2"])
        .args(["--changes", "3", "-o", "json"])
        .env("PALISADE_RUN_DIR", &dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for field in [
        "baseline_conn_per_s",
        "conntrack_conn_per_s",
        "palisade_conn_per_s",
        "linear_conn_per_s",
        "baseline_gbps",
        "conntrack_gbps",
        "palisade_gbps",
        "conn_ratio",
        "throughput_ratio",
        "full_load_ms",
        "update_p50_ms",
        "update_p99_ms",
    ] {
        let x = v[field].as_f64().unwrap_or_else(|| panic!("{field} missing: {v}"));
        assert!(x > 0.0, "{field} = {x}: {v}");
    }
}
