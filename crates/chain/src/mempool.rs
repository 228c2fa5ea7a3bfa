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
//! cap is reached, the sender queue whose whole fee rate (its fees over its bytes) is the
//! lowest loses its last transfer, again and again until the caps hold (a tail, so that no
//! gap opens; the whole queue's rate, so that one high-fee transfer at the end cannot pin
//! many low-fee ones before it); a newcomer that would itself go is refused.
//!
//! Cost: adding, removing and evicting a transfer are O(log n) (a replacement also walks
//! the sender's transfers after it); a block template is O(block log n). Each sender's
//! queue keeps its sums (cost, fee, bytes), and three ordered sets keep the orders: every
//! transfer by fee rate (listings), each sender's first transfer by fee rate (templates),
//! and each sender's queue by its whole fee rate (eviction).
//!
//! Submitting is split so that the signature check needs no lock: [`Mempool::prepare`]
//! (context-free checks), [`Mempool::check`] (against the tip's state, read-only),
//! [`Candidate::verify`] (the signature), then [`Mempool::insert`], which checks the state
//! again and inserts.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use oxchain_consensus::ConsensusError;
use oxchain_consensus::ledger::AccountReader;
use oxchain_consensus::signatures::{KeyCache, SignedMessage, verify_batch, verify_transfer};
use oxchain_consensus::validate::validate_transfer;
use oxchain_primitives::{
    Account, Address, Amount, BlockHash, Signature, Transaction, Transfer, Txid,
};
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
    /// The node's transfer checkers are behind (or stopping): try again.
    #[error("the node is busy checking other transfers: try again")]
    Busy,
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

/// A transfer's place in the fee-rate orders: higher rate first, then lower txid.
type RateKey = (FeeRate, Reverse<Txid>);

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

    fn key(&self) -> RateKey {
        (self.rate(), Reverse(self.txid))
    }

    fn cost(&self) -> u128 {
        // Validated on entry: amount + fee does not overflow.
        u128::from(self.transfer.total_cost().unwrap_or(Amount::MAX).units())
    }
}

/// A sender's pending transfers by nonce (consecutive), with their sums.
#[derive(Debug, Default)]
struct Queue {
    entries: BTreeMap<u64, Entry>,
    /// Amount plus fee of every entry.
    cost: u128,
    fee: u64,
    size: u64,
}

impl Queue {
    /// The whole queue's fee rate: what evicting it from the tail is weighed by.
    fn rate(&self) -> FeeRate {
        FeeRate {
            fee: self.fee,
            size: self.size,
        }
    }

    /// The cost of the entries with a nonce in `range`.
    fn cost_of(&self, range: impl std::ops::RangeBounds<u64>) -> u128 {
        self.entries.range(range).map(|(_, e)| e.cost()).sum()
    }
}

/// A transfer that passed the context-free checks; [`Candidate::verify`] checks its
/// signature, which [`Mempool::insert`] requires.
#[derive(Debug, Clone)]
pub struct Candidate {
    entry: Entry,
}

/// A [`Candidate`] whose signature is good.
#[derive(Debug, Clone)]
pub struct Verified {
    entry: Entry,
}

impl Candidate {
    /// Its txid.
    pub fn txid(&self) -> Txid {
        self.entry.txid
    }

    /// The sender's address.
    pub fn sender(&self) -> Address {
        self.entry.transfer.sender()
    }

    /// Checks the signature for the network of `genesis` (the costly step: do it
    /// outside any lock).
    pub fn verify(
        self,
        keys: &mut KeyCache,
        genesis: &BlockHash,
    ) -> Result<Verified, MempoolError> {
        verify_transfer(keys, genesis, &self.entry.transfer, self.entry.txid)
            .map_err(MempoolError::Invalid)?;
        Ok(Verified { entry: self.entry })
    }
}

