//! Deterministic tests of the sync state machine with scripted peers: no network, no
//! clock but a simulated one, the store replaced by a vector.

use alloy_consensus::{Block, BlockBody, Header, TxEnvelope};
use alloy_eips::eip1898::HashOrNumber;
use alloy_primitives::{Address, B256, U256};
use secp256k1::SecretKey;
use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};
use tern_chainspec::{ChainSpec, DEV_VALIDATOR_KEY};
use tern_consensus::{address_of, chain_gen::generate_chain, clique::*, Sealer};
use tern_network::{Penalty, Reputation};
use tern_p2p::PeerId;
use tern_storage::SealedBlock;
use tern_sync::{Action, Failure, SyncConfig, SyncMachine, WallClock};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Behavior {
    Honest,
    /// Headers at or above this number carry a broken seal.
    BadSealFrom(u64),
    /// Every body it serves has a transaction missing.
    WrongBodies,
    /// Serves headers but answers every body request with nothing.
    NoBodies,
    /// Never answers.
    Silent,
    /// Answers every one-header request with the header after the one asked for.
    OffByOne,
}

struct ScriptedPeer {
    genesis: Header,
    chain: Arc<Vec<Block<TxEnvelope>>>, // blocks 1..=n
    index: Arc<HashMap<B256, u64>>,     // hash -> number
    behavior: Behavior,
}

fn index_of(chain: &[Block<TxEnvelope>]) -> Arc<HashMap<B256, u64>> {
    Arc::new(chain.iter().map(|b| (b.header.hash_slow(), b.header.number)).collect())
}

impl ScriptedPeer {
    fn header(&self, n: u64) -> Option<Header> {
        if n == 0 {
            return Some(self.genesis.clone());
        }
        let mut h = self.chain.get(n.checked_sub(1)? as usize)?.header.clone();
        if matches!(self.behavior, Behavior::BadSealFrom(from) if n >= from) {
            let mut extra = h.extra_data.to_vec();
            let last = extra.len() - 2;
            extra[last] ^= 0x55;
            h.extra_data = extra.into();
        }
        Some(h)
    }

    fn number_of(&self, hash: B256) -> Option<u64> {
        self.index.get(&hash).copied()
    }

    fn headers(&self, start: HashOrNumber, limit: u64) -> Vec<Header> {
        let first = match start {
            HashOrNumber::Number(n) => n,
            HashOrNumber::Hash(h) => match self.number_of(h) {
                Some(n) => n,
                None => return vec![],
            },
        };
        let first =
            if limit == 1 && self.behavior == Behavior::OffByOne { first + 1 } else { first };
        (first..first + limit.min(1024)).map_while(|n| self.header(n)).collect()
    }

    fn bodies(&self, hashes: &[B256]) -> Vec<BlockBody<TxEnvelope>> {
        if self.behavior == Behavior::NoBodies {
            return vec![];
        }
        hashes
            .iter()
            .filter_map(|h| self.number_of(*h).and_then(|n| self.chain.get(n as usize - 1)))
            .map(|b| {
                let mut body = b.body.clone();
                if self.behavior == Behavior::WrongBodies {
                    body.transactions.pop();
                }
                body
            })
            .collect()
    }
}

enum Pending {
    Headers(PeerId, u64, Result<Vec<Header>, Failure>),
    Bodies(PeerId, u64, Result<Vec<BlockBody<TxEnvelope>>, Failure>),
}

/// The machine plus a simulated world.
struct Sim {
    machine: SyncMachine,
    spec: ChainSpec,
    /// The "store": canonical chain after genesis.
    store: Vec<SealedBlock>,
    peers: HashMap<PeerId, ScriptedPeer>,
    reputation: Reputation,
    banned: Vec<PeerId>,
    inbox: VecDeque<Pending>,
    timeouts: Vec<(Instant, Pending)>,
    now: Instant,
    reorgs: usize,
    requests: HashMap<PeerId, usize>,
    /// Ancestor searches: header requests from below our head up to it.
    ranges: HashMap<PeerId, usize>,
    /// Requests sent and not yet answered, per peer, and the most there ever were.
    outstanding: HashMap<PeerId, usize>,
    max_outstanding: HashMap<PeerId, usize>,
    /// Milliseconds passed while answers were being delivered (ticks every 100).
    busy_ms: u64,
}

const TIMEOUT: Duration = Duration::from_secs(2);

impl Sim {
    fn new(spec: ChainSpec, ours: Vec<Block<TxEnvelope>>) -> Self {
        let cfg = SyncConfig { poll_interval: Duration::from_millis(500), ..SyncConfig::default() };
        Self::with_config(spec, ours, cfg)
    }

    fn with_config(spec: ChainSpec, ours: Vec<Block<TxEnvelope>>, cfg: SyncConfig) -> Self {
        let store: Vec<SealedBlock> = ours.into_iter().map(SealedBlock::seal).collect();
        let recent = recent_of(&spec, &store);
        Self {
            machine: SyncMachine::new(spec.clone(), cfg, recent, WallClock::system()),
            spec,
            store,
            peers: HashMap::new(),
            reputation: Reputation::default(),
            banned: vec![],
            inbox: VecDeque::new(),
            timeouts: vec![],
            now: Instant::now(),
            reorgs: 0,
            requests: HashMap::new(),
            ranges: HashMap::new(),
            outstanding: HashMap::new(),
            max_outstanding: HashMap::new(),
            busy_ms: 0,
        }
    }

