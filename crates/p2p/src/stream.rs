//! [`P2pStream`]: the p2p base protocol over an RLPx connection.
//!
//! It performs the Hello exchange, then carries capability messages (snappy-compressed,
//! ids offset per capability) and answers Ping, sends its own Pings and enforces the
//! Pong deadline, and turns Disconnect into an error naming the reason.
//!
//! Spec: <https://github.com/ethereum/devp2p/blob/master/rlpx.md#p2p-capability>

use crate::{
    error::IdMismatch,
    hello::{shared_capabilities, HelloMessage, Protocol, SharedCapability, P2P_VERSION},
    DisconnectReason, P2pError,
};
use alloy_rlp::{Decodable, Encodable};
use bytes::{BufMut, Bytes, BytesMut};
use futures::{Sink, SinkExt, Stream, StreamExt};
use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    task::{ready, Context, Poll},
    time::Duration,
};
use tern_ecies::{EciesError, PeerId};
use tokio::time::{Instant, Sleep};
use tracing::{debug, trace};

/// Time allowed for the peer's Hello after the RLPx handshake.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest Hello we accept, in bytes (message id included).
pub const MAX_HELLO_SIZE: usize = tern_ecies::MAX_FIRST_FRAME_SIZE;
/// Largest message we accept or send, decompressed, in bytes (16 MiB).
///
/// Spec: <https://github.com/ethereum/devp2p/blob/master/rlpx.md#framing> (snappy: "the
/// decompressed size must not exceed 16 MiB").
pub const MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;
/// How often we Ping an idle peer.
pub const PING_INTERVAL: Duration = Duration::from_secs(15);
/// How long we wait for the Pong before disconnecting with `PingTimeout`.
pub const PONG_TIMEOUT: Duration = Duration::from_secs(20);

const HELLO: u64 = 0x00;
const DISCONNECT: u64 = 0x01;
const PING: u64 = 0x02;
const PONG: u64 = 0x03;
/// RLP of an empty list: the payload of Ping and Pong.
const EMPTY_LIST: u8 = 0xc0;

/// A message of a negotiated capability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapabilityMessage {
    /// Index into [`P2pStream::shared_capabilities`].
    pub capability: usize,
    /// Message id relative to the capability (e.g. 0x00 = eth Status).
    pub id: u8,
    /// The RLP payload, decompressed.
    pub payload: Bytes,
}

/// The p2p base protocol over a framed RLPx stream `S` (normally a
/// [`tern_ecies::EciesStream`]).
pub struct P2pStream<S> {
    inner: S,
    shared: Vec<SharedCapability>,
    remote_hello: HelloMessage,
    /// Base-protocol messages waiting to be written (Pong, Ping, Disconnect).
    control: VecDeque<Bytes>,
    ping_interval: Duration,
    pong_timeout: Duration,
    /// Fires for the next Ping, or, while a Ping is outstanding, at the Pong deadline.
    timer: Pin<Box<Sleep>>,
    ping_sent: Option<Instant>,
    rtt: Option<Duration>,
    /// Set once the session is over (error or Disconnect); the stream then ends.
    done: bool,
    encoder: snap::raw::Encoder,
    decoder: snap::raw::Decoder,
}

impl<S> std::fmt::Debug for P2pStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("P2pStream")
            .field("remote", &self.remote_hello.client_id)
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

/// Splits the RLP-encoded message id off a frame.
fn split_id(frame: &[u8]) -> Result<(u64, &[u8]), P2pError> {
    let mut buf = frame;
    let id = u64::decode(&mut buf)?;
    Ok((id, buf))
}

/// Encodes message `id` and `payload` into a frame, snappy-compressing when `compress`.
fn encode_frame(
    id: u64,
    payload: &[u8],
    compress: Option<&mut snap::raw::Encoder>,
) -> Result<Bytes, P2pError> {
    if payload.len() > MAX_MESSAGE_SIZE {
        return Err(P2pError::MessageTooLarge { size: payload.len(), limit: MAX_MESSAGE_SIZE });
    }
    let mut out = BytesMut::with_capacity(9 + snap::raw::max_compress_len(payload.len()));
    id.encode(&mut out);
    match compress {
        Some(enc) => {
            let start = out.len();
            out.resize(start + snap::raw::max_compress_len(payload.len()), 0);
            let n = enc.compress(payload, &mut out[start..])?;
            out.truncate(start + n);
        }
        None => out.put_slice(payload),
    }
    Ok(out.freeze())
}

