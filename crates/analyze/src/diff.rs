//! What changed between two versions of a set of manifests, at workload level: connections added, removed,
//! and changed (same pair, other ports).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::connlist::Connection;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "lowercase")]
pub enum Change {
    Added { src: String, dst: String, conn: String },
    Removed { src: String, dst: String, conn: String },
    Changed { src: String, dst: String, old: String, new: String },
}

impl Change {
    pub fn pair(&self) -> (&str, &str) {
        match self {
            Change::Added { src, dst, .. } | Change::Removed { src, dst, .. } | Change::Changed { src, dst, .. } => {
                (src, dst)
            }
        }
    }
}

/// The changes from `old` to `new`, sorted by source then destination.
pub fn diff(old: &[Connection], new: &[Connection]) -> Vec<Change> {
    let index = |cs: &[Connection]| -> BTreeMap<(String, String), String> {
        cs.iter().map(|c| ((c.src.clone(), c.dst.clone()), c.conn.clone())).collect()
    };
    let (a, b) = (index(old), index(new));
    let mut out = Vec::new();
    for ((src, dst), conn) in &a {
        match b.get(&(src.clone(), dst.clone())) {
            None => out.push(Change::Removed { src: src.clone(), dst: dst.clone(), conn: conn.clone() }),
            Some(n) if n != conn => {
                out.push(Change::Changed { src: src.clone(), dst: dst.clone(), old: conn.clone(), new: n.clone() })
            }
            Some(_) => {}
        }
    }
    for ((src, dst), conn) in &b {
        if !a.contains_key(&(src.clone(), dst.clone())) {
            out.push(Change::Added { src: src.clone(), dst: dst.clone(), conn: conn.clone() });
        }
    }
    out.sort_by(|x, y| x.pair().cmp(&y.pair()));
    out
}

/// Plain text: `+ src => dst : conn`, `- ...`, `~ src => dst : old -> new`.
pub fn render_text(changes: &[Change]) -> String {
    changes
        .iter()
        .map(|c| match c {
            Change::Added { src, dst, conn } => format!("+ {src} => {dst} : {conn}\n"),
            Change::Removed { src, dst, conn } => format!("- {src} => {dst} : {conn}\n"),
            Change::Changed { src, dst, old, new } => format!("~ {src} => {dst} : {old} -> {new}\n"),
        })
        .collect()
}

/// Markdown for a pull-request comment.
pub fn render_markdown(changes: &[Change]) -> String {
    if changes.is_empty() {
        return "### Palisade: no connectivity change\n".to_owned();
    }
    let count = |f: fn(&Change) -> bool| changes.iter().filter(|c| f(c)).count();
    let mut out = format!(
        "### Palisade: connectivity changes\n\n{} added, {} removed, {} changed\n\n| | source | destination | connections |\n|---|---|---|---|\n",
        count(|c| matches!(c, Change::Added { .. })),
        count(|c| matches!(c, Change::Removed { .. })),
        count(|c| matches!(c, Change::Changed { .. })),
    );
    for c in changes {
        let row = match c {
            Change::Added { src, dst, conn } => format!("| ➕ added | `{src}` | `{dst}` | {conn} |"),
            Change::Removed { src, dst, conn } => format!("| ➖ removed | `{src}` | `{dst}` | ~~{conn}~~ |"),
            Change::Changed { src, dst, old, new } => format!("| ✏️ changed | `{src}` | `{dst}` | ~~{old}~~ → {new} |"),
        };
        out.push_str(&row);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PortSet;

    fn c(src: &str, dst: &str, conn: &str) -> Connection {
        Connection { src: src.into(), dst: dst.into(), conn: conn.into(), ports: PortSet::none() }
    }

    #[test]
    fn added_removed_changed() {
        let old = [c("a", "b", "TCP 80"), c("a", "c", "All Connections")];
        let new = [c("a", "b", "TCP 80,443"), c("b", "c", "UDP 53")];
        let d = diff(&old, &new);
        assert_eq!(render_text(&d), "~ a => b : TCP 80 -> TCP 80,443\n- a => c : All Connections\n+ b => c : UDP 53\n");
        assert!(diff(&old, &old).is_empty());
    }
}
