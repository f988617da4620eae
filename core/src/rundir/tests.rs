use super::*;
use crate::atomic::tempdir;
use crate::dataset::{Label, Split};

fn sample(i: u32, label: Label) -> Sample {
    Sample {
        v: DATASET_MANIFEST_VERSION,
        path: format!("crops/{i}.png"),
        label,
        attack: if label == Label::Live {
            "none"
        } else {
            "print"
        }
        .into(),
        domain: "synth-a".into(),
        subject: format!("s{i}"),
        device: "cam".into(),
        split: Split::Dev,
        video: format!("v{i}"),
        frame: i,
    }
}

/// A `run.json` as fas-train writes it: the header's fields among the trainer's own.
fn run_json() -> serde_json::Value {
    serde_json::json!({
        "fas_version": "0.1.0",
        "recipe": "baseline",
        "manifest": "data/manifest.jsonl",
        "protocol": "synth-domain",
        "task": {
            "protocol": "synth-domain",
            "name": "unseen-synth-a",
            "train_domains": ["synth-b"],
            "train_attacks": ["print"],
            "target": {"kind": "domain", "name": "synth-a"},
            "options": {}
        },
        "preprocess": PreprocessSpec::minifas_80(),
        "model": {"backbone": "edgenet", "dropout": 0.1},
        "training": {"steps": 20},
        "seed": 0,
        "torch_threads": null
    })
}

#[test]
fn layout_names_every_file_of_a_run_dir() {
    let d = RunDir::new("/runs/a");
    let root = Path::new("/runs/a");
    assert_eq!(d.config(), root.join("run.json"));
    assert_eq!(d.model(), root.join("model.json"));
    assert_eq!(d.weights(), root.join("weights.safetensors"));
    assert_eq!(d.metrics(), root.join("metrics.json"));
    assert_eq!(d.log(), root.join("log.jsonl"));
    assert_eq!(d.val_scores(), root.join("val_scores.jsonl"));
    assert_eq!(d.test_scores(), root.join("test_scores.jsonl"));
    assert_eq!(d.parity(), root.join("parity.safetensors"));
    assert_eq!(d.plots(), root.join("plots"));
    assert_eq!(d.checkpoint_dir(), root.join("checkpoint"));
    assert_eq!(d.validations(), root.join("checkpoint/validations.json"));
    assert_eq!(CHECKPOINT_NAME, "last");
}

#[test]
fn create_makes_the_directories_and_keeps_existing_ones() {
    let t = tempdir("rundir-create");
    let d = RunDir::create(&t.join("run")).unwrap();
    assert!(d.checkpoint_dir().is_dir() && d.plots().is_dir());
    std::fs::write(d.log(), "{}\n").unwrap();
    RunDir::create(&d.root).unwrap();
    assert_eq!(std::fs::read_to_string(d.log()).unwrap(), "{}\n");
    std::fs::write(t.join("file"), "").unwrap();
    let e = RunDir::create(&t.join("file")).unwrap_err().to_string();
    assert!(e.contains("cannot create the run dir"), "{e}");
    std::fs::remove_dir_all(t).unwrap();
}

#[test]
fn scores_round_trip_exactly() {
    let t = tempdir("rundir-scores");
    let samples = [sample(0, Label::Live), sample(1, Label::Spoof)];
    let refs: Vec<&Sample> = samples.iter().collect();
    let scores = [0.1 + 0.2, 1.0 / 3.0];
    let d = RunDir::new(&t);
    write_scores(&d.val_scores(), &refs, &scores).unwrap();
    let back = read_scores(&d.val_scores()).unwrap();
    assert_eq!(back.len(), 2);
    for ((b, s), &score) in back.iter().zip(&samples).zip(&scores) {
        assert_eq!(&b.sample, s);
        assert_eq!(b.score.to_bits(), score.to_bits());
    }
    // The line is the sample's fields plus `score`, flat (the on-disk format).
    let text = std::fs::read_to_string(d.val_scores()).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["label"], "live");
    assert_eq!(first["domain"], "synth-a");
    assert_eq!(first["score"], 0.1 + 0.2);
    // Written atomically: nothing else left in the directory.
    assert_eq!(std::fs::read_dir(&t).unwrap().count(), 1);
    std::fs::remove_dir_all(t).unwrap();
}

