//! What changed between two versions of a set of manifests, at workload level: connections added, removed,
//! and changed (same pair, other ports), stated as netpol-analyzer's `diff` states them.
//!
//! Each version's list cuts outside addresses at its own ipBlocks. Before comparing, both versions' ranges
//! are cut at every boundary either version has, so a range cut differently is compared address by address;
//! after comparing, neighbouring ranges with the same change (same workload, same old and new connections) are
//! joined again. Only addresses whose connections changed are reported. A change whose workload exists in
//! only one version carries that workload (`workloads`), so a new workload is told apart from a policy change.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use crate::connlist::{Connection, external_name};
use crate::model::Model;
use crate::ports::PortSet;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "lowercase")]
pub enum Change {
    /// A connection only the new version allows; `workloads` are its ends that only the new version has.
    Added {
        src: String,
        dst: String,
        conn: String,
        workloads: Vec<String>,
    },
    /// A connection only the old version allows; `workloads` are its ends that only the old version has.
    Removed {
        src: String,
        dst: String,
        conn: String,
        workloads: Vec<String>,
    },
    Changed {
        src: String,
        dst: String,
        old: String,
        new: String,
    },
}

impl Change {
    pub fn pair(&self) -> (&str, &str) {
        match self {
            Change::Added { src, dst, .. } | Change::Removed { src, dst, .. } | Change::Changed { src, dst, .. } => {
                (src, dst)
            }
        }
    }

    /// Ends of the connection that exist in one version only (empty for a changed connection).
    pub fn workloads(&self) -> &[String] {
        match self {
            Change::Added { workloads, .. } | Change::Removed { workloads, .. } => workloads,
            Change::Changed { .. } => &[],
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Change::Added { .. } => "added",
            Change::Removed { .. } => "removed",
            Change::Changed { .. } => "changed",
        }
    }

    /// netpol-analyzer's `workload W added`, `workload A and B removed`; `None` when both ends exist in both.
    pub fn workloads_note(&self) -> Option<String> {
        let w = self.workloads();
        (!w.is_empty()).then(|| format!("workload {} {}", w.join(" and "), self.kind()))
    }
}

/// One version: its connections and the names of its workloads.
pub struct Version<'a> {
    pub connections: &'a [Connection],
    pub workloads: HashSet<String>,
}

impl<'a> Version<'a> {
    pub fn new(model: &Model, connections: &'a [Connection]) -> Self {
        Version { connections, workloads: model.workloads.iter().map(ToString::to_string).collect() }
    }
}

/// The changes between two models, each listed (in parallel: the lists are independent).
pub fn diff_models(old: &Model, new: &Model) -> Vec<Change> {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| crate::connlist(old));
        let b = crate::connlist(new);
        (a.join().unwrap_or_else(|_| crate::connlist(old)), b)
    });
    diff(&Version::new(old, &a), &Version::new(new, &b))
}

/// Where the outside address range of a connection is, and the workload at its other end.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum IpSide {
    /// `range => workload`
    Source(String),
    /// `workload => range`
    Destination(String),
}

