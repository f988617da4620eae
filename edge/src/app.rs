//! `fas-edge` commands: run the door, calibrate its threshold, verify the audit log.
//!
//! `main → cli → app::run(args) → ExitCode`: this module turns validated arguments and the
//! config file into the pipeline's components and runs them.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use fas_core::audit::AuditWriter;
use fas_core::decision::{Decision, Reason};
use fas_infer::detect::retinaface::{RetinaFace, RetinaFaceConfig};
use fas_infer::detect::{FaceDetector, Mtcnn, MtcnnConfig};
use serde::{Deserialize, Serialize};

use crate::actuator::ActuatorConfig;
use crate::camera::{
    CaptureError, FileSource, FrameSource, NokhwaCamera, NokhwaConfig, Reconnect, SyntheticSource,
    SystemClock, V4l2Camera,
};
use crate::config::{DetectorKind, DisplaySection, EdgeConfig, TriggerSection};
use crate::display::fb::FbWriter;
use crate::display::png::Snapshots;
use crate::door::{Display, Door};
use crate::model::{LoadedModel, ModelSource};
use crate::policy::{Mode, Policy};
use crate::status::{CameraState, Counts, Event, EventFormat, Status, StatusFile};
use crate::track::Tracker;

/// Options shared by `run` and `calibrate` (command line over config file).
#[derive(Debug, Clone, Default)]
pub struct Common {
    pub config: Option<PathBuf>,
    pub camera: Option<String>,
    pub input: Option<PathBuf>,
    pub bundle: Option<PathBuf>,
    pub keys: Option<PathBuf>,
    pub dev_unsigned_bundle: Option<PathBuf>,
    pub dev_unsigned_model: Option<PathBuf>,
    pub allow_demo: bool,
    pub detector: Option<PathBuf>,
    pub audit: Option<PathBuf>,
    pub calibration: Option<PathBuf>,
    pub snapshots: Option<PathBuf>,
    pub fps: Option<f64>,
    /// Status file (overrides status.path).
    pub status: Option<PathBuf>,
    /// JSON events on stdout instead of text lines.
    pub json: bool,
}

/// The first of `$FAS_ASSETS` and `/usr/share/fas` (where boards install the detectors)
/// that holds all of `files`.
fn packaged(files: &[&str]) -> Option<PathBuf> {
    let mut dirs = vec![PathBuf::from("/usr/share/fas")];
    if let Some(a) = std::env::var_os("FAS_ASSETS") {
        dirs.insert(0, PathBuf::from(a));
    }
    dirs.into_iter()
        .find(|d| files.iter().all(|f| d.join(f).exists()))
}

/// The packaged RetinaFace model.
fn default_detector() -> Option<PathBuf> {
    packaged(&["retinaface_mnet025.onnx"]).map(|d| d.join("retinaface_mnet025.onnx"))
}

pub fn load_config(c: &Common) -> Result<EdgeConfig> {
    let mut cfg = match &c.config {
        Some(p) => EdgeConfig::load(p)?,
        None => EdgeConfig::default(),
    };
    if let Some(cam) = &c.camera {
        cfg.camera.device = cam.clone();
    }
    if let Some(b) = &c.bundle {
        cfg.model.bundle = Some(b.clone());
    }
    if let Some(k) = &c.keys {
        cfg.model.trusted_keys = k.clone();
    }
    if c.allow_demo {
        cfg.model.allow_demo = true;
    }
    if let Some(d) = &c.detector {
        cfg.detector.model = Some(d.clone());
    }
    if let Some(a) = &c.audit {
        cfg.audit.path = a.clone();
    }
    if let Some(p) = &c.calibration {
        cfg.model.calibration = p.clone();
    }
    if let Some(dir) = &c.snapshots {
        cfg.display = DisplaySection::Png(crate::display::png::SnapshotConfig {
            dir: dir.clone(),
            every_n_frames: 0,
            on_decision: true,
            keep: 0,
        });
    }
    cfg.validate(c.config.as_deref().unwrap_or(Path::new("(defaults)")))?;
    Ok(cfg)
}

