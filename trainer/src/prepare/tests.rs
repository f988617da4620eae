use super::*;
use fas_core::dataset::Split;

fn det(bbox: [f32; 4], score: f32) -> Detection {
    Detection {
        bbox,
        landmarks: [[0.0; 2]; 5],
        score,
    }
}

fn sample(path: &str, domain: &str, video: &str, frame: u32) -> Sample {
    Sample {
        v: 1,
        path: path.into(),
        label: Label::Live,
        attack: "none".into(),
        domain: domain.into(),
        subject: "s".into(),
        device: "d".into(),
        split: Split::Train,
        video: video.into(),
        frame,
    }
}

#[test]
fn largest_face_above_min_size_wins() {
    let faces = [
        det([0.0, 0.0, 50.0, 50.0], 0.99),
        det([0.0, 0.0, 100.0, 90.0], 0.85),
        det([0.0, 0.0, 400.0, 30.0], 0.95), // largest area, but 30 px short side
    ];
    assert_eq!(choose_face(&faces, 40.0), Some(&faces[1]));
    assert_eq!(choose_face(&faces, 0.0), Some(&faces[2]));
    assert_eq!(choose_face(&faces, 95.0), None);
    assert_eq!(choose_face(&[], 0.0), None);
}

#[test]
fn equal_boxes_prefer_the_higher_score() {
    let faces = [
        det([0.0, 0.0, 60.0, 60.0], 0.8),
        det([10.0, 10.0, 70.0, 70.0], 0.9),
    ];
    assert_eq!(choose_face(&faces, 0.0), Some(&faces[1]));
}

#[test]
fn path_components_are_safe() {
    assert_eq!(path_component("oulu/1_1_01_1"), "oulu_1_1_01_1");
    assert_eq!(path_component("a b:c\\d"), "a_b_c_d");
    assert_eq!(path_component(".."), "_..");
    assert_eq!(path_component("."), "_.");
    assert_eq!(path_component("é"), "_");
    assert_eq!(path_component("Clip-1.v2"), "Clip-1.v2");
}

#[test]
fn colliding_video_dirs_are_disambiguated() {
    let s = [
        sample("a.avi", "d", "x/y", 0),
        sample("b.avi", "d", "x_y", 0),
        sample("c.avi", "d", "z", 0),
        sample("e.avi", "other", "x/y", 0),
    ];
    let dirs = crop_dirs(&s);
    let a = &dirs[&("d".into(), "x/y".into())];
    let b = &dirs[&("d".into(), "x_y".into())];
    assert_ne!(a, b);
    assert!(
        a.starts_with("d/x_y-") && b.starts_with("d/x_y-"),
        "{a} {b}"
    );
    assert_eq!(dirs[&("d".into(), "z".into())], "d/z");
    assert_eq!(dirs[&("other".into(), "x/y".into())], "other/x_y");
    // Stable across calls and input order.
    let mut rev = s.to_vec();
    rev.reverse();
    assert_eq!(crop_dirs(&rev), dirs);
}

#[test]
fn overlapping_sources_are_conflicts() {
    let s = [
        sample("v1.avi", "d", "v", 0),
        sample("v2.mp4", "d", "v", 0), // same video id as v1
        sample("p0.png", "d", "p", 0),
        sample("p1.png", "d", "p", 1),  // distinct frame: fine
        sample("p1b.jpg", "d", "p", 1), // same frame as p1
        sample("v3.avi", "d", "p", 0),  // video over photos
        sample("v4.avi", "e", "v", 0),  // other domain: fine
    ];
    let c = conflicts(&s);
    let flagged: Vec<bool> = c.iter().map(Option::is_some).collect();
    assert_eq!(flagged, [false, true, false, false, true, true, false]);
    let msg = c[1].as_deref().unwrap();
    assert!(msg.contains("v2.mp4") && msg.contains("v1.avi"), "{msg}");
    assert!(c[4].as_deref().unwrap().contains("p1.png"));
}

