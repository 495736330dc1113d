//! Handing a dispatched event out: as an owned [`MessageEvent`] (inline, a
//! slice of the input, or gathered in the data buffer), or lent as `str`s.

use super::*;

impl State {
    /// The last event ID as shared bytes, for an event whose block set none.
    #[inline]
    pub(super) fn shared_last_id(&mut self) -> Option<Bytes> {
        if self.last_id.is_empty() {
            return None;
        }
        let last_id = &self.last_id;
        Some(self.last_id_shared.get_or_insert_with(|| Bytes::copy_from_slice(last_id)).clone())
    }

    /// Stages the dispatched event in `staged` and consumes its block, if
    /// its fields fit inline: then true. Otherwise nothing is done, and
    /// [`finish_owned`](Self::finish_owned) hands the event out.
    #[inline(always)]
    pub(super) fn stage_inline<S: Source>(&mut self, src: &mut S, cur: &mut Cursor) -> bool {
        let f = self.ready;
        let Some(plan) = self.block_plan() else {
            // Fields copied out of the block (several `data` lines, or a
            // block that outgrew its source).
            if self.gathered_len(f) > INLINE_CAP {
                return false;
            }
            self.stage_gathered(src.bytes(), f);
            src.skip(f.total);
            cur.consumed(f.total);
            self.meta_buf.clear();
            return true;
        };
        let InBlock { data, ty, id, ty_set, id_set, used, last_id } = plan;
        // The copy starts at the first value the block set, not at the
        // block's start: the field names before it are not needed.
        let from = data.start().min(if ty_set { ty.start() } else { usize::MAX }).min(if id_set {
            id.start()
        } else {
            usize::MAX
        });
        if used - from + last_id > INLINE_CAP {
            return false;
        }
        // A small event is copied inline: cheaper than sharing the source,
        // which costs atomic reference counting on every event made and
        // dropped.
        let head = MessageEvent::inline_head(&src.bytes()[from..]);
        src.skip(f.total);
        cur.consumed(f.total);
        self.meta_buf.clear();
        let shift = |s: Span, set: bool| if set { Span::new(s.start() - from, s.len()) } else { s };
        let last_id = (last_id > 0).then(|| (used - from, self.last_id.ready()));
        // SAFETY: the spans, shifted with the copy, point at the block's
        // values in `head`, which are valid UTF-8 (see `Val`); `INLINE_CAP`
        // bytes from `from` hold them all (checked above).
        #[allow(unsafe_code)]
        let staged =
            unsafe { Staged::block(head, shift(data, true), shift(ty, ty_set), shift(id, id_set), last_id) };
        self.staged = staged;
        true
    }

    /// Where the fields of a block whose values all lie in the source are,
    /// or `None` if some value was copied out of it.
    #[inline(always)]
    fn block_plan(&self) -> Option<InBlock> {
        // Read in place, field by field: a copy of the whole of `ready`
        // loads it at other widths than the dispatch stored it, and waits
        // for those stores.
        let f = &self.ready;
        let in_block = !matches!(f.event_type, Some(Val::Owned(_))) && !matches!(f.id, Some(Val::Owned(_)));
        let (true, Data::One(Val::Block(data))) = (in_block, f.data) else {
            return None;
        };
        let ty = match f.event_type {
            Some(Val::Block(s)) => s,
            _ => Span::default(),
        };
        let end = |s: Span| s.start() + s.len();
        let (id, used, last_id) = match f.id {
            Some(Val::Block(s)) => (s, end(data).max(end(ty)).max(end(s)), 0),
            // The event carries the last event ID set by an earlier block.
            _ => (Span::default(), end(data).max(end(ty)), self.last_id.len()),
        };
        let ty_set = matches!(f.event_type, Some(Val::Block(_)));
        let id_set = matches!(f.id, Some(Val::Block(_)));
        Some(InBlock { data, ty, id, ty_set, id_set, used, last_id })
    }

