//! Supervision: who restarts what, and when a component is given up on.
//!
//! ```text
//!                      topology::run  (the root supervisor)
//!                 owns the StateStore, watches ComponentEvents,
//!           fails the topology (ready=false, graceful stop, exit≠0)
//!                                 │
//!        ┌────────────────────────┼─────────────────────────┐
//!   SourceActor              TransformActor              SinkActor
//!   (source task +           (RestartTracker +           (RestartTracker +
//!    bounded hand-off)        Box<dyn Transform>)         Box<dyn Sink>)
//! ```
//!
//! Components are plain structs owned by their actor. actix does not catch
//! panics, so each actor runs its component's work inside `catch_unwind`; a
//! panic or fatal error is a *crash*. On a crash the actor asks its
//! [`RestartTracker`] what to do:
//!
//! * **Restart**: wait the backoff (the actor takes no work meanwhile, so its
//!   mailbox fills and backpressure holds upstream), build a fresh instance from
//!   the config — state kept in the `StateStore` (keyed maps) survives — and
//!   retry what was being processed. An event that crashes the component twice
//!   is *poison*: it goes to the component's `rejected` output with reason
//!   `poison`, never lost and never retried forever.
//! * **Fail**: more than `max_restarts` crashes within `within`. The actor
//!   reports [`ComponentEvent::Failed`] to the root, which marks `/ready` false
//!   and shuts the topology down gracefully; the failed actor keeps answering
//!   its mailbox (failing the batches' acknowledgements) so everything else
//!   drains, and `sluice run` exits non-zero for the orchestrator to replace it.
//!
//! Sources are not restarted: re-running one would re-read its input.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::config::RestartConfig;
use crate::telemetry::{ComponentTelemetry, RunState};

/// What a component reports to the root supervisor.
#[derive(Debug, Clone)]
pub enum ComponentEvent {
    /// All input was processed and flushed; the actor stopped.
    Finished(Arc<str>),
    /// The component gave up: restart budget exhausted, or a source error.
    Failed(Arc<str>, String),
}

/// The answer to a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Restart after waiting this long.
    Restart { backoff: Duration, in_window: u32 },
    /// Too many crashes: give up.
    Fail,
}

/// Counts crashes in a sliding window and computes the backoff.
#[derive(Debug, Clone)]
pub struct RestartTracker {
    policy: RestartConfig,
    /// Crash times inside the window; at most `max_restarts + 1` kept.
    crashes: VecDeque<Instant>,
}

impl RestartTracker {
    pub fn new(policy: RestartConfig) -> Self {
        RestartTracker {
            policy,
            crashes: VecDeque::new(),
        }
    }

    /// Records a crash at `now` and decides.
    pub fn on_crash(&mut self, now: Instant) -> Decision {
        let window = self.policy.within.0;
        while let Some(&oldest) = self.crashes.front() {
            if now.duration_since(oldest) > window {
                self.crashes.pop_front();
            } else {
                break;
            }
        }
        self.crashes.push_back(now);
        let in_window = self.crashes.len() as u32;
        if in_window > self.policy.max_restarts {
            // Keep the deque bounded even if the caller ignores `Fail`.
            self.crashes.pop_front();
            return Decision::Fail;
        }
        let exponent = in_window.saturating_sub(1).min(31);
        let initial = self.policy.backoff.initial.0;
        let backoff = initial
            .checked_mul(1u32 << exponent)
            .unwrap_or(self.policy.backoff.max.0)
            .min(self.policy.backoff.max.0);
        Decision::Restart { backoff, in_window }
    }
}

/// Builds a fresh instance of a component (also after a crash).
pub type Factory<T> = Box<dyn Fn() -> Result<T, String> + Send>;

/// A component instance under supervision: the instance, how to rebuild it,
/// its crash history and its telemetry.
pub struct Supervised<T> {
    pub id: Arc<str>,
    pub instance: T,
    factory: Factory<T>,
    tracker: RestartTracker,
    pub telemetry: ComponentTelemetry,
    failed: bool,
    events: mpsc::Sender<ComponentEvent>,
}

