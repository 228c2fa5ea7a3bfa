//! Ed25519 verification of transfer signatures, single and batched, under ZIP-215 rules.
//!
//! ZIP-215 makes single and batch verification accept exactly the same signatures: keys
//! and R may be non-canonically encoded, s must be below the group order, and both checks
//! are cofactored (`[8][s]B = [8]R + [8][k]A`). The equations here are the ones
//! `ed25519-zebra` uses, written over `curve25519-dalek` so that decoded keys can be
//! cached across blocks ([`KeyCache`]): decoding a key is a field square root, about a
//! quarter of the cost of a batched verification. Tests check every path against
//! `ed25519-zebra` on random and adversarial inputs (docs/adr/0003).
//!
//! A block is verified in one batch; only if the batch fails is each signature checked
//! alone, to name the culprit. Sender keys must first pass
//! [`crate::validate::validate_transfer`] (no weak keys).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use oxchain_primitives::{Block, BlockHash, Transaction, Transfer, Txid};
use rand::Rng;
use sha2::{Digest, Sha512};

use crate::error::ConsensusError;

/// A public key, a signature and the 32-byte message it signs.
pub type SignedMessage = ([u8; 32], [u8; 64], [u8; 32]);

/// Decoded public keys, so that a sender seen before (in the mempool, in an earlier
/// block) is not decoded again. Bounded: two generations of at most `capacity / 2` keys;
/// when the newer fills, the older is dropped, so recently used keys stay.
#[derive(Debug)]
pub struct KeyCache {
    newer: HashMap<[u8; 32], EdwardsPoint>,
    older: HashMap<[u8; 32], EdwardsPoint>,
    generation: usize,
}

impl KeyCache {
    /// Keys a node keeps by default: 65,536 (about 13 MB).
    pub const DEFAULT_CAPACITY: usize = 1 << 16;

    /// A cache of at most `capacity` keys; 0 disables caching.
    pub fn new(capacity: usize) -> KeyCache {
        KeyCache {
            newer: HashMap::new(),
            older: HashMap::new(),
            generation: capacity / 2,
        }
    }

    /// Decodes `key`, from the cache when it is there. `None`: not a curve point.
    fn decode(&mut self, key: &[u8; 32]) -> Option<EdwardsPoint> {
        if self.generation == 0 {
            return CompressedEdwardsY(*key).decompress();
        }
        if let Some(point) = self.newer.get(key) {
            return Some(*point);
        }
        let point = match self.older.remove(key) {
            Some(point) => point,
            None => CompressedEdwardsY(*key).decompress()?,
        };
        if self.newer.len() >= self.generation {
            self.older = std::mem::take(&mut self.newer);
        }
        self.newer.insert(*key, point);
        Some(point)
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.newer.len() + self.older.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache::new(Self::DEFAULT_CAPACITY)
    }
}

/// Txids whose signatures were verified already (on mempool entry), so that a block
/// carrying them does not check them again. A txid covers the whole transfer, signature
/// included, so a hit stands for exactly the bytes that were checked; the signing hash
/// commits to one network's genesis, and a cache belongs to one chain. Bounded like
/// [`KeyCache`]: two generations of at most `capacity / 2` txids (about 100 bytes each).
/// A miss (evicted, restarted, never seen) only costs a check.
#[derive(Debug)]
pub struct SigCache {
    inner: Mutex<SigGenerations>,
}

#[derive(Debug, Default)]
struct SigGenerations {
    newer: HashSet<Txid>,
    older: HashSet<Txid>,
    generation: usize,
}

impl SigCache {
    /// Txids a node keeps by default: 131,072 (more than the mempool's 50,000
    /// transfers, so that a full mempool mined over a few blocks still hits).
    pub const DEFAULT_CAPACITY: usize = 1 << 17;

