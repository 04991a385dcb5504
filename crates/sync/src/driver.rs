//! [`BlockSyncManager`]: runs the [`SyncMachine`] against the network and the store.

use crate::{
    Action, CliqueSnapshots, Failure, ReadyBlock, RecentChain, SyncConfig, SyncMachine, SyncStatus,
    WallClock,
};
use alloy_primitives::B256;
use futures::{future::BoxFuture, stream::FuturesUnordered, FutureExt, StreamExt};
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use tern_chainspec::ChainSpec;
use tern_execution::{
    execute_and_store, store_executed, AheadError, BlockToExecute, ExecuteAhead, ExecutedBatch,
    StateRootCheck, StoreExecutionError,
};
use tern_network::{NetworkEvent, NetworkHandle, RequestError};
use tern_storage::{ChainStore, StoreError};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

/// What sync reports to the rest of the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncProgress {
    /// The head this sync started from (when we last fell behind; at start, the stored
    /// best block).
    pub start: u64,
    /// Our head.
    pub head: u64,
    /// The best head peers claim.
    pub target: u64,
    /// The gap class.
    pub status: SyncStatus,
}

/// A handle to watch sync progress.
#[derive(Debug, Clone)]
pub struct SyncHandle {
    rx: watch::Receiver<SyncProgress>,
}

impl SyncHandle {
    /// The latest progress.
    pub fn progress(&self) -> SyncProgress {
        *self.rx.borrow()
    }

    /// Waits until our head reaches `number` (or sync stops).
    pub async fn wait_for_head(&mut self, number: u64) {
        let _ = self.rx.wait_for(|p| p.head >= number).await;
    }
}

/// A store write, done on the writer thread so execution and commits overlap with
/// download and verification.
enum Job {
    Commit(Vec<ReadyBlock>),
    Reorg(u64, Vec<ReadyBlock>),
}

impl Job {
    /// The blocks to store.
    fn blocks_mut(&mut self) -> &mut Vec<ReadyBlock> {
        match self {
            Job::Commit(blocks) | Job::Reorg(_, blocks) => blocks,
        }
    }
}

/// Batches queued for the sender stage at most (bounds memory: the machine waits). None:
/// with the one the sender stage recovers, the one the executor runs and the one the
/// committer writes, at most three batches are on their way to the store (a fourth, queued,
/// measured no faster and only costs memory).
const WRITE_QUEUE: usize = 0;

