use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use palisade_cluster::apiserver::{ApiState, serve_tls};
use palisade_cluster::controlplane::bootstrap;
use palisade_cluster::store::{Store, ns_name};
use palisade_cluster::tls::Credentials;
use serde_json::json;

/// An API server on 127.0.0.1 with the controllers and a stand-in kubelet, and a kubeconfig for it.
struct Server {
    store: Store,
    state: Arc<ApiState>,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    creds: Credentials,
    port: u16,
    _rt: tokio::runtime::Runtime,
}

/// Marks pods bound to a node Running with an address, as the kubelet would (without a network namespace).
fn stand_in_kubelet(store: &Store) {
    let mut n = 0u32;
    for p in store.list("/pods", None).0 {
        let (ns, name) = ns_name(&p);
        if p["metadata"].get("deletionTimestamp").is_some() {
            let _ = store.delete("/pods", &ns, &name);
            continue;
        }
        n += 1;
        if p["spec"]["nodeName"].is_string() && p["status"]["phase"] != "Running" {
            let ip: std::net::IpAddr = format!("10.244.7.{}", n % 250 + 1).parse().unwrap();
            let status = palisade_cluster::kubelet::running_status(&p, &[ip], "172.31.255.1");
            let _ = store.modify("/pods", &ns, &name, |o| o["status"] = status);
        }
    }
}

impl Server {
    fn start() -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let store = Store::new(1000);
        bootstrap(&store, &["node-0".to_owned()]);
        let creds = Credentials::generate("test").unwrap();
        let state = ApiState::new(store.clone(), creds.token.clone(), None);
        let api_state = state.clone();
        let tls = creds.server_config().unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        rt.spawn(async move { serve_tls(listener, tls, state).await });
        rt.spawn(palisade_cluster::controllers::run(store.clone()));
        let s = store.clone();
        rt.spawn(async move {
            loop {
                let s2 = s.clone();
                let _ = tokio::task::spawn_blocking(move || stand_in_kubelet(&s2)).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, creds.kubeconfig("test", port)).unwrap();
        Server { store, state: api_state, dir, kubeconfig, creds, port, _rt: rt }
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Runs kubectl against the server: (exit code, stdout, stderr).
    fn kubectl(&self, args: &[&str]) -> (i32, String, String) {
        kubectl_with(&self.kubeconfig, &self.dir.path().join("cache"), args)
    }
}

fn kubectl_with(kubeconfig: &Path, cache: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new("kubectl")
        .args(args)
        .arg("--cache-dir")
        .arg(cache)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("kubectl must be installed to test the API against it");
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), s(&out.stdout), s(&out.stderr))
}

const POLICY: &str = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-allow, namespace: dev}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{podSelector: {matchLabels: {role: client}}}], ports: [{port: 80}]}]
";

