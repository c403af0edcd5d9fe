//! Replays the fuzz corpora through the fuzz targets' own checks, so every input the
//! fuzzer kept (fuzz/corpus/TARGET) and every finding saved after a fix
//! (fuzz/regressions/TARGET) is a test of plain `cargo test`. Running the fuzzers
//! themselves: see "Fuzzing" in the README.

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

/// Runs every input of `target` through its check; names the inputs that fail.
fn replay(target: &str) {
    let (_, check) = checks::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("known target");
    let corpus = inputs("corpus", target);
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target} is empty or missing"
    );
    let mut failed = Vec::new();
    for path in corpus.iter().chain(&inputs("regressions", target)) {
        let bytes = std::fs::read(path).expect("read corpus file");
        if std::panic::catch_unwind(|| check(&bytes)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(failed.is_empty(), "inputs failing {target}: {failed:#?}");
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
