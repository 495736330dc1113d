//! A deterministic simulation for testing `sse-io` on a fake clock.
//!
//! - [`FakeRuntime`] implements [`Runtime`] with a virtual clock: `now()` is
//!   a fixed base instant plus a virtual offset, `sleep_until` registers a
//!   timer, and `bind`/`accept`/`connect` work over in-memory pipes.
//! - [`pipe`] is an in-memory duplex connection with a bounded buffer per
//!   direction, so a client that does not read makes the server's writes
//!   wait, exactly as a full TCP window does.
//! - [`Sim::run`] is the executor: it polls the test's future and every
//!   spawned task until none can make progress, and only then moves the
//!   clock to the earliest timer. Time never moves while anything can run,
//!   so whatever happens "at" an instant happens before the clock moves on,
//!   and tests can assert exact virtual instants. Nothing sleeps for real.
//!
//! A simulation that waits with no timer left (a deadlock), runs past
//! [`MAX_VIRTUAL_TIME`], or polls more than [`MAX_POLLS`] times (a busy
//! loop) panics with a message saying so.

// Each test file uses part of the kit.
#![allow(dead_code)]

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use futures_lite::future::poll_fn;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite};
use sse_io::{BoxFuture, Runtime};

/// The most virtual time a simulation may reach: a test still waiting then
/// waits for something that will not happen.
pub(crate) const MAX_VIRTUAL_TIME: Duration = Duration::from_secs(60 * 60);

/// The most polls (of the test's future and of tasks) a simulation may make:
/// more means something wakes itself forever without progress.
pub(crate) const MAX_POLLS: u64 = 1_000_000;

/// Buffer per direction of pipes made by [`FakeRuntime::connect`] unless
/// [`FakeRuntime::set_connect_capacity`] says otherwise.
pub(crate) const DEFAULT_CAPACITY: usize = 64 * 1024;

/// Locks, ignoring poison: a test that panicked already failed, and drops
/// that run while it unwinds must not panic again.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The clock, the timers and the tasks waiting to be adopted by [`Sim`].
struct Core {
    start: Instant,
    elapsed: Duration,
    timers: Vec<Timer>,
    next_timer: u64,
    spawned: Vec<BoxFuture<'static, ()>>,
    listeners: HashMap<SocketAddr, Arc<Mutex<Backlog>>>,
    next_port: u16,
    connect_capacity: usize,
}

impl Core {
    fn now(&self) -> Instant {
        self.start + self.elapsed
    }
}

/// A pending `sleep_until`: registered when first polled before its
/// deadline, removed when it fires or is dropped.
struct Timer {
    id: u64,
    deadline: Instant,
    waker: Waker,
}

/// A [`Runtime`] on a virtual clock, driven by a [`Sim`].
#[derive(Clone)]
pub(crate) struct FakeRuntime {
    core: Arc<Mutex<Core>>,
}

impl FakeRuntime {
    fn new() -> Self {
        FakeRuntime {
            core: Arc::new(Mutex::new(Core {
                start: Instant::now(),
                elapsed: Duration::ZERO,
                timers: Vec::new(),
                next_timer: 0,
                spawned: Vec::new(),
                listeners: HashMap::new(),
                next_port: 40_000,
                connect_capacity: DEFAULT_CAPACITY,
            })),
        }
    }

    /// The instant the simulation started at (virtual time zero).
    pub(crate) fn start(&self) -> Instant {
        lock(&self.core).start
    }

    /// Virtual time since the simulation started.
    pub(crate) fn elapsed(&self) -> Duration {
        lock(&self.core).elapsed
    }

    /// Timers armed and not yet fired or dropped.
    pub(crate) fn pending_timers(&self) -> usize {
        lock(&self.core).timers.len()
    }

    /// Buffer per direction of the pipes `connect` makes from now on.
    pub(crate) fn set_connect_capacity(&self, capacity: usize) {
        lock(&self.core).connect_capacity = capacity;
    }

