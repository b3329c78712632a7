//! The 42 netpol-analyzer scenarios of the conformance corpus and its 54 AdminNetworkPolicy /
//! BaselineAdminNetworkPolicy scenarios (Palisade's list must equal theirs), its diff scenarios, and lint.

mod diff;
mod exposure;
mod lint;

use std::path::{Path, PathBuf};

use palisade_analyze::{Model, connlist, render_txt};
use palisade_engine::{Loaded, load_str};

fn manifests(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() {
            manifests(&p, out);
        } else if !name.starts_with("expected.")
            && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json"))
        {
            out.push(p);
        }
    }
}

pub fn load_dir(dir: &Path) -> Loaded {
    let mut files = Vec::new();
    manifests(dir, &mut files);
    let mut loaded = Loaded::default();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        loaded.extend(load_str(&f.display().to_string(), &text));
    }
    loaded
}

/// Every scenario folder of a corpus folder whose list disagrees with its `expected.txt`, and how many there are.
fn disagreements(corpus: &str) -> (usize, Vec<String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance").join(corpus);
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    let mut failed = Vec::new();
    for dir in &dirs {
        let expected = std::fs::read_to_string(dir.join("expected.txt")).unwrap().replace('\r', "");
        let model = Model::from_loaded(&load_dir(dir));
        let got = render_txt(&connlist(&model));
        if got.trim_end() != expected.trim_end() {
            let exp: std::collections::BTreeSet<&str> = expected.lines().collect();
            let have: std::collections::BTreeSet<&str> = got.lines().collect();
            let missing: Vec<_> = exp.difference(&have).take(3).collect();
            let extra: Vec<_> = have.difference(&exp).take(3).collect();
            failed.push(format!("{}: missing {missing:?} extra {extra:?}", dir.file_name().unwrap().to_string_lossy()));
        }
    }
    (dirs.len(), failed)
}

#[test]
fn all_netpol_analyzer_scenarios_agree() {
    let (n, failed) = disagreements("netpol-analyzer");
    assert_eq!(n, 42);
    assert!(failed.is_empty(), "{} of {n} disagree:\n{}", failed.len(), failed.join("\n"));
}

/// netpol-analyzer's AdminNetworkPolicy / BaselineAdminNetworkPolicy scenarios (`conformance/netpol-analyzer-anp/`).
#[test]
fn all_netpol_analyzer_admin_policy_scenarios_agree() {
    let (n, failed) = disagreements("netpol-analyzer-anp");
    assert_eq!(n, 54);
    assert!(failed.is_empty(), "{} of {n} disagree:\n{}", failed.len(), failed.join("\n"));
}