fn model_source(c: &Common, cfg: &EdgeConfig) -> Result<ModelSource> {
    Ok(match (&c.dev_unsigned_model, &c.dev_unsigned_bundle, &cfg.model.bundle) {
        (Some(p), _, _) => ModelSource::DevOnnx(p.clone()),
        (None, Some(p), _) => ModelSource::DevUnsignedBundle(p.clone()),
        (None, None, Some(p)) => ModelSource::Bundle {
            path: p.clone(),
            keys: cfg.model.trusted_keys.clone(),
        },
        (None, None, None) => bail!(
            "no model: set model.bundle in the config file or pass --bundle (development: --dev-unsigned-model model.onnx)"
        ),
    })
}

/// The camera: `--input` (folder or video), `synthetic[:seed]`, a V4L2 device or a
/// nokhwa desktop camera (`nokhwa[:N]`), the cameras wrapped in reconnect-with-backoff.
pub fn open_source(c: &Common, cfg: &EdgeConfig) -> Result<Box<dyn FrameSource>> {
    if let Some(input) = &c.input {
        let mut s = FileSource::open(input)?;
        if let Some(f) = c.fps {
            s = s.with_fps(f)?;
        }
        return Ok(Box::new(s));
    }
    let dev = &cfg.camera.device;
    if dev.starts_with("synthetic") {
        let mut s = SyntheticSource::from_spec(dev)?;
        if let Some(f) = c.fps {
            s = s.paced(f)?;
        }
        return Ok(Box::new(s));
    }
    let v = cfg.v4l2().map_err(|e| anyhow::anyhow!("camera: {e}"))?;
    if let Some(index) = NokhwaConfig::parse_spec(dev) {
        // A desktop webcam: it must be there at start-up; a later loss reconnects.
        let n = NokhwaConfig::from_v4l2(index?, &v);
        let r = Reconnect::open(n.label(), move || NokhwaCamera::open(&n), cfg.backoff())?;
        return Ok(Box::new(r));
    }
    let label = v.device.display().to_string();
    if v.device.exists() {
        // A camera that is there but will not stream as configured (format, size) is a
        // misconfigured door: fail at start-up, naming the problem.
        let r = Reconnect::open(label, move || V4l2Camera::open(&v), cfg.backoff())?;
        return Ok(Box::new(r));
    }
    // Not plugged in yet (a USB camera enumerating after boot, or unplugged): start
    // locked and keep trying with backoff, as after an unplug.
    eprintln!("fas-edge: camera {label} is not present; the door stays locked until it appears");
    let r = Reconnect::with_clock(
        label,
        move || V4l2Camera::open(&v),
        cfg.backoff(),
        SystemClock::default(),
        false,
    )?;
    Ok(Box::new(r))
}

/// `fas-edge cameras`: the V4L2 nodes and the nokhwa cameras this build can open, one per
/// line; a backend left out of the build says how to get it.
pub fn cameras() -> Result<()> {
    match crate::camera::v4l2::list_devices() {
        Ok(list) if list.is_empty() => println!("v4l2: no /dev/video* nodes"),
        Ok(list) => {
            for d in list {
                let what = if d.capture {
                    format!("capture [{}]", d.formats.join(", "))
                } else {
                    "not a capture node".to_string()
                };
                println!("{}\t{}\t{what}", d.path.display(), d.name);
            }
        }
        Err(e) => println!("v4l2: {e}"),
    }
    match crate::camera::desktop::list_cameras() {
        Ok(list) if list.is_empty() => println!("nokhwa: no cameras"),
        Ok(list) => {
            for c in list {
                println!("nokhwa:{}\t{}\t{}", c.index, c.name, c.description);
            }
        }
        Err(e) => println!("nokhwa: {e}"),
    }
    Ok(())
}

/// Threshold: config file > calibration file (for this model) > bundle threshold.
fn resolve_threshold(cfg: &EdgeConfig, model: &LoadedModel) -> Result<(f32, String)> {
    if let Some(t) = cfg.fixed_threshold() {
        return Ok((t as f32, "policy.threshold in the config file".into()));
    }
    let cal_path = &cfg.model.calibration;
    if cal_path.exists() {
        let cal = Calibration::load(cal_path)?;
        if cal.model_sha256 != model.sha256 {
            bail!(
                "{}: calibrated for model {} but the loaded model is {} — run `fas-edge calibrate` again for this model (or remove the file to use the bundle's threshold)",
                cal_path.display(),
                &cal.model_sha256[..12.min(cal.model_sha256.len())],
                &model.sha256[..12]
            );
        }
        return Ok((
            cal.threshold as f32,
            format!("calibration {}", cal_path.display()),
        ));
    }
    match model.threshold(&cfg.model.threshold) {
        Some(t) => Ok((t as f32, format!("bundle threshold \"{}\"", cfg.model.threshold))),
        None => bail!(
            "no threshold: {} has no threshold \"{}\" and {} does not exist — run `fas-edge calibrate`, or set policy.threshold",
            model.origin,
            cfg.model.threshold,
            cal_path.display()
        ),
    }
}

