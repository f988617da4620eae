//! `fas-train train --recipe dlif` through the real binary on a tiny generated SynthFAS set:
//! identity-structured batches, both encoders, a resume from the checkpoint, an ablation, the
//! exported U + CWSA + C graph, and the settings DLIF refuses.

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
        "dlif",
        "--size",
        "32",
        "--width",
        "0.125",
        "--batch-size",
        "24",
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

#[test]
fn dlif_trains_resumes_and_exports() {
    let root = common::tmp("dlif", "smoke");
    let manifest = common::dataset(&root.join("data"), 7);
    let m = manifest.to_str().unwrap();
    let out = root.join("run");
    let o = out.to_str().unwrap();

    let (ok, stderr) = run(&args(m, o, &["--max-steps", "3"]));
    assert!(ok, "train failed:\n{stderr}");
    let (ok, stderr) = run(&args(m, o, &["--resume"]));
    assert!(ok, "resume failed:\n{stderr}");

    let config = json(&out.join("run.json"));
    assert_eq!(config["recipe"], "dlif");
    assert_eq!(config["model"]["tau"], 0.07);
    assert_eq!(config["model"]["no_v"], false);
    assert_eq!(
        config["model"]["adam"]["decoupled"], false,
        "the paper uses Adam"
    );
    assert_eq!(config["training"]["lr"], 5e-4);
    assert_eq!(config["training"]["schedule"]["kind"], "step");
    assert_eq!(config["training"]["schedule"]["gamma"], 0.5);
    assert!(
        config["sampler"].as_str().unwrap().starts_with("identity"),
        "{}",
        config["sampler"]
    );
    let metrics = json(&out.join("metrics.json"));
    assert_eq!(metrics["training"]["steps"], 6);
    let log = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
    for term in [
        "\"aaic_u\"",
        "\"aaic_v\"",
        "\"ortho\"",
        "\"idamb\"",
        "\"liamb\"",
        "\"id\"",
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
        .any(|n| matches!(n.op, fas_core::ir::Op::StyleAttention { .. })));
    for f in ["weights.safetensors", "parity.safetensors"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }

    // An ablation: no identity branch, parallel low+high Style Cross.
    let out2 = root.join("ablated");
    let o2 = out2.to_str().unwrap();
    let (ok, stderr) = run(&args(
        m,
        o2,
        &[
            "--max-steps",
            "2",
            "--ablate",
            "no-v,no-cwsa",
            "--style-cross-levels",
            "low,high",
            "--style-cross-flow",
            "parallel",
        ],
    ));
    assert!(ok, "ablated run failed:\n{stderr}");
    let config = json(&out2.join("run.json"));
    assert_eq!(config["model"]["no_v"], true);
    assert_eq!(config["model"]["style_cross"]["flow"], "parallel");
    let log = std::fs::read_to_string(out2.join("log.jsonl")).unwrap();
    assert!(!log.contains("\"ortho\""), "{log}");
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn dlif_refuses_other_backbones_losses_and_depth() {
    let root = common::tmp("dlif", "refuse");
    let manifest = common::dataset(&root.join("data"), 7);
    let m = manifest.to_str().unwrap();
    let o = root.join("r");
    let o = o.to_str().unwrap();
    let (ok, e) = run(&args(m, o, &["--backbone", "edgenet"]));
    assert!(
        !ok && e.contains("ResNet-18") && e.contains("--backbone"),
        "{e}"
    );
    let (ok, e) = run(&args(m, o, &["--loss", "bce"]));
    assert!(!ok && e.contains("AM-softmax"), "{e}");
    let (ok, e) = run(&args(m, o, &["--depth-weight", "1"]));
    assert!(!ok && e.contains("depth"), "{e}");
    // 200 / (3 domains × 8) = 8 identities per domain; SynthFAS has 4 subjects each.
    let mut big = args(m, o, &[]);
    let at = big.iter().position(|a| *a == "--batch-size").unwrap();
    big[at + 1] = "200";
    let (ok, e) = run(&big);
    assert!(!ok && e.contains("lower --batch-size"), "{e}");
    let mut base = args(m, o, &["--ablate", "no-v"]);
    base[8] = "baseline";
    let (ok, e) = run(&base);
    assert!(!ok && e.contains("--recipe dlif"), "{e}");
    std::fs::remove_dir_all(&root).ok();
}
