//! Face verification: the similarity-transform estimator (properties), parity of the
//! alignment and of the dlib ResNet in tract with an independent NumPy reference
//! (`fixtures/gen_embed.py` → `fixtures/embed_dlib.json`, `fixtures/embed_input.png`), and
//! same-person-above-different-person on real photos.
//!
//! Assets come from `$FAS_ASSETS`, else `<workspace>/assets`; `cargo xtask assets`
//! fetches them. A missing asset fails the test (it never skips).

use std::path::PathBuf;

use fas_infer::detect::{FaceDetector, RetinaFace};
use fas_infer::embed::{
    align_face, similarity, EmbedError, FaceEmbedder, Similarity, DLIB_TEMPLATE, EMBEDDING_DIM,
    INPUT_SIZE,
};
use proptest::prelude::*;

use super::{asset, photo};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name)
}

fn embedder() -> FaceEmbedder {
    FaceEmbedder::load(asset("dlib_face_resnet.onnx")).expect("load the face embedder")
}

#[derive(serde::Deserialize)]
struct Transform {
    a: f64,
    b: f64,
    tx: f64,
    ty: f64,
}

#[derive(serde::Deserialize)]
struct Golden {
    landmarks: [[f32; 2]; 5],
    template: [[f32; 2]; 5],
    transform: Transform,
    raw: Vec<f32>,
    embedding: Vec<f32>,
}

fn golden() -> Golden {
    let text = std::fs::read_to_string(fixture("embed_dlib.json")).expect("embed_dlib.json");
    serde_json::from_str(&text).expect("parse embed_dlib.json")
}

#[test]
fn template_and_transform_match_the_numpy_umeyama() {
    let g = golden();
    for (ours, theirs) in DLIB_TEMPLATE.iter().zip(&g.template) {
        assert!(
            (ours[0] - theirs[0]).abs() < 1e-3 && (ours[1] - theirs[1]).abs() < 1e-3,
            "{ours:?} vs {theirs:?}"
        );
    }
    let t = Similarity::estimate(&g.landmarks, &DLIB_TEMPLATE).unwrap();
    // The template constants are rounded to 1e-4 px; the NumPy one is not.
    assert!((t.a - g.transform.a).abs() < 1e-5, "{t:?}");
    assert!((t.b - g.transform.b).abs() < 1e-5, "{t:?}");
    assert!((t.tx - g.transform.tx).abs() < 1e-3, "{t:?}");
    assert!((t.ty - g.transform.ty).abs() < 1e-3, "{t:?}");
}

#[test]
fn alignment_matches_the_numpy_warp() {
    // The reference decodes the JPEG with libjpeg (PIL), we with the image crate: their
    // pixels differ by a few levels, so the comparison is statistical; a wrong transform
    // or sampling convention moves the mean difference by tens of levels.
    let g = golden();
    let ours = align_face(&photo("grace_hopper.jpg"), &g.landmarks).unwrap();
    let theirs = image::open(fixture("embed_input.png")).unwrap().to_rgb8();
    assert_eq!(ours.dimensions(), (INPUT_SIZE, INPUT_SIZE));
    assert_eq!(theirs.dimensions(), (INPUT_SIZE, INPUT_SIZE));
    let diffs: Vec<i32> = ours
        .as_raw()
        .iter()
        .zip(theirs.as_raw())
        .map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs())
        .collect();
    let mean = diffs.iter().sum::<i32>() as f64 / diffs.len() as f64;
    let max = diffs.iter().copied().max().unwrap();
    assert!(mean < 0.5 && max <= 8, "mean |diff| {mean}, max {max}");
}