/// The configured face detector.
fn detector(cfg: &EdgeConfig, model: &LoadedModel) -> Result<Box<dyn FaceDetector + Send>> {
    if cfg.detector.kind == DetectorKind::Mtcnn {
        let dir = cfg
            .detector
            .mtcnn_dir
            .clone()
            .or_else(|| packaged(&fas_core::MTCNN_FILES))
            .with_context(|| {
                format!(
                    "no MTCNN models: set detector.mtcnn_dir to the directory holding {}",
                    fas_core::MTCNN_FILES.join(", ")
                )
            })?;
        let mc = MtcnnConfig {
            min_face_size: cfg.detector.min_face_size,
            ..MtcnnConfig::default()
        };
        return Ok(Box::new(Mtcnn::load_dir(&dir, mc)?));
    }
    let rc = RetinaFaceConfig {
        max_side: cfg.detector.max_side,
        score_threshold: cfg.detector.score_threshold,
        ..RetinaFaceConfig::default()
    };
    if let Some(p) = &cfg.detector.model {
        return Ok(Box::new(RetinaFace::load(p, rc)?));
    }
    if let Some(bytes) = &model.detector_onnx {
        return Ok(Box::new(RetinaFace::from_onnx_bytes(
            format!("{}:detector.onnx", model.origin),
            bytes,
            rc,
        )?));
    }
    match default_detector() {
        Some(p) => Ok(Box::new(RetinaFace::load(p, rc)?)),
        None => bail!(
            "no face detector: set detector.model, ship detector.onnx in the bundle, or install /usr/share/fas/retinaface_mnet025.onnx"
        ),
    }
}

/// Builds the whole door from the config.
pub fn build_door(c: &Common, cfg: &EdgeConfig) -> Result<Door<Box<dyn FaceDetector + Send>>> {
    let model = LoadedModel::load(&model_source(c, cfg)?, cfg.model.allow_demo)?;
    let (threshold, from) = resolve_threshold(cfg, &model)?;
    let mut policy_cfg = cfg
        .policy_config(threshold)
        .map_err(|e| anyhow::anyhow!("policy: {e}"))?;
    // The trigger section decides how sessions start.
    policy_cfg.mode = match cfg.trigger {
        TriggerSection::Continuous => Mode::Continuous,
        _ => Mode::Triggered,
    };
    eprintln!(
        "fas-edge: model {} ({}), threshold {threshold:.4} from {from}, signer {}",
        model.name,
        &model.sha256[..12],
        model.signer.as_deref().unwrap_or("NONE (development)")
    );
    let tracker = Tracker::new(detector(cfg, &model)?, cfg.track_config())?;
    let policy = Policy::new(policy_cfg)?;
    let actuator = cfg
        .actuator
        .clone()
        .unwrap_or(ActuatorConfig::None)
        .build()?;
    if let Some(dir) = cfg
        .audit
        .path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let audit = AuditWriter::open_with(&cfg.audit.path, cfg.audit.fsync, cfg.audit.rotation())?;
    let display = match &cfg.display {
        DisplaySection::None => Display::None,
        DisplaySection::Framebuffer { device } => Display::Framebuffer(FbWriter::open(device)?),
        DisplaySection::Png(s) => Display::Png(Snapshots::new(s.clone())?),
    };
    Door::new(
        tracker,
        cfg.quality.to_config(),
        model,
        policy,
        actuator,
        audit,
        display,
    )
}

/// Limits for `run` (tests, demos).
#[derive(Debug, Clone, Default)]
pub struct RunLimits {
    pub max_frames: Option<u64>,
    pub max_decisions: Option<u64>,
}

