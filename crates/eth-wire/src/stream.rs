//! [`EthStream`]: the eth protocol over a [`P2pStream`]: Status exchange and validation,
//! then typed messages.

use crate::{message::Status, types::*, EthError, EthMessage, EthVersion};
use alloy_eip2124::{ForkFilter, ForkId};
use alloy_primitives::{B256, U256};
use bytes::{Bytes, BytesMut};
use futures::{Sink, SinkExt, Stream, StreamExt};
use std::{
    pin::Pin,
    task::{ready, Context, Poll},
    time::Duration,
};
use tern_p2p::EciesError;
use tern_p2p::{CapabilityMessage, P2pStream};
use tracing::debug;

/// Time allowed for the peer's Status after Hello.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest eth message we accept, in bytes (10 MiB, decompressed); larger ones disconnect
/// the peer with `ProtocolBreach`.
pub const MAX_ETH_MESSAGE_SIZE: usize = 10 * 1024 * 1024;

/// What we tell peers in our Status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalStatus {
    /// Network id.
    pub network_id: u64,
    /// Genesis hash.
    pub genesis: B256,
    /// Our fork id at our head.
    pub fork_id: ForkId,
    /// Total difficulty of our best chain (eth/68 only).
    pub total_difficulty: U256,
    /// Hash of our best block.
    pub head_hash: B256,
    /// Number of our best block (eth/69 only).
    pub head_number: u64,
    /// Earliest block we serve (eth/69 only).
    pub earliest: u64,
}

impl LocalStatus {
    /// Our Status in the form of `version`.
    pub fn to_status(&self, version: EthVersion) -> Status {
        match version {
            EthVersion::Eth68 => Status::Eth68(Status68 {
                version: 68,
                network_id: self.network_id,
                total_difficulty: self.total_difficulty,
                best_hash: self.head_hash,
                genesis: self.genesis,
                fork_id: self.fork_id,
            }),
            EthVersion::Eth69 | EthVersion::Eth70 => Status::Eth69(Status69 {
                version: version as u8,
                network_id: self.network_id,
                genesis: self.genesis,
                fork_id: self.fork_id,
                earliest: self.earliest,
                latest: self.head_number,
                latest_hash: self.head_hash,
            }),
        }
    }

    /// Checks a peer's Status against ours: version, network id, genesis, fork id (EIP-2124
    /// validation with `filter`).
    pub fn validate(
        &self,
        version: EthVersion,
        theirs: &Status,
        filter: &ForkFilter,
    ) -> Result<(), EthError> {
        if theirs.version() != version as u8 {
            return Err(EthError::VersionMismatch {
                negotiated: version as u8,
                theirs: theirs.version(),
            });
        }
        if theirs.genesis() != self.genesis {
            return Err(EthError::GenesisMismatch { ours: self.genesis, theirs: theirs.genesis() });
        }
        if theirs.network_id() != self.network_id {
            return Err(EthError::NetworkIdMismatch {
                ours: self.network_id,
                theirs: theirs.network_id(),
            });
        }
        filter.validate(theirs.fork_id())?;
        Ok(())
    }
}

/// An eth session: a `Stream` of [`EthMessage`]s and a `Sink` for them.
pub struct EthStream<S> {
    inner: P2pStream<S>,
    version: EthVersion,
    /// Index of the eth capability in the p2p stream's shared capabilities.
    cap: usize,
    remote_status: Status,
}

impl<S> std::fmt::Debug for EthStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EthStream").field("version", &self.version).finish_non_exhaustive()
    }
}

