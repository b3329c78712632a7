//! Tier policies and tier verdicts in plain words: the tier and priority, whom the subject selects, each
//! rule with its action in order; for a side, which tier, policy, rule and action decided, what passed on,
//! and why the lower tiers were or were not reached.

use std::fmt::{self, Write as _};

use super::lower::{LoweredPolicy, PodSet, TierPeer, TierPort, TierRule};
use super::{Action, ClusterObject, PolicyKind, Tier};
use crate::Index;
use crate::explain::describe_selector;
use crate::policy::Direction;
use crate::verdict::{Side, Stage, TierRuleMatch};

fn pod_set(s: &PodSet) -> String {
    if s.none {
        return "nothing (the subject names neither or both of namespaces and pods)".to_owned();
    }
    let pods =
        if s.pods.is_empty() { "pods".to_owned() } else { format!("pods labelled {}", describe_selector(&s.pods)) };
    let ns = if s.namespaces.is_empty() {
        "any namespace".to_owned()
    } else {
        format!("namespaces labelled {}", describe_selector(&s.namespaces))
    };
    format!("{pods} in {ns}")
}

/// One peer, without "from"/"to".
pub fn describe_tier_peer(p: &TierPeer) -> String {
    match p {
        TierPeer::Pods(s) => pod_set(s),
        TierPeer::Networks(nets) => {
            let nets: Vec<String> = nets.iter().map(ToString::to_string).collect();
            format!("addresses in {} (pod addresses included)", nets.join(", "))
        }
        TierPeer::Nodes(sel) if sel.is_empty() => "the addresses of any node".to_owned(),
        TierPeer::Nodes(sel) => format!("the addresses of nodes labelled {}", describe_selector(sel)),
        TierPeer::DomainNames(names) => {
            format!("domains {} (not enforced by Palisade yet: matches nothing)", names.join(", "))
        }
        TierPeer::Unknown => "a peer with no known field (fails closed)".to_owned(),
    }
}

/// One `protocols` entry: `TCP 80`, `UDP 5353-5355`, `the destination's port named dns`.
pub fn describe_tier_port(p: &TierPort) -> String {
    match p {
        TierPort::Range(proto, a, b) if a == b => format!("{proto} {a}"),
        TierPort::Range(proto, a, b) => format!("{proto} {a}-{b}"),
        TierPort::Named(n) => format!("the destination pod's port named {n}"),
        TierPort::Nothing => "an unreadable entry (matches nothing)".to_owned(),
    }
}

/// `from A, OR from B; on TCP 80 or UDP 53`.
pub fn describe_tier_rule(rule: &TierRule, direction: Direction) -> String {
    let word = direction.peers_field();
    let peers = if rule.peers.is_empty() {
        "nothing (no peer)".to_owned()
    } else {
        rule.peers.iter().map(|p| format!("{word} {}", describe_tier_peer(p))).collect::<Vec<_>>().join(", OR ")
    };
    let ports = match &rule.protocols {
        None => "on any protocol and port".to_owned(),
        Some(ps) => format!("on {}", ps.iter().map(describe_tier_port).collect::<Vec<_>>().join(" or ")),
    };
    format!("{peers}; {ports}")
}

fn rule_path(direction: Direction, i: usize, rule: &TierRule) -> String {
    match &rule.name {
        Some(n) => format!("spec.{}[{i}] {n:?}", direction.as_str()),
        None => format!("spec.{}[{i}]", direction.as_str()),
    }
}

