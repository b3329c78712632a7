//! Per-kind "strategy" of the API server: the defaults the apiserver fills on every write, the validation of
//! creates and updates with upstream's error messages, and strict-decoding unknown-field detection, all on
//! objects in their JSON wire form (after k8s.io/kubernetes pkg/apis/*/v1/defaults.go and pkg/apis/*/validation).

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use serde_json::{Map, Value, json};

/// The kind of a field error, as apimachinery's `field.ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A required value is missing (`FieldValueRequired`).
    Required,
    /// A malformed value (`FieldValueInvalid`).
    Invalid,
    /// A value that must be unique is repeated (`FieldValueDuplicate`).
    Duplicate,
    /// A value outside an enumeration (`FieldValueNotSupported`).
    NotSupported,
    /// A value not permitted here (`FieldValueForbidden`).
    Forbidden,
    /// A value that is too long (`FieldValueTooLong`).
    TooLong,
    /// A list with too many items (`FieldValueTooMany`).
    TooMany,
}

impl Reason {
    /// The cause `reason` string of the Status details.
    pub fn cause_type(self) -> &'static str {
        match self {
            Reason::Required => "FieldValueRequired",
            Reason::Invalid => "FieldValueInvalid",
            Reason::Duplicate => "FieldValueDuplicate",
            Reason::NotSupported => "FieldValueNotSupported",
            Reason::Forbidden => "FieldValueForbidden",
            Reason::TooLong => "FieldValueTooLong",
            Reason::TooMany => "FieldValueTooMany",
        }
    }

    fn text(self) -> &'static str {
        match self {
            Reason::Required => "Required value",
            Reason::Invalid => "Invalid value",
            Reason::Duplicate => "Duplicate value",
            Reason::NotSupported => "Unsupported value",
            Reason::Forbidden => "Forbidden",
            Reason::TooLong => "Too long",
            Reason::TooMany => "Too many",
        }
    }
}

/// One validation error of one field, as apimachinery's `field.Error`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {}", self.body())]
pub struct FieldError {
    /// The field path, e.g. `spec.template.spec.containers[0].name`.
    pub field: String,
    /// What kind of error.
    pub reason: Reason,
    /// The human-readable detail (may be empty).
    pub detail: String,
    /// The offending value, where the error type prints one.
    pub bad_value: Option<Value>,
}

impl FieldError {
    fn new(field: impl Into<String>, reason: Reason, detail: impl Into<String>, bad_value: Option<Value>) -> Self {
        FieldError { field: field.into(), reason, detail: detail.into(), bad_value }
    }
    fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(field, Reason::Required, detail, None)
    }
    fn invalid(field: impl Into<String>, value: Value, detail: impl Into<String>) -> Self {
        Self::new(field, Reason::Invalid, detail, Some(value))
    }
    fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(field, Reason::Forbidden, detail, None)
    }
    fn duplicate(field: impl Into<String>, value: Value) -> Self {
        Self::new(field, Reason::Duplicate, "", Some(value))
    }
    fn not_supported(field: impl Into<String>, value: Value, supported: &[&str]) -> Self {
        let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
        let detail = if quoted.is_empty() { String::new() } else { format!("supported values: {}", quoted.join(", ")) };
        Self::new(field, Reason::NotSupported, detail, Some(value))
    }
    fn too_long(field: impl Into<String>, max: usize) -> Self {
        let unit = if max == 1 { "byte" } else { "bytes" };
        Self::new(field, Reason::TooLong, format!("may not be more than {max} {unit}"), None)
    }
    fn too_many(field: impl Into<String>, actual: usize, max: usize) -> Self {
        let unit = if max == 1 { "item" } else { "items" };
        Self::new(field, Reason::TooMany, format!("must have at most {max} {unit}"), Some(json!(actual)))
    }

    /// The message without the field name (apimachinery's `ErrorBody`).
    pub fn body(&self) -> String {
        let mut s = match self.reason {
            Reason::Required | Reason::Forbidden | Reason::TooLong => self.reason.text().to_string(),
            _ => match &self.bad_value {
                None => self.reason.text().to_string(),
                Some(v) => format!("{}: {}", self.reason.text(), render_value(v)),
            },
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }

    /// The cause as the apiserver's Status details carry it:
    /// `{"reason":"FieldValueRequired","message":"Required value: ...","field":"..."}`.
    pub fn cause(&self) -> Value {
        json!({"reason": self.reason.cause_type(), "message": self.body(), "field": self.field})
    }
}

/// Renders a bad value as Go's field errors do: plain numbers and booleans, `%q` strings, JSON otherwise.
fn render_value(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => go_quote(s),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// Go's `%q` for the strings that occur in practice (JSON string escaping matches it for printable text).
fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

// ---------------------------------------------------------------------------------------------------------------
// Small JSON accessors. Wrong types count as absent: type errors are the decoder's business (`unknown_fields`).

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_object().and_then(|m| m.get(key)).filter(|x| !x.is_null())
}
fn st<'a>(v: &'a Value, key: &str) -> &'a str {
    get(v, key).and_then(Value::as_str).unwrap_or("")
}
fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    get(v, key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}
fn int(v: &Value, key: &str) -> Option<i64> {
    get(v, key).and_then(Value::as_i64)
}
fn obj<'a>(v: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    get(v, key).and_then(Value::as_object)
}
fn child(p: &str, c: &str) -> String {
    if p.is_empty() { c.to_string() } else { format!("{p}.{c}") }
}
fn idx(p: &str, i: usize) -> String {
    format!("{p}[{i}]")
}
fn key(p: &str, k: &str) -> String {
    format!("{p}[{k}]")
}
fn field_or_null(v: &Value, k: &str) -> Value {
    get(v, k).cloned().unwrap_or(Value::Null)
}

/// Makes `v[k]` an object (creating it or replacing a non-object) and returns it.
fn ensure_obj<'a>(v: &'a mut Value, k: &str) -> Option<&'a mut Value> {
    let m = v.as_object_mut()?;
    let e = m.entry(k.to_string()).or_insert_with(|| json!({}));
    if !e.is_object() {
        *e = json!({});
    }
    Some(e)
}
/// Sets `v[k] = d` when `v` is an object and `v[k]` is absent or null.
fn set_default(v: &mut Value, k: &str, d: Value) {
    if let Some(m) = v.as_object_mut() {
        let e = m.entry(k.to_string()).or_insert(Value::Null);
        if e.is_null() {
            *e = d;
        }
    }
}
fn for_each_in(v: &mut Value, k: &str, mut f: impl FnMut(&mut Value)) {
    if let Some(a) = v.as_object_mut().and_then(|m| m.get_mut(k)).and_then(Value::as_array_mut) {
        a.iter_mut().for_each(&mut f);
    }
}
fn has_items(v: &Value, k: &str) -> bool {
    match get(v, k) {
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
        Some(_) => true,
        None => false,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Defaulting.

/// Fills the defaults the apiserver fills on every write (create, update, patch). Unknown kinds are left alone.
/// For a Job, set `metadata.uid` first: the generated selector and pod labels are derived from it.
pub fn default(kind: &str, obj: &mut Value) {
    if !obj.is_object() {
        return;
    }
    match kind {
        "Namespace" => default_namespace(obj),
        "Pod" => default_pod(obj),
        "Service" => default_service(obj),
        "Deployment" => default_deployment(obj),
        "ReplicaSet" => default_replicated(obj, |_| {}),
        "ReplicationController" => default_rc(obj),
        "StatefulSet" => default_statefulset(obj),
        "DaemonSet" => default_daemonset(obj),
        "Job" => default_job(obj),
        "CronJob" => default_cronjob(obj),
        "Secret" => set_default(obj, "type", json!("Opaque")),
        "Endpoints" => {
            for_each_in(obj, "subsets", |s| for_each_in(s, "ports", |p| set_default(p, "protocol", json!("TCP"))))
        }
        "EndpointSlice" => for_each_in(obj, "ports", |p| {
            set_default(p, "protocol", json!("TCP"));
            set_default(p, "name", json!(""));
        }),
        "NetworkPolicy" => default_network_policy(obj),
        _ => {}
    }
}

fn default_namespace(obj: &mut Value) {
    let name = get(obj, "metadata").map(|m| st(m, "name").to_string()).unwrap_or_default();
    if !name.is_empty()
        && let Some(meta) = ensure_obj(obj, "metadata")
        && let Some(labels) = ensure_obj(meta, "labels").and_then(Value::as_object_mut)
    {
        // Upstream always (re)sets this label, so a user cannot make it lie.
        labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    if let Some(spec) = ensure_obj(obj, "spec") {
        set_default(spec, "finalizers", json!(["kubernetes"]));
    }
    if let Some(status) = ensure_obj(obj, "status") {
        set_default(status, "phase", json!("Active"));
    }
}

/// imagePullPolicy as upstream derives it: Always for `:latest` or no tag (and no digest), else IfNotPresent.
fn pull_policy_for(image: &str) -> &'static str {
    let (name, digest) = match image.split_once('@') {
        Some((n, _)) => (n, true),
        None => (image, false),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let tag = last.rsplit_once(':').map(|(_, t)| t);
    match tag {
        Some("latest") => "Always",
        None if !digest => "Always",
        _ => "IfNotPresent",
    }
}

fn default_probe(p: &mut Value) {
    set_default(p, "timeoutSeconds", json!(1));
    set_default(p, "periodSeconds", json!(10));
    set_default(p, "successThreshold", json!(1));
    set_default(p, "failureThreshold", json!(3));
    if let Some(h) = p.get_mut("httpGet").filter(|h| h.is_object()) {
        set_default(h, "path", json!("/"));
        set_default(h, "scheme", json!("HTTP"));
    }
}

fn default_container(c: &mut Value, host_network: bool) {
    let image = st(c, "image").to_string();
    set_default(c, "imagePullPolicy", json!(pull_policy_for(&image)));
    set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(c, "terminationMessagePolicy", json!("File"));
    set_default(c, "resources", json!({}));
    for_each_in(c, "ports", |p| {
        set_default(p, "protocol", json!("TCP"));
        if host_network && let Some(cp) = int(p, "containerPort") {
            set_default(p, "hostPort", json!(cp));
        }
    });
    for_each_in(c, "env", |e| {
        if let Some(fr) = e.get_mut("valueFrom").and_then(|vf| vf.get_mut("fieldRef")).filter(|f| f.is_object()) {
            set_default(fr, "apiVersion", json!("v1"));
        }
    });
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).filter(|p| p.is_object()) {
            default_probe(p);
        }
    }
    // SetDefaults_Pod: requests default to limits for each resource with a limit and no request.
    if let Some(res) = c.get_mut("resources").and_then(Value::as_object_mut)
        && let Some(limits) = res.get("limits").and_then(Value::as_object).cloned()
        && !limits.is_empty()
    {
        let req = res.entry("requests").or_insert_with(|| json!({}));
        if let Some(req) = req.as_object_mut() {
            for (k, v) in limits {
                req.entry(k).or_insert(v);
            }
        }
    }
}

fn default_volume(v: &mut Value) {
    const SOURCES: &[&str] = &[
        "hostPath",
        "emptyDir",
        "gcePersistentDisk",
        "awsElasticBlockStore",
        "gitRepo",
        "secret",
        "nfs",
        "iscsi",
        "glusterfs",
        "persistentVolumeClaim",
        "rbd",
        "flexVolume",
        "cinder",
        "cephfs",
        "flocker",
        "downwardAPI",
        "fc",
        "azureFile",
        "configMap",
        "vsphereVolume",
        "quobyte",
        "azureDisk",
        "photonPersistentDisk",
        "projected",
        "portworxVolume",
        "scaleIO",
        "storageos",
        "csi",
        "ephemeral",
        "image",
    ];
    if !SOURCES.iter().any(|s| get(v, s).is_some()) {
        set_default(v, "emptyDir", json!({}));
    }
    for src in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = v.get_mut(src).filter(|s| s.is_object()) {
            set_default(s, "defaultMode", json!(420));
        }
    }
    if let Some(h) = v.get_mut("hostPath").filter(|s| s.is_object()) {
        set_default(h, "type", json!(""));
    }
}

/// SetDefaults_PodSpec plus the per-container and per-volume defaults: what every pod template gets.
fn default_pod_spec(spec: &mut Value) {
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(spec, "enableServiceLinks", json!(true));
    let host_network = get(spec, "hostNetwork").and_then(Value::as_bool).unwrap_or(false);
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        for_each_in(spec, list, |c| default_container(c, host_network));
    }
    for_each_in(spec, "volumes", default_volume);
}

fn default_template(obj: &mut Value, path: &[&str]) {
    let mut cur = obj;
    for p in path {
        match cur.get_mut(*p).filter(|v| v.is_object()) {
            Some(v) => cur = v,
            None => return,
        }
    }
    if let Some(spec) = cur.get_mut("spec").filter(|v| v.is_object()) {
        default_pod_spec(spec);
    }
}

fn default_pod(obj: &mut Value) {
    if let Some(spec) = ensure_obj(obj, "spec") {
        default_pod_spec(spec);
        // What the ServiceAccount and Priority admission plugins fill for pods (not for templates).
        set_default(spec, "serviceAccountName", json!("default"));
        let sa = st(spec, "serviceAccountName").to_string();
        set_default(spec, "serviceAccount", json!(sa));
        set_default(spec, "priority", json!(0));
        set_default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    }
    if let Some(status) = ensure_obj(obj, "status") {
        set_default(status, "phase", json!("Pending"));
    }
}

