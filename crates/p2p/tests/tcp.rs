//! The RLPx + p2p stack between two endpoints over real TCP on 127.0.0.1.

use alloy_rlp::Encodable;
use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tern_ecies::{EciesError, EciesStream, FrameCodec, Handshake};
use tern_p2p::{
    accept, connect, generate_secret_key, peer_id, Capability, CapabilityMessage, DisconnectReason,
    Enode, HelloMessage, P2pConfig, P2pError, Protocol, TcpP2pStream, MAX_HELLO_SIZE,
    MAX_MESSAGE_SIZE,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tokio_util::codec::Encoder;

fn config() -> P2pConfig {
    P2pConfig::new(
        generate_secret_key(),
        vec![
            Protocol::new(Capability::new("eth", 68), 17),
            Protocol::new(Capability::new("eth", 69), 18),
        ],
    )
}

/// A listener with its config and enode.
async fn listener() -> (TcpListener, P2pConfig, Enode) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut cfg = config();
    cfg.port = l.local_addr().unwrap().port();
    let enode = Enode::new(peer_id(&cfg.secret_key), l.local_addr().unwrap());
    (l, cfg, enode)
}

/// Accepts one connection and runs the server side of the stack on it.
fn serve_one(
    l: TcpListener,
    cfg: P2pConfig,
) -> tokio::task::JoinHandle<Result<TcpP2pStream, P2pError>> {
    tokio::spawn(async move {
        let (tcp, _) = l.accept().await.unwrap();
        accept(&cfg, tcp).await
    })
}

/// Polls `s` (answering Pings) until it yields a capability message or ends.
async fn next_msg(s: &mut TcpP2pStream) -> Result<CapabilityMessage, P2pError> {
    s.next().await.unwrap_or(Err(P2pError::Closed))
}

#[tokio::test]
async fn hello_ping_10mib_and_disconnect_reason() {
    let (l, server_cfg, enode) = listener().await;
    let server = serve_one(l, server_cfg.clone());
    let client_cfg = config();
    let mut client = connect(&client_cfg, &enode).await.unwrap();
    let mut server = server.await.unwrap().unwrap();

    // Each side sees the other's Hello: client id, node id, eth/69 negotiated at 0x10.
    assert_eq!(client.remote_hello().client_id, server_cfg.client_id);
    assert_eq!(client.remote_hello().id, enode.id);
    assert_eq!(client.remote_hello().port, enode.tcp_port);
    assert_eq!(server.remote_hello().id, peer_id(&client_cfg.secret_key));
    let shared = client.shared_capabilities();
    assert_eq!((shared[0].cap.to_string(), shared[0].offset), ("eth/69".to_string(), 0x10));

    // Ping/Pong: the server answers while it is polled; the client learns the RTT.
    client.ping();
    let server_task = tokio::spawn(async move {
        let msg = next_msg(&mut server).await.unwrap();
        server.send(msg.clone()).await.unwrap(); // echo
        let err = next_msg(&mut server).await.unwrap_err();
        (msg, err)
    });
    while client.rtt().is_none() {
        let _ = tokio::time::timeout(Duration::from_millis(20), client.next()).await;
    }

    // A 10 MiB message (compressible in parts, incompressible in others) both ways.
    let mut payload = vec![0u8; 10 * 1024 * 1024];
    for (i, b) in payload.iter_mut().enumerate().skip(5 * 1024 * 1024) {
        *b = (i.wrapping_mul(2_654_435_761) >> 13) as u8;
    }
    let payload = Bytes::from(payload);
    let msg = CapabilityMessage { capability: 0, id: 0x05, payload: payload.clone() };
    client.send(msg.clone()).await.unwrap();
    let echoed = next_msg(&mut client).await.unwrap();
    assert_eq!(echoed, msg);

    client.disconnect(DisconnectReason::ClientQuitting).await.unwrap();
    let (received, err) = server_task.await.unwrap();
    assert_eq!(received.payload, payload);
    assert!(matches!(err, P2pError::Disconnected(Some(DisconnectReason::ClientQuitting))), "{err}");
}

