//! Node discovery, protocol version 4 ([discv4]): the UDP packets, node records (ENR,
//! [EIP-778] and [EIP-868]), the Kademlia table, lookups, rate limits, and the service
//! that runs them over one UDP socket ([`Discv4`]).
//!
//! A packet is `hash ‖ signature ‖ type ‖ RLP data`, at most 1280 bytes; the signature
//! (65 bytes, `r ‖ s ‖ v`) covers `type ‖ data`, the hash covers `signature ‖ type ‖
//! data`. Decoding accepts what EIP-8 asks for: extra list elements and extra bytes after
//! the list are ignored, any Ping version is accepted.
//!
//! [discv4]: https://github.com/ethereum/devp2p/blob/master/discv4.md
//! [EIP-778]: https://eips.ethereum.org/EIPS/eip-778
//! [EIP-868]: https://eips.ethereum.org/EIPS/eip-868

mod error;
mod limit;
mod lookup;
mod packet;
mod record;
mod service;
mod table;

pub use error::PacketError;
pub use limit::{RateLimiter, RateLimits, GLOBAL_RATE, PER_IP_RATE};
pub use lookup::{Lookup, ALPHA};
pub use packet::{
    decode, decode_message, encode, message_data, Decoded, EnrRequest, EnrResponse, FindNode,
    Message, Neighbours, NodeEndpoint, NodeRecord, Ping, Pong, MAX_NEIGHBOURS_PER_PACKET,
    MAX_PACKET_SIZE,
};
pub use record::{local_record, record_fork_id, record_node_id, NodeEnr, RecordError, ETH_ENR_KEY};
pub use service::{Discovered, Discv4, Discv4Config, Discv4Error, Discv4Stats, BOND_EXPIRY};
pub use table::{distance, Seen, Table, TableEntry, BUCKETS, BUCKET_SIZE, REPLACEMENTS};
