//! The editor's answers, as plain functions of the loaded cluster and the YAML pane: validate, graph,
//! matrix, check, explain, list, templates, and YAML for a policy built with the form. The HTTP layer
//! only decodes requests and encodes these.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use palisade_engine::cnp::explain::{
    describe_match, describe_tier_peer, describe_tier_port, describe_tier_rule, explain_tier_policy,
};
use palisade_engine::cnp::lower::{LoweredPolicy, NodeFacts, TierPeer, TierPort};
use palisade_engine::cnp::tiers::IndexedTierPolicy;
use palisade_engine::cnp::validate::validate_cluster_object;
use palisade_engine::cnp::{ClusterObject, GROUP, policy_title};
use palisade_engine::explain::{
    describe_peer, describe_port, describe_rule, describe_selector, explain_policy, verdict_text,
};
use palisade_engine::policy::{Direction, Peer, Policy, PortMatch};
use palisade_engine::validate::validate_network_policy;
use palisade_engine::verdict::Stage;
use palisade_engine::{
    Cluster, Connection, Endpoint, Index, IpFamily, Loaded, Object, ObjectKey, Protocol, Side, Verdict, load_str,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::tiers;

/// The source name of the YAML pane in messages.
pub const PANE: &str = "editor";

/// What `palisade ui -f` loaded: the cluster the pane's objects are applied on top of.
#[derive(Debug, Clone, Default)]
pub struct Base {
    pub loaded: Loaded,
}

/// One problem, located: the pane's line when it can be found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    pub line: Option<usize>,
    pub field: Option<String>,
    pub message: String,
}

/// The pane's objects, with what the apiserver would reject.
#[derive(Debug, Clone, Serialize)]
pub struct Validation {
    pub objects: Vec<String>,
    /// What the graph can draw: the pane's valid policies (NetworkPolicies as `namespace/name`, tier
    /// policies as `ClusterNetworkPolicy/name`), then the loaded ones the pane does not replace.
    pub policies: Vec<String>,
    pub errors: Vec<Problem>,
}

/// The cluster as the editor sees it: the base, then the pane's valid objects applied over it.
struct Scene {
    cluster: Cluster,
    pane: Vec<Object>,
    /// The pane's valid tier policies and Nodes.
    pane_tiers: Vec<ClusterObject>,
    validation: Validation,
}

fn scene(base: &Base, yaml: &str) -> Scene {
    let loaded = load_str(PANE, yaml);
    let mut errors: Vec<Problem> = loaded
        .errors
        .iter()
        .map(|e| Problem { line: doc_start(yaml, e.origin.document), field: None, message: e.to_string() })
        .collect();
    let mut pane = Vec::new();
    for o in &loaded.objects {
        if let Object::NetworkPolicy(np) = &o.value {
            let problems = validate_network_policy(np);
            if !problems.is_empty() {
                for p in problems {
                    let field = p.field.to_string();
                    errors.push(Problem {
                        line: locate(yaml, o.origin.document, &field),
                        message: format!(
                            "{}: NetworkPolicy.networking.k8s.io {:?} is invalid: {p}",
                            o.origin,
                            np.metadata.name.as_deref().unwrap_or("")
                        ),
                        field: Some(field),
                    });
                }
                continue;
            }
        }
        pane.push(o.value.clone());
    }
    let mut pane_tiers = Vec::new();
    for o in &loaded.cluster_objects {
        let problems = validate_cluster_object(&o.value);
        if problems.is_empty() {
            pane_tiers.push(o.value.clone());
            continue;
        }
        let (_, kind) = o.value.type_meta();
        for p in problems {
            let field = p.field.to_string();
            errors.push(Problem {
                line: locate(yaml, o.origin.document, &field),
                message: format!("{}: {kind}.{GROUP} {:?} is invalid: {p}", o.origin, o.value.name()),
                field: Some(field),
            });
        }
    }
    let mut cluster = Cluster::new();
    for o in &base.loaded.objects {
        let valid = match &o.value {
            Object::NetworkPolicy(np) => validate_network_policy(np).is_empty(),
            _ => true,
        };
        if valid {
            cluster.apply(o.value.clone());
        }
    }
    for o in &base.loaded.cluster_objects {
        if validate_cluster_object(&o.value).is_empty() {
            cluster.apply_cluster(o.value.clone());
        }
    }
    for o in &pane {
        cluster.apply(o.clone());
    }
    for o in &pane_tiers {
        cluster.apply_cluster(o.clone());
    }
    let mut policies: Vec<String> =
        pane.iter().filter(|o| matches!(o, Object::NetworkPolicy(_))).map(|o| o.key().to_string()).collect();
    policies.extend(pane_tiers.iter().filter_map(tiers::object_key));
    let below: Vec<String> = cluster
        .policies()
        .map(|(k, _)| k.to_string())
        .chain(cluster.cluster_objects().filter_map(tiers::object_key))
        .filter(|k| !policies.contains(k))
        .collect();
    policies.extend(below);
    let objects = loaded
        .objects
        .iter()
        .map(|o| format!("{} {}", o.value.kind(), o.value.display_name()))
        .chain(loaded.cluster_objects.iter().map(|o| format!("{} {}", o.value.type_meta().1, o.value.name())))
        .collect();
    let validation = Validation { objects, policies, errors };
    Scene { cluster, pane, pane_tiers, validation }
}

