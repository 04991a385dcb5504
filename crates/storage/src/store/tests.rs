use super::*;
use crate::testing::synthetic_chain;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tern-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn genesis_pair(spec: &ChainSpec) -> (B256, &Header) {
    (spec.genesis_hash, &spec.genesis_header)
}

#[test]
fn init_reopen_and_genesis_mismatch() {
    let dir = tmp("init");
    let spec = ChainSpec::dev();
    let store = ChainStore::init(&dir, &spec).unwrap();
    assert_eq!(store.best_block().unwrap(), (0, spec.genesis_hash));
    assert_eq!(store.header(spec.genesis_hash).unwrap().unwrap(), spec.genesis_header);
    assert_eq!(
        store.total_difficulty(spec.genesis_hash).unwrap(),
        Some(spec.genesis_header.difficulty)
    );
    drop(store);
    let store = ChainStore::init(&dir, &spec).unwrap();
    assert_eq!(store.genesis_hash().unwrap(), Some(spec.genesis_hash));
    drop(store);

    let other = spec.clone().with_network_id(5); // same genesis: fine
    ChainStore::init(&dir, &other).unwrap();
    let mut g = spec.genesis.clone();
    g.timestamp += 1;
    let foreign = ChainSpec::from_genesis(g).unwrap();
    let err = ChainStore::init(&dir, &foreign).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::GenesisMismatch { .. }));
    assert!(
        msg.contains(&spec.genesis_hash.to_string())
            && msg.contains(&foreign.genesis_hash.to_string()),
        "{msg}"
    );
    // The refusal harmed nothing.
    assert_eq!(ChainStore::init(&dir, &spec).unwrap().best_block().unwrap().0, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn insert_and_read_everything() {
    let dir = tmp("insert");
    let spec = ChainSpec::dev();
    let store = ChainStore::init(&dir, &spec).unwrap();
    let chain = synthetic_chain(genesis_pair(&spec), 20, 3, 1);
    store.insert_blocks(&chain[..10]).unwrap();
    store.insert_blocks(&chain[10..]).unwrap();
    assert_eq!(store.best_block().unwrap(), (20, chain[19].hash));
    for b in &chain {
        let n = b.block.header.number;
        assert_eq!(store.canonical_hash(n).unwrap(), Some(b.hash));
        assert_eq!(store.block_number(b.hash).unwrap(), Some(n));
        assert_eq!(store.header(b.hash).unwrap().as_ref(), Some(&b.block.header));
        assert_eq!(
            store.header_by_number(n).unwrap().unwrap().hash_slow(),
            b.hash,
            "header hashes to its key"
        );
        assert_eq!(store.body(b.hash).unwrap().as_ref(), Some(&b.block.body));
        assert_eq!(store.body_by_number(n).unwrap().as_ref(), Some(&b.block.body));
        assert_eq!(store.block(b.hash).unwrap().as_ref(), Some(b));
        assert_eq!(store.block_by_number(n).unwrap().as_ref(), Some(b));
        // Genesis difficulty 1, then 2 per block.
        assert_eq!(store.total_difficulty(b.hash).unwrap(), Some(U256::from(1 + 2 * n)));
        for (i, tx) in b.block.body.transactions.iter().enumerate() {
            let (found, loc) = store.transaction(*tx.tx_hash()).unwrap().unwrap();
            assert_eq!(&found, tx);
            assert_eq!(loc, TxLocation { block_number: n, index: i as u32 });
        }
    }
    let range = store.headers_range(18, 10).unwrap();
    assert_eq!(range.iter().map(|h| h.number).collect::<Vec<_>>(), vec![18, 19, 20]);
    assert_eq!(store.headers_range(0, 3).unwrap()[0], spec.genesis_header);
    assert_eq!(store.canonical_hash(21).unwrap(), None);
    assert_eq!(store.block_by_number(21).unwrap(), None);
    assert_eq!(store.transaction(B256::repeat_byte(9)).unwrap(), None);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_batch_that_does_not_extend_is_refused_whole() {
    let dir = tmp("refuse");
    let spec = ChainSpec::dev();
    let store = ChainStore::init(&dir, &spec).unwrap();
    let chain = synthetic_chain(genesis_pair(&spec), 6, 1, 1);
    // A gap inside the batch: blocks 1, 2 are fine, then 4.
    let gapped = [chain[0].clone(), chain[1].clone(), chain[3].clone()];
    let err = store.insert_blocks(&gapped).unwrap_err();
    assert!(matches!(err, StoreError::NotExtending { number: 4, .. }), "{err}");
    assert_eq!(store.best_block().unwrap().0, 0);
    assert_eq!(store.header(chain[0].hash).unwrap(), None, "nothing of the batch was written");
    // Not starting at the best block.
    assert!(store.insert_blocks(&chain[1..]).is_err());
    store.insert_blocks(&chain).unwrap();
    assert_eq!(store.best_block().unwrap().0, 6);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unwind_and_insert_another_branch() {
    let dir = tmp("unwind");
    let spec = ChainSpec::dev();
    let store = ChainStore::init(&dir, &spec).unwrap();
    let a = synthetic_chain(genesis_pair(&spec), 10, 2, 1);
    store.insert_blocks(&a).unwrap();
    assert!(matches!(
        store.unwind_to(11),
        Err(StoreError::UnwindAboveBest { target: 11, best: 10 })
    ));

    let removed = store.unwind_to(5).unwrap();
    assert_eq!(removed, a[5..].iter().rev().map(|b| b.hash).collect::<Vec<_>>());
    assert_eq!(store.best_block().unwrap(), (5, a[4].hash));
    assert_eq!(store.canonical_hash(6).unwrap(), None);
    let orphan_tx = *a[7].block.body.transactions[0].tx_hash();
    assert_eq!(store.transaction(orphan_tx).unwrap(), None);
    assert!(store.transaction(*a[4].block.body.transactions[0].tx_hash()).unwrap().is_some());

    // Branch B from block 5, longer than A.
    let b = synthetic_chain((a[4].hash, &a[4].block.header), 7, 2, 2);
    store.insert_blocks(&b).unwrap();
    assert_eq!(store.best_block().unwrap(), (12, b[6].hash));
    assert_eq!(store.canonical_hash(6).unwrap(), Some(b[0].hash));
    assert_eq!(store.block_by_number(8).unwrap().unwrap(), b[2]);
    // A's blocks are still stored by hash, but not canonical.
    assert_eq!(store.header(a[7].hash).unwrap().unwrap().number, 8);
    assert_eq!(store.transaction(orphan_tx).unwrap(), None);
    let (_, loc) = store.transaction(*b[1].block.body.transactions[1].tx_hash()).unwrap().unwrap();
    assert_eq!(loc, TxLocation { block_number: 7, index: 1 });
    assert_eq!(store.total_difficulty(b[6].hash).unwrap(), Some(U256::from(1 + 2 * 12)));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn corrupted_or_foreign_file_is_a_clear_error() {
    for (name, content) in [("garbage", vec![0x5a; 64 * 1024]), ("empty-ish", b"not mdbx".to_vec())]
    {
        let dir = tmp(name);
        std::fs::create_dir_all(dir.join("db")).unwrap();
        std::fs::write(dir.join("db/mdbx.dat"), &content).unwrap();
        let err = ChainStore::open(&dir).unwrap_err();
        assert!(err.to_string().contains("cannot open the chain store at"), "{err}");
        assert_eq!(std::fs::read(dir.join("db/mdbx.dat")).unwrap(), content, "file untouched");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
