//! TLS on loopback, both sides in process, with certificates made by the
//! test (rcgen): no private key that anything trusts is ever checked in.
//! Generic over the [`Runtime`]; `tls_suite!` instantiates it for one.
//! Every wait is bounded: a test that hangs fails.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use sse_io::{
    ClientConfig, ClientEvent, ClientTls, ConnectError, Connector, Ctx, ErrorCause, Event, EventSource,
    ReadyState, Response, Router, Runtime, Server, ServerTls, Shutdown, StreamConfig, timeout,
};

/// The longest any one step may take.
const STEP: Duration = Duration::from_secs(20);

/// A certificate chain (leaf first) and its key, PEM.
#[derive(Clone)]
pub(crate) struct Identity {
    pub(crate) chain: String,
    pub(crate) key: String,
}

/// A test PKI: a CA the client trusts, and leaves for each case.
pub(crate) struct Pki {
    /// The CA certificate the client trusts.
    pub(crate) ca: String,
    /// For `localhost` and 127.0.0.1, valid now.
    pub(crate) good: Identity,
    /// Valid now, for another name.
    pub(crate) wrong_name: Identity,
    /// For `localhost` and 127.0.0.1, expired in 2001.
    pub(crate) expired: Identity,
    /// For `localhost` and 127.0.0.1, from a CA the client does not know.
    pub(crate) unknown_issuer: Identity,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key")).expect("CA certificate")
}

fn leaf(issuer: &CertifiedIssuer<'static, KeyPair>, names: &[&str], expired: bool) -> Identity {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, names[0]);
    if expired {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    let key = KeyPair::generate().expect("leaf key");
    let cert = params.signed_by(&key, issuer).expect("leaf certificate");
    Identity { chain: cert.pem(), key: key.serialize_pem() }
}

impl Pki {
    pub(crate) fn new() -> Pki {
        let trusted = ca("sse-io test CA");
        let stranger = ca("unknown test CA");
        let here = ["localhost", "127.0.0.1"];
        Pki {
            ca: trusted.pem(),
            good: leaf(&trusted, &here, false),
            wrong_name: leaf(&trusted, &["elsewhere.example"], false),
            expired: leaf(&trusted, &here, true),
            unknown_issuer: leaf(&stranger, &here, false),
        }
    }

    /// A client connector that trusts only this PKI's CA.
    pub(crate) fn connector(&self) -> Connector {
        let tls = ClientTls::new()
            .add_root_certificates_pem(self.ca.as_bytes())
            .expect("CA PEM")
            .only_added_roots()
            .build()
            .expect("client TLS");
        Connector::new().tls(tls).connect_timeout(Duration::from_secs(5))
    }
}

/// What the `/llm` route saw, one entry per request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Seen {
    pub(crate) method: String,
    pub(crate) content_type: Option<String>,
    pub(crate) authorization: Option<String>,
    pub(crate) last_event_id: Option<String>,
    pub(crate) body: String,
}

/// The routes every TLS test uses:
///
/// - `/events`: `id: 1 data: hello`, `event: error data: in-band`, then
///   holds the stream open;
/// - `POST /llm`: records the request, streams two tokens with ids, ends;
/// - `/gone`: 204; `/fail`: 503 with a JSON body; `/plain`: 200 text/plain.
pub(crate) fn router(seen: Arc<Mutex<Vec<Seen>>>) -> Router<Arc<Mutex<Vec<Seen>>>> {
    Router::with_state(seen)
        .get("/events", |ctx: Ctx<Arc<Mutex<Vec<Seen>>>>| async move {
            let sse = ctx.sse();
            sse.send(Event::new("hello").id(1u64)).await?;
            sse.send(Event::new("in-band").event("error")).await?;
            futures_lite::future::pending::<()>().await;
            Ok::<(), sse_io::SendError>(())
        })
        .post("/llm", |ctx: Ctx<Arc<Mutex<Vec<Seen>>>>| async move {
            let seen = Seen {
                method: ctx.method().to_owned(),
                content_type: ctx.header("content-type").map(str::to_owned),
                authorization: ctx.header("authorization").map(str::to_owned),
                last_event_id: ctx.last_event_id().map(str::to_owned),
                body: String::from_utf8_lossy(ctx.body()).into_owned(),
            };
            let round = {
                let mut all = ctx.state().lock().unwrap();
                all.push(seen);
                all.len()
            };
            let sse = ctx.sse();
            for token in ["Hel", "lo"] {
                sse.send(Event::new(format!("{token}{round}")).id(format!("r{round}-{token}"))).await?;
            }
            Ok::<(), sse_io::SendError>(())
        })
        .get("/gone", |_ctx: Ctx<Arc<Mutex<Vec<Seen>>>>| async { Response::new(204) })
        .get("/fail", |_ctx: Ctx<Arc<Mutex<Vec<Seen>>>>| async {
            Response::new(503).header("Content-Type", "application/json").text("{\"error\":\"overloaded\"}")
        })
        .get("/plain", |_ctx: Ctx<Arc<Mutex<Vec<Seen>>>>| async { Response::ok_text("not a stream") })
        .stream_config(StreamConfig::default().retry(Duration::from_millis(20)))
}

