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
    assert_eq!(v["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap().len(), 12);
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
