//! `list`, `lint` and `diff`: workload-level analysis of manifests, rendered.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use palisade_analyze::lint::{Location, Severity};
use palisade_analyze::{Model, connlist, diff as diffs, lint as lints, render};

use crate::commands::{DiffFormat, LintFormat, ListFormat};
use crate::input;

fn model(files: &[PathBuf]) -> Result<Model> {
    let loaded = input::load(files)?;
    for e in &loaded.errors {
        eprintln!("warning: {e} (skipped)");
    }
    Ok(Model::from_loaded(&loaded))
}

pub fn list(files: &[PathBuf], output: ListFormat) -> Result<ExitCode> {
    let m = model(files)?;
    let conns = connlist(&m);
    let text = match output {
        ListFormat::Txt => palisade_analyze::render_txt(&conns),
        ListFormat::Json => render::list_json(&conns),
        ListFormat::Dot => render::list_dot(&conns),
        ListFormat::Html => {
            let title = files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ");
            render::list_html(&conns, &format!("Palisade: allowed connections in {title}"))
        }
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// The line of `name: <policy>` in the finding's file, for SARIF regions.
fn line_of(loc: &Location) -> Option<usize> {
    let name = loc.object.rsplit('/').next()?;
    let text = std::fs::read_to_string(&loc.file).ok()?;
    text.lines()
        .position(|l| {
            let t = l.trim().trim_start_matches("- ");
            t == format!("name: {name}")
                || t == format!("name: \"{name}\"")
                || t.contains(&format!("\"name\": \"{name}\""))
        })
        .map(|i| i + 1)
}

pub fn lint(files: &[PathBuf], output: LintFormat) -> Result<ExitCode> {
    let m = model(files)?;
    let findings = lints::lint(&m);
    let text = match output {
        LintFormat::Text => render::lint_text(&findings),
        LintFormat::Json => render::lint_json(&findings),
        LintFormat::Sarif => render::lint_sarif(&findings, &line_of),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    let failing = findings.iter().any(|f| f.severity >= Severity::Warning);
    Ok(if failing { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

pub fn diff(old: &Path, new: &Path, output: DiffFormat) -> Result<ExitCode> {
    let a = connlist(&model(&[old.to_owned()])?);
    let b = connlist(&model(&[new.to_owned()])?);
    let changes = diffs::diff(&a, &b);
    let text = match output {
        DiffFormat::Text => diffs::render_text(&changes),
        DiffFormat::Json => serde_json::to_string_pretty(&changes)? + "\n",
        DiffFormat::Markdown => diffs::render_markdown(&changes),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(if changes.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
