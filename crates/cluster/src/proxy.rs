//! The sandbox's kube-proxy: renders Services into one nftables table (family `inet`) that DNATs ClusterIP
//! traffic to endpoint pods, modelled on kube-proxy's nftables mode.
//!
//! Layout of the rendered table (all names below are fixed; per-service chains are hashed):
//! - `nat-prerouting` / `nat-output` (nat, priority dstnat) jump `services`, which looks the packet up in the
//!   verdict maps `service-ips4` / `service-ips6` keyed by `daddr . l4proto . dport` and goes to a per-service-port
//!   chain; that chain picks an endpoint with `numgen random mod N` and goes to a per-endpoint chain that DNATs.
//!   Conntrack keeps the choice for the rest of the connection. DNAT happens before routing so that a filter in the
//!   forward hook (the `inet palisade` table) sees the endpoint pod's address.
//! - `filter-prerouting` / `filter-output` (filter, priority dstnat - 10, i.e. before the DNAT) send new
//!   connections through `service-check`: a service port without endpoints, or a ClusterIP on a port no Service
//!   defines, is rejected (TCP reset, ICMP port unreachable otherwise) instead of being blackholed. `reject` is not
//!   valid in nat chains, hence the separate filter chains; prerouting (valid for reject since Linux 5.9) is used
//!   rather than forward because the node has no route for ClusterIPs, so the packet would die in routing first.
//! - Hairpin: an endpoint chain marks packets whose source is the chosen endpoint itself; `nat-postrouting` SNATs
//!   marked packets to the node's gateway address (169.254.1.1 / fe80::1) so the endpoint's reply goes back
//!   through the node and is un-NATed, instead of being answered pod-locally with the wrong source address.
//!
//! Caller's duties: processes in the node namespace need some route covering the ClusterIPs (for example
//! `10.96.0.0/16 dev lo src 169.254.1.1`), because a socket's route lookup precedes the output hooks (a local UDP
//! send to a port without endpoints then fails with EPERM at once). Conntrack entries of removed endpoints are not
//! flushed here (kube-proxy flushes UDP ones); existing flows keep their old DNAT until they expire.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

/// Packet mark bit that flags hairpin connections between the endpoint chain and `nat-postrouting` (same bit
/// kube-proxy uses for masquerading; nothing else in the sandbox uses packet marks).
pub const HAIRPIN_MARK: u32 = 0x4000;
/// Address the node answers on for IPv4 pods (on the node's `lo`; the pods' default gateway).
pub const NODE_GATEWAY_V4: &str = "169.254.1.1";
/// Address the node answers on for IPv6 pods (link-local on each pod veth's node end; the pods' default gateway).
pub const NODE_GATEWAY_V6: &str = "fe80::1";

/// Longest sanitized namespace/name part kept in a chain name (the hash keeps names unique anyway).
const MAX_NAME_PART: usize = 100;
/// Longest comment kept (the kernel limits user data; keep well under it).
const MAX_COMMENT: usize = 120;

/// Transport protocol of a Service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// The nft name of the protocol (`meta l4proto` value).
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// One port of a Service with its ready endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    /// Transport protocol.
    pub protocol: Protocol,
    /// The port on the ClusterIP(s); 0 is invalid and the port is ignored.
    pub port: u16,
    /// Ready endpoints: pod address and the target port resolved for that pod. Endpoints with port 0 are ignored;
    /// each endpoint only serves ClusterIPs of its own address family.
    pub endpoints: Vec<(IpAddr, u16)>,
}

/// A Service as the proxy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Namespace of the Service.
    pub namespace: String,
    /// Name of the Service.
    pub name: String,
    /// ClusterIPs (one per family; headless Services have none and render nothing).
    pub cluster_ips: Vec<IpAddr>,
    /// Ports of the Service.
    pub ports: Vec<ServicePort>,
}

/// Address family, as the suffix of per-family names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn of(ip: &IpAddr) -> Family {
        if ip.is_ipv4() { Family::V4 } else { Family::V6 }
    }
    fn suffix(self) -> &'static str {
        match self {
            Family::V4 => "4",
            Family::V6 => "6",
        }
    }
}

/// Key of the service maps: `daddr . l4proto . dport`.
type MapKey = (IpAddr, Protocol, u16);

/// What one family of one service port renders to.
struct PortChain {
    chain: String,
    comment: String,
    protocol: Protocol,
    /// (endpoint chain name, comment, address, port)
    endpoints: Vec<(String, String, IpAddr, u16)>,
}

