//! RetinaFace on real photos, and parity of its raw outputs with onnxruntime.
//!
//! Assets come from `$FAS_ASSETS`, else `<workspace>/assets`; `cargo xtask assets`
//! fetches them. A missing asset fails the test (it never skips).

use std::path::PathBuf;

use fas_infer::detect::nms::iou;
use fas_infer::detect::{DetectError, Detection, FaceDetector, RetinaFace, RetinaFaceConfig};
use image::RgbImage;

/// Face embedding (alignment, the network, verification on real photos).
#[path = "detect/embed.rs"]
mod embed;

fn assets_dir() -> PathBuf {
    let dir = std::env::var_os("FAS_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../assets")));
    assert!(
        dir.is_dir(),
        "assets directory {} not found: run `cargo xtask assets` (or set FAS_ASSETS)",
        dir.display()
    );
    dir
}

fn asset(name: &str) -> PathBuf {
    let p = assets_dir().join(name);
    assert!(
        p.is_file(),
        "asset {} missing: run `cargo xtask assets`",
        p.display()
    );
    p
}

fn photo(name: &str) -> RgbImage {
    image::open(asset(name))
        .unwrap_or_else(|e| panic!("cannot decode {name}: {e}"))
        .to_rgb8()
}

fn detector(config: RetinaFaceConfig) -> RetinaFace {
    RetinaFace::load(asset("retinaface_mnet025.onnx"), config).expect("load RetinaFace")
}

/// Landmarks inside the box, eyes ordered left-to-right in the image, eyes above the
/// nose above the mouth corners.
fn assert_plausible_face(d: &Detection) {
    let [x1, y1, x2, y2] = d.bbox;
    for [x, y] in d.landmarks {
        assert!(
            (x1..=x2).contains(&x) && (y1..=y2).contains(&y),
            "landmark outside box: {d:?}"
        );
    }
    let [le, re, nose, lm, rm] = d.landmarks;
    assert!(le[0] < re[0] && lm[0] < rm[0], "left/right swapped: {d:?}");
    assert!(
        le[1].max(re[1]) < nose[1] && nose[1] < lm[1].min(rm[1]),
        "{d:?}"
    );
}

#[test]
fn astronaut_has_one_face() {
    let faces = detector(Default::default())
        .detect(&photo("astronaut.png"))
        .unwrap();
    assert_eq!(faces.len(), 1, "{faces:?}");
    let f = &faces[0];
    assert!(f.score > 0.9, "{f:?}");
    // The face spans about x 178-273, y 57-177 (checked by eye; onnxruntime + the
    // reference decoder give [177.9, 56.8, 273.1, 177.2]).
    let [x1, y1, x2, y2] = f.bbox;
    assert!(
        (160.0..200.0).contains(&x1) && (250.0..295.0).contains(&x2),
        "{f:?}"
    );
    assert!(
        (40.0..80.0).contains(&y1) && (160.0..220.0).contains(&y2),
        "{f:?}"
    );
    assert!(iou(&f.bbox, &[177.9, 56.8, 273.1, 177.2]) > 0.9, "{f:?}");
    assert_plausible_face(f);
}

#[test]
fn grace_hopper_has_one_face() {
    let faces = detector(Default::default())
        .detect(&photo("grace_hopper.jpg"))
        .unwrap();
    assert_eq!(faces.len(), 1, "{faces:?}");
    assert!(
        iou(&faces[0].bbox, &[177.7, 106.5, 353.9, 327.7]) > 0.9,
        "{faces:?}"
    );
    assert_plausible_face(&faces[0]);
}

#[test]
fn downscaled_frames_map_back_to_frame_pixels() {
    // A 1024x1024 frame runs at 640x640 (max_side); boxes must come back in the
    // coordinates of the 1024 frame.
    let big = image::imageops::resize(
        &photo("astronaut.png"),
        1024,
        1024,
        image::imageops::FilterType::Triangle,
    );
    let faces = detector(Default::default()).detect(&big).unwrap();
    assert_eq!(faces.len(), 1, "{faces:?}");
    let expected = [177.9 * 2.0, 56.8 * 2.0, 273.1 * 2.0, 177.2 * 2.0];
    assert!(iou(&faces[0].bbox, &expected) > 0.85, "{faces:?}");
    assert_plausible_face(&faces[0]);
}

#[test]
fn solvay_finds_most_of_the_29_faces() {
    let img = photo("solvay_1927.png");
    for (max_side, at_least) in [(1024, 27), (640, 20)] {
        let config = RetinaFaceConfig {
            max_side,
            ..Default::default()
        };
        let faces = detector(config).detect(&img).unwrap();
        eprintln!("solvay_1927 at max_side {max_side}: {} faces", faces.len());
        assert!(
            faces.len() >= at_least,
            "max_side {max_side}: {}",
            faces.len()
        );
        assert!(faces.len() <= 29, "false positives: {}", faces.len());
        // All 29 sitters are in the upper 40 % of the print; the captions below hold none.
        for f in &faces {
            assert!(f.center()[1] < 0.4 * img.height() as f32, "{f:?}");
            assert!(f.score >= 0.5);
        }
    }
}

