//! [`EciesStream`]: a completed RLPx handshake over any byte stream, yielding and
//! accepting frames.

use crate::{
    codec::FrameCodec,
    crypto::decrypt,
    handshake::{eip8_packet_len, Handshake, LEGACY_ACK_SIZE, LEGACY_AUTH_SIZE},
    EciesError, PeerId,
};
use bytes::{Bytes, BytesMut};
use futures::{Sink, Stream};
use secp256k1::SecretKey;
use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::Framed;
use tracing::trace;

/// Time allowed for the whole auth/ack exchange, after which the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// An authenticated, encrypted RLPx connection: a `Stream` of received frame plaintexts
/// and a `Sink` of frame plaintexts to send.
#[derive(Debug)]
pub struct EciesStream<Io> {
    inner: Framed<Io, FrameCodec>,
    remote_id: PeerId,
}

impl<Io: AsyncRead + AsyncWrite + Unpin> EciesStream<Io> {
    /// Dials: sends our auth to `remote_id` and waits for its ack, within [`HANDSHAKE_TIMEOUT`].
    pub async fn connect(
        io: Io,
        secret_key: SecretKey,
        remote_id: PeerId,
    ) -> Result<Self, EciesError> {
        tokio::time::timeout(HANDSHAKE_TIMEOUT, Self::connect_inner(io, secret_key, remote_id))
            .await
            .map_err(|_| EciesError::HandshakeTimeout(HANDSHAKE_TIMEOUT))?
    }

    /// Accepts: waits for a peer's auth and answers with our ack, within [`HANDSHAKE_TIMEOUT`].
    pub async fn accept(io: Io, secret_key: SecretKey) -> Result<Self, EciesError> {
        tokio::time::timeout(HANDSHAKE_TIMEOUT, Self::accept_inner(io, secret_key))
            .await
            .map_err(|_| EciesError::HandshakeTimeout(HANDSHAKE_TIMEOUT))?
    }

    async fn connect_inner(
        mut io: Io,
        secret_key: SecretKey,
        remote_id: PeerId,
    ) -> Result<Self, EciesError> {
        let mut hs = Handshake::initiator(secret_key, remote_id)?;
        io.write_all(&hs.create_auth()).await?;
        io.flush().await?;
        let ack = read_packet(&mut io, &secret_key, LEGACY_ACK_SIZE).await?;
        let secrets = hs.read_ack(&ack)?;
        trace!(peer = %remote_id, "RLPx handshake complete (initiator)");
        Ok(Self { inner: Framed::new(io, FrameCodec::new(secrets)), remote_id })
    }

    async fn accept_inner(mut io: Io, secret_key: SecretKey) -> Result<Self, EciesError> {
        let mut hs = Handshake::recipient(secret_key);
        let auth = read_packet(&mut io, &secret_key, LEGACY_AUTH_SIZE).await?;
        hs.read_auth(&auth)?;
        let (ack, secrets) = hs.create_ack()?;
        io.write_all(&ack).await?;
        io.flush().await?;
        let remote_id = secrets.remote_id;
        trace!(peer = %remote_id, "RLPx handshake complete (recipient)");
        Ok(Self { inner: Framed::new(io, FrameCodec::new(secrets)), remote_id })
    }

    /// The node id the handshake authenticated.
    pub fn remote_id(&self) -> PeerId {
        self.remote_id
    }

    /// The underlying I/O object (e.g. to read the peer's socket address).
    pub fn get_ref(&self) -> &Io {
        self.inner.get_ref()
    }

    /// The underlying I/O object, mutably. Bytes written to it bypass the frame codec and
    /// break the session: this is for fault-injection tools and tests.
    pub fn get_mut(&mut self) -> &mut Io {
        self.inner.get_mut()
    }
}

/// Reads one auth or ack packet: EIP-8 (size-prefixed) or, when it starts like an ECIES
/// message and decrypts at exactly `legacy_size` bytes, legacy.
async fn read_packet<Io: AsyncRead + Unpin>(
    io: &mut Io,
    secret_key: &SecretKey,
    legacy_size: usize,
) -> Result<Vec<u8>, EciesError> {
    let mut packet = vec![0u8; 2];
    read_exact(io, &mut packet).await?;
    let prefix = [packet[0], packet[1]];
    if prefix[0] == 0x04 {
        packet.resize(legacy_size, 0);
        read_exact(io, &mut packet[2..]).await?;
        if decrypt(secret_key, &packet, &[]).is_ok() {
            return Ok(packet);
        }
    }
    // An EIP-8 size starting with 0x04 is at least 1026 bytes, longer than any legacy packet.
    let len = eip8_packet_len(prefix)?;
    let have = packet.len();
    packet.resize(len, 0);
    read_exact(io, &mut packet[have..]).await?;
    Ok(packet)
}

async fn read_exact<Io: AsyncRead + Unpin>(io: &mut Io, buf: &mut [u8]) -> Result<(), EciesError> {
    match io.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(EciesError::HandshakeEof),
        Err(e) => Err(e.into()),
    }
}

impl<Io: AsyncRead + Unpin> Stream for EciesStream<Io> {
    type Item = Result<BytesMut, EciesError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

impl<Io: AsyncWrite + Unpin> Sink<Bytes> for EciesStream<Io> {
    type Error = EciesError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), EciesError>> {
        Pin::new(&mut self.inner).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Bytes) -> Result<(), EciesError> {
        Pin::new(&mut self.inner).start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), EciesError>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), EciesError>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}
