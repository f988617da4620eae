//! `prepare`: source media (videos, photos) → face crops + a crop manifest.
//!
//! Input is a *source manifest* written by an importer: one record per media file,
//! `path` relative to the dataset root (or absolute). Output, in the output directory:
//!
//! * `<domain>/<video>/f<frame:05>.png`: one face crop per sampled frame in which a face
//!   was found, `size × size` pixels, cut by fas-core's [`crop_face`] (the same code the
//!   edge device runs). `<domain>` and `<video>` are the record's fields made safe as
//!   single path components (see [`path_component`]).
//! * `manifest.jsonl`: one record per crop, the source record's metadata with `path`
//!   relative to the output directory and `frame` the decoded-frame index in the video
//!   (a photo keeps its record's `frame`). Records follow the source manifest's order,
//!   then frame order, whatever the number of threads.
//! * `prepare.json`: the [`PrepareReport`].
//! * with `depth_prior`, `<domain>/<video>/f<frame:05>_depth.png` beside every **live**
//!   crop: the [`depth_prior`] of the crop's face, rendered from the detection's landmarks
//!   mapped into the crop by the same transform that cut it. It is written (atomically)
//!   before the crop, so an existing crop of a live sample always has its map. Spoof
//!   crops get none: the loader's depth target for a spoof is all zeros. The training
//!   loader finds the map by its name ([`fas_core::synthfas::depth_path`]).
//!
//! # Which face is kept
//!
//! RetinaFace runs on every sampled frame with `min_face_score` as its score threshold.
//! Of the faces found, those whose box is smaller than `min_face_size` pixels on its
//! short side are dropped; of the rest the one with the **largest box** is kept (ties:
//! the higher score). Dataset videos show one subject close to the camera, so the
//! largest face is the subject, and bystanders or faces in the background of a replay
//! are ignored.
//!
//! A frame without such a face gets **no crop**: it is counted (`no_face` when the
//! detector found nothing, `small_face` when it only found faces below
//! `min_face_size`) and listed in the report. The whole frame is never passed on as a
//! "face": a model trained or scored on uncropped frames learns the background.
//!
//! # Failures
//!
//! A source that cannot be decoded (missing, corrupt, unknown type) is recorded in the
//! report with an error naming the file, and the run continues with the next source.
//! Frames decoded before a video failed keep their crops. `prepare` fails only for a
//! bad configuration, an unloadable detector, an output directory it cannot write, or
//! when every source fails.
//!
//! # Resuming
//!
//! Crops are written atomically, so a crop file that exists is complete. A re-run with
//! the same configuration into the same directory reuses existing crops without running
//! the detector on their frames (counted as `reused`); frames without a crop are
//! detected again, as are live crops whose depth map is missing when `depth_prior` is
//! on. A re-run with a different configuration is refused.

pub mod depth_prior;
pub mod video;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use fas_core::dataset::{Label, Manifest, ManifestError, Sample, DATASET_MANIFEST_VERSION};
use fas_core::preprocess::{crop_face, crop_inverse_map, CropSpec, Face, MAX_SIDE};
use fas_core::report::one_line;
use fas_infer::detect::{DetectError, Detection, FaceDetector, RetinaFace, RetinaFaceConfig};
use serde::{Deserialize, Serialize};

pub use video::{DecodeError, MediaKind};

/// File name of the crop manifest inside the output directory.
pub const CROP_MANIFEST: &str = "manifest.jsonl";
/// File name of the report inside the output directory.
pub const REPORT_FILE: &str = "prepare.json";
/// Version of the `prepare.json` format.
pub const REPORT_VERSION: u32 = 1;

