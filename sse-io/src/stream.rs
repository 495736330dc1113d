//! `Sse`: the handle a handler streams events through, and the frame queue
//! it shares with the connection driver.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

use bytes::Bytes;
use sse_proto::{EncodeError, Event, encode_comment};

use crate::broadcast::{Subscription, SubscriptionItem};
use crate::signal::Signal;

/// Why a send did not happen.
#[derive(Debug)]
#[non_exhaustive]
pub enum SendError {
    /// The stream is closed (the client left, `close` was called, or the
    /// server shut down). Handlers stop on this, usually with `?`.
    Closed,
    /// The event could not be encoded (a line break in its type or id, or
    /// a JSON error); nothing was sent and the stream is still open.
    Encode(EncodeError),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed => f.write_str("the event stream is closed"),
            SendError::Encode(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::Encode(e) => Some(e),
            SendError::Closed => None,
        }
    }
}

impl From<EncodeError> for SendError {
    fn from(e: EncodeError) -> Self {
        SendError::Encode(e)
    }
}

type CloseCallback = Box<dyn FnOnce() + Send>;

/// Where a stream is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The handler has not called `ctx.sse()`.
    Deciding,
    /// Streaming.
    Open,
    /// `close` was called: queued frames go out, then the terminating chunk.
    Closing,
    /// Ended (whatever ended it): sends fail.
    Ended,
}

struct State {
    phase: Phase,
    frames: VecDeque<Bytes>,
    /// The connection driver, to wake when a frame or a close arrives.
    driver: Option<Waker>,
    /// The handler handed the stream on: it outlives the handler's return.
    detached: bool,
    /// Live `Sse` handles (a detached stream ends when the last one goes).
    handles: usize,
    on_close: Vec<CloseCallback>,
    /// A forwarded subscription, read by the driver directly.
    source: Option<Subscription>,
    /// The channel dropped the forwarded subscription (it fell behind).
    source_dropped: bool,
    /// Whoever awaits `forward` (woken when the stream ends).
    forwarder: Option<Waker>,
    /// The server is shutting down.
    shutdown: bool,
}

/// The state one exchange's handler, its `Sse` handles and the connection
/// driver share.
pub(crate) struct StreamShared {
    state: Mutex<State>,
    /// Senders waiting for room in the queue.
    space: event_listener::Event,
    /// Set when the stream ended.
    ended: Signal,
    capacity: usize,
    last_event_id: Option<Box<str>>,
}

