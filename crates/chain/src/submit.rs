//! Transfer submissions from the API: a few checker threads, each with its own queue
//! and decoded-key cache, that take submissions in batches. A batch's signatures are
//! checked in one go (no lock held), then its transfers go into the mempool under one
//! write lock. A sender's submissions always go to the same thread, in order, so the
//! node's own signing (the tutorials' routes) gives each one the next nonce.
//!
//! Callers await the answer; nothing here runs on the async runtime.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use oxchain_consensus::signatures::KeyCache;
use oxchain_primitives::{Account, Address, Amount, SecretKey, Signature, Transfer, Txid};
use tokio::sync::oneshot;

use crate::mempool::{Candidate, verify_candidates};
use crate::{ChainView, MempoolError};

/// Submissions waiting per checker thread; a full queue answers [`MempoolError::Busy`].
const QUEUE: usize = 4096;
/// Submissions checked together at most.
const MAX_BATCH: usize = 64;

type Reply = oneshot::Sender<Result<Txid, MempoolError>>;

enum Job {
    /// A transfer signed elsewhere.
    Signed(Transfer, Reply),
    /// A transfer for the node to sign with the sender's next nonce.
    Sign {
        key: SecretKey,
        to: Address,
        amount: Amount,
        fee: Amount,
        reply: Reply,
    },
}

/// The checker threads. Dropping it stops them once their queues are empty.
#[derive(Debug)]
pub struct Submitter {
    queues: Vec<SyncSender<Job>>,
}

impl Submitter {
    /// Starts `threads` checker threads (at least one) on `view`.
    pub fn start(view: ChainView, threads: usize) -> std::io::Result<Submitter> {
        let mut queues = Vec::new();
        for i in 0..threads.max(1) {
            let (queue, inbox) = sync_channel(QUEUE);
            let view = view.clone();
            std::thread::Builder::new()
                .name(format!("submit-{i}"))
                .spawn(move || run(view, inbox))?;
            queues.push(queue);
        }
        Ok(Submitter { queues })
    }

    /// Checks a signed transfer and adds it to the mempool.
    pub async fn submit(&self, transfer: Transfer) -> Result<Txid, MempoolError> {
        let sender = transfer.sender();
        let (reply, answer) = oneshot::channel();
        self.send(&sender, Job::Signed(transfer, reply))?;
        answer.await.map_err(|_| MempoolError::Busy)?
    }

    /// Signs a transfer from `key` with the sender's next nonce (counting its pending
    /// transfers) and adds it to the mempool.
    pub async fn sign_and_submit(
        &self,
        key: SecretKey,
        to: Address,
        amount: Amount,
        fee: Amount,
    ) -> Result<Txid, MempoolError> {
        let sender = Address::from_public_key(&key.public_key());
        let (reply, answer) = oneshot::channel();
        let job = Job::Sign {
            key,
            to,
            amount,
            fee,
            reply,
        };
        self.send(&sender, job)?;
        answer.await.map_err(|_| MempoolError::Busy)?
    }

    fn send(&self, sender: &Address, job: Job) -> Result<(), MempoolError> {
        let thread =
            usize::from(u16::from_le_bytes([sender.0[0], sender.0[1]])) % self.queues.len();
        match self.queues[thread].try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(MempoolError::Busy),
        }
    }
}

/// How long a checker keeps looking for more submissions before it sleeps: under load
/// the next one comes within microseconds, and a sleep and wake-up cost more.
const LINGER: std::time::Duration = std::time::Duration::from_micros(200);