    /// A pipe (as [`pipe`]) whose ends note, on this clock, when a write
    /// first found the buffer full.
    pub(crate) fn pipe(&self, capacity: usize) -> (End, End) {
        pipe_with(capacity, Some(self.clone()))
    }

    /// Spawns `future`; the handle completes with its output.
    pub(crate) fn spawn_task<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> JoinHandle<T> {
        let state = Arc::new(Mutex::new(Join { output: None, finished_at: None, waker: None }));
        let (done, rt) = (state.clone(), self.clone());
        self.spawn(Box::pin(async move {
            let output = future.await;
            let mut join = lock(&done);
            join.output = Some(output);
            join.finished_at = Some(rt.elapsed());
            if let Some(waker) = join.waker.take() {
                waker.wake();
            }
        }));
        JoinHandle { state }
    }

    /// Reads everything from `reader` on a task of its own, noting when each
    /// byte arrived.
    pub(crate) fn record(&self, mut reader: impl AsyncRead + Unpin + Send + 'static) -> Recording {
        let state = Arc::new(Mutex::new(Received::default()));
        let (received, rt) = (state.clone(), self.clone());
        self.spawn(Box::pin(async move {
            let mut chunk = [0u8; 4096];
            loop {
                let result = reader.read(&mut chunk).await;
                let mut received = lock(&received);
                match result {
                    Ok(n) if n > 0 => {
                        received.bytes.extend_from_slice(&chunk[..n]);
                        let end = received.bytes.len();
                        received.reads.push((rt.elapsed(), end));
                    }
                    Ok(_) | Err(_) => {
                        received.eof_at = Some(rt.elapsed());
                        received.error = result.err().map(|e| e.kind());
                    }
                }
                if let Some(waker) = received.waker.take() {
                    waker.wake();
                }
                if received.eof_at.is_some() {
                    return;
                }
            }
        }));
        Recording { state }
    }
}

/// The future of [`FakeRuntime::sleep_until`].
struct Sleep {
    core: Arc<Mutex<Core>>,
    id: u64,
    deadline: Instant,
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut core = lock(&self.core);
        if core.now() >= self.deadline {
            core.timers.retain(|t| t.id != self.id);
            return Poll::Ready(());
        }
        match core.timers.iter_mut().find(|t| t.id == self.id) {
            Some(timer) => timer.waker.clone_from(cx.waker()),
            None => {
                core.timers.push(Timer { id: self.id, deadline: self.deadline, waker: cx.waker().clone() })
            }
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        // A dropped timer must not pull the clock forward.
        lock(&self.core).timers.retain(|t| t.id != self.id);
    }
}

/// Connections waiting to be accepted by one listener.
#[derive(Default)]
struct Backlog {
    pending: VecDeque<(End, SocketAddr)>,
    acceptor: Option<Waker>,
}

/// An in-memory listener; dropping it refuses further connections.
pub(crate) struct Listener {
    addr: SocketAddr,
    backlog: Arc<Mutex<Backlog>>,
    core: Arc<Mutex<Core>>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        lock(&self.core).listeners.remove(&self.addr);
    }
}

impl Runtime for FakeRuntime {
    type Stream = End;
    type Listener = Listener;

    fn spawn(&self, task: BoxFuture<'static, ()>) {
        lock(&self.core).spawned.push(task);
    }

    fn now(&self) -> Instant {
        lock(&self.core).now()
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        let mut core = lock(&self.core);
        core.next_timer += 1;
        Box::pin(Sleep { core: self.core.clone(), id: core.next_timer, deadline })
    }

