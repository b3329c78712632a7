//! Faults of the node agent, live: multi-node sandboxes whose nodes are enforced by `palisade agent`
//! processes, probed with real packets while agents are killed, flooded with changes, or fed garbage.

use std::path::Path;
use std::time::{Duration, Instant};

use palisade_engine::{Connection, Endpoint, IpFamily, Object, ObjectKey, Protocol};
use palisade_sandbox::{Sandbox, node_name};

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
"#;

fn policy(name: &str, from_app: &str) -> String {
    format!(
        r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: {name}, namespace: default}}
spec:
  podSelector: {{matchLabels: {{app: server}}}}
  ingress: [{{from: [{{podSelector: {{matchLabels: {{app: {from_app}}}}}}}], ports: [{{port: 80}}]}}]
"#
    )
}

fn objects(text: &str) -> Vec<Object> {
    let l = palisade_engine::load_str("test.yaml", text);
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    l.objects.into_iter().map(|o| o.value).collect()
}

fn up(tag: &str, text: &str) -> Sandbox {
    let name = format!("{tag}{}", std::process::id() % 100_000);
    let helper = Path::new(env!("CARGO_BIN_EXE_palisade"));
    let mut sb = Sandbox::up_with(&name, &objects(text), &[], helper, Some(2)).expect("sandbox up");
    sb.set_ephemeral(true);
    sb
}

fn conn(from: &str, to: &str) -> Connection {
    Connection::new(
        Endpoint::Pod(ObjectKey::new("default", from)),
        Endpoint::Pod(ObjectKey::new("default", to)),
        Protocol::Tcp,
        80,
    )
}

/// kill -9 of an agent, then a restart: at no moment does a denied connection get through, and allowed
/// ones keep working (the rules stay in the kernel; the new agent takes the table over atomically).
#[test]
fn killing_and_restarting_an_agent_opens_no_window() {
    if !live_ready() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    let sb = up("kill", &format!("{CLUSTER}---{}", policy("web", "client")));
    let probes = [conn("client", "server"), conn("other", "server")];
    assert_eq!(sb.probe(&probes).unwrap(), [true, false]);
    let mut rounds = Vec::new();
    std::thread::scope(|s| {
        let prober = s.spawn(|| {
            let end = Instant::now() + Duration::from_secs(4);
            let mut seen = Vec::new();
            while Instant::now() < end {
                seen.push(sb.probe(&probes).unwrap());
            }
            seen
        });
        for round in 0..3 {
            std::thread::sleep(Duration::from_millis(300));
            // The server's node enforces its ingress; kill it (and, once, the client's node too).
            sb.kill_agent(1).unwrap();
            if round == 1 {
                sb.kill_agent(0).unwrap();
            }
            std::thread::sleep(Duration::from_millis(300));
            sb.restart_agent(1).unwrap();
            if round == 1 {
                sb.restart_agent(0).unwrap();
            }
        }
        rounds = prober.join().unwrap();
    });
    assert!(rounds.len() >= 4, "probed only {} rounds", rounds.len());
    for (i, r) in rounds.iter().enumerate() {
        assert_eq!(r, &[true, false], "round {i} of {}: [client->server, other->server]", rounds.len());
    }
}

