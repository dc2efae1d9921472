//! The connection to Redis and the flush task.
//!
//! [`connect`] builds a lazy [`ConnectionManager`] (it connects on first use
//! and reconnects after errors, so building never needs Redis up). A
//! [`Flush`] is one generation of sums turned into a transaction; [`run`]
//! writes it, retrying with backoff until Redis has applied it exactly once
//! (see the module doc of [`super`] for the marker that makes retries safe),
//! then releases the acknowledgements it holds. [`probe`] pings Redis so the
//! health shows up before any data flows.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, IntoConnectionInfo, Pipeline};

use super::pending::{HeldAcks, Pending};
use super::RedisSinkError;
use crate::component::ComponentHealth;

/// How long the flush marker is kept: far longer than any retry takes.
const MARKER_TTL_SECS: u64 = 3600;
/// First wait after a failed flush; doubles per attempt.
const BACKOFF_INITIAL: Duration = Duration::from_millis(100);
/// Longest wait between attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// A client for `url`: TLS when the scheme is `rediss`, trusting `ca_pem`
/// (a PEM bundle) instead of the system roots when given.
pub fn client(url: &str, ca_pem: Option<Vec<u8>>) -> Result<Client, RedisSinkError> {
    crate::sinks::install_crypto_provider();
    let info = url
        .into_connection_info()
        .map_err(|e| RedisSinkError::Url(e.to_string()))?;
    let client = match ca_pem {
        Some(root_cert) => Client::build_with_tls(
            info,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root_cert),
            },
        )?,
        None => Client::open(info)?,
    };
    Ok(client)
}

/// A connection manager that connects lazily and gives up on a request after
/// `timeout` (connecting or answering).
pub fn connect(client: Client, timeout: Duration) -> Result<ConnectionManager, RedisSinkError> {
    let config = ConnectionManagerConfig::new()
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500))
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    Ok(ConnectionManager::new_lazy_with_config(client, config)?)
}

/// What every flush of one sink shares.
pub struct FlushContext {
    pub component_id: String,
    pub health: Arc<ComponentHealth>,
    /// `EXPIRE` written keys after this many seconds.
    pub ttl_secs: Option<u64>,
    pub hashed: bool,
    /// Unique to this process run: with a sequence number it names markers.
    nonce: String,
    seq: AtomicU64,
}

impl FlushContext {
    pub fn new(
        component_id: &str,
        health: Arc<ComponentHealth>,
        ttl_secs: Option<u64>,
        hashed: bool,
    ) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        FlushContext {
            component_id: component_id.to_owned(),
            health,
            ttl_secs,
            hashed,
            nonce: format!("{:x}-{:x}", nanos, std::process::id()),
            seq: AtomicU64::new(0),
        }
    }

    /// A marker key no other flush (of any run) uses.
    fn next_marker(&self) -> String {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        format!("sluice:flush:{}:{}-{seq}", self.component_id, self.nonce)
    }
}

/// One generation, ready to send.
pub struct Flush {
    /// `MULTI … EXEC`; `None` when the generation only settles acknowledgements.
    pipeline: Option<Pipeline>,
    marker: String,
    acks: HeldAcks,
    /// Commands inside the transaction (MULTI and EXEC included).
    pub commands: usize,
    pub keys: usize,
    pub events: u64,
}

