//! The operator's HTTP API: `GET /health` (the process is alive), `GET /ready`
//! (the topology is running, no component failed or is degraded, and every
//! listening source can take requests), `GET /metrics` (Prometheus text),
//! `GET /topology` (components, edges and live counters as JSON). Served by
//! actix-web on one worker; it never touches the data path. Every request is
//! counted and timed by route pattern (`sluice_http_*`).
//!
//! With `[api] counts = { sink = "<id>" }` it also answers
//! `GET /v1/counts/{userId}` with `{"userId": ..., "counts": {"Page Viewed": 12}}`,
//! read live (`HGETALL`) from that `hash_counter` redis sink's hash; it needs
//! credentials from `[api.auth]` (401 without them), refuses a malformed or
//! over-long id (400), answers 404 for a user with no counts and 503 when
//! Redis does not answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpResponse, HttpServer};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::{AuthError, Credentials};
use crate::sinks::redis::counts::{check_user_id, CountsReader};
use crate::topology::status::TopologyStatus;

struct ApiState {
    status: Arc<TopologyStatus>,
    metrics: PrometheusHandle,
    counts: Option<CountsEndpoint>,
}

/// What `GET /v1/counts/{userId}` needs.
#[derive(Clone)]
pub struct CountsEndpoint {
    pub reader: Arc<CountsReader>,
    pub credentials: Credentials,
}

/// Binds `addr` and serves the API on the current actix system until the
/// returned handle is stopped.
pub fn serve(
    addr: SocketAddr,
    status: Arc<TopologyStatus>,
    metrics: PrometheusHandle,
    counts: Option<CountsEndpoint>,
) -> std::io::Result<ServerHandle> {
    let state = web::Data::new(ApiState {
        status,
        metrics,
        counts,
    });
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(record_request))
            .app_data(state.clone())
            .route("/health", web::get().to(health))
            .route("/ready", web::get().to(ready))
            .route("/metrics", web::get().to(metrics_text))
            .route("/topology", web::get().to(topology))
            .route("/v1/counts/{user_id}", web::get().to(user_counts))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .bind(addr)?;
    for bound in server.addrs() {
        tracing::info!("API listening on http://{bound}");
    }
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(async move {
        if let Err(err) = server.await {
            tracing::error!("API server stopped: {err}");
        }
    });
    Ok(handle)
}

/// Counts and times every request under its route pattern, so a client
/// probing random paths adds one `unmatched` series, not one per path.
async fn record_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let path = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.call(req).await;
    let status = match &response {
        Ok(response) => response.status(),
        Err(err) => err.as_response_error().status_code(),
    };
    crate::telemetry::http_request(&path, status.as_u16(), started.elapsed());
    response
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// 200 while the topology runs with no failed and no degraded component;
/// 503 otherwise. A degraded component (a sink that cannot reach its
/// destination, and buffers and retries meanwhile) keeps the service running
/// but not ready: it cannot deliver what it takes in.
async fn ready(state: web::Data<ApiState>) -> HttpResponse {
    let failures = state.status.failures();
    let degraded = state.status.degraded();
    let ready = state.status.is_ready() && degraded.is_empty();
    let body = serde_json::json!({
        "ready": ready,
        "failed_components": failures.iter().map(|(id, _)| id).collect::<Vec<_>>(),
        "degraded_components": degraded
            .iter()
            .map(|(id, why)| serde_json::json!({ "component_id": id, "reason": why }))
            .collect::<Vec<_>>(),
        "not_ready_components": state.status.not_ready(),
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn metrics_text(state: web::Data<ApiState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

async fn topology(state: web::Data<ApiState>) -> HttpResponse {
    HttpResponse::Ok().json(state.status.to_json())
}

/// `GET /v1/counts/{userId}`: see the module doc.
async fn user_counts(
    state: web::Data<ApiState>,
    request: actix_web::HttpRequest,
    user_id: web::Path<String>,
) -> HttpResponse {
    let Some(counts) = &state.counts else {
        return HttpResponse::NotFound()
            .json(serde_json::json!({ "error": "the counts endpoint is not configured" }));
    };
    let header = request
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if let Err(err) = counts.credentials.check(header) {
        let message = match err {
            AuthError::Missing => "credentials required",
            AuthError::Malformed | AuthError::PasswordNotEmpty | AuthError::Unknown => {
                "invalid credentials"
            }
        };
        return HttpResponse::Unauthorized()
            .insert_header(("WWW-Authenticate", "Basic realm=\"sluice\", Bearer"))
            .json(serde_json::json!({ "error": message }));
    }
    let user_id = user_id.into_inner();
    if let Err(problem) = check_user_id(&user_id) {
        return HttpResponse::BadRequest().json(serde_json::json!({ "error": problem }));
    }
    match counts.reader.counts(&user_id).await {
        Ok(Some(by_event)) => {
            HttpResponse::Ok().json(serde_json::json!({ "userId": user_id, "counts": by_event }))
        }
        Ok(None) => HttpResponse::NotFound()
            .json(serde_json::json!({ "userId": user_id, "error": "no counts for this user" })),
        Err(err) => {
            crate::telemetry::sink_background_error(
                "api",
                &format!("reading counts failed: {err}"),
            );
            HttpResponse::ServiceUnavailable()
                .json(serde_json::json!({ "error": "the counts store is unavailable" }))
        }
    }
}