/// The next submission: at once if one is waiting, else after a short linger, else
/// whenever one comes. `None` when the queue is closed.
fn next_job(inbox: &Receiver<Job>) -> Option<Job> {
    let started = std::time::Instant::now();
    loop {
        match inbox.try_recv() {
            Ok(job) => return Some(job),
            Err(std::sync::mpsc::TryRecvError::Disconnected) => return None,
            Err(std::sync::mpsc::TryRecvError::Empty) if started.elapsed() < LINGER => {
                std::thread::yield_now();
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => return inbox.recv().ok(),
        }
    }
}

fn run(view: ChainView, inbox: Receiver<Job>) {
    let mut keys = KeyCache::default();
    while let Some(first) = next_job(&inbox) {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match inbox.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        check_batch(&view, &mut keys, jobs);
    }
}

/// One batch: the nonces of what the node signs (read-locked), the signing (no lock),
/// the cheap checks (read-locked), every signature at once (no lock), then the inserts
/// in order under one write lock.
fn check_batch(view: &ChainView, keys: &mut KeyCache, jobs: Vec<Job>) {
    let genesis = view.params().genesis_hash();
    // Nonces first: a sender's next one counting its pending transfers and those before
    // it in this batch.
    let mut unsigned = Vec::with_capacity(jobs.len());
    {
        let pool = view.mempool();
        let mut next: HashMap<Address, u64> = HashMap::new();
        for job in jobs {
            let Job::Sign { key, .. } = &job else {
                unsigned.push((job, 0));
                continue;
            };
            let sender = Address::from_public_key(&key.public_key());
            let nonce = match next
                .get(&sender)
                .copied()
                .or_else(|| pool.next_nonce(&sender))
            {
                Some(nonce) => nonce,
                None => match view.store().account(&sender) {
                    Ok(account) => account.unwrap_or_default().nonce,
                    Err(e) => {
                        if let Job::Sign { reply, .. } = job {
                            let _ = reply.send(Err(e.into()));
                        }
                        continue;
                    }
                },
            };
            next.insert(sender, nonce + 1);
            unsigned.push((job, nonce));
        }
    }
    let signed: Vec<(Transfer, Reply)> = unsigned
        .into_iter()
        .map(|(job, nonce)| match job {
            Job::Signed(transfer, reply) => (transfer, reply),
            Job::Sign {
                key,
                to,
                amount,
                fee,
                reply,
            } => {
                let mut transfer = Transfer {
                    from: key.public_key(),
                    to,
                    amount,
                    fee,
                    nonce,
                    data: Vec::new(),
                    signature: Signature([0; 64]),
                };
                transfer.sign(&key, &genesis);
                (transfer, reply)
            }
        })
        .collect();

    // Accounts read for the checks, used again by the inserts if the tip has not moved.
    let tip_at = view.watch().tip();
    let mut accounts: HashMap<Address, Account> = HashMap::new();
    let mut candidates = Vec::with_capacity(signed.len());
    let mut replies = Vec::with_capacity(signed.len());
    {
        let pool = view.mempool();
        // Senders seen earlier in the batch: their later transfers depend on the earlier
        // ones' inserts, so only the insert checks them against the state.
        let mut seen: HashSet<Address> = HashSet::new();
        for (transfer, reply) in signed {
            let sender = transfer.sender();
            let checked = pool.prepare(transfer).and_then(|candidate: Candidate| {
                if seen.insert(sender) {
                    accounts.insert(sender, pool.check(view.store(), &candidate)?);
                }
                Ok(candidate)
            });
            match checked {
                Ok(candidate) => {
                    candidates.push(candidate);
                    replies.push(reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            }
        }
    }
    if candidates.is_empty() {
        return;
    }
    let verified = verify_candidates(keys, &genesis, candidates);
    let mut accepted = Vec::new();
    {
        let mut pool = view.mempool_mut();
        if view.watch().tip() != tip_at {
            accounts.clear();
        }
        for (verified, reply) in verified.into_iter().zip(replies) {
            let outcome = verified.and_then(|v| {
                let transfer = v.transfer().clone();
                let inserted = match accounts.get(&transfer.sender()) {
                    Some(account) => pool.insert_at(*account, v),
                    None => pool.insert(view.store(), v),
                };
                inserted.map(|txid| (txid, transfer))
            });
            match outcome {
                Ok((txid, transfer)) => accepted.push((txid, transfer, reply)),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            }
        }
    }
    for (txid, transfer, reply) in accepted {
        view.announce(txid, transfer);
        let _ = reply.send(Ok(txid));
    }
}
