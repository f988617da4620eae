//! Quality gates on real photos: faces found by RetinaFace in `$FAS_ASSETS` photos pass,
//! and the same faces blurred, darkened, shrunk or tilted fail the matching gate.
//!
//! Assets come from `$FAS_ASSETS`, else `<workspace>/assets` (`cargo xtask assets`); a
//! missing asset fails the test (it never skips).

use std::path::PathBuf;

use fas_core::preprocess::RgbImage;
use fas_edge::quality::{assess, measure, QualityConfig, Rejection};
use fas_infer::detect::{Detection, FaceDetector, RetinaFace, RetinaFaceConfig};

fn asset(name: &str) -> PathBuf {
    let dir = std::env::var_os("FAS_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../assets")));
    let p = dir.join(name);
    assert!(
        p.is_file(),
        "asset {} missing: run `cargo xtask assets` (or set FAS_ASSETS)",
        p.display()
    );
    p
}

/// The photo and its best face.
fn photo_face(name: &str) -> (RgbImage, Detection) {
    let img = image::open(asset(name))
        .unwrap_or_else(|e| panic!("cannot decode {name}: {e}"))
        .to_rgb8();
    let mut det = RetinaFace::load(
        asset("retinaface_mnet025.onnx"),
        RetinaFaceConfig::default(),
    )
    .expect("load RetinaFace");
    let faces = det.detect(&img).unwrap();
    assert!(!faces.is_empty(), "no face in {name}");
    (img.into(), faces[0])
}

/// Box blur of radius `r` (a `(2r+1)²` mean), separable, clamped at the border.
fn box_blur(img: &RgbImage, r: i64) -> RgbImage {
    let (w, h) = (img.width as i64, img.height as i64);
    let pass = |src: &RgbImage, dx: i64, dy: i64| {
        RgbImage::from_fn(src.width, src.height, |x, y| {
            let mut acc = [0u32; 3];
            for k in -r..=r {
                let sx = (x as i64 + k * dx).clamp(0, w - 1) as u32;
                let sy = (y as i64 + k * dy).clamp(0, h - 1) as u32;
                let p = src.pixel(sx, sy);
                for c in 0..3 {
                    acc[c] += u32::from(p[c]);
                }
            }
            acc.map(|v| (v / (2 * r as u32 + 1)) as u8)
        })
    };
    pass(&pass(img, 1, 0), 0, 1)
}

fn scale_pixels(img: &RgbImage, f: f32) -> RgbImage {
    RgbImage {
        data: img
            .data
            .iter()
            .map(|&v| (f32::from(v) * f).round().min(255.0) as u8)
            .collect(),
        ..img.clone()
    }
}

#[test]
fn real_photos_pass() {
    let cfg = QualityConfig::default();
    for name in ["grace_hopper.jpg", "astronaut.png"] {
        let (img, face) = photo_face(name);
        let m = measure(&img, &face).unwrap();
        println!("{name}: {m:?}");
        assert_eq!(assess(&img, &face, &cfg), Ok(()), "{name}: {m:?}");
    }
}

#[test]
fn blurred_photo_fails_sharpness() {
    let (img, face) = photo_face("grace_hopper.jpg");
    let sharp = measure(&img, &face).unwrap().sharpness;
    let blurred = box_blur(&img, 8);
    let m = measure(&blurred, &face).unwrap();
    println!("sharpness {sharp} → {}", m.sharpness);
    assert!(m.sharpness < sharp / 4.0);
    match assess(&blurred, &face, &QualityConfig::default()) {
        Err(Rejection::Blurred { measured, min }) => assert!(measured < min),
        other => panic!("expected a sharpness rejection, got {other:?}"),
    }
}

#[test]
fn darkened_photo_fails_exposure_and_brightened_too() {
    let (img, face) = photo_face("astronaut.png");
    let dark = scale_pixels(&img, 0.2);
    let r = assess(&dark, &face, &QualityConfig::default()).unwrap_err();
    assert!(matches!(r, Rejection::TooDark { .. }), "{r}");
    assert_eq!(r.gate(), "exposure");
    let bright = scale_pixels(&img, 3.0);
    let r = assess(&bright, &face, &QualityConfig::default()).unwrap_err();
    assert!(
        matches!(r, Rejection::TooBright { .. } | Rejection::Clipped { .. }),
        "{r}"
    );
}

#[test]
fn downscaled_photo_fails_size() {
    let (img, face) = photo_face("grace_hopper.jpg");
    let f = 0.2;
    let small: RgbImage = image::imageops::resize(
        &image::RgbImage::from(img.clone()),
        (img.width as f32 * f) as u32,
        (img.height as f32 * f) as u32,
        image::imageops::FilterType::Triangle,
    )
    .into();
    let mut tiny = face;
    for v in &mut tiny.bbox {
        *v *= f;
    }
    for l in &mut tiny.landmarks {
        *l = [l[0] * f, l[1] * f];
    }
    let r = assess(&small, &tiny, &QualityConfig::default()).unwrap_err();
    assert!(matches!(r, Rejection::EyesTooClose { .. }), "{r}");
    assert!(r.to_string().starts_with("face too small:"), "{r}");
}

#[test]
fn rotated_landmarks_fail_roll() {
    let (img, face) = photo_face("grace_hopper.jpg");
    let c = face.center();
    let (s, co) = 40f32.to_radians().sin_cos();
    let mut tilted = face;
    for l in &mut tilted.landmarks {
        let (x, y) = (l[0] - c[0], l[1] - c[1]);
        *l = [co * x - s * y + c[0], s * x + co * y + c[1]];
    }
    match assess(&img, &tilted, &QualityConfig::default()) {
        Err(Rejection::Roll { measured, max }) => {
            let base = measure(&img, &face).unwrap().pose.roll;
            assert!((measured - base - 40.0).abs() < 0.5, "{measured} vs {base}");
            assert_eq!(max, QualityConfig::default().max_roll_deg);
        }
        other => panic!("expected a roll rejection, got {other:?}"),
    }
}

#[test]
fn face_cut_by_the_frame_border_fails_visibility() {
    let (img, face) = photo_face("astronaut.png");
    let w = face.width();
    let mut moved = face;
    moved.bbox[0] -= face.bbox[0] + 0.5 * w;
    moved.bbox[2] = moved.bbox[0] + w;
    let r = assess(&img, &moved, &QualityConfig::default()).unwrap_err();
    assert!(matches!(r, Rejection::OutsideFrame { .. }), "{r}");
}
