//! The tier policies in the editor: their list, editing a ClusterNetworkPolicy with the form, and the graph
//! and matrix coloured by the stage that decided each flow. The cluster is the engine's tiered example.

use axum::http::StatusCode;
use palisade_ui::Base;
use serde_json::{Value, json};

use crate::call_on;

const TIERS: &str = include_str!("../../../engine/src/cnp/testdata/tiers.yaml");

fn tiers() -> Base {
    let loaded = palisade_engine::load_str("tiers.yaml", TIERS);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    Base { loaded }
}

async fn post(path: &str, body: Value) -> Value {
    let (status, v) = call_on(tiers(), "POST", path, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{path}: {v}");
    v
}

fn flow<'a>(side: &'a Value, from: &str, to: &str) -> &'a Value {
    side["flows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["from"] == from && f["to"] == to)
        .unwrap_or_else(|| panic!("no flow {from} -> {to} in {side}"))
}

#[tokio::test]
async fn the_tier_list_is_in_walk_order_with_rules_in_words() {
    let v = post("/api/tiers", json!({ "yaml": "" })).await;
    let keys: Vec<&str> = v["policies"].as_array().unwrap().iter().map(|p| p["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "ClusterNetworkPolicy/also-ten",
            "ClusterNetworkPolicy/deny-from-z",
            "AdminNetworkPolicy/old-style",
            "ClusterNetworkPolicy/baseline-closed",
            "BaselineAdminNetworkPolicy/default"
        ]
    );
    insta::assert_json_snapshot!(v);
}

#[tokio::test]
async fn the_graph_of_a_tier_policy_colours_each_flow_by_the_stage_that_decided_it() {
    let g = post("/api/graph", json!({ "yaml": "", "policy": "ClusterNetworkPolicy/deny-from-z", "port": 80 })).await;
    assert_eq!(g["kind"], "ClusterNetworkPolicy");
    assert_eq!(g["tiered"], true);
    assert_eq!(g["selected"], json!(["x/a"]));
    let denied = flow(&g["ingress"], "z/c", "x/a");
    assert_eq!(denied["allowed"], false);
    assert_eq!(denied["stage"], "Admin");
    assert_eq!(denied["decision"]["action"], "Deny");
    assert_eq!(denied["decision"]["policy"], "ClusterNetworkPolicy deny-from-z (Admin, priority 10)");
    assert_eq!(denied["decision"]["rule"], "spec.ingress[1] \"deny-z\"");
    assert_eq!(denied["rule"], "ClusterNetworkPolicy deny-from-z spec.ingress[1] \"deny-z\"");
    assert!(denied["explanation"].as_str().unwrap().contains("DENIED by ClusterNetworkPolicy deny-from-z"), "{denied}");
    // x/a's ingress passes y/b on to NetworkPolicy x/allow-y, which admits it; but y/b's own egress is
    // denied by the Baseline tier (0.0.0.0/0 matches pod addresses): that side decided.
    let passed = flow(&g["ingress"], "y/b", "x/a");
    assert_eq!((passed["allowed"].clone(), passed["stage"].clone()), (json!(false), json!("Baseline")));
    assert_eq!(passed["rule"], "ClusterNetworkPolicy deny-from-z spec.ingress[0] \"pass-y\"");
    assert_eq!(passed["decision"]["direction"], "egress");
    assert_eq!(passed["decision"]["policy"], "ClusterNetworkPolicy baseline-closed (Baseline, priority 5)");
    assert_eq!(passed["decision"]["rule"], "spec.egress[0] \"to-internet\"");
    // Egress from x/a to z/c: passed, then Baseline's Deny to 0.0.0.0/0 (networks match pod addresses).
    let baseline = flow(&g["egress"], "x/a", "z/c");
    assert_eq!((baseline["allowed"].clone(), baseline["stage"].clone()), (json!(false), json!("Baseline")));
    assert_eq!(baseline["decision"]["action"], "Deny");
    let legend: Vec<&str> = g["legend"].as_array().unwrap().iter().map(|l| l["stage"].as_str().unwrap()).collect();
    assert_eq!(legend, ["Admin", "NetworkPolicy", "Baseline", "Default"]);
    insta::assert_json_snapshot!(g);
}

