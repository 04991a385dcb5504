//! Encoding vectors (EIP-2481) and round-trip tests for every message type.

use crate::*;
use alloy_consensus::{
    Block, BlockBody, Eip658Value, Header, Receipt, ReceiptEnvelope, ReceiptWithBloom, Signed,
    TxEip1559, TxEip2930, TxEip4844, TxEip4844Variant, TxEip7702, TxEnvelope, TxLegacy,
};
use alloy_eip2124::{ForkHash, ForkId};
use alloy_eips::{eip1898::HashOrNumber, eip2930::AccessList, eip4895::Withdrawal};
use alloy_primitives::{Address, Bytes, Log, LogData, Signature, TxKind, B256, U256};

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.trim_start_matches("0x")).unwrap()
}

fn roundtrip(version: EthVersion, msg: &EthMessage) {
    let payload = msg.payload();
    let decoded =
        EthMessage::decode(version, msg.id(), &payload).unwrap_or_else(|e| panic!("{msg:?}: {e}"));
    assert_eq!(&decoded, msg);
}

/// Decodes `rlp` as message `id`, checks it re-encodes to the same bytes, returns it.
fn vector(id: u8, rlp: &str) -> EthMessage {
    let bytes = unhex(rlp);
    let msg = EthMessage::decode(EthVersion::Eth68, id, &bytes).unwrap();
    assert_eq!(msg.payload().to_vec(), bytes, "re-encoding of {msg:?}");
    msg
}

// ---- EIP-2481 test cases (https://eips.ethereum.org/EIPS/eip-2481#test-cases) ----

const EMPTY_HEADER_RLP: &str = "f901f9a00000000000000000000000000000000000000000000000000000000000000000a00000000000000000000000000000000000000000000000000000000000000000940000000000000000000000000000000000000000a00000000000000000000000000000000000000000000000000000000000000000a00000000000000000000000000000000000000000000000000000000000000000a00000000000000000000000000000000000000000000000000000000000000000b90100000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000008208ae820d0582115c8215b3821a0a827788a00000000000000000000000000000000000000000000000000000000000000000880000000000000000";
const TWO_LEGACY_TXS: &str = "f867088504a817c8088302e2489435353535353535353535353535353535353535358202008025a064b1702d9298fee62dfeccc57d322a463ad55ca201256d01f62b45b2e1c21c12a064b1702d9298fee62dfeccc57d322a463ad55ca201256d01f62b45b2e1c21c10f867098504a817c809830334509435353535353535353535353535353535353535358202d98025a052f8f61201b2b11a78d6e866abc9c3db2ae8631fa656bfe5cb53668255367afba052f8f61201b2b11a78d6e866abc9c3db2ae8631fa656bfe5cb53668255367afb";
const TWO_HASHES: &str = "f842a000000000000000000000000000000000000000000000000000000000deadc0dea000000000000000000000000000000000000000000000000000000000feedbeef";

#[test]
fn eip2481_get_block_headers() {
    let EthMessage::GetBlockHeaders(m) = vector(
        id::GET_BLOCK_HEADERS,
        "e8820457e4a000000000000000000000000000000000000000000000000000000000deadc0de050580",
    ) else {
        panic!()
    };
    assert_eq!(m.request_id, 1111);
    assert_eq!(m.message.start, HashOrNumber::Hash(B256::with_last_byte(0xde) | b256_deadc0de()));
    assert_eq!((m.message.limit, m.message.skip, m.message.reverse), (5, 5, false));
    let EthMessage::GetBlockHeaders(m) = vector(id::GET_BLOCK_HEADERS, "ca820457c682270f050580")
    else {
        panic!()
    };
    assert_eq!(m.message.start, HashOrNumber::Number(9999));
}

fn b256_deadc0de() -> B256 {
    let mut b = B256::ZERO;
    b[28..].copy_from_slice(&[0xde, 0xad, 0xc0, 0xde]);
    b
}

#[test]
fn eip2481_block_headers() {
    let EthMessage::BlockHeaders(m) =
        vector(id::BLOCK_HEADERS, &format!("f90202820457f901fc{EMPTY_HEADER_RLP}"))
    else {
        panic!()
    };
    let h = &m.message.0[0];
    assert_eq!(
        (h.difficulty, h.number, h.gas_limit, h.gas_used),
        (U256::from(0x8ae), 0xd05, 0x115c, 0x15b3)
    );
    assert_eq!((h.timestamp, h.extra_data.to_vec()), (0x1a0a, vec![0x77, 0x88]));
    assert_eq!(
        h.hash_slow(),
        "0x8c2f2af15b7b563b6ab1e09bed0e9caade7ed730aec98b70a993597a797579a9"
            .parse::<B256>()
            .unwrap()
    );
}