/// Checks the signatures of `candidates` in one batch (about twice as fast per signature
/// as one by one); if the batch fails, each alone, so that only the bad ones fail.
pub fn verify_candidates(
    keys: &mut KeyCache,
    genesis: &BlockHash,
    candidates: Vec<Candidate>,
) -> Vec<Result<Verified, MempoolError>> {
    let items: Vec<SignedMessage> = candidates
        .iter()
        .map(|c| {
            let t = &c.entry.transfer;
            (t.from.0, t.signature.0, t.signing_hash(genesis))
        })
        .collect();
    if verify_batch(keys, &items).is_ok() {
        return candidates
            .into_iter()
            .map(|c| Ok(Verified { entry: c.entry }))
            .collect();
    }
    candidates
        .into_iter()
        .map(|c| c.verify(keys, genesis))
        .collect()
}

impl Verified {
    /// The transfer.
    pub fn transfer(&self) -> &Transfer {
        &self.entry.transfer
    }

    /// Its txid.
    pub fn txid(&self) -> Txid {
        self.entry.txid
    }
}

/// Pending transfers.
#[derive(Debug)]
pub struct Mempool {
    genesis: BlockHash,
    limits: MempoolLimits,
    senders: HashMap<Address, Queue>,
    by_txid: HashMap<Txid, (Address, u64)>,
    /// Every transfer by fee rate.
    by_rate: BTreeSet<RateKey>,
    /// Each sender's first transfer by fee rate: where a template starts.
    heads: BTreeSet<RateKey>,
    /// Each sender's queue by its whole fee rate: the eviction order.
    queues: BTreeSet<(FeeRate, Address)>,
    bytes: usize,
    /// The encoded size of the smallest transfer: a template with less room left is full.
    min_transfer_bytes: usize,
}

impl Mempool {
    /// An empty mempool for the chain of `genesis`.
    pub fn new(genesis: BlockHash, limits: MempoolLimits) -> Mempool {
        let smallest = Transaction::Transfer(Transfer {
            from: Default::default(),
            to: Address([0; 20]),
            amount: Amount::ZERO,
            fee: Amount::ZERO,
            nonce: 0,
            data: Vec::new(),
            signature: Signature([0; 64]),
        });
        Mempool {
            genesis,
            limits,
            senders: HashMap::new(),
            by_txid: HashMap::new(),
            by_rate: BTreeSet::new(),
            heads: BTreeSet::new(),
            queues: BTreeSet::new(),
            bytes: 0,
            min_transfer_bytes: smallest.encoded_len(),
        }
    }

    /// The genesis hash transfers are signed for.
    pub fn genesis(&self) -> &BlockHash {
        &self.genesis
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
        self.entry(txid).map(|e| &e.transfer)
    }

    fn entry(&self, txid: &Txid) -> Option<&Entry> {
        let (sender, nonce) = self.by_txid.get(txid)?;
        self.senders.get(sender)?.entries.get(nonce)
    }

    /// The next nonce `sender` can use, counting its pending transfers, if it has any.
    pub fn next_nonce(&self, sender: &Address) -> Option<u64> {
        self.senders
            .get(sender)?
            .entries
            .last_key_value()
            .map(|(nonce, _)| nonce + 1)
    }

    /// Up to `limit` pending transfers with their txids, best fee rate first.
    pub fn best(&self, limit: usize) -> Vec<(Txid, &Transfer)> {
        self.by_rate
            .iter()
            .rev()
            .take(limit)
            .filter_map(|(_, Reverse(txid))| Some((*txid, self.get(txid)?)))
            .collect()
    }

    /// `sender`'s pending transfers with their txids, in nonce order.
    pub fn sent_by(&self, sender: &Address) -> impl Iterator<Item = (&Txid, &Transfer)> {
        self.senders
            .get(sender)
            .into_iter()
            .flat_map(|q| q.entries.values().map(|e| (&e.txid, &e.transfer)))
    }

    /// `sender`'s pending transfers with nonces from `from` on, in nonce order.
    pub fn sent_from(&self, sender: &Address, from: u64) -> impl Iterator<Item = &Transfer> {
        self.senders
            .get(sender)
            .into_iter()
            .flat_map(move |q| q.entries.range(from..).map(|(_, e)| &e.transfer))
    }

