//! The tier policies in the editor: their list (tier, priority, subject, rules in order, in the engine's
//! words), the form's model of a ClusterNetworkPolicy and its YAML, and writing or deleting one document of
//! the pane. Selectors are text in the form (`app=web, tier in (a, b), !canary`) and are parsed here, so
//! the page computes nothing.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta};
use palisade_engine::cnp::explain::{describe_tier_peer, describe_tier_port, describe_tier_rule, explain_tier_policy};
use palisade_engine::cnp::lower::{LoweredPolicy, TierPeer};
use palisade_engine::cnp::validate::validate_cluster_network_policy;
use palisade_engine::cnp::{
    ClusterKind, ClusterNetworkPolicy, ClusterNetworkPolicyEgressPeer, ClusterNetworkPolicyEgressRule,
    ClusterNetworkPolicyIngressPeer, ClusterNetworkPolicyIngressRule, ClusterNetworkPolicyProtocol,
    ClusterNetworkPolicySpec, ClusterNetworkPolicySubject, ClusterObject, NamespacedPod, PolicyKind, Port, PortRange,
    ProtocolPort, Tier,
};
use palisade_engine::{Direction, load_str};
use serde::{Deserialize, Serialize};

use crate::api::{PANE, Problem, locate};

// ---- Keys ------------------------------------------------------------------------------------------------

/// How the editor names a tier policy: `ClusterNetworkPolicy/deny-from-z`. A namespace name is lowercase, so
/// this never reads as a NetworkPolicy's `namespace/name`.
pub fn key(kind: PolicyKind, name: &str) -> String {
    format!("{kind}/{name}")
}

/// The kind and name of a key made by [`key`].
pub fn parse_key(s: &str) -> Option<(ClusterKind, &str)> {
    let (kind, name) = s.split_once('/')?;
    let kind = match kind {
        "ClusterNetworkPolicy" => ClusterKind::ClusterNetworkPolicy,
        "AdminNetworkPolicy" => ClusterKind::AdminNetworkPolicy,
        "BaselineAdminNetworkPolicy" => ClusterKind::BaselineAdminNetworkPolicy,
        _ => return None,
    };
    Some((kind, name))
}

pub fn object_key(o: &ClusterObject) -> Option<String> {
    o.as_policy().map(|p| key(p.kind, &p.name))
}

// ---- Selectors as text -------------------------------------------------------------------------------------

/// `app=web, tier in (a, b), env notin (dev), has, !canary`; empty for `{}`.
pub fn selector_text(sel: &LabelSelector) -> String {
    let mut parts: Vec<String> = sel.match_labels.iter().flatten().map(|(k, v)| format!("{k}={v}")).collect();
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(", ");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            op => format!("{} {op} ({values})", e.key),
        });
    }
    parts.join(", ")
}

/// The inverse of [`selector_text`]; the error says what could not be read.
pub fn parse_selector(text: &str) -> Result<LabelSelector, String> {
    let mut labels = BTreeMap::new();
    let mut expressions = Vec::new();
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    let expr = |key: &str, operator: &str, values: Option<Vec<String>>| LabelSelectorRequirement {
        key: key.trim().to_owned(),
        operator: operator.to_owned(),
        values,
    };
    for part in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
        let set = |rest: &str| -> Result<Vec<String>, String> {
            let inner = rest
                .trim()
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| format!("{part:?}: expected values in parentheses, as in \"key in (a, b)\""))?;
            Ok(inner.split(',').map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).collect())
        };
        if let Some((k, rest)) = part.split_once(" notin ") {
            expressions.push(expr(k, "NotIn", Some(set(rest)?)));
        } else if let Some((k, rest)) = part.split_once(" in ") {
            expressions.push(expr(k, "In", Some(set(rest)?)));
        } else if let Some((k, v)) = part.split_once("!=") {
            expressions.push(expr(k, "NotIn", Some(vec![v.trim().to_owned()])));
        } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
            labels.insert(k.trim().to_owned(), v.trim().to_owned());
        } else if let Some(k) = part.strip_prefix('!') {
            expressions.push(expr(k, "DoesNotExist", None));
        } else if part.contains(char::is_whitespace) || part.contains(['(', ')']) {
            return Err(format!(
                "{part:?}: expected key=value, key!=value, key in (a, b), key notin (a, b), key or !key"
            ));
        } else {
            expressions.push(expr(part, "Exists", None));
        }
    }
    Ok(LabelSelector {
        match_labels: (!labels.is_empty()).then_some(labels),
        match_expressions: (!expressions.is_empty()).then_some(expressions),
    })
}

