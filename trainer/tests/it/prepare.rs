//! `prepare` on real media: a video encoded by the `ffmpeg` binary from real face photos
//! (astronaut, Grace Hopper) and plain gray frames, photos, and a corrupt file, with the
//! real RetinaFace detector.
//!
//! Needs `ffmpeg` on PATH and the assets of `$FAS_ASSETS` (else `<workspace>/assets`);
//! `cargo xtask setup` installs both. A missing one fails the test (it never skips).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use fas_core::dataset::{Label, Manifest, Sample, Split};
use fas_core::preprocess::{aligned_template, CropSpec};
use fas_core::synthfas::depth_path;
use fas_infer::detect::{FaceDetector, RetinaFace, RetinaFaceConfig};
use fas_train::prepare::{
    prepare, MediaKind, PrepareConfig, PrepareError, PrepareReport, CROP_MANIFEST, REPORT_FILE,
};
use image::{imageops, Rgb, RgbImage};

const W: u32 = 320;
const H: u32 = 240;
const GRAY: u8 = 128;

fn assets_dir() -> PathBuf {
    let dir = std::env::var_os("FAS_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../assets")));
    assert!(
        dir.is_dir(),
        "assets directory {} not found: run `cargo xtask setup` (or set FAS_ASSETS)",
        dir.display()
    );
    dir
}

fn asset(name: &str) -> PathBuf {
    let p = assets_dir().join(name);
    assert!(
        p.is_file(),
        "asset {} missing: run `cargo xtask setup`",
        p.display()
    );
    p
}

fn model() -> PathBuf {
    asset("retinaface_mnet025.onnx")
}

