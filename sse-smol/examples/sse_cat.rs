//! `sse-cat`: the curl of event streams. Connects to a Server-Sent Events
//! URL (`http://` or `https://`), follows it by the EventSource rules, and
//! prints each event as one JSON line.
//!
//! ```text
//! cargo run -p sse-smol --example sse-cat -- URL [--cacert PEM] [-X METHOD]
//!     [-H 'Name: value']... [-d BODY | -d @FILE] [--last-event-id ID] [--max-events N]
//! ```
//!
//! The contract outside scripts rely on:
//!
//! - stdout: one JSON object per event, in the `sse-decode` schema:
//!   `{"type": "...", "data": "...", "id": "..."}` (`id` is the last event
//!   ID at dispatch); nothing else;
//! - stderr: the connection's state (connected, ended, retrying) and, on
//!   failure, the cause;
//! - it reconnects by the EventSource rules (after the server's `retry`
//!   time, with `Last-Event-ID`, resending the method, headers and body);
//! - exit 0 after `--max-events N` events, or when the server answers 204
//!   (how a server stops an EventSource);
//! - exit 1, within seconds and with the cause on stderr, when the stream
//!   cannot be had for good: a certificate that is not trusted, names
//!   another host or has expired; a status other than 200 or 204 (with the
//!   start of its body); a content type other than `text/event-stream`; a
//!   redirect loop; a stream that breaks a limit;
//! - exit 2 for a usage mistake.
//!
//! `--cacert PEM` trusts the certificate authorities in that file instead
//! of the built-in Mozilla roots (as curl does). `-d` without `-X` makes
//! the request a `POST`; `-d @FILE` sends the file's contents.

use std::io::Write;
use std::process::ExitCode;

use sse_smol::{ClientConfig, ClientEvent, ClientTls, Connector, ErrorCause, EventSource, ReadyState, Smol};

const USAGE: &str = "sse-cat URL [--cacert PEM] [-X METHOD] [-H 'Name: value']... [-d BODY | -d @FILE] \
                     [--last-event-id ID] [--max-events N]";

/// What the command line asks for.
struct Options {
    url: String,
    cacert: Option<String>,
    method: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    last_event_id: Option<String>,
    max_events: Option<u64>,
}

/// A usage mistake: the message, then the usage line, exit 2.
fn usage_error(message: &str) -> ExitCode {
    eprintln!("sse-cat: {message}\nusage: {USAGE}");
    ExitCode::from(2)
}

fn parse_args() -> Result<Options, ExitCode> {
    let mut options = Options {
        url: String::new(),
        cacert: None,
        method: None,
        headers: Vec::new(),
        body: None,
        last_event_id: None,
        max_events: None,
    };
    let mut url = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            println!("usage: {USAGE}");
            return Err(ExitCode::SUCCESS);
        }
        // `--name=value` as well as `--name value`.
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_owned(), Some(value.to_owned())),
            _ => (arg.clone(), None),
        };
        let takes_value = matches!(
            name.as_str(),
            "--cacert"
                | "-X"
                | "--request"
                | "-H"
                | "--header"
                | "-d"
                | "--data"
                | "--last-event-id"
                | "--max-events"
        );
        if !takes_value {
            if arg.starts_with('-') && arg.len() > 1 {
                return Err(usage_error(&format!("unknown option {arg}")));
            }
            if url.replace(arg).is_some() {
                return Err(usage_error("more than one URL"));
            }
            continue;
        }
        let Some(value) = inline.or_else(|| args.next()) else {
            return Err(usage_error(&format!("{name} needs a value")));
        };
        match name.as_str() {
            "--cacert" => options.cacert = Some(value),
            "-X" | "--request" => options.method = Some(value),
            "-H" | "--header" => {
                let Some((header, field)) = value.split_once(':') else {
                    return Err(usage_error(&format!("header {value:?} is not 'Name: value'")));
                };
                options.headers.push((header.trim().to_owned(), field.trim().to_owned()));
            }
            "-d" | "--data" => {
                let body = match value.strip_prefix('@') {
                    Some(path) => match std::fs::read(path) {
                        Ok(bytes) => bytes,
                        Err(e) => return Err(usage_error(&format!("cannot read {path}: {e}"))),
                    },
                    None => value.into_bytes(),
                };
                options.body = Some(body);
            }
            "--last-event-id" => options.last_event_id = Some(value),
            _ => match value.parse() {
                Ok(n) => options.max_events = Some(n),
                Err(_) => return Err(usage_error(&format!("--max-events {value:?} is not a number"))),
            },
        }
    }
    options.url = url.ok_or_else(|| usage_error("no URL"))?;
    Ok(options)
}