/// Decompresses a snappy payload after checking its announced size against the limit.
fn decompress(decoder: &mut snap::raw::Decoder, data: &[u8]) -> Result<Bytes, P2pError> {
    let size = snap::raw::decompress_len(data)?;
    if size > MAX_MESSAGE_SIZE {
        return Err(P2pError::MessageTooLarge { size, limit: MAX_MESSAGE_SIZE });
    }
    let mut out = vec![0u8; size];
    let n = decoder.decompress(data, &mut out)?;
    out.truncate(n);
    Ok(out.into())
}

/// A Disconnect payload, compressed or not (peers differ before and after Hello).
fn disconnect_reason(decoder: &mut snap::raw::Decoder, data: &[u8]) -> Option<DisconnectReason> {
    if let Ok(plain) = decompress(decoder, data) {
        if let Ok(reason) = DisconnectReason::decode_payload(&plain) {
            return reason;
        }
    }
    DisconnectReason::decode_payload(data).ok().flatten()
}

fn disconnect_payload(reason: DisconnectReason) -> Vec<u8> {
    let mut payload = Vec::with_capacity(2);
    reason.encode_payload(&mut payload);
    payload
}

impl<S> P2pStream<S>
where
    S: Stream<Item = Result<BytesMut, EciesError>> + Sink<Bytes, Error = EciesError> + Unpin,
{
    /// Exchanges Hello over `inner`, whose handshake authenticated `remote_id`, within
    /// [`HELLO_TIMEOUT`]. Checks the Hello's size, node id and version and negotiates
    /// capabilities from `protocols`; on failure tells the peer why (Disconnect) and
    /// returns the error.
    pub async fn handshake(
        inner: S,
        remote_id: PeerId,
        hello: &HelloMessage,
        protocols: &[Protocol],
    ) -> Result<Self, P2pError> {
        tokio::time::timeout(
            HELLO_TIMEOUT,
            Self::handshake_inner(inner, remote_id, hello, protocols),
        )
        .await
        .map_err(|_| P2pError::HelloTimeout(HELLO_TIMEOUT))?
    }

    async fn handshake_inner(
        mut inner: S,
        remote_id: PeerId,
        hello: &HelloMessage,
        protocols: &[Protocol],
    ) -> Result<Self, P2pError> {
        let mut payload = Vec::with_capacity(hello.length());
        hello.encode(&mut payload);
        inner.send(encode_frame(HELLO, &payload, None)?).await?;

        let frame = inner.next().await.ok_or(P2pError::Closed)??;
        let (id, mut payload) = split_id(&frame)?;
        let mut decoder = snap::raw::Decoder::new();
        let result = match id {
            HELLO if frame.len() > MAX_HELLO_SIZE => {
                Err(P2pError::HelloTooLarge { size: frame.len(), limit: MAX_HELLO_SIZE })
            }
            HELLO => HelloMessage::decode(&mut payload).map_err(P2pError::from),
            DISCONNECT => {
                return Err(P2pError::Disconnected(disconnect_reason(&mut decoder, payload)))
            }
            other => Err(P2pError::ExpectedHello(other)),
        };
        let result = result.and_then(|theirs| {
            if theirs.id != remote_id {
                return Err(P2pError::HelloIdMismatch(Box::new(IdMismatch {
                    hello: theirs.id,
                    handshake: remote_id,
                })));
            }
            if theirs.protocol_version < P2P_VERSION {
                return Err(P2pError::IncompatibleVersion(theirs.protocol_version));
            }
            let shared = shared_capabilities(protocols, &theirs.capabilities);
            if shared.is_empty() {
                let offered: Vec<String> =
                    theirs.capabilities.iter().map(ToString::to_string).collect();
                return Err(P2pError::NoSharedCapabilities(offered.join(", ")));
            }
            Ok((theirs, shared))
        });
        let (remote_hello, shared) = match result {
            Ok(ok) => ok,
            Err(e) => {
                if let Some(reason) = e.disconnect_reason() {
                    // Best effort: the peer may already be gone. After Hello both sides
                    // compress; the failed Hello may not be a v5 one, so send it plain.
                    let frame = encode_frame(DISCONNECT, &disconnect_payload(reason), None)?;
                    let _ = inner.send(frame).await;
                }
                return Err(e);
            }
        };
        debug!(
            peer = %remote_id,
            client = %remote_hello.client_id,
            caps = ?shared.iter().map(|s| s.cap.to_string()).collect::<Vec<_>>(),
            "p2p Hello exchanged"
        );
        Ok(Self {
            inner,
            shared,
            remote_hello,
            control: VecDeque::new(),
            ping_interval: PING_INTERVAL,
            pong_timeout: PONG_TIMEOUT,
            timer: Box::pin(tokio::time::sleep(PING_INTERVAL)),
            ping_sent: None,
            rtt: None,
            done: false,
            encoder: snap::raw::Encoder::new(),
            decoder,
        })
    }
}