// ---- The form's model ----------------------------------------------------------------------------------------

/// A ClusterNetworkPolicy as the form holds it: selectors, CIDRs, domains and ports as text.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TierForm {
    pub name: String,
    /// `Admin` or `Baseline`.
    pub tier: String,
    pub priority: Option<i64>,
    pub subject: SubjectForm,
    pub ingress: Vec<RuleForm>,
    pub egress: Vec<RuleForm>,
}

/// `kind`: `namespaces` (every pod of the selected namespaces) or `pods`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SubjectForm {
    pub kind: String,
    pub namespaces: String,
    pub pods: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RuleForm {
    pub name: String,
    /// `Accept`, `Deny` or `Pass`.
    pub action: String,
    pub peers: Vec<PeerForm>,
    /// Empty: any protocol and port.
    pub protocols: Vec<ProtocolForm>,
}

/// `kind`: `namespaces`, `pods` (namespaces and pods), and for egress `networks`, `nodes`, `domainNames`
/// (whose `values` are comma-separated).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PeerForm {
    pub kind: String,
    pub namespaces: String,
    pub pods: String,
    pub nodes: String,
    pub values: String,
}

/// `protocol`: `TCP`, `UDP`, `SCTP` with `port` `80` or `8000-8080`; or `named` with `port` the
/// destination's port name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProtocolForm {
    pub protocol: String,
    pub port: String,
}

fn list(text: &str) -> Vec<String> {
    text.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()
}

fn subject_form(s: &ClusterNetworkPolicySubject) -> SubjectForm {
    match (&s.namespaces, &s.pods) {
        (Some(ns), _) => SubjectForm { kind: "namespaces".into(), namespaces: selector_text(ns), pods: String::new() },
        (None, Some(p)) => SubjectForm {
            kind: "pods".into(),
            namespaces: p.namespace_selector.as_ref().map(selector_text).unwrap_or_default(),
            pods: p.pod_selector.as_ref().map(selector_text).unwrap_or_default(),
        },
        (None, None) => SubjectForm { kind: "namespaces".into(), ..Default::default() },
    }
}

fn pods_form(p: &NamespacedPod) -> PeerForm {
    PeerForm {
        kind: "pods".into(),
        namespaces: p.namespace_selector.as_ref().map(selector_text).unwrap_or_default(),
        pods: p.pod_selector.as_ref().map(selector_text).unwrap_or_default(),
        ..Default::default()
    }
}

fn egress_peer_form(p: &ClusterNetworkPolicyEgressPeer) -> PeerForm {
    if let Some(ns) = &p.namespaces {
        PeerForm { kind: "namespaces".into(), namespaces: selector_text(ns), ..Default::default() }
    } else if let Some(pods) = &p.pods {
        pods_form(pods)
    } else if let Some(nets) = &p.networks {
        PeerForm { kind: "networks".into(), values: nets.join(", "), ..Default::default() }
    } else if let Some(nodes) = &p.nodes {
        PeerForm { kind: "nodes".into(), nodes: selector_text(nodes), ..Default::default() }
    } else if let Some(names) = &p.domain_names {
        PeerForm { kind: "domainNames".into(), values: names.join(", "), ..Default::default() }
    } else {
        PeerForm::default()
    }
}

