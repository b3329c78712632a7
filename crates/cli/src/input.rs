//! Reading `-f` arguments: files, directories (recursively: .yaml, .yml, .json) and `-` for stdin.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use palisade_engine::cnp::validate::validate_cluster_object;
use palisade_engine::field::FieldError;
use palisade_engine::validate::validate_network_policy;
use palisade_engine::{Cluster, Loaded, Object, Origin, load_str};

/// Every manifest file under the given paths, in a stable order.
pub fn manifest_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(p.clone());
        } else if p.is_dir() {
            walk(p, &mut out).with_context(|| format!("reading directory {}", p.display()))?;
        } else if p.exists() {
            out.push(p.clone());
        } else {
            anyhow::bail!("the path {:?} does not exist", p.display().to_string());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out)?;
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml" | "json")) {
            out.push(p);
        }
    }
    Ok(())
}

/// Reads and parses every manifest under the paths.
pub fn load(paths: &[PathBuf]) -> Result<Loaded> {
    let mut loaded = Loaded::default();
    for f in manifest_files(paths)? {
        let (name, text) = if f.as_os_str() == "-" {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).context("reading standard input")?;
            ("-".to_owned(), s)
        } else {
            let text = std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
            (f.display().to_string(), text)
        };
        loaded.extend(load_str(&name, &text));
    }
    Ok(loaded)
}

/// An object the apiserver would reject, with every reason.
pub struct Rejected {
    pub origin: Origin,
    pub object: String,
    pub errors: Vec<FieldError>,
}

impl Rejected {
    pub fn lines(&self) -> impl Iterator<Item = String> + '_ {
        self.errors.iter().map(|e| format!("{}: NetworkPolicy {}: {e}", self.origin, self.object))
    }
}

/// A loaded cluster: the objects that would be admitted, and everything that would not.
pub struct Input {
    pub loaded: Loaded,
    pub cluster: Cluster,
    pub rejected: Vec<Rejected>,
    /// Tier policies the apiserver would reject (left out), and Palisade's stricter findings on the ones kept,
    /// one line each.
    pub cluster_findings: Vec<(bool, String)>,
}

impl Input {
    /// Problems worth telling on stderr before answering (load errors, rejected policies, skipped kinds).
    pub fn diagnostics(&self) -> Vec<String> {
        let mut out: Vec<String> = self.loaded.errors.iter().map(|e| format!("error: {e}")).collect();
        out.extend(self.rejected.iter().flat_map(|r| r.lines().map(|l| format!("error: {l}")).collect::<Vec<_>>()));
        out.extend(self.cluster_findings.iter().map(|(e, l)| format!("{}: {l}", if *e { "error" } else { "warning" })));
        out.extend(self.loaded.skipped.iter().map(|s| format!("note: {s}")));
        out
    }

    pub fn has_errors(&self) -> bool {
        !self.loaded.errors.is_empty() || !self.rejected.is_empty() || self.cluster_findings.iter().any(|(e, _)| *e)
    }
}

/// Loads the paths and builds the cluster, leaving out policies the apiserver would reject.
pub fn cluster(paths: &[PathBuf]) -> Result<Input> {
    let loaded = load(paths)?;
    let mut cluster = Cluster::new();
    let mut rejected = Vec::new();
    for o in &loaded.objects {
        if let Object::NetworkPolicy(p) = &o.value {
            let errors = validate_network_policy(p);
            if !errors.is_empty() {
                rejected.push(Rejected { origin: o.origin.clone(), object: o.value.display_name(), errors });
                continue;
            }
        }
        cluster.apply(o.value.clone());
    }
    // ClusterNetworkPolicies and their v1alpha1 predecessors: what the apiserver would reject is left out;
    // a selector only Palisade refuses is reported and the policy kept (it matches nothing where it is bad).
    let mut cluster_findings = Vec::new();
    for o in &loaded.cluster_objects {
        let errors = validate_cluster_object(&o.value);
        let refused = errors.iter().any(|e| !e.stricter);
        for e in &errors {
            let line = format!("{}: {} {}: {e}", o.origin, o.value.type_meta().1, o.value.name());
            cluster_findings.push((refused, line));
        }
        if !refused {
            cluster.apply_cluster(o.value.clone());
        }
    }
    Ok(Input { loaded, cluster, rejected, cluster_findings })
}

/// Prints diagnostics on stderr.
pub fn report(input: &Input) {
    for d in input.diagnostics() {
        eprintln!("{d}");
    }
}
