//! `ibstream drill` end to end: a short drill with a fixed seed through the binary must
//! pass every check and print its summary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check here should panic

use std::process::Command;

/// A fixed seed, so a failure here replays with `ibstream drill --seed 20261130`.
const SEED: &str = "20261130";

#[test]
fn a_short_drill_passes_every_check() {
    let out = Command::new(env!("CARGO_BIN_EXE_ibstream"))
        .args([
            "drill",
            "--duration",
            "30s",
            "--clients",
            "3",
            "--seed",
            SEED,
        ])
        .output()
        .expect("run ibstream drill");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("drill summary") && stdout.contains("peak message rate"),
        "no summary:\n{stdout}\n{stderr}"
    );
    assert!(
        out.status.success(),
        "the drill failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("result: PASS"), "{stdout}");
}