/// Settings of a `prepare` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrepareConfig {
    /// Keep every `stride`-th decoded frame of a video (frames 0, stride, 2·stride, …);
    /// at least 1.
    pub stride: u32,
    /// At most this many frames (after `stride`) per video; `None` keeps all.
    pub max_frames: Option<u32>,
    /// How the face is cut out of the frame.
    pub crop: CropSpec,
    /// Crop width and height in pixels.
    pub size: u32,
    /// Minimum RetinaFace score in `[0, 1]` for a face to count.
    pub min_face_score: f32,
    /// Minimum short side of a face box, in frame pixels; smaller faces are ignored.
    pub min_face_size: f32,
    /// Sources decoded in parallel (one decoder process and one detector each).
    /// Does not change the output.
    pub threads: usize,
    /// Frames whose long side exceeds this are downscaled for detection only (crops
    /// are cut from the full-resolution frame).
    pub detect_max_side: u32,
    /// Write a landmark-fitted [`depth_prior`] map beside every live crop
    /// (`<crop stem>_depth.png`). Absent in reports of older runs, which had none.
    #[serde(default)]
    pub depth_prior: bool,
}

impl Default for PrepareConfig {
    /// Every 5th frame, all of them, an aligned crop with 2.7× context at 256×256
    /// (the ResNet preset of fas-core), faces scoring ≥ 0.8 and ≥ 40 px.
    fn default() -> Self {
        PrepareConfig {
            stride: 5,
            max_frames: None,
            crop: CropSpec::Aligned { scale: 2.7 },
            size: 256,
            min_face_score: 0.8,
            min_face_size: 40.0,
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            detect_max_side: 640,
            depth_prior: false,
        }
    }
}

impl PrepareConfig {
    /// Checks every field; the error names the field and the fix.
    pub fn validate(&self) -> Result<(), PrepareError> {
        let bad = |field: &'static str, value: String, fix: &'static str| {
            Err(PrepareError::Config { field, value, fix })
        };
        if self.stride == 0 {
            return bad("stride", "0".into(), "use 1 to keep every frame");
        }
        if self.max_frames == Some(0) {
            return bad(
                "max_frames",
                "0".into(),
                "use at least 1, or none to keep every sampled frame",
            );
        }
        let scale = self.crop.scale();
        if !(scale.is_finite() && scale > 0.0) {
            return bad(
                "crop.scale",
                scale.to_string(),
                "must be finite and > 0 (1.0 tight, 2.7 as ResNet FAS models use)",
            );
        }
        if self.size == 0 || self.size > MAX_SIDE {
            return bad(
                "size",
                self.size.to_string(),
                "use 1..=16384 pixels, e.g. 256",
            );
        }
        if !(0.0..=1.0).contains(&self.min_face_score) {
            return bad(
                "min_face_score",
                self.min_face_score.to_string(),
                "use a score in [0, 1], e.g. 0.8",
            );
        }
        if !(self.min_face_size.is_finite() && self.min_face_size >= 0.0) {
            return bad(
                "min_face_size",
                self.min_face_size.to_string(),
                "use a finite number of pixels >= 0, e.g. 40",
            );
        }
        if self.threads == 0 {
            return bad("threads", "0".into(), "use at least 1");
        }
        if self.detect_max_side == 0 {
            return bad("detect_max_side", "0".into(), "use at least 1, e.g. 640");
        }
        Ok(())
    }

    fn detector_config(&self) -> RetinaFaceConfig {
        RetinaFaceConfig {
            max_side: self.detect_max_side,
            score_threshold: self.min_face_score,
            ..RetinaFaceConfig::default()
        }
    }

    /// The fields that change the output (all but `threads`), for resume checks.
    fn output_fields(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("PrepareConfig serialises");
        if let Some(o) = v.as_object_mut() {
            o.remove("threads");
        }
        v
    }
}

/// What happened to one source file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceReport {
    /// The record's `path`, as in the source manifest.
    pub path: String,
    pub domain: String,
    pub video: String,
    /// `None` when the type could not be determined.
    pub kind: Option<MediaKind>,
    /// Frame size after rotation (0 × 0 when nothing was decoded).
    pub width: u32,
    pub height: u32,
    /// Sampled frames decoded.
    pub frames: u32,
    /// Frames with a crop (written now or reused); `faces = written + reused`.
    pub faces: u32,
    /// Crops that already existed and were kept (resume).
    pub reused: u32,
    /// Frames in which the detector found no face.
    pub no_face: u32,
    /// Frames in which every face found was below `min_face_size`.
    pub small_face: u32,
    /// Frame indices without a crop (`no_face` and `small_face` frames), ascending.
    pub no_face_frames: Vec<u32>,
    /// Frames whose face could not be cropped (e.g. degenerate landmarks), with why.
    pub crop_errors: Vec<String>,
    /// Why the source failed (decoding, writing); frames before the failure count.
    pub error: Option<String>,
}

