//! Palisade's nftables dataplane: the engine's decisions compiled into one `inet` table and applied as one
//! transaction through `nft -f -`.
//!
//! Invariant: everything external (the nft binary, conntrack) is reached through [`Nft`] and [`Conntrack`];
//! compiling never reads kernel state.

use std::io::Write;
use std::process::{Command, Stdio};

pub mod compile;
pub mod delta;
pub mod incremental;
pub mod session;

use std::net::IpAddr;

pub use compile::{Node, Ruleset, compile};
pub use delta::{Delta, delta};
pub use incremental::NodeCompiler;
pub use session::NftSession;

/// A failure talking to the kernel.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("running {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed: {stderr}")]
    Failed { program: String, stderr: String },
    /// A long-lived session broke mid-transaction: whether the kernel took the transaction is unknown.
    #[error("nft session: {0}")]
    Session(String),
}

/// The seam to nftables: apply one transaction (nft script text).
pub trait Nft {
    fn apply(&mut self, script: &str) -> Result<(), NftError>;
}

/// The seam to conntrack: forget tracked flows so that policy applies to their next packet.
pub trait Conntrack {
    /// Forgets every flow.
    fn flush(&mut self) -> Result<(), NftError>;
    /// Forgets the flows from `src` (when given) to `dst` (when given).
    fn delete(&mut self, src: Option<IpAddr>, dst: Option<IpAddr>) -> Result<(), NftError>;

    /// The tracked flows as (original source, original destination), when they can be read cheaply; `None`
    /// makes every deletion go ahead.
    fn flows(&mut self) -> Option<Vec<(IpAddr, IpAddr)>> {
        None
    }

    /// Forgets the flows of several filters (implementations may run them at once).
    fn delete_all(&mut self, filters: &[(Option<IpAddr>, Option<IpAddr>)]) -> Result<(), NftError> {
        for (s, d) in filters {
            self.delete(*s, *d)?;
        }
        Ok(())
    }
}

/// Runs a command, optionally inside a network namespace (`ip netns exec NS ...`), feeding it stdin.
pub(crate) fn run(netns: Option<&str>, program: &str, args: &[&str], stdin: &str) -> Result<(), NftError> {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, program]);
            c
        }
        None => Command::new(program),
    };
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| NftError::Spawn { program: program.to_owned(), source })?;
    if let Some(mut s) = child.stdin.take() {
        s.write_all(stdin.as_bytes()).map_err(|source| NftError::Spawn { program: program.to_owned(), source })?;
    }
    let out = child.wait_with_output().map_err(|source| NftError::Spawn { program: program.to_owned(), source })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NftError::Failed {
            program: program.to_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// The real nft binary, in a network namespace or the current one.
#[derive(Debug, Clone, Default)]
pub struct NftCommand {
    pub netns: Option<String>,
}

impl Nft for NftCommand {
    fn apply(&mut self, script: &str) -> Result<(), NftError> {
        run(self.netns.as_deref(), "nft", &["-f", "-"], script)
    }
}

/// The conntrack tool, flushing the table of one network namespace (the node's).
#[derive(Debug, Clone, Default)]
pub struct ConntrackCommand {
    pub netns: Option<String>,
    /// A process kept inside `netns`, through whose `/proc/PID/net` the table is read without a new process.
    anchor: std::sync::Arc<std::sync::Mutex<Option<Anchor>>>,
}

impl ConntrackCommand {
    pub fn new(netns: Option<String>) -> Self {
        ConntrackCommand { netns, anchor: Default::default() }
    }
}

/// `cat` waiting on a pipe inside a network namespace; it ends with its stdin (when this process ends).
#[derive(Debug)]
struct Anchor {
    child: std::process::Child,
}

impl Anchor {
    fn spawn(ns: &str) -> Option<Anchor> {
        use std::io::Read;
        // `ip netns exec` enters the namespace before it runs sh, which says so and becomes cat (same pid).
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "sh", "-c", "echo in; exec cat"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut said = [0u8; 3];
        let ok = child.stdout.as_mut().is_some_and(|o| o.read_exact(&mut said).is_ok() && &said == b"in\n");
        let anchor = Anchor { child };
        ok.then_some(anchor)
    }

    fn table(&self) -> Option<String> {
        std::fs::read_to_string(format!("/proc/{}/net/nf_conntrack", self.child.id())).ok()
    }
}

impl Drop for Anchor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ignore_none_found(r: Result<(), NftError>) -> Result<(), NftError> {
    match r {
        // Nothing to delete is not an error worth reporting.
        Err(NftError::Failed { stderr, .. }) if stderr.contains("0 flow entries") => Ok(()),
        other => other,
    }
}

/// Original-direction (source, destination) of each flow in `/proc/net/nf_conntrack` text.
pub fn parse_conntrack_table(text: &str) -> Vec<(IpAddr, IpAddr)> {
    text.lines()
        .filter_map(|l| {
            let mut src = None;
            let mut dst = None;
            for w in l.split_whitespace() {
                if src.is_none()
                    && let Some(v) = w.strip_prefix("src=")
                {
                    src = v.parse().ok();
                } else if dst.is_none()
                    && let Some(v) = w.strip_prefix("dst=")
                {
                    dst = v.parse().ok();
                }
            }
            Some((src?, dst?))
        })
        .collect()
}

impl Conntrack for ConntrackCommand {
    fn flows(&mut self) -> Option<Vec<(IpAddr, IpAddr)>> {
        // One read of the table (a file, or one process in another namespace) instead of one `conntrack -D`
        // per filter, most of which would find nothing.
        let text = match &self.netns {
            None => std::fs::read_to_string("/proc/net/nf_conntrack").ok()?,
            Some(ns) => {
                let mut anchor = self.anchor.lock().ok()?;
                if let Some(text) = anchor.as_ref().and_then(Anchor::table) {
                    text
                } else {
                    // First use, or the anchor died: a new one (and one try).
                    *anchor = Anchor::spawn(ns);
                    anchor.as_ref()?.table()?
                }
            }
        };
        Some(parse_conntrack_table(&text))
    }

    fn flush(&mut self) -> Result<(), NftError> {
        ignore_none_found(run(self.netns.as_deref(), "conntrack", &["-F"], ""))
    }

    fn delete_all(&mut self, filters: &[(Option<IpAddr>, Option<IpAddr>)]) -> Result<(), NftError> {
        // Each deletion is a process; run up to 16 at once.
        for chunk in filters.chunks(16) {
            let results: Vec<Result<(), NftError>> = std::thread::scope(|scope| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|&(s, d)| {
                        let mut one = self.clone();
                        scope.spawn(move || one.delete(s, d))
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap_or(Ok(()))).collect()
            });
            results.into_iter().collect::<Result<Vec<_>, _>>()?;
        }
        Ok(())
    }

    fn delete(&mut self, src: Option<IpAddr>, dst: Option<IpAddr>) -> Result<(), NftError> {
        let v6 = src.or(dst).is_some_and(|a| a.is_ipv6());
        let (s, d) = (src.map(|a| a.to_string()), dst.map(|a| a.to_string()));
        let mut args = vec!["-D", "-f", if v6 { "ipv6" } else { "ipv4" }];
        if let Some(s) = &s {
            args.extend(["-s", s]);
        }
        if let Some(d) = &d {
            args.extend(["-d", d]);
        }
        ignore_none_found(run(self.netns.as_deref(), "conntrack", &args, ""))
    }
}

