//! The object store every role of the control plane shares: objects in their JSON wire form, one
//! resourceVersion counter, and a window of recent events that watches replay from (older versions are
//! refused as `410 Gone`, never skipped silently), as etcd and the apiserver's watch cache do.
//!
//! Only the newest events of the window keep their objects as values (the channel that wakes the roles
//! holds as many); older ones keep them serialized, about a sixth of the memory, and are parsed again
//! only when a watch resumes that far back.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub kind: EventType,
    /// `group/plural` of the object (`/pods` for the core group).
    pub resource: String,
    pub namespace: String,
    pub name: String,
    /// The object after the change (for a deletion, the last state, with the deletion's resourceVersion);
    /// shared with the store, so the event window costs only the versions no longer current.
    pub object: Arc<Value>,
    /// The object before the change (watches with selectors need it to tell "stopped matching").
    pub old: Option<Arc<Value>>,
    /// `object` serialized, made once for every watch that sends it and for the window.
    json: OnceLock<Bytes>,
}

impl Event {
    /// The object as JSON text.
    pub fn json(&self) -> &Bytes {
        self.json.get_or_init(|| Bytes::from(self.object.to_string()))
    }
}

/// An event of the window's older part: its objects serialized.
#[derive(Debug, Clone)]
pub struct Past {
    rv: u64,
    kind: EventType,
    resource: String,
    namespace: String,
    name: String,
    object: Bytes,
    old: Option<Bytes>,
}

/// An event as a watch replays it from the window: the newest as they were sent, older ones as text,
/// parsed only when asked for (a watch without selectors sends the text as it is).
#[derive(Debug, Clone)]
pub enum Replayed {
    Recent(Arc<Event>),
    Past(Past),
}

impl Replayed {
    pub fn rv(&self) -> u64 {
        match self {
            Replayed::Recent(e) => e.rv,
            Replayed::Past(p) => p.rv,
        }
    }

    pub fn kind(&self) -> EventType {
        match self {
            Replayed::Recent(e) => e.kind,
            Replayed::Past(p) => p.kind,
        }
    }

    /// `group/plural` of the object.
    pub fn resource(&self) -> &str {
        match self {
            Replayed::Recent(e) => &e.resource,
            Replayed::Past(p) => &p.resource,
        }
    }

    pub fn namespace(&self) -> &str {
        match self {
            Replayed::Recent(e) => &e.namespace,
            Replayed::Past(p) => &p.namespace,
        }
    }

    /// Whether the event has the object's previous state.
    pub fn has_old(&self) -> bool {
        match self {
            Replayed::Recent(e) => e.old.is_some(),
            Replayed::Past(p) => p.old.is_some(),
        }
    }

    /// The object as JSON text.
    pub fn json(&self) -> &Bytes {
        match self {
            Replayed::Recent(e) => e.json(),
            Replayed::Past(p) => &p.object,
        }
    }

    /// The event with its objects as values.
    pub fn event(self) -> Arc<Event> {
        match self {
            Replayed::Recent(e) => e,
            Replayed::Past(p) => Arc::new(p.event()),
        }
    }
}

impl Past {
    fn event(self) -> Event {
        let parse = |b: &Bytes| Arc::new(serde_json::from_slice(b).unwrap_or(Value::Null));
        Event {
            rv: self.rv,
            kind: self.kind,
            resource: self.resource,
            namespace: self.namespace,
            name: self.name,
            object: parse(&self.object),
            old: self.old.as_ref().map(parse),
            json: OnceLock::from(self.object),
        }
    }
}

/// Why the store refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    AlreadyExists,
    #[error("the object has been modified; please apply your changes to the latest version and try again")]
    Conflict,
    #[error("too old resource version: {requested} ({oldest})")]
    Expired { requested: u64, oldest: u64 },
    #[error("invalid resourceVersion {0:?}")]
    BadVersion(String),
}

type Key = (String, String, String);

/// Every event after the moment of subscribing.
pub type Subscription = broadcast::Receiver<Arc<Event>>;

/// How many of the newest events keep their objects as values: as many as the channel holds, which keeps
/// them anyway. A role that falls further behind is told so (it lagged) and catches up from the store.
const RECENT: usize = 128;

struct Inner {
    rv: u64,
    objects: BTreeMap<Key, Arc<Value>>,
    /// The newest events, as they were sent.
    recent: VecDeque<Arc<Event>>,
    /// The events before those, oldest first.
    past: VecDeque<Past>,
    /// Per object, the newest version serialized in `past` (version and text), so the event that replaces
    /// it shares the text as its `old` instead of serializing it again.
    past_json: HashMap<Key, (u64, Bytes)>,
    /// Watches may resume from this version or later (the oldest one whose successors are all in the window).
    oldest: u64,
    capacity: usize,
    recent_capacity: usize,
    uid: u64,
}

