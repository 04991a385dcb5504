//! The network of a Tern node (shared/DESIGN.md §6): a `NetworkManager` task owning the
//! listener, the dialer and one task per session, reached through a cloneable
//! [`NetworkHandle`].
//!
//! Sessions answer GetBlockHeaders/GetBlockBodies from the chain store within limits,
//! route responses to our requests by request id with RTT-adaptive timeouts, announce new
//! blocks by policy, and report misbehaviour to the [`Reputation`] that bans peers.

mod budget;
mod counters;
mod events;
mod handle;
mod known;
mod manager;
mod peers_file;
mod reputation;
mod serve;
mod session;
mod tx_gossip;
mod types;

pub use budget::{DEFAULT_SERVE_BURST, DEFAULT_SERVE_RATE, MIN_SERVE_COST};
pub use counters::{Counters, ServedCounts};
pub use events::{NetworkEvents, MAX_ANNOUNCEMENT_BACKLOG};
pub use handle::{start, NetworkError, NetworkHandle};
pub use manager::{
    client_label, CLIENT_LABELS, HANDSHAKE_EVICT_AGE, MAX_REDIAL_DELAY, MIN_REDIAL_DELAY,
    POS_ONLY_CLIENTS,
};
pub use peers_file::KnownPeer;
pub use reputation::{
    Penalty, PenaltyCounts, Reputation, BAN_DURATION, BAN_THRESHOLD, DEFAULT_REPUTATION,
    GOOD_RESPONSE_REWARD, MAX_REPUTATION, RECOVERY_INTERVAL,
};
pub use serve::{
    serve_bodies, serve_headers, serve_receipts, serve_receipts_page, MAX_BODIES_SERVE,
    MAX_HEADERS_SERVE, MAX_RECEIPTS_SERVE, SOFT_RESPONSE_LIMIT,
};
pub use session::{
    Gossip, KNOWN_BLOCKS_PER_PEER, MAX_ANNOUNCED_HASHES, MAX_ANNOUNCED_TRANSACTIONS,
    MAX_INFLIGHT_PER_PEER, MAX_OUTBOX_GOSSIP, MAX_OUTBOX_TO_SERVE, MAX_POOLED_TRANSACTIONS_SERVE,
    MAX_QUEUED_PEER_REQUESTS, RANGE_UPDATE_INTERVAL,
};
pub use tx_gossip::{
    FetchCheck, GossipTx, Outgoing, TxGossip, FETCH_ALTERNATIVES, KNOWN_TRANSACTIONS_PER_PEER,
    MAX_BROADCAST_BYTES, MAX_FETCH_HASHES, MAX_WANTED,
};
pub use types::*;
