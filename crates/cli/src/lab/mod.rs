//! `oxchain lab`: N real `oxchain node` processes, each in a network namespace of its own
//! on one bridge (`netns.rs`), each given only the first node as its bootstrap peer, and
//! a scenario (`scenarios.rs`) that drives and measures them from the bridge's namespace
//! (`observe.rs`), asking this thread when it wants a partition or a restart.
//! Every namespace and process it made is removed when it ends, also after Ctrl-C or a
//! failure; namespaces a killed lab left are removed by the next.

mod fill;
mod load;
mod netns;
mod observe;
mod report;
mod scenarios;

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use netns::LabNet;

/// The API and p2p ports every node uses on its own address.
const API_PORT: u16 = 5000;
const P2P_PORT: u16 = 26950;

/// What the lab measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Scenario {
    /// Blocks mined one at a time: each block's delay to 50%, 95% and 100% of the
    /// nodes.
    Propagation,
    /// `--blocks` blocks mined on a clock at `--miners` nodes: the share that ends off
    /// the best chain.
    Stale,
    /// Two halves mine apart for `--split-s`, then heal: the time until one tip and
    /// every transfer back.
    Partition,
    /// A tenth of the nodes restart every minute for `--rounds` minutes: the time until
    /// each is back at the tip.
    Churn,
}

/// Options of `oxchain lab`.
#[derive(Debug, Args)]
pub(crate) struct LabArgs {
    /// How many nodes.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u16).range(2..=250))]
    nodes: u16,
    /// What to measure.
    #[arg(long, value_enum, default_value_t = Scenario::Propagation)]
    scenario: Scenario,
    /// Blocks to mine (propagation and stale).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    blocks: u16,
    /// The mean time between blocks, in seconds, of the scenarios that mine on a clock
    /// (stale, partition, churn): gaps are exponential, as proof of work finds blocks.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=3_600))]
    interval_s: u16,
    /// How long the two halves mine apart (partition), in seconds.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u16).range(1..=3_600))]
    split_s: u16,
    /// Minutes of restarts (churn).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=600))]
    rounds: u16,
    /// Fill each block with about this many bytes of signed transfers (each carrying
    /// 1 KiB of data), gossiped to every node's mempool before the block is mined, and
    /// after each a 1 KiB reference block; 0 mines empty blocks (propagation).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    block_bytes: u32,
    /// Nodes that take turns mining (the first ones).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=250))]
    miners: u16,
    /// One-way delay of every link, in ms: each node holds what it sends to peers this
    /// long (ADR 0019: this kernel has no netem).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(0..=5_000))]
    latency_ms: u16,
    /// Each node's sending rate, in Mbit/s (a token bucket on its link).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    mbit: u32,
    /// Share of the packets each node sends to its peers that are lost, in percent
    /// (0 to 50; an nftables rule in the node's namespace; needs `nft`).
    #[arg(long, default_value_t = 0.0, value_parser = percent)]
    loss_pct: f64,
    /// Signed transfers sent per second, each to a random node, by the load generator
    /// of the scenarios that mine on a clock (stale, partition, churn).
    #[arg(long, default_value_t = 1.0, value_parser = tx_rate)]
    tx_rate: f64,
    /// Print the figures as JSON on the last line as well.
    #[arg(long)]
    json: bool,
}

/// A share in percent, 0 to 50.
fn percent(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=50.0).contains(&p) => Ok(p),
        _ => Err(format!(
            "{text:?} is not a share between 0 and 50 (percent)"
        )),
    }
}

/// Transfers per second, 0 to 100 (five senders take turns; faster puts a sender's
/// transfers on the wire ahead of each other).
fn tx_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if (0.0..=100.0).contains(&r) => Ok(r),
        _ => Err(format!(
            "{text:?} is not a rate between 0 and 100 (transfers/s)"
        )),
    }
}

/// Where the nodes keep their data: in memory (`/dev/shm`) where there is one, since a
/// hundred nodes sharing one disk would measure that disk's queue, not the network
/// (ADR 0028); the temporary directory otherwise.
pub(crate) fn data_root() -> PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    let base = if shm.is_dir() && !std::fs::metadata(shm).is_ok_and(|m| m.permissions().readonly())
    {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    base.join(format!("oxchain-lab-{}", std::process::id()))
}

struct LabNode {
    child: Child,
}

/// Runs the lab, and removes everything it made whatever happens.
pub(crate) fn run(args: LabArgs) -> anyhow::Result<()> {
    let stop = crate::devnet::stop_flag()?;
    let n = usize::from(args.nodes);
    let started = Instant::now();
    let (mut net, fallback) = LabNet::create(n, args.mbit);
    if let Some(why) = &fallback {
        println!(
            "network namespaces are not available here ({why}): running on loopback, without bandwidth caps"
        );
    } else {
        println!(
            "{n} nodes, each in a network namespace on one bridge, {} Mbit/s out each (set up in {:.1} s)",
            args.mbit,
            started.elapsed().as_secs_f64()
        );
    }
    if args.loss_pct > 0.0 {
        if let Err(e) = net.lose(args.loss_pct) {
            net.remove();
            return Err(e);
        }
        println!(
            "{}% of the packets each node sends to a peer are lost",
            args.loss_pct
        );
    }
    let root = data_root();
    let mut nodes = Vec::new();
    let result = start_nodes(&net, n, args.latency_ms, &root, &mut nodes)
        .and_then(|()| drive(&mut net, &args, &root, &mut nodes, &stop));
    stop_nodes(&mut nodes);
    net.remove();
    match &result {
        Ok(()) => {
            let _ = std::fs::remove_dir_all(&root);
        }
        Err(_) => eprintln!("the nodes' logs are kept in {}", root.display()),
    }
    result
}

