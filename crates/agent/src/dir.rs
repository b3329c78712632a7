//! The directory source: a folder of manifests (`*.yaml`, `*.yml`, `*.json`), watched for changes.
//!
//! Each file is read only when it changed (inotify names it, or its size, mtime or inode differ on a
//! rescan), and what it now holds is compared with what it held, so a change becomes the few events it
//! means. A file that fails to load keeps the objects it had (as the apiserver keeps an object whose
//! update it rejects); its errors are reported as [`Change::Invalid`]. The file `.revision`, written last
//! by a tool that changes the folder, is reported as [`Change::Revision`] after the files it follows.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use palisade_engine::cnp::{ClusterKind, ClusterObject};
use palisade_engine::{Kind, Object, ObjectKey};

use crate::source::{CLUSTER_KINDS, Change, Event, KINDS, Sink};

/// The file whose content is the folder's revision.
pub const REVISION_FILE: &str = ".revision";

/// An object's identity: namespaced kinds by namespace and name, cluster-scoped ones (tier policies,
/// Nodes) by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Object(Kind, ObjectKey),
    Cluster(ClusterKind, String),
}

/// An object of either sort, as a file holds it.
#[derive(Debug, Clone)]
#[expect(clippy::large_enum_variant, reason = "short-lived, mostly `Object`; boxing adds an allocation per object")]
enum Item {
    Object(Object),
    Cluster(ClusterObject),
}

impl Item {
    fn key(&self) -> Key {
        match self {
            Item::Object(o) => Key::Object(o.kind_of(), o.key()),
            Item::Cluster(o) => Key::Cluster(o.kind(), o.name().to_owned()),
        }
    }

    fn applied(self) -> Change {
        match self {
            Item::Object(o) => Change::Apply(o),
            Item::Cluster(o) => Change::ApplyCluster(o),
        }
    }
}

fn deleted(k: &Key) -> Change {
    match k {
        Key::Object(kind, key) => {
            Change::Delete { kind: *kind, namespace: key.namespace.clone(), name: key.name.clone() }
        }
        Key::Cluster(kind, name) => Change::DeleteCluster { kind: *kind, name: name.clone() },
    }
}

/// The objects a text holds, in document order (namespaced ones first), and its load errors.
fn load_items(origin: &str, text: &str) -> (Vec<(String, Item)>, Vec<String>) {
    let loaded = palisade_engine::load_str(origin, text);
    let errors = loaded.errors.iter().map(ToString::to_string).collect();
    let items = loaded
        .objects
        .into_iter()
        .map(|o| (o.origin.to_string(), Item::Object(o.value)))
        .chain(loaded.cluster_objects.into_iter().map(|o| (o.origin.to_string(), Item::Cluster(o.value))))
        .collect();
    (items, errors)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    mtime_ns: i128,
    ino: u64,
}

/// What a file held: each object's key and a hash of its content (the objects themselves live only in the
/// agent's store, once).
#[derive(Debug, Default)]
struct FileState {
    stamp: Option<Stamp>,
    objects: BTreeMap<Key, u64>,
}

