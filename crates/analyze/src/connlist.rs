//! Every allowed connection between workloads and address ranges outside the cluster, in netpol-analyzer's
//! `list` form (conformance/netpol-analyzer/SEMANTICS.md).

use std::net::Ipv4Addr;

use k8s_openapi::api::networking::v1::NetworkPolicy;
use palisade_engine::cidr::{IpBlock, parse_cidr_sloppy};
use palisade_engine::model::namespace_of;
use palisade_engine::policy::{Direction, NamespaceScope, Peer, Policy, PortMatch, Rule};
use palisade_engine::{ObjectKey, Protocol};
use serde::Serialize;

use crate::model::{Model, Workload};
use crate::ports::PortSet;

/// One side of a listed connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Workload(usize),
    /// An inclusive IPv4 range outside the cluster.
    External(u32, u32),
}

/// One line of the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connection {
    pub src: String,
    pub dst: String,
    pub conn: String,
    #[serde(skip)]
    pub ports: PortSet,
}

pub fn external_name(a: u32, b: u32) -> String {
    format!("{}-{}[External]", Ipv4Addr::from(a), Ipv4Addr::from(b))
}

/// IPv4 ranges of an ipBlock (cidr minus except), or none for IPv6.
fn block_ranges(block: &IpBlock) -> Vec<(u32, u32)> {
    block
        .ranges()
        .into_iter()
        .filter_map(|(a, b)| match (a, b) {
            (std::net::IpAddr::V4(a), std::net::IpAddr::V4(b)) => Some((u32::from(a), u32::from(b))),
            _ => None,
        })
        .collect()
}

/// The partition of the IPv4 space cut at every ipBlock of one direction (all policies, as written).
fn partition(policies: &[(palisade_engine::Origin, NetworkPolicy)], direction: Direction) -> Vec<(u32, u32)> {
    let mut cuts: Vec<u64> = vec![0, 1 << 32];
    for (_, np) in policies {
        let Some(spec) = &np.spec else { continue };
        let peers: Vec<_> = match direction {
            Direction::Ingress => spec.ingress.iter().flatten().flat_map(|r| r.from.iter().flatten()).collect(),
            Direction::Egress => spec.egress.iter().flatten().flat_map(|r| r.to.iter().flatten()).collect(),
        };
        for p in peers {
            let Some(b) = &p.ip_block else { continue };
            let Some(cidr) = parse_cidr_sloppy(&b.cidr) else { continue };
            let except = b.except.iter().flatten().filter_map(|e| parse_cidr_sloppy(e)).collect();
            for (a, z) in block_ranges(&IpBlock { cidr, except }) {
                cuts.push(u64::from(a));
                cuts.push(u64::from(z) + 1);
            }
        }
    }
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2).map(|w| (w[0] as u32, (w[1] - 1) as u32)).collect()
}

struct Analysis<'a> {
    model: &'a Model,
    /// Lowered policies with their keys.
    policies: Vec<Policy>,
}