impl Flush {
    /// Turns `pending` into one atomic pipeline.
    pub fn new(pending: Pending, cx: &FlushContext) -> Flush {
        let marker = cx.next_marker();
        let keys = pending.keys();
        let mut commands = 0;
        let pipeline = (keys > 0).then(|| {
            let mut pipe = redis::pipe();
            pipe.atomic();
            let mut expired: Option<std::collections::HashSet<&str>> =
                cx.ttl_secs.map(|_| Default::default());
            for inc in pending.increments(cx.hashed) {
                match inc.field {
                    Some(field) => pipe.cmd("HINCRBY").arg(inc.key).arg(field).arg(inc.delta),
                    None => pipe.cmd("INCRBY").arg(inc.key).arg(inc.delta),
                }
                .ignore();
                commands += 1;
                if let (Some(ttl), Some(seen)) = (cx.ttl_secs, expired.as_mut()) {
                    if seen.insert(inc.key) {
                        pipe.cmd("EXPIRE").arg(inc.key).arg(ttl).ignore();
                        commands += 1;
                    }
                }
            }
            pipe.cmd("SET")
                .arg(&marker)
                .arg(1)
                .arg("EX")
                .arg(MARKER_TTL_SECS)
                .ignore();
            commands += 3; // the marker, MULTI and EXEC
            pipe
        });
        let Pending { acks, events, .. } = pending;
        Flush {
            pipeline,
            marker,
            acks,
            commands,
            keys,
            events,
        }
    }
}

/// Writes `flush`, retrying until Redis applied it once, then releases its
/// acknowledgements. Marks the component degraded while Redis fails.
pub async fn run(mut conn: ConnectionManager, flush: Flush, cx: Arc<FlushContext>) {
    let Flush {
        pipeline,
        marker,
        acks,
        ..
    } = flush;
    let Some(pipeline) = pipeline else {
        acks.delivered();
        return;
    };
    let mut attempt: u32 = 0;
    let mut unsure = false;
    let mut failing_since: Option<Instant> = None;
    loop {
        let outcome = async {
            if unsure {
                // An earlier attempt may have been applied with its reply
                // lost: the marker, written inside the transaction, says.
                let applied: bool = redis::cmd("EXISTS")
                    .arg(&marker)
                    .query_async(&mut conn)
                    .await?;
                if applied {
                    return Ok(());
                }
            }
            pipeline.query_async::<()>(&mut conn).await
        }
        .await;
        match outcome {
            Ok(()) => {
                if cx.health.set_healthy() {
                    let down = failing_since.map_or(Duration::ZERO, |t| t.elapsed());
                    crate::telemetry::destination_restored(&cx.component_id, down);
                }
                acks.delivered();
                return;
            }
            Err(err) => {
                unsure = true;
                failing_since.get_or_insert_with(Instant::now);
                report_failure(&cx, &err, attempt);
                tokio::time::sleep(crate::sinks::retry::backoff(
                    BACKOFF_INITIAL,
                    BACKOFF_MAX,
                    attempt,
                ))
                .await;
                attempt = attempt.saturating_add(1);
            }
        }
    }
}

/// Pings Redis once to learn whether it is reachable.
pub async fn probe(mut conn: ConnectionManager, cx: Arc<FlushContext>) {
    match redis::cmd("PING").query_async::<()>(&mut conn).await {
        Ok(()) => {
            if cx.health.set_healthy() {
                crate::telemetry::destination_restored(&cx.component_id, Duration::ZERO);
            }
        }
        Err(err) => report_failure(&cx, &err, 0),
    }
}

fn report_failure(cx: &FlushContext, err: &redis::RedisError, attempt: u32) {
    let reason = format!("redis unreachable or failing: {err}");
    let newly = cx.health.set_degraded(reason.clone());
    crate::telemetry::destination_failing(&cx.component_id, &reason, newly, attempt);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flush_is_one_transaction_with_a_marker() {
        let cx = FlushContext::new("c", Arc::default(), Some(60), false);
        let mut pending = Pending::default();
        pending.add("k1", 2, false);
        pending.add("k1", 2, false);
        pending.add("k2", 2, false);
        let flush = Flush::new(pending, &cx);
        // MULTI, 2 INCRBY, 2 EXPIRE, SET marker, EXEC.
        assert_eq!(flush.commands, 7);
        assert_eq!((flush.keys, flush.events), (2, 3));
        assert!(flush.marker.starts_with("sluice:flush:c:"));
        let second = Flush::new(Pending::default(), &cx);
        assert_ne!(flush.marker, second.marker);
        assert!(second.pipeline.is_none());
    }
}
