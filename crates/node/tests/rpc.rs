//! JSON-RPC on a sealing dev node over real HTTP on 127.0.0.1: a transfer sent with
//! `eth_sendRawTransaction` shows in a pending filter, is sealed, has a receipt, moves
//! balances (the state before its block is still readable), shows in a block filter;
//! limits answer with errors, not dropped connections.

use alloy_consensus::TxEnvelope;
use alloy_eips::Encodable2718;
use alloy_primitives::Address;
use serde_json::{json, Value};
use std::net::SocketAddr;
use tern_consensus::address_of;
use tern_node::{
    testing::{dev_key, dev_transfer, node_config, rpc_call, rpc_post},
    Node,
};

const TO: Address = Address::repeat_byte(0x42);

fn transfer(nonce: u64, value: u64) -> TxEnvelope {
    dev_transfer(nonce, TO, value, 1)
}

async fn result(addr: SocketAddr, method: &str, params: Value) -> Value {
    let answer = rpc_call(addr, method, params).await;
    answer.get("result").cloned().unwrap_or_else(|| panic!("{method}: {answer}"))
}

async fn error_code(addr: SocketAddr, method: &str, params: Value) -> i64 {
    let answer = rpc_call(addr, method, params).await;
    answer["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("{method}: want an error, got {answer}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_through_rpc_is_sealed_and_readable_and_limits_answer_with_errors() {
    let datadir = std::env::temp_dir().join(format!("tern-rpc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&datadir);
    let mut config = node_config(datadir.clone(), vec![], true);
    config.http = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.rpc.max_blocks_per_filter = 1;
    config.rpc.max_batch_size = 3;
    config.rpc.gas_cap = 1_000_000;
    let mut node = Node::start(config).await.expect("node starts");
    let addr = node.rpc_addr.expect("RPC served");

    let blocks = result(addr, "eth_newBlockFilter", json!([])).await;
    let pending = result(addr, "eth_newPendingTransactionFilter", json!([])).await;
    let tx = transfer(0, 1_234);
    let raw = format!("0x{}", alloy_primitives::hex::encode(tx.encoded_2718()));
    let hash = result(addr, "eth_sendRawTransaction", json!([raw])).await;
    assert_eq!(hash, json!(tx.tx_hash()));
    let announced = result(addr, "eth_getFilterChanges", json!([pending])).await;
    assert_eq!(announced, json!([tx.tx_hash()]), "the pending filter saw the transaction");
    let pooled = result(addr, "eth_getTransactionByHash", json!([hash])).await;
    assert_eq!(pooled["blockHash"], Value::Null, "pending: in no block yet");
    let next =
        result(addr, "eth_getTransactionCount", json!([address_of(&dev_key()), "pending"])).await;
    assert_eq!(next, json!("0x1"), "the pool's nonce counts for `pending`");

    // Wait on new heads until the receipt is there.
    let receipt = loop {
        let r = result(addr, "eth_getTransactionReceipt", json!([hash])).await;
        if !r.is_null() {
            break r;
        }
        let head = node.sync.progress().head;
        tokio::time::timeout(std::time::Duration::from_secs(60), node.sync.wait_for_head(head + 1))
            .await
            .expect("a block within 60 s");
    };
    assert_eq!(receipt["status"], json!("0x1"));
    assert_eq!(receipt["gasUsed"], json!("0x5208"));
    assert_eq!(receipt["from"], json!(address_of(&dev_key())));
    let number = receipt["blockNumber"].as_str().unwrap().to_string();
    let n = u64::from_str_radix(number.trim_start_matches("0x"), 16).unwrap();
    assert_eq!(result(addr, "eth_getBalance", json!([TO, number])).await, json!("0x4d2"));
    let before = format!("{:#x}", n - 1);
    assert_eq!(result(addr, "eth_getBalance", json!([TO, before])).await, json!("0x0"));
    let changes = result(addr, "eth_getFilterChanges", json!([blocks])).await;
    assert!(
        changes.as_array().unwrap().contains(&receipt["blockHash"]),
        "the block filter reports the transaction's block: {changes}"
    );
    let block = result(addr, "eth_getBlockByNumber", json!([number, true])).await;
    assert_eq!(block["transactions"][0]["hash"], hash);
    let receipts = result(addr, "eth_getBlockReceipts", json!([number])).await;
    assert_eq!(receipts[0], receipt);

    // Calls and estimates on the state: a transfer to an account without code.
    let call = json!({"from": address_of(&dev_key()), "to": TO, "value": "0x1"});
    assert_eq!(result(addr, "eth_estimateGas", json!([call])).await, json!("0x5208"));
    assert_eq!(result(addr, "eth_call", json!([call, "latest"])).await, json!("0x"));

    // Limits: errors, and the server keeps answering.
    let over_cap = json!({"to": TO, "gas": "0x1000000"});
    assert_eq!(error_code(addr, "eth_call", json!([over_cap])).await, -32602, "gas above the cap");
    let wide = json!({"fromBlock": "0x0", "toBlock": number});
    assert_eq!(error_code(addr, "eth_getLogs", json!([wide])).await, -32005, "range over 1 block");
    let one = json!({"fromBlock": number, "toBlock": number});
    assert_eq!(
        result(addr, "eth_getLogs", json!([one])).await,
        json!([]),
        "a transfer logs nothing"
    );
    let beyond = json!({"fromBlock": "0x0", "toBlock": format!("{:#x}", n + 100)});
    assert_eq!(error_code(addr, "eth_getLogs", json!([beyond])).await, -32602);
    let future = format!("{:#x}", n + 1000);
    assert_eq!(error_code(addr, "eth_getBalance", json!([TO, future])).await, -32000);
    assert_eq!(error_code(addr, "eth_getStorageAt", json!([TO, "0x1", "safe"])).await, -39001);
    let call = |id: u64| json!({"jsonrpc": "2.0", "id": id, "method": "eth_chainId", "params": []});
    let batch = rpc_post(addr, &json!([call(1), call(2), call(3)]).to_string()).await;
    assert_eq!(batch.as_array().map(Vec::len), Some(3), "a batch within the limit: {batch}");
    let too_big = rpc_post(addr, &json!([call(1), call(2), call(3), call(4)]).to_string()).await;
    assert!(too_big.to_string().contains("error"), "a batch over the limit is refused: {too_big}");
    let garbage = rpc_post(addr, "{not json").await;
    assert_eq!(garbage["error"]["code"], json!(-32700), "a parse error: {garbage}");
    assert_eq!(result(addr, "eth_uninstallFilter", json!([blocks])).await, json!(true));
    assert_eq!(result(addr, "eth_uninstallFilter", json!([blocks])).await, json!(false));
    assert_eq!(error_code(addr, "eth_getFilterChanges", json!([blocks])).await, -32000);
    assert_eq!(result(addr, "eth_chainId", json!([])).await, json!("0x539"), "still serving");

    node.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&datadir);
}
