//! The flow record (OBSERVABILITY.md §4.3): one line of `/v1/flows` NDJSON and of `observe -o json`.
//!
//! The reader fills what the kernel said (time, addresses, ports, protocol, log point, counts); the agent's
//! join fills the rest through [`Attribute`] (pods and workloads, the engine's explanation, whether the
//! kernel agreed, staged verdicts). Join fields are `None` until then and left out of the JSON.

use std::net::IpAddr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::nflog::Event;
use crate::packet::{Family, Protocol, tcp_flags_text};
use crate::prefix::Kind;

/// What happened to the flow, or would under staged policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Allowed,
    Denied,
    WouldDeny,
    WouldAllow,
}

/// The direction NetworkPolicy judged: the source pod's egress or the destination pod's ingress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Ingress,
    Egress,
}

/// One side of the flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub ip: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// `Kind/name` of the pod's controller (`Deployment/web`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
}

/// Where the kernel logged the packet: the prefix's kind and id, and the chain the id maps to (joined).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KernelRef {
    pub kind: Kind,
    /// The prefix id as written in the prefix: 8 lowercase hex digits.
    #[serde(with = "hex_id")]
    pub id: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
}

/// ICMP type and code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Icmp {
    pub r#type: u8,
    pub code: u8,
}

/// A NetworkPolicy rule, as a field path (`spec.ingress[0]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleRef {
    /// `namespace/name`.
    pub policy: String,
    pub path: String,
}

impl Endpoint {
    /// An address and port, nothing joined.
    pub fn new(ip: IpAddr, port: Option<u16>) -> Endpoint {
        Endpoint { ip, port, namespace: None, pod: None, workload: None }
    }
}

/// A rule that almost admitted the flow (the engine's `NearMiss`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NearMissRef {
    /// `portDidNotMatch` or `peerDidNotMatch`.
    pub kind: String,
    pub policy: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A staged (audit) policy's verdict on the flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StagedVerdict {
    pub policy: String,
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Packets of one flow key folded over (part of) one aggregation window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowRecord {
    /// The newest packet's time (`lastSeen`).
    #[serde(with = "rfc3339")]
    pub time: SystemTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The kernel's verdict where the log point says it (D, S, I: denied; A: allowed); an audit sample's
    /// verdict comes from the join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Spoofed sources are egress; the other log points' ids name their direction in the compile's id map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// The source of the flow's first packet (its port may vary across the record's packets).
    pub src: Endpoint,
    pub dst: Endpoint,
    pub protocol: Protocol,
    pub family: Family,
    /// TCP flags of the first packet (`S`, `SA`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_flags: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<Icmp>,
    pub kernel: KernelRef,

    // The join (the agent's `Attribute`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolated_by: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admitted_by: Option<RuleRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub near_misses: Option<Vec<NearMissRef>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged: Option<Vec<StagedVerdict>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_agrees: Option<bool>,
    /// The kernel timestamp precedes the last sync: dropped under the previous ruleset.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "rfc3339_opt")]
    pub policy_changed_at: Option<SystemTime>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub src_ambiguous: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dst_ambiguous: bool,

    /// Packets folded into this record.
    pub count: u64,
    #[serde(with = "rfc3339")]
    pub first_seen: SystemTime,
    #[serde(with = "rfc3339")]
    pub last_seen: SystemTime,
    /// The pod's drop-counter delta minus logged packets (filled by the agent from the named counters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed_since: Option<u64>,
}

impl FlowRecord {
    /// A record of one event (`count` 1), nothing joined.
    pub fn from_event(e: &Event) -> FlowRecord {
        let p = &e.packet;
        FlowRecord {
            time: e.time,
            node: None,
            verdict: e.prefix.kind.kernel_verdict(),
            direction: (e.prefix.kind == Kind::S).then_some(Direction::Egress),
            src: Endpoint::new(p.src, p.src_port()),
            dst: Endpoint::new(p.dst, p.dst_port()),
            protocol: p.protocol,
            family: p.family(),
            tcp_flags: p.tcp_flags().map(tcp_flags_text),
            icmp: p.icmp().map(|(r#type, code)| Icmp { r#type, code }),
            kernel: KernelRef { kind: e.prefix.kind, id: e.prefix.id, chain: None },
            isolated_by: None,
            admitted_by: None,
            near_misses: None,
            staged: None,
            explanation: None,
            kernel_agrees: None,
            policy_changed_at: None,
            src_ambiguous: false,
            dst_ambiguous: false,
            count: 1,
            first_seen: e.time,
            last_seen: e.time,
            suppressed_since: None,
        }
    }

    /// Folds another event of the same key in.
    pub fn fold(&mut self, e: &Event) {
        self.count += 1;
        self.first_seen = self.first_seen.min(e.time);
        self.last_seen = self.last_seen.max(e.time);
        self.time = self.last_seen;
    }
}

/// The join the agent does on each record before it is published: addresses to pods and workloads, the
/// log id to its chain and meaning, the engine's explanation and whether the kernel agreed with it.
pub trait Attribute {
    fn attribute(&mut self, record: &mut FlowRecord);
}

/// Any closure over a record joins.
impl<F: FnMut(&mut FlowRecord)> Attribute for F {
    fn attribute(&mut self, record: &mut FlowRecord) {
        self(record)
    }
}

/// Times as RFC 3339 in UTC with milliseconds: `2026-12-01T02:33:41.118Z`.
pub fn format_time(t: SystemTime) -> String {
    let ts = jiff::Timestamp::try_from(t).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let ms = ts.as_millisecond();
    let ts = jiff::Timestamp::from_millisecond(ms).unwrap_or(ts);
    format!("{ts:.3}")
}

/// Parses what [`format_time`] writes (any RFC 3339 instant).
pub fn parse_time(s: &str) -> Option<SystemTime> {
    s.parse::<jiff::Timestamp>().ok().map(SystemTime::from)
}

mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_time(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_time(&s).ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {s:?}")))
    }
}

mod rfc3339_opt {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::rfc3339::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => super::parse_time(&s)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {s:?}"))),
        }
    }
}

