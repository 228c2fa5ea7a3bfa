//! The swarm's event loop: one task owns the swarm; the chain is reached through its
//! mutex on blocking threads, and the results come back to the loop as messages.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libp2p::futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageId};
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder, allow_block_list, connection_limits,
    identify, noise, ping, tcp, yamux,
};
use oxchain_chain::{BlockOutcome, ChainEvent, MempoolError, SharedChain};
use oxchain_consensus::Fault;
use oxchain_primitives::{Block, BlockHash, Height, Transaction, Txid, Work, decode, encode};
use oxchain_storage::Store;
use tokio::sync::{broadcast, mpsc, watch};

use crate::NetError;
use crate::codec::SyncCodec;
use crate::message::{
    MAX_GET_BLOCKS, MAX_HEADERS, MAX_LOCATOR, MAX_RESPONSE_BYTES, SyncRequest, SyncResponse,
};

/// How a node joins the network.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Where the node key lives.
    pub data_dir: PathBuf,
    /// Where to listen for peers: a multiaddr or `HOST:PORT`.
    pub listen: String,
    /// Peers to dial at start, and again (with backoff) when the connection drops: each a
    /// multiaddr (with or without `/p2p/ID`) or `HOST:PORT`.
    pub peers: Vec<String>,
    /// How long a misbehaving peer is refused.
    pub ban_for: Duration,
    /// Inbound connections at most.
    pub max_inbound: u32,
    /// Outbound connections at most.
    pub max_outbound: u32,
}

impl NetConfig {
    /// Defaults for a node listening on `listen`.
    pub fn new(data_dir: PathBuf, listen: impl Into<String>) -> NetConfig {
        NetConfig {
            data_dir,
            listen: listen.into(),
            peers: Vec::new(),
            ban_for: Duration::from_secs(3600),
            max_inbound: 64,
            max_outbound: 16,
        }
    }
}

/// A connected peer, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerView {
    /// Its peer id.
    pub peer_id: String,
    /// Its address as we see it.
    pub address: String,
    /// Its best height, once it said.
    pub height: Option<u64>,
}

/// Catching up with a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncProgress {
    /// Our height.
    pub height: u64,
    /// The peer's.
    pub target: u64,
}

/// What the network looks like now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetInfo {
    /// Our peer id.
    pub peer_id: String,
    /// Where we listen, each with `/p2p/<peer id>`.
    pub listen_addrs: Vec<String>,
    /// Connected peers.
    pub peers: Vec<PeerView>,
    /// Set while syncing.
    pub sync: Option<SyncProgress>,
    /// Peers banned now.
    pub banned: usize,
    /// Blocks and transfers from peers refused as invalid, by rule (for metrics).
    pub rejected: std::collections::BTreeMap<String, u64>,
}

enum Command {
    Dial(Multiaddr),
    Refresh,
}

/// The running network. Dropping it stops the loop.
#[derive(Debug)]
pub struct NetHandle {
    commands: mpsc::UnboundedSender<Command>,
    info: watch::Receiver<NetInfo>,
    task: tokio::task::JoinHandle<()>,
}

impl NetHandle {
    /// The network now.
    pub fn info(&self) -> NetInfo {
        self.info.borrow().clone()
    }

    /// A receiver that sees every change of [`NetInfo`].
    pub fn watch(&self) -> watch::Receiver<NetInfo> {
        self.info.clone()
    }

    /// Asks every peer for its best chain now; a sync starts if one is ahead.
    pub fn refresh(&self) {
        let _ = self.commands.send(Command::Refresh);
    }

    /// Dials a peer (a multiaddr, or `HOST:PORT`).
    pub fn dial(&self, addr: &str) -> Result<(), NetError> {
        let addr = crate::parse_peer_addr(addr)?;
        self.commands
            .send(Command::Dial(addr))
            .map_err(|_| NetError::Setup("the network has stopped".into()))
    }
}

impl Drop for NetHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    limits: connection_limits::Behaviour,
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<SyncCodec>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

