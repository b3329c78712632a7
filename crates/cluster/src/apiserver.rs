//! The API server: the Kubernetes REST API over the store, for the real kubectl and kube-rs.
//!
//! What is served is what `KUBECTL-API` (the project's fact sheet) found clients need: aggregated and legacy
//! discovery, a minimal OpenAPI v3 that declares `fieldValidation`, CRUD with the apiserver's defaulting,
//! validation and Status errors, client-side (strategic merge) and server-side apply, Tables for `get`,
//! watches resumable by resourceVersion (`410 Gone` past the window), `scale` and `status` subresources,
//! graceful deletion of Pods and Namespaces, and `exec` over WebSocket. TLS and a bearer token guard it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::resources::{self, RESOURCES, Resource};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{self, EventType, Store, StoreError, now_rfc3339, ns_name, parse_rv, random_suffix};
use crate::table::{IncludeObject, TableWriter};

/// The version the sandbox reports: kubectl's version dispatcher picks its bundled binary by this minor.
pub const SERVER_MINOR: &str = "32";

/// Runs commands inside pods (exec), and knows nothing else of the kubelet.
pub trait PodRuntime: Send + Sync + 'static {
    /// The command that runs `argv` inside the pod's network namespace with the pod's resolver.
    fn exec_command(&self, namespace: &str, pod: &str, argv: &[String]) -> Result<tokio::process::Command, String>;
}

/// Everything requests share.
pub struct ApiState {
    pub store: Store,
    pub token: String,
    /// Server-side apply: what each field manager applied last, per object.
    applied: Mutex<HashMap<(String, String, String, String), Value>>,
    pub runtime: Option<Arc<dyn PodRuntime>>,
    /// The service CIDR's allocator state lives in the store (Services' clusterIPs); this lock serialises
    /// allocation.
    alloc: Mutex<()>,
    /// How often watches with bookmarks get one.
    pub bookmark_every: Duration,
    /// Bumped to end every open watch stream (fault tests: a dropped watch; clients resume from their last
    /// resourceVersion, and get `410 Gone` if the store was compacted past it).
    watch_epoch: tokio::sync::watch::Sender<u64>,
    /// Bumped when the API server "restarts": every connection ends at once.
    restarts: tokio::sync::watch::Sender<u64>,
    /// Until when a restarting API server refuses connections (closes them on accept).
    down_until: Mutex<Option<std::time::Instant>>,
}

impl ApiState {
    pub fn new(store: Store, token: String, runtime: Option<Arc<dyn PodRuntime>>) -> Arc<ApiState> {
        Arc::new(ApiState {
            store,
            token,
            applied: Mutex::new(HashMap::new()),
            runtime,
            alloc: Mutex::new(()),
            bookmark_every: Duration::from_secs(5),
            watch_epoch: tokio::sync::watch::Sender::new(0),
            restarts: tokio::sync::watch::Sender::new(0),
            down_until: Mutex::new(None),
        })
    }

    /// Behaves as an API server restart (fault tests): every open connection ends (watches included), and
    /// for `down` new connections are closed as soon as they are accepted. The store (etcd) keeps everything.
    pub fn restart(&self, down: Duration) {
        *self.down_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(std::time::Instant::now() + down);
        self.restarts.send_modify(|e| *e += 1);
    }

    fn is_down(&self) -> bool {
        self.down_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|t| std::time::Instant::now() < t)
    }

    /// Ends every open watch stream, as an API server restart or a proxy timeout would.
    pub fn drop_watches(&self) {
        self.watch_epoch.send_modify(|e| *e += 1);
    }
}

/// An error as the apiserver answers it: a `Status` object.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { code, reason, message: message.into(), details: None }
    }
    pub fn bad_request(m: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", m)
    }
    pub fn not_found(r: &Resource, name: &str) -> ApiError {
        ApiError {
            details: Some(json!({"name": name, "group": r.group, "kind": r.plural})),
            ..ApiError::new(404, "NotFound", format!("{} \"{name}\" not found", r.qualified()))
        }
    }
    fn conflict(r: &Resource, name: &str) -> ApiError {
        ApiError {
            details: Some(json!({"name": name, "group": r.group, "kind": r.plural})),
            ..ApiError::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                    r.qualified()
                ),
            )
        }
    }
    fn exists(r: &Resource, name: &str) -> ApiError {
        ApiError {
            details: Some(json!({"name": name, "group": r.group, "kind": r.plural})),
            ..ApiError::new(409, "AlreadyExists", format!("{} \"{name}\" already exists", r.qualified()))
        }
    }
    /// 422 with one cause per field error, as kubectl prints them.
    pub fn invalid(r: &Resource, name: &str, causes: Vec<Value>) -> ApiError {
        let list: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c["field"].as_str().unwrap_or(""), c["message"].as_str().unwrap_or("")))
            .collect();
        let gk = if r.group.is_empty() { r.kind.to_owned() } else { format!("{}.{}", r.kind, r.group) };
        ApiError {
            details: Some(json!({"name": name, "group": r.group, "kind": r.kind, "causes": causes})),
            ..ApiError::new(422, "Invalid", format!("{gk} \"{name}\" is invalid: [{}]", list.join(", ")))
        }
    }

    pub fn status(&self) -> Value {
        let mut s = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                           "message": self.message, "reason": self.reason, "code": self.code});
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(code, &self.status())
    }
}

fn json_response(code: StatusCode, v: &Value) -> Response {
    let mut r = (code, v.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

type ApiResult<T = Response> = Result<T, ApiError>;

/// The router: everything goes through one handler that parses Kubernetes paths itself.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// Serves the API with TLS on `listener` until the task is dropped.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<tokio_rustls::rustls::ServerConfig>,
    state: Arc<ApiState>,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let app = router(state.clone());
    loop {
        let (tcp, _) = listener.accept().await?;
        if state.is_down() {
            continue;
        }
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let mut restarted = state.restarts.subscribe();
        tokio::spawn(async move {
            let serve = async {
                let Ok(stream) = acceptor.accept(tcp).await else { return };
                let io = hyper_util::rt::TokioIo::new(stream);
                let svc = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).with_upgrades().await;
            };
            // A restart ends the connection (dropping it closes the socket).
            tokio::select! {
                () = serve => {}
                _ = restarted.changed() => {}
            }
        });
    }
}

