//! Which interface a local pod's address lives behind: the seam to the node's routing table.
//!
//! Routed CNIs (Calico, Cilium in routing mode, the sandbox) give each pod a host route (`/32`, `/128`)
//! through its veth: that veth is the pod's interface and the dataplane checks that packets entering on it
//! carry the pod's address. Where pods sit behind a bridge (flannel's `cni0`) there is no host route;
//! the pod is then enforced all the same, without that check.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Resolves pod addresses to interface names.
pub trait Interfaces {
    /// Called before lookups: refresh what the lookups read. Returns whether any answer may have changed
    /// since the previous refresh (a pod whose interface was not found is looked up again only then).
    fn refresh(&mut self) -> bool {
        false
    }
    fn interface_of(&self, ip: IpAddr) -> Option<String>;
    /// Pod address ranges the network plugin's interfaces reveal (the subnet of a bridge such as flannel's
    /// `cni0`).
    fn pod_ranges(&self) -> Vec<ipnet::IpNet> {
        Vec::new()
    }
}

/// The kernel's routing table of the agent's network namespace, read from `/proc/net/route` and
/// `/proc/net/ipv6_route` (host routes only).
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: BTreeMap<IpAddr, String>,
    /// Subnets connected on bridge interfaces: where a bridge CNI puts its pods.
    bridged: Vec<ipnet::IpNet>,
}

/// Connected (gateway-less) subnets per interface, from `/proc/net/route` and `/proc/net/ipv6_route`,
/// without host routes, default routes and link-local ones.
pub fn connected_subnets(v4: &str, v6: &str) -> Vec<(String, ipnet::IpNet)> {
    let mut out = Vec::new();
    for line in v4.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 || f[7] == "FFFFFFFF" || f[2] != "00000000" {
            continue;
        }
        let (Ok(d), Ok(m)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16)) else { continue };
        let plen = m.swap_bytes().leading_ones();
        if plen == 0 {
            continue;
        }
        if let Ok(n) = ipnet::Ipv4Net::new(Ipv4Addr::from(d.swap_bytes()), u8::try_from(plen).unwrap_or(32)) {
            out.push((f[0].to_owned(), ipnet::IpNet::V4(n)));
        }
    }
    for line in v6.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 || f[9] == "lo" || f[4] != "00000000000000000000000000000000" {
            continue;
        }
        let (Ok(d), Ok(plen)) = (u128::from_str_radix(f[0], 16), u8::from_str_radix(f[1], 16)) else { continue };
        let addr = Ipv6Addr::from(d);
        if plen == 0 || plen == 128 || addr.segments()[0] & 0xffc0 == 0xfe80 || addr.segments()[0] & 0xff00 == 0xff00 {
            continue;
        }
        if let Ok(n) = ipnet::Ipv6Net::new(addr, plen) {
            out.push((f[9].to_owned(), ipnet::IpNet::V6(n)));
        }
    }
    out
}

impl RouteTable {
    /// Host routes from the text of `/proc/net/route` and `/proc/net/ipv6_route`.
    pub fn parse(v4: &str, v6: &str) -> BTreeMap<IpAddr, String> {
        let mut routes = BTreeMap::new();
        for line in v4.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // Iface Destination Gateway Flags RefCnt Use Metric Mask ...
            if f.len() < 8 || f[7] != "FFFFFFFF" {
                continue;
            }
            if let Ok(d) = u32::from_str_radix(f[1], 16) {
                // The kernel prints the address in host byte order (little-endian here).
                routes.insert(IpAddr::V4(Ipv4Addr::from(d.swap_bytes())), f[0].to_owned());
            }
        }
        for line in v6.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            // dest dest_plen src src_plen nexthop metric refcnt use flags iface
            if f.len() < 10 || f[1] != "80" || f[9] == "lo" {
                continue;
            }
            if let Ok(d) = u128::from_str_radix(f[0], 16) {
                routes.entry(IpAddr::V6(Ipv6Addr::from(d))).or_insert_with(|| f[9].to_owned());
            }
        }
        routes
    }
}

impl Interfaces for RouteTable {
    fn refresh(&mut self) -> bool {
        let v4 = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
        let v6 = std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
        let routes = Self::parse(&v4, &v6);
        let bridged: Vec<ipnet::IpNet> = connected_subnets(&v4, &v6)
            .into_iter()
            .filter(|(ifname, _)| std::path::Path::new("/sys/class/net").join(ifname).join("bridge").exists())
            .map(|(_, n)| n)
            .collect();
        let changed = routes != self.routes || bridged != self.bridged;
        self.routes = routes;
        self.bridged = bridged;
        changed
    }

    fn interface_of(&self, ip: IpAddr) -> Option<String> {
        self.routes.get(&ip).cloned()
    }

    fn pod_ranges(&self) -> Vec<ipnet::IpNet> {
        self.bridged.clone()
    }
}

/// A fixed table, for tests.
#[derive(Debug, Default, Clone)]
pub struct FixedInterfaces(pub BTreeMap<IpAddr, String>);

impl Interfaces for FixedInterfaces {
    fn interface_of(&self, ip: IpAddr) -> Option<String> {
        self.0.get(&ip).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_routes_are_read_from_proc() {
        let v4 = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                  p1v0\t0100F40A\t00000000\t0005\t0\t0\t0\tFFFFFFFF\t0\t0\t0\n\
                  eth0\t0000F40A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let v6 = "fd000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000400 00000001 00000000 00000001 p1v0\n\
                  fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 p1v0\n";
        let r = RouteTable::parse(v4, v6);
        assert_eq!(r.get(&"10.244.0.1".parse().unwrap()).map(String::as_str), Some("p1v0"));
        assert_eq!(r.get(&"fd00::1".parse().unwrap()).map(String::as_str), Some("p1v0"));
        assert_eq!(r.len(), 2, "only host routes: {r:?}");
    }

    #[test]
    fn connected_subnets_are_read_from_proc() {
        let v4 = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                  cni0\t0001F40A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                  p1v0\t0100F40A\t00000000\t0005\t0\t0\t0\tFFFFFFFF\t0\t0\t0\n\
                  eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                  eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let v6 = "fd000001000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 cni0\n\
                  fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 cni0\n\
                  fd000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000400 00000001 00000000 00000001 p1v0\n";
        let got: Vec<String> = connected_subnets(v4, v6).iter().map(|(i, n)| format!("{i} {n}")).collect();
        assert_eq!(got, ["cni0 10.244.1.0/24", "eth0 192.168.0.0/16", "cni0 fd00:1::/64"]);
    }
}
