//! netpol-analyzer's own `diff` scenarios (`conformance/netpol-analyzer-diff/`, and
//! `conformance/netpol-analyzer-anp-diff/` with AdminNetworkPolicies and BaselineAdminNetworkPolicies): Palisade states the same
//! facts, and its `txt` form is netpol-analyzer's `diff -o txt` byte for byte.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use palisade_analyze::Model;
use palisade_analyze::diff::{Change, diff_models, render_txt};

use super::load_dir;

/// One fact per line of netpol-analyzer's txt: kind, pair, both connection sets, the workload note.
fn facts_of_expected(text: &str) -> BTreeSet<String> {
    text.lines().filter(|l| l.starts_with("diff-type: ")).map(str::to_owned).collect()
}

fn facts_of(changes: &[Change]) -> BTreeSet<String> {
    facts_of_expected(&render_txt(changes))
}

/// Every scenario of a corpus folder whose diff disagrees with its `expected.txt`, and how many there are.
fn disagreements(corpus: &str) -> (usize, Vec<String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance").join(corpus);
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    let mut failed = Vec::new();
    for dir in &dirs {
        let expected = std::fs::read_to_string(dir.join("expected.txt")).unwrap().replace('\r', "");
        let old = Model::from_loaded(&load_dir(&dir.join("old")));
        let new = Model::from_loaded(&load_dir(&dir.join("new")));
        let changes = diff_models(&old, &new);
        let (want, got) = (facts_of_expected(&expected), facts_of(&changes));
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if want != got {
            let missing: Vec<_> = want.difference(&got).take(3).collect();
            let extra: Vec<_> = got.difference(&want).take(3).collect();
            failed.push(format!("{name}: missing {missing:?} extra {extra:?}"));
        } else if render_txt(&changes) != expected {
            failed.push(format!("{name}: same facts, other text:\n{}", render_txt(&changes)));
        }
    }
    (dirs.len(), failed)
}

#[test]
fn all_netpol_analyzer_diff_scenarios_agree() {
    let (n, failed) = disagreements("netpol-analyzer-diff");
    assert_eq!(n, 6);
    assert!(failed.is_empty(), "{} of {n} disagree:\n{}", failed.len(), failed.join("\n"));
}

/// netpol-analyzer's diffs between AdminNetworkPolicy / BaselineAdminNetworkPolicy scenarios
/// (`conformance/netpol-analyzer-anp-diff/`): rules swapped, a Pass sent on to a new BaselineAdminNetworkPolicy,
/// a NetworkPolicy removed under a Pass.
#[test]
fn all_netpol_analyzer_admin_policy_diff_scenarios_agree() {
    let (n, failed) = disagreements("netpol-analyzer-anp-diff");
    assert_eq!(n, 16);
    assert!(failed.is_empty(), "{} of {n} disagree:\n{}", failed.len(), failed.join("\n"));
}
