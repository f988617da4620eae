//! `fas-train train --recipe d2am` through the real binary on a tiny generated SynthFAS set:
//! a short leave-one-domain-out run with the recipe's defaults (RGB+HSV, depth supervision,
//! pseudo-domains re-clustered every epoch), resumed from its checkpoint, and the settings
//! D²AM refuses.

use std::path::Path;

use crate::common;
use common::{json, run};

fn args<'a>(manifest: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "train",
        "--manifest",
        manifest,
        "--protocol",
        "synth-domain",
        "--task",
        "unseen-synth-d",
        "--recipe",
        "d2am",
        "--size",
        "32",
        "--width",
        "0.25",
        "--batch-size",
        "12",
        "--steps",
        "10",
        "--val-every",
        "5",
        "--checkpoint-every",
        "5",
        "--workers",
        "2",
        "--device",
        "cpu",
        "--quiet",
        "--out",
        out,
    ];
    v.extend_from_slice(extra);
    v
}

#[test]
fn d2am_trains_resumes_and_logs_pseudo_domains() {
    let root = common::tmp("d2am", "smoke");
    let manifest = common::dataset(&root.join("data"), 5);
    let m = manifest.to_str().unwrap();
    let out = root.join("run");
    let o = out.to_str().unwrap();

    // Stop inside an epoch (step 3), resume to an epoch boundary, then to the end: the
    // pseudo-domains must survive both kinds of resume.
    let (ok, stderr) = run(&args(m, o, &["--max-steps", "3"]));
    assert!(ok, "train failed:\n{stderr}");
    let bpe: usize = stderr
        .split(" per epoch")
        .next()
        .and_then(|s| s.rsplit('(').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no steps-per-epoch in:\n{stderr}"));
    assert!(
        bpe > 3,
        "the stops below assume more than 3 steps per epoch, got {bpe}"
    );
    let boundary = (3 / bpe + 1) * bpe;
    if boundary < 10 {
        let b = boundary.to_string();
        let (ok, stderr) = run(&args(m, o, &["--resume", "--max-steps", &b]));
        assert!(ok, "resume to {b} failed:\n{stderr}");
    }
    let (ok, stderr) = run(&args(m, o, &["--resume"]));
    assert!(ok, "resume failed:\n{stderr}");

    let config = json(&out.join("run.json"));
    assert_eq!(config["recipe"], "d2am");
    assert_eq!(
        config["model"]["in_channels"], 6,
        "d2am defaults to RGB+HSV"
    );
    assert_eq!(config["model"]["clusters"], 3);
    assert_eq!(
        config["training"]["lr"], 1e-4,
        "the paper's β is the default"
    );
    let metrics = json(&out.join("metrics.json"));
    assert_eq!(metrics["training"]["steps"], 10);
    let log = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
    for term in ["\"mmd\"", "\"entropy\"", "\"depth\"", "\"tst_cls\""] {
        assert!(log.contains(term), "{term} not logged:\n{log}");
    }
    assert!(!log.contains("NaN") && !log.contains("null"), "{log}");
    // The training curves and the NMI analysis (the paper's Fig. 7) are plotted.
    for f in ["loss.png", "validation.png", "pseudo_domains.png"] {
        let p = out.join("plots").join(f);
        assert!(
            image::open(&p).is_ok(),
            "{} is not a readable PNG",
            p.display()
        );
    }
    // One epoch-start line per epoch (none repeated by the resume), with the NMI report.
    let starts: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("epoch_start").is_some())
        .collect();
    let epochs: Vec<u64> = starts
        .iter()
        .map(|v| v["epoch"].as_u64().unwrap())
        .collect();
    assert!(epochs.len() >= 2, "{log}");
    assert_eq!(
        epochs,
        (0..epochs.len() as u64).collect::<Vec<_>>(),
        "{log}"
    );
    for (i, v) in starts.iter().enumerate() {
        let nmi = v["pseudo_nmi_true"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&nmi), "{v}");
        if i > 0 {
            let prev = v["pseudo_nmi_prev"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&prev), "{v}");
        }
    }
    // The interrupted run computed exactly what one uninterrupted run computes: the same
    // pseudo-domains every epoch, the same last step and final state (the logs differ
    // only by the extra lines each stop writes).
    let whole = root.join("whole");
    let (ok, stderr) = run(&args(m, whole.to_str().unwrap(), &[]));
    assert!(ok, "uninterrupted run failed:\n{stderr}");
    let lines = |p: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("images_per_s");
                v
            })
            .filter(|v| {
                v.get("epoch_start").is_some() || (v["step"] == 10 && v.get("loss").is_some())
            })
            .collect()
    };
    assert_eq!(
        lines(&out.join("log.jsonl")),
        lines(&whole.join("log.jsonl"))
    );
    assert_eq!(
        std::fs::read(out.join("checkpoint/last.safetensors")).unwrap(),
        std::fs::read(whole.join("checkpoint/last.safetensors")).unwrap()
    );
    // The exported graph: 6-channel input, one p_live output, DRLM (squeeze-excite) inside.
    let g = fas_core::ir::Graph::load(out.join("model.json")).unwrap();
    assert_eq!(g.inputs[0].shape, vec![1, 6, 32, 32]);
    assert_eq!(g.outputs, vec!["p_live".to_string()]);
    let drlm = g
        .nodes
        .iter()
        .filter(|n| matches!(n.op, fas_core::ir::Op::SqueezeExcite { .. }))
        .count();
    assert_eq!(drlm, 3);
    assert!(out.join("weights.safetensors").is_file());
    assert!(out.join("parity.safetensors").is_file());
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn d2am_refuses_other_backbones_and_losses() {
    let root = common::tmp("d2am", "refuse");
    let manifest = common::dataset(&root.join("data"), 5);
    let m = manifest.to_str().unwrap();
    let o = root.join("r");
    let o = o.to_str().unwrap();
    let (ok, e) = run(&args(m, o, &["--backbone", "resnet18"]));
    assert!(
        !ok && e.contains("DepthNet") && e.contains("--backbone"),
        "{e}"
    );
    let (ok, e) = run(&args(m, o, &["--loss", "am-softmax"]));
    assert!(!ok && e.contains("bce"), "{e}");
    std::fs::remove_dir_all(&root).ok();
}

