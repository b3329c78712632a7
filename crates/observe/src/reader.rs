//! The NFLOG reader: a netlink socket bound to one group and a thread that receives, decodes and queues
//! events. The only module of this crate that does I/O.
//!
//! A socket belongs to the network namespace of the thread that opened it: to read a node's namespace,
//! open it ([`NflogSocket::open`] or [`Reader::start`]) from a thread that has entered that namespace; the
//! reader thread itself may run anywhere.

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use netlink_sys::{Socket, constants::NETLINK_NETFILTER};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde::Serialize;

use crate::nflog::{DecodeError, Event, EventError, NflogConfig, NlMessage, bind_request, messages};
use crate::prefix::Kind;
use crate::seq::SeqTracker;

/// The reader's settings; the defaults are OBSERVABILITY.md §4.4's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderConfig {
    pub nflog: NflogConfig,
    /// The socket's receive buffer. Set with `SO_RCVBUFFORCE` (past `rmem_max`, needs CAP_NET_ADMIN), else
    /// `SO_RCVBUF` (capped by `rmem_max`).
    pub rcvbuf: usize,
    /// Events held for the consumer; when full the oldest is dropped (and counted).
    pub queue: usize,
    /// How often the reader thread looks at its stop flag when no datagram arrives.
    pub poll_interval: Duration,
    /// How long to wait for the kernel to acknowledge the bind.
    pub bind_timeout: Duration,
}

impl Default for ReaderConfig {
    fn default() -> Self {
        ReaderConfig {
            nflog: NflogConfig::default(),
            rcvbuf: 8 << 20,
            queue: 64 * 1024,
            poll_interval: Duration::from_millis(100),
            bind_timeout: Duration::from_secs(2),
        }
    }
}

/// A failure of the reader's socket or thread.
#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    #[error("opening a netlink netfilter socket")]
    Socket(#[source] io::Error),
    #[error("binding NFLOG group {group}")]
    Bind {
        group: u16,
        #[source]
        source: io::Error,
    },
    #[error("the kernel did not acknowledge binding NFLOG group {group} within {timeout:?}")]
    NoAck { group: u16, timeout: Duration },
    #[error("receiving from NFLOG group {group}")]
    Recv {
        group: u16,
        #[source]
        source: io::Error,
    },
    #[error("starting the NFLOG reader thread")]
    Thread(#[source] io::Error),
    #[error("the NFLOG reader thread panicked")]
    Panicked,
}

/// What the reader counted since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReaderStats {
    /// Datagrams received.
    pub datagrams: u64,
    /// Events decoded and queued.
    pub events: u64,
    /// Events per kind, in [`Kind::ALL`] order (D, S, I, A, U).
    pub events_by_kind: [u64; 5],
    /// Packets the kernel logged that never arrived: gaps in the group's sequence numbers, exact. (A
    /// message too malformed to read its number from would count here too, besides `netlink_errors`; the
    /// kernel sends none.)
    pub lost: u64,
    /// Events dropped because the consumer fell behind (the oldest queued go first).
    pub dropped: u64,
    /// Netlink messages that could not be decoded.
    pub netlink_errors: u64,
    /// Logged packets whose prefix is missing or not `pal1 <kind> <id>`.
    pub prefix_errors: u64,
    /// Logged packets whose payload is missing or too short for its headers.
    pub payload_errors: u64,
    /// `ENOBUFS` from the socket: the kernel dropped datagrams (their packets count in `lost`).
    pub overruns: u64,
}

impl ReaderStats {
    pub fn events_of(&self, kind: Kind) -> u64 {
        self.events_by_kind[kind_index(kind)]
    }
}

fn kind_index(kind: Kind) -> usize {
    Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
}

#[derive(Default)]
struct Counters {
    datagrams: AtomicU64,
    events: AtomicU64,
    events_by_kind: [AtomicU64; 5],
    lost: AtomicU64,
    netlink_errors: AtomicU64,
    prefix_errors: AtomicU64,
    payload_errors: AtomicU64,
    overruns: AtomicU64,
}

