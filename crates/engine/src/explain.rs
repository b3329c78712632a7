//! Policies in plain words: whom a policy selects, which directions it isolates, each rule as alternatives.

use std::fmt::{self, Write as _};

use k8s_openapi::api::networking::v1::NetworkPolicy;

use crate::policy::{Direction, NamespaceScope, Operator, Peer, Policy, PortEntry, PortMatch, Rule, Selector};

/// Describes a selector: `role=db`, `tier in (a, b)`, `has label env`.
pub fn describe_selector(sel: &Selector) -> String {
    sel.requirements
        .iter()
        .map(|r| match &r.op {
            Operator::In(v) if v.len() == 1 => format!("{}={}", r.key, v[0]),
            Operator::In(v) => format!("{} in ({})", r.key, v.join(", ")),
            Operator::NotIn(v) if v.len() == 1 => format!("{}!={}", r.key, v[0]),
            Operator::NotIn(v) => format!("{} not in ({})", r.key, v.join(", ")),
            Operator::Exists => format!("has label {}", r.key),
            Operator::DoesNotExist => format!("without label {}", r.key),
            Operator::Invalid => format!("{} (invalid operator: matches nothing)", r.key),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn pods_phrase(sel: &Selector) -> String {
    if sel.is_empty() { "any pod".to_owned() } else { format!("pods labelled {}", describe_selector(sel)) }
}

/// One peer, without the leading "from"/"to".
pub fn describe_peer(peer: &Peer) -> String {
    match peer {
        Peer::Pods { namespaces, pods } => {
            let who = pods_phrase(pods);
            match namespaces {
                NamespaceScope::Own(ns) => format!("{who} in namespace {ns}"),
                NamespaceScope::Selector(s) if s.is_empty() => format!("{who} in any namespace"),
                NamespaceScope::Selector(s) => format!("{who} in namespaces labelled {}", describe_selector(s)),
            }
        }
        Peer::IpBlock(b) => {
            if b.except.is_empty() {
                b.cidr.to_string()
            } else {
                let ex: Vec<String> = b.except.iter().map(ToString::to_string).collect();
                format!("{} except {}", b.cidr, ex.join(", "))
            }
        }
        Peer::Invalid => "an unreadable ipBlock (matches nothing)".to_owned(),
    }
}

/// One port entry: `TCP 6379`, `TCP 32000-32768`, `TCP port named http`, `any TCP port`.
pub fn describe_port(p: &PortEntry) -> String {
    match &p.port {
        PortMatch::Any => format!("any {} port", p.protocol),
        PortMatch::Range(a, b) if a == b => format!("{} {a}", p.protocol),
        PortMatch::Range(a, b) => format!("{} {a}-{b}", p.protocol),
        PortMatch::Named(n) => format!("{} port named {n}", p.protocol),
        PortMatch::Invalid => format!("{} (invalid port: matches nothing)", p.protocol),
    }
}

/// One rule as alternatives: `from A, OR from B; on TCP 80 or TCP 443`.
pub fn describe_rule(rule: &Rule, direction: Direction) -> String {
    let word = match direction {
        Direction::Ingress => "from",
        Direction::Egress => "to",
    };
    let peers = match &rule.peers {
        None => format!("{word} anywhere (any pod, any address)"),
        Some(peers) => peers.iter().map(|p| format!("{word} {}", describe_peer(p))).collect::<Vec<_>>().join(", OR "),
    };
    let ports = match &rule.ports {
        None => "on any port".to_owned(),
        Some(ports) => format!("on {}", ports.iter().map(describe_port).collect::<Vec<_>>().join(" or ")),
    };
    format!("{peers}; {ports}")
}

/// The whole policy in plain words, one paragraph per direction.
pub fn explain_policy(np: &NetworkPolicy) -> String {
    let policy = Policy::lower(np);
    let mut out = String::new();
    let _ = writeln!(out, "NetworkPolicy {}", policy.key);
    let selects = if policy.pod_selector.is_empty() {
        format!("all pods in namespace {}", policy.key.namespace)
    } else {
        format!("pods labelled {} in namespace {}", describe_selector(&policy.pod_selector), policy.key.namespace)
    };
    let _ = writeln!(out, "  Selects: {selects}");
    let explicit = np.spec.as_ref().and_then(|s| s.policy_types.as_ref()).is_some_and(|t| !t.is_empty());
    let dirs: Vec<&str> = [(policy.ingress.is_some(), "ingress"), (policy.egress.is_some(), "egress")]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
    let note =
        if explicit { "" } else { " (policyTypes omitted: Ingress, plus Egress because there are egress rules)" };
    let note = if !explicit && policy.egress.is_none() { " (policyTypes omitted: Ingress by default)" } else { note };
    let _ =
        writeln!(out, "  Isolates: {}{note}", if dirs.is_empty() { "nothing".to_owned() } else { dirs.join(" and ") });
    for direction in [Direction::Ingress, Direction::Egress] {
        let title = match direction {
            Direction::Ingress => "Ingress",
            Direction::Egress => "Egress",
        };
        match policy.rules(direction) {
            None => {
                let present = np.spec.as_ref().is_some_and(|s| match direction {
                    Direction::Ingress => s.ingress.as_ref().is_some_and(|r| !r.is_empty()),
                    Direction::Egress => s.egress.as_ref().is_some_and(|r| !r.is_empty()),
                });
                if present {
                    let _ = writeln!(
                        out,
                        "  {title}: rules are ignored: policyTypes does not list {title}, so this policy does not isolate {}",
                        direction.as_str()
                    );
                }
            }
            Some([]) => {
                let _ = writeln!(
                    out,
                    "  {title}: denies all {} of the selected pods (no rule admits anything)",
                    direction.as_str()
                );
            }
            Some(rules) => {
                let _ = writeln!(out, "  {title}: allows only (any rule may match)");
                for (i, rule) in rules.iter().enumerate() {
                    let _ = writeln!(out, "    spec.{}[{i}]: {}", direction.as_str(), describe_rule(rule, direction));
                }
            }
        }
    }
    out
}

// ---- Verdicts in words ----------------------------------------------------------------------------------

use crate::verdict::{Endpoint, NearMiss, RuleMatch, Side, Verdict};
use crate::{Index, IpFamily};

/// The verdict for people: the answer first, then each side, naming the policy and field path that
/// isolated it and the rule that admitted it, or the nearest misses.
pub fn verdict_text(index: &Index, v: &Verdict) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = write_verdict(&mut out, index, v);
    out
}

fn rule_of<'a>(index: &'a Index, m: &RuleMatch) -> Option<&'a Rule> {
    index.policy(&m.policy)?.rules(m.direction)?.get(m.rule)
}

