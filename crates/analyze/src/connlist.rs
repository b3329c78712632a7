//! Every allowed connection between workloads and address ranges outside the cluster, in netpol-analyzer's
//! `list` form (conformance/netpol-analyzer/SEMANTICS.md).

use std::net::Ipv4Addr;

use k8s_openapi::api::networking::v1::NetworkPolicy;
use palisade_engine::ObjectKey;
use palisade_engine::cidr::{IpBlock, parse_cidr_sloppy};
use palisade_engine::model::namespace_of;
use palisade_engine::policy::{Direction, NamespaceScope, Peer, Policy, PortMatch, Rule};
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

/// The other end of a direction's question: a workload (possibly one the model does not hold, such as a
/// kube-dns stand-in) or an external range.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Other<'a> {
    Workload(&'a Workload),
    External(u32, u32),
}

/// Policies lowered once, with the workloads each selects per direction.
pub(crate) struct Analysis<'a> {
    pub(crate) model: &'a Model,
    pub(crate) policies: Vec<Policy>,
    /// Per workload: ids of the policies selecting it for ingress / egress.
    selecting: Vec<[Vec<usize>; 2]>,
    kube_dns: Workload,
}

fn dslot(d: Direction) -> usize {
    match d {
        Direction::Ingress => 0,
        Direction::Egress => 1,
    }
}

impl<'a> Analysis<'a> {
    pub(crate) fn new(model: &'a Model) -> Self {
        let policies: Vec<Policy> = model.policies.iter().map(|(_, p)| Policy::lower(p)).collect();
        let selecting = model
            .workloads
            .iter()
            .map(|w| {
                let mut s = [Vec::new(), Vec::new()];
                for (i, p) in policies.iter().enumerate() {
                    if p.key.namespace == w.namespace && p.pod_selector.matches(&w.labels) {
                        for d in [Direction::Ingress, Direction::Egress] {
                            if p.rules(d).is_some() {
                                s[dslot(d)].push(i);
                            }
                        }
                    }
                }
                s
            })
            .collect();
        let kube_dns = model
            .workloads
            .iter()
            .find(|w| w.namespace == "kube-system" && w.labels.get("k8s-app").map(String::as_str) == Some("kube-dns"))
            .cloned()
            .unwrap_or_else(|| Workload {
                namespace: "kube-system".into(),
                name: "kube-dns".into(),
                kind: "Deployment".into(),
                labels: [("k8s-app".to_owned(), "kube-dns".to_owned())].into(),
                ports: Vec::new(),
                ips: Vec::new(),
                origin: palisade_engine::Origin { source: String::new(), document: 0, item: None },
            });
        Analysis { model, policies, selecting, kube_dns }
    }

    pub(crate) fn dns_target(&self) -> Workload {
        self.kube_dns.clone()
    }

    fn peer_matches(&self, peer: &Peer, other: Other<'_>) -> bool {
        match (peer, other) {
            (Peer::IpBlock(b), Other::External(a, z)) => block_ranges(b).iter().any(|(lo, hi)| *lo <= a && z <= *hi),
            (Peer::Pods { namespaces, pods }, Other::Workload(w)) => {
                let ns_ok = match namespaces {
                    NamespaceScope::Own(ns) => *ns == w.namespace,
                    NamespaceScope::Selector(sel) => sel.matches(&self.model.namespace_labels(&w.namespace)),
                };
                ns_ok && pods.matches(&w.labels)
            }
            _ => false,
        }
    }

    /// Whether a rule's peers match the workload (an empty list matches everyone).
    pub(crate) fn rule_matches_workload(&self, rule: &Rule, w: usize) -> bool {
        let other = Other::Workload(&self.model.workloads[w]);
        rule.peers.as_ref().is_none_or(|ps| ps.iter().any(|p| self.peer_matches(p, other)))
    }

    /// The ports one rule admits toward `dest` (named ports resolve on the destination workload).
    pub(crate) fn rule_ports(rule: &Rule, dest: Option<&Workload>) -> PortSet {
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

    /// What the subject's policies of `direction` allow with `other`, or `None` when none selects it.
    fn allowed_by(
        &self,
        policy_ids: &[usize],
        direction: Direction,
        other: Other<'_>,
        dest: Option<&Workload>,
    ) -> Option<PortSet> {
        if policy_ids.is_empty() {
            return None;
        }
        let mut allowed = PortSet::none();
        for &pi in policy_ids {
            for rule in self.policies[pi].rules(direction).unwrap_or_default() {
                if rule.peers.as_ref().is_none_or(|ps| ps.iter().any(|p| self.peer_matches(p, other))) {
                    allowed = allowed.union(&Self::rule_ports(rule, dest));
                }
            }
        }
        Some(allowed)
    }

    /// A workload's side for a direction toward another workload: `None` when not isolated.
    pub(crate) fn side(&self, subject: usize, direction: Direction, other: usize) -> Option<PortSet> {
        let dest = if direction == Direction::Egress { other } else { subject };
        self.allowed_by(
            &self.selecting[subject][dslot(direction)],
            direction,
            Other::Workload(&self.model.workloads[other]),
            Some(&self.model.workloads[dest]),
        )
    }

    /// What a workload's egress allows toward any workload (even one not in the model).
    pub(crate) fn egress_to(&self, subject: usize, dest: &Workload) -> PortSet {
        self.allowed_by(&self.selecting[subject][1], Direction::Egress, Other::Workload(dest), Some(dest))
            .unwrap_or_else(PortSet::all)
    }

    fn allowed(&self, src: &Endpoint, dst: &Endpoint) -> PortSet {
        let dest = match dst {
            Endpoint::Workload(d) => Some(&self.model.workloads[*d]),
            Endpoint::External(..) => None,
        };
        let as_other = |e: &Endpoint| match e {
            Endpoint::Workload(w) => Other::Workload(&self.model.workloads[*w]),
            Endpoint::External(a, b) => Other::External(*a, *b),
        };
        let egress = match src {
            Endpoint::Workload(s) => self.allowed_by(&self.selecting[*s][1], Direction::Egress, as_other(dst), dest),
            Endpoint::External(..) => None,
        };
        if egress.as_ref().is_some_and(PortSet::is_empty) {
            return PortSet::none();
        }
        let ingress = match dst {
            Endpoint::Workload(d) => self.allowed_by(&self.selecting[*d][0], Direction::Ingress, as_other(src), dest),
            Endpoint::External(..) => None,
        };
        match (egress, ingress) {
            (None, None) => PortSet::all(),
            (Some(e), None) => e,
            (None, Some(i)) => i,
            (Some(e), Some(i)) => e.intersect(&i),
        }
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
    let analysis = Analysis::new(model);
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