fn add(c: &AtomicU64, n: u64) {
    if n > 0 {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// The bounded queue between the reader thread and its consumer; full, it drops the oldest event.
#[derive(Debug)]
pub struct EventQueue {
    events: Mutex<VecDeque<Event>>,
    ready: Condvar,
    capacity: usize,
    dropped: AtomicU64,
}

impl EventQueue {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        EventQueue {
            events: Mutex::new(VecDeque::with_capacity(capacity.min(4096))),
            ready: Condvar::new(),
            capacity,
            dropped: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Event>> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues events, dropping the oldest beyond capacity.
    pub fn push_all(&self, events: impl IntoIterator<Item = Event>) {
        let mut dropped = 0;
        {
            let mut q = self.lock();
            for e in events {
                if q.len() == self.capacity {
                    q.pop_front();
                    dropped += 1;
                }
                q.push_back(e);
            }
        }
        add(&self.dropped, dropped);
        self.ready.notify_all();
    }

    /// Moves up to `max` queued events into `out`, waiting up to `timeout` for the first; returns how many.
    pub fn drain_into(&self, out: &mut Vec<Event>, max: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut q = self.lock();
        while q.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                return 0;
            }
            q = self.ready.wait_timeout(q, deadline - now).unwrap_or_else(PoisonError::into_inner).0;
        }
        let n = q.len().min(max);
        out.extend(q.drain(..n));
        n
    }

    /// The next event, waiting up to `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Event> {
        let mut one = Vec::with_capacity(1);
        self.drain_into(&mut one, 1, timeout);
        one.pop()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// A netlink socket bound to one NFLOG group.
pub struct NflogSocket {
    socket: Socket,
    group: u16,
    buf: Vec<u8>,
    /// Datagrams that arrived before the bind's acknowledgement.
    early: VecDeque<Vec<u8>>,
    decoder: Decoder,
    rcvbuf_forced: bool,
}

/// Large enough for any batch the kernel builds (its per-group buffer is at most 128 KiB).
const RECV_BUFFER: usize = 256 * 1024;
/// Datagrams read per wake-up before the queue is fed.
const DATAGRAMS_PER_WAKE: usize = 64;

impl NflogSocket {
    /// Opens a socket in the calling thread's network namespace and binds `config.nflog.group`. Fails if
    /// another socket has the group (`EBUSY`) or the caller lacks CAP_NET_ADMIN (`EPERM`).
    pub fn open(config: &ReaderConfig) -> Result<NflogSocket, ReaderError> {
        let group = config.nflog.group;
        let mut socket = Socket::new(NETLINK_NETFILTER).map_err(ReaderError::Socket)?;
        socket.bind_auto().map_err(ReaderError::Socket)?;
        let rcvbuf_forced =
            nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::RcvBufForce, &config.rcvbuf).is_ok();
        if !rcvbuf_forced {
            // Without CAP_NET_ADMIN: as much as `rmem_max` allows.
            let _ = socket.set_rx_buf_sz(libc_int(config.rcvbuf));
        }
        let mut s = NflogSocket {
            socket,
            group,
            buf: vec![0; RECV_BUFFER],
            early: VecDeque::new(),
            decoder: Decoder::default(),
            rcvbuf_forced,
        };
        s.bind(config)?;
        Ok(s)
    }

    fn bind(&mut self, config: &ReaderConfig) -> Result<(), ReaderError> {
        const NL_SEQ: u32 = 1;
        let group = self.group;
        let request = bind_request(&config.nflog, NL_SEQ);
        self.socket.send(&request, 0).map_err(|source| ReaderError::Bind { group, source })?;
        let deadline = Instant::now() + config.bind_timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ReaderError::NoAck { group, timeout: config.bind_timeout });
            }
            let Some(n) = self.recv_one(left).map_err(|source| ReaderError::Bind { group, source })? else {
                continue;
            };
            let datagram = &self.buf[..n];
            let mut acked = None;
            for m in messages(datagram) {
                if let Ok(NlMessage::Ack { nl_seq: NL_SEQ, errno }) = m {
                    acked = Some(errno);
                }
            }
            match acked {
                Some(0) => {
                    // Packets may share the datagram or precede it; keep them for the reader.
                    if messages(datagram).any(|m| matches!(m, Ok(NlMessage::Packet(_)))) {
                        self.early.push_back(datagram.to_vec());
                    }
                    return Ok(());
                }
                Some(errno) => {
                    return Err(ReaderError::Bind {
                        group,
                        source: io::Error::from_raw_os_error(errno.saturating_neg()),
                    });
                }
                None => self.early.push_back(datagram.to_vec()),
            }
        }
    }

    /// Waits up to `timeout` for one datagram; `None` on timeout or interruption.
    fn recv_one(&mut self, timeout: Duration) -> io::Result<Option<usize>> {
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        self.recv_now()
    }

    fn recv_now(&mut self) -> io::Result<Option<usize>> {
        match self.socket.recv(&mut &mut self.buf[..], nix::libc::MSG_DONTWAIT) {
            Ok(n) => Ok(Some(n.min(self.buf.len()))),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether the receive buffer was set past `rmem_max` (`SO_RCVBUFFORCE`).
    pub fn rcvbuf_forced(&self) -> bool {
        self.rcvbuf_forced
    }

    /// Waits up to `timeout` for datagrams, then decodes all that are ready into `out`, counting loss and
    /// errors. Returns the number of datagrams read.
    fn read(&mut self, timeout: Duration, out: &mut Vec<Event>, counters: &Counters) -> Result<usize, ReaderError> {
        let group = self.group;
        let mut read = 0;
        while let Some(d) = self.early.pop_front() {
            self.decoder.decode(&d, out, counters);
            read += 1;
        }
        let mut wait = if read > 0 { Duration::ZERO } else { timeout };
        while read < DATAGRAMS_PER_WAKE {
            let got = if wait.is_zero() { self.recv_now() } else { self.recv_one(wait) };
            wait = Duration::ZERO;
            match got {
                Ok(Some(n)) => {
                    let datagram = std::mem::take(&mut self.buf);
                    self.decoder.decode(&datagram[..n], out, counters);
                    self.buf = datagram;
                    read += 1;
                }
                Ok(None) => break,
                // The socket overflowed: the kernel dropped datagrams, and the next sequence number says how many packets.
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOBUFS) => add(&counters.overruns, 1),
                Err(source) => return Err(ReaderError::Recv { group, source }),
            }
        }
        Ok(read)
    }
}

