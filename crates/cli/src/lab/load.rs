//! The load generator of the scenarios that mine on a clock: signed transfers at a set
//! rate, each to a random node of a set, from dev accounts taking turns (each sender's
//! nonces in order).

use std::time::{Duration, Instant};

use super::fill::Filler;
use super::observe::{Lab, http};

pub(crate) struct Load {
    filler: Filler,
    /// Seconds between two transfers; `None` sends none.
    every: Option<Duration>,
    next: Instant,
    /// The nodes it sends to.
    nodes: Vec<usize>,
    /// Txids of the transfers a node took.
    pub(crate) sent: Vec<String>,
    /// Transfers a node refused (or did not answer): counted, not fatal, as a real
    /// client would see them.
    pub(crate) refused: usize,
}

impl Load {
    /// `rate` transfers a second, from the dev accounts `accounts`, to `nodes`.
    pub(crate) fn new(rate: f64, accounts: &[usize], nodes: Vec<usize>) -> Load {
        Load {
            filler: Filler::new(accounts, 0),
            every: (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate)),
            next: Instant::now(),
            nodes,
            sent: Vec::new(),
            refused: 0,
        }
    }

    /// Sends every transfer that is due by now.
    pub(crate) async fn tick(&mut self, lab: &Lab) {
        let Some(every) = self.every else {
            return;
        };
        while Instant::now() >= self.next {
            self.next += every;
            let body = self.filler.next_body();
            // A node that is down (churn) or refuses it: the same transfer goes to up to
            // two other nodes, so that the sender's nonces stay without a gap.
            let mut took = None;
            let mut nodes = self.nodes.clone();
            for _ in 0..3.min(nodes.len()) {
                let node = nodes.swap_remove(rand::random_range(0..nodes.len()));
                if let Ok((202, answer)) =
                    http(lab.api(node), "POST", "/v1/transactions", &body, None).await
                    && let Some(txid) = answer["txid"].as_str()
                {
                    took = Some(txid.to_string());
                    break;
                }
            }
            match took {
                Some(txid) => self.sent.push(txid),
                None => self.refused += 1,
            }
        }
    }

    /// The transfers/s it sent since `since`.
    pub(crate) fn rate_since(&self, since: Instant) -> f64 {
        (self.sent.len() + self.refused) as f64 / since.elapsed().as_secs_f64().max(1e-9)
    }
}

/// How many of `txids` are on node `i`'s best chain.
pub(crate) async fn confirmed(lab: &Lab, i: usize, txids: &[String]) -> usize {
    let mut count = 0;
    for txid in txids {
        if let Ok((200, tx)) = http(
            lab.api(i),
            "GET",
            &format!("/v1/transactions/{txid}"),
            "",
            None,
        )
        .await
            && tx["status"] == "confirmed"
        {
            count += 1;
        }
    }
    count
}