/// Renders the whole table as one nft script that replaces any previous version atomically (`table inet T {}`,
/// `delete table inet T` and the new table, all in one `nft -f` transaction). The output is deterministic: services,
/// ports, addresses and endpoints are sorted and deduplicated. When two services claim the same
/// ClusterIP/protocol/port, the first in (namespace, name) order wins; of two entries with the same namespace/name, or
/// two ports with the same protocol/port in one service, the first given wins. `table` should be a valid nft identifier;
/// other characters are replaced by `_` so the script stays well-formed.
pub fn render(table: &str, services: &[Service]) -> String {
    let table = sanitize_identifier(table);
    let mut sorted: Vec<&Service> = services.iter().collect();
    sorted.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    sorted.dedup_by(|b, a| a.namespace == b.namespace && a.name == b.name);

    // Verdicts for service-ips{4,6} (DNAT) and service-check{4,6} (return / reject), keyed per family.
    let mut service_ips: BTreeMap<MapKey, String> = BTreeMap::new();
    let mut service_check: BTreeMap<MapKey, &'static str> = BTreeMap::new();
    let mut cluster_ips: BTreeSet<IpAddr> = BTreeSet::new();
    let mut chains: Vec<PortChain> = Vec::new();

    for svc in sorted {
        let mut ports: Vec<&ServicePort> = svc.ports.iter().filter(|p| p.port != 0).collect();
        ports.sort_by_key(|p| (p.protocol, p.port));
        ports.dedup_by_key(|p| (p.protocol, p.port));
        let ips: BTreeSet<IpAddr> = svc.cluster_ips.iter().copied().collect();
        for family in [Family::V4, Family::V6] {
            let fam_ips: Vec<IpAddr> = ips.iter().copied().filter(|ip| Family::of(ip) == family).collect();
            if fam_ips.is_empty() {
                continue;
            }
            for port in &ports {
                let endpoints: BTreeSet<(IpAddr, u16)> =
                    port.endpoints.iter().copied().filter(|(ip, p)| Family::of(ip) == family && *p != 0).collect();
                // Keys another (earlier) service already claims are skipped so the maps never get duplicates.
                let keys: Vec<MapKey> = fam_ips
                    .iter()
                    .map(|ip| (*ip, port.protocol, port.port))
                    .filter(|k| !service_check.contains_key(k))
                    .collect();
                if keys.is_empty() {
                    continue;
                }
                cluster_ips.extend(keys.iter().map(|k| k.0));
                if endpoints.is_empty() {
                    for k in keys {
                        service_check.insert(k, "goto reject-chain");
                    }
                    continue;
                }
                let what = format!("{}/{} {}/{}", svc.namespace, svc.name, port.protocol.as_str(), port.port);
                let chain = port_chain_name(&svc.namespace, &svc.name, port.protocol, port.port, family);
                for k in keys {
                    service_check.insert(k, "return");
                    service_ips.insert(k, format!("goto {chain}"));
                }
                let endpoints = endpoints
                    .iter()
                    .enumerate()
                    .map(|(i, (ip, p))| (format!("{chain}-ep{i}"), format!("{what} -> {}", ip_port(ip, *p)), *ip, *p))
                    .collect();
                let fam_name = if family == Family::V4 { "IPv4" } else { "IPv6" };
                chains.push(PortChain {
                    chain,
                    comment: format!("{what} {fam_name}"),
                    protocol: port.protocol,
                    endpoints,
                });
            }
        }
    }

    let mut out = String::new();
    // `table {}` makes the delete succeed when the table does not exist yet; all three lines are one transaction.
    let _ = writeln!(out, "table inet {table} {{}}");
    let _ = writeln!(out, "delete table inet {table}");
    let _ = writeln!(out, "table inet {table} {{");
    out.push_str("\tcomment \"Service ClusterIP proxy\"\n");
    for family in [Family::V4, Family::V6] {
        let (sfx, addr_type) = match family {
            Family::V4 => ("4", "ipv4_addr"),
            Family::V6 => ("6", "ipv6_addr"),
        };
        let ips: Vec<String> =
            cluster_ips.iter().filter(|ip| Family::of(ip) == family).map(|ip| ip.to_string()).collect();
        write_set(&mut out, &format!("set cluster-ips{sfx}"), addr_type, "ClusterIPs", &ips);
        let check: Vec<String> = service_check
            .iter()
            .filter(|(k, _)| Family::of(&k.0) == family)
            .map(|(k, v)| format!("{} : {v}", map_key(k)))
            .collect();
        let map_type = format!("{addr_type} . inet_proto . inet_service : verdict");
        write_set(&mut out, &format!("map service-check{sfx}"), &map_type, "reject ports without endpoints", &check);
        let ips: Vec<String> = service_ips
            .iter()
            .filter(|(k, _)| Family::of(&k.0) == family)
            .map(|(k, v)| format!("{} : {v}", map_key(k)))
            .collect();
        write_set(&mut out, &format!("map service-ips{sfx}"), &map_type, "ClusterIP traffic", &ips);
    }

    out.push_str(concat!(
        "\tchain filter-prerouting {\n",
        "\t\ttype filter hook prerouting priority dstnat - 10; policy accept;\n",
        "\t\tct state new jump service-check\n",
        "\t}\n",
        "\tchain filter-output {\n",
        "\t\ttype filter hook output priority -110; policy accept;\n",
        "\t\tct state new jump service-check\n",
        "\t}\n",
        "\tchain service-check {\n",
        "\t\tip daddr . meta l4proto . th dport vmap @service-check4\n",
        "\t\tip6 daddr . meta l4proto . th dport vmap @service-check6\n",
        "\t\tip daddr @cluster-ips4 goto reject-chain\n",
        "\t\tip6 daddr @cluster-ips6 goto reject-chain\n",
        "\t}\n",
        "\tchain reject-chain {\n",
        "\t\tmeta l4proto tcp reject with tcp reset\n",
        "\t\treject\n",
        "\t}\n",
        "\tchain nat-prerouting {\n",
        "\t\ttype nat hook prerouting priority dstnat; policy accept;\n",
        "\t\tjump services\n",
        "\t}\n",
        "\tchain nat-output {\n",
        "\t\ttype nat hook output priority -100; policy accept;\n",
        "\t\tjump services\n",
        "\t}\n",
        "\tchain services {\n",
        "\t\tip daddr . meta l4proto . th dport vmap @service-ips4\n",
        "\t\tip6 daddr . meta l4proto . th dport vmap @service-ips6\n",
        "\t}\n",
    ));
    let _ = write!(
        out,
        concat!(
            "\tchain nat-postrouting {{\n",
            "\t\ttype nat hook postrouting priority srcnat; policy accept;\n",
            "\t\tmeta mark & {mark:#010x} == 0x00000000 return\n",
            "\t\tmeta mark set meta mark ^ {mark:#010x}\n",
            "\t\tmeta nfproto ipv4 snat ip to {v4}\n",
            "\t\tmeta nfproto ipv6 snat ip6 to {v6}\n",
            "\t}}\n",
        ),
        mark = HAIRPIN_MARK,
        v4 = NODE_GATEWAY_V4,
        v6 = NODE_GATEWAY_V6
    );

    chains.sort_by(|a, b| a.chain.cmp(&b.chain));
    for pc in &chains {
        let _ = writeln!(out, "\tchain {} {{", pc.chain);
        let _ = writeln!(out, "\t\tcomment \"{}\"", comment_text(&pc.comment));
        if let [(only, ..)] = pc.endpoints.as_slice() {
            let _ = writeln!(out, "\t\tgoto {only}");
        } else {
            let arms: Vec<String> =
                pc.endpoints.iter().enumerate().map(|(i, (name, ..))| format!("{i} : goto {name}")).collect();
            let _ = writeln!(out, "\t\tnumgen random mod {} vmap {{ {} }}", pc.endpoints.len(), arms.join(", "));
        }
        out.push_str("\t}\n");
        let proto = pc.protocol.as_str();
        for (name, comment, ip, port) in &pc.endpoints {
            let (fam, ip_kw) = if ip.is_ipv4() { ("ip", "ip") } else { ("ip6", "ip6") };
            let _ = writeln!(out, "\tchain {name} {{");
            let _ = writeln!(out, "\t\tcomment \"{}\"", comment_text(comment));
            let _ = writeln!(out, "\t\t{fam} saddr {ip} meta mark set meta mark | {HAIRPIN_MARK:#010x}");
            let _ = writeln!(out, "\t\tmeta l4proto {proto} dnat {ip_kw} to {}", ip_port(ip, *port));
            out.push_str("\t}\n");
        }
    }
    out.push_str("}\n");
    out
}

