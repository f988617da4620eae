//! Fault injection through the whole door (`Door::step`): synthetic camera frames, the real
//! RetinaFace detector, a signed bundle, the policy, the `command` actuator and the audit
//! log. The liveness model is one that would grant every face it is shown (p_live ≈ 1), so
//! only the door's own fault handling can keep it locked: every injected fault — a corrupt
//! frame, a lost camera, a detector failure, a model whose output breaks contract 3 — must
//! end the session without a `Grant`, and the actuator must never run for it. Clean frames
//! before and after each fault phase must grant, so the test would see a grant that slipped
//! through.
//!
//! Start-up faults (missing bundle, bad config) are checked through `app::run`: they stop
//! the door before the actuator is built.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use fas_core::audit::{AuditWriter, FsyncPolicy};
use fas_core::decision::Decision;
use fas_edge::actuator::{ActuatorConfig, CommandConfig};
use fas_edge::camera::{CaptureError, FrameSource, SyntheticSource};
use fas_edge::door::{Display, Door};
use fas_edge::model::{LoadedModel, ModelSource};
use fas_edge::policy::{Mode, Policy, PolicyConfig, SessionOutcome};
use fas_edge::quality::QualityConfig;
use fas_edge::track::{TrackConfig, Tracker};
use fas_infer::detect::{DetectError, Detection, FaceDetector, RetinaFace, RetinaFaceConfig};
use fas_quantize::bundle::fixture::{write_tiny_bundle, TinyModel};

mod access;
mod trust;

/// `m`, pinning the detector assets `files` (a signed bundle trusts no other detector).
fn pinning(mut m: TinyModel, files: &[&str]) -> TinyModel {
    m.detector_sha256 = files
        .iter()
        .map(|f| fas_core::bundle::sha256_hex(&std::fs::read(asset(f)).unwrap()))
        .collect();
    m
}

fn asset(name: &str) -> PathBuf {
    let dir = std::env::var_os("FAS_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets"));
    let p = dir.join(name);
    assert!(
        p.is_file(),
        "asset {} missing: run `cargo xtask assets` (or set FAS_ASSETS)",
        p.display()
    );
    p
}

/// The real detector, failing on the frames the test chooses.
struct FailingDetector {
    inner: RetinaFace,
    fail: Arc<AtomicBool>,
}

impl FaceDetector for FailingDetector {
    fn detect(&mut self, frame: &image::RgbImage) -> Result<Vec<Detection>, DetectError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(DetectError::Run {
                path: "injected".into(),
                width: frame.width(),
                height: frame.height(),
                detail: "injected detector fault".into(),
            });
        }
        self.inner.detect(frame)
    }
}

struct Rig {
    door: Door<FailingDetector>,
    detector_fails: Arc<AtomicBool>,
    camera: SyntheticSource,
    started: std::time::Instant,
    /// One line per actuator run (the command hook runs for grants only).
    opened: PathBuf,
    audit: PathBuf,
    _dir: tempfile::TempDir,
}

fn rig(model: TinyModel) -> Rig {
    rig_with(model, Mode::Continuous)
}

fn rig_with(model: TinyModel, mode: Mode) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let tiny = write_tiny_bundle(dir.path(), &model).unwrap();
    let loaded = LoadedModel::load(
        &ModelSource::Bundle {
            path: tiny.bundle,
            keys: tiny.keys,
        },
        false,
    )
    .unwrap();
    let fail = Arc::new(AtomicBool::new(false));
    let detector = FailingDetector {
        inner: RetinaFace::load(
            asset("retinaface_mnet025.onnx"),
            RetinaFaceConfig {
                max_side: 320,
                ..RetinaFaceConfig::default()
            },
        )
        .unwrap(),
        fail: fail.clone(),
    };
    let tracker = Tracker::new(
        detector,
        TrackConfig {
            detect_every: 1,
            ..TrackConfig::default()
        },
    )
    .unwrap();
    let mut pc = PolicyConfig::with_threshold(0.5);
    pc.mode = mode;
    pc.frames = 3;
    // No cooldown: a session starts at the first face after a fault, so the next fault
    // lands inside a running session.
    pc.cooldown_ms = 0;
    let opened = dir.path().join("opened");
    let actuator = ActuatorConfig::Command(CommandConfig {
        program: "sh".into(),
        args: vec![
            "-c".into(),
            "cat >> \"$0\"; echo >> \"$0\"".into(),
            opened.display().to_string(),
        ],
        timeout_ms: 5000,
        every_decision: false,
    })
    .build()
    .unwrap();
    let audit = dir.path().join("audit.jsonl");
    let door = Door::new(
        tracker,
        QualityConfig::default(),
        loaded,
        Policy::new(pc).unwrap(),
        actuator,
        AuditWriter::open(&audit, FsyncPolicy::Never).unwrap(),
        Display::None,
    )
    .unwrap();
    Rig {
        door,
        detector_fails: fail,
        camera: SyntheticSource::new(21),
        started: std::time::Instant::now(),
        opened,
        audit,
        _dir: dir,
    }
}

