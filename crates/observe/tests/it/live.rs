//! Live: a real `log group` rule, read by the reader. Needs root and nft; runs in a network namespace of its
//! own (`palobs-<pid>-<n>`, deleted on every exit path), with traffic only on its loopback.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use palisade_observe::reader::NflogSocket;
use palisade_observe::{Event, Kind, NflogConfig, Prefix, Protocol, Reader, ReaderConfig};

struct Netns(String);

impl Netns {
    fn new() -> Netns {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!("palobs-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        run("ip", &["netns", "add", &name], None);
        let ns = Netns(name);
        run("ip", &["-n", &ns.0, "link", "set", "lo", "up"], None);
        ns
    }

    fn nft(&self, script: &str) {
        run("ip", &["netns", "exec", &self.0, "nft", "-f", "-"], Some(script));
    }

    /// Runs `f` on a thread that has entered the namespace: sockets it opens belong to the namespace.
    fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = PathBuf::from("/var/run/netns").join(&self.0);
        std::thread::scope(|s| {
            s.spawn(|| {
                let file = std::fs::File::open(&path).expect("the namespace's file");
                nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                f()
            })
            .join()
            .expect("the namespace thread")
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn run(program: &str, args: &[&str], stdin: Option<&str>) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    if let Some(text) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn live_ready() -> bool {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let nft = Command::new("nft").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(root && nft || std::env::var_os("CI").is_none(), "CI must run live tests as root with nft");
    root && nft
}

const GROUP: u16 = 5;

fn rules(port: u16) -> String {
    format!(
        r#"table inet palobs {{
  chain out {{
    type filter hook output priority 0; policy accept;
    udp dport {port} log group {GROUP} prefix "pal1 D 0000abcd"
    tcp dport {port} tcp flags & (syn | ack) == syn log group {GROUP} prefix "pal1 A 00000001"
  }}
}}"#
    )
}

fn config() -> ReaderConfig {
    ReaderConfig { nflog: NflogConfig { group: GROUP, ..NflogConfig::default() }, ..ReaderConfig::default() }
}

/// Collects events until `n` arrived or `timeout` passed.
fn collect(reader: &Reader, n: usize, timeout: Duration) -> Vec<Event> {
    let deadline = Instant::now() + timeout;
    let queue = reader.queue();
    let mut events = Vec::new();
    while events.len() < n && Instant::now() < deadline {
        let want = n - events.len();
        queue.drain_into(&mut events, want, Duration::from_millis(50));
    }
    events
}

#[test]
fn every_logged_udp_packet_is_read_once_with_its_flow_and_prefix() {
    if !live_ready() {
        return;
    }
    const N: usize = 200;
    let ns = Netns::new();
    ns.nft(&rules(9999));
    let (socket, sockets) = ns.enter(|| {
        let nflog = NflogSocket::open(&config()).expect("bind NFLOG");
        let rx4 = UdpSocket::bind((Ipv4Addr::LOCALHOST, 9999)).unwrap();
        let rx6 = UdpSocket::bind((Ipv6Addr::LOCALHOST, 9999)).unwrap();
        let tx4 = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let tx6 = UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).unwrap();
        (nflog, (rx4, rx6, tx4, tx6))
    });
    let (_rx4, _rx6, tx4, tx6) = sockets;
    let reader = Reader::with_socket(socket, &config()).unwrap();
    assert!(reader.rcvbuf_forced(), "root sets the receive buffer past rmem_max");

    let started = Instant::now();
    for i in 0..N {
        let (tx, to): (&UdpSocket, SocketAddr) = if i % 2 == 0 {
            (&tx4, (Ipv4Addr::LOCALHOST, 9999).into())
        } else {
            (&tx6, (Ipv6Addr::LOCALHOST, 9999).into())
        };
        tx.send_to(format!("probe {i}").as_bytes(), to).unwrap();
    }
    let events = collect(&reader, N, Duration::from_secs(5));
    let elapsed = started.elapsed();
    let extra = collect(&reader, 1, Duration::from_millis(300));

    assert_eq!((events.len(), extra.len()), (N, 0), "exactly one event per packet");
    let seqs: Vec<u32> = events.iter().map(|e| e.seq.unwrap()).collect();
    assert_eq!(seqs, (0..N as u32).collect::<Vec<_>>(), "in order, none lost");
    for (i, e) in events.iter().enumerate() {
        let (tx, dst): (&UdpSocket, std::net::IpAddr) =
            if i % 2 == 0 { (&tx4, Ipv4Addr::LOCALHOST.into()) } else { (&tx6, Ipv6Addr::LOCALHOST.into()) };
        assert_eq!(e.prefix, Prefix::new(Kind::D, 0xabcd));
        assert_eq!(e.group, GROUP);
        assert_eq!(e.packet.protocol, Protocol::UDP);
        assert_eq!((e.packet.src, e.packet.dst), (dst, dst));
        assert_eq!(e.packet.src_port(), Some(tx.local_addr().unwrap().port()));
        assert_eq!(e.packet.dst_port(), Some(9999));
        assert_eq!((e.in_ifindex, e.out_ifindex), (None, Some(1)), "logged on output, leaving through lo");
    }
    let stats = reader.stop().unwrap();
    assert_eq!((stats.events, stats.lost, stats.dropped), (N as u64, 0, 0), "{stats:?}");
    assert_eq!(
        (stats.netlink_errors, stats.prefix_errors, stats.payload_errors, stats.overruns),
        (0, 0, 0, 0),
        "{stats:?}"
    );
    assert_eq!(stats.events_of(Kind::D), N as u64);
    eprintln!("{N} events read in {elapsed:?} ({} datagrams)", stats.datagrams);
}

#[test]
fn a_tcp_syn_is_read_with_its_flags() {
    if !live_ready() {
        return;
    }
    let ns = Netns::new();
    ns.nft(&rules(9998));
    let (socket, listener) = ns.enter(|| {
        (NflogSocket::open(&config()).expect("bind NFLOG"), TcpListener::bind((Ipv4Addr::LOCALHOST, 9998)).unwrap())
    });
    let reader = Reader::with_socket(socket, &config()).unwrap();
    // The listener's namespace is where the connection goes; connect from a thread in it.
    let local = ns.enter(|| TcpStream::connect((Ipv4Addr::LOCALHOST, 9998)).unwrap().local_addr().unwrap());
    let _accepted = listener.accept().unwrap();
    let events = collect(&reader, 2, Duration::from_secs(1));
    assert_eq!(events.len(), 1, "only the SYN: {events:?}");
    let e = &events[0];
    assert_eq!(e.prefix, Prefix::new(Kind::A, 1));
    assert_eq!(e.packet.protocol, Protocol::TCP);
    assert_eq!((e.packet.src_port(), e.packet.dst_port()), (Some(local.port()), Some(9998)));
    assert_eq!(palisade_observe::packet::tcp_flags_text(e.packet.tcp_flags().unwrap()), "S");
}

/// With a tiny socket buffer and nobody reading, the kernel drops batches; once the reader runs, what it
/// reads plus what it counts lost is exactly what was logged.
#[test]
fn loss_is_counted_exactly_when_the_socket_overflows() {
    if !live_ready() {
        return;
    }
    const N: usize = 3000;
    let ns = Netns::new();
    ns.nft(&rules(9997));
    let cfg = ReaderConfig { rcvbuf: 4096, ..config() };
    let (socket, tx, _rx) = ns.enter(|| {
        let nflog = NflogSocket::open(&cfg).expect("bind NFLOG");
        let rx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 9997)).unwrap();
        (nflog, UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap(), rx)
    });
    for _ in 0..N {
        tx.send_to(b"flood", (Ipv4Addr::LOCALHOST, 9997)).unwrap();
    }
    // Let the kernel flush its last batch (10 ms timeout) into the full socket.
    std::thread::sleep(Duration::from_millis(100));
    let reader = Reader::with_socket(socket, &cfg).unwrap();
    // A last packet after the flood shows how many went missing before it.
    tx.send_to(b"marker", (Ipv4Addr::LOCALHOST, 9997)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    while reader.stats().events + reader.stats().lost < N as u64 + 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = reader.stop().unwrap();
    assert!(stats.lost > 0, "the tiny buffer overflowed: {stats:?}");
    assert!(stats.overruns > 0, "{stats:?}");
    assert_eq!(stats.events + stats.lost, N as u64 + 1, "{stats:?}");
    eprintln!("overflow: {} read, {} lost, {} overruns", stats.events, stats.lost, stats.overruns);
}

