//! Receipts over the wire: eth/70 pages a block whose receipts exceed the serving limit
//! (EIP-7975); older versions get whole lists.

use alloy_consensus::{
    proofs::ordered_trie_root_with_encoder, Receipt, ReceiptEnvelope, ReceiptWithBloom, TxType,
};
use alloy_eips::Encodable2718;
use std::{path::PathBuf, time::Duration};
use tern_eth_wire::{EthVersion, Receipt69};
use tern_network::{NetworkEvent, PeerRequest, PeerResponse, RequestError};
use tern_node::{testing::node_config, Node};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tern-receipts-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The consensus receipt of an eth/69 one (the bloom is computed).
fn with_bloom(r: &Receipt69) -> ReceiptEnvelope {
    let receipt = Receipt {
        status: r.status,
        cumulative_gas_used: r.cumulative_gas_used,
        logs: r.logs.clone(),
    };
    let rwb = ReceiptWithBloom::from(receipt);
    match TxType::try_from(r.tx_type).unwrap() {
        TxType::Legacy => ReceiptEnvelope::Legacy(rwb),
        TxType::Eip2930 => ReceiptEnvelope::Eip2930(rwb),
        TxType::Eip1559 => ReceiptEnvelope::Eip1559(rwb),
        TxType::Eip4844 => ReceiptEnvelope::Eip4844(rwb),
        TxType::Eip7702 => ReceiptEnvelope::Eip7702(rwb),
    }
}

async fn connected(node: &Node) -> tern_p2p::PeerId {
    let mut events = node.network.subscribe().await;
    let wait = async {
        loop {
            if let Some(NetworkEvent::PeerConnected(info)) = events.recv().await {
                return info.id;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait).await.expect("peer connected")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eth70_pages_a_block_whose_receipts_exceed_the_limit() {
    // Block 2 holds 150 transfers: about 16 KiB of receipts, pages of 2 KiB.
    let server_dir = dir("server");
    tern_node::testing::prefill_dev_chain(&server_dir, 3, 150).unwrap();
    let mut cfg = node_config(server_dir, vec![], false);
    cfg.network.receipts_page_limit = 2048;
    let server = Node::start(cfg).await.unwrap();
    let block = server.store.block_by_number(2).unwrap().unwrap();
    let stored = server.store.receipts(2).unwrap();
    let size: usize = stored.iter().map(Encodable2718::encode_2718_len).sum();
    assert!(size > 4 * 2048, "receipts of {size} bytes need several pages");

    for version in [EthVersion::Eth70, EthVersion::Eth69, EthVersion::Eth68] {
        let mut cfg = node_config(
            dir(&format!("client{}", version as u8)),
            vec![server.network.local_enode()],
            false,
        );
        cfg.network.eth_versions = vec![version];
        let client = Node::start(cfg).await.unwrap();
        let peer = connected(&client).await;
        if version == EthVersion::Eth70 {
            let got = client
                .network
                .get_block_receipts_paged(peer, block.hash, block.block.body.transactions.len())
                .await
                .unwrap();
            let full: Vec<ReceiptEnvelope> = got.iter().map(with_bloom).collect();
            assert_eq!(full, stored);
            let root = ordered_trie_root_with_encoder(&full, |r, b| r.encode_2718(b));
            assert_eq!(root, block.header().receipts_root);
            // The first page alone is cut and says so.
            let first = client
                .network
                .request(
                    peer,
                    PeerRequest::GetReceiptsPage { first_index: 0, hashes: vec![block.hash] },
                )
                .await
                .unwrap();
            let PeerResponse::Receipts70 { last_block_incomplete, receipts } = first else {
                panic!()
            };
            assert!(last_block_incomplete);
            assert!(receipts.0[0].len() < stored.len());
        } else {
            // Older versions have no pages; GetReceipts gets whole lists.
            let e = client
                .network
                .request(
                    peer,
                    PeerRequest::GetReceiptsPage { first_index: 0, hashes: vec![block.hash] },
                )
                .await
                .unwrap_err();
            assert!(matches!(e, RequestError::Unsupported(_)), "{e}");
            let whole = client
                .network
                .request(peer, PeerRequest::GetReceipts(vec![block.hash]))
                .await
                .unwrap();
            let got: Vec<ReceiptEnvelope> = match whole {
                PeerResponse::Receipts68(r) => r.0.concat(),
                PeerResponse::Receipts69(r) => r.0.concat().iter().map(with_bloom).collect(),
                other => panic!("{other:?}"),
            };
            assert_eq!(got, stored);
        }
        client.stop().await.unwrap();
    }
    server.stop().await.unwrap();
}
