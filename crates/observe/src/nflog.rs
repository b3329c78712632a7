//! NFLOG over netlink: the configuration requests the reader sends, and the messages the kernel sends back,
//! decoded from a received datagram into [`Event`]s. Pure functions over byte slices (no socket here).
//!
//! Only the message types a reader of one NFLOG group can receive are handed to `netlink-packet-netfilter`
//! (`NFULNL_MSG_PACKET` and acknowledgements); anything else is reported as [`NlMessage::Other`], so a
//! stray message never reaches the crate's conntrack or nf_tables parsers.

use std::time::{Duration, SystemTime};

use netlink_packet_core::{NLMSG_ERROR, NetlinkHeader, NetlinkMessage, NetlinkPayload, Nla, ParseableParametrized};
use netlink_packet_netfilter::nflog::{
    ConfigCmd, ConfigFlags, ConfigMode, ConfigNla, PacketNla, Timeout, ULogMessage, config_request,
};
use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily};

use crate::packet::{Packet, PayloadError, decode_payload};
use crate::prefix::{Prefix, PrefixError};

/// `NFNL_SUBSYS_ULOG << 8 | NFULNL_MSG_PACKET`.
const NFLOG_PACKET: u16 = 4 << 8;
/// A netlink message header: length, type, flags, sequence, port.
const NLMSG_HDRLEN: usize = 16;

/// How the kernel hands a group's packets to the reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NflogConfig {
    /// The NFLOG group (`log group N`).
    pub group: u16,
    /// Bytes of each packet copied, from its IP header: enough for IPv4/IPv6, a few extension headers and the
    /// L4 header.
    pub copy_range: u32,
    /// Packets the kernel batches into one datagram before sending it.
    pub qthresh: u32,
    /// How long the kernel holds a batch that has not reached `qthresh` (sent in 1/100 s units, so 10 ms at
    /// least; NFLOG's default of 1 s delays a lone event by up to a second).
    pub timeout: Duration,
    /// The kernel's batch buffer per group (`NFULA_CFG_NLBUFSIZ`); `None` keeps its default (about a page,
    /// which flushes before `qthresh` packets of `copy_range` bytes fit).
    pub nlbufsiz: Option<u32>,
}

impl Default for NflogConfig {
    fn default() -> Self {
        NflogConfig {
            group: 5,
            copy_range: 128,
            qthresh: 32,
            timeout: Duration::from_millis(10),
            nlbufsiz: Some(16384),
        }
    }
}

fn encode(mut message: NetlinkMessage<NetfilterMessage>, nl_seq: u32) -> Vec<u8> {
    message.header.sequence_number = nl_seq;
    message.finalize();
    let mut buf = vec![0; message.buffer_len()];
    message.serialize(&mut buf);
    buf
}

/// The request that binds `config.group` to the sending socket and sets copy mode `packet` with
/// `copy_range`, `qthresh`, `timeout` and per-group sequence numbers (`F_SEQ`), asking for an
/// acknowledgement.
pub fn bind_request(config: &NflogConfig, nl_seq: u32) -> Vec<u8> {
    let mut nlas = vec![
        ConfigNla::Cmd(ConfigCmd::Bind),
        ConfigNla::Mode(ConfigMode::new_packet(config.copy_range)),
        ConfigNla::QThresh(config.qthresh),
        ConfigNla::Timeout(Timeout::from(config.timeout.max(Duration::from_millis(10)))),
        ConfigNla::Flags(ConfigFlags::SEQ),
    ];
    if let Some(size) = config.nlbufsiz {
        nlas.push(ConfigNla::NlBufSiz(size));
    }
    encode(config_request(NetfilterProtoFamily::Unspec, config.group, nlas), nl_seq)
}

/// The request that unbinds `group` (closing the socket does the same).
pub fn unbind_request(group: u16, nl_seq: u32) -> Vec<u8> {
    encode(config_request(NetfilterProtoFamily::Unspec, group, vec![ConfigNla::Cmd(ConfigCmd::Unbind)]), nl_seq)
}