#[test]
fn eip2481_hash_lists() {
    for id in [id::GET_BLOCK_BODIES, id::GET_RECEIPTS, id::GET_POOLED_TRANSACTIONS] {
        let msg = vector(id, &format!("f847820457{TWO_HASHES}"));
        let hashes = match msg {
            EthMessage::GetBlockBodies(m) => m.message.0,
            EthMessage::GetReceipts(m) => m.message.0,
            EthMessage::GetPooledTransactions(m) => m.message.0,
            other => panic!("{other:?}"),
        };
        assert_eq!(hashes[0], b256_deadc0de());
        assert_eq!(hashes.len(), 2);
    }
}

#[test]
fn eip2481_block_bodies_and_pooled_transactions() {
    let EthMessage::BlockBodies(m) = vector(
        id::BLOCK_BODIES,
        &format!(
            "f902dc820457f902d6f902d3f8d2{TWO_LEGACY_TXS}f901fcf901f9{}",
            &EMPTY_HEADER_RLP[6..]
        ),
    ) else {
        panic!()
    };
    let body = &m.message.0[0];
    assert_eq!((body.transactions.len(), body.ommers.len()), (2, 1));
    assert_eq!(
        *body.transactions[0].tx_hash(),
        "0x588df025c4c2d757d3e314bd3dfbfe352687324e6b8557ad1731585e96928aed"
            .parse::<B256>()
            .unwrap()
    );
    let EthMessage::PooledTransactions(m) =
        vector(id::POOLED_TRANSACTIONS, &format!("f8d7820457f8d2{TWO_LEGACY_TXS}"))
    else {
        panic!()
    };
    assert_eq!(
        *m.message.0[1].hash(),
        "0xf39c7dac06a9f3abf09faf5e30439a349d3717611b3ed337cd52b0d192bc72da"
            .parse::<B256>()
            .unwrap()
    );
}

#[test]
fn eip2481_receipts() {
    // The bloom (256 zero bytes) is spelled out by `repeat`.
    let rlp = format!(
        "f90172820457f9016cf90169f901668001b90100{}{}",
        "00".repeat(256),
        "f85ff85d940000000000000000000000000000000000000011f842a0000000000000000000000000000000000000000000000000000000000000deada0000000000000000000000000000000000000000000000000000000000000beef830100ff"
    );
    let EthMessage::Receipts68(m) = vector(id::RECEIPTS, &rlp) else { panic!() };
    let ReceiptEnvelope::Legacy(r) = &m.message.0[0][0] else { panic!() };
    assert_eq!(r.receipt.cumulative_gas_used, 1);
    assert_eq!(r.receipt.logs[0].address, Address::with_last_byte(0x11));
    assert_eq!(r.receipt.logs[0].data.data.to_vec(), vec![0x01, 0x00, 0xff]);
    // The same bytes are not an eth/69 Receipts message (bloom-less form).
    assert!(EthMessage::decode(EthVersion::Eth69, id::RECEIPTS, &unhex(&rlp)).is_err());
}

// ---- version gating and malformed input ----

#[test]
fn gating_and_malformed() {
    let range = EthMessage::BlockRangeUpdate(BlockRangeUpdate {
        earliest: 1,
        latest: 9,
        latest_hash: B256::ZERO,
    });
    roundtrip(EthVersion::Eth69, &range);
    assert!(matches!(
        EthMessage::decode(EthVersion::Eth68, id::BLOCK_RANGE_UPDATE, &range.payload()),
        Err(EthError::UnknownMessage { id: 0x11, .. })
    ));
    let bad = EthMessage::BlockRangeUpdate(BlockRangeUpdate {
        earliest: 10,
        latest: 9,
        latest_hash: B256::ZERO,
    });
    assert!(matches!(
        EthMessage::decode(EthVersion::Eth69, id::BLOCK_RANGE_UPDATE, &bad.payload()),
        Err(EthError::InvalidBlockRange { earliest: 10, latest: 9 })
    ));
    let uneven = EthMessage::NewPooledTransactionHashes(NewPooledTransactionHashes {
        types: Bytes::from(vec![2, 2]),
        sizes: vec![100],
        hashes: vec![B256::ZERO, B256::ZERO],
    });
    assert!(matches!(
        EthMessage::decode(EthVersion::Eth68, id::NEW_POOLED_TRANSACTION_HASHES, &uneven.payload()),
        Err(EthError::InvalidAnnouncement { types: 2, sizes: 1, hashes: 2 })
    ));
    let mut trailing = range.payload().to_vec();
    trailing.push(0x80);
    assert!(EthMessage::decode(EthVersion::Eth69, id::BLOCK_RANGE_UPDATE, &trailing).is_err());
    assert!(matches!(
        EthMessage::decode(EthVersion::Eth69, 0x0b, &[0xc0]),
        Err(EthError::UnknownMessage { id: 0x0b, .. })
    ));
    // Status decodes in the form of the negotiated version only.
    let s69 = EthMessage::Status(Status::Eth69(status69()));
    assert!(EthMessage::decode(EthVersion::Eth68, id::STATUS, &s69.payload()).is_err());
    assert!(!s69.is_valid_for(EthVersion::Eth68));
}

