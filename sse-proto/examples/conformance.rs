//! Runs conformance case files against sse-proto.
//!
//! ```text
//! cargo run -p sse-proto --example conformance -- FILE.json...
//! ```
//!
//! Prints one line per failing case and a final `N passed, M failed` (with
//! `, K skipped` when a case kind is not handled); exits non-zero on any
//! failure or unreadable file.

#[path = "../tests/support/conformance.rs"]
mod conformance;

use conformance::Outcome;
use std::process::ExitCode;

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: conformance FILE.json...");
        return ExitCode::from(2);
    }
    let (mut passed, mut failed, mut skipped) = (0usize, 0usize, 0usize);
    for file in &files {
        let cases = match conformance::load(std::path::Path::new(file)) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        for case in &cases {
            match conformance::run_case(case) {
                Outcome::Pass => passed += 1,
                Outcome::Fail(why) => {
                    failed += 1;
                    println!("FAIL {} ({}): {why}", case.name, case.kind);
                }
                Outcome::Skip(why) => {
                    skipped += 1;
                    println!("SKIP {} ({}): {why}", case.name, case.kind);
                }
            }
        }
    }
    if skipped > 0 {
        println!("{passed} passed, {failed} failed, {skipped} skipped");
    } else {
        println!("{passed} passed, {failed} failed");
    }
    if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