/// Runs `cmd`, failing the test with its stderr (or with the install hint when the
/// binary is missing).
fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {:?} ({e}): ffmpeg is missing — run `cargo xtask setup` (Debian package ffmpeg)",
            cmd.get_program()
        )
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn scratch(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "prepare-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A `W×H` frame: the photo scaled to `H×H` in the middle of a gray canvas.
fn face_frame(photo: &str) -> RgbImage {
    let img = image::open(asset(photo))
        .unwrap_or_else(|e| panic!("cannot decode {photo}: {e}"))
        .to_rgb8();
    // Grace Hopper is 512×600: keep the top square, where the face is.
    let side = img.width().min(img.height());
    let square = imageops::crop_imm(&img, 0, 0, side, side).to_image();
    let face = imageops::resize(&square, H, H, imageops::FilterType::Triangle);
    let mut canvas = RgbImage::from_pixel(W, H, Rgb([GRAY; 3]));
    imageops::overlay(&mut canvas, &face, i64::from((W - H) / 2), 0);
    canvas
}

fn gray_frame() -> RgbImage {
    RgbImage::from_pixel(W, H, Rgb([GRAY; 3]))
}

/// The 11 frames of the test video. With stride 2 the kept frames 0, 4, 8 show a face
/// and 2, 6, 10 are gray; the odd frames are the other way round, so a wrong stride or
/// an off-by-one in the frame index changes the counts.
fn clip_frames() -> Vec<RgbImage> {
    let (a, g) = (face_frame("astronaut.png"), face_frame("grace_hopper.jpg"));
    let x = gray_frame();
    vec![
        a.clone(), // 0
        x.clone(), // 1
        x.clone(), // 2
        a.clone(), // 3
        g.clone(), // 4
        x.clone(), // 5
        x.clone(), // 6
        g.clone(), // 7
        a.clone(), // 8
        x.clone(), // 9
        x.clone(), // 10
    ]
}

/// Encodes `frames` with ffmpeg (MPEG-4 part 2, 5 fps) into `out`, with `extra`
/// output options.
fn encode(frames: &[RgbImage], out: &Path, extra: &[&str]) {
    let dir = out.with_extension("frames");
    std::fs::create_dir_all(&dir).unwrap();
    for (i, f) in frames.iter().enumerate() {
        f.save(dir.join(format!("f{i:03}.png"))).unwrap();
    }
    run(Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-framerate", "5", "-i"])
        .arg(dir.join("f%03d.png"))
        .args(["-c:v", "mpeg4", "-q:v", "2", "-pix_fmt", "yuv420p"])
        .args(extra)
        .arg(out));
}

fn record(path: &str, video: &str, label: Label, attack: &str) -> Sample {
    Sample {
        v: 1,
        path: path.into(),
        label,
        attack: attack.into(),
        domain: "testset".into(),
        subject: "subject 7".into(),
        device: "phone".into(),
        split: Split::Dev,
        video: video.into(),
        frame: 0,
    }
}

fn config() -> PrepareConfig {
    PrepareConfig {
        stride: 2,
        max_frames: None,
        crop: CropSpec::Aligned { scale: 2.7 },
        size: 128,
        min_face_score: 0.8,
        min_face_size: 20.0,
        threads: 2,
        detect_max_side: 640,
        depth_prior: false,
    }
}

/// A dataset root with `clip.avi` (the 11-frame video), `photos/astronaut.png`,
/// `photos/gray.png` and `broken.avi` (not a video), and its source manifest.
fn dataset() -> (PathBuf, Manifest) {
    let root = scratch("root");
    encode(&clip_frames(), &root.join("clip.avi"), &[]);
    std::fs::create_dir_all(root.join("photos")).unwrap();
    std::fs::copy(asset("astronaut.png"), root.join("photos/astronaut.png")).unwrap();
    gray_frame().save(root.join("photos/gray.png")).unwrap();
    std::fs::write(
        root.join("broken.avi"),
        b"this is not a video at all".repeat(100),
    )
    .unwrap();
    let manifest = Manifest::new(vec![
        record("clip.avi", "testset/clip 1", Label::Spoof, "replay"),
        record("broken.avi", "testset/broken", Label::Live, "none"),
        record(
            "photos/astronaut.png",
            "photo-astronaut",
            Label::Live,
            "none",
        ),
        record("photos/gray.png", "photo-gray", Label::Live, "none"),
    ]);
    (root, manifest)
}

fn png_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn video_photos_and_a_corrupt_file() {
    let (root, sources) = dataset();
    let out = scratch("out");
    let report = prepare(&sources, &root, &out, &config(), &model()).unwrap();
    println!("{}", report.summary());

    // One report per source, in input order.
    let paths: Vec<&str> = report.sources.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "clip.avi",
            "broken.avi",
            "photos/astronaut.png",
            "photos/gray.png"
        ]
    );
    let [clip, broken, astro, gray] = &report.sources[..] else {
        unreachable!()
    };

    // The video: frames 0, 2, 4, 6, 8, 10 decoded; faces in 0, 4, 8 only.
    assert_eq!(clip.kind, Some(MediaKind::Video));
    assert_eq!((clip.width, clip.height), (W, H));
    assert_eq!(clip.frames, 6, "{clip:?}");
    assert_eq!(clip.faces, 3, "{clip:?}");
    assert_eq!((clip.no_face, clip.small_face, clip.reused), (3, 0, 0));
    assert_eq!(clip.no_face_frames, [2, 6, 10]);
    assert!(
        clip.crop_errors.is_empty() && clip.error.is_none(),
        "{clip:?}"
    );
    let clip_dir = out.join("testset/testset_clip_1");
    // No crop for the gray frames, no temporary files left behind.
    assert_eq!(
        png_files(&clip_dir),
        ["f00000.png", "f00004.png", "f00008.png"]
    );

    // The corrupt file is reported by name; the run went on.
    assert_eq!(broken.frames, 0);
    let err = broken.error.as_deref().expect("broken.avi must fail");
    assert!(err.contains("broken.avi"), "{err}");
    assert!(!out.join("testset/testset_broken").exists());

    // Photos are one frame each.
    assert_eq!(astro.kind, Some(MediaKind::Image));
    assert_eq!((astro.frames, astro.faces, astro.no_face), (1, 1, 0));
    assert_eq!((astro.width, astro.height), (512, 512));
    assert_eq!((gray.frames, gray.faces, gray.no_face), (1, 0, 1));
    assert_eq!(gray.no_face_frames, [0]);
    assert!(!out.join("testset/photo-gray").exists());

    let t = &report.totals;
    assert_eq!((t.sources, t.failed, t.frames), (4, 1, 8));
    assert_eq!((t.faces, t.no_face, t.small_face, t.reused), (4, 4, 0, 0));
    let summary = report.summary();
    assert!(summary.contains("broken.avi"), "{summary}");
    assert!(
        summary.contains("clip.avi: 3 of 6 frames without a face"),
        "{summary}"
    );

    // The crop manifest: one record per crop, metadata carried over, frame indices
    // from the video, paths relative to the output directory.
    let crops = Manifest::load(out.join(CROP_MANIFEST)).unwrap();
    let got: Vec<(&str, u32, &str)> = crops
        .samples
        .iter()
        .map(|s| (s.path.as_str(), s.frame, s.video.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("testset/testset_clip_1/f00000.png", 0, "testset/clip 1"),
            ("testset/testset_clip_1/f00004.png", 4, "testset/clip 1"),
            ("testset/testset_clip_1/f00008.png", 8, "testset/clip 1"),
            ("testset/photo-astronaut/f00000.png", 0, "photo-astronaut"),
        ]
    );
    for s in &crops.samples[..3] {
        let src = &sources.samples[0];
        assert_eq!(
            (s.label, &s.attack, &s.domain, &s.subject, &s.device, s.split),
            (
                src.label,
                &src.attack,
                &src.domain,
                &src.subject,
                &src.device,
                src.split
            )
        );
    }
    assert_eq!(crops.samples[3].label, Label::Live);

    // Every crop is size×size and shows a face (the detector finds one in it).
    let mut det = RetinaFace::load(model(), RetinaFaceConfig::default()).unwrap();
    for s in &crops.samples {
        let crop = image::open(out.join(&s.path)).unwrap().to_rgb8();
        assert_eq!(crop.dimensions(), (128, 128), "{}", s.path);
        let faces = det.detect(&crop).unwrap();
        assert!(faces.iter().any(|f| f.score > 0.8), "{}: {faces:?}", s.path);
    }

    // prepare.json holds the same report, complete.
    let text = std::fs::read_to_string(out.join(REPORT_FILE)).unwrap();
    let written: PrepareReport = serde_json::from_str(&text).unwrap();
    assert!(written.complete);
    assert_eq!(written, report);

    // One thread gives the same crops and manifest.
    let out1 = scratch("out1");
    let cfg1 = PrepareConfig {
        threads: 1,
        ..config()
    };
    let report1 = prepare(&sources, &root, &out1, &cfg1, &model()).unwrap();
    assert_eq!(report1.totals, report.totals);
    assert_eq!(
        std::fs::read(out1.join(CROP_MANIFEST)).unwrap(),
        std::fs::read(out.join(CROP_MANIFEST)).unwrap()
    );
    for s in &crops.samples {
        assert_eq!(
            std::fs::read(out1.join(&s.path)).unwrap(),
            std::fs::read(out.join(&s.path)).unwrap(),
            "{}",
            s.path
        );
    }

    // Re-running reuses every crop; a different configuration is refused.
    let again = prepare(&sources, &root, &out, &config(), &model()).unwrap();
    assert_eq!(again.totals.reused, 4);
    assert_eq!(again.totals.faces, 4);
    assert_eq!(again.sources[0].no_face_frames, [2, 6, 10]);
    assert_eq!(
        std::fs::read(out1.join(CROP_MANIFEST)).unwrap(),
        std::fs::read(out.join(CROP_MANIFEST)).unwrap()
    );
    let other = PrepareConfig {
        stride: 3,
        ..config()
    };
    match prepare(&sources, &root, &out, &other, &model()) {
        Err(e @ PrepareError::ConfigMismatch { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("stride") && msg.contains(REPORT_FILE), "{msg}");
        }
        other => panic!("expected a config mismatch, got {other:?}"),
    }
}

