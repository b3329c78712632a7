//! netpol-analyzer's exposure and focus-workload scenarios (`conformance/netpol-analyzer-exposure/`), judged
//! as its README says: the same section headers in the same order, and in each section the same set of lines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use palisade_analyze::Model;
use palisade_analyze::exposure::{Options, list, render_txt};
use serde_json::Value;

use super::load_dir;

/// Sections in order: (header, lines trimmed, blank lines dropped); the list comes first, under "".
fn sections(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out = vec![(String::new(), Vec::new())];
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.ends_with(':') {
            out.push((line.to_owned(), Vec::new()));
        } else if let Some(last) = out.last_mut() {
            last.1.push(line.to_owned());
        }
    }
    for (_, lines) in &mut out {
        lines.sort();
    }
    out
}

fn names(v: &Value) -> Vec<String> {
    v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_owned)).collect()
}

#[test]
fn all_netpol_analyzer_exposure_scenarios_agree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/netpol-analyzer-exposure");
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    assert_eq!(dirs.len(), 21);
    let mut failed = Vec::new();
    for dir in &dirs {
        let case: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("case.json")).unwrap()).unwrap();
        let options = Options {
            exposure: case["exposure"] == true,
            focus_workloads: names(&case["focus_workload"]),
            focus_peers: names(&case["focus_workload_peer"]),
        };
        let expected = std::fs::read_to_string(dir.join("expected.txt")).unwrap().replace('\r', "");
        let model = Model::from_loaded(&load_dir(&dir.join("manifests")));
        let got = render_txt(&list(&model, &options));
        let (want, have) = (sections(&expected), sections(&got));
        if want != have {
            let diff: BTreeMap<&str, (Vec<&String>, Vec<&String>)> = want
                .iter()
                .map(|(h, lines)| {
                    let other = have.iter().find(|(g, _)| g == h).map(|(_, l)| l.clone()).unwrap_or_default();
                    let missing = lines.iter().filter(|l| !other.contains(l)).collect();
                    (h.as_str(), (missing, Vec::new()))
                })
                .collect();
            failed.push(format!(
                "{}: headers {:?} vs {:?}; missing {diff:?}\n--- got:\n{got}",
                dir.file_name().unwrap().to_string_lossy(),
                want.iter().map(|s| &s.0).collect::<Vec<_>>(),
                have.iter().map(|s| &s.0).collect::<Vec<_>>(),
            ));
        }
    }
    assert!(failed.is_empty(), "{} of {} disagree:\n{}", failed.len(), dirs.len(), failed.join("\n"));
}
