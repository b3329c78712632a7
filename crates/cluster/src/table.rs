//! Server-side `meta.k8s.io/v1` Table rendering for `kubectl get`: per-kind columns and cells as the
//! upstream apiserver computes them (kubernetes `pkg/printers/internalversion/printers.go`, v1.32).

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Value, json};

/// What each row carries of its object (the `includeObject` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// Nothing.
    None,
    /// The object's metadata as a `PartialObjectMetadata` (the default; kubectl reads the namespace and the
    /// labels from it).
    #[default]
    Metadata,
    /// The whole object (kubectl asks for it with `--sort-by`).
    Object,
}

impl IncludeObject {
    /// The parameter's value (absent or empty: `Metadata`), or the apiserver's message for another.
    pub fn parse(value: Option<&str>) -> Result<IncludeObject, String> {
        match value.unwrap_or("") {
            "" | "Metadata" => Ok(IncludeObject::Metadata),
            "Object" => Ok(IncludeObject::Object),
            "None" => Ok(IncludeObject::None),
            other => Err(format!(
                "includeObject: Unsupported value: \"{other}\": supported values: \"Metadata\", \"None\", \"Object\""
            )),
        }
    }
}

/// Writes `meta.k8s.io/v1` Tables of objects of one kind as JSON text, in pieces: the part before the
/// rows, each row, the end (a list's response is streamed a few rows at a time; nothing is copied from the
/// objects but what the text needs).
///
/// Like the apiserver's table convertor, every column is sent (priority 1 ones too: kubectl hides them
/// unless `-o wide`), and each row carries what `include` asks of its object.
pub struct TableWriter {
    kind: String,
    now: i128,
    include: IncludeObject,
}

impl TableWriter {
    /// For objects of `kind` (e.g. "Pod", "Deployment"), ages computed against `now_unix` seconds. Objects
    /// are JSON wire-form objects (with metadata, spec, status).
    pub fn new(kind: &str, now_unix: i64, include: IncludeObject) -> TableWriter {
        TableWriter { kind: kind.to_owned(), now: i128::from(now_unix) * NANOS, include }
    }

    /// Everything before the first row: the list's `resource_version` (none when empty) and the column
    /// definitions (null without `columns`, as watch events send them: kubectl keeps the list's header).
    pub fn head(&self, out: &mut Vec<u8>, resource_version: &str, columns: bool) {
        // Keys in the order a JSON object value would write them (sorted).
        out.extend_from_slice(b"{\"apiVersion\":\"meta.k8s.io/v1\",\"columnDefinitions\":");
        let columns = columns.then(|| self::columns(&self.kind));
        let written = serde_json::to_writer(&mut *out, &columns);
        out.extend_from_slice(b",\"kind\":\"Table\",\"metadata\":");
        let written = written.and(serde_json::to_writer(&mut *out, &ListMeta(resource_version)));
        out.extend_from_slice(b",\"rows\":[");
        debug_assert!(written.is_ok(), "writing to memory cannot fail");
    }

    /// One row (after a comma unless it is the first).
    pub fn row(&self, out: &mut Vec<u8>, object: &Value, first: bool) {
        if !first {
            out.push(b',');
        }
        let (cells, conditions) = cells(&self.kind, object, self.now);
        let written = serde_json::to_writer(out, &Row { cells, conditions, object, include: self.include });
        debug_assert!(written.is_ok(), "writing to memory cannot fail");
    }

    /// What follows the last row.
    pub fn tail(out: &mut Vec<u8>) {
        out.extend_from_slice(b"]}");
    }

    /// A whole Table.
    pub fn table<'a>(
        &self,
        objects: impl IntoIterator<Item = &'a Value>,
        resource_version: &str,
        columns: bool,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        self.head(&mut out, resource_version, columns);
        for (i, o) in objects.into_iter().enumerate() {
            self.row(&mut out, o, i == 0);
        }
        TableWriter::tail(&mut out);
        out
    }
}

struct Row<'a> {
    cells: Vec<Value>,
    conditions: Option<Value>,
    object: &'a Value,
    include: IncludeObject,
}

/// The Table of these objects of `kind`, listed at `resource_version`, with each row's metadata, as a
/// value (see [`TableWriter`]).
pub fn table<'a>(
    kind: &str,
    objects: impl IntoIterator<Item = &'a Value>,
    resource_version: &str,
    now_unix: i64,
) -> Value {
    let text = TableWriter::new(kind, now_unix, IncludeObject::Metadata).table(objects, resource_version, true);
    serde_json::from_slice(&text).unwrap_or(Value::Null)
}

struct ListMeta<'a>(&'a str);

impl Serialize for ListMeta<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if !self.0.is_empty() {
            m.serialize_entry("resourceVersion", self.0)?;
        }
        m.end()
    }
}

impl Serialize for Col {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("description", self.description)?;
        m.serialize_entry("format", self.format)?;
        m.serialize_entry("name", self.name)?;
        m.serialize_entry("priority", &self.priority)?;
        m.serialize_entry("type", self.ty)?;
        m.end()
    }
}

impl Serialize for Row<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("cells", &self.cells)?;
        if let Some(conditions) = &self.conditions {
            m.serialize_entry("conditions", conditions)?;
        }
        match self.include {
            IncludeObject::None => {}
            IncludeObject::Metadata => m.serialize_entry("object", &PartialObjectMetadata(self.object))?,
            IncludeObject::Object => m.serialize_entry("object", self.object)?,
        }
        m.end()
    }
}

/// An object's metadata (an empty one when it has none) as a `meta.k8s.io/v1` PartialObjectMetadata.
struct PartialObjectMetadata<'a>(&'a Value);

impl Serialize for PartialObjectMetadata<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let empty = Value::Object(serde_json::Map::new());
        let metadata = self.0.get("metadata").filter(|m| m.is_object()).unwrap_or(&empty);
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("apiVersion", "meta.k8s.io/v1")?;
        m.serialize_entry("kind", "PartialObjectMetadata")?;
        m.serialize_entry("metadata", metadata)?;
        m.end()
    }
}

/// kubectl's age format for a duration in seconds (`5s`, `3m20s`, `45m`, `5h`, `2d3h`, `400d`, ...).
///
/// A port of `duration.HumanDuration`: up to one second in the future counts as now (clock skew), more
/// is `<invalid>`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    } else if seconds < 0 {
        return "0s".into();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        format!("{hours}h{m}m")
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        format!("{}d{h}h", hours / 24)
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        format!("{}y{dy}d", hours / 24 / 365)
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

const NANOS: i128 = 1_000_000_000;
const NONE: &str = "<none>";

/// One column definition, as upstream declares it.
struct Col {
    name: &'static str,
    ty: &'static str,
    format: &'static str,
    description: &'static str,
    priority: i64,
}

const fn c(name: &'static str, ty: &'static str, description: &'static str) -> Col {
    Col { name, ty, format: "", description, priority: 0 }
}

const fn wide(name: &'static str, ty: &'static str, description: &'static str) -> Col {
    Col { name, ty, format: "", description, priority: 1 }
}

const NAME: Col = Col { name: "Name", ty: "string", format: "name", description: META_NAME, priority: 0 };
const AGE: Col = c("Age", "string", META_CREATION);
const CONTAINERS: Col = wide("Containers", "string", "Names of each container in the template.");
const IMAGES: Col = wide("Images", "string", "Images referenced by each container in the template.");

