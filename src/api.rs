//! The operator's HTTP API: `GET /health` (the process is alive), `GET /ready`
//! (the topology is running, no component failed, and every listening source
//! can take requests), `GET /metrics`
//! (Prometheus text), `GET /topology` (components, edges and live counters as
//! JSON). Served by actix-web on one worker; it never touches the data path.
//! Every request is counted and timed by route pattern (`sluice_http_*`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpResponse, HttpServer};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::topology::status::TopologyStatus;

struct ApiState {
    status: Arc<TopologyStatus>,
    metrics: PrometheusHandle,
}

/// Binds `addr` and serves the API on the current actix system until the
/// returned handle is stopped.
pub fn serve(
    addr: SocketAddr,
    status: Arc<TopologyStatus>,
    metrics: PrometheusHandle,
) -> std::io::Result<ServerHandle> {
    let state = web::Data::new(ApiState { status, metrics });
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(record_request))
            .app_data(state.clone())
            .route("/health", web::get().to(health))
            .route("/ready", web::get().to(ready))
            .route("/metrics", web::get().to(metrics_text))
            .route("/topology", web::get().to(topology))
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

async fn ready(state: web::Data<ApiState>) -> HttpResponse {
    let failures = state.status.failures();
    let body = serde_json::json!({
        "ready": state.status.is_ready(),
        "failed_components": failures.iter().map(|(id, _)| id).collect::<Vec<_>>(),
        "not_ready_components": state.status.not_ready(),
    });
    if state.status.is_ready() {
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
