//! The wallet: named keys in a directory, each encrypted at rest with a passphrase, and
//! the signing of transfers. Keys never leave it unencrypted except by `export`.
//!
//! A key file (`NAME.key.json`, readable by its owner only) holds the public key, the
//! network and genesis the key signs for, and the 32-byte seed encrypted with
//! XChaCha20-Poly1305 under a key derived from the passphrase by argon2id (64 MiB, 3
//! passes; ADR 0023), with a random salt and nonce per file. The public key, the network,
//! the genesis and every key-derivation parameter are authenticated as associated data:
//! a file with any of them edited does not decrypt. Parameters beyond [`MAX_MEMORY_KIB`]
//! and [`MAX_PASSES`] are refused before any work. Secrets (seeds, derived keys,
//! passphrases handed in) are wiped when dropped (`zeroize`).
//!
//! Version 1 files (19 MiB, 2 passes, only the public key authenticated, no network)
//! still open; they sign for whichever network they are used on.
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
use oxchain_primitives::{Address, BlockHash, Network, PublicKey, SecretKey};
use rand::Rng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// argon2id memory in KiB, passes and lanes of new key files (ADR 0023).
const ARGON2_M_KIB: u32 = 64 * 1024;
const ARGON2_T: u32 = 3;
const ARGON2_P: u32 = 1;
/// The most a key file may ask of the machine: 1 GiB, 16 passes, 8 lanes. A file asking
/// more is damaged (or made to stall whoever opens it).
pub const MAX_MEMORY_KIB: u32 = 1 << 20;
/// See [`MAX_MEMORY_KIB`].
pub const MAX_PASSES: u32 = 16;
const MAX_LANES: u32 = 8;
/// The version new files are written in.
const VERSION: u32 = 2;
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
    /// The key signs for another network than the one asked.
    #[error(
        "key {name:?} signs for {key_network} (genesis {key_genesis}), not for {network} (genesis {genesis})"
    )]
    OtherNetwork {
        /// The key.
        name: String,
        /// Its network.
        key_network: Network,
        /// Its genesis.
        key_genesis: BlockHash,
        /// The network asked.
        network: Network,
        /// Its genesis.
        genesis: BlockHash,
    },
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
    /// The network's name and genesis hash (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    genesis: Option<String>,
    kdf: Kdf,
    cipher: Cipher,
}

/// The network a key signs for: its name and its genesis hash (which signatures commit
/// to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyNetwork {
    /// The network.
    pub network: Network,
    /// Its genesis block's hash.
    pub genesis: BlockHash,
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
    /// The network it signs for (`None`: a version 1 file, which does not say).
    pub network: Option<KeyNetwork>,
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

fn derive(
    passphrase: &str,
    salt: &[u8],
    kdf: &Kdf,
    path: &Path,
) -> Result<Zeroizing<[u8; 32]>, WalletError> {
    let damaged = |reason: String| WalletError::Damaged {
        path: path.to_path_buf(),
        reason,
    };
    if kdf.memory_kib > MAX_MEMORY_KIB || kdf.passes > MAX_PASSES || kdf.lanes > MAX_LANES {
        return Err(damaged(format!(
            "key derivation asks for {} KiB, {} passes, {} lanes: at most {MAX_MEMORY_KIB} \
             KiB, {MAX_PASSES} passes and {MAX_LANES} lanes are used",
            kdf.memory_kib, kdf.passes, kdf.lanes
        )));
    }
    let params = Params::new(kdf.memory_kib, kdf.passes, kdf.lanes, Some(32))
        .map_err(|e| damaged(format!("bad key derivation parameters: {e}")))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|e| damaged(format!("key derivation failed: {e}")))?;
    Ok(key)
}

