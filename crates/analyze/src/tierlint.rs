//! Findings about ClusterNetworkPolicies (and the v1alpha1 AdminNetworkPolicy / BaselineAdminNetworkPolicy):
//! equal priorities over the same workloads, rules shadowed by an earlier rule of the same policy,
//! `domainNames` outside Accept and not enforced, named ports with address peers, a Pass with nothing below;
//! and rules the tiers make unreachable ([`crate::tierreach`]).

use palisade_engine::cnp::lower::{LoweredPolicy, TierPeer, TierPort, TierRule};
use palisade_engine::cnp::{Action, ClusterObject, Tier};
use palisade_engine::load::Origin;
use palisade_engine::model::Labels;
use palisade_engine::policy::Direction;

use crate::lint::{Check, Finding, Location, Severity};
use crate::model::Model;

pub const EQUAL_PRIORITY_OVERLAP: Check = Check {
    id: "PAL101",
    name: "equal-priority-overlap",
    severity: Severity::Warning,
    summary: "two policies of one tier share a priority and select the same workloads: the API leaves their order undefined",
};
pub const TIER_RULE_SHADOWED: Check = Check {
    id: "PAL102",
    name: "tier-rule-shadowed",
    severity: Severity::Warning,
    summary: "an earlier rule of the same policy matches everything this rule matches, so this rule never decides",
};
pub const DOMAIN_NAMES_OUTSIDE_ACCEPT: Check = Check {
    id: "PAL103",
    name: "domain-names-outside-accept",
    severity: Severity::Error,
    summary: "domainNames is meant for Accept rules only; the apiserver accepts it in Deny and Pass",
};
pub const NAMED_PORT_WITH_ADDRESSES: Check = Check {
    id: "PAL104",
    name: "named-port-with-address-peer",
    severity: Severity::Warning,
    summary: "destinationNamedPort with a networks, nodes or domainNames peer: an address has no named ports",
};
pub const PASS_WITH_NOTHING_BELOW: Check = Check {
    id: "PAL105",
    name: "pass-with-nothing-below",
    severity: Severity::Warning,
    summary: "a Pass rule that nothing below it decides: it allows, as Accept would",
};
pub const DOMAIN_NAMES_NOT_ENFORCED: Check = Check {
    id: "PAL106",
    name: "domain-names-not-enforced",
    severity: Severity::Info,
    summary: "Palisade does not resolve domainNames yet: such a peer matches nothing",
};

pub const TIER_CHECKS: [Check; 8] = [
    EQUAL_PRIORITY_OVERLAP,
    TIER_RULE_SHADOWED,
    DOMAIN_NAMES_OUTSIDE_ACCEPT,
    NAMED_PORT_WITH_ADDRESSES,
    PASS_WITH_NOTHING_BELOW,
    DOMAIN_NAMES_NOT_ENFORCED,
    crate::tierreach::TIER_RULE_UNREACHABLE,
    crate::tierreach::NETWORKPOLICY_RULE_DENIED_BY_ADMIN,
];

fn finding(check: Check, origin: &Origin, p: &LoweredPolicy, field: String, message: String, fix: String) -> Finding {
    let location = Location {
        origin: origin.to_string(),
        file: origin.source.clone(),
        object: format!("{} {}", p.kind, p.name),
        field,
    };
    Finding { id: check.id, name: check.name, severity: check.severity, location, message, fix }
}

/// Whether a peer matches at least everything `other` matches (judged from the text: equal, or a peer that
/// matches every pod, or networks covering the other's).
fn covers(p: &TierPeer, other: &TierPeer) -> bool {
    if p == other {
        return true;
    }
    match (p, other) {
        (TierPeer::Pods(a), TierPeer::Pods(_)) => !a.none && a.namespaces.is_empty() && a.pods.is_empty(),
        (TierPeer::Networks(a), TierPeer::Networks(b)) => b.iter().all(|n| a.iter().any(|m| m.contains(n))),
        (TierPeer::Nodes(a), TierPeer::Nodes(_)) => a.is_empty(),
        _ => false,
    }
}

/// Whether `earlier` matches every connection `later` matches.
fn shadows(earlier: &TierRule, later: &TierRule) -> bool {
    let ports = match (&earlier.protocols, &later.protocols) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(e), Some(l)) => l.iter().all(|lp| {
            e.iter().any(|ep| match (ep, lp) {
                (TierPort::Range(p, a, b), TierPort::Range(q, c, d)) => p == q && a <= c && d <= b,
                _ => ep == lp,
            })
        }),
    };
    ports && !later.peers.is_empty() && later.peers.iter().all(|lp| earlier.peers.iter().any(|ep| covers(ep, lp)))
}

fn rule_field(d: Direction, i: usize) -> String {
    format!("spec.{}[{i}]", d.as_str())
}

/// The workloads (as namespace and labels) a subject selects.
fn selected(model: &Model, p: &LoweredPolicy) -> Vec<usize> {
    let empty = Labels::new();
    (0..model.workloads.len())
        .filter(|&i| {
            let w = &model.workloads[i];
            p.subject.matches(model.namespaces.get(&w.namespace).unwrap_or(&empty), &w.labels, false)
        })
        .collect()
}

