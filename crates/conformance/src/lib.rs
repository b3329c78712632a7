//! Conformance cases (`conformance/FORMAT.md`) and one runner for every backend: the engine answers from the
//! model, the sandbox answers with real packets. The runner never does I/O itself; reading case files and
//! cluster files is the caller's job.

use std::fmt;
use std::net::IpAddr;

use palisade_engine::cnp::validate::validate_cluster_object;
use palisade_engine::cnp::{ClusterKind, ClusterObject};
use palisade_engine::load::{Loaded, Origin, load_value};
use palisade_engine::validate::validate_network_policy;
use palisade_engine::{Connection, Endpoint, IpFamily, Kind, Object, Protocol};
use serde::Deserialize;
use serde_json::Value;

pub mod engine;
pub mod matrix;

use matrix::{Cell, ExpectedMatrix};

/// A problem reading a case or running it against a backend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CaseError(pub String);

#[derive(Debug, Clone, Deserialize)]
struct RawCase {
    id: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    description: String,
    cluster: Value,
    #[serde(default)]
    steps: Vec<RawStep>,
}

#[derive(Debug, Clone, Deserialize)]
struct RawStep {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    apply: Vec<Value>,
    #[serde(default)]
    delete: Vec<DeleteRef>,
    #[serde(default)]
    expect: Vec<RawExpect>,
}

/// An object a step removes.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct DeleteRef {
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawExpect {
    protocol: Option<String>,
    port: Option<u16>,
    matrix: Option<String>,
    #[serde(default)]
    connections: Vec<RawConnection>,
    ip_family: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct RawConnection {
    from: String,
    to: String,
    protocol: String,
    port: u16,
    allowed: bool,
}

/// Where a case's cluster comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterSource {
    /// `clusters/NAME.yaml` beside the suite folder.
    Named(String),
    Inline(Vec<Object>),
}

/// One expectation: a probe and whether it must connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    pub connection: Connection,
    pub allowed: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub description: Option<String>,
    pub apply: Vec<Object>,
    pub delete: Vec<(Kind, String, String)>,
    /// ClusterNetworkPolicies (and the other cluster-scoped kinds) to create or replace, after `apply`.
    pub apply_cluster: Vec<ClusterObject>,
    /// Cluster-scoped objects to remove, after `delete`.
    pub delete_cluster: Vec<(ClusterKind, String)>,
    pub expect: Vec<Expectation>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub id: String,
    pub source: String,
    pub description: String,
    pub cluster: ClusterSource,
    /// Cluster-scoped objects (Nodes, tier policies) of an inline cluster.
    pub cluster_objects: Vec<ClusterObject>,
    pub steps: Vec<Step>,
}

/// Loads manifests embedded in a case, rejecting anything the apiserver would reject (and, for the
/// cluster-scoped kinds, what Palisade's stricter checks reject).
fn objects(origin: &str, docs: Vec<Value>) -> Result<(Vec<Object>, Vec<ClusterObject>), CaseError> {
    let mut loaded = Loaded::default();
    for (i, d) in docs.into_iter().enumerate() {
        load_value(Origin { source: origin.to_owned(), document: i + 1, item: None }, d, &mut loaded);
    }
    if let Some(e) = loaded.errors.first() {
        return Err(CaseError(e.to_string()));
    }
    let mut out = Vec::new();
    for o in loaded.objects {
        if let Object::NetworkPolicy(p) = &o.value
            && let Some(e) = validate_network_policy(p).first()
        {
            return Err(CaseError(format!("{}: NetworkPolicy {}: {e}", o.origin, o.value.display_name())));
        }
        out.push(o.value);
    }
    let mut cluster = Vec::new();
    for o in loaded.cluster_objects {
        if let Some(e) = validate_cluster_object(&o.value).first() {
            return Err(CaseError(format!("{}: {} {}: {e}", o.origin, o.value.type_meta().1, o.value.name())));
        }
        cluster.push(o.value);
    }
    Ok((out, cluster))
}

fn endpoint(s: &str) -> Result<Endpoint, CaseError> {
    Endpoint::parse(s).map_err(CaseError)
}

fn protocol(s: &str) -> Result<Protocol, CaseError> {
    s.parse().map_err(CaseError)
}