/// Counts of what a run decided.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunSummary {
    pub frames: u64,
    pub grant: u64,
    pub deny: u64,
    pub no_decision: u64,
}

impl RunSummary {
    pub fn counts(&self) -> Counts {
        Counts {
            grant: self.grant,
            deny: self.deny,
            no_decision: self.no_decision,
        }
    }
}

/// `fas-edge [run]`.
pub fn run(c: &Common, limits: &RunLimits) -> Result<RunSummary> {
    let cfg = load_config(c)?;
    let mut door = build_door(c, &cfg)?;
    let mut source = open_source(c, &cfg)?;
    let triggers = crate::trigger::spawn(&cfg.trigger)?;
    let events = if c.json {
        EventFormat::Json
    } else {
        EventFormat::Text
    };
    door.events = events;
    let mut status = Status::new(source.describe(), door.model.sha256.clone());
    let mut status_file = c
        .status
        .clone()
        .or_else(|| cfg.status.path.clone())
        .map(|p| StatusFile::new(p, Duration::from_millis(cfg.status.every_ms)));
    eprintln!("fas-edge: ready — camera {}", source.describe());
    events.emit(&Event::Ready {
        time_ms: crate::camera::wall_ms_now(),
        camera: &source.describe(),
        model_sha256: &door.model.sha256,
    });
    if let Some(f) = &mut status_file {
        f.update(&mut status, true);
    }
    crate::signals::install();
    let mut notifier = crate::notify::Notifier::from_env();
    notifier.ready(&format!("camera {}", source.describe()));
    let mut summary = RunSummary::default();
    let result = (|| -> Result<()> {
        loop {
            notifier.pet();
            if let Some(f) = &mut status_file {
                let camera = if door.camera_down() {
                    CameraState::Down
                } else if summary.frames > 0 {
                    CameraState::Streaming
                } else {
                    CameraState::Starting
                };
                let counts = summary.counts();
                // A camera change or a new decision is written at once; the rest (fps,
                // frames) at most every `status.every_ms`, gathered only then.
                let changed = camera != status.camera || counts != status.decisions;
                if f.due(changed) {
                    status.camera = camera;
                    status.fps = door.fps();
                    status.frames = summary.frames;
                    status.decisions = counts;
                    status.last_decision = door.last_decision.clone();
                    f.update(&mut status, true);
                }
            }
            if crate::signals::requested() {
                eprintln!("fas-edge: stop requested; locking the door");
                door.abort(Reason::Timeout)?;
                break;
            }
            if let Some(rx) = &triggers {
                while rx.try_recv().is_ok() {
                    door.trigger()?;
                }
            }
            let frame = source.next_frame();
            if let Err(CaptureError::EndOfInput { .. }) = &frame {
                door.abort(Reason::Timeout)?;
                break;
            }
            if frame.is_ok() {
                summary.frames += 1;
            }
            let r = door.step(frame)?;
            if let Some(out) = r.outcome {
                match out.verdict.decision {
                    Decision::Grant => summary.grant += 1,
                    Decision::Deny => summary.deny += 1,
                    Decision::NoDecision => summary.no_decision += 1,
                }
            }
            let decisions = summary.grant + summary.deny + summary.no_decision;
            if limits.max_frames.is_some_and(|m| summary.frames >= m)
                || limits.max_decisions.is_some_and(|m| decisions >= m)
            {
                break;
            }
        }
        Ok(())
    })();
    door.lock();
    notifier.stopping();
    let counts = summary.counts();
    if let Some(f) = &mut status_file {
        status.running = false;
        status.frames = summary.frames;
        status.decisions = counts.clone();
        status.last_decision = door.last_decision.clone();
        f.update(&mut status, true);
    }
    events.emit(&Event::Stopped {
        time_ms: crate::camera::wall_ms_now(),
        frames: summary.frames,
        decisions: &counts,
    });
    result?;
    Ok(summary)
}

/// `calibration.json`, written by `fas-edge calibrate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    pub threshold: f64,
    pub target_bpcer: f64,
    /// BPCER / APCER measured on the calibration sessions at `threshold`.
    pub bpcer: f64,
    pub apcer: Option<f64>,
    pub bona_fide: Vec<f64>,
    pub attacks: Vec<f64>,
    pub model_sha256: String,
    pub time_ms: u64,
}

