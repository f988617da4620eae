//! Property tests of the preprocessing pipeline.

use fas_core::preprocess::*;
use proptest::prelude::*;

/// A deterministic pseudo-random image (xorshift) — cheaper than a proptest Vec<u8>.
fn noise_image(width: u32, height: u32, seed: u64) -> RgbImage {
    let mut s = seed | 1;
    RgbImage::from_fn(width, height, |_, _| {
        let mut px = [0u8; 3];
        for v in &mut px {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            *v = (s >> 32) as u8;
        }
        px
    })
}

fn template_face() -> Face {
    Face {
        bbox: [0.0, 0.0, 112.0, 112.0],
        landmarks: ARCFACE_TEMPLATE_112.map(|[x, y]| [x as f32, y as f32]),
        score: 1.0,
    }
}

fn color_space() -> impl Strategy<Value = ColorSpace> {
    prop_oneof![
        Just(ColorSpace::Rgb),
        Just(ColorSpace::Bgr),
        Just(ColorSpace::Hsv),
        Just(ColorSpace::Ycrcb),
    ]
}

/// Any finite f32: ordinary values, extremes, zeros and subnormals.
fn finite_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        4 => -200.0f32..300.0,
        1 => prop::num::f32::NORMAL,
        1 => prop::num::f32::SUBNORMAL | prop::num::f32::ZERO,
        1 => prop_oneof![Just(f32::MAX), Just(f32::MIN), Just(f32::MIN_POSITIVE)],
    ]
}