    fn bind(&self, mut addr: SocketAddr) -> BoxFuture<'static, io::Result<Listener>> {
        let mut core = lock(&self.core);
        if addr.port() == 0 {
            core.next_port += 1;
            addr.set_port(core.next_port);
        }
        let result = match core.listeners.entry(addr) {
            Entry::Occupied(_) => Err(io::Error::from(io::ErrorKind::AddrInUse)),
            Entry::Vacant(slot) => {
                let backlog = slot.insert(Arc::default()).clone();
                Ok(Listener { addr, backlog, core: self.core.clone() })
            }
        };
        Box::pin(async move { result })
    }

    fn local_addr(&self, listener: &Listener) -> io::Result<SocketAddr> {
        Ok(listener.addr)
    }

    fn accept<'a>(&self, listener: &'a Listener) -> BoxFuture<'a, io::Result<(End, SocketAddr)>> {
        Box::pin(poll_fn(move |cx| {
            let mut backlog = lock(&listener.backlog);
            match backlog.pending.pop_front() {
                Some(accepted) => Poll::Ready(Ok(accepted)),
                None => {
                    backlog.acceptor = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        }))
    }

    fn connect(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<End>> {
        let (backlog, peer, capacity) = {
            let mut core = lock(&self.core);
            core.next_port += 1;
            let peer = SocketAddr::from(([10, 0, 0, 1], core.next_port));
            (core.listeners.get(&addr).cloned(), peer, core.connect_capacity)
        };
        let result = match backlog {
            None => Err(io::Error::from(io::ErrorKind::ConnectionRefused)),
            Some(backlog) => {
                let (client, server) = self.pipe(capacity);
                let mut backlog = lock(&backlog);
                backlog.pending.push_back((server, peer));
                if let Some(waker) = backlog.acceptor.take() {
                    waker.wake();
                }
                Ok(client)
            }
        };
        Box::pin(async move { result })
    }
}

/// One direction of a pipe.
struct Direction {
    buf: VecDeque<u8>,
    capacity: usize,
    /// The writing side closed or was dropped: the reader gets the end of
    /// input once `buf` is drained.
    write_closed: bool,
    /// The reading side was dropped: writes fail.
    reader_gone: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
    clock: Option<FakeRuntime>,
    /// When a write first found `buf` full (on `clock`).
    first_full_at: Option<Duration>,
}

type Shared = Arc<Mutex<Direction>>;

/// Makes an in-memory duplex connection: what one end writes, the other
/// reads. Each direction buffers up to `capacity` bytes; a write to a full
/// buffer waits until the reader takes some. Closing an end (or dropping
/// its write half) is the end of input for the other; dropping its read
/// half makes the other's writes fail with `BrokenPipe`.
pub(crate) fn pipe(capacity: usize) -> (End, End) {
    pipe_with(capacity, None)
}

fn pipe_with(capacity: usize, clock: Option<FakeRuntime>) -> (End, End) {
    assert!(capacity > 0, "a pipe needs room for at least one byte");
    let direction = || {
        Arc::new(Mutex::new(Direction {
            buf: VecDeque::new(),
            capacity,
            write_closed: false,
            reader_gone: false,
            reader: None,
            writer: None,
            clock: clock.clone(),
            first_full_at: None,
        }))
    };
    let (a_to_b, b_to_a) = (direction(), direction());
    let a = End { read: ReadHalf { dir: b_to_a.clone() }, write: WriteHalf { dir: a_to_b.clone() } };
    let b = End { read: ReadHalf { dir: a_to_b }, write: WriteHalf { dir: b_to_a } };
    (a, b)
}

/// One end of a [`pipe`].
pub(crate) struct End {
    read: ReadHalf,
    write: WriteHalf,
}

impl End {
    /// The halves, to read on one task and write on another. The end is
    /// gone (for the other end) once both are dropped.
    pub(crate) fn split(self) -> (ReadHalf, WriteHalf) {
        (self.read, self.write)
    }

    /// When a write from the other end first found the buffer toward this
    /// end full (pipes made by [`FakeRuntime::pipe`] only).
    pub(crate) fn inbound_full_since(&self) -> Option<Duration> {
        lock(&self.read.dir).first_full_at
    }

    /// Bytes written toward this end and not read yet.
    pub(crate) fn inbound_buffered(&self) -> usize {
        lock(&self.read.dir).buf.len()
    }
}

/// The reading half of an [`End`].
pub(crate) struct ReadHalf {
    dir: Shared,
}

/// The writing half of an [`End`].
pub(crate) struct WriteHalf {
    dir: Shared,
}

impl Drop for ReadHalf {
    fn drop(&mut self) {
        let mut dir = lock(&self.dir);
        dir.reader_gone = true;
        dir.buf.clear();
        if let Some(waker) = dir.writer.take() {
            waker.wake();
        }
    }
}

impl Drop for WriteHalf {
    fn drop(&mut self) {
        let mut dir = lock(&self.dir);
        dir.write_closed = true;
        if let Some(waker) = dir.reader.take() {
            waker.wake();
        }
    }
}

impl AsyncRead for ReadHalf {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut dir = lock(&self.dir);
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if dir.buf.is_empty() {
            if dir.write_closed {
                return Poll::Ready(Ok(0));
            }
            dir.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = out.len().min(dir.buf.len());
        for (slot, byte) in out.iter_mut().zip(dir.buf.drain(..n)) {
            *slot = byte;
        }
        if let Some(waker) = dir.writer.take() {
            waker.wake();
        }
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let mut dir = lock(&self.dir);
        if dir.write_closed {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "write after close")));
        }
        if dir.reader_gone {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "the other end is gone")));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let room = dir.capacity - dir.buf.len();
        if room == 0 {
            if dir.first_full_at.is_none() {
                dir.first_full_at = dir.clock.as_ref().map(FakeRuntime::elapsed);
            }
            dir.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(data.len());
        dir.buf.extend(&data[..n]);
        if let Some(waker) = dir.reader.take() {
            waker.wake();
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut dir = lock(&self.dir);
        dir.write_closed = true;
        if let Some(waker) = dir.reader.take() {
            waker.wake();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for End {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.read).poll_read(cx, out)
    }
}

impl AsyncWrite for End {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.write).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.write).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.write).poll_close(cx)
    }
}

