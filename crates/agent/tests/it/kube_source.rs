//! The Kubernetes source against kube-rs's mock service: realistic list and watch responses (adds,
//! modifies, deletes, a bookmark, a watch that drops, a `410 Gone` that forces a re-list), then the
//! resulting events through the reconcile loop into the recording nft fake.

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use palisade_agent::Agent;
use palisade_agent::interfaces::FixedInterfaces;
use palisade_agent::source::{Change, Event};
use palisade_engine::cnp::ClusterKind;
use palisade_engine::{Connection, Endpoint, Kind, Object, ObjectKey, Protocol};
use palisade_nft::{NftDataplane, Recorder};
use serde_json::{Value, json};

fn pod(name: &str, app: &str, ip: &str, rv: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": "shop", "resourceVersion": rv, "uid": format!("uid-{name}"),
            "labels": {"app": app},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
            "managedFields": [{"manager": "kubectl", "operation": "Update"}]
        },
        "spec": {
            "nodeName": "n1",
            "containers": [{"name": "c", "image": "nginx:1.27", "ports": [{"containerPort": 80}],
                            "env": [{"name": "A", "value": "B"}]}]
        },
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "192.0.2.1",
                   "conditions": [{"type": "Ready", "status": "True"}]}
    })
}

fn list(kind: &str, rv: &str, items: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": rv}, "items": items}))
        .unwrap()
}

fn watch_events(events: &[(&str, Value)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (t, o) in events {
        out.extend(serde_json::to_vec(&json!({"type": t, "object": o})).unwrap());
        out.push(b'\n');
    }
    out
}

fn ok(body: Vec<u8>) -> Response<Body> {
    Response::builder().status(200).body(Body::from(body)).unwrap()
}

fn not_found() -> Response<Body> {
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": "the server could not find the requested resource", "reason": "NotFound", "code": 404});
    Response::builder().status(404).body(Body::from(serde_json::to_vec(&status).unwrap())).unwrap()
}

const CNP: (&str, &str) = ("clusternetworkpolicies", "ClusterNetworkPolicy");
const ANP: (&str, &str) = ("adminnetworkpolicies", "AdminNetworkPolicy");
const BANP: (&str, &str) = ("baselineadminnetworkpolicies", "BaselineAdminNetworkPolicy");

/// Legacy discovery of a group-version serving these (plural, kind).
fn resources(served: &[(&str, &str)]) -> Vec<u8> {
    let list: Vec<Value> = served
        .iter()
        .map(|(plural, kind)| {
            json!({"name": plural, "singularName": kind.to_lowercase(), "namespaced": false,
                                      "kind": kind, "verbs": ["get", "list", "watch"]})
        })
        .collect();
    serde_json::to_vec(&json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "policy.networking.k8s.io/v1alpha2", "resources": list}))
        .unwrap()
}

