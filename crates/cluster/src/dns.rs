//! Cluster DNS for the sandbox: answers Kubernetes service/pod names (per the Kubernetes DNS spec, as CoreDNS's
//! kubernetes plugin does) authoritatively from an in-memory view the control plane replaces on every change.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, SOA, SRV, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

/// TTL of every record, and the SOA minimum (negative-caching TTL), as CoreDNS's default `ttl 5`.
pub const TTL: u32 = 5;
/// Default cluster domain.
pub const DEFAULT_DOMAIN: &str = "cluster.local";
/// Schema version served in the `dns-version.<domain>` TXT record (the version CoreDNS reports).
const SCHEMA_VERSION: &str = "1.1.0";
/// How long an idle TCP connection is kept open.
const TCP_TIMEOUT: Duration = Duration::from_secs(10);
/// Per-connection queue of outgoing TCP responses.
const TCP_RESPONSE_BUFFER: usize = 32;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The cluster domain is not a valid DNS name.
    #[error("invalid cluster domain {domain:?}: {reason}")]
    InvalidDomain {
        /// The domain as given.
        domain: String,
        /// Why it was rejected.
        reason: String,
    },
}

/// A Service as DNS sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRecord {
    /// Namespace of the Service.
    pub namespace: String,
    /// Name of the Service.
    pub name: String,
    /// `spec.clusterIPs`; empty for a headless Service (`clusterIP: None`).
    pub cluster_ips: Vec<IpAddr>,
    /// The *ready* endpoints (the caller filters on readiness; every endpoint given here is served).
    pub endpoints: Vec<EndpointRecord>,
    /// The Service's ports; only named ones get `_<port>._<proto>` SRV records.
    pub ports: Vec<PortRecord>,
}

/// One ready endpoint address of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRecord {
    /// The endpoint address.
    pub ip: IpAddr,
    /// `hostname` of the endpoint (StatefulSet pods behind a headless Service).
    pub hostname: Option<String>,
}

/// One port of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRecord {
    /// Port name; empty for an unnamed port.
    pub name: String,
    /// `"TCP"`, `"UDP"` or `"SCTP"`.
    pub protocol: String,
    /// Port number.
    pub port: u16,
}

/// A Pod address, for `<a-b-c-d>.<ns>.pod.<domain>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRecord {
    /// Namespace of the Pod.
    pub namespace: String,
    /// One of the Pod's IPs.
    pub ip: IpAddr,
}

/// The outcome of one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The name has records of the asked type (owner names as asked).
    Records(Vec<Record>),
    /// The name exists but has no records of the asked type (NOERROR, empty answer).
    NoData,
    /// The name does not exist under the cluster domain.
    NxDomain,
    /// The name is outside the cluster domain (or the question is not one we serve).
    Refused,
}

/// Full result of a lookup, including additional-section records (A/AAAA of SRV targets).
#[derive(Debug, Clone, Default)]
struct Lookup {
    code: Code,
    answers: Vec<Record>,
    additionals: Vec<Record>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Code {
    #[default]
    Refused,
    Records,
    NoData,
    NxDomain,
}

/// Shared, cheaply clonable view the control plane updates whenever Services, EndpointSlices or Pods change.
#[derive(Clone)]
pub struct Records {
    domain: Name,
    zone: Arc<RwLock<Arc<Zone>>>,
}

/// One immutable snapshot of everything served; swapped whole on `replace` so readers never see half an update.
#[derive(Debug)]
struct Zone {
    soa: Record,
    /// Lower-cased owner name → records (owner names lower-cased too).
    nodes: HashMap<Name, Vec<Record>>,
    /// Names that exist only because names below them do (empty non-terminals): NODATA, never NXDOMAIN (RFC 8020).
    ents: HashSet<Name>,
    /// Lower-cased namespace → pod IPs, for the `pod` subdomain (answered only for existing pods, like
    /// CoreDNS's `pods verified`).
    pods: HashMap<String, HashSet<IpAddr>>,
}

impl Default for Records {
    fn default() -> Self {
        Records::new(DEFAULT_DOMAIN)
    }
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records").field("domain", &self.domain.to_ascii()).finish_non_exhaustive()
    }
}

impl Records {
    /// An empty view for `domain` (e.g. `cluster.local`). An invalid domain falls back to `cluster.local`;
    /// use [`Records::try_new`] to be told instead.
    pub fn new(domain: &str) -> Records {
        Records::try_new(domain).or_else(|_| Records::try_new(DEFAULT_DOMAIN)).unwrap_or_else(|_| Records {
            // Unreachable in practice (the default parses); the root keeps this total without a panic.
            domain: Name::root(),
            zone: Arc::new(RwLock::new(Arc::new(Zone::build(&Name::root(), Vec::new(), Vec::new())))),
        })
    }

