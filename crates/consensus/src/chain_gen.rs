//! A test-chain generator: valid, sealed Clique blocks with signed transactions, and RLP
//! chain files (blocks concatenated, as `geth export` writes them).

use crate::{
    address_of,
    clique::{cast_vote, seal_header, Snapshot, DIFF_IN_TURN, DIFF_NO_TURN},
    expected_base_fee,
};
use alloy_consensus::{
    proofs::calculate_transaction_root, Block, BlockBody, Header, SignableTransaction, TxEip1559,
    TxEnvelope, TxLegacy, EMPTY_OMMER_ROOT_HASH, EMPTY_ROOT_HASH,
};
use alloy_primitives::{Address, Signature, TxKind, B256, U256};
use alloy_rlp::Decodable;
use secp256k1::{Message, SecretKey, SECP256K1};
use std::path::Path;
use tern_chainspec::{ChainSpec, Consensus};

/// Gas of a plain transfer.
const TRANSFER_GAS: u64 = 21_000;

/// The recipient of transfer `i` of each generated block: `0x4242…42ii`, clear of the
/// precompiles (a 21,000-gas call to one runs out of gas and moves nothing).
pub fn transfer_recipient(i: usize) -> Address {
    let mut to = [0x42u8; 20];
    to[19] = i as u8;
    Address::from(to)
}

/// Signs `tx` with `key` (low-s, as libsecp256k1 produces).
pub fn sign_tx<T: SignableTransaction<Signature>>(
    tx: T,
    key: &SecretKey,
) -> alloy_consensus::Signed<T> {
    let hash = tx.signature_hash();
    let (rec_id, sig) =
        SECP256K1.sign_ecdsa_recoverable(Message::from_digest(hash.0), key).serialize_compact();
    let sig = Signature::from_bytes_and_parity(&sig, i32::from(rec_id) != 0);
    tx.into_signed(sig)
}

/// `count` blocks on `parent` (its hash and header) of the chain `spec`, each with
/// `txs_per_block` transfers signed by `sender` (its key and first nonce). On Clique each
/// is sealed in turn by the matching key of `signer_keys`, timestamps `period` apart; after
/// the merge see [`generate_post_merge_chain`] (`signer_keys` unused).
///
/// Panics if a needed signer key is missing or `spec` is proof of work: this is a test
/// tool.
pub fn generate_chain(
    spec: &ChainSpec,
    signer_keys: &[SecretKey],
    parent: (B256, &Header),
    count: usize,
    txs_per_block: usize,
    sender: (&SecretKey, u64),
) -> Vec<Block<TxEnvelope>> {
    let (signers, epoch) = match &spec.consensus {
        Consensus::Clique { signers, epoch, .. } => (signers, epoch),
        Consensus::PostMerge => {
            return generate_post_merge_chain(spec, parent, count, txs_per_block, sender)
        }
        Consensus::ProofOfWork => panic!("generate_chain cannot mine proof-of-work blocks"),
    };
    let snapshot = Snapshot::new(signers.clone(), *epoch);
    let no_votes = |_: u64, _: &Snapshot| None;
    generate_voting_chain(
        spec,
        signer_keys,
        parent,
        snapshot,
        count,
        txs_per_block,
        sender,
        no_votes,
    )
    .0
}

/// Time between generated post-merge blocks: the beacon chain's slot, in seconds.
const POST_MERGE_SLOT: u64 = 12;

/// The fee recipient of generated post-merge blocks.
pub const POST_MERGE_FEE_RECIPIENT: Address = Address::repeat_byte(0xfe);

/// [`generate_chain`] for a post-merge chain: no seal, difficulty and nonce 0, the fee
/// recipient [`POST_MERGE_FEE_RECIPIENT`], PREVRANDAO (mixHash) the hash of the number,
/// timestamps a slot apart.
fn generate_post_merge_chain(
    spec: &ChainSpec,
    parent: (B256, &Header),
    count: usize,
    txs_per_block: usize,
    sender: (&SecretKey, u64),
) -> Vec<Block<TxEnvelope>> {
    let (mut parent_hash, parent) = parent;
    let (sender, mut nonce) = sender;
    let mut parent = parent.clone();
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let number = parent.number + 1;
        let timestamp = parent.timestamp + POST_MERGE_SLOT;
        let transactions = transfers(spec, number, timestamp, txs_per_block, sender, &mut nonce);
        let mut header = Header {
            parent_hash,
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            beneficiary: POST_MERGE_FEE_RECIPIENT,
            state_root: parent.state_root,
            transactions_root: calculate_transaction_root(&transactions),
            receipts_root: EMPTY_ROOT_HASH,
            number,
            gas_limit: parent.gas_limit,
            gas_used: TRANSFER_GAS * txs_per_block as u64,
            timestamp,
            mix_hash: alloy_primitives::keccak256(number.to_be_bytes()),
            ..Default::default()
        };
        header.base_fee_per_gas = expected_base_fee(spec, &header, &parent);
        let withdrawals = crate::builder::set_fork_fields(spec, &mut header, &parent);
        parent_hash = header.hash_slow();
        parent = header.clone();
        out.push(Block { header, body: BlockBody { transactions, ommers: vec![], withdrawals } });
    }
    out
}

