//! The flow log (OBSERVABILITY.md §4.1): the kernel's deny events (NFLOG group 5, written by the compile's log
//! rules) read on their own thread, folded per flow key and window, joined with what the agent knows, and kept
//! in a bounded ring that `/v1/flows` serves.
//!
//! The join runs on the reconcile loop's thread, between syncs, so it sees the store and the id map the kernel
//! table was compiled from: the prefix id names the pod chain (pod and direction), addresses name the pods,
//! and the engine decides the connection: `isolatedBy`, `admittedBy`, `nearMisses`, the explanation, and
//! whether it agrees with the kernel's drop (`kernelAgrees`; a disagreement is counted as divergence).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use palisade_engine::explain::verdict_text;
use palisade_engine::policy::Direction as EngineDirection;
use palisade_engine::verdict::{NearMiss, RuleMatch};
use palisade_engine::{Connection, Endpoint as EngineEndpoint, Index, IpFamily, ObjectKey, Protocol as EngineProtocol};
use palisade_nft::LogTarget;
use palisade_observe::record::{NearMissRef, RuleRef};
use palisade_observe::{
    Aggregator, AggregatorConfig, Attribute, Direction, Event, FlowRecord, Kind, Protocol, Reader, SharedRing,
};

/// Records kept for `/v1/flows` (§4.4: about 5 MB).
pub const RING: usize = 16 * 1024;
/// How long a removed id still resolves: events in flight across a change still find their pod.
pub const TOMBSTONE: Duration = Duration::from_secs(300);

/// Addresses → the pods holding them (several: host-network pods share their node's).
pub type Addresses = HashMap<IpAddr, Vec<ObjectKey>>;

/// The addresses of every pod of the index.
pub fn addresses(index: &Index) -> Addresses {
    let mut out: Addresses = HashMap::new();
    for p in index.pods() {
        for ip in &p.facts.ips {
            out.entry(*ip).or_default().push(p.key.clone());
        }
    }
    out
}

/// What a record is joined with.
pub struct Join<'a> {
    pub node: &'a str,
    pub index: &'a Index,
    /// Final-drop id → its pod chain (current ids, then tombstones).
    pub targets: &'a dyn Fn(u32) -> Option<LogTarget>,
    pub addresses: &'a Addresses,
}

fn direction(d: EngineDirection) -> Direction {
    match d {
        EngineDirection::Ingress => Direction::Ingress,
        EngineDirection::Egress => Direction::Egress,
    }
}

fn near_miss(m: &NearMiss) -> NearMissRef {
    let (kind, rule, path, detail) = match m {
        NearMiss::PortDidNotMatch { rule } => {
            ("portDidNotMatch", rule, rule.peer_path(), format!("the port is not in {}.ports", rule.rule_path()))
        }
        NearMiss::PeerDidNotMatch { rule } => ("peerDidNotMatch", rule, rule.port_path(), {
            let field = rule.direction.peers_field();
            format!("the peer is not in {}.{field}", rule.rule_path())
        }),
    };
    NearMissRef { kind: kind.to_owned(), policy: rule.policy.to_string(), path, detail: Some(detail) }
}

fn rule_ref(m: &RuleMatch) -> RuleRef {
    RuleRef { policy: m.policy.to_string(), path: m.rule_path() }
}

impl Join<'_> {
    /// The pod at `ip`, unless none or several hold it (then whether it was ambiguous).
    fn pod_at(&self, ip: IpAddr) -> (Option<ObjectKey>, bool) {
        match self.addresses.get(&ip).map(Vec::as_slice) {
            Some([one]) => (Some(one.clone()), false),
            Some([]) | None => (None, false),
            Some(_) => (None, true),
        }
    }
}

