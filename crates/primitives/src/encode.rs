//! The canonical byte encoding of every consensus type, in this one module.
//!
//! Integers are little-endian and fixed width; lengths and counts are unsigned LEB128
//! varints that must be minimal. Hashes, keys, addresses and signatures are their raw
//! bytes. Decoding is strict: every length is checked against its limit before anything is
//! allocated, a value must use all of its input (no trailing bytes), and no input makes the
//! decoder panic. Hashes are only ever taken over these bytes. `docs/protocol.md` gives the
//! layouts with a worked example.

use crate::account::{Account, BlockUndo};
use crate::address::Address;
use crate::amount::Amount;
use crate::block::{Block, Header, Height};
use crate::hash::{BlockHash, MerkleRoot, Txid};
use crate::keys::{PublicKey, Signature};
use crate::limits::{
    HEADER_BYTES, MAX_BLOCK_BYTES, MAX_BLOCK_TXS, MAX_TX_DATA_BYTES, MAX_UNDO_ENTRIES, MIN_TX_BYTES,
};
use crate::target::CompactTarget;
use crate::tx::{Coinbase, Transaction, Transfer};

/// Tag byte of a coinbase transaction.
pub const TAG_COINBASE: u8 = 0;
/// Tag byte of a transfer.
pub const TAG_TRANSFER: u8 = 1;

/// Encoded size of a transfer without its data and the data's length varint:
/// tag 1, from 32, to 20, amount 8, fee 8, nonce 8, signature 64.
pub const TRANSFER_FIXED_BYTES: usize = 1 + 32 + 20 + 8 + 8 + 8 + 64;

/// Bytes that are not a valid encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended inside a value.
    #[error("unexpected end of input: needed {needed} more bytes at offset {offset}")]
    UnexpectedEnd {
        /// Where the missing bytes start.
        offset: usize,
        /// How many bytes were missing.
        needed: usize,
    },
    /// Bytes left over after the value.
    #[error("{count} trailing bytes after the value")]
    TrailingBytes {
        /// How many bytes were left.
        count: usize,
    },
    /// A varint with a redundant trailing zero group.
    #[error("non-minimal varint at offset {offset}")]
    NonMinimalVarint {
        /// Where the varint starts.
        offset: usize,
    },
    /// A varint above `u64::MAX`.
    #[error("varint at offset {offset} overflows 64 bits")]
    VarintOverflow {
        /// Where the varint starts.
        offset: usize,
    },
    /// A length or count above its limit.
    #[error("{what} of {len} exceeds the limit of {max}")]
    TooLong {
        /// Which length.
        what: &'static str,
        /// The length found.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// An unknown tag byte.
    #[error("unknown {what} tag {tag}")]
    UnknownTag {
        /// What the tag selects.
        what: &'static str,
        /// The tag found.
        tag: u8,
    },
}

/// A type with a canonical encoding.
pub trait Encode {
    /// Appends the encoding to `out`.
    fn encode_to(&self, out: &mut Vec<u8>);
    /// The length of the encoding in bytes.
    fn encoded_size(&self) -> usize;
}

/// A type that can be decoded from its canonical encoding.
pub trait Decode: Sized {
    /// Reads one value from `r`.
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// The canonical encoding of `value`.
pub fn encode<T: Encode + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.encoded_size());
    value.encode_to(&mut out);
    out
}

/// Decodes one value that must span all of `bytes`.
pub fn decode<T: Decode>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut r = Reader::new(bytes);
    let value = T::decode_from(&mut r)?;
    r.finish()?;
    Ok(value)
}

/// A cursor over input bytes.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Fails unless every byte was read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::UnexpectedEnd {
                offset: self.pos,
                needed: n - self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Reads `N` bytes.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads a little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_le_bytes)
    }

    /// Reads a little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_le_bytes)
    }

    /// Reads a minimal unsigned LEB128 varint.
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if i == 9 && byte > 0x01 {
                return Err(DecodeError::VarintOverflow { offset: start });
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                if byte == 0 && i > 0 {
                    return Err(DecodeError::NonMinimalVarint { offset: start });
                }
                return Ok(value);
            }
        }
        Err(DecodeError::VarintOverflow { offset: start })
    }

    /// Reads a varint length and checks it against `max` before anything is allocated.
    pub fn length(&mut self, what: &'static str, max: usize) -> Result<usize, DecodeError> {
        let len = self.varint()?;
        if len > max as u64 {
            return Err(DecodeError::TooLong {
                what,
                len,
                max: max as u64,
            });
        }
        Ok(len as usize)
    }

    /// Reads a length-prefixed byte string of at most `max` bytes.
    pub fn bytes(&mut self, what: &'static str, max: usize) -> Result<Vec<u8>, DecodeError> {
        let len = self.length(what, max)?;
        Ok(self.take(len)?.to_vec())
    }
}