/// A parsed query string (repeated keys kept in order).
#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        let decode =
            |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
        Query(
            q.unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str())
    }
    fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1"))
    }
}

/// What a resource path names.
#[derive(Debug, Clone)]
pub struct Target {
    pub resource: &'static Resource,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
}

fn parse_path(path: &str) -> Option<Result<Target, ApiError>> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] if !rest.is_empty() => ("", *v, rest),
        ["apis", g, v, rest @ ..] if !rest.is_empty() => (*g, *v, rest),
        _ => return None,
    };
    let unknown = |plural: &str| {
        Some(Err(ApiError::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({plural})"),
        )))
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..] if resources::find(group, version, plural).is_some() => {
            (Some((*ns).to_owned()), [&[*plural][..], tail].concat())
        }
        _ => (None, rest.to_vec()),
    };
    let Some(resource) = resources::find(group, version, rest[0]) else { return unknown(rest[0]) };
    if rest.len() > 3 {
        return unknown(rest[0]);
    }
    Some(Ok(Target {
        resource,
        namespace,
        name: rest.get(1).map(|s| (*s).to_owned()),
        sub: rest.get(2).map(|s| (*s).to_owned()),
    }))
}

fn authorized(state: &ApiState, headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| constant_time_eq(t.trim().as_bytes(), state.token.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn wants_table(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("as=Table"))
}

/// For a GET that asks for a Table, what its rows carry of their objects.
fn table_request(headers: &HeaderMap, q: &Query) -> ApiResult<Option<IncludeObject>> {
    if !wants_table(headers) {
        return Ok(None);
    }
    IncludeObject::parse(q.get("includeObject")).map(Some).map_err(ApiError::bad_request)
}

fn bytes_response(code: StatusCode, body: Vec<u8>) -> Response {
    let mut r = (code, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

async fn handle(State(state): State<Arc<ApiState>>, req: Request) -> Response {
    if !authorized(&state, req.headers()) {
        return ApiError::new(401, "Unauthorized", "Unauthorized").into_response();
    }
    let path = req.uri().path().to_owned();
    let query = Query::parse(req.uri().query());
    let method = req.method().clone();
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    // Discovery, version and OpenAPI.
    match (method.clone(), path.as_str()) {
        (Method::GET, "/version") => {
            return json_response(
                StatusCode::OK,
                &json!({"major": "1", "minor": SERVER_MINOR, "gitVersion": format!("v1.{SERVER_MINOR}.0-palisade"),
                        "gitCommit": "palisade", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                        "goVersion": "go1.23", "compiler": "gc", "platform": "linux/amd64"}),
            );
        }
        (Method::GET, "/api" | "/apis") => {
            let core = path == "/api";
            if accept.contains("as=APIGroupDiscoveryList") {
                let mut r = (StatusCode::OK, resources::aggregated(core).to_string()).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"),
                );
                return r;
            }
            let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
            let body = if core { resources::api_versions(host) } else { resources::api_group_list() };
            return json_response(StatusCode::OK, &body);
        }
        (Method::GET, "/openapi/v3") => {
            return json_response(StatusCode::OK, &resources::openapi_root(OPENAPI_HASH));
        }
        (Method::GET, "/healthz" | "/readyz" | "/livez") => return (StatusCode::OK, "ok").into_response(),
        _ => {}
    }
    if let Some(gv) = path.strip_prefix("/openapi/v3/") {
        let (g, v) = match gv.split('/').collect::<Vec<_>>().as_slice() {
            ["api", v] => ("", *v),
            ["apis", g, v] => (*g, *v),
            _ => ("?", "?"),
        };
        return match resources::openapi_group_version(g, v) {
            Some(doc) => json_response(StatusCode::OK, &doc),
            None => ApiError::new(404, "NotFound", "the server could not find the requested resource").into_response(),
        };
    }
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    if method == Method::GET {
        let listing = match segs.as_slice() {
            ["api", v] => resources::resource_list("", v),
            ["apis", g, v] => resources::resource_list(g, v),
            _ => None,
        };
        if let Some(l) = listing {
            return json_response(StatusCode::OK, &l);
        }
    }
    let target = match parse_path(&path) {
        Some(Ok(t)) => t,
        Some(Err(e)) => return e.into_response(),
        None => {
            return ApiError::new(404, "NotFound", "the server could not find the requested resource").into_response();
        }
    };
    if target.sub.as_deref() == Some("exec") || target.sub.as_deref() == Some("attach") {
        return exec(state, target, query, req).await;
    }
    let headers = req.headers().clone();
    let body = match axum::body::to_bytes(req.into_body(), 64 << 20).await {
        Ok(b) => b,
        Err(e) => return ApiError::bad_request(format!("reading the request body: {e}")).into_response(),
    };
    match dispatch(&state, &method, &target, &query, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Bumped when the OpenAPI documents change, so kubectl's cache refetches them.
const OPENAPI_HASH: &str = "palisade0001";

async fn dispatch(
    state: &Arc<ApiState>,
    method: &Method,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult {
    let r = t.resource;
    if r.namespaced && t.namespace.is_none() && t.name.is_some() {
        return Err(ApiError::new(404, "NotFound", "the server could not find the requested resource"));
    }
    match (method, t.name.as_deref(), t.sub.as_deref()) {
        (&Method::GET, None, _) if q.flag("watch") => watch(state.clone(), t, q, table_request(headers, q)?),
        (&Method::GET, None, _) => list(state, t, q, table_request(headers, q)?),
        (&Method::GET, Some(name), None) => {
            let obj = get(state, t, name)?;
            if let Some(include) = table_request(headers, q)? {
                let table = TableWriter::new(r.kind, now_secs(), include).table([&obj], "", true);
                return Ok(bytes_response(StatusCode::OK, table));
            }
            Ok(json_response(StatusCode::OK, &obj))
        }
        (&Method::GET, Some(name), Some("status")) => Ok(json_response(StatusCode::OK, &get(state, t, name)?)),
        (&Method::GET, Some(name), Some("scale")) => {
            Ok(json_response(StatusCode::OK, &scale_of(r, &get(state, t, name)?)))
        }
        (&Method::GET, Some(name), Some("log")) => {
            get(state, t, name)?;
            let mut resp = (StatusCode::OK, "").into_response();
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            Ok(resp)
        }
        (&Method::POST, None, None) => {
            let obj = decode_body(headers, body)?;
            let created = create(state, t, obj, q)?;
            Ok(json_response(StatusCode::CREATED, &created))
        }
        (&Method::PUT, Some(name), sub) => {
            let obj = decode_body(headers, body)?;
            let updated = update(state, t, name, sub, obj, q)?;
            Ok(json_response(StatusCode::OK, &updated))
        }
        (&Method::PATCH, Some(name), sub) => {
            let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            let (obj, created) = patch(state, t, name, sub, ctype, body, q)?;
            Ok(json_response(if created { StatusCode::CREATED } else { StatusCode::OK }, &obj))
        }
        (&Method::DELETE, Some(name), None) => {
            let opts: Value =
                if body.is_empty() { json!({}) } else { serde_json::from_slice(body).unwrap_or(json!({})) };
            let grace =
                q.get("gracePeriodSeconds").and_then(|g| g.parse::<i64>().ok()).or(opts["gracePeriodSeconds"].as_i64());
            Ok(json_response(StatusCode::OK, &delete(state, t, name, grace, q.get("dryRun").is_some())?))
        }
        (&Method::DELETE, None, None) => {
            let sel = label_selector(q)?;
            let fsel = field_selector(q)?;
            let (items, _) = state.store.list(&r.key(), t.namespace.as_deref());
            for o in items.iter().filter(|o| sel.matches(o) && fsel.matches(o)) {
                let (_, name) = ns_name(o);
                let _ = delete(state, t, &name, None, false);
            }
            Ok(json_response(
                StatusCode::OK,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
            ))
        }
        _ => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )),
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

fn label_selector(q: &Query) -> ApiResult<LabelSelector> {
    LabelSelector::parse(q.get("labelSelector").unwrap_or("")).map_err(ApiError::bad_request)
}

fn field_selector(q: &Query) -> ApiResult<FieldSelector> {
    FieldSelector::parse(q.get("fieldSelector").unwrap_or("")).map_err(ApiError::bad_request)
}

fn get(state: &ApiState, t: &Target, name: &str) -> ApiResult<Value> {
    state
        .store
        .get(&t.resource.key(), t.namespace.as_deref().unwrap_or(""), name)
        .map(Arc::unwrap_or_clone)
        .ok_or_else(|| ApiError::not_found(t.resource, name))
}

fn list(state: &ApiState, t: &Target, q: &Query, table: Option<IncludeObject>) -> ApiResult {
    let r = t.resource;
    let sel = label_selector(q)?;
    let fsel = field_selector(q)?;
    let (items, rv) = state.store.list(&r.key(), t.namespace.as_deref());
    let selected = move |o: &Value| sel.matches(o) && fsel.matches(o);
    let mut head = Vec::new();
    let body = match table {
        Some(include) => {
            let writer = TableWriter::new(r.kind, now_secs(), include);
            writer.head(&mut head, &rv.to_string(), true);
            list_body(head, items, selected, move |out, o, first| writer.row(out, o, first))
        }
        None => {
            let mut list = json!({"kind": format!("{}List", r.kind), "apiVersion": r.api_version(),
                                  "metadata": {"resourceVersion": rv.to_string()}})
            .to_string();
            list.truncate(list.len() - 1);
            list.push_str(",\"items\":[");
            head = list.into_bytes();
            list_body(head, items, selected, |out, o, first| {
                if !first {
                    out.push(b',');
                }
                let written = serde_json::to_writer(out, o);
                debug_assert!(written.is_ok(), "writing to memory cannot fail");
            })
        }
    };
    let mut resp = Response::new(body);
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// A list's response: `head`, the selected items written by `write` (given whether it is the first), then
/// the end of the list, made a chunk at a time as the connection sends it, so the list is never whole in
/// memory (neither as values nor as text).
fn list_body(
    head: Vec<u8>,
    items: Vec<Arc<Value>>,
    selected: impl Fn(&Value) -> bool + Send + 'static,
    write: impl Fn(&mut Vec<u8>, &Value, bool) + Send + 'static,
) -> Body {
    const CHUNK: usize = 64 << 10;
    let mut items = items.into_iter().filter(move |o| selected(o));
    let mut buf = head;
    let mut first = true;
    let mut done = false;
    let chunks = std::iter::from_fn(move || {
        if done {
            return None;
        }
        while buf.len() < CHUNK {
            let Some(o) = items.next() else {
                // A Table's rows and a list's items both end the document.
                buf.extend_from_slice(b"]}");
                done = true;
                break;
            };
            write(&mut buf, &o, first);
            first = false;
        }
        let chunk = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK + CHUNK / 4));
        Some(Ok::<Bytes, std::io::Error>(Bytes::from(chunk)))
    });
    Body::from_stream(futures::stream::iter(chunks))
}

fn decode_body(headers: &HeaderMap, body: &Bytes) -> ApiResult<Value> {
    let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if ctype.starts_with("application/vnd.kubernetes.protobuf") {
        return crate::protobuf::decode(body).map_err(|e| ApiError::bad_request(e.to_string()));
    }
    parse_doc(body)
}

fn parse_doc(body: &[u8]) -> ApiResult<Value> {
    let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the request body is not UTF-8"))?;
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return Ok(v);
    }
    serde_saphyr::from_str::<Value>(text).map_err(|e| ApiError::bad_request(format!("error decoding the body: {e}")))
}

/// Checks that the object fits the URL: kind, apiVersion, namespace, name.
fn check_identity(t: &Target, obj: &mut Value, name: Option<&str>) -> ApiResult<()> {
    let r = t.resource;
    if !obj.is_object() {
        return Err(ApiError::bad_request("the body is not an object"));
    }
    let kind = obj["kind"].as_str().unwrap_or(r.kind).to_owned();
    let api = obj["apiVersion"].as_str().unwrap_or("").to_owned();
    if kind != r.kind || (!api.is_empty() && api != r.api_version()) {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api}) does not match the expected API version ({})",
            r.api_version()
        )));
    }
    obj["kind"] = json!(r.kind);
    obj["apiVersion"] = json!(r.api_version());
    if obj.get("metadata").is_none_or(|m| !m.is_object()) {
        obj["metadata"] = json!({});
    }
    let meta = &mut obj["metadata"];
    if r.namespaced {
        let url_ns = t.namespace.clone().unwrap_or_else(|| "default".into());
        match meta["namespace"].as_str() {
            Some(ns) if !ns.is_empty() && ns != url_ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => meta["namespace"] = json!(url_ns),
        }
    } else if let Some(m) = meta.as_object_mut() {
        m.remove("namespace");
    }
    if let Some(n) = name {
        match meta["name"].as_str() {
            Some(x) if x != n => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({x}) does not match the name on the URL ({n})"
                )));
            }
            _ => meta["name"] = json!(n),
        }
    }
    Ok(())
}