impl Analysis<'_> {
    fn peer_matches(&self, peer: &Peer, policy_ns: &str, other: &Endpoint) -> bool {
        match (peer, other) {
            (Peer::IpBlock(b), Endpoint::External(a, z)) => block_ranges(b).iter().any(|(lo, hi)| lo <= a && z <= hi),
            (Peer::Pods { namespaces, pods }, Endpoint::Workload(w)) => {
                let w = &self.model.workloads[*w];
                let ns_ok = match namespaces {
                    NamespaceScope::Own(ns) => *ns == w.namespace,
                    NamespaceScope::Selector(sel) => sel.matches(&self.model.namespace_labels(&w.namespace)),
                };
                let _ = policy_ns;
                ns_ok && pods.matches(&w.labels)
            }
            _ => false,
        }
    }

    /// The ports one rule admits toward `dest` (named ports resolve on the destination workload).
    fn rule_ports(rule: &Rule, dest: Option<&Workload>) -> PortSet {
        let Some(entries) = &rule.ports else { return PortSet::all() };
        let mut out = PortSet::none();
        for e in entries {
            match &e.port {
                PortMatch::Any => out.add(e.protocol, 1, 65535),
                PortMatch::Range(a, b) => out.add(e.protocol, *a, *b),
                PortMatch::Named(name) => {
                    // The first container port with that name, and only if its protocol is the entry's.
                    if let Some(cp) = dest.and_then(|d| d.ports.iter().find(|p| p.name.as_deref() == Some(name)))
                        && cp.protocol == e.protocol
                    {
                        out.add(e.protocol, cp.port, cp.port);
                    }
                }
                PortMatch::Invalid => {}
            }
        }
        out
    }

    /// What `subject`'s policies of `direction` allow with `other`; `dest` is the connection's destination.
    fn direction(&self, subject: usize, direction: Direction, other: &Endpoint, dest: Option<&Workload>) -> PortSet {
        let w = &self.model.workloads[subject];
        let mut selected = false;
        let mut allowed = PortSet::none();
        for p in &self.policies {
            if p.key.namespace != w.namespace || !p.pod_selector.matches(&w.labels) {
                continue;
            }
            let Some(rules) = p.rules(direction) else { continue };
            selected = true;
            for rule in rules {
                let peer_ok = match &rule.peers {
                    None => true,
                    Some(peers) => peers.iter().any(|peer| self.peer_matches(peer, &p.key.namespace, other)),
                };
                if peer_ok {
                    allowed = allowed.union(&Self::rule_ports(rule, dest));
                }
            }
        }
        if selected { allowed } else { PortSet::all() }
    }

    fn allowed(&self, src: &Endpoint, dst: &Endpoint) -> PortSet {
        let dest = match dst {
            Endpoint::Workload(d) => Some(&self.model.workloads[*d]),
            Endpoint::External(..) => None,
        };
        let egress = match src {
            Endpoint::Workload(s) => self.direction(*s, Direction::Egress, dst, dest),
            Endpoint::External(..) => PortSet::all(),
        };
        if egress.is_empty() {
            return egress;
        }
        let ingress = match dst {
            Endpoint::Workload(d) => self.direction(*d, Direction::Ingress, src, dest),
            Endpoint::External(..) => PortSet::all(),
        };
        egress.intersect(&ingress)
    }
}

/// The name of an endpoint as listed.
pub fn endpoint_name(model: &Model, e: &Endpoint) -> String {
    match e {
        Endpoint::Workload(w) => model.workloads[*w].to_string(),
        Endpoint::External(a, b) => external_name(*a, *b),
    }
}

/// Every allowed connection, sorted by source then destination as byte strings.
pub fn connlist(model: &Model) -> Vec<Connection> {
    let analysis = Analysis { model, policies: model.policies.iter().map(|(_, p)| Policy::lower(p)).collect() };
    let sources = partition(&model.policies, Direction::Ingress);
    let dests = partition(&model.policies, Direction::Egress);
    let n = model.workloads.len();
    let mut out = Vec::new();
    let mut push = |src: Endpoint, dst: Endpoint| {
        let ports = analysis.allowed(&src, &dst);
        if !ports.is_empty() {
            out.push(Connection {
                src: endpoint_name(model, &src),
                dst: endpoint_name(model, &dst),
                conn: ports.to_string(),
                ports,
            });
        }
    };
    for s in 0..n {
        for d in 0..n {
            if s != d && model.workloads[s].to_string() != model.workloads[d].to_string() {
                push(Endpoint::Workload(s), Endpoint::Workload(d));
            }
        }
        for &(a, b) in &dests {
            push(Endpoint::Workload(s), Endpoint::External(a, b));
        }
    }
    for &(a, b) in &sources {
        for d in 0..n {
            push(Endpoint::External(a, b), Endpoint::Workload(d));
        }
    }
    out.sort_by(|x, y| (x.src.as_bytes(), x.dst.as_bytes()).cmp(&(y.src.as_bytes(), y.dst.as_bytes())));
    out
}

/// The `txt` form: one `SRC => DST : CONN` line per connection.
pub fn render_txt(conns: &[Connection]) -> String {
    conns.iter().map(|c| format!("{} => {} : {}\n", c.src, c.dst, c.conn)).collect()
}

/// The key of a policy, for messages.
pub fn policy_key(np: &NetworkPolicy) -> ObjectKey {
    ObjectKey::new(namespace_of(&np.metadata), np.metadata.name.as_deref().unwrap_or(""))
}

/// Protocols, re-exported for renderers.
pub fn protocols() -> [Protocol; 3] {
    crate::ports::PROTOCOLS
}
