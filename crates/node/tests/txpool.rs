//! Transactions through the pool and gossip, in-process over real TCP on 127.0.0.1: sent
//! to a fullnode, carried to the validator, sealed into blocks, synced back.

use alloy_consensus::{TxEip1559, TxEnvelope};
use alloy_primitives::{Address, TxKind, B256, U256};
use std::{path::PathBuf, time::Duration};
use tern_chainspec::ChainSpec;
use tern_consensus::{address_of, chain_gen::sign_tx};
use tern_eth_wire::EthVersion;
use tern_node::{
    testing::{dev_key, dev_transfer, node_config as config},
    Node,
};
use tern_storage::StateRead;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tern-txpool-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

const TO: Address = Address::repeat_byte(0x77);

fn transfer(nonce: u64, tip_gwei: u128) -> TxEnvelope {
    dev_transfer(nonce, TO, 1000 + nonce, tip_gwei)
}

/// Waits (on new heads) until `node`'s state has `TO` at `balance`; panics after 60 s.
async fn wait_balance(node: &mut Node, balance: U256) {
    let wait = async {
        loop {
            let now = node.store.state().unwrap().account(TO).unwrap().map(|a| a.balance);
            if now == Some(balance) {
                return;
            }
            let head = node.sync.progress().head;
            node.sync.wait_for_head(head + 1).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait).await.expect("balance reached in 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_eth68() {
    transactions_sent_to_a_fullnode_are_sealed_by_the_validator(EthVersion::Eth68).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_eth69() {
    transactions_sent_to_a_fullnode_are_sealed_by_the_validator(EthVersion::Eth69).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_eth70() {
    transactions_sent_to_a_fullnode_are_sealed_by_the_validator(EthVersion::Eth70).await
}

/// The fullnode speaks only `version` with the validator.
async fn transactions_sent_to_a_fullnode_are_sealed_by_the_validator(version: EthVersion) {
    let tag = version as u8;
    let validator = Node::start(config(dir(&format!("val{tag}")), vec![], true)).await.unwrap();
    let mut cfg = config(dir(&format!("full{tag}")), vec![validator.network.local_enode()], false);
    cfg.network.eth_versions = vec![version];
    let mut full = Node::start(cfg).await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), full.sync.wait_for_head(1)).await.unwrap();
    assert_eq!(full.network.peers().await[0].version, version);

    // Nonces 0, 1, 3, 4: the last two wait in queued for 2.
    let txs: Vec<TxEnvelope> = (0..5).map(|n| transfer(n, 1)).collect();
    let gap = [0, 1, 3, 4].map(|i| txs[i].clone()).to_vec();
    for r in full.pool.add(gap) {
        r.unwrap();
    }
    // The same again is known; a replacement of nonce 3 with a 5% bump is refused.
    let e = full.pool.add(vec![transfer(3, 1)]).pop().unwrap().unwrap_err();
    assert_eq!(e, tern_txpool::PoolError::AlreadyKnown);
    let cheap_bump: TxEnvelope = {
        let t = TxEip1559 {
            chain_id: ChainSpec::dev().chain_id,
            nonce: 3,
            gas_limit: 21_000,
            max_fee_per_gas: 105_000_000_000,
            max_priority_fee_per_gas: 1_050_000_000,
            to: TxKind::Call(TO),
            value: U256::from(1003),
            ..Default::default()
        };
        sign_tx(t, &dev_key()).into()
    };
    let e = full.pool.add(vec![cheap_bump]).pop().unwrap().unwrap_err();
    assert_eq!(e.to_string(), "replacement transaction underpriced");

    // The first two reach a block (the others wait for nonce 2).
    let first_two = U256::from(1000 + 1001);
    wait_balance(&mut full, first_two).await;
    for queued in [&txs[3], &txs[4]] {
        let (_, pending) = full.pool.get(queued.tx_hash()).expect("still pooled");
        assert!(!pending, "waits for nonce 2");
    }
    // Filling the gap promotes 3 and 4.
    full.pool.add(vec![txs[2].clone()]).pop().unwrap().unwrap();
    let all = U256::from((0..5).map(|n| 1000 + n).sum::<u64>());
    wait_balance(&mut full, all).await;

    // Both nodes agree on the chain and state; the fullnode stored the receipts.
    let (head, hash) = full.store.best_block().unwrap();
    let mut validator = validator;
    tokio::time::timeout(Duration::from_secs(60), validator.sync.wait_for_head(head)).await.ok();
    assert_eq!(validator.store.canonical_hash(head).unwrap(), Some(hash));
    let sender = address_of(&dev_key());
    assert_eq!(full.store.state().unwrap().account(sender).unwrap().unwrap().nonce, 5);
    let mut receipts = 0;
    for n in 1..=head {
        let block = full.store.block_by_number(n).unwrap().unwrap();
        let r = full.store.receipts(n).unwrap();
        assert_eq!(r.len(), block.block.body.transactions.len());
        receipts += r.len();
    }
    assert_eq!(receipts, 5);
    // Mined transactions leave both pools (each pool's maintenance task catches up with
    // its store's head after the commit: wait for it, as a loaded machine may delay it).
    for node in [&full, &validator] {
        let hashes: Vec<B256> = txs.iter().map(|t| *t.tx_hash()).collect();
        let cleared = async {
            while hashes.iter().any(|h| node.pool.contains(h)) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), cleared)
            .await
            .expect("mined transactions leave the pool");
    }
    full.stop().await.unwrap();
    validator.stop().await.unwrap();
}
