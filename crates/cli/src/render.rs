//! Rendering engine answers for people: verdicts, matrices, kubectl-style tables.

use std::io::{self, Write};

use palisade_conformance::matrix::{Cell, ExpectedMatrix};
use palisade_engine::explain::{describe_peer, describe_port};
use palisade_engine::policy::{Direction, Rule};
use palisade_engine::{Endpoint, Index, IpFamily, Matrix, NearMiss, RuleMatch, Side, Verdict};

fn rule_of<'a>(index: &'a Index, m: &RuleMatch) -> Option<&'a Rule> {
    index.policy(&m.policy)?.rules(m.direction)?.get(m.rule)
}

fn peer_text(index: &Index, m: &RuleMatch) -> String {
    match (m.peer, rule_of(index, m).and_then(|r| r.peers.as_ref())) {
        (Some(i), Some(peers)) => peers.get(i).map(describe_peer).unwrap_or_default(),
        _ => "anywhere".to_owned(),
    }
}

fn port_text(index: &Index, m: &RuleMatch) -> String {
    match (m.port, rule_of(index, m).and_then(|r| r.ports.as_ref())) {
        (Some(i), Some(ports)) => ports.get(i).map(describe_port).unwrap_or_default(),
        _ => "any port".to_owned(),
    }
}

fn all_peers_text(index: &Index, m: &RuleMatch, other: &Endpoint, family: IpFamily) -> Vec<String> {
    let Some(rule) = rule_of(index, m) else { return Vec::new() };
    rule.peers
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, p)| {
            let what = describe_peer(p);
            let why = index.peer_mismatch(p, other, family).map(|w| format!(" (no: {w})")).unwrap_or_default();
            format!("{}.{}[{i}]: {what}{why}", m.rule_path(), m.direction.peers_field())
        })
        .collect()
}

fn all_ports_text(index: &Index, m: &RuleMatch) -> Vec<String> {
    let Some(rule) = rule_of(index, m) else { return Vec::new() };
    rule.ports
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, p)| format!("{}.ports[{i}]: {}", m.rule_path(), describe_port(p)))
        .collect()
}

fn side_title(side: &Side) -> String {
    let dir = match side.direction {
        Direction::Ingress => "Ingress to",
        Direction::Egress => "Egress from",
    };
    format!("{dir} {}", side.pod)
}

fn write_side(w: &mut dyn Write, index: &Index, side: &Side, other: &Endpoint, family: IpFamily) -> io::Result<()> {
    let title = side_title(side);
    if let Some(why) = &side.exempt {
        return writeln!(w, "{title}: allowed: {why}");
    }
    if !side.isolated {
        return writeln!(
            w,
            "{title}: allowed: not isolated (no NetworkPolicy selects the pod for {})",
            side.direction.as_str()
        );
    }
    let by: Vec<String> = side.selected_by.iter().map(ToString::to_string).collect();
    if let Some(m) = &side.admitted_by {
        writeln!(w, "{title}: allowed: isolated by {}", by.join(", "))?;
        writeln!(w, "  admitted by {} {}", m.policy, m.rule_path())?;
        writeln!(w, "    peer: {}: {}", m.peer_path(), peer_text(index, m))?;
        writeln!(w, "    port: {}: {}", m.port_path(), port_text(index, m))?;
        return Ok(());
    }
    writeln!(w, "{title}: DENIED: isolated by {}, and no rule admits the connection", by.join(", "))?;
    if side.near_misses.is_empty() {
        let any_rules = side
            .selected_by
            .iter()
            .any(|k| index.policy(k).and_then(|p| p.rules(side.direction)).is_some_and(|r| !r.is_empty()));
        if !any_rules {
            writeln!(
                w,
                "  the selecting policies have no {} rules: they deny all {}",
                side.direction.as_str(),
                side.direction.as_str()
            )?;
        } else {
            writeln!(w, "  no rule matches either the peer or the port")?;
        }
        return Ok(());
    }
    writeln!(w, "  nearest misses:")?;
    for miss in &side.near_misses {
        match miss {
            NearMiss::PortDidNotMatch { rule } => {
                writeln!(
                    w,
                    "  - {} {}: the peer matches ({}: {}) but no port does:",
                    rule.policy,
                    rule.rule_path(),
                    rule.peer_path(),
                    peer_text(index, rule)
                )?;
                for p in all_ports_text(index, rule) {
                    writeln!(w, "      {p}")?;
                }
            }
            NearMiss::PeerDidNotMatch { rule } => {
                writeln!(
                    w,
                    "  - {} {}: the port matches ({}: {}) but no peer does:",
                    rule.policy,
                    rule.rule_path(),
                    rule.port_path(),
                    port_text(index, rule)
                )?;
                for p in all_peers_text(index, rule, other, family) {
                    writeln!(w, "      {p}")?;
                }
            }
        }
    }
    Ok(())
}

/// The verdict for people: the answer first, then each side.
pub fn verdict_text(w: &mut dyn Write, index: &Index, v: &Verdict) -> io::Result<()> {
    let word = if v.allowed { "ALLOWED" } else { "DENIED" };
    writeln!(w, "{word}: {} ({})", v.connection, v.connection.family)?;
    if v.self_connection {
        return writeln!(w, "a pod may always connect to itself");
    }
    let family = v.connection.family;
    match &v.egress {
        Some(side) => write_side(w, index, side, &v.connection.to, family)?,
        None => writeln!(w, "Egress from {}: not a pod; nothing to enforce", v.connection.from)?,
    }
    match &v.ingress {
        Some(side) => write_side(w, index, side, &v.connection.from, family)?,
        None => writeln!(w, "Ingress to {}: not a pod; nothing to enforce", v.connection.to)?,
    }
    if !v.allowed
        && v.egress.as_ref().is_some_and(|s| !s.allowed)
        && v.ingress.as_ref().is_some_and(|s| s.allowed && s.isolated)
    {
        writeln!(w, "note: ingress admits the connection but the client's egress does not; both sides must allow it")?;
    }
    Ok(())
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