/// Appends `value` as an unsigned LEB128 varint.
pub fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The encoded length of a varint.
pub fn varint_size(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

// ---- hashes, keys, amounts -------------------------------------------------------------

macro_rules! fixed_bytes {
    ($($ty:ident: $n:expr),* $(,)?) => {$(
        impl Encode for $ty {
            fn encode_to(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.0);
            }
            fn encoded_size(&self) -> usize {
                $n
            }
        }
        impl Decode for $ty {
            fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                r.array().map($ty)
            }
        }
    )*};
}

fixed_bytes!(BlockHash: 32, Txid: 32, MerkleRoot: 32, PublicKey: 32, Address: 20, Signature: 64);

impl Encode for Amount {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.units().to_le_bytes());
    }
    fn encoded_size(&self) -> usize {
        8
    }
}

impl Decode for Amount {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.u64().map(Amount::from_units)
    }
}

// ---- header and block ------------------------------------------------------------------

/// The 88 header bytes: version u32, prev_hash, merkle_root, time_ms u64, bits u32,
/// nonce u64.
pub(crate) fn header_bytes(h: &Header) -> [u8; HEADER_BYTES] {
    let mut out = [0u8; HEADER_BYTES];
    out[0..4].copy_from_slice(&h.version.to_le_bytes());
    out[4..36].copy_from_slice(&h.prev_hash.0);
    out[36..68].copy_from_slice(&h.merkle_root.0);
    out[68..76].copy_from_slice(&h.time_ms.to_le_bytes());
    out[76..80].copy_from_slice(&h.bits.0.to_le_bytes());
    out[80..88].copy_from_slice(&h.nonce.to_le_bytes());
    out
}

impl Encode for Header {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&header_bytes(self));
    }
    fn encoded_size(&self) -> usize {
        HEADER_BYTES
    }
}

impl Decode for Header {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Header {
            version: r.u32()?,
            prev_hash: BlockHash::decode_from(r)?,
            merkle_root: MerkleRoot::decode_from(r)?,
            time_ms: r.u64()?,
            bits: CompactTarget(r.u32()?),
            nonce: r.u64()?,
        })
    }
}

impl Encode for Block {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.header.encode_to(out);
        write_varint(out, self.transactions.len() as u64);
        for tx in &self.transactions {
            tx.encode_to(out);
        }
    }
    fn encoded_size(&self) -> usize {
        HEADER_BYTES
            + varint_size(self.transactions.len() as u64)
            + self
                .transactions
                .iter()
                .map(Encode::encoded_size)
                .sum::<usize>()
    }
}

impl Decode for Block {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.position();
        let header = Header::decode_from(r)?;
        let count = r.length("transaction count", MAX_BLOCK_TXS)?;
        // Never trust the count for the allocation: each transaction needs input bytes.
        let mut transactions = Vec::with_capacity(count.min(r.remaining() / MIN_TX_BYTES));
        for _ in 0..count {
            transactions.push(Transaction::decode_from(r)?);
            let size = r.position() - start;
            if size > MAX_BLOCK_BYTES {
                return Err(DecodeError::TooLong {
                    what: "block size",
                    len: size as u64,
                    max: MAX_BLOCK_BYTES as u64,
                });
            }
        }
        Ok(Block {
            header,
            transactions,
        })
    }
}

// ---- transactions ----------------------------------------------------------------------

/// Every field of a transfer except the signature, tag first: what its signing hash
/// covers.
pub(crate) fn encode_transfer_unsigned(t: &Transfer, out: &mut Vec<u8>) {
    out.push(TAG_TRANSFER);
    t.from.encode_to(out);
    t.to.encode_to(out);
    t.amount.encode_to(out);
    t.fee.encode_to(out);
    out.extend_from_slice(&t.nonce.to_le_bytes());
    write_varint(out, t.data.len() as u64);
    out.extend_from_slice(&t.data);
}

impl Encode for Transaction {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            Transaction::Coinbase(c) => {
                out.push(TAG_COINBASE);
                out.extend_from_slice(&c.height.0.to_le_bytes());
                c.to.encode_to(out);
                c.amount.encode_to(out);
            }
            Transaction::Transfer(t) => {
                encode_transfer_unsigned(t, out);
                t.signature.encode_to(out);
            }
        }
    }
    fn encoded_size(&self) -> usize {
        match self {
            Transaction::Coinbase(_) => MIN_TX_BYTES,
            Transaction::Transfer(t) => {
                TRANSFER_FIXED_BYTES + varint_size(t.data.len() as u64) + t.data.len()
            }
        }
    }
}

