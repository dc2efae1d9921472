//! The HTTP side: routes, and one request from headers to answer.
//!
//! Order of the checks, so that a refused request costs as little as possible:
//! path and method (404/405), `Content-Type` and `Content-Encoding` (400), the
//! `Authorization` header when there is one (401, before any body is read),
//! `Content-Length` against the limit (413, before any body is read), whether
//! shutdown has begun (503, before any body is read); then the
//! body is read under `read_timeout` (408) and its size cap (413, also while
//! inflating gzip), parsed (400), the body's `writeKey` checked when no header
//! authenticated the request (401); the events are stamped and handed to the
//! topology, waiting at most `max_wait` for room (503 + `Retry-After`); with
//! `acknowledgements = "delivered"` the answer then waits for the batch's
//! acknowledgement (200, or 500 if a sink failed).
//!
//! Answers that leave part of the body unread close the connection, so the
//! unread bytes are never taken for the next request.

use std::sync::RwLock;
use std::time::{Duration, Instant};

use actix_web::http::header::{self, HeaderMap};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures::StreamExt;
use serde_json::json;

use super::body::{BodyError, BodyReader};
use super::parse::{self, Endpoint, Invalid, Limits, Stamp};
use crate::ack::{ack_channel, Ack, BatchStatus};
use crate::auth::{AuthError, Credentials};
use crate::component::{SendTimeoutError, SourceSender};
use crate::telemetry::IngestTelemetry;

/// What every request handler shares.
pub struct Shared {
    /// Taken away when the server stops, so the topology sees the source end.
    pub out: RwLock<Option<SourceSender>>,
    pub credentials: Credentials,
    pub limits: Limits,
    pub max_wait: Duration,
    pub read_timeout: Duration,
    pub delivered: bool,
    pub trust_forwarded_for: bool,
    pub telemetry: IngestTelemetry,
}

impl Shared {
    /// The hand-off to the topology; `None` once shutdown began.
    fn sender(&self) -> Option<SourceSender> {
        match self.out.read() {
            Ok(guard) => guard.clone(),
            // A panic while holding the lock cannot leave the Option half-written.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Stops handing new requests' events to the topology.
    pub fn close(&self) {
        match self.out.write() {
            Ok(mut out) => *out = None,
            Err(poisoned) => *poisoned.into_inner() = None,
        }
    }
}

/// How a request is answered.
#[derive(Debug)]
pub enum Reply {
    /// 200 `{"success":true}`.
    Accepted,
    /// 400 `invalid_request`.
    Invalid {
        reason: &'static str,
        message: String,
    },
    /// 401.
    Unauthorized(AuthError),
    /// 413.
    TooLarge { limit: usize },
    /// 408: the body did not arrive within `read_timeout`.
    Timeout,
    /// 503 + `Retry-After`: no room downstream within `max_wait`, or stopping.
    Busy { stopping: bool },
    /// 500: a sink failed to write the events.
    Failed(BatchStatus),
}

impl Reply {
    fn invalid(reason: &'static str, message: impl Into<String>) -> Reply {
        Reply::Invalid {
            reason,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Reply::Accepted => StatusCode::OK,
            Reply::Invalid { .. } => StatusCode::BAD_REQUEST,
            Reply::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Reply::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Reply::Timeout => StatusCode::REQUEST_TIMEOUT,
            Reply::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Reply::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// `(code, message)` of a refusal; `None` for 200.
    fn refusal(&self) -> Option<(&'static str, String)> {
        match self {
            Reply::Accepted => None,
            Reply::Invalid { message, .. } => Some(("invalid_request", message.clone())),
            Reply::Unauthorized(err) => Some(("unauthorized", err.to_string())),
            Reply::TooLarge { limit } => Some((
                "payload_too_large",
                format!("the body is larger than {limit} bytes"),
            )),
            Reply::Timeout => Some((
                "request_timeout",
                "the body did not arrive in time".to_owned(),
            )),
            Reply::Busy { stopping: false } => Some((
                "unavailable",
                "the pipeline has no room for more events now; retry later".to_owned(),
            )),
            Reply::Busy { stopping: true } => Some((
                "unavailable",
                "the server is shutting down; retry later".to_owned(),
            )),
            Reply::Failed(status) => Some((
                "delivery_failed",
                format!(
                    "the events were not written by every sink (status {}); retry",
                    status.as_str()
                ),
            )),
        }
    }

    /// Bounded reason for metrics and logs.
    fn reason(&self) -> &'static str {
        match self {
            Reply::Accepted => "accepted",
            Reply::Invalid { reason, .. } => reason,
            Reply::Unauthorized(err) => err.kind(),
            Reply::TooLarge { .. } => "too_large",
            Reply::Timeout => "read_timeout",
            Reply::Busy { stopping: false } => "no_room",
            Reply::Busy { stopping: true } => "stopping",
            Reply::Failed(_) => "delivery_failed",
        }
    }

    fn into_response(self, close: bool, retry_after: u64) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status());
        if close {
            builder.force_close();
        }
        if let Reply::Busy { .. } = self {
            builder.insert_header((header::RETRY_AFTER, retry_after.to_string()));
        }
        match self.refusal() {
            None => builder.json(json!({ "success": true })),
            Some((code, message)) => {
                builder.json(json!({ "success": false, "code": code, "message": message }))
            }
        }
    }
}

/// `POST /v1/{endpoint}`.
pub async fn ingest(
    req: HttpRequest,
    payload: web::Payload,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let started = Instant::now();
    let name = req.match_info().get("endpoint").unwrap_or_default();
    let Some(endpoint) = Endpoint::from_name(name) else {
        return not_found(req).await;
    };
    let (reply, body_read) = handle(endpoint, &req, payload, &shared).await;
    let status = reply.status().as_u16();
    let refusal = reply.refusal();
    shared.telemetry.request(
        endpoint.as_str(),
        status,
        started.elapsed(),
        refusal.as_ref().map(|(_, m)| (reply.reason(), m.as_str())),
    );
    reply.into_response(!body_read, shared.max_wait.as_secs().max(1))
}

/// Any method but POST on a known endpoint: 405; on an unknown one: 404.
pub async fn wrong_method(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let name = req.match_info().get("endpoint").unwrap_or_default();
    match Endpoint::from_name(name) {
        Some(endpoint) => {
            shared
                .telemetry
                .request(endpoint.as_str(), 405, Duration::ZERO, None);
            HttpResponse::MethodNotAllowed()
                .insert_header((header::ALLOW, "POST"))
                .json(
                    json!({"success": false, "code": "method_not_allowed", "message": "use POST"}),
                )
        }
        None => not_found(req).await,
    }
}

/// Every other path.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    if let Some(shared) = req.app_data::<web::Data<Shared>>() {
        shared
            .telemetry
            .request("unmatched", 404, Duration::ZERO, None);
    }
    HttpResponse::NotFound().json(json!({
        "success": false,
        "code": "not_found",
        "message": "no such endpoint: POST /v1/track, /v1/identify, /v1/page, /v1/screen, /v1/group, /v1/alias, /v1/batch, /v1/import or /v1/webhook",
    }))
}