/// Defaulting, strict decoding, validation: the part of a write every verb shares. `old` is the stored
/// object on updates.
fn admit(state: &ApiState, t: &Target, obj: &mut Value, old: Option<&Value>, q: &Query) -> ApiResult<()> {
    let r = t.resource;
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_owned();
    if q.get("fieldValidation") == Some("Strict") {
        match crate::strategy::unknown_fields(r.kind, obj) {
            Ok(unknown) if !unknown.is_empty() => {
                let list: Vec<String> = unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
                return Err(ApiError::bad_request(format!(
                    "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                    r.kind,
                    r.version,
                    r.kind,
                    list.join(", ")
                )));
            }
            Ok(_) => {}
            Err(e) => {
                return Err(ApiError::bad_request(format!(
                    "{} in version \"{}\" cannot be handled as a {}: {e}",
                    r.kind, r.version, r.kind
                )));
            }
        }
    }
    crate::strategy::default(r.kind, obj);
    if r.kind == "Service" {
        allocate_cluster_ip(state, obj, old).map_err(|causes| ApiError::invalid(r, &name, causes))?;
    }
    let mut causes: Vec<Value> = crate::strategy::validate(r.kind, obj, old).iter().map(|e| e.cause()).collect();
    if r.kind == "NetworkPolicy" {
        causes.extend(validate_network_policy(obj));
    }
    if r.group == palisade_engine::cnp::GROUP {
        causes.extend(validate_tier_policy(r, obj));
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(r, &name, causes));
    }
    Ok(())
}