/// Like [`generate_chain`], from the signer state `snapshot` after `parent`, and block
/// `number` carrying the vote `vote(number, snapshot)` names (if any). Each block is sealed
/// by its in-turn signer, or out of turn by the first signer that may when the in-turn one
/// signed too recently (after a signer-set change). Returns the blocks and the snapshot
/// after the last.
#[allow(clippy::too_many_arguments)]
pub fn generate_voting_chain(
    spec: &ChainSpec,
    signer_keys: &[SecretKey],
    parent: (B256, &Header),
    mut snapshot: Snapshot,
    count: usize,
    txs_per_block: usize,
    sender: (&SecretKey, u64),
    vote: impl Fn(u64, &Snapshot) -> Option<(Address, bool)>,
) -> (Vec<Block<TxEnvelope>>, Snapshot) {
    let (parent_hash, parent) = parent;
    let (sender, first_nonce) = sender;
    let Consensus::Clique { period, .. } = &spec.consensus else {
        panic!("generate_chain needs a Clique chain spec");
    };
    let keys: Vec<(Address, &SecretKey)> = signer_keys.iter().map(|k| (address_of(k), k)).collect();
    let mut parent = parent.clone();
    let mut parent_hash = parent_hash;
    let mut nonce = first_nonce;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let number = parent.number + 1;
        let timestamp = parent.timestamp + period;
        let n = snapshot.signers().len() as u64;
        let in_turn = snapshot.signers()[(number % n) as usize];
        let signer = if snapshot.signed_recently(number, in_turn).is_none() {
            in_turn
        } else {
            *snapshot
                .signers()
                .iter()
                .find(|s| snapshot.signed_recently(number, **s).is_none())
                .expect("some signer may seal")
        };
        let key = keys
            .iter()
            .find(|(a, _)| *a == signer)
            .map(|(_, k)| *k)
            .expect("in-turn signer key given");
        let transactions = transfers(spec, number, timestamp, txs_per_block, sender, &mut nonce);
        let turn = signer == in_turn;
        let mut header = Header {
            parent_hash,
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            state_root: parent.state_root,
            transactions_root: calculate_transaction_root(&transactions),
            receipts_root: EMPTY_ROOT_HASH,
            difficulty: U256::from(if turn { DIFF_IN_TURN } else { DIFF_NO_TURN }),
            number,
            gas_limit: parent.gas_limit,
            gas_used: TRANSFER_GAS * txs_per_block as u64,
            timestamp,
            extra_data: snapshot.extra_data_for(number),
            ..Default::default()
        };
        header.base_fee_per_gas = expected_base_fee(spec, &header, &parent);
        let withdrawals = crate::builder::set_fork_fields(spec, &mut header, &parent);
        if !number.is_multiple_of(snapshot.epoch()) {
            if let Some(v) = vote(number, &snapshot) {
                cast_vote(&mut header, v);
            }
        }
        seal_header(&mut header, key).expect("extra_data_for leaves room for the seal");
        snapshot.apply(&header, signer);
        parent_hash = header.hash_slow();
        parent = header.clone();
        out.push(Block { header, body: BlockBody { transactions, ommers: vec![], withdrawals } });
    }
    (out, snapshot)
}

/// `count` transfers of 1 wei from `sender`, nonces from `*nonce` (advanced past them), to
/// [`transfer_recipient`]s: EIP-1559 from London, legacy before.
fn transfers(
    spec: &ChainSpec,
    number: u64,
    timestamp: u64,
    count: usize,
    sender: &SecretKey,
    nonce: &mut u64,
) -> Vec<TxEnvelope> {
    let london = spec.is_active("london", number, timestamp);
    (0..count)
        .map(|i| {
            let to = TxKind::Call(transfer_recipient(i));
            *nonce += 1;
            if london {
                TxEnvelope::Eip1559(sign_tx(
                    TxEip1559 {
                        chain_id: spec.chain_id,
                        nonce: *nonce - 1,
                        gas_limit: TRANSFER_GAS,
                        max_fee_per_gas: 100_000_000_000,
                        max_priority_fee_per_gas: 1_000_000_000,
                        to,
                        value: U256::from(1),
                        ..Default::default()
                    },
                    sender,
                ))
            } else {
                TxEnvelope::Legacy(sign_tx(
                    TxLegacy {
                        chain_id: Some(spec.chain_id),
                        nonce: *nonce - 1,
                        gas_price: 1_000_000_000,
                        gas_limit: TRANSFER_GAS,
                        to,
                        value: U256::from(1),
                        ..Default::default()
                    },
                    sender,
                ))
            }
        })
        .collect()
}

/// Writes blocks as concatenated RLP.
pub fn write_chain_file(path: &Path, blocks: &[Block<TxEnvelope>]) -> std::io::Result<()> {
    let mut out = Vec::new();
    for b in blocks {
        alloy_rlp::Encodable::encode(b, &mut out);
    }
    std::fs::write(path, out)
}

/// Reads a file of concatenated RLP blocks.
pub fn read_chain_file(path: &Path) -> std::io::Result<Vec<Block<TxEnvelope>>> {
    let data = std::fs::read(path)?;
    let mut buf = data.as_slice();
    let mut out = Vec::new();
    while !buf.is_empty() {
        let block = Block::<TxEnvelope>::decode(&mut buf).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("block {}: {e}", out.len()),
            )
        })?;
        out.push(block);
    }
    Ok(out)
}
