//! A Clique chain passing from London to Shanghai, Cancun and Prague at timestamps, as
//! `tern node` processes: a contract using PUSH0 cannot be created before Shanghai and can
//! after; its TSTORE/TLOAD/MCOPY code runs from Cancun; from Prague an EIP-7702
//! transaction delegates an account to it; a fullnode executes the same chain to the same
//! roots.

mod common;
use alloy_consensus::{TxEip1559, TxEip7702, TxEnvelope};
use alloy_eips::{eip2718::Encodable2718, eip7702::Authorization};
use alloy_primitives::{hex, Address, Bytes, Signature, TxKind, U256};
use common::*;
use secp256k1::{Message, SecretKey, SECP256K1};
use serde_json::json;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tern_chainspec::{ChainSpec, DEV_VALIDATOR_KEY};
use tern_consensus::{address_of, chain_gen::sign_tx};

/// Runtime: `tstore(0, 42)`, `mstore(0, tload(0))`, `mcopy(32, 0, 32)`,
/// `sstore(0, mload(32))` — PUSH0, TSTORE, TLOAD and MCOPY in 20 bytes.
const RUNTIME: &str = "602a5f5d5f5c5f5260205f60205e6020515f5500";
/// Init code before the runtime: PUSH1 20, DUP1, PUSH1 9, PUSH0, CODECOPY, PUSH0, RETURN
/// (returns the 20 bytes after its own 9).
const INIT_PREFIX: &str = "60148060095f395ff3";