impl Calibration {
    pub fn load(path: &Path) -> Result<Calibration> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading calibration {}", path.display()))?;
        let c: Calibration = serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: not a fas-edge calibration file — run `fas-edge calibrate` again",
                path.display()
            )
        })?;
        if !(0.0..=1.0).contains(&c.threshold) || !c.threshold.is_finite() {
            bail!(
                "{}: field \"threshold\": {} is not in [0, 1] — run `fas-edge calibrate` again",
                path.display(),
                c.threshold
            );
        }
        Ok(c)
    }
}

/// The highest threshold that keeps BPCER (bona fide sessions scored below it) at or under
/// `target` on the calibration sessions.
pub fn fit_threshold(bona_fide: &[f64], target: f64) -> Option<f64> {
    let mut s: Vec<f64> = bona_fide
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(f64::total_cmp);
    // k bona fide sessions may fall below: the threshold is the (k+1)-th smallest score.
    let k = (target * s.len() as f64).floor() as usize;
    Some(s[k.min(s.len() - 1)])
}

/// Options of `fas-edge calibrate`.
#[derive(Debug, Clone)]
pub struct CalibrateOpts {
    pub bona_fide: usize,
    pub attacks: usize,
    pub target_bpcer: f64,
    pub out: Option<PathBuf>,
    pub report_png: Option<PathBuf>,
    /// Wait for Enter before each session (interactive); otherwise start at once.
    pub wait_for_enter: bool,
    /// Frames to give up a session after.
    pub max_frames_per_session: u64,
}

/// `fas-edge calibrate`: guided sessions in front of the device's own camera; each session
/// collects the policy's N good frames and aggregates them as the door would.
pub fn calibrate(c: &Common, o: &CalibrateOpts) -> Result<Calibration> {
    let cfg = load_config(c)?;
    if o.bona_fide < 3 {
        bail!(
            "--bona-fide {}: at least 3 bona fide sessions are needed to fit a threshold",
            o.bona_fide
        );
    }
    if !(0.0..1.0).contains(&o.target_bpcer) {
        bail!("--target-bpcer {}: must lie in [0, 1)", o.target_bpcer);
    }
    let model = LoadedModel::load(&model_source(c, &cfg)?, cfg.model.allow_demo)?;
    let sha = model.sha256.clone();
    let policy_cfg = cfg
        .policy_config(0.5)
        .map_err(|e| anyhow::anyhow!("policy: {e}"))?;
    let mut tracker = Tracker::new(detector(&cfg, &model)?, cfg.track_config())?;
    let quality = cfg.quality.to_config();
    let mut cropper = crate::crop::FaceCropper::new(model.preprocess.clone())?;
    let mut model = model;
    let mut source = open_source(c, &cfg)?;
    let stdin = std::io::stdin();
    let mut session = |kind: &str, k: usize, n: usize| -> Result<Option<f64>> {
        println!(
            "calibrate: session {k}/{n}: present a {kind} to the camera{}",
            if o.wait_for_enter {
                ", then press Enter"
            } else {
                ""
            }
        );
        if o.wait_for_enter {
            let mut line = String::new();
            stdin.lock().read_line(&mut line)?;
        }
        let mut scores = Vec::new();
        let mut seen = 0u64;
        while scores.len() < policy_cfg.frames && seen < o.max_frames_per_session {
            let frame = match source.next_frame() {
                Ok(f) => f,
                Err(CaptureError::EndOfInput { .. }) => {
                    bail!("calibration input ended during session {k}")
                }
                Err(e) if e.is_lost() => bail!("camera lost during calibration: {e}"),
                Err(_) => continue,
            };
            seen += 1;
            let faces = tracker.update(&frame)?;
            let [det] = faces.faces.as_slice() else {
                continue;
            };
            if crate::quality::assess(&frame.image, det, &quality).is_err() {
                continue;
            }
            let face = fas_core::preprocess::Face {
                bbox: det.bbox,
                landmarks: det.landmarks,
                score: det.score,
            };
            let input = cropper.crop(&frame.image, &face)?;
            scores.push(model.model.score(input)?);
        }
        if scores.len() < policy_cfg.frames {
            println!(
                "calibrate: session {k}: only {} good frames in {seen} — skipped",
                scores.len()
            );
            return Ok(None);
        }
        let agg = policy_cfg.aggregate.apply(&scores).map(f64::from);
        println!(
            "calibrate: session {k}: aggregate p_live {:.4}",
            agg.unwrap_or(f64::NAN)
        );
        Ok(agg)
    };
    let mut bona = Vec::new();
    for k in 1..=o.bona_fide {
        bona.extend(session("LIVE (bona fide) face", k, o.bona_fide)?);
    }
    let mut attacks = Vec::new();
    for k in 1..=o.attacks {
        attacks.extend(session(
            "presentation ATTACK (photo, screen, mask)",
            k,
            o.attacks,
        )?);
    }
    let threshold = fit_threshold(&bona, o.target_bpcer).context(
        "no bona fide session produced enough good frames — check lighting and distance",
    )?;
    let bpcer = bona.iter().filter(|&&s| s < threshold).count() as f64 / bona.len() as f64;
    let apcer = (!attacks.is_empty())
        .then(|| attacks.iter().filter(|&&s| s >= threshold).count() as f64 / attacks.len() as f64);
    let cal = Calibration {
        threshold,
        target_bpcer: o.target_bpcer,
        bpcer,
        apcer,
        bona_fide: bona,
        attacks,
        model_sha256: sha,
        time_ms: crate::camera::wall_ms_now(),
    };
    println!(
        "calibrate: threshold {:.4} for BPCER ≤ {:.1}% ({} bona fide sessions, measured BPCER {:.1}%){}",
        cal.threshold,
        100.0 * o.target_bpcer,
        cal.bona_fide.len(),
        100.0 * cal.bpcer,
        cal.apcer.map_or(String::new(), |a| format!(", APCER {:.1}% on {} attack sessions", 100.0 * a, cal.attacks.len()))
    );
    let out = o
        .out
        .clone()
        .unwrap_or_else(|| cfg.model.calibration.clone());
    fas_core::atomic::write_atomic(&out, serde_json::to_string_pretty(&cal)?.as_bytes())
        .with_context(|| format!("writing {}", out.display()))?;
    println!("calibrate: wrote {}", out.display());
    if let Some(png) = &o.report_png {
        fas_core::plot::score_histogram_png(
            png,
            "fas-edge calibration",
            &cal.bona_fide,
            &cal.attacks,
            &[("threshold", cal.threshold)],
            20,
        )?;
        println!("calibrate: histogram {}", png.display());
    }
    Ok(cal)
}

