//! An adversarial peer: a real libp2p peer (TCP, noise, yamux) that speaks the sync
//! protocol with the network crate's own codec and answers as its [`Script`] says,
//! honestly or not. It records every request it gets, so that a test can see what the
//! node asked. Each one has a fresh peer id: starting several is a host that rotates
//! its identity. [`gossip`] is its gossip side: a bare gossipsub peer that publishes
//! whatever it is told to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, StreamProtocol, SwarmBuilder, noise, tcp, yamux};
use oxchain_consensus::ChainParams;
use oxchain_net::codec::SyncCodec;
use oxchain_net::message::{SyncRequest, SyncResponse};
use oxchain_primitives::{BlockHash, Height, Work};
use oxchain_storage::Store;

/// How the adversary answers. Every script serves a regtest chain.
pub enum Script {
    /// Serves the best chain of the store as a node does.
    Serve(Store),
    /// Claims far more work than any chain has, and shows none: no headers, no blocks.
    Liar,
    /// Serves the store's chain, except that it answers each request for blocks with the
    /// first block asked for only.
    FirstBlockOnly(Store),
    /// Serves the store's chain, except that its headers come in the wrong order (they
    /// do not chain): a fault any peer could see.
    Unchained(Store),
    /// Serves the store's chain, except that each request for blocks is answered with
    /// the chain's tip block, asked for or not.
    Unrequested(Store),
    /// Claims the store's chain, and never answers a request for headers or blocks.
    Stall(Store),
    /// Serves the store's chain, except that every `GetPending` is answered with these
    /// transactions, whatever it asked for.
    Pending(Store, Vec<oxchain_primitives::Transaction>),
    /// Serves the store's chain, except that a request for blocks is answered with these
    /// blocks (those of the hashes asked for), stored or not: blocks no node would store.
    Give(Store, Vec<oxchain_primitives::Block>),
}

fn huge_work() -> Work {
    let mut huge = [0xff; 32];
    huge[0] = 0;
    Work::from_be_bytes(huge)
}

impl Script {
    /// The answer to `request`, or none (the request is left to time out).
    fn answer(&self, request: SyncRequest) -> Option<SyncResponse> {
        let genesis = ChainParams::regtest().genesis_hash();
        let serve = |store: &Store, request| oxchain_net::serve::answer(store, genesis, request);
        Some(match (self, request) {
            (Script::Liar, SyncRequest::Status) => SyncResponse::Status {
                genesis,
                tip: BlockHash([0xaa; 32]),
                height: Height(1_000_000),
                total_work: huge_work(),
            },
            (Script::Liar, SyncRequest::GetHeaders { .. }) => SyncResponse::Headers(Vec::new()),
            (Script::Liar, SyncRequest::GetBlocks(_)) => SyncResponse::Blocks(Vec::new()),
            (Script::Liar, SyncRequest::GetBlockTxs { .. }) => SyncResponse::BlockTxs(Vec::new()),
            (Script::Liar, SyncRequest::GetPending { .. }) => SyncResponse::Pending(Vec::new()),
            (Script::FirstBlockOnly(store), SyncRequest::GetBlocks(hashes)) => {
                let first = hashes.into_iter().take(1).collect();
                serve(store, SyncRequest::GetBlocks(first))
            }
            (Script::Unchained(store), request @ SyncRequest::GetHeaders { .. }) => {
                let SyncResponse::Headers(mut headers) = serve(store, request) else {
                    unreachable!("headers answer headers")
                };
                headers.reverse();
                SyncResponse::Headers(headers)
            }
            (Script::Unrequested(store), SyncRequest::GetBlocks(_)) => {
                let tip = store.tip().unwrap().hash;
                serve(store, SyncRequest::GetBlocks(vec![tip]))
            }
            (Script::Give(_, blocks), SyncRequest::GetBlocks(hashes)) => SyncResponse::Blocks(
                hashes
                    .iter()
                    .filter_map(|h| blocks.iter().find(|b| b.compute_hash() == *h).cloned())
                    .collect(),
            ),
            (Script::Pending(_, txs), SyncRequest::GetPending { .. }) => {
                SyncResponse::Pending(txs.clone())
            }
            (Script::Stall(store), SyncRequest::Status) => serve(store, SyncRequest::Status),
            (Script::Stall(_), _) => return None,
            (
                Script::Serve(store)
                | Script::FirstBlockOnly(store)
                | Script::Unchained(store)
                | Script::Unrequested(store)
                | Script::Pending(store, _)
                | Script::Give(store, _),
                request,
            ) => serve(store, request),
        })
    }
}

