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