    fn connect(
        &mut self,
        id: u8,
        chain: Arc<Vec<Block<TxEnvelope>>>,
        behavior: Behavior,
        eth69: bool,
    ) -> PeerId {
        let peer = PeerId::repeat_byte(id);
        let head = chain
            .last()
            .map(|b| (b.header.number, b.header.hash_slow()))
            .unwrap_or((0, self.spec.genesis_hash));
        let index = index_of(&chain);
        self.peers.insert(
            peer,
            ScriptedPeer { genesis: self.spec.genesis_header.clone(), chain, index, behavior },
        );
        self.machine.peer_connected(peer, head.1, eth69.then_some(head.0), self.now);
        peer
    }

    /// From now on `peer` serves `chain`.
    fn serve(&mut self, peer: PeerId, chain: Arc<Vec<Block<TxEnvelope>>>) {
        let p = self.peers.get_mut(&peer).unwrap();
        p.index = index_of(&chain);
        p.chain = chain;
    }

    fn head(&self) -> u64 {
        self.store.last().map_or(0, |b| b.block.header.number)
    }

    fn apply(&mut self) {
        let actions: Vec<Action> = self.machine.actions().collect();
        for a in actions {
            match a {
                Action::GetHeaders { peer, id, req } => {
                    *self.requests.entry(peer).or_default() += 1;
                    self.sent(peer);
                    // An ancestor search asks from below our head up to it, exactly.
                    let head = self.head();
                    if matches!(req.start, HashOrNumber::Number(n) if n <= head && req.limit == head - n + 1)
                    {
                        *self.ranges.entry(peer).or_default() += 1;
                    }
                    let Some(p) = self.peers.get(&peer) else {
                        self.inbox.push_back(Pending::Headers(peer, id, Err(Failure::Gone)));
                        continue;
                    };
                    if p.behavior == Behavior::Silent {
                        self.timeouts.push((
                            self.now + TIMEOUT,
                            Pending::Headers(peer, id, Err(Failure::Timeout)),
                        ));
                    } else {
                        assert!(!req.reverse && req.skip == 0, "the machine asks ascending ranges");
                        self.inbox.push_back(Pending::Headers(
                            peer,
                            id,
                            Ok(p.headers(req.start, req.limit)),
                        ));
                    }
                }
                Action::GetBodies { peer, id, hashes } => {
                    *self.requests.entry(peer).or_default() += 1;
                    self.sent(peer);
                    let Some(p) = self.peers.get(&peer) else {
                        self.inbox.push_back(Pending::Bodies(peer, id, Err(Failure::Gone)));
                        continue;
                    };
                    if p.behavior == Behavior::Silent {
                        self.timeouts.push((
                            self.now + TIMEOUT,
                            Pending::Bodies(peer, id, Err(Failure::Timeout)),
                        ));
                    } else {
                        self.inbox.push_back(Pending::Bodies(peer, id, Ok(p.bodies(&hashes))));
                    }
                }
                Action::Penalize { peer, penalty } => {
                    if self.reputation.penalize(peer, penalty, self.now)
                        && !self.banned.contains(&peer)
                    {
                        self.banned.push(peer);
                        self.peers.remove(&peer);
                        self.machine.peer_disconnected(peer, self.now);
                    }
                }
                Action::Commit { blocks } => {
                    for b in blocks.into_iter().map(|b| b.block.block) {
                        let parent = self.store.last().map_or(self.spec.genesis_hash, |p| p.hash);
                        assert_eq!(b.block.header.parent_hash, parent, "commit extends the head");
                        self.store.push(b);
                    }
                }
                Action::Reorg { ancestor, blocks } => {
                    self.reorgs += 1;
                    self.store.truncate(ancestor as usize);
                    self.store.extend(blocks.into_iter().map(|b| b.block.block));
                }
            }
        }
    }

    /// Runs until `done` or `max_steps` deliveries; panics if not done.
    fn run(&mut self, max_steps: usize, done: impl Fn(&Self) -> bool) {
        if !self.steps(max_steps, done) {
            panic!(
                "did not finish: head {} of {:?}",
                self.head(),
                self.peers.values().map(|p| p.chain.len()).max()
            );
        }
    }