impl Case {
    /// Parses a case file. `source` names it in errors.
    pub fn parse(source: &str, text: &str) -> Result<Case, CaseError> {
        // YAML 1.2 booleans only: a namespace named `y` or `n` is a string, as the apiserver reads it.
        let mut options = serde_saphyr::Options::default();
        options.strict_booleans = true;
        let raw: RawCase = serde_saphyr::from_str_with_options(text, options)
            .map_err(|e| CaseError(format!("{source}: not a conformance case: {e}")))?;
        let mut cluster_objects = Vec::new();
        let cluster = match raw.cluster {
            Value::String(name) => ClusterSource::Named(name),
            Value::Array(items) => {
                let (objects, cluster) = objects(&format!("{source} cluster"), items)?;
                cluster_objects = cluster;
                ClusterSource::Inline(objects)
            }
            _ => return Err(CaseError(format!("{source}: cluster: expected a name or a list of manifests"))),
        };
        let mut steps = Vec::new();
        for (si, s) in raw.steps.into_iter().enumerate() {
            let at = format!("{source} steps[{si}]");
            let (apply, apply_cluster) = objects(&format!("{at}.apply"), s.apply)?;
            let mut delete = Vec::new();
            let mut delete_cluster = Vec::new();
            for d in s.delete {
                if let Ok(kind) = d.kind.parse::<ClusterKind>() {
                    delete_cluster.push((kind, d.name));
                    continue;
                }
                let kind: Kind = d.kind.parse().map_err(|e| CaseError(format!("{at}.delete: {e}")))?;
                delete.push((kind, d.namespace.unwrap_or_else(|| "default".to_owned()), d.name));
            }
            let mut expect = Vec::new();
            for (ei, e) in s.expect.into_iter().enumerate() {
                let eat = format!("{at}.expect[{ei}]");
                let family = match e.ip_family.as_deref() {
                    None | Some("IPv4") => IpFamily::V4,
                    Some("IPv6") => IpFamily::V6,
                    Some(other) => return Err(CaseError(format!("{eat}.ipFamily: unknown family {other:?}"))),
                };
                if let Some(text) = &e.matrix {
                    let (Some(p), Some(port)) = (&e.protocol, e.port) else {
                        return Err(CaseError(format!("{eat}: a matrix needs protocol and port")));
                    };
                    let proto = protocol(p)?;
                    let m = ExpectedMatrix::parse(text).map_err(|m| CaseError(format!("{eat}.matrix: {m}")))?;
                    for (from, cells) in &m.rows {
                        for (to, cell) in m.columns.iter().zip(cells) {
                            let allowed = match cell {
                                Cell::Allowed => true,
                                Cell::Blocked => false,
                                Cell::Unchecked => continue,
                            };
                            let connection =
                                Connection::new(endpoint(from)?, endpoint(to)?, proto, port).with_family(family);
                            expect.push(Expectation { connection, allowed });
                        }
                    }
                }
                for c in e.connections {
                    let conn = Connection::new(endpoint(&c.from)?, endpoint(&c.to)?, protocol(&c.protocol)?, c.port);
                    let conn = if matches!((&conn.from, &conn.to), (Endpoint::Pod(_), Endpoint::Pod(_))) {
                        conn.with_family(family)
                    } else {
                        conn
                    };
                    expect.push(Expectation { connection: conn, allowed: c.allowed });
                }
            }
            steps.push(Step { description: s.description, apply, delete, apply_cluster, delete_cluster, expect });
        }
        Ok(Case { id: raw.id, source: raw.source, description: raw.description, cluster, cluster_objects, steps })
    }

    /// Hosts outside the cluster (bare IP endpoints) the case probes, with the ports each must serve.
    pub fn external_hosts(&self) -> Vec<ExternalHost> {
        let mut out: Vec<ExternalHost> = Vec::new();
        for e in self.steps.iter().flat_map(|s| &s.expect) {
            for (end, serves) in [(&e.connection.from, false), (&e.connection.to, true)] {
                let Endpoint::Ip(ip) = end else { continue };
                let i = match out.iter().position(|h| h.ip == *ip) {
                    Some(i) => i,
                    None => {
                        out.push(ExternalHost { ip: *ip, ports: Vec::new() });
                        out.len() - 1
                    }
                };
                let p = (e.connection.protocol, e.connection.port);
                if serves && !out[i].ports.contains(&p) {
                    out[i].ports.push(p);
                }
            }
        }
        out
    }
}

/// A host outside the cluster that a case talks to, and what it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalHost {
    pub ip: IpAddr,
    pub ports: Vec<(Protocol, u16)>,
}

impl ExternalHost {
    /// Reads the command-line form `IP[=PROTO/PORT,...]` (`192.0.2.1=TCP/80,UDP/53`).
    pub fn parse(s: &str) -> Result<ExternalHost, String> {
        let (ip, ports) = s.split_once('=').unwrap_or((s, ""));
        let ip: IpAddr = ip.parse().map_err(|_| format!("--external {s:?}: {ip:?} is not an IP address"))?;
        let ports = ports
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (proto, port) =
                    p.split_once('/').ok_or_else(|| format!("--external {s:?}: expected PROTO/PORT, got {p:?}"))?;
                let proto: Protocol = proto.parse().map_err(|e| format!("--external {s:?}: {e}"))?;
                let port: u16 = port.parse().map_err(|_| format!("--external {s:?}: bad port {port:?}"))?;
                Ok((proto, port))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(ExternalHost { ip, ports })
    }

    /// The command-line form [`ExternalHost::parse`] reads.
    pub fn arg(&self) -> String {
        let ports: Vec<String> = self.ports.iter().map(|(p, n)| format!("{p}/{n}")).collect();
        if ports.is_empty() { self.ip.to_string() } else { format!("{}={}", self.ip, ports.join(",")) }
    }
}

