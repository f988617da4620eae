//! `fas-train train --recipe dualstage` through the real binary on a tiny generated SynthFAS
//! set under leave-one-attack-type-out (`synth-attack`): both stages, a resume from the
//! checkpoint across the stage switch, an ablation, the exported E_S + D_map graph, and the
//! settings the recipe refuses.

use crate::common;
use common::{json, run};

fn args<'a>(manifest: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "train",
        "--manifest",
        manifest,
        "--protocol",
        "synth-attack",
        "--task",
        "unseen-mask",
        "--recipe",
        "dualstage",
        "--size",
        "32",
        "--width",
        "0.125",
        "--batch-size",
        "8",
        "--steps",
        "6",
        "--val-every",
        "3",
        "--checkpoint-every",
        "3",
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

/// The `"stage"` value of every step line of `log.jsonl`.
fn stages(log: &str) -> Vec<f64> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("stage").and_then(|s| s.as_f64()))
        .collect()
}

#[test]
fn dualstage_trains_resumes_and_exports() {
    let root = common::tmp("dualstage", "smoke");
    let manifest = common::dataset(&root.join("data"), 11);
    let m = manifest.to_str().unwrap();
    let out = root.join("run");
    let o = out.to_str().unwrap();

    // 6 steps × 0.5 = 3 stage-1 steps; stop after 3, resume into stage 2.
    let (ok, stderr) = run(&args(
        m,
        o,
        &[
            "--max-steps",
            "3",
            "--stage1-fraction",
            "0.5",
            "--log-every",
            "1",
        ],
    ));
    assert!(ok, "train failed:\n{stderr}");
    let (ok, stderr) = run(&args(
        m,
        o,
        &["--resume", "--stage1-fraction", "0.5", "--log-every", "1"],
    ));
    assert!(ok, "resume failed:\n{stderr}");

    let config = json(&out.join("run.json"));
    assert_eq!(config["recipe"], "dualstage");
    assert_eq!(config["task"]["name"], "unseen-mask");
    assert_eq!(config["model"]["stage1_steps"], 3);
    assert_eq!(config["model"]["channels"], 4);
    assert_eq!(config["model"]["recon_weight"], 4.0);
    assert_eq!(config["model"]["single_stage"], false);
    assert_eq!(
        config["model"]["adam"]["decoupled"], false,
        "the paper uses Adam"
    );
    assert_eq!(config["training"]["lr"], 5e-4);
    assert_eq!(config["training"]["schedule"]["kind"], "constant");
    assert!(
        config["sampler"].as_str().unwrap().contains("class"),
        "{}",
        config["sampler"]
    );
    let metrics = json(&out.join("metrics.json"));
    assert_eq!(metrics["training"]["steps"], 6);
    assert!(metrics["test"].is_object(), "{metrics}");
    let log = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
    let st = stages(&log);
    assert!(st.contains(&1.0) && st.contains(&2.0), "{log}");
    for term in [
        "\"live\"",
        "\"disc\"",
        "\"recon\"",
        "\"adv\"",
        "\"reg\"",
        "\"triplet\"",
        "\"aux\"",
    ] {
        assert!(log.contains(term), "{term} not logged:\n{log}");
    }
    assert!(!log.contains("NaN") && !log.contains("null"), "{log}");
    let g = fas_core::ir::Graph::load(out.join("model.json")).unwrap();
    assert_eq!(g.inputs[0].shape, vec![1, 3, 32, 32]);
    assert_eq!(g.outputs, vec!["p_live".to_string()]);
    assert!(g
        .nodes
        .iter()
        .any(|n| matches!(n.op, fas_core::ir::Op::MeanOfMap)));
    // Only E_S + D_map are deployed.
    assert!(g
        .nodes
        .iter()
        .all(|n| n.name.starts_with("es.") || n.name.starts_with("dmap.") || n.name == "p_live"));
    for f in [
        "weights.safetensors",
        "parity.safetensors",
        "test_scores.jsonl",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }

    // Ablations: one stage, no triplet, no auxiliary classifier.
    let out2 = root.join("ablated");
    let o2 = out2.to_str().unwrap();
    let (ok, stderr) = run(&args(
        m,
        o2,
        &[
            "--max-steps",
            "2",
            "--log-every",
            "1",
            "--ablate",
            "single-stage,no-triplet,no-aux",
        ],
    ));
    assert!(ok, "ablated run failed:\n{stderr}");
    let config = json(&out2.join("run.json"));
    assert_eq!(config["model"]["single_stage"], true);
    assert_eq!(config["model"]["no_aux"], true);
    let log = std::fs::read_to_string(out2.join("log.jsonl")).unwrap();
    assert!(
        !log.contains("\"triplet\"") && !log.contains("\"aux\""),
        "{log}"
    );
    assert!(!stages(&log).contains(&1.0), "{log}");
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn dualstage_refuses_what_does_not_apply() {
    let root = common::tmp("dualstage", "refuse");
    let manifest = common::dataset(&root.join("data"), 11);
    let m = manifest.to_str().unwrap();
    let o = root.join("r");
    let o = o.to_str().unwrap();
    let (ok, e) = run(&args(m, o, &["--backbone", "resnet18"]));
    assert!(!ok && e.contains("--backbone"), "{e}");
    let (ok, e) = run(&args(m, o, &["--loss", "bce"]));
    assert!(!ok && e.contains("--loss"), "{e}");
    let (ok, e) = run(&args(m, o, &["--depth-weight", "1"]));
    assert!(!ok && e.contains("depth"), "{e}");
    let (ok, e) = run(&args(m, o, &["--ablate", "no-v"]));
    assert!(!ok && e.contains("--recipe dlif"), "{e}");
    let (ok, e) = run(&args(m, o, &["--stage1-fraction", "1.5"]));
    assert!(!ok && e.contains("--stage1-fraction"), "{e}");
    let mut odd = args(m, o, &[]);
    let at = odd.iter().position(|a| *a == "--size").unwrap();
    odd[at + 1] = "30";
    let (ok, e) = run(&odd);
    assert!(!ok && e.contains("multiple of 4"), "{e}");
    // The dual-stage switches belong to it alone.
    let mut dlif = args(m, o, &["--ablate", "no-aux"]);
    dlif[8] = "dlif";
    let (ok, e) = run(&dlif);
    assert!(!ok && e.contains("--recipe dualstage"), "{e}");
    let mut base = args(m, o, &["--stage1-fraction", "0.2"]);
    base[8] = "baseline";
    let (ok, e) = run(&base);
    assert!(!ok && e.contains("--recipe dualstage"), "{e}");
    std::fs::remove_dir_all(&root).ok();
}

/// `fas-train translate` writes the feature-swap figure of a dual-stage run, and refuses
/// runs of other recipes.
#[test]
fn translate_writes_the_feature_swap_png() {
    let root = common::tmp("dualstage", "translate");
    let manifest = common::dataset(&root.join("data"), 13);
    let m = manifest.to_str().unwrap();
    let out = root.join("run");
    let o = out.to_str().unwrap();
    let (ok, stderr) = run(&args(
        m,
        o,
        &["--max-steps", "3", "--stage1-fraction", "0.34"],
    ));
    assert!(ok, "train failed:\n{stderr}");
    let png = root.join("swap.png");
    let (ok, stderr) = run(&[
        "translate",
        "--run",
        o,
        "--manifest",
        m,
        "--device",
        "cpu",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(ok, "translate failed:\n{stderr}");
    let img = image::open(&png).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (4 * 32, 2 * 32));
    // The two rows show different faces.
    let row = |y0: u32| -> Vec<u8> {
        (y0..y0 + 32)
            .flat_map(|y| (0..32).flat_map(move |x| [x, y]))
            .collect::<Vec<u32>>()
            .chunks(2)
            .flat_map(|p| img.get_pixel(p[0], p[1]).0)
            .collect()
    };
    assert_ne!(row(0), row(32));

    // A baseline run has no live encoder to swap with.
    let base = root.join("base");
    let mut a = args(m, base.to_str().unwrap(), &["--max-steps", "1"]);
    a[8] = "baseline";
    let (ok, stderr) = run(&a);
    assert!(ok, "baseline failed:\n{stderr}");
    let (ok, e) = run(&[
        "translate",
        "--run",
        base.to_str().unwrap(),
        "--manifest",
        m,
        "--device",
        "cpu",
    ]);
    assert!(!ok && e.contains("--recipe dualstage"), "{e}");
    std::fs::remove_dir_all(&root).ok();
}