/// Turns datagrams into events, counting loss from sequence numbers and errors by class.
#[derive(Default)]
struct Decoder {
    seq: SeqTracker,
}

impl Decoder {
    fn decode(&mut self, datagram: &[u8], out: &mut Vec<Event>, c: &Counters) {
        add(&c.datagrams, 1);
        let received = SystemTime::now();
        for m in crate::nflog::decode_datagram(datagram, received) {
            let seq = match &m {
                Ok(e) => e.seq.map(|s| (e.group, s)),
                Err(DecodeError::Event { group, seq, .. }) => seq.map(|s| (*group, s)),
                Err(DecodeError::Netlink(_)) => None,
            };
            if let Some((group, s)) = seq {
                add(&c.lost, self.seq.observe(group, s));
            }
            match m {
                Ok(e) => {
                    add(&c.events_by_kind[kind_index(e.prefix.kind)], 1);
                    add(&c.events, 1);
                    out.push(e);
                }
                Err(DecodeError::Netlink(_)) => add(&c.netlink_errors, 1),
                Err(DecodeError::Event { error: EventError::NoPrefix | EventError::Prefix(_), .. }) => {
                    add(&c.prefix_errors, 1)
                }
                Err(DecodeError::Event { error: EventError::NoPayload | EventError::Payload(_), .. }) => {
                    add(&c.payload_errors, 1)
                }
            }
        }
    }
}

fn libc_int(n: usize) -> nix::libc::c_int {
    nix::libc::c_int::try_from(n).unwrap_or(nix::libc::c_int::MAX)
}

/// The reader thread and the queue it fills.
pub struct Reader {
    group: u16,
    rcvbuf_forced: bool,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), ReaderError>>>,
    queue: Arc<EventQueue>,
    counters: Arc<Counters>,
}

impl Reader {
    /// Opens and binds the socket in the calling thread's namespace, then starts the reader thread.
    pub fn start(config: &ReaderConfig) -> Result<Reader, ReaderError> {
        let socket = NflogSocket::open(config)?;
        Reader::with_socket(socket, config)
    }

    /// Starts the reader thread on a socket already open (in whatever namespace it was opened).
    pub fn with_socket(mut socket: NflogSocket, config: &ReaderConfig) -> Result<Reader, ReaderError> {
        let (group, rcvbuf_forced) = (socket.group, socket.rcvbuf_forced);
        let stop = Arc::new(AtomicBool::new(false));
        let queue = Arc::new(EventQueue::new(config.queue));
        let counters = Arc::new(Counters::default());
        let interval = config.poll_interval.clamp(Duration::from_millis(1), Duration::from_millis(100));
        let thread = std::thread::Builder::new()
            .name(format!("nflog-{group}"))
            .spawn({
                let (stop, queue, counters) = (Arc::clone(&stop), Arc::clone(&queue), Arc::clone(&counters));
                move || {
                    let mut batch = Vec::with_capacity(1024);
                    while !stop.load(Ordering::Relaxed) {
                        socket.read(interval, &mut batch, &counters)?;
                        if !batch.is_empty() {
                            queue.push_all(batch.drain(..));
                        }
                    }
                    Ok(())
                }
            })
            .map_err(ReaderError::Thread)?;
        Ok(Reader { group, rcvbuf_forced, stop, thread: Some(thread), queue, counters })
    }

