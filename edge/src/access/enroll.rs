//! `fas-edge enroll`: add, list, remove, export and import the people a door lets in.
//!
//! `add` guides the person through head poses (as phone face unlock does); each pose is
//! taken from one tracked face that passes the quality gates and the liveness model, and
//! only its embedding is kept. Every change is written atomically to the encrypted store
//! and appended to the enrolment log (`<store>.log`, JSON lines: time, action, id — no
//! names, no templates).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::credential::Credential;
use super::runtime::{open_store, Embedder};
use super::store::{load_key, Person, Store};
use super::AccessSection;
use crate::app::{detector, load_config, model_source, open_source, Common};
use crate::camera::CaptureError;
use crate::config::EdgeConfig;
use crate::model::LoadedModel;
use crate::track::Tracker;
use fas_infer::embed::EMBEDDING_DIM;

/// The poses `add` asks for, in order.
pub const POSES: [&str; 5] = [
    "look straight at the camera",
    "turn your head slightly to your left",
    "turn your head slightly to your right",
    "tilt your head slightly up",
    "tilt your head slightly down",
];

#[derive(Debug, Clone)]
pub struct AddOpts {
    pub id: String,
    pub name: Option<String>,
    pub credentials: Vec<Credential>,
    /// Enrol the credentials only (no face): for `mode = "credential"`.
    pub no_face: bool,
    /// How many of [`POSES`] to take (1–5).
    pub poses: usize,
    pub wait_for_enter: bool,
    /// Give up a pose after this many frames.
    pub max_frames_per_pose: u64,
}

fn access(cfg: &EdgeConfig) -> Result<&AccessSection> {
    cfg.access.as_ref().context(
        "the config has no [access] section: enrolment needs one (mode, and where the store and its key live)",
    )
}

/// The embedding model hash a store for this config must carry (`None`: credentials only).
fn face_model_sha(a: &AccessSection) -> Result<Option<String>> {
    if !a.mode.needs_face_match() {
        return Ok(None);
    }
    let bytes = std::fs::read(&a.face_model).with_context(|| {
        format!(
            "access.face_model {}: cannot read the face-embedding network",
            a.face_model.display()
        )
    })?;
    Ok(Some(fas_core::bundle::sha256_hex(&bytes)))
}

#[derive(Serialize)]
struct LogLine<'a> {
    time_ms: u64,
    action: &'a str,
    id: &'a str,
    templates: usize,
}

/// Appends one line to `<store>.log` and syncs it.
fn log(a: &AccessSection, action: &str, id: &str, templates: usize) -> Result<()> {
    let mut path = a.enrollment.clone().into_os_string();
    path.push(".log");
    let path = PathBuf::from(path);
    let line = serde_json::to_string(&LogLine {
        time_ms: crate::camera::wall_ms_now(),
        action,
        id,
        templates,
    })?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("enrolment log {}", path.display()))?;
    writeln!(f, "{line}")
        .and_then(|_| f.sync_data())
        .with_context(|| format!("enrolment log {}", path.display()))
}

/// The store for writing (its key made on first use).
fn open_for_write(
    a: &AccessSection,
    model: Option<&str>,
) -> Result<(Store, chacha20poly1305::Key)> {
    let key = load_key(&a.enrollment_key, true)
        .with_context(|| format!("access.enrollment_key {}", a.enrollment_key.display()))?;
    let store = open_store(a, model)?;
    Ok((store, key))
}

fn save(a: &AccessSection, store: &Store, key: &chacha20poly1305::Key) -> Result<()> {
    store
        .save(&a.enrollment, key)
        .with_context(|| format!("access.enrollment {}", a.enrollment.display()))
}

/// `enroll add`.
pub fn add(c: &Common, o: &AddOpts) -> Result<Person> {
    let cfg = load_config(c)?;
    let a = access(&cfg)?;
    if o.no_face && a.mode.needs_face_match() {
        bail!(
            "--no-face: access mode \"{}\" compares faces, so a person without a face template could never enter; enrol the face, or use mode \"credential\"",
            a.mode
        );
    }
    if a.mode.needs_credential() && o.credentials.is_empty() {
        bail!(
            "access mode \"{}\" opens for a credential: give the person's card with --credential BITS:FACILITY:CARD",
            a.mode
        );
    }
    if !(1..=POSES.len()).contains(&o.poses) {
        bail!("--poses {}: take 1 to {}", o.poses, POSES.len());
    }
    let model_sha = face_model_sha(a)?;
    let (mut store, key) = open_for_write(a, model_sha.as_deref())?;
    // Refuse a duplicate before asking anyone to pose.
    if store.get(&o.id).is_some() {
        return Err(super::store::StoreError::Duplicate(o.id.clone()).into());
    }
    let templates = if a.mode.needs_face_match() && !o.no_face {
        capture_templates(c, &cfg, a, o)?
    } else {
        Vec::new()
    };
    let person = Person {
        id: o.id.clone(),
        name: o.name.clone(),
        credentials: o.credentials.clone(),
        templates,
        enrolled_ms: crate::camera::wall_ms_now(),
    };
    store.add(person.clone(), EMBEDDING_DIM)?;
    save(a, &store, &key)?;
    log(a, "add", &person.id, person.templates.len())?;
    Ok(person)
}