    /// An empty view for `domain`, or an error if `domain` is not a valid DNS name.
    pub fn try_new(domain: &str) -> Result<Records, DnsError> {
        let invalid = |reason: String| DnsError::InvalidDomain { domain: domain.to_string(), reason };
        let trimmed = domain.trim().trim_end_matches('.');
        if trimmed.is_empty() {
            return Err(invalid("empty".to_string()));
        }
        let mut name = Name::from_ascii(trimmed).map_err(|e| invalid(e.to_string()))?.to_lowercase();
        name.set_fqdn(true);
        let zone = Zone::build(&name, Vec::new(), Vec::new());
        Ok(Records { domain: name, zone: Arc::new(RwLock::new(Arc::new(zone))) })
    }

    /// The cluster domain, lower-case, fully qualified.
    pub fn domain(&self) -> &Name {
        &self.domain
    }

    /// Replaces everything at once (the control plane recomputes from its store).
    pub fn replace(&self, services: Vec<ServiceRecord>, pods: Vec<PodRecord>) {
        let zone = Arc::new(Zone::build(&self.domain, services, pods));
        // A poisoned lock only means another writer panicked mid-swap of an Arc; the value is still whole.
        let mut guard = self.zone.write().unwrap_or_else(|e| e.into_inner());
        *guard = zone;
    }

    /// The answer to one question, without sockets (unit tests, `palisade` tools).
    pub fn resolve(&self, name: &str, qtype: RecordType) -> Answer {
        let Ok(mut name) = Name::from_ascii(name) else {
            return Answer::Refused;
        };
        name.set_fqdn(true);
        let lookup = self.lookup(&name, qtype);
        match lookup.code {
            Code::Records => Answer::Records(lookup.answers),
            Code::NoData => Answer::NoData,
            Code::NxDomain => Answer::NxDomain,
            Code::Refused => Answer::Refused,
        }
    }

    /// The zone's SOA record (sent in the authority section of NXDOMAIN and NODATA answers).
    pub fn soa(&self) -> Record {
        self.snapshot().soa.clone()
    }

    fn snapshot(&self) -> Arc<Zone> {
        self.zone.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn lookup(&self, name: &Name, qtype: RecordType) -> Lookup {
        self.snapshot().lookup(&self.domain, name, qtype)
    }
}

/// Builds `<labels...>.<domain>`; `None` if a label is not valid in a DNS name (then that record is skipped).
fn child(domain: &Name, labels: &[&str]) -> Option<Name> {
    let mut prefix = Name::from_labels(labels.iter().map(|l| l.to_ascii_lowercase().into_bytes())).ok()?;
    prefix.set_fqdn(false);
    prefix.append_domain(domain).ok()
}

/// `10.0.0.1` → `10-0-0-1`, `fd00::1` → `fd00--1` (the form CoreDNS uses for endpoints without a hostname).
fn dashed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string().replace('.', "-"),
        IpAddr::V6(v6) => v6.to_string().replace(':', "-"),
    }
}

/// Parses a dashed address label back (`10-0-0-1`, `fd00--1`, or any other valid IPv6 spelling).
fn undashed(label: &str) -> Option<IpAddr> {
    if let Ok(v4) = label.replace('-', ".").parse::<Ipv4Addr>() {
        return Some(IpAddr::V4(v4));
    }
    label.replace('-', ":").parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

fn addr_record(name: Name, ip: IpAddr) -> Record {
    let data = match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    };
    Record::from_rdata(name, TTL, data)
}

fn matches(record: &Record, qtype: RecordType) -> bool {
    qtype == RecordType::ANY || record.record_type() == qtype
}

fn unix_serial() -> u32 {
    // CoreDNS uses the time of the last change as serial; wrap-around in 2106 is fine for serial arithmetic.
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as u32).unwrap_or(1)
}

