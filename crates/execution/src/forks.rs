//! The hardforks a block executes under, from Tern's [`ChainSpec`].

use alloy_consensus::Header;
use alloy_eips::eip7840::BlobParams;
use alloy_evm::{eth::spec::EthExecutorSpec, EvmEnv};
use alloy_hardforks::{EthereumHardfork, EthereumHardforks, ForkCondition};
use alloy_primitives::Address;
use revm::primitives::hardfork::SpecId;
use tern_chainspec::{ChainSpec, Consensus, ForkCondition as TernCondition};

/// The forks of one chain as alloy-evm asks for them, for one block.
///
/// Paris (the merge) is a property of the block here, not of a number in the genesis: on a
/// post-merge chain every block is past it; on a proof-of-work chain with a terminal total
/// difficulty the first block with difficulty 0 is; a Clique chain never merges, but pays
/// no block reward either, so for the reward rule alone it counts as merged (see
/// [`EvmForks::spec_id`] for the EVM rules, where it does not).
#[derive(Debug, Clone)]
pub struct EvmForks<'a> {
    spec: &'a ChainSpec,
    /// Whether this block is past the merge.
    merged: bool,
    /// What alloy-evm is told of Paris: merged, or a Clique block (no block reward).
    paris: bool,
}

impl<'a> EvmForks<'a> {
    /// The forks of `spec` for the block with `header`.
    pub fn at(spec: &'a ChainSpec, header: &Header) -> Self {
        let merged = match spec.consensus {
            Consensus::PostMerge => true,
            Consensus::Clique { .. } => false,
            Consensus::ProofOfWork => header.difficulty.is_zero(),
        };
        let clique = matches!(spec.consensus, Consensus::Clique { .. });
        Self { spec, merged, paris: merged || clique }
    }

    /// The EVM rules of the block at (`number`, `timestamp`): the latest active fork's,
    /// with a Clique chain never past London's merge rules until Shanghai (geth ran Clique
    /// without the merge: `DIFFICULTY` is the header's difficulty).
    pub fn spec_id(&self, number: u64, timestamp: u64) -> SpecId {
        let rules = Self { paris: self.merged, ..self.clone() };
        alloy_evm::spec_by_timestamp_and_block_number(&rules, timestamp, number)
    }

    /// The EVM environment of the block with `header`: its rules, chain id, blob
    /// parameters, and `beneficiary` (the fee recipient: the header's, or on Clique the
    /// signer recovered from the seal).
    pub fn evm_env(&self, header: &Header, beneficiary: Address) -> EvmEnv {
        let mut env = EvmEnv::for_eth_block(
            header,
            self,
            self.spec.chain_id,
            self.blob_params(header.timestamp),
        );
        env.block_env.beneficiary = beneficiary;
        if !self.merged {
            env.cfg_env.spec = self.spec_id(header.number, header.timestamp);
            env.block_env.difficulty = header.difficulty;
        }
        env
    }

    /// The blob gas parameters at `timestamp` ([`ChainSpec::blob_params`]), or `None`
    /// before Cancun.
    pub fn blob_params(&self, timestamp: u64) -> Option<BlobParams> {
        self.spec.blob_params(timestamp)
    }
}

/// Tern's name of each fork alloy-evm knows by block or timestamp.
fn tern_name(fork: EthereumHardfork) -> Option<&'static str> {
    Some(match fork {
        EthereumHardfork::Homestead => "homestead",
        EthereumHardfork::Dao => "dao",
        EthereumHardfork::Tangerine => "tangerine",
        EthereumHardfork::SpuriousDragon => "spurious-eip158",
        EthereumHardfork::Byzantium => "byzantium",
        EthereumHardfork::Constantinople => "constantinople",
        EthereumHardfork::Petersburg => "petersburg",
        EthereumHardfork::Istanbul => "istanbul",
        EthereumHardfork::MuirGlacier => "muir-glacier",
        EthereumHardfork::Berlin => "berlin",
        EthereumHardfork::London => "london",
        EthereumHardfork::ArrowGlacier => "arrow-glacier",
        EthereumHardfork::GrayGlacier => "gray-glacier",
        EthereumHardfork::Shanghai => "shanghai",
        EthereumHardfork::Cancun => "cancun",
        EthereumHardfork::Prague => "prague",
        EthereumHardfork::Osaka => "osaka",
        EthereumHardfork::Bpo1 => "bpo1",
        EthereumHardfork::Bpo2 => "bpo2",
        EthereumHardfork::Bpo3 => "bpo3",
        EthereumHardfork::Bpo4 => "bpo4",
        EthereumHardfork::Bpo5 => "bpo5",
        _ => return None,
    })
}

impl EthereumHardforks for EvmForks<'_> {
    fn ethereum_fork_activation(&self, fork: EthereumHardfork) -> ForkCondition {
        match fork {
            EthereumHardfork::Frontier => ForkCondition::ZERO_BLOCK,
            // Active for this block or not at all: see the type's documentation.
            EthereumHardfork::Paris if self.paris => ForkCondition::ZERO_BLOCK,
            EthereumHardfork::Paris => ForkCondition::Never,
            other => {
                let Some(name) = tern_name(other) else { return ForkCondition::Never };
                match self.spec.forks.iter().find(|f| f.name == name).map(|f| f.condition) {
                    Some(TernCondition::Block(b)) => ForkCondition::Block(b),
                    Some(TernCondition::Timestamp(t)) => ForkCondition::Timestamp(t),
                    None => ForkCondition::Never,
                }
            }
        }
    }
}

impl EthExecutorSpec for EvmForks<'_> {
    fn deposit_contract_address(&self) -> Option<Address> {
        self.spec.genesis.config.deposit_contract_address
    }
}