fn peer_text(index: &Index, m: &RuleMatch) -> String {
    match (m.peer, rule_of(index, m).and_then(|r| r.peers.as_ref())) {
        (Some(i), Some(peers)) => peers.get(i).map(describe_peer).unwrap_or_default(),
        _ => "anywhere".to_owned(),
    }
}

fn port_text(index: &Index, m: &RuleMatch) -> String {
    match (m.port, rule_of(index, m).and_then(|r| r.ports.as_ref())) {
        (Some(i), Some(ports)) => ports.get(i).map(describe_port).unwrap_or_default(),
        _ => "any port".to_owned(),
    }
}

fn all_peers_text(index: &Index, m: &RuleMatch, other: &Endpoint, family: IpFamily) -> Vec<String> {
    let Some(rule) = rule_of(index, m) else { return Vec::new() };
    rule.peers
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, p)| {
            let what = describe_peer(p);
            let why = index.peer_mismatch(p, other, family).map(|w| format!(" (no: {w})")).unwrap_or_default();
            format!("{}.{}[{i}]: {what}{why}", m.rule_path(), m.direction.peers_field())
        })
        .collect()
}

fn all_ports_text(index: &Index, m: &RuleMatch) -> Vec<String> {
    let Some(rule) = rule_of(index, m) else { return Vec::new() };
    rule.ports
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, p)| format!("{}.ports[{i}]: {}", m.rule_path(), describe_port(p)))
        .collect()
}

fn side_title(side: &Side) -> String {
    let dir = match side.direction {
        Direction::Ingress => "Ingress to",
        Direction::Egress => "Egress from",
    };
    format!("{dir} {}", side.pod)
}

fn write_side(w: &mut String, index: &Index, side: &Side, other: &Endpoint, family: IpFamily) -> fmt::Result {
    if side.decided_by.is_some() {
        let title = side_title(side);
        return crate::cnp::explain::write_tier_side(w, index, side, &title, &mut |w, lead| {
            write_np_side(w, index, side, other, family, lead)
        });
    }
    write_np_side(w, index, side, other, family, "")
}