    /// Every pending transfer with its txid, in no order (no sorting, no copying).
    pub fn iter(&self) -> impl Iterator<Item = (&Txid, &Transfer)> {
        self.senders
            .values()
            .flat_map(|q| q.entries.values().map(|e| (&e.txid, &e.transfer)))
    }

    /// Every pending transfer with its txid, best fee rate first.
    pub fn transfers(&self) -> Vec<(Txid, &Transfer)> {
        self.best(usize::MAX)
    }

    /// The context-free checks, cheapest first: already pending?, fields, fee rate.
    pub fn prepare(&self, transfer: Transfer) -> Result<Candidate, MempoolError> {
        let tx = Transaction::Transfer(transfer);
        let (txid, size) = (tx.compute_txid(), tx.encoded_len());
        let Transaction::Transfer(transfer) = tx else {
            unreachable!("built as a transfer above")
        };
        if self.by_txid.contains_key(&txid) {
            return Err(MempoolError::AlreadyPending(txid));
        }
        validate_transfer(&transfer, txid).map_err(MempoolError::Invalid)?;
        let min = Amount::from_units(self.limits.min_fee_per_byte.saturating_mul(size as u64));
        if transfer.fee < min {
            return Err(MempoolError::FeeTooLow {
                fee: transfer.fee,
                min,
                size,
            });
        }
        Ok(Candidate {
            entry: Entry {
                transfer,
                txid,
                size,
            },
        })
    }

    /// The checks against the state at the tip (`state`): nonce, replacement fee, funds.
    /// Returns the sender's account.
    pub fn check<R: AccountReader<Error = StoreError>>(
        &self,
        state: &R,
        candidate: &Candidate,
    ) -> Result<Account, MempoolError> {
        let entry = &candidate.entry;
        let sender = entry.transfer.sender();
        let account = state.account(&sender)?.unwrap_or_default();
        self.check_against(account, entry)?;
        Ok(account)
    }