#[tokio::test]
async fn eth68_only_peer_negotiates_eth68() {
    let (l, server_cfg, enode) = listener().await;
    let server = serve_one(l, server_cfg);
    let mut cfg = config();
    cfg.protocols.truncate(1);
    let client = connect(&cfg, &enode).await.unwrap();
    let server = server.await.unwrap().unwrap();
    assert_eq!(client.shared_capabilities()[0].cap, Capability::new("eth", 68));
    assert_eq!(server.shared_capabilities()[0].cap, Capability::new("eth", 68));
}

#[tokio::test]
async fn no_shared_capability_is_a_useless_peer() {
    let (l, server_cfg, enode) = listener().await;
    let server = serve_one(l, server_cfg);
    let mut cfg = config();
    cfg.protocols = vec![Protocol::new(Capability::new("les", 4), 20)];
    let client = connect(&cfg, &enode).await.unwrap_err();
    assert!(matches!(client, P2pError::NoSharedCapabilities(_)), "{client}");
    let server = server.await.unwrap().unwrap_err();
    // The server either reads our Disconnect(UselessPeer) or fails the same way itself.
    assert!(
        matches!(
            server,
            P2pError::Disconnected(Some(DisconnectReason::UselessPeer))
                | P2pError::NoSharedCapabilities(_)
        ),
        "{server}"
    );
}

#[tokio::test]
async fn missing_pong_ends_in_ping_timeout() {
    let (l, server_cfg, enode) = listener().await;
    let server = serve_one(l, server_cfg);
    let mut client = connect(&config(), &enode).await.unwrap();
    let mut server = server.await.unwrap().unwrap();
    client.set_keepalive(Duration::from_millis(10), Duration::from_millis(200));
    // The server is not polled, so nobody answers the client's Ping.
    let err = next_msg(&mut client).await.unwrap_err();
    assert!(matches!(err, P2pError::PingTimeout(_)), "{err}");
    // The server, polled now, finds the Ping and then the client's Disconnect(PingTimeout).
    let err = next_msg(&mut server).await.unwrap_err();
    assert!(matches!(err, P2pError::Disconnected(Some(DisconnectReason::PingTimeout))), "{err}");
}

// ---- bad input: each ends in a clear error, a closed connection and no panic ----

/// Asserts the peer closed the socket (EOF or reset) after the failure.
async fn assert_closed(tcp: &mut TcpStream) {
    let mut buf = vec![0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => continue, // a Disconnect frame may arrive first
            Err(_) => panic!("connection still open"),
        }
    }
}

#[tokio::test]
async fn random_bytes_instead_of_auth() {
    let (l, cfg, enode) = listener().await;
    let server = serve_one(l, cfg);
    let mut tcp = TcpStream::connect(enode.tcp_addr()).await.unwrap();
    let garbage: Vec<u8> = (0..600u32).map(|i| (i.wrapping_mul(7919) >> 3) as u8).collect();
    let mut garbage = garbage;
    garbage[0] = 0x01; // EIP-8 size prefix 0x01.. so the whole packet is read
    garbage[1] = 0x00;
    tcp.write_all(&garbage).await.unwrap();
    let err = server.await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            P2pError::Ecies(EciesError::EciesMacMismatch | EciesError::InvalidPublicKey(_))
        ),
        "{err}"
    );
    assert_closed(&mut tcp).await;
}

#[tokio::test]
async fn oversized_auth_is_refused_by_its_prefix() {
    let (l, cfg, enode) = listener().await;
    let server = serve_one(l, cfg);
    let mut tcp = TcpStream::connect(enode.tcp_addr()).await.unwrap();
    tcp.write_all(&[0x7f, 0xff]).await.unwrap();
    let err = server.await.unwrap().unwrap_err();
    assert!(err.to_string().contains("exceeds the limit of 2048 bytes"), "{err}");
    assert_closed(&mut tcp).await;
}

