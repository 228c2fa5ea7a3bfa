//! Crash safety with a real process: a child process mines or imports blocks into a
//! store and is killed with SIGKILL at random moments, again and again. After every kill
//! the store must open, its tip must be a whole committed block, and its account state
//! must equal a replay of its chain from genesis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oxchain_chain::{BlockOutcome, Chain, MempoolLimits};
use oxchain_consensus::ledger::apply_block;
use oxchain_consensus::{ChainParams, MemoryState};
use oxchain_primitives::{Address, Height};
use oxchain_storage::Store;
use oxchain_testkit::{ChainBuilder, dev_account_address, dev_account_key, mine, signed_transfer};

const KILLS: u64 = 60;
/// The most kills before the test gives up on the children's progress.
const MAX_KILLS: u64 = 400;
const DIR_VAR: &str = "OXCHAIN_CRASH_DIR";
const MODE_VAR: &str = "OXCHAIN_CRASH_MODE";
const NAMES: [&str; 5] = ["alice", "bob", "charlie", "dave", "eve"];

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A small deterministic generator (xorshift), so that a failure can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn sigkill_while_importing_or_mining_never_breaks_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let params = ChainParams::regtest();
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut last_height = 0;
    // At least KILLS kills, and on until the chain is past height 100: on a busy machine
    // a child may be killed before it gets far, which costs more kills, not a failure.
    let mut kill = 0;
    while kill < KILLS || last_height <= 100 {
        assert!(
            kill < MAX_KILLS,
            "the children made little progress: height {last_height} after {kill} kills"
        );
        let mode = if kill % 2 == 0 { "import" } else { "mine" };
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(DIR_VAR, dir.path())
            .env(MODE_VAR, mode)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(150 + rng.next() % 350));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let height = check_store(dir.path(), &params)
            .unwrap_or_else(|e| panic!("after kill {kill} ({mode}): {e}"));
        assert!(height >= last_height, "the tip went back after kill {kill}");
        last_height = height;
        kill += 1;
    }
}

/// Opens the store and checks it against a replay of its own chain. Returns the height.
fn check_store(dir: &Path, params: &ChainParams) -> Result<u64, String> {
    let store = Store::open(dir, params).map_err(|e| format!("reopen failed: {e}"))?;
    let tip = store.tip().map_err(|e| e.to_string())?;
    if store.hash_at(Height(tip.height.0 + 1)).unwrap().is_some() {
        return Err("the best-chain index runs past the tip".into());
    }
    let mut state = MemoryState::at_genesis(params);
    let mut parent = params.genesis_hash();
    for height in 1..=tip.height.0 {
        let hash = store
            .hash_at(Height(height))
            .unwrap()
            .ok_or("a gap in the index")?;
        let block = store
            .block(&hash)
            .unwrap()
            .ok_or("a best-chain body is missing")?;
        if block.header.prev_hash != parent {
            return Err(format!("block {height} does not follow its parent"));
        }
        let update = apply_block(
            params,
            &state,
            &block,
            &block.compute_txids(),
            Height(height),
        )
        .map_err(|e| format!("replaying block {height}: {e}"))?;
        state.apply(&update);
        parent = hash;
    }
    if parent != tip.hash {
        return Err("the tip is not the last indexed block".into());
    }
    let digest = store.compute_state_digest().unwrap();
    if digest != state.compute_digest() {
        return Err(format!(
            "state digest differs from the replay at height {}",
            tip.height
        ));
    }
    Ok(tip.height.0)
}

/// The child's body: mines or imports blocks into the store named by the environment
/// until killed (or for at most 30 s). Run by the test above, never on its own.
#[test]
#[ignore = "the child process of sigkill_while_importing_or_mining_never_breaks_the_store"]
fn crash_child() {
    let (Ok(dir), Ok(mode)) = (std::env::var(DIR_VAR), std::env::var(MODE_VAR)) else {
        panic!("run only by sigkill_while_importing_or_mining_never_breaks_the_store");
    };
    let params = ChainParams::regtest();
    let store = Store::open(Path::new(&dir), &params).unwrap();
    let mut chain = Chain::new(params.clone(), store, MempoolLimits::default(), 2).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut rng = Rng(now_ms() | 1);
    if mode == "mine" {
        while Instant::now() < deadline {
            for _ in 0..rng.next() % 8 {
                let name = NAMES[(rng.next() % 5) as usize];
                let sender = dev_account_address(name);
                let nonce = match chain.mempool().next_nonce(&sender) {
                    Some(n) => n,
                    None => {
                        chain
                            .store()
                            .account(&sender)
                            .unwrap()
                            .unwrap_or_default()
                            .nonce
                    }
                };
                let to = Address([(rng.next() % 251) as u8; 20]);
                let t = signed_transfer(
                    &params.genesis_hash(),
                    &dev_account_key(name),
                    to,
                    1_000,
                    1_000,
                    nonce,
                );
                chain.submit_transfer(t).unwrap();
            }
            let mut block = chain.block_template(Address([0xaa; 20]), now_ms()).unwrap();
            mine(&params, &mut block.header);
            let outcome = chain.process_block(block, now_ms()).unwrap();
            assert!(
                matches!(outcome, BlockOutcome::Extended { .. }),
                "{outcome:?}"
            );
        }
    } else {
        // Replay the stored chain into a builder, then build and import batches on it.
        let mut builder = ChainBuilder::new(params.clone());
        let tip = chain.tip();
        for height in 1..=tip.height.0 {
            let hash = chain.store().hash_at(Height(height)).unwrap().unwrap();
            builder
                .push(chain.store().block(&hash).unwrap().unwrap())
                .unwrap();
        }
        builder.spacing_ms = 1;
        while Instant::now() < deadline {
            let start = builder.blocks.len();
            for _ in 0..1 + rng.next() % 12 {
                let transfers = (0..rng.next() % 20)
                    .map(|_| {
                        let name = NAMES[(rng.next() % 5) as usize];
                        let nonce = builder.account(&dev_account_address(name)).nonce;
                        let to = Address([(rng.next() % 251) as u8; 20]);
                        signed_transfer(
                            &params.genesis_hash(),
                            &dev_account_key(name),
                            to,
                            1_000,
                            1_000,
                            nonce,
                        )
                    })
                    // One transfer per sender per block keeps the nonces simple.
                    .fold(Vec::new(), |mut v: Vec<oxchain_primitives::Transfer>, t| {
                        if v.iter().all(|x| x.from != t.from) {
                            v.push(t);
                        }
                        v
                    });
                builder.extend(transfers).unwrap();
            }
            let batch = builder.blocks[start..].to_vec();
            let outcomes = chain.process_blocks(batch, u64::MAX / 2).unwrap();
            assert!(
                outcomes
                    .iter()
                    .all(|o| matches!(o, BlockOutcome::Extended { .. })),
                "{outcomes:?}"
            );
        }
    }
}