impl<S> P2pStream<S> {
    /// The framed connection underneath, mutably. Frames sent on it bypass compression and
    /// the message limits: this is for fault-injection tools and tests.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The capabilities both sides speak, with their message-id offsets.
    pub fn shared_capabilities(&self) -> &[SharedCapability] {
        &self.shared
    }

    /// The peer's Hello.
    pub fn remote_hello(&self) -> &HelloMessage {
        &self.remote_hello
    }

    /// Round-trip time of the last Ping/Pong, if one completed.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Changes the keepalive timing (defaults: [`PING_INTERVAL`], [`PONG_TIMEOUT`]).
    pub fn set_keepalive(&mut self, ping_interval: Duration, pong_timeout: Duration) {
        self.ping_interval = ping_interval;
        self.pong_timeout = pong_timeout;
        if self.ping_sent.is_none() {
            self.timer.as_mut().reset(Instant::now() + ping_interval);
        }
    }

    /// Queues a Ping now (unless one is outstanding); the Pong deadline starts.
    /// The Ping is written on the next poll of the stream or sink.
    pub fn ping(&mut self) {
        if self.ping_sent.is_none() {
            self.queue_control(PING, &[EMPTY_LIST]);
            let now = Instant::now();
            self.ping_sent = Some(now);
            self.timer.as_mut().reset(now + self.pong_timeout);
        }
    }

    fn queue_control(&mut self, id: u64, payload: &[u8]) {
        let frame =
            encode_frame(id, payload, Some(&mut self.encoder)).expect("control payloads are tiny");
        self.control.push_back(frame);
    }

    /// Queues a Disconnect with `reason`; no capability message follows it.
    pub fn queue_disconnect(&mut self, reason: DisconnectReason) {
        self.queue_control(DISCONNECT, &disconnect_payload(reason));
        self.done = true;
    }
}

impl<S> P2pStream<S>
where
    S: Sink<Bytes, Error = EciesError> + Unpin,
{
    /// Writes queued base-protocol messages; Ready(Ok) once all are flushed.
    fn poll_control(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), P2pError>> {
        while let Some(frame) = self.control.front() {
            ready!(Pin::new(&mut self.inner).poll_ready(cx))?;
            let frame = frame.clone();
            self.control.pop_front();
            Pin::new(&mut self.inner).start_send(frame)?;
        }
        ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
        Poll::Ready(Ok(()))
    }

    /// Sends Disconnect with `reason`, flushes it and closes the connection.
    pub async fn disconnect(&mut self, reason: DisconnectReason) -> Result<(), P2pError> {
        self.queue_disconnect(reason);
        std::future::poll_fn(|cx| self.poll_control(cx)).await?;
        self.inner.close().await?;
        Ok(())
    }

    /// Ends the session after a protocol fault: tells the peer why (best effort).
    fn fail(
        &mut self,
        cx: &mut Context<'_>,
        err: P2pError,
    ) -> Poll<Option<Result<CapabilityMessage, P2pError>>> {
        if !self.done {
            if let Some(reason) = err.disconnect_reason() {
                debug!(%reason, %err, "disconnecting peer");
                self.queue_disconnect(reason);
                let _ = self.poll_control(cx);
            }
        }
        self.done = true;
        Poll::Ready(Some(Err(err)))
    }
}

impl<S> Stream for P2pStream<S>
where
    S: Stream<Item = Result<BytesMut, EciesError>> + Sink<Bytes, Error = EciesError> + Unpin,
{
    type Item = Result<CapabilityMessage, P2pError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            // Let a queued Disconnect reach the wire, then end.
            let _ = this.poll_control(cx);
            return Poll::Ready(None);
        }
        loop {
            // After `ping()` resets it, the timer is polled again so it wakes us.
            while this.timer.as_mut().poll(cx).is_ready() {
                if this.ping_sent.is_some() {
                    return this.fail(cx, P2pError::PingTimeout(this.pong_timeout));
                }
                this.ping();
            }
            if let Poll::Ready(Err(e)) = this.poll_control(cx) {
                this.done = true;
                return Poll::Ready(Some(Err(e)));
            }
            let frame = match ready!(Pin::new(&mut this.inner).poll_next(cx)) {
                Some(Ok(frame)) => {
                    metrics::counter!("tern_p2p_bytes_in_total").increment(frame.len() as u64);
                    frame
                }
                Some(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e.into())));
                }
                None => {
                    this.done = true;
                    return Poll::Ready(None);
                }
            };
            let (id, data) = match split_id(&frame) {
                Ok(split) => split,
                Err(e) => return this.fail(cx, e),
            };
            match id {
                DISCONNECT => {
                    this.done = true;
                    let reason = disconnect_reason(&mut this.decoder, data);
                    return Poll::Ready(Some(Err(P2pError::Disconnected(reason))));
                }
                PING => {
                    trace!("ping received, answering");
                    this.queue_control(PONG, &[EMPTY_LIST]);
                }
                PONG => {
                    if let Some(sent) = this.ping_sent.take() {
                        this.rtt = Some(sent.elapsed());
                        this.timer.as_mut().reset(Instant::now() + this.ping_interval);
                    }
                }
                HELLO => return this.fail(cx, P2pError::ExpectedHello(HELLO)),
                // Reserved base-protocol ids: ignore, as the spec asks of unknown ones.
                0x04..=0x0f => {}
                _ => {
                    let Some((index, cap)) =
                        this.shared.iter().enumerate().find(|(_, c)| {
                            (c.offset..c.offset + u64::from(c.messages)).contains(&id)
                        })
                    else {
                        return this.fail(cx, P2pError::UnknownMessageId(id));
                    };
                    let rel = (id - cap.offset) as u8;
                    return match decompress(&mut this.decoder, data) {
                        Ok(payload) => Poll::Ready(Some(Ok(CapabilityMessage {
                            capability: index,
                            id: rel,
                            payload,
                        }))),
                        Err(e) => this.fail(cx, e),
                    };
                }
            }
        }
    }
}

