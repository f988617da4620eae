//! `fas-train train --recipe anrl` through the real binary on a tiny generated SynthFAS set:
//! a short leave-one-domain-out run with the recipe's defaults (RGB+HSV, depth supervision,
//! per-domain batches), resumed from its checkpoint, and the settings ANRL refuses.

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
    // The paper's setting by default: second order, AFNM, no ablation.
    let mut config = json(&out.join("run.json"));
    let model = &config["model"];
    assert_eq!(model["second_order"], true);
    assert_eq!(model["norm"], "afnm");
    for k in ["no_meta", "no_idc", "no_ics"] {
        assert_eq!(model[k], false, "{k}");
    }
    // A run dir written before these fields existed resumes (they take their defaults).
    let o_model = config["model"].as_object_mut().unwrap();
    for k in ["second_order", "norm", "no_meta", "no_idc", "no_ics"] {
        o_model.remove(k);
    }
    std::fs::write(out.join("run.json"), config.to_string()).unwrap();
    let (ok, stderr) = run(&args(m, o, &["--resume"]));
    assert!(ok, "resume failed:\n{stderr}");
    // Resuming with a different setting is refused.
    let (ok, stderr) = run(&args(m, o, &["--resume", "--first-order"]));
    assert!(!ok && stderr.contains("\"model\" differs"), "{stderr}");

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

/// The ablation switches and `--first-order` are recorded in `run.json`, drop their terms
/// from the log and (`in`) change the exported network; they belong to ANRL (and
/// `--first-order` to the meta-learning recipes) alone.
#[test]
fn anrl_ablations_are_recorded_and_refused_elsewhere() {
    let root = common::tmp("anrl", "ablate");
    let manifest = common::dataset(&root.join("data"), 6);
    let m = manifest.to_str().unwrap();
    let out = root.join("ablated");
    let o = out.to_str().unwrap();
    let (ok, stderr) = run(&args(
        m,
        o,
        &[
            "--max-steps",
            "2",
            "--log-every",
            "1",
            "--first-order",
            "--ablate",
            "in,no-meta,no-idc,no-ics",
        ],
    ));
    assert!(ok, "ablated run failed:\n{stderr}");
    let config = json(&out.join("run.json"));
    let model = &config["model"];
    assert_eq!(model["second_order"], false);
    assert_eq!(model["norm"], "instance");
    for k in ["no_meta", "no_idc", "no_ics"] {
        assert_eq!(model[k], true, "{k}");
    }
    let log = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
    assert!(log.contains("\"cls\""), "{log}");
    for term in ["\"idc\"", "\"ics\"", "\"trn\"", "\"tst\""] {
        assert!(!log.contains(term), "{term} logged:\n{log}");
    }
    let g = fas_core::ir::Graph::load(out.join("model.json")).unwrap();
    let kinds: Vec<&str> = g.nodes.iter().map(|n| n.op.kind()).collect();
    assert!(kinds.contains(&"instance_norm2d"), "{kinds:?}");
    assert!(
        !kinds.contains(&"adaptive_bn_in") && !kinds.contains(&"batch_norm2d"),
        "{kinds:?}"
    );

    let r = root.join("r");
    let o = r.to_str().unwrap();
    let (ok, e) = run(&args(m, o, &["--ablate", "bn,in"]));
    assert!(!ok && e.contains("bn") && e.contains("in"), "{e}");
    let (ok, e) = run(&args(m, o, &["--ablate", "no-v"]));
    assert!(!ok && e.contains("--recipe dlif"), "{e}");
    let mut dlif = args(m, o, &["--ablate", "no-meta"]);
    dlif[8] = "dlif";
    let (ok, e) = run(&dlif);
    assert!(!ok && e.contains("--recipe anrl"), "{e}");
    let mut base = args(m, o, &["--first-order"]);
    base[8] = "baseline";
    let (ok, e) = run(&base);
    assert!(!ok && e.contains("--first-order"), "{e}");
    std::fs::remove_dir_all(&root).ok();
}
