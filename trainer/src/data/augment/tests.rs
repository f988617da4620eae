use super::*;
use proptest::prelude::*;

fn arb_image() -> impl Strategy<Value = RgbImage> {
    (1u32..24, 1u32..24).prop_flat_map(|(w, h)| {
        prop::collection::vec(any::<u8>(), (w * h * 3) as usize)
            .prop_map(move |data| RgbImage::new(w, h, data).unwrap())
    })
}

fn arb_config() -> impl Strategy<Value = AugmentConfig> {
    (
        (0.05f32..=1.0, 0.0f32..=1.0),
        (0.3f32..=2.0, 1.0f32..=2.0),
        0.0f32..=180.0,
        prop::option::of(any::<u8>()),
        (0.0f32..=1.0, 0.0f32..=1.0, 0.0f32..=1.0, 0.0f32..=0.5),
        0.0f32..=1.0,
    )
        .prop_map(
            |((s0, s), (r0, rk), rot, fill, (b, c, sa, hu), fl)| AugmentConfig {
                crop_scale: [s0, s0 + (1.0 - s0) * s],
                crop_ratio: [r0, r0 * rk],
                rotate_deg: rot,
                border: fill.map_or(Border::Replicate, Border::Constant),
                brightness: b,
                contrast: c,
                saturation: sa,
                hue: hu,
                hflip: fl,
            },
        )
}

fn gray_to_rgb(g: &GrayImage) -> RgbImage {
    RgbImage::new(
        g.width(),
        g.height(),
        g.as_raw().iter().flat_map(|&v| [v; 3]).collect(),
    )
    .unwrap()
}

fn mirror(img: &RgbImage) -> RgbImage {
    RgbImage::from_fn(img.width, img.height, |x, y| {
        img.pixel(img.width - 1 - x, y)
    })
}