/// One packet as NFLOG delivered it: the attributes a reader uses, raw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoggedPacket {
    /// The group (`res_id` of the netfilter header).
    pub group: u16,
    /// The per-group sequence number (`F_SEQ`).
    pub seq: Option<u32>,
    /// When the kernel stamped the packet; absent for most locally generated packets.
    pub timestamp: Option<SystemTime>,
    pub in_ifindex: Option<u32>,
    pub out_ifindex: Option<u32>,
    pub mark: Option<u32>,
    /// The log prefix without its trailing NUL.
    pub prefix: Option<Vec<u8>>,
    /// The packet from its network header, cut at the copy range.
    pub payload: Option<Vec<u8>>,
}

/// A netlink message of a received datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NlMessage {
    /// A logged packet.
    Packet(LoggedPacket),
    /// An acknowledgement (`errno` 0) or an error answering request `nl_seq`.
    Ack { nl_seq: u32, errno: i32 },
    /// The end of a batch, a no-op, or a message type a reader does not use.
    Other { message_type: u16 },
}

/// A netlink message that could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NetlinkError {
    #[error("netlink message at byte {offset}: length {length} does not fit the {remaining} bytes left")]
    Framing { offset: usize, length: usize, remaining: usize },
    #[error("netlink message at byte {offset} (type {message_type:#06x}): {detail}")]
    Parse { offset: usize, message_type: u16, detail: String },
}

/// The messages of one datagram, in order. After a framing error the rest of the datagram cannot be
/// delimited, so the iterator ends.
pub struct Messages<'a> {
    datagram: &'a [u8],
    offset: usize,
}

/// Iterates over the netlink messages in `datagram`.
pub fn messages(datagram: &[u8]) -> Messages<'_> {
    Messages { datagram, offset: 0 }
}

impl Iterator for Messages<'_> {
    type Item = Result<NlMessage, NetlinkError>;

    fn next(&mut self) -> Option<Self::Item> {
        let offset = self.offset;
        let rest = self.datagram.get(offset..).filter(|r| !r.is_empty())?;
        let length = rest.get(..4).map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize);
        if length < NLMSG_HDRLEN || length > rest.len() {
            self.offset = self.datagram.len();
            return Some(Err(NetlinkError::Framing { offset, length, remaining: rest.len() }));
        }
        // Messages are 4-byte aligned; the last may lack its padding.
        self.offset = offset.saturating_add((length + 3) & !3).min(self.datagram.len());
        Some(decode_message(&rest[..length]).map_err(|(message_type, detail)| NetlinkError::Parse {
            offset,
            message_type,
            detail,
        }))
    }
}

/// Decodes one netlink message (exactly its `nlmsg_len` bytes).
fn decode_message(bytes: &[u8]) -> Result<NlMessage, (u16, String)> {
    let message_type = u16::from_ne_bytes([bytes[4], bytes[5]]);
    let nl_seq = u32::from_ne_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    match message_type {
        NLMSG_ERROR => match NetlinkMessage::<NetfilterMessage>::deserialize(bytes) {
            Ok(NetlinkMessage { payload: NetlinkPayload::Error(e), .. }) => {
                Ok(NlMessage::Ack { nl_seq, errno: e.code.map_or(0, |c| c.get()) })
            }
            Ok(_) => Ok(NlMessage::Other { message_type }),
            Err(e) => Err((message_type, e.to_string())),
        },
        NFLOG_PACKET => {
            let body = &bytes[NLMSG_HDRLEN..];
            let message =
                NetfilterMessage::parse_with_param(body, message_type).map_err(|e| (message_type, format!("{e:#}")))?;
            match message.inner {
                NetfilterMessageInner::ULog(ULogMessage::Packet(nlas)) => {
                    Ok(NlMessage::Packet(logged_packet(message.header.res_id, nlas)))
                }
                _ => Ok(NlMessage::Other { message_type }),
            }
        }
        // NLMSG_DONE ends a batch; NLMSG_NOOP and anything else carry nothing a reader uses.
        _ => Ok(NlMessage::Other { message_type }),
    }
}