/// A TLS server of [`router`] with `identity` on 127.0.0.1, port chosen by
/// the system; runs until the shutdown handle is triggered.
pub(crate) async fn start<R: Runtime>(
    rt: &R,
    identity: &Identity,
) -> (SocketAddr, Shutdown, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let tls = ServerTls::from_pem(identity.chain.as_bytes(), identity.key.as_bytes()).expect("server TLS");
    let server = Server::builder(rt.clone()).router(router(seen.clone())).tls(tls).build().expect("routes");
    let bound = server.bind("127.0.0.1:0".parse().unwrap()).await.expect("bind");
    let (addr, shutdown) = (bound.local_addr(), bound.shutdown_handle());
    rt.spawn(Box::pin(async move {
        let _ = bound.run().await;
    }));
    (addr, shutdown, seen)
}

/// The next event, within [`STEP`].
async fn next<R: Runtime>(rt: &R, source: &mut EventSource<R>) -> Option<ClientEvent> {
    timeout(rt, STEP, source.next()).await.expect("an event within the time allowed")
}

/// The fatal error a client stops with (it must come first: no retry).
async fn fatal<R: Runtime>(rt: &R, source: &mut EventSource<R>) -> ErrorCause {
    match next(rt, source).await.expect("an error before the end") {
        ClientEvent::Error { ready_state: ReadyState::Closed, cause } => {
            assert_eq!(next(rt, source).await, None, "the stream ends after a fatal error");
            cause
        }
        ClientEvent::Error { cause, .. } => panic!("retried instead of stopping: {cause}"),
        other => panic!("unexpected {other:?}"),
    }
}

pub(crate) async fn a_good_chain_streams_over_https_and_every_address_is_tried<R: Runtime>(rt: R) {
    let pki = Pki::new();
    let (addr, shutdown, _) = start(&rt, &pki.good).await;
    // `localhost` is resolved off the executor, and each of its addresses
    // tried in turn (where it has ::1 too, that one is refused: the server
    // listens on 127.0.0.1 only).
    let url = format!("https://localhost:{}/events", addr.port());
    let mut source =
        EventSource::with_connector(rt.clone(), ClientConfig::new(&url).unwrap(), pki.connector())
            .expect("config");
    assert_eq!(next(&rt, &mut source).await, Some(ClientEvent::Open));
    let Some(ClientEvent::Message(m)) = next(&rt, &mut source).await else { panic!("a message") };
    assert_eq!((m.data(), m.last_event_id()), ("hello", "1"));
    // An in-band `event: error` is an ordinary event.
    let Some(ClientEvent::Message(m)) = next(&rt, &mut source).await else { panic!("a message") };
    assert_eq!((m.event_type(), m.data()), ("error", "in-band"));
    assert_eq!(source.ready_state(), ReadyState::Open);
    // An IP address is checked against the certificate's IP SAN.
    let url = format!("https://127.0.0.1:{}/events", addr.port());
    let mut by_ip =
        EventSource::with_connector(rt.clone(), ClientConfig::new(&url).unwrap(), pki.connector())
            .expect("config");
    assert_eq!(next(&rt, &mut by_ip).await, Some(ClientEvent::Open));
    source.close();
    by_ip.close();
    shutdown.trigger();
}

async fn refused_certificate<R: Runtime>(rt: R, identity: fn(&Pki) -> &Identity, expect: &[&str]) {
    let pki = Pki::new();
    let (addr, shutdown, _) = start(&rt, identity(&pki)).await;
    let url = format!("https://localhost:{}/events", addr.port());
    let mut source =
        EventSource::with_connector(rt.clone(), ClientConfig::new(&url).unwrap(), pki.connector())
            .expect("config");
    let cause = fatal(&rt, &mut source).await;
    assert!(matches!(&cause, ErrorCause::Connect(ConnectError::Tls { .. })), "{cause:?}");
    assert!(cause.is_fatal());
    let text = cause.to_string().to_lowercase();
    assert!(expect.iter().any(|e| text.contains(e)), "{text:?} names none of {expect:?}");
    shutdown.trigger();
}

pub(crate) async fn an_unknown_issuer_stops_the_client_with_the_cause<R: Runtime>(rt: R) {
    refused_certificate(rt, |p| &p.unknown_issuer, &["unknownissuer", "unknown issuer"]).await;
}

pub(crate) async fn a_certificate_for_another_name_stops_the_client<R: Runtime>(rt: R) {
    refused_certificate(rt, |p| &p.wrong_name, &["not valid for name", "notvalidforname"]).await;
}

