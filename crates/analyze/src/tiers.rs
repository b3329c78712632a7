//! The Admin and Baseline tiers at workload level, as netpol-analyzer reads AdminNetworkPolicy and
//! BaselineAdminNetworkPolicy (conformance/netpol-analyzer/SEMANTICS.md §8), and ClusterNetworkPolicy the same
//! way: per side, the Admin tier decides each (protocol, port) by its first matching rule (policies by
//! priority, then name; rules in order; Pass and what no rule decides go on), then the NetworkPolicies if one
//! selects the workload in that direction, else the Baseline tier, else the port is allowed.
//!
//! As `list` does for ipBlocks, `networks` match outside address ranges only, never workloads; `nodes` and
//! `domainNames` peers match nothing here (netpol-analyzer ignores `nodes`; Palisade resolves no names), and
//! the list says so in a warning.

use std::net::IpAddr;

use palisade_engine::cnp::lower::{LoweredPolicy, TierPeer, TierPort, TierRule};
use palisade_engine::cnp::validate::validate_cluster_object;
use palisade_engine::cnp::{Action, Tier};
use palisade_engine::load::Origin;
use palisade_engine::policy::Direction;

use crate::connlist::Other;
use crate::model::{Model, Workload};
use crate::ports::PortSet;

/// The tier policies `list` evaluates, lowered, in walk order (Admin by priority then name, then Baseline the
/// same way; a BaselineAdminNetworkPolicy sorts after every Baseline ClusterNetworkPolicy). A policy the
/// apiserver would refuse is still read, as netpol-analyzer reads it (a missing selector selects everything,
/// a named port toward an address names nothing), with a warning.
#[derive(Debug, Clone, Default)]
pub(crate) struct TierLayer {
    pub(crate) policies: Vec<LoweredPolicy>,
    /// What the list cannot take into account, in words (one line each).
    pub(crate) warnings: Vec<String>,
}

fn rule_field(d: Direction, i: usize) -> String {
    format!("spec.{}[{i}]", d.as_str())
}

