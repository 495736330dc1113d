//! The executor the server runs on: one thread per core, each with its own
//! queues, in two priorities.
//!
//! A publish wakes every stream it reaches, thousands at once. On one FIFO
//! queue (smol's `Executor`), whatever arrives meanwhile waits behind all of
//! them: the publisher's next request, a health check, a new client's head.
//! Here a task that streams is background work
//! ([`Runtime::background`](sse_io::Runtime::background)) and each thread
//! runs foreground tasks first. Requests then get in during a fan-out, and a
//! publisher that runs ahead of it lets each stream write the events of a
//! burst together: fewer, larger writes, which is most of what a delivery
//! costs.
//!
//! Each thread runs its queues inside smol's `block_on`, which polls the
//! reactor (sockets, timers) whenever the queues are empty and every
//! [`BUDGET`] tasks otherwise. Tasks stay on the thread they were spawned
//! on; connections are dealt to threads in turn. With one executor shared
//! by every thread, the threads' hand-offs and wake-ups cost more CPU than
//! the deliveries themselves (measured with the scale benchmark: 4.6x the
//! CPU per delivery of one thread), while sharding keeps every core busy
//! without them.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

use async_task::{Builder, Runnable};
use concurrent_queue::ConcurrentQueue;

/// A task's priority: true once it called
/// [`Runtime::background`](sse_io::Runtime::background).
type Background = Arc<AtomicBool>;

/// Tasks run between two polls of the reactor.
const BUDGET: usize = 64;

/// Foreground tasks run in a row before one background task gets its turn,
/// so that a flood of requests slows streams down without stopping them.
const FAIRNESS: usize = 16;

/// One thread's queues.
struct Shard {
    foreground: ConcurrentQueue<Runnable<Background>>,
    background: ConcurrentQueue<Runnable<Background>>,
    /// The thread found both queues empty and waits for `waker`.
    sleeping: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

thread_local! {
    /// The priority of the task this thread is running.
    static CURRENT: RefCell<Option<Background>> = const { RefCell::new(None) };
}

impl Shard {
    fn new() -> Self {
        Shard {
            foreground: ConcurrentQueue::unbounded(),
            background: ConcurrentQueue::unbounded(),
            sleeping: AtomicBool::new(false),
            waker: Mutex::new(None),
        }
    }

    fn schedule(&self, runnable: Runnable<Background>) {
        let queue =
            if runnable.metadata().load(Ordering::Relaxed) { &self.background } else { &self.foreground };
        // Unbounded and never closed: the push cannot fail.
        let _ = queue.push(runnable);
        // Pairs with the fence in `Run::poll`: either that thread sees this
        // task when it looks again, or this one sees it sleeping.
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed)
            && self.sleeping.swap(false, Ordering::AcqRel)
            && let Some(waker) = self.waker.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
        {
            waker.wake_by_ref();
        }
    }

    fn next(&self, streak: &mut usize) -> Option<Runnable<Background>> {
        let runnable = if *streak < FAIRNESS {
            self.foreground.pop().or_else(|_| self.background.pop())
        } else {
            self.background.pop().or_else(|_| self.foreground.pop())
        }
        .ok()?;
        if runnable.metadata().load(Ordering::Relaxed) {
            *streak = 0;
        } else {
            *streak += 1;
        }
        Some(runnable)
    }
}

/// Runs a shard's tasks; never completes.
struct Run {
    shard: &'static Shard,
    streak: usize,
}

impl Future for Run {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let shard = self.shard;
        for _ in 0..BUDGET {
            let Some(runnable) = shard.next(&mut self.streak) else {
                {
                    let mut waker = shard.waker.lock().unwrap_or_else(|e| e.into_inner());
                    if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        *waker = Some(cx.waker().clone());
                    }
                }
                shard.sleeping.store(true, Ordering::Relaxed);
                fence(Ordering::SeqCst);
                if shard.foreground.is_empty() && shard.background.is_empty() {
                    return Poll::Pending;
                }
                // A task came in meanwhile: run it.
                shard.sleeping.store(false, Ordering::Relaxed);
                continue;
            };
            let priority = runnable.metadata().clone();
            CURRENT.with(|current| *current.borrow_mut() = Some(priority));
            runnable.run();
            CURRENT.with(|current| *current.borrow_mut() = None);
        }
        // Out of budget: let `block_on` poll the reactor, then go on.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// The shards, one per thread, started on first use: `SMOL_THREADS`, or