/// `fas-edge audit verify`: the log and its rotated files, as one chain.
pub fn audit_verify(path: &Path) -> Result<()> {
    let log = fas_core::audit::verify_log(path)?;
    if log.files.is_empty() {
        anyhow::bail!(
            "{}: no such audit log (nor rotated {}.1, …) — check the path (audit.path in the config)",
            path.display(),
            path.display()
        );
    }
    let s = &log.summary;
    let kept = if s.first_seq > 0 {
        format!(
            " (records before seq {} were rotated away; the chain is checked from there)",
            s.first_seq
        )
    } else {
        String::new()
    };
    println!(
        "{}: OK — {} records in {} file(s), seq {}..{}, chain head {}{kept}",
        path.display(),
        s.records,
        log.files.len(),
        s.first_seq,
        s.next_seq,
        s.head
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_keeps_bpcer_at_or_under_the_target() {
        let live = [0.9, 0.2, 0.8, 0.95, 0.7, 0.85, 0.6, 0.99, 0.75, 0.65];
        // 10 sessions, 10 %: one may fall below → the second smallest.
        assert_eq!(fit_threshold(&live, 0.1), Some(0.6));
        // 0 %: none may fall below → the smallest.
        assert_eq!(fit_threshold(&live, 0.0), Some(0.2));
        assert_eq!(fit_threshold(&[], 0.1), None);
        assert_eq!(fit_threshold(&[f64::NAN, 0.5], 0.0), Some(0.5));
        for target in [0.0, 0.05, 0.1, 0.3, 0.5] {
            let t = fit_threshold(&live, target).unwrap();
            let below = live.iter().filter(|&&s| s < t).count() as f64 / live.len() as f64;
            assert!(below <= target + 1e-12, "{target}: {below}");
        }
    }
}
