//! Rules the tiers make unreachable: a tier rule whose every connection an earlier rule of another policy
//! decides first (PAL107), and a NetworkPolicy rule whose every connection the Admin tier denies before
//! NetworkPolicy is consulted (PAL108).
//!
//! A rule is reported only when that is proved for every pod a cluster could hold, not only for the
//! workloads of the manifests: over the engine's lowered selectors, peers and ports, each peer of the rule
//! must lie inside a peer of earlier rules whose subjects hold the rule's subject, for all of the rule's
//! ports. Selectors are compared requirement by requirement, addresses range by range, so a rule that only
//! the union of several peers covers is not reported (the checks may miss a rule, never report a reachable
//! one); the namespace of a NetworkPolicy is judged by its labels as the manifests declare them. The
//! property test in `tests/it/lint.rs` holds every finding against the engine's own verdicts.

use std::net::IpAddr;

use palisade_engine::Protocol;
use palisade_engine::cnp::lower::{LoweredPolicy, PodSet, TierPeer, TierPort, TierRule};
use palisade_engine::cnp::validate::validate_cluster_object;
use palisade_engine::cnp::{Action, Tier};
use palisade_engine::model::Labels;
use palisade_engine::policy::{
    Direction, NamespaceScope, Operator, Peer, Policy, PortMatch, Requirement, Rule, Selector,
};

use crate::lint::{Check, Finding, Location, Severity};
use crate::model::Model;
use crate::ports::PortSet;

pub const TIER_RULE_UNREACHABLE: Check = Check {
    id: "PAL107",
    name: "tier-rule-unreachable",
    severity: Severity::Warning,
    summary: "earlier rules of other tier policies (a lower priority number, or the Admin tier before the Baseline tier) decide every connection this rule matches, so it never decides",
};
pub const NETWORKPOLICY_RULE_DENIED_BY_ADMIN: Check = Check {
    id: "PAL108",
    name: "networkpolicy-rule-denied-by-admin",
    severity: Severity::Warning,
    summary: "an Admin-tier Deny decides every connection this NetworkPolicy rule admits before NetworkPolicy is consulted, so the rule admits nothing",
};

// ---- sets the checks compare ----------------------------------------------------------------------------

/// Namespaces: those a selector matches (whatever their labels), or one namespace with the labels the
/// manifests give it.
#[derive(Debug, Clone)]
enum Namespaces<'a> {
    Selector(&'a Selector),
    Known(Labels),
}

/// What a rule matches at the other end (or, for a subject, the pods it selects).
#[derive(Debug, Clone)]
enum Peers<'a> {
    Pods {
        namespaces: Namespaces<'a>,
        pods: &'a Selector,
    },
    /// Inclusive address ranges.
    Addresses(Vec<(IpAddr, IpAddr)>),
    Nodes(&'a Selector),
}

/// Ports: numbered ranges, and named ports (with the protocol a NetworkPolicy entry requires, `None` for a
/// tier rule, whose named port takes the container port's protocol).
#[derive(Debug, Clone, Default)]
struct Ports {
    numbered: PortSet,
    named: Vec<(String, Option<Protocol>)>,
}

impl Ports {
    fn of_tier(rule: &TierRule) -> Ports {
        let Some(entries) = &rule.protocols else { return Ports { numbered: PortSet::all(), named: Vec::new() } };
        let mut out = Ports::default();
        for e in entries {
            match e {
                TierPort::Range(p, a, b) => out.numbered.add(*p, *a, *b),
                TierPort::Named(n) => out.named.push((n.clone(), None)),
                TierPort::Nothing => {}
            }
        }
        out
    }

    fn of_networkpolicy(rule: &Rule) -> Ports {
        let Some(entries) = &rule.ports else { return Ports { numbered: PortSet::all(), named: Vec::new() } };
        let mut out = Ports::default();
        for e in entries {
            match &e.port {
                PortMatch::Any => out.numbered.add(e.protocol, 1, 65535),
                PortMatch::Range(a, b) => out.numbered.add(e.protocol, *a, *b),
                PortMatch::Named(n) => out.named.push((n.clone(), Some(e.protocol))),
                PortMatch::Invalid => {}
            }
        }
        out
    }

    fn union(&mut self, other: &Ports) {
        self.numbered = self.numbered.union(&other.numbered);
        self.named.extend(other.named.iter().cloned());
    }

