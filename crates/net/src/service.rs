//! The swarm's event loop: one task owns the swarm; the chain is reached through its
//! mutex on blocking threads, and the results come back to the loop as messages.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libp2p::futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageId};
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder, connection_limits, identify, noise,
    ping, tcp, yamux,
};
use oxchain_chain::{ChainEvent, ChainView, SharedChain};
use oxchain_consensus::Fault;
use oxchain_primitives::{
    Block, BlockHash, Header, Height, Transaction, Txid, Work, decode, encode,
};
use oxchain_storage::Store;
use prometheus_client::registry::Registry;
use tokio::sync::{broadcast, mpsc, watch};

mod relay;

use crate::NetError;
use crate::codec::SyncCodec;
use crate::compact::CompactBlock;
use crate::discovery;
use crate::gate::Gate;
use crate::gossip::{self, Verdict};
use crate::message::{MAX_LOCATOR, SyncRequest, SyncResponse};
use crate::metrics::NetMetrics;
use crate::peers::{Peers, Struck};
use crate::sync::{Failure, Local, Penalty, Status, Step, Syncer, Token};
use libp2p::metrics::Recorder;

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
    /// Addresses where others reach this node (a public IP behind a NAT or a port
    /// forward), told to peers through identify and discovery: each a multiaddr or
    /// `HOST:PORT`.
    pub external_addresses: Vec<String>,
    /// A delay on everything this node sends, for the network lab only (ADR 0019);
    /// zero everywhere else.
    pub link_latency: Duration,
    /// Whether to look for peers beyond those given (Kademlia). On for every node;
    /// tests that need a fixed topology (a line of three) turn it off.
    pub discovery: bool,
    /// A name for this node that peers show (`--name`), with the address its coinbases
    /// pay, told to peers through identify (see [`crate::agent`]); `None` tells neither.
    pub name: Option<(String, String)>,
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
            external_addresses: Vec::new(),
            link_latency: Duration::ZERO,
            discovery: true,
            name: None,
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
    /// What it said of itself through identify: its name and the address its coinbases
    /// pay (a claim, unchecked), and the address it listens on.
    pub said: crate::agent::Said,
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
    /// Compact blocks turned into blocks, by how (`mempool`: from the mempool alone,
    /// `fetched`: missing transfers asked for, `full_block`: the whole block asked
    /// for), and `fetched_transfers`: transfers asked for.
    pub relay: std::collections::BTreeMap<String, u64>,
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
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
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