    /// Runs up to `max_steps`; whether `done` became true.
    fn steps(&mut self, max_steps: usize, done: impl Fn(&Self) -> bool) -> bool {
        for _ in 0..max_steps {
            self.apply();
            if done(self) {
                return true;
            }
            if let Some(p) = self.inbox.pop_front() {
                // Each answer takes a moment (a peer answering at once, forever, still
                // lets time pass), and the driver's 100 ms tick goes on meanwhile.
                self.now += Duration::from_millis(1);
                self.deliver(p);
                self.busy_ms += 1;
                if self.busy_ms.is_multiple_of(100) {
                    self.machine.tick(self.now);
                }
                continue;
            }
            // Nothing to deliver: time passes, timeouts fire (the network penalizes them).
            self.now += Duration::from_millis(250);
            let (due, later): (Vec<_>, Vec<_>) =
                std::mem::take(&mut self.timeouts).into_iter().partition(|(t, _)| *t <= self.now);
            self.timeouts = later;
            for (_, p) in due {
                let peer = match &p {
                    Pending::Headers(peer, ..) | Pending::Bodies(peer, ..) => *peer,
                };
                if self.reputation.penalize(peer, Penalty::Timeout, self.now)
                    && !self.banned.contains(&peer)
                {
                    self.banned.push(peer);
                    self.peers.remove(&peer);
                    self.machine.peer_disconnected(peer, self.now);
                }
                self.deliver(p);
            }
            self.machine.tick(self.now);
        }
        false
    }

    fn sent(&mut self, peer: PeerId) {
        let n = self.outstanding.entry(peer).or_default();
        *n += 1;
        let max = self.max_outstanding.entry(peer).or_default();
        *max = (*max).max(*n);
    }

    fn deliver(&mut self, p: Pending) {
        let peer = match &p {
            Pending::Headers(peer, ..) | Pending::Bodies(peer, ..) => *peer,
        };
        if let Some(n) = self.outstanding.get_mut(&peer) {
            *n = n.saturating_sub(1);
        }
        match p {
            Pending::Headers(peer, id, r) => self.machine.on_headers(peer, id, r, self.now),
            Pending::Bodies(peer, id, r) => self.machine.on_bodies(peer, id, r, self.now),
        }
    }
}

/// The machine's view of a store holding `store` after the genesis: headers with their
/// total difficulty.
fn recent_of(spec: &ChainSpec, store: &[SealedBlock]) -> Vec<(Header, U256)> {
    let mut td = spec.genesis_header.difficulty;
    let mut recent = vec![(spec.genesis_header.clone(), td)];
    for b in store {
        td += b.block.header.difficulty;
        recent.push((b.block.header.clone(), td));
    }
    recent
}

fn dev_key() -> SecretKey {
    SecretKey::from_byte_array(hex::decode(DEV_VALIDATOR_KEY).unwrap().try_into().unwrap()).unwrap()
}

/// `n` dev-chain blocks with `txs` transfers each.
fn dev_chain(spec: &ChainSpec, n: usize, txs: usize) -> Arc<Vec<Block<TxEnvelope>>> {
    let sender = SecretKey::from_byte_array([5u8; 32]).unwrap();
    let genesis = (spec.genesis_hash, &spec.genesis_header);
    Arc::new(generate_chain(spec, &[dev_key()], genesis, n, txs, (&sender, 0)))
}

#[test]
fn ten_thousand_blocks_from_three_peers_with_two_liars_and_a_silent_one() {
    let spec = ChainSpec::dev();
    let chain = dev_chain(&spec, 10_000, 1);
    let mut sim = Sim::new(spec.clone(), vec![]);
    let honest = sim.connect(1, chain.clone(), Behavior::Honest, true);
    // (A bad-seal peer on eth/68 would be caught by the header of its Status hash already.)
    let bad_seal = sim.connect(2, chain.clone(), Behavior::BadSealFrom(2000), true);
    let wrong_body = sim.connect(3, chain.clone(), Behavior::WrongBodies, false);
    let silent = sim.connect(4, chain.clone(), Behavior::Silent, true);
    sim.run(1_000_000, |s| s.head() == 10_000);
    // Every stored block is the honest one.
    for (i, b) in sim.store.iter().enumerate() {
        assert_eq!(b.block, chain[i], "block {}", i + 1);
    }
    assert!(sim.banned.contains(&bad_seal), "the bad-seal peer is banned");
    assert!(sim.banned.contains(&wrong_body), "the wrong-body peer is banned");
    assert!(!sim.banned.contains(&honest));
    let _ = silent;
}

/// Two signers (keys 1 and 2), period 2.
fn two_signer_spec() -> (ChainSpec, [SecretKey; 2]) {
    let keys = [
        SecretKey::from_byte_array([1u8; 32]).unwrap(),
        SecretKey::from_byte_array([2u8; 32]).unwrap(),
    ];
    let addrs: Vec<Address> = keys.iter().map(address_of).collect();
    (ChainSpec::clique_dev(&addrs), keys)
}

/// `n` blocks from genesis, all in turn (`in_turn`) or all out of turn.
fn alternating(
    spec: &ChainSpec,
    keys: &[SecretKey; 2],
    n: u64,
    in_turn: bool,
) -> Vec<Block<TxEnvelope>> {
    let sealers: Vec<Sealer> = keys.iter().map(|k| Sealer::new(*k)).collect();
    let tern_chainspec::Consensus::Clique { signers, epoch, .. } = &spec.consensus else {
        panic!()
    };
    let mut snap = Snapshot::new(signers.clone(), *epoch);
    let mut parent = spec.genesis_header.clone();
    let mut parent_hash = spec.genesis_hash;
    let mut out = vec![];
    for number in 1..=n {
        let sealer = sealers.iter().find(|s| snap.in_turn(number, s.address()) == in_turn).unwrap();
        let block = sealer.build(spec, &snap, &parent, parent_hash, parent.timestamp + 2);
        snap.verify(&block.header).unwrap();
        parent_hash = block.header.hash_slow();
        parent = block.header.clone();
        out.push(block);
    }
    out
}

