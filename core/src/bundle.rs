//! The bundle manifest (`manifest.json` inside a `.fasb` tar, ARCHITECTURE.md contract 4).
//!
//! Tar packing and ed25519 signing live in fas-quantize / fas-edge; this module defines the
//! versioned manifest, validates it with errors that name the field path
//! (`manifest.json: field "thresholds[1].value": …`), produces the canonical bytes that are
//! signed ([`BundleManifest::to_canonical_json`]) and checks file hashes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::audit::is_sha256_hex;
use crate::preprocess::PreprocessSpec;

/// Format 2 added `bundle_version`, `not_after`, `threshold_floor` and `detector_sha256`;
/// format-1 manifests still load (as bundle version 0, no expiry, no floor, no pins).
pub const BUNDLE_FORMAT_VERSION: u32 = 2;
/// The manifest's name inside the tar.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The signature's name inside the tar (not listed in `files`).
pub const SIGNATURE_FILE: &str = "manifest.sig";
/// The liveness model; every bundle has it.
pub const LIVENESS_FILE: &str = "liveness.onnx";
/// Optional face detector.
pub const DETECTOR_FILE: &str = "detector.onnx";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelInfo {
    pub name: String,
    /// Training recipe: baseline | dlif | d2am | dualstage | anrl (free text for new ones).
    pub recipe: String,
    /// A demo model (e.g. trained on SynthFAS only): never for a real door. The edge warns
    /// loudly and refuses it unless started with the development flag.
    pub demo: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    U8,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// `[1, C, H, W]`.
    pub shape: Vec<usize>,
    pub dtype: DType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScoreSemantics {
    /// Probability that the face is bona fide (contract 3).
    #[serde(rename = "p_live")]
    PLive,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreSpec {
    pub semantics: ScoreSemantics,
    /// Always `[0, 1]`.
    pub range: [f64; 2],
}

impl Default for ScoreSpec {
    fn default() -> Self {
        ScoreSpec {
            semantics: ScoreSemantics::PLive,
            range: [0.0, 1.0],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    Fp32,
    Fp16,
    /// Static int8 with QuantizeLinear/DequantizeLinear pairs (activations and weights).
    Int8Qdq,
    /// int8 weights, fp32 activations (no activation calibration needed).
    Int8WeightOnly,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// e.g. `"minmax"`, `"percentile-99.99"`, `"entropy"`.
    pub method: String,
    /// Number of calibration face crops.
    pub samples: u32,
}

/// fp32-vs-quantised agreement measured on a held-out set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drift {
    pub max_abs: f64,
    pub mean_abs: f64,
    pub auc_fp32: f64,
    pub auc_int8: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quantization {
    pub encoding: Encoding,
    /// Required for `int8-qdq`.
    pub calibration: Option<Calibration>,
    /// Required for every encoding other than `fp32`.
    pub drift: Option<Drift>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricEntry {
    /// e.g. `"OULU-NPU P1"`, `"O&C&I→M"`.
    pub protocol: String,
    /// e.g. `"HTER"`, `"AUC"`, `"ACER"`.
    pub metric: String,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// e.g. `"default"`, `"strict"`.
    pub name: String,
    /// Threshold on `p_live` in [0, 1].
    pub value: f64,
    /// e.g. `"BPCER at APCER=1%"`, `"EER"`.
    pub operating_point: String,
    /// Data the threshold was chosen on, e.g. `"OULU-NPU P1 dev"`.
    pub chosen_on: String,
}

/// `manifest.json`. Field order is the on-disk order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleManifest {
    pub format_version: u32,
    pub model: ModelInfo,
    pub input: InputSpec,
    pub preprocess: PreprocessSpec,
    pub score: ScoreSpec,
    /// File name inside the tar → sha256 hex of its bytes (every file but the manifest and
    /// its signature).
    pub files: BTreeMap<String, String>,
    pub quantization: Quantization,
    pub metrics: Vec<MetricEntry>,
    pub thresholds: Vec<Threshold>,
    /// The publisher's release number, ≥ 1 from format 2 on: a door refuses a bundle older
    /// than the newest it has run (anti-rollback). Format-1 bundles read as 0.
    #[serde(default)]
    pub bundle_version: u64,
    /// Unix time (seconds) after which a door refuses the bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<u64>,
    /// The most permissive `p_live` threshold the publisher allows a door to use (e.g. the
    /// one reaching APCER 1 % on its validation data): a calibration or a config threshold
    /// below it is refused. Absent: the lowest of `thresholds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_floor: Option<f64>,
    /// sha256 of every face-detector model a door may load from outside the bundle (a
    /// detector shipped inside as `detector.onnx` is bound by `files`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detector_sha256: Vec<String>,
    /// e.g. `"fas-quantize 0.1.0"`.
    pub created_by: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("manifest.json: not valid ({msg}) — rebuild the bundle with fas-quantize")]
    Json { msg: String },
    #[error("manifest.json: field \"format_version\": {found} is newer than this fas reads (up to {supported}) — written by a newer fas; upgrade")]
    FutureVersion { found: u64, supported: u32 },
    #[error("manifest.json: field \"{field}\": {problem} — {fix}")]
    Field {
        field: String,
        problem: String,
        fix: String,
    },
    #[error(
        "bundle file \"{name}\": not listed in manifest.json — the bundle was altered; rebuild it"
    )]
    UnlistedFile { name: String },
    #[error("bundle file \"{name}\": sha256 {actual} does not match {expected} in manifest.json — the file was altered or corrupted; rebuild or re-download the bundle")]
    HashMismatch {
        name: String,
        expected: String,
        actual: String,
    },
}

impl BundleError {
    /// The field path, for `Field` errors.
    pub fn field(&self) -> Option<&str> {
        match self {
            BundleError::Field { field, .. } => Some(field),
            BundleError::FutureVersion { .. } => Some("format_version"),
            _ => None,
        }
    }
}

const FIX_REBUILD: &str = "fix the export settings and rebuild the bundle";

fn field_err(field: impl Into<String>, problem: impl Into<String>, fix: &str) -> BundleError {
    BundleError::Field {
        field: field.into(),
        problem: problem.into(),
        fix: fix.into(),
    }
}

/// sha256 hex of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl BundleManifest {
    /// Parse and validate `manifest.json`. A newer `format_version` is reported as such
    /// (before unknown fields it may have added).
    pub fn from_json(bytes: &[u8]) -> Result<BundleManifest, BundleError> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| BundleError::Json { msg: e.to_string() })?;
        if let Some(v) = value.get("format_version").and_then(|v| v.as_u64()) {
            if v > u64::from(BUNDLE_FORMAT_VERSION) {
                return Err(BundleError::FutureVersion {
                    found: v,
                    supported: BUNDLE_FORMAT_VERSION,
                });
            }
        }
        let m: BundleManifest =
            serde_json::from_value(value).map_err(|e| BundleError::Json { msg: e.to_string() })?;
        m.validate()?;
        Ok(m)
    }

    /// Pretty JSON for humans (what is stored is [`Self::to_canonical_json`]).
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a manifest always serialises")
    }

    /// The canonical bytes that are stored as `manifest.json` and signed: compact JSON,
    /// object keys sorted by byte order at every level, numbers in shortest round-trip form,
    /// no trailing newline. Deterministic whatever serde_json features are enabled.
    pub fn to_canonical_json(&self) -> Vec<u8> {
        canonical_json(self)
    }

    /// Check a file from the bundle against its recorded sha256.
    pub fn verify_file(&self, name: &str, bytes: &[u8]) -> Result<(), BundleError> {
        let expected = self
            .files
            .get(name)
            .ok_or_else(|| BundleError::UnlistedFile { name: name.into() })?;
        let actual = sha256_hex(bytes);
        if &actual != expected {
            return Err(BundleError::HashMismatch {
                name: name.into(),
                expected: expected.clone(),
                actual,
            });
        }
        Ok(())
    }

    /// Number of input channels the preprocessing produces.
    pub fn channels(&self) -> usize {
        self.preprocess.color.len() * 3
    }

    /// Check every invariant; the error names the field path.
    pub fn validate(&self) -> Result<(), BundleError> {
        if self.format_version == 0 || self.format_version > BUNDLE_FORMAT_VERSION {
            if self.format_version > BUNDLE_FORMAT_VERSION {
                return Err(BundleError::FutureVersion {
                    found: self.format_version.into(),
                    supported: BUNDLE_FORMAT_VERSION,
                });
            }
            return Err(field_err(
                "format_version",
                "0 is not a version",
                FIX_REBUILD,
            ));
        }
        for (field, v) in [
            ("model.name", &self.model.name),
            ("model.recipe", &self.model.recipe),
            ("created_by", &self.created_by),
        ] {
            if v.trim().is_empty() {
                return Err(field_err(field, "is empty", FIX_REBUILD));
            }
        }
        // Input shape agrees with preprocessing.
        let p = &self.preprocess;
        let want = [1, self.channels(), p.height as usize, p.width as usize];
        if self.input.shape != want {
            return Err(field_err(
                "input.shape",
                format!(
                    "{:?} does not match the preprocessing output {:?} ([1, 3×colour groups, height, width])",
                    self.input.shape, want
                ),
                "export the model with the preprocessing it was trained with",
            ));
        }
        if p.color.is_empty() || p.width == 0 || p.height == 0 {
            return Err(field_err(
                "preprocess",
                "needs at least one colour group and a non-zero size",
                FIX_REBUILD,
            ));
        }
        let c = self.channels();
        for (name, v) in [("mean", &p.normalize.mean), ("std", &p.normalize.std)] {
            if v.len() != c {
                return Err(field_err(
                    format!("preprocess.normalize.{name}"),
                    format!("has {} values for {c} channels", v.len()),
                    FIX_REBUILD,
                ));
            }
            for (i, x) in v.iter().enumerate() {
                if !x.is_finite() || (name == "std" && *x <= 0.0) {
                    return Err(field_err(
                        format!("preprocess.normalize.{name}[{i}]"),
                        format!("{x} is not a usable value"),
                        FIX_REBUILD,
                    ));
                }
            }
        }
        if self.score.range != [0.0, 1.0] {
            return Err(field_err(
                "score.range",
                format!("{:?} is not [0, 1]", self.score.range),
                "wrap the model output so that it is p_live in [0, 1] (contract 3)",
            ));
        }
        // Files.
        if !self.files.contains_key(LIVENESS_FILE) {
            return Err(field_err(
                "files",
                format!("has no entry for \"{LIVENESS_FILE}\""),
                FIX_REBUILD,
            ));
        }
        for (name, hash) in &self.files {
            if name.is_empty()
                || name.contains('/')
                || name.contains('\\')
                || name == ".."
                || name == MANIFEST_FILE
                || name == SIGNATURE_FILE
            {
                return Err(field_err(
                    format!("files.{name}"),
                    "is not an allowed file name (plain names only; not the manifest or signature)",
                    FIX_REBUILD,
                ));
            }
            if !is_sha256_hex(hash) {
                return Err(field_err(
                    format!("files.{name}"),
                    format!("{hash:?} is not a sha256 (64 lowercase hex digits)"),
                    FIX_REBUILD,
                ));
            }
        }
        // Quantisation.
        let q = &self.quantization;
        if q.encoding == Encoding::Int8Qdq && q.calibration.is_none() {
            return Err(field_err(
                "quantization.calibration",
                "is missing; int8-qdq needs a calibration method",
                "record the calibration method and sample count",
            ));
        }
        if let Some(cal) = &q.calibration {
            if cal.method.trim().is_empty() {
                return Err(field_err(
                    "quantization.calibration.method",
                    "is empty",
                    FIX_REBUILD,
                ));
            }
            if cal.samples == 0 {
                return Err(field_err(
                    "quantization.calibration.samples",
                    "is 0",
                    "calibrate on real face crops",
                ));
            }
        }
        match (&q.drift, q.encoding) {
            (None, Encoding::Fp32) => {}
            (None, e) => {
                return Err(field_err(
                    "quantization.drift",
                    format!("is missing; a {e:?} model needs its drift against fp32"),
                    "measure fp32-vs-quantised drift on a held-out set",
                ))
            }
            (Some(d), _) => {
                for (name, v, unit) in [
                    ("max_abs", d.max_abs, false),
                    ("mean_abs", d.mean_abs, false),
                    ("auc_fp32", d.auc_fp32, true),
                    ("auc_int8", d.auc_int8, true),
                ] {
                    let ok = v.is_finite() && v >= 0.0 && (!unit || v <= 1.0);
                    if !ok {
                        return Err(field_err(
                            format!("quantization.drift.{name}"),
                            format!("{v} is outside {}", if unit { "[0,1]" } else { "[0,∞)" }),
                            FIX_REBUILD,
                        ));
                    }
                }
                if d.mean_abs > d.max_abs {
                    return Err(field_err(
                        "quantization.drift.mean_abs",
                        format!("{} exceeds max_abs {}", d.mean_abs, d.max_abs),
                        FIX_REBUILD,
                    ));
                }
            }
        }
        for (i, m) in self.metrics.iter().enumerate() {
            if m.protocol.trim().is_empty() {
                return Err(field_err(
                    format!("metrics[{i}].protocol"),
                    "is empty",
                    FIX_REBUILD,
                ));
            }
            if m.metric.trim().is_empty() {
                return Err(field_err(
                    format!("metrics[{i}].metric"),
                    "is empty",
                    FIX_REBUILD,
                ));
            }
            if !m.value.is_finite() {
                return Err(field_err(
                    format!("metrics[{i}].value"),
                    format!("{} is not finite", m.value),
                    FIX_REBUILD,
                ));
            }
        }
        if self.thresholds.is_empty() {
            return Err(field_err(
                "thresholds",
                "is empty; the edge needs a recommended threshold",
                "choose one on a dev set (or run `fas-edge calibrate`) and rebuild",
            ));
        }
        for (i, t) in self.thresholds.iter().enumerate() {
            if t.name.trim().is_empty() {
                return Err(field_err(
                    format!("thresholds[{i}].name"),
                    "is empty",
                    FIX_REBUILD,
                ));
            }
            if self.thresholds[..i].iter().any(|o| o.name == t.name) {
                return Err(field_err(
                    format!("thresholds[{i}].name"),
                    format!("{:?} appears twice", t.name),
                    "give every threshold a distinct name",
                ));
            }
            if !(t.value.is_finite() && (0.0..=1.0).contains(&t.value)) {
                return Err(field_err(
                    format!("thresholds[{i}].value"),
                    format!("{} is outside [0,1]", t.value),
                    "thresholds apply to p_live, which lies in [0,1]; re-run threshold selection",
                ));
            }
            if t.operating_point.trim().is_empty() {
                return Err(field_err(
                    format!("thresholds[{i}].operating_point"),
                    "is empty",
                    "say what the threshold was chosen for, e.g. \"BPCER at APCER=1%\"",
                ));
            }
            if t.chosen_on.trim().is_empty() {
                return Err(field_err(
                    format!("thresholds[{i}].chosen_on"),
                    "is empty",
                    "name the data the threshold was chosen on",
                ));
            }
        }
        self.validate_trust()
    }

    /// Threshold by name.
    pub fn threshold(&self, name: &str) -> Option<&Threshold> {
        self.thresholds.iter().find(|t| t.name == name)
    }

    /// The lowest threshold a door may use: `threshold_floor`, or else the lowest of the
    /// publisher's `thresholds` (a valid manifest has at least one).
    pub fn effective_floor(&self) -> f64 {
        self.threshold_floor.unwrap_or_else(|| {
            self.thresholds
                .iter()
                .map(|t| t.value)
                .fold(f64::INFINITY, f64::min)
                .min(1.0)
        })
    }

    /// The format-2 fields: anti-rollback version, expiry, floor, detector pins.
    fn validate_trust(&self) -> Result<(), BundleError> {
        let fix_version =
            "set it with `fas-quantize bundle --bundle-version N` (N above every release before)";
        if self.format_version >= 2 && self.bundle_version == 0 {
            return Err(field_err(
                "bundle_version",
                "is 0 (releases count from 1)",
                fix_version,
            ));
        }
        if self.format_version < 2
            && (self.bundle_version != 0
                || self.not_after.is_some()
                || self.threshold_floor.is_some()
                || !self.detector_sha256.is_empty())
        {
            return Err(field_err(
                "format_version",
                "1 cannot carry bundle_version, not_after, threshold_floor or detector_sha256",
                "write format_version 2",
            ));
        }
        if let Some(f) = self.threshold_floor {
            if !(f.is_finite() && (0.0..=1.0).contains(&f)) {
                return Err(field_err(
                    "threshold_floor",
                    format!("{f} is outside [0,1]"),
                    "choose the floor on validation data (e.g. the threshold at APCER 1 %)",
                ));
            }
            if let Some((i, t)) = self
                .thresholds
                .iter()
                .enumerate()
                .find(|(_, t)| t.value < f)
            {
                return Err(field_err(
                    format!("thresholds[{i}].value"),
                    format!("{} is below threshold_floor {f}", t.value),
                    "every recommended threshold must respect the floor; lower the floor or raise the threshold",
                ));
            }
        }
        for (i, h) in self.detector_sha256.iter().enumerate() {
            if !is_sha256_hex(h) {
                return Err(field_err(
                    format!("detector_sha256[{i}]"),
                    format!("{h:?} is not a sha256 (64 lowercase hex digits)"),
                    "pin the detector with `fas-quantize bundle --pin-detector FILE`",
                ));
            }
        }
        Ok(())
    }
}

