//! `palisade sandbox observe`: the flow records of a sandbox's agents (`/v1/flows` on each node's metrics port,
//! reached from inside the node's namespace), as text lines or NDJSON.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use palisade_observe::record::format_time;
use palisade_observe::{FlowRecord, Verdict};

/// Where the sandbox's agents serve HTTP inside their node namespace.
pub const AGENT_ADDR: &str = "127.0.0.1:9464";

/// The §4.7 line: `02:33:41.118 node-0 DENIED ingress shop/web → shop/db TCP/5432 ×17 — isolated by shop/db-ingress; ...`.
pub fn text_line(r: &FlowRecord) -> String {
    let stamp = format_time(r.time);
    let clock = stamp.split_once('T').map_or(stamp.as_str(), |(_, t)| t.trim_end_matches('Z'));
    let verdict = match r.verdict {
        Some(Verdict::Allowed) => "ALLOWED",
        Some(Verdict::Denied) => "DENIED",
        Some(Verdict::WouldDeny) => "WOULD-DENY",
        Some(Verdict::WouldAllow) => "WOULD-ALLOW",
        None => "LOGGED",
    };
    let end = |e: &palisade_observe::Endpoint| match (&e.namespace, &e.pod) {
        (Some(ns), Some(pod)) => format!("{ns}/{pod}"),
        _ => e.ip.to_string(),
    };
    let mut line = format!("{clock} {} {verdict}", r.node.as_deref().unwrap_or("?"));
    if let Some(d) = r.direction {
        line.push_str(match d {
            palisade_observe::Direction::Ingress => " ingress",
            palisade_observe::Direction::Egress => " egress",
        });
    }
    line.push_str(&format!(" {} → {} {}", end(&r.src), end(&r.dst), r.protocol));
    if let Some(p) = r.dst.port {
        line.push_str(&format!("/{p}"));
    }
    if r.count > 1 {
        line.push_str(&format!(" ×{}", r.count));
    }
    let mut why: Vec<String> = Vec::new();
    if let Some(by) = r.isolated_by.as_ref().filter(|b| !b.is_empty()) {
        why.push(format!("isolated by {}", by.join(", ")));
    }
    if let Some(a) = &r.admitted_by {
        why.push(format!("the engine admits it by {} {}", a.policy, a.path));
    }
    for m in r.near_misses.iter().flatten() {
        let detail = m.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
        why.push(format!("near miss {} {}{detail}", m.policy, m.path));
    }
    if why.is_empty()
        && let Some(e) = &r.explanation
    {
        why.push(e.lines().next().unwrap_or_default().to_owned());
    }
    if r.kernel_agrees == Some(false) {
        why.push("THE ENGINE DISAGREES with the kernel".to_owned());
    }
    if !why.is_empty() {
        line.push_str(" — ");
        line.push_str(&why.join("; "));
    }
    line
}

/// (internal, run inside a node namespace) GETs `path` from the agent at `addr` and copies the body to stdout
/// line by line, flushing each (a followed response streams until the agent or the reader goes).
pub fn agent_get(addr: &str, path: &str, out: &mut impl Write) -> Result<()> {
    let mut s = TcpStream::connect(addr).with_context(|| format!("connecting to the agent at {addr}"))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status)?;
    let code = status.split_whitespace().nth(1).unwrap_or("");
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
    }
    if code != "200" {
        let mut body = String::new();
        r.take(4096).read_to_string(&mut body)?;
        bail!("the agent answered {}: {}", status.trim(), body.trim());
    }
    for line in r.lines() {
        let line = line?;
        if !line.is_empty() {
            writeln!(out, "{line}")?;
            out.flush()?;
        }
    }
    Ok(())
}

/// The sandbox's node namespaces that exist: node-0, node-1, ...
fn node_namespaces(sb: &palisade_sandbox::Sandbox) -> Vec<String> {
    (0..).map(|i| sb.node_ns_of(i)).take_while(|ns| std::path::Path::new("/var/run/netns").join(ns).exists()).collect()
}

