//! One long-lived `nft -i` process that applies many transactions over one netlink socket.
//!
//! Why not a process per transaction: when a netfilter netlink socket closes, the kernel (6.x,
//! `nft_rcv_nl_event`) first waits for the destruction of everything earlier transactions deleted, an RCU
//! grace period of 15–25 ms here. A new `nft -f` per change pays that wait on every change that deletes a set
//! element, a rule or a chain, although its commit took about a millisecond. A session keeps its socket, so
//! that wait happens in the background.
//!
//! Protocol: the script is written to a private file and included (`include "FILE"` runs the file as one
//! transaction, all or nothing); a `describe` command after it prints a known line, which marks the end of the
//! transaction's output. nft's stderr goes into the same pipe as its stdout, so an error always comes before
//! the marker. If `nft -i` is not usable (a build without its CLI), every transaction falls back to `nft -f -`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use crate::{Nft, NftError};

const MARKER_COMMAND: &str = "describe tcp dport";
/// The start of what `describe tcp dport` prints (nft 0.9 to 1.1).
const MARKER_LINE: &str = "payload expression, datatype inet_service";

/// The nft binary as one interactive session, in a network namespace or the current one.
#[derive(Debug)]
pub struct NftSession {
    netns: Option<String>,
    live: Option<Live>,
    scratch: Option<tempfile::NamedTempFile>,
    /// How long one transaction may take before the session is declared dead.
    pub timeout: Duration,
    /// `nft -i` could not be used: every transaction runs `nft -f -`.
    fallback: bool,
    /// Where the transaction file lives (the system's temporary directory unless set).
    scratch_dir: Option<std::path::PathBuf>,
}

#[derive(Debug)]
struct Live {
    child: Child,
    stdin: ChildStdin,
    /// In a mutex only so that a session can be shared between threads (it is used through `&mut`).
    lines: Mutex<Receiver<String>>,
}

impl Drop for Live {
    fn drop(&mut self) {
        // The session holds no transaction between calls, so ending it at once loses nothing.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn session_error(what: impl Into<String>) -> NftError {
    NftError::Session(what.into())
}

impl NftSession {
    pub fn new(netns: Option<String>) -> Self {
        NftSession {
            netns,
            live: None,
            scratch: None,
            timeout: Duration::from_secs(60),
            fallback: false,
            scratch_dir: None,
        }
    }

    /// Keeps the transaction file in `dir` instead of the system's temporary directory.
    pub fn scratch_in(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.scratch_dir = Some(dir.into());
        self
    }

    /// Whether transactions go through a live `nft -i` (false before the first one, or after a fallback).
    pub fn is_interactive(&self) -> bool {
        self.live.is_some()
    }

    /// The process id of the session's nft (a process inside the session's network namespace).
    pub fn pid(&self) -> Option<u32> {
        self.live.as_ref().map(|l| l.child.id())
    }

    fn spawn(&self) -> Result<Live, NftError> {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "nft", "-i"]);
                c
            }
            None => {
                let mut c = Command::new("nft");
                c.arg("-i");
                c
            }
        };
        let spawn_err = |source| NftError::Spawn { program: "nft -i".into(), source };
        let (reader, writer) = std::io::pipe().map_err(spawn_err)?;
        let writer2 = writer.try_clone().map_err(spawn_err)?;
        let mut child = cmd.stdin(Stdio::piped()).stdout(writer).stderr(writer2).spawn().map_err(spawn_err)?;
        drop(cmd);
        let stdin = child.stdin.take().ok_or_else(|| session_error("nft -i has no stdin"))?;
        let (tx, lines) = mpsc::channel();
        std::thread::Builder::new()
            .name("nft-session".into())
            .spawn(move || {
                for line in BufReader::new(reader).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            })
            .map_err(spawn_err)?;
        let mut live = Live { child, stdin, lines: Mutex::new(lines) };
        // The session is usable once it answers the marker.
        live.round_trip(None, Duration::from_secs(5))?;
        Ok(live)
    }

    fn scratch_path(&mut self) -> Result<std::path::PathBuf, NftError> {
        if self.scratch.is_none() {
            let mut builder = tempfile::Builder::new();
            builder.prefix("palisade-nft-").suffix(".nft");
            let file = match &self.scratch_dir {
                Some(dir) => builder.tempfile_in(dir),
                None => builder.tempfile(),
            }
            .map_err(|source| NftError::Spawn { program: "nft -i".into(), source })?;
            self.scratch = Some(file);
        }
        let path = self.scratch.as_ref().map(|f| f.path().to_owned()).unwrap_or_default();
        if path.to_string_lossy().contains(['"', '\n']) {
            return Err(session_error(format!("temporary file path {path:?} cannot be quoted for nft")));
        }
        Ok(path)
    }
}

impl Live {
    /// Sends `include "FILE"` (when given) and the marker; returns what nft printed before the marker.
    fn round_trip(&mut self, include: Option<&std::path::Path>, timeout: Duration) -> Result<Vec<String>, NftError> {
        let mut command = String::new();
        if let Some(path) = include {
            command.push_str(&format!("include \"{}\"\n", path.display()));
        }
        command.push_str(MARKER_COMMAND);
        command.push('\n');
        self.stdin
            .write_all(command.as_bytes())
            .and_then(|()| self.stdin.flush())
            .map_err(|e| session_error(format!("writing to nft -i: {e}")))?;
        let deadline = std::time::Instant::now() + timeout;
        let mut printed = Vec::new();
        let lines = self.lines.get_mut().map_err(|_| session_error("nft -i reader poisoned"))?;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.contains(MARKER_LINE) => return Ok(printed),
                Ok(line) => printed.push(line),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(session_error(format!("nft -i did not answer within {timeout:?}")));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let text = printed.join("\n");
                    return Err(session_error(format!("nft -i exited: {}", text.trim())));
                }
            }
        }
    }
}

impl NftSession {
    /// One `nft -f -` process for this transaction, and for every later one.
    fn fall_back(&mut self, script: &str) -> Result<(), NftError> {
        self.fallback = true;
        self.live = None;
        crate::run(self.netns.as_deref(), "nft", &["-f", "-"], script)
    }
}

impl Nft for NftSession {
    fn apply(&mut self, script: &str) -> Result<(), NftError> {
        if self.fallback {
            return self.fall_back(script);
        }
        if self.live.is_none() {
            match self.spawn() {
                Ok(live) => self.live = Some(live),
                // No usable interactive mode.
                Err(_) => return self.fall_back(script),
            }
        }
        let written = self.scratch_path().and_then(|path| {
            std::fs::write(&path, script)
                .map(|()| path)
                .map_err(|source| NftError::Spawn { program: "nft -i".into(), source })
        });
        let Ok(path) = written else {
            // Nowhere to write a transaction (a read-only filesystem without a writable temporary directory):
            // the script goes on a process's stdin instead.
            return self.fall_back(script);
        };
        let timeout = self.timeout;
        let Some(live) = self.live.as_mut() else { return Err(session_error("no nft session")) };
        match live.round_trip(Some(&path), timeout) {
            Ok(printed) => {
                // nft reports every failure with "Error:"; anything else it prints (a prompt) is not one.
                if printed.iter().any(|l| l.contains("Error:")) {
                    Err(NftError::Failed { program: "nft".into(), stderr: printed.join("\n").trim().to_owned() })
                } else {
                    Ok(())
                }
            }
            Err(e) => {
                // The outcome is unknown; the next transaction starts a new session.
                self.live = None;
                Err(e)
            }
        }
    }
}