    /// Whether every port of `self` is in `wider`.
    fn within(&self, wider: &Ports) -> bool {
        self.numbered.subtract(&wider.numbered).is_empty()
            && self.named.iter().all(|(name, protocol)| {
                wider.numbered.is_all()
                    || wider.named.iter().any(|(n, p)| n == name && (p.is_none() || p == protocol))
                    || protocol.is_some_and(|p| wider.numbered.ranges(p) == [(1, 65535)])
            })
    }

    /// Whether the two may share a port (named ports may be any number: assumed to).
    fn may_meet(&self, other: &Ports) -> bool {
        !self.numbered.intersect(&other.numbered).is_empty() || !self.named.is_empty() || !other.named.is_empty()
    }

    fn is_empty(&self) -> bool {
        self.numbered.is_empty() && self.named.is_empty()
    }
}

/// Whether `narrow` implies requirement `r` (every label set `narrow` matches satisfies `r`), judged one
/// requirement of `narrow` at a time.
fn implies(narrow: &Selector, r: &Requirement) -> bool {
    narrow.requirements.iter().filter(|n| n.key == r.key).any(|n| match (&r.op, &n.op) {
        (Operator::In(want), Operator::In(have)) => have.iter().all(|v| want.contains(v)),
        (Operator::NotIn(out), Operator::In(have)) => have.iter().all(|v| !out.contains(v)),
        (Operator::NotIn(out), Operator::NotIn(have)) => out.iter().all(|v| have.contains(v)),
        (Operator::NotIn(_), Operator::DoesNotExist) => true,
        (Operator::Exists, Operator::In(_) | Operator::Exists) => true,
        (Operator::DoesNotExist, Operator::DoesNotExist) => true,
        _ => false,
    }) || narrow
        .requirements
        .iter()
        .any(|n| matches!(&n.op, Operator::Invalid) || matches!(&n.op, Operator::In(v) if v.is_empty()))
}

/// Whether `wider` matches every label set `narrow` matches.
fn contains(wider: &Selector, narrow: &Selector) -> bool {
    wider.requirements.iter().all(|r| implies(narrow, r))
}

/// Whether no label set matches both (proved from one requirement of each on the same key).
fn disjoint(a: &Selector, b: &Selector) -> bool {
    let nothing = |s: &Selector| {
        s.requirements
            .iter()
            .any(|r| matches!(&r.op, Operator::Invalid) || matches!(&r.op, Operator::In(v) if v.is_empty()))
    };
    if nothing(a) || nothing(b) {
        return true;
    }
    a.requirements.iter().any(|x| {
        b.requirements.iter().filter(|y| y.key == x.key).any(|y| match (&x.op, &y.op) {
            (Operator::In(v), Operator::In(w)) => v.iter().all(|s| !w.contains(s)),
            (Operator::In(v), Operator::NotIn(w)) | (Operator::NotIn(w), Operator::In(v)) => {
                v.iter().all(|s| w.contains(s))
            }
            (Operator::In(_) | Operator::Exists, Operator::DoesNotExist)
            | (Operator::DoesNotExist, Operator::In(_) | Operator::Exists) => true,
            _ => false,
        })
    })
}

fn namespaces_within(narrow: &Namespaces<'_>, wider: &Selector) -> bool {
    match narrow {
        Namespaces::Known(labels) => wider.matches(labels),
        Namespaces::Selector(s) => contains(wider, s),
    }
}

fn namespaces_may_meet(a: &Namespaces<'_>, b: &Selector) -> bool {
    match a {
        Namespaces::Known(labels) => b.matches(labels),
        Namespaces::Selector(s) => !disjoint(s, b),
    }
}

fn family_bounds(ip: &IpAddr) -> (IpAddr, IpAddr) {
    match ip {
        IpAddr::V4(_) => (IpAddr::from([0u8; 4]), IpAddr::from([255u8; 4])),
        IpAddr::V6(_) => (IpAddr::from([0u8; 16]), IpAddr::from([255u8; 16])),
    }
}

