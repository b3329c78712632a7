//! CIDR parsing as the apiserver accepts it (`ParseCIDRSloppy`) and ipBlock arithmetic.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

/// Parses a CIDR the way `netutils.ParseCIDRSloppy` does: IPv4 octets may carry leading zeros, host bits may be set.
/// Returns the network (host bits cleared).
pub fn parse_cidr_sloppy(s: &str) -> Option<IpNet> {
    let (addr, len) = s.split_once('/')?;
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) || len.len() > 3 {
        return None;
    }
    let len: u8 = len.parse().ok()?;
    let ip = parse_ip_sloppy(addr)?;
    IpNet::new(ip, len).ok().map(|n| n.trunc())
}

/// Parses an address, accepting IPv4 octets with leading zeros (read as decimal), as Go's legacy parser did.
pub fn parse_ip_sloppy(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    let octets: Vec<&str> = s.split('.').collect();
    if octets.len() != 4 {
        return None;
    }
    let mut out = [0u8; 4];
    for (o, text) in out.iter_mut().zip(&octets) {
        if text.is_empty() || text.len() > 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *o = text.parse().ok()?;
    }
    Some(IpAddr::V4(Ipv4Addr::from(out)))
}

/// An ipBlock: addresses in `cidr` but in none of `except`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IpBlock {
    pub cidr: IpNet,
    pub except: Vec<IpNet>,
}

impl IpBlock {
    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.cidr.contains(ip) && !self.except.iter().any(|e| e.contains(ip))
    }

    /// The block as inclusive address ranges (cidr minus every except), sorted, for interval sets.
    pub fn ranges(&self) -> Vec<(IpAddr, IpAddr)> {
        let (lo, hi) = bounds(&self.cidr);
        let mut holes: Vec<(u128, u128)> =
            self.except.iter().filter(|e| e.addr().is_ipv4() == self.cidr.addr().is_ipv4()).map(bounds).collect();
        holes.sort();
        let mut out = Vec::new();
        let mut next = lo;
        let mut done = false;
        for (a, b) in holes {
            if b < next {
                continue;
            }
            if a > next {
                out.push((next, a - 1));
            }
            if b >= hi {
                done = true;
                break;
            }
            next = b + 1;
        }
        if !done && next <= hi {
            out.push((next, hi));
        }
        let v4 = self.cidr.addr().is_ipv4();
        out.into_iter().map(|(a, b)| (to_ip(a, v4), to_ip(b, v4))).collect()
    }
}

/// An address as a number (IPv4 in the low 32 bits), for range arithmetic.
pub fn ip_to_u128(ip: IpAddr) -> u128 {
    to_u128(ip)
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v) => u32::from(v).into(),
        IpAddr::V6(v) => u128::from(v),
    }
}

fn to_ip(n: u128, v4: bool) -> IpAddr {
    if v4 { IpAddr::V4(Ipv4Addr::from(u32::try_from(n).unwrap_or(u32::MAX))) } else { IpAddr::V6(n.into()) }
}

fn bounds(net: &IpNet) -> (u128, u128) {
    (to_u128(net.network()), to_u128(net.broadcast()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sloppy_parsing() {
        assert_eq!(parse_cidr_sloppy("10.0.0.1/24").unwrap().to_string(), "10.0.0.0/24");
        assert_eq!(parse_cidr_sloppy("010.000.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_cidr_sloppy("2001:db8::1/64").unwrap().to_string(), "2001:db8::/64");
        for bad in ["10.0.0.0", "10.0.0.0/33", "10.0.0/8", "x/8", "10.0.0.0/", "10.0.0.0/+8", "::/129"] {
            assert!(parse_cidr_sloppy(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn ranges_subtract_excepts() {
        let b = IpBlock {
            cidr: "10.0.0.0/24".parse().unwrap(),
            except: vec!["10.0.0.0/26".parse().unwrap(), "10.0.0.128/25".parse().unwrap()],
        };
        let r: Vec<String> = b.ranges().iter().map(|(a, b)| format!("{a}-{b}")).collect();
        assert_eq!(r, vec!["10.0.0.64-10.0.0.127"]);
    }

    proptest! {
        /// cidr minus except behaves like set difference, and `ranges` covers exactly the contained addresses.
        #[test]
        fn ranges_equal_contains(base in any::<u32>(), len in 16u8..=30, ex in proptest::collection::vec((any::<u16>(), 0u8..=8), 0..4), probe in any::<u16>()) {
            let cidr = IpNet::new(IpAddr::V4(Ipv4Addr::from(base)), len).unwrap().trunc();
            let host_bits = 32 - u32::from(len);
            let size = 1u32 << host_bits;
            let except: Vec<IpNet> = ex.iter().map(|(off, extra)| {
                let l = (len + 1 + extra).min(32);
                let addr = u32::from_be_bytes(cidr.network().to_string().parse::<Ipv4Addr>().unwrap().octets()) + (u32::from(*off) % size);
                IpNet::new(IpAddr::V4(Ipv4Addr::from(addr)), l).unwrap().trunc()
            }).collect();
            let block = IpBlock { cidr, except };
            let start = match cidr.network() { IpAddr::V4(v) => u32::from(v), IpAddr::V6(_) => unreachable!() };
            let ip = IpAddr::V4(Ipv4Addr::from(start.wrapping_add(u32::from(probe) % (size * 2))));
            let in_ranges = block.ranges().iter().any(|(a, b)| to_u128(*a) <= to_u128(ip) && to_u128(ip) <= to_u128(*b));
            let in_set = cidr.contains(&ip) && !block.except.iter().any(|e| e.contains(&ip));
            prop_assert_eq!(in_ranges, in_set);
            prop_assert_eq!(block.contains(&ip), in_set);
        }
    }
}
