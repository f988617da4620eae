//! A trainer run dir → `liveness.onnx` + a draft bundle manifest, parity-checked.
//!
//! `Checkpoint → OnnxModel`: reads `model.json` (IR), `weights.safetensors`, `run.json`
//! (recipe, preprocessing, protocol/task), `metrics.json` (test metrics) and
//! `val_scores.jsonl` (source-validation scores → recommended thresholds), exports ONNX and
//! checks it in tract against `parity.safetensors` — real validation crops with the
//! trainer's tch outputs — to max |Δ| ≤ [`PARITY_TOLERANCE`] (contract 2).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fas_core::bundle::{
    BundleManifest, DType, InputSpec, MetricEntry, ModelInfo, Quantization, ScoreSpec,
    Threshold as BundleThreshold, BUNDLE_FORMAT_VERSION,
};
use fas_core::dataset::Label;
use fas_core::ir::Graph;
use fas_core::metrics::Threshold;
use fas_core::preprocess::PreprocessSpec;
use fas_infer::liveness::LivenessModel;
use serde::{Deserialize, Serialize};

use crate::onnx::{export, ExportError, ExportOptions, OnnxModel, Weights};

/// fp32 parity bound between the trainer (tch) and the exported ONNX in tract.
pub const PARITY_TOLERANCE: f32 = 1e-4;
pub const PARITY_FILE: &str = "parity.safetensors";

#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    #[error("{file}: cannot read it — is {dir} a fas-train run dir (model.json, weights.safetensors, run.json)?")]
    Io {
        dir: PathBuf,
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: field \"{field}\": {problem} — the run dir was not written by this fas-train; re-run training or fix the file")]
    Field {
        file: PathBuf,
        field: &'static str,
        problem: String,
    },
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error("{file}: {problem}")]
    Parity { file: PathBuf, problem: String },
    #[error(transparent)]
    Liveness(#[from] fas_infer::liveness::LivenessError),
}

/// Everything of a run dir the exporter needs.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub root: PathBuf,
    pub graph: Graph,
    pub weights: Weights,
    pub recipe: String,
    pub preprocess: PreprocessSpec,
    /// `"<protocol> <task>"`, e.g. `"synth-domain unseen-synth-a"`.
    pub protocol: String,
    /// Whether the training data was SynthFAS (a demo model, never for a real door).
    pub demo: bool,
    pub metrics: Vec<MetricEntry>,
    pub thresholds: Vec<BundleThreshold>,
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, RunDirError> {
    let file = dir.join(name);
    std::fs::read(&file).map_err(|source| RunDirError::Io {
        dir: dir.to_path_buf(),
        file,
        source,
    })
}

fn field(file: &Path, field: &'static str, problem: impl Into<String>) -> RunDirError {
    RunDirError::Field {
        file: file.to_path_buf(),
        field,
        problem: problem.into(),
    }
}

#[derive(Deserialize)]
struct ScoreLine {
    label: Label,
    domain: String,
    score: f64,
}