impl SourceReport {
    fn new(s: &Sample) -> Self {
        SourceReport {
            path: s.path.clone(),
            domain: s.domain.clone(),
            video: s.video.clone(),
            kind: MediaKind::of(Path::new(&s.path)),
            width: 0,
            height: 0,
            frames: 0,
            faces: 0,
            reused: 0,
            no_face: 0,
            small_face: 0,
            no_face_frames: Vec::new(),
            crop_errors: Vec::new(),
            error: None,
        }
    }
}

/// Sums over all sources.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub sources: usize,
    /// Sources with an error.
    pub failed: usize,
    pub frames: u64,
    pub faces: u64,
    pub reused: u64,
    pub no_face: u64,
    pub small_face: u64,
    pub crop_errors: u64,
}

/// The outcome of a `prepare` run, also written to `<out>/prepare.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrepareReport {
    pub version: u32,
    /// `false` while the run is in progress (the file is written at the start too).
    pub complete: bool,
    pub config: PrepareConfig,
    pub detector_model: String,
    pub root: String,
    pub out: String,
    /// One entry per source record, in the source manifest's order.
    pub sources: Vec<SourceReport>,
    pub totals: Totals,
    pub elapsed_s: f64,
}

impl PrepareReport {
    /// A human-readable summary: totals, then every failed source and every source
    /// with frames lacking a face (at most 20 lines each; `prepare.json` has all).
    pub fn summary(&self) -> String {
        const MAX_LINES: usize = 20;
        let t = &self.totals;
        let mut s = format!(
            "prepare: {} sources ({} failed), {} frames: {} face crops ({} reused), \
             {} without a face, {} with only small faces, {} crop errors; {:.1} s\n",
            t.sources,
            t.failed,
            t.frames,
            t.faces,
            t.reused,
            t.no_face,
            t.small_face,
            t.crop_errors,
            self.elapsed_s
        );
        let failed: Vec<&SourceReport> =
            self.sources.iter().filter(|r| r.error.is_some()).collect();
        for r in failed.iter().take(MAX_LINES) {
            s.push_str(&format!(
                "  failed: {}\n",
                r.error.as_deref().unwrap_or_default()
            ));
        }
        if failed.len() > MAX_LINES {
            s.push_str(&format!(
                "  … and {} more failed sources\n",
                failed.len() - MAX_LINES
            ));
        }
        let faceless: Vec<&SourceReport> = self
            .sources
            .iter()
            .filter(|r| !r.no_face_frames.is_empty() || !r.crop_errors.is_empty())
            .collect();
        for r in faceless.iter().take(MAX_LINES) {
            s.push_str(&format!(
                "  {}: {} of {} frames without a face ({} none, {} too small){}\n",
                r.path,
                r.no_face_frames.len(),
                r.frames,
                r.no_face,
                r.small_face,
                match r.crop_errors.len() {
                    0 => String::new(),
                    n => format!(", {n} crop errors"),
                }
            ));
        }
        if faceless.len() > MAX_LINES {
            s.push_str(&format!(
                "  … and {} more sources with faceless frames\n",
                faceless.len() - MAX_LINES
            ));
        }
        s.push_str(&format!(
            "  crops and {CROP_MANIFEST} in {}; details in {REPORT_FILE}\n",
            self.out
        ));
        s
    }

    fn totals_of(sources: &[SourceReport]) -> Totals {
        let mut t = Totals {
            sources: sources.len(),
            ..Totals::default()
        };
        for r in sources {
            t.failed += usize::from(r.error.is_some());
            t.frames += u64::from(r.frames);
            t.faces += u64::from(r.faces);
            t.reused += u64::from(r.reused);
            t.no_face += u64::from(r.no_face);
            t.small_face += u64::from(r.small_face);
            t.crop_errors += r.crop_errors.len() as u64;
        }
        t
    }
}

