//! Decoding never panics, whatever the bytes; loss counts exactly whatever is lost.

use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

use palisade_observe::nflog::{LoggedPacket, encode_packet, messages};
use palisade_observe::packet::decode_payload;
use palisade_observe::{Aggregator, AggregatorConfig, Prefix, SeqTracker, decode_datagram};
use proptest::collection::vec;
use proptest::prelude::*;

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// A well-formed NFLOG packet message (UDP over IPv4) to mutate.
fn valid() -> Vec<u8> {
    let mut ip = vec![0x45, 0, 0, 29, 0, 0, 0x40, 0, 64, 17, 0, 0];
    ip.extend_from_slice(&Ipv4Addr::new(10, 0, 0, 1).octets());
    ip.extend_from_slice(&Ipv4Addr::new(10, 0, 0, 2).octets());
    ip.extend_from_slice(&[0x30, 0x39, 0x00, 0x35, 0, 9, 0, 0, b'x']);
    encode_packet(&LoggedPacket {
        group: 5,
        seq: Some(1),
        timestamp: Some(t0()),
        in_ifindex: Some(2),
        out_ifindex: Some(3),
        mark: Some(7),
        prefix: Some(b"pal1 D 0000abcd".to_vec()),
        payload: Some(ip),
    })
}

/// Frames `body` as one NFLOG packet message (netlink header, netfilter header) so random bytes reach the
/// attribute parser rather than failing at the framing.
fn framed(body: &[u8], group: u16) -> Vec<u8> {
    let len = (16 + 4 + body.len()) as u32;
    let mut m = len.to_ne_bytes().to_vec();
    m.extend_from_slice(&(4u16 << 8).to_ne_bytes());
    m.extend_from_slice(&[0; 10]);
    m.extend_from_slice(&[2, 0]);
    m.extend_from_slice(&group.to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// Attributes with random types (around NFLOG's 1..=19) and values, correctly framed.
fn attributes(nlas: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (kind, value) in nlas {
        b.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(value);
        b.resize((b.len() + 3) & !3, 0);
    }
    b
}

#[test]
fn the_valid_message_decodes() {
    let events = decode_datagram(&valid(), t0());
    let e = events[0].as_ref().unwrap();
    assert_eq!((e.packet.src_port(), e.packet.dst_port(), e.time), (Some(12345), Some(53), t0()));
    assert_eq!(e.prefix.to_string(), "pal1 D 0000abcd");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..600)) {
        let _ = decode_datagram(&bytes, t0());
        let _ = decode_payload(&bytes);
        let _ = Prefix::parse(&bytes);
    }

    #[test]
    fn random_attribute_bodies_never_panic(body in vec(any::<u8>(), 0..400), group: u16) {
        let _ = decode_datagram(&framed(&body, group), t0());
    }

    #[test]
    fn random_attributes_never_panic(nlas in vec((0u16..24, vec(any::<u8>(), 0..64)), 0..10)) {
        // Whatever decodes is a Palisade event of the group; everything else is an error value.
        for e in decode_datagram(&framed(&attributes(&nlas), 5), t0()).into_iter().flatten() {
            prop_assert_eq!(e.group, 5);
        }
    }

    #[test]
    fn mutated_messages_never_panic(edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6), cut in any::<prop::sample::Index>()) {
        let mut m = valid();
        for (at, byte) in &edits {
            let i = at.index(m.len());
            m[i] = *byte;
        }
        let _ = decode_datagram(&m, t0());
        let n = cut.index(m.len() + 1);
        let _ = decode_datagram(&m[..n], t0());
        let _ = messages(&m).count();
    }

    #[test]
    fn random_ip_headers_never_panic(version in prop::sample::select(vec![0x45u8, 0x46, 0x4f, 0x60]), rest in vec(any::<u8>(), 0..120)) {
        let mut p = vec![version];
        p.extend_from_slice(&rest);
        let _ = decode_payload(&p);
    }

    /// Whatever subset of a group's packets arrives (in order), delivered + lost = the number logged up
    /// to the last one delivered.
    #[test]
    fn loss_is_exact(delivered in vec(any::<bool>(), 1..500)) {
        let mut t = SeqTracker::new();
        let mut got = 0u64;
        let mut last = None;
        for (seq, keep) in delivered.iter().enumerate() {
            if *keep {
                t.observe(5, seq as u32);
                got += 1;
                last = Some(seq as u64);
            }
        }
        prop_assert_eq!(got + t.lost(), last.map_or(0, |l| l + 1));
    }

    /// Records' counts add up to the events folded, whatever the times and keys.
    #[test]
    fn aggregation_conserves_packets(events in vec((0u64..20_000, 0u16..4), 0..200), emit_first: bool) {
        let mut a = Aggregator::new(AggregatorConfig { emit_first, ..AggregatorConfig::default() });
        let mut out = Vec::new();
        let mut sorted = events.clone();
        sorted.sort();
        let base = decode_datagram(&valid(), t0()).remove(0).unwrap();
        for (ms, port) in &sorted {
            let mut e = base.clone();
            e.time = t0() + Duration::from_millis(*ms);
            if let palisade_observe::L4::Ports { dst, .. } = &mut e.packet.l4 {
                *dst = *port;
            }
            a.push(&e, &mut out);
            if ms % 7 == 0 {
                a.expire(e.time, &mut out);
            }
        }
        a.flush(&mut out);
        prop_assert_eq!(out.iter().map(|r| r.count).sum::<u64>(), events.len() as u64);
    }
}
