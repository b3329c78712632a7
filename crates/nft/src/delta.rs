//! The smallest transaction that turns one applied ruleset into another: set-element adds and deletes, chain
//! replacements, verdict-map entries; and which pod addresses may have lost a connection (for conntrack).
//!
//! Order inside the transaction keeps every reference valid: new sets and chains first, element and rule
//! changes next, then map entries, and only then the removal of chains and sets nothing refers to any more.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use crate::compile::{Chain, Ruleset, Set};

/// A change to apply, and the addresses whose connections it may narrow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// The nft script (empty when nothing changed).
    pub script: String,
    /// Destination addresses of pods whose ingress may now admit less.
    pub narrowed_ingress: BTreeSet<IpAddr>,
    /// Source addresses of pods whose egress may now admit less.
    pub narrowed_egress: BTreeSet<IpAddr>,
    /// Peer addresses some rule no longer admits (removed from a pod-address or named-port set): flows from
    /// or to them may have lost their permission.
    pub narrowed_peers: BTreeSet<IpAddr>,
    /// Number of statements in the script.
    pub statements: usize,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.statements == 0
    }
}

fn referenced_sets(rule: &str) -> impl Iterator<Item = &str> {
    rule.split_whitespace().filter_map(|w| w.strip_prefix('@'))
}

fn jump_target(rule: &str) -> Option<&str> {
    rule.strip_prefix("jump ").map(str::trim)
}