/// All tier findings, in policy order then check order.
pub fn lint_tiers(model: &Model) -> Vec<Finding> {
    let policies: Vec<(&Origin, LoweredPolicy)> = model
        .tier_policies
        .iter()
        .filter_map(|(o, obj)| obj.as_policy().and_then(|p| LoweredPolicy::lower(&p)).map(|p| (o, p)))
        .collect();
    let has_netpol = !model.policies.is_empty();
    let has_baseline = policies.iter().any(|(_, p)| p.tier == Tier::Baseline);
    let mut out = Vec::new();
    for (pi, (origin, p)) in policies.iter().enumerate() {
        let mine = selected(model, p);
        for (qi, (_, q)) in policies.iter().enumerate() {
            if qi <= pi || q.tier != p.tier || q.priority != p.priority {
                continue;
            }
            let overlap = if model.workloads.is_empty() {
                p.subject == q.subject
            } else {
                let theirs = selected(model, q);
                mine.iter().any(|w| theirs.contains(w))
            };
            if overlap {
                out.push(finding(
                    EQUAL_PRIORITY_OVERLAP,
                    origin,
                    p,
                    "spec.priority".into(),
                    format!(
                        "{} and {} {} are both {} priority {} and select the same workloads: which one is checked first is undefined (Palisade, KNP and Calico walk them by name)",
                        p.name, q.kind, q.name, p.tier, p.priority
                    ),
                    "give one of them another priority".into(),
                ));
            }
        }
        for d in [Direction::Ingress, Direction::Egress] {
            let rules = p.rules(d);
            for (i, r) in rules.iter().enumerate() {
                if let Some(j) = (0..i).find(|&j| shadows(&rules[j], r)) {
                    out.push(finding(
                        TIER_RULE_SHADOWED,
                        origin,
                        p,
                        rule_field(d, i),
                        format!(
                            "{} matches every connection this rule matches and comes first, so this {} never decides",
                            rule_field(d, j),
                            r.action
                        ),
                        "remove the rule, or move it before the broader one if it should win".into(),
                    ));
                }
                let domains = r.peers.iter().any(|x| matches!(x, TierPeer::DomainNames(_)));
                if domains && r.action != Action::Accept {
                    out.push(finding(
                        DOMAIN_NAMES_OUTSIDE_ACCEPT,
                        origin,
                        p,
                        rule_field(d, i),
                        format!("a {} rule names domainNames: the API allows them in Accept rules only", r.action),
                        "use networks for a Deny or Pass, or make the rule an Accept".into(),
                    ));
                }
                if domains {
                    out.push(finding(
                        DOMAIN_NAMES_NOT_ENFORCED,
                        origin,
                        p,
                        rule_field(d, i),
                        "Palisade does not resolve domainNames yet: this peer matches nothing".into(),
                        "name the addresses with networks if they are known".into(),
                    ));
                }
                let named = r.protocols.iter().flatten().any(|x| matches!(x, TierPort::Named(_)));
                let addresses = r.peers.iter().any(|x| !matches!(x, TierPeer::Pods(_) | TierPeer::Unknown));
                if named && addresses {
                    out.push(finding(
                        NAMED_PORT_WITH_ADDRESSES,
                        origin,
                        p,
                        rule_field(d, i),
                        "destinationNamedPort resolves on a destination pod; an address peer has none, so the rule matches only pods there".into(),
                        "use a port number for the address peers (a rule of its own)".into(),
                    ));
                }
                let nothing_below = match p.tier {
                    Tier::Baseline => true,
                    Tier::Admin => !has_netpol && !has_baseline,
                };
                if r.action == Action::Pass && nothing_below {
                    out.push(finding(
                        PASS_WITH_NOTHING_BELOW,
                        origin,
                        p,
                        rule_field(d, i),
                        match p.tier {
                            Tier::Baseline => {
                                "a Pass in the Baseline tier falls through to the default: it allows".into()
                            }
                            Tier::Admin => "no NetworkPolicy or Baseline policy follows this Pass: it allows".into(),
                        },
                        "write Accept if allowing is meant".into(),
                    ));
                }
            }
        }
    }
    out.extend(crate::tierreach::lint_reach(model));
    out
}

/// The tier policies of the loaded objects, for [`Model`].
pub fn tier_objects(loaded: &palisade_engine::Loaded) -> Vec<(Origin, ClusterObject)> {
    loaded
        .cluster_objects
        .iter()
        .filter(|o| o.value.as_policy().is_some())
        .map(|o| (o.origin.clone(), o.value.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tier_check_and_a_clean_policy() {
        let loaded = palisade_engine::load_str("tiers-lint.yaml", include_str!("testdata/tiers-lint.yaml"));
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        let model = Model::from_loaded(&loaded);
        let findings = lint_tiers(&model);
        let text: String = findings.iter().map(ToString::to_string).collect();
        for check in TIER_CHECKS {
            assert!(findings.iter().any(|f| f.id == check.id), "{} never fires:\n{text}", check.id);
        }
        assert!(!findings.iter().any(|f| f.location.object == "ClusterNetworkPolicy clean"), "{text}");
        insta::assert_snapshot!(text);
    }
}