pub fn validate(base: &Base, yaml: &str) -> Validation {
    scene(base, yaml).validation
}

/// The first line (1-based) of document `doc` (1-based) of a YAML stream.
fn doc_start(text: &str, doc: usize) -> Option<usize> {
    if doc == 0 {
        return None;
    }
    let mut seen = 0;
    let mut started = false;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("---") {
            started = false;
            continue;
        }
        if !started && !line.trim().is_empty() && !line.trim_start().starts_with('#') {
            started = true;
            seen += 1;
            if seen == doc {
                return Some(i + 1);
            }
        }
    }
    None
}

/// The line of a field path (`spec.ingress[0].ports[1].port`) in document `doc`: each key is looked for
/// below the previous one at a deeper indentation, each `[i]` as the i-th `- ` item there. Block-style YAML
/// is found exactly; for flow style (`{a: 1}`) the nearest enclosing key's line is given.
pub fn locate(text: &str, doc: usize, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut pos = doc_start(text, doc)?.saturating_sub(1);
    let end =
        lines.iter().enumerate().skip(pos + 1).find(|(_, l)| l.starts_with("---")).map_or(lines.len(), |(i, _)| i);
    let mut found = pos;
    let mut indent: isize = -1;
    for seg in segments(path) {
        match seg {
            Segment::Key(k) => {
                let hit = (pos..end).find(|&i| {
                    let l = lines[i];
                    let t = l.trim_start().trim_start_matches("- ");
                    let ind = (l.len() - l.trim_start().len()) as isize;
                    ind > indent && (t.starts_with(&format!("{k}:")) || t.starts_with(&format!("\"{k}\":")))
                });
                let Some(i) = hit else { return Some(found + 1) };
                let l = lines[i];
                indent = (l.len() - l.trim_start().len()) as isize;
                if l.trim_start().starts_with("- ") {
                    indent += 2;
                }
                pos = i;
                found = i;
            }
            Segment::Index(n) => {
                let mut count = 0;
                let mut item_indent = None;
                let mut hit = None;
                for (i, l) in lines.iter().enumerate().take(end).skip(pos + 1) {
                    if l.trim().is_empty() {
                        continue;
                    }
                    let ind = (l.len() - l.trim_start().len()) as isize;
                    if ind <= indent && !l.trim_start().starts_with("- ") {
                        break;
                    }
                    if l.trim_start().starts_with("- ") && item_indent.is_none_or(|x| x == ind) {
                        item_indent = Some(ind);
                        if count == n {
                            hit = Some((i, ind));
                            break;
                        }
                        count += 1;
                    }
                }
                let Some((i, ind)) = hit else { return Some(found + 1) };
                pos = i;
                found = i;
                indent = ind;
            }
        }
    }
    Some(found + 1)
}

enum Segment {
    Key(String),
    Index(usize),
}

fn segments(path: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            if i > 0 {
                out.push(Segment::Key(rest[..i].to_owned()));
            }
            rest = &rest[i..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(close) = stripped.find(']') else { break };
                if let Ok(n) = stripped[..close].parse() {
                    out.push(Segment::Index(n));
                }
                rest = &stripped[close + 1..];
            }
        } else if !rest.is_empty() {
            out.push(Segment::Key(rest.to_owned()));
        }
    }
    out
}

/// Graph request: which policy, and the port the flows are drawn for.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct GraphRequest {
    pub yaml: String,
    /// `namespace/name` for a NetworkPolicy, `ClusterNetworkPolicy/name` (or the v1alpha1 kinds) for a tier
    /// policy; the first the editor can draw when absent.
    pub policy: Option<String>,
    pub port: Option<u16>,
    pub protocol: Option<String>,
}

