//! A `P2pStream` after Hello receiving one arbitrary frame plaintext (RLP message id,
//! then a snappy payload or a base-protocol message): id split, Ping/Pong/Disconnect
//! handling, capability routing and the 16 MiB snappy size check before allocating.
#![no_main]
use bytes::{Bytes, BytesMut};
use futures::{Sink, SinkExt, Stream, StreamExt};
use std::{
    collections::VecDeque,
    pin::Pin,
    sync::OnceLock,
    task::{Context, Poll},
};
use tern_eth_wire::eth_protocols;
use tern_p2p::{EciesError, P2pConfig, P2pStream, SecretKey};

/// An in-memory RLPx connection: yields queued frames, swallows what is sent.
struct Frames(VecDeque<BytesMut>);

impl Stream for Frames {
    type Item = Result<BytesMut, EciesError>;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.0.pop_front().map(Ok))
    }
}

impl Sink<Bytes> for Frames {
    type Error = EciesError;
    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), EciesError>> {
        Poll::Ready(Ok(()))
    }
    fn start_send(self: Pin<&mut Self>, _: Bytes) -> Result<(), EciesError> {
        Ok(())
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), EciesError>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), EciesError>> {
        Poll::Ready(Ok(()))
    }
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    config: P2pConfig,
    /// The peer's Hello frame: id 0x00 then the RLP Hello, uncompressed.
    hello_frame: BytesMut,
}

fn fixture() -> Fixture {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let config = P2pConfig::new(SecretKey::from_byte_array([3; 32]).unwrap(), eth_protocols());
    let mut hello_frame = BytesMut::from(&[0x80u8][..]);
    alloy_rlp::Encodable::encode(&config.hello(), &mut hello_frame);
    Fixture { runtime, config, hello_frame }
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let f = FIXTURE.get_or_init(fixture);
    let frames = Frames(VecDeque::from([f.hello_frame.clone(), BytesMut::from(data)]));
    let hello = f.config.hello();
    f.runtime.block_on(async {
        let mut stream = P2pStream::handshake(frames, hello.id, &hello, &f.config.protocols)
            .await
            .expect("a valid Hello");
        // Drain: the fuzzed frame yields a message, an error, or nothing (Ping/Pong).
        while let Some(item) = stream.next().await {
            if item.is_err() {
                break;
            }
        }
        let _ = stream.close().await;
    });
});