mod hex_id {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &u32, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{id:08x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let s = String::deserialize(d)?;
        let ok = s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| u32::from_str_radix(&s, 16).ok())
            .flatten()
            .ok_or_else(|| serde::de::Error::custom(format!("not an 8-digit lowercase hex id: {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::*;
    use crate::packet::{L4, Packet};
    use crate::prefix::Prefix;

    fn event(kind: Kind, ms: u64) -> Event {
        Event {
            group: 5,
            seq: Some(0),
            time: SystemTime::UNIX_EPOCH + Duration::from_millis(ms),
            kernel_time: true,
            in_ifindex: Some(3),
            out_ifindex: None,
            prefix: Prefix::new(kind, 0x9c1e_04aa),
            packet: Packet {
                src: Ipv4Addr::new(10, 244, 1, 5).into(),
                dst: Ipv4Addr::new(10, 244, 2, 7).into(),
                protocol: Protocol::TCP,
                l4: L4::Ports { src: 41234, dst: 5432, tcp_flags: Some(2) },
            },
        }
    }

    #[test]
    fn the_json_of_a_record_the_reader_made() {
        let r = FlowRecord::from_event(&event(Kind::D, 1_796_092_421_118));
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"time":"2026-12-01T02:33:41.118Z","verdict":"denied","src":{"ip":"10.244.1.5","port":41234},"dst":{"ip":"10.244.2.7","port":5432},"protocol":"TCP","family":"IPv4","tcpFlags":"S","kernel":{"kind":"D","id":"9c1e04aa"},"count":1,"firstSeen":"2026-12-01T02:33:41.118Z","lastSeen":"2026-12-01T02:33:41.118Z"}"#
        );
        assert_eq!(serde_json::from_str::<FlowRecord>(&json).unwrap(), r);
    }

    #[test]
    fn a_joined_record_round_trips() {
        let mut r = FlowRecord::from_event(&event(Kind::U, 1_796_092_421_000));
        let mut join = |r: &mut FlowRecord| {
            r.node = Some("node-a".into());
            r.verdict = Some(Verdict::WouldDeny);
            r.direction = Some(Direction::Ingress);
            r.src.namespace = Some("shop".into());
            r.src.pod = Some("web-7d9f-abc".into());
            r.src.workload = Some("Deployment/web".into());
            r.kernel.chain = Some("ing_shop__db_0".into());
            r.isolated_by = Some(vec!["shop/db-ingress".into()]);
            r.near_misses = Some(vec![NearMissRef {
                kind: "portDidNotMatch".into(),
                policy: "shop/db-ingress".into(),
                path: "spec.ingress[0].from[1]".into(),
                detail: Some("port 5432 not in spec.ingress[0].ports".into()),
            }]);
            r.staged = Some(vec![StagedVerdict {
                policy: "shop/db-ingress-v2".into(),
                verdict: Verdict::WouldDeny,
                path: Some("spec.ingress[1]".into()),
            }]);
            r.kernel_agrees = Some(true);
            r.policy_changed_at = Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_092_420_500));
            r.src_ambiguous = true;
            r.suppressed_since = Some(230);
        };
        join.attribute(&mut r);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["verdict"], "would-deny");
        assert_eq!(v["kernel"]["chain"], "ing_shop__db_0");
        assert_eq!(v["src"]["workload"], "Deployment/web");
        assert_eq!(v["nearMisses"][0]["kind"], "portDidNotMatch");
        assert_eq!(v["policyChangedAt"], "2026-12-01T02:33:40.500Z");
        assert_eq!(v["srcAmbiguous"], true);
        assert!(v.get("dstAmbiguous").is_none());
        assert_eq!(serde_json::from_value::<FlowRecord>(v).unwrap(), r);
    }

    #[test]
    fn kinds_give_the_kernel_verdict_and_spoofing_its_direction() {
        let r = FlowRecord::from_event(&event(Kind::A, 0));
        assert_eq!((r.verdict, r.direction), (Some(Verdict::Allowed), None));
        let r = FlowRecord::from_event(&event(Kind::S, 0));
        assert_eq!((r.verdict, r.direction), (Some(Verdict::Denied), Some(Direction::Egress)));
        let r = FlowRecord::from_event(&event(Kind::U, 0));
        assert_eq!(r.verdict, None);
    }

    #[test]
    fn times_keep_milliseconds_and_bad_ids_are_refused() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_micros(1_796_092_421_118_999);
        assert_eq!(format_time(t), "2026-12-01T02:33:41.118Z");
        assert_eq!(format_time(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(parse_time("2026-12-01T02:33:41.118Z"), Some(t - Duration::from_micros(999)));
        let json = serde_json::to_string(&FlowRecord::from_event(&event(Kind::D, 0))).unwrap();
        for bad in [r#""id":"9C1E04AA""#, r#""id":"9c1e04a""#] {
            let j = json.replace(r#""id":"9c1e04aa""#, bad);
            assert!(serde_json::from_str::<FlowRecord>(&j).is_err(), "{bad}");
        }
    }
}