// ---- round trips with generated values ----

/// A small deterministic generator (xorshift) so failures are reproducible.
struct Gen(u64);
impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn b256(&mut self) -> B256 {
        let mut b = [0u8; 32];
        b.iter_mut().for_each(|x| *x = self.next() as u8);
        B256::from(b)
    }
    fn address(&mut self) -> Address {
        Address::from_slice(&self.b256()[..20])
    }
    fn bytes(&mut self, max: u64) -> Bytes {
        (0..self.below(max)).map(|_| self.next() as u8).collect::<Vec<_>>().into()
    }
    fn u256(&mut self) -> U256 {
        U256::from(self.next()) << (self.below(4) * 64)
    }
    fn signature(&mut self) -> Signature {
        Signature::new(
            U256::from(self.next()) + U256::from(1),
            U256::from(self.next()) + U256::from(1),
            self.next().is_multiple_of(2),
        )
    }
    fn header(&mut self) -> Header {
        let london = self.next().is_multiple_of(2);
        let cancun = london && self.next().is_multiple_of(2);
        Header {
            parent_hash: self.b256(),
            beneficiary: self.address(),
            state_root: self.b256(),
            difficulty: self.u256(),
            number: self.next() >> 20,
            gas_limit: self.next() >> 30,
            gas_used: self.next() >> 40,
            timestamp: self.next() >> 30,
            extra_data: self.bytes(97),
            base_fee_per_gas: london.then(|| self.next() >> 20),
            withdrawals_root: cancun.then(|| self.b256()),
            blob_gas_used: cancun.then(|| self.next() >> 40),
            excess_blob_gas: cancun.then(|| self.next() >> 40),
            parent_beacon_block_root: cancun.then(|| self.b256()),
            ..Default::default()
        }
    }
    fn tx(&mut self) -> TxEnvelope {
        let sig = self.signature();
        let to = TxKind::Call(self.address());
        let input = self.bytes(64);
        let chain_id = 1 + self.below(100_000);
        let access_list = AccessList::default();
        match self.below(5) {
            0 => TxEnvelope::Legacy(Signed::new_unhashed(
                TxLegacy {
                    chain_id: Some(chain_id),
                    nonce: self.below(1000),
                    gas_price: 1 + u128::from(self.below(1 << 40)),
                    gas_limit: 21000,
                    to,
                    value: self.u256(),
                    input,
                },
                sig,
            )),
            1 => TxEnvelope::Eip2930(Signed::new_unhashed(
                TxEip2930 {
                    chain_id,
                    nonce: self.below(1000),
                    gas_price: 7,
                    gas_limit: 50000,
                    to,
                    value: self.u256(),
                    access_list,
                    input,
                },
                sig,
            )),
            2 => TxEnvelope::Eip1559(Signed::new_unhashed(
                TxEip1559 {
                    chain_id,
                    nonce: self.below(1000),
                    gas_limit: 90000,
                    max_fee_per_gas: 100,
                    max_priority_fee_per_gas: 3,
                    to,
                    value: self.u256(),
                    access_list,
                    input,
                },
                sig,
            )),
            3 => TxEnvelope::Eip4844(Signed::new_unhashed(
                TxEip4844Variant::TxEip4844(TxEip4844 {
                    chain_id,
                    nonce: 1,
                    gas_limit: 90000,
                    max_fee_per_gas: 100,
                    max_priority_fee_per_gas: 3,
                    to: self.address(),
                    value: self.u256(),
                    access_list,
                    blob_versioned_hashes: vec![self.b256()],
                    max_fee_per_blob_gas: 9,
                    input,
                }),
                sig,
            )),
            _ => TxEnvelope::Eip7702(Signed::new_unhashed(
                TxEip7702 {
                    chain_id,
                    nonce: 1,
                    gas_limit: 90000,
                    max_fee_per_gas: 100,
                    max_priority_fee_per_gas: 3,
                    to: self.address(),
                    value: self.u256(),
                    access_list,
                    authorization_list: vec![],
                    input,
                },
                sig,
            )),
        }
    }
    fn body(&mut self) -> BlockBody<TxEnvelope> {
        BlockBody {
            transactions: (0..self.below(4)).map(|_| self.tx()).collect(),
            ommers: (0..self.below(2)).map(|_| self.header()).collect(),
            withdrawals: self.next().is_multiple_of(2).then(|| {
                vec![Withdrawal {
                    index: 1,
                    validator_index: 2,
                    address: self.address(),
                    amount: 3,
                }]
                .into()
            }),
        }
    }
    fn log(&mut self) -> Log {
        Log {
            address: self.address(),
            data: LogData::new_unchecked(vec![self.b256()], self.bytes(40)),
        }
    }
}