/// A running adversary; dropping it disconnects it.
pub struct Adversary {
    requests: Arc<Mutex<Vec<SyncRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Adversary {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Adversary {
    /// Dials the node at `target` (a multiaddr with `/p2p/ID`) under a fresh peer id and
    /// answers by `script`. Must be called within a tokio runtime.
    pub fn start(target: &str, script: Script) -> Adversary {
        let protocol = sync_protocol();
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
                    request_response::Config::default()
                        .with_request_timeout(Duration::from_secs(600)),
                )
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
            .build();
        swarm.dial(target.parse::<Multiaddr>().unwrap()).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let task = tokio::spawn(async move {
            // Unanswered requests keep their channels here, so that their streams stay
            // open until the node gives up on them.
            let mut held = Vec::new();
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
                    match script.answer(request) {
                        Some(response) => {
                            let _ = swarm.behaviour_mut().send_response(channel, response);
                        }
                        None => held.push(channel),
                    }
                }
            }
        });
        Adversary { requests, task }
    }

    /// Requests of a kind received so far.
    pub fn count(&self, kind: fn(&SyncRequest) -> bool) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| kind(r))
            .count()
    }

    /// Every `GetBlocks` received, in order.
    pub fn block_requests(&self) -> Vec<Vec<BlockHash>> {
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

/// A peer that gossips and serves under one peer id, as a node that relays a compact
/// block does: the node asks the sender of a compact block for what it lacks.
#[derive(libp2p::swarm::NetworkBehaviour)]
struct GossipAndSync {
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<SyncCodec>,
}

impl Adversary {
    /// Dials the node at `target` under a fresh peer id, publishes `messages` on `topic`
    /// once the node has subscribed it, and answers sync requests by `script`.
    pub fn relay(
        target: &str,
        script: Script,
        topic: IdentTopic,
        messages: Vec<Vec<u8>>,
    ) -> Adversary {
        let largest = messages.iter().map(Vec::len).max().unwrap_or(0);
        let mut swarm = SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| GossipAndSync {
                gossipsub: gossip_behaviour(
                    gossipsub::MessageAuthenticity::Anonymous,
                    gossipsub::ValidationMode::Anonymous,
                    largest,
                ),
                sync: request_response::Behaviour::<SyncCodec>::new(
                    [(sync_protocol(), ProtocolSupport::Full)],
                    request_response::Config::default()
                        .with_request_timeout(Duration::from_secs(600)),
                ),
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
            .build();
        swarm.behaviour_mut().gossipsub.subscribe(&topic).unwrap();
        swarm.dial(target.parse::<Multiaddr>().unwrap()).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            let mut unsent = Some(messages);
            loop {
                match swarm.select_next_some().await {
                    SwarmEvent::Behaviour(GossipAndSyncEvent::Gossipsub(
                        gossipsub::Event::Subscribed { topic: t, .. },
                    )) if t == topic.hash() => {
                        for data in unsent.take().into_iter().flatten() {
                            swarm
                                .behaviour_mut()
                                .gossipsub
                                .publish(topic.clone(), data)
                                .unwrap();
                        }
                    }
                    SwarmEvent::Behaviour(GossipAndSyncEvent::Sync(
                        request_response::Event::Message {
                            message:
                                request_response::Message::Request {
                                    request, channel, ..
                                },
                            ..
                        },
                    )) => {
                        log.lock().unwrap().push(request.clone());
                        match script.answer(request) {
                            Some(response) => {
                                let _ = swarm.behaviour_mut().sync.send_response(channel, response);
                            }
                            None => held.push(channel),
                        }
                    }
                    _ => {}
                }
            }
        });
        Adversary { requests, task }
    }
}

/// The regtest sync protocol's id.
fn sync_protocol() -> StreamProtocol {
    let genesis = ChainParams::regtest().genesis_hash().to_string();
    StreamProtocol::try_from_owned(format!("/oxchain/regtest/{}/sync/1", &genesis[..16])).unwrap()
}

/// How a raw gossip peer's envelope is made.
#[derive(Debug, Clone, Copy)]
pub enum Envelope {
    /// As the protocol says: no author, sequence number or signature (ADR 0013).
    Anonymous,
    /// Signed by the peer's key, as gossipsub does by default.
    Signed,
}