/// A wake-up flag: the waker of one task.
struct Flag(AtomicBool);

impl Flag {
    fn new() -> Arc<Self> {
        Arc::new(Flag(AtomicBool::new(true)))
    }

    fn take(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
}

struct Task {
    future: BoxFuture<'static, ()>,
    flag: Arc<Flag>,
    waker: Waker,
}

/// The deterministic executor of a simulation.
pub(crate) struct Sim {
    rt: FakeRuntime,
}

impl Sim {
    /// A simulation at virtual time zero.
    pub(crate) fn new() -> Self {
        Sim { rt: FakeRuntime::new() }
    }

    /// Its runtime (clone it into servers and tasks).
    pub(crate) fn rt(&self) -> FakeRuntime {
        self.rt.clone()
    }

    /// Runs `main` to completion with every spawned task, moving the clock
    /// only when nothing can run. Tasks still running when `main` returns
    /// are dropped.
    ///
    /// # Panics
    ///
    /// When nothing can run and no timer is pending (a deadlock), when the
    /// next timer is past [`MAX_VIRTUAL_TIME`], or after [`MAX_POLLS`]
    /// polls.
    pub(crate) fn run<T>(&self, main: impl Future<Output = T>) -> T {
        let mut main = pin!(main);
        let main_flag = Flag::new();
        let main_waker = Waker::from(main_flag.clone());
        let mut tasks: Vec<Task> = Vec::new();
        let mut polls = 0u64;
        loop {
            let mut ran = false;
            if main_flag.take() {
                ran = true;
                polls += 1;
                if let Poll::Ready(output) = main.as_mut().poll(&mut Context::from_waker(&main_waker)) {
                    return output;
                }
            }
            let spawned = std::mem::take(&mut lock(&self.rt.core).spawned);
            tasks.extend(spawned.into_iter().map(|future| {
                let flag = Flag::new();
                Task { future, waker: Waker::from(flag.clone()), flag }
            }));
            tasks.retain_mut(|task| {
                if !task.flag.take() {
                    return true;
                }
                ran = true;
                polls += 1;
                task.future.as_mut().poll(&mut Context::from_waker(&task.waker)).is_pending()
            });
            assert!(
                polls <= MAX_POLLS,
                "busy loop: {MAX_POLLS} polls by t = {:?} and the test is not done",
                self.rt.elapsed()
            );
            if ran || !lock(&self.rt.core).spawned.is_empty() {
                continue;
            }
            self.advance(tasks.len());
        }
    }