/// Why `prepare` as a whole failed (per-source failures are in the report instead).
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("prepare config: {field} = {value}: {fix}")]
    Config {
        field: &'static str,
        value: String,
        fix: &'static str,
    },
    #[error("the source manifest has no records: run an importer first")]
    NoSources,
    #[error(transparent)]
    Detector(#[from] DetectError),
    #[error("videos need ffmpeg")]
    Ffmpeg(#[source] DecodeError),
    #[error("{}: cannot {action} — check the output directory and its permissions", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: written by an earlier run with a different configuration ({detail}) — use a new output directory or delete this one", path.display())]
    ConfigMismatch { path: PathBuf, detail: String },
    #[error("{}: cannot be read as a prepare report ({detail}) — delete the output directory and run again", path.display())]
    BadReport { path: PathBuf, detail: String },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("all {count} sources failed; the first: {first} (report: {})", report.display())]
    AllFailed {
        count: usize,
        first: String,
        report: PathBuf,
    },
}

/// `s` as one safe path component: ASCII letters, digits, `.`, `-` and `_` are kept,
/// every other character (including `/`) becomes `_`; a result of only dots gets a
/// leading `_` so it never means the current or parent directory.
pub fn path_component(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.chars().all(|c| c == '.') {
        out.insert(0, '_');
    }
    out
}

/// FNV-1a, 64 bits: a stable hash for disambiguating directory names.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The crop directory (relative to the output) of every `(domain, video)`: the two
/// fields made safe by [`path_component`]; videos whose safe names collide get an
/// `-<hash>` suffix so their crops never mix.
fn crop_dirs(samples: &[Sample]) -> HashMap<(String, String), String> {
    let mut by_name: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for s in samples {
        let key = (s.domain.clone(), s.video.clone());
        let name = format!("{}/{}", path_component(&s.domain), path_component(&s.video));
        let entry = by_name.entry(name).or_default();
        if !entry.contains(&key) {
            entry.push(key);
        }
    }
    let mut dirs = HashMap::new();
    for (name, keys) in by_name {
        let collide = keys.len() > 1;
        for key in keys {
            let dir = if collide {
                format!("{name}-{:016x}", fnv1a(&format!("{}\0{}", key.0, key.1)))
            } else {
                name.clone()
            };
            dirs.insert(key, dir);
        }
    }
    dirs
}

/// Relative crop path of `frame` in crop directory `dir`.
fn crop_rel_path(dir: &str, frame: u32) -> String {
    format!("{dir}/f{frame:05}.png")
}

/// For each source, `Some(why)` when its crops would overwrite those of an earlier
/// source: two videos with the same domain and video id, a photo and a video sharing
/// one, or two photos with the same domain, video id and frame.
fn conflicts(samples: &[Sample]) -> Vec<Option<String>> {
    enum Claim {
        Video(usize),
        Frames(HashMap<u32, usize>),
    }
    let mut claims: HashMap<(&str, &str), Claim> = HashMap::new();
    samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let key = (s.domain.as_str(), s.video.as_str());
            let is_video = MediaKind::of(Path::new(&s.path)) == Some(MediaKind::Video);
            let earlier = match (claims.get_mut(&key), is_video) {
                (None, true) => {
                    claims.insert(key, Claim::Video(i));
                    None
                }
                (None, false) => {
                    claims.insert(key, Claim::Frames(HashMap::from([(s.frame, i)])));
                    None
                }
                (Some(Claim::Video(j)), _) => Some(*j),
                (Some(Claim::Frames(f)), true) => f.values().min().copied(),
                (Some(Claim::Frames(f)), false) => match f.get(&s.frame) {
                    Some(j) => Some(*j),
                    None => {
                        f.insert(s.frame, i);
                        None
                    }
                },
            };
            earlier.map(|j| {
                format!(
                    "{}: domain {:?} video {:?} (frame {}) is already used by source #{} ({}): \
                     crops would overwrite each other — give each source its own video id \
                     (or, for photos of one video, distinct frame numbers)",
                    s.path,
                    s.domain,
                    s.video,
                    s.frame,
                    j + 1,
                    samples[j].path
                )
            })
        })
        .collect()
}