#[test]
fn a_heavier_fork_causes_exactly_one_reorg() {
    let (spec, keys) = two_signer_spec();
    let ours = alternating(&spec, &keys, 10, false); // td 1 + 10
    let theirs = Arc::new(alternating(&spec, &keys, 12, true)); // td 1 + 24
    let mut sim = Sim::new(spec.clone(), ours);
    sim.connect(1, theirs.clone(), Behavior::Honest, true);
    sim.run(10_000, |s| {
        s.head() == 12 && s.store.last().unwrap().hash == theirs[11].header.hash_slow()
    });
    assert_eq!(sim.reorgs, 1);
    for (i, b) in sim.store.iter().enumerate() {
        assert_eq!(b.block, theirs[i]);
    }
    // Nothing more happens afterwards: polling finds nothing new, no second reorg.
    sim.steps(200, |_| false);
    assert_eq!(sim.reorgs, 1);
    assert_eq!(sim.head(), 12);
}

#[test]
fn a_longer_but_invalid_branch_does_not_move_our_head() {
    let (spec, keys) = two_signer_spec();
    let ours = alternating(&spec, &keys, 10, false);
    let our_head = ours[9].header.hash_slow();
    let theirs = Arc::new(alternating(&spec, &keys, 15, true));
    let mut sim = Sim::new(spec.clone(), ours);
    let liar = sim.connect(1, theirs, Behavior::BadSealFrom(5), true);
    sim.run(10_000, |s| s.banned.contains(&liar));
    assert_eq!(sim.reorgs, 0);
    assert_eq!(sim.store.last().unwrap().hash, our_head);
    assert_eq!(sim.head(), 10);
}

#[test]
fn a_fork_deeper_than_the_reorg_depth_is_given_up_until_its_peer_moves() {
    let (spec, keys) = two_signer_spec();
    let ours = alternating(&spec, &keys, 40, false);
    let our_head = ours[39].header.hash_slow();
    let longer = alternating(&spec, &keys, 46, true);
    let theirs = Arc::new(longer[..45].to_vec());
    let cfg = SyncConfig {
        poll_interval: Duration::from_millis(500),
        max_reorg_depth: 16,
        ..SyncConfig::default()
    };
    let mut sim = Sim::with_config(spec.clone(), ours, cfg);
    let peer = sim.connect(1, theirs, Behavior::Honest, true);
    // The branch forks at genesis, 40 blocks down: one range, one ancestor search, then
    // nothing but polls, however long we wait, even while rounds with another peer come
    // and go.
    sim.steps(200, |_| false);
    assert_eq!(sim.store.last().unwrap().hash, our_head);
    let ahead = Arc::new(alternating(&spec, &keys, 43, false));
    sim.connect(2, ahead.clone(), Behavior::Honest, true);
    sim.steps(2_000, |_| false);
    assert_eq!(sim.ranges.get(&peer), Some(&1), "one ancestor search: {:?}", sim.ranges);
    assert!(sim.requests[&peer] > 50, "polling goes on");
    assert_eq!(sim.store.last().unwrap().hash, ahead[42].header.hash_slow());
    assert!(sim.banned.is_empty(), "another chain is not misbehaviour");
    // A new head from that peer is worth one more look.
    sim.serve(peer, Arc::new(longer.clone()));
    sim.machine.announced(peer, 46, longer[45].header.hash_slow(), sim.now);
    sim.steps(2_000, |_| false);
    assert_eq!(sim.ranges.get(&peer), Some(&2), "{:?}", sim.ranges);
    assert_eq!(sim.head(), 43);
}

#[test]
fn a_probe_answered_with_another_header_is_penalised() {
    let spec = ChainSpec::dev();
    let chain = dev_chain(&spec, 20, 0);
    let mut sim = Sim::new(spec, vec![]);
    // eth/68: its head number is learned from the header of the hash in its Status.
    let liar = sim.connect(1, chain.clone(), Behavior::OffByOne, false);
    // Its Status names block 10 as its best: the header it returns for that hash is 11's.
    sim.machine.peer_connected(liar, chain[9].header.hash_slow(), None, sim.now);
    sim.run(50, |s| s.reputation.clone().score(liar, s.now) <= -Penalty::BadBlock.points());
    assert_eq!(sim.head(), 0, "nothing learned from the wrong header");
    // The same question answered honestly: the head is learned and synced.
    let honest = sim.connect(2, chain, Behavior::Honest, false);
    sim.run(10_000, |s| s.head() == 20);
    assert_eq!(sim.reputation.score(honest, sim.now), 0);
}

