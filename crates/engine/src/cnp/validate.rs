//! Validation of the tier policies equal to their CRDs (experimental channel: the OpenAPI schema and its CEL
//! rules), every error with its field path in the apiserver's words. Label-selector syntax is checked too,
//! with NetworkPolicy's messages; the CRDs do not check it, so those errors are marked stricter than the
//! apiserver.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::{
    AdminNetworkPolicy, AdminNetworkPolicyPort, BaselineAdminNetworkPolicy, ClusterNetworkPolicy,
    ClusterNetworkPolicyEgressPeer, ClusterNetworkPolicyIngressPeer, ClusterNetworkPolicyProtocol,
    ClusterNetworkPolicySubject, ClusterObject, NamespacedPod, ProtocolPort,
};
use crate::field::Path;
use crate::validate::{validate_label_selector, validate_object_meta};

/// One validation error: `spec.priority: Invalid value: 1001: spec.priority in body should be less than or
/// equal to 1000`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrdError {
    pub field: Path,
    /// What follows `field: `, in the apiserver's words.
    pub message: String,
    /// The apiserver accepts this; Palisade refuses it (label-selector syntax, an unknown protocol).
    pub stricter: bool,
}

impl fmt::Display for CrdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = if self.field.as_str().is_empty() { "<nil>" } else { self.field.as_str() };
        write!(f, "{field}: {}", self.message)?;
        if self.stricter {
            f.write_str(" (stricter than the apiserver, which accepts it)")?;
        }
        Ok(())
    }
}

/// Which API version's limits apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    /// ClusterNetworkPolicy v1alpha2.
    V2,
    /// AdminNetworkPolicy v1alpha1.
    Anp,
    /// BaselineAdminNetworkPolicy v1alpha1.
    Banp,
}

impl Version {
    fn max_rules(self) -> usize {
        if self == Version::V2 { 25 } else { 100 }
    }
    fn max_peers(self) -> usize {
        if self == Version::V2 { 25 } else { 100 }
    }
    fn actions(self) -> &'static [&'static str] {
        match self {
            Version::V2 => &["Accept", "Deny", "Pass"],
            Version::Anp => &["Allow", "Deny", "Pass"],
            Version::Banp => &["Allow", "Deny"],
        }
    }
}

#[derive(Default)]
struct Errs(Vec<CrdError>);

impl Errs {
    fn push(&mut self, field: &Path, message: String) {
        self.0.push(CrdError { field: field.clone(), message, stricter: false });
    }
    fn required(&mut self, field: &Path) {
        self.push(field, "Required value".to_owned());
    }
    fn min_max(&mut self, field: &Path, v: i64, min: i64, max: i64) {
        if v < min {
            self.push(field, format!("Invalid value: {v}: {field} in body should be greater than or equal to {min}"));
        }
        if v > max {
            self.push(field, format!("Invalid value: {v}: {field} in body should be less than or equal to {max}"));
        }
    }
    fn items<T>(&mut self, field: &Path, items: &[T], min: usize, max: usize) {
        if items.len() > max {
            self.push(field, format!("Too many: {}: must have at most {max} items", items.len()));
        }
        if items.len() < min {
            self.push(
                field,
                format!("Invalid value: {}: {field} in body should have at least {min} items", items.len()),
            );
        }
    }
    /// `minProperties: 1, maxProperties: 1` over the fields that are set.
    fn exactly_one(&mut self, field: &Path, set: usize) {
        if set == 0 {
            self.push(field, format!("Invalid value: 0: {field} in body should have at least 1 properties"));
        } else if set > 1 {
            self.push(field, format!("Too many: {set}: must have at most 1 items"));
        }
    }
    fn max_length(&mut self, field: &Path, s: &str, max: usize) {
        if s.len() > max {
            self.push(field, format!("Too long: may not be more than {max} bytes"));
        }
    }
    fn enumerated(&mut self, field: &Path, v: &str, supported: &[&str]) {
        if !supported.contains(&v) {
            let quoted: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
            self.push(field, format!("Unsupported value: {v:?}: supported values: {}", quoted.join(", ")));
        }
    }
    fn set<'a>(&mut self, field: &Path, items: impl IntoIterator<Item = &'a String>) {
        let mut seen: Vec<&String> = Vec::new();
        for (i, s) in items.into_iter().enumerate() {
            if seen.contains(&s) {
                self.push(&field.index(i), format!("Duplicate value: {s:?}"));
            }
            seen.push(s);
        }
    }
    fn selector(&mut self, sel: &LabelSelector, field: &Path) {
        for e in validate_label_selector(sel, field) {
            let field = e.field.clone();
            let text = e.to_string();
            let message = text.strip_prefix(&format!("{field}: ")).unwrap_or(&text).to_owned();
            self.0.push(CrdError { field, message, stricter: true });
        }
    }
    fn stricter(&mut self, field: &Path, message: String) {
        self.0.push(CrdError { field: field.clone(), message, stricter: true });
    }
}