fn logged_packet(group: u16, nlas: Vec<PacketNla>) -> LoggedPacket {
    let mut p = LoggedPacket { group, ..LoggedPacket::default() };
    for nla in nlas {
        match nla {
            PacketNla::Seq(s) => p.seq = Some(s),
            PacketNla::Timestamp(t) => {
                // The crate keeps the fields private; its wire form is two big-endian u64s.
                let mut raw = [0u8; 16];
                if t.value_len() == raw.len() {
                    t.emit_value(&mut raw);
                    let sec = u64::from_be_bytes(raw[..8].try_into().unwrap_or_default());
                    let usec = u64::from_be_bytes(raw[8..].try_into().unwrap_or_default());
                    p.timestamp = Duration::from_secs(sec)
                        .checked_add(Duration::from_micros(usec))
                        .and_then(|d| SystemTime::UNIX_EPOCH.checked_add(d));
                }
            }
            PacketNla::IfIndexInDev(i) => p.in_ifindex = Some(i),
            PacketNla::IfIndexOutDev(i) => p.out_ifindex = Some(i),
            PacketNla::Mark(m) => p.mark = Some(m),
            PacketNla::Prefix(c) => p.prefix = Some(c.into_bytes()),
            PacketNla::Payload(b) => p.payload = Some(b),
            _ => {}
        }
    }
    p
}

/// A logged packet decoded: where it was logged and its flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub group: u16,
    pub seq: Option<u32>,
    /// The kernel's timestamp, else when the reader received it (within the batch timeout).
    pub time: SystemTime,
    /// Whether `time` is the kernel's.
    pub kernel_time: bool,
    pub in_ifindex: Option<u32>,
    pub out_ifindex: Option<u32>,
    pub prefix: Prefix,
    pub packet: Packet,
}

/// A logged packet that is not a Palisade event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("logged packet has no prefix")]
    NoPrefix,
    #[error(transparent)]
    Prefix(#[from] PrefixError),
    #[error("logged packet has no payload (copy mode is not `packet`)")]
    NoPayload,
    #[error("logged packet: {0}")]
    Payload(#[from] PayloadError),
}

impl Event {
    /// Decodes a logged packet received at `received`.
    pub fn decode(packet: &LoggedPacket, received: SystemTime) -> Result<Event, EventError> {
        let prefix = Prefix::parse(packet.prefix.as_deref().ok_or(EventError::NoPrefix)?)?;
        let flow = decode_payload(packet.payload.as_deref().ok_or(EventError::NoPayload)?)?;
        Ok(Event {
            group: packet.group,
            seq: packet.seq,
            time: packet.timestamp.unwrap_or(received),
            kernel_time: packet.timestamp.is_some(),
            in_ifindex: packet.in_ifindex,
            out_ifindex: packet.out_ifindex,
            prefix,
            packet: flow,
        })
    }
}

/// Anything in a datagram that did not become an event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// A packet message that is not a Palisade event; its sequence number still counts for loss.
    #[error("group {group} seq {seq:?}: {error}")]
    Event { group: u16, seq: Option<u32>, error: EventError },
}

/// Decodes every logged packet in `datagram` (acknowledgements, batch ends and other messages skipped).
/// The fuzz target and the property test call this on arbitrary bytes.
pub fn decode_datagram(datagram: &[u8], received: SystemTime) -> Vec<Result<Event, DecodeError>> {
    messages(datagram)
        .filter_map(|m| match m {
            Ok(NlMessage::Packet(p)) => Some(Event::decode(&p, received).map_err(|error| DecodeError::Event {
                group: p.group,
                seq: p.seq,
                error,
            })),
            Ok(_) => None,
            Err(e) => Some(Err(e.into())),
        })
        .collect()
}