#[test]
fn config_validation_names_the_field() {
    let ok = PrepareConfig::default();
    ok.validate().unwrap();
    let cases: Vec<(&str, PrepareConfig)> = vec![
        (
            "stride",
            PrepareConfig {
                stride: 0,
                ..ok.clone()
            },
        ),
        (
            "max_frames",
            PrepareConfig {
                max_frames: Some(0),
                ..ok.clone()
            },
        ),
        (
            "size",
            PrepareConfig {
                size: 0,
                ..ok.clone()
            },
        ),
        (
            "min_face_score",
            PrepareConfig {
                min_face_score: 1.5,
                ..ok.clone()
            },
        ),
        (
            "min_face_size",
            PrepareConfig {
                min_face_size: f32::NAN,
                ..ok.clone()
            },
        ),
        (
            "threads",
            PrepareConfig {
                threads: 0,
                ..ok.clone()
            },
        ),
        (
            "crop.scale",
            PrepareConfig {
                crop: CropSpec::Box { scale: 0.0 },
                ..ok.clone()
            },
        ),
        (
            "detect_max_side",
            PrepareConfig {
                detect_max_side: 0,
                ..ok.clone()
            },
        ),
    ];
    for (field, cfg) in cases {
        let msg = cfg.validate().unwrap_err().to_string();
        assert!(msg.contains(field), "{field}: {msg}");
    }
}

#[test]
fn threads_do_not_change_the_output_fields() {
    let a = PrepareConfig {
        threads: 1,
        ..PrepareConfig::default()
    };
    let b = PrepareConfig {
        threads: 8,
        ..PrepareConfig::default()
    };
    assert_eq!(a.output_fields(), b.output_fields());
    let c = PrepareConfig {
        stride: 3,
        ..a.clone()
    };
    assert_ne!(a.output_fields(), c.output_fields());
}

#[test]
fn depth_prior_is_an_output_field_and_defaults_off_in_old_reports() {
    let on = PrepareConfig {
        depth_prior: true,
        ..PrepareConfig::default()
    };
    assert_eq!(on.output_fields()["depth_prior"], true);
    assert_ne!(on.output_fields(), PrepareConfig::default().output_fields());
    // A report written before the field existed reads as "no depth prior".
    let mut old = serde_json::to_value(PrepareConfig::default()).unwrap();
    old.as_object_mut().unwrap().remove("depth_prior");
    let old: PrepareConfig = serde_json::from_value(old).unwrap();
    assert_eq!(old, PrepareConfig::default());
}

/// A face whose landmarks are a similarity image (rolled 20°, scaled, moved) of the
/// aligned template lands exactly on the template in the crop, so the prior's peak
/// is at the template's nose and the map has the crop's size.
#[test]
fn depth_prior_follows_the_crop_transform() {
    use fas_core::preprocess::{aligned_template, Affine2};
    let (size, scale) = (128, 2.7);
    let template = aligned_template(size, size, f64::from(scale));
    let (s, c) = 20f64.to_radians().sin_cos();
    let k = 2.5;
    let frame_from_crop = Affine2 {
        m: [[k * c, -k * s, 300.0], [k * s, k * c, 120.0]],
    };
    let face = Face {
        bbox: [0.0; 4],
        landmarks: template.map(|p| frame_from_crop.apply(p).map(|v| v as f32)),
        score: 1.0,
    };
    let map = crop_depth_prior(&face, CropSpec::Aligned { scale }, size).unwrap();
    assert_eq!(map.dimensions(), (size, size));
    let direct = depth_prior::depth_prior(&template, size, size).unwrap();
    let diff = map
        .as_raw()
        .iter()
        .zip(direct.as_raw())
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    // f32 landmarks: the mapped template differs from the exact one by ~1e-5 px.
    assert!(diff <= 1, "max difference {diff}");
    // Degenerate landmarks are a reported crop error, not a map.
    let bad = Face {
        landmarks: [[5.0, 5.0]; 5],
        ..face
    };
    let e = crop_depth_prior(&bad, CropSpec::Aligned { scale }, size).unwrap_err();
    assert!(e.contains("depth prior"), "{e}");
}

#[test]
fn totals_sum_the_sources() {
    let mut a = SourceReport::new(&sample("a.avi", "d", "a", 0));
    (a.frames, a.faces, a.reused, a.no_face, a.small_face) = (10, 6, 2, 3, 1);
    a.crop_errors.push("x".into());
    let mut b = SourceReport::new(&sample("b.png", "d", "b", 0));
    b.error = Some("broken".into());
    let t = PrepareReport::totals_of(&[a, b]);
    assert_eq!(
        t,
        Totals {
            sources: 2,
            failed: 1,
            frames: 10,
            faces: 6,
            reused: 2,
            no_face: 3,
            small_face: 1,
            crop_errors: 1
        }
    );
}