fn columns(kind: &str) -> Vec<Col> {
    match kind {
        "Pod" => vec![
            NAME,
            c("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
            c("Status", "string", "The aggregate status of the containers in this pod."),
            c(
                "Restarts",
                "string",
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            AGE,
            wide("IP", "string", POD_IP),
            wide("Node", "string", POD_NODE),
            wide("Nominated Node", "string", POD_NOMINATED),
            wide("Readiness Gates", "string", POD_GATES),
        ],
        "Namespace" => vec![NAME, c("Status", "string", "The status of the namespace"), AGE],
        "Node" => vec![
            NAME,
            c("Status", "string", "The status of the node"),
            c("Roles", "string", "The roles of the node"),
            AGE,
            c("Version", "string", NODE_KUBELET),
            wide("Internal-IP", "string", NODE_ADDRESSES),
            wide("External-IP", "string", NODE_ADDRESSES),
            wide("OS-Image", "string", NODE_OS_IMAGE),
            wide("Kernel-Version", "string", NODE_KERNEL),
            wide("Container-Runtime", "string", NODE_RUNTIME),
        ],
        "Service" => vec![
            NAME,
            c("Type", "string", SVC_TYPE),
            c("Cluster-IP", "string", SVC_CLUSTER_IP),
            c("External-IP", "string", SVC_EXTERNAL_IPS),
            c("Port(s)", "string", SVC_PORTS),
            AGE,
            wide("Selector", "string", SVC_SELECTOR),
        ],
        "Endpoints" => vec![NAME, c("Endpoints", "string", EP_SUBSETS), AGE],
        "EndpointSlice" => vec![
            NAME,
            c("AddressType", "string", EPS_ADDRESS_TYPE),
            c("Ports", "string", EPS_PORTS),
            c("Endpoints", "string", EPS_ENDPOINTS),
            AGE,
        ],
        "Deployment" => vec![
            NAME,
            c("Ready", "string", "Number of the pod with ready state"),
            c("Up-to-date", "string", DEP_UPDATED),
            c("Available", "string", DEP_AVAILABLE),
            AGE,
            CONTAINERS,
            IMAGES,
            wide("Selector", "string", DEP_SELECTOR),
        ],
        "ReplicaSet" => vec![
            NAME,
            c("Desired", "integer", RS_SPEC_REPLICAS),
            c("Current", "integer", RS_STATUS_REPLICAS),
            c("Ready", "integer", RS_READY),
            AGE,
            CONTAINERS,
            IMAGES,
            wide("Selector", "string", RS_SELECTOR),
        ],
        "ReplicationController" => vec![
            NAME,
            c("Desired", "integer", RC_SPEC_REPLICAS),
            c("Current", "integer", RC_STATUS_REPLICAS),
            c("Ready", "integer", RC_READY),
            AGE,
            CONTAINERS,
            IMAGES,
            wide("Selector", "string", RC_SELECTOR),
        ],
        "StatefulSet" => {
            vec![NAME, c("Ready", "string", "Number of the pod with ready state"), AGE, CONTAINERS, IMAGES]
        }
        "DaemonSet" => vec![
            NAME,
            c("Desired", "integer", DS_DESIRED),
            c("Current", "integer", DS_CURRENT),
            c("Ready", "integer", DS_READY),
            c("Up-to-date", "integer", DS_UPDATED),
            c("Available", "integer", DS_AVAILABLE),
            c("Node Selector", "string", POD_NODE_SELECTOR),
            AGE,
            CONTAINERS,
            IMAGES,
            wide("Selector", "string", DS_SELECTOR),
        ],
        "Job" => vec![
            NAME,
            c("Status", "string", "Status of the job."),
            c("Completions", "string", JOB_SUCCEEDED),
            c("Duration", "string", "Time required to complete the job."),
            AGE,
            CONTAINERS,
            IMAGES,
            wide("Selector", "string", JOB_SELECTOR),
        ],
        "CronJob" => vec![
            NAME,
            c("Schedule", "string", CJ_SCHEDULE),
            c("Timezone", "string", CJ_TIMEZONE),
            c("Suspend", "boolean", CJ_SUSPEND),
            c("Active", "integer", CJ_ACTIVE),
            c("Last Schedule", "string", CJ_LAST_SCHEDULE),
            AGE,
            CONTAINERS,
            IMAGES,
            wide("Selector", "string", JOB_SELECTOR),
        ],
        "NetworkPolicy" => vec![NAME, c("Pod-Selector", "string", NP_POD_SELECTOR), AGE],
        "Event" => vec![
            c("Last Seen", "string", EV_LAST),
            c("Type", "string", EV_TYPE),
            c("Reason", "string", EV_REASON),
            c("Object", "string", EV_OBJECT),
            wide("Subobject", "string", EV_FIELD_PATH),
            wide("Source", "string", EV_SOURCE),
            c("Message", "string", EV_MESSAGE),
            wide("First Seen", "string", EV_FIRST),
            wide("Count", "string", EV_COUNT),
            Col { priority: 1, ..NAME },
        ],
        "ConfigMap" => vec![NAME, c("Data", "string", CM_DATA), AGE],
        "Secret" => vec![NAME, c("Type", "string", SECRET_TYPE), c("Data", "string", SECRET_DATA), AGE],
        "ServiceAccount" => vec![NAME, c("Secrets", "string", SA_SECRETS), AGE],
        // The tier policies' CRDs' additionalPrinterColumns (network-policy-api v0.2.0 and v0.1.x).
        "ClusterNetworkPolicy" => {
            vec![NAME, c("Tier", "string", ""), c("Priority", "string", ""), c("Age", "date", "")]
        }
        "AdminNetworkPolicy" => vec![NAME, c("Priority", "string", ""), c("Age", "date", "")],
        "BaselineAdminNetworkPolicy" => vec![NAME, c("Age", "date", "")],
        // Kinds without a printer get what the apiextensions server gives a CRD without printer columns.
        _ => vec![NAME, c("Age", "date", META_CREATION)],
    }
}

/// Cells of one row, plus the row conditions upstream attaches (only completed pods have any).
fn cells(kind: &str, o: &Value, now: i128) -> (Vec<Value>, Option<Value>) {
    let name = Value::from(st(o, "/metadata/name"));
    let age = Value::from(since(at(o, "/metadata/creationTimestamp"), now));
    let cells = match kind {
        "Pod" => return pod_cells(o, now),
        "Namespace" => vec![name, st(o, "/status/phase").into(), age],
        "Node" => node_cells(o, name, age),
        "Service" => service_cells(o, name, age),
        "Endpoints" => vec![name, format_endpoints(o).into(), age],
        "EndpointSlice" => vec![
            name,
            st(o, "/addressType").into(),
            format_discovery_ports(arr(o, "/ports")).into(),
            format_discovery_endpoints(arr(o, "/endpoints")).into(),
            age,
        ],
        "Deployment" => {
            let (names, images) = container_cells(o, "/spec/template/spec/containers");
            let selector = match label_selector(at(o, "/spec/selector")) {
                Ok(s) => s,
                Err(()) => "<invalid>".into(),
            };
            vec![
                name,
                format!("{}/{}", int(o, "/status/readyReplicas"), replicas(o)).into(),
                int(o, "/status/updatedReplicas").into(),
                int(o, "/status/availableReplicas").into(),
                age,
                names.into(),
                images.into(),
                selector.into(),
            ]
        }
        "ReplicaSet" => {
            let (names, images) = container_cells(o, "/spec/template/spec/containers");
            vec![
                name,
                replicas(o).into(),
                int(o, "/status/replicas").into(),
                int(o, "/status/readyReplicas").into(),
                age,
                names.into(),
                images.into(),
                format_label_selector(at(o, "/spec/selector")).into(),
            ]
        }
        "ReplicationController" => {
            let (names, images) = container_cells(o, "/spec/template/spec/containers");
            vec![
                name,
                replicas(o).into(),
                int(o, "/status/replicas").into(),
                int(o, "/status/readyReplicas").into(),
                age,
                names.into(),
                images.into(),
                format_labels(at(o, "/spec/selector")).into(),
            ]
        }
        "StatefulSet" => {
            let (names, images) = container_cells(o, "/spec/template/spec/containers");
            let ready = format!("{}/{}", int(o, "/status/readyReplicas"), replicas(o));
            vec![name, ready.into(), age, names.into(), images.into()]
        }
        "DaemonSet" => {
            let (names, images) = container_cells(o, "/spec/template/spec/containers");
            vec![
                name,
                int(o, "/status/desiredNumberScheduled").into(),
                int(o, "/status/currentNumberScheduled").into(),
                int(o, "/status/numberReady").into(),
                int(o, "/status/updatedNumberScheduled").into(),
                int(o, "/status/numberAvailable").into(),
                format_labels(at(o, "/spec/template/spec/nodeSelector")).into(),
                age,
                names.into(),
                images.into(),
                format_label_selector(at(o, "/spec/selector")).into(),
            ]
        }
        "Job" => job_cells(o, name, age, now),
        "CronJob" => {
            let last = match at(o, "/status/lastScheduleTime").filter(|v| !v.is_null()) {
                Some(t) => since(Some(t), now),
                None => NONE.into(),
            };
            let time_zone = at(o, "/spec/timeZone").and_then(Value::as_str).unwrap_or(NONE);
            // The apiserver defaults `suspend` to false, so a stored CronJob never shows `<unset>`.
            let suspend = at(o, "/spec/suspend").and_then(Value::as_bool).unwrap_or(false);
            let (names, images) = container_cells(o, "/spec/jobTemplate/spec/template/spec/containers");
            vec![
                name,
                st(o, "/spec/schedule").into(),
                time_zone.into(),
                (if suspend { "True" } else { "False" }).into(),
                (arr(o, "/status/active").len() as i64).into(),
                last.into(),
                age,
                names.into(),
                images.into(),
                format_label_selector(at(o, "/spec/jobTemplate/spec/selector")).into(),
            ]
        }
        "NetworkPolicy" => {
            // The pod selector is a non-pointer struct upstream: absent means empty, i.e. all pods.
            let selector = at(o, "/spec/podSelector").cloned().unwrap_or_else(|| json!({}));
            vec![name, format_label_selector(Some(&selector)).into(), age]
        }
        "Event" => event_cells(o, name, now),
        "ConfigMap" => vec![name, (obj_len(o, "/data") + obj_len(o, "/binaryData")).into(), age],
        "Secret" => vec![name, st(o, "/type").into(), obj_len(o, "/data").into(), age],
        "ServiceAccount" => vec![name, (arr(o, "/secrets").len() as i64).into(), age],
        "ClusterNetworkPolicy" => vec![name, printer_cell(o, "/spec/tier"), printer_cell(o, "/spec/priority"), age],
        "AdminNetworkPolicy" => vec![name, printer_cell(o, "/spec/priority"), age],
        _ => vec![name, age],
    };
    (cells, None)
}

fn pod_cells(pod: &Value, now: i128) -> (Vec<Value>, Option<Value>) {
    let mut restarts = 0i64;
    let mut restartable_init_restarts = 0i64;
    let mut total = arr(pod, "/spec/containers").len();
    let mut ready = 0usize;
    let mut last_restart: Option<i128> = None;
    let mut last_restartable_init_restart: Option<i128> = None;

    let phase = st(pod, "/status/phase");
    let mut reason = phase.to_string();
    let status_reason = st(pod, "/status/reason");
    if !status_reason.is_empty() {
        reason = status_reason.to_string();
    }
    let conditions = arr(pod, "/status/conditions");
    for cond in conditions {
        if st(cond, "/type") == "PodScheduled" && st(cond, "/reason") == "SchedulingGated" {
            reason = "SchedulingGated".into();
        }
    }
    let row_conditions = match phase {
        "Succeeded" => Some(json!([{"type": "Completed", "status": "True", "reason": "Succeeded",
                                    "message": "The pod has completed successfully."}])),
        "Failed" => Some(json!([{"type": "Completed", "status": "True", "reason": "Failed",
                                 "message": "The pod failed."}])),
        _ => None,
    };

    let init_containers = arr(pod, "/spec/initContainers");
    // A sidecar (restartPolicy Always) init container counts as a regular container.
    let restartable =
        |name: &str| init_containers.iter().any(|c| st(c, "/name") == name && st(c, "/restartPolicy") == "Always");
    total += init_containers.iter().filter(|c| st(c, "/restartPolicy") == "Always").count();

    let mut initializing = false;
    for (i, cs) in arr(pod, "/status/initContainerStatuses").iter().enumerate() {
        let count = int(cs, "/restartCount");
        restarts += count;
        let finished = present(cs, "/lastState/terminated").map(|t| ts(t.get("finishedAt")));
        if let Some(f) = finished {
            later(&mut last_restart, f);
        }
        let is_restartable = restartable(st(cs, "/name"));
        if is_restartable {
            restartable_init_restarts += count;
            if let Some(f) = finished {
                later(&mut last_restartable_init_restart, f);
            }
        }
        let terminated = present(cs, "/state/terminated");
        let waiting_reason = present(cs, "/state/waiting").map(|w| st(w, "/reason")).unwrap_or("");
        if terminated.is_some_and(|t| int(t, "/exitCode") == 0) {
            continue;
        } else if is_restartable && cs.get("started").and_then(Value::as_bool) == Some(true) {
            if cs.get("ready").and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
            continue;
        } else if let Some(t) = terminated {
            reason = match st(t, "/reason") {
                "" if int(t, "/signal") != 0 => format!("Init:Signal:{}", int(t, "/signal")),
                "" => format!("Init:ExitCode:{}", int(t, "/exitCode")),
                r => format!("Init:{r}"),
            };
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{i}/{}", init_containers.len());
        }
        initializing = true;
        break;
    }

    if !initializing || condition_true(conditions, "Initialized") {
        restarts = restartable_init_restarts;
        last_restart = last_restartable_init_restart;
        let mut has_running = false;
        for cs in arr(pod, "/status/containerStatuses").iter().rev() {
            restarts += int(cs, "/restartCount");
            if let Some(t) = present(cs, "/lastState/terminated") {
                later(&mut last_restart, ts(t.get("finishedAt")));
            }
            let waiting_reason = present(cs, "/state/waiting").map(|w| st(w, "/reason")).unwrap_or("");
            let terminated = present(cs, "/state/terminated");
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                reason = match st(t, "/reason") {
                    "" if int(t, "/signal") != 0 => format!("Signal:{}", int(t, "/signal")),
                    "" => format!("ExitCode:{}", int(t, "/exitCode")),
                    r => r.to_string(),
                };
            } else if cs.get("ready").and_then(Value::as_bool) == Some(true) && present(cs, "/state/running").is_some()
            {
                has_running = true;
                ready += 1;
            }
        }
        // Some container still runs although one completed: the pod as a whole is not done.
        if reason == "Completed" && has_running {
            reason = if condition_true_any(conditions, "Ready") { "Running" } else { "NotReady" }.into();
        }
    }

    let deleting = present(pod, "/metadata/deletionTimestamp").is_some();
    if deleting && status_reason == "NodeLost" {
        reason = "Unknown".into();
    } else if deleting && phase != "Failed" && phase != "Succeeded" {
        reason = "Terminating".into();
    }

    let restarts_str = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", human_nanos(now - t)),
        _ => restarts.to_string(),
    };

    let mut pod_ip = arr(pod, "/status/podIPs").first().map(|p| st(p, "/ip")).unwrap_or("");
    if pod_ip.is_empty() && arr(pod, "/status/podIPs").is_empty() {
        // The v1 -> internal conversion fills podIPs from a lone podIP.
        pod_ip = st(pod, "/status/podIP");
    }
    let gates = arr(pod, "/spec/readinessGates");
    let readiness_gates = if gates.is_empty() {
        NONE.to_string()
    } else {
        let true_conditions = gates
            .iter()
            .filter(|g| {
                let ty = st(g, "/conditionType");
                conditions.iter().find(|c| st(c, "/type") == ty).is_some_and(|c| st(c, "/status") == "True")
            })
            .count();
        format!("{true_conditions}/{}", gates.len())
    };
    let cells = vec![
        st(pod, "/metadata/name").into(),
        format!("{ready}/{total}").into(),
        reason.into(),
        restarts_str.into(),
        since(at(pod, "/metadata/creationTimestamp"), now).into(),
        or_none(pod_ip).into(),
        or_none(st(pod, "/spec/nodeName")).into(),
        or_none(st(pod, "/status/nominatedNodeName")).into(),
        readiness_gates.into(),
    ];
    (cells, row_conditions)
}