/// Whether the tier peer `wide` matches everything `narrow` matches.
fn peer_covers(wide: &TierPeer, narrow: &Peers<'_>) -> bool {
    match (wide, narrow) {
        (TierPeer::Pods(set), Peers::Pods { namespaces, pods }) => {
            !set.none && namespaces_within(namespaces, &set.namespaces) && contains(&set.pods, pods)
        }
        (TierPeer::Networks(nets), Peers::Addresses(ranges)) => {
            ranges.iter().all(|(a, b)| nets.iter().any(|n| n.contains(a) && n.contains(b)))
        }
        // Every address of both families: every pod too.
        (TierPeer::Networks(nets), Peers::Pods { .. }) => {
            [IpAddr::from([0u8; 4]), IpAddr::from([0u8; 16])].iter().all(|zero| {
                let (lo, hi) = family_bounds(zero);
                nets.iter().any(|n| n.contains(&lo) && n.contains(&hi))
            })
        }
        (TierPeer::Nodes(sel), Peers::Nodes(narrow)) => contains(sel, narrow),
        _ => false,
    }
}

/// Whether the tier peer `a` may match something `b` matches.
fn peers_may_meet(a: &TierPeer, action: Action, b: &Peers<'_>) -> bool {
    match (a, b) {
        (TierPeer::Pods(set), Peers::Pods { namespaces, pods }) => {
            !set.none && namespaces_may_meet(namespaces, &set.namespaces) && !disjoint(&set.pods, pods)
        }
        (TierPeer::Pods(set), _) => !set.none, // addresses may be pods', nodes may run host-network pods
        (TierPeer::Networks(nets), Peers::Addresses(ranges)) => ranges.iter().any(|(a, b)| {
            nets.iter().any(|n| {
                let (lo, hi) = (n.network(), n.broadcast());
                lo.is_ipv4() == a.is_ipv4() && lo <= *b && *a <= hi
            })
        }),
        (TierPeer::Networks(_) | TierPeer::Nodes(_), _) => true,
        (TierPeer::DomainNames(_), _) => false,
        (TierPeer::Unknown, _) => action != Action::Accept,
    }
}

/// The pods a tier policy's subject selects, as [`Peers`].
fn subject_of(set: &PodSet) -> Option<Peers<'_>> {
    (!set.none).then_some(Peers::Pods { namespaces: Namespaces::Selector(&set.namespaces), pods: &set.pods })
}

/// Whether subject `wide` selects every pod `narrow` selects.
fn subject_covers(wide: &PodSet, narrow: &Peers<'_>) -> bool {
    peer_covers(&TierPeer::Pods(wide.clone()), narrow)
}

/// What a tier rule matches at the other end, or `None` when a peer cannot be judged (domainNames, unknown).
fn tier_rule_peers(rule: &TierRule) -> Option<Vec<Peers<'_>>> {
    rule.peers
        .iter()
        .map(|p| match p {
            TierPeer::Pods(set) if !set.none => {
                Some(Peers::Pods { namespaces: Namespaces::Selector(&set.namespaces), pods: &set.pods })
            }
            TierPeer::Networks(nets) => {
                Some(Peers::Addresses(nets.iter().map(|n| (n.network(), n.broadcast())).collect()))
            }
            TierPeer::Nodes(sel) => Some(Peers::Nodes(sel)),
            _ => None,
        })
        .collect()
}

// ---- the walk -----------------------------------------------------------------------------------------

/// A tier rule in walk order.
struct Step<'p> {
    policy: usize,
    rule: usize,
    tier: Tier,
    p: &'p LoweredPolicy,
    r: &'p TierRule,
}

fn steps(policies: &[LoweredPolicy], d: Direction) -> Vec<Step<'_>> {
    policies
        .iter()
        .enumerate()
        .flat_map(|(pi, p)| {
            p.rules(d).iter().enumerate().map(move |(ri, r)| Step { policy: pi, rule: ri, tier: p.tier, p, r })
        })
        .collect()
}

fn rule_title(s: &Step<'_>, d: Direction) -> String {
    let name = s.r.name.as_ref().map(|n| format!(" {n:?}")).unwrap_or_default();
    format!("{} spec.{}[{}]{name} ({})", s.p.title(), d.as_str(), s.rule, s.r.action)
}