impl RunDir {
    pub fn load(root: impl AsRef<Path>) -> Result<RunDir, RunDirError> {
        let root = root.as_ref().to_path_buf();
        let graph_text = String::from_utf8_lossy(&read(&root, "model.json")?).into_owned();
        let graph = Graph::from_json(&graph_text).map_err(ExportError::Graph)?;
        let weights_path = root.join("weights.safetensors");
        let weights =
            Weights::from_safetensors(&read(&root, "weights.safetensors")?, &weights_path)
                .map_err(ExportError::Weights)?;

        let run_path = root.join("run.json");
        let run: serde_json::Value = serde_json::from_slice(&read(&root, "run.json")?)
            .map_err(|e| field(&run_path, "(root)", format!("not JSON: {e}")))?;
        let recipe = run["recipe"]
            .as_str()
            .ok_or_else(|| field(&run_path, "recipe", "missing or not a string"))?
            .to_string();
        let preprocess: PreprocessSpec = serde_json::from_value(run["preprocess"].clone())
            .map_err(|e| field(&run_path, "preprocess", e.to_string()))?;
        let protocol = run["protocol"].as_str().unwrap_or("custom").to_string();
        let task = run["task"]["name"].as_str().unwrap_or("").to_string();
        let protocol = format!("{protocol} {task}").trim().to_string();

        // Source-validation scores → thresholds (never the target's scores).
        let val_path = root.join("val_scores.jsonl");
        let text = String::from_utf8_lossy(&read(&root, "val_scores.jsonl")?).into_owned();
        let mut scores = Vec::new();
        let mut labels = Vec::new();
        let mut demo = true;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let l: ScoreLine = serde_json::from_str(line)
                .map_err(|e| field(&val_path, "(line)", format!("line {}: {e}", i + 1)))?;
            demo &= l.domain.starts_with("synth-");
            scores.push(l.score);
            labels.push(l.label);
        }
        let thresholds = recommended_thresholds(&scores, &labels, &protocol)
            .map_err(|e| field(&val_path, "score", e))?;

        let metrics_path = root.join("metrics.json");
        let metrics_json: serde_json::Value = serde_json::from_slice(&read(&root, "metrics.json")?)
            .map_err(|e| field(&metrics_path, "(root)", format!("not JSON: {e}")))?;
        let mut metrics = Vec::new();
        for level in ["frame", "video"] {
            let r = &metrics_json["test"][level]["deployable"];
            for (key, name) in [
                ("auc", "AUC"),
                ("eer", "EER"),
                ("hter", "HTER"),
                ("acer", "ACER"),
                ("apcer", "APCER"),
                ("bpcer", "BPCER"),
            ] {
                if let Some(v) = r[key].as_f64() {
                    metrics.push(MetricEntry {
                        protocol: format!("{protocol} test ({level}, threshold from source val)"),
                        metric: name.to_string(),
                        value: v,
                    });
                }
            }
        }
        if metrics.is_empty() {
            return Err(field(
                &metrics_path,
                "test.frame.deployable",
                "holds no metrics",
            ));
        }
        Ok(RunDir {
            root,
            graph,
            weights,
            recipe,
            preprocess,
            protocol,
            demo,
            metrics,
            thresholds,
        })
    }
}

/// `default` at the source-validation EER, `strict` at APCER ≤ 1 % on source validation.
pub fn recommended_thresholds(
    scores: &[f64],
    labels: &[Label],
    protocol: &str,
) -> Result<Vec<BundleThreshold>, String> {
    let chosen_on = format!("{protocol} source validation");
    let eer = Threshold::at_eer(scores, labels).map_err(|e| e.to_string())?;
    let strict = Threshold::at_apcer(scores, labels, 0.01).map_err(|e| e.to_string())?;
    let clamp = |v: f64| v.clamp(0.0, 1.0);
    Ok(vec![
        BundleThreshold {
            name: "default".into(),
            value: clamp(eer.value),
            operating_point: "EER".into(),
            chosen_on: chosen_on.clone(),
        },
        BundleThreshold {
            name: "strict".into(),
            value: clamp(strict.value),
            operating_point: "APCER ≤ 1%".into(),
            chosen_on,
        },
    ])
}

/// The result of [`export_run`].
pub struct Exported {
    pub onnx: OnnxModel,
    pub bytes: Vec<u8>,
    /// A bundle manifest without file hashes (the bundle writer fills them in).
    pub draft: BundleManifest,
    pub parity: ParityReport,
}

#[derive(Debug, Clone, Serialize)]
pub struct ParityReport {
    pub samples: usize,
    pub max_abs: f32,
    pub tolerance: f32,
}

