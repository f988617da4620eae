//! Building the door's [`Gate`] from `[access]`: the store (decrypted with the device's
//! enrolment key), the face-embedding network for the modes that compare faces, and the
//! face threshold.

use std::path::Path;

use anyhow::{Context, Result};
use fas_core::preprocess::RgbImage;
use fas_infer::detect::Detection;
use fas_infer::embed::FaceEmbedder;

use super::gate::{FaceEmbed, Gate};
use super::store::{load_key, Store};
use super::AccessSection;

/// Default cosine thresholds of the shipped embedding network (dlib's ResNet, whose
/// L2-normalised embeddings of different people still score 0.87 on average): 1:1, a
/// credential names the person (FAR ≈ 1e-2 on the 858 different-person pairs of the
/// registry photo set); 1:N, the face alone must single out one of everyone enrolled, so
/// the bar sits above every different-person pair seen. Three same-person pairs cannot pin
/// either: measure on the site's own people (README, "Door access").
pub const THRESHOLD_ONE_TO_ONE: f32 = 0.94;
pub const THRESHOLD_ONE_TO_MANY: f32 = 0.96;

/// The embedding network, loaded, with the sha256 of its file.
pub struct Embedder {
    pub net: FaceEmbedder,
    pub sha256: String,
}

impl Embedder {
    pub fn load(path: &Path) -> Result<Embedder> {
        let bytes = std::fs::read(path).with_context(|| {
            format!(
                "access.face_model {}: cannot read the face-embedding network — install it (the fas package puts it in /usr/share/fas) or point access.face_model at it",
                path.display()
            )
        })?;
        let net = FaceEmbedder::from_onnx_bytes(path, &bytes)
            .with_context(|| format!("access.face_model {}", path.display()))?;
        // `from_onnx_bytes` loads only the pinned file, so its hash is the pin (no second
        // pass over 22 MB at start).
        Ok(Embedder {
            net,
            sha256: fas_infer::embed::MODEL_SHA256.to_string(),
        })
    }
}

impl FaceEmbed for Embedder {
    fn embed(&mut self, image: &RgbImage, det: &Detection) -> Result<Vec<f32>> {
        let img: image::RgbImage = image.clone().into();
        Ok(self.net.embed_face(&img, det)?)
    }
}

/// Opens the store of `a` for a door that compares faces with `model_sha256` (`None`:
/// credentials only). A missing store is empty (nobody enters) and says so.
pub fn open_store(a: &AccessSection, model_sha256: Option<&str>) -> Result<Store> {
    if !a.enrollment.exists() {
        eprintln!(
            "fas-edge: WARNING: no enrolment store at {} — nobody is enrolled, so nobody is let in (`fas-edge enroll add`)",
            a.enrollment.display()
        );
        return Ok(Store::empty(model_sha256.unwrap_or(super::store::NO_MODEL)));
    }
    let key = load_key(&a.enrollment_key, false)
        .with_context(|| format!("access.enrollment_key {}", a.enrollment_key.display()))?;
    Store::load(&a.enrollment, &key, model_sha256)
        .with_context(|| format!("access.enrollment {}", a.enrollment.display()))
}

/// The gate for `a`.
pub fn gate(a: &AccessSection) -> Result<Gate> {
    let embedder = if a.mode.needs_face_match() {
        Some(Embedder::load(&a.face_model)?)
    } else {
        None
    };
    let store = open_store(a, embedder.as_ref().map(|e| e.sha256.as_str()))?;
    let threshold = a.face_threshold.unwrap_or(match a.mode {
        fas_core::access::AccessMode::Face => THRESHOLD_ONE_TO_MANY,
        _ => THRESHOLD_ONE_TO_ONE,
    });
    let people = store.people.people.len();
    eprintln!(
        "fas-edge: access mode {} — {people} enrolled, face threshold {threshold:.3}",
        a.mode
    );
    if a.mode == fas_core::access::AccessMode::Presence {
        eprintln!(
            "fas-edge: WARNING: access mode \"presence\": ANY live face opens this door, a stranger's too (allow_any_live_face = true)"
        );
    }
    Ok(Gate::new(
        a.mode,
        store,
        threshold,
        embedder.map(|e| Box::new(e) as Box<dyn FaceEmbed>),
    ))
}
