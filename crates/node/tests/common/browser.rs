//! Browser tests: a Playwright script of `ui/tests` run by Node.js against a node, in
//! Debian's Chromium. `scripts/test` (the README's test command) installs all three.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ui_tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/tests")
}

/// Fails the test, naming what is missing to run the browser and how to get it.
pub(crate) fn assert_installed() {
    let dir = ui_tests_dir();
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
    assert!(
        missing.is_empty(),
        "the browser test needs {}; scripts/test installs them",
        missing.join(", ")
    );
}

/// Runs `node SCRIPT` in `ui/tests` with `env`, killed after `deadline`; returns its
/// exit code (`None`: killed) and its output.
pub(crate) async fn run_script(
    script: &str,
    env: &[(&str, String)],
    deadline: Duration,
) -> (Option<i32>, String) {
    let mut command = Command::new("node");
    command
        .arg(script)
        .current_dir(ui_tests_dir())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().expect("node starts");
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
            if started.elapsed() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let output = format!("{}{}", out.join().unwrap(), err.join().unwrap());
        (status.and_then(|s| s.code()), output)
    })
    .await
    .unwrap()
}
