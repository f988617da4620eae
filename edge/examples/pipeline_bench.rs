//! The door's per-frame pipeline, timed stage by stage at 640×480 on one core, against the
//! same algorithm written in Python + onnxruntime on the same frames in the same run; and
//! a memory soak.
//!
//! ```text
//! cargo run --release -p fas-edge --example pipeline_bench -- \
//!     --bundle DEMO.fasb --keys KEYS/ [--frames 300] [--seed 5] [--max-side 640]
//!     [--python PY] [--soak N] [--no-pin] [--face-model assets/dlib_face_resnet.onnx]
//! ```
//! `cargo xtask bench-edge` runs it on the demo bundle of `cargo xtask guest`.
//!
//! Frames are SynthFAS camera frames encoded as YUYV, as a USB camera sends them; they are
//! rendered before timing starts (rendering is the camera's work, not the door's). The
//! process is pinned to one CPU; tract runs single-threaded. Stages, as `Door::step` runs
//! them: YUYV → RGB, detect/track, quality gates, aligned crop + normalise, liveness model,
//! policy. Two Rust runs:
//! - `every`: the detector on every frame (the like-for-like comparison with Python, which
//!   has no tracker);
//! - `tracked`: the door's default tracking (detector at least every 5th frame).
//!
//! The Python reference (`edge/bench/ort_pipeline.py`, onnxruntime with one intra-op
//! thread) decodes the same YUYV bytes, runs RetinaFace with the same priors, decoding and
//! NMS, the same Umeyama alignment and bilinear warp, and the same liveness ONNX. It skips
//! the quality gates and the policy (so the comparison favours it). Its `p_live` per frame
//! is compared with Rust's. Needs `numpy` and `onnxruntime` (the project venv has both);
//! without them the reference is skipped and said so.
//!
//! `--soak N` then runs the tracked pipeline over N frames (cycling through the rendered
//! ones) and samples the resident set size (VmRSS) 20 times; peak RSS must not grow after
//! warm-up.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fas_core::bundle::{DETECTOR_FILE, LIVENESS_FILE};
use fas_core::preprocess::{Face, RgbImage};
use fas_core::synthfas::yuyv::rgb_to_yuyv;
use fas_core::synthfas::SyntheticCamera;
use fas_edge::camera::convert::{to_rgb, Layout, PixelFormat};
use fas_edge::camera::Frame;
use fas_edge::crop::FaceCropper;
use fas_edge::model::{LoadedModel, ModelSource};
use fas_edge::policy::{Mode, Observation, Policy, PolicyConfig};
use fas_edge::quality::{self, QualityConfig};
use fas_edge::track::{TrackConfig, Tracker};
use fas_infer::bundle::{Bundle, TrustedKeys};
use fas_infer::detect::{RetinaFace, RetinaFaceConfig};
use fas_infer::embed::FaceEmbedder;

const WIDTH: u32 = 640;
const HEIGHT: u32 = 480;
/// Frames run before timing (the detector builds its optimised model for the frame size).
const WARMUP: usize = 10;
const STAGES: [&str; 7] = [
    "convert", "detect", "quality", "crop", "score", "policy", "embed",
];

struct Args {
    bundle: PathBuf,
    keys: PathBuf,
    detector: Option<PathBuf>,
    frames: usize,
    seed: u64,
    python: Option<PathBuf>,
    soak: usize,
    out: PathBuf,
    pin: bool,
    /// The detector's `max_side` (the door's `detector.max_side`).
    max_side: u32,
    /// Face verification on: every scored face is also embedded (`access.face_model`).
    face_model: Option<PathBuf>,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        bundle: PathBuf::new(),
        keys: PathBuf::new(),
        detector: None,
        frames: 300,
        seed: 5,
        python: None,
        soak: 0,
        out: std::env::temp_dir().join("fas-pipeline-bench"),
        pin: true,
        max_side: RetinaFaceConfig::default().max_side,
        face_model: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--no-pin" {
            a.pin = false;
            continue;
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        let num = |v: &str| -> Result<usize> {
            v.parse()
                .with_context(|| format!("{flag} {v}: not a whole number"))
        };
        match flag.as_str() {
            "--bundle" => a.bundle = value.into(),
            "--keys" => a.keys = value.into(),
            "--detector" => a.detector = Some(value.into()),
            "--frames" => a.frames = num(&value)?,
            "--seed" => a.seed = num(&value)? as u64,
            "--python" => a.python = Some(value.into()),
            "--soak" => a.soak = num(&value)?,
            "--out" => a.out = value.into(),
            "--max-side" => a.max_side = num(&value)? as u32,
            "--face-model" => a.face_model = Some(value.into()),
            other => {
                bail!("unknown option {other} (see the header of edge/examples/pipeline_bench.rs)")
            }
        }
    }
    if a.bundle.as_os_str().is_empty() || a.keys.as_os_str().is_empty() {
        bail!("--bundle and --keys are required (the demo bundle: `cargo xtask guest` writes $CARGO_TARGET_DIR/xtask-guest/demo/demo.fasb and keys/)");
    }
    if a.frames <= WARMUP {
        bail!("--frames must exceed the {WARMUP} warm-up frames");
    }
    Ok(a)
}

