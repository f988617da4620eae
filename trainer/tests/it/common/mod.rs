//! Shared by the recipes' CLI tests: a scratch directory, the real `fas-train` binary, a
//! tiny generated SynthFAS set, and JSON reading.

use std::path::{Path, PathBuf};
use std::process::Command;

use fas_core::synthfas::{write_dataset, SynthConfig};

/// A fresh scratch directory `fas-train-<recipe>-<tag>-<pid>`.
pub fn tmp(recipe: &str, tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fas-train-{recipe}-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `fas-train` and returns (success, stderr).
pub fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fas-train"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A four-domain SynthFAS set of 64 px crops (4 subjects per domain, one frame per video)
/// in `dir`; returns its manifest.
pub fn dataset(dir: &Path, seed: u64) -> PathBuf {
    let cfg = SynthConfig {
        seed,
        subjects_per_domain: 4,
        frames_per_video: 1,
        image_size: 64,
        threads: 2,
        ..SynthConfig::default()
    };
    write_dataset(&cfg, dir).unwrap();
    dir.join("manifest.jsonl")
}

pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}
