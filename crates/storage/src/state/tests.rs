use super::*;
use crate::testing::synthetic_chain;
use alloy_consensus::{Eip658Value, Receipt, ReceiptWithBloom};
use alloy_primitives::{Log, LogData};
use std::path::PathBuf;
use tern_chainspec::ChainSpec;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tern-state-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn testdata(name: &str) -> String {
    let path = format!("{}/../../testdata/genesis/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap()
}

/// Every account and slot, as (table, key, value) rows. Bytecodes are left out: they are
/// addressed by their hash and stay when a block is unwound.
fn dump(store: &ChainStore) -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    store
        .ro(|txn| {
            let mut rows = Vec::new();
            for t in [Table::PlainAccounts, Table::PlainStorage] {
                let mut c = txn.cursor(store.db(t))?;
                let mut next = c.first::<Vec<u8>, Vec<u8>>()?;
                while let Some((k, v)) = next {
                    rows.push((t.name(), k, v));
                    next = c.next::<Vec<u8>, Vec<u8>>()?;
                }
            }
            Ok(rows)
        })
        .unwrap()
}

fn receipt(gas: u64) -> ReceiptEnvelope {
    let log = Log {
        address: Address::repeat_byte(9),
        data: LogData::new_unchecked(vec![], Bytes::from_static(b"x")),
    };
    let r =
        Receipt { status: Eip658Value::Eip658(true), cumulative_gas_used: gas, logs: vec![log] };
    ReceiptEnvelope::Eip1559(ReceiptWithBloom::from(r))
}

#[test]
fn genesis_allocations_hash_to_the_genesis_root() {
    for (name, spec) in [
        ("dev", ChainSpec::dev()),
        ("postmerge", ChainSpec::from_json(&testdata("postmerge-dev.json")).unwrap()),
        ("mainnet", ChainSpec::from_json(&testdata("mainnet.json")).unwrap()),
    ] {
        let store = ChainStore::init(&tmp(name), &spec).unwrap();
        let state = store.state().unwrap();
        assert_eq!(state.state_root().unwrap(), spec.genesis_header.state_root, "{name}");
        let (address, alloc) = spec.genesis.alloc.iter().next().unwrap();
        assert_eq!(state.account(*address).unwrap().unwrap().balance, alloc.balance, "{name}");
        assert_eq!(store.state_number().unwrap(), 0);
    }
    // postmerge-dev.json: reth 2.5.1's root for it (testdata/README.md).
    let spec = ChainSpec::from_json(&testdata("postmerge-dev.json")).unwrap();
    assert_eq!(
        spec.genesis_header.state_root,
        "0xf09d8f7da5bc5036f8dd9536c953e2212390a46fb3e553ece2b7d419131537b1"
            .parse::<B256>()
            .unwrap()
    );
}

