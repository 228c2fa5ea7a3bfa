//! A hostile peer: a real libp2p peer (TCP, noise, yamux) that speaks only the sync
//! protocol, with the crate's own codec, and answers as its script says. It records every
//! request it gets, so that a test can see what the node asked.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::futures::StreamExt;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, StreamProtocol, SwarmBuilder, noise, tcp, yamux};
use oxchain_consensus::ChainParams;
use oxchain_net::codec::SyncCodec;
use oxchain_net::message::{MAX_HEADERS, SyncRequest, SyncResponse};
use oxchain_primitives::{BlockHash, Height, Work};
use oxchain_storage::Store;

/// How the adversary answers.
pub(crate) enum Script {
    /// Claims far more work than any chain has, and shows none: no headers, no blocks.
    Liar,
    /// Serves the best chain of `store` honestly, except that it answers each request
    /// for blocks with the first block asked for only.
    FirstBlockOnly(Store),
    /// Claims the work of `store`'s chain, and answers GetHeaders with its headers in
    /// the wrong order (they do not chain): a fault any peer could see.
    Unchained(Store),
}

impl Script {
    fn answer(&self, request: SyncRequest) -> SyncResponse {
        let genesis = ChainParams::regtest().genesis_hash();
        match (self, request) {
            (Script::Liar, SyncRequest::Status) => SyncResponse::Status {
                genesis,
                tip: BlockHash([0xaa; 32]),
                height: Height(1_000_000),
                total_work: Work::from_be_bytes({
                    let mut huge = [0xff; 32];
                    huge[0] = 0;
                    huge
                }),
            },
            (Script::Liar, SyncRequest::GetHeaders { .. }) => SyncResponse::Headers(Vec::new()),
            (Script::Liar, SyncRequest::GetBlocks(_)) => SyncResponse::Blocks(Vec::new()),
            (Script::Unchained(store), SyncRequest::GetHeaders { .. }) => {
                let tip = store.tip().unwrap().height.0;
                let mut headers: Vec<_> = (1..=tip)
                    .map(|h| {
                        let hash = store.hash_at(Height(h)).unwrap().unwrap();
                        store.header(&hash).unwrap().unwrap().header
                    })
                    .collect();
                headers.reverse();
                SyncResponse::Headers(headers)
            }
            (Script::Unchained(_), SyncRequest::GetBlocks(_)) => SyncResponse::Blocks(Vec::new()),
            (Script::FirstBlockOnly(store) | Script::Unchained(store), SyncRequest::Status) => {
                let tip = store.tip().unwrap();
                SyncResponse::Status {
                    genesis,
                    tip: tip.hash,
                    height: tip.height,
                    total_work: tip.chain_work,
                }
            }
            (Script::FirstBlockOnly(store), SyncRequest::GetHeaders { locator, max }) => {
                let start = locator
                    .iter()
                    .find_map(|hash| {
                        let record = store.header(hash).ok()??;
                        (store.hash_at(record.height).ok()?? == *hash)
                            .then_some(record.height.0 + 1)
                    })
                    .unwrap_or(1);
                let max = usize::from(max).min(MAX_HEADERS) as u64;
                let headers = (start..start + max)
                    .map_while(|h| {
                        let hash = store.hash_at(Height(h)).ok()??;
                        Some(store.header(&hash).ok()??.header)
                    })
                    .collect();
                SyncResponse::Headers(headers)
            }
            (Script::FirstBlockOnly(store), SyncRequest::GetBlocks(hashes)) => {
                SyncResponse::Blocks(
                    hashes
                        .first()
                        .and_then(|h| store.block(h).ok().flatten())
                        .into_iter()
                        .collect(),
                )
            }
        }
    }
}

/// A running adversary; dropping it disconnects it.
pub(crate) struct Adversary {
    requests: Arc<Mutex<Vec<SyncRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Adversary {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Adversary {
    /// Dials the node at `target` (a multiaddr with `/p2p/ID`) and answers by `script`.
    pub(crate) fn start(target: &str, script: Script) -> Adversary {
        let genesis = ChainParams::regtest().genesis_hash().to_string();
        let protocol =
            StreamProtocol::try_from_owned(format!("/oxchain/regtest/{}/sync/1", &genesis[..16]))
                .unwrap();
        let mut swarm = SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| {
                request_response::Behaviour::<SyncCodec>::new(
                    [(protocol, ProtocolSupport::Full)],
                    request_response::Config::default(),
                )
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
            .build();
        swarm.dial(target.parse::<Multiaddr>().unwrap()).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                if let SwarmEvent::Behaviour(request_response::Event::Message {
                    message:
                        request_response::Message::Request {
                            request, channel, ..
                        },
                    ..
                }) = swarm.select_next_some().await
                {
                    log.lock().unwrap().push(request.clone());
                    let _ = swarm
                        .behaviour_mut()
                        .send_response(channel, script.answer(request));
                }
            }
        });
        Adversary { requests, task }
    }

    /// Requests of a kind received so far.
    pub(crate) fn count(&self, kind: fn(&SyncRequest) -> bool) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| kind(r))
            .count()
    }

    /// Every `GetBlocks` received, in order.
    pub(crate) fn block_requests(&self) -> Vec<Vec<BlockHash>> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter_map(|r| match r {
                SyncRequest::GetBlocks(hashes) => Some(hashes.clone()),
                _ => None,
            })
            .collect()
    }
}