    /// Everything is idle: moves the clock to the earliest timer and fires
    /// every timer due then.
    fn advance(&self, tasks: usize) {
        let due = {
            let mut core = lock(&self.rt.core);
            let Some(next) = core.timers.iter().map(|t| t.deadline).min() else {
                panic!(
                    "deadlock at t = {:?}: the test and {tasks} task(s) wait, and no timer is pending",
                    core.elapsed
                );
            };
            let at = next.saturating_duration_since(core.start);
            assert!(
                at <= MAX_VIRTUAL_TIME,
                "the test still waits after {MAX_VIRTUAL_TIME:?} of virtual time (next timer at {at:?})"
            );
            core.elapsed = core.elapsed.max(at);
            let now = core.now();
            let (due, rest): (Vec<Timer>, Vec<Timer>) =
                core.timers.drain(..).partition(|t| t.deadline <= now);
            core.timers = rest;
            due
        };
        for timer in due {
            timer.waker.wake();
        }
    }
}

/// The output of a task from [`FakeRuntime::spawn_task`].
pub(crate) struct JoinHandle<T> {
    state: Arc<Mutex<Join<T>>>,
}

struct Join<T> {
    output: Option<T>,
    finished_at: Option<Duration>,
    waker: Option<Waker>,
}

impl<T> JoinHandle<T> {
    /// The virtual instant the task completed, if it did.
    pub(crate) fn finished_at(&self) -> Option<Duration> {
        lock(&self.state).finished_at
    }

