//! The mining loop: takes block templates from the chain, searches them with the
//! [`Miner`], and submits what it finds. It runs on its own thread and mines when the
//! [`MiningMode`] says so, or when asked for blocks ([`MiningHandle::mine`], the
//! tutorials' `GET /mine`). Coinbases pay the address it was started with.
//!
//! A search stops, within a few thousand hashes, when the tip moves (a block from
//! elsewhere), when its template is older than [`TEMPLATE_REFRESH`] (new transfers get
//! in), when a first transfer arrives for an empty template, or on [`MiningHandle::stop`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use oxchain_chain::{BlockOutcome, SharedChain};
use oxchain_primitives::{Address, BlockHash, Height};

use crate::mode::MiningMode;
use crate::pool::{Canceller, Miner};

/// How long a template is searched before it is rebuilt with the mempool's news.
pub const TEMPLATE_REFRESH: Duration = Duration::from_secs(2);
/// How often an idle loop looks at the mempool (for `pool:N`).
const IDLE_POLL: Duration = Duration::from_millis(100);

/// A block the loop mined and the chain accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mined {
    /// Its height.
    pub height: Height,
    /// Its hash.
    pub hash: BlockHash,
}

/// Why a request for blocks failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MineError {
    /// The node was started with `--mine off`.
    #[error("mining is off on this node (started with --mine off)")]
    Off,
    /// The loop stopped (shutdown) before the blocks were mined.
    #[error("the miner stopped before the blocks were mined")]
    Stopped,
    /// The chain could not build a template or store a block.
    #[error("the chain failed: {0}")]
    Chain(String),
}

/// Where the blocks of one request go.
type Reply = mpsc::Sender<Result<Vec<Mined>, MineError>>;

/// A request being served: blocks still owed, blocks mined so far, where they go.
type Owed = (usize, Vec<Mined>, Reply);

enum Request {
    Mine { count: usize, reply: Reply },
}

/// The running loop. Dropping it stops the loop and waits for it.
#[derive(Debug)]
pub struct MiningHandle {
    mode: MiningMode,
    reward_to: Address,
    requests: Option<mpsc::Sender<Request>>,
    canceller: Canceller,
    miner: Arc<Miner>,
    thread: Option<JoinHandle<()>>,
}

impl MiningHandle {
    /// Starts the loop on `chain` in `mode`, paying coinbases to `reward_to`.
    pub fn start(
        chain: SharedChain,
        miner: Arc<Miner>,
        mode: MiningMode,
        reward_to: Address,
    ) -> std::io::Result<MiningHandle> {
        let (requests, inbox) = mpsc::channel();
        let canceller = Canceller::new();
        let looping = Loop {
            chain,
            miner: miner.clone(),
            mode,
            reward_to,
            inbox,
            stop: canceller.clone(),
            pending: VecDeque::new(),
        };
        let thread = std::thread::Builder::new()
            .name("miner".into())
            .spawn(move || looping.run())?;
        Ok(MiningHandle {
            mode,
            reward_to,
            requests: Some(requests),
            canceller,
            miner,
            thread: Some(thread),
        })
    }

    /// Where this node's coinbases pay.
    pub fn reward_to(&self) -> Address {
        self.reward_to
    }

    /// The mode the loop runs in.
    pub fn mode(&self) -> MiningMode {
        self.mode
    }

    /// Mines `count` blocks now (whatever the mode, unless off) and returns them once the
    /// chain has accepted them. Blocks the calling thread.
    pub fn mine(&self, count: usize) -> Result<Vec<Mined>, MineError> {
        if self.mode == MiningMode::Off {
            return Err(MineError::Off);
        }
        if count == 0 {
            return Ok(Vec::new());
        }
        let (reply, answer) = mpsc::channel();
        self.requests
            .as_ref()
            .ok_or(MineError::Stopped)?
            .send(Request::Mine { count, reply })
            .map_err(|_| MineError::Stopped)?;
        answer.recv().map_err(|_| MineError::Stopped)?
    }

    /// Hashes per second of each mining thread.
    pub fn hash_rates(&self) -> Vec<f64> {
        self.miner.hash_rates()
    }

    /// Stops the loop (the current search within a few thousand hashes) and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.canceller.cancel();
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            // A panic in the loop has been reported on its thread already.
            let _ = thread.join();
        }
    }
}

impl Drop for MiningHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Loop {
    chain: SharedChain,
    miner: Arc<Miner>,
    mode: MiningMode,
    reward_to: Address,
    inbox: mpsc::Receiver<Request>,
    stop: Canceller,
    /// Requests for blocks, oldest first: blocks still owed and those mined so far.
    pending: VecDeque<Owed>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Loop {
    fn run(mut self) {
        let stopped = self.stop.token();
        let watch = self.chain.view().watch();
        while !stopped.is_cancelled() {
            // Take new requests; wait for one if there is nothing to do.
            loop {
                match self.inbox.try_recv() {
                    Ok(request) => self.accept(request),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        return self.fail_all(MineError::Stopped);
                    }
                }
            }
            let waiting = self.chain.view().mempool().len();
            if self.pending.is_empty() && !self.mode.should_mine(waiting) {
                match self.inbox.recv_timeout(IDLE_POLL) {
                    Ok(request) => self.accept(request),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => {
                        return self.fail_all(MineError::Stopped);
                    }
                }
                continue;
            }

            // The counters are read before the template: a change while it is built makes
            // the search stale at once rather than missed.
            let (tip_at, mempool_at) = (watch.tip(), watch.mempool());
            let template = self
                .chain
                .write(|chain| chain.block_template(self.reward_to, now_ms()));
            let mut block = {
                match template {
                    Ok(block) => block,
                    Err(e) => {
                        self.fail_all(MineError::Chain(e.to_string()));
                        std::thread::sleep(IDLE_POLL);
                        continue;
                    }
                }
            };
            let empty = block.transactions.len() == 1;
            let refresh_at = Instant::now() + TEMPLATE_REFRESH;
            let stale = || {
                stopped.is_cancelled()
                    || watch.tip() != tip_at
                    || (empty && watch.mempool() != mempool_at)
                    || Instant::now() >= refresh_at
            };
            let Some(found) = self.miner.mine_until(block.header, 0, &stale) else {
                continue;
            };
            block.header = found.header;
            let outcome = self
                .chain
                .write(|chain| chain.process_block(block, now_ms()));
            match outcome {
                Ok(BlockOutcome::Extended { hash, height }) => self.deliver(Mined { height, hash }),
                // A block from elsewhere won the race: mine on the new tip.
                Ok(_) => {}
                Err(e) => self.fail_all(MineError::Chain(e.to_string())),
            }
        }
        self.fail_all(MineError::Stopped);
    }

    fn accept(&mut self, request: Request) {
        let Request::Mine { count, reply } = request;
        self.pending
            .push_back((count, Vec::with_capacity(count), reply));
    }

    fn deliver(&mut self, mined: Mined) {
        let Some((owed, blocks, _)) = self.pending.front_mut() else {
            return;
        };
        blocks.push(mined);
        *owed -= 1;
        if *owed == 0
            && let Some((_, blocks, reply)) = self.pending.pop_front()
        {
            // The asker may have gone away: nothing to do then.
            let _ = reply.send(Ok(blocks));
        }
    }

    fn fail_all(&mut self, error: MineError) {
        for (_, _, reply) in self.pending.drain(..) {
            let _ = reply.send(Err(error.clone()));
        }
    }
}