#[test]
fn max_frames_and_min_face_size() {
    let root = scratch("max");
    encode(&clip_frames(), &root.join("clip.mp4"), &[]);
    std::fs::copy(asset("astronaut.png"), root.join("astronaut.png")).unwrap();
    let sources = Manifest::new(vec![
        record("clip.mp4", "clip", Label::Live, "none"),
        record("astronaut.png", "astro", Label::Live, "none"),
    ]);

    let cfg = PrepareConfig {
        max_frames: Some(2),
        ..config()
    };
    let r = prepare(&sources, &root, &scratch("max-out"), &cfg, &model()).unwrap();
    let clip = &r.sources[0];
    assert_eq!(
        (clip.frames, clip.faces, clip.no_face),
        (2, 1, 1),
        "{clip:?}"
    );
    assert_eq!(clip.no_face_frames, [2]);

    // Stride 1: all 11 frames; faces in 0, 3, 4, 7, 8.
    let cfg = PrepareConfig {
        stride: 1,
        ..config()
    };
    let out = scratch("stride1-out");
    let r = prepare(&sources, &root, &out, &cfg, &model()).unwrap();
    assert_eq!((r.sources[0].frames, r.sources[0].faces), (11, 5));
    assert_eq!(r.sources[0].no_face_frames, [1, 2, 5, 6, 9, 10]);
    assert_eq!(
        png_files(&out.join("testset/clip")),
        [
            "f00000.png",
            "f00003.png",
            "f00004.png",
            "f00007.png",
            "f00008.png"
        ]
    );

    // Faces below min_face_size are found but not cropped.
    let cfg = PrepareConfig {
        min_face_size: 1000.0,
        ..config()
    };
    let out = scratch("small-out");
    let r = prepare(&sources, &root, &out, &cfg, &model()).unwrap();
    let astro = &r.sources[1];
    assert_eq!(
        (astro.frames, astro.faces, astro.no_face, astro.small_face),
        (1, 0, 0, 1)
    );
    assert_eq!(r.totals.faces, 0);
    assert!(Manifest::load(out.join(CROP_MANIFEST))
        .unwrap()
        .samples
        .is_empty());
    assert!(!out.join("testset/astro/f00000.png").exists());
}