/// The canonical bytes of any record that is signed (a manifest, a door's calibration, a
/// downgrade permit): compact JSON, object keys sorted by byte order at every level,
/// numbers in shortest round-trip form, no trailing newline.
pub fn canonical_json<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    // Through text, not `to_value`: an f32 is written in its own shortest form (0.485),
    // which `to_value` would widen to f64 digits.
    let text = serde_json::to_string(v).expect("signed records always serialise");
    let value: serde_json::Value = serde_json::from_str(&text).expect("own output parses");
    let mut out = String::with_capacity(text.len());
    write_canonical(&value, &mut out);
    out.into_bytes()
}

fn write_canonical(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).expect("string serialises"));
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::{ColorSpace, CropSpec, Normalize};
    use proptest::prelude::*;

    pub(crate) fn example() -> BundleManifest {
        let mut files = BTreeMap::new();
        files.insert(LIVENESS_FILE.to_string(), sha256_hex(b"onnx"));
        BundleManifest {
            format_version: BUNDLE_FORMAT_VERSION,
            model: ModelInfo {
                name: "minifasnet-v2".into(),
                recipe: "baseline".into(),
                demo: true,
            },
            input: InputSpec {
                shape: vec![1, 6, 80, 80],
                dtype: DType::F32,
            },
            preprocess: PreprocessSpec {
                crop: CropSpec::Aligned { scale: 2.7 },
                width: 80,
                height: 80,
                color: vec![ColorSpace::Rgb, ColorSpace::Hsv],
                normalize: Normalize {
                    mean: vec![0.485, 0.456, 0.406, 0.5, 0.5, 0.5],
                    std: vec![0.229, 0.224, 0.225, 0.5, 0.5, 0.5],
                },
            },
            score: ScoreSpec::default(),
            files,
            quantization: Quantization {
                encoding: Encoding::Int8Qdq,
                calibration: Some(Calibration {
                    method: "minmax".into(),
                    samples: 512,
                }),
                drift: Some(Drift {
                    max_abs: 0.03,
                    mean_abs: 0.004,
                    auc_fp32: 0.991,
                    auc_int8: 0.989,
                }),
            },
            metrics: vec![MetricEntry {
                protocol: "OULU-NPU P1".into(),
                metric: "ACER".into(),
                value: 0.021,
            }],
            thresholds: vec![
                Threshold {
                    name: "default".into(),
                    value: 0.62,
                    operating_point: "EER".into(),
                    chosen_on: "OULU-NPU P1 dev".into(),
                },
                Threshold {
                    name: "strict".into(),
                    value: 0.87,
                    operating_point: "BPCER at APCER=1%".into(),
                    chosen_on: "OULU-NPU P1 dev".into(),
                },
            ],
            bundle_version: 3,
            not_after: None,
            threshold_floor: Some(0.5),
            detector_sha256: vec![],
            created_by: "fas-quantize 0.1.0".into(),
        }
    }

    #[test]
    fn example_validates_and_round_trips() {
        let m = example();
        m.validate().unwrap();
        let bytes = m.to_canonical_json();
        assert_eq!(BundleManifest::from_json(&bytes).unwrap(), m);
        assert_eq!(
            BundleManifest::from_json(m.to_json_pretty().as_bytes()).unwrap(),
            m
        );
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("\"encoding\":\"int8-qdq\""), "{text}");
        assert!(text.contains("\"semantics\":\"p_live\""), "{text}");
        assert!(text.contains("0.485,"), "f32 kept short: {text}");
    }

    #[test]
    fn canonical_json_sorts_keys_and_is_stable() {
        let m = example();
        let a = m.to_canonical_json();
        let reparsed = BundleManifest::from_json(&a).unwrap();
        assert_eq!(reparsed.to_canonical_json(), a);
        let text = String::from_utf8(a).unwrap();
        // Top-level keys in byte order.
        let pos = |k: &str| text.find(&format!("\"{k}\":")).unwrap();
        assert!(pos("created_by") < pos("files"));
        assert!(pos("files") < pos("format_version"));
        assert!(pos("thresholds") > pos("score"));
        assert!(!text.contains(' ') || text.contains("OULU-NPU P1"));
    }

    #[test]
    fn threshold_error_names_field_path() {
        let mut m = example();
        m.thresholds[1].value = 1.7;
        let e = m.validate().unwrap_err();
        assert_eq!(e.field(), Some("thresholds[1].value"));
        let s = e.to_string();
        assert!(
            s.starts_with("manifest.json: field \"thresholds[1].value\": 1.7 is outside [0,1] — "),
            "{s}"
        );
    }

    #[test]
    fn validation_errors() {
        let check = |f: &dyn Fn(&mut BundleManifest), field: &str| {
            let mut m = example();
            f(&mut m);
            let e = m.validate().unwrap_err();
            assert_eq!(e.field(), Some(field), "{e}");
        };
        check(&|m| m.input.shape = vec![1, 3, 80, 80], "input.shape");
        check(&|m| m.model.name.clear(), "model.name");
        check(
            &|m| m.preprocess.normalize.std[4] = 0.0,
            "preprocess.normalize.std[4]",
        );
        check(
            &|m| m.preprocess.normalize.mean.pop().map(|_| ()).unwrap(),
            "preprocess.normalize.mean",
        );
        check(&|m| m.score.range = [0.0, 100.0], "score.range");
        check(
            &|m| {
                m.files.clear();
            },
            "files",
        );
        check(
            &|m| {
                m.files.insert("detector.onnx".into(), "ABC".into());
            },
            "files.detector.onnx",
        );
        check(
            &|m| {
                m.files.insert("../x".into(), sha256_hex(b""));
            },
            "files.../x",
        );
        check(
            &|m| m.quantization.calibration = None,
            "quantization.calibration",
        );
        check(&|m| m.quantization.drift = None, "quantization.drift");
        check(
            &|m| m.quantization.drift.as_mut().unwrap().auc_int8 = 1.2,
            "quantization.drift.auc_int8",
        );
        check(&|m| m.metrics[0].value = f64::NAN, "metrics[0].value");
        check(&|m| m.thresholds.clear(), "thresholds");
        check(
            &|m| m.thresholds[1].name = "default".into(),
            "thresholds[1].name",
        );
        check(
            &|m| m.thresholds[0].operating_point.clear(),
            "thresholds[0].operating_point",
        );
        check(&|m| m.format_version = 0, "format_version");
        let mut m = example();
        m.quantization = Quantization {
            encoding: Encoding::Fp32,
            calibration: None,
            drift: None,
        };
        m.validate().unwrap();
    }

    #[test]
    fn parse_rejects_unknown_fields_and_future_versions() {
        let mut v: serde_json::Value = serde_json::to_value(example()).unwrap();
        v["model"]["colour"] = serde_json::json!(1);
        let e = BundleManifest::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(e.to_string().contains("unknown field `colour`"), "{e}");
        let mut v: serde_json::Value = serde_json::to_value(example()).unwrap();
        v["format_version"] = serde_json::json!(9);
        v["new_section"] = serde_json::json!({});
        let e = BundleManifest::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(matches!(e, BundleError::FutureVersion { found: 9, .. }));
        assert!(e.to_string().contains("upgrade"), "{e}");
        let mut v: serde_json::Value = serde_json::to_value(example()).unwrap();
        v["thresholds"][0]["value"] = serde_json::json!(-0.5);
        let e = BundleManifest::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(e.to_string().contains("\"thresholds[0].value\""), "{e}");
    }

    #[test]
    fn verify_files_checks_hashes() {
        let m = example();
        m.verify_file(LIVENESS_FILE, b"onnx").unwrap();
        let e = m.verify_file(LIVENESS_FILE, b"onnx!").unwrap_err();
        assert!(matches!(e, BundleError::HashMismatch { .. }));
        assert!(e.to_string().contains("liveness.onnx"), "{e}");
        let e = m.verify_file(DETECTOR_FILE, b"x").unwrap_err();
        assert!(matches!(e, BundleError::UnlistedFile { .. }));
    }

    #[test]
    fn trust_fields_are_checked_and_format_1_still_loads() {
        let m = example();
        assert_eq!(m.effective_floor(), 0.5);
        let mut no_floor = example();
        no_floor.threshold_floor = None;
        // Absent floor: the lowest recommended threshold.
        assert_eq!(no_floor.effective_floor(), 0.62);
        let field = |m: BundleManifest| m.validate().unwrap_err().field().map(str::to_string);
        let mut above = example();
        above.threshold_floor = Some(0.7);
        assert_eq!(field(above).as_deref(), Some("thresholds[0].value"));
        let mut nan = example();
        nan.threshold_floor = Some(f64::NAN);
        assert_eq!(field(nan).as_deref(), Some("threshold_floor"));
        let mut unversioned = example();
        unversioned.bundle_version = 0;
        assert_eq!(field(unversioned).as_deref(), Some("bundle_version"));
        let mut pin = example();
        pin.detector_sha256 = vec!["AB".into()];
        assert_eq!(field(pin).as_deref(), Some("detector_sha256[0]"));
        // A format-1 manifest (no trust fields) loads as bundle version 0 …
        let mut v: serde_json::Value = serde_json::from_slice(&m.to_canonical_json()).unwrap();
        let o = v.as_object_mut().unwrap();
        o.insert("format_version".into(), 1.into());
        for k in ["bundle_version", "threshold_floor"] {
            o.remove(k);
        }
        let old = BundleManifest::from_json(v.to_string().as_bytes()).unwrap();
        assert_eq!((old.bundle_version, old.threshold_floor), (0, None));
        // … and cannot claim format-2 fields.
        v["threshold_floor"] = 0.5.into();
        let e = BundleManifest::from_json(v.to_string().as_bytes()).unwrap_err();
        assert_eq!(e.field(), Some("format_version"), "{e}");
    }

    proptest! {
        #[test]
        fn canonical_round_trip(
            values in prop::collection::vec(0.0f64..=1.0, 1..5),
            metric in -1e6f64..1e6,
            name in "[a-z0-9 %=-]{1,20}",
            demo in any::<bool>(),
        ) {
            let mut m = example();
            m.threshold_floor = None;
            m.model.demo = demo;
            m.model.name = format!("m{name}");
            m.metrics[0].value = metric;
            m.thresholds = values.iter().enumerate().map(|(i, v)| Threshold {
                name: format!("t{i}"),
                value: *v,
                operating_point: name.clone() + "x",
                chosen_on: "dev".into(),
            }).collect();
            let bytes = m.to_canonical_json();
            let back = BundleManifest::from_json(&bytes).unwrap();
            prop_assert_eq!(back.to_canonical_json(), bytes);
            prop_assert_eq!(back, m);
        }
    }
}
