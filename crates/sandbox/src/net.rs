//! What runs inside a pod's namespace: servers on its ports (TCP accept, UDP echo, SCTP INIT-ACK over raw
//! sockets) and bounded probes.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use palisade_engine::Protocol;
use socket2::{Domain, Socket, Type};

use crate::sctp;

/// What a probe, a held connection or a benchmark client sends first; the server answers it with `ok\n`
/// and echoes what follows.
pub const HELLO: &[u8] = b"PALISADE\n";

const HTTP_METHODS: &[&str] =
    &["GET ", "HEAD ", "POST ", "PUT ", "DELETE ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE "];

/// The answer to an HTTP request: `200 OK` and a short body naming the pod (none for HEAD), then close.
pub fn http_response(request: &[u8], who: &str, port: u16) -> Vec<u8> {
    let head = request.starts_with(b"HEAD ");
    let body = format!("Hello from {who} on port {port}\n");
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nServer: palisade-sandbox\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// One TCP connection: an HTTP request gets an HTTP answer; Palisade's own clients get `ok` and an echo;
/// anything else is echoed.
fn answer(mut s: TcpStream, who: &str, port: u16) {
    let mut buf = [0u8; 4096];
    let Ok(n) = s.read(&mut buf) else { return };
    if n == 0 {
        return;
    }
    let first = &buf[..n];
    if HTTP_METHODS.iter().any(|m| first.starts_with(m.as_bytes())) {
        // Read the rest of the request head (bounded), then answer and close.
        let mut req = first.to_vec();
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 64 * 1024 {
            match s.read(&mut buf) {
                Ok(m) if m > 0 => req.extend_from_slice(&buf[..m]),
                _ => break,
            }
        }
        let _ = s.write_all(&http_response(&req, who, port));
        let _ = s.shutdown(std::net::Shutdown::Write);
        // Drain briefly so the close is orderly (no reset racing the response).
        while matches!(s.read(&mut buf), Ok(m) if m > 0) {}
        return;
    }
    let rest = if let Some(r) = first.strip_prefix(HELLO) {
        if s.write_all(b"ok\n").is_err() {
            return;
        }
        r
    } else {
        first
    };
    if !rest.is_empty() && s.write_all(rest).is_err() {
        return;
    }
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 || s.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

/// Serves every port until killed (`who` names the pod in HTTP answers). Each listener runs on its own thread;
/// `ready` is called once every TCP and UDP socket is bound (SCTP answerers open their raw sockets on their
/// own threads).
pub fn serve(
    tcp: &[u16],
    udp: &[u16],
    sctp_ports: &[u16],
    sink: &[u16],
    who: &str,
    ready: impl FnOnce() -> std::io::Result<()>,
) -> std::io::Result<()> {
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
        let who = who.to_owned();
        handles.push(std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                let who = who.clone();
                std::thread::spawn(move || answer(s, &who, port));
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
    if !sctp_ports.is_empty() {
        // The raw SCTP sockets open on their threads within a millisecond or two.
        std::thread::sleep(Duration::from_millis(10));
    }
    ready()?;
    for h in handles {
        let _ = h.join();
    }
    Ok(())
}

/// Benchmarks: new TCP connections (connect, hello, read the answer, close) for `duration`; returns how many.
pub fn connect_loop(ip: IpAddr, port: u16, duration: Duration) -> u64 {
    let addr = SocketAddr::new(ip, port);
    let end = Instant::now() + duration;
    let mut n = 0;
    while Instant::now() < end {
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            let mut b = [0u8; 3];
            if s.write_all(HELLO).is_ok() && s.read_exact(&mut b).is_ok() {
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
    s.write_all(HELLO)?;
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
            s.write_all(HELLO).is_ok() && s.read(&mut b).is_ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_answers_name_the_pod_and_head_has_no_body() {
        let get = String::from_utf8(http_response(b"GET / HTTP/1.1\r\n\r\n", "default/web", 80)).unwrap();
        assert!(get.starts_with("HTTP/1.1 200 OK\r\n"), "{get}");
        assert!(get.ends_with("\r\n\r\nHello from default/web on port 80\n"), "{get}");
        assert!(get.contains("Content-Length: 34\r\n"), "{get}");
        let head = String::from_utf8(http_response(b"HEAD / HTTP/1.1\r\n\r\n", "default/web", 80)).unwrap();
        assert!(head.ends_with("Connection: close\r\n\r\n"), "{head}");
    }

    #[test]
    fn a_server_answers_http_hello_and_anything_else() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                std::thread::spawn(move || answer(s, "ns/pod", 8080));
            }
        });
        let talk = |send: &[u8]| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            s.write_all(send).unwrap();
            let mut got = vec![0u8; 512];
            let n = s.read(&mut got).unwrap();
            String::from_utf8_lossy(&got[..n]).into_owned()
        };
        assert!(talk(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 200 OK"));
        assert_eq!(talk(HELLO), "ok\n");
        assert_eq!(talk(b"hello there"), "hello there");
    }
}
