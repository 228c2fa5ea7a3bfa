//! The mempool across restarts: written to `DATA_DIR/mempool.dat` when the node stops,
//! and read back when it starts, each transfer checked again as if it had just arrived
//! (some may have been mined meanwhile, or lost their funds to a reorg). A crash loses
//! the pending transfers, as it would without this file; a damaged file is set aside as
//! `mempool.dat.bad`, never a reason not to start.
//!
//! Layout: the magic `oxmpool1`, a u32 count, then per transfer a u32 length and the
//! transaction's canonical encoding (docs/protocol.md), all little-endian.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use oxchain_chain::ChainView;
use oxchain_primitives::{Transaction, decode, encode};

/// The file's name in the data directory.
pub const FILE: &str = "mempool.dat";
const MAGIC: &[u8; 8] = b"oxmpool1";

/// What reading the file back gave.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    /// Transfers back in the mempool.
    pub accepted: usize,
    /// Transfers no longer valid (mined meanwhile, nonce used, funds gone).
    pub refused: usize,
}

/// Writes the mempool to `dir/mempool.dat` (through a temporary file and a rename, so a
/// crash mid-write leaves the old file or the new one). Returns how many transfers.
pub fn save(dir: &Path, chain: &ChainView) -> io::Result<usize> {
    let (mut transfers, bytes): (Vec<_>, usize) = {
        let mempool = chain.mempool();
        let transfers = mempool
            .transfers()
            .into_iter()
            .map(|(_, t)| t.clone())
            .collect();
        (transfers, mempool.bytes())
    };
    // Nonce order, so that each sender's transfers come back without gaps.
    transfers.sort_by_key(|t| t.nonce);
    let mut out = Vec::with_capacity(16 + bytes);
    out.extend_from_slice(MAGIC);
    let count = u32::try_from(transfers.len()).expect("a mempool holds under 2^32 transfers");
    out.extend_from_slice(&count.to_le_bytes());
    for transfer in transfers.iter() {
        let bytes = encode(&Transaction::Transfer(transfer.clone()));
        let len = u32::try_from(bytes.len()).expect("a transfer is a few KiB");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&bytes);
    }
    let tmp = dir.join(format!("{FILE}.tmp"));
    let mut file = fs::File::create(&tmp)?;
    file.write_all(&out)?;
    file.sync_all()?;
    fs::rename(&tmp, dir.join(FILE))?;
    fs::File::open(dir)?.sync_all()?;
    Ok(transfers.len())
}

/// Why `mempool.dat` was not read back.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file is not what [`save`] writes; it was renamed `mempool.dat.bad`.
    #[error("{path} is damaged ({why}); set aside as {path}.bad")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
}

/// The largest file read back: a full mempool and its framing. A larger file is damaged.
const MAX_FILE_BYTES: u64 = 64 << 20;

/// Reads `dir/mempool.dat` back into the chain's mempool and removes it. No file:
/// nothing restored. A damaged file is renamed `mempool.dat.bad` (the node starts all
/// the same). Each transfer is submitted as if it had just arrived: the chain announces
/// the accepted ones, and the network gossips them.
pub fn load(dir: &Path, chain: &ChainView) -> (Restored, Option<LoadError>) {
    let path = dir.join(FILE);
    let damaged = |why: String| {
        let _ = fs::rename(&path, dir.join(format!("{FILE}.bad")));
        LoadError::Damaged {
            path: path.clone(),
            why,
        }
    };
    let size = match fs::metadata(&path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return (Restored::default(), None),
        Err(source) => {
            let path = path.clone();
            return (Restored::default(), Some(LoadError::Read { path, source }));
        }
    };
    if size > MAX_FILE_BYTES {
        let error = damaged(format!("{size} bytes, more than a full mempool"));
        return (Restored::default(), Some(error));
    }
    let transfers = match fs::read(&path).map(|bytes| parse(&bytes)) {
        Ok(Ok(transfers)) => transfers,
        Ok(Err(why)) => return (Restored::default(), Some(damaged(why))),
        Err(source) => {
            let path = path.clone();
            return (Restored::default(), Some(LoadError::Read { path, source }));
        }
    };
    let mut restored = Restored::default();
    for transfer in transfers {
        match chain.submit_transfer(transfer) {
            Ok(_) => restored.accepted += 1,
            Err(_) => restored.refused += 1,
        }
    }
    // Read back once. Should the removal fail, the next start reads the file again and
    // refuses what is already pending or mined: nothing is lost either way.
    let _ = fs::remove_file(&path);
    (restored, None)
}

fn parse(bytes: &[u8]) -> Result<Vec<oxchain_primitives::Transfer>, String> {
    let rest = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or("not a mempool file")?;
    let (count, mut rest) = take_u32(rest).ok_or("truncated count")?;
    let mut transfers = Vec::new();
    for n in 0..count {
        let (len, after) = take_u32(rest).ok_or(format!("truncated at transfer {n}"))?;
        let len = len as usize;
        if after.len() < len {
            return Err(format!("truncated at transfer {n}"));
        }
        let (tx, after) = after.split_at(len);
        match decode::<Transaction>(tx) {
            Ok(Transaction::Transfer(t)) => transfers.push(t),
            Ok(_) => return Err(format!("transfer {n} is a coinbase")),
            Err(e) => return Err(format!("transfer {n}: {e}")),
        }
        rest = after;
    }
    if !rest.is_empty() {
        return Err(format!("{} bytes after the last transfer", rest.len()));
    }
    Ok(transfers)
}

fn take_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*head), rest))
}
