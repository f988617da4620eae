//! The tracker with the real RetinaFace on real photos (shifted crops simulate motion),
//! a group photo and SynthFAS camera frames.
//!
//! Assets come from `$FAS_ASSETS`, else `<workspace>/assets` (`cargo xtask assets`); a
//! missing asset fails the test (it never skips).

use std::path::PathBuf;
use std::time::Duration;

use fas_core::preprocess::RgbImage;
use fas_edge::camera::{Frame, FrameSource, SyntheticSource};
use fas_edge::track::{DetectReason, Faces, TrackConfig, Tracker};
use fas_infer::detect::nms::iou;
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

fn retinaface() -> RetinaFace {
    RetinaFace::load(
        asset("retinaface_mnet025.onnx"),
        RetinaFaceConfig::default(),
    )
    .expect("load RetinaFace")
}

fn photo(name: &str) -> image::RgbImage {
    image::open(asset(name))
        .unwrap_or_else(|e| panic!("cannot decode {name}: {e}"))
        .to_rgb8()
}

fn frame(img: RgbImage, i: u64) -> Frame {
    Frame {
        image: img,
        seq: i,
        t: Duration::from_secs_f64(i as f64 / 30.0),
        dropped_before: 0,
        wall_ms: 0,
    }
}

/// A `w x h` window of `img` with its top-left corner at `(x, y)`.
fn crop(img: &image::RgbImage, x: u32, y: u32, w: u32, h: u32) -> RgbImage {
    image::imageops::crop_imm(img, x, y, w, h).to_image().into()
}

fn centre_error(a: &Detection, b: &Detection) -> f32 {
    let (ca, cb) = (a.center(), b.center());
    (ca[0] - cb[0]).hypot(ca[1] - cb[1])
}

#[test]
fn static_face_is_detected_every_k_frames_and_tracked_between() {
    let img = photo("grace_hopper.jpg");
    let mut t = Tracker::new(
        retinaface(),
        TrackConfig {
            detect_every: 4,
            ..TrackConfig::default()
        },
    )
    .unwrap();
    let mut pattern = Vec::new();
    let mut first: Option<Detection> = None;
    for i in 0..9 {
        let faces = t.update(&frame(img.clone().into(), i)).unwrap();
        assert_eq!(faces.faces.len(), 1, "frame {i}: {faces:?}");
        let f = faces.faces[0];
        let d0 = *first.get_or_insert(f);
        assert!(centre_error(&f, &d0) < 1.0, "frame {i}");
        pattern.push(faces.detected);
    }
    assert_eq!(
        pattern,
        [true, false, false, false, true, false, false, false, true]
    );
    assert_eq!(t.last_detect_reason(), Some(DetectReason::Age));
}

/// A window sliding 3 px a frame over the photo: once two detections gave a velocity,
/// the constant-velocity prediction follows the face much better than holding the last
/// detection would, and stays within 4 % of the face size of a fresh detection.
#[test]
fn moving_face_is_predicted_with_constant_velocity() {
    let img = photo("grace_hopper.jpg");
    let (w, h) = (400, 480);
    let mut reference = retinaface();
    let mut t = Tracker::new(
        retinaface(),
        TrackConfig {
            detect_every: 5,
            ..TrackConfig::default()
        },
    )
    .unwrap();
    let (mut detections, mut last_detection) = (0, None);
    let (mut predicted_err, mut held_err, mut tracked) = (0.0, 0.0, 0);
    for i in 0..24u64 {
        let f = frame(crop(&img, 3 * i as u32, 40, w, h), i);
        let faces = t.update(&f).unwrap();
        assert_eq!(faces.faces.len(), 1, "frame {i}");
        let face = faces.faces[0];
        if faces.detected {
            detections += 1;
            last_detection = Some(face);
            continue;
        }
        if detections >= 2 {
            let truth = reference.detect(&f.image.clone().into()).unwrap()[0];
            let err = centre_error(&face, &truth);
            assert!(
                err < 0.04 * truth.width(),
                "frame {i}: predicted {:?} vs {:?}",
                face.bbox,
                truth.bbox
            );
            predicted_err += err;
            held_err += centre_error(&last_detection.unwrap(), &truth);
            tracked += 1;
        }
    }
    println!(
        "tracked {tracked} detections {detections} predicted {:.2} held {:.2}",
        predicted_err / tracked as f32,
        held_err / tracked as f32
    );
    assert!(tracked >= 8, "{tracked} tracked frames");
    assert!(detections <= 8, "{detections} detections in 24 frames");
    assert!(
        predicted_err < 0.5 * held_err,
        "mean error {:.1} px predicted vs {:.1} px held",
        predicted_err / tracked as f32,
        held_err / tracked as f32
    );
}

#[test]
fn a_jump_forces_a_fresh_detection() {
    let img = photo("grace_hopper.jpg");
    let (w, h) = (400, 480);
    let mut t = Tracker::new(retinaface(), TrackConfig::default()).unwrap();
    let first = t.update(&frame(crop(&img, 0, 40, w, h), 0)).unwrap();
    assert!(first.detected);
    let second = t.update(&frame(crop(&img, 0, 40, w, h), 1)).unwrap();
    assert!(!second.detected);
    assert_eq!(second.ids, first.ids, "a followed face keeps its id");
    let jumped = frame(crop(&img, 90, 40, w, h), 2);
    let faces = t.update(&jumped).unwrap();
    assert!(faces.detected, "a 90 px jump must not be tracked blindly");
    assert_eq!(t.last_detect_reason(), Some(DetectReason::PatchChange));
    assert_ne!(
        faces.ids, first.ids,
        "a face whose look changed under its box is not assumed to be the same one"
    );
    let fresh = retinaface().detect(&jumped.image.clone().into()).unwrap()[0];
    assert!(centre_error(&faces.faces[0], &fresh) < 0.5);
}