/// Holds a TCP connection from one pod to another's port 80 in the background for `seconds`; its output is
/// a `.` per echo and an `X` per loss.
fn hold(sb: &Sandbox, from: &str, to: &str, seconds: u64) -> std::process::Child {
    let (ns, _) = sb.locate(&Endpoint::Pod(ObjectKey::new("default", from)), IpFamily::V4).unwrap();
    let (_, ip) = sb.locate(&Endpoint::Pod(ObjectKey::new("default", to)), IpFamily::V4).unwrap();
    std::process::Command::new("ip")
        .args(["netns", "exec", &ns, env!("CARGO_BIN_EXE_palisade"), "sandbox", "hold-raw"])
        .args(["--ip", &ip.unwrap().to_string(), "--port", "80", "--seconds", &seconds.to_string()])
        .args(["--interval-ms", "100"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// A policy as the sandbox's folder source takes it (one JSON file per object).
fn write_policy(sb: &Sandbox, name: &str, from_app: &str) {
    let Object::NetworkPolicy(p) = objects(&policy(name, from_app)).remove(0) else { unreachable!() };
    let mut v = serde_json::to_value(&p).unwrap();
    v["apiVersion"] = "networking.k8s.io/v1".into();
    v["kind"] = "NetworkPolicy".into();
    sb.write_manifest(&format!("networkpolicy.default.{name}.json"), &v.to_string()).unwrap();
}

/// A policy narrowed while a node had no agent: the agent that takes the table over judges the node's
/// established flows by the policies it finds, cuts the one no longer admitted and keeps the admitted one.
#[test]
fn a_flow_narrowed_while_the_agent_was_down_is_cut_on_restart() {
    if !live_ready() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    let both = format!("{CLUSTER}---{}---{}", policy("web", "client"), policy("web-other", "other"));
    let mut sb = up("narrow", &both);
    let probes = [conn("client", "server"), conn("other", "server")];
    assert_eq!(sb.probe(&probes).unwrap(), [true, true]);
    let narrowed = hold(&sb, "client", "server", 6);
    let admitted = hold(&sb, "other", "server", 6);
    std::thread::sleep(Duration::from_millis(1000));
    // The server's node enforces its ingress. With its agent gone, `web` stops admitting `client`.
    sb.kill_agent(1).unwrap();
    write_policy(&sb, "web", "other");
    sb.bump_revision().unwrap();
    // The old rules stay in the kernel meanwhile: the flow lives on until an agent takes over.
    std::thread::sleep(Duration::from_millis(500));
    sb.restart_agent(1).unwrap();
    let output =
        |c: std::process::Child| String::from_utf8_lossy(&c.wait_with_output().unwrap().stdout).trim().to_owned();
    let (narrowed, admitted) = (output(narrowed), output(admitted));

    assert!(admitted.len() >= 40 && !admitted.contains('X'), "the admitted flow survives the restart: {admitted}");
    assert!(narrowed.starts_with(".........."), "the flow works while the agent is down: {narrowed}");
    let first_loss = narrowed.find('X').unwrap_or_else(|| panic!("the flow must be cut on takeover: {narrowed}"));
    assert!(narrowed[first_loss..].chars().all(|c| c == 'X'), "once cut it stays cut: {narrowed}");
    assert!(narrowed.len() - first_loss >= 5, "cut well before the hold ends: {narrowed}");
    assert_eq!(sb.probe(&probes).unwrap(), [false, true], "new connections follow the narrowed policy");
}

/// A burst of 1,000 policy changes, written as fast as the folder takes them, converges to the state of
/// the last one.
#[test]
fn a_burst_of_a_thousand_changes_converges() {
    if !live_ready() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    let mut sb = up("burst", &format!("{CLUSTER}---{}", policy("web", "client")));
    let dir = sb.manifests_dir();
    let file = dir.join("networkpolicy.default.web.json");
    let started = Instant::now();
    for i in 0..1000 {
        let from = if i % 2 == 0 { "other" } else { "client" };
        let o = objects(&policy("web", from)).remove(0);
        let Object::NetworkPolicy(p) = o else { unreachable!() };
        let mut v = serde_json::to_value(&p).unwrap();
        v["apiVersion"] = "networking.k8s.io/v1".into();
        v["kind"] = "NetworkPolicy".into();
        let tmp = dir.join(".burst.tmp");
        std::fs::write(&tmp, v.to_string()).unwrap();
        std::fs::rename(&tmp, &file).unwrap();
    }
    let burst = started.elapsed();
    // The last word, through the sandbox (which waits for every agent to enforce it): admit `other` only.
    sb.apply(&objects(&policy("web", "other"))).unwrap();
    assert_eq!(sb.probe(&[conn("client", "server"), conn("other", "server")]).unwrap(), [false, true]);
    eprintln!("1000 changes written in {burst:?}, converged after {:?}", started.elapsed());
}

/// A malformed file and an invalid policy are reported (log and metric) and skipped; the rest is
/// enforced, and later changes still are.
#[test]
fn malformed_objects_are_reported_and_skipped() {
    if !live_ready() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    let mut sb = up("bad", &format!("{CLUSTER}---{}", policy("web", "client")));
    let dir = sb.manifests_dir();
    std::fs::write(dir.join("broken.yaml"), "kind: Pod\nmetadata: {name: [unclosed\n").unwrap();
    let invalid = policy("web", "client").replace(
        "podSelector: {matchLabels: {app: server}}",
        "podSelector: {matchLabels: {app: server}}\n  policyTypes: [Sideways]",
    );
    std::fs::write(dir.join("zz-invalid.yaml"), invalid).unwrap();
    // A valid change after them: the agents must still apply it.
    sb.apply(&objects(&policy("web", "other"))).unwrap();
    assert_eq!(sb.probe(&[conn("client", "server"), conn("other", "server")]).unwrap(), [false, true]);
    for i in 0..2 {
        let log = std::fs::read_to_string(sb.agent_log(i)).unwrap();
        assert!(log.contains("skipped an object the source could not use"), "{} log:\n{log}", node_name(i));
        assert!(log.contains("spec.policyTypes[0]"), "the invalid field is named:\n{log}");
        let metrics = std::process::Command::new("ip")
            .args(["netns", "exec", &sb.node_ns_of(i), "bash", "-c"])
            .arg("exec 3<>/dev/tcp/127.0.0.1/9464; printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&metrics.stdout);
        assert!(text.contains("palisade_invalid_objects_total 2"), "{} metrics:\n{text}", node_name(i));
        assert!(text.contains("palisade_local_pods "), "{text}");
    }
}

/// A sandbox whose control plane runs as `palisade sandbox up` starts it (agents on its API); `sandbox down`
/// when dropped, also when an assertion fails.
struct ControlPlane {
    name: String,
}

impl ControlPlane {
    fn run(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["sandbox", args[0], "--name", &self.name];
        all.extend(&args[1..]);
        std::process::Command::new(env!("CARGO_BIN_EXE_palisade")).args(&all).output().expect("run palisade")
    }

    fn ok(&self, args: &[&str]) {
        let out = self.run(args);
        assert!(out.status.success(), "palisade sandbox {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = self.run(&["down"]);
    }
}

/// Agents watching the sandbox's API ride out its faults as they would a cluster's: the API server
/// restarted mid-watch (connections cut, refused for a second), every watch dropped (they resume), and the
/// history compacted so a resume gets `410 Gone` (they list again). After each fault a policy change is
/// written and every agent enforces it; meanwhile continuous probes never see a denied connection through.
#[test]
fn agents_on_the_api_ride_out_restarts_dropped_watches_and_compaction() {
    if !live_ready() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    let cp = ControlPlane { name: format!("apif{}", std::process::id() % 100_000) };
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let cluster = CLUSTER.replace("containers: [{name: c,", "containers: [{name: c, image: nginx,");
    let first = write("cluster.yaml", &format!("{cluster}---{}", policy("web", "client")));
    cp.ok(&["up", "--nodes", "2", "-f", &first]);
    let sb = Sandbox::open(&cp.name, Path::new(env!("CARGO_BIN_EXE_palisade"))).expect("open the sandbox");
    let probes = [conn("client", "server"), conn("other", "server")];
    assert_eq!(sb.probe(&probes).unwrap(), [true, false]);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let faults: [&[&str]; 4] =
        [&["restart-api", "--down", "1s"], &["drop-watches"], &["compact"], &["restart-api", "--down", "300ms"]];
    std::thread::scope(|s| {
        let prober = s.spawn(|| {
            let end = Instant::now() + Duration::from_secs(120);
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < end {
                seen.push(sb.probe(&probes).unwrap());
            }
            seen
        });
        for (i, fault) in faults.iter().enumerate() {
            let mut args = vec!["fault"];
            args.extend(*fault);
            cp.ok(&args);
            if fault[0] == "restart-api" {
                // Written once the API answers again; the agents reconnect on their own.
                std::thread::sleep(Duration::from_millis(1200));
            }
            // Alternate the admitted client: `sandbox apply` returns once every agent enforces the write.
            let admitted = if i % 2 == 0 { "other" } else { "client" };
            let file = write(&format!("policy-{i}.yaml"), &policy("web", admitted));
            cp.ok(&["apply", "-f", &file]);
            let want = [admitted == "client", admitted == "other"];
            assert_eq!(sb.probe(&probes).unwrap(), want, "after fault {fault:?}");
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let rounds = prober.join().unwrap();
        assert!(rounds.len() >= 4, "probed only {} rounds", rounds.len());
        for (i, r) in rounds.iter().enumerate() {
            // Exactly one client is admitted at any moment: both through would be a window.
            assert!(r == &[true, false] || r == &[false, true], "round {i} of {}: {r:?}", rounds.len());
        }
    });
    // Each agent saw the 410 and listed again: its log says so.
    for i in 0..2 {
        let log = std::fs::read_to_string(sb.agent_log(i)).unwrap_or_default();
        assert!(log.contains("listed again"), "{} log:\n{log}", node_name(i));
    }
}

/// One TCP probe from inside a network namespace, bounded by `timeout_ms`.
fn probe_from(netns: &str, ip: std::net::IpAddr, port: u16, timeout_ms: u64) -> bool {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", netns, env!("CARGO_BIN_EXE_palisade"), "sandbox", "probe-raw"])
        .args(["--timeout-ms", &timeout_ms.to_string(), &format!("{ip},{port},tcp")])
        .output()
        .expect("run the prober");
    String::from_utf8_lossy(&out.stdout).trim() == "1"
}

/// `GET path` on a node agent's HTTP port, from inside the node's namespace.
fn agent_get(sb: &Sandbox, node: usize, path: &str) -> String {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &sb.node_ns_of(node), "bash", "-c"])
        .arg(format!("exec 3<>/dev/tcp/127.0.0.1/9464; printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn kubectl(kubeconfig: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new("kubectl").env("KUBECONFIG", kubeconfig).args(args).output().expect("kubectl runs")
}

const WINDOW_CLUSTER: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: server, namespace: default, labels: {app: server}}
spec: {nodeName: node-1, containers: [{name: c, image: nginx, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: peer, namespace: default, labels: {app: peer}}
spec: {nodeName: node-1, containers: [{name: c, image: nginx, ports: [{containerPort: 80}]}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: new-pods-deny-all, namespace: default}
spec:
  podSelector: {matchLabels: {app: new}}
  policyTypes: [Ingress, Egress]
"#;

/// A pod whose network is up (its namespace, address and server) while the kubelet holds back its status
/// for two seconds, so the agents learn its address only then. Returns the probes of that window, each
/// `[new pod -> server, peer -> new pod]`, taken from the moment its namespace exists until its address has
/// been in the API for a second; and the pending list node-0's agent showed meanwhile.
fn first_instant(cp: &ControlPlane, pod: &str, app: &str) -> (Vec<[bool; 2]>, String) {
    let helper = Path::new(env!("CARGO_BIN_EXE_palisade"));
    let kubeconfig = String::from_utf8(cp.run(&["kubeconfig"]).stdout).unwrap().trim().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pod.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {pod}, namespace: default, labels: {{app: {app}}}}}\n\
             spec: {{nodeName: node-0, containers: [{{name: c, image: nginx, ports: [{{containerPort: 80}}]}}]}}\n"
        ),
    )
    .unwrap();
    let out = kubectl(&kubeconfig, &["apply", "-f", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = format!("default/{pod}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let (sb, host) = loop {
        let sb = Sandbox::open(&cp.name, helper).expect("open the sandbox");
        if let Some(h) = sb.pods().get(&key).cloned() {
            break (sb, h);
        }
        assert!(Instant::now() < deadline, "the kubelet never started {key}");
        std::thread::sleep(Duration::from_millis(5));
    };
    let (server, peer) = (sb.pods()["default/server"].clone(), sb.pods()["default/peer"].clone());
    let ip = host.ips[0];
    let mut rounds = Vec::new();
    let mut pending = String::new();
    let mut addressed: Option<Instant> = None;
    while addressed.is_none_or(|t| t.elapsed() < Duration::from_secs(1)) {
        assert!(Instant::now() < deadline, "{key} never got its address in the API");
        let out = probe_from(&host.netns, server.ips[0], 80, 150);
        let inbound = probe_from(&peer.netns, ip, 80, 150);
        rounds.push([out, inbound]);
        if pending.is_empty() {
            pending = agent_get(&sb, 0, "/v1/pods/pending");
        }
        if addressed.is_none() {
            let got = kubectl(&kubeconfig, &["get", "pod", pod, "-o", "jsonpath={.status.podIP}"]);
            if !String::from_utf8_lossy(&got.stdout).trim().is_empty() {
                addressed = Some(Instant::now());
            }
        }
    }
    (rounds, pending)
}

/// The pod-start window, closed: a pod created under an existing default-deny, probing from its first
/// instant (outbound, and inbound from a peer on another node), never gets a connection through, although
/// its address reaches the agents two seconds after its network is up; meanwhile node-0's agent lists it as
/// pending. A pod no policy selects connects once the agent knows it, and its realization is measured.
fn a_new_pod_is_isolated_from_its_first_packet(layout: &str) {
    if !live_ready() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    assert!(
        std::process::Command::new("kubectl").arg("version").arg("--client").output().is_ok(),
        "kubectl must be installed"
    );
    let cp = ControlPlane { name: format!("win{}{}", &layout[..1], std::process::id() % 100_000) };
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("cluster.yaml");
    std::fs::write(&base, WINDOW_CLUSTER).unwrap();
    cp.ok(&["up", "--nodes", "2", "--layout", layout, "--kubelet-delay", "2s", "-f", base.to_str().unwrap()]);

    let (rounds, pending) = first_instant(&cp, "newbie", "new");
    assert!(rounds.len() >= 5, "probed only {} rounds", rounds.len());
    for (i, r) in rounds.iter().enumerate() {
        assert_eq!(r, &[false, false], "round {i} of {}: [newbie -> server, peer -> newbie]", rounds.len());
    }
    assert!(pending.contains(r#""pod":"default/newbie""#), "node-0's agent lists it as pending: {pending}");

    // A pod no policy selects: closed only until the agent knows it, then open.
    let (rounds, _) = first_instant(&cp, "free", "free");
    let first = rounds.iter().position(|r| r == &[true, true]).expect("the unselected pod connects");
    assert!(rounds[first..].iter().all(|r| r == &[true, true]), "{rounds:?}");
    let sb = Sandbox::open(&cp.name, Path::new(env!("CARGO_BIN_EXE_palisade"))).unwrap();
    let metrics = agent_get(&sb, 0, "/metrics");
    let count = metrics
        .lines()
        .find_map(|l| l.strip_prefix("palisade_pod_realization_seconds_count "))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert!(count.is_some_and(|n| n >= 2), "both pods' realization is measured:\n{metrics}");
}

/// Routed veths (Calico, Cilium): the agents learn the node's range from its Node's `spec.podCIDRs`.
#[test]
fn a_new_pod_is_isolated_from_its_first_packet_with_routed_veths() {
    a_new_pod_is_isolated_from_its_first_packet("routed");
}

/// Flannel's layout: pods behind one bridge per node (the forward hook sees the bridge, not the pod's port).
#[test]
fn a_new_pod_is_isolated_from_its_first_packet_behind_a_bridge() {
    a_new_pod_is_isolated_from_its_first_packet("bridge");
}

/// The same pod with `--pod-start=open`: the window exists (this is what the test above rules out).
#[test]
fn with_pod_start_open_the_window_exists() {
    if !live_ready() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    let cp = ControlPlane { name: format!("wop{}", std::process::id() % 100_000) };
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("cluster.yaml");
    std::fs::write(&base, WINDOW_CLUSTER).unwrap();
    cp.ok(&["up", "--nodes", "2", "--kubelet-delay", "2s", "--pod-start", "open", "-f", base.to_str().unwrap()]);
    let (rounds, _) = first_instant(&cp, "newbie", "new");
    assert!(
        rounds.iter().any(|r| r[0] || r[1]),
        "a denied connection got through before the agent knew the pod: {rounds:?}"
    );
    // Once the agent knows it, its policy holds.
    assert_eq!(rounds.last(), Some(&[false, false]), "{rounds:?}");
}

const DENY_CLIENT_TO_SERVER: &str = "apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: deny-client}
spec:
  tier: Admin
  priority: 10
  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: server}}}}
  ingress:
  - name: no-client
    action: Deny
    from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: client}}}}]
