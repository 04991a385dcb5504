//! Every case of `testdata/ethereum-tests/blockchain-tests-cancun.tar.xz` (1,349 files of
//! the public BlockchainTests suite) through Tern's block rules and executor: none may
//! fail; skips are the files `SKIPPED_FILES` names.

use std::path::Path;
use tern_ef_tests::{fixture_files, run_file, Outcome, SKIPPED_FILES};

#[test]
fn the_consensus_tests_pass() {
    let archive = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/ethereum-tests/blockchain-tests-cancun.tar.xz");
    let dir = std::env::temp_dir().join(format!("tern-ef-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let status = std::process::Command::new("tar")
        .arg("xJf")
        .arg(&archive)
        .arg("-C")
        .arg(&dir)
        .status()
        .expect("tar (with xz) runs");
    assert!(status.success(), "extracting {}", archive.display());
    let files = fixture_files(&dir);
    assert_eq!(files.len(), 1349, "fixture files");
    let (mut passed, mut skipped, mut failed) = (0, 0, Vec::new());
    for file in &files {
        for case in run_file(file) {
            match case.outcome {
                Outcome::Passed => passed += 1,
                Outcome::Skipped(_) => skipped += 1,
                Outcome::Failed(why) => failed.push(format!("{}: {why}", case.name)),
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("passed {passed} failed {} skipped {skipped}", failed.len());
    assert!(failed.is_empty(), "{} failed:\n{}", failed.len(), failed.join("\n"));
    assert_eq!(skipped, SKIPPED_FILES.len(), "only the named files are skipped");
    assert!(passed >= 4978, "{passed} cases passed");
}
