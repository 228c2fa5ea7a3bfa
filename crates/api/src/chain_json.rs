//! The whole best chain in the tutorials' JSON, streamed (`/chain`, `/nodes/resolve`).
//!
//! One store snapshot is read from genesis to its tip on a blocking thread and sent in
//! chunks of about [`CHUNK_BYTES`] through a channel of [`CHUNKS_IN_FLIGHT`], so memory
//! stays flat whatever the chain's length, and the answer is one chain even if a reorg
//! lands while it is sent. A block's JSON never changes (its height is fixed by its hash),
//! so the JSON of recent blocks is kept ([`BlockJsonCache`], at most [`CACHE_BYTES`]): a
//! chain asked for again is mostly copied, not rebuilt.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use hashlink::LruCache;
use oxchain_primitives::{BlockHash, Height, Network};
use oxchain_storage::{Snapshot, Store, StoreError};

use crate::error::ApiError;
use crate::state::AppState;
use crate::views::TutorialBlock;

/// The size of the pieces the answer is sent in.
const CHUNK_BYTES: usize = 64 * 1024;
/// Pieces made ahead of a slow reader.
const CHUNKS_IN_FLIGHT: usize = 4;
/// The JSON of recent blocks kept, in bytes.
pub(crate) const CACHE_BYTES: usize = 8 << 20;

/// Blocks' tutorial JSON by hash, least recently used dropped first.
pub(crate) struct BlockJsonCache {
    inner: Mutex<Cached>,
}

struct Cached {
    blocks: LruCache<BlockHash, Bytes>,
    bytes: usize,
}

impl BlockJsonCache {
    pub(crate) fn new() -> BlockJsonCache {
        BlockJsonCache {
            inner: Mutex::new(Cached {
                blocks: LruCache::new_unbounded(),
                bytes: 0,
            }),
        }
    }

    fn get(&self, hash: &BlockHash) -> Option<Bytes> {
        let mut cached = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        cached.blocks.get(hash).cloned()
    }

    fn insert(&self, hash: BlockHash, json: Bytes) {
        if json.len() > CACHE_BYTES / 4 {
            return;
        }
        let mut cached = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        cached.bytes += json.len();
        if let Some(old) = cached.blocks.insert(hash, json) {
            cached.bytes -= old.len();
        }
        while cached.bytes > CACHE_BYTES {
            match cached.blocks.remove_lru() {
                Some((_, old)) => cached.bytes -= old.len(),
                None => break,
            }
        }
    }

    /// The JSON of the best-chain block at `height` in `snapshot`.
    fn block_json(
        &self,
        snapshot: &Snapshot,
        network: Network,
        height: u64,
    ) -> Result<Bytes, StoreError> {
        let missing = || StoreError::Corrupt(format!("no best-chain block at height {height}"));
        let hash = snapshot.hash_at(Height(height))?.ok_or_else(missing)?;
        if let Some(json) = self.get(&hash) {
            return Ok(json);
        }
        let block = snapshot.block(&hash)?.ok_or_else(missing)?;
        let json = Bytes::from(
            serde_json::to_vec(&TutorialBlock::new(network, height, &block))
                .map_err(|e| StoreError::Corrupt(format!("block {hash} as JSON: {e}")))?,
        );
        self.insert(hash, json.clone());
        Ok(json)
    }
}