/// Everything a worker needs besides its detector.
struct Job<'a> {
    root: &'a Path,
    out: &'a Path,
    cfg: &'a PrepareConfig,
}

/// One source's report and its crop records, frame order.
struct Outcome {
    report: SourceReport,
    records: Vec<Sample>,
}

/// Detects faces in, crops and records the sources of `sources` (paths relative to
/// `root`), writing crops, `manifest.jsonl` and `prepare.json` under `out` (created if
/// missing). `detector_model` is the RetinaFace ONNX file
/// (`assets/retinaface_mnet025.onnx`). See the module documentation for the layout, the
/// face choice and the failure policy.
pub fn prepare(
    sources: &Manifest,
    root: &Path,
    out: &Path,
    cfg: &PrepareConfig,
    detector_model: &Path,
) -> Result<PrepareReport, PrepareError> {
    let start = Instant::now();
    cfg.validate()?;
    let samples = &sources.samples;
    if samples.is_empty() {
        return Err(PrepareError::NoSources);
    }
    if samples
        .iter()
        .any(|s| video::MediaKind::needs_ffmpeg(Path::new(&s.path)))
    {
        video::check_ffmpeg().map_err(PrepareError::Ffmpeg)?;
    }
    let model_bytes = std::fs::read(detector_model).map_err(|source| DetectError::Io {
        path: detector_model.to_path_buf(),
        source,
    })?;
    let workers = cfg.threads.min(samples.len()).max(1);
    let mut detectors = Vec::with_capacity(workers);
    for _ in 0..workers {
        detectors.push(RetinaFace::from_onnx_bytes(
            detector_model,
            &model_bytes,
            cfg.detector_config(),
        )?);
    }

    std::fs::create_dir_all(out).map_err(|source| PrepareError::Io {
        path: out.to_path_buf(),
        action: "create the output directory",
        source,
    })?;
    let report_path = out.join(REPORT_FILE);
    check_previous_run(&report_path, cfg)?;
    let mut report = PrepareReport {
        version: REPORT_VERSION,
        complete: false,
        config: cfg.clone(),
        detector_model: detector_model.display().to_string(),
        root: root.display().to_string(),
        out: out.display().to_string(),
        sources: Vec::new(),
        totals: Totals::default(),
        elapsed_s: 0.0,
    };
    write_report(&report_path, &report)?;

    let dirs = crop_dirs(samples);
    let conflicts = conflicts(samples);
    let job = Job { root, out, cfg };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Outcome>>> =
        Mutex::new((0..samples.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for mut det in detectors {
            let (job, next, results, dirs, conflicts) = (&job, &next, &results, &dirs, &conflicts);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(sample) = samples.get(i) else { break };
                let outcome = match &conflicts[i] {
                    Some(why) => {
                        let mut report = SourceReport::new(sample);
                        report.error = Some(why.clone());
                        Outcome {
                            report,
                            records: Vec::new(),
                        }
                    }
                    None => {
                        let dir = &dirs[&(sample.domain.clone(), sample.video.clone())];
                        process_source(job, &mut det, sample, dir)
                    }
                };
                results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(outcome);
            });
        }
    });

    let mut records = Vec::new();
    for outcome in results.into_inner().unwrap_or_else(|p| p.into_inner()) {
        let outcome = outcome.expect("every source is processed by a worker");
        records.extend(outcome.records);
        report.sources.push(outcome.report);
    }
    Manifest::new(records).save(out.join(CROP_MANIFEST))?;
    report.totals = PrepareReport::totals_of(&report.sources);
    report.complete = true;
    report.elapsed_s = start.elapsed().as_secs_f64();
    write_report(&report_path, &report)?;

    if report.totals.failed == report.totals.sources {
        let first = report.sources[0].error.clone().unwrap_or_default();
        return Err(PrepareError::AllFailed {
            count: report.totals.sources,
            first,
            report: report_path,
        });
    }
    Ok(report)
}

