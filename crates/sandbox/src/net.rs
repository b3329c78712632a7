//! What runs inside a pod's namespace: servers on its ports (TCP accept, UDP echo, SCTP INIT-ACK over raw
//! sockets) and bounded probes.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use palisade_engine::Protocol;
use socket2::{Domain, Socket, Type};

use crate::sctp;

/// Serves every port until killed. Each listener runs on its own thread.
pub fn serve(tcp: &[u16], udp: &[u16], sctp_ports: &[u16], sink: &[u16]) -> std::io::Result<()> {
    let mut handles = Vec::new();
    for &port in sink {
        let listener = TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port)))?;
        handles.push(std::thread::spawn(move || {
            for mut s in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 256 * 1024];
                    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                });
            }
        }));
    }
    for &port in tcp {
        // One dual-stack listener serves IPv4 and IPv6.
        let sock = Socket::new(Domain::IPV6, Type::STREAM, None)?;
        sock.set_only_v6(false)?;
        sock.set_reuse_address(true)?;
        sock.bind(&SocketAddr::from(([0u16; 8], port)).into())?;
        sock.listen(128)?;
        let listener: TcpListener = sock.into();
        handles.push(std::thread::spawn(move || {
            for mut s in listener.incoming().flatten() {
                // Greet, then echo until the client goes away (long-lived connections for tests).
                std::thread::spawn(move || {
                    let _ = s.write_all(b"ok\n");
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        }));
    }
    for &port in udp {
        let sock = Socket::new(Domain::IPV6, Type::DGRAM, None)?;
        sock.set_only_v6(false)?;
        sock.bind(&SocketAddr::from(([0u16; 8], port)).into())?;
        let sock: UdpSocket = sock.into();
        handles.push(std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                let _ = sock.send_to(&buf[..n], from);
            }
        }));
    }
    if !sctp_ports.is_empty() {
        for v6 in [false, true] {
            let ports = sctp_ports.to_vec();
            handles.push(std::thread::spawn(move || {
                let _ = sctp::answer_inits(v6, &ports);
            }));
        }
    }
    for h in handles {
        let _ = h.join();
    }
    Ok(())
}

/// Benchmarks: new TCP connections (connect, read the greeting, close) for `duration`; returns how many.
pub fn connect_loop(ip: IpAddr, port: u16, duration: Duration) -> u64 {
    let addr = SocketAddr::new(ip, port);
    let end = Instant::now() + duration;
    let mut n = 0;
    while Instant::now() < end {
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            let mut b = [0u8; 3];
            if s.read_exact(&mut b).is_ok() {
                n += 1;
            }
            // Close with RST, as connect/request/response benchmarks do: no TIME_WAIT piling up across runs.
            let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
        }
    }
    n
}

/// Benchmarks: one TCP stream of bulk data for `duration`; returns the bytes sent.
pub fn stream(ip: IpAddr, port: u16, duration: Duration) -> u64 {
    let Ok(mut s) = TcpStream::connect_timeout(&SocketAddr::new(ip, port), Duration::from_secs(1)) else { return 0 };
    let buf = vec![0x5au8; 256 * 1024];
    let end = Instant::now() + duration;
    let mut sent = 0u64;
    while Instant::now() < end {
        match s.write(&buf) {
            Ok(n) => sent += n as u64,
            Err(_) => break,
        }
    }
    sent
}

/// Holds one TCP connection open for `duration`, exchanging a byte every `interval`; returns one flag per
/// exchange (whether the echo came back within `interval`). Bounded by `duration`.
pub fn hold(ip: IpAddr, port: u16, duration: Duration, interval: Duration) -> std::io::Result<Vec<bool>> {
    let mut s = TcpStream::connect_timeout(&SocketAddr::new(ip, port), Duration::from_secs(1))?;
    s.set_read_timeout(Some(interval))?;
    let mut greeting = [0u8; 3];
    s.read_exact(&mut greeting)?;
    let end = Instant::now() + duration;
    let mut out = Vec::new();
    while Instant::now() < end {
        let started = Instant::now();
        let ok = s.write_all(b"x").is_ok() && {
            let mut b = [0u8; 1];
            matches!(s.read(&mut b), Ok(1))
        };
        out.push(ok);
        std::thread::sleep(interval.saturating_sub(started.elapsed()));
    }
    Ok(out)
}

/// One connection attempt: TCP handshake, a UDP request answered, or an SCTP INIT answered by INIT-ACK.
pub fn probe(ip: IpAddr, port: u16, protocol: Protocol, timeout: Duration) -> bool {
    let addr = SocketAddr::new(ip, port);
    match protocol {
        Protocol::Tcp => TcpStream::connect_timeout(&addr, timeout).is_ok_and(|mut s| {
            let _ = s.set_read_timeout(Some(timeout));
            let mut b = [0u8; 3];
            s.read(&mut b).is_ok()
        }),
        Protocol::Udp => {
            let bind: SocketAddr = if ip.is_ipv4() { "0.0.0.0:0".parse() } else { "[::]:0".parse() }.expect("literal");
            let Ok(sock) = UdpSocket::bind(bind) else { return false };
            let _ = sock.set_read_timeout(Some(Duration::from_millis(100)));
            let deadline = Instant::now() + timeout;
            let mut buf = [0u8; 64];
            // A few sends within the timeout, in case the first meets an unresolved neighbour.
            while Instant::now() < deadline {
                if sock.send_to(b"palisade-probe", addr).is_err() {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                if let Ok((n, from)) = sock.recv_from(&mut buf)
                    && from == addr
                    && &buf[..n] == b"palisade-probe"
                {
                    return true;
                }
            }
            false
        }
        Protocol::Sctp => sctp::probe(ip, port, timeout),
    }
}
