//! A cancellation signal for an operation in progress (Ctrl-C at the command line, a client
//! gone from the coming HTTP API): set once, seen by every task of the operation.

use std::sync::Arc;

use tokio::sync::watch;

/// Asks an operation to stop; clones share the signal. Once cancelled, it stays cancelled.
#[derive(Debug, Clone)]
pub struct Cancellation(Arc<watch::Sender<bool>>);

impl Default for Cancellation {
    fn default() -> Cancellation {
        Cancellation::new()
    }
}

impl Cancellation {
    /// A signal not set yet.
    pub fn new() -> Cancellation {
        Cancellation(Arc::new(watch::Sender::new(false)))
    }

    /// Sets the signal: every waiter of [`Cancellation::cancelled`] wakes.
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }

    /// Whether the signal is set.
    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes once the signal is set (at once if it is); never if it never is.
    pub async fn cancelled(&self) {
        let mut set = self.0.subscribe();
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = set.wait_for(|set| *set).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_clone_sees_the_signal_once_set() {
        let signal = Cancellation::new();
        let other = signal.clone();
        assert!(!other.is_cancelled());
        let waiter = tokio::spawn(async move { other.cancelled().await });
        signal.cancel();
        waiter.await.unwrap();
        assert!(signal.is_cancelled());
        // Already set: completes at once.
        signal.clone().cancelled().await;
    }
}