/// A measurement, not a check: events/s a reader thread takes from the kernel while one thread blasts UDP
/// at a logged port. `cargo test -p palisade-observe --release --test it -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn reader_throughput() {
    if !live_ready() {
        return;
    }
    const N: usize = 300_000;
    let ns = Netns::new();
    ns.nft(&rules(9996));
    let (socket, tx, _rx) = ns.enter(|| {
        let nflog = NflogSocket::open(&config()).expect("bind NFLOG");
        let rx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 9996)).unwrap();
        (nflog, UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap(), rx)
    });
    let reader = Reader::with_socket(socket, &config()).unwrap();
    let queue = reader.queue();
    let consumer = std::thread::spawn(move || {
        let mut got = Vec::with_capacity(4096);
        let mut n = 0;
        let deadline = Instant::now() + Duration::from_secs(30);
        while n < N && Instant::now() < deadline {
            got.clear();
            n += queue.drain_into(&mut got, 4096, Duration::from_millis(100));
        }
        n
    });
    let started = Instant::now();
    for _ in 0..N {
        tx.send_to(b"x", (Ipv4Addr::LOCALHOST, 9996)).unwrap();
    }
    let sent = started.elapsed();
    let consumed = consumer.join().unwrap();
    let elapsed = started.elapsed();
    let stats = reader.stop().unwrap();
    eprintln!(
        "{N} packets sent in {sent:?} ({:.0}/s); {} events read in {elapsed:?} ({:.0}/s), {} lost, {} dropped, {} datagrams",
        N as f64 / sent.as_secs_f64(),
        consumed,
        stats.events as f64 / elapsed.as_secs_f64(),
        stats.lost,
        stats.dropped,
        stats.datagrams
    );
}