/// A peer whose chain is ours up to our head plus a block that does not link to it: what
/// is verified is stored anyway, the peer is banned for the broken branch, and following
/// the honest peer goes on.
#[test]
fn a_head_that_does_not_link_holds_nothing_back() {
    let spec = ChainSpec::dev();
    let honest = dev_chain(&spec, 105, 1);
    let other = generate_chain(
        &spec,
        &[dev_key()],
        (spec.genesis_hash, &spec.genesis_header),
        101,
        1,
        (&SecretKey::from_byte_array([6u8; 32]).unwrap(), 0),
    );
    let mut liar_chain = honest[..100].to_vec();
    liar_chain.push(other[100].clone()); // block 101, whose parent is not honest block 100
    let mut sim = Sim::new(spec, vec![]);
    let peer = sim.connect(1, Arc::new(honest[..100].to_vec()), Behavior::Honest, true);
    let liar = sim.connect(2, Arc::new(liar_chain), Behavior::Honest, true);
    sim.run(10_000, |s| s.head() == 100 && s.banned.contains(&liar));
    assert!(!sim.banned.contains(&peer));
    // Following goes on.
    sim.serve(peer, honest.clone());
    sim.machine.announced(peer, 105, honest[104].header.hash_slow(), sim.now);
    sim.run(10_000, |s| s.head() == 105);
    assert_eq!(sim.store.last().unwrap().hash, honest[104].header.hash_slow());
}

#[test]
fn follows_announcements_and_polls_when_nothing_is_announced() {
    let spec = ChainSpec::dev();
    let sender = SecretKey::from_byte_array([5u8; 32]).unwrap();
    let chain = generate_chain(
        &spec,
        &[dev_key()],
        (spec.genesis_hash, &spec.genesis_header),
        30,
        0,
        (&sender, 0),
    );
    let mut sim = Sim::new(spec.clone(), vec![]);
    // The peer starts with 10 blocks and grows; it announces block 20 but not 30.
    let peer = sim.connect(1, Arc::new(chain[..10].to_vec()), Behavior::Honest, true);
    sim.run(1000, |s| s.head() == 10);
    sim.serve(peer, Arc::new(chain[..20].to_vec()));
    sim.machine.announced(peer, 20, chain[19].header.hash_slow(), sim.now);
    sim.run(1000, |s| s.head() == 20);
    sim.serve(peer, Arc::new(chain.clone()));
    sim.run(1000, |s| s.head() == 30); // found by polling
    assert_eq!(sim.store.last().unwrap().hash, chain[29].header.hash_slow());
    let _ = U256::ZERO;
}

#[test]
fn bodies_stay_within_the_gas_budget_and_sync_completes() {
    let spec = ChainSpec::dev();
    let sender = SecretKey::from_byte_array([6u8; 32]).unwrap();
    let chain = Arc::new(generate_chain(
        &spec,
        &[dev_key()],
        (spec.genesis_hash, &spec.genesis_header),
        600,
        5,
        (&sender, 0),
    ));
    let mut sim = Sim::new(spec.clone(), vec![]);
    // A budget of ~40 blocks' gas: bodies must flow in small windows.
    let cfg =
        SyncConfig { body_gas_budget: 40 * 5 * 21_000, body_batch: 16, ..SyncConfig::default() };
    sim.machine = SyncMachine::new(spec.clone(), cfg, recent_of(&spec, &[]), WallClock::system());
    sim.connect(1, chain.clone(), Behavior::Honest, true);
    sim.connect(2, chain.clone(), Behavior::Honest, true);
    sim.run(100_000, |s| s.head() == 600);
    assert_eq!(sim.store.last().unwrap().block, chain[599]);
}

/// Two validators sealed block 1 at once; the in-turn one (difficulty 2) is announced to a
/// node holding the out-of-turn one (difficulty 1) at the same height: it switches.
#[test]
fn a_heavier_block_at_our_own_height_wins() {
    let (spec, keys) = two_signer_spec();
    let ours = alternating(&spec, &keys, 1, false);
    let theirs = Arc::new(alternating(&spec, &keys, 1, true));
    let mut sim = Sim::new(spec.clone(), ours.clone());
    // An eth/68 peer says only its head hash: nothing to compare until it announces.
    let peer = sim.connect(1, theirs.clone(), Behavior::Honest, false);
    sim.steps(50, |_| false);
    assert_eq!(sim.reorgs, 0, "no round before the peer's head is known at our height");
    let hash = theirs[0].header.hash_slow();
    sim.machine.announced(peer, 1, hash, sim.now);
    sim.run(1000, |s| s.reorgs == 1);
    assert_eq!(sim.store.last().unwrap().hash, hash);
    // Announcing our own (lighter) block back changes nothing.
    sim.machine.announced(peer, 1, ours[0].header.hash_slow(), sim.now);
    sim.steps(200, |_| false);
    assert_eq!((sim.reorgs, sim.store.last().unwrap().hash), (1, hash));
}

