//! Running a transaction request on a block's state without storing anything:
//! `eth_call`, `eth_estimateGas` and `eth_createAccessList` as geth answers them.

use crate::{forks::EvmForks, StoreDb};
use alloy_consensus::Header;
use alloy_eips::eip2930::{AccessList, AccessListItem};
use alloy_evm::{
    overrides::apply_state_overrides, rpc::TryIntoTxEnv, EthEvmFactory, Evm, EvmEnv, EvmFactory,
};
use alloy_primitives::{Address, Bytes, TxKind, B256, U256};
use alloy_rpc_types_eth::{state::StateOverride, TransactionRequest};
use revm::{
    bytecode::opcode,
    context::{
        result::{EVMError, ExecutionResult, HaltReason, InvalidTransaction},
        ContextTr, TxEnv,
    },
    database::{CacheDB, WrapDatabaseRef},
    inspector::Inspector,
    interpreter::{interpreter::EthInterpreter, interpreter_types::Jumps, Interpreter},
    primitives::hardfork::SpecId,
    DatabaseRef,
};
use std::collections::{BTreeMap, BTreeSet};
use tern_chainspec::ChainSpec;
use tern_storage::StateRead;

/// The gas of a plain value transfer.
const TRANSFER_GAS: u64 = 21_000;

/// The largest gas limit of one transaction from Osaka on ([EIP-7825]).
///
/// [EIP-7825]: https://eips.ethereum.org/EIPS/eip-7825
const OSAKA_TX_GAS_CAP: u64 = 1 << 24;

/// Estimates stop when the bounds are this close, as a fraction of the upper one (geth's
/// 1.5%: an estimate a little high costs nothing, since unused gas is refunded).
const ESTIMATE_ERROR_RATIO: f64 = 0.015;

/// Why a call did not produce output.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The code reverted; `output` is the revert data.
    #[error("execution reverted{}", revert_reason(.output).map(|r| format!(": {r}")).unwrap_or_default())]
    Reverted {
        /// The revert data (often an ABI-encoded `Error(string)`).
        output: Bytes,
    },
    /// Execution stopped exceptionally (out of gas, invalid opcode, stack overflow…).
    #[error("{0}")]
    Halted(String),
    /// No gas limit up to the allowance lets the call succeed.
    #[error("gas required exceeds allowance ({0})")]
    GasExceedsAllowance(u64),
    /// The transaction could not run at all (funds, fees, gas limit below the intrinsic
    /// gas…).
    #[error("{0}")]
    Rejected(String),
    /// The request itself is malformed.
    #[error("{0}")]
    InvalidRequest(String),
    /// Reading the state failed.
    #[error("state read failed: {0}")]
    State(String),
}

/// The message of an ABI-encoded `Error(string)` revert, if `output` is one.
pub fn revert_reason(output: &[u8]) -> Option<String> {
    const ERROR_SELECTOR: [u8; 4] = [0x08, 0xc3, 0x79, 0xa0];
    let body = output.strip_prefix(&ERROR_SELECTOR)?;
    let word = |at: usize| -> Option<usize> {
        let w = body.get(at..at + 32)?;
        w[..24]
            .iter()
            .all(|b| *b == 0)
            .then(|| u64::from_be_bytes(w[24..].try_into().unwrap()))?
            .try_into()
            .ok()
    };
    let offset = word(0)?;
    let len = word(offset)?;
    let start = offset.checked_add(32)?;
    let bytes = body.get(start..start.checked_add(len)?)?;
    String::from_utf8(bytes.to_vec()).ok()
}

/// What a successful call returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOutput {
    /// The returned data (a created contract's code for a creation).
    pub output: Bytes,
    /// Gas used, after refunds.
    pub gas_used: u64,
}

/// An access list and the gas used with it ([`CallContext::create_access_list`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessListOutput {
    /// Every address and slot the call touched (sender, recipient and precompiles
    /// excepted, as geth lists them).
    pub access_list: AccessList,
    /// Gas used when sending the request with that list.
    pub gas_used: u64,
    /// Why the call failed, if it did (the list is still returned).
    pub error: Option<String>,
}

/// The state after block `header` and that block's environment: where calls run.
#[derive(Debug)]
pub struct CallContext<'a, S> {
    /// The chain.
    pub spec: &'a ChainSpec,
    /// The state after the block.
    pub state: &'a S,
    /// The block whose environment (number, timestamp, base fee…) calls see.
    pub header: &'a Header,
    /// The most gas a call may use, in gas (reth's and geth's `--rpc.gascap`).
    pub gas_cap: u64,
}