/// The stage that decided a flow, and by which policy, rule and action, in words.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// Admin, NetworkPolicy, Baseline or Default: what the graph colours the flow by.
    pub stage: Stage,
    /// The side that decided: the source's `egress` or the destination's `ingress`.
    pub direction: Option<&'static str>,
    /// `ClusterNetworkPolicy deny-from-z (Admin, priority 10)`, `NetworkPolicy default/allow`.
    pub policy: Option<String>,
    /// `spec.ingress[1] "deny-z"`
    pub rule: Option<String>,
    /// `Accept`, `Deny` or `Pass` for a tier rule; `Allow` or `Deny` for NetworkPolicy and the default.
    pub action: String,
    /// One line: stage, side, action, policy, rule, peer and port.
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Flow {
    pub from: String,
    pub to: String,
    pub allowed: bool,
    /// `default/db spec.ingress[0]` when a rule of the drawn policy admitted it; for a tier policy, its rule
    /// that matched (any action): `ClusterNetworkPolicy deny-from-z spec.ingress[1] "deny-z"`.
    pub rule: Option<String>,
    /// The stage that decided the flow: for a denied flow, the drawn direction's side if it denies, else the
    /// other; for an allowed one, the first of them where something decided.
    pub stage: Stage,
    pub decision: Decision,
    pub explanation: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PeerNode {
    pub id: String,
    pub label: String,
    /// `spec.ingress[0].from[1]`
    pub path: String,
    pub rule: usize,
    /// A tier rule's action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    pub ports: Vec<String>,
    pub pods: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SideGraph {
    /// The policy isolates this direction (a tier policy: it has rules for it).
    pub isolated: bool,
    /// Isolated with no rules: everything is denied (unless another policy admits it).
    pub default_deny: bool,
    /// What the graph writes under this side.
    pub badge: String,
    /// Rules with no peers admit every source/destination on their ports.
    pub rules: Vec<String>,
    pub peers: Vec<PeerNode>,
    pub flows: Vec<Flow>,
}

/// One colour of the graph's legend.
#[derive(Debug, Clone, Serialize)]
pub struct LegendEntry {
    pub stage: Stage,
    pub label: &'static str,
}

/// The stages in order, as the legend names them.
pub const LEGEND: [LegendEntry; 4] = [
    LegendEntry { stage: Stage::Admin, label: "Admin tier (before NetworkPolicy)" },
    LegendEntry { stage: Stage::NetworkPolicy, label: "NetworkPolicy" },
    LegendEntry { stage: Stage::Baseline, label: "Baseline tier (where no NetworkPolicy isolates)" },
    LegendEntry { stage: Stage::Default, label: "Default (nothing decided: allowed)" },
];

#[derive(Debug, Clone, Serialize)]
pub struct Graph {
    pub policy: String,
    /// NetworkPolicy, ClusterNetworkPolicy, AdminNetworkPolicy or BaselineAdminNetworkPolicy.
    pub kind: String,
    pub summary: String,
    pub selector: String,
    pub selected: Vec<String>,
    pub others: Vec<String>,
    pub port: u16,
    pub protocol: String,
    pub ingress: SideGraph,
    pub egress: SideGraph,
    /// The cluster has tier policies: flows are coloured by the stage that decided them.
    pub tiered: bool,
    pub legend: Vec<LegendEntry>,
    pub errors: Vec<Problem>,
}

fn first_port(p: &Policy) -> Option<(u16, Protocol)> {
    [&p.ingress, &p.egress].into_iter().flatten().flatten().flat_map(|r| r.ports.iter().flatten()).find_map(|e| match e
        .port
    {
        PortMatch::Range(a, _) => Some((a, e.protocol)),
        _ => None,
    })
}

fn first_tier_port(p: &LoweredPolicy) -> Option<(u16, Protocol)> {
    p.ingress.iter().chain(&p.egress).flat_map(|r| r.protocols.iter().flatten()).find_map(|e| match e {
        TierPort::Range(proto, a, _) => Some((*a, *proto)),
        _ => None,
    })
}

/// An address inside an ipBlock and outside its excepts, to probe it with.
fn block_address(peer: &Peer) -> Option<IpAddr> {
    let Peer::IpBlock(b) = peer else { return None };
    b.ranges().first().map(|(a, _)| *a)
}

/// Which stage decided a connection, and how, for the flow drawn in `drawn`'s direction.
fn decision(index: &Index, v: &Verdict, drawn: Direction) -> Decision {
    let stage_of = |s: &Side| s.decided_by.unwrap_or(if s.isolated { Stage::NetworkPolicy } else { Stage::Default });
    // The drawn direction's side first: a denied flow is decided by a side that denies, an allowed one by a
    // side where something decided (when neither did, the default did).
    let sides: Vec<&Side> = match drawn {
        Direction::Ingress => [v.ingress.as_ref(), v.egress.as_ref()],
        Direction::Egress => [v.egress.as_ref(), v.ingress.as_ref()],
    }
    .into_iter()
    .flatten()
    .collect();
    let side = if v.self_connection {
        None
    } else if !v.allowed {
        sides.iter().copied().find(|s| !s.allowed)
    } else {
        sides.iter().copied().find(|s| stage_of(s) != Stage::Default).or(sides.first().copied())
    };
    let Some(side) = side else {
        return Decision {
            stage: Stage::Default,
            direction: None,
            policy: None,
            rule: None,
            action: "Allow".to_owned(),
            text: "Default: allowed (a pod may always reach itself)".to_owned(),
        };
    };
    let stage = stage_of(side);
    let dir = side.direction.as_str();
    let pod = &side.pod;
    let tier_match = match stage {
        Stage::Admin => side.admin.as_ref(),
        Stage::Baseline => side.baseline.as_ref(),
        _ => None,
    };
    if let Some(m) = tier_match {
        return Decision {
            stage,
            direction: Some(dir),
            policy: Some(m.policy.to_string()),
            rule: Some(m.rule_path()),
            action: m.action.to_string(),
            text: format!("{stage:?} tier, {dir} of {pod}: {} by {}", m.action, describe_match(index, m)),
        };
    }
    match (stage, &side.admitted_by) {
        (Stage::NetworkPolicy, Some(m)) => Decision {
            stage,
            direction: Some(dir),
            policy: Some(format!("NetworkPolicy {}", m.policy)),
            rule: Some(m.rule_path()),
            action: "Allow".to_owned(),
            text: format!("NetworkPolicy, {dir} of {pod}: Allow by NetworkPolicy {} {}", m.policy, m.rule_path()),
        },
        (Stage::NetworkPolicy, None) => {
            let by: Vec<String> = side.selected_by.iter().map(ToString::to_string).collect();
            Decision {
                stage,
                direction: Some(dir),
                policy: None,
                rule: None,
                action: "Deny".to_owned(),
                text: format!(
                    "NetworkPolicy, {dir} of {pod}: Deny: isolated by {}, and no rule admits it",
                    by.join(", ")
                ),
            }
        }
        _ => Decision {
            stage: Stage::Default,
            direction: Some(dir),
            policy: None,
            rule: None,
            action: "Allow".to_owned(),
            text: match &side.exempt {
                Some(why) => format!("Default, {dir} of {pod}: allowed: {why}"),
                None => format!("Default, {dir} of {pod}: allowed: no tier rule and no NetworkPolicy decided"),
            },
        },
    }
}

/// What one side of the drawn policy holds, before its flows are decided.
struct SideSpec {
    isolated: bool,
    default_deny: bool,
    badge: String,
    rules: Vec<String>,
    peers: Vec<PeerNode>,
    /// Addresses (ipBlocks, networks, node addresses) to decide flows to or from.
    probes: Vec<IpAddr>,
}

fn direction_title(d: Direction) -> &'static str {
    match d {
        Direction::Ingress => "Ingress",
        Direction::Egress => "Egress",
    }
}

/// The sides of a NetworkPolicy.
fn np_side(index: &Index, key: &ObjectKey, policy: &Policy, direction: Direction) -> SideSpec {
    let title = direction_title(direction);
    let rules = match direction {
        Direction::Ingress => policy.ingress.as_ref(),
        Direction::Egress => policy.egress.as_ref(),
    };
    let Some(rules) = rules else {
        return SideSpec {
            isolated: false,
            default_deny: false,
            badge: format!("{title}: not isolated here"),
            rules: vec![],
            peers: vec![],
            probes: vec![],
        };
    };
    let (list, peer_word) = (direction.as_str(), direction.peers_field());
    let pods: Vec<String> = index.pods().map(|p| p.key.to_string()).collect();
    let mut peers = Vec::new();
    let mut probes = Vec::new();
    for (ri, rule) in rules.iter().enumerate() {
        let ports: Vec<String> = match &rule.ports {
            None => vec!["any port".to_owned()],
            Some(ps) => ps.iter().map(describe_port).collect(),
        };
        let rule_peers: Vec<(String, String, Option<&Peer>)> = match &rule.peers {
            None => vec![(format!("spec.{list}[{ri}]"), "anywhere (no peers listed)".to_owned(), None)],
            Some(ps) => ps
                .iter()
                .enumerate()
                .map(|(pi, p)| (format!("spec.{list}[{ri}].{peer_word}[{pi}]"), describe_peer(p), Some(p)))
                .collect(),
        };
        for (pi, (path, label, peer)) in rule_peers.into_iter().enumerate() {
            let matched: Vec<String> = match peer {
                None => pods.clone(),
                Some(Peer::IpBlock(_)) => {
                    probes.extend(peer.and_then(block_address));
                    Vec::new()
                }
                Some(_) => index
                    .policies()
                    .position(|p| p.key == *key)
                    .map(|pix| {
                        let set = index.peer_pods(pix, direction, ri, pi, IpFamily::V4);
                        let set6 = index.peer_pods(pix, direction, ri, pi, IpFamily::V6);
                        index
                            .pods_with_ids()
                            .filter(|(i, _)| set.contains(*i) || set6.contains(*i))
                            .map(|(_, p)| p.key.to_string())
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            peers.push(PeerNode {
                id: format!("{list}-{ri}-{pi}"),
                label,
                path,
                rule: ri,
                action: None,
                ports: ports.clone(),
                pods: matched,
            });
        }
    }
    SideSpec {
        isolated: true,
        default_deny: rules.is_empty(),
        badge: if rules.is_empty() {
            format!("{title}: default deny (no rules)")
        } else {
            format!("{title}: isolated; {} rule(s)", rules.len())
        },
        rules: rules.iter().map(|r| describe_rule(r, direction)).collect(),
        peers,
        probes,
    }
}

/// The sides of a tier policy: its rules in order, each peer with the pods or addresses it names.
fn tier_side(index: &Index, tp: &IndexedTierPolicy, direction: Direction) -> SideSpec {
    let title = direction_title(direction);
    let rules = tp.rules(direction);
    if rules.is_empty() {
        return SideSpec {
            isolated: false,
            default_deny: false,
            badge: format!("{title}: no rules here"),
            rules: vec![],
            peers: vec![],
            probes: vec![],
        };
    }
    let (list, peer_word) = (direction.as_str(), direction.peers_field());
    let mut peers = Vec::new();
    let mut probes = Vec::new();
    for (ri, r) in rules.iter().enumerate() {
        let ports: Vec<String> = match &r.rule.protocols {
            None => vec!["any protocol and port".to_owned()],
            Some(ps) => ps.iter().map(describe_tier_port).collect(),
        };
        for (pi, peer) in r.rule.peers.iter().enumerate() {
            match peer {
                TierPeer::Networks(nets) => probes.extend(nets.iter().map(network_probe)),
                TierPeer::Nodes(sel) => probes.extend(
                    index.tiers().nodes().iter().filter(|n| sel.matches(&n.labels)).flat_map(|n| n.addresses.clone()),
                ),
                _ => {}
            }
            let sets = r.peers.get(pi);
            let pods = index
                .pods_with_ids()
                .filter(|(i, _)| sets.is_some_and(|s| s.iter().any(|f| f.contains(*i))))
                .map(|(_, p)| p.key.to_string())
                .collect();
            peers.push(PeerNode {
                id: format!("{list}-{ri}-{pi}"),
                label: describe_tier_peer(peer),
                path: format!("spec.{list}[{ri}].{peer_word}[{pi}]"),
                rule: ri,
                action: Some(r.rule.action.to_string()),
                ports: ports.clone(),
                pods,
            });
        }
    }
    SideSpec {
        isolated: true,
        default_deny: false,
        badge: format!("{title}: {} rule(s), in order", rules.len()),
        rules: rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let name = r.rule.name.as_ref().map(|n| format!(" {n:?}")).unwrap_or_default();
                format!("spec.{list}[{i}]{name}: {} {}", r.rule.action, describe_tier_rule(&r.rule, direction))
            })
            .collect(),
        peers,
        probes,
    }
}

/// An address to probe a `networks` entry with: its first host, or for `0.0.0.0/0` and `::/0` a
/// documentation address (RFC 5737, RFC 3849) that reads as "somewhere on the internet".
fn network_probe(net: &IpNet) -> IpAddr {
    if net.prefix_len() == 0 {
        return match net.addr() {
            IpAddr::V4(_) => IpAddr::from([203, 0, 113, 1]),
            IpAddr::V6(_) => "2001:db8::1".parse().unwrap_or(net.addr()),
        };
    }
    net.hosts().next().unwrap_or(net.addr())
}

/// Names the drawn policy's rule that matched on a side, if one did.
type OwnRule = Box<dyn Fn(&Side) -> Option<String>>;

/// What the graph draws: the pods the policy selects, both sides, how to name its own rules, and its words.
struct Drawn {
    kind: String,
    selected: Vec<ObjectKey>,
    sides: [SideSpec; 2],
    own_rule: OwnRule,
    summary: String,
    selector: String,
    auto_port: Option<(u16, Protocol)>,
}

/// The graph of one policy of the pane (or the base): the pods it selects, its peers per direction, and
/// for every other pod (and each address a peer names) whether the connection on the drawn port is allowed,
/// which stage decided it, and the engine's explanation.
pub fn graph(base: &Base, req: &GraphRequest) -> Result<Graph, String> {
    let sc = scene(base, &req.yaml);
    let name = match &req.policy {
        Some(p) if !p.is_empty() => p.clone(),
        _ => sc
            .validation
            .policies
            .first()
            .cloned()
            .ok_or("the editor holds no valid NetworkPolicy or ClusterNetworkPolicy")?,
    };
    let index = Index::build(&sc.cluster);
    let tiered = !index.tiers().is_empty();
    let drawn = if let Some((kind, tname)) = tiers::parse_key(&name) {
        let tp = index
            .tiers()
            .policies
            .iter()
            .find(|p| p.policy.kind.cluster_kind() == kind && p.policy.name == tname)
            .ok_or_else(|| format!("no valid {name}"))?;
        let object = sc
            .cluster
            .cluster_objects()
            .find(|o| o.kind() == kind && o.name() == tname)
            .ok_or_else(|| format!("no valid {name}"))?;
        let selected =
            index.pods_with_ids().filter(|(i, _)| tp.subject.contains(*i)).map(|(_, p)| p.key.clone()).collect();
        let (pkind, pname) = (tp.policy.kind, tp.policy.name.clone());
        let own_rule: OwnRule = Box::new(move |s: &Side| {
            [s.admin.as_ref(), s.baseline.as_ref()]
                .into_iter()
                .flatten()
                .find(|m| m.policy.kind == pkind && m.policy.name == pname)
                .map(|m| format!("{} {}", policy_title(pkind, &pname), m.rule_path()))
        });
        Drawn {
            kind: tp.policy.kind.to_string(),
            selected,
            sides: [tier_side(&index, tp, Direction::Ingress), tier_side(&index, tp, Direction::Egress)],
            own_rule,
            summary: explain_tier_policy(object),
            selector: describe_tier_peer(&TierPeer::Pods(tp.policy.subject.clone())),
            auto_port: first_tier_port(&tp.policy),
        }
    } else {
        let key = ObjectKey::parse(&name).ok_or_else(|| format!("{name:?}: expected NAMESPACE/NAME"))?;
        let np = sc.cluster.policy(&key).ok_or_else(|| format!("no NetworkPolicy {key}"))?;
        let policy = Policy::lower(np);
        let selected = index
            .pods()
            .filter(|p| {
                p.key.namespace == key.namespace
                    && !p.facts.host_network
                    && policy.pod_selector.matches(&p.facts.labels)
            })
            .map(|p| p.key.clone())
            .collect();
        let k = key.clone();
        let own_rule: OwnRule = Box::new(move |s: &Side| {
            s.admitted_by.as_ref().filter(|m| m.policy == k).map(|m| format!("{} {}", m.policy, m.rule_path()))
        });
        Drawn {
            kind: "NetworkPolicy".to_owned(),
            selected,
            sides: [
                np_side(&index, &key, &policy, Direction::Ingress),
                np_side(&index, &key, &policy, Direction::Egress),
            ],
            own_rule,
            summary: explain_policy(np),
            selector: describe_selector(&policy.pod_selector),
            auto_port: first_port(&policy),
        }
    };
    let Drawn { kind, selected, sides, own_rule, summary, selector, auto_port } = drawn;
    let (port, protocol) = match (req.port, req.protocol.as_deref()) {
        (Some(p), proto) => (p, proto.and_then(|s| s.parse().ok()).unwrap_or(Protocol::Tcp)),
        (None, _) => auto_port.unwrap_or((80, Protocol::Tcp)),
    };
    let others: Vec<ObjectKey> = index.pods().map(|p| p.key.clone()).filter(|k| !selected.contains(k)).collect();
    let decide = |from: Endpoint, to: Endpoint, direction: Direction| -> Option<Flow> {
        let conn = Connection::new(from.clone(), to.clone(), protocol, port);
        let v = index.decide(&conn).ok()?;
        let side = match direction {
            Direction::Ingress => v.ingress.as_ref(),
            Direction::Egress => v.egress.as_ref(),
        };
        let d = decision(&index, &v, direction);
        Some(Flow {
            from: from.to_string(),
            to: to.to_string(),
            allowed: v.allowed,
            rule: side.and_then(&own_rule),
            stage: d.stage,
            decision: d,
            explanation: verdict_text(&index, &v),
        })
    };
    let [ingress, egress] = sides;
    let side = |spec: SideSpec, direction: Direction| -> SideGraph {
        let mut flows = Vec::new();
        if spec.isolated {
            for s in &selected {
                for o in &others {
                    let (from, to) = match direction {
                        Direction::Ingress => (Endpoint::Pod(o.clone()), Endpoint::Pod(s.clone())),
                        Direction::Egress => (Endpoint::Pod(s.clone()), Endpoint::Pod(o.clone())),
                    };
                    flows.extend(decide(from, to, direction));
                }
                let mut seen = BTreeSet::new();
                for addr in &spec.probes {
                    if !seen.insert(*addr) {
                        continue;
                    }
                    let (from, to) = match direction {
                        Direction::Ingress => (Endpoint::Ip(*addr), Endpoint::Pod(s.clone())),
                        Direction::Egress => (Endpoint::Pod(s.clone()), Endpoint::Ip(*addr)),
                    };
                    flows.extend(decide(from, to, direction));
                }
            }
        }
        SideGraph {
            isolated: spec.isolated,
            default_deny: spec.default_deny,
            badge: spec.badge,
            rules: spec.rules,
            peers: spec.peers,
            flows,
        }
    };
    Ok(Graph {
        policy: name,
        kind,
        summary,
        selector,
        selected: selected.iter().map(ToString::to_string).collect(),
        others: others.iter().map(ToString::to_string).collect(),
        port,
        protocol: protocol.as_str().to_owned(),
        ingress: side(ingress, Direction::Ingress),
        egress: side(egress, Direction::Egress),
        tiered,
        legend: LEGEND.to_vec(),
        errors: sc.validation.errors,
    })
}

#[derive(Debug, Clone, Deserialize)]
pub struct MatrixRequest {
    pub yaml: String,
    pub port: Option<u16>,
    pub protocol: Option<String>,
    pub family: Option<String>,
}

/// The most pods for which the matrix says which stage decided each cell.
pub const MATRIX_STAGES_MAX: usize = 200;

pub fn matrix(base: &Base, req: &MatrixRequest) -> Value {
    let sc = scene(base, &req.yaml);
    let index = Index::build(&sc.cluster);
    let protocol: Protocol = req.protocol.as_deref().and_then(|s| s.parse().ok()).unwrap_or(Protocol::Tcp);
    let family =
        if req.family.as_deref().is_some_and(|f| f.eq_ignore_ascii_case("ipv6")) { IpFamily::V6 } else { IpFamily::V4 };
    let port = req.port.unwrap_or(80);
    let m = index.matrix(protocol, port, family);
    let allowed: Vec<Vec<bool>> = (0..m.pods.len()).map(|i| (0..m.pods.len()).map(|j| m.get(i, j)).collect()).collect();
    // With tier policies, each cell is coloured by the stage that decided it (one decision per cell, so
    // only for a cluster of a size one reads as a matrix).
    let stages: Option<Vec<Vec<Stage>>> = (!index.tiers().is_empty() && m.pods.len() <= MATRIX_STAGES_MAX).then(|| {
        m.pods
            .iter()
            .map(|from| {
                m.pods
                    .iter()
                    .map(|to| {
                        let conn =
                            Connection::new(Endpoint::Pod(from.clone()), Endpoint::Pod(to.clone()), protocol, port)
                                .with_family(family);
                        index.decide(&conn).map_or(Stage::Default, |v| decision(&index, &v, Direction::Ingress).stage)
                    })
                    .collect()
            })
            .collect()
    });
    json!({
        "pods": m.pods.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "allowed": allowed,
        "stages": stages,
        "legend": if stages.is_some() { json!(LEGEND) } else { Value::Null },
        "port": port,
        "protocol": protocol.as_str(),
        "family": family.to_string(),
        "errors": sc.validation.errors,
    })
}

#[derive(Debug, Clone, Deserialize)]
pub struct CheckRequest {
    pub yaml: String,
    pub from: String,
    pub to: String,
    pub port: u16,
    pub protocol: Option<String>,
}

pub fn check(base: &Base, req: &CheckRequest) -> Result<Value, String> {
    let sc = scene(base, &req.yaml);
    let index = Index::build(&sc.cluster);
    let protocol: Protocol = match &req.protocol {
        Some(p) => p.parse()?,
        None => Protocol::Tcp,
    };
    let conn = Connection::new(Endpoint::parse(&req.from)?, Endpoint::parse(&req.to)?, protocol, req.port);
    let v = index.decide(&conn).map_err(|e| e.to_string())?;
    // With tier policies, the stage that decided leads (the destination's ingress side first, as in the matrix).
    let decided = (!index.tiers().is_empty()).then(|| decision(&index, &v, Direction::Ingress));
    Ok(json!({ "allowed": v.allowed, "text": verdict_text(&index, &v), "decision": decided, "verdict": v }))
}

pub fn explain(base: &Base, yaml: &str) -> Value {
    let sc = scene(base, yaml);
    let policies: Vec<Value> = sc
        .cluster
        .policies()
        .map(|(k, np)| json!({ "name": k.to_string(), "text": explain_policy(np), "inEditor": sc.pane.iter().any(|o| matches!(o, Object::NetworkPolicy(_)) && o.key() == *k) }))
        .chain(sc.cluster.cluster_objects().filter_map(|o| {
            let key = tiers::object_key(o)?;
            let in_editor = sc.pane_tiers.iter().any(|p| tiers::object_key(p).as_ref() == Some(&key));
            Some(json!({ "name": key, "text": explain_tier_policy(o), "inEditor": in_editor }))
        }))
        .collect();
    json!({ "policies": policies, "errors": sc.validation.errors })
}

/// The tier policies (the base's, and the pane's over them) in the order the engine walks them, and the
/// Nodes their `nodes` peers read.
pub fn tier_list(base: &Base, yaml: &str) -> Value {
    let sc = scene(base, yaml);
    let in_editor: Vec<String> = sc.pane_tiers.iter().filter_map(tiers::object_key).collect();
    let policies = tiers::views(sc.cluster.cluster_objects(), &in_editor);
    let nodes: Vec<Value> = sc
        .cluster
        .nodes()
        .map(|n| {
            let f = NodeFacts::of(n);
            let addresses: Vec<String> = f.addresses.iter().map(ToString::to_string).collect();
            json!({ "name": f.name, "labels": f.labels, "addresses": addresses })
        })
        .collect();
    json!({ "policies": policies, "nodes": nodes, "errors": sc.validation.errors })
}

/// Workload connectivity (netpol-analyzer's list) of the base with the pane's objects.
pub fn list(base: &Base, yaml: &str) -> Value {
    let mut loaded = base.loaded.clone();
    let pane = load_str(PANE, yaml);
    loaded.extend(pane);
    let model = palisade_analyze::Model::from_loaded(&loaded);
    let conns = palisade_analyze::connlist(&model);
    json!({ "text": palisade_analyze::render_txt(&conns) })
}

/// The base cluster's pods and namespaces, for the form's suggestions.
pub fn cluster(base: &Base) -> Value {
    let sc = scene(base, "");
    let pods: Vec<Value> = sc
        .cluster
        .pods()
        .map(|(k, p)| json!({ "name": k.to_string(), "labels": p.metadata.labels.clone().unwrap_or_default() }))
        .collect();
    let namespaces: Vec<Value> =
        sc.cluster.namespaces().into_iter().map(|(n, labels)| json!({ "name": n, "labels": labels })).collect();
    json!({ "pods": pods, "namespaces": namespaces })
}

/// YAML for a NetworkPolicy built with the form (given as JSON), with the apiserver's verdict on it.
pub fn to_yaml(policy: &Value) -> Result<Value, String> {
    let mut v = policy.clone();
    if let Some(m) = v.as_object_mut() {
        m.insert("apiVersion".into(), "networking.k8s.io/v1".into());
        m.insert("kind".into(), "NetworkPolicy".into());
    }
    let np: NetworkPolicy = serde_json::from_value(v).map_err(|e| format!("not a NetworkPolicy: {e}"))?;
    let errors: Vec<String> = validate_network_policy(&np).iter().map(ToString::to_string).collect();
    let mut ordered = serde_json::Map::new();
    ordered.insert("apiVersion".into(), "networking.k8s.io/v1".into());
    ordered.insert("kind".into(), "NetworkPolicy".into());
    let body = serde_json::to_value(&np).map_err(|e| e.to_string())?;
    for k in ["metadata", "spec"] {
        if let Some(x) = body.get(k) {
            ordered.insert(k.into(), x.clone());
        }
    }
    let yaml = serde_saphyr::to_string(&Value::Object(ordered)).map_err(|e| e.to_string())?;
    Ok(json!({ "yaml": yaml, "errors": errors }))
}

/// Starting points: the five default policies of the Kubernetes documentation, and DNS egress.
pub fn templates() -> Value {
    let t = |id: &str, title: &str, spec: &str| {
        json!({ "id": id, "title": title, "yaml": format!(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: {id}\n  namespace: default\nspec:\n{spec}"
        ) })
    };
    json!([
        t("default-deny-ingress", "Deny all ingress", "  podSelector: {}\n  policyTypes:\n  - Ingress\n"),
        t(
            "allow-all-ingress",
            "Allow all ingress",
            "  podSelector: {}\n  ingress:\n  - {}\n  policyTypes:\n  - Ingress\n"
        ),
        t("default-deny-egress", "Deny all egress", "  podSelector: {}\n  policyTypes:\n  - Egress\n"),
        t("allow-all-egress", "Allow all egress", "  podSelector: {}\n  egress:\n  - {}\n  policyTypes:\n  - Egress\n"),
        t(
            "default-deny-all",
            "Deny all ingress and egress",
            "  podSelector: {}\n  policyTypes:\n  - Ingress\n  - Egress\n"
        ),
        t(
            "allow-dns",
            "Allow DNS egress",
            "  podSelector: {}\n  policyTypes:\n  - Egress\n  egress:\n  - to:\n    - namespaceSelector:\n        matchLabels:\n          kubernetes.io/metadata.name: kube-system\n      podSelector:\n        matchLabels:\n          k8s-app: kube-dns\n    ports:\n    - protocol: UDP\n      port: 53\n    - protocol: TCP\n      port: 53\n"
        ),
    ])
}