#[test]
fn a_face_that_leaves_is_dropped_at_once() {
    let img = photo("astronaut.png");
    let mut t = Tracker::new(retinaface(), TrackConfig::default()).unwrap();
    let before = t.update(&frame(img.clone().into(), 0)).unwrap();
    assert_eq!(before.faces.len(), 1);
    assert_eq!(before.ids.len(), 1);
    let empty = RgbImage::from_fn(img.width(), img.height(), |_, _| [128, 128, 128]);
    let faces = t.update(&frame(empty.clone(), 1)).unwrap();
    assert_eq!(
        faces,
        Faces {
            faces: vec![],
            detected: true,
            ids: vec![],
        }
    );
    // Idle: the detector keeps looking on every frame.
    assert!(t.update(&frame(empty, 2)).unwrap().detected);
    assert_eq!(t.last_detect_reason(), Some(DetectReason::Idle));
    // The same face, back after an empty frame, is a new track: nothing ties it to the
    // face that left.
    let back = t.update(&frame(img.into(), 3)).unwrap();
    assert_eq!(back.faces.len(), 1);
    assert_ne!(back.ids, before.ids);
}

#[test]
fn a_predicted_face_failing_quality_is_detected_again() {
    let img = photo("grace_hopper.jpg");
    let mut t = Tracker::new(
        retinaface(),
        TrackConfig {
            // Only the quality gate may trigger here.
            max_patch_change: 255.0,
            ..TrackConfig::default()
        },
    )
    .unwrap();
    t.update(&frame(img.clone().into(), 0)).unwrap();
    let dark: RgbImage = image::RgbImage::from_fn(img.width(), img.height(), |x, y| {
        image::Rgb(img.get_pixel(x, y).0.map(|v| v / 6))
    })
    .into();
    let faces = t.update(&frame(dark, 1)).unwrap();
    assert!(faces.detected);
    assert_eq!(t.last_detect_reason(), Some(DetectReason::Quality));
    t.request_redetect();
    t.update(&frame(img.into(), 2)).unwrap();
    assert_eq!(t.last_detect_reason(), Some(DetectReason::Requested));
}

#[test]
fn every_face_of_a_group_photo_is_reported_and_tracked() {
    let img = photo("solvay_1927.png");
    let cfg = TrackConfig::default();
    let mut t = Tracker::new(retinaface(), cfg.clone()).unwrap();
    let first = t.update(&frame(img.clone().into(), 0)).unwrap();
    println!("{} faces in the group photo", first.faces.len());
    assert!(first.faces.len() > 5, "{} faces", first.faces.len());
    assert!(first.faces.windows(2).all(|p| p[0].score >= p[1].score));
    assert!(first.faces.iter().all(|f| f.score >= cfg.min_score));
    let mut distinct = first.ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), first.faces.len(), "one id per face");
    let second = t.update(&frame(img.clone().into(), 1)).unwrap();
    // Faces too small for the quality gates were so when detected: they do not force a
    // detection on every frame.
    assert!(!second.detected, "{:?}", t.last_detect_reason());
    assert_eq!(second.faces.len(), first.faces.len());
    assert_eq!(second.ids, first.ids);
    // A re-detection of the same still scene keeps every face's id.
    t.request_redetect();
    let third = t.update(&frame(img.into(), 2)).unwrap();
    assert!(third.detected);
    assert_eq!(third.faces.len(), first.faces.len());
    assert_eq!(third.ids, first.ids);
}

/// SynthFAS frames: the tracked face stays on the true face through a segment.
#[test]
fn synthetic_faces_are_tracked_onto_the_truth() {
    let mut src = SyntheticSource::new(2);
    let mut t = Tracker::new(retinaface(), TrackConfig::default()).unwrap();
    let (mut tracked, mut found) = (0, 0);
    for _ in 0..20 {
        let f = src.next_frame().unwrap();
        let truth = src.truth().unwrap().face;
        let faces = t.update(&f).unwrap();
        let Some(best) = faces.faces.first() else {
            continue;
        };
        found += 1;
        if !faces.detected {
            tracked += 1;
        }
        let overlap = iou(&best.bbox, &truth.bbox);
        assert!(
            overlap > 0.4,
            "frame {}: {:?} vs truth {:?}",
            f.seq,
            best.bbox,
            truth.bbox
        );
        let le_err = (best.landmarks[0][0] - truth.landmarks[0][0])
            .hypot(best.landmarks[0][1] - truth.landmarks[0][1]);
        let iod = (truth.landmarks[1][0] - truth.landmarks[0][0]).abs();
        assert!(
            le_err < 0.5 * iod,
            "frame {}: left eye off by {le_err}",
            f.seq
        );
    }
    assert!(found >= 18, "face found in {found}/20 frames");
    assert!(tracked > 0, "no frame was tracked");
}