/// Answers one request; the flag says whether the body was read to its end.
async fn handle(
    endpoint: Endpoint,
    req: &HttpRequest,
    mut payload: web::Payload,
    shared: &Shared,
) -> (Reply, bool) {
    let headers = req.headers();
    if let Err(message) = check_content_type(headers) {
        return (Reply::invalid("content_type", message), false);
    }
    let gzip = match content_encoding(headers) {
        Ok(gzip) => gzip,
        Err(message) => return (Reply::invalid("content_encoding", message), false),
    };
    let header_auth = headers
        .get(header::AUTHORIZATION)
        .map(|value| shared.credentials.check_header(value.as_bytes()));
    if let Some(Err(err)) = header_auth {
        return (Reply::Unauthorized(err), false);
    }
    let limit = shared.limits.body_limit(endpoint);
    let length = content_length(headers);
    if length.is_some_and(|n| n > limit) {
        return (Reply::TooLarge { limit }, false);
    }
    // Held from here until the events are handed over: once shutdown takes
    // the shared sender away, the source ends when the last request that
    // was already reading its body has sent it.
    let Some(out) = shared.sender() else {
        return (Reply::Busy { stopping: true }, false);
    };

    let mut reader = BodyReader::new(limit, gzip, length);
    let read = async {
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|err| {
                Reply::invalid("body_error", format!("could not read the body: {err}"))
            })?;
            reader.push(&chunk).map_err(body_reply)?;
        }
        reader.finish().map_err(body_reply)
    };
    let body = match tokio::time::timeout(shared.read_timeout, read).await {
        Ok(Ok(body)) => body,
        Ok(Err(reply)) => return (reply, false),
        Err(_) => return (Reply::Timeout, false),
    };

    let parsed = match parse::parse(endpoint, &body, &shared.limits) {
        Ok(parsed) => parsed,
        Err(invalid) => return (invalid_reply(invalid), true),
    };
    drop(body);
    if header_auth.is_none() {
        let key = parsed.write_key.as_deref().unwrap_or_default();
        if let Err(err) = shared.credentials.check_write_key(key.as_bytes()) {
            return (Reply::Unauthorized(err), true);
        }
    }
    let received_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let ip = client_ip(req, shared.trust_forwarded_for);
    let stamp = Stamp {
        received_at: &received_at,
        ip: ip.as_deref(),
    };
    let events = parse::stamp(parsed, endpoint, &stamp);
    (send(events, out, shared).await, true)
}

