//! Findings about policies people get wrong in the same few ways, each with a stable ID, a severity, a
//! location (file, document, object, field path) and a suggested fix.

use std::fmt;

use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer};
use palisade_engine::explain::{describe_peer, describe_selector};
use palisade_engine::load::Origin;
use palisade_engine::policy::{Direction, NamespaceScope, Peer, PortMatch, Rule, Selector};
use palisade_engine::{ObjectKey, Protocol};
use serde::Serialize;

use crate::connlist::Analysis;
use crate::model::{Model, Workload};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// A check: its stable ID, short name and severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Check {
    pub id: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    pub summary: &'static str,
}

pub const SEPARATE_PEERS: Check = Check {
    id: "PAL001",
    name: "separate-peers-likely-combined",
    severity: Severity::Warning,
    summary: "a namespaceSelector peer and a podSelector peer side by side are two alternatives (OR), not one combined condition (AND)",
};
pub const COMBINED_PEER: Check = Check {
    id: "PAL002",
    name: "combined-peer-likely-separate",
    severity: Severity::Warning,
    summary: "a peer with namespaceSelector and podSelector matches only pods satisfying both; here that is nothing while each alone matches",
};
pub const EGRESS_WITHOUT_DNS: Check = Check {
    id: "PAL003",
    name: "egress-without-dns",
    severity: Severity::Warning,
    summary: "egress is isolated and no rule allows DNS (UDP and TCP 53) to kube-dns",
};
pub const ONE_SIDED: Check = Check {
    id: "PAL004",
    name: "allowed-on-one-side-only",
    severity: Severity::Warning,
    summary: "one side admits the connection but the other side's policy blocks it",
};
pub const SELECTS_NOTHING: Check = Check {
    id: "PAL005",
    name: "policy-selects-no-pod",
    severity: Severity::Warning,
    summary: "the policy's podSelector matches no pod in its namespace",
};
pub const PEER_SELECTS_NOTHING: Check = Check {
    id: "PAL006",
    name: "peer-selects-nothing",
    severity: Severity::Warning,
    summary: "a peer's selectors match no pod",
};
pub const SHADOWED_RULE: Check = Check {
    id: "PAL007",
    name: "shadowed-rule",
    severity: Severity::Info,
    summary: "a rule admits nothing that a broader rule of the same policy does not already admit",
};
pub const NAMED_PORT_UNDEFINED: Check = Check {
    id: "PAL008",
    name: "named-port-undefined",
    severity: Severity::Warning,
    summary: "a named port that no destination pod defines with that protocol",
};
pub const IGNORED_RULES: Check = Check {
    id: "PAL009",
    name: "rules-ignored-by-policy-types",
    severity: Severity::Warning,
    summary: "rules of a direction missing from policyTypes are ignored",
};
pub const SERVICE_PORT: Check = Check {
    id: "PAL010",
    name: "service-port-not-target-port",
    severity: Severity::Warning,
    summary: "the policy names a Service's port, but policies see the pod's port (targetPort)",
};
pub const IPBLOCK_COVERS_PODS: Check = Check {
    id: "PAL011",
    name: "ipblock-covers-pods",
    severity: Severity::Warning,
    summary: "an ipBlock covers pod addresses; implementations disagree on whether ipBlocks match pods",
};
pub const DEFAULT_POLICY_TYPES: Check = Check {
    id: "PAL012",
    name: "policy-types-omitted",
    severity: Severity::Info,
    summary: "policyTypes is omitted, so the directions come from the default",
};

/// The NetworkPolicy checks.
pub const NETWORKPOLICY_CHECKS: [Check; 12] = [
    SEPARATE_PEERS,
    COMBINED_PEER,
    EGRESS_WITHOUT_DNS,
    ONE_SIDED,
    SELECTS_NOTHING,
    PEER_SELECTS_NOTHING,
    SHADOWED_RULE,
    NAMED_PORT_UNDEFINED,
    IGNORED_RULES,
    SERVICE_PORT,
    IPBLOCK_COVERS_PODS,
    DEFAULT_POLICY_TYPES,
];