impl StreamShared {
    pub(crate) fn new(capacity: usize, last_event_id: Option<&str>) -> Arc<Self> {
        Arc::new(StreamShared {
            state: Mutex::new(State {
                phase: Phase::Deciding,
                frames: VecDeque::new(),
                driver: None,
                detached: false,
                handles: 0,
                on_close: Vec::new(),
                source: None,
                source_dropped: false,
                forwarder: None,
                shutdown: false,
            }),
            space: event_listener::Event::new(),
            ended: Signal::default(),
            capacity: capacity.max(1),
            last_event_id: last_event_id.map(Into::into),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Turns the exchange into a stream (the `ctx.sse()` moment).
    pub(crate) fn start(self: &Arc<Self>) -> Sse {
        let mut state = self.lock();
        if state.phase == Phase::Deciding {
            state.phase = Phase::Open;
            wake(&mut state);
        }
        state.handles += 1;
        drop(state);
        Sse { shared: self.clone() }
    }

    /// Driver: forgets its waker at the start of a poll (it is about to look
    /// at everything anyway), so that sends made while the driver polls the
    /// handler do not wake the task again.
    pub(crate) fn begin_poll(&self) {
        self.lock().driver = None;
    }

    /// Driver: whether `ctx.sse()` was called.
    pub(crate) fn is_started(&self) -> bool {
        self.lock().phase != Phase::Deciding
    }

    /// Driver: hands queued frames to `take` until it returns false or the
    /// queue is empty, registering `waker` when nothing is left, and says
    /// what the stream asks of the driver now.
    pub(crate) fn take_frames(&self, waker: &Waker, mut take: impl FnMut(&Bytes) -> bool) -> DriverView {
        let mut state = self.lock();
        let mut moved = false;
        let mut room = true;
        while let Some(frame) = state.frames.pop_front() {
            moved = true;
            if !take(&frame) {
                room = false;
                break;
            }
        }
        // A forwarded subscription: its frames go straight from the
        // channel's queue into the write buffer, without waking a handler.
        let open = room && state.phase == Phase::Open;
        if let Some(source) = state.source.as_mut().filter(|_| open) {
            let (took, dropped) = source.drain(waker, &mut take);
            moved |= took;
            if dropped {
                // Close so the client resumes from the replay log.
                state.source = None;
                state.source_dropped = true;
                state.phase = Phase::Closing;
            }
        }
        if state.frames.capacity() > 64 && state.frames.is_empty() {
            // A burst grew the queue; an idle stream holds nothing.
            state.frames = VecDeque::new();
        }
        let view = DriverView {
            took: moved,
            shutdown: state.shutdown,
            closing: state.phase == Phase::Closing && state.frames.is_empty(),
            drained: state.frames.is_empty(),
            detached_and_abandoned: state.detached && state.handles == 0,
            detached: state.detached,
        };
        if view.drained {
            state.driver = Some(waker.clone());
        }
        drop(state);
        if moved {
            self.space.notify(usize::MAX);
        }
        view
    }

    /// Ends the stream and runs the close callbacks, exactly once whatever
    /// ended it. Returns whether this call ended it.
    pub(crate) fn end(&self) -> bool {
        let callbacks = {
            let mut state = self.lock();
            if state.phase == Phase::Ended {
                return false;
            }
            state.phase = Phase::Ended;
            state.frames = VecDeque::new();
            state.driver = None;
            state.source = None;
            if let Some(forwarder) = state.forwarder.take() {
                forwarder.wake();
            }
            std::mem::take(&mut state.on_close)
        };
        self.ended.set();
        self.space.notify(usize::MAX);
        for callback in callbacks {
            callback();
        }
        true
    }

    /// Driver: the forwarded subscription stops waking the driver until
    /// [`resume_source`](Self::resume_source) (it gathers a burst for one
    /// write).
    pub(crate) fn pause_source(&self) {
        if let Some(source) = self.lock().source.as_ref() {
            source.pause();
        }
    }

    /// Driver: the burst is gathered; publishes wake the driver again.
    pub(crate) fn resume_source(&self) {
        if let Some(source) = self.lock().source.as_ref() {
            source.resume();
        }
    }

    /// Server shutdown: a stream ends cleanly; a handler still deciding is
    /// answered by the driver.
    pub(crate) fn shutdown(&self) {
        let mut state = self.lock();
        state.shutdown = true;
        if state.phase == Phase::Open {
            state.phase = Phase::Closing;
        }
        wake(&mut state);
    }

    /// Asks a started stream to end cleanly (server shutdown, `Sse::close`).
    /// A handler still deciding is left to the driver (which answers it
    /// with a `503` at shutdown).
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        if state.phase == Phase::Open {
            state.phase = Phase::Closing;
            wake(&mut state);
        }
    }
}

fn wake(state: &mut State) {
    if let Some(waker) = state.driver.take() {
        waker.wake();
    }
}

/// What the driver learns from one look at the stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DriverView {
    /// Frames were taken.
    pub(crate) took: bool,
    /// The server is shutting down.
    pub(crate) shutdown: bool,
    /// `close` was called and every queued frame was taken.
    pub(crate) closing: bool,
    /// No frame is left in the queue.
    pub(crate) drained: bool,
    /// The stream was detached and every handle is gone: nothing can send.
    pub(crate) detached_and_abandoned: bool,
    /// The stream was detached from its handler.
    pub(crate) detached: bool,
}

/// The event stream of one client: the framework helper's `ctx.sse()`.
///
/// A handler gets it from [`Ctx::sse`](crate::Ctx::sse); the response head
/// (`200`, `Content-Type: text/event-stream`, `Cache-Control: no-cache`,
/// `X-Accel-Buffering: no`, the route's extra headers and `retry` hint)
/// goes out then. Keep-alive comments go out by themselves while the stream
/// is idle.
///
/// The handler owns its stream: when the client leaves, the handler's
/// future is dropped at its next `await`; when the handler returns, the
/// stream ends with its terminating chunk. Sends wait while the client is
/// slow (the queue is bounded) and fail with [`SendError::Closed`] once the
/// stream ended, so `?` stops a handler. To keep streaming from another task
/// after the handler returns, call [`detach`](Self::detach) and hand that
/// task a clone.
pub struct Sse {
    shared: Arc<StreamShared>,
}

impl Clone for Sse {
    fn clone(&self) -> Self {
        self.shared.lock().handles += 1;
        Sse { shared: self.shared.clone() }
    }
}

impl Drop for Sse {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.handles -= 1;
        if state.handles == 0 && state.detached {
            wake(&mut state);
        }
    }
}

impl fmt::Debug for Sse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sse")
            .field("closed", &self.is_closed())
            .field("last_event_id", &self.shared.last_event_id)
            .finish()
    }
}