    /// Turns dispatched fields that [`stage_inline`](Self::stage_inline)
    /// left into an owned event, and consumes the block.
    #[inline(always)]
    pub(super) fn finish_owned<S: Source>(&mut self, src: &mut S, cur: &mut Cursor) -> MessageEvent {
        let Some(InBlock { data, ty, id, last_id, .. }) = self.block_plan() else {
            // The call's result is this function's: it is written where the
            // caller wants it, not copied there (see `owned_event`).
            return self.owned_event(src, cur);
        };
        let total = self.ready.total;
        // The whole block is one slice of the input: the event is that slice
        // and the positions of its fields.
        let buf = src.take(total);
        cur.consumed(total);
        self.meta_buf.clear();
        if last_id > 0 && last_id <= OWN_ID_CAP {
            // A short last event ID set by an earlier block is copied into
            // the event: cheaper than sharing it, which costs a reference
            // count per event.
            // SAFETY: the spans point at the block's values, valid UTF-8
            // (see `Val`), in `buf` (the block); the id is at most
            // `OWN_ID_CAP` bytes and its window is made ready here.
            #[allow(unsafe_code)]
            return unsafe { MessageEvent::from_parts_own_id(buf, data, ty, self.last_id.ready()) };
        }
        let id_shared = if last_id > 0 { self.shared_last_id() } else { None };
        // SAFETY: the spans point at the block's values, valid UTF-8 (see
        // `Val`), in `buf` (the block); the shared id is a copy of the last
        // event ID, a `str`.
        #[allow(unsafe_code)]
        unsafe {
            MessageEvent::from_parts(buf, data, ty, id, id_shared)
        }
    }

    /// Resolves a field for lending: the text at `v`.
    #[inline]
    pub(super) fn lend<'a>(&'a self, block: &'a [u8], v: Val, data: bool) -> &'a str {
        let bytes = match v {
            Val::Block(s) => &block[s.range()],
            Val::Owned(s) if data => &self.data_buf[s.range()],
            Val::Owned(s) => &self.meta_buf[s.range()],
        };
        // SAFETY: a `Val` points at valid UTF-8 (see its invariant).
        #[allow(unsafe_code)]
        unsafe {
            utf8_unchecked(bytes)
        }
    }

