//! Userspace events/s of the reader's path (decode, loss, aggregation) on synthetic NFLOG datagrams:
//! `cargo run --release -p palisade-observe --example decode_throughput [EVENTS] [BATCH]`.

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().expect("a number"));
    let events = args.next().unwrap_or(1_000_000);
    let batch = args.next().unwrap_or(32);
    let r = palisade_observe::bench::decode_throughput(events, batch);
    println!(
        "{} events in {} datagrams of {batch}: {:.0} events/s, {:.0} ns/event, {} records",
        r.events, r.datagrams, r.events_per_second, r.nanos_per_event, r.records
    );
}
