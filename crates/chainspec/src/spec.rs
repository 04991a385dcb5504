use alloy_consensus::{constants::EMPTY_ROOT_HASH, Header, EMPTY_OMMER_ROOT_HASH};
use alloy_eip2124::{ForkFilter, ForkFilterKey, ForkId, Head};
use alloy_eips::{eip1559::INITIAL_BASE_FEE, eip7685::EMPTY_REQUESTS_HASH};
use alloy_genesis::{ChainConfig, CliqueConfig, Genesis, GenesisAccount};
use alloy_primitives::{keccak256, Address, Bytes, B256, B64, U256};
use std::path::Path;

/// Chain id of the built-in `dev` chain.
pub const DEV_CHAIN_ID: u64 = 1337;

/// The secret key of the `dev` chain's only Clique signer.
///
/// **Insecure: published in the README.** Anyone can sign `dev` blocks with it; never use it
/// for anything of value.
pub const DEV_VALIDATOR_KEY: &str =
    "5c1d1b3d49ac2b9fa2e36b8cbe1cb1fca74c2a5bbd0fd9d1e3cbd0e4f2c0ab11";

/// Block period of the `dev` chain, in seconds.
const DEV_PERIOD: u64 = 2;
/// Clique epoch (checkpoint interval) of the `dev` chain, in blocks (EIP-225 default).
const DEV_EPOCH: u64 = 30_000;
/// Genesis timestamp of the `dev` chain (2025-01-01T00:00:00Z), fixed so every node
/// builds the same genesis.
const DEV_TIMESTAMP: u64 = 1_735_689_600;

/// Gas limit geth uses when a genesis file gives none (`params.GenesisGasLimit`).
const DEFAULT_GENESIS_GAS_LIMIT: u64 = 4_712_388;
/// Difficulty geth uses when a genesis file gives none and no mix hash
/// (`params.GenesisDifficulty`).
const DEFAULT_GENESIS_DIFFICULTY: u64 = 131_072;

/// Clique extraData: 32-byte vanity prefix.
///
/// Spec: <https://eips.ethereum.org/EIPS/eip-225>
const CLIQUE_VANITY: usize = 32;
/// Clique extraData: 65-byte seal suffix.
const CLIQUE_SEAL: usize = 65;

/// Errors reading or interpreting a genesis file.
#[derive(Debug, thiserror::Error)]
pub enum ChainSpecError {
    /// The file could not be read.
    #[error("cannot read genesis file {path}: {error}")]
    Read {
        /// The path.
        path: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The JSON is not a geth-style genesis.
    #[error("invalid genesis JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The Clique extraData does not hold vanity, signers and seal.
    #[error(
        "invalid Clique extraData of {0} bytes: need 32 vanity + 20·N signers + 65 seal bytes"
    )]
    CliqueExtraData(usize),
    /// A Clique genesis with no signer.
    #[error("Clique genesis lists no signer in extraData")]
    NoCliqueSigners,
}

/// When a fork activates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForkCondition {
    /// At a block number.
    Block(u64),
    /// At a block timestamp (seconds since the Unix epoch).
    Timestamp(u64),
}

/// A named fork and its activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fork {
    /// The fork's name as in geth's config (`london`, `shanghai`, …).
    pub name: &'static str,
    /// When it activates.
    pub condition: ForkCondition,
}

/// The consensus a chain runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consensus {
    /// Clique proof of authority (EIP-225).
    Clique {
        /// Seconds between blocks.
        period: u64,
        /// Checkpoint interval, in blocks.
        epoch: u64,
        /// The signers listed in the genesis extraData.
        signers: Vec<Address>,
    },
    /// Proof of stake from genesis (terminal total difficulty 0): no seal to verify.
    PostMerge,
    /// Proof of work (e.g. mainnet's genesis); loadable, not validated by Tern.
    ProofOfWork,
}

/// A chain: its genesis, header and hash, network id, forks and consensus.
#[derive(Debug, Clone)]
pub struct ChainSpec {
    /// The genesis file as parsed.
    pub genesis: Genesis,
    /// The genesis header, built as geth and reth build it.
    pub genesis_header: Header,
    /// keccak256 of the RLP genesis header.
    pub genesis_hash: B256,
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// devp2p network id (the chain id unless overridden).
    pub network_id: u64,
    /// Forks after genesis state, in activation order (blocks first, then timestamps).
    pub forks: Vec<Fork>,
    /// Consensus kind.
    pub consensus: Consensus,
}