/// The request, from the options.
fn config(options: &Options) -> Result<ClientConfig, String> {
    let mut config = ClientConfig::new(&options.url).map_err(|e| format!("{}: {e}", options.url))?;
    let method = options.method.as_deref().unwrap_or(if options.body.is_some() { "POST" } else { "GET" });
    config = config.method(method);
    let has = |name: &str| options.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    if !has("user-agent") {
        // Some APIs refuse requests without one.
        config = config.header("User-Agent", concat!("sse-cat/", env!("CARGO_PKG_VERSION")));
    }
    if options.body.is_some() && !has("content-type") {
        // What curl sends for -d.
        config = config.header("Content-Type", "application/x-www-form-urlencoded");
    }
    for (name, value) in &options.headers {
        config = config.header(name, value);
    }
    if let Some(body) = &options.body {
        config = config.body(body.clone());
    }
    if let Some(id) = &options.last_event_id {
        config = config.last_event_id(id);
    }
    // Randomness enters as an argument: the jitter's seed.
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos());
    Ok(config.seed(seed as u64 ^ u64::from(std::process::id())))
}

/// How to connect: the CA file, if given, replaces the built-in roots.
fn connector(options: &Options) -> Result<Connector, String> {
    let mut tls = ClientTls::new();
    if let Some(path) = &options.cacert {
        let pem = std::fs::read(path).map_err(|e| format!("--cacert {path}: {e}"))?;
        tls = tls
            .add_root_certificates_pem(&pem)
            .map_err(|e| format!("--cacert {path}: {e}"))?
            .only_added_roots();
    }
    let tls = tls.build().map_err(|e| e.to_string())?;
    Ok(Connector::new().tls(tls))
}

/// Writes one event in the `sse-decode` schema.
fn write_event(out: &mut impl Write, event: &sse_smol::proto::MessageEvent) -> std::io::Result<()> {
    // Keys in the documented order: type, data, id.
    out.write_all(b"{\"type\": ")?;
    serde_json::to_writer(&mut *out, event.event_type())?;
    out.write_all(b", \"data\": ")?;
    serde_json::to_writer(&mut *out, event.data())?;
    out.write_all(b", \"id\": ")?;
    serde_json::to_writer(&mut *out, event.last_event_id())?;
    out.write_all(b"}\n")?;
    out.flush()
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(code) => return code,
    };
    let (config, connector) = match config(&options).and_then(|c| Ok((c, connector(&options)?))) {
        Ok(both) => both,
        Err(e) => return usage_error(&e),
    };
    let mut source = match EventSource::with_connector(Smol, config, connector) {
        Ok(source) => source,
        Err(e) => return usage_error(&e.to_string()),
    };
    if options.max_events == Some(0) {
        return ExitCode::SUCCESS;
    }
    smol::block_on(async {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let mut printed = 0u64;
        while let Some(event) = source.next().await {
            match event {
                ClientEvent::Open => eprintln!("sse-cat: connected to {}", options.url),
                ClientEvent::Message(message) => {
                    if write_event(&mut out, &message).is_err() {
                        // The reader went away (a closed pipe): done.
                        return ExitCode::SUCCESS;
                    }
                    printed += 1;
                    if options.max_events.is_some_and(|max| printed >= max) {
                        return ExitCode::SUCCESS;
                    }
                }
                ClientEvent::Ended { reconnect_in } => {
                    eprintln!("sse-cat: the stream ended; reconnecting in {reconnect_in:?}");
                }
                ClientEvent::Error { ready_state: ReadyState::Closed, cause } => {
                    // Spec: 204 No Content is how a server stops a client.
                    if let ErrorCause::Status { status: 204, .. } = cause {
                        eprintln!("sse-cat: the server answered 204 No Content: done");
                        return ExitCode::SUCCESS;
                    }
                    eprintln!("sse-cat: {}: {cause}", options.url);
                    return ExitCode::FAILURE;
                }
                ClientEvent::Error { cause, .. } => eprintln!("sse-cat: {cause}; retrying"),
                _ => {}
            }
        }
        ExitCode::SUCCESS
    })
}
