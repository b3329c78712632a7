//! Server side of `kubectl exec` over WebSocket (subprotocol `v5.channel.k8s.io`): query parsing, the upgrade
//! (refusing anything but v5 with a JSON Status), and pumping a local process's stdio, or a pseudo-terminal,
//! through the channel-multiplexed frames until it exits and its status goes out on channel 3.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, watch};

/// The only subprotocol kubectl (≥ 1.30) offers for exec; the server must echo it in the 101 response.
pub const PROTOCOL: &str = "v5.channel.k8s.io";

/// Channel byte of client → server stdin data.
pub const CHANNEL_STDIN: u8 = 0;
/// Channel byte of server → client stdout data (also the merged pty output in tty mode).
pub const CHANNEL_STDOUT: u8 = 1;
/// Channel byte of server → client stderr data.
pub const CHANNEL_STDERR: u8 = 2;
/// Channel byte of the final server → client Status message.
pub const CHANNEL_STATUS: u8 = 3;
/// Channel byte of client → server terminal resize messages (`{"Width":..,"Height":..}`).
pub const CHANNEL_RESIZE: u8 = 4;
/// v5 control prefix: `[CHANNEL_CLOSE, n]` means the client closed its side of channel `n`.
pub const CHANNEL_CLOSE: u8 = 255;

/// The message of the 400 Status sent when the client does not speak v5 (or retries with SPDY).
pub const REFUSAL_MESSAGE: &str = "exec needs the WebSocket protocol v5.channel.k8s.io (kubectl ≥ 1.30 default)";

/// Largest payload read from the process per frame: bounds memory per stream.
const CHUNK: usize = 32 * 1024;
/// Frames queued between the output pumps and the WebSocket writer; a full queue stops reading the process,
/// so a slow client pushes back on the process instead of growing a buffer.
const OUT_QUEUE: usize = 4;
/// After the process exits, output still arriving is forwarded until this long passes without any: a background
/// grandchild holding the pipe or pty open must not keep the session open forever.
const DRAIN_IDLE: Duration = Duration::from_millis(250);
/// How long to wait for the client's Close reply after sending ours.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// Largest WebSocket message accepted from the client (see [`upgrade`]).
const MAX_CLIENT_MESSAGE: usize = 1024 * 1024;
/// How long a tty exec waits for the client's first resize frame before starting the command.
const FIRST_RESIZE_WAIT: Duration = Duration::from_secs(1);
/// Client messages buffered while waiting for that frame.
const EARLY_MESSAGES: usize = 16;
/// ASCII EOT: what a terminal sends for "end of input" (VEOF) in canonical mode.
const EOT: u8 = 0x04;

/// A bad exec request (query string); [`ExecError::status`] is the 400 Status to answer with.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The query string could not be decoded.
    #[error("invalid query string: {0}")]
    Query(String),
    /// No `command=` parameter.
    #[error("you must specify at least one command for the container")]
    NoCommand,
    /// None of stdin, stdout, stderr was requested.
    #[error("you must specify at least 1 of stdin, stdout, stderr")]
    NoStreams,
}

impl ExecError {
    /// The JSON Status (400 BadRequest) describing this error.
    pub fn status(&self) -> Value {
        bad_request_status(&self.to_string())
    }
}

/// What the client asked for in the exec query string (the apiserver's `PodExecOptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOptions {
    /// Program and arguments, one `command=` parameter each, in order.
    pub command: Vec<String>,
    /// Target container; `None` when absent or empty (the caller picks the default or refuses).
    pub container: Option<String>,
    /// Forward channel 0 to the process's stdin.
    pub stdin: bool,
    /// Send the process's stdout on channel 1.
    pub stdout: bool,
    /// Send the process's stderr on channel 2 (always false with `tty`, as the pty merges it into stdout).
    pub stderr: bool,
    /// Run on a pseudo-terminal.
    pub tty: bool,
}

impl ExecOptions {
    /// From the query string (repeated `command=` params, percent-decoded; `stdin=true` etc.).
    ///
    /// Booleans follow the apiserver: absent, `false` (any case) or `0` is false, anything else (even empty) is
    /// true, and the first occurrence wins. Unknown parameters are ignored.
    pub fn from_query(query: &str) -> Result<ExecOptions, ExecError> {
        let mut opts = ExecOptions::default();
        let mut flags: [Option<bool>; 4] = [None; 4];
        let mut container = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode_component(key)?;
            let value = decode_component(value)?;
            let slot = match key.as_str() {
                "command" => {
                    opts.command.push(value);
                    continue;
                }
                "container" => {
                    container.get_or_insert(value);
                    continue;
                }
                "stdin" => 0,
                "stdout" => 1,
                "stderr" => 2,
                "tty" => 3,
                _ => continue,
            };
            flags[slot].get_or_insert(!(value == "0" || value.eq_ignore_ascii_case("false")));
        }
        opts.container = container.filter(|c| !c.is_empty());
        [opts.stdin, opts.stdout, opts.stderr, opts.tty] = flags.map(|f| f.unwrap_or(false));
        // The kubelet drops stderr with a tty rather than failing: the terminal carries both streams.
        if opts.tty {
            opts.stderr = false;
        }
        if opts.command.is_empty() {
            return Err(ExecError::NoCommand);
        }
        if !(opts.stdin || opts.stdout || opts.stderr) {
            return Err(ExecError::NoStreams);
        }
        Ok(opts)
    }
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space, as in Go's `url.ParseQuery`).
fn decode_component(raw: &str) -> Result<String, ExecError> {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|e| ExecError::Query(format!("{raw:?} is not UTF-8 after percent-decoding: {e}")))
}

