//! Any datagram from an NFLOG socket: decoding never panics, and whatever decodes is a Palisade event whose
//! prefix reads back as written and whose record can be made and folded.
#![no_main]

use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use palisade_observe::packet::decode_payload;
use palisade_observe::{Aggregator, FlowRecord, Prefix, decode_datagram};

fuzz_target!(|data: &[u8]| {
    let _ = decode_payload(data);
    let _ = Prefix::parse(data);
    let mut aggregator = Aggregator::default();
    let mut out = Vec::new();
    let mut events = 0;
    for e in decode_datagram(data, SystemTime::UNIX_EPOCH).into_iter().flatten() {
        assert_eq!(Prefix::parse(e.prefix.to_string().as_bytes()), Ok(e.prefix));
        let _ = FlowRecord::from_event(&e);
        aggregator.push(&e, &mut out);
        events += 1;
    }
    aggregator.flush(&mut out);
    assert_eq!(out.iter().map(|r| r.count).sum::<u64>(), events);
});