/// How a frame is delivered.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    None,
    Corrupt,
    Lost,
    Detector,
}

impl Rig {
    /// Runs `frames` frames, injecting `fault` into the first and then every `every`-th
    /// (so a session left running by the previous phase ends at the first); returns the
    /// outcomes.
    fn run(&mut self, frames: usize, fault: Fault, every: usize) -> Vec<SessionOutcome> {
        let mut outcomes = Vec::new();
        for i in 0..frames {
            // Stamped on delivery, as a live camera's frames are: the door dates faults
            // (which carry no timestamp) on the same clock.
            let frame = self.camera.next_frame().map(|mut f| {
                f.t = self.started.elapsed();
                f
            });
            let inject = fault != Fault::None && i % every == 0;
            self.detector_fails
                .store(inject && fault == Fault::Detector, Ordering::SeqCst);
            let input = match (inject, fault) {
                (true, Fault::Corrupt) => Err(CaptureError::Corrupt {
                    device: "synthetic:21".into(),
                    detail: "injected: truncated buffer".into(),
                }),
                (true, Fault::Lost) => Err(CaptureError::Lost {
                    device: "synthetic:21".into(),
                    detail: "injected: device unplugged".into(),
                    os: None,
                }),
                _ => frame,
            };
            let report = self.door.step(input).unwrap();
            outcomes.extend(report.outcome);
        }
        self.detector_fails.store(false, Ordering::SeqCst);
        outcomes
    }

    fn actuator_runs(&self) -> usize {
        std::fs::read_to_string(&self.opened)
            .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
            .unwrap_or(0)
    }
}

fn grants(o: &[SessionOutcome]) -> usize {
    o.iter()
        .filter(|o| o.verdict.decision == Decision::Grant)
        .count()
}

#[test]
fn no_injected_fault_reaches_the_door_as_a_grant() {
    let mut r = rig(TinyModel::constant("grants-every-face", 9.0));
    let mut total = Vec::new();
    let clean = r.run(60, Fault::None, 1);
    assert!(
        grants(&clean) >= 1,
        "clean frames must grant with this model (else the test sees nothing): {clean:?}"
    );
    total.extend(clean);
    for fault in [Fault::Corrupt, Fault::Lost, Fault::Detector] {
        // A fault on every 3rd frame: no session can collect its 3 good frames between two.
        let faulty = r.run(45, fault, 3);
        assert_eq!(grants(&faulty), 0, "{fault:?}: {faulty:?}");
        assert!(
            faulty
                .iter()
                .any(|o| o.verdict.decision != Decision::Grant && o.frames_used > 0),
            "{fault:?}: the fault must end a running session: {faulty:?}"
        );
        let before = r.actuator_runs();
        // The door recovers once the fault is gone.
        let after = r.run(60, Fault::None, 1);
        assert!(
            grants(&after) >= 1,
            "{fault:?}: no grant after recovery: {after:?}"
        );
        assert_eq!(r.actuator_runs(), before + grants(&after));
        total.extend(faulty);
        total.extend(after);
    }
    // The actuator ran exactly for the grants; the audit log holds every decision.
    assert_eq!(r.actuator_runs(), grants(&total));
    let chain = fas_core::audit::verify_file(&r.audit).unwrap();
    assert_eq!(chain.records, total.len() as u64);
}

#[test]
fn a_model_breaking_the_score_contract_never_grants() {
    // Raw linear output 3.0: not a probability, so every scored frame is an inference
    // fault — even though "3.0 > threshold" would open a naive door.
    let mut r = rig(TinyModel {
        sigmoid: false,
        ..TinyModel::constant("raw-output", 3.0)
    });
    let out = r.run(90, Fault::None, 1);
    assert!(!out.is_empty(), "faces were shown: sessions must end");
    assert_eq!(grants(&out), 0, "{out:?}");
    assert_eq!(r.actuator_runs(), 0);
}