#[tokio::test]
async fn a_networkpolicy_graph_in_a_tiered_cluster_names_the_tier_that_decided() {
    let g = post("/api/graph", json!({ "yaml": "", "policy": "x/allow-y", "port": 80 })).await;
    assert_eq!(g["kind"], "NetworkPolicy");
    let z = flow(&g["ingress"], "z/c", "x/a");
    assert_eq!(z["stage"], "Admin", "the Admin Deny comes before the NetworkPolicy: {z}");
    assert!(z["decision"]["text"].as_str().unwrap().starts_with("Admin tier, ingress of x/a: Deny by"), "{z}");
    let y = flow(&g["ingress"], "y/b", "x/a");
    assert_eq!(y["rule"], "x/allow-y spec.ingress[0]");
    assert_eq!(y["stage"], "Baseline", "y/b's egress is denied by the Baseline tier: {y}");
    // On port 81 the NetworkPolicy (after the Admin Pass) denies x/a's ingress: the drawn side decided.
    let g = post("/api/graph", json!({ "yaml": "", "policy": "x/allow-y", "port": 81 })).await;
    let y = flow(&g["ingress"], "y/b", "x/a");
    assert_eq!((y["allowed"].clone(), y["stage"].clone()), (json!(false), json!("NetworkPolicy")));
    assert_eq!(y["decision"]["action"], "Deny");
    assert_eq!(
        y["decision"]["text"],
        "NetworkPolicy, ingress of x/a: Deny: isolated by x/allow-y, and no rule admits it"
    );
    // A BaselineAdminNetworkPolicy graph: it has only ingress rules.
    let b = post("/api/graph", json!({ "yaml": "", "policy": "BaselineAdminNetworkPolicy/default", "port": 53 })).await;
    assert_eq!(b["egress"]["isolated"], false);
    assert_eq!(b["egress"]["badge"], "Egress: no rules here");
    let c = flow(&b["ingress"], "z/c", "y/b");
    assert_eq!((c["allowed"].clone(), c["stage"].clone()), (json!(false), json!("Baseline")));
    assert_eq!(c["decision"]["policy"], "BaselineAdminNetworkPolicy default (Baseline)");
}