#[test]
fn malformed_score_lines_name_file_line_and_field() {
    let t = tempdir("rundir-bad-scores");
    let p = t.join(VAL_SCORES_FILE);
    let good = serde_json::to_string(&ScoredSample {
        sample: sample(0, Label::Live),
        score: 0.5,
    })
    .unwrap();
    let mut missing = serde_json::from_str::<serde_json::Value>(&good).unwrap();
    missing.as_object_mut().unwrap().remove("score");
    std::fs::write(&p, format!("{good}\n\n{missing}\n")).unwrap();
    let e = read_scores(&p).unwrap_err().to_string();
    assert!(
        e.contains(&p.display().to_string()) && e.contains("line 3") && e.contains("score"),
        "{e}"
    );
    assert!(e.contains("re-run training"), "{e}");

    let mut newer = serde_json::from_str::<serde_json::Value>(&good).unwrap();
    newer["v"] = serde_json::json!(DATASET_MANIFEST_VERSION + 1);
    std::fs::write(&p, format!("{newer}\n")).unwrap();
    let e = read_scores(&p).unwrap_err().to_string();
    assert!(
        e.contains("line 1") && e.contains("\"v\"") && e.contains("upgrade"),
        "{e}"
    );

    let e = read_scores(&t.join("nope.jsonl")).unwrap_err().to_string();
    assert!(
        e.contains("nope.jsonl") && e.contains("fas-train run dir"),
        "{e}"
    );
    std::fs::remove_dir_all(t).unwrap();
}

#[test]
fn header_reads_the_shared_fields_of_a_trainer_run_json() {
    let t = tempdir("rundir-header");
    let d = RunDir::new(&t);
    std::fs::write(
        d.config(),
        serde_json::to_string_pretty(&run_json()).unwrap(),
    )
    .unwrap();
    let h = d.header().unwrap();
    assert_eq!(h.fas_version, "0.1.0");
    assert_eq!(h.recipe, "baseline");
    assert_eq!(h.protocol.as_deref(), Some("synth-domain"));
    assert_eq!(h.task.as_ref().unwrap().name, "unseen-synth-a");
    assert_eq!(h.preprocess, PreprocessSpec::minifas_80());
    assert_eq!(h.model["backbone"], "edgenet");
    assert_eq!(h.protocol_label(), "synth-domain unseen-synth-a");

    // Protocol and task are optional (a custom run).
    let mut v = run_json();
    let o = v.as_object_mut().unwrap();
    o.remove("protocol");
    o.remove("task");
    o.remove("model");
    std::fs::write(d.config(), v.to_string()).unwrap();
    let h = d.header().unwrap();
    assert_eq!(h.protocol_label(), "custom");
    assert!(h.model.is_null());
    std::fs::remove_dir_all(t).unwrap();
}

#[test]
fn malformed_run_json_names_file_field_and_fix() {
    let t = tempdir("rundir-bad-header");
    let d = RunDir::new(&t);
    let file = d.config().display().to_string();
    let err = |v: &str| {
        std::fs::write(d.config(), v).unwrap();
        d.header().unwrap_err().to_string()
    };
    let check = |e: String, field: &str| {
        assert!(e.contains(&file), "{e}");
        assert!(e.contains(&format!("field \"{field}\"")), "{e}");
        assert!(e.contains("re-run training or fix the file"), "{e}");
    };
    check(err("{ not json"), "(root)");
    check(err("[1, 2]"), "(root)");
    let mut v = run_json();
    v.as_object_mut().unwrap().remove("recipe");
    check(err(&v.to_string()), "recipe");
    let mut v = run_json();
    v["preprocess"]["width"] = serde_json::json!("wide");
    let e = err(&v.to_string());
    check(e.clone(), "preprocess");
    assert!(e.contains("invalid type"), "{e}");
    let mut v = run_json();
    v["task"] = serde_json::json!({"title": "x"});
    check(err(&v.to_string()), "task");
    let e = RunDir::new(t.join("missing"))
        .header()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("run.json") && e.contains("fas-train run dir"),
        "{e}"
    );
    std::fs::remove_dir_all(t).unwrap();
}