/// Validators that each sealed block 1 before they met never announce it to each other
/// (they announced it to nobody): the heavier block 1 in a new peer's eth/69 Status is
/// enough to switch. Before, each kept its own, none could seal block 2 (each had signed
/// block 1), and a three-validator devnet stalled at height 1.
#[test]
fn a_heavier_sibling_in_a_new_peers_status_wins() {
    let (spec, keys) = two_signer_spec();
    let ours = alternating(&spec, &keys, 1, false);
    let theirs = Arc::new(alternating(&spec, &keys, 1, true));
    let mut sim = Sim::new(spec.clone(), ours.clone());
    sim.connect(1, theirs.clone(), Behavior::Honest, true);
    sim.run(1000, |s| s.reorgs == 1);
    assert_eq!(sim.store.last().unwrap().hash, theirs[0].header.hash_slow());
    // The lighter side keeps the heavier block when the peer meets it.
    let mut heavy = Sim::new(spec.clone(), (*theirs).clone());
    heavy.connect(1, Arc::new(ours), Behavior::Honest, true);
    heavy.steps(300, |_| false);
    assert_eq!((heavy.reorgs, heavy.store.last().unwrap().hash), (0, theirs[0].header.hash_slow()));
}

/// A Clique chain whose last blocks are ahead of our clock: every block before the first
/// one from the future is stored at once (before, nothing was: the future range was asked
/// again and again and held back every commit), the peer is not penalised, and the rest
/// follows as the clock reaches it.
#[test]
fn headers_from_the_future_hold_back_nothing_before_them() {
    let spec = ChainSpec::dev();
    let chain = dev_chain(&spec, 700, 0);
    let mut sim = Sim::new(spec.clone(), vec![]);
    // Our clock reads block 600's time: blocks more than 15 s later are from the future.
    let clock = WallClock { at: sim.now, unix: chain[599].header.timestamp };
    let recent = recent_of(&spec, &[]);
    let cfg = SyncConfig { poll_interval: Duration::from_millis(500), ..SyncConfig::default() };
    sim.machine = SyncMachine::new(spec.clone(), cfg, recent, clock);
    let valid = chain
        .iter()
        .take_while(|b| b.header.timestamp <= clock.unix + tern_consensus::MAX_FUTURE_SECS)
        .count() as u64;
    assert!(valid > 600 && valid < 700);
    let peer = sim.connect(1, chain.clone(), Behavior::Honest, true);
    let start = sim.now;
    sim.run(10_000, |s| s.head() == valid);
    assert!(sim.now - start < Duration::from_secs(1), "stored without waiting for the future");
    assert!(sim.machine.stall_reason().unwrap().contains("ahead of our clock"));
    let requests = sim.requests[&peer];
    // Time passes: the future arrives, a few requests per second of it.
    sim.run(100_000, |s| s.head() == 700);
    let waited = (sim.now - start).as_secs();
    assert!(sim.requests[&peer] - requests <= 4 * (waited as usize + 2), "retries are paced");
    assert_eq!(sim.reputation.score(peer, sim.now), 0, "a clock difference is not misbehaviour");
    assert_eq!(sim.store.last().unwrap().block, chain[699]);
}

/// At the tip, one poll fetches everything new (a range, not the next block), and a chain
/// growing a block a second is followed within two blocks.
#[test]
fn polling_follows_a_fast_chain_within_two_blocks() {
    let spec = ChainSpec::dev();
    let chain = dev_chain(&spec, 80, 0);
    let cfg = SyncConfig { poll_interval: Duration::from_secs(1), ..SyncConfig::default() };
    let mut sim = Sim::with_config(spec.clone(), vec![], cfg);
    let grow =
        |sim: &mut Sim, peer: PeerId, n: usize| sim.serve(peer, Arc::new(chain[..n].to_vec()));
    let peer = sim.connect(1, Arc::new(chain[..10].to_vec()), Behavior::Honest, true);
    sim.run(1000, |s| s.head() == 10);
    // 40 new blocks, announced by nobody: found by one poll, fetched in that one request.
    grow(&mut sim, peer, 50);
    let before = sim.requests[&peer];
    sim.run(1000, |s| s.head() == 50);
    assert_eq!(sim.requests[&peer] - before, 1, "one range request fetched all 40");
    // One block a second for 30 s: the gap never exceeds two blocks.
    let mut n = 50;
    let mut next_block = sim.now + Duration::from_secs(1);
    let end = sim.now + Duration::from_secs(30);
    while sim.now < end {
        if sim.now >= next_block {
            n += 1;
            grow(&mut sim, peer, n);
            next_block += Duration::from_secs(1);
        }
        sim.steps(1, |_| false);
        assert!(n as u64 - sim.head() <= 2, "gap {} at block {n}", n as u64 - sim.head());
    }
    assert!(n >= 78, "the chain grew ({n})");
}

/// A fast peer gets more requests in flight while the verifier waits for it.
#[test]
fn a_single_fast_peer_gets_more_requests_in_flight() {
    let spec = ChainSpec::dev();
    let chain = dev_chain(&spec, 20_000, 0);
    let mut sim = Sim::new(spec.clone(), vec![]);
    let peer = sim.connect(1, chain.clone(), Behavior::Honest, true);
    sim.run(1_000_000, |s| s.head() == 20_000);
    let most = sim.max_outstanding[&peer];
    assert!(most > 2, "started at 2 in flight, grew to {most}");
    assert!(most <= tern_network::MAX_INFLIGHT_PER_PEER, "never past the network's cap: {most}");
}

