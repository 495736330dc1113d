//! Reactive values: subscribers get the current value at once, then the
//! newest value whenever it changes, coalesced.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

struct Inner<T> {
    /// The value and its version (bumped on every change).
    state: Mutex<(T, u64)>,
    changed: event_listener::Event,
}

/// A watched value: the framework helper's `watch(ref)`.
///
/// A slow subscriber gets the newest state, not a backlog: changes between
/// two of its reads are coalesced into one.
///
/// ```
/// let counter = sse_io::Reactive::new(0);
/// let mut watcher = counter.watch();
/// counter.set(1);
/// counter.update(|n| *n += 1);
/// futures_lite::future::block_on(async {
///     assert_eq!(watcher.next().await, 2); // 1 was coalesced away
/// });
/// ```
pub struct Reactive<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Reactive<T> {
    fn clone(&self) -> Self {
        Reactive { inner: self.inner.clone() }
    }
}

impl<T: fmt::Debug> fmt::Debug for Reactive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("Reactive").field("value", &state.0).field("version", &state.1).finish()
    }
}

impl<T: Clone> Reactive<T> {
    /// A value, version 1.
    pub fn new(value: T) -> Self {
        Reactive {
            inner: Arc::new(Inner { state: Mutex::new((value, 1)), changed: event_listener::Event::new() }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (T, u64)> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the value and wakes every watcher.
    pub fn set(&self, value: T) {
        self.update(|v| *v = value);
    }

    /// Changes the value in place and wakes every watcher.
    pub fn update(&self, f: impl FnOnce(&mut T)) {
        let mut state = self.lock();
        f(&mut state.0);
        state.1 += 1;
        drop(state);
        self.inner.changed.notify(usize::MAX);
    }

    /// The current value.
    pub fn get(&self) -> T {
        self.lock().0.clone()
    }

    /// A watcher whose first `next` returns the current value at once.
    #[must_use = "a watcher does nothing unless polled"]
    pub fn watch(&self) -> Watcher<T> {
        Watcher { reactive: self.clone(), seen: 0, listener: None }
    }
}

/// One subscriber of a [`Reactive`]: [`next`](Self::next), or use it as a
/// [`Stream`](futures_lite::Stream) that never ends.
pub struct Watcher<T> {
    reactive: Reactive<T>,
    /// The version last returned (0: none yet).
    seen: u64,
    listener: Option<event_listener::EventListener>,
}

impl<T: Clone> Watcher<T> {
    /// The current value if it changed since the last call (at once on the
    /// first call), otherwise waits for a change. Always the newest value.
    pub async fn next(&mut self) -> T {
        loop {
            let listener = {
                if let Some(value) = self.changed() {
                    return value;
                }
                let listener = self.reactive.inner.changed.listen();
                // Look again: a change between the two is not missed.
                if let Some(value) = self.changed() {
                    return value;
                }
                listener
            };
            listener.await;
        }
    }

    /// The value if it changed since the last look.
    fn changed(&mut self) -> Option<T> {
        let state = self.reactive.lock();
        (state.1 != self.seen).then(|| {
            self.seen = state.1;
            state.0.clone()
        })
    }
}

impl<T: Clone> futures_lite::Stream for Watcher<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = &mut *self;
        loop {
            if let Some(value) = this.changed() {
                this.listener = None;
                return Poll::Ready(Some(value));
            }
            let listener = match this.listener.as_mut() {
                Some(listener) => listener,
                None => {
                    // Listen, then look again before waiting.
                    let listener = this.reactive.inner.changed.listen();
                    this.listener.insert(listener)
                }
            };
            if Pin::new(listener).poll(cx).is_pending() {
                if this.reactive.lock().1 != this.seen {
                    continue;
                }
                return Poll::Pending;
            }
            this.listener = None;
        }
    }
}
