//! Sets of (protocol, port): what a direction allows between two peers.

use std::fmt;

use palisade_engine::Protocol;

/// Protocols in output order (sorted by name).
pub const PROTOCOLS: [Protocol; 3] = [Protocol::Sctp, Protocol::Tcp, Protocol::Udp];

fn slot(p: Protocol) -> usize {
    match p {
        Protocol::Sctp => 0,
        Protocol::Tcp => 1,
        Protocol::Udp => 2,
    }
}

/// Per protocol, disjoint sorted inclusive port ranges within 1-65535.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct PortSet([Vec<(u16, u16)>; 3]);

fn normalize(mut v: Vec<(u16, u16)>) -> Vec<(u16, u16)> {
    v.sort();
    let mut out: Vec<(u16, u16)> = Vec::new();
    for (a, b) in v {
        if let Some(last) = out.last_mut()
            && u32::from(a) <= u32::from(last.1) + 1
        {
            last.1 = last.1.max(b);
            continue;
        }
        out.push((a, b));
    }
    out
}

impl PortSet {
    pub fn none() -> Self {
        PortSet::default()
    }

    pub fn all() -> Self {
        PortSet([vec![(1, 65535)], vec![(1, 65535)], vec![(1, 65535)]])
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Vec::is_empty)
    }

    pub fn is_all(&self) -> bool {
        *self == PortSet::all()
    }

    pub fn add(&mut self, p: Protocol, a: u16, b: u16) {
        let (a, b) = (a.max(1), b);
        if a > b {
            return;
        }
        let v = &mut self.0[slot(p)];
        v.push((a, b));
        *v = normalize(std::mem::take(v));
    }

    pub fn union(&self, other: &PortSet) -> PortSet {
        let mut out = self.clone();
        for i in 0..3 {
            let mut v = out.0[i].clone();
            v.extend(other.0[i].iter().copied());
            out.0[i] = normalize(v);
        }
        out
    }

    pub fn intersect(&self, other: &PortSet) -> PortSet {
        let mut out = PortSet::none();
        for i in 0..3 {
            for &(a, b) in &self.0[i] {
                for &(c, d) in &other.0[i] {
                    let (lo, hi) = (a.max(c), b.min(d));
                    if lo <= hi {
                        out.0[i].push((lo, hi));
                    }
                }
            }
            out.0[i] = normalize(std::mem::take(&mut out.0[i]));
        }
        out
    }

    pub fn subtract(&self, other: &PortSet) -> PortSet {
        let mut out = PortSet::none();
        for i in 0..3 {
            let mut keep = self.0[i].clone();
            for &(c, d) in &other.0[i] {
                let mut next = Vec::new();
                for (a, b) in keep {
                    if d < a || c > b {
                        next.push((a, b));
                        continue;
                    }
                    if a < c {
                        next.push((a, c - 1));
                    }
                    if d < b {
                        next.push((d + 1, b));
                    }
                }
                keep = next;
            }
            out.0[i] = keep;
        }
        out
    }

    pub fn ranges(&self, p: Protocol) -> &[(u16, u16)] {
        &self.0[slot(p)]
    }
}

/// `All Connections`, or `SCTP 1-65535,TCP 80,8080-8090,UDP 53` as netpol-analyzer prints it.
impl fmt::Display for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_all() {
            return f.write_str("All Connections");
        }
        if self.is_empty() {
            return f.write_str("No Connections");
        }
        let mut first = true;
        for p in PROTOCOLS {
            let r = self.ranges(p);
            if r.is_empty() {
                continue;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            let parts: Vec<String> =
                r.iter().map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect();
            write!(f, "{p} {}", parts.join(","))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_netpol_analyzer() {
        let mut s = PortSet::none();
        s.add(Protocol::Udp, 10053, 10053);
        s.add(Protocol::Tcp, 10053, 10053);
        s.add(Protocol::Tcp, 10054, 10054);
        assert_eq!(s.to_string(), "TCP 10053-10054,UDP 10053");
        let mut udp = PortSet::none();
        udp.add(Protocol::Udp, 5353, 5353);
        assert_eq!(PortSet::all().subtract(&udp).to_string(), "SCTP 1-65535,TCP 1-65535,UDP 1-5352,5354-65535");
        assert_eq!(PortSet::all().to_string(), "All Connections");
        assert!(s.intersect(&udp).is_empty());
    }
}