/// A recording fake of both seams, for tests.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    pub scripts: Vec<String>,
    pub flushes: usize,
    pub deletes: Vec<(Option<IpAddr>, Option<IpAddr>)>,
    /// The tracked flows the fake reports (`None`: unknown, every deletion goes ahead).
    pub flows: Option<Vec<(IpAddr, IpAddr)>>,
}

impl Nft for Recorder {
    fn apply(&mut self, script: &str) -> Result<(), NftError> {
        self.scripts.push(script.to_owned());
        Ok(())
    }
}

impl Conntrack for Recorder {
    fn flows(&mut self) -> Option<Vec<(IpAddr, IpAddr)>> {
        self.flows.clone()
    }

    fn flush(&mut self) -> Result<(), NftError> {
        self.flushes += 1;
        Ok(())
    }

    fn delete(&mut self, src: Option<IpAddr>, dst: Option<IpAddr>) -> Result<(), NftError> {
        self.deletes.push((src, dst));
        Ok(())
    }
}

/// What one sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// A full atomic replace of the table (start, resync) rather than a delta.
    pub full: bool,
    /// Statements sent to the kernel (0: nothing changed).
    pub statements: usize,
    /// Conntrack deletions issued.
    pub conntrack_deletes: usize,
    /// Time spent applying the transaction, and deleting conntrack entries.
    pub nft_time: std::time::Duration,
    pub conntrack_time: std::time::Duration,
}

/// A backend that enforces a compiled ruleset (nftables today; eBPF could be another).
pub trait Dataplane {
    /// Makes the kernel enforce `desired` with the smallest change from what it enforces now.
    fn sync(&mut self, desired: &Ruleset) -> Result<SyncReport, NftError>;
    /// Replaces everything atomically, whatever the kernel holds (start and periodic resync).
    fn resync(&mut self, desired: &Ruleset) -> Result<SyncReport, NftError>;
    /// Applies a transaction computed from the pieces that changed ([`NodeCompiler::update`]), then forgets
    /// the flows it may narrow.
    fn apply_delta(&mut self, delta: &Delta) -> Result<SyncReport, NftError>;
}

/// The nftables dataplane: a full atomic replace first, then incremental transactions; after a change that
/// may narrow what is allowed, the conntrack entries of the affected pods are deleted.
#[derive(Debug)]
pub struct NftDataplane<N, C> {
    pub nft: N,
    pub conntrack: C,
    /// Keep established connections when policy narrows (the behaviour of older enforcers).
    pub keep_established: bool,
    applied: Option<Ruleset>,
}