fn ingress_peer_form(p: &ClusterNetworkPolicyIngressPeer) -> PeerForm {
    egress_peer_form(&ClusterNetworkPolicyEgressPeer {
        namespaces: p.namespaces.clone(),
        pods: p.pods.clone(),
        ..Default::default()
    })
}

fn protocol_form(p: &ClusterNetworkPolicyProtocol) -> ProtocolForm {
    let port = |pp: &ProtocolPort| match pp.destination_port.as_ref() {
        Some(Port { number: Some(n), .. }) => n.to_string(),
        Some(Port { range: Some(r), .. }) => {
            format!(
                "{}-{}",
                r.start.map(|n| n.to_string()).unwrap_or_default(),
                r.end.map(|n| n.to_string()).unwrap_or_default()
            )
        }
        _ => String::new(),
    };
    for (name, pp) in [("TCP", &p.tcp), ("UDP", &p.udp), ("SCTP", &p.sctp)] {
        if let Some(pp) = pp {
            return ProtocolForm { protocol: name.into(), port: port(pp) };
        }
    }
    ProtocolForm { protocol: "named".into(), port: p.destination_named_port.clone().unwrap_or_default() }
}

/// The form's model of a ClusterNetworkPolicy (for editing it).
pub fn form_of(p: &ClusterNetworkPolicy) -> TierForm {
    let spec = p.spec.clone().unwrap_or_default();
    let rule =
        |name: &Option<String>, action: &Option<String>, peers: Vec<PeerForm>, protocols: &Option<Vec<_>>| RuleForm {
            name: name.clone().unwrap_or_default(),
            action: action.clone().unwrap_or_default(),
            peers,
            protocols: protocols.iter().flatten().map(protocol_form).collect(),
        };
    TierForm {
        name: p.metadata.name.clone().unwrap_or_default(),
        tier: spec.tier.clone().unwrap_or_default(),
        priority: spec.priority,
        subject: spec.subject.as_ref().map(subject_form).unwrap_or_else(|| subject_form(&Default::default())),
        ingress: spec
            .ingress
            .iter()
            .flatten()
            .map(|r| rule(&r.name, &r.action, r.from.iter().flatten().map(ingress_peer_form).collect(), &r.protocols))
            .collect(),
        egress: spec
            .egress
            .iter()
            .flatten()
            .map(|r| rule(&r.name, &r.action, r.to.iter().flatten().map(egress_peer_form).collect(), &r.protocols))
            .collect(),
    }
}