/// one per available core.
fn shards() -> &'static [Shard] {
    static SHARDS: OnceLock<&'static [Shard]> = OnceLock::new();
    SHARDS.get_or_init(|| {
        let threads = std::env::var("SMOL_THREADS")
            .ok()
            .and_then(|n| n.parse::<usize>().ok())
            .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
            .unwrap_or(1)
            .max(1);
        let shards: &'static [Shard] = Box::leak((0..threads).map(|_| Shard::new()).collect());
        for (i, shard) in shards.iter().enumerate() {
            std::thread::Builder::new()
                .name(format!("sse-smol-{i}"))
                .spawn(move || smol::block_on(Run { shard, streak: 0 }))
                .expect("spawning an executor thread");
        }
        shards
    })
}

/// Spawns a detached task on the next thread in turn.
pub(crate) fn spawn(task: sse_io::BoxFuture<'static, ()>) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let shards = shards();
    let shard: &'static Shard = &shards[NEXT.fetch_add(1, Ordering::Relaxed) % shards.len()];
    // A task that panics ends, not its thread.
    let (runnable, task) = Builder::new()
        .metadata(Arc::new(AtomicBool::new(false)))
        .propagate_panic(true)
        .spawn(|_| task, move |runnable| shard.schedule(runnable));
    runnable.schedule();
    task.detach();
}

/// Marks the running task as background work (nothing outside a task of
/// these threads).
pub(crate) fn background() {
    CURRENT.with(|current| {
        if let Some(priority) = current.borrow().as_ref() {
            priority.store(true, Ordering::Relaxed);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn a_request_is_not_queued_behind_a_fan_out() {
        // Thousands of streaming (background) tasks woken at once, as by a
        // publish; a foreground task spawned right after must run before
        // most of them (on one FIFO queue it would run after all).
        const STREAMS: usize = 20_000;
        let wakers = Arc::new(Mutex::new(Vec::new()));
        let ran = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel();
        for _ in 0..STREAMS {
            let (wakers, ran, tx) = (wakers.clone(), ran.clone(), tx.clone());
            spawn(Box::pin(async move {
                background();
                let mut registered = false;
                futures_lite::future::poll_fn(|cx| {
                    if registered {
                        return Poll::Ready(());
                    }
                    registered = true;
                    wakers.lock().unwrap().push(cx.waker().clone());
                    tx.send(()).unwrap();
                    Poll::Pending
                })
                .await;
                // A delivery's worth of work.
                let start = std::time::Instant::now();
                while start.elapsed() < Duration::from_micros(50) {
                    std::hint::spin_loop();
                }
                ran.fetch_add(1, Ordering::Relaxed);
            }));
        }
        for _ in 0..STREAMS {
            rx.recv_timeout(Duration::from_secs(10)).unwrap();
        }
        for waker in wakers.lock().unwrap().drain(..) {
            waker.wake();
        }
        let (done, seen) = mpsc::channel();
        let counter = ran.clone();
        let at_spawn = ran.load(Ordering::Relaxed);
        spawn(Box::pin(async move {
            done.send(counter.load(Ordering::Relaxed)).unwrap();
        }));
        let at_run = seen.recv_timeout(Duration::from_secs(10)).unwrap();
        // 20,000 tasks of 50 µs take a second: most still wait when the
        // request comes, and it goes before them.
        assert!(at_spawn < STREAMS / 2, "{at_spawn} of {STREAMS} streams ran before the request came");
        assert!(at_run - at_spawn < 1_000, "the request waited for {} woken streams", at_run - at_spawn);
        while ran.load(Ordering::Relaxed) < STREAMS {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_panicking_task_leaves_its_thread_running() {
        for _ in 0..shards().len() {
            spawn(Box::pin(async { panic!("a task panicked on purpose") }));
        }
        let (tx, rx) = mpsc::channel();
        for _ in 0..shards().len() * 2 {
            let tx = tx.clone();
            spawn(Box::pin(async move {
                smol::Timer::after(Duration::from_millis(1)).await;
                tx.send(()).unwrap();
            }));
        }
        for _ in 0..shards().len() * 2 {
            rx.recv_timeout(Duration::from_secs(5)).unwrap();
        }
    }
}