/// Encodes a logged packet as the kernel would send it (tests, benchmarks, fuzz seeds); the netfilter
/// header's family follows the payload's IP version.
pub fn encode_packet(packet: &LoggedPacket) -> Vec<u8> {
    let family = match packet.payload.as_deref().and_then(|p| p.first()).map(|b| b >> 4) {
        Some(6) => NetfilterProtoFamily::IPv6,
        _ => NetfilterProtoFamily::IPv4,
    };
    let mut nlas = Vec::new();
    if let Some(t) = packet.timestamp {
        let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&d.as_secs().to_be_bytes());
        raw[8..].copy_from_slice(&u64::from(d.subsec_micros()).to_be_bytes());
        if let Ok(ts) = netlink_packet_netfilter::nflog::TimeStamp::parse(&raw) {
            nlas.push(PacketNla::Timestamp(ts));
        }
    }
    if let Some(i) = packet.in_ifindex {
        nlas.push(PacketNla::IfIndexInDev(i));
    }
    if let Some(i) = packet.out_ifindex {
        nlas.push(PacketNla::IfIndexOutDev(i));
    }
    if let Some(m) = packet.mark {
        nlas.push(PacketNla::Mark(m));
    }
    if let Some(b) = &packet.payload {
        nlas.push(PacketNla::Payload(b.clone()));
    }
    if let Some(p) = &packet.prefix {
        let mut bytes = p.clone();
        bytes.retain(|&b| b != 0);
        if let Ok(c) = std::ffi::CString::new(bytes) {
            nlas.push(PacketNla::Prefix(c));
        }
    }
    if let Some(s) = packet.seq {
        nlas.push(PacketNla::Seq(s));
    }
    let message = NetfilterMessage::new(NetfilterHeader::new(family, 0, packet.group), ULogMessage::Packet(nlas));
    encode(NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(message)), 0)
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::packet::build;
    use crate::prefix::Kind;

    fn logged(seq: u32, prefix: &str, payload: Vec<u8>) -> LoggedPacket {
        LoggedPacket {
            group: 5,
            seq: Some(seq),
            timestamp: None,
            in_ifindex: None,
            out_ifindex: Some(1),
            mark: None,
            prefix: Some(prefix.as_bytes().to_vec()),
            payload: Some(payload),
        }
    }

    fn syn() -> Vec<u8> {
        build::ipv4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2), 6, &build::tcp(41234, 5432, 0x02))
    }

    #[test]
    fn bind_request_carries_the_configuration() {
        let cfg = NflogConfig::default();
        let bytes = bind_request(&cfg, 7);
        let m = NetlinkMessage::<NetfilterMessage>::deserialize(&bytes).unwrap();
        assert_eq!(m.header.sequence_number, 7);
        assert_eq!(m.header.flags, netlink_packet_core::NLM_F_REQUEST | netlink_packet_core::NLM_F_ACK);
        let NetlinkPayload::InnerMessage(NetfilterMessage {
            header,
            inner: NetfilterMessageInner::ULog(ULogMessage::Config(nlas)),
            ..
        }) = m.payload
        else {
            panic!("not a config message: {:?}", m.payload);
        };
        assert_eq!(header.res_id, 5);
        assert_eq!(
            nlas,
            vec![
                ConfigNla::Cmd(ConfigCmd::Bind),
                ConfigNla::Mode(ConfigMode::new_packet(128)),
                ConfigNla::QThresh(32),
                ConfigNla::Timeout(Timeout::new(1)),
                ConfigNla::Flags(ConfigFlags::SEQ),
                ConfigNla::NlBufSiz(16384),
            ]
        );
        assert_eq!(m.header.message_type, 4 << 8 | 1);
        assert!(!unbind_request(5, 8).is_empty());
    }

    #[test]
    fn a_tcp_syn_decodes_to_its_event() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        let mut p = logged(3, "pal1 D 9c1e04aa", syn());
        p.timestamp = Some(t);
        p.in_ifindex = Some(4);
        let bytes = encode_packet(&p);
        assert_eq!(messages(&bytes).collect::<Vec<_>>(), vec![Ok(NlMessage::Packet(p.clone()))]);
        let received = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let events = decode_datagram(&bytes, received);
        let e = events[0].as_ref().unwrap();
        assert_eq!(e.prefix, Prefix::new(Kind::D, 0x9c1e_04aa));
        assert_eq!((e.group, e.seq, e.time, e.kernel_time), (5, Some(3), t, true));
        assert_eq!((e.in_ifindex, e.out_ifindex), (Some(4), Some(1)));
        assert_eq!(e.packet.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(e.packet.dst_port(), Some(5432));
        assert_eq!(crate::packet::tcp_flags_text(e.packet.tcp_flags().unwrap()), "S");
    }

    #[test]
    fn without_a_kernel_timestamp_the_receive_time_is_used() {
        let received = SystemTime::UNIX_EPOCH + Duration::from_secs(42);
        let bytes = encode_packet(&logged(0, "pal1 A 00000001", syn()));
        let e = decode_datagram(&bytes, received).remove(0).unwrap();
        assert_eq!((e.time, e.kernel_time), (received, false));
    }

    #[test]
    fn a_batch_is_every_message_in_order_and_its_done_is_skipped() {
        let mut datagram = Vec::new();
        for seq in 0..3 {
            datagram.extend(encode_packet(&logged(seq, "pal1 S 00000002", syn())));
        }
        // NLMSG_DONE ends a multipart batch.
        datagram.extend_from_slice(&[20, 0, 0, 0, 3, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let events = decode_datagram(&datagram, SystemTime::UNIX_EPOCH);
        let seqs: Vec<_> = events.iter().map(|e| e.as_ref().unwrap().seq).collect();
        assert_eq!(seqs, vec![Some(0), Some(1), Some(2)]);
        assert_eq!(
            messages(&datagram).last(),
            Some(Ok(NlMessage::Other { message_type: netlink_packet_core::NLMSG_DONE }))
        );
    }

    #[test]
    fn bad_prefixes_and_payloads_are_errors_that_keep_their_sequence_number() {
        let cases = [
            (
                logged(9, "DROP by policy ns/name", syn()),
                "log prefix \"DROP by policy ns/name\" does not start with `pal1 `",
            ),
            (
                logged(9, "pal1 Q 00000001", syn()),
                "log prefix \"pal1 Q 00000001\" has an unknown kind (not D, S, I, A or U)",
            ),
            (LoggedPacket { prefix: None, ..logged(9, "", syn()) }, "logged packet has no prefix"),
            (
                LoggedPacket { payload: None, ..logged(9, "pal1 D 00000001", vec![]) },
                "logged packet has no payload (copy mode is not `packet`)",
            ),
            (
                logged(9, "pal1 D 00000001", syn()[..30].to_vec()),
                "logged packet: TCP header truncated: 10 of 14 bytes captured",
            ),
        ];
        for (p, message) in cases {
            let bytes = encode_packet(&p);
            let [Err(DecodeError::Event { group: 5, seq: Some(9), error })] =
                &decode_datagram(&bytes, SystemTime::UNIX_EPOCH)[..]
            else {
                panic!("{message}");
            };
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn malformed_netlink_is_an_error_not_a_panic() {
        let good = encode_packet(&logged(1, "pal1 D 00000001", syn()));
        // Length field larger than the datagram.
        let mut long = good.clone();
        long[0] = 255;
        assert!(matches!(
            decode_datagram(&long, SystemTime::UNIX_EPOCH)[..],
            [Err(DecodeError::Netlink(NetlinkError::Framing { .. }))]
        ));
        // Cut in the middle of an attribute: the message's length still says the whole.
        assert!(matches!(
            decode_datagram(&good[..good.len() - 7], SystemTime::UNIX_EPOCH)[..],
            [Err(DecodeError::Netlink(NetlinkError::Framing { .. }))]
        ));
        // An attribute whose length runs past the message.
        let mut bad_nla = good.clone();
        bad_nla[20] = 0xff;
        bad_nla[21] = 0x7f;
        assert!(matches!(
            decode_datagram(&bad_nla, SystemTime::UNIX_EPOCH)[..],
            [Err(DecodeError::Netlink(NetlinkError::Parse { .. }))]
        ));
        // A header shorter than a header.
        assert!(matches!(
            decode_datagram(&[8, 0, 0, 0, 0, 4, 0, 0], SystemTime::UNIX_EPOCH)[..],
            [Err(DecodeError::Netlink(NetlinkError::Framing { .. }))]
        ));
        assert!(decode_datagram(&[], SystemTime::UNIX_EPOCH).is_empty());
    }

    #[test]
    fn acknowledgements_decode_with_their_errno() {
        // NLMSG_ERROR, error 0 (ack) then -EBUSY, each echoing the request's header.
        for errno in [0i32, -16] {
            let mut m = vec![36, 0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0];
            m.extend_from_slice(&errno.to_ne_bytes());
            m.extend_from_slice(&[16, 0, 0, 0, 1, 4, 5, 0, 7, 0, 0, 0, 0, 0, 0, 0]);
            assert_eq!(messages(&m).collect::<Vec<_>>(), vec![Ok(NlMessage::Ack { nl_seq: 7, errno })]);
        }
    }
}
