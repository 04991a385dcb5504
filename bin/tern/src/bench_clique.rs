//! `tern bench clique`: what signer voting costs verification. Two generated Clique
//! chains of the same length, one without votes and one with a vote every 100 blocks
//! (a fourth signer voted in and out again and again), verified as sync verifies them:
//! header rules, seals recovered on all cores in batches, the signer snapshot applied.

use eyre::Result;
use serde_json::json;
use std::time::Instant;
use tern_chainspec::{ChainSpec, Consensus};
use tern_consensus::{
    address_of, chain_gen::generate_voting_chain, clique::recover_signers, validate_header,
    Snapshot,
};

/// `tern bench clique` arguments.
#[derive(clap::Args)]
pub(crate) struct CliqueArgs {
    /// Blocks in each chain.
    #[arg(long, default_value_t = 100_000)]
    blocks: usize,
    /// Blocks between votes in the voting chain.
    #[arg(long, default_value_t = 100)]
    vote_every: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Headers per verification batch (what sync asks of a peer at once).
const BATCH: usize = 1024;

/// Verifies `headers` after `spec`'s genesis; returns the seconds taken and the signer
/// set changes seen.
fn verify(spec: &ChainSpec, headers: &[alloy_consensus::Header]) -> Result<(f64, usize)> {
    let Consensus::Clique { signers, epoch, .. } = &spec.consensus else { unreachable!() };
    let started = Instant::now();
    let mut snap = Snapshot::new(signers.clone(), *epoch);
    let mut parent = spec.genesis_header.clone();
    let mut parent_hash = spec.genesis_hash;
    let mut changes = 0;
    let now = u64::MAX / 2;
    for chunk in headers.chunks(BATCH) {
        let sealers = recover_signers(chunk);
        for (h, sealer) in chunk.iter().zip(sealers) {
            validate_header(spec, h, &parent, parent_hash, now)?;
            let before = snap.signers().len();
            snap.verify_recovered(h, sealer)?;
            changes += usize::from(snap.signers().len() != before);
            parent_hash = h.hash_slow();
            parent = h.clone();
        }
    }
    Ok((started.elapsed().as_secs_f64(), changes))
}

/// Runs `tern bench clique`.
pub(crate) fn run(args: &CliqueArgs) -> Result<()> {
    let keys: Vec<secp256k1::SecretKey> = (1..=4u8)
        .map(|i| secp256k1::SecretKey::from_byte_array([i; 32]))
        .collect::<Result<_, _>>()?;
    let addrs: Vec<_> = keys.iter().map(address_of).collect();
    let spec = ChainSpec::clique_dev(&addrs[..3]);
    let Consensus::Clique { signers, epoch, .. } = &spec.consensus else { unreachable!() };
    let sender = secp256k1::SecretKey::from_byte_array([9u8; 32])?;
    let genesis = (spec.genesis_hash, &spec.genesis_header);
    let candidate = addrs[3];
    let every = args.vote_every.max(1);
    let generate = |votes: bool| {
        let vote = |n: u64, s: &Snapshot| {
            // One vote per `every` blocks, at a shifting offset so that successive votes
            // come from different signers (in-turn sealers rotate with the number).
            (votes && n % every == (n / every) % 7)
                .then(|| (candidate, !s.signers().contains(&candidate)))
        };
        let snap = Snapshot::new(signers.clone(), *epoch);
        let (blocks, _) =
            generate_voting_chain(&spec, &keys, genesis, snap, args.blocks, 0, (&sender, 0), vote);
        blocks.into_iter().map(|b| b.header).collect::<Vec<_>>()
    };
    eprintln!("generating two chains of {} blocks", args.blocks);
    let plain = generate(false);
    let voting = generate(true);
    // Each measured twice, alternately; the faster run of each counts.
    let mut best = [f64::MAX; 2];
    let mut changes = 0;
    for _ in 0..2 {
        best[0] = best[0].min(verify(&spec, &plain)?.0);
        let (secs, c) = verify(&spec, &voting)?;
        best[1] = best[1].min(secs);
        changes = c;
    }
    let votes = voting.iter().filter(|h| !h.beneficiary.is_zero()).count();
    let report = json!({
        "blocks": args.blocks,
        "without_votes_secs": best[0],
        "with_votes_secs": best[1],
        "votes": votes,
        "signer_set_changes": changes,
        "blocks_per_sec_without": (args.blocks as f64 / best[0]).round(),
        "blocks_per_sec_with": (args.blocks as f64 / best[1]).round(),
        "ratio": best[1] / best[0],
    });
    if args.json {
        println!("{report}");
    } else {
        println!(
            "{} blocks: without votes {:.2} s ({} blocks/s), with {} votes ({} signer-set changes) {:.2} s ({} blocks/s): {:.3}×",
            args.blocks, best[0], report["blocks_per_sec_without"], votes, changes, best[1],
            report["blocks_per_sec_with"], best[1] / best[0]
        );
    }
    Ok(())
}
