//! `fas-train train --recipe anrl` through the real binary on a tiny generated SynthFAS set:
//! a short leave-one-domain-out run with the recipe's defaults (RGB+HSV, depth supervision,
//! per-domain batches), resumed from its checkpoint, and the settings ANRL refuses.

mod common;
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
        "anrl",
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
fn anrl_trains_resumes_and_exports() {
    let root = common::tmp("anrl", "smoke");
    let manifest = common::dataset(&root.join("data"), 5);
    let m = manifest.to_str().unwrap();
    let out = root.join("run");
    let o = out.to_str().unwrap();

    // Half the run, then resume from the step-5 checkpoint to the end.
    let (ok, stderr) = run(&args(m, o, &["--max-steps", "5"]));
    assert!(ok, "train failed:\n{stderr}");
    let (ok, stderr) = run(&args(m, o, &["--resume"]));
    assert!(ok, "resume failed:\n{stderr}");

    let config = json(&out.join("run.json"));
    assert_eq!(config["recipe"], "anrl");
    assert_eq!(
        config["model"]["in_channels"], 6,
        "anrl defaults to RGB+HSV"
    );
    assert_eq!(config["model"]["centroid_momentum"], 0.9);
    assert!(config["sampler"]
        .as_str()
        .unwrap()
        .starts_with("per-domain"));
    let metrics = json(&out.join("metrics.json"));
    assert_eq!(metrics["training"]["steps"], 10);
    let log = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
    for term in ["\"idc\"", "\"ics\"", "\"depth\"", "\"tst\""] {
        assert!(log.contains(term), "{term} not logged:\n{log}");
    }
    assert!(!log.contains("NaN") && !log.contains("null"), "{log}");
    // The exported graph: 6-channel input, one p_live output, AFNM inside.
    let g = fas_core::ir::Graph::load(out.join("model.json")).unwrap();
    assert_eq!(g.inputs[0].shape, vec![1, 6, 32, 32]);
    assert_eq!(g.outputs, vec!["p_live".to_string()]);
    assert!(g
        .nodes
        .iter()
        .any(|n| matches!(n.op, fas_core::ir::Op::AdaptiveBnIn { .. })));
    // `eval` reads the ANRL run dir like any other.
    let (ok, stderr) = run(&[
        "eval",
        "--run",
        o,
        "--manifest",
        m,
        "--protocol",
        "synth-domain",
        "--task",
        "unseen-synth-d",
        "--device",
        "cpu",
        "--workers",
        "2",
    ]);
    assert!(ok, "eval failed:\n{stderr}");
    let eval = json(&out.join("eval-manifest/eval.json"));
    assert_eq!(
        eval["frame"]["deployable"],
        metrics["test"]["frame"]["deployable"]
    );
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn anrl_refuses_other_backbones_and_losses() {
    let root = common::tmp("anrl", "refuse");
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
