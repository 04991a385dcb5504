//! The devp2p base protocol for Tern: Hello and capability negotiation, snappy
//! compression, Ping/Pong keepalive and Disconnect, over an RLPx connection from
//! [`tern_ecies`]; plus node keys and enode URLs.
//!
//! [`connect`] and [`accept`] run the whole stack (TCP, ECIES, Hello) and return a
//! [`P2pStream`] yielding and accepting [`CapabilityMessage`]s.
//!
//! Spec: <https://github.com/ethereum/devp2p/blob/master/rlpx.md>

mod disconnect;
mod enode;
mod error;
mod hello;
mod key;
mod session;
mod stream;

pub use disconnect::DisconnectReason;
pub use enode::Enode;
pub use error::{IdMismatch, P2pError};
pub use hello::{
    client_id, shared_capabilities, Capability, HelloMessage, Protocol, SharedCapability,
    BASE_PROTOCOL_LENGTH, P2P_VERSION,
};
pub use key::{
    generate_secret_key, load_or_generate_secret_key, load_secret_key, parse_secret_key, peer_id,
    write_secret_key,
};
pub use session::{accept, connect, P2pConfig, TcpP2pStream};
pub use stream::{
    CapabilityMessage, P2pStream, HELLO_TIMEOUT, MAX_HELLO_SIZE, MAX_MESSAGE_SIZE, PING_INTERVAL,
    PONG_TIMEOUT,
};
pub use tern_ecies::{EciesError, EciesStream, PeerId, SecretKey};
