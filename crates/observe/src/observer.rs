//! The consumer side wired together: events from the reader's queue folded by the [`Aggregator`], each
//! record joined by the agent's [`Attribute`], then published to the [`SharedRing`] followers read.
//! No I/O: the caller passes the time and drives it from its own thread.

use std::sync::Arc;
use std::time::SystemTime;

use crate::aggregate::{Aggregator, AggregatorConfig};
use crate::nflog::Event;
use crate::record::{Attribute, FlowRecord};
use crate::ring::SharedRing;

pub struct Observer<A: Attribute> {
    aggregator: Aggregator,
    ring: Arc<SharedRing<FlowRecord>>,
    attribute: A,
    scratch: Vec<FlowRecord>,
    published: u64,
}

impl<A: Attribute> Observer<A> {
    pub fn new(config: AggregatorConfig, ring: Arc<SharedRing<FlowRecord>>, attribute: A) -> Self {
        Observer { aggregator: Aggregator::new(config), ring, attribute, scratch: Vec::new(), published: 0 }
    }

    /// Folds `events` in and publishes what they complete, plus every window ended by `now`.
    pub fn ingest(&mut self, events: &[Event], now: SystemTime) {
        for e in events {
            self.aggregator.push(e, &mut self.scratch);
        }
        self.aggregator.expire(now, &mut self.scratch);
        self.publish();
    }

    /// Publishes every window ended by `now` (call it when no event came for a while).
    pub fn tick(&mut self, now: SystemTime) {
        self.ingest(&[], now);
    }

    /// Publishes every open window (shutdown).
    pub fn flush(&mut self) {
        self.aggregator.flush(&mut self.scratch);
        self.publish();
    }

    fn publish(&mut self) {
        if self.scratch.is_empty() {
            return;
        }
        for r in &mut self.scratch {
            self.attribute.attribute(r);
        }
        self.published += self.scratch.len() as u64;
        self.ring.extend(self.scratch.drain(..));
    }

    /// Records published so far.
    pub fn published(&self) -> u64 {
        self.published
    }

    pub fn aggregator(&self) -> &Aggregator {
        &self.aggregator
    }

    pub fn ring(&self) -> &Arc<SharedRing<FlowRecord>> {
        &self.ring
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::*;
    use crate::packet::{L4, Packet, Protocol};
    use crate::prefix::{Kind, Prefix};

    fn event(ms: u64) -> Event {
        Event {
            group: 5,
            seq: None,
            time: SystemTime::UNIX_EPOCH + Duration::from_millis(ms),
            kernel_time: true,
            in_ifindex: None,
            out_ifindex: None,
            prefix: Prefix::new(Kind::D, 7),
            packet: Packet {
                src: Ipv4Addr::new(10, 0, 0, 1).into(),
                dst: Ipv4Addr::new(10, 0, 0, 2).into(),
                protocol: Protocol::UDP,
                l4: L4::Ports { src: 1, dst: 53, tcp_flags: None },
            },
        }
    }

    #[test]
    fn records_are_joined_before_followers_see_them() {
        let ring = Arc::new(SharedRing::new(16));
        let mut o = Observer::new(AggregatorConfig::default(), Arc::clone(&ring), |r: &mut FlowRecord| {
            r.node = Some("node-a".into());
            r.isolated_by = Some(vec!["shop/default-deny".into()]);
        });
        o.ingest(&[event(0), event(10), event(20)], SystemTime::UNIX_EPOCH + Duration::from_millis(30));
        let p = ring.after(0, 10);
        assert_eq!(p.items.len(), 1, "the first packet at once");
        assert_eq!(p.items[0].1.node.as_deref(), Some("node-a"));
        o.tick(SystemTime::UNIX_EPOCH + Duration::from_secs(5));
        let p = ring.after(p.next, 10);
        assert_eq!(p.items.iter().map(|(_, r)| r.count).collect::<Vec<_>>(), vec![2]);
        assert_eq!(p.items[0].1.isolated_by, Some(vec!["shop/default-deny".to_string()]));
        assert_eq!(o.published(), 2);
    }
}