fn node_cells(o: &Value, name: Value, age: Value) -> Vec<Value> {
    // Only the Ready condition contributes; the last one of that type wins, as with upstream's map.
    let ready = arr(o, "/status/conditions").iter().rfind(|c| st(c, "/type") == "Ready");
    let mut status = vec![match ready {
        Some(c) if st(c, "/status") == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if at(o, "/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled");
    }
    let mut roles: Vec<&str> = Vec::new();
    if let Some(labels) = at(o, "/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.push(role);
                }
            } else if k == "kubernetes.io/role" && v.as_str().is_some_and(|v| !v.is_empty()) {
                roles.push(v.as_str().unwrap_or_default());
            }
        }
    }
    roles.sort_unstable();
    roles.dedup();
    let address = |ty: &str| {
        arr(o, "/status/addresses").iter().find(|a| st(a, "/type") == ty).map(|a| st(a, "/address")).unwrap_or(NONE)
    };
    let unknown = |p: &str| match st(o, p) {
        "" => "<unknown>",
        s => s,
    };
    vec![
        name,
        status.join(",").into(),
        (if roles.is_empty() { NONE.to_string() } else { roles.join(",") }).into(),
        age,
        st(o, "/status/nodeInfo/kubeletVersion").into(),
        address("InternalIP").into(),
        address("ExternalIP").into(),
        unknown("/status/nodeInfo/osImage").into(),
        unknown("/status/nodeInfo/kernelVersion").into(),
        unknown("/status/nodeInfo/containerRuntimeVersion").into(),
    ]
}

