//! The chain an adversary pretends to serve, and the lookups its answers need.

use alloy_consensus::{Block, BlockBody, Header, TxEnvelope};
use alloy_eips::eip1898::HashOrNumber;
use alloy_primitives::{B256, U256};
use secp256k1::SecretKey;
use std::collections::HashMap;
use tern_chainspec::ChainSpec;
use tern_eth_wire::GetBlockHeaders;

/// Most headers one answer holds, as honest nodes cap it.
pub const MAX_HEADERS: usize = 1024;

/// A chain from genesis (number 0) to a head, indexed by hash.
#[derive(Debug, Clone)]
pub struct ServedChain {
    headers: Vec<Header>,
    bodies: Vec<BlockBody<TxEnvelope>>,
    hashes: Vec<B256>,
    index: HashMap<B256, u64>,
}

impl ServedChain {
    /// `blocks` (numbers 1, 2, …) on top of `spec`'s genesis.
    pub fn new(spec: &ChainSpec, blocks: Vec<Block<TxEnvelope>>) -> Self {
        let mut headers = vec![spec.genesis_header.clone()];
        let mut bodies = vec![BlockBody::default()];
        for b in blocks {
            headers.push(b.header);
            bodies.push(b.body);
        }
        Self::index(headers, bodies)
    }

    fn index(headers: Vec<Header>, bodies: Vec<BlockBody<TxEnvelope>>) -> Self {
        let hashes: Vec<B256> = headers.iter().map(Header::hash_slow).collect();
        let index = hashes.iter().enumerate().map(|(n, h)| (*h, n as u64)).collect();
        Self { headers, bodies, hashes, index }
    }

    /// The same blocks plus one empty block on top, every header from number `from` on
    /// sealed (Clique) by `key` and re-linked: a consistent chain that forks from this one
    /// at `from - 1`, is one block longer (so a node holding this one has a reason to
    /// fetch it), and whose new seals are not a signer's.
    pub fn resealed(&self, key: &SecretKey, from: u64) -> Self {
        let mut headers = self.headers.clone();
        let mut bodies = self.bodies.clone();
        let mut extra = self.headers[self.headers.len() - 1].clone();
        extra.number += 1;
        extra.timestamp += 1;
        extra.transactions_root = alloy_consensus::EMPTY_ROOT_HASH;
        extra.gas_used = 0;
        headers.push(extra);
        bodies.push(BlockBody::default());
        for n in (from.max(1) as usize)..headers.len() {
            headers[n].parent_hash = headers[n - 1].hash_slow();
            // A header without room for a seal (a post-merge chain's) gets one anyway: a
            // node must refuse it either way.
            let min = tern_consensus::clique::EXTRA_VANITY + tern_consensus::clique::EXTRA_SEAL;
            if headers[n].extra_data.len() < min {
                let mut extra = headers[n].extra_data.to_vec();
                extra.resize(min, 0);
                headers[n].extra_data = extra.into();
            }
            tern_consensus::clique::seal_header(&mut headers[n], key)
                .expect("extraData made long enough above");
        }
        Self::index(headers, bodies)
    }

    /// The head: number, hash and header.
    pub fn head(&self) -> (u64, B256, &Header) {
        let n = self.headers.len() - 1;
        (n as u64, self.hashes[n], &self.headers[n])
    }

    /// Sum of the difficulties from genesis to the head (the eth/68 Status field).
    pub fn total_difficulty(&self) -> U256 {
        self.headers.iter().fold(U256::ZERO, |td, h| td.saturating_add(h.difficulty))
    }

    /// The hash of block `number`, if the chain reaches it.
    pub fn hash(&self, number: u64) -> Option<B256> {
        self.hashes.get(usize::try_from(number).ok()?).copied()
    }

    /// The number of block `hash`, if it is on this chain.
    pub fn number_of(&self, hash: &B256) -> Option<u64> {
        self.index.get(hash).copied()
    }

    /// The body of block `number`.
    pub fn body(&self, number: u64) -> Option<&BlockBody<TxEnvelope>> {
        self.bodies.get(usize::try_from(number).ok()?)
    }