    /// Whether the task completed.
    pub(crate) fn is_finished(&self) -> bool {
        self.finished_at().is_some()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = T;

    /// Completes with the task's output (once).
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut join = lock(&self.state);
        match join.output.take() {
            Some(output) => Poll::Ready(output),
            None => {
                join.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[derive(Default)]
struct Received {
    bytes: Vec<u8>,
    /// When each read completed, and the length of `bytes` after it.
    reads: Vec<(Duration, usize)>,
    eof_at: Option<Duration>,
    error: Option<io::ErrorKind>,
    waker: Option<Waker>,
}

/// What a client received, byte by byte in virtual time (from
/// [`FakeRuntime::record`]).
pub(crate) struct Recording {
    state: Arc<Mutex<Received>>,
}

impl Recording {
    /// Every byte so far.
    pub(crate) fn bytes(&self) -> Vec<u8> {
        lock(&self.state).bytes.clone()
    }

    /// Every byte so far, as (lossy) text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&lock(&self.state).bytes).into_owned()
    }

    /// When the end of input (or a read error) came, if it did.
    pub(crate) fn eof_at(&self) -> Option<Duration> {
        lock(&self.state).eof_at
    }

    /// The read error that ended the recording, if one did.
    pub(crate) fn error(&self) -> Option<io::ErrorKind> {
        lock(&self.state).error
    }

    /// When the first `len` bytes had all arrived.
    pub(crate) fn arrival_of(&self, len: usize) -> Option<Duration> {
        lock(&self.state).reads.iter().find(|(_, end)| *end >= len).map(|(at, _)| *at)
    }

    /// Waits for the end of input; returns when it came.
    pub(crate) async fn eof(&self) -> Duration {
        poll_fn(|cx| {
            let mut received = lock(&self.state);
            match received.eof_at {
                Some(at) => Poll::Ready(at),
                None => {
                    received.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Waits until the bytes received contain `needle`; returns when they
    /// first did.
    ///
    /// # Panics
    ///
    /// If the input ends without it.
    pub(crate) async fn until_contains(&self, needle: &str) -> Duration {
        let needle = needle.as_bytes();
        poll_fn(|cx| {
            let mut received = lock(&self.state);
            if let Some(at) = find(&received.bytes, needle) {
                let end = at + needle.len();
                let arrived = received.reads.iter().find(|(_, e)| *e >= end).map(|(t, _)| *t);
                return Poll::Ready(arrived.expect("the bytes were read"));
            }
            assert!(
                received.eof_at.is_none(),
                "the input ended without {:?}; received {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(&received.bytes)
            );
            received.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// The received bytes read as one chunked response: its head, and each
    /// complete chunk with the instant its last byte arrived.
    ///
    /// # Panics
    ///
    /// If the head is incomplete or the framing is not chunked coding.
    pub(crate) fn chunked(&self) -> Chunked {
        let received = lock(&self.state);
        let arrival = |len: usize| {
            received
                .reads
                .iter()
                .find(|(_, end)| *end >= len)
                .map(|(at, _)| *at)
                .expect("bytes that were read")
        };
        let bytes = &received.bytes;
        let head_len = find(bytes, b"\r\n\r\n")
            .map(|i| i + 4)
            .unwrap_or_else(|| panic!("no complete response head in {:?}", String::from_utf8_lossy(bytes)));
        let mut response = Chunked {
            head: String::from_utf8_lossy(&bytes[..head_len]).into_owned(),
            head_at: arrival(head_len),
            chunks: Vec::new(),
            last_chunk_at: None,
            after_last_chunk: 0,
        };
        let mut at = head_len;
        while let Some(line) = find(&bytes[at..], b"\r\n") {
            let size_text = std::str::from_utf8(&bytes[at..at + line]).expect("a chunk size is ASCII");
            let size = usize::from_str_radix(size_text, 16)
                .unwrap_or_else(|_| panic!("bad chunk size {size_text:?} at byte {at}"));
            let data = at + line + 2;
            if size == 0 {
                if bytes.len() >= data + 2 {
                    assert_eq!(
                        &bytes[data..data + 2],
                        b"\r\n",
                        "the last chunk ends with CRLF (no trailers)"
                    );
                    response.last_chunk_at = Some(arrival(data + 2));
                    response.after_last_chunk = bytes.len() - (data + 2);
                }
                break;
            }
            if bytes.len() < data + size + 2 {
                break;
            }
            assert_eq!(&bytes[data + size..data + size + 2], b"\r\n", "a chunk ends with CRLF");
            let text = String::from_utf8_lossy(&bytes[data..data + size]).into_owned();
            response.chunks.push((arrival(data + size + 2), text));
            at = data + size + 2;
        }
        response
    }
}

/// A chunked response as a client received it (see
/// [`Recording::chunked`]).
#[derive(Debug)]
pub(crate) struct Chunked {
    /// The head, through its blank line.
    pub(crate) head: String,
    /// When the head had arrived.
    pub(crate) head_at: Duration,
    /// Each complete chunk's data, and when it had arrived.
    pub(crate) chunks: Vec<(Duration, String)>,
    /// When the terminating chunk `0\r\n\r\n` arrived, if it did.
    pub(crate) last_chunk_at: Option<Duration>,
    /// Bytes received after the terminating chunk.
    pub(crate) after_last_chunk: usize,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Virtual instants at which something happened (a callback ran, a guard
/// was dropped).
#[derive(Clone)]
pub(crate) struct Marks {
    rt: FakeRuntime,
    at: Arc<Mutex<Vec<Duration>>>,
}

impl Marks {
    pub(crate) fn new(rt: &FakeRuntime) -> Self {
        Marks { rt: rt.clone(), at: Arc::default() }
    }

    /// Notes that it happened now.
    pub(crate) fn hit(&self) {
        let now = self.rt.elapsed();
        lock(&self.at).push(now);
    }

    /// Every instant it happened at.
    pub(crate) fn times(&self) -> Vec<Duration> {
        lock(&self.at).clone()
    }

    /// A guard that notes the instant it is dropped (put one in a future
    /// to see when the future is dropped).
    pub(crate) fn on_drop(&self) -> MarkOnDrop {
        MarkOnDrop(self.clone())
    }
}

/// Notes the instant it is dropped (see [`Marks::on_drop`]).
pub(crate) struct MarkOnDrop(Marks);

impl Drop for MarkOnDrop {
    fn drop(&mut self) {
        self.0.hit();
    }
}
