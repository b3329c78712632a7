//! `list`, `lint` and `diff`: workload-level analysis of manifests, rendered.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use palisade_analyze::exposure::{self, Options};
use palisade_analyze::lint::{Location, Severity};
use palisade_analyze::{Model, connlist, diff as diffs, lint as lints, render};

use crate::commands::{DiffFormat, LintFormat, ListFormat};
use crate::input;

/// The model of what could be read, and whether some document could not be (reported on stderr).
fn model(files: &[PathBuf]) -> Result<(Model, bool)> {
    let loaded = input::load(files)?;
    for e in &loaded.errors {
        eprintln!("error: {e}");
    }
    Ok((Model::from_loaded(&loaded), !loaded.errors.is_empty()))
}

/// What `list` prints, and how.
pub struct ListArgs<'a> {
    pub files: &'a [PathBuf],
    pub output: ListFormat,
    pub options: Options,
}

/// Exit 1 when a document could not be read (after printing what could), as kubectl does.
pub fn list(args: ListArgs<'_>) -> Result<ExitCode> {
    let (m, unreadable) = model(args.files)?;
    let listing = exposure::list(&m, &args.options);
    for w in &listing.warnings {
        eprintln!("warning: {w}");
    }
    let text = match args.output {
        ListFormat::Txt => exposure::render_txt(&listing),
        ListFormat::Json => render::list_json(&listing),
        ListFormat::Dot => render::list_dot(&listing),
        ListFormat::Html => {
            let title = args.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ");
            render::list_html(&listing, &format!("Palisade: allowed connections in {title}"))
        }
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(if unreadable { ExitCode::from(1) } else { ExitCode::SUCCESS })
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

/// What `lint` runs, and how it prints.
pub struct LintArgs<'a> {
    pub files: &'a [PathBuf],
    pub output: LintFormat,
    /// Checks to skip, by ID or name.
    pub disable: &'a [String],
    pub list_checks: bool,
}

pub fn lint(args: LintArgs<'_>) -> Result<ExitCode> {
    let mut disabled = Vec::new();
    for name in args.disable.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        match lints::check_named(name) {
            Some(c) => disabled.push(c.id),
            None => anyhow::bail!("--disable {name}: no such check (palisade lint --list-checks lists them)"),
        }
    }
    if args.list_checks {
        let mut out = std::io::stdout().lock();
        for c in lints::ALL_CHECKS {
            let off = if disabled.contains(&c.id) { " (disabled)" } else { "" };
            writeln!(out, "{} {:<7} {}{off}: {}", c.id, c.severity.to_string(), c.name, c.summary)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (m, unreadable) = model(args.files)?;
    let output = args.output;
    let findings: Vec<_> = lints::lint(&m).into_iter().filter(|f| !disabled.contains(&f.id)).collect();
    let text = match output {
        LintFormat::Text => render::lint_text(&findings),
        LintFormat::Json => render::lint_json(&findings),
        LintFormat::Sarif => render::lint_sarif(&findings, &line_of),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    let failing = unreadable || findings.iter().any(|f| f.severity >= Severity::Warning);
    Ok(if failing { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Exit 0 when nothing changed, 1 when something did, 2 when a document of either version could not be read
/// (the changes between what could be read are still printed).
pub fn diff(old: &Path, new: &Path, output: DiffFormat) -> Result<ExitCode> {
    let (a, old_unreadable) = model(&[old.to_owned()])?;
    let (b, new_unreadable) = model(&[new.to_owned()])?;
    for w in connlist::warnings(&a).iter().chain(&connlist::warnings(&b)) {
        eprintln!("warning: {w}");
    }
    let changes = diffs::diff_models(&a, &b);
    let text = match output {
        DiffFormat::Text => diffs::render_text(&changes),
        DiffFormat::Txt => diffs::render_txt(&changes),
        DiffFormat::Json => serde_json::to_string_pretty(&changes)? + "\n",
        DiffFormat::Markdown => diffs::render_markdown(&changes),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(if old_unreadable || new_unreadable {
        ExitCode::from(2)
    } else if changes.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