/// Results of work done off the loop.
enum Done {
    Gossip {
        id: MessageId,
        source: PeerId,
        verdict: Verdict,
        /// A block with an unknown parent: fetch its ancestors from `source`.
        orphan: bool,
        /// The height of the block `source` sent, once stored: `source` has at least it.
        height: Option<u64>,
    },
    Respond {
        channel: ResponseChannel<SyncResponse>,
        response: SyncResponse,
    },
    Imported {
        peer: PeerId,
        bad: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accept,
    Ignore,
    /// Invalid: reject and ban the sender.
    Reject,
}

struct Sync {
    peer: PeerId,
    target: u64,
    /// Blocks still to fetch, in chain order.
    queue: VecDeque<BlockHash>,
    /// The last header received: the next GetHeaders starts after it.
    last_header: Option<BlockHash>,
    /// The request out, if one is: an answer to anything else (a late answer to a sync
    /// before this one) is not this sync's.
    outstanding: Option<OutboundRequestId>,
    /// A batch is being imported.
    importing: bool,
    /// Blocks downloaded while the batch before them was imported: the next import. So
    /// downloads overlap imports; at most [`READY_BYTES`] wait, beside one answer.
    ready: Vec<Block>,
    ready_bytes: usize,
    /// The blocks asked for in the request outstanding, in order.
    asked: Vec<BlockHash>,
    /// The most work the peer has claimed (Status).
    claimed: Work,
    /// What it had claimed when the outstanding GetHeaders was sent: what the headers
    /// of its tip must show (a later claim may count blocks found since).
    claimed_at_request: Work,
}

/// A sync peer's faults that no single message proves invalid (claiming work it does
/// not show, stalling, timing out): each keeps it from being the sync peer for a while,
/// longer each time; [`MAX_STRIKES`] of them ban it.
#[derive(Debug, Clone, Copy)]
struct Strike {
    count: u32,
    until: Instant,
}

/// Gossip messages checked at once, at most: past it a message is ignored (not
/// forwarded, no penalty), so a flood waits on no unbounded queue.
const MAX_VALIDATING: usize = 64;

/// Blocks remembered as having come by gossip.
const MAX_GOSSIPED: usize = 256;

/// Sync streams open at once per connection, at most.
const MAX_SYNC_STREAMS: usize = 8;

/// Downloaded blocks that may wait for the import before them, at most (bytes).
const READY_BYTES: usize = 32 << 20;

/// Sync faults that ban a peer.
const MAX_STRIKES: u32 = 3;
/// How long a first sync fault keeps a peer from being the sync peer (doubled for each
/// further one).
const STRIKE_PAUSE: Duration = Duration::from_secs(30);
/// Peers whose strikes are remembered, at most (the oldest go first).
const MAX_STRIKE_ENTRIES: usize = 4096;

struct Service {
    swarm: Swarm<Behaviour>,
    chain: SharedChain,
    store: Store,
    genesis: BlockHash,
    blocks_topic: IdentTopic,
    txs_topic: IdentTopic,
    done_tx: mpsc::UnboundedSender<Done>,
    statuses: HashMap<PeerId, (u64, Work)>,
    addresses: HashMap<PeerId, Multiaddr>,
    sync: Option<Sync>,
    strikes: HashMap<PeerId, Strike>,
    /// Gossiped blocks and transfers being checked off the loop.
    validating: usize,
    /// Blocks that came by gossip lately: gossipsub forwards those it accepts, so they
    /// are not published again when they connect (at most [`MAX_GOSSIPED`]).
    gossiped: VecDeque<BlockHash>,
    bans: HashMap<PeerId, Instant>,
    ban_for: Duration,
    configured: Vec<Multiaddr>,
    backoff: HashMap<Multiaddr, (Instant, Duration)>,
    pending: HashSet<OutboundRequestId>,
    info: watch::Sender<NetInfo>,
    rejected: std::collections::BTreeMap<String, u64>,
    peers_file: PathBuf,
    remembered: Vec<Multiaddr>,
    /// Transfers that found no subscribed peer, sent again when a peer subscribes.
    unsent: VecDeque<(Txid, Vec<u8>)>,
}

/// Transfers held for want of a subscribed peer, at most (each under 3 KiB); the oldest
/// go first.
const MAX_UNSENT: usize = 1024;

/// Peers remembered across restarts, at most.
const MAX_REMEMBERED: usize = 64;
/// Where they are remembered, in the data directory.
const PEERS_FILE: &str = "peers.txt";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Starts the network on the current tokio runtime.
pub async fn start(config: NetConfig, chain: SharedChain) -> Result<NetHandle, NetError> {
    let listen = crate::parse_peer_addr(&config.listen)?;
    let peers = config
        .peers
        .iter()
        .map(|p| crate::parse_peer_addr(p))
        .collect::<Result<Vec<_>, _>>()?;
    let key = crate::keys::load_or_create(&config.data_dir)?;
    // Peers remembered from earlier runs (a damaged line is skipped).
    let peers_file = config.data_dir.join(PEERS_FILE);
    let remembered: Vec<Multiaddr> = std::fs::read_to_string(&peers_file)
        .map(|text| text.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default();
    let mut peers = peers;
    for addr in &remembered {
        if !peers.iter().any(|p| same_endpoint(p, addr)) {
            peers.push(addr.clone());
        }
    }
    let (genesis, network, store) = {
        let c = chain.view();
        (
            c.params().genesis_hash(),
            c.params().network,
            c.store().clone(),
        )
    };
    let prefix = format!("/oxchain/{}/{}", network.name(), &genesis.to_string()[..16]);
    let setup = |e: &dyn std::fmt::Display| NetError::Setup(e.to_string());
    let sync_protocol =
        StreamProtocol::try_from_owned(format!("{prefix}/sync/1")).map_err(|e| setup(&e))?;
    let identify_protocol = format!("{prefix}/1");
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established_incoming(Some(config.max_inbound))
        .with_max_established_outgoing(Some(config.max_outbound))
        .with_max_established_per_peer(Some(2));
    let blocks_topic = IdentTopic::new(format!("{prefix}/blocks"));
    let txs_topic = IdentTopic::new(format!("{prefix}/transfers"));
    let (blocks_hash, txs_hash) = (blocks_topic.hash(), txs_topic.hash());
    let mut swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| setup(&e))?
        .with_behaviour(|key| {
            let gossip_config = gossipsub::ConfigBuilder::default()
                .heartbeat_interval(Duration::from_millis(500))
                // No envelope signature (ADR 0013): blocks carry their proof of work and
                // transfers their sender's signature; the envelope's cost a signature
                // per message sent and a check per message received, on every hop.
                .validation_mode(gossipsub::ValidationMode::Anonymous)
                .validate_messages()
                // Each topic's cap is its largest valid message with room for the
                // envelope; a message over it but under the frame cap is counted against
                // its sender (ADR 0009), and one over the frame cap is cut at its length
                // prefix, unread.
                .max_transmit_size(GOSSIP_FRAME_BYTES)
                .max_transmit_size_for_topic(MAX_BLOCK_GOSSIP_BYTES, blocks_hash.clone())
                .max_transmit_size_for_topic(MAX_TRANSFER_GOSSIP_BYTES, txs_hash.clone())
                .message_id_fn(|m: &gossipsub::Message| {
                    MessageId::from(oxchain_primitives::sha256(&m.data).to_vec())
                })
                .build()?;
            let mut gossipsub = gossipsub::Behaviour::new(
                gossipsub::MessageAuthenticity::Anonymous,
                gossip_config,
            )?;
            gossipsub.with_peer_score(
                invalid_messages_only([blocks_hash, txs_hash]),
                gossipsub::PeerScoreThresholds::default(),
            )?;
            let sync = request_response::Behaviour::new(
                [(sync_protocol, ProtocolSupport::Full)],
                // At most 8 sync streams at once per connection (each answer may hold
                // 16 MiB), not libp2p's default of 100.
                request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(30))
                    .with_max_concurrent_streams(MAX_SYNC_STREAMS),
            );
            Ok(Behaviour {
                blocked: allow_block_list::Behaviour::default(),
                limits: connection_limits::Behaviour::new(limits),
                gossipsub,
                sync,
                identify: identify::Behaviour::new(
                    identify::Config::new(identify_protocol, key.public())
                        .with_agent_version(format!("oxchain/{}", env!("CARGO_PKG_VERSION"))),
                ),
                ping: ping::Behaviour::default(),
            })
        })
        .map_err(|e| setup(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&blocks_topic)
        .map_err(|e| setup(&e))?;
    swarm
        .behaviour_mut()
        .gossipsub
        .subscribe(&txs_topic)
        .map_err(|e| setup(&e))?;
    swarm
        .listen_on(listen.clone())
        .map_err(|e| NetError::Listen {
            addr: config.listen.clone(),
            reason: e.to_string(),
        })?;
    for addr in &peers {
        let _ = swarm.dial(addr.clone());
    }
    let (info, info_rx) = watch::channel(NetInfo {
        peer_id: swarm.local_peer_id().to_string(),
        ..NetInfo::default()
    });
    let (commands, commands_rx) = mpsc::unbounded_channel();
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let events = chain.view().subscribe();
    let service = Service {
        swarm,
        chain,
        store,
        genesis,
        blocks_topic,
        txs_topic,
        done_tx,
        statuses: HashMap::new(),
        addresses: HashMap::new(),
        sync: None,
        strikes: HashMap::new(),
        validating: 0,
        gossiped: VecDeque::new(),
        bans: HashMap::new(),
        ban_for: config.ban_for,
        configured: peers,
        backoff: HashMap::new(),
        pending: HashSet::new(),
        info,
        rejected: Default::default(),
        peers_file,
        remembered,
        unsent: VecDeque::new(),
    };
    // Wait until the listener is up, so that the first info has the address.
    let task = tokio::spawn(service.run(commands_rx, done_rx, events));
    let mut info_rx2 = info_rx.clone();
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        info_rx2.wait_for(|i| !i.listen_addrs.is_empty()),
    )
    .await;
    Ok(NetHandle {
        commands,
        info: info_rx,
        task,
    })
}