fn validate_network_policy(obj: &Value) -> Vec<Value> {
    use palisade_engine::field::ErrorType;
    let np: k8s_openapi::api::networking::v1::NetworkPolicy = match serde_json::from_value(obj.clone()) {
        Ok(p) => p,
        Err(e) => return vec![json!({"reason": "FieldValueInvalid", "message": e.to_string(), "field": "spec"})],
    };
    palisade_engine::validate::validate_network_policy(&np)
        .into_iter()
        .filter(|e| !e.field.as_str().starts_with("metadata."))
        .map(|e| {
            let reason = match e.kind {
                ErrorType::Required => "FieldValueRequired",
                ErrorType::Forbidden => "FieldValueForbidden",
                ErrorType::Invalid(_) => "FieldValueInvalid",
                ErrorType::NotSupported { .. } => "FieldValueNotSupported",
            };
            let text = e.to_string();
            let message = text.strip_prefix(&format!("{}: ", e.field)).unwrap_or(&text).to_owned();
            json!({"reason": reason, "message": message, "field": e.field.as_str()})
        })
        .collect()
}

/// A tier policy validated by the engine as the apiserver validates it with the CRD installed (schema and
/// CEL rules); the checks the engine makes beyond the CRD (label-selector syntax) refuse the object too,
/// saying so, since the agents would skip it. Metadata is `strategy`'s.
fn validate_tier_policy(r: &Resource, obj: &Value) -> Vec<Value> {
    let decoded = palisade_engine::cnp::decode_cluster_object(r.kind, &r.api_version(), obj.clone());
    let object = match decoded {
        Ok(o) => o,
        Err(e) => return vec![json!({"reason": "FieldValueInvalid", "message": e, "field": "spec"})],
    };
    palisade_engine::cnp::validate::validate_cluster_object(&object)
        .into_iter()
        .filter(|e| !e.field.as_str().starts_with("metadata."))
        .map(|e| {
            let reason = [
                ("Required value", "FieldValueRequired"),
                ("Unsupported value", "FieldValueNotSupported"),
                ("Duplicate value", "FieldValueDuplicate"),
                ("Forbidden", "FieldValueForbidden"),
                ("Too long", "FieldValueTooLong"),
                ("Too many", "FieldValueTooMany"),
            ]
            .iter()
            .find(|(prefix, _)| e.message.starts_with(prefix))
            .map_or("FieldValueInvalid", |(_, reason)| reason);
            let mut message = e.message.clone();
            if e.stricter {
                message.push_str(" (Palisade refuses this; the apiserver with the CRD accepts it)");
            }
            json!({"reason": reason, "message": message, "field": e.field.as_str()})
        })
        .collect()
}

/// The first address of the service range and its size: 10.96.0.0/16.
const SERVICE_NET: [u8; 2] = [10, 96];