/// What the cipher authenticates beside the seed. Version 1: the public key. Version 2:
/// a label, the public key, the network's name and genesis, and every key-derivation
/// parameter, each length-prefixed where its length varies.
fn associated_data(version: u32, public: &[u8], file: &KeyFile) -> Vec<u8> {
    if version == 1 {
        return public.to_vec();
    }
    let mut aad = b"oxchain key file v2".to_vec();
    let mut field = |bytes: &[u8]| {
        aad.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        aad.extend_from_slice(bytes);
    };
    field(public);
    field(file.network.as_deref().unwrap_or_default().as_bytes());
    field(file.genesis.as_deref().unwrap_or_default().as_bytes());
    field(file.kdf.algorithm.as_bytes());
    field(&file.kdf.memory_kib.to_le_bytes());
    field(&file.kdf.passes.to_le_bytes());
    field(&file.kdf.lanes.to_le_bytes());
    field(file.kdf.salt.as_bytes());
    field(file.cipher.algorithm.as_bytes());
    aad
}

/// The network a file names (version 2), checked.
fn key_network(file: &KeyFile, path: &Path) -> Result<Option<KeyNetwork>, WalletError> {
    let damaged = |reason: &str| WalletError::Damaged {
        path: path.to_path_buf(),
        reason: reason.into(),
    };
    match (file.version, &file.network, &file.genesis) {
        (1, None, None) => Ok(None),
        (VERSION, Some(network), Some(genesis)) => Ok(Some(KeyNetwork {
            network: network
                .parse()
                .map_err(|_| damaged("network is not a known network's name"))?,
            genesis: genesis
                .parse()
                .map_err(|_| damaged("genesis is not 64 hex digits"))?,
        })),
        (1 | VERSION, _, _) => Err(damaged(
            "version 1 files name no network; version 2 files name a network and a genesis",
        )),
        (other, _, _) => Err(damaged(&format!(
            "unknown key file version {other} (this build reads 1 and 2)"
        ))),
    }
}