#[test]
fn kubectl_creates_applies_gets_and_waits_as_on_a_cluster() {
    let s = Server::start();
    let ok = |args: &[&str]| {
        let (code, out, err) = s.kubectl(args);
        assert_eq!(code, 0, "kubectl {args:?}: {err}");
        out
    };
    // Protobuf bodies (kubectl 1.32's create), JSON (expose), strategic merge and server-side apply.
    assert!(ok(&["create", "namespace", "dev"]).contains("namespace/dev created"));
    ok(&["create", "deployment", "web", "--image", "nginx", "--port=80", "-n", "dev"]);
    assert!(
        ok(&["rollout", "status", "deployment/web", "-n", "dev", "--timeout=20s"]).contains("successfully rolled out")
    );
    ok(&["expose", "deployment", "web", "--port=80", "-n", "dev"]);
    let svc = ok(&["get", "svc", "web", "-n", "dev", "-o", "jsonpath={.spec.clusterIP}"]);
    assert!(svc.starts_with("10.96."), "{svc}");
    let pol = s.file("policy.yaml", POLICY);
    assert!(ok(&["apply", "-f", pol.to_str().unwrap()]).contains("networkpolicy.networking.k8s.io/web-allow created"));
    // Re-applying the same file changes nothing: the resourceVersion stays.
    let rv = |s: &Server| {
        s.store.get("networking.k8s.io/networkpolicies", "dev", "web-allow").unwrap()["metadata"]["resourceVersion"]
            .clone()
    };
    let before = rv(&s);
    ok(&["apply", "-f", pol.to_str().unwrap()]);
    assert_eq!(rv(&s), before);
    let table = ok(&["get", "netpol", "-n", "dev"]);
    assert!(table.starts_with("NAME        POD-SELECTOR   AGE\nweb-allow   app=web"), "{table}");
    assert!(ok(&["apply", "--server-side", "-f", pol.to_str().unwrap()]).contains("serverside-applied"));
    let deploy = ok(&["get", "deploy", "-n", "dev"]);
    assert!(deploy.contains("web    1/1     1            1"), "{deploy}");
    // The pods carry kubectl-style names and the template hash.
    let pods = ok(&[
        "get",
        "pods",
        "-n",
        "dev",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[*].metadata.labels.pod-template-hash}",
    ]);
    assert_eq!(pods.len(), 10, "{pods}");
    ok(&["scale", "deployment", "web", "-n", "dev", "--replicas=3"]);
    ok(&["rollout", "status", "deployment/web", "-n", "dev", "--timeout=20s"]);
    ok(&["wait", "--for=condition=Ready", "pod", "-l", "app=web", "-n", "dev", "--timeout=20s"]);
    assert_eq!(ok(&["get", "pods", "-n", "dev", "--no-headers"]).lines().count(), 3);
    // All namespaces: the NAMESPACE column and the labels come from each row's metadata. --sort-by asks for
    // whole objects (includeObject=Object) and sorts on a field outside the metadata.
    let all = ok(&["get", "pods", "-A", "--show-labels"]);
    assert_eq!(all.lines().filter(|l| l.starts_with("dev ") && l.contains("app=web")).count(), 3, "{all}");
    let sorted = ok(&["get", "pods", "-n", "dev", "--sort-by=.spec.nodeName", "-o", "wide"]);
    assert_eq!(sorted.lines().filter(|l| l.contains("node-0")).count(), 3, "{sorted}");
    // Labels and annotations, as the tutorials type them.
    ok(&["label", "namespace", "dev", "env=development"]);
    let (code, _, err) = s.kubectl(&["label", "namespace", "dev", "env=other"]);
    assert_eq!(code, 1);
    assert!(err.contains("already has a value (development), and --overwrite is false"), "{err}");
    ok(&["label", "namespace", "dev", "env=other", "--overwrite"]);
    ok(&["annotate", "netpol", "web-allow", "-n", "dev", "note=hello"]);
    ok(&["label", "namespace", "dev", "env-"]);
    assert!(!ok(&["get", "ns", "dev", "--show-labels"]).contains("env="));
    let described = ok(&["describe", "netpol", "web-allow", "-n", "dev"]);
    assert!(described.contains("PodSelector:     app=web"), "{described}");
    assert!(ok(&["api-resources"]).contains("networkpolicies"));
    // Deleting the namespace takes everything in it, Terminating first.
    let deleted = ok(&["delete", "namespace", "dev", "--timeout=20s"]);
    assert!(deleted.contains("namespace \"dev\" deleted"), "{deleted}");
    assert!(s.store.list("apps/deployments", Some("dev")).0.is_empty());
}

#[test]
fn bad_input_gets_the_apiservers_answer_and_changes_nothing() {
    let s = Server::start();
    let bad = s.file(
        "bad.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: bad}\nspec:\n  podSelector: {}\n  ingress: [{ports: [{protocol: TCPX, port: 80}]}]\n",
    );
    let (code, _, err) = s.kubectl(&["apply", "-f", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains(r#"The NetworkPolicy "bad" is invalid: spec.ingress[0].ports[0].protocol: Unsupported value: "TCPX": supported values: "SCTP", "TCP", "UDP""#),
        "{err}"
    );
    assert!(s.store.get("networking.k8s.io/networkpolicies", "default", "bad").is_none());
    let unknown = s.file("unknown.yaml", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: u}\nspec:\n  podSelector: {}\n  ingres: [{from: [{podSelector: {}}]}]\n");
    let (code, _, err) = s.kubectl(&["apply", "-f", unknown.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains(r#"strict decoding error: unknown field "spec.ingres""#), "{err}");
    let (code, _, err) = s.kubectl(&["get", "widgets"]);
    assert_eq!(code, 1);
    assert!(err.contains(r#"the server doesn't have a resource type "widgets""#), "{err}");
    let broken = s.file("broken.yaml", "kind: Pod\nmetadata: {name: [\n");
    let (code, _, _) = s.kubectl(&["apply", "-f", broken.to_str().unwrap()]);
    assert_eq!(code, 1);
    let (code, _, err) = s.kubectl(&["create", "namespace", "default"]);
    assert_eq!(code, 1);
    assert!(err.contains(r#"namespaces "default" already exists"#), "{err}");
    let (code, _, err) = s.kubectl(&["delete", "netpol", "missing"]);
    assert_eq!(code, 1);
    assert!(err.contains(r#"networkpolicies.networking.k8s.io "missing" not found"#), "{err}");
    // A wrong token: 401, as kubectl words it.
    let wrong = s.dir.path().join("wrong");
    std::fs::write(&wrong, s.creds.kubeconfig("test", s.port).replace(&s.creds.token, "nope")).unwrap();
    let (code, _, err) = kubectl_with(&wrong, &s.dir.path().join("cache2"), &["get", "pods"]);
    assert_eq!(code, 1);
    assert!(err.contains("You must be logged in to the server"), "{err}");
}

#[test]
fn kube_rs_gets_conflicts_and_resumes_watches_across_compaction() {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::watcher;
    let s = Server::start();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let kc = kube::config::Kubeconfig::read_from(&s.kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let api: kube::Api<ConfigMap> = kube::Api::namespaced(client.clone(), "default");
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "a"}, "data": {"k": "1"}})).unwrap();
        let created = api.create(&Default::default(), &cm).await.unwrap();
        let mut newer = created.clone();
        newer.data = Some([("k".to_owned(), "2".to_owned())].into());
        api.replace("a", &Default::default(), &newer).await.unwrap();
        // The first version again: its resourceVersion is stale.
        let err = api.replace("a", &Default::default(), &created).await.unwrap_err();
        assert!(matches!(&err, kube::Error::Api(e) if e.code == 409 && e.reason == "Conflict"), "{err:?}");
        // A watcher sees changes; after compaction its resume gets 410 and it re-lists without losing any.
        let mut events = watcher(api.clone(), watcher::Config::default()).boxed();
        let mut seen = std::collections::BTreeSet::new();
        let mut lists = 0;
        let mut step = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, events.next()).await {
            match ev {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                    seen.insert(o.metadata.name.unwrap_or_default());
                }
                Ok(watcher::Event::Init) => lists += 1,
                _ => {}
            }
            if step == 0 && seen.contains("a") {
                step = 1;
                // Every watch dropped, the store compacted, then a write: the resume from the last version
                // gets 410 Gone, and the watcher's re-list must bring "b".
                s.store.compact();
                s.state.drop_watches();
                let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "b"}})).unwrap();
                api.create(&Default::default(), &cm).await.unwrap();
            }
            if seen.contains("b") && lists >= 2 {
                break;
            }
        }
        assert!(seen.contains("b"), "the watcher saw the object made after compaction: {seen:?}");
        assert!(lists >= 2, "the resume got 410 Gone and the watcher listed again ({lists} lists)");
    });
}