/// Exports the run dir's model and checks it against `parity.safetensors`.
pub fn export_run(run: &RunDir) -> Result<Exported, RunDirError> {
    let sha = |name: &str| -> Result<String, RunDirError> {
        Ok(fas_core::bundle::sha256_hex(&read(&run.root, name)?))
    };
    let opts = ExportOptions {
        metadata: vec![
            ("fas.model_json_sha256".into(), sha("model.json")?),
            ("fas.weights_sha256".into(), sha("weights.safetensors")?),
            ("fas.recipe".into(), run.recipe.clone()),
            ("fas.demo".into(), run.demo.to_string()),
            (
                "fas.preprocess".into(),
                serde_json::to_string(&run.preprocess).expect("serialisable"),
            ),
        ],
        ..ExportOptions::default()
    };
    let onnx = export(&run.graph, &run.weights, &opts)?;
    let bytes = onnx.to_bytes();
    let parity = check_parity(&run.root.join(PARITY_FILE), &bytes, &onnx.input_shape)?;
    let draft = BundleManifest {
        format_version: BUNDLE_FORMAT_VERSION,
        model: ModelInfo {
            name: run.graph.name.clone(),
            recipe: run.recipe.clone(),
            demo: run.demo,
        },
        input: InputSpec {
            shape: onnx.input_shape.clone(),
            dtype: DType::F32,
        },
        preprocess: run.preprocess.clone(),
        score: ScoreSpec::default(),
        files: BTreeMap::new(),
        quantization: Quantization {
            encoding: fas_core::bundle::Encoding::Fp32,
            calibration: None,
            drift: None,
        },
        metrics: run.metrics.clone(),
        thresholds: run.thresholds.clone(),
        bundle_version: 1,
        not_after: None,
        threshold_floor: None,
        detector_sha256: vec![],
        created_by: format!("fas-quantize {}", env!("CARGO_PKG_VERSION")),
    };
    Ok(Exported {
        onnx,
        bytes,
        draft,
        parity,
    })
}

/// Runs the exported ONNX in tract on the trainer's parity inputs.
pub fn check_parity(
    file: &Path,
    onnx: &[u8],
    shape: &[usize],
) -> Result<ParityReport, RunDirError> {
    let bytes = std::fs::read(file).map_err(|source| RunDirError::Io {
        dir: file.parent().unwrap_or(Path::new(".")).to_path_buf(),
        file: file.to_path_buf(),
        source,
    })?;
    let w = Weights::from_safetensors(&bytes, file).map_err(ExportError::Weights)?;
    let bad = |problem: String| RunDirError::Parity {
        file: file.to_path_buf(),
        problem,
    };
    let (Some(inputs), Some(want)) = (w.tensors.get("inputs"), w.tensors.get("p_live")) else {
        return Err(bad(
            "needs tensors \"inputs\" and \"p_live\" — re-run fas-train".into(),
        ));
    };
    let per: usize = shape.iter().product();
    let k = want.data.len();
    if inputs.shape.len() != 4 || inputs.shape[1..] != shape[1..] || inputs.data.len() != k * per {
        return Err(bad(format!(
            "inputs have shape {:?} for {k} outputs; the model takes {shape:?} — the file belongs to another model",
            inputs.shape
        )));
    }
    let mut model = LivenessModel::from_bytes(onnx, shape, "exported liveness.onnx")?;
    let mut max_abs = 0f32;
    for i in 0..k {
        let got = model.run_raw(&inputs.data[i * per..(i + 1) * per])?;
        let d = (got[0] - want.data[i]).abs();
        if !d.is_finite() {
            return Err(bad(format!(
                "sample {i}: tract gave {got:?}, tch {}",
                want.data[i]
            )));
        }
        max_abs = max_abs.max(d);
    }
    if max_abs > PARITY_TOLERANCE {
        return Err(bad(format!(
            "the exported ONNX differs from the trainer by max |Δ| = {max_abs:e} > {PARITY_TOLERANCE:e} — an exporter bug; please report it with this run dir"
        )));
    }
    Ok(ParityReport {
        samples: k,
        max_abs,
        tolerance: PARITY_TOLERANCE,
    })
}