/// An Admin ClusterNetworkPolicy: web's ingress from client gets `action`.
fn cnp(name: &str, action: &str, rv: &str) -> Value {
    json!({"apiVersion": "policy.networking.k8s.io/v1alpha2", "kind": "ClusterNetworkPolicy",
           "metadata": {"name": name, "resourceVersion": rv, "managedFields": [{"manager": "kubectl"}]},
           "spec": {"tier": "Admin", "priority": 10,
                    "subject": {"pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "web"}}}},
                    "ingress": [{"name": "client", "action": action,
                                 "from": [{"pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "client"}}}}]}]}})
}

/// One the engine refuses (the apiserver with the CRD would too): priority out of range.
fn invalid_cnp() -> Value {
    let mut v = cnp("too-low", "Deny", "28");
    v["spec"]["priority"] = json!(1001);
    v
}

fn query(req: &Request<Body>, name: &str) -> Option<String> {
    req.uri().query()?.split('&').find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_owned))
}

/// Answers the three kinds' requests like an apiserver whose pods change, then forgets history.
async fn apiserver(
    mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
) {
    let policy = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "3"},
        "spec": {"podSelector": {"matchLabels": {"app": "web"}},
                 "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}]}
    });
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "resourceVersion": "2", "labels": {"team": "a"}}});
    let mut pod_watches = 0;
    let mut cnp_watches = 0;
    let mut held = Vec::new();
    while let Some((req, send)) = handle.next_request().await {
        let path = req.uri().path().to_owned();
        let watching = query(&req, "watch").as_deref() == Some("true");
        let rv = query(&req, "resourceVersion").unwrap_or_default();
        seen.lock().unwrap().push(format!("{} watch={watching} rv={rv}", path));
        match (path.as_str(), watching) {
            ("/api/v1/namespaces", false) => {
                send.send_response(ok(list("NamespaceList", "2", vec![namespace.clone()])))
            }
            ("/apis/networking.k8s.io/v1/networkpolicies", false) => {
                send.send_response(ok(list("NetworkPolicyList", "3", vec![policy.clone()])))
            }
            ("/api/v1/pods", false) if pod_watches == 0 => send.send_response(ok(list(
                "PodList",
                "10",
                vec![pod("web", "web", "10.244.1.5", "9"), pod("old", "client", "10.244.1.6", "10")],
            ))),
            ("/api/v1/pods", true) if pod_watches == 0 => {
                pod_watches += 1;
                // Three changes and a bookmark, then the connection drops (the body ends).
                send.send_response(ok(watch_events(&[
                    ("ADDED", pod("client", "client", "10.244.1.7", "11")),
                    ("MODIFIED", pod("web", "web", "10.244.1.5", "12")),
                    ("DELETED", pod("old", "client", "10.244.1.6", "13")),
                    ("BOOKMARK", json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": "15"}})),
                ])));
            }
            ("/api/v1/pods", true) if pod_watches == 1 => {
                pod_watches += 1;
                // The resumed watch is too old: history was compacted.
                send.send_response(ok(watch_events(&[(
                    "ERROR",
                    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                           "message": "too old resource version: 15 (20)", "reason": "Expired", "code": 410}),
                )])));
            }
            ("/api/v1/pods", false) => send.send_response(ok(list(
                "PodList",
                "20",
                vec![pod("web", "web", "10.244.1.5", "12"), pod("late", "client", "10.244.1.8", "19")],
            ))),
            // Every Node: the nodes peer, and this node's own pod address ranges.
            ("/api/v1/nodes", false) => {
                let node = json!({"apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": "n1", "resourceVersion": "4", "labels": {"kubernetes.io/os": "linux"}},
                    "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24", "fd00:1::/64"]},
                    "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.1"}],
                               "conditions": [{"type": "Ready", "status": "True"}]}});
                let other = json!({"apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": "n2", "resourceVersion": "5"}, "spec": {"podCIDRs": ["10.244.2.0/24"]}});
                send.send_response(ok(list("NodeList", "5", vec![node, other])))
            }
            // ClusterNetworkPolicy's CRD is installed; the v1alpha1 ones are not.
            ("/apis/policy.networking.k8s.io/v1alpha2", false) => send.send_response(ok(resources(&[CNP]))),
            ("/apis/policy.networking.k8s.io/v1alpha1", false) => send.send_response(not_found()),
            ("/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies", false) => send.send_response(ok(list(
                "ClusterNetworkPolicyList",
                "30",
                vec![cnp("deny-client", "Deny", "29"), invalid_cnp()],
            ))),
            ("/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies", true) if cnp_watches == 0 => {
                cnp_watches += 1;
                send.send_response(ok(watch_events(&[
                    ("ADDED", cnp("pass-client", "Pass", "31")),
                    ("DELETED", cnp("pass-client", "Pass", "32")),
                ])));
            }
            // Every other watch stays open with nothing to say.
            _ => held.push(send),
        }
    }
}