/// Gives a Service its clusterIP (kept on updates; `None` for headless).
fn allocate_cluster_ip(state: &ApiState, obj: &mut Value, old: Option<&Value>) -> Result<(), Vec<Value>> {
    let _guard = state.alloc.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let spec = &mut obj["spec"];
    if spec["type"] == "ExternalName" {
        return Ok(());
    }
    if let Some(old) = old {
        if spec["clusterIP"].as_str().is_none_or(str::is_empty) {
            spec["clusterIP"] = old["spec"]["clusterIP"].clone();
            spec["clusterIPs"] = old["spec"]["clusterIPs"].clone();
        }
        return Ok(());
    }
    let requested = spec["clusterIP"].as_str().unwrap_or("").to_owned();
    if requested == "None" {
        spec["clusterIPs"] = json!(["None"]);
        return Ok(());
    }
    let mut used = std::collections::BTreeSet::new();
    state.store.for_each("/services", |s| {
        if let Some(ip) = s["spec"]["clusterIP"].as_str() {
            used.insert(ip.to_owned());
        }
    });
    let ip = if requested.is_empty() {
        // Dynamic addresses from the upper part of the range, as the apiserver prefers; the low part stays
        // for static ones (10.96.0.1 kubernetes, 10.96.0.10 DNS).
        let mut found = None;
        for n in 256u32..65_534 {
            let cand = format!("{}.{}.{}.{}", SERVICE_NET[0], SERVICE_NET[1], n >> 8, n & 0xff);
            if !used.contains(&cand) {
                found = Some(cand);
                break;
            }
        }
        found.ok_or_else(|| {
            vec![json!({"reason": "FieldValueInvalid", "field": "spec.clusterIPs",
                "message": "Internal error: failed to allocate a serviceIP: range is full"})]
        })?
    } else {
        let in_range = requested
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| a.octets()[0] == SERVICE_NET[0] && a.octets()[1] == SERVICE_NET[1]);
        if !in_range {
            return Err(vec![json!({"reason": "FieldValueInvalid", "field": "spec.clusterIPs",
                "message": format!("Invalid value: []string{{\"{requested}\"}}: failed to allocate IP {requested}: the provided IP ({requested}) is not in the valid range. The range of valid IPs is 10.96.0.0/16")})]);
        }
        if used.contains(&requested) {
            return Err(vec![json!({"reason": "FieldValueInvalid", "field": "spec.clusterIPs",
                "message": format!("Invalid value: []string{{\"{requested}\"}}: failed to allocate IP {requested}: provided IP is already allocated")})]);
        }
        requested
    };
    spec["clusterIP"] = json!(ip);
    spec["clusterIPs"] = json!([ip]);
    spec["ipFamilies"] = json!(["IPv4"]);
    Ok(())
}

/// Kinds whose status only the status subresource (controllers, the kubelet) writes.
fn has_status(r: &Resource) -> bool {
    r.subresources.iter().any(|s| s.name == "status")
}

fn fresh_status(kind: &str) -> Value {
    match kind {
        "Pod" => json!({"phase": "Pending", "qosClass": "BestEffort"}),
        "Namespace" => json!({"phase": "Active"}),
        "Service" => json!({"loadBalancer": {}}),
        _ => json!({}),
    }
}

fn store_err(r: &Resource, name: &str, e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found(r, name),
        StoreError::AlreadyExists => ApiError::exists(r, name),
        StoreError::Conflict => ApiError::conflict(r, name),
        StoreError::Expired { .. } => ApiError::new(410, "Expired", e.to_string()),
        StoreError::BadVersion(_) => ApiError::bad_request(e.to_string()),
    }
}

fn check_namespace(state: &ApiState, t: &Target) -> ApiResult<()> {
    if !t.resource.namespaced {
        return Ok(());
    }
    let ns = t.namespace.as_deref().unwrap_or("default");
    match state.store.get("/namespaces", "", ns) {
        None => Err(ApiError {
            details: Some(json!({"name": ns, "kind": "namespaces"})),
            ..ApiError::new(404, "NotFound", format!("namespaces \"{ns}\" not found"))
        }),
        Some(n) if store::terminating(&n) => Err(ApiError::new(
            403,
            "Forbidden",
            format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                t.resource.qualified(),
                ""
            ),
        )),
        Some(_) => Ok(()),
    }
}

/// Creates an object as the apiserver does: identity, generateName, defaults, validation, then the store.
pub fn create(state: &ApiState, t: &Target, mut obj: Value, q: &Query) -> ApiResult<Value> {
    let r = t.resource;
    check_identity(t, &mut obj, None)?;
    let meta = &mut obj["metadata"];
    if meta["name"].as_str().is_none_or(str::is_empty) {
        match meta["generateName"].as_str() {
            Some(g) if !g.is_empty() => meta["name"] = json!(format!("{g}{}", random_suffix(5))),
            _ => {
                return Err(ApiError::invalid(
                    r,
                    "",
                    vec![
                        json!({"reason": "FieldValueRequired", "message": "Required value: name or generateName is required", "field": "metadata.name"}),
                    ],
                ));
            }
        }
    }
    if let Some(m) = meta.as_object_mut() {
        for f in ["resourceVersion", "uid", "creationTimestamp", "deletionTimestamp", "generation", "managedFields"] {
            m.remove(f);
        }
        // Chosen before defaulting: a Job's generated selector and labels carry it.
        let r = random_suffix(32);
        let hex: String = r.bytes().map(|b| char::from(b"0123456789abcdef"[usize::from(b) % 16])).collect();
        m.insert(
            "uid".into(),
            json!(format!("{}-{}-4{}-8{}-{}", &hex[0..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32])),
        );
    }
    if r.kind == "Pod" {
        requested_pod_ips(&mut obj);
    }
    if has_status(r) {
        let keep = if r.kind == "Node" { obj.get("status").cloned() } else { None };
        obj["status"] = keep.unwrap_or_else(|| fresh_status(r.kind));
    }
    check_namespace(state, t)?;
    admit(state, t, &mut obj, None, q)?;
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_owned();
    if q.get("dryRun").is_some() {
        if state.store.get(&r.key(), t.namespace.as_deref().unwrap_or(""), &name).is_some() {
            return Err(ApiError::exists(r, &name));
        }
        return Ok(obj);
    }
    state.store.create(&r.key(), obj).map(Arc::unwrap_or_clone).map_err(|e| store_err(r, &name, e))
}

/// The annotation through which a manifest asks the sandbox's kubelet for pod addresses (its
/// `status.podIPs`, which the API server resets on create as the apiserver does): how ipBlock examples and
/// the conformance corpus pin addresses, like Calico's `cni.projectcalico.org/ipAddrs`.
pub const POD_IPS_ANNOTATION: &str = "sandbox.palisade.dev/pod-ips";

