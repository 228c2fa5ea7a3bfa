//! A light client's chain: headers only, from genesis, each checked with the rules a full
//! node applies to a header (version, link to its parent, proof of work, bits on the
//! difficulty schedule, time after the median of the last eleven and at most two minutes
//! ahead of the local clock). What it cannot check without bodies, it does not claim:
//! a header chain says which blocks the most work was spent on, and a merkle proof then
//! ties a transaction to one of them.

use oxchain_primitives::{BlockHash, Header, Height, Work};

use crate::accept::{HeaderContext, accept_header};
use crate::error::ConsensusError;
use crate::params::{ChainParams, HEADER_VERSION, MEDIAN_TIME_SPAN};
use crate::validate::validate_pow;

/// Why a header does not extend the chain.
#[derive(Debug, thiserror::Error)]
pub enum HeaderFault {
    /// The first header is not this network's genesis.
    #[error("not this network's genesis: {got}, expected {expected}")]
    NotGenesis {
        /// Its hash.
        got: BlockHash,
        /// The network's genesis.
        expected: BlockHash,
    },
    /// A version this client does not know.
    #[error("version {0}, expected {HEADER_VERSION}")]
    Version(u32),
    /// It names another parent than the header below it.
    #[error("its parent is {got}, but the header below it is {expected}")]
    NotLinked {
        /// The parent it names.
        got: BlockHash,
        /// The hash of the header below it.
        expected: BlockHash,
    },
    /// Proof of work, bits or time.
    #[error("{0}")]
    Rule(ConsensusError),
    /// The chain's work passed 2^256.
    #[error("the chain's work overflows")]
    WorkOverflow,
}

/// A header at a height that broke a rule.
#[derive(Debug, thiserror::Error)]
#[error("header at height {height}: {fault}")]
pub struct HeaderChainError {
    /// The height it would have had.
    pub height: u64,
    /// What it broke.
    pub fault: HeaderFault,
}

/// Checked headers from genesis, with each one's hash and the work up to it.
#[derive(Debug, Clone)]
pub struct HeaderChain {
    params: ChainParams,
    headers: Vec<Header>,
    hashes: Vec<BlockHash>,
    /// Cumulative work, genesis included.
    work: Vec<Work>,
}

impl HeaderChain {
    /// The chain of the genesis header alone.
    pub fn new(params: &ChainParams) -> HeaderChain {
        let genesis = params.genesis().header;
        let work = genesis.work().unwrap_or(Work(Default::default()));
        HeaderChain {
            params: params.clone(),
            headers: vec![genesis],
            hashes: vec![params.genesis_hash()],
            work: vec![work],
        }
    }

    /// The height of the last header.
    pub fn height(&self) -> u64 {
        self.headers.len() as u64 - 1
    }

    /// The header at `height`.
    pub fn header(&self, height: u64) -> Option<&Header> {
        self.headers.get(usize::try_from(height).ok()?)
    }

    /// The hash of the header at `height`.
    pub fn hash(&self, height: u64) -> Option<BlockHash> {
        self.hashes.get(usize::try_from(height).ok()?).copied()
    }

    /// The work from genesis up to and including `height`.
    pub fn work(&self, height: u64) -> Option<Work> {
        self.work.get(usize::try_from(height).ok()?).copied()
    }

    /// The work of the whole chain.
    pub fn total_work(&self) -> Work {
        *self.work.last().expect("genesis is always there")
    }

    /// Every header, genesis first.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// Drops the headers above `height` (genesis stays).
    pub fn truncate(&mut self, height: u64) {
        let keep = usize::try_from(height)
            .unwrap_or(usize::MAX)
            .saturating_add(1)
            .max(1);
        self.headers.truncate(keep);
        self.hashes.truncate(keep);
        self.work.truncate(keep);
    }