fn is_headless(svc_spec: &Value) -> bool {
    st(svc_spec, "clusterIP") == "None"
        || arr(svc_spec, "clusterIPs").first().and_then(Value::as_str).is_some_and(|s| s == "None")
}

fn externally_accessible(spec: &Value) -> bool {
    let t = st(spec, "type");
    t == "LoadBalancer" || t == "NodePort" || (t == "ClusterIP" && !arr(spec, "externalIPs").is_empty())
}

fn default_service(obj: &mut Value) {
    let Some(spec) = ensure_obj(obj, "spec") else { return };
    set_default(spec, "sessionAffinity", json!("None"));
    set_default(spec, "type", json!("ClusterIP"));
    if st(spec, "sessionAffinity") == "ClientIP" {
        set_default(spec, "sessionAffinityConfig", json!({"clientIP": {"timeoutSeconds": 10800}}));
    }
    for_each_in(spec, "ports", |p| {
        set_default(p, "protocol", json!("TCP"));
        let unset = match get(p, "targetPort") {
            None => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            Some(_) => false,
        };
        if unset && let (Some(port), Some(m)) = (get(p, "port").cloned(), p.as_object_mut()) {
            m.insert("targetPort".into(), port);
        }
    });
    let t = st(spec, "type").to_string();
    if externally_accessible(spec) {
        set_default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if t == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if t != "ExternalName" {
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
        // The registry normalizes clusterIP/clusterIPs and the families; allocation itself is elsewhere.
        let cip = st(spec, "clusterIP").to_string();
        if !cip.is_empty() && arr(spec, "clusterIPs").is_empty() {
            if let Some(m) = spec.as_object_mut() {
                m.insert("clusterIPs".into(), json!([cip]));
            }
        } else if cip.is_empty()
            && let Some(first) = arr(spec, "clusterIPs").first().cloned()
            && let Some(m) = spec.as_object_mut()
        {
            m.insert("clusterIP".into(), first);
        }
        set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
        let fam = match st(spec, "clusterIP").parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => "IPv6",
            _ => "IPv4",
        };
        if arr(spec, "ipFamilies").is_empty()
            && let Some(m) = spec.as_object_mut()
        {
            m.insert("ipFamilies".into(), json!([fam]));
        }
    }
    if let Some(status) = ensure_obj(obj, "status") {
        set_default(status, "loadBalancer", json!({}));
    }
}

/// Defaults shared by ReplicaSet-like workloads: replicas 1, then the kind's own, then the pod template.
fn default_replicated(obj: &mut Value, extra: impl FnOnce(&mut Value)) {
    if let Some(spec) = ensure_obj(obj, "spec") {
        set_default(spec, "replicas", json!(1));
        extra(spec);
    }
    default_template(obj, &["spec", "template"]);
}

fn default_deployment(obj: &mut Value) {
    default_replicated(obj, |spec| {
        if let Some(strategy) = ensure_obj(spec, "strategy") {
            let t = st(strategy, "type");
            if t.is_empty() {
                set_default(strategy, "type", json!("RollingUpdate"));
            }
            if st(strategy, "type") == "RollingUpdate"
                && let Some(ru) = ensure_obj(strategy, "rollingUpdate")
            {
                set_default(ru, "maxUnavailable", json!("25%"));
                set_default(ru, "maxSurge", json!("25%"));
            }
        }
        set_default(spec, "revisionHistoryLimit", json!(10));
        set_default(spec, "progressDeadlineSeconds", json!(600));
    });
}

fn default_rc(obj: &mut Value) {
    // SetDefaults_ReplicationController: selector and labels default to the template's labels.
    let tlabels = get(obj, "spec")
        .and_then(|s| get(s, "template"))
        .and_then(|t| obj_labels(t))
        .filter(|l| !l.is_empty())
        .cloned();
    if let Some(tl) = tlabels {
        if let Some(spec) = ensure_obj(obj, "spec")
            && obj_nonempty(spec, "selector").is_none()
            && let Some(m) = spec.as_object_mut()
        {
            m.insert("selector".into(), Value::Object(tl.clone()));
        }
        if let Some(meta) = ensure_obj(obj, "metadata")
            && obj_nonempty(meta, "labels").is_none()
            && let Some(m) = meta.as_object_mut()
        {
            m.insert("labels".into(), Value::Object(tl));
        }
    }
    default_replicated(obj, |_| {});
}

fn obj_labels(t: &Value) -> Option<&Map<String, Value>> {
    get(t, "metadata").and_then(|m| obj(m, "labels"))
}
fn obj_nonempty<'a>(v: &'a Value, k: &str) -> Option<&'a Map<String, Value>> {
    obj(v, k).filter(|m| !m.is_empty())
}

fn default_statefulset(obj: &mut Value) {
    default_replicated(obj, |spec| {
        set_default(spec, "podManagementPolicy", json!("OrderedReady"));
        if let Some(us) = ensure_obj(spec, "updateStrategy") {
            set_default(us, "type", json!("RollingUpdate"));
            if st(us, "type") == "RollingUpdate"
                && let Some(ru) = ensure_obj(us, "rollingUpdate")
            {
                set_default(ru, "partition", json!(0));
            }
        }
        set_default(spec, "revisionHistoryLimit", json!(10));
        if let Some(p) = ensure_obj(spec, "persistentVolumeClaimRetentionPolicy") {
            set_default(p, "whenDeleted", json!("Retain"));
            set_default(p, "whenScaled", json!("Retain"));
        }
        for_each_in(spec, "volumeClaimTemplates", |pvc| {
            if let Some(s) = ensure_obj(pvc, "spec") {
                set_default(s, "volumeMode", json!("Filesystem"));
            }
            if let Some(s) = ensure_obj(pvc, "status") {
                set_default(s, "phase", json!("Pending"));
            }
        });
    });
}

fn default_daemonset(obj: &mut Value) {
    if let Some(spec) = ensure_obj(obj, "spec") {
        if let Some(us) = ensure_obj(spec, "updateStrategy") {
            set_default(us, "type", json!("RollingUpdate"));
            if st(us, "type") == "RollingUpdate"
                && let Some(ru) = ensure_obj(us, "rollingUpdate")
            {
                set_default(ru, "maxUnavailable", json!(1));
                set_default(ru, "maxSurge", json!(0));
            }
        }
        set_default(spec, "revisionHistoryLimit", json!(10));
    }
    default_template(obj, &["spec", "template"]);
}

fn default_job(obj: &mut Value) {
    let uid = get(obj, "metadata").map(|m| st(m, "uid").to_string()).unwrap_or_default();
    let job_name = get(obj, "metadata").map(|m| st(m, "name").to_string()).unwrap_or_default();
    let Some(spec) = ensure_obj(obj, "spec") else { return };
    if get(spec, "completions").is_none() && get(spec, "parallelism").is_none() {
        set_default(spec, "completions", json!(1));
    }
    set_default(spec, "parallelism", json!(1));
    let backoff = if get(spec, "backoffLimitPerIndex").is_some() { i64::from(i32::MAX) } else { 6 };
    set_default(spec, "backoffLimit", json!(backoff));
    set_default(spec, "completionMode", json!("NonIndexed"));
    set_default(spec, "suspend", json!(false));
    let pfp = get(spec, "podFailurePolicy").is_some();
    set_default(spec, "podReplacementPolicy", json!(if pfp { "Failed" } else { "TerminatingOrFailed" }));
    // The job strategy generates the selector from the uid unless the user asked for a manual selector.
    let manual = get(spec, "manualSelector").and_then(Value::as_bool).unwrap_or(false);
    if !manual && !uid.is_empty() && get(spec, "selector").is_none() {
        if let Some(m) = spec.as_object_mut() {
            m.insert("selector".into(), json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}));
        }
        if let Some(labels) = ensure_obj(spec, "template")
            .and_then(|t| ensure_obj(t, "metadata"))
            .and_then(|m| ensure_obj(m, "labels"))
            .and_then(Value::as_object_mut)
        {
            for (k, v) in [
                ("batch.kubernetes.io/controller-uid", &uid),
                ("batch.kubernetes.io/job-name", &job_name),
                ("controller-uid", &uid),
                ("job-name", &job_name),
            ] {
                labels.entry(k.to_string()).or_insert_with(|| json!(v));
            }
        }
    }
    let tlabels = get(spec, "template").and_then(obj_labels).filter(|l| !l.is_empty()).cloned();
    if let Some(tl) = tlabels
        && let Some(meta) = ensure_obj(obj, "metadata")
        && obj_nonempty(meta, "labels").is_none()
        && let Some(m) = meta.as_object_mut()
    {
        m.insert("labels".into(), Value::Object(tl));
    }
    default_template(obj, &["spec", "template"]);
}

fn default_cronjob(obj: &mut Value) {
    if let Some(spec) = ensure_obj(obj, "spec") {
        set_default(spec, "concurrencyPolicy", json!("Allow"));
        set_default(spec, "suspend", json!(false));
        set_default(spec, "successfulJobsHistoryLimit", json!(3));
        set_default(spec, "failedJobsHistoryLimit", json!(1));
    }
    default_template(obj, &["spec", "jobTemplate", "spec", "template"]);
}

fn default_network_policy(obj: &mut Value) {
    let Some(spec) = ensure_obj(obj, "spec") else { return };
    // Upstream: len(spec.egress) != 0, so an explicit empty `egress: []` does not add Egress.
    if arr(spec, "policyTypes").is_empty() {
        let mut types = vec![json!("Ingress")];
        if !arr(spec, "egress").is_empty() {
            types.push(json!("Egress"));
        }
        if let Some(m) = spec.as_object_mut() {
            m.insert("policyTypes".into(), Value::Array(types));
        }
    }
    for rules in ["ingress", "egress"] {
        for_each_in(spec, rules, |r| for_each_in(r, "ports", |p| set_default(p, "protocol", json!("TCP"))));
    }
}

// ---------------------------------------------------------------------------------------------------------------
// apimachinery's string-format checks, with their exact messages.

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
const PERCENT_MSG: &str = "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')";
const IMMUTABLE: &str = "field is immutable";
const NEGATIVE: &str = "must be greater than or equal to 0";
const IP_MSG: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

fn max_len(n: usize) -> String {
    format!("must be no more than {n} characters")
}

fn is_dns_label_syntax(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}
fn is_dns_subdomain_syntax(s: &str) -> bool {
    s.split('.').all(is_dns_label_syntax)
}

