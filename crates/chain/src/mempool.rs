//! The mempool: signed transfers waiting for a block.
//!
//! Invariant: for every sender, the pending transfers carry consecutive nonces starting
//! at the sender's account nonce at the tip, and their total cost fits the balance. So
//! every transfer here can be mined, in nonce order, on top of the tip; a transfer that
//! would leave a gap or overdraw is refused, and [`Mempool::revalidate`] restores the
//! invariant when the tip moves.
//!
//! Priority is the fee rate (fee per encoded byte). A pending transfer is replaced by one
//! with the same sender and nonce paying at least 10% more fee. When the count or byte
//! cap is reached, the sender tail with the lowest fee rate is evicted (a tail, so that
//! no gap opens); a newcomer that would itself be the lowest is refused.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use oxchain_consensus::ConsensusError;
use oxchain_consensus::ledger::AccountReader;
use oxchain_consensus::signatures::{KeyCache, verify_transfer};
use oxchain_consensus::validate::validate_transfer;
use oxchain_primitives::{Account, Address, Amount, BlockHash, Transfer, Txid};
use oxchain_storage::StoreError;

/// Caps and the minimum fee rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MempoolLimits {
    /// At most this many transfers.
    pub max_count: usize,
    /// At most this many encoded bytes.
    pub max_bytes: usize,
    /// The minimum fee per encoded byte, in base units, to be accepted and relayed.
    pub min_fee_per_byte: u64,
}

impl Default for MempoolLimits {
    fn default() -> MempoolLimits {
        MempoolLimits {
            max_count: 50_000,
            max_bytes: 32 << 20,
            min_fee_per_byte: 1,
        }
    }
}

/// Why a transfer was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum MempoolError {
    /// It is already pending.
    #[error("transfer {0} is already pending")]
    AlreadyPending(Txid),
    /// It breaks a rule on its own (fields or signature): the sender misbehaved.
    #[error(transparent)]
    Invalid(ConsensusError),
    /// Its fee rate is below the minimum.
    #[error("fee {fee} is below the minimum of {min} for a {size}-byte transfer")]
    FeeTooLow {
        /// The fee offered.
        fee: Amount,
        /// The minimum for its size.
        min: Amount,
        /// Its encoded size.
        size: usize,
    },
    /// Its nonce was used already.
    #[error("nonce {got} is already used: the sender's next nonce is {expected}")]
    NonceTooLow {
        /// The sender.
        sender: Address,
        /// The nonce given.
        got: u64,
        /// The next nonce the sender can use.
        expected: u64,
    },
    /// Its nonce leaves a gap after the sender's pending transfers.
    #[error("nonce {got} leaves a gap: the sender's next nonce is {expected}")]
    NonceGap {
        /// The sender.
        sender: Address,
        /// The nonce given.
        got: u64,
        /// The next nonce the sender can use.
        expected: u64,
    },
    /// It replaces a pending transfer without paying enough more.
    #[error("replacing pending transfer {old} needs a fee of at least {min}, got {fee}")]
    ReplacementFeeTooLow {
        /// The pending transfer.
        old: Txid,
        /// The fee offered.
        fee: Amount,
        /// The minimum fee of a replacement.
        min: Amount,
    },
    /// The sender cannot pay it after its pending transfers.
    #[error(
        "insufficient funds: the sender has {available} after its pending transfers, and this needs {needed}"
    )]
    InsufficientFunds {
        /// The sender.
        sender: Address,
        /// Balance left after the sender's earlier pending transfers.
        available: Amount,
        /// Amount plus fee.
        needed: Amount,
    },
    /// The mempool is full of transfers paying a better fee rate.
    #[error("the mempool is full and this transfer's fee rate is the lowest")]
    Full,
    /// The account state could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MempoolError {
    /// Whether the sender misbehaved (a peer to penalise); everything else may be a
    /// matter of timing or policy.
    pub fn is_bad_data(&self) -> bool {
        matches!(self, MempoolError::Invalid(e) if e.is_bad_data())
    }
}