fn requested_pod_ips(pod: &mut Value) {
    let mut ips: Vec<String> = pod["status"]["podIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["ip"].as_str().map(str::to_owned))
        .collect();
    if ips.is_empty()
        && let Some(ip) = pod["status"]["podIP"].as_str()
    {
        ips.push(ip.to_owned());
    }
    if !ips.is_empty() && pod["metadata"]["annotations"][POD_IPS_ANNOTATION].is_null() {
        pod["metadata"]["annotations"][POD_IPS_ANNOTATION] = json!(ips.join(","));
    }
}

/// Writes `obj` over the stored `name`: the main resource keeps the stored status, the status subresource
/// changes only status.
fn update(state: &ApiState, t: &Target, name: &str, sub: Option<&str>, mut obj: Value, q: &Query) -> ApiResult<Value> {
    let r = t.resource;
    if sub == Some("scale") {
        let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(0);
        return set_replicas(state, t, name, replicas, q);
    }
    check_identity(t, &mut obj, Some(name))?;
    let old = get(state, t, name)?;
    let expected = match obj["metadata"]["resourceVersion"].as_str() {
        Some(v) => Some(parse_rv(v).map_err(|e| ApiError::bad_request(e.to_string()))?),
        None => None,
    };
    let mut new = if sub == Some("status") {
        let mut n = old.clone();
        n["status"] = obj["status"].clone();
        n
    } else {
        if has_status(r) {
            obj["status"] = old["status"].clone();
        }
        // Graceful deletion in progress is the server's, not the client's, to change.
        for f in ["deletionTimestamp", "deletionGracePeriodSeconds", "uid", "creationTimestamp"] {
            if let Some(v) = old["metadata"].get(f) {
                obj["metadata"][f] = v.clone();
            }
        }
        obj
    };
    if sub != Some("status") {
        admit(state, t, &mut new, Some(&old), q)?;
    }
    if q.get("dryRun").is_some() {
        return Ok(new);
    }
    state.store.update(&r.key(), new, expected).map(Arc::unwrap_or_clone).map_err(|e| store_err(r, name, e))
}

/// PATCH in every form kubectl sends; server-side apply creates what does not exist yet.
fn patch(
    state: &ApiState,
    t: &Target,
    name: &str,
    sub: Option<&str>,
    ctype: &str,
    body: &Bytes,
    q: &Query,
) -> ApiResult<(Value, bool)> {
    let r = t.resource;
    let ctype = ctype.split(';').next().unwrap_or("").trim();
    let existing = state.store.get(&r.key(), t.namespace.as_deref().unwrap_or(""), name);
    if ctype == "application/apply-patch+yaml" {
        let applied = parse_doc(body)?;
        let manager = q.get("fieldManager").unwrap_or("").to_owned();
        if manager.is_empty() {
            return Err(ApiError::bad_request("PATCH with the apply content type needs a fieldManager"));
        }
        let key = (r.key(), t.namespace.clone().unwrap_or_default(), name.to_owned(), manager);
        let last = state.applied.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key).cloned();
        let result = match &existing {
            None => {
                let created = create(state, t, applied.clone(), q)?;
                if q.get("dryRun").is_none() {
                    state.applied.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, applied);
                }
                return Ok((created, true));
            }
            Some(live) => crate::patch::apply_three_way(live, last.as_ref(), &applied, r.kind),
        };
        let mut result = result;
        result["metadata"]["resourceVersion"] =
            existing.as_ref().map_or(Value::Null, |e| e["metadata"]["resourceVersion"].clone());
        let out = update(state, t, name, sub, result, q)?;
        if q.get("dryRun").is_none() {
            state.applied.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, applied);
        }
        return Ok((out, false));
    }
    let Some(live) = existing else { return Err(ApiError::not_found(r, name)) };
    let patch_doc = parse_doc(body)?;
    if sub == Some("scale") {
        let mut scale = scale_of(r, &live);
        apply_patch_doc(&mut scale, &patch_doc, ctype, "Scale")?;
        let replicas = scale["spec"]["replicas"].as_i64().unwrap_or(0);
        return Ok((set_replicas(state, t, name, replicas, q)?, false));
    }
    let mut obj = (*live).clone();
    apply_patch_doc(&mut obj, &patch_doc, ctype, r.kind)?;
    // A patch that does not name a resourceVersion applies to whatever is stored.
    if patch_doc["metadata"].get("resourceVersion").is_none() {
        obj["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"].clone();
    }
    Ok((update(state, t, name, sub, obj, q)?, false))
}

fn apply_patch_doc(obj: &mut Value, patch_doc: &Value, ctype: &str, kind: &str) -> ApiResult<()> {
    match ctype {
        "application/merge-patch+json" => crate::patch::merge_patch(obj, patch_doc),
        "application/strategic-merge-patch+json" => {
            crate::patch::strategic_merge_patch(obj, patch_doc, kind)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
        }
        "application/json-patch+json" => {
            crate::patch::json_patch(obj, patch_doc).map_err(|e| ApiError::new(422, "Invalid", e.to_string()))?;
        }
        other => {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {other:?})"
                ),
            ));
        }
    }
    Ok(())
}

/// The `autoscaling/v1` Scale of a workload.
fn scale_of(r: &Resource, obj: &Value) -> Value {
    let sel = &obj["spec"]["selector"];
    let selector =
        if r.kind == "ReplicationController" { LabelSelector::from_map(sel) } else { LabelSelector::from_object(sel) };
    let m = &obj["metadata"];
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
           "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
                        "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
           "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(0)},
           "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector.to_query()}})
}

fn set_replicas(state: &ApiState, t: &Target, name: &str, replicas: i64, q: &Query) -> ApiResult<Value> {
    let r = t.resource;
    if !r.subresources.iter().any(|s| s.name == "scale") {
        return Err(ApiError::not_found(r, name));
    }
    if replicas < 0 {
        return Err(ApiError::invalid(
            r,
            name,
            vec![json!({"reason": "FieldValueInvalid", "field": "spec.replicas",
                        "message": format!("Invalid value: {replicas}: must be greater than or equal to 0")})],
        ));
    }
    let mut obj = get(state, t, name)?;
    obj["spec"]["replicas"] = json!(replicas);
    let out = if q.get("dryRun").is_some() {
        obj
    } else {
        state.store.update(&r.key(), obj, None).map(Arc::unwrap_or_clone).map_err(|e| store_err(r, name, e))?
    };
    Ok(scale_of(r, &out))
}