/// NetworkPolicy's account of a side; `lead` tells what came before (the Admin tier's outcome).
fn write_np_side(
    w: &mut String,
    index: &Index,
    side: &Side,
    other: &Endpoint,
    family: IpFamily,
    lead: &str,
) -> fmt::Result {
    let title = side_title(side);
    if let Some(why) = &side.exempt {
        return writeln!(w, "{title}: allowed: {why}");
    }
    if !side.isolated {
        return writeln!(
            w,
            "{title}: allowed: not isolated (no NetworkPolicy selects the pod for {})",
            side.direction.as_str()
        );
    }
    let by: Vec<String> = side.selected_by.iter().map(ToString::to_string).collect();
    if let Some(m) = &side.admitted_by {
        writeln!(w, "{title}: allowed: {lead}isolated by {}", by.join(", "))?;
        writeln!(w, "  admitted by {} {}", m.policy, m.rule_path())?;
        writeln!(w, "    peer: {}: {}", m.peer_path(), peer_text(index, m))?;
        writeln!(w, "    port: {}: {}", m.port_path(), port_text(index, m))?;
        return Ok(());
    }
    writeln!(w, "{title}: DENIED: {lead}isolated by {}, and no rule admits the connection", by.join(", "))?;
    if side.near_misses.is_empty() {
        let any_rules = side
            .selected_by
            .iter()
            .any(|k| index.policy(k).and_then(|p| p.rules(side.direction)).is_some_and(|r| !r.is_empty()));
        if !any_rules {
            writeln!(
                w,
                "  the selecting policies have no {} rules: they deny all {}",
                side.direction.as_str(),
                side.direction.as_str()
            )?;
        } else {
            writeln!(w, "  no rule matches either the peer or the port")?;
        }
        return Ok(());
    }
    writeln!(w, "  nearest misses:")?;
    for miss in &side.near_misses {
        match miss {
            NearMiss::PortDidNotMatch { rule } => {
                writeln!(
                    w,
                    "  - {} {}: the peer matches ({}: {}) but no port does:",
                    rule.policy,
                    rule.rule_path(),
                    rule.peer_path(),
                    peer_text(index, rule)
                )?;
                for p in all_ports_text(index, rule) {
                    writeln!(w, "      {p}")?;
                }
            }
            NearMiss::PeerDidNotMatch { rule } => {
                writeln!(
                    w,
                    "  - {} {}: the port matches ({}: {}) but no peer does:",
                    rule.policy,
                    rule.rule_path(),
                    rule.port_path(),
                    port_text(index, rule)
                )?;
                for p in all_peers_text(index, rule, other, family) {
                    writeln!(w, "      {p}")?;
                }
            }
        }
    }
    Ok(())
}

/// The verdict for people: the answer first, then each side.
fn write_verdict(w: &mut String, index: &Index, v: &Verdict) -> fmt::Result {
    let word = if v.allowed { "ALLOWED" } else { "DENIED" };
    writeln!(w, "{word}: {} ({})", v.connection, v.connection.family)?;
    if v.self_connection {
        return writeln!(w, "a pod may always connect to itself");
    }
    let family = v.connection.family;
    match &v.egress {
        Some(side) => write_side(w, index, side, &v.connection.to, family)?,
        None => writeln!(w, "Egress from {}: not a pod; nothing to enforce", v.connection.from)?,
    }
    match &v.ingress {
        Some(side) => write_side(w, index, side, &v.connection.from, family)?,
        None => writeln!(w, "Ingress to {}: not a pod; nothing to enforce", v.connection.to)?,
    }
    if !v.allowed
        && v.egress.as_ref().is_some_and(|s| !s.allowed)
        && v.ingress.as_ref().is_some_and(|s| s.allowed && s.isolated)
    {
        writeln!(w, "note: ingress admits the connection but the client's egress does not; both sides must allow it")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_001_reads_as_three_alternatives() {
        let np: NetworkPolicy = serde_saphyr::from_str(
            "metadata: {name: test-network-policy, namespace: default}\nspec:\n  podSelector: {matchLabels: {role: db}}\n  policyTypes: [Ingress, Egress]\n  ingress:\n  - from:\n    - ipBlock: {cidr: 172.17.0.0/16, except: [172.17.1.0/24]}\n    - namespaceSelector: {matchLabels: {project: myproject}}\n    - podSelector: {matchLabels: {role: frontend}}\n    ports:\n    - {protocol: TCP, port: 6379}\n  egress:\n  - to:\n    - ipBlock: {cidr: 10.0.0.0/24}\n    ports:\n    - {protocol: TCP, port: 5978}\n",
        )
        .unwrap();
        insta::assert_snapshot!(explain_policy(&np));
    }

    #[test]
    fn deny_all_and_ignored_rules() {
        let np: NetworkPolicy = serde_saphyr::from_str(
            "metadata: {name: p, namespace: x}\nspec:\n  podSelector: {}\n  policyTypes: [Egress]\n  ingress:\n  - from: [{podSelector: {}}]\n",
        )
        .unwrap();
        insta::assert_snapshot!(explain_policy(&np));
    }
}
