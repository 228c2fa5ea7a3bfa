//! The worker pool: `threads` workers search disjoint nonce ranges of one header. When
//! every range is spent, the header's time is refreshed and the ranges start again (a new
//! time makes every nonce new). A [`CancelToken`] stops the search; nothing is global.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use oxchain_primitives::{BlockHash, Header};

use crate::search::{Path, SearchOutcome, search};
use crate::sha256::HeaderWork;

/// Nonces each thread tries per header time: 2^32, a few minutes at full speed, after
/// which the time moves on anyway.
pub const ROUND_NONCES: u64 = 1 << 32;

/// Hands out [`CancelToken`]s and cancels all of them at once (a new tip, a better
/// template, shutdown).
#[derive(Debug, Clone, Default)]
pub struct Canceller {
    epoch: Arc<AtomicU64>,
}

/// Says whether the search it was handed to should stop.
#[derive(Debug, Clone)]
pub struct CancelToken {
    epoch: Arc<AtomicU64>,
    at: u64,
}

impl Canceller {
    /// A canceller with no search cancelled yet.
    pub fn new() -> Canceller {
        Canceller::default()
    }

    /// A token that [`Canceller::cancel`] will cancel.
    pub fn token(&self) -> CancelToken {
        CancelToken {
            epoch: self.epoch.clone(),
            at: self.epoch.load(Ordering::Acquire),
        }
    }

    /// Cancels every token handed out so far.
    pub fn cancel(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }
}

impl CancelToken {
    /// Whether the search should stop.
    pub fn is_cancelled(&self) -> bool {
        self.epoch.load(Ordering::Acquire) != self.at
    }
}

/// A header that meets its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinedBlock {
    /// The header, nonce and time set.
    pub header: Header,
    /// Its hash.
    pub hash: BlockHash,
}

/// A pool of mining threads and their hash counters.
#[derive(Debug)]
pub struct Miner {
    path: Path,
    round_nonces: u64,
    counters: Vec<AtomicU64>,
    last_sample: Mutex<Option<RateSample>>,
}

/// When the hash rate was last sampled, the per-thread totals then, and the rates then.
type RateSample = (Instant, Vec<u64>, Vec<f64>);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Miner {
    /// A miner with `threads` workers (at least one) on the fastest hashing path.
    pub fn new(threads: usize) -> Miner {
        Miner::with_path(threads, Path::detect())
    }

    /// A miner on a chosen path (tests and benchmarks compare paths).
    pub fn with_path(threads: usize, path: Path) -> Miner {
        Miner {
            path,
            round_nonces: ROUND_NONCES,
            counters: (0..threads.max(1)).map(|_| AtomicU64::new(0)).collect(),
            last_sample: Mutex::new(None),
        }
    }

    /// Sets how many nonces each thread tries per header time (tests use small rounds).
    pub fn with_round_nonces(mut self, nonces: u64) -> Miner {
        self.round_nonces = nonces.max(1);
        self
    }

    /// Searches for a nonce (and, as rounds run out, a later time) that makes `header` meet
    /// its own target. The time starts at `max(header.time_ms, min_time_ms)` and moves to
    /// the clock (never below `min_time_ms`) each new round. `None`: cancelled, or the bits
    /// name no target.
    pub fn mine(
        &self,
        header: Header,
        min_time_ms: u64,
        cancel: &CancelToken,
    ) -> Option<MinedBlock> {
        self.mine_until(header, min_time_ms, &|| cancel.is_cancelled())
    }

    /// As [`Miner::mine`], stopping when `stop` says so (checked by every thread every
    /// [`crate::search::CHECK_EVERY`] nonces, so it must be cheap).
    pub fn mine_until(
        &self,
        mut header: Header,
        min_time_ms: u64,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Option<MinedBlock> {
        let target = header.bits.to_target().ok()?;
        header.time_ms = header.time_ms.max(min_time_ms);
        loop {
            let work = HeaderWork::new(&header);
            let found: Mutex<Option<(u64, BlockHash)>> = Mutex::new(None);
            let done = AtomicBool::new(false);
            std::thread::scope(|scope| {
                for (t, counter) in self.counters.iter().enumerate() {
                    let (work, found, done) = (&work, &found, &done);
                    let start = t as u64 * self.round_nonces;
                    let range = start..start + self.round_nonces;
                    let stop = move || done.load(Ordering::Relaxed) || stop();
                    scope.spawn(move || {
                        if let SearchOutcome::Found { nonce, hash } =
                            search(self.path, work, &target, range, counter, &stop)
                        {
                            done.store(true, Ordering::Relaxed);
                            let mut slot = found.lock().unwrap_or_else(|e| e.into_inner());
                            slot.get_or_insert((nonce, hash));
                        }
                    });
                }
            });
            if let Some((nonce, hash)) = found.into_inner().unwrap_or_else(|e| e.into_inner()) {
                header.nonce = nonce;
                return Some(MinedBlock { header, hash });
            }
            if stop() {
                return None;
            }
            // Every range spent: a new time makes every nonce new.
            header.time_ms = now_ms().max(min_time_ms).max(header.time_ms + 1);
        }
    }

    /// Hashes done so far by each thread.
    pub fn hashes_per_thread(&self) -> Vec<u64> {
        self.counters
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }

    /// Hashes per second of each thread since the previous call (at least half a second
    /// ago; a sooner call gets the previous figures again).
    pub fn hash_rates(&self) -> Vec<f64> {
        let now = Instant::now();
        let totals = self.hashes_per_thread();
        let mut last = self.last_sample.lock().unwrap_or_else(|e| e.into_inner());
        let rates = match last.as_ref() {
            Some((at, _, rates)) if now.duration_since(*at).as_secs_f64() < 0.5 => rates.clone(),
            Some((at, before, _)) => {
                let secs = now.duration_since(*at).as_secs_f64();
                totals
                    .iter()
                    .zip(before)
                    .map(|(n, b)| n.saturating_sub(*b) as f64 / secs)
                    .collect()
            }
            None => vec![0.0; totals.len()],
        };
        if last
            .as_ref()
            .is_none_or(|(at, _, _)| now.duration_since(*at).as_secs_f64() >= 0.5)
        {
            *last = Some((now, totals, rates.clone()));
        }
        rates
    }
}
