//! Genesis hashes and fork ids from shared/testvectors (copied to testdata/genesis).

use super::*;
use alloy_eip2124::{ForkHash, ValidationError};

fn testdata(name: &str) -> String {
    let path = format!("{}/../../testdata/genesis/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap()
}

fn b256(s: &str) -> B256 {
    s.parse().unwrap()
}

#[test]
fn mainnet_genesis_hash() {
    let spec = ChainSpec::from_json(&testdata("mainnet.json")).unwrap();
    assert_eq!(
        spec.genesis_hash,
        b256("0xd4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3")
    );
    assert_eq!(spec.genesis_header.base_fee_per_gas, None);
}

#[test]
fn goerli_genesis_hash() {
    let spec = ChainSpec::from_json(&testdata("goerli.json")).unwrap();
    assert_eq!(
        spec.genesis_hash,
        b256("0xbf7e331f7f7c1dd2e05159666b3bf8bc7a8a3a9eb1d518969eab529dd9b88c1a")
    );
    // Its extraData holds one Clique signer, readable as such.
    assert_eq!(clique_signers(&spec.genesis.extra_data).unwrap().len(), 1);
}

#[test]
fn postmerge_dev_genesis_hash_fields_and_fork_id() {
    let spec = ChainSpec::from_json(&testdata("postmerge-dev.json")).unwrap();
    let h = &spec.genesis_header;
    assert_eq!(
        h.state_root,
        b256("0xf09d8f7da5bc5036f8dd9536c953e2212390a46fb3e553ece2b7d419131537b1")
    );
    assert_eq!(h.base_fee_per_gas, Some(1_000_000_000));
    assert_eq!(h.withdrawals_root, Some(EMPTY_ROOT_HASH));
    assert_eq!((h.blob_gas_used, h.excess_blob_gas), (Some(0), Some(0)));
    assert_eq!(h.parent_beacon_block_root, Some(B256::ZERO));
    assert_eq!(h.requests_hash, Some(EMPTY_REQUESTS_HASH));
    assert_eq!(
        spec.genesis_hash,
        b256("0x683713729fcb72be6f3d8b88c8cda3e10569d73b9640d3bf6f5184d94bd97616")
    );
    assert_eq!(spec.network_id, 1337);
    assert_eq!(spec.consensus, Consensus::PostMerge);
    // reth 2.5.1 announces fork hash 0x0b1a4ef7, next 0 for this genesis.
    assert_eq!(
        spec.fork_id(0, h.timestamp),
        ForkId { hash: ForkHash([0x0b, 0x1a, 0x4e, 0xf7]), next: 0 }
    );
}

#[test]
fn dev_chain_is_clique_with_one_signer() {
    let spec = ChainSpec::load("dev").unwrap();
    let Consensus::Clique { period, signers, .. } = &spec.consensus else { panic!() };
    assert_eq!((*period, signers.len()), (2, 1));
    assert_eq!(signers[0], dev_validator_address());
    assert_eq!(spec.chain_id, DEV_CHAIN_ID);
    assert!(spec.genesis_header.base_fee_per_gas.is_some(), "London at genesis");
    // Prague at genesis, with the contracts its system calls need.
    let h = &spec.genesis_header;
    assert!(h.withdrawals_root.is_some() && h.parent_beacon_block_root.is_some());
    assert_eq!(h.requests_hash, Some(alloy_eips::eip7685::EMPTY_REQUESTS_HASH));
    for (address, account) in crate::system_contracts() {
        assert_eq!(spec.genesis.alloc[&address].code, account.code, "{address}");
    }
    // Deterministic: two builds agree.
    assert_eq!(ChainSpec::dev().genesis_hash, spec.genesis_hash);
}

#[test]
fn bad_genesis_input() {
    assert!(matches!(ChainSpec::load("/no/such/genesis.json"), Err(ChainSpecError::Read { .. })));
    assert!(matches!(ChainSpec::from_json("{"), Err(ChainSpecError::Json(_))));
    let clique_short = r#"{"config":{"chainId":5,"clique":{"period":1,"epoch":10}},"extraData":"0x00","gasLimit":"0x1","difficulty":"0x1","alloc":{}}"#;
    assert!(matches!(ChainSpec::from_json(clique_short), Err(ChainSpecError::CliqueExtraData(1))));
}

/// Mainnet's fork schedule (go-ethereum `params.MainnetChainConfig`, as listed in
/// shared/testvectors/forkid-eip2124.txt).
fn mainnet(with_timestamps: bool) -> ChainSpec {
    let mut g: Genesis = serde_json::from_str(&testdata("mainnet.json")).unwrap();
    let c = &mut g.config;
    c.chain_id = 1;
    c.homestead_block = Some(1_150_000);
    c.dao_fork_block = Some(1_920_000);
    c.eip150_block = Some(2_463_000);
    c.eip155_block = Some(2_675_000);
    c.eip158_block = Some(2_675_000);
    c.byzantium_block = Some(4_370_000);
    c.constantinople_block = Some(7_280_000);
    c.petersburg_block = Some(7_280_000);
    c.istanbul_block = Some(9_069_000);
    c.muir_glacier_block = Some(9_200_000);
    c.berlin_block = Some(12_244_000);
    c.london_block = Some(12_965_000);
    c.arrow_glacier_block = Some(13_773_000);
    c.gray_glacier_block = Some(15_050_000);
    if with_timestamps {
        c.shanghai_time = Some(1_681_338_455);
        c.cancun_time = Some(1_710_338_135);
        c.prague_time = Some(1_746_612_311);
        c.osaka_time = Some(1_764_798_551);
        c.bpo1_time = Some(1_765_290_071);
        c.bpo2_time = Some(1_767_747_671);
    }
    ChainSpec::from_genesis(g).unwrap()
}

fn id(hash: u32, next: u64) -> ForkId {
    ForkId { hash: ForkHash(hash.to_be_bytes()), next }
}

#[test]
fn mainnet_fork_ids() {
    let spec = mainnet(true);
    // (head, time, hash, next) from go-ethereum TestCreation, mainnet cases.
    let cases: &[(u64, u64, u32, u64)] = &[
        (0, 0, 0xfc64ec04, 1150000),
        (1149999, 0, 0xfc64ec04, 1150000),
        (1150000, 0, 0x97c2c34c, 1920000),
        (1919999, 0, 0x97c2c34c, 1920000),
        (1920000, 0, 0x91d1f948, 2463000),
        (2462999, 0, 0x91d1f948, 2463000),
        (2463000, 0, 0x7a64da13, 2675000),
        (2674999, 0, 0x7a64da13, 2675000),
        (2675000, 0, 0x3edd5b10, 4370000),
        (4369999, 0, 0x3edd5b10, 4370000),
        (4370000, 0, 0xa00bc324, 7280000),
        (7279999, 0, 0xa00bc324, 7280000),
        (7280000, 0, 0x668db0af, 9069000),
        (9068999, 0, 0x668db0af, 9069000),
        (9069000, 0, 0x879d6e30, 9200000),
        (9199999, 0, 0x879d6e30, 9200000),
        (9200000, 0, 0xe029e991, 12244000),
        (12243999, 0, 0xe029e991, 12244000),
        (12244000, 0, 0x0eb440f6, 12965000),
        (12964999, 0, 0x0eb440f6, 12965000),
        (12965000, 0, 0xb715077d, 13773000),
        (13772999, 0, 0xb715077d, 13773000),
        (13773000, 0, 0x20c327fc, 15050000),
        (15049999, 0, 0x20c327fc, 15050000),
        (15050000, 0, 0xf0afd0e3, 1681338455),
        (20000000, 1681338454, 0xf0afd0e3, 1681338455),
        (20000000, 1681338455, 0xdce96c2d, 1710338135),
        (30000000, 1710338134, 0xdce96c2d, 1710338135),
        (30000000, 1710338135, 0x9f3d2254, 1746612311),
        (30000000, 1746022486, 0x9f3d2254, 1746612311),
        (30000000, 1746612311, 0xc376cf8b, 1764798551),
        (30000000, 1764798550, 0xc376cf8b, 1764798551),
        (30000000, 1764798551, 0x5167e2a6, 1765290071),
        (30000000, 1765290070, 0x5167e2a6, 1765290071),
        (30000000, 1765290071, 0xcba2a1c0, 1767747671),
        (30000000, 1767747670, 0xcba2a1c0, 1767747671),
        (30000000, 1767747671, 0x07c9462e, 0),
        (50000000, 2000000000, 0x07c9462e, 0),
    ];
    for &(head, time, hash, next) in cases {
        assert_eq!(spec.fork_id(head, time), id(hash, next), "head {head} time {time}");
    }
}

/// crc32 update of a fork hash with a u64 (go-ethereum's `checksumUpdate`).
fn checksum_update(hash: u32, fork: u64) -> u32 {
    (ForkHash(hash.to_be_bytes()) + fork).0.iter().fold(0u32, |a, b| (a << 8) | u32::from(*b))
}

#[test]
fn mainnet_fork_id_validation() {
    const MAX: u64 = u64::MAX;
    enum Want {
        Ok,
        RemoteStale,
        LocalIncompatible,
    }
    use Want::*;
    // (timestamps in config, head, time, remote hash, remote next, want): go-ethereum
    // TestValidation, block-based, transition and timestamp-based cases.
    let cases: Vec<(bool, u64, u64, u32, u64, Want)> = vec![
        (false, 15050000, 0, 0xf0afd0e3, 0, Ok),
        (false, 15050000, 0, 0xf0afd0e3, MAX, Ok),
        (false, 7279999, 0, 0xa00bc324, 0, Ok),
        (false, 7279999, 0, 0xa00bc324, 7280000, Ok),
        (false, 7279999, 0, 0xa00bc324, MAX, Ok),
        (false, 7280000, 0, 0xa00bc324, 7280000, Ok),
        (false, 7987396, 0, 0xa00bc324, 7280000, Ok),
        (false, 7987396, 0, 0x3edd5b10, 4370000, Ok),
        (false, 7279999, 0, 0x668db0af, 0, Ok),
        (false, 4369999, 0, 0xa00bc324, 0, Ok),
        (false, 7987396, 0, 0xa00bc324, 0, RemoteStale),
        (false, 7987396, 0, 0x5cddc0e1, 0, LocalIncompatible),
        (false, 7279999, 0, 0x5cddc0e1, 0, LocalIncompatible),
        (false, 7987396, 0, 0xafec6b27, 0, LocalIncompatible),
        (false, 88888888, 0, 0xf0afd0e3, 88888888, LocalIncompatible),
        (false, 7279999, 0, 0xa00bc324, 7279999, LocalIncompatible),
        (true, 15050000, 0, 0xf0afd0e3, 0, Ok),
        (true, 15050000, 0, 0xf0afd0e3, 1681338455, Ok),
        (true, 15050000, 0, 0xf0afd0e3, MAX, Ok),
        (true, 20000000, 1681338455, 0xf0afd0e3, 1681338455, Ok),
        (true, 20123456, 1681338456, 0xf0afd0e3, 1681338455, Ok),
        (true, 20000000, 1681338455, 0x20c327fc, 15050000, Ok),
        (true, 15050000, 0, 0xdce96c2d, 0, Ok),
        (true, 13773000, 0, 0xf0afd0e3, 0, Ok),
        (true, 20000000, 1681338455, 0xf0afd0e3, 0, RemoteStale),
        (true, 15050000, 0, checksum_update(0xf0afd0e3, MAX), 0, LocalIncompatible),
        (true, 15050000, 0, checksum_update(0xdce96c2d, MAX), 0, LocalIncompatible),
        (true, 888888888, 1660000000, 0xf0afd0e3, 1660000000, LocalIncompatible),
        (true, 19999999, 1667999999, 0xf0afd0e3, 1667999999, LocalIncompatible),
        (true, 20000000, 1681338455, 0xdce96c2d, 0, Ok),
        (true, 20000000, 1681338455, 0xdce96c2d, MAX, Ok),
        (true, 20000000, 1668000000, 0xdce96c2d, 0, Ok),
        (true, 20000000, 1668000000, 0xdce96c2d, 1710338135, Ok),
        (true, 20000000, 1668000000, 0xdce96c2d, MAX, Ok),
        (true, 21000000, 1710338135, 0xdce96c2d, 1710338135, Ok),
        (true, 21123456, 1710338136, 0xdce96c2d, 1710338135, Ok),
        (true, 0, 0, 0x3edd5b10, 1710338135, Ok),
        (true, 21000000, 1700000000, 0x9f3d2254, 0, Ok),
        (true, 21000000, 1678000000, 0xc376cf8b, 0, Ok),
        (true, 21000000, 1710338135, 0xdce96c2d, 0, RemoteStale),
        (true, 20000000, 1681338455, checksum_update(0xdce96c2d, MAX), 0, LocalIncompatible),
        (true, 20000000, 1668000000, checksum_update(0x9f3d2254, MAX), 0, LocalIncompatible),
        (true, 20000000, 1681338455, 0x12345678, 0, LocalIncompatible),
        (true, 88888888, 8888888888, 0x07c9462e, 8888888888, LocalIncompatible),
        (true, 20999999, 1699999999, 0x71147644, 1700000000, LocalIncompatible),
    ];
    let (legacy, current) = (mainnet(false), mainnet(true));
    for (i, (ts, head, time, hash, next, want)) in cases.into_iter().enumerate() {
        let spec = if ts { &current } else { &legacy };
        let filter = spec.fork_filter(Head { number: head, timestamp: time, ..Default::default() });
        let got = filter.validate(id(hash, next));
        let ok = match want {
            Ok => got.is_ok(),
            RemoteStale => matches!(got, Err(ValidationError::RemoteStale { .. })),
            LocalIncompatible => {
                matches!(got, Err(ValidationError::LocalIncompatibleOrStale { .. }))
            }
        };
        assert!(ok, "case {i}: head {head} time {time} {hash:#x}/{next}: {got:?}");
    }
}

#[test]
fn fork_id_rlp_vectors() {
    use alloy_rlp::Encodable;
    for (fid, want) in [
        (id(0, 0), "c6840000000080"),
        (id(0xdeadbeef, 0xbaddcafe), "ca84deadbeef84baddcafe"),
        (id(u32::MAX, u64::MAX), "ce84ffffffff88ffffffffffffffff"),
    ] {
        let mut out = Vec::new();
        fid.encode(&mut out);
        assert_eq!(hex::encode(&out), want);
    }
}

/// go-ethereum `TestTimeBasedForkInGenesis`: timestamp forks at or before genesis time
/// are not forks.
#[test]
fn time_forks_at_genesis_are_skipped() {
    let time = 1_690_475_657u64;
    for (shanghai, cancun) in [(time - 1, time + 1), (time, time + 1), (time + 1, time + 2)] {
        let mut g = Genesis { timestamp: time, ..Default::default() };
        g.config.chain_id = 1337;
        g.config.london_block = Some(0);
        g.config.terminal_total_difficulty = Some(U256::ZERO);
        g.config.shanghai_time = Some(shanghai);
        g.config.cancun_time = Some(cancun);
        let spec = ChainSpec::from_genesis(g).unwrap();
        let got = spec.fork_id(0, time);
        assert_eq!(got.hash, ForkHash::from(spec.genesis_hash));
        assert_eq!(got.next, time + 1);
    }
}
