//! The peer manager, with no I/O: who is connected and which way, strikes and when a
//! ban reaches a peer's IP, and the address book (bounded, a few addresses per subnet)
//! with its dial backoff. The loop asks it what to dial and tells the [`Gate`] whom to
//! refuse.
//!
//! [`Gate`]: crate::gate::Gate

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use oxchain_primitives::BlockHash;

use crate::gate::ip_of;

/// Sync faults that ban a peer.
const MAX_STRIKES: u32 = 3;
/// How long a first sync fault keeps a peer from being asked (doubled for each further
/// one).
const STRIKE_PAUSE: Duration = Duration::from_secs(30);
/// Peers whose strikes are remembered, at most (the soonest to end go first).
const MAX_STRIKE_ENTRIES: usize = 4096;
/// Peer ids banned from one IP within a ban's time that ban the IP: one is a peer at
/// fault, two are a host that changes its peer id to come back.
const IDS_THAT_BAN_AN_IP: usize = 2;
/// IPs whose banned peer ids are counted, at most.
const MAX_COUNTED_IPS: usize = 16_384;
/// Addresses in the book, at most, and per subnet (IPv4 /16, IPv6 /32).
const MAX_BOOK: usize = 1024;
const MAX_BOOK_PER_SUBNET: usize = 16;
/// Peers dialled out to from the book, while fewer are connected.
/// How long a dial may take to connect (TCP, noise, yamux) before its place in the
/// outbound target is given to another.
const DIAL_PENDING: Duration = Duration::from_secs(10);

pub(crate) const TARGET_OUTBOUND: usize = 8;
/// At the outbound target, one extra dial this often to an address of the book (a
/// feeler): kept if the peer's chain is ahead of ours or on another branch, let go
/// after its status if its tip is on our best chain. A node
/// whose peers all ended up on one side of a split network thus finds the other side
/// once the split heals, where no lookup would (lookups run only below the target).
pub(crate) const FEELER_EVERY: Duration = Duration::from_secs(30);
/// Feeler dials remembered until they connect, at most.
const MAX_FEELERS: usize = 4;
/// Orphans a peer may have in the pool at once: past it, its oldest is dropped.
pub(crate) const MAX_ORPHANS_PER_PEER: usize = 8;
/// How long an orphan may wait to connect, counted while no sync round runs, before
/// its sender is struck: an honest sender's orphan connects in the round it starts.
pub(crate) const ORPHAN_GRACE: Duration = Duration::from_secs(20);
/// Peers remembered across restarts, at most.
const MAX_REMEMBERED: usize = 64;
/// Where they are remembered, in the data directory.
pub(crate) const PEERS_FILE: &str = "peers.txt";

#[derive(Debug, Clone, Copy)]
struct Strike {
    count: u32,
    until: Instant,
}

/// What a strike came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Struck {
    /// Passed over until then.
    Paused(u32),
    /// The last strike: ban it.
    Ban,
}

struct Orphan {
    hash: BlockHash,
    parent: BlockHash,
    at: Instant,
}

struct Connected {
    addr: Multiaddr,
    /// Its peer id and address as text, written once: the API's view of the peers is
    /// rebuilt after every checked gossip message, and base58 is not cheap.
    shown: (String, String),
    outbound: bool,
    since: Instant,
    /// A feeler that has not yet shown it is ahead of us.
    feeler: bool,
    /// What it said of itself (identify).
    said: crate::agent::Said,
}

pub(crate) struct Peers {
    pub(crate) ban_for: Duration,
    strikes: HashMap<PeerId, Strike>,
    banned_from: HashMap<IpAddr, VecDeque<(PeerId, Instant)>>,
    connected: HashMap<PeerId, Connected>,
    /// Given by the user (`--peer`, the API): always redialled, with backoff.
    configured: Vec<Multiaddr>,
    /// Learnt from peers: dialled while fewer than [`TARGET_OUTBOUND`] are out.
    book: Vec<Multiaddr>,
    backoff: HashMap<Multiaddr, (Instant, Duration)>,
    peers_file: PathBuf,
    remembered: Vec<Multiaddr>,
    /// Orphans each connected peer sent that have not connected yet, oldest first.
    orphans: HashMap<PeerId, VecDeque<Orphan>>,
    /// The IPs of peers that disconnected lately (a verdict on their message may come
    /// after they left), at most [`MAX_RECENT`].
    recent: VecDeque<(PeerId, IpAddr)>,
    /// When the next feeler is due, and the feeler dials not connected yet.
    feeler_at: Instant,
    feelers: VecDeque<Multiaddr>,
}

