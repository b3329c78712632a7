//! The agent's Prometheus metrics (prometheus-client), served as text on `/metrics`.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// Every metric the agent exports (names are prefixed `palisade_`).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub objects: Family<Labels, Gauge>,
    pub local_pods: Gauge,
    pub isolated_pods: Gauge,
    pub rules: Gauge,
    pub set_elements: Gauge,
    pub sync_duration: Histogram,
    pub syncs: Family<Labels, Counter>,
    pub last_sync: Gauge<f64, AtomicU64>,
    pub apply_errors: Counter,
    pub invalid_objects: Counter,
    pub event_to_kernel: Histogram,
    pub pod_realization: Histogram,
    pub pods_pending: Gauge,
    pub flowlog_events: Family<Labels, Counter>,
    pub flowlog_lost: Counter,
    pub explain_divergence: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("palisade");
        let m = Metrics {
            objects: Family::default(),
            local_pods: Gauge::default(),
            isolated_pods: Gauge::default(),
            rules: Gauge::default(),
            set_elements: Gauge::default(),
            // 1 ms .. ~16 s
            sync_duration: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            syncs: Family::default(),
            last_sync: Gauge::default(),
            apply_errors: Counter::default(),
            invalid_objects: Counter::default(),
            event_to_kernel: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            // 0.5 ms .. ~8 s
            pod_realization: Histogram::new(exponential_buckets(0.0005, 2.0, 15)),
            pods_pending: Gauge::default(),
            flowlog_events: Family::default(),
            flowlog_lost: Counter::default(),
            explain_divergence: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("objects", "Objects watched, by kind", m.objects.clone());
        registry.register("local_pods", "Pods scheduled on this node", m.local_pods.clone());
        registry.register("isolated_pods", "Local pods isolated in at least one direction", m.isolated_pods.clone());
        registry.register("rules", "Rules in the node's nftables table", m.rules.clone());
        registry.register("set_elements", "Set and verdict-map elements in the node's table", m.set_elements.clone());
        registry.register("sync_duration_seconds", "Time to compile and apply one sync", m.sync_duration.clone());
        registry.register("syncs", "Syncs applied, by mode (full, delta, noop)", m.syncs.clone());
        registry.register("last_sync_timestamp_seconds", "Unix time of the last successful sync", m.last_sync.clone());
        registry.register("apply_errors", "Failed attempts to apply a ruleset", m.apply_errors.clone());
        registry.register("invalid_objects", "Objects a source reported and skipped", m.invalid_objects.clone());
        registry.register(
            "event_to_kernel_seconds",
            "Time from receiving a change to the kernel enforcing it",
            m.event_to_kernel.clone(),
        );
        registry.register(
            "pod_realization_seconds",
            "Time from a local pod's address reaching the agent to the kernel knowing and enforcing it",
            m.pod_realization.clone(),
        );
        registry.register(
            "pods_pending",
            "Local pods not enforced yet (no address in the API yet, or not yet in the kernel)",
            m.pods_pending.clone(),
        );
        registry.register(
            "flowlog_events",
            "Kernel log events read, by prefix kind (D deny, S spoofed, I invalid)",
            m.flowlog_events.clone(),
        );
        registry.register(
            "flowlog_lost",
            "Kernel log events lost before the reader (gaps in NFLOG sequence numbers, queue overflow)",
            m.flowlog_lost.clone(),
        );
        registry.register(
            "explain_divergence",
            "Flow records on which the engine's verdict differs from the kernel's",
            m.explain_divergence.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    pub fn label(k: &str, v: &str) -> Labels {
        vec![(k.to_owned(), v.to_owned())]
    }
}
