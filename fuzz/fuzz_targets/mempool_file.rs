//! The mempool file reader (`oxchain_node::mempool_file::load`): the input is
//! `mempool.dat` in a fresh data directory, read into a fresh regtest chain's mempool.
//!
//! Checked: a file that is read is removed, every transfer it holds is either accepted
//! or refused, and the mempool holds exactly the accepted ones; a damaged file is set
//! aside unchanged as `mempool.dat.bad` and nothing is added. Then the round trip: the
//! mempool saved and loaded again gives the same transfers back (all refused as pending).
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxchain_node::mempool_file::{FILE, LoadError, load, save};

fuzz_target!(|data: &[u8]| {
    let dir = oxchain_fuzz::tempdir();
    let chain = oxchain_fuzz::regtest_chain(&dir.path().join("chain"));
    let view = chain.view();
    let path = dir.path().join(FILE);
    std::fs::write(&path, data).expect("the file is written");
    let (restored, error) = load(dir.path(), view);
    match error {
        None => {
            assert!(!path.exists(), "a file read back is removed");
            // Read: the magic, then a count and that many transfers, nothing after.
            let count = u32::from_le_bytes(data[8..12].try_into().expect("4 bytes"));
            assert_eq!(restored.accepted + restored.refused, count as usize);
            assert_eq!(view.mempool().len(), restored.accepted);
        }
        Some(LoadError::Damaged { .. }) => {
            assert!(!path.exists(), "a damaged file is set aside");
            let bad = std::fs::read(dir.path().join(format!("{FILE}.bad")))
                .expect("the damaged file is kept");
            assert_eq!(bad, data, "a damaged file is kept as it was");
            assert_eq!(restored.accepted + restored.refused, 0);
            assert_eq!(
                view.mempool().len(),
                0,
                "nothing from a damaged file is taken"
            );
        }
        Some(e @ LoadError::Read { .. }) => panic!("a file just written cannot be read: {e}"),
    }
    // What was taken is saved and read back whole.
    let pending = view.mempool().len();
    let saved = save(dir.path(), view).expect("the mempool is saved");
    assert_eq!(saved, pending);
    let (again, error) = load(dir.path(), view);
    assert!(error.is_none(), "a saved mempool reads back: {error:?}");
    assert_eq!(
        (again.accepted, again.refused),
        (0, pending),
        "all pending already"
    );
    assert_eq!(view.mempool().len(), pending);
});