fn node_dir(root: &std::path::Path, i: usize) -> PathBuf {
    root.join(format!("node-{i}"))
}

fn start_nodes(
    net: &LabNet,
    n: usize,
    latency_ms: u16,
    root: &std::path::Path,
    nodes: &mut Vec<LabNode>,
) -> anyhow::Result<()> {
    for i in 0..n {
        let dir = node_dir(root, i);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        nodes.push(LabNode {
            child: spawn_node(net, i, latency_ms, &dir)?,
        });
    }
    Ok(())
}

/// Starts node `i` on its data directory, its output appended to `node.log` there.
fn spawn_node(
    net: &LabNet,
    i: usize,
    latency_ms: u16,
    dir: &std::path::Path,
) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("finding the oxchain binary")?;
    let seed = format!("{}:{P2P_PORT}", net.node_ip(0));
    let ip = net.node_ip(i);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("node.log"))?;
    let mut command = net.command(i, &exe);
    command
        .args(["node", "--network", "regtest", "--mine", "on-demand"])
        .args(["--threads", "1"])
        .args(["--lab-latency-ms", &latency_ms.to_string()])
        .args(["--api", &format!("{ip}:{API_PORT}")])
        .args(["--p2p", &format!("{ip}:{P2P_PORT}")])
        .arg("--data-dir")
        .arg(dir)
        .env(
            "RUST_LOG",
            std::env::var("OXCHAIN_LAB_LOG").unwrap_or_else(|_| "warn,libp2p_kad=error".into()),
        );
    if i > 0 {
        command.args(["--peer", &seed]);
    }
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting node {i}"))
}

/// Runs the scenario on a thread inside the bridge's namespace, while this one watches
/// for Ctrl-C and for nodes that exit, and does what the scenario asks of the network
/// and the processes.
fn drive(
    net: &mut LabNet,
    args: &LabArgs,
    root: &std::path::Path,
    nodes: &mut [LabNode],
    stop: &std::sync::atomic::AtomicBool,
) -> anyhow::Result<()> {
    let (control_tx, control_rx) = std::sync::mpsc::channel::<observe::Request>();
    let plan = observe::Plan {
        apis: (0..nodes.len())
            .map(|i| format!("{}:{API_PORT}", net.node_ip(i)))
            .collect(),
        dirs: (0..nodes.len()).map(|i| node_dir(root, i)).collect(),
        blocks: usize::from(args.blocks),
        miners: usize::from(args.miners).min(nodes.len()),
        latency_ms: f64::from(args.latency_ms),
        mbit: f64::from(args.mbit),
        block_bytes: args.block_bytes as usize,
        interval_s: f64::from(args.interval_s),
        split_s: u64::from(args.split_s),
        rounds: usize::from(args.rounds),
        tx_rate: args.tx_rate,
        control: observe::Controller(control_tx),
    };
    let scenario = args.scenario;
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let entered = net.enter_fn();
    std::thread::Builder::new()
        .name("lab-observer".into())
        .spawn(move || {
            let result = entered().and_then(|()| {
                // The observer is the instrument: it reads when each block reached each
                // node, and must not wait behind the hundred nodes for a core to do so.
                // Its threads run at nice -10 (root, which the namespaces need anyway;
                // elsewhere it stays at the default). Nodes it starts are not its
                // children, and keep the default.
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .on_thread_start(raise_priority)
                    .enable_all()
                    .build()
                    .context("starting the observer's runtime")?
                    .block_on(async move {
                        let lab = observe::Lab::start(plan).await?;
                        match scenario {
                            Scenario::Propagation => scenarios::propagation(&lab).await,
                            Scenario::Stale => scenarios::stale(&lab).await,
                            Scenario::Partition => scenarios::partition(&lab).await,
                            Scenario::Churn => scenarios::churn(&lab).await,
                        }
                    })
            });
            let _ = done_tx.send(result);
        })?;
    let report = loop {
        if stop.load(Ordering::SeqCst) {
            bail!("stopped (Ctrl-C)");
        }
        for (i, node) in nodes.iter_mut().enumerate() {
            if let Some(status) = node.child.try_wait()? {
                bail!("node {i} exited ({status})");
            }
        }
        while let Ok((control, reply)) = control_rx.try_recv() {
            let done = match control {
                observe::Control::Partition(a, b) => net.partition(&a, &b),
                observe::Control::Heal => net.heal(),
                observe::Control::Restart(i) => {
                    stop_nodes(&mut nodes[i..=i]);
                    spawn_node(net, i, args.latency_ms, &node_dir(root, i))
                        .map(|child| nodes[i].child = child)
                }
            };
            let _ = reply.send(done);
        }
        match done_rx.recv_timeout(Duration::from_millis(100)) {
            Ok(result) => break result?,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(e) => bail!("the observer stopped: {e}"),
        }
    };
    report.print(args.json, matches!(net, LabNet::Namespaces { .. }));
    Ok(())
}

/// Raises the calling thread's scheduling priority (nice -10) if it may.
#[allow(unsafe_code)]
fn raise_priority() {
    // SAFETY: gettid and setpriority take and return plain integers.
    unsafe {
        let tid = libc::gettid();
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, -10);
    }
}

/// SIGINT to every node (a clean stop), 10 s to finish, SIGKILL after that.
fn stop_nodes(nodes: &mut [LabNode]) {
    for node in nodes.iter() {
        if let Ok(pid) = i32::try_from(node.child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGINT);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for node in nodes.iter_mut() {
        while matches!(node.child.try_wait(), Ok(None)) {
            if Instant::now() >= deadline {
                let _ = node.child.kill();
                let _ = node.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
