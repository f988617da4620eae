//! Synthetic frames as a YUYV camera sends them: the real-device test feeds these into
//! V4L2 and the edge benchmark decodes them, as the door does a USB camera's frames.

/// BT.601 limited-range R'G'B' → Y'CbCr (the inverse of fas-edge's YUYV decoder), packed
/// as YUYV 4:2:2 with the chroma of each pixel pair averaged.
pub fn rgb_to_yuyv(rgb: &[u8], width: usize, height: usize) -> Vec<u8> {
    assert_eq!(rgb.len(), width * height * 3, "rgb buffer size");
    assert!(width.is_multiple_of(2), "YUYV needs an even width");
    let mut out = Vec::with_capacity(width * height * 2);
    let yuv = |p: &[u8]| {
        let (r, g, b) = (f32::from(p[0]), f32::from(p[1]), f32::from(p[2]));
        let y = 16.0 + 0.256_79 * r + 0.504_13 * g + 0.097_91 * b;
        let u = 128.0 - 0.148_22 * r - 0.290_99 * g + 0.439_22 * b;
        let v = 128.0 + 0.439_22 * r - 0.367_79 * g - 0.071_43 * b;
        (y, u, v)
    };
    let q = |x: f32| x.round().clamp(0.0, 255.0) as u8;
    for pair in rgb.chunks_exact(6) {
        let (y0, u0, v0) = yuv(&pair[..3]);
        let (y1, u1, v1) = yuv(&pair[3..]);
        out.extend_from_slice(&[q(y0), q((u0 + u1) / 2.0), q(y1), q((v0 + v1) / 2.0)]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The standard decoder (as fas-edge implements it), real-valued.
    fn decode(y: u8, u: u8, v: u8) -> [f32; 3] {
        let (y, u, v) = (
            f32::from(y) - 16.0,
            f32::from(u) - 128.0,
            f32::from(v) - 128.0,
        );
        [
            1.164 * y + 1.596 * v,
            1.164 * y - 0.392 * u - 0.813 * v,
            1.164 * y + 2.017 * u,
        ]
    }

    proptest! {
        #[test]
        fn yuyv_round_trips_flat_pixel_pairs(r in 0u8..=255, g in 0u8..=255, b in 0u8..=255) {
            let px = [r, g, b, r, g, b];
            let out = rgb_to_yuyv(&px, 2, 1);
            let back = decode(out[0], out[1], out[3]);
            for (c, want) in back.iter().zip([r, g, b]) {
                // Clipping of out-of-gamut results aside, within quantisation error.
                prop_assert!((c.clamp(0.0, 255.0) - f32::from(want)).abs() <= 3.0,
                    "{:?} -> {:?} -> {:?}", [r, g, b], out, back);
            }
        }
    }

    #[test]
    fn known_colours_encode_to_bt601_limited_range() {
        assert_eq!(rgb_to_yuyv(&[0; 6], 2, 1), vec![16, 128, 16, 128]);
        assert_eq!(rgb_to_yuyv(&[255; 6], 2, 1), vec![235, 128, 235, 128]);
        // Pure red: Y 81, Cb 90, Cr 240 (ITU-R BT.601 table).
        assert_eq!(
            rgb_to_yuyv(&[255, 0, 0, 255, 0, 0], 2, 1),
            vec![81, 90, 81, 240]
        );
    }
}