#[test]
fn start_up_faults_stop_the_door_before_it_runs() {
    use fas_edge::app::{run, Common, RunLimits};
    let dir = tempfile::tempdir().unwrap();
    let tiny = write_tiny_bundle(
        dir.path(),
        &pinning(
            TinyModel::constant("start", 9.0),
            &["retinaface_mnet025.onnx"],
        ),
    )
    .unwrap();
    let common = Common {
        camera: Some("synthetic:3".into()),
        bundle: Some(tiny.bundle.clone()),
        keys: Some(tiny.keys.clone()),
        detector: Some(asset("retinaface_mnet025.onnx")),
        audit: Some(dir.path().join("audit.jsonl")),
        calibration: Some(dir.path().join("none.json")),
        device_dir: Some(dir.path().join("device")),
        ..Common::default()
    };
    let limits = RunLimits {
        max_frames: Some(5),
        max_decisions: None,
    };
    run(&common, &limits).expect("the rig itself starts");
    let missing = dir.path().join("missing.fasb");
    let e = run(
        &Common {
            bundle: Some(missing.clone()),
            ..common.clone()
        },
        &limits,
    )
    .expect_err("a missing bundle must stop the door")
    .to_string();
    assert!(e.contains("missing.fasb"), "{e}");
    let config = dir.path().join("edge.toml");
    std::fs::write(&config, "[policy]\nframes = 0\n").unwrap();
    let e = format!(
        "{:#}",
        run(
            &Common {
                config: Some(config),
                ..common.clone()
            },
            &limits,
        )
        .expect_err("a bad config must stop the door")
    );
    assert!(e.contains("frames"), "{e}");
}

/// A frame captured before the trigger but delivered after it (queue latency on a slow
/// board) is not part of the session and must not look like time running backwards.
#[test]
fn frames_captured_before_a_trigger_do_not_spoil_its_session() {
    let mut r = rig_with(TinyModel::constant("triggered", 9.0), Mode::Triggered);
    let mut frame = |t_ms: u64| {
        let mut f = r.camera.next_frame().unwrap();
        f.t = std::time::Duration::from_millis(t_ms);
        f
    };
    let (a, b) = (frame(1000), frame(1020));
    let mut later: Vec<_> = (0..3).map(|_| frame(0)).collect();
    // The door maps the press to frame time as "last frame + wall time since": the press
    // lands at 1000 ms + (at most) the wall time from here, however slow the machine.
    let before_a = std::time::Instant::now();
    assert_eq!(
        r.door.step(Ok(a)).unwrap().outcome,
        None,
        "no session without a trigger"
    );
    std::thread::sleep(std::time::Duration::from_millis(120));
    assert_eq!(r.door.trigger().unwrap(), None, "the session opens");
    let press_bound = 1000 + before_a.elapsed().as_millis() as u64;
    // Captured at 1020 ms, before the press at ≥ 1120 ms: skipped.
    let rep = r.door.step(Ok(b)).unwrap();
    assert_eq!((rep.observation, rep.outcome), (None, None));
    for (i, f) in later.iter_mut().enumerate() {
        f.t = std::time::Duration::from_millis(press_bound + 10 + 33 * i as u64);
    }
    let outcomes: Vec<_> = later
        .into_iter()
        .filter_map(|f| r.door.step(Ok(f)).unwrap().outcome)
        .collect();
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert_eq!(
        outcomes[0].verdict.decision,
        Decision::Grant,
        "{outcomes:?}"
    );
    assert_eq!(outcomes[0].frames_used, 3);
}

/// `[detector] kind = "mtcnn"`: the door runs on MTCNN instead of RetinaFace and, with a
/// model that grants every face, grants the synthetic camera's faces (so MTCNN's boxes and
/// landmarks pass the quality gates and make aligned crops).
#[test]
fn the_door_runs_on_mtcnn() {
    use fas_edge::app::{run, Common, RunLimits};
    let dir = tempfile::tempdir().unwrap();
    let tiny = write_tiny_bundle(
        dir.path(),
        &pinning(
            TinyModel::constant("mtcnn-door", 9.0),
            &fas_core::MTCNN_FILES,
        ),
    )
    .unwrap();
    let assets = asset("mtcnn_pnet.onnx").parent().unwrap().to_path_buf();
    let config = dir.path().join("edge.toml");
    std::fs::write(
        &config,
        format!(
            "[detector]\nkind = \"mtcnn\"\nmtcnn_dir = \"{}\"\n",
            assets.display()
        ),
    )
    .unwrap();
    let s = run(
        &Common {
            config: Some(config),
            camera: Some("synthetic:3".into()),
            bundle: Some(tiny.bundle),
            keys: Some(tiny.keys),
            audit: Some(dir.path().join("audit.jsonl")),
            calibration: Some(dir.path().join("none.json")),
            device_dir: Some(dir.path().join("device")),
            ..Common::default()
        },
        &RunLimits {
            max_frames: Some(40),
            max_decisions: None,
        },
    )
    .unwrap();
    assert_eq!(s.frames, 40, "{s:?}");
    assert!(s.grant >= 1, "{s:?}");
}
