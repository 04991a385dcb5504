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
    [Table::PlainAccounts, Table::PlainStorage]
        .into_iter()
        .flat_map(|t| dump_table(store, t).into_iter().map(move |(k, v)| (t.name(), k, v)))
        .collect()
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
    let mut blocks = synthetic_chain((spec.genesis_hash, &spec.genesis_header), 3, 1, 7);
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
    for (i, changes) in changes.iter().enumerate() {
        let receipts = vec![receipt(i as u64 + 1)];
        let predicted = append_rehashed(&store, &mut blocks[i], changes, receipts);
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

/// Appends `block` with `changes` after giving it the state root a full rehash predicts
/// (unwinding checks the state against it) and the best block as parent; checks the
/// incremental root equals it and returns it.
fn append_rehashed(
    store: &ChainStore,
    block: &mut SealedBlock,
    changes: &StateChanges,
    receipts: Vec<ReceiptEnvelope>,
) -> B256 {
    let predicted = store.state().unwrap().state_root_with(changes).unwrap();
    block.block.header.state_root = predicted;
    block.block.header.parent_hash = store.best_block().unwrap().1;
    *block = SealedBlock::seal(block.block.clone());
    let executed = ExecutedBlock { block: block.clone(), changes: changes.clone(), receipts };
    let incremental = store.write_state(|w| {
        w.append(&executed)?;
        w.state_root()
    });
    assert_eq!(incremental.unwrap(), predicted, "block {}", block.block.header.number);
    predicted
}

/// A small deterministic generator for the randomised trie test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random blocks of changes on a state large enough for stored branch nodes at several
/// depths (accounts and one big storage trie): after every block the incremental root
/// equals a full rehash of the plain state, and unwinding brings the tries back (the
/// unwind checks its root against the headers, which carry the rehashed roots).
#[test]
fn incremental_roots_equal_full_rehashes_through_changes_and_unwinds() {
    let spec = ChainSpec::dev();
    let store = ChainStore::init(&tmp("trie"), &spec).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let address = |i: u64| Address::left_padding_from(&(i + 1000).to_be_bytes());
    let big = address(0);
    let account = |rng: &mut Rng| Account {
        nonce: rng.below(5),
        balance: U256::from(rng.below(1 << 40) + 1),
        ..Default::default()
    };
    // Block 1 creates 3,000 accounts and 1,500 slots of one contract; later blocks change,
    // delete and re-create accounts, set and clear slots, and wipe small storages.
    let mut all_changes = Vec::new();
    let first = StateChanges {
        accounts: (0..3000).map(|i| (address(i), Some(account(&mut rng)))).collect(),
        storage: vec![StorageChange {
            address: big,
            wipe: false,
            slots: (0..1500).map(|s| (U256::from(s), U256::from(rng.below(1000) + 1))).collect(),
        }],
        codes: vec![],
    };
    all_changes.push(first);
    for _ in 0..12 {
        let mut accounts = Vec::new();
        for _ in 0..rng.below(300) {
            let i = rng.below(3200);
            let a = if rng.below(6) == 0 { None } else { Some(account(&mut rng)) };
            accounts.push((address(i), a));
        }
        accounts.sort_by_key(|(a, _)| *a);
        accounts.dedup_by_key(|(a, _)| *a);
        // The big contract stays (its storage is only changed).
        accounts.retain(|(a, _)| *a != big);
        let mut slots: Vec<(U256, U256)> = (0..rng.below(200))
            .map(|_| {
                let value = if rng.below(3) == 0 { 0 } else { rng.below(1000) + 1 };
                (U256::from(rng.below(1700)), U256::from(value))
            })
            .collect();
        slots.sort_by_key(|(s, _)| *s);
        slots.dedup_by_key(|(s, _)| *s);
        let mut storage = vec![StorageChange { address: big, wipe: false, slots }];
        // A small contract's storage, sometimes wiped.
        let small = address(1 + rng.below(5));
        if accounts.iter().all(|(a, acc)| *a != small || acc.is_some()) {
            let slots = (0..rng.below(4)).map(|s| (U256::from(s), U256::from(7))).collect();
            storage.push(StorageChange { address: small, wipe: rng.below(2) == 0, slots });
        }
        all_changes.push(StateChanges { accounts, storage, codes: vec![] });
    }
    // Most accounts go (branches collapse into leaves), then new ones fill the gaps.
    let gone = (1..3200).filter(|i| i % 30 != 0).map(|i| (address(i), None)).collect();
    all_changes.push(StateChanges { accounts: gone, ..Default::default() });
    let new = (0..1000).map(|i| (address(5000 + i), Some(account(&mut rng)))).collect();
    all_changes.push(StateChanges { accounts: new, ..Default::default() });
    let mut blocks =
        synthetic_chain((spec.genesis_hash, &spec.genesis_header), all_changes.len(), 0, 3);
    let mut roots = vec![spec.genesis_header.state_root];
    for (i, changes) in all_changes.iter().enumerate() {
        roots.push(append_rehashed(&store, &mut blocks[i], changes, vec![]));
    }
    assert_eq!(roots.iter().collect::<BTreeSet<_>>().len(), roots.len(), "every block changes");
    // Unwind in steps (each checks its root), then replay: the same roots again.
    for target in [14u64, 13, 10, 9, 4, 1] {
        store.unwind_to(target).unwrap();
        assert_eq!(store.state().unwrap().state_root().unwrap(), roots[target as usize]);
    }
    for (i, changes) in all_changes.iter().enumerate().skip(1) {
        let replayed = append_rehashed(&store, &mut blocks[i], changes, vec![]);
        assert_eq!(replayed, roots[i + 1], "replayed block {}", i + 1);
    }
    // The trie kept incrementally is the one built at once from the final state: no
    // node is stale, none missing.
    let fresh = ChainStore::init(&tmp("trie-fresh"), &spec).unwrap();
    let state = store.state().unwrap();
    let mut everything = StateChanges::default();
    for (k, v) in dump_table(&store, Table::PlainAccounts) {
        let account = Account::decode(Table::PlainAccounts, &v).unwrap();
        everything.accounts.push((Address::from_slice(&k), Some(account)));
    }
    let slots = dump_table(&store, Table::PlainStorage);
    everything.storage.push(StorageChange {
        address: big,
        wipe: false,
        slots: slots
            .iter()
            .map(|(k, v)| (U256::from_be_slice(&k[20..]), U256::from_be_slice(v)))
            .collect(),
    });
    assert!(
        slots.iter().all(|(k, _)| k[..20] == big[..]),
        "only the big contract has storage left"
    );
    let mut block = blocks[0].clone();
    block.block.header.state_root = state.state_root().unwrap();
    let block = SealedBlock::seal(block.block);
    let executed = ExecutedBlock { block, changes: everything, receipts: vec![] };
    fresh.write_state(|w| w.append(&executed)).unwrap();
    for t in [Table::HashedAccounts, Table::HashedStorage, Table::AccountTrie, Table::StorageTrie] {
        assert_eq!(dump_table(&store, t), dump_table(&fresh, t), "{}", t.name());
    }
}

fn dump_table(store: &ChainStore, table: Table) -> Vec<(Vec<u8>, Vec<u8>)> {
    store
        .ro(|txn| {
            let mut rows = Vec::new();
            let mut c = txn.cursor(store.db(table))?;
            let mut next = c.first::<Vec<u8>, Vec<u8>>()?;
            while let Some(row) = next {
                rows.push(row);
                next = c.next::<Vec<u8>, Vec<u8>>()?;
            }
            Ok(rows)
        })
        .unwrap()
}

#[test]
fn historical_reads_follow_the_change_sets_and_proofs_verify_against_the_root() {
    let spec = ChainSpec::dev();
    let store = ChainStore::init(&tmp("history"), &spec).unwrap();
    let mut blocks = synthetic_chain((spec.genesis_hash, &spec.genesis_header), 3, 1, 9);
    let (a, b) = (Address::repeat_byte(0xa), Address::repeat_byte(0xb));
    let code = Bytes::from_static(&[0x60, 0x00, 0x55]);
    let contract = Account { nonce: 1, balance: U256::from(5), code_hash: keccak256(&code) };
    let slots = |pairs: &[(u64, u64)]| {
        pairs.iter().map(|(k, v)| (U256::from(*k), U256::from(*v))).collect::<Vec<_>>()
    };
    let changes = [
        StateChanges {
            accounts: vec![(a, Some(contract))],
            storage: vec![StorageChange {
                address: a,
                wipe: false,
                slots: slots(&[(1, 10), (2, 20)]),
            }],
            codes: vec![(contract.code_hash, code)],
        },
        StateChanges {
            accounts: vec![(b, Some(Account { balance: U256::from(3), ..Default::default() }))],
            storage: vec![StorageChange {
                address: a,
                wipe: false,
                slots: slots(&[(1, 0), (2, 21)]),
            }],
            codes: vec![],
        },
        StateChanges {
            accounts: vec![(a, None)],
            storage: vec![StorageChange { address: a, wipe: true, slots: vec![] }],
            codes: vec![],
        },
    ];
    for (i, c) in changes.iter().enumerate() {
        append_rehashed(&store, &mut blocks[i], c, vec![receipt(1)]);
    }
    // (block, a's account, slot 1, slot 2, b's balance)
    let expected = [
        (0, None, 0, 0, None),
        (1, Some(contract), 10, 20, None),
        (2, Some(contract), 0, 21, Some(3)),
        (3, None, 0, 0, Some(3)),
    ];
    for (n, account, s1, s2, b_balance) in expected {
        let state = store.state_at(n).unwrap();
        assert_eq!(state.account(a).unwrap(), account, "a at {n}");
        assert_eq!(state.storage(a, U256::from(1)).unwrap(), U256::from(s1), "slot 1 at {n}");
        assert_eq!(state.storage(a, U256::from(2)).unwrap(), U256::from(s2), "slot 2 at {n}");
        assert_eq!(state.account(b).unwrap().map(|x| x.balance), b_balance.map(U256::from));
        assert_eq!(state.proof(a, &[]).is_ok(), n == 3, "proofs only of the latest state");
    }
    assert!(matches!(store.state_at(4), Err(StoreError::StateAhead { number: 4, head: 3 })));

    // Unwind to block 2, where a has storage: its proofs verify against the state root.
    store.unwind_to(2).unwrap();
    let root = store.state().unwrap().state_root().unwrap();
    let state = store.state_at(2).unwrap();
    let keys = [B256::from(U256::from(2)), B256::from(U256::from(7))];
    let proof = state.proof(a, &keys).unwrap();
    assert_eq!(proof.account, Some(contract));
    let leaf = TrieAccount {
        nonce: contract.nonce,
        balance: contract.balance,
        storage_root: proof.storage_root,
        code_hash: contract.code_hash,
    };
    let path = |k: &[u8]| alloy_trie::Nibbles::unpack(keccak256(k));
    alloy_trie::proof::verify_proof(
        root,
        path(a.as_slice()),
        Some(alloy_rlp::encode(leaf)),
        &proof.account_proof,
    )
    .expect("the account proof verifies");
    assert_eq!(proof.storage[0].1, U256::from(21));
    alloy_trie::proof::verify_proof(
        proof.storage_root,
        path(keys[0].as_slice()),
        Some(alloy_rlp::encode(U256::from(21))),
        &proof.storage[0].2,
    )
    .expect("the slot's proof verifies");
    assert_eq!(proof.storage[1].1, U256::ZERO);
    alloy_trie::proof::verify_proof(
        proof.storage_root,
        path(keys[1].as_slice()),
        None,
        &proof.storage[1].2,
    )
    .expect("an unset slot's proof shows its absence");
    // An account that does not exist: its absence is proven.
    let missing = state.proof(Address::repeat_byte(0xee), &[]).unwrap();
    assert_eq!(missing.account, None);
    let at = path(Address::repeat_byte(0xee).as_slice());
    alloy_trie::proof::verify_proof(root, at, None, &missing.account_proof).unwrap();
}