/// Every check `lint` runs, in ID order: the NetworkPolicy checks, then the tier checks
/// ([`crate::tierlint::TIER_CHECKS`]).
pub const ALL_CHECKS: [Check; 20] = {
    let mut all = [SEPARATE_PEERS; 20];
    let mut i = 0;
    while i < NETWORKPOLICY_CHECKS.len() {
        all[i] = NETWORKPOLICY_CHECKS[i];
        i += 1;
    }
    let mut j = 0;
    while j < crate::tierlint::TIER_CHECKS.len() {
        all[i + j] = crate::tierlint::TIER_CHECKS[j];
        j += 1;
    }
    all
};

/// The check with this ID (`PAL007`) or name (`shadowed-rule`), in any case.
pub fn check_named(s: &str) -> Option<Check> {
    ALL_CHECKS.into_iter().find(|c| c.id.eq_ignore_ascii_case(s) || c.name.eq_ignore_ascii_case(s))
}

/// Where a finding points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub origin: String,
    /// File name alone (for SARIF artifacts).
    pub file: String,
    pub object: String,
    pub field: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.object)?;
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub id: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    pub location: Location,
    pub message: String,
    pub fix: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} {} [{}] {}", self.severity, self.id, self.name, self.location)?;
        writeln!(f, "  {}", self.message)?;
        for (i, line) in self.fix.lines().enumerate() {
            writeln!(f, "  {} {line}", if i == 0 { "fix:" } else { "    " })?;
        }
        Ok(())
    }
}

fn location(origin: &Origin, key: &ObjectKey, field: String) -> Location {
    Location { origin: origin.to_string(), file: origin.source.clone(), object: format!("NetworkPolicy {key}"), field }
}

fn finding(check: Check, loc: Location, message: String, fix: String) -> Finding {
    Finding { id: check.id, name: check.name, severity: check.severity, location: loc, message, fix }
}

fn raw_peers(np: &NetworkPolicy, d: Direction, rule: usize) -> Vec<NetworkPolicyPeer> {
    let Some(spec) = &np.spec else { return Vec::new() };
    match d {
        Direction::Ingress => spec.ingress.as_ref().and_then(|r| r.get(rule)).and_then(|r| r.from.clone()),
        Direction::Egress => spec.egress.as_ref().and_then(|r| r.get(rule)).and_then(|r| r.to.clone()),
    }
    .unwrap_or_default()
}