#[test]
fn watches_resume_from_old_events_and_ride_out_bursts() {
    use futures::{StreamExt, TryStreamExt};
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{ListParams, WatchEvent, WatchParams};
    let s = Server::start();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let cm = |name: String, i: usize| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": "default", "labels": {"parity": (i % 2).to_string()}},
               "data": {"i": i.to_string()}})
    };
    rt.block_on(async {
        let kc = kube::config::Kubeconfig::read_from(&s.kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
        let api: kube::Api<ConfigMap> = kube::Api::namespaced(kube::Client::try_from(config).unwrap(), "default");
        let from = api.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
        // More changes than the store keeps as values: a watch from before them replays the older ones
        // from their text, in order, with or without a selector.
        for i in 0..400 {
            s.store.create("/configmaps", cm(format!("a{i:03}"), i)).unwrap();
        }
        let odd: Vec<usize> = (1..400).step_by(2).collect();
        for (params, want) in
            [(WatchParams::default(), (0..400).collect()), (WatchParams::default().labels("parity=1"), odd)]
        {
            let mut stream = api.watch(&params, &from).await.unwrap().boxed();
            let mut seen = Vec::new();
            while seen.len() < want.len() {
                match tokio::time::timeout(Duration::from_secs(10), stream.try_next()).await {
                    Ok(Ok(Some(WatchEvent::Added(o)))) => seen.push(o.data.unwrap()["i"].parse::<usize>().unwrap()),
                    other => panic!("after {} events: {other:?}", seen.len()),
                }
            }
            assert_eq!(seen, want);
        }
        // A burst written faster than a watch sends it: the watch catches up from the store's window
        // instead of ending, so one stream brings every change.
        let mut stream = api.watch(&WatchParams::default().timeout(60), "0").await.unwrap().boxed();
        let store = s.store.clone();
        let writer = std::thread::spawn(move || {
            for i in 0..3000 {
                store.create("/configmaps", cm(format!("b{i:04}"), i)).unwrap();
            }
        });
        let mut seen = 0;
        while seen < 3000 {
            match tokio::time::timeout(Duration::from_secs(20), stream.next()).await {
                Ok(Some(Ok(WatchEvent::Added(o)))) if o.metadata.name.as_ref().unwrap().starts_with('b') => {
                    assert_eq!(o.metadata.name.unwrap(), format!("b{seen:04}"));
                    seen += 1;
                }
                Ok(Some(Ok(WatchEvent::Added(_) | WatchEvent::Bookmark(_)))) => {}
                other => panic!("the stream stopped after {seen} of the burst's changes: {other:?}"),
            }
        }
        writer.join().unwrap();
    });
}