    /// The headers an honest node answers `req` with (at most [`MAX_HEADERS`]).
    pub fn headers(&self, req: &GetBlockHeaders) -> Vec<Header> {
        let start = match req.start {
            HashOrNumber::Hash(h) => match self.number_of(&h) {
                Some(n) => n,
                None => return Vec::new(),
            },
            HashOrNumber::Number(n) => n,
        };
        let step = req.skip.saturating_add(1);
        let limit = req.limit.min(MAX_HEADERS as u64);
        let mut out = Vec::new();
        let mut n = Some(start);
        while let Some(cur) = n {
            if out.len() as u64 >= limit {
                break;
            }
            let Some(h) = usize::try_from(cur).ok().and_then(|i| self.headers.get(i)) else {
                break;
            };
            out.push(h.clone());
            n = if req.reverse { cur.checked_sub(step) } else { cur.checked_add(step) };
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: usize) -> (ChainSpec, Vec<Block<TxEnvelope>>) {
        let spec = ChainSpec::dev();
        let key = SecretKey::from_byte_array(
            alloy_primitives::hex::decode(tern_chainspec::DEV_VALIDATOR_KEY)
                .unwrap()
                .try_into()
                .unwrap(),
        )
        .unwrap();
        let sender = SecretKey::from_byte_array([7; 32]).unwrap();
        let blocks = tern_consensus::chain_gen::generate_chain(
            &spec,
            &[key],
            (spec.genesis_hash, &spec.genesis_header),
            n,
            1,
            (&sender, 0),
        );
        (spec, blocks)
    }

    #[test]
    fn serves_ranges_like_an_honest_node() {
        let (spec, blocks) = chain(20);
        let c = ServedChain::new(&spec, blocks.clone());
        assert_eq!(c.head().0, 20);
        assert_eq!(c.head().1, blocks[19].header.hash_slow());
        let q = |start, limit, skip, reverse| GetBlockHeaders { start, limit, skip, reverse };
        let nums = |h: Vec<Header>| h.iter().map(|h| h.number).collect::<Vec<_>>();
        assert_eq!(nums(c.headers(&q(HashOrNumber::Number(3), 4, 1, false))), [3, 5, 7, 9]);
        assert_eq!(nums(c.headers(&q(HashOrNumber::Number(3), 9, 0, true))), [3, 2, 1, 0]);
        let by_hash = HashOrNumber::Hash(blocks[17].header.hash_slow());
        assert_eq!(nums(c.headers(&q(by_hash, u64::MAX, 0, false))), [18, 19, 20]);
        assert!(c.headers(&q(HashOrNumber::Hash(B256::ZERO), 1, 0, false)).is_empty());
        assert!(c.headers(&q(HashOrNumber::Number(u64::MAX), 5, u64::MAX, false)).is_empty());
    }

    fn one(n: u64) -> GetBlockHeaders {
        GetBlockHeaders { start: HashOrNumber::Number(n), limit: 1, skip: 0, reverse: false }
    }

    #[test]
    fn a_resealed_chain_links_but_is_signed_by_the_other_key() {
        let (spec, blocks) = chain(5);
        let honest = ServedChain::new(&spec, blocks);
        let evil = SecretKey::from_byte_array([0xee; 32]).unwrap();
        let bad = honest.resealed(&evil, 3);
        assert_eq!(bad.head().0, 6);
        assert_ne!(bad.headers(&one(5))[0].hash_slow(), honest.head().1);
        assert_eq!(bad.headers(&one(2)), honest.headers(&one(2)), "shared below the fork");
        let all = bad.headers(&GetBlockHeaders {
            start: HashOrNumber::Number(0),
            limit: 7,
            skip: 0,
            reverse: false,
        });
        for pair in all.windows(2) {
            assert_eq!(pair[1].parent_hash, pair[0].hash_slow());
        }
        let signer = |n: usize| tern_consensus::clique::recover_signer(&all[n]).unwrap();
        assert_eq!(signer(3), tern_consensus::clique::address_of(&evil));
        assert_ne!(signer(2), tern_consensus::clique::address_of(&evil));
    }
}
