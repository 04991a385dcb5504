//! Clique signer voting between `tern node` processes: three signers vote a fourth in
//! (who then seals in rotation) and one of the originals out (who then seals nothing);
//! a fullnode joining afterwards syncs across both votes and a checkpoint.

mod common;
use alloy_primitives::Address;
use common::*;
use std::{
    path::Path,
    time::{Duration, Instant},
};
use tern_chainspec::ChainSpec;
use tern_consensus::address_of;

/// Checkpoint interval of the test chain, in blocks.
const EPOCH: u64 = 16;

fn key(i: u8) -> secp256k1::SecretKey {
    secp256k1::SecretKey::from_byte_array([i; 32]).unwrap()
}

fn lower(a: Address) -> String {
    format!("{a:#x}")
}

fn hex_u64(v: &serde_json::Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// Polls `check` until it returns something, at most `secs` seconds.
fn wait_for<T>(secs: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn signers(port: &str) -> Option<Vec<String>> {
    let v = rpc(port, "clique_getSigners", serde_json::json!([]))?;
    Some(v.as_array()?.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect())
}

fn head(port: &str) -> u64 {
    rpc(port, "eth_blockNumber", serde_json::json!([])).map_or(0, |v| hex_u64(&v))
}

fn sealer_of(port: &str, number: u64) -> Option<String> {
    rpc(port, "clique_getSigner", serde_json::json!([format!("{number:#x}")]))?
        .as_str()
        .map(str::to_owned)
}

fn block_hash(port: &str, number: u64) -> Option<String> {
    rpc(port, "eth_getBlockByNumber", serde_json::json!([format!("{number:#x}"), false]))?["hash"]
        .as_str()
        .map(str::to_owned)
}

/// A validator with key `i` on `genesis`, bootstrapped from `bootnodes`.
fn validator(name: &str, i: u8, genesis: &Path, bootnodes: &[String]) -> (Node, String, String) {
    let d = dir(name);
    std::fs::create_dir_all(&d).unwrap();
    let key_file = d.join("validator.key");
    std::fs::write(&key_file, alloy_primitives::hex::encode(key(i).secret_bytes())).unwrap();
    let mut args =
        vec!["--chain", genesis.to_str().unwrap(), "--enable-consensus", "--validator-key"];
    args.push(key_file.to_str().unwrap());
    let joined = bootnodes.join(",");
    if !bootnodes.is_empty() {
        args.extend(["--bootnodes", &joined]);
    }
    let (child, log, port) = node_with_rpc(&d, &args);
    (child, enode_of(&log), port)
}

#[test]
fn three_signers_vote_a_fourth_in_and_one_out_and_a_late_fullnode_follows() {
    let addrs: Vec<Address> = (1..=4).map(|i| address_of(&key(i))).collect();
    let mut genesis = ChainSpec::clique_dev(&addrs[..3]).genesis;
    genesis.config.clique =
        Some(alloy_genesis::CliqueConfig { period: Some(1), epoch: Some(EPOCH) });
    let gdir = dir("clique-genesis");
    std::fs::create_dir_all(&gdir).unwrap();
    let genesis_path = gdir.join("genesis.json");
    std::fs::write(&genesis_path, serde_json::to_string(&genesis).unwrap()).unwrap();

    let (_v1, e1, p1) = validator("clique-v1", 1, &genesis_path, &[]);
    let (_v2, e2, p2) = validator("clique-v2", 2, &genesis_path, std::slice::from_ref(&e1));
    let (_v3, _, p3) = validator("clique-v3", 3, &genesis_path, &[e1.clone(), e2.clone()]);
    // The fourth runs as a validator before it is a signer: it waits to be voted in.
    let (_v4, _, p4) = validator("clique-v4", 4, &genesis_path, &[e1.clone(), e2.clone()]);
    wait_for(120, "the three signers sealing", || (head(&p3) >= 3).then_some(()));

    // Two of three vote the fourth in: one through the CLI, one over JSON-RPC.
    let out = std::process::Command::new(TERN)
        .args(["clique", "propose", "--rpc", &format!("http://127.0.0.1:{p1}"), &lower(addrs[3])])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    rpc(&p2, "clique_propose", serde_json::json!([lower(addrs[3]), true])).unwrap();
    let proposals = rpc(&p1, "clique_proposals", serde_json::json!([])).unwrap();
    assert_eq!(proposals[lower(addrs[3])], true, "{proposals}");
    let added = wait_for(180, "the fourth signer voted in", || {
        let s = signers(&p3)?;
        (s.len() == 4).then(|| head(&p3))
    });
    // It seals in rotation: some block after the vote is its.
    wait_for(180, "a block sealed by the fourth signer", || {
        let h = head(&p1);
        (added + 1..=h).any(|n| sealer_of(&p1, n) == Some(lower(addrs[3]))).then_some(())
    });

    // Three of four vote the first out.
    for p in [&p2, &p3, &p4] {
        rpc(p, "clique_propose", serde_json::json!([lower(addrs[0]), false])).unwrap();
    }
    let dropped = wait_for(180, "the first signer voted out", || {
        let s = signers(&p2)?;
        (s.len() == 3 && !s.contains(&lower(addrs[0]))).then(|| head(&p2))
    });
    // Past the next checkpoint, whose extraData lists the new signers.
    let checkpoint = (dropped / EPOCH + 1) * EPOCH;
    let tip = wait_for(240, "the chain past a checkpoint", || {
        let h = head(&p2);
        (h > checkpoint + 3).then_some(h)
    });
    let snap =
        rpc(&p2, "clique_getSnapshot", serde_json::json!([format!("{checkpoint:#x}")])).unwrap();
    assert!(snap["votes"].as_array().unwrap().is_empty(), "a checkpoint clears votes: {snap}");
    assert_eq!(snap["signers"].as_object().unwrap().len(), 3, "{snap}");
    // The voted-out signer sealed nothing after it was dropped (its own node stopped
    // sealing; anyone else would have refused the blocks).
    for n in dropped + 1..=tip {
        assert_ne!(sealer_of(&p2, n), Some(lower(addrs[0])), "block {n}");
    }

    // A fullnode joining now syncs across both votes and the checkpoint.
    let fdir = dir("clique-full");
    let (_full, _, pf) =
        node_with_rpc(&fdir, &["--chain", genesis_path.to_str().unwrap(), "--bootnodes", &e2]);
    let want = block_hash(&p2, tip).unwrap();
    wait_for(180, "the late fullnode at the tip", || {
        (block_hash(&pf, tip).as_ref() == Some(&want)).then_some(())
    });
    assert_eq!(signers(&pf), signers(&p2));
    // Every node holds the same block (and so the same state root) at the tip.
    for p in [&p1, &p3, &p4] {
        wait_for(60, "every node at the tip", || {
            (block_hash(p, tip).as_ref() == Some(&want)).then_some(())
        });
    }
}