/// The largest gossip frame read: a larger one is cut at its length prefix, unread.
const GOSSIP_FRAME_BYTES: usize = 2 * oxchain_primitives::limits::MAX_BLOCK_BYTES;
/// Room for gossipsub's envelope (source, sequence number, signature, key, topic).
const GOSSIP_ENVELOPE_BYTES: usize = 1024;
/// The largest message on the blocks topic: the largest valid block and an envelope.
const MAX_BLOCK_GOSSIP_BYTES: usize =
    oxchain_primitives::limits::MAX_BLOCK_BYTES + GOSSIP_ENVELOPE_BYTES;
/// The largest message on the transfers topic: a transfer with the most data (its fixed
/// fields take under 200 bytes) and an envelope.
const MAX_TRANSFER_GOSSIP_BYTES: usize =
    oxchain_primitives::limits::MAX_TX_DATA_BYTES + 512 + GOSSIP_ENVELOPE_BYTES;

/// Peer scores that count only invalid messages (oversize for their topic, a bad
/// envelope signature, or rejected by our validation): every other term is off, so a
/// negative score means a misbehaving peer and nothing else (no penalty for sharing an
/// IP, as every devnet node does, nor for being slow).
fn invalid_messages_only(topics: [gossipsub::TopicHash; 2]) -> gossipsub::PeerScoreParams {
    let topic = gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.0,
        first_message_deliveries_weight: 0.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -1.0,
        invalid_message_deliveries_decay: 0.5,
        ..Default::default()
    };
    gossipsub::PeerScoreParams {
        topics: topics.into_iter().map(|t| (t, topic.clone())).collect(),
        app_specific_weight: 0.0,
        ip_colocation_factor_weight: 0.0,
        behaviour_penalty_weight: 0.0,
        slow_peer_weight: 0.0,
        ..Default::default()
    }
}