#[test]
fn blank_frames_have_no_face() {
    let mut det = detector(Default::default());
    for grey in [0u8, 128, 255] {
        let img = RgbImage::from_pixel(640, 480, image::Rgb([grey; 3]));
        let faces = det.detect(&img).unwrap();
        assert!(faces.is_empty(), "grey {grey}: {faces:?}");
    }
}

#[test]
fn empty_frame_is_an_error() {
    let e = detector(Default::default())
        .detect(&RgbImage::new(0, 0))
        .unwrap_err();
    assert!(matches!(e, DetectError::EmptyFrame { .. }), "{e:?}");
}

#[test]
fn odd_and_tiny_sizes_run() {
    let mut det = detector(RetinaFaceConfig {
        cached_sizes: 1,
        ..Default::default()
    });
    for (w, h) in [(1, 1), (33, 17), (333, 517)] {
        let img = RgbImage::from_pixel(w, h, image::Rgb([90, 80, 70]));
        det.detect(&img).unwrap_or_else(|e| panic!("{w}x{h}: {e}"));
    }
}

#[derive(serde::Deserialize)]
struct Golden {
    input_shape: [usize; 4],
    num_priors: usize,
    priors: Vec<GoldenPrior>,
}

#[derive(serde::Deserialize)]
struct GoldenPrior {
    index: usize,
    loc: [f32; 4],
    conf: [f32; 2],
    landmarks: [f32; 10],
}

/// Raw tract outputs match onnxruntime's (`tests/fixtures/gen_retinaface.py`).
#[test]
fn raw_outputs_match_onnxruntime() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/retinaface_astronaut.json"
    );
    let golden: Golden = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let raw = detector(Default::default())
        .raw_outputs(&photo("astronaut.png"))
        .unwrap();
    assert_eq!(
        [1, 3, raw.height as usize, raw.width as usize],
        golden.input_shape
    );
    assert_eq!(raw.num_priors(), golden.num_priors);
    let mut worst = 0f32;
    for p in &golden.priors {
        let i = p.index;
        let pairs = [
            (&raw.loc[4 * i..4 * i + 4], &p.loc[..]),
            (&raw.conf[2 * i..2 * i + 2], &p.conf[..]),
            (&raw.landmarks[10 * i..10 * i + 10], &p.landmarks[..]),
        ];
        for (got, want) in pairs {
            for (g, w) in got.iter().zip(want) {
                worst = worst.max((g - w).abs());
                assert!(
                    (g - w).abs() <= 1e-3,
                    "prior {i}: tract {got:?} vs ort {want:?}"
                );
            }
        }
    }
    eprintln!(
        "max |tract - onnxruntime| over {} priors: {worst:e}",
        golden.priors.len()
    );
}

fn mtcnn() -> fas_infer::detect::Mtcnn {
    fas_infer::detect::Mtcnn::load_dir(assets_dir(), Default::default()).expect("load MTCNN")
}

/// MTCNN and RetinaFace are independent networks: on the portraits they must find the same
/// single face, with each landmark within a tenth of the face's width of RetinaFace's.
#[test]
fn mtcnn_agrees_with_retinaface_on_the_portraits() {
    let mut m = mtcnn();
    let mut r = detector(Default::default());
    for name in ["astronaut.png", "grace_hopper.jpg"] {
        let img = photo(name);
        let faces = m.detect(&img).unwrap();
        let reference = r.detect(&img).unwrap();
        assert_eq!(faces.len(), 1, "{name}: {faces:?}");
        let (f, g) = (&faces[0], &reference[0]);
        assert!(f.score > 0.9, "{name}: {f:?}");
        assert!(iou(&f.bbox, &g.bbox) > 0.5, "{name}: {f:?} vs {g:?}");
        let tol = 0.1 * g.width();
        for (a, b) in f.landmarks.iter().zip(&g.landmarks) {
            let d = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
            assert!(d < tol, "{name}: landmark {a:?} vs {b:?} ({d:.1} px)");
        }
        assert_plausible_face(f);
    }
}

#[test]
fn mtcnn_blank_frames_have_no_face() {
    let mut m = mtcnn();
    for grey in [0u8, 128, 255] {
        let img = RgbImage::from_pixel(320, 240, image::Rgb([grey; 3]));
        assert!(m.detect(&img).unwrap().is_empty(), "grey {grey}");
    }
    assert!(matches!(
        m.detect(&RgbImage::new(0, 0)),
        Err(DetectError::EmptyFrame { .. })
    ));
}