/// One embedding per pose, each from a live, good-quality, single tracked face.
fn capture_templates(
    c: &Common,
    cfg: &EdgeConfig,
    a: &AccessSection,
    o: &AddOpts,
) -> Result<Vec<Vec<f32>>> {
    let model = LoadedModel::load(&model_source(c, cfg)?, cfg.model.allow_demo)?;
    let (threshold, _) = crate::app::resolve_threshold(cfg, &model)?;
    let mut tracker = Tracker::new(detector(cfg, &model)?, cfg.track_config())?;
    let quality = cfg.quality.to_config();
    let mut cropper = crate::crop::FaceCropper::new(model.preprocess.clone())?;
    let mut model = model;
    let mut embedder = Embedder::load(&a.face_model)?;
    let mut source = open_source(c, cfg)?;
    let stdin = std::io::stdin();
    let mut templates = Vec::new();
    for (k, pose) in POSES.iter().take(o.poses).enumerate() {
        println!(
            "enroll: pose {}/{}: {pose}{}",
            k + 1,
            o.poses,
            if o.wait_for_enter {
                ", then press Enter"
            } else {
                ""
            }
        );
        if o.wait_for_enter {
            stdin.lock().read_line(&mut String::new())?;
        }
        let mut seen = 0u64;
        let mut last_problem = String::from("no face");
        let template = loop {
            if seen >= o.max_frames_per_pose {
                bail!(
                    "enroll: pose {}: no usable frame in {seen} ({last_problem}) — check light and distance, and that only one person is in view",
                    k + 1
                );
            }
            let frame = match source.next_frame() {
                Ok(f) => f,
                Err(CaptureError::EndOfInput { .. }) => bail!(
                    "enroll: the input ended during pose {} ({seen} frames, none usable: {last_problem})",
                    k + 1
                ),
                Err(e) if e.is_lost() => bail!("enroll: camera lost: {e}"),
                Err(_) => continue,
            };
            seen += 1;
            let faces = tracker.update(&frame)?;
            let [det] = faces.faces.as_slice() else {
                last_problem = format!("{} faces in view", faces.faces.len());
                continue;
            };
            if let Err(r) = crate::quality::assess(&frame.image, det, &quality) {
                last_problem = r.to_string();
                continue;
            }
            let face = fas_core::preprocess::Face {
                bbox: det.bbox,
                landmarks: det.landmarks,
                score: det.score,
            };
            let p_live = model.model.score(cropper.crop(&frame.image, &face)?)?;
            if p_live < threshold {
                last_problem = format!("not live (p_live {p_live:.3} < {threshold:.3})");
                continue;
            }
            use super::gate::FaceEmbed;
            break embedder.embed(&frame.image, det)?;
        };
        println!("enroll: pose {} taken", k + 1);
        templates.push(template);
    }
    Ok(templates)
}

/// `enroll list`: id, name, credentials, templates, enrolment time.
pub fn list(c: &Common) -> Result<Vec<Person>> {
    let cfg = load_config(c)?;
    let a = access(&cfg)?;
    let store = open_store(a, None)?;
    Ok(store.people.people)
}

/// `enroll remove ID`: gone from the store on disk (the file is replaced).
pub fn remove(c: &Common, id: &str) -> Result<Person> {
    let cfg = load_config(c)?;
    let a = access(&cfg)?;
    let (mut store, key) = open_for_write(a, None)?;
    let p = store.remove(id)?;
    save(a, &store, &key)?;
    log(a, "remove", id, p.templates.len())?;
    Ok(p)
}

/// `enroll export FILE`.
pub fn export(c: &Common, file: &Path) -> Result<usize> {
    let cfg = load_config(c)?;
    let a = access(&cfg)?;
    let store = open_store(a, None)?;
    store.export(file)?;
    log(a, "export", "*", store.people.people.len())?;
    Ok(store.people.people.len())
}

/// `enroll import FILE`: refuses a file made with another embedding model.
pub fn import(c: &Common, file: &Path) -> Result<usize> {
    let cfg = load_config(c)?;
    let a = access(&cfg)?;
    let model = face_model_sha(a)?;
    let (mut store, key) = open_for_write(a, model.as_deref())?;
    let n = store.import(file, EMBEDDING_DIM)?;
    save(a, &store, &key)?;
    log(a, "import", "*", n)?;
    Ok(n)
}
