//! The editor's API, called through the router as the page calls it.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use palisade_ui::{Base, router};
use serde_json::{Value, json};
use tower::ServiceExt;

mod tiers;

const CLUSTER: &str = include_str!("../../../../examples/ui/tutorial-cluster.yaml");

const POLICY: &str = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: backend-allow-frontend
  namespace: default
spec:
  podSelector:
    matchLabels:
      app: backend
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: frontend
    ports:
    - port: 80
";

fn base() -> Base {
    Base { loaded: palisade_engine::load_str("cluster.yaml", CLUSTER) }
}

async fn call(method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    call_on(base(), method, path, body).await
}

/// Calls the editor's router over `base` as the page does; the answer's status and JSON body.
async fn call_on(base: Base, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let req = Request::builder().method(method).uri(path).header("content-type", "application/json");
    let req = req.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).unwrap();
    let res = router(base).oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 22).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_page_and_its_assets_are_embedded() {
    for (path, needle) in [("/", "<textarea id=\"yaml\""), ("/app.js", "/api/graph"), ("/app.css", ".flow.denied")] {
        let res = router(base()).oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let text = axum::body::to_bytes(res.into_body(), 1 << 22).await.unwrap();
        let text = String::from_utf8_lossy(&text);
        assert!(text.contains(needle), "{path}");
        assert!(!text.contains("https://"), "{path} must not load anything from the network");
    }
}

#[tokio::test]
async fn validation_errors_point_at_the_line_of_the_field() {
    let bad = POLICY.replace("    - port: 80\n", "    - port: 80\n      protocol: TCPX\n");
    let (status, v) = call("POST", "/api/validate", Some(json!({ "yaml": bad }))).await;
    assert_eq!(status, StatusCode::OK);
    let e = &v["errors"][0];
    assert_eq!(e["field"], "spec.ingress[0].ports[0].protocol");
    assert_eq!(e["line"], 17, "{v}");
    assert!(e["message"].as_str().unwrap().contains("Unsupported value: \"TCPX\""), "{v}");
    let (_, v) = call("POST", "/api/validate", Some(json!({ "yaml": "kind: [" }))).await;
    assert_eq!(v["errors"][0]["line"], 1, "the broken document starts there");
    assert!(v["errors"][0]["message"].as_str().unwrap().starts_with("editor"), "{v}");
}

#[tokio::test]
async fn the_graph_shows_frontend_allowed_and_not_frontend_denied() {
    let (status, g) = call("POST", "/api/graph", Some(json!({ "yaml": POLICY }))).await;
    assert_eq!(status, StatusCode::OK, "{g}");
    assert_eq!(g["selected"], json!(["default/backend"]));
    assert_eq!(g["port"], 80);
    let flows = g["ingress"]["flows"].as_array().unwrap();
    let of = |from: &str| flows.iter().find(|f| f["from"] == from).unwrap().clone();
    assert_eq!(of("default/frontend")["allowed"], true);
    assert_eq!(of("default/frontend")["rule"], "default/backend-allow-frontend spec.ingress[0]");
    assert_eq!(of("default/not-frontend")["allowed"], false);
    assert!(of("default/not-frontend")["explanation"].as_str().unwrap().starts_with("DENIED"));
    assert_eq!(g["ingress"]["default_deny"], false);
    assert_eq!(g["egress"]["isolated"], false);
    assert_eq!(g["ingress"]["peers"][0]["pods"], json!(["default/frontend"]));

    // Default deny is shown as such.
    let deny = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: d}\nspec: {podSelector: {}, policyTypes: [Ingress, Egress]}\n";
    let (_, g) = call("POST", "/api/graph", Some(json!({ "yaml": deny, "port": 80 }))).await;
    assert_eq!(g["ingress"]["default_deny"], true);
    assert_eq!(g["egress"]["default_deny"], true);
    assert!(g["ingress"]["flows"].as_array().unwrap().is_empty(), "every pod is selected: no one else to draw");

    let (status, e) = call("POST", "/api/graph", Some(json!({ "yaml": "" }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"], "the editor holds no valid NetworkPolicy or ClusterNetworkPolicy");
}

#[tokio::test]
async fn matrix_check_explain_and_list_answer_from_the_engine() {
    let (_, m) = call("POST", "/api/matrix", Some(json!({ "yaml": POLICY, "port": 80 }))).await;
    let pods: Vec<&str> = m["pods"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    let (b, f, n) = (
        pods.iter().position(|p| *p == "default/backend").unwrap(),
        pods.iter().position(|p| *p == "default/frontend").unwrap(),
        pods.iter().position(|p| *p == "default/not-frontend").unwrap(),
    );
    assert_eq!(m["allowed"][f][b], true);
    assert_eq!(m["allowed"][n][b], false);
    assert_eq!(m["allowed"][b][n], true, "backend's egress is open");

    let req = json!({ "yaml": POLICY, "from": "default/not-frontend", "to": "default/backend", "port": 80 });
    let (_, c) = call("POST", "/api/check", Some(req)).await;
    assert_eq!(c["allowed"], false);
    assert!(c["text"].as_str().unwrap().contains("no: default/not-frontend has app=not-frontend"), "{c}");

    let (_, x) = call("POST", "/api/explain", Some(json!({ "yaml": POLICY }))).await;
    assert!(x["policies"][0]["text"].as_str().unwrap().contains("Selects: pods labelled app=backend"), "{x}");
    assert_eq!(x["policies"][0]["inEditor"], true);

    let (_, l) = call("POST", "/api/list", Some(json!({ "yaml": POLICY }))).await;
    assert!(l["text"].as_str().unwrap().contains("default/frontend[Pod] => default/backend[Pod] : TCP 80"), "{l}");
}

#[tokio::test]
async fn the_form_gets_yaml_that_loads_back_to_the_same_policy() {
    let form = json!({
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress", "Egress"],
                 "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                              "ports": [{"protocol": "TCP", "port": 8000, "endPort": 8080}, {"protocol": "TCP", "port": "http"}]}],
                 "egress": [{"to": [{"namespaceSelector": {}}]}]}
    });
    let (status, y) = call("POST", "/api/yaml", Some(form.clone())).await;
    assert_eq!(status, StatusCode::OK, "{y}");
    assert_eq!(y["errors"], json!([]));
    let loaded = palisade_engine::load_str("y", y["yaml"].as_str().unwrap());
    assert!(loaded.errors.is_empty());
    let palisade_engine::Object::NetworkPolicy(np) = &loaded.objects[0].value else { panic!("a policy") };
    assert_eq!(serde_json::to_value(&np.spec).unwrap(), form["spec"]);

    let bad = json!({"metadata": {"name": "x"}, "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 0}]}]}});
    let (_, y) = call("POST", "/api/yaml", Some(bad)).await;
    assert!(y["errors"][0].as_str().unwrap().contains("spec.ingress[0].ports[0].port"), "{y}");
}

#[tokio::test]
async fn templates_are_the_five_defaults_and_dns() {
    let (_, t) = call("GET", "/api/templates", None).await;
    let ids: Vec<&str> = t.as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "default-deny-ingress",
            "allow-all-ingress",
            "default-deny-egress",
            "allow-all-egress",
            "default-deny-all",
            "allow-dns"
        ]
    );
    for x in t.as_array().unwrap() {
        let (_, v) = call("POST", "/api/validate", Some(json!({ "yaml": x["yaml"] }))).await;
        assert_eq!(v["errors"], json!([]), "{}", x["id"]);
    }
}
