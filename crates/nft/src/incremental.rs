//! The node's table kept in pieces, so that a change costs what it touches.
//!
//! One piece per policy chain (a policy selecting a local pod, per direction) and one per local pod (its
//! dispatch chains, verdict-map entries and anti-spoofing elements). Sets are shared between pieces by what
//! defines their contents: a rule's pod peers as written (`peer4_…`, members kept current as pods change),
//! fixed contents (`ports_…`, `cidr4_…`), and a rule's named-port resolutions (owned by its policy).
//!
//! [`NodeCompiler::update`] takes the engine store's [`Changes`] (pods touched, with the addresses they had,
//! and policies touched), recompiles only the pieces they concern, moves each touched pod in or out of the
//! peer sets it now belongs to, and returns the transaction from the pieces that changed, with what it may
//! narrow. [`NodeCompiler::full`] compiles everything (first sync, resync) and [`NodeCompiler::ruleset`]
//! assembles the pieces into the whole table; after any sequence of updates it equals a fresh full compile
//! (property-tested).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use foldhash::HashMap;
use palisade_engine::bitset::BitSet;
use palisade_engine::cnp::Tier;
use palisade_engine::policy::{Direction, NamespaceScope, Peer, PortMatch, Selector};
use palisade_engine::store::Changes;
use palisade_engine::{Index, IpFamily, ObjectKey, PodId, Protocol};

use crate::compile::{
    Chain, LogOptions, Node, POD_IFADDR4, POD_IFADDR6, POD_IFS, POD_KNOWN4, POD_KNOWN6, POD_RANGES4, POD_RANGES6,
    Ruleset, Set, drop_counter, ident, ip_num, ip_of, log_rule, merge, num_ip, proto, quote, range_elem,
};
use crate::delta::Delta;
use crate::tiers;

const DIRS: [Direction; 2] = [Direction::Ingress, Direction::Egress];
const FAMILIES: [IpFamily; 2] = [IpFamily::V4, IpFamily::V6];
/// The sets every table has: (name, type, interval). Pods contribute the first five; the node's pod address
/// ranges fill the last two.
const NODE_SETS: [(&str, &str, bool); 7] = [
    (POD_IFS, "ifname", false),
    (POD_IFADDR4, "ifname . ipv4_addr", false),
    (POD_IFADDR6, "ifname . ipv6_addr", false),
    (POD_KNOWN4, "ipv4_addr", false),
    (POD_KNOWN6, "ipv6_addr", false),
    (POD_RANGES4, "ipv4_addr", true),
    (POD_RANGES6, "ipv6_addr", true),
];
const KNOWN: [usize; 2] = [3, 4];
const RANGES: [usize; 2] = [5, 6];

type PolicyDir = (ObjectKey, Direction);
/// A rule of a policy: (policy, direction, rule index).
type RuleRef = (ObjectKey, Direction, usize);

fn slot(f: IpFamily) -> usize {
    usize::from(f == IpFamily::V6)
}

fn fam(f: IpFamily) -> &'static str {
    if f == IpFamily::V4 { "4" } else { "6" }
}

fn short(d: Direction) -> &'static str {
    &d.as_str()[..3]
}

fn policy_chain(key: &ObjectKey, d: Direction) -> String {
    format!("pol_{}__{}_{}", ident(&key.namespace), ident(&key.name), short(d))
}

fn pod_chain(key: &ObjectKey, d: Direction) -> String {
    format!("{}_{}__{}", short(d), ident(&key.namespace), ident(&key.name))
}

fn map_of(d: Direction, ip: &IpAddr) -> &'static str {
    match (d, ip.is_ipv4()) {
        (Direction::Ingress, true) => "ing4",
        (Direction::Ingress, false) => "ing6",
        (Direction::Egress, true) => "eg4",
        (Direction::Egress, false) => "eg6",
    }
}

fn stable_hash<T: std::hash::Hash>(v: &T) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x5041_4c49_5341_4445).hash_one(v)
}

/// What defines a pod-address set: a rule's pod peers as written, for one address family. Two rules with
/// the same definition always hold the same pods, so they share the set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PeerDef {
    slot: usize,
    peers: Vec<(NamespaceScope, Selector)>,
}

/// What defines an egress rule's named-port set: the destinations (the rule's peers as written, or every
/// pod) and the port names, for one address family. Its elements follow the pods, as a peer set's do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct NamedDef {
    slot: usize,
    peers: Option<Vec<Peer>>,
    names: Vec<(String, Protocol)>,
}

/// A set of the table and the rules using it.
#[derive(Debug, Clone)]
struct Shared {
    set: Set,
    /// For a pod-address set, what defines its members (kept current as pods change).
    peers: Option<PeerDef>,
    /// For an egress named-port set, what defines its elements (kept current as pods change).
    named: Option<NamedDef>,
    users: BTreeSet<RuleRef>,
}

/// A policy chain and the sets its rules use.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PolicyPiece {
    rules: Vec<String>,
    sets: Vec<String>,
    /// Whether a rule resolves named ports (its sets follow the pods it resolves them on).
    named: bool,
}

/// What a local pod contributes: its dispatch chains, verdict-map entries and anti-spoofing elements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PodPiece {
    ifname: String,
    /// The policies jumped to, per direction (ingress, egress), in the index's order.
    jumps: [Vec<ObjectKey>; 2],
    chains: Vec<(String, Vec<String>)>,
    maps: Vec<(&'static str, String, String)>,
    node_elements: Vec<(usize, String)>,
    /// The tier chains its sides jump to.
    tiers: Vec<(String, Tier, Direction)>,
    /// NetworkPolicy isolates it in at least one direction.
    isolated: bool,
    /// The ids of its final drops (log prefix and named counter), per direction it is isolated in.
    deny_ids: Vec<(Direction, u32)>,
}