/// The ablation switches reach run.json (what a results table reads), dropped terms are
/// absent from the log, the epoch-start lines carry the NMI report of K pseudo-domains.
#[test]
fn d2am_ablations_are_recorded_and_drop_their_terms() {
    let root = common::tmp("d2am", "ablate");
    let manifest = common::dataset(&root.join("data"), 5);
    let m = manifest.to_str().unwrap();
    let log_lines = |out: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(out.join("log.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    // Six steps: `args` with its --steps / --val-every / --checkpoint-every replaced.
    let short = |out: &Path, extra: &[&str]| -> (bool, String) {
        let o = out.to_str().unwrap();
        let mut v = args(m, o, extra);
        for flag in ["--steps", "--val-every", "--checkpoint-every"] {
            let i = v.iter().position(|&a| a == flag).unwrap();
            v[i + 1] = "6";
        }
        run(&v)
    };

    let out = root.join("random");
    let (ok, e) = short(
        &out,
        &[
            "--ablate",
            "random-domains,no-mmd,no-entropy",
            "--clusters",
            "4",
        ],
    );
    assert!(ok, "train failed:\n{e}");
    let model = &json(&out.join("run.json"))["model"];
    assert_eq!(model["domains"], "random");
    assert_eq!(model["clusters"], 4);
    assert_eq!(model["no_mmd"], true);
    assert_eq!(model["no_entropy"], true);
    assert_eq!(model["no_selection"], false);
    let lines = log_lines(&out);
    let steps: Vec<&serde_json::Value> = lines.iter().filter(|v| v.get("loss").is_some()).collect();
    assert!(!steps.is_empty());
    for v in &steps {
        for gone in ["mmd", "tst_mmd", "entropy", "drlm_cls"] {
            assert!(v.get(gone).is_none(), "{gone} logged: {v}");
        }
        assert!(v["pseudo_domains"].as_f64().unwrap() <= 4.0, "{v}");
    }
    let starts: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| v.get("epoch_start").is_some())
        .collect();
    assert!(!starts.is_empty());
    for v in &starts {
        assert!(
            (0.0..=1.0).contains(&v["pseudo_nmi_true"].as_f64().unwrap()),
            "{v}"
        );
        assert!(v.get("pseudo_domain_3").is_some() && v.get("pseudo_domain_4").is_none());
    }

    let out = root.join("true");
    let (ok, e) = short(&out, &["--ablate", "true-domains"]);
    assert!(ok, "train failed:\n{e}");
    assert_eq!(json(&out.join("run.json"))["model"]["domains"], "true");
    let lines = log_lines(&out);
    assert!(lines.iter().all(|v| v.get("epoch_start").is_none()));
    // The synth-domain task trains on three source domains: the meta-split sees them.
    assert!(lines
        .iter()
        .filter(|v| v.get("loss").is_some())
        .all(|v| v["pseudo_domains"].as_f64().unwrap() >= 2.0));
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn d2am_switches_are_refused_elsewhere_and_when_contradictory() {
    let root = common::tmp("d2am", "switches");
    let manifest = common::dataset(&root.join("data"), 5);
    let m = manifest.to_str().unwrap();
    let o = root.join("r");
    let o = o.to_str().unwrap();
    let baseline = |extra: &[&str]| -> Vec<String> {
        args(m, o, extra)
            .into_iter()
            .map(|s| if s == "d2am" { "baseline" } else { s }.to_string())
            .collect()
    };
    let b = baseline(&["--clusters", "3"]);
    let (ok, e) = run(&b.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!ok && e.contains("--clusters") && e.contains("d2am"), "{e}");
    let b = baseline(&["--ablate", "no-mmd"]);
    let (ok, e) = run(&b.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        !ok && e.contains("no-mmd") && e.contains("--recipe d2am"),
        "{e}"
    );
    let (ok, e) = run(&args(m, o, &["--clusters", "9"]));
    assert!(
        !ok && e.contains("--clusters 9") && e.contains("2 to 8"),
        "{e}"
    );
    let (ok, e) = run(&args(
        m,
        o,
        &["--ablate", "true-domains", "--clusters", "2"],
    ));
    assert!(!ok && e.contains("drop --clusters"), "{e}");
    std::fs::remove_dir_all(&root).ok();
}