#[tokio::test]
async fn matrix_cells_carry_the_stage_and_explain_lists_the_tier_policies() {
    let m = post("/api/matrix", json!({ "yaml": "", "port": 80 })).await;
    let pods: Vec<&str> = m["pods"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    let at = |p: &str| pods.iter().position(|x| *x == p).unwrap();
    assert_eq!(m["stages"][at("z/c")][at("x/a")], "Admin");
    assert_eq!(m["allowed"][at("z/c")][at("x/a")], false);
    assert_eq!(m["stages"][at("y/b")][at("x/a")], "Baseline");
    // old-style's Accept to pods does not reach a host-network pod; 0.0.0.0/0 in the Baseline tier does.
    assert_eq!(m["stages"][at("z/c")][at("z/host")], "Baseline");
    assert_eq!(m["allowed"][at("z/c")][at("z/host")], false);
    assert_eq!(m["stages"][at("x/a")][at("x/a")], "Default", "a pod reaches itself");
    let m = post("/api/matrix", json!({ "yaml": "", "port": 81 })).await;
    assert_eq!(m["stages"][at("y/b")][at("x/a")], "NetworkPolicy");
    // A cell's explanation leads with the same decision.
    let c = post("/api/check", json!({ "yaml": "", "from": "y/b", "to": "x/a", "port": 81 })).await;
    assert_eq!(c["decision"]["stage"], "NetworkPolicy");
    assert_eq!(
        c["decision"]["text"],
        "NetworkPolicy, ingress of x/a: Deny: isolated by x/allow-y, and no rule admits it"
    );
    let (_, plain) = crate::call(
        "POST",
        "/api/check",
        Some(json!({ "yaml": "", "from": "default/frontend", "to": "default/backend", "port": 80 })),
    )
    .await;
    assert_eq!(plain["decision"], Value::Null);
    assert_eq!(m["legend"][0]["stage"], "Admin");
    // Without tier policies the matrix says nothing about stages.
    let (_, plain) = crate::call("POST", "/api/matrix", Some(json!({ "yaml": "", "port": 80 }))).await;
    assert_eq!(plain["stages"], Value::Null);

    let x = post("/api/explain", json!({ "yaml": "" })).await;
    let text = x["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "ClusterNetworkPolicy/deny-from-z")
        .map(|p| p["text"].as_str().unwrap().to_owned())
        .unwrap();
    assert!(text.contains("Tier: Admin, priority 10"), "{text}");
}

fn form() -> Value {
    json!({
        "name": "guard",
        "tier": "Admin",
        "priority": 30,
        "subject": {"kind": "pods", "namespaces": "team=x", "pods": "app in (a, b), !canary"},
        "ingress": [
            {"name": "deny-z", "action": "Deny", "peers": [{"kind": "namespaces", "namespaces": "team=z"}], "protocols": []},
            {"name": "", "action": "Accept", "peers": [{"kind": "pods", "namespaces": "", "pods": "app=b"}],
             "protocols": [{"protocol": "TCP", "port": "80"}, {"protocol": "UDP", "port": "5353-5355"}, {"protocol": "named", "port": "dns"}]}
        ],
        "egress": [
            {"name": "web", "action": "Pass", "peers": [
                {"kind": "networks", "values": "10.0.0.0/8, 192.168.0.0/16"},
                {"kind": "nodes", "nodes": "kubernetes.io/os=linux"}
            ], "protocols": [{"protocol": "SCTP", "port": "9000"}]},
            {"name": "names", "action": "Accept", "peers": [{"kind": "domainNames", "values": "*.example.com"}], "protocols": []}
        ]
    })
}

/// The form as the list gives it back (fields the form leaves empty included).
fn normalised(form: &Value) -> Value {
    let t: palisade_ui::tiers::TierForm = serde_json::from_value(form.clone()).unwrap();
    serde_json::to_value(t).unwrap()
}

fn listed(v: &Value, key: &str) -> Value {
    v["policies"].as_array().unwrap().iter().find(|p| p["key"] == key).cloned().unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_cluster_network_policy_is_created_edited_and_deleted_with_the_form() {
    let pane = "apiVersion: v1\nkind: Namespace\nmetadata: {name: x, labels: {team: x}}\n";
    // Create: the policy is added to the pane as its own document.
    let w = post("/api/tier/yaml", json!({ "yaml": pane, "form": form() })).await;
    assert_eq!(w["errors"], json!([]), "{w}");
    assert_eq!(w["key"], "ClusterNetworkPolicy/guard");
    let yaml = w["yaml"].as_str().unwrap().to_owned();
    assert!(yaml.starts_with(pane), "{yaml}");
    insta::assert_snapshot!("written_document", w["document"].as_str().unwrap());
    let v = post("/api/validate", json!({ "yaml": yaml })).await;
    assert_eq!(v["errors"], json!([]));
    assert!(v["policies"].as_array().unwrap().contains(&json!("ClusterNetworkPolicy/guard")), "{v}");

    // Round trip: the list gives the form back as it was written, rules in order.
    let l = post("/api/tiers", json!({ "yaml": yaml })).await;
    let guard = listed(&l, "ClusterNetworkPolicy/guard");
    assert_eq!(guard["inEditor"], true);
    assert_eq!(guard["form"], normalised(&form()));
    let actions: Vec<&str> =
        guard["ingress"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["Deny", "Accept"]);
    assert_eq!(
        guard["ingress"][1]["ports"],
        json!(["TCP 80", "UDP 5353-5355", "the destination pod's port named dns"])
    );

    // Edit: the rules moved (the second first), another priority; the document is replaced, not added.
    let mut edited = guard["form"].clone();
    let rules = edited["ingress"].as_array_mut().unwrap();
    rules.swap(0, 1);
    edited["priority"] = json!(40);
    let w =
        post("/api/tier/yaml", json!({ "yaml": yaml, "original": "ClusterNetworkPolicy/guard", "form": edited })).await;
    let yaml2 = w["yaml"].as_str().unwrap().to_owned();
    assert_eq!(yaml2.matches("kind: ClusterNetworkPolicy").count(), 1, "{yaml2}");
    let l = post("/api/tiers", json!({ "yaml": yaml2 })).await;
    let guard = listed(&l, "ClusterNetworkPolicy/guard");
    assert_eq!(guard["priority"], 40);
    assert_eq!(guard["ingress"][0]["action"], "Accept");
    assert_eq!(guard["ingress"][1]["name"], "deny-z");
    assert_eq!(guard["form"], edited);

    // Renamed while editing: the original's document becomes the new one.
    let mut renamed = edited.clone();
    renamed["name"] = json!("guard-2");
    let w = post("/api/tier/yaml", json!({ "yaml": yaml2, "original": "ClusterNetworkPolicy/guard", "form": renamed }))
        .await;
    let yaml3 = w["yaml"].as_str().unwrap().to_owned();
    assert!(yaml3.contains("name: guard-2") && !yaml3.contains("name: guard\n"), "{yaml3}");

    // Delete: the document goes, the rest of the pane stays.
    let d = post("/api/tier/delete", json!({ "yaml": yaml3, "key": "ClusterNetworkPolicy/guard-2" })).await;
    assert_eq!(d["yaml"], pane);
    let (status, e) =
        call_on(tiers(), "POST", "/api/tier/delete", Some(json!({ "yaml": pane, "key": "ClusterNetworkPolicy/x" })))
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(e["error"].as_str().unwrap().contains("ClusterNetworkPolicy/x"), "{e}");

    // A loaded policy edited in the form: a copy in the pane replaces it.
    let l = post("/api/tiers", json!({ "yaml": "" })).await;
    let mut loaded = listed(&l, "ClusterNetworkPolicy/deny-from-z")["form"].clone();
    assert_eq!(loaded["subject"], json!({"kind": "namespaces", "namespaces": "team=x", "pods": ""}));
    loaded["priority"] = json!(11);
    let w =
        post("/api/tier/yaml", json!({ "yaml": "", "original": "ClusterNetworkPolicy/deny-from-z", "form": loaded }))
            .await;
    let l = post("/api/tiers", json!({ "yaml": w["yaml"] })).await;
    let p = listed(&l, "ClusterNetworkPolicy/deny-from-z");
    assert_eq!((p["priority"].clone(), p["inEditor"].clone()), (json!(11), json!(true)));
    assert_eq!(l["policies"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn invalid_edits_are_reported_with_their_field_paths() {
    // The apiserver's own checks: the policy is written, its errors located in the pane.
    let mut bad = form();
    bad["priority"] = json!(1001);
    bad["ingress"][0]["action"] = json!("Allow");
    bad["egress"][0]["peers"][0]["values"] = json!("10.0.0.0/33");
    let w = post("/api/tier/yaml", json!({ "yaml": "", "form": bad })).await;
    let fields: Vec<&str> = w["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"spec.priority"), "{w}");
    assert!(fields.contains(&"spec.ingress[0].action"), "{w}");
    assert!(fields.iter().any(|f| f.starts_with("spec.egress[0].to[0].networks")), "{w}");
    let priority = w["errors"].as_array().unwrap().iter().find(|e| e["field"] == "spec.priority").unwrap();
    assert_eq!(
        priority["message"],
        "spec.priority: Invalid value: 1001: spec.priority in body should be less than or equal to 1000"
    );
    let yaml = w["yaml"].as_str().unwrap();
    let line = priority["line"].as_u64().unwrap() as usize;
    assert_eq!(yaml.lines().nth(line - 1).unwrap().trim(), "priority: 1001");

    // The pane says the same, in the apiserver's words, at the same line.
    let v = post("/api/validate", json!({ "yaml": yaml })).await;
    let e = v["errors"].as_array().unwrap().iter().find(|e| e["field"] == "spec.priority").unwrap().clone();
    assert_eq!(e["line"], line);
    assert!(
        e["message"].as_str().unwrap().starts_with(
            "editor#1: ClusterNetworkPolicy.policy.networking.k8s.io \"guard\" is invalid: spec.priority: Invalid value"
        ),
        "{e}"
    );
    assert!(!v["policies"].as_array().unwrap().contains(&json!("ClusterNetworkPolicy/guard")), "invalid: not drawn");

    // What the form cannot read (a selector, a port) is not written at all.
    let mut unreadable = form();
    unreadable["subject"]["pods"] = json!("app in a");
    unreadable["ingress"][1]["protocols"][0]["port"] = json!("http");
    let w = post("/api/tier/yaml", json!({ "yaml": "kept", "form": unreadable })).await;
    assert_eq!(w["yaml"], "kept");
    let fields: Vec<&str> = w["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["spec.subject.pods.podSelector", "spec.ingress[1].protocols[0].tcp.destinationPort"]);
}

/// The page is tested in a browser by the CLI's end-to-end test; this checks without one that every element
/// the script looks up by id exists in the page, and that the stage colours the API names are styled.
#[tokio::test]
async fn every_element_the_script_names_is_in_the_page() {
    let html = include_str!("../../assets/index.html");
    let js = include_str!("../../assets/app.js");
    let css = include_str!("../../assets/app.css");
    let mut ids: Vec<&str> = Vec::new();
    for part in js.split("$(\"#").skip(1).chain(js.split("$(`#").skip(1)) {
        let id: &str = part.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')).next().unwrap();
        let templated = part[id.len()..].starts_with('$');
        if !id.is_empty() && !templated && !ids.contains(&id) {
            ids.push(id);
        }
    }
    assert!(ids.len() > 20, "{ids:?}");
    for id in ids {
        assert!(
            html.contains(&format!("id=\"{id}\"")) || js.contains(&format!("id: \"{id}\"")),
            "#{id} is not in the page"
        );
    }
    for stage in ["Admin", "NetworkPolicy", "Baseline", "Default"] {
        assert!(css.contains(&format!(".stage-{stage}")), "no colour for {stage}");
    }
}
