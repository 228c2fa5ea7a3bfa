//! A real `oxchain node` process for the CLI tests: started from the built binary, its
//! start-up lines read, stopped with SIGINT.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn get(addr: &str, path: &str) -> String {
    // A minimal HTTP/1.0 GET: the test needs nothing more.
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}

/// A running `oxchain node`: the process, its start-up lines and its API address.
pub(crate) struct Node {
    pub(crate) child: Child,
    pub(crate) banner: String,
    pub(crate) addr: String,
    /// Its stderr, read as it comes so that logs never fill the pipe.
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Node {
    /// Starts `oxchain node ARGS` with `env` and reads its start-up lines.
    pub(crate) fn start(args: &[&str], env: &[(&str, &str)]) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_oxchain"))
            .arg("node")
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut err, &mut text);
            text
        });
        let mut banner = String::new();
        let mut addr = None;
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            banner.push_str(&line);
            banner.push('\n');
            if let Some(rest) = line.trim().strip_prefix("API") {
                addr = Some(rest.trim().trim_start_matches("http://").to_string());
            }
            if line.starts_with("Ctrl-C") {
                break;
            }
        }
        let addr = addr.unwrap_or_else(|| panic!("no API line in:\n{banner}"));
        Node {
            child,
            banner,
            addr,
            stderr: Some(stderr),
        }
    }

    /// SIGINT, as Ctrl-C sends; waits up to 10 s for the node to stop. Returns whether
    /// it exited cleanly, and its stderr.
    pub(crate) fn interrupt(mut self) -> (bool, String) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "the node did not stop within 10 s of SIGINT:\n{}",
                    self.banner
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = self
            .stderr
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default();
        (status.success(), stderr)
    }
}

/// A regtest node on loopback ports of its own, with these flags added.
pub(crate) fn start_node(dir: &std::path::Path, extra: &[&str]) -> Node {
    let dir = dir.to_str().unwrap();
    let mut args = vec![
        "--network",
        "regtest",
        "--api",
        "127.0.0.1:0",
        "--p2p",
        "127.0.0.1:0",
        "--threads",
        "1",
        "--data-dir",
        dir,
    ];
    args.extend(extra);
    Node::start(&args, &[])
}

/// A test that fails midway leaves no node running.
impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