    pub fn group(&self) -> u16 {
        self.group
    }

    /// Whether the receive buffer was set past `rmem_max` (`SO_RCVBUFFORCE`).
    pub fn rcvbuf_forced(&self) -> bool {
        self.rcvbuf_forced
    }

    /// The queue the reader fills, for a consumer thread to own.
    pub fn queue(&self) -> Arc<EventQueue> {
        Arc::clone(&self.queue)
    }

    /// The next event, waiting up to `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Event> {
        self.queue.recv_timeout(timeout)
    }

    /// Whether the reader thread is still reading (it ends on a socket error, which [`stop`](Self::stop)
    /// returns).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    pub fn stats(&self) -> ReaderStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ReaderStats {
            datagrams: get(&c.datagrams),
            events: get(&c.events),
            events_by_kind: std::array::from_fn(|i| get(&c.events_by_kind[i])),
            lost: get(&c.lost),
            dropped: self.queue.dropped(),
            netlink_errors: get(&c.netlink_errors),
            prefix_errors: get(&c.prefix_errors),
            payload_errors: get(&c.payload_errors),
            overruns: get(&c.overruns),
        }
    }

    /// Stops the thread (within the poll interval) and closes the socket, which unbinds the group.
    pub fn stop(mut self) -> Result<ReaderStats, ReaderError> {
        self.join()?;
        Ok(self.stats())
    }

    fn join(&mut self) -> Result<(), ReaderError> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| ReaderError::Panicked)?,
            None => Ok(()),
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let _ = self.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{L4, Packet, Protocol};
    use crate::prefix::Prefix;

    fn event(n: u16) -> Event {
        Event {
            group: 5,
            seq: Some(u32::from(n)),
            time: SystemTime::UNIX_EPOCH,
            kernel_time: false,
            in_ifindex: None,
            out_ifindex: None,
            prefix: Prefix::new(Kind::D, 1),
            packet: Packet {
                src: [127, 0, 0, 1].into(),
                dst: [127, 0, 0, 1].into(),
                protocol: Protocol::UDP,
                l4: L4::Ports { src: n, dst: 9, tcp_flags: None },
            },
        }
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts() {
        let q = EventQueue::new(3);
        q.push_all((0..5).map(event));
        assert_eq!((q.len(), q.dropped()), (3, 2));
        let mut out = Vec::new();
        assert_eq!(q.drain_into(&mut out, 2, Duration::ZERO), 2);
        assert_eq!(out.iter().map(|e| e.packet.src_port().unwrap()).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(q.recv_timeout(Duration::ZERO).and_then(|e| e.packet.src_port()), Some(4));
        assert_eq!(q.recv_timeout(Duration::from_millis(10)), None);
    }

    #[test]
    fn decoding_counts_loss_and_errors_by_class() {
        use crate::nflog::{LoggedPacket, encode_packet};
        let payload = crate::packet::build::ipv4(
            [10, 0, 0, 1].into(),
            [10, 0, 0, 2].into(),
            17,
            &crate::packet::build::udp(1, 2, b""),
        );
        let packet = |seq: u32, prefix: &str, payload: &[u8]| {
            encode_packet(&LoggedPacket {
                group: 5,
                seq: Some(seq),
                prefix: Some(prefix.into()),
                payload: Some(payload.to_vec()),
                ..LoggedPacket::default()
            })
        };
        let mut datagram = Vec::new();
        datagram.extend(packet(0, "pal1 D 00000001", &payload));
        datagram.extend(packet(1, "pal1 A 00000002", &payload));
        datagram.extend(packet(4, "nope", &payload)); // 2 and 3 lost
        datagram.extend(packet(5, "pal1 D 00000001", &payload[..22]));
        datagram.extend(packet(9, "pal1 U 00000003", &payload)); // 6, 7, 8 lost
        datagram.extend_from_slice(&[200, 0, 0, 0]);
        let c = Counters::default();
        let mut out = Vec::new();
        // Decode without a socket: the same path the reader thread takes.
        Decoder::default().decode(&datagram, &mut out, &c);
        assert_eq!(out.len(), 3);
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!(get(&c.lost), 5);
        assert_eq!(get(&c.prefix_errors), 1);
        assert_eq!(get(&c.payload_errors), 1);
        assert_eq!(get(&c.netlink_errors), 1);
        assert_eq!(get(&c.events_by_kind[kind_index(Kind::D)]), 1);
        assert_eq!(get(&c.events_by_kind[kind_index(Kind::U)]), 1);
    }
}
