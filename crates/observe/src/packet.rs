//! The flow a logged packet belongs to, read from the start of its IP header (the NFLOG payload).
//!
//! Only what the copy range captured is read: a packet whose L4 header was cut short is an error, a
//! non-first fragment (no L4 header at all) is a flow without ports. Pure functions over byte slices.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An IP protocol number, named in Kubernetes' words where it has one (`TCP`, `UDP`, `SCTP`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Protocol(pub u8);

impl Protocol {
    pub const ICMP: Protocol = Protocol(1);
    pub const TCP: Protocol = Protocol(6);
    pub const UDP: Protocol = Protocol(17);
    pub const ICMPV6: Protocol = Protocol(58);
    pub const SCTP: Protocol = Protocol(132);

    /// The name records use: `TCP`, `UDP`, `SCTP`, `ICMP`, `ICMPv6`, else the number.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Protocol::TCP => "TCP",
            Protocol::UDP => "UDP",
            Protocol::SCTP => "SCTP",
            Protocol::ICMP => "ICMP",
            Protocol::ICMPV6 => "ICMPv6",
            _ => return None,
        })
    }

    /// The protocol a record names (a name above, or a decimal number).
    pub fn from_name(name: &str) -> Option<Protocol> {
        [Protocol::TCP, Protocol::UDP, Protocol::SCTP, Protocol::ICMP, Protocol::ICMPV6]
            .into_iter()
            .find(|p| p.name() == Some(name))
            .or_else(|| name.parse().ok().map(Protocol))
    }

    /// Whether the protocol has ports at the start of its header.
    pub fn has_ports(self) -> bool {
        matches!(self, Protocol::TCP | Protocol::UDP | Protocol::SCTP) || self == UDPLITE
    }
}

const UDPLITE: Protocol = Protocol(136);

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "{}", self.0),
        }
    }
}

impl Serialize for Protocol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Protocol::from_name(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown protocol {s:?}")))
    }
}

/// The address family of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Family {
    IPv4,
    IPv6,
}

/// What the L4 header said.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum L4 {
    /// TCP, UDP, UDP-Lite or SCTP ports; TCP flags for TCP.
    Ports { src: u16, dst: u16, tcp_flags: Option<u8> },
    /// ICMP or ICMPv6 type and code.
    Icmp { r#type: u8, code: u8 },
    /// A non-first fragment: its L4 header is in an earlier fragment.
    Fragment,
    /// A protocol without ports this decoder reads (ESP, GRE, …) or IPv6's "no next header".
    Opaque,
}

/// The addresses, protocol and L4 fields of one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Packet {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The upper-layer protocol (after IPv6 extension headers).
    pub protocol: Protocol,
    pub l4: L4,
}

impl Packet {
    pub fn family(&self) -> Family {
        if self.src.is_ipv4() { Family::IPv4 } else { Family::IPv6 }
    }

    pub fn src_port(&self) -> Option<u16> {
        match self.l4 {
            L4::Ports { src, .. } => Some(src),
            _ => None,
        }
    }

    pub fn dst_port(&self) -> Option<u16> {
        match self.l4 {
            L4::Ports { dst, .. } => Some(dst),
            _ => None,
        }
    }

    pub fn tcp_flags(&self) -> Option<u8> {
        match self.l4 {
            L4::Ports { tcp_flags, .. } => tcp_flags,
            _ => None,
        }
    }

    /// ICMP type and code.
    pub fn icmp(&self) -> Option<(u8, u8)> {
        match self.l4 {
            L4::Icmp { r#type, code } => Some((r#type, code)),
            _ => None,
        }
    }
}

/// Why a payload gave no flow.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("payload is empty")]
    Empty,
    #[error("IP version {0} is neither 4 nor 6")]
    Version(u8),
    #[error("{header} header truncated: {have} of {need} bytes captured")]
    Truncated { header: &'static str, need: usize, have: usize },
    #[error("IPv4 header length {0} is below 20 bytes")]
    Ihl(usize),
    #[error("more than {0} IPv6 extension headers")]
    TooManyExtensions(usize),
}

/// The most IPv6 extension headers walked before giving up (the kernel's own parsers stop far earlier).
pub const MAX_IPV6_EXTENSIONS: usize = 16;

fn take<'a>(b: &'a [u8], at: usize, need: usize, header: &'static str) -> Result<&'a [u8], PayloadError> {
    b.get(at..).and_then(|r| r.get(..need)).ok_or(PayloadError::Truncated {
        header,
        need,
        have: b.len().saturating_sub(at),
    })
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Decodes the flow of the packet starting at `payload` (an IPv4 or IPv6 header).
pub fn decode_payload(payload: &[u8]) -> Result<Packet, PayloadError> {
    let first = *payload.first().ok_or(PayloadError::Empty)?;
    match first >> 4 {
        4 => decode_ipv4(payload),
        6 => decode_ipv6(payload),
        v => Err(PayloadError::Version(v)),
    }
}

fn decode_ipv4(p: &[u8]) -> Result<Packet, PayloadError> {
    let h = take(p, 0, 20, "IPv4")?;
    let ihl = usize::from(h[0] & 0x0f) * 4;
    if ihl < 20 {
        return Err(PayloadError::Ihl(ihl));
    }
    take(p, 0, ihl, "IPv4")?;
    let frag_offset = be16(h, 6) & 0x1fff;
    let protocol = Protocol(h[9]);
    let src = IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19]));
    let l4 = if frag_offset != 0 { L4::Fragment } else { decode_l4(p, ihl, protocol, Protocol::ICMP)? };
    Ok(Packet { src, dst, protocol, l4 })
}