/// A bare libp2p peer under a fresh peer id that speaks gossipsub only: it dials
/// `target`, waits until the node has subscribed it to `topic`, publishes `messages` in
/// order (valid or not, each distinct), then keeps the connection until the node drops
/// it (a ban) or `linger` passes.
pub async fn gossip(
    target: &str,
    topic: IdentTopic,
    messages: Vec<Vec<u8>>,
    linger: Duration,
    envelope: Envelope,
) {
    let largest = messages.iter().map(Vec::len).max().unwrap_or(0);
    let mut swarm = gossip_swarm(envelope, largest);
    swarm.behaviour_mut().subscribe(&topic).unwrap();
    swarm.dial(target.parse::<Multiaddr>().unwrap()).unwrap();
    // Publish once the node has subscribed us into its view of the topic.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let event = tokio::time::timeout_at(deadline, swarm.select_next_some())
            .await
            .expect("the node subscribes");
        if let SwarmEvent::Behaviour(gossipsub::Event::Subscribed { topic: t, .. }) = event
            && t == topic.hash()
        {
            break;
        }
    }
    for data in messages {
        swarm.behaviour_mut().publish(topic.clone(), data).unwrap();
    }
    let _ = tokio::time::timeout(linger, async {
        loop {
            if let SwarmEvent::ConnectionClosed { .. } = swarm.select_next_some().await {
                return;
            }
        }
    })
    .await;
}

/// A gossipsub-only swarm under a fresh peer id.
fn gossip_swarm(envelope: Envelope, largest: usize) -> libp2p::Swarm<gossipsub::Behaviour> {
    SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|key| match envelope {
            Envelope::Anonymous => gossip_behaviour(
                gossipsub::MessageAuthenticity::Anonymous,
                gossipsub::ValidationMode::Anonymous,
                largest,
            ),
            Envelope::Signed => gossip_behaviour(
                gossipsub::MessageAuthenticity::Signed(key.clone()),
                gossipsub::ValidationMode::Strict,
                largest,
            ),
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

/// A gossipsub behaviour that sends messages of up to `largest` bytes.
fn gossip_behaviour(
    authenticity: gossipsub::MessageAuthenticity,
    mode: gossipsub::ValidationMode,
    largest: usize,
) -> gossipsub::Behaviour {
    let config = gossipsub::ConfigBuilder::default()
        .heartbeat_interval(Duration::from_millis(200))
        .max_transmit_size((largest + 1024).max(65_536))
        .validation_mode(mode)
        // Ids from the content, as a node makes them, so that distinct messages without
        // an author or sequence number are distinct.
        .message_id_fn(|m: &gossipsub::Message| {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            m.data.hash(&mut hasher);
            gossipsub::MessageId::from(hasher.finish().to_be_bytes().to_vec())
        })
        .build()
        .unwrap();
    gossipsub::Behaviour::new(authenticity, config).unwrap()
}

/// A gossipsub peer under a fresh peer id that dials `target`, subscribes to `topic`
/// and returns every message it receives on it, in order. `ready` is called once the
/// target's own subscription to `topic` has arrived (so it has had ours, sent at the
/// same time, too); the listening stops one second after the `n`th message (to catch
/// any extra one), or at `max`.
pub async fn listen_for(
    target: &str,
    topic: IdentTopic,
    n: usize,
    max: Duration,
    ready: impl FnOnce(),
) -> Vec<Vec<u8>> {
    let mut swarm = gossip_swarm(Envelope::Anonymous, 2 << 20);
    swarm.behaviour_mut().subscribe(&topic).unwrap();
    swarm.dial(target.parse::<Multiaddr>().unwrap()).unwrap();
    let mut received = Vec::new();
    let mut ready = Some(ready);
    let deadline = tokio::time::Instant::now() + max;
    let mut stop_at = deadline;
    while let Ok(event) = tokio::time::timeout_at(stop_at, swarm.select_next_some()).await {
        match event {
            SwarmEvent::Behaviour(gossipsub::Event::Subscribed { topic: t, .. })
                if t == topic.hash() =>
            {
                if let Some(ready) = ready.take() {
                    ready();
                }
            }
            SwarmEvent::Behaviour(gossipsub::Event::Message { message, .. })
                if message.topic == topic.hash() =>
            {
                received.push(message.data);
                if received.len() == n {
                    stop_at = deadline.min(tokio::time::Instant::now() + Duration::from_secs(1));
                }
            }
            _ => {}
        }
    }
    received
}
