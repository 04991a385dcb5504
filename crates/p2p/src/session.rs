//! Dialing and accepting over TCP: TCP, then ECIES, then Hello.

use crate::{
    client_id, hello::P2P_VERSION, peer_id, Enode, HelloMessage, P2pError, P2pStream, Protocol,
};
use std::time::Duration;
use tern_ecies::{EciesError, EciesStream, SecretKey};
use tokio::net::TcpStream;

/// A p2p session over TCP.
pub type TcpP2pStream = P2pStream<EciesStream<TcpStream>>;

/// Time allowed for the TCP connect of a dial.
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What we present to peers: our key, our capabilities, our client id and port.
#[derive(Debug, Clone)]
pub struct P2pConfig {
    /// Our node key; its public key is our node id.
    pub secret_key: SecretKey,
    /// Capabilities we speak, with their message counts.
    pub protocols: Vec<Protocol>,
    /// Client id sent in Hello (default: [`client_id`]).
    pub client_id: String,
    /// TCP port we listen on, sent in Hello (0 if not listening).
    pub port: u16,
}

impl P2pConfig {
    /// A config with our default client id and no listening port.
    pub fn new(secret_key: SecretKey, protocols: Vec<Protocol>) -> Self {
        Self { secret_key, protocols, client_id: client_id(), port: 0 }
    }

    /// Our Hello: exactly the five fields of the spec.
    pub fn hello(&self) -> HelloMessage {
        HelloMessage {
            protocol_version: P2P_VERSION,
            client_id: self.client_id.clone(),
            capabilities: self.protocols.iter().map(|p| p.cap.clone()).collect(),
            port: self.port,
            id: peer_id(&self.secret_key),
        }
    }
}

/// Dials `enode`: TCP (with `TCP_NODELAY`), the RLPx handshake, then Hello.
pub async fn connect(config: &P2pConfig, enode: &Enode) -> Result<TcpP2pStream, P2pError> {
    let tcp = tokio::time::timeout(TCP_CONNECT_TIMEOUT, TcpStream::connect(enode.tcp_addr()))
        .await
        .map_err(|_| EciesError::Io(std::io::ErrorKind::TimedOut.into()))?
        .map_err(EciesError::Io)?;
    tcp.set_nodelay(true).map_err(EciesError::Io)?;
    let ecies = EciesStream::connect(tcp, config.secret_key, enode.id).await?;
    P2pStream::handshake(ecies, enode.id, &config.hello(), &config.protocols).await
}

/// Accepts an inbound TCP connection: `TCP_NODELAY`, the RLPx handshake, then Hello.
pub async fn accept(config: &P2pConfig, tcp: TcpStream) -> Result<TcpP2pStream, P2pError> {
    tcp.set_nodelay(true).map_err(EciesError::Io)?;
    let ecies = EciesStream::accept(tcp, config.secret_key).await?;
    let remote_id = ecies.remote_id();
    P2pStream::handshake(ecies, remote_id, &config.hello(), &config.protocols).await
}