type Db<'a, S> = CacheDB<WrapDatabaseRef<StoreDb<'a, S>>>;

fn db_error(e: impl std::fmt::Display) -> CallError {
    CallError::State(e.to_string())
}

/// geth's words for a transaction that cannot run (where they differ from revm's).
fn rejected(e: InvalidTransaction) -> CallError {
    CallError::Rejected(match e {
        InvalidTransaction::LackOfFundForMaxFee { fee, balance } => {
            format!("insufficient funds for gas * price + value: have {balance} want {fee}")
        }
        InvalidTransaction::CallGasCostMoreThanGasLimit { initial_gas, gas_limit } => {
            format!("intrinsic gas too low: have {gas_limit}, want {initial_gas}")
        }
        InvalidTransaction::GasPriceLessThanBasefee => {
            "max fee per gas less than block base fee".to_string()
        }
        InvalidTransaction::PriorityFeeGreaterThanMaxFee => {
            "max priority fee per gas higher than max fee per gas".to_string()
        }
        other => other.to_string(),
    })
}

fn evm_error<E: std::fmt::Display>(e: EVMError<E>) -> CallError {
    match e {
        EVMError::Transaction(t) => rejected(t),
        EVMError::Database(e) => db_error(e),
        other => CallError::Rejected(other.to_string()),
    }
}

fn halted(reason: HaltReason, gas_limit: u64) -> CallError {
    match reason {
        HaltReason::OutOfGas(_) => CallError::Halted(format!("out of gas (gas limit {gas_limit})")),
        other => CallError::Halted(format!("{other:?}")),
    }
}

impl<'a, S: StateRead + std::fmt::Debug> CallContext<'a, S> {
    /// The EVM environment of a call: the block's, with the checks a call skips (nonce,
    /// the sender having code, the block gas limit; the base fee when no fee is given,
    /// as geth does).
    fn evm_env(&self, request: &TransactionRequest) -> EvmEnv {
        let forks = EvmForks::at(self.spec, self.header);
        let mut env = forks.evm_env(self.header, self.header.beneficiary);
        env.cfg_env.disable_nonce_check = true;
        env.cfg_env.disable_eip3607 = true;
        env.cfg_env.disable_block_gas_limit = true;
        let no_fees = request.gas_price.is_none()
            && request.max_fee_per_gas.is_none()
            && request.max_priority_fee_per_gas.is_none();
        env.cfg_env.disable_base_fee = no_fees;
        if no_fees {
            // As geth: a call without fees sees a zero BASEFEE (and BLOBBASEFEE when it
            // sets no blob fee either), so it runs as a free transaction would.
            env.block_env.basefee = 0;
            if request.max_fee_per_blob_gas.is_none() {
                if let Some(blob) = env.block_env.blob_excess_gas_and_price.as_mut() {
                    blob.blob_gasprice = 0;
                }
            }
        }
        env
    }

    /// The most gas a call may be given: the cap, the block's limit when none is asked
    /// for, and EIP-7825's per-transaction cap from Osaka on.
    fn max_gas(&self, env: &EvmEnv) -> u64 {
        let mut max = self.gas_cap;
        if env.cfg_env.spec >= SpecId::OSAKA {
            max = max.min(OSAKA_TX_GAS_CAP);
        }
        max
    }

