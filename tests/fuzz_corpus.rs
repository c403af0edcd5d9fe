//! Replays the fuzz corpora through the fuzz targets' own checks, so every input the
//! fuzzer kept (fuzz/corpus/TARGET) and every finding saved after a fix
//! (fuzz/regressions/TARGET) is a test of plain `cargo test`. Running the fuzzers
//! themselves: see "Fuzzing" in the README.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check here should panic

#[path = "../fuzz/checks/mod.rs"]
mod checks;

use std::path::{Path, PathBuf};

fn inputs(folder: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(folder)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn check_of(target: &str) -> checks::Check {
    checks::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, check)| *check)
        .expect("known target")
}

/// Runs `files` through the check of `target`; names the inputs that fail.
fn replay_files(target: &str, files: &[PathBuf]) {
    let check = check_of(target);
    let mut failed = Vec::new();
    for path in files {
        let bytes = std::fs::read(path).expect("read corpus file");
        if std::panic::catch_unwind(|| check(&bytes)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(failed.is_empty(), "inputs failing {target}: {failed:#?}");
}

/// Runs the corpus and the regressions of `target` through its check.
fn replay(target: &str) {
    let corpus = inputs("corpus", target);
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target} is empty or missing"
    );
    let regressions = inputs("regressions", target);
    replay_files(target, &[corpus, regressions].concat());
}

#[test]
fn sim_frames_corpus() {
    replay("sim_frames");
}

#[test]
fn requests_corpus() {
    replay("requests");
}

#[test]
fn gateway_data_corpus() {
    replay("gateway_data");
}

#[test]
fn config_corpus() {
    replay("config");
}
