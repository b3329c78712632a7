//! `palisade ui`: a policy editor in the browser. One page (embedded; no CDN, works offline) over a small
//! JSON API on the engine, so every color, verdict and message is the engine's.
//!
//! Invariant: the page computes nothing about policy; it renders what the API answers.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

pub mod api;
pub mod tiers;

pub use api::Base;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");

type Shared = Arc<Base>;

#[derive(Debug, Deserialize)]
struct YamlBody {
    #[serde(default)]
    yaml: String,
}

#[derive(Debug, Deserialize)]
struct DeleteBody {
    #[serde(default)]
    yaml: String,
    key: String,
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

/// The editor's routes: the page, its assets, and `/api/*`.
pub fn router(base: Base) -> Router {
    Router::new()
        .route("/", get(|| async { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX_HTML) }))
        .route("/app.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], APP_JS) }))
        .route("/app.css", get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS) }))
        .route("/api/cluster", get(|State(b): State<Shared>| async move { Json(api::cluster(&b)) }))
        .route("/api/templates", get(|| async { Json(api::templates()) }))
        .route(
            "/api/validate",
            post(|State(b): State<Shared>, Json(r): Json<YamlBody>| async move { Json(api::validate(&b, &r.yaml)) }),
        )
        .route(
            "/api/explain",
            post(|State(b): State<Shared>, Json(r): Json<YamlBody>| async move { Json(api::explain(&b, &r.yaml)) }),
        )
        .route(
            "/api/list",
            post(|State(b): State<Shared>, Json(r): Json<YamlBody>| async move { Json(api::list(&b, &r.yaml)) }),
        )
        .route(
            "/api/matrix",
            post(|State(b): State<Shared>, Json(r): Json<api::MatrixRequest>| async move { Json(api::matrix(&b, &r)) }),
        )
        .route(
            "/api/graph",
            post(|State(b): State<Shared>, Json(r): Json<api::GraphRequest>| async move {
                match api::graph(&b, &r) {
                    Ok(g) => Json(g).into_response(),
                    Err(e) => bad_request(e),
                }
            }),
        )
        .route(
            "/api/check",
            post(|State(b): State<Shared>, Json(r): Json<api::CheckRequest>| async move {
                match api::check(&b, &r) {
                    Ok(v) => Json(v).into_response(),
                    Err(e) => bad_request(e),
                }
            }),
        )
        .route(
            "/api/tiers",
            post(|State(b): State<Shared>, Json(r): Json<YamlBody>| async move { Json(api::tier_list(&b, &r.yaml)) }),
        )
        .route("/api/tier/yaml", post(|Json(r): Json<tiers::WriteRequest>| async move { Json(tiers::write(&r)) }))
        .route(
            "/api/tier/delete",
            post(|Json(r): Json<DeleteBody>| async move {
                match tiers::remove_document(&r.yaml, &r.key) {
                    Some(yaml) => Json(json!({ "yaml": yaml })).into_response(),
                    None => bad_request(format!("the editor holds no document with just {} in it", r.key)),
                }
            }),
        )
        .route(
            "/api/yaml",
            post(|Json(v): Json<Value>| async move {
                match api::to_yaml(&v) {
                    Ok(v) => Json(v).into_response(),
                    Err(e) => bad_request(e),
                }
            }),
        )
        .with_state(Arc::new(base))
}

/// Serves the editor until the process ends.
pub fn serve(base: Base, addr: SocketAddr, on_ready: impl FnOnce(SocketAddr)) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        on_ready(listener.local_addr()?);
        axum::serve(listener, router(base)).await
    })
}
