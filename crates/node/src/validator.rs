//! The validator (`--enable-consensus`): every period, a sealed block on the best block.

use crate::pool::PoolCandidates;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tern_chainspec::{ChainSpec, Consensus};
use tern_consensus::{
    clique::{cast_vote, decode_proposals, pick_vote, Proposals},
    validate_header, ConsensusError, Sealer, SnapshotError,
};
use tern_execution::{build_and_store, BuildError};
use tern_storage::{ChainStore, StoreError};
use tern_sync::CliqueSnapshots;
use tokio::sync::watch;
use tracing::{debug, info, warn};

/// Why the validator cannot run or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ValidatorError {
    /// The chain is not a Clique chain.
    #[error("--enable-consensus needs a Clique chain; this chain's consensus is {0:?}")]
    NotClique(Consensus),
    /// The signer state at the head could not be found.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A block we built failed our own validation (a bug; nothing was stored).
    #[error("built an invalid block: {0}")]
    Invalid(#[from] ConsensusError),
    /// The task building the block failed (it panicked: a bug).
    #[error("building the block failed: {0}")]
    Task(String),
    /// Executing the block we built failed (a bug or a broken store; nothing was
    /// stored).
    #[error("could not execute the block we built: {0}")]
    Execution(#[from] tern_execution::ExecutionError),
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The Clique period and epoch of `spec`, or an error for other chains.
fn clique_params(spec: &ChainSpec) -> Result<(u64, u64), ValidatorError> {
    let Consensus::Clique { period, epoch, .. } = &spec.consensus else {
        return Err(ValidatorError::NotClique(spec.consensus.clone()));
    };
    Ok((*period, *epoch))
}

/// The stored proposals (none if unreadable: logged, and voting goes on without them).
fn stored_proposals(store: &ChainStore) -> Proposals {
    match store.clique_proposals() {
        Ok(Some(bytes)) => decode_proposals(&bytes).unwrap_or_else(|e| {
            warn!(error = %e, "stored clique proposals are unreadable; casting no votes");
            Proposals::new()
        }),
        Ok(None) => Proposals::new(),
        Err(e) => {
            warn!(error = %e, "could not read the clique proposals; casting no votes");
            Proposals::new()
        }
    }
}

/// The longest a block is filled from the pool: half the period, at most this.
pub const MAX_BUILD_TIME: Duration = Duration::from_secs(2);

/// How long filling a block may take with blocks every `period` seconds: half the period
/// (at most [`MAX_BUILD_TIME`]), so the block seals on time with a full pool.
pub fn build_budget(period: u64) -> Duration {
    (Duration::from_secs(period.max(1)) / 2).min(MAX_BUILD_TIME)
}

/// Seals a block on the stored best block every `period` seconds (in turn at
/// parent + period, out of turn after a random wiggle) until `shutdown` turns true,
/// filled from `pool` (best effective tip first, for at most [`build_budget`]).
/// Each block is checked by our own header and seal rules before it is stored.
/// Sealed blocks are published on `sealed` (number, hash) for announcement.
pub async fn run_validator(
    spec: &ChainSpec,
    store: ChainStore,
    pool: std::sync::Arc<crate::NodePool>,
    sealer: Sealer,
    sealed: watch::Sender<(u64, alloy_primitives::B256)>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ValidatorError> {
    let (period, _) = clique_params(spec)?;
    let snapshots = CliqueSnapshots::new(spec, store.clone()).expect("a Clique chain");
    info!(signer = %sealer.address(), period, "validator started");
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_os_rng();
    let mut was_signer = None;
    loop {
        let (number, hash) = store.best_block()?;
        let parent = store.header(hash)?.ok_or(StoreError::NotInitialised)?;
        // Usually cached (our last block, or a few blocks from peers on top of it); after a
        // restart up to SNAPSHOT_INTERVAL headers are read: off the async workers.
        let snapshot = {
            let snapshots = snapshots.clone();
            tokio::task::spawn_blocking(move || snapshots.after(hash))
                .await
                .map_err(|e| ValidatorError::Task(e.to_string()))??
        };
        let is_signer = snapshot.signers().contains(&sealer.address());
        if was_signer != Some(is_signer) {
            match is_signer {
                true => {
                    info!(signer = %sealer.address(), block = number, signers = snapshot.signers().len(), "validator key is an authorized signer; sealing")
                }
                false => {
                    warn!(signer = %sealer.address(), block = number, signers = ?snapshot.signers(), "validator key is not an authorized signer; it seals once the signers vote it in")
                }
            }
            was_signer = Some(is_signer);
        }
        let wait = match sealer.plan(&snapshot, &parent, period, &mut rng) {
            Some(plan) => {
                // The slot may be in the past (a restart, a late block): then the wiggle
                // counts from now, so out-of-turn signers still let the in-turn one go first.
                let at = (plan.timestamp * 1000).max(now_ms()) + plan.delay_ms;
                Duration::from_millis(at.saturating_sub(now_ms()))
            }
            None => {
                debug!(next = number + 1, is_signer, "not our block to seal; waiting");
                Duration::from_secs(period.max(1))
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            info!("validator stopped");
            return Ok(());
        }
        let Some(plan) = sealer.plan(&snapshot, &parent, period, &mut rng) else { continue };
        if store.best_block()?.1 != hash {
            continue; // another signer's block arrived meanwhile
        }
        let timestamp = plan.timestamp.max(now_ms() / 1000);
        let mut template = sealer.template(spec, &snapshot, &parent, hash, timestamp);
        let vote = pick_vote(&snapshot, &stored_proposals(&store), plan.number, &mut rng);
        if let Some(vote) = vote {
            cast_vote(&mut template.header, vote);
        }
        let mut after = snapshot.clone();
        // Executed on the stored state, sealed with the executed roots, stored with its
        // state in one transaction, off the async workers (execution is CPU work).
        let started = Instant::now();
        let built = {
            let (spec, store, sealer) = (spec.clone(), store.clone(), sealer.clone());
            let mut snapshot = snapshot;
            let mut candidates = PoolCandidates(pool.best());
            let deadline = started + build_budget(period);
            tokio::task::spawn_blocking(move || {
                let signer = sealer.address();
                build_and_store(
                    &spec,
                    &store,
                    template,
                    &mut candidates,
                    signer,
                    deadline,
                    |header| {
                        sealer.seal(header)?;
                        validate_header(&spec, header, &parent, hash, now_ms() / 1000)?;
                        snapshot.verify(header).map(|_| ())
                    },
                )
            })
            .await
            .map_err(|e| ValidatorError::Task(e.to_string()))?
        };
        match built {
            Ok((block, built)) => {
                after.apply(&block.block.header, sealer.address());
                snapshots.remember(block.hash, &after);
                let took = started.elapsed();
                metrics::histogram!("tern_block_build_seconds").record(took.as_secs_f64());
                pool.remove_failed(&built.failed);
                let new = (block.block.header.number, block.hash);
                let txs = block.block.body.transactions.len();
                let gas = block.block.header.gas_used;
                let vote = vote.map(|(candidate, add)| {
                    format!("{} {candidate}", if add { "add" } else { "drop" })
                });
                info!(number = new.0, hash = %new.1, txs, gas, took_ms = took.as_millis() as u64, in_turn = plan.in_turn, full_time = built.timed_out, vote, "sealed block");
                let _ = sealed.send(new);
            }
            // Lost a race with an imported block: try again on the new head.
            Err(BuildError::Store(StoreError::NotExtending { number, .. })) => {
                warn!(number, "head moved while sealing")
            }
            Err(BuildError::Store(e)) => return Err(e.into()),
            Err(BuildError::Seal(e)) => return Err(e.into()),
            Err(BuildError::Execution(e)) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_consensus::{address_of, Snapshot};

    use crate::testing::dev_key;

    #[test]
    fn refuses_non_clique_chains() {
        let spec = ChainSpec::dev();
        assert!(clique_params(&spec).is_ok());
        let mut post = spec.clone();
        post.consensus = Consensus::PostMerge;
        assert!(matches!(clique_params(&post), Err(ValidatorError::NotClique(_))));
    }

    /// The dev chain's validator seals a block every 2 s into the store, each valid.
    #[tokio::test]
    async fn seals_blocks_into_the_store() {
        let dir = std::env::temp_dir().join(format!("tern-validator-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let spec = ChainSpec::dev();
        let store = ChainStore::init(&dir, &spec).unwrap();
        let (sealed_tx, mut sealed_rx) = watch::channel((0, spec.genesis_hash));
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = {
            let (spec, store) = (spec.clone(), store.clone());
            tokio::spawn(async move {
                let pool =
                    crate::NodePool::new(spec.clone(), store.clone(), Default::default()).unwrap();
                run_validator(&spec, store, pool, Sealer::new(dev_key()), sealed_tx, stop_rx).await
            })
        };
        // The dev genesis is in the past, so the first blocks come at once, then every 2 s.
        while sealed_rx.borrow().0 < 3 {
            sealed_rx.changed().await.unwrap();
        }
        stop_tx.send(true).unwrap();
        task.await.unwrap().unwrap();
        let (best, _) = store.best_block().unwrap();
        assert!(best >= 3);
        // Each block was executed and stored with its state.
        assert_eq!(store.state_number().unwrap(), best);
        let head = store.block_by_number(best).unwrap().unwrap();
        assert_eq!(store.state().unwrap().state_root().unwrap(), head.header().state_root);
        let mut snap = Snapshot::new(vec![address_of(&dev_key())], 30_000);
        let mut parent = spec.genesis_header.clone();
        for n in 1..=best {
            let block = store.block_by_number(n).unwrap().unwrap();
            validate_header(
                &spec,
                block.header(),
                &parent,
                parent.hash_slow(),
                now_ms() / 1000 + 60,
            )
            .unwrap();
            snap.verify(block.header()).unwrap();
            parent = block.block.header;
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
