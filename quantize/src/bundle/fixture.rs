//! A tiny signed bundle with a model of known behaviour, for tests and boot checks that
//! need a real bundle but no trained model: fas-edge fault-injection tests (a model that
//! would grant every face, so only the door's own checks can refuse), image boot tests
//! (a model that only has to load).
//!
//! The model is mean colour → linear → (optionally) sigmoid over a 64×64 box crop, every
//! weight `weight` and every bias `bias`: with `weight = 0` the output is `σ(bias)` (or
//! `bias` without the sigmoid: a model whose output breaks contract 3 when outside [0, 1]).

use std::path::{Path, PathBuf};

use fas_core::bundle::{
    BundleManifest, DType, Encoding, InputSpec, MetricEntry, ModelInfo, Quantization, ScoreSpec,
    Threshold, BUNDLE_FORMAT_VERSION,
};
use fas_core::ir::GraphBuilder;
use fas_core::preprocess::{ColorSpace, CropSpec, Normalize, PreprocessSpec};

use super::{write_bundle, SecretKey, Signing};
use crate::onnx::{export, ExportOptions, Tensor, Weights};

/// What the tiny model computes.
#[derive(Debug, Clone, PartialEq)]
pub struct TinyModel {
    pub name: String,
    pub weight: f32,
    pub bias: f32,
    /// End with a sigmoid (a valid `p_live`). Without it the raw linear output is the
    /// model's output: a model that breaks contract 3, as a foreign exporter could write
    /// one (fas-quantize's own exporter refuses it, so the sigmoid is cut from the ONNX
    /// after export).
    pub sigmoid: bool,
    pub demo: bool,
    /// The bundle's recommended threshold.
    pub threshold: f64,
    /// The manifest's trust fields (format 2).
    pub bundle_version: u64,
    pub not_after: Option<u64>,
    pub threshold_floor: Option<f64>,
    /// sha256 of the detector models the bundle allows from outside it.
    pub detector_sha256: Vec<String>,
}

impl TinyModel {
    /// A model that only has to load (output ≈ 0.55 for any face).
    pub fn loads_only(name: &str) -> TinyModel {
        TinyModel {
            name: name.into(),
            weight: 0.1,
            bias: 0.1,
            sigmoid: true,
            demo: false,
            threshold: 0.5,
            bundle_version: 1,
            not_after: None,
            threshold_floor: None,
            detector_sha256: vec![],
        }
    }

    /// `p_live = σ(bias)` for every input: with a large bias, a model that would grant
    /// every face the detector finds.
    pub fn constant(name: &str, bias: f32) -> TinyModel {
        TinyModel {
            weight: 0.0,
            bias,
            ..TinyModel::loads_only(name)
        }
    }
}

/// The files written by [`write_tiny_bundle`].
#[derive(Debug, Clone)]
pub struct TinyBundle {
    pub bundle: PathBuf,
    /// Directory holding the signer's public key (`<name>.pub`).
    pub keys: PathBuf,
    /// The liveness ONNX inside the bundle.
    pub onnx: Vec<u8>,
}

/// The key [`write_tiny_bundle`] signs a model called `name` with (derived from the name:
/// a test can sign other records, e.g. a downgrade permit, as the same publisher).
pub fn fixture_key(name: &str) -> SecretKey {
    let mut seed = [7u8; 32];
    for (s, c) in seed.iter_mut().zip(name.bytes()) {
        *s ^= c;
    }
    SecretKey::from_seed(seed)
}