/// One transaction being assembled: the kernel's state of everything touched (recorded at first touch)
/// and the changes of the elements of sets that stay.
#[derive(Debug, Default)]
struct Tx {
    sets_before: BTreeMap<String, bool>,
    elem_add: BTreeMap<String, BTreeSet<String>>,
    elem_del: BTreeMap<String, BTreeSet<String>>,
    chains_before: BTreeMap<String, Option<Vec<String>>>,
    chains_after: BTreeMap<String, Option<Vec<String>>>,
    maps_before: BTreeMap<(&'static str, String), Option<String>>,
    maps_after: BTreeMap<(&'static str, String), Option<String>>,
    /// Named counters touched: (existed before, exists after).
    counters: BTreeMap<String, (bool, bool)>,
    /// Policy chains whose rules changed or went away.
    narrowed_policies: BTreeSet<PolicyDir>,
    /// Local pods whose dispatch chain changed.
    narrowed_pods: BTreeSet<(Direction, ObjectKey)>,
    /// A local pod came, went or changed which tier chains it jumps to.
    tier_jumps: bool,
}

impl Tx {
    fn add_element(&mut self, set: &str, e: &str) {
        if !self.elem_del.get_mut(set).is_some_and(|d| d.remove(e)) {
            self.elem_add.entry(set.to_owned()).or_default().insert(e.to_owned());
        }
    }

    fn del_element(&mut self, set: &str, e: &str) {
        if !self.elem_add.get_mut(set).is_some_and(|a| a.remove(e)) {
            self.elem_del.entry(set.to_owned()).or_default().insert(e.to_owned());
        }
    }

    fn counter(&mut self, name: &str, before: bool, after: bool) {
        self.counters.entry(name.to_owned()).or_insert((before, after)).1 = after;
    }

    fn chain(&mut self, name: &str, before: Option<&Vec<String>>, after: Option<Vec<String>>) {
        self.chains_before.entry(name.to_owned()).or_insert_with(|| before.cloned());
        self.chains_after.insert(name.to_owned(), after);
    }

    /// One pod's entry for `addr` goes from `before` to `after`. An address can move between two pods in
    /// one transaction (one pod goes, another gets its address) in either order: the kernel held an entry if
    /// any pod had one before, and a pod removing its own entry leaves another pod's new one in place.
    fn map_entry(&mut self, map: &'static str, addr: &str, before: Option<&str>, after: Option<String>) {
        let k = (map, addr.to_owned());
        let b = self.maps_before.entry(k.clone()).or_insert(None);
        if b.is_none() {
            *b = before.map(str::to_owned);
        }
        match after {
            Some(v) => {
                self.maps_after.insert(k, Some(v));
            }
            None => {
                let other = self.maps_after.get(&k).is_some_and(|a| a.is_some() && a.as_deref() != before);
                if !other {
                    self.maps_after.insert(k, None);
                }
            }
        }
    }
}

/// The node's table as pieces, and what a change to it takes.
#[derive(Debug, Default)]
pub struct NodeCompiler {
    table: String,
    policies: HashMap<PolicyDir, PolicyPiece>,
    /// The local pods jumping to each policy chain.
    users: HashMap<PolicyDir, BTreeSet<ObjectKey>>,
    pods: BTreeMap<ObjectKey, PodPiece>,
    sets: HashMap<String, Shared>,
    by_def: HashMap<PeerDef, String>,
    by_named: HashMap<NamedDef, String>,
    /// Elements of [`NODE_SETS`], each with how many pieces contribute it (two local pods may share an
    /// interface or, briefly, an address).
    node_sets: [BTreeMap<String, u32>; 7],
    /// How many pods of the cluster have each address (as their first of its family): an address leaves a
    /// pod-address set only when no member pod still has it.
    ip_count: HashMap<IpAddr, u32>,
    /// Rules, set and map elements, and local pods with a dispatch chain, counted as pieces change (the
    /// metrics after every sync would otherwise count the whole table).
    counts: Counts,
    /// The tier chains local pods jump to, with their rules, and the sets only they use (see [`tiers`]).
    tier_chains: BTreeMap<String, Vec<String>>,
    tier_sets: BTreeSet<String>,
    tier_rules: tiers::RuleCache,
    /// Deny logging, when on (see [`LogOptions`]).
    log: Option<LogOptions>,
    /// What each final-drop id (log prefix `pal1 D <id>`, counter `d_<id>`) names, and the reverse.
    log_ids: BTreeMap<u32, LogTarget>,
    id_of: HashMap<(ObjectKey, Direction), u32>,
    /// Bumped whenever `log_ids` changes, so a reader copies it only then.
    log_generation: u64,
}

/// What a final-drop id names: the local pod, the direction, and its dispatch chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTarget {
    pub pod: ObjectKey,
    pub direction: Direction,
    pub chain: String,
}

/// The final-drop ids: a stable 32-bit hash of (pod, direction), salted while it clashes with another pod's.
/// A pod keeps its id while its chain exists; on a clash the pod that came later is salted (a fresh compile
/// salts the later one in key order, so after a clash the names may differ from a fresh compile's).
#[derive(Debug)]
struct DropIds<'a> {
    ids: &'a mut BTreeMap<u32, LogTarget>,
    id_of: &'a mut HashMap<(ObjectKey, Direction), u32>,
    changed: bool,
}

impl DropIds<'_> {
    fn get(&mut self, key: &ObjectKey, d: Direction) -> u32 {
        if let Some(id) = self.id_of.get(&(key.clone(), d)) {
            return *id;
        }
        let mut salt = 0u32;
        let id = loop {
            // The fold of a 64-bit hash; 0 stays free for the base chains' log points.
            let h = stable_hash(&(&key.namespace, &key.name, d.as_str(), salt));
            let id = (h ^ (h >> 32)) as u32;
            if id != 0 && !self.ids.contains_key(&id) {
                break id;
            }
            salt += 1;
        };
        self.ids.insert(id, LogTarget { pod: key.clone(), direction: d, chain: pod_chain(key, d) });
        self.id_of.insert((key.clone(), d), id);
        self.changed = true;
        id
    }

    fn release(&mut self, key: &ObjectKey, d: Direction, id: u32) {
        if self.ids.get(&id).is_some_and(|t| &t.pod == key && t.direction == d) {
            self.ids.remove(&id);
            self.id_of.remove(&(key.clone(), d));
            self.changed = true;
        }
    }
}

/// The user the tier chains' sets are kept for (no NetworkPolicy rule has an empty key).
fn tier_user() -> RuleRef {
    (ObjectKey::new("", ""), Direction::Ingress, usize::MAX)
}

/// What [`NodeCompiler::size`] and [`NodeCompiler::isolated_pods`] report.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    rules: usize,
    elements: usize,
    isolated: usize,
}

impl Counts {
    fn pod(&mut self, p: &PodPiece, sign: isize) {
        let rules: usize = p.chains.iter().map(|(_, r)| r.len()).sum();
        self.add(rules, p.maps.len(), usize::from(p.isolated), sign);
    }

    fn add(&mut self, rules: usize, elements: usize, isolated: usize, sign: isize) {
        let f = |x: &mut usize, d: usize| *x = if sign > 0 { *x + d } else { *x - d };
        f(&mut self.rules, rules);
        f(&mut self.elements, elements);
        f(&mut self.isolated, isolated);
    }
}

/// Per update: the index's policies by id, found by key (ids are in key order).
struct Ids<'a> {
    index: &'a Index,
}

impl<'a> Ids<'a> {
    fn new(index: &'a Index) -> Self {
        Ids { index }
    }

    fn of(&self, key: &ObjectKey) -> Option<usize> {
        self.index.policy_id(key)
    }

    fn at(&self, pi: usize) -> Option<&'a palisade_engine::policy::Policy> {
        self.index.policy_at(pi)
    }
}

impl NodeCompiler {
    pub fn new(table: &str) -> NodeCompiler {
        NodeCompiler { table: table.to_owned(), ..NodeCompiler::default() }
    }

    /// Deny logging on (`Some`) or off. Takes effect at the next [`NodeCompiler::full`] (the table-wide
    /// objects are part of a full replace only).
    pub fn with_log(mut self, log: Option<LogOptions>) -> NodeCompiler {
        self.log = log;
        self
    }

    pub fn log(&self) -> Option<LogOptions> {
        self.log
    }

    /// What each final-drop id of the current table names (`pal1 D <id>` prefixes, `d_<id>` counters).
    pub fn log_ids(&self) -> &BTreeMap<u32, LogTarget> {
        &self.log_ids
    }

    /// Changes whenever [`NodeCompiler::log_ids`] does.
    pub fn log_generation(&self) -> u64 {
        self.log_generation
    }

    /// Compiles everything from scratch (the first sync, a resync) and returns the whole table.
    pub fn full(&mut self, index: &Index, node: &Node) -> Ruleset {
        let generation = self.log_generation + 1;
        *self = NodeCompiler::new(&self.table).with_log(self.log);
        self.log_generation = generation;
        for p in index.pods() {
            for f in FAMILIES {
                if let Some(ip) = p.facts.ip(f) {
                    *self.ip_count.entry(ip).or_default() += 1;
                }
            }
        }
        let mut tx = Tx::default();
        self.run(index, node, &Changes::default(), None, &mut tx);
        self.refresh_tiers(index, &mut tx);
        self.sweep(&mut tx);
        self.ruleset()
    }

    /// Brings the pieces up to date with `changes` (what the engine's store recorded since the last update
    /// or full compile) and returns the transaction that takes the kernel from the previous table to the
    /// new one.
    pub fn update(&mut self, index: &Index, node: &Node, changes: &Changes) -> Delta {
        self.update_with(index, node, changes, None)
    }