impl<N: Nft, C: Conntrack> NftDataplane<N, C> {
    pub fn new(nft: N, conntrack: C) -> Self {
        NftDataplane { nft, conntrack, keep_established: false, applied: None }
    }

    /// Declares what the kernel already enforces (e.g. a table left by a previous run), so the next sync is a delta.
    pub fn assume_applied(&mut self, ruleset: Ruleset) {
        self.applied = Some(ruleset);
    }

    pub fn applied(&self) -> Option<&Ruleset> {
        self.applied.as_ref()
    }

    /// After a failure that leaves the kernel's state unknown, the next sync is a full replace.
    fn forget_if_unknown(&mut self, e: &NftError) {
        if matches!(e, NftError::Session(_)) {
            self.applied = None;
        }
    }
}

impl<N: Nft, C: Conntrack> NftDataplane<N, C> {
    /// Applies one transaction and forgets the flows it may narrow.
    fn apply_transaction(&mut self, d: &Delta) -> Result<SyncReport, NftError> {
        if d.is_empty() {
            return Ok(SyncReport::default());
        }
        let t = std::time::Instant::now();
        self.nft.apply(&d.script).inspect_err(|e| self.forget_if_unknown(e))?;
        let mut report =
            SyncReport { full: false, statements: d.statements, nft_time: t.elapsed(), ..SyncReport::default() };
        if !self.keep_established {
            // Over-deleting is harmless: a flow still allowed is re-admitted on its next packet.
            let mut filters: Vec<(Option<IpAddr>, Option<IpAddr>)> = Vec::new();
            filters.extend(d.narrowed_ingress.iter().map(|ip| (None, Some(*ip))));
            filters.extend(d.narrowed_egress.iter().map(|ip| (Some(*ip), None)));
            for ip in &d.narrowed_peers {
                filters.push((Some(*ip), None));
                filters.push((None, Some(*ip)));
            }
            filters.sort();
            filters.dedup();
            let t = std::time::Instant::now();
            if let Some(flows) = self.conntrack.flows() {
                // Only the filters that match a tracked flow need a deletion.
                let srcs: std::collections::HashSet<IpAddr> = flows.iter().map(|f| f.0).collect();
                let dsts: std::collections::HashSet<IpAddr> = flows.iter().map(|f| f.1).collect();
                let pairs: std::collections::HashSet<(IpAddr, IpAddr)> = flows.into_iter().collect();
                filters.retain(|f| match *f {
                    (Some(s), None) => srcs.contains(&s),
                    (None, Some(d)) => dsts.contains(&d),
                    (Some(s), Some(d)) => pairs.contains(&(s, d)),
                    (None, None) => true,
                });
            }
            self.conntrack.delete_all(&filters)?;
            report.conntrack_time = t.elapsed();
            report.conntrack_deletes = filters.len();
        }
        Ok(report)
    }
}

impl<N: Nft, C: Conntrack> Dataplane for NftDataplane<N, C> {
    fn sync(&mut self, desired: &Ruleset) -> Result<SyncReport, NftError> {
        let Some(old) = &self.applied else { return self.resync(desired) };
        let d = delta(old, desired);
        let report = self.apply_transaction(&d)?;
        self.applied = Some(desired.clone());
        Ok(report)
    }

    fn apply_delta(&mut self, delta: &Delta) -> Result<SyncReport, NftError> {
        // The caller's compiler knows the table now; a later `sync` starts with a full replace.
        self.applied = None;
        self.apply_transaction(delta)
    }

    fn resync(&mut self, desired: &Ruleset) -> Result<SyncReport, NftError> {
        let script = desired.render_replace();
        let t = std::time::Instant::now();
        self.nft.apply(&script).inspect_err(|e| self.forget_if_unknown(e))?;
        let nft_time = t.elapsed();
        // The first replace of a process takes over what a previous run left: the flows established under
        // it were admitted by those rules, so they are kept. A later replace whose rules differ from what
        // this process applied (a resync that found drift) forgets every flow so the new rules judge them.
        let narrowed = self.applied.as_ref().is_some_and(|a| a != desired);
        self.applied = Some(desired.clone());
        let mut report =
            SyncReport { full: true, statements: script.lines().count(), nft_time, ..SyncReport::default() };
        if narrowed && !self.keep_established {
            self.conntrack.flush()?;
            report.conntrack_deletes = 1;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conntrack_table_lines_give_the_original_direction() {
        let text = "ipv4     2 tcp      6 431999 ESTABLISHED src=10.244.9.1 dst=10.244.9.2 sport=40000 dport=80 src=10.244.9.2 dst=10.244.9.1 sport=80 dport=40000 [ASSURED] mark=0 zone=0 use=2\n\
                    ipv6     10 udp      17 29 src=fd00::1 dst=fd00::2 sport=5000 dport=53 [UNREPLIED] src=fd00::2 dst=fd00::1 sport=53 dport=5000 mark=0 zone=0 use=2\n";
        let flows = parse_conntrack_table(text);
        assert_eq!(
            flows,
            [
                ("10.244.9.1".parse().unwrap(), "10.244.9.2".parse().unwrap()),
                ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap())
            ]
        );
    }
}