proptest! {
    #[test]
    fn output_has_input_size(img in arb_image(), cfg in arb_config(), seed: u64,
                             dw in 1u32..20, dh in 1u32..20) {
        cfg.validate().unwrap();
        let depth = GrayImage::new(dw, dh);
        let (out, d) = cfg.sample(seed).apply(&img, Some(&depth));
        prop_assert_eq!((out.width, out.height), (img.width, img.height));
        prop_assert_eq!(out.data.len(), img.data.len());
        prop_assert_eq!(d.unwrap().dimensions(), (dw, dh));
    }

    #[test]
    fn none_and_identity_change_nothing(img in arb_image(), seed: u64) {
        let p = AugmentConfig::none().sample(seed);
        prop_assert_eq!(p, AugmentParams::identity());
        prop_assert_eq!(&p.apply_rgb(&img), &img);
    }

    #[test]
    fn identity_warp_is_exact(img in arb_image()) {
        // Force the resampling path: a full-image crop, no rotation, no flip.
        let map = AugmentParams::identity().inverse_map(img.width, img.height);
        prop_assert_eq!(warp::<3>(&img.data, img.width, img.height, &map, None), img.data.clone());
        let map = AugmentParams::identity().inverse_map(img.width, img.height);
        prop_assert_eq!(warp::<3>(&img.data, img.width, img.height, &map, Some(0.0)), img.data);
    }

    #[test]
    fn flip_mirrors_and_twice_is_identity(img in arb_image()) {
        let p = AugmentParams { flip: true, ..AugmentParams::identity() };
        let once = p.apply_rgb(&img);
        prop_assert_eq!(&once, &mirror(&img));
        prop_assert_eq!(p.apply_rgb(&once), img);
    }

    #[test]
    fn geometry_stays_within_source_range(img in arb_image(), cfg in arb_config(), seed: u64) {
        // Bilinear interpolation is a convex combination: no value leaves the
        // [min, max] of its channel (plus the fill level, if used).
        let p = AugmentParams { border: Border::Replicate, ..cfg.sample(seed) };
        let p = AugmentParams { brightness: 1.0, contrast: 1.0, saturation: 1.0, hue: 0.0, ..p };
        let out = p.apply_rgb(&img);
        for c in 0..3 {
            let ch = |d: &[u8]| d.iter().skip(c).step_by(3).copied().collect::<Vec<u8>>();
            let (src, dst) = (ch(&img.data), ch(&out.data));
            let (lo, hi) = (*src.iter().min().unwrap(), *src.iter().max().unwrap());
            prop_assert!(dst.iter().all(|&v| lo <= v && v <= hi));
        }
    }

    #[test]
    fn sampled_params_stay_in_configured_ranges(cfg in arb_config(), seed: u64) {
        let p = cfg.sample(seed);
        let [x, y, w, h] = p.crop;
        prop_assert!(x >= 0.0 && y >= 0.0 && x + w <= 1.0 + 1e-12 && y + h <= 1.0 + 1e-12);
        let area = w * h;
        let full = p.crop == [0.0, 0.0, 1.0, 1.0];
        prop_assert!(full || (area >= f64::from(cfg.crop_scale[0]) - 1e-9
            && area <= f64::from(cfg.crop_scale[1]) + 1e-9));
        prop_assert!(p.angle_deg.abs() <= f64::from(cfg.rotate_deg));
        prop_assert!((p.brightness - 1.0).abs() <= cfg.brightness + 1e-6);
        prop_assert!(p.brightness >= 0.0 && p.contrast >= 0.0 && p.saturation >= 0.0);
        prop_assert!(p.hue.abs() <= cfg.hue);
    }

    #[test]
    fn same_seed_same_result(img in arb_image(), cfg in arb_config(), seed: u64) {
        let depth = GrayImage::from_fn(img.width, img.height, |x, y| image::Luma([(x * 7 + y) as u8]));
        let a = cfg.sample(seed).apply(&img, Some(&depth));
        let b = cfg.clone().sample(seed).apply(&img, Some(&depth));
        prop_assert_eq!(a, b);
    }

    #[test]
    fn depth_moves_like_the_image(img in arb_image(), cfg in arb_config(), seed: u64) {
        // A depth map equal to the image's first channel, warped alone, equals the
        // first channel of the warped image (geometry only, same border rule).
        let mut p = cfg.sample(seed);
        p = AugmentParams { brightness: 1.0, contrast: 1.0, saturation: 1.0, hue: 0.0, ..p };
        if let Border::Constant(_) = p.border { p.border = Border::Constant(0); }
        let grey: Vec<u8> = img.data.iter().step_by(3).copied().collect();
        let depth = GrayImage::from_raw(img.width, img.height, grey).unwrap();
        let (out, d) = p.apply(&gray_to_rgb(&depth), Some(&depth));
        let first: Vec<u8> = out.data.iter().step_by(3).copied().collect();
        prop_assert_eq!(d.unwrap().into_raw(), first);
    }

    #[test]
    fn zero_saturation_gives_grey(img in arb_image()) {
        let p = AugmentParams { saturation: 0.0, ..AugmentParams::identity() };
        let out = p.apply_rgb(&img);
        for px in out.data.chunks_exact(3) {
            prop_assert!(px[0] == px[1] && px[1] == px[2]);
        }
    }

    #[test]
    fn valid_configs_round_trip_serde(cfg in arb_config()) {
        let j = serde_json::to_string(&cfg).unwrap();
        prop_assert_eq!(serde_json::from_str::<AugmentConfig>(&j).unwrap(), cfg);
    }
}

#[test]
fn rotate_90_turns_content_counter_clockwise() {
    let img = RgbImage::from_fn(5, 5, |x, y| [(x * 10 + y) as u8, x as u8, y as u8]);
    let p = AugmentParams {
        angle_deg: 90.0,
        ..AugmentParams::identity()
    };
    let out = p.apply_rgb(&img);
    // Right edge goes to the top: out(x, y) = src(W-1-y, x).
    let want = RgbImage::from_fn(5, 5, |x, y| img.pixel(4 - y, x));
    assert_eq!(out, want);
}

