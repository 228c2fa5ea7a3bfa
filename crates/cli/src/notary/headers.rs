//! Headers from genesis, fetched from one or more nodes and checked here with the
//! consensus crate ([`HeaderChain`]); the most-work chain that checks is kept. Checked
//! headers are cached in the data directory (`light-headers`, their 88-byte encodings
//! back to back), so the next run fetches only new ones; the cache is checked again
//! when it is read (it is only a file on disk).

use std::path::{Path, PathBuf};

use anyhow::Context;
use oxchain_consensus::ChainParams;
use oxchain_consensus::ConsensusError;
use oxchain_consensus::light::{HeaderChain, HeaderChainError, HeaderFault};
use oxchain_primitives::limits::HEADER_BYTES;
use oxchain_primitives::{Header, decode};

/// Headers per request: the API's most.
const BATCH: u64 = 2_000;

/// Where a network's headers are cached.
pub(crate) fn cache_path(data_dir: &Path, network: oxchain_primitives::Network) -> PathBuf {
    data_dir.join(format!("light-headers-{}", network.name()))
}

/// The most headers a light client takes (about 150 bytes each in memory): a node can
/// serve an endless chain where work is cheap, so the fetch stops here, with an error.
const MAX_HEADERS: u64 = 20_000_000;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The cached headers, checked; a cache that does not check is dropped (with a word on
/// stderr) and the chain starts again from genesis.
pub(crate) fn load_cache(params: &ChainParams, path: &Path) -> HeaderChain {
    let mut chain = HeaderChain::new(params);
    let Ok(bytes) = std::fs::read(path) else {
        return chain;
    };
    let now = now_ms();
    let mut chunks = bytes.chunks(HEADER_BYTES);
    let checked = (|| -> Result<(), String> {
        let first = chunks.next().ok_or("empty")?;
        let genesis: Header = decode(first).map_err(|e| e.to_string())?;
        chain.check_genesis(&genesis).map_err(|e| e.to_string())?;
        for chunk in chunks {
            let header: Header = decode(chunk).map_err(|e| e.to_string())?;
            chain.push(header, now).map_err(|e| e.to_string())?;
        }
        Ok(())
    })();
    if let Err(why) = checked {
        eprintln!(
            "note: the header cache {} does not check ({why}); fetching again from genesis",
            path.display()
        );
        return HeaderChain::new(params);
    }
    chain
}

/// Writes the chain's headers to the cache (a new file, then renamed over the old).
pub(crate) fn save_cache(chain: &HeaderChain, path: &Path) -> anyhow::Result<()> {
    let mut bytes = Vec::with_capacity(chain.headers().len() * HEADER_BYTES);
    for header in chain.headers() {
        bytes.extend_from_slice(&header.to_bytes());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Fetches `node`'s best chain on top of `known`: from the highest height where they
/// agree, which it finds by asking from `known`'s tip and stepping back a batch at a time
/// when the node's header there differs (a reorg since the cache was written).
/// `progress` is called with the height reached. An error says what failed: the node
/// could not be reached, or served what does not check.
pub(crate) fn fetch(
    node: &str,
    known: &HeaderChain,
    progress: &mut dyn FnMut(u64),
) -> Result<HeaderChain, String> {
    let mut chain = known.clone();
    let now = now_ms();
    let get = |from: u64| -> Result<Vec<Header>, String> {
        let path = format!("/v1/headers?from={from}&count={BATCH}");
        match crate::query::get_bytes(node, &path) {
            Ok((200, bytes)) if bytes.len() % HEADER_BYTES == 0 => bytes
                .chunks(HEADER_BYTES)
                .map(decode::<Header>)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{node} served a header that does not decode: {e}")),
            Ok((200, bytes)) => Err(format!(
                "{node} served {} bytes, not a whole number of {HEADER_BYTES}-byte headers",
                bytes.len()
            )),
            Ok((status, _)) => Err(format!(
                "{node} answered {status} to {path} (an oxchain node before /v1/headers?)"
            )),
            Err(e) => Err(format!("{node}: {e:#}")),
        }
    };
    // Find where the node's chain and ours agree.
    loop {
        let from = chain.height();
        let batch = get(from)?;
        let Some(first) = batch.first() else {
            // The node's chain is shorter than ours: agree further down.
            if from == 0 {
                return Err(format!("{node} served no genesis"));
            }
            chain.truncate(from.saturating_sub(BATCH));
            continue;
        };
        if from == 0 {
            if let Err(e) = chain.check_genesis(first) {
                return Err(format!("{node}: {e}"));
            }
        } else if Some(first.compute_hash()) != chain.hash(from) {
            chain.truncate(from.saturating_sub(BATCH));
            continue;
        }
        // Agreed at `from`: the rest extends the chain.
        let mut full = batch.len() as u64 == BATCH;
        let mut rest = batch.into_iter().skip(1).collect::<Vec<_>>();
        loop {
            for header in rest {
                match chain.push(header, now) {
                    Ok(()) => {}
                    // Ahead of this machine's clock: a full node waits for such a block;
                    // the chain below it stands.
                    Err(HeaderChainError {
                        fault: HeaderFault::Rule(ConsensusError::TimeTooNew { .. }),
                        height,
                    }) => {
                        eprintln!(
                            "note: {node}'s header {height} is dated over 2 minutes ahead of this \
                             machine's clock; checked up to {}",
                            chain.height()
                        );
                        return Ok(chain);
                    }
                    Err(e) => return Err(format!("{node} served an invalid chain: {e}")),
                }
            }
            if chain.height() >= MAX_HEADERS {
                return Err(format!(
                    "{node} serves more than {MAX_HEADERS} headers: refused"
                ));
            }
            progress(chain.height());
            if !full {
                return Ok(chain);
            }
            let next = get(chain.height() + 1)?;
            full = next.len() as u64 == BATCH;
            rest = next;
        }
    }
}