const CNP: &str = "apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: deny-from-z}
spec:
  tier: Admin
  priority: 10
  subject: {namespaces: {matchLabels: {team: x}}}
  ingress:
  - name: deny-z
    action: Deny
    from: [{namespaces: {matchLabels: {team: z}}}]
";

/// ClusterNetworkPolicy (v1alpha2) and the v1alpha1 kinds are served as their CRDs would be: kubectl finds
/// them by plural and short name, applies them (client-side and server-side), prints their CRDs' columns,
/// and gets the engine's validation with field paths; kube-rs discovers them.
#[test]
fn kubectl_applies_gets_and_deletes_cluster_network_policies() {
    let s = Server::start();
    let ok = |args: &[&str]| {
        let (code, out, err) = s.kubectl(args);
        assert_eq!(code, 0, "kubectl {args:?}: {err}");
        out
    };
    let cnp = s.file("cnp.yaml", CNP);
    let applied = ok(&["apply", "-f", cnp.to_str().unwrap()]);
    assert!(applied.contains("clusternetworkpolicy.policy.networking.k8s.io/deny-from-z created"), "{applied}");
    let stored = s.store.get("policy.networking.k8s.io/clusternetworkpolicies", "", "deny-from-z").unwrap();
    assert!(stored["metadata"].get("namespace").is_none(), "cluster-scoped");
    // An edit is a merge patch (kubectl has no compiled-in type for this kind).
    let edited = s.file("cnp2.yaml", &CNP.replace("priority: 10", "priority: 20"));
    assert!(ok(&["apply", "-f", edited.to_str().unwrap()]).contains("configured"));
    let table = ok(&["get", "clusternetworkpolicies"]);
    assert!(table.starts_with("NAME          TIER    PRIORITY   AGE\ndeny-from-z   Admin   20 "), "{table}");
    assert_eq!(ok(&["get", "cnp", "deny-from-z", "-o", "jsonpath={.spec.ingress[0].name}"]), "deny-z");
    assert!(ok(&["apply", "--server-side", "-f", cnp.to_str().unwrap()]).contains("serverside-applied"));
    let resources = ok(&["api-resources", "--api-group", "policy.networking.k8s.io"]);
    for line in [
        "clusternetworkpolicies         cnp          policy.networking.k8s.io/v1alpha2   false        ClusterNetworkPolicy",
        "adminnetworkpolicies           anp          policy.networking.k8s.io/v1alpha1   false        AdminNetworkPolicy",
        "baselineadminnetworkpolicies   banp         policy.networking.k8s.io/v1alpha1   false        BaselineAdminNetworkPolicy",
    ] {
        assert!(resources.contains(line), "{line}\n{resources}");
    }
    let banp = s.file(
        "banp.yaml",
        "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\nmetadata: {name: default}\nspec:\n  subject: {namespaces: {}}\n  ingress: [{action: Deny, from: [{namespaces: {}}]}]\n",
    );
    ok(&["apply", "-f", banp.to_str().unwrap()]);
    assert!(ok(&["get", "banp"]).starts_with("NAME      AGE\ndefault   "));

    // Invalid: every error with its field path, in the apiserver's words; nothing stored.
    let bad = s.file(
        "bad.yaml",
        &CNP.replace("name: deny-from-z", "name: bad")
            .replace("priority: 10", "priority: 1001")
            .replace("Deny", "Drop"),
    );
    let (code, _, err) = s.kubectl(&["apply", "-f", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains(r#"The ClusterNetworkPolicy "bad" is invalid: "#), "{err}");
    assert!(
        err.contains("spec.priority: Invalid value: 1001: spec.priority in body should be less than or equal to 1000"),
        "{err}"
    );
    assert!(err.contains(r#"spec.ingress[0].action: Unsupported value: "Drop""#), "{err}");
    assert!(s.store.get("policy.networking.k8s.io/clusternetworkpolicies", "", "bad").is_none());
    let unknown = s.file("unknown.yaml", &CNP.replace("tier: Admin", "tier: Admin\n  tiers: [Admin]"));
    let (code, _, err) = s.kubectl(&["apply", "-f", unknown.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains(r#"strict decoding error: unknown field "spec.tiers""#), "{err}");

    assert!(
        ok(&["delete", "cnp", "deny-from-z"])
            .contains("clusternetworkpolicy.policy.networking.k8s.io \"deny-from-z\" deleted")
    );
    assert!(s.store.get("policy.networking.k8s.io/clusternetworkpolicies", "", "deny-from-z").is_none());
    let (code, _, err) = s.kubectl(&["get", "cnp", "deny-from-z"]);
    assert_eq!(code, 1);
    assert!(err.contains(r#"clusternetworkpolicies.policy.networking.k8s.io "deny-from-z" not found"#), "{err}");
}