/// Parses a cluster file (`clusters/NAME.yaml`): Namespaces and Pods.
pub fn parse_cluster(source: &str, text: &str) -> Result<Vec<Object>, CaseError> {
    let loaded = palisade_engine::load_str(source, text);
    if let Some(e) = loaded.errors.first() {
        return Err(CaseError(e.to_string()));
    }
    Ok(loaded.objects.into_iter().map(|o| o.value).collect())
}

/// Parses the cluster-scoped objects of a cluster file (Nodes, tier policies); [`parse_cluster`] reads the rest.
pub fn parse_cluster_objects(source: &str, text: &str) -> Result<Vec<ClusterObject>, CaseError> {
    let loaded = palisade_engine::load_str(source, text);
    if let Some(e) = loaded.errors.first() {
        return Err(CaseError(e.to_string()));
    }
    Ok(loaded.cluster_objects.into_iter().map(|o| o.value).collect())
}

/// What a case runs against.
pub trait Backend {
    /// Starts over with exactly these objects (and the external hosts the case probes).
    fn reset(&mut self, objects: &[Object], external_hosts: &[ExternalHost]) -> Result<(), CaseError>;
    fn apply(&mut self, objects: &[Object]) -> Result<(), CaseError>;
    fn delete(&mut self, kind: Kind, namespace: &str, name: &str) -> Result<(), CaseError>;
    /// Whether each connection succeeds, in order.
    fn probe(&mut self, connections: &[Connection]) -> Result<Vec<bool>, CaseError>;

    /// Creates or replaces cluster-scoped objects: tier policies and Nodes (called after `reset` with the
    /// cluster's own, and by steps). A backend that cannot enforce tier policies refuses them; Nodes alone
    /// are facts it may ignore.
    fn apply_cluster(&mut self, objects: &[ClusterObject]) -> Result<(), CaseError> {
        match objects.iter().find(|o| !matches!(o, ClusterObject::Node(_))) {
            Some(o) => Err(CaseError(format!("{} {}: this backend does not enforce it", o.type_meta().1, o.name()))),
            None => Ok(()),
        }
    }

    /// Removes a cluster-scoped object.
    fn delete_cluster(&mut self, kind: ClusterKind, name: &str) -> Result<(), CaseError> {
        match kind {
            ClusterKind::Node => Ok(()),
            _ => Err(CaseError(format!("{kind:?} {name}: this backend does not enforce it"))),
        }
    }
}

/// A probe whose outcome differs from the case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub step: usize,
    pub connection: Connection,
    pub expected: bool,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = |b: bool| if b { "allowed (.)" } else { "blocked (X)" };
        write!(
            f,
            "step {}: {} {}: expected {}, got {}",
            self.step,
            self.connection,
            self.connection.family,
            word(self.expected),
            word(!self.expected)
        )
    }
}

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub id: String,
    pub probes: usize,
    pub mismatches: Vec<Mismatch>,
    pub error: Option<String>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty() && self.error.is_none()
    }
}

/// Runs every step of a case against a backend.
pub fn run_case(case: &Case, cluster: &[Object], backend: &mut dyn Backend) -> Outcome {
    run_case_with(case, cluster, &[], backend)
}

/// Runs every step of a case against a backend, with the cluster-scoped objects of its cluster file.
pub fn run_case_with(
    case: &Case,
    cluster: &[Object],
    cluster_objects: &[ClusterObject],
    backend: &mut dyn Backend,
) -> Outcome {
    let mut outcome = Outcome { id: case.id.clone(), probes: 0, mismatches: Vec::new(), error: None };
    if let Err(e) = run_steps(case, cluster, cluster_objects, backend, &mut outcome) {
        outcome.error = Some(e.0);
    }
    outcome
}

fn run_steps(
    case: &Case,
    cluster: &[Object],
    cluster_objects: &[ClusterObject],
    backend: &mut dyn Backend,
    out: &mut Outcome,
) -> Result<(), CaseError> {
    backend.reset(cluster, &case.external_hosts())?;
    let initial: Vec<ClusterObject> = cluster_objects.iter().chain(&case.cluster_objects).cloned().collect();
    if !initial.is_empty() {
        backend.apply_cluster(&initial)?;
    }
    for (i, step) in case.steps.iter().enumerate() {
        for (kind, ns, name) in &step.delete {
            backend.delete(*kind, ns, name)?;
        }
        for (kind, name) in &step.delete_cluster {
            backend.delete_cluster(*kind, name)?;
        }
        backend.apply(&step.apply)?;
        if !step.apply_cluster.is_empty() {
            backend.apply_cluster(&step.apply_cluster)?;
        }
        let conns: Vec<Connection> = step.expect.iter().map(|e| e.connection.clone()).collect();
        let got = backend.probe(&conns)?;
        out.probes += conns.len();
        for (e, g) in step.expect.iter().zip(got) {
            if e.allowed != g {
                out.mismatches.push(Mismatch { step: i, connection: e.connection.clone(), expected: e.allowed });
            }
        }
    }
    Ok(())
}
