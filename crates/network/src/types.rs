//! What the network tells and is asked.

use alloy_consensus::{BlockBody, Header, TxEnvelope};
use alloy_primitives::B256;
use std::{net::SocketAddr, time::Duration};
use tern_eth_wire::{
    BlockHashNumber, BlockRangeUpdate, EthVersion, GetBlockHeaders, NewBlock, PooledTransaction,
    Receipts68, Receipts69, Status,
};
use tern_p2p::{Enode, PeerId, SecretKey};

/// A request to a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerRequest {
    /// GetBlockHeaders.
    GetBlockHeaders(GetBlockHeaders),
    /// GetBlockBodies.
    GetBlockBodies(Vec<B256>),
    /// GetReceipts (on eth/70, from the first receipt of the first block).
    GetReceipts(Vec<B256>),
    /// GetReceipts on eth/70 from receipt `first_index` of the first block (EIP-7975);
    /// refused for peers of older versions.
    GetReceiptsPage {
        /// Receipts of the first block to skip.
        first_index: u64,
        /// Block hashes.
        hashes: Vec<B256>,
    },
    /// GetPooledTransactions.
    GetPooledTransactions(Vec<B256>),
}

/// Which request a message is (or answers): requests and responses are paired by this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// GetBlockHeaders / BlockHeaders.
    Headers,
    /// GetBlockBodies / BlockBodies.
    Bodies,
    /// GetReceipts / Receipts.
    Receipts,
    /// GetPooledTransactions / PooledTransactions.
    PooledTransactions,
}

impl RequestKind {
    /// The request's message name, for logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Headers => "GetBlockHeaders",
            Self::Bodies => "GetBlockBodies",
            Self::Receipts => "GetReceipts",
            Self::PooledTransactions => "GetPooledTransactions",
        }
    }
}

impl PeerRequest {
    /// What kind of request this is.
    pub fn kind(&self) -> RequestKind {
        match self {
            Self::GetBlockHeaders(_) => RequestKind::Headers,
            Self::GetBlockBodies(_) => RequestKind::Bodies,
            Self::GetReceipts(_) | Self::GetReceiptsPage { .. } => RequestKind::Receipts,
            Self::GetPooledTransactions(_) => RequestKind::PooledTransactions,
        }
    }

    /// The request's name, for logs.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }
}

impl PeerResponse {
    /// The kind of request this answers.
    pub fn kind(&self) -> RequestKind {
        match self {
            Self::BlockHeaders(_) => RequestKind::Headers,
            Self::BlockBodies(_) => RequestKind::Bodies,
            Self::Receipts68(_) | Self::Receipts69(_) | Self::Receipts70 { .. } => {
                RequestKind::Receipts
            }
            Self::PooledTransactions(_) => RequestKind::PooledTransactions,
        }
    }
}

/// A peer's response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerResponse {
    /// BlockHeaders.
    BlockHeaders(Vec<Header>),
    /// BlockBodies.
    BlockBodies(Vec<BlockBody<TxEnvelope>>),
    /// Receipts on eth/68.
    Receipts68(Receipts68),
    /// Receipts on eth/69.
    Receipts69(Receipts69),
    /// Receipts on eth/70.
    Receipts70 {
        /// Whether the last block's list is a prefix of its receipts.
        last_block_incomplete: bool,
        /// Per block, its receipts.
        receipts: Receipts69,
    },
    /// PooledTransactions.
    PooledTransactions(Vec<PooledTransaction>),
}

/// Why a request got no usable response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No response within the peer's timeout.
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
    /// The peer disconnected before answering.
    #[error("peer disconnected")]
    Disconnected,
    /// No session with that peer.
    #[error("not connected to that peer")]
    UnknownPeer,
    /// The peer already has the maximum of requests in flight.
    #[error("too many requests in flight to that peer")]
    TooManyInflight,
    /// A response of another type than the request's.
    #[error("bad response: {0}")]
    BadResponse(&'static str),
    /// The network is shutting down.
    #[error("network stopped")]
    Stopped,
    /// The peer's eth version has no such request.
    #[error("the peer's eth version does not have {0}")]
    Unsupported(&'static str),
}

/// Who opened the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Direction {
    /// They dialed us.
    Inbound,
    /// We dialed them.
    Outbound,
}

/// A connected peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Node id.
    pub id: PeerId,
    /// Hello client id.
    pub client_id: String,
    /// Negotiated eth version.
    pub version: EthVersion,
    /// Its Status.
    pub status: Status,
    /// Who dialed.
    pub direction: Direction,
    /// Socket address.
    pub addr: SocketAddr,
    /// Reputation at the time of the query.
    pub reputation: i32,
    /// Trusted (never banned).
    pub trusted: bool,
    /// How we came to know it.
    pub source: PeerSource,
}

/// How we came to know a peer (`admin_peers` shows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerSource {
    /// It dialed us.
    Inbound,
    /// A `--bootnodes` entry.
    Bootnode,
    /// A `--trusted-peers` entry.
    Trusted,
    /// Saved in `known-peers.json` by an earlier run.
    Saved,
    /// Found by node discovery.
    Discovery,
}

impl PeerSource {
    /// Its name, as `admin_peers` shows it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Bootnode => "bootnode",
            Self::Trusted => "trusted",
            Self::Saved => "saved",
            Self::Discovery => "discovery",
        }
    }
}