#[tokio::test]
async fn truncated_auth() {
    let (l, cfg, enode) = listener().await;
    let server = serve_one(l, cfg);
    let mut hs = Handshake::initiator(generate_secret_key(), enode.id).unwrap();
    let auth = hs.create_auth();
    let mut tcp = TcpStream::connect(enode.tcp_addr()).await.unwrap();
    tcp.write_all(&auth[..auth.len() / 2]).await.unwrap();
    tcp.shutdown().await.unwrap();
    let err = server.await.unwrap().unwrap_err();
    assert!(matches!(err, P2pError::Ecies(EciesError::HandshakeEof)), "{err}");
    assert_closed(&mut tcp).await;
}

/// Completes the RLPx handshake by hand and returns the raw socket and the codec, so
/// tests can put arbitrary bytes on the wire.
async fn raw_session(enode: &Enode) -> (TcpStream, FrameCodec, tern_p2p::SecretKey) {
    let key = generate_secret_key();
    let mut hs = Handshake::initiator(key, enode.id).unwrap();
    let mut tcp = TcpStream::connect(enode.tcp_addr()).await.unwrap();
    tcp.write_all(&hs.create_auth()).await.unwrap();
    let mut prefix = [0u8; 2];
    tcp.read_exact(&mut prefix).await.unwrap();
    let mut ack = prefix.to_vec();
    ack.resize(2 + u16::from_be_bytes(prefix) as usize, 0);
    tcp.read_exact(&mut ack[2..]).await.unwrap();
    let secrets = hs.read_ack(&ack).unwrap();
    (tcp, FrameCodec::new(secrets), key)
}

fn hello_frame(id: tern_p2p::PeerId) -> Bytes {
    let hello = HelloMessage {
        protocol_version: 5,
        client_id: "raw-test".into(),
        capabilities: vec![Capability::new("eth", 68)],
        port: 0,
        id,
    };
    let mut out = vec![0x80];
    hello.encode(&mut out);
    out.into()
}

async fn corrupted_frame(flip_at: impl Fn(usize) -> usize) -> P2pError {
    let (l, cfg, enode) = listener().await;
    let server = serve_one(l, cfg);
    let (mut tcp, mut codec, key) = raw_session(&enode).await;
    let mut wire = BytesMut::new();
    codec.encode(hello_frame(peer_id(&key)), &mut wire).unwrap();
    let at = flip_at(wire.len());
    wire[at] ^= 0x10;
    tcp.write_all(&wire).await.unwrap();
    let err = server.await.unwrap().unwrap_err();
    assert_closed(&mut tcp).await;
    err
}

#[tokio::test]
async fn flipped_bit_in_frame_header() {
    let err = corrupted_frame(|_| 3).await;
    assert!(matches!(err, P2pError::Ecies(EciesError::HeaderMacMismatch)), "{err}");
}

#[tokio::test]
async fn flipped_bit_in_frame_body() {
    let err = corrupted_frame(|len| len - 20).await;
    assert!(matches!(err, P2pError::Ecies(EciesError::BodyMacMismatch)), "{err}");
}

#[tokio::test]
async fn hello_with_another_id_than_the_handshake_key() {
    let (l, cfg, enode) = listener().await;
    let server = serve_one(l, cfg);
    let (mut tcp, mut codec, _key) = raw_session(&enode).await;
    let mut wire = BytesMut::new();
    let other = peer_id(&generate_secret_key());
    codec.encode(hello_frame(other), &mut wire).unwrap();
    tcp.write_all(&wire).await.unwrap();
    let err = server.await.unwrap().unwrap_err();
    assert!(matches!(&err, P2pError::HelloIdMismatch(ids) if ids.hello == other), "{err}");
    assert_closed(&mut tcp).await;
}