/// The changes from `old` to `new`, sorted by source then destination.
pub fn diff(old: &Version<'_>, new: &Version<'_>) -> Vec<Change> {
    let mut out = Vec::new();
    let is_ip = |c: &&Connection| c.src_range.is_some() || c.dst_range.is_some();
    // Between workloads: both lists are sorted by (source, destination), so one merge walk compares them.
    let mut a: Vec<&Connection> = old.connections.iter().filter(|c| !is_ip(c)).collect();
    let mut b: Vec<&Connection> = new.connections.iter().filter(|c| !is_ip(c)).collect();
    for v in [&mut a, &mut b] {
        if !v.is_sorted_by(|x, y| (&x.src, &x.dst) <= (&y.src, &y.dst)) {
            v.sort_by(|x, y| (&x.src, &x.dst).cmp(&(&y.src, &y.dst)));
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let order = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => (&x.src, &x.dst).cmp(&(&y.src, &y.dst)),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        match order {
            Ordering::Less => {
                out.push(one_sided(&a[i].src, &a[i].dst, &a[i].ports, true, &new.workloads));
                i += 1;
            }
            Ordering::Greater => {
                out.push(one_sided(&b[j].src, &b[j].dst, &b[j].ports, false, &old.workloads));
                j += 1;
            }
            Ordering::Equal => {
                if a[i].ports != b[j].ports {
                    out.push(Change::Changed {
                        src: a[i].src.clone(),
                        dst: a[i].dst.clone(),
                        old: a[i].conn.clone(),
                        new: b[j].conn.clone(),
                    });
                }
                i += 1;
                j += 1;
            }
        }
    }
    diff_ranges(old, new, &mut out);
    out.sort_by(|x, y| x.pair().cmp(&y.pair()));
    out
}

/// A connection of one version only: `removed` when it is the old version's; `others` are the other
/// version's workloads, to mark the ends that version does not have.
fn one_sided(src: &str, dst: &str, ports: &PortSet, removed: bool, others: &HashSet<String>) -> Change {
    one_sided_ends(src, dst, None, None, ports, removed, others)
}

fn one_sided_ends(
    src: &str,
    dst: &str,
    src_range: Option<(u32, u32)>,
    dst_range: Option<(u32, u32)>,
    ports: &PortSet,
    removed: bool,
    others: &HashSet<String>,
) -> Change {
    let mut workloads = Vec::new();
    if src_range.is_none() && !others.contains(src) {
        workloads.push(src.to_owned());
    }
    if dst_range.is_none() && !others.contains(dst) {
        workloads.push(dst.to_owned());
    }
    let (src, dst, conn) = (src.to_owned(), dst.to_owned(), ports.to_string());
    if removed { Change::Removed { src, dst, conn, workloads } } else { Change::Added { src, dst, conn, workloads } }
}

/// Connections with outside addresses, compared over ranges cut the same way in both versions.
fn diff_ranges(old: &Version<'_>, new: &Version<'_>, out: &mut Vec<Change>) {
    type Ranges<'c> = BTreeMap<IpSide, Vec<(u32, u32, &'c PortSet)>>;
    let mut cuts: Vec<u64> = Vec::new();
    let mut sides: [Ranges<'_>; 2] = [BTreeMap::new(), BTreeMap::new()];
    for (k, v) in [old, new].into_iter().enumerate() {
        for c in v.connections {
            let (side, (lo, hi)) = match (c.src_range, c.dst_range) {
                (Some(r), None) => (IpSide::Source(c.dst.clone()), r),
                (None, Some(r)) => (IpSide::Destination(c.src.clone()), r),
                _ => continue,
            };
            cuts.push(u64::from(lo));
            cuts.push(u64::from(hi) + 1);
            sides[k].entry(side).or_default().push((lo, hi, &c.ports));
        }
    }
    if cuts.is_empty() {
        return;
    }
    cuts.sort_unstable();
    cuts.dedup();
    let pieces = cuts.len() - 1;
    let piece_of = |addr: u32| cuts.binary_search(&u64::from(addr)).unwrap_or_else(|i| i.saturating_sub(1));
    let keys: std::collections::BTreeSet<&IpSide> = sides[0].keys().chain(sides[1].keys()).collect();
    let mut slots: [Vec<Option<&PortSet>>; 2] = [vec![None; pieces], vec![None; pieces]];
    for key in keys {
        for k in 0..2 {
            slots[k].iter_mut().for_each(|s| *s = None);
            for &(lo, hi, ports) in sides[k].get(key).into_iter().flatten() {
                for slot in &mut slots[k][piece_of(lo)..piece_of(hi) + 1] {
                    *slot = Some(ports);
                }
            }
        }
        // Runs of neighbouring pieces with the same change become one range.
        let mut p = 0;
        while p < pieces {
            let (was, is) = (slots[0][p], slots[1][p]);
            let mut q = p + 1;
            while q < pieces && slots[0][q] == was && slots[1][q] == is {
                q += 1;
            }
            let (lo, hi) = (cuts[p] as u32, (cuts[q] - 1) as u32);
            let range = external_name(lo, hi);
            let (src, dst, src_range, dst_range) = match key {
                IpSide::Source(w) => (range.as_str(), w.as_str(), Some((lo, hi)), None),
                IpSide::Destination(w) => (w.as_str(), range.as_str(), None, Some((lo, hi))),
            };
            match (was, is) {
                (Some(x), Some(y)) if x != y => out.push(Change::Changed {
                    src: src.to_owned(),
                    dst: dst.to_owned(),
                    old: x.to_string(),
                    new: y.to_string(),
                }),
                (Some(x), None) => out.push(one_sided_ends(src, dst, src_range, dst_range, x, true, &new.workloads)),
                (None, Some(y)) => out.push(one_sided_ends(src, dst, src_range, dst_range, y, false, &old.workloads)),
                _ => {}
            }
            p = q;
        }
    }
}

/// Plain text: `+ src => dst : conn`, `- ...`, `~ src => dst : old -> new`; a workload that exists in one
/// version only is named at the end: `(workload default/unicorn[Deployment] added)`.
pub fn render_text(changes: &[Change]) -> String {
    changes
        .iter()
        .map(|c| {
            let line = match c {
                Change::Added { src, dst, conn, .. } => format!("+ {src} => {dst} : {conn}"),
                Change::Removed { src, dst, conn, .. } => format!("- {src} => {dst} : {conn}"),
                Change::Changed { src, dst, old, new } => format!("~ {src} => {dst} : {old} -> {new}"),
            };
            match c.workloads_note() {
                Some(note) => format!("{line}  ({note})\n"),
                None => line + "\n",
            }
        })
        .collect()
}

/// netpol-analyzer's `diff -o txt`, byte for byte: a header, then changed, added and removed lines, each
/// group sorted as text; nothing at all when nothing changed.
pub fn render_txt(changes: &[Change]) -> String {
    if changes.is_empty() {
        return String::new();
    }
    let mut out = String::from("Connectivity diff:\n");
    for kind in ["changed", "added", "removed"] {
        let mut lines: Vec<String> = changes
            .iter()
            .filter(|c| c.kind() == kind)
            .map(|c| {
                let (src, dst) = c.pair();
                let (old, new) = match c {
                    Change::Added { conn, .. } => ("No Connections", conn.as_str()),
                    Change::Removed { conn, .. } => (conn.as_str(), "No Connections"),
                    Change::Changed { old, new, .. } => (old.as_str(), new.as_str()),
                };
                let mut line =
                    format!("diff-type: {kind}, source: {src}, destination: {dst}, ref1: {old}, ref2: {new}");
                if let Some(note) = c.workloads_note() {
                    line.push_str(", workloads-diff-info: ");
                    line.push_str(&note);
                }
                line
            })
            .collect();
        lines.sort();
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}

/// Markdown for a pull-request comment.
pub fn render_markdown(changes: &[Change]) -> String {
    if changes.is_empty() {
        return "### Palisade: no connectivity change\n".to_owned();
    }
    let count = |f: fn(&Change) -> bool| changes.iter().filter(|c| f(c)).count();
    let mut out = format!(
        "### Palisade: connectivity changes\n\n{} added, {} removed, {} changed\n\n| | source | destination | connections | workloads |\n|---|---|---|---|---|\n",
        count(|c| matches!(c, Change::Added { .. })),
        count(|c| matches!(c, Change::Removed { .. })),
        count(|c| matches!(c, Change::Changed { .. })),
    );
    for c in changes {
        let note = match c {
            Change::Added { workloads, .. } if !workloads.is_empty() => {
                workloads.iter().map(|w| format!("🆕 `{w}` added")).collect::<Vec<_>>().join(", ")
            }
            Change::Removed { workloads, .. } if !workloads.is_empty() => {
                workloads.iter().map(|w| format!("🗑️ `{w}` removed")).collect::<Vec<_>>().join(", ")
            }
            _ => String::new(),
        };
        let row = match c {
            Change::Added { src, dst, conn, .. } => format!("| ➕ added | `{src}` | `{dst}` | {conn} | {note} |"),
            Change::Removed { src, dst, conn, .. } => {
                format!("| ➖ removed | `{src}` | `{dst}` | ~~{conn}~~ | {note} |")
            }
            Change::Changed { src, dst, old, new } => {
                format!("| ✏️ changed | `{src}` | `{dst}` | ~~{old}~~ → {new} | |")
            }
        };
        out.push_str(&row);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_engine::Protocol;

    fn ports(spec: &str) -> PortSet {
        let mut p = PortSet::none();
        for n in spec.split(',').filter(|s| !s.is_empty()) {
            let n: u16 = n.parse().unwrap();
            p.add(Protocol::Tcp, n, n);
        }
        p
    }

    fn c(src: &str, dst: &str, spec: &str) -> Connection {
        Connection::between(src, dst, ports(spec))
    }

    fn ext_in(lo: u32, hi: u32, dst: &str, spec: &str) -> Connection {
        Connection { src_range: Some((lo, hi)), ..Connection::between(external_name(lo, hi), dst, ports(spec)) }
    }

    fn version<'a>(conns: &'a [Connection], workloads: &[&str]) -> Version<'a> {
        Version { connections: conns, workloads: workloads.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn added_removed_changed_with_workload_marks() {
        let old = [c("a", "b", "80"), c("a", "c", "443")];
        let new = [c("a", "b", "80,443"), c("b", "d", "53")];
        let d = diff(&version(&old, &["a", "b", "c"]), &version(&new, &["a", "b", "d"]));
        assert_eq!(
            render_text(&d),
            "~ a => b : TCP 80 -> TCP 80,443\n- a => c : TCP 443  (workload c removed)\n+ b => d : TCP 53  (workload d added)\n"
        );
        assert!(diff(&version(&old, &["a", "b", "c"]), &version(&old, &["a", "b", "c"])).is_empty());
    }

    /// A range cut in two in the new version, with the same connections on both halves, is no change; only
    /// the half whose connections changed is reported, and it is reported once.
    #[test]
    fn ranges_are_compared_address_by_address() {
        let old = [ext_in(0, u32::MAX, "w", "80")];
        let same_halves = [ext_in(0, 99, "w", "80"), ext_in(100, u32::MAX, "w", "80")];
        let w = ["w"];
        assert!(diff(&version(&old, &w), &version(&same_halves, &w)).is_empty());
        let one_half_gone = [ext_in(0, 99, "w", "80")];
        let d = diff(&version(&old, &w), &version(&one_half_gone, &w));
        assert_eq!(render_text(&d), "- 0.0.0.100-255.255.255.255[External] => w : TCP 80\n");
        let split_change = [ext_in(0, 9, "w", "80"), ext_in(10, 19, "w", "81"), ext_in(20, u32::MAX, "w", "80")];
        let d = diff(&version(&old, &w), &version(&split_change, &w));
        assert_eq!(render_text(&d), "~ 0.0.0.10-0.0.0.19[External] => w : TCP 80 -> TCP 81\n");
    }
}
