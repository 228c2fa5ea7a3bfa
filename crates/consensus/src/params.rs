//! Chain parameters: what differs between main, test, dev and regtest. The rules are the
//! same on every network.

use oxchain_primitives::{Amount, Block, BlockHash, CompactTarget, Height, Network, Target, Work};
use ruint::aliases::U256;

use crate::genesis;

/// How far ahead of the local clock a block time may be (2 minutes).
pub const MAX_FUTURE_BLOCK_TIME_MS: u64 = 2 * 60 * 1000;

/// How many previous block times the median time past is taken over.
pub const MEDIAN_TIME_SPAN: usize = 11;

/// Header version of every block today.
pub const HEADER_VERSION: u32 = 1;

/// The parameters of one network.
#[derive(Debug, Clone)]
pub struct ChainParams {
    /// Which network.
    pub network: Network,
    /// The block interval the difficulty schedule aims at.
    pub target_block_time_ms: u64,
    /// ASERT half-life: a chain one half-life ahead of schedule doubles its difficulty.
    pub asert_half_life_ms: u64,
    /// The easiest target allowed.
    pub pow_limit: Target,
    /// The target of the first block after genesis, which anchors the ASERT schedule.
    pub initial_bits: CompactTarget,
    /// `false` on regtest: every block keeps `initial_bits`.
    pub retarget: bool,
    /// Blocks between subsidy halvings.
    pub halving_interval: u64,
    /// The subsidy before the first halving.
    pub initial_subsidy: Amount,
    /// Coins each dev account receives in genesis (dev and regtest only).
    pub dev_account_funds: Amount,
    /// The least cumulative work a chain must show before a syncing node downloads its
    /// blocks: headers that show less are not worth a block, so a fresh node cannot be
    /// fed a cheap chain first. Zero on every network today (none has history yet); a
    /// release raises it to the work of a recent block of the network's best chain.
    pub min_chain_work: Work,
    /// Where a new node of this network looks for its first peers when it is given none
    /// it can reach (multiaddrs or `HOST:PORT`): they go in its address book, and
    /// discovery finds the rest. Empty on every network today: none runs public seed
    /// nodes yet.
    pub bootstrap: Vec<String>,
    genesis: Block,
    genesis_hash: BlockHash,
}

/// `2^bits - 1`, or `2^bits` for the expected-work style targets below.
fn pow2(bits: usize) -> U256 {
    U256::from(1u8) << bits
}

impl ChainParams {
    /// The parameters of `network`.
    pub fn for_network(network: Network) -> ChainParams {
        const COIN: u64 = Amount::UNITS_PER_COIN;
        let fifty = Amount::from_units(50 * COIN);
        // Initial work: expected hashes for the first block after genesis. On dev, 2^26
        // (a few seconds of one core): close enough to a small machine's hash rate that
        // the chain's first 300 blocks average within 10% of 10 s (ADR 0025).
        let (block_time_s, half_life_s, initial_work_log2, halving) = match network {
            Network::Main => (60, 2 * 24 * 3600, 32, 210_000),
            Network::Test => (60, 6 * 3600, 28, 210_000),
            Network::Dev => (10, 60, 26, 210_000),
            Network::Regtest => (1, 60, 1, 150),
        };
        let (pow_limit, initial_bits, retarget) = match network {
            // Regtest: about every second hash meets the target; PoW is still checked.
            Network::Regtest => {
                let bits = CompactTarget(0x207f_ffff);
                (bits.to_target().expect("valid constant bits"), bits, false)
            }
            _ => {
                let initial = Target(pow2(256 - initial_work_log2)).to_compact();
                (Target(pow2(248) - U256::from(1u8)), initial, true)
            }
        };
        let mut params = ChainParams {
            network,
            target_block_time_ms: block_time_s * 1000,
            asert_half_life_ms: half_life_s * 1000,
            pow_limit,
            initial_bits,
            retarget,
            halving_interval: halving,
            initial_subsidy: fifty,
            dev_account_funds: Amount::from_units(10_000 * COIN),
            min_chain_work: Work::default(),
            bootstrap: Vec::new(),
            genesis: Block {
                header: genesis::placeholder_header(),
                transactions: Vec::new(),
            },
            genesis_hash: BlockHash::default(),
        };
        params.genesis = genesis::build_genesis(&params);
        params.genesis_hash = params.genesis.compute_hash();
        params
    }

    /// Main network parameters.
    pub fn main() -> ChainParams {
        Self::for_network(Network::Main)
    }

    /// Test network parameters.
    pub fn test() -> ChainParams {
        Self::for_network(Network::Test)
    }

    /// Dev network parameters.
    pub fn dev() -> ChainParams {
        Self::for_network(Network::Dev)
    }

    /// Regtest parameters.
    pub fn regtest() -> ChainParams {
        Self::for_network(Network::Regtest)
    }

    /// The genesis block.
    pub fn genesis(&self) -> &Block {
        &self.genesis
    }

    /// The genesis block's hash: the network's identity, signed into every transfer.
    pub fn genesis_hash(&self) -> BlockHash {
        self.genesis_hash
    }

    /// The subsidy of the block at `height`: 50 coins, halved every `halving_interval`
    /// blocks, zero after 64 halvings.
    pub fn block_subsidy(&self, height: Height) -> Amount {
        let halvings = height.0 / self.halving_interval;
        if halvings >= 64 {
            return Amount::ZERO;
        }
        Amount::from_units(self.initial_subsidy.units() >> halvings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsidy_halves_and_ends() {
        let p = ChainParams::main();
        assert_eq!(
            p.block_subsidy(Height(1)),
            Amount::from_units(5_000_000_000)
        );
        assert_eq!(
            p.block_subsidy(Height(209_999)),
            Amount::from_units(5_000_000_000)
        );
        assert_eq!(
            p.block_subsidy(Height(210_000)),
            Amount::from_units(2_500_000_000)
        );
        assert_eq!(p.block_subsidy(Height(210_000 * 33)), Amount::ZERO);
        assert_eq!(p.block_subsidy(Height(u64::MAX)), Amount::ZERO);
        let r = ChainParams::regtest();
        assert_eq!(
            r.block_subsidy(Height(150)),
            Amount::from_units(2_500_000_000)
        );
    }

    #[test]
    fn networks_have_distinct_genesis_and_sane_targets() {
        let all: Vec<_> = Network::ALL
            .into_iter()
            .map(ChainParams::for_network)
            .collect();
        for (i, a) in all.iter().enumerate() {
            let initial = a.initial_bits.to_target().unwrap();
            assert!(initial <= a.pow_limit, "{}", a.network);
            for b in &all[i + 1..] {
                assert_ne!(a.genesis_hash(), b.genesis_hash());
            }
        }
        // Genesis is a constant: building the parameters twice gives the same block.
        assert_eq!(
            ChainParams::dev().genesis_hash(),
            ChainParams::dev().genesis_hash()
        );
    }
}