/// Deletes: Pods (once bound to a node) and Namespaces are marked and finished by their owners (the
/// kubelet, the namespace controller), everything else goes at once. The answer is the object.
pub fn delete(state: &ApiState, t: &Target, name: &str, grace: Option<i64>, dry_run: bool) -> ApiResult<Value> {
    let r = t.resource;
    let ns = t.namespace.as_deref().unwrap_or("");
    let obj = get(state, t, name)?;
    let graceful = match r.kind {
        "Namespace" => true,
        "Pod" => obj["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty()) && grace != Some(0),
        _ => false,
    };
    if dry_run {
        return Ok(obj);
    }
    if !graceful {
        return state.store.delete(&r.key(), ns, name).map(Arc::unwrap_or_clone).map_err(|e| store_err(r, name, e));
    }
    if store::terminating(&obj) {
        return Ok(obj);
    }
    state
        .store
        .modify(&r.key(), ns, name, |o| {
            o["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
            o["metadata"]["deletionGracePeriodSeconds"] = json!(grace.unwrap_or(if r.kind == "Pod" { 30 } else { 0 }));
            if r.kind == "Namespace" {
                o["status"]["phase"] = json!("Terminating");
            }
        })
        .map(Arc::unwrap_or_clone)
        .map_err(|e| store_err(r, name, e))
}

/// What a watch sees of one change (see `event_for`).
struct WatchFilter {
    target: Target,
    sel: LabelSelector,
    fsel: FieldSelector,
    table: Option<IncludeObject>,
}

/// As what a watch sees a change, from whether the object matches its selectors now and before (an object
/// that stops matching is DELETED for this watch, one that starts matching is ADDED).
fn seen_as(kind: EventType, now: bool, before: bool) -> Option<&'static str> {
    match kind {
        EventType::Added if now => Some("ADDED"),
        EventType::Modified if now && before => Some("MODIFIED"),
        EventType::Modified if now => Some("ADDED"),
        EventType::Modified if before => Some("DELETED"),
        EventType::Deleted if before || now => Some("DELETED"),
        _ => None,
    }
}

impl WatchFilter {
    fn concerns(&self, resource: &str, namespace: &str) -> bool {
        resource == self.target.resource.key() && self.target.namespace.as_deref().is_none_or(|n| n == namespace)
    }

    fn selects(&self, o: &Value) -> bool {
        self.sel.matches(o) && self.fsel.matches(o)
    }

    /// Whether a watch event concerns this watch, and as what.
    fn event_for(&self, ev: &store::Event) -> Option<&'static str> {
        if !self.concerns(&ev.resource, &ev.namespace) {
            return None;
        }
        seen_as(ev.kind, self.selects(&ev.object), ev.old.as_ref().is_some_and(|o| self.selects(o)))
    }

    /// The line this watch sends for a change, if any.
    fn event_line(&self, ev: &store::Event) -> Option<Line> {
        let kind = self.event_for(ev)?;
        Some(match self.table {
            // The text is made once per event, for every watch that sends it.
            None => watch_line(kind, ev.json().clone()),
            Some(_) => watch_line(kind, self.object_text(&ev.object)),
        })
    }

    /// The line for a change replayed from the store's window: without selectors or a Table, the stored
    /// text as it is (nothing parsed).
    fn replayed_line(&self, e: store::Replayed) -> Option<Line> {
        if !self.concerns(e.resource(), e.namespace()) {
            return None;
        }
        if self.sel.is_empty() && self.fsel.is_empty() && self.table.is_none() {
            return seen_as(e.kind(), true, e.has_old()).map(|kind| watch_line(kind, e.json().clone()));
        }
        self.event_line(&e.event())
    }

    /// The object as this watch sends it: itself, or a one-row Table.
    fn object_text(&self, obj: &Value) -> Bytes {
        Bytes::from(match self.table {
            Some(include) => TableWriter::new(self.target.resource.kind, now_secs(), include).table([obj], "", false),
            None => serde_json::to_vec(obj).unwrap_or_default(),
        })
    }
}

/// One watch event's line, in pieces: the object's JSON text is shared (an event's text with every watch
/// that sends it), never copied into a line of its own.
type Line = [Bytes; 3];

fn watch_line(kind: &str, object: Bytes) -> Line {
    let head: &'static [u8] = match kind {
        "ADDED" => b"{\"type\":\"ADDED\",\"object\":",
        "MODIFIED" => b"{\"type\":\"MODIFIED\",\"object\":",
        _ => b"{\"type\":\"DELETED\",\"object\":",
    };
    [Bytes::from_static(head), object, Bytes::from_static(b"}\n")]
}

/// Sends a line; false when the client has gone.
async fn send_line(tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>, line: Line) -> bool {
    for part in line {
        if tx.send(Ok(part)).await.is_err() {
            return false;
        }
    }
    true
}

/// What a watch sends before live events, turned into lines one at a time as the client takes them.
enum Initial {
    /// A synthetic ADDED per current object.
    Objects(Vec<Arc<Value>>),
    /// The events after the version the client gave.
    Events(Vec<store::Replayed>),
}

