//! Seeds of the fuzz targets (`corpus/<target>/`) and their mutations, for the short,
//! stable-toolchain runs under `cargo test`. Included with `#[path]` by the tests that
//! use it.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

/// Mutations per seed input.
pub const ROUNDS: usize = 20_000;

/// xorshift64: deterministic, so a failure names a reproducible round.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to four random edits of `seed`.
pub fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        let last = out.len().saturating_sub(1);
        match rng.below(6) {
            0 if !out.is_empty() => out[at.min(last)] ^= 1 << rng.below(8),
            1 if !out.is_empty() => out[at.min(last)] = rng.next() as u8,
            2 => out.truncate(at),
            3 => out.insert(at, rng.next() as u8),
            4 if at < out.len() => {
                let end = (at + rng.below(16)).min(out.len());
                let slice = out[at..end].to_vec();
                out.splice(at..at, slice);
            }
            _ => out.insert(at, [0x00, 0x80, 0xb9, 0xc0, 0xf9, 0xff][rng.below(6)]),
        }
    }
    out
}

/// The tracked seed inputs of fuzz target `target` (not the inputs libFuzzer added).
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap())
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            !(name.len() == 40 && name.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds.into_iter().map(|(_, s)| s).collect()
}

/// Calls `check` on every mutation of every seed of `target`; returns how many.
pub fn each_mutation(target: &str, mut check: impl FnMut(&[u8])) -> usize {
    let mut rng = Rng(0x7e57_5eed ^ target.len() as u64);
    let mut n = 0;
    for seed in seeds(target) {
        check(&seed);
        for _ in 0..ROUNDS {
            check(&mutate(&mut rng, &seed));
            n += 1;
        }
    }
    n
}