fn main() -> ExitCode {
    match parse_args().and_then(|a| run(&a)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pipeline_bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Pins this process to one CPU (the benchmark's "one core").
fn pin_to_one_cpu() -> Result<usize> {
    // SAFETY: sched_getcpu has no preconditions; the cpu_set_t is zeroed before use and
    // only passed by pointer with its own size.
    unsafe {
        let cpu = libc::sched_getcpu();
        if cpu < 0 {
            bail!("sched_getcpu failed");
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            bail!("sched_setaffinity: {}", std::io::Error::last_os_error());
        }
        Ok(cpu as usize)
    }
}

/// Everything the door runs per frame.
struct Pipeline {
    tracker: Tracker<RetinaFace>,
    quality: QualityConfig,
    cropper: FaceCropper,
    model: LoadedModel,
    policy: Policy,
    embedder: Option<FaceEmbedder>,
    /// Faces scored so far, and the policy's frames per session (when to embed).
    scored: usize,
    frames: usize,
}

impl Pipeline {
    fn new(a: &Args, track: TrackConfig) -> Result<Pipeline> {
        let model = LoadedModel::load(
            &ModelSource::Bundle {
                path: a.bundle.clone(),
                keys: a.keys.clone(),
            },
            true,
        )?;
        let rc = RetinaFaceConfig {
            max_side: a.max_side,
            ..RetinaFaceConfig::default()
        };
        let detector = match (&a.detector, &model.detector_onnx) {
            (Some(p), _) => RetinaFace::load(p, rc)?,
            (None, Some(bytes)) => {
                RetinaFace::from_onnx_bytes(format!("{}:{DETECTOR_FILE}", model.origin), bytes, rc)?
            }
            (None, None) => bail!(
                "{} ships no detector: pass --detector assets/retinaface_mnet025.onnx",
                a.bundle.display()
            ),
        };
        let threshold = model
            .thresholds
            .first()
            .map_or(0.5, |t| t.value as f32)
            .clamp(0.01, 0.9);
        let mut policy = PolicyConfig::with_threshold(threshold);
        policy.mode = Mode::Continuous;
        let policy_frames = policy.frames;
        Ok(Pipeline {
            tracker: Tracker::new(detector, track)?,
            quality: QualityConfig::default(),
            cropper: FaceCropper::new(model.preprocess.clone())?,
            policy: Policy::new(policy)?,
            model,
            embedder: a.face_model.as_ref().map(FaceEmbedder::load).transpose()?,
            scored: 0,
            frames: policy_frames,
        })
    }

    /// One frame; fills `times` (one per stage, zero for stages not reached) and returns
    /// the score when one face was scored.
    fn step(&mut self, seq: u64, yuyv: &[u8], times: &mut [Duration; 7]) -> Result<Option<f32>> {
        *times = [Duration::ZERO; 7];
        let t = Duration::from_millis(seq * 1000 / 30);
        let t_ms = t.as_millis() as u64;
        let mut clock = Instant::now();
        let mut lap = |i: usize, times: &mut [Duration; 7]| {
            let now = Instant::now();
            times[i] = now - clock;
            clock = now;
        };
        let image = to_rgb(&Layout::packed(PixelFormat::Yuyv, WIDTH, HEIGHT), yuyv)?;
        let frame = Frame {
            image,
            seq,
            t,
            dropped_before: 0,
            wall_ms: 0,
        };
        lap(0, times);
        let faces = self.tracker.update(&frame)?;
        lap(1, times);
        let (obs, score) = match faces.faces.as_slice() {
            [det] => {
                if quality::assess(&frame.image, det, &self.quality).is_err() {
                    lap(2, times);
                    (
                        Observation::Rejected {
                            t_ms,
                            why: String::new(),
                        },
                        None,
                    )
                } else {
                    lap(2, times);
                    let face = Face {
                        bbox: det.bbox,
                        landmarks: det.landmarks,
                        score: det.score,
                    };
                    let input = self.cropper.crop(&frame.image, &face)?;
                    lap(3, times);
                    let p_live = self.model.model.score(input)?;
                    lap(4, times);
                    // The door embeds a session's first and deciding frames (2 of `frames`).
                    let n = self.scored % self.frames;
                    self.scored += 1;
                    if let (Some(e), true) = (&self.embedder, n == 0 || n + 1 == self.frames) {
                        let img: image::RgbImage = frame.image.clone().into();
                        std::hint::black_box(e.embed_face(&img, det)?);
                        lap(6, times);
                    }
                    (
                        Observation::Score {
                            t_ms,
                            p_live,
                            track: 1,
                        },
                        Some(p_live),
                    )
                }
            }
            [] => (Observation::NoFace { t_ms }, None),
            _ => (Observation::MultipleFaces { t_ms }, None),
        };
        if self.policy.observe(obs).is_none() {
            self.policy.tick(t_ms);
        }
        lap(5, times);
        Ok(score)
    }
}

/// Nearest-rank percentile of `v` (sorted in place), in milliseconds.
fn percentile_ms(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((q / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

/// Per-stage times of one run, in milliseconds, one row per timed frame.
struct Timings {
    name: String,
    rows: Vec<[f64; 7]>,
}

impl Timings {
    fn stage(&self, i: usize) -> Vec<f64> {
        // A stage not reached on a frame (no face → no crop) is not a sample of it.
        self.rows
            .iter()
            .map(|r| r[i])
            .filter(|&v| v > 0.0)
            .collect()
    }
    /// Frame → score: every stage up to and including the liveness model.
    fn to_score(&self) -> Vec<f64> {
        self.rows
            .iter()
            .filter(|r| r[4] > 0.0)
            .map(|r| r[..5].iter().sum())
            .collect()
    }
    fn total(&self) -> Vec<f64> {
        self.rows.iter().map(|r| r.iter().sum()).collect()
    }
    fn fps(&self) -> f64 {
        1000.0 * self.rows.len() as f64 / self.total().iter().sum::<f64>()
    }
}

fn run_frames(
    a: &Args,
    track: TrackConfig,
    name: &str,
    frames: &[Vec<u8>],
) -> Result<(Timings, Vec<Option<f32>>, Pipeline)> {
    let mut p = Pipeline::new(a, track)?;
    let mut rows = Vec::with_capacity(frames.len());
    let mut scores = Vec::with_capacity(frames.len());
    let mut times = [Duration::ZERO; 7];
    for (i, f) in frames.iter().enumerate() {
        let s = p.step(i as u64, f, &mut times)?;
        scores.push(s);
        if i >= WARMUP {
            rows.push(times.map(|d| d.as_secs_f64() * 1e3));
        }
    }
    Ok((
        Timings {
            name: name.into(),
            rows,
        },
        scores,
        p,
    ))
}

fn render_frames(seed: u64, n: usize, start: u64) -> Vec<Vec<u8>> {
    let cam = SyntheticCamera::new(seed);
    (0..n as u64)
        .map(|i| {
            let f = cam.frame(start + i);
            let rgb = RgbImage::from(f.rgb);
            rgb_to_yuyv(&rgb.data, WIDTH as usize, HEIGHT as usize)
        })
        .collect()
}

fn print_table(runs: &[&Timings]) {
    print!("{:<10}", "stage ms");
    for r in runs {
        print!(" {:>20}", format!("{} p50 / p99", r.name));
    }
    println!();
    let row = |label: &str, cols: Vec<Vec<f64>>| {
        print!("{label:<10}");
        for mut c in cols {
            if c.is_empty() {
                print!(" {:>20}", "–");
            } else {
                let (p50, p99) = (percentile_ms(&mut c, 50.0), percentile_ms(&mut c, 99.0));
                print!(" {:>20}", format!("{p50:.2} / {p99:.2}"));
            }
        }
        println!();
    };
    for (i, s) in STAGES.iter().enumerate() {
        row(s, runs.iter().map(|r| r.stage(i)).collect());
    }
    row("→score", runs.iter().map(|r| r.to_score()).collect());
    row("frame", runs.iter().map(|r| r.total()).collect());
    print!("{:<10}", "FPS");
    for r in runs {
        print!(" {:>20}", format!("{:.1}", r.fps()));
    }
    println!();
}

fn python_interpreter(a: &Args) -> PathBuf {
    if let Some(p) = &a.python {
        return p.clone();
    }
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        return Path::new(&venv).join("bin/python");
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    if local.exists() {
        return local;
    }
    PathBuf::from("python3")
}

/// Writes the frames, models and Rust results for the Python reference.
fn dump(
    a: &Args,
    frames: &[Vec<u8>],
    scores: &[Option<f32>],
    spec: &serde_json::Value,
) -> Result<()> {
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let keys = TrustedKeys::load(&a.keys)?;
    let b = Bundle::open(&a.bundle, &keys)?;
    let write = |name: &str, bytes: &[u8]| {
        let p = a.out.join(name);
        std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))
    };
    write("liveness.onnx", &b.files[LIVENESS_FILE])?;
    let detector = match (&a.detector, b.files.get(DETECTOR_FILE)) {
        (Some(p), _) => std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        (None, Some(d)) => d.clone(),
        (None, None) => bail!("no detector to hand to the Python reference"),
    };
    write("detector.onnx", &detector)?;
    write("frames.yuyv", &frames.concat())?;
    let rc = RetinaFaceConfig {
        max_side: a.max_side,
        ..RetinaFaceConfig::default()
    };
    let meta = serde_json::json!({
        "width": WIDTH,
        "height": HEIGHT,
        "frames": frames.len(),
        "warmup": WARMUP,
        "preprocess": spec,
        "detector": {
            "max_side": rc.max_side,
            "score_threshold": rc.score_threshold,
            "nms_iou": rc.nms_iou,
            "pre_nms_top_k": rc.pre_nms_top_k,
            "top_k": rc.top_k,
            "min_score": TrackConfig::default().min_score,
        },
        "rust_p_live": scores,
    });
    write("meta.json", serde_json::to_string(&meta)?.as_bytes())
}

/// Runs the Python reference; `None` (with the reason printed) when it cannot run here.
fn python_reference(a: &Args) -> Result<Option<(Timings, Vec<Option<f32>>)>> {
    let py = python_interpreter(a);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/ort_pipeline.py");
    // The child inherits this process's CPU affinity: the same single CPU.
    let out = match Command::new(&py).arg(&script).arg(&a.out).output() {
        Ok(o) => o,
        Err(e) => {
            println!(
                "python reference: not run ({}: {e}); pass --python",
                py.display()
            );
            return Ok(None);
        }
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("ModuleNotFoundError") || err.contains("No module named") {
            println!(
                "python reference: not run: {} lacks numpy/onnxruntime ({})",
                py.display(),
                err.lines().last().unwrap_or("")
            );
            return Ok(None);
        }
        bail!("{} {} failed: {err}", py.display(), script.display());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text
        .lines()
        .last()
        .context("python reference printed nothing")?;
    let v: serde_json::Value = serde_json::from_str(last).context("python reference output")?;
    let ms = |k: &str| -> Result<Vec<f64>> {
        v["stages"][k]
            .as_array()
            .with_context(|| format!("python output lacks stages.{k}"))?
            .iter()
            .map(|x| x.as_f64().context("a stage time that is not a number"))
            .collect()
    };
    let (conv, det, crop, score) = (ms("convert")?, ms("detect")?, ms("crop")?, ms("score")?);
    let rows = (0..conv.len())
        .map(|i| [conv[i], det[i], 0.0, crop[i], score[i], 0.0, 0.0])
        .collect();
    let p_live = v["p_live"]
        .as_array()
        .context("python output lacks p_live")?
        .iter()
        .map(|x| x.as_f64().map(|f| f as f32))
        .collect();
    println!(
        "python reference: {} (onnxruntime {}, numpy {})",
        py.display(),
        v["onnxruntime"].as_str().unwrap_or("?"),
        v["numpy"].as_str().unwrap_or("?")
    );
    Ok(Some((
        Timings {
            name: "python".into(),
            rows,
        },
        p_live,
    )))
}

/// VmRSS and VmHWM of this process, in KiB.
fn rss_kib() -> Result<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/self/status")?;
    let field = |k: &str| -> Result<u64> {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .with_context(|| format!("/proc/self/status has no {k}"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// The tracked pipeline over `a.soak` frames, cycling through `frames` (rendering a new
/// frame costs more than the door's whole pipeline; the door's state does not care).
fn soak(a: &Args, frames: &[Vec<u8>]) -> Result<()> {
    let mut p = Pipeline::new(a, TrackConfig::default())?;
    let samples = 20usize;
    let every = (a.soak / samples).max(1);
    let mut times = [Duration::ZERO; 7];
    let mut rss = Vec::new();
    let t0 = Instant::now();
    println!("soak: {} frames, VmRSS every {every}", a.soak);
    for i in 0..a.soak as u64 {
        p.step(i, &frames[i as usize % frames.len()], &mut times)?;
        if (i as usize + 1).is_multiple_of(every) {
            let (now, peak) = rss_kib()?;
            println!(
                "soak: frame {:>7}  VmRSS {:>7} KiB  VmHWM {:>7} KiB  {:>6.0} s",
                i + 1,
                now,
                peak,
                t0.elapsed().as_secs_f64()
            );
            rss.push((now, peak));
        }
    }
    // Warm-up is the first sample; later peaks must not climb.
    if let (Some(first), Some(last)) = (rss.first(), rss.last()) {
        let max_now = rss.iter().map(|r| r.0).max().unwrap_or(0);
        println!(
            "soak: VmRSS after warm-up {} KiB, at the end {} KiB, max {} KiB; VmHWM {} → {} KiB ({:+.1} %)",
            first.0,
            last.0,
            max_now,
            first.1,
            last.1,
            100.0 * (last.1 as f64 - first.1 as f64) / first.1 as f64
        );
    }
    Ok(())
}

fn run(a: &Args) -> Result<()> {
    if a.pin {
        let cpu = pin_to_one_cpu()?;
        println!("pinned to CPU {cpu}");
    }
    println!(
        "rendering {} SynthFAS camera frames ({WIDTH}×{HEIGHT}, seed {}) as YUYV; detector max_side {}",
        a.frames, a.seed, a.max_side
    );
    let frames = render_frames(a.seed, a.frames, 0);
    let every = TrackConfig {
        detect_every: 1,
        ..TrackConfig::default()
    };
    let (rust_every, scores, p) = run_frames(a, every, "every", &frames)?;
    let (rust_tracked, _, _) = run_frames(a, TrackConfig::default(), "tracked", &frames)?;
    let spec = {
        let m = &p.model;
        println!(
            "model {} ({}), input {:?}",
            m.name,
            &m.sha256[..12],
            m.preprocess
        );
        serde_json::to_value(&m.preprocess)?
    };
    dump(a, &frames, &scores, &spec)?;
    let reference = python_reference(a)?;
    println!();
    match &reference {
        Some((py, _)) => print_table(&[&rust_every, &rust_tracked, py]),
        None => print_table(&[&rust_every, &rust_tracked]),
    }
    if let Some((py, py_scores)) = &reference {
        let both: Vec<(f32, f32)> = scores
            .iter()
            .zip(py_scores)
            .filter_map(|(r, p)| Some(((*r)?, (*p)?)))
            .collect();
        let only = scores
            .iter()
            .zip(py_scores)
            .filter(|(r, p)| r.is_some() != p.is_some())
            .count();
        let max_diff = both
            .iter()
            .map(|(r, p)| (r - p).abs())
            .fold(0.0f32, f32::max);
        println!(
            "\nsame frames scored by both: {}; scored by one only: {only}; max |p_live(rust) − p_live(python)| {max_diff:.2e}",
            both.len()
        );
        println!(
            "ratio fps(rust every) / fps(python) = {:.2}; fps(rust tracked) / fps(python) = {:.2}",
            rust_every.fps() / py.fps(),
            rust_tracked.fps() / py.fps()
        );
    }
    if a.soak > 0 {
        println!();
        soak(a, &frames)?;
    }
    Ok(())
}