    /// [`NodeCompiler::update`] for a caller that knows which local pods `moved` since the last update
    /// (became or stopped being local, or changed interface, beside `changes`): the node's pods are then not
    /// compared one by one, so the update costs what the changes touch whatever the number of local pods.
    pub fn update_with(
        &mut self,
        index: &Index,
        node: &Node,
        changes: &Changes,
        moved: Option<&BTreeSet<ObjectKey>>,
    ) -> Delta {
        for (key, before) in &changes.pods {
            for f in FAMILIES {
                if let Some(ip) = before.iter().copied().find(|ip| IpFamily::of(ip) == f)
                    && let Some(c) = self.ip_count.get_mut(&ip)
                {
                    *c = c.saturating_sub(1);
                    if *c == 0 {
                        self.ip_count.remove(&ip);
                    }
                }
                if let Some(ip) = index.pod_id(key).and_then(|id| index.pod(id).facts.ip(f)) {
                    *self.ip_count.entry(ip).or_default() += 1;
                }
            }
        }
        let mut tx = Tx::default();
        self.run(index, node, changes, Some(moved), &mut tx);
        self.refresh_peers(index, changes, &mut tx);
        self.refresh_named(index, changes, &mut tx);
        // The tiers' sets follow every pod; their chains, the tier policies.
        self.tier_rules.invalidate(index, changes);
        if changes.tiers || tx.tier_jumps || (!self.tier_chains.is_empty() && !changes.pods.is_empty()) {
            self.refresh_tiers(index, &mut tx);
        }
        self.sweep(&mut tx);
        self.emit(tx)
    }

    /// Pieces first: pods (which decide which policy chains are needed), then policies.
    /// `update`: `None` for a full compile, else the local pods known to have moved (`None`: compare them all).
    fn run(
        &mut self,
        index: &Index,
        node: &Node,
        changes: &Changes,
        update: Option<Option<&BTreeSet<ObjectKey>>>,
        tx: &mut Tx,
    ) {
        self.set_ranges(node, tx);
        let ids = Ids::new(index);
        // Local pods to look at again.
        let mut dirty: BTreeSet<ObjectKey> = BTreeSet::new();
        let local = |k: &ObjectKey| node.interfaces.get(k).filter(|_| index.pod_id(k).is_some());
        match update {
            None => dirty.extend(node.interfaces.keys().filter(|k| local(k).is_some()).cloned()),
            Some(moved) => {
                let known = changes.pods.keys().chain(moved.into_iter().flatten());
                for k in known {
                    if local(k).is_some() || self.pods.contains_key(k) {
                        dirty.insert(k.clone());
                    }
                }
                if changes.tiers {
                    // Which tier policies select a pod may have changed for any of them.
                    dirty.extend(node.interfaces.keys().filter(|k| local(k).is_some()).cloned());
                }
                if moved.is_none() {
                    // Pods that became or stopped being local, or whose interface is known now.
                    for (k, ifname) in &node.interfaces {
                        if local(k).is_some() && self.pods.get(k).is_none_or(|p| &p.ifname != ifname) {
                            dirty.insert(k.clone());
                        }
                    }
                    for k in self.pods.keys() {
                        if local(k).is_none() {
                            dirty.insert(k.clone());
                        }
                    }
                }
                // The local pods a changed policy selected, or selects now.
                for pk in &changes.policies {
                    let pi = ids.of(pk);
                    for d in DIRS {
                        if let Some(users) = self.users.get(&(pk.clone(), d)) {
                            dirty.extend(users.iter().cloned());
                        }
                        for id in pi.into_iter().flat_map(|pi| index.selected_pods(pi, d)) {
                            let k = &index.pod(id).key;
                            if node.interfaces.contains_key(k) {
                                dirty.insert(k.clone());
                            }
                        }
                    }
                }
            }
        }
        // Which policy chains to compile again.
        let mut policies: BTreeSet<PolicyDir> = BTreeSet::new();
        let mut named_users: BTreeSet<PolicyDir> = BTreeSet::new();
        for k in &dirty {
            for (i, d) in DIRS.into_iter().enumerate() {
                for pk in self.pods.get(k).map(|p| p.jumps[i].as_slice()).unwrap_or_default() {
                    let pd = (pk.clone(), d);
                    if self.policies.get(&pd).is_some_and(|p| p.named) {
                        named_users.insert(pd);
                    }
                }
            }
            let mut log_ids = DropIds { ids: &mut self.log_ids, id_of: &mut self.id_of, changed: false };
            let new = local(k).and_then(|ifname| {
                let id = index.pod_id(k)?;
                Some(pod_piece(index, &ids, id, k, ifname, self.log.as_ref(), &mut log_ids))
            });
            let old = self.pods.remove(k);
            for (d, id) in old.iter().flat_map(|p| p.deny_ids.iter()) {
                if !new.as_ref().is_some_and(|n| n.deny_ids.contains(&(*d, *id))) {
                    log_ids.release(k, *d, *id);
                }
            }
            if log_ids.changed {
                self.log_generation += 1;
            }
            if old == new {
                if let Some(p) = old {
                    self.pods.insert(k.clone(), p);
                }
                continue;
            }
            if old.as_ref().map(|p| &p.tiers) != new.as_ref().map(|p| &p.tiers) {
                tx.tier_jumps = true;
            }
            self.replace_pod(k, old.as_ref(), new.as_ref(), tx, &mut policies);
            if let Some(o) = &old {
                self.counts.pod(o, -1);
            }
            if let Some(n) = &new {
                self.counts.pod(n, 1);
            }
            if let Some(p) = &new {
                for (i, d) in DIRS.into_iter().enumerate() {
                    for pk in &p.jumps[i] {
                        if self.policies.get(&(pk.clone(), d)).is_some_and(|p| p.named) {
                            named_users.insert((pk.clone(), d));
                        }
                    }
                }
            }
            if let Some(p) = new {
                self.pods.insert(k.clone(), p);
            }
        }
        for pk in &changes.policies {
            for d in DIRS {
                policies.insert((pk.clone(), d));
            }
        }
        // Ingress named ports resolve on the selected local pods: those chains follow their pods' changes.
        policies.extend(named_users);
        for pd in policies {
            let needed = self.users.get(&pd).is_some_and(|u| !u.is_empty());
            let pi = ids.of(&pd.0).filter(|_| needed);
            self.replace_policy(index, &ids, &pd, pi, tx);
        }
    }

    /// The node's pod address ranges, merged (interval sets refuse overlaps), as set elements.
    fn set_ranges(&mut self, node: &Node, tx: &mut Tx) {
        for (slot, v4) in [(RANGES[0], true), (RANGES[1], false)] {
            let ranges: Vec<(u128, u128)> = node
                .pod_ranges
                .iter()
                .filter(|n| n.addr().is_ipv4() == v4)
                .map(|n| (ip_num(n.network()), ip_num(n.broadcast())))
                .collect();
            let want: BTreeSet<String> = merge(ranges, |x: u128| x.checked_add(1))
                .into_iter()
                .map(|(a, z)| range_elem(num_ip(a, v4), num_ip(z, v4)))
                .collect();
            let have: Vec<String> = self.node_sets[slot].keys().filter(|e| !want.contains(*e)).cloned().collect();
            for e in have {
                self.node_sets[slot].remove(&e);
                self.counts.elements -= 1;
                tx.del_element(NODE_SETS[slot].0, &e);
            }
            for e in want {
                if self.node_sets[slot].insert(e.clone(), 1).is_none() {
                    self.counts.elements += 1;
                    tx.add_element(NODE_SETS[slot].0, &e);
                }
            }
        }
    }