impl NetHandle {
    /// Stops the network and waits until its loop has let go of the chain (and so of
    /// the store): a node that restarts on the same data directory finds it free.
    pub async fn stop(&self) {
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for NetHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.get_mut().ok().and_then(Option::take) {
            task.abort();
        }
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    gate: Gate,
    limits: connection_limits::Behaviour,
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<SyncCodec>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    kad: discovery::Kad,
}

/// Results of work done off the loop.
enum Done {
    Gossip {
        id: MessageId,
        source: PeerId,
        checked: gossip::Checked,
        /// `block` or `transfer`, for the metrics.
        kind: &'static str,
        /// For a block: when it arrived, and how long after its header's time.
        arrived: Option<(Instant, i64)>,
    },
    Respond {
        channel: ResponseChannel<SyncResponse>,
        response: SyncResponse,
    },
    /// A compact block's checks (see [`relay`]).
    Compact(Box<relay::CompactDone>),
    /// A sync round's import ended; the senders of the blocks found invalid by their
    /// fault (`None` if the import failed: the round ends, no one is at fault).
    Imported {
        round: u64,
        faulty: Option<Vec<PeerId>>,
    },
}

/// Gossiped transfers checked at once, at most: past it a transfer is ignored (not
/// forwarded, no penalty), so a flood waits on no unbounded queue. A check costs about
/// 50 us (its signature), so a full queue is about 50 ms of work and 1.3 MB. It was 64: a
/// block's worth of transfers coming in a burst from the mesh went past that at busy
/// nodes, which ignored some; gossipsub remembers an ignored message as seen and does not
/// take it again, so the sender's later nonces waited for it in vain (at 100 nodes a fill
/// of 852 transfers stalled at 65 of them).
const MAX_VALIDATING: usize = 1_024;

/// Gossiped blocks checked (or waiting for their senders) at once, at most: a budget of
/// their own, so that a burst of transfers never crowds out a block.
const MAX_VALIDATING_BLOCKS: usize = 16;

/// Transfers remembered as having come by gossip (gossipsub forwards those it accepts,
/// so they are not published again).
const MAX_GOSSIPED_TRANSFERS: usize = 16_384;

/// Blocks remembered as having come by gossip.
const MAX_GOSSIPED: usize = 256;

/// Sync streams open at once per connection, at most.
const MAX_SYNC_STREAMS: usize = 8;

/// Inbound connections taken past the cap for a moment, each letting an older inbound
/// peer go (see `Peers::evict_inbound`).
const INBOUND_ROOM: u32 = 8;

/// Inbound connections from one IP, at most (loopback excepted: see [`Gate`]).
const MAX_INBOUND_PER_IP: usize = 4;

/// Transfers held for want of a subscribed peer, at most (each under 3 KiB); the oldest
/// go first.
const MAX_UNSENT: usize = 1024;

struct Service {
    swarm: Swarm<Behaviour>,
    /// Our peer id as text.
    me: String,
    chain: SharedChain,
    store: Store,
    genesis: BlockHash,
    blocks_topic: IdentTopic,
    txs_topic: IdentTopic,
    done_tx: mpsc::UnboundedSender<Done>,
    /// Gossiped transfers to check, in order (see [`gossip::transfer_checker`]).
    transfers: std::sync::mpsc::Sender<(MessageId, PeerId, oxchain_primitives::Transfer)>,
    syncer: Syncer,
    peers: Peers,
    /// Requests out, each with the syncer's token (none for a Status).
    requests: HashMap<OutboundRequestId, Option<Token>>,
    /// Compact blocks waiting for their senders' answers, by request.
    compact: HashMap<OutboundRequestId, relay::Waiting>,
    /// What [`NetInfo::relay`] shows.
    relay: std::collections::BTreeMap<String, u64>,
    /// Gossiped transfers being checked off the loop.
    validating: usize,
    /// Gossiped blocks being checked off the loop, or waiting for their senders.
    validating_blocks: usize,
    /// Transfers that came by gossip lately (at most [`MAX_GOSSIPED_TRANSFERS`]): not
    /// published again when the mempool takes them.
    gossiped_txs: (VecDeque<Txid>, std::collections::HashSet<Txid>),
    /// Blocks that came by gossip lately: gossipsub forwards those it accepts, so they
    /// are not published again when they connect (at most [`MAX_GOSSIPED`]).
    gossiped: VecDeque<BlockHash>,
    /// Gossiped blocks lately not taken through no fault of their senders (low work, a
    /// stale block 1), and their children (at most [`MAX_GOSSIPED`]): the children are
    /// orphans through no fault of their senders either.
    not_taken: VecDeque<BlockHash>,
    /// The new tip of a reorg whose connected blocks are being announced.
    reorg_to: Option<BlockHash>,
    /// Our network's DHT protocol: peers that speak it join the routing table.
    kad_protocol: StreamProtocol,
    metrics: NetMetrics,
    /// Inbound peers kept at most (more are taken, and the oldest let go).
    max_inbound: usize,
    /// Whether a first DHT lookup ran (at the first peer that serves the DHT); true
    /// from the start when discovery is off.
    kad_started: bool,
    discovery: bool,
    info: watch::Sender<NetInfo>,
    rejected: std::collections::BTreeMap<String, u64>,
    /// Transfers that found no subscribed peer, sent again when a peer subscribes.
    unsent: VecDeque<(Txid, Vec<u8>)>,
}

/// Keeps `hash` among the last [`MAX_GOSSIPED`] of `recent`.
fn remember(recent: &mut VecDeque<BlockHash>, hash: BlockHash) {
    if recent.len() == MAX_GOSSIPED {
        recent.pop_front();
    }
    recent.push_back(hash);
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The local chain, as the sync machine sees it.
struct ChainLocal<'a> {
    view: &'a ChainView,
    genesis: BlockHash,
}

/// The local chain of `chain`, as the sync machine sees it.
fn local(chain: &SharedChain, genesis: BlockHash) -> ChainLocal<'_> {
    ChainLocal {
        view: chain.view(),
        genesis,
    }
}