fn describe(c: &Change) -> String {
    match c {
        Change::Apply(o) => format!("apply {:?} {}", o.kind_of(), o.display_name()),
        Change::Delete { kind, namespace, name } => format!("delete {kind:?} {namespace}/{name}"),
        Change::Listed { kind, keys } => {
            let names: Vec<String> = keys.iter().map(ToString::to_string).collect();
            format!("listed {kind:?} [{}]", names.join(", "))
        }
        Change::Relisted { kind, objects } => {
            let names: Vec<String> = objects.iter().map(Object::display_name).collect();
            format!("relisted {kind:?} [{}]", names.join(", "))
        }
        Change::Invalid { message } => format!("invalid {message}"),
        Change::Revision(r) => format!("revision {r}"),
        Change::NodeRanges(r) => format!("node ranges {r:?}"),
        Change::ApplyCluster(o) => format!("apply {:?} {}", o.kind(), o.name()),
        Change::DeleteCluster { kind, name } => format!("delete {kind:?} {name}"),
        Change::RelistedCluster { kind, objects } => {
            let names: Vec<&str> = objects.iter().map(|o| o.name()).collect();
            format!("relisted {kind:?} [{}]", names.join(", "))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_become_changes_and_a_410_forces_a_relist() {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    tokio::spawn(apiserver(handle, seen.clone()));
    let client = kube::Client::new(service, "default");
    let (tx, rx) = std::sync::mpsc::channel::<Event>();
    tokio::spawn(palisade_agent::kube::run(client, tx, "n1".to_owned()));

    let mut events: Vec<Event> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        while let Ok(e) = rx.try_recv() {
            events.push(e);
        }
        let relisted = |e: &Event| matches!(&e.change, Change::Listed { kind: Kind::Pod, keys } if keys.iter().any(|k| k.name == "late"));
        let cnp_gone = |e: &Event| matches!(&e.change, Change::DeleteCluster { name, .. } if name == "pass-client");
        if events.iter().any(relisted) && events.iter().any(cnp_gone) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pods: Vec<String> = events
        .iter()
        .filter(|e| match &e.change {
            Change::Apply(o) => o.kind_of() == Kind::Pod,
            Change::Delete { kind, .. } | Change::Relisted { kind, .. } | Change::Listed { kind, .. } => {
                *kind == Kind::Pod
            }
            _ => false,
        })
        .map(|e| describe(&e.change))
        .collect();
    assert_eq!(
        pods,
        [
            // The list, streamed, then the keys it held.
            "apply Pod shop/web",
            "apply Pod shop/old",
            "listed Pod [shop/old, shop/web]",
            // The watch.
            "apply Pod shop/client",
            "apply Pod shop/web",
            "delete Pod shop/old",
            // After 410 Gone, the re-list: `client` is not in it, so it goes at `listed`.
            "apply Pod shop/web",
            "apply Pod shop/late",
            "listed Pod [shop/late, shop/web]",
        ],
        "requests: {:#?}",
        seen.lock().unwrap()
    );
    let ranges: Vec<String> =
        events.iter().filter(|e| matches!(e.change, Change::NodeRanges(_))).map(|e| describe(&e.change)).collect();
    assert_eq!(ranges, ["node ranges [10.244.1.0/24, fd00:1::/64]"], "the node's own podCIDRs, once");
    let of_kind = |kind: ClusterKind| -> Vec<String> {
        events
            .iter()
            .filter(|e| match &e.change {
                Change::ApplyCluster(o) => o.kind() == kind,
                Change::DeleteCluster { kind: k, .. } | Change::RelistedCluster { kind: k, .. } => *k == kind,
                _ => false,
            })
            .map(|e| describe(&e.change))
            .collect()
    };
    assert_eq!(of_kind(ClusterKind::Node), ["relisted Node [n1, n2]"], "every Node, not only this one");
    assert_eq!(
        of_kind(ClusterKind::ClusterNetworkPolicy),
        [
            "relisted ClusterNetworkPolicy [deny-client]",
            "apply ClusterNetworkPolicy pass-client",
            "delete ClusterNetworkPolicy pass-client"
        ],
        "requests: {:#?}",
        seen.lock().unwrap()
    );
    assert_eq!(of_kind(ClusterKind::AdminNetworkPolicy), ["relisted AdminNetworkPolicy []"], "not installed");
    assert_eq!(of_kind(ClusterKind::BaselineAdminNetworkPolicy), ["relisted BaselineAdminNetworkPolicy []"]);
    let invalid: Vec<String> =
        events.iter().filter(|e| matches!(e.change, Change::Invalid { .. })).map(|e| describe(&e.change)).collect();
    assert_eq!(
        invalid,
        [
            r#"invalid ClusterNetworkPolicy.policy.networking.k8s.io "too-low" is invalid: spec.priority: Invalid value: 1001: spec.priority in body should be less than or equal to 1000"#
        ]
    );
    let requests = seen.lock().unwrap().clone();
    assert!(
        requests.contains(&"/api/v1/pods watch=true rv=15".to_owned()),
        "the dropped watch resumes from the bookmark: {requests:#?}"
    );

    // Pods are kept with only what the engine needs.
    let Some(Change::Apply(Object::Pod(p))) =
        events.iter().map(|e| &e.change).find(|c| matches!(c, Change::Apply(Object::Pod(_))))
    else {
        unreachable!()
    };
    assert!(p.metadata.annotations.is_none() && p.metadata.managed_fields.is_none());
    let spec = p.spec.as_ref().unwrap();
    assert_eq!(spec.node_name.as_deref(), Some("n1"));
    assert!(spec.containers[0].image.is_none() && spec.containers[0].env.is_none());
    assert!(p.status.as_ref().unwrap().conditions.is_none());
    assert_eq!(spec.containers[0].ports.as_ref().unwrap()[0].container_port, 80);

    // Through the reconcile loop: the node enforces the final state.
    let ifs = FixedInterfaces([("10.244.1.5".parse().unwrap(), "cali5".to_owned())].into());
    let mut agent =
        Agent::new("n1", "palisade", NftDataplane::new(Recorder::default(), Recorder::default()), ifs, Arc::default());
    for e in events {
        agent.handle(e);
    }
    assert!(agent.initialized());
    let names: Vec<&str> = agent.store().tier_policies().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["deny-client"]);
    assert!(!late_reaches_web(agent.store()), "the Admin tier denies what the NetworkPolicy admits");
    agent.reconcile(false).unwrap();
    let script = agent.dataplane().nft.scripts.join("\n");
    assert!(script.contains("ing_shop__web"), "web is isolated on n1");
    assert!(script.contains("10.244.1.8"), "late is an admitted peer:\n{script}");
    assert!(
        !script.contains("10.244.1.6") && !script.contains("10.244.1.7"),
        "old and client are gone (the re-list):\n{script}"
    );
}

fn late_reaches_web(store: &palisade_engine::Store) -> bool {
    let conn = Connection::new(
        Endpoint::Pod(ObjectKey::new("shop", "late")),
        Endpoint::Pod(ObjectKey::new("shop", "web")),
        Protocol::Tcp,
        80,
    );
    store.clone().index().decide(&conn).expect("both pods exist").allowed
}

/// An apiserver without the tier CRDs at first: ClusterNetworkPolicy's discovery answers 404 until it is
/// "installed"; AdminNetworkPolicy is in (stale) discovery but its list answers 404; the agent may not list
/// Nodes (403). Every one of them counts as listed-empty, so NetworkPolicy is enforced at once.
async fn apiserver_without_crds(
    mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
    installed: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut held = Vec::new();
    while let Some((req, send)) = handle.next_request().await {
        let path = req.uri().path().to_owned();
        let watching = query(&req, "watch").as_deref() == Some("true");
        seen.lock().unwrap().push(format!("{path} watch={watching}"));
        let now = installed.load(std::sync::atomic::Ordering::SeqCst);
        match (path.as_str(), watching) {
            ("/api/v1/namespaces", false) => send.send_response(ok(list("NamespaceList", "2", vec![]))),
            ("/apis/networking.k8s.io/v1/networkpolicies", false) => {
                send.send_response(ok(list("NetworkPolicyList", "3", vec![])))
            }
            ("/api/v1/pods", false) => send.send_response(ok(list(
                "PodList",
                "10",
                vec![pod("web", "web", "10.244.1.5", "9"), pod("late", "client", "10.244.1.8", "10")],
            ))),
            ("/api/v1/nodes", false) => {
                let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "nodes is forbidden: User \"system:serviceaccount:palisade:agent\" cannot list resource \"nodes\"",
                    "reason": "Forbidden", "code": 403});
                send.send_response(
                    Response::builder().status(403).body(Body::from(serde_json::to_vec(&status).unwrap())).unwrap(),
                )
            }
            ("/apis/policy.networking.k8s.io/v1alpha2", false) if now => send.send_response(ok(resources(&[CNP]))),
            ("/apis/policy.networking.k8s.io/v1alpha2", false) => send.send_response(not_found()),
            ("/apis/policy.networking.k8s.io/v1alpha1", false) => send.send_response(ok(resources(&[ANP, BANP]))),
            ("/apis/policy.networking.k8s.io/v1alpha1/adminnetworkpolicies", false) => send.send_response(not_found()),
            ("/apis/policy.networking.k8s.io/v1alpha1/baselineadminnetworkpolicies", false) => {
                let banp = json!({"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "BaselineAdminNetworkPolicy",
                    "metadata": {"name": "default", "resourceVersion": "40"},
                    "spec": {"subject": {"namespaces": {"matchLabels": {"baseline": "deny"}}},
                             "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}]}});
                send.send_response(ok(list("BaselineAdminNetworkPolicyList", "40", vec![banp])))
            }
            ("/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies", false) if now => {
                send.send_response(ok(list("ClusterNetworkPolicyList", "50", vec![cnp("deny-client", "Deny", "50")])))
            }
            _ => held.push(send),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_crds_count_as_empty_and_are_watched_once_installed() {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let installed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    tokio::spawn(apiserver_without_crds(handle, seen.clone(), installed.clone()));
    let client = kube::Client::new(service, "default");
    let (tx, rx) = std::sync::mpsc::channel::<Event>();
    let options = palisade_agent::kube::Options { crd_recheck: Duration::from_millis(100) };
    tokio::spawn(palisade_agent::kube::run_with(client, tx, "n1".to_owned(), options));

    let ifs = FixedInterfaces([("10.244.1.5".parse().unwrap(), "cali5".to_owned())].into());
    let mut agent =
        Agent::new("n1", "palisade", NftDataplane::new(Recorder::default(), Recorder::default()), ifs, Arc::default());
    let mut events = Vec::new();
    let until = async |agent: &mut Agent<_, _>, events: &mut Vec<String>, done: &dyn Fn(&Agent<_, _>) -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !done(agent) {
            assert!(std::time::Instant::now() < deadline, "events: {events:#?}\nrequests: {:#?}", seen.lock().unwrap());
            while let Ok(e) = rx.try_recv() {
                events.push(describe(&e.change));
                agent.handle(e);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    until(&mut agent, &mut events, &|a: &Agent<_, _>| a.initialized()).await;
    for expected in [
        "relisted ClusterNetworkPolicy []",
        "relisted AdminNetworkPolicy []",
        "relisted BaselineAdminNetworkPolicy [default]",
        "relisted Node []",
    ] {
        assert!(events.iter().any(|e| e == expected), "{expected}: {events:#?}");
    }
    assert!(agent.reconcile(false).unwrap().unwrap().report.full, "enforced without the missing CRDs");
    assert!(late_reaches_web(agent.store()), "no Admin policy yet");

    // The CRD is installed: the next discovery finds it, and its policies are enforced.
    installed.store(true, std::sync::atomic::Ordering::SeqCst);
    until(&mut agent, &mut events, &|a: &Agent<_, _>| a.store().tier_policies().any(|p| p.name == "deny-client")).await;
    assert!(!late_reaches_web(agent.store()));
    let discoveries =
        seen.lock().unwrap().iter().filter(|r| r.starts_with("/apis/policy.networking.k8s.io/v1alpha2 ")).count();
    assert!(discoveries >= 2, "discovery is asked again");
    assert_eq!(
        events.iter().filter(|e| e.as_str() == "relisted ClusterNetworkPolicy []").count(),
        1,
        "absent is reported once, however often discovery is asked: {events:#?}"
    );
}
