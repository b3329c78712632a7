//! Renderers for the list and lint results: JSON, graphviz, a self-contained HTML page, SARIF.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::json;

use crate::exposure::{ExposureLine, Listing};
use crate::lint::{ALL_CHECKS, Finding, Location, Severity};

/// The list as an array of `{src, dst, conn}`; with exposure, netpol-analyzer's shape:
/// `{connlist_results, exposure_results: {egress_exposure, ingress_exposure}}` plus `unprotected`.
pub fn list_json(listing: &Listing) -> String {
    let conns: Vec<_> =
        listing.connections.iter().map(|c| json!({"src": c.src, "dst": c.dst, "conn": c.conn})).collect();
    let v = match &listing.exposure {
        None => json!(conns),
        Some(e) => json!({
            "connlist_results": conns,
            "exposure_results": {
                "egress_exposure": e.egress,
                "ingress_exposure": e.ingress,
                "unprotected": e.unprotected.iter().map(|(w, d)| json!({"workload": w, "direction": d})).collect::<Vec<_>>(),
            },
        }),
    };
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

/// Exposure lines as edges: (source, destination, connections), both directions.
fn exposure_edges(listing: &Listing) -> Vec<&ExposureLine> {
    listing.exposure.iter().flat_map(|e| e.egress.iter().chain(&e.ingress)).collect()
}

/// A peer that stands for what the manifests do not pin down (`entire-cluster`, `[all namespaces]/...`).
fn is_potential(name: &str) -> bool {
    name == "entire-cluster" || name.contains("/[")
}

fn dot_id(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Graphviz: workloads as boxes, outside ranges as dashed ellipses; with exposure, the peers the manifests do
/// not pin down as red dashed ellipses and exposure edges dashed red (outside ranges' exposure edges are the
/// list's own edges).
pub fn list_dot(listing: &Listing) -> String {
    let conns = &listing.connections;
    let exposure = exposure_edges(listing);
    let mut nodes: BTreeMap<&str, ()> = BTreeMap::new();
    for (src, dst) in conns.iter().map(|c| (&c.src, &c.dst)).chain(exposure.iter().map(|l| (&l.src, &l.dst))) {
        nodes.insert(src, ());
        nodes.insert(dst, ());
    }
    let mut o = String::from("digraph {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n");
    for n in nodes.keys() {
        let shape = if n.ends_with("[External]") {
            ", shape=ellipse, style=dashed"
        } else if is_potential(n) {
            ", shape=ellipse, style=dashed, color=red3"
        } else {
            ""
        };
        let _ = writeln!(o, "  {} [label={}{shape}];", dot_id(n), dot_id(n));
    }
    for c in conns {
        let _ = writeln!(o, "  {} -> {} [label={}];", dot_id(&c.src), dot_id(&c.dst), dot_id(&c.conn));
    }
    for l in exposure.iter().filter(|l| is_potential(&l.src) || is_potential(&l.dst)) {
        let _ = writeln!(
            o,
            "  {} -> {} [label={}, style=dashed, color=red3, fontcolor=red3];",
            dot_id(&l.src),
            dot_id(&l.dst),
            dot_id(&l.conn)
        );
    }
    o.push_str("}\n");
    o
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A self-contained page (no scripts or styles from elsewhere): the graph as SVG, then the table; exposure
/// edges (to peers the manifests do not pin down) dashed red, with their own table.
pub fn list_html(listing: &Listing, title: &str) -> String {
    let conns = &listing.connections;
    let exposure: Vec<&ExposureLine> =
        exposure_edges(listing).into_iter().filter(|l| is_potential(&l.src) || is_potential(&l.dst)).collect();
    let mut names: Vec<&str> = conns
        .iter()
        .flat_map(|c| [c.src.as_str(), c.dst.as_str()])
        .chain(exposure.iter().flat_map(|l| [l.src.as_str(), l.dst.as_str()]))
        .collect();
    names.sort();
    names.dedup();
    let n = names.len().max(1);
    let size = (300.0 + 18.0 * n as f64).min(2400.0);
    let (cx, cy, r) = (size / 2.0, size / 2.0, size / 2.0 - 140.0);
    let pos: BTreeMap<&str, (f64, f64)> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let a = 2.0 * std::f64::consts::PI * i as f64 / n as f64;
            (*name, (cx + r * a.cos(), cy + r * a.sin()))
        })
        .collect();
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{size:.0}\" height=\"{size:.0}\" viewBox=\"0 0 {size:.0} {size:.0}\" role=\"img\" aria-label=\"allowed connections\">\n<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#2b8a3e\"/></marker></defs>\n"
    );
    for c in conns {
        let (x1, y1) = pos[c.src.as_str()];
        let (x2, y2) = pos[c.dst.as_str()];
        let _ = writeln!(
            svg,
            "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"#2b8a3e\" stroke-opacity=\"0.45\" marker-end=\"url(#arrow)\"><title>{} =&gt; {} : {}</title></line>",
            esc(&c.src),
            esc(&c.dst),
            esc(&c.conn)
        );
    }
    for l in &exposure {
        let (x1, y1) = pos[l.src.as_str()];
        let (x2, y2) = pos[l.dst.as_str()];
        let _ = writeln!(
            svg,
            "<line class=\"exposure\" x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"#c92a2a\" stroke-dasharray=\"6 4\" stroke-opacity=\"0.6\" marker-end=\"url(#arrow)\"><title>exposure: {} =&gt; {} : {}</title></line>",
            esc(&l.src),
            esc(&l.dst),
            esc(&l.conn)
        );
    }
    for (name, (x, y)) in &pos {
        let external = name.ends_with("[External]");
        let fill = if external {
            "#fff4e6"
        } else if is_potential(name) {
            "#fff5f5"
        } else {
            "#e7f5ff"
        };
        let _ = writeln!(
            svg,
            "<g><circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"7\" fill=\"{fill}\" stroke=\"#1c7ed6\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"{}\">{}</text></g>",
            x + if *x >= cx { 10.0 } else { -10.0 },
            y + 4.0,
            if *x >= cx { "start" } else { "end" },
            esc(name)
        );
    }
    svg.push_str("</svg>\n");
    let mut rows = String::new();
    for c in conns.iter() {
        let _ = writeln!(rows, "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", esc(&c.src), esc(&c.dst), esc(&c.conn));
    }
    let mut exposure_table = String::new();
    if let Some(e) = &listing.exposure {
        exposure_table.push_str("<h2>Exposure</h2><table><thead><tr><th>direction</th><th>source</th><th>destination</th><th>connections</th></tr></thead><tbody>\n");
        for (dir, lines) in [("egress", &e.egress), ("ingress", &e.ingress)] {
            for l in lines {
                let _ = writeln!(
                    exposure_table,
                    "<tr><td>{dir}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&l.src),
                    esc(&l.dst),
                    esc(&l.conn)
                );
            }
        }
        exposure_table.push_str("</tbody></table>\n");
        if !e.unprotected.is_empty() {
            exposure_table.push_str("<h2>Not protected by network policies</h2><ul>\n");
            for (w, d) in &e.unprotected {
                let _ = writeln!(exposure_table, "<li>{} on {d}</li>", esc(w));
            }
            exposure_table.push_str("</ul>\n");
        }
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>body{{font-family:system-ui,sans-serif;margin:1.5rem}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}}svg{{max-width:100%;height:auto}}</style></head>\n<body><h1>{t}</h1><p>{} allowed connections between {} peers. Hover an edge for its ports.</p>\n{svg}<table><thead><tr><th>source</th><th>destination</th><th>connections</th></tr></thead><tbody>\n{rows}</tbody></table>\n{exposure_table}</body></html>\n",
        conns.len(),
        names.len(),
        t = esc(title)
    )
}

