//! Merkle trees over txids in the style of RFC 6962 (Certificate Transparency): leaves are
//! hashed as SHA-256(0x00 || txid), inner nodes as SHA-256(0x01 || left || right), and a
//! node without a sibling is promoted unchanged to the next level. The prefixes keep a leaf
//! from ever being taken for an inner node, and promotion (instead of Bitcoin's duplication
//! of the last node) means no two different txid lists share a root.
//!
//! Building level by level with promotion gives the same tree as RFC 6962's recursive split
//! at the largest power of two below the leaf count.

use sha2::{Digest, Sha256};

use crate::hash::{MerkleRoot, Txid};
use crate::limits::MAX_MERKLE_PROOF_LEN;

fn leaf_hash(txid: &Txid) -> [u8; 32] {
    Sha256::new()
        .chain_update([0x00])
        .chain_update(txid.0)
        .finalize()
        .into()
}

fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    Sha256::new()
        .chain_update([0x01])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

fn next_level(level: &[[u8; 32]]) -> Vec<[u8; 32]> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [l, r] => node_hash(l, r),
            [only] => *only,
            _ => unreachable!("chunks(2) yields one or two items"),
        })
        .collect()
}

/// The merkle root over `txids`. The root of no txids is SHA-256 of nothing, as in RFC 6962
/// (a valid block always has at least its coinbase).
pub fn compute_root(txids: &[Txid]) -> MerkleRoot {
    if txids.is_empty() {
        return MerkleRoot(crate::hash::sha256(&[]));
    }
    let mut level: Vec<[u8; 32]> = txids.iter().map(leaf_hash).collect();
    while level.len() > 1 {
        level = next_level(&level);
    }
    MerkleRoot(level[0])
}

/// Proof that a txid is under a merkle root. What it proves is inclusion: `index` and
/// `leaf_count` shape the path, but the root does not commit to them, so another pair that
/// gives the same path shape verifies too. Take the position from the block, not from the
/// proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleProof {
    /// Position of the txid in the block.
    pub index: u32,
    /// Number of txids in the block.
    pub leaf_count: u32,
    /// Sibling hashes from the leaf level up; promoted levels contribute nothing.
    pub path: Vec<[u8; 32]>,
}

impl MerkleProof {
    /// The proof for the txid at `index`, or `None` if `index` is out of range.
    pub fn compute(txids: &[Txid], index: usize) -> Option<MerkleProof> {
        if index >= txids.len() {
            return None;
        }
        let leaf_count = u32::try_from(txids.len()).ok()?;
        let mut level: Vec<[u8; 32]> = txids.iter().map(leaf_hash).collect();
        let mut i = index;
        let mut path = Vec::new();
        while level.len() > 1 {
            let sibling = i ^ 1;
            if sibling < level.len() {
                path.push(level[sibling]);
            }
            level = next_level(&level);
            i /= 2;
        }
        Some(MerkleProof {
            index: index as u32,
            leaf_count,
            path,
        })
    }

    /// Whether this proof puts `txid` under `root`.
    pub fn verify(&self, txid: &Txid, root: &MerkleRoot) -> bool {
        if self.index >= self.leaf_count || self.path.len() > MAX_MERKLE_PROOF_LEN {
            return false;
        }
        let mut hash = leaf_hash(txid);
        let (mut i, mut count) = (self.index as u64, self.leaf_count as u64);
        let mut siblings = self.path.iter();
        while count > 1 {
            if i % 2 == 1 {
                let Some(left) = siblings.next() else {
                    return false;
                };
                hash = node_hash(left, &hash);
            } else if i + 1 < count {
                let Some(right) = siblings.next() else {
                    return false;
                };
                hash = node_hash(&hash, right);
            }
            i /= 2;
            count = count.div_ceil(2);
        }
        siblings.next().is_none() && hash == root.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn txids(n: usize) -> Vec<Txid> {
        (0..n)
            .map(|i| Txid(crate::hash::sha256(&(i as u64).to_le_bytes())))
            .collect()
    }

    /// RFC 6962 section 2.1, written as the recursive definition.
    fn rfc6962_root(leaves: &[Txid]) -> [u8; 32] {
        match leaves.len() {
            0 => crate::hash::sha256(&[]),
            1 => leaf_hash(&leaves[0]),
            n => {
                // k is the largest power of two smaller than n.
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                node_hash(&rfc6962_root(&leaves[..k]), &rfc6962_root(&leaves[k..]))
            }
        }
    }

    #[test]
    fn matches_the_recursive_definition() {
        for n in 0..70 {
            let t = txids(n);
            assert_eq!(compute_root(&t).0, rfc6962_root(&t), "n = {n}");
        }
    }

    #[test]
    fn known_small_trees() {
        let t = txids(3);
        let expected = node_hash(
            &node_hash(&leaf_hash(&t[0]), &leaf_hash(&t[1])),
            &leaf_hash(&t[2]),
        );
        assert_eq!(compute_root(&t).0, expected);
        assert_eq!(compute_root(&t[..1]).0, leaf_hash(&t[0]));
    }

    #[test]
    fn rejects_a_proof_for_the_wrong_position_or_root() {
        let t = txids(7);
        let root = compute_root(&t);
        let proof = MerkleProof::compute(&t, 4).unwrap();
        assert!(proof.verify(&t[4], &root));
        assert!(!proof.verify(&t[5], &root));
        assert!(
            !MerkleProof {
                index: 5,
                ..proof.clone()
            }
            .verify(&t[4], &root)
        );
        // A count that changes the tree's shape at this position breaks the proof. (The count
        // is not committed anywhere, so one that keeps the shape, such as 8 here, verifies.)
        assert!(
            !MerkleProof {
                leaf_count: 5,
                ..proof.clone()
            }
            .verify(&t[4], &root)
        );
        let mut long = proof.clone();
        long.path.push([0; 32]);
        assert!(!long.verify(&t[4], &root));
        assert!(MerkleProof::compute(&t, 7).is_none());
    }

    proptest! {
        #[test]
        fn every_leaf_proves(n in 1usize..300, pick in any::<prop::sample::Index>()) {
            let t = txids(n);
            let root = compute_root(&t);
            let i = pick.index(n);
            let proof = MerkleProof::compute(&t, i).unwrap();
            prop_assert!(proof.verify(&t[i], &root));
            prop_assert!(proof.path.len() <= MAX_MERKLE_PROOF_LEN);
        }
    }
}