/// Builds the ClusterNetworkPolicy the form describes; what cannot be read (a selector, a port) is reported
/// with its field path, as the apiserver would word an invalid value.
pub fn policy_of(form: &TierForm) -> Result<ClusterNetworkPolicy, Vec<String>> {
    let mut errors = Vec::new();
    let mut selector = |text: &str, path: &str| match parse_selector(text) {
        Ok(s) => s,
        Err(e) => {
            errors.push(format!("{path}: Invalid value: {text:?}: {e}"));
            LabelSelector::default()
        }
    };
    let pods = |sel: &mut dyn FnMut(&str, &str) -> LabelSelector, p: &PeerForm, path: &str| NamespacedPod {
        namespace_selector: Some(sel(&p.namespaces, &format!("{path}.namespaceSelector"))),
        pod_selector: Some(sel(&p.pods, &format!("{path}.podSelector"))),
    };
    let subject = if form.subject.kind == "pods" {
        let p = PeerForm {
            namespaces: form.subject.namespaces.clone(),
            pods: form.subject.pods.clone(),
            ..Default::default()
        };
        ClusterNetworkPolicySubject { namespaces: None, pods: Some(pods(&mut selector, &p, "spec.subject.pods")) }
    } else {
        ClusterNetworkPolicySubject {
            namespaces: Some(selector(&form.subject.namespaces, "spec.subject.namespaces")),
            pods: None,
        }
    };
    let mut egress_peer = |p: &PeerForm, path: &str| -> ClusterNetworkPolicyEgressPeer {
        match p.kind.as_str() {
            "pods" => ClusterNetworkPolicyEgressPeer {
                pods: Some(pods(&mut selector, p, &format!("{path}.pods"))),
                ..Default::default()
            },
            "networks" => ClusterNetworkPolicyEgressPeer { networks: Some(list(&p.values)), ..Default::default() },
            "nodes" => ClusterNetworkPolicyEgressPeer {
                nodes: Some(selector(&p.nodes, &format!("{path}.nodes"))),
                ..Default::default()
            },
            "domainNames" => {
                ClusterNetworkPolicyEgressPeer { domain_names: Some(list(&p.values)), ..Default::default() }
            }
            _ => ClusterNetworkPolicyEgressPeer {
                namespaces: Some(selector(&p.namespaces, &format!("{path}.namespaces"))),
                ..Default::default()
            },
        }
    };
    let mut port_errors = Vec::new();
    let mut protocols = |ps: &[ProtocolForm], path: &str| -> Option<Vec<ClusterNetworkPolicyProtocol>> {
        if ps.is_empty() {
            return None;
        }
        let out = ps
            .iter()
            .enumerate()
            .map(|(i, p)| {
                if p.protocol == "named" {
                    return ClusterNetworkPolicyProtocol {
                        destination_named_port: Some(p.port.trim().to_owned()),
                        ..Default::default()
                    };
                }
                let field = format!("{path}[{i}].{}.destinationPort", p.protocol.to_ascii_lowercase());
                let text = p.port.trim();
                let number = |s: &str| s.trim().parse::<i64>().ok();
                let destination_port = if text.is_empty() {
                    None
                } else if let Some(n) = number(text) {
                    Some(Port { number: Some(n), range: None })
                } else if let Some((a, b)) = text.split_once('-').and_then(|(a, b)| Some((number(a)?, number(b)?))) {
                    Some(Port { number: None, range: Some(PortRange { start: Some(a), end: Some(b) }) })
                } else {
                    port_errors.push(format!(
                        "{field}: Invalid value: {text:?}: a port number or a range such as 8000-8080 (a port name \
                         is a destination named port)"
                    ));
                    None
                };
                let pp = Some(ProtocolPort { destination_port });
                match p.protocol.as_str() {
                    "UDP" => ClusterNetworkPolicyProtocol { udp: pp, ..Default::default() },
                    "SCTP" => ClusterNetworkPolicyProtocol { sctp: pp, ..Default::default() },
                    _ => ClusterNetworkPolicyProtocol { tcp: pp, ..Default::default() },
                }
            })
            .collect();
        Some(out)
    };
    let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
    let ingress: Vec<ClusterNetworkPolicyIngressRule> = form
        .ingress
        .iter()
        .enumerate()
        .map(|(i, r)| ClusterNetworkPolicyIngressRule {
            name: opt(&r.name),
            action: opt(&r.action),
            from: Some(
                r.peers
                    .iter()
                    .enumerate()
                    .map(|(j, p)| {
                        let e = egress_peer(p, &format!("spec.ingress[{i}].from[{j}]"));
                        ClusterNetworkPolicyIngressPeer { namespaces: e.namespaces, pods: e.pods }
                    })
                    .collect(),
            ),
            protocols: protocols(&r.protocols, &format!("spec.ingress[{i}].protocols")),
        })
        .collect();
    let egress: Vec<ClusterNetworkPolicyEgressRule> = form
        .egress
        .iter()
        .enumerate()
        .map(|(i, r)| ClusterNetworkPolicyEgressRule {
            name: opt(&r.name),
            action: opt(&r.action),
            to: Some(
                r.peers.iter().enumerate().map(|(j, p)| egress_peer(p, &format!("spec.egress[{i}].to[{j}]"))).collect(),
            ),
            protocols: protocols(&r.protocols, &format!("spec.egress[{i}].protocols")),
        })
        .collect();
    errors.extend(port_errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ClusterNetworkPolicy {
        metadata: ObjectMeta { name: opt(&form.name), ..Default::default() },
        spec: Some(ClusterNetworkPolicySpec {
            tier: opt(&form.tier),
            priority: form.priority,
            subject: Some(subject),
            ingress: (!ingress.is_empty()).then_some(ingress),
            egress: (!egress.is_empty()).then_some(egress),
        }),
    })
}

