//! What real packets did: the kernel-event half of the agent's observer (OBSERVABILITY.md §4.1).
//!
//! ```text
//! kernel `log group N prefix "pal1 D 9c1e04aa"`
//!   ─NFLOG (netlink)─▶ reader::Reader (its own thread: recv, decode, count loss from sequence numbers)
//!   ─bounded queue, drop-oldest─▶ aggregate::Aggregator (per FlowKey and 5 s window)
//!   ─record::Attribute (the agent's join: pods, workloads, the engine's explanation)─▶ ring::SharedRing (16k)
//!   ─▶ /v1/flows (NDJSON, follow by cursor)
//! ```
//!
//! * [`prefix`]: the `pal1 <kind> <id>` grammar shared with the compile that writes the log rules.
//! * [`nflog`]: the NFLOG configuration request and the decoding of received datagrams into [`Event`]s.
//! * [`packet`]: the 5-tuple from the logged packet's headers (IPv4, IPv6 with extension headers, TCP, UDP,
//!   SCTP, ICMP).
//! * [`seq`]: exact loss from gaps in the per-group sequence numbers.
//! * [`record`], [`aggregate`], [`ring`]: the §4.3 record, the folding of events into records, the ring;
//!   [`observer`] wires them to the agent's [`Attribute`] join.
//! * [`reader`]: the only part that does I/O: the netlink socket and the reader thread.
//!
//! * [`bench`]: userspace throughput on synthetic datagrams.
//!
//! Invariant: everything but [`reader`] and [`bench`] is pure (no sockets, clock, threads or logging; the caller passes
//! times in), and decoding never panics on any input: every malformed message, unknown prefix or short
//! payload is an error value that the reader counts (property test and the `nflog_decode` fuzz target).

pub mod aggregate;
pub mod bench;
pub mod nflog;
pub mod observer;
pub mod packet;
pub mod prefix;
pub mod reader;
pub mod record;
pub mod ring;
pub mod seq;

pub use aggregate::{Aggregator, AggregatorConfig, FlowKey};
pub use nflog::{DecodeError, Event, EventError, NflogConfig, decode_datagram};
pub use observer::Observer;
pub use packet::{Family, L4, Packet, Protocol};
pub use prefix::{Kind, Prefix, PrefixError};
pub use reader::{Reader, ReaderConfig, ReaderError, ReaderStats};
pub use record::{Attribute, Direction, Endpoint, FlowRecord, KernelRef, Verdict};
pub use ring::{Page, Ring, SharedRing};
pub use seq::SeqTracker;
