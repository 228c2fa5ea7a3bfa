//! The scenarios: propagation mines blocks one at a time and follows each to every node;
//! the others mine on a clock (at random miners, exponential gaps of mean
//! `--interval-s`, as proof of work finds blocks) while they measure stale blocks, a
//! partition's heal, or restarted nodes' return.

use std::time::{Duration, Instant};

use anyhow::bail;

use super::fill::{FILL_TX_BYTES, Filler};
use super::load::{Load, confirmed};
use super::observe::{Control, Lab, Mined, http, status};
use super::report::{Report, percentile};

/// When the next block is due: exponential gaps of mean `mean_s`.
struct Clock {
    mean_s: f64,
    next: Instant,
}

impl Clock {
    fn new(mean_s: f64) -> Clock {
        let mut clock = Clock {
            mean_s,
            next: Instant::now(),
        };
        clock.next += clock.gap();
        clock
    }

    fn gap(&self) -> Duration {
        let u: f64 = rand::random();
        Duration::from_secs_f64(-(1.0 - u).ln() * self.mean_s)
    }

    /// Whether a block is due now (and if so, when the next one is).
    fn due(&mut self) -> bool {
        if Instant::now() < self.next {
            return false;
        }
        self.next += self.gap();
        true
    }

    /// Sleeps until the next block is due, or `at_most`.
    async fn wait(&self, at_most: Duration) {
        tokio::time::sleep_until((self.next.min(Instant::now() + at_most)).into()).await;
    }
}

/// Mines at a random node of `miners` if the clock says a block is due.
async fn tick(
    lab: &Lab,
    clock: &mut Clock,
    miners: &[usize],
    mined: &mut Vec<Mined>,
) -> anyhow::Result<()> {
    if clock.due() {
        let m = miners[rand::random_range(0..miners.len())];
        mined.push(lab.mine(m).await?);
    }
    Ok(())
}