/// All the errors the apiserver (with the experimental CRD installed) would return creating this object,
/// plus the selector errors it would not (marked [`CrdError::stricter`]). A Node is not checked.
pub fn validate_cluster_object(o: &ClusterObject) -> Vec<CrdError> {
    match o {
        ClusterObject::ClusterNetworkPolicy(p) => validate_cluster_network_policy(p),
        ClusterObject::AdminNetworkPolicy(p) => validate_admin_network_policy(p),
        ClusterObject::BaselineAdminNetworkPolicy(p) => validate_baseline_admin_network_policy(p),
        ClusterObject::Node(_) => Vec::new(),
    }
}

fn meta(errs: &mut Errs, m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) {
    for e in validate_object_meta(m, false, &Path::new("metadata")) {
        let text = e.to_string();
        let message = text.strip_prefix(&format!("{}: ", e.field)).unwrap_or(&text).to_owned();
        errs.0.push(CrdError { field: e.field, message, stricter: false });
    }
}

pub fn validate_cluster_network_policy(p: &ClusterNetworkPolicy) -> Vec<CrdError> {
    let mut errs = Errs::default();
    meta(&mut errs, &p.metadata);
    let path = Path::new("spec");
    let Some(spec) = &p.spec else {
        errs.required(&path);
        return errs.0;
    };
    match &spec.tier {
        None => errs.required(&path.child("tier")),
        Some(t) => errs.enumerated(&path.child("tier"), t, &["Admin", "Baseline"]),
    }
    match spec.priority {
        None => errs.required(&path.child("priority")),
        Some(v) => errs.min_max(&path.child("priority"), v, 0, 1000),
    }
    subject(&mut errs, spec.subject.as_ref(), &path.child("subject"), Version::V2);
    let v = Version::V2;
    if let Some(rules) = &spec.ingress {
        let rp = path.child("ingress");
        errs.items(&rp, rules, 0, v.max_rules());
        for (i, r) in rules.iter().enumerate() {
            let p = rp.index(i);
            rule_head(&mut errs, &r.name, &r.action, &p, v);
            ingress_peers(&mut errs, r.from.as_deref(), &p.child("from"), v);
            if let Some(ps) = &r.protocols {
                protocols(&mut errs, ps, &p.child("protocols"));
            }
        }
    }
    if let Some(rules) = &spec.egress {
        let rp = path.child("egress");
        errs.items(&rp, rules, 0, v.max_rules());
        for (i, r) in rules.iter().enumerate() {
            let p = rp.index(i);
            rule_head(&mut errs, &r.name, &r.action, &p, v);
            egress_peers(&mut errs, r.to.as_deref(), &p.child("to"), v);
            if let Some(ps) = &r.protocols {
                protocols(&mut errs, ps, &p.child("protocols"));
            }
            let named = r.protocols.iter().flatten().any(|x| x.destination_named_port.is_some());
            if named && address_peer(r.to.as_deref()) {
                errs.push(&p, NAMED_PORT_CEL.to_owned());
            }
        }
    }
    errs.0
}

const NAMED_PORT_CEL: &str = "Invalid value: \"object\": networks/nodes/domainNames peer cannot be set with namedPorts since there are no namedPorts for networks/nodes/domainNames";

fn address_peer(to: Option<&[ClusterNetworkPolicyEgressPeer]>) -> bool {
    to.unwrap_or_default().iter().any(|p| p.networks.is_some() || p.nodes.is_some() || p.domain_names.is_some())
}