#[test]
fn rotated_phone_video_is_decoded_upright() {
    let root = scratch("rot");
    // Stored a quarter turn clockwise, with the container's display matrix turning it
    // back, as phones record portrait video. (ffmpeg 5.1 sets the matrix only when
    // remuxing, hence the second step.)
    let stored: Vec<RgbImage> = clip_frames().iter().map(imageops::rotate90).collect();
    assert_eq!(stored[0].dimensions(), (H, W));
    encode(&stored, &root.join("stored.mp4"), &[]);
    run(Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(root.join("stored.mp4"))
        .args(["-c", "copy", "-metadata:s:v", "rotate=90"])
        .arg(root.join("phone.mp4")));
    let sources = Manifest::new(vec![
        record("phone.mp4", "phone", Label::Live, "none"),
        record("stored.mp4", "stored", Label::Live, "none"),
    ]);
    let r = prepare(&sources, &root, &scratch("rot-out"), &config(), &model()).unwrap();
    let s = &r.sources[0];
    assert_eq!((s.width, s.height), (W, H), "{s:?}");
    assert_eq!((s.frames, s.faces), (6, 3), "{s:?}");
    assert_eq!(s.no_face_frames, [2, 6, 10]);
    // Without the matrix the same stream stays sideways, at its stored size.
    assert_eq!((r.sources[1].width, r.sources[1].height), (H, W));
}