#[test]
fn template_landmarks_give_identity_at_112() {
    let face = template_face();
    let m = alignment_matrix(&face, 112, 112, 1.0).unwrap();
    for (got, want) in
        m.m.iter()
            .flatten()
            .zip(Affine2::IDENTITY.m.iter().flatten())
    {
        // Landmarks pass through f32 (≈4e-6 absolute at 100 px).
        assert!((got - want).abs() < 1e-4, "{m:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn aligned_crop_of_template_is_identity(seed in any::<u64>()) {
        let frame = noise_image(112, 112, seed);
        let out = crop_face(&frame, &template_face(), CropSpec::Aligned { scale: 1.0 }, 112, 112).unwrap();
        prop_assert_eq!(out, frame);
    }

    #[test]
    fn resize_to_same_size_is_identity(w in 1u32..40, h in 1u32..40, seed in any::<u64>()) {
        let img = noise_image(w, h, seed);
        prop_assert_eq!(resize_bilinear(&img, w, h), img);
    }

    #[test]
    fn resize_keeps_constant_images_constant(
        w in 1u32..20, h in 1u32..20, ow in 1u32..40, oh in 1u32..40, px in any::<[u8; 3]>()
    ) {
        let img = RgbImage::from_fn(w, h, |_, _| px);
        prop_assert_eq!(resize_bilinear(&img, ow, oh), RgbImage::from_fn(ow, oh, |_, _| px));
    }

    #[test]
    fn grey_has_no_saturation_or_chroma(v in any::<u8>()) {
        let hsv = rgb_to_hsv([v; 3]);
        prop_assert_eq!(hsv[1], 0);
        prop_assert_eq!(hsv[2], v);
        prop_assert_eq!(rgb_to_ycrcb([v; 3]), [v, 128, 128]);
    }

    #[test]
    fn hue_in_range(p in any::<[u8; 3]>()) {
        prop_assert!(rgb_to_hsv(p)[0] < 180);
    }

    #[test]
    fn normalisation_inverts(
        seed in any::<u64>(),
        groups in prop::collection::vec(color_space(), 1..4),
        mean in prop::collection::vec(-2.0f32..2.0, 9),
        std in prop::collection::vec(prop_oneof![0.01f32..10.0, -10.0f32..-0.01], 9),
    ) {
        let ch = 3 * groups.len();
        let spec = PreprocessSpec {
            crop: CropSpec::Box { scale: 1.0 },
            width: 7,
            height: 5,
            color: groups.clone(),
            normalize: Normalize { mean: mean[..ch].to_vec(), std: std[..ch].to_vec() },
        };
        let crop = noise_image(7, 5, seed);
        let mut t = vec![0.0; spec.tensor_len()];
        normalize_into(&crop, &spec, &mut t).unwrap();
        let back = denormalize(&t, &spec).unwrap();
        for (img, space) in back.iter().zip(&groups) {
            prop_assert_eq!(img, &convert(&crop, *space));
        }
    }

    #[test]
    fn box_crop_never_nan_and_has_spec_length(
        bbox in prop::array::uniform4(finite_f32()),
        scale in 0.1f32..5.0,
        w in 1u32..24, h in 1u32..24,
        fw in 1u32..24, fh in 1u32..24,
        groups in prop::collection::vec(color_space(), 1..4),
        seed in any::<u64>(),
    ) {
        let ch = 3 * groups.len();
        let spec = PreprocessSpec {
            crop: CropSpec::Box { scale },
            width: w,
            height: h,
            color: groups,
            normalize: Normalize::imagenet(ch / 3),
        };
        let face = Face { bbox, landmarks: [[0.0; 2]; 5], score: 0.5 };
        let t = preprocess(&noise_image(fw, fh, seed), &face, &spec).unwrap();
        prop_assert_eq!(t.len(), ch * (w * h) as usize);
        prop_assert!(t.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn aligned_crop_is_finite_or_a_typed_error(
        lm in prop::array::uniform5(prop::array::uniform2(finite_f32())),
        scale in prop_oneof![Just(1.0f32), Just(2.7), Just(4.0), 0.1f32..5.0],
        w in 1u32..24, h in 1u32..24,
        seed in any::<u64>(),
    ) {
        let spec = PreprocessSpec {
            crop: CropSpec::Aligned { scale },
            width: w,
            height: h,
            color: vec![ColorSpace::Rgb, ColorSpace::Hsv],
            normalize: Normalize::uniform(0.5, 0.25, 6),
        };
        let face = Face { bbox: [0.0; 4], landmarks: lm, score: 0.5 };
        match preprocess(&noise_image(20, 16, seed), &face, &spec) {
            Ok(t) => {
                prop_assert_eq!(t.len(), spec.tensor_len());
                prop_assert!(t.iter().all(|v| v.is_finite()));
            }
            Err(e) => prop_assert_eq!(e, PreprocessError::DegenerateLandmarks),
        }
    }

    #[test]
    fn preprocess_is_bit_deterministic(
        seed in any::<u64>(),
        lm in prop::array::uniform5(prop::array::uniform2(0.0f32..30.0)),
    ) {
        let spec = PreprocessSpec { width: 24, height: 24, ..PreprocessSpec::rgb_hsv_256() };
        let frame = noise_image(30, 30, seed);
        let face = Face { bbox: [2.0, 3.0, 20.0, 25.0], landmarks: lm, score: 1.0 };
        let a = preprocess(&frame, &face, &spec);
        let b = preprocess(&frame, &face, &spec);
        match (a, b) {
            (Ok(a), Ok(b)) => {
                let (a, b): (Vec<u32>, Vec<u32>) =
                    (a.iter().map(|v| v.to_bits()).collect(), b.iter().map(|v| v.to_bits()).collect());
                prop_assert_eq!(a, b);
            }
            (a, b) => prop_assert_eq!(a, b),
        }
    }

    #[test]
    fn non_finite_landmarks_are_rejected(
        idx in 0usize..5, coord in 0usize..2,
        bad in prop_oneof![Just(f32::NAN), Just(f32::INFINITY), Just(f32::NEG_INFINITY)],
    ) {
        let mut face = template_face();
        face.landmarks[idx][coord] = bad;
        let spec = PreprocessSpec { width: 16, height: 16, ..PreprocessSpec::resnet_rgb_256() };
        prop_assert_eq!(
            preprocess(&noise_image(8, 8, 1), &face, &spec),
            Err(PreprocessError::NonFiniteLandmarks { index: idx })
        );
    }
}

#[test]
fn non_finite_box_is_rejected() {
    let face = Face {
        bbox: [0.0, f32::NAN, 1.0, 1.0],
        landmarks: [[0.0; 2]; 5],
        score: 1.0,
    };
    let spec = PreprocessSpec {
        width: 8,
        height: 8,
        ..PreprocessSpec::minifas_80()
    };
    assert_eq!(
        preprocess(&noise_image(8, 8, 1), &face, &spec),
        Err(PreprocessError::NonFiniteBox)
    );
}
