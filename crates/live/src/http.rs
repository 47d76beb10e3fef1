//! The HTTP endpoint of the live hunt (axum on tokio):
//!
//! - `POST /v1/events`: a JSON-lines body (one event per line), bearer
//!   token required. Answers after the batch is processed and its outputs
//!   flushed: `200 {"accepted": n, "rejected": m, "errors": [{"line", "reason"}…],
//!   "detections": k}` — malformed lines are reported and skipped, the good
//!   lines of the same body are kept; `400` when no line is an event;
//!   `401` without the right token; `413` over the body cap; `503` with
//!   `Retry-After` when the queue is full or [`MAX_IN_FLIGHT`] requests are
//!   being read or processed (backpressure, nothing queued).
//! - `GET /v1/health`: `{"status":"ok","rules_generation","queue_depth"}`, no token.
//! - `GET /metrics`: the Prometheus text ([`crate::Metrics`]), bearer token required.
//!
//! Every error answer is a JSON object `{"error": "..."}`.

use crate::engine::{Engine, SubmitError};
use crate::metrics::Metrics;
use crate::scan::{BatchResult, Submission};
use axum::body::{to_bytes, Body};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

/// Settings of the HTTP endpoint.
#[derive(Clone)]
pub struct HttpConfig {
    /// The bearer token clients must send (`Authorization: Bearer <token>`).
    pub token: String,
    /// Largest accepted body, in bytes (413 beyond).
    pub max_body: usize,
}

/// Most `POST /v1/events` requests read or processed at once; more get 503
/// (with the body cap, this bounds the memory of bodies in flight:
/// 16 × 16 MiB by default).
pub const MAX_IN_FLIGHT: usize = 16;

/// Longest time a request body may take to arrive (408 beyond).
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Most lines in one body (413 beyond): with the body cap, this bounds the
/// memory of a request's lines (breaker finding: 16 MiB of one-character
/// lines took 80 MB each as separate strings).
pub const MAX_LINES: usize = 200_000;

struct AppState {
    engine: Arc<Engine>,
    cfg: HttpConfig,
    in_flight: Arc<tokio::sync::Semaphore>,
}

/// The router: `/v1/events`, `/v1/health`, `/metrics`.
pub fn router(engine: Arc<Engine>, cfg: HttpConfig) -> Router {
    let state = Arc::new(AppState {
        engine,
        cfg,
        in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)),
    });
    Router::new()
        .route("/v1/events", post(events))
        .route("/v1/health", get(health))
        .route("/metrics", get(metrics))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .with_state(state)
}

/// Serves [`router`] on `listener` until `shutdown` completes, with at most
/// [`crate::conn::MAX_CONNECTIONS`] connections open and each closed after
/// [`crate::conn::IDLE_READ`] without input.
///
/// # Errors
/// The server failed (accepting connections).
pub async fn serve(
    listener: tokio::net::TcpListener,
    engine: Arc<Engine>,
    cfg: HttpConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = crate::conn::CappedListener::new(
        listener,
        crate::conn::MAX_CONNECTIONS,
        crate::conn::IDLE_READ,
    );
    axum::serve(listener, router(engine, cfg))
        .with_graceful_shutdown(shutdown)
        .await
}

fn error(m: &Metrics, code: StatusCode, msg: &str) -> Response {
    Metrics::inc(&m.http_responses, "code", code.as_str());
    (code, Json(json!({ "error": msg }))).into_response()
}

/// Constant-time comparison of the presented token with the configured one.
fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    // RFC 9110 §11.1: the scheme is case-insensitive; RFC 6750 §2.1: one
    // or more spaces before the token.
    let Some((scheme, given)) = v.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return false;
    }
    let given = given.trim_start_matches(' ');
    let (a, b) = (given.as_bytes(), token.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, &x) in b.iter().enumerate() {
        diff |= usize::from(x ^ a.get(i).copied().unwrap_or(0));
    }
    diff == 0 && !token.is_empty()
}