    /// Checks `header` against the chain's tip and appends it. `now_ms` is the local
    /// clock. For the first header after `new`, a copy of genesis is accepted as itself.
    pub fn push(&mut self, header: Header, now_ms: u64) -> Result<(), HeaderChainError> {
        let height = self.height() + 1;
        let fail = |fault| Err(HeaderChainError { height, fault });
        if header.version != HEADER_VERSION {
            return fail(HeaderFault::Version(header.version));
        }
        let parent = *self.hashes.last().expect("genesis is always there");
        if header.prev_hash != parent {
            return fail(HeaderFault::NotLinked {
                got: header.prev_hash,
                expected: parent,
            });
        }
        // Cheap before expensive: the hash against its own target first.
        if let Err(e) = validate_pow(&self.params, &header) {
            return fail(HeaderFault::Rule(e));
        }
        let start = self.headers.len().saturating_sub(MEDIAN_TIME_SPAN);
        let recent: Vec<u64> = self.headers[start..].iter().map(|h| h.time_ms).collect();
        let ctx = HeaderContext {
            parent_height: Height(height - 1),
            parent_time_ms: self.headers[self.headers.len() - 1].time_ms,
            anchor_time_ms: self.headers.get(1).map_or(0, |h| h.time_ms),
            recent_times_ms: &recent,
            now_ms,
        };
        if let Err(e) = accept_header(&self.params, &header, &ctx) {
            return fail(HeaderFault::Rule(e));
        }
        let work = header
            .work()
            .and_then(|w| self.total_work().checked_add(w))
            .ok_or_else(|| HeaderChainError {
                height,
                fault: HeaderFault::WorkOverflow,
            })?;
        self.hashes.push(header.compute_hash());
        self.headers.push(header);
        self.work.push(work);
        Ok(())
    }

    /// Checks that `header` is this network's genesis (the first header a node serves).
    pub fn check_genesis(&self, header: &Header) -> Result<(), HeaderChainError> {
        let got = header.compute_hash();
        if got != self.hashes[0] {
            return Err(HeaderChainError {
                height: 0,
                fault: HeaderFault::NotGenesis {
                    got,
                    expected: self.hashes[0],
                },
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header on top of `chain`, mined, `gap_ms` after its tip.
    fn next(chain: &HeaderChain, params: &ChainParams, gap_ms: u64) -> Header {
        let parent = chain.header(chain.height()).unwrap();
        let height = chain.height();
        let mut header = Header {
            version: HEADER_VERSION,
            prev_hash: chain.hash(height).unwrap(),
            merkle_root: parent.merkle_root,
            time_ms: parent.time_ms + gap_ms,
            bits: crate::difficulty::compute_next_bits(
                params,
                Height(height),
                parent.time_ms,
                chain.header(1).map_or(0, |h| h.time_ms),
            ),
            nonce: 0,
        };
        while validate_pow(params, &header).is_err() {
            header.nonce += 1;
        }
        header
    }

    #[test]
    fn headers_on_the_rules_extend_and_others_are_named() {
        let params = ChainParams::regtest();
        let mut chain = HeaderChain::new(&params);
        let now = u64::MAX / 2;
        for _ in 0..20 {
            let h = next(&chain, &params, 1_000);
            chain.push(h, now).unwrap();
        }
        assert_eq!(chain.height(), 20);
        assert!(chain.total_work() > chain.work(10).unwrap());

        let good = next(&chain, &params, 1_000);
        let mut unlinked = good;
        unlinked.prev_hash = chain.hash(5).unwrap();
        let mut easy = good;
        easy.bits = oxchain_primitives::CompactTarget(0x2100_ffff);
        let mut old = good;
        old.time_ms = chain.header(15).unwrap().time_ms;
        let mut version = good;
        version.version = 2;
        for (bad, says) in [
            (unlinked, "its parent is"),
            (easy, ""),
            (old, ""),
            (version, "version 2"),
        ] {
            let err = chain.push(bad, now).unwrap_err();
            assert_eq!(err.height, 21);
            assert!(err.to_string().contains(says), "{err}");
        }
        assert_eq!(chain.height(), 20, "nothing bad was kept");
        chain.push(good, now).unwrap();
        chain.truncate(3);
        assert_eq!(chain.height(), 3);
        assert!(chain.check_genesis(&params.genesis().header).is_ok());
        assert!(chain.check_genesis(&good).is_err());
    }
}