pub fn validate_admin_network_policy(p: &AdminNetworkPolicy) -> Vec<CrdError> {
    let mut errs = Errs::default();
    meta(&mut errs, &p.metadata);
    let path = Path::new("spec");
    let Some(spec) = &p.spec else {
        errs.required(&path);
        return errs.0;
    };
    match spec.priority {
        None => errs.required(&path.child("priority")),
        Some(v) => errs.min_max(&path.child("priority"), v, 0, 1000),
    }
    subject(&mut errs, spec.subject.as_ref(), &path.child("subject"), Version::Anp);
    v1alpha1_rules(&mut errs, spec.ingress.as_deref(), spec.egress.as_deref(), &path, Version::Anp);
    errs.0
}

pub fn validate_baseline_admin_network_policy(p: &BaselineAdminNetworkPolicy) -> Vec<CrdError> {
    let mut errs = Errs::default();
    meta(&mut errs, &p.metadata);
    if p.metadata.name.as_deref().is_some_and(|n| n != "default") {
        errs.push(
            &Path::default(),
            "Invalid value: \"object\": Only one baseline admin network policy with metadata.name=\"default\" can be created in the cluster"
                .to_owned(),
        );
    }
    let path = Path::new("spec");
    let Some(spec) = &p.spec else {
        errs.required(&path);
        return errs.0;
    };
    subject(&mut errs, spec.subject.as_ref(), &path.child("subject"), Version::Banp);
    v1alpha1_rules(&mut errs, spec.ingress.as_deref(), spec.egress.as_deref(), &path, Version::Banp);
    errs.0
}

fn v1alpha1_rules(
    errs: &mut Errs,
    ingress: Option<&[super::AdminNetworkPolicyIngressRule]>,
    egress: Option<&[super::AdminNetworkPolicyEgressRule]>,
    path: &Path,
    v: Version,
) {
    if let Some(rules) = ingress {
        let rp = path.child("ingress");
        errs.items(&rp, rules, 0, v.max_rules());
        for (i, r) in rules.iter().enumerate() {
            let p = rp.index(i);
            rule_head(errs, &r.name, &r.action, &p, v);
            ingress_peers(errs, r.from.as_deref(), &p.child("from"), v);
            if let Some(ps) = &r.ports {
                ports(errs, ps, &p.child("ports"));
            }
        }
    }
    if let Some(rules) = egress {
        let rp = path.child("egress");
        errs.items(&rp, rules, 0, v.max_rules());
        for (i, r) in rules.iter().enumerate() {
            let p = rp.index(i);
            rule_head(errs, &r.name, &r.action, &p, v);
            egress_peers(errs, r.to.as_deref(), &p.child("to"), v);
            if let Some(ps) = &r.ports {
                ports(errs, ps, &p.child("ports"));
            }
            let named = r.ports.iter().flatten().any(|x| x.named_port.is_some());
            if named && address_peer(r.to.as_deref()) {
                let msg = if v == Version::Banp {
                    "Invalid value: \"object\": networks/nodes peer cannot be set with namedPorts since there are no namedPorts for networks/nodes"
                } else {
                    NAMED_PORT_CEL
                };
                errs.push(&p, msg.to_owned());
            }
        }
    }
}

fn rule_head(errs: &mut Errs, name: &Option<String>, action: &Option<String>, p: &Path, v: Version) {
    if let Some(n) = name {
        errs.max_length(&p.child("name"), n, 100);
    }
    match action {
        None => errs.required(&p.child("action")),
        Some(a) => errs.enumerated(&p.child("action"), a, v.actions()),
    }
}

fn subject(errs: &mut Errs, s: Option<&ClusterNetworkPolicySubject>, path: &Path, v: Version) {
    let Some(s) = s else {
        errs.required(path);
        return;
    };
    errs.exactly_one(path, usize::from(s.namespaces.is_some()) + usize::from(s.pods.is_some()));
    if let Some(ns) = &s.namespaces {
        errs.selector(ns, &path.child("namespaces"));
    }
    if let Some(p) = &s.pods {
        namespaced_pod(errs, p, &path.child("pods"), v);
    }
}

fn namespaced_pod(errs: &mut Errs, p: &NamespacedPod, path: &Path, v: Version) {
    match &p.namespace_selector {
        Some(sel) => errs.selector(sel, &path.child("namespaceSelector")),
        // Optional (default `{}`) in v1alpha2, required in v1alpha1.
        None if v != Version::V2 => errs.required(&path.child("namespaceSelector")),
        None => {}
    }
    match &p.pod_selector {
        Some(sel) => errs.selector(sel, &path.child("podSelector")),
        None => errs.required(&path.child("podSelector")),
    }
}

