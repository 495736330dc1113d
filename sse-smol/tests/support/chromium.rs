//! Headless Chromium for the browser tests: finding it (or skipping when it
//! is missing, unless `SSE_REQUIRE_EXTERNAL` is set, as in CI), starting it
//! on a page, and killing it when the test ends.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The Chromium executable on the PATH. `None` means the test should return
/// (a notice is printed); when `SSE_REQUIRE_EXTERNAL` is set a missing
/// browser panics instead, so CI never skips silently.
pub(crate) fn find_or_skip(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
            std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| candidate.is_file())
        })
    });
    if found.is_none() {
        if std::env::var_os("SSE_REQUIRE_EXTERNAL").is_some() {
            panic!("Chromium is required (SSE_REQUIRE_EXTERNAL is set) but was not found on the PATH");
        }
        eprintln!("NOTICE: skipping {test}: no chromium on the PATH (apt-get install chromium)");
    }
    found
}

/// A headless Chromium this test started; killed, and its profile removed,
/// when dropped.
pub(crate) struct Browser(Child, PathBuf);

impl Browser {
    /// Starts `chromium` headless on `http://{addr}/`, with a fresh profile.
    pub(crate) fn open(chromium: &PathBuf, addr: SocketAddr, tag: &str) -> Browser {
        let profile = std::env::temp_dir().join(format!("sse-{tag}-{}-{}", std::process::id(), addr.port()));
        let child = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("http://{addr}/"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium starts");
        Browser(child, profile)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}
