//! Status handshakes between two tern endpoints over real TCP on 127.0.0.1.

use futures::{SinkExt, StreamExt};
use tern_chainspec::{ChainSpec, Head};
use tern_eth_wire::{
    eth_protocols, genesis_status, BlockRangeUpdate, EthError, EthMessage, EthStream, EthVersion,
    LocalStatus, Status, MAX_ETH_MESSAGE_SIZE,
};
use tern_p2p::{
    generate_secret_key, peer_id, CapabilityMessage, DisconnectReason, EciesStream, Enode,
    P2pConfig, P2pError,
};
use tokio::net::{TcpListener, TcpStream};

type Stream = EthStream<EciesStream<TcpStream>>;

fn dev() -> ChainSpec {
    ChainSpec::dev()
}

/// One endpoint's setup: its p2p config, Status and fork filter.
#[derive(Clone)]
struct Side {
    p2p: P2pConfig,
    status: LocalStatus,
    spec: ChainSpec,
    head: u64,
}

impl Side {
    fn new(spec: ChainSpec) -> Self {
        Self {
            p2p: P2pConfig::new(generate_secret_key(), eth_protocols()),
            status: genesis_status(&spec),
            spec,
            head: 0,
        }
    }
    fn eth68_only(mut self) -> Self {
        self.p2p.protocols.truncate(1);
        self
    }
    fn filter(&self) -> tern_chainspec::ForkFilter {
        self.spec.fork_filter(Head {
            number: self.head,
            timestamp: self.spec.genesis_header.timestamp,
            ..Default::default()
        })
    }
}

/// Connects `client` to `server` and runs both eth handshakes.
async fn pair(server: Side, client: Side) -> (Result<Stream, EthError>, Result<Stream, EthError>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let enode = Enode::new(peer_id(&server.p2p.secret_key), listener.local_addr().unwrap());
    let server_task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let p2p = tern_p2p::accept(&server.p2p, tcp).await?;
        EthStream::handshake(p2p, &server.status, &server.filter()).await
    });
    let client_result = async {
        let p2p = tern_p2p::connect(&client.p2p, &enode).await?;
        EthStream::handshake(p2p, &client.status, &client.filter()).await
    }
    .await;
    (server_task.await.unwrap(), client_result)
}

#[tokio::test]
async fn status_on_eth70_in_eth69_form() {
    // Both offer eth/68, eth/69 and eth/70: the highest is negotiated.
    let (server, client) = pair(Side::new(dev()), Side::new(dev())).await;
    let (mut server, mut client) = (server.unwrap(), client.unwrap());
    assert_eq!(server.version(), EthVersion::Eth70);
    assert_eq!(client.version(), EthVersion::Eth70);
    let Status::Eth69(s) = client.remote_status() else { panic!("eth/69 Status form expected") };
    assert_eq!((s.version, s.genesis, s.network_id, s.latest), (70, dev().genesis_hash, 1337, 0));

    // Messages flow both ways after the handshake.
    let update = EthMessage::BlockRangeUpdate(BlockRangeUpdate {
        earliest: 0,
        latest: 5,
        latest_hash: dev().genesis_hash,
    });
    client.send(update.clone()).await.unwrap();
    assert_eq!(server.next().await.unwrap().unwrap(), update);
}

#[tokio::test]
async fn status_on_eth68_when_one_side_offers_only_eth68() {
    let (server, client) = pair(Side::new(dev()), Side::new(dev()).eth68_only()).await;
    let (server, client) = (server.unwrap(), client.unwrap());
    assert_eq!(server.version(), EthVersion::Eth68);
    let Status::Eth68(s) = server.remote_status() else { panic!("eth/68 Status expected") };
    assert_eq!(s.total_difficulty, dev().genesis_header.difficulty);
    assert!(matches!(client.remote_status(), Status::Eth68(_)));
    // eth/69-only messages cannot be sent on eth/68.
    let mut client = client;
    let update = EthMessage::BlockRangeUpdate(BlockRangeUpdate {
        earliest: 0,
        latest: 5,
        latest_hash: Default::default(),
    });
    assert!(matches!(client.send(update).await, Err(EthError::WrongVersionForm(0x11))));
}