impl<S> Sink<CapabilityMessage> for P2pStream<S>
where
    S: Sink<Bytes, Error = EciesError> + Unpin,
{
    type Error = P2pError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), P2pError>> {
        ready!(self.poll_control(cx))?;
        Pin::new(&mut self.inner).poll_ready(cx).map_err(Into::into)
    }

    fn start_send(mut self: Pin<&mut Self>, msg: CapabilityMessage) -> Result<(), P2pError> {
        let this = &mut *self;
        if this.done {
            return Err(P2pError::Closed);
        }
        let invalid = || P2pError::InvalidOutgoing { capability: msg.capability, id: msg.id };
        let cap = this.shared.get(msg.capability).ok_or_else(invalid)?;
        if msg.id >= cap.messages {
            return Err(invalid());
        }
        let frame =
            encode_frame(cap.offset + u64::from(msg.id), &msg.payload, Some(&mut this.encoder))?;
        metrics::counter!("tern_p2p_bytes_out_total").increment(frame.len() as u64);
        Pin::new(&mut this.inner).start_send(frame).map_err(Into::into)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), P2pError>> {
        ready!(self.poll_control(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx).map_err(Into::into)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), P2pError>> {
        ready!(self.poll_control(cx))?;
        Pin::new(&mut self.inner).poll_close(cx).map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_rlp_ids_and_raw_snappy() {
        let mut enc = snap::raw::Encoder::new();
        let frame = encode_frame(PING, &[EMPTY_LIST], Some(&mut enc)).unwrap();
        // id 0x02, then raw snappy of c0: length varint 1, literal tag, c0.
        assert_eq!(&frame[..], &[0x02, 0x01, 0x00, 0xc0]);
        let hello = encode_frame(HELLO, &[0xc0], None).unwrap();
        assert_eq!(&hello[..], &[0x80, 0xc0]);
        let mut dec = snap::raw::Decoder::new();
        assert_eq!(&decompress(&mut dec, &frame[1..]).unwrap()[..], &[EMPTY_LIST]);
    }

    #[test]
    fn refuses_oversized_snappy_before_allocating() {
        // A snappy header announcing 16 MiB + 1 (varint), followed by nothing.
        let mut data = Vec::new();
        let mut n = (MAX_MESSAGE_SIZE + 1) as u64;
        while n >= 0x80 {
            data.push((n as u8) | 0x80);
            n >>= 7;
        }
        data.push(n as u8);
        let mut dec = snap::raw::Decoder::new();
        match decompress(&mut dec, &data) {
            Err(P2pError::MessageTooLarge { size, limit }) => {
                assert_eq!((size, limit), (MAX_MESSAGE_SIZE + 1, MAX_MESSAGE_SIZE))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            encode_frame(0x10, &vec![0u8; MAX_MESSAGE_SIZE + 1], None),
            Err(P2pError::MessageTooLarge { .. })
        ));
    }

    #[test]
    fn disconnect_payload_compressed_or_plain() {
        let mut dec = snap::raw::Decoder::new();
        let mut enc = snap::raw::Encoder::new();
        let plain = disconnect_payload(DisconnectReason::TooManyPeers);
        let compressed = enc.compress_vec(&plain).unwrap();
        assert_eq!(disconnect_reason(&mut dec, &compressed), Some(DisconnectReason::TooManyPeers));
        assert_eq!(disconnect_reason(&mut dec, &plain), Some(DisconnectReason::TooManyPeers));
        assert_eq!(disconnect_reason(&mut dec, &[0x04]), Some(DisconnectReason::TooManyPeers));
    }
}
