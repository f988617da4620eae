//! Known-answer tests of the preprocessing pipeline against OpenCV
//! (fixtures from `fixtures/gen_preprocess.py`).
//!
//! Tolerances, and why:
//! * Colour conversions (HSV, YCrCb): exact — `color.rs` reproduces OpenCV's integer
//!   arithmetic.
//! * `cv2.resize` INTER_LINEAR: ±1 level — OpenCV uses 11-bit fixed-point weights, we
//!   use f64 and round to nearest.
//! * Similarity matrix vs the numpy Umeyama reference: 1e-4 absolute (it is the same
//!   least-squares solution; only rounding differs).
//! * `cv2.warpAffine` INTER_LINEAR/BORDER_CONSTANT: ±1 level on a smooth image — OpenCV
//!   quantises source coordinates to 1/32 pixel (INTER_BITS = 5) and weights to 15 bits;
//!   on a smooth image (steps ≤ ~12 levels/pixel) that moves results by < 1 level.
//!   On random noise the quantisation alone can move a value by ~8 levels, so there we
//!   compare against the float64 numpy reference of our own definition, also ±1 (ties
//!   at exactly .5 may round either way after float reassociation).

use fas_core::preprocess::*;
use serde_json::Value;

fn fixtures() -> Value {
    let text = include_str!("../fixtures/preprocess.json");
    serde_json::from_str(text).expect("fixture JSON")
}

fn bytes(v: &Value) -> Vec<u8> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| u8::try_from(x.as_u64().expect("int")).expect("u8"))
        .collect()
}

fn u32_of(v: &Value) -> u32 {
    v.as_u64().expect("int") as u32
}

fn image(fx: &Value, key: &str) -> RgbImage {
    RgbImage::new(u32_of(&fx["width"]), u32_of(&fx["height"]), bytes(&fx[key])).unwrap()
}

/// Asserts |a - b| <= tol elementwise; returns the max difference seen.
fn assert_close(what: &str, got: &[u8], want: &[u8], tol: u8) -> u8 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = 0;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let d = g.abs_diff(w);
        assert!(d <= tol, "{what}: byte {i} got {g} want {w} (tol {tol})");
        worst = worst.max(d);
    }
    worst
}

#[test]
fn resize_matches_opencv_within_one_level() {
    let fx = fixtures();
    let img = image(&fx, "random");
    for case in fx["resize"].as_array().unwrap() {
        let (w, h) = (u32_of(&case["width"]), u32_of(&case["height"]));
        let out = resize_bilinear(&img, w, h);
        assert_close(
            &format!("resize {w}x{h}"),
            &out.data,
            &bytes(&case["out"]),
            1,
        );
    }
}

fn color_case(fx: &Value, name: &str, space: ColorSpace) {
    let c = &fx[name];
    let img = image(fx, "random");
    assert_eq!(
        convert(&img, space).data,
        bytes(&c["random"]),
        "{name} random"
    );

    let levels: Vec<u8> = bytes(&fx["grid_levels"]);
    let mut grid = Vec::new();
    for &r in &levels {
        for &g in &levels {
            for &b in &levels {
                grid.extend(convert_pixel([r, g, b], space));
            }
        }
    }
    assert_eq!(grid, bytes(&c["grid"]), "{name} grid");

    let extra_in = bytes(&c["extra_in"]);
    let got: Vec<u8> = extra_in
        .chunks_exact(3)
        .flat_map(|p| convert_pixel([p[0], p[1], p[2]], space))
        .collect();
    assert_eq!(got, bytes(&c["extra"]), "{name} extra");
}

#[test]
fn hsv_matches_opencv_exactly() {
    color_case(&fixtures(), "hsv", ColorSpace::Hsv);
}

#[test]
fn ycrcb_matches_opencv_exactly() {
    color_case(&fixtures(), "ycrcb", ColorSpace::Ycrcb);
}

