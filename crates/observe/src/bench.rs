//! Throughput of the reader's userspace path on synthetic datagrams, for a `palisade bench observe`: decode,
//! loss accounting and aggregation, without the kernel. (It reads the clock; nothing else here does.)

use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::aggregate::Aggregator;
use crate::nflog::{LoggedPacket, decode_datagram, encode_packet};
use crate::prefix::{Kind, Prefix};
use crate::seq::SeqTracker;

/// What [`decode_throughput`] measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecodeThroughput {
    pub events: u64,
    pub datagrams: u64,
    pub records: u64,
    pub elapsed: Duration,
    pub events_per_second: f64,
    pub nanos_per_event: f64,
}

/// Decodes, counts and aggregates `events` TCP SYNs (IPv4, 1,000 distinct keys) delivered `batch` to a
/// datagram, as the kernel batches them with `qthresh`.
pub fn decode_throughput(events: usize, batch: usize) -> DecodeThroughput {
    let batch = batch.max(1);
    let start_time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let datagrams: Vec<Vec<u8>> = (0..events)
        .collect::<Vec<_>>()
        .chunks(batch)
        .map(|chunk| {
            chunk
                .iter()
                .flat_map(|&i| {
                    let key = (i % 1000) as u16;
                    let mut ip = vec![0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0];
                    ip.extend_from_slice(&Ipv4Addr::new(10, 244, (key >> 8) as u8, key as u8).octets());
                    ip.extend_from_slice(&Ipv4Addr::new(10, 244, 200, 1).octets());
                    ip.extend_from_slice(&(40000 + (i % 20000) as u16).to_be_bytes());
                    ip.extend_from_slice(&5432u16.to_be_bytes());
                    ip.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
                    encode_packet(&LoggedPacket {
                        group: 5,
                        seq: Some(i as u32),
                        timestamp: Some(start_time + Duration::from_micros(i as u64)),
                        in_ifindex: Some(3),
                        out_ifindex: Some(4),
                        mark: None,
                        prefix: Some(Prefix::new(Kind::D, 0x9c1e_04aa).to_string().into_bytes()),
                        payload: Some(ip),
                    })
                })
                .collect()
        })
        .collect();
    let mut seq = SeqTracker::new();
    let mut aggregator = Aggregator::default();
    let mut out = Vec::new();
    let mut decoded = 0u64;
    let mut records = 0u64;
    let started = Instant::now();
    for d in &datagrams {
        for e in decode_datagram(d, start_time).into_iter().flatten() {
            if let Some(s) = e.seq {
                seq.observe(e.group, s);
            }
            aggregator.push(&e, &mut out);
            decoded += 1;
        }
        records += out.len() as u64;
        out.clear();
    }
    aggregator.flush(&mut out);
    records += out.len() as u64;
    let elapsed = started.elapsed();
    let secs = elapsed.as_secs_f64().max(1e-9);
    DecodeThroughput {
        events: decoded,
        datagrams: datagrams.len() as u64,
        records,
        elapsed,
        events_per_second: decoded as f64 / secs,
        nanos_per_event: secs * 1e9 / decoded.max(1) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_synthetic_event_decodes_without_loss() {
        let r = decode_throughput(2000, 32);
        assert_eq!((r.events, r.datagrams), (2000, 63));
        // 1,000 keys, each with a first record and one folding its second packet.
        assert_eq!(r.records, 2000);
    }
}