#[tokio::test]
async fn message_announcing_16mib_plus_one() {
    let (l, cfg, enode) = listener().await;
    let server = serve_one(l, cfg);
    let client_cfg = config();
    let tcp = TcpStream::connect(enode.tcp_addr()).await.unwrap();
    let mut ecies = EciesStream::connect(tcp, client_cfg.secret_key, enode.id).await.unwrap();
    ecies.send(hello_frame(peer_id(&client_cfg.secret_key))).await.unwrap();
    let mut server = server.await.unwrap().unwrap();
    let _their_hello = ecies.next().await.unwrap().unwrap();
    // id 0x10 (eth Status), snappy varint length MAX + 1, then nothing.
    let mut frame = vec![0x10];
    let mut n = (MAX_MESSAGE_SIZE + 1) as u64;
    while n >= 0x80 {
        frame.push((n as u8) | 0x80);
        n >>= 7;
    }
    frame.push(n as u8);
    ecies.send(frame.into()).await.unwrap();
    let err = next_msg(&mut server).await.unwrap_err();
    assert!(err.to_string().contains("16777217 bytes"), "{err}");
    assert!(err.to_string().contains("limit of 16777216"), "{err}");
    drop(server);
    // We receive Disconnect(ProtocolBreach), compressed: id 0x01, snappy of c1 02.
    let frame = ecies.next().await.unwrap().unwrap();
    assert_eq!(&frame[..], &[0x01, 0x02, 0x04, 0xc1, 0x02]);
    assert!(ecies.next().await.is_none_or(|r| r.is_err()));
}

#[tokio::test]
async fn no_hello_within_the_timeout() {
    let (l, cfg, enode) = listener().await;
    let server = serve_one(l, cfg);
    let (mut tcp, _codec, _key) = raw_session(&enode).await;
    let started = std::time::Instant::now();
    let err = server.await.unwrap().unwrap_err();
    assert!(matches!(err, P2pError::HelloTimeout(_)), "{err}");
    assert!(started.elapsed() >= Duration::from_secs(9));
    assert_closed(&mut tcp).await;
}

#[tokio::test]
async fn hello_over_2kib() {
    let (l, cfg, enode) = listener().await;
    let server = serve_one(l, cfg);
    let (mut tcp, mut codec, key) = raw_session(&enode).await;
    let hello = HelloMessage {
        protocol_version: 5,
        client_id: "x".repeat(2100),
        capabilities: vec![Capability::new("eth", 68)],
        port: 0,
        id: peer_id(&key),
    };
    let mut frame = vec![0x80];
    hello.encode(&mut frame);
    let mut wire = BytesMut::new();
    codec.encode(Bytes::from(frame), &mut wire).unwrap();
    tcp.write_all(&wire).await.unwrap();
    let err = server.await.unwrap().unwrap_err();
    // Refused from the frame header already: the first frame may not exceed the Hello limit.
    assert!(
        matches!(err, P2pError::Ecies(EciesError::FrameTooLarge { limit: MAX_HELLO_SIZE, .. })),
        "{err}"
    );
    assert_closed(&mut tcp).await;
}

/// A peer that has not said Hello cannot make us buffer a 16 MiB frame: the frame header
/// alone ends the connection (before, we waited for the body until the Hello timeout).
#[tokio::test]
async fn a_huge_frame_before_hello_is_refused_from_its_header() {
    let (l, cfg, enode) = listener().await;
    let server = serve_one(l, cfg);
    let (mut tcp, mut codec, _key) = raw_session(&enode).await;
    let mut wire = BytesMut::new();
    codec.encode_frame_header(tern_ecies::MAX_FRAME_SIZE, &mut wire).unwrap();
    // Only the header, its MAC and a little of the body: the rest never comes.
    wire.resize(4096, 0);
    tcp.write_all(&wire).await.unwrap();
    let err = tokio::time::timeout(std::time::Duration::from_secs(5), server)
        .await
        .expect("refused before the Hello timeout")
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, P2pError::Ecies(EciesError::FrameTooLarge { limit: MAX_HELLO_SIZE, .. })),
        "{err}"
    );
    assert_closed(&mut tcp).await;
}
