//! Deterministic `text/event-stream` corpora with known event counts.
//!
//! Every generator writes blocks until the corpus reaches the requested
//! length, and records after each block how many events (and data bytes) the
//! stream has dispatched so far, so [`Corpus::prefix`] can cut at a block
//! boundary and still know the exact expected result.

use bytes::Bytes;

use crate::{Tally, XorShift64};

/// The corpus length the benchmarks use: 2 MiB.
pub const DEFAULT_LEN: usize = 2 << 20;

/// A generated event stream and what a conforming decoder must get from it.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// Short name, used as the criterion group name.
    pub name: &'static str,
    /// The whole stream.
    pub bytes: Bytes,
    /// Events (and their total data length) a conforming decoder dispatches.
    pub expected: Tally,
    /// `(end offset, tally so far)` after each block; `None` for a stream
    /// read from a file, whose prefixes are decoded by the reference instead.
    boundaries: Option<Vec<(usize, Tally)>>,
}

impl Corpus {
    /// The stream and its expected event count.
    pub fn parts(&self) -> (Bytes, usize) {
        (self.bytes.clone(), self.expected.events)
    }

    /// Expected number of events.
    pub fn events(&self) -> usize {
        self.expected.events
    }

    /// The longest prefix of at most `max_len` bytes that ends at a block
    /// boundary, with its own expected result.
    pub fn prefix(&self, max_len: usize) -> Corpus {
        let Some(boundaries) = &self.boundaries else {
            // Any cut will do: what a decoder must dispatch from it (an
            // unfinished last block is discarded) is the reference's result.
            return Corpus::from_stream(self.name, self.bytes.slice(..max_len.min(self.bytes.len())));
        };
        let idx = boundaries.partition_point(|&(end, _)| end <= max_len);
        let (end, expected) = if idx == 0 { (0, Tally::default()) } else { boundaries[idx - 1] };
        Corpus {
            name: self.name,
            bytes: self.bytes.slice(..end),
            expected,
            boundaries: Some(boundaries[..idx].to_vec()),
        }
    }

    /// The stream cut after each block (each blank line), as a server that
    /// flushes every event delivers it to a reader that keeps up.
    pub fn block_chunks(&self) -> Vec<Bytes> {
        let ends: Vec<usize> = match &self.boundaries {
            Some(b) => b.iter().map(|&(end, _)| end).collect(),
            None => blank_line_ends(&self.bytes),
        };
        let mut out = Vec::with_capacity(ends.len() + 1);
        let mut start = 0;
        for end in ends.into_iter().chain([self.bytes.len()]) {
            if end > start {
                out.push(self.bytes.slice(start..end));
                start = end;
            }
        }
        out
    }

    /// Any stream (recorded traffic, say), with what the naive reference
    /// decoder dispatches from it as the expected result.
    pub fn from_stream(name: &'static str, bytes: Bytes) -> Corpus {
        let mut expected = Tally::default();
        for ev in crate::reference::events(&bytes) {
            expected.add(ev.data.len());
        }
        Corpus { name, bytes, expected, boundaries: None }
    }

    /// The stream in the file at `path`, named by the file's name.
    ///
    /// # Errors
    ///
    /// The file cannot be read.
    pub fn from_file(path: &std::path::Path) -> std::io::Result<Corpus> {
        let bytes = Bytes::from(std::fs::read(path)?);
        let name =
            path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        // A benchmark reads a handful of files once: leaking their names is
        // what lets a file corpus be named like a built-in one.
        Ok(Corpus::from_stream(Box::leak(name.into_boxed_str()), bytes))
    }
}

/// Where each blank line of `bytes` ends (after its terminator; a CRLF is
/// one terminator).
fn blank_line_ends(bytes: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut line_start = true;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        if b == b'\r' || b == b'\n' {
            if b == b'\r' && bytes.get(i) == Some(&b'\n') {
                i += 1;
            }
            if line_start {
                ends.push(i);
            }
            line_start = true;
        } else {
            line_start = false;
        }
    }
    ends
}

/// One line of a block.
#[derive(Clone, Copy)]
enum Line<'a> {
    /// `name: value` (one space after the colon).
    Field(&'a str, &'a str),
    /// `name:value` (no space; `value` must not start with a space).
    Tight(&'a str, &'a str),
    /// `:text`
    Comment(&'a str),
}

struct Builder {
    name: &'static str,
    buf: Vec<u8>,
    tally: Tally,
    boundaries: Vec<(usize, Tally)>,
}

impl Builder {
    fn new(name: &'static str, target_len: usize) -> Self {
        Builder {
            name,
            buf: Vec::with_capacity(target_len + 8192),
            tally: Tally::default(),
            boundaries: Vec::new(),
        }
    }

