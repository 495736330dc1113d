//! A one-way flag that tasks can wait for.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set once, awaited by any number of tasks (shutdown, stream closed).
#[derive(Debug, Default)]
pub(crate) struct Signal {
    flag: AtomicBool,
    event: event_listener::Event,
}

impl Signal {
    /// Sets the flag; returns whether this call set it (false if it was set).
    pub(crate) fn set(&self) -> bool {
        let first = !self.flag.swap(true, Ordering::AcqRel);
        self.event.notify(usize::MAX);
        first
    }

    pub(crate) fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Completes once the flag is set.
    pub(crate) async fn wait(&self) {
        loop {
            if self.is_set() {
                return;
            }
            // Listen before the second check, so a `set` in between is seen.
            let listener = self.event.listen();
            if self.is_set() {
                return;
            }
            listener.await;
        }
    }
}