impl<T> Supervised<T> {
    pub fn new(
        id: Arc<str>,
        factory: Factory<T>,
        policy: RestartConfig,
        telemetry: ComponentTelemetry,
        events: mpsc::Sender<ComponentEvent>,
    ) -> Result<Self, String> {
        let instance = factory()?;
        Ok(Supervised {
            id,
            instance,
            factory,
            tracker: RestartTracker::new(policy),
            telemetry,
            failed: false,
            events,
        })
    }

    /// True once the component was given up on.
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    /// Handles a crash: waits the backoff and rebuilds the instance, or marks
    /// the component failed. Returns whether it may go on.
    pub async fn recover(&mut self, message: &str) -> bool {
        match self.tracker.on_crash(Instant::now()) {
            Decision::Restart { backoff, in_window } => {
                self.telemetry.restarting(message, backoff, in_window);
                tokio::time::sleep(backoff).await;
                match (self.factory)() {
                    Ok(instance) => {
                        self.instance = instance;
                        self.telemetry.state(RunState::Running);
                        true
                    }
                    Err(err) => {
                        self.fail(format!("could not be rebuilt after a crash: {err}"));
                        false
                    }
                }
            }
            Decision::Fail => {
                self.fail(format!(
                    "crashed more than {} times within {}; last crash: {message}",
                    self.tracker.policy.max_restarts, self.tracker.policy.within
                ));
                false
            }
        }
    }

    /// Gives up on the component and tells the root supervisor.
    pub fn fail(&mut self, reason: String) {
        if self.failed {
            return;
        }
        self.failed = true;
        self.telemetry.failed(&reason);
        report(
            &self.events,
            ComponentEvent::Failed(self.id.clone(), reason),
        );
    }

    /// The component processed all its input.
    pub fn finished(&self) {
        if !self.failed {
            self.telemetry.state(RunState::Finished);
        }
        report(&self.events, ComponentEvent::Finished(self.id.clone()));
    }
}

/// Sends a lifecycle event to the root. The channel holds two events per
/// component (at most one `Failed` and one `Finished` each), so it never fills.
pub fn report(events: &mpsc::Sender<ComponentEvent>, event: ComponentEvent) {
    if let Err(err) = events.try_send(event) {
        tracing::error!("could not report a component event to the topology: {err}");
    }
}

/// The text of a caught panic.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BackoffConfig, ConfigDuration};

    fn policy(max: u32) -> RestartConfig {
        RestartConfig {
            max_restarts: max,
            within: ConfigDuration(Duration::from_secs(60)),
            backoff: BackoffConfig {
                initial: ConfigDuration(Duration::from_millis(100)),
                max: ConfigDuration(Duration::from_millis(350)),
            },
        }
    }

    #[test]
    fn backoff_doubles_up_to_max_then_fails() {
        let mut t = RestartTracker::new(policy(4));
        let now = Instant::now();
        let backoffs: Vec<_> = (0..4)
            .map(|_| match t.on_crash(now) {
                Decision::Restart { backoff, .. } => backoff.as_millis(),
                Decision::Fail => 0,
            })
            .collect();
        assert_eq!(backoffs, vec![100, 200, 350, 350]);
        assert_eq!(t.on_crash(now), Decision::Fail);
    }

    #[test]
    fn old_crashes_leave_the_window() {
        let mut t = RestartTracker::new(policy(1));
        let now = Instant::now();
        assert!(matches!(t.on_crash(now), Decision::Restart { .. }));
        let later = now + Duration::from_secs(61);
        assert!(matches!(
            t.on_crash(later),
            Decision::Restart { in_window: 1, .. }
        ));
        assert_eq!(t.on_crash(later), Decision::Fail);
    }

    #[test]
    fn panic_messages() {
        let caught = std::panic::catch_unwind(|| panic!("boom {}", 7)).unwrap_err();
        assert_eq!(panic_message(caught.as_ref()), "boom 7");
    }
}