    fn check_against(&self, account: Account, entry: &Entry) -> Result<(), MempoolError> {
        let sender = entry.transfer.sender();
        if self.by_txid.contains_key(&entry.txid) {
            return Err(MempoolError::AlreadyPending(entry.txid));
        }
        let nonce = entry.transfer.nonce;
        if nonce < account.nonce {
            return Err(MempoolError::NonceTooLow {
                sender,
                got: nonce,
                expected: account.nonce,
            });
        }
        let queue = self.senders.get(&sender);
        let bounds = queue.and_then(|q| {
            Some((
                *q.entries.first_key_value()?.0,
                *q.entries.last_key_value()?.0,
            ))
        });
        // A transfer either follows the sender's last one or replaces a pending one, so
        // that the queue stays consecutive whatever the store says meanwhile.
        let next = bounds.map_or(account.nonce, |(_, last)| last + 1);
        let replaces = queue.and_then(|q| q.entries.get(&nonce));
        if nonce != next && replaces.is_none() {
            return Err(MempoolError::NonceGap {
                sender,
                got: nonce,
                expected: next,
            });
        }
        if let Some(old) = replaces {
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
        // The balance left for this transfer after the earlier pending ones: those from
        // the account's nonce (earlier ones were just mined) up to this one. Both ranges
        // taken off the sum are short: none and none for a transfer that follows on.
        let spent = queue.map_or(0, |q| {
            q.cost
                .saturating_sub(q.cost_of(..account.nonce))
                .saturating_sub(q.cost_of(nonce..))
        });
        let available = u128::from(account.balance.units()).saturating_sub(spent);
        let available = Amount::from_units(u64::try_from(available).unwrap_or(u64::MAX));
        if entry.cost() > u128::from(available.units()) {
            return Err(MempoolError::InsufficientFunds {
                sender,
                available,
                needed: entry.transfer.total_cost().unwrap_or(Amount::MAX),
            });
        }
        Ok(())
    }

    /// Checks a verified transfer against the state at the tip again (it may have moved
    /// since [`Mempool::check`]) and adds it, evicting what the caps require.
    pub fn insert<R: AccountReader<Error = StoreError>>(
        &mut self,
        state: &R,
        verified: Verified,
    ) -> Result<Txid, MempoolError> {
        let sender = verified.entry.transfer.sender();
        let account = state.account(&sender)?.unwrap_or_default();
        self.insert_at(account, verified)
    }

    /// [`Mempool::insert`] with the sender's account at the tip already read.
    pub fn insert_at(
        &mut self,
        account: Account,
        verified: Verified,
    ) -> Result<Txid, MempoolError> {
        let entry = verified.entry;
        let sender = entry.transfer.sender();
        self.check_against(account, &entry)?;
        let txid = entry.txid;
        self.detach(&sender);
        self.remove_entry(&sender, entry.transfer.nonce);
        self.insert_entry(sender, entry);
        // A replacement may cost more: drop the later transfers it leaves unpaid.
        self.drop_unpaid(&sender, account);
        self.attach(&sender);
        self.enforce_caps(Some(txid))?;
        Ok(txid)
    }

    /// Every step of a submission in one call (the unit tests' way in).
    #[cfg(test)]
    fn add<R: AccountReader<Error = StoreError>>(
        &mut self,
        state: &R,
        keys: &mut KeyCache,
        transfer: Transfer,
    ) -> Result<Txid, MempoolError> {
        let candidate = self.prepare(transfer)?;
        self.check(state, &candidate)?;
        let verified = candidate.verify(keys, &self.genesis)?;
        self.insert(state, verified)
    }

    /// Re-establishes the invariant for `senders` after the tip moved: drops transfers
    /// whose nonce is used, and any that leave a gap or overdraw. `returned` are the
    /// transfers of disconnected blocks, put back first (signatures already checked);
    /// the caps hold for them as for any other.
    pub fn revalidate<R: AccountReader<Error = StoreError>>(
        &mut self,
        state: &R,
        returned: Vec<Transfer>,
        senders: impl IntoIterator<Item = Address>,
    ) -> Result<(), StoreError> {
        let mut touched: BTreeSet<Address> = senders.into_iter().collect();
        // Senders whose queue may now have a gap in the middle: walked in full.
        let mut mixed = BTreeSet::new();
        for transfer in returned {
            let sender = transfer.sender();
            touched.insert(sender);
            mixed.insert(sender);
            let tx = Transaction::Transfer(transfer);
            let (txid, size) = (tx.compute_txid(), tx.encoded_len());
            let Transaction::Transfer(transfer) = tx else {
                unreachable!("built as a transfer above")
            };
            let nonce = transfer.nonce;
            let pending_fee = self
                .senders
                .get(&sender)
                .and_then(|q| q.entries.get(&nonce))
                .map(|e| e.transfer.fee);
            // Keep what is pending unless the returned one pays more.
            if pending_fee.is_some_and(|fee| fee >= transfer.fee)
                || self.by_txid.contains_key(&txid)
            {
                continue;
            }
            self.detach(&sender);
            self.remove_entry(&sender, nonce);
            self.insert_entry(
                sender,
                Entry {
                    transfer,
                    txid,
                    size,
                },
            );
            self.attach(&sender);
        }
        for sender in touched {
            if !self.senders.contains_key(&sender) {
                continue;
            }
            let account = state.account(&sender)?.unwrap_or_default();
            self.detach(&sender);
            // Used nonces first.
            while let Some(nonce) = self.first_nonce(&sender).filter(|n| *n < account.nonce) {
                self.remove_entry(&sender, nonce);
            }
            if mixed.contains(&sender) {
                self.drop_from_first_gap(&sender, account.nonce);
            } else if self
                .first_nonce(&sender)
                .is_some_and(|n| n != account.nonce)
            {
                // Consecutive already: a queue that does not start at the account's
                // nonce cannot be mined at all.
                self.drop_from_first_gap(&sender, account.nonce);
            }
            self.drop_unpaid(&sender, account);
            self.attach(&sender);
        }
        // Only transfers that were in the mempool before can go here: none is refused.
        let _ = self.enforce_caps(None);
        Ok(())
    }

    /// Up to `max_bytes` of transfers for a block: the best fee rate first, each sender's
    /// in nonce order.
    pub fn select(&self, max_bytes: usize) -> Vec<Transfer> {
        // Each sender's first transfer in fee-rate order, merged with the transfers that
        // follow those taken.
        let mut heads = self.heads.iter().rev().peekable();
        let mut followers: BinaryHeap<RateKey> = BinaryHeap::new();
        let mut left = max_bytes;
        let mut out = Vec::new();
        while left >= self.min_transfer_bytes {
            let from_heads = match (heads.peek(), followers.peek()) {
                (Some(h), Some(f)) => *h >= f,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let key = if from_heads {
                heads.next().copied()
            } else {
                followers.pop()
            };
            let Some((_, Reverse(txid))) = key else { break };
            let Some((sender, nonce)) = self.by_txid.get(&txid) else {
                continue;
            };
            let Some(queue) = self.senders.get(sender) else {
                continue;
            };
            let Some(entry) = queue.entries.get(nonce) else {
                continue;
            };
            // A sender whose next transfer does not fit is done: the rest depend on it.
            if entry.size > left {
                continue;
            }
            left -= entry.size;
            out.push(entry.transfer.clone());
            if let Some(next) = queue.entries.get(&(nonce + 1)) {
                followers.push(next.key());
            }
        }
        out
    }

    fn first_nonce(&self, sender: &Address) -> Option<u64> {
        Some(*self.senders.get(sender)?.entries.first_key_value()?.0)
    }

    fn last_nonce(&self, sender: &Address) -> Option<u64> {
        Some(*self.senders.get(sender)?.entries.last_key_value()?.0)
    }

    /// Takes a sender out of the head and queue orders before its queue changes.
    fn detach(&mut self, sender: &Address) {
        if let Some(queue) = self.senders.get(sender) {
            if let Some((_, head)) = queue.entries.first_key_value() {
                self.heads.remove(&head.key());
            }
            self.queues.remove(&(queue.rate(), *sender));
        }
    }

    /// Puts a sender back into the head and queue orders after its queue changed.
    fn attach(&mut self, sender: &Address) {
        let Some(queue) = self.senders.get(sender) else {
            return;
        };
        match queue.entries.first_key_value() {
            Some((_, head)) => {
                self.heads.insert(head.key());
                self.queues.insert((queue.rate(), *sender));
            }
            None => {
                self.senders.remove(sender);
            }
        }
    }

    /// Adds an entry to a detached sender's queue (its nonce's slot must be free).
    fn insert_entry(&mut self, sender: Address, entry: Entry) {
        let queue = self.senders.entry(sender).or_default();
        queue.cost += entry.cost();
        queue.fee = queue.fee.saturating_add(entry.transfer.fee.units());
        queue.size += entry.size as u64;
        self.by_txid
            .insert(entry.txid, (sender, entry.transfer.nonce));
        self.by_rate.insert(entry.key());
        self.bytes += entry.size;
        queue.entries.insert(entry.transfer.nonce, entry);
    }

    /// Removes an entry from a detached sender's queue.
    fn remove_entry(&mut self, sender: &Address, nonce: u64) -> Option<Entry> {
        let queue = self.senders.get_mut(sender)?;
        let entry = queue.entries.remove(&nonce)?;
        queue.cost -= entry.cost();
        queue.fee = queue.fee.saturating_sub(entry.transfer.fee.units());
        queue.size -= entry.size as u64;
        self.by_txid.remove(&entry.txid);
        self.by_rate.remove(&entry.key());
        self.bytes -= entry.size;
        Some(entry)
    }

    /// Drops a detached sender's last transfers until the balance pays them all.
    fn drop_unpaid(&mut self, sender: &Address, account: Account) {
        let balance = u128::from(account.balance.units());
        while self.senders.get(sender).is_some_and(|q| q.cost > balance) {
            let Some(last) = self.last_nonce(sender) else {
                break;
            };
            self.remove_entry(sender, last);
        }
    }

    /// Drops a detached sender's transfers from the first that does not follow on
    /// `expected` (walks the queue).
    fn drop_from_first_gap(&mut self, sender: &Address, mut expected: u64) {
        let Some(queue) = self.senders.get(sender) else {
            return;
        };
        let mut cut = None;
        for nonce in queue.entries.keys() {
            if *nonce != expected {
                cut = Some(*nonce);
                break;
            }
            expected += 1;
        }
        if let Some(cut) = cut {
            while let Some(last) = self.last_nonce(sender).filter(|n| *n >= cut) {
                self.remove_entry(sender, last);
            }
        }
    }

    /// Evicts the last transfer of the queue with the lowest whole fee rate until the
    /// caps hold. If the newcomer `txid` itself goes, it is refused.
    fn enforce_caps(&mut self, newcomer: Option<Txid>) -> Result<(), MempoolError> {
        let mut refused = false;
        while self.by_txid.len() > self.limits.max_count || self.bytes > self.limits.max_bytes {
            let Some(&(_, sender)) = self.queues.first() else {
                break;
            };
            self.detach(&sender);
            if let Some(last) = self.last_nonce(&sender)
                && let Some(entry) = self.remove_entry(&sender, last)
            {
                refused |= Some(entry.txid) == newcomer;
            }
            self.attach(&sender);
        }
        if refused {
            Err(MempoolError::Full)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxchain_primitives::SecretKey;

    /// Accounts with a balance and nonce 0, for unit tests without a store.
    struct Accounts(HashMap<Address, Account>);

    impl AccountReader for Accounts {
        type Error = StoreError;
        fn account(&self, address: &Address) -> Result<Option<Account>, StoreError> {
            Ok(self.0.get(address).copied())
        }
    }

    fn key(i: u32) -> SecretKey {
        SecretKey::from_seed(oxchain_primitives::sha256(&i.to_le_bytes()))
    }

    fn transfer(from: &SecretKey, fee: u64, nonce: u64) -> Transfer {
        let mut t = Transfer {
            from: from.public_key(),
            to: Address([7; 20]),
            amount: Amount::from_units(1_000),
            fee: Amount::from_units(fee),
            nonce,
            data: Vec::new(),
            signature: Signature([0; 64]),
        };
        t.sign(from, &BlockHash::default());
        t
    }

    fn funded(keys: &[SecretKey]) -> Accounts {
        Accounts(
            keys.iter()
                .map(|k| {
                    (
                        Address::from_public_key(&k.public_key()),
                        Account {
                            balance: Amount::from_units(1 << 40),
                            nonce: 0,
                        },
                    )
                })
                .collect(),
        )
    }

    /// The sums and orders agree with the queues, and every queue is consecutive.
    fn assert_consistent(pool: &Mempool) {
        let mut count = 0;
        let mut bytes = 0;
        for (sender, queue) in &pool.senders {
            assert!(!queue.entries.is_empty());
            let first = *queue.entries.first_key_value().unwrap().0;
            for (i, (nonce, entry)) in queue.entries.iter().enumerate() {
                assert_eq!(*nonce, first + i as u64, "consecutive");
                assert_eq!(pool.by_txid[&entry.txid], (*sender, *nonce));
                assert!(pool.by_rate.contains(&entry.key()));
            }
            assert_eq!(queue.cost, queue.cost_of(..));
            assert!(
                pool.heads
                    .contains(&queue.entries.first_key_value().unwrap().1.key())
            );
            assert!(pool.queues.contains(&(queue.rate(), *sender)));
            count += queue.entries.len();
            bytes += queue.entries.values().map(|e| e.size).sum::<usize>();
        }
        assert_eq!(pool.by_txid.len(), count);
        assert_eq!(pool.by_rate.len(), count);
        assert_eq!(pool.heads.len(), pool.senders.len());
        assert_eq!(pool.queues.len(), pool.senders.len());
        assert_eq!(pool.bytes, bytes);
    }

    #[test]
    fn a_high_fee_tail_does_not_pin_the_low_fee_transfers_before_it() {
        let keys: Vec<SecretKey> = (0..2).map(key).collect();
        let state = funded(&keys);
        let limits = MempoolLimits {
            max_count: 10,
            ..MempoolLimits::default()
        };
        let mut pool = Mempool::new(BlockHash::default(), limits);
        let mut cache = KeyCache::default();
        // Sender 0: eight transfers near the minimum fee, then one paying 100 times
        // more: the best rate of all, but not enough to lift the whole queue's.
        for nonce in 0..8 {
            pool.add(&state, &mut cache, transfer(&keys[0], 200, nonce))
                .unwrap();
        }
        pool.add(&state, &mut cache, transfer(&keys[0], 20_000, 8))
            .unwrap();
        // Sender 1 pays a good rate on every transfer: they push sender 0's out.
        for nonce in 0..5 {
            pool.add(&state, &mut cache, transfer(&keys[1], 5_000, nonce))
                .unwrap();
            assert_consistent(&pool);
        }
        assert_eq!(pool.len(), 10);
        let sender1 = Address::from_public_key(&keys[1].public_key());
        assert_eq!(
            pool.next_nonce(&sender1),
            Some(5),
            "every good transfer stays"
        );
        // Evicting sender 0's high-fee tail first keeps its queue consecutive.
        let sender0 = Address::from_public_key(&keys[0].public_key());
        assert_eq!(pool.next_nonce(&sender0), Some(5));
    }

    #[test]
    fn the_orders_stay_consistent_through_replacements_evictions_and_blocks() {
        let keys: Vec<SecretKey> = (0..6).map(key).collect();
        let mut state = funded(&keys);
        let limits = MempoolLimits {
            max_count: 40,
            ..MempoolLimits::default()
        };
        let mut pool = Mempool::new(BlockHash::default(), limits);
        let mut cache = KeyCache::default();
        for round in 0..10u64 {
            for (i, k) in keys.iter().enumerate() {
                let sender = Address::from_public_key(&k.public_key());
                let next = pool.next_nonce(&sender).unwrap_or(state.0[&sender].nonce);
                let fee = 200 + (round * 37 + i as u64 * 101) % 900;
                let _ = pool.add(&state, &mut cache, transfer(k, fee, next));
                assert_consistent(&pool);
            }
            // Replace sender 0's first pending transfer with a higher fee.
            let sender0 = Address::from_public_key(&keys[0].public_key());
            if let Some(first) = pool.first_nonce(&sender0) {
                let _ = pool.add(
                    &state,
                    &mut cache,
                    transfer(&keys[0], 100_000 + round, first),
                );
                assert_consistent(&pool);
            }
            // A block mines everyone's first transfer.
            let mined = pool.select(usize::MAX);
            for t in mined
                .iter()
                .filter(|t| pool.first_nonce(&t.sender()) == Some(t.nonce))
            {
                let account = state.0.get_mut(&t.sender()).unwrap();
                account.nonce = t.nonce + 1;
            }
            pool.revalidate(
                &state,
                Vec::new(),
                keys.iter()
                    .map(|k| Address::from_public_key(&k.public_key())),
            )
            .unwrap();
            assert_consistent(&pool);
        }
        assert!(pool.len() <= 40);
    }

    #[test]
    fn a_template_stops_when_nothing_more_fits() {
        let keys: Vec<SecretKey> = (0..3).map(key).collect();
        let state = funded(&keys);
        let mut pool = Mempool::new(BlockHash::default(), MempoolLimits::default());
        let mut cache = KeyCache::default();
        for k in &keys {
            for nonce in 0..3 {
                pool.add(&state, &mut cache, transfer(k, 1_000, nonce))
                    .unwrap();
            }
        }
        let size = pool.min_transfer_bytes;
        assert_eq!(pool.select(size * 4 + size / 2).len(), 4);
        assert_eq!(pool.select(usize::MAX).len(), 9);
        assert!(pool.select(size - 1).is_empty());
    }
}