impl Attribute for Join<'_> {
    fn attribute(&mut self, r: &mut FlowRecord) {
        r.node = Some(self.node.to_owned());
        let (mut src, src_ambiguous) = self.pod_at(r.src.ip);
        let (mut dst, dst_ambiguous) = self.pod_at(r.dst.ip);
        r.src_ambiguous = src_ambiguous;
        r.dst_ambiguous = dst_ambiguous;
        let side = match r.kernel.kind {
            Kind::D => match (self.targets)(r.kernel.id) {
                Some(t) => {
                    r.kernel.chain = Some(t.chain.clone());
                    r.direction = Some(direction(t.direction));
                    // The chain names the pod of its side exactly, whoever else holds the address.
                    match t.direction {
                        EngineDirection::Ingress => (dst, r.dst_ambiguous) = (Some(t.pod.clone()), false),
                        EngineDirection::Egress => (src, r.src_ambiguous) = (Some(t.pod.clone()), false),
                    }
                    Some(t.direction)
                }
                None => {
                    r.explanation = Some(format!(
                        "log id {:08x} names no pod chain of this node's table now or in the last {} minutes",
                        r.kernel.id,
                        TOMBSTONE.as_secs() / 60
                    ));
                    None
                }
            },
            Kind::S => {
                r.explanation = Some(format!(
                    "dropped before policy: source address {} is not its pod's on the interface it came from",
                    r.src.ip
                ));
                None
            }
            Kind::I => {
                r.explanation = Some("dropped before policy: conntrack found the packet invalid".to_owned());
                None
            }
            Kind::A | Kind::U => {
                r.explanation = Some(format!("{} records are not joined by this agent yet", r.kernel.kind));
                None
            }
        };
        for (end, key) in [(&mut r.src, &src), (&mut r.dst, &dst)] {
            if let Some(k) = key {
                end.namespace = Some(k.namespace.clone());
                end.pod = Some(k.name.clone());
            }
        }
        let Some(side_dir) = side else { return };
        let protocol = match r.protocol {
            Protocol::TCP => EngineProtocol::Tcp,
            Protocol::UDP => EngineProtocol::Udp,
            Protocol::SCTP => EngineProtocol::Sctp,
            other => {
                r.explanation =
                    Some(format!("{other}: NetworkPolicy admits only TCP, UDP and SCTP, so an isolated pod drops it"));
                r.kernel_agrees = Some(true);
                return;
            }
        };
        let Some(port) = r.dst.port else {
            r.explanation = Some("no destination port in the logged packet (a fragment?)".to_owned());
            return;
        };
        let end = |k: Option<ObjectKey>, ip: IpAddr| k.map_or(EngineEndpoint::Ip(ip), EngineEndpoint::Pod);
        let family = if r.src.ip.is_ipv4() { IpFamily::V4 } else { IpFamily::V6 };
        let conn = Connection::new(end(src, r.src.ip), end(dst, r.dst.ip), protocol, port).with_family(family);
        let verdict = match self.index.decide(&conn) {
            Ok(v) => v,
            Err(e) => {
                r.explanation = Some(format!("the engine cannot decide {conn}: {e}"));
                return;
            }
        };
        let judged = match side_dir {
            EngineDirection::Ingress => verdict.ingress.as_ref(),
            EngineDirection::Egress => verdict.egress.as_ref(),
        };
        r.explanation = Some(verdict_text(self.index, &verdict));
        let Some(s) = judged else {
            r.kernel_agrees = Some(false);
            return;
        };
        r.isolated_by = Some(s.selected_by.iter().map(ToString::to_string).collect());
        r.admitted_by = s.admitted_by.as_ref().map(rule_ref);
        r.near_misses = (!s.near_misses.is_empty()).then(|| s.near_misses.iter().map(near_miss).collect());
        // The kernel dropped the packet at this side's final drop: the engine agrees if this side denies.
        r.kernel_agrees = Some(!s.allowed);
    }
}

/// The reader, the aggregation and the ring, driven by the reconcile loop.
pub struct FlowLog {
    reader: Option<Reader>,
    aggregator: Aggregator,
    ring: Arc<SharedRing<FlowRecord>>,
    events: Vec<Event>,
    scratch: Vec<FlowRecord>,
    /// The id map as last copied from the compiler, its generation, and removed ids with when they went.
    ids: BTreeMap<u32, LogTarget>,
    generation: Option<u64>,
    tombstones: BTreeMap<u32, (LogTarget, Instant)>,
    /// Pod addresses, rebuilt when the agent synced since.
    addresses: Option<(u64, Addresses)>,
    /// Records whose join found the engine and the kernel disagreeing.
    pub divergence: u64,
}

/// What one turn of [`FlowLog::pump`] produced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pumped {
    pub events: usize,
    pub records: usize,
    pub divergent: usize,
}

impl FlowLog {
    /// A flow log fed by `reader` (`None`: events come through [`FlowLog::ingest`] only, as in tests).
    pub fn new(reader: Option<Reader>) -> FlowLog {
        FlowLog {
            reader,
            aggregator: Aggregator::new(AggregatorConfig::default()),
            ring: Arc::new(SharedRing::new(RING)),
            events: Vec::new(),
            scratch: Vec::new(),
            ids: BTreeMap::new(),
            generation: None,
            tombstones: BTreeMap::new(),
            addresses: None,
            divergence: 0,
        }
    }

    pub fn ring(&self) -> Arc<SharedRing<FlowRecord>> {
        Arc::clone(&self.ring)
    }

    pub fn reader(&self) -> Option<&Reader> {
        self.reader.as_ref()
    }

