//! The model path end to end on generated SynthFAS data: fas-train (tch) trains a small
//! model → fas-quantize exports ONNX from the run dir and checks it in tract against the
//! trainer's own outputs on real validation crops (contract 2) → the draft manifest
//! carries the run's preprocessing, metrics and source-validation thresholds.

use std::path::{Path, PathBuf};

use clap::Parser;
use fas_core::synthfas::{write_dataset, SynthConfig};
use fas_quantize::export::{export_run, RunDir, PARITY_TOLERANCE};
use fas_train::cli::{Cli, Command};

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fas-roundtrip-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Trains a small EdgeNet for a few steps (enough for parity; accuracy is the trainer
/// smoke test's job) and returns the run dir.
pub fn train_small(root: &Path) -> PathBuf {
    let cfg = SynthConfig {
        seed: 5,
        subjects_per_domain: 6,
        frames_per_video: 2,
        image_size: 128,
        threads: 2,
        ..SynthConfig::default()
    };
    write_dataset(&cfg, &root.join("data")).unwrap();
    let manifest = root.join("data/manifest.jsonl");
    let out = root.join("run");
    let cli = Cli::try_parse_from([
        "fas-train",
        "train",
        "--manifest",
        manifest.to_str().unwrap(),
        "--protocol",
        "intra",
        "--task",
        "all",
        "--backbone",
        "edgenet",
        "--size",
        "80",
        "--batch-size",
        "16",
        "--steps",
        "20",
        "--val-every",
        "20",
        "--workers",
        "2",
        "--device",
        "cpu",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ])
    .unwrap();
    let Command::Train(a) = &cli.command else {
        unreachable!()
    };
    fas_train::app::train(a).unwrap();
    out
}

#[test]
fn train_export_parity_on_synthfas() {
    let root = tmp("export");
    let run_dir = train_small(&root);
    let run = RunDir::load(&run_dir).unwrap();
    let ex = export_run(&run).unwrap();
    assert_eq!(ex.parity.samples, 8);
    assert!(ex.parity.max_abs <= PARITY_TOLERANCE, "{:?}", ex.parity);
    eprintln!("parity: {:?}", ex.parity);
    // The draft manifest describes the run.
    let d = &ex.draft;
    assert_eq!(d.model.recipe, "baseline");
    assert!(d.model.demo, "SynthFAS-trained models are demo models");
    assert_eq!(d.input.shape, vec![1, 3, 80, 80]);
    assert_eq!(d.preprocess, run.preprocess);
    assert!(d.metrics.iter().any(|m| m.metric == "AUC"));
    assert_eq!(d.thresholds.len(), 2);
    for t in &d.thresholds {
        assert!((0.0..=1.0).contains(&t.value), "{t:?}");
    }
    // ONNX metadata ties the file to the run.
    let meta: Vec<(String, String)> = ex
        .onnx
        .proto
        .metadata_props
        .iter()
        .map(|p| (p.key.clone(), p.value.clone()))
        .collect();
    let weights_sha =
        fas_core::bundle::sha256_hex(&std::fs::read(run_dir.join("weights.safetensors")).unwrap());
    assert!(
        meta.contains(&("fas.weights_sha256".into(), weights_sha)),
        "{meta:?}"
    );

    // A reference off by 1e-3 on one sample is caught.
    let parity = run_dir.join("parity.safetensors");
    let mut w = fas_quantize::onnx::Weights::load(&parity).unwrap();
    let v = &mut w.tensors.get_mut("p_live").unwrap().data[3];
    *v = if *v > 0.5 { *v - 1e-3 } else { *v + 1e-3 };
    std::fs::write(&parity, w.to_safetensors()).unwrap();
    let err = export_run(&run)
        .err()
        .expect("parity must fail")
        .to_string();
    assert!(err.contains("max |Δ|"), "{err}");
    let _ = std::fs::remove_dir_all(&root);
}
