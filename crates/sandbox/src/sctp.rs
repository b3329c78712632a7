//! SCTP probes over raw sockets, for kernels without SCTP sockets (`CONFIG_IP_SCTP` off) whose netfilter still
//! matches and tracks SCTP: the client sends an INIT, the server answers INIT-ACK; the INIT-ACK arriving is success.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

const IPPROTO_SCTP: i32 = 132;
const INIT: u8 = 1;
const INIT_ACK: u8 = 2;

/// CRC32c (Castagnoli), SCTP's checksum.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

/// An SCTP packet: common header (checksum filled in, little-endian as Linux stores it) and one chunk.
fn packet(src: u16, dst: u16, vtag: u32, chunk: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + chunk.len());
    p.extend_from_slice(&src.to_be_bytes());
    p.extend_from_slice(&dst.to_be_bytes());
    p.extend_from_slice(&vtag.to_be_bytes());
    p.extend_from_slice(&[0; 4]);
    p.extend_from_slice(chunk);
    let sum = crc32c(&p);
    p[8..12].copy_from_slice(&sum.to_le_bytes());
    p
}

/// An INIT or INIT-ACK chunk with the given initiate tag and optional parameters.
fn init_chunk(kind: u8, tag: u32, params: &[u8]) -> Vec<u8> {
    let len = 20 + params.len();
    let mut c = vec![kind, 0];
    c.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
    c.extend_from_slice(&tag.to_be_bytes());
    c.extend_from_slice(&65535u32.to_be_bytes()); // a_rwnd
    c.extend_from_slice(&1u16.to_be_bytes()); // outbound streams
    c.extend_from_slice(&1u16.to_be_bytes()); // inbound streams
    c.extend_from_slice(&tag.wrapping_add(1).to_be_bytes()); // initial TSN
    c.extend_from_slice(params);
    c
}

/// A raw SCTP socket, used through std's datagram API (recvfrom/sendto work on any datagram fd).
fn raw_socket(v6: bool) -> std::io::Result<UdpSocket> {
    let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    Ok(Socket::new(domain, Type::RAW, Some(Protocol::from(IPPROTO_SCTP)))?.into())
}

/// The SCTP packet inside what a raw socket returned (IPv4 raw sockets include the IP header).
fn sctp_payload(buf: &[u8], v6: bool) -> Option<&[u8]> {
    if v6 {
        return Some(buf);
    }
    let ihl = usize::from(buf.first()? & 0x0f) * 4;
    buf.get(ihl..)
}

struct Header {
    src: u16,
    dst: u16,
    vtag: u32,
    chunk: u8,
    init_tag: u32,
}

fn parse(p: &[u8]) -> Option<Header> {
    if p.len() < 20 {
        return None;
    }
    let be16 = |i: usize| u16::from_be_bytes([p[i], p[i + 1]]);
    let be32 = |i: usize| u32::from_be_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]]);
    Some(Header { src: be16(0), dst: be16(2), vtag: be32(4), chunk: p[12], init_tag: be32(16) })
}

/// Answers every INIT to one of `ports` with an INIT-ACK, until the process ends.
pub fn answer_inits(v6: bool, ports: &[u16]) -> std::io::Result<()> {
    let sock = raw_socket(v6)?;
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
        let Some(h) = sctp_payload(&buf[..n], v6).and_then(parse) else { continue };
        if h.chunk != INIT || h.vtag != 0 || !ports.contains(&h.dst) {
            continue;
        }
        // State cookie parameter (type 7): required in an INIT-ACK; its content is ours to choose.
        let cookie = [0u8, 7, 0, 8, 0x70, 0x61, 0x6c, 0x69];
        let reply = packet(h.dst, h.src, h.init_tag, &init_chunk(INIT_ACK, h.init_tag ^ 0x5a5a_5a5a, &cookie));
        let to = SocketAddr::new(from.ip(), 0);
        let _ = sock.send_to(&reply, to);
    }
}

/// Sends an INIT to `ip:port` and waits, at most `timeout`, for the INIT-ACK that answers it.
pub fn probe(ip: IpAddr, port: u16, timeout: Duration) -> bool {
    let v6 = ip.is_ipv6();
    let Ok(sock) = raw_socket(v6) else { return false };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.subsec_nanos());
    let tag = (nanos ^ u32::from(port).rotate_left(16) ^ std::process::id()) | 1;
    let src_port = 30000 + u16::try_from(nanos % 20000).unwrap_or(0);
    let init = packet(src_port, port, 0, &init_chunk(INIT, tag, &[]));
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 65536];
    let mut next_send = Instant::now();
    while Instant::now() < deadline {
        if Instant::now() >= next_send {
            let _ = sock.send_to(&init, SocketAddr::new(ip, 0));
            next_send = Instant::now() + Duration::from_millis(300);
        }
        let wait = deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(100));
        let _ = sock.set_read_timeout(Some(wait.max(Duration::from_millis(1))));
        let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
        if from.ip() != ip {
            continue;
        }
        if let Some(h) = sctp_payload(&buf[..n], v6).and_then(parse)
            && h.chunk == INIT_ACK
            && h.vtag == tag
            && h.src == port
            && h.dst == src_port
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        // The standard CRC-32C check value.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn init_packets_parse_back() {
        let p = packet(1234, 80, 0, &init_chunk(INIT, 0xdead_beef, &[]));
        let h = parse(&p).unwrap();
        assert_eq!((h.src, h.dst, h.vtag, h.chunk, h.init_tag), (1234, 80, 0, INIT, 0xdead_beef));
    }
}