fn watch(state: Arc<ApiState>, t: &Target, q: &Query, table: Option<IncludeObject>) -> ApiResult {
    let r = t.resource;
    let filter = WatchFilter { target: t.clone(), sel: label_selector(q)?, fsel: field_selector(q)?, table };
    let from = parse_rv(q.get("resourceVersion").unwrap_or("")).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let initial = q.flag("sendInitialEvents") || from == 0;
    let bookmarks = q.flag("allowWatchBookmarks");
    let timeout = q.get("timeoutSeconds").and_then(|s| s.parse::<u64>().ok()).unwrap_or(1800).min(3600);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(256);
    // Replay from the store: a synthetic ADDED per current object, or the events after `from`.
    let (first, mut live, start_rv) = if initial {
        let (items, rv, live) = state.store.list_and_watch(&r.key(), t.namespace.as_deref());
        (Initial::Objects(items), live, rv)
    } else {
        match state.store.replay(from) {
            Ok((replay, live)) => {
                let last = replay.last().map_or(from, store::Replayed::rv);
                (Initial::Events(replay), live, last.max(from))
            }
            Err(e) => {
                let status = ApiError::new(410, "Expired", e.to_string()).status();
                let line = format!("{}\n", json!({"type": "ERROR", "object": status}));
                return Ok(stream_response(futures::stream::iter([Ok::<Bytes, std::io::Error>(Bytes::from(line))])));
            }
        }
    };
    let send_initial_end = q.flag("sendInitialEvents");
    let every = state.bookmark_every;
    let mut epoch = state.watch_epoch.subscribe();
    tokio::spawn(async move {
        match first {
            Initial::Objects(items) => {
                for o in items.iter().filter(|o| filter.selects(o)) {
                    if !send_line(&tx, watch_line("ADDED", filter.object_text(o))).await {
                        return;
                    }
                }
            }
            Initial::Events(replay) => {
                for line in replay.into_iter().filter_map(|e| filter.replayed_line(e)) {
                    if !send_line(&tx, line).await {
                        return;
                    }
                }
            }
        }
        let bookmark = |rv: u64, end: bool| {
            let mut meta = json!({"resourceVersion": rv.to_string()});
            if end {
                meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
            }
            Bytes::from(format!(
                "{}\n",
                json!({"type": "BOOKMARK", "object": {"kind": r.kind, "apiVersion": r.api_version(), "metadata": meta}})
            ))
        };
        let mut last_rv = start_rv;
        if send_initial_end && tx.send(Ok(bookmark(last_rv, true))).await.is_err() {
            return;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return,
                _ = epoch.changed() => return,
                _ = tick.tick(), if bookmarks => {
                    if tx.send(Ok(bookmark(last_rv, false))).await.is_err() { return; }
                }
                ev = live.recv() => {
                    let events = match ev {
                        Ok(ev) => vec![store::Replayed::Recent(ev)],
                        // Fell behind the channel: catch up from the store's window (which is longer), or
                        // end the stream when even that has moved on (the client resumes and gets 410).
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => match state.store.replay(last_rv) {
                            Ok((replay, rx)) => {
                                live = rx;
                                replay
                            }
                            Err(_) => return,
                        },
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    };
                    for e in events {
                        if e.rv() <= last_rv { continue; }
                        last_rv = e.rv();
                        if let Some(line) = filter.replayed_line(e)
                            && !send_line(&tx, line).await {
                            return;
                        }
                    }
                }
                () = tx.closed() => return,
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    Ok(stream_response(stream))
}

fn stream_response<S>(s: S) -> Response
where
    S: futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
{
    let mut resp = Response::new(Body::from_stream(s));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    resp
}

async fn exec(state: Arc<ApiState>, t: Target, q: Query, req: Request) -> Response {
    let r = t.resource;
    let name = t.name.clone().unwrap_or_default();
    let ns = t.namespace.clone().unwrap_or_default();
    let Some(pod) = state.store.get(&r.key(), &ns, &name) else { return ApiError::not_found(r, &name).into_response() };
    if t.sub.as_deref() == Some("attach") {
        return ApiError::bad_request(
            "attach is not supported by the sandbox: its pods run no container process; use kubectl exec POD -- CMD",
        )
        .into_response();
    }
    let opts = match crate::exec::ExecOptions::from_query(req.uri().query().unwrap_or("")) {
        Ok(o) => o,
        Err(e) => return ApiError::bad_request(e.to_string()).into_response(),
    };
    let containers: Vec<String> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect();
    if let Some(c) = &opts.container
        && !containers.contains(c)
    {
        return ApiError::bad_request(format!("container {c} is not valid for pod {name}")).into_response();
    }
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    if phase != "Running" {
        let msg = format!(
            "unable to upgrade connection: container not found (\"{}\")",
            containers.first().map_or("", String::as_str)
        );
        return ApiError::bad_request(msg).into_response();
    }
    let Some(runtime) = state.runtime.clone() else {
        return ApiError::new(500, "InternalError", "this API server runs no pods").into_response();
    };
    let (mut parts, _) = req.into_parts();
    let upgrade = match axum::extract::ws::WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(u) => u,
        Err(_) => {
            return ApiError::bad_request(format!(
                "exec needs a WebSocket upgrade with the {} subprotocol (kubectl 1.30 or newer)",
                crate::exec::PROTOCOL
            ))
            .into_response();
        }
    };
    let offered = parts
        .headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|p| p.trim() == crate::exec::PROTOCOL));
    if !offered {
        return ApiError::bad_request(format!("exec needs the WebSocket subprotocol {}", crate::exec::PROTOCOL))
            .into_response();
    }
    let _ = q;
    let cmd = match runtime.exec_command(&ns, &name, &opts.command) {
        Ok(c) => c,
        Err(e) => return ApiError::new(500, "InternalError", e).into_response(),
    };
    upgrade.protocols([crate::exec::PROTOCOL]).on_upgrade(move |socket| crate::exec::run(socket, cmd, opts))
}

/// Binds the API server's listener on 127.0.0.1 (port 0: any free port).
pub async fn bind(port: u16) -> std::io::Result<(TcpListener, SocketAddr)> {
    let l = TcpListener::bind(("127.0.0.1", port)).await?;
    let a = l.local_addr()?;
    Ok((l, a))
}

/// The targets of every served resource, for code that writes through the API's own rules (controllers).
pub fn target(r: &'static Resource, namespace: Option<&str>, name: Option<&str>) -> Target {
    Target { resource: r, namespace: namespace.map(str::to_owned), name: name.map(str::to_owned), sub: None }
}

/// All served resources (re-exported for callers that iterate them).
pub fn served() -> &'static [Resource] {
    RESOURCES
}
