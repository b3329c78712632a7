//! Events folded into flow records per key and window. Pure: the caller passes every time in.
//!
//! A key's window opens with its first event and lasts `window` (5 s by default). With `emit_first` (the
//! default) that first event is published at once as a record of count 1, so a follower sees a new flow
//! within the reader's batch timeout; the window's later events are folded into one more record published
//! when the window ends. So a window yields at most two records per key, and the counts of all records add
//! up to the events exactly (nothing is counted twice).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use crate::nflog::Event;
use crate::packet::Protocol;
use crate::prefix::Kind;
use crate::record::FlowRecord;

/// What events fold together: addresses, protocol, destination port and the log point (kind and id, which
/// name the direction). The source port is not part of it: every new connection has its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: Protocol,
    pub dst_port: Option<u16>,
    pub kind: Kind,
    pub id: u32,
}

impl FlowKey {
    pub fn of(e: &Event) -> FlowKey {
        FlowKey {
            src: e.packet.src,
            dst: e.packet.dst,
            protocol: e.packet.protocol,
            dst_port: e.packet.dst_port(),
            kind: e.prefix.kind,
            id: e.prefix.id,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregatorConfig {
    pub window: Duration,
    /// Keys with an open window at most; an event of a new key beyond that is published alone (count 1).
    pub max_open: usize,
    /// Publish a window's first event at once (see the module's doc).
    pub emit_first: bool,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        AggregatorConfig { window: Duration::from_secs(5), max_open: 16 * 1024, emit_first: true }
    }
}

struct Open {
    start: SystemTime,
    /// Events not yet published.
    pending: Option<FlowRecord>,
}

/// Open windows per key.
pub struct Aggregator {
    config: AggregatorConfig,
    open: HashMap<FlowKey, Open>,
    unfolded: u64,
}

impl Aggregator {
    pub fn new(config: AggregatorConfig) -> Self {
        Aggregator { config, open: HashMap::new(), unfolded: 0 }
    }

    /// Folds an event in; records it completes or publishes are appended to `out`.
    pub fn push(&mut self, e: &Event, out: &mut Vec<FlowRecord>) {
        let key = FlowKey::of(e);
        let window = self.config.window;
        if let Some(open) = self.open.get_mut(&key) {
            // An event stamped slightly before its window's start (another CPU's clock) still belongs to it.
            if e.time.duration_since(open.start).map_or(true, |d| d < window) {
                match &mut open.pending {
                    Some(r) => r.fold(e),
                    None => open.pending = Some(FlowRecord::from_event(e)),
                }
                return;
            }
            if let Some(r) = self.open.remove(&key).and_then(|o| o.pending) {
                out.push(r);
            }
        } else if self.open.len() >= self.config.max_open {
            self.unfolded += 1;
            out.push(FlowRecord::from_event(e));
            return;
        }
        let record = FlowRecord::from_event(e);
        let pending = if self.config.emit_first {
            out.push(record);
            None
        } else {
            Some(record)
        };
        self.open.insert(key, Open { start: e.time, pending });
    }

    /// Closes every window that has ended by `now`, appending their pending records to `out` (oldest first).
    pub fn expire(&mut self, now: SystemTime, out: &mut Vec<FlowRecord>) {
        let window = self.config.window;
        let start = out.len();
        self.open.retain(|_, o| {
            let ended = now.duration_since(o.start).is_ok_and(|d| d >= window);
            if ended && let Some(r) = o.pending.take() {
                out.push(r);
            }
            !ended
        });
        out[start..].sort_by_key(|r| r.time);
    }

    /// Closes every window (shutdown), appending pending records to `out`.
    pub fn flush(&mut self, out: &mut Vec<FlowRecord>) {
        let start = out.len();
        out.extend(self.open.drain().filter_map(|(_, o)| o.pending));
        out[start..].sort_by_key(|r| r.time);
    }

    /// Keys with an open window.
    pub fn open_keys(&self) -> usize {
        self.open.len()
    }

    /// Events published alone because `max_open` keys were open.
    pub fn unfolded(&self) -> u64 {
        self.unfolded
    }
}

impl Default for Aggregator {
    fn default() -> Self {
        Aggregator::new(AggregatorConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::packet::{L4, Packet};
    use crate::prefix::Prefix;

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(1_000_000 + ms)
    }

    fn event(ms: u64, src_port: u16, dst_port: u16) -> Event {
        Event {
            group: 5,
            seq: None,
            time: at(ms),
            kernel_time: true,
            in_ifindex: None,
            out_ifindex: None,
            prefix: Prefix::new(Kind::D, 1),
            packet: Packet {
                src: Ipv4Addr::new(10, 0, 0, 1).into(),
                dst: Ipv4Addr::new(10, 0, 0, 2).into(),
                protocol: Protocol::TCP,
                l4: L4::Ports { src: src_port, dst: dst_port, tcp_flags: Some(2) },
            },
        }
    }

    fn summary(rs: &[FlowRecord]) -> Vec<(u64, u64, u64, Option<u16>)> {
        let ms = |t: SystemTime| t.duration_since(at(0)).unwrap().as_millis() as u64;
        rs.iter().map(|r| (r.count, ms(r.first_seen), ms(r.last_seen), r.dst.port)).collect()
    }

    #[test]
    fn first_event_at_once_then_the_rest_of_the_window_folded() {
        let mut a = Aggregator::default();
        let mut out = Vec::new();
        a.push(&event(0, 1000, 80), &mut out);
        assert_eq!(summary(&out), vec![(1, 0, 0, Some(80))]);
        // Other source ports fold into the same key.
        for (ms, port) in [(1000, 1001), (2000, 1002), (4999, 1003)] {
            a.push(&event(ms, port, 80), &mut out);
        }
        assert_eq!(out.len(), 1);
        a.expire(at(4999), &mut out);
        assert_eq!(out.len(), 1, "the window has not ended");
        a.expire(at(5000), &mut out);
        assert_eq!(summary(&out[1..]), vec![(3, 1000, 4999, Some(80))]);
        assert_eq!(out[1].time, at(4999));
        assert_eq!(a.open_keys(), 0);
        assert_eq!(out.iter().map(|r| r.count).sum::<u64>(), 4);
    }

    #[test]
    fn a_lone_event_yields_one_record() {
        let mut a = Aggregator::default();
        let mut out = Vec::new();
        a.push(&event(0, 1000, 80), &mut out);
        a.expire(at(60_000), &mut out);
        assert_eq!(summary(&out), vec![(1, 0, 0, Some(80))]);
    }

    #[test]
    fn an_event_after_the_window_closes_it_and_opens_the_next() {
        let mut a = Aggregator::default();
        let mut out = Vec::new();
        a.push(&event(0, 1, 80), &mut out);
        a.push(&event(100, 1, 80), &mut out);
        a.push(&event(5000, 1, 80), &mut out);
        assert_eq!(summary(&out), vec![(1, 0, 0, Some(80)), (1, 100, 100, Some(80)), (1, 5000, 5000, Some(80))]);
        a.push(&event(5001, 1, 80), &mut out);
        a.flush(&mut out);
        assert_eq!(summary(&out[3..]), vec![(1, 5001, 5001, Some(80))]);
    }

    #[test]
    fn keys_differ_by_port_and_log_point() {
        let mut a = Aggregator::new(AggregatorConfig { emit_first: false, ..AggregatorConfig::default() });
        let mut out = Vec::new();
        a.push(&event(0, 1, 80), &mut out);
        a.push(&event(1, 1, 443), &mut out);
        let mut other = event(2, 1, 80);
        other.prefix = Prefix::new(Kind::D, 2);
        a.push(&other, &mut out);
        a.push(&event(3, 1, 80), &mut out);
        assert!(out.is_empty(), "without emit_first nothing is published before the window ends");
        assert_eq!(a.open_keys(), 3);
        a.expire(at(5002), &mut out);
        assert_eq!(summary(&out), vec![(1, 1, 1, Some(443)), (1, 2, 2, Some(80)), (2, 0, 3, Some(80))]);
    }

    #[test]
    fn an_early_stamp_stays_in_its_window() {
        let mut a = Aggregator::new(AggregatorConfig { emit_first: false, ..AggregatorConfig::default() });
        let mut out = Vec::new();
        a.push(&event(10, 1, 80), &mut out);
        a.push(&event(9, 1, 80), &mut out);
        a.flush(&mut out);
        assert_eq!(summary(&out), vec![(2, 9, 10, Some(80))]);
    }

    #[test]
    fn beyond_max_open_events_are_published_alone() {
        let mut a = Aggregator::new(AggregatorConfig { max_open: 2, ..AggregatorConfig::default() });
        let mut out = Vec::new();
        for port in [1, 2, 3, 3] {
            a.push(&event(0, 9, port), &mut out);
        }
        assert_eq!(a.open_keys(), 2);
        assert_eq!(a.unfolded(), 2);
        assert_eq!(summary(&out), vec![(1, 0, 0, Some(1)), (1, 0, 0, Some(2)), (1, 0, 0, Some(3)), (1, 0, 0, Some(3))]);
    }
}
