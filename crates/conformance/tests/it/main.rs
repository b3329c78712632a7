//! The corpus on the engine: every case of the NetworkPolicy suites and of `cluster-network-policy/`, with
//! the cluster-scoped objects (Nodes) of their cluster files.

use std::path::{Path, PathBuf};

use palisade_conformance::engine::EngineBackend;
use palisade_conformance::{Case, ClusterSource, parse_cluster, parse_cluster_objects, run_case_with};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance")
}

/// Runs every case of a suite folder; returns the failures in words.
fn run_suite(suite: &str) -> (usize, Vec<String>) {
    let dir = corpus().join(suite);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a case file");
        let case = match Case::parse(&file.display().to_string(), &text) {
            Ok(c) => c,
            Err(e) => {
                failures.push(e.to_string());
                continue;
            }
        };
        let (cluster, cluster_objects) = match &case.cluster {
            ClusterSource::Inline(objects) => (objects.clone(), Vec::new()),
            ClusterSource::Named(name) => {
                let path = corpus().join("clusters").join(format!("{name}.yaml"));
                let text = std::fs::read_to_string(&path).expect("a cluster file");
                let source = path.display().to_string();
                (
                    parse_cluster(&source, &text).expect("a valid cluster"),
                    parse_cluster_objects(&source, &text).expect("a valid cluster"),
                )
            }
        };
        let outcome = run_case_with(&case, &cluster, &cluster_objects, &mut EngineBackend::new());
        if !outcome.passed() {
            let mut text = format!("FAIL {}", outcome.id);
            for m in &outcome.mismatches {
                text.push_str(&format!("\n  {m}"));
            }
            if let Some(e) = &outcome.error {
                text.push_str(&format!("\n  error: {e}"));
            }
            failures.push(text);
        }
    }
    (files.len(), failures)
}

#[test]
fn cluster_network_policy_cases_pass_on_the_engine() {
    let (n, failures) = run_suite("cluster-network-policy");
    assert!(n >= 29, "only {n} cases found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn networkpolicy_cases_still_pass_on_the_engine() {
    for suite in ["upstream-e2e", "seeds"] {
        let (n, failures) = run_suite(suite);
        assert!(n > 0, "no cases in {suite}");
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

#[test]
fn external_hosts_read_back_their_command_line_form() {
    use palisade_conformance::ExternalHost;
    for arg in ["192.0.2.1", "192.0.2.1=TCP/80,UDP/53", "2001:db8::1=SCTP/9"] {
        let h = ExternalHost::parse(arg).unwrap();
        assert_eq!(h.arg(), arg);
    }
    assert_eq!(ExternalHost::parse("192.0.2.1=tcp/80").unwrap().arg(), "192.0.2.1=TCP/80");
    for (bad, says) in [
        ("nope", "is not an IP address"),
        ("192.0.2.1=80", "expected PROTO/PORT"),
        ("192.0.2.1=TCP/x", "bad port"),
        ("192.0.2.1=ICMP/1", "ICMP"),
    ] {
        let e = ExternalHost::parse(bad).unwrap_err();
        assert!(e.contains(says), "{bad}: {e}");
    }
}