fn status69() -> Status69 {
    Status69 {
        version: 69,
        network_id: 1337,
        genesis: B256::repeat_byte(1),
        fork_id: ForkId { hash: ForkHash([1, 2, 3, 4]), next: 0 },
        earliest: 0,
        latest: 100,
        latest_hash: B256::repeat_byte(2),
    }
}

#[test]
fn every_message_round_trips() {
    let mut g = Gen(0x9e3779b97f4a7c15);
    for round in 0..50u64 {
        let rid = g.next();
        let status68 = Status68 {
            version: 68,
            network_id: g.next(),
            total_difficulty: g.u256(),
            best_hash: g.b256(),
            genesis: g.b256(),
            fork_id: ForkId { hash: ForkHash((g.next() as u32).to_be_bytes()), next: g.next() },
        };
        let n = g.below(5) as usize;
        let common = vec![
            EthMessage::NewBlockHashes(NewBlockHashes(
                (0..n).map(|_| BlockHashNumber { hash: g.b256(), number: g.next() }).collect(),
            )),
            EthMessage::Transactions(Transactions((0..n).map(|_| g.tx()).collect())),
            EthMessage::GetBlockHeaders(RequestPair {
                request_id: rid,
                message: GetBlockHeaders {
                    start: if round % 2 == 0 {
                        HashOrNumber::Number(g.next())
                    } else {
                        HashOrNumber::Hash(g.b256())
                    },
                    limit: g.below(2048),
                    skip: g.below(10),
                    reverse: round % 3 == 0,
                },
            }),
            EthMessage::BlockHeaders(RequestPair {
                request_id: rid,
                message: BlockHeaders((0..n).map(|_| g.header()).collect()),
            }),
            EthMessage::GetBlockBodies(RequestPair {
                request_id: rid,
                message: GetBlockBodies((0..n).map(|_| g.b256()).collect()),
            }),
            EthMessage::BlockBodies(RequestPair {
                request_id: rid,
                message: BlockBodies((0..n).map(|_| g.body()).collect()),
            }),
            EthMessage::NewBlock(Box::new(NewBlock {
                block: Block { header: g.header(), body: g.body() },
                td: g.u256(),
            })),
            EthMessage::NewPooledTransactionHashes(NewPooledTransactionHashes {
                types: (0..n).map(|i| i as u8 % 4).collect::<Vec<_>>().into(),
                sizes: (0..n).map(|_| g.next() as u32).collect(),
                hashes: (0..n).map(|_| g.b256()).collect(),
            }),
            EthMessage::GetPooledTransactions(RequestPair {
                request_id: rid,
                message: GetPooledTransactions((0..n).map(|_| g.b256()).collect()),
            }),
            EthMessage::GetReceipts(RequestPair {
                request_id: rid,
                message: GetReceipts((0..n).map(|_| g.b256()).collect()),
            }),
        ];
        for msg in &common {
            roundtrip(EthVersion::Eth68, msg);
            roundtrip(EthVersion::Eth69, msg);
        }
        roundtrip(EthVersion::Eth68, &EthMessage::Status(Status::Eth68(status68)));
        let mut s69 = status69();
        s69.latest = g.next();
        roundtrip(EthVersion::Eth69, &EthMessage::Status(Status::Eth69(s69)));
        let receipts68 = Receipts68(
            (0..n)
                .map(|_| {
                    (0..g.below(3))
                        .map(|_| {
                            let receipt = Receipt {
                                status: Eip658Value::Eip658(g.next().is_multiple_of(2)),
                                cumulative_gas_used: g.next() >> 20,
                                logs: (0..g.below(3)).map(|_| g.log()).collect(),
                            };
                            let with_bloom = ReceiptWithBloom::from(receipt);
                            if g.next().is_multiple_of(2) {
                                ReceiptEnvelope::Legacy(with_bloom)
                            } else {
                                ReceiptEnvelope::Eip1559(with_bloom)
                            }
                        })
                        .collect()
                })
                .collect(),
        );
        roundtrip(
            EthVersion::Eth68,
            &EthMessage::Receipts68(RequestPair { request_id: rid, message: receipts68 }),
        );
        let receipts69 = Receipts69(
            (0..n)
                .map(|_| {
                    (0..g.below(3))
                        .map(|_| Receipt69 {
                            tx_type: g.below(5) as u8,
                            status: if g.next().is_multiple_of(5) {
                                Eip658Value::PostState(g.b256())
                            } else {
                                Eip658Value::Eip658(g.next().is_multiple_of(2))
                            },
                            cumulative_gas_used: g.next() >> 20,
                            logs: (0..g.below(3)).map(|_| g.log()).collect(),
                        })
                        .collect()
                })
                .collect(),
        );
        roundtrip(
            EthVersion::Eth69,
            &EthMessage::Receipts69(RequestPair { request_id: rid, message: receipts69 }),
        );
        let earliest = g.below(1000);
        roundtrip(
            EthVersion::Eth69,
            &EthMessage::BlockRangeUpdate(BlockRangeUpdate {
                earliest,
                latest: earliest + g.below(1000),
                latest_hash: g.b256(),
            }),
        );
    }
}

