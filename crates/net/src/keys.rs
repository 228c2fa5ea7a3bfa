//! The node's libp2p identity, kept in the data directory (`node.key`, owner-only), so
//! that its peer id survives restarts.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use libp2p::identity::Keypair;

use crate::NetError;

const NODE_KEY: &str = "node.key";

/// Loads the node key, or creates one on first start.
pub(crate) fn load_or_create(data_dir: &Path) -> Result<Keypair, NetError> {
    let path = data_dir.join(NODE_KEY);
    match fs::read(&path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes).map_err(|e| NetError::Key {
            path: path.clone(),
            reason: format!("{e}; move it away to make a new identity"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Keypair::generate_ed25519();
            let bytes = key.to_protobuf_encoding().map_err(|e| NetError::Key {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let tmp = path.with_extension("tmp");
            let write = || -> std::io::Result<()> {
                let mut f = fs::OpenOptions::new()
                    .create(true)
                    .write(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)?;
                f.write_all(&bytes)?;
                f.sync_all()?;
                fs::rename(&tmp, &path)
            };
            write().map_err(|e| NetError::Key {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            Ok(key)
        }
        Err(e) => Err(NetError::Key {
            path,
            reason: e.to_string(),
        }),
    }
}