/// Writes a named set or map, omitting `elements` when empty (nft rejects an empty element list).
fn write_set(out: &mut String, head: &str, ty: &str, comment: &str, elements: &[String]) {
    let _ = writeln!(out, "\t{head} {{");
    let _ = writeln!(out, "\t\ttype {ty}");
    let _ = writeln!(out, "\t\tcomment \"{comment}\"");
    if !elements.is_empty() {
        out.push_str("\t\telements = {\n");
        let _ = writeln!(out, "\t\t\t{}", elements.join(",\n\t\t\t"));
        out.push_str("\t\t}\n");
    }
    out.push_str("\t}\n");
}

fn map_key((ip, proto, port): &MapKey) -> String {
    format!("{ip} . {} . {port}", proto.as_str())
}

/// `A:P` for IPv4, `[A]:P` for IPv6, as nft's dnat wants them.
fn ip_port(ip: &IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// Chain name of one family of one service port: `svc-<hash>-<ns>-<name>-<proto>-<port>-v<4|6>`. The hash is over
/// the unsanitized identity, so services whose names sanitize alike still get distinct chains.
fn port_chain_name(namespace: &str, name: &str, proto: Protocol, port: u16, family: Family) -> String {
    let identity = format!("{namespace}/{name}/{}/{port}/{}", proto.as_str(), family.suffix());
    let hash = fnv1a32(identity.as_bytes());
    let mut readable = sanitize_identifier(&format!("{namespace}-{name}"));
    if readable.chars().count() > MAX_NAME_PART {
        readable = readable.chars().take(MAX_NAME_PART).collect();
    }
    format!("svc-{hash:08x}-{readable}-{}-{port}-v{}", proto.as_str(), family.suffix())
}

/// Keeps `[A-Za-z0-9_-]` and replaces everything else with `_`, so the result can follow a letter in an nft
/// identifier; an empty or non-letter start gets a leading letter so it is a valid identifier on its own.
fn sanitize_identifier(s: &str) -> String {
    let mut out: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic()) {
        out.insert(0, 't');
    }
    out
}

/// Comment text safe inside nft double quotes: printable ASCII without `"` and `\`, bounded in length.
fn comment_text(s: &str) -> String {
    s.chars()
        .map(|c| if (c.is_ascii_graphic() || c == ' ') && c != '"' && c != '\\' { c } else { '_' })
        .take(MAX_COMMENT)
        .collect()
}

/// FNV-1a, 32 bits: stable across runs and platforms (unlike `DefaultHasher`), which snapshots rely on.
fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("bad test address {s}: {e}"))
    }

    fn port(protocol: Protocol, port: u16, endpoints: &[(&str, u16)]) -> ServicePort {
        ServicePort { protocol, port, endpoints: endpoints.iter().map(|(a, p)| (ip(a), *p)).collect() }
    }

    fn svc(namespace: &str, name: &str, ips: &[&str], ports: Vec<ServicePort>) -> Service {
        Service {
            namespace: namespace.into(),
            name: name.into(),
            cluster_ips: ips.iter().map(|a| ip(a)).collect(),
            ports,
        }
    }

    /// The chains every render has, between the maps and the per-service chains.
    const FIXED_CHAINS: &str = "\tchain filter-prerouting {