/// True when the request's `Sec-WebSocket-Protocol` header(s) list [`PROTOCOL`].
pub fn client_offers_protocol(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == PROTOCOL)
}

/// The 400 response for a request that is not a v5 WebSocket upgrade (including kubectl's SPDY retry).
pub fn refusal() -> Response {
    status_response(StatusCode::BAD_REQUEST, bad_request_status(REFUSAL_MESSAGE))
}

/// A JSON Status response with the given HTTP code.
fn status_response(code: StatusCode, status: Value) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], status.to_string()).into_response()
}

/// Answers an exec request: a v5 WebSocket upgrade running `command` with [`run`], or [`refusal`] when the request
/// is not a WebSocket upgrade offering [`PROTOCOL`]. Route both GET and POST here (kubectl's SPDY retry is a POST),
/// extracting `Result<WebSocketUpgrade, WebSocketUpgradeRejection>` so that non-upgrades reach this function.
pub fn upgrade(
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    command: Command,
    opts: ExecOptions,
) -> Response {
    let Ok(ws) = ws else {
        return refusal();
    };
    // Bounded client messages: kubectl's stdin frames are small (Go's 32 KiB copy buffer); axum's default is 64 MiB.
    let ws = ws.protocols([PROTOCOL]).max_message_size(MAX_CLIENT_MESSAGE).max_frame_size(MAX_CLIENT_MESSAGE);
    // axum would upgrade without echoing a protocol, which kubectl treats as a failed upgrade anyway.
    if ws.selected_protocol().is_none() {
        return refusal();
    }
    ws.on_upgrade(move |socket| run(socket, command, opts))
}

/// The status JSON kubectl expects on channel 3 for an exit code (0 → Success).
///
/// Non-zero codes give the kubelet's `NonZeroExitCode` Failure, from which kubectl takes its own exit code
/// (`details.causes[0].message`).
pub fn exit_status(code: i32) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("command terminated with non-zero exit code: exit status {code}"),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

/// A Failure Status with reason InternalError (code 500); kubectl prints `error: <message>` and exits 1.
pub fn internal_error_status(message: &str) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    })
}

/// A Failure Status with reason BadRequest (code 400).
fn bad_request_status(message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "BadRequest",
        "code": 400,
    })
}

/// The exit code a shell reports: the process's own code, or 128 + signal number when a signal killed it.
pub fn exit_code(status: ExitStatus) -> i32 {
    status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(1)
}

/// Sends `status` on channel 3 of an upgraded socket and closes it: for failures found after the upgrade
/// (e.g. the container stopped meanwhile).
pub async fn fail(socket: WebSocket, status: Value) {
    let (mut sink, mut stream) = socket.split();
    finish(&mut sink, &mut stream, Some(status)).await;
}

type WsSink = SplitSink<WebSocket, Message>;
type WsStream = SplitStream<WebSocket>;

/// Runs `command` (already built by the caller: program, args, env, cwd; this function sets stdio) and pumps it
/// over the WebSocket until it exits, then sends the status frame (Success, or NonZeroExitCode with the exit code in
/// details.causes, or a Failure with reason InternalError when it cannot start) and closes.
///
/// In tty mode the command is re-launched as `setsid --ctty --wait -- <program> <args>` (util-linux) so that the pty
/// becomes its controlling terminal; explicitly set env vars and the working directory are carried over, but not
/// `env_clear` nor uid/gid settings. When the client goes away, the process group of the command is killed.
pub async fn run(socket: WebSocket, command: Command, opts: ExecOptions) {
    let (mut sink, mut stream) = socket.split();
    let outcome = if opts.tty {
        run_tty(&mut sink, &mut stream, command, &opts).await
    } else {
        run_pipes(&mut sink, &mut stream, command, &opts).await
    };
    let status = match outcome {
        Outcome::Exited(status) => Some(exit_status(exit_code(status))),
        Outcome::Failed(message) => Some(internal_error_status(&message)),
        Outcome::Gone => None,
    };
    finish(&mut sink, &mut stream, status).await;
}

/// How a session ended.
enum Outcome {
    /// The process exited (the client may already be gone; sending the status then just fails).
    Exited(ExitStatus),
    /// It could not be started or waited for: an InternalError status with this message.
    Failed(String),
    /// The client disconnected: no status to send.
    Gone,
}

/// Sends the status (if any) and a Close frame, then waits briefly for the client's Close so the handshake ends
/// cleanly.
async fn finish(sink: &mut WsSink, stream: &mut WsStream, status: Option<Value>) {
    if let Some(status) = status {
        let mut frame = vec![CHANNEL_STATUS];
        frame.extend_from_slice(status.to_string().as_bytes());
        if sink.send(Message::binary(frame)).await.is_err() {
            return;
        }
    }
    // kubectl (gorilla/websocket) treats only a Normal Closure (1000) as end of stream; a Close frame without a
    // code reads as 1005 and makes it fail with "error reading from error stream".
    let close = CloseFrame { code: close_code::NORMAL, reason: Utf8Bytes::default() };
    if sink.send(Message::Close(Some(close))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_WAIT, async { while let Some(Ok(_)) = stream.next().await {} }).await;
}

/// The message for a process that could not be started, worded like the kubelet's.
fn start_failure(program: &OsStr, err: &io::Error) -> String {
    format!("Internal error occurred: error executing command in container: failed to start {program:?}: {err}")
}