/// The whole tier policy in plain words.
pub fn explain_tier_policy(o: &ClusterObject) -> String {
    let mut out = String::new();
    let Some(policy) = o.as_policy() else { return out };
    let Some(p) = LoweredPolicy::lower(&policy) else {
        let _ =
            writeln!(out, "{} {}\n  Tier: not Admin or Baseline: the policy takes no part", policy.kind, policy.name);
        return out;
    };
    let _ = writeln!(out, "{} {}", p.kind, p.name);
    let place = match (p.tier, p.kind) {
        (Tier::Admin, _) => {
            format!("Admin, priority {} (lower first): before NetworkPolicy; Accept and Deny override it", p.priority)
        }
        (Tier::Baseline, PolicyKind::BaselineAdminNetworkPolicy) => {
            "Baseline (the singleton): after NetworkPolicy, only in directions no NetworkPolicy isolates".to_owned()
        }
        (Tier::Baseline, _) => format!(
            "Baseline, priority {} (lower first): after NetworkPolicy, only in directions no NetworkPolicy isolates",
            p.priority
        ),
    };
    let _ = writeln!(out, "  Tier: {place}");
    let _ = writeln!(out, "  Subject: {} (never host-network pods)", pod_set(&p.subject));
    for direction in [Direction::Ingress, Direction::Egress] {
        let title = match direction {
            Direction::Ingress => "Ingress",
            Direction::Egress => "Egress",
        };
        let rules = p.rules(direction);
        if rules.is_empty() {
            let _ = writeln!(out, "  {title}: no rules: the policy never decides {}", direction.as_str());
            continue;
        }
        let _ = writeln!(out, "  {title}: the first matching rule decides (Pass leaves the tier)");
        for (i, r) in rules.iter().enumerate() {
            let _ =
                writeln!(out, "    {}: {} {}", rule_path(direction, i, r), r.action, describe_tier_rule(r, direction));
        }
    }
    out
}

fn lowered<'a>(index: &'a Index, m: &TierRuleMatch) -> Option<&'a LoweredPolicy> {
    index.tiers().policies.iter().map(|p| &p.policy).find(|p| p.kind == m.policy.kind && p.name == m.policy.name)
}

/// `ClusterNetworkPolicy deny-from-z (Admin, priority 10) spec.ingress[1] "deny-z": from namespaces labelled team=z`
pub fn describe_match(index: &Index, m: &TierRuleMatch) -> String {
    let what = lowered(index, m)
        .and_then(|p| p.rules(m.direction).get(m.rule))
        .map(|r| {
            let peer = r.peers.get(m.peer).map(describe_tier_peer).unwrap_or_default();
            let port = match (&r.protocols, m.protocol) {
                (Some(ps), Some(i)) => ps.get(i).map(describe_tier_port).unwrap_or_default(),
                _ => "any protocol and port".to_owned(),
            };
            format!("{} {peer}; on {port}", m.direction.peers_field())
        })
        .unwrap_or_default();
    format!("{} {}: {what}", m.policy, m.rule_path())
}

fn verb(a: Action) -> &'static str {
    match a {
        Action::Accept => "allowed: accepted",
        Action::Deny => "DENIED",
        Action::Pass => "passed",
    }
}

fn write_ties(w: &mut String, m: &TierRuleMatch) -> fmt::Result {
    if !m.tied_with.is_empty() {
        writeln!(
            w,
            "  note: {} shares priority {} with {}: the API leaves their order undefined; Palisade walks them by name",
            m.policy.name,
            m.policy.priority,
            m.tied_with.join(", ")
        )?;
    }
    Ok(())
}

/// What happened in the Admin tier, as the lead of a line about a later stage.
fn admin_lead(index: &Index, side: &Side) -> String {
    match &side.admin {
        Some(m) if m.action == Action::Pass => format!("passed by {}, then ", describe_match(index, m)),
        _ => "no Admin rule matches, then ".to_owned(),
    }
}