impl<S> EthStream<S>
where
    S: Stream<Item = Result<BytesMut, EciesError>> + Sink<Bytes, Error = EciesError> + Unpin,
{
    /// Exchanges Status over `p2p` (within [`STATUS_TIMEOUT`]) and validates the peer's;
    /// on any mismatch the peer is disconnected with the matching reason.
    pub async fn handshake(
        mut p2p: P2pStream<S>,
        local: &LocalStatus,
        filter: &ForkFilter,
    ) -> Result<Self, EthError> {
        let result = tokio::time::timeout(STATUS_TIMEOUT, Self::exchange(&mut p2p, local, filter))
            .await
            .unwrap_or(Err(EthError::StatusTimeout(STATUS_TIMEOUT)));
        match result {
            Ok((version, cap, remote_status)) => {
                debug!(?version, remote = ?remote_status, "eth Status exchanged");
                Ok(Self { inner: p2p, version, cap, remote_status })
            }
            Err(e) => {
                if let Some(reason) = e.disconnect_reason() {
                    debug!(%reason, error = %e, "eth handshake failed, disconnecting");
                    let _ = p2p.disconnect(reason).await;
                }
                Err(e)
            }
        }
    }

    async fn exchange(
        p2p: &mut P2pStream<S>,
        local: &LocalStatus,
        filter: &ForkFilter,
    ) -> Result<(EthVersion, usize, Status), EthError> {
        let (cap, version) = p2p
            .shared_capabilities()
            .iter()
            .enumerate()
            .find_map(|(i, c)| {
                (c.cap.name == "eth")
                    .then(|| EthVersion::from_u64(c.cap.version))
                    .flatten()
                    .map(|v| (i, v))
            })
            .ok_or(EthError::NoEthCapability)?;
        let ours = EthMessage::Status(local.to_status(version));
        p2p.send(CapabilityMessage { capability: cap, id: ours.id(), payload: ours.payload() })
            .await?;
        let msg = loop {
            let msg = p2p.next().await.ok_or(tern_p2p::P2pError::Closed)??;
            if msg.capability == cap {
                break msg;
            }
        };
        if msg.id != crate::message::id::STATUS {
            return Err(EthError::UnexpectedStatus(msg.id));
        }
        check_size(msg.payload.len())?;
        let EthMessage::Status(theirs) = EthMessage::decode(version, msg.id, &msg.payload)? else {
            unreachable!("id 0 decodes to Status")
        };
        local.validate(version, &theirs, filter)?;
        Ok((version, cap, theirs))
    }
}

fn check_size(size: usize) -> Result<(), EthError> {
    if size > MAX_ETH_MESSAGE_SIZE {
        return Err(EthError::MessageTooLarge { size, limit: MAX_ETH_MESSAGE_SIZE });
    }
    Ok(())
}

impl<S> EthStream<S> {
    /// The negotiated eth version.
    pub fn version(&self) -> EthVersion {
        self.version
    }

    /// The peer's Status.
    pub fn remote_status(&self) -> &Status {
        &self.remote_status
    }

    /// The p2p stream below (Hello, RTT, Disconnect).
    pub fn p2p(&self) -> &P2pStream<S> {
        &self.inner
    }

    /// Mutable access to the p2p stream below.
    pub fn p2p_mut(&mut self) -> &mut P2pStream<S> {
        &mut self.inner
    }
}

impl<S> Stream for EthStream<S>
where
    S: Stream<Item = Result<BytesMut, EciesError>> + Sink<Bytes, Error = EciesError> + Unpin,
{
    type Item = Result<EthMessage, EthError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            let msg = match ready!(this.inner.poll_next_unpin(cx)) {
                Some(Ok(msg)) => msg,
                Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                None => return Poll::Ready(None),
            };
            if msg.capability != this.cap {
                continue;
            }
            let result = check_size(msg.payload.len())
                .and_then(|()| EthMessage::decode(this.version, msg.id, &msg.payload))
                .and_then(|m| match m {
                    EthMessage::Status(_) => Err(EthError::UnexpectedStatus(msg.id)),
                    m => Ok(m),
                });
            if let Err(e) = &result {
                if let Some(reason) = e.disconnect_reason() {
                    debug!(%reason, error = %e, "disconnecting eth peer");
                    this.inner.queue_disconnect(reason);
                    // Let the Disconnect reach the wire before the stream ends.
                    let _ = this.inner.poll_flush_unpin(cx);
                }
            }
            return Poll::Ready(Some(result));
        }
    }
}

impl<S> Sink<EthMessage> for EthStream<S>
where
    S: Sink<Bytes, Error = EciesError> + Unpin,
{
    type Error = EthError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), EthError>> {
        self.inner.poll_ready_unpin(cx).map_err(Into::into)
    }

    fn start_send(mut self: Pin<&mut Self>, msg: EthMessage) -> Result<(), EthError> {
        if !msg.is_valid_for(self.version) {
            return Err(EthError::WrongVersionForm(msg.id()));
        }
        let cap = self.cap;
        self.inner
            .start_send_unpin(CapabilityMessage {
                capability: cap,
                id: msg.id(),
                payload: msg.payload(),
            })
            .map_err(Into::into)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), EthError>> {
        self.inner.poll_flush_unpin(cx).map_err(Into::into)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), EthError>> {
        self.inner.poll_close_unpin(cx).map_err(Into::into)
    }
}