/// Answers `open` + `[` every best-chain block `]` + `close(number of blocks)`, as JSON.
/// The snapshot is taken before answering: a store that cannot be read is an error
/// answer; a failure later can only cut the answer short.
pub(crate) async fn stream(
    state: &AppState,
    open: String,
    close: impl FnOnce(u64) -> String + Send + 'static,
) -> Result<Response, ApiError> {
    let body = body(
        state.inner.store.clone(),
        state.network(),
        state.inner.chain_json.clone(),
        open,
        close,
    )
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn body(
    store: Store,
    network: Network,
    cache: Arc<BlockJsonCache>,
    open: String,
    close: impl FnOnce(u64) -> String + Send + 'static,
) -> Result<Body, ApiError> {
    let (chunks, mut receiver) =
        tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(CHUNKS_IN_FLIGHT);
    let (ready, started) = tokio::sync::oneshot::channel::<Result<(), ApiError>>();
    tokio::task::spawn_blocking(move || {
        let opened = store.snapshot().and_then(|s| s.tip().map(|tip| (s, tip)));
        let (snapshot, tip) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                let _ = ready.send(Err(e.into()));
                return;
            }
        };
        if ready.send(Ok(())).is_err() {
            return;
        }
        let mut out = BytesMut::with_capacity(CHUNK_BYTES + 1024);
        out.extend_from_slice(open.as_bytes());
        out.extend_from_slice(b"[");
        for height in 0..=tip.height.0 {
            if height > 0 {
                out.extend_from_slice(b",");
            }
            match cache.block_json(&snapshot, network, height) {
                Ok(json) => out.extend_from_slice(&json),
                Err(e) => {
                    tracing::warn!("GET /chain cut short at height {height}: {e}");
                    let _ = chunks.blocking_send(Err(std::io::Error::other(e)));
                    return;
                }
            }
            if out.len() >= CHUNK_BYTES && chunks.blocking_send(Ok(out.split().freeze())).is_err() {
                return; // The client went away.
            }
        }
        out.extend_from_slice(b"]");
        out.extend_from_slice(close(tip.height.0 + 1).as_bytes());
        let _ = chunks.blocking_send(Ok(out.freeze()));
    });
    started.await.map_err(ApiError::internal)??;
    Ok(Body::from_stream(futures_util::stream::poll_fn(
        move |cx| receiver.poll_recv(cx),
    )))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::tutorial::ChainAnswer;
    use oxchain_chain::{Chain, MempoolLimits};
    use oxchain_consensus::ChainParams;
    use oxchain_primitives::Address;
    use oxchain_testkit::{ChainBuilder, dev_account_key, signed_transfer};

    /// The streamed answer is byte for byte what serializing the whole chain gave, from
    /// the store and from the cache, and a bare array for `format=array`.
    #[tokio::test]
    async fn the_stream_is_the_whole_answer_byte_for_byte() {
        let params = ChainParams::regtest();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &params).unwrap();
        let mut chain =
            Chain::new(params.clone(), store.clone(), MempoolLimits::default(), 1).unwrap();
        let mut builder = ChainBuilder::regtest();
        let genesis = builder.genesis_hash();
        let alice = dev_account_key("alice");
        let mut nonce = 0;
        for _ in 0..40 {
            // Enough blocks and transfers that the answer takes several chunks.
            let transfers = (0..30)
                .map(|_| {
                    nonce += 1;
                    signed_transfer(&genesis, &alice, Address([7; 20]), 5, 200, nonce - 1)
                })
                .collect();
            let block = builder.build_block(transfers);
            builder.push(block.clone()).unwrap();
            let now = block.header.time_ms;
            assert!(matches!(
                chain.process_block(block, now).unwrap(),
                oxchain_chain::BlockOutcome::Extended { .. }
            ));
        }
        let network = params.network;
        let blocks: Vec<TutorialBlock> = (0..=40)
            .map(|h| {
                let hash = store.hash_at(Height(h)).unwrap().unwrap();
                TutorialBlock::new(network, h, &store.block(&hash).unwrap().unwrap())
            })
            .collect();
        let answer = ChainAnswer {
            length: blocks.len(),
            chain: blocks,
        };
        let whole = serde_json::to_vec(&answer).unwrap();
        assert!(whole.len() > 2 * CHUNK_BYTES, "{} bytes", whole.len());
        let cache = Arc::new(BlockJsonCache::new());
        for _ in 0..2 {
            let body = body(
                store.clone(),
                network,
                cache.clone(),
                r#"{"chain":"#.into(),
                |n| format!(r#","length":{n}}}"#),
            )
            .await
            .unwrap();
            let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            assert_eq!(bytes.as_ref(), whole.as_slice());
        }
        let body = body(store, network, cache, String::new(), |_| String::new())
            .await
            .unwrap();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        assert_eq!(
            bytes.as_ref(),
            serde_json::to_vec(&answer.chain).unwrap().as_slice()
        );
    }
}
