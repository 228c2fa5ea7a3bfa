//! The wallet: named keys in a directory, each encrypted at rest with a passphrase, and
//! the signing of transfers. Keys never leave it unencrypted except by `export`.
//!
//! A key file (`NAME.key.json`, readable by its owner only) holds the public key and the
//! 32-byte seed encrypted with XChaCha20-Poly1305 under a key derived from the passphrase
//! by argon2id (19 MiB, 2 passes: OWASP's minimum for argon2id), with a random salt and
//! nonce per file. The public key is authenticated as associated data, so a file whose
//! public key was swapped does not decrypt.
//!
//! # Layout
//! - `lib.rs`: [`Wallet`], [`WalletError`], [`KeyInfo`].

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use oxchain_primitives::{Address, PublicKey, SecretKey};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// argon2id memory in KiB, passes and lanes.
const ARGON2_M_KIB: u32 = 19 * 1024;
const ARGON2_T: u32 = 2;
const ARGON2_P: u32 = 1;
const SUFFIX: &str = ".key.json";

/// What can go wrong with the wallet.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// No key of that name.
    #[error("no key named {0:?} in the wallet (see `oxchain wallet list`)")]
    NotFound(String),
    /// A key of that name exists already.
    #[error("a key named {0:?} exists already")]
    Exists(String),
    /// A name that cannot be a file name.
    #[error("bad key name {0:?}: use letters, digits, '-' and '_' (at most 32)")]
    BadName(String),
    /// The passphrase does not open the key (or the file was altered).
    #[error("wrong passphrase for {0:?} (or its file was altered)")]
    WrongPassphrase(String),
    /// A seed to import is not 64 hex digits.
    #[error("a secret key is 64 hex digits")]
    BadSeed,
    /// A damaged key file.
    #[error("{}: {reason}", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct KeyFile {
    version: u32,
    public_key: String,
    kdf: Kdf,
    cipher: Cipher,
}

#[derive(Debug, Serialize, Deserialize)]
struct Kdf {
    algorithm: String,
    memory_kib: u32,
    passes: u32,
    lanes: u32,
    salt: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Cipher {
    algorithm: String,
    nonce: String,
    ciphertext: String,
}

/// A key as `list` and `show` tell it (no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Its name.
    pub name: String,
    /// Its public key.
    pub public_key: PublicKey,
    /// Its address.
    pub address: Address,
}

/// Keys in a directory.
#[derive(Debug, Clone)]
pub struct Wallet {
    dir: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WalletError + '_ {
    move |source| WalletError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn check_name(name: &str) -> Result<(), WalletError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(WalletError::BadName(name.to_string()))
    }
}

fn derive(passphrase: &str, salt: &[u8], kdf: &Kdf, name: &str) -> Result<[u8; 32], WalletError> {
    let params = Params::new(kdf.memory_kib, kdf.passes, kdf.lanes, Some(32)).map_err(|e| {
        WalletError::Damaged {
            path: PathBuf::from(name),
            reason: format!("bad key derivation parameters: {e}"),
        }
    })?;
    let mut key = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut key)
        .map_err(|e| WalletError::Damaged {
            path: PathBuf::from(name),
            reason: format!("key derivation failed: {e}"),
        })?;
    Ok(key)
}