/// Computes the transaction from `old` (what the kernel holds) to `new`.
pub fn delta(old: &Ruleset, new: &Ruleset) -> Delta {
    let t = &new.table;
    let old_sets: BTreeMap<&str, &Set> = old.sets.iter().map(|s| (s.name.as_str(), s)).collect();
    let new_sets: BTreeMap<&str, &Set> = new.sets.iter().map(|s| (s.name.as_str(), s)).collect();
    let old_chains: BTreeMap<&str, &Chain> = old.chains.iter().map(|c| (c.name.as_str(), c)).collect();
    let new_chains: BTreeMap<&str, &Chain> = new.chains.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut out = String::new();
    let mut n = 0;
    let mut emit = |out: &mut String, line: String| {
        let _ = writeln!(out, "{line}");
        n += 1;
    };

    // Sets whose meaning shrank (elements removed, or the set replaced), for the narrowing analysis.
    let mut shrunk: BTreeSet<&str> = BTreeSet::new();
    let mut peers: BTreeSet<IpAddr> = BTreeSet::new();
    // 1. New sets (and sets whose type changed: replaced under the same name is not possible while referenced,
    //    so a type change is a delete + add at the end; names encode the type, so this does not happen).
    for (name, s) in &new_sets {
        match old_sets.get(name) {
            None => emit(&mut out, format!("add set inet {t} {name} {}", s.body(true))),
            Some(o) if o.kind != s.kind || o.interval != s.interval => {
                shrunk.insert(name);
            }
            Some(_) => {}
        }
    }
    // 2. New chains, empty for now (their rules may jump to each other).
    for name in new_chains.keys().filter(|c| !old_chains.contains_key(*c)) {
        emit(&mut out, format!("add chain inet {t} {name}"));
    }
    // Named counters before the rules naming them; they survive their chain being flushed and refilled.
    for name in new.counters.difference(&old.counters) {
        emit(&mut out, format!("add counter inet {t} {name}"));
    }
    // 3. Element changes of kept sets.
    for (name, s) in &new_sets {
        let Some(o) = old_sets.get(name) else { continue };
        if o.kind != s.kind || o.interval != s.interval || std::sync::Arc::ptr_eq(&o.elements, &s.elements) {
            continue;
        }
        let gone: Vec<&str> = o.elements.difference(&s.elements).map(String::as_str).collect();
        let added: Vec<&str> = s.elements.difference(&o.elements).map(String::as_str).collect();
        if !gone.is_empty() {
            // A pod-address or named-port set losing an address narrows only flows of that address; anything
            // else (ports, ipBlock ranges) narrows the chains that use the set.
            let by_address = (!s.interval && matches!(s.kind, "ipv4_addr" | "ipv6_addr"))
                || s.kind.ends_with("_addr . inet_proto . inet_service");
            if by_address {
                for g in &gone {
                    if let Some(Ok(ip)) = g.split(" . ").next().map(str::parse::<IpAddr>) {
                        peers.insert(ip);
                    }
                }
            } else {
                shrunk.insert(name);
            }
            emit(&mut out, format!("delete element inet {t} {name} {{ {} }}", gone.join(", ")));
        }
        if !added.is_empty() {
            emit(&mut out, format!("add element inet {t} {name} {{ {} }}", added.join(", ")));
        }
    }
    // 4. Rules: fill new chains, replace changed ones.
    let mut changed_chains: BTreeSet<&str> = BTreeSet::new();
    for (name, c) in &new_chains {
        match old_chains.get(name) {
            Some(o) if o.rules == c.rules => continue,
            Some(_) => {
                changed_chains.insert(name);
                emit(&mut out, format!("flush chain inet {t} {name}"));
            }
            None => {}
        }
        for r in &c.rules {
            emit(&mut out, format!("add rule inet {t} {name} {r}"));
        }
    }
    // 5. Verdict maps.
    for (map, entries) in &new.maps {
        let empty = BTreeMap::new();
        let before = old.maps.get(map).unwrap_or(&empty);
        let gone: Vec<&String> = before.iter().filter(|(k, v)| entries.get(*k) != Some(*v)).map(|(k, _)| k).collect();
        if !gone.is_empty() {
            let keys: Vec<&str> = gone.iter().map(|k| k.as_str()).collect();
            emit(&mut out, format!("delete element inet {t} {map} {{ {} }}", keys.join(", ")));
        }
        let added: Vec<String> =
            entries.iter().filter(|(k, v)| before.get(*k) != Some(*v)).map(|(k, v)| format!("{k} : {v}")).collect();
        if !added.is_empty() {
            emit(&mut out, format!("add element inet {t} {map} {{ {} }}", added.join(", ")));
        }
    }
    // 6. Chains and sets nothing refers to any more: the pods' dispatch chains first, as they jump to the
    //    policy and tier chains.
    let gone: Vec<&&str> = old_chains.keys().filter(|c| !new_chains.contains_key(**c)).collect();
    let dispatch = |c: &&&str| c.starts_with("ing_") || c.starts_with("egr_");
    for name in gone.iter().filter(|c| dispatch(c)).chain(gone.iter().filter(|c| !dispatch(c))) {
        emit(&mut out, format!("delete chain inet {t} {name}"));
    }
    for name in old.counters.difference(&new.counters) {
        emit(&mut out, format!("delete counter inet {t} {name}"));
    }
    for (name, s) in &old_sets {
        let replaced = new_sets.get(name).is_some_and(|n| n.kind != s.kind || n.interval != s.interval);
        if !new_sets.contains_key(name) || replaced {
            emit(&mut out, format!("delete set inet {t} {name}"));
        }
        if replaced && let Some(ns) = new_sets.get(name) {
            emit(&mut out, format!("add set inet {t} {name} {}", ns.body(true)));
        }
    }

    // Narrowing: a policy chain narrows if its rules changed or a set it uses shrank; a pod chain if it changed
    // or jumps to a narrowed chain; an address if its map entry is new, changed, or goes to a narrowed chain.
    let mut narrowed: BTreeSet<&str> = BTreeSet::new();
    for (name, c) in &new_chains {
        if changed_chains.contains(name) || c.rules.iter().any(|r| referenced_sets(r).any(|s| shrunk.contains(s))) {
            narrowed.insert(name);
        }
    }
    for (name, c) in &new_chains {
        if c.rules.iter().filter_map(|r| jump_target(r)).any(|j| narrowed.contains(j)) {
            narrowed.insert(name);
        }
    }
    let mut delta = Delta { script: out, statements: n, narrowed_peers: peers, ..Delta::default() };
    for (map, entries) in &new.maps {
        let before = old.maps.get(map);
        for (addr, verdict) in entries {
            let target = verdict.strip_prefix("goto ").unwrap_or(verdict);
            let is_new = before.and_then(|b| b.get(addr)) != Some(verdict);
            if (is_new || narrowed.contains(target))
                && let Ok(ip) = addr.parse::<IpAddr>()
            {
                if map.starts_with("ing") {
                    delta.narrowed_ingress.insert(ip);
                } else {
                    delta.narrowed_egress.insert(ip);
                }
            }
        }
    }
    if old.log != new.log {
        // Logging turned on or off (or its ceiling changed) touches the base chains and table-wide objects,
        // which only a whole replace writes.
        delta.script = new.render_replace();
        delta.statements = delta.script.lines().count();
    }
    delta
}
