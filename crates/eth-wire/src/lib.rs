//! The eth wire protocol for Tern: eth/68, eth/69 and eth/70 messages with request ids, the
//! Status handshake with EIP-2124 fork-id validation, and [`EthStream`] over a
//! [`tern_p2p::P2pStream`].
//!
//! Specs: <https://github.com/ethereum/devp2p/blob/master/caps/eth.md>,
//! <https://eips.ethereum.org/EIPS/eip-2481>, <https://eips.ethereum.org/EIPS/eip-7642>

mod error;
mod message;
mod stream;
mod types;

pub use error::EthError;
pub use message::{id, EthMessage, EthVersion, Status};
pub use stream::{EthStream, LocalStatus, MAX_ETH_MESSAGE_SIZE, STATUS_TIMEOUT};
pub use types::*;

use tern_p2p::{Capability, Protocol};

/// The p2p protocols for the eth versions we speak (eth/68, eth/69 and eth/70), for Hello.
pub fn eth_protocols() -> Vec<Protocol> {
    EthVersion::ALL
        .iter()
        .map(|v| Protocol::new(Capability::new("eth", *v as u64), v.message_count()))
        .collect()
}

/// Our [`LocalStatus`] at the genesis of `spec` (an empty store).
pub fn genesis_status(spec: &tern_chainspec::ChainSpec) -> LocalStatus {
    let h = &spec.genesis_header;
    status_at(spec, h, spec.genesis_hash, h.difficulty)
}

/// Our [`LocalStatus`] with `head` (hash `head_hash`, total difficulty
/// `total_difficulty`) as best block; we serve from genesis.
pub fn status_at(
    spec: &tern_chainspec::ChainSpec,
    head: &alloy_consensus::Header,
    head_hash: alloy_primitives::B256,
    total_difficulty: alloy_primitives::U256,
) -> LocalStatus {
    LocalStatus {
        network_id: spec.network_id,
        genesis: spec.genesis_hash,
        fork_id: spec.fork_id(head.number, head.timestamp),
        total_difficulty,
        head_hash,
        head_number: head.number,
        earliest: spec.genesis_header.number,
    }
}

#[cfg(test)]
mod tests;