#[test]
fn crop_of_a_quarter_upsamples_that_quarter() {
    // A 4x4 image whose top-left 2x2 block is 200, rest 0; cropping that block
    // and scaling it back to 4x4 gives all 200 with replicate borders.
    let img = RgbImage::from_fn(4, 4, |x, y| [if x < 2 && y < 2 { 200 } else { 0 }; 3]);
    let p = AugmentParams {
        crop: [0.0, 0.0, 0.5, 0.5],
        ..AugmentParams::identity()
    };
    let out = p.apply_rgb(&img);
    // Output pixel 0 samples source -0.25 (clamped to 0) → 200; output 3 samples
    // source 1.25: 0.75 * 200 + 0.25 * 0 = 150.
    assert_eq!(out.pixel(0, 0), [200; 3]);
    assert_eq!(out.pixel(3, 0), [150; 3]);
    assert_eq!(out.pixel(3, 3), [113; 3]); // 0.75² * 200 = 112.5 → 113
}

#[test]
fn constant_border_fills_corners() {
    let img = RgbImage::from_fn(8, 8, |_, _| [100; 3]);
    let p = AugmentParams {
        angle_deg: 45.0,
        border: Border::Constant(7),
        ..AugmentParams::identity()
    };
    let out = p.apply_rgb(&img);
    assert_eq!(out.pixel(0, 0), [7; 3]);
    assert_eq!(out.pixel(4, 4), [100; 3]);
    let depth = GrayImage::from_pixel(8, 8, image::Luma([100]));
    let d = p.apply_depth(&depth, 1.0);
    assert_eq!(d.get_pixel(0, 0).0, [0]);
    let p = AugmentParams {
        border: Border::Replicate,
        ..p
    };
    assert_eq!(p.apply_rgb(&img), img);
}

#[test]
fn colour_jitter_known_answers() {
    let img = RgbImage::new(2, 1, vec![255, 0, 0, 100, 50, 10]).unwrap();
    let third = AugmentParams {
        hue: 1.0 / 3.0,
        ..AugmentParams::identity()
    };
    assert_eq!(third.apply_rgb(&img).pixel(0, 0), [0, 255, 0]);
    let bright = AugmentParams {
        brightness: 0.5,
        ..AugmentParams::identity()
    };
    assert_eq!(bright.apply_rgb(&img).data, vec![128, 0, 0, 50, 25, 5]);
    let flat = AugmentParams {
        contrast: 0.0,
        ..AugmentParams::identity()
    };
    // Mean grey: (0.299*255 + (0.299*100 + 0.587*50 + 0.114*10)) / 2 = 68.3...
    let out = flat.apply_rgb(&img);
    assert!(out.data.iter().all(|&v| v == 68), "{:?}", out.data);
}

#[test]
fn validate_names_field() {
    let mut c = AugmentConfig::default();
    c.validate().unwrap();
    AugmentConfig::none().validate().unwrap();
    assert!(AugmentConfig::none().is_none() && !c.is_none());
    c.crop_scale = [0.9, 0.5];
    let e = c.validate().unwrap_err().to_string();
    assert!(e.starts_with("augment.crop_scale is [0.9, 0.5]"), "{e}");
    let c = AugmentConfig {
        hue: 0.7,
        ..AugmentConfig::default()
    };
    assert_eq!(c.validate().unwrap_err().field, "hue");
    let c = AugmentConfig {
        brightness: f32::NAN,
        ..AugmentConfig::default()
    };
    assert_eq!(c.validate().unwrap_err().field, "brightness");
    let j = r#"{"hflip": 0.0, "rotate": 3}"#;
    let e = serde_json::from_str::<AugmentConfig>(j)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `rotate`"), "{e}");
}

#[test]
fn different_seeds_give_different_draws() {
    let c = AugmentConfig::default();
    let draws: std::collections::HashSet<String> =
        (0..20).map(|s| format!("{:?}", c.sample(s))).collect();
    assert_eq!(draws.len(), 20);
}
