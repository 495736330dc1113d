//! The web-platform-tests `eventsource/` vectors (tests/data/wpt_cases.json):
//! every `parser` case, as delivered, whole, byte by byte and split in two at
//! every point; every `client` case through the EventSource connection model
//! on a fake clock; all through the same runner as the `conformance` example.

mod support;

use support::conformance::{self, Outcome};

fn cases() -> Vec<conformance::Case> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/wpt_cases.json");
    conformance::load(&path).expect("the conformance file parses")
}

#[test]
fn the_file_holds_the_whole_suite() {
    let cases = cases();
    assert_eq!(cases.len(), 52);
    assert_eq!(cases.iter().filter(|c| c.kind == "parser").count(), 31);
    assert_eq!(cases.iter().filter(|c| c.kind == "client").count(), 21);
}

#[test]
fn every_parser_case_passes_under_every_split() {
    let mut failures = Vec::new();
    let mut passed = 0;
    for case in cases().iter().filter(|c| c.kind == "parser") {
        match conformance::run_case(case) {
            Outcome::Pass => passed += 1,
            Outcome::Fail(why) => failures.push(format!("{}: {why}", case.name)),
            Outcome::Skip(why) => failures.push(format!("{}: skipped: {why}", case.name)),
        }
    }
    assert!(failures.is_empty(), "failing cases:\n{}", failures.join("\n"));
    assert_eq!(passed, 31);
}

#[test]
fn every_client_case_passes() {
    let mut failures = Vec::new();
    let mut passed = 0;
    for case in cases().iter().filter(|c| c.kind == "client") {
        match conformance::run_case(case) {
            Outcome::Pass => passed += 1,
            Outcome::Fail(why) => failures.push(format!("{}: {why}", case.name)),
            Outcome::Skip(why) => failures.push(format!("{}: skipped: {why}", case.name)),
        }
    }
    assert!(failures.is_empty(), "failing cases:\n{}", failures.join("\n"));
    assert_eq!(passed, 21);
}

#[test]
fn the_client_runner_catches_wrong_expectations() {
    let all = cases();
    let case = all.iter().find(|c| c.name == "format-field-id").expect("case exists");
    let mut wrong_header = case.clone();
    wrong_header.reconnects[0].expect_last_event_id_header = None;
    assert!(matches!(conformance::run_case(&wrong_header), Outcome::Fail(_)));
    let mut wrong_retry = case.clone();
    wrong_retry.expected_final.reconnection_time_ms = Some(Some(201));
    assert!(matches!(conformance::run_case(&wrong_retry), Outcome::Fail(_)));
    let closed = all.iter().find(|c| c.name == "request-status-error/204").expect("case exists");
    let mut not_closed = closed.clone();
    not_closed.expected_final.ready_state = Some("OPEN".into());
    assert!(matches!(conformance::run_case(&not_closed), Outcome::Fail(_)));
}

#[test]
fn the_runner_catches_a_wrong_expectation() {
    // A runner that cannot fail proves nothing: corrupt one case and make sure
    // it is reported.
    let mut case = cases().into_iter().find(|c| c.name == "format-field-event").expect("case exists");
    case.expected[0].data.push('!');
    assert!(matches!(conformance::run_case(&case), Outcome::Fail(_)));
}

#[test]
fn the_naive_reference_agrees_with_every_parser_case() {
    // The reference decoder is itself checked against the vectors before it is
    // trusted as the oracle of the differential tests.
    for case in cases().iter().filter(|c| c.kind == "parser") {
        let run = support::naive::decode(&case.chunks.concat());
        let got: Vec<_> = run.events.iter().map(|(t, d, id)| (t.as_str(), d.as_str(), id.as_str())).collect();
        let want: Vec<_> = case
            .expected
            .iter()
            .map(|e| (e.event_type.as_str(), e.data.as_str(), e.last_event_id.as_str()))
            .collect();
        assert_eq!(got, want, "{}", case.name);
    }
}

#[test]
fn base64_chunks_decode() {
    assert_eq!(conformance::base64_decode("ZGF0YTog/wo=").unwrap(), b"data: \xff\n");
    assert!(conformance::base64_decode("@@").is_err());
}