#[test]
fn every_source_failing_is_an_error() {
    let root = scratch("fail");
    std::fs::write(root.join("junk.mov"), [0u8; 4096]).unwrap();
    std::fs::write(root.join("notes.txt"), "hello").unwrap();
    let sources = Manifest::new(vec![
        record("junk.mov", "junk", Label::Live, "none"),
        record("missing.mp4", "missing", Label::Live, "none"),
        record("notes.txt", "notes", Label::Live, "none"),
    ]);
    let out = scratch("fail-out");
    match prepare(&sources, &root, &out, &config(), &model()) {
        Err(e @ PrepareError::AllFailed { count: 3, .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("junk.mov"), "{msg}");
        }
        other => panic!("expected AllFailed, got {other:?}"),
    }
    // The report is still written and names each file.
    let report: PrepareReport =
        serde_json::from_str(&std::fs::read_to_string(out.join(REPORT_FILE)).unwrap()).unwrap();
    let errors: Vec<&str> = report
        .sources
        .iter()
        .map(|s| s.error.as_deref().unwrap())
        .collect();
    assert!(errors[0].contains("junk.mov"), "{}", errors[0]);
    assert!(
        errors[1].contains("missing.mp4") && errors[1].contains("not found"),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].contains("notes.txt") && errors[2].contains("unknown media type"),
        "{}",
        errors[2]
    );
    assert!(Manifest::load(out.join(CROP_MANIFEST))
        .unwrap()
        .samples
        .is_empty());
}

#[test]
fn bad_inputs_are_refused_up_front() {
    let root = scratch("bad");
    let sources = Manifest::new(vec![record("a.png", "a", Label::Live, "none")]);
    let out = root.join("out");
    let err = prepare(&Manifest::default(), &root, &out, &config(), &model()).unwrap_err();
    assert!(matches!(err, PrepareError::NoSources), "{err}");
    let cfg = PrepareConfig {
        stride: 0,
        ..config()
    };
    let err = prepare(&sources, &root, &out, &cfg, &model()).unwrap_err();
    assert!(err.to_string().contains("stride"), "{err}");
    let err = prepare(&sources, &root, &out, &config(), &root.join("nope.onnx")).unwrap_err();
    assert!(err.to_string().contains("nope.onnx"), "{err}");
}