impl Service {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut done: mpsc::UnboundedReceiver<Done>,
        mut events: broadcast::Receiver<ChainEvent>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut ticks: u64 = 0;
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm(event),
                Some(result) = done.recv() => self.on_done(result),
                event = events.recv() => match event {
                    Ok(event) => self.on_chain(event),
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                command = commands.recv() => match command {
                    Some(Command::Dial(addr)) => {
                        self.configured.push(addr.clone());
                        let _ = self.swarm.dial(addr);
                    }
                    Some(Command::Refresh) => {
                        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
                        for peer in peers {
                            self.request(peer, SyncRequest::Status);
                        }
                    }
                    None => return,
                },
                _ = tick.tick() => {
                    ticks += 1;
                    self.on_tick(ticks);
                }
            }
        }
    }

    fn publish_info(&self) {
        let swarm = &self.swarm;
        let me = *swarm.local_peer_id();
        let tip = self.chain.view().tip().height.0;
        let info = NetInfo {
            peer_id: me.to_string(),
            listen_addrs: swarm.listeners().map(|a| format!("{a}/p2p/{me}")).collect(),
            peers: swarm
                .connected_peers()
                .map(|p| PeerView {
                    peer_id: p.to_string(),
                    address: self
                        .addresses
                        .get(p)
                        .map(|a| a.to_string())
                        .unwrap_or_default(),
                    height: self.statuses.get(p).map(|(h, _)| *h),
                })
                .collect(),
            sync: self.sync.as_ref().map(|s| SyncProgress {
                height: tip,
                target: s.target,
            }),
            banned: self.bans.len(),
            rejected: self.rejected.clone(),
        };
        self.info.send_if_modified(|old| {
            let changed = *old != info;
            *old = info;
            changed
        });
    }

    fn ban(&mut self, peer: PeerId, why: &str) {
        tracing::warn!(%peer, reason = why, for_s = self.ban_for.as_secs(), "banned a peer");
        *self.rejected.entry(why.to_string()).or_default() += 1;
        self.swarm.behaviour_mut().blocked.block_peer(peer);
        self.bans.insert(peer, Instant::now() + self.ban_for);
        self.statuses.remove(&peer);
        if self.sync.as_ref().is_some_and(|s| s.peer == peer) {
            self.sync = None;
        }
        self.publish_info();
    }

    /// A sync fault of `peer` (see [`Strike`]): the sync moves on to another peer.
    fn strike(&mut self, peer: PeerId, why: &str) {
        let now = Instant::now();
        if self.strikes.len() >= MAX_STRIKE_ENTRIES
            && let Some(oldest) = self
                .strikes
                .iter()
                .min_by_key(|(_, s)| s.until)
                .map(|(p, _)| *p)
        {
            self.strikes.remove(&oldest);
        }
        let strike = self.strikes.entry(peer).or_insert(Strike {
            count: 0,
            until: now,
        });
        strike.count += 1;
        strike.until = now + STRIKE_PAUSE * 2u32.pow(strike.count - 1);
        let count = strike.count;
        if count >= MAX_STRIKES {
            self.strikes.remove(&peer);
            self.ban(peer, why);
        } else {
            tracing::info!(%peer, reason = why, strikes = count, "sync peer at fault: syncing from another");
            *self.rejected.entry(why.to_string()).or_default() += 1;
            if self.sync.as_ref().is_some_and(|s| s.peer == peer) {
                self.sync = None;
            }
        }
        self.maybe_start_sync();
    }

    /// Whether a strike keeps `peer` from being the sync peer now.
    fn paused(&self, peer: &PeerId) -> bool {
        self.strikes
            .get(peer)
            .is_some_and(|s| s.until > Instant::now())
    }

    fn request(&mut self, peer: PeerId, request: SyncRequest) -> OutboundRequestId {
        let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
        self.pending.insert(id);
        id
    }

    /// Sends the sync's next request; only the answer to it counts as the sync's.
    fn sync_request(&mut self, peer: PeerId, request: SyncRequest) {
        let id = self.request(peer, request);
        if let Some(sync) = self.sync.as_mut() {
            sync.outstanding = Some(id);
        }
    }

    fn on_tick(&mut self, ticks: u64) {
        let now = Instant::now();
        let expired: Vec<PeerId> = self
            .bans
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(p, _)| *p)
            .collect();
        for peer in expired {
            self.bans.remove(&peer);
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
        }
        // Strikes are forgotten an hour after their pause ends.
        self.strikes
            .retain(|_, s| s.until + Duration::from_secs(3600) > now);
        // Redial configured peers that are not connected, with backoff.
        let connected: HashSet<Multiaddr> = self.addresses.values().cloned().collect();
        for addr in self.configured.clone() {
            let peer = addr.iter().find_map(|p| match p {
                libp2p::multiaddr::Protocol::P2p(id) => Some(id),
                _ => None,
            });
            let linked = peer.is_some_and(|p| self.swarm.is_connected(&p));
            if linked || connected.iter().any(|c| same_endpoint(c, &addr)) {
                self.backoff.remove(&addr);
                continue;
            }
            let (next, delay) = self
                .backoff
                .get(&addr)
                .copied()
                .unwrap_or((now, Duration::from_secs(1)));
            if next <= now {
                let _ = self.swarm.dial(addr.clone());
                let delay = (delay * 2).min(Duration::from_secs(60));
                self.backoff.insert(addr, (now + delay, delay));
            }
        }
        // Ask everyone for their status now and then; start a sync if someone is ahead.
        if ticks.is_multiple_of(10) {
            let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
            for peer in peers {
                self.request(peer, SyncRequest::Status);
            }
        }
        self.ban_invalid_senders();
        self.maybe_start_sync();
        self.publish_info();
    }

    /// Bans the peers whose gossip score went negative: gossipsub dropped a message of
    /// theirs before it reached us (oversize for its topic, or a bad envelope).
    fn ban_invalid_senders(&mut self) {
        let gossipsub = &self.swarm.behaviour().gossipsub;
        let bad: Vec<PeerId> = self
            .swarm
            .connected_peers()
            .filter(|p| !self.bans.contains_key(p))
            .filter(|p| gossipsub.peer_score(p).is_some_and(|s| s < 0.0))
            .copied()
            .collect();
        for peer in bad {
            self.ban(peer, "malformed_gossip");
        }
    }

    fn on_chain(&mut self, event: ChainEvent) {
        match event {
            ChainEvent::BlockConnected { hash, block, .. } => {
                // Blocks a sync brings are old news to the peers, and gossipsub forwards
                // the ones that came by gossip: neither is published again.
                if self.sync.is_some() || self.gossiped.contains(&hash) {
                    return;
                }
                // A block is not held when no peer is subscribed: sync brings it to a
                // peer that connects. A duplicate (already relayed) is fine.
                let topic = self.blocks_topic.clone();
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(topic, encode(&*block));
            }
            ChainEvent::TransferAccepted { txid, transfer } => {
                self.publish_transfer(txid, encode(&Transaction::Transfer((*transfer).clone())));
            }
            _ => {}
        }
    }

    /// Gossips a transfer. One that finds no subscribed peer yet (a node just started,
    /// or a peer connected but has not yet told us its topics) is held until one
    /// subscribes: nothing else would carry it.
    fn publish_transfer(&mut self, txid: Txid, data: Vec<u8>) {
        let topic = self.txs_topic.clone();
        let hash = topic.hash();
        // Nobody to send to: hold it without building a message for nobody.
        let subscribed = self
            .swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .any(|(_, topics)| topics.contains(&&hash));
        let held = !subscribed
            || matches!(
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(topic, data.clone()),
                Err(gossipsub::PublishError::NoPeersSubscribedToTopic)
            );
        if held {
            if self.unsent.len() == MAX_UNSENT {
                self.unsent.pop_front();
            }
            self.unsent.push_back((txid, data));
        }
    }

    /// A peer subscribed to `topic`: send the held transfers that are still pending
    /// (some may have been mined or replaced while they waited).
    fn on_subscribed(&mut self, topic: &gossipsub::TopicHash) {
        if *topic != self.txs_topic.hash() {
            return;
        }
        let held = std::mem::take(&mut self.unsent);
        let pending: Vec<_> = {
            let mempool = self.chain.view().mempool();
            held.into_iter()
                .filter(|(txid, _)| mempool.contains(txid))
                .collect()
        };
        for (txid, data) in pending {
            self.publish_transfer(txid, data);
        }
    }

    fn on_swarm(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { .. } => self.publish_info(),
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                if num_established.get() == 1 {
                    tracing::info!(peer = %peer_id, address = %endpoint.get_remote_address(), "peer connected");
                }
                self.addresses
                    .insert(peer_id, endpoint.get_remote_address().clone());
                self.request(peer_id, SyncRequest::Status);
                self.publish_info();
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                ..
            } => {
                if num_established == 0 {
                    tracing::info!(peer = %peer_id, "peer disconnected");
                    self.addresses.remove(&peer_id);
                    self.statuses.remove(&peer_id);
                    if self.sync.as_ref().is_some_and(|s| s.peer == peer_id) {
                        self.sync = None;
                    }
                }
                self.publish_info();
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.on_gossip(propagation_source, message_id, message),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed {
                topic,
                ..
            })) => self.on_subscribed(&topic),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                for addr in &info.listen_addrs {
                    self.swarm.add_peer_address(peer_id, addr.clone());
                }
                self.remember(peer_id, &info.listen_addrs);
            }
            _ => {}
        }
    }

    /// Keeps a peer's first listen address in `peers.txt`, so that a restarted node
    /// dials its peers again.
    fn remember(&mut self, peer: PeerId, addrs: &[Multiaddr]) {
        use libp2p::multiaddr::Protocol;
        let Some(addr) = addrs.iter().find(|a| {
            !a.iter()
                .any(|p| matches!(p, Protocol::Ip4(ip) if ip.is_unspecified()))
        }) else {
            return;
        };
        let full = addr.clone().with(Protocol::P2p(peer));
        if !self.configured.iter().any(|c| same_endpoint(c, &full)) {
            self.configured.push(full.clone());
        }
        if self.remembered.iter().any(|r| same_endpoint(r, &full)) {
            return;
        }
        self.remembered.push(full);
        // The most recent peers, at most MAX_REMEMBERED; a write failure only loses the
        // memory of peers.
        let start = self.remembered.len().saturating_sub(MAX_REMEMBERED);
        self.remembered.drain(..start);
        let text: String = self.remembered.iter().map(|a| format!("{a}\n")).collect();
        let tmp = self.peers_file.with_extension("tmp");
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, &self.peers_file);
        }
    }

    fn on_gossip(&mut self, source: PeerId, id: MessageId, message: gossipsub::Message) {
        if self.validating >= MAX_VALIDATING {
            self.report(&id, &source, Verdict::Ignore);
            return;
        }
        let chain = self.chain.clone();
        let done = self.done_tx.clone();
        if message.topic == self.blocks_topic.hash() {
            let Ok(block) = decode::<Block>(&message.data) else {
                self.report(&id, &source, Verdict::Reject);
                return;
            };
            if self.gossiped.len() == MAX_GOSSIPED {
                self.gossiped.pop_front();
            }
            self.gossiped.push_back(block.header.compute_hash());
            self.validating += 1;
            tokio::task::spawn_blocking(move || {
                // Known already: answered from the store, without the writer.
                let outcome = match chain.view().screen_block(&block) {
                    Ok(Some(outcome)) => Ok(outcome),
                    _ => chain.write(|c| c.process_block(block, now_ms())),
                };
                let (verdict, orphan, height) = match outcome {
                    // Forwarded only once connected, so checked against the ledger: a
                    // side block is stored but not relayed (a peer that needs its
                    // branch fetches it by sync when the branch wins).
                    Ok(
                        BlockOutcome::Extended { height, .. } | BlockOutcome::Reorg { height, .. },
                    ) => (Verdict::Accept, false, Some(height.0)),
                    Ok(BlockOutcome::SideChain { height, .. }) => {
                        (Verdict::Ignore, false, Some(height.0))
                    }
                    Ok(BlockOutcome::Orphan { .. }) => (Verdict::Ignore, true, None),
                    Ok(BlockOutcome::Invalid { error, .. }) if error.fault() == Fault::Sender => {
                        (Verdict::Reject, false, None)
                    }
                    _ => (Verdict::Ignore, false, None),
                };
                let _ = done.send(Done::Gossip {
                    id,
                    source,
                    verdict,
                    orphan,
                    height,
                });
            });
        } else if message.topic == self.txs_topic.hash() {
            let transfer = match decode::<Transaction>(&message.data) {
                Ok(Transaction::Transfer(t)) => t,
                _ => {
                    self.report(&id, &source, Verdict::Reject);
                    return;
                }
            };
            self.validating += 1;
            tokio::task::spawn_blocking(move || {
                let verdict = match chain.view().submit_transfer(transfer) {
                    Ok(_) => Verdict::Accept,
                    Err(e) if e.is_bad_data() => Verdict::Reject,
                    Err(MempoolError::AlreadyPending(_)) | Err(_) => Verdict::Ignore,
                };
                let _ = done.send(Done::Gossip {
                    id,
                    source,
                    verdict,
                    orphan: false,
                    height: None,
                });
            });
        } else {
            self.report(&id, &source, Verdict::Ignore);
        }
    }

    fn report(&mut self, id: &MessageId, source: &PeerId, verdict: Verdict) {
        let acceptance = match verdict {
            Verdict::Accept => MessageAcceptance::Accept,
            Verdict::Ignore => MessageAcceptance::Ignore,
            Verdict::Reject => MessageAcceptance::Reject,
        };
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(id, source, acceptance);
        if verdict == Verdict::Reject {
            self.ban(*source, "invalid_gossip");
        }
    }

    fn on_done(&mut self, done: Done) {
        match done {
            Done::Gossip {
                id,
                source,
                verdict,
                orphan,
                height,
            } => {
                self.validating = self.validating.saturating_sub(1);
                self.report(&id, &source, verdict);
                // Peers' heights shown between status rounds follow their blocks.
                if let (Some(height), Some(status)) = (height, self.statuses.get_mut(&source)) {
                    status.0 = status.0.max(height);
                }
                // A block whose parent we lack: its sender has a chain we have not seen,
                // unless a sync fault keeps it from being the sync peer.
                if orphan && self.sync.is_none() && !self.paused(&source) {
                    let claimed = self
                        .statuses
                        .get(&source)
                        .map_or(Work::default(), |(_, work)| *work);
                    self.start_sync(source, 0, claimed);
                }
            }
            Done::Respond { channel, response } => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, response);
            }
            Done::Imported { peer, bad } => {
                if bad {
                    self.ban(peer, "invalid_sync_block");
                    return;
                }
                if let Some(sync) = self.sync.as_mut().filter(|s| s.peer == peer) {
                    sync.importing = false;
                    if !sync.ready.is_empty() {
                        sync.ready_bytes = 0;
                        let blocks = std::mem::take(&mut sync.ready);
                        self.import(peer, blocks);
                    }
                }
                self.continue_sync();
            }
        }
        self.publish_info();
    }

    fn locator(&self, head: Option<BlockHash>) -> Vec<BlockHash> {
        let mut out: Vec<BlockHash> = head.into_iter().collect();
        let tip = self.chain.view().tip().height.0;
        let mut step = 1u64;
        let mut height = tip;
        loop {
            if let Ok(Some(hash)) = self.store.hash_at(Height(height)) {
                out.push(hash);
            }
            if height == 0 || out.len() >= MAX_LOCATOR - 1 {
                break;
            }
            if out.len() > 10 {
                step *= 2;
            }
            height = height.saturating_sub(step);
        }
        if out.last() != Some(&self.genesis) {
            out.push(self.genesis);
        }
        out
    }

    fn maybe_start_sync(&mut self) {
        if self.sync.is_some() {
            return;
        }
        let ours = self.chain.view().tip().chain_work;
        let best = self
            .statuses
            .iter()
            .filter(|(peer, (_, work))| *work > ours && !self.paused(peer))
            .max_by_key(|(_, (_, work))| *work)
            .map(|(p, (h, w))| (*p, *h, *w));
        if let Some((peer, height, claimed)) = best {
            self.start_sync(peer, height, claimed);
        }
    }

    fn start_sync(&mut self, peer: PeerId, target: u64, claimed: Work) {
        tracing::info!(%peer, target, "syncing: headers first from the peer with most work");
        self.sync = Some(Sync {
            peer,
            target,
            queue: VecDeque::new(),
            last_header: None,
            outstanding: None,
            importing: false,
            ready: Vec::new(),
            ready_bytes: 0,
            asked: Vec::new(),
            claimed,
            claimed_at_request: claimed,
        });
        let locator = self.locator(None);
        self.sync_request(
            peer,
            SyncRequest::GetHeaders {
                locator,
                max: MAX_HEADERS as u16,
            },
        );
    }

    /// The next step of a sync: more blocks, or more headers.
    fn continue_sync(&mut self) {
        let Some(sync) = self.sync.as_mut() else {
            return;
        };
        if sync.outstanding.is_some() || sync.ready_bytes >= READY_BYTES {
            return;
        }
        let peer = sync.peer;
        if sync.queue.is_empty() {
            // More headers once the blocks of these are in.
            if sync.importing || !sync.ready.is_empty() {
                return;
            }
            sync.claimed_at_request = sync.claimed;
            let head = sync.last_header;
            let locator = self.locator(head);
            self.sync_request(
                peer,
                SyncRequest::GetHeaders {
                    locator,
                    max: MAX_HEADERS as u16,
                },
            );
        } else {
            let n = sync.queue.len().min(MAX_GET_BLOCKS);
            let hashes: Vec<BlockHash> = sync.queue.drain(..n).collect();
            sync.asked = hashes.clone();
            self.sync_request(peer, SyncRequest::GetBlocks(hashes));
        }
    }

    fn on_sync(&mut self, event: request_response::Event<SyncRequest, SyncResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.serve(request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    self.pending.remove(&request_id);
                    self.on_response(peer, request_id, response);
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                self.pending.remove(&request_id);
                if self
                    .sync
                    .as_ref()
                    .is_some_and(|s| s.peer == peer && s.outstanding == Some(request_id))
                {
                    self.sync = None;
                    use request_response::OutboundFailure;
                    match error {
                        OutboundFailure::Timeout => self.strike(peer, "sync_timeout"),
                        // An answer that does not decode, or over its cap.
                        OutboundFailure::Io(_) => self.strike(peer, "sync_bad_answer"),
                        OutboundFailure::UnsupportedProtocols => {
                            self.strike(peer, "sync_unsupported")
                        }
                        _ => self.maybe_start_sync(),
                    }
                }
            }
            _ => {}
        }
    }

    fn on_response(&mut self, peer: PeerId, id: OutboundRequestId, response: SyncResponse) {
        // Headers and blocks count only as the answer to the sync's outstanding request.
        let current = |sync: &Sync| sync.peer == peer && sync.outstanding == Some(id);
        match response {
            SyncResponse::Status {
                genesis,
                height,
                total_work,
                ..
            } => {
                if genesis != self.genesis {
                    // Another network: nobody's fault, but nothing to talk about.
                    let _ = self.swarm.disconnect_peer_id(peer);
                    return;
                }
                self.statuses.insert(peer, (height.0, total_work));
                if let Some(sync) = self.sync.as_mut().filter(|s| s.peer == peer) {
                    sync.target = sync.target.max(height.0);
                    sync.claimed = sync.claimed.max(total_work);
                }
                self.maybe_start_sync();
            }
            SyncResponse::Headers(headers) => {
                let Some(sync) = self.sync.as_mut().filter(|s| current(s)) else {
                    return;
                };
                sync.outstanding = None;
                let (claimed, target) = (sync.claimed_at_request, sync.target);
                // Headers must chain: each one's parent is the one before, the first's
                // is one we have.
                let chained = headers
                    .windows(2)
                    .all(|w| w[1].prev_hash == w[0].compute_hash());
                if !chained {
                    self.ban(peer, "unchained_headers");
                    return;
                }
                // Each header's proof of work before any block is asked for.
                let params = self.chain.view().params().clone();
                if headers
                    .iter()
                    .any(|h| oxchain_consensus::validate::validate_pow(&params, h).is_err())
                {
                    self.ban(peer, "bad_header_pow");
                    return;
                }
                let parent = match headers.first() {
                    Some(first) => match self.store.header(&first.prev_hash) {
                        Ok(Some(record)) => Some(record.chain_work),
                        _ => {
                            self.strike(peer, "unconnected_headers");
                            return;
                        }
                    },
                    None => None,
                };
                // Fewer than asked: this is the peer's tip, so its chain's work is known.
                // A Status claim only grows (a chain switches only to more work), so
                // showing less than claimed is a lie.
                if headers.len() < MAX_HEADERS {
                    let ours = self.chain.view().tip().chain_work;
                    let shown = headers
                        .iter()
                        .filter_map(|h| h.bits.to_target().ok())
                        .fold(parent.unwrap_or(ours), |sum, t| {
                            sum.checked_add(t.work()).unwrap_or(sum)
                        });
                    if shown < claimed {
                        self.strike(peer, "sync_work_not_shown");
                        return;
                    }
                }
                if headers.is_empty() {
                    let height = self.chain.view().tip().height.0;
                    if height >= target {
                        tracing::info!(height, "sync done");
                    } else {
                        tracing::debug!(height, target, "sync round ended");
                    }
                    self.sync = None;
                    self.maybe_start_sync();
                    return;
                }
                let Some(sync) = self.sync.as_mut() else {
                    return;
                };
                let mut fresh = VecDeque::new();
                for header in &headers {
                    let hash = header.compute_hash();
                    if !matches!(self.store.header(&hash), Ok(Some(_))) {
                        fresh.push_back(hash);
                    }
                }
                sync.last_header = headers.last().map(|h| h.compute_hash());
                sync.queue = fresh;
                self.continue_sync();
            }
            SyncResponse::Blocks(blocks) => {
                let Some(sync) = self.sync.as_mut().filter(|s| current(s)) else {
                    return;
                };
                sync.outstanding = None;
                let asked = std::mem::take(&mut sync.asked);
                // What was asked for, in order, and nothing else; what was left out (an
                // answer is cut at its size cap) is asked for again next.
                let mut next = 0;
                for block in &blocks {
                    let hash = block.header.compute_hash();
                    match asked[next..].iter().position(|h| *h == hash) {
                        Some(i) => next += i + 1,
                        None => {
                            self.ban(peer, "unrequested_blocks");
                            return;
                        }
                    }
                }
                if blocks.is_empty() {
                    self.strike(peer, "sync_stalled");
                    return;
                }
                let received: HashSet<BlockHash> =
                    blocks.iter().map(|b| b.header.compute_hash()).collect();
                for hash in asked.iter().rev() {
                    if !received.contains(hash) {
                        sync.queue.push_front(*hash);
                    }
                }
                if sync.importing {
                    sync.ready_bytes += blocks.iter().map(Block::encoded_len).sum::<usize>();
                    sync.ready.extend(blocks);
                } else {
                    self.import(peer, blocks);
                }
                self.continue_sync();
            }
        }
    }

    /// Imports a batch of the sync with `peer`, off the loop, one batch at a time.
    fn import(&mut self, peer: PeerId, blocks: Vec<Block>) {
        if let Some(sync) = self.sync.as_mut() {
            sync.importing = true;
        }
        let chain = self.chain.clone();
        let done = self.done_tx.clone();
        tokio::task::spawn_blocking(move || {
            let outcomes = chain.write(|c| c.process_blocks(blocks, now_ms()));
            let bad = match outcomes {
                Ok(outcomes) => outcomes.iter().any(|o| o.fault() == Some(Fault::Sender)),
                Err(_) => false,
            };
            let _ = done.send(Done::Imported { peer, bad });
        });
    }

    /// Answers a peer's request off the loop (reads may take a while).
    fn serve(&mut self, request: SyncRequest, channel: ResponseChannel<SyncResponse>) {
        let chain = self.chain.clone();
        let store = self.store.clone();
        let genesis = self.genesis;
        let done = self.done_tx.clone();
        tokio::task::spawn_blocking(move || {
            let response = match request {
                SyncRequest::Status => {
                    let tip = chain.view().tip();
                    SyncResponse::Status {
                        genesis,
                        tip: tip.hash,
                        height: tip.height,
                        total_work: tip.chain_work,
                    }
                }
                SyncRequest::GetHeaders { locator, max } => {
                    let start = locator
                        .iter()
                        .find_map(|hash| match store.header(hash) {
                            Ok(Some(record)) if matches!(store.hash_at(record.height), Ok(Some(h)) if h == *hash) => Some(record.height.0 + 1),
                            _ => None,
                        })
                        .unwrap_or(1);
                    let max = usize::from(max).min(MAX_HEADERS) as u64;
                    let mut headers = Vec::new();
                    for height in start..start + max {
                        match store
                            .hash_at(Height(height))
                            .ok()
                            .flatten()
                            .and_then(|h| store.header(&h).ok().flatten())
                        {
                            Some(record) => headers.push(record.header),
                            None => break,
                        }
                    }
                    SyncResponse::Headers(headers)
                }
                SyncRequest::GetBlocks(hashes) => {
                    let mut blocks = Vec::new();
                    let mut bytes = 16;
                    for hash in hashes.iter().take(MAX_GET_BLOCKS) {
                        let Ok(Some(block)) = store.block(hash) else {
                            break;
                        };
                        bytes += block.encoded_len();
                        if bytes > MAX_RESPONSE_BYTES {
                            break;
                        }
                        blocks.push(block);
                    }
                    SyncResponse::Blocks(blocks)
                }
            };
            let _ = done.send(Done::Respond { channel, response });
        });
    }
}

/// Whether two multiaddrs name the same IP and TCP port (ignoring `/p2p/ID`).
fn same_endpoint(a: &Multiaddr, b: &Multiaddr) -> bool {
    use libp2p::multiaddr::Protocol;
    let key = |m: &Multiaddr| -> Vec<String> {
        m.iter()
            .filter(|p| !matches!(p, Protocol::P2p(_)))
            .map(|p| p.to_string())
            .collect()
    };
    key(a) == key(b)
}