/// `domainNames` rules of the selecting policies: said plainly, since they match nothing yet.
fn write_domain_notes(w: &mut String, index: &Index, side: &Side) -> fmt::Result {
    for r in &side.tier_policies {
        let Some(p) = index.tiers().policies.iter().map(|p| &p.policy).find(|p| p.kind == r.kind && p.name == r.name)
        else {
            continue;
        };
        for (i, rule) in p.rules(side.direction).iter().enumerate() {
            for peer in &rule.peers {
                if let TierPeer::DomainNames(names) = peer {
                    writeln!(
                        w,
                        "  note: {r} {} names domains ({}): Palisade does not resolve names yet, so it matches nothing",
                        rule_path(side.direction, i, rule),
                        names.join(", ")
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// A side that some tier policy selects: the stage that decided and how it was reached. For the NetworkPolicy
/// stage, `np` writes NetworkPolicy's own account, with the lead it is given.
pub fn write_tier_side(
    w: &mut String,
    index: &Index,
    side: &Side,
    title: &str,
    np: &mut dyn FnMut(&mut String, &str) -> fmt::Result,
) -> fmt::Result {
    let Some(stage) = side.decided_by else { return Ok(()) };
    let dir = side.direction.as_str();
    match stage {
        Stage::Admin => {
            let Some(m) = &side.admin else { return Ok(()) };
            writeln!(w, "{title}: {} by {}", verb(m.action), describe_match(index, m))?;
            writeln!(w, "  NetworkPolicy and the Baseline tier are not consulted for this {dir}")?;
            write_ties(w, m)?;
        }
        Stage::NetworkPolicy => {
            np(w, &admin_lead(index, side))?;
            if let Some(m) = &side.admin {
                write_ties(w, m)?;
            }
            writeln!(w, "  the Baseline tier is not consulted: NetworkPolicy isolates the pod for {dir}")?;
        }
        Stage::Baseline => {
            let Some(m) = &side.baseline else { return Ok(()) };
            writeln!(w, "{title}: {} by {}", verb(m.action), describe_match(index, m))?;
            writeln!(
                w,
                "  reached the Baseline tier: {}no NetworkPolicy isolates the pod for {dir}",
                admin_lead(index, side)
            )?;
            if let Some(a) = &side.admin {
                write_ties(w, a)?;
            }
            write_ties(w, m)?;
        }
        Stage::Default => {
            let tail = match &side.baseline {
                Some(m) => format!("passed by {} {}, and no tier follows", m.policy, m.rule_path()),
                None => "no Baseline rule matches".to_owned(),
            };
            writeln!(
                w,
                "{title}: allowed: {}no NetworkPolicy isolates the pod for {dir}, then {tail}",
                admin_lead(index, side)
            )?;
        }
    }
    write_domain_notes(w, index, side)?;
    let selecting: Vec<String> = side.tier_policies.iter().map(ToString::to_string).collect();
    writeln!(w, "  tier policies selecting the pod for {dir}: {}", selecting.join(", "))
}

#[cfg(test)]
mod tests {
    use crate::explain::verdict_text;
    use crate::load::load_str;
    use crate::{Cluster, Connection, Endpoint, Index, Protocol};

    fn cluster() -> (Cluster, Vec<super::ClusterObject>) {
        let loaded = load_str("tiers.yaml", include_str!("testdata/tiers.yaml"));
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        let mut c = Cluster::from_objects(loaded.objects.into_iter().map(|o| o.value));
        let objects: Vec<_> = loaded.cluster_objects.into_iter().map(|o| o.value).collect();
        for o in &objects {
            c.apply_cluster(o.clone());
        }
        (c, objects)
    }

    #[test]
    fn verdicts_name_the_tier_policy_rule_and_action() {
        let (c, _) = cluster();
        let index = Index::build(&c);
        let conns = [
            ("z/c", "x/a", Protocol::Tcp, 80),          // Admin Deny
            ("y/b", "x/a", Protocol::Tcp, 80),          // Admin Pass, then NetworkPolicy admits
            ("y/b", "x/a", Protocol::Tcp, 81),          // Admin Pass, then NetworkPolicy denies
            ("x/a", "y/b", Protocol::Udp, 53), // Admin Accept by named port (tie at priority 10), Baseline deny ingress
            ("x/a", "z/host", Protocol::Tcp, 10250), // Admin Deny to a node address
            ("x/a", "203.0.113.9", Protocol::Tcp, 443), // domainNames not enforced; Baseline Deny to the internet
            ("z/c", "203.0.113.9", Protocol::Tcp, 80), // v1alpha1 Allow does not match an address; Baseline Deny
            ("z/c", "y/b", Protocol::Udp, 53), // nothing on egress; BANP denies ingress
            ("x/a", "z/c", Protocol::Tcp, 80), // Pass at a tied priority, then Baseline Deny (networks match pods)
        ];
        let mut out = String::new();
        for (from, to, p, port) in conns {
            let conn = Connection::new(Endpoint::parse(from).unwrap(), Endpoint::parse(to).unwrap(), p, port);
            out.push_str(&verdict_text(&index, &index.decide(&conn).unwrap()));
            out.push('\n');
        }
        insta::assert_snapshot!(out);
    }

    #[test]
    fn tier_policies_in_plain_words() {
        let (_, objects) = cluster();
        let text: String = objects.iter().map(super::explain_tier_policy).collect::<Vec<_>>().join("\n");
        insta::assert_snapshot!(text);
    }
}
