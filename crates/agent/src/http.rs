//! `/healthz`, `/readyz`, `/metrics` and `/v1/pods/pending` (axum).

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

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

pub fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/v1/pods/pending", get(pending_pods))
        .with_state(AppState { metrics, health })
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