impl Local for ChainLocal<'_> {
    fn tip_work(&self) -> Work {
        self.view.tip().chain_work
    }

    fn tip_height(&self) -> u64 {
        self.view.tip().height.0
    }

    fn stored_work(&self, hash: &BlockHash) -> Option<Work> {
        Some(self.view.store().header(hash).ok()??.chain_work)
    }

    fn locator(&self, head: Option<BlockHash>) -> Vec<BlockHash> {
        let store = self.view.store();
        let mut out: Vec<BlockHash> = head.into_iter().collect();
        let mut step = 1u64;
        let mut height = self.view.tip().height.0;
        loop {
            if let Ok(Some(hash)) = store.hash_at(Height(height)) {
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

    fn pow_ok(&self, header: &Header) -> bool {
        oxchain_consensus::validate::validate_pow(self.view.params(), header).is_ok()
    }

    fn min_chain_work(&self) -> Work {
        self.view.params().min_chain_work
    }
}

/// Starts the network on the current tokio runtime, with metrics nobody reads.
pub async fn start(config: NetConfig, chain: SharedChain) -> Result<NetHandle, NetError> {
    start_with_metrics(config, chain, &mut Registry::default()).await
}

/// Starts the network on the current tokio runtime; its metrics (libp2p's and the
/// network's own) are registered in `registry`.
pub async fn start_with_metrics(
    config: NetConfig,
    chain: SharedChain,
    registry: &mut Registry,
) -> Result<NetHandle, NetError> {
    let listen = crate::parse_peer_addr(&config.listen)?;
    let configured = config
        .peers
        .iter()
        .map(|p| crate::parse_peer_addr(p))
        .collect::<Result<Vec<_>, _>>()?;
    let key = crate::keys::load_or_create(&config.data_dir)?;
    let mut peers = Peers::new(config.ban_for, configured, &config.data_dir);
    let (genesis, network, store, bootstrap) = {
        let c = chain.view();
        (
            c.params().genesis_hash(),
            c.params().network,
            c.store().clone(),
            c.params().bootstrap.clone(),
        )
    };
    for addr in &bootstrap {
        peers.bootstrap(crate::parse_peer_addr(addr)?);
    }
    let prefix = format!("/oxchain/{}/{}", network.name(), &genesis.to_string()[..16]);
    let setup = |e: &dyn std::fmt::Display| NetError::Setup(e.to_string());
    let sync_protocol =
        StreamProtocol::try_from_owned(format!("{prefix}/sync/1")).map_err(|e| setup(&e))?;
    let identify_protocol = format!("{prefix}/1");
    let kad_protocol = discovery::protocol(&prefix).map_err(|e| setup(&e))?;
    let external = config
        .external_addresses
        .iter()
        .map(|a| crate::parse_peer_addr(a))
        .collect::<Result<Vec<_>, _>>()?;
    let limits = connection_limits::ConnectionLimits::default()
        // Counted in connections, at most 2 per peer (simultaneous dials), while the
        // cap on inbound peers is kept by letting the oldest go past it
        // (`Peers::evict_inbound`): room for a newcomer to get in, which a seed needs.
        .with_max_established_incoming(Some((config.max_inbound + INBOUND_ROOM) * 2))
        .with_max_established_outgoing(Some(config.max_outbound))
        .with_max_established_per_peer(Some(2));
    let blocks_topic = IdentTopic::new(format!("{prefix}/blocks"));
    let txs_topic = IdentTopic::new(format!("{prefix}/transfers"));
    let (blocks_hash, txs_hash) = (blocks_topic.hash(), txs_topic.hash());
    let latency = config.link_latency;
    let mut swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_other_transport(|key| {
            // TCP, each connection delayed in the lab only (`link_latency`), then noise
            // and yamux: what `with_tcp` builds, with the one hook.
            use libp2p::Transport as _;
            let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                .map(move |stream, _| crate::latency::Link::new(stream, latency));
            let noise = noise::Config::new(key)
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
            Ok(tcp
                .upgrade(libp2p::core::upgrade::Version::V1)
                .authenticate(noise)
                .multiplex(yamux::Config::default()))
        })
        .map_err(|e| setup(&e))?
        .with_bandwidth_metrics(registry)
        .with_behaviour(|key| {
            let sync = request_response::Behaviour::new(
                [(sync_protocol, ProtocolSupport::Full)],
                // At most 8 sync streams at once per connection (each answer may hold
                // 16 MiB), not libp2p's default of 100.
                request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(30))
                    .with_max_concurrent_streams(MAX_SYNC_STREAMS),
            );
            Ok(Behaviour {
                gate: Gate::new(MAX_INBOUND_PER_IP, config.max_outbound as usize),
                limits: connection_limits::Behaviour::new(limits),
                gossipsub: gossip::behaviour(blocks_hash, txs_hash)?,
                sync,
                identify: identify::Behaviour::new(
                    identify::Config::new(identify_protocol, key.public())
                        .with_agent_version(crate::agent::agent_version(config.name.as_ref())),
                ),
                // A link that answers no ping for about 20 s is dead (a cut cable, a
                // split network): its connection is closed, so that the node dials
                // another instead of waiting out TCP's retries.
                ping: ping::Behaviour::new(
                    ping::Config::new()
                        .with_interval(Duration::from_secs(10))
                        .with_timeout(Duration::from_secs(10)),
                ),
                kad: discovery::behaviour(kad_protocol.clone(), key.public().to_peer_id()),
            })
        })
        .map_err(|e| setup(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    for topic in [&blocks_topic, &txs_topic] {
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(topic)
            .map_err(|e| setup(&e))?;
    }
    swarm
        .listen_on(listen.clone())
        .map_err(|e| NetError::Listen {
            addr: config.listen.clone(),
            reason: e.to_string(),
        })?;
    let metrics = NetMetrics::new(registry);
    for addr in external {
        swarm.add_external_address(addr);
    }
    for addr in peers.initial() {
        let _ = swarm.dial(addr);
    }
    let (info, info_rx) = watch::channel(NetInfo {
        peer_id: swarm.local_peer_id().to_string(),
        ..NetInfo::default()
    });
    let (commands, commands_rx) = mpsc::unbounded_channel();
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let transfers = {
        let (chain, done) = (chain.clone(), done_tx.clone());
        let mut gapped = gossip::Gapped::default();
        gossip::transfer_checker(move |(id, source, transfer)| {
            let checked = gossip::Checked {
                verdict: gossip::check_transfer(&chain, &mut gapped, transfer),
                orphan: None,
                not_taken: None,
                height: None,
            };
            let _ = done.send(Done::Gossip {
                id,
                source,
                checked,
                kind: "transfer",
                arrived: None,
            });
        })
        .map_err(|e| setup(&e))?
    };
    let events = chain.view().subscribe();
    let service = Service {
        me: swarm.local_peer_id().to_string(),
        swarm,
        chain,
        store,
        genesis,
        blocks_topic,
        txs_topic,
        done_tx,
        transfers,
        syncer: Syncer::default(),
        peers,
        requests: HashMap::new(),
        compact: HashMap::new(),
        relay: Default::default(),
        validating: 0,
        validating_blocks: 0,
        gossiped_txs: Default::default(),
        gossiped: VecDeque::new(),
        not_taken: VecDeque::new(),
        reorg_to: None,
        kad_protocol,
        metrics,
        max_inbound: config.max_inbound as usize,
        kad_started: !config.discovery,
        discovery: config.discovery,
        info,
        rejected: Default::default(),
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
        task: std::sync::Mutex::new(Some(task)),
    })
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
                        self.peers.configure(addr.clone());
                        let _ = self.swarm.dial(addr);
                    }
                    Some(Command::Refresh) => self.ask_statuses(),
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
        let me = &self.me;
        let tip = self.chain.view().tip().height.0;
        let info = NetInfo {
            peer_id: me.clone(),
            listen_addrs: swarm.listeners().map(|a| format!("{a}/p2p/{me}")).collect(),
            peers: swarm
                .connected_peers()
                .map(|p| {
                    let (peer_id, address) = match self.peers.shown(p) {
                        Some((id, address)) => (id.clone(), address.clone()),
                        None => (p.to_string(), String::new()),
                    };
                    PeerView {
                        peer_id,
                        address,
                        height: self.syncer.height(p),
                        said: self.peers.said(p),
                    }
                })
                .collect(),
            sync: self.syncer.target().map(|target| SyncProgress {
                height: tip,
                target,
            }),
            banned: self.swarm.behaviour().gate.banned(),
            rejected: self.rejected.clone(),
            relay: self.relay.clone(),
        };
        let outbound = self.peers.outbound();
        self.metrics
            .peers(info.peers.len().saturating_sub(outbound), outbound);
        let sync = info.sync.unwrap_or(SyncProgress {
            height: 0,
            target: 0,
        });
        self.metrics.sync(sync.height, sync.target);
        self.metrics
            .validating(self.validating + self.validating_blocks);
        self.info.send_if_modified(|old| {
            let changed = *old != info;
            *old = info;
            changed
        });
    }

    /// Bans `peer` for the ban time, and its IP when it is the second peer id banned
    /// from there (see [`Peers::banned`]).
    fn ban(&mut self, peer: PeerId, why: &str) {
        let now = Instant::now();
        let until = now + self.peers.ban_for;
        tracing::warn!(%peer, reason = why, for_s = self.peers.ban_for.as_secs(), "banned a peer");
        *self.rejected.entry(why.to_string()).or_default() += 1;
        self.metrics.penalty(why);
        let gate = &mut self.swarm.behaviour_mut().gate;
        gate.ban_peer(peer, until);
        if let Some(ip) = self.peers.banned(peer, now) {
            tracing::warn!(%ip, "banned an address: a second peer id from it was banned");
            gate.ban_ip(ip, until);
        }
        let _ = self.swarm.disconnect_peer_id(peer);
        self.swarm.behaviour_mut().kad.remove_peer(&peer);
        self.syncer.forget(&peer);
        self.publish_info();
    }

    /// Runs the sync machine: starts what it can start, and carries out its steps.
    fn drive_sync(&mut self) {
        loop {
            // Steps an input left (a penalty above all) are carried out before the
            // machine chooses whom to ask next, so that it sees the penalty.
            let pending = self.syncer.take_steps();
            if !pending.is_empty() {
                for step in pending {
                    self.carry_out(step);
                }
                continue;
            }
            let now = Instant::now();
            {
                let Service {
                    syncer,
                    peers,
                    swarm,
                    chain,
                    genesis,
                    ..
                } = self;
                let local = ChainLocal {
                    view: chain.view(),
                    genesis: *genesis,
                };
                let usable = |p: &PeerId| {
                    swarm.is_connected(p)
                        && !peers.paused(p, now)
                        && !swarm.behaviour().gate.is_banned(p)
                };
                syncer.drive(&local, &usable, now);
            }
            let steps = self.syncer.take_steps();
            if steps.is_empty() {
                return;
            }
            for step in steps {
                self.carry_out(step);
            }
        }
    }

    fn carry_out(&mut self, step: Step) {
        match step {
            Step::Send {
                peer,
                token,
                request,
            } => {
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                self.requests.insert(id, Some(token));
            }
            Step::Import { round, blocks } => self.import(round, blocks),
            Step::Penalise {
                peer,
                penalty: Penalty::Ban(why),
            } => self.ban(peer, why),
            Step::Penalise {
                peer,
                penalty: Penalty::Strike(why),
            } => match self.peers.strike(peer, Instant::now()) {
                Struck::Ban => self.ban(peer, why),
                Struck::Paused(count) => {
                    tracing::info!(%peer, reason = why, strikes = count, "sync peer at fault: syncing from another");
                    *self.rejected.entry(why.to_string()).or_default() += 1;
                    self.metrics.penalty(why);
                }
            },
            Step::Finished {
                height,
                reached,
                imported,
            } => {
                if reached && imported {
                    tracing::info!(height, "sync done");
                    self.announce_tip();
                } else {
                    tracing::debug!(height, reached, imported, "sync round ended");
                }
                self.publish_info();
            }
        }
    }

    /// After a sync that brought blocks, the tip is news to peers that were on another
    /// branch (a healed split): gossiped, so that they fetch the branch by sync now
    /// rather than at their next status poll. A tip that came by gossip is not (the
    /// peers have it, and gossipsub would refuse it).
    fn announce_tip(&mut self) {
        let view = self.chain.view();
        let tip = view.tip();
        if self.gossiped.contains(&tip.hash) {
            return;
        }
        let Ok(Some(block)) = view.store().block(&tip.hash) else {
            return;
        };
        remember(&mut self.gossiped, tip.hash);
        self.publish_block(&block);
    }

    fn ask_statuses(&mut self) {
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in peers {
            self.ask_status(peer);
        }
    }

    fn ask_status(&mut self, peer: PeerId) {
        let id = self
            .swarm
            .behaviour_mut()
            .sync
            .send_request(&peer, SyncRequest::Status);
        self.requests.insert(id, None);
    }

    fn on_tick(&mut self, ticks: u64) {
        let now = Instant::now();
        self.swarm.behaviour_mut().gate.expire(now);
        self.peers.expire(now);
        for addr in self.peers.due_dials(now) {
            let _ = self.swarm.dial(addr);
        }
        // Ask everyone for their status now and then; a sync starts if someone is ahead.
        if ticks.is_multiple_of(10) {
            self.ask_statuses();
            // Below the outbound target, look for more peers: a lookup of a random id
            // walks the DHT and meets peers all over it.
            // The routing table's refresh: our own id and a random one per bucket.
            if self.discovery && ticks.is_multiple_of(60) {
                let _ = self.swarm.behaviour_mut().kad.bootstrap();
            }
            if self.discovery && self.peers.outbound() < crate::peers::TARGET_OUTBOUND {
                self.swarm
                    .behaviour_mut()
                    .kad
                    .get_closest_peers(PeerId::random());
            }
        }
        self.ban_invalid_senders();
        self.expire_compact(now);
        self.check_orphans(now);
        self.drive_sync();
        self.publish_info();
    }

    /// Strikes the peers whose orphans waited [`crate::peers::ORPHAN_GRACE`] outside any sync
    /// round and never connected, and drops those orphans.
    fn check_orphans(&mut self, now: Instant) {
        if self.syncer.syncing() {
            self.peers.orphans_waited_for_sync(now);
            return;
        }
        let store = self.store.clone();
        let stale = self
            .peers
            .stale_orphans(now, |hash| matches!(store.header(hash), Ok(Some(_))));
        for (peer, hashes) in stale {
            self.drop_orphans(hashes);
            self.carry_out(Step::Penalise {
                peer,
                penalty: Penalty::Strike("orphans_never_connected"),
            });
        }
    }

    /// Drops orphans from the chain's pool, off the loop (the pool is the writer's).
    fn drop_orphans(&mut self, hashes: Vec<BlockHash>) {
        let chain = self.chain.clone();
        tokio::task::spawn_blocking(move || {
            chain.write(|c| {
                for hash in &hashes {
                    c.drop_orphan(hash);
                }
            })
        });
    }

    /// Bans the peers whose gossip score went negative: gossipsub dropped a message of
    /// theirs before it reached us (oversize for its topic, or a bad envelope).
    fn ban_invalid_senders(&mut self) {
        let behaviour = self.swarm.behaviour();
        let bad: Vec<PeerId> = self
            .swarm
            .connected_peers()
            .filter(|p| !behaviour.gate.is_banned(p))
            .filter(|p| behaviour.gossipsub.peer_score(p).is_some_and(|s| s < 0.0))
            .copied()
            .collect();
        for peer in bad {
            self.ban(peer, "malformed_gossip");
        }
    }

    fn on_chain(&mut self, event: ChainEvent) {
        match event {
            // A reorg's events: the Reorg, then each branch block connected, the new
            // tip last.
            ChainEvent::Reorg { new_tip, .. } => self.reorg_to = Some(new_tip),
            ChainEvent::BlockConnected { hash, block, .. } => {
                // Blocks a sync brings are old news to the peers, gossipsub forwards the
                // ones that came by gossip, and of a reorg's branch only the new tip is
                // news (a peer that lacks its parents fetches them by sync): none of
                // those is published again.
                if let Some(tip) = self.reorg_to {
                    if tip != hash {
                        return;
                    }
                    self.reorg_to = None;
                }
                if self.syncer.syncing() || self.gossiped.contains(&hash) {
                    return;
                }
                self.publish_block(&block);
            }
            // A transfer that came by gossip is forwarded by gossipsub (or was seen by
            // it already): only the node's own are published.
            ChainEvent::TransferAccepted { txid, .. } if self.gossiped_txs.1.contains(&txid) => {}
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
        self.metrics.libp2p.record(&event);
        if let SwarmEvent::Behaviour(behaviour) = &event {
            let m = &self.metrics.libp2p;
            match behaviour {
                BehaviourEvent::Gossipsub(e) => m.record(e),
                BehaviourEvent::Identify(e) => m.record(e),
                BehaviourEvent::Kad(e) => m.record(e),
                BehaviourEvent::Ping(e) => m.record(e),
                _ => {}
            }
        }
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
                self.peers.connected(
                    peer_id,
                    endpoint.get_remote_address().clone(),
                    endpoint.is_dialer(),
                );
                if let Some(old) = self.peers.evict_inbound(self.max_inbound) {
                    tracing::debug!(peer = %old, "inbound peers full: letting the oldest go");
                    let _ = self.swarm.disconnect_peer_id(old);
                }
                self.ask_status(peer_id);
                self.publish_info();
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                ..
            } => {
                if num_established == 0 {
                    tracing::info!(peer = %peer_id, "peer disconnected");
                    self.peers.disconnected(&peer_id);
                    self.syncer.forget(&peer_id);
                    self.drive_sync();
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
            // libp2p reports a ping failure only after two in a row.
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result: Err(failure),
            })) if !matches!(failure, ping::Failure::Unsupported) => {
                tracing::debug!(%peer, %failure, "no ping answers: closing the connection");
                self.swarm.close_connection(connection);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                self.peers.identified(peer_id, &info.listen_addrs);
                self.peers.said_agent(
                    peer_id,
                    &info.agent_version,
                    self.chain.view().params().network,
                    &info.listen_addrs,
                );
                // A peer that serves our network's DHT goes in the routing table, at
                // the addresses it listens on (an inbound peer's address as we see it
                // is an ephemeral port).
                if info.protocols.contains(&self.kad_protocol) {
                    let kad = &mut self.swarm.behaviour_mut().kad;
                    for addr in &info.listen_addrs {
                        if crate::peers::dialable(addr) {
                            kad.add_address(&peer_id, addr.clone());
                        }
                    }
                    if !self.kad_started {
                        self.kad_started = true;
                        let _ = kad.bootstrap();
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => {
                for (peer, addrs) in discovery::found(&event) {
                    if self.discovery && peer != *self.swarm.local_peer_id() {
                        self.peers.found(peer, &addrs);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_gossip(&mut self, source: PeerId, id: MessageId, message: gossipsub::Message) {
        // Decoding comes first, so that bytes that do not decode get their sender banned
        // even while the checks are full; past [`MAX_VALIDATING`] transfers (or
        // [`MAX_VALIDATING_BLOCKS`] blocks) the rest is ignored.
        if message.topic == self.blocks_topic.hash() {
            let full = self.validating_blocks >= MAX_VALIDATING_BLOCKS;
            let Ok(compact) = CompactBlock::from_bytes(&message.data) else {
                self.report(&id, &source, "block", Verdict::Reject);
                return;
            };
            self.metrics.compact_bytes(message.data.len());
            if full {
                self.report(&id, &source, "block", Verdict::Ignore);
                return;
            }
            self.on_compact(id, source, compact);
        } else if message.topic == self.txs_topic.hash() {
            let transfer = match decode::<Transaction>(&message.data) {
                Ok(Transaction::Transfer(t)) => t,
                _ => {
                    self.report(&id, &source, "transfer", Verdict::Reject);
                    return;
                }
            };
            if self.validating >= MAX_VALIDATING {
                self.report(&id, &source, "transfer", Verdict::Ignore);
                return;
            }
            // Its txid: the message is the transfer's canonical encoding.
            let txid = Txid(oxchain_primitives::sha256d(&message.data));
            let (order, set) = &mut self.gossiped_txs;
            if set.insert(txid) {
                order.push_back(txid);
                if order.len() > MAX_GOSSIPED_TRANSFERS
                    && let Some(old) = order.pop_front()
                {
                    set.remove(&old);
                }
            }
            self.validating += 1;
            // In arrival order, on one thread: a sender's transfers come in nonce order,
            // and checked side by side the later one could find a nonce gap and be
            // dropped.
            if self.transfers.send((id, source, transfer)).is_err() {
                tracing::error!("the gossip transfer checker has stopped");
            }
        } else {
            self.report(&id, &source, "other", Verdict::Ignore);
        }
    }

    fn report(&mut self, id: &MessageId, source: &PeerId, kind: &'static str, verdict: Verdict) {
        let (acceptance, name) = match verdict {
            Verdict::Accept => (MessageAcceptance::Accept, "accept"),
            Verdict::Ignore => (MessageAcceptance::Ignore, "ignore"),
            Verdict::Reject => (MessageAcceptance::Reject, "reject"),
        };
        self.metrics.gossip(kind, name);
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
                checked,
                kind,
                arrived,
            } => self.on_checked(id, source, checked, kind, arrived),
            Done::Compact(done) => self.on_compact_done(*done),
            Done::Respond { channel, response } => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, response);
            }
            Done::Imported { round, faulty } => {
                for peer in faulty.iter().flatten() {
                    self.ban(*peer, "invalid_sync_block");
                }
                let local = local(&self.chain, self.genesis);
                let failed = faulty.is_none_or(|f| !f.is_empty());
                self.syncer.imported(&local, round, failed);
            }
        }
        self.drive_sync();
        self.publish_info();
    }

    /// A gossiped message was checked: its verdict goes to gossipsub, and what it says of
    /// its sender to the sync and the orphan rules.
    fn on_checked(
        &mut self,
        id: MessageId,
        source: PeerId,
        checked: gossip::Checked,
        kind: &'static str,
        arrived: Option<(Instant, i64)>,
    ) {
        if kind == "block" {
            self.validating_blocks = self.validating_blocks.saturating_sub(1);
        } else {
            self.validating = self.validating.saturating_sub(1);
        }
        if let (Some((at, late_ms)), Verdict::Accept) = (arrived, checked.verdict) {
            self.metrics.block_arrived(late_ms);
            self.metrics.block_connected(at.elapsed());
        }
        self.report(&id, &source, kind, checked.verdict);
        // Peers' heights shown between status rounds follow their blocks.
        if let Some(height) = checked.height {
            self.syncer.saw_height(source, height);
        }
        // A block whose parent we lack: its sender has a chain we have not seen, unless a
        // sync fault keeps it from being asked. Each peer's share of the orphan pool is
        // capped.
        if let Some(hash) = checked.not_taken {
            self.on_not_taken(hash, false);
        }
        if let Some((orphan, parent)) = checked.orphan {
            self.on_orphan(source, orphan, parent);
        }
    }

    /// A gossiped block was not taken through no fault of its sender (its low work, or a
    /// stale block 1), or is a child of one. Its children, and theirs, are not counted
    /// against their senders: those already pooled (gossip over several paths, and checks
    /// that run side by side, can finish a child before its parent) are forgotten now.
    /// The pooled ones are dropped from the pool: a branch we did not take is fetched by
    /// sync if it ever leads.
    fn on_not_taken(&mut self, hash: BlockHash, pooled: bool) {
        let mut drop = if pooled { vec![hash] } else { Vec::new() };
        let mut parents = vec![hash];
        while let Some(parent) = parents.pop() {
            remember(&mut self.not_taken, parent);
            for child in self.peers.excuse_children(&parent) {
                parents.push(child);
                drop.push(child);
            }
        }
        if !drop.is_empty() {
            self.drop_orphans(drop);
        }
    }

    /// A gossiped block from `source` waits in the orphan pool.
    fn on_orphan(&mut self, source: PeerId, orphan: BlockHash, parent: BlockHash) {
        let now = Instant::now();
        if self.not_taken.contains(&parent) {
            self.on_not_taken(orphan, true);
            return;
        }
        // A sender gone by now has no share to keep: its orphans age out of the pool.
        if !self.swarm.is_connected(&source) {
            return;
        }
        if let Some(dropped) = self.peers.orphan(source, orphan, parent, now) {
            self.drop_orphans(vec![dropped]);
        }
        if !self.peers.paused(&source, now) {
            let local = local(&self.chain, self.genesis);
            self.syncer.orphan_from(&local, source, now);
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
                    if self.compact.contains_key(&request_id) {
                        self.on_compact_answer(peer, &request_id, Some(response));
                        self.drive_sync();
                        return;
                    }
                    let token = self.requests.remove(&request_id).flatten();
                    self.on_response(peer, token, response);
                    self.drive_sync();
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if self.on_compact_answer(peer, &request_id, None) {
                    self.drive_sync();
                    return;
                }
                if let Some(token) = self.requests.remove(&request_id).flatten() {
                    use request_response::OutboundFailure;
                    let failure = match error {
                        OutboundFailure::Timeout => Failure::Timeout,
                        // An answer that does not decode, or over its cap.
                        OutboundFailure::Io(_) => Failure::BadAnswer,
                        OutboundFailure::UnsupportedProtocols => Failure::Unsupported,
                        _ => Failure::Closed,
                    };
                    self.syncer.failed(peer, token, failure);
                    self.drive_sync();
                }
            }
            _ => {}
        }
    }

    fn on_response(&mut self, peer: PeerId, token: Option<Token>, response: SyncResponse) {
        let local = local(&self.chain, self.genesis);
        match (response, token) {
            (
                SyncResponse::Status {
                    genesis,
                    tip,
                    height,
                    total_work,
                },
                _,
            ) => {
                if genesis != self.genesis {
                    // Another network: nobody's fault, but nothing to talk about.
                    let _ = self.swarm.disconnect_peer_id(peer);
                    return;
                }
                // A feeler is worth keeping if its chain is ahead of ours or on another
                // branch (either side of a healed split has blocks the other lacks).
                let on_our_chain = self
                    .chain
                    .view()
                    .store()
                    .hash_at(Height(height.0))
                    .ok()
                    .flatten()
                    == Some(tip);
                let useful = total_work > local.tip_work() || !on_our_chain;
                if self.peers.feeler_answered(&peer, useful) {
                    tracing::debug!(%peer, "feeler on our chain: letting it go");
                    let _ = self.swarm.disconnect_peer_id(peer);
                    return;
                }
                self.syncer.status(
                    peer,
                    Status {
                        height: height.0,
                        work: total_work,
                        tip,
                    },
                );
            }
            (SyncResponse::Headers(headers), Some(token)) => {
                self.syncer.headers(&local, peer, token, headers)
            }
            (SyncResponse::Blocks(blocks), Some(token)) => {
                self.syncer.blocks(&local, peer, token, blocks)
            }
            // Headers or blocks in answer to a Status: not what was asked for.
            (SyncResponse::Headers(_) | SyncResponse::Blocks(_), None)
            | (SyncResponse::BlockTxs(_), _) => self.ban(peer, "unrequested_answer"),
        }
    }

    /// Imports a batch of sync round `round`, off the loop, one batch at a time. The
    /// loop always hears back, even if the import panics (else the sync would wait on it
    /// for ever).
    fn import(&mut self, round: u64, batch: Vec<(Block, PeerId)>) {
        let chain = self.chain.clone();
        let done = self.done_tx.clone();
        tokio::task::spawn_blocking(move || {
            let (blocks, senders): (Vec<Block>, Vec<PeerId>) = batch.into_iter().unzip();
            let outcomes = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                chain.write(|c| c.process_blocks(blocks, now_ms()))
            }));
            let faulty = match outcomes {
                Ok(Ok(outcomes)) => {
                    let mut faulty: Vec<PeerId> = outcomes
                        .iter()
                        .zip(&senders)
                        .filter(|(o, _)| o.fault() == Some(Fault::Sender))
                        .map(|(_, p)| *p)
                        .collect();
                    faulty.sort();
                    faulty.dedup();
                    Some(faulty)
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "sync import failed");
                    None
                }
                Err(_) => {
                    tracing::error!("sync import panicked");
                    None
                }
            };
            let _ = done.send(Done::Imported { round, faulty });
        });
    }

    /// Answers a peer's request off the loop (reads may take a while).
    fn serve(&mut self, request: SyncRequest, channel: ResponseChannel<SyncResponse>) {
        let store = self.store.clone();
        let genesis = self.genesis;
        let done = self.done_tx.clone();
        tokio::task::spawn_blocking(move || {
            let response = crate::serve::answer(&store, genesis, request);
            let _ = done.send(Done::Respond { channel, response });
        });
    }
}