/// Writes `<dir>/<name>.fasb`, signed with [`fixture_key`]`(name)`, and its public key
/// under `<dir>/keys/`.
pub fn write_tiny_bundle(dir: &Path, m: &TinyModel) -> anyhow::Result<TinyBundle> {
    const SIDE: usize = 64;
    let mut b = GraphBuilder::new(&m.name);
    let x = b.input("image", &[1, 3, SIDE, SIDE]);
    let x = b.global_avg_pool("gap", &x);
    let x = b.flatten("flat", &x);
    let x = b.linear("fc", &x, 1, true);
    let x = b.sigmoid("p_live", &x);
    b.output(&x);
    let graph = b.finish()?;
    let weights = Weights {
        tensors: graph
            .weights()
            .into_iter()
            .map(|(name, shape)| {
                let n = shape.iter().product();
                let v = if name.ends_with("bias") {
                    m.bias
                } else {
                    m.weight
                };
                (name, Tensor::new(shape, vec![v; n]))
            })
            .collect(),
        origin: dir.join(format!("{}.safetensors", m.name)),
    };
    let mut model = export(&graph, &weights, &ExportOptions::default())?;
    if !m.sigmoid {
        let g = model
            .proto
            .graph
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("exported model has no graph"))?;
        let last = g
            .node
            .pop()
            .ok_or_else(|| anyhow::anyhow!("exported graph has no nodes"))?;
        anyhow::ensure!(last.op_type == "Sigmoid", "last node is {}", last.op_type);
        g.output[0].name = last.input[0].clone();
    }
    let onnx = model.to_bytes();
    let draft = BundleManifest {
        format_version: BUNDLE_FORMAT_VERSION,
        model: ModelInfo {
            name: m.name.clone(),
            recipe: "baseline".into(),
            demo: m.demo,
        },
        input: InputSpec {
            shape: vec![1, 3, SIDE, SIDE],
            dtype: DType::F32,
        },
        preprocess: PreprocessSpec {
            crop: CropSpec::Box { scale: 1.5 },
            width: SIDE as u32,
            height: SIDE as u32,
            color: vec![ColorSpace::Rgb],
            normalize: Normalize::imagenet(1),
        },
        score: ScoreSpec::default(),
        files: Default::default(),
        quantization: Quantization {
            encoding: Encoding::Fp32,
            calibration: None,
            drift: None,
        },
        metrics: vec![MetricEntry {
            protocol: "none (fixture)".into(),
            metric: "AUC".into(),
            value: 0.5,
        }],
        thresholds: vec![Threshold {
            name: "default".into(),
            value: m.threshold,
            operating_point: "fixed".into(),
            chosen_on: "fixture".into(),
        }],
        bundle_version: m.bundle_version,
        not_after: m.not_after,
        threshold_floor: m.threshold_floor,
        detector_sha256: m.detector_sha256.clone(),
        created_by: "fas_quantize::bundle::fixture".into(),
    };
    let key = fixture_key(&m.name);
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys)?;
    std::fs::write(keys.join(format!("{}.pub", m.name)), key.public().to_text())?;
    let bundle = dir.join(format!("{}.fasb", m.name));
    write_bundle(&bundle, draft, &onnx, None, Signing::Key(&key))?;
    Ok(TinyBundle { bundle, keys, onnx })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fas_infer::bundle::{Bundle, TrustedKeys};
    use fas_infer::liveness::LivenessModel;

    fn score(dir: &Path, m: &TinyModel) -> Result<f32, fas_infer::liveness::LivenessError> {
        let t = write_tiny_bundle(dir, m).unwrap();
        let b = Bundle::open(&t.bundle, &TrustedKeys::load(&t.keys).unwrap()).unwrap();
        assert_eq!(b.manifest.model.name, m.name);
        let mut model =
            LivenessModel::from_bytes(&t.onnx, &b.manifest.input.shape, "fixture").unwrap();
        model.score(&vec![0.3; 3 * 64 * 64])
    }

    #[test]
    fn constant_model_outputs_the_sigmoid_of_its_bias() {
        let dir = tempfile::tempdir().unwrap();
        let p = score(dir.path(), &TinyModel::constant("always", 8.0)).unwrap();
        assert!((p - 1.0 / (1.0 + (-8.0f32).exp())).abs() < 1e-6, "{p}");
        let p = score(dir.path(), &TinyModel::constant("never", -8.0)).unwrap();
        assert!(p < 1e-3, "{p}");
    }

    #[test]
    fn without_the_sigmoid_an_out_of_range_output_is_refused_by_the_scorer() {
        let dir = tempfile::tempdir().unwrap();
        let m = TinyModel {
            sigmoid: false,
            ..TinyModel::constant("raw", 3.0)
        };
        assert!(score(dir.path(), &m).is_err());
    }
}