fn fas_train(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fas-train"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `fas-train prepare --depth-prior` through the binary: every live crop gets a depth map
/// of the crop's size peaking at the aligned nose, spoof crops get none; a re-run without
/// the flag is refused naming `depth_prior`, a re-run with it regenerates only a missing
/// map; and `train --backbone depthnet --depth-weight 1` runs on the prepared set.
#[test]
fn depth_prior_for_live_crops_then_depth_training() {
    const SIZE: u32 = 64;
    let root = scratch("depth");
    encode(&clip_frames(), &root.join("clip.avi"), &[]);
    for photo in ["astronaut.png", "grace_hopper.jpg"] {
        std::fs::copy(asset(photo), root.join(photo)).unwrap();
    }
    let rec = |path: &str, video: &str, label: Label, split: Split| {
        let attack = if label == Label::Live {
            "none"
        } else {
            "print"
        };
        Sample {
            split,
            ..record(path, video, label, attack)
        }
    };
    let sources = Manifest::new(vec![
        rec("clip.avi", "live-clip", Label::Live, Split::Train),
        rec("clip.avi", "spoof-clip", Label::Spoof, Split::Train),
        rec("astronaut.png", "astro-dev", Label::Live, Split::Dev),
        rec("grace_hopper.jpg", "grace-dev", Label::Spoof, Split::Dev),
        rec("astronaut.png", "astro-test", Label::Live, Split::Test),
        rec("grace_hopper.jpg", "grace-test", Label::Spoof, Split::Test),
    ]);
    let sources_path = root.join("sources.jsonl");
    sources.save(&sources_path).unwrap();
    let out = scratch("depth-out");
    let size = SIZE.to_string();
    let prepare_args = |depth: bool| {
        let mut a: Vec<String> = [
            "prepare",
            "--sources",
            sources_path.to_str().unwrap(),
            "--root",
            root.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--stride",
            "2",
            "--size",
            &size,
            "--threads",
            "2",
            "--detector",
            model().to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec();
        if depth {
            a.push("--depth-prior".into());
        }
        a
    };
    let run_prepare = |depth: bool| {
        let args = prepare_args(depth);
        fas_train(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let (ok, stdout, stderr) = run_prepare(true);
    assert!(ok, "prepare failed:\n{stderr}");
    assert!(stdout.contains("10 face crops (0 reused)"), "{stdout}");

    let crops = Manifest::load(out.join(CROP_MANIFEST)).unwrap();
    assert_eq!(crops.samples.len(), 10);
    let report: PrepareReport =
        serde_json::from_str(&std::fs::read_to_string(out.join(REPORT_FILE)).unwrap()).unwrap();
    assert!(report.config.depth_prior);
    let nose = aligned_template(SIZE, SIZE, 2.7)[2];
    let mut live = Vec::new();
    for s in &crops.samples {
        let map_path = depth_path(&out.join(&s.path));
        if s.label == Label::Spoof {
            assert!(!map_path.exists(), "{}: spoof crop has a depth map", s.path);
            continue;
        }
        let map = image::open(&map_path).unwrap_or_else(|e| panic!("{}: {e}", map_path.display()));
        assert_eq!(map.color(), image::ColorType::L8, "{}", s.path);
        let map = map.to_luma8();
        assert_eq!(map.dimensions(), (SIZE, SIZE), "{}", s.path);
        for (x, y) in [(0, 0), (SIZE - 1, 0), (0, SIZE - 1), (SIZE - 1, SIZE - 1)] {
            assert_eq!(map.get_pixel(x, y).0[0], 0, "{}: corner", s.path);
        }
        // The crop is aligned on the template, so the detected nose — the prior's peak —
        // lands near the template's nose.
        let (px, py, peak) = map
            .enumerate_pixels()
            .map(|(x, y, p)| (x, y, p.0[0]))
            .max_by_key(|&(x, y, v)| (v, std::cmp::Reverse((y, x))))
            .unwrap();
        assert!(peak >= 240, "{}: peak {peak}", s.path);
        let dist = (f64::from(px) - nose[0]).hypot(f64::from(py) - nose[1]);
        assert!(
            dist < 4.0,
            "{}: peak at ({px}, {py}), template nose {nose:?}",
            s.path
        );
        live.push(map_path);
    }
    assert_eq!(live.len(), 5);

    // A different setting is refused, naming it.
    let (ok, _, stderr) = run_prepare(false);
    assert!(
        !ok && stderr.contains("depth_prior: was true, now false"),
        "{stderr}"
    );
    // The same setting reuses every crop; a deleted map is made again, the crop reused.
    std::fs::remove_file(&live[0]).unwrap();
    let (ok, stdout, stderr) = run_prepare(true);
    assert!(ok, "prepare failed:\n{stderr}");
    assert!(stdout.contains("10 face crops (9 reused)"), "{stdout}");
    assert!(live[0].is_file());

    // Depth-supervised training reads the maps (live) and zeros (spoof).
    let run_dir = root.join("run");
    let manifest = out.join(CROP_MANIFEST);
    let (ok, _, stderr) = fas_train(&[
        "train",
        "--manifest",
        manifest.to_str().unwrap(),
        "--protocol",
        "intra",
        "--task",
        "all",
        "--backbone",
        "depthnet",
        "--depth-weight",
        "1",
        "--size",
        "64",
        "--width",
        "0.25",
        "--batch-size",
        "4",
        "--steps",
        "2",
        "--val-every",
        "2",
        "--workers",
        "1",
        "--device",
        "cpu",
        "--quiet",
        "--out",
        run_dir.to_str().unwrap(),
    ]);
    assert!(ok, "train failed:\n{stderr}");
    let log = std::fs::read_to_string(run_dir.join("log.jsonl")).unwrap();
    assert!(log.contains("\"depth\""), "depth loss not logged:\n{log}");
}