/// The fork fields of a geth chain config, in order (EIP-6122: blocks, then timestamps).
fn fork_list(c: &ChainConfig) -> Vec<(&'static str, Option<ForkCondition>)> {
    use ForkCondition::{Block as B, Timestamp as T};
    vec![
        ("homestead", c.homestead_block.map(B)),
        ("dao", c.dao_fork_block.map(B)),
        ("tangerine", c.eip150_block.map(B)),
        ("spurious-eip155", c.eip155_block.map(B)),
        ("spurious-eip158", c.eip158_block.map(B)),
        ("byzantium", c.byzantium_block.map(B)),
        ("constantinople", c.constantinople_block.map(B)),
        ("petersburg", c.petersburg_block.map(B)),
        ("istanbul", c.istanbul_block.map(B)),
        ("muir-glacier", c.muir_glacier_block.map(B)),
        ("berlin", c.berlin_block.map(B)),
        ("london", c.london_block.map(B)),
        ("arrow-glacier", c.arrow_glacier_block.map(B)),
        ("gray-glacier", c.gray_glacier_block.map(B)),
        ("merge-netsplit", c.merge_netsplit_block.map(B)),
        ("shanghai", c.shanghai_time.map(T)),
        ("cancun", c.cancun_time.map(T)),
        ("prague", c.prague_time.map(T)),
        ("osaka", c.osaka_time.map(T)),
        ("bpo1", c.bpo1_time.map(T)),
        ("bpo2", c.bpo2_time.map(T)),
        ("bpo3", c.bpo3_time.map(T)),
        ("bpo4", c.bpo4_time.map(T)),
        ("bpo5", c.bpo5_time.map(T)),
        ("amsterdam", c.amsterdam_time.map(T)),
    ]
}

impl ChainSpec {
    /// `dev` (the built-in Clique development chain) or a path to a genesis.json.
    pub fn load(chain: &str) -> Result<Self, ChainSpecError> {
        if chain == "dev" {
            return Ok(Self::dev());
        }
        Self::from_file(Path::new(chain))
    }

