//! `/healthz`, `/readyz`, `/metrics`, `/v1/pods/pending` and `/v1/flows` (axum).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;

/// What the probes report, updated by the reconcile loop.
#[derive(Debug, Default)]
pub struct Health {
    /// The first full sync is done.
    pub ready: AtomicBool,
    /// Unix milliseconds of the reconcile loop's last turn.
    pub heartbeat_ms: AtomicU64,
    /// Local pods not enforced yet, as the loop last saw them.
    pub pending: std::sync::Mutex<Vec<crate::reconcile::PendingPod>>,
}

/// The loop is considered stuck (liveness fails) when it has not turned for this long.
pub const STUCK_AFTER: Duration = Duration::from_secs(30);

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Health {
    pub fn beat(&self) {
        self.heartbeat_ms.store(unix_ms(), Ordering::Relaxed);
    }
}

type Flows = Arc<palisade_observe::SharedRing<palisade_observe::FlowRecord>>;

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    flows: Option<Flows>,
}

pub fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    router_with_flows(metrics, health, None)
}

/// The router, with `/v1/flows` served from the flow log's ring when there is one.
pub fn router_with_flows(metrics: Arc<Metrics>, health: Arc<Health>, flows: Option<Flows>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/v1/pods/pending", get(pending_pods))
        .route("/v1/flows", get(flows_ndjson))
        .with_state(AppState { metrics, health, flows })
}

/// `?since=<cursor>&follow=1`.
#[derive(Debug, serde::Deserialize)]
struct FlowQuery {
    since: Option<u64>,
    follow: Option<String>,
}

/// The header carrying the cursor to resume after the records of a response.
pub const CURSOR_HEADER: &str = "x-palisade-cursor";
/// Records per page of the ring.
const PAGE: usize = 1024;

fn ndjson(items: &[(u64, palisade_observe::FlowRecord)]) -> String {
    let mut out = String::new();
    for (_, r) in items {
        if let Ok(line) = serde_json::to_string(r) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// The flow records after `since` (every record kept when absent) as NDJSON, the cursor to resume from in
/// `x-palisade-cursor`; with `follow`, the response stays open and records follow as they are published
/// (from `since`, or from now).
async fn flows_ndjson(
    State(s): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<FlowQuery>,
) -> axum::response::Response {
    let Some(ring) = s.flows else {
        return (StatusCode::NOT_FOUND, "the flow log is off on this agent (--flow-log=false, or no NFLOG)\n")
            .into_response();
    };
    let follow = q.follow.as_deref().is_some_and(|f| matches!(f, "1" | "true" | "yes"));
    // Following without a cursor streams only what comes next.
    let since = q.since.unwrap_or_else(|| if follow { ring.latest() } else { 0 });
    if !follow {
        let mut cursor = since;
        let mut body = String::new();
        loop {
            let page = ring.after(cursor, PAGE);
            if page.items.is_empty() {
                break;
            }
            body.push_str(&ndjson(&page.items));
            cursor = page.next;
        }
        let headers = [
            (header::CONTENT_TYPE, "application/x-ndjson".to_owned()),
            (header::HeaderName::from_static(CURSOR_HEADER), cursor.to_string()),
        ];
        return (headers, body).into_response();
    }
    let stream = futures::stream::unfold((ring, since), |(ring, cursor)| async move {
        let r = Arc::clone(&ring);
        let page =
            tokio::task::spawn_blocking(move || r.wait_after(cursor, PAGE, Duration::from_secs(1))).await.ok()?;
        let next = if page.items.is_empty() && page.missed == 0 { cursor } else { page.next };
        Some((Ok::<_, std::convert::Infallible>(ndjson(&page.items)), (ring, next)))
    });
    ([(header::CONTENT_TYPE, "application/x-ndjson")], axum::body::Body::from_stream(stream)).into_response()
}

async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    let last = s.health.heartbeat_ms.load(Ordering::Relaxed);
    let age = Duration::from_millis(unix_ms().saturating_sub(last));
    if age < STUCK_AFTER {
        (StatusCode::OK, "ok\n".to_owned())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("the reconcile loop has not run for {}s\n", age.as_secs()))
    }
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    if s.health.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: the first full sync has not happened\n")
    }
}

/// `{"pods": [{"pod", "state", "waitingSeconds"}]}`: local pods still waiting, oldest first.
async fn pending_pods(State(s): State<AppState>) -> impl IntoResponse {
    let pods = s.health.pending.lock().map(|p| p.clone()).unwrap_or_default();
    let pods: Vec<serde_json::Value> = pods
        .iter()
        .map(|p| {
            serde_json::json!({"pod": p.pod.to_string(), "state": p.state.as_str(),
                               "waitingSeconds": p.since.elapsed().as_secs_f64()})
        })
        .collect();
    ([(header::CONTENT_TYPE, "application/json")], serde_json::json!({ "pods": pods }).to_string())
}

async fn metrics_text(State(s): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], s.metrics.encode())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(app: Router, path: &str) -> (StatusCode, String) {
        let res = app.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn probes_follow_the_loop_and_metrics_are_prometheus_text() {
        let metrics = Arc::new(Metrics::new());
        let health = Arc::new(Health::default());
        let app = router(metrics.clone(), health.clone());
        assert_eq!(get(app.clone(), "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(get(app.clone(), "/healthz").await.0, StatusCode::SERVICE_UNAVAILABLE, "never turned");
        health.beat();
        health.ready.store(true, Ordering::Relaxed);
        assert_eq!(get(app.clone(), "/healthz").await.0, StatusCode::OK);
        assert_eq!(get(app.clone(), "/readyz").await.0, StatusCode::OK);
        metrics.local_pods.set(3);
        metrics.apply_errors.inc();
        metrics.event_to_kernel.observe(0.004);
        metrics.pod_realization.observe(0.002);
        let (_, pending) = get(app.clone(), "/v1/pods/pending").await;
        assert_eq!(pending, r#"{"pods":[]}"#);
        let waiting = crate::reconcile::PendingPod {
            pod: palisade_engine::ObjectKey::new("shop", "web"),
            state: crate::reconcile::Pending::NoAddress,
            since: std::time::Instant::now(),
        };
        *health.pending.lock().unwrap() = vec![waiting];
        let (_, pending) = get(app.clone(), "/v1/pods/pending").await;
        let v: serde_json::Value = serde_json::from_str(&pending).unwrap();
        assert_eq!(
            (v["pods"][0]["pod"].as_str(), v["pods"][0]["state"].as_str()),
            (Some("shop/web"), Some("no address yet"))
        );
        let (status, text) = get(app, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        for line in [
            "palisade_local_pods 3",
            "palisade_apply_errors_total 1",
            "palisade_event_to_kernel_seconds_count 1",
            "palisade_pod_realization_seconds_count 1",
            "# TYPE palisade_sync_duration_seconds histogram",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
    }
}