/// Fee per byte as a fraction, compared exactly.
#[derive(Debug, Clone, Copy)]
struct FeeRate {
    fee: u64,
    size: u64,
}

impl Ord for FeeRate {
    fn cmp(&self, other: &Self) -> Ordering {
        (u128::from(self.fee) * u128::from(other.size))
            .cmp(&(u128::from(other.fee) * u128::from(self.size)))
    }
}
impl PartialOrd for FeeRate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for FeeRate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for FeeRate {}

/// A pending transfer.
#[derive(Debug, Clone)]
struct Entry {
    transfer: Transfer,
    txid: Txid,
    size: usize,
}

impl Entry {
    fn rate(&self) -> FeeRate {
        FeeRate {
            fee: self.transfer.fee.units(),
            size: self.size as u64,
        }
    }
}

/// A sender's pending transfers by nonce (consecutive from the account nonce).
type Queue = BTreeMap<u64, Entry>;

/// Pending transfers.
#[derive(Debug)]
pub struct Mempool {
    genesis: BlockHash,
    limits: MempoolLimits,
    senders: HashMap<Address, Queue>,
    by_txid: HashMap<Txid, (Address, u64)>,
    /// Each sender's last transfer, by fee rate: the eviction candidates.
    tails: BTreeSet<(FeeRate, Address)>,
    bytes: usize,
}

impl Mempool {
    /// An empty mempool for the chain of `genesis`.
    pub fn new(genesis: BlockHash, limits: MempoolLimits) -> Mempool {
        Mempool {
            genesis,
            limits,
            senders: HashMap::new(),
            by_txid: HashMap::new(),
            tails: BTreeSet::new(),
            bytes: 0,
        }
    }

    /// How many transfers are pending.
    pub fn len(&self) -> usize {
        self.by_txid.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.by_txid.is_empty()
    }

    /// The pending transfers' encoded bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether `txid` is pending.
    pub fn contains(&self, txid: &Txid) -> bool {
        self.by_txid.contains_key(txid)
    }

    /// A pending transfer.
    pub fn get(&self, txid: &Txid) -> Option<&Transfer> {
        let (sender, nonce) = self.by_txid.get(txid)?;
        Some(&self.senders.get(sender)?.get(nonce)?.transfer)
    }

    /// The next nonce `sender` can use, counting its pending transfers, if it has any.
    pub fn next_nonce(&self, sender: &Address) -> Option<u64> {
        self.senders
            .get(sender)?
            .last_key_value()
            .map(|(nonce, _)| nonce + 1)
    }

    /// Every pending transfer with its txid, best fee rate first.
    pub fn transfers(&self) -> Vec<(Txid, &Transfer)> {
        let mut all: Vec<&Entry> = self.senders.values().flat_map(|q| q.values()).collect();
        all.sort_by(|a, b| b.rate().cmp(&a.rate()).then(a.txid.cmp(&b.txid)));
        all.into_iter().map(|e| (e.txid, &e.transfer)).collect()
    }