#[test]
fn pooled_transactions_round_trip() {
    // PooledTransactions reuses the EIP-2481 legacy transactions plus generated typed ones
    // (without blob sidecars).
    let mut g = Gen(42);
    let txs: Vec<PooledTransaction> = (0..20)
        .map(|_| g.tx())
        .filter_map(|tx| match tx {
            TxEnvelope::Legacy(t) => Some(PooledTransaction::Legacy(t)),
            TxEnvelope::Eip2930(t) => Some(PooledTransaction::Eip2930(t)),
            TxEnvelope::Eip1559(t) => Some(PooledTransaction::Eip1559(t)),
            TxEnvelope::Eip7702(t) => Some(PooledTransaction::Eip7702(t)),
            _ => None,
        })
        .collect();
    let msg = EthMessage::PooledTransactions(RequestPair {
        request_id: 7,
        message: PooledTransactions(txs),
    });
    roundtrip(EthVersion::Eth68, &msg);
}

/// eth/70 (EIP-7975): GetReceipts carries the first block's receipt index and Receipts the
/// incomplete flag, flat in the request list; eth/69's forms do not decode on eth/70.
#[test]
fn eth70_receipt_paging_messages() {
    let get = EthMessage::GetReceipts70(GetReceipts70 {
        request_id: 7,
        first_block_receipt_index: 3,
        hashes: vec![B256::repeat_byte(1)],
    });
    // [7, 3, [hash]]
    let expected = format!("e40703e1a0{}", "01".repeat(32));
    assert_eq!(hex::encode(get.payload()), expected);
    roundtrip(EthVersion::Eth70, &get);
    assert!(!get.is_valid_for(EthVersion::Eth69));
    let receipt =
        Receipt69 { tx_type: 2, status: true.into(), cumulative_gas_used: 21_000, logs: vec![] };
    let page = EthMessage::Receipts70(Receipts70 {
        request_id: 7,
        last_block_incomplete: true,
        receipts: vec![vec![receipt]],
    });
    // [7, 1, [[[2, 1, 21000, []]]]]
    assert_eq!(hex::encode(page.payload()), "cb0701c8c7c60201825208c0");
    roundtrip(EthVersion::Eth70, &page);
    // The eth/69 forms are not eth/70's.
    let old = EthMessage::GetReceipts(RequestPair { request_id: 7, message: GetReceipts(vec![]) });
    assert!(EthMessage::decode(EthVersion::Eth70, id::GET_RECEIPTS, &old.payload()).is_err());
    assert!(!old.is_valid_for(EthVersion::Eth70));
    // eth/70 keeps eth/69's Status and BlockRangeUpdate.
    let range = EthMessage::BlockRangeUpdate(BlockRangeUpdate {
        earliest: 0,
        latest: 1,
        latest_hash: B256::ZERO,
    });
    roundtrip(EthVersion::Eth70, &range);
}