/// Which of `earlier` cover the connections of (`subject`, `peers`, `ports`): for each peer, the union of
/// the ports of the rules that hold it must hold `ports`. `None` when some peer is not covered.
fn cover<'s>(
    earlier: &[&'s Step<'s>],
    subject: &Peers<'_>,
    peers: &[Peers<'_>],
    ports: &Ports,
) -> Option<Vec<&'s Step<'s>>> {
    let mut used: Vec<&Step<'_>> = Vec::new();
    for peer in peers {
        let mut union = Ports::default();
        let mut by = Vec::new();
        for e in earlier.iter().filter(|e| subject_covers(&e.p.subject, subject)) {
            if e.r.peers.iter().any(|w| peer_covers(w, peer)) {
                union.union(&Ports::of_tier(e.r));
                by.push(*e);
            }
        }
        if !ports.within(&union) {
            return None;
        }
        // Name only the rules that add ports the ones before them did not (in walk order).
        let mut seen = Ports::default();
        for e in by {
            let mine = Ports::of_tier(e.r);
            if !mine.within(&seen) {
                seen.union(&mine);
                if !used.iter().any(|u| u.policy == e.policy && u.rule == e.rule) {
                    used.push(e);
                }
            }
            if ports.within(&seen) {
                break;
            }
        }
    }
    used.sort_by_key(|s| (s.policy, s.rule));
    Some(used)
}