#[test]
fn embedding_matches_the_numpy_forward_pass() {
    let g = golden();
    assert_eq!(g.embedding.len(), EMBEDDING_DIM);
    let input = image::open(fixture("embed_input.png")).unwrap().to_rgb8();
    let e = embedder().embed(&input).unwrap();
    assert_eq!(e.len(), EMBEDDING_DIM);
    let max = e
        .iter()
        .zip(&g.embedding)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(max < 1e-5, "max |tract - numpy| = {max}");
    let norm: f32 = g.raw.iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!(norm > 0.5, "reference raw norm {norm}");
    assert!((e.iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-5);
}

#[test]
fn a_model_with_another_hash_is_refused() {
    let dir = std::env::temp_dir().join(format!("fas-embed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("not_the_model.onnx");
    std::fs::write(&path, b"not an onnx file").unwrap();
    let e = FaceEmbedder::load(&path).unwrap_err();
    assert!(matches!(e, EmbedError::Sha256 { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("not_the_model.onnx") && msg.contains("cargo xtask assets"),
        "{msg}"
    );
    let e = FaceEmbedder::load(dir.join("missing.onnx")).unwrap_err();
    assert!(matches!(e, EmbedError::Io { .. }), "{e:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The largest face's embedding in `name`.
fn embed_photo(detector: &mut RetinaFace, embedder: &FaceEmbedder, name: &str) -> Vec<f32> {
    let img = photo(name);
    let dets = detector.detect(&img).unwrap();
    let d = dets
        .iter()
        .max_by(|a, b| a.area().total_cmp(&b.area()))
        .unwrap_or_else(|| panic!("no face in {name}"));
    embedder.embed_face(&img, d).unwrap()
}

#[test]
fn same_person_scores_above_different_people() {
    let mut detector =
        RetinaFace::load(asset("retinaface_mnet025.onnx"), Default::default()).unwrap();
    let embedder = embedder();
    let obama: Vec<_> = ["obama.jpg", "obama2.jpg", "obama3.jpg"]
        .iter()
        .map(|n| embed_photo(&mut detector, &embedder, n))
        .collect();
    let others: Vec<_> = ["biden.jpg", "grace_hopper.jpg", "astronaut.png"]
        .iter()
        .map(|n| embed_photo(&mut detector, &embedder, n))
        .collect();
    let mut genuine = Vec::new();
    for i in 0..obama.len() {
        for j in i + 1..obama.len() {
            genuine.push(similarity(&obama[i], &obama[j]));
        }
    }
    let mut impostor = Vec::new();
    for o in &obama {
        for x in &others {
            impostor.push(similarity(o, x));
        }
    }
    for i in 0..others.len() {
        for j in i + 1..others.len() {
            impostor.push(similarity(&others[i], &others[j]));
        }
    }
    let gmin = genuine.iter().copied().fold(f32::INFINITY, f32::min);
    let imax = impostor.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    assert!(
        gmin > imax,
        "genuine {genuine:?} must all exceed impostor {impostor:?}"
    );
}

/// Points of a face-like layout, each coordinate in `[-range, range]`.
fn points(range: f32) -> impl Strategy<Value = [[f32; 2]; 5]> {
    prop::array::uniform5(prop::array::uniform2(-range..range))
}

/// Spread (sum of squared distances to the centroid) of `pts`.
fn spread(pts: &[[f32; 2]; 5]) -> f64 {
    let (mx, my) = pts.iter().fold((0.0, 0.0), |(x, y), p| {
        (x + f64::from(p[0]) / 5.0, y + f64::from(p[1]) / 5.0)
    });
    pts.iter()
        .map(|p| (f64::from(p[0]) - mx).powi(2) + (f64::from(p[1]) - my).powi(2))
        .sum()
}

fn sq_residual(t: &Similarity, src: &[[f32; 2]; 5], dst: &[[f32; 2]; 5]) -> f64 {
    src.iter()
        .zip(dst)
        .map(|(p, q)| {
            let [x, y] = t.apply([f64::from(p[0]), f64::from(p[1])]);
            (x - f64::from(q[0])).powi(2) + (y - f64::from(q[1])).powi(2)
        })
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// An exact similarity is recovered from the points it maps.
    #[test]
    fn recovers_an_exact_similarity(
        src in points(200.0),
        scale in 0.05f64..20.0,
        angle in -3.1f64..3.1,
        tx in -500.0f64..500.0,
        ty in -500.0f64..500.0,
    ) {
        prop_assume!(spread(&src) > 1.0);
        let truth = Similarity { a: scale * angle.cos(), b: scale * angle.sin(), tx, ty };
        let dst = src.map(|p| {
            let [x, y] = truth.apply([f64::from(p[0]), f64::from(p[1])]);
            [x as f32, y as f32]
        });
        let t = Similarity::estimate(&src, &dst).unwrap();
        let tol = 1e-3 * (1.0 + scale);
        prop_assert!((t.scale() - scale).abs() < tol, "{t:?} vs {truth:?}");
        let da = (t.angle() - angle + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU)
            - std::f64::consts::PI;
        prop_assert!(da.abs() < 1e-3, "{t:?} vs {truth:?}");
        prop_assert!(sq_residual(&t, &src, &dst).sqrt() < 1e-2 * (1.0 + scale), "{t:?}");
    }

    /// Least squares: no nearby similarity fits noisy points better, and the inverse
    /// undoes the transform.
    #[test]
    fn is_a_least_squares_minimum(
        src in points(100.0),
        dst in points(100.0),
        da in -0.01f64..0.01,
        db in -0.01f64..0.01,
        dt in prop::array::uniform2(-0.5f64..0.5),
    ) {
        prop_assume!(spread(&src) > 1.0);
        let t = Similarity::estimate(&src, &dst).unwrap();
        let best = sq_residual(&t, &src, &dst);
        let nudged = Similarity { a: t.a + da, b: t.b + db, tx: t.tx + dt[0], ty: t.ty + dt[1] };
        prop_assert!(best <= sq_residual(&nudged, &src, &dst) + 1e-6 * (1.0 + best));
        if let Some(inv) = t.inverse() {
            let p = [12.5, -7.25];
            let q = inv.apply(t.apply(p));
            prop_assert!((q[0] - p[0]).abs() < 1e-6 * (1.0 + t.scale().recip()));
            prop_assert!((q[1] - p[1]).abs() < 1e-6 * (1.0 + t.scale().recip()));
        }
    }

    /// Moving, turning and scaling the detected face does not change the aligned
    /// transform's target: estimate(T(src), dst) composed with T equals estimate(src, dst).
    #[test]
    fn is_equivariant(
        src in points(100.0),
        scale in 0.2f64..5.0,
        angle in -3.1f64..3.1,
        shift in prop::array::uniform2(-300.0f64..300.0),
    ) {
        prop_assume!(spread(&src) > 100.0);
        let m = Similarity { a: scale * angle.cos(), b: scale * angle.sin(), tx: shift[0], ty: shift[1] };
        let moved = src.map(|p| {
            let [x, y] = m.apply([f64::from(p[0]), f64::from(p[1])]);
            [x as f32, y as f32]
        });
        let direct = Similarity::estimate(&src, &DLIB_TEMPLATE).unwrap();
        let via = Similarity::estimate(&moved, &DLIB_TEMPLATE).unwrap();
        for p in [[0.0, 0.0], [50.0, -20.0], [-30.0, 80.0]] {
            let a = direct.apply(p);
            let b = via.apply(m.apply(p));
            prop_assert!((a[0] - b[0]).abs() < 1e-2 && (a[1] - b[1]).abs() < 1e-2, "{a:?} vs {b:?}");
        }
    }
}