/// All findings for the model, in policy order then check order.
pub fn lint(model: &Model) -> Vec<Finding> {
    let analysis = Analysis::new(model);
    let have_workloads = !model.workloads.is_empty();
    let mut out = Vec::new();
    for (pi, (origin, np)) in model.policies.iter().enumerate() {
        let policy = &analysis.policies[pi];
        let key = &policy.key;
        let selected: Vec<usize> = (0..model.workloads.len())
            .filter(|&w| {
                let w = &model.workloads[w];
                w.namespace == key.namespace && policy.pod_selector.matches(&w.labels)
            })
            .collect();
        let spec = np.spec.clone().unwrap_or_default();
        let types = spec.policy_types.clone().unwrap_or_default();

        // PAL009: rules of a direction the policy does not isolate.
        if !types.is_empty() {
            for (d, name, has) in [
                (Direction::Ingress, "Ingress", spec.ingress.as_ref().is_some_and(|r| !r.is_empty())),
                (Direction::Egress, "Egress", spec.egress.as_ref().is_some_and(|r| !r.is_empty())),
            ] {
                if has && !types.iter().any(|t| t == name) {
                    out.push(finding(
                        IGNORED_RULES,
                        location(origin, key, format!("spec.{}", d.as_str())),
                        format!("the policy has {} rules but policyTypes is {:?}: they are ignored", d.as_str(), types),
                        format!("add {name} to spec.policyTypes, or delete spec.{}", d.as_str()),
                    ));
                }
            }
        } else {
            // PAL012: the default decides.
            let egress = policy.egress.is_some();
            out.push(finding(
                DEFAULT_POLICY_TYPES,
                location(origin, key, "spec.policyTypes".into()),
                format!(
                    "policyTypes is omitted: the policy isolates {} by default{}",
                    if egress { "Ingress and Egress" } else { "Ingress" },
                    if policy.ingress.as_ref().is_some_and(Vec::is_empty) {
                        " (and, having no ingress rules, denies all ingress)"
                    } else {
                        ""
                    }
                ),
                format!("state it: policyTypes: [{}]", if egress { "Ingress, Egress" } else { "Ingress" }),
            ));
        }

        // PAL005: selects nothing.
        if have_workloads && selected.is_empty() {
            out.push(finding(
                SELECTS_NOTHING,
                location(origin, key, "spec.podSelector".into()),
                format!(
                    "no pod in namespace {} matches {}",
                    key.namespace,
                    if policy.pod_selector.is_empty() { "{}".into() } else { describe_selector(&policy.pod_selector) }
                ),
                "check the labels (and the namespace: a policy only selects pods of its own namespace)".into(),
            ));
        }

        for d in [Direction::Ingress, Direction::Egress] {
            let Some(rules) = policy.rules(d) else { continue };
            for (ri, rule) in rules.iter().enumerate() {
                let rule_path = format!("spec.{}[{ri}]", d.as_str());
                let peers_field = d.peers_field();
                let raw = raw_peers(np, d, ri);
                // PAL001: namespaceSelector-only peer next to a podSelector-only peer.
                for i in 1..raw.len() {
                    let (a, b) = (&raw[i - 1], &raw[i]);
                    let ns_only = |p: &NetworkPolicyPeer| {
                        p.namespace_selector.is_some() && p.pod_selector.is_none() && p.ip_block.is_none()
                    };
                    let pod_only = |p: &NetworkPolicyPeer| {
                        p.pod_selector.is_some() && p.namespace_selector.is_none() && p.ip_block.is_none()
                    };
                    let (first, second) = if ns_only(a) && pod_only(b) {
                        ("namespaceSelector", "podSelector")
                    } else if pod_only(a) && ns_only(b) {
                        ("podSelector", "namespaceSelector")
                    } else {
                        continue;
                    };
                    let (Some(pa), Some(pb)) =
                        (rule.peers.as_ref().and_then(|p| p.get(i - 1)), rule.peers.as_ref().and_then(|p| p.get(i)))
                    else {
                        continue;
                    };
                    out.push(finding(
                        SEPARATE_PEERS,
                        location(origin, key, format!("{rule_path}.{peers_field}[{}]", i - 1)),
                        format!(
                            "{peers_field}[{}] and {peers_field}[{i}] are two alternatives (OR): {} {}, OR {} {}; they do not mean {} {}",
                            i - 1,
                            peers_field,
                            describe_peer(pa),
                            peers_field,
                            describe_peer(pb),
                            peers_field,
                            combined(pa, pb).map(|p| describe_peer(&p)).unwrap_or_default()
                        ),
                        format!(
                            "if one combined condition was meant, make them one peer (drop the '-' before {second}):\n  - {first}: ...\n-  - {second}: ...\n+    {second}: ..."
                        ),
                    ));
                }
                // PAL002 and PAL006 need workloads to judge.
                if have_workloads {
                    for (pe, peer) in rule.peers.iter().flatten().enumerate() {
                        let Peer::Pods { namespaces, pods } = peer else { continue };
                        let matches = |ns: &NamespaceScope, sel: &Selector| {
                            model.workloads.iter().any(|w| {
                                let ns_ok = match ns {
                                    NamespaceScope::Own(n) => *n == w.namespace,
                                    NamespaceScope::Selector(s) => s.matches(&model.namespace_labels(&w.namespace)),
                                };
                                ns_ok && sel.matches(&w.labels)
                            })
                        };
                        if matches(namespaces, pods) {
                            continue;
                        }
                        // Only judge peers confined to namespaces these manifests describe (kube-dns, say, lives
                        // in a namespace an application's manifests rarely include).
                        let known = match namespaces {
                            NamespaceScope::Own(ns) => model.workloads.iter().any(|w| &w.namespace == ns),
                            NamespaceScope::Selector(s) => {
                                !s.is_empty() && model.namespaces.values().any(|labels| s.matches(labels))
                            }
                        };
                        if !known {
                            continue;
                        }
                        let field = format!("{rule_path}.{peers_field}[{pe}]");
                        let both =
                            matches!(namespaces, NamespaceScope::Selector(s) if !s.is_empty()) && !pods.is_empty();
                        let ns_alone = matches(namespaces, &Selector::default());
                        let pods_anywhere = matches(&NamespaceScope::Selector(Selector::default()), pods);
                        if both && ns_alone && pods_anywhere {
                            out.push(finding(
                                COMBINED_PEER,
                                location(origin, key, field),
                                format!(
                                    "this peer requires both (AND): {}; no pod satisfies both, though each part alone matches pods",
                                    describe_peer(peer)
                                ),
                                "if either was meant (OR), make them two peers (add a '-' before podSelector):\n  - namespaceSelector: ...\n-    podSelector: ...\n+  - podSelector: ...".to_owned(),
                            ));
                        } else {
                            out.push(finding(
                                PEER_SELECTS_NOTHING,
                                location(origin, key, field),
                                format!("no pod matches {}", describe_peer(peer)),
                                "check the labels and the namespace (a podSelector alone means the policy's own namespace)".into(),
                            ));
                        }
                    }
                }
                // PAL007: shadowed by a broader rule of the same policy.
                for (oi, other) in rules.iter().enumerate() {
                    if oi == ri || !covers(other, rule) || (covers(rule, other) && oi > ri) {
                        continue;
                    }
                    out.push(finding(
                        SHADOWED_RULE,
                        location(origin, key, rule_path.clone()),
                        format!("everything {rule_path} admits, spec.{}[{oi}] already admits", d.as_str()),
                        format!("delete {rule_path}, or narrow spec.{}[{oi}]", d.as_str()),
                    ));
                    break;
                }
                // PAL008: named ports.
                for (xi, e) in rule.ports.iter().flatten().enumerate() {
                    let PortMatch::Named(name) = &e.port else { continue };
                    let dests: Vec<&Workload> = match d {
                        Direction::Ingress => selected.iter().map(|&w| &model.workloads[w]).collect(),
                        Direction::Egress => (0..model.workloads.len())
                            .filter(|&w| analysis.rule_matches_workload(rule, w))
                            .map(|w| &model.workloads[w])
                            .collect(),
                    };
                    if dests.is_empty() {
                        continue;
                    }
                    let same = dests.iter().any(|w| {
                        w.ports.iter().any(|p| p.name.as_deref() == Some(name.as_str()) && p.protocol == e.protocol)
                    });
                    if same {
                        continue;
                    }
                    let other: Option<Protocol> = dests
                        .iter()
                        .flat_map(|w| &w.ports)
                        .find(|p| p.name.as_deref() == Some(name.as_str()))
                        .map(|p| p.protocol);
                    let message = match other {
                        Some(p) => format!(
                            "port {name:?} is defined with protocol {p}, but this entry is {}: it matches nothing",
                            e.protocol
                        ),
                        None => format!(
                            "no destination pod defines a container port named {name:?}: the entry matches nothing"
                        ),
                    };
                    out.push(finding(
                        NAMED_PORT_UNDEFINED,
                        location(origin, key, format!("{rule_path}.ports[{xi}]")),
                        message,
                        match other {
                            Some(p) => format!("set protocol: {p}"),
                            None => "use the port number, or name the container port in the pod template".into(),
                        },
                    ));
                }
                // PAL010: a Service port instead of the pod's port (ingress: the Service fronts the selected pods).
                if d == Direction::Ingress {
                    for (xi, e) in rule.ports.iter().flatten().enumerate() {
                        let PortMatch::Range(a, b) = e.port else { continue };
                        for svc in &model.services {
                            if svc.namespace != key.namespace || svc.selector.is_empty() {
                                continue;
                            }
                            let fronts = selected.iter().any(|&w| {
                                let w = &model.workloads[w];
                                svc.selector.iter().all(|(k, v)| w.labels.get(k) == Some(v))
                            });
                            if !fronts {
                                continue;
                            }
                            for sp in &svc.ports {
                                let target = match &sp.target {
                                    Some(serde_json::Value::Number(n)) => n.as_i64(),
                                    Some(serde_json::Value::String(_)) => None,
                                    _ => Some(sp.port),
                                };
                                let in_range = (i64::from(a)..=i64::from(b)).contains(&sp.port);
                                let target_in = target.is_some_and(|t| (i64::from(a)..=i64::from(b)).contains(&t));
                                if sp.protocol == e.protocol && in_range && !target_in {
                                    out.push(finding(
                                        SERVICE_PORT,
                                        location(origin, key, format!("{rule_path}.ports[{xi}]")),
                                        format!(
                                            "port {} is Service {}/{}'s port; its pods listen on targetPort {}, which is what the policy sees",
                                            sp.port,
                                            svc.namespace,
                                            svc.name,
                                            sp.target.as_ref().map(|t| t.to_string().trim_matches('"').to_owned()).unwrap_or_default()
                                        ),
                                        format!("use port: {}", sp.target.as_ref().map(|t| t.to_string().trim_matches('"').to_owned()).unwrap_or_default()),
                                    ));
                                }
                            }
                        }
                    }
                }
                // PAL011: ipBlocks over pod addresses.
                for (pe, peer) in rule.peers.iter().flatten().enumerate() {
                    let Peer::IpBlock(b) = peer else { continue };
                    let covered: Vec<String> = model
                        .workloads
                        .iter()
                        .filter(|w| w.ips.iter().any(|ip| b.contains(ip)))
                        .map(ToString::to_string)
                        .take(3)
                        .collect();
                    if covered.is_empty() {
                        continue;
                    }
                    out.push(finding(
                        IPBLOCK_COVERS_PODS,
                        location(origin, key, format!("{rule_path}.{peers_field}[{pe}]")),
                        format!(
                            "{} covers pod addresses (of {}); Palisade and some plugins match pod IPs with ipBlocks, others do not",
                            describe_peer(peer),
                            covered.join(", ")
                        ),
                        "select pods with podSelector/namespaceSelector, and keep ipBlocks for addresses outside the cluster".into(),
                    ));
                }
            }
        }

        // PAL003: egress isolated without DNS.
        if let Some(rules) = policy.egress.as_ref()
            && !selected.is_empty()
        {
            let _ = rules;
            let dns = analysis.dns_target();
            for &w in &selected {
                let allowed = analysis.egress_to(w, &dns);
                let udp = allowed.ranges(Protocol::Udp).iter().any(|(a, b)| *a <= 53 && 53 <= *b);
                let tcp = allowed.ranges(Protocol::Tcp).iter().any(|(a, b)| *a <= 53 && 53 <= *b);
                if udp && tcp {
                    continue;
                }
                let missing = match (udp, tcp) {
                    (false, false) => "UDP 53 and TCP 53",
                    (false, true) => "UDP 53",
                    _ => "TCP 53",
                };
                out.push(finding(
                    EGRESS_WITHOUT_DNS,
                    location(origin, key, "spec.egress".into()),
                    format!(
                        "{} has isolated egress and may not reach kube-dns on {missing}: name lookups will fail",
                        model.workloads[w]
                    ),
                    "add an egress rule: to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}, podSelector: {matchLabels: {k8s-app: kube-dns}}}], ports: [{protocol: UDP, port: 53}, {protocol: TCP, port: 53}]".into(),
                ));
                break;
            }
        }

        // PAL004: admitted by this policy's ingress, blocked by the client's egress (and the reverse).
        for d in [Direction::Ingress, Direction::Egress] {
            let Some(rules) = policy.rules(d) else { continue };
            for (ri, rule) in rules.iter().enumerate() {
                if rule.peers.is_none() {
                    continue; // "everyone" names no particular peer
                }
                for &me in &selected {
                    for other in 0..model.workloads.len() {
                        if other == me || !analysis.rule_matches_workload(rule, other) {
                            continue;
                        }
                        let (src, dst) = if d == Direction::Ingress { (other, me) } else { (me, other) };
                        let mine = crate::connlist::Analysis::rule_ports(rule, Some(&model.workloads[dst]));
                        let theirs = if d == Direction::Ingress {
                            analysis.side(src, Direction::Egress, dst)
                        } else {
                            analysis.side(dst, Direction::Ingress, src)
                        };
                        let Some(theirs) = theirs else { continue }; // the other side is not isolated
                        if mine.is_empty() || !mine.intersect(&theirs).is_empty() {
                            continue;
                        }
                        let side = if d == Direction::Ingress { "egress" } else { "ingress" };
                        out.push(finding(
                            ONE_SIDED,
                            location(origin, key, format!("spec.{}[{ri}]", d.as_str())),
                            format!(
                                "{} -> {} on {} is admitted here, but {}'s {side} is isolated and does not allow it: the connection is blocked",
                                model.workloads[src], model.workloads[dst], mine, model.workloads[other]
                            ),
                            format!(
                                "add an {side} rule for {} that allows {} {} on {}",
                                model.workloads[other],
                                if d == Direction::Ingress { "traffic to" } else { "traffic from" },
                                model.workloads[me],
                                mine
                            ),
                        ));
                    }
                }
            }
        }
    }
    out.extend(crate::tierlint::lint_tiers(model));
    out
}