/// A manifest as people write it: `apiVersion` and `kind` first, then the object's fields in their
/// declared order (tier, priority, subject, ingress, egress; a rule's name, action, peers, protocols).
#[derive(Serialize)]
struct Manifest<'a, T: Serialize> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'a str,
    #[serde(flatten)]
    body: &'a T,
}

/// The manifest of a tier object (or Node) as YAML.
pub fn manifest(o: &ClusterObject) -> Result<String, String> {
    let (api_version, kind) = o.type_meta();
    let out = match o {
        ClusterObject::ClusterNetworkPolicy(p) => serde_saphyr::to_string(&Manifest { api_version, kind, body: p }),
        ClusterObject::AdminNetworkPolicy(p) => serde_saphyr::to_string(&Manifest { api_version, kind, body: p }),
        ClusterObject::BaselineAdminNetworkPolicy(p) => {
            serde_saphyr::to_string(&Manifest { api_version, kind, body: p })
        }
        ClusterObject::Node(n) => serde_saphyr::to_string(&Manifest { api_version, kind, body: n }),
    };
    out.map_err(|e| e.to_string())
}

// ---- The pane's documents ------------------------------------------------------------------------------------

/// The pane split at `---` lines: each document with the separator line that opens it.
fn documents(text: &str) -> Vec<(Option<&str>, Vec<&str>)> {
    let mut docs: Vec<(Option<&str>, Vec<&str>)> = vec![(None, Vec::new())];
    for line in text.lines() {
        if line.starts_with("---") {
            docs.push((Some(line), Vec::new()));
        } else if let Some(d) = docs.last_mut() {
            d.1.push(line);
        }
    }
    docs
}

