//! `oxchain devnet`: a local network of N node processes on the dev network, wired
//! together and mining, with a live status line per node. Ctrl-C (or SIGTERM) stops
//! every node cleanly. With `--dir` the network is kept and can be restarted; without
//! it, a temporary one is removed on exit.

use std::io::{IsTerminal, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use oxchain_miner::MiningMode;

/// Options of `oxchain devnet`.
#[derive(Debug, Args)]
pub(crate) struct DevnetArgs {
    /// How many nodes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=32))]
    nodes: u16,
    /// Node i serves its API on 127.0.0.1:(P+i) and p2p on 127.0.0.1:(P+1000+i).
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u16).range(1024..=60000))]
    base_port: u16,
    /// Keep the network here (restart it with the same --dir); default: a temporary
    /// directory, removed on exit.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// How the nodes mine: off, on-demand (GET /mine), continuous, or pool:N (when N
    /// transfers wait).
    #[arg(long, value_name = "MODE", default_value = "continuous")]
    mine: MiningMode,
}

/// Each node's output (its logs), in its data directory.
const LOG_FILE: &str = "node.log";

struct Node {
    index: u16,
    api: String,
    dir: PathBuf,
    child: Child,
}

fn get(addr: &str, path: &str) -> Option<serde_json::Value> {
    let mut stream =
        TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let (_, body) = text.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}

pub(crate) fn run(args: DevnetArgs) -> anyhow::Result<()> {
    let (root, temporary) = match &args.dir {
        Some(dir) => (dir.clone(), false),
        None => {
            let dir = std::env::temp_dir().join(format!("oxchain-devnet-{}", std::process::id()));
            (dir, true)
        }
    };
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let last = u32::from(args.base_port) + 1000 + u32::from(args.nodes);
    if last > 65535 {
        bail!(
            "--base-port {} leaves no room for {} nodes' p2p ports",
            args.base_port,
            args.nodes
        );
    }
    let exe = std::env::current_exe().context("finding the oxchain binary")?;
    let mut nodes = Vec::new();
    let started = (|| -> anyhow::Result<()> {
        for i in 0..args.nodes {
            let api = format!("127.0.0.1:{}", args.base_port + i);
            let p2p = format!("127.0.0.1:{}", args.base_port + 1000 + i);
            let dir = root.join(format!("node-{i}"));
            std::fs::create_dir_all(&dir)?;
            let log = std::fs::File::create(dir.join(LOG_FILE))?;
            let mut command = Command::new(&exe);
            command
                .args([
                    "node",
                    "--network",
                    "dev",
                    "--api",
                    &api,
                    "--p2p",
                    &p2p,
                    "--threads",
                    "1",
                ])
                .args(["--name", &format!("node-{i}")])
                .args(["--mine", &args.mine.to_string(), "--data-dir"])
                .arg(&dir);
            for j in 0..i {
                command.args([
                    "--peer",
                    &format!("127.0.0.1:{}", args.base_port + 1000 + j),
                ]);
            }
            let child = command
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("starting node {i}"))?;
            nodes.push(Node {
                index: i,
                api,
                dir,
                child,
            });
        }
        Ok(())
    })();
    let stop = stop_flag()?;
    let result = started.and_then(|()| watch(&mut nodes, &root, temporary, &stop));
    stop_all(&mut nodes);
    if temporary && result.is_ok() {
        let _ = std::fs::remove_dir_all(&root);
    } else if temporary {
        println!(
            "the network's data and logs are kept in {} to look into",
            root.display()
        );
    } else {
        println!(
            "the network is kept in {}: `oxchain devnet --dir {}` restarts it",
            root.display(),
            root.display()
        );
    }
    result
}

/// Set by SIGINT or SIGTERM.
pub(crate) fn stop_flag() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [libc::SIGINT, libc::SIGTERM] {
        signal_hook_flag(signal, flag.clone())?;
    }
    Ok(flag)
}

fn signal_hook_flag(
    signal: i32,
    flag: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<()> {
    // A tokio runtime would do; a thread waiting on a signal stream is all this needs.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let kind = tokio::signal::unix::SignalKind::from_raw(signal);
            if let Ok(mut stream) = tokio::signal::unix::signal(kind) {
                stream.recv().await;
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        });
    });
    Ok(())
}

fn watch(
    nodes: &mut [Node],
    root: &Path,
    temporary: bool,
    stop: &std::sync::atomic::AtomicBool,
) -> anyhow::Result<()> {
    let tty = std::io::stdout().is_terminal();
    println!(
        "oxchain devnet: {} nodes on the dev network, in {}",
        nodes.len(),
        root.display()
    );
    println!("{:<6} {:<24} {:<24} data dir", "node", "API", "p2p");
    for n in nodes.iter() {
        let p2p_port: u16 = n
            .api
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
            + 1000;
        println!(
            "{:<6} http://{:<17} 127.0.0.1:{:<14} {}",
            n.index,
            n.api,
            p2p_port,
            n.dir.display()
        );
    }
    println!(
        "logs: {} (node 0; the others likewise){}",
        nodes[0].dir.join(LOG_FILE).display(),
        if temporary {
            ", deleted at the end unless a node fails: --dir DIR keeps them"
        } else {
            ""
        }
    );
    println!("explorer: http://{}/explorer/", nodes[0].api);
    println!(
        "API docs: http://{}/docs   events: ws://{}/v1/events",
        nodes[0].api, nodes[0].api
    );
    println!("Ctrl-C stops every node.");
    let mut printed = 0;
    let mut last_plain = Instant::now() - Duration::from_secs(10);
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        for n in nodes.iter_mut() {
            if let Some(status) = n.child.try_wait()? {
                bail!(
                    "node {} exited ({status}); see {}",
                    n.index,
                    n.dir.join(LOG_FILE).display()
                );
            }
        }
        let lines: Vec<String> = nodes
            .iter()
            .map(|n| match get(&n.api, "/v1/status") {
                Some(s) => format!(
                    "node {:<3} height {:<7} peers {:<3} hash rate {:>7.2} MH/s  mempool {:<5}{}",
                    n.index,
                    s["height"],
                    s["peers"],
                    s["mining"]["hashes_per_s"].as_f64().unwrap_or(0.0) / 1e6,
                    s["mempool"],
                    crate::query::sync_note(&s)
                ),
                None => format!("node {:<3} starting ...", n.index),
            })
            .collect();
        if tty {
            if printed > 0 {
                print!("\x1b[{printed}A");
            }
            for line in &lines {
                println!("\x1b[2K{line}");
            }
            printed = lines.len();
        } else if last_plain.elapsed() >= Duration::from_secs(5) {
            for line in &lines {
                println!("{line}");
            }
            last_plain = Instant::now();
        }
        std::io::stdout().flush()?;
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}

/// SIGINT to every node (a clean stop), then up to 15 s to finish; SIGKILL after that.
fn stop_all(nodes: &mut [Node]) {
    println!("stopping {} nodes ...", nodes.len());
    for n in nodes.iter() {
        if let Ok(pid) = i32::try_from(n.child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGINT);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    for n in nodes.iter_mut() {
        loop {
            match n.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    eprintln!("node {} did not stop in time: killing it", n.index);
                    let _ = n.child.kill();
                    let _ = n.child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
    println!("all nodes stopped");
}