    /// Checks a transfer against the rules and the state at the tip (`state`), then adds
    /// it. Cheap checks first; the signature last.
    pub fn add<R: AccountReader<Error = StoreError>>(
        &mut self,
        state: &R,
        keys: &mut KeyCache,
        transfer: Transfer,
    ) -> Result<Txid, MempoolError> {
        let txid = oxchain_primitives::Transaction::Transfer(transfer.clone()).compute_txid();
        if self.by_txid.contains_key(&txid) {
            return Err(MempoolError::AlreadyPending(txid));
        }
        validate_transfer(&transfer, txid).map_err(MempoolError::Invalid)?;
        let size = oxchain_primitives::Transaction::Transfer(transfer.clone()).encoded_len();
        let entry = Entry {
            transfer,
            txid,
            size,
        };
        let min = Amount::from_units(self.limits.min_fee_per_byte.saturating_mul(size as u64));
        if entry.transfer.fee < min {
            return Err(MempoolError::FeeTooLow {
                fee: entry.transfer.fee,
                min,
                size,
            });
        }
        let sender = entry.transfer.sender();
        let account = state.account(&sender)?.unwrap_or_default();
        let queue = self.senders.get(&sender);
        let next = account.nonce + queue.map_or(0, |q| q.len() as u64);
        let nonce = entry.transfer.nonce;
        if nonce < account.nonce {
            return Err(MempoolError::NonceTooLow {
                sender,
                got: nonce,
                expected: account.nonce,
            });
        }
        if nonce > next {
            return Err(MempoolError::NonceGap {
                sender,
                got: nonce,
                expected: next,
            });
        }
        if let Some(old) = queue.and_then(|q| q.get(&nonce)) {
            let old_fee = old.transfer.fee.units();
            let min = Amount::from_units(old_fee.saturating_add(old_fee.div_ceil(10)));
            if entry.transfer.fee < min {
                return Err(MempoolError::ReplacementFeeTooLow {
                    old: old.txid,
                    fee: entry.transfer.fee,
                    min,
                });
            }
        }
        // The balance left for this transfer after the earlier pending ones.
        let mut available = account.balance;
        for e in queue
            .into_iter()
            .flat_map(|q| q.range(..nonce))
            .map(|(_, e)| e)
        {
            available = available
                .checked_sub(cost(&e.transfer))
                .unwrap_or(Amount::ZERO);
        }
        let needed = cost(&entry.transfer);
        if needed > available {
            return Err(MempoolError::InsufficientFunds {
                sender,
                available,
                needed,
            });
        }
        verify_transfer(keys, &self.genesis, &entry.transfer, txid)
            .map_err(MempoolError::Invalid)?;

        self.update_sender(sender, |queue| {
            let replaced = queue.insert(nonce, entry);
            let mut removed: Vec<Entry> = replaced.into_iter().collect();
            // A replacement may cost more: drop the later transfers it leaves unpaid.
            removed.extend(truncate_unpaid(queue, account));
            removed
        });
        self.enforce_caps(txid)?;
        Ok(txid)
    }

    /// Re-establishes the invariant for `senders` after the tip moved: drops transfers
    /// whose nonce is used, and any that leave a gap or overdraw. `returned` are the
    /// transfers of disconnected blocks, put back first (signatures already checked).
    pub fn revalidate<R: AccountReader<Error = StoreError>>(
        &mut self,
        state: &R,
        returned: Vec<Transfer>,
        senders: impl IntoIterator<Item = Address>,
    ) -> Result<(), StoreError> {
        let mut touched: BTreeSet<Address> = senders.into_iter().collect();
        for transfer in returned {
            let sender = transfer.sender();
            touched.insert(sender);
            let tx = oxchain_primitives::Transaction::Transfer(transfer);
            let (txid, size) = (tx.compute_txid(), tx.encoded_len());
            let oxchain_primitives::Transaction::Transfer(transfer) = tx else {
                unreachable!("built as a transfer above")
            };
            let entry = Entry {
                transfer,
                txid,
                size,
            };
            self.update_sender(sender, |queue| {
                match queue.get(&entry.transfer.nonce) {
                    // Keep what is pending unless the returned one pays more.
                    Some(old) if old.transfer.fee >= entry.transfer.fee => vec![entry],
                    _ => queue
                        .insert(entry.transfer.nonce, entry)
                        .into_iter()
                        .collect(),
                }
            });
        }
        for sender in touched {
            if !self.senders.contains_key(&sender) {
                continue;
            }
            let account = state.account(&sender)?.unwrap_or_default();
            self.update_sender(sender, |queue| {
                let mut removed = Vec::new();
                while let Some(entry) = queue.first_entry() {
                    if *entry.key() >= account.nonce {
                        break;
                    }
                    removed.push(entry.remove());
                }
                removed.extend(truncate_unpaid(queue, account));
                removed
            });
        }
        Ok(())
    }