/// Exec without a terminal: stdin/stdout/stderr as pipes (or null when not requested).
async fn run_pipes(sink: &mut WsSink, stream: &mut WsStream, mut command: Command, opts: &ExecOptions) -> Outcome {
    let piped_if = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
    command.stdin(piped_if(opts.stdin)).stdout(piped_if(opts.stdout)).stderr(piped_if(opts.stderr));
    // Own process group, so a disconnect can kill what the command started too; kill_on_drop covers the task
    // being dropped (server shutdown).
    command.process_group(0).kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return Outcome::Failed(start_failure(command.as_std().get_program(), &e)),
    };
    drop(command);
    let stdin = child.stdin.take().map_or(Stdin::None, Stdin::Pipe);
    let stdout = child.stdout.take().map(|s| (CHANNEL_STDOUT, Box::new(s) as Source));
    let stderr = child.stderr.take().map(|s| (CHANNEL_STDERR, Box::new(s) as Source));
    drive(sink, stream, &mut child, [stdout, stderr], Vec::new(), stdin, None).await
}

/// Exec on a pseudo-terminal: the pty's slave is the process's stdin/stdout/stderr and controlling terminal.
async fn run_tty(sink: &mut WsSink, stream: &mut WsStream, command: Command, opts: &ExecOptions) -> Outcome {
    let program = command.as_std().get_program().to_owned();
    // setsid reports a missing program only as exit 127 on the terminal; check first to fail like pipe mode.
    if let Err(e) = find_program(command.as_std()) {
        return Outcome::Failed(start_failure(&program, &e));
    }
    let (pty, slave) = match open_pty() {
        Ok(pair) => pair,
        Err(e) => return Outcome::Failed(format!("Internal error occurred: cannot allocate a pseudo-terminal: {e}")),
    };
    let mut early = Vec::new();
    if !await_first_resize(stream, &pty, &mut early).await {
        return Outcome::Gone;
    }
    let mut wrapped = match under_setsid(command.as_std()) {
        Ok(wrapped) => wrapped,
        Err(e) => return Outcome::Failed(start_failure(&program, &e)),
    };
    let stdio = (slave.try_clone(), slave.try_clone());
    let (Ok(out), Ok(err)) = stdio else {
        return Outcome::Failed("Internal error occurred: cannot duplicate the pseudo-terminal".to_owned());
    };
    wrapped.stdin(Stdio::from(slave)).stdout(Stdio::from(out)).stderr(Stdio::from(err)).kill_on_drop(true);
    let spawned = wrapped.spawn();
    // The Command holds the slave fds; the master reads EOF (EIO) only once every slave fd is closed.
    drop(wrapped);
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return Outcome::Failed(start_failure(&program, &e)),
    };
    let output = opts.stdout.then(|| (CHANNEL_STDOUT, Box::new(&pty) as Source));
    // The slave always exists as stdin; forward channel 0 only when asked.
    let stdin = if opts.stdin { Stdin::Pty(&pty) } else { Stdin::None };
    drive(sink, stream, &mut child, [output, None], early, stdin, Some(&pty)).await
}

/// Rebuilds `command` as `setsid --ctty --wait -- program args…`: setsid(2) then TIOCSCTTY on its stdin (the pty
/// slave), then exec; the process stays our direct child because a tokio child is never a group leader.
fn under_setsid(command: &std::process::Command) -> io::Result<Command> {
    let setsid = ["/usr/bin/setsid", "/bin/setsid"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "setsid (util-linux) is not installed"))?;
    let mut wrapped = Command::new(setsid);
    wrapped.arg("--ctty").arg("--wait").arg("--").arg(command.get_program()).args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        wrapped.current_dir(dir);
    }
    Ok(wrapped)
}

/// Resolves the program the way execvp will (PATH from the command's env if set there, else ours) and checks that
/// it is an executable file.
fn find_program(command: &std::process::Command) -> io::Result<PathBuf> {
    let program = Path::new(command.get_program());
    let executable = |p: &Path| p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    let not_found = || io::Error::from(rustix::io::Errno::NOENT);
    if program.as_os_str().is_empty() {
        return Err(not_found());
    }
    if program.as_os_str().as_encoded_bytes().contains(&b'/') {
        let full = match command.get_current_dir() {
            Some(dir) => dir.join(program),
            None => program.to_path_buf(),
        };
        return match executable(&full)? {
            true => Ok(full),
            false => Err(io::Error::from(rustix::io::Errno::ACCESS)),
        };
    }
    let path: Option<OsString> = command
        .get_envs()
        .find(|(k, _)| *k == "PATH")
        .map(|(_, v)| v.map(OsStr::to_owned))
        .unwrap_or_else(|| std::env::var_os("PATH"));
    let path = path.unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| executable(p).unwrap_or(false))
        .ok_or_else(not_found)
}

/// Opens a pty pair: the master (non-blocking, registered with tokio) and the slave.
fn open_pty() -> io::Result<(Pty, OwnedFd)> {
    use rustix::fs::{Mode, OFlags};
    use rustix::pty::OpenptFlags;
    let master = rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    rustix::pty::grantpt(&master)?;
    rustix::pty::unlockpt(&master)?;
    let name = rustix::pty::ptsname(&master, Vec::new())?;
    // NOCTTY: the slave must become the child's controlling terminal, never the server's.
    let slave = rustix::fs::open(name.as_c_str(), OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC, Mode::empty())?;
    let flags = rustix::fs::fcntl_getfl(&master)?;
    rustix::fs::fcntl_setfl(&master, flags | OFlags::NONBLOCK)?;
    // `AsyncFd::new` is deprecated (tokio#8587) because an arbitrary `AsRawFd` may swap or close its fd while
    // registered; an `OwnedFd` cannot, and the replacement `register` is `unsafe`, which this crate forbids.
    #[allow(deprecated)]
    let master = AsyncFd::new(master)?;
    Ok((Pty(master), slave))
}

