//! Contextual header rules: those that need the parent and its ancestors.

use oxchain_primitives::{Header, Height};

use crate::difficulty::{compute_median_time_past, compute_next_bits};
use crate::error::ConsensusError;
use crate::params::{ChainParams, MAX_FUTURE_BLOCK_TIME_MS};

/// What the rules need to know about the branch a header extends.
#[derive(Debug, Clone, Copy)]
pub struct HeaderContext<'a> {
    /// Height of the parent.
    pub parent_height: Height,
    /// Time of the parent.
    pub parent_time_ms: u64,
    /// Time of the block at height 1 on this branch (the difficulty anchor); not read
    /// when the parent is genesis.
    pub anchor_time_ms: u64,
    /// Times of up to the last 11 blocks, oldest first, ending with the parent.
    pub recent_times_ms: &'a [u64],
    /// The local clock.
    pub now_ms: u64,
}

/// Checks a header against its branch: bits on the difficulty schedule, time after the
/// median time past, and time at most two minutes ahead of the local clock. The last is a
/// [`crate::Fault::RetryLater`], not a fault: the block may become valid.
pub fn accept_header(
    params: &ChainParams,
    header: &Header,
    ctx: &HeaderContext<'_>,
) -> Result<(), ConsensusError> {
    let expected = compute_next_bits(
        params,
        ctx.parent_height,
        ctx.parent_time_ms,
        ctx.anchor_time_ms,
    );
    if header.bits != expected {
        return Err(ConsensusError::WrongBits {
            got: header.bits,
            expected,
        });
    }
    let median_ms = compute_median_time_past(ctx.recent_times_ms);
    if header.time_ms <= median_ms {
        return Err(ConsensusError::TimeTooOld {
            time_ms: header.time_ms,
            median_ms,
        });
    }
    if header.time_ms > ctx.now_ms.saturating_add(MAX_FUTURE_BLOCK_TIME_MS) {
        return Err(ConsensusError::TimeTooNew {
            time_ms: header.time_ms,
            now_ms: ctx.now_ms,
            window_ms: MAX_FUTURE_BLOCK_TIME_MS,
        });
    }
    Ok(())
}
