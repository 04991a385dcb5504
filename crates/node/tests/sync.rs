//! A validator and fullnodes in one process over real TCP on 127.0.0.1.

use alloy_primitives::B256;
use std::{path::PathBuf, time::Duration};
use tern_chainspec::ChainSpec;
use tern_node::{testing::node_config as config, Node};
use tern_storage::ChainStore;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tern-node-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A datadir whose store already holds `n` dev blocks (as if the validator had run).
fn prefilled(name: &str, n: usize) -> PathBuf {
    let d = dir(name);
    tern_node::testing::prefill_dev_chain(&d, n, 1).unwrap();
    d
}

async fn wait_head(node: &mut Node, number: u64) {
    tokio::time::timeout(Duration::from_secs(60), node.sync.wait_for_head(number))
        .await
        .unwrap_or_else(|_| panic!("head {} did not reach {number}", node.sync.progress().head));
}

fn hashes(store: &ChainStore, upto: u64) -> Vec<B256> {
    (0..=upto).map(|n| store.canonical_hash(n).unwrap().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fullnode_syncs_5000_blocks_follows_the_tip_and_relays() {
    let validator = Node::start(config(prefilled("val", 5000), vec![], true)).await.unwrap();
    let v_enode = validator.network.local_enode();
    let mut full = Node::start(config(dir("full"), vec![v_enode], false)).await.unwrap();
    wait_head(&mut full, 5000).await;
    assert_eq!(hashes(&full.store, 5000), hashes(&validator.store, 5000), "every block hash equal");

    // Following: the validator seals new blocks every 2 s; the fullnode keeps up.
    let (v_head, _) = validator.store.best_block().unwrap();
    wait_head(&mut full, v_head + 2).await;
    let (f_head, f_hash) = full.store.best_block().unwrap();
    assert_eq!(validator.store.canonical_hash(f_head).unwrap(), Some(f_hash));

    // A second fullnode that only knows the first syncs through it and follows.
    let mut second =
        Node::start(config(dir("second"), vec![full.network.local_enode()], false)).await.unwrap();
    let target = validator.store.best_block().unwrap().0 + 1;
    wait_head(&mut second, target).await;
    let (s_head, s_hash) = second.store.best_block().unwrap();
    assert_eq!(validator.store.canonical_hash(s_head).unwrap(), Some(s_hash));
    assert!(second.network.peers().await.iter().all(|p| p.id == full.network.local_enode().id));

    second.stop().await.unwrap();
    full.stop().await.unwrap();
    validator.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_fullnode_resumes_without_downloading_again() {
    // A serving node (no validator) with 5,000 blocks; a fullnode stopped half-way.
    let server = Node::start(config(prefilled("srv", 5000), vec![], false)).await.unwrap();
    let enode = server.network.local_enode();
    let full_dir = dir("resume");
    let mut cfg = config(full_dir.clone(), vec![enode], false);
    cfg.sync.commit_batch = 250; // small commits, so stopping lands half-way
    cfg.sync.window = 1024;
    let key = cfg.network.secret_key;
    let mut full = Node::start(cfg.clone()).await.unwrap();
    wait_head(&mut full, 2000).await;
    full.stop().await.unwrap();
    let stopped_at = ChainStore::open(&full_dir).unwrap().best_block().unwrap().0;
    assert!((2000..5000).contains(&stopped_at), "stopped half-way at {stopped_at}");
    // Let requests of the first run that were already on the wire finish being served.
    let mut before = server.network.served();
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = server.network.served();
        if now == before {
            break;
        }
        before = now;
    }

    cfg.network.secret_key = key;
    let mut full = Node::start(cfg).await.unwrap();
    assert_eq!(
        full.store.best_block().unwrap().0,
        stopped_at,
        "resumes from the stored best block"
    );
    wait_head(&mut full, 5000).await;
    let after = server.network.served();
    let headers = after.headers - before.headers;
    let bodies = after.bodies - before.bodies;
    let missing = 5000 - stopped_at;
    // Only what was missing is fetched again (plus a probe or two).
    assert!(headers <= missing + 4, "{headers} headers re-fetched for {missing} missing blocks");
    assert!(bodies <= missing, "{bodies} bodies re-fetched for {missing} missing blocks");
    assert_eq!(hashes(&full.store, 5000), hashes(&server.store, 5000));
    full.stop().await.unwrap();
    server.stop().await.unwrap();
}

/// `honest` with block `bad` changed by `lie` (its seal still the signer's) and every
/// block above it re-linked and re-sealed: headers and seals all verify.
fn lie_at(
    honest: &[alloy_consensus::Block<alloy_consensus::TxEnvelope>],
    bad: usize,
    lie: impl Fn(&mut alloy_consensus::Block<alloy_consensus::TxEnvelope>),
) -> Vec<tern_storage::SealedBlock> {
    let key = tern_node::testing::dev_key();
    let mut out: Vec<tern_storage::SealedBlock> = Vec::new();
    for (i, block) in honest.iter().enumerate() {
        let mut block = block.clone();
        let number = i + 1;
        if number == bad {
            lie(&mut block);
        }
        if number >= bad {
            block.header.parent_hash = out[i - 1].hash;
            tern_consensus::clique::seal_header(&mut block.header, &key).unwrap();
        }
        out.push(tern_storage::SealedBlock::seal(block));
    }
    out
}

/// A peer serving `lies` (block `bad` invalid) dials a fresh fullnode: the fullnode stores
/// the blocks below `bad`, refuses `bad` and bans the peer; an honest peer then brings it
/// to the honest head.
async fn a_lie_is_refused_and_its_peer_banned(
    name: &str,
    honest: &[alloy_consensus::Block<alloy_consensus::TxEnvelope>],
    lies: &[tern_storage::SealedBlock],
    bad: u64,
) {
    let spec = ChainSpec::dev();
    let liar_dir = dir(&format!("{name}-liar"));
    ChainStore::init(&liar_dir, &spec).unwrap().insert_blocks(lies).unwrap();
    let full = Node::start(config(dir(name), vec![], false)).await.unwrap();
    let mut events = full.network.subscribe().await;
    let liar =
        Node::start(config(liar_dir, vec![full.network.local_enode()], false)).await.unwrap();
    let liar_id = liar.network.local_enode().id;
    let disconnected = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(event) = events.recv().await {
            if let tern_network::NetworkEvent::PeerDisconnected { id, .. } = event {
                if id == liar_id {
                    return;
                }
            }
        }
    });
    disconnected.await.expect("the liar is disconnected");
    let standing = full.network.standing(liar_id).await;
    assert!(standing.banned, "{standing:?}");
    assert!(standing.penalties.get(tern_network::Penalty::BadBlock) >= 1, "{standing:?}");
    let (best, hash) = full.store.best_block().unwrap();
    assert_eq!(best, bad - 1, "the blocks below the lie are stored, the lie and above are not");
    assert_eq!(hash, lies[bad as usize - 2].hash);
    let header = full.store.block_by_number(bad - 1).unwrap().unwrap().block.header;
    assert_eq!(full.store.state().unwrap().state_root().unwrap(), header.state_root);

    let head = honest.len() as u64;
    let server = Node::start(config(
        prefilled_with(&format!("{name}-honest"), honest),
        vec![full.network.local_enode()],
        false,
    ))
    .await
    .unwrap();
    let mut full = full;
    wait_head(&mut full, head).await;
    assert_eq!(hashes(&full.store, head), hashes(&server.store, head));
    server.stop().await.unwrap();
    liar.stop().await.unwrap();
    full.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_that_does_not_execute_to_its_header_is_refused_and_its_peer_banned() {
    // 300 blocks come in batches large enough to have their state root checked at the
    // batch's end: the first bad block is still found and nothing from it on is stored.
    let honest = tern_node::testing::dev_chain(300, 2);
    let lies = lie_at(&honest, 150, |b| {
        b.header.state_root = alloy_primitives::keccak256(b.header.state_root)
    });
    a_lie_is_refused_and_its_peer_banned("wrong-root", &honest, &lies, 150).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_whose_signature_recovers_no_sender_is_refused_and_its_peer_banned() {
    // The body matches its header (the transactions root is the lie's own), so only the
    // sender stage, which recovers a whole batch at once, sees the bad signature.
    let honest = tern_node::testing::dev_chain(300, 2);
    let lies = lie_at(&honest, 120, |b| {
        b.body.transactions[1] =
            alloy_consensus::TxEnvelope::Eip1559(alloy_consensus::Signed::new_unhashed(
                alloy_consensus::TxEip1559 {
                    chain_id: 1337,
                    gas_limit: 21_000,
                    ..Default::default()
                },
                alloy_primitives::Signature::new(
                    alloy_primitives::U256::from(1),
                    alloy_primitives::U256::MAX,
                    false,
                ),
            ));
        b.header.transactions_root =
            alloy_consensus::proofs::calculate_transaction_root(&b.body.transactions);
    });
    a_lie_is_refused_and_its_peer_banned("bad-signature", &honest, &lies, 120).await;
}

fn prefilled_with(
    name: &str,
    blocks: &[alloy_consensus::Block<alloy_consensus::TxEnvelope>],
) -> PathBuf {
    let d = dir(name);
    tern_node::testing::store_dev_chain(&d, blocks).unwrap();
    d
}

/// The dev chain's first `common` blocks of `a`, then `extra` blocks of its own with
/// `txs` transfers each (other transfers than `a`'s: the branches' states differ).
fn fork_of(
    a: &[alloy_consensus::Block<alloy_consensus::TxEnvelope>],
    common: usize,
    extra: usize,
    txs: usize,
) -> Vec<alloy_consensus::Block<alloy_consensus::TxEnvelope>> {
    let spec = ChainSpec::dev();
    let key = tern_node::testing::dev_key();
    let signer = tern_consensus::address_of(&key);
    let mut state = tern_execution::chain::genesis_state(&spec);
    let mut nonce = 0;
    for b in &a[..common] {
        let senders = tern_consensus::recover_senders(&b.body.transactions).unwrap();
        let executed = tern_execution::execute_block(&spec, &state, b, &senders, signer).unwrap();
        state.apply(&executed.changes);
        state.block_hashes.insert(b.header.number, b.header.hash_slow());
        nonce += b.body.transactions.len() as u64;
    }
    let parent = &a[common - 1].header;
    let branch = tern_execution::chain::executed_chain(
        &spec,
        &[key],
        (parent.hash_slow(), parent),
        &mut state,
        extra,
        txs,
        (&key, nonce),
    )
    .unwrap();
    a[..common].iter().cloned().chain(branch).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_across_blocks_with_transactions_leaves_the_state_of_a_fresh_sync() {
    // A: 20 blocks of 2 transfers. B: A's first 10, then 15 blocks of 5 transfers
    // (heavier: 25 in-turn blocks against 20).
    let a = tern_node::testing::dev_chain(20, 2);
    let b = fork_of(&a, 10, 15, 5);
    let server_a = Node::start(config(prefilled_with("reorg-a", &a), vec![], false)).await.unwrap();
    let mut full =
        Node::start(config(dir("reorg-full"), vec![server_a.network.local_enode()], false))
            .await
            .unwrap();
    wait_head(&mut full, 20).await;
    assert_eq!(full.store.best_block().unwrap().1, a[19].header.hash_slow());
    // B's server dials the fullnode, which switches to the heavier branch.
    let b_dir = prefilled_with("reorg-b", &b);
    let server_b =
        Node::start(config(b_dir, vec![full.network.local_enode()], false)).await.unwrap();
    wait_head(&mut full, 25).await;
    let (best, hash) = full.store.best_block().unwrap();
    assert_eq!((best, hash), (25, b[24].header.hash_slow()), "on branch B");
    // A fresh fullnode that only ever saw B.
    let mut fresh =
        Node::start(config(dir("reorg-fresh"), vec![server_b.network.local_enode()], false))
            .await
            .unwrap();
    wait_head(&mut fresh, 25).await;
    let (x, y) = (full.store.state().unwrap(), fresh.store.state().unwrap());
    assert_eq!(x.state_root().unwrap(), b[24].header.state_root, "rehashed from scratch");
    assert_eq!(x.state_root().unwrap(), y.state_root().unwrap());
    use tern_storage::StateRead;
    let signer = tern_consensus::address_of(&tern_node::testing::dev_key());
    for address in (0..5).map(tern_consensus::chain_gen::transfer_recipient).chain([signer]) {
        assert_eq!(x.account(address).unwrap(), y.account(address).unwrap(), "{address}");
    }
    for n in 11..=25 {
        assert_eq!(full.store.receipts(n).unwrap(), fresh.store.receipts(n).unwrap(), "{n}");
    }
    drop((x, y));
    fresh.stop().await.unwrap();
    server_b.stop().await.unwrap();
    server_a.stop().await.unwrap();
    full.stop().await.unwrap();
}