impl Sse {
    /// Sends an event: `sse.send(Event::new(data).event("tick").id(7))`.
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] once the stream ended; [`SendError::Encode`]
    /// for an invalid event (nothing is sent).
    pub async fn send(&self, event: Event<'_>) -> Result<(), SendError> {
        let frame = event.to_bytes()?;
        self.send_frame(frame).await
    }

    /// Sends an event whose data is `value` serialized as JSON, straight
    /// into the frame (no intermediate string): `sse.send_json(Event::default().event("tick"), &value)`.
    /// Data already set on `event` is replaced.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    #[cfg(feature = "json")]
    pub async fn send_json<T: serde::Serialize + ?Sized>(
        &self,
        event: Event<'_>,
        value: &T,
    ) -> Result<(), SendError> {
        let mut frame = Vec::new();
        event.encode_json(value, &mut frame)?;
        self.send_frame(Bytes::from(frame)).await
    }

    /// Sends a comment (clients ignore it; keep-alives are automatic).
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] once the stream ended.
    pub async fn comment(&self, text: &str) -> Result<(), SendError> {
        let mut frame = Vec::new();
        encode_comment(text, &mut frame);
        self.send_frame(Bytes::from(frame)).await
    }

    /// Sends already encoded frames (for example from a broadcast channel,
    /// which encodes each event once for every subscriber).
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] once the stream ended or is closing.
    pub async fn send_frame(&self, frame: Bytes) -> Result<(), SendError> {
        loop {
            let listener = {
                let mut state = self.shared.lock();
                if state.phase != Phase::Open {
                    return Err(SendError::Closed);
                }
                if state.frames.len() < self.shared.capacity {
                    if !frame.is_empty() {
                        state.frames.push_back(frame);
                        wake(&mut state);
                    }
                    return Ok(());
                }
                self.shared.space.listen()
            };
            listener.await;
        }
    }

    /// Streams a broadcast subscription to this client: the replay first,
    /// then live events, until the client leaves or the channel drops the
    /// subscription for falling behind (then the stream is closed, so the
    /// client resumes by replay).
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] when the stream ended.
    /// The connection reads the subscription's queue itself, so a delivery
    /// wakes no handler and copies no frame: this future only waits for the
    /// stream's end. One subscription per stream is read that way; another
    /// one is relayed frame by frame.
    pub async fn forward(&self, subscription: Subscription) -> Result<(), SendError> {
        let relay = {
            let mut state = self.shared.lock();
            if state.phase != Phase::Open {
                return Err(SendError::Closed);
            }
            if state.source.is_none() {
                state.source = Some(subscription);
                wake(&mut state);
                None
            } else {
                Some(subscription)
            }
        };
        if let Some(mut subscription) = relay {
            loop {
                match subscription.recv().await {
                    SubscriptionItem::Frame(frame) => self.send_frame(frame).await?,
                    SubscriptionItem::Dropped => {
                        self.close();
                        return Ok(());
                    }
                }
            }
        }
        std::future::poll_fn(|cx| {
            let mut state = self.shared.lock();
            if state.source_dropped {
                return Poll::Ready(Ok(()));
            }
            if state.phase == Phase::Ended {
                return Poll::Ready(Err(SendError::Closed));
            }
            if !state.forwarder.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                state.forwarder = Some(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }

    /// Runs `callback` once when the stream ends, whatever ends it (the
    /// client leaving, a write failing, the handler returning, `close`,
    /// server shutdown). If it already ended, runs it now.
    pub fn on_close(&self, callback: impl FnOnce() + Send + 'static) {
        let mut state = self.shared.lock();
        if state.phase == Phase::Ended {
            drop(state);
            callback();
        } else {
            state.on_close.push(Box::new(callback));
        }
    }

    /// Completes when the stream has ended.
    pub async fn closed(&self) {
        self.shared.ended.wait().await
    }

    /// Ends the stream cleanly: frames already sent are written, then the
    /// terminating chunk; later sends fail.
    pub fn close(&self) {
        self.shared.close();
    }

    /// Whether the stream ended or is closing.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().phase != Phase::Open
    }

    /// Hands the stream on: it stays open after the handler returns, until
    /// [`close`](Self::close), the client leaving, server shutdown, or the
    /// last `Sse` handle being dropped. Give a clone to the task that keeps
    /// sending.
    pub fn detach(&self) {
        self.shared.lock().detached = true;
    }

    /// The id the client resumes after (`Last-Event-ID` header or
    /// `lastEventId` query parameter), if any.
    pub fn last_event_id(&self) -> Option<&str> {
        self.shared.last_event_id.as_deref()
    }
}