    /// Writes one block (its lines and the blank line that ends it), each
    /// line terminated by `eol`.
    fn block(&mut self, lines: &[Line<'_>], eol: &str) {
        let mut data_lines = 0usize;
        let mut data_len = 0usize;
        for line in lines {
            match *line {
                Line::Field(name, value) | Line::Tight(name, value) => {
                    self.buf.extend_from_slice(name.as_bytes());
                    self.buf.push(b':');
                    if matches!(line, Line::Field(..)) {
                        self.buf.push(b' ');
                    } else {
                        debug_assert!(!value.starts_with(' '));
                    }
                    self.buf.extend_from_slice(value.as_bytes());
                    if name == "data" {
                        data_lines += 1;
                        data_len += value.len();
                    }
                }
                Line::Comment(text) => {
                    self.buf.push(b':');
                    self.buf.extend_from_slice(text.as_bytes());
                }
            }
            debug_assert!(!matches!(line, Line::Field(_, v) | Line::Tight(_, v) if v.contains(['\r', '\n'])));
            self.buf.extend_from_slice(eol.as_bytes());
        }
        self.buf.extend_from_slice(eol.as_bytes());
        if data_lines > 0 {
            // Data lines are joined with LF.
            self.tally.add(data_len + data_lines - 1);
        }
        self.boundaries.push((self.buf.len(), self.tally));
    }

    /// Writes one block: the lines of `head`, then a `data:` line for each
    /// of `values`, LF-terminated.
    fn data_block(&mut self, head: &[Line<'_>], values: &[String]) {
        let mut lines = head.to_vec();
        lines.extend(values.iter().map(|v| Line::Field("data", v)));
        self.block(&lines, "\n");
    }

    fn len(&self) -> usize {
        self.buf.len()
    }

    fn build(self) -> Corpus {
        Corpus {
            name: self.name,
            bytes: Bytes::from(self.buf),
            expected: self.tally,
            boundaries: Some(self.boundaries),
        }
    }
}

fn alnum(rng: &mut XorShift64, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-";
    (0..len).map(|_| ALPHABET[rng.below(ALPHABET.len())] as char).collect()
}

/// (a) Many small events: `event: tick\nid: <n>\ndata: {"seq":<n>,"ok":true}\n\n`.
pub fn small_events(target_len: usize) -> Corpus {
    let mut b = Builder::new("small", target_len);
    let mut n = 0u64;
    while b.len() < target_len {
        let id = n.to_string();
        let data = format!(r#"{{"seq":{n},"ok":true}}"#);
        b.block(&[Line::Field("event", "tick"), Line::Field("id", &id), Line::Field("data", &data)], "\n");
        n += 1;
    }
    b.build()
}

/// (b) ~4 KiB JSON events: one JSON document split over four `data:` lines
/// of ~1 KiB each.
pub fn large_json_events(target_len: usize) -> Corpus {
    let mut b = Builder::new("json4k", target_len);
    let mut rng = XorShift64::new(0x4A53_4F4E);
    let mut n = 0u64;
    while b.len() < target_len {
        let id = n.to_string();
        let l1 = format!(r#"{{"seq":{n},"rows":[{{"k":"{}"}},"#, alnum(&mut rng, 990));
        let l2 = format!(r#"{{"k":"{}"}},"#, alnum(&mut rng, 1000));
        let l3 = format!(r#"{{"k":"{}"}},"#, alnum(&mut rng, 1000));
        let l4 = format!(r#"{{"k":"{}"}}]}}"#, alnum(&mut rng, 1000));
        b.block(
            &[
                Line::Field("event", "snapshot"),
                Line::Field("id", &id),
                Line::Field("data", &l1),
                Line::Field("data", &l2),
                Line::Field("data", &l3),
                Line::Field("data", &l4),
            ],
            "\n",
        );
        n += 1;
    }
    b.build()
}

/// (c) An LLM token stream: `data: {"choices":[{"delta":{"content":"<word>"}}]}`
/// events, most without `event:`/`id:` (every 8th has an `id:`, every 64th is
/// an `event: usage` event), some multi-byte UTF-8 words, ending with
/// `data: [DONE]`.
pub fn llm_tokens(target_len: usize) -> Corpus {
    const WORDS: &[&str] = &[
        " the",
        " model",
        " streams",
        " tokens",
        ",",
        ".",
        " and",
        " a",
        " response",
        " naïve",
        " café",
        " 日本語",
        " 🦀",
        "\\n",
        " \\\"quoted\\\"",
        " Server",
        "-Sent",
        " Events",
        " over",
        " HTTP",
        " of",
        " to",
        " is",
        " in",
    ];
    let mut b = Builder::new("llm", target_len);
    let mut rng = XorShift64::new(0x11A);
    let mut n = 0u64;
    let done_len = "data: [DONE]\n\n".len();
    while b.len() + done_len < target_len {
        let word = WORDS[rng.below(WORDS.len())];
        if n % 64 == 63 {
            let data =
                format!(r#"{{"usage":{{"prompt_tokens":{},"completion_tokens":{n}}}}}"#, rng.below(4000));
            b.block(&[Line::Field("event", "usage"), Line::Field("data", &data)], "\n");
        } else {
            let data = format!(r#"{{"choices":[{{"delta":{{"content":"{word}"}}}}]}}"#);
            if n.is_multiple_of(8) {
                let id = format!("chatcmpl-{n}");
                b.block(&[Line::Field("id", &id), Line::Field("data", &data)], "\n");
            } else {
                b.block(&[Line::Field("data", &data)], "\n");
            }
        }
        n += 1;
    }
    b.block(&[Line::Field("data", "[DONE]")], "\n");
    b.build()
}

/// (d) A CRLF mix: CRLF line endings, `: keep-alive` comment blocks, `retry:
/// 3000` lines and retry-only blocks, multi-line data (with an empty middle
/// line), `data:` without a space, events with empty data, comments inside
/// events, and one block in ten terminated by lone CRs.
pub fn crlf_mix(target_len: usize) -> Corpus {
    crlf_mix_inner("crlf", target_len, true)
}

/// [`crlf_mix`] without the lone-CR blocks (every line ends in CRLF), for
/// decoders that cannot handle a lone CR.
pub fn crlf_only(target_len: usize) -> Corpus {
    crlf_mix_inner("crlf-only", target_len, false)
}

fn crlf_mix_inner(name: &'static str, target_len: usize, lone_cr: bool) -> Corpus {
    let mut b = Builder::new(name, target_len);
    let mut n = 0u64;
    let cr = if lone_cr { "\r" } else { "\r\n" };
    while b.len() < target_len {
        let id = n.to_string();
        let json = format!(r#"{{"seq":{n},"status":"ok"}}"#);
        match n % 10 {
            0 => b.block(&[Line::Comment(" keep-alive")], "\r\n"),
            1 => b.block(
                &[
                    Line::Field("event", "update"),
                    Line::Field("id", &id),
                    Line::Field("data", "{\"part\":1,"),
                    Line::Field("data", &json),
                    Line::Field("data", "}"),
                ],
                "\r\n",
            ),
            2 => b.block(&[Line::Field("retry", "3000"), Line::Field("data", &json)], "\r\n"),
            3 => b.block(&[Line::Field("id", &id), Line::Field("data", &json)], cr),
            4 => b.block(
                &[Line::Field("data", "first"), Line::Tight("data", ""), Line::Field("data", "third")],
                "\r\n",
            ),
            5 => b.block(&[Line::Field("retry", "3000")], "\r\n"),
            6 => b.block(&[Line::Comment(" tick"), Line::Field("data", &json), Line::Comment("")], "\r\n"),
            7 => b.block(
                &[Line::Field("event", "update"), Line::Field("data", "a"), Line::Field("data", &json)],
                cr,
            ),
            8 => b.block(&[Line::Tight("data", &json)], "\r\n"),
            _ => b.block(&[Line::Field("event", "ping"), Line::Tight("data", "")], "\r\n"),
        }
        n += 1;
    }
    b.build()
}

/// Words of running text in several scripts (Latin with diacritics,
/// German, Greek, Cyrillic, Arabic, Hebrew, Devanagari, Thai, Chinese,
/// Japanese, Korean) and emoji, for the multi-byte corpora.
const INTL_WORDS: &[&str] = &[
    "the",
    "model",
    "streams",
    "tokens",
    "response",
    "naïve",
    "café",
    "résumé",
    "déjà",
    "vu",
    "Straße",
    "größer",
    "Grüße",
    "Übermaß",
    "weiß",
    "señor",
    "año",
    "façade",
    "Ελληνικά",
    "λόγος",
    "Привет",
    "мир",
    "событие",
    "данные",
    "مرحبا",
    "بالعالم",
    "שלום",
    "नमस्ते",
    "दुनिया",
    "สวัสดี",
    "日本",
    "日本語",
    "東京都",
    "の",
    "データ",
    "ストリーム",
    "イベント",
    "中文",
    "服务器",
    "发送",
    "事件",
    "流式",
    "한국어",
    "서버",
    "이벤트",
    "데이터",
    "🦀",
    "🚀",
    "👍🏽",
    "🇯🇵",
    "✨",
    "—",
    "…",
    "€",
    "±",
];

/// A run of words, mostly ASCII, with a multi-byte word from
/// `INTL_WORDS` about one word in `one_in`, until about `len` bytes.
fn prose(rng: &mut XorShift64, len: usize, one_in: usize) -> String {
    const ASCII: &[&str] = &[
        "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "stream", "event", "value", "id",
        "status", "ok", "price", "42", "3.14", "user", "name", "order", "items",
    ];
    let mut out = String::with_capacity(len + 32);
    while out.len() < len {
        if !out.is_empty() {
            out.push(' ');
        }
        if rng.below(one_in) == 0 {
            out.push_str(INTL_WORDS[rng.below(INTL_WORDS.len())]);
        } else {
            out.push_str(ASCII[rng.below(ASCII.len())]);
        }
    }
    out
}

/// (e) ~4 KiB JSON documents with multi-byte text in their values (é, ß,
/// 日本 and the other scripts of `INTL_WORDS`, about one word in five),
/// pretty-printed over 3 to 6 `data:` lines of varied length, each with an
/// `event` and an `id`.
pub fn json4k_intl(target_len: usize) -> Corpus {
    json4k_multibyte("json4k-intl", target_len, 5)
}

/// (e2) The documents of [`json4k_intl`] with a multi-byte word only about
/// one in sixty (an accented name here and there): mostly ASCII lines with
/// a few characters that are not.
pub fn json4k_accents(target_len: usize) -> Corpus {
    json4k_multibyte("json4k-accents", target_len, 60)
}

/// ~4 KiB JSON documents over 3 to 6 `data:` lines, a multi-byte word about
/// one in `one_in`.
fn json4k_multibyte(name: &'static str, target_len: usize, one_in: usize) -> Corpus {
    let mut b = Builder::new(name, target_len);
    let mut rng = XorShift64::new(0x001E_7E57);
    let mut n = 0u64;
    while b.len() < target_len {
        let id = format!("evt-{n}");
        let lines = 3 + rng.below(4);
        let mut values = Vec::with_capacity(lines);
        let total = 3600 + rng.below(1000);
        for k in 0..lines {
            let jitter = rng.below(80);
            let text = prose(&mut rng, total / lines - 40 + jitter, one_in);
            let sep = if k + 1 == lines { "}" } else { "," };
            let open = if k == 0 { format!(r#"{{"seq":{n},"#) } else { String::new() };
            values.push(format!(r#"{open}"field{k}":{{"text":"{text}","n":{}}}{sep}"#, rng.below(1000)));
        }
        b.data_block(&[Line::Field("event", "document"), Line::Field("id", &id)], &values);
        n += 1;
    }
    b.build()
}

/// (f) An LLM token stream in several scripts: OpenAI-style
/// `data: {"choices":[{"delta":{"content":"<token>"}}]}` events and
/// Anthropic-style `event: content_block_delta` events with a `text_delta`,
/// the tokens drawn from `INTL_WORDS` and ASCII words (CJK, Cyrillic,
/// Arabic, Devanagari, emoji), some with an `id`, ending with `[DONE]`.
pub fn llm_intl(target_len: usize) -> Corpus {
    let mut b = Builder::new("llm-intl", target_len);
    let mut rng = XorShift64::new(0x0070_CE4E);
    let mut n = 0u64;
    let done_len = "data: [DONE]\n\n".len();
    while b.len() + done_len + 256 < target_len {
        let token = match rng.below(3) {
            0 => format!(" {}", INTL_WORDS[rng.below(INTL_WORDS.len())]),
            1 => INTL_WORDS[rng.below(INTL_WORDS.len())].to_owned(),
            _ => prose(&mut rng, 1, 3),
        };
        if n.is_multiple_of(2) {
            let data = format!(
                r#"{{"id":"chatcmpl-9x{n}","object":"chat.completion.chunk","choices":[{{"index":0,"delta":{{"content":"{token}"}},"finish_reason":null}}]}}"#
            );
            if n.is_multiple_of(16) {
                let id = n.to_string();
                b.block(&[Line::Field("id", &id), Line::Field("data", &data)], "\n");
            } else {
                b.block(&[Line::Field("data", &data)], "\n");
            }
        } else {
            let data = format!(
                r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"{token}"}}}}"#
            );
            b.block(&[Line::Field("event", "content_block_delta"), Line::Field("data", &data)], "\n");
        }
        n += 1;
    }
    b.block(&[Line::Field("data", "[DONE]")], "\n");
    b.build()
}

/// (g) CJK text: chat and news messages in Chinese, Japanese and Korean
/// (three bytes a character, little ASCII), from a few dozen bytes to a
/// few KiB, on one `data:` line or a few, some with an `id` and a type.
pub fn cjk(target_len: usize) -> Corpus {
    const PHRASES: &[&str] = &[
        "服务器发送事件是一种标准",
        "浏览器通过持久连接接收更新",
        "数据以文本流的形式传输",
        "今日は良い天気ですね",
        "東京都の新しいニュースをお届けします",
        "イベントストリームを受信しました",
        "サーバーからのメッセージ",
        "안녕하세요 반갑습니다",
        "서버에서 보낸 이벤트입니다",
        "실시간 데이터 스트리밍",
        "，",
        "。",
        "、",
        "「引用」",
        "（注）",
        "１２３",
    ];
    let mut b = Builder::new("cjk", target_len);
    let mut rng = XorShift64::new(0x00C1_C1C1);
    let mut n = 0u64;
    while b.len() < target_len {
        let id = n.to_string();
        let lines = 1 + rng.below(3) * rng.below(2);
        let size = [40, 120, 400, 1500][rng.below(4)];
        let values: Vec<String> = (0..lines)
            .map(|_| {
                let mut s = String::new();
                while s.len() < size {
                    s.push_str(PHRASES[rng.below(PHRASES.len())]);
                }
                s
            })
            .collect();
        let mut fields = Vec::new();
        if n.is_multiple_of(3) {
            fields.push(Line::Field("event", "メッセージ"));
        }
        if n.is_multiple_of(2) {
            fields.push(Line::Field("id", &id));
        }
        b.data_block(&fields, &values);
        n += 1;
    }
    b.build()
}

/// (h) Chat messages dense with emoji (four bytes each, some joined by
/// ZWJ or skin-tone modifiers) among short words, 60 to 600 bytes on one
/// `data:` line, each with an `id`.
pub fn emoji(target_len: usize) -> Corpus {
    const EMOJI: &[&str] =
        &["😀", "😂", "🥲", "👍🏽", "👨‍👩‍👧", "🏳️‍🌈", "🔥", "🎉", "❤️", "🦀", "🚀", "🇯🇵", "🇧🇷", "✅", "🙏🏿", "💯"];
    let mut b = Builder::new("emoji", target_len);
    let mut rng = XorShift64::new(0x00E3_0771);
    let mut n = 0u64;
    while b.len() < target_len {
        let id = n.to_string();
        let size = 60 + rng.below(540);
        let mut text = String::with_capacity(size + 32);
        while text.len() < size {
            if rng.below(3) == 0 {
                text.push_str(&prose(&mut rng, 1, 1000));
            } else {
                text.push_str(EMOJI[rng.below(EMOJI.len())]);
            }
            text.push(' ');
        }
        let data = format!(r#"{{"user":"u{}","text":"{text}"}}"#, rng.below(500));
        b.block(&[Line::Field("id", &id), Line::Field("data", &data)], "\n");
        n += 1;
    }
    b.build()
}

/// (i) News text in Cyrillic and Greek (two bytes a letter, dense), 300 to
/// 3,000 bytes over one to three `data:` lines, with a type.
pub fn cyrillic(target_len: usize) -> Corpus {
    const WORDS: &[&str] = &[
        "сервер",
        "отправляет",
        "события",
        "клиенту",
        "через",
        "постоянное",
        "соединение",
        "новости",
        "сегодня",
        "в",
        "Москве",
        "погода",
        "данные",
        "поток",
        "Αθήνα",
        "ειδήσεις",
        "σήμερα",
        "καιρός",
        "2026",
        "—",
        "«цитата»",
    ];
    let mut b = Builder::new("cyrillic", target_len);
    let mut rng = XorShift64::new(0x0C1E_111C);
    while b.len() < target_len {
        let lines = 1 + rng.below(3);
        let size = 300 + rng.below(2700);
        let values: Vec<String> = (0..lines)
            .map(|_| {
                let mut s = String::with_capacity(size / lines + 32);
                while s.len() < size / lines {
                    s.push_str(WORDS[rng.below(WORDS.len())]);
                    s.push(' ');
                }
                s
            })
            .collect();
        b.data_block(&[Line::Field("event", "news")], &values);
    }
    b.build()
}

/// (j) Large JSON documents on a single `data:` line each, 2 to 12 KiB
/// (subscription payloads, whole objects), mostly ASCII with an accented
/// word about one in forty, no `event` or `id`.
pub fn json_line(target_len: usize) -> Corpus {
    let mut b = Builder::new("json-line", target_len);
    let mut rng = XorShift64::new(0x0051_9611);
    let mut n = 0u64;
    while b.len() < target_len {
        let size = 2048 + rng.below(10 * 1024);
        let mut data = format!(r#"{{"seq":{n},"items":["#);
        while data.len() < size {
            let len = 40 + rng.below(200);
            let text = prose(&mut rng, len, 40);
            data.push_str(&format!(r#"{{"id":{},"text":"{text}"}},"#, rng.below(100_000)));
        }
        data.push_str(r#"{}]}"#);
        b.block(&[Line::Field("data", &data)], "\n");
        n += 1;
    }
    b.build()
}

/// (k) 64 KiB events: log batches of about a hundred `data:` lines of 300
/// to 900 bytes, with a type and an id.
pub fn big(target_len: usize) -> Corpus {
    let mut b = Builder::new("big", target_len);
    let mut rng = XorShift64::new(0x0000_B166);
    let mut n = 0u64;
    while b.len() < target_len {
        let id = n.to_string();
        let mut lines = Vec::new();
        let mut len = 0;
        while len < 64 * 1024 {
            let line = format!("2026-12-07T06:{:02}:{:02}Z INFO {}", rng.below(60), rng.below(60), {
                let len = 300 + rng.below(600);
                alnum(&mut rng, len)
            });
            len += line.len();
            lines.push(line);
        }
        b.data_block(&[Line::Field("event", "logs"), Line::Field("id", &id)], &lines);
        n += 1;
    }
    b.build()
}

/// (l) A hub's stream: small typed events with UUID URN ids (some with `retry`),
/// `data:` without the space, and a `:` heartbeat comment every few events.
pub fn hub(target_len: usize) -> Corpus {
    let mut b = Builder::new("hub", target_len);
    let mut rng = XorShift64::new(0x0000_4B0B);
    let mut n = 0u64;
    while b.len() < target_len {
        // A version 4 UUID as a URN, 45 bytes, as Mercure hubs send them.
        let (hi, lo) = (rng.next_u64(), rng.next_u64());
        let id = format!(
            "urn:uuid:{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xFFFF,
            hi & 0xFFF,
            0x8000 | (lo >> 48) & 0x3FFF,
            lo & 0xFFFF_FFFF_FFFF
        );
        let data = format!(r#"{{"@id":"/books/{}","status":"{}"}}"#, rng.below(10_000), {
            let len = 8 + rng.below(40);
            alnum(&mut rng, len)
        });
        if n.is_multiple_of(5) {
            b.block(&[Line::Comment("")], "\n");
        }
        if n.is_multiple_of(50) {
            b.block(
                &[
                    Line::Field("retry", "2000"),
                    Line::Field("event", "update"),
                    Line::Field("id", &id),
                    Line::Tight("data", &data),
                ],
                "\n",
            );
        } else {
            b.block(
                &[Line::Field("event", "update"), Line::Field("id", &id), Line::Tight("data", &data)],
                "\n",
            );
        }
        n += 1;
    }
    b.build()
}

/// A token of a language model's reply: a word or two, with a space
/// before, one word in four from `INTL_WORDS` (accents, Greek, Cyrillic,
/// Arabic, Hebrew, Devanagari, Thai, CJK, emoji), now and then a line break
/// as JSON writes it.
fn token(rng: &mut XorShift64) -> String {
    let words = 1 + rng.below(2);
    let mut out = String::new();
    for _ in 0..words {
        match rng.below(40) {
            0 => out.push_str("\\n\\n"),
            1..10 => {
                out.push(' ');
                out.push_str(INTL_WORDS[rng.below(INTL_WORDS.len())]);
            }
            _ => {
                out.push(' ');
                out.push_str(&prose(rng, 1, usize::MAX));
            }
        }
    }
    out
}

/// (m) OpenAI's chat completions stream, field for field: one
/// `chat.completion.chunk` of about 250 bytes per token on a `data:` line,
/// the role first, a finish reason and a usage chunk last, then `[DONE]`;
/// replies of 20 to 400 tokens, one after the other. Each event is too large
/// to be held inline.
pub fn openai(target_len: usize) -> Corpus {
    let mut b = Builder::new("openai", target_len);
    let mut rng = XorShift64::new(0x0A1_C4A7);
    while b.len() < target_len {
        let id = format!("chatcmpl-{}", alnum(&mut rng, 29).replace([' ', '_', '-'], "x"));
        let created = 1_760_000_000 + rng.below(10_000_000);
        let head = format!(
            r#"{{"id":"{id}","object":"chat.completion.chunk","created":{created},"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_eb9dce56a8","choices":"#
        );
        let chunk = |choices: &str| format!("{head}{choices}}}");
        b.block(
            &[Line::Field(
                "data",
                &chunk(r#"[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]"#),
            )],
            "\n",
        );
        let tokens = 20 + rng.below(380);
        for _ in 0..tokens {
            let choices = format!(
                r#"[{{"index":0,"delta":{{"content":"{}"}},"logprobs":null,"finish_reason":null}}]"#,
                token(&mut rng)
            );
            b.block(&[Line::Field("data", &chunk(&choices))], "\n");
        }
        b.block(
            &[Line::Field(
                "data",
                &chunk(r#"[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]"#),
            )],
            "\n",
        );
        let usage = format!(
            r#"[],"usage":{{"prompt_tokens":{},"completion_tokens":{tokens},"total_tokens":{}}}"#,
            rng.below(2000),
            tokens + 2000
        );
        b.block(&[Line::Field("data", &chunk(&usage))], "\n");
        b.block(&[Line::Field("data", "[DONE]")], "\n");
    }
    b.build()
}

/// (n) Anthropic's messages stream, field for field: typed events
/// (`message_start`, `content_block_start`, a `ping`, one
/// `content_block_delta` of about 130 bytes per token, the stops and the
/// usage); replies of 20 to 400 tokens, one after the other.
pub fn anthropic(target_len: usize) -> Corpus {
    let mut b = Builder::new("anthropic", target_len);
    let mut rng = XorShift64::new(0x0A27_4401);
    while b.len() < target_len {
        let id = format!("msg_01{}", alnum(&mut rng, 22).replace([' ', '_', '-'], "x"));
        let start = format!(
            r#"{{"type":"message_start","message":{{"id":"{id}","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{{"input_tokens":{},"output_tokens":1}}}}}}"#,
            rng.below(4000)
        );
        b.block(&[Line::Field("event", "message_start"), Line::Field("data", &start)], "\n");
        b.block(
            &[
                Line::Field("event", "content_block_start"),
                Line::Field(
                    "data",
                    r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
                ),
            ],
            "\n",
        );
        b.block(&[Line::Field("event", "ping"), Line::Field("data", r#"{"type": "ping"}"#)], "\n");
        let tokens = 20 + rng.below(380);
        for _ in 0..tokens {
            let delta = format!(
                r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"{}"}}}}"#,
                token(&mut rng)
            );
            b.block(&[Line::Field("event", "content_block_delta"), Line::Field("data", &delta)], "\n");
        }
        b.block(
            &[
                Line::Field("event", "content_block_stop"),
                Line::Field("data", r#"{"type":"content_block_stop","index":0}"#),
            ],
            "\n",
        );
        let delta = format!(
            r#"{{"type":"message_delta","delta":{{"stop_reason":"end_turn","stop_sequence":null}},"usage":{{"output_tokens":{tokens}}}}}"#
        );
        b.block(&[Line::Field("event", "message_delta"), Line::Field("data", &delta)], "\n");
        b.block(
            &[Line::Field("event", "message_stop"), Line::Field("data", r#"{"type":"message_stop"}"#)],
            "\n",
        );
    }
    b.build()
}

/// (o) JSON documents pretty-printed with two-space indents, one line of
/// the document per `data:` line (as servers that pretty-print send them):
/// an order of 1 to 4 items, a customer's name (accented or in another
/// script one time in three), 20 to 40 lines of 2 to 40 bytes, with an
/// `event` and an `id`.
pub fn pretty(target_len: usize) -> Corpus {
    const NAMES: &[&str] =
        &["Anna Schmidt", "José Álvarez", "Zoë Martin", "Łukasz Nowak", "李雷", "Ahmed Hassan"];
    let mut b = Builder::new("pretty", target_len);
    let mut rng = XorShift64::new(0x0097_E77F);
    let mut n = 0u64;
    while b.len() < target_len {
        let mut doc = vec![
            "{".to_owned(),
            format!(r#"  "id": {n},"#),
            r#"  "customer": {"#.to_owned(),
            format!(r#"    "name": "{}","#, NAMES[rng.below(NAMES.len())]),
            format!(r#"    "tier": "{}""#, ["gold", "silver", "basic"][rng.below(3)]),
            "  },".to_owned(),
            r#"  "items": ["#.to_owned(),
        ];
        let items = 1 + rng.below(4);
        for i in 0..items {
            doc.push("    {".to_owned());
            doc.push(format!(r#"      "sku": "A-{}","#, rng.below(10_000)));
            doc.push(format!(r#"      "qty": {},"#, 1 + rng.below(5)));
            doc.push(format!(r#"      "price": {}.{:02}"#, rng.below(200), rng.below(100)));
            doc.push(if i + 1 == items { "    }" } else { "    }," }.to_owned());
        }
        doc.push("  ],".to_owned());
        let note = 8 + rng.below(30);
        doc.push(format!(r#"  "note": "{}""#, prose(&mut rng, note, 6)));
        doc.push("}".to_owned());
        let id = n.to_string();
        b.data_block(&[Line::Field("event", "order"), Line::Field("id", &id)], &doc);
        n += 1;
    }
    b.build()
}

/// The corpus of [`all`] called `name`, built alone.
pub fn named(name: &str, target_len: usize) -> Option<Corpus> {
    let make: fn(usize) -> Corpus = match name {
        "small" => small_events,
        "json4k" => large_json_events,
        "json4k-intl" => json4k_intl,
        "json4k-accents" => json4k_accents,
        "llm" => llm_tokens,
        "llm-intl" => llm_intl,
        "cjk" => cjk,
        "crlf" => crlf_mix,
        "emoji" => emoji,
        "cyrillic" => cyrillic,
        "json-line" => json_line,
        "big" => big,
        "hub" => hub,
        "openai" => openai,
        "anthropic" => anthropic,
        "pretty" => pretty,
        _ => return None,
    };
    Some(make(target_len))
}

/// The benchmark corpora, each `target_len` bytes long (give or take a
/// block): small events, 4 KiB JSON events (ASCII, and with multi-byte
/// text), LLM token streams (ASCII-heavy, and in several scripts), CJK
/// text, a CRLF mix; then shapes beyond those: emoji-dense chat, Cyrillic
/// and Greek news, large one-line JSON, 64 KiB events, a hub's small typed
/// events with heartbeats; the streams of two language model APIs as they
/// are sent, field for field; and pretty-printed JSON, a `data:` line per
/// line of the document.
pub fn all(target_len: usize) -> Vec<Corpus> {
    vec![
        small_events(target_len),
        large_json_events(target_len),
        json4k_intl(target_len),
        json4k_accents(target_len),
        llm_tokens(target_len),
        llm_intl(target_len),
        cjk(target_len),
        crlf_mix(target_len),
        emoji(target_len),
        cyrillic(target_len),
        json_line(target_len),
        big(target_len),
        hub(target_len),
        openai(target_len),
        anthropic(target_len),
        pretty(target_len),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;

    #[test]
    fn reference_splitter_agrees_with_generators() {
        for corpus in all(256 * 1024).into_iter().chain([crlf_only(64 * 1024)]) {
            assert!(corpus.bytes.len() >= 64 * 1024);
            assert_eq!(reference::count_events(&corpus.bytes), corpus.events(), "{}", corpus.name);
            let prefix = corpus.prefix(10_000);
            assert!(prefix.bytes.len() <= 10_000);
            // Only a corpus of blocks of several KiB (`json-line`, `big`)
            // may have a short prefix.
            assert!(
                prefix.bytes.len() > 5_000 || matches!(corpus.name, "json-line" | "big"),
                "{}",
                corpus.name
            );
            assert_eq!(reference::count_events(&prefix.bytes), prefix.events());
        }
    }

    #[test]
    fn streams_without_their_generator_read_the_same() {
        // What a file of the same bytes gives: the expected result from the
        // reference decoder, and the blocks found from the blank lines.
        for c in all(64 * 1024).into_iter().chain([crlf_only(64 * 1024)]) {
            let file = Corpus::from_stream(c.name, c.bytes.clone());
            assert_eq!(file.expected, c.expected, "{}", c.name);
            let blocks = c.block_chunks();
            assert_eq!(file.block_chunks(), blocks, "{}", c.name);
            assert_eq!(blocks.concat(), c.bytes, "{}", c.name);
            let cut = file.prefix(10_000);
            assert_eq!(cut.bytes.len(), 10_000);
            assert_eq!(reference::count_events(&cut.bytes), cut.events(), "{}", c.name);
        }
        assert_eq!(blank_line_ends(b"data: a\r\n\r\ndata: b\r\rdata: c\n\n: x\n"), [11, 20, 29]);
    }

    #[test]
    fn every_corpus_can_be_built_by_name() {
        for c in all(64 * 1024) {
            let named = named(c.name, 64 * 1024).expect("a corpus of `all`");
            assert_eq!(named.bytes, c.bytes, "{}", c.name);
        }
    }

    #[test]
    fn generators_are_deterministic() {
        assert_eq!(large_json_events(50_000).bytes, large_json_events(50_000).bytes);
        assert_eq!(llm_tokens(50_000).bytes, llm_tokens(50_000).bytes);
    }

    #[test]
    fn llm_stream_ends_with_done() {
        let c = llm_tokens(10_000);
        assert!(c.bytes.ends_with(b"data: [DONE]\n\n"));
    }

    #[test]
    fn small_event_shape() {
        let c = small_events(100);
        assert!(c.bytes.starts_with(b"event: tick\nid: 0\ndata: {\"seq\":0,\"ok\":true}\n\n"));
    }
}