/// Prints the flow records of every node's agent: those kept so far (in time order), then with `follow`
/// new ones as they come.
pub fn sandbox_observe(sb: &palisade_sandbox::Sandbox, follow: bool, json: bool, out: &mut impl Write) -> Result<()> {
    if !sb.agent_mode() {
        bail!("the flow log is served by node agents: start the sandbox with --nodes N");
    }
    let helper = crate::sandbox::helper()?;
    let nodes = node_namespaces(sb);
    let (tx, rx) = mpsc::channel::<(usize, Result<FlowRecord, String>)>();
    let mut children = Vec::new();
    for (i, ns) in nodes.iter().enumerate() {
        let path = if follow { "/v1/flows?since=0&follow=1" } else { "/v1/flows" };
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(&helper)
            .args(["sandbox", "agent-get", "--addr", AGENT_ADDR, path])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("reading node {i}'s agent"))?;
        let stdout = child.stdout.take().context("the helper's output")?;
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let parsed = serde_json::from_str::<FlowRecord>(&line).map_err(|e| format!("{e}: {line}"));
                if tx.send((i, parsed)).is_err() {
                    break;
                }
            }
        });
        children.push(child);
    }
    drop(tx);
    let write = |r: &FlowRecord, out: &mut dyn Write| -> Result<()> {
        if json {
            writeln!(out, "{}", serde_json::to_string(r)?)?;
        } else {
            writeln!(out, "{}", text_line(r))?;
        }
        out.flush()?;
        Ok(())
    };
    let mut kept: Vec<FlowRecord> = Vec::new();
    let mut bad = 0usize;
    let mut streaming = false;
    loop {
        // Records already kept arrive at once: gather them for a short while and print them in time order.
        let wait = if streaming { Duration::from_secs(3600) } else { Duration::from_millis(500) };
        match rx.recv_timeout(wait) {
            Ok((_, Ok(r))) if streaming => write(&r, out)?,
            Ok((_, Ok(r))) => kept.push(r),
            Ok((i, Err(e))) => {
                bad += 1;
                eprintln!("node {i}: not a flow record: {e}");
            }
            Err(mpsc::RecvTimeoutError::Timeout) if !streaming => {
                kept.sort_by_key(|r| r.time);
                for r in kept.drain(..) {
                    write(&r, out)?;
                }
                if !follow {
                    break;
                }
                streaming = true;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                kept.sort_by_key(|r| r.time);
                for r in kept.drain(..) {
                    write(&r, out)?;
                }
                break;
            }
        }
    }
    for mut c in children {
        let _ = c.kill();
        let out = c.wait_with_output();
        if let Ok(o) = out
            && !o.status.success()
            && !follow
        {
            let err = String::from_utf8_lossy(&o.stderr);
            if !err.trim().is_empty() {
                eprintln!("{}", err.trim());
            }
        }
    }
    if bad > 0 {
        bail!("{bad} lines from the agents were not flow records");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_joined_deny_reads_as_one_line() {
        let json = r#"{"time":"2026-12-01T02:33:41.118Z","node":"node-0","verdict":"denied","direction":"ingress",
 "src":{"ip":"10.244.1.5","port":41234,"namespace":"shop","pod":"web"},
 "dst":{"ip":"10.244.2.7","port":5432,"namespace":"shop","pod":"db"},
 "protocol":"TCP","family":"IPv4","kernel":{"kind":"D","id":"9c1e04aa","chain":"ing_shop__db"},
 "isolatedBy":["shop/db-ingress"],"nearMisses":[{"kind":"portDidNotMatch","policy":"shop/db-ingress","path":"spec.ingress[0].from[0]","detail":"the port is not in spec.ingress[0].ports"}],
 "kernelAgrees":true,"count":17,"firstSeen":"2026-12-01T02:33:41.118Z","lastSeen":"2026-12-01T02:33:45.001Z"}"#;
        let r: FlowRecord = serde_json::from_str(json).unwrap();
        assert_eq!(
            text_line(&r),
            "02:33:41.118 node-0 DENIED ingress shop/web → shop/db TCP/5432 ×17 — isolated by shop/db-ingress; near miss shop/db-ingress spec.ingress[0].from[0]: the port is not in spec.ingress[0].ports"
        );
    }
}
