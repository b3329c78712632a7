//! End-to-end tests of the `palisade` command: exit codes and what people read (snapshots).

mod agent;
mod analysis;
mod deploy;
mod live;
mod observe;
mod reading;
mod tutorials;
mod ui;

use std::process::{Command, Output};

fn palisade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .output()
        .expect("run palisade")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const SEED: &str = "examples/test-network-policy.yaml";

#[test]
fn validate_reports_every_error_and_exits_1() {
    let o = palisade(&["validate", "-f", "crates/cli/tests/it/fixtures/invalid.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    insta::assert_snapshot!(stdout(&o));
}

#[test]
fn validate_accepts_the_corpus_examples() {
    let o = palisade(&["validate", "-f", SEED]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn broken_yaml_gets_line_and_column() {
    let o = palisade(&["validate", "-f", "crates/cli/tests/it/fixtures/broken.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.starts_with("crates/cli/tests/it/fixtures/broken.yaml#1: line 5 column "), "{out}");
}

#[test]
fn check_explains_why_other_frontend_is_denied() {
    let o = palisade(&["check", "-f", SEED, "--from", "other/frontend", "--to", "default/db", "--port", "6379"]);
    assert_eq!(o.status.code(), Some(1));
    insta::assert_snapshot!(stdout(&o));
}

#[test]
fn check_names_the_admitting_rule() {
    let o = palisade(&["check", "-f", SEED, "--from", "myproject/worker", "--to", "default/db", "--port", "6379"]);
    assert_eq!(o.status.code(), Some(0));
    insta::assert_snapshot!(stdout(&o));
}

#[test]
fn check_json_and_errors() {
    let o =
        palisade(&["check", "-f", SEED, "--from", "172.17.0.9", "--to", "default/db", "--port", "6379", "-o", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["ingress"]["admittedBy"]["peer"], 0);
    let o = palisade(&["check", "-f", SEED, "--from", "nope/pod", "--to", "default/db", "--port", "6379"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("pod nope/pod not found"));
}

#[test]
fn explain_states_three_alternatives() {
    let o = palisade(&["explain", "-f", SEED, "default/test-network-policy"]);
    assert_eq!(o.status.code(), Some(0));
    insta::assert_snapshot!(stdout(&o));
}

#[test]
fn matrix_text_is_the_case_format() {
    let o = palisade(&["matrix", "-f", SEED, "--port", "6379"]);
    assert_eq!(o.status.code(), Some(0));
    insta::assert_snapshot!(stdout(&o));
}

#[test]
fn get_tables_like_kubectl() {
    let o = palisade(&["get", "netpol", "-f", SEED, "-A"]);
    insta::assert_snapshot!(stdout(&o));
    let o = palisade(&["get", "pods", "-f", SEED, "-n", "default", "-o", "wide"]);
    insta::assert_snapshot!(stdout(&o));
}

const TIERS: &str = "crates/engine/src/cnp/testdata/tiers.yaml";

#[test]
fn check_names_the_tier_policy_rule_and_action() {
    let o = palisade(&["check", "-f", TIERS, "--from", "y/b", "--to", "x/a", "--port", "80", "--protocol", "TCP"]);
    assert_eq!(o.status.code(), Some(1));
    let second = palisade(&["check", "-f", TIERS, "--from", "x/a", "--to", "y/b", "--port", "53", "--protocol", "UDP"]);
    insta::assert_snapshot!(format!("{}\n{}", stdout(&o), stdout(&second)));
}

#[test]
fn explain_a_cluster_network_policy_by_name() {
    let o = palisade(&["explain", "-f", TIERS, "also-ten"]);
    assert_eq!(o.status.code(), Some(0));
    insta::assert_snapshot!(stdout(&o));
}

#[test]
fn cluster_network_policy_corpus_passes_on_the_engine() {
    let o = palisade(&["conformance", "conformance/cluster-network-policy"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.ends_with("29 passed, 0 failed\n"), "{out}");
}

#[test]
fn conformance_corpus_passes_on_the_engine() {
    let o = palisade(&["conformance", "conformance/upstream-e2e", "conformance/seeds"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.ends_with("42 passed, 0 failed\n"), "{out}");
}