/// Hands the events to the topology and waits as `acknowledgements` says.
async fn send(events: Vec<crate::event::Event>, out: SourceSender, shared: &Shared) -> Reply {
    let mut outputs = out.outputs();
    for event in events {
        outputs.push(0, event);
    }
    let (ack, delivered) = if shared.delivered {
        let (ack, rx) = ack_channel();
        (ack, Some(rx))
    } else {
        (Ack::none(), None)
    };
    match out.send_timeout(outputs, ack, shared.max_wait).await {
        Ok(()) => {}
        Err(SendTimeoutError::Timeout) => return Reply::Busy { stopping: false },
        Err(SendTimeoutError::Closed(_)) => return Reply::Busy { stopping: true },
    }
    drop(out);
    match delivered {
        None => Reply::Accepted,
        Some(rx) => match rx.await {
            Ok(BatchStatus::Delivered) => Reply::Accepted,
            Ok(status) => Reply::Failed(status),
            // The acknowledgement always reports when its last holder drops;
            // a lost sender means the topology went away mid-flight.
            Err(_) => Reply::Failed(BatchStatus::Failed),
        },
    }
}

fn body_reply(err: BodyError) -> Reply {
    match err {
        BodyError::TooLarge { limit } => Reply::TooLarge { limit },
        BodyError::BadGzip(_) => Reply::invalid("bad_gzip", err.to_string()),
    }
}

fn invalid_reply(invalid: Invalid) -> Reply {
    Reply::invalid(invalid.kind(), invalid.to_string())
}

/// JSON bodies only: `application/json`, any `+json` type, or `text/plain`
/// (what browsers send to avoid a CORS preflight); no header is fine too.
fn check_content_type(headers: &HeaderMap) -> Result<(), String> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or_default();
    let media = text.split(';').next().unwrap_or_default().trim();
    let media = media.to_ascii_lowercase();
    if media == "application/json" || media == "text/plain" || media.ends_with("+json") {
        Ok(())
    } else {
        Err(format!(
            "Content-Type {text:?} is not supported: send application/json"
        ))
    }
}

/// `Ok(true)` for gzip, `Ok(false)` for none.
fn content_encoding(headers: &HeaderMap) -> Result<bool, String> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(false);
    };
    let text = value
        .to_str()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match text.as_str() {
        "" | "identity" => Ok(false),
        "gzip" | "x-gzip" => Ok(true),
        _ => Err(format!(
            "Content-Encoding {text:?} is not supported: send gzip or nothing"
        )),
    }
}

fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The peer's address, or with `trust_forwarded_for` the last address of
/// `X-Forwarded-For`: the one the nearest proxy (the load balancer) saw; the
/// ones before it are whatever the client claimed.
fn client_ip(req: &HttpRequest, trust_forwarded_for: bool) -> Option<String> {
    if trust_forwarded_for {
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .last();
        if let Some(ip) = forwarded {
            return Some(ip.to_owned());
        }
    }
    req.peer_addr().map(|addr| addr.ip().to_string())
}

/// Routes of the source's server.
pub fn routes(cfg: &mut web::ServiceConfig, shared: web::Data<Shared>) {
    cfg.app_data(shared).service(
        web::resource("/v1/{endpoint}")
            .route(web::post().to(ingest))
            .default_service(web::to(wrong_method)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(
                header::HeaderName::from_static(k),
                HeaderValue::from_static(v),
            );
        }
        map
    }

    #[test]
    fn json_and_text_content_types_pass() {
        assert!(check_content_type(&headers(&[])).is_ok());
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "text/plain",
            "application/vnd.x+json",
        ] {
            assert!(
                check_content_type(&headers(&[("content-type", ok)])).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "application/xml",
        ] {
            assert!(
                check_content_type(&headers(&[("content-type", bad)])).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn only_gzip_or_no_encoding() {
        assert_eq!(content_encoding(&headers(&[])), Ok(false));
        assert_eq!(
            content_encoding(&headers(&[("content-encoding", "gzip")])),
            Ok(true)
        );
        assert!(content_encoding(&headers(&[("content-encoding", "br")])).is_err());
    }

    #[test]
    fn refusals_carry_segment_shaped_bodies() {
        let reply = Reply::invalid("malformed_json", "bad");
        assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
        assert_eq!(reply.refusal().unwrap().0, "invalid_request");
        assert_eq!(
            Reply::Busy { stopping: false }.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            Reply::Failed(BatchStatus::Rejected).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert!(Reply::Accepted.refusal().is_none());
    }
}