fn ingress_peers(errs: &mut Errs, peers: Option<&[ClusterNetworkPolicyIngressPeer]>, path: &Path, v: Version) {
    let Some(peers) = peers else {
        errs.required(path);
        return;
    };
    errs.items(path, peers, 1, v.max_peers());
    for (i, peer) in peers.iter().enumerate() {
        let p = path.index(i);
        errs.exactly_one(&p, usize::from(peer.namespaces.is_some()) + usize::from(peer.pods.is_some()));
        if let Some(ns) = &peer.namespaces {
            errs.selector(ns, &p.child("namespaces"));
        }
        if let Some(pods) = &peer.pods {
            namespaced_pod(errs, pods, &p.child("pods"), v);
        }
    }
}

fn egress_peers(errs: &mut Errs, peers: Option<&[ClusterNetworkPolicyEgressPeer]>, path: &Path, v: Version) {
    let Some(peers) = peers else {
        errs.required(path);
        return;
    };
    errs.items(path, peers, 1, v.max_peers());
    for (i, peer) in peers.iter().enumerate() {
        let p = path.index(i);
        let set = [
            peer.namespaces.is_some(),
            peer.pods.is_some(),
            peer.networks.is_some(),
            peer.nodes.is_some(),
            peer.domain_names.is_some(),
        ];
        errs.exactly_one(&p, set.iter().filter(|b| **b).count());
        if let Some(ns) = &peer.namespaces {
            errs.selector(ns, &p.child("namespaces"));
        }
        if let Some(pods) = &peer.pods {
            namespaced_pod(errs, pods, &p.child("pods"), v);
        }
        if let Some(nodes) = &peer.nodes {
            errs.selector(nodes, &p.child("nodes"));
        }
        if let Some(nets) = &peer.networks {
            let np = p.child("networks");
            errs.items(&np, nets, 1, 25);
            for (j, n) in nets.iter().enumerate() {
                let at = np.index(j);
                errs.max_length(&at, n, 43);
                if !is_cidr(n) {
                    errs.push(&at, "Invalid value: \"string\": Invalid CIDR format provided".to_owned());
                }
            }
            errs.set(&np, nets);
        }
        if let Some(names) = &peer.domain_names {
            let dp = p.child("domainNames");
            if v == Version::Banp {
                errs.push(&dp, "Forbidden: field not declared in schema".to_owned());
                continue;
            }
            errs.items(&dp, names, 1, 25);
            for (j, n) in names.iter().enumerate() {
                if !is_domain_name(n) {
                    let at = dp.index(j);
                    errs.push(&at, format!("Invalid value: {n:?}: {at} in body should match '{DOMAIN_PATTERN}'"));
                }
            }
            errs.set(&dp, names);
        }
    }
}

fn protocols(errs: &mut Errs, ps: &[ClusterNetworkPolicyProtocol], path: &Path) {
    errs.items(path, ps, 1, 25);
    for (i, entry) in ps.iter().enumerate() {
        let p = path.index(i);
        let numbered = [("tcp", &entry.tcp), ("udp", &entry.udp), ("sctp", &entry.sctp)];
        let set =
            numbered.iter().filter(|(_, x)| x.is_some()).count() + usize::from(entry.destination_named_port.is_some());
        errs.exactly_one(&p, set);
        for (name, pp) in numbered {
            if let Some(pp) = pp {
                protocol_port(errs, pp, &p.child(name));
            }
        }
    }
}

fn protocol_port(errs: &mut Errs, pp: &ProtocolPort, path: &Path) {
    let Some(port) = &pp.destination_port else {
        errs.push(path, format!("Invalid value: 0: {path} in body should have at least 1 properties"));
        return;
    };
    let dp = path.child("destinationPort");
    errs.exactly_one(&dp, usize::from(port.number.is_some()) + usize::from(port.range.is_some()));
    if let Some(n) = port.number {
        errs.min_max(&dp.child("number"), n, 1, 65535);
    }
    if let Some(r) = &port.range {
        let rp = dp.child("range");
        range(errs, r.start, r.end, &rp, true);
    }
}