async fn events(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let m = st.engine.metrics().clone();
    if !authorized(&headers, &st.cfg.token) {
        return error(
            &m,
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token",
        );
    }
    let Ok(_permit) = st.in_flight.clone().try_acquire_owned() else {
        let mut r = error(
            &m,
            StatusCode::SERVICE_UNAVAILABLE,
            "too many requests in flight: retry later",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return r;
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > st.cfg.max_body as u64) {
        return error(
            &m,
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("body over {} bytes", st.cfg.max_body),
        );
    }
    let read = tokio::time::timeout(BODY_TIMEOUT, to_bytes(body, st.cfg.max_body)).await;
    let bytes = match read {
        Ok(Ok(b)) => b,
        Err(_) => {
            return error(
                &m,
                StatusCode::REQUEST_TIMEOUT,
                "the body did not arrive in time (60 s)",
            )
        }
        Ok(Err(_)) => {
            return error(
                &m,
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("body over {} bytes", st.cfg.max_body),
            )
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    if text.lines().count() > MAX_LINES {
        return error(
            &m,
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("more than {MAX_LINES} lines in one body: send smaller batches"),
        );
    }
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if lines.iter().all(|l| l.trim().is_empty()) {
        return error(
            &m,
            StatusCode::BAD_REQUEST,
            "empty body: expected JSON lines, one event per line",
        );
    }
    let (tx, rx) = tokio::sync::oneshot::channel::<BatchResult>();
    let sub = Submission {
        source: Arc::from("http"),
        lines,
        first_line: 1,
        done: Some(Box::new(move |r: &BatchResult| {
            let _ = tx.send(r.clone());
        })),
        rejected: Vec::new(),
    };
    match st.engine.try_submit(sub) {
        Ok(()) => {}
        Err(SubmitError::Full(_)) => {
            let mut r = error(
                &m,
                StatusCode::SERVICE_UNAVAILABLE,
                "queue full: retry later",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            return r;
        }
        Err(SubmitError::Closed(_)) => {
            return error(&m, StatusCode::SERVICE_UNAVAILABLE, "shutting down");
        }
    }
    let Ok(r) = rx.await else {
        return error(
            &m,
            StatusCode::INTERNAL_SERVER_ERROR,
            "the live hunt stopped before this batch was processed",
        );
    };
    let code = if r.events == 0 {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Metrics::inc(&m.http_responses, "code", code.as_str());
    let mut v = json!({
        "accepted": r.events,
        "rejected": r.rejected,
        "errors": r.errors,
        "detections": r.detections,
    });
    if r.events == 0 {
        let one_line = !text.trim_end().contains('\n');
        let glued = r
            .errors
            .first()
            .is_some_and(|e| e.reason.contains("trailing characters"));
        v["error"] = json!(if one_line && glued {
            "no line of the body is a JSON event: the body is one line of several JSON values; \
             were its newlines removed (curl -d)? Send it with curl --data-binary"
        } else {
            "no line of the body is a JSON event"
        });
    }
    (code, Json(v)).into_response()
}

async fn not_found(State(st): State<Arc<AppState>>) -> Response {
    error(
        st.engine.metrics(),
        StatusCode::NOT_FOUND,
        "no such endpoint: POST /v1/events, GET /v1/health, GET /metrics",
    )
}

async fn method_not_allowed(State(st): State<Arc<AppState>>) -> Response {
    error(
        st.engine.metrics(),
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed: POST /v1/events, GET /v1/health, GET /metrics",
    )
}

async fn health(State(st): State<Arc<AppState>>) -> Response {
    let e = &st.engine;
    Json(json!({
        "status": if e.failed() { "failed" } else { "ok" },
        "rules_generation": e.rules().generation,
        "queue_depth": e.queue_depth(),
    }))
    .into_response()
}

async fn metrics(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let m = st.engine.metrics().clone();
    if !authorized(&headers, &st.cfg.token) {
        return error(
            &m,
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token",
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
        .into_response()
}