impl Zone {
    fn build(domain: &Name, services: Vec<ServiceRecord>, pods: Vec<PodRecord>) -> Zone {
        let mut nodes: HashMap<Name, Vec<Record>> = HashMap::new();
        let mut add = |record: Record| {
            let list = nodes.entry(record.name.clone()).or_default();
            // The same address can come from two sources (dual slices, repeated endpoints): serve it once.
            if !list.contains(&record) {
                list.push(record);
            }
        };

        let soa_owner = domain.clone();
        let mname = child(domain, &["ns", "dns"]).unwrap_or_else(|| domain.clone());
        let rname = child(domain, &["hostmaster"]).unwrap_or_else(|| domain.clone());
        let soa = Record::from_rdata(
            soa_owner,
            TTL,
            RData::SOA(SOA::new(mname, rname, unix_serial(), 7200, 1800, 86400, TTL)),
        );
        add(soa.clone());
        if let Some(version) = child(domain, &["dns-version"]) {
            add(Record::from_rdata(version, TTL, RData::TXT(TXT::new(vec![SCHEMA_VERSION.to_string()]))));
        }

        let mut ents: HashSet<Name> = HashSet::new();
        for fixed in ["svc", "pod"] {
            if let Some(n) = child(domain, &[fixed]) {
                ents.insert(n);
            }
        }

        for svc in &services {
            let ns = svc.namespace.as_str();
            let Some(svc_name) = child(domain, &[svc.name.as_str(), ns, "svc"]) else { continue };
            if let Some(ns_name) = child(domain, &[ns, "svc"]) {
                // An existing namespace is a name that exists (NODATA), as in CoreDNS.
                ents.insert(ns_name);
            }
            let headless = svc.cluster_ips.is_empty();
            // (target name, its addresses) that SRV records point at.
            let mut targets: Vec<(Name, Vec<IpAddr>)> = Vec::new();
            if headless {
                let mut by_host: Vec<(Name, Vec<IpAddr>)> = Vec::new();
                for ep in &svc.endpoints {
                    add(addr_record(svc_name.clone(), ep.ip));
                    let host = ep.hostname.clone().filter(|h| !h.is_empty()).unwrap_or_else(|| dashed(ep.ip));
                    let Some(host_name) = child(domain, &[host.as_str(), svc.name.as_str(), ns, "svc"]) else {
                        continue;
                    };
                    add(addr_record(host_name.clone(), ep.ip));
                    match by_host.iter_mut().find(|(n, _)| *n == host_name) {
                        Some((_, ips)) => ips.push(ep.ip),
                        None => by_host.push((host_name, vec![ep.ip])),
                    }
                }
                targets = by_host;
            } else {
                for ip in &svc.cluster_ips {
                    add(addr_record(svc_name.clone(), *ip));
                }
                targets.push((svc_name.clone(), svc.cluster_ips.clone()));
            }
            if targets.is_empty() {
                // A headless Service without ready endpoints has no records at all: NXDOMAIN per the spec.
                continue;
            }
            let weight = u16::try_from(100 / targets.len()).unwrap_or(1).max(1);
            for port in &svc.ports {
                let proto = format!("_{}", port.protocol.to_ascii_lowercase());
                let named = (!port.name.is_empty())
                    .then(|| child(domain, &[&format!("_{}", port.name), &proto, &svc.name, ns, "svc"]));
                for (target, _) in &targets {
                    let srv = RData::SRV(SRV::new(0, weight, port.port, target.clone()));
                    // CoreDNS also answers SRV at the service name itself, one per port.
                    add(Record::from_rdata(svc_name.clone(), TTL, srv.clone()));
                    if let Some(Some(owner)) = &named {
                        add(Record::from_rdata(owner.clone(), TTL, srv));
                    }
                }
            }
        }

        let mut pod_map: HashMap<String, HashSet<IpAddr>> = HashMap::new();
        for pod in pods {
            let ns = pod.namespace.to_ascii_lowercase();
            if let Some(n) = child(domain, &[ns.as_str(), "pod"]) {
                ents.insert(n);
            }
            pod_map.entry(ns).or_default().insert(pod.ip);
        }

        // Every ancestor of an owner name, up to the domain, exists too.
        for name in nodes.keys() {
            let mut parent = name.base_name();
            while domain.zone_of(&parent) && parent.num_labels() > domain.num_labels() {
                ents.insert(parent.clone());
                parent = parent.base_name();
            }
        }

        Zone { soa, nodes, ents, pods: pod_map }
    }

    fn lookup(&self, domain: &Name, asked: &Name, qtype: RecordType) -> Lookup {
        let name = asked.to_lowercase();
        if !domain.zone_of(&name) {
            return Lookup::default();
        }
        if let Some(records) = self.nodes.get(&name) {
            let mut answers: Vec<Record> = records.iter().filter(|r| matches(r, qtype)).cloned().collect();
            if answers.is_empty() {
                return Lookup { code: Code::NoData, ..Lookup::default() };
            }
            let mut additionals = Vec::new();
            for answer in &answers {
                if let RData::SRV(srv) = &answer.data {
                    for extra in self.nodes.get(&srv.target).into_iter().flatten() {
                        let is_addr = matches!(extra.record_type(), RecordType::A | RecordType::AAAA);
                        if is_addr && !additionals.contains(extra) {
                            additionals.push(extra.clone());
                        }
                    }
                }
            }
            // Owner names echo the question's spelling: resolvers using 0x20 case randomisation compare it.
            for answer in &mut answers {
                answer.name = asked.clone();
            }
            return Lookup { code: Code::Records, answers, additionals };
        }
        if self.ents.contains(&name) {
            return Lookup { code: Code::NoData, ..Lookup::default() };
        }
        self.lookup_pod(domain, asked, &name, qtype)
    }