    fn replace_pod(
        &mut self,
        key: &ObjectKey,
        old: Option<&PodPiece>,
        new: Option<&PodPiece>,
        tx: &mut Tx,
        policies: &mut BTreeSet<PolicyDir>,
    ) {
        let empty = PodPiece::default();
        let (o, n) = (old.unwrap_or(&empty), new.unwrap_or(&empty));
        for (i, d) in DIRS.into_iter().enumerate() {
            for pk in &o.jumps[i] {
                let pd = (pk.clone(), d);
                if let Some(u) = self.users.get_mut(&pd) {
                    u.remove(key);
                    if u.is_empty() {
                        self.users.remove(&pd);
                        policies.insert(pd);
                    }
                }
            }
            for pk in &n.jumps[i] {
                let u = self.users.entry((pk.clone(), d)).or_default();
                if u.is_empty() {
                    policies.insert((pk.clone(), d));
                }
                u.insert(key.clone());
            }
        }
        for (name, rules) in &o.chains {
            let after = n.chains.iter().find(|(m, _)| m == name).map(|(_, r)| r.clone());
            if after.as_ref().is_some_and(|a| a != rules) {
                let d = if name.starts_with("ing_") { Direction::Ingress } else { Direction::Egress };
                tx.narrowed_pods.insert((d, key.clone()));
            }
            tx.chain(name, Some(rules), after);
        }
        for (name, rules) in &n.chains {
            if !o.chains.iter().any(|(m, _)| m == name) {
                tx.chain(name, None, Some(rules.clone()));
            }
        }
        for (_, id) in &o.deny_ids {
            let after = n.deny_ids.iter().any(|(_, i)| i == id);
            tx.counter(&drop_counter(*id), true, after);
        }
        for (_, id) in &n.deny_ids {
            if !o.deny_ids.iter().any(|(_, i)| i == id) {
                tx.counter(&drop_counter(*id), false, true);
            }
        }
        for (map, addr, verdict) in &o.maps {
            let after = n.maps.iter().find(|(m, a, _)| m == map && a == addr).map(|(_, _, v)| v.clone());
            tx.map_entry(map, addr, Some(verdict), after);
        }
        for (map, addr, verdict) in &n.maps {
            if !o.maps.iter().any(|(m, a, _)| m == map && a == addr) {
                tx.map_entry(map, addr, None, Some(verdict.clone()));
            }
        }
        for (s, e) in &n.node_elements {
            let c = self.node_sets[*s].entry(e.clone()).or_default();
            *c += 1;
            if *c == 1 {
                self.counts.elements += 1;
                tx.add_element(NODE_SETS[*s].0, e);
            }
        }
        for (s, e) in &o.node_elements {
            if let Some(c) = self.node_sets[*s].get_mut(e) {
                *c -= 1;
                if *c == 0 {
                    self.node_sets[*s].remove(e);
                    self.counts.elements -= 1;
                    tx.del_element(NODE_SETS[*s].0, e);
                }
            }
        }
    }

    /// Compiles one policy chain again (`pi` is its id when a local pod still needs it), releasing the sets
    /// its old rules used and taking the ones its new rules use.
    fn replace_policy(&mut self, index: &Index, ids: &Ids, pd: &PolicyDir, pi: Option<usize>, tx: &mut Tx) {
        let name = policy_chain(&pd.0, pd.1);
        let old = self.policies.remove(pd);
        if let Some(o) = &old {
            self.counts.rules -= o.rules.len();
            for s in &o.sets {
                self.release(s, pd, tx);
            }
        }
        let new = pi.and_then(|pi| Some(self.policy_piece(index, ids.at(pi)?, pi, pd, tx)));
        if old.as_ref().map(|p| &p.rules) != new.as_ref().map(|p| &p.rules) {
            if old.is_some() {
                tx.narrowed_policies.insert(pd.clone());
            }
            tx.chain(&name, old.as_ref().map(|p| &p.rules), new.as_ref().map(|p| p.rules.clone()));
        }
        if let Some(n) = new {
            self.counts.rules += n.rules.len();
            self.policies.insert(pd.clone(), n);
        }
    }

    /// Drops every use of set `name` by the rules of `pd` (the set goes at the end of the transaction if
    /// nothing uses it any more).
    fn release(&mut self, name: &str, pd: &PolicyDir, tx: &mut Tx) {
        if let Some(s) = self.sets.get_mut(name) {
            tx.sets_before.entry(name.to_owned()).or_insert(true);
            s.users.retain(|(k, d, _)| !(k == &pd.0 && *d == pd.1));
        }
    }

    /// Uses a set with fixed contents, named by them (shared by every rule with the same contents).
    fn use_content(
        &mut self,
        prefix: &str,
        kind: &'static str,
        interval: bool,
        elements: BTreeSet<String>,
        user: RuleRef,
        tx: &mut Tx,
    ) -> String {
        let h = stable_hash(&(kind, interval, &elements));
        for n in 0u32.. {
            let name = if n == 0 { format!("{prefix}_{h:016x}") } else { format!("{prefix}_{h:016x}_{n}") };
            match self.sets.get_mut(&name) {
                Some(s) if s.set.kind == kind && s.set.interval == interval && *s.set.elements == elements => {
                    tx.sets_before.entry(name.clone()).or_insert(true);
                    s.users.insert(user);
                    return name;
                }
                Some(_) => continue,
                None => {
                    tx.sets_before.entry(name.clone()).or_insert(false);
                    self.counts.elements += elements.len();
                    let set = Set { name: name.clone(), kind, interval, elements: Arc::new(elements) };
                    self.sets
                        .insert(name.clone(), Shared { set, peers: None, named: None, users: BTreeSet::from([user]) });
                    return name;
                }
            }
        }
        unreachable!("a free name exists")
    }

    /// Adds `user` to the set `name` if it exists (a shared set found by its definition).
    fn reuse(&mut self, name: Option<String>, user: &RuleRef, tx: &mut Tx) -> Option<String> {
        let name = name?;
        let s = self.sets.get_mut(&name)?;
        tx.sets_before.entry(name.clone()).or_insert(true);
        s.users.insert(user.clone());
        Some(name)
    }

    /// Makes a set shared by its definition: named `{base}_{hash}` (a suffix if that is taken), used by `user`.
    fn add_defined(&mut self, base: &str, hash: u64, mut shared: Shared, tx: &mut Tx) -> String {
        let mut name = format!("{base}_{hash:016x}");
        let mut n = 1;
        while self.sets.contains_key(&name) {
            name = format!("{base}_{hash:016x}_{n}");
            n += 1;
        }
        tx.sets_before.entry(name.clone()).or_insert(false);
        shared.set.name = name.clone();
        self.counts.elements += shared.set.elements.len();
        self.sets.insert(name.clone(), shared);
        name
    }

    /// Uses the pod-address set of a rule's pod peers, making it (with its current members) if new.
    fn use_peers(
        &mut self,
        def: PeerDef,
        members: impl FnOnce() -> BTreeSet<String>,
        user: RuleRef,
        tx: &mut Tx,
    ) -> String {
        if let Some(name) = self.reuse(self.by_def.get(&def).cloned(), &user, tx) {
            return name;
        }
        let kind = if def.slot == 0 { "ipv4_addr" } else { "ipv6_addr" };
        let set = Set { name: String::new(), kind, interval: false, elements: Arc::new(members()) };
        let shared = Shared { set, peers: Some(def.clone()), named: None, users: BTreeSet::from([user]) };
        let name = self.add_defined(&format!("peer{}", fam(FAMILIES[def.slot])), stable_hash(&def), shared, tx);
        self.by_def.insert(def, name.clone());
        name
    }

    /// Uses the named-port set of an egress rule's destinations, making it (with its current elements) if new.
    fn use_named(
        &mut self,
        def: NamedDef,
        elements: impl FnOnce() -> BTreeSet<String>,
        user: RuleRef,
        tx: &mut Tx,
    ) -> String {
        if let Some(name) = self.reuse(self.by_named.get(&def).cloned(), &user, tx) {
            return name;
        }
        let kind = if def.slot == 0 {
            "ipv4_addr . inet_proto . inet_service"
        } else {
            "ipv6_addr . inet_proto . inet_service"
        };
        let set = Set { name: String::new(), kind, interval: false, elements: Arc::new(elements()) };
        let shared = Shared { set, peers: None, named: Some(def.clone()), users: BTreeSet::from([user]) };
        let name = self.add_defined(&format!("named{}", fam(FAMILIES[def.slot])), stable_hash(&def), shared, tx);
        self.by_named.insert(def, name.clone());
        name
    }