/// When our own validator moves the head, what sync knows of its peers stays: a peer
/// whose fork we gave up on is not searched again.
#[test]
fn a_local_head_change_keeps_what_we_know_of_peers() {
    let (spec, keys) = two_signer_spec();
    let ours = alternating(&spec, &keys, 41, false);
    let theirs = Arc::new(alternating(&spec, &keys, 46, true)[..45].to_vec());
    let cfg = SyncConfig {
        poll_interval: Duration::from_millis(500),
        max_reorg_depth: 16,
        ..SyncConfig::default()
    };
    let mut sim = Sim::with_config(spec.clone(), ours[..40].to_vec(), cfg);
    let peer = sim.connect(1, theirs, Behavior::Honest, true);
    sim.steps(200, |_| false);
    assert_eq!(sim.ranges.get(&peer), Some(&1), "one ancestor search, then given up");
    // The local validator seals block 41: the store moved under the machine.
    sim.store.push(SealedBlock::seal(ours[40].clone()));
    sim.machine.reset_head(recent_of(&spec, &sim.store), sim.now);
    assert_eq!(sim.machine.head().0, 41);
    sim.steps(400, |_| false);
    assert_eq!(sim.ranges.get(&peer), Some(&1), "the given-up fork is not searched again");
    assert_eq!(sim.head(), 41);
}

/// Signers 1 and 2 vote signer 3 in (blocks 10–12), then signers vote signer 1 out
/// (blocks 100–105); checkpoints every 50 blocks. Returns the spec, the keys and the
/// 300 blocks with the signer state after the last.
fn voting_chain() -> (ChainSpec, [SecretKey; 3], Vec<Block<TxEnvelope>>, Snapshot) {
    let (mut spec, two) = two_signer_spec();
    let keys = [two[0], two[1], SecretKey::from_byte_array([3u8; 32]).unwrap()];
    let tern_chainspec::Consensus::Clique { signers, epoch, .. } = &mut spec.consensus else {
        panic!()
    };
    *epoch = 50;
    let snap = Snapshot::new(signers.clone(), 50);
    let (add, remove) = (address_of(&keys[2]), address_of(&keys[0]));
    let votes = |n: u64, _: &Snapshot| match n {
        10..=12 => Some((add, true)),
        100..=105 => Some((remove, false)),
        _ => None,
    };
    let sender = SecretKey::from_byte_array([5u8; 32]).unwrap();
    let genesis = (spec.genesis_hash, &spec.genesis_header);
    let (blocks, after) = tern_consensus::chain_gen::generate_voting_chain(
        &spec,
        &keys,
        genesis,
        snap,
        300,
        0,
        (&sender, 0),
        votes,
    );
    (spec, keys, blocks, after)
}

#[test]
fn a_chain_whose_signers_vote_one_in_and_one_out_syncs() {
    let (spec, keys, blocks, after) = voting_chain();
    let mut want = vec![address_of(&keys[1]), address_of(&keys[2])];
    want.sort();
    assert_eq!(after.signers(), want.as_slice(), "the generator's votes passed");
    // The voted-in signer sealed blocks, the voted-out one none after its removal.
    let sealers: Vec<Address> = blocks.iter().map(|b| recover_signer(&b.header).unwrap()).collect();
    assert!(sealers[13..100].contains(&address_of(&keys[2])));
    assert!(!sealers[110..].contains(&address_of(&keys[0])));
    // A short reorg depth: the oldest kept block (whose snapshot the machine holds) moves
    // across both votes and several checkpoints while syncing.
    let cfg = SyncConfig {
        poll_interval: Duration::from_millis(500),
        max_reorg_depth: 16,
        header_batch: 16,
        ..SyncConfig::default()
    };
    let chain = Arc::new(blocks);
    let mut sim = Sim::with_config(spec.clone(), vec![], cfg.clone());
    let peer = sim.connect(1, chain.clone(), Behavior::Honest, true);
    sim.run(200_000, |s| s.head() == 300);
    assert!(!sim.banned.contains(&peer));
    for (i, b) in sim.store.iter().enumerate() {
        assert_eq!(b.block, chain[i], "block {}", i + 1);
    }
    // Restarted mid-chain with the snapshot of its oldest kept block, it goes on.
    let ours: Vec<Block<TxEnvelope>> = chain[..200].to_vec();
    let recent: Vec<(Header, U256)> =
        recent_of(&spec, &ours.iter().cloned().map(SealedBlock::seal).collect::<Vec<_>>())
            .split_off(200 - 16);
    let front = recent[0].0.number;
    let tern_chainspec::Consensus::Clique { signers, .. } = &spec.consensus else { panic!() };
    let mut snap = Snapshot::new(signers.clone(), 50);
    for b in &chain[..front as usize] {
        snap.verify(&b.header).unwrap();
    }
    let mut sim = Sim::with_config(spec.clone(), ours, cfg.clone());
    sim.machine = SyncMachine::new(
        spec.clone(),
        cfg,
        tern_sync::RecentChain { headers: recent, clique: Some(snap) },
        WallClock::system(),
    );
    sim.connect(1, chain.clone(), Behavior::Honest, true);
    sim.run(200_000, |s| s.head() == 300);
    assert_eq!(sim.store.last().unwrap().block, chain[299]);
}