/// The store; clones share it.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Mutex<Inner>>,
    tx: broadcast::Sender<Arc<Event>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Default for Store {
    fn default() -> Self {
        Store::new(10_000)
    }
}

fn key(resource: &str, namespace: &str, name: &str) -> Key {
    (resource.to_owned(), namespace.to_owned(), name.to_owned())
}

/// The objects of `resource` (in `namespace` if given), in key order.
fn objects_of(g: &Inner, resource: &str, namespace: Option<&str>) -> Vec<Arc<Value>> {
    let start = key(resource, namespace.unwrap_or(""), "");
    g.objects
        .range(start..)
        .take_while(|((r, ns, _), _)| r == resource && namespace.is_none_or(|n| n == ns))
        .map(|(_, v)| v.clone())
        .collect()
}

/// Whether the object is being deleted (`metadata.deletionTimestamp` set).
pub fn terminating(o: &Value) -> bool {
    o["metadata"].get("deletionTimestamp").is_some_and(|d| !d.is_null())
}

/// `n` random characters of the alphabet Kubernetes uses for generated names (no vowels, no look-alikes).
pub fn random_suffix(n: usize) -> String {
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut buf = vec![0u8; n];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut buf);
    }
    buf.iter().map(|b| char::from(ALPHA[usize::from(*b) % ALPHA.len()])).collect()
}

/// `metadata.namespace` and `metadata.name` of an object (empty when missing).
pub fn ns_name(o: &Value) -> (String, String) {
    let m = &o["metadata"];
    (m["namespace"].as_str().unwrap_or("").to_owned(), m["name"].as_str().unwrap_or("").to_owned())
}

/// The object's `metadata.resourceVersion` as a number.
pub fn rv_of(o: &Value) -> Option<u64> {
    o["metadata"]["resourceVersion"].as_str().and_then(|s| s.parse().ok())
}

/// Parses a resourceVersion a client sent (`""` and `"0"` mean "any").
pub fn parse_rv(s: &str) -> Result<u64, StoreError> {
    if s.is_empty() {
        return Ok(0);
    }
    s.parse().map_err(|_| StoreError::BadVersion(s.to_owned()))
}

fn set_rv(o: &mut Value, rv: u64) {
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert("resourceVersion".into(), json!(rv.to_string()));
    }
}

/// Whether an update changes nothing but `metadata.resourceVersion` and `metadata.managedFields` (compared
/// in place: no copies of either object).
fn same_but_version(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else { return a == b };
    let ignored = |k: &str| k == "resourceVersion" || k == "managedFields";
    let meta_equal = |x: &Value, y: &Value| match (x.as_object(), y.as_object()) {
        (Some(x), Some(y)) => {
            x.iter().filter(|(k, _)| !ignored(k)).count() == y.iter().filter(|(k, _)| !ignored(k)).count()
                && x.iter().filter(|(k, _)| !ignored(k)).all(|(k, v)| y.get(k) == Some(v))
        }
        _ => x == y,
    };
    a.len() == b.len()
        && a.iter().all(|(k, v)| match b.get(k) {
            Some(w) if k == "metadata" => meta_equal(v, w),
            Some(w) => v == w,
            None => false,
        })
}

/// The current time as the apiserver writes timestamps (RFC 3339, whole seconds, UTC).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    rfc3339(i64::try_from(secs).unwrap_or(0))
}

/// Seconds since the epoch as RFC 3339 (UTC).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

impl Store {
    /// A store keeping the last `capacity` events for watches to resume from.
    pub fn new(capacity: usize) -> Store {
        Store::with_recent(capacity, RECENT)
    }