fn hex_u64(v: &serde_json::Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Chain {
    port: String,
    key: SecretKey,
    chain_id: u64,
    nonce: u64,
}

impl Chain {
    fn head_timestamp(&self) -> u64 {
        rpc(&self.port, "eth_getBlockByNumber", json!(["latest", false]))
            .map_or(0, |b| hex_u64(&b["timestamp"]))
    }

    fn wait_until(&self, timestamp: u64) {
        wait_for("the fork's timestamp", || (self.head_timestamp() >= timestamp).then_some(()));
    }

    /// Sends `tx` signed by the dev key; waits for its receipt: (status, block timestamp).
    fn send(&mut self, tx: TxEnvelope) -> (bool, u64, serde_json::Value) {
        self.nonce += 1;
        let raw = format!("0x{}", hex::encode(tx.encoded_2718()));
        let hash = rpc(&self.port, "eth_sendRawTransaction", json!([raw]))
            .unwrap_or_else(|| panic!("transaction refused: {tx:?}"));
        let receipt = wait_for("the receipt", || {
            rpc(&self.port, "eth_getTransactionReceipt", json!([hash])).filter(|r| !r.is_null())
        });
        let block =
            rpc(&self.port, "eth_getBlockByHash", json!([receipt["blockHash"], false])).unwrap();
        (hex_u64(&receipt["status"]) == 1, hex_u64(&block["timestamp"]), receipt)
    }

    fn eip1559(&self, to: TxKind, input: Bytes) -> TxEip1559 {
        TxEip1559 {
            chain_id: self.chain_id,
            nonce: self.nonce,
            gas_limit: 200_000,
            max_fee_per_gas: 100_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            to,
            input,
            ..Default::default()
        }
    }

    fn create(&mut self) -> (bool, u64, Address) {
        let tx = self.eip1559(
            TxKind::Create,
            hex::decode(format!("{INIT_PREFIX}{RUNTIME}")).unwrap().into(),
        );
        let address = address_of(&self.key).create(self.nonce);
        let (ok, at, _) = self.send(sign_tx(tx, &self.key).into());
        (ok, at, address)
    }
}

fn storage_at(port: &str, address: Address) -> U256 {
    let v = rpc(port, "eth_getStorageAt", json!([address, "0x0", "latest"])).unwrap();
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn a_clique_chain_passes_shanghai_cancun_and_prague_and_runs_their_opcodes() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let key =
        SecretKey::from_byte_array(hex::decode(DEV_VALIDATOR_KEY).unwrap().try_into().unwrap())
            .unwrap();
    let mut genesis = ChainSpec::clique_dev(&[address_of(&key)]).genesis;
    genesis.timestamp = now;
    genesis.config.clique.as_mut().unwrap().period = Some(1);
    let (shanghai, cancun, prague) = (now + 15, now + 25, now + 35);
    genesis.config.shanghai_time = Some(shanghai);
    genesis.config.cancun_time = Some(cancun);
    genesis.config.prague_time = Some(prague);
    let d = dir("forks-genesis");
    std::fs::create_dir_all(&d).unwrap();
    let genesis_path = d.join("genesis.json");
    std::fs::write(&genesis_path, serde_json::to_string(&genesis).unwrap()).unwrap();
    let chain_arg = genesis_path.to_str().unwrap().to_string();

    let vdir = dir("forks-validator");
    std::fs::create_dir_all(&vdir).unwrap();
    let key_file = vdir.join("validator.key");
    std::fs::write(&key_file, DEV_VALIDATOR_KEY).unwrap();
    let (_v, vlog, vport) = node_with_rpc(
        &vdir,
        &[
            "--chain",
            &chain_arg,
            "--enable-consensus",
            "--validator-key",
            key_file.to_str().unwrap(),
        ],
    );
    let enode = enode_of(&vlog);
    let (_f, _, fport) =
        node_with_rpc(&dir("forks-full"), &["--chain", &chain_arg, "--bootnodes", &enode]);
    let mut chain = Chain { port: vport.clone(), key, chain_id: genesis.config.chain_id, nonce: 0 };

    // London: PUSH0 is an invalid opcode, so the creation fails (if it made it in time).
    let (ok, at, _) = chain.create();
    assert_eq!(ok, at >= shanghai, "a PUSH0 contract created at {at} (Shanghai at {shanghai})");
    // Shanghai: it is created, but its TSTORE/MCOPY code cannot run yet.
    chain.wait_until(shanghai);
    let (ok, _, contract) = chain.create();
    assert!(ok, "created after Shanghai");
    let code = rpc(&vport, "eth_getCode", json!([contract, "latest"])).unwrap();
    assert_eq!(code, format!("0x{RUNTIME}"));
    let tx = chain.eip1559(TxKind::Call(contract), Bytes::new());
    let (ok, at, _) = chain.send(sign_tx(tx, &key).into());
    assert_eq!(ok, at >= cancun, "TSTORE/MCOPY ran at {at} (Cancun at {cancun})");
    // Cancun: it runs and stores 42.
    chain.wait_until(cancun);
    let tx = chain.eip1559(TxKind::Call(contract), Bytes::new());
    let (ok, _, _) = chain.send(sign_tx(tx, &key).into());
    assert!(ok, "the call runs after Cancun");
    assert_eq!(storage_at(&vport, contract), U256::from(42));

    // Prague: an account delegates to the contract (EIP-7702) and runs its code.
    chain.wait_until(prague);
    let authority = SecretKey::from_byte_array([0x77; 32]).unwrap();
    let auth = Authorization { chain_id: U256::from(chain.chain_id), address: contract, nonce: 0 };
    let (rec, sig) = SECP256K1
        .sign_ecdsa_recoverable(Message::from_digest(auth.signature_hash().0), &authority)
        .serialize_compact();
    let signed = auth.into_signed(Signature::from_bytes_and_parity(&sig, i32::from(rec) != 0));
    let tx = TxEip7702 {
        chain_id: chain.chain_id,
        nonce: chain.nonce,
        gas_limit: 200_000,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: address_of(&authority),
        authorization_list: vec![signed],
        ..Default::default()
    };
    let (ok, _, receipt) = chain.send(sign_tx(tx, &key).into());
    assert!(ok, "{receipt}");
    let code = rpc(&vport, "eth_getCode", json!([address_of(&authority), "latest"])).unwrap();
    assert_eq!(code, format!("0xef0100{}", hex::encode(contract)));
    assert_eq!(storage_at(&vport, address_of(&authority)), U256::from(42));

    // The fullnode executed the same chain: same block (so same state root) at the tip,
    // same storage.
    let tip = rpc(&vport, "eth_getBlockByNumber", json!(["latest", false])).unwrap();
    wait_for("the fullnode at the tip", || {
        let b = rpc(&fport, "eth_getBlockByNumber", json!([tip["number"], false]))?;
        (b["hash"] == tip["hash"]).then_some(())
    });
    assert_eq!(storage_at(&fport, address_of(&authority)), U256::from(42));
    assert!(tip["requestsHash"].is_string() && tip["parentBeaconBlockRoot"].is_string(), "{tip}");
}
