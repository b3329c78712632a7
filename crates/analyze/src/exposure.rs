//! Exposure analysis and focus workloads, as netpol-analyzer's `list --exposure --focusworkload
//! --focusworkload-peer` has them (conformance/netpol-analyzer-exposure/README.md).
//!
//! A workload is exposed in a direction when its policies admit peers the manifests do not pin down: any pod
//! of the cluster (`entire-cluster`), pods of namespaces or with labels that no workload of the manifests
//! stands for (a *representative* peer, named by its selectors), or outside addresses. A workload no policy
//! selects in a direction is unprotected there, and so exposed to everything.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use k8s_openapi::api::networking::v1::{NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use palisade_engine::Protocol;
use palisade_engine::model::{Labels, NAMESPACE_NAME_LABEL};
use palisade_engine::policy::Direction;
use serde::Serialize;

use crate::connlist::{Analysis, Connection, connlist};
use crate::model::{Model, Workload};
use crate::ports::{PROTOCOLS, PortSet};

/// What to list: exposure, and the workloads to focus on (`name` or `namespace/name`).
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub exposure: bool,
    pub focus_workloads: Vec<String>,
    pub focus_peers: Vec<String>,
}

/// The list, narrowed to the focus, with the exposure result when asked for.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub connections: Vec<Connection>,
    pub exposure: Option<Exposure>,
    /// What the options could not do (a focus workload that does not exist, exposure switched off).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Exposure {
    /// `src` is the workload, `dst` what it may reach.
    pub egress: Vec<ExposureLine>,
    /// `dst` is the workload, `src` what may reach it.
    pub ingress: Vec<ExposureLine>,
    /// (workload, `Ingress`|`Egress`) for every direction no policy protects.
    #[serde(skip)]
    pub unprotected: Vec<(String, &'static str)>,
}

/// One exposure: a workload and a peer it is open to (`entire-cluster`, an address range, or a
/// representative peer such as `[all namespaces]/[pod with {k8s-app=kube-dns}]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExposureLine {
    pub src: String,
    pub dst: String,
    pub conn: String,
}

/// A connection set whose named ports could not be resolved (the other end is not a known workload):
/// netpol-analyzer prints them by name (`TCP http,local-dns`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Conn {
    ports: PortSet,
    named: BTreeSet<(usize, String)>,
}

fn proto_slot(p: Protocol) -> usize {
    PROTOCOLS.iter().position(|q| *q == p).unwrap_or(0)
}

impl Conn {
    fn is_empty(&self) -> bool {
        self.ports.is_empty() && self.named.is_empty()
    }

    fn union(&mut self, other: &Conn) {
        self.ports = self.ports.union(&other.ports);
        self.named.extend(other.named.iter().cloned());
    }

    fn contained_in(&self, other: &Conn) -> bool {
        other.ports.is_all() || (self.ports.subtract(&other.ports).is_empty() && self.named.is_subset(&other.named))
    }
}

impl fmt::Display for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.named.is_empty() || self.ports.is_all() {
            return self.ports.fmt(f);
        }
        let mut parts = Vec::new();
        for (i, p) in PROTOCOLS.iter().enumerate() {
            let mut items: Vec<String> = self
                .ports
                .ranges(*p)
                .iter()
                .map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") })
                .collect();
            items.extend(self.named.iter().filter(|(s, _)| *s == i).map(|(_, n)| n.clone()));
            if !items.is_empty() {
                parts.push(format!("{p} {}", items.join(",")));
            }
        }
        f.write_str(&parts.join(","))
    }
}

/// The ports of a rule (raw, as written) toward `dest`; names stay names without a destination.
fn rule_conn(ports: Option<&Vec<NetworkPolicyPort>>, dest: Option<&Workload>) -> Conn {
    let mut out = Conn::default();
    let Some(entries) = ports.filter(|p| !p.is_empty()) else {
        out.ports = PortSet::all();
        return out;
    };
    for e in entries {
        let protocol: Protocol = e.protocol.as_deref().unwrap_or("TCP").parse().unwrap_or(Protocol::Tcp);
        match &e.port {
            None => out.ports.add(protocol, 1, 65535),
            Some(IntOrString::Int(n)) => {
                let end = e.end_port.unwrap_or(*n);
                if let (Ok(a), Ok(b)) = (u16::try_from(*n), u16::try_from(end)) {
                    out.ports.add(protocol, a, b);
                }
            }
            Some(IntOrString::String(name)) => match dest {
                Some(d) => {
                    if let Some(cp) = d.ports.iter().find(|p| p.name.as_deref() == Some(name.as_str()))
                        && cp.protocol == protocol
                    {
                        out.ports.add(protocol, cp.port, cp.port);
                    }
                }
                None => {
                    out.named.insert((proto_slot(protocol), name.clone()));
                }
            },
        }
    }
    out
}

