//! `tern-ef-tests <dir or file>…`: runs every BlockchainTests case found, prints one line
//! per failing case and a final `passed N failed M skipped K`, exits 1 if any failed.

use std::{path::PathBuf, process::ExitCode};
use tern_ef_tests::{fixture_files, run_file, Outcome};

fn main() -> ExitCode {
    let paths: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if paths.is_empty() {
        eprintln!("usage: tern-ef-tests <dir or file>…");
        return ExitCode::from(2);
    }
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for path in &paths {
        let files = fixture_files(path);
        if files.is_empty() {
            eprintln!("{}: no fixture files", path.display());
            return ExitCode::from(2);
        }
        for file in files {
            for case in run_file(&file) {
                match case.outcome {
                    Outcome::Passed => passed += 1,
                    Outcome::Failed(why) => {
                        failed += 1;
                        println!("FAIL {}: {why}", case.name);
                    }
                    Outcome::Skipped(why) => {
                        skipped += 1;
                        println!("SKIP {}: {why}", case.name);
                    }
                }
            }
        }
    }
    println!("passed {passed} failed {failed} skipped {skipped}");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
