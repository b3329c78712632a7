//! `palisade demo`: the frontend / not-frontend / backend tutorial, for real, narrated.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use palisade_conformance::{Case, ClusterSource};
use palisade_engine::{Endpoint, Index};
use palisade_sandbox::Sandbox;

use crate::render;
use crate::sandbox::helper;

/// The tutorial, compiled in so the demo needs no files.
const CASE: &str = include_str!("../../../conformance/seeds/frontend-backend.yaml");

pub fn run() -> Result<ExitCode> {
    if std::process::Command::new("nft").arg("--version").output().is_err() {
        bail!("the nft command is missing: install the nftables package (apt-get install -y nftables)");
    }
    let case = Case::parse("frontend-backend.yaml", CASE)?;
    let ClusterSource::Inline(cluster) = &case.cluster else { bail!("the tutorial case has an inline cluster") };
    let mut out = std::io::stdout().lock();
    let name = format!("demo{}", std::process::id() % 100_000);
    writeln!(out, "== Palisade demo: {}\n", case.description)?;
    let mut sb = Sandbox::up(&name, cluster, &[], &helper()?).context("creating the sandbox")?;
    sb.set_ephemeral(true); // torn down however the demo ends
    writeln!(out, "Created sandbox {name:?}: one network namespace per pod, routed through a node namespace")?;
    for (k, h) in sb.pods() {
        let ports: Vec<String> = h.ports.iter().map(|(p, n)| format!("{p}/{n}")).collect();
        let ips: Vec<String> = h.ips.iter().map(ToString::to_string).collect();
        let serving = if ports.is_empty() { String::new() } else { format!(", serving {}", ports.join(" ")) };
        writeln!(out, "  pod {k:<28} {}{serving}", ips.join(" "))?;
    }
    let mut failures = 0;
    for (i, step) in case.steps.iter().enumerate() {
        writeln!(out, "\n-- step {}: {}", i + 1, step.description.as_deref().unwrap_or(""))?;
        for (kind, ns, n) in &step.delete {
            sb.delete(*kind, ns, n)?;
            writeln!(out, "   deleted {kind:?} {ns}/{n}")?;
        }
        if !step.apply.is_empty() {
            sb.apply(&step.apply)?;
            for o in &step.apply {
                writeln!(out, "   applied {} {}", o.kind(), o.display_name())?;
            }
        }
        let conns: Vec<_> = step.expect.iter().map(|e| e.connection.clone()).collect();
        let got = sb.probe(&conns)?;
        let index = Index::build(sb.cluster());
        for (e, ok) in step.expect.iter().zip(got) {
            let word = if ok { "connected" } else { "timed out (blocked)" };
            let mark = if ok == e.allowed { "as expected" } else { "UNEXPECTED" };
            if ok != e.allowed {
                failures += 1;
            }
            writeln!(out, "   probe {}: {word}, {mark}", e.connection)?;
            // Say why, from the same engine that compiled the kernel rules.
            if !ok && let (Endpoint::Pod(_), Endpoint::Pod(_)) = (&e.connection.from, &e.connection.to) {
                let v = index.decide(&e.connection)?;
                let mut why = Vec::new();
                render::verdict_text(&mut why, &index, &v)?;
                for line in String::from_utf8_lossy(&why).lines().skip(1) {
                    writeln!(out, "      {line}")?;
                }
            }
        }
    }
    writeln!(
        out,
        "\nWhy the ingress allow alone was not enough: under a namespace-wide default deny, every pod's egress is\n\
         isolated too. A connection needs the client's egress AND the server's ingress to admit it, so the mariadb\n\
         ingress rule only worked once example-frontend also got an egress rule (DNS had its own egress rule)."
    )?;
    drop(sb);
    writeln!(
        out,
        "\nSandbox removed. {}",
        if failures == 0 {
            "Every probe behaved as the policies say."
        } else {
            "Some probes did not behave as expected."
        }
    )?;
    Ok(if failures == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
