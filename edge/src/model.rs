//! The door's liveness model: a signed bundle (the default, contract 4) or, for
//! development only, a plain ONNX file from `fas-quantize export` behind
//! `--dev-unsigned-model` (its preprocessing comes from the ONNX metadata the exporter
//! writes).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use fas_core::bundle::{sha256_hex, Threshold, DETECTOR_FILE, LIVENESS_FILE};
use fas_core::preprocess::PreprocessSpec;
use fas_infer::bundle::{Bundle, TrustedKeys};
use fas_infer::liveness::LivenessModel;

/// Where the model comes from.
#[derive(Debug, Clone)]
pub enum ModelSource {
    Bundle {
        path: PathBuf,
        keys: PathBuf,
    },
    /// Development: a bundle whose signature is not checked (hashes still are).
    DevUnsignedBundle(PathBuf),
    /// Development: a plain ONNX file.
    DevOnnx(PathBuf),
}

/// A loaded model with what the door needs to know about it.
pub struct LoadedModel {
    pub model: LivenessModel,
    pub preprocess: PreprocessSpec,
    /// sha256 of the liveness ONNX bytes (goes into every audit line).
    pub sha256: String,
    pub thresholds: Vec<Threshold>,
    pub detector_onnx: Option<Vec<u8>>,
    pub demo: bool,
    pub name: String,
    /// Signing key id; `None` for development models.
    pub signer: Option<String>,
    pub origin: String,
    /// What identifies what the door runs (calibrations are bound to it): the sha256 of the
    /// bundle's `manifest.json`, or of the ONNX file on the development path.
    pub bundle_sha256: String,
    /// The bundle's release number (0: format 1, or the development ONNX path).
    pub bundle_version: u64,
    /// The lowest threshold the publisher allows (`None` on the development ONNX path).
    pub floor: Option<f64>,
    /// sha256 of the detector models the bundle allows from outside it.
    pub detector_pins: Vec<String>,
}

impl LoadedModel {
    pub fn load(src: &ModelSource, allow_demo: bool) -> Result<LoadedModel> {
        let loaded = match src {
            ModelSource::Bundle { path, keys } => {
                let keys = TrustedKeys::load(keys)
                    .with_context(|| format!("trusted keys for {}", path.display()))?;
                from_bundle(Bundle::open(path, &keys)?, path)?
            }
            ModelSource::DevUnsignedBundle(path) => {
                eprintln!(
                    "fas-edge: WARNING: --dev-unsigned-bundle: the signature of {} is NOT checked — never use this at a door",
                    path.display()
                );
                from_bundle(Bundle::open_unverified(path)?, path)?
            }
            ModelSource::DevOnnx(path) => {
                eprintln!(
                    "fas-edge: WARNING: --dev-unsigned-model: {} is not a signed bundle — never use this at a door",
                    path.display()
                );
                from_onnx(path)?
            }
        };
        if loaded.demo && !allow_demo {
            bail!(
                "{}: model \"{}\" is a demo model (trained on SynthFAS only) and must not guard a real door — set model.allow_demo = true (or pass --allow-demo) for demonstrations",
                loaded.origin,
                loaded.name
            );
        }
        Ok(loaded)
    }

    /// The bundle threshold called `name`.
    pub fn threshold(&self, name: &str) -> Option<f64> {
        self.thresholds
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.value)
    }
}

fn from_bundle(b: Bundle, path: &Path) -> Result<LoadedModel> {
    let origin = path.display().to_string();
    if let Some(t) = b.manifest.not_after {
        let now = crate::trust::unix_now();
        if now > t {
            bail!(
                "{origin}: the bundle expired (not_after {t}, now {now}, Unix seconds) — install a current bundle from its publisher"
            );
        }
    }
    let onnx = b
        .files
        .get(LIVENESS_FILE)
        .with_context(|| format!("{origin}: no {LIVENESS_FILE}"))?;
    let model = LivenessModel::from_bytes(onnx, &b.manifest.input.shape, &origin)?;
    Ok(LoadedModel {
        model,
        preprocess: b.manifest.preprocess.clone(),
        sha256: sha256_hex(onnx),
        thresholds: b.manifest.thresholds.clone(),
        detector_onnx: b.files.get(DETECTOR_FILE).cloned(),
        demo: b.manifest.model.demo,
        name: b.manifest.model.name.clone(),
        signer: b.signer.clone(),
        origin,
        floor: Some(b.manifest.effective_floor()),
        bundle_version: b.manifest.bundle_version,
        detector_pins: b.manifest.detector_sha256.clone(),
        bundle_sha256: b.manifest_sha256,
    })
}

fn from_onnx(path: &Path) -> Result<LoadedModel> {
    let origin = path.display().to_string();
    let bytes = std::fs::read(path).with_context(|| format!("reading {origin}"))?;
    let meta = fas_infer::liveness::metadata(&bytes)
        .with_context(|| format!("{origin}: not an ONNX model"))?;
    let pre = meta.get("fas.preprocess").with_context(|| {
        format!("{origin}: has no \"fas.preprocess\" metadata — export it with `fas-quantize export`, or use a bundle")
    })?;
    let preprocess: PreprocessSpec = serde_json::from_str(pre).with_context(|| {
        format!("{origin}: metadata \"fas.preprocess\" is not a preprocessing spec")
    })?;
    preprocess
        .validate()
        .with_context(|| format!("{origin}: metadata \"fas.preprocess\""))?;
    let shape = vec![
        1,
        preprocess.color.len() * 3,
        preprocess.height as usize,
        preprocess.width as usize,
    ];
    let model = LivenessModel::from_bytes(&bytes, &shape, &origin)?;
    Ok(LoadedModel {
        model,
        preprocess,
        bundle_sha256: sha256_hex(&bytes),
        bundle_version: 0,
        floor: None,
        detector_pins: vec![],
        sha256: sha256_hex(&bytes),
        thresholds: vec![],
        detector_onnx: None,
        demo: meta.get("fas.demo").is_some_and(|v| v == "true"),
        name: meta
            .get("fas.model")
            .cloned()
            .unwrap_or_else(|| origin.clone()),
        signer: None,
        origin,
    })
}