    /// Uses a rule's own set (named ports), replacing its elements if they changed.
    fn use_owned(
        &mut self,
        name: String,
        kind: &'static str,
        elements: BTreeSet<String>,
        user: RuleRef,
        tx: &mut Tx,
    ) -> String {
        match self.sets.get_mut(&name) {
            Some(s) => {
                tx.sets_before.entry(name.clone()).or_insert(true);
                if *s.set.elements != elements {
                    for e in s.set.elements.difference(&elements) {
                        tx.del_element(&name, e);
                    }
                    for e in elements.difference(&s.set.elements) {
                        tx.add_element(&name, e);
                    }
                    self.counts.elements = self.counts.elements - s.set.elements.len() + elements.len();
                    s.set.elements = Arc::new(elements);
                }
                s.users.insert(user);
            }
            None => {
                tx.sets_before.entry(name.clone()).or_insert(false);
                self.counts.elements += elements.len();
                let set = Set { name: name.clone(), kind, interval: false, elements: Arc::new(elements) };
                self.sets.insert(name.clone(), Shared { set, peers: None, named: None, users: BTreeSet::from([user]) });
            }
        }
        name
    }

    /// The rules of policy `pi` for one direction, its sets taken.
    fn policy_piece(
        &mut self,
        index: &Index,
        policy: &palisade_engine::policy::Policy,
        pi: usize,
        pd: &PolicyDir,
        tx: &mut Tx,
    ) -> PolicyPiece {
        let d = pd.1;
        let base = policy_chain(&policy.key, d);
        let slots = index.pod_slots();
        let mut piece = PolicyPiece { rules: Vec::new(), sets: Vec::new(), named: false };
        let rules = policy.rules(d).unwrap_or_default();
        for (ri, rule) in rules.iter().enumerate() {
            let user: RuleRef = (pd.0.clone(), d, ri);
            let first_rule = piece.rules.len();
            let comment = quote(&format!("{} spec.{}[{ri}]", policy.key, d.as_str()));
            let mut port_ranges: BTreeMap<Protocol, Vec<(u16, u16)>> = BTreeMap::new();
            let mut named: Vec<(String, Protocol)> = Vec::new();
            for e in rule.ports.iter().flatten() {
                let r = port_ranges.entry(e.protocol).or_default();
                match &e.port {
                    PortMatch::Any => r.push((0, 65535)),
                    PortMatch::Range(a, b) => r.push((*a, *b)),
                    PortMatch::Named(n) => named.push((n.clone(), e.protocol)),
                    PortMatch::Invalid => {}
                }
            }
            named.sort();
            named.dedup();
            let mut ports = BTreeSet::new();
            for (p, rs) in port_ranges {
                for (a, b) in merge(rs, |x: u16| x.checked_add(1)) {
                    ports.insert(if a == b {
                        format!("{} . {a}", proto(p))
                    } else {
                        format!("{} . {a}-{b}", proto(p))
                    });
                }
            }
            let ports_set = (!ports.is_empty()).then(|| {
                let n = self.use_content("ports", "inet_proto . inet_service", true, ports, user.clone(), tx);
                piece.sets.push(n.clone());
                n
            });
            for family in FAMILIES {
                let (ipk, addr_type) = ip_of(family);
                let s = slot(family);
                let (peer_dir, dest_dir) = match d {
                    Direction::Ingress => ("saddr", "daddr"),
                    Direction::Egress => ("daddr", "daddr"),
                };
                let mut peer_exprs: Vec<String> = Vec::new();
                let mut peer_pods: Option<BitSet> = None;
                match &rule.peers {
                    None => peer_exprs.push(String::new()),
                    Some(peers) => {
                        let mut def = PeerDef { slot: s, peers: Vec::new() };
                        let mut selected = BitSet::new(slots);
                        let mut union = BitSet::new(slots);
                        let mut ranges: Vec<(u128, u128)> = Vec::new();
                        for (pe, peer) in peers.iter().enumerate() {
                            match peer {
                                Peer::Pods { namespaces, pods: sel } => {
                                    let set = index.peer_pods(pi, d, ri, pe, family);
                                    union.union_with(set);
                                    selected.union_with(set);
                                    def.peers.push((namespaces.clone(), sel.clone()));
                                }
                                Peer::IpBlock(b) if b.cidr.addr().is_ipv4() == (family == IpFamily::V4) => {
                                    union.union_with(index.peer_pods(pi, d, ri, pe, family));
                                    ranges.extend(b.ranges().into_iter().map(|(a, z)| (ip_num(a), ip_num(z))));
                                }
                                _ => {}
                            }
                        }
                        peer_pods = Some(union);
                        if !def.peers.is_empty() {
                            let members = || {
                                selected
                                    .iter()
                                    .filter_map(|q| index.pod(q).facts.ip(family).map(|ip| ip.to_string()))
                                    .collect()
                            };
                            let name = self.use_peers(def, members, user.clone(), tx);
                            piece.sets.push(name.clone());
                            peer_exprs.push(format!("{ipk} {peer_dir} @{name} "));
                        }
                        let v4 = family == IpFamily::V4;
                        let ranges: BTreeSet<String> = merge(ranges, |x: u128| x.checked_add(1))
                            .into_iter()
                            .map(|(a, z)| range_elem(num_ip(a, v4), num_ip(z, v4)))
                            .collect();
                        if !ranges.is_empty() {
                            let name = self.use_content(
                                &format!("cidr{}", fam(family)),
                                addr_type,
                                true,
                                ranges,
                                user.clone(),
                                tx,
                            );
                            piece.sets.push(name.clone());
                            peer_exprs.push(format!("{ipk} {peer_dir} @{name} "));
                        }
                    }
                }
                if peer_exprs.is_empty() {
                    continue;
                }
                let mut port_exprs: Vec<String> = Vec::new();
                if rule.ports.is_none() {
                    port_exprs.push(String::new());
                }
                if let Some(name) = &ports_set {
                    port_exprs.push(format!("meta l4proto . th dport @{name} "));
                }
                if !named.is_empty() && d == Direction::Egress {
                    // Destinations that define the named port: the rule's peers, or every pod. Shared by their
                    // definition and kept current as pods change, as peer sets are.
                    let def = NamedDef { slot: s, peers: rule.peers.clone(), names: named.clone() };
                    let elements = || {
                        let candidates: Vec<PodId> = match &peer_pods {
                            Some(u) if rule.peers.is_some() => u.iter().collect(),
                            _ => index.pods_with_ids().map(|(q, _)| q).collect(),
                        };
                        candidates.into_iter().flat_map(|q| named_elements(index, q, family, &named)).collect()
                    };
                    let name = self.use_named(def, elements, user.clone(), tx);
                    piece.sets.push(name.clone());
                    port_exprs.push(format!("{ipk} {dest_dir} . meta l4proto . th dport @{name} "));
                } else if !named.is_empty() {
                    // Ingress: the selected local pods, few; the chain is compiled again when they change.
                    piece.named = true;
                    let candidates: Vec<PodId> =
                        self.users.get(pd).into_iter().flatten().filter_map(|k| index.pod_id(k)).collect();
                    let elems: BTreeSet<String> =
                        candidates.into_iter().flat_map(|q| named_elements(index, q, family, &named)).collect();
                    if !elems.is_empty() {
                        let kind = if family == IpFamily::V4 {
                            "ipv4_addr . inet_proto . inet_service"
                        } else {
                            "ipv6_addr . inet_proto . inet_service"
                        };
                        let name =
                            self.use_owned(format!("{base}{ri}_named{}", fam(family)), kind, elems, user.clone(), tx);
                        piece.sets.push(name.clone());
                        port_exprs.push(format!("{ipk} {dest_dir} . meta l4proto . th dport @{name} "));
                    }
                }
                for pe in &peer_exprs {
                    for po in &port_exprs {
                        let prefix = if pe.is_empty() && po.is_empty() {
                            format!("meta nfproto ipv{} ", fam(family))
                        } else {
                            String::new()
                        };
                        let text = format!("{prefix}{pe}{po}accept comment {comment}");
                        // A rule with no address in it is the same for both families: once.
                        if !piece.rules[first_rule..].contains(&text) {
                            piece.rules.push(text);
                        }
                    }
                }
            }
        }
        piece.sets.sort();
        piece.sets.dedup();
        piece
    }