/// One requirement of a selector, as netpol-analyzer prints it: `k=v` for matchLabels,
/// `{Key:k,Operator:In,Values:[a b],}` for a matchExpression (values sorted).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Requirement {
    key: String,
    operator: String,
    values: Vec<String>,
    /// From matchLabels (printed `k=v`).
    label: bool,
}

impl Requirement {
    fn matches(&self, labels: &Labels) -> bool {
        let v = labels.get(&self.key);
        match self.operator.as_str() {
            "In" => v.is_some_and(|v| self.values.contains(v)),
            "NotIn" => v.is_none_or(|v| !self.values.contains(v)),
            "Exists" => v.is_some(),
            "DoesNotExist" => v.is_none(),
            _ => false,
        }
    }

    /// What it requires, whichever way it is written (`k=v` and `k In [v]` are the same).
    fn meaning(&self) -> (String, String, Vec<String>) {
        (self.key.clone(), self.operator.clone(), self.values.clone())
    }

    fn unusual(&self) -> bool {
        matches!(self.operator.as_str(), "NotIn" | "Exists" | "DoesNotExist")
    }
}

/// A selector as a sorted set of requirements.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
struct Selector(Vec<Requirement>);

impl Selector {
    fn of(sel: &LabelSelector) -> Selector {
        let mut reqs: Vec<Requirement> = sel
            .match_labels
            .iter()
            .flatten()
            .map(|(k, v)| Requirement { key: k.clone(), operator: "In".into(), values: vec![v.clone()], label: true })
            .collect();
        for e in sel.match_expressions.iter().flatten() {
            let mut values = e.values.clone().unwrap_or_default();
            values.sort();
            reqs.push(Requirement { key: e.key.clone(), operator: e.operator.clone(), values, label: false });
        }
        reqs.sort();
        reqs.dedup();
        Selector(reqs)
    }

    fn namespace(name: &str) -> Selector {
        Selector(vec![Requirement {
            key: NAMESPACE_NAME_LABEL.into(),
            operator: "In".into(),
            values: vec![name.into()],
            label: true,
        }])
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn matches(&self, labels: &Labels) -> bool {
        self.0.iter().all(|r| r.matches(labels))
    }

    /// Whether every pod this selector may stand for is also selected by `wider` (its requirements are a
    /// subset of ours, compared as written).
    fn within(&self, wider: &Selector) -> bool {
        let ours: BTreeSet<_> = self.0.iter().map(Requirement::meaning).collect();
        wider.0.iter().all(|r| ours.contains(&r.meaning()))
    }

    fn text(&self) -> String {
        let labels: Vec<String> =
            self.0.iter().filter(|r| r.label).map(|r| format!("{}={}", r.key, r.values[0])).collect();
        let mut exprs: Vec<String> = self
            .0
            .iter()
            .filter(|r| !r.label)
            .map(|r| format!("{{Key:{},Operator:{},Values:[{}],}}", r.key, r.operator, r.values.join(" ")))
            .collect();
        exprs.sort();
        labels.into_iter().chain(exprs).collect::<Vec<_>>().join(",")
    }
}

/// A peer some policy rule admits, by its selectors (the policy's own namespace already made a selector).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Representative {
    namespaces: Selector,
    pods: Selector,
}

impl Representative {
    fn of(peer: &NetworkPolicyPeer, policy_ns: &str) -> Option<Representative> {
        if peer.ip_block.is_some() {
            return None;
        }
        let namespaces = match &peer.namespace_selector {
            None => Selector::namespace(policy_ns),
            Some(s) => Selector::of(s),
        };
        let pods = peer.pod_selector.as_ref().map(Selector::of).unwrap_or_default();
        Some(Representative { namespaces, pods })
    }

    /// Any pod of any namespace: that is the entire cluster, not a representative.
    fn is_entire_cluster(&self) -> bool {
        self.namespaces.is_empty() && self.pods.is_empty()
    }

    /// Whether the rule peer `wider` admits every pod this representative stands for.
    fn within(&self, wider: &Representative) -> bool {
        self.namespaces.within(&wider.namespaces) && self.pods.within(&wider.pods)
    }

    /// A workload of the manifests stands for it: both selectors are plain labels (no NotIn, Exists or
    /// DoesNotExist), neither selects everything, and the workload and its namespace match them.
    fn stood_for_by(&self, model: &Model, w: &Workload) -> bool {
        !self.namespaces.is_empty()
            && !self.pods.is_empty()
            && !self.namespaces.0.iter().chain(&self.pods.0).any(Requirement::unusual)
            && self.pods.matches(&w.labels)
            && self.namespaces.matches(&model.namespace_labels(&w.namespace))
    }
}

