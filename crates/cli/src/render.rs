//! Rendering engine answers for people: verdicts, matrices, kubectl-style tables.

use std::io::{self, Write};

use palisade_conformance::matrix::{Cell, ExpectedMatrix};
use palisade_engine::{Index, Matrix, Verdict};

/// The verdict for people: the answer first, then each side (the engine's words).
pub fn verdict_text(w: &mut dyn Write, index: &Index, v: &Verdict) -> io::Result<()> {
    w.write_all(palisade_engine::explain::verdict_text(index, v).as_bytes())
}

/// The corpus `matrix:` layout (pasteable into a case).
pub fn matrix_text(m: &Matrix, keep: &[usize]) -> String {
    let names: Vec<String> = keep.iter().map(|&i| m.pods[i].to_string()).collect();
    let rows = keep
        .iter()
        .map(|&i| {
            let cells = keep.iter().map(|&j| if m.get(i, j) { Cell::Allowed } else { Cell::Blocked }).collect();
            (m.pods[i].to_string(), cells)
        })
        .collect();
    ExpectedMatrix { columns: names, rows }.render()
}

pub fn matrix_csv(m: &Matrix, keep: &[usize]) -> String {
    let mut out = String::from("from\\to");
    for &j in keep {
        out.push(',');
        out.push_str(&m.pods[j].to_string());
    }
    out.push('\n');
    for &i in keep {
        out.push_str(&m.pods[i].to_string());
        for &j in keep {
            out.push_str(if m.get(i, j) { ",1" } else { ",0" });
        }
        out.push('\n');
    }
    out
}

pub fn matrix_dot(m: &Matrix, keep: &[usize]) -> String {
    let mut out = String::from("digraph connectivity {\n  rankdir=LR;\n  node [shape=box];\n");
    for &i in keep {
        out.push_str(&format!("  \"{}\";\n", m.pods[i]));
    }
    for &i in keep {
        for &j in keep {
            if i != j && m.get(i, j) {
                out.push_str(&format!("  \"{}\" -> \"{}\";\n", m.pods[i], m.pods[j]));
            }
        }
    }
    out.push_str("}\n");
    out
}

/// A kubectl-style table: columns padded with three spaces, no borders.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        let last = cells.len().saturating_sub(1);
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            s.push_str(c);
            if i < last {
                s.push_str(&" ".repeat(w - c.chars().count() + 3));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}