#[test]
fn state_changes_unwind_to_exactly_the_state_before() {
    let spec = ChainSpec::dev();
    let store = ChainStore::init(&tmp("unwind"), &spec).unwrap();
    let blocks = synthetic_chain((spec.genesis_hash, &spec.genesis_header), 3, 1, 7);
    let (a, b) = (Address::repeat_byte(0xa), Address::repeat_byte(0xb));
    let signer = *spec.genesis.alloc.keys().next().unwrap();
    let code = Bytes::from_static(&[0x60, 0x00, 0x55]);
    let contract = Account { nonce: 1, balance: U256::from(5), code_hash: keccak256(&code) };
    let slot = |k: u64, v: u64| (U256::from(k), U256::from(v));
    let changes = [
        // 1: a contract with two slots; the signer pays.
        StateChanges {
            accounts: vec![
                (a, Some(contract)),
                (signer, Some(Account { nonce: 1, ..Default::default() })),
            ],
            storage: vec![StorageChange {
                address: a,
                wipe: false,
                slots: vec![slot(1, 10), slot(2, 20)],
            }],
            codes: vec![(contract.code_hash, code.clone())],
        },
        // 2: one slot cleared, one changed, a new account.
        StateChanges {
            accounts: vec![(b, Some(Account { balance: U256::from(3), ..Default::default() }))],
            storage: vec![StorageChange {
                address: a,
                wipe: false,
                slots: vec![slot(1, 0), slot(2, 21)],
            }],
            codes: vec![],
        },
        // 3: the contract destroyed with its storage, b removed.
        StateChanges {
            accounts: vec![(a, None), (b, None)],
            storage: vec![StorageChange { address: a, wipe: true, slots: vec![] }],
            codes: vec![],
        },
    ];
    let mut snapshots = vec![(dump(&store), store.state().unwrap().state_root().unwrap())];
    for (block, changes) in blocks.iter().zip(&changes) {
        let executed = ExecutedBlock {
            block: block.clone(),
            changes: changes.clone(),
            receipts: vec![receipt(block.block.header.number)],
        };
        // The root with the changes, computed without writing them, is the root after.
        let predicted = store.state().unwrap().state_root_with(changes).unwrap();
        store.write_state(|w| w.append(&executed)).unwrap();
        snapshots.push((dump(&store), store.state().unwrap().state_root().unwrap()));
        assert_eq!(predicted, snapshots.last().unwrap().1);
    }
    let state = store.state().unwrap();
    assert_eq!(state.account(a).unwrap(), None);
    assert_eq!(state.storage(a, U256::from(2)).unwrap(), U256::ZERO);
    drop(state);
    assert_eq!(store.receipts(2).unwrap(), vec![receipt(2)]);
    assert_eq!(store.state_number().unwrap(), 3);
    // Each state differs from the one before it, and unwinding restores each exactly.
    for target in (0..3u64).rev() {
        assert_ne!(snapshots[target as usize].1, snapshots[target as usize + 1].1);
        store.unwind_to(target).unwrap();
        let (rows, root) = &snapshots[target as usize];
        assert_eq!(&dump(&store), rows, "state after unwinding to {target}");
        assert_eq!(&store.state().unwrap().state_root().unwrap(), root);
        assert_eq!(store.state_number().unwrap(), target);
        assert!(store.receipts(target + 1).unwrap().is_empty());
    }
    assert_eq!(snapshots[0].1, spec.genesis_header.state_root);
    // Mid-state reads: block 2's state had slot 2 = 21 and slot 1 cleared.
    let executed = |i: usize| ExecutedBlock {
        block: blocks[i].clone(),
        changes: changes[i].clone(),
        receipts: vec![],
    };
    store
        .write_state(|w| {
            w.append(&executed(0))?;
            w.append(&executed(1))?;
            assert_eq!(w.storage(a, U256::from(2))?, U256::from(21));
            assert_eq!(w.storage(a, U256::from(1))?, U256::ZERO);
            assert_eq!(w.code(contract.code_hash)?, Some(code.clone()));
            assert_eq!(w.block_hash(2)?, Some(blocks[1].hash));
            Ok::<_, StoreError>(())
        })
        .unwrap();
    assert_eq!(dump(&store), snapshots[2].0);
}

#[test]
fn state_cannot_follow_blocks_stored_without_it() {
    let spec = ChainSpec::dev();
    let store = ChainStore::init(&tmp("lag"), &spec).unwrap();
    let blocks = synthetic_chain((spec.genesis_hash, &spec.genesis_header), 2, 0, 1);
    store.insert_blocks(&blocks[..1]).unwrap();
    assert_eq!(store.state_number().unwrap(), 0);
    let executed = ExecutedBlock {
        block: blocks[1].clone(),
        changes: StateChanges::default(),
        receipts: vec![],
    };
    let err = store.write_state(|w| w.append(&executed)).unwrap_err();
    assert!(matches!(err, StoreError::StateOutOfOrder { got: 2, at: 0 }), "{err}");
    // A failed write leaves nothing behind.
    assert_eq!(store.best_block().unwrap().0, 1);
    let err = store.write_state(|_| Err::<(), _>(StoreError::NotInitialised)).unwrap_err();
    assert!(matches!(err, StoreError::StateOutOfOrder { .. }));
}