fn face_from(case: &Value) -> Face {
    let lm: Vec<[f32; 2]> = case["landmarks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| [p[0].as_f64().unwrap() as f32, p[1].as_f64().unwrap() as f32])
        .collect();
    Face {
        bbox: [0.0; 4],
        landmarks: lm.try_into().unwrap(),
        score: 1.0,
    }
}

#[test]
fn similarity_matches_umeyama_reference() {
    let fx = fixtures();
    for case in fx["aligned"].as_array().unwrap() {
        let face = face_from(case);
        let (w, h) = (u32_of(&case["width"]), u32_of(&case["height"]));
        let scale = case["scale"].as_f64().unwrap();
        let m = alignment_matrix(&face, w, h, scale).unwrap();
        for r in 0..2 {
            for c in 0..3 {
                let want = case["matrix"][r][c].as_f64().unwrap();
                assert!(
                    (m.m[r][c] - want).abs() < 1e-4,
                    "matrix[{r}][{c}] got {} want {want}",
                    m.m[r][c]
                );
            }
        }
    }
}

#[test]
fn aligned_warp_matches_opencv_and_reference() {
    let fx = fixtures();
    let smooth = image(&fx, "smooth");
    let random = image(&fx, "random");
    for (i, case) in fx["aligned"].as_array().unwrap().iter().enumerate() {
        let face = face_from(case);
        let (w, h) = (u32_of(&case["width"]), u32_of(&case["height"]));
        let crop = CropSpec::Aligned {
            scale: case["scale"].as_f64().unwrap() as f32,
        };
        let out = crop_face(&smooth, &face, crop, w, h).unwrap();
        assert_close(
            &format!("aligned {i} vs cv2.warpAffine"),
            &out.data,
            &bytes(&case["warp_smooth_cv2"]),
            1,
        );
        let out = crop_face(&random, &face, crop, w, h).unwrap();
        assert_close(
            &format!("aligned {i} vs float reference"),
            &out.data,
            &bytes(&case["warp_random_ref"]),
            1,
        );
    }
}

#[test]
fn box_crop_matches_opencv() {
    let fx = fixtures();
    for (i, case) in fx["box"].as_array().unwrap().iter().enumerate() {
        let img = image(&fx, case["image"].as_str().unwrap());
        let b: Vec<f32> = case["bbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let face = Face {
            bbox: b.try_into().unwrap(),
            landmarks: [[0.0; 2]; 5],
            score: 1.0,
        };
        let scale = case.get("scale").and_then(Value::as_f64).unwrap_or(1.0) as f32;
        let (w, h) = (u32_of(&case["width"]), u32_of(&case["height"]));
        let out = crop_face(&img, &face, CropSpec::Box { scale }, w, h).unwrap();
        assert_close(&format!("box {i}"), &out.data, &bytes(&case["out"]), 1);
    }
}

#[test]
fn full_pipeline_uses_the_same_crop_and_colour() {
    // preprocess() = crop_face + convert + (v/255 - mean)/std, channel-major.
    let fx = fixtures();
    let img = image(&fx, "random");
    let case = &fx["aligned"][1];
    let face = face_from(case);
    let spec = PreprocessSpec {
        crop: CropSpec::Aligned { scale: 2.7 },
        width: 20,
        height: 12,
        color: vec![ColorSpace::Rgb, ColorSpace::Hsv, ColorSpace::Ycrcb],
        normalize: Normalize::uniform(0.0, 1.0, 9),
    };
    let t = preprocess(&img, &face, &spec).unwrap();
    let crop = crop_face(&img, &face, spec.crop, 20, 12).unwrap();
    let plane = 240;
    for (g, space) in spec.color.iter().enumerate() {
        let conv = convert(&crop, *space);
        for c in 0..3 {
            for p in 0..plane {
                let want = f32::from(conv.data[p * 3 + c]) / 255.0;
                assert_eq!(t[(3 * g + c) * plane + p], want);
            }
        }
    }
}
