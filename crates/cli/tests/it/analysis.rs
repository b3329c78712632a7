//! `list`, `lint` and `diff` from the command line.

use super::{palisade, stdout};

#[test]
fn list_matches_netpol_analyzer_on_online_boutique() {
    let dir = "conformance/netpol-analyzer/onlineboutique";
    let o = palisade(&[
        "list",
        "-f",
        &format!("{dir}/netpols.yaml"),
        &format!("{dir}/pods.yaml"),
        &format!("{dir}/ns.yaml"),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let expected = std::fs::read_to_string(format!("{}/../../{dir}/expected.txt", env!("CARGO_MANIFEST_DIR"))).unwrap();
    assert_eq!(stdout(&o).trim_end(), expected.trim_end());
}

const ANP_BANP: &str = "conformance/netpol-analyzer-anp/anp_banp_blog_demo";

#[test]
fn list_matches_netpol_analyzer_with_admin_and_baseline_policies() {
    let o = palisade(&["list", "-f", ANP_BANP]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let expected =
        std::fs::read_to_string(format!("{}/../../{ANP_BANP}/expected.txt", env!("CARGO_MANIFEST_DIR"))).unwrap();
    assert_eq!(stdout(&o).trim_end(), expected.trim_end());
    // What list cannot analyse is said on stderr, the rest still listed.
    let nodes = palisade(&["list", "-f", "conformance/netpol-analyzer-anp/anp_and_banp_using_networks_and_nodes_test"]);
    assert_eq!(nodes.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&nodes.stderr).contains("spec.egress[0].to[0]: the nodes peer is not analysed"));
}

#[test]
fn diff_matches_netpol_analyzer_when_a_pass_reaches_a_new_baseline_policy() {
    let dir = "conformance/netpol-analyzer-anp-diff/anp_test_4_with_priority_chang_pass_to_banp_and_anp_test_4";
    let o = palisade(&["diff", &format!("{dir}/old"), &format!("{dir}/new"), "-o", "txt"]);
    assert_eq!(o.status.code(), Some(1));
    let expected = std::fs::read_to_string(format!("{}/../../{dir}/expected.txt", env!("CARGO_MANIFEST_DIR"))).unwrap();
    assert_eq!(stdout(&o), expected, "netpol-analyzer's diff -o txt, byte for byte");
}

#[test]
fn list_renders_json_dot_and_a_self_contained_page() {
    let json = palisade(&["list", "-f", "examples/test-network-policy.yaml", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert!(v.as_array().unwrap().iter().any(|c| c["src"] == "default/frontend[Pod]" && c["dst"] == "default/db[Pod]"));
    let dot = stdout(&palisade(&["list", "-f", "examples/test-network-policy.yaml", "-o", "dot"]));
    assert!(
        dot.starts_with("digraph {")
            && dot.contains("\"default/frontend[Pod]\" -> \"default/db[Pod]\" [label=\"TCP 6379\"]")
    );
    let html = stdout(&palisade(&["list", "-f", "examples/test-network-policy.yaml", "-o", "html"]));
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg"));
    assert!(!html.contains("http://") || html.contains("http://www.w3.org/2000/svg"), "no external resources");
    assert!(!html.contains("<script src") && !html.contains("<link"));
}

#[test]
fn lint_exits_1_on_warnings_and_speaks_sarif() {
    let o = palisade(&["lint", "-f", "examples/test-network-policy.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("PAL001"));
    let o = palisade(&["lint", "-f", "examples/test-network-policy.yaml", "-o", "sarif"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let r = &v["runs"][0]["results"][0];
    assert_eq!(r["ruleId"], "PAL001");
    assert_eq!(r["locations"][0]["physicalLocation"]["region"]["startLine"], 132);
    let rules: Vec<&str> =
        v["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(rules.len(), 20, "every check, the tier checks included: {rules:?}");
    assert!(rules.contains(&"PAL101") && rules.contains(&"PAL107") && rules.contains(&"PAL108"), "{rules:?}");
}

#[test]
fn lint_lists_its_checks_and_disables_them_by_id_or_name() {
    let list = palisade(&["lint", "--list-checks"]);
    assert_eq!(list.status.code(), Some(0));
    insta::assert_snapshot!("lint-checks", stdout(&list));
    let o = palisade(&["lint", "-f", "examples/test-network-policy.yaml", "--disable", "PAL001,policy-types-omitted"]);
    assert!(!stdout(&o).contains("PAL001") && !stdout(&o).contains("PAL012"), "{}", stdout(&o));
    let sarif = palisade(&["lint", "-f", "examples/test-network-policy.yaml", "-o", "sarif", "--disable", "pal001"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&sarif)).unwrap();
    assert!(v["runs"][0]["results"].as_array().unwrap().iter().all(|r| r["ruleId"] != "PAL001"));
    let bad = palisade(&["lint", "-f", "examples/test-network-policy.yaml", "--disable", "PAL999"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--disable PAL999: no such check"));
}

#[test]
fn diff_reports_changes_for_a_pull_request() {
    let o = palisade(&["diff", "examples/diff/old.yaml", "examples/diff/new.yaml", "-o", "markdown"]);
    assert_eq!(o.status.code(), Some(1));
    insta::assert_snapshot!(stdout(&o));
    let same = palisade(&["diff", "examples/diff/old.yaml", "examples/diff/old.yaml"]);
    assert_eq!(same.status.code(), Some(0));
    assert_eq!(stdout(&same), "");
}

const WORKLOAD_ADDED: &str =
    "conformance/netpol-analyzer-diff/onlineboutique_workloads_changed_workloads_and_onlineboutique_workloads";

#[test]
fn diff_marks_new_workloads_in_every_format() {
    let (old, new) = (format!("{WORKLOAD_ADDED}/old"), format!("{WORKLOAD_ADDED}/new"));
    let text = palisade(&["diff", &old, &new]);
    assert_eq!(text.status.code(), Some(1));
    insta::assert_snapshot!(stdout(&text));
    let txt = palisade(&["diff", &old, &new, "-o", "txt"]);
    let expected =
        std::fs::read_to_string(format!("{}/../../{WORKLOAD_ADDED}/expected.txt", env!("CARGO_MANIFEST_DIR"))).unwrap();
    assert_eq!(stdout(&txt), expected, "netpol-analyzer's diff -o txt, byte for byte");
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&palisade(&["diff", &old, &new, "-o", "json"]))).unwrap();
    let marked: Vec<&serde_json::Value> = json.as_array().unwrap().iter().map(|c| &c["workloads"]).collect();
    assert_eq!(marked.len(), 4);
    assert!(marked.iter().all(|w| *w == &serde_json::json!(["default/unicorn[Deployment]"])), "{json}");
    let md = stdout(&palisade(&["diff", &old, &new, "-o", "markdown"]));
    assert_eq!(md.matches("🆕 `default/unicorn[Deployment]` added").count(), 4, "{md}");
}

const EXPOSURE: &str = "conformance/netpol-analyzer-exposure/exposure_matched_and_unmatched_rules_test_exposure";

#[test]
fn list_exposure_in_txt_json_dot_and_html() {
    let manifests = format!("{EXPOSURE}/manifests");
    let txt = palisade(&["list", "-f", &manifests, "--exposure"]);
    assert_eq!(txt.status.code(), Some(0));
    let expected =
        std::fs::read_to_string(format!("{}/../../{EXPOSURE}/expected.txt", env!("CARGO_MANIFEST_DIR"))).unwrap();
    assert_eq!(stdout(&txt).trim_end(), expected.trim_end());
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&palisade(&["list", "-f", &manifests, "--exposure", "-o", "json"]))).unwrap();
    assert_eq!(json["connlist_results"].as_array().unwrap().len(), 5);
    let ingress = json["exposure_results"]["ingress_exposure"].as_array().unwrap();
    assert!(ingress.iter().any(|e| e["src"] == "entire-cluster"
        && e["dst"] == "hello-world/workload-a[Deployment]"
        && e["conn"] == "TCP 8050"));
    let dot = stdout(&palisade(&["list", "-f", &manifests, "--exposure", "-o", "dot"]));
    assert!(dot.contains(
        "\"entire-cluster\" -> \"hello-world/workload-a[Deployment]\" [label=\"TCP 8050\", style=dashed, color=red3, fontcolor=red3];"
    ), "{dot}");
    let html = stdout(&palisade(&["list", "-f", &manifests, "--exposure", "-o", "html"]));
    assert!(html.contains("<line class=\"exposure\"") && html.contains("<h2>Exposure</h2>"));
}

#[test]
fn focus_workloads_narrow_the_list() {
    let dir = "conformance/netpol-analyzer-exposure/onlineboutique_workloads_focus_workload_emailservice_connlist";
    let o = palisade(&["list", "-f", &format!("{dir}/manifests"), "--focus-workload", "emailservice"]);
    assert_eq!(o.status.code(), Some(0));
    let expected = std::fs::read_to_string(format!("{}/../../{dir}/expected.txt", env!("CARGO_MANIFEST_DIR"))).unwrap();
    assert_eq!(stdout(&o).trim_end(), expected.trim_end());
    let none = palisade(&["list", "-f", &format!("{dir}/manifests"), "--focus-workload", "nope"]);
    assert_eq!(stdout(&none), "");
    assert!(String::from_utf8_lossy(&none.stderr).contains("no workload named nope"));
}
