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
use serde::Serialize;

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
use crate::trigger::TriggerEvent;
use crate::trust::calibration::{self, check_range, Calibration};
use crate::trust::revocation::Revocations;
use crate::trust::{self, device_key, state};

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
    /// The device's key and state directory (overrides device.key and device.state).
    pub device_dir: Option<PathBuf>,
}

/// The first of `$FAS_ASSETS` and `/usr/share/fas` (where boards install the detectors)
/// that holds all of `files` ([`fas_core::assets::find`]).
fn packaged(files: &[&str]) -> Result<PathBuf, fas_core::assets::AssetsError> {
    fas_core::assets::find(files, &[Path::new(fas_core::assets::PACKAGED_DIR)])
}

/// The packaged RetinaFace model.
fn default_detector() -> Result<PathBuf, fas_core::assets::AssetsError> {
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
    if let Some(d) = &c.device_dir {
        cfg.device = crate::config::DeviceSection::in_dir(d);
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

pub(crate) fn model_source(c: &Common, cfg: &EdgeConfig) -> Result<ModelSource> {
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
    // Every re-open must find the device the first open accepted (camera::identity).
    let pin = crate::camera::IdentityPin::default();
    if v.device.exists() {
        // A camera that is there but will not stream as configured (format, size) or is
        // not the expected device is a misconfigured door: fail at start-up, naming it.
        let r = Reconnect::open(
            label,
            move || V4l2Camera::open_pinned(&v, &pin),
            cfg.backoff(),
        )?;
        return Ok(Box::new(r));
    }
    // Not plugged in yet (a USB camera enumerating after boot, or unplugged): start
    // locked and keep trying with backoff, as after an unplug.
    eprintln!("fas-edge: camera {label} is not present; the door stays locked until it appears");
    let r = Reconnect::with_clock(
        label,
        move || V4l2Camera::open_pinned(&v, &pin),
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

/// Threshold: config file > calibration file (signed by this device, for this bundle) >
/// bundle threshold; whichever it is, never below the bundle's signed floor.
pub(crate) fn resolve_threshold(cfg: &EdgeConfig, model: &LoadedModel) -> Result<(f32, String)> {
    let floor = model.floor;
    if let Some(t) = cfg
        .fixed_threshold()
        .map_err(|e| anyhow::anyhow!("policy.{e}"))?
    {
        check_range(t, floor).map_err(|p| {
            anyhow::anyhow!(
                "policy.threshold in the config file: {p} — raise it, or remove it to use the calibration or the bundle's threshold"
            )
        })?;
        return Ok((t as f32, "policy.threshold in the config file".into()));
    }
    let cal_path = &cfg.model.calibration;
    if cal_path.exists() {
        let expect = calibration::Expect {
            bundle_sha256: &model.bundle_sha256,
            floor,
            key_path: &cfg.device.key,
        };
        let cal = calibration::load_verified(cal_path, &expect)?;
        return Ok((
            cal.threshold as f32,
            format!("calibration {}", cal_path.display()),
        ));
    }
    match model.threshold(&cfg.model.threshold) {
        Some(t) => {
            check_range(t, floor).map_err(|p| {
                anyhow::anyhow!("{}: threshold \"{}\": {p}", model.origin, cfg.model.threshold)
            })?;
            Ok((t as f32, format!("bundle threshold \"{}\"", cfg.model.threshold)))
        }
        None => bail!(
            "no threshold: {} has no threshold \"{}\" and {} does not exist — run `fas-edge calibrate`, or set policy.threshold",
            model.origin,
            cfg.model.threshold,
            cal_path.display()
        ),
    }
}

/// A detector file loaded from outside a signed bundle must be one the bundle pins; on the
/// development paths nothing is signed, so nothing is pinned.
fn check_pinned(model: &LoadedModel, path: &Path, bytes: &[u8]) -> Result<()> {
    if model.signer.is_none() {
        return Ok(());
    }
    let sha = fas_core::bundle::sha256_hex(bytes);
    if model.detector_pins.contains(&sha) {
        return Ok(());
    }
    if model.detector_pins.is_empty() {
        bail!(
            "{}: the signed bundle {} pins no face detector, so this one cannot be trusted — ship it in the bundle (`fas-quantize bundle --detector`) or pin it (`fas-quantize bundle --pin-detector`)",
            path.display(),
            model.origin
        );
    }
    bail!(
        "{}: sha256 {} is not a detector the signed bundle {} allows — a detector cannot be swapped; install the one the bundle pins, or rebuild the bundle with `--pin-detector`",
        path.display(),
        trust::short(&sha),
        model.origin
    )
}

fn read_pinned(model: &LoadedModel, path: &Path) -> Result<Vec<u8>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading face detector {}", path.display()))?;
    check_pinned(model, path, &bytes)?;
    Ok(bytes)
}

/// The configured face detector.
pub(crate) fn detector(
    cfg: &EdgeConfig,
    model: &LoadedModel,
) -> Result<Box<dyn FaceDetector + Send>> {
    if cfg.detector.kind == DetectorKind::Mtcnn {
        let dir = match &cfg.detector.mtcnn_dir {
            Some(d) => d.clone(),
            None => packaged(&fas_core::MTCNN_FILES).with_context(|| {
                format!(
                    "no MTCNN models: set detector.mtcnn_dir to the directory holding {}",
                    fas_core::MTCNN_FILES.join(", ")
                )
            })?,
        };
        // Checked, then loaded by path: swapping a file in between needs write access to
        // the (root-owned) detector directory.
        for f in fas_core::MTCNN_FILES {
            read_pinned(model, &dir.join(f))?;
        }
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
    let external = |p: &Path| -> Result<Box<dyn FaceDetector + Send>> {
        let bytes = read_pinned(model, p)?;
        Ok(Box::new(RetinaFace::from_onnx_bytes(
            p,
            &bytes,
            rc.clone(),
        )?))
    };
    if let Some(p) = &cfg.detector.model {
        return external(p);
    }
    if let Some(bytes) = &model.detector_onnx {
        return Ok(Box::new(RetinaFace::from_onnx_bytes(
            format!("{}:detector.onnx", model.origin),
            bytes,
            rc,
        )?));
    }
    let p = default_detector().context(
        "no face detector: set detector.model, ship detector.onnx in the bundle, or install /usr/share/fas/retinaface_mnet025.onnx",
    )?;
    external(&p)
}

/// Revocation and anti-rollback for the bundle about to run (reads only).
fn check_bundle(
    cfg: &EdgeConfig,
    src: &ModelSource,
    model: &LoadedModel,
) -> Result<Option<state::Verdict>> {
    let revoked = Revocations::load(&cfg.model.revoked)?;
    revoked
        .check(&model.bundle_sha256, model.signer.as_deref())
        .with_context(|| format!("{}: refused", model.origin))?;
    let ModelSource::Bundle { keys, .. } = src else {
        return Ok(None);
    };
    let keys = fas_infer::bundle::TrustedKeys::load(keys)
        .with_context(|| format!("trusted keys {}", keys.display()))?;
    let bundle = state::Candidate {
        version: model.bundle_version,
        manifest_sha256: &model.bundle_sha256,
    };
    let permit = cfg.model.downgrade.as_deref();
    state::check(&cfg.device.state, bundle, permit, &keys, &revoked)
        .with_context(|| format!("{}: refused", model.origin))
        .map(Some)
}

/// Everything start-up loads and checks — model, signature, expiry, revocation,
/// rollback, threshold (calibration), detector, policy — with nothing written and no
/// device opened. `check-config` runs exactly this.
pub struct Prepared {
    pub model: LoadedModel,
    pub threshold: f32,
    /// Where the threshold came from, for the log.
    pub threshold_from: String,
    pub detector: Box<dyn FaceDetector + Send>,
    pub policy: crate::policy::PolicyConfig,
    /// The anti-rollback verdict to record once the door runs (signed bundles only).
    rollback: Option<state::Verdict>,
}

pub fn prepare(c: &Common, cfg: &EdgeConfig) -> Result<Prepared> {
    let src = model_source(c, cfg)?;
    let model = LoadedModel::load(&src, cfg.model.allow_demo)?;
    let rollback = check_bundle(cfg, &src, &model)?;
    let (threshold, threshold_from) = resolve_threshold(cfg, &model)?;
    let mut policy = cfg
        .policy_config(threshold)
        .map_err(|e| anyhow::anyhow!("policy: {e}"))?;
    // The trigger section decides how sessions start.
    policy.mode = match cfg.trigger {
        // A door that reads credentials opens a session per credential.
        _ if cfg
            .access
            .as_ref()
            .is_some_and(|a| a.mode.needs_credential()) =>
        {
            Mode::Triggered
        }
        TriggerSection::Continuous => Mode::Continuous,
        _ => Mode::Triggered,
    };
    let detector = detector(cfg, &model)?;
    Ok(Prepared {
        model,
        threshold,
        threshold_from,
        detector,
        policy,
        rollback,
    })
}

/// `fas-edge check-config`: what start-up checks, without opening the door.
pub fn check_config(c: &Common) -> Result<Prepared> {
    let cfg = load_config(c)?;
    let p = prepare(c, &cfg)?;
    if let Some(a) = &cfg.actuator {
        a.validate()?;
    }
    // The access gate as start builds it: the face model, the store and its key.
    if let Some(a) = &cfg.access {
        crate::access::runtime::gate(a)?;
    }
    Ok(p)
}

/// `fas-edge lock`: drive the configured actuator to locked and exit (the unit's
/// `ExecStopPost=`, so the door locks after a crash, `kill -9` or `systemctl stop`).
pub fn lock(c: &Common) -> Result<&'static str> {
    // Only the [actuator] section: a config broken elsewhere must not keep the door from
    // locking after a crash.
    let actuator = match &c.config {
        Some(p) => crate::config::actuator_only(p)?,
        None => None,
    };
    let mut a = actuator
        .unwrap_or(ActuatorConfig::None)
        .build()
        .context("locking the door")?;
    a.lock().context("locking the door")?;
    Ok(a.name())
}

/// Builds the whole door from the config. The actuator is built (and the door locked)
/// before anything else is loaded, so a slow or failing start never leaves it open.
pub fn build_door(c: &Common, cfg: &EdgeConfig) -> Result<Door<Box<dyn FaceDetector + Send>>> {
    if let Some(ActuatorConfig::Gpio(g)) = &cfg.actuator {
        crate::notify::check_pulse_fits(
            Duration::from_millis(g.pulse_ms),
            crate::notify::watchdog_from_env(),
        )
        .map_err(anyhow::Error::msg)?;
    }
    let actuator = cfg
        .actuator
        .clone()
        .unwrap_or(ActuatorConfig::None)
        .build()?;
    let p = prepare(c, cfg)?;
    let model = p.model;
    eprintln!(
        "fas-edge: model {} ({}, bundle version {}), threshold {:.4} from {}, signer {}",
        model.name,
        trust::short(&model.sha256),
        model.bundle_version,
        p.threshold,
        p.threshold_from,
        model.signer.as_deref().unwrap_or("NONE (development)")
    );
    if let Some(v) = &p.rollback {
        if let state::Verdict::Downgrade { highest, signer } = v {
            eprintln!(
                "fas-edge: WARNING: running bundle version {} although version {highest} ran before, by the downgrade permit of key {signer}",
                model.bundle_version
            );
        }
        let bundle = state::Candidate {
            version: model.bundle_version,
            manifest_sha256: &model.bundle_sha256,
        };
        state::record(&cfg.device.state, bundle, v)?;
    }
    let tracker = Tracker::new(p.detector, cfg.track_config())?;
    let policy = Policy::new(p.policy)?;
    if let Some(dir) = cfg
        .audit
        .path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let audit = AuditWriter::open_with(&cfg.audit.path, cfg.audit.fsync, cfg.audit.rotation())?;
    if let Some(torn) = audit.recovered_tail() {
        eprintln!(
            "fas-edge: WARNING: the audit log's last record was cut short (a crash or power cut during a write); its bytes are kept in {} and the log goes on from the last whole record",
            torn.display()
        );
    }
    let display = match &cfg.display {
        DisplaySection::None => Display::None,
        DisplaySection::Framebuffer { device } => Display::Framebuffer(FbWriter::open(device)?),
        DisplaySection::Png(s) => Display::Png(Snapshots::new(s.clone())?),
    };
    let mut door = Door::new(
        tracker,
        cfg.quality.to_config(),
        model,
        policy,
        actuator,
        audit,
        display,
    )?;
    door.access = cfg
        .access
        .as_ref()
        .map(crate::access::runtime::gate)
        .transpose()?;
    if let Some(p) = &cfg.audit.syslog {
        door.forward = Some(
            crate::forward::SyslogForwarder::new(p)
                .with_context(|| format!("audit.syslog {}", p.display()))?,
        );
    }
    Ok(door)
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
    fn count(&mut self, d: Decision) {
        match d {
            Decision::Grant => self.grant += 1,
            Decision::Deny => self.deny += 1,
            Decision::NoDecision => self.no_decision += 1,
        }
    }

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
    let triggers = crate::trigger::spawn(&cfg.trigger, cfg.access.as_ref())?;
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
                while let Ok(ev) = rx.try_recv() {
                    let out = match ev {
                        TriggerEvent::Start => door.trigger()?,
                        TriggerEvent::Credential(read) => door.credential(read)?,
                    };
                    if let Some(out) = out {
                        summary.count(out.verdict.decision);
                    }
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
                summary.count(out.verdict.decision);
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
    let bundle_sha256 = model.bundle_sha256.clone();
    let floor = model.floor;
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
    let fitted = fit_threshold(&bona, o.target_bpcer).context(
        "no bona fide session produced enough good frames — check lighting and distance",
    )?;
    // The publisher's floor bounds what a device may calibrate to: below it, the fitted
    // threshold is raised to it (more bona fide rejections, never more attacks let in).
    let threshold = match floor {
        Some(f) if fitted < f => {
            println!(
                "calibrate: the fitted threshold {fitted:.4} is below the bundle's signed floor {f:.4}; using the floor (BPCER rises, the bar does not drop)"
            );
            f
        }
        _ => fitted,
    };
    let bpcer = bona.iter().filter(|&&s| s < threshold).count() as f64 / bona.len() as f64;
    let apcer = (!attacks.is_empty())
        .then(|| attacks.iter().filter(|&&s| s >= threshold).count() as f64 / attacks.len() as f64);
    let cal = Calibration {
        format_version: calibration::CALIBRATION_FORMAT,
        threshold,
        fitted_threshold: fitted,
        floor,
        target_bpcer: o.target_bpcer,
        bpcer,
        apcer,
        bona_fide: bona,
        attacks,
        model_sha256: sha,
        bundle_sha256,
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
    let key = device_key::load_or_create(&cfg.device.key)?;
    let signed = cal.clone().sign(&key);
    fas_core::atomic::write_atomic_private(&out, serde_json::to_string_pretty(&signed)?.as_bytes())
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
