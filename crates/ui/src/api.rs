//! The editor's answers, as plain functions of the loaded cluster and the YAML pane: validate, graph,
//! matrix, check, explain, list, templates, and YAML for a policy built with the form. The HTTP layer
//! only decodes requests and encodes these.

use std::collections::BTreeSet;

use k8s_openapi::api::networking::v1::NetworkPolicy;
use palisade_engine::explain::{
    describe_peer, describe_port, describe_rule, describe_selector, explain_policy, verdict_text,
};
use palisade_engine::policy::{Direction, Peer, Policy, PortMatch};
use palisade_engine::validate::validate_network_policy;
use palisade_engine::{Cluster, Connection, Endpoint, Index, IpFamily, Loaded, Object, ObjectKey, Protocol, load_str};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

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
    pub policies: Vec<String>,
    pub errors: Vec<Problem>,
}

/// The cluster as the editor sees it: the base, then the pane's valid objects applied over it.
struct Scene {
    cluster: Cluster,
    pane: Vec<Object>,
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
    for o in &pane {
        cluster.apply(o.clone());
    }
    let validation = Validation {
        objects: loaded.objects.iter().map(|o| format!("{} {}", o.value.kind(), o.value.display_name())).collect(),
        policies: pane.iter().filter(|o| matches!(o, Object::NetworkPolicy(_))).map(|o| o.key().to_string()).collect(),
        errors,
    };
    Scene { cluster, pane, validation }
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
    pub policy: Option<String>,
    pub port: Option<u16>,
    pub protocol: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Flow {
    pub from: String,
    pub to: String,
    pub allowed: bool,
    /// `default/db spec.ingress[0]` when a rule of the drawn policy admitted it.
    pub rule: Option<String>,
    pub explanation: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PeerNode {
    pub id: String,
    pub label: String,
    /// `spec.ingress[0].from[1]`
    pub path: String,
    pub rule: usize,
    pub ports: Vec<String>,
    pub pods: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SideGraph {
    /// The policy isolates this direction.
    pub isolated: bool,
    /// Isolated with no rules: everything is denied (unless another policy admits it).
    pub default_deny: bool,
    /// Rules with no peers admit every source/destination on their ports.
    pub rules: Vec<String>,
    pub peers: Vec<PeerNode>,
    pub flows: Vec<Flow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Graph {
    pub policy: String,
    pub summary: String,
    pub selector: String,
    pub selected: Vec<String>,
    pub others: Vec<String>,
    pub port: u16,
    pub protocol: String,
    pub ingress: SideGraph,
    pub egress: SideGraph,
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

/// An address inside an ipBlock and outside its excepts, to probe it with.
fn block_address(peer: &Peer) -> Option<std::net::IpAddr> {
    let Peer::IpBlock(b) = peer else { return None };
    b.ranges().first().map(|(a, _)| *a)
}

/// The graph of one policy of the pane (or the base): the pods it selects, its peers per direction, and
/// for every other pod (and each ipBlock) whether the connection on the drawn port is allowed, with the
/// engine's explanation.
pub fn graph(base: &Base, req: &GraphRequest) -> Result<Graph, String> {
    let sc = scene(base, &req.yaml);
    let key = match &req.policy {
        Some(p) if !p.is_empty() => ObjectKey::parse(p).ok_or_else(|| format!("{p:?}: expected NAMESPACE/NAME"))?,
        _ => sc
            .pane
            .iter()
            .find(|o| matches!(o, Object::NetworkPolicy(_)))
            .map(Object::key)
            .ok_or("the editor holds no valid NetworkPolicy")?,
    };
    let np = sc.cluster.policy(&key).ok_or_else(|| format!("no NetworkPolicy {key}"))?;
    let policy = Policy::lower(np);
    let index = Index::build(&sc.cluster);
    let (port, protocol) = match (req.port, req.protocol.as_deref()) {
        (Some(p), proto) => (p, proto.and_then(|s| s.parse().ok()).unwrap_or(Protocol::Tcp)),
        (None, _) => first_port(&policy).unwrap_or((80, Protocol::Tcp)),
    };
    let pods: Vec<&ObjectKey> = index.pods().map(|p| &p.key).collect();
    let selected: Vec<ObjectKey> = index
        .pods()
        .filter(|p| {
            p.key.namespace == key.namespace && !p.facts.host_network && policy.pod_selector.matches(&p.facts.labels)
        })
        .map(|p| p.key.clone())
        .collect();
    let others: Vec<ObjectKey> = pods.iter().filter(|k| !selected.contains(k)).map(|k| (*k).clone()).collect();
    let decide = |from: Endpoint, to: Endpoint, direction: Direction| -> Option<Flow> {
        let conn = Connection::new(from.clone(), to.clone(), protocol, port);
        let v = index.decide(&conn).ok()?;
        let side = match direction {
            Direction::Ingress => v.ingress.as_ref(),
            Direction::Egress => v.egress.as_ref(),
        };
        let rule = side
            .and_then(|s| s.admitted_by.as_ref())
            .filter(|m| m.policy == key)
            .map(|m| format!("{} {}", m.policy, m.rule_path()));
        Some(Flow {
            from: from.to_string(),
            to: to.to_string(),
            allowed: v.allowed,
            rule,
            explanation: verdict_text(&index, &v),
        })
    };
    let side = |direction: Direction| -> SideGraph {
        let rules = match direction {
            Direction::Ingress => policy.ingress.as_ref(),
            Direction::Egress => policy.egress.as_ref(),
        };
        let Some(rules) = rules else {
            return SideGraph { isolated: false, default_deny: false, rules: vec![], peers: vec![], flows: vec![] };
        };
        let (list, peer_word) = match direction {
            Direction::Ingress => ("ingress", "from"),
            Direction::Egress => ("egress", "to"),
        };
        let mut peers = Vec::new();
        let mut blocks: Vec<(String, std::net::IpAddr)> = Vec::new();
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
                    None => pods.iter().map(ToString::to_string).collect(),
                    Some(Peer::IpBlock(_)) => {
                        if let Some(a) = peer.and_then(block_address) {
                            blocks.push((label.clone(), a));
                        }
                        Vec::new()
                    }
                    Some(_) => {
                        let pi_index = index.policies().position(|p| p.key == key);
                        pi_index
                            .map(|pix| {
                                let set = index.peer_pods(pix, direction, ri, pi, IpFamily::V4);
                                let set6 = index.peer_pods(pix, direction, ri, pi, IpFamily::V6);
                                index
                                    .pods_with_ids()
                                    .filter(|(i, _)| set.contains(*i) || set6.contains(*i))
                                    .map(|(_, p)| p.key.to_string())
                                    .collect()
                            })
                            .unwrap_or_default()
                    }
                };
                peers.push(PeerNode {
                    id: format!("{list}-{ri}-{pi}"),
                    label,
                    path,
                    rule: ri,
                    ports: ports.clone(),
                    pods: matched,
                });
            }
        }
        let mut flows = Vec::new();
        for s in &selected {
            for o in &others {
                let (from, to) = match direction {
                    Direction::Ingress => (Endpoint::Pod(o.clone()), Endpoint::Pod(s.clone())),
                    Direction::Egress => (Endpoint::Pod(s.clone()), Endpoint::Pod(o.clone())),
                };
                flows.extend(decide(from, to, direction));
            }
            let mut seen = BTreeSet::new();
            for (_, addr) in &blocks {
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
        SideGraph {
            isolated: true,
            default_deny: rules.is_empty(),
            rules: rules.iter().map(|r| describe_rule(r, direction)).collect(),
            peers,
            flows,
        }
    };
    Ok(Graph {
        policy: key.to_string(),
        summary: explain_policy(np),
        selector: describe_selector(&policy.pod_selector),
        selected: selected.iter().map(ToString::to_string).collect(),
        others: others.iter().map(ToString::to_string).collect(),
        port,
        protocol: protocol.as_str().to_owned(),
        ingress: side(Direction::Ingress),
        egress: side(Direction::Egress),
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

pub fn matrix(base: &Base, req: &MatrixRequest) -> Value {
    let sc = scene(base, &req.yaml);
    let index = Index::build(&sc.cluster);
    let protocol: Protocol = req.protocol.as_deref().and_then(|s| s.parse().ok()).unwrap_or(Protocol::Tcp);
    let family =
        if req.family.as_deref().is_some_and(|f| f.eq_ignore_ascii_case("ipv6")) { IpFamily::V6 } else { IpFamily::V4 };
    let port = req.port.unwrap_or(80);
    let m = index.matrix(protocol, port, family);
    let allowed: Vec<Vec<bool>> = (0..m.pods.len()).map(|i| (0..m.pods.len()).map(|j| m.get(i, j)).collect()).collect();
    json!({
        "pods": m.pods.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "allowed": allowed,
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
    Ok(json!({ "allowed": v.allowed, "text": verdict_text(&index, &v), "verdict": v }))
}

pub fn explain(base: &Base, yaml: &str) -> Value {
    let sc = scene(base, yaml);
    let policies: Vec<Value> = sc
        .cluster
        .policies()
        .map(|(k, np)| json!({ "name": k.to_string(), "text": explain_policy(np), "inEditor": sc.pane.iter().any(|o| matches!(o, Object::NetworkPolicy(_)) && o.key() == *k) }))
        .collect();
    json!({ "policies": policies, "errors": sc.validation.errors })
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
