//! Latency per frame of the RetinaFace detector (preprocess + tract + decode + NMS) and,
//! in the same run, of MTCNN (pyramid + P/R/O-Net cascade; `min_face_size` 40 as the door
//! uses it, and the library default 20).
//!
//! ```text
//! cargo run --release -p fas-infer --example bench_detect -- [RUNS] [MODEL.onnx] [PHOTO]
//! ```
//! Defaults: 50 runs, `$FAS_ASSETS` or `assets/` for `retinaface_mnet025.onnx` and
//! `astronaut.png`. The photo is resized to each benchmarked frame size; the optimised
//! model for that size is built before timing.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use fas_infer::detect::{FaceDetector, Mtcnn, MtcnnConfig, RetinaFace, RetinaFaceConfig};
use image::imageops::{self, FilterType};

const SIZES: [(u32, u32); 2] = [(320, 320), (640, 480)];

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_detect: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let runs: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(50)
        .max(1);
    let assets = std::env::var_os("FAS_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../assets")));
    let model = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| assets.join("retinaface_mnet025.onnx"));
    let photo = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| assets.join("astronaut.png"));
    let photo = image::open(&photo)
        .map_err(|e| format!("{}: {e} (run `cargo xtask assets`)", photo.display()))?
        .to_rgb8();

    let mut det = RetinaFace::load(&model, RetinaFaceConfig::default())?;
    println!("RetinaFace mobilenet-0.25, {runs} runs per size, 1 thread");
    for (w, h) in SIZES {
        let frame = imageops::resize(&photo, w, h, FilterType::Triangle);
        let t0 = Instant::now();
        det.prepare(w, h)?;
        let prepare = t0.elapsed();
        time(&mut det, &frame, runs, prepare)?;
    }
    let dir = model.parent().unwrap_or(Path::new("."));
    for min_face_size in [40.0, 20.0] {
        let mut m = Mtcnn::load_dir(
            dir,
            MtcnnConfig {
                min_face_size,
                ..MtcnnConfig::default()
            },
        )?;
        println!("MTCNN, min_face_size {min_face_size}, {runs} runs per size, 1 thread");
        for (w, h) in SIZES {
            let frame = imageops::resize(&photo, w, h, FilterType::Triangle);
            // The first frame builds the plans (one per pyramid level and stage).
            let t0 = Instant::now();
            m.detect(&frame)?;
            time(&mut m, &frame, runs, t0.elapsed())?;
        }
    }
    Ok(())
}

/// Times `runs` detections of `frame` and prints median, p99 and min.
fn time(
    det: &mut dyn FaceDetector,
    frame: &image::RgbImage,
    runs: usize,
    prepare: Duration,
) -> Result<(), Box<dyn std::error::Error>> {
    let (w, h) = frame.dimensions();
    let mut times: Vec<Duration> = Vec::with_capacity(runs);
    let mut faces = 0;
    for _ in 0..runs {
        let t = Instant::now();
        faces = det.detect(frame)?.len();
        times.push(t.elapsed());
    }
    times.sort();
    let pct = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!(
        "{w:>4}x{h:<4} median {:7.2} ms  p99 {:7.2} ms  min {:7.2} ms  (prepare {:.0} ms, {faces} face(s))",
        ms(pct(0.5)),
        ms(pct(0.99)),
        ms(times[0]),
        ms(prepare),
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