    /// Reads a geth-style genesis.json.
    pub fn from_file(path: &Path) -> Result<Self, ChainSpecError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| ChainSpecError::Read { path: path.display().to_string(), error })?;
        Self::from_json(&text)
    }

    /// Parses a geth-style genesis.json.
    pub fn from_json(text: &str) -> Result<Self, ChainSpecError> {
        let raw: serde_json::Value = serde_json::from_str(text)?;
        let genesis: Genesis = serde_json::from_value(raw.clone())?;
        // geth distinguishes a missing difficulty from an explicit zero.
        let has_difficulty = raw.get("difficulty").is_some();
        Self::from_genesis_inner(genesis, has_difficulty)
    }

    /// A chain spec from a parsed genesis.
    pub fn from_genesis(genesis: Genesis) -> Result<Self, ChainSpecError> {
        Self::from_genesis_inner(genesis, true)
    }

    fn from_genesis_inner(genesis: Genesis, has_difficulty: bool) -> Result<Self, ChainSpecError> {
        let config = &genesis.config;
        let consensus = match config.clique {
            Some(clique) => Consensus::Clique {
                period: clique.period.unwrap_or(15),
                epoch: clique.epoch.unwrap_or(DEV_EPOCH),
                signers: clique_signers(&genesis.extra_data)?,
            },
            None if config.terminal_total_difficulty == Some(U256::ZERO) => Consensus::PostMerge,
            None => Consensus::ProofOfWork,
        };
        let mut forks: Vec<Fork> = fork_list(config)
            .into_iter()
            .filter_map(|(name, c)| c.map(|condition| Fork { name, condition }))
            .collect();
        forks.sort_by_key(|f| match f.condition {
            ForkCondition::Block(b) => (0, b),
            ForkCondition::Timestamp(t) => (1, t),
        });
        let genesis_header = genesis_header(&genesis, has_difficulty);
        let genesis_hash = genesis_header.hash_slow();
        Ok(Self {
            chain_id: config.chain_id,
            network_id: config.chain_id,
            genesis_header,
            genesis_hash,
            forks,
            consensus,
            genesis,
        })
    }

    /// The built-in `dev` chain: Clique, one signer ([`DEV_VALIDATOR_KEY`]), a block every
    /// 2 s, every fork through Prague at genesis (Shanghai, Cancun and Prague by timestamp
    /// 0), with the system contracts those forks call in the genesis
    /// ([`system_contracts`]).
    pub fn dev() -> Self {
        Self::clique_dev(&[dev_validator_address()])
    }

    /// The `dev` chain's settings with `signers` (any order; each funded) as the Clique
    /// signer set: what `tern devnet` and multi-signer tests run on.
    pub fn clique_dev(signers: &[Address]) -> Self {
        let mut signers = signers.to_vec();
        signers.sort();
        signers.dedup();
        let mut extra = vec![0u8; CLIQUE_VANITY];
        signers.iter().for_each(|s| extra.extend_from_slice(s.as_slice()));
        extra.extend_from_slice(&[0u8; CLIQUE_SEAL]);
        let config = ChainConfig {
            chain_id: DEV_CHAIN_ID,
            homestead_block: Some(0),
            eip150_block: Some(0),
            eip155_block: Some(0),
            eip158_block: Some(0),
            byzantium_block: Some(0),
            constantinople_block: Some(0),
            petersburg_block: Some(0),
            istanbul_block: Some(0),
            berlin_block: Some(0),
            london_block: Some(0),
            arrow_glacier_block: Some(0),
            gray_glacier_block: Some(0),
            shanghai_time: Some(0),
            cancun_time: Some(0),
            prague_time: Some(0),
            clique: Some(CliqueConfig { period: Some(DEV_PERIOD), epoch: Some(DEV_EPOCH) }),
            ..Default::default()
        };
        let balance = U256::from(10u64).pow(U256::from(24u64)); // 1,000,000 ETH
        let mut alloc: std::collections::BTreeMap<Address, GenesisAccount> = signers
            .iter()
            .map(|s| (*s, GenesisAccount { balance, ..Default::default() }))
            .collect();
        alloc.extend(system_contracts());
        let genesis = Genesis {
            config,
            nonce: 0,
            timestamp: DEV_TIMESTAMP,
            extra_data: Bytes::from(extra),
            gas_limit: 30_000_000,
            difficulty: U256::from(1u64),
            alloc,
            ..Default::default()
        };
        Self::from_genesis(genesis).expect("a dev genesis with at least one signer is valid")
    }

    /// The `dev` chain after the merge, for benchmarks and tests of post-merge sync: the
    /// same accounts, system contracts and forks (Prague at genesis), no Clique, terminal
    /// total difficulty 0, genesis difficulty 0 and empty extra data. Its blocks carry no
    /// seal (see [EIP-3675](https://eips.ethereum.org/EIPS/eip-3675#block-structure)).
    pub fn postmerge_dev() -> Self {
        let mut genesis = Self::dev().genesis;
        genesis.config.clique = None;
        genesis.config.terminal_total_difficulty = Some(U256::ZERO);
        genesis.config.terminal_total_difficulty_passed = true;
        genesis.difficulty = U256::ZERO;
        genesis.extra_data = Bytes::new();
        Self::from_genesis(genesis).expect("the dev genesis without Clique is valid")
    }

    /// Overrides the network id (`--network-id`).
    pub fn with_network_id(mut self, network_id: u64) -> Self {
        self.network_id = network_id;
        self
    }

    /// The EIP-2124 fork filter at `head`.
    pub fn fork_filter(&self, head: Head) -> ForkFilter {
        let forks = self.forks.iter().map(|f| match f.condition {
            ForkCondition::Block(b) => ForkFilterKey::Block(b),
            ForkCondition::Timestamp(t) => ForkFilterKey::Time(t),
        });
        ForkFilter::new(head, self.genesis_hash, self.genesis_header.timestamp, forks)
    }

    /// The EIP-2124 fork id at block `number` with timestamp `timestamp`.
    pub fn fork_id(&self, number: u64, timestamp: u64) -> ForkId {
        self.fork_filter(Head { number, timestamp, ..Default::default() }).current()
    }

    /// Whether the named fork is active at (`number`, `timestamp`).
    pub fn is_active(&self, name: &str, number: u64, timestamp: u64) -> bool {
        self.forks.iter().any(|f| {
            f.name == name
                && match f.condition {
                    ForkCondition::Block(b) => b <= number,
                    ForkCondition::Timestamp(t) => t <= timestamp,
                }
        })
    }

    /// The blob gas parameters at `timestamp` (EIP-4844, EIP-7840): the genesis's blob
    /// schedule (mainnet's values where it names none, and any BPO entries), or `None`
    /// before Cancun.
    pub fn blob_params(&self, timestamp: u64) -> Option<alloy_eips::eip7840::BlobParams> {
        let schedule = self.genesis.config.blob_schedule_blob_params();
        if let Some(p) = schedule.active_scheduled_params_at_timestamp(timestamp) {
            return Some(*p);
        }
        let on = |name| self.is_active(name, u64::MAX, timestamp);
        if on("osaka") {
            Some(*schedule.osaka())
        } else if on("prague") {
            Some(*schedule.prague())
        } else if on("cancun") {
            Some(*schedule.cancun())
        } else {
            None
        }
    }
}