    /// Moves every touched pod in or out of the pod-address sets that existed before this transaction
    /// (new sets were made with their current members).
    fn refresh_peers(&mut self, index: &Index, changes: &Changes, tx: &mut Tx) {
        if changes.pods.is_empty() {
            return;
        }
        let ids = Ids::new(index);
        // Each touched pod: its addresses before, and now (id, first address per family).
        type Addrs = [Option<IpAddr>; 2];
        let touched: Vec<(Addrs, Option<(PodId, Addrs)>)> = changes
            .pods
            .iter()
            .map(|(k, before)| {
                let old = FAMILIES.map(|f| before.iter().copied().find(|ip| IpFamily::of(ip) == f));
                let now = index.pod_id(k).map(|id| (id, FAMILIES.map(|f| index.pod(id).facts.ip(f))));
                (old, now)
            })
            .collect();
        let names: Vec<String> = self
            .sets
            .iter()
            .filter(|(n, s)| s.peers.is_some() && !s.users.is_empty() && tx.sets_before.get(*n) != Some(&false))
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            let Some(s) = self.sets.get(&name) else { continue };
            let Some(def) = &s.peers else { continue };
            let sl = def.slot;
            let family = FAMILIES[sl];
            let Some((pk, d, ri)) = s.users.first().cloned() else { continue };
            let Some(pi) = ids.of(&pk) else { continue };
            let Some(rule) = ids.at(pi).and_then(|p| p.rules(d)).and_then(|r| r.get(ri)) else { continue };
            let pes: Vec<usize> = rule
                .peers
                .iter()
                .flatten()
                .enumerate()
                .filter(|(_, p)| matches!(p, Peer::Pods { .. }))
                .map(|(i, _)| i)
                .collect();
            let member = |id: PodId| pes.iter().any(|&pe| index.peer_pods(pi, d, ri, pe, family).contains(id));
            let mut add: Vec<String> = Vec::new();
            let mut del: Vec<String> = Vec::new();
            for (old, now) in &touched {
                let new_ip = now.and_then(|(id, ips)| if member(id) { ips[sl] } else { None });
                if let Some(o) = old[sl]
                    && Some(o) != new_ip
                {
                    let text = o.to_string();
                    // Another member pod may hold the same address (an address reused while its old pod goes).
                    let own = u32::from(now.is_some_and(|(_, ips)| ips[sl] == Some(o)));
                    let others = self.ip_count.get(&o).copied().unwrap_or(0).saturating_sub(own);
                    let held = others > 0
                        && pes.iter().any(|&pe| {
                            index
                                .peer_pods(pi, d, ri, pe, family)
                                .iter()
                                .any(|q| index.pod(q).facts.ip(family) == Some(o))
                        });
                    if !held {
                        del.push(text);
                    }
                }
                if let Some(n) = new_ip {
                    add.push(n.to_string());
                }
            }
            self.change_elements(&name, del, add, tx);
        }
    }

    /// Removes then adds elements of a kept set, counting them and recording what the kernel must change.
    fn change_elements(&mut self, name: &str, del: Vec<String>, add: Vec<String>, tx: &mut Tx) {
        let Some(s) = self.sets.get_mut(name) else { return };
        let elements = Arc::make_mut(&mut s.set.elements);
        for e in del {
            if elements.remove(&e) {
                self.counts.elements -= 1;
                tx.del_element(name, &e);
            }
        }
        for e in add {
            if elements.insert(e.clone()) {
                self.counts.elements += 1;
                tx.add_element(name, &e);
            }
        }
    }

    /// Moves every touched pod's named ports in or out of the egress named-port sets that existed before
    /// this transaction.
    fn refresh_named(&mut self, index: &Index, changes: &Changes, tx: &mut Tx) {
        if changes.pods.is_empty() {
            return;
        }
        let ids = Ids::new(index);
        let names: Vec<String> = self
            .sets
            .iter()
            .filter(|(n, s)| s.named.is_some() && !s.users.is_empty() && tx.sets_before.get(*n) != Some(&false))
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            let Some(s) = self.sets.get(&name) else { continue };
            let Some(def) = s.named.clone() else { continue };
            let family = FAMILIES[def.slot];
            let Some((pk, d, ri)) = s.users.first().cloned() else { continue };
            let Some(pi) = ids.of(&pk) else { continue };
            let peers = def.peers.as_ref().map_or(0, Vec::len);
            let candidate = |id: PodId| {
                def.peers.is_none() || (0..peers).any(|pe| index.peer_pods(pi, d, ri, pe, family).contains(id))
            };
            let mut del: Vec<String> = Vec::new();
            let mut add: Vec<String> = Vec::new();
            for (key, before) in &changes.pods {
                if let Some(o) = before.iter().copied().find(|ip| IpFamily::of(ip) == family) {
                    let prefix = format!("{o} . ");
                    // Another pod may hold the same address now (reused while its old pod goes): its
                    // elements stay.
                    let now = index.pod_id(key);
                    let own = u32::from(now.is_some_and(|id| index.pod(id).facts.ip(family) == Some(o)));
                    let others = self.ip_count.get(&o).copied().unwrap_or(0).saturating_sub(own);
                    let keep: BTreeSet<String> = if others > 0 {
                        index
                            .pods_with_ids()
                            .map(|(q, _)| q)
                            .filter(|&q| Some(q) != now && index.pod(q).facts.ip(family) == Some(o) && candidate(q))
                            .flat_map(|q| named_elements(index, q, family, &def.names))
                            .collect()
                    } else {
                        BTreeSet::new()
                    };
                    del.extend(
                        s.set
                            .elements
                            .range(prefix.clone()..)
                            .take_while(|e| e.starts_with(&prefix))
                            .filter(|e| !keep.contains(*e))
                            .cloned(),
                    );
                }
                if let Some(id) = index.pod_id(key).filter(|id| candidate(*id)) {
                    add.extend(named_elements(index, id, family, &def.names));
                }
            }
            self.change_elements(&name, del, add, tx);
        }
    }

    /// Compiles the tier chains the local pods jump to again, with their sets, and records what changed;
    /// the local pods whose tier chain changed (rules or set elements) may now admit less.
    fn refresh_tiers(&mut self, index: &Index, tx: &mut Tx) {
        let mut needed: BTreeMap<String, (Direction, Vec<usize>)> = BTreeMap::new();
        for (k, piece) in &self.pods {
            for (name, tier, d) in &piece.tiers {
                if needed.contains_key(name) {
                    continue;
                }
                if let Some(id) = index.pod_id(k) {
                    needed.insert(name.clone(), (*d, tiers::selecting(index, id, *tier, *d)));
                }
            }
        }
        let mut sets: BTreeMap<String, tiers::TierSet> = BTreeMap::new();
        let cache = &mut self.tier_rules;
        let chains: BTreeMap<String, Vec<String>> = needed
            .into_iter()
            .map(|(name, (d, ids))| (name, tiers::chain_rules(cache, index, d, &ids, &mut sets)))
            .collect();
        cache.finish();
        let mut narrowed: BTreeSet<String> = BTreeSet::new();
        for (name, rules) in &chains {
            let old = self.tier_chains.get(name);
            if old != Some(rules) {
                if old.is_some() {
                    narrowed.insert(name.clone());
                }
                tx.chain(name, old, Some(rules.clone()));
            }
        }
        for (name, old) in &self.tier_chains {
            if !chains.contains_key(name) {
                tx.chain(name, Some(old), None);
            }
        }
        let mut changed_sets: BTreeSet<String> = BTreeSet::new();
        for (name, want) in &sets {
            match self.sets.get_mut(name) {
                Some(s) => {
                    tx.sets_before.entry(name.clone()).or_insert(true);
                    s.users.insert(tier_user());
                    if !Arc::ptr_eq(&s.set.elements, &want.elements) && *s.set.elements != *want.elements {
                        for e in s.set.elements.difference(&want.elements) {
                            tx.del_element(name, e);
                        }
                        for e in want.elements.difference(&s.set.elements) {
                            tx.add_element(name, e);
                        }
                        changed_sets.insert(name.clone());
                    }
                    self.counts.elements = self.counts.elements - s.set.elements.len() + want.elements.len();
                    s.set.elements = want.elements.clone();
                }
                None => {
                    tx.sets_before.entry(name.clone()).or_insert(false);
                    self.counts.elements += want.elements.len();
                    let set = Set {
                        name: name.clone(),
                        kind: want.kind,
                        interval: want.interval,
                        elements: want.elements.clone(),
                    };
                    let users = BTreeSet::from([tier_user()]);
                    self.sets.insert(name.clone(), Shared { set, peers: None, named: None, users });
                }
            }
        }
        for name in self.tier_sets.iter().filter(|n| !sets.contains_key(*n)) {
            if let Some(s) = self.sets.get_mut(name) {
                tx.sets_before.entry(name.clone()).or_insert(true);
                s.users.remove(&tier_user());
            }
        }
        for (name, rules) in &chains {
            if rules
                .iter()
                .any(|r| r.split_whitespace().any(|w| w.strip_prefix('@').is_some_and(|s| changed_sets.contains(s))))
            {
                narrowed.insert(name.clone());
            }
        }
        if !narrowed.is_empty() {
            for (k, piece) in &self.pods {
                for (name, _, d) in &piece.tiers {
                    if narrowed.contains(name) {
                        tx.narrowed_pods.insert((*d, k.clone()));
                    }
                }
            }
        }
        let before: usize = self.tier_chains.values().map(Vec::len).sum();
        let after: usize = chains.values().map(Vec::len).sum();
        self.counts.rules = self.counts.rules + after - before;
        self.tier_sets = sets.into_keys().collect();
        self.tier_chains = chains;
    }

    /// Forgets the sets no rule uses any more.
    fn sweep(&mut self, tx: &mut Tx) {
        let unused: Vec<String> =
            tx.sets_before.keys().filter(|n| self.sets.get(*n).is_some_and(|s| s.users.is_empty())).cloned().collect();
        for n in unused {
            let Some(s) = self.sets.remove(&n) else { continue };
            self.counts.elements -= s.set.elements.len();
            if let Some(def) = s.peers
                && self.by_def.get(&def) == Some(&n)
            {
                self.by_def.remove(&def);
            }
            if let Some(def) = s.named
                && self.by_named.get(&def) == Some(&n)
            {
                self.by_named.remove(&def);
            }
        }
    }

    /// The transaction, in an order that keeps every reference valid: new sets and chains, element changes,
    /// rules, verdict-map entries, then chains and sets nothing refers to any more.
    fn emit(&self, tx: Tx) -> Delta {
        let t = &self.table;
        let mut out = String::new();
        let mut n = 0;
        let mut emit = |out: &mut String, line: String| {
            let _ = writeln!(out, "{line}");
            n += 1;
        };
        let exists = |name: &str| self.sets.contains_key(name);
        for (name, existed) in &tx.sets_before {
            if !existed && let Some(s) = self.sets.get(name) {
                emit(&mut out, format!("add set inet {t} {name} {}", s.set.body(true)));
            }
        }
        for (name, before) in &tx.chains_before {
            if before.is_none() && tx.chains_after.get(name).is_some_and(Option::is_some) {
                emit(&mut out, format!("add chain inet {t} {name}"));
            }
        }
        for (name, (before, after)) in &tx.counters {
            if !before && *after {
                emit(&mut out, format!("add counter inet {t} {name}"));
            }
        }
        let mut peers: BTreeSet<IpAddr> = BTreeSet::new();
        let kept = |name: &str| {
            NODE_SETS.iter().any(|(n, _, _)| *n == name) || (tx.sets_before.get(name) != Some(&false) && exists(name))
        };
        for (name, gone) in &tx.elem_del {
            if gone.is_empty() || !kept(name) {
                continue;
            }
            let by_address = self.sets.get(name).is_some_and(|s| {
                (!s.set.interval && matches!(s.set.kind, "ipv4_addr" | "ipv6_addr"))
                    || s.set.kind.ends_with("_addr . inet_proto . inet_service")
            });
            if by_address {
                for g in gone {
                    if let Some(Ok(ip)) = g.split(" . ").next().map(str::parse::<IpAddr>) {
                        peers.insert(ip);
                    }
                }
            }
            let v: Vec<&str> = gone.iter().map(String::as_str).collect();
            emit(&mut out, format!("delete element inet {t} {name} {{ {} }}", v.join(", ")));
        }
        for (name, added) in &tx.elem_add {
            if added.is_empty() || !kept(name) {
                continue;
            }
            let v: Vec<&str> = added.iter().map(String::as_str).collect();
            emit(&mut out, format!("add element inet {t} {name} {{ {} }}", v.join(", ")));
        }
        for (name, before) in &tx.chains_before {
            let Some(Some(after)) = tx.chains_after.get(name) else { continue };
            match before {
                Some(b) if b == after => continue,
                Some(_) => {
                    emit(&mut out, format!("flush chain inet {t} {name}"));
                }
                None => {}
            }
            for r in after {
                emit(&mut out, format!("add rule inet {t} {name} {r}"));
            }
        }
        let mut map_del: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut map_add: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for ((map, addr), before) in &tx.maps_before {
            let after = tx.maps_after.get(&(*map, addr.clone())).cloned().flatten();
            if before.as_ref() == after.as_ref() {
                continue;
            }
            if before.is_some() {
                map_del.entry(map).or_default().push(addr);
            }
            if let Some(v) = after {
                map_add.entry(map).or_default().push(format!("{addr} : {v}"));
            }
        }
        for (map, keys) in &map_del {
            emit(&mut out, format!("delete element inet {t} {map} {{ {} }}", keys.join(", ")));
        }
        for (map, entries) in &map_add {
            emit(&mut out, format!("add element inet {t} {map} {{ {} }}", entries.join(", ")));
        }
        // Chains that go: the pods' dispatch chains first, as they jump to the policy and tier chains.
        let gone = |name: &&String| {
            tx.chains_before[*name].is_some() && tx.chains_after.get(*name).is_some_and(Option::is_none)
        };
        let dispatch = |name: &&String| name.starts_with("ing_") || name.starts_with("egr_");
        for name in tx.chains_before.keys().filter(gone).filter(dispatch) {
            emit(&mut out, format!("delete chain inet {t} {name}"));
        }
        for name in tx.chains_before.keys().filter(gone).filter(|n| !dispatch(n)) {
            emit(&mut out, format!("delete chain inet {t} {name}"));
        }
        for (name, existed) in &tx.sets_before {
            if *existed && !exists(name) {
                emit(&mut out, format!("delete set inet {t} {name}"));
            }
        }
        for (name, (before, after)) in &tx.counters {
            if *before && !after {
                emit(&mut out, format!("delete counter inet {t} {name}"));
            }
        }
        // What may now admit less: pods whose dispatch is new or whose chain changed, pods jumping to a
        // policy chain that changed, and peer addresses that left a set.
        let mut delta = Delta { script: out, statements: n, narrowed_peers: peers, ..Delta::default() };
        let mut narrowed_pods: BTreeSet<(Direction, &ObjectKey)> =
            tx.narrowed_pods.iter().map(|(d, k)| (*d, k)).collect();
        for pd in &tx.narrowed_policies {
            for k in self.users.get(pd).into_iter().flatten() {
                narrowed_pods.insert((pd.1, k));
            }
        }
        for ((map, addr), after) in &tx.maps_after {
            if after.is_some()
                && tx.maps_before.get(&(*map, addr.clone())).cloned().flatten() != *after
                && let Ok(ip) = addr.parse::<IpAddr>()
            {
                if map.starts_with("ing") {
                    delta.narrowed_ingress.insert(ip);
                } else {
                    delta.narrowed_egress.insert(ip);
                }
            }
        }
        for (d, k) in narrowed_pods {
            if let Some(piece) = self.pods.get(k) {
                for (map, addr, _) in &piece.maps {
                    if (d == Direction::Ingress) != map.starts_with("ing") {
                        continue;
                    }
                    if let Ok(ip) = addr.parse::<IpAddr>() {
                        if d == Direction::Ingress {
                            delta.narrowed_ingress.insert(ip);
                        } else {
                            delta.narrowed_egress.insert(ip);
                        }
                    }
                }
            }
        }
        delta
    }

    /// The whole table as the pieces make it now.
    pub fn ruleset(&self) -> Ruleset {
        let mut sets: Vec<Set> = NODE_SETS
            .iter()
            .enumerate()
            .map(|(i, (name, kind, interval))| Set {
                name: (*name).to_owned(),
                kind,
                interval: *interval,
                elements: Arc::new(self.node_sets[i].keys().cloned().collect()),
            })
            .collect();
        sets.extend(self.sets.values().map(|s| s.set.clone()));
        sets.sort_by(|a, b| a.name.cmp(&b.name));
        let mut chains: Vec<Chain> =
            self.policies
                .iter()
                .map(|((k, d), p)| Chain { name: policy_chain(k, *d), rules: p.rules.clone() })
                .chain(self.pods.values().flat_map(|p| {
                    p.chains.iter().map(|(name, rules)| Chain { name: name.clone(), rules: rules.clone() })
                }))
                .chain(self.tier_chains.iter().map(|(name, rules)| Chain { name: name.clone(), rules: rules.clone() }))
                .collect();
        chains.sort_by(|a, b| a.name.cmp(&b.name));
        let mut maps: BTreeMap<&'static str, BTreeMap<String, String>> =
            ["ing4", "ing6", "eg4", "eg6"].into_iter().map(|m| (m, BTreeMap::new())).collect();
        for p in self.pods.values() {
            for (map, addr, verdict) in &p.maps {
                maps.get_mut(map).map(|m| m.insert(addr.clone(), verdict.clone()));
            }
        }
        let counters = self.pods.values().flat_map(|p| p.deny_ids.iter().map(|(_, id)| drop_counter(*id))).collect();
        Ruleset { table: self.table.clone(), sets, chains, maps, counters, log: self.log }
    }

    /// Rules and set/map elements of the table, for metrics (as [`Ruleset::size`] counts them; kept as
    /// pieces change).
    pub fn size(&self) -> (usize, usize) {
        (self.counts.rules, self.counts.elements)
    }

    /// Local pods isolated in at least one direction.
    pub fn isolated_pods(&self) -> usize {
        self.counts.isolated
    }
}

