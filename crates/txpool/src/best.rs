//! The order a block takes pending transactions in.

use crate::ValidTx;
use std::{
    cmp::Reverse,
    collections::{BinaryHeap, VecDeque},
};

/// Pending transactions for one block: the highest effective tip first (earliest arrival
/// among equals), each sender's in nonce order. A snapshot: the pool can change meanwhile.
#[derive(Debug)]
pub struct BestTransactions {
    base_fee: u64,
    /// Each sender's pending transactions with their arrival number, nonce order.
    runs: Vec<VecDeque<(ValidTx, u64)>>,
    /// (effective tip, arrival, run) of each run's first transaction.
    heap: BinaryHeap<(u128, Reverse<u64>, usize)>,
    /// The run of the transaction last returned.
    last: Option<usize>,
}

impl BestTransactions {
    pub(crate) fn new(base_fee: u64, runs: impl Iterator<Item = Vec<(ValidTx, u64)>>) -> Self {
        let runs: Vec<VecDeque<(ValidTx, u64)>> = runs.map(VecDeque::from).collect();
        let mut best =
            Self { base_fee, heap: BinaryHeap::with_capacity(runs.len()), runs, last: None };
        (0..best.runs.len()).for_each(|i| best.push_front_of(i));
        best
    }

    fn push_front_of(&mut self, run: usize) {
        if let Some((tx, seq)) = self.runs[run].front() {
            if let Some(tip) = tx.effective_tip(self.base_fee) {
                self.heap.push((tip, Reverse(*seq), run));
            }
        }
    }

    /// Skips the remaining transactions of the sender of the one last returned (it failed,
    /// or did not fit: its successors cannot run without it).
    pub fn skip_sender(&mut self) {
        if let Some(run) = self.last {
            self.runs[run].clear();
        }
    }
}

impl Iterator for BestTransactions {
    type Item = ValidTx;

    fn next(&mut self) -> Option<ValidTx> {
        loop {
            let (_, _, run) = self.heap.pop()?;
            // A skipped sender's run is empty: its heap entry is stale.
            let Some((tx, _)) = self.runs[run].pop_front() else { continue };
            self.push_front_of(run);
            self.last = Some(run);
            return Some(tx);
        }
    }
}