    /// A store keeping the last `capacity` events, the newest `recent` of them with their objects as values
    /// (and as many in the channel that wakes subscribers).
    fn with_recent(capacity: usize, recent: usize) -> Store {
        let capacity = capacity.max(1);
        let (tx, _) = broadcast::channel(recent.max(1));
        let recent = recent.clamp(1, capacity);
        Store {
            inner: Arc::new(Mutex::new(Inner {
                rv: 1,
                objects: BTreeMap::new(),
                recent: VecDeque::new(),
                past: VecDeque::new(),
                past_json: HashMap::new(),
                oldest: 1,
                capacity,
                recent_capacity: recent,
                uid: 0,
            })),
            tx,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-written object: every write is one insert.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The latest resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.lock().objects.get(&key(resource, namespace, name)).cloned()
    }

    /// Every object of `resource` (in `namespace` if given), in key order, and the version of the list.
    pub fn list(&self, resource: &str, namespace: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let g = self.lock();
        (objects_of(&g, resource, namespace), g.rv)
    }

    /// Calls `f` on every object of `resource` without cloning them all.
    pub fn for_each(&self, resource: &str, mut f: impl FnMut(&Value)) {
        let g = self.lock();
        let start = key(resource, "", "");
        for (_, v) in g.objects.range(start..).take_while(|((r, _, _), _)| r == resource) {
            f(v);
        }
    }

    fn record(&self, g: &mut Inner, ev: Event) {
        let ev = Arc::new(ev);
        g.recent.push_back(ev.clone());
        while g.recent.len() > g.recent_capacity {
            let Some(e) = g.recent.pop_front() else { break };
            if g.capacity > g.recent_capacity {
                let past = Self::serialized(g, &e);
                g.past.push_back(past);
            } else {
                g.oldest = e.rv;
            }
        }
        while g.past.len() + g.recent.len() > g.capacity {
            let Some(p) = g.past.pop_front() else { break };
            g.oldest = p.rv;
            let k = key(&p.resource, &p.namespace, &p.name);
            if g.past_json.get(&k).is_some_and(|(rv, _)| *rv == p.rv) {
                g.past_json.remove(&k);
            }
        }
        let _ = self.tx.send(ev);
    }

    /// An event leaving the newest part of the window, serialized; its `old` shares the text of the
    /// previous event of the same object when that one is in the window.
    fn serialized(g: &mut Inner, e: &Event) -> Past {
        let k = key(&e.resource, &e.namespace, &e.name);
        let old = e.old.as_ref().map(|o| match g.past_json.get(&k) {
            Some((rv, text)) if Some(*rv) == rv_of(o) => text.clone(),
            _ => Bytes::from(o.to_string()),
        });
        let object = e.json().clone();
        if e.kind == EventType::Deleted {
            g.past_json.remove(&k);
        } else {
            g.past_json.insert(k, (e.rv, object.clone()));
        }
        Past {
            rv: e.rv,
            kind: e.kind,
            resource: e.resource.clone(),
            namespace: e.namespace.clone(),
            name: e.name.clone(),
            object,
            old,
        }
    }

    fn next_rv(g: &mut Inner) -> u64 {
        g.rv += 1;
        g.rv
    }

    /// Stores a new object: uid, creationTimestamp, generation and resourceVersion are set here.
    pub fn create(&self, resource: &str, mut obj: Value) -> Result<Arc<Value>, StoreError> {
        let (ns, name) = ns_name(&obj);
        let mut g = self.lock();
        let k = key(resource, &ns, &name);
        if g.objects.contains_key(&k) {
            return Err(StoreError::AlreadyExists);
        }
        g.uid += 1;
        let uid = format!("{:08x}-{:04x}-4000-8000-{:012x}", g.uid, (g.rv & 0xffff), g.uid);
        let rv = Self::next_rv(&mut g);
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            // The API server may have chosen it already (a Job's generated selector names its uid).
            m.entry("uid").or_insert_with(|| json!(uid));
            m.entry("creationTimestamp").or_insert_with(|| json!(now_rfc3339()));
        }
        if obj.get("spec").is_some()
            && let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut)
        {
            m.insert("generation".into(), json!(1));
        }
        set_rv(&mut obj, rv);
        let obj = Arc::new(obj);
        g.objects.insert(k, obj.clone());
        self.record(
            &mut g,
            Event {
                rv,
                kind: EventType::Added,
                resource: resource.into(),
                namespace: ns,
                name,
                object: obj.clone(),
                old: None,
                json: OnceLock::new(),
            },
        );
        Ok(obj)
    }

    /// Replaces an object. With `expected` set (the client's `metadata.resourceVersion`), a different stored
    /// version is a conflict. An update that changes nothing keeps the version and sends no event.
    /// `generation` grows when `spec` changes; uid and creationTimestamp are kept.
    pub fn update(&self, resource: &str, mut obj: Value, expected: Option<u64>) -> Result<Arc<Value>, StoreError> {
        let (ns, name) = ns_name(&obj);
        let mut g = self.lock();
        let k = key(resource, &ns, &name);
        let Some(old) = g.objects.get(&k).cloned() else { return Err(StoreError::NotFound) };
        if let Some(e) = expected
            && e != 0
            && Some(e) != rv_of(&old)
        {
            return Err(StoreError::Conflict);
        }
        {
            let om = &old["metadata"];
            let generation = om["generation"].as_i64();
            let spec_changed = old.get("spec") != obj.get("spec");
            if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                for f in ["uid", "creationTimestamp"] {
                    if let Some(v) = om.get(f) {
                        m.insert(f.into(), v.clone());
                    }
                }
                if let Some(gen_) = generation {
                    m.insert("generation".into(), json!(if spec_changed { gen_ + 1 } else { gen_ }));
                }
            }
        }
        if same_but_version(&obj, &old) {
            return Ok(old);
        }
        let rv = Self::next_rv(&mut g);
        set_rv(&mut obj, rv);
        let obj = Arc::new(obj);
        g.objects.insert(k, obj.clone());
        self.record(
            &mut g,
            Event {
                rv,
                kind: EventType::Modified,
                resource: resource.into(),
                namespace: ns,
                name,
                object: obj.clone(),
                old: Some(old),
                json: OnceLock::new(),
            },
        );
        Ok(obj)
    }

    /// Reads, changes and writes an object under one lock (controllers and the kubelet: no lost updates).
    pub fn modify(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> Result<Arc<Value>, StoreError> {
        let Some(obj) = self.get(resource, namespace, name) else { return Err(StoreError::NotFound) };
        let expected = rv_of(&obj);
        let mut obj = Arc::unwrap_or_clone(obj);
        f(&mut obj);
        self.update(resource, obj, expected)
    }

    /// Removes an object for good.
    pub fn delete(&self, resource: &str, namespace: &str, name: &str) -> Result<Arc<Value>, StoreError> {
        let mut g = self.lock();
        let Some(previous) = g.objects.remove(&key(resource, namespace, name)) else {
            return Err(StoreError::NotFound);
        };
        let rv = Self::next_rv(&mut g);
        let mut last = (*previous).clone();
        set_rv(&mut last, rv);
        let last = Arc::new(last);
        self.record(
            &mut g,
            Event {
                rv,
                kind: EventType::Deleted,
                resource: resource.into(),
                namespace: namespace.into(),
                name: name.into(),
                object: last.clone(),
                old: Some(previous),
                json: OnceLock::new(),
            },
        );
        Ok(last)
    }

    /// A watch from `from` (0: from now): the events after `from` still in the window, and a receiver for
    /// what follows. Events are of every resource; callers filter.
    pub fn watch(&self, from: u64) -> Result<(Vec<Arc<Event>>, Subscription), StoreError> {
        let (replay, rx) = self.replay(from)?;
        Ok((replay.into_iter().map(Replayed::event).collect(), rx))
    }

    /// As `watch`, with the older events left as text (nothing is parsed under the lock or up front).
    pub fn replay(&self, from: u64) -> Result<(Vec<Replayed>, Subscription), StoreError> {
        let g = self.lock();
        let rx = self.tx.subscribe();
        if from == 0 {
            return Ok((Vec::new(), rx));
        }
        if from < g.oldest {
            return Err(StoreError::Expired { requested: from, oldest: g.oldest });
        }
        let skip = g.past.partition_point(|p| p.rv <= from);
        let past = g.past.iter().skip(skip).cloned().map(Replayed::Past);
        let recent = g.recent.iter().filter(|e| e.rv > from).cloned().map(Replayed::Recent);
        Ok((past.chain(recent).collect(), rx))
    }

    /// The objects of `resource` (in `namespace` if given) and a receiver of every later event, taken at one
    /// instant: the list's version is the last event it includes.
    pub fn list_and_watch(&self, resource: &str, namespace: Option<&str>) -> (Vec<Arc<Value>>, u64, Subscription) {
        let g = self.lock();
        let rx = self.tx.subscribe();
        (objects_of(&g, resource, namespace), g.rv, rx)
    }

    /// Forgets the event window, as etcd's compaction does: a resume from any version so far gets
    /// `410 Gone`; a list taken now starts a watch that works (the compaction is a version of its own).
    pub fn compact(&self) {
        let mut g = self.lock();
        g.rv += 1;
        g.recent.clear();
        g.past.clear();
        g.past_json.clear();
        g.oldest = g.rv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": {"x": 1}})
    }

    #[test]
    fn create_update_delete_bump_versions_and_record_events() {
        let s = Store::new(100);
        let a = s.create("/pods", pod("a")).unwrap();
        assert_eq!(rv_of(&a), Some(2));
        assert_eq!(a["metadata"]["generation"], 1);
        assert_eq!(s.create("/pods", pod("a")), Err(StoreError::AlreadyExists));
        // No change: same version, no event.
        let same = s.update("/pods", (*a).clone(), rv_of(&a)).unwrap();
        assert_eq!(rv_of(&same), Some(2));
        let mut b = (*a).clone();
        b["spec"]["x"] = json!(2);
        let b = s.update("/pods", b, rv_of(&a)).unwrap();
        assert_eq!(rv_of(&b), Some(3));
        assert_eq!(b["metadata"]["generation"], 2);
        assert_eq!(b["metadata"]["uid"], a["metadata"]["uid"]);
        // A stale version conflicts.
        assert_eq!(s.update("/pods", (*b).clone(), Some(2)), Err(StoreError::Conflict));
        // Only the version and managedFields differing is no change.
        let mut c = (*b).clone();
        c["metadata"]["managedFields"] = json!([{"manager": "kubectl"}]);
        assert_eq!(rv_of(&s.update("/pods", c, None).unwrap()), Some(3));
        let (replay, _) = s.watch(2).unwrap();
        assert_eq!(replay.len(), 1);
        s.delete("/pods", "default", "a").unwrap();
        assert_eq!(s.delete("/pods", "default", "a"), Err(StoreError::NotFound));
        let (replay, _) = s.watch(1).unwrap();
        let kinds: Vec<_> = replay.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventType::Added, EventType::Modified, EventType::Deleted]);
    }

    #[test]
    fn list_is_per_resource_and_namespace() {
        let s = Store::new(100);
        s.create("/pods", pod("a")).unwrap();
        let mut other = pod("b");
        other["metadata"]["namespace"] = json!("other");
        s.create("/pods", other).unwrap();
        s.create("/services", pod("svc")).unwrap();
        assert_eq!(s.list("/pods", None).0.len(), 2);
        assert_eq!(s.list("/pods", Some("other")).0.len(), 1);
        assert_eq!(s.list("/services", None).0.len(), 1);
        assert_eq!(s.list("/pods", Some("none")).0.len(), 0);
    }

    #[test]
    fn a_watch_older_than_the_window_expires() {
        let s = Store::new(2);
        for n in ["a", "b", "c", "d"] {
            s.create("/pods", pod(n)).unwrap();
        }
        assert!(matches!(s.watch(2), Err(StoreError::Expired { .. })));
        assert_eq!(s.watch(4).unwrap().0.len(), 1);
        let before = s.current_rv();
        s.compact();
        assert!(matches!(s.watch(4), Err(StoreError::Expired { .. })));
        assert!(matches!(s.watch(before), Err(StoreError::Expired { .. })));
        assert!(s.watch(s.current_rv()).unwrap().0.is_empty());
    }

    #[test]
    fn older_events_replay_from_their_text_as_they_were() {
        let s = Store::with_recent(100, 3);
        let a = s.create("/pods", pod("a")).unwrap();
        let mut written = vec![(EventType::Added, a.clone(), None)];
        let mut prev = a;
        for x in 2..6 {
            let mut next = (*prev).clone();
            next["spec"]["x"] = json!(x);
            let next = s.update("/pods", next, None).unwrap();
            written.push((EventType::Modified, next.clone(), Some(prev.clone())));
            prev = next;
        }
        let b = s.create("/pods", pod("b")).unwrap();
        written.push((EventType::Added, b, None));
        let gone = s.delete("/pods", "default", "a").unwrap();
        written.push((EventType::Deleted, gone, Some(prev)));
        let replayed = |from: u64| {
            let (replay, _) = s.watch(from).unwrap();
            replay.iter().map(|e| (e.kind, e.object.clone(), e.old.clone())).collect::<Vec<_>>()
        };
        assert_eq!(replayed(1), written);
        // From the middle of the serialized part, and from the newest part only.
        assert_eq!(replayed(rv_of(&written[1].1).unwrap()), written[2..]);
        assert_eq!(replayed(rv_of(&written[5].1).unwrap()), written[6..]);
        // The window's end still expires older resumes.
        let s = Store::with_recent(4, 2);
        for n in ["a", "b", "c", "d", "e", "f"] {
            s.create("/pods", pod(n)).unwrap();
        }
        assert!(matches!(s.watch(2), Err(StoreError::Expired { .. })));
        let names: Vec<String> = s.watch(3).unwrap().0.iter().map(|e| e.name.clone()).collect();
        assert_eq!(names, ["c", "d", "e", "f"]);
    }

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_099_462), "2026-12-01T04:31:02Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