pub(crate) async fn an_expired_certificate_stops_the_client<R: Runtime>(rt: R) {
    refused_certificate(rt, |p| &p.expired, &["expired"]).await;
}

pub(crate) async fn an_llm_style_post_is_resent_with_its_body_on_reconnection<R: Runtime>(rt: R) {
    let pki = Pki::new();
    let (addr, shutdown, seen) = start(&rt, &pki.good).await;
    let body = r#"{"model":"tiny","messages":[{"role":"user","content":"hi"}],"stream":true}"#;
    let config = ClientConfig::new(&format!("https://localhost:{}/llm", addr.port()))
        .unwrap()
        .method("POST")
        .header("Content-Type", "application/json")
        .header("Authorization", "Bearer sk-test")
        .body(body);
    let mut source = EventSource::with_connector(rt.clone(), config, pki.connector()).expect("config");
    let mut data = Vec::new();
    let mut ends = 0;
    while data.len() < 4 {
        match next(&rt, &mut source).await.expect("still open") {
            ClientEvent::Message(m) => data.push(m.data().to_owned()),
            ClientEvent::Ended { .. } => ends += 1,
            ClientEvent::Open => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(data, ["Hel1", "lo1", "Hel2", "lo2"]);
    assert_eq!(ends, 1, "the server's end of a stream is not an error");
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() >= 2);
    for (i, request) in seen.iter().take(2).enumerate() {
        assert_eq!(request.method, "POST");
        assert_eq!(request.body, body, "request {i} carries the body");
        assert_eq!(request.content_type.as_deref(), Some("application/json"));
        assert_eq!(request.authorization.as_deref(), Some("Bearer sk-test"));
    }
    assert_eq!(seen[0].last_event_id, None);
    assert_eq!(seen[1].last_event_id.as_deref(), Some("r1-lo"), "resumed with Last-Event-ID");
    source.close();
    shutdown.trigger();
}

pub(crate) async fn refusals_over_https_surface_status_body_and_content_type<R: Runtime>(rt: R) {
    let pki = Pki::new();
    let (addr, shutdown, _) = start(&rt, &pki.good).await;
    let open = |path: &str| {
        let config = ClientConfig::new(&format!("https://localhost:{}{path}", addr.port())).unwrap();
        EventSource::with_connector(rt.clone(), config, pki.connector()).expect("config")
    };
    let cause = fatal(&rt, &mut open("/fail")).await;
    let ErrorCause::Status { status: 503, body, .. } = &cause else { panic!("{cause:?}") };
    assert_eq!(body, "{\"error\":\"overloaded\"}");
    assert!(matches!(fatal(&rt, &mut open("/gone")).await, ErrorCause::Status { status: 204, .. }));
    let cause = fatal(&rt, &mut open("/plain")).await;
    assert!(
        matches!(&cause, ErrorCause::ContentType { content_type: Some(t), body } if t.starts_with("text/plain") && body == "not a stream"),
        "{cause:?}"
    );
    shutdown.trigger();
}

pub(crate) async fn restart_reconnects_over_tls_with_the_last_event_id<R: Runtime>(rt: R) {
    let pki = Pki::new();
    let (addr, shutdown, _) = start(&rt, &pki.good).await;
    let url = format!("https://localhost:{}/events", addr.port());
    let config = ClientConfig::new(&url).unwrap().comments(true);
    let mut source = EventSource::with_connector(rt.clone(), config, pki.connector()).expect("config");
    let mut opens = 0;
    let mut messages = 0;
    while messages < 2 {
        match next(&rt, &mut source).await.expect("open") {
            ClientEvent::Open => opens += 1,
            ClientEvent::Message(_) => messages += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    source.restart();
    assert_eq!(next(&rt, &mut source).await, Some(ClientEvent::Open), "a new stream at once");
    opens += 1;
    let Some(ClientEvent::Message(m)) = next(&rt, &mut source).await else { panic!("a message") };
    assert_eq!(m.last_event_id(), "1");
    assert_eq!(opens, 2);
    source.close();
    source.restart();
    assert_eq!(source.next().await, None, "close is final");
    shutdown.trigger();
}

/// Instantiates every test above for one runtime.
#[macro_export]
macro_rules! tls_suite {
    ($rt:expr, $block_on:path) => {
        $crate::tls_suite!(@tests $rt, $block_on,
            a_good_chain_streams_over_https_and_every_address_is_tried,
            an_unknown_issuer_stops_the_client_with_the_cause,
            a_certificate_for_another_name_stops_the_client,
            an_expired_certificate_stops_the_client,
            an_llm_style_post_is_resent_with_its_body_on_reconnection,
            refusals_over_https_surface_status_body_and_content_type,
            restart_reconnects_over_tls_with_the_last_event_id
        );
    };
    (@tests $rt:expr, $block_on:path, $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                $block_on(Box::pin(tls::$name($rt)));
            }
        )*
    };
}