impl Decode for Transaction {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            TAG_COINBASE => Ok(Transaction::Coinbase(Coinbase {
                height: Height(r.u64()?),
                to: Address::decode_from(r)?,
                amount: Amount::decode_from(r)?,
            })),
            TAG_TRANSFER => Ok(Transaction::Transfer(Transfer {
                from: PublicKey::decode_from(r)?,
                to: Address::decode_from(r)?,
                amount: Amount::decode_from(r)?,
                fee: Amount::decode_from(r)?,
                nonce: r.u64()?,
                data: r.bytes("transfer data", MAX_TX_DATA_BYTES)?,
                signature: Signature::decode_from(r)?,
            })),
            tag => Err(DecodeError::UnknownTag {
                what: "transaction",
                tag,
            }),
        }
    }
}

// ---- account state and undo data -------------------------------------------------------

impl Encode for Account {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.balance.encode_to(out);
        out.extend_from_slice(&self.nonce.to_le_bytes());
    }
    fn encoded_size(&self) -> usize {
        16
    }
}

impl Decode for Account {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Account {
            balance: Amount::decode_from(r)?,
            nonce: r.u64()?,
        })
    }
}

impl Encode for BlockUndo {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write_varint(out, self.prior.len() as u64);
        for (address, account) in &self.prior {
            address.encode_to(out);
            match account {
                None => out.push(0),
                Some(a) => {
                    out.push(1);
                    a.encode_to(out);
                }
            }
        }
    }
    fn encoded_size(&self) -> usize {
        varint_size(self.prior.len() as u64)
            + self
                .prior
                .iter()
                .map(|(_, a)| 21 + if a.is_some() { 16 } else { 0 })
                .sum::<usize>()
    }
}

impl Decode for BlockUndo {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let count = r.length("undo entry count", MAX_UNDO_ENTRIES)?;
        let mut prior = Vec::with_capacity(count.min(r.remaining() / 21));
        for _ in 0..count {
            let address = Address::decode_from(r)?;
            let account = match r.u8()? {
                0 => None,
                1 => Some(Account::decode_from(r)?),
                tag => {
                    return Err(DecodeError::UnknownTag {
                        what: "undo entry",
                        tag,
                    });
                }
            };
            prior.push((address, account));
        }
        Ok(BlockUndo { prior })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_minimal_and_bounded() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            assert_eq!(out.len(), varint_size(v), "{v}");
            let mut r = Reader::new(&out);
            assert_eq!(r.varint().unwrap(), v);
            r.finish().unwrap();
        }
        let err = |bytes: &[u8]| Reader::new(bytes).varint().unwrap_err();
        assert_eq!(
            err(&[0x80, 0x00]),
            DecodeError::NonMinimalVarint { offset: 0 }
        );
        assert_eq!(
            err(&[0xff, 0x80, 0x00]),
            DecodeError::NonMinimalVarint { offset: 0 }
        );
        assert!(matches!(err(&[0xff; 9]), DecodeError::UnexpectedEnd { .. }));
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert_eq!(err(&over), DecodeError::VarintOverflow { offset: 0 });
        assert_eq!(err(&[0xff; 11]), DecodeError::VarintOverflow { offset: 0 });
    }

    #[test]
    fn lengths_are_capped_before_allocating() {
        // A transfer claiming 2^40 bytes of data fails on the length, not on allocation.
        let mut bytes = vec![TAG_TRANSFER];
        bytes.extend_from_slice(&[0u8; 32 + 20 + 8 + 8 + 8]);
        write_varint(&mut bytes, 1 << 40);
        assert_eq!(
            decode::<Transaction>(&bytes),
            Err(DecodeError::TooLong {
                what: "transfer data",
                len: 1 << 40,
                max: 1024
            })
        );
        // A block claiming the maximum count with no bodies allocates nothing big.
        let mut block = vec![0u8; HEADER_BYTES];
        write_varint(&mut block, MAX_BLOCK_TXS as u64);
        assert!(matches!(
            decode::<Block>(&block),
            Err(DecodeError::UnexpectedEnd { .. })
        ));
        let mut block = vec![0u8; HEADER_BYTES];
        write_varint(&mut block, MAX_BLOCK_TXS as u64 + 1);
        assert!(matches!(
            decode::<Block>(&block),
            Err(DecodeError::TooLong { .. })
        ));
    }

    #[test]
    fn rejects_trailing_bytes_and_unknown_tags() {
        let tx = Transaction::Coinbase(Coinbase {
            height: Height(5),
            to: Address([1; 20]),
            amount: Amount::from_units(9),
        });
        let mut bytes = encode(&tx);
        assert_eq!(bytes.len(), tx.encoded_size());
        bytes.push(0);
        assert_eq!(
            decode::<Transaction>(&bytes),
            Err(DecodeError::TrailingBytes { count: 1 })
        );
        bytes[0] = 7;
        assert!(matches!(
            decode::<Transaction>(&bytes),
            Err(DecodeError::UnknownTag {
                what: "transaction",
                tag: 7
            })
        ));
    }
}