    /// Takes the compiler's id map if it changed; ids that went stay resolvable for [`TOMBSTONE`].
    pub fn update_ids(&mut self, generation: u64, ids: &BTreeMap<u32, LogTarget>, now: Instant) {
        if self.generation == Some(generation) {
            return;
        }
        for (id, t) in &self.ids {
            if ids.get(id) != Some(t) {
                self.tombstones.insert(*id, (t.clone(), now));
            }
        }
        self.tombstones.retain(|id, (_, since)| !ids.contains_key(id) && now.duration_since(*since) < TOMBSTONE);
        self.ids = ids.clone();
        self.generation = Some(generation);
    }

    /// Drains the reader's queue (waiting up to `wait` for the first event) and publishes the records that
    /// completes, joined against `index` (its addresses rebuilt when `epoch` moved).
    pub fn pump(&mut self, wait: Duration, node: &str, index: &Index, epoch: u64) -> Pumped {
        let mut events = std::mem::take(&mut self.events);
        if let Some(r) = &self.reader {
            r.queue().drain_into(&mut events, 4096, wait);
        }
        let p = self.ingest(&events, SystemTime::now(), node, index, epoch);
        events.clear();
        self.events = events;
        p
    }

    /// Folds `events` in and publishes the records they and the time `now` complete, joined.
    pub fn ingest(&mut self, events: &[Event], now: SystemTime, node: &str, index: &Index, epoch: u64) -> Pumped {
        let mut scratch = std::mem::take(&mut self.scratch);
        for e in events {
            self.aggregator.push(e, &mut scratch);
        }
        self.aggregator.expire(now, &mut scratch);
        let mut divergent = 0;
        if !scratch.is_empty() {
            if self.addresses.as_ref().is_none_or(|(e, _)| *e != epoch) {
                self.addresses = Some((epoch, addresses(index)));
            }
            let empty = Addresses::new();
            let addresses = self.addresses.as_ref().map_or(&empty, |(_, a)| a);
            let (ids, tombstones) = (&self.ids, &self.tombstones);
            let targets = |id: u32| ids.get(&id).or_else(|| tombstones.get(&id).map(|(t, _)| t)).cloned();
            let mut join = Join { node, index, targets: &targets, addresses };
            divergent = join_all(&mut scratch, &mut join);
        }
        self.divergence += divergent as u64;
        let records = scratch.len();
        self.ring.extend(scratch.drain(..));
        self.scratch = scratch;
        Pumped { events: events.len(), records, divergent }
    }

    /// The pod chain an id names, current or recently removed.
    pub fn target(&self, id: u32) -> Option<LogTarget> {
        self.ids.get(&id).or_else(|| self.tombstones.get(&id).map(|(t, _)| t)).cloned()
    }
}

/// Joins every record of `records` and returns how many the engine and the kernel disagree on.
pub fn join_all(records: &mut [FlowRecord], join: &mut Join) -> usize {
    let mut divergent = 0;
    for r in records {
        join.attribute(r);
        divergent += usize::from(r.kernel_agrees == Some(false));
    }
    divergent
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use palisade_engine::{Cluster, load_str};
    use palisade_observe::{L4, Packet, Prefix, Verdict};

    use super::*;

    const CLUSTER: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: shop, labels: {app: db}}