/// A peer's standing with us, connected or not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerStanding {
    /// Reputation now (0 by default, banned at the threshold).
    pub reputation: i32,
    /// Whether it is banned now.
    pub banned: bool,
    /// Whether a session with it is open.
    pub connected: bool,
    /// The penalties it received since we met it in this run.
    pub penalties: crate::PenaltyCounts,
}

/// What happens on the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkEvent {
    /// A session completed the Status exchange.
    PeerConnected(Box<PeerInfo>),
    /// A session ended.
    PeerDisconnected {
        /// The peer.
        id: PeerId,
        /// Why, for logs.
        reason: String,
    },
    /// A peer announced blocks by hash.
    NewBlockHashes {
        /// The peer.
        peer: PeerId,
        /// Announced blocks.
        blocks: Vec<BlockHashNumber>,
    },
    /// A peer announced a whole block.
    NewBlock {
        /// The peer.
        peer: PeerId,
        /// The block and its total difficulty.
        block: Box<NewBlock>,
    },
    /// A peer sent whole transactions (`Transactions`). Delivered only to
    /// [`crate::NetworkHandle::subscribe_transactions`] subscribers.
    Transactions {
        /// The peer.
        peer: PeerId,
        /// The transactions (no blob transaction: those are refused in the session).
        txs: Vec<TxEnvelope>,
    },
    /// A peer announced transactions by hash (`NewPooledTransactionHashes`, lists of equal
    /// length). Delivered only to transaction subscribers.
    TransactionHashes {
        /// The peer.
        peer: PeerId,
        /// Hash, type and size of each.
        announced: Vec<crate::GossipTx>,
    },
    /// An eth/69 peer's available range changed.
    BlockRange {
        /// The peer.
        peer: PeerId,
        /// The new range.
        range: BlockRangeUpdate,
    },
}

/// How to run the network.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// Our node key.
    pub secret_key: SecretKey,
    /// Where to listen (port 0 picks one).
    pub listen_addr: SocketAddr,
    /// Peers to dial and redial.
    pub bootnodes: Vec<Enode>,
    /// Peers to dial and redial that are never banned.
    pub trusted_peers: Vec<Enode>,
    /// Most inbound sessions.
    pub max_inbound: usize,
    /// Most outbound sessions.
    pub max_outbound: usize,
    /// Where `known-peers.json` lives (none: not persisted).
    pub datadir: Option<std::path::PathBuf>,
    /// Shortest request timeout.
    pub request_timeout_min: Duration,
    /// Longest request timeout (and the first one, before any RTT is measured).
    pub request_timeout_max: Duration,
    /// Client id in our Hello (default: tern's).
    pub client_id: Option<String>,
    /// eth versions we offer (default: eth/68, eth/69 and eth/70).
    pub eth_versions: Vec<EthVersion>,
    /// Bytes per second each peer may be served after its burst.
    pub serve_rate: u64,
    /// Bytes each peer may be served at once.
    pub serve_burst: u64,
    /// Soft limit of a served eth/70 Receipts page, in bytes.
    pub receipts_page_limit: usize,
    /// Most inbound sessions and handshakes from one IP address.
    pub max_inbound_per_ip: usize,
    /// Whether loopback addresses are exempt from the per-IP limits and IP bans (so a
    /// local devnet or test can run many nodes on 127.0.0.1).
    pub exempt_loopback: bool,
}

impl NetworkEvent {
    /// Whether this is transaction gossip (for transaction subscribers only).
    pub fn is_transaction_gossip(&self) -> bool {
        matches!(self, Self::Transactions { .. } | Self::TransactionHashes { .. })
    }
}

/// Where sessions find the transactions peers ask for with `GetPooledTransactions`.
pub trait TransactionSource: Send + Sync + std::fmt::Debug {
    /// The transactions of `hashes` we hold, in request order, in their network form,
    /// until about `soft_limit` bytes.
    fn pooled_transactions(&self, hashes: &[B256], soft_limit: usize) -> Vec<PooledTransaction>;
}

impl NetworkConfig {
    /// Defaults: listen on 0.0.0.0:30303, 50 inbound, 25 outbound, timeouts 2–20 s.
    pub fn new(secret_key: SecretKey) -> Self {
        Self {
            secret_key,
            listen_addr: SocketAddr::from(([0, 0, 0, 0], 30303)),
            bootnodes: vec![],
            trusted_peers: vec![],
            max_inbound: DEFAULT_MAX_INBOUND,
            max_outbound: DEFAULT_MAX_OUTBOUND,
            datadir: None,
            request_timeout_min: Duration::from_secs(2),
            request_timeout_max: Duration::from_secs(20),
            client_id: None,
            eth_versions: EthVersion::ALL.to_vec(),
            serve_rate: crate::budget::DEFAULT_SERVE_RATE,
            serve_burst: crate::budget::DEFAULT_SERVE_BURST,
            receipts_page_limit: crate::SOFT_RESPONSE_LIMIT,
            max_inbound_per_ip: DEFAULT_MAX_INBOUND_PER_IP,
            exempt_loopback: true,
        }
    }
}

/// Default inbound session limit.
pub const DEFAULT_MAX_INBOUND: usize = 50;
/// Default limit of inbound sessions (and handshakes in progress) from one IP address.
pub const DEFAULT_MAX_INBOUND_PER_IP: usize = 4;
/// Default outbound session limit.
pub const DEFAULT_MAX_OUTBOUND: usize = 25;
