//! The stop signal, passed down explicitly.
//!
//! `run(config, shutdown)` takes any future as its stop signal; the topology
//! turns it into a [`Shutdown`] trigger whose [`ShutdownSignal`] clones are
//! handed to every source. A source checks it between reads (from a blocking
//! thread with [`ShutdownSignal::is_triggered`], from async code with
//! [`ShutdownSignal::wait`]) and stops taking input; the rest of the topology
//! drains behind it.

use tokio::sync::watch;

/// The owner's side: fires the signal once.
#[derive(Debug)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

/// A listener's side.
#[derive(Debug, Clone)]
pub struct ShutdownSignal {
    rx: watch::Receiver<bool>,
}

impl Shutdown {
    pub fn new() -> (Shutdown, ShutdownSignal) {
        let (tx, rx) = watch::channel(false);
        (Shutdown { tx }, ShutdownSignal { rx })
    }

    /// Tells every listener to stop. Idempotent.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// A new listener.
    pub fn signal(&self) -> ShutdownSignal {
        ShutdownSignal {
            rx: self.tx.subscribe(),
        }
    }
}

impl ShutdownSignal {
    /// True once shutdown was triggered.
    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves when shutdown is triggered (or the trigger is dropped).
    pub async fn wait(&mut self) {
        // An Err means the Shutdown owner is gone, which also means stop.
        let _ = self.rx.wait_for(|stop| *stop).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn trigger_reaches_every_clone() {
        let (shutdown, signal) = Shutdown::new();
        let mut a = signal.clone();
        let b = shutdown.signal();
        assert!(!a.is_triggered());
        shutdown.trigger();
        a.wait().await;
        assert!(b.is_triggered());
    }
}