/// Blocks mined one at a time in turn by the miners, each followed to every node before
/// the next; with `--block-bytes`, transfers gossiped to every mempool first, and after
/// each such block a reference block of one fill transfer (about 1 KiB), so that the big
/// blocks' delays compare with small ones' under the same conditions. The bytes counted
/// are those sent while each big block spreads (not the transfers' own gossip, nor the
/// reference blocks).
pub(crate) async fn propagation(lab: &Lab) -> anyhow::Result<Report> {
    let miners = lab.plan.miners;
    let mut filler = Filler::full();
    let per_block = lab.plan.block_bytes.div_ceil(FILL_TX_BYTES);
    let (mut mined, mut reference, mut sent) = (Vec::new(), Vec::new(), 0.0);
    // The nodes' CPU time while each block spreads (from its mining until a little after
    // the last node has it): on a machine whose cores the nodes share, that time over the
    // cores is a floor of its own.
    let (mut cpu, mut reference_cpu) = (0.0, 0.0);
    // Nodes that did not hold a block's whole fill when it was mined, over all blocks.
    let mut fill_short = 0;
    for b in 0..lab.plan.blocks {
        let miner = b % miners;
        if per_block > 0 {
            fill_short += fill(lab, miner, &mut filler, per_block).await?;
        }
        let before = lab.sent_bytes().await;
        let cpu_before = lab.nodes_cpu_s();
        let from = unix_s();
        let block = follow(lab, miner).await?;
        let to = unix_s();
        // A node that exits meanwhile takes its ticks with it: never below 0.
        cpu += (lab.nodes_cpu_s() - cpu_before).max(0.0);
        sent += lab.sent_bytes().await - before;
        let (to_50, to_95, to_100) = lab.delays(std::slice::from_ref(&block));
        println!(
            "block {} of {} (node {miner}): to 50% {:.0} ms, 95% {:.0} ms, all {:.0} ms (Unix time {from:.3},{to:.3})",
            b + 1,
            lab.plan.blocks,
            to_50.first().copied().unwrap_or(f64::NAN),
            to_95.first().copied().unwrap_or(f64::NAN),
            to_100.first().copied().unwrap_or(f64::NAN),
        );
        mined.push(block);
        if per_block > 1 {
            fill_short += fill(lab, miner, &mut filler, 1).await?;
            let cpu_before = lab.nodes_cpu_s();
            reference.push(follow(lab, miner).await?);
            reference_cpu += (lab.nodes_cpu_s() - cpu_before).max(0.0);
        }
    }
    lab.one_tip(30).await?;
    let mut report = lab.report("propagation", &mined, sent).await?;
    let relay = lab.compact_relay().await;
    for (key, label, value) in [
        (
            "compact_from_mempool",
            "compact: rebuilt from mempools",
            relay[0],
        ),
        ("compact_fetched", "compact: transfers fetched", relay[1]),
        (
            "compact_full_block",
            "compact: whole block fetched",
            relay[2],
        ),
        (
            "compact_fetched_transfers",
            "compact: transfers fetched, count",
            relay[3],
        ),
    ] {
        report.extra.push((key, label.into(), value, ""));
    }
    if per_block > 0 {
        report.extra.push((
            "fill_short_nodes",
            "nodes short of the fill when mined".into(),
            fill_short as f64,
            "",
        ));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let per_block = |total: f64, count: usize| total / count.max(1) as f64;
    report.extra.push((
        "nodes_cpu_s_per_block",
        "nodes' CPU while a block spreads".into(),
        per_block(cpu, mined.len()),
        " s",
    ));
    report.extra.push((
        "nodes_cpu_over_cores_ms",
        format!("that CPU over this machine's {cores} cores"),
        per_block(cpu, mined.len()) / cores * 1000.0,
        " ms",
    ));
    if !reference.is_empty() {
        report.extra.push((
            "nodes_cpu_s_per_1kib_block",
            "nodes' CPU while a 1 KiB block spreads".into(),
            per_block(reference_cpu, reference.len()),
            " s",
        ));
        let small = percentile(&lab.delays(&reference).1, 95.0);
        let big = percentile(&report.to_95, 95.0);
        report.extra.push((
            "p95_to_95pct_1kib_ms",
            "1 KiB blocks' delay to 95%, p95".into(),
            small,
            " ms",
        ));
        report.extra.push((
            "p95_to_95pct_over_1kib",
            "these blocks' p95 over the 1 KiB blocks'".into(),
            big / small.max(f64::MIN_POSITIVE),
            "x",
        ));
    }
    Ok(report)
}

/// The wall clock in seconds since the Unix epoch: the per-block lines print the span
/// each block's figures cover, so that a profile of the whole machine taken with
/// `perf record -a -k realtime` can be cut to it (`perf report --time FROM,TO`).
fn unix_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// How long a fill may take to reach every node before its block is mined anyway.
const FILL_WAIT: Duration = Duration::from_secs(300);
/// A fill whose mempool counts have not moved for this long has stopped spreading.
const FILL_STALL: Duration = Duration::from_secs(20);

/// Sends `count` fill transfers to the miner itself, in nonce order, so that it takes
/// every one, and waits until every node's mempool holds as many as the miner's: their
/// gossip has reached everyone and does not overlap the block's. It gives up after
/// [`FILL_WAIT`], or when no count has moved for [`FILL_STALL`], and says so. Returns how
/// many nodes were short of the miner's count when it stopped waiting.
async fn fill(lab: &Lab, miner: usize, filler: &mut Filler, count: usize) -> anyhow::Result<usize> {
    let entry = lab.api(miner);
    for _ in 0..count {
        let (code, answer) =
            http(entry, "POST", "/v1/transactions", &filler.next_body(), None).await?;
        if code != 202 {
            bail!("a fill transfer was refused ({code}): {answer}");
        }
    }
    let start = Instant::now();
    let (mut last, mut moved, mut shown) = (Vec::new(), start, start);
    loop {
        // A node whose status did not answer is short: the miner's too (its count is
        // the target, and an unknown target is never reached).
        let mut counts = Vec::with_capacity(lab.n());
        for i in 0..lab.n() {
            counts.push(
                status(lab.api(i))
                    .await
                    .ok()
                    .and_then(|s| s["mempool"].as_u64()),
            );
        }
        let short = match counts[miner] {
            Some(target) => counts
                .iter()
                .filter(|c| c.is_none_or(|c| c < target))
                .count(),
            None => lab.n(),
        };
        let target = counts[miner].unwrap_or(0);
        let waited = start.elapsed().as_secs_f64();
        if short == 0 {
            return Ok(0);
        }
        if start.elapsed() >= FILL_WAIT || moved.elapsed() >= FILL_STALL {
            println!(
                "fill: after {waited:.0} s, {short} of {} nodes still hold fewer than the miner's {target} transfers; mining anyway",
                lab.n()
            );
            return Ok(short);
        }
        if shown.elapsed() >= Duration::from_secs(10) {
            println!(
                "fill: {} of {} nodes hold the miner's {target} transfers ({waited:.0} s)",
                lab.n() - short,
                lab.n()
            );
            shown = Instant::now();
        }
        if counts != last {
            moved = Instant::now();
            last = counts;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Mines a block at `miner` and waits until every node has it (60 s at most), and a
/// little more for the last nodes' forwarding to be on the wire.
async fn follow(lab: &Lab, miner: usize) -> anyhow::Result<Mined> {
    let n = lab.n();
    let block = lab.mine(miner).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while lab.arrived(&block.hash) < n {
        if Instant::now() >= deadline {
            bail!(
                "after 60 s, block {} had reached {} of {n} nodes",
                block.hash,
                lab.arrived(&block.hash)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs_f64(
        lab.plan.latency_ms / 1000.0 * 4.0 + 0.2,
    ))
    .await;
    Ok(block)
}

/// The load generator's figures: the rate it sent at, how many transfers nodes took and
/// refused, and how many of those are on node 0's best chain at the end.
async fn load_figures(lab: &Lab, load: &Load, rate: f64, report: &mut Report) {
    let on_chain = confirmed(lab, 0, &load.sent).await;
    report.extra.push((
        "tx_rate",
        "load: transfers sent per second".into(),
        rate,
        "",
    ));
    report.extra.push((
        "tx_sent",
        "load: transfers a node took".into(),
        load.sent.len() as f64,
        "",
    ));
    report.extra.push((
        "tx_refused",
        "load: transfers no node took".into(),
        load.refused as f64,
        "",
    ));
    report.extra.push((
        "tx_confirmed",
        "load: of those taken, on the best chain".into(),
        on_chain as f64,
        "",
    ));
}

/// `--blocks` blocks mined on the clock at the first `--miners` nodes; the share that
/// ends off the best chain.
pub(crate) async fn stale(lab: &Lab) -> anyhow::Result<Report> {
    let miners: Vec<usize> = (0..lab.plan.miners).collect();
    let before = lab.sent_bytes().await;
    let started = Instant::now();
    let mut clock = Clock::new(lab.plan.interval_s);
    let mut load = Load::new(lab.plan.tx_rate, &[0, 1, 2, 3, 4], (0..lab.n()).collect());
    let mut mined = Vec::new();
    while mined.len() < lab.plan.blocks {
        let had = mined.len();
        tick(lab, &mut clock, &miners, &mut mined).await?;
        load.tick(lab).await;
        if mined.len() > had && mined.len() % 25 == 0 {
            println!("{} of {} blocks mined", mined.len(), lab.plan.blocks);
        }
        clock.wait(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rate = load.rate_since(started);
    lab.one_tip(60).await?;
    let sent = lab.sent_bytes().await - before;
    let mut stale = 0;
    for block in &mined {
        if !lab.on_best_chain(0, &block.hash).await? {
            stale += 1;
        }
    }
    let count = mined.len() as f64;
    let mut report = lab.report("stale", &mined, sent).await?;
    load_figures(lab, &load, rate, &mut report).await;
    report.extra.push((
        "stale_rate",
        format!("stale rate ({stale} of {} mined)", mined.len()),
        f64::from(stale) / count,
        "",
    ));
    report.extra.push((
        "mean_interval_s",
        "mean interval between blocks".into(),
        elapsed / count,
        " s",
    ));
    Ok(report)
}

/// The nodes split in two (even and odd), both mining and taking transfers for
/// `--split-s`, then healed: the time until every node is on one tip and every transfer
/// is mined or back in the mempools of the side it was sent on.
pub(crate) async fn partition(lab: &Lab) -> anyhow::Result<Report> {
    let n = lab.n();
    if lab.plan.miners < 2 {
        bail!("partition wants at least 2 miners, one on each side (--miners)");
    }
    let sides: [Vec<usize>; 2] = [
        (0..n).filter(|i| i % 2 == 0).collect(),
        (0..n).filter(|i| i % 2 == 1).collect(),
    ];
    let miners: Vec<usize> = (0..lab.plan.miners).collect();
    let before = lab.sent_bytes().await;
    let mut clock = Clock::new(lab.plan.interval_s);
    let mut mined = Vec::new();
    lab.plan
        .control
        .ask(Control::Partition(sides[0].clone(), sides[1].clone()))
        .await?;
    println!(
        "split into two halves of {} and {} nodes for {} s",
        sides[0].len(),
        sides[1].len(),
        lab.plan.split_s
    );
    // The load generator sends half its rate on each side, from dev accounts of each
    // side's own (no double spends), each transfer to a random node of that side.
    let started = Instant::now();
    let mut loads = [
        Load::new(lab.plan.tx_rate / 2.0, &[0, 1], sides[0].clone()),
        Load::new(lab.plan.tx_rate / 2.0, &[2, 3], sides[1].clone()),
    ];
    let split_end = Instant::now() + Duration::from_secs(lab.plan.split_s);
    while Instant::now() < split_end {
        tick(lab, &mut clock, &miners, &mut mined).await?;
        for load in &mut loads {
            load.tick(lab).await;
        }
        clock.wait(Duration::from_millis(100)).await;
    }
    let rate = loads.iter().map(|l| l.rate_since(started)).sum::<f64>();
    let sent_txs: Vec<(usize, String)> = loads
        .iter()
        .enumerate()
        .flat_map(|(s, load)| load.sent.iter().map(move |txid| (s, txid.clone())))
        .collect();
    let heights: Vec<u64> = {
        let mut h = Vec::new();
        for side in &sides {
            h.push(
                status(lab.api(side[0])).await?["height"]
                    .as_u64()
                    .unwrap_or(0),
            );
        }
        h
    };
    lab.plan.control.ask(Control::Heal).await?;
    let healed = Instant::now();
    println!(
        "healed: the halves were at heights {} and {}; {} transfers sent",
        heights[0],
        heights[1],
        sent_txs.len()
    );
    // One tip everywhere (mining goes on, as it would), then every transfer.
    let deadline = healed + Duration::from_secs(300);
    let tip_s = loop {
        tick(lab, &mut clock, &miners, &mut mined).await?;
        let tips = lab.tips().await;
        if tips[0].is_some() && tips.iter().all(|t| *t == tips[0]) {
            break healed.elapsed().as_secs_f64();
        }
        if Instant::now() >= deadline {
            bail!("300 s after the heal the nodes were not on one tip");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!("one tip {tip_s:.1} s after the heal; checking the transfers");
    // Mined: on the one best chain (node 0's; every node was on it a moment ago).
    // The rest: pending in the mempool of every node of the side it was sent on.
    let mut missing = sent_txs.clone();
    while !missing.is_empty() {
        tick(lab, &mut clock, &miners, &mut mined).await?;
        let mut still = Vec::new();
        for (s, txid) in missing {
            let (code, tx) = http(
                lab.api(0),
                "GET",
                &format!("/v1/transactions/{txid}"),
                "",
                None,
            )
            .await?;
            if !(code == 200 && tx["status"] == "confirmed") {
                still.push((s, txid));
            }
        }
        if !still.is_empty() {
            let mut pools = vec![Vec::new(); n];
            for (i, pool) in pools.iter_mut().enumerate() {
                if let Ok((200, answer)) =
                    http(lab.api(i), "GET", "/v1/mempool?limit=100", "", None).await
                {
                    *pool = answer["transactions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|t| t["txid"].as_str().map(str::to_string))
                        .collect();
                }
            }
            still.retain(|(s, txid)| !sides[*s].iter().all(|&i| pools[i].contains(txid)));
        }
        missing = still;
        if !missing.is_empty() {
            if Instant::now() >= deadline {
                bail!(
                    "300 s after the heal, {} of {} transfers were neither mined nor pending on their side",
                    missing.len(),
                    sent_txs.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let heal_s = healed.elapsed().as_secs_f64();
    let sent = lab.sent_bytes().await - before;
    let mut report = lab.report("partition", &mined, sent).await?;
    report
        .extra
        .push(("tip_s", "heal: one tip everywhere".into(), tip_s, " s"));
    report.extra.push((
        "heal_s",
        format!("heal: one tip, and all {} transfers back", sent_txs.len()),
        heal_s,
        " s",
    ));
    report.extra.push((
        "tx_rate",
        "load: transfers sent per second (split)".into(),
        rate,
        "",
    ));
    report.extra.push((
        "tx_refused",
        "load: transfers no node took".into(),
        loads.iter().map(|l| l.refused).sum::<usize>() as f64,
        "",
    ));
    Ok(report)
}

/// `--rounds` minutes of mining on the clock while, each minute, a tenth of the nodes
/// (never the seed or a miner) stop cleanly and start again: the time from a node's
/// start until it is on the seed's tip and has a peer.
pub(crate) async fn churn(lab: &Lab) -> anyhow::Result<Report> {
    let n = lab.n();
    let miners: Vec<usize> = (0..lab.plan.miners).collect();
    let candidates: Vec<usize> = (lab.plan.miners.max(1)..n).collect();
    if candidates.is_empty() {
        bail!("churn wants nodes that neither mine nor seed (--nodes above --miners)");
    }
    let per_round = (n / 10).clamp(1, candidates.len());
    let before = lab.sent_bytes().await;
    let started = Instant::now();
    let mut clock = Clock::new(lab.plan.interval_s);
    let mut load = Load::new(lab.plan.tx_rate, &[0, 1, 2, 3, 4], (0..n).collect());
    let mut mined = Vec::new();
    let mut rejoin = Vec::new();
    for round in 0..lab.plan.rounds {
        let round_end = Instant::now() + Duration::from_secs(60);
        let mut picked = candidates.clone();
        let mut restarting = Vec::new();
        for _ in 0..per_round {
            restarting.push(picked.swap_remove(rand::random_range(0..picked.len())));
        }
        // Stopped and started one at a time; each then waits to be back at the tip.
        let mut back: Vec<(usize, Instant)> = Vec::new();
        for &i in &restarting {
            tick(lab, &mut clock, &miners, &mut mined).await?;
            load.tick(lab).await;
            lab.plan.control.ask(Control::Restart(i)).await?;
            back.push((i, Instant::now()));
            lab.follow(i).await?;
        }
        while !back.is_empty() || Instant::now() < round_end {
            tick(lab, &mut clock, &miners, &mut mined).await?;
            load.tick(lab).await;
            let seed = status(lab.api(0)).await?;
            let mut waiting = Vec::new();
            for (i, started) in back {
                // Back: on the seed's tip, with a peer to hear the next block from.
                let theirs = status(lab.api(i)).await.ok();
                if theirs.is_some_and(|s| {
                    s["tip"] == seed["tip"] && s["peers"].as_u64().unwrap_or(0) > 0
                }) {
                    rejoin.push(started.elapsed().as_secs_f64());
                } else if started.elapsed() > Duration::from_secs(180) {
                    bail!("node {i} was not back at the tip 180 s after its restart");
                } else {
                    waiting.push((i, started));
                }
            }
            back = waiting;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "round {} of {}: restarted {restarting:?}",
            round + 1,
            lab.plan.rounds
        );
    }
    let rate = load.rate_since(started);
    lab.one_tip(60).await?;
    let sent = lab.sent_bytes().await - before;
    let mut report = lab.report("churn", &mined, sent).await?;
    load_figures(lab, &load, rate, &mut report).await;
    let mean = rejoin.iter().sum::<f64>() / rejoin.len().max(1) as f64;
    let max = rejoin.iter().copied().fold(0.0, f64::max);
    report.extra.push((
        "rejoin_s",
        format!("back at the tip after a restart (mean of {})", rejoin.len()),
        mean,
        " s",
    ));
    report.extra.push((
        "rejoin_max_s",
        "back at the tip: the slowest".into(),
        max,
        " s",
    ));
    Ok(report)
}