/// Disconnected peers whose IP is remembered for a late ban.
const MAX_RECENT: usize = 1024;

/// The subnet an IP belongs to, for the book's per-subnet cap.
fn subnet(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(ip) => ip.octets()[..2].to_vec(),
        IpAddr::V6(ip) => ip.octets()[..4].to_vec(),
    }
}

/// Whether two multiaddrs name the same IP and TCP port (ignoring `/p2p/ID`).
pub(crate) fn same_endpoint(a: &Multiaddr, b: &Multiaddr) -> bool {
    let key = |m: &Multiaddr| -> Vec<String> {
        m.iter()
            .filter(|p| !matches!(p, Protocol::P2p(_)))
            .map(|p| p.to_string())
            .collect()
    };
    key(a) == key(b)
}

/// Whether `addr` names an IP one could dial (not `0.0.0.0` or `::`).
pub(crate) fn dialable(addr: &Multiaddr) -> bool {
    ip_of(addr).is_some_and(|ip| !ip.is_unspecified())
}

fn peer_in(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

impl Peers {
    /// A manager that dials `configured`, and remembers peers in `data_dir`'s
    /// [`PEERS_FILE`] (read now; a damaged line is skipped).
    pub(crate) fn new(
        ban_for: Duration,
        configured: Vec<Multiaddr>,
        data_dir: &std::path::Path,
    ) -> Peers {
        let peers_file = data_dir.join(PEERS_FILE);
        let remembered: Vec<Multiaddr> = std::fs::read_to_string(&peers_file)
            .map(|text| text.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default();
        let mut peers = Peers {
            ban_for,
            strikes: HashMap::new(),
            banned_from: HashMap::new(),
            connected: HashMap::new(),
            configured,
            book: Vec::new(),
            backoff: HashMap::new(),
            peers_file,
            remembered: Vec::new(),
            orphans: HashMap::new(),
            recent: VecDeque::new(),
            feeler_at: Instant::now() + FEELER_EVERY,
            feelers: VecDeque::new(),
        };
        for addr in &remembered {
            peers.add_to_book(addr.clone());
        }
        peers.remembered = remembered;
        peers
    }

    /// Addresses to dial at start: the configured ones, then the remembered.
    pub(crate) fn initial(&self) -> Vec<Multiaddr> {
        self.configured.iter().chain(&self.book).cloned().collect()
    }

    /// A peer the user asked for.
    pub(crate) fn configure(&mut self, addr: Multiaddr) {
        if !self.configured.iter().any(|c| same_endpoint(c, &addr)) {
            self.configured.push(addr);
        }
    }

    pub(crate) fn connected(&mut self, peer: PeerId, addr: Multiaddr, outbound: bool) {
        let since = Instant::now();
        let feeler = outbound && {
            let before = self.feelers.len();
            self.feelers.retain(|a| !same_endpoint(a, &addr));
            self.feelers.len() < before
        };
        let shown = (peer.to_string(), addr.to_string());
        self.connected.insert(
            peer,
            Connected {
                addr,
                shown,
                outbound,
                since,
                feeler,
                said: Default::default(),
            },
        );
    }

    /// A peer's status came, `useful` or not (its chain is ahead of ours or on another
    /// branch): whether to let it go (a feeler that is not useful). A useful feeler
    /// stays, as a peer like any other.
    pub(crate) fn feeler_answered(&mut self, peer: &PeerId, useful: bool) -> bool {
        match self.connected.get_mut(peer) {
            Some(c) if c.feeler => {
                c.feeler = false;
                !useful
            }
            _ => false,
        }
    }

    /// With more than `max` inbound peers, the one to let go: from the subnet with the
    /// most inbound peers (so that one operator's connections make room for each other,
    /// not for honest peers elsewhere), the longest connected (it has had the most time
    /// to learn other peers). A full node thus keeps taking newcomers, which a seed must.
    pub(crate) fn evict_inbound(&self, max: usize) -> Option<PeerId> {
        let inbound: Vec<(&PeerId, &Connected)> =
            self.connected.iter().filter(|(_, c)| !c.outbound).collect();
        if inbound.len() <= max {
            return None;
        }
        let net = |c: &Connected| ip_of(&c.addr).map(subnet);
        let mut counts: HashMap<Option<Vec<u8>>, usize> = HashMap::new();
        for (_, c) in &inbound {
            *counts.entry(net(c)).or_default() += 1;
        }
        inbound
            .iter()
            .max_by_key(|(_, c)| (counts[&net(c)], std::cmp::Reverse(c.since)))
            .map(|(p, _)| **p)
    }

    pub(crate) fn disconnected(&mut self, peer: &PeerId) {
        if let Some(ip) = self.connected.remove(peer).and_then(|c| ip_of(&c.addr)) {
            if self.recent.len() == MAX_RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back((*peer, ip));
        }
        self.orphans.remove(peer);
    }

    /// `peer` sent an orphan: the orphan of its to drop from the pool, if it now has
    /// more than [`MAX_ORPHANS_PER_PEER`].
    pub(crate) fn orphan(
        &mut self,
        peer: PeerId,
        hash: BlockHash,
        parent: BlockHash,
        now: Instant,
    ) -> Option<BlockHash> {
        let list = self.orphans.entry(peer).or_default();
        if list.iter().any(|o| o.hash == hash) {
            return None;
        }
        list.push_back(Orphan {
            hash,
            parent,
            at: now,
        });
        if list.len() > MAX_ORPHANS_PER_PEER {
            return list.pop_front().map(|o| o.hash);
        }
        None
    }

    /// Forgets, and gives, the orphans whose parent is `parent`, whoever sent them:
    /// the parent turned out to be a block nobody is at fault for not connecting (one
    /// refused for its low work, whose verdict came after its children's).
    pub(crate) fn excuse_children(&mut self, parent: &BlockHash) -> Vec<BlockHash> {
        let mut excused = Vec::new();
        self.orphans.retain(|_, list| {
            list.retain(|o| {
                let child = o.parent == *parent;
                if child {
                    excused.push(o.hash);
                }
                !child
            });
            !list.is_empty()
        });
        excused
    }

    /// Forgets the orphans that got stored (`stored`), and gives the peers with one
    /// that waited [`ORPHAN_GRACE`] and never connected, each with its orphans (which
    /// are forgotten here: drop them from the pool). Call it only while no sync round
    /// runs (see [`Peers::orphans_waited_for_sync`]).
    pub(crate) fn stale_orphans(
        &mut self,
        now: Instant,
        stored: impl Fn(&BlockHash) -> bool,
    ) -> Vec<(PeerId, Vec<BlockHash>)> {
        let mut stale = Vec::new();
        self.orphans.retain(|peer, list| {
            list.retain(|o| !stored(&o.hash));
            if list.front().is_some_and(|o| o.at + ORPHAN_GRACE <= now) {
                stale.push((*peer, list.drain(..).map(|o| o.hash).collect()));
            }
            !list.is_empty()
        });
        stale
    }

    /// Restarts the orphans' clocks: a sync round ran, and may have been what they
    /// waited for.
    pub(crate) fn orphans_waited_for_sync(&mut self, now: Instant) {
        for list in self.orphans.values_mut() {
            for o in list.iter_mut() {
                o.at = now;
            }
        }
    }

    /// A connected peer's id and address as text.
    pub(crate) fn shown(&self, peer: &PeerId) -> Option<&(String, String)> {
        self.connected.get(peer).map(|c| &c.shown)
    }

    /// What a connected peer said of itself.
    pub(crate) fn said(&self, peer: &PeerId) -> crate::agent::Said {
        self.connected
            .get(peer)
            .map(|c| c.said.clone())
            .unwrap_or_default()
    }

    /// Takes note of a connected peer's identify answer: its agent string and where it
    /// listens.
    pub(crate) fn said_agent(
        &mut self,
        peer: PeerId,
        agent: &str,
        network: oxchain_primitives::Network,
        listen_addrs: &[Multiaddr],
    ) {
        if let Some(c) = self.connected.get_mut(&peer) {
            c.said = crate::agent::Said::parse(agent, network);
            c.said.listen = listen_addrs
                .iter()
                .find(|a| dialable(a))
                .map(ToString::to_string);
        }
    }

    /// A ban of `peer`: the IP to ban too, when this is the second peer id banned from
    /// it within a ban's time.
    pub(crate) fn banned(&mut self, peer: PeerId, now: Instant) -> Option<IpAddr> {
        self.strikes.remove(&peer);
        let ip = match self.connected.get(&peer) {
            Some(c) => ip_of(&c.addr)?,
            None => self.recent.iter().rev().find(|(p, _)| *p == peer)?.1,
        };
        if self.banned_from.len() >= MAX_COUNTED_IPS && !self.banned_from.contains_key(&ip) {
            let ban_for = self.ban_for;
            self.banned_from
                .retain(|_, ids| ids.back().is_some_and(|(_, at)| *at + ban_for > now));
            if self.banned_from.len() >= MAX_COUNTED_IPS {
                return None;
            }
        }
        let ids = self.banned_from.entry(ip).or_default();
        ids.retain(|(id, at)| *at + self.ban_for > now && *id != peer);
        ids.push_back((peer, now));
        while ids.len() > IDS_THAT_BAN_AN_IP {
            ids.pop_front();
        }
        (ids.len() >= IDS_THAT_BAN_AN_IP).then_some(ip)
    }

    /// A sync fault of `peer`: passed over for a while, longer each time, banned at the
    /// [`MAX_STRIKES`]th.
    pub(crate) fn strike(&mut self, peer: PeerId, now: Instant) -> Struck {
        if self.strikes.len() >= MAX_STRIKE_ENTRIES
            && !self.strikes.contains_key(&peer)
            && let Some(first) = self
                .strikes
                .iter()
                .min_by_key(|(_, s)| s.until)
                .map(|(p, _)| *p)
        {
            self.strikes.remove(&first);
        }
        let strike = self.strikes.entry(peer).or_insert(Strike {
            count: 0,
            until: now,
        });
        strike.count += 1;
        strike.until = now + STRIKE_PAUSE * 2u32.pow(strike.count - 1);
        if strike.count >= MAX_STRIKES {
            self.strikes.remove(&peer);
            Struck::Ban
        } else {
            Struck::Paused(strike.count)
        }
    }

    /// Whether a strike keeps `peer` from being asked now.
    pub(crate) fn paused(&self, peer: &PeerId, now: Instant) -> bool {
        self.strikes.get(peer).is_some_and(|s| s.until > now)
    }

    /// Forgets what has expired: strikes an hour after their pause ends.
    pub(crate) fn expire(&mut self, now: Instant) {
        self.strikes
            .retain(|_, s| s.until + Duration::from_secs(3600) > now);
        let ban_for = self.ban_for;
        self.banned_from
            .retain(|_, ids| ids.back().is_some_and(|(_, at)| *at + ban_for > now));
    }

    fn add_to_book(&mut self, addr: Multiaddr) -> bool {
        let Some(ip) = ip_of(&addr) else {
            return false;
        };
        if ip.is_unspecified()
            || self.book.iter().any(|b| same_endpoint(b, &addr))
            || self.configured.iter().any(|c| same_endpoint(c, &addr))
        {
            return false;
        }
        let net = subnet(ip);
        let same_net = self
            .book
            .iter()
            .filter(|b| ip_of(b).is_some_and(|i| subnet(i) == net))
            .count();
        if same_net >= MAX_BOOK_PER_SUBNET {
            return false;
        }
        if self.book.len() >= MAX_BOOK {
            let gone = self.book.remove(0);
            self.backoff.remove(&gone);
        }
        self.book.push(addr);
        true
    }

    /// `peer` told us where it listens: the first usable address goes in the book and
    /// in [`PEERS_FILE`], so that a restarted node dials its peers again.
    pub(crate) fn identified(&mut self, peer: PeerId, listen_addrs: &[Multiaddr]) {
        let Some(addr) = listen_addrs.iter().find(|a| dialable(a)) else {
            return;
        };
        let full = addr.clone().with(Protocol::P2p(peer));
        self.add_to_book(full.clone());
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

    /// A bootstrap address of the network: in the book, dialled like any found peer.
    pub(crate) fn bootstrap(&mut self, addr: Multiaddr) {
        self.add_to_book(addr);
    }

    /// Discovery found `peer` at `addrs`: its first usable address goes in the book (not
    /// in [`PEERS_FILE`]: only peers we reached are remembered).
    pub(crate) fn found(&mut self, peer: PeerId, addrs: &[Multiaddr]) {
        if self.connected.contains_key(&peer) {
            return;
        }
        if let Some(addr) = addrs.iter().find(|a| dialable(a)) {
            let addr = match peer_in(addr) {
                Some(_) => addr.clone(),
                None => addr.clone().with(Protocol::P2p(peer)),
            };
            self.add_to_book(addr);
        }
    }

    /// Outbound connections now.
    pub(crate) fn outbound(&self) -> usize {
        self.connected.values().filter(|c| c.outbound).count()
    }

    fn linked(&self, addr: &Multiaddr) -> bool {
        peer_in(addr).is_some_and(|p| self.connected.contains_key(&p))
            || self
                .connected
                .values()
                .any(|c| same_endpoint(&c.addr, addr))
    }

    /// What to dial now: configured peers that are not connected, and peers from the
    /// book while fewer than [`TARGET_OUTBOUND`] are out; each with its own backoff
    /// (1 s, doubling to a minute).
    pub(crate) fn due_dials(&mut self, now: Instant) -> Vec<Multiaddr> {
        self.backoff
            .retain(|a, _| !self.connected.values().any(|c| same_endpoint(&c.addr, a)));
        let due = |a: &Multiaddr| self.backoff.get(a).is_none_or(|(next, _)| *next <= now);
        // Configured peers are how a node joins: redialled while it has fewer outbound
        // peers than its target, not once discovery has found it enough (a seed that
        // every node held on to would fill up).
        let joining = self.outbound() < TARGET_OUTBOUND;
        let mut dial: Vec<Multiaddr> = self
            .configured
            .iter()
            .filter(|a| joining && !self.linked(a) && due(a))
            .cloned()
            .collect();
        // A dial of the last few seconds that has not connected yet may still: it holds
        // its place, so that the target is not overshot while dials are under way.
        let pending = self
            .book
            .iter()
            .filter(|a| {
                !self.linked(a)
                    && self
                        .backoff
                        .get(*a)
                        .is_some_and(|(next, delay)| now < *next - *delay + DIAL_PENDING)
            })
            .count();
        let room = TARGET_OUTBOUND.saturating_sub(self.outbound() + pending);
        // Subnets we have fewest peers in first: a node's peers spread across subnets,
        // so that one operator's addresses cannot make up all of them.
        let mut candidates: Vec<&Multiaddr> = self
            .book
            .iter()
            .filter(|a| !self.linked(a) && due(a))
            .collect();
        let in_subnet = |a: &Multiaddr| {
            let net = ip_of(a).map(subnet);
            self.connected
                .values()
                .filter(|c| ip_of(&c.addr).map(subnet) == net)
                .count()
        };
        candidates.sort_by_cached_key(|a| in_subnet(a));
        // At the target, a feeler now and then: one address at random, backoff or not
        // (an address that failed through a split is worth a try once it heals, and
        // feelers come only every 30 s).
        let unlinked: Vec<&Multiaddr> = self.book.iter().filter(|a| !self.linked(a)).collect();
        let feeler = (!joining && now >= self.feeler_at && !unlinked.is_empty())
            .then(|| unlinked[rand::random_range(0..unlinked.len())].clone());
        let candidates: Vec<Multiaddr> = candidates.into_iter().take(room).cloned().collect();
        dial.extend(candidates);
        if !joining && now >= self.feeler_at {
            self.feeler_at = now + FEELER_EVERY;
        }
        if let Some(addr) = feeler {
            self.feelers.push_back(addr.clone());
            if self.feelers.len() > MAX_FEELERS {
                self.feelers.pop_front();
            }
            dial.push(addr);
        }
        for addr in &dial {
            let delay = self
                .backoff
                .get(addr)
                .map_or(Duration::from_secs(1), |(_, d)| *d);
            let delay = (delay * 2).min(Duration::from_secs(60));
            self.backoff.insert(addr.clone(), (now + delay, delay));
        }
        dial
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn addr(text: &str) -> Multiaddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_second_peer_id_banned_from_an_ip_bans_the_ip() {
        let dir = tempfile::tempdir().unwrap();
        let mut peers = Peers::new(Duration::from_secs(3600), vec![], dir.path());
        let now = Instant::now();
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        peers.connected(a, addr("/ip4/10.0.0.1/tcp/5000"), false);
        peers.connected(b, addr("/ip4/10.0.0.1/tcp/5001"), false);
        peers.connected(c, addr("/ip4/10.0.0.2/tcp/5000"), false);
        assert_eq!(peers.banned(a, now), None);
        assert_eq!(peers.banned(c, now), None, "another IP counts apart");
        assert_eq!(peers.banned(b, now), Some("10.0.0.1".parse().unwrap()));
        // Long after, one ban is one ban again.
        let later = now + Duration::from_secs(7200);
        peers.expire(later);
        peers.connected(a, addr("/ip4/10.0.0.1/tcp/5000"), false);
        assert_eq!(peers.banned(a, later), None);
    }

    #[test]
    fn a_peer_banned_after_it_left_still_counts_against_its_ip() {
        let dir = tempfile::tempdir().unwrap();
        let mut peers = Peers::new(Duration::from_secs(3600), vec![], dir.path());
        let now = Instant::now();
        let (a, b) = (PeerId::random(), PeerId::random());
        peers.connected(a, addr("/ip4/10.0.0.1/tcp/5000"), false);
        peers.connected(b, addr("/ip4/10.0.0.1/tcp/5001"), false);
        peers.disconnected(&a);
        peers.disconnected(&b);
        assert_eq!(peers.banned(a, now), None);
        assert_eq!(peers.banned(b, now), Some("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn orphans_are_capped_per_peer_and_the_children_of_an_excused_parent_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let mut peers = Peers::new(Duration::from_secs(3600), vec![], dir.path());
        let now = Instant::now();
        let (p, q) = (PeerId::random(), PeerId::random());
        let h = |i: u8| BlockHash([i; 32]);
        for i in 0..MAX_ORPHANS_PER_PEER as u8 {
            assert_eq!(peers.orphan(p, h(i), h(100), now), None);
        }
        assert_eq!(
            peers.orphan(p, h(0), h(100), now),
            None,
            "a repeat holds no place"
        );
        assert_eq!(
            peers.orphan(p, h(50), h(101), now),
            Some(h(0)),
            "the oldest makes room"
        );
        assert_eq!(peers.orphan(q, h(60), h(100), now), None);
        let mut excused = peers.excuse_children(&h(100));
        excused.sort_by_key(|b| b.0);
        let mut want: Vec<BlockHash> = (1..MAX_ORPHANS_PER_PEER as u8).map(h).collect();
        want.push(h(60));
        assert_eq!(excused, want, "every sender's children of that parent");
        let later = now + ORPHAN_GRACE;
        let stale = peers.stale_orphans(later, |_| false);
        assert_eq!(
            stale,
            vec![(p, vec![h(50)])],
            "only the unexcused one counts"
        );
    }

    #[test]
    fn found_peers_are_dialled_subnets_with_fewest_peers_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut peers = Peers::new(Duration::from_secs(3600), vec![], dir.path());
        let now = Instant::now();
        // Two peers up in 10.1/16, outbound.
        for i in 1..=2 {
            peers.connected(
                PeerId::random(),
                addr(&format!("/ip4/10.1.0.{i}/tcp/26950")),
                true,
            );
        }
        // Found: seven more in 10.1/16, then one in 10.2/16; an unspecified address is
        // no use, and a connected peer is not dialled again.
        for i in 3..=9 {
            peers.found(
                PeerId::random(),
                &[addr(&format!("/ip4/10.1.0.{i}/tcp/26950"))],
            );
        }
        let far = PeerId::random();
        peers.found(
            far,
            &[
                addr("/ip4/0.0.0.0/tcp/26950"),
                addr("/ip4/10.2.0.1/tcp/26950"),
            ],
        );
        assert_eq!(peers.book.len(), 8);
        let dials = peers.due_dials(now);
        assert_eq!(dials.len(), TARGET_OUTBOUND - 2, "up to the target");
        assert_eq!(
            dials[0],
            addr("/ip4/10.2.0.1/tcp/26950").with(Protocol::P2p(far)),
            "the subnet with no peer first"
        );
        assert!(peers.due_dials(now).is_empty(), "each waits its backoff");
    }

    #[test]
    fn at_the_target_a_feeler_is_dialled_now_and_then_and_kept_only_if_useful() {
        let dir = tempfile::tempdir().unwrap();
        let mut peers = Peers::new(Duration::from_secs(3600), vec![], dir.path());
        let now = Instant::now();
        for i in 1..=TARGET_OUTBOUND {
            peers.connected(
                PeerId::random(),
                addr(&format!("/ip4/10.{i}.0.1/tcp/26950")),
                true,
            );
        }
        for i in 100..=101 {
            peers.found(
                PeerId::random(),
                &[addr(&format!("/ip4/10.{i}.0.1/tcp/26950"))],
            );
        }
        assert!(
            peers.due_dials(now).is_empty(),
            "at the target, no feeler yet"
        );
        let later = now + FEELER_EVERY;
        let dials = peers.due_dials(later);
        assert_eq!(dials.len(), 1, "one feeler");
        assert!(
            peers.due_dials(later).is_empty(),
            "the next waits its interval"
        );
        // It connects: a peer that is not ahead goes, one that is stays.
        let feeler = PeerId::random();
        peers.connected(feeler, dials[0].clone(), true);
        let mut again = Peers::new(Duration::from_secs(3600), vec![], dir.path());
        again.feelers.push_back(dials[0].clone());
        again.connected(feeler, dials[0].clone(), true);
        assert!(peers.feeler_answered(&feeler, false), "not useful: let go");
        assert!(!again.feeler_answered(&feeler, true), "useful: kept");
        assert!(
            !again.feeler_answered(&feeler, false),
            "once kept, a peer like any other"
        );
        let other = PeerId::random();
        peers.connected(other, addr("/ip4/10.200.0.1/tcp/26950"), true);
        assert!(!peers.feeler_answered(&other, false), "not a feeler");
    }

    #[test]
    fn past_the_inbound_cap_the_oldest_of_the_most_crowded_subnet_goes() {
        let dir = tempfile::tempdir().unwrap();
        let mut peers = Peers::new(Duration::from_secs(3600), vec![], dir.path());
        let old = PeerId::random();
        peers.connected(old, addr("/ip4/10.1.0.1/tcp/1"), false);
        std::thread::sleep(Duration::from_millis(2));
        let crowded: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
        for (i, p) in crowded.iter().enumerate() {
            peers.connected(*p, addr(&format!("/ip4/10.2.0.{}/tcp/1", i + 1)), false);
            std::thread::sleep(Duration::from_millis(2));
        }
        peers.connected(PeerId::random(), addr("/ip4/10.3.0.1/tcp/1"), true);
        assert_eq!(peers.evict_inbound(4), None, "4 inbound: within the cap");
        assert_eq!(
            peers.evict_inbound(3),
            Some(crowded[0]),
            "the oldest of 10.2/16, not the older peer alone in its subnet"
        );
    }

    #[test]
    fn strikes_pause_longer_each_time_and_the_third_bans() {
        let dir = tempfile::tempdir().unwrap();
        let mut peers = Peers::new(Duration::from_secs(3600), vec![], dir.path());
        let now = Instant::now();
        let p = PeerId::random();
        assert_eq!(peers.strike(p, now), Struck::Paused(1));
        assert!(peers.paused(&p, now + Duration::from_secs(29)));
        assert!(!peers.paused(&p, now + Duration::from_secs(31)));
        assert_eq!(peers.strike(p, now), Struck::Paused(2));
        assert!(peers.paused(&p, now + Duration::from_secs(59)));
        assert_eq!(peers.strike(p, now), Struck::Ban);
    }

    #[test]
    fn the_book_keeps_a_few_addresses_per_subnet_and_dials_only_to_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let mut peers = Peers::new(Duration::from_secs(3600), vec![], dir.path());
        for i in 0..100u32 {
            let a = addr(&format!("/ip4/10.1.{}.{}/tcp/26950", i / 250, i % 250 + 1));
            peers.identified(PeerId::random(), &[a]);
        }
        assert_eq!(peers.book.len(), MAX_BOOK_PER_SUBNET, "one subnet's worth");
        for i in 0..40u32 {
            peers.identified(
                PeerId::random(),
                &[addr(&format!("/ip4/10.{}.0.1/tcp/1", i + 2))],
            );
        }
        assert_eq!(peers.book.len(), MAX_BOOK_PER_SUBNET + 40);
        let now = Instant::now();
        assert_eq!(peers.due_dials(now).len(), TARGET_OUTBOUND);
        assert!(
            peers.due_dials(now).is_empty(),
            "backoff: not again at once"
        );
        // A restart dials the remembered peers, at most MAX_REMEMBERED of them.
        let again = Peers::new(Duration::from_secs(3600), vec![], dir.path());
        assert_eq!(again.remembered.len(), MAX_REMEMBERED);
    }
}