    /// `<dashed-ip>.<ns>.pod.<domain>`: answered only if a pod of that namespace has the address.
    fn lookup_pod(&self, domain: &Name, asked: &Name, name: &Name, qtype: RecordType) -> Lookup {
        let nxdomain = Lookup { code: Code::NxDomain, ..Lookup::default() };
        if usize::from(name.num_labels()) != usize::from(domain.num_labels()) + 3 {
            return nxdomain;
        }
        let labels: Vec<String> = name.iter().take(3).map(|l| String::from_utf8_lossy(l).into_owned()).collect();
        let [ip_label, ns, kind] = labels.as_slice() else { return nxdomain };
        if kind != "pod" {
            return nxdomain;
        }
        let Some(ip) = undashed(ip_label) else { return nxdomain };
        if !self.pods.get(ns.as_str()).is_some_and(|ips| ips.contains(&ip)) {
            return nxdomain;
        }
        let record = addr_record(asked.clone(), ip);
        if matches(&record, qtype) {
            Lookup { code: Code::Records, answers: vec![record], additionals: Vec::new() }
        } else {
            Lookup { code: Code::NoData, ..Lookup::default() }
        }
    }
}

/// hickory `RequestHandler` answering from a [`Records`] view.
struct Handler {
    records: Records,
}

impl Handler {
    /// A response with no records, or a SERVFAIL summary if even that could not be sent.
    async fn send_code<R: ResponseHandler>(
        request: &Request,
        edns: Option<&Edns>,
        code: ResponseCode,
        mut response_handle: R,
    ) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.response_code = code;
        let response = MessageResponseBuilder::new(&request.queries, edns).build_no_records(metadata);
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(_) => serve_failed(request),
        }
    }
}

fn serve_failed(request: &Request) -> ResponseInfo {
    let mut metadata = Metadata::new(request.metadata.id, MessageType::Response, request.metadata.op_code);
    metadata.response_code = ResponseCode::ServFail;
    ResponseInfo::from(Header { metadata, counts: HeaderCounts::default() })
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        // EDNS: answer with our own OPT (RFC 6891 requires one when the query had one), version 0 only.
        let response_edns = request.edns.as_ref().map(|req| {
            let mut edns = Edns::new();
            edns.set_max_payload(req.max_payload().max(512));
            edns.set_version(0);
            edns
        });
        if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            return Self::send_code(request, response_edns.as_ref(), ResponseCode::BADVERS, response_handle).await;
        }
        if request.metadata.message_type != MessageType::Query {
            return Self::send_code(request, response_edns.as_ref(), ResponseCode::FormErr, response_handle).await;
        }
        if request.metadata.op_code != OpCode::Query {
            return Self::send_code(request, response_edns.as_ref(), ResponseCode::NotImp, response_handle).await;
        }
        let Ok(info) = request.request_info() else {
            // Zero or several questions.
            return Self::send_code(request, response_edns.as_ref(), ResponseCode::FormErr, response_handle).await;
        };
        let query = info.query;
        if !matches!(query.query_class(), DNSClass::IN | DNSClass::ANY) {
            return Self::send_code(request, response_edns.as_ref(), ResponseCode::Refused, response_handle).await;
        }

        let lookup = self.records.lookup(query.original().name(), query.query_type());
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.response_code = match lookup.code {
            Code::Records | Code::NoData => ResponseCode::NoError,
            Code::NxDomain => ResponseCode::NXDomain,
            Code::Refused => ResponseCode::Refused,
        };
        // Authoritative for our zone only; a REFUSED name is not ours to vouch for.
        metadata.authoritative = lookup.code != Code::Refused;
        // Negative answers carry the SOA so resolvers cache them for its minimum TTL (RFC 2308).
        let soa: Vec<Record> = match lookup.code {
            Code::NoData | Code::NxDomain => vec![self.records.soa()],
            Code::Records | Code::Refused => Vec::new(),
        };
        let none: [&Record; 0] = [];
        let response = MessageResponseBuilder::new(&request.queries, response_edns.as_ref()).build(
            metadata,
            lookup.answers.iter(),
            none,
            soa.iter(),
            lookup.additionals.iter(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(_) => serve_failed(request),
        }
    }
}

