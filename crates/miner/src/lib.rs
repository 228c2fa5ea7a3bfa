//! oxchain's proof-of-work search.
//!
//! # Layout
//! - [`sha256`]: the header's midstate and the padded second blocks; the portable hash.
//! - `shani` (x86-64 only): SHA-256d of several nonces at once with the SHA extensions.
//! - [`search`]: the nonce search over one header on the fastest path the CPU has, with
//!   a stop check and a hash counter every [`search::CHECK_EVERY`] nonces.
//! - [`pool`]: [`Miner`], a pool of threads over disjoint nonce ranges, cancelled by a
//!   [`CancelToken`] (an epoch, no global flag), refreshing the time when a range runs out,
//!   and counting hashes per thread for the hash rate.
//! - [`mode`]: [`MiningMode`]: off, on-demand, continuous, pool:N.
//! - [`service`]: the mining loop on its own thread: templates from the chain, the
//!   search, blocks submitted, requests for blocks answered ([`MiningHandle`]).

pub mod mode;
pub mod pool;
pub mod search;
pub mod service;
pub mod sha256;
#[cfg(target_arch = "x86_64")]
mod shani;

pub use mode::MiningMode;
pub use pool::{CancelToken, Canceller, MinedBlock, Miner};
pub use search::Path;
pub use service::{MineError, Mined, MiningHandle};