impl Wallet {
    /// The wallet in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Wallet {
        Wallet { dir: dir.into() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}{SUFFIX}"))
    }

    /// A new random key, encrypted with `passphrase`.
    pub fn create(&self, name: &str, passphrase: &str) -> Result<KeyInfo, WalletError> {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        self.import(name, &seed, passphrase)
    }

    /// Stores a key from its 32-byte seed.
    pub fn import(
        &self,
        name: &str,
        seed: &[u8; 32],
        passphrase: &str,
    ) -> Result<KeyInfo, WalletError> {
        check_name(name)?;
        let path = self.path(name);
        if path.exists() {
            return Err(WalletError::Exists(name.to_string()));
        }
        let public_key = SecretKey::from_seed(*seed).public_key();
        let mut salt = [0u8; 16];
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut salt);
        rand::rng().fill_bytes(&mut nonce);
        let kdf = Kdf {
            algorithm: "argon2id".into(),
            memory_kib: ARGON2_M_KIB,
            passes: ARGON2_T,
            lanes: ARGON2_P,
            salt: hex::encode(salt),
        };
        let key = derive(passphrase, &salt, &kdf, name)?;
        let ciphertext = XChaCha20Poly1305::new((&key).into())
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: seed,
                    aad: public_key.as_bytes(),
                },
            )
            .map_err(|_| WalletError::Damaged {
                path: path.clone(),
                reason: "encryption failed".into(),
            })?;
        let file = KeyFile {
            version: 1,
            public_key: hex::encode(public_key.as_bytes()),
            kdf,
            cipher: Cipher {
                algorithm: "xchacha20poly1305".into(),
                nonce: hex::encode(nonce),
                ciphertext: hex::encode(ciphertext),
            },
        };
        let text = serde_json::to_string_pretty(&file).expect("a key file serialises");
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let tmp = path.with_extension("tmp");
        let mut f = fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all(text.as_bytes()).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        fs::rename(&tmp, &path).map_err(io(&path))?;
        Ok(KeyInfo {
            name: name.to_string(),
            public_key,
            address: Address::from_public_key(&public_key),
        })
    }

    fn read(&self, name: &str) -> Result<(KeyFile, PathBuf), WalletError> {
        check_name(name)?;
        let path = self.path(name);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(WalletError::NotFound(name.to_string()));
            }
            Err(e) => return Err(io(&path)(e)),
        };
        let file: KeyFile = serde_json::from_str(&text).map_err(|e| WalletError::Damaged {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        Ok((file, path))
    }

    /// A key's public part.
    pub fn show(&self, name: &str) -> Result<KeyInfo, WalletError> {
        let (file, path) = self.read(name)?;
        let public_key: PublicKey = file.public_key.parse().map_err(|_| WalletError::Damaged {
            path,
            reason: "public_key is not 64 hex digits".into(),
        })?;
        Ok(KeyInfo {
            name: name.to_string(),
            public_key,
            address: Address::from_public_key(&public_key),
        })
    }

    /// Every key, by name.
    pub fn list(&self) -> Result<Vec<KeyInfo>, WalletError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&self.dir)(e)),
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(SUFFIX)
                    .map(String::from)
            })
            .collect();
        names.sort();
        names.iter().map(|n| self.show(n)).collect()
    }

    /// The key itself, opened with `passphrase`.
    pub fn unlock(&self, name: &str, passphrase: &str) -> Result<SecretKey, WalletError> {
        Ok(SecretKey::from_seed(self.export(name, passphrase)?))
    }

    /// The key's 32-byte seed, opened with `passphrase`.
    pub fn export(&self, name: &str, passphrase: &str) -> Result<[u8; 32], WalletError> {
        let (file, path) = self.read(name)?;
        let damaged = |reason: &str| WalletError::Damaged {
            path: path.clone(),
            reason: reason.into(),
        };
        if file.kdf.algorithm != "argon2id" || file.cipher.algorithm != "xchacha20poly1305" {
            return Err(damaged("unknown algorithms"));
        }
        let salt = hex::decode(&file.kdf.salt).map_err(|_| damaged("bad salt"))?;
        let nonce: [u8; 24] = hex::decode(&file.cipher.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| damaged("bad nonce"))?;
        let ciphertext =
            hex::decode(&file.cipher.ciphertext).map_err(|_| damaged("bad ciphertext"))?;
        let public = hex::decode(&file.public_key).map_err(|_| damaged("bad public key"))?;
        let key = derive(passphrase, &salt, &file.kdf, name)?;
        let seed = XChaCha20Poly1305::new((&key).into())
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: &public,
                },
            )
            .map_err(|_| WalletError::WrongPassphrase(name.to_string()))?;
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| damaged("the secret is not 32 bytes"))?;
        if SecretKey::from_seed(seed).public_key().as_bytes()[..] != public[..] {
            return Err(damaged("the secret does not match the public key"));
        }
        Ok(seed)
    }
}

/// Parses a seed given as 64 hex digits.
pub fn parse_seed(text: &str) -> Result<[u8; 32], WalletError> {
    hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(WalletError::BadSeed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keys_round_trip_and_refuse_a_wrong_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let wallet = Wallet::new(dir.path());
        let made = wallet.create("savings", "correct horse").unwrap();
        assert_eq!(wallet.show("savings").unwrap(), made);
        assert_eq!(wallet.list().unwrap(), vec![made.clone()]);
        let key = wallet.unlock("savings", "correct horse").unwrap();
        assert_eq!(key.public_key(), made.public_key);
        assert!(matches!(
            wallet.unlock("savings", "wrong"),
            Err(WalletError::WrongPassphrase(_))
        ));
        assert!(matches!(
            wallet.create("savings", "x"),
            Err(WalletError::Exists(_))
        ));
        assert!(matches!(wallet.show("nope"), Err(WalletError::NotFound(_))));
        assert!(matches!(
            wallet.create("../etc", "x"),
            Err(WalletError::BadName(_))
        ));
        let mode = fs::metadata(dir.path().join("savings.key.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        // The seed is not in the file in the clear.
        let seed = wallet.export("savings", "correct horse").unwrap();
        let text = fs::read_to_string(dir.path().join("savings.key.json")).unwrap();
        assert!(!text.contains(&hex::encode(seed)));
        // Export, then import elsewhere under another passphrase: the same key.
        let other = Wallet::new(dir.path().join("other"));
        let imported = other.import("copy", &seed, "another").unwrap();
        assert_eq!(imported.public_key, made.public_key);
    }

    #[test]
    fn a_swapped_public_key_does_not_decrypt() {
        let dir = tempfile::tempdir().unwrap();
        let wallet = Wallet::new(dir.path());
        wallet.create("a", "pass").unwrap();
        let b = wallet.create("b", "pass").unwrap();
        let path = dir.path().join("a.key.json");
        let mut file: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        file["public_key"] = serde_json::json!(hex::encode(b.public_key.as_bytes()));
        fs::write(&path, file.to_string()).unwrap();
        assert!(matches!(
            wallet.unlock("a", "pass"),
            Err(WalletError::WrongPassphrase(_))
        ));
    }
}