    /// The values of a dispatched block whose fields are not all in one
    /// slice of the input: data, type, id, and whether the id is the last
    /// event ID set by an earlier block.
    #[inline(always)]
    fn gathered_parts<'a>(&'a self, block: &'a [u8], f: Fields) -> (&'a [u8], &'a [u8], &'a [u8], bool) {
        let data: &[u8] = match f.data {
            Data::One(Val::Block(s)) => &block[s.range()],
            // `Owned` data is staged alone in `data_buf`.
            Data::One(Val::Owned(_)) | Data::Many => &self.data_buf,
            Data::Empty => &[],
        };
        let field = |v: Option<Val>| -> &[u8] {
            match v {
                Some(Val::Block(s)) => &block[s.range()],
                Some(Val::Owned(s)) => &self.meta_buf[s.range()],
                None => &[],
            }
        };
        // An event without an `id` field carries the last event ID set by an
        // earlier block: copied when the event fits inline, else shared.
        let inherit = f.id.is_none();
        let id = if inherit { &self.last_id[..] } else { field(f.id) };
        (data, field(f.event_type), id, inherit)
    }

    /// The length of the values of a block whose fields are not all in one
    /// slice of the input ([`gathered_parts`](Self::gathered_parts)).
    #[inline(always)]
    fn gathered_len(&self, f: Fields) -> usize {
        let val = |v: Option<Val>| match v {
            Some(Val::Block(s) | Val::Owned(s)) => s.len(),
            None => 0,
        };
        let data = match f.data {
            Data::One(Val::Block(s)) => s.len(),
            Data::One(Val::Owned(_)) | Data::Many => self.data_buf.len(),
            Data::Empty => 0,
        };
        let id = if f.id.is_none() { self.last_id.len() } else { val(f.id) };
        data + val(f.event_type) + id
    }

    /// Stages an event whose fields are not all in one slice of the input,
    /// and fit inline ([`gathered_len`](Self::gathered_len)); `data_buf`
    /// keeps its memory for the next one.
    #[inline(never)]
    fn stage_gathered(&mut self, block: &[u8], f: Fields) {
        let (data, ty, id, _) = self.gathered_parts(block, f);
        debug_assert!(data.len() + ty.len() + id.len() <= INLINE_CAP);
        let mut parts = InlineBuilder::new();
        let (data, ty, id) = (parts.push(data), parts.push(ty), parts.push(id));
        // SAFETY: the spans point at what was pushed: the values of a
        // dispatched block (see `Val`) and the last event ID.
        #[allow(unsafe_code)]
        let staged = unsafe { parts.stage(data, ty, id) };
        self.staged = staged;
        self.data_buf.clear();
    }

    /// Builds an event whose fields are not all in one slice of the input,
    /// and do not fit inline ([`stage_gathered`](Self::stage_gathered)):
    /// gathered in `data_buf`, which becomes the event.
    ///
    /// The block is consumed here, before the event is made, so that the
    /// event is the function's last value: returned in the caller's memory,
    /// not built in a temporary and copied, whose wide loads of what
    /// narrower stores had just written waited for them (16% of
    /// `finish_event`'s time on OpenAI's stream at 1 KiB chunks).
    #[inline(never)]
    pub(super) fn owned_event<S: Source>(&mut self, src: &mut S, cur: &mut Cursor) -> MessageEvent {
        let f = self.ready;
        let block = src.bytes();
        let (data, ty, id, inherit) = self.gathered_parts(block, f);
        debug_assert!(data.len() + ty.len() + id.len() > INLINE_CAP);
        // A short inherited id is copied into the event's buffer with the
        // data: cheaper than sharing it, which costs an allocation each time
        // the id changes and a reference count on every event.
        let share_id = inherit && id.len() > INLINE_CAP;
        let id = if share_id { &[][..] } else { id };
        let len = data.len() + ty.len() + id.len();
        // The event is gathered in `data_buf` (data of several lines already
        // is) and split off. The rest of the allocation stays with
        // `data_buf` for the next events, and once they are all dropped
        // `reserve` takes the whole allocation back: a consumer that drops
        // its events allocates nothing per event. A large event takes the
        // allocation whole, so that small events kept later never pin it.
        // An allocation much larger than the event (one a large event left
        // behind) is replaced by one of the event's size class, which the
        // next events share: a kept event pins at most 8 times its size, or
        // 8 KiB (less than the chunk a single-line event is a slice of).
        let (data_len, ty_len, id_len) = (data.len(), ty.len(), id.len());
        if let Data::One(Val::Block(s)) = f.data {
            self.data_buf.clear();
            self.data_buf.reserve(len);
            self.data_buf.extend_from_slice(&block[s.range()]);
        } else {
            self.data_buf.reserve(ty_len + id_len);
        }
        let field = |v: Option<Val>| -> &[u8] {
            match v {
                Some(Val::Block(s)) => &block[s.range()],
                Some(Val::Owned(s)) => &self.meta_buf[s.range()],
                None => &[],
            }
        };
        let id = match (inherit, share_id) {
            (true, true) => &[][..],
            (true, false) => &self.last_id[..],
            (false, _) => field(f.id),
        };
        let ty = field(f.event_type);
        scan::append(ty, &mut self.data_buf);
        scan::append(id, &mut self.data_buf);
        if self.data_buf.capacity() > len.saturating_mul(PIN_RATIO).max(PIN_FREE) {
            // (Copying each event out of a buffer more than 4 times its
            // size instead, and keeping the buffer, made an allocation for
            // three events in four of CJK text, whose events of 130 bytes
            // to 4.5 KiB grow the buffer to 8 KiB: this measured 1.05x on
            // it and 1.12x on Cyrillic text at 1 KiB chunks.)
            let size = if len <= SHARED_EVENT_MAX { len * PIN_RATIO } else { len };
            let mut fresh = BytesMut::with_capacity(size);
            fresh.extend_from_slice(&self.data_buf);
            self.data_buf = fresh;
        }
        let buf = if len <= SHARED_EVENT_MAX {
            self.data_buf.split().freeze()
        } else {
            core::mem::take(&mut self.data_buf).freeze()
        };
        src.skip(f.total);
        cur.consumed(f.total);
        self.meta_buf.clear();
        let data_span = Span::new(0, data_len);
        let ty_span = Span::new(data_len, ty_len);
        let id_span = Span::new(data_len + ty_len, id_len);
        // The next event of several lines reserves this much up front
        // (see `hinted`), instead of growing step by step.
        self.data_hint = len.min(self.config.max_data_len);
        let id_shared = if share_id { self.shared_last_id() } else { None };
        // SAFETY: `buf` holds the data, the type and the id, where the
        // spans point, all values of a dispatched block (see `Val`); the
        // shared id is a copy of the last event ID, a `str`.
        #[allow(unsafe_code)]
        unsafe {
            MessageEvent::from_parts(buf, data_span, ty_span, id_span, id_shared)
        }
    }
}

/// Where the fields of a block whose values all lie in the source are.
#[derive(Clone, Copy)]
struct InBlock {
    data: Span,
    /// The `event` value, if `ty_set`.
    ty: Span,
    /// The `id` value, if `id_set`.
    id: Span,
    ty_set: bool,
    id_set: bool,
    /// The end of the last value, from the start of the block.
    used: usize,
    /// The length of the last event ID the event carries when the block set
    /// no `id` (0 if it did).
    last_id: usize,
}