/// Refuses an output directory prepared with a different configuration.
fn check_previous_run(report_path: &Path, cfg: &PrepareConfig) -> Result<(), PrepareError> {
    let text = match std::fs::read_to_string(report_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(PrepareError::Io {
                path: report_path.to_path_buf(),
                action: "read",
                source,
            })
        }
    };
    let bad = |detail: String| PrepareError::BadReport {
        path: report_path.to_path_buf(),
        detail,
    };
    let old: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let old_cfg: PrepareConfig = serde_json::from_value(
        old.get("config")
            .cloned()
            .ok_or_else(|| bad("no \"config\" field".into()))?,
    )
    .map_err(|e| bad(format!("field \"config\": {e}")))?;
    let (was, now) = (old_cfg.output_fields(), cfg.output_fields());
    if was != now {
        let mut diffs = Vec::new();
        if let (Some(a), Some(b)) = (was.as_object(), now.as_object()) {
            for (k, v) in b {
                if a.get(k) != Some(v) {
                    diffs.push(format!(
                        "{k}: was {}, now {v}",
                        a.get(k).unwrap_or(&serde_json::Value::Null)
                    ));
                }
            }
        }
        return Err(PrepareError::ConfigMismatch {
            path: report_path.to_path_buf(),
            detail: diffs.join("; "),
        });
    }
    Ok(())
}

fn write_report(path: &Path, report: &PrepareReport) -> Result<(), PrepareError> {
    let mut text = serde_json::to_string_pretty(report).expect("PrepareReport serialises");
    text.push('\n');
    fas_core::atomic::write_atomic(path, text.as_bytes()).map_err(|source| PrepareError::Io {
        path: path.to_path_buf(),
        action: "write the report",
        source,
    })
}

/// The face to crop among `faces` (all above the score threshold): the largest box whose
/// short side is at least `min_size` pixels, ties broken by score. See the module docs.
pub fn choose_face(faces: &[Detection], min_size: f32) -> Option<&Detection> {
    faces
        .iter()
        .filter(|d| d.width().min(d.height()) >= min_size)
        .max_by(|a, b| {
            a.area()
                .total_cmp(&b.area())
                .then(a.score.total_cmp(&b.score))
        })
}

/// What became of one sampled frame.
enum FrameOutcome {
    Crop { reused: bool },
    NoFace,
    SmallFace,
    CropError(String),
}

