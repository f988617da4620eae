//! The model path end to end on generated SynthFAS data: fas-train (tch) trains a small
//! model → fas-quantize exports ONNX from the run dir and checks it in tract against the
//! trainer's own outputs on real validation crops (contract 2) → the draft manifest
//! carries the run's preprocessing, metrics and source-validation thresholds.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use clap::Parser;
use fas_core::synthfas::{write_dataset, SynthConfig};
use fas_quantize::export::{export_run, ExportSource, PARITY_TOLERANCE};
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

/// One small training run shared by the tests of this file.
fn trained() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| train_small(&tmp("train")))
}

/// A copy of the trained run dir (tests that modify it work on their own copy).
fn run_copy(tag: &str) -> PathBuf {
    let dst = tmp(tag).join("run");
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(trained()).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
    dst
}

#[test]
fn train_export_parity_on_synthfas() {
    let run_dir = run_copy("export");
    let root = run_dir.parent().unwrap().to_path_buf();
    let run = ExportSource::load(&run_dir).unwrap();
    // The trainer's run.json (its full RunConfig) carries core's RunHeader, the one type
    // both the trainer and the exporter parse.
    let header = fas_core::rundir::RunDir::new(&run_dir).header().unwrap();
    let config: fas_train::app::RunConfig =
        serde_json::from_slice(&std::fs::read(run_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(header.fas_version, config.fas_version);
    assert_eq!(header.recipe, config.recipe);
    assert_eq!(header.protocol.as_deref(), Some(config.protocol.as_str()));
    assert_eq!(
        header.task.as_ref().map(|t| t.name.as_str()),
        Some(config.task.name.as_str())
    );
    assert_eq!(header.preprocess, config.preprocess);
    assert_eq!(header.model, config.model);
    assert_eq!(
        run.protocol,
        format!("{} {}", config.protocol.as_str(), config.task.name)
    );
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

/// Export → signed bundle → the real door pipeline (synthetic camera, RetinaFace, tract,
/// policy, audit log) → `fas-edge audit verify`; and the door's refusals.
#[test]
fn bundle_drives_the_door_and_every_decision_is_audited() {
    use fas_edge::app::{run, Common, RunLimits};
    use fas_quantize::bundle::{write_bundle, SecretKey, Signing};

    let run_dir = run_copy("door");
    let root = run_dir.parent().unwrap().to_path_buf();
    let ex = export_run(&ExportSource::load(&run_dir).unwrap()).unwrap();
    let key = SecretKey::from_seed([7; 32]);
    let keys = root.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(keys.join("door.pub"), key.public().to_text()).unwrap();
    let bundle = root.join("model.fasb");
    let assets = std::env::var("FAS_ASSETS").expect("FAS_ASSETS (cargo xtask test sets it)");
    let detector = Path::new(&assets).join("retinaface_mnet025.onnx");
    let mut draft = ex.draft.clone();
    draft.detector_sha256 = vec![fas_core::bundle::sha256_hex(
        &std::fs::read(&detector).unwrap(),
    )];
    write_bundle(&bundle, draft, &ex.bytes, None, Signing::Key(&key)).unwrap();

    let audit = root.join("audit.jsonl");
    let common = Common {
        camera: Some("synthetic:3".into()),
        bundle: Some(bundle.clone()),
        keys: Some(keys.clone()),
        allow_demo: true,
        detector: Some(Path::new(&assets).join("retinaface_mnet025.onnx")),
        audit: Some(audit.clone()),
        calibration: Some(root.join("no-calibration.json")),
        device_dir: Some(root.join("device")),
        status: Some(root.join("status.json")),
        json: true,
        ..Common::default()
    };
    let limits = RunLimits {
        max_frames: Some(240),
        max_decisions: None,
    };
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let s = run(&common, &limits).unwrap();
    let decisions = s.grant + s.deny + s.no_decision;
    assert!(decisions >= 2, "{s:?}");
    let chain = fas_core::audit::verify_file(&audit).unwrap();
    assert_eq!(chain.records, decisions, "{s:?}");
    let sha = fas_core::bundle::sha256_hex(&ex.bytes);
    // The status file's last write: stopped, with this run's counts and model.
    let st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("status.json")).unwrap()).unwrap();
    assert_eq!(st["running"], false, "{st}");
    assert_eq!(st["camera"], "streaming", "{st}");
    assert_eq!(st["frames"].as_u64(), Some(s.frames), "{st}");
    assert_eq!(st["decisions"]["grant"].as_u64(), Some(s.grant), "{st}");
    assert_eq!(st["decisions"]["deny"].as_u64(), Some(s.deny), "{st}");
    assert_eq!(st["model_sha256"].as_str(), Some(sha.as_str()), "{st}");
    assert!(st["last_decision"]["decision"].is_string(), "{st}");
    assert!(st["fps"].as_f64().is_some_and(|f| f > 0.0), "{st}");
    let threshold = ex.draft.thresholds[0].value as f32;
    for line in std::fs::read_to_string(&audit).unwrap().lines() {
        let r: fas_core::audit::AuditRecord = serde_json::from_str(line).unwrap();
        assert_eq!(r.model_sha256, sha);
        // Scored sessions say when their frames were captured: during this run, first
        // before last, both no later than the decision.
        if r.frames_used > 0 {
            let [first, last] = r.captured_ms.expect("a scored session has capture times");
            assert!(
                started <= first && first <= last && last <= r.time_ms,
                "{r:?}"
            );
        }
        if r.decision == fas_core::decision::Decision::Grant {
            let a = r.aggregate.expect("a grant has an aggregate");
            assert!(a >= r.threshold && r.threshold >= threshold, "{r:?}");
            assert!(r.frames_used >= 1, "{r:?}");
        }
    }

    // Refusals: an untrusted signer, a tampered bundle, a demo model without allow_demo,
    // a calibration made for another model.
    let other = root.join("other-keys");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(
        other.join("x.pub"),
        SecretKey::from_seed([9; 32]).public().to_text(),
    )
    .unwrap();
    let err = |c: &Common| run(c, &limits).expect_err("must refuse").to_string();
    let e = err(&Common {
        keys: Some(other),
        ..common.clone()
    });
    assert!(e.contains("key"), "{e}");
    let mut bytes = std::fs::read(&bundle).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    let tampered = root.join("tampered.fasb");
    std::fs::write(&tampered, &bytes).unwrap();
    err(&Common {
        bundle: Some(tampered),
        ..common.clone()
    });
    let e = err(&Common {
        allow_demo: false,
        ..common.clone()
    });
    assert!(e.contains("demo"), "{e}");
    let cal = root.join("calibration.json");
    std::fs::write(
        &cal,
        serde_json::json!({
            "threshold": 0.5, "target_bpcer": 0.05, "bpcer": 0.0, "apcer": null,
            "bona_fide": [0.9], "attacks": [], "model_sha256": "ab".repeat(32), "time_ms": 0
        })
        .to_string(),
    )
    .unwrap();
    let e = err(&Common {
        calibration: Some(cal),
        ..common.clone()
    });
    assert!(e.contains("calibrate"), "{e}");
    let _ = std::fs::remove_dir_all(&root);
}

/// `fas-edge calibrate` on the synthetic camera (non-interactive): the threshold it fits
/// keeps BPCER on its own sessions at the target, and the door then uses it.
#[test]
fn calibrate_on_the_device_then_the_door_uses_it() {
    use fas_edge::app::{calibrate, run, CalibrateOpts, Common, RunLimits};
    use fas_quantize::bundle::{write_bundle, Signing};

    let run_dir = run_copy("calibrate");
    let root = run_dir.parent().unwrap().to_path_buf();
    let ex = export_run(&ExportSource::load(&run_dir).unwrap()).unwrap();
    let bundle = root.join("model.fasb");
    write_bundle(
        &bundle,
        ex.draft.clone(),
        &ex.bytes,
        None,
        Signing::Unsigned,
    )
    .unwrap();
    let assets = std::env::var("FAS_ASSETS").expect("FAS_ASSETS (cargo xtask test sets it)");
    let cal_path = root.join("calibration.json");
    let audit = root.join("audit.jsonl");
    let common = Common {
        camera: Some("synthetic:11".into()),
        dev_unsigned_bundle: Some(bundle),
        allow_demo: true,
        detector: Some(Path::new(&assets).join("retinaface_mnet025.onnx")),
        audit: Some(audit.clone()),
        calibration: Some(cal_path.clone()),
        device_dir: Some(root.join("device")),
        ..Common::default()
    };
    let opts = CalibrateOpts {
        bona_fide: 4,
        attacks: 2,
        target_bpcer: 0.25,
        out: None,
        report_png: Some(root.join("calibration.png")),
        wait_for_enter: false,
        max_frames_per_session: 120,
    };
    let cal = calibrate(&common, &opts).unwrap();
    assert!(cal.bona_fide.len() >= 3, "{cal:?}");
    // At the target, unless the fitted threshold was raised to the bundle's floor.
    assert!(
        cal.bpcer <= 0.25 + 1e-9 || Some(cal.threshold) == cal.floor,
        "{cal:?}"
    );
    assert!(cal.floor.is_some_and(|f| cal.threshold >= f), "{cal:?}");
    assert_eq!(cal.apcer.is_some(), !cal.attacks.is_empty());
    assert_eq!(cal.model_sha256, fas_core::bundle::sha256_hex(&ex.bytes));
    assert!(cal_path.exists() && root.join("calibration.png").exists());

    let s = run(
        &common,
        &RunLimits {
            max_frames: Some(90),
            max_decisions: Some(1),
        },
    )
    .unwrap();
    assert!(s.grant + s.deny + s.no_decision >= 1, "{s:?}");
    let first = std::fs::read_to_string(&audit).unwrap();
    let r: fas_core::audit::AuditRecord =
        serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert!(
        (r.threshold - cal.threshold as f32).abs() < 1e-6,
        "door threshold {} vs calibrated {}",
        r.threshold,
        cal.threshold
    );
    let _ = std::fs::remove_dir_all(&root);
}
