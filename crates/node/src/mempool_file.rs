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
use std::path::Path;

use oxchain_chain::Chain;
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
pub fn save(dir: &Path, chain: &Chain) -> io::Result<usize> {
    let mut transfers: Vec<_> = chain
        .mempool()
        .transfers()
        .into_iter()
        .map(|(_, t)| t.clone())
        .collect();
    // Nonce order, so that each sender's transfers come back without gaps.
    transfers.sort_by_key(|t| t.nonce);
    let mut out = Vec::with_capacity(16 + chain.mempool().bytes());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(transfers.len() as u32).to_le_bytes());
    for transfer in transfers.iter() {
        let bytes = encode(&Transaction::Transfer(transfer.clone()));
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
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

/// Reads `dir/mempool.dat` back into the chain's mempool and removes it. No file:
/// nothing restored. A damaged file is renamed `mempool.dat.bad` and its error returned
/// (the node starts all the same).
pub fn load(dir: &Path, chain: &mut Chain) -> Result<Restored, String> {
    let path = dir.join(FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Restored::default()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let transfers = match parse(&bytes) {
        Ok(transfers) => transfers,
        Err(why) => {
            let bad = dir.join(format!("{FILE}.bad"));
            let _ = fs::rename(&path, &bad);
            return Err(format!(
                "{} is damaged ({why}); set aside as {}",
                path.display(),
                bad.display()
            ));
        }
    };
    let mut restored = Restored::default();
    for transfer in transfers {
        match chain.submit_transfer(transfer) {
            Ok(_) => restored.accepted += 1,
            Err(_) => restored.refused += 1,
        }
    }
    fs::remove_file(&path).map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
    Ok(restored)
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