\t\ttype filter hook prerouting priority dstnat - 10; policy accept;
\t\tct state new jump service-check
\t}
\tchain filter-output {
\t\ttype filter hook output priority -110; policy accept;
\t\tct state new jump service-check
\t}
\tchain service-check {
\t\tip daddr . meta l4proto . th dport vmap @service-check4
\t\tip6 daddr . meta l4proto . th dport vmap @service-check6
\t\tip daddr @cluster-ips4 goto reject-chain
\t\tip6 daddr @cluster-ips6 goto reject-chain
\t}
\tchain reject-chain {
\t\tmeta l4proto tcp reject with tcp reset
\t\treject
\t}
\tchain nat-prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tjump services
\t}
\tchain nat-output {
\t\ttype nat hook output priority -100; policy accept;
\t\tjump services
\t}
\tchain services {
\t\tip daddr . meta l4proto . th dport vmap @service-ips4
\t\tip6 daddr . meta l4proto . th dport vmap @service-ips6
\t}
\tchain nat-postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tmeta mark & 0x00004000 == 0x00000000 return
\t\tmeta mark set meta mark ^ 0x00004000
\t\tmeta nfproto ipv4 snat ip to 169.254.1.1
\t\tmeta nfproto ipv6 snat ip6 to fe80::1
\t}
";

    /// A set or map block as rendered; `elements` one per line.
    fn block(head: &str, ty: &str, comment: &str, elements: &[&str]) -> String {
        let mut s = format!("\t{head} {{\n\t\ttype {ty}\n\t\tcomment \"{comment}\"\n");
        if !elements.is_empty() {
            s += &format!("\t\telements = {{\n\t\t\t{}\n\t\t}}\n", elements.join(",\n\t\t\t"));
        }
        s + "\t}\n"
    }

    /// Elements of (cluster-ips4, service-check4, service-ips4, cluster-ips6, service-check6, service-ips6).
    type Maps<'a> = [&'a [&'a str]; 6];

    fn expected(table: &str, maps: Maps, chains: &str) -> String {
        let m4 = "ipv4_addr . inet_proto . inet_service : verdict";
        let m6 = "ipv6_addr . inet_proto . inet_service : verdict";
        format!(
            "table inet {table} {{}}\ndelete table inet {table}\ntable inet {table} {{\n\tcomment \"Service ClusterIP proxy\"\n{}{}{}{}{}{}{FIXED_CHAINS}{chains}}}\n",
            block("set cluster-ips4", "ipv4_addr", "ClusterIPs", maps[0]),
            block("map service-check4", m4, "reject ports without endpoints", maps[1]),
            block("map service-ips4", m4, "ClusterIP traffic", maps[2]),
            block("set cluster-ips6", "ipv6_addr", "ClusterIPs", maps[3]),
            block("map service-check6", m6, "reject ports without endpoints", maps[4]),
            block("map service-ips6", m6, "ClusterIP traffic", maps[5]),
        )
    }

    #[test]
    fn empty_render_is_the_full_skeleton() {
        let want = "table inet kp {}
delete table inet kp
table inet kp {
\tcomment \"Service ClusterIP proxy\"
\tset cluster-ips4 {
\t\ttype ipv4_addr
\t\tcomment \"ClusterIPs\"
\t}
\tmap service-check4 {
\t\ttype ipv4_addr . inet_proto . inet_service : verdict
\t\tcomment \"reject ports without endpoints\"
\t}
\tmap service-ips4 {
\t\ttype ipv4_addr . inet_proto . inet_service : verdict
\t\tcomment \"ClusterIP traffic\"
\t}
\tset cluster-ips6 {
\t\ttype ipv6_addr
\t\tcomment \"ClusterIPs\"
\t}
\tmap service-check6 {
\t\ttype ipv6_addr . inet_proto . inet_service : verdict
\t\tcomment \"reject ports without endpoints\"
\t}
\tmap service-ips6 {
\t\ttype ipv6_addr . inet_proto . inet_service : verdict
\t\tcomment \"ClusterIP traffic\"
\t}
"
        .to_string()
            + FIXED_CHAINS
            + "}\n";
        assert_eq!(render("kp", &[]), want);
        assert_eq!(expected("kp", [&[]; 6], ""), want, "the snapshot helper must agree with the literal");
    }

    #[test]
    fn render_snapshots() {
        struct Case {
            name: &'static str,
            services: Vec<Service>,
            maps: Maps<'static>,
            chains: &'static str,
        }
        let cases = vec![
            Case {
                name: "one service, two endpoints (given unsorted)",
                services: vec![svc(
                    "default",
                    "web",
                    &["10.96.0.10"],
                    vec![port(Protocol::Tcp, 80, &[("10.244.0.11", 8080), ("10.244.0.10", 8080)])],
                )],
                maps: [
                    &["10.96.0.10"],
                    &["10.96.0.10 . tcp . 80 : return"],
                    &["10.96.0.10 . tcp . 80 : goto svc-f5e5bb17-default-web-tcp-80-v4"],
                    &[],
                    &[],
                    &[],
                ],
                chains: "\tchain svc-f5e5bb17-default-web-tcp-80-v4 {
\t\tcomment \"default/web tcp/80 IPv4\"
\t\tnumgen random mod 2 vmap { 0 : goto svc-f5e5bb17-default-web-tcp-80-v4-ep0, 1 : goto svc-f5e5bb17-default-web-tcp-80-v4-ep1 }
\t}
\tchain svc-f5e5bb17-default-web-tcp-80-v4-ep0 {
\t\tcomment \"default/web tcp/80 -> 10.244.0.10:8080\"
\t\tip saddr 10.244.0.10 meta mark set meta mark | 0x00004000
\t\tmeta l4proto tcp dnat ip to 10.244.0.10:8080
\t}
\tchain svc-f5e5bb17-default-web-tcp-80-v4-ep1 {
\t\tcomment \"default/web tcp/80 -> 10.244.0.11:8080\"
\t\tip saddr 10.244.0.11 meta mark set meta mark | 0x00004000
\t\tmeta l4proto tcp dnat ip to 10.244.0.11:8080
\t}
",
            },
            Case {
                name: "no endpoints: reject, no DNAT chain",
                services: vec![svc("ns1", "empty", &["10.96.0.11"], vec![port(Protocol::Tcp, 80, &[])])],
                maps: [&["10.96.0.11"], &["10.96.0.11 . tcp . 80 : goto reject-chain"], &[], &[], &[], &[]],
                chains: "",
            },
            Case {
                name: "IPv6 only, one endpoint: goto without numgen",
                services: vec![svc(
                    "default",
                    "web6",
                    &["fd00:96::10"],
                    vec![port(Protocol::Tcp, 443, &[("fd00:10::a", 8443)])],
                )],
                maps: [
                    &[],
                    &[],
                    &[],
                    &["fd00:96::10"],
                    &["fd00:96::10 . tcp . 443 : return"],
                    &["fd00:96::10 . tcp . 443 : goto svc-575363b4-default-web6-tcp-443-v6"],
                ],
                chains: "\tchain svc-575363b4-default-web6-tcp-443-v6 {
\t\tcomment \"default/web6 tcp/443 IPv6\"
\t\tgoto svc-575363b4-default-web6-tcp-443-v6-ep0
\t}
\tchain svc-575363b4-default-web6-tcp-443-v6-ep0 {
\t\tcomment \"default/web6 tcp/443 -> [fd00:10::a]:8443\"
\t\tip6 saddr fd00:10::a meta mark set meta mark | 0x00004000
\t\tmeta l4proto tcp dnat ip6 to [fd00:10::a]:8443
\t}
",
            },
            Case {
                name: "UDP and SCTP, dual-stack ClusterIPs, endpoints of one family only",
                services: vec![svc(
                    "kube-system",
                    "dns",
                    &["fd00:96::a", "10.96.0.10"],
                    vec![
                        port(Protocol::Sctp, 9000, &[("10.244.0.20", 9001)]),
                        port(Protocol::Udp, 53, &[("10.244.0.20", 5353)]),
                    ],
                )],
                maps: [
                    &["10.96.0.10"],
                    &["10.96.0.10 . udp . 53 : return", "10.96.0.10 . sctp . 9000 : return"],
                    &[
                        "10.96.0.10 . udp . 53 : goto svc-585948f0-kube-system-dns-udp-53-v4",
                        "10.96.0.10 . sctp . 9000 : goto svc-d86d349c-kube-system-dns-sctp-9000-v4",
                    ],
                    &["fd00:96::a"],
                    &["fd00:96::a . udp . 53 : goto reject-chain", "fd00:96::a . sctp . 9000 : goto reject-chain"],
                    &[],
                ],
                chains: "\tchain svc-585948f0-kube-system-dns-udp-53-v4 {
\t\tcomment \"kube-system/dns udp/53 IPv4\"
\t\tgoto svc-585948f0-kube-system-dns-udp-53-v4-ep0
\t}
\tchain svc-585948f0-kube-system-dns-udp-53-v4-ep0 {
\t\tcomment \"kube-system/dns udp/53 -> 10.244.0.20:5353\"
\t\tip saddr 10.244.0.20 meta mark set meta mark | 0x00004000
\t\tmeta l4proto udp dnat ip to 10.244.0.20:5353
\t}
\tchain svc-d86d349c-kube-system-dns-sctp-9000-v4 {
\t\tcomment \"kube-system/dns sctp/9000 IPv4\"
\t\tgoto svc-d86d349c-kube-system-dns-sctp-9000-v4-ep0
\t}
\tchain svc-d86d349c-kube-system-dns-sctp-9000-v4-ep0 {
\t\tcomment \"kube-system/dns sctp/9000 -> 10.244.0.20:9001\"
\t\tip saddr 10.244.0.20 meta mark set meta mark | 0x00004000
\t\tmeta l4proto sctp dnat ip to 10.244.0.20:9001
\t}
",
            },
            Case {
                name: "several ports with per-port target ports; one port without endpoints",
                services: vec![svc(
                    "a",
                    "b",
                    &["10.96.1.1"],
                    vec![
                        port(Protocol::Tcp, 443, &[("10.244.1.2", 8443)]),
                        port(Protocol::Tcp, 80, &[("10.244.1.2", 8080)]),
                        port(Protocol::Udp, 80, &[]),
                    ],
                )],
                maps: [
                    &["10.96.1.1"],
                    &[
                        "10.96.1.1 . tcp . 80 : return",
                        "10.96.1.1 . tcp . 443 : return",
                        "10.96.1.1 . udp . 80 : goto reject-chain",
                    ],
                    &[
                        "10.96.1.1 . tcp . 80 : goto svc-11355979-a-b-tcp-80-v4",
                        "10.96.1.1 . tcp . 443 : goto svc-5ec3dfc8-a-b-tcp-443-v4",
                    ],
                    &[],
                    &[],
                    &[],
                ],
                chains: "\tchain svc-11355979-a-b-tcp-80-v4 {
\t\tcomment \"a/b tcp/80 IPv4\"
\t\tgoto svc-11355979-a-b-tcp-80-v4-ep0
\t}
\tchain svc-11355979-a-b-tcp-80-v4-ep0 {
\t\tcomment \"a/b tcp/80 -> 10.244.1.2:8080\"
\t\tip saddr 10.244.1.2 meta mark set meta mark | 0x00004000
\t\tmeta l4proto tcp dnat ip to 10.244.1.2:8080
\t}
\tchain svc-5ec3dfc8-a-b-tcp-443-v4 {
\t\tcomment \"a/b tcp/443 IPv4\"
\t\tgoto svc-5ec3dfc8-a-b-tcp-443-v4-ep0
\t}
\tchain svc-5ec3dfc8-a-b-tcp-443-v4-ep0 {
\t\tcomment \"a/b tcp/443 -> 10.244.1.2:8443\"
\t\tip saddr 10.244.1.2 meta mark set meta mark | 0x00004000
\t\tmeta l4proto tcp dnat ip to 10.244.1.2:8443
\t}
",
            },
        ];
        for case in cases {
            let got = render("kp", &case.services);
            let want = expected("kp", case.maps, case.chains);
            if got != want {
                println!("--- {} got:\n{got}", case.name);
            }
            assert_eq!(got, want, "case {}", case.name);
        }
    }

    #[test]
    fn input_order_does_not_matter() {
        let a = svc(
            "x",
            "a",
            &["10.96.0.2", "fd00::2"],
            vec![
                port(Protocol::Udp, 53, &[("10.0.0.2", 53), ("10.0.0.1", 53), ("fd00::1", 53)]),
                port(Protocol::Tcp, 53, &[("10.0.0.1", 53)]),
            ],
        );
        let b = svc("w", "b", &["10.96.0.3"], vec![port(Protocol::Tcp, 80, &[("10.0.0.3", 80)])]);
        let mut a2 = a.clone();
        a2.cluster_ips.reverse();
        a2.ports.reverse();
        a2.ports[1].endpoints.reverse();
        assert_eq!(render("t", &[a.clone(), b.clone()]), render("t", &[b, a2]));
    }

    #[test]
    fn conflicts_duplicates_and_invalid_values_are_dropped() {
        // Same ClusterIP/proto/port claimed twice: the first service in (namespace, name) order wins; duplicate
        // endpoints and ports collapse; port 0 and endpoint port 0 are ignored; a later duplicate of a service is ignored.
        let winner = svc(
            "a",
            "first",
            &["10.96.0.1"],
            vec![
                port(Protocol::Tcp, 80, &[("10.0.0.1", 8080), ("10.0.0.1", 8080), ("10.0.0.9", 0)]),
                port(Protocol::Tcp, 80, &[("10.0.0.7", 1)]),
                port(Protocol::Tcp, 0, &[("10.0.0.8", 1)]),
            ],
        );
        let loser = svc("b", "second", &["10.96.0.1"], vec![port(Protocol::Tcp, 80, &[("10.0.0.2", 8080)])]);
        let dup = svc("a", "first", &["10.96.0.5"], vec![]);
        let out = render("t", &[loser, winner, dup]);
        for (needle, count) in [
            ("10.96.0.1 . tcp . 80 : goto", 1),
            ("10.96.0.1 . tcp . 80 : return", 1),
            ("dnat ip to 10.0.0.1:8080", 1),
            ("10.0.0.2", 0),
            ("10.0.0.7", 0),
            ("10.0.0.8", 0),
            ("10.0.0.9", 0),
            ("10.96.0.5", 0),
            ("numgen", 0),
        ] {
            assert_eq!(out.matches(needle).count(), count, "{needle:?} in\n{out}");
        }
    }

    #[test]
    fn hostile_names_give_valid_identifiers_and_comments() {
        let weird =
            svc("ns \"x\"", "a{b}\\c;d\nrm", &["10.96.0.1"], vec![port(Protocol::Tcp, 80, &[("10.0.0.1", 80)])]);
        let out = render("bad table;", &[weird]);
        assert!(out.starts_with("table inet bad_table_ {}\n"), "{out}");
        let ident_ok = |s: &str| {
            s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        let mut chains = 0;
        for line in out.lines() {
            let t = line.trim();
            if let Some(rest) = t.strip_prefix("chain ") {
                let name = rest.trim_end_matches(" {");
                assert!(ident_ok(name), "chain name {name:?}");
                chains += 1;
            }
            if let Some(rest) = t.strip_prefix("comment \"") {
                let body = rest.strip_suffix('"').unwrap_or_else(|| panic!("unterminated comment {t:?}"));
                assert!(!body.contains('"') && !body.contains('\\'), "comment {body:?}");
            }
        }
        assert_eq!(chains, 10, "8 fixed chains + service + endpoint chain:\n{out}");
        // Braces must balance or nft would misparse the rest of the script.
        assert_eq!(out.matches('{').count(), out.matches('}').count());
        // Names that sanitize alike still get distinct chains through the hash.
        assert_ne!(
            port_chain_name("a.b", "c", Protocol::Tcp, 80, Family::V4),
            port_chain_name("a_b", "c", Protocol::Tcp, 80, Family::V4)
        );
        assert_eq!(sanitize_identifier(""), "t");
        assert_eq!(sanitize_identifier("9lives"), "t9lives");
        let long = port_chain_name(&"n".repeat(300), "x", Protocol::Tcp, 1, Family::V4);
        assert!(long.len() < 140, "{}", long.len());
    }

    #[test]
    fn fnv_matches_reference_vectors() {
        // Published FNV-1a 32-bit test vectors.
        for (input, want) in [("", 0x811c_9dc5u32), ("a", 0xe40c_292c), ("foobar", 0xbf9c_f968)] {
            assert_eq!(fnv1a32(input.as_bytes()), want, "{input:?}");
        }
    }

    #[test]
    fn live_namespaces() {
        live::run();
    }

    /// End-to-end check in throwaway network namespaces wired like the sandbox: node + 3 pods.
    mod live {
        use super::*;
        use std::io::{BufRead, BufReader, Write};
        use std::process::{Child, Command, Stdio};

        const SERVER: &str = r#"
import socket, sys, threading
name, tport, uport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
socks = []
for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
    for kind, port in ((socket.SOCK_STREAM, tport), (socket.SOCK_DGRAM, uport)):
        s = socket.socket(fam, kind)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((addr, port))
        if kind == socket.SOCK_STREAM:
            s.listen(128)
        socks.append((kind, s))
def tcp(s):
    while True:
        c, a = s.accept()
        c.sendall(("%s %s\n" % (name, a[0])).encode())
        c.close()
def udp(s):
    while True:
        d, a = s.recvfrom(2048)
        s.sendto(("%s %s\n" % (name, a[0])).encode(), a)
for kind, s in socks:
    threading.Thread(target=tcp if kind == socket.SOCK_STREAM else udp, args=(s,), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"#;

        const CLIENT: &str = r#"
import socket, sys, time
proto, host, port, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
for _ in range(count):
    t = time.monotonic()
    s = socket.socket(fam, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    s.settimeout(2)
    try:
        s.connect((host, port))
        if proto == "udp":
            s.send(b"x")
        out = "OK " + s.recv(256).decode().strip()
    except ConnectionRefusedError:
        out = "REFUSED"
    except socket.timeout:
        out = "TIMEOUT"
    except OSError as e:
        out = "ERR%d" % e.errno
    finally:
        s.close()
    print("%s %d" % (out, int((time.monotonic() - t) * 1000)), flush=True)
"#;

        /// Namespaces and server processes of one run; everything is removed on drop (also when a check panics).
        struct Lab {
            namespaces: Vec<String>,
            servers: Vec<Child>,
        }

        impl Drop for Lab {
            fn drop(&mut self) {
                for child in &mut self.servers {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                for ns in self.namespaces.iter().rev() {
                    let _ = Command::new("ip").args(["netns", "del", ns]).status();
                }
            }
        }

        fn cmd(args: &[&str]) -> Result<String, String> {
            let out = Command::new(args[0]).args(&args[1..]).output().map_err(|e| format!("{args:?}: {e}"))?;
            if !out.status.success() {
                return Err(format!("{args:?}: {}", String::from_utf8_lossy(&out.stderr)));
            }
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        }

        fn must(args: &[&str]) -> String {
            cmd(args).unwrap_or_else(|e| panic!("{e}"))
        }

        fn apply(node: &str, script: &str) {
            let mut child = Command::new("ip")
                .args(["netns", "exec", node, "nft", "-f", "-"])
                .stdin(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("nft: {e}"));
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(script.as_bytes()).unwrap_or_else(|e| panic!("writing to nft: {e}"));
            }
            let out = child.wait_with_output().unwrap_or_else(|e| panic!("nft: {e}"));
            assert!(out.status.success(), "nft -f failed: {}\n{script}", String::from_utf8_lossy(&out.stderr));
        }

        /// Runs the client in `pod`; returns one (outcome words, milliseconds) per attempt.
        fn client(pod: &str, proto: &str, host: &str, port: u16, count: u32) -> Vec<(Vec<String>, u64)> {
            let (p, c) = (port.to_string(), count.to_string());
            let out = must(&["ip", "netns", "exec", pod, "python3", "-c", CLIENT, proto, host, &p, &c]);
            out.lines()
                .map(|l| {
                    let mut words: Vec<String> = l.split_whitespace().map(str::to_owned).collect();
                    let ms = words.pop().and_then(|w| w.parse().ok()).unwrap_or(u64::MAX);
                    (words, ms)
                })
                .collect()
        }

        /// Asserts every attempt answered and returns the set of (server name, peer address seen by the server).
        fn answers(pod: &str, proto: &str, host: &str, port: u16, count: u32) -> BTreeSet<(String, String)> {
            let results = client(pod, proto, host, port, count);
            assert_eq!(results.len(), count as usize, "{proto} {host}:{port} from {pod}: {results:?}");
            results
                .into_iter()
                .map(|(w, _)| match w.as_slice() {
                    [ok, name, peer] if ok == "OK" => (name.clone(), peer.split('%').next().unwrap_or("").to_owned()),
                    _ => panic!("{proto} {host}:{port} from {pod}: got {w:?}"),
                })
                .collect()
        }

        fn assert_refused(pod: &str, proto: &str, host: &str, port: u16) {
            assert_fails_fast(pod, proto, host, port, "REFUSED");
        }

        /// Every attempt ends with `outcome` (a client word: REFUSED, or ERR<errno>) in well under a second.
        fn assert_fails_fast(pod: &str, proto: &str, host: &str, port: u16, outcome: &str) {
            for (w, ms) in client(pod, proto, host, port, 3) {
                assert_eq!(w, [outcome], "{proto} {host}:{port} from {pod} should fail with {outcome}");
                assert!(ms < 1000, "{proto} {host}:{port} refused only after {ms} ms");
            }
        }

        fn set(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
            pairs.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
        }

        pub(super) fn run() {
            let uid = cmd(&["id", "-u"]).unwrap_or_default();
            if uid.trim() != "0" {
                println!("SKIPPED live_namespaces: needs root to create network namespaces (uid {})", uid.trim());
                return;
            }
            if cmd(&["nft", "--version"]).is_err() {
                println!("SKIPPED live_namespaces: nft not found (apt-get install nftables)");
                return;
            }
            let prefix = format!("palisade-hproxy-{}-", std::process::id());
            let node = format!("{prefix}node");
            let mut lab = Lab { namespaces: Vec::new(), servers: Vec::new() };
            must(&["ip", "netns", "add", &node]);
            lab.namespaces.push(node.clone());
            must(&["ip", "-n", &node, "link", "set", "lo", "up"]);
            must(&["ip", "-n", &node, "addr", "add", "169.254.1.1/32", "dev", "lo"]);
            for kv in ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", "net.ipv4.conf.all.rp_filter=0"] {
                must(&["ip", "netns", "exec", &node, "sysctl", "-qw", kv]);
            }
            let pods = [
                ("p0", "10.244.0.10", "fd00:10::a"),
                ("p1", "10.244.0.11", "fd00:10::b"),
                ("p2", "10.244.0.12", "fd00:10::c"),
            ];
            for (i, (pod, v4, v6)) in pods.iter().enumerate() {
                let ns = format!("{prefix}{pod}");
                let veth = format!("hpxv{i}");
                must(&["ip", "netns", "add", &ns]);
                lab.namespaces.push(ns.clone());
                must(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
                must(&[
                    "ip",
                    "netns",
                    "exec",
                    &ns,
                    "sysctl",
                    "-qw",
                    "net.ipv6.conf.all.accept_dad=0",
                    "net.ipv6.conf.default.accept_dad=0",
                ]);
                must(&[
                    "ip", "link", "add", &veth, "netns", &node, "type", "veth", "peer", "name", "eth0", "netns", &ns,
                ]);
                must(&["ip", "-n", &ns, "addr", "add", &format!("{v4}/32"), "dev", "eth0"]);
                must(&["ip", "-n", &ns, "-6", "addr", "add", &format!("{v6}/128"), "dev", "eth0", "nodad"]);
                must(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
                must(&["ip", "-n", &node, "link", "set", &veth, "up"]);
                must(&[
                    "ip",
                    "netns",
                    "exec",
                    &node,
                    "sysctl",
                    "-qw",
                    &format!("net.ipv4.conf.{veth}.proxy_arp=1"),
                    &format!("net.ipv4.neigh.{veth}.proxy_delay=0"),
                    &format!("net.ipv4.conf.{veth}.rp_filter=0"),
                ]);
                must(&["ip", "-n", &ns, "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link"]);
                must(&["ip", "-n", &ns, "route", "add", "default", "via", "169.254.1.1", "dev", "eth0"]);
                must(&["ip", "-n", &node, "-6", "addr", "add", "fe80::1/64", "dev", &veth, "nodad"]);
                must(&["ip", "-n", &ns, "-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0"]);
                must(&["ip", "-n", &node, "route", "add", &format!("{v4}/32"), "dev", &veth]);
                must(&["ip", "-n", &node, "-6", "route", "add", &format!("{v6}/128"), "dev", &veth]);
                if i < 2 {
                    let mut child = Command::new("ip")
                        .args(["netns", "exec", &ns, "python3", "-c", SERVER, pod, "8080", "5353"])
                        .stdin(Stdio::null())
                        .stdout(Stdio::piped())
                        .spawn()
                        .unwrap_or_else(|e| panic!("starting server: {e}"));
                    let stdout = child.stdout.take();
                    lab.servers.push(child);
                    let mut line = String::new();
                    if let Some(out) = stdout {
                        let _ = BufReader::new(out).read_line(&mut line);
                    }
                    assert_eq!(line.trim(), "ready", "server in {pod} did not start");
                }
            }
            let (p0, p2) = (format!("{prefix}p0"), format!("{prefix}p2"));
            let both = |v4: bool| -> Vec<(IpAddr, u16)> {
                let v: &[&str] = if v4 { &["10.244.0.10", "10.244.0.11"] } else { &["fd00:10::a", "fd00:10::b"] };
                v.iter().map(|a| (ip(a), 8080)).collect()
            };
            let mut web = svc(
                "default",
                "web",
                &["10.96.0.10", "fd00:96::10"],
                vec![
                    port(Protocol::Tcp, 80, &[]),
                    port(Protocol::Udp, 53, &[("10.244.0.10", 5353), ("10.244.0.11", 5353)]),
                    // The kernel must accept SCTP rules; traffic is not tested (SCTP sockets may be unavailable).
                    port(Protocol::Sctp, 9, &[("10.244.0.10", 9000), ("fd00:10::a", 9000)]),
                ],
            );
            web.ports[0].endpoints = [both(true), both(false)].concat();
            let empty = svc(
                "default",
                "empty",
                &["10.96.0.11", "fd00:96::11"],
                vec![port(Protocol::Tcp, 80, &[]), port(Protocol::Udp, 53, &[])],
            );
            let script = render("palisade-hproxy", &[web.clone(), empty.clone()]);
            // Applying twice proves the script replaces an existing table.
            apply(&node, &script);
            apply(&node, &script);
            println!("nft: {}", must(&["nft", "--version"]).trim());

            // Load balancing, no SNAT for a different client pod.
            let n = 24;
            assert_eq!(answers(&p2, "tcp", "10.96.0.10", 80, n), set(&[("p0", "10.244.0.12"), ("p1", "10.244.0.12")]));
            assert_eq!(answers(&p2, "udp", "10.96.0.10", 53, n), set(&[("p0", "10.244.0.12"), ("p1", "10.244.0.12")]));
            assert_eq!(answers(&p2, "tcp", "fd00:96::10", 80, n), set(&[("p0", "fd00:10::c"), ("p1", "fd00:10::c")]));
            // Hairpin: p0 reaching itself through the Service is SNATed to the node's gateway address.
            assert_eq!(answers(&p0, "tcp", "10.96.0.10", 80, n), set(&[("p0", "169.254.1.1"), ("p1", "10.244.0.10")]));
            assert_eq!(answers(&p0, "udp", "10.96.0.10", 53, n), set(&[("p0", "169.254.1.1"), ("p1", "10.244.0.10")]));
            assert_eq!(answers(&p0, "tcp", "fd00:96::10", 80, n), set(&[("p0", "fe80::1"), ("p1", "fd00:10::a")]));
            // No endpoints (and no endpoints of the family, and undefined ports): refused at once, not a timeout.
            assert_refused(&p2, "tcp", "10.96.0.11", 80);
            assert_refused(&p2, "udp", "10.96.0.11", 53);
            assert_refused(&p2, "tcp", "fd00:96::11", 80);
            assert_refused(&p2, "udp", "fd00:96::10", 53);
            assert_refused(&p2, "tcp", "10.96.0.10", 81);

            // Processes in the node namespace go through the output hooks. The socket's route lookup happens
            // before them, so the node needs some route for ClusterIPs; the DNAT then reroutes to the pod.
            must(&["ip", "-n", &node, "route", "add", "10.96.0.0/16", "dev", "lo", "src", "169.254.1.1"]);
            assert_eq!(
                answers(&node, "tcp", "10.96.0.10", 80, n),
                set(&[("p0", "169.254.1.1"), ("p1", "169.254.1.1")])
            );
            assert_eq!(
                answers(&node, "udp", "10.96.0.10", 53, n),
                set(&[("p0", "169.254.1.1"), ("p1", "169.254.1.1")])
            );
            assert_refused(&node, "tcp", "10.96.0.11", 80);
            // A local UDP packet rejected in the output hook fails send() with EPERM at once (the ICMP error the
            // reject generates never reaches the socket, since the send itself was dropped).
            assert_fails_fast(&node, "udp", "10.96.0.11", 53, "ERR1");

            // An update replaces the table: p1 leaves, so only p0 answers; "empty" disappears entirely.
            web.ports[0].endpoints = vec![(ip("10.244.0.10"), 8080)];
            apply(&node, &render("palisade-hproxy", &[web]));
            assert_eq!(answers(&p2, "tcp", "10.96.0.10", 80, 8), set(&[("p0", "10.244.0.12")]));
            let listed = must(&["ip", "netns", "exec", &node, "nft", "list", "table", "inet", "palisade-hproxy"]);
            assert!(!listed.contains("10.96.0.11") && !listed.contains("10.244.0.11:8080"), "{listed}");
            // Hostile namespace/name text must still give a script the kernel accepts.
            let weird = svc(
                "ns \"x\"",
                "a{b}\\c;d\nrm",
                &["10.96.9.1", "fd00:96::9:1"],
                vec![port(Protocol::Tcp, 80, &[("10.0.0.1", 80), ("fd00::1", 80)]), port(Protocol::Sctp, 80, &[])],
            );
            apply(&node, &render("palisade-hproxy-weird", &[weird]));
            must(&["ip", "netns", "exec", &node, "nft", "delete", "table", "inet", "palisade-hproxy-weird"]);
            drop(lab);
            let left = must(&["ip", "netns", "list"]);
            assert!(!left.contains(&prefix), "namespaces left behind: {left}");
        }
    }
}