fn names(used: &[&Step<'_>], d: Direction) -> String {
    let list: Vec<String> = used.iter().map(|s| rule_title(s, d)).collect();
    match list.as_slice() {
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
        [] => String::new(),
    }
}

fn location(origin: &palisade_engine::Origin, object: String, field: String) -> Location {
    Location { origin: origin.to_string(), file: origin.source.clone(), object, field }
}

fn finding(check: Check, location: Location, message: String, fix: String) -> Finding {
    Finding { id: check.id, name: check.name, severity: check.severity, location, message, fix }
}

/// PAL107 and PAL108 for the model, in policy order.
pub fn lint_reach(model: &Model) -> Vec<Finding> {
    let mut lowered: Vec<(&palisade_engine::Origin, LoweredPolicy)> = model
        .tier_policies
        .iter()
        // A policy the apiserver would refuse never runs, so it makes nothing unreachable (and is not judged).
        .filter(|(_, obj)| validate_cluster_object(obj).iter().all(|e| e.stricter))
        .filter_map(|(o, obj)| obj.as_policy().as_ref().and_then(LoweredPolicy::lower).map(|p| (o, p)))
        .collect();
    lowered.sort_by(|(_, a), (_, b)| (a.tier, a.priority, &a.name, a.kind).cmp(&(b.tier, b.priority, &b.name, b.kind)));
    let origins: Vec<&palisade_engine::Origin> = lowered.iter().map(|(o, _)| *o).collect();
    let policies: Vec<LoweredPolicy> = lowered.into_iter().map(|(_, p)| p).collect();
    let mut out = Vec::new();
    if policies.is_empty() {
        return out;
    }
    // PAL107, per policy in walk order.
    let mut per_policy: Vec<Vec<Finding>> = vec![Vec::new(); policies.len()];
    for d in [Direction::Ingress, Direction::Egress] {
        let all = steps(&policies, d);
        for (i, s) in all.iter().enumerate() {
            let (Some(subject), Some(peers)) = (subject_of(&s.p.subject), tier_rule_peers(s.r)) else { continue };
            let ports = Ports::of_tier(s.r);
            if peers.is_empty() || ports.is_empty() {
                continue;
            }
            // Before a rule: every earlier rule of its tier (any action leaves the tier); before a Baseline rule
            // also the Admin tier's Accept and Deny rules that no Pass rule comes before.
            let first_pass = all.iter().position(|e| e.tier == Tier::Admin && e.r.action == Action::Pass);
            let earlier: Vec<&Step<'_>> = all[..i]
                .iter()
                .enumerate()
                .filter(|(j, e)| {
                    e.tier == s.tier || (e.r.action != Action::Pass && first_pass.is_none_or(|fp| *j < fp))
                })
                .map(|(_, e)| e)
                .collect();
            let own: Vec<&Step<'_>> = earlier.iter().copied().filter(|e| e.policy == s.policy).collect();
            if cover(&own, &subject, &peers, &ports).is_some() {
                continue; // the policy's own earlier rules suffice: PAL102's matter
            }
            let Some(used) = cover(&earlier, &subject, &peers, &ports) else { continue };
            let origin = origins[s.policy];
            per_policy[s.policy].push(finding(
                TIER_RULE_UNREACHABLE,
                location(origin, format!("{} {}", s.p.kind, s.p.name), format!("spec.{}[{}]", d.as_str(), s.rule)),
                format!(
                    "every connection this {} rule matches is decided first by {}: for every pod the subject selects, each peer and port of the rule lies within theirs, so this rule never decides",
                    s.r.action,
                    names(&used, d)
                ),
                "remove the rule, or give this policy a lower priority number (or narrow the earlier rule) if it should decide".into(),
            ));
        }
    }
    out.extend(per_policy.into_iter().flatten());

    // PAL108, per NetworkPolicy rule.
    for (origin, np) in &model.policies {
        let policy = Policy::lower(np);
        let ns_labels = model.namespace_labels(&policy.key.namespace);
        let subject = Peers::Pods { namespaces: Namespaces::Known(ns_labels.clone()), pods: &policy.pod_selector };
        for d in [Direction::Ingress, Direction::Egress] {
            let Some(rules) = policy.rules(d) else { continue };
            let admin: Vec<Step<'_>> = steps(&policies, d).into_iter().filter(|s| s.tier == Tier::Admin).collect();
            if admin.is_empty() {
                continue;
            }
            for (ri, rule) in rules.iter().enumerate() {
                let Some(peers) = np_rule_peers(rule, &ns_labels) else { continue };
                let ports = Ports::of_networkpolicy(rule);
                if ports.is_empty() {
                    continue;
                }
                // The Deny rules covering it, and no Accept or Pass rule before the last of them that might
                // match one of its connections first.
                let denies: Vec<&Step<'_>> = admin.iter().filter(|s| s.r.action == Action::Deny).collect();
                let Some(used) = cover(&denies, &subject, &peers, &ports) else { continue };
                let last = admin.iter().rposition(|s| used.iter().any(|u| u.policy == s.policy && u.rule == s.rule));
                let Some(last) = last else { continue };
                let known = Namespaces::Known(ns_labels.clone());
                let intercepted = admin[..last].iter().filter(|s| s.r.action != Action::Deny).any(|s| {
                    !s.p.subject.none
                        && namespaces_may_meet(&known, &s.p.subject.namespaces)
                        && !disjoint(&s.p.subject.pods, &policy.pod_selector)
                        && peers.iter().any(|p| s.r.peers.iter().any(|w| peers_may_meet(w, s.r.action, p)))
                        && Ports::of_tier(s.r).may_meet(&ports)
                });
                if intercepted {
                    continue;
                }
                out.push(finding(
                    NETWORKPOLICY_RULE_DENIED_BY_ADMIN,
                    location(origin, format!("NetworkPolicy {}", policy.key), format!("spec.{}[{ri}]", d.as_str())),
                    format!(
                        "every connection this rule admits is denied first by {}: the Admin tier decides before NetworkPolicy is consulted, so this rule admits nothing",
                        names(&used, d)
                    ),
                    "remove the rule, or ask for an Admin-tier exception (an Accept or Pass before the Deny) if these connections are needed".into(),
                ));
            }
        }
    }
    out
}

/// What a NetworkPolicy rule matches at the other end; `None` when it cannot be judged. An empty peer list
/// is every pod and every address.
fn np_rule_peers<'a>(rule: &'a Rule, ns_labels: &Labels) -> Option<Vec<Peers<'a>>> {
    static EVERYTHING: std::sync::OnceLock<Selector> = std::sync::OnceLock::new();
    let all = EVERYTHING.get_or_init(Selector::default);
    let Some(peers) = &rule.peers else {
        let zero4 = IpAddr::from([0u8; 4]);
        let zero6 = IpAddr::from([0u8; 16]);
        return Some(vec![
            Peers::Pods { namespaces: Namespaces::Selector(all), pods: all },
            Peers::Addresses(vec![family_bounds(&zero4), family_bounds(&zero6)]),
        ]);
    };
    peers
        .iter()
        .map(|p| match p {
            // The policy's own namespace, with the labels the manifests give it.
            Peer::Pods { namespaces: NamespaceScope::Own(_), pods } => {
                Some(Peers::Pods { namespaces: Namespaces::Known(ns_labels.clone()), pods })
            }
            Peer::Pods { namespaces: NamespaceScope::Selector(sel), pods } => {
                Some(Peers::Pods { namespaces: Namespaces::Selector(sel), pods })
            }
            Peer::IpBlock(b) => Some(Peers::Addresses(b.ranges())),
            // Matches nothing: no address to cover.
            Peer::Invalid => Some(Peers::Addresses(Vec::new())),
        })
        .collect()
}
