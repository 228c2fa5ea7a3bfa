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

use std::path::PathBuf;
use std::time::Duration;

use common::{TestNode, browser};
use oxchain_miner::MiningMode;

/// The script bounds each step; this bounds the whole.
const DEADLINE: Duration = Duration::from_secs(110);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_works_in_chromium_against_a_regtest_node() {
    browser::assert_installed();
    let screenshots = std::env::var_os("OXCHAIN_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("oxchain-explorer-screenshots"));
    let node = TestNode::start(MiningMode::OnDemand).await;
    let url = format!("http://{}", node.addr);
    let (code, output) = browser::run_script(
        "explorer.mjs",
        &[
            ("OXCHAIN_URL", url),
            ("SCREENSHOTS", screenshots.display().to_string()),
        ],
        DEADLINE,
    )
    .await;
    let output = format!("{output}\nscreenshots: {}", screenshots.display());
    println!("{output}");
    node.stop().await;
    assert_eq!(
        code,
        Some(0),
        "the browser checks failed (None: killed after {DEADLINE:?}):\n{output}"
    );
}
