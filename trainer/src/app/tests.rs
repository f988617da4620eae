use super::*;
use crate::prepare::{PrepareReport, Totals, REPORT_FILE, REPORT_VERSION};

#[test]
fn manifest_crop_follows_the_prepare_run_beside_the_manifest() {
    let dir = std::env::temp_dir().join(format!("fas-crop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("manifest.jsonl");
    // No prepare.json: prepare's default crop.
    assert_eq!(
        manifest_crop(&manifest).unwrap(),
        CropSpec::Aligned { scale: 2.7 }
    );
    let report = PrepareReport {
        version: REPORT_VERSION,
        complete: true,
        config: PrepareConfig {
            crop: CropSpec::Aligned { scale: 1.5 },
            ..PrepareConfig::default()
        },
        detector_model: "retinaface.onnx".into(),
        root: "src".into(),
        out: "crops".into(),
        sources: vec![],
        totals: Totals::default(),
        elapsed_s: 1.0,
    };
    std::fs::write(
        dir.join(REPORT_FILE),
        serde_json::to_string(&report).unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest_crop(&manifest).unwrap(),
        CropSpec::Aligned { scale: 1.5 }
    );
    let spec = preprocess_spec(InputKind::Rgb, 80, manifest_crop(&manifest).unwrap());
    assert_eq!(spec.crop, CropSpec::Aligned { scale: 1.5 });
    // A prepare.json that is not a report is an error naming it, never a silent default.
    std::fs::write(dir.join(REPORT_FILE), "{\"version\": 1}").unwrap();
    let e = format!("{:#}", manifest_crop(&manifest).unwrap_err());
    assert!(
        e.contains("prepare.json") && e.contains("not a `fas-train prepare` report"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn train_args(extra: &[&str]) -> TrainArgs {
    use clap::Parser;
    let mut v = vec![
        "fas-train",
        "train",
        "--manifest",
        "m.jsonl",
        "--protocol",
        "synth-domain",
        "--task",
        "t",
        "--recipe",
        "d2am",
        "--out",
        "o",
    ];
    v.extend_from_slice(extra);
    match crate::cli::Cli::try_parse_from(v).unwrap().command {
        crate::cli::Command::Train(a) => *a,
        _ => unreachable!("a train command"),
    }
}

fn d2am(extra: &[&str]) -> Result<D2amConfig> {
    d2am_config(&train_args(extra), 6, 32, 1.0, AdamConfig::default())
}

/// Every D²AM switch sets its own config field and nothing else; `--clusters` is K.
#[test]
fn d2am_ablations_and_clusters_map_to_the_config() {
    let base = d2am(&[]).unwrap();
    assert_eq!(base.clusters, 3);
    assert_eq!(base.domains, DomainSource::Clusters);
    assert!(!base.no_selection && !base.no_entropy && !base.no_mmd);
    let one = |flag: &str| d2am(&["--ablate", flag]).unwrap();
    assert_eq!(
        one("true-domains"),
        D2amConfig {
            domains: DomainSource::True,
            ..base.clone()
        }
    );
    assert_eq!(
        one("random-domains"),
        D2amConfig {
            domains: DomainSource::Random,
            ..base.clone()
        }
    );
    let flags = [
        (
            "no-selection",
            D2amConfig {
                no_selection: true,
                ..base.clone()
            },
        ),
        (
            "no-entropy",
            D2amConfig {
                no_entropy: true,
                ..base.clone()
            },
        ),
        (
            "no-mmd",
            D2amConfig {
                no_mmd: true,
                ..base.clone()
            },
        ),
    ];
    for (flag, want) in flags {
        assert_eq!(one(flag), want, "{flag}");
    }
    for k in [2usize, 4, 8] {
        let c = d2am(&["--clusters", &k.to_string()]).unwrap();
        assert_eq!(
            c,
            D2amConfig {
                clusters: k,
                ..base.clone()
            }
        );
    }
    let c = d2am(&["--ablate", "random-domains,no-mmd", "--clusters", "2"]).unwrap();
    assert_eq!(
        (c.domains, c.no_mmd, c.clusters),
        (DomainSource::Random, true, 2)
    );
    // The run.json record a results table reads.
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(v["domains"], "random");
    assert_eq!(v["no_mmd"], true);
    assert_eq!(v["clusters"], 2);
}

#[test]
fn d2am_refuses_contradictory_switches() {
    let err = |extra: &[&str]| format!("{:#}", d2am(extra).unwrap_err());
    for k in ["1", "9"] {
        let e = err(&["--clusters", k]);
        assert!(e.contains("--clusters") && e.contains("2 to 8"), "{e}");
    }
    let e = err(&["--ablate", "true-domains", "--clusters", "4"]);
    assert!(
        e.contains("--clusters") && e.contains("true-domains"),
        "{e}"
    );
    let e = err(&["--ablate", "true-domains,random-domains"]);
    assert!(e.contains("choose one"), "{e}");
    let e = err(&["--ablate", "random-domains,no-selection"]);
    assert!(e.contains("no-selection"), "{e}");
}