fn decode_ipv6(p: &[u8]) -> Result<Packet, PayloadError> {
    let h = take(p, 0, 40, "IPv6")?;
    let addr = |at: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&h[at..at + 16]);
        IpAddr::V6(Ipv6Addr::from(a))
    };
    let (src, dst) = (addr(8), addr(24));
    let mut next = h[6];
    let mut at = 40;
    for _ in 0..=MAX_IPV6_EXTENSIONS {
        match next {
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6: length in 8-byte units, plus 8.
            0 | 43 | 60 | 135 | 139 | 140 => {
                let e = take(p, at, 2, "IPv6 extension")?;
                let len = (usize::from(e[1]) + 1) * 8;
                take(p, at, len, "IPv6 extension")?;
                next = e[0];
                at += len;
            }
            // Authentication header: length in 4-byte units, plus 2.
            51 => {
                let e = take(p, at, 2, "IPv6 authentication")?;
                let len = (usize::from(e[1]) + 2) * 4;
                take(p, at, len, "IPv6 authentication")?;
                next = e[0];
                at += len;
            }
            // Fragment header: 8 bytes; only the first fragment carries the L4 header.
            44 => {
                let e = take(p, at, 8, "IPv6 fragment")?;
                let offset = be16(e, 2) >> 3;
                next = e[0];
                at += 8;
                if offset != 0 {
                    return Ok(Packet { src, dst, protocol: Protocol(next), l4: L4::Fragment });
                }
            }
            _ => {
                let protocol = Protocol(next);
                let l4 = decode_l4(p, at, protocol, Protocol::ICMPV6)?;
                return Ok(Packet { src, dst, protocol, l4 });
            }
        }
    }
    Err(PayloadError::TooManyExtensions(MAX_IPV6_EXTENSIONS))
}