fn dns1123_label(s: &str) -> Vec<String> {
    let mut e = Vec::new();
    if s.len() > 63 {
        e.push(max_len(63));
    }
    if !is_dns_label_syntax(s) {
        e.push(if is_dns_subdomain_syntax(s) { "must not contain dots".into() } else { DNS1123_LABEL_MSG.into() });
    }
    e
}
fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut e = Vec::new();
    if s.len() > 253 {
        e.push(max_len(253));
    }
    if !is_dns_subdomain_syntax(s) {
        e.push(DNS1123_SUBDOMAIN_MSG.into());
    }
    e
}
fn dns1035_label(s: &str) -> Vec<String> {
    let mut e = Vec::new();
    if s.len() > 63 {
        e.push(max_len(63));
    }
    if !(is_dns_label_syntax(s) && s.as_bytes()[0].is_ascii_lowercase()) {
        e.push(DNS1035_LABEL_MSG.into());
    }
    e
}
fn is_qualified_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}
fn qualified_name(s: &str) -> Vec<String> {
    let mut e = Vec::new();
    let parts: Vec<&str> = s.split('/').collect();
    let name = match parts.as_slice() {
        [n] => *n,
        [prefix, n] => {
            if prefix.is_empty() {
                e.push("prefix part must be non-empty".to_string());
            } else {
                e.extend(dns1123_subdomain(prefix).into_iter().map(|m| format!("prefix part {m}")));
            }
            *n
        }
        _ => {
            return vec![format!(
                "a qualified name {QUALIFIED_NAME_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            )];
        }
    };
    if name.is_empty() {
        e.push("name part must be non-empty".into());
    } else if name.len() > 63 {
        e.push(format!("name part {}", max_len(63)));
    }
    if !is_qualified_part(name) {
        e.push(format!("name part {QUALIFIED_NAME_MSG}"));
    }
    e
}
fn label_value(s: &str) -> Vec<String> {
    let mut e = Vec::new();
    if s.len() > 63 {
        e.push(max_len(63));
    }
    if !s.is_empty() && !is_qualified_part(s) {
        e.push(LABEL_VALUE_MSG.into());
    }
    e
}
fn port_name(s: &str) -> Vec<String> {
    let mut e = Vec::new();
    if s.len() > 15 {
        e.push(max_len(15));
    }
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-') {
        e.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if !s.bytes().any(|c| c.is_ascii_lowercase()) {
        e.push("must contain at least one letter (a-z)".into());
    }
    if s.contains("--") {
        e.push("must not contain consecutive hyphens".into());
    }
    if s.starts_with('-') || s.ends_with('-') {
        e.push("must not begin or end with a hyphen".into());
    }
    e
}
fn port_num(n: i64) -> Vec<String> {
    if (1..=65535).contains(&n) { vec![] } else { vec!["must be between 1 and 65535, inclusive".into()] }
}
fn config_key(s: &str) -> Vec<String> {
    let mut e = Vec::new();
    if s.len() > 253 {
        e.push(max_len(253));
    }
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')) {
        e.push(CONFIG_KEY_MSG.into());
    }
    if s == "." {
        e.push("must not be '.'".into());
    } else if s == ".." {
        e.push("must not be '..'".into());
    } else if s.starts_with("..") {
        e.push("must not start with '..'".into());
    }
    e
}

fn push_msgs(errs: &mut Vec<FieldError>, field: &str, value: Value, msgs: Vec<String>) {
    errs.extend(msgs.into_iter().map(|m| FieldError::invalid(field, value.clone(), m)));
}
fn nonneg(errs: &mut Vec<FieldError>, v: &Value, k: &str, field: &str) {
    if let Some(n) = int(v, k)
        && n < 0
    {
        errs.push(FieldError::invalid(field, json!(n), NEGATIVE));
    }
}
fn immutable(errs: &mut Vec<FieldError>, new: &Value, old: &Value, k: &str, field: &str) {
    let (n, o) = (field_or_null(new, k), field_or_null(old, k));
    if n != o {
        errs.push(FieldError::invalid(field, n, IMMUTABLE));
    }
}

fn validate_labels(errs: &mut Vec<FieldError>, labels: Option<&Map<String, Value>>, field: &str) {
    for (k, v) in labels.into_iter().flatten() {
        push_msgs(errs, field, json!(k), qualified_name(k));
        let v = v.as_str().unwrap_or("");
        push_msgs(errs, field, json!(v), label_value(v));
    }
}

fn validate_annotations(errs: &mut Vec<FieldError>, ann: Option<&Map<String, Value>>, field: &str) {
    let mut total = 0usize;
    for (k, v) in ann.into_iter().flatten() {
        push_msgs(errs, field, json!(k), qualified_name(&k.to_lowercase()));
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > 256 * 1024 {
        errs.push(FieldError::too_long(field, 256 * 1024));
    }
}

type NameFn = fn(&str) -> Vec<String>;

fn validate_meta(errs: &mut Vec<FieldError>, o: &Value, namespaced: bool, name_fn: NameFn) {
    let empty = json!({});
    let meta = get(o, "metadata").unwrap_or(&empty);
    let name = st(meta, "name");
    let generate = st(meta, "generateName");
    if name.is_empty() {
        // The store generates the name from generateName before validating; tolerate a caller that has not yet.
        if generate.is_empty() {
            errs.push(FieldError::required("metadata.name", "name or generateName is required"));
        }
    } else {
        push_msgs(errs, "metadata.name", json!(name), name_fn(name));
    }
    let ns = st(meta, "namespace");
    if namespaced {
        if ns.is_empty() {
            errs.push(FieldError::required("metadata.namespace", ""));
        } else {
            push_msgs(errs, "metadata.namespace", json!(ns), dns1123_label(ns));
        }
    } else if !ns.is_empty() {
        errs.push(FieldError::forbidden("metadata.namespace", "not allowed on this type"));
    }
    nonneg(errs, meta, "generation", "metadata.generation");
    validate_labels(errs, obj(meta, "labels"), "metadata.labels");
    validate_annotations(errs, obj(meta, "annotations"), "metadata.annotations");
}

fn validate_meta_update(errs: &mut Vec<FieldError>, new: &Value, old: &Value) {
    let empty = json!({});
    let nm = get(new, "metadata").unwrap_or(&empty);
    let om = get(old, "metadata").unwrap_or(&empty);
    if let (Some(n), Some(o)) = (int(nm, "generation"), int(om, "generation"))
        && n < o
    {
        errs.push(FieldError::invalid("metadata.generation", json!(n), "must not be decremented"));
    }
    immutable(errs, nm, om, "name", "metadata.name");
    immutable(errs, nm, om, "namespace", "metadata.namespace");
    // An update without a uid keeps the stored one (rest.BeforeUpdate), so only a different uid is an error.
    if !st(nm, "uid").is_empty() {
        immutable(errs, nm, om, "uid", "metadata.uid");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Label selectors.

enum Selector {
    /// A nil selector: matches nothing (metav1.LabelSelectorAsSelector(nil) is labels.Nothing()).
    Nothing,
    /// Requirements; an empty list matches everything.
    Reqs(Vec<(String, String, Vec<String>)>),
}

impl Selector {
    fn parse(sel: Option<&Value>) -> Result<Selector, ()> {
        let Some(sel) = sel else { return Ok(Selector::Nothing) };
        let mut reqs = Vec::new();
        for (k, v) in obj(sel, "matchLabels").into_iter().flatten() {
            reqs.push((k.clone(), "In".to_string(), vec![v.as_str().unwrap_or("").to_string()]));
        }
        for e in arr(sel, "matchExpressions") {
            let op = st(e, "operator");
            let values: Vec<String> = arr(e, "values").iter().filter_map(|v| v.as_str().map(String::from)).collect();
            let ok = match op {
                "In" | "NotIn" => !values.is_empty(),
                "Exists" | "DoesNotExist" => values.is_empty(),
                _ => false,
            };
            if !ok {
                return Err(());
            }
            reqs.push((st(e, "key").to_string(), op.to_string(), values));
        }
        Ok(Selector::Reqs(reqs))
    }
    fn is_empty(&self) -> bool {
        matches!(self, Selector::Reqs(r) if r.is_empty())
    }
    fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let Selector::Reqs(reqs) = self else { return false };
        reqs.iter().all(|(k, op, vals)| {
            let have = labels.and_then(|l| l.get(k)).and_then(Value::as_str);
            match op.as_str() {
                "In" => have.is_some_and(|h| vals.iter().any(|v| v == h)),
                "NotIn" => have.is_none_or(|h| !vals.iter().any(|v| v == h)),
                "Exists" => have.is_some(),
                _ => have.is_none(),
            }
        })
    }
}

fn validate_label_selector(errs: &mut Vec<FieldError>, sel: &Value, field: &str) {
    validate_labels(errs, obj(sel, "matchLabels"), &child(field, "matchLabels"));
    for (i, e) in arr(sel, "matchExpressions").iter().enumerate() {
        let p = idx(&child(field, "matchExpressions"), i);
        let values = arr(e, "values");
        match st(e, "operator") {
            "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
                child(&p, "values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
                child(&p, "values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            op => errs.push(FieldError::invalid(child(&p, "operator"), json!(op), "not a valid selector operator")),
        }
        let k = st(e, "key");
        push_msgs(errs, &child(&p, "key"), json!(k), qualified_name(k));
        for (j, v) in values.iter().enumerate() {
            let v = v.as_str().unwrap_or("");
            push_msgs(errs, &idx(&child(&p, "values"), j), json!(v), label_value(v));
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Pods.

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

fn validate_container_ports(errs: &mut Vec<FieldError>, ports: &[Value], field: &str) {
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let ip = idx(field, i);
        let name = st(p, "name");
        if !name.is_empty() {
            let msgs = port_name(name);
            if !msgs.is_empty() {
                push_msgs(errs, &child(&ip, "name"), json!(name), msgs);
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(child(&ip, "name"), json!(name)));
            }
        }
        match int(p, "containerPort").unwrap_or(0) {
            0 => errs.push(FieldError::required(child(&ip, "containerPort"), "")),
            n => push_msgs(errs, &child(&ip, "containerPort"), json!(n), port_num(n)),
        }
        if let Some(h) = int(p, "hostPort").filter(|h| *h != 0) {
            push_msgs(errs, &child(&ip, "hostPort"), json!(h), port_num(h));
        }
        match st(p, "protocol") {
            "" => errs.push(FieldError::required(child(&ip, "protocol"), "")),
            pr if !PROTOCOLS.contains(&pr) => {
                errs.push(FieldError::not_supported(child(&ip, "protocol"), json!(pr), PROTOCOLS))
            }
            _ => {}
        }
    }
}

fn validate_container(errs: &mut Vec<FieldError>, c: &Value, p: &str) {
    let name = st(c, "name");
    if name.is_empty() {
        errs.push(FieldError::required(child(p, "name"), ""));
    } else {
        push_msgs(errs, &child(p, "name"), json!(name), dns1123_label(name));
    }
    if st(c, "image").is_empty() {
        errs.push(FieldError::required(child(p, "image"), ""));
    }
    match st(c, "terminationMessagePolicy") {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(FieldError::required(child(p, "terminationMessagePolicy"), "")),
        v => errs.push(FieldError::not_supported(
            child(p, "terminationMessagePolicy"),
            json!(v),
            &["File", "FallbackToLogsOnError"],
        )),
    }
    validate_container_ports(errs, arr(c, "ports"), &child(p, "ports"));
    for (i, e) in arr(c, "env").iter().enumerate() {
        let n = st(e, "name");
        let f = child(&idx(&child(p, "env"), i), "name");
        if n.is_empty() {
            errs.push(FieldError::required(f, ""));
        } else if !n.bytes().all(|b| (32..=126).contains(&b) && b != b'=') {
            errs.push(FieldError::invalid(
                f,
                json!(n),
                "a valid environment variable name must consist only of printable ASCII characters other than '='",
            ));
        }
    }
    match st(c, "imagePullPolicy") {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => errs.push(FieldError::required(child(p, "imagePullPolicy"), "")),
        v => errs.push(FieldError::not_supported(
            child(p, "imagePullPolicy"),
            json!(v),
            &["Always", "IfNotPresent", "Never"],
        )),
    }
}

fn validate_pod_spec(errs: &mut Vec<FieldError>, spec: &Value, p: &str) {
    let mut vol_names = BTreeSet::new();
    for (i, v) in arr(spec, "volumes").iter().enumerate() {
        let f = child(&idx(&child(p, "volumes"), i), "name");
        let n = st(v, "name");
        if n.is_empty() {
            errs.push(FieldError::required(f, ""));
        } else {
            push_msgs(errs, &f, json!(n), dns1123_label(n));
            if !vol_names.insert(n) {
                errs.push(FieldError::duplicate(f, json!(n)));
            }
        }
    }
    let containers = arr(spec, "containers");
    let mut names = BTreeSet::new();
    for (i, c) in arr(spec, "initContainers").iter().enumerate() {
        let cp = idx(&child(p, "initContainers"), i);
        validate_container(errs, c, &cp);
        let n = st(c, "name");
        if !n.is_empty() && !names.insert(n) {
            errs.push(FieldError::duplicate(child(&cp, "name"), json!(n)));
        }
    }
    if containers.is_empty() {
        errs.push(FieldError::required(child(p, "containers"), ""));
    }
    for (i, c) in containers.iter().enumerate() {
        let cp = idx(&child(p, "containers"), i);
        validate_container(errs, c, &cp);
        let n = st(c, "name");
        if !n.is_empty() && !names.insert(n) {
            errs.push(FieldError::duplicate(child(&cp, "name"), json!(n)));
        }
    }
    match st(spec, "restartPolicy") {
        "Always" | "OnFailure" | "Never" => {}
        "" => errs.push(FieldError::required(child(p, "restartPolicy"), "")),
        v => {
            errs.push(FieldError::not_supported(child(p, "restartPolicy"), json!(v), &["Always", "OnFailure", "Never"]))
        }
    }
    match st(spec, "dnsPolicy") {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => errs.push(FieldError::required(child(p, "dnsPolicy"), "")),
        v => errs.push(FieldError::not_supported(
            child(p, "dnsPolicy"),
            json!(v),
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )),
    }
    validate_labels(errs, obj(spec, "nodeSelector"), &child(p, "nodeSelector"));
    let sa = st(spec, "serviceAccountName");
    if !sa.is_empty() {
        push_msgs(errs, &child(p, "serviceAccountName"), json!(sa), dns1123_subdomain(sa));
    }
    for k in ["hostname", "subdomain"] {
        let v = st(spec, k);
        if !v.is_empty() {
            push_msgs(errs, &child(p, k), json!(v), dns1123_label(v));
        }
    }
    if let Some(n) = int(spec, "activeDeadlineSeconds")
        && n <= 0
    {
        errs.push(FieldError::invalid(
            child(p, "activeDeadlineSeconds"),
            json!(n),
            "must be between 1 and 2147483647, inclusive",
        ));
    }
}

/// ValidatePodTemplateSpec: labels and annotations are reported at `<template>.labels` (sic, upstream).
fn validate_template(errs: &mut Vec<FieldError>, t: &Value, p: &str) {
    let empty = json!({});
    let meta = get(t, "metadata").unwrap_or(&empty);
    validate_labels(errs, obj(meta, "labels"), &child(p, "labels"));
    validate_annotations(errs, obj(meta, "annotations"), &child(p, "annotations"));
    validate_pod_spec(errs, get(t, "spec").unwrap_or(&empty), &child(p, "spec"));
    if !arr(get(t, "spec").unwrap_or(&empty), "ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden(
            child(p, "spec.ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
}

fn template_labels(t: Option<&Value>) -> Option<&Map<String, Value>> {
    t.and_then(obj_labels)
}
fn template_labels_value(t: Option<&Value>) -> Value {
    template_labels(t).map(|m| Value::Object(m.clone())).unwrap_or(Value::Null)
}

/// Restart policy Always and no activeDeadlineSeconds: the rule for pods run by a long-lived controller.
fn validate_always_restart(errs: &mut Vec<FieldError>, t: &Value, p: &str, kind_word: &str) {
    let empty = json!({});
    let spec = get(t, "spec").unwrap_or(&empty);
    let rp = st(spec, "restartPolicy");
    if rp != "Always" {
        errs.push(FieldError::not_supported(child(p, "spec.restartPolicy"), json!(rp), &["Always"]));
    }
    if get(spec, "activeDeadlineSeconds").is_some() {
        errs.push(FieldError::forbidden(
            child(p, "spec.activeDeadlineSeconds"),
            format!("activeDeadlineSeconds in {kind_word} is not Supported"),
        ));
    }
}

fn validate_pod_update(errs: &mut Vec<FieldError>, new: &Value, old: &Value) {
    let empty = json!({});
    let ns = get(new, "spec").unwrap_or(&empty);
    let os = get(old, "spec").unwrap_or(&empty);
    // Apply the mutable fields of the new spec onto the old one; anything else that differs is forbidden.
    let mut munged = os.clone();
    for list in ["containers", "initContainers"] {
        let (nl, ol) = (arr(ns, list), arr(os, list));
        if nl.len() == ol.len()
            && let Some(ml) = munged.get_mut(list).and_then(Value::as_array_mut)
        {
            for (m, n) in ml.iter_mut().zip(nl) {
                if let Some(mo) = m.as_object_mut() {
                    mo.insert("image".into(), field_or_null(n, "image"));
                }
            }
        }
    }
    if let Some(m) = munged.as_object_mut() {
        for k in ["activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds", "schedulingGates"] {
            match get(ns, k) {
                Some(v) => m.insert(k.into(), v.clone()),
                None => m.remove(k),
            };
        }
    }
    let strip_null = |v: &Value| -> Value {
        match v {
            Value::Object(m) => {
                Value::Object(m.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect())
            }
            o => o.clone(),
        }
    };
    let (munged, ns_clean) = (strip_null(&munged), strip_null(ns));
    if munged != ns_clean {
        let changed: Vec<&str> = munged
            .as_object()
            .into_iter()
            .flat_map(|m| m.keys())
            .chain(ns_clean.as_object().into_iter().flat_map(|m| m.keys()))
            .filter(|k| munged.get(k.as_str()) != ns_clean.get(k.as_str()))
            .map(String::as_str)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        errs.push(FieldError::forbidden(
            "spec",
            format!(
                "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n  core.PodSpec{{\n{}  }}\n",
                changed.iter().map(|k| format!("  \t{k}: changed\n")).collect::<String>()
            ),
        ));
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Services.

fn validate_service(errs: &mut Vec<FieldError>, o: &Value) {
    validate_meta(errs, o, true, dns1035_label);
    let empty = json!({});
    let spec = get(o, "spec").unwrap_or(&empty);
    let t = st(spec, "type");
    let headless = is_headless(spec);
    let ports = arr(spec, "ports");
    if ports.is_empty() && !headless && t != "ExternalName" {
        errs.push(FieldError::required("spec.ports", ""));
    }
    let cips: Vec<String> = if arr(spec, "clusterIPs").is_empty() {
        Some(st(spec, "clusterIP")).filter(|s| !s.is_empty()).map(String::from).into_iter().collect()
    } else {
        arr(spec, "clusterIPs").iter().map(|v| v.as_str().unwrap_or("").to_string()).collect()
    };
    match t {
        "LoadBalancer" | "NodePort" if headless => errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            json!(cips.first().cloned().unwrap_or_default()),
            format!("may not be set to 'None' for {t} services"),
        )),
        "ExternalName" => {
            if !cips.is_empty() {
                errs.push(FieldError::forbidden("spec.clusterIPs", "may not be set for ExternalName services"));
            }
            if !arr(spec, "ipFamilies").is_empty() {
                errs.push(FieldError::forbidden("spec.ipFamilies", "may not be set for ExternalName services"));
            }
            if get(spec, "ipFamilyPolicy").is_some() {
                errs.push(FieldError::forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"));
            }
            let cname = st(spec, "externalName").trim_end_matches('.');
            if cname.is_empty() {
                errs.push(FieldError::required("spec.externalName", ""));
            } else {
                push_msgs(errs, "spec.externalName", json!(cname), dns1123_subdomain(cname));
            }
        }
        _ => {}
    }
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = idx("spec.ports", i);
        let name = st(p, "name");
        if ports.len() > 1 && name.is_empty() {
            errs.push(FieldError::required(child(&pp, "name"), ""));
        } else if !name.is_empty() {
            push_msgs(errs, &child(&pp, "name"), json!(name), dns1123_label(name));
            if !names.insert(name) {
                errs.push(FieldError::duplicate(child(&pp, "name"), json!(name)));
            }
        }
        let port = int(p, "port").unwrap_or(0);
        push_msgs(errs, &child(&pp, "port"), json!(port), port_num(port));
        match st(p, "protocol") {
            "" => errs.push(FieldError::required(child(&pp, "protocol"), "")),
            pr if !PROTOCOLS.contains(&pr) => {
                errs.push(FieldError::not_supported(child(&pp, "protocol"), json!(pr), PROTOCOLS))
            }
            _ => {}
        }
        match get(p, "targetPort") {
            Some(Value::String(s)) => push_msgs(errs, &child(&pp, "targetPort"), json!(s), port_name(s)),
            Some(v) => {
                let n = v.as_i64().unwrap_or(0);
                push_msgs(errs, &child(&pp, "targetPort"), json!(n), port_num(n));
            }
            None => push_msgs(errs, &child(&pp, "targetPort"), json!(0), port_num(0)),
        }
    }
    validate_labels(errs, obj(spec, "selector"), "spec.selector");
    match st(spec, "sessionAffinity") {
        "" => errs.push(FieldError::required("spec.sessionAffinity", "")),
        "ClientIP" | "None" => {}
        v => errs.push(FieldError::not_supported("spec.sessionAffinity", json!(v), &["ClientIP", "None"])),
    }
    if st(spec, "sessionAffinity") == "None" && get(spec, "sessionAffinityConfig").is_some() {
        errs.push(FieldError::forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None"));
    }
    if t != "ExternalName" {
        for (i, ip) in cips.iter().enumerate() {
            if (i == 0 && ip == "None") || ip.is_empty() {
                continue;
            }
            if ip.parse::<IpAddr>().is_err() {
                errs.push(FieldError::invalid(idx("spec.clusterIPs", i), json!(ip), IP_MSG));
            }
        }
        if let Some(pol) = get(spec, "ipFamilyPolicy").and_then(Value::as_str) {
            const POLICIES: &[&str] = &["PreferDualStack", "RequireDualStack", "SingleStack"];
            if !POLICIES.contains(&pol) {
                errs.push(FieldError::not_supported("spec.ipFamilyPolicy", json!(pol), POLICIES));
            }
        }
    }
    for (i, ip) in arr(spec, "externalIPs").iter().enumerate() {
        let s = ip.as_str().unwrap_or("");
        if s.parse::<IpAddr>().is_err() {
            errs.push(FieldError::invalid(idx("spec.externalIPs", i), json!(s), IP_MSG));
        }
    }
    const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
    if t.is_empty() {
        errs.push(FieldError::required("spec.type", ""));
    } else if !TYPES.contains(&t) {
        errs.push(FieldError::not_supported("spec.type", json!(t), TYPES));
    }
    if t == "ClusterIP" {
        for (i, p) in ports.iter().enumerate() {
            if int(p, "nodePort").unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    child(&idx("spec.ports", i), "nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let np = int(p, "nodePort").unwrap_or(0);
        if np != 0 && !node_ports.insert((st(p, "protocol"), np)) {
            errs.push(FieldError::duplicate(child(&idx("spec.ports", i), "nodePort"), json!(np)));
        }
    }
    let mut seen = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let (pr, port) = (st(p, "protocol"), int(p, "port").unwrap_or(0));
        if !seen.insert((pr, port)) {
            // Upstream prints the internal ServicePort key struct (json.Marshal of core.ServicePort).
            let v =
                json!({"Name": "", "Protocol": pr, "AppProtocol": null, "Port": port, "TargetPort": 0, "NodePort": 0});
            errs.push(FieldError::duplicate(idx("spec.ports", i), v));
        }
    }
    if get(spec, "allocateLoadBalancerNodePorts").is_some() && t != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            "spec.allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if t == "LoadBalancer" && get(spec, "allocateLoadBalancerNodePorts").is_none() {
        // Upstream reports this path without the `spec.` prefix.
        errs.push(FieldError::required("allocateLoadBalancerNodePorts", ""));
    }
    let etp = st(spec, "externalTrafficPolicy");
    if !externally_accessible(spec) {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(
                "spec.externalTrafficPolicy",
                json!(etp),
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(FieldError::required("spec.externalTrafficPolicy", ""));
    } else if !["Cluster", "Local"].contains(&etp) {
        errs.push(FieldError::not_supported("spec.externalTrafficPolicy", json!(etp), &["Cluster", "Local"]));
    }
    match get(spec, "internalTrafficPolicy").and_then(Value::as_str) {
        None if matches!(t, "NodePort" | "LoadBalancer" | "ClusterIP") => {
            errs.push(FieldError::required("spec.internalTrafficPolicy", ""))
        }
        Some(v) if !["Cluster", "Local"].contains(&v) => {
            errs.push(FieldError::not_supported("spec.internalTrafficPolicy", json!(v), &["Cluster", "Local"]))
        }
        _ => {}
    }
}

fn service_cluster_ips(spec: &Value) -> Vec<Value> {
    let l = arr(spec, "clusterIPs");
    if !l.is_empty() {
        return l.to_vec();
    }
    Some(st(spec, "clusterIP")).filter(|s| !s.is_empty()).map(|s| vec![json!(s)]).unwrap_or_default()
}

fn validate_service_update(errs: &mut Vec<FieldError>, new: &Value, old: &Value) {
    let empty = json!({});
    let (ns, os) = (get(new, "spec").unwrap_or(&empty), get(old, "spec").unwrap_or(&empty));
    if st(ns, "type") == "ExternalName" || st(os, "type") == "ExternalName" || (is_headless(ns) && is_headless(os)) {
        return;
    }
    let (n, o) = (service_cluster_ips(ns), service_cluster_ips(os));
    // An update that leaves the IPs out keeps the allocated ones (the registry copies them before validating).
    if n.is_empty() || o.is_empty() {
        return;
    }
    let changed =
        if n.len() == o.len() { n.iter().zip(&o).filter(|(a, b)| a != b).count() } else { usize::from(n[0] != o[0]) };
    for _ in 0..changed {
        errs.push(FieldError::invalid("spec.clusterIPs[0]", Value::Array(n.clone()), "may not change once set"));
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Workloads.

/// Selector checks common to Deployment, ReplicaSet and StatefulSet, then the template.
fn validate_selector_and_template(errs: &mut Vec<FieldError>, spec: &Value, what: &str, kind_word: &str) {
    let sel = get(spec, "selector");
    match sel {
        None => errs.push(FieldError::required("spec.selector", "")),
        Some(s) => {
            validate_label_selector(errs, s, "spec.selector");
            if !has_items(s, "matchLabels") && !has_items(s, "matchExpressions") {
                errs.push(FieldError::invalid(
                    "spec.selector",
                    s.clone(),
                    format!("empty selector is invalid for {what}"),
                ));
            }
        }
    }
    let t = get(spec, "template");
    match Selector::parse(sel) {
        Err(()) => errs.push(FieldError::invalid(
            "spec.selector",
            sel.cloned().unwrap_or(Value::Null),
            "invalid label selector",
        )),
        Ok(parsed) => {
            if !parsed.is_empty() && !parsed.matches(template_labels(t)) {
                errs.push(FieldError::invalid(
                    "spec.template.metadata.labels",
                    template_labels_value(t),
                    "`selector` does not match template `labels`",
                ));
            }
            let empty = json!({});
            validate_template(errs, t.unwrap_or(&empty), "spec.template");
            validate_always_restart(errs, t.unwrap_or(&empty), "spec.template", kind_word);
        }
    }
}

fn validate_int_or_percent(errs: &mut Vec<FieldError>, v: Option<&Value>, field: &str) -> Option<(bool, i64)> {
    match v? {
        Value::String(s) => {
            let digits = s.strip_suffix('%').filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
            match digits {
                None => {
                    errs.push(FieldError::invalid(field, json!(s), PERCENT_MSG));
                    None
                }
                Some(d) => Some((true, d.parse().unwrap_or(i64::MAX))),
            }
        }
        Value::Number(n) => {
            let n = n.as_i64().unwrap_or(0);
            if n < 0 {
                errs.push(FieldError::invalid(field, json!(n), NEGATIVE));
            }
            Some((false, n))
        }
        _ => None,
    }
}

fn validate_deployment_strategy(errs: &mut Vec<FieldError>, spec: &Value) {
    let empty = json!({});
    let s = get(spec, "strategy").unwrap_or(&empty);
    match st(s, "type") {
        "Recreate" => {
            if get(s, "rollingUpdate").is_some() {
                errs.push(FieldError::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match get(s, "rollingUpdate") {
            None => errs
                .push(FieldError::required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil")),
            Some(ru) => {
                let mu_f = "spec.strategy.rollingUpdate.maxUnavailable";
                let mu = validate_int_or_percent(errs, get(ru, "maxUnavailable"), mu_f);
                let ms = validate_int_or_percent(errs, get(ru, "maxSurge"), "spec.strategy.rollingUpdate.maxSurge");
                if let Some((true, p)) = mu
                    && p > 100
                {
                    errs.push(FieldError::invalid(
                        mu_f,
                        field_or_null(ru, "maxUnavailable"),
                        "must not be greater than 100%",
                    ));
                }
                if matches!(mu, Some((_, 0))) && matches!(ms, Some((_, 0))) {
                    errs.push(FieldError::invalid(
                        mu_f,
                        field_or_null(ru, "maxUnavailable"),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
            }
        },
        _ => errs.push(FieldError::not_supported("spec.strategy", s.clone(), &["Recreate", "RollingUpdate"])),
    }
}

fn validate_deployment(errs: &mut Vec<FieldError>, o: &Value) {
    validate_meta(errs, o, true, dns1123_subdomain);
    let empty = json!({});
    let spec = get(o, "spec").unwrap_or(&empty);
    nonneg(errs, spec, "replicas", "spec.replicas");
    validate_selector_and_template(errs, spec, "deployment", "ReplicaSet");
    validate_deployment_strategy(errs, spec);
    nonneg(errs, spec, "minReadySeconds", "spec.minReadySeconds");
    nonneg(errs, spec, "revisionHistoryLimit", "spec.revisionHistoryLimit");
    if let Some(pd) = int(spec, "progressDeadlineSeconds") {
        if pd < 0 {
            errs.push(FieldError::invalid("spec.progressDeadlineSeconds", json!(pd), NEGATIVE));
        }
        if pd <= int(spec, "minReadySeconds").unwrap_or(0) {
            errs.push(FieldError::invalid(
                "spec.progressDeadlineSeconds",
                json!(pd),
                "must be greater than minReadySeconds",
            ));
        }
    }
}

fn validate_replicaset(errs: &mut Vec<FieldError>, o: &Value) {
    validate_meta(errs, o, true, dns1123_subdomain);
    let empty = json!({});
    let spec = get(o, "spec").unwrap_or(&empty);
    nonneg(errs, spec, "replicas", "spec.replicas");
    nonneg(errs, spec, "minReadySeconds", "spec.minReadySeconds");
    // Upstream's ReplicaSet message really says "deployment".
    validate_selector_and_template(errs, spec, "deployment", "ReplicaSet");
}

fn validate_rc(errs: &mut Vec<FieldError>, o: &Value) {
    validate_meta(errs, o, true, dns1123_subdomain);
    let empty = json!({});
    let spec = get(o, "spec").unwrap_or(&empty);
    nonneg(errs, spec, "minReadySeconds", "spec.minReadySeconds");
    let sel = obj(spec, "selector").filter(|m| !m.is_empty());
    if sel.is_none() {
        errs.push(FieldError::required("spec.selector", ""));
    }
    nonneg(errs, spec, "replicas", "spec.replicas");
    match get(spec, "template") {
        None => errs.push(FieldError::required("spec.template", "")),
        Some(t) => {
            if let Some(sel) = sel {
                let labels = template_labels(Some(t));
                let ok = sel.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
                if !ok {
                    errs.push(FieldError::invalid(
                        "spec.template.metadata.labels",
                        template_labels_value(Some(t)),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
            validate_template(errs, t, "spec.template");
            validate_always_restart(errs, t, "spec.template", "ReplicationController");
        }
    }
}

fn validate_statefulset(errs: &mut Vec<FieldError>, o: &Value) {
    validate_meta(errs, o, true, dns1123_subdomain);
    let empty = json!({});
    let spec = get(o, "spec").unwrap_or(&empty);
    match st(spec, "podManagementPolicy") {
        "" => errs.push(FieldError::required("spec.podManagementPolicy", "")),
        "OrderedReady" | "Parallel" => {}
        v => {
            errs.push(FieldError::invalid("spec.podManagementPolicy", json!(v), "must be 'OrderedReady' or 'Parallel'"))
        }
    }
    let us = get(spec, "updateStrategy").unwrap_or(&empty);
    match st(us, "type") {
        "" => errs.push(FieldError::required("spec.updateStrategy", "")),
        "OnDelete" => {
            if let Some(ru) = get(us, "rollingUpdate") {
                errs.push(FieldError::invalid(
                    "spec.updateStrategy.rollingUpdate",
                    ru.clone(),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = get(us, "rollingUpdate") {
                nonneg(errs, ru, "partition", "spec.updateStrategy.rollingUpdate.partition");
            }
        }
        _ => errs.push(FieldError::invalid("spec.updateStrategy", us.clone(), "must be 'RollingUpdate' or 'OnDelete'")),
    }
    nonneg(errs, spec, "revisionHistoryLimit", "spec.revisionHistoryLimit");
    nonneg(errs, spec, "replicas", "spec.replicas");
    nonneg(errs, spec, "minReadySeconds", "spec.minReadySeconds");
    validate_selector_and_template(errs, spec, "statefulset", "StatefulSet");
}

fn validate_daemonset(errs: &mut Vec<FieldError>, o: &Value) {
    validate_meta(errs, o, true, dns1123_subdomain);
    let empty = json!({});
    let spec = get(o, "spec").unwrap_or(&empty);
    let sel = get(spec, "selector");
    if let Some(s) = sel {
        validate_label_selector(errs, s, "spec.selector");
    }
    let t = get(spec, "template");
    if let Ok(parsed) = Selector::parse(sel)
        && !parsed.matches(template_labels(t))
    {
        errs.push(FieldError::invalid(
            "spec.template.metadata.labels",
            template_labels_value(t),
            "`selector` does not match template `labels`",
        ));
    }
    if let Some(s) = sel
        && !has_items(s, "matchLabels")
        && !has_items(s, "matchExpressions")
    {
        errs.push(FieldError::invalid("spec.selector", s.clone(), "empty selector is invalid for daemonset"));
    }
    let t = t.unwrap_or(&empty);
    validate_template(errs, t, "spec.template");
    let rp = get(t, "spec").map(|s| st(s, "restartPolicy")).unwrap_or("");
    if rp != "Always" {
        errs.push(FieldError::not_supported("spec.template.spec.restartPolicy", json!(rp), &["Always"]));
    }
    if let Some(ads) = get(t, "spec").and_then(|s| get(s, "activeDeadlineSeconds")) {
        errs.push(FieldError::invalid(
            "spec.template.spec.activeDeadlineSeconds",
            ads.clone(),
            "activeDeadlineSeconds in DaemonSet is not Supported",
        ));
    }
    nonneg(errs, spec, "minReadySeconds", "spec.minReadySeconds");
    let us = get(spec, "updateStrategy").unwrap_or(&empty);
    match st(us, "type") {
        "OnDelete" | "RollingUpdate" => {}
        "" => errs.push(FieldError::required("spec.updateStrategy", "")),
        v => errs.push(FieldError::not_supported("spec.updateStrategy", json!(v), &["OnDelete", "RollingUpdate"])),
    }
    nonneg(errs, spec, "revisionHistoryLimit", "spec.revisionHistoryLimit");
}

/// validateJobSpec's field checks plus the job pod template rules, under `p` (`spec` or `spec.jobTemplate.spec`).
fn validate_job_spec(errs: &mut Vec<FieldError>, spec: &Value, p: &str) {
    for k in ["parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished"] {
        nonneg(errs, spec, k, &child(p, k));
    }
    if let Some(m) = get(spec, "completionMode").and_then(Value::as_str)
        && !["NonIndexed", "Indexed"].contains(&m)
    {
        errs.push(FieldError::not_supported(child(p, "completionMode"), json!(m), &["NonIndexed", "Indexed"]));
    }
    let empty = json!({});
    let t = get(spec, "template").unwrap_or(&empty);
    validate_template(errs, t, &child(p, "template"));
    let rp = get(t, "spec").map(|s| st(s, "restartPolicy")).unwrap_or("");
    if rp != "OnFailure" && rp != "Never" {
        errs.push(FieldError::not_supported(
            child(p, "template.spec.restartPolicy"),
            json!(rp),
            &["OnFailure", "Never"],
        ));
    }
}

fn validate_job(errs: &mut Vec<FieldError>, o: &Value) {
    validate_meta(errs, o, true, dns1123_subdomain);
    let empty = json!({});
    let spec = get(o, "spec").unwrap_or(&empty);
    validate_job_spec(errs, spec, "spec");
    let sel = get(spec, "selector");
    match sel {
        None => errs.push(FieldError::required("spec.selector", "")),
        Some(s) => validate_label_selector(errs, s, "spec.selector"),
    }
    let t = get(spec, "template");
    if let Ok(parsed) = Selector::parse(sel)
        && !parsed.matches(template_labels(t))
    {
        errs.push(FieldError::invalid(
            "spec.template.metadata.labels",
            template_labels_value(t),
            "`selector` does not match template `labels`",
        ));
    }
}

/// A light check of a standard cron schedule (5 fields or a @descriptor), in robfig/cron's words.
fn cron_error(s: &str) -> Option<String> {
    if let Some(d) = s.strip_prefix('@') {
        let ok = ["yearly", "annually", "monthly", "weekly", "daily", "midnight", "hourly"].contains(&d)
            || d.strip_prefix("every ").is_some_and(|r| !r.trim().is_empty());
        return (!ok).then(|| format!("unrecognized descriptor: {s}"));
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        return Some(format!("expected exactly 5 fields, found {}: [{}]", fields.len(), fields.join(" ")));
    }
    for f in fields {
        if !f.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'*' | b'/' | b',' | b'-' | b'?')) {
            return Some(format!("failed to parse int from {f}: strconv.Atoi: parsing \"{f}\": invalid syntax"));
        }
    }
    None
}

fn validate_cronjob(errs: &mut Vec<FieldError>, o: &Value) {
    validate_meta(errs, o, true, dns1123_subdomain);
    let name = get(o, "metadata").map(|m| st(m, "name")).unwrap_or("");
    if name.len() > 52 {
        errs.push(FieldError::invalid("metadata.name", json!(name), "must be no more than 52 characters"));
    }
    let empty = json!({});
    let spec = get(o, "spec").unwrap_or(&empty);
    let sched = st(spec, "schedule");
    if sched.is_empty() {
        errs.push(FieldError::required("spec.schedule", ""));
    } else if let Some(e) = cron_error(sched) {
        errs.push(FieldError::invalid("spec.schedule", json!(sched), e));
    }
    match st(spec, "concurrencyPolicy") {
        "Allow" | "Forbid" | "Replace" => {}
        "" => errs.push(FieldError::required("spec.concurrencyPolicy", "")),
        v => errs.push(FieldError::not_supported("spec.concurrencyPolicy", json!(v), &["Allow", "Forbid", "Replace"])),
    }
    for k in ["startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
        nonneg(errs, spec, k, &child("spec", k));
    }
    let jt = get(spec, "jobTemplate").unwrap_or(&empty);
    if let Some(l) = get(jt, "metadata").and_then(|m| obj(m, "labels")) {
        validate_labels(errs, Some(l), "spec.jobTemplate.labels");
    }
    validate_job_spec(errs, get(jt, "spec").unwrap_or(&empty), "spec.jobTemplate.spec");
}

// ---------------------------------------------------------------------------------------------------------------
// Config and discovery kinds.

fn validate_configmap(errs: &mut Vec<FieldError>, o: &Value) {
    validate_meta(errs, o, true, dns1123_subdomain);
    let mut total = 0usize;
    let binary = obj(o, "binaryData");
    for (k, v) in obj(o, "data").into_iter().flatten() {
        total += v.as_str().map_or(0, str::len);
        push_msgs(errs, &key("data", k), json!(k), config_key(k));
        if binary.is_some_and(|b| b.contains_key(k)) {
            errs.push(FieldError::invalid(key("data", k), json!(k), "duplicate of key present in binaryData"));
        }
    }
    for (k, v) in binary.into_iter().flatten() {
        total += v.as_str().map_or(0, |s| s.len() * 3 / 4);
        push_msgs(errs, &key("binaryData", k), json!(k), config_key(k));
    }
    if total > 1024 * 1024 {
        errs.push(FieldError::too_long("", 1024 * 1024));
    }
}

fn validate_secret(errs: &mut Vec<FieldError>, o: &Value) {
    validate_meta(errs, o, true, dns1123_subdomain);
    let data = obj(o, "data");
    let mut total = 0usize;
    for (k, v) in data.into_iter().flatten() {
        push_msgs(errs, &key("data", k), json!(k), config_key(k));
        total += v.as_str().map_or(0, |s| s.len() * 3 / 4);
    }
    if total > 1024 * 1024 {
        errs.push(FieldError::too_long("data", 1024 * 1024));
    }
    let has = |k: &str| data.is_some_and(|d| d.contains_key(k));
    let required: &[&str] = match st(o, "type") {
        "kubernetes.io/tls" => &["tls.crt", "tls.key"],
        "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
        "kubernetes.io/dockercfg" => &[".dockercfg"],
        "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
        _ => &[],
    };
    for k in required {
        if !has(k) {
            errs.push(FieldError::required(key("data", k), ""));
        }
    }
    if st(o, "type") == "kubernetes.io/basic-auth" && !has("username") && !has("password") {
        errs.push(FieldError::required("data[username]", ""));
        errs.push(FieldError::required("data[password]", ""));
    }
}

fn validate_immutable_data(errs: &mut Vec<FieldError>, new: &Value, old: &Value) {
    if get(old, "immutable").and_then(Value::as_bool) == Some(true) {
        let msg = "field is immutable when `immutable` is set";
        if get(new, "immutable").and_then(Value::as_bool) != Some(true) {
            errs.push(FieldError::forbidden("immutable", msg));
        }
        for k in ["data", "binaryData"] {
            if field_or_null(new, k) != field_or_null(old, k) {
                errs.push(FieldError::forbidden(k, msg));
            }
        }
    }
}

fn validate_endpoints(errs: &mut Vec<FieldError>, o: &Value) {
    validate_meta(errs, o, true, dns1123_subdomain);
    for (i, s) in arr(o, "subsets").iter().enumerate() {
        let sp = idx("subsets", i);
        for list in ["addresses", "notReadyAddresses"] {
            for (j, a) in arr(s, list).iter().enumerate() {
                let ip = st(a, "ip");
                if ip.parse::<IpAddr>().is_err() {
                    errs.push(FieldError::invalid(child(&idx(&child(&sp, list), j), "ip"), json!(ip), IP_MSG));
                }
            }
        }
        let ports = arr(s, "ports");
        let mut names = BTreeSet::new();
        for (j, p) in ports.iter().enumerate() {
            let pp = idx(&child(&sp, "ports"), j);
            let name = st(p, "name");
            if ports.len() > 1 && name.is_empty() {
                errs.push(FieldError::required(child(&pp, "name"), ""));
            } else if !name.is_empty() {
                push_msgs(errs, &child(&pp, "name"), json!(name), dns1123_label(name));
                if !names.insert(name) {
                    errs.push(FieldError::duplicate(child(&pp, "name"), json!(name)));
                }
            }
            let port = int(p, "port").unwrap_or(0);
            push_msgs(errs, &child(&pp, "port"), json!(port), port_num(port));
            match st(p, "protocol") {
                "" => errs.push(FieldError::required(child(&pp, "protocol"), "")),
                pr if !PROTOCOLS.contains(&pr) => {
                    errs.push(FieldError::not_supported(child(&pp, "protocol"), json!(pr), PROTOCOLS))
                }
                _ => {}
            }
        }
    }
}

fn validate_endpointslice(errs: &mut Vec<FieldError>, o: &Value) {
    validate_meta(errs, o, true, dns1123_subdomain);
    let at = st(o, "addressType");
    const TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];
    if at.is_empty() {
        errs.push(FieldError::required("addressType", ""));
    } else if !TYPES.contains(&at) {
        errs.push(FieldError::not_supported("addressType", json!(at), TYPES));
    }
    let eps = arr(o, "endpoints");
    if eps.len() > 1000 {
        errs.push(FieldError::too_many("endpoints", eps.len(), 1000));
    }
    for (i, e) in eps.iter().enumerate() {
        let ep = idx("endpoints", i);
        let addrs = arr(e, "addresses");
        if addrs.is_empty() {
            errs.push(FieldError::required(child(&ep, "addresses"), "must contain at least 1 address"));
        } else if addrs.len() > 100 {
            errs.push(FieldError::too_many(child(&ep, "addresses"), addrs.len(), 100));
        }
        for (j, a) in addrs.iter().enumerate() {
            let s = a.as_str().unwrap_or("");
            let f = idx(&child(&ep, "addresses"), j);
            match (at, s.parse::<IpAddr>()) {
                ("IPv4", Ok(IpAddr::V4(_))) | ("IPv6", Ok(IpAddr::V6(_))) => {}
                ("IPv4", _) => errs.push(FieldError::invalid(f, json!(s), "must be a valid IPv4 address")),
                ("IPv6", _) => errs.push(FieldError::invalid(f, json!(s), "must be a valid IPv6 address")),
                ("FQDN", _) => push_msgs(errs, &f, json!(s), dns1123_subdomain(s)),
                _ => {}
            }
        }
    }
    let ports = arr(o, "ports");
    if ports.len() > 20000 {
        errs.push(FieldError::too_many("ports", ports.len(), 20000));
    }
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = idx("ports", i);
        let name = st(p, "name");
        if !name.is_empty() {
            push_msgs(errs, &child(&pp, "name"), json!(name), dns1123_label(name));
        }
        if !names.insert(name) {
            errs.push(FieldError::duplicate(child(&pp, "name"), json!(name)));
        }
        match st(p, "protocol") {
            "" => errs.push(FieldError::required(child(&pp, "protocol"), "")),
            pr if !PROTOCOLS.contains(&pr) => {
                errs.push(FieldError::not_supported(child(&pp, "protocol"), json!(pr), PROTOCOLS))
            }
            _ => {}
        }
        if let Some(n) = int(p, "port") {
            push_msgs(errs, &child(&pp, "port"), json!(n), port_num(n));
        }
    }
}

/// Validation of a create (old = None) or an update (old = Some), every error, in the apiserver's words.
/// The object is expected to be defaulted (see [`default`]) and to carry its namespace, as the apiserver's
/// objects do by the time they are validated. Unknown kinds (and NetworkPolicy, validated elsewhere) pass.
pub fn validate(kind: &str, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(old) = old {
        validate_meta_update(&mut errs, obj, old);
    }
    let e = &mut errs;
    match kind {
        "Namespace" => validate_meta(e, obj, false, dns1123_label),
        "Pod" => {
            validate_meta(e, obj, true, dns1123_subdomain);
            let empty = json!({});
            validate_pod_spec(e, get(obj, "spec").unwrap_or(&empty), "spec");
            if let Some(old) = old {
                validate_pod_update(e, obj, old);
            }
        }
        "Service" => {
            if let Some(old) = old {
                validate_service_update(e, obj, old);
            }
            validate_service(e, obj);
        }
        "Deployment" => validate_deployment(e, obj),
        "ReplicaSet" => validate_replicaset(e, obj),
        "ReplicationController" => validate_rc(e, obj),
        "StatefulSet" => validate_statefulset(e, obj),
        "DaemonSet" => validate_daemonset(e, obj),
        "Job" => validate_job(e, obj),
        "CronJob" => validate_cronjob(e, obj),
        "ConfigMap" => validate_configmap(e, obj),
        "Secret" => validate_secret(e, obj),
        "ServiceAccount" => validate_meta(e, obj, true, dns1123_subdomain),
        "Endpoints" => validate_endpoints(e, obj),
        "EndpointSlice" => validate_endpointslice(e, obj),
        // Their spec is validated by the engine (the CRDs' schema and CEL rules).
        "ClusterNetworkPolicy" | "AdminNetworkPolicy" | "BaselineAdminNetworkPolicy" => {
            validate_meta(e, obj, false, dns1123_subdomain)
        }
        _ => {}
    }
    if let Some(old) = old {
        validate_update_specific(e, kind, obj, old);
    }
    errs
}

fn validate_update_specific(errs: &mut Vec<FieldError>, kind: &str, new: &Value, old: &Value) {
    let empty = json!({});
    let ns = get(new, "spec").unwrap_or(&empty);
    let os = get(old, "spec").unwrap_or(&empty);
    match kind {
        "Deployment" | "ReplicaSet" | "DaemonSet" => immutable(errs, ns, os, "selector", "spec.selector"),
        "StatefulSet" => {
            let strip = |s: &Value| -> Value {
                let mut s = s.clone();
                if let Some(m) = s.as_object_mut() {
                    for k in [
                        "replicas",
                        "ordinals",
                        "template",
                        "updateStrategy",
                        "revisionHistoryLimit",
                        "persistentVolumeClaimRetentionPolicy",
                        "minReadySeconds",
                    ] {
                        m.remove(k);
                    }
                    m.retain(|_, v| !v.is_null());
                }
                s
            };
            if strip(ns) != strip(os) {
                errs.push(FieldError::forbidden(
                    "spec",
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                ));
            }
        }
        "Job" => {
            immutable(errs, ns, os, "selector", "spec.selector");
            immutable(errs, ns, os, "template", "spec.template");
            immutable(errs, ns, os, "completionMode", "spec.completionMode");
        }
        "Secret" => {
            immutable(errs, new, old, "type", "type");
            validate_immutable_data(errs, new, old);
        }
        "ConfigMap" => validate_immutable_data(errs, new, old),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Strict decoding.

/// Decodes into a typed object and re-encodes it.
type Decoder = fn(Value) -> Result<Value, String>;

fn roundtrip<T>(v: Value) -> Result<Value, String>
where
    T: k8s_openapi::serde::de::DeserializeOwned + k8s_openapi::serde::Serialize,
{
    let typed: T = serde_json::from_value(v).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

/// [`roundtrip`] for the tier policies' types (the engine's, which carry no `apiVersion`, `kind` and
/// `status`: those are kept as they came; the CRDs' status is what implementations report, free-form here).
fn roundtrip_tier<T>(v: Value) -> Result<Value, String>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let mut out = roundtrip::<T>(v.clone())?;
    if let (Some(o), Some(i)) = (out.as_object_mut(), v.as_object()) {
        for k in ["apiVersion", "kind", "status"] {
            if let Some(x) = i.get(k) {
                o.insert(k.into(), x.clone());
            }
        }
    }
    Ok(out)
}

fn is_null_or_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn collect_unknown(input: &Value, output: &Value, path: &str, out: &mut Vec<String>) {
    match (input, output) {
        (Value::Object(i), Value::Object(o)) => {
            for (k, v) in i {
                if is_null_or_empty(v) {
                    continue;
                }
                let p = child(path, k);
                match o.get(k) {
                    None => out.push(p),
                    Some(ov) => collect_unknown(v, ov, &p, out),
                }
            }
        }
        (Value::Array(i), Value::Array(o)) => {
            for (n, (iv, ov)) in i.iter().zip(o).enumerate() {
                collect_unknown(iv, ov, &idx(path, n), out);
            }
        }
        _ => {}
    }
}

/// Fields of `obj` that the kind's schema does not have (strict field validation, `fieldValidation=Strict`):
/// paths like `spec.ingres`. Decodes into the k8s-openapi type, re-encodes, and reports input keys that did not
/// survive (keys whose value is null or empty are ignored). The error is the decoder's message for input that
/// does not decode at all. Kinds without a known type report nothing.
pub fn unknown_fields(kind: &str, obj: &Value) -> Result<Vec<String>, String> {
    use k8s_openapi::api::networking::v1 as net;
    use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch, core::v1 as core, discovery::v1 as disc};
    use palisade_engine::cnp;
    let (api_version, decode): (&str, Decoder) = match kind {
        "Namespace" => ("v1", roundtrip::<core::Namespace>),
        "Pod" => ("v1", roundtrip::<core::Pod>),
        "Service" => ("v1", roundtrip::<core::Service>),
        "ReplicationController" => ("v1", roundtrip::<core::ReplicationController>),
        "ConfigMap" => ("v1", roundtrip::<core::ConfigMap>),
        "Secret" => ("v1", roundtrip::<core::Secret>),
        "ServiceAccount" => ("v1", roundtrip::<core::ServiceAccount>),
        "Endpoints" => ("v1", roundtrip::<core::Endpoints>),
        "Deployment" => ("apps/v1", roundtrip::<apps::Deployment>),
        "ReplicaSet" => ("apps/v1", roundtrip::<apps::ReplicaSet>),
        "StatefulSet" => ("apps/v1", roundtrip::<apps::StatefulSet>),
        "DaemonSet" => ("apps/v1", roundtrip::<apps::DaemonSet>),
        "Job" => ("batch/v1", roundtrip::<batch::Job>),
        "CronJob" => ("batch/v1", roundtrip::<batch::CronJob>),
        "EndpointSlice" => ("discovery.k8s.io/v1", roundtrip::<disc::EndpointSlice>),
        "NetworkPolicy" => ("networking.k8s.io/v1", roundtrip::<net::NetworkPolicy>),
        "ClusterNetworkPolicy" => ("policy.networking.k8s.io/v1alpha2", roundtrip_tier::<cnp::ClusterNetworkPolicy>),
        "AdminNetworkPolicy" => ("policy.networking.k8s.io/v1alpha1", roundtrip_tier::<cnp::AdminNetworkPolicy>),
        "BaselineAdminNetworkPolicy" => {
            ("policy.networking.k8s.io/v1alpha1", roundtrip_tier::<cnp::BaselineAdminNetworkPolicy>)
        }
        _ => return Ok(Vec::new()),
    };
    let Value::Object(mut m) = obj.clone() else {
        return Err(format!("json: cannot unmarshal {} into Go value of type struct", json_type_name(obj)));
    };
    // apiVersion/kind are checked by the dispatcher, not here: pin them so the typed decoder accepts the object.
    m.insert("apiVersion".into(), json!(api_version));
    m.insert("kind".into(), json!(kind));
    let out = decode(Value::Object(m.clone()))?;
    let mut unknown = Vec::new();
    collect_unknown(&Value::Object(m), &out, "", &mut unknown);
    Ok(unknown)
}

fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The printed form of a list of errors, one `field: message` per line (for logs and tests).
pub fn describe(errs: &[FieldError]) -> String {
    errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.cause_type())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(labels: Value, sel: Value) -> Value {
        json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"default"},
               "spec":{"selector":sel,"template":{"metadata":{"labels":labels},
               "spec":{"containers":[{"name":"nginx","image":"nginx"}]}}}})
    }

    fn pod(containers: Value) -> Value {
        json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"default"},
               "spec":{"containers":containers}})
    }

    /// Defaults, then validates, and returns the printed errors.
    fn printed(kind: &str, obj: &Value, old: Option<&Value>) -> Vec<String> {
        let mut o = obj.clone();
        default(kind, &mut o);
        let old = old.map(|v| {
            let mut v = v.clone();
            default(kind, &mut v);
            v
        });
        validate(kind, &o, old.as_ref()).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn validation_table() {
        let label_msg = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
        let cases: Vec<(&str, Value, Vec<String>)> = vec![
            ("Namespace", json!({"metadata":{"name":"dev"}}), vec![]),
            (
                "Namespace",
                json!({"metadata":{"name":"Foo_Bar"}}),
                vec![format!("metadata.name: Invalid value: \"Foo_Bar\": {label_msg}")],
            ),
            ("Namespace", json!({"metadata":{"name":"a.b"}}), vec!["metadata.name: Invalid value: \"a.b\": must not contain dots".into()]),
            (
                "Pod",
                json!({"metadata":{"name":"Foo_Bar","namespace":"default"},"spec":{"containers":[{"name":"c","image":"i"}]}}),
                vec!["metadata.name: Invalid value: \"Foo_Bar\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".into()],
            ),
            ("Pod", json!({"metadata":{"namespace":"default"},"spec":{"containers":[{"name":"c","image":"i"}]}}),
                vec!["metadata.name: Required value: name or generateName is required".into()]),
            ("Pod", pod(json!([])), vec!["spec.containers: Required value".into()]),
            ("Pod", pod(json!([{"name":"c"}])), vec!["spec.containers[0].image: Required value".into()]),
            (
                "Pod",
                pod(json!([{"name":"C_1","image":"x"},{"name":"d","image":"y"},{"name":"d","image":"z"}])),
                vec![
                    format!("spec.containers[0].name: Invalid value: \"C_1\": {label_msg}"),
                    "spec.containers[2].name: Duplicate value: \"d\"".into(),
                ],
            ),
            (
                "Pod",
                pod(json!([{"name":"c","image":"x","ports":[{"containerPort":70000,"protocol":"TCPX","name":"http"},{"containerPort":80,"name":"http"}]}])),
                vec![
                    "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive".into(),
                    "spec.containers[0].ports[0].protocol: Unsupported value: \"TCPX\": supported values: \"SCTP\", \"TCP\", \"UDP\"".into(),
                    "spec.containers[0].ports[1].name: Duplicate value: \"http\"".into(),
                ],
            ),
            (
                "Pod",
                pod(json!([{"name":"c","image":"x","ports":[{"containerPort":80,"name":"123"},{"name":"Web--x-"}]}])),
                vec![
                    "spec.containers[0].ports[0].name: Invalid value: \"123\": must contain at least one letter (a-z)".into(),
                    "spec.containers[0].ports[1].name: Invalid value: \"Web--x-\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into(),
                    "spec.containers[0].ports[1].name: Invalid value: \"Web--x-\": must not contain consecutive hyphens".into(),
                    "spec.containers[0].ports[1].name: Invalid value: \"Web--x-\": must not begin or end with a hyphen".into(),
                    "spec.containers[0].ports[1].containerPort: Required value".into(),
                ],
            ),
            (
                "Pod",
                json!({"metadata":{"name":"p","namespace":"default","labels":{"app":"-bad"}},"spec":{"restartPolicy":"Sometimes","containers":[{"name":"c","image":"x"}]}}),
                vec![
                    "metadata.labels: Invalid value: \"-bad\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".into(),
                    "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"".into(),
                ],
            ),
            (
                "Pod",
                json!({"metadata":{"name":"p","namespace":"default","labels":{"a/b/c":"x"}},"spec":{"containers":[{"name":"c","image":"x"}]}}),
                vec!["metadata.labels: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".into()],
            ),
            ("Service", json!({"metadata":{"name":"web","namespace":"d"},"spec":{"ports":[{"port":80}],"selector":{"app":"web"}}}), vec![]),
            ("Service", json!({"metadata":{"name":"web","namespace":"d"},"spec":{"clusterIP":"None"}}), vec![]),
            ("Service", json!({"metadata":{"name":"web","namespace":"d"},"spec":{}}), vec!["spec.ports: Required value".into()]),
            (
                "Service",
                json!({"metadata":{"name":"1web","namespace":"d"},"spec":{"type":"Cluster","clusterIP":"10.0.0.300","ports":[{"port":80,"targetPort":0},{"port":0,"protocol":"ICMP","name":"b","targetPort":"Http"}]}}),
                vec![
                    "metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".into(),
                    "spec.ports[0].name: Required value".into(),
                    "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive".into(),
                    "spec.ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"".into(),
                    "spec.ports[1].targetPort: Invalid value: \"Http\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into(),
                    "spec.clusterIPs[0]: Invalid value: \"10.0.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".into(),
                    "spec.type: Unsupported value: \"Cluster\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"".into(),
                ],
            ),
            (
                "Service",
                json!({"metadata":{"name":"web","namespace":"d"},"spec":{"ports":[{"port":80,"name":"a"},{"port":81,"name":"a"}]}}),
                vec!["spec.ports[1].name: Duplicate value: \"a\"".into()],
            ),
            ("Deployment", deploy(json!({"app":"x"}), json!({"matchLabels":{"app":"x"}})), vec![]),
            (
                "Deployment",
                deploy(json!({"app":"x"}), json!({"matchLabels":{"app":"y"}})),
                vec!["spec.template.metadata.labels: Invalid value: {\"app\":\"x\"}: `selector` does not match template `labels`".into()],
            ),
            (
                "Deployment",
                deploy(json!({"app":"x"}), Value::Null),
                vec![
                    "spec.selector: Required value".into(),
                    "spec.template.metadata.labels: Invalid value: {\"app\":\"x\"}: `selector` does not match template `labels`".into(),
                ],
            ),
            (
                "Deployment",
                deploy(json!({"app":"x"}), json!({})),
                vec!["spec.selector: Invalid value: {}: empty selector is invalid for deployment".into()],
            ),
            (
                "Deployment",
                {
                    let mut d = deploy(json!({"app":"x"}), json!({"matchLabels":{"app":"x"}}));
                    d["spec"]["replicas"] = json!(-1);
                    d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
                    d["spec"]["strategy"] = json!({"rollingUpdate":{"maxSurge":0,"maxUnavailable":"0%"}});
                    d
                },
                vec![
                    "spec.replicas: Invalid value: -1: must be greater than or equal to 0".into(),
                    "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"".into(),
                    "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"0%\": may not be 0 when `maxSurge` is 0".into(),
                ],
            ),
            (
                "ReplicaSet",
                json!({"metadata":{"name":"r","namespace":"d"},"spec":{"selector":{"matchExpressions":[{"key":"app","operator":"In","values":["x"]}]},"template":{"metadata":{"labels":{"app":"x"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}),
                vec![],
            ),
            (
                "StatefulSet",
                json!({"metadata":{"name":"s","namespace":"d"},"spec":{"serviceName":"s","selector":{"matchLabels":{"app":"s"}},"template":{"metadata":{"labels":{"app":"t"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}),
                vec!["spec.template.metadata.labels: Invalid value: {\"app\":\"t\"}: `selector` does not match template `labels`".into()],
            ),
            (
                "DaemonSet",
                json!({"metadata":{"name":"ds","namespace":"d"},"spec":{"selector":{"matchLabels":{"app":"x"}},"template":{"metadata":{"labels":{"app":"x"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}),
                vec![],
            ),
            (
                "ReplicationController",
                json!({"metadata":{"name":"rc","namespace":"d"},"spec":{"selector":{"app":"y"},"template":{"metadata":{"labels":{"app":"x"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}),
                vec!["spec.template.metadata.labels: Invalid value: {\"app\":\"x\"}: `selector` does not match template `labels`".into()],
            ),
            (
                "Job",
                json!({"metadata":{"name":"j","namespace":"d","uid":"u-1"},"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"i"}]}}}}),
                vec![],
            ),
            (
                "Job",
                json!({"metadata":{"name":"j","namespace":"d","uid":"u-1"},"spec":{"template":{"spec":{"containers":[{"name":"c","image":"i"}]}}}}),
                vec!["spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"".into()],
            ),
            (
                "CronJob",
                json!({"metadata":{"name":"cj","namespace":"d"},"spec":{"schedule":"* * *","concurrencyPolicy":"Sometimes","jobTemplate":{"spec":{"template":{"spec":{"restartPolicy":"OnFailure","containers":[{"name":"c","image":"i"}]}}}}}}),
                vec![
                    "spec.schedule: Invalid value: \"* * *\": expected exactly 5 fields, found 3: [* * *]".into(),
                    "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\"".into(),
                ],
            ),
            (
                "ConfigMap",
                json!({"metadata":{"name":"cm","namespace":"d"},"data":{"a b":"1","ok.key":"2"}}),
                vec!["data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')".into()],
            ),
            (
                "Secret",
                json!({"metadata":{"name":"s","namespace":"d"},"type":"kubernetes.io/tls","data":{"tls.crt":"YQ=="}}),
                vec!["data[tls.key]: Required value".into()],
            ),
            ("ServiceAccount", json!({"metadata":{"name":"sa"}}), vec!["metadata.namespace: Required value".into()]),
            (
                "Endpoints",
                json!({"metadata":{"name":"e","namespace":"d"},"subsets":[{"addresses":[{"ip":"1.2.3"}],"ports":[{"port":80}]}]}),
                vec!["subsets[0].addresses[0].ip: Invalid value: \"1.2.3\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".into()],
            ),
            (
                "EndpointSlice",
                json!({"metadata":{"name":"e","namespace":"d"},"addressType":"IPv4","endpoints":[{"addresses":["::1"]}],"ports":[{"port":80}]}),
                vec!["endpoints[0].addresses[0]: Invalid value: \"::1\": must be a valid IPv4 address".into()],
            ),
            (
                "Namespace",
                json!({"metadata":{"name":"n","namespace":"x"}}),
                vec!["metadata.namespace: Forbidden: not allowed on this type".into()],
            ),
        ];
        let mut failures = Vec::new();
        for (i, (kind, obj, want)) in cases.iter().enumerate() {
            let got = printed(kind, obj, None);
            if &got != want {
                failures.push(format!("case {i} ({kind}):\n got: {got:#?}\nwant: {want:#?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn update_table() {
        let d = |sel: &str| {
            let mut v = deploy(json!({"app":sel}), json!({"matchLabels":{"app":sel}}));
            v["metadata"]["uid"] = json!("u");
            v
        };
        let svc =
            |ip: &str| json!({"metadata":{"name":"s","namespace":"d"},"spec":{"clusterIP":ip,"ports":[{"port":80}]}});
        let p = |image: &str, rp: &str| json!({"metadata":{"name":"p","namespace":"d"},"spec":{"restartPolicy":rp,"containers":[{"name":"c","image":image}]}});
        let job = |image: &str| json!({"metadata":{"name":"j","namespace":"d","uid":"u"},"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":image}]}}}});
        let cases: Vec<(&str, Value, Value, Vec<&str>)> = vec![
            ("Deployment", d("x"), d("x"), vec![]),
            (
                "Deployment",
                d("y"),
                d("x"),
                vec!["spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"y\"}}: field is immutable"],
            ),
            (
                "Service",
                svc("10.0.0.2"),
                svc("10.0.0.1"),
                vec!["spec.clusterIPs[0]: Invalid value: [\"10.0.0.2\"]: may not change once set"],
            ),
            ("Service", svc(""), svc("10.0.0.1"), vec![]),
            ("Service", svc("10.0.0.1"), svc("10.0.0.1"), vec![]),
            ("Pod", p("nginx:2", "Always"), p("nginx:1", "Always"), vec![]),
            ("Job", job("a"), job("a"), vec![]),
            (
                "Namespace",
                json!({"metadata":{"name":"b"}}),
                json!({"metadata":{"name":"a"}}),
                vec!["metadata.name: Invalid value: \"b\": field is immutable"],
            ),
        ];
        for (kind, new, old, want) in cases {
            assert_eq!(printed(kind, &new, Some(&old)), want, "{kind} {new}");
        }
        // Forbidden updates whose message carries a diff: check the stable prefix only.
        let got = printed("Pod", &p("nginx", "Never"), Some(&p("nginx", "Always")));
        assert_eq!(got.len(), 1);
        assert!(
            got[0].starts_with(
                "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"
            ),
            "{got:?}"
        );
        assert!(got[0].contains("restartPolicy"), "{got:?}");
        let got = printed("Job", &job("b"), Some(&job("a")));
        assert_eq!(got.len(), 1);
        assert!(
            got[0].starts_with("spec.template: Invalid value: {") && got[0].ends_with(": field is immutable"),
            "{got:?}"
        );
    }

    #[test]
    fn defaulting_table() {
        let cases: Vec<(&str, Value, Value)> = vec![
            (
                "Namespace",
                json!({"metadata":{"name":"dev"}}),
                json!({"metadata":{"name":"dev","labels":{"kubernetes.io/metadata.name":"dev"}},"spec":{"finalizers":["kubernetes"]},"status":{"phase":"Active"}}),
            ),
            (
                "Pod",
                json!({"metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"nginx","ports":[{"containerPort":80}]},{"name":"b","image":"nginx:1.25"},{"name":"c","image":"reg:5000/x:latest"},{"name":"d","image":"reg:5000/x"},{"name":"e","image":"x@sha256:abc"}]}}),
                json!({"metadata":{"name":"p"},"spec":{
                    "containers":[
                        {"name":"a","image":"nginx","ports":[{"containerPort":80,"protocol":"TCP"}],"imagePullPolicy":"Always","terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","resources":{}},
                        {"name":"b","image":"nginx:1.25","imagePullPolicy":"IfNotPresent","terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","resources":{}},
                        {"name":"c","image":"reg:5000/x:latest","imagePullPolicy":"Always","terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","resources":{}},
                        {"name":"d","image":"reg:5000/x","imagePullPolicy":"Always","terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","resources":{}},
                        {"name":"e","image":"x@sha256:abc","imagePullPolicy":"IfNotPresent","terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","resources":{}}],
                    "restartPolicy":"Always","dnsPolicy":"ClusterFirst","terminationGracePeriodSeconds":30,"schedulerName":"default-scheduler",
                    "securityContext":{},"enableServiceLinks":true,"serviceAccountName":"default","serviceAccount":"default",
                    "priority":0,"preemptionPolicy":"PreemptLowerPriority"},"status":{"phase":"Pending"}}),
            ),
            (
                "Service",
                json!({"metadata":{"name":"s"},"spec":{"ports":[{"port":80},{"port":443,"targetPort":"https","protocol":"UDP"}],"selector":{"app":"x"}}}),
                json!({"metadata":{"name":"s"},"spec":{"ports":[{"port":80,"protocol":"TCP","targetPort":80},{"port":443,"targetPort":"https","protocol":"UDP"}],
                    "selector":{"app":"x"},"type":"ClusterIP","sessionAffinity":"None","internalTrafficPolicy":"Cluster","ipFamilyPolicy":"SingleStack","ipFamilies":["IPv4"]},
                    "status":{"loadBalancer":{}}}),
            ),
            (
                "Service",
                json!({"spec":{"type":"LoadBalancer","clusterIP":"10.0.0.5","ports":[{"port":80}]}}),
                json!({"spec":{"type":"LoadBalancer","clusterIP":"10.0.0.5","clusterIPs":["10.0.0.5"],"ports":[{"port":80,"protocol":"TCP","targetPort":80}],
                    "sessionAffinity":"None","internalTrafficPolicy":"Cluster","externalTrafficPolicy":"Cluster","allocateLoadBalancerNodePorts":true,
                    "ipFamilyPolicy":"SingleStack","ipFamilies":["IPv4"]},"status":{"loadBalancer":{}}}),
            ),
            (
                "Deployment",
                json!({"spec":{"strategy":{},"template":{"spec":{"containers":[]}}}}),
                json!({"spec":{"replicas":1,"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}},
                    "revisionHistoryLimit":10,"progressDeadlineSeconds":600,
                    "template":{"spec":{"containers":[],"restartPolicy":"Always","dnsPolicy":"ClusterFirst","terminationGracePeriodSeconds":30,
                    "schedulerName":"default-scheduler","securityContext":{},"enableServiceLinks":true}}}}),
            ),
            (
                "Deployment",
                json!({"spec":{"replicas":3,"strategy":{"type":"Recreate"}}}),
                json!({"spec":{"replicas":3,"strategy":{"type":"Recreate"},"revisionHistoryLimit":10,"progressDeadlineSeconds":600}}),
            ),
            (
                "StatefulSet",
                json!({"spec":{"serviceName":"db"}}),
                json!({"spec":{"serviceName":"db","replicas":1,"podManagementPolicy":"OrderedReady","updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":0}},
                    "revisionHistoryLimit":10,"persistentVolumeClaimRetentionPolicy":{"whenDeleted":"Retain","whenScaled":"Retain"}}}),
            ),
            (
                "DaemonSet",
                json!({"spec":{}}),
                json!({"spec":{"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":1,"maxSurge":0}},"revisionHistoryLimit":10}}),
            ),
            (
                "ReplicationController",
                json!({"spec":{"template":{"metadata":{"labels":{"a":"b"}}}}}),
                json!({"metadata":{"labels":{"a":"b"}},"spec":{"selector":{"a":"b"},"replicas":1,"template":{"metadata":{"labels":{"a":"b"}}}}}),
            ),
            (
                "Job",
                json!({"metadata":{"name":"j","uid":"u1"},"spec":{}}),
                json!({"metadata":{"name":"j","uid":"u1","labels":{"batch.kubernetes.io/controller-uid":"u1","batch.kubernetes.io/job-name":"j","controller-uid":"u1","job-name":"j"}},
                    "spec":{"completions":1,"parallelism":1,"backoffLimit":6,"completionMode":"NonIndexed","suspend":false,"podReplacementPolicy":"TerminatingOrFailed",
                    "selector":{"matchLabels":{"batch.kubernetes.io/controller-uid":"u1"}},
                    "template":{"metadata":{"labels":{"batch.kubernetes.io/controller-uid":"u1","batch.kubernetes.io/job-name":"j","controller-uid":"u1","job-name":"j"}}}}}),
            ),
            (
                "Job",
                json!({"spec":{"parallelism":3}}),
                json!({"spec":{"parallelism":3,"backoffLimit":6,"completionMode":"NonIndexed","suspend":false,"podReplacementPolicy":"TerminatingOrFailed"}}),
            ),
            (
                "CronJob",
                json!({"spec":{"schedule":"* * * * *"}}),
                json!({"spec":{"schedule":"* * * * *","concurrencyPolicy":"Allow","suspend":false,"successfulJobsHistoryLimit":3,"failedJobsHistoryLimit":1}}),
            ),
            (
                "NetworkPolicy",
                json!({"spec":{"ingress":[{"ports":[{"port":80}]}]}}),
                json!({"spec":{"ingress":[{"ports":[{"port":80,"protocol":"TCP"}]}],"policyTypes":["Ingress"]}}),
            ),
            (
                "NetworkPolicy",
                json!({"spec":{"egress":[{"ports":[{"port":53,"protocol":"UDP"}]}]}}),
                json!({"spec":{"egress":[{"ports":[{"port":53,"protocol":"UDP"}]}],"policyTypes":["Ingress","Egress"]}}),
            ),
            (
                "NetworkPolicy",
                json!({"spec":{"egress":[],"policyTypes":["Egress"]}}),
                json!({"spec":{"egress":[],"policyTypes":["Egress"]}}),
            ),
            ("Secret", json!({"data":{}}), json!({"data":{},"type":"Opaque"})),
            (
                "EndpointSlice",
                json!({"ports":[{"port":80}]}),
                json!({"ports":[{"port":80,"protocol":"TCP","name":""}]}),
            ),
            ("Unknown", json!({"x":1}), json!({"x":1})),
        ];
        for (kind, mut input, want) in cases {
            default(kind, &mut input);
            assert_eq!(input, want, "{kind}");
            // Defaulting is idempotent: a second write changes nothing.
            let again = input.clone();
            default(kind, &mut input);
            assert_eq!(input, again, "{kind} (second pass)");
        }
    }

    #[test]
    fn pod_template_defaults_reach_nested_templates() {
        let mut cj = json!({"spec":{"jobTemplate":{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"busybox:1"}],
            "volumes":[{"name":"v"},{"name":"s","secret":{"secretName":"x"}}]}}}}}});
        default("CronJob", &mut cj);
        let spec = &cj["spec"]["jobTemplate"]["spec"]["template"]["spec"];
        assert_eq!(spec["containers"][0]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["volumes"][0]["emptyDir"], json!({}));
        assert_eq!(spec["volumes"][1]["secret"]["defaultMode"], 420);
        // Templates get no admission-time pod fields.
        assert!(spec.get("serviceAccountName").is_none());
    }

    #[test]
    fn tier_policies_strict_decoding() {
        let cnp = json!({"apiVersion": "policy.networking.k8s.io/v1alpha2", "kind": "ClusterNetworkPolicy",
            "metadata": {"name": "a"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            "spec": {"tier": "Admin", "priority": 1, "tiers": ["Admin"], "subject": {"namespaces": {}},
                     "ingress": [{"action": "Deny", "from": [{"namespaces": {}, "pod": {"a": 1}}]}]}});
        assert_eq!(
            unknown_fields("ClusterNetworkPolicy", &cnp).unwrap(),
            ["spec.ingress[0].from[0].pod", "spec.tiers"]
        );
        let banp = json!({"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "BaselineAdminNetworkPolicy",
            "metadata": {"name": "default"}, "spec": {"subject": {"namespaces": {}}, "egres": [{"action": "Deny"}]}});
        assert_eq!(unknown_fields("BaselineAdminNetworkPolicy", &banp).unwrap(), ["spec.egres"]);
        assert!(unknown_fields("ClusterNetworkPolicy", &json!({"spec": {"priority": "high"}})).is_err());
    }

    #[test]
    fn unknown_fields_table() {
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            (
                "NetworkPolicy",
                json!({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"n"},"spec":{"podSelector":{},"ingres":[{}],"ingress":[{"from":[{"podSelector":{"matchLabels":{"a":"b"}}}]}]}}),
                vec!["spec.ingres"],
            ),
            (
                "Deployment",
                json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d","creationTimestamp":null},"spec":{"selector":{"matchLabels":{"a":"b"}},"strategy":{},
                    "template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"i","imagee":"x","resources":{}}]}}},"status":{}}),
                vec!["spec.template.spec.containers[0].imagee"],
            ),
            (
                "Pod",
                json!({"metadata":{"name":"p","labels":{"x":"y"}},"spec":{"containers":[{"name":"c","image":"i","ports":[{"containerPort":80,"protocl":"TCP"}]}]},"extra":1}),
                vec!["extra", "spec.containers[0].ports[0].protocl"],
            ),
            (
                "Service",
                json!({"metadata":{"name":"s"},"spec":{"ports":[{"port":80,"targetPort":"http"}],"selector":{"a":"b"}}}),
                vec![],
            ),
            ("ConfigMap", json!({"metadata":{"name":"c"},"data":{"k":"v"},"dat":{"k":"v"}}), vec!["dat"]),
            ("Unknown", json!({"what":1}), vec![]),
        ];
        for (kind, obj, want) in cases {
            assert_eq!(unknown_fields(kind, &obj), Ok(want.into_iter().map(String::from).collect()), "{kind}");
        }
        let err = unknown_fields("Deployment", &json!({"spec":{"replicas":"three"}}));
        assert!(err.as_ref().is_err_and(|e| e.contains("three")), "{err:?}");
    }

    #[test]
    fn cause_and_display() {
        let e = FieldError::not_supported("spec.ingress[0].ports[0].protocol", json!("TCPX"), PROTOCOLS);
        assert_eq!(
            e.cause(),
            json!({"reason":"FieldValueNotSupported","message":"Unsupported value: \"TCPX\": supported values: \"SCTP\", \"TCP\", \"UDP\"","field":"spec.ingress[0].ports[0].protocol"})
        );
        let cases = vec![
            (FieldError::required("spec.ports", ""), "spec.ports: Required value", "FieldValueRequired"),
            (
                FieldError::required("metadata.name", "name or generateName is required"),
                "metadata.name: Required value: name or generateName is required",
                "FieldValueRequired",
            ),
            (FieldError::forbidden("spec", "nope"), "spec: Forbidden: nope", "FieldValueForbidden"),
            (
                FieldError::too_long("metadata.annotations", 262144),
                "metadata.annotations: Too long: may not be more than 262144 bytes",
                "FieldValueTooLong",
            ),
            (
                FieldError::too_many("endpoints", 1001, 1000),
                "endpoints: Too many: 1001: must have at most 1000 items",
                "FieldValueTooMany",
            ),
            (FieldError::duplicate("a", json!(3)), "a: Duplicate value: 3", "FieldValueDuplicate"),
            (FieldError::invalid("a", json!(true), "x"), "a: Invalid value: true: x", "FieldValueInvalid"),
            (FieldError::invalid("a", Value::Null, "x"), "a: Invalid value: null: x", "FieldValueInvalid"),
        ];
        for (e, printed, reason) in cases {
            assert_eq!(e.to_string(), printed);
            assert_eq!(e.cause()["reason"], reason);
            assert_eq!(format!("{}: {}", e.field, e.cause()["message"].as_str().unwrap_or("")), printed);
        }
        assert_eq!(
            describe(&[FieldError::required("a", ""), FieldError::required("b", "")]),
            "a: Required value\nb: Required value"
        );
    }

    #[test]
    fn never_panics_on_odd_input() {
        let odd = [
            json!(null),
            json!(5),
            json!("x"),
            json!([1]),
            json!({"spec":5,"metadata":"x"}),
            json!({"spec":{"containers":"x","ports":[5],"template":[],"selector":"a","strategy":7,"updateStrategy":null}}),
        ];
        for kind in [
            "Namespace",
            "Pod",
            "Service",
            "Deployment",
            "ReplicaSet",
            "ReplicationController",
            "StatefulSet",
            "DaemonSet",
            "Job",
            "CronJob",
            "ConfigMap",
            "Secret",
            "ServiceAccount",
            "Endpoints",
            "EndpointSlice",
            "NetworkPolicy",
        ] {
            for o in &odd {
                let mut v = o.clone();
                default(kind, &mut v);
                let _ = validate(kind, &v, Some(o));
                let _ = validate(kind, o, None);
                let _ = unknown_fields(kind, o);
            }
        }
    }
}
