//! Decodes a `text/event-stream` from standard input.
//!
//! ```text
//! cargo run --release -p sse-proto --example sse-decode [-- --chunk-size N] < stream.txt
//! ```
//!
//! Reads standard input until end of file, feeding the decoder as it reads
//! (`N` bytes at a time with `--chunk-size`, otherwise whatever each read
//! returns; the input is never held whole), then finishes the stream. Prints
//! one JSON object per dispatched event, `{"type": ..., "data": ..., "id": ...}`,
//! where `id` is the last event ID at dispatch. On a decode error it prints one
//! line to standard error and exits with status 1.

use sse_proto::{DecodeError, Decoder, MessageEvent};
use std::io::{self, BufWriter, Read, Write};
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: sse-decode [--chunk-size N]   (N >= 1; reads the stream from stdin)");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut chunk_size: Option<usize> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "--chunk-size" => args.next(),
            a => match a.strip_prefix("--chunk-size=") {
                Some(v) => Some(v.to_owned()),
                None => return usage(),
            },
        };
        match value.and_then(|v| v.parse::<usize>().ok()).filter(|&n| n > 0) {
            Some(n) => chunk_size = Some(n),
            None => return usage(),
        }
    }
    match run(chunk_size) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Decode(e)) => {
            eprintln!("sse-decode: {e}");
            ExitCode::from(1)
        }
        Err(Failure::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(Failure::Io(e)) => {
            eprintln!("sse-decode: i/o error: {e}");
            ExitCode::from(1)
        }
    }
}

enum Failure {
    Decode(DecodeError),
    Io(io::Error),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e)
    }
}

fn run(chunk_size: Option<usize>) -> Result<(), Failure> {
    let mut input = io::stdin().lock();
    let stdout = io::stdout().lock();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout);
    let mut decoder = Decoder::new();
    // With --chunk-size the decoder sees exactly N bytes per feed (the last
    // feed may be shorter), however the pipe delivers them.
    let mut buf = vec![0u8; chunk_size.unwrap_or(64 * 1024)];
    let mut filled = 0;
    loop {
        let n = match input.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        let eof = n == 0;
        filled += n;
        if filled == buf.len() || (eof && filled > 0) || chunk_size.is_none() {
            decoder.feed(&buf[..filled]);
            filled = 0;
            drain(&mut decoder, &mut out)?;
        }
        if eof {
            break;
        }
    }
    decoder.finish();
    drain(&mut decoder, &mut out)?;
    out.flush()?;
    Ok(())
}

fn drain(decoder: &mut Decoder, out: &mut impl Write) -> Result<(), Failure> {
    while let Some(event) = decoder.poll_event().map_err(Failure::Decode)? {
        write_event(out, &event)?;
    }
    Ok(())
}

fn write_event(out: &mut impl Write, event: &MessageEvent) -> io::Result<()> {
    // Keys in the documented order: type, data, id.
    out.write_all(b"{\"type\": ")?;
    serde_json::to_writer(&mut *out, event.event_type())?;
    out.write_all(b", \"data\": ")?;
    serde_json::to_writer(&mut *out, event.data())?;
    out.write_all(b", \"id\": ")?;
    serde_json::to_writer(&mut *out, event.last_event_id())?;
    out.write_all(b"}\n")
}
