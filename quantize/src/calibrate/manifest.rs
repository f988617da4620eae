//! Calibration and held-out inputs from a dataset manifest (contract 5) of face crops:
//! decode → fas-core `resize_bilinear` → `normalize_into`, exactly as the trainer's eval
//! path (contract 1), so int8 ranges and drift are measured on what the model sees.

use std::path::{Path, PathBuf};

use fas_core::dataset::{Label, Manifest, Split};
use fas_core::preprocess::{normalize_into, resize_bilinear, PreprocessSpec, RgbImage};

#[derive(Debug, thiserror::Error)]
pub enum ManifestInputError {
    #[error(transparent)]
    Manifest(#[from] fas_core::dataset::ManifestError),
    #[error("{manifest}: no {what} samples{} — pick another split or manifest", .split.map(|s| format!(" in split {s:?}")).unwrap_or_default())]
    Empty {
        manifest: PathBuf,
        what: &'static str,
        split: Option<Split>,
    },
    #[error("{path}: cannot read the face crop: {msg} — the manifest points at a missing or corrupt image")]
    Image { path: PathBuf, msg: String },
    #[error("{path}: {msg}")]
    Preprocess { path: PathBuf, msg: String },
}

/// Up to `max` samples of `split` (all splits when `None`), evenly spaced through the
/// manifest (deterministic), as `(input tensor, label)`.
pub fn manifest_inputs(
    manifest: &Path,
    spec: &PreprocessSpec,
    split: Option<Split>,
    max: usize,
) -> Result<Vec<(Vec<f32>, Label)>, ManifestInputError> {
    let m = Manifest::load(manifest)?;
    let root = manifest.parent().unwrap_or(Path::new("."));
    let chosen: Vec<_> = m
        .samples
        .iter()
        .filter(|s| split.is_none_or(|sp| s.split == sp))
        .collect();
    if chosen.is_empty() || max == 0 {
        return Err(ManifestInputError::Empty {
            manifest: manifest.to_path_buf(),
            what: "usable",
            split,
        });
    }
    let n = chosen.len().min(max);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let s = chosen[i * chosen.len() / n];
        let path = root.join(&s.path);
        let img = image::open(&path).map_err(|e| ManifestInputError::Image {
            path: path.clone(),
            msg: e.to_string(),
        })?;
        let rgb: RgbImage = img.to_rgb8().into();
        let crop = resize_bilinear(&rgb, spec.width, spec.height);
        let mut t = vec![0f32; spec.tensor_len()];
        normalize_into(&crop, spec, &mut t).map_err(|e| ManifestInputError::Preprocess {
            path: path.clone(),
            msg: e.to_string(),
        })?;
        out.push((t, s.label));
    }
    Ok(out)
}
