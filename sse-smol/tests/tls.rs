//! TLS on loopback on smol: the shared TLS suite
//! (sse-io/tests-shared/tls.rs), then `sse-cat` end to end against
//! in-test servers, HTTPS and plain. Certificates are made by the test.

#[path = "../../sse-io/tests-shared/tls.rs"]
mod tls;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sse_smol::{Broadcast, Ctx, Event, Response, Router, Server, Shutdown, Smol};
use tls::Pki;

tls_suite!(Smol, smol::block_on);

/// The `sse-cat` example built beside this test (`cargo test` builds the
/// examples), if it is there.
fn sse_cat() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?.parent()?.join("examples");
    let path = dir.join(format!("sse-cat{}", std::env::consts::EXE_SUFFIX));
    if path.exists() {
        return Some(path);
    }
    let message = format!("sse-cat not built at {} (run `cargo test -p sse-smol`)", path.display());
    if std::env::var_os("SSE_REQUIRE_EXTERNAL").is_some() {
        panic!("{message}");
    }
    eprintln!("skipping: {message}");
    None
}

/// How a run of sse-cat ended.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Runs sse-cat with `args`, killed if it runs past `limit`.
fn run_sse_cat(args: &[&str], limit: Duration) -> Option<Run> {
    let path = sse_cat()?;
    let started = Instant::now();
    let mut child = Command::new(path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sse-cat starts");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        // A child process has no fake clock: poll its exit.
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let run = Run { code: status.and_then(|s| s.code()), stdout, stderr, took: started.elapsed() };
    assert!(status.is_some(), "sse-cat still running after {limit:?}\nstderr: {}", run.stderr);
    Some(run)
}

/// A TLS server of the shared routes, its CA written to a file for
/// `--cacert`.
fn https_server(pki: &Pki, identity: &tls::Identity) -> (u16, Shutdown, PathBuf) {
    let (addr, shutdown, _) = smol::block_on(tls::start(&Smol, identity));
    let ca = std::env::temp_dir().join(format!("sse-cat-ca-{}-{}.pem", std::process::id(), addr.port()));
    std::fs::write(&ca, &pki.ca).unwrap();
    (addr.port(), shutdown, ca)
}

#[test]
fn sse_cat_prints_json_lines_and_stops_after_max_events() {
    let pki = Pki::new();
    let (port, shutdown, ca) = https_server(&pki, &pki.good);
    let url = format!("https://localhost:{port}/events");
    let Some(run) =
        run_sse_cat(&[&url, "--cacert", ca.to_str().unwrap(), "--max-events", "2"], Duration::from_secs(30))
    else {
        return;
    };
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(
        run.stdout,
        "{\"type\": \"message\", \"data\": \"hello\", \"id\": \"1\"}\n{\"type\": \"error\", \"data\": \"in-band\", \"id\": \"1\"}\n"
    );
    assert!(run.stderr.contains("connected"), "{}", run.stderr);
    shutdown.trigger();
}

#[test]
fn sse_cat_resends_a_post_body_and_resumes() {
    let pki = Pki::new();
    let (port, shutdown, ca) = https_server(&pki, &pki.good);
    let url = format!("https://localhost:{port}/llm");
    let args = [
        url.as_str(),
        "--cacert",
        ca.to_str().unwrap(),
        "-H",
        "Content-Type: application/json",
        "-H",
        "Authorization: Bearer sk-test",
        "-d",
        "{\"prompt\":\"hi\"}",
        "--max-events",
        "4",
    ];
    let Some(run) = run_sse_cat(&args, Duration::from_secs(30)) else { return };
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let lines: Vec<serde_json::Value> =
        run.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let data: Vec<&str> = lines.iter().map(|l| l["data"].as_str().unwrap()).collect();
    assert_eq!(data, ["Hel1", "lo1", "Hel2", "lo2"]);
    assert_eq!(lines[3]["id"], "r2-lo");
    assert!(run.stderr.contains("ended"), "{}", run.stderr);
    shutdown.trigger();
}

#[test]
fn sse_cat_exits_0_on_204_and_1_with_the_cause_on_refusals() {
    let pki = Pki::new();
    let (port, shutdown, ca) = https_server(&pki, &pki.good);
    let ca = ca.to_str().unwrap().to_owned();
    let limit = Duration::from_secs(15);
    let url = |path: &str| format!("https://localhost:{port}{path}");
    let Some(gone) = run_sse_cat(&[&url("/gone"), "--cacert", &ca], limit) else { return };
    assert_eq!(gone.code, Some(0), "{}", gone.stderr);
    assert!(gone.stdout.is_empty());

    let fail = run_sse_cat(&[&url("/fail"), "--cacert", &ca], limit).unwrap();
    assert_eq!(fail.code, Some(1));
    assert!(
        fail.stderr.contains("503") && fail.stderr.contains("{\"error\":\"overloaded\"}"),
        "{}",
        fail.stderr
    );
    assert!(fail.took < Duration::from_secs(10), "took {:?}", fail.took);

    let plain = run_sse_cat(&[&url("/plain"), "--cacert", &ca], limit).unwrap();
    assert_eq!(plain.code, Some(1));
    assert!(plain.stderr.contains("text/plain"), "{}", plain.stderr);

    // Without --cacert, the test CA is unknown: the built-in roots do not have it.
    let untrusted = run_sse_cat(&[&url("/events")], limit).unwrap();
    assert_eq!(untrusted.code, Some(1));
    assert!(untrusted.stderr.to_lowercase().contains("unknownissuer"), "{}", untrusted.stderr);
    shutdown.trigger();
}

#[test]
fn sse_cat_reports_wrong_names_and_expired_certificates() {
    let pki = Pki::new();
    for (identity, expect) in [(&pki.wrong_name, "not valid for name"), (&pki.expired, "expired")] {
        let (port, shutdown, ca) = https_server(&pki, identity);
        let url = format!("https://localhost:{port}/events");
        let Some(run) = run_sse_cat(&[&url, "--cacert", ca.to_str().unwrap()], Duration::from_secs(15))
        else {
            return;
        };
        assert_eq!(run.code, Some(1));
        assert!(run.stderr.to_lowercase().contains(expect), "{expect}: {}", run.stderr);
        assert!(run.took < Duration::from_secs(10), "took {:?}", run.took);
        shutdown.trigger();
    }
}

#[test]
fn sse_cat_follows_a_plain_http_feed_with_last_event_id() {
    // The `feed` example's shape: a broadcast with replay after Last-Event-ID.
    let feed = Broadcast::default();
    for i in 1..=5 {
        feed.publish(Event::new(format!("e{i}"))).unwrap();
    }
    let router = Router::with_state(feed.clone()).get("/events/feed", |ctx: Ctx<Broadcast>| async move {
        let subscription = ctx.state().subscribe(ctx.last_event_id());
        ctx.sse().forward(subscription).await.map_err(Response::from)
    });
    let bound = smol::block_on(async {
        Server::builder(Smol)
            .router(router)
            .build()
            .unwrap()
            .bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap()
    });
    let (addr, shutdown) = (bound.local_addr(), bound.shutdown_handle());
    std::thread::spawn(move || smol::block_on(bound.run()));
    let url = format!("http://{addr}/events/feed");
    let Some(run) =
        run_sse_cat(&[&url, "--last-event-id", "3", "--max-events", "2"], Duration::from_secs(30))
    else {
        return;
    };
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let data: Vec<String> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["data"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(data, ["e4", "e5"]);
    shutdown.trigger();
}