    /// A cache of at most `capacity` txids; 0 disables it.
    pub fn new(capacity: usize) -> SigCache {
        SigCache {
            inner: Mutex::new(SigGenerations {
                generation: capacity / 2,
                ..Default::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SigGenerations> {
        // A set of txids cannot be left half-changed in a way that matters: a panic
        // elsewhere leaves at worst a missing entry.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that the signatures of `txids` are good.
    pub fn insert(&self, txids: impl IntoIterator<Item = Txid>) {
        let mut g = self.lock();
        if g.generation == 0 {
            return;
        }
        for txid in txids {
            if g.newer.len() >= g.generation {
                g.older = std::mem::take(&mut g.newer);
            }
            g.newer.insert(txid);
        }
    }

    /// Whether `txid`'s signature was verified.
    pub fn contains(&self, txid: &Txid) -> bool {
        let g = self.lock();
        g.newer.contains(txid) || g.older.contains(txid)
    }

    /// For each of `txids`, whether its signature was verified (one lock for all).
    pub fn contains_all(&self, txids: &[Txid]) -> Vec<bool> {
        let g = self.lock();
        txids
            .iter()
            .map(|t| g.newer.contains(t) || g.older.contains(t))
            .collect()
    }

    /// Txids held.
    pub fn len(&self) -> usize {
        let g = self.lock();
        g.newer.len() + g.older.len()
    }

    /// Whether no txid is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for SigCache {
    fn default() -> Self {
        SigCache::new(Self::DEFAULT_CAPACITY)
    }
}

/// The challenge `k = SHA-512(R || A || message) mod l`.
fn challenge(r: &[u8], key: &[u8; 32], message: &[u8; 32]) -> Scalar {
    Scalar::from_hash(
        Sha512::new()
            .chain_update(r)
            .chain_update(key)
            .chain_update(message),
    )
}

/// The parts of a signature every check needs: R decoded, s canonical, and k.
fn parse(
    signature: &[u8; 64],
    key: &[u8; 32],
    message: &[u8; 32],
) -> Option<(EdwardsPoint, Scalar, Scalar)> {
    let (r_bytes, s_bytes) = signature.split_at(32);
    let r = CompressedEdwardsY::from_slice(r_bytes).ok()?.decompress()?;
    let s_bytes: [u8; 32] = s_bytes.try_into().ok()?;
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    Some((r, s, challenge(r_bytes, key, message)))
}

/// One signature: `[8]R == [8]([s]B - [k]A)`.
fn check_one(cache: &mut KeyCache, (key, signature, message): &SignedMessage) -> bool {
    let Some(a) = cache.decode(key) else {
        return false;
    };
    let Some((r, s, k)) = parse(signature, key, message) else {
        return false;
    };
    let r_prime = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &(-a), &s);
    (r - r_prime).mul_by_cofactor().is_identity()
}

/// Verifies signed messages in one batch: with random 128-bit z_i,
/// `[8](-(sum z_i s_i) B + sum z_i R_i + sum (z_i k_i) A_i) == 0`, the A terms of one key
/// merged. On failure, returns the index of the first item that fails on its own.
pub fn verify_batch(cache: &mut KeyCache, items: &[SignedMessage]) -> Result<(), usize> {
    let first_bad = |cache: &mut KeyCache| items.iter().position(|item| !check_one(cache, item));
    match items.len() {
        0 => return Ok(()),
        1 => return first_bad(cache).map_or(Ok(()), Err),
        _ => {}
    }
    let mut rng = rand::rng();
    let mut scalars = Vec::with_capacity(2 * items.len() + 1);
    let mut points = Vec::with_capacity(2 * items.len() + 1);
    scalars.push(Scalar::ZERO);
    points.push(ED25519_BASEPOINT_POINT);
    let mut b_coefficient = Scalar::ZERO;
    // Position of each key's A term, so that a sender's signatures share one point.
    let mut key_slot: HashMap<&[u8; 32], usize> = HashMap::with_capacity(items.len());
    for (key, signature, message) in items {
        let (Some(a), Some((r, s, k))) = (cache.decode(key), parse(signature, key, message)) else {
            return first_bad(cache).map_or(Ok(()), Err);
        };
        let z = Scalar::from((u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64()));
        b_coefficient -= z * s;
        scalars.push(z);
        points.push(r);
        let zk = z * k;
        match key_slot.get(key) {
            Some(&slot) => scalars[slot] += zk,
            None => {
                key_slot.insert(key, scalars.len());
                scalars.push(zk);
                points.push(a);
            }
        }
    }
    scalars[0] = b_coefficient;
    let check = EdwardsPoint::vartime_multiscalar_mul(&scalars, &points);
    if check.mul_by_cofactor().is_identity() {
        return Ok(());
    }
    // ZIP-215: a failed batch has at least one item that fails alone.
    first_bad(cache).map_or(Ok(()), Err)
}

/// Verifies one transfer's signature for the network of `genesis`.
pub fn verify_transfer(
    cache: &mut KeyCache,
    genesis: &BlockHash,
    transfer: &Transfer,
    txid: Txid,
) -> Result<(), ConsensusError> {
    let item = (
        transfer.from.0,
        transfer.signature.0,
        transfer.signing_hash(genesis),
    );
    if check_one(cache, &item) {
        Ok(())
    } else {
        Err(ConsensusError::BadSignature { txid })
    }
}

/// Verifies every transfer signature of a block in one batch, except those whose txids
/// `verified` holds (checked on mempool entry). `txids` are the block's txids in order
/// (from [`crate::validate::validate_block`]).
pub fn verify_block_signatures(
    cache: &mut KeyCache,
    verified: &SigCache,
    genesis: &BlockHash,
    block: &Block,
    txids: &[Txid],
) -> Result<(), ConsensusError> {
    // Never trust the caller's txids to cover every transaction.
    let computed;
    let txids = if txids.len() == block.transactions.len() {
        txids
    } else {
        computed = block.compute_txids();
        &computed
    };
    let known = verified.contains_all(txids);
    let mut items = Vec::with_capacity(block.transactions.len());
    let mut item_txids = Vec::with_capacity(block.transactions.len());
    for ((tx, txid), known) in block.transactions.iter().zip(txids).zip(known) {
        if let Transaction::Transfer(t) = tx
            && !known
        {
            items.push((t.from.0, t.signature.0, t.signing_hash(genesis)));
            item_txids.push(*txid);
        }
    }
    verify_batch(cache, &items).map_err(|i| ConsensusError::BadSignature {
        txid: item_txids[i],
    })
}