/// Both sides must fail: one finds the mismatch itself, the other reads its Disconnect.
fn assert_refused(result: &Result<Stream, EthError>, own: fn(&EthError) -> bool) {
    match result {
        Ok(_) => panic!("handshake should fail"),
        Err(e) if own(e) => {}
        Err(EthError::P2p(P2pError::Disconnected(Some(DisconnectReason::SubprotocolSpecific)))) => {
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[tokio::test]
async fn mismatched_genesis_is_refused_on_both_sides() {
    let other = ChainSpec::from_json(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/genesis/postmerge-dev.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let (server, client) = pair(Side::new(dev()), Side::new(other)).await;
    let own = |e: &EthError| matches!(e, EthError::GenesisMismatch { .. });
    assert_refused(&server, own);
    assert_refused(&client, own);
    assert!(own(server.as_ref().unwrap_err()) || own(client.as_ref().unwrap_err()));
}

#[tokio::test]
async fn mismatched_network_id_is_refused_on_both_sides() {
    let (server, client) = pair(Side::new(dev()), Side::new(dev().with_network_id(7))).await;
    let own = |e: &EthError| matches!(e, EthError::NetworkIdMismatch { .. });
    assert_refused(&server, own);
    assert_refused(&client, own);
    let err = server.unwrap_err().to_string() + &client.unwrap_err().to_string();
    assert!(err.contains("network id mismatch"), "{err}");
}

#[tokio::test]
async fn incompatible_fork_id_is_refused_on_both_sides() {
    // The client's chain has a fork at block 50 that the server's does not know, and the
    // client is past it: the server sees an unknown fork hash (local incompatible), the
    // client sees a peer that missed a passed fork (remote stale).
    let mut genesis = dev().genesis;
    genesis.config.merge_netsplit_block = Some(50);
    let forked = ChainSpec::from_genesis(genesis).unwrap();
    assert_eq!(forked.genesis_hash, dev().genesis_hash);
    let mut client = Side::new(forked.clone());
    client.head = 100;
    client.status.head_number = 100;
    client.status.fork_id = forked.fork_id(100, forked.genesis_header.timestamp);
    let (server, client) = pair(Side::new(dev()), client).await;
    assert!(matches!(server, Err(EthError::ForkId(_))), "{server:?}");
    assert!(matches!(client, Err(EthError::ForkId(_))), "{client:?}");
    let err = server.unwrap_err().to_string() + &client.unwrap_err().to_string();
    assert!(err.contains("incompatible fork id"), "{err}");
}

#[tokio::test]
async fn oversized_eth_message_and_second_status_disconnect() {
    for case in ["oversized", "second-status"] {
        let (server, client) = pair(Side::new(dev()), Side::new(dev())).await;
        let (mut server, mut client) = (server.unwrap(), client.unwrap());
        let msg = match case {
            "oversized" => CapabilityMessage {
                capability: 0,
                id: 0x02,
                payload: vec![0xc0; MAX_ETH_MESSAGE_SIZE + 1].into(),
            },
            _ => {
                let status =
                    EthMessage::Status(genesis_status(&dev()).to_status(EthVersion::Eth69));
                CapabilityMessage { capability: 0, id: 0x00, payload: status.payload() }
            }
        };
        client.p2p_mut().send(msg).await.unwrap();
        let err = server.next().await.unwrap().unwrap_err();
        match case {
            "oversized" => assert!(
                matches!(err, EthError::MessageTooLarge { limit: MAX_ETH_MESSAGE_SIZE, .. }),
                "{err}"
            ),
            _ => assert!(matches!(err, EthError::UnexpectedStatus(0)), "{err}"),
        }
        drop(server);
        let err = client.next().await.unwrap().unwrap_err();
        assert!(
            matches!(
                err,
                EthError::P2p(P2pError::Disconnected(Some(DisconnectReason::ProtocolBreach)))
            ),
            "{case}: {err}"
        );
    }
}
