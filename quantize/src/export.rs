//! A trainer run dir → `liveness.onnx` + a draft bundle manifest, parity-checked.
//!
//! `Checkpoint → OnnxModel`: [`ExportSource::load`] reads, through [`fas_core::rundir`],
//! `model.json` (IR), `weights.safetensors`, `run.json`'s header (recipe, preprocessing,
//! protocol/task), `metrics.json` (test metrics) and `val_scores.jsonl`
//! (source-validation scores → recommended thresholds); [`export_run`] exports ONNX and
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
use fas_core::rundir::{self, RunDir, RunDirError};
use fas_infer::liveness::LivenessModel;
use serde::Serialize;

use crate::onnx::{export, ExportError, ExportOptions, OnnxModel, Weights};

/// fp32 parity bound between the trainer (tch) and the exported ONNX in tract.
pub const PARITY_TOLERANCE: f32 = 1e-4;

#[derive(Debug, thiserror::Error)]
pub enum ExportSourceError {
    /// A run dir file is missing or malformed (names the file, field and fix).
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error("{file}: {problem}")]
    Parity { file: PathBuf, problem: String },
    #[error(transparent)]
    Liveness(#[from] fas_infer::liveness::LivenessError),
}

/// Everything of a trainer run dir ([`RunDir`]) the exporter needs, read and checked.
#[derive(Debug, Clone)]
pub struct ExportSource {
    pub dir: RunDir,
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

impl ExportSource {
    /// Reads the run dir at `root`.
    pub fn load(root: impl AsRef<Path>) -> Result<ExportSource, ExportSourceError> {
        let dir = RunDir::new(root.as_ref());
        let graph_text = String::from_utf8_lossy(&dir.read(rundir::MODEL_FILE)?).into_owned();
        let graph = Graph::from_json(&graph_text).map_err(ExportError::Graph)?;
        let weights = Weights::from_safetensors(&dir.read(rundir::WEIGHTS_FILE)?, &dir.weights())
            .map_err(ExportError::Weights)?;

        let header = dir.header()?;
        let protocol = header.protocol_label();

        // Source-validation scores → thresholds (never the target's scores).
        let val_path = dir.val_scores();
        let rows = rundir::read_scores(&val_path)?;
        let demo = rows.iter().all(|r| r.sample.domain.starts_with("synth-"));
        let scores: Vec<f64> = rows.iter().map(|r| r.score).collect();
        let labels: Vec<Label> = rows.iter().map(|r| r.sample.label).collect();
        let thresholds = recommended_thresholds(&scores, &labels, &protocol)
            .map_err(|e| RunDirError::field(&val_path, "score", e))?;

        let metrics_path = dir.metrics();
        let metrics_json: serde_json::Value =
            serde_json::from_slice(&dir.read(rundir::METRICS_FILE)?).map_err(|e| {
                RunDirError::field(&metrics_path, "(root)", format!("not JSON: {e}"))
            })?;
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
            return Err(RunDirError::field(
                &metrics_path,
                "test.frame.deployable",
                "holds no metrics",
            )
            .into());
        }
        Ok(ExportSource {
            dir,
            graph,
            weights,
            recipe: header.recipe,
            preprocess: header.preprocess,
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
pub fn export_run(run: &ExportSource) -> Result<Exported, ExportSourceError> {
    let sha = |name: &str| -> Result<String, ExportSourceError> {
        Ok(fas_core::bundle::sha256_hex(&run.dir.read(name)?))
    };
    let opts = ExportOptions {
        metadata: vec![
            ("fas.model_json_sha256".into(), sha(rundir::MODEL_FILE)?),
            ("fas.weights_sha256".into(), sha(rundir::WEIGHTS_FILE)?),
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
    let parity = check_parity(&run.dir.parity(), &bytes, &onnx.input_shape)?;
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
) -> Result<ParityReport, ExportSourceError> {
    let bytes = std::fs::read(file).map_err(|source| RunDirError::Read {
        dir: file.parent().unwrap_or(Path::new(".")).to_path_buf(),
        file: file.to_path_buf(),
        source,
    })?;
    let w = Weights::from_safetensors(&bytes, file).map_err(ExportError::Weights)?;
    let bad = |problem: String| ExportSourceError::Parity {
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
