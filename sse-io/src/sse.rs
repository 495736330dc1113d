//! `Sse`: the handle a route handler streams events through.

use std::fmt;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use sse_proto::{EncodeError, Event, encode_comment};

use crate::broadcast::{Subscription, SubscriptionItem};
use crate::signal::Signal;

/// Why a send did not happen.
#[derive(Debug)]
#[non_exhaustive]
pub enum SendError {
    /// The stream is closed (the client left, `close` was called, or the
    /// server shut down). Handlers stop on this.
    Closed,
    /// The event could not be encoded (a line break in its type or id, or
    /// a JSON error).
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

/// What the connection driver receives from the handle.
#[derive(Debug)]
pub(crate) enum Message {
    /// Encoded events or comments, written as one chunk.
    Frame(Bytes),
    /// End the stream cleanly.
    Close,
}

type CloseCallback = Box<dyn FnOnce() + Send>;

pub(crate) struct Shared {
    tx: async_channel::Sender<Message>,
    closed: Signal,
    on_close: Mutex<Vec<CloseCallback>>,
    last_event_id: Option<String>,
}

/// Asks a stream to end cleanly (server shutdown).
pub(crate) fn close_shared(shared: &Shared) {
    if shared.tx.try_send(Message::Close).is_err() {
        shared.tx.close();
    }
}

impl Shared {
    /// Whether the stream already ended (the client left, or the driver
    /// finished): no terminating chunk is owed.
    pub(crate) fn client_gone(&self) -> bool {
        self.closed.is_set()
    }

    /// Marks the stream closed and runs the close callbacks, exactly once
    /// whatever ended it.
    pub(crate) fn fire_close(&self) {
        // Take the callbacks under the lock that `on_close` registers
        // under, so that each runs exactly once.
        let callbacks = {
            let mut guard = self.on_close.lock().unwrap_or_else(|e| e.into_inner());
            if !self.closed.set() {
                return;
            }
            std::mem::take(&mut *guard)
        };
        self.tx.close();
        for callback in callbacks {
            callback();
        }
    }
}

/// The event stream of one client, as a route handler sees it: the
/// framework helper `ctx.sse()`, in Rust.
///
/// The response head (`Content-Type: text/event-stream`, `Cache-Control:
/// no-cache`, `Connection: keep-alive`, `X-Accel-Buffering: no`) is already
/// on its way when the handler runs; keep-alive comments go out by
/// themselves while the handler is idle. Sends wait when the client is slow
/// (the queue is bounded), and fail with [`SendError::Closed`] once the
/// stream has ended. Clones share the stream.
#[derive(Clone)]
pub struct Sse {
    shared: Arc<Shared>,
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
    pub(crate) fn new(
        capacity: usize,
        last_event_id: Option<String>,
    ) -> (Sse, async_channel::Receiver<Message>) {
        let (tx, rx) = async_channel::bounded(capacity.max(1));
        let shared = Arc::new(Shared {
            tx,
            closed: Signal::default(),
            on_close: Mutex::new(Vec::new()),
            last_event_id,
        });
        (Sse { shared }, rx)
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Sends an event.
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] once the stream ended; [`SendError::Encode`]
    /// for an invalid event (nothing is sent).
    pub async fn send(&self, event: Event<'_>) -> Result<(), SendError> {
        let mut frame = Vec::new();
        event.encode(&mut frame)?;
        self.send_frame(Bytes::from(frame)).await
    }

    /// Sends `value` serialized as JSON, with an optional type and id.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    #[cfg(feature = "json")]
    pub async fn json<T: serde::Serialize + ?Sized>(
        &self,
        value: &T,
        event_type: Option<&str>,
        id: Option<&str>,
    ) -> Result<(), SendError> {
        let mut event = Event::default();
        if let Some(t) = event_type {
            event = event.event(t);
        }
        if let Some(id) = id {
            event = event.id(id);
        }
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
    /// [`SendError::Closed`] once the stream ended.
    pub async fn send_frame(&self, frame: Bytes) -> Result<(), SendError> {
        if self.is_closed() {
            return Err(SendError::Closed);
        }
        self.shared.tx.send(Message::Frame(frame)).await.map_err(|_| SendError::Closed)
    }

    /// Streams a broadcast subscription to this client until either ends:
    /// the replay first, then live events.
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] when the client left; `Ok` when the channel
    /// dropped the subscription (it fell behind under the disconnect
    /// policy), after which the stream is closed so the client resumes by
    /// replay.
    pub async fn forward(&self, mut subscription: Subscription) -> Result<(), SendError> {
        loop {
            let next = futures_lite::future::or(async { Some(subscription.next().await) }, async {
                self.closed().await;
                None
            })
            .await;
            match next {
                None => return Err(SendError::Closed),
                Some(SubscriptionItem::Frame(frame)) => self.send_frame(frame).await?,
                Some(SubscriptionItem::Dropped) => {
                    self.close();
                    return Ok(());
                }
            }
        }
    }

    /// Runs `callback` once when the stream ends, whatever ends it (the
    /// client leaving, a write failing, `close`, server shutdown). If it
    /// already ended, runs it now.
    pub fn on_close(&self, callback: impl FnOnce() + Send + 'static) {
        let mut callbacks = self.shared.on_close.lock().unwrap_or_else(|e| e.into_inner());
        if self.is_closed() {
            drop(callbacks);
            callback();
        } else {
            callbacks.push(Box::new(callback));
        }
    }

    /// Completes when the stream has ended.
    pub async fn closed(&self) {
        self.shared.closed.wait().await
    }

    /// Ends the stream cleanly (terminating chunk, connection released).
    /// Frames already sent are written first.
    pub fn close(&self) {
        // `try_send` cannot wait: if the queue is full the close still
        // happens, via the closed channel.
        close_shared(&self.shared);
    }

    /// Whether the stream has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.is_set() || self.shared.tx.is_closed()
    }

    /// The id the client resumes after (`Last-Event-ID` header or
    /// `lastEventId` query parameter), if any.
    pub fn last_event_id(&self) -> Option<&str> {
        self.shared.last_event_id.as_deref()
    }
}