fn service_cells(o: &Value, name: Value, age: Value) -> Vec<Value> {
    let cluster_ips = strings(arr(o, "/spec/clusterIPs"));
    let internal_ip = match cluster_ips.first() {
        Some(ip) => ip.to_string(),
        // The v1 -> internal conversion fills clusterIPs from a lone clusterIP.
        None => or_none(st(o, "/spec/clusterIP")).to_string(),
    };
    let external_ips = strings(arr(o, "/spec/externalIPs"));
    let external_ip = match st(o, "/spec/type") {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                NONE.to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            // The apiserver renders wide, so the ingress list is never clipped.
            let mut lb: Vec<&str> = arr(o, "/status/loadBalancer/ingress")
                .iter()
                .filter_map(|i| match (st(i, "/ip"), st(i, "/hostname")) {
                    ("", "") => None,
                    ("", host) => Some(host),
                    (ip, _) => Some(ip),
                })
                .collect();
            lb.sort_unstable();
            lb.dedup();
            if !external_ips.is_empty() {
                lb.iter().copied().chain(external_ips.iter().copied()).collect::<Vec<_>>().join(",")
            } else if !lb.is_empty() {
                lb.join(",")
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => st(o, "/spec/externalName").to_string(),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = arr(o, "/spec/ports")
        .iter()
        .map(|p| {
            let node_port = int(p, "/nodePort");
            if node_port > 0 {
                format!("{}:{node_port}/{}", int(p, "/port"), st(p, "/protocol"))
            } else {
                format!("{}/{}", int(p, "/port"), st(p, "/protocol"))
            }
        })
        .collect();
    let ports = if ports.is_empty() { NONE.to_string() } else { ports.join(",") };
    vec![
        name,
        st(o, "/spec/type").into(),
        internal_ip.into(),
        external_ip.into(),
        ports.into(),
        age,
        format_labels(at(o, "/spec/selector")).into(),
    ]
}

fn job_cells(o: &Value, name: Value, age: Value, now: i128) -> Vec<Value> {
    let succeeded = int(o, "/status/succeeded");
    let completions = match at(o, "/spec/completions").and_then(Value::as_i64) {
        Some(n) => format!("{succeeded}/{n}"),
        None => {
            let parallelism = at(o, "/spec/parallelism").and_then(Value::as_i64).unwrap_or(0);
            if parallelism > 1 { format!("{succeeded}/1 of {parallelism}") } else { format!("{succeeded}/1") }
        }
    };
    // Timestamps that do not parse are treated as unset (the apiserver would not have stored them).
    let start = ts(at(o, "/status/startTime"));
    let duration = match (start, ts(at(o, "/status/completionTime"))) {
        (None, _) => String::new(),
        (Some(s), None) => human_nanos(now - s),
        (Some(s), Some(c)) => human_nanos(c - s),
    };
    let conds = arr(o, "/status/conditions");
    let status = if condition_true(conds, "Complete") {
        "Complete"
    } else if condition_true(conds, "Failed") {
        "Failed"
    } else if present(o, "/metadata/deletionTimestamp").is_some() {
        "Terminating"
    } else if condition_true(conds, "Suspended") {
        "Suspended"
    } else if condition_true(conds, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = container_cells(o, "/spec/template/spec/containers");
    vec![
        name,
        status.into(),
        completions.into(),
        duration.into(),
        age,
        names.into(),
        images.into(),
        format_label_selector(at(o, "/spec/selector")).into(),
    ]
}

fn event_cells(o: &Value, name: Value, now: i128) -> Vec<Value> {
    let first = match present(o, "/firstTimestamp") {
        Some(t) => since(Some(t), now),
        None => since(o.get("eventTime"), now),
    };
    let mut last = match present(o, "/lastTimestamp") {
        Some(t) => since(Some(t), now),
        None => first.clone(),
    };
    let mut count = int(o, "/count");
    if let Some(series) = present(o, "/series") {
        last = since(series.get("lastObservedTime"), now);
        count = int(series, "/count");
    } else if count == 0 {
        // Singleton events of the events.k8s.io API carry no count.
        count = 1;
    }
    let kind = st(o, "/involvedObject/kind").to_lowercase();
    let target = match st(o, "/involvedObject/name") {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let component = first_non_empty(st(o, "/source/component"), st(o, "/reportingComponent"));
    let instance = first_non_empty(st(o, "/source/host"), st(o, "/reportingInstance"));
    let source = if instance.is_empty() { component.to_string() } else { format!("{component}, {instance}") };
    vec![
        last.into(),
        st(o, "/type").into(),
        st(o, "/reason").into(),
        target.into(),
        st(o, "/involvedObject/fieldPath").into(),
        source.into(),
        st(o, "/message").trim().into(),
        first.into(),
        count.into(),
        name,
    ]
}

/// A CRD printer column of type string: the value printed as text, null (kubectl's `<none>`) when absent.
fn printer_cell(o: &Value, ptr: &str) -> Value {
    match at(o, ptr) {
        Some(Value::String(s)) => Value::from(s.as_str()),
        Some(v) if !v.is_null() => Value::from(v.to_string()),
        _ => Value::Null,
    }
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() { b } else { a }
}

/// Endpoints as `ip:port,...`, at most three, then ` + N more...`; only ready addresses count.
fn format_endpoints(o: &Value) -> String {
    let subsets = arr(o, "/subsets");
    if subsets.is_empty() {
        return NONE.into();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for ss in subsets {
        let addresses = arr(ss, "/addresses");
        let ports = arr(ss, "/ports");
        if ports.is_empty() {
            // Headless services may have no ports.
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(st(a, "/ip").to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(st(a, "/ip"), int(port, "/port")));
            }
        }
    }
    let ret = list.join(",");
    if more { format!("{ret} + {} more...", count - MAX) } else { ret }
}

/// Go's `net.JoinHostPort`: brackets around hosts containing a colon (IPv6).
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

fn format_discovery_ports(ports: &[Value]) -> String {
    let list: Vec<String> = ports
        .iter()
        .take(3)
        .map(|p| match (p.get("port").and_then(Value::as_i64), p.get("name").and_then(Value::as_str)) {
            (Some(n), _) => n.to_string(),
            (None, Some(name)) => name.to_string(),
            (None, None) => "*".to_string(),
        })
        .collect();
    list_with_more(&list, ports.len())
}

fn format_discovery_endpoints(endpoints: &[Value]) -> String {
    let all: Vec<String> = endpoints.iter().flat_map(|e| strings(arr(e, "/addresses"))).map(str::to_string).collect();
    let list: Vec<String> = all.iter().take(3).cloned().collect();
    list_with_more(&list, all.len())
}

fn list_with_more(list: &[String], count: usize) -> String {
    let ret = list.join(",");
    if count > 3 {
        format!("{ret} + {} more...", count - 3)
    } else if ret.is_empty() {
        "<unset>".into()
    } else {
        ret
    }
}

fn container_cells(o: &Value, path: &str) -> (String, String) {
    let containers = arr(o, path);
    let names: Vec<&str> = containers.iter().map(|c| st(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| st(c, "/image")).collect();
    (names.join(","), images.join(","))
}

/// `spec.replicas`; the apiserver defaults it to 1, so an absent value reads as 1 like a stored object.
fn replicas(o: &Value) -> i64 {
    at(o, "/spec/replicas").and_then(Value::as_i64).unwrap_or(1)
}

/// `labels.FormatLabels`: sorted `k=v` pairs, `<none>` when empty.
fn format_labels(labels: Option<&Value>) -> String {
    let mut pairs: Vec<String> = labels
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect())
        .unwrap_or_default();
    pairs.sort();
    if pairs.is_empty() { NONE.into() } else { pairs.join(",") }
}

/// `metav1.FormatLabelSelector`: the selector string, `<none>` when it selects everything or nothing,
/// `<error>` when invalid.
fn format_label_selector(selector: Option<&Value>) -> String {
    match label_selector(selector) {
        Ok(s) if s.is_empty() => NONE.into(),
        Ok(s) => s,
        Err(()) => "<error>".into(),
    }
}

/// `metav1.LabelSelectorAsSelector(..).String()`: requirements sorted by key, `in`/`notin` values sorted.
fn label_selector(selector: Option<&Value>) -> Result<String, ()> {
    let Some(sel) = selector.filter(|s| !s.is_null()) else { return Ok(String::new()) };
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in m {
            let v = v.as_str().ok_or(())?;
            check_key(k)?;
            check_value(v)?;
            reqs.push((k.clone(), format!("{k}={v}")));
        }
    }
    for e in arr(sel, "/matchExpressions") {
        let key = st(e, "/key");
        check_key(key)?;
        let mut values: Vec<&str> = Vec::new();
        for v in arr(e, "/values") {
            let v = v.as_str().ok_or(())?;
            check_value(v)?;
            values.push(v);
        }
        values.sort_unstable();
        let text = match st(e, "/operator") {
            "In" | "NotIn" if values.is_empty() => return Err(()),
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" | "DoesNotExist" if !values.is_empty() => return Err(()),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => return Err(()),
        };
        reqs.push((key.to_string(), text));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(reqs.into_iter().map(|(_, t)| t).collect::<Vec<_>>().join(","))
}

/// A label key: optional DNS-subdomain prefix and `/`, then a name of at most 63 characters.
fn check_key(key: &str) -> Result<(), ()> {
    let name = match key.rsplit_once('/') {
        Some((prefix, name)) => {
            let ok = !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|l| {
                    !l.is_empty()
                        && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                });
            if !ok {
                return Err(());
            }
            name
        }
        None => key,
    };
    if name.is_empty() { Err(()) } else { check_value(name) }
}

/// A label value: empty, or up to 63 alphanumerics, `-`, `_`, `.` starting and ending alphanumeric.
fn check_value(v: &str) -> Result<(), ()> {
    let b = v.as_bytes();
    let ok = v.is_empty()
        || (b.len() <= 63
            && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
            && b.first().is_some_and(u8::is_ascii_alphanumeric)
            && b.last().is_some_and(u8::is_ascii_alphanumeric));
    if ok { Ok(()) } else { Err(()) }
}

fn condition_true(conds: &[Value], ty: &str) -> bool {
    // The first condition of that type decides.
    conds.iter().find(|c| st(c, "/type") == ty).is_some_and(|c| st(c, "/status") == "True")
}

fn condition_true_any(conds: &[Value], ty: &str) -> bool {
    conds.iter().any(|c| st(c, "/type") == ty && st(c, "/status") == "True")
}

fn later(slot: &mut Option<i128>, t: Option<i128>) {
    if let Some(t) = t
        && slot.is_none_or(|s| s < t)
    {
        *slot = Some(t);
    }
}

/// `translateTimestampSince`: the age of a timestamp, `<unknown>` when unset.
fn since(t: Option<&Value>, now: i128) -> String {
    match t.filter(|v| !v.is_null() && v.as_str() != Some("")) {
        None => "<unknown>".into(),
        Some(v) => match ts(Some(v)) {
            Some(t) => human_nanos(now - t),
            None => "<invalid>".into(),
        },
    }
}

/// Go truncates durations toward zero when converting to whole seconds; so does i128 division.
fn human_nanos(d: i128) -> String {
    human_duration(i64::try_from(d / NANOS).unwrap_or(if d < 0 { i64::MIN } else { i64::MAX }))
}

fn ts(v: Option<&Value>) -> Option<i128> {
    parse_rfc3339(v?.as_str()?)
}

/// Nanoseconds since the Unix epoch of an RFC 3339 timestamp (`2026-12-01T04:31:02Z`, optional
/// fraction, `Z` or `±hh:mm` offset), as metav1.Time and MicroTime serialise.
fn parse_rfc3339(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) { part.parse().ok() } else { None }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i128 = 0;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[start..i];
        if frac.is_empty() {
            return None;
        }
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        nanos = digits.parse().ok()?;
    }
    let offset = match s.get(i..)? {
        "Z" | "z" => 0,
        rest if rest.len() == 6 && matches!(rest.as_bytes()[0], b'+' | b'-') && rest.as_bytes()[3] == b':' => {
            let (h, m) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if rest.as_bytes()[0] == b'-' { -off } else { off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(i128::from(secs) * NANOS + nanos)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `Value::pointer` without its two allocations per step (none of our paths has an escaped `~`).
fn at<'a>(v: &'a Value, ptr: &str) -> Option<&'a Value> {
    if ptr.contains('~') {
        return v.pointer(ptr);
    }
    ptr.strip_prefix('/')?.split('/').try_fold(v, |v, step| match v {
        Value::Object(m) => m.get(step),
        Value::Array(a) => step.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

fn st<'a>(v: &'a Value, ptr: &str) -> &'a str {
    at(v, ptr).and_then(Value::as_str).unwrap_or("")
}

fn int(v: &Value, ptr: &str) -> i64 {
    at(v, ptr).and_then(Value::as_i64).unwrap_or(0)
}

fn arr<'a>(v: &'a Value, ptr: &str) -> &'a [Value] {
    at(v, ptr).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

fn obj_len(v: &Value, ptr: &str) -> i64 {
    at(v, ptr).and_then(Value::as_object).map_or(0, |m| m.len() as i64)
}

/// A pointer field that is set (present and not null), like a non-nil Go pointer.
fn present<'a>(v: &'a Value, ptr: &str) -> Option<&'a Value> {
    at(v, ptr).filter(|x| !x.is_null())
}

fn strings(values: &[Value]) -> Vec<&str> {
    values.iter().filter_map(Value::as_str).collect()
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { NONE } else { s }
}

// Column descriptions: the upstream SwaggerDoc strings (k8s.io/api and apimachinery v0.32.0) that
// printers.go references.
const META_NAME: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const META_CREATION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const POD_IP: &str =
    "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.";
const POD_NODE: &str = "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename";
const POD_NOMINATED: &str = "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.";
const POD_GATES: &str = "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates";
const RC_SPEC_REPLICAS: &str = "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller";
const RC_STATUS_REPLICAS: &str = "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller";
const RC_READY: &str = "The number of ready replicas for this replication controller.";
const RC_SELECTOR: &str = "Selector is a label query over pods that should match the Replicas count. If Selector is empty, it is defaulted to the labels present on the Pod template. Label keys and values that must match in order to be controlled by this replication controller, if empty defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
const RS_SPEC_REPLICAS: &str = "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller";
const RS_STATUS_REPLICAS: &str = "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller";
const RS_READY: &str = "The number of ready replicas for this replica set.";
const RS_SELECTOR: &str = "Selector is a label query over pods that should match the replica count. If the selector is empty, it is defaulted to the labels present on the pod template. Label keys and values that must match in order to be controlled by this replica set. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
const DS_DESIRED: &str = "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/";
const DS_CURRENT: &str = "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/";
const DS_READY: &str = "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.";
const DS_UPDATED: &str = "The total number of nodes that are running updated daemon pod";
const DS_AVAILABLE: &str = "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)";
const POD_NODE_SELECTOR: &str = "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/";
const DS_SELECTOR: &str = "A label query over pods that are managed by the daemon set. Must match in order to be controlled. If empty, defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
const JOB_SUCCEEDED: &str = "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs.";
const JOB_SELECTOR: &str = "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
const CJ_SCHEDULE: &str = "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.";
const CJ_TIMEZONE: &str = "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process. The set of valid time zone names and the time zone offset is loaded from the system-wide time zone database by the API server during CronJob validation and the controller manager during execution. If no system-wide time zone database can be found a bundled version of the database is used instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones";
const CJ_SUSPEND: &str = "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false.";
const CJ_ACTIVE: &str = "A list of pointers to currently running jobs.";
const CJ_LAST_SCHEDULE: &str = "Information when was the last time the job was successfully scheduled.";
const SVC_TYPE: &str = "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types";
const SVC_CLUSTER_IP: &str = "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
const SVC_EXTERNAL_IPS: &str = "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.";
const SVC_PORTS: &str = "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
const SVC_SELECTOR: &str = "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/";
const EP_SUBSETS: &str = "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.";
const NODE_KUBELET: &str = "Kubelet Version reported by the node.";
const NODE_ADDRESSES: &str = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";
const NODE_OS_IMAGE: &str = "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).";
const NODE_KERNEL: &str = "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).";
const NODE_RUNTIME: &str =
    "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).";
const EV_LAST: &str = "The time at which the most recent occurrence of this event was recorded.";
const EV_TYPE: &str = "Type of this event (Normal, Warning), new types could be added in the future";
const EV_REASON: &str = "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.";
const EV_OBJECT: &str = "The object that this event is about.";
const EV_FIELD_PATH: &str = "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.";
const EV_SOURCE: &str = "The component reporting this event. Should be a short machine understandable string.";
const EV_MESSAGE: &str = "A human-readable description of the status of this operation.";
const EV_FIRST: &str = "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)";
const EV_COUNT: &str = "The number of times this event has occurred.";
const SECRET_TYPE: &str = "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types";
const SECRET_DATA: &str = "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4";
const SA_SECRETS: &str = "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret";
const CM_DATA: &str = "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.";
const DEP_UPDATED: &str =
    "Total number of non-terminated pods targeted by this deployment that have the desired template spec.";
const DEP_AVAILABLE: &str =
    "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.";
const DEP_SELECTOR: &str = "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.";
const NP_POD_SELECTOR: &str = "Selects the pods to which this NetworkPolicy object applies.  The array of ingress rules is applied to any pods selected by this field. Multiple network policies can select the same set of pods.  In this case, the ingress rules for each are combined additively. This field is NOT optional and follows standard label selector semantics. An empty podSelector matches all pods in this namespace.";
const EPS_ADDRESS_TYPE: &str = "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name.";
const EPS_PORTS: &str = "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. When ports is empty, it indicates that there are no defined ports. When a port is defined with a nil port value, it indicates \"all ports\". Each slice may include a maximum of 100 ports.";
const EPS_ENDPOINTS: &str =
    "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.";

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-01T04:31:02Z
    const NOW: i64 = 1_796_099_462;

    fn cells_of(kind: &str, obj: Value) -> Vec<Value> {
        let t = table(kind, &[obj], "7", NOW);
        t["rows"][0]["cells"].as_array().cloned().unwrap_or_default()
    }

    fn column_names(kind: &str) -> Vec<(String, i64)> {
        let t = table(kind, &[], "", NOW);
        t["columnDefinitions"]
            .as_array()
            .map(|cols| {
                cols.iter()
                    .map(|c| (c["name"].as_str().unwrap_or("?").to_string(), c["priority"].as_i64().unwrap_or(-1)))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn rfc3339_parses_the_wire_forms() {
        let cases: &[(&str, Option<i128>)] = &[
            ("2026-12-01T04:31:02Z", Some(i128::from(NOW) * NANOS)),
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2000-02-29T12:00:00Z", Some(951_825_600 * NANOS)),
            ("2026-12-01T04:31:02.250000Z", Some(i128::from(NOW) * NANOS + 250_000_000)),
            ("2026-12-01T06:31:02+02:00", Some(i128::from(NOW) * NANOS)),
            ("2026-12-01T01:01:02-03:30", Some(i128::from(NOW) * NANOS)),
            ("2026-02-30T00:00:00Z", None),
            ("2026-12-01 04:31:02Z", None),
            ("2026-12-01T04:31:02", None),
            ("2026-12-01T04:31:02.Z", None),
            ("not a time", None),
            ("", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_rfc3339(s), *want, "{s}");
        }
    }

    #[test]
    fn human_duration_matches_upstream_tests() {
        // k8s.io/apimachinery/pkg/util/duration/duration_test.go; sub-second cases rounded down to whole
        // seconds, which is all a second-precision timestamp can produce.
        let (m, h, d) = (60, 3600, 86_400);
        let y = 365 * d;
        let cases: &[(i64, &str)] = &[
            (1, "1s"),
            (70, "70s"),
            (190, "3m10s"),
            (70 * m, "70m"),
            (47 * h, "47h"),
            (49 * h, "2d1h"),
            ((8 * 24 + 2) * h, "8d"),
            (367 * d, "367d"),
            ((365 * 2 * 24 + 25) * h, "2y1d"),
            ((365 * 8 * 24 + 2) * h, "8y"),
            // TestHumanDurationBoundaries
            (-2, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (2 * m - 1, "119s"),
            (2 * m, "2m"),
            (2 * m + 1, "2m1s"),
            (10 * m - 1, "9m59s"),
            (10 * m, "10m"),
            (10 * m + 1, "10m"),
            (3 * h - 1, "179m"),
            (3 * h, "3h"),
            (3 * h + m, "3h1m"),
            (8 * h - 1, "7h59m"),
            (8 * h, "8h"),
            (8 * h + 59 * m, "8h"),
            (2 * d - 1, "47h"),
            (2 * d, "2d"),
            (2 * d + h, "2d1h"),
            (8 * d - 1, "7d23h"),
            (8 * d, "8d"),
            (8 * d + 23 * h, "8d"),
            (2 * y - 1, "729d"),
            (2 * y, "2y"),
            (2 * y + 23 * h, "2y"),
            (2 * y + 23 * h + 59 * m, "2y"),
            (2 * y + d - 1, "2y"),
            (2 * y + d, "2y1d"),
            (3 * y, "3y"),
            (7 * y, "7y"),
            (8 * y - 1, "7y364d"),
            (8 * y, "8y"),
            (8 * y + 364 * d, "8y"),
            (9 * y, "9y"),
            // The brief's examples.
            (5, "5s"),
            (200, "3m20s"),
            (45 * m, "45m"),
            (5 * h, "5h"),
            (2 * d + 3 * h, "2d3h"),
            (400 * d, "400d"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(*secs), *want, "{secs}s");
        }
    }

    #[test]
    fn fractional_timestamps_truncate_like_go() {
        // 1.5s old is "1s" in Go (int(d.Seconds())); 2.5s in the future is "<invalid>", 1.5s is "0s".
        let t = json!({"metadata": {"name": "a", "creationTimestamp": "2026-12-01T04:31:00.500000Z"}});
        assert_eq!(cells_of("ConfigMap", t)[2], "1s");
        let t = json!({"metadata": {"name": "a", "creationTimestamp": "2026-12-01T04:31:03.500000Z"}});
        assert_eq!(cells_of("ConfigMap", t)[2], "0s");
        let t = json!({"metadata": {"name": "a", "creationTimestamp": "2026-12-01T04:31:04.500000Z"}});
        assert_eq!(cells_of("ConfigMap", t)[2], "<invalid>");
        let t = json!({"metadata": {"name": "a"}});
        assert_eq!(cells_of("ConfigMap", t)[2], "<unknown>");
    }

    #[test]
    fn tier_policies_print_their_crds_columns() {
        let cnp = json!({"metadata": {"name": "deny-z", "creationTimestamp": "2026-12-01T04:30:02Z"},
                         "spec": {"tier": "Admin", "priority": 10}});
        assert_eq!(
            column_names("ClusterNetworkPolicy").iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["Name", "Tier", "Priority", "Age"]
        );
        let cells = cells_of("ClusterNetworkPolicy", cnp);
        assert_eq!(&cells[..3], &[json!("deny-z"), json!("Admin"), json!("10")]);
        let anp = json!({"metadata": {"name": "a"}, "spec": {}});
        assert_eq!(cells_of("AdminNetworkPolicy", anp)[1], Value::Null, "kubectl prints <none>");
        assert_eq!(column_names("BaselineAdminNetworkPolicy").len(), 2);
    }

    #[test]
    fn table_shape_and_row_metadata() {
        let meta = json!({"name": "web-1", "namespace": "prod", "uid": "u-1", "resourceVersion": "42",
                          "creationTimestamp": "2026-12-01T04:30:02Z", "labels": {"app": "web"},
                          "annotations": {"a": "b"}, "ownerReferences": [{"kind": "ReplicaSet", "name": "web"}]});
        let t = table("Pod", &[json!({"kind": "Pod", "metadata": meta, "spec": {}, "status": {}})], "122", NOW);
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["metadata"], json!({"resourceVersion": "122"}));
        assert_eq!(t["columnDefinitions"][0]["name"], "Name");
        assert_eq!(t["columnDefinitions"][0]["format"], "name");
        assert_eq!(t["columnDefinitions"][0]["type"], "string");
        assert_eq!(t["columnDefinitions"][0]["priority"], 0);
        assert_eq!(t["columnDefinitions"][5]["description"], POD_IP);
        let obj = &t["rows"][0]["object"];
        assert_eq!(obj["kind"], "PartialObjectMetadata");
        assert_eq!(obj["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(obj["metadata"], meta);
        assert!(t["rows"][0].get("conditions").is_none());
        // Empty list, no RV, object without metadata.
        let t = table("Widget", &[json!({"spec": 1})], "", NOW);
        assert_eq!(t["metadata"], json!({}));
        assert_eq!(t["rows"][0]["object"]["metadata"], json!({}));
        assert_eq!(t["rows"][0]["cells"], json!(["", "<unknown>"]));
    }

    #[test]
    fn rows_carry_what_include_object_asks_for() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"},
                         "spec": {"nodeName": "node-0"}, "status": {}});
        let rendered = |include, rv, columns| -> Value {
            serde_json::from_slice(&TableWriter::new("Pod", NOW, include).table([&pod], rv, columns)).unwrap()
        };
        let whole = rendered(IncludeObject::Object, "7", true);
        assert_eq!(whole["rows"][0]["object"], pod);
        assert_eq!(whole["metadata"], json!({"resourceVersion": "7"}));
        assert!(rendered(IncludeObject::None, "7", true)["rows"][0].get("object").is_none());
        let partial = rendered(IncludeObject::Metadata, "7", true);
        assert_eq!(partial["rows"][0]["object"]["metadata"], pod["metadata"]);
        assert_eq!(partial, table("Pod", [&pod], "7", NOW));
        // Watch events: no column definitions, no version.
        let event = rendered(IncludeObject::Metadata, "", false);
        assert_eq!(event["columnDefinitions"], Value::Null);
        assert_eq!(event["metadata"], json!({}));
        assert_eq!(event["rows"], partial["rows"]);
        assert_eq!(IncludeObject::parse(None), Ok(IncludeObject::Metadata));
        assert_eq!(IncludeObject::parse(Some("Object")), Ok(IncludeObject::Object));
        assert_eq!(IncludeObject::parse(Some("None")), Ok(IncludeObject::None));
        let err = IncludeObject::parse(Some("All")).unwrap_err();
        assert!(err.starts_with("includeObject: Unsupported value: \"All\""), "{err}");
    }

    #[test]
    fn column_definitions_per_kind() {
        let cases: &[(&str, &[(&str, i64)])] = &[
            (
                "Pod",
                &[
                    ("Name", 0),
                    ("Ready", 0),
                    ("Status", 0),
                    ("Restarts", 0),
                    ("Age", 0),
                    ("IP", 1),
                    ("Node", 1),
                    ("Nominated Node", 1),
                    ("Readiness Gates", 1),
                ],
            ),
            ("Namespace", &[("Name", 0), ("Status", 0), ("Age", 0)]),
            (
                "Node",
                &[
                    ("Name", 0),
                    ("Status", 0),
                    ("Roles", 0),
                    ("Age", 0),
                    ("Version", 0),
                    ("Internal-IP", 1),
                    ("External-IP", 1),
                    ("OS-Image", 1),
                    ("Kernel-Version", 1),
                    ("Container-Runtime", 1),
                ],
            ),
            (
                "Service",
                &[
                    ("Name", 0),
                    ("Type", 0),
                    ("Cluster-IP", 0),
                    ("External-IP", 0),
                    ("Port(s)", 0),
                    ("Age", 0),
                    ("Selector", 1),
                ],
            ),
            ("Endpoints", &[("Name", 0), ("Endpoints", 0), ("Age", 0)]),
            ("EndpointSlice", &[("Name", 0), ("AddressType", 0), ("Ports", 0), ("Endpoints", 0), ("Age", 0)]),
            (
                "Deployment",
                &[
                    ("Name", 0),
                    ("Ready", 0),
                    ("Up-to-date", 0),
                    ("Available", 0),
                    ("Age", 0),
                    ("Containers", 1),
                    ("Images", 1),
                    ("Selector", 1),
                ],
            ),
            (
                "ReplicaSet",
                &[
                    ("Name", 0),
                    ("Desired", 0),
                    ("Current", 0),
                    ("Ready", 0),
                    ("Age", 0),
                    ("Containers", 1),
                    ("Images", 1),
                    ("Selector", 1),
                ],
            ),
            ("StatefulSet", &[("Name", 0), ("Ready", 0), ("Age", 0), ("Containers", 1), ("Images", 1)]),
            (
                "DaemonSet",
                &[
                    ("Name", 0),
                    ("Desired", 0),
                    ("Current", 0),
                    ("Ready", 0),
                    ("Up-to-date", 0),
                    ("Available", 0),
                    ("Node Selector", 0),
                    ("Age", 0),
                    ("Containers", 1),
                    ("Images", 1),
                    ("Selector", 1),
                ],
            ),
            (
                "Job",
                &[
                    ("Name", 0),
                    ("Status", 0),
                    ("Completions", 0),
                    ("Duration", 0),
                    ("Age", 0),
                    ("Containers", 1),
                    ("Images", 1),
                    ("Selector", 1),
                ],
            ),
            (
                "CronJob",
                &[
                    ("Name", 0),
                    ("Schedule", 0),
                    ("Timezone", 0),
                    ("Suspend", 0),
                    ("Active", 0),
                    ("Last Schedule", 0),
                    ("Age", 0),
                    ("Containers", 1),
                    ("Images", 1),
                    ("Selector", 1),
                ],
            ),
            ("NetworkPolicy", &[("Name", 0), ("Pod-Selector", 0), ("Age", 0)]),
            (
                "Event",
                &[
                    ("Last Seen", 0),
                    ("Type", 0),
                    ("Reason", 0),
                    ("Object", 0),
                    ("Subobject", 1),
                    ("Source", 1),
                    ("Message", 0),
                    ("First Seen", 1),
                    ("Count", 1),
                    ("Name", 1),
                ],
            ),
            ("ConfigMap", &[("Name", 0), ("Data", 0), ("Age", 0)]),
            ("Secret", &[("Name", 0), ("Type", 0), ("Data", 0), ("Age", 0)]),
            ("ServiceAccount", &[("Name", 0), ("Secrets", 0), ("Age", 0)]),
            ("ClusterNetworkPolicy", &[("Name", 0), ("Tier", 0), ("Priority", 0), ("Age", 0)]),
            ("AdminNetworkPolicy", &[("Name", 0), ("Priority", 0), ("Age", 0)]),
            // A kind without a printer: what the apiextensions server gives a CRD without printer columns.
            ("Widget", &[("Name", 0), ("Age", 0)]),
        ];
        for (kind, want) in cases {
            let want: Vec<(String, i64)> = want.iter().map(|(n, p)| (n.to_string(), *p)).collect();
            assert_eq!(column_names(kind), want, "{kind}");
            // Every kind's cells line up with its columns.
            let t = table(kind, &[json!({"metadata": {"name": "x"}})], "", NOW);
            assert_eq!(t["rows"][0]["cells"].as_array().map(Vec::len), Some(want.len()), "{kind} cells");
        }
        let t = table("Widget", &[], "", NOW);
        assert_eq!(t["columnDefinitions"][1]["type"], "date");
        assert_eq!(t["columnDefinitions"][1]["description"], META_CREATION);
    }

    fn running(name: &str, ready: bool, restarts: i64) -> Value {
        json!({"name": name, "ready": ready, "restartCount": restarts, "started": true,
               "state": {"running": {"startedAt": "2026-12-01T04:00:00Z"}}})
    }

    #[test]
    fn pod_cells_follow_upstream() {
        let meta = json!({"name": "web-abc12", "namespace": "default", "creationTimestamp": "2026-12-01T04:26:02Z"});
        let spec2 = json!({"nodeName": "node-1", "containers": [{"name": "a"}, {"name": "b"}]});
        let cases: Vec<(&str, Value, Value)> = vec![
            (
                "running and ready",
                json!({"metadata": meta, "spec": spec2,
                       "status": {"phase": "Running", "podIP": "10.244.0.11", "podIPs": [{"ip": "10.244.0.11"}],
                                  "conditions": [{"type": "Ready", "status": "True"}],
                                  "containerStatuses": [running("a", true, 0), running("b", true, 0)]}}),
                json!(["web-abc12", "2/2", "Running", "0", "5m", "10.244.0.11", "node-1", "<none>", "<none>"]),
            ),
            (
                "pending, unscheduled",
                json!({"metadata": meta, "spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Pending"}}),
                json!(["web-abc12", "0/1", "Pending", "0", "5m", "<none>", "<none>", "<none>", "<none>"]),
            ),
            (
                "podIP without podIPs",
                json!({"metadata": meta, "spec": {"containers": [{"name": "a"}]},
                       "status": {"phase": "Running", "podIP": "10.0.0.5"}}),
                json!(["web-abc12", "0/1", "Running", "0", "5m", "10.0.0.5", "<none>", "<none>", "<none>"]),
            ),
            (
                "crash loop with last restart",
                json!({"metadata": meta, "spec": spec2,
                       "status": {"phase": "Running", "containerStatuses": [
                           running("a", true, 1),
                           {"name": "b", "ready": false, "restartCount": 3,
                            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                            "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                                         "finishedAt": "2026-12-01T04:30:02Z"}}}]}}),
                json!([
                    "web-abc12",
                    "1/2",
                    "CrashLoopBackOff",
                    "4 (60s ago)",
                    "5m",
                    "<none>",
                    "node-1",
                    "<none>",
                    "<none>"
                ]),
            ),
            (
                "completed with a sidecar-less container still running and Ready",
                json!({"metadata": meta, "spec": spec2,
                       "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                                  "containerStatuses": [
                                      {"name": "a", "ready": false, "restartCount": 0,
                                       "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                                      running("b", true, 0)]}}),
                json!(["web-abc12", "1/2", "Running", "0", "5m", "<none>", "node-1", "<none>", "<none>"]),
            ),
            (
                "completed, another still running, not Ready",
                json!({"metadata": meta, "spec": spec2,
                       "status": {"phase": "Running", "containerStatuses": [
                                      {"name": "a", "ready": false, "restartCount": 0,
                                       "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                                      running("b", true, 0)]}}),
                json!(["web-abc12", "1/2", "NotReady", "0", "5m", "<none>", "node-1", "<none>", "<none>"]),
            ),
            (
                "terminated without reason, by signal",
                json!({"metadata": meta, "spec": {"containers": [{"name": "a"}]},
                       "status": {"phase": "Failed", "containerStatuses": [
                           {"name": "a", "restartCount": 0, "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}}),
                json!(["web-abc12", "0/1", "Signal:9", "0", "5m", "<none>", "<none>", "<none>", "<none>"]),
            ),
            (
                "succeeded",
                json!({"metadata": meta, "spec": {"containers": [{"name": "a"}]},
                       "status": {"phase": "Succeeded", "containerStatuses": [
                           {"name": "a", "restartCount": 0,
                            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}}),
                json!(["web-abc12", "0/1", "Completed", "0", "5m", "<none>", "<none>", "<none>", "<none>"]),
            ),
            (
                "init container running",
                json!({"metadata": meta,
                       "spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}]},
                       "status": {"phase": "Pending", "initContainerStatuses": [
                           {"name": "i1", "restartCount": 0, "state": {"terminated": {"exitCode": 0}}},
                           {"name": "i2", "restartCount": 2, "state": {"running": {}}}],
                           "containerStatuses": [{"name": "a", "restartCount": 5,
                                                  "state": {"waiting": {"reason": "PodInitializing"}}}]}}),
                json!(["web-abc12", "0/1", "Init:1/2", "2", "5m", "<none>", "<none>", "<none>", "<none>"]),
            ),
            (
                "init container failed",
                json!({"metadata": meta, "spec": {"initContainers": [{"name": "i1"}], "containers": [{"name": "a"}]},
                       "status": {"phase": "Pending", "initContainerStatuses": [
                           {"name": "i1", "restartCount": 1, "state": {"terminated": {"exitCode": 2}}}]}}),
                json!(["web-abc12", "0/1", "Init:ExitCode:2", "1", "5m", "<none>", "<none>", "<none>", "<none>"]),
            ),
            (
                "init container waiting",
                json!({"metadata": meta, "spec": {"initContainers": [{"name": "i1"}], "containers": [{"name": "a"}]},
                       "status": {"phase": "Pending", "initContainerStatuses": [
                           {"name": "i1", "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}}),
                json!(["web-abc12", "0/1", "Init:ImagePullBackOff", "0", "5m", "<none>", "<none>", "<none>", "<none>"]),
            ),
            (
                "sidecar init container counts as a container",
                json!({"metadata": meta,
                       "spec": {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
                                "containers": [{"name": "a"}]},
                       "status": {"phase": "Running",
                                  "conditions": [{"type": "Initialized", "status": "True"}],
                                  "initContainerStatuses": [
                                      {"name": "proxy", "ready": true, "started": true, "restartCount": 1,
                                       "state": {"running": {}},
                                       "lastState": {"terminated": {"exitCode": 1,
                                                                    "finishedAt": "2026-12-01T03:31:02Z"}}}],
                                  "containerStatuses": [running("a", true, 0)]}}),
                json!(["web-abc12", "2/2", "Running", "1 (60m ago)", "5m", "<none>", "<none>", "<none>", "<none>"]),
            ),
            (
                "terminating",
                json!({"metadata": {"name": "web-abc12", "creationTimestamp": "2026-12-01T04:26:02Z",
                                    "deletionTimestamp": "2026-12-01T04:31:32Z"},
                       "spec": {"containers": [{"name": "a"}]},
                       "status": {"phase": "Running", "containerStatuses": [running("a", true, 0)]}}),
                json!(["web-abc12", "1/1", "Terminating", "0", "5m", "<none>", "<none>", "<none>", "<none>"]),
            ),
            (
                "node lost",
                json!({"metadata": {"name": "web-abc12", "creationTimestamp": "2026-12-01T04:26:02Z",
                                    "deletionTimestamp": "2026-12-01T04:31:32Z"},
                       "spec": {"containers": [{"name": "a"}]},
                       "status": {"phase": "Running", "reason": "NodeLost"}}),
                json!(["web-abc12", "0/1", "Unknown", "0", "5m", "<none>", "<none>", "<none>", "<none>"]),
            ),
            (
                "evicted (status reason), scheduling gated, readiness gates",
                json!({"metadata": meta,
                       "spec": {"containers": [{"name": "a"}],
                                "readinessGates": [{"conditionType": "x/ok"}, {"conditionType": "x/lb"}]},
                       "status": {"phase": "Pending", "nominatedNodeName": "node-2",
                                  "conditions": [{"type": "PodScheduled", "status": "False",
                                                  "reason": "SchedulingGated"},
                                                 {"type": "x/ok", "status": "True"},
                                                 {"type": "x/lb", "status": "False"}]}}),
                json!(["web-abc12", "0/1", "SchedulingGated", "0", "5m", "<none>", "<none>", "node-2", "1/2"]),
            ),
        ];
        for (name, pod, want) in cases {
            assert_eq!(Value::Array(cells_of("Pod", pod)), want, "{name}");
        }
    }

    #[test]
    fn completed_pods_carry_row_conditions() {
        let pod = json!({"metadata": {"name": "p"}, "status": {"phase": "Failed"}});
        let t = table("Pod", &[pod], "1", NOW);
        assert_eq!(
            t["rows"][0]["conditions"],
            json!([{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}])
        );
    }

    #[test]
    fn other_kinds_cells_follow_upstream() {
        let created = "2026-11-29T01:31:02Z"; // 2d3h ago
        let m = |name: &str| json!({"name": name, "namespace": "default", "creationTimestamp": created});
        let template = json!({"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"},
                                                      {"name": "log", "image": "busybox"}]}});
        let cases: Vec<(&str, Value, Value)> = vec![
            (
                "Namespace",
                json!({"metadata": m("dev"), "status": {"phase": "Active"}}),
                json!(["dev", "Active", "2d3h"]),
            ),
            (
                "Node",
                json!({"metadata": {"name": "n1", "creationTimestamp": created,
                                    "labels": {"node-role.kubernetes.io/control-plane": "",
                                               "node-role.kubernetes.io/": "", "kubernetes.io/role": "worker"}},
                       "spec": {"unschedulable": true},
                       "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                                 {"type": "Ready", "status": "True"}],
                                  "addresses": [{"type": "Hostname", "address": "n1"},
                                                {"type": "InternalIP", "address": "172.18.0.2"}],
                                  "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Debian GNU/Linux 12",
                                               "kernelVersion": "6.1.0", "containerRuntimeVersion": ""}}}),
                json!([
                    "n1",
                    "Ready,SchedulingDisabled",
                    "control-plane,worker",
                    "2d3h",
                    "v1.32.0",
                    "172.18.0.2",
                    "<none>",
                    "Debian GNU/Linux 12",
                    "6.1.0",
                    "<unknown>"
                ]),
            ),
            (
                "Node",
                json!({"metadata": {"name": "n2", "creationTimestamp": created},
                       "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}),
                json!([
                    "n2",
                    "NotReady",
                    "<none>",
                    "2d3h",
                    "",
                    "<none>",
                    "<none>",
                    "<unknown>",
                    "<unknown>",
                    "<unknown>"
                ]),
            ),
            (
                "Node",
                json!({"metadata": {"name": "n3"}}),
                json!([
                    "n3",
                    "Unknown",
                    "<none>",
                    "<unknown>",
                    "",
                    "<none>",
                    "<none>",
                    "<unknown>",
                    "<unknown>",
                    "<unknown>"
                ]),
            ),
            (
                "Service",
                json!({"metadata": m("web"), "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10",
                       "clusterIPs": ["10.96.0.10"], "selector": {"tier": "fe", "app": "web"},
                       "ports": [{"port": 80, "protocol": "TCP"}, {"port": 9090, "protocol": "TCP"}]}}),
                json!(["web", "ClusterIP", "10.96.0.10", "<none>", "80/TCP,9090/TCP", "2d3h", "app=web,tier=fe"]),
            ),
            (
                "Service",
                json!({"metadata": m("np"), "spec": {"type": "NodePort", "clusterIPs": ["10.96.1.1"],
                       "externalIPs": ["1.2.3.4", "5.6.7.8"],
                       "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"},
                                 {"port": 53, "protocol": "UDP"}]}}),
                json!(["np", "NodePort", "10.96.1.1", "1.2.3.4,5.6.7.8", "80:30080/TCP,53/UDP", "2d3h", "<none>"]),
            ),
            (
                "Service",
                json!({"metadata": m("lb"), "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.2.2"],
                       "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]}, "status": {"loadBalancer": {}}}),
                json!(["lb", "LoadBalancer", "10.96.2.2", "<pending>", "443:31443/TCP", "2d3h", "<none>"]),
            ),
            (
                "Service",
                json!({"metadata": m("lb2"), "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.2.3"],
                       "externalIPs": ["9.9.9.9"], "ports": []},
                       "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"},
                                                               {"hostname": "a-very-long-name.elb.example.com"},
                                                               {"ip": "203.0.113.1"}]}}}),
                json!([
                    "lb2",
                    "LoadBalancer",
                    "10.96.2.3",
                    "203.0.113.1,203.0.113.9,a-very-long-name.elb.example.com,9.9.9.9",
                    "<none>",
                    "2d3h",
                    "<none>"
                ]),
            ),
            (
                "Service",
                json!({"metadata": m("ext"), "spec": {"type": "ExternalName", "externalName": "db.example.com"}}),
                json!(["ext", "ExternalName", "<none>", "db.example.com", "<none>", "2d3h", "<none>"]),
            ),
            (
                "Service",
                json!({"metadata": m("headless"), "spec": {"type": "ClusterIP", "clusterIP": "None",
                       "clusterIPs": ["None"], "ports": [{"port": 5432, "protocol": "TCP"}]}}),
                json!(["headless", "ClusterIP", "None", "<none>", "5432/TCP", "2d3h", "<none>"]),
            ),
            (
                "Endpoints",
                json!({"metadata": m("web"), "subsets": [
                    {"addresses": [{"ip": "10.244.0.5"}, {"ip": "10.244.0.6"}],
                     "notReadyAddresses": [{"ip": "10.244.0.9"}],
                     "ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9090}]}]}),
                json!(["web", "10.244.0.5:8080,10.244.0.6:8080,10.244.0.5:9090 + 1 more...", "2d3h"]),
            ),
            (
                "Endpoints",
                json!({"metadata": m("v6"), "subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]},
                                                         {"addresses": [{"ip": "10.0.0.1"}]}]}),
                json!(["v6", "[fd00::1]:80,10.0.0.1", "2d3h"]),
            ),
            ("Endpoints", json!({"metadata": m("none")}), json!(["none", "<none>", "2d3h"])),
            (
                "Endpoints",
                json!({"metadata": m("notready"), "subsets": [{"notReadyAddresses": [{"ip": "10.0.0.1"}],
                                                                "ports": [{"port": 80}]}]}),
                json!(["notready", "", "2d3h"]),
            ),
            (
                "EndpointSlice",
                json!({"metadata": m("web-abcde"), "addressType": "IPv4",
                       "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "named"}, {}, {"port": 1}],
                       "endpoints": [{"addresses": ["10.244.0.5"]}, {"addresses": ["10.244.0.6", "10.244.0.7"]},
                                     {"addresses": ["10.244.0.8"]}, {"addresses": ["10.244.0.9"]}]}),
                json!([
                    "web-abcde",
                    "IPv4",
                    "8080,named,* + 1 more...",
                    "10.244.0.5,10.244.0.6,10.244.0.7 + 2 more...",
                    "2d3h"
                ]),
            ),
            (
                "EndpointSlice",
                json!({"metadata": m("empty"), "addressType": "IPv6", "ports": null, "endpoints": []}),
                json!(["empty", "IPv6", "<unset>", "<unset>", "2d3h"]),
            ),
            (
                "Deployment",
                json!({"metadata": m("web"), "spec": {"replicas": 3,
                       "selector": {"matchLabels": {"app": "web"},
                                    "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["qa", "dev"]},
                                                         {"key": "canary", "operator": "DoesNotExist"}]},
                       "template": template},
                       "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}),
                json!([
                    "web",
                    "2/3",
                    3,
                    2,
                    "2d3h",
                    "nginx,log",
                    "nginx:1.27,busybox",
                    "app=web,!canary,env notin (dev,qa)"
                ]),
            ),
            (
                "Deployment",
                json!({"metadata": m("fresh"), "spec": {"selector": {"matchLabels": {"app": "x"}}}, "status": {}}),
                json!(["fresh", "0/1", 0, 0, "2d3h", "", "", "app=x"]),
            ),
            (
                "Deployment",
                json!({"metadata": m("bad"), "spec": {"replicas": 0,
                       "selector": {"matchExpressions": [{"key": "a", "operator": "Bogus"}]}}}),
                json!(["bad", "0/0", 0, 0, "2d3h", "", "", "<invalid>"]),
            ),
            (
                "ReplicaSet",
                json!({"metadata": m("web-5d9c"), "spec": {"replicas": 3,
                       "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d9c"}}, "template": template},
                       "status": {"replicas": 3, "readyReplicas": 1}}),
                json!([
                    "web-5d9c",
                    3,
                    3,
                    1,
                    "2d3h",
                    "nginx,log",
                    "nginx:1.27,busybox",
                    "app=web,pod-template-hash=5d9c"
                ]),
            ),
            (
                "ReplicationController",
                json!({"metadata": m("rc"), "spec": {"replicas": 2, "selector": {"app": "web"}, "template": template},
                       "status": {"replicas": 2, "readyReplicas": 2}}),
                json!(["rc", 2, 2, 2, "2d3h", "nginx,log", "nginx:1.27,busybox", "app=web"]),
            ),
            (
                "StatefulSet",
                json!({"metadata": m("db"), "spec": {"replicas": 3, "template": template},
                       "status": {"readyReplicas": 1}}),
                json!(["db", "1/3", "2d3h", "nginx,log", "nginx:1.27,busybox"]),
            ),
            (
                "DaemonSet",
                json!({"metadata": m("agent"), "spec": {"selector": {"matchLabels": {"app": "agent"}},
                       "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                                             "containers": [{"name": "agent", "image": "palisade/agent:1"}]}}},
                       "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                                  "updatedNumberScheduled": 3, "numberAvailable": 2}}),
                json!([
                    "agent",
                    3,
                    3,
                    2,
                    3,
                    2,
                    "kubernetes.io/os=linux",
                    "2d3h",
                    "agent",
                    "palisade/agent:1",
                    "app=agent"
                ]),
            ),
            (
                "DaemonSet",
                json!({"metadata": m("bare"), "spec": {"template": {"spec": {"containers": []}}}}),
                json!(["bare", 0, 0, 0, 0, 0, "<none>", "2d3h", "", "", "<none>"]),
            ),
            (
                "Job",
                json!({"metadata": m("pi"), "spec": {"completions": 1, "parallelism": 1,
                       "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
                       "template": {"spec": {"containers": [{"name": "pi", "image": "perl:5.34"}]}}},
                       "status": {"succeeded": 1, "startTime": "2026-11-29T01:31:02Z",
                                  "completionTime": "2026-11-29T01:31:47Z",
                                  "conditions": [{"type": "SuccessCriteriaMet", "status": "True"},
                                                 {"type": "Complete", "status": "True"}]}}),
                json!([
                    "pi",
                    "Complete",
                    "1/1",
                    "45s",
                    "2d3h",
                    "pi",
                    "perl:5.34",
                    "batch.kubernetes.io/controller-uid=u1"
                ]),
            ),
            (
                "Job",
                json!({"metadata": m("work"), "spec": {"parallelism": 3, "template": {"spec": {"containers": []}}},
                       "status": {"succeeded": 2, "startTime": "2026-12-01T04:28:52Z"}}),
                json!(["work", "Running", "2/1 of 3", "2m10s", "2d3h", "", "", "<none>"]),
            ),
            (
                "Job",
                json!({"metadata": m("new"), "spec": {"completions": 5},
                       "status": {"conditions": [{"type": "Failed", "status": "False"},
                                                 {"type": "Suspended", "status": "True"}]}}),
                json!(["new", "Suspended", "0/5", "", "2d3h", "", "", "<none>"]),
            ),
            (
                "Job",
                json!({"metadata": {"name": "gone", "creationTimestamp": created,
                                    "deletionTimestamp": "2026-12-01T04:31:02Z"},
                       "status": {"conditions": [{"type": "FailureTarget", "status": "True"}]}}),
                json!(["gone", "Terminating", "0/1", "", "2d3h", "", "", "<none>"]),
            ),
            (
                "Job",
                json!({"metadata": m("fail"), "status": {"conditions": [{"type": "Failed", "status": "True"}]}}),
                json!(["fail", "Failed", "0/1", "", "2d3h", "", "", "<none>"]),
            ),
            (
                "CronJob",
                json!({"metadata": m("hello"), "spec": {"schedule": "*/5 * * * *", "suspend": false,
                       "jobTemplate": {"spec": {"template": {"spec": {"containers": [
                           {"name": "hello", "image": "busybox:1.28"}]}}}}},
                       "status": {"active": [{"name": "hello-1"}], "lastScheduleTime": "2026-12-01T04:30:00Z"}}),
                json!(["hello", "*/5 * * * *", "<none>", "False", 1, "62s", "2d3h", "hello", "busybox:1.28", "<none>"]),
            ),
            (
                "CronJob",
                json!({"metadata": m("tz"), "spec": {"schedule": "0 0 * * *", "timeZone": "Etc/UTC", "suspend": true}}),
                json!(["tz", "0 0 * * *", "Etc/UTC", "True", 0, "<none>", "2d3h", "", "", "<none>"]),
            ),
            (
                "NetworkPolicy",
                json!({"metadata": m("allow"), "spec": {"podSelector": {"matchLabels": {"app": "web"},
                       "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]},
                                            {"key": "zone", "operator": "Exists"}]}}}),
                json!(["allow", "app=web,tier in (be,fe),zone", "2d3h"]),
            ),
            (
                "NetworkPolicy",
                json!({"metadata": m("deny"), "spec": {"podSelector": {}}}),
                json!(["deny", "<none>", "2d3h"]),
            ),
            ("NetworkPolicy", json!({"metadata": m("bare"), "spec": {}}), json!(["bare", "<none>", "2d3h"])),
            (
                "NetworkPolicy",
                json!({"metadata": m("bad"), "spec": {"podSelector": {"matchLabels": {"bad key!": "x"}}}}),
                json!(["bad", "<error>", "2d3h"]),
            ),
            (
                "Event",
                json!({"metadata": m("web.1"), "type": "Normal", "reason": "Scheduled",
                       "message": "Successfully assigned default/web to n1\n",
                       "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{a}"},
                       "source": {"component": "default-scheduler"}, "count": 3,
                       "firstTimestamp": "2026-12-01T04:21:02Z", "lastTimestamp": "2026-12-01T04:30:02Z"}),
                json!([
                    "60s",
                    "Normal",
                    "Scheduled",
                    "pod/web",
                    "spec.containers{a}",
                    "default-scheduler",
                    "Successfully assigned default/web to n1",
                    "10m",
                    3,
                    "web.1"
                ]),
            ),
            (
                "Event",
                json!({"metadata": m("new.1"), "type": "Warning", "reason": "BackOff", "message": "m",
                       "involvedObject": {"kind": "Node"}, "reportingComponent": "kubelet",
                       "reportingInstance": "n1", "eventTime": "2026-12-01T04:26:02.123456Z",
                       "series": {"count": 7, "lastObservedTime": "2026-12-01T04:31:00.000000Z"}}),
                // 4m59.88s: Go truncates to whole seconds.
                json!(["2s", "Warning", "BackOff", "node", "", "kubelet, n1", "m", "4m59s", 7, "new.1"]),
            ),
            (
                "Event",
                json!({"metadata": m("bare.1"), "involvedObject": {"kind": "Pod", "name": "p"},
                       "source": {"component": "c", "host": "h"}}),
                json!(["<unknown>", "", "", "pod/p", "", "c, h", "", "<unknown>", 1, "bare.1"]),
            ),
            (
                "ConfigMap",
                json!({"metadata": m("cfg"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}),
                json!(["cfg", 3, "2d3h"]),
            ),
            (
                "Secret",
                json!({"metadata": m("tls"), "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}}),
                json!(["tls", "kubernetes.io/tls", 2, "2d3h"]),
            ),
            ("ServiceAccount", json!({"metadata": m("default")}), json!(["default", 0, "2d3h"])),
            (
                "ServiceAccount",
                json!({"metadata": m("builder"), "secrets": [{"name": "builder-token"}]}),
                json!(["builder", 1, "2d3h"]),
            ),
            (
                "ClusterNetworkPolicy",
                json!({"metadata": {"name": "cnp", "creationTimestamp": "2025-12-01T04:31:02Z"},
                       "spec": {"tier": "Baseline", "priority": 0}}),
                json!(["cnp", "Baseline", "0", "365d"]),
            ),
            (
                "Widget",
                json!({"metadata": {"name": "w", "creationTimestamp": "2025-12-01T04:31:02Z"}}),
                json!(["w", "365d"]),
            ),
        ];
        for (kind, obj, want) in cases {
            let name = obj.pointer("/metadata/name").cloned();
            assert_eq!(Value::Array(cells_of(kind, obj)), want, "{kind} {name:?}");
        }
    }

    #[test]
    fn bad_input_never_panics() {
        let junk = [
            json!(null),
            json!(42),
            json!("x"),
            json!([]),
            json!({"metadata": "x", "spec": 7, "status": []}),
            json!({"metadata": {"name": 5, "creationTimestamp": 5}, "spec": {"containers": "x", "replicas": "x",
                   "selector": {"matchLabels": {"a": 1}}, "ports": [null]},
                   "status": {"containerStatuses": [null, 1], "conditions": [1],
                              "initContainerStatuses": [{"state": {"terminated": 1}}]}}),
        ];
        for kind in [
            "Pod",
            "Namespace",
            "Node",
            "Service",
            "Endpoints",
            "EndpointSlice",
            "Deployment",
            "ReplicaSet",
            "ReplicationController",
            "StatefulSet",
            "DaemonSet",
            "Job",
            "CronJob",
            "NetworkPolicy",
            "Event",
            "ConfigMap",
            "Secret",
            "ServiceAccount",
            "Other",
        ] {
            let t = table(kind, &junk, "1", NOW);
            assert_eq!(t["rows"].as_array().map(Vec::len), Some(junk.len()), "{kind}");
        }
    }

    /// Writes Tables for a kubectl check against a throwaway server, when `HTABLE_DUMP_DIR` is set:
    /// `<dir>/<kind>.json` per kind, ages computed against the current clock.
    #[test]
    fn dump_tables_for_kubectl() {
        let Ok(dir) = std::env::var("HTABLE_DUMP_DIR") else { return };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(NOW);
        let ago = |secs: i64| {
            // Format now - secs back as RFC 3339 by searching the day count (tests only).
            let t = now - secs;
            let (days, rem) = (t.div_euclid(86_400), t.rem_euclid(86_400));
            let mut y = 1970;
            while days_from_civil(y + 1, 1, 1) <= days {
                y += 1;
            }
            let mut mo = 1;
            while mo < 12 && days_from_civil(y, mo + 1, 1) <= days {
                mo += 1;
            }
            let d = days - days_from_civil(y, mo, 1) + 1;
            format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
        };
        let meta = |name: &str, ns: &str, secs: i64, labels: Value| {
            json!({"name": name, "namespace": ns, "uid": format!("uid-{name}"), "resourceVersion": "100",
                   "creationTimestamp": ago(secs), "labels": labels})
        };
        let pods = vec![
            json!({"metadata": meta("web-5d9c-abc12", "default", 300, json!({"app": "web", "pod-template-hash": "5d9c"})),
                   "spec": {"nodeName": "node-1", "containers": [{"name": "nginx", "image": "nginx:1.27"}]},
                   "status": {"phase": "Running", "podIP": "10.244.0.11", "podIPs": [{"ip": "10.244.0.11"}],
                              "conditions": [{"type": "Ready", "status": "True"}],
                              "containerStatuses": [{"name": "nginx", "ready": true, "restartCount": 0,
                                                     "state": {"running": {"startedAt": ago(290)}}}]}}),
            json!({"metadata": meta("crash", "default", 7_500, json!({"app": "crash"})),
                   "spec": {"nodeName": "node-1", "containers": [{"name": "a", "image": "busybox"}]},
                   "status": {"phase": "Running", "podIPs": [{"ip": "10.244.0.12"}],
                              "containerStatuses": [{"name": "a", "ready": false, "restartCount": 4,
                                  "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                                  "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                                               "finishedAt": ago(75)}}}]}}),
            json!({"metadata": meta("coredns-x", "kube-system", 200_000, json!({"k8s-app": "kube-dns"})),
                   "spec": {"nodeName": "node-1", "containers": [{"name": "coredns", "image": "coredns:1.11"}]},
                   "status": {"phase": "Pending"}}),
        ];
        let deploys = vec![json!({"metadata": meta("web", "default", 300, json!({"app": "web"})),
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}},
            "status": {"replicas": 3, "readyReplicas": 1, "updatedReplicas": 3, "availableReplicas": 1}})];
        let svcs = vec![
            json!({"metadata": meta("kubernetes", "default", 200_000, json!({"component": "apiserver"})),
                   "spec": {"type": "ClusterIP", "clusterIPs": ["10.96.0.1"],
                            "ports": [{"port": 443, "protocol": "TCP"}]}}),
            json!({"metadata": meta("web", "default", 300, json!({"app": "web"})),
                   "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.5.5"], "selector": {"app": "web"},
                            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"},
                                      {"port": 9090, "nodePort": 30090, "protocol": "TCP"}]}}),
        ];
        let write = |name: &str, kind: &str, objs: &[Value]| {
            let body = table(kind, objs, "123", now).to_string();
            assert!(std::fs::write(format!("{dir}/{name}.json"), body).is_ok(), "write {name}");
        };
        let default_pods: Vec<Value> =
            pods.iter().filter(|p| p["metadata"]["namespace"] == "default").cloned().collect();
        write("pods-default", "Pod", &default_pods);
        write("pods-all", "Pod", &pods);
        write("deployments-default", "Deployment", &deploys);
        write("services-default", "Service", &svcs);
    }
}
