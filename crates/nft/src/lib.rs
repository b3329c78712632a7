//! Palisade's nftables dataplane: the engine's decisions compiled into one `inet` table and applied as one
//! transaction through `nft -f -`.
//!
//! Invariant: everything external (the nft binary, conntrack) is reached through [`Nft`] and [`Conntrack`];
//! compiling never reads kernel state.

use std::io::Write;
use std::process::{Command, Stdio};

pub mod compile;

pub use compile::{Node, Ruleset, compile};

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
}

/// The seam to nftables: apply one transaction (nft script text).
pub trait Nft {
    fn apply(&mut self, script: &str) -> Result<(), NftError>;
}

/// The seam to conntrack: forget tracked flows so that policy applies to their next packet.
pub trait Conntrack {
    fn flush(&mut self) -> Result<(), NftError>;
}

/// Runs a command, optionally inside a network namespace (`ip netns exec NS ...`), feeding it stdin.
fn run(netns: Option<&str>, program: &str, args: &[&str], stdin: &str) -> Result<(), NftError> {
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
}

impl Conntrack for ConntrackCommand {
    fn flush(&mut self) -> Result<(), NftError> {
        match run(self.netns.as_deref(), "conntrack", &["-F"], "") {
            // An empty table is not an error worth reporting.
            Err(NftError::Failed { stderr, .. }) if stderr.contains("0 flow entries") => Ok(()),
            other => other,
        }
    }
}

/// A recording fake of both seams, for tests.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    pub scripts: Vec<String>,
    pub flushes: usize,
}

impl Nft for Recorder {
    fn apply(&mut self, script: &str) -> Result<(), NftError> {
        self.scripts.push(script.to_owned());
        Ok(())
    }
}

impl Conntrack for Recorder {
    fn flush(&mut self) -> Result<(), NftError> {
        self.flushes += 1;
        Ok(())
    }
}

/// A backend that enforces a compiled ruleset (nftables today; eBPF could be another).
pub trait Dataplane {
    /// Makes the kernel enforce `desired`; `narrowed` says some connection allowed before no longer is.
    fn sync(&mut self, desired: &Ruleset, narrowed: bool) -> Result<(), NftError>;
}

/// The nftables dataplane: full atomic replace of the table, then conntrack cleanup when policy narrowed.
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
}

impl<N: Nft, C: Conntrack> Dataplane for NftDataplane<N, C> {
    fn sync(&mut self, desired: &Ruleset, narrowed: bool) -> Result<(), NftError> {
        if self.applied.as_ref() == Some(desired) {
            return Ok(());
        }
        self.nft.apply(&desired.render_replace())?;
        self.applied = Some(desired.clone());
        // Conntrack would let flows the new policy refuses go on for days; deleting entries of still-allowed
        // flows is harmless (their next packet is re-evaluated and re-admitted).
        if narrowed && !self.keep_established {
            self.conntrack.flush()?;
        }
        Ok(())
    }
}