";

/// Probes until they give `want` (the agents enforce what kubectl wrote asynchronously), at most 20 s.
fn until_probes(sb: &Sandbox, probes: &[Connection], want: &[bool], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = sb.probe(probes).unwrap();
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: probes give {got:?}, want {want:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A ClusterNetworkPolicy written with real kubectl to a sandbox with its API reaches every node's agent
/// (their kube source watches the kind) and is enforced before the NetworkPolicy that admits the flow;
/// `kubectl get cnp` prints the CRD's columns; an invalid one is refused with its field path; `palisade
/// sandbox delete cnp` and `sandbox apply` of one work as for NetworkPolicies.
#[test]
fn kubectl_cluster_network_policies_are_enforced_by_the_agents() {
    if !live_ready() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    let cp = ControlPlane { name: format!("cnp{}", std::process::id() % 100_000) };
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let cluster = CLUSTER.replace("containers: [{name: c,", "containers: [{name: c, image: nginx,");
    let first = write("cluster.yaml", &format!("{cluster}---{}", policy("web", "client")));
    cp.ok(&["up", "--nodes", "2", "-f", &first]);
    let kubeconfig = String::from_utf8(cp.run(&["kubeconfig"]).stdout).unwrap().trim().to_owned();
    let sb = Sandbox::open(&cp.name, Path::new(env!("CARGO_BIN_EXE_palisade"))).expect("open the sandbox");
    let probes = [conn("client", "server"), conn("other", "server")];
    assert_eq!(sb.probe(&probes).unwrap(), [true, false], "the NetworkPolicy admits client only");

    let cnp = write("cnp.yaml", DENY_CLIENT_TO_SERVER);
    let out = kubectl(&kubeconfig, &["apply", "-f", &cnp]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("clusternetworkpolicy.policy.networking.k8s.io/deny-client created")
    );
    until_probes(&sb, &probes, &[false, false], "the Admin tier denies before the NetworkPolicy admits");
    let table = String::from_utf8(kubectl(&kubeconfig, &["get", "cnp"]).stdout).unwrap();
    assert!(table.starts_with("NAME          TIER    PRIORITY   AGE\ndeny-client   Admin   10 "), "{table}");

    let bad = write(
        "bad.yaml",
        &DENY_CLIENT_TO_SERVER.replace("name: deny-client", "name: bad").replace("tier: Admin", "tier: Middle"),
    );
    let out = kubectl(&kubeconfig, &["apply", "-f", &bad]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"The ClusterNetworkPolicy "bad" is invalid: spec.tier: Unsupported value: "Middle": supported values: "Admin", "Baseline""#),
        "{err}"
    );

    // Through the sandbox's own verbs: a delete, then an apply of a Pass (the NetworkPolicy decides again).
    cp.ok(&["delete", "cnp", "deny-client"]);
    assert_eq!(sb.probe(&probes).unwrap(), [true, false], "`sandbox delete` returns once the agents enforce it");
    let pass = write("pass.yaml", &DENY_CLIENT_TO_SERVER.replace("action: Deny", "action: Pass"));
    cp.ok(&["apply", "-f", &pass]);
    assert_eq!(sb.probe(&probes).unwrap(), [true, false]);
    let accept = write(
        "accept.yaml",
        &DENY_CLIENT_TO_SERVER.replace("app: client", "app: other").replace("action: Deny", "action: Accept"),
    );
    cp.ok(&["apply", "-f", &accept]);
    assert_eq!(sb.probe(&probes).unwrap(), [true, true], "an Admin Accept admits what the NetworkPolicy does not");
}

/// The folder mode of agents: `Sandbox::apply_cluster` writes tier policies to the agents' manifest folder
/// and `delete_cluster` removes them; both agents enforce each change before the call returns.
#[test]
fn agents_on_a_folder_enforce_cluster_network_policies() {
    if !live_ready() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    let mut sb = up("cnpf", &format!("{CLUSTER}---{}", policy("web", "client")));
    let probes = [conn("client", "server"), conn("other", "server")];
    assert_eq!(sb.probe(&probes).unwrap(), [true, false]);
    let loaded = palisade_engine::load_str("cnp.yaml", DENY_CLIENT_TO_SERVER);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let cnp: Vec<_> = loaded.cluster_objects.into_iter().map(|o| o.value).collect();
    sb.apply_cluster(&cnp).unwrap();
    assert!(sb.manifests_dir().join("clusternetworkpolicy..deny-client.json").exists());
    assert_eq!(sb.probe(&probes).unwrap(), [false, false], "the Admin Deny before the NetworkPolicy");
    let kind = palisade_engine::cnp::ClusterKind::ClusterNetworkPolicy;
    assert!(sb.delete_cluster(kind, "deny-client").unwrap());
    assert_eq!(sb.probe(&probes).unwrap(), [true, false]);
    assert!(!sb.delete_cluster(kind, "deny-client").unwrap(), "already gone");
}
