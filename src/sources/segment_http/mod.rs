//! The `segment_http` source: a drop-in for Segment's tracking API, so the
//! official libraries and Segment's webhook destination can send to sluice by
//! changing only their `host`.
//!
//! ```toml
//! [sources.segment]
//! type = "segment_http"
//! listen = "0.0.0.0:8080"
//! write_keys = ["${SEGMENT_WRITE_KEY}"]   # Basic auth user (empty password), or `writeKey` in the body
//! bearer_tokens = ["${WEBHOOK_TOKEN:-}"]  # `Authorization: Bearer ...` (webhooks)
//! acknowledgements = "delivered"          # or "accepted" (default)
//! max_event_bytes = 32768
//! max_batch_bytes = 512000
//! max_batch_events = 2500
//! max_wait = "5s"                         # wait for room downstream before 503
//! ```
//!
//! `POST /v1/track|identify|page|screen|group|alias` take one event,
//! `/v1/batch` and `/v1/import` a batch envelope, `/v1/webhook` one event or an
//! array ([`parse`]). Answers: 200 `{"success":true}`; 400 `invalid_request`
//! (not JSON, not objects, an event over `max_event_bytes` in a batch, more than
//! `max_batch_events`, an unsupported `Content-Type` or `Content-Encoding`); 401
//! (missing or unknown key, [`auth`]); 404/405; 408 (body slower than
//! `read_timeout`); 413 (body over the limit, counted after gunzip, [`body`]);
//! 503 with `Retry-After` (no room downstream within `max_wait`, or shutting
//! down); 500 (with `acknowledgements = "delivered"`: a sink failed). The order
//! of the checks is in [`server`].
//!
//! # Delivery
//!
//! One request is one batch in the topology, taken whole or not at all. With
//! `acknowledgements = "accepted"` the answer is 200 once the batch is queued
//! (events queued at a crash are lost; the client does not resend them). With
//! `"delivered"` the batch carries an [`crate::ack::Ack`] and the answer waits
//! until its last holder is done: 200 when every sink that received events of
//! the batch wrote them (events filtered out or deduplicated count as done),
//! 500 otherwise, so a client retries anything not written. Transforms that
//! hold events (`sessionize` until its watermark passes them) hold the answer
//! as long.
//!
//! # Bounds
//!
//! Bodies are capped before they are read whole (also while inflating gzip);
//! request heads must arrive within 5s and bodies within `read_timeout`; at
//! most `max_connections` connections are served at once (the rest wait in the
//! kernel's accept queue); a request waiting for room holds only its parsed
//! events, at most `max_batch_bytes` worth, and gives up after `max_wait`.
//!
//! # Health and shutdown
//!
//! The socket is bound when the topology is built (a busy port fails the
//! start). The source is not ready (`/ready` 503) from shutdown on: the
//! listener is closed at once, new requests on open connections get 503, and
//! requests already reading their body are still taken. Once the last of
//! those has handed its events over, the source's output ends and the topology
//! drains, so requests waiting for `"delivered"` get their answer; requests
//! still unanswered after half of `engine.shutdown_timeout` are dropped.
//!
//! # Layout
//! * [`config`] — the config struct and its checks (credentials are
//!   [`crate::auth`], shared with the API's counts endpoint).
//! * [`body`] — size-capped body reading and gunzip.
//! * [`parse`] — bodies to events, and the fields the server adds.
//! * [`server`] — routes and the life of one request.

pub mod body;
pub mod config;
pub mod parse;
pub mod server;

use std::net::TcpListener;
use std::sync::RwLock;
use std::time::Duration;

use actix_web::{web, App, HttpServer};
use futures::future::BoxFuture;

use crate::component::{Source, SourceContext, SourceError};
use crate::telemetry::IngestTelemetry;
pub use config::{Acknowledgements, SegmentHttpConfig};
use parse::Limits;
use server::Shared;

/// How long a request head (method, path, headers) may take to arrive.
const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an idle keep-alive connection is kept.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A `segment_http` source with its bound socket.
pub struct SegmentHttpSource {
    config: SegmentHttpConfig,
    listener: TcpListener,
    /// How long in-flight requests may take once shutdown begins.
    grace: Duration,
}

impl SegmentHttpSource {
    pub fn new(config: SegmentHttpConfig, listener: TcpListener, grace: Duration) -> Self {
        SegmentHttpSource {
            config,
            listener,
            grace,
        }
    }

    async fn serve(self: Box<Self>, mut cx: SourceContext) -> Result<(), SourceError> {
        let config = &self.config;
        let shared = web::Data::new(Shared {
            out: RwLock::new(Some(cx.out.clone())),
            credentials: config.credentials(),
            limits: Limits {
                max_event_bytes: config.max_event_bytes.0 as usize,
                max_batch_bytes: config.max_batch_bytes.0 as usize,
                max_batch_events: config.max_batch_events,
            },
            max_wait: config.max_wait.0,
            read_timeout: config.read_timeout.0,
            delivered: config.acknowledgements == Acknowledgements::Delivered,
            trust_forwarded_for: config.trust_forwarded_for,
            telemetry: IngestTelemetry::new(&cx.id, "segment_http"),
        });
        let workers = config.worker_count();
        let per_worker = config.max_connections.div_ceil(workers).max(1);
        let app_shared = shared.clone();
        let address = self
            .listener
            .local_addr()
            .map_or_else(|_| config.listen.to_string(), |a| a.to_string());
        let server = HttpServer::new(move || {
            let shared = app_shared.clone();
            App::new()
                .configure(|cfg| server::routes(cfg, shared))
                .default_service(web::to(server::not_found))
        })
        .workers(workers)
        .max_connections(per_worker)
        .backlog(2048)
        .client_request_timeout(REQUEST_HEAD_TIMEOUT)
        .client_disconnect_timeout(Duration::from_secs(1))
        .keep_alive(KEEP_ALIVE)
        .disable_signals()
        .shutdown_timeout(self.grace.as_secs().max(1))
        .listen(self.listener)
        .map_err(|err| SourceError(format!("cannot serve on {address}: {err}")))?
        .run();
        let handle = server.handle();
        let mut running = actix_rt::spawn(server);
        cx.readiness.set(true);
        shared
            .telemetry
            .server_event(&format!("segment_http listening on http://{address}"));

        let ended = tokio::select! {
            _ = cx.shutdown.wait() => None,
            ended = &mut running => Some(ended),
        };
        cx.readiness.set(false);
        // Whatever happened, no new request hands events over from here on.
        shared.close();
        drop(cx.out);
        match ended {
            None => {
                shared
                    .telemetry
                    .server_event("shutdown: no new connections; finishing requests in flight");
                // Requests already reading their body keep their own sender
                // until they have sent; when the last one has, the topology
                // drains, and the acknowledgements "delivered" requests wait
                // for arrive. New requests on open connections get 503.
                handle.stop(true).await;
                Ok(())
            }
            Some(ended) => Err(SourceError(match ended {
                Ok(Ok(())) => format!("the HTTP server on {address} stopped unexpectedly"),
                Ok(Err(err)) => format!("the HTTP server on {address} failed: {err}"),
                Err(err) => format!("the HTTP server on {address} panicked: {err}"),
            })),
        }
    }
}

impl Source for SegmentHttpSource {
    fn run(self: Box<Self>, cx: SourceContext) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(self.serve(cx))
    }
}