    /// The database with `overrides` applied.
    fn db(&self, overrides: Option<StateOverride>) -> Result<Db<'a, S>, CallError> {
        let mut db = CacheDB::new(WrapDatabaseRef(StoreDb(self.state)));
        if let Some(overrides) = overrides {
            apply_state_overrides(overrides, &mut db)
                .map_err(|e| CallError::InvalidRequest(e.to_string()))?;
        }
        Ok(db)
    }

    /// The transaction environment of `request` with gas limit defaulted and capped, and
    /// the sender's nonce when none is given (a creation's address depends on it).
    fn tx_env(
        &self,
        db: &Db<'a, S>,
        env: &EvmEnv,
        mut request: TransactionRequest,
    ) -> Result<TxEnv, CallError> {
        let max = self.max_gas(env);
        let gas = request.gas.unwrap_or(max.min(self.header.gas_limit));
        if gas > max {
            return Err(CallError::InvalidRequest(format!(
                "gas limit {gas} is above the allowed {max} (--rpc.gascap, or EIP-7825's cap)"
            )));
        }
        request.gas = Some(gas);
        if request.nonce.is_none() {
            let from = request.from.unwrap_or_default();
            request.nonce = Some(db.basic_ref(from).map_err(db_error)?.map_or(0, |a| a.nonce));
        }
        request.try_into_tx_env(env).map_err(|e| CallError::InvalidRequest(e.to_string()))
    }

    /// Runs `request` once; `Ok` holds the EVM's result, successful or not.
    fn run(
        db: &mut Db<'a, S>,
        env: &EvmEnv,
        tx: TxEnv,
    ) -> Result<ExecutionResult<HaltReason>, CallError> {
        let mut evm = EthEvmFactory::default().create_evm(&mut *db, env.clone());
        Ok(evm.transact(tx).map_err(evm_error)?.result)
    }

    /// `eth_call`: runs `request` and returns its output.
    pub fn call(
        &self,
        request: TransactionRequest,
        overrides: Option<StateOverride>,
    ) -> Result<CallOutput, CallError> {
        let env = self.evm_env(&request);
        let mut db = self.db(overrides)?;
        let tx = self.tx_env(&db, &env, request)?;
        let gas_limit = tx.gas_limit;
        outcome(Self::run(&mut db, &env, tx)?, gas_limit)
    }

    /// `eth_estimateGas`: the least gas (within 1.5%) with which `request` succeeds,
    /// searched between what one run used and the allowance (the cap, the request's gas,
    /// and what the sender can pay for at the request's price).
    pub fn estimate_gas(
        &self,
        request: TransactionRequest,
        overrides: Option<StateOverride>,
    ) -> Result<u64, CallError> {
        let env = self.evm_env(&request);
        let mut db = self.db(overrides)?;
        let mut tx = self.tx_env(&db, &env, request.clone())?;
        let mut hi = if request.gas.is_some() { tx.gas_limit } else { self.max_gas(&env) };
        if tx.gas_price > 0 {
            let balance =
                db.basic_ref(tx.caller).map_err(db_error)?.map_or(U256::ZERO, |a| a.balance);
            let Some(left) = balance.checked_sub(tx.value) else {
                return Err(CallError::Rejected(format!(
                    "insufficient funds for transfer: have {balance} want {}",
                    tx.value
                )));
            };
            let allowance: u64 = (left / U256::from(tx.gas_price)).saturating_to();
            hi = hi.min(allowance);
        }
        // A plain transfer to an account without code costs exactly the transfer gas.
        if let TxKind::Call(to) = tx.kind {
            let plain = tx.data.is_empty() && tx.authorization_list.is_empty();
            let code = db.basic_ref(to).map_err(db_error)?.and_then(|a| a.code);
            if plain && code.is_none_or(|c| c.is_empty()) && hi >= TRANSFER_GAS {
                tx.gas_limit = TRANSFER_GAS;
                outcome(Self::run(&mut db, &env, tx)?, TRANSFER_GAS)?;
                return Ok(TRANSFER_GAS);
            }
        }
        tx.gas_limit = hi;
        let first = match Self::run(&mut db, &env, tx.clone())? {
            ExecutionResult::Halt { reason: HaltReason::OutOfGas(_), .. } => {
                return Err(CallError::GasExceedsAllowance(hi))
            }
            result => outcome(result, hi)?,
        };
        // Succeeds with `gas`?
        let mut succeeds = |gas: u64| -> Result<bool, CallError> {
            let tx = TxEnv { gas_limit: gas, ..tx.clone() };
            match Self::run(&mut db, &env, tx) {
                Ok(r) => Ok(r.is_success()),
                Err(CallError::Rejected(_)) => Ok(false),
                Err(e) => Err(e),
            }
        };
        let mut lo = first.gas_used.saturating_sub(1);
        // Most calls succeed with what they used plus the 1/64 a call keeps back.
        let optimistic = (first.gas_used + 2_300).saturating_mul(64) / 63;
        if optimistic < hi {
            if succeeds(optimistic)? {
                hi = optimistic;
            } else {
                lo = optimistic;
            }
        }
        while lo + 1 < hi && ((hi - lo) as f64 / hi as f64) > ESTIMATE_ERROR_RATIO {
            let mid = lo / 2 + hi / 2;
            if succeeds(mid)? {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Ok(hi)
    }

    /// `eth_createAccessList`: the addresses and slots `request` touches, and the gas it
    /// uses when sent with them. Runs until the list stops growing (a list can change
    /// which path the code takes only through gas).
    pub fn create_access_list(
        &self,
        mut request: TransactionRequest,
    ) -> Result<AccessListOutput, CallError> {
        let env = self.evm_env(&request);
        let mut db = self.db(None)?;
        let from = request.from.unwrap_or_default();
        let mut list = request.access_list.clone().unwrap_or_default();
        for _ in 0..8 {
            request.access_list = Some(list.clone());
            let tx = self.tx_env(&db, &env, request.clone())?;
            let to = match tx.kind {
                TxKind::Call(to) => to,
                TxKind::Create => from.create(tx.nonce),
            };
            let gas_limit = tx.gas_limit;
            let mut tracer = AccessTracer::new([from, to]);
            let result = {
                let mut evm = EthEvmFactory::default().create_evm_with_inspector(
                    &mut db,
                    env.clone(),
                    &mut tracer,
                );
                evm.transact(tx).map_err(evm_error)?.result
            };
            let found = tracer.into_list(env.cfg_env.spec);
            if found == list {
                let gas_used = result.tx_gas_used();
                let error = outcome(result, gas_limit).err().map(|e| e.to_string());
                return Ok(AccessListOutput { access_list: list, gas_used, error });
            }
            list = found;
        }
        Err(CallError::Rejected("access list did not settle after 8 runs".into()))
    }
}

/// The output of a successful result, or the error that says why it failed.
fn outcome(result: ExecutionResult<HaltReason>, gas_limit: u64) -> Result<CallOutput, CallError> {
    match result {
        ExecutionResult::Success { output, gas, .. } => {
            Ok(CallOutput { output: output.into_data(), gas_used: gas.tx_gas_used() })
        }
        ExecutionResult::Revert { output, .. } => Err(CallError::Reverted { output }),
        ExecutionResult::Halt { reason, .. } => Err(halted(reason, gas_limit)),
    }
}

/// Records what a call touches, as geth's access-list tracer does: every slot read or
/// written, and every address whose account or code an instruction reads or calls,
/// except the excluded ones (sender and recipient) and precompiles.
struct AccessTracer {
    excluded: BTreeSet<Address>,
    touched: BTreeMap<Address, BTreeSet<B256>>,
}

impl AccessTracer {
    fn new(excluded: impl IntoIterator<Item = Address>) -> Self {
        Self { excluded: excluded.into_iter().collect(), touched: BTreeMap::new() }
    }

    fn into_list(self, spec: SpecId) -> AccessList {
        let precompiles = revm::precompile::Precompiles::new(
            revm::precompile::PrecompileSpecId::from_spec_id(spec),
        );
        AccessList(
            self.touched
                .into_iter()
                .filter(|(a, slots)| {
                    !slots.is_empty() || !(self.excluded.contains(a) || precompiles.contains(a))
                })
                .map(|(address, slots)| AccessListItem {
                    address,
                    storage_keys: slots.into_iter().collect(),
                })
                .collect(),
        )
    }
}

impl<CTX: ContextTr> Inspector<CTX> for AccessTracer {
    fn step(&mut self, interp: &mut Interpreter<EthInterpreter>, _context: &mut CTX) {
        let op = interp.bytecode.opcode();
        let peek = |n: usize| interp.stack.peek(n).ok();
        match op {
            opcode::SLOAD | opcode::SSTORE => {
                if let Some(slot) = peek(0) {
                    let address = revm::interpreter::interpreter_types::InputsTr::target_address(
                        &interp.input,
                    );
                    self.touched.entry(address).or_default().insert(B256::from(slot));
                }
            }
            opcode::EXTCODECOPY
            | opcode::EXTCODEHASH
            | opcode::EXTCODESIZE
            | opcode::BALANCE
            | opcode::SELFDESTRUCT => {
                if let Some(a) = peek(0) {
                    self.address(a);
                }
            }
            opcode::CALL | opcode::CALLCODE | opcode::DELEGATECALL | opcode::STATICCALL => {
                if let Some(a) = peek(1) {
                    self.address(a);
                }
            }
            _ => {}
        }
    }
}

impl AccessTracer {
    fn address(&mut self, word: U256) {
        let address = Address::from_word(B256::from(word));
        if !self.excluded.contains(&address) {
            self.touched.entry(address).or_default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::revert_reason;
    use alloy_primitives::hex;

    #[test]
    fn revert_reasons_decode_only_from_error_string() {
        // Error("user error"), from the execution-apis test `call-revert-abi-error`.
        let data = hex!("08c379a00000000000000000000000000000000000000000000000000000000000000020000000000000000000000000000000000000000000000000000000000000000a75736572206572726f7200000000000000000000000000000000000000000000");
        assert_eq!(revert_reason(&data).as_deref(), Some("user error"));
        assert_eq!(revert_reason(&data[..40]), None, "truncated");
        assert_eq!(revert_reason(b"wrong-calldatasize"), None, "not ABI-encoded");
    }
}
