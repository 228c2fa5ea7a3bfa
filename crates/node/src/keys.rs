//! Secrets the node keeps in its data directory, each readable by its owner only.
//!
//! - `miner.key`: the seed of the key coinbases pay to when no `--miner-address` is given.
//! - `api.cookie`: the bearer token for routes that change the node, written at start
//!   when the API is bound off loopback.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use oxchain_primitives::{Address, SecretKey};
use rand::Rng;

const MINER_KEY: &str = "miner.key";
const API_COOKIE: &str = "api.cookie";

/// Writes `bytes` to a new file readable by the owner only (replacing an old one).
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn random_32() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// The address of the node's miner key, created on first use.
pub fn miner_address(data_dir: &Path) -> anyhow::Result<Address> {
    let path = data_dir.join(MINER_KEY);
    let seed = match fs::read_to_string(&path) {
        Ok(text) => {
            let bytes = hex::decode(text.trim())
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok());
            match bytes {
                Some(seed) => seed,
                None => bail!(
                    "{} is damaged (expected 64 hex digits); move it away to make a new key",
                    path.display()
                ),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let seed = random_32();
            write_private(&path, hex::encode(seed).as_bytes())?;
            seed
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    Ok(Address::from_public_key(
        &SecretKey::from_seed(seed).public_key(),
    ))
}

/// Writes a fresh API token; returns it and the file's path.
pub fn write_api_cookie(data_dir: &Path) -> anyhow::Result<(String, PathBuf)> {
    let token = hex::encode(random_32());
    let path = data_dir.join(API_COOKIE);
    write_private(&path, token.as_bytes())?;
    Ok((token, path))
}

/// Removes a token left from an earlier run (none is needed on loopback).
pub fn remove_api_cookie(data_dir: &Path) -> anyhow::Result<()> {
    match fs::remove_file(data_dir.join(API_COOKIE)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).context("cannot remove the old api.cookie"),
    }
}