#[test]
fn a_checkpoint_listing_the_old_signers_is_refused() {
    let (spec, keys, mut blocks, _) = voting_chain();
    // Block 150 is a checkpoint after both votes: it lists the genesis signers instead,
    // re-sealed by its own signer, so only the list is wrong.
    let tern_chainspec::Consensus::Clique { signers, .. } = &spec.consensus else { panic!() };
    let mut extra = vec![0u8; EXTRA_VANITY];
    signers.iter().for_each(|a| extra.extend_from_slice(a.as_slice()));
    extra.extend_from_slice(&[0u8; EXTRA_SEAL]);
    blocks.truncate(150);
    let h = &mut blocks[149].header;
    let by = keys.iter().find(|k| recover_signer(h).ok() == Some(address_of(k))).unwrap();
    h.extra_data = extra.into();
    seal_header(h, by).unwrap();
    let mut sim = Sim::new(spec.clone(), vec![]);
    let peer = sim.connect(1, Arc::new(blocks.clone()), Behavior::Honest, true);
    sim.run(200_000, |s| s.head() == 149 && s.banned.contains(&peer));
    assert!(sim.steps(2_000, |s| s.head() == 149), "nothing past the bad checkpoint");
    assert_eq!(sim.store.last().unwrap().block, blocks[148]);
}

/// The flood-test stall (3 validators, 2 fullnodes, 1,000-transaction blocks): a peer
/// announced its out-of-turn block 32 on our 31 and we verified its header; the peer then
/// reorganised to the network's 32' (also on our 31) and no longer served the orphan's
/// body. Every peer's range from 33 on failed to link with the orphan, so each was set
/// aside for the round, while a peer as far as we are kept the round open: the node stayed
/// at 31 for good ("no usable peer serves block 33"), and so did the others. Now a round
/// that no usable peer can serve starts over from our head, asking the set-aside peer
/// with the highest head first; and a peer that answers a body request with nothing is
/// asked after the others (before, the same peer was asked for the orphan forever).
#[test]
fn a_round_whose_remaining_peers_all_stopped_linking_starts_over() {
    let (spec, keys) = two_signer_spec();
    // Blocks with a transaction each: their bodies must be fetched.
    let sender = SecretKey::from_byte_array([5u8; 32]).unwrap();
    let genesis = (spec.genesis_hash, &spec.genesis_header);
    let ours = generate_chain(&spec, &keys, genesis, 31, 1, (&sender, 0));
    let tip = (ours[30].header.hash_slow(), &ours[30].header);
    let on_ours =
        |n, txs| [ours.clone(), generate_chain(&spec, &keys, tip, n, txs, (&sender, 31))].concat();
    let orphan = Arc::new(on_ours(1, 2)); // 32, later abandoned
    let good = Arc::new(on_ours(29, 1)); // 32'..60 on our 31
    let mut sim = Sim::new(spec.clone(), ours.clone());
    // A peer as far as we are (the other stuck nodes in the flood test): usable, but it
    // cannot serve anything past 31, and it kept the round open.
    sim.connect(1, Arc::new(ours), Behavior::Honest, true);
    // (It serves no bodies: the orphan's is gone for good; the good chain's come from the
    // other peer.)
    let turncoat = sim.connect(2, orphan.clone(), Behavior::NoBodies, true);
    // Its header 32 is on the way; then it moves to the good chain (and loses the orphan).
    sim.run(1000, |s| s.requests.get(&turncoat).is_some_and(|n| *n >= 1));
    sim.serve(turncoat, good.clone());
    sim.machine.announced(turncoat, 60, good[59].header.hash_slow(), sim.now);
    sim.steps(200, |_| false);
    sim.connect(3, good.clone(), Behavior::Honest, true);
    sim.run(100_000, |s| s.store.last().unwrap().block == good[59]);
}

/// A fork branch whose only usable peer answers every body request with nothing (it lost
/// the blocks): the round would wait forever. After [`tern_sync::ROUND_STALL`] without
/// progress it starts over, and the branch comes from the other peer.
#[test]
fn a_round_without_progress_starts_over_after_a_minute() {
    let (spec, keys) = two_signer_spec();
    let sender = SecretKey::from_byte_array([5u8; 32]).unwrap();
    let genesis = (spec.genesis_hash, &spec.genesis_header);
    let ours = generate_chain(&spec, &keys, genesis, 10, 1, (&sender, 0));
    let fork = (ours[4].header.hash_slow(), &ours[4].header);
    let theirs =
        Arc::new([&ours[..5], &generate_chain(&spec, &keys, fork, 15, 2, (&sender, 5))].concat());
    let mut sim = Sim::new(spec.clone(), ours);
    sim.connect(1, theirs.clone(), Behavior::NoBodies, true);
    sim.connect(2, theirs.clone(), Behavior::Honest, true);
    let start = sim.now;
    sim.run(1_000_000, |s| s.store.last().unwrap().block == theirs[19]);
    assert!(sim.now - start >= tern_sync::ROUND_STALL, "recovered by the backstop");
}