/// The master side of a pty, readable and writable concurrently through `&Pty`.
struct Pty(AsyncFd<OwnedFd>);

impl Pty {
    fn resize(&self, width: u16, height: u16) -> io::Result<()> {
        let size = rustix::termios::Winsize { ws_row: height, ws_col: width, ws_xpixel: 0, ws_ypixel: 0 };
        // On the master it applies to the pair and signals SIGWINCH to the foreground process group.
        Ok(rustix::termios::tcsetwinsize(self.0.get_ref(), size)?)
    }
}

impl AsyncRead for &Pty {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let read = guard.try_io(|fd| match rustix::io::read(fd.get_ref(), &mut *unfilled) {
                // Linux reports "every slave fd closed" as EIO on the master: that is end of output.
                Err(rustix::io::Errno::IO) => Ok(0),
                other => other.map_err(io::Error::from),
            });
            match read {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for &Pty {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.0.poll_write_ready(cx))?;
            match guard.try_io(|fd| rustix::io::write(fd.get_ref(), data).map_err(io::Error::from)) {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Where channel 0 goes.
enum Stdin<'a> {
    None,
    Pipe(ChildStdin),
    Pty(&'a Pty),
}

impl Stdin<'_> {
    async fn write(&mut self, data: &[u8]) {
        let result = match self {
            Stdin::None => return,
            Stdin::Pipe(pipe) => pipe.write_all(data).await,
            Stdin::Pty(pty) => (&mut &**pty).write_all(data).await,
        };
        // The process closed its stdin or exited: later input has nowhere to go.
        if result.is_err() {
            *self = Stdin::None;
        }
    }

    /// The client closed channel 0: EOF for a pipe; for a terminal, the EOF character, as typing ^D would.
    async fn close(&mut self) {
        if let Stdin::Pty(pty) = self {
            let _ = (&mut &**pty).write_all(&[EOT]).await;
        }
        *self = Stdin::None;
    }
}

type Source<'a> = Box<dyn AsyncRead + Unpin + Send + 'a>;

/// Resolves once the flag is set (immediately if it already is).
async fn raised(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|set| *set).await;
}

/// Pumps the process's outputs to the socket and the socket's input to the process until the process has exited
/// and its output is drained, or the client is gone (then the process is killed).
async fn drive(
    sink: &mut WsSink,
    stream: &mut WsStream,
    child: &mut Child,
    outputs: [Option<(u8, Source<'_>)>; 2],
    early: Vec<Message>,
    stdin: Stdin<'_>,
    pty: Option<&Pty>,
) -> Outcome {
    let (gone_tx, _) = watch::channel(false);
    let (exited_tx, _) = watch::channel(false);
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(OUT_QUEUE);

    let process = async {
        let mut gone = gone_tx.subscribe();
        let status = tokio::select! {
            status = child.wait() => status,
            () = raised(&mut gone) => {
                kill(child);
                child.wait().await
            }
        };
        exited_tx.send_replace(true);
        status
    };
    let [first, second] = outputs.map(|output| {
        output
            .map(|(channel, source)| pump(source, channel, out_tx.clone(), gone_tx.subscribe(), exited_tx.subscribe()))
    });
    // Only the pumps hold senders now, so the writer sees the end of the queue when both have finished.
    drop(out_tx);
    let pumps = async {
        tokio::join!(
            async {
                if let Some(p) = first {
                    p.await
                }
            },
            async {
                if let Some(p) = second {
                    p.await
                }
            }
        );
    };
    let writer = async {
        let mut gone = gone_tx.subscribe();
        loop {
            let message = tokio::select! {
                message = out_rx.recv() => message,
                () = raised(&mut gone) => return,
            };
            let Some(message) = message else { return };
            let sent = tokio::select! {
                sent = sink.send(message) => sent.is_ok(),
                () = raised(&mut gone) => false,
            };
            if !sent {
                gone_tx.send_replace(true);
                return;
            }
        }
    };
    let core = async {
        let (status, (), ()) = tokio::join!(process, pumps, writer);
        status
    };
    let mut core = std::pin::pin!(core);
    let status = tokio::select! {
        status = &mut core => status,
        () = read_input(stream, early, stdin, pty) => {
            gone_tx.send_replace(true);
            core.await
        }
    };
    if *gone_tx.borrow() {
        return Outcome::Gone;
    }
    match status {
        Ok(status) => Outcome::Exited(status),
        Err(e) => Outcome::Failed(format!("Internal error occurred: error waiting for the command: {e}")),
    }
}

/// Kills the child's process group (its own group or session, see `run_*`), falling back to the child alone.
fn kill(child: &mut Child) {
    let group = child.id().and_then(|id| i32::try_from(id).ok()).and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = group {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.start_kill();
}

/// Copies one output of the process to the writer queue as frames on `channel`, in chunks of at most [`CHUNK`].
async fn pump(
    mut source: Source<'_>,
    channel: u8,
    queue: mpsc::Sender<Message>,
    mut gone: watch::Receiver<bool>,
    mut exited: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; CHUNK + 1];
    loop {
        let exited_now = *exited.borrow_and_update();
        let read = tokio::select! {
            read = source.read(&mut buf[1..]) => read,
            () = raised(&mut gone) => return,
            _ = exited.changed(), if !exited_now => continue,
            () = tokio::time::sleep(DRAIN_IDLE), if exited_now => return,
        };
        let n = match read {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf[0] = channel;
        let frame = Message::binary(buf[..=n].to_vec());
        tokio::select! {
            sent = queue.send(frame) => if sent.is_err() { return },
            () = raised(&mut gone) => return,
        }
    }
}

/// Reads client frames until the client closes or the connection fails: channel 0 to stdin, `0xFF 0x00` closes
/// stdin, channel 4 resizes the pty. Returns when the client is gone.
async fn read_input(stream: &mut WsStream, early: Vec<Message>, mut stdin: Stdin<'_>, pty: Option<&Pty>) {
    for message in early {
        if !handle_input(message, &mut stdin, pty).await {
            return;
        }
    }
    while let Some(Ok(message)) = stream.next().await {
        if !handle_input(message, &mut stdin, pty).await {
            return;
        }
    }
}

/// Acts on one client message; false when it is the client's Close.
async fn handle_input(message: Message, stdin: &mut Stdin<'_>, pty: Option<&Pty>) -> bool {
    let data = match message {
        Message::Binary(data) => data,
        Message::Close(_) => return false,
        // v5 is binary-only; pings are answered by the WebSocket layer.
        _ => return true,
    };
    match data.first() {
        Some(&CHANNEL_STDIN) => stdin.write(&data[1..]).await,
        Some(&CHANNEL_CLOSE) if data.get(1) == Some(&CHANNEL_STDIN) => stdin.close().await,
        Some(&CHANNEL_RESIZE) => {
            if let (Some(pty), Some((width, height))) = (pty, parse_resize(&data[1..])) {
                let _ = pty.resize(width, height);
            }
        }
        _ => {}
    }
    true
}

/// Before starting a tty command, waits (up to [`FIRST_RESIZE_WAIT`]) for kubectl's first resize frame and applies
/// it, so the command starts with the client's terminal size instead of 0x0. Other messages arriving meanwhile are
/// kept in `early` (at most [`EARLY_MESSAGES`]) to be handled after the start. False when the client went away.
async fn await_first_resize(stream: &mut WsStream, pty: &Pty, early: &mut Vec<Message>) -> bool {
    let deadline = tokio::time::Instant::now() + FIRST_RESIZE_WAIT;
    while early.len() < EARLY_MESSAGES {
        let Ok(next) = tokio::time::timeout_at(deadline, stream.next()).await else {
            return true;
        };
        match next {
            Some(Ok(Message::Binary(data))) if data.first() == Some(&CHANNEL_RESIZE) => {
                if let Some((width, height)) = parse_resize(&data[1..]) {
                    let _ = pty.resize(width, height);
                }
                return true;
            }
            Some(Ok(Message::Close(_)) | Err(_)) | None => return false,
            Some(Ok(message)) => early.push(message),
        }
    }
    true
}

/// `{"Width":101,"Height":33}` → (101, 33); `None` when malformed or out of range.
fn parse_resize(body: &[u8]) -> Option<(u16, u16)> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let dimension = |key: &str| value.get(key)?.as_u64().and_then(|v| u16::try_from(v).ok());
    Some((dimension("Width")?, dimension("Height")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::extract::RawQuery;
    use axum::routing::get;
    use std::net::SocketAddr;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    use tokio_tungstenite::tungstenite::{self, Message as TMessage};

    type Client = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

    async fn exec_handler(
        ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
        RawQuery(query): RawQuery,
    ) -> Response {
        let opts = match ExecOptions::from_query(query.as_deref().unwrap_or("")) {
            Ok(opts) => opts,
            Err(e) => return status_response(StatusCode::BAD_REQUEST, e.status()),
        };
        let mut command = Command::new(&opts.command[0]);
        command.args(&opts.command[1..]);
        upgrade(ws, command, opts)
    }

    async fn serve() -> SocketAddr {
        let app = Router::new().route("/exec", get(exec_handler).post(exec_handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    fn query(command: &[&str], flags: &str) -> String {
        let mut q: Vec<String> = command
            .iter()
            .map(|c| {
                format!("command={}", percent_encoding::utf8_percent_encode(c, percent_encoding::NON_ALPHANUMERIC))
            })
            .collect();
        q.push(flags.to_owned());
        q.join("&")
    }

    async fn connect(addr: SocketAddr, query: &str) -> Client {
        let mut request = format!("ws://{addr}/exec?{query}").into_client_request().expect("request");
        request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(PROTOCOL));
        let (client, response) = tokio_tungstenite::connect_async(request).await.expect("connect");
        assert_eq!(
            response.headers().get("Sec-WebSocket-Protocol").and_then(|v| v.to_str().ok()),
            Some(PROTOCOL),
            "the server must echo the subprotocol"
        );
        client
    }

    #[derive(Debug, Default)]
    struct Transcript {
        stdout: Vec<u8>,
        stderr: Vec<u8>,
        status: Option<Value>,
        max_frame: usize,
        closed: bool,
    }

    /// Reads frames until the server closes (with a timeout so a hang fails the test).
    async fn collect(client: &mut Client) -> Transcript {
        let mut t = Transcript::default();
        let read_all = async {
            while let Some(message) = client.next().await {
                match message.expect("frame") {
                    TMessage::Binary(data) => {
                        t.max_frame = t.max_frame.max(data.len());
                        match data.first() {
                            Some(&CHANNEL_STDOUT) => t.stdout.extend_from_slice(&data[1..]),
                            Some(&CHANNEL_STDERR) => t.stderr.extend_from_slice(&data[1..]),
                            Some(&CHANNEL_STATUS) => {
                                assert!(t.status.is_none(), "one status frame only");
                                t.status = Some(serde_json::from_slice(&data[1..]).expect("status json"));
                            }
                            other => panic!("unexpected channel {other:?}"),
                        }
                    }
                    TMessage::Close(frame) => {
                        let code = frame.map(|f| u16::from(f.code));
                        assert_eq!(code, Some(1000), "kubectl needs a Normal Closure");
                        t.closed = true;
                    }
                    other => panic!("unexpected message {other:?}"),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), read_all).await.expect("session timed out");
        t
    }

    async fn send(client: &mut Client, channel: u8, body: &[u8]) {
        let mut frame = vec![channel];
        frame.extend_from_slice(body);
        client.send(TMessage::binary(frame)).await.expect("send");
    }

    #[test]
    fn query_parsing() {
        let ok = |command: &[&str], container: Option<&str>, flags: [bool; 4]| ExecOptions {
            command: command.iter().map(|s| s.to_string()).collect(),
            container: container.map(str::to_owned),
            stdin: flags[0],
            stdout: flags[1],
            stderr: flags[2],
            tty: flags[3],
        };
        let cases: Vec<(&str, Result<ExecOptions, &str>)> = vec![
            (
                "command=sh&command=-c&command=exit+28&container=C&stderr=true&stdout=true",
                Ok(ok(&["sh", "-c", "exit 28"], Some("C"), [false, true, true, false])),
            ),
            (
                "command=echo&command=a%20b%2Bc%26d&stdin=true&stdout=true&tty=true&stderr=true",
                Ok(ok(&["echo", "a b+c&d"], None, [true, true, false, true])),
            ),
            ("command=x&stdout=1&stdin=0&stderr=FALSE&container=", Ok(ok(&["x"], None, [false, true, false, false]))),
            ("command=x&stdout&stdin=yes", Ok(ok(&["x"], None, [true, true, false, false]))),
            ("command=x&stdout=false&stdout=true&stderr=true", Ok(ok(&["x"], None, [false, false, true, false]))),
            ("command=x&stdout=true&timeout=5s&&", Ok(ok(&["x"], None, [false, true, false, false]))),
            ("command=%E2%9C%93&stdout=true", Ok(ok(&["\u{2713}"], None, [false, true, false, false]))),
            ("stdout=true&container=c", Err("you must specify at least one command for the container")),
            ("command=x&stdout=false", Err("you must specify at least 1 of stdin, stdout, stderr")),
            ("command=x&stderr=true&tty=true", Err("you must specify at least 1 of stdin, stdout, stderr")),
            ("command=%FF&stdout=true", Err("invalid query string")),
        ];
        for (input, expected) in cases {
            let got = ExecOptions::from_query(input);
            match (got, expected) {
                (Ok(got), Ok(expected)) => assert_eq!(got, expected, "{input}"),
                (Err(got), Err(expected)) => {
                    assert!(got.to_string().starts_with(expected), "{input}: {got}");
                    assert_eq!(got.status()["code"], 400);
                    assert_eq!(got.status()["reason"], "BadRequest");
                }
                (got, expected) => panic!("{input}: got {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(exit_status(0), json!({"metadata":{},"status":"Success"}));
        for code in [1, 28, 137, 255] {
            let s = exit_status(code);
            assert_eq!(s["status"], "Failure");
            assert_eq!(s["reason"], "NonZeroExitCode");
            assert_eq!(s["details"]["causes"], json!([{"reason":"ExitCode","message":code.to_string()}]));
            assert!(s["message"].as_str().is_some_and(|m| m.starts_with("command terminated with non-zero exit code")));
        }
        let s = internal_error_status("container \"curl\" is not running");
        assert_eq!(s["reason"], "InternalError");
        assert_eq!(s["code"], 500);
        assert_eq!(s["message"], "container \"curl\" is not running");
        for (raw, code) in [(0, 0), (28 << 8, 28), (9, 137), (15, 143)] {
            assert_eq!(exit_code(ExitStatus::from_raw(raw)), code, "raw wait status {raw}");
        }
        type ResizeCase = (&'static [u8], Option<(u16, u16)>);
        let cases: [ResizeCase; 5] = [
            (b"{\"Width\":101,\"Height\":33}\n", Some((101, 33))),
            (b"{\"Height\":1,\"Width\":2}", Some((2, 1))),
            (b"{\"Width\":70000,\"Height\":33}", None),
            (b"{\"Width\":-1,\"Height\":33}", None),
            (b"not json", None),
        ];
        for (body, expected) in cases {
            assert_eq!(parse_resize(body), expected, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn protocol_offer() {
        let cases: [(&[&str], bool); 5] = [
            (&["v5.channel.k8s.io"], true),
            (&["v4.channel.k8s.io, v5.channel.k8s.io"], true),
            (&["v4.channel.k8s.io", "v5.channel.k8s.io"], true),
            (&["v4.channel.k8s.io"], false),
            (&[], false),
        ];
        for (values, expected) in cases {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append(header::SEC_WEBSOCKET_PROTOCOL, v.parse().expect("header"));
            }
            assert_eq!(client_offers_protocol(&headers), expected, "{values:?}");
        }
    }

    /// One exec without tty: command, flags, stdin frames to send, then the expected transcript.
    struct PipeCase {
        command: &'static [&'static str],
        flags: &'static str,
        input: &'static [&'static [u8]],
        close_stdin: bool,
        stdout: &'static str,
        stderr: &'static str,
        status: Value,
    }

    #[tokio::test]
    async fn pipe_sessions() {
        let addr = serve().await;
        const SCRIPT: &str = "echo out; echo err >&2; cat; exit 28";
        let cases = [
            PipeCase {
                command: &["sh", "-c", SCRIPT],
                flags: "stdin=true&stdout=true&stderr=true",
                input: &[b"hello ", b"world\n"],
                close_stdin: true,
                stdout: "out\nhello world\n",
                stderr: "err\n",
                status: exit_status(28),
            },
            PipeCase {
                // Without stdin=true, stdin is /dev/null: cat ends at once.
                command: &["sh", "-c", SCRIPT],
                flags: "stdout=true&stderr=true",
                input: &[],
                close_stdin: false,
                stdout: "out\n",
                stderr: "err\n",
                status: exit_status(28),
            },
            PipeCase {
                command: &["sh", "-c", "echo out; echo err >&2"],
                flags: "stdout=true",
                input: &[],
                close_stdin: false,
                stdout: "out\n",
                stderr: "",
                status: exit_status(0),
            },
            PipeCase {
                command: &["sh", "-c", "wc -c"],
                flags: "stdin=true&stdout=true&stderr=true",
                input: &[b"12345", b"", b"678"],
                close_stdin: true,
                stdout: "8\n",
                stderr: "",
                status: exit_status(0),
            },
            PipeCase {
                command: &["sh", "-c", "kill -9 $$"],
                flags: "stdout=true&stderr=true",
                input: &[],
                close_stdin: false,
                stdout: "",
                stderr: "",
                status: exit_status(137),
            },
        ];
        for case in cases {
            let mut client = connect(addr, &query(case.command, case.flags)).await;
            for chunk in case.input {
                send(&mut client, CHANNEL_STDIN, chunk).await;
            }
            if case.close_stdin {
                client.send(TMessage::binary(vec![CHANNEL_CLOSE, CHANNEL_STDIN])).await.expect("close stdin");
            }
            let t = collect(&mut client).await;
            let label = format!("{:?} {}", case.command, case.flags);
            assert_eq!(String::from_utf8_lossy(&t.stdout), case.stdout, "{label}");
            assert_eq!(String::from_utf8_lossy(&t.stderr), case.stderr, "{label}");
            assert_eq!(t.status.as_ref(), Some(&case.status), "{label}");
            assert!(t.closed, "{label}: no Close frame");
        }
    }

    #[tokio::test]
    async fn missing_command_is_internal_error() {
        let addr = serve().await;
        for tty in ["false", "true"] {
            let flags = format!("stdin=true&stdout=true&tty={tty}");
            let mut client = connect(addr, &query(&["no-such-command-hexec"], &flags)).await;
            let t = collect(&mut client).await;
            let status = t.status.expect("status");
            assert_eq!(status["status"], "Failure", "tty={tty}");
            assert_eq!(status["reason"], "InternalError", "tty={tty}");
            assert_eq!(status["code"], 500, "tty={tty}");
            let message = status["message"].as_str().unwrap_or("");
            assert!(message.contains("no-such-command-hexec"), "tty={tty}: {message}");
            assert!(t.stdout.is_empty(), "tty={tty}");
        }
    }

    #[tokio::test]
    async fn large_output_is_chunked() {
        let addr = serve().await;
        let total = 3 * 1024 * 1024;
        let count = format!("count={}", total / 4096);
        let mut client = connect(addr, &query(&["dd", "if=/dev/zero", "bs=4096", &count], "stdout=true")).await;
        let t = collect(&mut client).await;
        assert_eq!(t.stdout.len(), total);
        assert!(t.max_frame <= CHUNK + 1, "frame of {} bytes", t.max_frame);
        assert_eq!(t.status, Some(exit_status(0)));
    }

    #[tokio::test]
    async fn tty_session() {
        let addr = serve().await;
        // Reading from /dev/tty needs a controlling terminal; the read also orders the resize before stty.
        let script = "[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo is-tty; read x < /dev/tty; stty size; \
                      echo \"got $x\" >&2; exit 3";
        let mut client = connect(addr, &query(&["sh", "-c", script], "stdin=true&stdout=true&tty=true")).await;
        send(&mut client, CHANNEL_RESIZE, b"{\"Width\":101,\"Height\":33}\n").await;
        send(&mut client, CHANNEL_STDIN, b"abc\n").await;
        let t = collect(&mut client).await;
        let out = String::from_utf8_lossy(&t.stdout);
        // The terminal echoes the input and turns \n into \r\n; stderr comes through the same terminal.
        for expected in ["is-tty\r\n", "abc\r\n", "33 101\r\n", "got abc\r\n"] {
            assert!(out.contains(expected), "{expected:?} missing from {out:?}");
        }
        assert!(t.stderr.is_empty());
        assert_eq!(t.status, Some(exit_status(3)));

        // The first resize is applied before the command starts, even when stdin data comes first.
        let mut client =
            connect(addr, &query(&["sh", "-c", "stty size; cat"], "stdin=true&stdout=true&tty=true")).await;
        send(&mut client, CHANNEL_STDIN, b"early\n").await;
        // kubectl sends its resize only after setting up the local terminal: model the delay.
        tokio::time::sleep(Duration::from_millis(200)).await;
        send(&mut client, CHANNEL_RESIZE, b"{\"Width\":120,\"Height\":40}\n").await;
        client.send(TMessage::binary(vec![CHANNEL_CLOSE, CHANNEL_STDIN])).await.expect("close stdin");
        let t = collect(&mut client).await;
        let out = String::from_utf8_lossy(&t.stdout);
        // The terminal echoes type-ahead at once, so "early" may precede the size.
        assert!(out.contains("40 120\r\n"), "{out:?}");
        assert_eq!(out.matches("early\r\n").count(), 2, "{out:?}");
        assert_eq!(t.status, Some(exit_status(0)));

        // Closing stdin on a terminal sends EOF (^D): cat ends.
        let mut client = connect(addr, &query(&["cat"], "stdin=true&stdout=true&tty=true")).await;
        send(&mut client, CHANNEL_STDIN, b"line\n").await;
        client.send(TMessage::binary(vec![CHANNEL_CLOSE, CHANNEL_STDIN])).await.expect("close stdin");
        let t = collect(&mut client).await;
        assert_eq!(String::from_utf8_lossy(&t.stdout).matches("line\r\n").count(), 2, "echo plus cat output");
        assert_eq!(t.status, Some(exit_status(0)));
    }

    #[tokio::test]
    async fn disconnect_kills_the_process() {
        let addr = serve().await;
        for flags in ["stdin=true&stdout=true", "stdin=true&stdout=true&tty=true"] {
            // A background grandchild too: the whole group or session must go.
            let script = "sleep 300 & echo $$ $!; wait";
            let mut client = connect(addr, &query(&["sh", "-c", script], flags)).await;
            let mut line = Vec::new();
            while !line.contains(&b'\n') {
                match tokio::time::timeout(Duration::from_secs(10), client.next()).await {
                    Ok(Some(Ok(TMessage::Binary(data)))) if data.first() == Some(&CHANNEL_STDOUT) => {
                        line.extend_from_slice(&data[1..])
                    }
                    other => panic!("{flags}: expected the pids, got {other:?}"),
                }
            }
            let pids: Vec<i32> =
                String::from_utf8_lossy(&line).split_whitespace().filter_map(|p| p.parse().ok()).collect();
            assert_eq!(pids.len(), 2, "{flags}: {line:?}");
            drop(client);
            for pid in pids.iter().filter_map(|&p| rustix::process::Pid::from_raw(p)) {
                let mut alive = true;
                for _ in 0..100 {
                    alive = rustix::process::test_kill_process(pid).is_ok() && !is_zombie(pid);
                    if !alive {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                assert!(!alive, "{flags}: process {pid:?} survived the disconnect");
            }
        }
    }

    #[tokio::test]
    async fn exit_does_not_wait_for_background_output() {
        let addr = serve().await;
        for flags in ["stdout=true", "stdin=true&stdout=true&tty=true"] {
            // The background sleep keeps stdout (pipe or pty) open after sh exits.
            let mut client = connect(addr, &query(&["sh", "-c", "sleep 60 & echo $!"], flags)).await;
            let started = tokio::time::Instant::now();
            let t = collect(&mut client).await;
            let out = String::from_utf8_lossy(&t.stdout).into_owned();
            if let Some(pid) = out.trim().parse().ok().and_then(rustix::process::Pid::from_raw) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
            assert!(started.elapsed() < Duration::from_secs(10), "{flags}: waited for the background process");
            assert_eq!(t.status, Some(exit_status(0)), "{flags}");
            assert!(!out.trim().is_empty(), "{flags}: output before the exit was lost");
        }
    }

    /// A killed grandchild reparented to init may linger as a zombie for a moment; it is dead all the same.
    fn is_zombie(pid: rustix::process::Pid) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_nonzero()))
            .map(|stat| stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')))
            .unwrap_or(false)
    }

    #[tokio::test]
    async fn refusals() {
        let addr = serve().await;
        let q = query(&["true"], "stdout=true");
        let offers: [Option<&'static str>; 2] = [None, Some("v4.channel.k8s.io")];
        for offer in offers {
            let mut request = format!("ws://{addr}/exec?{q}").into_client_request().expect("request");
            if let Some(offer) = offer {
                request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(offer));
            }
            match tokio_tungstenite::connect_async(request).await {
                Err(tungstenite::Error::Http(response)) => {
                    assert_eq!(response.status(), 400, "{offer:?}");
                    let body: Value =
                        serde_json::from_slice(response.body().as_deref().unwrap_or(b"")).expect("json body");
                    assert_eq!(body["message"], REFUSAL_MESSAGE, "{offer:?}");
                    assert_eq!(body["reason"], "BadRequest");
                }
                other => panic!("{offer:?}: expected a 400, got {other:?}"),
            }
        }
        // kubectl's SPDY retry: a POST with Upgrade: SPDY/3.1.
        let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("tcp");
        let request = format!(
            "POST /exec?{q} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\
             X-Stream-Protocol-Version: v5.channel.k8s.io\r\nContent-Length: 0\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await.expect("write");
        let mut response = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut response)).await.expect("timeout");
        let response = String::from_utf8_lossy(&response[..n.expect("read")]).into_owned();
        assert!(response.starts_with("HTTP/1.1 400"), "{response}");
        assert!(response.contains("application/json"), "{response}");
        assert!(response.contains("exec needs the WebSocket protocol v5.channel.k8s.io"), "{response}");
    }
}