/// `start` and `end` (1..65535 each), and for v1alpha2 the CEL rule `self.start < self.end`.
fn range(errs: &mut Errs, start: Option<i64>, end: Option<i64>, rp: &Path, cel: bool) {
    for (name, v) in [("start", start), ("end", end)] {
        match v {
            None => errs.required(&rp.child(name)),
            Some(v) => errs.min_max(&rp.child(name), v, 1, 65535),
        }
    }
    if cel
        && let (Some(s), Some(e)) = (start, end)
        && s >= e
    {
        errs.push(rp, "Invalid value: \"object\": Start port must be less than End port".to_owned());
    }
}

fn ports(errs: &mut Errs, ps: &[AdminNetworkPolicyPort], path: &Path) {
    errs.items(path, ps, 1, 100);
    for (i, entry) in ps.iter().enumerate() {
        let p = path.index(i);
        let set = usize::from(entry.port_number.is_some())
            + usize::from(entry.named_port.is_some())
            + usize::from(entry.port_range.is_some());
        errs.exactly_one(&p, set);
        if let Some(n) = &entry.port_number {
            let np = p.child("portNumber");
            protocol_name(errs, n.protocol.as_deref(), &np.child("protocol"));
            match n.port {
                None => errs.required(&np.child("port")),
                Some(v) => errs.min_max(&np.child("port"), v, 1, 65535),
            }
        }
        if let Some(r) = &entry.port_range {
            let rp = p.child("portRange");
            protocol_name(errs, r.protocol.as_deref(), &rp.child("protocol"));
            range(errs, r.start, r.end, &rp, false);
        }
    }
}

/// v1alpha1's protocol is a free string defaulted to TCP; anything but TCP, UDP and SCTP can never match.
fn protocol_name(errs: &mut Errs, protocol: Option<&str>, path: &Path) {
    if let Some(p) = protocol
        && !["TCP", "UDP", "SCTP"].contains(&p)
    {
        errs.stricter(path, format!("Unsupported value: {p:?}: supported values: \"SCTP\", \"TCP\", \"UDP\""));
    }
}

/// CEL `isCIDR`: an address and a prefix length, either family (host bits may be set).
fn is_cidr(s: &str) -> bool {
    s.parse::<ipnet::IpNet>().is_ok()
}

pub const DOMAIN_PATTERN: &str =
    r"^(\*\.)?([a-zA-z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.)+[a-zA-z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.?$";

/// [`DOMAIN_PATTERN`] by hand (its `A-z` range also admits `[`, `\`, `]`, `^`, `_` and `` ` `` first).
fn is_domain_name(s: &str) -> bool {
    let s = s.strip_prefix("*.").unwrap_or(s);
    let s = s.strip_suffix('.').unwrap_or(s);
    let labels: Vec<&str> = s.split('.').collect();
    let first = |c: u8| c.is_ascii_digit() || (b'A'..=b'z').contains(&c);
    let last = |c: u8| c.is_ascii_alphanumeric();
    let mid = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    labels.len() >= 2
        && labels.iter().all(|l| {
            let b = l.as_bytes();
            match b {
                [] => false,
                [c] => first(*c),
                [f, m @ .., l] => first(*f) && m.iter().all(|c| mid(*c)) && last(*l),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_pattern() {
        for ok in ["example.com", "*.example.com", "a.b.c.", "x_y.io", "9.io"] {
            assert!(is_domain_name(ok), "{ok}");
        }
        for bad in ["example", "*.com.", "-a.com", "a-.com", "a..com", "*example.com", "", "a.com.."] {
            assert!(!is_domain_name(bad), "{bad}");
        }
    }
}

#[cfg(test)]
mod cases {
    use crate::load::load_str;

    /// Each document with every error it gets, or the load error, one block per document.
    fn report(text: &str) -> String {
        let loaded = load_str("cnp.yaml", text);
        let mut out = String::new();
        for e in &loaded.errors {
            out.push_str(&format!("{e}\n"));
        }
        for o in &loaded.cluster_objects {
            out.push_str(&format!("{} {} {}:\n", o.origin, o.value.type_meta().1, o.value.name()));
            let errs = super::validate_cluster_object(&o.value);
            if errs.is_empty() {
                out.push_str("  valid\n");
            }
            for e in errs {
                out.push_str(&format!("  {e}\n"));
            }
        }
        out
    }

    #[test]
    fn every_error_in_the_apiservers_words() {
        let text = include_str!("testdata/invalid.yaml");
        insta::assert_snapshot!(report(text));
    }
}