/// Why the writer could not store a batch.
#[derive(Debug)]
enum WriteError {
    /// The store failed, or the batch no longer extends the stored head.
    Store(StoreError),
    /// The node is stopping: the batch was not started (nothing of it stored; sync
    /// resumes from the stored head at the next start).
    Skipped,
    /// A block is invalid: a transaction's signature recovers no sender, or it does not
    /// execute to its header. The blocks before it were stored.
    BadBlock {
        /// Its number.
        number: u64,
        /// Its hash.
        hash: B256,
        /// Who served its header.
        peer: tern_p2p::PeerId,
        /// What is wrong.
        error: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// What the writer reports per batch: the stored head, or why it failed.
type Written = Result<(u64, B256), WriteError>;

/// A batch on its way from the sender stage to the writer: the job with every sender
/// recovered up to the first block with a bad signature (the job then ends before it),
/// and that block's error.
struct Recovered {
    job: Job,
    bad: Option<WriteError>,
}

/// Recovers the senders of every block of `job` on all cores at once; a block whose
/// transaction recovers no sender ends the job there (the blocks before it still go to
/// the writer).
fn recover_job(mut job: Job) -> Recovered {
    let blocks = job.blocks_mut();
    let bodies: Vec<&[alloy_consensus::TxEnvelope]> =
        blocks.iter().map(|b| &b.block.block.block.body.transactions[..]).collect();
    let recovered = tern_consensus::recover_senders_of_blocks(&bodies);
    let mut bad = None;
    for (i, senders) in recovered.into_iter().enumerate() {
        match senders {
            Ok(senders) => blocks[i].block.senders = senders,
            Err(error) => {
                let b = &blocks[i];
                bad = Some(WriteError::BadBlock {
                    number: b.block.block.block.header.number,
                    hash: b.block.block.hash,
                    peer: b.peer,
                    error: Box::new(error),
                });
                blocks.truncate(i);
                break;
            }
        }
    }
    Recovered { job, bad }
}

/// What the committer needs to know of a block besides its contents: where it is and who
/// served it (the blocks themselves move into the executor, and from there into the
/// [`ExecutedBatch`]).
#[derive(Debug, Clone, Copy)]
struct Served {
    number: u64,
    hash: B256,
    peer: tern_p2p::PeerId,
}

/// Splits downloaded blocks into what the executor takes and what the committer keeps.
fn split(blocks: Vec<ReadyBlock>) -> (Vec<Served>, Vec<BlockToExecute>) {
    blocks
        .into_iter()
        .map(|b| {
            let block = &b.block.block;
            let served =
                Served { number: block.block.header.number, hash: block.hash, peer: b.peer };
            (served, b.block)
        })
        .unzip()
}

/// What a [`StoreExecutionError`] means for sync.
fn write_error(blocks: &[Served], e: StoreExecutionError) -> WriteError {
    match e {
        StoreExecutionError::Store(e) => WriteError::Store(e),
        StoreExecutionError::BadBlock { index, hash, error } => WriteError::BadBlock {
            number: blocks[index].number,
            hash,
            peer: blocks[index].peer,
            error: Box::new(error),
        },
    }
}

/// The stored head after `blocks` (the default for none).
fn last_of(blocks: &[Served]) -> (u64, B256) {
    blocks.last().map(|b| (b.number, b.hash)).unwrap_or_default()
}

/// A batch on its way from the executor to the committer.
enum Executed {
    /// Executed ahead of the store: store it, then report `bad` (a bad signature after
    /// the batch's last block) if all of it stored.
    Ahead { blocks: Vec<Served>, batch: ExecutedBatch, bad: Option<WriteError> },
    /// Blocks before Byzantium: executed on the store by the committer.
    InPlace { blocks: Vec<Served>, execute: Vec<BlockToExecute>, bad: Option<WriteError> },
    /// Nothing to store: report this.
    Done(Written),
}

/// Batches handed to the committer and not yet reported, shared by the executor (which
/// waits for none to be left before it starts over from the store) and the committer.
#[derive(Default)]
struct InFlight {
    count: std::sync::Mutex<usize>,
    changed: std::sync::Condvar,
    /// Set by the committer when a batch did not store whole: the executor's cache may
    /// hold what the store does not.
    failed: AtomicBool,
}

impl InFlight {
    fn add(&self) {
        *self.count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    }

    fn done(&self) {
        *self.count.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        self.changed.notify_all();
    }

    /// Waits until the committer has reported every batch it was given.
    fn wait_idle(&self) {
        let mut count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        while *count > 0 {
            count = self.changed.wait(count).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Executes one job ahead of the store (starting over from the store when the cache
/// cannot be used: after the committer has stored or failed everything before it).
fn execute_job(
    ahead: &mut ExecuteAhead,
    store: &ChainStore,
    in_flight: &InFlight,
    job: Job,
    bad: Option<WriteError>,
) -> Executed {
    let from_store = |ahead: &mut ExecuteAhead| {
        in_flight.wait_idle();
        in_flight.failed.store(false, Ordering::Release);
        ahead.reset();
    };
    let blocks = match job {
        Job::Commit(blocks) => blocks,
        Job::Reorg(ancestor, blocks) => {
            from_store(ahead);
            if let Err(e) = store.unwind_to(ancestor) {
                return Executed::Done(Err(WriteError::Store(e)));
            }
            blocks
        }
    };
    if blocks.is_empty() {
        // Nothing to store (a bad signature in the batch's first block): report it, or the
        // head as it stands.
        let written = match bad {
            Some(bad) => Err(bad),
            None => store.best_block().map_err(WriteError::Store),
        };
        return Executed::Done(written);
    }
    if ahead.needs_store() || in_flight.failed.load(Ordering::Acquire) {
        from_store(ahead);
    }
    let (blocks, mut execute) = split(blocks);
    let mut result = ahead.execute(&mut execute);
    if matches!(result, Err(AheadError::Stale)) {
        from_store(ahead);
        result = ahead.execute(&mut execute);
    }
    match result {
        Ok(batch) => Executed::Ahead { blocks, batch, bad },
        Err(AheadError::PreByzantium) => {
            from_store(ahead);
            Executed::InPlace { blocks, execute, bad }
        }
        Err(AheadError::Store(e)) => Executed::Done(Err(WriteError::Store(e))),
        Err(AheadError::Stale) => {
            Executed::Done(Err(WriteError::Store(StoreError::NotExtending {
                number: blocks[0].number,
                hash: blocks[0].hash,
                reason: "the store moved while the batch was executed",
            })))
        }
    }
}

/// Stores what the executor produced; returns the report.
fn commit(spec: &ChainSpec, store: &ChainStore, executed: Executed, every_root: bool) -> Written {
    let (head, bad) = match executed {
        Executed::Done(written) => return written,
        Executed::Ahead { blocks, batch, bad } => {
            let roots = StateRootCheck::for_batch(blocks.len(), every_root);
            match store_executed(store, batch, roots) {
                Ok(()) => (Ok(last_of(&blocks)), bad),
                Err(e) => (Err(write_error(&blocks, e)), None),
            }
        }
        Executed::InPlace { blocks, execute, bad } => {
            let roots = StateRootCheck::for_batch(blocks.len(), every_root);
            match execute_and_store(spec, store, &execute, roots) {
                Ok(_) => (Ok(last_of(&blocks)), bad),
                Err(e) => (Err(write_error(&blocks, e)), None),
            }
        }
    };
    // The blocks before a bad signature are stored; then the bad block is reported.
    match (head, bad) {
        (Ok(_), Some(bad)) => Err(bad),
        (head, _) => head,
    }
}

/// The store stages' handles: the job queue, their reports, and the flag that makes them
/// skip the batches they have not started (set when the node stops, so stopping waits
/// for at most the batch being written).
struct Writer {
    jobs: std::sync::mpsc::SyncSender<Job>,
    written: mpsc::UnboundedReceiver<Written>,
    stopping: Arc<AtomicBool>,
}

/// Starts the three store stages: a sender stage (signatures of a whole batch recovered
/// on every core) feeding the executor (the batch executed on the state after the one
/// before, ahead of the store) feeding the committer (state roots, writes, commit), so
/// recovery, execution and writing of consecutive batches overlap.
fn spawn_writer(spec: ChainSpec, store: ChainStore, every_root: bool) -> Writer {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(WRITE_QUEUE);
    // Hand-overs: each stage waits until the next takes its batch.
    let (recovered_tx, recovered_rx) = std::sync::mpsc::sync_channel::<Recovered>(0);
    let (executed_tx, executed_rx) = std::sync::mpsc::sync_channel::<Executed>(0);
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let stopping = Arc::new(AtomicBool::new(false));
    let in_flight = Arc::new(InFlight::default());
    let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new().name(name.into()).spawn(f).expect("spawn a sync store stage");
    };
    let skip = stopping.clone();
    spawn(
        "tern-sync-senders",
        Box::new(move || {
            for job in rx {
                let recovered = if skip.load(Ordering::Acquire) {
                    Recovered { job, bad: Some(WriteError::Skipped) }
                } else {
                    let started = Instant::now();
                    let mut recovered = recover_job(job);
                    let blocks = recovered.job.blocks_mut().len();
                    debug!(blocks, ms = started.elapsed().as_millis() as u64, "senders recovered");
                    recovered
                };
                if recovered_tx.send(recovered).is_err() {
                    break;
                }
            }
        }),
    );
    let (skip, flight, exec_store) = (stopping.clone(), in_flight.clone(), store.clone());
    let exec_spec = spec.clone();
    spawn(
        "tern-sync-execute",
        Box::new(move || {
            let mut ahead = ExecuteAhead::new(exec_spec, exec_store.clone());
            for Recovered { job, bad } in recovered_rx {
                let executed =
                    if skip.load(Ordering::Acquire) || matches!(bad, Some(WriteError::Skipped)) {
                        Executed::Done(Err(WriteError::Skipped))
                    } else {
                        let started = Instant::now();
                        let executed = execute_job(&mut ahead, &exec_store, &flight, job, bad);
                        debug!(ms = started.elapsed().as_millis() as u64, "batch executed");
                        executed
                    };
                flight.add();
                if executed_tx.send(executed).is_err() {
                    break;
                }
            }
        }),
    );
    let skip = stopping.clone();
    spawn(
        "tern-sync-writer",
        Box::new(move || {
            for executed in executed_rx {
                let written = if skip.load(Ordering::Acquire) {
                    Err(WriteError::Skipped)
                } else {
                    let started = Instant::now();
                    let written = commit(&spec, &store, executed, every_root);
                    debug!(ms = started.elapsed().as_millis() as u64, "batch committed");
                    written
                };
                if written.is_err() {
                    in_flight.failed.store(true, Ordering::Release);
                }
                let sent = done_tx.send(written);
                in_flight.done();
                if sent.is_err() {
                    break;
                }
            }
        }),
    );
    Writer { jobs: tx, written: done_rx, stopping }
}

enum Done {
    Headers(tern_p2p::PeerId, u64, Result<Vec<alloy_consensus::Header>, RequestError>),
    Bodies(
        tern_p2p::PeerId,
        u64,
        Result<Vec<alloy_consensus::BlockBody<alloy_consensus::TxEnvelope>>, RequestError>,
    ),
}

fn failure(e: RequestError) -> Failure {
    match e {
        RequestError::Timeout(_) => Failure::Timeout,
        _ => Failure::Gone,
    }
}

/// Drives sync: network events and responses into the machine, its actions out to the
/// network and the store.
pub struct BlockSyncManager {
    machine: SyncMachine,
    cfg: SyncConfig,
    network: NetworkHandle,
    store: ChainStore,
    events: tern_network::NetworkEvents,
    progress: watch::Sender<SyncProgress>,
    requests: FuturesUnordered<BoxFuture<'static, Done>>,
    writer: std::sync::mpsc::SyncSender<Job>,
    written: mpsc::UnboundedReceiver<Written>,
    /// Set when stopping: the store stages skip batches they have not started.
    stopping: Arc<AtomicBool>,
    /// Batches handed to the writer and not yet confirmed.
    unwritten: usize,
    /// The head as stored (the machine's runs ahead while batches are being written).
    stored_head: (u64, B256),
    /// Clique signer snapshots (a Clique chain only).
    snapshots: Option<CliqueSnapshots>,
}

impl std::fmt::Debug for BlockSyncManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockSyncManager")
            .field("head", &self.machine.head())
            .finish_non_exhaustive()
    }
}

impl BlockSyncManager {
    /// A manager resuming from the store's best block.
    pub async fn new(
        spec: ChainSpec,
        cfg: SyncConfig,
        network: NetworkHandle,
        store: ChainStore,
    ) -> Result<(Self, SyncHandle), StoreError> {
        let (best, _) = store.best_block()?;
        let snapshots = CliqueSnapshots::new(&spec, store.clone());
        let machine = machine_from_store(&spec, &cfg, &store, snapshots.as_ref())?;
        let events = network.subscribe().await;
        let (progress, rx) = watch::channel(SyncProgress {
            start: best,
            head: best,
            target: best,
            status: SyncStatus::InSync,
        });
        info!(best, "sync resumes from the stored best block");
        let requests = FuturesUnordered::new();
        let Writer { jobs: writer, written, stopping } =
            spawn_writer(spec.clone(), store.clone(), cfg.every_state_root);
        let stored_head = store.best_block()?;
        let manager = Self {
            machine,
            cfg,
            network,
            store,
            events,
            progress,
            requests,
            writer,
            written,
            stopping,
            unwritten: 0,
            stored_head,
            snapshots,
        };
        Ok((manager, SyncHandle { rx }))
    }

    /// Waits for the writer to finish every queued batch (their errors are expected after
    /// a NotExtending and ignored).
    async fn drain_writes(&mut self) -> Result<(), StoreError> {
        while self.unwritten > 0 {
            match self.written.recv().await {
                Some(_) => self.unwritten -= 1,
                None => break,
            }
        }
        Ok(())
    }

    /// Tells the machine the store's head (another writer, the local validator, moved
    /// it); what it knows of the peers is kept.
    fn reload(&mut self) -> Result<(), StoreError> {
        self.stored_head = self.store.best_block()?;
        let recent = recent_from_store(&self.cfg, &self.store, self.snapshots.as_ref())?;
        self.machine.reset_head(recent, Instant::now());
        Ok(())
    }

    /// Runs until `shutdown` turns true; fails only if the store fails.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), StoreError> {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut log = tokio::time::interval(Duration::from_secs(5));
        let mut last_log = (Instant::now(), self.machine.committed);
        loop {
            self.perform().await?;
            self.publish_progress();
            tokio::select! {
                event = self.events.recv() => {
                    let Some(event) = event else { return Ok(()) };
                    self.on_event(event);
                }
                Some(done) = self.requests.next(), if !self.requests.is_empty() => {
                    let now = Instant::now();
                    let machine = &mut self.machine;
                    // Validation is CPU work: keep it off the async worker's hot path.
                    match &done {
                        Done::Headers(_, _, Ok(h)) => metrics::counter!("tern_headers_downloaded_total").increment(h.len() as u64),
                        Done::Bodies(_, _, Ok(b)) => metrics::counter!("tern_bodies_downloaded_total").increment(b.len() as u64),
                        _ => {}
                    }
                    tokio::task::block_in_place(|| match done {
                        Done::Headers(peer, id, r) => machine.on_headers(peer, id, r.map_err(failure), now),
                        Done::Bodies(peer, id, r) => machine.on_bodies(peer, id, r.map_err(failure), now),
                    });
                }
                Some(written) = self.written.recv() => {
                    self.unwritten -= 1;
                    match written {
                        Ok(head) => {
                            self.stored_head = head;
                            debug!(best = head.0, "batch stored");
                            self.network.announce_block(head.0, head.1).await;
                        }
                        // Our validator sealed on the head meanwhile: start over from the store.
                        Err(WriteError::Store(StoreError::NotExtending { .. })) => {
                            self.drain_writes().await?;
                            self.reload()?;
                        }
                        Err(WriteError::BadBlock { number, hash, peer, error }) => {
                            warn!(number, %hash, %peer, %error, "block does not execute to its header; blocks before it are stored");
                            self.machine.bad_block(peer, hash);
                            self.drain_writes().await?;
                            self.reload()?;
                        }
                        Err(WriteError::Store(e)) => return Err(e),
                        Err(WriteError::Skipped) => {}
                    }
                }
                _ = tick.tick() => {
                    if self.machine.is_idle() && self.unwritten == 0 && self.store.best_block()?.1 != self.machine.head().1 {
                        self.reload()?;
                    }
                    self.machine.tick(Instant::now());
                }
                _ = log.tick() => {
                    // `best` is what is stored; `verified` runs ahead while batches wait
                    // for the writer.
                    let (verified, _) = self.machine.head();
                    let head = self.stored_head.0;
                    let target = self.machine.best_peer_head().max(verified);
                    let elapsed = last_log.0.elapsed().as_secs_f64();
                    let rate = (self.machine.committed - last_log.1) as f64 / elapsed.max(0.001);
                    last_log = (Instant::now(), self.machine.committed);
                    if target > head || rate > 0.0 {
                        let eta = if rate > 0.0 { format!("{:.0}s", (target - head) as f64 / rate) } else { "unknown".into() };
                        info!(best = head, verified, target, blocks_per_sec = format!("{rate:.0}"), eta, status = ?self.machine.status(), "sync progress");
                        if rate == 0.0 {
                            match self.machine.stall_reason() {
                                Some(reason) => warn!(best = head, target, %reason, "sync is not progressing"),
                                None => info!(best = head, target, "sync is waiting for peers' answers"),
                            }
                        }
                    }
                    self.machine.set_clock(WallClock::system());
                }
                _ = shutdown.changed() => {
                    // Let the batch being written reach the disk; the others are
                    // skipped (not stored: the next start resumes from the stored head).
                    self.stopping.store(true, Ordering::Release);
                    self.drain_writes().await?;
                    return Ok(());
                }
            }
        }
    }

    /// Publishes our head (as stored: called after the actions are performed).
    fn publish_progress(&mut self) {
        let (head, hash) = self.stored_head;
        let target = self.machine.best_peer_head().max(head);
        let status = self.machine.status();
        metrics::gauge!("tern_best_block").set(head as f64);
        metrics::gauge!("tern_sync_target").set(target as f64);
        metrics::gauge!("tern_sync_gap").set(target.saturating_sub(head) as f64);
        let was_in_sync = self.progress.borrow().status == SyncStatus::InSync;
        if status == SyncStatus::InSync && !was_in_sync && self.machine.committed > 0 {
            info!(best = head, %hash, "in sync");
        }
        self.progress.send_if_modified(|p| {
            // A sync starts when we fall behind; while behind, it keeps its start.
            let start = if p.status == SyncStatus::InSync { p.head } else { p.start };
            let new = SyncProgress { start, head, target, status };
            let changed = *p != new;
            *p = new;
            changed
        });
    }

    fn on_event(&mut self, event: NetworkEvent) {
        let now = Instant::now();
        match event {
            NetworkEvent::PeerConnected(info) => self.machine.peer_connected(
                info.id,
                info.status.head_hash(),
                info.status.head_number(),
                now,
            ),
            NetworkEvent::PeerDisconnected { id, .. } => self.machine.peer_disconnected(id, now),
            NetworkEvent::NewBlockHashes { peer, blocks } => {
                if let Some(b) = blocks.iter().max_by_key(|b| b.number) {
                    self.machine.announced(peer, b.number, b.hash, now);
                }
            }
            NetworkEvent::NewBlock { peer, block } => {
                let h = &block.block.header;
                self.machine.announced(peer, h.number, h.hash_slow(), now);
            }
            NetworkEvent::BlockRange { peer, range } => {
                self.machine.announced(peer, range.latest, range.latest_hash, now)
            }
            // Transaction gossip goes to transaction subscribers only.
            NetworkEvent::Transactions { .. } | NetworkEvent::TransactionHashes { .. } => {}
        }
    }

    async fn perform(&mut self) -> Result<(), StoreError> {
        let actions: Vec<Action> = self.machine.actions().collect();
        for action in actions {
            match action {
                Action::GetHeaders { peer, id, req } => {
                    let net = self.network.clone();
                    self.requests.push(async move { Done::Headers(peer, id, net.get_block_headers(peer, req).await) }.boxed());
                }
                Action::GetBodies { peer, id, hashes } => {
                    let net = self.network.clone();
                    self.requests.push(async move { Done::Bodies(peer, id, net.get_block_bodies(peer, hashes).await) }.boxed());
                }
                Action::Penalize { peer, penalty } => self.network.penalize(peer, penalty).await,
                Action::Commit { blocks } => self.write(Job::Commit(blocks)),
                Action::Reorg { ancestor, blocks } => {
                    info!(ancestor, new_head = ?blocks.last().map(|b| b.block.block.block.header.number), "reorg");
                    self.write(Job::Reorg(ancestor, blocks));
                }
            }
        }
        Ok(())
    }
}

impl BlockSyncManager {
    /// Hands a batch to the writer thread (waiting while two are already queued).
    fn write(&mut self, job: Job) {
        self.unwritten += 1;
        let writer = &self.writer;
        // The queue is short: a full queue means the disk is the bottleneck, so wait.
        let _ = tokio::task::block_in_place(|| writer.send(job));
    }
}

/// The canonical headers (with total difficulty) the machine keeps: up to the reorg depth
/// below the stored head; on a Clique chain with the signer snapshot after the first.
fn recent_from_store(
    cfg: &SyncConfig,
    store: &ChainStore,
    snapshots: Option<&CliqueSnapshots>,
) -> Result<RecentChain, StoreError> {
    let (best, _) = store.best_block()?;
    let first = best.saturating_sub(cfg.max_reorg_depth);
    let mut headers = Vec::new();
    for header in store.headers_range(first, best - first + 1)? {
        let td = store.total_difficulty(header.hash_slow())?.unwrap_or_default();
        headers.push((header, td));
    }
    let clique = match (snapshots, headers.first()) {
        (Some(snapshots), Some((front, _))) => {
            Some(snapshots.after(front.hash_slow()).map_err(|e| StoreError::Corrupted {
                table: "CliqueSnapshots",
                reason: e.to_string(),
            })?)
        }
        _ => None,
    };
    Ok(RecentChain { headers, clique })
}

fn machine_from_store(
    spec: &ChainSpec,
    cfg: &SyncConfig,
    store: &ChainStore,
    snapshots: Option<&CliqueSnapshots>,
) -> Result<SyncMachine, StoreError> {
    let recent = recent_from_store(cfg, store, snapshots)?;
    Ok(SyncMachine::new(spec.clone(), cfg.clone(), recent, WallClock::system()))
}
