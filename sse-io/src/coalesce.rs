//! Write coalescing for bursts: streams that wrote a moment ago wait for the
//! next shared tick before writing again, so that one write carries every
//! event published meanwhile.
//!
//! Most of what a delivery costs is the kernel's work per write (on loopback
//! it also does the receiver's); in a burst, a subscriber that writes each
//! event on its own pays it once per event. A per-stream timer would cost as
//! much as it saves, so one ticker serves every waiting stream: it runs only
//! while some stream waits, wakes them all each tick, and stops when none
//! is left.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, Weak};
use std::task::Waker;
use std::time::Duration;

use crate::runtime::Runtime;

/// The longest a burst's write waits for more events.
pub(crate) const TICK: Duration = Duration::from_millis(2);

/// The shared tick.
#[derive(Default)]
pub(crate) struct Coalescer {
    waiting: Mutex<Vec<Waker>>,
    /// Ticks so far: a stream that deferred at tick `n` writes once the
    /// epoch has moved past it.
    epoch: AtomicU64,
    running: AtomicBool,
}

impl Coalescer {
    /// The current tick.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Wakes `waker` at the next tick; returns the tick it waits past.
    /// `this` is the coalescer itself, for the ticker task to hold weakly.
    pub(crate) fn defer<R: Runtime>(this: &Weak<Self>, me: &Self, rt: &R, waker: &Waker) -> u64 {
        let epoch = me.epoch();
        me.waiting.lock().unwrap_or_else(|e| e.into_inner()).push(waker.clone());
        if !me.running.swap(true, Ordering::AcqRel) {
            let this = this.clone();
            let timer = rt.clone();
            rt.spawn(Box::pin(async move {
                loop {
                    timer.sleep(TICK).await;
                    let Some(me) = this.upgrade() else { return };
                    let waiting = std::mem::take(&mut *me.waiting.lock().unwrap_or_else(|e| e.into_inner()));
                    me.epoch.fetch_add(1, Ordering::AcqRel);
                    if waiting.is_empty() {
                        me.running.store(false, Ordering::Release);
                        // A stream that deferred between the take and the
                        // store would wait for a ticker that stopped.
                        let late = !me.waiting.lock().unwrap_or_else(|e| e.into_inner()).is_empty();
                        if late && !me.running.swap(true, Ordering::AcqRel) {
                            continue;
                        }
                        return;
                    }
                    for waker in waiting {
                        waker.wake();
                    }
                }
            }));
        }
        epoch
    }
}