pub fn lint_text(findings: &[Finding]) -> String {
    let mut o: String = findings.iter().map(ToString::to_string).collect();
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let _ = writeln!(
        o,
        "{} findings: {} errors, {} warnings, {} info",
        findings.len(),
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info)
    );
    o
}

pub fn lint_json(findings: &[Finding]) -> String {
    serde_json::to_string_pretty(findings).unwrap_or_default() + "\n"
}

/// SARIF 2.1.0, so CI code scanning shows findings on the line. `line_of` finds a finding's line in its file.
pub fn lint_sarif(findings: &[Finding], line_of: &dyn Fn(&Location) -> Option<usize>) -> String {
    let level = |s: Severity| match s {
        Severity::Info => "note",
        Severity::Warning => "warning",
        Severity::Error => "error",
    };
    let rules: Vec<_> = ALL_CHECKS
        .iter()
        .map(|c| {
            json!({
                "id": c.id, "name": c.name,
                "shortDescription": {"text": c.summary},
                "defaultConfiguration": {"level": level(c.severity)},
            })
        })
        .collect();
    let results: Vec<_> = findings
        .iter()
        .map(|f| {
            let mut physical = json!({"artifactLocation": {"uri": f.location.file}});
            if let Some(line) = line_of(&f.location) {
                physical["region"] = json!({"startLine": line});
            }
            json!({
                "ruleId": f.id,
                "level": level(f.severity),
                "message": {"text": format!("{} Fix: {}", f.message, f.fix.replace('\n', " "))},
                "locations": [{
                    "physicalLocation": physical,
                    "logicalLocations": [{"fullyQualifiedName": format!("{} {}", f.location.object, f.location.field), "kind": "resource"}],
                }],
            })
        })
        .collect();
    let doc = json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{"tool": {"driver": {"name": "palisade", "informationUri": "https://github.com/palisade-net/palisade", "rules": rules}}, "results": results}],
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}