impl fmt::Display for Representative {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = &self.namespaces.0;
        if ns.len() == 1 && ns[0].label && ns[0].key == NAMESPACE_NAME_LABEL {
            f.write_str(&ns[0].values[0])?;
        } else if ns.is_empty() {
            f.write_str("[all namespaces]")?;
        } else {
            write!(f, "[namespace with {{{}}}]", self.namespaces.text())?;
        }
        if self.pods.is_empty() {
            f.write_str("/[all pods]")
        } else {
            write!(f, "/[pod with {{{}}}]", self.pods.text())
        }
    }
}

/// A rule as written: its peers (`None`: everyone) and its ports (`None`: every port).
type RawRule<'p> = (Option<&'p Vec<NetworkPolicyPeer>>, Option<&'p Vec<NetworkPolicyPort>>);

fn rule_peers(np: &k8s_openapi::api::networking::v1::NetworkPolicy, d: Direction) -> Vec<RawRule<'_>> {
    let Some(spec) = &np.spec else { return Vec::new() };
    match d {
        Direction::Ingress => spec.ingress.iter().flatten().map(|r| (r.from.as_ref(), r.ports.as_ref())).collect(),
        Direction::Egress => spec.egress.iter().flatten().map(|r| (r.to.as_ref(), r.ports.as_ref())).collect(),
    }
}

/// Whether a workload is named by one of `names` (`name` in any namespace, or `namespace/name`).
pub fn names_workload(names: &[String], w: &Workload) -> bool {
    names.iter().any(|n| *n == w.name || *n == format!("{}/{}", w.namespace, w.name))
}

/// The list with the focus and exposure options applied.
pub fn list(model: &Model, options: &Options) -> Listing {
    let mut warnings = Vec::new();
    let focus = &options.focus_workloads;
    let mut peers = options.focus_peers.clone();
    if focus.is_empty() && !peers.is_empty() {
        warnings.push("--focus-workload-peer is ignored without --focus-workload".to_owned());
        peers.clear();
    }
    let mut exposure = options.exposure;
    if exposure && !focus.is_empty() && !peers.is_empty() {
        warnings.push("exposure analysis is off with both --focus-workload and --focus-workload-peer".to_owned());
        exposure = false;
    }
    warnings.extend(crate::connlist::warnings(model));
    if exposure && !model.tier_policies.is_empty() {
        warnings.push(
            "exposure analysis covers NetworkPolicies only: what AdminNetworkPolicies, BaselineAdminNetworkPolicies and ClusterNetworkPolicies leave open is not in the exposure section (the connections above include them)".to_owned(),
        );
    }
    let by_name: HashMap<String, &Workload> = model.workloads.iter().map(|w| (w.to_string(), w)).collect();
    let is_focus = |name: &str| focus.is_empty() || by_name.get(name).is_some_and(|w| names_workload(focus, w));
    let is_peer = |name: &str| by_name.get(name).is_some_and(|w| names_workload(&peers, w));
    let missing = |names: &[String]| !names.is_empty() && !model.workloads.iter().any(|w| names_workload(names, w));
    if missing(focus) || missing(&peers) {
        let which = if missing(focus) { focus } else { &peers };
        warnings.push(format!("no workload named {} in the manifests: nothing to list", which.join(", ")));
        return Listing { connections: Vec::new(), exposure: exposure.then(Exposure::default), warnings };
    }
    let connections: Vec<Connection> = connlist(model)
        .into_iter()
        .filter(|c| {
            if peers.is_empty() {
                is_focus(&c.src) || is_focus(&c.dst)
            } else {
                (is_focus(&c.src) && is_peer(&c.dst)) || (is_focus(&c.dst) && is_peer(&c.src))
            }
        })
        .collect();
    let exposure =
        exposure.then(|| analyse(model, &connections, &|w: &Workload| focus.is_empty() || names_workload(focus, w)));
    Listing { connections, exposure, warnings }
}