/// Serves DNS on these sockets until they fail or the future is dropped.
pub async fn serve(udp: tokio::net::UdpSocket, tcp: tokio::net::TcpListener, records: Records) -> std::io::Result<()> {
    let mut server = Server::new(Handler { records });
    server.register_socket(udp);
    server.register_listener(tcp, TCP_TIMEOUT, TCP_RESPONSE_BUFFER);
    // Dropping this future drops `server`, whose JoinSet aborts the UDP/TCP tasks.
    server.block_until_done().await.map_err(|e| std::io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, Query};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// (name, type, expected records rendered as `type data`, or the expected answer kind).
    type ResolveCase = (&'static str, RecordType, Result<Vec<&'static str>, &'static str>);
    /// (name, type, rcode, AA flag, answers as `owner type data`, authority record types).
    type WireCase = (&'static str, RecordType, ResponseCode, bool, Vec<&'static str>, Vec<RecordType>);

    fn v4(s: &str) -> IpAddr {
        IpAddr::V4(s.parse().unwrap_or(Ipv4Addr::UNSPECIFIED))
    }
    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse().unwrap_or(Ipv6Addr::UNSPECIFIED))
    }
    fn port(name: &str, protocol: &str, port: u16) -> PortRecord {
        PortRecord { name: name.into(), protocol: protocol.into(), port }
    }

    fn fixture(domain: &str) -> Records {
        let records = Records::new(domain);
        let services = vec![
            ServiceRecord {
                namespace: "default".into(),
                name: "web".into(),
                cluster_ips: vec![v4("10.96.0.10"), v6("fd00:10:96::a")],
                endpoints: vec![EndpointRecord { ip: v4("10.244.1.5"), hostname: None }],
                ports: vec![port("http", "TCP", 80), port("", "TCP", 8080)],
            },
            ServiceRecord {
                namespace: "db".into(),
                name: "pg".into(),
                cluster_ips: vec![],
                endpoints: vec![
                    EndpointRecord { ip: v4("10.244.2.10"), hostname: Some("pg-0".into()) },
                    EndpointRecord { ip: v4("10.244.2.11"), hostname: Some("pg-1".into()) },
                    EndpointRecord { ip: v6("fd00::b"), hostname: None },
                ],
                ports: vec![port("postgres", "TCP", 5432)],
            },
            ServiceRecord {
                namespace: "db".into(),
                name: "empty".into(),
                cluster_ips: vec![],
                endpoints: vec![],
                ports: vec![port("x", "UDP", 1)],
            },
        ];
        let pods = vec![
            PodRecord { namespace: "default".into(), ip: v4("10.244.1.5") },
            PodRecord { namespace: "default".into(), ip: v6("fd00::1:5") },
        ];
        records.replace(services, pods);
        records
    }

    /// Renders an answer as sorted `type data` strings so cases can be written as plain data.
    fn render(answer: &Answer) -> Result<Vec<String>, String> {
        match answer {
            Answer::Records(records) => {
                let mut out: Vec<String> = records.iter().map(|r| format!("{} {}", r.record_type(), r.data)).collect();
                out.sort();
                Ok(out)
            }
            other => Err(format!("{other:?}")),
        }
    }

    #[test]
    fn resolve_cases() {
        use RecordType::*;
        let records = fixture("cluster.local");
        // (name, type, expected records or Err(answer kind))
        let cases: Vec<ResolveCase> = vec![
            ("web.default.svc.cluster.local", A, Ok(vec!["A 10.96.0.10"])),
            ("web.default.svc.cluster.local.", AAAA, Ok(vec!["AAAA fd00:10:96::a"])),
            ("WEB.Default.SVC.Cluster.Local", A, Ok(vec!["A 10.96.0.10"])),
            ("web.default.svc.cluster.local", MX, Err("NoData")),
            (
                "web.default.svc.cluster.local",
                ANY,
                Ok(vec![
                    "A 10.96.0.10",
                    "AAAA fd00:10:96::a",
                    "SRV 0 100 80 web.default.svc.cluster.local.",
                    "SRV 0 100 8080 web.default.svc.cluster.local.",
                ]),
            ),
            // Endpoint names exist only for headless Services (spec 2.4).
            ("10-244-1-5.web.default.svc.cluster.local", A, Err("NxDomain")),
            ("_http._tcp.web.default.svc.cluster.local", SRV, Ok(vec!["SRV 0 100 80 web.default.svc.cluster.local."])),
            ("_http._udp.web.default.svc.cluster.local", SRV, Err("NxDomain")),
            ("_tcp.web.default.svc.cluster.local", SRV, Err("NoData")),
            ("_http._tcp.web.default.svc.cluster.local", A, Err("NoData")),
            // Headless: ready endpoint addresses, per family.
            ("pg.db.svc.cluster.local", A, Ok(vec!["A 10.244.2.10", "A 10.244.2.11"])),
            ("pg.db.svc.cluster.local", AAAA, Ok(vec!["AAAA fd00::b"])),
            ("pg-0.pg.db.svc.cluster.local", A, Ok(vec!["A 10.244.2.10"])),
            ("PG-1.pg.db.svc.cluster.local", A, Ok(vec!["A 10.244.2.11"])),
            ("pg-0.pg.db.svc.cluster.local", AAAA, Err("NoData")),
            ("pg-9.pg.db.svc.cluster.local", A, Err("NxDomain")),
            ("fd00--b.pg.db.svc.cluster.local", AAAA, Ok(vec!["AAAA fd00::b"])),
            (
                "_postgres._tcp.pg.db.svc.cluster.local",
                SRV,
                Ok(vec![
                    "SRV 0 33 5432 fd00--b.pg.db.svc.cluster.local.",
                    "SRV 0 33 5432 pg-0.pg.db.svc.cluster.local.",
                    "SRV 0 33 5432 pg-1.pg.db.svc.cluster.local.",
                ]),
            ),
            // Headless without ready endpoints: NXDOMAIN (spec 2.4.1).
            ("empty.db.svc.cluster.local", A, Err("NxDomain")),
            ("_x._udp.empty.db.svc.cluster.local", SRV, Err("NxDomain")),
            // Pods (verified: the address must belong to a pod of that namespace).
            ("10-244-1-5.default.pod.cluster.local", A, Ok(vec!["A 10.244.1.5"])),
            ("10-244-1-5.default.pod.cluster.local", AAAA, Err("NoData")),
            ("10-244-1-5.db.pod.cluster.local", A, Err("NxDomain")),
            ("10-244-1-6.default.pod.cluster.local", A, Err("NxDomain")),
            ("fd00--1-5.default.pod.cluster.local", AAAA, Ok(vec!["AAAA fd00::1:5"])),
            ("fd00-0-0-0-0-0-1-5.default.pod.cluster.local", AAAA, Ok(vec!["AAAA fd00::1:5"])),
            ("not-an-ip.default.pod.cluster.local", A, Err("NxDomain")),
            ("x.10-244-1-5.default.pod.cluster.local", A, Err("NxDomain")),
            // Structure: apex, fixed subdomains, namespaces are names that exist.
            (
                "cluster.local",
                SOA,
                Ok(vec!["SOA ns.dns.cluster.local. hostmaster.cluster.local. SERIAL 7200 1800 86400 5"]),
            ),
            ("cluster.local", A, Err("NoData")),
            ("svc.cluster.local", A, Err("NoData")),
            ("pod.cluster.local", A, Err("NoData")),
            ("default.svc.cluster.local", A, Err("NoData")),
            ("default.pod.cluster.local", A, Err("NoData")),
            ("nope.svc.cluster.local", A, Err("NxDomain")),
            ("web.nope.svc.cluster.local", A, Err("NxDomain")),
            ("web.default.svc.cluster.local.extra", A, Err("Refused")),
            ("foo.cluster.local", A, Err("NxDomain")),
            ("dns-version.cluster.local", TXT, Ok(vec!["TXT 1.1.0"])),
            // Outside the domain: refused, nothing goes upstream.
            ("example.com", A, Err("Refused")),
            ("local", A, Err("Refused")),
            ("5.1.244.10.in-addr.arpa", PTR, Err("Refused")),
            ("bad..name", A, Err("Refused")),
        ];
        let mut failures = Vec::new();
        for (name, qtype, want) in cases {
            let got = render(&records.resolve(name, qtype)).map(|v| {
                v.into_iter().map(|s| if s.starts_with("SOA") { normalize_serial(&s) } else { s }).collect::<Vec<_>>()
            });
            let want = want.map(|v| v.into_iter().map(String::from).collect::<Vec<_>>()).map_err(String::from);
            if got != want {
                failures.push(format!("{name} {qtype}: got {got:?}, want {want:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    fn normalize_serial(soa: &str) -> String {
        let mut parts: Vec<String> = soa.split(' ').map(String::from).collect();
        if let Some(serial) = parts.get_mut(3) {
            *serial = "SERIAL".into();
        }
        parts.join(" ")
    }

    #[test]
    fn answers_echo_the_asked_name_and_use_ttl() {
        let records = fixture("cluster.local");
        let Answer::Records(answers) = records.resolve("Web.Default.svc.cluster.local", RecordType::A) else {
            panic!("expected records");
        };
        assert_eq!(answers.len(), 1);
        assert_eq!(answers[0].name.to_ascii(), "Web.Default.svc.cluster.local.");
        assert_eq!(answers[0].ttl, TTL);
    }

    #[test]
    fn custom_domain_and_replace() {
        let records = fixture("Corp.Example");
        assert_eq!(records.domain().to_ascii(), "corp.example.");
        assert!(matches!(records.resolve("web.default.svc.corp.example", RecordType::A), Answer::Records(_)));
        assert_eq!(records.resolve("web.default.svc.cluster.local", RecordType::A), Answer::Refused);
        // A clone shares the view; replace swaps everything at once.
        let clone = records.clone();
        records.replace(Vec::new(), Vec::new());
        assert_eq!(clone.resolve("web.default.svc.corp.example", RecordType::A), Answer::NxDomain);
        assert_eq!(clone.resolve("svc.corp.example", RecordType::A), Answer::NoData);
    }

    #[test]
    fn invalid_domains() {
        for bad in ["", ".", "a..b", &"x".repeat(64)] {
            assert!(Records::try_new(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(Records::new("").domain().to_ascii(), "cluster.local.");
        assert_eq!(Records::default().domain().to_ascii(), "cluster.local.");
    }

    #[test]
    fn bad_labels_are_skipped_not_fatal() {
        let records = Records::new("cluster.local");
        records.replace(
            vec![
                ServiceRecord {
                    namespace: "default".into(),
                    name: "x".repeat(70),
                    cluster_ips: vec![v4("10.0.0.1")],
                    endpoints: vec![],
                    ports: vec![],
                },
                ServiceRecord {
                    namespace: "default".into(),
                    name: "ok".into(),
                    cluster_ips: vec![],
                    endpoints: vec![EndpointRecord { ip: v4("10.0.0.2"), hostname: Some("h".repeat(70)) }],
                    ports: vec![port(&"p".repeat(70), "TCP", 1)],
                },
            ],
            vec![],
        );
        assert_eq!(
            render(&records.resolve("ok.default.svc.cluster.local", RecordType::A)),
            Ok(vec!["A 10.0.0.2".into()])
        );
    }

    // ---- over the wire ----

    struct Running {
        udp: std::net::SocketAddr,
        tcp: std::net::SocketAddr,
        task: tokio::task::JoinHandle<std::io::Result<()>>,
    }

    async fn start(records: Records) -> Running {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind tcp");
        let (udp_addr, tcp_addr) = (udp.local_addr().expect("addr"), tcp.local_addr().expect("addr"));
        let task = tokio::spawn(serve(udp, tcp, records));
        Running { udp: udp_addr, tcp: tcp_addr, task }
    }

    fn query_bytes(id: u16, name: &str, qtype: RecordType) -> Vec<u8> {
        let mut msg = Message::query();
        msg.metadata.id = id;
        msg.metadata.recursion_desired = true;
        msg.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
        msg.to_vec().expect("encode")
    }

    async fn ask_udp(server: std::net::SocketAddr, id: u16, name: &str, qtype: RecordType) -> Message {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        sock.send_to(&query_bytes(id, name, qtype), server).await.expect("send");
        let mut buf = vec![0u8; 4096];
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
            .await
            .expect("timeout")
            .expect("recv");
        Message::from_vec(&buf[..n]).expect("decode")
    }

    async fn ask_tcp(server: std::net::SocketAddr, id: u16, name: &str, qtype: RecordType) -> Message {
        let mut stream = tokio::net::TcpStream::connect(server).await.expect("connect");
        let q = query_bytes(id, name, qtype);
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        stream.write_all(&framed).await.expect("write");
        let read = async {
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).await?;
            let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut buf).await?;
            Ok::<_, std::io::Error>(buf)
        };
        let buf = tokio::time::timeout(Duration::from_secs(5), read).await.expect("timeout").expect("read");
        Message::from_vec(&buf).expect("decode")
    }

    fn summary(msg: &Message) -> (ResponseCode, bool, Vec<String>, Vec<RecordType>) {
        let mut answers: Vec<String> =
            msg.answers.iter().map(|r| format!("{} {} {}", r.name, r.record_type(), r.data)).collect();
        answers.sort();
        (
            msg.metadata.response_code,
            msg.metadata.authoritative,
            answers,
            msg.authorities.iter().map(|r| r.record_type()).collect(),
        )
    }

    #[tokio::test]
    async fn serve_udp_and_tcp() {
        use RecordType::*;
        let running = start(fixture("cluster.local")).await;
        let cases: Vec<WireCase> = vec![
            (
                "web.default.svc.cluster.local.",
                A,
                ResponseCode::NoError,
                true,
                vec!["web.default.svc.cluster.local. A 10.96.0.10"],
                vec![],
            ),
            (
                "web.default.svc.cluster.local.",
                AAAA,
                ResponseCode::NoError,
                true,
                vec!["web.default.svc.cluster.local. AAAA fd00:10:96::a"],
                vec![],
            ),
            (
                "WeB.DEFAULT.svc.cluster.local.",
                A,
                ResponseCode::NoError,
                true,
                vec!["WeB.DEFAULT.svc.cluster.local. A 10.96.0.10"],
                vec![],
            ),
            ("missing.default.svc.cluster.local.", A, ResponseCode::NXDomain, true, vec![], vec![SOA]),
            ("web.default.svc.cluster.local.", MX, ResponseCode::NoError, true, vec![], vec![SOA]),
            ("example.com.", A, ResponseCode::Refused, false, vec![], vec![]),
            (
                "pg-0.pg.db.svc.cluster.local.",
                A,
                ResponseCode::NoError,
                true,
                vec!["pg-0.pg.db.svc.cluster.local. A 10.244.2.10"],
                vec![],
            ),
        ];
        let mut failures = Vec::new();
        for (i, (name, qtype, rcode, aa, answers, auth)) in cases.into_iter().enumerate() {
            let want = (rcode, aa, answers.into_iter().map(String::from).collect::<Vec<_>>(), auth);
            let id = 100 + i as u16;
            let over_udp = ask_udp(running.udp, id, name, qtype).await;
            let over_tcp = ask_tcp(running.tcp, id, name, qtype).await;
            for (proto, msg) in [("udp", &over_udp), ("tcp", &over_tcp)] {
                if msg.metadata.id != id || summary(msg) != want {
                    failures.push(format!("{proto} {name} {qtype}: got {:?}, want {want:?}", summary(msg)));
                }
            }
        }
        // SRV carries the target's addresses in the additional section.
        let srv = ask_udp(running.udp, 7, "_postgres._tcp.pg.db.svc.cluster.local.", SRV).await;
        if srv.answers.len() != 3 || srv.additionals.iter().filter(|r| r.record_type() != OPT).count() != 3 {
            failures.push(format!("srv: {srv:?}"));
        }
        running.task.abort();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// A real resolver (`dig`) against the server; skipped (with a message) when `dig` is not installed.
    #[tokio::test]
    async fn dig_resolver() {
        let running = start(fixture("cluster.local")).await;
        let port = running.udp.port().to_string();
        let tcp_port = running.tcp.port().to_string();
        let cases: Vec<(Vec<&str>, &str)> = vec![
            (vec!["-p", &port, "web.default.svc.cluster.local", "A", "+short"], "10.96.0.10"),
            (vec!["-p", &tcp_port, "+tcp", "pg.db.svc.cluster.local", "AAAA", "+short"], "fd00::b"),
            (vec!["-p", &port, "nope.svc.cluster.local", "A"], "status: NXDOMAIN"),
            (vec!["-p", &port, "example.com", "A"], "status: REFUSED"),
            (vec!["-p", &port, "web.default.svc.cluster.local", "A"], "flags: qr aa rd"),
        ];
        for (args, want) in cases {
            let argv: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            let out = tokio::task::spawn_blocking(move || {
                std::process::Command::new("dig").arg("@127.0.0.1").args(["+time=2", "+tries=1"]).args(&argv).output()
            })
            .await
            .expect("join");
            let out = match out {
                Ok(out) => out,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    eprintln!("dig not installed: skipping the real-resolver check");
                    running.task.abort();
                    return;
                }
                Err(e) => panic!("dig: {e}"),
            };
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains(want), "dig {args:?}: want {want:?} in\n{text}");
        }
        running.task.abort();
    }

    #[tokio::test]
    async fn big_answers_truncate_over_udp_and_complete_over_tcp() {
        let records = Records::new("cluster.local");
        let endpoints =
            (0..100u8).map(|i| EndpointRecord { ip: IpAddr::V4(Ipv4Addr::new(10, 1, 0, i)), hostname: None }).collect();
        let svc = ServiceRecord {
            namespace: "big".into(),
            name: "many".into(),
            cluster_ips: vec![],
            endpoints,
            ports: vec![],
        };
        records.replace(vec![svc], vec![]);
        let running = start(records).await;
        let name = "many.big.svc.cluster.local.";
        // No EDNS in the query: the UDP answer must fit 512 bytes, so it comes back truncated (TC) ...
        let udp = ask_udp(running.udp, 1, name, RecordType::A).await;
        let tcp = ask_tcp(running.tcp, 2, name, RecordType::A).await;
        running.task.abort();
        assert!(udp.metadata.truncation, "udp answer not truncated: {} answers", udp.answers.len());
        // ... and the resolver's TCP retry gets everything.
        assert!(!tcp.metadata.truncation);
        assert_eq!(tcp.answers.len(), 100);
    }

    #[tokio::test]
    async fn serve_ends_when_dropped_and_survives_garbage() {
        let running = start(fixture("cluster.local")).await;
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        // Junk and a truncated header must not kill the server.
        sock.send_to(&[0xff; 40], running.udp).await.expect("send");
        sock.send_to(&[1, 2, 3], running.udp).await.expect("send");
        let ok = ask_udp(running.udp, 9, "web.default.svc.cluster.local.", RecordType::A).await;
        assert_eq!(ok.metadata.response_code, ResponseCode::NoError);
        running.task.abort();
        assert!(running.task.await.is_err_and(|e| e.is_cancelled()));
        // The sockets are closed with the dropped future: the port can be rebound.
        tokio::net::UdpSocket::bind(running.udp).await.expect("rebind udp");
        tokio::net::TcpListener::bind(running.tcp).await.expect("rebind tcp");
    }
}