fn decode_l4(p: &[u8], at: usize, protocol: Protocol, icmp: Protocol) -> Result<L4, PayloadError> {
    if protocol == Protocol::TCP {
        // Flags are byte 13 of the TCP header.
        let t = take(p, at, 14, "TCP")?;
        Ok(L4::Ports { src: be16(t, 0), dst: be16(t, 2), tcp_flags: Some(t[13]) })
    } else if protocol.has_ports() {
        let header = if protocol == Protocol::SCTP { "SCTP" } else { "UDP" };
        let t = take(p, at, 4, header)?;
        Ok(L4::Ports { src: be16(t, 0), dst: be16(t, 2), tcp_flags: None })
    } else if protocol == icmp {
        let t = take(p, at, 2, if icmp == Protocol::ICMP { "ICMP" } else { "ICMPv6" })?;
        Ok(L4::Icmp { r#type: t[0], code: t[1] })
    } else {
        Ok(L4::Opaque)
    }
}

/// TCP flags as letters in bit order, FIN first: `S` for a SYN, `SA` for a SYN-ACK, `FA`, `RA`, `PA`
/// (F S R P A U E C).
pub fn tcp_flags_text(flags: u8) -> String {
    b"FSRPAUEC".iter().enumerate().filter(|(i, _)| flags & (1 << i) != 0).map(|(_, &c)| char::from(c)).collect()
}

#[cfg(test)]
pub(crate) mod build {
    //! Packets built byte by byte for tests.

    use std::net::{Ipv4Addr, Ipv6Addr};

    pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, l4: &[u8]) -> Vec<u8> {
        let total = (20 + l4.len()) as u16;
        let mut p = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, protocol, 0, 0];
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        p.extend_from_slice(l4);
        p
    }

    /// `next` is the first next-header value; `ext` the extension headers already chained.
    pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, ext_and_l4: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&(ext_and_l4.len() as u16).to_be_bytes());
        p.extend_from_slice(&[next, 64]);
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        p.extend_from_slice(ext_and_l4);
        p
    }

    pub fn tcp(src: u16, dst: u16, flags: u8) -> Vec<u8> {
        let mut t = vec![0u8; 20];
        t[0..2].copy_from_slice(&src.to_be_bytes());
        t[2..4].copy_from_slice(&dst.to_be_bytes());
        t[12] = 5 << 4;
        t[13] = flags;
        t
    }

    pub fn udp(src: u16, dst: u16, data: &[u8]) -> Vec<u8> {
        let mut t = vec![0u8; 8];
        t[0..2].copy_from_slice(&src.to_be_bytes());
        t[2..4].copy_from_slice(&dst.to_be_bytes());
        t[4..6].copy_from_slice(&((8 + data.len()) as u16).to_be_bytes());
        t.extend_from_slice(data);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    const A4: Ipv4Addr = Ipv4Addr::new(10, 244, 1, 5);
    const B4: Ipv4Addr = Ipv4Addr::new(10, 244, 2, 7);

    fn a6() -> Ipv6Addr {
        "fd00:10:244:1::5".parse().unwrap()
    }
    fn b6() -> Ipv6Addr {
        "fd00:10:244:2::7".parse().unwrap()
    }

    #[test]
    fn ipv4_tcp_syn() {
        let p = decode_payload(&ipv4(A4, B4, 6, &tcp(41234, 5432, 0x02))).unwrap();
        assert_eq!(p.src, IpAddr::V4(A4));
        assert_eq!(p.dst, IpAddr::V4(B4));
        assert_eq!(p.protocol, Protocol::TCP);
        assert_eq!(p.family(), Family::IPv4);
        assert_eq!((p.src_port(), p.dst_port()), (Some(41234), Some(5432)));
        assert_eq!(tcp_flags_text(p.tcp_flags().unwrap()), "S");
    }

    #[test]
    fn ipv4_with_options_skips_them() {
        let mut b = ipv4(A4, B4, 17, &[]);
        b[0] = 0x46; // IHL 6: 4 bytes of options
        b.extend_from_slice(&[1, 1, 1, 0]);
        b.extend_from_slice(&udp(53, 5353, b"x"));
        let p = decode_payload(&b).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.tcp_flags()), (Some(53), Some(5353), None));
    }

    #[test]
    fn ipv6_udp_after_hop_by_hop() {
        // Hop-by-hop: next header UDP, length 0 (8 bytes): a router alert option and padding.
        let mut ext = vec![17, 0, 5, 2, 0, 0, 1, 0];
        ext.extend_from_slice(&udp(40000, 53, b"query"));
        let p = decode_payload(&ipv6(a6(), b6(), 0, &ext)).unwrap();
        assert_eq!(p.src, IpAddr::V6(a6()));
        assert_eq!(p.dst, IpAddr::V6(b6()));
        assert_eq!(p.protocol, Protocol::UDP);
        assert_eq!(p.family(), Family::IPv6);
        assert_eq!((p.src_port(), p.dst_port()), (Some(40000), Some(53)));
    }

    #[test]
    fn ipv6_chained_extensions_and_fragments() {
        // Destination options (16 bytes) → first fragment → TCP.
        let mut ext = vec![44, 1];
        ext.extend_from_slice(&[0; 14]);
        ext.extend_from_slice(&[6, 0, 0, 1, 0, 0, 0, 9]); // offset 0, more fragments
        ext.extend_from_slice(&tcp(1, 443, 0x12));
        let p = decode_payload(&ipv6(a6(), b6(), 60, &ext)).unwrap();
        assert_eq!(p.dst_port(), Some(443));
        assert_eq!(tcp_flags_text(p.tcp_flags().unwrap()), "SA");

        // A later fragment has no L4 header.
        let ext = [6, 0, 0x05, 0x18, 0, 0, 0, 9, 0xde, 0xad];
        let p = decode_payload(&ipv6(a6(), b6(), 44, &ext)).unwrap();
        assert_eq!((p.protocol, p.l4), (Protocol::TCP, L4::Fragment));

        // Authentication header: (len + 2) * 4 bytes.
        let mut ext = vec![17, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        ext.extend_from_slice(&udp(7, 8, b""));
        assert_eq!(decode_payload(&ipv6(a6(), b6(), 51, &ext)).unwrap().dst_port(), Some(8));
    }

    #[test]
    fn icmp_and_icmpv6_type_and_code() {
        let p = decode_payload(&ipv4(A4, B4, 1, &[8, 0, 0xf7, 0xff, 0, 1, 0, 1])).unwrap();
        assert_eq!((p.protocol, p.icmp()), (Protocol::ICMP, Some((8, 0))));
        assert_eq!((p.src_port(), p.dst_port()), (None, None));
        let p = decode_payload(&ipv6(a6(), b6(), 58, &[128, 0, 0, 0])).unwrap();
        assert_eq!((p.protocol, p.icmp()), (Protocol::ICMPV6, Some((128, 0))));
        // ICMP inside IPv6 is not ICMPv6: no type read.
        assert_eq!(decode_payload(&ipv6(a6(), b6(), 1, &[8, 0])).unwrap().l4, L4::Opaque);
    }

    #[test]
    fn sctp_ports_and_opaque_protocols() {
        let p = decode_payload(&ipv4(A4, B4, 132, &[0x1f, 0x90, 0x0b, 0xb8, 0, 0, 0, 0])).unwrap();
        assert_eq!((p.protocol.to_string(), p.src_port(), p.dst_port()), ("SCTP".into(), Some(8080), Some(3000)));
        let p = decode_payload(&ipv4(A4, B4, 47, &[0; 4])).unwrap();
        assert_eq!((p.protocol.to_string(), p.l4), ("47".into(), L4::Opaque));
        assert_eq!(decode_payload(&ipv6(a6(), b6(), 59, &[])).unwrap().l4, L4::Opaque);
    }

    #[test]
    fn ipv4_later_fragment_has_no_ports() {
        let mut b = ipv4(A4, B4, 17, &[0xaa; 8]);
        b[6] = 0x00;
        b[7] = 0xb9; // offset 185 * 8
        assert_eq!(decode_payload(&b).unwrap().l4, L4::Fragment);
    }

    #[test]
    fn truncated_payloads_are_errors() {
        let full = ipv4(A4, B4, 6, &tcp(1, 2, 2));
        assert_eq!(decode_payload(&[]), Err(PayloadError::Empty));
        assert_eq!(decode_payload(&full[..19]), Err(PayloadError::Truncated { header: "IPv4", need: 20, have: 19 }));
        assert_eq!(decode_payload(&full[..33]), Err(PayloadError::Truncated { header: "TCP", need: 14, have: 13 }));
        assert!(decode_payload(&full[..34]).is_ok());
        let udp4 = ipv4(A4, B4, 17, &udp(1, 2, b""));
        assert_eq!(decode_payload(&udp4[..23]), Err(PayloadError::Truncated { header: "UDP", need: 4, have: 3 }));
        assert_eq!(
            decode_payload(&ipv4(A4, B4, 1, &[8])),
            Err(PayloadError::Truncated { header: "ICMP", need: 2, have: 1 })
        );
        let v6 = ipv6(a6(), b6(), 0, &[17, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(decode_payload(&v6), Err(PayloadError::Truncated { header: "IPv6 extension", need: 16, have: 8 }));
        assert_eq!(decode_payload(&v6[..39]), Err(PayloadError::Truncated { header: "IPv6", need: 40, have: 39 }));
        let mut bad_ihl = full.clone();
        bad_ihl[0] = 0x44;
        assert_eq!(decode_payload(&bad_ihl), Err(PayloadError::Ihl(16)));
        bad_ihl[0] = 0x4f;
        assert_eq!(decode_payload(&bad_ihl), Err(PayloadError::Truncated { header: "IPv4", need: 60, have: 40 }));
        assert_eq!(decode_payload(&[0x20; 40]), Err(PayloadError::Version(2)));
    }

    #[test]
    fn endless_extension_chains_stop() {
        let ext: Vec<u8> = std::iter::repeat_n([60u8, 0, 0, 0, 0, 0, 0, 0], 40).flatten().collect();
        assert_eq!(decode_payload(&ipv6(a6(), b6(), 60, &ext)), Err(PayloadError::TooManyExtensions(16)));
    }

    #[test]
    fn tcp_flag_letters() {
        assert_eq!(tcp_flags_text(0x02), "S");
        assert_eq!(tcp_flags_text(0x12), "SA");
        assert_eq!(tcp_flags_text(0x11), "FA");
        assert_eq!(tcp_flags_text(0x14), "RA");
        assert_eq!(tcp_flags_text(0x18), "PA");
        assert_eq!(tcp_flags_text(0xff), "FSRPAUEC");
        assert_eq!(tcp_flags_text(0), "");
    }

    #[test]
    fn protocol_names_round_trip() {
        for n in 0..=255u8 {
            let p = Protocol(n);
            assert_eq!(Protocol::from_name(&p.to_string()), Some(p));
        }
        assert_eq!(Protocol::from_name("tcp"), None);
    }
}