/// Keeps only what the engine needs, then hashes the content.
fn slim(mut item: Item) -> (Item, u64) {
    use std::hash::{Hash, Hasher};
    let bytes = match &mut item {
        Item::Object(Object::Pod(p)) => {
            crate::source::strip_pod(p);
            serde_json::to_vec(p)
        }
        Item::Object(Object::Namespace(n)) => {
            crate::source::strip_meta(&mut n.metadata);
            serde_json::to_vec(n)
        }
        Item::Object(Object::NetworkPolicy(np)) => {
            crate::source::strip_meta(&mut np.metadata);
            serde_json::to_vec(np)
        }
        Item::Cluster(ClusterObject::ClusterNetworkPolicy(p)) => {
            crate::source::strip_meta(&mut p.metadata);
            serde_json::to_vec(p)
        }
        Item::Cluster(ClusterObject::AdminNetworkPolicy(p)) => {
            crate::source::strip_meta(&mut p.metadata);
            serde_json::to_vec(p)
        }
        Item::Cluster(ClusterObject::BaselineAdminNetworkPolicy(p)) => {
            crate::source::strip_meta(&mut p.metadata);
            serde_json::to_vec(p)
        }
        Item::Cluster(ClusterObject::Node(n)) => {
            crate::source::strip_node(n);
            serde_json::to_vec(n)
        }
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.unwrap_or_default().hash(&mut h);
    (item, h.finish())
}

/// Why the engine refuses an object the loader read (the apiserver's validation), if it does.
fn invalid_reason(item: &Item) -> Option<String> {
    match item {
        Item::Object(Object::NetworkPolicy(np)) => {
            let errors = palisade_engine::validate::validate_network_policy(np);
            if errors.is_empty() {
                return None;
            }
            let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
            let name = np.metadata.name.as_deref().unwrap_or("");
            Some(format!("NetworkPolicy.networking.k8s.io {name:?} is invalid: {}", list.join(", ")))
        }
        Item::Object(_) => None,
        Item::Cluster(o) => crate::source::check_cluster_object(o).err(),
    }
}

/// The folder's files and the objects each holds.
#[derive(Debug)]
pub struct DirSource {
    dir: PathBuf,
    files: BTreeMap<PathBuf, FileState>,
    revision: Option<String>,
}

fn is_manifest(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !name.starts_with('.') && [".yaml", ".yml", ".json"].iter().any(|e| name.ends_with(e))
}

fn stamp(p: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(p).ok()?;
    Some(Stamp {
        len: m.len(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        ino: m.ino(),
    })
}

impl DirSource {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DirSource { dir: dir.into(), files: BTreeMap::new(), revision: None }
    }

    fn listing(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| is_manifest(p))
            .collect();
        v.sort();
        v
    }

    fn read_revision(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.join(REVISION_FILE)).ok().map(|s| s.trim().to_owned())
    }

    /// The first read: every object as `Apply`, then each kind's `Listed`, then the revision.
    pub fn initial(&mut self) -> Vec<Change> {
        let mut out = Vec::new();
        self.initial_into(&mut |c| out.push(c));
        out
    }

    /// [`DirSource::initial`], handing each change over as soon as it is read.
    fn initial_into(&mut self, emit: &mut dyn FnMut(Change)) {
        let revision = self.read_revision();
        let mut keys: BTreeMap<Kind, BTreeSet<ObjectKey>> = KINDS.iter().map(|k| (*k, BTreeSet::new())).collect();
        // Cluster-scoped objects are few: each kind goes as one list.
        let mut cluster: BTreeMap<ClusterKind, BTreeMap<String, ClusterObject>> =
            CLUSTER_KINDS.iter().map(|k| (*k, BTreeMap::new())).collect();
        for p in self.listing() {
            let (changes, invalid) = self.reload(&p);
            invalid.into_iter().for_each(&mut *emit);
            for c in changes {
                match c {
                    Change::ApplyCluster(o) => {
                        cluster.entry(o.kind()).or_default().insert(o.name().to_owned(), o);
                    }
                    c => {
                        if let Change::Apply(o) = &c {
                            keys.entry(o.kind_of()).or_default().insert(o.key());
                        }
                        emit(c);
                    }
                }
            }
        }
        for p in self.files.values() {
            // Objects a broken file keeps (no Apply this time) are still there.
            for k in p.objects.keys() {
                if let Key::Object(kind, key) = k {
                    keys.entry(*kind).or_default().insert(key.clone());
                }
            }
        }
        for (kind, keys) in keys {
            emit(Change::Listed { kind, keys });
        }
        for (kind, objects) in cluster {
            emit(Change::RelistedCluster { kind, objects: objects.into_values().collect() });
        }
        if let Some(r) = revision {
            self.revision = Some(r.clone());
            emit(Change::Revision(r));
        }
    }

    /// Re-reads the files named (or, with `None`, every file whose stamp changed, and the ones removed),
    /// returning the changes they mean.
    pub fn rescan(&mut self, paths: Option<&BTreeSet<PathBuf>>) -> Vec<Change> {
        // The revision is read first: every file written before it was is then seen by this scan.
        let revision = self.read_revision();
        let candidates: BTreeSet<PathBuf> = match paths {
            Some(ps) => ps.iter().filter(|p| is_manifest(p)).cloned().collect(),
            None => self.listing().into_iter().chain(self.files.keys().cloned()).collect(),
        };
        let mut out = Vec::new();
        for p in candidates {
            let (mut changes, invalid) = self.reload(&p);
            out.extend(invalid);
            out.append(&mut changes);
        }
        if revision.is_some() && revision != self.revision {
            self.revision.clone_from(&revision);
            out.extend(revision.map(Change::Revision));
        }
        out
    }

    /// Reloads one file if its stamp changed: (changes, invalid reports).
    fn reload(&mut self, p: &Path) -> (Vec<Change>, Vec<Change>) {
        let now = stamp(p);
        let state = self.files.entry(p.to_owned()).or_default();
        if now.is_some() && now == state.stamp {
            return (Vec::new(), Vec::new());
        }
        let mut invalid = Vec::new();
        let mut fresh: BTreeMap<Key, Item> = BTreeMap::new();
        let new: BTreeMap<Key, u64> = match now {
            None => BTreeMap::new(),
            Some(_) => match std::fs::read_to_string(p) {
                Ok(text) => {
                    let (items, errors) = load_items(&p.display().to_string(), &text);
                    invalid.extend(errors.iter().map(|e| Change::Invalid { message: e.clone() }));
                    let mut hashes = BTreeMap::new();
                    let mut rejected = BTreeSet::new();
                    for (origin, item) in items {
                        let key = item.key();
                        if let Some(why) = invalid_reason(&item) {
                            invalid.push(Change::Invalid { message: format!("{origin}: {why}") });
                            rejected.insert(key);
                            continue;
                        }
                        let (object, hash) = slim(item);
                        hashes.insert(key.clone(), hash);
                        fresh.insert(key, object);
                    }
                    if errors.is_empty() {
                        // A rejected update leaves the object as it was, as the apiserver does.
                        for k in rejected {
                            if let Some(h) = state.objects.get(&k) {
                                hashes.insert(k, *h);
                            }
                        }
                        hashes
                    } else {
                        // Documents that did not load cannot be told apart: keep everything the file held.
                        let mut kept = state.objects.clone();
                        kept.extend(hashes);
                        kept
                    }
                }
                // Gone between listing and reading, or unreadable: the next event or rescan settles it.
                Err(_) => return (Vec::new(), Vec::new()),
            },
        };
        state.stamp = now;
        let old = std::mem::replace(&mut state.objects, new);
        let mut changes = Vec::new();
        for (k, o) in fresh {
            if old.get(&k) != self.files[p].objects.get(&k) || !old.contains_key(&k) {
                changes.push(o.applied());
            }
        }
        let gone: Vec<Key> = old.keys().filter(|k| !self.files[p].objects.contains_key(*k)).cloned().collect();
        if self.files[p].stamp.is_none() {
            self.files.remove(p);
        }
        for k in gone {
            // Another file may hold the same object: then it stays, as that file has it.
            let elsewhere = self.files.iter().find(|(_, f)| f.objects.contains_key(&k)).map(|(path, _)| path.clone());
            match elsewhere.and_then(|path| self.object_in(&path, &k)) {
                Some(o) => changes.push(o.applied()),
                None => changes.push(deleted(&k)),
            }
        }
        (changes, invalid)
    }

    /// Reads one object back from a file (rare: when another file that held it too drops it).
    fn object_in(&self, path: &Path, key: &Key) -> Option<Item> {
        let text = std::fs::read_to_string(path).ok()?;
        let (items, _) = load_items(&path.display().to_string(), &text);
        items.into_iter().map(|(_, i)| i).find(|i| i.key() == *key).map(|i| slim(i).0)
    }

    /// Reads the folder, then follows its changes until `sink` is closed: inotify when the kernel allows,
    /// and a full rescan every `rescan` in any case.
    pub fn run(mut self, sink: Sink, rescan: Duration) {
        use notify::{RecursiveMode, Watcher};
        let mut open = true;
        self.initial_into(&mut |c| open = open && sink.send(Event::now(c)).is_ok());
        if !open {
            return;
        }
        let (tx, rx) = std::sync::mpsc::channel::<notify::Result<notify::Event>>();
        let mut watcher = notify::recommended_watcher(tx).ok();
        if let Some(w) = watcher.as_mut()
            && let Err(e) = w.watch(&self.dir, RecursiveMode::NonRecursive)
        {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot watch the folder; rescanning periodically");
            watcher = None;
        }
        let period = if watcher.is_some() { rescan } else { rescan.min(Duration::from_millis(200)) };
        loop {
            let first = rx.recv_timeout(period);
            let mut paths = BTreeSet::new();
            let mut full = false;
            let mut note = |r: notify::Result<notify::Event>| match r {
                Ok(ev) if !ev.need_rescan() && !ev.paths.is_empty() => paths.extend(ev.paths),
                _ => full = true,
            };
            match first {
                Ok(r) => {
                    note(r);
                    // Take what arrived with it (a writer's rename and its `.revision` come together).
                    while let Ok(r) = rx.recv_timeout(Duration::from_millis(1)) {
                        note(r);
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => full = true,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    full = true;
                    std::thread::sleep(period);
                }
            }
            let changes = self.rescan(if full { None } else { Some(&paths) });
            for c in changes {
                if sink.send(Event::now(c)).is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(changes: &[Change]) -> Vec<String> {
        changes
            .iter()
            .map(|c| match c {
                Change::Apply(o) => format!("apply {:?} {}", o.kind_of(), o.display_name()),
                Change::Delete { kind, namespace, name } => format!("delete {kind:?} {namespace}/{name}"),
                Change::Relisted { kind, objects } => format!("relisted {kind:?} {}", objects.len()),
                Change::Listed { kind, keys } => format!("listed {kind:?} {}", keys.len()),
                Change::Invalid { message } => format!("invalid {}", message.split(": ").nth(1).unwrap_or("")),
                Change::Revision(r) => format!("revision {r}"),
                Change::NodeRanges(r) => format!("node ranges {r:?}"),
                Change::ApplyCluster(o) => format!("apply {:?} {}", o.kind(), o.name()),
                Change::DeleteCluster { kind, name } => format!("delete {kind:?} {name}"),
                Change::RelistedCluster { kind, objects } => {
                    let names: Vec<&str> = objects.iter().map(ClusterObject::name).collect();
                    format!("relisted {kind:?} [{}]", names.join(", "))
                }
            })
            .collect()
    }

    fn write(dir: &Path, name: &str, text: &str) {
        // As writers should: a new file renamed into place.
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, dir.join(name)).unwrap();
    }

    const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {app: a}}\n";
    const POLICY: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\nspec: {podSelector: {}}\n";

    #[test]
    fn a_folder_becomes_relists_then_changes_become_events() {
        let tmp = tempdir();
        let d = tmp.path();
        write(d, "a.yaml", POD);
        write(d, "p.yaml", POLICY);
        std::fs::write(d.join(REVISION_FILE), "1").unwrap();
        let mut s = DirSource::new(d);
        assert_eq!(
            names(&s.initial()),
            [
                "apply Pod x/a",
                "apply NetworkPolicy x/p",
                "listed Namespace 0",
                "listed Pod 1",
                "listed NetworkPolicy 1",
                "relisted ClusterNetworkPolicy []",
                "relisted AdminNetworkPolicy []",
                "relisted BaselineAdminNetworkPolicy []",
                "relisted Node []",
                "revision 1"
            ]
        );
        assert!(s.rescan(None).is_empty(), "nothing changed");

        write(d, "a.yaml", &POD.replace("app: a", "app: b"));
        std::fs::write(d.join(REVISION_FILE), "2").unwrap();
        assert_eq!(names(&s.rescan(None)), ["apply Pod x/a", "revision 2"]);

        std::fs::remove_file(d.join("p.yaml")).unwrap();
        let only = BTreeSet::from([d.join("p.yaml")]);
        assert_eq!(names(&s.rescan(Some(&only))), ["delete NetworkPolicy x/p"]);
    }

    const CNP: &str = "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: deny-x}\nspec:\n  tier: Admin\n  priority: 10\n  subject: {namespaces: {matchLabels: {team: x}}}\n  ingress: [{action: Deny, from: [{namespaces: {}}]}]\n";
    const BANP: &str = "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\nmetadata: {name: default}\nspec:\n  subject: {namespaces: {}}\n  ingress: [{action: Deny, from: [{namespaces: {}}]}]\n";
    const NODE: &str = "apiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: {zone: a}}\nstatus: {addresses: [{type: InternalIP, address: 172.18.0.2}]}\n";

    /// Tier policies and Nodes come from the folder as other objects do: one list per kind first, then
    /// changes, an invalid edit reported with its field path (the valid version kept), a removed file a delete.
    #[test]
    fn cluster_scoped_objects_are_read_from_the_folder() {
        let tmp = tempdir();
        let d = tmp.path();
        write(d, "cnp.yaml", CNP);
        write(d, "banp.yaml", BANP);
        write(d, "node.yaml", NODE);
        let mut s = DirSource::new(d);
        let initial = s.initial();
        assert_eq!(
            names(&initial),
            [
                "listed Namespace 0",
                "listed Pod 0",
                "listed NetworkPolicy 0",
                "relisted ClusterNetworkPolicy [deny-x]",
                "relisted AdminNetworkPolicy []",
                "relisted BaselineAdminNetworkPolicy [default]",
                "relisted Node [n1]",
            ]
        );
        let Some(Change::RelistedCluster { objects, .. }) = initial.last() else { unreachable!() };
        let ClusterObject::Node(n) = &objects[0] else { unreachable!() };
        assert!(n.status.as_ref().unwrap().addresses.is_some(), "a Node keeps its addresses");

        write(d, "cnp.yaml", &CNP.replace("priority: 10", "priority: 20"));
        assert_eq!(names(&s.rescan(None)), ["apply ClusterNetworkPolicy deny-x"]);

        write(d, "cnp.yaml", &CNP.replace("priority: 10", "priority: 1001"));
        let changes = s.rescan(None);
        assert!(
            matches!(&changes[..], [Change::Invalid { message }] if message.contains(
                "ClusterNetworkPolicy.policy.networking.k8s.io \"deny-x\" is invalid: spec.priority: Invalid value: 1001"
            )),
            "{changes:?}"
        );
        write(d, "cnp.yaml", &CNP.replace("priority: 10", "priority: 20"));
        assert!(s.rescan(None).is_empty(), "the kept version is the repaired one");

        std::fs::remove_file(d.join("cnp.yaml")).unwrap();
        std::fs::remove_file(d.join("node.yaml")).unwrap();
        assert_eq!(names(&s.rescan(None)), ["delete ClusterNetworkPolicy deny-x", "delete Node n1"]);
    }

    #[test]
    fn a_broken_file_is_reported_and_keeps_its_objects() {
        let tmp = tempdir();
        let d = tmp.path();
        write(d, "p.yaml", POLICY);
        let mut s = DirSource::new(d);
        s.initial();
        let broken = POLICY.replace("{podSelector: {}}", "{podSelector: {}, policyTypes: [Sideways]}");
        write(d, "p.yaml", &broken);
        let changes = s.rescan(None);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert!(
            matches!(&changes[0], Change::Invalid { message } if message.contains("spec.policyTypes[0]")),
            "{changes:?}"
        );
        write(d, "p.yaml", "{ not yaml");
        assert!(matches!(&s.rescan(None)[..], [Change::Invalid { .. }]));
        write(d, "p.yaml", POLICY);
        assert!(s.rescan(None).is_empty(), "the kept object is the same as the repaired one");
    }

    #[test]
    fn an_object_in_two_files_stays_while_either_has_it() {
        let tmp = tempdir();
        let d = tmp.path();
        write(d, "a.yaml", POD);
        write(d, "b.yaml", POD);
        let mut s = DirSource::new(d);
        s.initial();
        std::fs::remove_file(d.join("a.yaml")).unwrap();
        assert_eq!(names(&s.rescan(None)), ["apply Pod x/a"]);
        std::fs::remove_file(d.join("b.yaml")).unwrap();
        assert_eq!(names(&s.rescan(None)), ["delete Pod x/a"]);
    }

    /// A temporary folder removed on drop.
    pub(crate) struct TempDir(PathBuf);
    impl TempDir {
        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    pub(crate) fn tempdir() -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("palisade-agent-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}