impl Wallet {
    /// The wallet in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Wallet {
        Wallet { dir: dir.into() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}{SUFFIX}"))
    }

    /// A new random key for `network`, encrypted with `passphrase`.
    pub fn create(
        &self,
        name: &str,
        passphrase: &str,
        network: KeyNetwork,
    ) -> Result<KeyInfo, WalletError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(seed.as_mut());
        self.import(name, &seed, passphrase, network)
    }

    /// Stores a key for `network` from its 32-byte seed.
    pub fn import(
        &self,
        name: &str,
        seed: &[u8; 32],
        passphrase: &str,
        network: KeyNetwork,
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
        let mut file = KeyFile {
            version: VERSION,
            public_key: hex::encode(public_key.as_bytes()),
            network: Some(network.network.name().to_string()),
            genesis: Some(network.genesis.to_string()),
            kdf: Kdf {
                algorithm: "argon2id".into(),
                memory_kib: ARGON2_M_KIB,
                passes: ARGON2_T,
                lanes: ARGON2_P,
                salt: hex::encode(salt),
            },
            cipher: Cipher {
                algorithm: "xchacha20poly1305".into(),
                nonce: hex::encode(nonce),
                ciphertext: String::new(),
            },
        };
        let key = derive(passphrase, &salt, &file.kdf, &path)?;
        let aad = associated_data(VERSION, public_key.as_bytes(), &file);
        let ciphertext = XChaCha20Poly1305::new(key.as_ref().into())
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: seed,
                    aad: &aad,
                },
            )
            .map_err(|_| WalletError::Damaged {
                path: path.clone(),
                reason: "encryption failed".into(),
            })?;
        file.cipher.ciphertext = hex::encode(ciphertext);
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
            network: Some(network),
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

    /// A key's public part and network.
    pub fn show(&self, name: &str) -> Result<KeyInfo, WalletError> {
        let (file, path) = self.read(name)?;
        let network = key_network(&file, &path)?;
        let public_key: PublicKey = file.public_key.parse().map_err(|_| WalletError::Damaged {
            path,
            reason: "public_key is not 64 hex digits".into(),
        })?;
        Ok(KeyInfo {
            name: name.to_string(),
            public_key,
            address: Address::from_public_key(&public_key),
            network,
        })
    }

    /// Refuses a key that names another network than `network` (a version 1 file names
    /// none, and passes).
    pub fn check_network(&self, name: &str, network: KeyNetwork) -> Result<(), WalletError> {
        match self.show(name)?.network {
            Some(key) if key != network => Err(WalletError::OtherNetwork {
                name: name.to_string(),
                key_network: key.network,
                key_genesis: key.genesis,
                network: network.network,
                genesis: network.genesis,
            }),
            _ => Ok(()),
        }
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

    /// The key itself, opened with `passphrase`, for signing on `network`.
    pub fn unlock(
        &self,
        name: &str,
        passphrase: &str,
        network: KeyNetwork,
    ) -> Result<SecretKey, WalletError> {
        self.check_network(name, network)?;
        Ok(SecretKey::from_seed(*self.export(name, passphrase)?))
    }

    /// The key's 32-byte seed, opened with `passphrase`.
    pub fn export(&self, name: &str, passphrase: &str) -> Result<Zeroizing<[u8; 32]>, WalletError> {
        let (file, path) = self.read(name)?;
        key_network(&file, &path)?;
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
        let key = derive(passphrase, &salt, &file.kdf, &path)?;
        let aad = associated_data(file.version, &public, &file);
        let plain = Zeroizing::new(
            XChaCha20Poly1305::new(key.as_ref().into())
                .decrypt(
                    XNonce::from_slice(&nonce),
                    Payload {
                        msg: &ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| WalletError::WrongPassphrase(name.to_string()))?,
        );
        let mut seed = Zeroizing::new([0u8; 32]);
        if plain.len() != 32 {
            return Err(damaged("the secret is not 32 bytes"));
        }
        seed.copy_from_slice(&plain);
        if SecretKey::from_seed(*seed).public_key().as_bytes()[..] != public[..] {
            return Err(damaged("the secret does not match the public key"));
        }
        Ok(seed)
    }
}

/// Parses a seed given as 64 hex digits.
pub fn parse_seed(text: &str) -> Result<Zeroizing<[u8; 32]>, WalletError> {
    let bytes = Zeroizing::new(hex::decode(text.trim()).map_err(|_| WalletError::BadSeed)?);
    let mut seed = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(WalletError::BadSeed);
    }
    seed.copy_from_slice(&bytes);
    Ok(seed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn regtest() -> KeyNetwork {
        KeyNetwork {
            network: Network::Regtest,
            genesis: BlockHash([0x11; 32]),
        }
    }

    #[test]
    fn keys_round_trip_and_refuse_a_wrong_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let wallet = Wallet::new(dir.path());
        let made = wallet
            .create("savings", "correct horse", regtest())
            .unwrap();
        assert_eq!(made.network, Some(regtest()));
        assert_eq!(wallet.show("savings").unwrap(), made);
        assert_eq!(wallet.list().unwrap(), vec![made.clone()]);
        let key = wallet
            .unlock("savings", "correct horse", regtest())
            .unwrap();
        assert_eq!(key.public_key(), made.public_key);
        assert!(matches!(
            wallet.unlock("savings", "wrong", regtest()),
            Err(WalletError::WrongPassphrase(_))
        ));
        assert!(matches!(
            wallet.create("savings", "x", regtest()),
            Err(WalletError::Exists(_))
        ));
        assert!(matches!(wallet.show("nope"), Err(WalletError::NotFound(_))));
        assert!(matches!(
            wallet.create("../etc", "x", regtest()),
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
        assert!(!text.contains(&hex::encode(*seed)));
        // New files use 64 MiB and 3 passes.
        let file: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(file["version"], 2);
        assert_eq!(file["kdf"]["memory_kib"], 65536);
        assert_eq!(file["kdf"]["passes"], 3);
        // Export, then import elsewhere under another passphrase: the same key.
        let other = Wallet::new(dir.path().join("other"));
        let imported = other.import("copy", &seed, "another", regtest()).unwrap();
        assert_eq!(imported.public_key, made.public_key);
    }

    /// Every field beside the ciphertext is authenticated: a file with any of them
    /// edited does not open, whatever the passphrase.
    #[test]
    fn an_edited_file_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let wallet = Wallet::new(dir.path());
        wallet.create("a", "pass", regtest()).unwrap();
        let b = wallet.create("b", "pass", regtest()).unwrap();
        let path = dir.path().join("a.key.json");
        let original = fs::read_to_string(&path).unwrap();
        let edits: [(&str, serde_json::Value); 6] = [
            ("/public_key", hex::encode(b.public_key.as_bytes()).into()),
            ("/network", "dev".into()),
            ("/genesis", "22".repeat(32).into()),
            ("/kdf/memory_kib", 19456.into()),
            ("/kdf/passes", 2.into()),
            ("/kdf/salt", "00".repeat(16).into()),
        ];
        for (pointer, value) in edits {
            let mut file: serde_json::Value = serde_json::from_str(&original).unwrap();
            *file.pointer_mut(pointer).unwrap() = value;
            fs::write(&path, file.to_string()).unwrap();
            assert!(
                matches!(
                    wallet.export("a", "pass"),
                    Err(WalletError::WrongPassphrase(_))
                ),
                "{pointer} edited, and the file still opened"
            );
        }
        fs::write(&path, &original).unwrap();
        assert!(wallet.export("a", "pass").is_ok());
    }

    /// A file asking for more memory or passes than a key file needs is refused at once,
    /// before any of that work.
    #[test]
    fn a_file_asking_too_much_is_refused_before_deriving() {
        let dir = tempfile::tempdir().unwrap();
        let wallet = Wallet::new(dir.path());
        wallet.create("a", "pass", regtest()).unwrap();
        let path = dir.path().join("a.key.json");
        let original: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        for (field, value) in [
            ("memory_kib", u32::MAX),
            ("passes", 1_000_000),
            ("lanes", 64),
        ] {
            let mut file = original.clone();
            file["kdf"][field] = value.into();
            fs::write(&path, file.to_string()).unwrap();
            let error = wallet.export("a", "pass").unwrap_err();
            assert!(
                matches!(&error, WalletError::Damaged { reason, .. } if reason.contains("at most")),
                "{field}: {error}"
            );
        }
    }

    /// A key names its network; it is not used to sign for another.
    #[test]
    fn a_key_signs_only_for_its_network() {
        let dir = tempfile::tempdir().unwrap();
        let wallet = Wallet::new(dir.path());
        wallet.create("a", "pass", regtest()).unwrap();
        let dev = KeyNetwork {
            network: Network::Dev,
            genesis: BlockHash([0x33; 32]),
        };
        let error = wallet.unlock("a", "pass", dev).unwrap_err();
        assert!(matches!(error, WalletError::OtherNetwork { .. }), "{error}");
        let text = error.to_string();
        assert!(text.contains("regtest") && text.contains("dev"), "{text}");
        assert!(wallet.unlock("a", "pass", regtest()).is_ok());
    }

    /// A version 1 file (made by the wallet before version 2) still opens, and signs for
    /// any network.
    #[test]
    fn version_1_files_still_open() {
        let dir = tempfile::tempdir().unwrap();
        fs::copy(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/legacy-v1.key.json"
            ),
            dir.path().join("legacy.key.json"),
        )
        .unwrap();
        let wallet = Wallet::new(dir.path());
        let info = wallet.show("legacy").unwrap();
        assert_eq!(info.network, None);
        assert_eq!(
            hex::encode(info.public_key.as_bytes()),
            "5ea2e96334fb50016f066869ede2dd1189d0c0278e7565e6a1adf12d5d6aaac0"
        );
        let seed = wallet.export("legacy", "old-format-pass").unwrap();
        assert_eq!(
            hex::encode(*seed),
            "9f1c0b3a5e7d2c4b6a8f0e1d3c5b7a9f2e4d6c8b0a1f3e5d7c9b2a4f6e8d0c1b"
        );
        assert!(
            wallet
                .unlock("legacy", "old-format-pass", regtest())
                .is_ok()
        );
        assert!(matches!(
            wallet.export("legacy", "wrong"),
            Err(WalletError::WrongPassphrase(_))
        ));
    }
}
