//! The swarm's event loop: one task owns the swarm; the chain is reached through its
//! mutex on blocking threads, and the results come back to the loop as messages.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libp2p::futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageId};
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    PeerId, StreamProtocol, Swarm, SwarmBuilder, connection_limits, identify, noise, ping, tcp,
    yamux,
};
use oxchain_chain::{ChainEvent, SharedChain};
use oxchain_primitives::{BlockHash, Transaction, Txid, encode};
use oxchain_storage::Store;
use prometheus_client::registry::Registry;
use tokio::sync::{broadcast, mpsc, watch};

mod gossiping;
mod handle;
mod relay;
mod syncing;

use handle::Command;
pub use handle::{NetConfig, NetHandle, NetInfo, PeerView, SyncProgress};
use syncing::local;

use crate::NetError;
use crate::codec::SyncCodec;
use crate::discovery;
use crate::gate::Gate;
use crate::gossip;
use crate::message::SyncResponse;
use crate::metrics::NetMetrics;
use crate::peers::Peers;
use crate::sync::{Syncer, Token};
use libp2p::metrics::Recorder;

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
    /// A gossiped transfer from `source` was held for a nonce gap.
    Gap { source: PeerId, gap: gossip::Gap },
    /// A transfer `source` sent in answer to `GetPending` was checked.
    Fetched {
        source: PeerId,
        verdict: gossip::Verdict,
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
    /// Transfers to check, in order (see [`gossip::transfer_checker`]).
    transfers: std::sync::mpsc::Sender<gossiping::ToCheck>,
    /// `GetPending` requests out: the transfers a held transfer's nonce gap lacks (at
    /// most [`gossiping::MAX_PENDING_ASKS`], one per sender).
    pending_asks: HashMap<OutboundRequestId, gossiping::PendingAsk>,
    /// Nonce gaps of held transfers, by sender: the peer that sent the first held one,
    /// its nonce and when (at most [`gossiping::MAX_GAPS`]).
    gaps: HashMap<oxchain_primitives::Address, (PeerId, u64, Instant)>,
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
        gossip::transfer_checker(move |item| match item {
            gossiping::ToCheck::Gossiped(id, source, transfer) => {
                let (verdict, gap) = gossip::check_transfer(&chain, &mut gapped, transfer);
                let _ = done.send(Done::Gossip {
                    id,
                    source,
                    checked: gossip::Checked::verdict(verdict),
                    kind: "transfer",
                    arrived: None,
                });
                if let Some(gap) = gap {
                    let _ = done.send(Done::Gap { source, gap });
                }
            }
            // Asked for by a gap: no further gap is asked for from here.
            gossiping::ToCheck::Fetched(source, transfer) => {
                let (verdict, _) = gossip::check_transfer(&chain, &mut gapped, transfer);
                let _ = done.send(Done::Fetched { source, verdict });
            }
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
        pending_asks: HashMap::new(),
        gaps: HashMap::new(),
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
            Done::Gap { source, gap } => self.note_gap(source, gap),
            Done::Fetched { source, verdict } => {
                // It came from the peer's mempool, where its signature was checked.
                if verdict == gossip::Verdict::Reject {
                    self.ban(source, "invalid_pending");
                }
            }
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
        self.ask_gaps(now);
        self.drive_sync();
        self.publish_info();
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
}