/// The contracts Cancun and Prague call at every block, as their EIPs deploy them (nonce 1,
/// the EIP's code): EIP-4788 beacon roots, EIP-2935 block hash history, EIP-7002
/// withdrawal requests and EIP-7251 consolidation requests. Prague makes a block invalid
/// when the EIP-7002 or EIP-7251 contract has no code, so a chain with Prague needs them
/// in its genesis (or deployed before Prague).
pub fn system_contracts() -> Vec<(Address, GenesisAccount)> {
    use alloy_eips::{eip2935, eip4788, eip7002, eip7251};
    let contract = |code: &Bytes| GenesisAccount {
        nonce: Some(1),
        code: Some(code.clone()),
        ..Default::default()
    };
    vec![
        (eip4788::BEACON_ROOTS_ADDRESS, contract(&eip4788::BEACON_ROOTS_CODE)),
        (eip2935::HISTORY_STORAGE_ADDRESS, contract(&eip2935::HISTORY_STORAGE_CODE)),
        (
            eip7002::WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
            contract(&eip7002::WITHDRAWAL_REQUEST_PREDEPLOY_CODE),
        ),
        (
            eip7251::CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
            contract(&eip7251::CONSOLIDATION_REQUEST_PREDEPLOY_CODE),
        ),
    ]
}

/// The address of [`DEV_VALIDATOR_KEY`]: keccak256 of its public key, last 20 bytes.
fn dev_validator_address() -> Address {
    let sk = alloy_primitives::hex::decode(DEV_VALIDATOR_KEY).expect("hex");
    let sk =
        secp256k1::SecretKey::from_byte_array(sk.try_into().expect("32 bytes")).expect("valid key");
    let pk = secp256k1::PublicKey::from_secret_key(secp256k1::SECP256K1, &sk);
    Address::from_slice(&keccak256(&pk.serialize_uncompressed()[1..])[12..])
}

/// Signers of a Clique genesis: extraData = vanity (32) || signers (20·N) || seal (65).
fn clique_signers(extra: &Bytes) -> Result<Vec<Address>, ChainSpecError> {
    let len = extra.len();
    if len < CLIQUE_VANITY + CLIQUE_SEAL || !(len - CLIQUE_VANITY - CLIQUE_SEAL).is_multiple_of(20)
    {
        return Err(ChainSpecError::CliqueExtraData(len));
    }
    let signers: Vec<Address> =
        extra[CLIQUE_VANITY..len - CLIQUE_SEAL].chunks(20).map(Address::from_slice).collect();
    if signers.is_empty() {
        return Err(ChainSpecError::NoCliqueSigners);
    }
    Ok(signers)
}

/// The genesis header as geth (`core.Genesis.ToBlock`) and reth build it: the state root
/// from `alloc`; base fee, withdrawals root, blob gas fields, parent beacon root and
/// requests hash present exactly when their fork is active at genesis.
fn genesis_header(g: &Genesis, has_difficulty: bool) -> Header {
    let c = &g.config;
    let number = g.number.unwrap_or(0);
    let at_genesis = |cond: Option<u64>, value: u64| cond.is_some_and(|at| at <= value);
    let london = at_genesis(c.london_block, number);
    let shanghai = at_genesis(c.shanghai_time, g.timestamp);
    let cancun = at_genesis(c.cancun_time, g.timestamp);
    let prague = at_genesis(c.prague_time, g.timestamp);
    let state_root = alloy_trie::root::state_root_ref_unhashed(&g.alloc);
    let difficulty = if !has_difficulty && g.mix_hash == B256::ZERO {
        U256::from(DEFAULT_GENESIS_DIFFICULTY)
    } else {
        g.difficulty
    };
    Header {
        parent_hash: g.parent_hash.unwrap_or_default(),
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: g.coinbase,
        state_root,
        transactions_root: EMPTY_ROOT_HASH,
        receipts_root: EMPTY_ROOT_HASH,
        logs_bloom: Default::default(),
        difficulty,
        number,
        gas_limit: if g.gas_limit == 0 { DEFAULT_GENESIS_GAS_LIMIT } else { g.gas_limit },
        gas_used: 0,
        timestamp: g.timestamp,
        extra_data: g.extra_data.clone(),
        mix_hash: g.mix_hash,
        nonce: B64::from(g.nonce),
        base_fee_per_gas: london
            .then(|| g.base_fee_per_gas.map(|f| f as u64).unwrap_or(INITIAL_BASE_FEE)),
        withdrawals_root: shanghai.then_some(EMPTY_ROOT_HASH),
        blob_gas_used: cancun.then(|| g.blob_gas_used.unwrap_or(0)),
        excess_blob_gas: cancun.then(|| g.excess_blob_gas.unwrap_or(0)),
        parent_beacon_block_root: cancun.then_some(B256::ZERO),
        requests_hash: prague.then_some(EMPTY_REQUESTS_HASH),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
