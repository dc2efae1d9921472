//! Waiting between retries of a sink's writes: exponential backoff with
//! jitter, shared by the sinks that retry a destination (`redis`, `http`) so
//! their waits grow and spread the same way.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A random wait between half and all of `initial × 2^attempt`, at most `max`.
pub fn backoff(initial: Duration, max: Duration, attempt: u32) -> Duration {
    let full = initial.saturating_mul(1u32 << attempt.min(16)).min(max);
    full.mul_f64(0.5 + 0.5 * jitter())
}

/// A number in [0, 1) that differs between calls and processes; retries need
/// spread, not cryptographic randomness.
fn jitter() -> f64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let x = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed) ^ seed;
    (xxhash_rust::xxh3::xxh3_64(&x.to_le_bytes()) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_bounded() {
        let (initial, max) = (Duration::from_millis(100), Duration::from_secs(5));
        for attempt in 0..40 {
            let b = backoff(initial, max, attempt);
            assert!(b <= max, "{b:?}");
            assert!(b >= initial / 2, "{b:?}");
        }
        assert!(backoff(initial, max, 10) >= max / 2);
    }
}