impl TierLayer {
    pub(crate) fn new(model: &Model) -> Self {
        let mut warnings = Vec::new();
        for (origin, o) in &model.tier_policies {
            let errors = validate_cluster_object(o);
            if let Some(first) = errors.first() {
                let more = match errors.len() {
                    1 => String::new(),
                    n => format!(", and {} more", n - 1),
                };
                warnings.push(format!(
                    "{origin}: {} {}: the apiserver would refuse it ({first}{more}; `palisade validate` lists all); list reads it as written, as netpol-analyzer does (a missing selector selects everything)",
                    o.type_meta().1,
                    o.name()
                ));
            }
        }
        let mut policies: Vec<(&Origin, LoweredPolicy)> = model
            .tier_policies
            .iter()
            .filter_map(|(origin, o)| o.as_policy().as_ref().and_then(LoweredPolicy::lower).map(|p| (origin, p)))
            .collect();
        policies.sort_by(|(_, a), (_, b)| {
            (a.tier, a.priority, &a.name, a.kind).cmp(&(b.tier, b.priority, &b.name, b.kind))
        });
        for pair in policies.windows(2) {
            let ((_, a), (_, b)) = (&pair[0], &pair[1]);
            if a.tier == b.tier && a.priority == b.priority {
                warnings.push(format!(
                    "{} {} and {} {} share {} priority {}: their order is undefined, so list walks them by name ({} first)",
                    a.kind, a.name, b.kind, b.name, a.tier, a.priority, a.name
                ));
            }
        }
        for (origin, p) in &policies {
            for (i, r) in p.egress.iter().enumerate() {
                for (j, peer) in r.peers.iter().enumerate() {
                    let at = format!("{origin}: {} {}: {}.to[{j}]", p.kind, p.name, rule_field(Direction::Egress, i));
                    match peer {
                        TierPeer::Nodes(_) => warnings.push(format!(
                            "{at}: the nodes peer is not analysed: it matches no workload and no address range in the list"
                        )),
                        TierPeer::DomainNames(_) => warnings.push(format!(
                            "{at}: domainNames are not resolved: this peer matches nothing in the list"
                        )),
                        TierPeer::Networks(nets) => {
                            for n in nets.iter().filter(|n| n.network().is_ipv6()) {
                                warnings.push(format!(
                                    "{at}: {n} is an IPv6 network: the list covers IPv4 addresses only, so it matches nothing here"
                                ));
                            }
                        }
                        TierPeer::Pods(_) | TierPeer::Unknown => {}
                    }
                }
            }
        }
        TierLayer { policies: policies.into_iter().map(|(_, p)| p).collect(), warnings }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Ids of the policies whose subject holds the workload and that have rules for each direction
    /// (ingress, egress), in walk order.
    pub(crate) fn selecting(&self, model: &Model, w: &Workload) -> [Vec<usize>; 2] {
        let ns = model.namespace_labels(&w.namespace);
        [Direction::Ingress, Direction::Egress].map(|d| {
            (0..self.policies.len())
                .filter(|&i| {
                    let p = &self.policies[i];
                    !p.rules(d).is_empty() && p.subject.matches(&ns, &w.labels, false)
                })
                .collect()
        })
    }

    /// The inclusive IPv4 ranges of every egress `networks` CIDR (what the destinations are cut at).
    pub(crate) fn egress_ranges(&self) -> Vec<(u32, u32)> {
        self.policies
            .iter()
            .flat_map(|p| &p.egress)
            .flat_map(|r| &r.peers)
            .flat_map(|peer| match peer {
                TierPeer::Networks(nets) => nets.as_slice(),
                _ => &[],
            })
            .filter_map(|n| match (n.network(), n.broadcast()) {
                (IpAddr::V4(a), IpAddr::V4(z)) => Some((u32::from(a), u32::from(z))),
                _ => None,
            })
            .collect()
    }
}

/// Whether a rule's peer matches the other end: pods and namespaces match workloads by labels, `networks`
/// match an outside range lying wholly inside one of its IPv4 CIDRs.
pub(crate) fn peer_matches(model: &Model, peer: &TierPeer, action: Action, other: Other<'_>) -> bool {
    match (peer, other) {
        (TierPeer::Pods(set), Other::Workload(w)) => {
            set.matches(&model.namespace_labels(&w.namespace), &w.labels, false)
        }
        (TierPeer::Networks(nets), Other::External(a, z)) => nets.iter().any(|n| {
            n.contains(&IpAddr::from(std::net::Ipv4Addr::from(a)))
                && n.contains(&IpAddr::from(std::net::Ipv4Addr::from(z)))
        }),
        // A peer with no field or several (validation refuses it) fails closed, as in the engine.
        (TierPeer::Unknown, _) => action != Action::Accept,
        _ => false,
    }
}

/// Whether any peer of the rule matches the other end.
pub(crate) fn rule_matches(model: &Model, rule: &TierRule, other: Other<'_>) -> bool {
    rule.peers.iter().any(|p| peer_matches(model, p, rule.action, other))
}

/// The ports a rule names toward `dest`: a named port is the first container port of the destination
/// workload with that name, with that port's protocol; toward an outside address it names nothing.
pub(crate) fn rule_ports(rule: &TierRule, dest: Option<&Workload>) -> PortSet {
    let Some(entries) = &rule.protocols else { return PortSet::all() };
    let mut out = PortSet::none();
    for e in entries {
        match e {
            TierPort::Range(protocol, a, b) => out.add(*protocol, *a, *b),
            TierPort::Named(name) => {
                if let Some(cp) = dest.and_then(|d| d.ports.iter().find(|p| p.name.as_deref() == Some(name.as_str()))) {
                    out.add(cp.protocol, cp.port, cp.port);
                }
            }
            TierPort::Nothing => {}
        }
    }
    out
}

/// Whether a rule names a port by name (its ports then depend on the destination).
pub(crate) fn uses_named_port(rule: &TierRule) -> bool {
    rule.protocols.iter().flatten().any(|p| matches!(p, TierPort::Named(_)))
}

/// One tier walked for one side: what its first matching rules accept and deny (passed ports are neither).
fn walk(matched: &[(Action, PortSet)]) -> (PortSet, PortSet) {
    let (mut accept, mut deny, mut decided) = (PortSet::none(), PortSet::none(), PortSet::none());
    for (action, ports) in matched {
        let m = ports.subtract(&decided);
        match action {
            Action::Accept => accept = accept.union(&m),
            Action::Deny => deny = deny.union(&m),
            Action::Pass => {}
        }
        decided = decided.union(&m);
    }
    (accept, deny)
}

/// What one side allows, from what its NetworkPolicies allow (`None`: none selects it in this direction) and
/// its matching tier rules in walk order (tier, action, ports).
pub(crate) fn decide(np: Option<PortSet>, matched: impl IntoIterator<Item = (Tier, Action, PortSet)>) -> PortSet {
    let (mut admin, mut baseline) = (Vec::new(), Vec::new());
    for (tier, action, ports) in matched {
        match tier {
            Tier::Admin => admin.push((action, ports)),
            Tier::Baseline => baseline.push((action, ports)),
        }
    }
    if admin.is_empty() && baseline.is_empty() {
        return np.unwrap_or_else(PortSet::all);
    }
    let (accepted, denied) = walk(&admin);
    match np {
        // Passed and undecided ports are the NetworkPolicies' to decide; the Baseline tier is not reached.
        Some(np) => accepted.union(&np.subtract(&denied)),
        None => {
            let (_, baseline_denied) = walk(&baseline);
            PortSet::all().subtract(&denied).subtract(&baseline_denied.subtract(&accepted))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_engine::Protocol;

    fn tcp(a: u16, b: u16) -> PortSet {
        let mut s = PortSet::none();
        s.add(Protocol::Tcp, a, b);
        s
    }

    #[test]
    fn first_match_per_port_then_networkpolicy_or_baseline() {
        // Admin: Deny TCP 80, then Accept TCP 1-1000 (80 stays denied), Pass TCP 2000.
        let admin = [
            (Tier::Admin, Action::Deny, tcp(80, 80)),
            (Tier::Admin, Action::Accept, tcp(1, 1000)),
            (Tier::Admin, Action::Pass, tcp(2000, 2000)),
        ];
        // With a NetworkPolicy allowing TCP 80 and 2000: 80 stays denied, 2000 is the NetworkPolicy's.
        let with_np = decide(Some(tcp(80, 80).union(&tcp(2000, 2000))), admin.clone());
        assert_eq!(with_np.to_string(), "TCP 1-79,81-1000,2000");
        // Without one, a Baseline Deny of TCP 1-3000 takes what the Admin tier did not accept.
        let baseline = (Tier::Baseline, Action::Deny, tcp(1, 3000));
        let without = decide(None, admin.iter().cloned().chain([baseline]));
        assert_eq!(without.to_string(), "SCTP 1-65535,TCP 1-79,81-1000,3001-65535,UDP 1-65535");
        // No tier rule matched: the NetworkPolicies alone, or everything.
        assert_eq!(decide(None, []), PortSet::all());
        assert_eq!(decide(Some(tcp(5, 5)), []), tcp(5, 5));
    }
}