/// A pod's elements in a named-port set: `addr . proto . port` for each of its container ports named so.
fn named_elements(index: &Index, q: PodId, family: IpFamily, names: &[(String, Protocol)]) -> Vec<String> {
    let Some(ip) = index.pod(q).facts.ip(family) else { return Vec::new() };
    index
        .pod_ports(q)
        .iter()
        .filter(|cp| names.iter().any(|(n, p)| cp.name.as_deref() == Some(n.as_str()) && cp.protocol == *p))
        .map(|cp| format!("{ip} . {} . {}", proto(cp.protocol), cp.port))
        .collect()
}

/// What a local pod contributes, from the index.
fn pod_piece(
    index: &Index,
    policies: &Ids,
    id: PodId,
    key: &ObjectKey,
    ifname: &str,
    log: Option<&LogOptions>,
    log_ids: &mut DropIds,
) -> PodPiece {
    let pod = index.pod(id);
    let mut piece = PodPiece { ifname: ifname.to_owned(), ..PodPiece::default() };
    for (i, d) in DIRS.into_iter().enumerate() {
        let ids = index.selecting_ids(id, d);
        // The engine's order: the Admin tier, NetworkPolicy when it isolates the side, else the Baseline tier.
        let admin = tiers::chain_of(index, id, Tier::Admin, d);
        let baseline = if ids.is_empty() { tiers::chain_of(index, id, Tier::Baseline, d) } else { None };
        if ids.is_empty() && admin.is_none() && baseline.is_none() {
            continue;
        }
        let jumps: Vec<ObjectKey> = ids.iter().filter_map(|&pi| policies.at(pi).map(|p| p.key.clone())).collect();
        let name = pod_chain(key, d);
        let mut rules: Vec<String> = Vec::new();
        if let Some(a) = admin {
            rules.push(format!("jump {a}"));
            piece.tiers.push((a, Tier::Admin, d));
        }
        if !ids.is_empty() {
            rules.extend(jumps.iter().map(|k| format!("jump {}", policy_chain(k, d))));
            let drop_id = log_ids.get(key, d);
            if let Some(log) = log {
                // The log rule stands alone before the drop: over its limits it stops, and the drop still comes.
                let point = format!("seen_deny_{}", short(d));
                for v4 in [true, false] {
                    if pod.facts.ips.iter().any(|ip| ip.is_ipv4() == v4) {
                        let set = format!("{point}{}", if v4 { "4" } else { "6" });
                        rules.push(log_rule(log, "", &set, v4, 'D', drop_id));
                    }
                }
            }
            rules.push(format!(
                "counter name \"{}\" drop comment {}",
                drop_counter(drop_id),
                quote(&format!("{key} {}: no policy admits", d.as_str()))
            ));
            piece.deny_ids.push((d, drop_id));
            piece.isolated = true;
        }
        if let Some(b) = baseline {
            rules.push(format!("jump {b}"));
            piece.tiers.push((b, Tier::Baseline, d));
        }
        for ip in &pod.facts.ips {
            piece.maps.push((map_of(d, ip), ip.to_string(), format!("goto {name}")));
        }
        piece.chains.push((name, rules));
        piece.jumps[i] = jumps;
    }
    for ip in &pod.facts.ips {
        piece.node_elements.push((KNOWN[usize::from(ip.is_ipv6())], ip.to_string()));
    }
    if !ifname.is_empty() {
        piece.node_elements.push((0, quote(ifname)));
        for ip in &pod.facts.ips {
            piece.node_elements.push((if ip.is_ipv4() { 1 } else { 2 }, format!("{} . {ip}", quote(ifname))));
        }
    }
    piece
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_ids_are_stable_and_a_clash_is_salted() {
        let (mut ids, mut id_of) = (BTreeMap::new(), HashMap::default());
        let mut d = DropIds { ids: &mut ids, id_of: &mut id_of, changed: false };
        let a = ObjectKey::new("x", "a");
        let first = d.get(&a, Direction::Ingress);
        assert_ne!(first, 0, "0 is the base chains' id");
        assert_eq!(d.get(&a, Direction::Ingress), first, "a pod keeps its id");
        assert_ne!(d.get(&a, Direction::Egress), first, "each direction has its own");
        d.release(&a, Direction::Ingress, first);
        assert!(!d.ids.contains_key(&first));
        // Another pod holds the id a would hash to: a gets a salted one, and the other keeps its own.
        let b = ObjectKey::new("x", "b");
        d.ids.insert(first, LogTarget { pod: b.clone(), direction: Direction::Ingress, chain: "ing_x__b".into() });
        let salted = d.get(&a, Direction::Ingress);
        assert!(salted != first && salted != 0);
        assert_eq!(d.ids[&first].pod, b);
        assert_eq!(d.ids[&salted].pod, a);
        // Releasing with a stale id leaves the holder alone.
        d.release(&a, Direction::Ingress, first);
        assert_eq!(d.ids[&first].pod, b);
    }
}