fn join(docs: &[(Option<&str>, Vec<&str>)]) -> String {
    let mut out = String::new();
    for (sep, lines) in docs {
        for l in sep.iter().chain(lines) {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// Which document holds exactly the tier object `key` and nothing else.
fn find_document(docs: &[(Option<&str>, Vec<&str>)], key: &str) -> Option<usize> {
    docs.iter().position(|(_, lines)| {
        let l = load_str(PANE, &lines.join("\n"));
        l.objects.is_empty()
            && l.cluster_objects.len() == 1
            && object_key(&l.cluster_objects[0].value).as_deref() == Some(key)
    })
}

/// The pane with `document` in place of the document holding `replaces` (or added at the end).
pub fn put_document(text: &str, replaces: Option<&str>, document: &str) -> String {
    let mut docs = documents(text);
    let new_lines: Vec<&str> = document.trim_end().lines().collect();
    if let Some(i) = replaces.and_then(|k| find_document(&docs, k)) {
        docs[i].1 = new_lines;
        return join(&docs);
    }
    let mut out = text.trim_end().to_owned();
    if !out.trim().is_empty() {
        out.push_str("\n---\n");
    }
    out.push_str(document.trim_end());
    out.push('\n');
    out
}

/// The pane without the document holding `key`; `None` when no document holds it alone.
pub fn remove_document(text: &str, key: &str) -> Option<String> {
    let mut docs = documents(text);
    let i = find_document(&docs, key)?;
    docs.remove(i);
    let mut out = join(&docs);
    // The first document lost: the next one's separator now opens the pane.
    if let Some(rest) = out.strip_prefix("---\n") {
        out = rest.to_owned();
    }
    Some(out)
}

/// `/api/tier/yaml`: the form's policy written into the pane (replacing `original` if the pane holds it),
/// with every error the apiserver would give, located in the new pane.
#[derive(Debug, Clone, Deserialize)]
pub struct WriteRequest {
    #[serde(default)]
    pub yaml: String,
    /// The key of the policy being edited, when it was loaded into the form.
    #[serde(default)]
    pub original: Option<String>,
    pub form: TierForm,
}

#[derive(Debug, Clone, Serialize)]
pub struct Written {
    /// The pane after the write (unchanged when the form could not be read).
    pub yaml: String,
    /// The policy's own document.
    pub document: String,
    pub key: String,
    pub errors: Vec<Problem>,
}

pub fn write(req: &WriteRequest) -> Written {
    let problem = |field: Option<String>, message: String| Problem { line: None, field, message };
    let p = match policy_of(&req.form) {
        Ok(p) => p,
        Err(errors) => {
            return Written {
                yaml: req.yaml.clone(),
                document: String::new(),
                key: key(PolicyKind::ClusterNetworkPolicy, &req.form.name),
                errors: errors.into_iter().map(|e| problem(e.split_once(": ").map(|(f, _)| f.to_owned()), e)).collect(),
            };
        }
    };
    let k = key(PolicyKind::ClusterNetworkPolicy, p.metadata.name.as_deref().unwrap_or(""));
    let o = ClusterObject::ClusterNetworkPolicy(Box::new(p.clone()));
    let document = match manifest(&o) {
        Ok(d) => d,
        Err(e) => {
            return Written { yaml: req.yaml.clone(), document: String::new(), key: k, errors: vec![problem(None, e)] };
        }
    };
    let yaml = put_document(&req.yaml, req.original.as_deref().or(Some(&k)), &document);
    // The document's number in the new pane, to locate each error at its line.
    let doc = load_str(PANE, &yaml)
        .cluster_objects
        .iter()
        .rev()
        .find(|o| object_key(&o.value).as_deref() == Some(k.as_str()))
        .map(|o| o.origin.document);
    let errors = validate_cluster_network_policy(&p)
        .into_iter()
        .map(|e| {
            let field = e.field.to_string();
            Problem { line: doc.and_then(|d| locate(&yaml, d, &field)), message: e.to_string(), field: Some(field) }
        })
        .collect();
    Written { yaml, document, key: k, errors }
}

// ---- The list --------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleView {
    /// `spec.ingress[1]`
    pub path: String,
    pub name: Option<String>,
    pub action: String,
    /// Each peer in words, in order.
    pub peers: Vec<String>,
    /// Each protocol entry in words; one "any protocol and port" entry when the rule lists none.
    pub ports: Vec<String>,
    /// The whole rule in words (the engine's `describe_tier_rule`).
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyView {
    pub key: String,
    pub kind: PolicyKind,
    pub name: String,
    pub tier: Tier,
    /// `None` for the BaselineAdminNetworkPolicy (the singleton, after every Baseline policy).
    pub priority: Option<i64>,
    /// Whom the subject selects, in words.
    pub subject: String,
    /// Other policies of the same tier and priority (their order is by name; the API leaves it undefined).
    pub tied_with: Vec<String>,
    pub ingress: Vec<RuleView>,
    pub egress: Vec<RuleView>,
    /// The engine's account of the whole policy.
    pub text: String,
    /// Written in the pane (else loaded underneath: editing it writes a copy into the pane).
    pub in_editor: bool,
    /// The form's model, for a ClusterNetworkPolicy (the form edits only that kind).
    pub form: Option<TierForm>,
}

fn rule_views(p: &LoweredPolicy, direction: Direction) -> Vec<RuleView> {
    p.rules(direction)
        .iter()
        .enumerate()
        .map(|(i, r)| RuleView {
            path: format!("spec.{}[{i}]", direction.as_str()),
            name: r.name.clone(),
            action: r.action.to_string(),
            peers: r.peers.iter().map(describe_tier_peer).collect(),
            ports: match &r.protocols {
                None => vec!["any protocol and port".to_owned()],
                Some(ps) => ps.iter().map(describe_tier_port).collect(),
            },
            text: describe_tier_rule(r, direction),
        })
        .collect()
}

/// The tier policies in the order the engine walks them (Admin by priority then name, then Baseline).
pub fn views<'a>(objects: impl IntoIterator<Item = &'a ClusterObject>, in_editor: &[String]) -> Vec<PolicyView> {
    let mut out: Vec<(LoweredPolicy, PolicyView)> = objects
        .into_iter()
        .filter_map(|o| {
            let tp = o.as_policy()?;
            let p = LoweredPolicy::lower(&tp)?;
            let k = key(p.kind, &p.name);
            let view = PolicyView {
                in_editor: in_editor.contains(&k),
                key: k,
                kind: p.kind,
                name: p.name.clone(),
                tier: p.tier,
                priority: (p.kind != PolicyKind::BaselineAdminNetworkPolicy).then_some(p.priority),
                subject: describe_tier_peer(&TierPeer::Pods(p.subject.clone())),
                tied_with: Vec::new(),
                ingress: rule_views(&p, Direction::Ingress),
                egress: rule_views(&p, Direction::Egress),
                text: explain_tier_policy(o),
                form: match o {
                    ClusterObject::ClusterNetworkPolicy(c) => Some(form_of(c)),
                    _ => None,
                },
            };
            Some((p, view))
        })
        .collect();
    out.sort_by(|(a, _), (b, _)| (a.tier, a.priority, &a.name, a.kind).cmp(&(b.tier, b.priority, &b.name, b.kind)));
    let places: Vec<(Tier, i64, String)> = out.iter().map(|(p, _)| (p.tier, p.priority, p.name.clone())).collect();
    for (p, v) in &mut out {
        v.tied_with = places
            .iter()
            .filter(|(t, pr, n)| *t == p.tier && *pr == p.priority && *n != p.name)
            .map(|(_, _, n)| n.clone())
            .collect();
    }
    out.into_iter().map(|(_, v)| v).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_text_reads_back() {
        for text in ["", "app=web", "app=web, tier in (a, b), env notin (dev), has, !canary"] {
            let sel = parse_selector(text).unwrap();
            assert_eq!(selector_text(&sel), text);
        }
        let sel = parse_selector("team == x,!gone").unwrap();
        assert_eq!(selector_text(&sel), "team=x, !gone");
        assert_eq!(parse_selector("a!=b").unwrap().match_expressions.unwrap()[0].operator, "NotIn");
        assert!(parse_selector("tier in a").unwrap_err().contains("parentheses"));
        assert!(parse_selector("two words").is_err());
    }

    #[test]
    fn a_document_is_replaced_in_place_and_removed() {
        let pane = "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\napiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: a}\nspec: {}\n--- # last\nkind: Namespace\napiVersion: v1\nmetadata: {name: y}\n";
        let doc = "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata:\n  name: b\n";
        let replaced = put_document(pane, Some("ClusterNetworkPolicy/a"), doc);
        assert_eq!(replaced, pane.replace("metadata: {name: a}\nspec: {}\n", "metadata:\n  name: b\n"));
        let added = put_document(pane, Some("ClusterNetworkPolicy/zz"), doc);
        assert_eq!(added, format!("{}---\n{doc}", pane));
        assert_eq!(put_document("", None, doc), doc);
        let removed = remove_document(&replaced, "ClusterNetworkPolicy/b").unwrap();
        assert_eq!(
            removed,
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n--- # last\nkind: Namespace\napiVersion: v1\nmetadata: {name: y}\n"
        );
        assert_eq!(remove_document(doc, "ClusterNetworkPolicy/b").unwrap(), "");
        assert!(remove_document(pane, "ClusterNetworkPolicy/none").is_none());
    }
}
