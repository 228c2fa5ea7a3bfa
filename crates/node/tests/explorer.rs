//! The block explorer in a real browser: Debian's Chromium, driven by Playwright
//! (`ui/tests/explorer.mjs`), against a real regtest node. The script prints a line per
//! check; this test passes only if the script exits 0. Screenshots of every page at
//! desktop and phone width go to `$OXCHAIN_SCREENSHOTS` (default: the temp dir's
//! `oxchain-explorer-screenshots`).
//!
//! It needs Node.js, `/usr/bin/chromium` and `ui/tests/node_modules`: `scripts/test`
//! (the README's test command) installs them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TestNode;
use oxchain_miner::MiningMode;

/// The script bounds each step; this bounds the whole.
const DEADLINE: Duration = Duration::from_secs(110);

fn ui_tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/tests")
}

/// What is missing to run the browser, with how to get it.
fn missing_parts(dir: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    if Command::new("node").arg("--version").output().is_err() {
        missing.push("Node.js (`node`)".to_string());
    }
    if !Path::new("/usr/bin/chromium").exists() {
        missing.push("/usr/bin/chromium (apt-get install chromium)".to_string());
    }
    if !dir.join("node_modules/playwright-core").is_dir() {
        missing.push(format!(
            "{}/node_modules (npm ci --prefix ui/tests)",
            dir.display()
        ));
    }
    missing
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_works_in_chromium_against_a_regtest_node() {
    let dir = ui_tests_dir();
    let missing = missing_parts(&dir);
    assert!(
        missing.is_empty(),
        "the browser test needs {}; scripts/test installs them",
        missing.join(", ")
    );
    let screenshots = std::env::var_os("OXCHAIN_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("oxchain-explorer-screenshots"));
    let node = TestNode::start(MiningMode::OnDemand).await;
    let url = format!("http://{}", node.addr);
    let (code, output) = tokio::task::spawn_blocking(move || {
        let mut child = Command::new("node")
            .arg("explorer.mjs")
            .current_dir(&dir)
            .env("OXCHAIN_URL", &url)
            .env("SCREENSHOTS", &screenshots)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node starts");
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let out = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        });
        let err = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if started.elapsed() > DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let output = format!(
            "{}{}\nscreenshots: {}",
            out.join().unwrap(),
            err.join().unwrap(),
            screenshots.display()
        );
        (status.and_then(|s| s.code()), output)
    })
    .await
    .unwrap();
    println!("{output}");
    node.stop().await;
    assert_eq!(
        code,
        Some(0),
        "the browser checks failed (None: killed after {DEADLINE:?}):\n{output}"
    );
}