    /// Up to `max_bytes` of transfers for a block: the best fee rate first, each sender's
    /// in nonce order.
    pub fn select(&self, max_bytes: usize) -> Vec<Transfer> {
        struct Head<'a> {
            rate: FeeRate,
            txid: Txid,
            rest: std::collections::btree_map::Values<'a, u64, Entry>,
            entry: &'a Entry,
        }
        impl PartialEq for Head<'_> {
            fn eq(&self, other: &Self) -> bool {
                self.cmp(other) == Ordering::Equal
            }
        }
        impl Eq for Head<'_> {}
        impl PartialOrd for Head<'_> {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }
        impl Ord for Head<'_> {
            fn cmp(&self, other: &Self) -> Ordering {
                self.rate
                    .cmp(&other.rate)
                    .then_with(|| other.txid.cmp(&self.txid))
            }
        }
        fn head(mut rest: std::collections::btree_map::Values<'_, u64, Entry>) -> Option<Head<'_>> {
            rest.next().map(|entry| Head {
                rate: entry.rate(),
                txid: entry.txid,
                rest,
                entry,
            })
        }
        let mut heap: BinaryHeap<Head<'_>> = self
            .senders
            .values()
            .filter_map(|q| head(q.values()))
            .collect();
        let mut left = max_bytes;
        let mut out = Vec::new();
        while let Some(h) = heap.pop() {
            // A sender whose next transfer does not fit is done: the rest depend on it.
            if h.entry.size > left {
                continue;
            }
            left -= h.entry.size;
            out.push(h.entry.transfer.clone());
            if let Some(next) = head(h.rest) {
                heap.push(next);
            }
        }
        out
    }

    /// Runs `f` on a sender's queue, keeping the indexes, byte count and tails in step.
    /// `f` returns the entries it removed.
    fn update_sender(&mut self, sender: Address, f: impl FnOnce(&mut Queue) -> Vec<Entry>) {
        let queue = self.senders.entry(sender).or_default();
        if let Some((_, last)) = queue.last_key_value() {
            self.tails.remove(&(last.rate(), sender));
        }
        let removed = f(queue);
        for entry in &removed {
            let still_held = queue.get(&entry.transfer.nonce).map(|e| e.txid) == Some(entry.txid);
            if !still_held && self.by_txid.remove(&entry.txid).is_some() {
                self.bytes -= entry.size;
            }
        }
        for (nonce, entry) in queue.iter() {
            if let std::collections::hash_map::Entry::Vacant(slot) = self.by_txid.entry(entry.txid)
            {
                slot.insert((sender, *nonce));
                self.bytes += entry.size;
            }
        }
        match queue.last_key_value() {
            Some((_, last)) => {
                self.tails.insert((last.rate(), sender));
            }
            None => {
                self.senders.remove(&sender);
            }
        }
    }

    /// Evicts the lowest-rate tails until the caps hold. If the newcomer `txid` itself
    /// would go, it is removed and refused.
    fn enforce_caps(&mut self, txid: Txid) -> Result<(), MempoolError> {
        let mut refused = false;
        while self.by_txid.len() > self.limits.max_count || self.bytes > self.limits.max_bytes {
            let Some(&(_, sender)) = self.tails.first() else {
                break;
            };
            self.update_sender(sender, |queue| {
                let (_, entry) = queue.pop_last().expect("a tail exists");
                refused |= entry.txid == txid;
                vec![entry]
            });
        }
        if refused {
            Err(MempoolError::Full)
        } else {
            Ok(())
        }
    }
}

fn cost(t: &Transfer) -> Amount {
    // Validated on entry: amount + fee does not overflow.
    t.total_cost().unwrap_or(Amount::MAX)
}

/// Drops, from the first that breaks it, the transfers that do not follow on the
/// account's nonce or that its balance cannot pay. Returns them.
fn truncate_unpaid(queue: &mut Queue, account: Account) -> Vec<Entry> {
    let mut balance = account.balance;
    let mut expected = account.nonce;
    let mut cut = None;
    for (nonce, entry) in queue.iter() {
        match balance.checked_sub(cost(&entry.transfer)) {
            Some(left) if *nonce == expected => {
                balance = left;
                expected += 1;
            }
            _ => {
                cut = Some(*nonce);
                break;
            }
        }
    }
    match cut {
        Some(nonce) => queue.split_off(&nonce).into_values().collect(),
        None => Vec::new(),
    }
}