fn analyse(model: &Model, connections: &[Connection], in_focus: &dyn Fn(&Workload) -> bool) -> Exposure {
    let analysis = Analysis::new(model);
    // Every representative peer of every rule, once; those a workload of the manifests stands for are dropped.
    let mut reps: BTreeSet<Representative> = BTreeSet::new();
    for (_, np) in &model.policies {
        let ns = palisade_engine::model::namespace_of(&np.metadata);
        for d in [Direction::Ingress, Direction::Egress] {
            for (peers, _) in rule_peers(np, d) {
                reps.extend(
                    peers
                        .into_iter()
                        .flatten()
                        .filter_map(|p| Representative::of(p, ns))
                        .filter(|r| !r.is_entire_cluster()),
                );
            }
        }
    }
    reps.retain(|r| !model.workloads.iter().any(|w| r.stood_for_by(model, w)));

    let mut lines: [BTreeMap<String, Vec<(String, String)>>; 2] = [BTreeMap::new(), BTreeMap::new()];
    let mut unprotected = Vec::new();
    for (wi, w) in model.workloads.iter().enumerate() {
        if !in_focus(w) {
            continue;
        }
        let name = w.to_string();
        for (slot, d) in [(0, Direction::Egress), (1, Direction::Ingress)] {
            let selecting = &analysis.selecting[wi][if d == Direction::Ingress { 0 } else { 1 }];
            if selecting.is_empty() {
                unprotected.push((name.clone(), if d == Direction::Ingress { "Ingress" } else { "Egress" }));
                lines[slot].entry(name.clone()).or_default().push(("entire-cluster".into(), "All Connections".into()));
                continue;
            }
            // Named ports resolve on the destination: the workload itself for ingress, unknown for egress.
            let dest = (d == Direction::Ingress).then_some(w);
            let mut entire = Conn::default();
            let mut rules: Vec<(Vec<Representative>, Conn)> = Vec::new();
            for &pi in selecting {
                let (_, np) = &model.policies[pi];
                let ns = palisade_engine::model::namespace_of(&np.metadata);
                for (peers, ports) in rule_peers(np, d) {
                    let conn = rule_conn(ports, dest);
                    let peers: Vec<Representative> = match peers.filter(|p| !p.is_empty()) {
                        None => {
                            entire.union(&conn);
                            continue;
                        }
                        Some(ps) => ps.iter().filter_map(|p| Representative::of(p, ns)).collect(),
                    };
                    if peers.iter().any(Representative::is_entire_cluster) {
                        entire.union(&conn);
                    }
                    rules.push((peers, conn));
                }
            }
            let entry = lines[slot].entry(name.clone()).or_default();
            if !entire.is_empty() {
                entry.push(("entire-cluster".into(), entire.to_string()));
            }
            for r in &reps {
                let mut conn = Conn::default();
                for (peers, c) in &rules {
                    if peers.iter().any(|p| r.within(p)) {
                        conn.union(c);
                    }
                }
                if conn.is_empty() || (!entire.is_empty() && conn.contained_in(&entire)) {
                    continue;
                }
                entry.push((r.to_string(), conn.to_string()));
            }
        }
    }
    // A workload exposed in either direction also lists its connections with outside addresses, both ways.
    let exposed: BTreeSet<String> =
        lines.iter().flat_map(|m| m.iter().filter(|(_, v)| !v.is_empty()).map(|(k, _)| k.clone())).collect();
    for c in connections {
        if c.dst_range.is_some() && exposed.contains(&c.src) {
            lines[0].entry(c.src.clone()).or_default().push((c.dst.clone(), c.conn.clone()));
        }
        if c.src_range.is_some() && exposed.contains(&c.dst) {
            lines[1].entry(c.dst.clone()).or_default().push((c.src.clone(), c.conn.clone()));
        }
    }
    let mut out = Exposure::default();
    for (slot, m) in lines.into_iter().enumerate() {
        for (w, mut peers) in m {
            peers.sort();
            peers.dedup();
            for (p, conn) in peers {
                let line = if slot == 0 {
                    ExposureLine { src: w.clone(), dst: p, conn }
                } else {
                    ExposureLine { src: p, dst: w.clone(), conn }
                };
                if slot == 0 { out.egress.push(line) } else { out.ingress.push(line) }
            }
        }
    }
    unprotected.sort();
    out.unprotected = unprotected;
    out
}

/// The txt form: the list, then (with exposure) netpol-analyzer's exposure sections.
pub fn render_txt(listing: &Listing) -> String {
    let mut out = crate::connlist::render_txt(&listing.connections);
    let Some(e) = &listing.exposure else { return out };
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str("Exposure Analysis Result:\n");
    let width = e.egress.iter().map(|l| l.src.len()).chain(e.ingress.iter().map(|l| l.dst.len())).max().unwrap_or(0);
    let mut sections: Vec<String> = Vec::new();
    if !e.egress.is_empty() {
        let body: String =
            e.egress.iter().map(|l| format!("{:<width$} \t=> \t{} : {}\n", l.src, l.dst, l.conn)).collect();
        sections.push(format!("Egress Exposure:\n{body}"));
    }
    if !e.ingress.is_empty() {
        let body: String =
            e.ingress.iter().map(|l| format!("{:<width$} \t<= \t{} : {}\n", l.dst, l.src, l.conn)).collect();
        sections.push(format!("Ingress Exposure:\n{body}"));
    }
    if !e.unprotected.is_empty() {
        let body: String = e.unprotected.iter().map(|(w, d)| format!("{w} is not protected on {d}\n")).collect();
        sections.push(format!("Workloads not protected by network policies:\n{body}"));
    }
    out.push_str(&sections.join("\n"));
    out
}