status: {podIP: 10.0.0.2}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-ingress, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: 80}]}]
"#;

    fn index() -> Index {
        let loaded = load_str("shop.yaml", CLUSTER);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        Index::build(&Cluster::from_objects(loaded.objects.into_iter().map(|o| o.value)))
    }

    fn event(kind: Kind, id: u32, protocol: Protocol, dst_port: u16, ms: u64) -> Event {
        Event {
            group: 5,
            seq: None,
            time: SystemTime::UNIX_EPOCH + Duration::from_millis(ms),
            kernel_time: true,
            in_ifindex: None,
            out_ifindex: None,
            prefix: Prefix::new(kind, id),
            packet: Packet {
                src: Ipv4Addr::new(10, 0, 0, 1).into(),
                dst: Ipv4Addr::new(10, 0, 0, 2).into(),
                protocol,
                l4: L4::Ports { src: 40000, dst: dst_port, tcp_flags: Some(0x02) },
            },
        }
    }

    fn db_ingress() -> BTreeMap<u32, LogTarget> {
        let t = LogTarget {
            pod: ObjectKey::new("shop", "db"),
            direction: EngineDirection::Ingress,
            chain: "ing_shop__db".into(),
        };
        BTreeMap::from([(0x9c1e_04aa, t)])
    }

    /// Publishes one event's record, joined, and returns it.
    fn joined(flows: &mut FlowLog, e: Event) -> FlowRecord {
        let before = flows.ring().latest();
        flows.ingest(&[e], SystemTime::UNIX_EPOCH, "node-a", &index(), 1);
        let page = flows.ring().after(before, 10);
        assert_eq!(page.items.len(), 1, "the first packet of a key is published at once");
        page.items[0].1.clone()
    }

    #[test]
    fn a_deny_event_is_joined_with_its_pods_and_the_engines_explanation() {
        let mut flows = FlowLog::new(None);
        flows.update_ids(1, &db_ingress(), Instant::now());
        let r = joined(&mut flows, event(Kind::D, 0x9c1e_04aa, Protocol::TCP, 5432, 0));
        assert_eq!(
            (r.node.as_deref(), r.verdict, r.direction),
            (Some("node-a"), Some(Verdict::Denied), Some(Direction::Ingress))
        );
        assert_eq!((r.src.namespace.as_deref(), r.src.pod.as_deref()), (Some("shop"), Some("web")));
        assert_eq!(r.dst.pod.as_deref(), Some("db"));
        assert_eq!(r.kernel.chain.as_deref(), Some("ing_shop__db"));
        assert_eq!(r.isolated_by, Some(vec!["shop/db-ingress".to_owned()]));
        assert_eq!(r.admitted_by, None);
        let misses = r.near_misses.clone().expect("the peer matched, the port did not");
        assert_eq!((misses[0].kind.as_str(), misses[0].policy.as_str()), ("portDidNotMatch", "shop/db-ingress"));
        assert_eq!(misses[0].path, "spec.ingress[0].from[0]");
        assert_eq!(r.kernel_agrees, Some(true));
        assert!(r.explanation.as_deref().is_some_and(|e| e.contains("shop/db-ingress")), "{:?}", r.explanation);
        assert_eq!(flows.divergence, 0);
    }

    #[test]
    fn a_drop_the_engine_would_allow_is_a_divergence() {
        let mut flows = FlowLog::new(None);
        flows.update_ids(1, &db_ingress(), Instant::now());
        let r = joined(&mut flows, event(Kind::D, 0x9c1e_04aa, Protocol::TCP, 80, 0));
        assert_eq!(r.kernel_agrees, Some(false));
        assert_eq!(
            r.admitted_by.map(|a| (a.policy, a.path)),
            Some(("shop/db-ingress".into(), "spec.ingress[0]".into()))
        );
        assert_eq!(flows.divergence, 1);
    }

    #[test]
    fn unknown_ids_other_kinds_and_protocols_get_a_clear_answer() {
        let mut flows = FlowLog::new(None);
        flows.update_ids(1, &db_ingress(), Instant::now());
        let r = joined(&mut flows, event(Kind::D, 0xdead_beef, Protocol::TCP, 5432, 0));
        assert!(r.explanation.as_deref().is_some_and(|e| e.contains("deadbeef")), "{:?}", r.explanation);
        assert_eq!((r.kernel_agrees, r.isolated_by.clone()), (None, None));
        assert_eq!(r.src.pod.as_deref(), Some("web"), "addresses are still joined");
        let r = joined(&mut flows, event(Kind::S, 0, Protocol::UDP, 53, 0));
        assert_eq!(r.direction, Some(Direction::Egress));
        assert!(r.explanation.as_deref().is_some_and(|e| e.contains("not its pod's")));
        let r = joined(&mut flows, event(Kind::D, 0x9c1e_04aa, Protocol::ICMP, 0, 0));
        assert_eq!(r.kernel_agrees, Some(true), "{:?}", r.explanation);
        // An address no pod has: the endpoint stays an address.
        let mut e = event(Kind::D, 0x9c1e_04aa, Protocol::TCP, 5432, 0);
        e.packet.src = Ipv4Addr::new(192, 0, 2, 9).into();
        let r = joined(&mut flows, e);
        assert_eq!((r.src.pod.clone(), r.dst.pod.as_deref(), r.kernel_agrees), (None, Some("db"), Some(true)));
    }

    #[test]
    fn a_removed_id_resolves_for_a_while() {
        let mut flows = FlowLog::new(None);
        let t0 = Instant::now();
        flows.update_ids(1, &db_ingress(), t0);
        flows.update_ids(2, &BTreeMap::new(), t0);
        assert!(flows.target(0x9c1e_04aa).is_some(), "tombstoned");
        flows.update_ids(3, &BTreeMap::new(), t0 + TOMBSTONE + Duration::from_secs(1));
        assert!(flows.target(0x9c1e_04aa).is_none(), "expired");
    }
}