/// The single peer two side-by-side selector peers would make if joined.
fn combined(a: &Peer, b: &Peer) -> Option<Peer> {
    let (Peer::Pods { namespaces: na, pods: pa }, Peer::Pods { namespaces: nb, pods: pb }) = (a, b) else {
        return None;
    };
    let (ns, pods) = match (na, nb) {
        (NamespaceScope::Selector(_), NamespaceScope::Own(_)) => (na.clone(), pb.clone()),
        (NamespaceScope::Own(_), NamespaceScope::Selector(_)) => (nb.clone(), pa.clone()),
        _ => return None,
    };
    Some(Peer::Pods { namespaces: ns, pods })
}

/// Whether rule `a` admits everything rule `b` admits (peers and ports, syntactically).
fn covers(a: &Rule, b: &Rule) -> bool {
    let peers = match (&a.peers, &b.peers) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(pa), Some(pb)) => pb.iter().all(|p| pa.contains(p)),
    };
    let ports = match (&a.ports, &b.ports) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(pa), Some(pb)) => pb.iter().all(|e| {
            pa.iter().any(|x| {
                x.protocol == e.protocol
                    && match (&x.port, &e.port) {
                        (PortMatch::Any, _) => true,
                        (PortMatch::Range(a1, b1), PortMatch::Range(a2, b2)) => a1 <= a2 && b2 <= b1,
                        (PortMatch::Named(n1), PortMatch::Named(n2)) => n1 == n2,
                        _ => false,
                    }
            })
        }),
    };
    peers && ports
}