fn process_source(job: &Job, det: &mut RetinaFace, sample: &Sample, dir: &str) -> Outcome {
    let mut report = SourceReport::new(sample);
    let mut records = Vec::new();
    let path = job.root.join(&sample.path);
    let result = (|| -> Result<(), String> {
        sample
            .validate()
            .map_err(|e| format!("{}: {e}", sample.path))?;
        let kind = MediaKind::of(&path).ok_or_else(|| {
            DecodeError::UnknownKind {
                path: path.clone(),
                ext: path
                    .extension()
                    .map(|e| e.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            }
            .to_string()
        })?;
        let mut handle = |index: u32, frame: image::RgbImage| -> Result<(), String> {
            if report.frames == 0 {
                report.width = frame.width();
                report.height = frame.height();
            }
            report.frames += 1;
            let rel = crop_rel_path(dir, index);
            let live = sample.label == Label::Live;
            match process_frame(job, det, frame, &job.out.join(&rel), live)? {
                FrameOutcome::Crop { reused } => {
                    report.faces += 1;
                    report.reused += u32::from(reused);
                    records.push(Sample {
                        v: DATASET_MANIFEST_VERSION,
                        path: rel,
                        frame: index,
                        ..sample.clone()
                    });
                }
                FrameOutcome::NoFace => {
                    report.no_face += 1;
                    report.no_face_frames.push(index);
                }
                FrameOutcome::SmallFace => {
                    report.small_face += 1;
                    report.no_face_frames.push(index);
                }
                FrameOutcome::CropError(why) => report
                    .crop_errors
                    .push(format!("{} frame {index}: {why}", sample.path)),
            }
            Ok(())
        };
        match kind {
            MediaKind::Image => {
                let frame = video::decode_image(&path).map_err(|e| one_line(&e))?;
                handle(sample.frame, frame)
            }
            MediaKind::Video => {
                let mut reader =
                    video::FrameReader::open(&path, job.cfg.stride, job.cfg.max_frames)
                        .map_err(|e| one_line(&e))?;
                while let Some((index, frame)) = reader.next_frame().map_err(|e| one_line(&e))? {
                    handle(index, frame)?;
                }
                Ok(())
            }
        }
    })();
    report.error = result.err();
    Outcome { report, records }
}

/// Detects, chooses and crops the face of one frame, writing the crop to `crop_path`
/// (atomically), and for a `live` frame with `depth_prior` on its depth map beside it
/// first. `Err` only when a file cannot be written.
fn process_frame(
    job: &Job,
    det: &mut RetinaFace,
    frame: image::RgbImage,
    crop_path: &Path,
    live: bool,
) -> Result<FrameOutcome, String> {
    let depth_path =
        (live && job.cfg.depth_prior).then(|| fas_core::synthfas::depth_path(crop_path));
    if crop_path.is_file() && depth_path.as_deref().is_none_or(Path::is_file) {
        return Ok(FrameOutcome::Crop { reused: true });
    }
    let faces = match det.detect(&frame) {
        Ok(f) => f,
        Err(e) => return Ok(FrameOutcome::CropError(format!("face detection: {e}"))),
    };
    let Some(chosen) = choose_face(&faces, job.cfg.min_face_size) else {
        return Ok(if faces.is_empty() {
            FrameOutcome::NoFace
        } else {
            FrameOutcome::SmallFace
        });
    };
    let face = Face::from(*chosen);
    let size = job.cfg.size;
    let crop = match crop_face(&frame.into(), &face, job.cfg.crop, size, size) {
        Ok(c) => c,
        Err(e) => return Ok(FrameOutcome::CropError(e.to_string())),
    };
    let depth = match depth_path {
        Some(path) => match crop_depth_prior(&face, job.cfg.crop, size) {
            Ok(map) => Some((path, map)),
            Err(e) => return Ok(FrameOutcome::CropError(e)),
        },
        None => None,
    };
    let crop: image::RgbImage = crop.into();
    let mut png = Vec::new();
    crop.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| format!("{}: cannot encode PNG: {e}", crop_path.display()))?;
    // Created on the first crop, so a video without faces leaves no empty directory.
    if let Some(dir) = crop_path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("{}: cannot create directory: {e}", dir.display()))?;
    }
    if let Some((path, map)) = depth {
        let png = depth_prior::encode_png(&map)
            .map_err(|e| format!("{}: cannot encode PNG: {e}", path.display()))?;
        fas_core::atomic::write_atomic(&path, &png)
            .map_err(|e| format!("{}: cannot write depth map: {e}", path.display()))?;
    }
    fas_core::atomic::write_atomic(crop_path, &png)
        .map_err(|e| format!("{}: cannot write crop: {e}", crop_path.display()))?;
    Ok(FrameOutcome::Crop { reused: false })
}

/// The depth prior of the `size`×`size` crop `crop` of `face`: its landmarks mapped
/// frame → crop by the inverse of the map the crop was warped with.
fn crop_depth_prior(face: &Face, crop: CropSpec, size: u32) -> Result<image::GrayImage, String> {
    let to_crop = crop_inverse_map(face, crop, size, size)
        .map_err(|e| format!("depth prior: {e}"))?
        .invert()
        .ok_or_else(|| "depth prior: the crop's transform is not invertible".to_string())?;
    let landmarks = face
        .landmarks
        .map(|[x, y]| to_crop.apply([f64::from(x), f64::from(y)]));
    depth_prior::depth_prior(&landmarks, size, size).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
